//! `pmcp-tasks serve` under hostile and careless traffic, with raw bytes
//! rather than an SDK: no input ends the server, every bad request gets
//! its JSON-RPC error with the status the transport names, idle and
//! half-sent connections are closed, credentials never rest.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use pmcp_tasks_tests::corpus::{corpus, Case};
use pmcp_tasks_tests::mcp_http::{self, post, request_meta, RawResponse};
use pmcp_tasks_tests::replica::Replica;
use pmcp_tasks_tests::stdio::StdioServer;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::binary;

const UNKNOWN_ID: &str = "0000000000000000000000000000000000000000000000";

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

/// The JSON-RPC error of a response whose body is one JSON message.
fn error_of(response: &RawResponse) -> Value {
    let message: Value = serde_json::from_slice(&response.body).unwrap_or_else(|_| {
        panic!(
            "status {}: not a JSON-RPC body: {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        )
    });
    assert_eq!(message["jsonrpc"], "2.0", "{message}");
    message["error"].clone()
}

// ---- stdio ----------------------------------------------------------------

/// Starts a 2025-11-25 `slow_compute` task of `seconds`; its id.
fn start_slow_task(server: &mut StdioServer, seconds: u64) -> String {
    let created = server.request(
        "tools/call",
        json!({"name": "slow_compute", "arguments": {"seconds": seconds}, "task": {}}),
    );
    created["result"]["task"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("a task: {created}"))
        .to_owned()
}

#[test]
fn a_line_of_invalid_utf8_gets_a_parse_error_and_running_tasks_live_on() {
    let mut server = StdioServer::start_2025(binary(), &[]);
    let id = start_slow_task(&mut server, 1);
    server.send(
        b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\",\"params\":{\"x\":\"\xff\"}}",
    );
    let refused = server.receive();
    assert_eq!(refused["error"]["code"], -32700, "{refused}");
    assert_eq!(refused["id"], Value::Null);
    let listed = server.request("tools/list", json!({}));
    assert!(listed["result"]["tools"].is_array(), "{listed}");
    let result = server.request("tasks/result", json!({"taskId": id}));
    assert!(
        result["result"]["content"].is_array(),
        "the task ran to its end: {result}"
    );
    assert!(server.is_running());
    assert!(
        server.finish().success(),
        "the server ends only with its input"
    );
}

#[test]
fn malformed_deep_and_oversized_lines_on_stdio_get_their_errors() {
    let mut server = StdioServer::start_2025(binary(), &[]);
    let deep = "[".repeat(10_000);
    let huge = format!("{{\"x\":\"{}\"}}", "a".repeat(5 * 1024 * 1024));
    let cases: [(&[u8], i64); 6] = [
        (b"{", -32700),
        (b"not json at all", -32700),
        (deep.as_bytes(), -32700),
        (
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"} trailing",
            -32700,
        ),
        (
            b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]",
            -32600,
        ),
        (huge.as_bytes(), -32600),
    ];
    for (line, code) in cases {
        server.send(line);
        let answer = server.receive();
        assert_eq!(answer["error"]["code"], code, "{answer}");
        assert_eq!(answer["id"], Value::Null, "{answer}");
    }
    let pong = server.request("ping", json!({}));
    assert!(pong.get("result").is_some(), "{pong}");
}

