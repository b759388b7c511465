//! The wasmtime configuration choices, each measured in the same run
//! against the default: fuel instead of epoch interruption, and instances
//! mapped on demand instead of pooled. (Component-model async is not
//! compiled into the host's wasmtime at all: nothing to switch.) Each variant is a host compiled for itself; the operations
//! run on the in-memory backend, subjects taking turns (best of 5).

use std::sync::Arc;

use pmcp_tasks_bench::{time_on, HostSubject, Operation, Payloads};
use pmcp_tasks_host::backend::InMemoryBackend;
use pmcp_tasks_host::{EngineTuning, InstanceStrategy, Interruption};

use crate::report::EngineRow;
use crate::Sizes;

/// The variants measured: the default and one change from it each.
fn variants() -> Vec<(&'static str, EngineTuning)> {
    let default = EngineTuning::default();
    let mut fuel = default;
    fuel.interruption = Interruption::Fuel;
    let mut on_demand = default;
    on_demand.pooling = false;
    vec![
        ("default: pooling, epoch interruption", default),
        ("fuel instead of epoch", fuel),
        ("on-demand instances (no pooling)", on_demand),
    ]
}

/// What each variant is timed on: reused-instance reads and writes, and a
/// call on a fresh instance (where the allocator matters).
const MEASURED: [(Operation, bool); 4] = [
    (Operation::Get, false),
    (Operation::UpdateStatus, false),
    (Operation::ListPage, false),
    (Operation::Get, true),
];

/// Times every variant on every measured operation.
pub(crate) async fn measure(sizes: Sizes) -> Vec<EngineRow> {
    let payloads = Payloads::new();
    let iters = sizes.samples as u64;
    let variants = variants();
    let mut best = vec![[f64::INFINITY; MEASURED.len()]; variants.len()];
    for _ in 0..5 {
        for (slot, (_, tuning)) in best.iter_mut().zip(&variants) {
            for (ns, (operation, fresh)) in slot.iter_mut().zip(MEASURED) {
                let strategy = if fresh {
                    InstanceStrategy::FreshPerCall
                } else {
                    InstanceStrategy::default()
                };
                let backend = Arc::new(InMemoryBackend::new());
                let subject = HostSubject::tuned(backend, strategy, *tuning).await;
                let elapsed = time_on(&subject, operation, iters, &payloads).await;
                *ns = ns.min(elapsed.as_nanos() as f64 / iters as f64);
            }
        }
    }
    variants
        .iter()
        .zip(best)
        .map(|((name, _), ns)| EngineRow {
            variant: name,
            get_ns: ns[0],
            update_status_ns: ns[1],
            list_page_ns: ns[2],
            fresh_get_ns: ns[3],
        })
        .collect()
}
