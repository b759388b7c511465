//! Owners from verified identity, through real `pmcp-tasks serve`
//! processes: JWT access tokens against an issuer's JWKS (made by the
//! harness), a static token file, a trusted proxy header; the refusals
//! (401 with the challenge naming the RFC 9728 metadata) and the refusal
//! to serve a non-loopback address without authentication.

use pmcp_tasks_tests::jwt::{self, Issuer};
use pmcp_tasks_tests::mcp_http::{self, request_meta, CoreSession, RawResponse};
use pmcp_tasks_tests::replica::Replica;
use serde_json::{json, Value};

use super::binary;

/// The resource URI every replica of the deployment names (the public URL
/// behind the load balancer), and so the audience of its tokens.
const RESOURCE: &str = "http://mcp.test/mcp";
const ISSUER: &str = "https://issuer.test";

fn jwt_serve_args(issuer: &Issuer) -> Vec<String> {
    [
        "--auth-jwks",
        issuer.jwks_path.to_str().expect("a UTF-8 path"),
        "--auth-issuer",
        ISSUER,
        "--resource",
        RESOURCE,
        "--auth-jwks-refresh-ms",
        "0",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// Two replicas of one deployment on `redis`, verifying `issuer`'s tokens.
#[cfg(feature = "redis")]
fn jwt_replicas(
    redis: &pmcp_tasks_tests::redis::RedisServer,
    issuer: &Issuer,
) -> (Replica, Replica) {
    let args = jwt_serve_args(issuer);
    let backend = redis.url();
    let replica = |name: &str| {
        let mut serve = strs(&args);
        serve.extend(["--replica", name]);
        Replica::start(
            binary(),
            &["--backend", &backend, "--cursor-secret", "one deployment"],
            &serve,
        )
    };
    (replica("a"), replica("b"))
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// A task-augmented call of the slow tool as `token`: the raw response.
async fn create_as(url: &str, authorization: Option<&str>) -> RawResponse {
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "slow_compute", "arguments": {"seconds": 60}, "_meta": request_meta()},
    });
    let mut headers = vec![
        ("mcp-method".to_owned(), "tools/call".to_owned()),
        ("mcp-name".to_owned(), "slow_compute".to_owned()),
    ];
    if let Some(value) = authorization {
        headers.push(("authorization".to_owned(), value.to_owned()));
    }
    mcp_http::post(url, &headers, body.to_string().into_bytes())
        .await
        .expect("the server answered")
}

fn task_id(result: &Value) -> String {
    result["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("a task: {result}"))
        .to_owned()
}

/// The response refused the request with 401 and a Bearer challenge that
/// names the resource metadata.
fn assert_challenged(response: &RawResponse, case: &str) {
    assert_eq!(response.status, 401, "{case}: {response:?}");
    let challenge = response
        .headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer ")
            && challenge.contains(
                "resource_metadata=\"http://mcp.test/.well-known/oauth-protected-resource/mcp\""
            ),
        "{case}: {challenge}"
    );
}

