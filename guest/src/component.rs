//! The component's export layer: converts between WIT bindings and the
//! domain types, and implements [`Kv`] over the imported `kv-backend`.

use crate::kv::{Entry, Kv, KvError, Listing};
use crate::{
    InputRequest, InputResponse, Lease, LeaseGrant, Outcome, OutcomeKind, StatusView, StoreConfig,
    StoreError, SystemEnvironment, Task, TaskDetail, TaskPage, TaskRecord, TaskRequest, TaskStatus,
    TaskStore,
};

/// Freed small blocks are reused without reaching wasi-libc's dlmalloc
/// (see [`crate::block_cache`]).
#[global_allocator]
static ALLOCATOR: crate::block_cache::BlockCache<std::alloc::System> =
    crate::block_cache::BlockCache::new(std::alloc::System);

wit_bindgen::generate!({
    path: "../wit",
    world: "task-store-component",
});

use exports::pmcp::tasks::task_store::{Guest, GuestStore, Store};
use pmcp::tasks::kv_backend as backend;
use pmcp::tasks::types as wit;

/// The `kv-backend` import as a [`Kv`].
struct HostKv;

impl From<backend::KvError> for KvError {
    fn from(e: backend::KvError) -> Self {
        match e {
            backend::KvError::Conflict => KvError::Conflict,
            backend::KvError::QuotaExceeded => KvError::QuotaExceeded,
            backend::KvError::TooLarge(m) => KvError::TooLarge(m),
            backend::KvError::Unavailable(m) => KvError::Unavailable(m),
        }
    }
}

fn entry(e: backend::Entry) -> Entry {
    Entry {
        head: e.head,
        body: e.body,
        version: e.version,
        expires_at: e.expires_at,
    }
}

impl Kv for HostKv {
    fn get(&self, partition: &str, item: &str) -> Result<Option<Entry>, KvError> {
        Ok(backend::get(partition, item)?.map(entry))
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
    ) -> Result<u64, KvError> {
        Ok(backend::create(
            partition, item, &head, &body, expires_at, max_live, now,
        )?)
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
    ) -> Result<u64, KvError> {
        Ok(backend::replace(
            partition,
            item,
            expected_version,
            &head,
            &body,
            expires_at,
            now,
        )?)
    }

    fn remove(&self, partition: &str, item: &str, expected_version: u64) -> Result<(), KvError> {
        Ok(backend::remove(partition, item, expected_version)?)
    }

    fn list(
        &self,
        partition: &str,
        after: Option<&str>,
        limit: u32,
        now: u64,
    ) -> Result<Listing, KvError> {
        let page = backend::list(partition, after, limit, now)?;
        let listing = Listing::from_parts(page.packed, page.lengths, page.versions, page.expiries);
        Ok(listing?)
    }

    fn backoff(&self, attempt: u32) {
        backend::backoff(attempt);
    }

    fn sweep(&self, now: u64, limit: u32) -> Result<u64, KvError> {
        Ok(backend::sweep(now, limit)?)
    }
}

impl From<wit::TaskStatus> for TaskStatus {
    fn from(s: wit::TaskStatus) -> Self {
        match s {
            wit::TaskStatus::Working => TaskStatus::Working,
            wit::TaskStatus::InputRequired => TaskStatus::InputRequired,
            wit::TaskStatus::Completed => TaskStatus::Completed,
            wit::TaskStatus::Failed => TaskStatus::Failed,
            wit::TaskStatus::Cancelled => TaskStatus::Cancelled,
        }
    }
}

impl From<TaskStatus> for wit::TaskStatus {
    fn from(s: TaskStatus) -> Self {
        match s {
            TaskStatus::Working => wit::TaskStatus::Working,
            TaskStatus::InputRequired => wit::TaskStatus::InputRequired,
            TaskStatus::Completed => wit::TaskStatus::Completed,
            TaskStatus::Failed => wit::TaskStatus::Failed,
            TaskStatus::Cancelled => wit::TaskStatus::Cancelled,
        }
    }
}

