//! Test harness shared by every crate of the workspace.
//!
//! The rules it enforces come from shared/STYLE.md:
//!
//! * A test that needs something this machine may lack (root, a network namespace, a peer tool such as
//!   `conntrack` or `keepalived`, a kernel feature) asks for it through [`require`] or one of its wrappers.
//!   In **strict** mode a missing prerequisite **fails** the test. Otherwise the test is recorded as skipped
//!   and returns early, and when the test executable exits it prints **one summary line** to stderr:
//!
//!   ```text
//!   testkit: 3 tests skipped in kernel-1a2b3c (not strict; `cargo xtask ci` fails instead): 2 need root (for a private network namespace); 1 needs the `tshark` executable on PATH
//!   ```
//!
//!   The line is printed once per test executable (per process) that skipped anything, after libtest's own
//!   `test result:` line; executables that skipped nothing print nothing. It goes to stderr from the
//!   process's exit handler, outside libtest's output capture, so `cargo test` always shows it.
//! * Strict mode ([`strict`]) is on when `TESTKIT_STRICT=1` or `CI=true`. `cargo xtask ci` (and every VM run)
//!   sets `TESTKIT_STRICT=1` for everything it runs, with or without `CI=true`, so the CI command can never
//!   pass by skipping. Plain `cargo test` on a machine without root or the peers skips and says so.
//! * Peer tools are looked up on `PATH` only ([`which`]), the same `PATH` a test's `Command::new("tool")`
//!   uses, so hiding a tool from `PATH` is enough to simulate its absence.
//! * Kernel tests run in a fresh network namespace created with `unshare(CLONE_NEWNET)` inside the test's
//!   own thread ([`netns`]). Namespaces are per thread in Linux, so every socket the test opens, every
//!   `/proc/sys/net` file it touches and every child process it spawns lives in that private namespace,
//!   and the host's conntrack table is never touched. The namespace disappears when the thread ends.
#![allow(unsafe_code)] // unshare(2), geteuid(2) and atexit(3) have no safe wrapper in std.
#![warn(missing_docs)]
// A test harness reports a failed prerequisite or setup step by panicking, as a failed assertion does.
#![allow(clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Mutex;

/// The environment variable that turns strict mode on (`TESTKIT_STRICT=1`); `cargo xtask ci` sets it.
pub const STRICT_ENV: &str = "TESTKIT_STRICT";

/// True in strict mode, where a missing prerequisite is a failure, never a skip: `TESTKIT_STRICT=1`
/// (set by `cargo xtask ci` for every step and inside the IPVS VM) or `CI=true`.
pub fn strict() -> bool {
    let on = |name: &str| std::env::var(name).is_ok_and(|v| v == "true" || v == "1");
    on(STRICT_ENV) || on("CI")
}

/// Same as [`strict`] (kept for the callers written before `TESTKIT_STRICT` existed).
pub fn in_ci() -> bool {
    strict()
}

/// Checks a prerequisite. Returns `true` when it is met.
///
/// When it is not met: in [strict] mode this panics (the test fails, naming what is missing); otherwise it
/// records the skip for the exit summary line (see the crate docs) and returns `false`, and the caller
/// returns early.
#[track_caller]
pub fn require(what: &str, met: bool) -> bool {
    if met {
        return true;
    }
    let loc = std::panic::Location::caller();
    if strict() {
        panic!("missing prerequisite (strict mode: {STRICT_ENV}=1 or CI=true): {what} (at {loc})");
    }
    skips::record(what, &loc.to_string());
    false
}

/// The skip record and the exit summary line.
mod skips {
    use super::Mutex;
    use std::collections::BTreeMap;
    use std::io::Write;

    struct Skip {
        /// The test's name (libtest runs each test on a thread named after it) or, outside libtest, the
        /// place of the `require` call.
        test: String,
        what: String,
    }

    static SKIPS: Mutex<Vec<Skip>> = Mutex::new(Vec::new());
    static REGISTER: std::sync::Once = std::sync::Once::new();

    pub(super) fn record(what: &str, loc: &str) {
        REGISTER.call_once(|| {
            // SAFETY: atexit only stores the function pointer; `summary` is a plain `extern "C" fn` that
            // neither unwinds (it catches nothing that could panic: every write's error is ignored and the
            // lock is only tried) nor calls exit.
            let _ = unsafe { libc::atexit(summary) };
        });
        let test = match std::thread::current().name() {
            Some(name) if name != "main" => name.to_string(),
            _ => loc.to_string(),
        };
        if let Ok(mut v) = SKIPS.lock() {
            v.push(Skip {
                test,
                what: what.to_string(),
            });
        }
    }

