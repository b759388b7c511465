//! The two stores behind one trait: ours (`TaskHost`, the component) and
//! the peer's (`GenericTaskStore`), each called the way its API is meant
//! to be called, with the same payloads.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use anyhow::Context;
use async_trait::async_trait;
use pmcp_tasks::store::backend::{make_key, StorageBackend};
use pmcp_tasks::store::StoreConfig as PeerConfig;
use pmcp_tasks::{
    GenericTaskStore, InMemoryBackend as PeerMemory, ListTasksOptions, RedisBackend as PeerRedis,
    TaskRecord as PeerRecord, TaskSecurityConfig, TaskStatus as PeerStatus,
};
use pmcp_tasks_host::backend::{InMemoryBackend, KvBackend};
use pmcp_tasks_host::{StoreConfig, TaskHost, TaskStatus};
use serde_json::{json, Map, Value};

/// The request method every benchmark task is created for.
const METHOD: &str = "tools/call";
/// A task id no store issues (ours refuses it before any backend call).
const MALFORMED_TASK_ID: &str = "not-a-task-id";

/// The variables merged by `set-variables`: eight keys, about 1 KB, and
/// `seq`, different in every call (a merge that changes nothing is not
/// written by ours, and would not be a write to time).
pub(crate) fn variables(seq: u64) -> Map<String, Value> {
    let mut patch: Map<String, Value> = (0..8)
        .map(|i| (format!("var-{i}"), json!("v".repeat(120))))
        .collect();
    patch.insert("seq".to_owned(), json!(seq));
    patch
}

/// The status message of a progress update, different in every call (ours
/// does not write a message that does not change).
pub(crate) fn progress_message(seq: u64) -> String {
    format!("step {seq}")
}
/// The result of `complete-with-result`: a tool result of about 4 KB.
static RESULT: LazyLock<Value> = LazyLock::new(
    || json!({"content": [{"type": "text", "text": "r".repeat(4_000)}], "isError": false}),
);

/// What the benchmark does to a store.
#[async_trait]
pub(crate) trait Store: Send + Sync {
    /// The store's name in progress lines.
    fn name(&self) -> &'static str;
    /// Creates a task through the store's API; returns its id.
    async fn create(&self, owner: &str) -> anyhow::Result<String>;
    /// Creates a task by the fastest way the store allows (the peer's own
    /// create reads every task of the owner); returns its id.
    async fn seed_one(&self, owner: &str) -> anyhow::Result<String>;
    /// Reads a task.
    async fn get(&self, owner: &str, id: &str) -> anyhow::Result<()>;
    /// Replaces a working task's status message with `message`.
    async fn progress(&self, owner: &str, id: &str, message: &str) -> anyhow::Result<()>;
    /// Merges `patch` into a task's variables.
    async fn set_variables(
        &self,
        owner: &str,
        id: &str,
        patch: Map<String, Value>,
    ) -> anyhow::Result<()>;
    /// Completes a working task with [`RESULT`].
    async fn complete(&self, owner: &str, id: &str) -> anyhow::Result<()>;
    /// Lists a page; returns the next page's cursor (none at the end).
    async fn list_page(
        &self,
        owner: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> anyhow::Result<Option<String>>;
    /// One page of the owner's listing: its task ids and the next cursor.
    #[cfg(test)]
    async fn page_ids(
        &self,
        owner: &str,
        cursor: Option<String>,
    ) -> anyhow::Result<(Vec<String>, Option<String>)>;
    /// The ids of every task the owner's listing shows, page by page.
    #[cfg(test)]
    async fn list_ids(&self, owner: &str) -> anyhow::Result<Vec<String>> {
        let (mut ids, mut cursor) = (Vec::new(), None);
        loop {
            let (page, next) = self.page_ids(owner, cursor).await?;
            ids.extend(page);
            match next {
                Some(next) => cursor = Some(next),
                None => return Ok(ids),
            }
        }
    }
    /// Moves a task to `input_required` (or back to `working`).
    async fn flip_status(&self, owner: &str, id: &str, input_required: bool) -> anyhow::Result<()>;
}

/// Our host running the default component, without a quota (the peer's
/// quota is lifted too), everything else as it ships.
pub(crate) struct Ours {
    host: TaskHost,
}

impl Ours {
    async fn over(backend: Arc<dyn KvBackend>) -> anyhow::Result<Ours> {
        let mut config = StoreConfig::default();
        config.max_tasks_per_owner = None;
        let host = TaskHost::builder()
            .backend(backend)
            .config(config)
            .build()
            .await
            .context("building our host")?;
        Ok(Ours { host })
    }

    /// Ours on the host's in-memory backend.
    pub(crate) async fn in_memory() -> anyhow::Result<Ours> {
        Ours::over(Arc::new(InMemoryBackend::new())).await
    }

    /// Ours on the Redis server at `url`.
    pub(crate) async fn on_redis(url: &str) -> anyhow::Result<Ours> {
        let backend = pmcp_tasks_host::backend::connect(url)
            .await
            .context("connecting our Redis backend")?;
        Ours::over(backend).await
    }