impl From<StoreError> for wit::StoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => wit::StoreError::NotFound(m),
            StoreError::InvalidTransition(m) => wit::StoreError::InvalidTransition(m),
            StoreError::InvalidParams(m) => wit::StoreError::InvalidParams(m),
            StoreError::QuotaExceeded(m) => wit::StoreError::QuotaExceeded(m),
            StoreError::Conflict(m) => wit::StoreError::Conflict(m),
            StoreError::Backend(m) => wit::StoreError::Backend(m),
            StoreError::Internal(m) => wit::StoreError::Internal(m),
        }
    }
}

impl From<Task> for wit::Task {
    fn from(t: Task) -> Self {
        wit::Task {
            task_id: t.task_id,
            status: t.status.into(),
            status_message: t.status_message,
            created_at: t.created_at,
            last_updated_at: t.last_updated_at,
            ttl: t.ttl,
            poll_interval: t.poll_interval,
        }
    }
}

impl From<OutcomeKind> for wit::OutcomeKind {
    fn from(k: OutcomeKind) -> Self {
        match k {
            OutcomeKind::Result => wit::OutcomeKind::Result,
            OutcomeKind::ErrorResult => wit::OutcomeKind::ErrorResult,
            OutcomeKind::RpcError => wit::OutcomeKind::RpcError,
        }
    }
}

impl From<Outcome> for wit::Outcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::ToolResult(t) => wit::Outcome::ToolResult(t),
            Outcome::RpcError(t) => wit::Outcome::RpcError(t),
        }
    }
}

impl From<wit::Outcome> for Outcome {
    fn from(o: wit::Outcome) -> Self {
        match o {
            wit::Outcome::ToolResult(t) => Outcome::ToolResult(t),
            wit::Outcome::RpcError(t) => Outcome::RpcError(t),
        }
    }
}

impl From<wit::StatusView> for StatusView {
    fn from(v: wit::StatusView) -> Self {
        match v {
            wit::StatusView::Extension => StatusView::Extension,
            wit::StatusView::Core => StatusView::Core,
        }
    }
}

impl From<Lease> for wit::Lease {
    fn from(l: Lease) -> Self {
        wit::Lease {
            holder: l.holder,
            expires_at: l.expires_at,
        }
    }
}

impl From<wit::LeaseGrant> for LeaseGrant {
    fn from(g: wit::LeaseGrant) -> Self {
        LeaseGrant {
            holder: g.holder,
            duration: g.duration,
        }
    }
}

impl From<wit::TaskRequest> for TaskRequest {
    fn from(r: wit::TaskRequest) -> Self {
        TaskRequest {
            method: r.method,
            tool_name: r.tool_name,
            arguments: r.arguments,
            trace_parent: r.trace_parent,
        }
    }
}

impl From<wit::InputRequest> for InputRequest {
    fn from(r: wit::InputRequest) -> Self {
        InputRequest {
            key: r.key,
            method: r.method,
            params: r.params,
        }
    }
}

impl From<InputRequest> for wit::InputRequest {
    fn from(r: InputRequest) -> Self {
        wit::InputRequest {
            key: r.key,
            method: r.method,
            params: r.params,
        }
    }
}

impl From<wit::InputResponse> for InputResponse {
    fn from(r: wit::InputResponse) -> Self {
        InputResponse {
            key: r.key,
            response: r.response,
        }
    }
}

impl From<InputResponse> for wit::InputResponse {
    fn from(r: InputResponse) -> Self {
        wit::InputResponse {
            key: r.key,
            response: r.response,
        }
    }
}

impl From<TaskRecord> for wit::TaskRecord {
    fn from(r: TaskRecord) -> Self {
        wit::TaskRecord {
            task: r.task.into(),
            request_method: r.request_method,
            tool_name: r.tool_name,
            trace_parent: r.trace_parent,
            variables: r.variables,
            has_result: r.has_result,
            outcome: r.outcome.map(Into::into),
            cancel_requested: r.cancel_requested,
            lease: r.lease.map(Into::into),
            pending_input: r.pending_input,
            answers_waiting: r.answers_waiting,
            version: r.version,
        }
    }
}

