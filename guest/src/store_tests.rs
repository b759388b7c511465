//! Native unit tests of the task store over [`MemoryKv`] and a fixed clock.

use std::cell::Cell;

use crate::{
    Environment, InputRequest, InputResponse, LeaseGrant, MemoryKv, Outcome, OutcomeKind,
    StatusView, StoreConfig, StoreError, TaskRequest, TaskStatus, TaskStore,
};

/// A clock the test moves and a deterministic random source.
struct TestEnv {
    now_us: Cell<u64>,
    counter: Cell<u8>,
}

impl Environment for TestEnv {
    fn now_us(&self) -> u64 {
        self.now_us.get()
    }

    fn fill_random(&self, buf: &mut [u8]) -> Result<(), StoreError> {
        self.counter.set(self.counter.get().wrapping_add(1));
        buf.fill(self.counter.get());
        Ok(())
    }
}

const START_US: u64 = 1_700_000_000_000_000;

fn store(config: StoreConfig) -> TaskStore<MemoryKv, TestEnv> {
    let env = TestEnv {
        now_us: Cell::new(START_US),
        counter: Cell::new(0),
    };
    TaskStore::open(MemoryKv::new(), env, config).unwrap()
}

fn advance_ms(store: &TaskStore<MemoryKv, TestEnv>, ms: u64) {
    let now = &store.env().now_us;
    now.set(now.get() + ms * 1_000);
}

#[test]
fn create_sets_the_wire_fields() {
    let s = store(StoreConfig::for_tests());
    let r = s.create("alice", "tools/call", Some(5_000)).unwrap();
    assert_eq!(r.task.status, TaskStatus::Working);
    assert_eq!(r.task.ttl, Some(5_000));
    assert_eq!(r.task.created_at, "2023-11-14T22:13:20.000Z");
    assert_eq!(r.task.created_at, r.task.last_updated_at);
    assert_eq!(r.task.poll_interval, Some(1_000));
    assert_eq!(
        (r.variables.as_str(), r.has_result, r.version),
        ("{}", false, 1)
    );
}

#[test]
fn expiry_hides_the_task_on_every_path() {
    let s = store(StoreConfig::for_tests());
    let id = s.create("alice", "m", Some(1_000)).unwrap().task.task_id;
    advance_ms(&s, 999);
    assert!(s.get("alice", &id).is_ok());
    advance_ms(&s, 1);
    assert!(matches!(s.get("alice", &id), Err(StoreError::NotFound(_))));
    assert!(matches!(
        s.cancel("alice", &id),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.get_result("alice", &id),
        Err(StoreError::NotFound(_))
    ));
    assert!(s
        .list("alice", None, None, StatusView::Extension)
        .unwrap()
        .tasks
        .is_empty());
    assert_eq!(s.cleanup_expired(10), Ok(1));
}

