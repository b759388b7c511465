//! The contract suite on one real `redis-server`, plus reconnection.
#![cfg(feature = "redis")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use pmcp_tasks_host::backend::redis::{RedisBackend, RedisBackendError, RedisConfig};
use pmcp_tasks_host::{TaskError, TaskHost};
use pmcp_tasks_tests::redis::{free_port, RedisFactory, RedisServer};

/// Every rule of the task store, through the component.
mod contract {
    #[allow(unused_imports)]
    use super::*;
    pmcp_tasks_tests::contract_suite!(RedisFactory::single());
}

/// Running tasks: outcomes, input, cancellation, leases, across replicas.
mod workers {
    #[allow(unused_imports)]
    use super::*;
    pmcp_tasks_tests::worker_contract_suite!(RedisFactory::single());
}

/// The `KvBackend` contract, on the backend alone.
mod kv {
    #[allow(unused_imports)]
    use super::*;
    pmcp_tasks_tests::kv_conformance_suite!(RedisFactory::single());
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error_naming_it() {
    let port = free_port();
    let config = RedisConfig::from_url(&format!("redis://127.0.0.1:{port}")).unwrap();
    let started = Instant::now();
    let err = RedisBackend::connect(config)
        .await
        .err()
        .expect("nothing listens there");
    assert!(matches!(err, RedisBackendError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "connecting must be bounded"
    );
}

/// A host over Redis with `config`, and a task of alice's.
async fn host_with_a_task(config: RedisConfig) -> (TaskHost, String) {
    let backend = RedisBackend::connect(config).await.unwrap();
    let host = TaskHost::builder()
        .backend(Arc::new(backend))
        .build()
        .await
        .unwrap();
    let id = host
        .create("alice", "tools/call", None)
        .await
        .unwrap()
        .task
        .task_id;
    (host, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_recovers_after_the_server_restarts() {
    let mut redis = RedisFactory::single();
    let (host, id) = host_with_a_task(redis.config("restart")).await;

    let port = redis.servers_mut()[0].port();
    redis.servers_mut()[0].stop();
    let err = host.get("alice", &id).await.unwrap_err();
    assert!(matches!(err, TaskError::Backend { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );

    redis.servers_mut()[0].restart();
    // The connection manager reconnects in the background; the same host
    // serves again within a bounded number of attempts.
    let deadline = Instant::now() + Duration::from_secs(20);
    let task = loop {
        match host.get("alice", &id).await {
            Ok(task) => break task,
            Err(TaskError::Backend { .. }) if Instant::now() < deadline => {
                tokio::task::yield_now().await
            }
            Err(e) => panic!("the host did not recover: {e}"),
        }
    };
    assert_eq!(task.task.task_id, id, "the append-only file kept the task");
    host.create("alice", "tools/call", None)
        .await
        .expect("writes work again");
}

/// A password in the Redis URL names no error: not a call's (which the
/// MCP layer returns to clients) when Redis goes away, nor the connect
/// error an operator's log shows; both still name the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_in_the_url_is_in_no_error() {
    const PASSWORD: &str = "s3cret-pw";
    let port = free_port();
    let mut server = RedisServer::start_with(port, &["--requirepass", PASSWORD]);
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{port}");
    let mut config = RedisConfig::from_url(&url).unwrap();
    config.key_prefix = "secret".into();
    let (host, id) = host_with_a_task(config.clone()).await;
    server.stop();
    let err = host.get("alice", &id).await.unwrap_err();
    let refused = RedisBackend::connect(config).await.map(drop).unwrap_err();
    for shown in [chain(&err), chain(&refused)] {
        assert!(!shown.contains(PASSWORD), "{shown}");
        assert!(shown.contains(&format!("127.0.0.1:{port}")), "{shown}");
    }
}

/// An error, its sources and its `Debug`, as a log line would show them.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut shown = format!("{error} / {error:?}");
    let mut source = error.source();
    while let Some(cause) = source {
        shown = format!("{shown} / {cause} / {cause:?}");
        source = cause.source();
    }
    shown
}

/// Scripts run by hash; a server that lost them (restart, `SCRIPT FLUSH`,
/// failover) gets them again and the call still succeeds, also a create,
/// whose sweep hint and script share one pipelined round trip.
#[tokio::test]
async fn a_server_without_the_scripts_is_given_them_again() {
    let redis = RedisFactory::single();
    let (host, id) = host_with_a_task(redis.config("flushed")).await;
    let flushed = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &redis.servers()[0].port().to_string(),
            "SCRIPT",
            "FLUSH",
        ])
        .output()
        .expect("running redis-cli");
    assert!(flushed.status.success(), "{flushed:?}");
    let created = host.create("alice", "tools/call", None).await;
    let created = created.expect("the create reloads its script");
    assert!(
        created.task.ttl.is_some(),
        "a create with an expiry: the hinted path"
    );
    host.update_status(
        "alice",
        &id,
        pmcp_tasks_host::TaskStatus::InputRequired,
        None,
    )
    .await
    .expect("the replace reloads its script");
}

/// Redis deletes keys on its own clock; the store decides expiry on the
/// component's. A host clock behind Redis's must not lose live tasks.
#[tokio::test]
async fn a_redis_clock_ahead_of_the_hosts_loses_no_live_task() {
    use pmcp_tasks_host::clock::ManualClock;
    let factory = RedisFactory::single();
    let clock = ManualClock::starting_now();
    clock.set(clock_now() - Duration::from_secs(3_600));
    let host = TaskHost::builder()
        .backend(pmcp_tasks_tests::BackendFactory::fresh(&factory).await)
        .clock(Arc::new(clock.clone()))
        .build()
        .await
        .unwrap();
    let id = host
        .create("alice", "tools/call", Some(Duration::from_secs(600)))
        .await
        .unwrap()
        .task
        .task_id;
    host.get("alice", &id)
        .await
        .expect("live for the store: still there");
    let listed = host.list("alice", None, None).await.unwrap();
    assert_eq!(listed.tasks.len(), 1);
    clock.advance(Duration::from_secs(601));
    assert!(matches!(
        host.get("alice", &id).await,
        Err(TaskError::NotFound(_))
    ));
}

fn clock_now() -> Duration {
    use pmcp_tasks_host::clock::{Clock, SystemClock};
    SystemClock.now()
}

/// A malformed stored version is corrupt data: an internal error that says
/// so and keeps the backend's error as its source, never "retry".
#[tokio::test]
async fn corrupt_stored_data_is_an_internal_error_not_a_retry() {
    use pmcp_tasks_host::backend::KvError;
    let factory = RedisFactory::single();
    let config = factory.config("corrupt");
    let url = config.urls[0].clone();
    let (host, id) = host_with_a_task(config).await;
    let client = redis::Client::open(url).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("corrupt:*:t:{id}"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let _: () = redis::cmd("HSET")
        .arg(&keys[0])
        .arg("ver")
        .arg("not-a-number")
        .query_async(&mut raw)
        .await
        .unwrap();
    let err = host.get("alice", &id).await.unwrap_err();
    assert!(!err.is_retryable(), "{err:?}");
    assert_eq!(err.json_rpc_code(), pmcp_tasks_host::INTERNAL_ERROR);
    let source = std::error::Error::source(&err).expect("the backend's error is kept");
    assert!(
        matches!(source.downcast_ref::<KvError>(), Some(KvError::Corrupt(_))),
        "{source:?}"
    );
}

/// Commands the server has processed so far (`INFO stats`).
async fn commands_processed(raw: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(raw)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("total_commands_processed:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("INFO stats reports total_commands_processed")
}

/// A sweep's cost follows what expired, not how many owners ever existed:
/// 10 000 partitions hold expiring items, 10 of them expired ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sweep_visits_what_expired_not_every_owner() {
    use pmcp_tasks_host::backend::KvBackend;
    const NOW: u64 = 1_800_000_000_000;
    let factory = RedisFactory::single();
    let config = factory.config("sweepcost");
    let url = config.urls[0].clone();
    let backend = Arc::new(RedisBackend::connect(config).await.unwrap());
    let writes = (0..10_000u32).map(|n| {
        let backend = backend.clone();
        async move {
            let expiry = if n % 1_000 == 0 {
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
    });
    futures_join_all(writes).await;
    let client = redis::Client::open(url).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let before = commands_processed(&mut raw).await;
    assert_eq!(backend.sweep(NOW + 20, 1_000).await.unwrap(), 10);
    // Commands run inside scripts count too: about ten per swept partition
    // (the old registry-wide sweep ran two for every one of the 10 000).
    let spent = commands_processed(&mut raw).await - before - 1;
    assert!(
        spent <= 10 * 15 + 10,
        "the sweep ran {spent} commands for 10 expired items"
    );
    assert_eq!(
        backend.sweep(NOW + 20, 1_000).await.unwrap(),
        0,
        "nothing left"
    );
}

/// Runs futures 500 at a time.
async fn futures_join_all<F: std::future::Future<Output = ()> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) {
    let mut running = tokio::task::JoinSet::new();
    for future in futures {
        if running.len() >= 500 {
            running.join_next().await.unwrap().unwrap();
        }
        running.spawn(future);
    }
    while let Some(done) = running.join_next().await {
        done.unwrap();
    }
}

/// Random operation sequences agree with a plain model of the rules (a
/// shorter run than in memory).
#[test]
fn the_store_agrees_with_the_model() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let factory = RedisFactory::single();
    pmcp_tasks_tests::model::check_against_model(&factory, &runtime, 32, 30);
}

/// `rediss://` reaches a TLS-only port; certificates are verified unless
/// the URL says `#insecure`.
#[tokio::test]
async fn rediss_urls_talk_tls() {
    use pmcp_tasks_tests::redis::{free_port, RedisServer};
    let dir = std::env::temp_dir().join(format!("pmcp-tasks-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl makes a self-signed certificate");
    assert!(made.success());
    let tls_port = free_port();
    let (cert_arg, key_arg) = (cert.display().to_string(), key.display().to_string());
    let _server = RedisServer::start_with(
        free_port(),
        &[
            "--tls-port",
            &tls_port.to_string(),
            "--tls-cert-file",
            &cert_arg,
            "--tls-key-file",
            &key_arg,
            "--tls-auth-clients",
            "no",
        ],
    );
    let url = format!("rediss://127.0.0.1:{tls_port}/#insecure");
    let backend = pmcp_tasks_host::backend::connect(&url)
        .await
        .expect("a TLS connection");
    let host = TaskHost::builder().backend(backend).build().await.unwrap();
    let id = host
        .create("alice", "tools/call", None)
        .await
        .unwrap()
        .task
        .task_id;
    host.get("alice", &id).await.expect("read back over TLS");
    // Verified by default: a self-signed certificate is refused, saying so.
    let verified = format!("rediss://127.0.0.1:{tls_port}");
    let refused = pmcp_tasks_host::backend::connect(&verified).await;
    assert!(refused.is_err(), "an untrusted certificate was accepted");
    let _ = std::fs::remove_dir_all(&dir);
}
