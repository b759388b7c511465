//! Backends named by URL, so that an operator's configuration (a CLI flag,
//! an environment variable) picks the storage without code.

use std::sync::Arc;

use super::shown::without_credentials;
use super::{InMemoryBackend, KvBackend};

/// A backend named by URL:
///
/// | URL | backend | feature |
/// |---|---|---|
/// | `memory` | [`InMemoryBackend`] | always |
/// | `redis://HOST:PORT[/DB]` | one Redis server | `redis` |
/// | `rediss://HOST:PORT[/DB][#insecure]` | one Redis server over TLS | `redis` |
/// | `redis+cluster://HOST:PORT,HOST:PORT,...` | Redis Cluster seed nodes | `redis` |
/// | `dynamodb://TABLE[?endpoint=URL&region=NAME]` | a DynamoDB table | `dynamodb` |
///
/// DynamoDB takes region, credentials and endpoint from the standard AWS
/// chain (`AWS_REGION`, `AWS_ENDPOINT_URL`, profiles, roles); `endpoint`
/// and `region` in the query override it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendUrl {
    /// In-process storage.
    Memory,
    /// Redis: one server (plain or TLS) or a cluster.
    #[cfg(feature = "redis")]
    Redis(super::redis::RedisConfig),
    /// A DynamoDB table.
    #[cfg(feature = "dynamodb")]
    DynamoDb {
        /// The table.
        table: String,
        /// Endpoint overriding the AWS chain's (an emulator, a VPC endpoint).
        endpoint: Option<String>,
        /// Region overriding the AWS chain's.
        region: Option<String>,
    },
}

/// Why a backend URL could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendUrlError {
    /// The URL names no backend this build knows.
    #[error("unknown backend URL {url:?}: expected memory, redis://, rediss://, redis+cluster:// or dynamodb://TABLE")]
    Unknown {
        /// The URL given.
        url: String,
    },
    /// The URL names a backend whose cargo feature is off in this build.
    #[error("backend URL {url:?} needs pmcp-tasks-host built with the `{feature}` feature")]
    NotCompiledIn {
        /// The URL given.
        url: String,
        /// The feature that would enable it.
        feature: &'static str,
    },
    /// The URL is malformed for its backend.
    #[error("invalid backend URL {url:?}: {reason}")]
    Invalid {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Redis could not be reached or configured.
    #[cfg(feature = "redis")]
    #[error(transparent)]
    Redis(#[from] super::redis::RedisBackendError),
}

impl BackendUrl {
    /// Parses a backend URL (see the table on [`BackendUrl`]).
    pub fn parse(url: &str) -> Result<Self, BackendUrlError> {
        let scheme = url.split_once("://").map_or(url, |(scheme, _)| scheme);
        match scheme {
            "memory" | "mem" => Ok(BackendUrl::Memory),
            "redis" | "rediss" | "redis+cluster" => Self::redis(url),
            "dynamodb" => Self::dynamodb(url),
            _ => Err(BackendUrlError::Unknown {
                url: without_credentials(url),
            }),
        }
    }

    #[cfg(feature = "redis")]
    fn redis(url: &str) -> Result<Self, BackendUrlError> {
        super::redis::RedisConfig::from_url(url)
            .map(BackendUrl::Redis)
            .map_err(BackendUrlError::from)
    }

    #[cfg(not(feature = "redis"))]
    fn redis(url: &str) -> Result<Self, BackendUrlError> {
        Err(BackendUrlError::NotCompiledIn {
            url: without_credentials(url),
            feature: "redis",
        })
    }

    #[cfg(feature = "dynamodb")]
    fn dynamodb(url: &str) -> Result<Self, BackendUrlError> {
        let invalid = |reason: &str| BackendUrlError::Invalid {
            url: without_credentials(url),
            reason: reason.into(),
        };
        let rest = url
            .strip_prefix("dynamodb://")
            .ok_or_else(|| invalid("expected dynamodb://TABLE"))?;
        let (table, query) = rest.split_once('?').unwrap_or((rest, ""));
        if table.is_empty() || table.contains('/') {
            return Err(invalid("expected one table name after dynamodb://"));
        }
        let (mut endpoint, mut region) = (None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("endpoint", value)) if !value.is_empty() => endpoint = Some(value.to_owned()),
                Some(("region", value)) if !value.is_empty() => region = Some(value.to_owned()),
                _ => {
                    return Err(invalid(&format!(
                        "unknown query parameter {pair:?} (endpoint=URL or region=NAME)"
                    )))
                }
            }
        }
        Ok(BackendUrl::DynamoDb {
            table: table.to_owned(),
            endpoint,
            region,
        })
    }

    #[cfg(not(feature = "dynamodb"))]
    fn dynamodb(url: &str) -> Result<Self, BackendUrlError> {
        Err(BackendUrlError::NotCompiledIn {
            url: without_credentials(url),
            feature: "dynamodb",
        })
    }

    /// Connects to the backend (Redis is reached before this returns; the
    /// DynamoDB client connects on its first request).
    pub async fn connect(self) -> Result<Arc<dyn KvBackend>, BackendUrlError> {
        match self {
            BackendUrl::Memory => Ok(Arc::new(InMemoryBackend::new())),
            #[cfg(feature = "redis")]
            BackendUrl::Redis(config) => {
                Ok(Arc::new(super::redis::RedisBackend::connect(config).await?))
            }
            #[cfg(feature = "dynamodb")]
            BackendUrl::DynamoDb {
                table,
                endpoint,
                region,
            } => Ok(Arc::new(
                super::dynamodb::DynamoDbBackend::from_env(
                    table,
                    endpoint.as_deref(),
                    region.as_deref(),
                )
                .await,
            )),
        }
    }
}