#[test]
fn stdio_tool_arguments_are_checked_before_a_task_exists() {
    let mut server = StdioServer::start_2025(binary(), &[]);
    let cases = [
        (
            json!({"name": "slow_compute", "arguments": {"seconds": "abc"}, "task": {}}),
            "seconds",
        ),
        (
            json!({"name": "slow_compute", "arguments": "x", "task": {}}),
            "params.arguments",
        ),
        (json!({"name": "greet", "arguments": {"name": 5}}), "name"),
    ];
    for (params, names) in cases {
        let answer = server.request("tools/call", params.clone());
        assert_eq!(answer["error"]["code"], -32602, "{params}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(names), "{params}: {answer}");
    }
    let listed = server.request("tasks/list", json!({}));
    assert_eq!(
        listed["result"]["tasks"],
        json!([]),
        "no task was made: {listed}"
    );
}

/// Runs the corpus over stdio; every 20th message a well-behaved request
/// about a live task, which must keep succeeding.
#[test]
fn the_malformed_corpus_over_stdio_gets_an_answer_for_every_message() {
    let mut server = StdioServer::start_2025(binary(), &[]);
    let task = start_slow_task(&mut server, 600);
    let cases = corpus(1_500, 23);
    let mut codes = BTreeMap::new();
    for (n, case) in cases.iter().enumerate() {
        server.send(&case.bytes);
        let answer = server.receive();
        if let Err(reason) = case.check(&answer) {
            panic!(
                "case {n} ({}): {reason}\nsent: {}",
                case.label,
                String::from_utf8_lossy(&case.bytes)
            );
        }
        *codes
            .entry(answer["error"]["code"].as_i64().unwrap_or(0))
            .or_insert(0) += 1;
        if n % 20 == 0 {
            let seen = server.request("tasks/get", json!({"taskId": task}));
            assert_eq!(
                seen["result"]["status"], "working",
                "after case {n}: {seen}"
            );
        }
    }
    report("stdio", cases.len(), &codes);
    let cancelled = server.request("tasks/cancel", json!({"taskId": task}));
    assert_eq!(cancelled["result"]["status"], "cancelled", "{cancelled}");
    assert!(server.is_running());
}

fn report(transport: &str, messages: usize, codes: &BTreeMap<i64, usize>) {
    let errors: Vec<String> = codes
        .iter()
        .map(|(code, n)| match code {
            0 => format!("{n} results"),
            code => format!("{n} x {code}"),
        })
        .collect();
    eprintln!(
        "corpus over {transport}: {messages} messages, {} distinct error codes: {}",
        codes.keys().filter(|c| **c != 0).count(),
        errors.join(", ")
    );
}

// ---- HTTP -------------------------------------------------------------------

fn http_server(serve: &[&str]) -> Replica {
    Replica::start(binary(), &["--backend", "memory"], serve)
}

/// The corpus case as a 2026-07-28 POST: the request metadata joins its
/// params when they are an object without `_meta`.
fn http_body(case: &Case) -> (Vec<u8>, Vec<(String, String)>) {
    let Ok(mut message) = serde_json::from_slice::<Value>(&case.bytes) else {
        return (case.bytes.clone(), Vec::new());
    };
    let mut extra = Vec::new();
    if let Some(method) = message.get("method").and_then(Value::as_str) {
        extra.push(("mcp-method".to_owned(), method.to_owned()));
    }
    if let Some(params) = message.get_mut("params").and_then(Value::as_object_mut) {
        let name = params.get("name").or_else(|| params.get("taskId"));
        if let Some(name) = name.and_then(Value::as_str) {
            extra.push(("mcp-name".to_owned(), name.to_owned()));
        }
        params.entry("_meta").or_insert_with(request_meta);
    }
    (message.to_string().into_bytes(), extra)
}

/// The HTTP status the transport names for an answer (checked against
/// the case's expectation before).
fn status_for(answer: &Value) -> u16 {
    match answer.pointer("/error/code").and_then(Value::as_i64) {
        Some(-32700 | -32600) => 400,
        Some(-32601) => 404,
        _ => 200,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_malformed_corpus_over_http_gets_an_answer_for_every_message() {
    let server = http_server(&[]);
    // A well-behaved client alongside: its task calls keep succeeding.
    let url = server.url.clone();
    let stop = tokio_util_stop();
    let alongside = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut calls = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let created = mcp_http::call(
                    &url,
                    "tools/call",
                    json!({"name": "slow_compute", "arguments": {"seconds": 0.05}}),
                )
                .await
                .expect("tools/call alongside");
                let id = created["taskId"].as_str().expect("a task").to_owned();
                let seen = mcp_http::call(&url, "tasks/get", json!({"taskId": id}))
                    .await
                    .expect("tasks/get alongside");
                assert_eq!(seen["taskId"], id.as_str());
                calls += 2;
            }
            calls
        })
    };
    let cases = corpus(1_500, 61);
    let mut codes = BTreeMap::new();
    for (n, case) in cases.iter().enumerate() {
        let (body, extra) = http_body(case);
        let response = post(&server.url, &extra, body).await.expect("an answer");
        let answer = response.message(&case.id).unwrap_or_else(|| {
            panic!(
                "case {n} ({}): no JSON-RPC message in {response:?}",
                case.label
            )
        });
        if let Err(reason) = case.check(&answer) {
            panic!(
                "case {n} ({}): {reason}\nsent: {}",
                case.label,
                String::from_utf8_lossy(&case.bytes)
            );
        }
        assert_eq!(
            response.status,
            status_for(&answer),
            "case {n} ({}): {answer}",
            case.label
        );
        *codes
            .entry(answer["error"]["code"].as_i64().unwrap_or(0))
            .or_insert(0) += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let calls = alongside
        .await
        .expect("the well-behaved client saw no failure");
    report("HTTP", cases.len(), &codes);
    eprintln!("the well-behaved client made {calls} calls alongside, all answered");
    assert!(calls > 0);
}

