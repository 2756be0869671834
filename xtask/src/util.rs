//! Small helpers for running commands with a visible banner.

use anyhow::{Context, Result, bail};
use std::process::Command;

/// The environment every CI step runs with: `testkit` strict mode, so a test whose prerequisite (root, a
/// peer tool, a kernel feature) is missing fails instead of skipping, with or without `CI=true`.
pub const STRICT: (&str, &str) = ("TESTKIT_STRICT", "1");

/// Runs one CI step in strict mode ([`STRICT`]), echoing it first; fails with the step's name if the
/// command fails.
pub fn step(name: &str, argv: &[&str], env: &[(&str, &str)]) -> Result<()> {
    eprintln!("\n==> {name}: {}", argv.join(" "));
    let t = std::time::Instant::now();
    let (prog, rest) = argv.split_first().context("empty command")?;
    let status = Command::new(prog)
        .args(rest)
        .env(STRICT.0, STRICT.1)
        .envs(env.iter().copied())
        .status()
        .with_context(|| format!("cannot start `{prog}`"))?;
    if !status.success() {
        bail!("step `{name}` failed ({status})");
    }
    eprintln!("==> {name}: ok in {:.1?}", t.elapsed());
    Ok(())
}
