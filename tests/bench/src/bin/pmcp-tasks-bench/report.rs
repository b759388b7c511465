//! The report: every figure of one run, as JSON and as a markdown table.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::concurrency::BASELINE;

/// Every figure of one run of the harness.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// When the run started (UTC, ISO 8601).
    pub measured_at: String,
    /// `full` or `smoke` (tiny sizes, figures meaningless).
    pub mode: &'static str,
    /// What ran it.
    pub machine: Machine,
    /// Where the per-operation figures come from (`criterion` or `harness`).
    pub overhead_source: &'static str,
    /// Sandbox overhead per operation.
    pub overhead: Vec<OverheadRow>,
    /// Sandbox overhead per operation, counted (empty without valgrind).
    pub counted: Vec<CountedRow>,
    /// Latency by number of live tasks.
    pub scaling: Vec<ScalingRow>,
    /// Throughput by number of callers.
    pub concurrency: Vec<ConcurrencyRow>,
    /// Redis's work per operation, counted (empty without valgrind).
    pub redis_work: Vec<RedisWorkRow>,
    /// Resident memory with many calls in flight.
    pub memory: Vec<MemoryRow>,
    /// `tasks/get` through rmcp: our store beside rmcp's TaskManager.
    pub protocol: Vec<ProtocolRow>,
    /// The protocol over Streamable HTTP: `serve` (one replica, two
    /// behind a round-robin proxy) beside rmcp's TaskManager.
    pub protocol_http: Vec<ProtocolHttpRow>,
    /// The same with operators' telemetry (traces exported, metrics
    /// recorded) off and on, in turns.
    pub telemetry: Vec<TelemetryRow>,
    /// The engine configuration choices, side by side.
    pub engine: Vec<EngineRow>,
    /// Storing and reading back results of megabytes.
    pub payloads: Vec<PayloadRow>,
    /// Store writes per progress report, by report rate.
    pub progress: Vec<ProgressRow>,
    /// Our host against the Rust peer (`pmcp-tasks` 0.2.0), per operation
    /// and live-task count, from `pmcp-tasks-peer-bench` (`--peer`).
    pub peer: Vec<PeerRow>,
    /// The same two stores under the mixed workload on Redis.
    pub peer_mixed: Vec<PeerMixedRow>,
}

/// What `pmcp-tasks-peer-bench` writes (`tests/peer`, its own workspace).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PeerRun {
    /// Per operation and count.
    pub peer: Vec<PeerRow>,
    /// The mixed workload.
    pub peer_mixed: Vec<PeerMixedRow>,
}

/// One operation at one live-task count: our median against the peer's.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PeerRow {
    /// `memory` or `redis`.
    pub backend: String,
    /// The operation timed.
    pub operation: String,
    /// Live tasks of the owner operated on.
    pub tasks: usize,
    /// Our median, ns.
    pub ours_ns: f64,
    /// The peer's median, ns.
    pub peer_ns: f64,
    /// In memory, of ours: one call's crossing into the sandbox and back
    /// (a refused `get`), ns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_ns: Option<f64>,
    /// Samples behind each median (the fewer of the two stores').
    pub samples: usize,
}

/// The mixed workload's throughput, ours against the peer's.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PeerMixedRow {
    /// The backend.
    pub backend: String,
    /// Concurrent callers.
    pub callers: usize,
    /// Ours, operations per second.
    pub ours_ops_per_second: f64,
    /// The peer's, operations per second.
    pub peer_ops_per_second: f64,
}

/// Storing and reading back one result size on one backend (medians).
#[derive(Debug, Serialize)]
pub(crate) struct PayloadRow {
    /// The backend.
    pub backend: &'static str,
    /// The result's size.
    pub result_bytes: usize,
    /// Create and complete with the result, in ms.
    pub store_ms: f64,
    /// Read the result back, in ms.
    pub read_ms: f64,
}

