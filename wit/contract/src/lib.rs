//! The values of the `pmcp:tasks` `kv-backend` interface in Rust, in one
//! definition both sides use: the host's backends build them (and must
//! never depend on guest code), the guest reads them (and must not depend
//! on the host).
//!
//! An [`Entry`] is one stored value, as a backend returns it to a `get`.
//! A [`Listing`] is the `kv-backend` interface's `listed-page`: the entries'
//! item ids and heads packed in one buffer, with two lengths, a version and
//! an expiry per entry in lists of numbers. Each list the host lowers into
//! the guest is one copy; a list of records would cost a guest allocation
//! per string and a conversion per field.

pub mod defaults;
pub mod trace_parent;
mod vocabulary;

pub use vocabulary::{json_rpc, OutcomeKind, RetryPolicy, StatusView, TaskStatus};

/// The expiry a [`Listing`] records for an entry that never expires (an
/// expiry at `u64::MAX` ms is never reached either, so the two read the
/// same).
pub const NEVER_EXPIRES: u64 = u64::MAX;

/// Bytes reserved per entry for its item id and head (a task's head is a
/// few hundred bytes), so a page rarely grows its buffer.
const BYTES_PER_ENTRY: usize = 256;

/// Whether something expiring at `expires_at` (`None` = never) is live at
/// `now`: it expires at `expires_at` exactly.
fn live_at(expires_at: Option<u64>, now: u64) -> bool {
    expires_at.is_none_or(|at| now < at)
}

/// A stored value in two parts (the `kv-backend` interface's `entry`), with
/// its version and absolute expiry (ms since the epoch). Listings return
/// the head only: a backend must not read (or move) the body to list.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::exhaustive_structs,
    reason = "the WIT record `entry`, built field by field by every backend: a field is added with the contract's version"
)]
pub struct Entry {
    /// The part listings return (the component's small task summary).
    pub head: Vec<u8>,
    /// The rest of the record; empty in listed entries.
    pub body: Vec<u8>,
    /// Backend-assigned version: 1 on create, +1 per replace.
    pub version: u64,
    /// When the entry stops being live; `None` = never.
    pub expires_at: Option<u64>,
}

impl Entry {
    /// Whether the entry is live at `now` (it expires at `expires_at` exactly).
    pub fn is_live(&self, now: u64) -> bool {
        live_at(self.expires_at, now)
    }
}

/// Why a listing could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[expect(
    clippy::exhaustive_enums,
    reason = "backends map each case to their own error kind without a wildcard, so a new case fails their build"
)]
pub enum ListingError {
    /// An item id or head is longer than a listing can describe.
    #[error("the listed {what} of item {item} exceeds 4 GiB")]
    TooLarge {
        /// `"id"` or `"head"`.
        what: &'static str,
        /// The item.
        item: String,
    },
    /// The parts do not describe a listing (the sender's fault).
    #[error("a malformed listing: {0}")]
    Malformed(&'static str),
}

/// Live entries found by a listing, heads only, in item id order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Each entry's item id (UTF-8), then its head, entry after entry.
    packed: Vec<u8>,
    /// Two per entry: the bytes of its item id, then of its head.
    lengths: Vec<u32>,
    /// One per entry.
    versions: Vec<u64>,
    /// One per entry; [`NEVER_EXPIRES`] for none.
    expiries: Vec<u64>,
}

/// One entry of a [`Listing`], borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[expect(
    clippy::exhaustive_structs,
    reason = "a borrowed view of one listing entry, destructured by backends and the component"
)]
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