/// One replica on memory with JWT auth: the refusals, the metadata, key
/// rotation, and that no refused token created a task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_access_tokens_are_verified_as_a_resource_server() {
    let mut issuer = Issuer::new(ISSUER);
    let args = jwt_serve_args(&issuer);
    let server = Replica::start(binary(), &["--backend", "memory"], &strs(&args));

    let metadata = mcp_http::send_to(
        &server.url,
        "/.well-known/oauth-protected-resource/mcp",
        "GET",
        &[],
        Vec::new(),
    )
    .await
    .expect("the metadata");
    assert_eq!(metadata.status, 200, "{metadata:?}");
    let document: Value = serde_json::from_slice(&metadata.body).expect("JSON");
    assert_eq!(document["resource"], RESOURCE);
    assert_eq!(document["authorization_servers"], json!([ISSUER]));

    assert_challenged(&create_as(&server.url, None).await, "no token");

    let alice = issuer.claims("alice", RESOURCE, 600);
    let valid = issuer.token(&alice);
    let other_issuer = Issuer::new("https://elsewhere.test");
    let mut wrong_issuer = other_issuer.claims("alice", RESOURCE, 600);
    wrong_issuer["iss"] = json!("https://elsewhere.test");
    let forged = [
        (
            "wrong audience",
            issuer.token(&issuer.claims("alice", "http://other.test/mcp", 600)),
        ),
        ("wrong issuer", issuer.token(&wrong_issuer)),
        (
            "issuer's name, another key",
            other_issuer.token(&issuer.claims("alice", RESOURCE, 600)),
        ),
        (
            "expired",
            issuer.token(&issuer.claims("alice", RESOURCE, -120)),
        ),
        (
            "bad signature",
            jwt::tampered(&valid, &issuer.claims("mallory", RESOURCE, 600)),
        ),
        ("alg none", jwt::unsigned(&alice)),
        (
            "HMAC keyed by the public key",
            issuer.hmac_signed_with_public_key(&alice),
        ),
        (
            "malformed header",
            format!("e30.{}", valid.split_once('.').expect("a JWT").1),
        ),
        ("not a JWT", "abc.def.ghi".to_owned()),
        // RFC 9068 section 4: an ID token of the same issuer and audience
        // (typed JWT), an untyped token and another type are no access tokens.
        ("typ JWT", issuer.token_typed(&alice, Some("JWT"))),
        ("no typ", issuer.token_typed(&alice, None)),
        ("typ JOSE", issuer.token_typed(&alice, Some("JOSE"))),
    ];
    for (case, token) in &forged {
        let response = create_as(&server.url, Some(&format!("Bearer {token}"))).await;
        assert_challenged(&response, case);
        let challenge = response.headers["www-authenticate"].to_str().unwrap_or("");
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{case}: {challenge}"
        );
        assert!(
            !challenge.contains(token.as_str()),
            "{case}: the token is echoed"
        );
    }

    let created = mcp_http::call_as(
        &server.url,
        Some(&valid),
        "tools/call",
        json!({"name": "slow_compute", "arguments": {"seconds": 60}}),
    )
    .await
    .expect("a valid token is served");
    let id = task_id(&created);
    // No refused request made a task: Alice (whom most forgeries named)
    // holds exactly the one she made.
    let session = CoreSession::open(&server.url, Some(&valid))
        .await
        .expect("a 2025 session");
    let listed = session
        .call(&server.url, "tasks/list", json!({}))
        .await
        .expect("tasks/list");
    let ids: Vec<&str> = listed["tasks"]
        .as_array()
        .map(|tasks| tasks.iter().filter_map(|t| t["taskId"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, [id.as_str()], "{listed}");
    // Mallory's tampered token named `mallory`: had it been served, that
    // owner would hold a task.
    let mallory = issuer.token(&issuer.claims("mallory", RESOURCE, 600));
    let foreign = mcp_http::call_as(
        &server.url,
        Some(&mallory),
        "tasks/get",
        json!({"taskId": id}),
    )
    .await
    .expect_err("another subject");
    assert_eq!(foreign["code"], -32602);
    let theirs = CoreSession::open(&server.url, Some(&mallory))
        .await
        .expect("a 2025 session")
        .call(&server.url, "tasks/list", json!({}))
        .await
        .expect("tasks/list");
    assert_eq!(theirs["tasks"], json!([]), "{theirs}");

    // The issuer rotates its key: a token naming the new key is read
    // after the server fetches the set again (an unknown kid).
    issuer.rotate();
    let rotated = issuer.token(&issuer.claims("alice", RESOURCE, 600));
    let seen = mcp_http::call_as(
        &server.url,
        Some(&rotated),
        "tasks/get",
        json!({"taskId": id}),
    )
    .await
    .expect("the rotated key is fetched");
    assert_eq!(seen["status"], "working");
}

/// Two replicas on one Redis, JWT auth on both: a refreshed token (new
/// `jti`, later `exp`) sees and cancels on B what the first made on A; a
/// token of another subject sees none of it on either replica; and no
/// refused request stored anything.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refreshed_token_keeps_its_tasks_on_every_replica() {
    use pmcp_tasks_tests::redis::RedisServer;
    let redis = RedisServer::start();
    let issuer = Issuer::new(ISSUER);
    let (a, b) = jwt_replicas(&redis, &issuer);
    let first = issuer.token(&issuer.claims("alice", RESOURCE, 300));
    let created = mcp_http::call_as(
        &a.url,
        Some(&first),
        "tools/call",
        json!({"name": "slow_compute", "arguments": {"seconds": 60}}),
    )
    .await
    .expect("tools/call on A");
    let id = task_id(&created);
    // The worker's first write (its progress) lands before the snapshot,
    // so that only a refused request could change the store after it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let seen = mcp_http::call_as(&a.url, Some(&first), "tasks/get", json!({"taskId": id}))
            .await
            .expect("tasks/get on A");
        if seen.get("statusMessage").is_some() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no progress: {seen}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let before = redis.everything_stored().await;
    let bob = issuer.token(&issuer.claims("bob", RESOURCE, 600));
    for url in [&a.url, &b.url] {
        for method in ["tasks/get", "tasks/cancel"] {
            let refused = mcp_http::call_as(url, Some(&bob), method, json!({"taskId": id}))
                .await
                .expect_err("another subject");
            assert_eq!(refused["code"], -32602, "{method}: {refused}");
        }
        let expired = issuer.token(&issuer.claims("alice", RESOURCE, -300));
        assert_challenged(
            &create_as(url, Some(&format!("Bearer {expired}"))).await,
            "expired",
        );
        assert_challenged(&create_as(url, None).await, "no token");
    }
    assert_eq!(
        redis.everything_stored().await,
        before,
        "a refused request changed the store"
    );

    let refreshed = issuer.token(&issuer.claims("alice", RESOURCE, 3600));
    assert_ne!(first, refreshed);
    let seen = mcp_http::call_as(&b.url, Some(&refreshed), "tasks/get", json!({"taskId": id}))
        .await
        .expect("the refreshed token sees it on B");
    assert_eq!(seen["status"], "working");
    mcp_http::call_as(
        &b.url,
        Some(&refreshed),
        "tasks/cancel",
        json!({"taskId": id}),
    )
    .await
    .expect("the refreshed token cancels it on B");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let status = mcp_http::call_as(&a.url, Some(&first), "tasks/get", json!({"taskId": id}))
            .await
            .expect("tasks/get")["status"]
            .clone();
        if status == "cancelled" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {status}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The Python SDK's 2025 flows with a JWT access token, through the
/// round-robin proxy to two replicas on one Redis.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_runs_with_an_access_token_through_two_replicas() {
    use pmcp_tasks_tests::redis::RedisServer;
    use pmcp_tasks_tests::round_robin::RoundRobin;
    let redis = RedisServer::start();
    let issuer = Issuer::new(ISSUER);
    let (a, b) = jwt_replicas(&redis, &issuer);
    let proxy = RoundRobin::start(vec![a.address.clone(), b.address.clone()]).await;
    let token = issuer.token(&issuer.claims("alice", RESOURCE, 600));
    let url = proxy.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        let script = pmcp_tasks_tests::conformance::client_script("python_core_tasks.py");
        std::process::Command::new(pmcp_tasks_tests::conformance::mcp_python())
            .arg(script)
            .arg(&url)
            .arg(&token)
            .output()
            .expect("running the Python SDK client")
    })
    .await
    .expect("the client ran");
    super::assert_client_said(&output, "task flows: ok");
}

