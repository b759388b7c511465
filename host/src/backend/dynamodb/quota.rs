//! The live-item counter of each partition (`q#count`), which makes
//! the quota atomic with the writes, and its reconciliation.

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Select, TransactWriteItem, Update};

use super::codec::number;
use super::kv::lost_race;
use super::DynamoDbBackend;
use crate::backend::KvError;

impl DynamoDbBackend {
    /// The counter step of a create: +1 unless the partition is at `max_live`.
    pub(super) fn count_up(
        &self,
        partition: &str,
        max_live: Option<u32>,
    ) -> Result<Update, KvError> {
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

    pub(super) fn count_down(&self, partition: &str) -> Result<Update, KvError> {
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
    pub(super) async fn delete_counted(
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

    /// Items of `partition` present in the table, expired or not (what the
    /// counter should say), counted page by page.
    pub(super) async fn count_items(&self, partition: &str) -> Result<u64, KvError> {
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
    pub(super) async fn reconcile_counter(&self, partition: &str) -> Result<bool, KvError> {
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
}
