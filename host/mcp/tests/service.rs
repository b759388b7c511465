//! The task methods of both revisions, as JSON in and JSON out, over real
//! stores: one replica, and two replicas sharing one backend (a result
//! written on one replica ends a `tasks/result` waiting on the other).

use std::sync::Arc;
use std::time::Duration;

use pmcp_tasks_host::backend::{InMemoryBackend, KvBackend};
use pmcp_tasks_host::{InputRequest, StoreConfig, TaskHost};
use pmcp_tasks_mcp::{
    Caller, Revision, RpcError, ServiceConfig, TaskService, TaskStart, ToolExit, ToolOutcome,
    Worker, INVALID_PARAMS, METHOD_NOT_FOUND, MISSING_REQUIRED_CLIENT_CAPABILITY,
};
use serde_json::{json, Map, Value};
use tokio::sync::oneshot;

async fn service_over(backend: Arc<dyn KvBackend>, replica: &str) -> TaskService {
    service_with(backend, replica, Duration::from_millis(300)).await
}

/// A service whose tools have `grace` to stop once cancelled.
async fn service_with(backend: Arc<dyn KvBackend>, replica: &str, grace: Duration) -> TaskService {
    let mut config = ServiceConfig::default();
    config.replica = replica.into();
    config.cancel_grace = grace;
    service_configured(backend, config).await
}

/// A service with `config`, waiters polling every 20 ms.
async fn service_configured(backend: Arc<dyn KvBackend>, mut config: ServiceConfig) -> TaskService {
    let mut store = StoreConfig::default();
    store.cursor_secret = b"one deployment".to_vec();
    store.poll_interval = Some(Duration::from_millis(100));
    let host = TaskHost::builder()
        .backend(backend)
        .config(store)
        .build()
        .await
        .expect("host");
    config.poll_interval = Duration::from_millis(20);
    TaskService::new(host, config)
}

async fn service() -> TaskService {
    service_over(Arc::new(InMemoryBackend::new()), "a").await
}

fn caller(owner: &str, revision: Revision, declares: bool) -> Caller {
    Caller::new(owner, revision).with_tasks_extension(declares)
}

fn old(owner: &str) -> Caller {
    caller(owner, Revision::V2025_11_25, false)
}

fn new(owner: &str) -> Caller {
    caller(owner, Revision::V2026_07_28, true)
}

fn text_result(text: &str, is_error: bool) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": is_error})
}

async fn call(
    service: &TaskService,
    who: &Caller,
    method: &str,
    params: Value,
) -> Result<Value, RpcError> {
    service
        .handle(who, method, &params)
        .await
        .expect("a task method")
}

/// Starts a task whose tool finishes with what the returned sender sends.
async fn gated_task(
    service: &TaskService,
    who: &Caller,
) -> (String, oneshot::Sender<Result<Value, RpcError>>, Value) {
    let (send, receive) = oneshot::channel();
    let created = service
        .start_task(
            who,
            "slow_compute",
            Map::new(),
            TaskStart::new(),
            |_worker: Worker| async move {
                receive
                    .await
                    .unwrap_or_else(|_| Err(RpcError::internal("dropped")))
                    .map_err(ToolExit::from)
            },
        )
        .await
        .expect("start");
    let id = if who.revision() == Revision::V2025_11_25 {
        created["task"]["taskId"].as_str()
    } else {
        created["taskId"].as_str()
    }
    .expect("task id")
    .to_owned();
    (id, send, created)
}

