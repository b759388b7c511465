//! The W3C `traceparent` a task keeps from the request that created it
//! (Trace Context level 1: `version-traceid-parentid-flags`, lowercase
//! hex). The store checks its shape, so a record never carries text a
//! tracer would choke on; the host's protocol layer reads a request's with
//! the same rule.

/// Longest accepted value: version 00 is 55 bytes; later versions may
/// append fields, which are kept but bounded.
pub const MAX_TRACE_PARENT_BYTES: usize = 128;

/// Whether `text` is a usable `traceparent`: known-shape fields in
/// lowercase hex, a version other than `ff`, trace and parent ids not all
/// zeros, and (for version 00) nothing after the flags.
pub fn is_trace_parent(text: &str) -> bool {
    if text.len() > MAX_TRACE_PARENT_BYTES {
        return false;
    }
    let mut fields = text.split('-');
    let (Some(version), Some(trace), Some(parent), Some(flags)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return false;
    };
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && nonzero(trace)
        && hex(parent, 16)
        && nonzero(parent)
        && hex(flags, 2)
        && (version != "00" || fields.next().is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_specification_example_is_accepted() {
        assert!(is_trace_parent(GOOD));
    }

    #[test]
    fn a_later_version_may_carry_more_fields() {
        assert!(is_trace_parent(&format!("01{}-extra", &GOOD[2..])));
        assert!(!is_trace_parent(&format!("{GOOD}-extra")));
    }

    #[test]
    fn malformed_values_are_refused() {
        for bad in [
            "",
            "00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        ] {
            assert!(!is_trace_parent(bad), "{bad}");
        }
        let long = format!("01{}-{}", &GOOD[2..], "a".repeat(MAX_TRACE_PARENT_BYTES));
        assert!(!is_trace_parent(&long));
    }
}
