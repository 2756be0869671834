//! `cargo xtask vrrp-chaos [EVENTS] [SEED]`: the long no-split-brain run of vrrpd against keepalived
//! (issue 12): `split_brain_chaos_seeded` in cli/tests/vrrpd_keepalived.rs with EVENTS random events
//! (default 120) from SEED (default 1). CI runs the same test with 10 events and seed 12.

use anyhow::{Result, bail};
use std::process::Command;

/// Runs the long seeded run and fails if any settle saw both or neither side holding the address.
pub fn run(args: &[String]) -> Result<()> {
    let events = args.first().map_or("120", String::as_str);
    let seed = args.get(1).map_or("1", String::as_str);
    eprintln!("==> vrrpd vs keepalived: {events} random events, seed {seed}");
    let ok = Command::new("cargo")
        .args([
            "test",
            "-p",
            "cli",
            "--test",
            "vrrpd_keepalived",
            "split_brain_chaos_seeded",
            "--",
            "--nocapture",
        ])
        .env("VRRPD_CHAOS_EVENTS", events)
        .env("VRRPD_CHAOS_SEED", seed)
        .env("CI", "true")
        .current_dir(crate::workspace_root())
        .status()?
        .success();
    if !ok {
        bail!("the split-brain run failed (see the VIOLATION lines above)");
    }
    Ok(())
}
