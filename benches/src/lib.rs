//! Shared measurement helpers for the benches: medians, process timing with output checks, the rules
//! every process bench follows, and the raw ctnetlink floor ([`ctraw`]).
//!
//! **The rules of a process bench** (a bench that times whole processes of ours against a peer tool):
//! 1. it rebuilds the release binaries it times ([`build_release`]), so a figure never belongs to a stale
//!    binary;
//! 2. it runs one warm-up round first, whose timings are thrown away (page cache, the kernel's slabs, the
//!    CPU's frequency);
//! 3. it alternates the order of the peer and ours between rounds ([`peer_first`]), so neither always
//!    runs on a table, cache or CPU the other one warmed;
//! 4. it checks what each side produced (counts in the kernel, or line counts and an order-free checksum
//!    of stdout, [`Digest`]) before it accepts a timing: a fast wrong answer is not a figure;
//! 5. it compares the same work: a CLI against a CLI that does the same (both print what `-D` deletes),
//!    a library call against the raw floor of the same kernel request; never a library call against a
//!    CLI that does more.
//!
//! Every bench prints [`context`] first (commit, time, load average), so a figure carries the state of
//! the machine it was taken on.
#![deny(unsafe_code)]
#![warn(missing_docs)]
// A bench reports a broken setup or a wrong answer by panicking, as a failed test does.
#![allow(clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub mod ctraw;
pub mod ipvsraw;
mod nl;
pub mod vrrplab;

/// The median of a non-empty set of samples (the lower middle one for an even count).
pub fn median(samples: &mut [Duration]) -> Option<Duration> {
    samples.sort();
    samples.get(samples.len().saturating_sub(1) / 2).copied()
}

/// Milliseconds, for printing.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Whether the peer runs before ours in round `round` (round 0 is the warm-up): odd rounds peer first,
/// even rounds ours first.
pub fn peer_first(round: usize) -> bool {
    round % 2 == 1
}

/// Peer and ours in the order of round `round`: `[true, false]` (peer first) or `[false, true]`.
pub fn order(round: usize) -> [bool; 2] {
    if peer_first(round) {
        [true, false]
    } else {
        [false, true]
    }
}

/// Reports the end of round `round` (0 is the warm-up) on stderr, naming who went first.
pub fn round_done(round: usize, first: &str) {
    if round == 0 {
        eprintln!("warm-up done ({first} first)");
    } else {
        eprintln!("round {round} done ({first} first)");
    }
}

/// One line naming the commit (`$BENCH_COMMIT`, else `git describe --dirty`), the UTC time and the load
/// average, for the top of a bench's output.
pub fn context(bench: &str) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(testkit::workspace_root())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    // Inside the IPVS VM there is no git: `cargo xtask vm-bench` passes the host's answer.
    let commit = std::env::var("BENCH_COMMIT")
        .unwrap_or_else(|_| git(&["describe", "--always", "--dirty", "--abbrev=7"]));
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let host = std::env::var("BENCH_HOST_LOAD")
        .map(|l| {
            let l: Vec<&str> = l.split_whitespace().take(3).collect();
            format!(" (host load average at start {})", l.join(" "))
        })
        .unwrap_or_default();
    format!(
        "{bench}: commit {commit}, {date}, load average {}{host}, {} CPUs",
        loadavg(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    )
}

/// The 1, 5 and 15 minute load averages from `/proc/loadavg`.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_string())
}

/// Rebuilds release binaries (`cargo build --release ARGS`, e.g. `-p cli --bin conntrack`) and returns
/// `(target name, executable)` for each. Panics if the build fails: a bench must not time a stale binary.
pub fn build_release(args: &[&str]) -> Vec<(String, PathBuf)> {
    let mut all = vec!["build", "--release"];
    all.extend_from_slice(args);
    let built = testkit::cargo_artifacts(&all)
        .unwrap_or_else(|e| panic!("cannot build the binaries this bench times: {e}"));
    built
        .into_iter()
        .filter(|a| a.kind == "bin" || a.kind == "example")
        .map(|a| (a.name, a.executable))
        .collect()
}

/// The one release executable named `name` built by [`build_release`] with `args`.
pub fn build_one(args: &[&str], name: &str) -> PathBuf {
    build_release(args)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, p)| p)
        .unwrap_or_else(|| panic!("cargo build --release {args:?} built no `{name}`"))
}

/// A timed process run.
#[derive(Debug)]
pub struct Timed {
    /// Wall-clock time from spawn to exit.
    pub wall: Duration,
    /// User + system CPU time of the process (and anything it waited for).
    pub cpu: Duration,
    /// Its exit status.
    pub status: std::process::ExitStatus,
    /// Its stderr.
    pub stderr: String,
}