/// What a tool's progress reports at one rate cost the store.
#[derive(Debug, Serialize)]
pub(crate) struct ProgressRow {
    /// The rate the tool reported at (asked; `reports` says how many it made).
    pub reports_per_second: u64,
    /// Reports made.
    pub reports: u64,
    /// Store writes of the task while it ran, its outcome included.
    pub store_writes: u64,
    /// Writes per report.
    pub writes_per_report: f64,
}

/// One engine configuration's times (ns per call, in-memory backend).
#[derive(Debug, Serialize)]
pub(crate) struct EngineRow {
    /// What differs from the default.
    pub variant: &'static str,
    /// `get`, reused instance.
    pub get_ns: f64,
    /// `update-status`, reused instance.
    pub update_status_ns: f64,
    /// A list page of 50, reused instance.
    pub list_page_ns: f64,
    /// `get` on a fresh instance.
    pub fresh_get_ns: f64,
}

/// `tasks/get` throughput through rmcp for one task store.
#[derive(Debug, Serialize)]
pub(crate) struct ProtocolRow {
    /// What answers the calls.
    pub subject: String,
    /// Concurrent callers.
    pub callers: usize,
    /// Calls per second.
    pub calls_per_second: f64,
    /// Calls made.
    pub calls: u64,
}

impl ProtocolRow {
    /// A row.
    pub(crate) fn new(subject: &str, callers: usize, calls_per_second: f64, calls: u64) -> Self {
        ProtocolRow {
            subject: subject.to_owned(),
            callers,
            calls_per_second,
            calls,
        }
    }
}

/// One operation over Streamable HTTP against one subject: an rmcp client
/// session (reqwest) on loopback TCP.
#[derive(Debug, Serialize)]
pub(crate) struct ProtocolHttpRow {
    /// What answers the calls.
    pub subject: String,
    /// `tasks/get` or a task-creating `tools/call`.
    pub operation: &'static str,
    /// `streamable-http`.
    pub transport: &'static str,
    /// Server replicas behind the endpoint.
    pub replicas: usize,
    /// Concurrent callers (requests in flight on the client session).
    pub callers: usize,
    /// Calls per second.
    pub calls_per_second: f64,
    /// Median latency seen by the client, microseconds.
    pub p50_us: f64,
    /// 99th percentile latency seen by the client, microseconds.
    pub p99_us: f64,
    /// Calls made.
    pub calls: u64,
}

/// `tasks/get` through rmcp on one backend, telemetry off and on: medians
/// over alternating turns, each ratio taken against the off turn before.
#[derive(Debug, Serialize)]
pub(crate) struct TelemetryRow {
    /// The backend.
    pub backend: String,
    /// Concurrent callers.
    pub callers: usize,
    /// Calls per second with no span exported and no metric recorded.
    pub off_calls_per_second: f64,
    /// Throughput with every span exported over OTLP, as a share of off.
    pub traces_over_off: f64,
    /// Throughput with every metric recorded, as a share of off.
    pub metrics_over_off: f64,
    /// Throughput with both, as a share of off.
    pub both_over_off: f64,
    /// Throughput with metrics and a tenth of the traces exported
    /// (`--otlp-sample-ratio 0.1`), as a share of off.
    pub both_sampled_over_off: f64,
}

/// The machine a report was measured on.
#[derive(Debug, Serialize)]
pub(crate) struct Machine {
    /// CPU model.
    pub cpu: String,
    /// Logical CPUs available to the process.
    pub cpus: usize,
    /// Total memory, in MiB.
    pub memory_mib: u64,
    /// Kernel release.
    pub kernel: String,
}

/// One operation, native and through the component.
#[derive(Debug, Serialize)]
pub(crate) struct OverheadRow {
    /// Operation name.
    pub operation: &'static str,
    /// Domain library natively, ns per operation.
    pub native_ns: f64,
    /// Component, a fresh instance per call, ns per operation.
    pub fresh_ns: f64,
    /// Component, warm instances reused, ns per operation.
    pub reuse_ns: f64,
    /// Largest acceptable `reuse_ns / native_ns` (the default strategy),
    /// if the operation has a target.
    pub target_ratio: Option<f64>,
}

