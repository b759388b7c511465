//! `pmcp-tasks serve` over stdio as a real process, driven with raw bytes:
//! what a careless or hostile client writes, one line at a time.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::Duration;

use serde_json::{json, Value};

/// The longest a response may take to come.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// One server process on pipes.
pub struct StdioServer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    next_id: u64,
}

impl StdioServer {
    /// Starts `binary ARGS... serve SERVE...` with piped stdin and stdout.
    pub fn start(binary: &Path, global: &[&str], serve: &[&str]) -> StdioServer {
        let mut child = Command::new(binary)
            .args(global)
            .arg("serve")
            .args(serve)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting pmcp-tasks serve");
        let stdout = child.stdout.take().expect("stdout");
        let (send, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        StdioServer {
            stdin: child.stdin.take(),
            child,
            lines,
            next_id: 1_000_000,
        }
    }

    /// Starts a server and opens a 2025-11-25 session on it.
    pub fn start_2025(binary: &Path, global: &[&str]) -> StdioServer {
        let mut server = StdioServer::start(binary, global, &[]);
        let init = server.request(
            "initialize",
            json!({
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "pmcp-tasks-tests", "version": "0"},
            }),
        );
        assert!(init.get("result").is_some(), "initialize: {init}");
        server.send(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        server
    }

    /// Writes `bytes` and a newline.
    pub fn send(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("writing to the server");
        stdin.write_all(b"\n").expect("writing to the server");
        stdin.flush().expect("writing to the server");
    }

    /// The next message the server writes; panics after 30 s without one.
    pub fn receive(&mut self) -> Value {
        self.try_receive(ANSWER_WITHIN)
            .unwrap_or_else(|| panic!("no answer within {ANSWER_WITHIN:?}"))
    }

    /// The next message within `wait`, if one comes.
    pub fn try_receive(&mut self, wait: Duration) -> Option<Value> {
        match self.lines.recv_timeout(wait) {
            Ok(line) => Some(serde_json::from_str(&line).unwrap_or_else(|e| {
                panic!("the server wrote a line that is not JSON ({e}): {line}")
            })),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => panic!("the server closed its output"),
        }
    }

    /// The answer to the message with `id`, skipping notifications and
    /// answers to other ids.
    pub fn answer_to(&mut self, id: &Value) -> Value {
        loop {
            let message = self.receive();
            if message.get("id") == Some(id) && message.get("method").is_none() {
                return message;
            }
        }
    }

    /// Sends a request with a fresh id and returns its whole response.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = json!(self.next_id);
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send(message.to_string().as_bytes());
        self.answer_to(&id)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Closes stdin and waits for the process to end; its exit status.
    pub fn finish(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        self.child.wait().expect("waiting for the server")
    }
}

impl Drop for StdioServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
