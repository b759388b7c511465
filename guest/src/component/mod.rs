//! The component's export layer: the bindings, the exported store
//! resource and its methods; the conversions between WIT and domain types
//! (`convert`) and the imported `kv-backend` as a `Kv` (`host_kv`) live
//! beside it.

use crate::{InputRequest, InputResponse, LeaseGrant, SystemEnvironment, TaskStore};

/// Freed small blocks are reused without reaching wasi-libc's dlmalloc
/// (see [`crate::block_cache`]).
#[global_allocator]
static ALLOCATOR: crate::block_cache::BlockCache<std::alloc::System> =
    crate::block_cache::BlockCache::new(std::alloc::System);

mod bindings;
mod convert;
mod host_kv;

use bindings::exports::pmcp::tasks::task_store::{Guest, GuestStore, Store};
use bindings::pmcp::tasks::types as wit;

use convert::wire;
use host_kv::HostKv;

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

    fn create_queued(
        &self,
        owner: String,
        request: wit::TaskRequest,
        ttl: Option<u64>,
    ) -> Result<wit::TaskRecord, wit::StoreError> {
        wire(
            self.serving(&owner)
                .create_queued(&owner, &request.into(), ttl),
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
        worker: Option<String>,
        outcome: wit::Outcome,
    ) -> Result<wit::TaskRecord, wit::StoreError> {
        wire(
            self.serving(&owner)
                .finish(&owner, &task_id, worker.as_deref(), &outcome.into()),
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
        worker: Option<String>,
        requests: Vec<wit::InputRequest>,
    ) -> Result<wit::TaskRecord, wit::StoreError> {
        let requests: Vec<InputRequest> = requests.into_iter().map(Into::into).collect();
        wire(
            self.serving(&owner)
                .request_input(&owner, &task_id, worker.as_deref(), &requests),
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
        worker: Option<String>,
    ) -> Result<Vec<wit::InputResponse>, wit::StoreError> {
        self.serving(&owner)
            .take_answers(&owner, &task_id, worker.as_deref())
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

    fn reap_lost_workers(&self, limit: u32) -> Result<wit::ReapReport, wit::StoreError> {
        let report = self.0.reap_lost_workers(limit)?;
        Ok(wit::ReapReport {
            failed: report.failed,
            requeued: report.requeued,
        })
    }

    fn claim(
        &self,
        grant: wit::LeaseGrant,
        limit: u32,
    ) -> Result<Vec<wit::ClaimedTask>, wit::StoreError> {
        let claimed = self.0.claim(&grant.into(), limit)?;
        Ok(claimed
            .into_iter()
            .map(|claimed| wit::ClaimedTask {
                owner: claimed.owner,
                detail: claimed.detail.into(),
                waited_ms: claimed.waited_ms,
            })
            .collect())
    }

    fn hand_off(
        &self,
        owner: String,
        task_id: String,
        holder: String,
    ) -> Result<wit::TaskRecord, wit::StoreError> {
        wire(self.serving(&owner).hand_off(&owner, &task_id, &holder))
    }

    fn checkpoint(
        &self,
        owner: String,
        task_id: String,
        holder: String,
        value: String,
    ) -> Result<wit::TaskRecord, wit::StoreError> {
        wire(
            self.serving(&owner)
                .checkpoint(&owner, &task_id, &holder, &value),
        )
    }

    fn update_status(
        &self,
        owner: String,
        task_id: String,
        worker: Option<String>,
        status: wit::TaskStatus,
        message: Option<String>,
    ) -> Result<wit::TaskRecord, wit::StoreError> {
        wire(self.serving(&owner).update_status(
            &owner,
            &task_id,
            worker.as_deref(),
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
    pub(super) const TRAP: &str = "fault-injection:trap";
    /// Owner id that makes the guest loop forever.
    pub(super) const LOOP: &str = "fault-injection:loop";
    /// Owner id that makes the guest allocate without bound.
    pub(super) const ALLOCATE: &str = "fault-injection:allocate";
    /// Owner id that makes the guest sweep with a clock from the far
    /// future, as a hostile plugin would to delete every tenant's tasks.
    pub(super) const TIME_TRAVEL: &str = "fault-injection:time-travel";

    pub(super) fn trigger(owner: &str) {
        match owner {
            TRAP => panic!("fault injection: trap requested"),
            LOOP => loop {
                std::hint::black_box(());
            },
            TIME_TRAVEL => {
                if let Err(refused) =
                    super::bindings::pmcp::tasks::kv_backend::sweep(u64::MAX, 10_000)
                {
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

bindings::export!(Component);
