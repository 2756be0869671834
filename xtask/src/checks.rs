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

/// Every executable the tests and the VM build run, looked up on `PATH` as the tests' own commands do,
/// with the Debian package that has it (installed by [`crate::deps`]).
pub const TOOLS: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("nft", "nftables"),
    ("conntrack", "conntrack"),
    ("conntrackd", "conntrackd"),
    ("keepalived", "keepalived"),
    ("tshark", "tshark"),
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("modprobe", "kmod"),
    ("ldd", "libc-bin"),
    ("unshare", "util-linux"),
];

/// Files the VM build reads by absolute path.
const FILES: &[(&str, &str)] = &[
    ("/bin/busybox", "busybox-static"),
    ("/usr/sbin/ipvsadm", "ipvsadm"),
];

/// Kernel features the tests use, each checked in a throw-away network namespace: `(what, needs tool,
/// shell command)`.
const KERNEL: &[(&str, &str, &str)] = &[
    ("network namespaces", "unshare", "true"),
    (
        "veth pairs",
        "ip",
        "ip link add xtpa type veth peer name xtpb",
    ),
    ("conntrack over ctnetlink", "conntrack", "conntrack -L"),
    ("nftables", "nft", "nft add table inet xtask_preflight"),
];

fn on_path(tool: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|d| {
            std::fs::metadata(d.join(tool))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| v.split_whitespace().nth(1).map(|euid| euid == "0"))
            .unwrap_or(false)
    })
}

/// `cargo xtask preflight` (and the first thing `ci` does after installing packages): checks that this
/// machine can run every test, and fails naming everything missing. With `ci`'s strict tests this is
/// belt and braces: a missing prerequisite would fail its test anyway, this fails in seconds and says
/// what to install.
pub fn preflight() -> Result<()> {
    eprintln!("\n==> preflight: root, peer tools on PATH, kernel features, the VM's kernel");
    let mut missing = Vec::new();
    if !is_root() {
        missing.push("root (the tests make network namespaces)".to_string());
    }
    for (tool, pkg) in TOOLS {
        if !on_path(tool) {
            missing.push(format!("`{tool}` on PATH (Debian package {pkg})"));
        }
    }
    for (file, pkg) in FILES {
        if !std::path::Path::new(file).is_file() {
            missing.push(format!("{file} (Debian package {pkg})"));
        }
    }
    for (what, tool, cmd) in KERNEL {
        if !on_path("unshare") || !on_path(tool) {
            continue; // already reported as a missing tool
        }
        let out = Command::new("unshare")
            .args(["--net", "sh", "-c"])
            .arg(format!("{cmd} >/dev/null 2>&1"))
            .output();
        if !out.is_ok_and(|o| o.status.success()) {
            missing.push(format!(
                "kernel feature: {what} (`unshare --net {cmd}` failed)"
            ));
        }
    }
    if let Err(e) = crate::vm::find_kernel() {
        missing.push(format!("the IPVS VM's kernel: {e:#}"));
    }
    if !missing.is_empty() {
        for m in &missing {
            eprintln!("    missing: {m}");
        }
        bail!(
            "preflight: this machine cannot run the whole test suite; missing: {} \
             (`cargo xtask deps` installs the packages; run as root)",
            missing.join("; ")
        );
    }
    eprintln!(
        "    ok: root, {} tools, {} files, {} kernel features, VM kernel",
        TOOLS.len(),
        FILES.len(),
        KERNEL.len()
    );
    Ok(())
}
