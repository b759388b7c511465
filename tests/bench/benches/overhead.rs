//! Sandbox overhead per store operation: the domain library natively vs the
//! host running the component, both over the same in-memory backend, with
//! each instance strategy. `pmcp-tasks-bench` reads the estimates criterion
//! writes and reports the ratios.
//!
//! Every sample starts from a fresh backend, so operations that consume a
//! task (complete, cancel) or add one (create) measure the same state each
//! time.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use pmcp_tasks_bench::{time_operation, Operation, Payloads, SubjectKind};

fn overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let payloads = Payloads::new();
    for operation in Operation::ALL {
        let mut group = c.benchmark_group(operation.name());
        for kind in SubjectKind::all() {
            group.bench_function(kind.name(), |b| {
                b.to_async(&runtime)
                    .iter_custom(|iters| time_operation(kind, operation, iters, &payloads))
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .configure_from_args();
    targets = overhead
}
criterion_main!(benches);