/// One operation's instructions per call, native and through the
/// component (a reused instance), counted by callgrind.
#[derive(Debug, Serialize)]
pub(crate) struct CountedRow {
    /// Operation name.
    pub operation: &'static str,
    /// Calls counted per subject.
    pub calls: u64,
    /// Domain library natively, instructions per call.
    pub native_instructions: f64,
    /// Component, reused instance, instructions per call.
    pub component_instructions: f64,
    /// The timed target the ratio is read against, if any.
    pub target_ratio: Option<f64>,
}

/// One operation at one task count on one backend.
#[derive(Debug, Serialize)]
pub(crate) struct ScalingRow {
    /// Backend name.
    pub backend: &'static str,
    /// Operation name.
    pub operation: &'static str,
    /// Live tasks of the measured owner.
    pub tasks: usize,
    /// Other owners, each with one task.
    pub other_owners: usize,
    /// Median latency, ns.
    pub median_ns: f64,
}

/// Throughput of the mixed workload.
#[derive(Debug, Serialize)]
pub(crate) struct ConcurrencyRow {
    /// Backend name.
    pub backend: &'static str,
    /// What served the calls: `component-fresh`, `component-reuse` or
    /// the client-library baseline.
    pub subject: &'static str,
    /// Concurrent callers.
    pub callers: usize,
    /// Operations per second.
    pub ops_per_sec: f64,
    /// Where the CPU went (Redis rows only).
    pub cpu: Option<CpuSplit>,
}

/// Redis's work per operation of the mixed workload, counted by callgrind.
#[derive(Debug, Serialize)]
pub(crate) struct RedisWorkRow {
    /// `component-reuse`, the client-library baseline, or `floor` (the
    /// cheapest requests Redis answers).
    pub subject: &'static str,
    /// `mixed` (the workload), one of its operations alone (`get`,
    /// `update-status`, `create`), or a floor request (`PING`, an empty
    /// `EVALSHA`).
    pub workload: &'static str,
    /// Concurrent callers.
    pub callers: usize,
    /// Operations counted.
    pub ops: u64,
    /// Instructions the Redis process executed per operation.
    pub instructions_per_op: f64,
}

/// CPU time per operation of the benchmark process and of the server,
/// from `/proc` (utime + stime), and whether each was pinned to a core of
/// its own.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct CpuSplit {
    /// Microseconds of the benchmark process's CPU per operation.
    pub client_us_per_op: f64,
    /// Microseconds of the server's CPU per operation.
    pub server_us_per_op: f64,
    /// Whether the server and the process ran on separate pinned cores.
    pub pinned: bool,
}

/// Resident memory of the process with calls parked in the backend.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct MemoryRow {
    /// Instance strategy.
    pub strategy: String,
    /// Calls in flight at the reading.
    pub in_flight: usize,
    /// Resident set before the calls, KiB.
    pub rss_before_kib: u64,
    /// Resident set with every call in flight, KiB.
    pub rss_in_flight_kib: u64,
    /// Resident set once they have all returned, KiB (what stays resident:
    /// idle instances, slots kept resident for the next instantiation).
    pub rss_after_kib: u64,
    /// Peak resident set of the process so far, KiB.
    pub peak_rss_kib: u64,
}

impl MemoryRow {
    /// Resident memory added per in-flight call (one instance each), KiB.
    pub(crate) fn per_instance_kib(&self) -> f64 {
        self.rss_in_flight_kib.saturating_sub(self.rss_before_kib) as f64 / self.in_flight as f64
    }
}

/// "holds" or "misses", for a target check.
fn verdict(holds: bool) -> &'static str {
    if holds {
        "holds"
    } else {
        "**misses**"
    }
}

/// KiB as MiB with one decimal.
fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// A duration in ns, in the unit that reads best.
fn time(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.1} µs", ns / 1e3)
    }
}

