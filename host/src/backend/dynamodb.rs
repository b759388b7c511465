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

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CreateGlobalSecondaryIndexAction, Delete,
    GlobalSecondaryIndex, GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement, KeyType,
    Projection, ProjectionType, Put, ReturnValuesOnConditionCheckFailure, ScalarAttributeType,
    Select, TableStatus, TimeToLiveSpecification, TimeToLiveStatus, TransactWriteItem, Update,
};

use super::{Entry, KvBackend, KvError, Listing, PartitionName};

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

/// Why the table could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("dynamodb table {table}: {message}")]
pub struct DynamoDbSetupError {
    /// The table.
    pub table: String,
    /// What went wrong.
    pub message: String,
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
    pub fn with_endpoint_label(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
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

    /// Creates the table (on-demand billing) and enables TTL on `exp`, or
    /// does nothing where that is already so. Waits until the table is active.
    pub async fn create_table(&self) -> Result<(), DynamoDbSetupError> {
        let fail = |message: String| DynamoDbSetupError {
            table: self.table.clone(),
            message,
        };
        let key = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        let attribute = |name: &str, kind: ScalarAttributeType| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(kind)
                .build()
        };
        let sweep_index = GlobalSecondaryIndex::builder()
            .index_name(SWEEP_INDEX)
            .key_schema(key("sweep", KeyType::Hash).map_err(|e| fail(e.to_string()))?)
            .key_schema(key("exp_ms", KeyType::Range).map_err(|e| fail(e.to_string()))?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::KeysOnly)
                    .build(),
            )
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash).map_err(|e| fail(e.to_string()))?)
            .key_schema(key("sk", KeyType::Range).map_err(|e| fail(e.to_string()))?)
            .attribute_definitions(
                attribute("pk", ScalarAttributeType::S).map_err(|e| fail(e.to_string()))?,
            )
            .attribute_definitions(
                attribute("sk", ScalarAttributeType::S).map_err(|e| fail(e.to_string()))?,
            )
            .attribute_definitions(
                attribute("sweep", ScalarAttributeType::S).map_err(|e| fail(e.to_string()))?,
            )
            .attribute_definitions(
                attribute("exp_ms", ScalarAttributeType::N).map_err(|e| fail(e.to_string()))?,
            )
            .global_secondary_indexes(sweep_index.clone())
            .send()
            .await;
        if let Err(e) = created {
            let exists = e
                .as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception());
            if !exists {
                return Err(fail(format!(
                    "create-table failed: {}",
                    DisplayErrorContext(&e)
                )));
            }
        }
        self.wait_until_active().await.map_err(fail)?;
        if !self.has_sweep_index().await.map_err(fail)? {
            // A table made by an older version: add the index.
            self.client
                .update_table()
                .table_name(&self.table)
                .attribute_definitions(
                    attribute("sweep", ScalarAttributeType::S).map_err(|e| fail(e.to_string()))?,
                )
                .attribute_definitions(
                    attribute("exp_ms", ScalarAttributeType::N).map_err(|e| fail(e.to_string()))?,
                )
                .global_secondary_index_updates(
                    GlobalSecondaryIndexUpdate::builder()
                        .create(
                            CreateGlobalSecondaryIndexAction::builder()
                                .index_name(SWEEP_INDEX)
                                .set_key_schema(Some(sweep_index.key_schema))
                                .set_projection(sweep_index.projection)
                                .build()
                                .map_err(|e| fail(e.to_string()))?,
                        )
                        .build(),
                )
                .send()
                .await
                .map_err(|e| {
                    fail(format!(
                        "adding the sweep index failed: {}",
                        DisplayErrorContext(&e)
                    ))
                })?;
            self.wait_until_active().await.map_err(fail)?;
        }
        let ttl = self
            .client
            .describe_time_to_live()
            .table_name(&self.table)
            .send()
            .await;
        let status = ttl
            .map_err(|e| {
                fail(format!(
                    "describe-time-to-live failed: {}",
                    DisplayErrorContext(&e)
                ))
            })?
            .time_to_live_description
            .and_then(|d| d.time_to_live_status);
        if !matches!(
            status,
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ) {
            let spec = TimeToLiveSpecification::builder()
                .attribute_name("exp")
                .enabled(true)
                .build()
                .map_err(|e| fail(e.to_string()))?;
            self.client
                .update_time_to_live()
                .table_name(&self.table)
                .time_to_live_specification(spec)
                .send()
                .await
                .map_err(|e| {
                    fail(format!(
                        "update-time-to-live failed: {}",
                        DisplayErrorContext(&e)
                    ))
                })?;
        }
        Ok(())
    }

    async fn has_sweep_index(&self) -> Result<bool, String> {
        let described = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| format!("describe-table failed: {}", DisplayErrorContext(&e)))?;
        Ok(described.table.is_some_and(|t| {
            t.global_secondary_indexes()
                .iter()
                .any(|index| index.index_name() == Some(SWEEP_INDEX))
        }))
    }

    /// Waits until the table and its indexes are active.
    async fn wait_until_active(&self) -> Result<(), String> {
        for _ in 0..120 {
            let described = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await;
            let table = described
                .map_err(|e| format!("describe-table failed: {}", DisplayErrorContext(&e)))?
                .table;
            let active = table.is_some_and(|t| {
                t.table_status == Some(TableStatus::Active)
                    && t.global_secondary_indexes()
                        .iter()
                        .all(|index| index.index_status == Some(IndexStatus::Active))
            });
            if active {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err("the table did not become active within a minute".into())
    }

    fn unavailable<E>(&self, e: SdkError<E>) -> KvError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let message = format!(
            "dynamodb table {} at {}: {}",
            self.table,
            self.endpoint,
            DisplayErrorContext(&e)
        );
        KvError::unavailable(message, e)
    }

    fn item_key(&self, partition: &str, item: &str) -> Item {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(partition_key(partition))),
            (
                "sk".to_owned(),
                AttributeValue::S(format!("{ITEM_PREFIX}{item}")),
            ),
        ])
    }

    fn counter_key(&self, partition: &str) -> Item {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(partition_key(partition))),
            ("sk".to_owned(), AttributeValue::S(COUNTER_SK.to_owned())),
        ])
    }

    fn check_size(&self, head: &[u8], body: &[u8]) -> Result<(), KvError> {
        let size = head.len() + body.len();
        if size > self.max_value_bytes {
            return Err(KvError::TooLarge(format!(
                "{} bytes exceeds the DynamoDB item cap of {} bytes",
                size, self.max_value_bytes
            )));
        }
        Ok(())
    }

    fn full_item(
        &self,
        partition: &str,
        item: &str,
        head: Vec<u8>,
        body: Vec<u8>,
        version: u64,
        expires_at: Option<u64>,
    ) -> Item {
        let mut attributes = self.item_key(partition, item);
        attributes.insert("h".into(), AttributeValue::B(Blob::new(head)));
        attributes.insert("v".into(), AttributeValue::B(Blob::new(body)));
        attributes.insert("ver".into(), AttributeValue::N(version.to_string()));
        if let Some(at) = expires_at {
            attributes.insert("sweep".into(), AttributeValue::S(sweep_shard(partition)));
            attributes.insert("exp_ms".into(), AttributeValue::N(at.to_string()));
            attributes.insert(
                "exp".into(),
                AttributeValue::N(at.div_ceil(1_000).to_string()),
            );
        }
        attributes
    }

    /// The counter step of a create: +1 unless the partition is at `max_live`.
    fn count_up(&self, partition: &str, max_live: Option<u32>) -> Result<Update, KvError> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(self.counter_key(partition)))
            .update_expression("ADD n :one")
            .expression_attribute_values(":one", AttributeValue::N("1".into()));
        if let Some(max) = max_live {
            update = update
                .condition_expression("attribute_not_exists(n) OR n < :max")
                .expression_attribute_values(":max", AttributeValue::N(max.to_string()));
        }
        update
            .build()
            .map_err(|e| KvError::unavailable("building a dynamodb request", e))
    }

    fn count_down(&self, partition: &str) -> Result<Update, KvError> {
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(self.counter_key(partition)))
            .update_expression("ADD n :minus")
            .expression_attribute_values(":minus", AttributeValue::N("-1".into()))
            .build()
            .map_err(|e| KvError::unavailable("building a dynamodb request", e))
    }

    /// Deletes items, each with the counter step, only where the condition
    /// (on `:now`/`:ver`) still holds. Returns how many were deleted.
    async fn delete_counted(
        &self,
        partition: &str,
        item: &str,
        condition: &str,
        value: AttributeValue,
    ) -> Result<bool, KvError> {
        let placeholder = if condition.contains(":now") {
            ":now"
        } else {
            ":ver"
        };
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(self.item_key(partition, item)))
            .condition_expression(condition)
            .expression_attribute_values(placeholder, value)
            .build()
            .map_err(|e| KvError::unavailable("building a dynamodb request", e))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(delete).build())
            .transact_items(
                TransactWriteItem::builder()
                    .update(self.count_down(partition)?)
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if lost_race(&e) => Ok(false),
            Err(e) => Err(self.unavailable(e)),
        }
    }

    /// A strongly consistent Query over the items of `partition` (not its
    /// counter), filtered by `filter` on `:now`.
    fn items_query(&self, partition: &str, filter: &str, now: u64) -> QueryFluentBuilder {
        self.partition_query(partition)
            .filter_expression(filter)
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
    }

    /// A strongly consistent Query over every item of `partition` (not its counter).
    fn partition_query(&self, partition: &str) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk AND begins_with(sk, :items)")
            .expression_attribute_values(":pk", AttributeValue::S(partition_key(partition)))
            .expression_attribute_values(":items", AttributeValue::S(ITEM_PREFIX.to_owned()))
    }

    /// Deletes up to `limit` items of `partition` expired at `now`.
    /// DynamoDB applies a Query's `Limit` before its filter, so a page can
    /// hold no expired item while later ones do: the query follows
    /// `LastEvaluatedKey` until it found `limit` or the partition ends.
    async fn prune_partition(&self, partition: &str, now: u64, limit: u32) -> Result<u64, KvError> {
        let mut removed = 0;
        let mut start = None;
        loop {
            let page = self
                .items_query(partition, "exp_ms <= :now", now)
                .projection_expression("sk")
                .limit(QUERY_PAGE)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.unavailable(e))?;
            for item in page.items().iter().filter_map(item_id) {
                if removed >= u64::from(limit) {
                    return Ok(removed);
                }
                let now_value = AttributeValue::N(now.to_string());
                removed += u64::from(
                    self.delete_counted(partition, item, "exp_ms <= :now", now_value)
                        .await?,
                );
            }
            match page.last_evaluated_key {
                Some(key) if removed < u64::from(limit) => start = Some(key),
                _ => return Ok(removed),
            }
        }
    }

    /// Items of `partition` present in the table, expired or not (what the
    /// counter should say), counted page by page.
    async fn count_items(&self, partition: &str) -> Result<u64, KvError> {
        let mut count = 0;
        let mut start = None;
        loop {
            let page = self
                .partition_query(partition)
                .select(Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.unavailable(e))?;
            count += u64::try_from(page.count()).unwrap_or(0);
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(count),
            }
        }
    }

    /// Brings the partition's counter down to the items actually present.
    ///
    /// The counter only goes down in the store's own deletes; DynamoDB's TTL
    /// deletes expired items without telling it, so it can count items that
    /// are gone and lock the owner out. Called when a create is refused for
    /// the quota and pruning found nothing to delete. The counter is read,
    /// the items counted (strongly consistent), and the counter set only if
    /// it still holds what was read: any create or delete in between
    /// changes it and the correction is dropped, so it never undercounts
    /// and the cap still holds under concurrent creates. Returns whether it
    /// corrected the counter.
    async fn reconcile_counter(&self, partition: &str) -> Result<bool, KvError> {
        let counter = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(self.counter_key(partition)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.unavailable(e))?;
        let Some(observed) = counter
            .item()
            .map(|c| number(c, "n"))
            .transpose()?
            .flatten()
        else {
            return Ok(false);
        };
        let present = self.count_items(partition).await?;
        if present >= observed {
            return Ok(false);
        }
        let corrected = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.counter_key(partition)))
            .update_expression("SET n = :present")
            .condition_expression("n = :observed")
            .expression_attribute_values(":present", AttributeValue::N(present.to_string()))
            .expression_attribute_values(":observed", AttributeValue::N(observed.to_string()))
            .send()
            .await;
        match corrected {
            Ok(_) => {
                tracing::info!(
                    table = %self.table,
                    from = observed,
                    to = present,
                    "corrected a partition's task counter (items deleted by DynamoDB's TTL)"
                );
                Ok(true)
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(self.unavailable(e)),
        }
    }

    async fn try_create(
        &self,
        partition: &str,
        attributes: &Item,
        max_live: Option<u32>,
        attempt: u8,
    ) -> Result<(), CreateRefusal> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(attributes.clone()))
            .condition_expression("attribute_not_exists(sk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| {
                CreateRefusal::Failed(KvError::unavailable("building a dynamodb request", e))
            })?;
        // The SDK retries an attempt that timed out; if the first attempt
        // did commit, the same token makes DynamoDB answer the retry with
        // success instead of a failed condition (which would have the
        // component create the task a second time under another id).
        let result = self
            .client
            .transact_write_items()
            .client_request_token(create_token(attributes, attempt))
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(
                TransactWriteItem::builder()
                    .update(
                        self.count_up(partition, max_live)
                            .map_err(CreateRefusal::Failed)?,
                    )
                    .build(),
            )
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let cancelled = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                cancelled.clone()
            }
            _ => return Err(CreateRefusal::Failed(self.unavailable(err))),
        };
        let reasons = cancelled.cancellation_reasons();
        let failed =
            |i: usize| reasons.get(i).and_then(|r| r.code()) == Some("ConditionalCheckFailed");
        if failed(0) {
            let old_expiry = reasons[0]
                .item()
                .and_then(|old| expiry_of(old).ok().flatten());
            return Err(CreateRefusal::Exists {
                expires_at: old_expiry,
            });
        }
        if failed(1) {
            return Err(CreateRefusal::Quota);
        }
        if lost_race(&err) {
            // Cancelled by a concurrent transaction on the counter.
            return Err(CreateRefusal::Failed(KvError::Conflict));
        }
        Err(CreateRefusal::Failed(self.unavailable(err)))
    }
}

