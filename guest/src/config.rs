//! Store configuration and the policy functions that read it.

use crate::error::StoreError;

/// Deepest nesting serde_json parses before refusing (its recursion limit).
pub(crate) const PARSER_DEPTH_LIMIT: u32 = 127;

/// Largest page a configuration may allow: a page and its look-ahead item
/// are read in one backend call and held in guest memory at once.
pub(crate) const MAX_PAGE_SIZE: u32 = 1_000;

/// Longest ttl any task may have, in ms (about 1 000 years). Expiries stay
/// far below 2^53 ms, so every backend represents them exactly (Redis
/// scores and Lua numbers are doubles; `PEXPIREAT` takes an i64).
pub(crate) const MAX_TTL_MS: u64 = 1_000 * 365 * 86_400_000;

/// Longest name kept in a task's head (tool name, input key, lease
/// holder), in bytes: heads are what listings read, so they stay small.
pub(crate) const MAX_NAME_BYTES: usize = 256;

/// The smallest backend item a store accepts: room for a task's head and
/// a body part's worth of bytes beside it.
pub(crate) const MIN_RECORD_BYTES: u32 = 4 * 1024;

/// What the host configures; see the WIT `store-config` record. It has no
/// defaults here: the host chooses them and passes them in at `open`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::exhaustive_structs,
    reason = "the WIT record `store-config`: a field is added with the contract's version"
)]
pub struct StoreConfig {
    /// ttl (ms) applied when a create asks for none; `None` = unlimited.
    pub default_ttl: Option<u64>,
    /// Upper bound for any ttl (ms); `None` = no bound.
    pub max_ttl: Option<u64>,
    /// Poll interval hint (ms) returned with every task.
    pub poll_interval: Option<u64>,
    /// Maximum live tasks per owner; `None` = unlimited.
    pub max_tasks_per_owner: Option<u32>,
    /// Page size when the caller names none.
    pub default_page_size: u32,
    /// Largest page a caller gets.
    pub max_page_size: u32,
    /// Largest serialized variables object (bytes).
    pub max_variables_bytes: u32,
    /// Largest serialized result (bytes).
    pub max_result_bytes: u32,
    /// Largest backend item (bytes): a larger record keeps its body in parts.
    pub max_record_bytes: u32,
    /// Largest stored task, head and body together (bytes).
    pub max_task_bytes: u32,
    /// Deepest JSON nesting accepted.
    pub max_json_depth: u32,
    /// Longest JSON string or key (bytes).
    pub max_string_bytes: u32,
    /// Longest owner id (bytes).
    pub max_owner_bytes: u32,
    /// Whether the empty owner id is accepted.
    pub allow_anonymous: bool,
    /// Secret mixed into cursor tags.
    pub cursor_secret: Vec<u8>,
    /// Attempts for one read-validate-write under contention.
    pub max_cas_attempts: u32,
}

impl StoreConfig {
    /// The contract's defaults, for the native unit tests (the component
    /// always receives its configuration from the host, whose
    /// `StoreConfig::default` is built from the same constants).
    #[cfg(test)]
    pub(crate) fn for_tests() -> Self {
        use pmcp_tasks_contract::defaults as d;
        StoreConfig {
            default_ttl: Some(d::DEFAULT_TTL_MS),
            max_ttl: Some(d::MAX_TTL_MS),
            poll_interval: Some(d::POLL_INTERVAL_MS),
            max_tasks_per_owner: Some(d::MAX_TASKS_PER_OWNER),
            default_page_size: d::DEFAULT_PAGE_SIZE,
            max_page_size: d::MAX_PAGE_SIZE,
            max_variables_bytes: d::MAX_VARIABLES_BYTES,
            max_result_bytes: d::MAX_RESULT_BYTES,
            max_record_bytes: d::MAX_RECORD_BYTES,
            max_task_bytes: d::MAX_TASK_BYTES,
            max_json_depth: d::MAX_JSON_DEPTH,
            max_string_bytes: d::MAX_STRING_BYTES,
            max_owner_bytes: d::MAX_OWNER_BYTES,
            allow_anonymous: d::ALLOW_ANONYMOUS,
            cursor_secret: Vec::new(),
            max_cas_attempts: d::MAX_CAS_ATTEMPTS,
        }
    }
}

impl StoreConfig {
    /// Refuses settings that cannot work together.
    pub fn validate(&self) -> Result<(), StoreError> {
        let invalid = |why: &str| {
            Err(StoreError::InvalidParams(format!(
                "invalid store configuration: {why}"
            )))
        };
        if self.max_page_size == 0 || self.max_page_size > MAX_PAGE_SIZE {
            return invalid(&format!(
                "max-page-size is {}; it must be between 1 and {MAX_PAGE_SIZE}",
                self.max_page_size
            ));
        }
        if self.default_page_size == 0 || self.default_page_size > self.max_page_size {
            return invalid("default-page-size must be between 1 and max-page-size");
        }
        if self.max_json_depth == 0 || self.max_json_depth > PARSER_DEPTH_LIMIT {
            return invalid(&format!(
                "max-json-depth must be between 1 and {PARSER_DEPTH_LIMIT}"
            ));
        }
        if self.max_record_bytes < MIN_RECORD_BYTES {
            return invalid(&format!(
                "max-record-bytes is {}; it must be at least {MIN_RECORD_BYTES}",
                self.max_record_bytes
            ));
        }
        if self.max_task_bytes < self.max_record_bytes {
            return invalid("max-task-bytes must be at least max-record-bytes");
        }
        if self.max_cas_attempts == 0 {
            return invalid("max-cas-attempts must be at least 1");
        }
        if matches!(self.max_ttl, Some(0)) || matches!(self.default_ttl, Some(0)) {
            return invalid("ttl settings must be positive");
        }
        let too_long = |ttl: Option<u64>| ttl.is_some_and(|ttl| ttl > MAX_TTL_MS);
        if too_long(self.max_ttl) || too_long(self.default_ttl) {
            return invalid(&format!("ttl settings must be at most {MAX_TTL_MS} ms"));
        }
        Ok(())
    }

