//! Compiles `guest/` to a wasm32-wasip2 component and puts it in OUT_DIR,
//! so the host embeds a default component. A nested cargo builds it into
//! `<target dir>/guest-wasm` (its own directory, so it never waits on the
//! outer build's lock).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ lives in the workspace")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    for watched in ["guest/src", "guest/Cargo.toml", "wit", "Cargo.lock"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    build_guest(&workspace, &[], &out_dir.join("pmcp_tasks_guest.wasm"));
    if env::var_os("CARGO_FEATURE_FAULT_INJECTION_GUEST").is_some() {
        build_guest(
            &workspace,
            &["--features", "fault-injection"],
            &out_dir.join("pmcp_tasks_guest_faults.wasm"),
        );
    }
}

fn build_guest(workspace: &Path, extra_args: &[&str], destination: &Path) {
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), PathBuf::from)
        .join("guest-wasm");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args([
            "build",
            "--release",
            "--package",
            "pmcp-tasks-guest",
            "--target",
            "wasm32-wasip2",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .args(extra_args);
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
    // Whole-program optimization of the guest alone (the host's release
    // profile stays as it is): the guest's code is most of a call's time.
    command
        .env("CARGO_PROFILE_RELEASE_LTO", "fat")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1");
    let status = command
        .status()
        .expect("running cargo to build the guest component");
    assert!(status.success(), "building the guest component failed ({status}); is the wasm32-wasip2 target installed? (rustup target add wasm32-wasip2)");
    let built = target_dir
        .join("wasm32-wasip2")
        .join("release")
        .join("pmcp_tasks_guest.wasm");
    std::fs::copy(&built, destination).unwrap_or_else(|e| {
        panic!(
            "copying {} to {}: {e}",
            built.display(),
            destination.display()
        )
    });
}