/// Runs `cmd` with stdout written to the file `stdout` (created or truncated; a real file, so both
/// sides pay the same cost for their output and it can be checked afterwards), stdin from `/dev/null`
/// unless the caller set it, and stderr captured. Times it by wall clock and by its CPU time.
pub fn run_timed(cmd: &mut Command, stdout: &Path) -> Timed {
    let out = std::fs::File::create(stdout).unwrap_or_else(|e| panic!("{}: {e}", stdout.display()));
    let before = cpu::children();
    let t = Instant::now();
    let child = cmd
        .stdout(out)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let done = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for {cmd:?}: {e}"));
    let wall = t.elapsed();
    Timed {
        wall,
        cpu: cpu::children().saturating_sub(before),
        status: done.status,
        stderr: String::from_utf8_lossy(&done.stderr).into_owned(),
    }
}

/// What a listing printed: its number of lines and an order-free checksum of them (the sum of a 64-bit
/// FNV-1a hash of each line), optionally with one whitespace-separated field left out of every line
/// (conntrack's timeout column, which counts down between two runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    /// Lines.
    pub lines: usize,
    /// Sum of the lines' hashes.
    pub sum: u64,
}

impl Digest {
    /// The digest of `text`, leaving out field number `skip` (0-based) of each line if given.
    pub fn of(text: &[u8], skip: Option<usize>) -> Digest {
        let mut d = Digest { lines: 0, sum: 0 };
        for line in text.split(|&b| b == b'\n') {
            if line.is_empty() {
                continue;
            }
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            let mut eat = |bytes: &[u8]| {
                for &b in bytes {
                    h ^= u64::from(b);
                    h = h.wrapping_mul(0x0000_0100_0000_01b3);
                }
            };
            let fields = line
                .split(|b| b.is_ascii_whitespace())
                .filter(|f| !f.is_empty());
            for (i, f) in fields.enumerate() {
                if Some(i) != skip {
                    eat(f);
                    eat(b" ");
                }
            }
            d.lines += 1;
            d.sum = d.sum.wrapping_add(h);
        }
        d
    }

    /// The digest of a file's contents.
    pub fn of_file(path: &Path, skip: Option<usize>) -> Digest {
        let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Digest::of(&text, skip)
    }
}

/// `getrusage(2)`, which std does not wrap.
pub mod cpu {
    #![allow(unsafe_code)]
    use std::time::Duration;

    fn tv(t: libc::timeval) -> Duration {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    }

    fn used(who: libc::c_int) -> Duration {
        let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage writes one `struct rusage` to the pointer, which points to space for one.
        let rc = unsafe { libc::getrusage(who, ru.as_mut_ptr()) };
        assert_eq!(rc, 0, "getrusage: {}", std::io::Error::last_os_error());
        // SAFETY: the struct was zero-initialised (a valid rusage) and getrusage succeeded in filling it.
        let ru = unsafe { ru.assume_init() };
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }

    /// User + system time so far of the calling thread.
    pub fn thread() -> Duration {
        used(libc::RUSAGE_THREAD)
    }

    /// User + system time so far of all waited-for children.
    pub fn children() -> Duration {
        used(libc::RUSAGE_CHILDREN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_three_is_the_middle() {
        let mut s = [
            Duration::from_millis(30),
            Duration::from_millis(10),
            Duration::from_millis(20),
        ];
        assert_eq!(median(&mut s), Some(Duration::from_millis(20)));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn digest_ignores_order_and_the_skipped_field_only() {
        let a = b"udp 17 599 src=1 dport=53\nudp 17 598 src=2 dport=53\n";
        let b = b"udp 17 30 src=2 dport=53\nudp  17 31 src=1   dport=53";
        assert_eq!(Digest::of(a, Some(2)), Digest::of(b, Some(2)));
        assert_eq!(Digest::of(a, Some(2)).lines, 2);
        assert_ne!(Digest::of(a, None), Digest::of(b, None));
        let c = b"udp 17 599 src=1 dport=53\nudp 17 598 src=3 dport=53\n";
        assert_ne!(Digest::of(a, Some(2)), Digest::of(c, Some(2)));
        // A line missing is a different digest, not just a different count.
        assert_ne!(
            Digest::of(&a[..26], Some(2)).sum,
            Digest::of(a, Some(2)).sum
        );
    }

    #[test]
    fn rounds_alternate_after_the_warm_up() {
        let order: Vec<bool> = (1..=4).map(peer_first).collect();
        assert_eq!(order, [true, false, true, false]);
    }

    #[test]
    fn a_timed_run_is_checked_by_its_output() {
        let dir = std::env::temp_dir().join(format!("benches-lib-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("out");
        let t = run_timed(
            Command::new("sh").args(["-c", "printf 'a 1\\nb 2\\n'; echo done >&2"]),
            &f,
        );
        assert!(t.status.success());
        assert_eq!(t.stderr, "done\n");
        assert_eq!(Digest::of_file(&f, None), Digest::of(b"b 2\na 1\n", None));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
