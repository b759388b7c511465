//! Keyed digests of the HTTP layer: one deployment secret keys several
//! uses (session seals, token digests), each under its own label.

/// An HMAC-SHA-256 keyed by the deployment's `secret` for one `label`d
/// use: one secret keys several things, none of which can stand for another.
pub(in crate::http) fn labelled_mac(secret: &[u8], label: &[u8]) -> hmac::Hmac<sha2::Sha256> {
    use hmac::{KeyInit, Mac};
    let mut key = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    key.update(label);
    key.update(b"\0");
    key
}

/// 32 random bytes, a secret of this process alone.
pub(in crate::http) fn random_secret() -> [u8; 32] {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).unwrap_or_else(|e| panic!("no randomness for a key: {e}"));
    secret
}

/// `bytes` as lowercase hexadecimal (digests in owner ids and session ids).
pub(in crate::http) fn lower_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
    }
    out
}
