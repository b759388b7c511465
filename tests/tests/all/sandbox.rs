//! The sandbox: what the component may import, and what happens when it
//! traps, loops, hoards memory or does not fit the contract.

use std::time::Duration;

use pmcp_tasks_host::{
    BuildError, ComponentSource, EngineTuning, Interruption, SandboxLimits, StoreConfig, TaskError,
    TaskHost, DEFAULT_COMPONENT,
};
use pmcp_tasks_test_artifacts::FAULT_INJECTION_COMPONENT;
use pmcp_tasks_tests::intercepted::GatedBackend;

const ALICE: &str = "alice";

async fn faulty_host(limits: SandboxLimits, tuning: EngineTuning) -> TaskHost {
    // Small pages, so that a page of the largest records fits small limits.
    let mut config = StoreConfig::default();
    config.max_page_size = 10;
    config.default_page_size = 10;
    TaskHost::builder()
        .component(ComponentSource::Bytes(FAULT_INJECTION_COMPONENT.to_vec()))
        .config(config)
        .limits(limits)
        .engine(tuning)
        .build()
        .await
        .expect("the fault-injection component fits the contract")
}

/// After a fault, the host still serves alice and her task is intact.
async fn assert_still_healthy(host: &TaskHost, alice_task: &str) {
    let task = host
        .get(ALICE, alice_task)
        .await
        .expect("alice's task survives");
    assert_eq!(task.variables["safe"], true);
    host.create(ALICE, "tools/call", None)
        .await
        .expect("the host still creates tasks");
}

