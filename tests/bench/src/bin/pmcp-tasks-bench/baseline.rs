//! Client-library baselines: the ceiling a backend sets, measured in the
//! same run as the store on that backend (see `concurrency.rs`).

use async_trait::async_trait;
use pmcp_tasks_host::TaskStatus;

use crate::concurrency::Mixed;

/// The two requests a backend baseline makes: a plain read and a plain
/// write of a record-sized value.
#[async_trait]
trait RoundTrips: Send + Sync + 'static {
    async fn read(&self, owner: &str, id: &str);
    async fn write(&self, owner: &str, id: &str);
}

/// A backend's ceiling: the mixed workload with the same round trips per
/// operation as the store makes on that backend (get: a read; update: a
/// read, then a write; create: a write), straight through the client
/// library, with none of the store's work.
pub(crate) struct Baseline<R> {
    requests: R,
    next_id: std::sync::atomic::AtomicU64,
}

impl<R> Baseline<R> {
    /// A baseline making its round trips with `requests`.
    pub(crate) fn new(requests: R) -> Self {
        Baseline {
            requests,
            next_id: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl<R: RoundTrips> Mixed for Baseline<R> {
    async fn create(&self, owner: &str) -> String {
        let next = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = next.to_string();
        self.requests.write(owner, &id).await;
        id
    }

    async fn get(&self, owner: &str, id: &str) {
        self.requests.read(owner, id).await
    }

    async fn update(&self, owner: &str, id: &str, _status: TaskStatus) {
        self.requests.read(owner, id).await;
        self.requests.write(owner, id).await
    }
}

/// A value the size of a stored task record.
const RECORD_BYTES: usize = 400;

#[cfg(feature = "redis")]
pub(crate) mod redis {
    //! Redis round trips: `HMGET` to read, a trivial Lua script to write
    //! (the store's writes are scripts too).

    use async_trait::async_trait;
    use redis::aio::ConnectionManager;
    use redis::Script;

    use super::{RoundTrips, RECORD_BYTES};

    pub(crate) struct Requests {
        connection: ConnectionManager,
        script: Script,
        value: Vec<u8>,
    }

    impl Requests {
        pub(crate) async fn connect(url: &str) -> Requests {
            let client = redis::Client::open(url).expect("a redis url");
            let connection = ConnectionManager::new(client)
                .await
                .expect("connecting to the benchmark redis");
            Requests {
                connection,
                script: Script::new(
                    "redis.call('HSET', KEYS[1], 'v', ARGV[1]) \
                     return redis.call('HINCRBY', KEYS[1], 'ver', 1)",
                ),
                value: vec![b'x'; RECORD_BYTES],
            }
        }

        fn key(owner: &str, id: &str) -> String {
            format!("baseline:{{{owner}}}:{id}")
        }
    }

    #[async_trait]
    impl RoundTrips for Requests {
        async fn read(&self, owner: &str, id: &str) {
            let _: (Option<Vec<u8>>, Option<u64>) = redis::cmd("HMGET")
                .arg(Self::key(owner, id))
                .arg(&["v", "ver"][..])
                .query_async(&mut self.connection.clone())
                .await
                .expect("baseline read");
        }

        async fn write(&self, owner: &str, id: &str) {
            let _: u64 = self
                .script
                .key(Self::key(owner, id))
                .arg(&self.value)
                .invoke_async(&mut self.connection.clone())
                .await
                .expect("baseline write");
        }
    }
}

#[cfg(feature = "dynamodb")]
pub(crate) mod dynamodb {
    //! DynamoDB requests: a strongly consistent `GetItem` to read, a
    //! `PutItem` to write, on a table of the store's schema.

    use std::collections::HashMap;

    use async_trait::async_trait;
    use aws_sdk_dynamodb as sdk;
    use pmcp_tasks_host::backend::dynamodb::DynamoDbBackend;
    use sdk::primitives::Blob;
    use sdk::types::AttributeValue;

    use super::{RoundTrips, RECORD_BYTES};

    pub(crate) struct Requests {
        client: sdk::Client,
        table: String,
        value: Blob,
    }

    impl Requests {
        pub(crate) async fn create(client: &sdk::Client) -> Requests {
            let table = "baseline".to_owned();
            DynamoDbBackend::new(client.clone(), table.clone())
                .create_table()
                .await
                .expect("creating the baseline table");
            Requests {
                client: client.clone(),
                table,
                value: Blob::new(vec![b'x'; RECORD_BYTES]),
            }
        }

        fn key(owner: &str, id: &str) -> HashMap<String, AttributeValue> {
            HashMap::from([
                ("pk".to_owned(), AttributeValue::S(owner.to_owned())),
                ("sk".to_owned(), AttributeValue::S(format!("i#{id}"))),
            ])
        }
    }

    #[async_trait]
    impl RoundTrips for Requests {
        async fn read(&self, owner: &str, id: &str) {
            self.client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(owner, id)))
                .consistent_read(true)
                .send()
                .await
                .expect("baseline GetItem");
        }

        async fn write(&self, owner: &str, id: &str) {
            let mut item = Self::key(owner, id);
            item.insert("v".to_owned(), AttributeValue::B(self.value.clone()));
            item.insert("ver".to_owned(), AttributeValue::N("1".to_owned()));
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .expect("baseline PutItem");
        }
    }
}
