//! Byte comparison for the wasm build. Every `str` and `[u8]` ordering
//! (JSON object keys in `BTreeMap`s, owner checks, field names) ends in
//! `memcmp`, and the one wasi-libc links compares a byte per iteration:
//! 7.5% of a 1 KB variables update ran there. The component exports its
//! own `memcmp`, eight bytes per iteration; the linker then takes no
//! `memcmp` from wasi-libc. Natively the platform's (vectorized) one stays.

use std::cmp::Ordering;

/// Orders two byte strings as slices order (bytes as unsigned, a prefix
/// first), eight bytes at a time. Written without slice comparisons,
/// which would call `memcmp` again.
pub(crate) fn compare(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = word(a, i);
        let y = word(b, i);
        if x != y {
            // Big-endian words order as their bytes do.
            return x.cmp(&y);
        }
        i += 8;
    }
    while i < n {
        if a[i] != b[i] {
            return a[i].cmp(&b[i]);
        }
        i += 1;
    }
    a.len().cmp(&b.len())
}

/// The eight bytes of `bytes` at `at`, most significant first.
fn word(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(word)
}

/// `memcmp` for the component, over [`compare`].
///
/// # Safety
/// As for C's `memcmp`: `a` and `b` point to `n` readable bytes each.
#[cfg(target_family = "wasm")]
#[no_mangle]
#[expect(
    unreachable_pub,
    reason = "the linker's `memcmp`: reached by its symbol, not a path"
)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    if n == 0 {
        return 0;
    }
    // SAFETY: the caller promises `n` readable bytes at both (memcmp's
    // contract), and `n > 0` means neither pointer is dangling.
    let (a, b) = unsafe {
        (
            std::slice::from_raw_parts(a, n),
            std::slice::from_raw_parts(b, n),
        )
    };
    compare(a, b) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_as_slices_do_at_every_length_and_position() {
        for len in 0..40usize {
            let base: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(compare(&base, &base), Ordering::Equal);
            for at in 0..len {
                for delta in [1u8, 0x80, 0xff] {
                    let mut other = base.clone();
                    other[at] = other[at].wrapping_add(delta);
                    assert_eq!(
                        compare(&base, &other),
                        base.cmp(&other),
                        "len {len} at {at}"
                    );
                    assert_eq!(
                        compare(&other, &base),
                        other.cmp(&base),
                        "len {len} at {at}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_prefix_orders_first() {
        for (a, b) in [
            (&b"key"[..], &b"key-0001"[..]),
            (b"", b"a"),
            (b"abcdefgh", b"abcdefghi"),
        ] {
            assert_eq!(compare(a, b), Ordering::Less);
            assert_eq!(compare(b, a), Ordering::Greater);
        }
    }

    #[test]
    fn bytes_compare_unsigned() {
        assert_eq!(compare(&[0x7f], &[0x80]), Ordering::Less);
        assert_eq!(compare(b"key-0099", b"key-0100"), Ordering::Less);
    }
}