async fn status(service: &TaskService, who: &Caller, id: &str) -> String {
    let got = call(service, who, "tasks/get", json!({"taskId": id}))
        .await
        .unwrap();
    got["status"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_2025_task_runs_to_a_blocking_result_while_get_keeps_answering() {
    let s = service().await;
    let alice = old("alice");
    let (id, finish, created) = gated_task(&s, &alice).await;
    assert_eq!(created["task"]["status"], "working");
    assert!(created["task"].get("ttl").is_some(), "2025 names it ttl");
    let waiting = {
        let (s, alice, id) = (s.clone(), alice.clone(), id.clone());
        tokio::spawn(async move { call(&s, &alice, "tasks/result", json!({"taskId": id})).await })
    };
    // tasks/result blocks; tasks/get still answers meanwhile.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !waiting.is_finished(),
        "tasks/result must block while working"
    );
    assert_eq!(status(&s, &alice, &id).await, "working");
    finish.send(Ok(text_result("42", false))).unwrap();
    let result = waiting.await.unwrap().unwrap();
    assert_eq!(result["content"][0]["text"], "42");
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
        id
    );
    assert_eq!(status(&s, &alice, &id).await, "completed");
    // Terminal: cancel is -32602; an unknown or foreign id is -32602.
    let e = call(&s, &alice, "tasks/cancel", json!({"taskId": id}))
        .await
        .unwrap_err();
    assert_eq!(e.code, INVALID_PARAMS);
    let e = call(&s, &old("mallory"), "tasks/get", json!({"taskId": id}))
        .await
        .unwrap_err();
    assert_eq!(e.code, INVALID_PARAMS);
    let e = call(&s, &alice, "tasks/result", json!({"taskId": "nope"}))
        .await
        .unwrap_err();
    assert_eq!(e.code, INVALID_PARAMS);
    let e = call(
        &s,
        &alice,
        "tasks/update",
        json!({"taskId": id, "inputResponses": {}}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, METHOD_NOT_FOUND);
    assert!(s.handle(&alice, "tools/list", &json!({})).await.is_none());
}

#[tokio::test]
async fn results_and_errors_come_back_exactly_as_the_call_would_have() {
    let s = service().await;
    let alice = old("alice");
    let (erring, finish, _) = gated_task(&s, &alice).await;
    finish.send(Ok(text_result("no such file", true))).unwrap();
    let result = call(&s, &alice, "tasks/result", json!({"taskId": erring}))
        .await
        .unwrap();
    assert_eq!(result["isError"], true);
    assert_eq!(
        status(&s, &alice, &erring).await,
        "failed",
        "2025: isError is failed"
    );
    assert_eq!(
        status(&s, &new("alice"), &erring).await,
        "completed",
        "2026: completed"
    );

    let (broken, finish, _) = gated_task(&s, &alice).await;
    let error = RpcError::new(-32000, "the job crashed").with_data(json!({"exit": 3}));
    finish.send(Err(error.clone())).unwrap();
    let e = call(&s, &alice, "tasks/result", json!({"taskId": broken}))
        .await
        .unwrap_err();
    assert_eq!(e, error);
    let got = call(&s, &new("alice"), "tasks/get", json!({"taskId": broken}))
        .await
        .unwrap();
    assert_eq!(got["status"], "failed");
    assert_eq!(got["error"]["code"], -32000);
    assert!(got.get("result").is_none());
}

#[tokio::test]
async fn a_2025_cancel_is_cancelled_before_the_answer_and_stays_so() {
    let s = service().await;
    let alice = old("alice");
    let (id, finish, _) = gated_task(&s, &alice).await;
    let answer = call(&s, &alice, "tasks/cancel", json!({"taskId": id}))
        .await
        .unwrap();
    assert_eq!(answer["status"], "cancelled");
    assert_eq!(answer["taskId"], id.as_str());
    // The tool finishing late changes nothing.
    let _ = finish.send(Ok(text_result("late", false)));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(status(&s, &alice, &id).await, "cancelled");
    let e = call(&s, &alice, "tasks/result", json!({"taskId": id}))
        .await
        .unwrap_err();
    assert_eq!(e.data.unwrap()["taskId"], id.as_str());
}

#[tokio::test]
async fn a_2025_listing_pages_through_the_owner_s_tasks_only() {
    let s = service().await;
    let alice = old("alice");
    let mut ids = Vec::new();
    for _ in 0..27 {
        ids.push(gated_task(&s, &alice).await.0);
    }
    gated_task(&s, &old("bob")).await;
    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let page = call(&s, &alice, "tasks/list", json!({"cursor": cursor}))
            .await
            .unwrap();
        for task in page["tasks"].as_array().unwrap() {
            seen.push(task["taskId"].as_str().unwrap().to_owned());
        }
        match page.get("nextCursor") {
            Some(next) => cursor = next.clone(),
            None => break,
        }
    }
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);
    let e = call(&s, &alice, "tasks/list", json!({"cursor": "forged"}))
        .await
        .unwrap_err();
    assert_eq!(e.code, INVALID_PARAMS);
}

