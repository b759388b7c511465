//! Real `redis-server` processes for the suite: one server or a 3-master
//! cluster, on free loopback ports, data in a temporary directory, killed
//! when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pmcp_tasks_host::backend::redis::{RedisBackend, RedisConfig};
use pmcp_tasks_host::backend::KvBackend;

use crate::callgrind::{self, InstructionCounter};
use crate::BackendFactory;

/// How long a server may take to start or a cluster to form.
const STARTUP: Duration = Duration::from_secs(20);

/// The arguments of a server that keeps data in memory only.
const VOLATILE: &[&str] = &["--appendonly", "no"];

/// One `redis-server` child process.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    extra_args: Vec<String>,
    /// Where callgrind writes the counts of a server run under it.
    counts_dir: Option<PathBuf>,
}

impl RedisServer {
    /// Starts a standalone server with an append-only file (so a restart keeps data).
    pub fn start() -> Self {
        Self::start_with(
            free_port(),
            &["--appendonly", "yes", "--appendfsync", "always"],
        )
    }

    /// Starts a standalone server that keeps data in memory only, as a
    /// cache-style deployment would (benchmarks: no fsync in the figures).
    pub fn start_volatile() -> Self {
        Self::start_with(free_port(), VOLATILE)
    }

    /// Starts a volatile server under callgrind, writing its counts into
    /// `out_dir` (see [`RedisServer::instruction_counter`]); much slower.
    pub fn start_counted(out_dir: &std::path::Path) -> Self {
        Self::launch(free_port(), VOLATILE, Some(out_dir.to_owned()))
    }

    /// The instruction counter of a server started with
    /// [`RedisServer::start_counted`], while it runs.
    pub fn instruction_counter(&self) -> Option<InstructionCounter> {
        Some(InstructionCounter::new(
            self.pid()?,
            self.counts_dir.as_ref()?,
        ))
    }

    /// Starts a server on `port` with extra `redis-server` arguments.
    pub fn start_with(port: u16, extra_args: &[&str]) -> Self {
        Self::launch(port, extra_args, None)
    }

    fn launch(port: u16, extra_args: &[&str], counts_dir: Option<PathBuf>) -> Self {
        let dir =
            std::env::temp_dir().join(format!("pmcp-tasks-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the redis data directory");
        let mut server = RedisServer {
            child: None,
            port,
            dir,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            counts_dir,
        };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// Every key and every byte stored under it (string values, hash
    /// fields and values, set, sorted-set and list members), for tests
    /// that look for what must never be stored.
    pub async fn everything_stored(&self) -> Vec<Vec<u8>> {
        let client = redis::Client::open(self.url()).expect("a client");
        let mut connection = client
            .get_multiplexed_async_connection()
            .await
            .expect("connected");
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut connection)
            .await
            .expect("KEYS");
        let mut stored = Vec::new();
        for key in keys {
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query_async(&mut connection)
                .await
                .expect("TYPE");
            let mut command = match kind.as_str() {
                "string" => redis::cmd("GET"),
                "hash" => redis::cmd("HGETALL"),
                "set" => redis::cmd("SMEMBERS"),
                "zset" => {
                    let mut c = redis::cmd("ZRANGE");
                    c.arg(&key).arg(0).arg(-1).arg("WITHSCORES");
                    c
                }
                "list" => {
                    let mut c = redis::cmd("LRANGE");
                    c.arg(&key).arg(0).arg(-1);
                    c
                }
                other => panic!("a key of type {other}"),
            };
            if matches!(kind.as_str(), "string" | "hash" | "set") {
                command.arg(&key);
            }
            let values: Vec<Vec<u8>> = match kind.as_str() {
                "string" => vec![command.query_async(&mut connection).await.expect("GET")],
                _ => command
                    .query_async(&mut connection)
                    .await
                    .expect("the values"),
            };
            stored.push(key);
            stored.extend(values);
        }
        stored
    }

    /// Stops the server gracefully (it flushes its append-only file).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + STARTUP;
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data directory.
    pub fn restart(&mut self) {
        self.stop();
        let mut command = match &self.counts_dir {
            Some(out_dir) => callgrind::command(out_dir, "redis-server"),
            None => Command::new("redis-server"),
        };
        let child = command
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--loglevel", "warning", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting redis-server (is it installed? tests/run-all.sh installs it)");
        self.child = Some(child);
        wait_until(|| ping(self.port), "redis-server to answer PING");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait_until(mut ready: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + STARTUP;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        // A server with a password answers, refusing: up all the same.
        && (&reply == b"+PONG\r\n" || &reply == b"-NOAUTH")
}

/// A free loopback port whose cluster bus port (+10000) is free too.
pub fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("binding a loopback port")
            .local_addr()
            .unwrap()
            .port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// A suite backend factory over real Redis: each `fresh()` gets its own key prefix.
pub struct RedisFactory {
    servers: Vec<RedisServer>,
    cluster: bool,
    next_prefix: AtomicU32,
}

impl RedisFactory {
    /// One standalone server.
    pub fn single() -> Self {
        Self::standalone(RedisServer::start())
    }

    /// One standalone server without persistence (benchmarks).
    pub fn volatile() -> Self {
        Self::standalone(RedisServer::start_volatile())
    }

    /// One volatile server under callgrind, its counts in `out_dir`
    /// (benchmarks: Redis's work per operation).
    pub fn counted(out_dir: &std::path::Path) -> Self {
        Self::standalone(RedisServer::start_counted(out_dir))
    }

    fn standalone(server: RedisServer) -> Self {
        RedisFactory {
            servers: vec![server],
            cluster: false,
            next_prefix: AtomicU32::new(0),
        }
    }

    /// A Redis Cluster of three masters.
    pub fn cluster() -> Self {
        let cluster_args = [
            "--cluster-enabled",
            "yes",
            "--cluster-node-timeout",
            "5000",
            "--appendonly",
            "no",
        ];
        let servers: Vec<RedisServer> = (0..3)
            .map(|_| RedisServer::start_with(free_port(), &cluster_args))
            .collect();
        let nodes: Vec<String> = servers
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port()))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .expect("running redis-cli --cluster create");
        assert!(created.success(), "redis-cli --cluster create failed");
        for server in &servers {
            wait_until(
                || cluster_ok(server.port()),
                "the cluster to report cluster_state:ok",
            );
        }
        RedisFactory {
            servers,
            cluster: true,
            next_prefix: AtomicU32::new(0),
        }
    }

    /// The configuration for a backend on these servers.
    pub fn config(&self, key_prefix: &str) -> RedisConfig {
        let mut config = RedisConfig::default();
        config.urls = self.servers.iter().map(RedisServer::url).collect();
        config.cluster = self.cluster;
        config.key_prefix = key_prefix.to_owned();
        config
    }

    /// The servers (to read their process ids).
    pub fn servers(&self) -> &[RedisServer] {
        &self.servers
    }

    /// The servers, to stop and restart them.
    pub fn servers_mut(&mut self) -> &mut [RedisServer] {
        &mut self.servers
    }
}

fn cluster_ok(port: u16) -> bool {
    Command::new("redis-cli")
        .args(["-p", &port.to_string(), "cluster", "info"])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok"))
}

#[async_trait]
impl BackendFactory for RedisFactory {
    async fn fresh(&self) -> Arc<dyn KvBackend> {
        let prefix = format!("suite{}", self.next_prefix.fetch_add(1, Ordering::SeqCst));
        Arc::new(
            RedisBackend::connect(self.config(&prefix))
                .await
                .expect("connecting to the test redis"),
        )
    }
}
