//! What can go wrong setting up the table.

/// Why the table could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DynamoDbSetupError {
    /// A request about the table failed; the SDK's error is the source.
    #[error("dynamodb table {table}: {step} failed")]
    Request {
        /// The table.
        table: String,
        /// What was asked (`create-table`, `describe-table`, ...).
        step: &'static str,
        /// The SDK's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The table or an index did not become active within a minute.
    #[error("dynamodb table {table}: not active within a minute")]
    NotActive {
        /// The table.
        table: String,
    },
}
