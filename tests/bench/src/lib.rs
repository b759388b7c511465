//! Shared parts of the benchmarks (`benches/overhead.rs` and the
//! `pmcp-tasks-bench` harness): the two subjects compared side by side and
//! the payloads they are given.
//!
//! A [`Subject`] is one way of running the task store: [`NativeSubject`] is
//! the domain library compiled natively over the host's in-memory backend
//! (no sandbox), [`HostSubject`] is the public host API running the
//! component. Both take the same inputs in the form their API takes them.

#![expect(
    clippy::exhaustive_structs,
    clippy::exhaustive_enums,
    reason = "the benchmarks' own types, built and matched by this crate only"
)]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pmcp_tasks_guest::{Kv, SystemEnvironment, TaskStore};
use pmcp_tasks_guest::{KvError as GuestKvError, Listing};
use pmcp_tasks_host::backend::{Entry, InMemoryBackend, KvBackend, KvError};
use pmcp_tasks_host::{
    EngineTuning, InputRequest, InputResponse, InstanceStrategy, LeaseGrant, StoreConfig, TaskHost,
    TaskStatus,
};
use serde_json::{json, Map, Value};

/// The owner of the benchmarks' tasks.
pub const OWNER: &str = "bench-owner@example.com";
/// Tasks per listed page.
pub const PAGE_SIZE: u32 = 50;
/// A task id no store issues (not the id format), refused without a read.
const MALFORMED_TASK_ID: &str = "not-a-task-id";

/// A store operation measured by the overhead benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `create`.
    Create,
    /// `get`.
    Get,
    /// `update-status` (working <-> input_required).
    UpdateStatus,
    /// `set-variables` with the 1 KB patch.
    SetVariables,
    /// `complete-with-result` with the 4 KB result.
    CompleteWithResult,
    /// `list`, one page of [`PAGE_SIZE`].
    ListPage,
    /// `cancel`.
    Cancel,
    /// `answer-input`: the one outstanding input request of a task answered.
    AnswerInput,
    /// `request-cancel` on a working task.
    RequestCancel,
    /// `renew-lease` by the worker holding the lease.
    RenewLease,
    /// `list`, one page of [`PAGE_SIZE`] completed tasks whose results are
    /// [`LARGE_RESULT_BYTES`] each: a listing must not read them.
    ListPageLargeResults,
    /// `get` of a malformed task id, refused before any backend call: the
    /// fixed cost of one call, natively and through the boundary. No
    /// target: it shows how much of every other operation's ratio the
    /// crossing alone takes.
    RefusedGet,
}

impl Operation {
    /// Every measured operation, in report order.
    pub const ALL: [Operation; 12] = [
        Operation::Create,
        Operation::Get,
        Operation::UpdateStatus,
        Operation::SetVariables,
        Operation::CompleteWithResult,
        Operation::ListPage,
        Operation::Cancel,
        Operation::AnswerInput,
        Operation::RequestCancel,
        Operation::RenewLease,
        Operation::ListPageLargeResults,
        Operation::RefusedGet,
    ];

    /// The name used in reports and as the criterion group.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Get => "get",
            Operation::UpdateStatus => "update-status",
            Operation::SetVariables => "set-variables",
            Operation::CompleteWithResult => "complete-with-result",
            Operation::ListPage => "list-page",
            Operation::Cancel => "cancel",
            Operation::AnswerInput => "answer-input",
            Operation::RequestCancel => "request-cancel",
            Operation::RenewLease => "renew-lease",
            Operation::ListPageLargeResults => "list-page-300kb-results",
            Operation::RefusedGet => "refused-get",
        }
    }

    /// The largest acceptable component/native time ratio: reads 1.5,
    /// writes 2 (writes do more native work per boundary crossing); none
    /// for the refused get, a measure of the crossing itself.
    pub fn target_ratio(self) -> Option<f64> {
        match self {
            Operation::RefusedGet => None,
            Operation::Get | Operation::ListPage | Operation::ListPageLargeResults => Some(1.5),
            _ => Some(2.0),
        }
    }
}

