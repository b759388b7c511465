//! Sandbox overhead, counted: the instructions one call of each operation
//! executes natively and through the component (a reused instance), each
//! subject in a process of its own under callgrind. Timed ratios on this
//! VM move by a tenth between runs; the count repeats, so it shows what a
//! change to the guest or the crossing saves, and on which side.
//!
//! The parent starts `pmcp-tasks-bench --count-probe SUBJECT CALLS` under
//! callgrind and steps it over stdin/stdout: for each operation the probe
//! creates the tasks it needs, says `ready`, waits for `go` (the parent
//! zeroes the count), runs the calls, says `done` and waits while the
//! parent reads the count. Setup and compiling stay out of the figures.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::Arc;

use anyhow::{bail, Context};
use pmcp_tasks_bench::{
    prepare, run_prepared, HostSubject, NativeSubject, Operation, Payloads, Subject, SubjectKind,
};
use pmcp_tasks_host::backend::InMemoryBackend;
use pmcp_tasks_host::{EngineTuning, InstanceStrategy};
use pmcp_tasks_tests::callgrind::{self, InstructionCounter};

use crate::report::CountedRow;
use crate::Sizes;

/// The internal flag that runs a probe.
pub(crate) const PROBE_FLAG: &str = "--count-probe";

/// The two subjects counted: native, and the component on a reused
/// instance (one, never retired, so no count includes an instantiation).
const SUBJECTS: [SubjectKind; 2] = [
    SubjectKind::Native,
    SubjectKind::Component(InstanceStrategy::Reuse {
        max_idle: 1,
        max_uses: u32::MAX,
    }),
];

/// Instructions per call of every operation for both subjects; no rows
/// when valgrind is not installed.
pub(crate) async fn measure(sizes: Sizes) -> anyhow::Result<Vec<CountedRow>> {
    if !callgrind::available() {
        eprintln!("valgrind is not installed: the sandbox overhead is not counted");
        return Ok(Vec::new());
    }
    let calls = sizes.counted_calls;
    let counts = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let dir = callgrind::CountsDir::create("sandbox-counts")
            .context("creating the callgrind output directory")?;
        let [native, component] = SUBJECTS.map(|kind| count_subject(kind, calls, dir.path()));
        Ok((native?, component?))
    })
    .await??;
    let (native, component) = counts;
    Ok(Operation::ALL
        .into_iter()
        .zip(native.into_iter().zip(component))
        .map(|(operation, (native, component))| CountedRow {
            operation: operation.name(),
            calls,
            native_instructions: native,
            component_instructions: component,
            target_ratio: operation.target_ratio(),
        })
        .collect())
}

/// Runs the probe of `kind` under callgrind: instructions per call of
/// each operation, in [`Operation::ALL`]'s order.
fn count_subject(kind: SubjectKind, calls: u64, dir: &std::path::Path) -> anyhow::Result<Vec<f64>> {
    let harness = std::env::current_exe().context("finding the harness executable")?;
    let mut probe = callgrind::command(dir, harness)
        .args([PROBE_FLAG, kind.name(), &calls.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the probe under valgrind")?;
    let counter = InstructionCounter::new(probe.id(), dir);
    let to_probe = probe.stdin.take().context("the probe's stdin")?;
    let from_probe = BufReader::new(probe.stdout.take().context("the probe's stdout")?);
    let counted = step_through(kind, calls, &counter, to_probe, from_probe);
    if counted.is_err() {
        // Not left running its remaining operations under valgrind.
        let _ = probe.kill();
    }
    probe.wait().context("waiting for the probe")?;
    counted
}

/// Steps a started probe through every operation, counting each.
fn step_through(
    kind: SubjectKind,
    calls: u64,
    counter: &InstructionCounter,
    mut to_probe: impl Write,
    mut from_probe: impl BufRead,
) -> anyhow::Result<Vec<f64>> {
    let mut expect = |word: &str| -> anyhow::Result<()> {
        let mut line = String::new();
        from_probe.read_line(&mut line)?;
        if !line.starts_with(word) {
            bail!("the {} probe said {line:?}, not {word:?}", kind.name());
        }
        Ok(())
    };
    let mut per_call = Vec::new();
    for operation in Operation::ALL {
        expect("ready")?;
        counter.zero();
        writeln!(to_probe, "go")?;
        expect("done")?;
        let count = counter
            .count()
            .with_context(|| format!("reading the count of {}", operation.name()))?;
        per_call.push(count as f64 / calls as f64);
        writeln!(to_probe, "next")?;
    }
    Ok(per_call)
}

/// The probe's side (run under callgrind by [`measure`]): every operation
/// `calls` times on a fresh owner of one subject, stepped by the parent.
pub(crate) async fn probe(subject: &str, calls: u64) -> anyhow::Result<()> {
    let backend = Arc::new(InMemoryBackend::new());
    let subject: Box<dyn Subject> = match SUBJECTS.iter().find(|kind| kind.name() == subject) {
        Some(SubjectKind::Native) => Box::new(NativeSubject::new(backend)),
        Some(&SubjectKind::Component(strategy)) => {
            // Valgrind cannot reserve the pooling allocator's address space;
            // a reused instance does not touch the pool between calls.
            let mut tuning = EngineTuning::default();
            tuning.pooling = false;
            Box::new(HostSubject::tuned(backend, strategy, tuning).await)
        }
        None => bail!("no counted subject is called {subject:?}"),
    };
    let payloads = Payloads::new();
    let mut from_parent = std::io::stdin().lock();
    let mut wait = || -> anyhow::Result<()> {
        if from_parent.read_line(&mut String::new())? == 0 {
            bail!("the harness stopped stepping the probe");
        }
        Ok(())
    };
    // The instance exists before the first counted call.
    subject.refused_get("warm-up").await;
    for operation in Operation::ALL {
        let owner = format!("counted-{}", operation.name());
        let prepared = prepare(&*subject, &owner, operation, calls, &payloads).await;
        println!("ready");
        wait()?;
        run_prepared(&*subject, &prepared, &payloads).await;
        println!("done");
        wait()?;
    }
    Ok(())
}
