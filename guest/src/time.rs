//! Millisecond timestamps and their ISO-8601 wire form.

/// Formats milliseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
///
/// Every task read formats two timestamps (a listed page, a hundred), so
/// this fills a fixed template two digits at a time from a table rather
/// than going through `format!` or a digit loop (several times faster, in
/// wasm above all). Years past 9999 take the slower general path.
pub fn iso8601_utc(epoch_ms: u64) -> String {
    let ms = (epoch_ms % 1000) as u32;
    let secs = epoch_ms / 1000;
    let (days, secs_of_day) = (secs / 86_400, (secs % 86_400) as u32);
    let (year, month, day) = civil_from_days(days as i64);
    let year = u32::try_from(year.max(0)).unwrap_or(u32::MAX);
    let (hour, minute, second) = (secs_of_day / 3600, secs_of_day / 60 % 60, secs_of_day % 60);
    let mut out = Vec::with_capacity(26);
    if year <= 9999 {
        out.extend_from_slice(&pair(year / 100));
        out.extend_from_slice(&pair(year % 100));
    } else {
        out.extend_from_slice(year.to_string().as_bytes());
    }
    let [m0, m1] = pair(month);
    let [d0, d1] = pair(day);
    let [h0, h1] = pair(hour);
    let [i0, i1] = pair(minute);
    let [s0, s1] = pair(second);
    let [f1, f2] = pair(ms % 100);
    let f0 = b'0' + (ms / 100) as u8;
    out.extend_from_slice(&[
        b'-', m0, m1, b'-', d0, d1, b'T', h0, h1, b':', i0, i1, b':', s0, s1, b'.', f0, f1, f2,
        b'Z',
    ]);
    // Only ASCII digits and punctuation were written.
    String::from_utf8(out).unwrap_or_default()
}

/// The two decimal digits of `value` (below 100), from a table: one lookup
/// instead of a division and a remainder per digit.
fn pair(value: u32) -> [u8; 2] {
    const PAIRS: [[u8; 2]; 100] = {
        let mut table = [[0u8; 2]; 100];
        let mut n = 0;
        while n < 100 {
            table[n] = [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
            n += 1;
        }
        table
    };
    PAIRS[value as usize % 100]
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
    use super::{civil_from_days, iso8601_utc};

    /// The same form through `format!`, digit by digit.
    fn reference(epoch_ms: u64) -> String {
        let secs = epoch_ms / 1000;
        let (year, month, day) = civil_from_days((secs / 86_400) as i64);
        let of_day = secs % 86_400;
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            of_day / 3600,
            of_day / 60 % 60,
            of_day % 60,
            epoch_ms % 1000
        )
    }

    #[test]
    fn every_field_matches_the_plain_formatting() {
        // A walk with a step coprime to every field's modulus visits many
        // digit combinations of each, from 1970 to past 9999.
        let mut at = 0u64;
        while at < 300_000_000_000_000 {
            assert_eq!(iso8601_utc(at), reference(at), "at {at}");
            at += 7_919_993_311;
        }
    }

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