    /// The summary line for a set of skips: how many distinct tests skipped, and why (each reason with
    /// the number of tests it stopped, most frequent first).
    pub(super) fn line(exe: &str, skips: &[(String, String)]) -> Option<String> {
        if skips.is_empty() {
            return None;
        }
        let mut tests: Vec<&str> = skips.iter().map(|(t, _)| t.as_str()).collect();
        tests.sort_unstable();
        tests.dedup();
        let mut why: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (t, w) in skips {
            let v = why.entry(w.as_str()).or_default();
            if !v.contains(&t.as_str()) {
                v.push(t);
            }
        }
        let mut why: Vec<(&str, usize)> = why.into_iter().map(|(w, t)| (w, t.len())).collect();
        why.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let reasons: Vec<String> = why
            .iter()
            .map(|(w, n)| format!("{n} need{} {w}", if *n == 1 { "s" } else { "" }))
            .collect();
        let n = tests.len();
        Some(format!(
            "testkit: {n} test{} skipped in {exe} (not strict; `cargo xtask ci` fails instead): {}",
            if n == 1 { "" } else { "s" },
            reasons.join("; ")
        ))
    }

    extern "C" fn summary() {
        let Ok(v) = SKIPS.try_lock() else { return };
        let pairs: Vec<(String, String)> =
            v.iter().map(|s| (s.test.clone(), s.what.clone())).collect();
        let exe = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
            .map(|name| target_name(&name).to_string())
            .unwrap_or_else(|| "this executable".to_string());
        if let Some(l) = line(&exe, &pairs) {
            let _ = writeln!(std::io::stderr(), "{l}");
        }
    }

    /// Cargo names a test executable `TARGET-HASH` (16 hex digits); the target's name is what a reader
    /// knows it by.
    pub(super) fn target_name(file: &str) -> &str {
        match file.rsplit_once('-') {
            Some((name, hash))
                if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                name
            }
            _ => file,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::{line, target_name};

        #[test]
        fn executable_names_lose_cargos_hash() {
            assert_eq!(target_name("kernel-43c4dd47250b9e6e"), "kernel");
            assert_eq!(target_name("live_capture-0123456789abcdef"), "live_capture");
            assert_eq!(target_name("my-bench"), "my-bench");
            assert_eq!(target_name("conntrack_cli"), "conntrack_cli");
        }

        #[test]
        fn one_line_counts_tests_and_groups_reasons() {
            let s = |t: &str, w: &str| (t.to_string(), w.to_string());
            assert_eq!(line("x", &[]), None);
            let l = line(
                "kernel-1",
                &[
                    s("a", "root"),
                    s("b", "root"),
                    s("b", "root"),
                    s("c", "the `tshark` executable"),
                    s("a", "the `tshark` executable"),
                ],
            )
            .unwrap();
            assert_eq!(
                l,
                "testkit: 3 tests skipped in kernel-1 (not strict; `cargo xtask ci` fails instead): \
                 2 need root; 2 need the `tshark` executable"
            );
            assert!(!l.contains('\n'));
            let l = line("k", &[s("a", "root")]).unwrap();
            assert!(l.starts_with("testkit: 1 test skipped in k "), "{l}");
            assert!(l.ends_with(": 1 needs root"), "{l}");
        }
    }
}

