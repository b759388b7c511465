//! The `kv-backend` contract on DynamoDB: conditional creates and
//! replaces in transactions with the counter, removals, listings,
//! sweeps.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};

use super::codec::{entry_of, expiry_of, head_and_version, item_id, partition_key, partition_of};
use super::{
    DynamoDbBackend, Item, ITEM_PREFIX, PRUNE_BATCH, QUERY_PAGE, SWEEP_INDEX, SWEEP_SHARDS,
};
use crate::backend::{Entry, KvBackend, KvError, Listing};

impl DynamoDbBackend {
    /// A strongly consistent Query over the items of `partition` (not its
    /// counter), filtered by `filter` on `:now`.
    pub(super) fn items_query(
        &self,
        partition: &str,
        filter: &str,
        now: u64,
    ) -> QueryFluentBuilder {
        self.partition_query(partition)
            .filter_expression(filter)
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
    }

    /// A strongly consistent Query over every item of `partition` (not its counter).
    pub(super) fn partition_query(&self, partition: &str) -> QueryFluentBuilder {
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
    pub(super) async fn prune_partition(
        &self,
        partition: &str,
        now: u64,
        limit: u32,
    ) -> Result<u64, KvError> {
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

    pub(super) async fn try_create(
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

/// The idempotency token of one create attempt: the same for the SDK's
/// retries of it (a digest of its key, value and attempt number), distinct
/// for any other write, including this create's deliberate next attempt
/// after a prune (a token is never reused for a request that may differ in
/// outcome).
pub(super) fn create_token(attributes: &Item, attempt: u8) -> String {
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

/// Why one create attempt did not apply.
pub(super) enum CreateRefusal {
    Exists { expires_at: Option<u64> },
    Quota,
    Failed(KvError),
}

/// Whether a transaction was cancelled by a condition or by a concurrent
/// transaction on the same items: a lost race, never a backend failure.
pub(super) fn lost_race(e: &SdkError<TransactWriteItemsError>) -> bool {
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

#[async_trait]
impl KvBackend for DynamoDbBackend {
    fn kind(&self) -> &'static str {
        "dynamodb"
    }

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
