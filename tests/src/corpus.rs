//! A generated corpus of malformed JSON-RPC messages, each with what the
//! server must answer: bytes that are not JSON, JSON that is not one
//! message, messages whose params have the wrong types, and a share of
//! well-formed requests. Generated with proptest's strategies from a fixed
//! seed, so a failure names a case that comes back on every run.

use pmcp_tasks_contract::json_rpc;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Map, Value};

/// What a message must get back.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// An error response with this code.
    Error(i64),
    /// An error response with one of these codes (random bytes may happen
    /// to be JSON).
    ErrorAmong(&'static [i64]),
    /// A result.
    Result,
}

/// One message of the corpus.
#[derive(Debug, Clone)]
pub struct Case {
    /// What kind of damage it carries.
    pub label: &'static str,
    /// The message: bytes as sent, never containing a newline.
    pub bytes: Vec<u8>,
    /// The id its response must carry (`null` where the id is unusable).
    pub id: Value,
    /// What it must get back.
    pub expect: Expect,
}

impl Case {
    /// Checks a response against the expectation; the reason when it fails.
    pub fn check(&self, response: &Value) -> Result<(), String> {
        if response.get("jsonrpc") != Some(&json!("2.0")) {
            return Err(format!("not a JSON-RPC 2.0 response: {response}"));
        }
        if response.get("id") != Some(&self.id) {
            return Err(format!("expected id {}, got {response}", self.id));
        }
        let code = response.pointer("/error/code").and_then(Value::as_i64);
        let fits = match (&self.expect, code) {
            (Expect::Result, None) => response.get("result").is_some(),
            (Expect::Error(want), Some(code)) => *want == code,
            (Expect::ErrorAmong(codes), Some(code)) => codes.contains(&code),
            _ => false,
        };
        if fits {
            Ok(())
        } else {
            Err(format!("expected {:?}, got {response}", self.expect))
        }
    }
}

// The codes as JSON reads them back.
const PARSE: i64 = json_rpc::PARSE_ERROR as i64;
const INVALID_REQUEST: i64 = json_rpc::INVALID_REQUEST as i64;
const METHOD_NOT_FOUND: i64 = json_rpc::METHOD_NOT_FOUND as i64;
const INVALID_PARAMS: i64 = json_rpc::INVALID_PARAMS as i64;

/// `n` cases from `seed`.
pub fn corpus(n: usize, seed: u8) -> Vec<Case> {
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let strategy = case();
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).expect("a case").current())
        .collect()
}

fn request(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

fn bytes_of(message: &Value) -> Vec<u8> {
    message.to_string().into_bytes()
}

/// JSON values of every type, for fields that must have another.
fn any_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        prop::collection::vec(any::<u8>().prop_map(|n| json!(n)), 0..4).prop_map(Value::Array),
        ".{0,10}".prop_map(|k| json!({ k: 1 })),
    ]
}

/// A value that is not of JSON type `kind` ("string" or "object").
fn other_than(kind: &'static str) -> impl Strategy<Value = Value> {
    any_json().prop_filter("another type", move |v| match kind {
        "string" => !v.is_string() && !v.is_null(),
        _ => !v.is_object() && !v.is_null(),
    })
}

fn case() -> impl Strategy<Value = Case> {
    prop_oneof![
        3 => garbage(),
        2 => truncated(),
        2 => invalid_utf8(),
        2 => deep(),
        2 => not_a_message(),
        4 => broken_envelope(),
        5 => wrong_params(),
        3 => well_formed(),
    ]
}

/// Random bytes: never a newline, never only white space.
fn garbage() -> impl Strategy<Value = Case> {
    prop::collection::vec(
        any::<u8>().prop_filter("no newline", |b| *b != b'\n'),
        1..200,
    )
    .prop_filter("not blank", |b| !b.iter().all(u8::is_ascii_whitespace))
    .prop_map(|bytes| Case {
        label: "random bytes",
        bytes,
        id: Value::Null,
        expect: Expect::ErrorAmong(&[PARSE, INVALID_REQUEST]),
    })
}

/// A well-formed request cut short.
fn truncated() -> impl Strategy<Value = Case> {
    (1u64..1000, ".{0,30}", any::<prop::sample::Index>()).prop_map(|(id, name, at)| {
        let whole = bytes_of(&request(
            id,
            "tools/call",
            json!({"name": "greet", "arguments": {"name": name}}),
        ));
        let cut = 1 + at.index(whole.len() - 1);
        Case {
            label: "truncated JSON",
            bytes: whole[..cut].to_vec(),
            id: Value::Null,
            expect: Expect::Error(PARSE),
        }
    })
}

/// A request with a byte that is never UTF-8 inside a string.
fn invalid_utf8() -> impl Strategy<Value = Case> {
    (
        1u64..1000,
        prop::sample::select(vec![0xffu8, 0xfe, 0xc0, 0x80, 0xf8]),
    )
        .prop_map(|(id, bad)| {
            let mut bytes = bytes_of(&request(id, "tasks/get", json!({"taskId": "X"})));
            let at = bytes.iter().position(|&b| b == b'X').expect("the marker");
            bytes[at] = bad;
            Case {
                label: "invalid UTF-8",
                bytes,
                id: Value::Null,
                expect: Expect::Error(PARSE),
            }
        })
}

