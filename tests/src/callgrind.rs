//! Instruction counts from callgrind: a process started with
//! [`command`] is counted between [`InstructionCounter::zero`] and
//! [`InstructionCounter::count`]. Unlike CPU time on a shared VM, which
//! drifts by a third between two runs of the same code, the count repeats
//! run to run, so it shows what a change saves.

use std::ffi::OsStr;
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

/// A command that runs `program` under callgrind, its counts written into
/// `out_dir` (read them with an [`InstructionCounter`]).
pub fn command(out_dir: &Path, program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new("valgrind");
    command
        .args(["--quiet", "--tool=callgrind"])
        .arg(format!(
            "--callgrind-out-file={}",
            out_dir.join("callgrind.%p").display()
        ))
        .arg(program);
    command
}

/// A directory for one run's counts, removed with what is in it on drop.
#[derive(Debug)]
pub struct CountsDir(PathBuf);

impl CountsDir {
    /// A new directory named after `purpose` and this process.
    pub fn create(purpose: &str) -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(format!("pmcp-tasks-{purpose}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(CountsDir(dir))
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for CountsDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Counts the instructions of one process started with [`command`].
#[derive(Debug, Clone)]
pub struct InstructionCounter {
    pid: u32,
    dir: PathBuf,
}

impl InstructionCounter {
    /// The counter of process `pid`, started with [`command`]`(dir, ..)`.
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