/// What runs the operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectKind {
    /// [`NativeSubject`].
    Native,
    /// [`HostSubject`] with the given instance strategy.
    Component(InstanceStrategy),
}

impl SubjectKind {
    /// The native baseline and the component with each instance strategy
    /// (reuse as configured by default).
    pub fn all() -> [SubjectKind; 3] {
        [
            SubjectKind::Native,
            SubjectKind::Component(InstanceStrategy::FreshPerCall),
            SubjectKind::Component(InstanceStrategy::default()),
        ]
    }

    /// The name used in reports and as the criterion benchmark id.
    pub fn name(self) -> &'static str {
        match self {
            SubjectKind::Native => "native",
            SubjectKind::Component(InstanceStrategy::FreshPerCall) => "component-fresh",
            SubjectKind::Component(_) => "component-reuse",
        }
    }
}

/// Tasks an operation cycles over when it does not consume them.
const POOL: u64 = 1_000;
/// Bytes of each result in [`Operation::ListPageLargeResults`].
pub const LARGE_RESULT_BYTES: usize = 300 * 1024;
/// Tasks with large results listed by [`Operation::ListPageLargeResults`]:
/// two full pages.
const LARGE_RESULT_TASKS: u64 = 2 * PAGE_SIZE as u64;

/// A subject of `kind` over a fresh in-memory backend.
pub async fn in_memory_subject(kind: SubjectKind) -> Box<dyn Subject> {
    let backend = Arc::new(InMemoryBackend::new());
    match kind {
        SubjectKind::Native => Box::new(NativeSubject::new(backend)),
        SubjectKind::Component(strategy) => Box::new(HostSubject::new(backend, strategy).await),
    }
}

/// Times `iters` runs of `operation` on a fresh subject of `kind`, after
/// creating (untimed) the tasks it works on. Operations that consume a
/// task (complete, cancel) get one each; the others cycle over a pool.
pub async fn time_operation(
    kind: SubjectKind,
    operation: Operation,
    iters: u64,
    payloads: &Payloads,
) -> Duration {
    time_on(&*in_memory_subject(kind).await, operation, iters, payloads).await
}

/// Times `iters` runs of `operation` on `subject` (a fresh one: the tasks
/// it works on are created first, untimed).
pub async fn time_on(
    subject: &dyn Subject,
    operation: Operation,
    iters: u64,
    payloads: &Payloads,
) -> Duration {
    let prepared = prepare(subject, OWNER, operation, iters, payloads).await;
    let start = Instant::now();
    run_prepared(subject, &prepared, payloads).await;
    start.elapsed()
}

/// `iters` runs of one operation for one owner, with the tasks they work
/// on already created.
pub struct Prepared {
    operation: Operation,
    owner: String,
    iters: u64,
    ids: Vec<String>,
}

/// Creates the tasks `iters` runs of `operation` for `owner` work on:
/// one each for operations that consume a task (complete, cancel), a
/// pool to cycle over for the others.
pub async fn prepare(
    subject: &dyn Subject,
    owner: &str,
    operation: Operation,
    iters: u64,
    payloads: &Payloads,
) -> Prepared {
    let tasks = match operation {
        Operation::Create => 0,
        Operation::CompleteWithResult
        | Operation::Cancel
        | Operation::AnswerInput
        | Operation::RequestCancel => iters,
        Operation::ListPageLargeResults => LARGE_RESULT_TASKS,
        Operation::RefusedGet => 0,
        _ => iters.min(POOL),
    };
    let mut ids = Vec::with_capacity(tasks as usize);
    for _ in 0..tasks {
        let id = subject.create(owner).await;
        match operation {
            Operation::AnswerInput => subject.request_input(owner, &id).await,
            Operation::ListPageLargeResults => {
                subject
                    .complete_with_large_result(owner, &id, payloads)
                    .await
            }
            _ => {}
        }
        ids.push(id);
    }
    Prepared {
        operation,
        owner: owner.to_owned(),
        iters,
        ids,
    }
}

