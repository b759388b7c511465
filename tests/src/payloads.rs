//! Payloads of the sizes tools really return, made so that a round trip
//! can be checked byte for byte.

/// `bytes` bytes cycling through the base64 alphabet: what an encoded
/// image looks like to the store (the same as the demonstration tool
/// `large_result` answers with).
pub fn base64_like(bytes: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..bytes).map(|i| char::from(ALPHABET[i % 64])).collect()
}
