//! The client commands of ctsyncd against conntrackd 1.4.7's, one by one on the same state: a
//! conntrackd pair and a ctsyncd pair run side by side (FT-FW over UDP), node A sends the interop
//! entries to node B, and the same list of commands runs on each B. After every command both must show
//! the same exit status, the same stdout and stderr (program name and lab paths replaced), and the same
//! effect: the number of entries in B's internal cache (`-i`), external cache (`-e`) and kernel table
//! (`conntrack -L`), whether the daemon still runs and whether its socket file exists.
//!
//! The commands: `-x` alone, `-s` with an unknown word, two commands at once, `-i -x`/`-e -x` (entry
//! lines compared as sorted sets), `-f internal`, `-R`, `-f external`, `-n`, `-f`, `-n`, `-c`, `-t` (and
//! the flush `PurgeTimeout` later), `-F`, `-k`, then `-i` and `-k` with no daemon running.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "ctsyncd/harness.rs"]
mod harness;

use harness::{Daemon, ENTRIES, LinkKind, Node, Opts, lab, ready, start_with_entries, timeless};
use std::time::Duration;

/// The receiver's own entry (reaches A, stays in B's internal cache).
const LOCAL: &[&str] = &["-p udp -s 172.16.0.1 -d 172.16.0.2 --sport 7777 --dport 8888 -t 120"];

/// `PurgeTimeout` of the lab: how long after `-t` the kernel flush comes.
const PURGE_SECS: u64 = 2;

/// A command run on B, and how long to let its effect settle before looking.
struct Step {
    args: &'static str,
    /// Whether stdout is compared as a sorted set of lines (entry dumps, whose order is a hash's).
    unordered: bool,
    settle: Duration,
    /// Whether to wait (10 s at most) until the external cache holds A's entries again.
    until_external: bool,
}

const fn step(args: &'static str) -> Step {
    Step {
        args,
        unordered: false,
        settle: Duration::from_millis(300),
        until_external: false,
    }
}

const STEPS: &[Step] = &[
    step("-x"),
    step("-s bogus"),
    Step {
        unordered: true,
        ..step("-i -e")
    },
    Step {
        unordered: true,
        ..step("-k -i")
    },
    Step {
        unordered: true,
        ..step("-i -x")
    },
    Step {
        unordered: true,
        ..step("-e -x")
    },
    step("-f internal"),
    step("-R"),
    step("-f external"),
    Step {
        until_external: true,
        ..step("-n")
    },
    step("-f"),
    Step {
        until_external: true,
        ..step("-n")
    },
    step("-c"),
    step("-t"),
    // No command: the flush `-t` scheduled has happened.
    Step {
        settle: Duration::from_secs(PURGE_SECS + 1),
        ..step("")
    },
    step("-c"),
    step("-F"),
    Step {
        settle: Duration::from_secs(1),
        ..step("-k")
    },
    step("-i"),
    step("-k"),
];

/// What one command printed and left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    status: i32,
    stdout: String,
    stderr: String,
    internal: Option<usize>,
    external: Option<usize>,
    kernel: usize,
    running: bool,
    socket: bool,
}

/// `text` with the program's path and name, the lab's directory, and the time and PID of log lines
/// (`[Thu Dec  3 10:09:16 2026] (pid=21057) `) replaced.
fn normalise(text: &str, n: &Node, dir: &std::path::Path) -> String {
    let text = text
        .replace(&n.daemon.bin(), "PROG")
        .replace(&dir.display().to_string(), "DIR")
        .replace("conntrackd", "PROG")
        .replace("ctsyncd", "PROG");
    let mut out = String::new();
    for l in text.split_inclusive('\n') {
        match (l.starts_with('['), l.find(") ")) {
            (true, Some(i)) if l[..i].contains("(pid=") => out.push_str(&l[i + 2..]),
            _ => out.push_str(l),
        }
    }
    out
}

