//! The `KvBackend` contract (`wit/tasks.wit`, `interface kv-backend`),
//! checked on each backend directly, without the component: versions,
//! conditional create / replace / remove, expiry at exactly `now`, the
//! live-item cap, listing order and bounds, sweep, and the same steps under
//! concurrency. The list below is the only place a rule is named (see
//! [`crate::rule_list!`]).

use std::sync::Arc;

use pmcp_tasks_host::backend::{KvBackend, KvError};

use crate::BackendFactory;

crate::rule_list! {
    $ kv_conformance_suite, kv_conformance;
    versions_start_at_one_and_grow_by_one,
    create_is_conditional_on_absence_or_expiry,
    replace_is_conditional_on_version_and_liveness,
    remove_is_conditional_on_version,
    expiry_is_exclusive_at_now,
    expiry_and_now_compare_as_numbers_across_digit_counts,
    max_live_caps_creates_and_frees_on_expiry_and_removal,
    max_live_ignores_a_backlog_of_expired_items,
    max_live_counts_expired_items_for_nothing_at_the_cap,
    listing_is_ordered_bounded_and_live_only,
    partitions_share_nothing,
    sweep_removes_only_expired_items_up_to_its_limit,
    concurrent_creates_never_exceed_max_live,
    concurrent_replaces_have_one_winner,
    values_round_trip_byte_for_byte,
    listings_carry_heads_not_bodies,
    any_expiry_is_stored_or_refused_without_a_trace,
}

/// Partitions as the component makes them (lowercase hex).
const P: &str = "0f3a9c0d5e6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a6f7e8d9c0b1a2f";
const Q: &str = "1e2d3c4b5a6f7e8d9c0b1a2f0f3a9c0d5e6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f";
/// A time well after the epoch, as the component passes it (ms).
const NOW: u64 = 1_800_000_000_000;