/// True when the process runs as root (needed for namespaces and netfilter).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Finds an executable on `PATH`, as `Command::new(tool)` and `sh -c` would (no other directory is
/// searched, so a `PATH` without the tool simulates a machine without it).
pub fn which(tool: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(tool))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Requires a peer tool (e.g. `conntrack`, `conntrackd`, `keepalived`, `tshark`) and returns its path.
#[track_caller]
pub fn require_tool(tool: &str) -> Option<PathBuf> {
    let found = which(tool);
    if require(
        &format!("the `{tool}` executable on PATH (installed by `cargo xtask deps`)"),
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
/// Returns `None` (a recorded skip) when not root or when the namespace cannot be made, outside strict
/// mode; panics in strict mode. Keep the returned value alive for the test's duration; the namespace ends with the thread.
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

/// Replays a fuzz target's corpus through `body` (the target's own body): at least `min` files, and
/// none may panic (the failure names the file). Returns the corpus for checks on its named seeds.
#[track_caller]
pub fn replay_fuzz_corpus(
    target: &str,
    min: usize,
    body: impl Fn(&[u8]) + std::panic::RefUnwindSafe,
) -> Vec<(PathBuf, Vec<u8>)> {
    let corpus = fuzz_corpus(target);
    assert!(
        corpus.len() >= min,
        "fuzz corpus {target}: {} files, at least {min} expected",
        corpus.len()
    );
    for (path, data) in &corpus {
        let r = std::panic::catch_unwind(|| body(data));
        assert!(r.is_ok(), "{}", path.display());
    }
    corpus
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

/// Makes `dir` a directory of symlinks to every executable on the current `PATH` except those named in
/// `hide`, and returns it as a `PATH` value: this machine as seen by a process that lacks those tools.
/// Tests of the strict harness run children with it (`testkit/tests/strict.rs`, `xtask/tests/strict.rs`).
#[track_caller]
pub fn path_without(hide: &[&str], dir: &std::path::Path) -> String {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let path = std::env::var_os("PATH").unwrap_or_default();
    for d in std::env::split_paths(&path) {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            if hide.iter().any(|h| name == *h) {
                continue;
            }
            let link = dir.join(&name);
            // The first directory on PATH wins, as in a lookup.
            if std::fs::symlink_metadata(&link).is_err() {
                let _ = std::os::unix::fs::symlink(e.path(), &link);
            }
        }
    }
    dir.display().to_string()
}

/// One executable cargo built (from its `compiler-artifact` JSON messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The target's name (`conntrack`, `vm`, `ipvs`, ...).
    pub name: String,
    /// The target's kind as cargo says it: `bin`, `test`, `bench`, `example`, ...
    pub kind: String,
    /// The executable's path.
    pub executable: PathBuf,
}

/// Runs `cargo ARGS --message-format=json-render-diagnostics` in the workspace root, where ARGS starts
/// with a building subcommand (`build`, `test --no-run`, `bench --no-run`); cargo's own output and
/// diagnostics go to stderr. Returns the executables it built or found up to date. `cargo` is `$CARGO`
/// when cargo started this process, else `cargo` from `PATH`. The xtask VM steps and the process benches
/// use it to (re)build exactly the binaries they run.
pub fn cargo_artifacts(args: &[&str]) -> std::io::Result<Vec<Artifact>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(args)
        .arg("--message-format=json-render-diagnostics")
        .current_dir(workspace_root())
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "cargo {} failed ({})",
            args.join(" "),
            out.status
        )));
    }
    Ok(artifacts(&String::from_utf8_lossy(&out.stdout)))
}

/// The executables in cargo's JSON messages (one object per line). Only the few fields needed are read,
/// by their key, so that the harness needs no JSON library.
pub fn artifacts(json_lines: &str) -> Vec<Artifact> {
    fn string_after<'a>(text: &'a str, key: &str) -> Option<&'a str> {
        let start = text.find(key)? + key.len();
        let rest = &text[start..];
        Some(&rest[..rest.find('"')?])
    }
    let mut out = Vec::new();
    for line in json_lines.lines() {
        if !line.contains("\"reason\":\"compiler-artifact\"") {
            continue;
        }
        let Some(exe) = string_after(line, "\"executable\":\"") else {
            continue;
        };
        let target = line.split_once("\"target\":{").map_or("", |(_, t)| t);
        out.push(Artifact {
            name: string_after(target, "\"name\":\"")
                .unwrap_or_default()
                .to_string(),
            kind: string_after(target, "\"kind\":[\"")
                .unwrap_or_default()
                .to_string(),
            executable: PathBuf::from(exe),
        });
    }
    out
}

#[cfg(test)]
mod artifact_tests {
    use super::*;

    #[test]
    fn artifacts_from_cargo_messages() {
        let json = concat!(
            r#"{"reason":"compiler-artifact","package_id":"x","target":{"kind":["bin"],"crate_types":["bin"],"name":"conntrack","src_path":"/w/cli/src/bin/conntrack.rs"},"profile":{},"features":[],"filenames":["/w/target/release/conntrack"],"executable":"/w/target/release/conntrack","fresh":true}"#,
            "\n",
            r#"{"reason":"compiler-artifact","package_id":"y","target":{"kind":["lib"],"crate_types":["lib"],"name":"ctnl","src_path":"/w/ctnl/src/lib.rs"},"profile":{},"features":[],"filenames":["/w/target/release/libctnl.rlib"],"executable":null,"fresh":true}"#,
            "\n",
            r#"{"reason":"compiler-artifact","package_id":"z","target":{"kind":["test"],"crate_types":["bin"],"name":"vm","src_path":"/w/ipvs-nl/tests/vm.rs"},"profile":{},"features":[],"filenames":["/w/target/debug/deps/vm-0123"],"executable":"/w/target/debug/deps/vm-0123","fresh":false}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        assert_eq!(
            artifacts(json),
            vec![
                Artifact {
                    name: "conntrack".into(),
                    kind: "bin".into(),
                    executable: "/w/target/release/conntrack".into()
                },
                Artifact {
                    name: "vm".into(),
                    kind: "test".into(),
                    executable: "/w/target/debug/deps/vm-0123".into()
                },
            ]
        );
    }
}