/// Runs what `prepared` was prepared for.
pub async fn run_prepared(subject: &dyn Subject, prepared: &Prepared, payloads: &Payloads) {
    let Prepared {
        operation,
        ref owner,
        iters,
        ref ids,
    } = *prepared;
    let tasks = ids.len() as u64;
    let id = |i: u64| ids[(i % tasks.max(1)) as usize].as_str();
    let mut cursor = None;
    for i in 0..iters {
        match operation {
            Operation::Create => drop(subject.create(owner).await),
            Operation::Get => subject.get(owner, id(i)).await,
            Operation::UpdateStatus => {
                // Each pass over the pool flips every task: working <-> input_required.
                let status = if (i / tasks).is_multiple_of(2) {
                    TaskStatus::InputRequired
                } else {
                    TaskStatus::Working
                };
                subject.update_status(owner, id(i), status).await
            }
            Operation::SetVariables => subject.set_variables(owner, id(i), payloads).await,
            Operation::CompleteWithResult => {
                subject.complete_with_result(owner, id(i), payloads).await
            }
            Operation::ListPage | Operation::ListPageLargeResults => {
                cursor = subject.list_page(owner, cursor.as_deref(), PAGE_SIZE).await
            }
            Operation::Cancel => subject.cancel(owner, id(i)).await,
            Operation::AnswerInput => subject.answer_input(owner, id(i), payloads).await,
            Operation::RequestCancel => subject.request_cancel(owner, id(i)).await,
            Operation::RenewLease => subject.renew_lease(owner, id(i)).await,
            Operation::RefusedGet => subject.refused_get(owner).await,
        }
    }
}

/// The inputs of the write operations, prepared once.
pub struct Payloads {
    /// A variables patch of about 1 KB, as a map (the host API's form).
    pub variables: Map<String, Value>,
    /// The same patch as JSON text (the domain library's form).
    pub variables_text: String,
    /// A result of about 4 KB.
    pub result: Value,
    /// The same result as JSON text.
    pub result_text: String,
    /// A result of [`LARGE_RESULT_BYTES`].
    pub large_result: Value,
    /// The same large result as JSON text.
    pub large_result_text: String,
    /// The answer to an input request (an elicitation result).
    pub answer: Value,
    /// The same answer as JSON text.
    pub answer_text: String,
}

impl Payloads {
    /// A 1 KB variables patch and a 4 KB result, both shaped like real
    /// tool output (several keys, nested objects, arrays).
    pub fn new() -> Payloads {
        let variables = json!({
            "step": 3,
            "progress": {"done": 120, "total": 400, "unit": "files"},
            "cursor": "c".repeat(330),
            "notes": ["n".repeat(200), "m".repeat(200), "o".repeat(200)],
        });
        let lines: Vec<Value> = (0..44)
            .map(|i| json!({"line": i, "text": "r".repeat(70)}))
            .collect();
        let result = json!({"content": [{"type": "text", "text": "done"}], "lines": lines});
        let Value::Object(variables) = variables else {
            unreachable!("a json object literal")
        };
        let chunks: Vec<Value> = (0..10)
            .map(|_| json!({"type": "text", "text": "x".repeat(LARGE_RESULT_BYTES / 10 - 30)}))
            .collect();
        let large_result = json!({ "content": chunks });
        let answer = json!({"action": "accept", "content": {"confirm": true, "note": "go ahead"}});
        Payloads {
            variables_text: Value::Object(variables.clone()).to_string(),
            variables,
            result_text: result.to_string(),
            result,
            large_result_text: large_result.to_string(),
            large_result,
            answer_text: answer.to_string(),
            answer,
        }
    }
}