/// A static token file: each token is its subject; an unknown token, or
/// none, gets 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_file_maps_tokens_to_subjects() {
    let path = std::env::temp_dir().join(format!("pmcp-tasks-tokens-{}", std::process::id()));
    std::fs::write(
        &path,
        "# tokens of the deployment\nalice-token-0123456789 alice\nbob-token-0123456789 bob\n",
    )
    .expect("the token file");
    let server = Replica::start(
        binary(),
        &["--backend", "memory"],
        &[
            "--auth-token-file",
            path.to_str().expect("UTF-8"),
            "--resource",
            RESOURCE,
        ],
    );
    let created = mcp_http::call_as(
        &server.url,
        Some("alice-token-0123456789"),
        "tools/call",
        json!({"name": "slow_compute", "arguments": {"seconds": 60}}),
    )
    .await
    .expect("alice's token");
    let id = task_id(&created);
    let bob = mcp_http::call_as(
        &server.url,
        Some("bob-token-0123456789"),
        "tasks/get",
        json!({"taskId": id}),
    )
    .await
    .expect_err("bob sees none of alice's");
    assert_eq!(bob["code"], -32602);
    assert_challenged(
        &create_as(&server.url, Some("Bearer carol-token-0123456789")).await,
        "unknown token",
    );
    assert_challenged(&create_as(&server.url, None).await, "no token");
    let _ = std::fs::remove_file(&path);
}

