//! The harness's two modes, proved on a real test executable: this one, re-run as a child process with
//! a `PATH` that hides a peer tool.
//!
//! * strict (`TESTKIT_STRICT=1`, what `cargo xtask ci` sets, or `CI=true`): the test needing the hidden
//!   tool fails and names it;
//! * not strict (plain `cargo test`): it passes as a skip, and the executable prints exactly one summary
//!   line saying how many tests skipped and why.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The tool the probe requires: `$TESTKIT_PROBE_TOOL` when the parent tests below run this executable as
/// a child, `sh` otherwise (present on every machine, so the probe is an ordinary passing test then).
const PROBE_ENV: &str = "TESTKIT_PROBE_TOOL";

#[test]
fn probe_requires_a_tool() {
    let tool = std::env::var(PROBE_ENV).unwrap_or_else(|_| "sh".to_string());
    let Some(path) = testkit::require_tool(&tool) else {
        return;
    };
    assert!(path.ends_with(&tool), "{}", path.display());
    // What the harness found is what a test's own Command would run.
    assert!(Command::new(&tool).arg("--version").output().is_ok());
}

/// Runs the probe test of this executable in a child with `PATH` = `path`, `tool` as the probe's tool,
/// and strict mode on or off (`CI` removed either way, so only `TESTKIT_STRICT` decides).
fn probe(path: &str, tool: &str, strict: bool) -> Output {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", "probe_requires_a_tool", "--test-threads=1"])
        .env("PATH", path)
        .env(PROBE_ENV, tool)
        .env_remove("CI")
        .env_remove(testkit::STRICT_ENV);
    if strict {
        c.env(testkit::STRICT_ENV, "1");
    }
    c.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("testkit-{name}-{}", std::process::id()))
}

/// `conntrack` hidden from `PATH`: the strict harness fails the test that needs it, naming the tool, and
/// the same test with `conntrack` visible passes (so the hiding, not something else, made it fail).
#[test]
fn strict_mode_fails_when_a_peer_tool_is_missing_from_path() {
    let dir = scratch("nopeer");
    let hidden = testkit::path_without(&["conntrack"], &dir);
    let out = probe(&hidden, "conntrack", true);
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "strict run passed:\n{so}\n{se}");
    assert!(
        so.contains("missing prerequisite")
            && so.contains("the `conntrack` executable on PATH")
            && so.contains("test result: FAILED. 0 passed; 1 failed"),
        "{so}\n{se}"
    );
    assert!(!se.contains("testkit:"), "a failure is not a skip: {se}");

    // A tool that is on the hidden PATH (sh is) passes strictly: the harness works through that PATH.
    let out = probe(&hidden, "sh", true);
    assert!(out.status.success(), "{}", text(&out.stdout));
    std::fs::remove_dir_all(&dir).unwrap();

    if testkit::which("conntrack").is_some() {
        let out = probe(&std::env::var("PATH").unwrap(), "conntrack", true);
        assert!(out.status.success(), "{}", text(&out.stdout));
    }
}

/// Not strict, the same missing tool is a skip: the test passes and the executable prints one summary
/// line, after libtest's result, naming the count and the reason.
#[test]
fn without_strict_mode_a_missing_tool_is_one_summary_line() {
    let dir = scratch("skip");
    let hidden = testkit::path_without(&["conntrack"], &dir);
    let out = probe(&hidden, "conntrack", false);
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "{so}\n{se}");
    assert!(so.contains("test result: ok. 1 passed"), "{so}");
    let lines: Vec<&str> = se.lines().filter(|l| l.starts_with("testkit:")).collect();
    assert_eq!(lines.len(), 1, "{se}");
    assert!(
        lines[0].starts_with("testkit: 1 test skipped in strict ")
            && lines[0].ends_with(
                ": 1 needs the `conntrack` executable on PATH (installed by `cargo xtask deps`)"
            ),
        "{}",
        lines[0]
    );

    // Nothing skipped: no line at all.
    let out = probe(&std::env::var("PATH").unwrap(), "sh", false);
    assert!(out.status.success());
    assert!(
        !text(&out.stderr).contains("testkit:"),
        "{}",
        text(&out.stderr)
    );
}

/// `CI=true` alone is strict too (what CI services set), and `TESTKIT_STRICT=0` does not turn it off.
#[test]
fn ci_true_is_strict_as_well() {
    let dir = scratch("ci");
    let hidden = testkit::path_without(&["conntrack"], &dir);
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "probe_requires_a_tool"])
        .env("PATH", &hidden)
        .env(PROBE_ENV, "conntrack")
        .env("CI", "true")
        .env(testkit::STRICT_ENV, "0")
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("missing prerequisite"));
}
