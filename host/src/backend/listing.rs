//! [`Listing`]: a page of listed entries in the shape the `kv-backend`
//! import hands the component (item ids and heads packed in one buffer,
//! then their lengths, versions and expiries), so a backend builds it once
//! and the host copies it into the guest in four pieces, with no
//! allocation per entry on either side.

use super::KvError;

/// Bytes reserved per entry for its item id and head (a task's head is
/// a few hundred bytes), so a page rarely grows its buffer.
const BYTES_PER_ENTRY: usize = 256;

/// The expiry a [`Listing`] records for an entry that never expires (the
/// WIT `listed-page` convention; an expiry at `u64::MAX` ms is never
/// reached either, so the two read the same).
const NEVER: u64 = u64::MAX;

/// Live entries found by a listing, heads only, in item id order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Each entry's item id, then its head, entry after entry.
    packed: Vec<u8>,
    /// Two per entry: the bytes of its item id, then of its head.
    lengths: Vec<u32>,
    /// One per entry.
    versions: Vec<u64>,
    /// One per entry; [`NEVER`] for none.
    expiries: Vec<u64>,
}

/// One entry of a [`Listing`], borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed<'a> {
    /// The item id.
    pub item: &'a str,
    /// The entry's head.
    pub head: &'a [u8],
    /// Backend-assigned version.
    pub version: u64,
    /// When the entry stops being live; `None` = never.
    pub expires_at: Option<u64>,
}

impl Listing {
    /// An empty listing with room for `entries` entries.
    pub fn with_capacity(entries: usize) -> Self {
        Listing {
            packed: Vec::with_capacity(entries * BYTES_PER_ENTRY),
            lengths: Vec::with_capacity(entries * 2),
            versions: Vec::with_capacity(entries),
            expiries: Vec::with_capacity(entries),
        }
    }

    /// Appends an entry (after every entry already listed).
    ///
    /// # Errors
    /// [`KvError::TooLarge`] for an item id or head over 4 GiB.
    pub fn push(
        &mut self,
        item: &str,
        head: &[u8],
        version: u64,
        expires_at: Option<u64>,
    ) -> Result<(), KvError> {
        let length = |bytes: &[u8], what: &str| {
            u32::try_from(bytes.len()).map_err(|_| {
                KvError::TooLarge(format!("the listed {what} of item {item} exceeds 4 GiB"))
            })
        };
        let lengths = [length(item.as_bytes(), "id")?, length(head, "head")?];
        self.lengths.extend_from_slice(&lengths);
        self.packed.extend_from_slice(item.as_bytes());
        self.packed.extend_from_slice(head);
        self.versions.push(version);
        self.expiries.push(expires_at.unwrap_or(NEVER));
        Ok(())
    }

    /// How many entries are listed.
    pub fn len(&self) -> usize {
        self.versions.len()
    }

    /// Whether no entry is listed.
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    /// Bytes of item ids and heads together.
    pub fn packed_len(&self) -> usize {
        self.packed.len()
    }

    /// The entries, in order.
    pub fn iter(&self) -> impl Iterator<Item = Listed<'_>> + '_ {
        let mut rest = self.packed.as_slice();
        let described = self.lengths.chunks_exact(2).zip(&self.versions);
        described
            .zip(&self.expiries)
            .map(move |((lengths, &version), &expiry)| {
                let (item, after_item) = rest.split_at(lengths[0] as usize);
                let (head, after_head) = after_item.split_at(lengths[1] as usize);
                rest = after_head;
                Listed {
                    // `push` only takes item ids as `str`.
                    item: std::str::from_utf8(item).expect("listed item ids are UTF-8"),
                    head,
                    version,
                    expires_at: (expiry != NEVER).then_some(expiry),
                }
            })
    }

    /// The four parts, as the WIT `listed-page` carries them.
    pub fn into_parts(self) -> (Vec<u8>, Vec<u32>, Vec<u64>, Vec<u64>) {
        (self.packed, self.lengths, self.versions, self.expiries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_back_in_order_with_their_heads_versions_and_expiries() {
        let mut listing = Listing::with_capacity(3);
        listing.push("a", b"{\"h\":1}", 3, None).unwrap();
        listing.push("bc", b"", 1, Some(9)).unwrap();
        listing.push("d\u{e9}", b"xyz", 7, Some(5)).unwrap();
        assert_eq!((listing.len(), listing.packed_len()), (3, 16));
        let listed: Vec<_> = listing.iter().collect();
        let expected = [
            ("a", &b"{\"h\":1}"[..], 3, None),
            ("bc", &b""[..], 1, Some(9)),
            ("d\u{e9}", &b"xyz"[..], 7, Some(5)),
        ];
        let got: Vec<_> = listed
            .iter()
            .map(|l| (l.item, l.head, l.version, l.expires_at))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn the_parts_are_what_the_component_receives() {
        let mut listing = Listing::default();
        assert!(listing.is_empty());
        listing.push("a", b"{}", 3, None).unwrap();
        listing.push("bc", b"x", 1, Some(9)).unwrap();
        let (packed, lengths, versions, expiries) = listing.into_parts();
        assert_eq!(packed, b"a{}bcx");
        assert_eq!(lengths, [1, 2, 2, 1]);
        assert_eq!(versions, [3, 1]);
        assert_eq!(expiries, [u64::MAX, 9]);
    }
}
