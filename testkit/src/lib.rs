//! Test harness shared by every crate of the workspace.
//!
//! The rules it enforces come from shared/STYLE.md:
//!
//! * A test that needs something this machine may lack (root, a network namespace, a peer tool such as
//!   `conntrack` or `keepalived`) asks for it through [`require`] or one of its wrappers. Under `CI=true`
//!   a missing prerequisite **fails** the test; elsewhere the test prints one loud `SKIP` line and returns.
//! * Kernel tests run in a fresh network namespace created with `unshare(CLONE_NEWNET)` inside the test's
//!   own thread ([`netns`]). Namespaces are per thread in Linux, so every socket the test opens, every
//!   `/proc/sys/net` file it touches and every child process it spawns lives in that private namespace,
//!   and the host's conntrack table is never touched. The namespace disappears when the thread ends.
#![allow(unsafe_code)] // unshare(2) and geteuid(2) have no safe wrapper in std.
#![warn(missing_docs)]
// A test harness reports a failed prerequisite or setup step by panicking, as a failed assertion does.
#![allow(clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// True when running under CI (`CI=true`), where a missing prerequisite is a failure, never a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Checks a prerequisite. Returns `true` when it is met.
///
/// When it is not met: under CI this panics (the test fails, naming what is missing); elsewhere it prints a
/// single `SKIP` line to stderr and returns `false`, and the caller returns early.
#[track_caller]
pub fn require(what: &str, met: bool) -> bool {
    if met {
        return true;
    }
    let loc = std::panic::Location::caller();
    if in_ci() {
        panic!("missing prerequisite under CI=true: {what} (at {loc})");
    }
    eprintln!("SKIP ({loc}): missing prerequisite: {what}");
    false
}

/// True when the process runs as root (needed for namespaces and netfilter).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Finds an executable on `PATH` (plus /usr/sbin and /sbin, where Debian puts the netfilter tools).
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .filter(|d| !d.is_empty())
        .map(|d| PathBuf::from(d).join(tool))
        .find(|p| p.is_file())
}

/// Requires a peer tool (e.g. `conntrack`, `conntrackd`, `keepalived`, `tshark`) and returns its path.
#[track_caller]
pub fn require_tool(tool: &str) -> Option<PathBuf> {
    let found = which(tool);
    if require(
        &format!("the `{tool}` executable (installed by `cargo xtask ci`)"),
        found.is_some(),
    ) {
        found
    } else {
        None
    }
}

/// A private network namespace owned by the current thread. Created by [`netns`].
#[derive(Debug)]
pub struct NetNs {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl NetNs {
    /// Runs a command inside this namespace (a child inherits its parent thread's namespace) and returns
    /// its output. Panics with the command's stderr if it cannot be started or fails.
    #[track_caller]
    pub fn sh(&self, cmdline: &str) -> Output {
        let out = Command::new("sh")
            .arg("-c")
            .arg(cmdline)
            .output()
            .unwrap_or_else(|e| panic!("cannot run `{cmdline}`: {e}"));
        assert!(
            out.status.success(),
            "`{cmdline}` failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Like [`NetNs::sh`], but returns the output whatever the exit status.
    pub fn sh_any(&self, cmdline: &str) -> std::io::Result<Output> {
        Command::new("sh").arg("-c").arg(cmdline).output()
    }

    /// Writes a `/proc/sys` knob of this namespace (e.g. `net/netfilter/nf_conntrack_acct`).
    #[track_caller]
    pub fn sysctl(&self, knob: &str, value: &str) {
        let path = format!("/proc/sys/{knob}");
        std::fs::write(&path, value)
            .unwrap_or_else(|e| panic!("cannot write {value} to {path}: {e}"));
    }
}

/// Moves the current thread into a fresh network namespace with `lo` up.
///
/// Returns `None` (after a SKIP line) when not root outside CI; panics under CI when the namespace cannot be
/// made. Keep the returned value alive for the test's duration; the namespace ends with the thread.
#[track_caller]
pub fn netns() -> Option<NetNs> {
    if !require("root (for a private network namespace)", is_root()) {
        return None;
    }
    // SAFETY: unshare only changes the calling thread's namespace membership; no memory is shared with the
    // kernel. Every test runs in its own thread, so no other test is affected.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        require(&format!("unshare(CLONE_NEWNET): {err}"), false);
        return None;
    }
    let ns = NetNs {
        _not_send: std::marker::PhantomData,
    };
    if which("ip").is_some() {
        ns.sh("ip link set lo up");
    }
    Some(ns)
}

/// The directory of the workspace root (for fuzz corpora and captured vectors).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// Every file of a fuzz target's corpus, `fuzz/corpus/<target>/*`, for replaying as an ordinary test.
/// Panics if the corpus is missing or empty: a replay test must replay something.
#[track_caller]
pub fn fuzz_corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = workspace_root().join("fuzz").join("corpus").join(target);
    let mut out = Vec::new();
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()));
    for entry in entries.flatten() {
        let p = entry.path();
        if p.is_file() {
            let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            out.push((p, data));
        }
    }
    out.sort();
    assert!(!out.is_empty(), "fuzz corpus {} is empty", dir.display());
    out
}