/// Runs the steps on a pair of `d`; returns what each step saw (the first entry: before any step).
fn run(d: Daemon) -> Vec<Seen> {
    let mut o = Opts::new("FTFW", LinkKind::Udp);
    o.mode_body = format!("\t\tPurgeTimeout {PURGE_SECS}");
    let lab = lab(
        if d == Daemon::Ctsyncd { "cly" } else { "clc" },
        &[d, d],
        &o,
    );
    let b = &lab.nodes[1];
    start_with_entries(&lab, LOCAL);
    let e = b.wait_external(Duration::from_secs(15), |e| e.len() == ENTRIES.len());
    assert_eq!(e.len(), ENTRIES.len(), "{d:?}: the entries did not arrive");
    let socket = lab.dir.join("n1.ctl");
    let look = |status: i32, stdout: String, stderr: String| {
        let running = !b.pids().is_empty() && socket.exists();
        let count = |flag: &str| running.then(|| b.cache(flag).len());
        Seen {
            status,
            stdout,
            stderr,
            internal: count("-i"),
            external: count("-e"),
            kernel: b.table().len(),
            running,
            socket: socket.exists(),
        }
    };
    let mut seen = vec![look(0, String::new(), String::new())];
    for s in STEPS {
        if s.args.is_empty() {
            std::thread::sleep(s.settle);
            seen.push(look(0, String::new(), String::new()));
            continue;
        }
        let out = b.client(s.args);
        let mut stdout = normalise(&String::from_utf8_lossy(&out.stdout), b, &lab.dir);
        if s.unordered {
            let mut lines: Vec<String> = stdout.lines().map(timeless).collect();
            lines.sort_unstable();
            stdout = lines.join("\n");
        }
        let stderr = normalise(&String::from_utf8_lossy(&out.stderr), b, &lab.dir);
        std::thread::sleep(s.settle);
        if s.until_external {
            b.wait_external(Duration::from_secs(10), |e| e.len() == ENTRIES.len());
        }
        seen.push(look(out.status.code().unwrap_or(-1), stdout, stderr));
    }
    seen
}

/// The differences README's ctsyncd section lists, checked to be there and then removed.
fn pinned(step: &str, theirs: &mut Seen, ours: &mut Seen) {
    // The usage text: ctsyncd's version line names itself, and it lists `-o json`.
    if step == "-x" {
        for (from, to) in [
            ("daemon v1.4.7 (linux-ha-rs PROG)\n", "daemon v1.4.7\n"),
            (
                "  -o json, print entries and statistics as JSON (PROG)\n",
                "",
            ),
        ] {
            assert!(ours.stdout.contains(from), "{}", ours.stdout);
            ours.stdout = ours.stdout.replace(from, to);
        }
    }
    // `-i -x`: conntrackd prints the kernel's conntrack id, ctsyncd's internal cache does not keep it.
    if step == "-i -x" {
        assert!(!ours.stdout.contains("<id>"), "{}", ours.stdout);
        let mut out = String::new();
        let mut rest = theirs.stdout.as_str();
        let mut ids = 0;
        while let Some(i) = rest.find("<id>") {
            let end = rest[i..].find("</id>").map_or(rest.len(), |j| i + j + 5);
            assert!(rest[i + 4..end - 5].chars().all(|c| c.is_ascii_digit()));
            out.push_str(&rest[..i]);
            rest = &rest[end..];
            ids += 1;
        }
        out.push_str(rest);
        assert_eq!(ids, theirs.internal.unwrap_or(0), "{}", theirs.stdout);
        theirs.stdout = out;
    }
}

#[test]
fn client_commands_match_conntrackd() {
    if !ready() {
        return;
    }
    let (theirs, ours) = std::thread::scope(|s| {
        let c = s.spawn(|| run(Daemon::Conntrackd));
        let y = s.spawn(|| run(Daemon::Ctsyncd));
        (c.join().unwrap(), y.join().unwrap())
    });
    let names = std::iter::once("(start)").chain(STEPS.iter().map(|s| s.args));
    let mut diffs = Vec::new();
    for ((name, mut t), mut o) in names.zip(theirs.clone()).zip(ours) {
        pinned(name, &mut t, &mut o);
        if t != o {
            diffs.push(format!("`{name}`:\n conntrackd {t:#?}\n ctsyncd    {o:#?}"));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
    // What conntrackd did, so that the comparison is known to have run on changing state: after each
    // step, (exit status, -i count, -e count, kernel entries, running).
    let (n, l) = (ENTRIES.len(), LOCAL.len());
    let up = |i, e, k| (0, Some(i), Some(e), k, true);
    let want = [
        up(l, n, l),                    // start: B's own entry, A's in the external cache
        (1, Some(l), Some(n), l, true), // -x: usage
        (1, Some(l), Some(n), l, true), // -s bogus
        up(l, n, l),                    // -i -e: the last command wins
        up(l, n, l),                    // -k -i: the last command wins
        up(l, n, l),                    // -i -x
        up(l, n, l),                    // -e -x
        up(0, n, l),                    // -f internal
        up(l, n, l),                    // -R: the kernel's entry again
        up(l, 0, l),                    // -f external
        up(l, n, l),                    // -n: A sent everything again
        up(0, 0, l),                    // -f
        up(0, n, l),                    // -n
        up(n, n, n + l),                // -c: the commit's events fill the internal cache
        up(n, n, n + l),                // -t: nothing yet
        up(0, n, 0),                    // PurgeTimeout later: kernel flushed
        up(n, n, n),                    // -c
        up(0, n, 0),                    // -F
        (0, None, None, 0, false),      // -k
        (1, None, None, 0, false),      // -i: cannot connect
        (1, None, None, 0, false),      // -k: cannot connect
    ];
    let got: Vec<_> = theirs
        .iter()
        .map(|t| (t.status, t.internal, t.external, t.kernel, t.running))
        .collect();
    assert_eq!(got, want);
}