impl Listed<'_> {
    /// Whether the entry is live at `now`.
    pub fn is_live(&self, now: u64) -> bool {
        live_at(self.expires_at, now)
    }
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

    /// A listing from the four parts of a `listed-page`, checked once:
    /// lengths that do not add up to the buffer, parts that disagree on the
    /// number of entries, or an item id that is not UTF-8 are an error,
    /// never a panic.
    ///
    /// # Errors
    /// [`ListingError::Malformed`], saying what does not fit.
    pub fn from_parts(
        packed: Vec<u8>,
        lengths: Vec<u32>,
        versions: Vec<u64>,
        expiries: Vec<u64>,
    ) -> Result<Self, ListingError> {
        let count = versions.len();
        if expiries.len() != count || lengths.len() != count * 2 {
            return Err(ListingError::Malformed(
                "its parts disagree on the number of entries",
            ));
        }
        let mut rest = packed.as_slice();
        for pair in lengths.chunks_exact(2) {
            let (item, after_item) = rest
                .split_at_checked(pair[0] as usize)
                .ok_or(ListingError::Malformed("an item id runs past the buffer"))?;
            std::str::from_utf8(item)
                .map_err(|_| ListingError::Malformed("an item id is not UTF-8"))?;
            rest = after_item
                .get(pair[1] as usize..)
                .ok_or(ListingError::Malformed("a head runs past the buffer"))?;
        }
        if !rest.is_empty() {
            return Err(ListingError::Malformed("bytes left after the last entry"));
        }
        Ok(Listing {
            packed,
            lengths,
            versions,
            expiries,
        })
    }

    /// Appends an entry (after every entry already listed).
    ///
    /// # Errors
    /// [`ListingError::TooLarge`] for an item id or head over 4 GiB.
    pub fn push(
        &mut self,
        item: &str,
        head: &[u8],
        version: u64,
        expires_at: Option<u64>,
    ) -> Result<(), ListingError> {
        let length = |bytes: &[u8], what: &'static str| {
            u32::try_from(bytes.len()).map_err(|_| ListingError::TooLarge {
                what,
                item: item.to_owned(),
            })
        };
        let lengths = [length(item.as_bytes(), "id")?, length(head, "head")?];
        self.lengths.extend_from_slice(&lengths);
        self.packed.extend_from_slice(item.as_bytes());
        self.packed.extend_from_slice(head);
        self.versions.push(version);
        self.expiries.push(expires_at.unwrap_or(NEVER_EXPIRES));
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
            .map(move |((pair, &version), &expiry)| {
                let (item, after_item) = rest.split_at(pair[0] as usize);
                let (head, after_head) = after_item.split_at(pair[1] as usize);
                rest = after_head;
                Listed {
                    // Checked by `from_parts`; `push` takes a `str`.
                    item: std::str::from_utf8(item).unwrap_or_default(),
                    head,
                    version,
                    expires_at: (expiry != NEVER_EXPIRES).then_some(expiry),
                }
            })
    }

    /// The four parts, as a `listed-page` carries them.
    pub fn into_parts(self) -> (Vec<u8>, Vec<u32>, Vec<u64>, Vec<u64>) {
        (self.packed, self.lengths, self.versions, self.expiries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(listing: &Listing) -> Vec<(&str, &[u8], u64, Option<u64>)> {
        let described = listing.iter();
        described
            .map(|l| (l.item, l.head, l.version, l.expires_at))
            .collect()
    }

    #[test]
    fn pushed_entries_come_back_in_order_and_as_parts() {
        let mut listing = Listing::with_capacity(3);
        assert!(listing.is_empty());
        listing.push("a", b"{\"h\":1}", 3, None).unwrap();
        listing.push("bc", b"", 1, Some(9)).unwrap();
        listing.push("d\u{e9}", b"xyz", 7, Some(5)).unwrap();
        assert_eq!((listing.len(), listing.packed_len()), (3, 16));
        assert_eq!(
            parts(&listing),
            [
                ("a", &b"{\"h\":1}"[..], 3, None),
                ("bc", &b""[..], 1, Some(9)),
                ("d\u{e9}", &b"xyz"[..], 7, Some(5))
            ]
        );
        let (packed, lengths, versions, expiries) = listing.into_parts();
        assert_eq!(packed, "a{\"h\":1}bcd\u{e9}xyz".as_bytes());
        assert_eq!(lengths, [1, 7, 2, 0, 3, 3]);
        assert_eq!(versions, [3, 1, 7]);
        assert_eq!(expiries, [NEVER_EXPIRES, 9, 5]);
    }

    #[test]
    fn parts_read_back_as_the_listing_they_came_from() {
        let mut pushed = Listing::default();
        pushed.push("a", b"{}", 1, None).unwrap();
        pushed.push("bc", b"", 2, Some(20)).unwrap();
        let (packed, lengths, versions, expiries) = pushed.clone().into_parts();
        let received = Listing::from_parts(packed, lengths, versions, expiries);
        assert_eq!(received, Ok(pushed));
        let live: Vec<_> = received.unwrap().iter().map(|l| l.is_live(20)).collect();
        assert_eq!(
            live,
            [true, false],
            "an entry expires at its expiry exactly"
        );
    }

    #[test]
    fn a_malformed_listing_is_an_error_not_a_panic() {
        let malformed = |packed: &[u8], lengths: &[u32], count: usize| {
            let listing = Listing::from_parts(
                packed.to_vec(),
                lengths.to_vec(),
                vec![1, 2][..count].to_vec(),
                vec![5, 6][..count].to_vec(),
            );
            matches!(listing, Err(ListingError::Malformed(_)))
        };
        assert!(!malformed(b"abc", &[1, 2], 1), "a well-formed listing");
        assert!(malformed(b"abc", &[4, 0], 1), "item id past the end");
        assert!(malformed(b"abc", &[1, 3], 1), "head past the end");
        assert!(malformed(b"abc", &[1, 1], 1), "bytes left over");
        assert!(malformed(b"abc", &[], 0), "bytes without entries");
        assert!(malformed(b"\xffbc", &[1, 2], 1), "item id not UTF-8");
        assert!(malformed(b"", &[u32::MAX, u32::MAX], 1), "huge lengths");
        assert!(
            malformed(b"abc", &[1, 2], 2),
            "two versions, one pair of lengths"
        );
        assert!(malformed(b"abc", &[1, 2, 0], 1), "an odd number of lengths");
    }
}