/// The `pk` of a partition: the partition itself when it is plain (the
/// component's SHA-256 hex), else `x:` and its hex. The two forms cannot
/// meet (only the second has a `:`), and the empty partition, which
/// DynamoDB refuses as a key, gets a non-empty one.
fn partition_key(partition: &str) -> String {
    match PartitionName::of(partition) {
        PartitionName::Plain(plain) => plain.to_owned(),
        PartitionName::Hex(hex) => format!("x:{hex}"),
    }
}

/// The idempotency token of one create attempt: the same for the SDK's
/// retries of it (a digest of its key, value and attempt number), distinct
/// for any other write, including this create's deliberate next attempt
/// after a prune (a token is never reused for a request that may differ in
/// outcome).
fn create_token(attributes: &Item, attempt: u8) -> String {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    for name in ["pk", "sk"] {
        if let Some(AttributeValue::S(text)) = attributes.get(name) {
            digest.update((text.len() as u64).to_le_bytes());
            digest.update(text.as_bytes());
        }
    }
    for name in ["h", "v"] {
        if let Some(AttributeValue::B(value)) = attributes.get(name) {
            digest.update((value.as_ref().len() as u64).to_le_bytes());
            digest.update(value.as_ref());
        }
    }
    digest.update([attempt]);
    digest.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The sweep-index hash key of a partition's items (any spread will do:
/// a sweep queries every shard).
fn sweep_shard(partition: &str) -> String {
    let sum = partition
        .bytes()
        .fold(0u32, |acc, b| acc.wrapping_add(u32::from(b)));
    format!("s#{}", sum % SWEEP_SHARDS)
}

/// The partition a `pk` stands for (the inverse of [`partition_key`]).
fn partition_of(pk: &str) -> Option<String> {
    match pk.strip_prefix("x:") {
        Some(hex) => PartitionName::unhex(hex),
        None => Some(pk.to_owned()),
    }
}

/// Why one create attempt did not apply.
enum CreateRefusal {
    Exists { expires_at: Option<u64> },
    Quota,
    Failed(KvError),
}

/// Whether a transaction was cancelled by a condition or by a concurrent
/// transaction on the same items: a lost race, never a backend failure.
fn lost_race(e: &SdkError<TransactWriteItemsError>) -> bool {
    match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
            c.cancellation_reasons().iter().any(|r| {
                matches!(
                    r.code(),
                    Some("ConditionalCheckFailed" | "TransactionConflict")
                )
            })
        }
        _ => false,
    }
}

