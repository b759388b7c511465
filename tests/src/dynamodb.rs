//! A real DynamoDB-compatible HTTP server for the suite: moto's server mode
//! on a free loopback port, one table per `fresh()` backend, killed when
//! dropped. `tests/run-all.sh` installs moto into `target/dynamodb-emulator`.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pmcp_tasks_host::backend::dynamodb::{default_timeouts, sdk, DynamoDbBackend};
use pmcp_tasks_host::backend::KvBackend;

use crate::BackendFactory;

/// The moto server: `$PMCP_MOTO_SERVER`, else the one `tests/run-all.sh` installs.
fn moto_server_binary() -> PathBuf {
    std::env::var_os("PMCP_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/dynamodb-emulator/bin/moto_server")
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
        let binary = moto_server_binary();
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "starting {} ({e}); tests/run-all.sh installs it",
                    binary.display()
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

    /// A client for this server with dummy credentials.
    pub fn client(&self) -> sdk::Client {
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

/// A suite backend factory over moto: each `fresh()` gets a new table.
pub struct DynamoDbFactory {
    server: MotoServer,
    next_table: AtomicU32,
}

impl DynamoDbFactory {
    /// Starts a moto server.
    pub fn start() -> Self {
        DynamoDbFactory {
            server: MotoServer::start(),
            next_table: AtomicU32::new(0),
        }
    }

    /// The server, for tests that need a raw client.
    pub fn server(&self) -> &MotoServer {
        &self.server
    }

    /// A backend over a new, bootstrapped table.
    pub async fn backend(&self) -> DynamoDbBackend {
        let table = format!("tasks-{}", self.next_table.fetch_add(1, Ordering::SeqCst));
        let backend = DynamoDbBackend::new(self.server.client(), table);
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
