//! The rules of running tasks: outcomes in both protocol views, input
//! requests, cooperative cancellation, worker leases and the reaper, the
//! tool call kept for every replica, listings that leave outcomes in the
//! store, and a mixed run of workers, cancellers and answerers. Each rule
//! runs unchanged on every backend, with replicas (hosts sharing one
//! backend and one injected clock) where the rule is about replicas.

use std::sync::Arc;
use std::time::Duration;

use pmcp_tasks_host::backend::KvBackend;
use pmcp_tasks_host::clock::ManualClock;
use pmcp_tasks_host::{
    InputRequest, InputResponse, LeaseGrant, Outcome, OutcomeKind, StatusView, StoreConfig,
    TaskError, TaskHost, TaskRequest, TaskStatus, INTERNAL_ERROR, INVALID_PARAMS,
};
use serde_json::{json, Map, Value};

use crate::read_meter::ReadMeter;
use crate::BackendFactory;

crate::rule_list! {
    $ worker_contract_suite, worker_contract;
    one_outcome_answers_both_protocol_views,
    a_late_worker_never_overwrites_a_terminal_task,
    input_requests_round_trip_and_keys_never_repeat,
    concurrent_answerers_lose_and_resurrect_no_key,
    cancel_requests_are_durable_idempotent_marks_every_replica_sees,
    a_racing_cancel_and_completion_end_in_exactly_one_state,
    a_lapsed_lease_fails_the_task_through_a_bounded_reaper,
    renewals_racing_the_reaper_lose_no_update,
    a_task_keeps_its_tool_call_for_every_replica,
    a_listing_reads_heads_not_outcomes,
    mixed_workers_cancellers_and_answerers_agree_for_200_rounds,
}

const ALICE: &str = "https://idp.example/users/alice";
const BOB: &str = "mailto:bob@example.com";
const LEASE: Duration = Duration::from_secs(30);

/// Hosts sharing one backend and one clock, as replicas behind a load
/// balancer share Redis or DynamoDB (and, for the test, time).
struct Replicas {
    hosts: Vec<TaskHost>,
    clock: ManualClock,
}

impl Replicas {
    async fn over(backend: Arc<dyn KvBackend>, count: usize) -> Replicas {
        let clock = ManualClock::starting_now();
        let mut config = StoreConfig::default();
        config.cursor_secret = b"one deployment".to_vec();
        let mut hosts = Vec::new();
        for _ in 0..count {
            let host = TaskHost::builder()
                .backend(backend.clone())
                .config(config.clone())
                .clock(Arc::new(clock.clone()))
                .build()
                .await
                .expect("building a replica");
            hosts.push(host);
        }
        Replicas { hosts, clock }
    }

    async fn new(factory: &dyn BackendFactory, count: usize) -> Replicas {
        Replicas::over(factory.fresh().await, count).await
    }

    fn a(&self) -> &TaskHost {
        &self.hosts[0]
    }

