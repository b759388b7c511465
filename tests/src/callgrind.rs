//! Instruction counts from callgrind: a process started under
//! [`launcher`] is counted between [`InstructionCounter::zero`] and
//! [`InstructionCounter::count`]. Unlike CPU time on a shared VM, which
//! drifts by a third between two runs of the same code, the count repeats
//! run to run, so it shows what a change saves.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Whether valgrind can be run here.
pub fn available() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The command prefix that runs a program under callgrind, its counts
/// written into `out_dir` (read them with an [`InstructionCounter`]).
pub fn launcher(out_dir: &Path) -> Vec<String> {
    vec![
        "valgrind".to_owned(),
        "--quiet".to_owned(),
        "--tool=callgrind".to_owned(),
        format!(
            "--callgrind-out-file={}",
            out_dir.join("callgrind.%p").display()
        ),
    ]
}

/// Counts the instructions of one process started under [`launcher`].
#[derive(Debug, Clone)]
pub struct InstructionCounter {
    pid: u32,
    dir: PathBuf,
}

impl InstructionCounter {
    /// The counter of process `pid`, launched with [`launcher`]`(dir)`.
    pub fn new(pid: u32, dir: &Path) -> Self {
        InstructionCounter {
            pid,
            dir: dir.to_owned(),
        }
    }

    /// Starts counting from zero.
    pub fn zero(&self) {
        self.control("-z");
    }

    /// The instructions executed since [`InstructionCounter::zero`].
    pub fn count(&self) -> Option<u64> {
        self.control("-d");
        // Each dump is `callgrind.<pid>.<n>`; the last one is this count.
        let prefix = format!("callgrind.{}.", self.pid);
        let (_, newest) = std::fs::read_dir(&self.dir)
            .ok()?
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                let n: u32 = name.strip_prefix(&prefix)?.parse().ok()?;
                Some((n, self.dir.join(name)))
            })
            .max()?;
        let text = std::fs::read_to_string(newest).ok()?;
        text.lines()
            .find_map(|line| {
                line.strip_prefix("summary:")
                    .or(line.strip_prefix("totals:"))
            })
            .and_then(|count| count.trim().parse().ok())
    }

    /// Sends callgrind's control `command` to the process and waits for it
    /// (callgrind_control reaches it even while it waits in a system call).
    fn control(&self, command: &str) {
        let _ = Command::new("callgrind_control")
            .args([command, &self.pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
