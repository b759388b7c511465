//! The Redis backend (feature `redis`): a single server or a Redis Cluster.
//!
//! Key schema, for key prefix `P` and partition tag `T` (the partition
//! itself when it is lowercase hex, as the component's are, else
//! hex-encoded behind another marker, so no partition can produce another's tag):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:{T}:t:<item>` | hash | `h` head, `v` body, `ver` version, `exp` expiry (ms, `''` = none); native `PEXPIREAT` [`NATIVE_EXPIRY_MARGIN`] after `exp` |
//! | `P:{T}:idx` | sorted set | item ids, all scored 0: id order via `ZRANGEBYLEX` |
//! | `P:{T}:exp` | sorted set | item ids scored by expiry: pruning and the live count |
//! | `P:sweep` | sorted set | partitions scored by (a lower bound of) their earliest expiry: what a sweep visits |
//!
//! Every write is one Lua script (cached by SHA, reloaded on `NOSCRIPT`)
//! touching only keys that share the partition's hash tag, so it is atomic
//! and runs on one cluster node.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Script, ServerErrorKind, Value};

mod codec;
mod config;

pub use codec::NATIVE_EXPIRY_MARGIN;
pub use config::{RedisBackendError, RedisConfig};

use super::{Entry, KvBackend, KvError, Listing, PartitionName};
use codec::{expiry_arg, native_expiry_arg, parse_expiry, parse_version};

/// A connection that reconnects by itself: a manager for one server, the
/// cluster client's connection for a cluster.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(cmd, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

/// The Lua scripts. The prelude's functions cost Redis a closure each on
/// every run (see `prelude.lua`), so the replace, which every task update
/// runs, goes without them; the others are prefixed with it.
struct Scripts {
    create: Script,
    replace: Script,
    remove: Script,
    list: Script,
    sweep: Script,
    sweep_hint: Script,
}

impl Scripts {
    fn new() -> Self {
        let with_prelude =
            |body: &str| Script::new(&format!("{}\n{body}", include_str!("prelude.lua")));
        Scripts {
            create: with_prelude(include_str!("create.lua")),
            replace: Script::new(include_str!("replace.lua")),
            remove: with_prelude(include_str!("remove.lua")),
            list: with_prelude(include_str!("list.lua")),
            sweep: with_prelude(include_str!("sweep.lua")),
            sweep_hint: Script::new(include_str!("sweep_hint.lua")),
        }
    }
}

/// Tasks in Redis; cheap to share behind an `Arc`.
pub struct RedisBackend {
    connection: Connection,
    prefix: String,
    address: String,
    scripts: Scripts,
}

/// The keys of one partition. The scripts find an item's hash from the
/// expiry set's key (`prelude.lua`'s `item_prefix`), so the two differ only
/// in their last segment (`exp`, `t:`).
struct PartitionKeys {
    index: String,
    expiries: String,
    item_prefix: String,
}

impl PartitionKeys {
    /// The keys of `partition` under the key prefix `prefix`.
    fn new(prefix: &str, partition: &str) -> Self {
        let tag = partition_tag(partition);
        PartitionKeys {
            index: format!("{prefix}:{{{tag}}}:idx"),
            expiries: format!("{prefix}:{{{tag}}}:exp"),
            item_prefix: format!("{prefix}:{{{tag}}}:t:"),
        }
    }

    fn item(&self, item: &str) -> String {
        format!("{}{item}", self.item_prefix)
    }
}

/// The hash tag of a partition: `p:` and the partition when it is plain
/// (the component's SHA-256 hex), else `x:` and its hex, so no partition
/// can produce another's tag.
pub(crate) fn partition_tag(partition: &str) -> String {
    match PartitionName::of(partition) {
        PartitionName::Plain(plain) => format!("p:{plain}"),
        PartitionName::Hex(hex) => format!("x:{hex}"),
    }
}