    fn b(&self) -> &TaskHost {
        &self.hosts[self.hosts.len() - 1]
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn grant(holder: &str) -> LeaseGrant {
    LeaseGrant::new(holder, LEASE)
}

fn elicit(key: &str) -> InputRequest {
    InputRequest::new(
        key,
        "elicitation/create",
        object(
            json!({"message": format!("confirm {key}?"), "requestedSchema": {"type": "object"}}),
        ),
    )
}

fn answer(key: &str) -> InputResponse {
    InputResponse::new(key, json!({"action": "accept", "content": {"key": key}}))
}

fn tool_result(text: &str, is_error: bool) -> Outcome {
    Outcome::ToolResult(json!({
        "content": [{"type": "text", "text": text}],
        "isError": is_error,
    }))
}

/// A tool-call task leased to `worker`.
async fn leased_task(host: &TaskHost, owner: &str, worker: &str) -> String {
    let request = TaskRequest::tool_call("slow_compute", object(json!({"seconds": 3})));
    host.create_task(owner, &request, None, Some(&grant(worker)))
        .await
        .expect("create a leased task")
        .task
        .task_id
}

fn is_invalid_transition<T: std::fmt::Debug>(result: &Result<T, TaskError>) -> bool {
    matches!(result, Err(TaskError::InvalidTransition(_)))
}

/// A terminal task's whole state, to compare before and after late writes.
async fn snapshot(host: &TaskHost, id: &str) -> (String, u64, Option<Outcome>) {
    let detail = host
        .inspect(ALICE, id, StatusView::Extension)
        .await
        .expect("inspect");
    (
        detail.record.task.status.to_string(),
        detail.record.version,
        detail.outcome,
    )
}

async fn one_outcome_answers_both_protocol_views(factory: &dyn BackendFactory) {
    let r = Replicas::new(factory, 2).await;
    let erring = leased_task(r.a(), ALICE, "w").await;
    let fine = leased_task(r.a(), ALICE, "w").await;
    let broken = leased_task(r.a(), ALICE, "w").await;
    let done = r
        .a()
        .finish(ALICE, &erring, &tool_result("no such file", true))
        .await
        .unwrap();
    assert_eq!(done.task.status, TaskStatus::Completed);
    assert_eq!(done.outcome, Some(OutcomeKind::ErrorResult));
    assert!(done.lease.is_none(), "a finished task holds no lease");
    r.a()
        .finish(ALICE, &fine, &tool_result("42", false))
        .await
        .unwrap();
    let rpc_error = json!({"code": -32000, "message": "the job crashed", "data": {"exit": 3}});
    let failed = r
        .a()
        .finish(ALICE, &broken, &Outcome::RpcError(rpc_error.clone()))
        .await
        .unwrap();
    assert_eq!(failed.task.status, TaskStatus::Failed);

    // One record, two views, read on the other replica.
    let status = |view, id: &str| {
        let (host, id) = (r.b().clone(), id.to_owned());
        async move {
            host.inspect(ALICE, &id, view)
                .await
                .unwrap()
                .record
                .task
                .status
        }
    };
    assert_eq!(
        status(StatusView::Extension, &erring).await,
        TaskStatus::Completed
    );
    assert_eq!(status(StatusView::Core, &erring).await, TaskStatus::Failed);
    assert_eq!(status(StatusView::Core, &fine).await, TaskStatus::Completed);
    assert_eq!(
        status(StatusView::Extension, &broken).await,
        TaskStatus::Failed
    );
    assert_eq!(status(StatusView::Core, &broken).await, TaskStatus::Failed);
    // Listings agree (tasks created in one clock tick list in id order).
    let listed = |view| {
        let host = r.b().clone();
        async move {
            let page = host.list_in(ALICE, None, None, view).await.unwrap();
            let mut statuses: Vec<(String, TaskStatus)> = page
                .tasks
                .into_iter()
                .map(|t| (t.task_id, t.status))
                .collect();
            statuses.sort_by(|a, b| a.0.cmp(&b.0));
            statuses
        }
    };
    let expect = |statuses: [(&String, TaskStatus); 3]| {
        let mut statuses: Vec<(String, TaskStatus)> = statuses
            .into_iter()
            .map(|(id, s)| (id.clone(), s))
            .collect();
        statuses.sort_by(|a, b| a.0.cmp(&b.0));
        statuses
    };
    use TaskStatus::{Completed, Failed};
    assert_eq!(
        listed(StatusView::Extension).await,
        expect([(&erring, Completed), (&fine, Completed), (&broken, Failed)])
    );
    assert_eq!(
        listed(StatusView::Core).await,
        expect([(&erring, Failed), (&fine, Completed), (&broken, Failed)])
    );

    let detail = r
        .b()
        .inspect(ALICE, &broken, StatusView::Core)
        .await
        .unwrap();
    assert_eq!(detail.outcome, Some(Outcome::RpcError(rpc_error)));
    let detail = r
        .b()
        .inspect(ALICE, &erring, StatusView::Core)
        .await
        .unwrap();
    assert_eq!(detail.outcome, Some(tool_result("no such file", true)));

    // Malformed outcomes are refused and leave the task as it was.
    let open = leased_task(r.a(), ALICE, "w").await;
    for bad in [
        Outcome::ToolResult(json!(["not", "an", "object"])),
        Outcome::ToolResult(json!({"isError": "yes"})),
        Outcome::RpcError(json!({"message": "no code"})),
        Outcome::RpcError(json!({"code": 1, "message": "x", "stack": "extra member"})),
        Outcome::ToolResult(json!({"text": "x".repeat((16 << 20) + 1024)})),
    ] {
        let refused = r.a().finish(ALICE, &open, &bad).await;
        assert_eq!(
            refused.expect_err("malformed outcome").json_rpc_code(),
            INVALID_PARAMS
        );
    }
    let untouched = r.a().get(ALICE, &open).await.unwrap();
    assert_eq!(
        (untouched.task.status, untouched.version),
        (TaskStatus::Working, 1)
    );
}

async fn a_late_worker_never_overwrites_a_terminal_task(factory: &dyn BackendFactory) {
    let r = Replicas::new(factory, 2).await;
    let (worker, client) = (r.a(), r.b());
    let id = leased_task(worker, ALICE, "w").await;
    // The 2025-11-25 cancel: at once, on the client's replica.
    let cancelled = client.cancel(ALICE, &id).await.unwrap();
    assert_eq!(cancelled.task.status, TaskStatus::Cancelled);
    // The worker learns of it the way it learns of a cancel request.
    let seen = worker.renew_lease(ALICE, &id, &grant("w")).await.unwrap();
    assert!(seen.cancel_requested && seen.task.status.is_terminal());
    let before = snapshot(client, &id).await;
    assert!(is_invalid_transition(
        &worker.finish(ALICE, &id, &tool_result("late", false)).await
    ));
    assert!(is_invalid_transition(
        &worker
            .complete_with_result(ALICE, &id, TaskStatus::Completed, &json!("late"))
            .await
    ));
    assert!(is_invalid_transition(
        &worker.request_input(ALICE, &id, &[elicit("late")]).await
    ));
    assert!(is_invalid_transition(
        &worker
            .update_status(ALICE, &id, TaskStatus::Working, Some("still here"))
            .await
    ));
    client.request_cancel(ALICE, &id).await.unwrap();
    client
        .answer_input(ALICE, &id, &[answer("late")])
        .await
        .unwrap();
    assert_eq!(
        snapshot(client, &id).await,
        before,
        "terminal stays terminal"
    );
    let refused = client.cancel(ALICE, &id).await;
    assert_eq!(
        refused.expect_err("cancel twice").json_rpc_code(),
        INVALID_PARAMS
    );
}

async fn input_requests_round_trip_and_keys_never_repeat(factory: &dyn BackendFactory) {
    let r = Replicas::new(factory, 2).await;
    let (worker, client) = (r.a(), r.b());
    let id = leased_task(worker, ALICE, "w").await;
    let sampling = InputRequest::new(
        "summary",
        "sampling/createMessage",
        object(json!({"messages": [], "maxTokens": 10})),
    );
    let asked = worker
        .request_input(ALICE, &id, &[elicit("confirm"), sampling])
        .await
        .unwrap();
    assert_eq!(asked.task.status, TaskStatus::InputRequired);
    assert_eq!(asked.pending_input, ["confirm", "summary"]);
    let seen = client
        .inspect(ALICE, &id, StatusView::Extension)
        .await
        .unwrap();
    let keys: Vec<&str> = seen.input_requests.iter().map(|q| q.key.as_str()).collect();
    assert_eq!(keys, ["confirm", "summary"]);
    assert_eq!(seen.input_requests[0], elicit("confirm"));

    // A partial answer (plus an unknown key, ignored): read at once, the
    // remaining key is still asked for.
    client
        .answer_input(ALICE, &id, &[answer("confirm"), answer("never-asked")])
        .await
        .unwrap();
    let partial = worker
        .inspect(ALICE, &id, StatusView::Extension)
        .await
        .unwrap();
    assert_eq!(partial.record.task.status, TaskStatus::InputRequired);
    assert_eq!(partial.record.pending_input, ["summary"]);
    assert_eq!(partial.input_requests.len(), 1);
    assert_eq!(partial.record.answers_waiting, 1);
    // An answer to an already answered key changes nothing.
    let again = client
        .answer_input(ALICE, &id, &[answer("confirm")])
        .await
        .unwrap();
    assert_eq!(again.version, partial.record.version);

    let taken = worker.take_answers(ALICE, &id).await.unwrap();
    assert_eq!(taken, [answer("confirm")]);
    let complete = client
        .answer_input(ALICE, &id, &[answer("summary")])
        .await
        .unwrap();
    assert_eq!(complete.task.status, TaskStatus::Working);
    assert!(complete.pending_input.is_empty());
    assert_eq!(
        worker.take_answers(ALICE, &id).await.unwrap(),
        [answer("summary")]
    );
    assert!(worker.take_answers(ALICE, &id).await.unwrap().is_empty());

    // Keys are unique over the task's life, answered or not.
    for used in ["confirm", "summary"] {
        let reused = worker.request_input(ALICE, &id, &[elicit(used)]).await;
        assert_eq!(reused.expect_err(used).json_rpc_code(), INVALID_PARAMS);
    }
    let twice = worker
        .request_input(ALICE, &id, &[elicit("dup"), elicit("dup")])
        .await;
    assert_eq!(
        twice.expect_err("duplicate key").json_rpc_code(),
        INVALID_PARAMS
    );
    let mut wrong_method = elicit("fresh");
    wrong_method.method = "tools/call".into();
    let refused = worker.request_input(ALICE, &id, &[wrong_method]).await;
    assert_eq!(refused.expect_err("method").json_rpc_code(), INVALID_PARAMS);
    let after = client.get(ALICE, &id).await.unwrap();
    assert_eq!(
        after.task.status,
        TaskStatus::Working,
        "refusals changed nothing"
    );
    // Another owner cannot answer, nor see the requests.
    let foreign = client.answer_input(BOB, &id, &[answer("fresh")]).await;
    assert!(matches!(foreign, Err(TaskError::NotFound(_))));
}

async fn concurrent_answerers_lose_and_resurrect_no_key(factory: &dyn BackendFactory) {
    const KEYS: usize = 12;
    let r = Replicas::new(factory, 2).await;
    let id = leased_task(r.a(), ALICE, "w").await;
    let keys: Vec<String> = (0..KEYS).map(|n| format!("k{n}")).collect();
    let requests: Vec<InputRequest> = keys.iter().map(|k| elicit(k)).collect();
    r.a().request_input(ALICE, &id, &requests).await.unwrap();
    // Each answerer answers its own key and its neighbour's (so every key
    // is answered twice, concurrently), then reads at once: its keys must
    // be gone from the outstanding ones.
    let mut answerers = Vec::new();
    for n in 0..KEYS {
        let host = r.hosts[n % r.hosts.len()].clone();
        let (id, mine) = (id.clone(), [keys[n].clone(), keys[(n + 1) % KEYS].clone()]);
        answerers.push(tokio::spawn(async move {
            let responses: Vec<InputResponse> = mine.iter().map(|k| answer(k)).collect();
            host.answer_input(ALICE, &id, &responses)
                .await
                .expect("the store retries lost races itself");
            let now = host
                .inspect(ALICE, &id, StatusView::Extension)
                .await
                .unwrap();
            for key in &mine {
                assert!(
                    !now.record.pending_input.contains(key),
                    "{key} answered, yet outstanding: {:?}",
                    now.record.pending_input
                );
            }
        }));
    }
    for answerer in answerers {
        answerer.await.unwrap();
    }
    let done = r.b().get(ALICE, &id).await.unwrap();
    assert_eq!(done.task.status, TaskStatus::Working);
    assert!(done.pending_input.is_empty());
    let mut taken: Vec<String> = r
        .a()
        .take_answers(ALICE, &id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.key)
        .collect();
    taken.sort();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(taken, expected, "every key answered exactly once");
}

async fn cancel_requests_are_durable_idempotent_marks_every_replica_sees(
    factory: &dyn BackendFactory,
) {
    let r = Replicas::new(factory, 2).await;
    let (worker, client) = (r.a(), r.b());
    let id = leased_task(worker, ALICE, "w").await;
    assert!(!worker.get(ALICE, &id).await.unwrap().cancel_requested);
    let first = client.request_cancel(ALICE, &id).await.unwrap();
    assert!(first.cancel_requested);
    assert_eq!(
        first.task.status,
        TaskStatus::Working,
        "cooperative: no status change"
    );
    let again = client.request_cancel(ALICE, &id).await.unwrap();
    assert_eq!(again.version, first.version, "idempotent");
    // The worker, on the other replica, sees the mark when it renews.
    let renewed = worker.renew_lease(ALICE, &id, &grant("w")).await.unwrap();
    assert!(renewed.cancel_requested);
    let stopped = worker.cancel(ALICE, &id).await.unwrap();
    assert_eq!(stopped.task.status, TaskStatus::Cancelled);
    let terminal = client.request_cancel(ALICE, &id).await.unwrap();
    assert_eq!(
        terminal.version, stopped.version,
        "no change on a terminal task"
    );
    // Also no error on a task finished otherwise.
    let other = leased_task(worker, ALICE, "w").await;
    let done = worker
        .finish(ALICE, &other, &tool_result("ok", false))
        .await
        .unwrap();
    let late = client.request_cancel(ALICE, &other).await.unwrap();
    assert_eq!(
        (late.task.status, late.version),
        (TaskStatus::Completed, done.version)
    );
    assert!(!late.cancel_requested);
    let foreign = client.request_cancel(BOB, &other).await;
    assert!(matches!(foreign, Err(TaskError::NotFound(_))));
}

async fn a_racing_cancel_and_completion_end_in_exactly_one_state(factory: &dyn BackendFactory) {
    let r = Replicas::new(factory, 2).await;
    for round in 0..10 {
        let id = leased_task(r.a(), ALICE, "w").await;
        let (worker, canceller) = (r.a().clone(), r.b().clone());
        let (id_w, id_c) = (id.clone(), id.clone());
        let finishing = tokio::spawn(async move {
            worker
                .finish(ALICE, &id_w, &tool_result(&format!("round {round}"), false))
                .await
        });
        let cancelling = tokio::spawn(async move { canceller.cancel(ALICE, &id_c).await });
        let (finished, cancelled) = (finishing.await.unwrap(), cancelling.await.unwrap());
        assert!(
            finished.is_ok() != cancelled.is_ok(),
            "exactly one wins: {finished:?} / {cancelled:?}"
        );
        let detail = r
            .a()
            .inspect(ALICE, &id, StatusView::Extension)
            .await
            .unwrap();
        if finished.is_ok() {
            assert_eq!(detail.record.task.status, TaskStatus::Completed);
            assert_eq!(
                detail.outcome,
                Some(tool_result(&format!("round {round}"), false))
            );
            assert!(is_invalid_transition(&cancelled));
        } else {
            assert_eq!(detail.record.task.status, TaskStatus::Cancelled);
            assert_eq!(detail.outcome, None);
            assert!(is_invalid_transition(&finished));
        }
    }
}

async fn a_lapsed_lease_fails_the_task_through_a_bounded_reaper(factory: &dyn BackendFactory) {
    let r = Replicas::new(factory, 2).await;
    let (worker, reaper) = (r.a(), r.b());
    let lost: Vec<String> = {
        let mut ids = Vec::new();
        for n in 0..5 {
            ids.push(leased_task(worker, ALICE, &format!("dead-{n}")).await);
        }
        ids
    };
    let alive = leased_task(worker, ALICE, "alive").await;
    let unleased = worker
        .create(ALICE, "tools/call", None)
        .await
        .unwrap()
        .task
        .task_id;
    r.clock.advance(LEASE - Duration::from_secs(1));
    assert_eq!(
        reaper.reap_lost_workers(100).await.unwrap().failed,
        0,
        "nothing lapsed yet"
    );
    worker
        .renew_lease(ALICE, &alive, &grant("alive"))
        .await
        .unwrap();
    // Another worker cannot take a live lease.
    let stolen = reaper.renew_lease(ALICE, &alive, &grant("thief")).await;
    assert!(is_invalid_transition(&stolen), "{stolen:?}");
    r.clock.advance(Duration::from_secs(2));
    // Bounded: at most `limit` per call; any replica may run it.
    assert_eq!(reaper.reap_lost_workers(2).await.unwrap().failed, 2);
    assert_eq!(worker.reap_lost_workers(100).await.unwrap().failed, 3);
    assert_eq!(reaper.reap_lost_workers(100).await.unwrap().failed, 0);
    for id in &lost {
        let detail = reaper.inspect(ALICE, id, StatusView::Core).await.unwrap();
        assert_eq!(detail.record.task.status, TaskStatus::Failed);
        assert!(detail.record.lease.is_none());
        let Some(Outcome::RpcError(error)) = &detail.outcome else {
            panic!("no JSON-RPC error: {:?}", detail.outcome);
        };
        assert_eq!(error["code"], INTERNAL_ERROR);
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("worker was lost"),
            "{error}"
        );
        // The lost worker, back too late, changes nothing.
        let late = worker
            .renew_lease(ALICE, id, &grant("dead-0"))
            .await
            .unwrap();
        assert_eq!(late.version, detail.record.version);
        assert!(is_invalid_transition(
            &worker.finish(ALICE, id, &tool_result("late", false)).await
        ));
    }
    assert_eq!(
        reaper.get(ALICE, &alive).await.unwrap().task.status,
        TaskStatus::Working
    );
    assert_eq!(
        reaper.get(ALICE, &unleased).await.unwrap().task.status,
        TaskStatus::Working
    );
    // A lapsed lease may be taken over before the reaper comes.
    r.clock.advance(LEASE * 2);
    let taken = reaper
        .renew_lease(ALICE, &alive, &grant("successor"))
        .await
        .unwrap();
    assert_eq!(taken.lease.unwrap().holder, "successor");
    assert_eq!(
        reaper.reap_lost_workers(100).await.unwrap().failed,
        0,
        "stale items only"
    );
    assert_eq!(
        reaper.get(ALICE, &alive).await.unwrap().task.status,
        TaskStatus::Working
    );
}

async fn renewals_racing_the_reaper_lose_no_update(factory: &dyn BackendFactory) {
    const TASKS: usize = 8;
    let r = Replicas::new(factory, 2).await;
    let mut ids = Vec::new();
    for n in 0..TASKS {
        ids.push(leased_task(r.a(), ALICE, &format!("w{n}")).await);
    }
    // Every lease has just lapsed: each renewal races a reaper.
    r.clock.advance(LEASE + Duration::from_millis(1));
    let mut renewals = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let (host, id) = (r.a().clone(), id.clone());
        renewals.push(tokio::spawn(async move {
            host.renew_lease(ALICE, &id, &grant(&format!("w{n}"))).await
        }));
    }
    let mut reapers = Vec::new();
    for _ in 0..3 {
        let host = r.b().clone();
        reapers.push(tokio::spawn(async move { host.reap_lost_workers(3).await }));
    }
    let mut renewed = Vec::new();
    for renewal in renewals {
        renewed.push(renewal.await.unwrap().expect("renewal"));
    }
    let mut reaped = 0;
    for reaper in reapers {
        reaped += reaper.await.unwrap().expect("reap").failed;
    }
    reaped += r.b().reap_lost_workers(100).await.unwrap().failed;
    let mut failed = 0;
    for (record, id) in renewed.iter().zip(&ids) {
        let now = r.b().get(ALICE, id).await.unwrap();
        if record.task.status == TaskStatus::Working {
            // The renewal won: the reaper must not have failed it after.
            assert_eq!(now.task.status, TaskStatus::Working, "{id}: renewal lost");
            assert_eq!(now.lease, record.lease);
        } else {
            assert_eq!(record.task.status, TaskStatus::Failed);
            assert_eq!(now.task.status, TaskStatus::Failed);
            failed += 1;
        }
    }
    assert_eq!(reaped, failed, "each reap is one failed task");
}