impl Default for Payloads {
    fn default() -> Self {
        Payloads::new()
    }
}

/// A store configuration without the per-owner quota, so benchmarks can
/// hold any number of tasks, and with room for the large results.
pub fn unlimited_config() -> StoreConfig {
    let mut config = StoreConfig::default();
    config.max_tasks_per_owner = None;
    config.max_result_bytes = (LARGE_RESULT_BYTES + (64 << 10)) as u32;
    config.max_record_bytes = (LARGE_RESULT_BYTES + (128 << 10)) as u32;
    config
}

/// The key of the input request the answer-input benchmark answers.
const INPUT_KEY: &str = "confirm";
/// The params of that input request.
const INPUT_PARAMS: &str = r#"{"message":"Proceed?","requestedSchema":{"type":"object"}}"#;
/// The worker holding the leases the renewal benchmark renews.
const WORKER: &str = "bench-worker";
/// How long a benchmark lease holds.
const LEASE: Duration = Duration::from_secs(60);

/// `config` in the domain library's terms (what the component receives
/// through the WIT `store-config` record).
pub fn native_config(config: &StoreConfig) -> pmcp_tasks_guest::StoreConfig {
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    pmcp_tasks_guest::StoreConfig {
        default_ttl: config.default_ttl.map(millis),
        max_ttl: config.max_ttl.map(millis),
        poll_interval: config.poll_interval.map(millis),
        max_tasks_per_owner: config.max_tasks_per_owner,
        default_page_size: config.default_page_size,
        max_page_size: config.max_page_size,
        max_variables_bytes: config.max_variables_bytes,
        max_result_bytes: config.max_result_bytes,
        max_record_bytes: config.max_record_bytes,
        max_task_bytes: config.max_task_bytes,
        max_json_depth: config.max_json_depth,
        max_string_bytes: config.max_string_bytes,
        max_owner_bytes: config.max_owner_bytes,
        allow_anonymous: config.allow_anonymous,
        cursor_secret: config.cursor_secret.clone(),
        max_cas_attempts: config.max_cas_attempts,
    }
}

/// The domain library's status for the host's (same wire names).
fn native_status(status: TaskStatus) -> pmcp_tasks_guest::TaskStatus {
    serde_json::from_value(serde_json::to_value(status).expect("a status serializes"))
        .expect("both sides name the statuses alike")
}

/// One way of running the task store. Failures panic: a benchmark whose
/// operation fails measures nothing.
#[async_trait]
pub trait Subject: Send + Sync {
    /// Creates a task for `owner`; returns its id.
    async fn create(&self, owner: &str) -> String;
    /// Reads a task.
    async fn get(&self, owner: &str, id: &str);
    /// Gets a malformed task id, which is refused.
    async fn refused_get(&self, owner: &str);
    /// Moves a task to `status`.
    async fn update_status(&self, owner: &str, id: &str, status: TaskStatus);
    /// Merges the 1 KB variables patch.
    async fn set_variables(&self, owner: &str, id: &str, payloads: &Payloads);
    /// Completes a task with the 4 KB result.
    async fn complete_with_result(&self, owner: &str, id: &str, payloads: &Payloads);
    /// Lists one page of `limit` tasks; returns the next cursor.
    async fn list_page(&self, owner: &str, cursor: Option<&str>, limit: u32) -> Option<String>;
    /// Cancels a task.
    async fn cancel(&self, owner: &str, id: &str);
    /// Completes a task with the large result (setup, untimed).
    async fn complete_with_large_result(&self, owner: &str, id: &str, payloads: &Payloads);
    /// Asks for one input (setup, untimed).
    async fn request_input(&self, owner: &str, id: &str);
    /// Answers that input request.
    async fn answer_input(&self, owner: &str, id: &str, payloads: &Payloads);
    /// Asks the task's worker to stop.
    async fn request_cancel(&self, owner: &str, id: &str);
    /// Renews (or takes) the task's lease for the benchmark worker.
    async fn renew_lease(&self, owner: &str, id: &str);
}