impl RedisBackend {
    /// Connects, failing within the connect timeout if Redis is unreachable.
    pub async fn connect(config: RedisConfig) -> Result<Self, RedisBackendError> {
        if config.key_prefix.contains(['{', '}']) {
            return Err(RedisBackendError::Config(
                "the key prefix must not contain '{' or '}'".into(),
            ));
        }
        if config.urls.iter().any(|url| url.starts_with("rediss://")) {
            // One process-wide TLS crypto provider (a no-op if one is set).
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        }
        let address = config
            .urls
            .iter()
            .map(|url| super::shown::without_credentials(url))
            .collect::<Vec<_>>()
            .join(",");
        let connect_error = |source| RedisBackendError::Connect {
            address: address.clone(),
            source,
        };
        let connection = if config.cluster {
            let client = ClusterClientBuilder::new(config.urls.clone())
                .connection_timeout(config.connect_timeout)
                .response_timeout(config.response_timeout)
                .retries(2)
                .build()
                .map_err(connect_error)?;
            Connection::Cluster(client.get_async_connection().await.map_err(connect_error)?)
        } else {
            let [url] = config.urls.as_slice() else {
                return Err(RedisBackendError::Config(
                    "a single server takes exactly one URL".into(),
                ));
            };
            let client = redis::Client::open(url.as_str()).map_err(connect_error)?;
            let manager_config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(config.connect_timeout))
                .set_response_timeout(Some(config.response_timeout))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_secs(1));
            Connection::Single(
                ConnectionManager::new_with_config(client, manager_config)
                    .await
                    .map_err(connect_error)?,
            )
        };
        Ok(RedisBackend {
            connection,
            prefix: config.key_prefix,
            address,
            scripts: Scripts::new(),
        })
    }

    fn keys(&self, partition: &str) -> PartitionKeys {
        PartitionKeys::new(&self.prefix, partition)
    }

    /// The sweep index (see the module docs): outside every partition's
    /// hash tag, so it is written in commands of its own.
    fn sweep_key(&self) -> String {
        format!("{}:sweep", self.prefix)
    }

    fn unavailable(&self, e: RedisError) -> KvError {
        KvError::unavailable(format!("redis at {}: {e}", self.address), e)
    }

    /// Runs `script` over `keys` with `args` (each script's header says
    /// which is which).
    async fn run<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&[u8]],
    ) -> Result<T, KvError> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        let mut connection = self.connection.clone();
        invocation
            .invoke_async(&mut connection)
            .await
            .map_err(|e| self.unavailable(e))
    }

    /// A create's sweep hint and its script in one round trip (one server:
    /// a pipeline; the hint goes first, as [`RedisBackend::hint_sweep`]
    /// requires). The script runs by hash, loaded once if the server lacks
    /// it; repeating the hint then is harmless.
    async fn run_hinted(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&[u8]],
        (partition, expires_at): (&str, u64),
    ) -> Result<i64, KvError> {
        let mut pipe = redis::pipe();
        pipe.add_command(self.sweep_hint(partition, expires_at))
            .ignore();
        let evalsha = pipe.cmd("EVALSHA").arg(script.get_hash()).arg(keys.len());
        for key in keys {
            evalsha.arg(*key);
        }
        for arg in args {
            evalsha.arg(*arg);
        }
        let mut connection = self.connection.clone();
        let first = pipe.query_async::<(i64,)>(&mut connection).await;
        let (created,) = match first {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                script
                    .load_async(&mut connection)
                    .await
                    .map_err(|e| self.unavailable(e))?;
                pipe.query_async(&mut connection).await
            }
            other => other,
        }
        .map_err(|e| self.unavailable(e))?;
        Ok(created)
    }

    /// Lowers the partition's score in the sweep index to `expires_at` (or
    /// adds it). Done before the write it is for: a hint for a write that
    /// then fails costs the sweep one wasted visit, a write without its
    /// hint would be missed.
    async fn hint_sweep(&self, partition: &str, expires_at: u64) -> Result<(), KvError> {
        let mut connection = self.connection.clone();
        self.sweep_hint(partition, expires_at)
            .query_async::<()>(&mut connection)
            .await
            .map_err(|e| self.unavailable(e))
    }

    /// The command that lowers the partition's score in the sweep index to
    /// `expires_at` (or adds it).
    fn sweep_hint(&self, partition: &str, expires_at: u64) -> Cmd {
        let mut hint = redis::cmd("ZADD");
        hint.arg(self.sweep_key())
            .arg("LT")
            .arg(expires_at)
            .arg(partition);
        hint
    }
}