    /// The median time of a `get` the component refuses before any backend
    /// call: the fixed cost of one call into the sandbox and back.
    pub(crate) async fn refused_get_ns(&self) -> f64 {
        let mut samples = Vec::with_capacity(2_000);
        for i in 0..2_500 {
            let start = Instant::now();
            let refused = self.host.get("bench-owner", MALFORMED_TASK_ID).await;
            let took = start.elapsed();
            assert!(refused.is_err(), "a malformed id is refused");
            if i >= 500 {
                samples.push(took);
            }
        }
        samples.sort_unstable();
        samples[samples.len() / 2].as_nanos() as f64
    }
}

#[async_trait]
impl Store for Ours {
    fn name(&self) -> &'static str {
        "ours"
    }

    async fn create(&self, owner: &str) -> anyhow::Result<String> {
        let record = self.host.create(owner, METHOD, None).await?;
        Ok(record.task.task_id)
    }

    async fn seed_one(&self, owner: &str) -> anyhow::Result<String> {
        self.create(owner).await
    }

    async fn get(&self, owner: &str, id: &str) -> anyhow::Result<()> {
        self.host.get(owner, id).await?;
        Ok(())
    }

    async fn progress(&self, owner: &str, id: &str, message: &str) -> anyhow::Result<()> {
        let working = TaskStatus::Working;
        self.host
            .update_status(owner, id, working, Some(message))
            .await?;
        Ok(())
    }

    async fn set_variables(
        &self,
        owner: &str,
        id: &str,
        patch: Map<String, Value>,
    ) -> anyhow::Result<()> {
        self.host.set_variables(owner, id, &patch).await?;
        Ok(())
    }

    async fn complete(&self, owner: &str, id: &str) -> anyhow::Result<()> {
        let completed = TaskStatus::Completed;
        self.host
            .complete_with_result(owner, id, completed, &RESULT)
            .await?;
        Ok(())
    }

