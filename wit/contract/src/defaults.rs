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
/// Largest serialized result, tool arguments, input request params or
/// answer: 16 MiB (an image or a document a tool returns).
pub const MAX_RESULT_BYTES: u32 = 16 * 1024 * 1024;
/// Largest backend item: 350 KiB, under DynamoDB's 400 KB item cap. A task
/// whose record is larger keeps its body in parts of at most this size.
pub const MAX_RECORD_BYTES: u32 = 350 * 1024;
/// Largest stored task, head and body together: 20 MiB (a result of the
/// largest size beside its arguments and the rest).
pub const MAX_TASK_BYTES: u32 = 20 * 1024 * 1024;
/// Deepest JSON nesting accepted in variables and results.
pub const MAX_JSON_DEPTH: u32 = 32;
/// Longest status message or request method, and longest string or key in
/// the variables: 64 KiB (a string in a result, arguments or an answer is
/// bounded by that payload's own limit).
pub const MAX_STRING_BYTES: u32 = 64 * 1024;
/// Longest owner id: 16 KiB.
pub const MAX_OWNER_BYTES: u32 = 16 * 1024;
/// Whether the empty owner id is accepted.
pub const ALLOW_ANONYMOUS: bool = false;
/// Attempts for one read-validate-write under contention.
pub const MAX_CAS_ATTEMPTS: u32 = 16;
