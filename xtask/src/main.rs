//! `cargo xtask <task>`: the project's developer tasks.
//!
//! * `ci`: installs every Debian package the tests need, then runs fmt, clippy, doc and the whole test suite
//!   (including the IPVS tests inside a qemu VM). This is the README's test command and what `.ci/run` calls.
//! * `deps`: only the package installation step of `ci`.
//! * `vm-run [--timeout SECS] [--no-build] SCRIPT`: boots Debian's kernel (with IPVS) under qemu and runs
//!   SCRIPT with busybox `sh`; the project's release binaries are in `/opt/project/bin/`, Debian's ipvsadm in
//!   `/usr/sbin/ipvsadm`. Exits with the script's status. See `vm.rs`.
//! * `vm-test [FILTER]`: builds the IPVS kernel tests (feature `vm-tests`) and runs them inside one VM.
//! * `vm-bench [ROUNDS]`: runs the IPVS bench (ours vs Debian's ipvsadm) inside one VM.
//! * `ha-lab [...]`: the HA lab (firewall failover with keepalived + conntrackd and with ours); see `halab/`.

mod checks;
mod deps;
mod halab;
mod util;
mod vm;

use anyhow::{Result, bail};

fn main() {
    if let Err(e) = run() {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(task) = args.first() else {
        bail!("usage: cargo xtask <ci|deps|vm-run|vm-test|vm-bench|ha-lab>");
    };
    match task.as_str() {
        "ci" => ci(),
        "deps" => deps::install(),
        "vm-run" => vm::vm_run(&args[1..]),
        "vm-test" => vm::vm_test(&args[1..]),
        "vm-bench" => vm::vm_bench(&args[1..]),
        "ha-lab" => halab::run(&args[1..]),
        other => {
            bail!("unknown task `{other}`; tasks: ci, deps, vm-run, vm-test, vm-bench, ha-lab")
        }
    }
}

fn ci() -> Result<()> {
    let started = std::time::Instant::now();
    deps::install()?;
    util::step(
        "cargo fmt --check",
        &["cargo", "fmt", "--all", "--", "--check"],
        &[],
    )?;
    util::step(
        "cargo clippy",
        &[
            "cargo",
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    // Targets behind features that `--workspace` leaves off: the ctnl conversions of ctsync-proto and the
    // IPVS tests that only run inside the VM.
    util::step(
        "cargo clippy (feature-gated targets)",
        &[
            "cargo",
            "clippy",
            "-p",
            "ctsync-proto",
            "-p",
            "ipvs-nl",
            "-p",
            "cli",
            "--all-targets",
            "--features",
            "ctsync-proto/ctnl,ipvs-nl/vm-tests,cli/vm-tests",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    checks::netlink_single_version()?;
    util::step(
        "cargo doc",
        &["cargo", "doc", "--workspace", "--no-deps", "--locked"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    util::step(
        "cargo check (fuzz targets)",
        &[
            "cargo",
            "check",
            "--manifest-path",
            "fuzz/Cargo.toml",
            "--bins",
        ],
        &[("RUSTC_BOOTSTRAP", "1")],
    )?;
    util::step(
        "cargo test",
        &["cargo", "test", "--workspace", "--locked"],
        &[],
    )?;
    util::step(
        "cargo test (ctsync-proto with its ctnl feature)",
        &[
            "cargo",
            "test",
            "-p",
            "ctsync-proto",
            "--features",
            "ctnl",
            "--locked",
        ],
        &[],
    )?;
    util::step("IPVS tests in the VM", &["cargo", "xtask", "vm-test"], &[])?;
    eprintln!("xtask ci: all steps passed in {:.0?}", started.elapsed());
    Ok(())
}

/// The workspace root (xtask lives one level below it).
pub(crate) fn workspace_root() -> std::path::PathBuf {
    let here = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(std::path::PathBuf::from).unwrap_or(here)
}
