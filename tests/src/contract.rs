//! The rules of the task store, one async function each (see
//! `docs/task-semantics.md`), run through the host API. The list below is the
//! only place a rule is named: the functions are private, so a rule left
//! out of it is dead code and fails the build.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use pmcp_tasks_host::clock::ManualClock;
use pmcp_tasks_host::{
    StoreConfig, TaskError, TaskHost, TaskStatus, INTERNAL_ERROR, INVALID_PARAMS,
};
use serde_json::{json, Map, Value};

use crate::payloads::base64_like;
use crate::{BackendFactory, Fixture};

crate::rule_list! {
    $ contract_suite, contract;
    create_returns_the_wire_shape,
    unlimited_ttl_is_null_on_the_wire,
    all_25_status_transitions,
    terminal_tasks_are_immutable,
    ttl_default_and_clamp,
    expiry_follows_the_injected_clock,
    concurrent_increments_lose_no_update,
    concurrent_merges_lose_no_key,
    quota_holds_under_50_concurrent_creates,
    expired_tasks_free_quota,
    pagination_walks_every_task_once,
    bad_cursors_are_invalid_params,
    page_size_is_clamped,
    adversarial_owner_ids_never_see_each_other,
    anonymous_owner_needs_opt_in,
    foreign_and_missing_tasks_look_the_same,
    oversized_and_malformed_input_is_refused_and_changes_nothing,
    complete_with_result_is_one_write,
    cancel_and_delete,
    variables_merge_with_null_deletion,
    cleanup_removes_only_expired,
    a_ttl_past_the_longest_is_refused_and_leaves_nothing,
    cursors_are_good_only_where_their_secret_is,
    a_hostile_owner_corpus_reaches_no_other_owner_by_any_operation,
    progress_reports_change_the_message_and_repeats_change_nothing,
    a_created_task_is_at_once_visible_to_every_replica,
    results_of_megabytes_round_trip_whole_and_leave_no_part_behind,
    a_writer_stopped_mid_write_leaves_no_part_past_the_sweep,
}

const ALICE: &str = "https://idp.example/users/alice";
const BOB: &str = "mailto:bob@example.com";