/// Parses `url` and connects to the backend it names.
pub async fn connect(url: &str) -> Result<Arc<dyn KvBackend>, BackendUrlError> {
    BackendUrl::parse(url)?.connect().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_url_is_shown_without_its_credentials() {
        let err = BackendUrl::parse("rediz://:pw@h:1").unwrap_err();
        assert!(!err.to_string().contains("pw"), "{err}");
    }

    #[test]
    fn memory_and_unknown_schemes() {
        assert_eq!(BackendUrl::parse("memory").unwrap(), BackendUrl::Memory);
        let err = BackendUrl::parse("postgres://db").unwrap_err();
        assert!(matches!(err, BackendUrlError::Unknown { .. }), "{err}");
    }

    #[cfg(not(feature = "redis"))]
    #[test]
    fn redis_without_the_feature_names_it() {
        let err = BackendUrl::parse("redis://127.0.0.1:6379").unwrap_err();
        assert!(err.to_string().contains("`redis` feature"), "{err}");
    }

    #[cfg(feature = "redis")]
    #[test]
    fn redis_urls() {
        let BackendUrl::Redis(tls) = BackendUrl::parse("rediss://127.0.0.1:6380/2").unwrap() else {
            panic!("not redis");
        };
        assert_eq!(tls.urls, ["rediss://127.0.0.1:6380/2"]);
        assert!(!tls.cluster);
        let BackendUrl::Redis(cluster) = BackendUrl::parse("redis+cluster://a:1,b:2").unwrap()
        else {
            panic!("not redis");
        };
        assert_eq!(cluster.urls, ["redis://a:1", "redis://b:2"]);
        assert!(cluster.cluster);
    }

    #[cfg(feature = "dynamodb")]
    #[test]
    fn dynamodb_urls() {
        assert_eq!(
            BackendUrl::parse("dynamodb://tasks?endpoint=http://127.0.0.1:8000&region=eu-west-1")
                .unwrap(),
            BackendUrl::DynamoDb {
                table: "tasks".into(),
                endpoint: Some("http://127.0.0.1:8000".into()),
                region: Some("eu-west-1".into()),
            }
        );
        for bad in ["dynamodb://", "dynamodb://a/b", "dynamodb://t?color=red"] {
            assert!(
                matches!(BackendUrl::parse(bad), Err(BackendUrlError::Invalid { .. })),
                "{bad}"
            );
        }
    }
}