/// A ratio, as `1/N` when it is below 0.1 (ours hundreds of times faster
/// reads better so than as 0.00).
fn ratio(ratio: f64) -> String {
    if ratio < 0.1 {
        format!("1/{:.0}", 1.0 / ratio)
    } else {
        format!("{ratio:.2}")
    }
}

impl Report {
    /// The report as markdown: one table per scenario, targets checked.
    pub(crate) fn markdown(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "# pmcp-tasks benchmarks\n\nMeasured {} ({} mode) on {} × {}, {} MiB, Linux {}.\n",
            self.measured_at, self.mode, m.cpus, m.cpu, m.memory_mib, m.kernel
        );
        if !self.overhead.is_empty() {
            self.overhead_table(&mut out);
        }
        if !self.counted.is_empty() {
            self.counted_table(&mut out);
        }
        if !self.scaling.is_empty() {
            self.scaling_table(&mut out);
        }
        if !self.concurrency.is_empty() {
            self.concurrency_table(&mut out);
        }
        if !self.redis_work.is_empty() {
            self.redis_work_table(&mut out);
        }
        if !self.protocol.is_empty() {
            self.protocol_table(&mut out);
        }
        if !self.protocol_http.is_empty() {
            self.protocol_http_table(&mut out);
        }
        if !self.peer.is_empty() {
            self.peer_table(&mut out);
        }
        if !self.telemetry.is_empty() {
            self.telemetry_table(&mut out);
        }
        if !self.engine.is_empty() {
            self.engine_table(&mut out);
        }
        if !self.memory.is_empty() {
            self.memory_table(&mut out);
        }
        if !self.payloads.is_empty() || !self.progress.is_empty() {
            self.payload_tables(&mut out);
        }
        out
    }

    fn payload_tables(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "## Real payloads\n\n\
             A task with a result of one text block (kept in parts past one backend item): \
             create and complete it, then read the result back (medians).\n\n\
             | backend | result | store | read back |\n|---|---:|---:|---:|"
        );
        for row in &self.payloads {
            let _ = writeln!(
                out,
                "| {} | {:.1} MiB | {:.1} ms | {:.1} ms |",
                row.backend,
                row.result_bytes as f64 / f64::from(1 << 20),
                row.store_ms,
                row.read_ms
            );
        }
        let _ = writeln!(
            out,
            "\nA tool reporting progress at a rate (coalesced: at most one write per 100 ms):\n\n\
             | reports per second | reports | store writes (outcome included) | writes per report |\n\
             |---:|---:|---:|---:|"
        );
        for row in &self.progress {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.4} |",
                row.reports_per_second, row.reports, row.store_writes, row.writes_per_report
            );
        }
        out.push('\n');
    }

    fn overhead_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "## Sandbox overhead (in-memory backend; figures from {})\n\n\
             | operation | native | component, fresh instance | component, reused instance | added per call (reused) | ratio fresh | ratio reused | target | reused vs target |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---|",
            self.overhead_source
        );
        for row in &self.overhead {
            let fresh = row.fresh_ns / row.native_ns;
            let reuse = row.reuse_ns / row.native_ns;
            let (target, versus) = match row.target_ratio {
                Some(target) => (format!("≤ {target}"), verdict(reuse <= target)),
                None => ("—".to_owned(), "the crossing alone"),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {fresh:.1} | {reuse:.1} | {target} | {versus} |",
                row.operation,
                time(row.native_ns),
                time(row.fresh_ns),
                time(row.reuse_ns),
                time(row.reuse_ns - row.native_ns),
            );
        }
        out.push('\n');
    }

    fn counted_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "## Sandbox overhead, counted (in-memory backend; instructions per call, callgrind: repeatable)\n\n\
             The instructions the whole process executes per call (guest, wasmtime, host, backend), \
             {} calls of each operation per subject, setup and compiling excluded; the component \
             runs without the pooling allocator (valgrind cannot reserve its address space), which \
             a reused instance does not touch between calls.\n\n\
             | operation | native | component, reused instance | added per call | ratio | timed target |\n\
             |---|---:|---:|---:|---:|---:|",
            self.counted.first().map_or(0, |row| row.calls)
        );
        for row in &self.counted {
            let (native, component) = (row.native_instructions, row.component_instructions);
            let target = row
                .target_ratio
                .map_or_else(|| "—".to_owned(), |target| format!("≤ {target}"));
            let _ = writeln!(
                out,
                "| {} | {native:.0} | {component:.0} | {:.0} | {:.2} | {target} |",
                row.operation,
                component - native,
                component / native,
            );
        }
        out.push('\n');
    }

    fn engine_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "## Engine configuration (in-memory backend, best of 5 interleaved runs; vs the default)\n\n\
             | variant | get | update-status | list page | get, fresh instance |\n\
             |---|---:|---:|---:|---:|"
        );
        let Some(default) = self.engine.first() else {
            return;
        };
        let cell = |ns: f64, base: f64| format!("{} ({:.2})", time(ns), ns / base);
        for row in &self.engine {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                row.variant,
                cell(row.get_ns, default.get_ns),
                cell(row.update_status_ns, default.update_status_ns),
                cell(row.list_page_ns, default.list_page_ns),
                cell(row.fresh_get_ns, default.fresh_get_ns),
            );
        }
        out.push('\n');
    }

    fn scaling_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "## Scaling with task count (one caller, reused instances; median latency)\n\n\
             | backend | operation | tasks of the owner | other owners | median | vs smallest | target ≤ 1.5 |\n\
             |---|---|---:|---:|---:|---:|---|"
        );
        for row in &self.scaling {
            let smallest = self
                .scaling
                .iter()
                .filter(|r| r.backend == row.backend && r.operation == row.operation)
                .min_by_key(|r| r.tasks)
                .map_or(row.median_ns, |r| r.median_ns);
            let ratio = row.median_ns / smallest;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {ratio:.2} | {} |",
                row.backend,
                row.operation,
                row.tasks,
                row.other_owners,
                time(row.median_ns),
                verdict(ratio <= 1.5)
            );
        }
        out.push('\n');
    }

    fn concurrency_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "## Concurrency (mixed: 60% get, 30% update-status, 10% create)\n\n\
             | backend | subject | callers | operations/s | process CPU / op | server CPU / op | cores |\n\
             |---|---|---:|---:|---:|---:|---|"
        );
        for row in &self.concurrency {
            let (client, server, cores) = match row.cpu {
                Some(cpu) => (
                    format!("{:.1} µs", cpu.client_us_per_op),
                    format!("{:.1} µs", cpu.server_us_per_op),
                    if cpu.pinned { "pinned apart" } else { "shared" },
                ),
                None => (String::new(), String::new(), ""),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} | {client} | {server} | {cores} |",
                row.backend, row.subject, row.callers, row.ops_per_sec
            );
        }
        for backend in ["redis", "dynamodb"] {
            for pinned in [false, true] {
                let find = |subject: &str| {
                    self.concurrency
                        .iter()
                        .filter(|r| r.backend == backend && r.subject == subject)
                        .filter(|r| r.cpu.is_some_and(|c| c.pinned) == pinned)
                        .max_by_key(|r| r.callers)
                };
                if let (Some(host), Some(base)) = (find("component-reuse"), find(BASELINE)) {
                    let ratio = host.ops_per_sec / base.ops_per_sec;
                    let _ = writeln!(
                        out,
                        "\n{backend}, {} callers{}: component / {BASELINE} = {ratio:.2} (target ≥ 0.7: {}).",
                        host.callers,
                        if pinned { ", server and process pinned to separate cores" } else { "" },
                        verdict(ratio >= 0.7)
                    );
                }
            }
        }
        out.push('\n');
    }

    fn redis_work_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "## Redis's work per operation (the mixed workload, each of its operations alone, and the floor; instructions of the Redis process, callgrind: repeatable)\n\n\
             | subject | workload | callers | operations | Redis instructions / op |\n\
             |---|---|---:|---:|---:|"
        );
        for row in &self.redis_work {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.0} |",
                row.subject, row.workload, row.callers, row.ops, row.instructions_per_op
            );
        }
        let find = |subject: &str| {
            let mut rows = self.redis_work.iter();
            rows.find(|r| r.subject == subject && r.workload == "mixed")
        };
        if let (Some(host), Some(base)) = (find("component-reuse"), find(BASELINE)) {
            let _ = writeln!(
                out,
                "\ncomponent / {BASELINE}: {:.2}× the Redis work per operation.",
                host.instructions_per_op / base.instructions_per_op
            );
        }
        out.push('\n');
    }

    fn protocol_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "## tasks/get through rmcp (client and server in process, one completed task)\n\n\
             | store | callers | calls/s | calls |\n\
             |---|---:|---:|---:|"
        );
        for row in &self.protocol {
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {} |",
                row.subject, row.callers, row.calls_per_second, row.calls
            );
        }
        out.push('\n');
    }

    fn protocol_http_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "## The protocol over Streamable HTTP (rmcp's HTTP client, one session, loopback TCP)\n\n\
             | subject | operation | replicas | callers | calls/s | p50 µs | p99 µs | calls |\n\
             |---|---|---:|---:|---:|---:|---:|---:|"
        );
        for row in &self.protocol_http {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {} |",
                row.subject,
                row.operation,
                row.replicas,
                row.callers,
                row.calls_per_second,
                row.p50_us,
                row.p99_us,
                row.calls
            );
        }
        out.push('\n');
    }

    fn peer_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "## Against the Rust peer (`pmcp-tasks` 0.2.0's `GenericTaskStore`; one caller, medians, stores in turns)\n\n\
             | backend | operation | owner's tasks | ours | peer | ours / peer | of ours, the sandbox crossing | samples |\n\
             |---|---|---:|---:|---:|---:|---:|---:|"
        );
        for row in &self.peer {
            let crossing = row.sandbox_ns.map_or_else(|| "—".to_owned(), time);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                row.backend,
                row.operation,
                row.tasks,
                time(row.ours_ns),
                time(row.peer_ns),
                ratio(row.ours_ns / row.peer_ns),
                crossing,
                row.samples
            );
        }
        for row in &self.peer_mixed {
            let _ = writeln!(
                out,
                "\nMixed workload on {} ({} callers: 60 % get, 30 % status change, 10 % create): \
                 ours {:.0} ops/s, peer {:.0} ops/s ({:.2}).",
                row.backend,
                row.callers,
                row.ours_ops_per_second,
                row.peer_ops_per_second,
                row.ours_ops_per_second / row.peer_ops_per_second
            );
        }
        out.push('\n');
    }

    fn telemetry_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "## Telemetry cost: tasks/get through rmcp with traces exported (OTLP) and metrics recorded, off vs on in alternating turns (medians)\n\n\
             | backend | callers | calls/s off | traces / off | metrics / off | both / off | both, traces sampled 1/10 / off |\n\
             |---|---:|---:|---:|---:|---:|---:|"
        );
        for row in &self.telemetry {
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
                row.backend,
                row.callers,
                row.off_calls_per_second,
                row.traces_over_off,
                row.metrics_over_off,
                row.both_over_off,
                row.both_sampled_over_off
            );
        }
        out.push('\n');
    }

    fn memory_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "## Memory (calls parked in the backend, one instance each)\n\n\
             | strategy | in flight | RSS before | RSS in flight | per instance | RSS after | peak RSS |\n\
             |---|---:|---:|---:|---:|---:|---:|"
        );
        for row in &self.memory {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.0} KiB | {} | {} |",
                row.strategy,
                row.in_flight,
                mib(row.rss_before_kib),
                mib(row.rss_in_flight_kib),
                row.per_instance_kib(),
                mib(row.rss_after_kib),
                mib(row.peak_rss_kib)
            );
        }
    }
}
