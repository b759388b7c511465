//! Sandbox overhead per operation, timed here with the criterion bench's
//! code (`bench::time_operation`): the three subjects in turns, best of 5,
//! so the ratios compare the same moments of a drifting machine. With
//! `--criterion DIR`, criterion's estimates instead.

use std::path::Path;

use pmcp_tasks_bench::{time_operation, Operation, Payloads, SubjectKind};

use crate::report::OverheadRow;
use crate::Sizes;

/// Times of every operation for every subject, and where they come from.
pub(crate) async fn measure(
    criterion: Option<&Path>,
    sizes: Sizes,
) -> anyhow::Result<(&'static str, Vec<OverheadRow>)> {
    let from_criterion = criterion.and_then(|dir| read_criterion(dir).ok());
    if let Some(rows) = from_criterion {
        return Ok(("criterion (median)", rows));
    }
    if let Some(dir) = criterion {
        eprintln!(
            "no complete criterion estimates under {}; timing the operations here",
            dir.display()
        );
    }
    let payloads = Payloads::new();
    let mut rows = Vec::new();
    for operation in Operation::ALL {
        let mut ns = [f64::INFINITY; 3];
        // Subjects take turns, so a noisy moment hits all of them alike.
        for _ in 0..5 {
            for (best, kind) in ns.iter_mut().zip(SubjectKind::all()) {
                let iters = sizes.samples as u64;
                let elapsed = time_operation(kind, operation, iters, &payloads).await;
                *best = best.min(elapsed.as_nanos() as f64 / iters as f64);
            }
        }
        rows.push(row(operation, ns));
    }
    Ok(("harness (best of 5 interleaved runs)", rows))
}

fn row(operation: Operation, [native_ns, fresh_ns, reuse_ns]: [f64; 3]) -> OverheadRow {
    OverheadRow {
        operation: operation.name(),
        native_ns,
        fresh_ns,
        reuse_ns,
        target_ratio: operation.target_ratio(),
    }
}

/// Reads `<dir>/<operation>/<subject>/new/estimates.json` for every pair.
fn read_criterion(dir: &Path) -> anyhow::Result<Vec<OverheadRow>> {
    let mut rows = Vec::new();
    for operation in Operation::ALL {
        let mut ns = [0.0; 3];
        for (slot, kind) in ns.iter_mut().zip(SubjectKind::all()) {
            let path = dir
                .join(operation.name())
                .join(kind.name())
                .join("new/estimates.json");
            let text = std::fs::read_to_string(&path)?;
            let estimates: serde_json::Value = serde_json::from_str(&text)?;
            *slot = estimates["median"]["point_estimate"]
                .as_f64()
                .ok_or_else(|| anyhow::anyhow!("{} has no median", path.display()))?;
        }
        rows.push(row(operation, ns));
    }
    Ok(rows)
}