/// A W3C `traceparent` (the specification's example).
const TRACE_PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

async fn a_task_keeps_its_tool_call_for_every_replica(factory: &dyn BackendFactory) {
    let r = Replicas::new(factory, 2).await;
    let arguments = object(json!({"path": "/tmp/x", "depth": 2, "flags": ["a", "b"]}));
    let mut request = TaskRequest::tool_call("scan", arguments.clone());
    request.trace_parent = Some(TRACE_PARENT.into());
    let created = r
        .a()
        .create_task(ALICE, &request, Some(Duration::from_secs(60)), None)
        .await
        .unwrap();
    assert_eq!(created.tool_name.as_deref(), Some("scan"));
    let seen = r
        .b()
        .inspect(ALICE, &created.task.task_id, StatusView::Core)
        .await
        .unwrap();
    assert_eq!(seen.record.request_method, "tools/call");
    assert_eq!(seen.record.tool_name.as_deref(), Some("scan"));
    assert_eq!(seen.record.trace_parent.as_deref(), Some(TRACE_PARENT));
    assert_eq!(seen.arguments, Some(arguments));
    assert_eq!(seen.record.task.ttl, Some(60_000));
    // Arguments are bounded like results (16 MiB); refused creates leave
    // nothing.
    let huge = TaskRequest::tool_call(
        "scan",
        object(json!({"blob": "x".repeat((16 << 20) + 1024)})),
    );
    let refused = r.a().create_task(ALICE, &huge, None, None).await;
    assert_eq!(refused.expect_err("huge").json_rpc_code(), INVALID_PARAMS);
    let mut long_name = TaskRequest::default();
    long_name.tool_name = Some("t".repeat(257));
    let refused = r.a().create_task(ALICE, &long_name, None, None).await;
    assert_eq!(
        refused.expect_err("long name").json_rpc_code(),
        INVALID_PARAMS
    );
    let mut no_trace = TaskRequest::default();
    no_trace.trace_parent = Some("00-0-0-01".into());
    let refused = r.a().create_task(ALICE, &no_trace, None, None).await;
    assert_eq!(
        refused.expect_err("bad traceparent").json_rpc_code(),
        INVALID_PARAMS
    );
    let no_holder = LeaseGrant::new(String::new(), LEASE);
    let refused = r
        .a()
        .create_task(ALICE, &request, None, Some(&no_holder))
        .await;
    assert_eq!(
        refused.expect_err("no holder").json_rpc_code(),
        INVALID_PARAMS
    );
    let page = r.b().list(ALICE, None, None).await.unwrap();
    assert_eq!(page.tasks.len(), 1);
}