    /// The ttl a create gets: the requested one or the default, clamped to
    /// the maximum. `None` means unlimited.
    pub fn effective_ttl(&self, requested: Option<u64>) -> Result<Option<u64>, StoreError> {
        if requested == Some(0) {
            return Err(StoreError::InvalidParams(
                "ttl must be a positive number of milliseconds".into(),
            ));
        }
        let wanted = requested.or(self.default_ttl);
        let effective = match (wanted, self.max_ttl) {
            (Some(ttl), Some(max)) => Some(ttl.min(max)),
            (None, max) => max,
            (ttl, None) => ttl,
        };
        match effective {
            Some(ttl) if ttl > MAX_TTL_MS => Err(StoreError::InvalidParams(format!(
                "ttl of {ttl} ms exceeds the longest the store keeps a task, {MAX_TTL_MS} ms; \
                 ask for no ttl for a task that never expires"
            ))),
            ttl => Ok(ttl),
        }
    }

    /// The page size a list gets: the default, or the request clamped to the cap.
    pub fn page_size(&self, requested: Option<u32>) -> Result<u32, StoreError> {
        match requested {
            None => Ok(self.default_page_size),
            Some(0) => Err(StoreError::InvalidParams(
                "page size must be at least 1".into(),
            )),
            Some(n) => Ok(n.min(self.max_page_size)),
        }
    }

    /// Refuses an owner id the configuration does not accept.
    pub fn check_owner(&self, owner: &str) -> Result<(), StoreError> {
        if owner.is_empty() && !self.allow_anonymous {
            return Err(StoreError::InvalidParams(
                "owner id is empty and anonymous tasks are disabled".into(),
            ));
        }
        if owner.len() > self.max_owner_bytes as usize {
            return Err(StoreError::InvalidParams(format!(
                "owner id is {} bytes; the limit is {}",
                owner.len(),
                self.max_owner_bytes
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(default_ttl: Option<u64>, max_ttl: Option<u64>) -> StoreConfig {
        StoreConfig {
            default_ttl,
            max_ttl,
            ..StoreConfig::for_tests()
        }
    }

    #[test]
    fn ttl_is_requested_or_default_clamped_to_max() {
        let c = config(Some(1_000), Some(5_000));
        assert_eq!(c.effective_ttl(None), Ok(Some(1_000)));
        assert_eq!(c.effective_ttl(Some(2_000)), Ok(Some(2_000)));
        assert_eq!(c.effective_ttl(Some(9_000)), Ok(Some(5_000)));
        assert!(matches!(
            c.effective_ttl(Some(0)),
            Err(StoreError::InvalidParams(_))
        ));
    }

    #[test]
    fn unlimited_ttl_only_without_a_max() {
        assert_eq!(config(None, None).effective_ttl(None), Ok(None));
        assert_eq!(config(None, Some(7)).effective_ttl(None), Ok(Some(7)));
        assert_eq!(
            config(Some(3), None).effective_ttl(Some(MAX_TTL_MS)),
            Ok(Some(MAX_TTL_MS))
        );
    }

    #[test]
    fn a_ttl_past_the_longest_is_refused_not_wrapped() {
        let unbounded = config(None, None);
        for ttl in [MAX_TTL_MS + 1, u64::MAX] {
            assert!(matches!(
                unbounded.effective_ttl(Some(ttl)),
                Err(StoreError::InvalidParams(_))
            ));
        }
        assert!(config(Some(u64::MAX), None).validate().is_err());
    }

    #[test]
    fn page_size_defaults_and_clamps() {
        let c = StoreConfig::for_tests();
        assert_eq!(c.page_size(None), Ok(50));
        assert_eq!(c.page_size(Some(7)), Ok(7));
        assert_eq!(c.page_size(Some(10_000)), Ok(100));
        assert!(c.page_size(Some(0)).is_err());
    }

    #[test]
    fn empty_owner_needs_opt_in() {
        let mut c = StoreConfig::for_tests();
        assert!(matches!(
            c.check_owner(""),
            Err(StoreError::InvalidParams(_))
        ));
        c.allow_anonymous = true;
        assert!(c.check_owner("").is_ok());
        assert!(c.check_owner(&"x".repeat(16 * 1024 + 1)).is_err());
    }

    #[test]
    fn a_page_size_that_would_wrap_is_refused() {
        let mut c = StoreConfig::for_tests();
        c.max_page_size = u32::MAX;
        let err = c.validate().unwrap_err();
        assert!(err.to_string().contains("4294967295"), "{err}");
    }

    #[test]
    fn inconsistent_configuration_is_refused() {
        let bad = StoreConfig {
            default_page_size: 500,
            ..StoreConfig::for_tests()
        };
        assert!(bad.validate().is_err());
        let deep = StoreConfig {
            max_json_depth: 1_000,
            ..StoreConfig::for_tests()
        };
        assert!(deep.validate().is_err());
        assert!(StoreConfig::for_tests().validate().is_ok());
    }
}
