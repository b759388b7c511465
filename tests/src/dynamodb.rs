//! A real DynamoDB-compatible HTTP server for the suite: moto's server mode
//! on a free loopback port, one table per `fresh()` backend, killed when
//! dropped. `tests/run-all.sh` installs moto into `target/dynamodb-emulator`.
//!
//! With `PMCP_TEST_REAL_DYNAMODB=<table prefix>` set, the same tests run
//! against real DynamoDB instead (credentials and region from the AWS
//! environment). They create tables named `<prefix>-<pid>-<n>` and leave
//! them behind; never set in CI.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodb as sdk;
use pmcp_tasks_host::backend::dynamodb::{client_from_env, default_timeouts, DynamoDbBackend};
use pmcp_tasks_host::backend::KvBackend;

use crate::BackendFactory;

/// The Python that has moto: `$PMCP_MOTO_PYTHON`, else the virtual
/// environment `tests/run-all.sh` installs.
fn moto_python() -> PathBuf {
    std::env::var_os("PMCP_MOTO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/dynamodb-emulator/bin/python")
        })
}

/// One moto server process.
pub struct MotoServer {
    child: Child,
    port: u16,
}

impl MotoServer {
    /// Starts moto on a free loopback port and waits until it accepts connections.
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let python = moto_python();
        // tests/moto_server.py: moto's server with per-request atomicity.
        let launcher = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("moto_server.py");
        let child = Command::new(&python)
            .arg(&launcher)
            .args(["127.0.0.1", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "starting moto with {} ({e}); tests/run-all.sh installs it",
                    python.display()
                )
            });
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not start listening on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        MotoServer { child, port }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Items all Queries and Scans have read so far (their `ScannedCount`,
    /// summed by `tests/moto_server.py`).
    pub fn items_read(&self) -> u64 {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("moto is listening");
        write!(
            stream,
            "GET /__pmcp/items-read HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
        body.trim().parse().expect("a count")
    }

    /// A client for this server with dummy credentials.
    fn client(&self) -> sdk::Client {
        client_for(&self.endpoint())
    }
}

/// A client for `endpoint` with dummy credentials and the backend's timeouts.
pub fn client_for(endpoint: &str) -> sdk::Client {
    let config = sdk::Config::builder()
        .behavior_version(sdk::config::BehaviorVersion::latest())
        .region(sdk::config::Region::new("us-east-1"))
        .credentials_provider(sdk::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "pmcp-tasks-tests",
        ))
        .endpoint_url(endpoint)
        .timeout_config(default_timeouts())
        .build();
    sdk::Client::from_conf(config)
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A suite backend factory over moto (or real DynamoDB, see the module
/// docs): each `fresh()` gets a new table.
pub struct DynamoDbFactory {
    client: sdk::Client,
    table_prefix: String,
    next_table: AtomicU32,
    _server: Option<MotoServer>,
}

impl DynamoDbFactory {
    /// Starts a moto server, or uses real DynamoDB when asked to.
    pub async fn start() -> Self {
        let (client, table_prefix, server) = match std::env::var("PMCP_TEST_REAL_DYNAMODB") {
            Ok(prefix) => (
                client_from_env(None, None).await,
                format!("{prefix}-{}", std::process::id()),
                None,
            ),
            Err(_) => {
                let server = MotoServer::start();
                (server.client(), "tasks".to_owned(), Some(server))
            }
        };
        DynamoDbFactory {
            client,
            table_prefix,
            next_table: AtomicU32::new(0),
            _server: server,
        }
    }

    /// The moto server, when the factory runs one.
    pub fn moto(&self) -> Option<&MotoServer> {
        self._server.as_ref()
    }

    /// A client for the DynamoDB the factory uses.
    pub fn client(&self) -> &sdk::Client {
        &self.client
    }

    /// A backend over a new, bootstrapped table.
    pub async fn backend(&self) -> DynamoDbBackend {
        let table = format!(
            "{}-{}",
            self.table_prefix,
            self.next_table.fetch_add(1, Ordering::SeqCst)
        );
        let backend = DynamoDbBackend::new(self.client.clone(), table);
        backend
            .create_table()
            .await
            .expect("bootstrapping the test table");
        backend
    }
}

#[async_trait]
impl BackendFactory for DynamoDbFactory {
    async fn fresh(&self) -> Arc<dyn KvBackend> {
        Arc::new(self.backend().await)
    }
}