#[async_trait]
impl KvBackend for RedisBackend {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn get(&self, partition: &str, item: &str) -> Result<Option<Entry>, KvError> {
        let key = self.keys(partition).item(item);
        let mut connection = self.connection.clone();
        type Fields = (
            Option<Vec<u8>>,
            Option<Vec<u8>>,
            Option<Vec<u8>>,
            Option<Vec<u8>>,
        );
        let (head, body, version, expires_at): Fields = redis::cmd("HMGET")
            .arg(&key)
            .arg(&["h", "v", "ver", "exp"][..])
            .query_async(&mut connection)
            .await
            .map_err(|e| self.unavailable(e))?;
        match (head, version) {
            (Some(head), Some(version)) => Ok(Some(Entry {
                head,
                body: body.unwrap_or_default(),
                version: parse_version(&version)?,
                expires_at: parse_expiry(&expires_at.unwrap_or_default())?,
            })),
            _ => Ok(None),
        }
    }

    async fn create(
        &self,
        partition: &str,
        item: &str,
        head: Vec<u8>,
        body: Vec<u8>,
        expires_at: Option<u64>,
        max_live: Option<u32>,
        now: u64,
    ) -> Result<u64, KvError> {
        let keys = self.keys(partition);
        let item_key = keys.item(item);
        let cap = max_live
            .map(|m| m.to_string().into_bytes())
            .unwrap_or_default();
        let keys = [keys.expiries.as_str(), &item_key, &keys.index];
        let args: [&[u8]; 7] = [
            &now.to_string().into_bytes(),
            item.as_bytes(),
            &head,
            &body,
            &expiry_arg(expires_at),
            &cap,
            &native_expiry_arg(expires_at),
        ];
        let script = &self.scripts.create;
        let created = match (&self.connection, expires_at) {
            (Connection::Single(_), Some(at)) => {
                self.run_hinted(script, &keys, &args, (partition, at))
                    .await?
            }
            // A cluster keeps the sweep index on another node: two steps.
            (Connection::Cluster(_), Some(at)) => {
                self.hint_sweep(partition, at).await?;
                self.run(script, &keys, &args).await?
            }
            (_, None) => self.run(script, &keys, &args).await?,
        };
        match created {
            1 => Ok(1),
            -2 => Err(KvError::QuotaExceeded),
            _ => Err(KvError::Conflict),
        }
    }

    async fn replace(
        &self,
        partition: &str,
        item: &str,
        expected_version: u64,
        head: Vec<u8>,
        body: Vec<u8>,
        expires_at: Option<u64>,
        now: u64,
    ) -> Result<u64, KvError> {
        let keys = self.keys(partition);
        let item_key = keys.item(item);
        let args: [&[u8]; 6] = [
            &now.to_string().into_bytes(),
            &expected_version.to_string().into_bytes(),
            &head,
            &body,
            &expiry_arg(expires_at),
            &native_expiry_arg(expires_at),
        ];
        let written: i64 = self
            .run(&self.scripts.replace, &[&keys.expiries, &item_key], &args)
            .await?;
        if written == 0 {
            return Err(KvError::Conflict);
        }
        // Negative: the expiry moved earlier (or appeared). Rare (a task's
        // expiry does not move earlier): hinted after the write, so a
        // failure here only delays the sweep, and Redis's own expiry still
        // removes the item.
        if let (true, Some(at)) = (written < 0, expires_at) {
            self.hint_sweep(partition, at).await?;
        }
        Ok(written.unsigned_abs())
    }

    async fn remove(
        &self,
        partition: &str,
        item: &str,
        expected_version: u64,
    ) -> Result<(), KvError> {
        let keys = self.keys(partition);
        let item_key = keys.item(item);
        let expected = expected_version.to_string();
        match self
            .run::<i64>(
                &self.scripts.remove,
                &[&keys.expiries, &item_key, &keys.index],
                &[expected.as_bytes()],
            )
            .await?
        {
            1 => Ok(()),
            _ => Err(KvError::Conflict),
        }
    }

