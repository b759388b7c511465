//! Builds the fault-injection component into OUT_DIR with a nested cargo
//! (its own target directory, so it never waits on the outer build's lock).

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .ancestors()
        .nth(2)
        .expect("tests/artifacts lives two levels below the workspace")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    // cargo tracks every file of these trees itself.
    for watched in ["guest", "wit", "Cargo.lock"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), PathBuf::from)
        .join("test-components");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&workspace)
        .args([
            "build",
            "--locked",
            "--release",
            "--package",
            "pmcp-tasks-guest",
        ])
        .args(["--target", "wasm32-wasip2", "--features", "fault-injection"])
        .arg("--target-dir")
        .arg(&target_dir);
    // The outer build's flags and wrappers (clippy, coverage) are for the host.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CLIPPY_ARGS",
    ] {
        command.env_remove(var);
    }
    let status = command
        .status()
        .expect("running cargo to build the fault-injection component");
    assert!(
        status.success(),
        "building the fault-injection component failed ({status}); is the wasm32-wasip2 target installed? (rustup target add wasm32-wasip2)"
    );
    let built = target_dir.join("wasm32-wasip2/release/pmcp_tasks_guest.wasm");
    let destination = out_dir.join("pmcp_tasks_guest_faults.wasm");
    std::fs::copy(&built, &destination).unwrap_or_else(|e| {
        panic!(
            "copying {} to {}: {e}",
            built.display(),
            destination.display()
        )
    });
}
