//! `pmcp-tasks gateway` in front of an upstream written with the official
//! Python SDK (FastMCP, no task support of its own:
//! `tests/mcp-clients/upstream_fixtures.py`), as real processes: the
//! conformance suite and the SDK clients through two gateways on Redis
//! behind the round-robin proxy; an upstream killed or silent mid-call; a
//! cancelled task's call cancelled upstream; a gateway killed mid-call;
//! two owners asked at once, each only their own question; a plain call's
//! question asked of nobody.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use pmcp_tasks_tests::conformance::{self, Conformance};
use pmcp_tasks_tests::mcp_http;
use pmcp_tasks_tests::replica::Replica;
use serde_json::{json, Value};

use super::{assert_client_said, binary};

/// What the operator declares of the fixture tools, as the suite expects
/// them: their task support, and that `test_tool_with_task` asks first
/// (its question is asked before its task exists).
const FIXTURE_OPTIONS: [&str; 8] = [
    "--tool-task-support",
    "greet=forbidden",
    "--tool-task-support",
    "failing_job=required",
    "--tool-task-support",
    "test_tool_with_task=required",
    "--ask-first",
    "test_tool_with_task",
];

/// A file the upstream records its events in, removed on drop.
pub(super) struct Record(PathBuf);

impl Record {
    pub(super) fn new(name: &str) -> Record {
        Record(conformance::unique_temp_path(&format!(
            "pmcp-upstream-{name}"
        )))
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.0)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// How many times the upstream recorded `event`.
    fn count(&self, event: &str) -> usize {
        self.lines().iter().filter(|l| *l == event).count()
    }