/// The domain library natively over an [`InMemoryBackend`]: the baseline
/// the sandbox's overhead is measured against.
pub struct NativeSubject {
    store: TaskStore<ReadyKv, SystemEnvironment>,
}

impl NativeSubject {
    /// A store over `backend` with the same policy as [`unlimited_config`].
    pub fn new(backend: Arc<InMemoryBackend>) -> NativeSubject {
        let config = native_config(&unlimited_config());
        let store = TaskStore::open(ReadyKv(backend), SystemEnvironment, config)
            .expect("the default configuration is valid");
        NativeSubject { store }
    }

    fn complete(&self, owner: &str, id: &str, result: &str) {
        let status = pmcp_tasks_guest::TaskStatus::Completed;
        let completed = self.store.complete_with_result(owner, id, status, result);
        completed.expect("native complete-with-result");
    }
}

#[async_trait]
impl Subject for NativeSubject {
    async fn create(&self, owner: &str) -> String {
        let record = self.store.create(owner, "tools/call", None);
        record.expect("native create").task.task_id
    }

    async fn get(&self, owner: &str, id: &str) {
        self.store.get(owner, id).expect("native get");
    }

    async fn refused_get(&self, owner: &str) {
        let refused = self.store.get(owner, MALFORMED_TASK_ID);
        refused.expect_err("native get of a malformed id");
    }

    async fn update_status(&self, owner: &str, id: &str, status: TaskStatus) {
        let updated = self
            .store
            .update_status(owner, id, None, native_status(status), None);
        updated.expect("native update-status");
    }

    async fn set_variables(&self, owner: &str, id: &str, payloads: &Payloads) {
        let patch = &payloads.variables_text;
        let updated = self.store.set_variables(owner, id, patch, None);
        updated.expect("native set-variables");
    }

    async fn complete_with_result(&self, owner: &str, id: &str, payloads: &Payloads) {
        self.complete(owner, id, &payloads.result_text)
    }

    async fn list_page(&self, owner: &str, cursor: Option<&str>, limit: u32) -> Option<String> {
        let page = self.store.list(
            owner,
            cursor,
            Some(limit),
            pmcp_tasks_guest::StatusView::Extension,
        );
        page.expect("native list").next_cursor
    }

    async fn cancel(&self, owner: &str, id: &str) {
        self.store.cancel(owner, id).expect("native cancel");
    }

    async fn complete_with_large_result(&self, owner: &str, id: &str, payloads: &Payloads) {
        self.complete(owner, id, &payloads.large_result_text)
    }

    async fn request_input(&self, owner: &str, id: &str) {
        let request = pmcp_tasks_guest::InputRequest {
            key: INPUT_KEY.into(),
            method: "elicitation/create".into(),
            params: INPUT_PARAMS.into(),
        };
        let asked = self.store.request_input(owner, id, None, &[request]);
        asked.expect("native request-input");
    }

    async fn answer_input(&self, owner: &str, id: &str, payloads: &Payloads) {
        let response = pmcp_tasks_guest::InputResponse {
            key: INPUT_KEY.into(),
            response: payloads.answer_text.clone(),
        };
        let answered = self.store.answer_input(owner, id, &[response]);
        answered.expect("native answer-input");
    }

    async fn request_cancel(&self, owner: &str, id: &str) {
        self.store
            .request_cancel(owner, id)
            .expect("native request-cancel");
    }

    async fn renew_lease(&self, owner: &str, id: &str) {
        let grant = pmcp_tasks_guest::LeaseGrant {
            holder: WORKER.into(),
            duration: LEASE.as_millis() as u64,
        };
        let renewed = self.store.renew_lease(owner, id, &grant);
        renewed.expect("native renew-lease");
    }
}

