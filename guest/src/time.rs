//! Millisecond timestamps and their ISO-8601 wire form.

/// Formats milliseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
///
/// Every task read formats two timestamps, so this writes digits directly
/// rather than through `format!` (several times faster, in wasm above all).
pub fn iso8601_utc(epoch_ms: u64) -> String {
    let ms = (epoch_ms % 1000) as u32;
    let secs = epoch_ms / 1000;
    let (days, secs_of_day) = (secs / 86_400, (secs % 86_400) as u32);
    let (year, month, day) = civil_from_days(days as i64);
    let year = u32::try_from(year.max(0)).unwrap_or(u32::MAX);
    let year_width = year.checked_ilog10().map_or(1, |d| d + 1).max(4);
    let mut out = Vec::with_capacity(24);
    push_digits(&mut out, year, year_width);
    out.push(b'-');
    push_digits(&mut out, month, 2);
    out.push(b'-');
    push_digits(&mut out, day, 2);
    out.push(b'T');
    push_digits(&mut out, secs_of_day / 3600, 2);
    out.push(b':');
    push_digits(&mut out, secs_of_day / 60 % 60, 2);
    out.push(b':');
    push_digits(&mut out, secs_of_day % 60, 2);
    out.push(b'.');
    push_digits(&mut out, ms, 3);
    out.push(b'Z');
    // Only ASCII digits and punctuation were written.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends the last `width` decimal digits of `value`, zero-padded, from
/// the right: one division by the constant 10 per digit, which the code
/// generator turns into a multiplication (a power of ten as divisor would
/// be a real division per digit).
fn push_digits(out: &mut Vec<u8>, mut value: u32, width: u32) {
    let start = out.len();
    out.resize(start + width as usize, b'0');
    for slot in out[start..].iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::iso8601_utc;

    #[test]
    fn formats_epoch_and_known_instants() {
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601_utc(1_764_145_845_123), "2025-11-26T08:30:45.123Z");
        assert_eq!(iso8601_utc(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
        assert_eq!(
            iso8601_utc(253_402_300_800_000),
            "10000-01-01T00:00:00.000Z"
        );
    }
}