fn tokio_util_stop() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_param_types_over_http_are_invalid_params_naming_the_field() {
    let server = http_server(&[]);
    let mut cases = Vec::new();
    for method in ["tasks/get", "tasks/cancel"] {
        for bad in [json!(1), Value::Null, json!({}), json!([])] {
            cases.push((method, json!({"taskId": bad}), "taskId"));
        }
        cases.push((method, json!({}), "taskId"));
    }
    cases.extend([
        (
            "tasks/update",
            json!({"taskId": UNKNOWN_ID}),
            "inputResponses",
        ),
        (
            "tasks/update",
            json!({"taskId": UNKNOWN_ID, "inputResponses": "yes"}),
            "inputResponses",
        ),
        ("tools/call", json!({"name": 5}), "name"),
        ("tools/call", json!({"arguments": {}}), "name"),
        (
            "tools/call",
            json!({"name": "greet", "arguments": "x"}),
            "arguments",
        ),
        (
            "tools/call",
            json!({"name": "greet", "arguments": [1]}),
            "arguments",
        ),
    ]);
    assert_eq!(cases.len(), 16);
    for (method, mut params, field) in cases {
        params["_meta"] = request_meta();
        let body = json!({"jsonrpc": "2.0", "id": 9, "method": method, "params": params});
        let extra = headers(&[("mcp-method", method)]);
        let response = post(&server.url, &extra, body.to_string().into_bytes())
            .await
            .unwrap();
        let answer = response.message(&json!(9)).expect("a JSON-RPC answer");
        assert_eq!(
            answer["error"]["code"], -32602,
            "{method} {params}: {answer}"
        );
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{method} {params}: {answer}");
        assert_eq!(response.status, 200, "{method} {params}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_requests_over_http_get_json_rpc_errors_with_status_400() {
    let server = http_server(&[]);
    let deep = "[".repeat(10_000);
    let ping = |members: &str| format!("{{\"jsonrpc\":\"2.0\",\"method\":\"ping\"{members}}}");
    let cases: Vec<(Vec<u8>, i64)> = vec![
        (b"{".to_vec(), -32700),
        (Vec::new(), -32700),
        (
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"} x".to_vec(),
            -32700,
        ),
        (
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\xffng\"}".to_vec(),
            -32700,
        ),
        (deep.into_bytes(), -32700),
        (b"not json".to_vec(), -32700),
        (b"42".to_vec(), -32600),
        (b"\"hi\"".to_vec(), -32600),
        (b"null".to_vec(), -32600),
        (b"[]".to_vec(), -32600),
        (b"true".to_vec(), -32600),
        (format!("[{}]", ping(",\"id\":1")).into_bytes(), -32600),
        (b"{\"id\":1,\"method\":\"ping\"}".to_vec(), -32600),
        (
            b"{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}".to_vec(),
            -32600,
        ),
        (
            b"{\"jsonrpc\":2,\"id\":1,\"method\":\"ping\"}".to_vec(),
            -32600,
        ),
        (
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}".to_vec(),
            -32600,
        ),
        (b"{\"jsonrpc\":\"2.0\",\"id\":1}".to_vec(), -32600),
        (ping(",\"id\":{\"a\":1}").into_bytes(), -32600),
        (ping(",\"id\":[1]").into_bytes(), -32600),
        (ping(",\"id\":1.5").into_bytes(), -32600),
        (ping(",\"id\":1,\"params\":[1,2]").into_bytes(), -32600),
        (ping(",\"id\":1,\"params\":\"p\"").into_bytes(), -32600),
        (ping(",\"id\":1,\"params\":3").into_bytes(), -32600),
    ];
    assert_eq!(cases.len(), 23);
    for (body, code) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        let response = post(&server.url, &headers(&[("mcp-method", "ping")]), body)
            .await
            .unwrap();
        assert_eq!(response.status, 400, "{shown}: {response:?}");
        let error = error_of(&response);
        assert_eq!(error["code"], code, "{shown}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_origin_is_forbidden_and_a_loopback_page_is_served() {
    let server = http_server(&[]);
    // 2026-07-28 has no ping: tools/list is the plain request.
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": request_meta()}});
    for (origin, status) in [
        ("http://evil.example", 403),
        ("null", 403),
        ("http://localhost.evil.example:80", 403),
        ("http://localhost:5173", 200),
    ] {
        let extra = headers(&[("origin", origin), ("mcp-method", "tools/list")]);
        let response = post(&server.url, &extra, body.to_string().into_bytes())
            .await
            .unwrap();
        assert_eq!(response.status, status, "{origin}: {response:?}");
        if status == 403 {
            assert_eq!(error_of(&response)["code"], -32600);
        }
    }
    let allowed = http_server(&["--allow-origin", "https://app.example"]);
    let extra = headers(&[
        ("origin", "https://app.example"),
        ("mcp-method", "tools/list"),
    ]);
    let response = post(&allowed.url, &extra, body.to_string().into_bytes())
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{response:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lowercase_bearer_scheme_is_the_same_owner_and_unusable_credentials_get_401() {
    let server = http_server(&["--insecure-token-owners"]);
    let create = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "slow_compute", "arguments": {"seconds": 60}, "_meta": request_meta()},
    });
    let extra = headers(&[
        ("authorization", "bearer T0ken-1"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "slow_compute"),
    ]);
    let response = post(&server.url, &extra, create.to_string().into_bytes())
        .await
        .unwrap();
    let created = response.message(&json!(1)).expect("an answer");
    let id = created["result"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("a task: {created}"))
        .to_owned();
    let as_owner = mcp_http::call_as(
        &server.url,
        Some("T0ken-1"),
        "tasks/get",
        json!({"taskId": id}),
    )
    .await;
    assert_eq!(as_owner.expect("the same owner")["status"], "working");
    let anonymous = mcp_http::call(&server.url, "tasks/get", json!({"taskId": id})).await;
    assert_eq!(
        anonymous.expect_err("not the anonymous owner")["code"],
        -32602
    );
    for authorization in [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        "bearer a b",
        "Token T0ken-1",
    ] {
        for method in ["tools/call", "tasks/cancel"] {
            let body = json!({
                "jsonrpc": "2.0", "id": 2, "method": method,
                "params": {"name": "slow_compute", "taskId": id, "arguments": {"seconds": 1}, "_meta": request_meta()},
            });
            let extra = headers(&[("authorization", authorization), ("mcp-method", method)]);
            let response = post(&server.url, &extra, body.to_string().into_bytes())
                .await
                .unwrap();
            assert_eq!(response.status, 401, "{authorization}: {response:?}");
            let challenge = response
                .headers
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok());
            assert!(
                challenge.is_some_and(|c| c.starts_with("Bearer ")),
                "{authorization}: {response:?}"
            );
            assert!(error_of(&response)["code"].is_i64());
        }
    }
    let still = mcp_http::call_as(
        &server.url,
        Some("T0ken-1"),
        "tasks/get",
        json!({"taskId": id}),
    )
    .await;
    assert_eq!(still.expect("untouched")["status"], "working");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_tool_arguments_are_checked_against_the_input_schema() {
    let server = http_server(&[]);
    let refused = mcp_http::call(
        &server.url,
        "tools/call",
        json!({"name": "slow_compute", "arguments": {"seconds": "abc"}}),
    )
    .await
    .expect_err("invalid arguments");
    assert_eq!(refused["code"], -32602, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains("seconds"),
        "{refused}"
    );
}

/// Reads until the server closes the connection (true) or `deadline`.
async fn closed_by_server(stream: &mut TcpStream, deadline: Instant) -> bool {
    let mut buffer = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_sent_connections_are_closed() {
    let server = http_server(&["--header-timeout-ms", "500", "--body-timeout-ms", "500"]);
    let mut connections = Vec::new();
    for n in 0..60 {
        let mut stream = TcpStream::connect(&server.address).await.unwrap();
        match n % 3 {
            0 => {}
            1 => stream
                .write_all(b"POST /mcp HTTP/1.1\r\nhost: x\r\ncontent-")
                .await
                .unwrap(),
            _ => {
                let head = "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
                            accept: application/json, text/event-stream\r\ncontent-length: 100\r\n\r\n{\"json";
                stream.write_all(head.as_bytes()).await.unwrap();
            }
        }
        connections.push(stream);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for (n, stream) in connections.iter_mut().enumerate() {
        assert!(
            closed_by_server(stream, deadline).await,
            "connection {n} is still open"
        );
    }
    let pong = mcp_http::call(&server.url, "tools/list", json!({})).await;
    assert!(pong.is_ok(), "{pong:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_for_a_free_slot() {
    let server = http_server(&["--max-connections", "4", "--header-timeout-ms", "60000"]);
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(&server.address).await.unwrap());
    }
    // Let the server take the four before the fifth comes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let url = server.url.clone();
    let fifth = tokio::spawn(async move { mcp_http::call(&url, "tools/list", json!({})).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !fifth.is_finished(),
        "a fifth connection was served while four held every slot"
    );
    drop(idle.pop());
    let pong = tokio::time::timeout(Duration::from_secs(20), fifth).await;
    assert!(
        matches!(pong, Ok(Ok(Ok(_)))),
        "served once a slot was free: {pong:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_outlives_running_out_of_file_descriptors() {
    let mut launcher = Command::new("sh");
    launcher
        .args(["-c", "ulimit -n 64 && exec \"$@\"", "sh"])
        .arg(binary());
    let mut server = Replica::start_command(
        launcher,
        &["--backend", "memory"],
        &["--header-timeout-ms", "1000"],
    );
    let mut held = Vec::new();
    for _ in 0..100 {
        match TcpStream::connect(&server.address).await {
            Ok(stream) => held.push(stream),
            Err(_) => break,
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        server.is_running(),
        "the server ended when it ran out of file descriptors"
    );
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if mcp_http::call(&server.url, "tools/list", json!({}))
            .await
            .is_ok()
        {
            break;
        }
        assert!(server.is_running(), "the server ended");
        assert!(
            Instant::now() < deadline,
            "not serving again 30 s after the connections closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(server.is_running());
}

/// After a workload with bearer tokens through two replicas on Redis,
/// nothing stored anywhere (keys, values, hash fields, index members)
/// contains a token.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_bearer_token_is_stored_in_redis() {
    use pmcp_tasks_tests::redis::RedisServer;
    let redis = RedisServer::start();
    let replica =
        |name: &str| super::redis_replica_with(&redis, name, "30000", &["--insecure-token-owners"]);
    let (a, b) = (replica("a"), replica("b"));
    let tokens = ["tok-SECRET-alpha-7f3a", "tok-SECRET-beta-91c2"];
    for (n, token) in tokens.iter().enumerate() {
        let url = if n == 0 { &a.url } else { &b.url };
        let mut ids = Vec::new();
        for seconds in [0.01, 60.0, 60.0] {
            let created = mcp_http::call_as(
                url,
                Some(token),
                "tools/call",
                json!({"name": "slow_compute", "arguments": {"seconds": seconds}}),
            )
            .await
            .expect("tools/call");
            ids.push(created["taskId"].as_str().expect("a task").to_owned());
        }
        let asked = mcp_http::call_as(
            url,
            Some(token),
            "tools/call",
            json!({"name": "confirm_delete", "arguments": {"path": "/tmp/x"}}),
        )
        .await
        .expect("tools/call");
        let asking = asked["taskId"].as_str().expect("a task").to_owned();
        for id in &ids {
            mcp_http::call_as(&b.url, Some(token), "tasks/get", json!({"taskId": id}))
                .await
                .expect("tasks/get");
        }
        mcp_http::call_as(
            &a.url,
            Some(token),
            "tasks/cancel",
            json!({"taskId": ids[1]}),
        )
        .await
        .expect("tasks/cancel");
        let deadline = Instant::now() + Duration::from_secs(20);
        while mcp_http::call_as(&b.url, Some(token), "tasks/get", json!({"taskId": asking}))
            .await
            .expect("tasks/get")["status"]
            != "input_required"
        {
            assert!(Instant::now() < deadline, "the task asked for input");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let responses = json!({"confirm": {"action": "accept", "content": {"confirm": true}}});
        mcp_http::call_as(
            &a.url,
            Some(token),
            "tasks/update",
            json!({"taskId": asking, "inputResponses": responses}),
        )
        .await
        .expect("tasks/update");
    }
    let stored = redis.everything_stored().await;
    assert!(
        stored.len() > 10,
        "the workload stored something: {} items",
        stored.len()
    );
    for token in tokens {
        let leaked = stored
            .iter()
            .find(|bytes| bytes.windows(token.len()).any(|w| w == token.as_bytes()));
        assert!(
            leaked.is_none(),
            "{token} is stored: {}",
            String::from_utf8_lossy(leaked.unwrap_or(&Vec::new()))
        );
    }
}
