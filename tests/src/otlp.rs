//! An OTLP/HTTP trace receiver on a free loopback port: it takes
//! `POST /v1/traces` in the protobuf encoding (what `serve
//! --otlp-endpoint` sends) or the JSON one, and keeps every span,
//! flattened, for a test to look at.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One received span.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// The `service.name` of the process that sent it.
    pub service: String,
    /// Its name.
    pub name: String,
    /// Hex trace id.
    pub trace_id: String,
    /// Hex span id.
    pub span_id: String,
    /// Hex parent span id; empty for a root.
    pub parent_span_id: String,
    /// Attributes, each value as text.
    pub attributes: HashMap<String, String>,
    /// Links, as (trace id, span id).
    pub links: Vec<(String, String)>,
}

/// A running receiver; stops when dropped.
pub struct OtlpReceiver {
    /// The base URL to export to (`http://127.0.0.1:PORT`).
    pub endpoint: String,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    task: JoinHandle<()>,
}

impl OtlpReceiver {
    /// Listens on a free loopback port, keeping every span.
    pub async fn start() -> OtlpReceiver {
        Self::keeping(usize::MAX).await
    }

    /// Listens on a free loopback port, decoding and keeping spans only
    /// until it holds `limit` of them (then it reads and drops bodies: a
    /// benchmark's receiver should cost the process as little as a remote
    /// collector would).
    pub async fn keeping(limit: usize) -> OtlpReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind OTLP");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let spans: Arc<Mutex<Vec<ReceivedSpan>>> = Arc::default();
        let kept = spans.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let kept = kept.clone();
                        async move {
                            let path = request.uri().path().to_owned();
                            let body = match request.into_body().collect().await {
                                Ok(body) => body.to_bytes(),
                                Err(_) => Bytes::new(),
                            };
                            let full = kept.lock().expect("spans").len() >= limit;
                            let status = if path != "/v1/traces" {
                                404
                            } else if full {
                                200
                            } else {
                                match decode(&body) {
                                    Some(export) => {
                                        kept.lock().expect("spans").extend(flatten(&export));
                                        200
                                    }
                                    None => 400,
                                }
                            };
                            Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from_static(b"{}")))
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        OtlpReceiver {
            endpoint,
            spans,
            task,
        }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().expect("spans").clone()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An `ExportTraceServiceRequest` (protobuf, else JSON) in its JSON form.
fn decode(body: &[u8]) -> Option<Value> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    match ExportTraceServiceRequest::decode(body) {
        Ok(request) => serde_json::to_value(request).ok(),
        Err(_) => serde_json::from_slice(body).ok(),
    }
}

/// The spans of one `ExportTraceServiceRequest` in its JSON encoding.
fn flatten(export: &Value) -> Vec<ReceivedSpan> {
    let list = |v: &Value, key: &str| v[key].as_array().cloned().unwrap_or_default();
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let mut spans = Vec::new();
    for resource in list(export, "resourceSpans") {
        let service = attributes(&resource["resource"]["attributes"])
            .remove("service.name")
            .unwrap_or_default();
        for scope in list(&resource, "scopeSpans") {
            for span in list(&scope, "spans") {
                spans.push(ReceivedSpan {
                    service: service.clone(),
                    name: text(&span["name"]),
                    trace_id: text(&span["traceId"]),
                    span_id: text(&span["spanId"]),
                    parent_span_id: text(&span["parentSpanId"]),
                    attributes: attributes(&span["attributes"]),
                    links: list(&span, "links")
                        .iter()
                        .map(|l| (text(&l["traceId"]), text(&l["spanId"])))
                        .collect(),
                });
            }
        }
    }
    spans
}

/// OTLP key-value attributes, each value as text.
fn attributes(list: &Value) -> HashMap<String, String> {
    let Some(list) = list.as_array() else {
        return HashMap::new();
    };
    list.iter()
        .filter_map(|kv| {
            let key = kv["key"].as_str()?.to_owned();
            let value = kv["value"].as_object()?.values().next()?;
            let value = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some((key, value))
        })
        .collect()
}