async fn task_with_data(host: &TaskHost) -> String {
    let id = host
        .create(ALICE, "tools/call", None)
        .await
        .unwrap()
        .task
        .task_id;
    let vars = serde_json::json!({"safe": true});
    host.set_variables(ALICE, &id, vars.as_object().unwrap())
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn a_trapping_guest_is_an_error_and_the_host_stays_up() {
    let host = faulty_host(SandboxLimits::default(), EngineTuning::default()).await;
    let id = task_with_data(&host).await;
    let err = host
        .create("fault-injection:trap", "m", None)
        .await
        .unwrap_err();
    match &err {
        TaskError::GuestTrap(why) => {
            assert!(why.contains("fault injection: trap requested"), "{why}")
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_eq!(err.json_rpc_code(), pmcp_tasks_host::INTERNAL_ERROR);
    assert_still_healthy(&host, &id).await;
}

/// A guest that loops on a host with a 200 ms budget, stopped however
/// `tuning` interrupts it; the host serves on.
async fn assert_a_loop_is_stopped(tuning: EngineTuning) {
    let budget = Duration::from_millis(200);
    let limits = SandboxLimits::new(SandboxLimits::default().max_memory_bytes, budget);
    let host = faulty_host(limits, tuning).await;
    let id = task_with_data(&host).await;
    let err = host
        .list("fault-injection:loop", None, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, TaskError::GuestTimeout(d) if d == budget),
        "{tuning:?}: {err:?}"
    );
    assert!(err.to_string().contains("time budget"), "{err}");
    assert_still_healthy(&host, &id).await;
}

#[tokio::test]
async fn a_looping_guest_is_interrupted_after_its_time_budget() {
    assert_a_loop_is_stopped(EngineTuning::default()).await;
}

#[tokio::test]
async fn under_fuel_a_looping_guest_is_stopped_too_and_the_host_stays_up() {
    let mut tuning = EngineTuning::default();
    tuning.interruption = Interruption::Fuel;
    assert_a_loop_is_stopped(tuning).await;
}

#[tokio::test]
async fn a_hoarding_guest_hits_the_memory_cap() {
    let limits = SandboxLimits::new(16 << 20, SandboxLimits::default().time_budget);
    let host = faulty_host(limits, EngineTuning::default()).await;
    let id = task_with_data(&host).await;
    let err = host.get("fault-injection:allocate", &id).await.unwrap_err();
    assert!(
        matches!(err, TaskError::GuestMemoryLimit(16_777_216)),
        "{err:?}"
    );
    assert_still_healthy(&host, &id).await;
}

/// Every interface the embedded component may import (versions aside):
/// the contract, and the WASI parts of Rust's std that reach nothing
/// outside the sandbox. A new import fails this test until it is judged.
const ALLOWED_IMPORTS: [&str; 18] = [
    "pmcp:tasks/kv-backend",
    "pmcp:tasks/types",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
];

/// The components under test: the embedded one, and the one
/// `cargo component build` made when `tests/run-all.sh` names it in
/// `PMCP_CARGO_COMPONENT_WASM`.
fn components_under_test() -> Vec<(String, Vec<u8>)> {
    let mut components = vec![("embedded".to_owned(), DEFAULT_COMPONENT.to_vec())];
    if let Some(path) = std::env::var_os("PMCP_CARGO_COMPONENT_WASM") {
        let bytes = std::fs::read(&path).expect("reading the cargo-component build");
        components.push((path.to_string_lossy().into_owned(), bytes));
    }
    components
}

#[test]
fn the_component_imports_only_the_contract_and_harmless_wasi() {
    let engine = wasmtime::Engine::default();
    for (name, bytes) in components_under_test() {
        let component = wasmtime::component::Component::new(&engine, &bytes).unwrap();
        let ty = component.component_type();
        let unversioned = |name: &str| name.split('@').next().unwrap_or(name).to_owned();
        let imports: Vec<String> = ty
            .imports(&engine)
            .map(|(name, _)| unversioned(name))
            .collect();
        let exports: Vec<String> = ty
            .exports(&engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        assert!(
            imports.iter().any(|i| i == "pmcp:tasks/kv-backend"),
            "{name}: {imports:?}"
        );
        assert_eq!(exports, ["pmcp:tasks/task-store@0.8.0"], "{name}");
        for import in &imports {
            assert!(
                ALLOWED_IMPORTS.contains(&import.as_str()),
                "{name}: unexpected import {import}"
            );
        }
    }
}

#[tokio::test]
async fn a_component_needing_the_filesystem_is_refused() {
    let wat = r#"(component (import "wasi:filesystem/preopens@0.2.0" (instance (export "get-directories" (func)))))"#;
    let err = build_with(ComponentSource::Bytes(wat.as_bytes().to_vec())).await;
    assert!(
        matches!(err, BuildError::IncompatibleComponent(_)),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("wasi:filesystem/preopens"),
        "{err}"
    );
}

async fn build_with(component: ComponentSource) -> BuildError {
    match TaskHost::builder().component(component).build().await {
        Ok(_) => panic!("the component was accepted"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn components_that_do_not_fit_the_contract_are_refused_with_a_reason() {
    let garbage = build_with(ComponentSource::Bytes(b"\0asm not really".to_vec())).await;
    assert!(
        garbage.to_string().contains("not a valid wasm component"),
        "{garbage}"
    );

    let empty = build_with(ComponentSource::Bytes(b"(component)".to_vec())).await;
    assert!(
        empty
            .to_string()
            .contains("does not export the pmcp:tasks@0.8.0 task store"),
        "{empty}"
    );

    // Components built for earlier contracts (0.2.0: before outcomes,
    // input requests and leases; 0.3.0: listings one list per entry;
    // 0.5.0: no max-task-bytes) are refused by name.
    for older in ["0.2.0", "0.3.0", "0.5.0"] {
        let wat = format!(r#"(component (import "pmcp:tasks/kv-backend@{older}" (instance)))"#);
        let refused = build_with(ComponentSource::Bytes(wat.into_bytes())).await;
        let message = refused.to_string();
        assert!(
            message.contains(&format!("pmcp:tasks@{older}"))
                && message.contains("pmcp:tasks@0.8.0"),
            "{message}"
        );
    }

    let missing = build_with(ComponentSource::File("/nonexistent/tasks.wasm".into())).await;
    assert!(
        matches!(missing, BuildError::ReadComponent { .. }),
        "{missing:?}"
    );
}

#[tokio::test]
async fn a_component_file_can_replace_the_embedded_one() {
    for (name, bytes) in components_under_test() {
        let path = std::env::temp_dir().join(format!("pmcp-tasks-{}.wasm", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        let built = TaskHost::builder()
            .component(ComponentSource::File(path.clone()))
            .build()
            .await;
        std::fs::remove_file(&path).unwrap();
        let host = built.unwrap_or_else(|e| panic!("{name}: {e}"));
        let id = host
            .create(ALICE, "tools/call", None)
            .await
            .unwrap()
            .task
            .task_id;
        assert!(host.get(ALICE, &id).await.is_ok(), "{name}");
    }
}

#[tokio::test]
async fn an_inconsistent_configuration_is_refused_at_build() {
    let mut config = StoreConfig::default();
    config.default_page_size = 0;
    let err = TaskHost::builder()
        .config(config)
        .build()
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, BuildError::Config(_)), "{err:?}");
    assert!(err.to_string().contains("default-page-size"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_backend_call_blocks_no_other_caller() {
    let backend = GatedBackend::new();
    // Time spent waiting on the backend is not guest time: a short budget holds.
    let limits = SandboxLimits::new(
        SandboxLimits::default().max_memory_bytes,
        Duration::from_millis(100),
    );
    let host = TaskHost::builder()
        .backend(backend.clone())
        .limits(limits)
        .build()
        .await
        .unwrap();
    let stuck = {
        let host = host.clone();
        tokio::spawn(async move { host.list(ALICE, None, None).await })
    };
    for _ in 0..20 {
        host.create("bob", "tools/call", None)
            .await
            .expect("other callers proceed");
    }
    assert!(!stuck.is_finished());
    // Keep the listing waiting well past the guest's time budget.
    tokio::time::sleep(Duration::from_millis(300)).await;
    backend.open();
    let page = stuck.await.unwrap().expect("the slow listing completes");
    assert!(page.tasks.is_empty());
}

/// A plugin chooses the `now` it passes to the backend; one from the future
/// would sweep away every tenant's expiring tasks. The host refuses it.
#[tokio::test]
async fn a_component_cannot_sweep_with_a_clock_from_the_future() {
    let backend = std::sync::Arc::new(pmcp_tasks_host::backend::InMemoryBackend::new());
    let honest = TaskHost::builder()
        .backend(backend.clone())
        .build()
        .await
        .unwrap();
    let bobs = honest
        .create("bob", "tools/call", Some(Duration::from_secs(600)))
        .await
        .unwrap()
        .task
        .task_id;
    let hostile = TaskHost::builder()
        .backend(backend)
        .component(ComponentSource::Bytes(FAULT_INJECTION_COMPONENT.to_vec()))
        .build()
        .await
        .unwrap();
    let err = hostile
        .list("fault-injection:time-travel", None, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ahead of the host clock"), "{err}");
    assert!(!err.is_retryable(), "{err:?}");
    honest
        .get("bob", &bobs)
        .await
        .expect("bob's task outlives the hostile sweep");
}

/// A page of the largest records must be readable within the guest's
/// memory: configurations where it is not are refused when the host is
/// built, naming the numbers.
#[tokio::test]
async fn a_configuration_whose_largest_page_cannot_fit_is_refused() {
    for (page, why) in [(1_000, "358400"), (100_000, "100000")] {
        let mut config = StoreConfig::default();
        config.max_page_size = page;
        let err = TaskHost::builder()
            .config(config)
            .build()
            .await
            .err()
            .expect("refused");
        assert!(matches!(err, BuildError::Config(_)), "{err:?}");
        assert!(err.to_string().contains(why), "{err}");
    }
}

/// With the defaults, a full page of tasks whose results are larger than
/// one backend item (kept in parts) lists without hitting the memory cap:
/// a listing reads the heads only.
#[tokio::test]
async fn a_full_page_of_records_past_one_item_lists_within_the_default_limits() {
    let host = TaskHost::builder().build().await.unwrap();
    let config = StoreConfig::default();
    let text = "x".repeat(config.max_record_bytes as usize * 3);
    let result = serde_json::json!({ "content": [{ "type": "text", "text": text }] });
    for _ in 0..=config.max_page_size {
        let id = host
            .create(ALICE, "tools/call", None)
            .await
            .unwrap()
            .task
            .task_id;
        host.complete_with_result(ALICE, &id, pmcp_tasks_host::TaskStatus::Completed, &result)
            .await
            .unwrap();
    }
    let page = host
        .list(ALICE, None, Some(config.max_page_size))
        .await
        .expect("a legal page request");
    assert_eq!(page.tasks.len(), config.max_page_size as usize);
    assert!(page.next_cursor.is_some());
}