async fn a_listing_reads_heads_not_outcomes(factory: &dyn BackendFactory) {
    const PAGE: u32 = 20;
    let meter = ReadMeter::new(factory.fresh().await);
    let r = Replicas::over(meter.clone(), 1).await;
    let host = r.a();
    // 200 KB of text in four blocks (one JSON string may hold 64 KB).
    let block = json!({"type": "text", "text": "r".repeat(50 * 1024)});
    let big = json!({"content": [block, block, block, block]});
    let arguments = object(json!({"input": "a".repeat(20 * 1024)}));
    for owner in [ALICE, BOB] {
        for _ in 0..PAGE {
            let request = TaskRequest::tool_call("big", arguments.clone());
            let id = host
                .create_task(owner, &request, None, None)
                .await
                .unwrap()
                .task
                .task_id;
            if owner == ALICE {
                let result = Outcome::ToolResult(big.clone());
                host.finish(owner, &id, &result).await.unwrap();
            }
        }
    }
    meter.take();
    let with_results = host.list(ALICE, None, Some(PAGE)).await.unwrap();
    let read_with = meter.take();
    let without_results = host.list(BOB, None, Some(PAGE)).await.unwrap();
    let read_without = meter.take();
    assert_eq!(with_results.tasks.len(), PAGE as usize);
    assert_eq!(without_results.tasks.len(), PAGE as usize);
    // A page of 20 tasks with 200 KB results each would be 4 MB read.
    assert!(
        read_with < 20 * 1024,
        "listing read {read_with} bytes for {PAGE} task summaries"
    );
    assert!(
        read_with * 2 <= read_without * 3,
        "with results {read_with} bytes, without {read_without}: more than 1.5x"
    );
    // A single read still has everything.
    let one = &with_results.tasks[0].task_id;
    meter.take();
    let detail = host.inspect(ALICE, one, StatusView::Core).await.unwrap();
    assert!(meter.take() > 200 * 1024);
    assert!(detail.outcome.is_some() && detail.arguments.is_some());
}