#[test]
fn variables_merge_and_terminal_tasks_are_frozen() {
    let s = store(StoreConfig::for_tests());
    let id = s.create("alice", "m", None).unwrap().task.task_id;
    s.set_variables("alice", &id, r#"{"a":1,"b":2}"#, None)
        .unwrap();
    let r = s
        .set_variables("alice", &id, r#"{"a":null,"c":[3]}"#, None)
        .unwrap();
    assert_eq!(r.variables, r#"{"b":2,"c":[3]}"#);
    s.complete_with_result("alice", &id, TaskStatus::Failed, r#"{"error":"x"}"#)
        .unwrap();
    assert!(matches!(
        s.set_variables("alice", &id, "{}", None),
        Err(StoreError::InvalidTransition(_))
    ));
    assert!(matches!(
        s.set_result("alice", &id, "1"),
        Err(StoreError::InvalidTransition(_))
    ));
    assert!(matches!(
        s.cancel("alice", &id),
        Err(StoreError::InvalidTransition(_))
    ));
    assert_eq!(s.get_result("alice", &id).unwrap(), r#"{"error":"x"}"#);
}

#[test]
fn pinned_version_conflicts_without_retrying() {
    let s = store(StoreConfig::for_tests());
    let id = s.create("alice", "m", None).unwrap().task.task_id;
    let v1 = s.get("alice", &id).unwrap().version;
    s.set_variables("alice", &id, r#"{"n":1}"#, Some(v1))
        .unwrap();
    assert!(matches!(
        s.set_variables("alice", &id, r#"{"n":2}"#, Some(v1)),
        Err(StoreError::Conflict(_))
    ));
}

#[test]
fn quota_counts_live_tasks_only() {
    let s = store(StoreConfig {
        max_tasks_per_owner: Some(2),
        ..StoreConfig::for_tests()
    });
    s.create("alice", "m", Some(10)).unwrap();
    s.create("alice", "m", None).unwrap();
    assert!(matches!(
        s.create("alice", "m", None),
        Err(StoreError::QuotaExceeded(_))
    ));
    assert!(s.create("bob", "m", None).is_ok());
    advance_ms(&s, 10);
    assert!(s.create("alice", "m", None).is_ok());
}

#[test]
fn malformed_ids_and_foreign_owners_are_not_found() {
    let s = store(StoreConfig::for_tests());
    let id = s.create("alice", "m", None).unwrap().task.task_id;
    let foreign = s.get("bob", &id).unwrap_err();
    let missing = s
        .get("bob", &format!("{}0", &id[..id.len() - 1]))
        .unwrap_err();
    assert!(matches!(foreign, StoreError::NotFound(_)));
    assert!(matches!(missing, StoreError::NotFound(_)));
    assert!(matches!(
        s.get("alice", "not-an-id"),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn pages_walk_every_task_once_and_cursors_are_owner_bound() {
    let s = store(StoreConfig::for_tests());
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(s.create("alice", "m", None).unwrap().task.task_id);
        advance_ms(&s, 1);
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = s
            .list("alice", cursor.as_deref(), Some(2), StatusView::Extension)
            .unwrap();
        seen.extend(page.tasks.into_iter().map(|t| t.task_id));
        match page.next_cursor {
            Some(c) => {
                assert!(matches!(
                    s.list("bob", Some(&c), None, StatusView::Extension),
                    Err(StoreError::InvalidParams(_))
                ));
                cursor = Some(c);
            }
            None => break,
        }
    }
    assert_eq!(seen, created);
}

#[test]
fn progress_reports_change_only_the_message_and_repeats_change_nothing() {
    let s = store(StoreConfig::for_tests());
    let created = s.create("alice", "tools/call", None).unwrap();
    let id = &created.task.task_id;
    advance_ms(&s, 10);
    let step = s
        .update_status("alice", id, None, TaskStatus::Working, Some("step 1 of 3"))
        .unwrap();
    assert_eq!(step.task.status, TaskStatus::Working);
    assert_eq!(step.task.status_message.as_deref(), Some("step 1 of 3"));
    assert_eq!(step.version, created.version + 1);
    assert_ne!(step.task.last_updated_at, created.task.last_updated_at);
    advance_ms(&s, 10);
    let repeat = s
        .update_status("alice", id, None, TaskStatus::Working, Some("step 1 of 3"))
        .unwrap();
    assert_eq!(repeat, step, "a repeat writes nothing");
    let empty_patch = s.set_variables("alice", id, "{}", None).unwrap();
    assert_eq!(
        empty_patch, step,
        "a patch that changes nothing writes nothing"
    );
    s.update_status("alice", id, None, TaskStatus::Completed, None)
        .unwrap();
    assert!(matches!(
        s.update_status("alice", id, None, TaskStatus::Completed, Some("again")),
        Err(StoreError::InvalidTransition(_))
    ));
}

fn elicit(key: &str) -> InputRequest {
    InputRequest {
        key: key.into(),
        method: "elicitation/create".into(),
        params: r#"{"message":"ok?"}"#.into(),
    }
}

fn answer(key: &str) -> InputResponse {
    InputResponse {
        key: key.into(),
        response: r#"{"action":"accept"}"#.into(),
    }
}

fn grant(holder: &str, duration: u64) -> LeaseGrant {
    LeaseGrant {
        holder: holder.into(),
        duration,
    }
}

#[test]
fn an_is_error_tool_result_is_completed_in_one_view_and_failed_in_the_other() {
    let s = store(StoreConfig::for_tests());
    let id = s.create("alice", "tools/call", None).unwrap().task.task_id;
    let result = r#"{"content":[],"isError":true,  "big":12345678901234567890123}"#;
    let done = s
        .finish("alice", &id, None, &Outcome::ToolResult(result.into()))
        .unwrap();
    assert_eq!(done.task.status, TaskStatus::Completed);
    assert_eq!(done.outcome, Some(OutcomeKind::ErrorResult));
    let core = s.inspect("alice", &id, StatusView::Core).unwrap();
    assert_eq!(core.record.task.status, TaskStatus::Failed);
    // Kept verbatim, even a number no f64 holds.
    assert_eq!(core.outcome, Some(Outcome::ToolResult(result.into())));
    let page = s.list("alice", None, None, StatusView::Core).unwrap();
    assert_eq!(page.tasks[0].status, TaskStatus::Failed);
    let ext = s.inspect("alice", &id, StatusView::Extension).unwrap();
    assert_eq!(ext.record.task.status, TaskStatus::Completed);
}

#[test]
fn a_json_rpc_error_fails_the_task_and_must_be_well_formed() {
    let s = store(StoreConfig::for_tests());
    let id = s.create("alice", "tools/call", None).unwrap().task.task_id;
    let bad = s.finish(
        "alice",
        &id,
        None,
        &Outcome::RpcError(r#"{"message":"x"}"#.into()),
    );
    assert!(matches!(bad, Err(StoreError::InvalidParams(_))));
    let err = r#"{"code":-32000,"message":"boom"}"#;
    let done = s
        .finish("alice", &id, None, &Outcome::RpcError(err.into()))
        .unwrap();
    assert_eq!(done.task.status, TaskStatus::Failed);
    let late = s.finish("alice", &id, None, &Outcome::ToolResult("{}".into()));
    assert!(matches!(late, Err(StoreError::InvalidTransition(_))));
    let detail = s.inspect("alice", &id, StatusView::Core).unwrap();
    assert_eq!(detail.outcome, Some(Outcome::RpcError(err.into())));
}

#[test]
fn input_keys_are_unique_for_life_and_partial_answers_keep_the_rest() {
    let s = store(StoreConfig::for_tests());
    let id = s.create("alice", "tools/call", None).unwrap().task.task_id;
    let r = s
        .request_input("alice", &id, None, &[elicit("a"), elicit("b")])
        .unwrap();
    assert_eq!(r.task.status, TaskStatus::InputRequired);
    assert_eq!(r.pending_input, ["a", "b"]);
    let r = s
        .answer_input("alice", &id, &[answer("a"), answer("zz")])
        .unwrap();
    assert_eq!(r.task.status, TaskStatus::InputRequired);
    assert_eq!(
        (r.pending_input.clone(), r.answers_waiting),
        (vec!["b".to_owned()], 1)
    );
    let detail = s.inspect("alice", &id, StatusView::Extension).unwrap();
    assert_eq!(detail.input_requests.len(), 1);
    assert_eq!(detail.input_requests[0].key, "b");
    // Answering "a" again changes nothing.
    let again = s.answer_input("alice", &id, &[answer("a")]).unwrap();
    assert_eq!(again.version, r.version);
    let r = s.answer_input("alice", &id, &[answer("b")]).unwrap();
    assert_eq!(r.task.status, TaskStatus::Working);
    let taken = s.take_answers("alice", &id, None).unwrap();
    assert_eq!(taken.len(), 2);
    assert!(s.take_answers("alice", &id, None).unwrap().is_empty());
    for reused in ["a", "b"] {
        assert!(matches!(
            s.request_input("alice", &id, None, &[elicit(reused)]),
            Err(StoreError::InvalidParams(_))
        ));
    }
    let bad_method = InputRequest {
        method: "tools/call".into(),
        ..elicit("c")
    };
    assert!(s.request_input("alice", &id, None, &[bad_method]).is_err());
}

#[test]
fn request_cancel_is_a_durable_idempotent_mark() {
    let s = store(StoreConfig::for_tests());
    let id = s.create("alice", "tools/call", None).unwrap().task.task_id;
    let r = s.request_cancel("alice", &id).unwrap();
    assert!(r.cancel_requested);
    assert_eq!(r.task.status, TaskStatus::Working);
    let again = s.request_cancel("alice", &id).unwrap();
    assert_eq!(again.version, r.version);
    let done = s.cancel("alice", &id).unwrap();
    assert_eq!(done.task.status, TaskStatus::Cancelled);
    let after = s.request_cancel("alice", &id).unwrap();
    assert_eq!(after.version, done.version);
    let late = s.finish("alice", &id, None, &Outcome::ToolResult("{}".into()));
    assert!(matches!(late, Err(StoreError::InvalidTransition(_))));
}

#[test]
fn a_lapsed_lease_fails_the_task_and_a_renewed_one_does_not() {
    let s = store(StoreConfig::for_tests());
    let request = TaskRequest {
        method: "tools/call".into(),
        tool_name: Some("slow".into()),
        arguments: Some(r#"{"n": 1}"#.into()),
        trace_parent: None,
        retry: None,
    };
    let lost = s
        .create_task("alice", &request, None, Some(&grant("w1", 1_000)))
        .unwrap()
        .task
        .task_id;
    let kept = s
        .create_task("alice", &request, None, Some(&grant("w2", 1_000)))
        .unwrap()
        .task
        .task_id;
    advance_ms(&s, 900);
    assert_eq!(s.reap_lost_workers(100).unwrap().failed, 0);
    s.renew_lease("alice", &kept, &grant("w2", 1_000)).unwrap();
    let stolen = s.renew_lease("alice", &kept, &grant("w3", 1_000));
    assert!(matches!(stolen, Err(StoreError::InvalidTransition(_))));
    advance_ms(&s, 200);
    assert_eq!(s.reap_lost_workers(100).unwrap().failed, 1);
    let failed = s.inspect("alice", &lost, StatusView::Extension).unwrap();
    assert_eq!(failed.record.task.status, TaskStatus::Failed);
    assert!(
        matches!(failed.outcome, Some(Outcome::RpcError(ref e)) if e.contains("worker was lost"))
    );
    assert_eq!(failed.arguments.as_deref(), Some(r#"{"n": 1}"#));
    assert_eq!(failed.record.tool_name.as_deref(), Some("slow"));
    assert_eq!(
        s.get("alice", &kept).unwrap().task.status,
        TaskStatus::Working
    );
    // The lost worker's late renewal and completion change nothing.
    let late = s.renew_lease("alice", &lost, &grant("w1", 1_000)).unwrap();
    assert_eq!(late.version, failed.record.version);
    assert!(s
        .finish("alice", &lost, None, &Outcome::ToolResult("{}".into()))
        .is_err());
    // Stale index items are dropped, not reaped twice.
    advance_ms(&s, 5_000);
    assert_eq!(s.reap_lost_workers(100).unwrap().failed, 1);
    assert_eq!(s.reap_lost_workers(100).unwrap().failed, 0);
}

#[test]
fn names_kept_in_the_head_are_short() {
    let s = store(StoreConfig::for_tests());
    let id = s.create("alice", "tools/call", None).unwrap().task.task_id;
    let long = "k".repeat(crate::config::MAX_NAME_BYTES + 1);
    assert!(s
        .request_input("alice", &id, None, &[elicit(&long)])
        .is_err());
    assert!(s.renew_lease("alice", &id, &grant(&long, 1_000)).is_err());
    let ok = "k".repeat(crate::config::MAX_NAME_BYTES);
    assert!(s.request_input("alice", &id, None, &[elicit(&ok)]).is_ok());
}

#[test]
fn a_task_keeps_the_trace_parent_of_its_creating_request() {
    let s = store(StoreConfig::for_tests());
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let request = TaskRequest {
        method: "tools/call".into(),
        tool_name: Some("slow".into()),
        trace_parent: Some(parent.into()),
        ..TaskRequest::default()
    };
    let id = s
        .create_task("alice", &request, None, None)
        .unwrap()
        .task
        .task_id;
    assert_eq!(
        s.get("alice", &id).unwrap().trace_parent.as_deref(),
        Some(parent)
    );
    let forged = TaskRequest {
        trace_parent: Some("00-not-a-trace-01".into()),
        ..request
    };
    assert!(matches!(
        s.create_task("alice", &forged, None, None),
        Err(StoreError::InvalidParams(ref m)) if m.contains("traceparent")
    ));
}

/// Items of at most 4 KiB: a body of tens of kilobytes is kept in parts.
fn small_items() -> StoreConfig {
    let mut config = StoreConfig::for_tests();
    config.max_record_bytes = 4 * 1024;
    config
}

fn big_text(bytes: usize) -> String {
    (0..bytes)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect()
}

#[test]
fn a_body_larger_than_an_item_is_kept_in_parts_and_read_back_whole() {
    let s = store(small_items());
    let arguments = format!(r#"{{"document":"{}"}}"#, big_text(50_000));
    let request = TaskRequest {
        method: "tools/call".into(),
        tool_name: Some("summarize".into()),
        arguments: Some(arguments.clone()),
        trace_parent: None,
        retry: None,
    };
    let created = s.create_task("alice", &request, None, None).unwrap();
    let id = created.task.task_id;
    // The task's item and its parts (50 KB in 4 KiB items).
    let items = s.kv().item_count();
    assert!(items >= 13, "{items} items");
    let detail = s.inspect("alice", &id, StatusView::Extension).unwrap();
    assert_eq!(detail.arguments.as_deref(), Some(arguments.as_str()));

    // A status change leaves the body as it was: no part is written.
    s.update_status("alice", &id, None, TaskStatus::Working, Some("reading"))
        .unwrap();
    assert_eq!(s.kv().item_count(), items);

    // The outcome changes the body: new parts, and the old ones are gone.
    let result = format!(
        r#"{{"content":[{{"type":"text","text":"{}"}}]}}"#,
        big_text(120_000)
    );
    s.finish("alice", &id, None, &Outcome::ToolResult(result.clone()))
        .unwrap();
    let after = s.kv().item_count();
    assert!(after > items + 20, "{after} items after the result");
    assert_eq!(s.get_result("alice", &id).unwrap(), result);
    let detail = s.inspect("alice", &id, StatusView::Extension).unwrap();
    assert_eq!(detail.outcome, Some(Outcome::ToolResult(result.clone())));
    assert_eq!(detail.arguments.as_deref(), Some(arguments.as_str()));

    // A listing reads the head; another owner sees nothing.
    let page = s.list("alice", None, None, StatusView::Extension).unwrap();
    assert_eq!(page.tasks.len(), 1);
    assert!(s.get("bob", &id).is_err());
    assert!(s
        .list("bob", None, None, StatusView::Extension)
        .unwrap()
        .tasks
        .is_empty());

    // Deleting the task removes every part.
    s.delete("alice", &id).unwrap();
    assert_eq!(s.kv().item_count(), 0);
}

#[test]
fn parts_expire_with_their_task_and_the_sweep_removes_them() {
    let s = store(small_items());
    let id = s
        .create("alice", "tools/call", Some(1_000))
        .unwrap()
        .task
        .task_id;
    let result = format!(r#"{{"text":"{}"}}"#, big_text(30_000));
    s.finish("alice", &id, None, &Outcome::ToolResult(result))
        .unwrap();
    assert!(s.kv().item_count() > 5);
    advance_ms(&s, 1_001);
    assert!(s.get("alice", &id).is_err());
    s.cleanup_expired(1_000).unwrap();
    assert_eq!(s.kv().item_count(), 0, "a part outlived its task");
}

#[test]
fn a_task_over_its_cap_is_refused_naming_its_size_and_the_limit() {
    let mut config = small_items();
    config.max_task_bytes = 64 * 1024;
    let s = store(config);
    let id = s.create("alice", "tools/call", None).unwrap().task.task_id;
    let before = s.kv().item_count();
    let result = format!(r#"{{"text":"{}"}}"#, big_text(100_000));
    let refused = s
        .finish("alice", &id, None, &Outcome::ToolResult(result))
        .unwrap_err();
    let message = refused.to_string();
    assert!(
        matches!(refused, StoreError::InvalidParams(_))
            && message.contains("the limit is 65536 bytes")
            && message.contains("would be 100"),
        "{message}"
    );
    assert_eq!(s.kv().item_count(), before, "no part written");
    assert_eq!(
        s.get("alice", &id).unwrap().task.status,
        TaskStatus::Working
    );
}

fn retryable(max_attempts: u32) -> TaskRequest {
    TaskRequest {
        method: "tools/call".into(),
        tool_name: Some("slow".into()),
        arguments: Some(r#"{"n":2}"#.into()),
        trace_parent: None,
        retry: Some(crate::RetryPolicy {
            max_attempts,
            backoff_ms: 100,
            backoff_max_ms: 100,
        }),
    }
}

/// A task of `retryable(max_attempts)` leased to `w1` for 1 s: its id.
fn start_retryable(s: &TaskStore<MemoryKv, TestEnv>, max_attempts: u32) -> String {
    s.create_task(
        "alice",
        &retryable(max_attempts),
        None,
        Some(&grant("w1", 1_000)),
    )
    .unwrap()
    .task
    .task_id
}

#[test]
fn a_retryable_task_whose_worker_was_lost_runs_again_once_claimed() {
    let s = store(StoreConfig::for_tests());
    let id = start_retryable(&s, 2);
    s.checkpoint("alice", &id, "w1", r#"{"done":5}"#).unwrap();
    advance_ms(&s, 1_000);
    let reaped = s.reap_lost_workers(100).unwrap();
    assert_eq!((reaped.failed, reaped.requeued), (0, 1));
    let waiting = s.get("alice", &id).unwrap();
    assert_eq!(waiting.task.status, TaskStatus::Working);
    assert!(waiting.queued && waiting.lease.is_none());
    let message = waiting.task.status_message.unwrap_or_default();
    assert!(
        message.starts_with("attempt 2 of 2 after its replica was lost"),
        "{message}"
    );
    // The lost worker finds out at its next write.
    let late = s.finish("alice", &id, Some("w1"), &Outcome::ToolResult("{}".into()));
    assert!(
        matches!(late, Err(StoreError::InvalidTransition(_))),
        "{late:?}"
    );
    assert!(s.renew_lease("alice", &id, &grant("w1", 1_000)).is_err());
    // Not before its backoff; then exactly one claimer wins.
    assert!(s.claim(&grant("w2", 1_000), 10).unwrap().is_empty());
    advance_ms(&s, 100);
    let claimed = s.claim(&grant("w2", 1_000), 10).unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(s.claim(&grant("w3", 1_000), 10).unwrap().is_empty());
    let (owner, run) = (&claimed[0].owner, &claimed[0].detail);
    assert_eq!(owner, "alice");
    assert!(claimed[0].waited_ms <= 100, "{}", claimed[0].waited_ms);
    assert_eq!(run.record.attempt, 2);
    assert_eq!(run.checkpoint.as_deref(), Some(r#"{"done":5}"#));
    assert_eq!(run.arguments.as_deref(), Some(r#"{"n":2}"#));
    assert_eq!(
        run.record.lease.as_ref().map(|l| l.holder.as_str()),
        Some("w2")
    );
    // Out of attempts: the next loss fails it, saying so.
    advance_ms(&s, 1_000);
    assert_eq!(s.reap_lost_workers(100).unwrap().failed, 1);
    let failed = s.inspect("alice", &id, StatusView::Extension).unwrap();
    assert!(
        matches!(failed.outcome, Some(Outcome::RpcError(ref e)) if e.contains("last attempt (2 of 2")),
        "{:?}",
        failed.outcome
    );
    advance_ms(&s, 10_000);
    assert_eq!(
        s.reap_lost_workers(100).unwrap(),
        crate::ReapReport::default()
    );
}

#[test]
fn a_hand_off_uses_no_attempt_and_is_claimable_at_once() {
    let s = store(StoreConfig::for_tests());
    let id = start_retryable(&s, 1);
    assert!(
        s.hand_off("alice", &id, "w2").is_err(),
        "only the holder hands off"
    );
    s.hand_off("alice", &id, "w1").unwrap();
    let claimed = s.claim(&grant("w2", 1_000), 1).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].detail.record.attempt, 2);
    // The checkpoint and progress are the holder's alone.
    assert!(s.checkpoint("alice", &id, "w1", "1").is_err());
    assert!(s
        .update_status("alice", &id, Some("w1"), TaskStatus::Working, Some("old"))
        .is_err());
    s.checkpoint("alice", &id, "w2", "2").unwrap();
    s.finish("alice", &id, Some("w2"), &Outcome::ToolResult("{}".into()))
        .unwrap();
    // A task without a policy is never handed off.
    let once = s
        .create_task(
            "alice",
            &TaskRequest {
                retry: None,
                ..retryable(1)
            },
            None,
            Some(&grant("w1", 1_000)),
        )
        .unwrap()
        .task
        .task_id;
    assert!(matches!(
        s.hand_off("alice", &once, "w1"),
        Err(StoreError::InvalidTransition(_))
    ));
}

#[test]
fn a_cancel_while_a_task_waits_for_its_next_run_ends_it_at_once() {
    let s = store(StoreConfig::for_tests());
    let id = start_retryable(&s, 3);
    advance_ms(&s, 1_000);
    assert_eq!(s.reap_lost_workers(100).unwrap().requeued, 1);
    let cancelled = s.request_cancel("alice", &id).unwrap();
    assert_eq!(cancelled.task.status, TaskStatus::Cancelled);
    advance_ms(&s, 1_000);
    assert!(s.claim(&grant("w2", 1_000), 10).unwrap().is_empty());
}

#[test]
fn an_answer_given_to_one_run_is_not_asked_again_by_the_next() {
    let s = store(StoreConfig::for_tests());
    let id = start_retryable(&s, 2);
    s.request_input("alice", &id, Some("w1"), &[elicit("name")])
        .unwrap();
    s.answer_input(
        "alice",
        &id,
        &[InputResponse {
            key: "name".into(),
            response: r#"{"action":"accept"}"#.into(),
        }],
    )
    .unwrap();
    assert_eq!(s.take_answers("alice", &id, Some("w1")).unwrap().len(), 1);
    s.hand_off("alice", &id, "w1").unwrap();
    s.claim(&grant("w2", 1_000), 1).unwrap();
    // The same key again: answered from the store, not asked.
    let again = s
        .request_input("alice", &id, Some("w2"), &[elicit("name")])
        .unwrap();
    assert_eq!(again.task.status, TaskStatus::Working);
    assert!(again.pending_input.is_empty());
    let answers = s.take_answers("alice", &id, Some("w2")).unwrap();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].response, r#"{"action":"accept"}"#);
    // A new key is a new question.
    let asked = s
        .request_input("alice", &id, Some("w2"), &[elicit("age")])
        .unwrap();
    assert_eq!(asked.task.status, TaskStatus::InputRequired);
}

/// A task of `owner` created while its replica had no room: its id.
fn queue_one(s: &TaskStore<MemoryKv, TestEnv>, owner: &str) -> String {
    let request = TaskRequest {
        retry: None,
        ..retryable(1)
    };
    s.create_queued(owner, &request, None).unwrap().task.task_id
}

#[test]
fn a_task_created_without_room_waits_in_the_queue_until_one_replica_claims_it() {
    let s = store(StoreConfig::for_tests());
    let id = queue_one(&s, "alice");
    let waiting = s.get("alice", &id).unwrap();
    assert_eq!(waiting.task.status, TaskStatus::Working);
    assert!(waiting.queued && waiting.lease.is_none());
    assert_eq!(waiting.attempt, 0);
    assert!(waiting
        .task
        .status_message
        .is_some_and(|m| m.starts_with("queued")));
    assert!(matches!(
        s.renew_lease("alice", &id, &grant("w1", 1_000)),
        Err(StoreError::InvalidTransition(_))
    ));
    // Claimable at once, by exactly one claimer; no retry policy needed:
    // it never ran.
    advance_ms(&s, 250);
    let claimed = s.claim(&grant("w1", 1_000), 10).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].waited_ms, 250);
    let (owner, detail) = (&claimed[0].owner, &claimed[0].detail);
    assert_eq!((owner.as_str(), detail.record.attempt), ("alice", 1));
    assert_eq!(detail.arguments.as_deref(), Some(r#"{"n":2}"#));
    assert!(!detail.record.queued && detail.record.task.status_message.is_none());
    assert!(s.claim(&grant("w2", 1_000), 10).unwrap().is_empty());
    let done = s.finish("alice", &id, Some("w1"), &tool_result()).unwrap();
    assert_eq!(done.task.status, TaskStatus::Completed);
}

fn tool_result() -> Outcome {
    Outcome::ToolResult(r#"{"content":[]}"#.into())
}

#[test]
fn claims_serve_the_owners_with_waiting_tasks_in_turn() {
    let s = store(StoreConfig::for_tests());
    // One owner queues many, then another owner one.
    let many: Vec<String> = (0..6).map(|_| queue_one(&s, "busy")).collect();
    let one = queue_one(&s, "quiet");
    let mut order = Vec::new();
    for _ in 0..4 {
        for claimed in s.claim(&grant("w1", 60_000), 1).unwrap() {
            order.push((claimed.owner, claimed.detail.record.task.task_id));
        }
    }
    let owners: Vec<&str> = order.iter().map(|(o, _)| o.as_str()).collect();
    assert!(owners[..2].contains(&"quiet"), "{owners:?}");
    assert_eq!(owners.iter().filter(|o| **o == "quiet").count(), 1);
    // Each owner's tasks in the order they came.
    let busy: Vec<&String> = order
        .iter()
        .filter(|(o, _)| o == "busy")
        .map(|(_, id)| id)
        .collect();
    assert_eq!(busy, many.iter().take(busy.len()).collect::<Vec<_>>());
    assert!(order.iter().any(|(_, id)| *id == one));
    // A batch takes one of each owner before a second of any.
    let s = store(StoreConfig::for_tests());
    for _ in 0..3 {
        queue_one(&s, "busy");
    }
    queue_one(&s, "quiet");
    let batch = s.claim(&grant("w1", 60_000), 2).unwrap();
    let mut owners: Vec<&str> = batch.iter().map(|c| c.owner.as_str()).collect();
    owners.sort_unstable();
    assert_eq!(owners, ["busy", "quiet"]);
}

#[test]
fn a_cancel_while_a_task_waits_in_the_queue_ends_it_and_its_item() {
    let s = store(StoreConfig::for_tests());
    let items_before = s.kv().item_count();
    let id = queue_one(&s, "alice");
    let cancelled = s.request_cancel("alice", &id).unwrap();
    assert_eq!(cancelled.task.status, TaskStatus::Cancelled);
    assert!(!cancelled.queued);
    // The task remains (until its ttl); its queue item does not.
    assert_eq!(s.kv().item_count(), items_before + 1);
    assert!(s.claim(&grant("w1", 1_000), 10).unwrap().is_empty());
}

#[test]
fn stale_queue_items_are_dropped_by_the_claimer_that_meets_them() {
    let s = store(StoreConfig::for_tests());
    let gone = queue_one(&s, "alice");
    let next = queue_one(&s, "alice");
    s.delete("alice", &gone).unwrap();
    let claimed = s.claim(&grant("w1", 1_000), 1).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].detail.record.task.task_id, next);
    // Only the claimed task, its lease's index item and the round robin's
    // position remain.
    assert_eq!(s.kv().item_count(), 3);
}