    /// Waits up to 20 s for the line `event`.
    async fn wait_for(&self, event: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.lines().iter().any(|l| l == event) {
            assert!(
                Instant::now() < deadline,
                "the upstream never recorded `{event}`: {:?}",
                self.lines()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The pids of the upstream processes started so far.
    fn upstream_pids(&self) -> Vec<String> {
        self.lines()
            .iter()
            .filter_map(|l| l.strip_prefix("ready ").map(str::to_owned))
            .collect()
    }

    /// The pid of the process that ran `slow_compute` labelled `label`.
    fn pid_running(&self, label: &str) -> String {
        self.pid_of(&format!("slow_compute {label}"))
    }

    /// The pid of the process that recorded `in PID {call}`.
    fn pid_of(&self, call: &str) -> String {
        let suffix = format!(" {call}");
        self.lines()
            .iter()
            .find_map(|l| {
                l.strip_prefix("in ")?
                    .strip_suffix(&suffix)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| panic!("no process ran {call}: {:?}", self.lines()))
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A gateway on `global` (backend, secret) with `options`, its upstream
/// (named `fixtures`) recording into `record`.
pub(super) fn gateway(global: &[&str], options: &[&str], record: &Record) -> Replica {
    let python = conformance::mcp_python();
    let script = conformance::client_script("upstream_fixtures.py");
    let mut args: Vec<&str> = options.to_vec();
    args.extend_from_slice(&FIXTURE_OPTIONS);
    args.extend_from_slice(&["--upstream-name", "fixtures", "--"]);
    args.push(python.to_str().expect("a UTF-8 path"));
    args.push(script.to_str().expect("a UTF-8 path"));
    let mut command = Command::new(binary());
    command.env("UPSTREAM_RECORD", &record.0);
    #[cfg(feature = "dynamodb")]
    command.envs(super::MOTO_ENV);
    Replica::start_subcommand(command, global, "gateway", &args)
}

/// The arguments after `pmcp-tasks` of a gateway on memory over stdio.
fn stdio_gateway_args() -> Vec<String> {
    let mut args: Vec<String> = ["--backend", "memory", "gateway"]
        .map(String::from)
        .to_vec();
    args.extend(FIXTURE_OPTIONS.map(String::from));
    args.extend(["--upstream-name", "fixtures", "--"].map(String::from));
    args.push(conformance::mcp_python().display().to_string());
    args.push(
        conformance::client_script("upstream_fixtures.py")
            .display()
            .to_string(),
    );
    args
}

/// A gateway on memory.
fn gateway_on_memory(options: &[&str], record: &Record) -> Replica {
    gateway(&["--backend", "memory"], options, record)
}

/// Calls `tool` at `url` as a client without the tasks extension (so not
/// as a task): its result.
async fn plain_call(url: &str, tool: &str, arguments: Value) -> Value {
    let no_tasks = json!({"io.modelcontextprotocol/clientCapabilities": {}});
    let params = json!({"name": tool, "arguments": arguments, "_meta": no_tasks});
    mcp_http::call(url, "tools/call", params)
        .await
        .unwrap_or_else(|e| panic!("tools/call {tool}: {e}"))
}

/// Starts `tool` as a task at `url`: its id.
async fn start_task(url: &str, tool: &str, arguments: Value) -> String {
    let created = mcp_http::call(
        url,
        "tools/call",
        json!({"name": tool, "arguments": arguments}),
    )
    .await
    .expect("tools/call");
    assert_eq!(created["resultType"], "task", "{created}");
    created["taskId"].as_str().expect("taskId").to_owned()
}

/// Starts a 600-second `slow_compute` labelled `label` as a task at `url`
/// and waits until the upstream runs it: the task's id.
async fn long_computation(url: &str, record: &Record, label: &str) -> String {
    let arguments = json!({"seconds": 600, "label": label});
    let id = start_task(url, "slow_compute", arguments).await;
    record
        .wait_for(&format!("start slow_compute {label}"))
        .await;
    id
}

/// Polls the task at `url` as `bearer` until `done` holds (at most 30 s).
async fn wait_for_task(
    url: &str,
    bearer: Option<&str>,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = mcp_http::call_as(url, bearer, "tasks/get", json!({"taskId": id}))
            .await
            .expect("tasks/get");
        if done(&got) {
            return got;
        }
        assert!(Instant::now() < deadline, "30 s and still: {got}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls the task at `url` until its status is not `from`.
async fn wait_past(url: &str, id: &str, from: &str) -> Value {
    wait_for_task(url, None, id, |t| t["status"] != from).await
}

fn kill(pid: &str) {
    let killed = Command::new("kill")
        .args(["-KILL", pid])
        .status()
        .expect("running kill");
    assert!(killed.success(), "kill -KILL {pid}");
}

fn message_of(task: &Value) -> &str {
    message_of_error(&task["error"])
}

fn message_of_error(error: &Value) -> &str {
    error["message"].as_str().unwrap_or_default()
}

/// The gateway serves stdio as `serve` does: both SDK clients' 2025-11-25
/// task flows against it, its upstream behind it over stdio too.
#[test]
fn the_sdk_clients_run_the_2025_task_flows_through_a_gateway_over_stdio() {
    let args = stdio_gateway_args();
    let output = Command::new(conformance::mcp_python())
        .arg(conformance::client_script("python_core_tasks.py"))
        .arg(binary())
        .args(&args)
        .output()
        .expect("running the Python SDK client");
    assert_client_said(&output, "task flows: ok");
    let mut node_args: Vec<&std::ffi::OsStr> = vec![binary().as_os_str()];
    node_args.extend(args.iter().map(std::ffi::OsStr::new));
    let output = conformance::run_node_client("ts_core_tasks.mjs", &node_args);
    assert_client_said(&output, "task stream: ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_killed_mid_call_fails_its_task_naming_it_and_is_started_again() {
    let record = Record::new("killed");
    let server = gateway_on_memory(&[], &record);
    let id = long_computation(&server.url, &record, "doomed").await;
    kill(&record.pid_running("doomed"));
    let ended = wait_past(&server.url, &id, "working").await;
    assert_eq!(ended["status"], "failed", "{ended}");
    assert_eq!(ended["error"]["code"], -32603, "{ended}");
    assert!(
        message_of(&ended).contains("upstream `fixtures` was lost during the call"),
        "{ended}"
    );
    // The process plain calls share, killed, is started again: a call
    // the dead process took fails, naming it; later ones are answered.
    let shared = record.upstream_pids()[0].clone();
    kill(&shared);
    let deadline = Instant::now() + Duration::from_secs(20);
    let greeted = loop {
        let answer = mcp_http::call(
            &server.url,
            "tools/call",
            json!({"name": "greet", "arguments": {"name": "again"}}),
        )
        .await;
        match answer {
            Ok(greeted) => break greeted,
            Err(e) => assert!(
                message_of_error(&e).contains("upstream `fixtures` was lost")
                    && Instant::now() < deadline,
                "{e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(greeted["content"][0]["text"], "Hello, again!", "{greeted}");
    assert_ne!(record.pid_of("greet again"), shared, "{:?}", record.lines());
}

/// A tool the operator declared idempotent (`--retry-tool`) is called
/// again when its upstream is lost mid-call, and the task completes; any
/// other tool's task fails instead (above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_tool_lost_mid_call_is_called_again() {
    let record = Record::new("retry");
    let server = gateway_on_memory(&["--retry-tool", "slow_compute"], &record);
    let arguments = json!({"seconds": 2, "label": "twice"});
    let id = start_task(&server.url, "slow_compute", arguments).await;
    record.wait_for("start slow_compute twice").await;
    kill(&record.pid_running("twice"));
    let ended = wait_past(&server.url, &id, "working").await;
    assert_eq!(ended["status"], "completed", "{ended}");
    assert_eq!(
        ended["result"]["content"][0]["text"], "twice: computed after 2.0 s",
        "{ended}"
    );
    assert_eq!(
        record.count("start slow_compute twice"),
        2,
        "{:?}",
        record.lines()
    );
}

/// An ask-first tool (`--ask-first`): its question comes back before any
/// task exists (the upstream call that asked it is stopped), and the call
/// that brings the answer becomes a task whose upstream call gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ask_first_tool_s_question_is_asked_before_its_task() {
    let record = Record::new("ask-first");
    let server = gateway_on_memory(&[], &record);
    let call = json!({"name": "test_tool_with_task", "arguments": {}});
    let round = mcp_http::call(&server.url, "tools/call", call.clone())
        .await
        .expect("round 1");
    assert_eq!(round["resultType"], "input_required", "{round}");
    assert!(round.get("taskId").is_none(), "{round}");
    let requests = round["inputRequests"].as_object().expect("inputRequests");
    assert_eq!(requests.len(), 1, "{round}");
    let (key, request) = requests.iter().next().expect("one request");
    assert_eq!(request["method"], "elicitation/create", "{round}");
    assert_eq!(
        request["params"]["message"], "What is your name?",
        "{round}"
    );
    record.wait_for("cancelled test_tool_with_task").await;
    let mut answered = call;
    answered["inputResponses"] =
        json!({ key.as_str(): {"action": "accept", "content": {"name": "Zoe"}} });
    let created = mcp_http::call(&server.url, "tools/call", answered)
        .await
        .expect("round 2");
    assert_eq!(created["resultType"], "task", "{created}");
    let id = created["taskId"].as_str().expect("taskId");
    let done = wait_past(&server.url, id, "working").await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["result"]["content"][0]["text"], "Hello, Zoe!",
        "{done}"
    );
    assert_eq!(
        record.count("start test_tool_with_task"),
        2,
        "{:?}",
        record.lines()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_silent_past_the_idle_timeout_fails_its_task() {
    let record = Record::new("silent");
    let server = gateway_on_memory(&["--upstream-idle-timeout-ms", "1500"], &record);
    let id = long_computation(&server.url, &record, "hung").await;
    let ended = wait_past(&server.url, &id, "working").await;
    assert_eq!(ended["status"], "failed", "{ended}");
    assert!(
        message_of(&ended).contains("upstream `fixtures` sent nothing for 1500 ms"),
        "{ended}"
    );
    // Given up means cancelled upstream, not left running there.
    record.wait_for("cancelled slow_compute hung").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_task_s_call_is_cancelled_upstream() {
    let record = Record::new("cancel");
    let server = gateway_on_memory(&[], &record);
    let id = long_computation(&server.url, &record, "stop-me").await;
    // The upstream's progress notification is the task's status message.
    let seen = wait_for_task(&server.url, None, &id, |t| t.get("statusMessage").is_some()).await;
    assert_eq!(seen["statusMessage"], "computing stop-me", "{seen}");
    mcp_http::call(&server.url, "tasks/cancel", json!({"taskId": id}))
        .await
        .expect("tasks/cancel");
    let ended = wait_past(&server.url, &id, "working").await;
    assert_eq!(ended["status"], "cancelled", "{ended}");
    record.wait_for("cancelled slow_compute stop-me").await;
    assert!(
        !record
            .lines()
            .iter()
            .any(|l| l == "done slow_compute stop-me"),
        "{:?}",
        record.lines()
    );
}

/// Two owners' task calls ask at once: each task carries its own question
/// only (each call runs on an upstream process of its own), and each
/// answer reaches its own call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_owners_asked_at_once_each_see_and_answer_only_their_own_question() {
    let record = Record::new("owners");
    let server = gateway_on_memory(&["--insecure-token-owners"], &record);
    let mut asked = Vec::new();
    for (owner, file) in [("alice-token", "alice.txt"), ("bob-token", "bob.txt")] {
        let created = mcp_http::call_as(
            &server.url,
            Some(owner),
            "tools/call",
            json!({"name": "confirm_delete", "arguments": {"filename": file}}),
        )
        .await
        .expect("tools/call");
        let id = created["taskId"].as_str().expect("a task").to_owned();
        asked.push((owner, file, id));
    }
    for (owner, file, id) in &asked {
        let waiting = wait_for_task(&server.url, Some(owner), id, |t| {
            t["status"] == "input_required"
        })
        .await;
        let requests = waiting["inputRequests"].as_object().expect("inputRequests");
        assert_eq!(requests.len(), 1, "{waiting}");
        let text = waiting.to_string();
        assert!(text.contains(&format!("Delete {file}?")), "{waiting}");
        for other in ["alice.txt", "bob.txt"].iter().filter(|f| *f != file) {
            assert!(!text.contains(other), "{owner} saw {other}: {waiting}");
        }
        // Alice confirms, Bob declines.
        let action = if *owner == "alice-token" {
            "accept"
        } else {
            "decline"
        };
        let answers: serde_json::Map<String, Value> = requests
            .keys()
            .map(|k| {
                (
                    k.clone(),
                    json!({"action": action, "content": {"confirm": true}}),
                )
            })
            .collect();
        mcp_http::call_as(
            &server.url,
            Some(owner),
            "tasks/update",
            json!({"taskId": id, "inputResponses": answers}),
        )
        .await
        .expect("tasks/update");
    }
    for (owner, file, id) in &asked {
        let done =
            wait_for_task(&server.url, Some(owner), id, |t| t["status"] == "completed").await;
        let verdict = if *owner == "alice-token" {
            "deleted"
        } else {
            "kept"
        };
        assert_eq!(
            done["result"]["content"][0]["text"],
            format!("{file}: {verdict}"),
            "{done}"
        );
    }
}

/// The other questions a task can ask (2026-07-28 input requests): the
/// upstream's `sampling/createMessage` and `roots/list`, sent together,
/// are the task's two input requests, and the client's answers reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_s_sampling_and_roots_requests_are_the_task_s_questions() {
    let record = Record::new("sampling");
    let server = gateway_on_memory(&[], &record);
    let id = start_task(&server.url, "summarize", json!({"text": "a long text"})).await;
    let waiting = wait_for_task(&server.url, None, &id, |t| {
        t["inputRequests"].as_object().is_some_and(|r| r.len() == 2)
    })
    .await;
    assert_eq!(waiting["status"], "input_required", "{waiting}");
    let mut answers = serde_json::Map::new();
    for (key, request) in waiting["inputRequests"].as_object().expect("requests") {
        let answer = match request["method"].as_str() {
            Some("sampling/createMessage") => {
                let asked = &request["params"]["messages"][0]["content"]["text"];
                assert_eq!(asked, "Summarize: a long text", "{request}");
                json!({"role": "assistant", "content": {"type": "text", "text": "short"},
                       "model": "test-model", "stopReason": "endTurn"})
            }
            Some("roots/list") => json!({"roots": [{"uri": "file:///work", "name": "work"}]}),
            _ => panic!("an unexpected question: {request}"),
        };
        answers.insert(key.clone(), answer);
    }
    mcp_http::call(
        &server.url,
        "tasks/update",
        json!({"taskId": id, "inputResponses": answers}),
    )
    .await
    .expect("tasks/update");
    let done = wait_for_task(&server.url, None, &id, |t| t["status"] == "completed").await;
    let text = &done["result"]["content"][0]["text"];
    assert_eq!(text, "summary: short (roots: work)", "{done}");
}

/// A plain call (the client did not declare the tasks extension, so no
/// task) has no client to ask: the upstream's question gets an error,
/// which its tool reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_call_s_question_is_asked_of_nobody() {
    let record = Record::new("plain");
    let server = gateway_on_memory(&[], &record);
    let answered = plain_call(&server.url, "confirm_delete", json!({"filename": "x"})).await;
    assert_eq!(answered["isError"], true, "{answered}");
    assert!(
        answered.to_string().contains("does not run as a task"),
        "{answered}"
    );
}

/// The tools a gateway offers follow the upstream's: after the upstream
/// says its tools changed (`notifications/tools/list_changed`, sent by a
/// call on the shared connection), the gateway lists them again, offers
/// the new tool and runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_the_upstream_adds_is_offered_and_called() {
    let record = Record::new("learn");
    let server = gateway_on_memory(&[], &record);
    let offered = |tools: &Value, name: &str| {
        tools["tools"]
            .as_array()
            .is_some_and(|all| all.iter().any(|t| t["name"] == name))
    };
    let tools = mcp_http::call(&server.url, "tools/list", json!({}))
        .await
        .expect("tools/list");
    assert!(!offered(&tools, "late_greet"), "{tools}");
    let learned = plain_call(&server.url, "learn_tool", json!({"name": "late_greet"})).await;
    assert_eq!(
        learned["content"][0]["text"], "learned late_greet",
        "{learned}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tools = mcp_http::call(&server.url, "tools/list", json!({}))
            .await
            .expect("tools/list");
        if offered(&tools, "late_greet") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway never offered the new tool: {tools}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let greeted = plain_call(&server.url, "late_greet", json!({})).await;
    assert_eq!(
        greeted["content"][0]["text"], "Hello from late_greet!",
        "{greeted}"
    );
}

/// The fixture server over Streamable HTTP on a free loopback port,
/// killed on drop.
struct HttpUpstream {
    child: std::process::Child,
    url: String,
}

impl HttpUpstream {
    fn start(record: &Record) -> HttpUpstream {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        HttpUpstream::start_on(record, port)
    }

    /// The fixture server on `port` (say, again after it stopped).
    fn start_on(record: &Record, port: u16) -> HttpUpstream {
        let child = Command::new(conformance::mcp_python())
            .arg(conformance::client_script("upstream_fixtures.py"))
            .env("UPSTREAM_RECORD", &record.0)
            .env("UPSTREAM_HTTP_PORT", port.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting the HTTP upstream");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the HTTP upstream never listened"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        HttpUpstream {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
        }
    }
}

impl Drop for HttpUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A gateway on memory in front of the upstream at `url` (named
/// `fixtures`).
fn http_gateway(url: &str) -> Replica {
    let mut args: Vec<&str> = vec!["--upstream-url", url, "--upstream-name", "fixtures"];
    args.extend_from_slice(&FIXTURE_OPTIONS);
    Replica::start_subcommand(
        Command::new(binary()),
        &["--backend", "memory"],
        "gateway",
        &args,
    )
}

/// An upstream reached over Streamable HTTP: a session per task call, so
/// its questions (two at once) reach the task, its progress is the status
/// message, and a cancel reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_over_http_runs_the_suite_s_lifecycle_and_input_scenarios() {
    let record = Record::new("http");
    let upstream = HttpUpstream::start(&record);
    let server = http_gateway(&upstream.url);
    let url = server.url.clone();
    tokio::task::spawn_blocking(move || {
        let scenarios = ["tasks-lifecycle", "tasks-mrtr-input"];
        Conformance::locate().run_scenarios(&url, "a gateway to an HTTP upstream", &scenarios)
    })
    .await
    .expect("the suite ran");
    let id = long_computation(&server.url, &record, "over-http").await;
    let seen = wait_for_task(&server.url, None, &id, |t| t.get("statusMessage").is_some()).await;
    assert_eq!(seen["statusMessage"], "computing over-http", "{seen}");
    mcp_http::call(&server.url, "tasks/cancel", json!({"taskId": id}))
        .await
        .expect("tasks/cancel");
    record.wait_for("cancelled slow_compute over-http").await;
}

/// An HTTP upstream that dies mid-call fails the task as lost, naming
/// the upstream and never showing its URL (whose query here carries a
/// secret).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_upstream_lost_mid_call_fails_its_task_without_its_url() {
    let record = Record::new("http-lost");
    let mut upstream = HttpUpstream::start(&record);
    let server = http_gateway(&format!("{}?key=hunter2", upstream.url));
    let id = long_computation(&server.url, &record, "cut-off").await;
    let _ = upstream.child.kill();
    let _ = upstream.child.wait();
    let ended = wait_past(&server.url, &id, "working").await;
    assert_eq!(ended["status"], "failed", "{ended}");
    let message = message_of(&ended);
    assert!(
        message.contains("upstream `fixtures` was lost during the call"),
        "{ended}"
    );
    // Gone before the next call: its sessions (pooled ones too) are dead.
    let id = start_task(&server.url, "slow_compute", json!({"seconds": 1})).await;
    let next = wait_past(&server.url, &id, "working").await;
    assert_eq!(next["status"], "failed", "{next}");
    assert!(message_of(&next).contains("upstream `fixtures`"), "{next}");
    for secret in ["hunter2", "127.0.0.1", "/mcp"] {
        assert!(!ended.to_string().contains(secret), "{secret}: {ended}");
        assert!(!next.to_string().contains(secret), "{secret}: {next}");
    }
}

/// An HTTP upstream restarted between calls knows none of the gateway's
/// sessions (pooled ones included): the next task call is not failed for
/// it, its session is opened again (rmcp's client re-initializes a session
/// the server answers 404 for, then sends the request once more).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_upstream_restarted_between_calls_serves_the_next_task() {
    let record = Record::new("http-restart");
    let mut upstream = HttpUpstream::start(&record);
    let server = http_gateway(&upstream.url);
    let computed = |label: &'static str| {
        let url = server.url.clone();
        async move {
            let id = start_task(&url, "slow_compute", json!({"seconds": 0, "label": label})).await;
            wait_past(&url, &id, "working").await
        }
    };
    let first = computed("before").await;
    assert_eq!(first["status"], "completed", "{first}");
    let port: u16 = upstream
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches("/mcp").parse().ok())
        .expect("the upstream's port");
    let _ = upstream.child.kill();
    let _ = upstream.child.wait();
    let _upstream = HttpUpstream::start_on(&record, port);
    let next = computed("after").await;
    assert_eq!(next["status"], "completed", "{next}");
}

#[cfg(feature = "redis")]
mod on_redis {
    use pmcp_tasks_tests::redis::RedisServer;
    use pmcp_tasks_tests::round_robin::RoundRobin;

    use super::*;

    /// A gateway replica on `redis`, leased for `lease_ms`, reaping every
    /// 300 ms.
    fn replica(redis: &RedisServer, name: &str, lease_ms: &str, record: &Record) -> Replica {
        let backend = redis.url();
        gateway(
            &["--backend", &backend, "--cursor-secret", "one deployment"],
            &super::super::redis_replica_options(name, lease_ms),
            record,
        )
    }

    /// The suite's 10 tasks scenarios and both SDK clients' 2025-11-25
    /// flows, through the proxy to two gateways with no affinity.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_suite_and_the_sdk_clients_pass_through_two_gateways_on_redis() {
        let redis = RedisServer::start();
        let (record_a, record_b) = (Record::new("a"), Record::new("b"));
        let (a, b) = (
            replica(&redis, "a", "30000", &record_a),
            replica(&redis, "b", "30000", &record_b),
        );
        let proxy = RoundRobin::start(vec![a.address.clone(), b.address.clone()]).await;
        // The clients first: their listings look for their own tasks on a
        // page of the owner's (all callers are `anonymous` here).
        super::super::core_http::run_sdk_clients(&proxy.url).await;
        let url = proxy.url.clone();
        tokio::task::spawn_blocking(move || {
            Conformance::locate().run_task_scenarios(&url, "two gateways on redis")
        })
        .await
        .expect("the suite ran");
        super::super::assert_both_served(&proxy);
        // Both upstreams served calls.
        for record in [&record_a, &record_b] {
            assert!(
                record.lines().iter().any(|l| l.starts_with("start ")),
                "{:?}",
                record.lines()
            );
        }
    }

    /// A gateway replica on `redis` whose upstream `slow_compute` is
    /// retryable, its leases 3 s, handing tasks off 300 ms after SIGTERM.
    fn retrying(redis: &RedisServer, name: &str, record: &Record) -> Replica {
        let backend = redis.url();
        let mut options = super::super::redis_replica_options(name, "3000");
        options.extend_from_slice(&[
            "--retry-tool",
            "slow_compute",
            "--claim-interval-ms",
            "100",
            "--handoff-grace-ms",
            "300",
        ]);
        gateway(
            &["--backend", &backend, "--cursor-secret", "one deployment"],
            &options,
            record,
        )
    }

    /// A rolling restart of two gateways while six retryable upstream
    /// calls run: each gateway SIGTERMed and started again in turn, the
    /// tasks handed off and their calls made again (an upstream cannot
    /// checkpoint: a call starts over); all six complete, and no call was
    /// made more than once per gateway it crossed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rolling_restart_of_two_gateways_completes_every_retryable_call() {
        let redis = RedisServer::start();
        let (record_a, record_b) = (Record::new("a"), Record::new("b"));
        let (a, b) = (
            retrying(&redis, "a", &record_a),
            retrying(&redis, "b", &record_b),
        );
        let mut ids = Vec::new();
        for n in 0..6 {
            let (url, record) = if n % 2 == 0 {
                (&a.url, &record_a)
            } else {
                (&b.url, &record_b)
            };
            let label = format!("deploy{n}");
            let arguments = json!({"seconds": 15, "label": label});
            ids.push(start_task(url, "slow_compute", arguments).await);
            record
                .wait_for(&format!("start slow_compute {label}"))
                .await;
        }
        let stop = |mut replica: Replica| async move {
            let status =
                tokio::task::spawn_blocking(move || replica.terminate(Duration::from_secs(20)))
                    .await
                    .expect("terminating");
            assert!(status.is_some_and(|s| s.success()), "{status:?}");
        };
        stop(a).await;
        let a = retrying(&redis, "a", &record_a);
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop(b).await;
        let _b = retrying(&redis, "b", &record_b);
        let mut moved = 0;
        for (n, id) in ids.iter().enumerate() {
            let deadline = Instant::now() + Duration::from_secs(90);
            let ended = loop {
                let got = mcp_http::call(&a.url, "tasks/get", json!({"taskId": id}))
                    .await
                    .expect("tasks/get");
                if got["status"] != "working" {
                    break got;
                }
                assert!(Instant::now() < deadline, "still working: {got}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            assert_eq!(ended["status"], "completed", "{ended}");
            let event = format!("start slow_compute deploy{n}");
            let calls = record_a.count(&event) + record_b.count(&event);
            // A call that finished before its gateway stopped ran once.
            assert!((1..=3).contains(&calls), "{calls} calls of deploy{n}");
            moved += usize::from(calls > 1);
        }
        assert!(moved >= 3, "only {moved} calls were made again");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_killed_gateway_s_task_is_failed_by_the_other_s_reaper() {
        let redis = RedisServer::start();
        let (record_a, record_b) = (Record::new("a"), Record::new("b"));
        let (mut a, b) = (
            replica(&redis, "a", "1500", &record_a),
            replica(&redis, "b", "1500", &record_b),
        );
        let id = long_computation(&a.url, &record_a, "orphan").await;
        a.kill();
        let killed_at = Instant::now();
        let ended = wait_past(&b.url, &id, "working").await;
        assert_eq!(ended["status"], "failed", "{ended}");
        assert!(message_of(&ended).contains("worker was lost"), "{ended}");
        // Within a few leases, not the task's whole run.
        assert!(killed_at.elapsed() < Duration::from_secs(15), "{ended}");
        // The upstream was never called again for it, on either side.
        let event = "start slow_compute orphan";
        assert_eq!(record_a.count(event) + record_b.count(event), 1);
    }
}

/// The resident set's peak and current size of process `pid`, in KiB
/// (`VmHWM`, `VmRSS`).
#[cfg(feature = "redis")]
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in {status}"))
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// An upstream tool reporting progress 100 000 times as fast as it can,
/// through a gateway on Redis: the task completes with the tool's result;
/// the gateway's status writes for it stay within one per
/// `progress_interval` (100 ms) of the flood plus a few; its memory grows
/// by less than 64 MiB; another client's plain call during the flood is
/// answered promptly; and the status messages a poller sees never go back.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_progress_flood_through_the_gateway_is_coalesced_and_starves_nobody() {
    use super::metrics::{sample, scrape};
    let redis = pmcp_tasks_tests::redis::RedisServer::start();
    let record = Record::new("flood");
    let backend = redis.url();
    let gateway = gateway(
        &["--backend", &backend],
        &["--metrics-listen", "127.0.0.1:0"],
        &record,
    );
    let metrics = gateway.metrics_address().expect("the metrics address");
    let writes_label = "pmcp_tasks_store_call_duration_seconds_count{operation=\"update-status\",backend=\"redis\",part=\"guest\"}";
    // A call first, so the upstream's process is warm and counted before.
    assert_eq!(
        plain_call(&gateway.url, "greet", json!({"name": "before"})).await["content"][0]["text"],
        "Hello, before!"
    );
    let (_, rss_before) = memory_kib(gateway.pid());
    let writes_before = sample(&scrape(&metrics).await, writes_label);

    let started = Instant::now();
    let id = start_task(&gateway.url, "flood_progress", json!({"count": 100_000})).await;
    let mut seen = Vec::new();
    let mut plain_latency = None;
    let deadline = Instant::now() + Duration::from_secs(300);
    let done = loop {
        let got = mcp_http::call(&gateway.url, "tasks/get", json!({"taskId": id}))
            .await
            .expect("tasks/get");
        if let Some(n) = got["statusMessage"]
            .as_str()
            .and_then(|m| m.strip_prefix("item "))
            .and_then(|m| m.split(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
        {
            seen.push(n);
        }
        if got["status"] != "working" {
            break got;
        }
        // Once the flood is under way, another client's plain call.
        if plain_latency.is_none() && seen.last().is_some_and(|n| *n > 100) {
            let asked = Instant::now();
            let answer = plain_call(&gateway.url, "greet", json!({"name": "during"})).await;
            plain_latency = Some(asked.elapsed());
            assert_eq!(answer["content"][0]["text"], "Hello, during!", "{answer}");
        }
        assert!(Instant::now() < deadline, "still flooding: {got}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let flood = started.elapsed();
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["result"]["content"][0]["text"], "flooded 100000",
        "{done}"
    );
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "status messages went backwards: {seen:?}"
    );
    let plain_latency = plain_latency.expect("a plain call during the flood");
    assert!(
        plain_latency < Duration::from_secs(5),
        "a plain call took {plain_latency:?} during the flood"
    );
    let writes = sample(&scrape(&metrics).await, writes_label) - writes_before;
    let bound = flood.as_millis() as f64 / 100.0 + 5.0;
    assert!(
        writes <= bound,
        "{writes} status writes for a flood of {flood:?} (bound {bound})"
    );
    let (peak, _) = memory_kib(gateway.pid());
    assert!(
        peak.saturating_sub(rss_before) < 64 * 1024,
        "the gateway grew from {rss_before} KiB to a peak of {peak} KiB"
    );
    eprintln!(
        "flood of 100 000 notifications: {flood:?}, {writes} status writes, plain call {plain_latency:?}, peak {peak} KiB from {rss_before} KiB"
    );
}

/// An upstream answer longer than the gateway reads in one message (a
/// 60 MiB line, past rmcp's 16 MiB) fails its task at once, saying so,
/// instead of waiting out the idle timeout (an hour here) for an answer
/// that was discarded; one under the line limit but over the store's
/// result limit (`--max-result-bytes`, 512 KiB here) fails at once too,
/// naming its size and the limit; and the upstream's connection goes on
/// serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_over_a_limit_fails_its_task_at_once_saying_why() {
    let record = Record::new("large");
    let gateway = gateway(
        &["--backend", "memory", "--max-result-bytes", "524288"],
        &["--upstream-idle-timeout-ms", "3600000"],
        &record,
    );
    let id = start_task(&gateway.url, "large_result", json!({"kib": 60 * 1024})).await;
    let ended = wait_past(&gateway.url, &id, "working").await;
    assert_eq!(ended["status"], "failed", "{ended}");
    let message = message_of(&ended);
    assert!(
        message.contains("a message of 6291")
            && message.contains("limit of 16777215 bytes")
            && message.contains("`fixtures`"),
        "{message}"
    );

    let id = start_task(&gateway.url, "large_result", json!({"kib": 1024})).await;
    let ended = wait_past(&gateway.url, &id, "working").await;
    assert_eq!(ended["status"], "failed", "{ended}");
    let message = message_of(&ended);
    assert!(
        message.contains("could not be stored")
            && message.contains("exceeds the limit of 524288 bytes"),
        "{message}"
    );

    let id = start_task(&gateway.url, "large_result", json!({"kib": 60})).await;
    let ended = wait_past(&gateway.url, &id, "working").await;
    assert_eq!(ended["status"], "completed", "{ended}");
    let text = ended["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(text.len(), 60 * 1024, "byte for byte");
    assert!(text.bytes().all(|b| b == b'x'));
}
