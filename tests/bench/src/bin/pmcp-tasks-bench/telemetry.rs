//! What operators' telemetry costs the protocol path: `tasks/get` through
//! rmcp against a `DurableTaskServer`, with every span exported over OTLP
//! (to a receiver in this process) and every metric recorded in a
//! Prometheus recorder, against both off, in short alternating turns:
//! each figure is the median over turns of a mode's throughput divided by
//! the off turn just before it, so the drift of this VM's speed (it moves
//! by half from one minute to the next) falls on both sides of a ratio.
//!
//! Both are installed once for the process (a subscriber and a recorder
//! are global) behind one switch: off, the span filter says no and the
//! recorder hands out no-op handles, which is what a process without
//! them pays, plus one atomic load per span and metric.

use std::sync::atomic::{AtomicBool, Ordering};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use pmcp_tasks_mcp::{OtlpTraces, OtlpTracing, SECONDS_BUCKETS};
use pmcp_tasks_tests::otlp::OtlpReceiver;
use pmcp_tasks_tests::rmcp_client::connect;
use tracing_subscriber::filter::DynFilterFn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::protocol::{durable, throughput};
use crate::report::TelemetryRow;
use crate::{Backends, Sizes};

/// Whether every span is exported now.
static TRACES: AtomicBool = AtomicBool::new(false);
/// Whether a tenth of the traces is exported now.
static SAMPLED: AtomicBool = AtomicBool::new(false);
/// Whether metrics are recorded now.
static METRICS: AtomicBool = AtomicBool::new(false);

/// What is on in a turn: all traces, a tenth of them, metrics.
const MODES: [(bool, bool, bool); 5] = [
    (false, false, false),
    (true, false, false),
    (false, false, true),
    (true, false, true),
    (false, true, true),
];

/// Turns of each mode per backend.
const TURNS: usize = 8;

/// A recorder that records only while [`METRICS`].
struct Switched(PrometheusRecorder);

impl Recorder for Switched {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        if METRICS.load(Ordering::Relaxed) {
            self.0.register_counter(key, metadata)
        } else {
            Counter::noop()
        }
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        if METRICS.load(Ordering::Relaxed) {
            self.0.register_gauge(key, metadata)
        } else {
            Gauge::noop()
        }
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        if METRICS.load(Ordering::Relaxed) {
            self.0.register_histogram(key, metadata)
        } else {
            Histogram::noop()
        }
    }
}

/// The middle value (the mean of the two middle ones for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The installed telemetry: the exporter to flush, the recorder to scrape.
struct Installed {
    traces: OtlpTraces,
    sampled: OtlpTraces,
    scrape: PrometheusHandle,
}

/// Installs the switched subscriber and recorder (off).
async fn install(receiver: &OtlpReceiver) -> anyhow::Result<Installed> {
    let all = OtlpTracing::new(receiver.endpoint.clone());
    let tenth = all.clone().with_sample_ratio(0.1);
    let traces = tokio::task::spawn_blocking(move || all.start()).await??;
    let sampled = tokio::task::spawn_blocking(move || tenth.start()).await??;
    // Asked per span, not cached per callsite: the switches flip.
    let traces_on = DynFilterFn::new(|_, _| TRACES.load(Ordering::Relaxed));
    let sampled_on = DynFilterFn::new(|_, _| SAMPLED.load(Ordering::Relaxed));
    tracing_subscriber::registry()
        .with(traces.layer().with_filter(traces_on))
        .with(sampled.layer().with_filter(sampled_on))
        .try_init()?;
    let recorder = PrometheusBuilder::new()
        .set_buckets(&SECONDS_BUCKETS)?
        .build_recorder();
    let scrape = recorder.handle();
    metrics::set_global_recorder(Switched(recorder))?;
    Ok(Installed {
        traces,
        sampled,
        scrape,
    })
}

/// Throughput off and on for the in-memory and Redis backends.
pub(crate) async fn measure(
    backends: &Backends,
    sizes: Sizes,
) -> anyhow::Result<Vec<TelemetryRow>> {
    let receiver = OtlpReceiver::keeping(1_000).await;
    let installed = install(&receiver).await?;
    let callers = sizes.redis_callers;
    let mut rows = Vec::new();
    for (name, factory) in backends.list() {
        if name == "dynamodb" {
            continue;
        }
        let (server, id) = durable(factory).await;
        let client = connect(server).await;
        // A turn lasts a third of the other scenarios' runs.
        let turn = Sizes {
            run_for: sizes.run_for / 3,
            ..sizes
        };
        let mut figures: [Vec<f64>; MODES.len()] = Default::default();
        for _ in 0..TURNS {
            for (mode, (traces, sampled, metrics)) in MODES.into_iter().enumerate() {
                TRACES.store(traces, Ordering::Relaxed);
                SAMPLED.store(sampled, Ordering::Relaxed);
                METRICS.store(metrics, Ordering::Relaxed);
                let (per_second, _) = throughput(&client, &id, callers, turn).await;
                if metrics {
                    // What a scrape does, once per turn.
                    let _ = installed.scrape.render();
                }
                figures[mode].push(per_second);
            }
        }
        for switch in [&TRACES, &SAMPLED, &METRICS] {
            switch.store(false, Ordering::Relaxed);
        }
        let _ = client.cancel().await;
        let ratio = |mode: usize| {
            median(
                figures[mode]
                    .iter()
                    .zip(&figures[0])
                    .map(|(on, off)| on / off)
                    .collect(),
            )
        };
        rows.push(TelemetryRow {
            backend: name.to_owned(),
            callers,
            off_calls_per_second: median(figures[0].clone()),
            traces_over_off: ratio(1),
            metrics_over_off: ratio(2),
            both_over_off: ratio(3),
            both_sampled_over_off: ratio(4),
        });
    }
    let Installed {
        traces, sampled, ..
    } = installed;
    tokio::task::spawn_blocking(move || traces.shutdown().and(sampled.shutdown())).await??;
    anyhow::ensure!(
        receiver.spans().iter().any(|s| s.name == "tasks/get"),
        "the 'on' turns exported no tasks/get span"
    );
    Ok(rows)
}