fn bytes(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

fn is_conflict<T: std::fmt::Debug>(result: Result<T, KvError>) -> bool {
    matches!(result, Err(KvError::Conflict))
}

async fn value_of(kv: &dyn KvBackend, partition: &str, item: &str) -> Option<Vec<u8>> {
    kv.get(partition, item).await.expect("get").map(|e| e.head)
}

async fn listed(
    kv: &dyn KvBackend,
    partition: &str,
    after: Option<&str>,
    limit: u32,
    now: u64,
) -> Vec<String> {
    let page = kv.list(partition, after, limit, now).await.expect("list");
    page.iter().map(|listed| listed.item.to_owned()).collect()
}

async fn versions_start_at_one_and_grow_by_one(factory: &dyn BackendFactory) {
    let kv = factory.fresh().await;
    assert_eq!(
        kv.create(P, "a", bytes("1"), Vec::new(), None, None, NOW)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        kv.replace(P, "a", 1, bytes("2"), Vec::new(), None, NOW)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        kv.replace(P, "a", 2, bytes("3"), Vec::new(), Some(NOW + 5_000), NOW)
            .await
            .unwrap(),
        3
    );
    let entry = kv.get(P, "a").await.unwrap().expect("present");
    assert_eq!(entry.head, bytes("3"));
    assert_eq!(entry.version, 3);
    assert_eq!(entry.expires_at, Some(NOW + 5_000));
    assert!(kv.get(P, "missing").await.unwrap().is_none());
}

async fn create_is_conditional_on_absence_or_expiry(factory: &dyn BackendFactory) {
    let kv = factory.fresh().await;
    kv.create(
        P,
        "a",
        bytes("first"),
        Vec::new(),
        Some(NOW + 1_000),
        None,
        NOW,
    )
    .await
    .unwrap();
    assert!(is_conflict(
        kv.create(P, "a", bytes("second"), Vec::new(), None, None, NOW)
            .await
    ));
    assert!(is_conflict(
        kv.create(P, "a", bytes("second"), Vec::new(), None, None, NOW + 999)
            .await
    ));
    assert_eq!(value_of(&*kv, P, "a").await, Some(bytes("first")));
    // Expired at `now`: the slot is free again.
    let version = kv
        .create(P, "a", bytes("third"), Vec::new(), None, None, NOW + 1_000)
        .await
        .unwrap();
    assert!(version >= 1);
    let entry = kv.get(P, "a").await.unwrap().expect("recreated");
    assert_eq!((entry.head, entry.expires_at), (bytes("third"), None));
}

async fn replace_is_conditional_on_version_and_liveness(factory: &dyn BackendFactory) {
    let kv = factory.fresh().await;
    kv.create(
        P,
        "a",
        bytes("v1"),
        Vec::new(),
        Some(NOW + 1_000),
        None,
        NOW,
    )
    .await
    .unwrap();
    assert!(
        is_conflict(
            kv.replace(P, "a", 2, bytes("x"), Vec::new(), None, NOW)
                .await
        ),
        "wrong version"
    );
    assert!(
        is_conflict(
            kv.replace(P, "missing", 1, bytes("x"), Vec::new(), None, NOW)
                .await
        ),
        "missing item"
    );
    assert!(
        is_conflict(
            kv.replace(P, "a", 1, bytes("x"), Vec::new(), None, NOW + 1_000)
                .await
        ),
        "expired at now"
    );
    assert_eq!(
        value_of(&*kv, P, "a").await,
        Some(bytes("v1")),
        "no refused write applied"
    );
    assert_eq!(
        kv.replace(P, "a", 1, bytes("v2"), Vec::new(), None, NOW + 999)
            .await
            .unwrap(),
        2
    );
    let entry = kv.get(P, "a").await.unwrap().expect("present");
    assert_eq!(
        (entry.head, entry.expires_at),
        (bytes("v2"), None),
        "the expiry is part of the write"
    );
}

async fn remove_is_conditional_on_version(factory: &dyn BackendFactory) {
    let kv = factory.fresh().await;
    kv.create(P, "a", bytes("v1"), Vec::new(), None, None, NOW)
        .await
        .unwrap();
    kv.replace(P, "a", 1, bytes("v2"), Vec::new(), None, NOW)
        .await
        .unwrap();
    assert!(is_conflict(kv.remove(P, "a", 1).await));
    assert_eq!(value_of(&*kv, P, "a").await, Some(bytes("v2")));
    kv.remove(P, "a", 2).await.unwrap();
    assert!(kv.get(P, "a").await.unwrap().is_none());
    assert!(is_conflict(kv.remove(P, "a", 2).await), "already removed");
}

async fn expiry_is_exclusive_at_now(factory: &dyn BackendFactory) {
    let kv = factory.fresh().await;
    let at = NOW + 10_000;
    kv.create(P, "a", bytes("a"), Vec::new(), Some(at), None, NOW)
        .await
        .unwrap();
    assert_eq!(
        listed(&*kv, P, None, 10, at - 1).await,
        ["a"],
        "live just before"
    );
    assert!(
        listed(&*kv, P, None, 10, at).await.is_empty(),
        "expired at exactly its expiry"
    );
    if let Some(entry) = kv.get(P, "a").await.unwrap() {
        assert!(
            entry.is_live(at - 1) && !entry.is_live(at),
            "get may return it, marked"
        );
    }
}

/// An expiry of more digits than `now` is later (as text, "10000000000000"
/// sorts before "9999999999999"): listings and conditional writes agree.
async fn expiry_and_now_compare_as_numbers_across_digit_counts(factory: &dyn BackendFactory) {
    let kv = factory.fresh().await;
    let at: u64 = 10_000_000_000_000;
    let before = at - 1;
    for (item, expiry) in [("a", at), ("b", at * 10)] {
        kv.create(
            P,
            item,
            bytes(item),
            Vec::new(),
            Some(expiry),
            None,
            before - 1,
        )
        .await
        .unwrap();
    }
    assert_eq!(
        listed(&*kv, P, None, 10, before).await,
        ["a", "b"],
        "live at a now of fewer digits"
    );
    let replaced = kv
        .replace(P, "a", 1, bytes("a2"), Vec::new(), Some(at), before)
        .await;
    assert_eq!(replaced.ok(), Some(2), "a live item is replaced");
    assert_eq!(
        listed(&*kv, P, None, 10, at).await,
        ["b"],
        "at its expiry one expired, one of more digits live"
    );
    let late = kv
        .replace(P, "a", 2, bytes("a3"), Vec::new(), Some(at * 10), at)
        .await;
    assert!(is_conflict(late), "an expired item is not replaced");
    let moved = kv
        .replace(P, "b", 1, bytes("b2"), Vec::new(), Some(at * 100), at)
        .await;
    assert_eq!(moved.ok(), Some(2), "a live one is, across another digit");
}

async fn max_live_caps_creates_and_frees_on_expiry_and_removal(factory: &dyn BackendFactory) {
    let kv = factory.fresh().await;
    let cap = Some(2);
    kv.create(P, "a", bytes("a"), Vec::new(), Some(NOW + 1_000), cap, NOW)
        .await
        .unwrap();
    kv.create(P, "b", bytes("b"), Vec::new(), None, cap, NOW)
        .await
        .unwrap();
    let third = kv
        .create(P, "c", bytes("c"), Vec::new(), None, cap, NOW)
        .await;
    assert!(matches!(third, Err(KvError::QuotaExceeded)), "{third:?}");
    assert!(
        kv.get(P, "c").await.unwrap().is_none(),
        "a refused create writes nothing"
    );
    // "a" expires: its slot counts no more.
    kv.create(P, "c", bytes("c"), Vec::new(), None, cap, NOW + 1_000)
        .await
        .unwrap();
    let full = kv
        .create(P, "d", bytes("d"), Vec::new(), None, cap, NOW + 1_000)
        .await;
    assert!(matches!(full, Err(KvError::QuotaExceeded)), "{full:?}");
    kv.remove(P, "b", 1).await.unwrap();
    kv.create(P, "d", bytes("d"), Vec::new(), None, cap, NOW + 1_000)
        .await
        .unwrap();
    // Without a cap nothing is refused.
    kv.create(P, "e", bytes("e"), Vec::new(), None, None, NOW + 1_000)
        .await
        .unwrap();
}

/// More expired items than a backend cleans up in one create (Redis
/// prunes 64 at a time) still count for nothing against the cap.
async fn max_live_ignores_a_backlog_of_expired_items(factory: &dyn BackendFactory) {
    let kv = factory.fresh().await;
    for n in 0..70 {
        let item = format!("old-{n:03}");
        kv.create(P, &item, bytes("x"), Vec::new(), Some(NOW + 10), None, NOW)
            .await
            .unwrap();
    }
    takes_two_more_then_refuses(&*kv, 2, NOW + 1_000).await;
}

/// A partition that reaches the cap only with its expired items counted
/// (Redis counts every stored item until a create finds the cap reached,
/// then prunes and counts again) takes new items up to the cap of live
/// ones, and refuses the next.
async fn max_live_counts_expired_items_for_nothing_at_the_cap(factory: &dyn BackendFactory) {
    let kv = factory.fresh().await;
    for item in ["old-a", "old-b", "old-c"] {
        kv.create(P, item, bytes("x"), Vec::new(), Some(NOW + 10), None, NOW)
            .await
            .unwrap();
    }
    kv.create(P, "kept", bytes("k"), Vec::new(), None, None, NOW)
        .await
        .unwrap();
    let later = NOW + 1_000;
    takes_two_more_then_refuses(&*kv, 3, later).await;
    assert_eq!(
        listed(&*kv, P, None, 10, later).await,
        ["kept", "new-a", "new-b"]
    );
}

/// Creates `new-a` and `new-b` under a cap of `cap` live items at `now`
/// (expired items must not take their slots), then sees `new-c` refused.
async fn takes_two_more_then_refuses(kv: &dyn KvBackend, cap: u32, now: u64) {
    for item in ["new-a", "new-b"] {
        kv.create(P, item, bytes(item), Vec::new(), None, Some(cap), now)
            .await
            .unwrap_or_else(|e| panic!("{item}: expired items took its slot: {e:?}"));
    }
    let full = kv
        .create(P, "new-c", bytes("c"), Vec::new(), None, Some(cap), now)
        .await;
    assert!(matches!(full, Err(KvError::QuotaExceeded)), "{full:?}");
}

async fn listing_is_ordered_bounded_and_live_only(factory: &dyn BackendFactory) {
    let kv = factory.fresh().await;
    for item in ["c", "a", "e", "b", "d"] {
        kv.create(P, item, bytes(item), Vec::new(), None, None, NOW)
            .await
            .unwrap();
    }
    kv.create(P, "bb", bytes("bb"), Vec::new(), Some(NOW + 1), None, NOW)
        .await
        .unwrap();
    assert_eq!(
        listed(&*kv, P, Some("b"), 10, NOW).await,
        ["bb", "c", "d", "e"],
        "live at its own now"
    );
    assert_eq!(listed(&*kv, P, None, 3, NOW + 1).await, ["a", "b", "c"]);
    assert_eq!(
        listed(&*kv, P, Some("b"), 10, NOW + 1).await,
        ["c", "d", "e"],
        "strictly after, expired skipped"
    );
    assert_eq!(
        listed(&*kv, P, Some("bz"), 2, NOW + 1).await,
        ["c", "d"],
        "after a key that is not stored"
    );
    assert!(listed(&*kv, P, Some("e"), 10, NOW + 1).await.is_empty());
    let page = kv.list(P, None, 1, NOW).await.unwrap();
    let first = page.iter().next().expect("one entry");
    assert_eq!(first.head, bytes("a"), "entries come with their heads");
}

async fn partitions_share_nothing(factory: &dyn BackendFactory) {
    let kv = factory.fresh().await;
    // Partitions that are prefixes of one another, or carry separators and
    // hash-tag braces, are still distinct.
    let partitions = [P, Q, "p", "p:", "p:a", "{p}", "p}", "", "p\u{0}a", "ä"];
    for (n, partition) in partitions.iter().enumerate() {
        kv.create(
            partition,
            "item",
            bytes(&n.to_string()),
            Vec::new(),
            None,
            Some(1),
            NOW,
        )
        .await
        .unwrap();
    }
    for (n, partition) in partitions.iter().enumerate() {
        assert_eq!(
            value_of(&*kv, partition, "item").await,
            Some(bytes(&n.to_string())),
            "{partition:?}"
        );
        assert_eq!(
            listed(&*kv, partition, None, 10, NOW).await,
            ["item"],
            "{partition:?}"
        );
    }
}

async fn sweep_removes_only_expired_items_up_to_its_limit(factory: &dyn BackendFactory) {
    let kv = factory.fresh().await;
    for (item, expiry) in [
        ("a", Some(NOW + 10)),
        ("b", Some(NOW + 20)),
        ("c", Some(NOW + 30)),
        ("keep", None),
    ] {
        kv.create(P, item, bytes(item), Vec::new(), expiry, None, NOW)
            .await
            .unwrap();
    }
    kv.create(
        Q,
        "later",
        bytes("later"),
        Vec::new(),
        Some(NOW + 1_000),
        None,
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(
        kv.sweep(NOW + 5, 10).await.unwrap(),
        0,
        "nothing expired yet"
    );
    assert_eq!(
        kv.sweep(NOW + 30, 2).await.unwrap(),
        2,
        "bounded by its limit"
    );
    assert_eq!(kv.sweep(NOW + 30, 10).await.unwrap(), 1, "the rest");
    for item in ["a", "b", "c"] {
        assert!(kv.get(P, item).await.unwrap().is_none(), "{item} removed");
    }
    assert!(kv.get(P, "keep").await.unwrap().is_some());
    assert!(kv.get(Q, "later").await.unwrap().is_some());
    assert_eq!(kv.sweep(NOW + 30, 10).await.unwrap(), 0);
}

async fn concurrent_creates_never_exceed_max_live(factory: &dyn BackendFactory) {
    let kv: Arc<dyn KvBackend> = factory.fresh().await;
    let attempts = (0..30).map(|n| {
        let kv = kv.clone();
        tokio::spawn(async move {
            kv.create(
                P,
                &format!("i{n:02}"),
                bytes("x"),
                Vec::new(),
                None,
                Some(7),
                NOW,
            )
            .await
        })
    });
    let mut created = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => created += 1,
            Err(KvError::QuotaExceeded | KvError::Conflict) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert!(created <= 7, "{created} created over a cap of 7");
    assert_eq!(listed(&*kv, P, None, 100, NOW).await.len(), created);
}

async fn concurrent_replaces_have_one_winner(factory: &dyn BackendFactory) {
    let kv: Arc<dyn KvBackend> = factory.fresh().await;
    kv.create(P, "a", bytes("0"), Vec::new(), None, None, NOW)
        .await
        .unwrap();
    let writers = (0..12).map(|n| {
        let kv = kv.clone();
        tokio::spawn(async move {
            kv.replace(P, "a", 1, bytes(&n.to_string()), Vec::new(), None, NOW)
                .await
                .map(|_| n)
        })
    });
    let mut winners = Vec::new();
    for writer in writers {
        match writer.await.unwrap() {
            Ok(n) => winners.push(n),
            Err(KvError::Conflict) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let entry = kv.get(P, "a").await.unwrap().expect("present");
    assert_eq!(
        (entry.head, entry.version),
        (bytes(&winners[0].to_string()), 2)
    );
}

async fn values_round_trip_byte_for_byte(factory: &dyn BackendFactory) {
    let kv = factory.fresh().await;
    let head: Vec<u8> = (0..1_000u32).map(|n| (n % 7) as u8).collect();
    let body: Vec<u8> = (0..200_000u32).map(|n| (n % 251) as u8).collect();
    kv.create(P, "blob", head.clone(), body.clone(), None, None, NOW)
        .await
        .unwrap();
    let entry = kv.get(P, "blob").await.unwrap().expect("stored");
    assert_eq!((entry.head, entry.body), (head.clone(), body.clone()));
    kv.replace(P, "blob", 1, body.clone(), head.clone(), None, NOW)
        .await
        .unwrap();
    let entry = kv.get(P, "blob").await.unwrap().expect("replaced");
    assert_eq!((entry.head, entry.body), (body, head));
    kv.create(P, "empty", Vec::new(), Vec::new(), None, None, NOW)
        .await
        .unwrap();
    assert_eq!(value_of(&*kv, P, "empty").await, Some(Vec::new()));
}

/// A listing returns heads and never bodies: listing a page of tasks with
/// large results must not move the results.
async fn listings_carry_heads_not_bodies(factory: &dyn BackendFactory) {
    let kv = factory.fresh().await;
    let body = vec![7u8; 100_000];
    for item in ["a", "b", "c"] {
        kv.create(P, item, bytes(item), body.clone(), None, None, NOW)
            .await
            .unwrap();
    }
    let page = kv.list(P, None, 10, NOW).await.unwrap();
    let heads: Vec<&[u8]> = page.iter().map(|listed| listed.head).collect();
    assert_eq!(heads, [b"a", b"b", b"c"]);
    assert_eq!(page.packed_len(), 6, "item ids and heads, no body listed");
}

async fn any_expiry_is_stored_or_refused_without_a_trace(factory: &dyn BackendFactory) {
    let kv = factory.fresh().await;
    for (item, expiry) in [
        ("max", u64::MAX),
        ("i64", i64::MAX as u64 + 1),
        ("2^53", 1 << 53),
    ] {
        match kv
            .create(
                P,
                item,
                bytes(item),
                Vec::new(),
                Some(expiry),
                Some(100),
                NOW,
            )
            .await
        {
            Ok(_) => {
                let entry = kv.get(P, item).await.unwrap().expect("stored");
                assert_eq!(entry.expires_at, Some(expiry), "{item}: stored as given");
                assert!(
                    listed(&*kv, P, None, 10, NOW)
                        .await
                        .contains(&item.to_owned()),
                    "{item}"
                );
            }
            Err(refused) => {
                assert!(
                    !matches!(refused, KvError::Unavailable { .. }),
                    "{item}: {refused:?} is no outage"
                );
                assert!(
                    kv.get(P, item).await.unwrap().is_none(),
                    "{item}: refused, yet written"
                );
            }
        }
    }
}
