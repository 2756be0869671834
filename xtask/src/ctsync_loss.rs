//! `cargo xtask ctsync-loss [SEEDS] [PAIRS] [ENTRIES] [HOLD_MS] [START_MS]`: the long run of the FT-FW loss
//! test (issue 13): `ftfw_survives_loss_and_reordering_three_seeds` in cli/tests/ctsyncd_loss.rs for
//! seeds 1..=SEEDS (default 10) and every pair of PAIRS (default `yc,cy,yy,cc`: y is ctsyncd, c
//! conntrackd, sender first), ENTRIES new entries per run (default 1500, a fifth of them deleted),
//! relay holds of 0..=HOLD_MS ms (default 30). With START_MS, every pair starts its burst that long after
//! the daemons (by default a ctsyncd sender starts 300 ms after them, a conntrackd sender to ctsyncd once
//! ctsyncd's HELLO is answered). Every run prints one line; the run fails if a pair with a ctsyncd lost or
//! gained an entry (conntrackd -> conntrackd is only reported). CI runs seeds 1-3, one pair each.

use anyhow::{Result, bail};
use std::process::Command;

/// Runs the long loss run.
pub fn run(args: &[String]) -> Result<()> {
    let arg = |i: usize, default: &str| args.get(i).map_or(default.to_string(), String::clone);
    let seeds = arg(0, "10");
    let pairs = arg(1, "yc,cy,yy,cc");
    let entries = arg(2, "1500");
    let hold = arg(3, "30");
    eprintln!(
        "==> FT-FW loss run: seeds 1..={seeds}, pairs {pairs}, {entries} entries, holds 0-{hold} ms"
    );
    let mut cmd = Command::new("cargo");
    cmd.args([
        "test",
        "-p",
        "cli",
        "--test",
        "ctsyncd_loss",
        "--",
        "--nocapture",
    ])
    .env("CTSYNCD_LOSS_SEEDS", &seeds)
    .env("CTSYNCD_LOSS_PAIRS", &pairs)
    .env("CTSYNCD_LOSS_ENTRIES", &entries)
    .env("CTSYNCD_LOSS_HOLD_MS", &hold)
    .env("CI", "true")
    .current_dir(crate::workspace_root());
    if let Some(ms) = args.get(4) {
        cmd.env("CTSYNCD_LOSS_START_MS", ms);
    }
    if !cmd.status()?.success() {
        bail!("a pair with a ctsyncd lost or gained entries (see the lines above)");
    }
    Ok(())
}