/// The item id of a stored item (`None` for the counter).
fn item_id(found: &Item) -> Option<&str> {
    found
        .get("sk")
        .and_then(|v| v.as_s().ok())
        .and_then(|sk| sk.strip_prefix(ITEM_PREFIX))
}

fn number(item: &Item, name: &str) -> Result<Option<u64>, KvError> {
    match item.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_n()
            .ok()
            .and_then(|n| n.parse().ok())
            .map(Some)
            .ok_or_else(|| KvError::Corrupt(format!("dynamodb returned a malformed {name}"))),
    }
}

fn expiry_of(item: &Item) -> Result<Option<u64>, KvError> {
    number(item, "exp_ms")
}

/// The head and version every stored item carries, borrowed from it.
fn head_and_version(item: &Item) -> Result<(&[u8], u64), KvError> {
    let head = item.get("h").and_then(|v| v.as_b().ok());
    match (head, number(item, "ver")?) {
        (Some(head), Some(version)) => Ok((head.as_ref(), version)),
        _ => Err(KvError::Corrupt(
            "dynamodb returned an item without value or version".into(),
        )),
    }
}

/// The entry of a stored item; a listed item (projected without `v`) has
/// an empty body.
fn entry_of(item: &Item) -> Result<Entry, KvError> {
    let (head, version) = head_and_version(item)?;
    let body = item.get("v").and_then(|v| v.as_b().ok());
    Ok(Entry {
        head: head.to_vec(),
        body: body.map(|b| b.as_ref().to_vec()).unwrap_or_default(),
        version,
        expires_at: expiry_of(item)?,
    })
}

