//! Replicas of `pmcp-tasks serve` (or `gateway`) as real processes:
//! started on a free loopback port, killed without warning when a test
//! needs a lost worker.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One server process.
pub struct Replica {
    child: Child,
    /// Its MCP endpoint (`http://127.0.0.1:PORT/mcp`).
    pub url: String,
    /// Its `host:port`.
    pub address: String,
    said: Arc<Mutex<Vec<String>>>,
}

impl Replica {
    /// Starts `binary GLOBAL... serve --listen 127.0.0.1:0 SERVE...`
    /// (`global`: backend, cursor secret; `serve`: replica name, lease,
    /// upkeep) and waits until it listens.
    pub fn start(binary: &Path, global: &[&str], serve: &[&str]) -> Replica {
        Replica::start_with_env(binary, global, serve, &[])
    }

    /// Like [`Replica::start`], with extra environment variables.
    pub fn start_with_env(
        binary: &Path,
        global: &[&str],
        serve: &[&str],
        env: &[(&str, &str)],
    ) -> Replica {
        let mut command = Command::new(binary);
        command.envs(env.iter().copied());
        Replica::start_command(command, global, serve)
    }

    /// Like [`Replica::start`], through a prepared `command` (a launcher
    /// that sets limits first, say) whose arguments end with the binary.
    pub fn start_command(command: Command, global: &[&str], serve: &[&str]) -> Replica {
        Replica::start_subcommand(command, global, "serve", serve)
    }

    /// Like [`Replica::start_command`], running `subcommand` (`serve` or
    /// `gateway`, which share the serving options) with `args`.
    pub fn start_subcommand(
        command: Command,
        global: &[&str],
        subcommand: &str,
        args: &[&str],
    ) -> Replica {
        Replica::launch(command, global, subcommand, Some("127.0.0.1:0"), args)
    }

    /// Starts `binary GLOBAL... SUBCOMMAND --worker-only ARGS...` with
    /// `env`: a replica that serves no MCP, only claims and runs queued
    /// tasks (its `url` and `address` are empty). Waits until it works.
    pub fn start_worker_only(
        binary: &Path,
        global: &[&str],
        subcommand: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Replica {
        let mut command = Command::new(binary);
        command.envs(env.iter().copied());
        let mut args = args.to_vec();
        args.push("--worker-only");
        Replica::launch(command, global, subcommand, None, &args)
    }

    fn launch(
        mut command: Command,
        global: &[&str],
        subcommand: &str,
        listen: Option<&str>,
        args: &[&str],
    ) -> Replica {
        command.args(global).arg(subcommand);
        if let Some(listen) = listen {
            command.args(["--listen", listen]);
        }
        let mut child = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting pmcp-tasks {subcommand}: {e}"));
        let stderr = child.stderr.take().expect("stderr");
        let (found, lines) = std::sync::mpsc::channel();
        let said = Arc::new(Mutex::new(Vec::new()));
        let keep = said.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                keep.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(line.clone());
                // A plain line or a JSON log line (`--log-format json`).
                if let Some(rest) = line.split("serving MCP at http://").nth(1) {
                    let address = rest.split('/').next().unwrap_or_default();
                    let _ = found.send(address.to_owned());
                } else if line.contains("working queued tasks only") {
                    let _ = found.send(String::new());
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let address = loop {
            if let Ok(address) = lines.recv_timeout(Duration::from_millis(100)) {
                break address;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("pmcp-tasks {subcommand} exited before it was ready: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "pmcp-tasks {subcommand} did not start"
            );
        };
        let url = if address.is_empty() {
            String::new()
        } else {
            format!("http://{address}/mcp")
        };
        Replica {
            child,
            url,
            address,
            said,
        }
    }

    /// Every line the process wrote to stderr so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.said.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The `host:port` of the metrics listener it announced
    /// (`--metrics-listen`), if any.
    pub fn metrics_address(&self) -> Option<String> {
        self.stderr_lines().iter().find_map(|line| {
            line.split("serving metrics at http://")
                .nth(1)
                .map(|rest| rest.trim_end_matches("/metrics").to_owned())
        })
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Asks the process to stop (SIGTERM), as an orchestrator does, and
    /// waits up to `limit` for it to exit: its exit status, or `None`
    /// when it is still running.
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process at once (SIGKILL): its workers vanish mid-task.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}
