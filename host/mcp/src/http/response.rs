//! The responses the HTTP layer writes itself (rmcp writes the rest):
//! JSON bodies, JSON-RPC refusals, empty acknowledgements.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

use crate::error::RpcError;

/// A response as rmcp builds them.
pub(super) type HttpResponse = Response<BoxBody<Bytes, Infallible>>;

/// A response with a JSON body.
pub(super) fn json_response(status: StatusCode, message: &Value) -> HttpResponse {
    let body = serde_json::to_vec(message).unwrap_or_default();
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

/// A JSON-RPC error response with no request id.
pub(super) fn refuse(status: StatusCode, error: RpcError) -> HttpResponse {
    let message = json!({"jsonrpc": "2.0", "id": Value::Null, "error": error.to_value()});
    json_response(status, &message)
}

/// A response with no body.
pub(super) fn empty(status: StatusCode) -> HttpResponse {
    let mut response = HttpResponse::new(Full::new(Bytes::new()).boxed());
    *response.status_mut() = status;
    response
}