#[tokio::test]
async fn the_2026_extension_inlines_outcomes_and_gates_undeclared_clients() {
    let s = service().await;
    let alice = new("alice");
    let (id, finish, created) = gated_task(&s, &alice).await;
    assert_eq!(created["resultType"], "task");
    assert!(created.get("ttlMs").is_some() && created.get("ttl").is_none());
    assert!(created.get("task").is_none(), "flat");
    let undeclared = caller("alice", Revision::V2026_07_28, false);
    for method in ["tasks/get", "tasks/cancel", "tasks/update"] {
        let e = call(
            &s,
            &undeclared,
            method,
            json!({"taskId": id, "inputResponses": {}}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, MISSING_REQUIRED_CLIENT_CAPABILITY, "{method}");
    }
    for method in ["tasks/result", "tasks/list"] {
        let e = call(&s, &alice, method, json!({"taskId": id}))
            .await
            .unwrap_err();
        assert_eq!(e.code, METHOD_NOT_FOUND, "{method}");
    }
    let working = call(&s, &alice, "tasks/get", json!({"taskId": id}))
        .await
        .unwrap();
    assert_eq!(
        (working["status"].as_str(), working["resultType"].as_str()),
        (Some("working"), Some("complete"))
    );
    assert!(working.get("result").is_none() && working.get("requestState").is_none());
    finish.send(Ok(text_result("done", false))).unwrap();
    let done = loop {
        let got = call(&s, &alice, "tasks/get", json!({"taskId": id}))
            .await
            .unwrap();
        if got["status"] != "working" {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(done["status"], "completed");
    assert_eq!(done["result"]["content"][0]["text"], "done");
    assert!(
        done["result"].get("_meta").is_none(),
        "no related-task meta in 2026"
    );
    // Cancel is an acknowledgement, idempotent on terminal tasks.
    let ack = call(&s, &alice, "tasks/cancel", json!({"taskId": id}))
        .await
        .unwrap();
    assert_eq!(ack, json!({"resultType": "complete"}));
    let e = call(&s, &alice, "tasks/cancel", json!({"taskId": "unknown"}))
        .await
        .unwrap_err();
    assert_eq!(e.code, INVALID_PARAMS);
}

#[tokio::test]
async fn a_2026_worker_asks_for_input_and_stops_when_cancelled() {
    let s = service().await;
    let alice = new("alice");
    let created = s
        .start_task(
            &alice,
            "confirm_delete",
            Map::new(),
            TaskStart::new(),
            |worker: Worker| async move {
                let ask = InputRequest::new(
                    "confirm",
                    "elicitation/create",
                    json!({"message": "Delete?", "requestedSchema": {"type": "object"}})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                );
                let answers = worker.ask(&[ask]).await?;
                let accepted = answers[0].response["action"] == "accept";
                Ok(text_result(
                    if accepted { "deleted" } else { "kept" },
                    false,
                ))
            },
        )
        .await
        .unwrap();
    let id = created["taskId"].as_str().unwrap().to_owned();
    let asked = loop {
        let got = call(&s, &alice, "tasks/get", json!({"taskId": id}))
            .await
            .unwrap();
        if got["status"] == "input_required" {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        asked["inputRequests"]["confirm"]["method"],
        "elicitation/create"
    );
    let ack = call(
        &s,
        &alice,
        "tasks/update",
        json!({"taskId": id, "inputResponses": {"confirm": {"action": "accept", "content": {}}, "stray": {}}}),
    )
    .await
    .unwrap();
    assert_eq!(ack["resultType"], "complete");
    let done = loop {
        let got = call(&s, &alice, "tasks/get", json!({"taskId": id}))
            .await
            .unwrap();
        if got["status"] == "completed" {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(done["result"]["content"][0]["text"], "deleted");

    // Cooperative cancel: acknowledged at once, cancelled when the worker stops.
    let (running, _keep, _) = gated_task(&s, &alice).await;
    call(&s, &alice, "tasks/cancel", json!({"taskId": running}))
        .await
        .unwrap();
    let ended = loop {
        let got = call(&s, &alice, "tasks/get", json!({"taskId": running}))
            .await
            .unwrap();
        if got["status"] != "working" {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(ended["status"], "cancelled");
}

#[tokio::test]
async fn a_result_written_on_one_replica_ends_a_wait_on_the_other() {
    let backend: Arc<dyn KvBackend> = Arc::new(InMemoryBackend::new());
    let (a, b) = (
        service_over(backend.clone(), "a").await,
        service_over(backend, "b").await,
    );
    let alice = old("alice");
    let (id, finish, _) = gated_task(&a, &alice).await;
    let waiting = {
        let (b, alice, id) = (b.clone(), alice.clone(), id.clone());
        tokio::spawn(async move { call(&b, &alice, "tasks/result", json!({"taskId": id})).await })
    };
    assert_eq!(status(&b, &alice, &id).await, "working");
    finish.send(Ok(text_result("from a", false))).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("b polls the store and sees a's write")
        .unwrap()
        .unwrap();
    assert_eq!(result["content"][0]["text"], "from a");
    // A 2025 cancel on b reaches a's worker through the store.
    let (running, _keep, _) = gated_task(&a, &alice).await;
    let answer = call(&b, &alice, "tasks/cancel", json!({"taskId": running}))
        .await
        .unwrap();
    assert_eq!(answer["status"], "cancelled");
}

/// Polls `tasks/get` until the task is no longer `working`.
async fn ended(service: &TaskService, who: &Caller, id: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = call(service, who, "tasks/get", json!({"taskId": id}))
            .await
            .unwrap();
        if got["status"] != "working" {
            return got;
        }
        assert!(std::time::Instant::now() < deadline, "still working: {got}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Starts a task running `tool`, asks for its cancellation (2026-07-28),
/// and returns the task once it is no longer `working`.
async fn cancel_and_wait<F, Fut>(s: &TaskService, who: &Caller, tool: F) -> Value
where
    F: FnOnce(Worker) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ToolOutcome> + Send + 'static,
{
    let created = s
        .start_task(who, "slow_compute", Map::new(), TaskStart::new(), tool)
        .await
        .unwrap();
    let id = created["taskId"].as_str().unwrap().to_owned();
    call(s, who, "tasks/cancel", json!({"taskId": id}))
        .await
        .unwrap();
    ended(s, who, &id).await
}

/// Cancellation is cooperative (2026-07-28): a tool that sees it and
/// returns a result within the grace period keeps that outcome.
#[tokio::test]
async fn a_cancelled_tool_may_return_its_own_outcome_within_the_grace() {
    let backend = Arc::new(InMemoryBackend::new());
    let s = service_with(backend, "a", Duration::from_secs(30)).await;
    let alice = new("alice");
    let got = cancel_and_wait(&s, &alice, |worker: Worker| async move {
        worker.cancellation().cancelled().await;
        // Cleaning up takes a moment; then the tool says what it did.
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(text_result("stopped at page 3, cleaned up", false))
    })
    .await;
    assert_eq!(got["status"], "completed", "{got}");
    let text = &got["result"]["content"][0]["text"];
    assert_eq!(text, "stopped at page 3, cleaned up");

    // A tool that stops on cancellation ends its task cancelled.
    let got = cancel_and_wait(&s, &alice, |worker: Worker| async move {
        worker.cancellation().cancelled().await;
        Err(ToolExit::Cancelled)
    })
    .await;
    assert_eq!(got["status"], "cancelled", "{got}");
}

/// Sets its flag when dropped, with the moment.
struct DropWitness(Arc<std::sync::Mutex<Option<std::time::Instant>>>);

impl Drop for DropWitness {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(std::time::Instant::now());
    }
}

/// A tool that ignores cancellation is dropped only after the grace, and
/// its task ends cancelled.
#[tokio::test]
async fn a_tool_that_ignores_cancellation_is_dropped_after_the_grace() {
    let grace = Duration::from_millis(400);
    let s = service_with(Arc::new(InMemoryBackend::new()), "a", grace).await;
    let dropped = Arc::new(std::sync::Mutex::new(None));
    let witness = DropWitness(dropped.clone());
    // Taken before the cancel is asked: the drop must come a grace later.
    let asked = std::time::Instant::now();
    let got = cancel_and_wait(&s, &new("alice"), move |_worker: Worker| async move {
        let _witness = witness;
        std::future::pending::<()>().await;
        Ok(Value::Null)
    })
    .await;
    assert_eq!(got["status"], "cancelled", "{got}");
    let at = dropped
        .lock()
        .unwrap()
        .expect("the tool's future was dropped");
    assert!(
        at >= asked + grace,
        "dropped {:?} after the cancel, before the grace of {grace:?}",
        at - asked
    );
}

/// `tasks/result` on ids nobody on this replica writes (unknown, another
/// owner's) leaves nothing in the waiter registry, and a real waiter's
/// entry goes when it leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_on_unknown_and_foreign_ids_leave_nothing_behind() {
    let s = service().await;
    let (foreign, finish, _) = gated_task(&s, &old("alice")).await;
    // The running worker waits on its own task (once it has started).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while s.waiting_tasks() != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the worker never waited"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let during = s.waiting_tasks();
    let streams: Vec<_> = (0..64u64)
        .map(|stream| {
            let (s, foreign) = (s.clone(), foreign.clone());
            tokio::spawn(async move {
                for n in (stream..100_000).step_by(64) {
                    let id = if n % 2 == 0 {
                        format!("{n:046}")
                    } else {
                        foreign.clone()
                    };
                    let e = call(&s, &old("mallory"), "tasks/result", json!({"taskId": id}))
                        .await
                        .unwrap_err();
                    assert_eq!(e.code, INVALID_PARAMS);
                }
            })
        })
        .collect();
    for stream in streams {
        stream.await.unwrap();
    }
    assert_eq!(
        s.waiting_tasks(),
        during,
        "100 000 refused waits left entries behind"
    );
    let waiting = {
        let (s, id) = (s.clone(), foreign.clone());
        tokio::spawn(
            async move { call(&s, &old("alice"), "tasks/result", json!({"taskId": id})).await },
        )
    };
    finish.send(Ok(text_result("done", false))).unwrap();
    waiting.await.unwrap().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while s.waiting_tasks() != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "entries left: {}",
            s.waiting_tasks()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A shutdown: the tool that finishes within the grace keeps its result,
/// the one still running then ends `failed` ("the replica shut down"),
/// and no task starts afterwards (-32603, to be called on another replica).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_lets_tools_finish_within_the_grace_then_fails_the_rest() {
    let s = service().await;
    let who = new("alice");
    let (finishing, finish, _) = gated_task(&s, &who).await;
    let (stuck, _never, _) = gated_task(&s, &who).await;
    assert_eq!(s.running_tasks(), 2);
    let stopping = tokio::spawn({
        let s = s.clone();
        async move { s.shutdown(Duration::from_millis(500)).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    finish.send(Ok(text_result("done", false))).unwrap();
    let report = stopping.await.unwrap();
    assert_eq!((report.finished, report.abandoned), (1, 1), "{report:?}");
    assert_eq!(s.running_tasks(), 0);
    assert_eq!(status(&s, &who, &finishing).await, "completed");
    let failed = call(&s, &who, "tasks/get", json!({"taskId": stuck}))
        .await
        .unwrap();
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("the replica shut down")),
        "{failed}"
    );
    let refused = s
        .start_task(
            &who,
            "slow_compute",
            Map::new(),
            TaskStart::new(),
            |_w: Worker| async { Ok(Value::Null) },
        )
        .await
        .expect_err("no task after a shutdown");
    assert_eq!(refused.code, -32603);
}

/// A cancel asked before the worker first ran (its task id is out, the
/// spawned worker not yet polled) is seen at once, not at the next
/// cancellation check (an hour here).
#[tokio::test]
async fn a_cancel_before_the_worker_first_runs_is_seen_at_once() {
    let mut config = ServiceConfig::default();
    config.cancel_check = Duration::from_secs(3_600);
    config.cancel_grace = Duration::from_secs(3_600);
    let s = service_configured(Arc::new(InMemoryBackend::new()), config).await;
    let alice = new("alice");
    let (stopped, stop) = oneshot::channel();
    let created = s
        .start_task(
            &alice,
            "slow_compute",
            Map::new(),
            TaskStart::new(),
            |worker: Worker| async move {
                worker.cancellation().cancelled().await;
                let _ = stopped.send(());
                Err(ToolExit::Cancelled)
            },
        )
        .await
        .unwrap();
    let id = created["taskId"].as_str().unwrap().to_owned();
    // On this single-threaded runtime the worker has not run yet: no
    // await since the spawn has given it the thread.
    call(&s, &alice, "tasks/cancel", json!({"taskId": id}))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), stop)
        .await
        .expect("the tool saw its cancellation at once")
        .unwrap();
    assert_eq!(ended(&s, &alice, &id).await["status"], "cancelled");
}
