//! `cargo xtask ci` is strict without `CI=true`: with a peer tool missing from `PATH` it fails, naming the
//! tool, before running any step. And `cargo xtask --help` lists the tasks and exits 0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

/// Runs xtask with `PATH` = `path`, outside any CI environment (`CI` and `TESTKIT_STRICT` removed).
fn xtask(args: &[&str], path: &str) -> Output {
    Command::new(XTASK)
        .args(args)
        .env("PATH", path)
        .env_remove("CI")
        .env_remove(testkit::STRICT_ENV)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `conntrackd` hidden from `PATH`: `xtask ci` fails at its preflight and names it. `cargo` is hidden too,
/// so that even a broken preflight could not start the real (recursive) CI steps: the run would then fail
/// on `cargo` instead, and the message check below would catch it.
#[test]
fn ci_fails_when_a_peer_tool_is_missing_from_path() {
    let dir = std::env::temp_dir().join(format!("xtask-strict-{}", std::process::id()));
    let no_cargo = testkit::path_without(&["cargo"], &dir.join("a"));
    // The control: this machine passes the preflight when only cargo is hidden. (Without root or the
    // packages this is a skip, or a failure in strict mode, as for any test missing a prerequisite.)
    let control = xtask(&["preflight"], &no_cargo);
    if !testkit::require(
        &format!(
            "a machine that passes `cargo xtask preflight` (root and every peer tool): {}",
            text(&control.stderr).trim()
        ),
        control.status.success(),
    ) {
        std::fs::remove_dir_all(&dir).unwrap();
        return;
    }

    let hidden = testkit::path_without(&["cargo", "conntrackd"], &dir.join("b"));
    let out = xtask(&["ci"], &hidden);
    let err = text(&out.stderr);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        !out.status.success(),
        "xtask ci passed without conntrackd:\n{err}"
    );
    assert!(
        err.contains("preflight: this machine cannot run the whole test suite")
            && err.contains("`conntrackd` on PATH (Debian package conntrackd)"),
        "{err}"
    );
    // It stopped at the preflight: no step started.
    assert!(!err.contains("==> cargo fmt"), "{err}");
}

#[test]
fn help_lists_every_task_and_exits_0() {
    assert!(dispatched_tasks().len() >= 6, "{:?}", dispatched_tasks());
    for flag in ["--help", "-h", "help"] {
        let out = Command::new(XTASK).arg(flag).output().unwrap();
        assert!(out.status.success(), "{flag}: {out:?}");
        let usage = text(&out.stdout);
        assert!(usage.starts_with("usage: cargo xtask <task>"), "{usage}");
        for task in dispatched_tasks() {
            assert!(
                usage
                    .lines()
                    .any(|l| l.trim_start().starts_with(task.as_str())),
                "{task} missing from --help:\n{usage}"
            );
        }
    }
    // No task, or an unknown one: the usage on stderr and a failure.
    for args in [&[][..], &["no-such-task"][..]] {
        let out = Command::new(XTASK).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(text(&out.stderr).contains("usage: cargo xtask"));
        assert!(out.stdout.is_empty());
    }
}

/// Every task name `run()` dispatches (`"name" => ...` arms in xtask/src/main.rs), so a task added
/// without a line in the usage text fails the help test.
fn dispatched_tasks() -> Vec<String> {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/main.rs")).unwrap();
    src.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('"') && l.contains("\" => "))
        .filter_map(|l| l.split('"').nth(1))
        .filter(|t| !t.starts_with('-') && *t != "help")
        .map(String::from)
        .collect()
}