/// The public host API, running the embedded component.
pub struct HostSubject {
    /// The host under measurement.
    pub host: TaskHost,
}

impl HostSubject {
    /// A host over `backend` with `strategy` and [`unlimited_config`].
    pub async fn new(backend: Arc<dyn KvBackend>, strategy: InstanceStrategy) -> HostSubject {
        HostSubject::tuned(backend, strategy, EngineTuning::default()).await
    }

    async fn complete(&self, owner: &str, id: &str, result: &Value) {
        let completed = self
            .host
            .complete_with_result(owner, id, TaskStatus::Completed, result)
            .await;
        completed.expect("host complete-with-result");
    }

    /// [`HostSubject::new`] with the engine tuned as `tuning` says.
    pub async fn tuned(
        backend: Arc<dyn KvBackend>,
        strategy: InstanceStrategy,
        tuning: EngineTuning,
    ) -> HostSubject {
        let host = TaskHost::builder()
            .backend(backend)
            .config(unlimited_config())
            .instances(strategy)
            .engine(tuning)
            .build()
            .await
            .expect("building the host");
        HostSubject { host }
    }
}

#[async_trait]
impl Subject for HostSubject {
    async fn create(&self, owner: &str) -> String {
        let record = self.host.create(owner, "tools/call", None).await;
        record.expect("host create").task.task_id
    }

    async fn get(&self, owner: &str, id: &str) {
        self.host.get(owner, id).await.expect("host get");
    }

    async fn refused_get(&self, owner: &str) {
        let refused = self.host.get(owner, MALFORMED_TASK_ID).await;
        refused.expect_err("host get of a malformed id");
    }

    async fn update_status(&self, owner: &str, id: &str, status: TaskStatus) {
        let updated = self.host.update_status(owner, id, status, None).await;
        updated.expect("host update-status");
    }

    async fn set_variables(&self, owner: &str, id: &str, payloads: &Payloads) {
        let patch = &payloads.variables;
        let updated = self.host.set_variables(owner, id, patch).await;
        updated.expect("host set-variables");
    }

    async fn complete_with_result(&self, owner: &str, id: &str, payloads: &Payloads) {
        self.complete(owner, id, &payloads.result).await
    }

    async fn list_page(&self, owner: &str, cursor: Option<&str>, limit: u32) -> Option<String> {
        let page = self.host.list(owner, cursor, Some(limit)).await;
        page.expect("host list").next_cursor
    }

    async fn cancel(&self, owner: &str, id: &str) {
        self.host.cancel(owner, id).await.expect("host cancel");
    }

    async fn complete_with_large_result(&self, owner: &str, id: &str, payloads: &Payloads) {
        self.complete(owner, id, &payloads.large_result).await
    }

    async fn request_input(&self, owner: &str, id: &str) {
        let request = InputRequest::new(
            INPUT_KEY,
            "elicitation/create",
            serde_json::from_str(INPUT_PARAMS).expect("the params are an object"),
        );
        let asked = self.host.request_input(owner, id, &[request]).await;
        asked.expect("host request-input");
    }

    async fn answer_input(&self, owner: &str, id: &str, payloads: &Payloads) {
        let response = InputResponse::new(INPUT_KEY, payloads.answer.clone());
        let answered = self.host.answer_input(owner, id, &[response]).await;
        answered.expect("host answer-input");
    }

    async fn request_cancel(&self, owner: &str, id: &str) {
        let requested = self.host.request_cancel(owner, id).await;
        requested.expect("host request-cancel");
    }

    async fn renew_lease(&self, owner: &str, id: &str) {
        let grant = LeaseGrant::new(WORKER, LEASE);
        let renewed = self.host.renew_lease(owner, id, &grant).await;
        renewed.expect("host renew-lease");
    }
}