#[async_trait]
impl KvBackend for DynamoDbBackend {
    async fn get(&self, partition: &str, item: &str) -> Result<Option<Entry>, KvError> {
        let found = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(self.item_key(partition, item)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.unavailable(e))?;
        found.item().map(entry_of).transpose()
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
        self.check_size(&head, &body)?;
        let attributes = self.full_item(partition, item, head, body, 1, expires_at);
        let (mut pruned, mut reconciled) = (false, false);
        // At most: the first try, one after deleting an expired namesake or
        // pruning, one after reconciling the counter.
        for attempt in 0u8..4 {
            match self
                .try_create(partition, &attributes, max_live, attempt)
                .await
            {
                Ok(()) => return Ok(1),
                Err(CreateRefusal::Failed(e)) => return Err(e),
                // An expired item with the same id: delete it, then retry.
                Err(CreateRefusal::Exists {
                    expires_at: Some(at),
                }) if at <= now && !pruned => {
                    self.delete_counted(
                        partition,
                        item,
                        "exp_ms <= :now",
                        AttributeValue::N(now.to_string()),
                    )
                    .await?;
                    pruned = true;
                }
                Err(CreateRefusal::Exists { .. }) => return Err(KvError::Conflict),
                // The counter still counts expired items until they are deleted.
                Err(CreateRefusal::Quota) if !pruned => {
                    pruned = true;
                    if self.prune_partition(partition, now, PRUNE_BATCH).await? == 0 {
                        reconciled = true;
                        if !self.reconcile_counter(partition).await? {
                            return Err(KvError::QuotaExceeded);
                        }
                    }
                }
                // Pruning freed room but a concurrent create took it, or
                // the counter counts items DynamoDB's TTL deleted.
                Err(CreateRefusal::Quota) if !reconciled => {
                    reconciled = true;
                    if !self.reconcile_counter(partition).await? {
                        return Err(KvError::QuotaExceeded);
                    }
                }
                Err(CreateRefusal::Quota) => return Err(KvError::QuotaExceeded),
            }
        }
        Err(KvError::Conflict)
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
        self.check_size(&head, &body)?;
        let version = expected_version + 1;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(
                self.full_item(partition, item, head, body, version, expires_at),
            ))
            .condition_expression(
                "ver = :expected AND (attribute_not_exists(exp_ms) OR exp_ms > :now)",
            )
            .expression_attribute_values(
                ":expected",
                AttributeValue::N(expected_version.to_string()),
            )
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(version),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Err(KvError::Conflict)
            }
            Err(e) => Err(self.unavailable(e)),
        }
    }

    async fn remove(
        &self,
        partition: &str,
        item: &str,
        expected_version: u64,
    ) -> Result<(), KvError> {
        let version = AttributeValue::N(expected_version.to_string());
        match self
            .delete_counted(partition, item, "ver = :ver", version)
            .await?
        {
            true => Ok(()),
            false => Err(KvError::Conflict),
        }
    }

    async fn list(
        &self,
        partition: &str,
        after: Option<&str>,
        limit: u32,
        now: u64,
    ) -> Result<Listing, KvError> {
        let mut out = Listing::with_capacity(limit.min(QUERY_PAGE as u32) as usize);
        let mut start = after.map(|a| self.item_key(partition, a));
        // The filter applies after `Limit`, so expired items can shorten a
        // page: query on until the page is full or the partition ends.
        while out.len() < limit as usize {
            let page = self
                .items_query(
                    partition,
                    "attribute_not_exists(exp_ms) OR exp_ms > :now",
                    now,
                )
                // Heads only: the bodies (results, arguments) stay in the table.
                .projection_expression("sk, h, ver, exp_ms")
                .set_exclusive_start_key(start.take())
                .limit(i32::try_from(limit as usize - out.len()).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(|e| self.unavailable(e))?;
            for found in page.items() {
                if let Some(item) = item_id(found) {
                    let (head, version) = head_and_version(found)?;
                    out.push(item, head, version, expiry_of(found)?)?;
                }
            }
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        Ok(out)
    }

    /// Queries the sweep index's shards for items due at `now`: the reads
    /// follow what expired, not the table's size. The index is eventually
    /// consistent: an item already deleted fails its delete's condition
    /// (counted as nothing), one just written is found by a later sweep.
    async fn sweep(&self, now: u64, limit: u32) -> Result<u64, KvError> {
        let mut removed = 0u64;
        for shard in 0..SWEEP_SHARDS {
            let mut start = None;
            while removed < u64::from(limit) {
                let left = u64::from(limit) - removed;
                let page = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(SWEEP_INDEX)
                    .key_condition_expression("sweep = :shard AND exp_ms <= :now")
                    .expression_attribute_values(":shard", AttributeValue::S(format!("s#{shard}")))
                    .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                    .limit(
                        i32::try_from(left.min(u64::from(QUERY_PAGE as u32))).unwrap_or(QUERY_PAGE),
                    )
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| self.unavailable(e))?;
                for found in page.items() {
                    let partition = found
                        .get("pk")
                        .and_then(|v| v.as_s().ok())
                        .and_then(|pk| partition_of(pk));
                    if let (Some(partition), Some(item)) = (partition, item_id(found)) {
                        let now_value = AttributeValue::N(now.to_string());
                        removed += u64::from(
                            self.delete_counted(&partition, item, "exp_ms <= :now", now_value)
                                .await?,
                        );
                    }
                }
                match page.last_evaluated_key {
                    Some(key) => start = Some(key),
                    None => break,
                }
            }
        }
        Ok(removed)
    }
}
