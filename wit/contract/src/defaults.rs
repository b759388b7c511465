//! The store configuration's defaults (the WIT `store-config` record's),
//! defined once: the host's `StoreConfig::default` is built from them,
//! and the guest's native tests run with them.

/// ttl applied when a create asks for none: 1 h.
pub const DEFAULT_TTL_MS: u64 = 3_600_000;
/// Upper bound for any ttl: 24 h.
pub const MAX_TTL_MS: u64 = 86_400_000;
/// Poll interval hint returned with every task: 1 s.
pub const POLL_INTERVAL_MS: u64 = 1_000;
/// Live tasks per owner.
pub const MAX_TASKS_PER_OWNER: u32 = 1_000;
/// Page size of a list that names none.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Largest page a list returns.
pub const MAX_PAGE_SIZE: u32 = 100;
/// Largest serialized variables object: 64 KiB.
pub const MAX_VARIABLES_BYTES: u32 = 64 * 1024;
/// Largest serialized result: 256 KiB.
pub const MAX_RESULT_BYTES: u32 = 256 * 1024;
/// Largest stored record: 350 KiB, under DynamoDB's 400 KB item cap.
pub const MAX_RECORD_BYTES: u32 = 350 * 1024;
/// Deepest JSON nesting accepted in variables and results.
pub const MAX_JSON_DEPTH: u32 = 32;
/// Longest JSON string or key, status message or request method: 64 KiB.
pub const MAX_STRING_BYTES: u32 = 64 * 1024;
/// Longest owner id: 16 KiB.
pub const MAX_OWNER_BYTES: u32 = 16 * 1024;
/// Whether the empty owner id is accepted.
pub const ALLOW_ANONYMOUS: bool = false;
/// Attempts for one read-validate-write under contention.
pub const MAX_CAS_ATTEMPTS: u32 = 16;