    async fn list_page(
        &self,
        owner: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> anyhow::Result<Option<String>> {
        let limit = u32::try_from(limit).context("a page size")?;
        let page = self
            .host
            .list(owner, cursor.as_deref(), Some(limit))
            .await?;
        Ok(page.next_cursor)
    }

    #[cfg(test)]
    async fn page_ids(
        &self,
        owner: &str,
        cursor: Option<String>,
    ) -> anyhow::Result<(Vec<String>, Option<String>)> {
        let page = self.host.list(owner, cursor.as_deref(), None).await?;
        let ids = page.tasks.into_iter().map(|task| task.task_id).collect();
        Ok((ids, page.next_cursor))
    }

    async fn flip_status(&self, owner: &str, id: &str, input_required: bool) -> anyhow::Result<()> {
        let status = match input_required {
            true => TaskStatus::InputRequired,
            false => TaskStatus::Working,
        };
        self.host.update_status(owner, id, status, None).await?;
        Ok(())
    }
}

/// `pmcp-tasks` 0.2.0's `GenericTaskStore` over one of its backends, with
/// our default TTL and no quota.
pub(crate) struct Peer<B: StorageBackend> {
    store: GenericTaskStore<B>,
    ttl_ms: u64,
}

impl<B: StorageBackend> Peer<B> {
    fn over(backend: B) -> Peer<B> {
        let ttl_ms = StoreConfig::default()
            .default_ttl
            .map_or(3_600_000, |ttl| ttl.as_millis() as u64);
        let config = PeerConfig {
            default_ttl_ms: Some(ttl_ms),
            ..PeerConfig::default()
        };
        let security = TaskSecurityConfig::default().with_max_tasks_per_owner(usize::MAX);
        let store = GenericTaskStore::new(backend)
            .with_config(config)
            .with_security(security);
        Peer { store, ttl_ms }
    }
}

impl Peer<PeerMemory> {
    /// The peer on its in-memory backend.
    pub(crate) fn in_memory() -> Peer<PeerMemory> {
        Peer::over(PeerMemory::new())
    }
}

impl Peer<PeerRedis> {
    /// The peer on the Redis server at `url`.
    pub(crate) async fn on_redis(url: &str) -> anyhow::Result<Peer<PeerRedis>> {
        let backend = PeerRedis::new(url)
            .await
            .context("connecting the peer's Redis backend")?;
        Ok(Peer::over(backend))
    }
}

#[async_trait]
impl<B: StorageBackend + 'static> Store for Peer<B> {
    fn name(&self) -> &'static str {
        "peer"
    }

    async fn create(&self, owner: &str) -> anyhow::Result<String> {
        let record = self.store.create(owner, METHOD, None).await?;
        Ok(record.task.task_id)
    }

    async fn seed_one(&self, owner: &str) -> anyhow::Result<String> {
        // The record the peer's create writes, without its count of the
        // owner's tasks (a read of every one of them).
        let mut record = PeerRecord::new(owner.to_owned(), METHOD.to_owned(), Some(self.ttl_ms));
        record.task.poll_interval = Some(self.store.poll_interval_ms());
        let bytes = serde_json::to_vec(&record)?;
        let key = make_key(owner, &record.task.task_id);
        self.store.backend().put(&key, &bytes).await?;
        Ok(record.task.task_id)
    }

    async fn get(&self, owner: &str, id: &str) -> anyhow::Result<()> {
        self.store.get(id, owner).await?;
        Ok(())
    }

    async fn progress(&self, owner: &str, id: &str, message: &str) -> anyhow::Result<()> {
        let message = Some(message.to_owned());
        self.store.set_status_message(id, owner, message).await?;
        Ok(())
    }

    async fn set_variables(
        &self,
        owner: &str,
        id: &str,
        patch: Map<String, Value>,
    ) -> anyhow::Result<()> {
        // Its API takes a HashMap: the entries move, nothing is copied.
        let variables: HashMap<String, Value> = patch.into_iter().collect();
        self.store.set_variables(id, owner, variables).await?;
        Ok(())
    }

    async fn complete(&self, owner: &str, id: &str) -> anyhow::Result<()> {
        let completed = PeerStatus::Completed;
        let result = RESULT.clone();
        self.store
            .complete_with_result(id, owner, completed, None, result)
            .await?;
        Ok(())
    }

    async fn list_page(
        &self,
        owner: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> anyhow::Result<Option<String>> {
        let options = ListTasksOptions {
            owner_id: owner.to_owned(),
            cursor,
            limit: Some(limit),
        };
        Ok(self.store.list(options).await?.next_cursor)
    }

    #[cfg(test)]
    async fn page_ids(
        &self,
        owner: &str,
        cursor: Option<String>,
    ) -> anyhow::Result<(Vec<String>, Option<String>)> {
        let options = ListTasksOptions {
            owner_id: owner.to_owned(),
            cursor,
            limit: None,
        };
        let page = self.store.list(options).await?;
        let ids = page.tasks.into_iter().map(|t| t.task.task_id).collect();
        Ok((ids, page.next_cursor))
    }

    async fn flip_status(&self, owner: &str, id: &str, input_required: bool) -> anyhow::Result<()> {
        let status = match input_required {
            true => PeerStatus::InputRequired,
            false => PeerStatus::Working,
        };
        self.store.update_status(id, owner, status, None).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The differences in guarantees the report states, shown.

    use super::*;

    /// The peer keys a task `{owner}:{task}` and lists by the prefix
    /// `{owner}:`, so an owner whose id is another's plus `:` lands in the
    /// other's listing; ours keeps every owner in a partition of its own.
    #[tokio::test]
    async fn an_owner_id_with_a_colon_reaches_into_the_peers_listing_not_ours() {
        let peer = Peer::in_memory();
        let ours = Ours::in_memory().await.expect("our host");
        for store in [&peer as &dyn Store, &ours] {
            let intruder = store.create("alice:x").await.expect("created");
            let alice_sees = store
                .list_ids("alice")
                .await
                .expect("alice's listing")
                .contains(&intruder);
            assert_eq!(alice_sees, store.name() == "peer", "{}", store.name());
        }
    }

    /// The peer counts an owner's tasks and then writes, two round trips,
    /// so concurrent creates all pass a quota of one; ours counts and
    /// writes in one atomic script. (On Redis: the peer's in-memory
    /// backend never waits, so its calls cannot interleave.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_creates_overshoot_the_peers_quota_not_ours() {
        let server = crate::redis_server::RedisServer::start()
            .await
            .expect("redis-server");
        let security = TaskSecurityConfig::default().with_max_tasks_per_owner(1);
        let peer = GenericTaskStore::new(PeerRedis::new(&server.url()).await.expect("peer"))
            .with_security(security);
        let mut config = StoreConfig::default();
        config.max_tasks_per_owner = Some(1);
        let backend = pmcp_tasks_host::backend::connect(&server.url())
            .await
            .expect("our backend");
        let ours = TaskHost::builder()
            .backend(backend)
            .config(config)
            .build()
            .await
            .expect("our host");
        let (peer, ours) = (Arc::new(peer), Arc::new(ours));
        let (mut peer_created, mut ours_created) = (0, 0);
        for round in 0..10 {
            let owner = format!("bob-{round}");
            let mut creates = tokio::task::JoinSet::new();
            for _ in 0..8 {
                let (peer, ours, owner) = (peer.clone(), ours.clone(), owner.clone());
                creates.spawn(async move {
                    let peer = peer.create(&owner, METHOD, None).await.is_ok();
                    let ours = ours.create(&owner, METHOD, None).await.is_ok();
                    (usize::from(peer), usize::from(ours))
                });
            }
            while let Some(created) = creates.join_next().await {
                let (peer, ours) = created.expect("a create panicked");
                peer_created += peer;
                ours_created += ours;
            }
        }
        server.stop().await;
        assert_eq!(ours_created, 10, "ours: one task per owner");
        assert!(
            peer_created > 10,
            "the peer: {peer_created} tasks for 10 owners"
        );
    }
}
