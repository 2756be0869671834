//! Installs the Debian packages the test suite needs.
//!
//! The tests run real peers (conntrack-tools, conntrackd, keepalived, tshark) and boot a Debian kernel with
//! IPVS under qemu. On a fresh Debian machine, as root, this installs all of them with apt. Under `CI=true`,
//! any package that cannot be installed is a failure.

use anyhow::{Result, bail};
use std::process::Command;

/// Every Debian package a test needs, with the reason.
pub const PACKAGES: &[(&str, &str)] = &[
    ("iproute2", "ip netns / ip link for test hosts"),
    ("nftables", "packet loss and NAT rules in test namespaces"),
    (
        "conntrack",
        "conntrack-tools 1.4.7: the CLI our `conntrack` must match",
    ),
    ("conntrackd", "conntrackd 1.4.7: the sync peer"),
    ("keepalived", "keepalived 2.2.7: the VRRP peer"),
    ("tshark", "packet captures for byte vectors"),
    ("qemu-system-x86", "the VM that runs IPVS tests"),
    (
        "linux-image-amd64",
        "a Debian kernel with the ip_vs modules",
    ),
    ("busybox-static", "the VM's userland"),
    ("cpio", "packing the VM's initramfs"),
    ("kmod", "modprobe --show-depends for the module closure"),
    (
        "ipvsadm",
        "ipvsadm 1.31: the CLI our `ipvsadm` must match (run inside the VM)",
    ),
];

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// Installs whatever is missing. Needs root unless everything is already there.
pub fn install() -> Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| !installed(p))
        .collect();
    if missing.is_empty() {
        eprintln!("==> deps: all {} packages present", PACKAGES.len());
        return Ok(());
    }
    eprintln!("==> deps: installing {}", missing.join(" "));
    let ok = Command::new("apt-get")
        .arg("update")
        .arg("-qq")
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
        && Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    if !ok {
        let still: Vec<&str> = missing.iter().copied().filter(|p| !installed(p)).collect();
        if !still.is_empty() {
            bail!(
                "cannot install Debian packages: {} (run as root on Debian)",
                still.join(" ")
            );
        }
    }
    Ok(())
}
