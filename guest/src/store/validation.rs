//! The checks every input passes before anything is written: sizes,
//! names, JSON limits, leases, trace parents.

use serde_json::value::RawValue;

use crate::config::MAX_NAME_BYTES;
use crate::env::Environment;
use crate::error::StoreError;
use crate::json::{canonical, parse_limited, JsonLimits};
use crate::kv::Kv;
use crate::outcome::any_result_kind;
use crate::record::{LeaseGrant, OutcomeKind};
use pmcp_tasks_contract::trace_parent::is_trace_parent;

use super::{raw_json, TaskStore};

impl<K: Kv, E: Environment> TaskStore<K, E> {
    /// The limits of the variables: their size, and strings of at most
    /// `max-string-bytes`.
    pub(super) fn variables_limits(&self) -> JsonLimits {
        JsonLimits {
            max_bytes: self.config.max_variables_bytes as usize,
            max_depth: self.config.max_json_depth as usize,
            max_string_bytes: self.config.max_string_bytes as usize,
        }
    }

    /// The limits of a payload (a result, arguments, params, an answer) of
    /// at most `max_bytes`: any one string may be as long as the payload
    /// (a base64 image, a document).
    pub(super) fn json_limits(&self, max_bytes: u32) -> JsonLimits {
        JsonLimits {
            max_bytes: max_bytes as usize,
            max_depth: self.config.max_json_depth as usize,
            max_string_bytes: max_bytes as usize,
        }
    }

    /// Parses a generic result: canonical JSON and its kind.
    pub(super) fn parse_result(
        &self,
        text: &str,
    ) -> Result<(Box<RawValue>, OutcomeKind), StoreError> {
        let value = parse_limited(
            text,
            self.json_limits(self.config.max_result_bytes),
            "result",
        )?;
        let kind = any_result_kind(&value);
        Ok((canonical(&value)?, kind))
    }

    /// Checks that `text` is a JSON object within `max_bytes`; keeps it as given.
    pub(super) fn parse_object(
        &self,
        text: &str,
        max_bytes: u32,
        what: &str,
    ) -> Result<Box<RawValue>, StoreError> {
        let value = parse_limited(text, self.json_limits(max_bytes), what)?;
        if !value.is_object() {
            return Err(StoreError::InvalidParams(format!(
                "{what}: must be a JSON object"
            )));
        }
        raw_json(text.trim().to_owned())
    }

    pub(super) fn check_string(&self, text: &str, what: &str) -> Result<(), StoreError> {
        if text.len() > self.config.max_string_bytes as usize {
            return Err(StoreError::InvalidParams(format!(
                "{what} exceeds the limit of {} bytes",
                self.config.max_string_bytes
            )));
        }
        Ok(())
    }

    pub(super) fn check_key(&self, key: &str) -> Result<(), StoreError> {
        if key.is_empty() {
            return Err(StoreError::InvalidParams(
                "input keys must not be empty".into(),
            ));
        }
        check_name(key, "input key")
    }

    pub(super) fn check_grant(&self, grant: &LeaseGrant) -> Result<(), StoreError> {
        if grant.holder.is_empty() || grant.duration == 0 {
            return Err(StoreError::InvalidParams(
                "a lease needs a holder and a positive duration".into(),
            ));
        }
        if grant.duration > crate::config::MAX_TTL_MS {
            return Err(StoreError::InvalidParams(format!(
                "a lease of {} ms is longer than any task lives",
                grant.duration
            )));
        }
        check_name(&grant.holder, "lease holder")
    }

    pub(super) fn checked_message(
        &self,
        message: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        if let Some(m) = message {
            self.check_string(m, "status message")?;
        }
        Ok(message.map(str::to_owned))
    }
}

/// A creating request's `traceparent` must be one (W3C Trace Context).
pub(super) fn check_trace_parent(text: &str) -> Result<(), StoreError> {
    if is_trace_parent(text) {
        Ok(())
    } else {
        Err(StoreError::InvalidParams(
            "trace parent is not a W3C traceparent (version-traceid-parentid-flags)".into(),
        ))
    }
}

/// Refuses a name longer than [`MAX_NAME_BYTES`].
pub(super) fn check_name(name: &str, what: &str) -> Result<(), StoreError> {
    if name.len() > MAX_NAME_BYTES {
        return Err(StoreError::InvalidParams(format!(
            "{what} is {} bytes; the limit is {MAX_NAME_BYTES}",
            name.len()
        )));
    }
    Ok(())
}
