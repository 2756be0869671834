//! `cargo xtask <task>`: the project's developer tasks. `cargo xtask --help` lists them (the [`USAGE`]
//! text); each task lives in its own module, with one line of dispatch in [`run`].
//!
//! `ci` is always strict, with or without `CI=true`: after installing the packages it checks that this
//! machine can run every test (root, peer tools on `PATH`, kernel features, the VM's kernel: see
//! `checks::preflight`), and every step runs with `TESTKIT_STRICT=1`, so a test whose prerequisite is
//! missing fails instead of skipping (`testkit`'s docs).

mod checks;
mod ct_diff;
mod ctsync_loss;
mod deps;
mod halab;
mod lvs_events;
mod lvsbench;
mod util;
mod vm;
mod vrrp_chaos;

use anyhow::{Result, bail};

/// `cargo xtask --help`. One line per task; a new task adds its line here and its dispatch in [`run`].
const USAGE: &str = "\
usage: cargo xtask <task> [args...]

tasks:
  ci                 install the packages, check this machine (preflight), then fmt, clippy, doc, the
                     fuzz build and every test, IPVS tests in the VM, the HA lab's short run (ha-lab
                     --ci); always strict: a missing root, peer
                     tool or kernel feature fails the run (README's test command; `.ci/run` calls it)
  deps               install the Debian packages the tests need (apt-get; root)
  preflight          check root, the peer tools on PATH, the kernel features and the VM's kernel
  vm-run [--timeout SECS] [--no-build] SCRIPT
                     boot Debian's kernel (with IPVS) under qemu and run SCRIPT with busybox sh
  vm-test [--only PKG/TARGET]... [FILTER]
                     run the IPVS kernel tests (feature vm-tests) inside one VM (--only: a subset)
  vm-bench [ROUNDS]  run the IPVS bench (ours vs Debian's ipvsadm) inside one VM
  vrrp-chaos [EVENTS] [SEED]
                     the long no-split-brain run of vrrpd against keepalived
  ha-lab [--stack ours|keepalived|mixed] [--scenario N] [...]
                     the HA lab: a NAT firewall pair fails over under TCP load (docs/ha-lab.md)
  vm-lvs-bench [SECONDS]  LVS health checking at scale, lvs-check vs keepalived, inside one VM
  vm-lvs-events [RUNS]  the LVS event script RUNS times in one VM: median reaction times, keepalived vs
                     vrrpd vs lvs-check (BENCHMARKS.md)
  ct-diff [--seed S | --seeds A-B] [--start LINE] [--count N] [--max-reports N] [--debug]
                     long runs of the conntrack differential test against conntrack-tools (ct_diff.rs)
  ctsync-loss [SEEDS] [PAIRS] [ENTRIES] [HOLD_MS] [START_MS]
                     the long FT-FW loss run: ctsyncd and conntrackd pairs through a lossy, reordering link
  help, -h, --help   print this text
";

fn main() {
    if let Err(e) = run() {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (task, rest) = match args.split_first() {
        Some((t, rest)) => (t.as_str(), rest),
        None => {
            eprint!("{USAGE}");
            bail!("no task given");
        }
    };
    match task {
        "help" | "-h" | "--help" => print!("{USAGE}"),
        "ci" => ci()?,
        "deps" => deps::install()?,
        "preflight" => checks::preflight()?,
        "vm-run" => vm::vm_run(rest)?,
        "vm-test" => vm::vm_test(rest)?,
        "vm-bench" => vm::vm_bench(rest)?,
        "vrrp-chaos" => vrrp_chaos::run(rest)?,
        "ha-lab" => halab::run(rest)?,
        "vm-lvs-bench" => lvsbench::run(rest)?,
        "vm-lvs-events" => lvs_events::run(rest)?,
        "ct-diff" => ct_diff::run(rest)?,
        "ctsync-loss" => ctsync_loss::run(rest)?,
        other => {
            eprint!("{USAGE}");
            bail!("unknown task `{other}`");
        }
    }
    Ok(())
}

fn ci() -> Result<()> {
    let started = std::time::Instant::now();
    deps::install()?;
    checks::preflight()?;
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
            "-p",
            "lvs-check",
            "--all-targets",
            "--features",
            "ctsync-proto/ctnl,ipvs-nl/vm-tests,cli/vm-tests,lvs-check/vm-tests",
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
    util::step(
        "HA lab, our stack (scenario 1 by SIGKILL, control 4)",
        &["cargo", "xtask", "ha-lab", "--ci"],
        &[],
    )?;
    eprintln!("xtask ci: all steps passed in {:.0?}", started.elapsed());
    Ok(())
}

/// The workspace root (xtask lives one level below it).
pub(crate) fn workspace_root() -> std::path::PathBuf {
    let here = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(std::path::PathBuf::from).unwrap_or(here)
}
