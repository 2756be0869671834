//! Checks of the dependency tree that no compiler or linter makes.

use anyhow::{Context, Result, bail};
use std::process::Command;

/// The rust-netlink crates the design names: each must appear in exactly one version across the whole tree,
/// so that `ctnl` and `ipvs-nl` share one netlink stack (STYLE.md: `cargo tree -d` stays clean for them).
const SINGLE_VERSION: &[&str] = &[
    "netlink-sys",
    "netlink-packet-core",
    "netlink-packet-netfilter",
    "netlink-packet-route",
];

/// Fails if any of [`SINGLE_VERSION`] appears in more than one version, or not at all.
pub fn netlink_single_version() -> Result<()> {
    eprintln!("\n==> rust-netlink crates: one version each");
    let out = Command::new("cargo")
        .args([
            "tree",
            "--workspace",
            "--locked",
            "-e",
            "normal,build,dev",
            "--prefix",
            "none",
        ])
        .args(["--format", "{p}"])
        .output()
        .context("cannot run cargo tree")?;
    if !out.status.success() {
        bail!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tree = String::from_utf8_lossy(&out.stdout);
    for krate in SINGLE_VERSION {
        let mut versions: Vec<&str> = tree
            .lines()
            .filter_map(|l| {
                l.split_whitespace()
                    .collect::<Vec<_>>()
                    .get(..2)
                    .map(|v| (v[0], v[1]))
            })
            .filter(|(name, _)| name == krate)
            .map(|(_, version)| version)
            .collect();
        versions.sort_unstable();
        versions.dedup();
        match versions.as_slice() {
            [one] => eprintln!("    {krate} {one}"),
            [] => bail!("{krate} is not in the dependency tree"),
            many => bail!(
                "{krate} appears in {} versions: {}",
                many.len(),
                many.join(", ")
            ),
        }
    }
    Ok(())
}