async fn fixture(factory: &dyn BackendFactory) -> Fixture {
    Fixture::new(factory, StoreConfig::default()).await
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

async fn new_task(host: &TaskHost, owner: &str) -> String {
    host.create(owner, "tools/call", None)
        .await
        .expect("create")
        .task
        .task_id
}

/// The ids on the first page (up to 100 tasks) of `owner`'s listing.
async fn first_page_ids(host: &TaskHost, owner: &str) -> Vec<String> {
    let page = host.list(owner, None, Some(100)).await.expect("list");
    page.tasks.into_iter().map(|t| t.task_id).collect()
}

/// Moves a fresh task into `status` along legal transitions.
async fn task_in(host: &TaskHost, owner: &str, status: TaskStatus) -> String {
    let id = new_task(host, owner).await;
    if status != TaskStatus::Working {
        host.update_status(owner, &id, status, Some("set up"))
            .await
            .expect("reach status");
    }
    id
}

fn assert_invalid_params(result: Result<impl std::fmt::Debug, TaskError>, what: &str) -> TaskError {
    let err = result.expect_err(what);
    assert_eq!(err.json_rpc_code(), INVALID_PARAMS, "{what}: {err:?}");
    err
}

async fn create_returns_the_wire_shape(factory: &dyn BackendFactory) {
    let f = fixture(factory).await;
    let record = f
        .host
        .create(ALICE, "tools/call", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    let wire = serde_json::to_value(&record.task).unwrap();
    let keys: HashSet<&str> = wire
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected: HashSet<&str> = [
        "taskId",
        "status",
        "createdAt",
        "lastUpdatedAt",
        "ttl",
        "pollInterval",
    ]
    .into_iter()
    .collect();
    assert_eq!(keys, expected);
    assert_eq!(wire["status"], "working");
    assert_eq!(wire["ttl"], 60_000);
    let created = wire["createdAt"].as_str().unwrap();
    assert_eq!(created.len(), "2025-11-25T00:00:00.000Z".len());
    assert!(
        created.ends_with('Z') && created.as_bytes()[10] == b'T',
        "{created}"
    );
    assert_eq!(record.request_method, "tools/call");
    let id = &record.task.task_id;
    assert!(
        id.len() >= 32,
        "task ids carry at least 128 random bits: {id}"
    );
    let again = f.host.create(ALICE, "tools/call", None).await.unwrap();
    assert_ne!(&again.task.task_id, id);
    assert_eq!(f.host.get(ALICE, id).await.unwrap().task, record.task);
}

async fn unlimited_ttl_is_null_on_the_wire(factory: &dyn BackendFactory) {
    let mut config = StoreConfig::default();
    config.default_ttl = None;
    config.max_ttl = None;
    let f = Fixture::new(factory, config).await;
    let task = f.host.create(ALICE, "tools/call", None).await.unwrap().task;
    let wire = serde_json::to_value(&task).unwrap();
    assert!(wire.as_object().unwrap().contains_key("ttl"));
    assert_eq!(wire["ttl"], Value::Null);
    f.clock.advance(Duration::from_secs(10 * 365 * 86_400));
    assert!(f.host.get(ALICE, &task.task_id).await.is_ok());
}

async fn all_25_status_transitions(factory: &dyn BackendFactory) {
    let f = fixture(factory).await;
    let mut legal = 0;
    for from in TaskStatus::ALL {
        for to in TaskStatus::ALL {
            let id = task_in(&f.host, ALICE, from).await;
            let before = f.host.get(ALICE, &id).await.unwrap();
            // From a live status anywhere; the same status is a progress
            // report (a new message).
            let allowed = !from.is_terminal();
            let outcome = f.host.update_status(ALICE, &id, to, Some("moved")).await;
            let after = f.host.get(ALICE, &id).await.unwrap();
            if allowed {
                legal += 1;
                let moved = outcome.unwrap_or_else(|e| panic!("{from} -> {to} refused: {e}"));
                assert_eq!((moved.task.status, after.task.status), (to, to));
                assert_eq!(after.task.status_message.as_deref(), Some("moved"));
                assert_eq!(after.version, before.version + 1);
            } else {
                let err = assert_invalid_params(outcome, &format!("{from} -> {to}"));
                assert!(
                    matches!(err, TaskError::InvalidTransition(_)),
                    "{from} -> {to}: {err:?}"
                );
                assert_eq!(after, before, "{from} -> {to} changed the task");
            }
        }
    }
    assert_eq!(legal, 10);
}

async fn terminal_tasks_are_immutable(factory: &dyn BackendFactory) {
    let f = fixture(factory).await;
    for terminal in [
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
    ] {
        let id = task_in(&f.host, ALICE, terminal).await;
        let before = f.host.get(ALICE, &id).await.unwrap();
        let h = &f.host;
        assert_invalid_params(
            h.set_variables(ALICE, &id, &object(json!({"k": 1}))).await,
            "variables",
        );
        assert_invalid_params(h.set_result(ALICE, &id, &json!(1)).await, "result");
        assert_invalid_params(
            h.complete_with_result(ALICE, &id, TaskStatus::Completed, &json!(1))
                .await,
            "complete",
        );
        assert_invalid_params(h.cancel(ALICE, &id).await, "cancel");
        assert_invalid_params(
            h.update_status(ALICE, &id, TaskStatus::Working, None).await,
            "reopen",
        );
        assert_eq!(
            h.get(ALICE, &id).await.unwrap(),
            before,
            "{terminal} task changed"
        );
    }
}

async fn ttl_default_and_clamp(factory: &dyn BackendFactory) {
    let mut config = StoreConfig::default();
    config.default_ttl = Some(Duration::from_secs(60));
    config.max_ttl = Some(Duration::from_secs(120));
    let f = Fixture::new(factory, config).await;
    let ttl = |r: pmcp_tasks_host::TaskRecord| r.task.ttl;
    assert_eq!(
        ttl(f.host.create(ALICE, "m", None).await.unwrap()),
        Some(60_000)
    );
    assert_eq!(
        ttl(f
            .host
            .create(ALICE, "m", Some(Duration::from_secs(90)))
            .await
            .unwrap()),
        Some(90_000)
    );
    assert_eq!(
        ttl(f
            .host
            .create(ALICE, "m", Some(Duration::from_secs(500)))
            .await
            .unwrap()),
        Some(120_000)
    );
    assert_invalid_params(
        f.host.create(ALICE, "m", Some(Duration::ZERO)).await,
        "zero ttl",
    );
}

async fn expiry_follows_the_injected_clock(factory: &dyn BackendFactory) {
    let f = fixture(factory).await;
    let id = f
        .host
        .create(ALICE, "m", Some(Duration::from_secs(1)))
        .await
        .unwrap()
        .task
        .task_id;
    f.host
        .set_result(ALICE, &id, &json!("partial"))
        .await
        .unwrap();
    f.clock.advance(Duration::from_millis(999));
    assert!(f.host.get(ALICE, &id).await.is_ok());
    f.clock.advance(Duration::from_millis(1));
    let h = &f.host;
    assert!(matches!(
        h.get(ALICE, &id).await,
        Err(TaskError::NotFound(_))
    ));
    assert!(matches!(
        h.get_result(ALICE, &id).await,
        Err(TaskError::NotFound(_))
    ));
    assert!(matches!(
        h.update_status(ALICE, &id, TaskStatus::Completed, None)
            .await,
        Err(TaskError::NotFound(_))
    ));
    assert!(matches!(
        h.set_variables(ALICE, &id, &object(json!({"a": 1}))).await,
        Err(TaskError::NotFound(_))
    ));
    assert!(matches!(
        h.cancel(ALICE, &id).await,
        Err(TaskError::NotFound(_))
    ));
    assert!(h.list(ALICE, None, None).await.unwrap().tasks.is_empty());
}

async fn concurrent_increments_lose_no_update(factory: &dyn BackendFactory) {
    const WRITERS: u64 = 16;
    let f = fixture(factory).await;
    let id = new_task(&f.host, ALICE).await;
    f.host
        .set_variables(ALICE, &id, &object(json!({"counter": 0})))
        .await
        .unwrap();
    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        let (host, id) = (f.host.clone(), id.clone());
        writers.push(tokio::spawn(async move {
            let mut conflicts = 0u32;
            loop {
                let current = host.get(ALICE, &id).await.unwrap();
                let n = current.variables["counter"].as_u64().unwrap();
                let patch = object(json!({"counter": n + 1}));
                match host
                    .set_variables_at_version(ALICE, &id, &patch, current.version)
                    .await
                {
                    Ok(_) => return conflicts,
                    Err(e @ TaskError::Conflict(_)) => {
                        assert!(e.is_retryable() && e.json_rpc_code() == INTERNAL_ERROR);
                        conflicts += 1;
                    }
                    Err(e) => panic!("increment failed: {e}"),
                }
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let last = f.host.get(ALICE, &id).await.unwrap();
    assert_eq!(last.variables["counter"], WRITERS);
}

async fn concurrent_merges_lose_no_key(factory: &dyn BackendFactory) {
    const WRITERS: usize = 16;
    let f = fixture(factory).await;
    let id = new_task(&f.host, ALICE).await;
    let mut writers = Vec::new();
    for n in 0..WRITERS {
        let (host, id) = (f.host.clone(), id.clone());
        writers.push(tokio::spawn(async move {
            host.set_variables(ALICE, &id, &object(json!({ format!("k{n}"): n })))
                .await
        }));
    }
    for writer in writers {
        writer
            .await
            .unwrap()
            .expect("the store retries lost races itself");
    }
    let vars = f.host.get(ALICE, &id).await.unwrap().variables;
    assert_eq!(vars.len(), WRITERS);
}

async fn quota_holds_under_50_concurrent_creates(factory: &dyn BackendFactory) {
    let mut config = StoreConfig::default();
    config.max_tasks_per_owner = Some(10);
    let f = Fixture::new(factory, config).await;
    let creates: Vec<_> = (0..50)
        .map(|_| {
            let host = f.host.clone();
            tokio::spawn(async move { host.create(ALICE, "tools/call", None).await })
        })
        .collect();
    let (mut ok, mut refused) = (0, 0);
    for create in creates {
        match create.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e @ TaskError::QuotaExceeded(_)) => {
                assert_eq!(e.json_rpc_code(), INVALID_PARAMS);
                assert!(e.to_string().contains("quota"), "{e}");
                refused += 1;
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!((ok, refused), (10, 40));
    assert_eq!(
        f.host
            .list(ALICE, None, Some(100))
            .await
            .unwrap()
            .tasks
            .len(),
        10
    );
    assert!(
        f.host.create(BOB, "tools/call", None).await.is_ok(),
        "quota is per owner"
    );
}

async fn expired_tasks_free_quota(factory: &dyn BackendFactory) {
    let mut config = StoreConfig::default();
    config.max_tasks_per_owner = Some(2);
    let f = Fixture::new(factory, config).await;
    f.host
        .create(ALICE, "m", Some(Duration::from_secs(1)))
        .await
        .unwrap();
    f.host.create(ALICE, "m", None).await.unwrap();
    assert!(matches!(
        f.host.create(ALICE, "m", None).await,
        Err(TaskError::QuotaExceeded(_))
    ));
    f.clock.advance(Duration::from_secs(1));
    assert!(f.host.create(ALICE, "m", None).await.is_ok());
}

async fn pagination_walks_every_task_once(factory: &dyn BackendFactory) {
    let f = fixture(factory).await;
    let mut created = Vec::new();
    for n in 0..23 {
        created.push(new_task(&f.host, ALICE).await);
        // Half the tasks share an instant with their neighbour.
        if n % 2 == 0 {
            f.clock.advance(Duration::from_millis(1));
        }
    }
    new_task(&f.host, BOB).await;
    for page_size in [1u32, 7, 100] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = f
                .host
                .list(ALICE, cursor.as_deref(), Some(page_size))
                .await
                .unwrap();
            assert!(page.tasks.len() <= page_size as usize);
            seen.extend(page.tasks);
            pages += 1;
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let ids: Vec<&String> = seen.iter().map(|t| &t.task_id).collect();
        let unique: HashSet<&String> = ids.iter().copied().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "page size {page_size}: a task appeared twice"
        );
        assert_eq!(
            unique,
            created.iter().collect(),
            "page size {page_size}: tasks missing"
        );
        assert_eq!(
            pages,
            23usize.div_ceil(page_size as usize),
            "page size {page_size}"
        );
        assert!(
            seen.windows(2).all(|w| w[0].created_at <= w[1].created_at),
            "creation order"
        );
        let again = first_page_ids(&f.host, ALICE).await;
        assert_eq!(
            again.iter().collect::<Vec<_>>(),
            ids,
            "order is stable across walks"
        );
    }
}

async fn bad_cursors_are_invalid_params(factory: &dyn BackendFactory) {
    let f = fixture(factory).await;
    for _ in 0..3 {
        new_task(&f.host, ALICE).await;
        new_task(&f.host, BOB).await;
    }
    let cursor = f
        .host
        .list(ALICE, None, Some(1))
        .await
        .unwrap()
        .next_cursor
        .expect("more pages");
    let bobs = f
        .host
        .list(BOB, None, Some(1))
        .await
        .unwrap()
        .next_cursor
        .expect("more pages");
    let mut tampered = cursor.clone().into_bytes();
    tampered[10] = if tampered[10] == b'a' { b'b' } else { b'a' };
    let tampered = String::from_utf8(tampered).unwrap();
    let bad = [
        "",
        "not a cursor",
        "00",
        &cursor[..cursor.len() - 1],
        &tampered,
        &bobs,
        "\u{0}\u{ffff}",
    ];
    for bad_cursor in bad {
        let err =
            assert_invalid_params(f.host.list(ALICE, Some(bad_cursor), None).await, bad_cursor);
        assert!(err.to_string().contains("cursor"), "{err}");
    }
    assert!(f.host.list(ALICE, Some(&cursor), None).await.is_ok());
}

async fn page_size_is_clamped(factory: &dyn BackendFactory) {
    let mut config = StoreConfig::default();
    config.default_page_size = 3;
    config.max_page_size = 5;
    let f = Fixture::new(factory, config).await;
    for _ in 0..8 {
        new_task(&f.host, ALICE).await;
    }
    assert_eq!(f.host.list(ALICE, None, None).await.unwrap().tasks.len(), 3);
    assert_eq!(
        f.host
            .list(ALICE, None, Some(1_000))
            .await
            .unwrap()
            .tasks
            .len(),
        5
    );
    assert_invalid_params(f.host.list(ALICE, None, Some(0)).await, "page size 0");
}

async fn adversarial_owner_ids_never_see_each_other(factory: &dyn BackendFactory) {
    let mut config = StoreConfig::default();
    config.max_tasks_per_owner = Some(2);
    let f = Fixture::new(factory, config).await;
    let huge = "x".repeat(10 * 1024);
    let owners = [
        "a",
        "a:b",
        "a:",
        ":a",
        "{a}",
        "*",
        "a*",
        "a b",
        "ä:ö/ü",
        "👩‍💻{x}:*",
        "a\u{0}b",
        huge.as_str(),
    ];
    let mut tasks = Vec::new();
    for owner in owners {
        let ids = vec![
            new_task(&f.host, owner).await,
            new_task(&f.host, owner).await,
        ];
        tasks.push((owner, ids));
    }
    for (owner, ids) in &tasks {
        let listed: HashSet<String> = first_page_ids(&f.host, owner).await.into_iter().collect();
        assert_eq!(
            listed,
            ids.iter().cloned().collect(),
            "listing of {owner:.20}"
        );
        for (other, other_ids) in &tasks {
            for id in other_ids {
                let seen = f.host.get(owner, id).await;
                assert_eq!(
                    seen.is_ok(),
                    owner == other,
                    "{owner:.20} reading a task of {other:.20}"
                );
                if owner != other {
                    let cancel = f.host.cancel(owner, id).await;
                    assert!(matches!(cancel, Err(TaskError::NotFound(_))));
                }
            }
        }
    }
    // Every owner's quota is full, and counted apart from look-alike owners.
    for (owner, _) in &tasks {
        assert!(matches!(
            f.host.create(owner, "m", None).await,
            Err(TaskError::QuotaExceeded(_))
        ));
    }
    assert_invalid_params(f.host.create("", "m", None).await, "anonymous owner");
}

async fn anonymous_owner_needs_opt_in(factory: &dyn BackendFactory) {
    let f = fixture(factory).await;
    let err = assert_invalid_params(f.host.create("", "m", None).await, "anonymous refused");
    assert!(err.to_string().contains("anonymous"), "{err}");
    let mut config = StoreConfig::default();
    config.allow_anonymous = true;
    let open = Fixture::new(factory, config).await;
    let id = new_task(&open.host, "").await;
    assert!(open.host.get("", &id).await.is_ok());
    assert!(open.host.get(ALICE, &id).await.is_err());
}

async fn foreign_and_missing_tasks_look_the_same(factory: &dyn BackendFactory) {
    let f = fixture(factory).await;
    let id = new_task(&f.host, ALICE).await;
    let foreign = f.host.get(BOB, &id).await.unwrap_err();
    f.host.delete(ALICE, &id).await.unwrap();
    let missing = f.host.get(BOB, &id).await.unwrap_err();
    let deleted = f.host.get(ALICE, &id).await.unwrap_err();
    // Same variant, same message: nothing tells a foreign task from none.
    assert_eq!(format!("{foreign:?}"), format!("{missing:?}"));
    assert_eq!(format!("{foreign:?}"), format!("{deleted:?}"));
    assert_eq!(foreign.json_rpc_code(), INVALID_PARAMS);
    let garbage = f.host.get(ALICE, "../../etc/passwd").await.unwrap_err();
    assert!(matches!(garbage, TaskError::NotFound(_)));
}

async fn oversized_and_malformed_input_is_refused_and_changes_nothing(
    factory: &dyn BackendFactory,
) {
    let mut config = StoreConfig::default();
    config.max_variables_bytes = 1_024;
    config.max_result_bytes = 2_048;
    config.max_json_depth = 8;
    config.max_string_bytes = 256;
    let f = Fixture::new(factory, config).await;
    let id = new_task(&f.host, ALICE).await;
    let before = f.host.get(ALICE, &id).await.unwrap();
    let mut deep = json!(1);
    for _ in 0..20 {
        deep = json!([deep]);
    }
    let cases = [
        (
            "big variables",
            object(json!({"blob": "x".repeat(200), "more": vec!["y".repeat(200); 5]})),
        ),
        ("deep variables", object(json!({ "deep": deep.clone() }))),
        ("long string", object(json!({ "s": "z".repeat(300) }))),
        ("long key", object(json!({ "k".repeat(300): 1 }))),
    ];
    for (what, patch) in cases {
        let err = assert_invalid_params(f.host.set_variables(ALICE, &id, &patch).await, what);
        assert!(err.to_string().contains("limit"), "{what}: {err}");
    }
    assert_invalid_params(
        f.host
            .set_result(ALICE, &id, &json!("r".repeat(250).repeat(10)))
            .await,
        "big result",
    );
    assert_invalid_params(f.host.set_result(ALICE, &id, &deep).await, "deep result");
    assert_invalid_params(
        f.host.create(ALICE, &"m".repeat(300), None).await,
        "long method",
    );
    assert_invalid_params(
        f.host
            .update_status(
                ALICE,
                &id,
                TaskStatus::InputRequired,
                Some(&"m".repeat(300)),
            )
            .await,
        "long message",
    );
    assert_eq!(f.host.get(ALICE, &id).await.unwrap(), before);
}

async fn complete_with_result_is_one_write(factory: &dyn BackendFactory) {
    let f = fixture(factory).await;
    let id = new_task(&f.host, ALICE).await;
    let before = f.host.get(ALICE, &id).await.unwrap();
    assert!(matches!(
        f.host.get_result(ALICE, &id).await,
        Err(TaskError::InvalidParams(_))
    ));
    let result = json!({"content": [{"type": "text", "text": "done"}], "isError": false});
    let done = f
        .host
        .complete_with_result(ALICE, &id, TaskStatus::Completed, &result)
        .await
        .unwrap();
    assert_eq!(done.version, before.version + 1);
    assert_eq!(
        (done.task.status, done.has_result),
        (TaskStatus::Completed, true)
    );
    assert_eq!(f.host.get_result(ALICE, &id).await.unwrap(), result);
    let other = new_task(&f.host, ALICE).await;
    let not_terminal = f
        .host
        .complete_with_result(ALICE, &other, TaskStatus::InputRequired, &result)
        .await;
    assert_invalid_params(not_terminal, "complete into a non-terminal status");
    let failed = f
        .host
        .complete_with_result(ALICE, &other, TaskStatus::Failed, &json!({"error": "boom"}))
        .await;
    assert_eq!(failed.unwrap().task.status, TaskStatus::Failed);
}

async fn cancel_and_delete(factory: &dyn BackendFactory) {
    let f = fixture(factory).await;
    let id = task_in(&f.host, ALICE, TaskStatus::InputRequired).await;
    assert_eq!(
        f.host.cancel(ALICE, &id).await.unwrap().task.status,
        TaskStatus::Cancelled
    );
    let err = assert_invalid_params(f.host.cancel(ALICE, &id).await, "cancel twice");
    assert!(err.to_string().contains("cancelled"), "{err}");
    assert!(matches!(
        f.host.delete(BOB, &id).await,
        Err(TaskError::NotFound(_))
    ));
    f.host.delete(ALICE, &id).await.unwrap();
    assert!(matches!(
        f.host.get(ALICE, &id).await,
        Err(TaskError::NotFound(_))
    ));
    assert!(matches!(
        f.host.delete(ALICE, &id).await,
        Err(TaskError::NotFound(_))
    ));
}

async fn variables_merge_with_null_deletion(factory: &dyn BackendFactory) {
    let f = fixture(factory).await;
    let id = new_task(&f.host, ALICE).await;
    f.host
        .set_variables(ALICE, &id, &object(json!({"a": 1, "b": {"c": [1, 2]}})))
        .await
        .unwrap();
    let r = f
        .host
        .set_variables(ALICE, &id, &object(json!({"a": null, "d": "x"})))
        .await
        .unwrap();
    assert_eq!(
        Value::Object(r.variables),
        json!({"b": {"c": [1, 2]}, "d": "x"})
    );
    let first = f.host.get(ALICE, &id).await.unwrap();
    let later = f
        .host
        .set_variables(ALICE, &id, &object(json!({})))
        .await
        .unwrap();
    // A patch that changes nothing writes nothing (issue 12: no needless
    // lastUpdatedAt bump); a real change writes a new version.
    assert_eq!(later, first);
    let changed = f
        .host
        .set_variables(ALICE, &id, &object(json!({"d": "y"})))
        .await
        .unwrap();
    assert_eq!(changed.version, first.version + 1);
    assert!(changed.task.last_updated_at >= first.task.last_updated_at);
}

async fn cleanup_removes_only_expired(factory: &dyn BackendFactory) {
    let f = fixture(factory).await;
    for _ in 0..3 {
        f.host
            .create(ALICE, "m", Some(Duration::from_secs(1)))
            .await
            .unwrap();
    }
    let keep = f
        .host
        .create(BOB, "m", Some(Duration::from_secs(60)))
        .await
        .unwrap()
        .task
        .task_id;
    f.clock.advance(Duration::from_secs(2));
    assert_eq!(f.host.cleanup_expired(1_000).await.unwrap(), 3);
    assert_eq!(f.host.cleanup_expired(1_000).await.unwrap(), 0);
    assert!(f.host.get(BOB, &keep).await.is_ok());
}

async fn a_ttl_past_the_longest_is_refused_and_leaves_nothing(factory: &dyn BackendFactory) {
    let mut config = StoreConfig::default();
    config.default_ttl = None;
    config.max_ttl = None;
    let f = Fixture::new(factory, config).await;
    for ttl in [Duration::from_millis(u64::MAX), Duration::MAX] {
        let refused = f.host.create(ALICE, "tools/call", Some(ttl)).await;
        let err = assert_invalid_params(refused, "a ttl no backend can represent");
        assert!(err.to_string().contains("ttl"), "{err}");
    }
    assert!(
        first_page_ids(&f.host, ALICE).await.is_empty(),
        "nothing was written"
    );
    let kept = f.host.create(ALICE, "tools/call", None).await.unwrap();
    assert_eq!(kept.task.ttl, None, "no ttl is how a task lives forever");
    assert_eq!(first_page_ids(&f.host, ALICE).await, [kept.task.task_id]);
}

async fn cursors_are_good_only_where_their_secret_is(factory: &dyn BackendFactory) {
    let backend = factory.fresh().await;
    let host_with = |secret: &[u8]| {
        let mut config = StoreConfig::default();
        config.cursor_secret = secret.to_vec();
        TaskHost::builder()
            .backend(backend.clone())
            .config(config)
            .build()
    };
    let (first, second) = (host_with(b"").await.unwrap(), host_with(b"").await.unwrap());
    for _ in 0..3 {
        new_task(&first, ALICE).await;
    }
    let cursor = first
        .list(ALICE, None, Some(1))
        .await
        .unwrap()
        .next_cursor
        .expect("more");
    assert_eq!(
        first
            .list(ALICE, Some(&cursor), Some(1))
            .await
            .unwrap()
            .tasks
            .len(),
        1
    );
    // No secret configured: each host draws its own, so nobody can mint a
    // cursor, and another host does not take this one.
    assert_invalid_params(
        second.list(ALICE, Some(&cursor), Some(1)).await,
        "another host's random secret",
    );
    // Replicas configured with one secret honour each other's cursors.
    let (a, b) = (
        host_with(b"shared").await.unwrap(),
        host_with(b"shared").await.unwrap(),
    );
    let shared = a
        .list(ALICE, None, Some(1))
        .await
        .unwrap()
        .next_cursor
        .expect("more");
    assert_eq!(
        b.list(ALICE, Some(&shared), Some(2))
            .await
            .unwrap()
            .tasks
            .len(),
        2
    );
}

/// Owner ids built to collide with each other in a careless store: in
/// families of look-alikes (separators, hash-tag braces, NUL, prefixes of
/// each other, Unicode confusables, case and whitespace, very long ids).
fn hostile_owner_corpus() -> Vec<Vec<String>> {
    let long = "o".repeat(8 * 1024);
    let families: [&[&str]; 6] = [
        &[
            "alice",
            "alice:",
            "alice:1",
            ":alice",
            "alice\u{0}",
            "alice\u{0}x",
        ],
        &["{t}", "{t}:x", "t", "{t", "t}", "{{t}}"],
        &["*", "a*", "?", "[a]", "%", "a%"],
        &["alice", "аlice", "ＡＬＩＣＥ", "ALICE", "alice ", " alice"],
        &[
            "https://idp/u/1",
            "https://idp/u/1/",
            "https://idp/u/10",
            "https://idp/u",
            "urn:idp:u:1",
            "mailto:1@idp",
        ],
        &[&long[..1], &long[..2], &long, &long[1..]],
    ];
    families
        .iter()
        .map(|family| family.iter().map(|owner| (*owner).to_owned()).collect())
        .collect()
}

async fn a_hostile_owner_corpus_reaches_no_other_owner_by_any_operation(
    factory: &dyn BackendFactory,
) {
    let mut config = StoreConfig::default();
    config.max_tasks_per_owner = Some(2);
    let f = Fixture::new(factory, config).await;
    let families = hostile_owner_corpus();
    let owners: Vec<&String> = {
        let mut seen = HashSet::new();
        families
            .iter()
            .flatten()
            .filter(|o| seen.insert(*o))
            .collect()
    };
    // Two tasks each: the quota is full, and a first page of one has a cursor.
    let mut tasks = Vec::new();
    for owner in &owners {
        let ids = [
            new_task(&f.host, owner).await,
            new_task(&f.host, owner).await,
        ];
        let cursor = f
            .host
            .list(owner, None, Some(1))
            .await
            .unwrap()
            .next_cursor
            .expect("more");
        tasks.push((owner.as_str(), ids, cursor));
    }
    let not_found = |result: Result<(), TaskError>, what: &str| {
        assert!(
            matches!(result, Err(TaskError::NotFound(_))),
            "{what}: {result:?}"
        );
    };
    for (owner, ids, cursor) in &tasks {
        for (other, other_ids, other_cursor) in &tasks {
            if owner == other {
                continue;
            }
            let who = format!("{:.12?} on {:.12?}'s task", owner, other);
            for id in other_ids {
                not_found(f.host.get(owner, id).await.map(drop), &who);
            }
            // Mutations and cursors: against look-alikes of the same family.
            let family = families
                .iter()
                .find(|fam| fam.iter().any(|o| o == owner))
                .unwrap();
            if !family.iter().any(|o| o == other) {
                continue;
            }
            let id = &other_ids[0];
            let patch = object(json!({"stolen": true}));
            not_found(
                f.host
                    .update_status(owner, id, TaskStatus::Failed, None)
                    .await
                    .map(drop),
                &who,
            );
            not_found(
                f.host.set_variables(owner, id, &patch).await.map(drop),
                &who,
            );
            not_found(
                f.host.set_result(owner, id, &json!({})).await.map(drop),
                &who,
            );
            not_found(f.host.get_result(owner, id).await.map(drop), &who);
            not_found(
                f.host
                    .complete_with_result(owner, id, TaskStatus::Completed, &json!({}))
                    .await
                    .map(drop),
                &who,
            );
            not_found(f.host.cancel(owner, id).await.map(drop), &who);
            not_found(f.host.delete(owner, id).await, &who);
            assert_invalid_params(f.host.list(owner, Some(other_cursor), None).await, &who);
        }
        // The owner's own view is whole: both tasks, untouched, and its quota full.
        let own = f.host.list(owner, None, None).await.unwrap();
        let listed: HashSet<String> = own.tasks.iter().map(|t| t.task_id.clone()).collect();
        assert_eq!(listed, ids.iter().cloned().collect(), "{owner:.12?}");
        assert!(own.tasks.iter().all(|t| t.status == TaskStatus::Working));
        let record = f.host.get(owner, &ids[0]).await.unwrap();
        assert!(
            record.variables.is_empty() && !record.has_result,
            "{owner:.12?}"
        );
        assert_eq!(
            f.host
                .list(owner, Some(cursor), None)
                .await
                .unwrap()
                .tasks
                .len(),
            1
        );
        assert!(matches!(
            f.host.create(owner, "m", None).await,
            Err(TaskError::QuotaExceeded(_))
        ));
    }
}

async fn progress_reports_change_the_message_and_repeats_change_nothing(
    factory: &dyn BackendFactory,
) {
    let f = fixture(factory).await;
    for status in [TaskStatus::Working, TaskStatus::InputRequired] {
        let id = task_in(&f.host, ALICE, status).await;
        let before = f.host.get(ALICE, &id).await.unwrap();
        f.clock.advance(Duration::from_millis(5));
        let step = f
            .host
            .update_status(ALICE, &id, status, Some("step 3 of 7"))
            .await
            .unwrap_or_else(|e| panic!("{status}: a progress report was refused: {e}"));
        assert_eq!(step.task.status, status);
        assert_eq!(step.task.status_message.as_deref(), Some("step 3 of 7"));
        assert_eq!(step.version, before.version + 1);
        assert!(step.task.last_updated_at > before.task.last_updated_at);
        f.clock.advance(Duration::from_millis(5));
        let repeat = f
            .host
            .update_status(ALICE, &id, status, Some("step 3 of 7"))
            .await
            .unwrap();
        assert_eq!(repeat, step, "{status}: a repeat must not write");
        let unchanged = f.host.set_variables(ALICE, &id, &Map::new()).await.unwrap();
        assert_eq!(unchanged, step, "{status}: an empty patch must not write");
        assert_eq!(f.host.get(ALICE, &id).await.unwrap(), step);
    }
}

/// Durable before visible: once `create` returns, any replica over the same
/// store reads, lists and updates the task (strongly consistent reads; on a
/// cluster, from the primary).
async fn a_created_task_is_at_once_visible_to_every_replica(factory: &dyn BackendFactory) {
    let backend = factory.fresh().await;
    let mut config = StoreConfig::default();
    config.cursor_secret = b"one deployment".to_vec();
    let replica = || {
        TaskHost::builder()
            .backend(backend.clone())
            .config(config.clone())
            .build()
    };
    let (a, b) = (replica().await.unwrap(), replica().await.unwrap());
    for n in 0..20 {
        let (writer, reader) = if n % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let id = new_task(writer, ALICE).await;
        let seen = reader
            .get(ALICE, &id)
            .await
            .expect("visible on the other replica at once");
        assert_eq!(seen.task.task_id, id);
        reader
            .update_status(
                ALICE,
                &id,
                TaskStatus::InputRequired,
                Some("from the other replica"),
            )
            .await
            .expect("updatable on the other replica at once");
        assert_eq!(
            writer.get(ALICE, &id).await.unwrap().task.status,
            TaskStatus::InputRequired
        );
    }
    let listed = first_page_ids(&b, ALICE).await;
    assert_eq!(listed.len(), 20);
}

/// A result of 15 MiB (a 5 MiB base64 image block beside a 10 MiB text),
/// far past one backend item, is stored and read back byte for byte, its
/// listing reads the head only, two writers racing large results on one
/// task leave only the winner's, and once the tasks are gone (deleted, or
/// expired and swept) the backend holds nothing: no part outlived its task.
async fn results_of_megabytes_round_trip_whole_and_leave_no_part_behind(
    factory: &dyn BackendFactory,
) {
    let backend = factory.fresh().await;
    let clock = ManualClock::starting_now();
    let host = TaskHost::builder()
        .backend(backend.clone())
        .clock(Arc::new(clock.clone()))
        .build()
        .await
        .unwrap();
    let result = json!({"content": [
        {"type": "image", "mimeType": "image/png", "data": base64_like(5 << 20)},
        {"type": "text", "text": base64_like(10 << 20)},
    ]});
    let ttl = Some(Duration::from_secs(60));
    let id = host
        .create(ALICE, "tools/call", ttl)
        .await
        .unwrap()
        .task
        .task_id;
    host.complete_with_result(ALICE, &id, TaskStatus::Completed, &result)
        .await
        .unwrap();
    assert!(
        host.get_result(ALICE, &id).await.unwrap() == result,
        "not byte for byte"
    );
    let page = host.list(ALICE, None, None).await.unwrap();
    assert_eq!(page.tasks.len(), 1);
    assert!(host.list(BOB, None, None).await.unwrap().tasks.is_empty());

    let raced = host
        .create(ALICE, "tools/call", ttl)
        .await
        .unwrap()
        .task
        .task_id;
    let (one, other) = (
        json!({"text": base64_like(2 << 20)}),
        json!({"text": base64_like(3 << 20)}),
    );
    let (a, b) = tokio::join!(
        host.set_result(ALICE, &raced, &one),
        host.set_result(ALICE, &raced, &other)
    );
    a.unwrap();
    b.unwrap();
    let kept = host.get_result(ALICE, &raced).await.unwrap();
    assert!(kept == one || kept == other, "a mixed result");
    host.delete(ALICE, &raced).await.unwrap();

    clock.advance(Duration::from_secs(61));
    assert!(host.get(ALICE, &id).await.is_err(), "expired");
    while host.cleanup_expired(1_000).await.unwrap() > 0 {}
    // Everything this test wrote expires by the end of time: a sweep
    // then finds every item left, and there is none.
    let left = backend.sweep(u64::MAX - 1, 100_000).await.unwrap();
    assert_eq!(left, 0, "items outlived their tasks");
}

/// A writer stopped between the parts of a large result and the task's
/// switch to them (a process killed mid-write: its call is dropped, no
/// clean-up runs) leaves the task as it was, readable, and its orphaned
/// parts expire with the task: after the sweep the backend holds nothing.
async fn a_writer_stopped_mid_write_leaves_no_part_past_the_sweep(factory: &dyn BackendFactory) {
    use crate::intercepted::StoppedBackend;
    let inner = factory.fresh().await;
    let clock = ManualClock::starting_now();
    let host_over = |backend: Arc<dyn pmcp_tasks_host::backend::KvBackend>| {
        TaskHost::builder()
            .backend(backend)
            .clock(Arc::new(clock.clone()))
            .build()
    };
    let host = host_over(inner.clone()).await.unwrap();
    let ttl = Some(Duration::from_secs(60));
    let id = host
        .create(ALICE, "tools/call", ttl)
        .await
        .unwrap()
        .task
        .task_id;
    // Three parts pass, the fourth never returns.
    let stopping = StoppedBackend::stopping_after(inner.clone(), 3);
    let writer = host_over(stopping.clone()).await.unwrap();
    let result = json!({"text": base64_like(3 << 20)});
    let write = {
        let (writer, id, result) = (writer.clone(), id.clone(), result.clone());
        tokio::spawn(async move {
            writer
                .complete_with_result(ALICE, &id, TaskStatus::Completed, &result)
                .await
        })
    };
    tokio::time::timeout(Duration::from_secs(60), stopping.wait_until_stopped())
        .await
        .expect("the writer reached its fourth part");
    write.abort();
    let _ = write.await;
    let seen = host.get(ALICE, &id).await.unwrap();
    assert_eq!(seen.task.status, TaskStatus::Working, "the task as it was");
    clock.advance(Duration::from_secs(61));
    let mut removed = 0;
    loop {
        match host.cleanup_expired(1_000).await.unwrap() {
            0 => break,
            n => removed += n,
        }
    }
    // The task and the three parts written for it expired together (a
    // part without an expiry would escape every sweep).
    assert!(removed >= 4, "the sweep removed {removed} items");
    let left = inner.sweep(u64::MAX - 1, 100_000).await.unwrap();
    assert_eq!(left, 0, "orphaned parts outlived their task");
}