impl From<TaskDetail> for wit::TaskDetail {
    fn from(d: TaskDetail) -> Self {
        wit::TaskDetail {
            record: d.record.into(),
            outcome: d.outcome.map(Into::into),
            arguments: d.arguments,
            input_requests: d.input_requests.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<TaskPage> for wit::TaskPage {
    fn from(p: TaskPage) -> Self {
        wit::TaskPage {
            tasks: p.tasks.into_iter().map(Into::into).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

impl From<wit::StoreConfig> for StoreConfig {
    fn from(c: wit::StoreConfig) -> Self {
        StoreConfig {
            default_ttl: c.default_ttl,
            max_ttl: c.max_ttl,
            poll_interval: c.poll_interval,
            max_tasks_per_owner: c.max_tasks_per_owner,
            default_page_size: c.default_page_size,
            max_page_size: c.max_page_size,
            max_variables_bytes: c.max_variables_bytes,
            max_result_bytes: c.max_result_bytes,
            max_record_bytes: c.max_record_bytes,
            max_json_depth: c.max_json_depth,
            max_string_bytes: c.max_string_bytes,
            max_owner_bytes: c.max_owner_bytes,
            allow_anonymous: c.allow_anonymous,
            cursor_secret: c.cursor_secret,
            max_cas_attempts: c.max_cas_attempts,
        }
    }
}

/// Converts a domain result into its WIT form.
fn wire<T, W: From<T>>(r: Result<T, StoreError>) -> Result<W, wit::StoreError> {
    r.map(W::from).map_err(wit::StoreError::from)
}

/// The exported `store` resource.
struct StoreResource(TaskStore<HostKv, SystemEnvironment>);

impl StoreResource {
    /// The store, serving `owner` (the hook where test faults fire).
    fn serving(&self, owner: &str) -> &TaskStore<HostKv, SystemEnvironment> {
        #[cfg(feature = "fault-injection")]
        faults::trigger(owner);
        let _ = owner;
        &self.0
    }
}

impl GuestStore for StoreResource {
    fn open(config: wit::StoreConfig) -> Result<Store, wit::StoreError> {
        let store = TaskStore::open(HostKv, SystemEnvironment, config.into())?;
        Ok(Store::new(StoreResource(store)))
    }

    fn create(
        &self,
        owner: String,
        request: wit::TaskRequest,
        ttl: Option<u64>,
        lease: Option<wit::LeaseGrant>,
    ) -> Result<wit::TaskRecord, wit::StoreError> {
        let lease = lease.map(LeaseGrant::from);
        wire(
            self.serving(&owner)
                .create_task(&owner, &request.into(), ttl, lease.as_ref()),
        )
    }

    fn get(&self, owner: String, task_id: String) -> Result<wit::TaskRecord, wit::StoreError> {
        wire(self.serving(&owner).get(&owner, &task_id))
    }

    fn inspect(
        &self,
        owner: String,
        task_id: String,
        view: wit::StatusView,
    ) -> Result<wit::TaskDetail, wit::StoreError> {
        wire(self.serving(&owner).inspect(&owner, &task_id, view.into()))
    }

    fn finish(
        &self,
        owner: String,
        task_id: String,
        outcome: wit::Outcome,
    ) -> Result<wit::TaskRecord, wit::StoreError> {
        wire(
            self.serving(&owner)
                .finish(&owner, &task_id, &outcome.into()),
        )
    }

    fn request_cancel(
        &self,
        owner: String,
        task_id: String,
    ) -> Result<wit::TaskRecord, wit::StoreError> {
        wire(self.serving(&owner).request_cancel(&owner, &task_id))
    }

    fn request_input(
        &self,
        owner: String,
        task_id: String,
        requests: Vec<wit::InputRequest>,
    ) -> Result<wit::TaskRecord, wit::StoreError> {
        let requests: Vec<InputRequest> = requests.into_iter().map(Into::into).collect();
        wire(
            self.serving(&owner)
                .request_input(&owner, &task_id, &requests),
        )
    }

    fn answer_input(
        &self,
        owner: String,
        task_id: String,
        responses: Vec<wit::InputResponse>,
    ) -> Result<wit::TaskRecord, wit::StoreError> {
        let responses: Vec<InputResponse> = responses.into_iter().map(Into::into).collect();
        wire(
            self.serving(&owner)
                .answer_input(&owner, &task_id, &responses),
        )
    }

    fn take_answers(
        &self,
        owner: String,
        task_id: String,
    ) -> Result<Vec<wit::InputResponse>, wit::StoreError> {
        self.serving(&owner)
            .take_answers(&owner, &task_id)
            .map(|answers| answers.into_iter().map(Into::into).collect())
            .map_err(Into::into)
    }

    fn renew_lease(
        &self,
        owner: String,
        task_id: String,
        grant: wit::LeaseGrant,
    ) -> Result<wit::TaskRecord, wit::StoreError> {
        wire(
            self.serving(&owner)
                .renew_lease(&owner, &task_id, &grant.into()),
        )
    }

    fn reap_lost_workers(&self, limit: u32) -> Result<u64, wit::StoreError> {
        Ok(self.0.reap_lost_workers(limit)?)
    }

    fn update_status(
        &self,
        owner: String,
        task_id: String,
        status: wit::TaskStatus,
        message: Option<String>,
    ) -> Result<wit::TaskRecord, wit::StoreError> {
        wire(self.serving(&owner).update_status(
            &owner,
            &task_id,
            status.into(),
            message.as_deref(),
        ))
    }

    fn set_variables(
        &self,
        owner: String,
        task_id: String,
        patch: String,
        expected_version: Option<u64>,
    ) -> Result<wit::TaskRecord, wit::StoreError> {
        wire(
            self.serving(&owner)
                .set_variables(&owner, &task_id, &patch, expected_version),
        )
    }

    fn set_result(
        &self,
        owner: String,
        task_id: String,
        result: String,
    ) -> Result<wit::TaskRecord, wit::StoreError> {
        wire(self.serving(&owner).set_result(&owner, &task_id, &result))
    }

    fn get_result(&self, owner: String, task_id: String) -> Result<String, wit::StoreError> {
        wire(self.serving(&owner).get_result(&owner, &task_id))
    }

    fn complete_with_result(
        &self,
        owner: String,
        task_id: String,
        status: wit::TaskStatus,
        result: String,
    ) -> Result<wit::TaskRecord, wit::StoreError> {
        wire(
            self.serving(&owner)
                .complete_with_result(&owner, &task_id, status.into(), &result),
        )
    }

    fn list(
        &self,
        owner: String,
        cursor: Option<String>,
        limit: Option<u32>,
        view: wit::StatusView,
    ) -> Result<wit::TaskPage, wit::StoreError> {
        wire(
            self.serving(&owner)
                .list(&owner, cursor.as_deref(), limit, view.into()),
        )
    }

    fn cancel(&self, owner: String, task_id: String) -> Result<wit::TaskRecord, wit::StoreError> {
        wire(self.serving(&owner).cancel(&owner, &task_id))
    }

    fn delete(&self, owner: String, task_id: String) -> Result<(), wit::StoreError> {
        Ok(self.serving(&owner).delete(&owner, &task_id)?)
    }

    fn cleanup_expired(&self, limit: u32) -> Result<u64, wit::StoreError> {
        Ok(self.0.cleanup_expired(limit)?)
    }
}

/// Faults for the host's sandbox tests, triggered by reserved owner ids.
#[cfg(feature = "fault-injection")]
mod faults {
    /// Owner id that makes the guest trap.
    pub const TRAP: &str = "fault-injection:trap";
    /// Owner id that makes the guest loop forever.
    pub const LOOP: &str = "fault-injection:loop";
    /// Owner id that makes the guest allocate without bound.
    pub const ALLOCATE: &str = "fault-injection:allocate";
    /// Owner id that makes the guest sweep with a clock from the far
    /// future, as a hostile plugin would to delete every tenant's tasks.
    pub const TIME_TRAVEL: &str = "fault-injection:time-travel";

    pub fn trigger(owner: &str) {
        match owner {
            TRAP => panic!("fault injection: trap requested"),
            LOOP => loop {
                std::hint::black_box(());
            },
            TIME_TRAVEL => {
                if let Err(refused) = super::backend::sweep(u64::MAX, 10_000) {
                    panic!("fault injection: the host refused the sweep: {refused:?}");
                }
            }
            ALLOCATE => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            _ => {}
        }
    }
}

struct Component;

impl Guest for Component {
    type Store = StoreResource;
}

export!(Component);