/// A trusted proxy header names the owner; a request without it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_header_names_the_owner() {
    let server = Replica::start(
        binary(),
        &["--backend", "memory"],
        &["--auth-trusted-header", "X-Authenticated-User"],
    );
    let call = |user: &str, method: &str, params: Value| {
        let mut params = params;
        params["_meta"] = request_meta();
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let name = params["name"].as_str().or(params["taskId"].as_str());
        let mut headers = vec![
            ("mcp-method".to_owned(), method.to_owned()),
            ("x-authenticated-user".to_owned(), user.to_owned()),
        ];
        headers.extend(name.map(|n| ("mcp-name".to_owned(), n.to_owned())));
        let url = server.url.clone();
        async move {
            let response = mcp_http::post(&url, &headers, body.to_string().into_bytes())
                .await
                .expect("an answer");
            response.message(&json!(1)).expect("a message")
        }
    };
    let created = call(
        "alice@example.org",
        "tools/call",
        json!({"name": "slow_compute", "arguments": {"seconds": 60}}),
    )
    .await;
    let id = task_id(&created["result"]);
    let mine = call("alice@example.org", "tasks/get", json!({"taskId": id})).await;
    assert_eq!(mine["result"]["status"], "working", "{mine}");
    let theirs = call("bob@example.org", "tasks/get", json!({"taskId": id})).await;
    assert_eq!(theirs["error"]["code"], -32602, "{theirs}");
    let none = create_as(&server.url, None).await;
    assert_eq!(none.status, 401, "{none:?}");
}

/// Without an authentication option, `serve` refuses an address other
/// than loopback before binding it.
#[test]
fn serving_beyond_loopback_needs_authentication() {
    for extra in [&[][..], &["--insecure-token-owners"][..]] {
        let output = std::process::Command::new(binary())
            .args(["--backend", "memory", "serve", "--listen", "0.0.0.0:0"])
            .args(extra)
            .output()
            .expect("running pmcp-tasks serve");
        assert!(!output.status.success(), "{extra:?}: it served");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("without authentication"),
            "{extra:?}: {stderr}"
        );
    }
}

/// The resource the metadata names is not an accepted audience (given
/// --auth-audience, no --resource): the server says so at start, naming
/// both; with them agreeing it says nothing of it.
#[test]
fn a_metadata_resource_no_token_may_name_is_warned_of_at_start() {
    let issuer = Issuer::new(ISSUER);
    let jwks = issuer.jwks_path.to_str().expect("a UTF-8 path");
    let base = ["--auth-jwks", jwks, "--auth-issuer", ISSUER];
    let warned = |server: &Replica| {
        server
            .stderr_lines()
            .iter()
            .any(|line| line.contains("which no --auth-audience accepts"))
    };
    let mut disagreeing = base.to_vec();
    disagreeing.extend(["--auth-audience", "api://tasks"]);
    let server = Replica::start(binary(), &["--backend", "memory"], &disagreeing);
    assert!(warned(&server), "{:#?}", server.stderr_lines());
    let line = server
        .stderr_lines()
        .into_iter()
        .find(|line| line.contains("which no --auth-audience accepts"))
        .unwrap_or_default();
    assert!(
        line.contains(&server.url) && line.contains("api://tasks"),
        "{line}"
    );

    for agreeing in [
        vec![
            "--auth-audience",
            "api://tasks",
            "--resource",
            RESOURCE,
            "--auth-audience",
            RESOURCE,
        ],
        vec!["--resource", RESOURCE],
        vec![],
    ] {
        let mut args = base.to_vec();
        args.extend(agreeing.iter().copied());
        let server = Replica::start(binary(), &["--backend", "memory"], &args);
        assert!(
            !warned(&server),
            "{agreeing:?}: {:#?}",
            server.stderr_lines()
        );
    }
}
