//! [`RedisConfig`]: where Redis is and how to talk to it; and why setting it up failed.

use std::time::Duration;

use redis::RedisError;

/// How to reach Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisConfig {
    /// Server URLs (`redis://host:port/db`); with [`RedisConfig::cluster`]
    /// these are the cluster's seed nodes.
    pub urls: Vec<String>,
    /// Whether to talk the Redis Cluster protocol.
    pub cluster: bool,
    /// Prefix of every key, so deployments can share one Redis. No `{` or `}`.
    pub key_prefix: String,
    /// Bound on establishing a connection.
    pub connect_timeout: Duration,
    /// Bound on one request's response.
    pub response_timeout: Duration,
}

impl RedisConfig {
    /// Parses `redis://host:port[/db]` or `rediss://host:port[/db]` (one
    /// server, the second over TLS; `#insecure` skips certificate checks)
    /// or `redis+cluster://host:port,host:port,...` (cluster seed nodes).
    pub fn from_url(url: &str) -> Result<Self, RedisBackendError> {
        let invalid = |why: &str| RedisBackendError::Config(format!("{why}: {url}"));
        let urls: Vec<String> = if let Some(nodes) = url.strip_prefix("redis+cluster://") {
            nodes
                .split(',')
                .filter(|node| !node.is_empty())
                .map(|node| format!("redis://{node}"))
                .collect()
        } else if url.starts_with("redis://") || url.starts_with("rediss://") {
            redis::parse_redis_url(url).ok_or_else(|| invalid("not a valid Redis URL"))?;
            vec![url.to_owned()]
        } else {
            return Err(invalid("not a redis://, rediss:// or redis+cluster:// URL"));
        };
        if urls.is_empty() || urls.iter().any(|u| u.ends_with("://")) {
            return Err(invalid("no host"));
        }
        Ok(RedisConfig {
            urls,
            cluster: url.starts_with("redis+cluster://"),
            ..RedisConfig::default()
        })
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            urls: vec!["redis://127.0.0.1:6379".into()],
            cluster: false,
            key_prefix: "pmcp-tasks".into(),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
        }
    }
}

/// Why the Redis backend could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisBackendError {
    /// The configuration is unusable.
    #[error("invalid redis configuration: {0}")]
    Config(String),
    /// The server or cluster did not answer.
    #[error("cannot connect to redis at {address}")]
    Connect {
        /// The address(es) tried.
        address: String,
        /// What the client reported.
        source: RedisError,
    },
}
