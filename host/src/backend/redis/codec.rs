//! The item hash's fields as Redis stores them: expiries and versions as decimal text.

use std::time::Duration;

use crate::backend::KvError;

/// How long after the store's expiry Redis itself deletes a task's hash.
/// The component's clock decides expiry (every read checks it); Redis's
/// native expiry only collects garbage, and runs on Redis's clock, so it
/// must not fire while the component may still consider the task live.
/// Covers a Redis clock up to this far ahead of the host's.
pub const NATIVE_EXPIRY_MARGIN: Duration = Duration::from_secs(24 * 3_600);

/// Latest native expiry handed to `PEXPIREAT` (2^53 ms, some 285 000
/// years): exact as a Lua number and far inside Redis's i64 range.
const MAX_NATIVE_EXPIRY_MS: u64 = 1 << 53;

pub(super) fn expiry_arg(expires_at: Option<u64>) -> Vec<u8> {
    expires_at
        .map(|at| at.to_string().into_bytes())
        .unwrap_or_default()
}

/// The time Redis deletes the key: the store's expiry plus the margin.
pub(super) fn native_expiry_arg(expires_at: Option<u64>) -> Vec<u8> {
    let margin = NATIVE_EXPIRY_MARGIN.as_millis() as u64;
    expiry_arg(expires_at.map(|at| at.saturating_add(margin).min(MAX_NATIVE_EXPIRY_MS)))
}

pub(super) fn parse_expiry(field: &[u8]) -> Result<Option<u64>, KvError> {
    if field.is_empty() {
        return Ok(None);
    }
    parse_decimal(field, "expiry").map(Some)
}

pub(super) fn parse_version(field: &[u8]) -> Result<u64, KvError> {
    parse_decimal(field, "version")
}

/// A field Redis holds as decimal text; anything else is corruption.
fn parse_decimal(field: &[u8], what: &str) -> Result<u64, KvError> {
    std::str::from_utf8(field)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| KvError::Corrupt(format!("redis returned a malformed {what}")))
}