/// Nesting past the parser's limit, in params or at the top.
fn deep() -> impl Strategy<Value = Case> {
    (129usize..20_000, any::<bool>(), any::<bool>()).prop_map(|(depth, arrays, closed)| {
        let (open, close) = if arrays { ("[", "]") } else { ("{\"a\":", "}") };
        let mut text = String::from(r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"#);
        text.push_str(&open.repeat(depth));
        text.push('1');
        if closed {
            text.push_str(&close.repeat(depth));
            text.push_str("}}");
        }
        Case {
            label: "deep nesting",
            bytes: text.into_bytes(),
            id: Value::Null,
            expect: Expect::Error(PARSE),
        }
    })
}

/// JSON that is not an object: scalars, arrays, batches.
fn not_a_message() -> impl Strategy<Value = Case> {
    prop_oneof![
        any_json().prop_filter("not an object", |v| !v.is_object()),
        (1u64..1000).prop_map(|id| json!([request(id, "ping", json!({}))])),
    ]
    .prop_map(|value| Case {
        label: "not one message",
        bytes: bytes_of(&value),
        id: Value::Null,
        expect: Expect::Error(INVALID_REQUEST),
    })
}

/// A request with its `jsonrpc`, `method`, `id` or `params` member wrong.
fn broken_envelope() -> impl Strategy<Value = Case> {
    let member = prop::sample::select(vec!["jsonrpc", "method", "id", "params", "no method"]);
    (1u64..1000, member, any_json()).prop_filter_map("a broken member", |(id, member, value)| {
        let mut message = request(id, "ping", json!({}));
        let mut answer_id = json!(id);
        match member {
            "jsonrpc" if value != json!("2.0") => message["jsonrpc"] = value,
            "method" if !value.is_string() => message["method"] = value,
            "id" if !(value.is_string() || value.is_i64() || value.is_u64() || value.is_null()) => {
                message["id"] = value;
                answer_id = Value::Null;
            }
            "params" if !(value.is_object() || value.is_null()) => message["params"] = value,
            "no method" => {
                if let Some(fields) = message.as_object_mut() {
                    fields.remove("method");
                }
            }
            _ => return None,
        }
        Some(Case {
            label: "broken envelope",
            bytes: bytes_of(&message),
            id: answer_id,
            expect: Expect::Error(INVALID_REQUEST),
        })
    })
}

/// A known method with a field of the wrong type, or missing.
fn wrong_params() -> impl Strategy<Value = Case> {
    let fields: Vec<(&'static str, &'static str, &'static str, bool)> = vec![
        ("tasks/get", "taskId", "string", true),
        ("tasks/result", "taskId", "string", true),
        ("tasks/cancel", "taskId", "string", true),
        ("tasks/list", "cursor", "string", false),
        ("tasks/update", "inputResponses", "object", true),
        ("tools/call", "name", "string", true),
        ("tools/call", "arguments", "object", false),
        ("tools/call", "task", "object", false),
        ("tools/list", "cursor", "string", false),
        ("ping", "_meta", "object", false),
    ];
    (
        1u64..1000,
        prop::sample::select(fields),
        any::<bool>(),
        other_than("string"),
        other_than("object"),
    )
        .prop_map(
            |(id, (method, field, kind, required), drop_it, not_string, not_object)| {
                let mut params = Map::new();
                params.insert("taskId".into(), json!("0".repeat(46)));
                params.insert("name".into(), json!("greet"));
                params.insert("inputResponses".into(), json!({}));
                if drop_it && required {
                    params.remove(field);
                } else {
                    let wrong = if kind == "string" {
                        not_string
                    } else {
                        not_object
                    };
                    params.insert(field.into(), wrong);
                }
                Case {
                    label: "wrong param types",
                    bytes: bytes_of(&request(id, method, Value::Object(params))),
                    id: json!(id),
                    expect: Expect::Error(INVALID_PARAMS),
                }
            },
        )
}

/// Well-formed requests, each with its known answer.
fn well_formed() -> impl Strategy<Value = Case> {
    // No ping: 2026-07-28 removed it, and the corpus runs on both revisions.
    let call = prop::sample::select(vec!["tools/list", "greet", "unknown task", "no method"]);
    (1u64..1000, call, ".{0,40}").prop_map(|(id, call, text)| {
        let (method, params, expect) = match call {
            "tools/list" => ("tools/list", json!({}), Expect::Result),
            "greet" => (
                "tools/call",
                json!({"name": "greet", "arguments": {"name": text}}),
                Expect::Result,
            ),
            "unknown task" => (
                "tasks/get",
                json!({"taskId": "0".repeat(46)}),
                Expect::Error(INVALID_PARAMS),
            ),
            _ => ("no/such/method", json!({}), Expect::Error(METHOD_NOT_FOUND)),
        };
        Case {
            label: "well-formed",
            bytes: bytes_of(&request(id, method, params)),
            id: json!(id),
            expect,
        }
    })
}
