//! The contract suite on moto's DynamoDB server, plus what is specific to DynamoDB.
#![cfg(feature = "dynamodb")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb as sdk;
use pmcp_tasks_host::backend::dynamodb::DynamoDbBackend;
use pmcp_tasks_host::backend::{KvBackend, KvError};
use pmcp_tasks_host::clock::ManualClock;
use pmcp_tasks_host::{StoreConfig, TaskError, TaskHost};
use pmcp_tasks_tests::dynamodb::{client_for, DynamoDbFactory};

/// Every rule of the task store, through the component.
mod contract {
    #[allow(unused_imports)]
    use super::*;
    pmcp_tasks_tests::contract_suite!(DynamoDbFactory::start().await);
}

/// Running tasks: outcomes, input, cancellation, leases, across replicas.
mod workers {
    #[allow(unused_imports)]
    use super::*;
    pmcp_tasks_tests::worker_contract_suite!(DynamoDbFactory::start().await);
}

/// The `KvBackend` contract, on the backend alone.
mod kv {
    #[allow(unused_imports)]
    use super::*;
    pmcp_tasks_tests::kv_conformance_suite!(DynamoDbFactory::start().await);
}

#[tokio::test]
async fn oversized_values_are_refused_before_any_request() {
    // Nothing listens on this endpoint: a request would fail as unavailable.
    let backend = DynamoDbBackend::new(client_for("http://127.0.0.1:9"), "unused");
    let value = vec![b'x'; 350 * 1024 + 1];
    let err = backend
        .create("p", "i", value.clone(), Vec::new(), None, None, 0)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, KvError::TooLarge(m) if m.contains("358400")),
        "{err:?}"
    );
    let err = backend
        .replace("p", "i", 1, value, Vec::new(), None, 0)
        .await
        .unwrap_err();
    assert!(matches!(err, KvError::TooLarge(_)), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_clear_bounded_error() {
    let backend = DynamoDbBackend::new(client_for("http://127.0.0.1:9"), "tasks");
    let started = Instant::now();
    let err = backend.get("p", "i").await.unwrap_err();
    assert!(
        matches!(&err, KvError::Unavailable { message, source: Some(_) } if message.contains("dynamodb table tasks")),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn expired_items_not_yet_deleted_are_invisible() {
    let factory = DynamoDbFactory::start().await;
    let backend = factory.backend().await;
    let raw = factory.client();
    let table = backend.table().to_owned();
    let clock = ManualClock::starting_now();
    let host = TaskHost::builder()
        .backend(Arc::new(backend))
        .clock(Arc::new(clock.clone()))
        .config({
            let mut config = StoreConfig::default();
            config.max_tasks_per_owner = Some(1);
            config
        })
        .build()
        .await
        .unwrap();
    let id = host
        .create("alice", "m", Some(Duration::from_secs(1)))
        .await
        .unwrap()
        .task
        .task_id;
    clock.advance(Duration::from_secs(5));
    // The item is still in the table (TTL deletion is DynamoDB's, and late) ...
    let scanned = raw.scan().table_name(&table).send().await.unwrap();
    assert!(scanned
        .items()
        .iter()
        .any(|i| i.get("sk").and_then(|v| v.as_s().ok()) == Some(&format!("i#{id}"))));
    // ... but reads, listings and the quota ignore it.
    assert!(matches!(
        host.get("alice", &id).await,
        Err(TaskError::NotFound(_))
    ));
    assert!(host
        .list("alice", None, None)
        .await
        .unwrap()
        .tasks
        .is_empty());
    host.create("alice", "m", None)
        .await
        .expect("the expired task does not count against the quota of 1");
}

#[tokio::test]
async fn bootstrap_is_idempotent_and_enables_ttl() {
    let factory = DynamoDbFactory::start().await;
    let backend = factory.backend().await;
    backend
        .create_table()
        .await
        .expect("a second bootstrap is a no-op");
    let raw = factory.client();
    let table = backend.table().to_owned();
    let ttl = raw
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let description = ttl.time_to_live_description.unwrap();
    assert_eq!(description.attribute_name(), Some("exp"));
    assert_eq!(
        description.time_to_live_status,
        Some(sdk::types::TimeToLiveStatus::Enabled)
    );
    let described = raw
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let keys: Vec<(&str, &sdk::types::KeyType)> = described
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type()))
        .collect();
    assert_eq!(
        keys,
        [
            ("pk", &sdk::types::KeyType::Hash),
            ("sk", &sdk::types::KeyType::Range)
        ]
    );
}

/// A host with `cap` live tasks per owner over `backend`, on `clock`.
async fn capped_host(backend: DynamoDbBackend, clock: &ManualClock, cap: u32) -> TaskHost {
    let mut config = StoreConfig::default();
    config.max_tasks_per_owner = Some(cap);
    TaskHost::builder()
        .backend(Arc::new(backend))
        .clock(Arc::new(clock.clone()))
        .config(config)
        .build()
        .await
        .unwrap()
}

async fn create_with_ttl(host: &TaskHost, ttl: Duration) -> String {
    host.create("alice", "tools/call", Some(ttl))
        .await
        .unwrap()
        .task
        .task_id
}

/// DynamoDB's TTL process deletes expired items with no hook into the
/// store's counter: an owner must not stay locked out once it did.
#[tokio::test]
async fn items_deleted_by_dynamodb_ttl_do_not_lock_the_owner_out() {
    let factory = DynamoDbFactory::start().await;
    let backend = factory.backend().await;
    let table = backend.table().to_owned();
    let clock = ManualClock::starting_now();
    let host = capped_host(backend, &clock, 2).await;
    for _ in 0..2 {
        create_with_ttl(&host, Duration::from_secs(1)).await;
    }
    clock.advance(Duration::from_secs(5));
    // What DynamoDB's TTL does: delete the task items, nothing else.
    let raw = factory.client();
    let items = raw.scan().table_name(&table).send().await.unwrap();
    let mut deleted = 0;
    for item in items.items() {
        let sk = item.get("sk").and_then(|v| v.as_s().ok()).unwrap();
        if sk.starts_with("i#") {
            raw.delete_item()
                .table_name(&table)
                .key("pk", item["pk"].clone())
                .key("sk", item["sk"].clone())
                .send()
                .await
                .unwrap();
            deleted += 1;
        }
    }
    assert_eq!(deleted, 2);
    host.create("alice", "tools/call", None)
        .await
        .expect("the owner holds no task: the quota must let it create");
    create_with_ttl(&host, Duration::from_secs(60)).await;
    let third = host.create("alice", "tools/call", None).await;
    assert!(
        matches!(third, Err(TaskError::QuotaExceeded(_))),
        "the cap still holds: {third:?}"
    );
}

/// DynamoDB applies a Query's `Limit` before its filter: pruning must
/// follow `LastEvaluatedKey` past a first page of live items to find the
/// expired ones behind it.
#[tokio::test]
async fn expired_tasks_behind_a_page_of_live_ones_free_their_quota() {
    let factory = DynamoDbFactory::start().await;
    let clock = ManualClock::starting_now();
    let host = capped_host(factory.backend().await, &clock, 150).await;
    // Task ids sort by creation time: the live tasks come first in the
    // table's order, the expired ones after them.
    for n in 0..150 {
        let ttl = if n < 100 { 3_600 } else { 1 };
        create_with_ttl(&host, Duration::from_secs(ttl)).await;
        clock.advance(Duration::from_millis(1));
    }
    clock.advance(Duration::from_secs(5));
    host.create("alice", "tools/call", None)
        .await
        .expect("50 of 150 tasks expired: the cap has room");
}

/// Random operation sequences agree with a plain model of the rules (a
/// shorter run than in memory: moto takes milliseconds per request).
#[test]
fn the_store_agrees_with_the_model() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let factory = runtime.block_on(DynamoDbFactory::start());
    pmcp_tasks_tests::model::check_against_model(&factory, &runtime, 12, 20);
}

/// A sweep reads what expired, not the whole table: 300 owners hold
/// expiring tasks, 3 of them expired ones.
#[tokio::test]
async fn a_sweep_reads_what_expired_not_the_table() {
    const NOW: u64 = 1_800_000_000_000;
    let factory = DynamoDbFactory::start().await;
    let Some(moto) = factory.moto() else {
        return; // real DynamoDB: no read counter
    };
    let backend = factory.backend().await;
    for n in 0..300u32 {
        let expiry = if n % 100 == 0 {
            NOW + 10
        } else {
            NOW + 3_600_000
        };
        let partition = format!("{n:064x}");
        backend
            .create(
                &partition,
                "item",
                b"v".to_vec(),
                Vec::new(),
                Some(expiry),
                None,
                NOW,
            )
            .await
            .unwrap();
    }
    let before = moto.items_read();
    assert_eq!(backend.sweep(NOW + 20, 1_000).await.unwrap(), 3);
    let read = moto.items_read() - before;
    assert!(
        read <= 10,
        "the sweep read {read} items to find 3 expired ones"
    );
    assert_eq!(backend.sweep(NOW + 20, 1_000).await.unwrap(), 0);
}