/// One round of the mixed run: a worker finishing, a client cancelling
/// (first cooperatively, then at once) and a client answering input, all
/// at the same time on different replicas.
async fn mixed_round(r: &Replicas, round: usize) {
    let worker = r.hosts[round % r.hosts.len()].clone();
    let holder = format!("worker-{round}");
    let id = leased_task(&worker, ALICE, &holder).await;
    let key = format!("confirm-{round}");
    worker
        .request_input(ALICE, &id, &[elicit(&key)])
        .await
        .unwrap();
    let result = tool_result(&format!("round {round}"), round.is_multiple_of(3));

    let finishing = {
        let (host, id, result, holder) =
            (worker.clone(), id.clone(), result.clone(), holder.clone());
        tokio::spawn(async move {
            let seen = host.renew_lease(ALICE, &id, &grant(&holder)).await.unwrap();
            if seen.cancel_requested || seen.task.status.is_terminal() {
                // A cooperative worker stops when asked.
                return (
                    host.cancel(ALICE, &id).await.map(|_| TaskStatus::Cancelled),
                    false,
                );
            }
            (
                host.finish(ALICE, &id, &result)
                    .await
                    .map(|r| r.task.status),
                true,
            )
        })
    };
    let cancelling = {
        let (host, id) = (r.hosts[(round + 1) % r.hosts.len()].clone(), id.clone());
        tokio::spawn(async move {
            host.request_cancel(ALICE, &id).await.unwrap();
            host.cancel(ALICE, &id).await.map(|r| r.task.status)
        })
    };
    let answering = {
        let (host, id, key) = (
            r.hosts[(round + 2) % r.hosts.len()].clone(),
            id.clone(),
            key.clone(),
        );
        tokio::spawn(async move { host.answer_input(ALICE, &id, &[answer(&key)]).await })
    };
    let (worker_end, worker_finished) = finishing.await.unwrap();
    let canceller_end = cancelling.await.unwrap();
    answering.await.unwrap().expect("answering never fails");

    let wins: Vec<TaskStatus> = [&worker_end, &canceller_end]
        .iter()
        .filter_map(|end| end.as_ref().ok().copied())
        .collect();
    assert_eq!(
        wins.len(),
        1,
        "round {round}: one terminal write: {worker_end:?} / {canceller_end:?}"
    );
    for end in [&worker_end, &canceller_end] {
        if let Err(e) = end {
            assert!(
                matches!(e, TaskError::InvalidTransition(_)),
                "round {round}: {e:?}"
            );
        }
    }
    let detail = r
        .b()
        .inspect(ALICE, &id, StatusView::Extension)
        .await
        .unwrap();
    let record = &detail.record;
    assert!(
        record.lease.is_none() && record.pending_input.is_empty(),
        "round {round}"
    );
    match record.task.status {
        TaskStatus::Completed => {
            assert!(worker_finished && worker_end.is_ok(), "round {round}");
            assert_eq!(detail.outcome, Some(result), "round {round}");
        }
        TaskStatus::Cancelled => {
            assert!(record.cancel_requested);
            assert_eq!(
                detail.outcome, None,
                "round {round}: a cancelled task has no outcome"
            );
        }
        other => panic!("round {round}: ended {other}"),
    }
    // Nothing after terminal changes it.
    let before = snapshot(r.b(), &id).await;
    let _ = worker.finish(ALICE, &id, &tool_result("late", false)).await;
    let _ = worker.renew_lease(ALICE, &id, &grant(&holder)).await;
    let _ = r.a().answer_input(ALICE, &id, &[answer(&key)]).await;
    let _ = r.a().request_cancel(ALICE, &id).await;
    assert_eq!(
        snapshot(r.a(), &id).await,
        before,
        "round {round}: changed after terminal"
    );
}

async fn mixed_workers_cancellers_and_answerers_agree_for_200_rounds(factory: &dyn BackendFactory) {
    const ROUNDS: usize = 200;
    const AT_ONCE: usize = 10;
    let r = Arc::new(Replicas::new(factory, 3).await);
    for batch in 0..ROUNDS / AT_ONCE {
        let mut rounds = Vec::new();
        for n in 0..AT_ONCE {
            let r = r.clone();
            rounds.push(tokio::spawn(async move {
                mixed_round(&r, batch * AT_ONCE + n).await
            }));
        }
        for round in rounds {
            round.await.unwrap();
        }
    }
    // Nothing is left for a reaper: every worker finished its task.
    r.clock.advance(LEASE * 2);
    assert_eq!(r.a().reap_lost_workers(1_000).await.unwrap().failed, 0);
}