    async fn list(
        &self,
        partition: &str,
        after: Option<&str>,
        limit: u32,
        now: u64,
    ) -> Result<Listing, KvError> {
        let keys = self.keys(partition);
        let args: [&[u8]; 3] = [
            &now.to_string().into_bytes(),
            after.unwrap_or("").as_bytes(),
            &limit.to_string().into_bytes(),
        ];
        let flat: Vec<Vec<u8>> = self
            .run(&self.scripts.list, &[&keys.expiries, &keys.index], &args)
            .await?;
        let mut listing = Listing::with_capacity(flat.len() / 4);
        for row in flat.chunks_exact(4) {
            let item = std::str::from_utf8(&row[0])
                .map_err(|_| KvError::Corrupt("redis returned a non-UTF-8 item id".into()))?;
            let (version, expires_at) = (parse_version(&row[2])?, parse_expiry(&row[3])?);
            listing.push(item, &row[1], version, expires_at)?;
        }
        Ok(listing)
    }

    /// Visits only the partitions whose sweep-index score is due: the cost
    /// follows what expired (plus stale hints, each corrected on its first
    /// visit), not how many partitions ever existed.
    async fn sweep(&self, now: u64, limit: u32) -> Result<u64, KvError> {
        let mut connection = self.connection.clone();
        let due: Vec<(String, String)> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.sweep_key())
            .arg("-inf")
            .arg(now)
            .arg("WITHSCORES")
            .arg("LIMIT")
            .arg(0)
            .arg(limit.max(1))
            .query_async(&mut connection)
            .await
            .map_err(|e| self.unavailable(e))?;
        let mut removed = 0u64;
        for (partition, score) in due {
            let left = u64::from(limit) - removed;
            if left == 0 {
                break;
            }
            let keys = self.keys(&partition);
            let args: [&[u8]; 2] = [
                &now.to_string().into_bytes(),
                &left.to_string().into_bytes(),
            ];
            let (count, next): (u64, String) = self
                .run(&self.scripts.sweep, &[&keys.expiries, &keys.index], &args)
                .await?;
            removed += count;
            self.scripts
                .sweep_hint
                .key(self.sweep_key())
                .arg(&partition)
                .arg(&score)
                .arg(&next)
                .invoke_async::<i64>(&mut connection)
                .await
                .map_err(|e| self.unavailable(e))?;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_never_collide_and_never_contain_braces() {
        let hex = "ab12".to_string();
        let crafted = ["a}b", "{x}", "", "AB12", "p:ab12", "x:6162"];
        let mut tags: Vec<String> = crafted.iter().map(|p| partition_tag(p)).collect();
        tags.push(partition_tag(&hex));
        let unique: std::collections::HashSet<&String> = tags.iter().collect();
        assert_eq!(unique.len(), tags.len());
        assert!(tags.iter().all(|t| !t.contains(['{', '}'])));
        assert_eq!(partition_tag("ab12"), "p:ab12");
    }

    #[test]
    fn the_scripts_find_item_hashes_from_the_expiry_set_key() {
        // What prelude.lua's item_prefix, remove.lua and replace.lua compute.
        for (prefix, partition) in [("pmcp-tasks", "ab12"), ("a:b", "x}y{"), ("", "")] {
            let keys = PartitionKeys::new(prefix, partition);
            let expiries = &keys.expiries;
            let derived = format!("{}t:", &expiries[..expiries.len() - 3]);
            assert_eq!(derived, keys.item_prefix);
            // An item's id starts at the expiry set key's length (1-based).
            let item_key = keys.item("task-1");
            assert_eq!(&item_key[expiries.len() - 1..], "task-1");
        }
    }

    #[test]
    fn urls_choose_single_server_or_cluster() {
        let single = RedisConfig::from_url("redis://127.0.0.1:7000").unwrap();
        assert_eq!((single.cluster, single.urls.len()), (false, 1));
        let cluster =
            RedisConfig::from_url("redis+cluster://127.0.0.1:7000,127.0.0.1:7001").unwrap();
        assert_eq!(
            cluster.urls,
            ["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"]
        );
        assert!(cluster.cluster);
        assert!(RedisConfig::from_url("http://x").is_err());
    }
}
