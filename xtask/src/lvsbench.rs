//! `cargo xtask vm-lvs-bench [SECONDS]`: the LVS health-check scale bench (`benches/benches/lvs_check.rs`:
//! 1,000 real servers under 100 virtual servers, HTTP_GET every second, lvs-check against keepalived
//! 2.2.7) inside one IPVS VM; SECONDS is the measured window (default 20).

use crate::vm::{VmSpec, built, ci_env, run as run_vm, target_dir};
use anyhow::{Context, Result, bail};
use std::time::Duration;

pub fn run(args: &[String]) -> Result<()> {
    crate::deps::install()?;
    let bench = built(
        &["bench", "--no-run", "-p", "benches", "--bench", "lvs_check"],
        "bench",
    )?
    .into_iter()
    .find(|(n, _)| n == "lvs_check")
    .map(|(_, p)| p)
    .context("no executable for the `lvs_check` bench")?;
    let mut env = ci_env();
    env.push((
        "LVS_BENCH_SECONDS".to_string(),
        args.first().cloned().unwrap_or_else(|| "20".to_string()),
    ));
    let commit = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=7"])
        .current_dir(crate::workspace_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    env.push(("BENCH_COMMIT".to_string(), commit));
    env.push((
        "BENCH_HOST_LOAD".to_string(),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default(),
    ));
    let spec = VmSpec {
        script: "/opt/project/tests/lvs-bench --bench\n".to_string(),
        bins: Vec::new(),
        tests: vec![("lvs-bench".to_string(), bench)],
        env,
        timeout: Duration::from_secs(1200),
        mem_mib: 2048,
        extra_modules: Vec::new(),
    };
    let rc = run_vm(&spec, &target_dir().join("vm"))?.status;
    if rc != 0 {
        bail!("the LVS bench failed (exit status {rc})");
    }
    Ok(())
}
