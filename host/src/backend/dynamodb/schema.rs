//! The table itself: creating it (on-demand billing, the sweep index,
//! TTL on `exp`), idempotently, and waiting until it is active.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};

use super::error::DynamoDbSetupError;
use super::{DynamoDbBackend, SWEEP_INDEX};

impl DynamoDbBackend {
    /// Creates the table (on-demand billing) and enables TTL on `exp`, or
    /// does nothing where that is already so. Waits until the table is active.
    pub async fn create_table(&self) -> Result<(), DynamoDbSetupError> {
        let definition = "building the table definition";
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
            .key_schema(key("sweep", KeyType::Hash).map_err(self.failed(definition))?)
            .key_schema(key("exp_ms", KeyType::Range).map_err(self.failed(definition))?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::KeysOnly)
                    .build(),
            )
            .build()
            .map_err(self.failed(definition))?;
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash).map_err(self.failed(definition))?)
            .key_schema(key("sk", KeyType::Range).map_err(self.failed(definition))?)
            .attribute_definitions(
                attribute("pk", ScalarAttributeType::S).map_err(self.failed(definition))?,
            )
            .attribute_definitions(
                attribute("sk", ScalarAttributeType::S).map_err(self.failed(definition))?,
            )
            .attribute_definitions(
                attribute("sweep", ScalarAttributeType::S).map_err(self.failed(definition))?,
            )
            .attribute_definitions(
                attribute("exp_ms", ScalarAttributeType::N).map_err(self.failed(definition))?,
            )
            .global_secondary_indexes(sweep_index.clone())
            .send()
            .await;
        if let Err(e) = created {
            let exists = e
                .as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception());
            if !exists {
                return Err(self.failed("create-table")(e));
            }
        }
        self.wait_until_active().await?;
        if !self.has_sweep_index().await? {
            // A table made by an older version: add the index.
            self.client
                .update_table()
                .table_name(&self.table)
                .attribute_definitions(
                    attribute("sweep", ScalarAttributeType::S).map_err(self.failed(definition))?,
                )
                .attribute_definitions(
                    attribute("exp_ms", ScalarAttributeType::N).map_err(self.failed(definition))?,
                )
                .global_secondary_index_updates(
                    GlobalSecondaryIndexUpdate::builder()
                        .create(
                            CreateGlobalSecondaryIndexAction::builder()
                                .index_name(SWEEP_INDEX)
                                .set_key_schema(Some(sweep_index.key_schema))
                                .set_projection(sweep_index.projection)
                                .build()
                                .map_err(self.failed(definition))?,
                        )
                        .build(),
                )
                .send()
                .await
                .map_err(self.failed("update-table (adding the sweep index)"))?;
            self.wait_until_active().await?;
        }
        let ttl = self
            .client
            .describe_time_to_live()
            .table_name(&self.table)
            .send()
            .await;
        let status = ttl
            .map_err(self.failed("describe-time-to-live"))?
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
                .map_err(self.failed(definition))?;
            self.client
                .update_time_to_live()
                .table_name(&self.table)
                .time_to_live_specification(spec)
                .send()
                .await
                .map_err(self.failed("update-time-to-live"))?;
        }
        Ok(())
    }

    pub(super) async fn has_sweep_index(&self) -> Result<bool, DynamoDbSetupError> {
        let described = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(self.failed("describe-table"))?;
        Ok(described.table.is_some_and(|t| {
            t.global_secondary_indexes()
                .iter()
                .any(|index| index.index_name() == Some(SWEEP_INDEX))
        }))
    }

    /// Waits until the table and its indexes are active.
    pub(super) async fn wait_until_active(&self) -> Result<(), DynamoDbSetupError> {
        for _ in 0..120 {
            let described = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await;
            let table = described.map_err(self.failed("describe-table"))?.table;
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
        Err(DynamoDbSetupError::NotActive {
            table: self.table.clone(),
        })
    }

    /// Makes a failed request's error a setup error naming `step`.
    fn failed<E>(&self, step: &'static str) -> impl FnOnce(E) -> DynamoDbSetupError + '_
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        move |e| DynamoDbSetupError::Request {
            table: self.table.clone(),
            step,
            source: Box::new(e),
        }
    }
}
