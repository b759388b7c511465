//! The DynamoDB backend (feature `dynamodb`): one table, conditional
//! writes, native TTL, `Query` pagination.
//!
//! Table schema (see [`DynamoDbBackend::create_table`]):
//!
//! | attribute | type | holds |
//! |---|---|---|
//! | `pk` (partition key) | S | the partition: as given when it is lowercase alphanumeric (the component's are hex), else `x:` and its bytes in hex (DynamoDB refuses an empty key) |
//! | `sk` (sort key) | S | `i#<item>` for items; `q#count` for the partition's live-item counter |
//! | `h` | B | the value's head (what listings read: they project only `sk`, `h`, `ver`, `exp_ms`) |
//! | `v` | B | the value's body |
//! | `ver` | N | the version |
//! | `exp_ms` | N | expiry in ms (what every read and condition checks) |
//! | `exp` | N | expiry in epoch seconds: the table's TTL attribute (deletes late) |
//! | `n` | N | on the counter item: items created and not yet removed |
//! | `sweep` | S | on items that expire: `s#<shard>` (of 16), the hash key of the sparse index `by-expiry` (sort key `exp_ms`, keys only), which a sweep queries for what is due |
//!
//! Reads are strongly consistent. DynamoDB's TTL deletes hours or days
//! late, so expired items are filtered on every read and conditions treat
//! them as absent.

mod codec;
mod error;
mod kv;
mod quota;
mod schema;

pub use error::DynamoDbSetupError;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;

use super::KvError;

/// Largest item DynamoDB stores is 400 KB; keep room for keys and attributes.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 350 * 1024;
const ITEM_PREFIX: &str = "i#";
const COUNTER_SK: &str = "q#count";
/// Expired items deleted per partition when a create finds the quota full.
const PRUNE_BATCH: u32 = 100;
/// The sparse global secondary index of expiring items (see the module docs).
const SWEEP_INDEX: &str = "by-expiry";
/// Hash keys of the sweep index: spreads its writes over several index
/// partitions; a sweep queries each.
const SWEEP_SHARDS: u32 = 16;
/// Items a Query evaluates per request (before its filter) when pruning.
const QUERY_PAGE: i32 = 100;

type Item = HashMap<String, AttributeValue>;

/// The AWS SDK client a backend is built from ([`DynamoDbBackend::new`]).
pub use aws_sdk_dynamodb::Client;
/// A client with region, credentials and endpoint from the standard AWS
/// chain (`AWS_REGION`, `AWS_ENDPOINT_URL`, profiles, instance roles...),
/// `endpoint_url` and `region` overriding the chain when given, and
/// [`default_timeouts`].
pub async fn client_from_env(endpoint_url: Option<&str>, region: Option<&str>) -> Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(default_timeouts());
    if let Some(endpoint) = endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_owned()));
    }
    Client::new(&loader.load().await)
}

/// Bounded timeouts, so an unreachable endpoint is an error within seconds
/// (the SDK's standard retry policy still retries throttling and transient errors).
pub fn default_timeouts() -> aws_sdk_dynamodb::config::timeout::TimeoutConfig {
    aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_secs(15))
        .build()
}

/// Tasks in one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoDbBackend {
    client: Client,
    table: String,
    /// Where requests go, for error messages: the endpoint URL, or the region.
    /// See [`DynamoDbBackend::with_endpoint_label`].
    endpoint: String,
    max_value_bytes: usize,
}

impl DynamoDbBackend {
    /// A backend over `table` with `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        let endpoint = match client.config().region() {
            Some(region) => format!("region {region}"),
            None => "the default region".to_owned(),
        };
        DynamoDbBackend {
            client,
            table: table.into(),
            endpoint,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
        }
    }

    /// A backend with region, credentials and endpoint from the standard AWS
    /// chain; see [`client_from_env`].
    pub async fn from_env(
        table: impl Into<String>,
        endpoint_url: Option<&str>,
        region: Option<&str>,
    ) -> Self {
        let backend = Self::new(client_from_env(endpoint_url, region).await, table);
        let explicit = endpoint_url.map(str::to_owned).or_else(|| {
            ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"]
                .iter()
                .find_map(|var| std::env::var(var).ok())
        });
        match explicit {
            Some(url) => backend.with_endpoint_label(url),
            None => backend,
        }
    }

    /// Names the endpoint in error messages (the SDK's configuration does
    /// not tell it back): for a client built with a custom endpoint URL.
    /// Credentials in the URL are not shown.
    pub fn with_endpoint_label(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = super::shown::without_credentials(&endpoint.into());
        self
    }

    /// The table this backend uses.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Refuses values larger than `bytes` before any request (default 350 KB).
    pub fn with_max_value_bytes(mut self, bytes: usize) -> Self {
        self.max_value_bytes = bytes;
        self
    }

    fn unavailable<E>(&self, e: SdkError<E>) -> KvError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        // The SDK's error, with its causes, is the source: the message
        // says what failed, not why all over again.
        let message = format!("dynamodb table {} at {}: {e}", self.table, self.endpoint);
        KvError::unavailable(message, e)
    }
}