/// The host's in-memory backend seen through the domain library's
/// synchronous [`Kv`] trait. Its futures never wait, so each is polled once.
pub struct ReadyKv(pub Arc<InMemoryBackend>);

/// Polls a future that is ready on its first poll, in the domain library's
/// error terms.
fn ready<T>(future: impl Future<Output = Result<T, KvError>>) -> Result<T, GuestKvError> {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out.map_err(|e| match e {
            KvError::Conflict => GuestKvError::Conflict,
            KvError::QuotaExceeded => GuestKvError::QuotaExceeded,
            other => GuestKvError::Unavailable(other.to_string()),
        }),
        Poll::Pending => Err(GuestKvError::Unavailable(
            "the in-memory backend unexpectedly waited".into(),
        )),
    }
}

impl Kv for ReadyKv {
    fn get(&self, partition: &str, item: &str) -> Result<Option<Entry>, GuestKvError> {
        // The host's backends and the domain library share the contract's `Entry`.
        ready(self.0.get(partition, item))
    }

    fn create(
        &self,
        partition: &str,
        item: &str,
        head: Vec<u8>,
        body: Vec<u8>,
        expires_at: Option<u64>,
        max_live: Option<u32>,
        now: u64,
    ) -> Result<u64, GuestKvError> {
        ready(
            self.0
                .create(partition, item, head, body, expires_at, max_live, now),
        )
    }

    fn replace(
        &self,
        partition: &str,
        item: &str,
        expected_version: u64,
        head: Vec<u8>,
        body: Vec<u8>,
        expires_at: Option<u64>,
        now: u64,
    ) -> Result<u64, GuestKvError> {
        let replaced = self.0.replace(
            partition,
            item,
            expected_version,
            head,
            body,
            expires_at,
            now,
        );
        ready(replaced)
    }

    fn remove(
        &self,
        partition: &str,
        item: &str,
        expected_version: u64,
    ) -> Result<(), GuestKvError> {
        ready(self.0.remove(partition, item, expected_version))
    }

    fn list(
        &self,
        partition: &str,
        after: Option<&str>,
        limit: u32,
        now: u64,
    ) -> Result<Listing, GuestKvError> {
        // The host's backends list into the contract's own type.
        ready(self.0.list(partition, after, limit, now))
    }

    fn sweep(&self, now: u64, limit: u32) -> Result<u64, GuestKvError> {
        ready(self.0.sweep(now, limit))
    }
}

/// A small deterministic generator (xorshift64*): benchmarks pick tasks
/// and operations from it, so a run is repeatable.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; zero is replaced).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next value in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let value = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (value % bound as u64) as usize
    }
}

/// The median of `samples` (sorted in place); zero when empty.
pub fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_stays_below_its_bound_and_varies() {
        let mut rng = Rng::new(7);
        let values: Vec<usize> = (0..1000).map(|_| rng.below(10)).collect();
        assert!(values.iter().all(|v| *v < 10));
        assert!((0..10).all(|d| values.contains(&d)), "every digit drawn");
    }

    #[test]
    fn median_is_the_middle_sample() {
        let ms = Duration::from_millis;
        assert_eq!(median(&mut [ms(9), ms(1), ms(5)]), ms(5));
        assert_eq!(median(&mut []), Duration::ZERO);
    }

    #[tokio::test]
    async fn native_and_component_agree_on_a_round_trip() {
        let payloads = Payloads::new();
        assert!(payloads.variables_text.len() >= 1000);
        assert!(payloads.result_text.len() >= 4000);
        for kind in SubjectKind::all() {
            let subject = in_memory_subject(kind).await;
            let id = subject.create(OWNER).await;
            subject.set_variables(OWNER, &id, &payloads).await;
            subject.complete_with_result(OWNER, &id, &payloads).await;
            assert_eq!(subject.list_page(OWNER, None, 1).await, None, "{kind:?}");
        }
    }
}
