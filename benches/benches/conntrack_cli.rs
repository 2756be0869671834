//! The `conntrack` CLI bench (issue 3): our `conntrack` against conntrack-tools 1.4.7, process against
//! process on the same table, with the raw netlink floors of the same kernel work, in one fresh network
//! namespace.
//!
//! ```text
//! cargo bench -p benches --bench conntrack_cli                                                   # root + conntrack-tools
//! CONNTRACK_BENCH_N=20000 CONNTRACK_BENCH_ROUNDS=1 cargo bench -p benches --bench conntrack_cli  # quick look
//! ```
//!
//! * `conntrack -R FILE` of 200,000 `-I -p udp ...` lines; floor: the same creates hand-built, 96 KiB per
//!   `sendmsg`. Checked: the table holds exactly the 200,000 entries afterwards.
//! * `conntrack -L` of those 200,000 entries; floor: one dump request, messages counted, nothing parsed.
//!   Checked: each side printed 200,000 lines, both printed the same lines (an order-free checksum with the
//!   timeout column left out, which counts down between runs), and the `200000 flow entries have been
//!   shown.` summary.
//! * `conntrack -D -p udp --dport 53` deleting 50,000 of 100,000 entries. Both tools print every entry
//!   they delete, so the floor is what any `-D` that prints must do: a kernel-filtered dump of the 50,000
//!   (nothing parsed) plus the kernel's filtered flush of them. Checked: 50,000 lines each, the same lines
//!   on both sides, the summary, and 50,000 entries left in the table.
//!
//! The rules of `benches/src/lib.rs` apply: our `conntrack` is rebuilt first (`cargo build --release -p cli
//! --bin conntrack`; `$CONNTRACK_BIN` overrides it), round 0 is a warm-up, peer and ours swap order every
//! round, and a timing counts only after its side's output checked out. stdout goes to a file in both
//! cases. Medians of `CONNTRACK_BENCH_ROUNDS` (3) rounds, wall and CPU time (user + system of the process).
//! Needs root and conntrack-tools: a failure under `cargo xtask ci`/`TESTKIT_STRICT=1`, a counted skip
//! otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use benches::ctraw::{self, RawCt, UdpFlow};
use benches::{Digest, Timed, median, ms, peer_first, run_timed};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const TIMEOUT: u32 = 600;

/// `conntrack -L`'s third field is the timeout, which moves between two runs.
const TIMEOUT_FIELD: Option<usize> = Some(2);

fn expect_count(n: usize) {
    assert_eq!(ctraw::count().unwrap() as usize, n, "nf_conntrack_count");
}

/// Wall and CPU samples of one side of one measurement.
#[derive(Default)]
struct Samples {
    wall: Vec<Duration>,
    cpu: Vec<Duration>,
}

impl Samples {
    fn push(&mut self, wall: Duration, cpu: Duration) {
        self.wall.push(wall);
        self.cpu.push(cpu);
    }
    fn wall(&self) -> Duration {
        median(&mut self.wall.clone()).unwrap()
    }
    fn cpu(&self) -> Duration {
        median(&mut self.cpu.clone()).unwrap()
    }
}

struct Tool {
    name: &'static str,
    exe: PathBuf,
}

/// Runs one side, checks its exit status and stderr summary, and returns the timing with the digest of
/// what it printed.
fn run(tool: &Tool, args: &[&str], out: &Path, summary: &str) -> (Timed, Digest) {
    let t = run_timed(Command::new(&tool.exe).args(args), out);
    assert!(
        t.status.success(),
        "{} {args:?} failed ({}): {}",
        tool.name,
        t.status,
        t.stderr
    );
    assert!(
        t.stderr.contains(summary),
        "{} {args:?}: no `{summary}` in its stderr: {}",
        tool.name,
        t.stderr
    );
    (t, Digest::of_file(out, TIMEOUT_FIELD))
}

fn main() {
    let n: usize = std::env::var("CONNTRACK_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let rounds: usize = std::env::var("CONNTRACK_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let Some(_ns) = testkit::netns() else { return };
    let Some(peer) = testkit::require_tool("conntrack") else {
        return;
    };
    let mine = match std::env::var_os("CONNTRACK_BIN") {
        Some(p) => PathBuf::from(p),
        None => benches::build_one(&["-p", "cli", "--bin", "conntrack"], "conntrack"),
    };
    let peer = Tool {
        name: "conntrack-tools",
        exe: peer,
    };
    let ours = Tool {
        name: "ours",
        exe: mine,
    };

    let flows = ctraw::flows(n);
    // Delete scenario: n/2 entries, half of them with dport 53.
    let half: Vec<UdpFlow> = ctraw::flows(n / 2)
        .into_iter()
        .enumerate()
        .map(|(i, mut f)| {
            f.dport = if i % 2 == 0 { 53 } else { 123 };
            f
        })
        .collect();
    let dns = half.iter().filter(|f| f.dport == 53).count();
    let tmp = std::env::temp_dir().join(format!("conntrack-cli-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let rfile = tmp.join("entries.txt");
    std::fs::write(&rfile, ctraw::conntrack_r_lines(&flows, TIMEOUT)).unwrap();
    let out = tmp.join("stdout");
    let rpath = rfile.to_str().unwrap();

    let mut raw = RawCt::new().unwrap();
    let [mut r_raw, mut r_ours, mut r_peer] = [(); 3].map(|()| Samples::default());
    let [mut l_raw, mut l_ours, mut l_peer] = [(); 3].map(|()| Samples::default());
    let [mut d_dump, mut d_flush, mut d_ours, mut d_peer] = [(); 4].map(|()| Samples::default());
    println!("{}", benches::context("conntrack_cli"));
    println!(
        "{n} UDP entries, warm-up + {rounds} round(s), fresh network namespace; ours: {}; conntrack-tools: {}",
        ours.exe.display(),
        peer.exe.display()
    );
    for round in 0..=rounds {
        let keep = round > 0;
        let sides: [(&Tool, bool); 2] = if peer_first(round) {
            [(&peer, true), (&ours, false)]
        } else {
            [(&ours, false), (&peer, true)]
        };

        // --- -R (create) ---
        raw.flush().unwrap();
        let t0 = cpu_thread();
        let t = Instant::now();
        assert_eq!(raw.create_batched(&flows, TIMEOUT).unwrap(), 0);
        let (w, c) = (t.elapsed(), cpu_thread() - t0);
        expect_count(n);
        if keep {
            r_raw.push(w, c);
        }
        for (tool, is_peer) in sides {
            raw.flush().unwrap();
            expect_count(0);
            let t = run_timed(Command::new(&tool.exe).args(["-R", rpath]), &out);
            assert!(t.status.success(), "{} -R: {}", tool.name, t.stderr);
            expect_count(n);
            if keep {
                let s = if is_peer { &mut r_peer } else { &mut r_ours };
                s.push(t.wall, t.cpu);
            }
        }

        // --- -L (the table holds the n entries the last -R made) ---
        let t0 = cpu_thread();
        let t = Instant::now();
        assert_eq!(raw.dump_count().unwrap(), n);
        let (w, c) = (t.elapsed(), cpu_thread() - t0);
        if keep {
            l_raw.push(w, c);
        }
        let mut seen: Option<Digest> = None;
        for (tool, is_peer) in sides {
            let (t, d) = run(
                tool,
                &["-L"],
                &out,
                &format!(" {n} flow entries have been shown."),
            );
            assert_eq!(d.lines, n, "{} -L printed {} lines", tool.name, d.lines);
            assert_eq!(
                *seen.get_or_insert(d),
                d,
                "-L: the two tools printed different entries"
            );
            if keep {
                let s = if is_peer { &mut l_peer } else { &mut l_ours };
                s.push(t.wall, t.cpu);
            }
        }

        // --- -D -p udp --dport 53: half of n/2 ---
        // Floors: reading the matching entries (kernel-filtered dump, nothing parsed), then the kernel
        // removing them (one filtered flush). A `-D` that prints what it deletes needs both.
        raw.flush().unwrap();
        assert_eq!(raw.create_batched(&half, TIMEOUT).unwrap(), 0);
        let t0 = cpu_thread();
        let t = Instant::now();
        assert_eq!(raw.dump_count_udp_dport(53).unwrap(), dns);
        let (dw, dc) = (t.elapsed(), cpu_thread() - t0);
        let t0 = cpu_thread();
        let t = Instant::now();
        raw.flush_udp_dport(53).unwrap();
        let (fw, fc) = (t.elapsed(), cpu_thread() - t0);
        expect_count(half.len() - dns);
        if keep {
            d_dump.push(dw, dc);
            d_flush.push(fw, fc);
        }
        let mut seen: Option<Digest> = None;
        for (tool, is_peer) in sides {
            raw.flush().unwrap();
            assert_eq!(raw.create_batched(&half, TIMEOUT).unwrap(), 0);
            expect_count(half.len());
            let (t, d) = run(
                tool,
                &["-D", "-p", "udp", "--dport", "53"],
                &out,
                &format!(" {dns} flow entries have been deleted."),
            );
            expect_count(half.len() - dns);
            assert_eq!(d.lines, dns, "{} -D printed {} lines", tool.name, d.lines);
            assert_eq!(
                *seen.get_or_insert(d),
                d,
                "-D: the two tools printed different entries"
            );
            if keep {
                let s = if is_peer { &mut d_peer } else { &mut d_ours };
                s.push(t.wall, t.cpu);
            }
        }
        benches::round_done(round, sides[0].0.name);
    }
    raw.flush().unwrap();
    std::fs::remove_dir_all(&tmp).ok();

    let row = |what: &str, s: &Samples| {
        let all: Vec<String> = s.wall.iter().map(|d| format!("{:.1}", ms(*d))).collect();
        println!(
            "  {what:<40} {:>8.1} ms wall  {:>8.1} ms cpu   wall samples [{}]",
            ms(s.wall()),
            ms(s.cpu()),
            all.join(", ")
        );
    };
    let x = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };

    println!("-R, {n} lines (table checked after each)");
    row("raw floor (batched creates)", &r_raw);
    row("ours", &r_ours);
    row("conntrack-tools", &r_peer);
    let c = x(r_peer.wall(), r_ours.wall());
    println!(
        "  conntrack-tools / ours = {c:.2}x wall, {:.2}x cpu (target >= 2x: {}); ours / floor = {:.2}x",
        x(r_peer.cpu(), r_ours.cpu()),
        verdict(c >= 2.0),
        x(r_ours.wall(), r_raw.wall())
    );

    println!("-L, {n} entries (same {n} lines on both sides)");
    row("raw floor (dump, messages counted)", &l_raw);
    row("ours", &l_ours);
    row("conntrack-tools", &l_peer);
    let (a, b) = (
        x(l_peer.wall(), l_ours.wall()),
        x(l_ours.wall(), l_raw.wall()),
    );
    println!(
        "  conntrack-tools / ours = {a:.2}x wall, {:.2}x cpu (target >= 2.5x: {})",
        x(l_peer.cpu(), l_ours.cpu()),
        verdict(a >= 2.5)
    );
    println!(
        "  ours / floor = {b:.2}x (target <= 1.3x: {}); conntrack-tools / floor = {:.2}x (the most any -L can gain)",
        verdict(b <= 1.3),
        x(l_peer.wall(), l_raw.wall())
    );

    println!(
        "-D -p udp --dport 53, {dns} of {} entries (both print each deleted entry; same lines on both sides)",
        half.len()
    );
    row("floor: kernel-filtered dump", &d_dump);
    row("floor: kernel filtered flush", &d_flush);
    row("ours", &d_ours);
    row("conntrack-tools", &d_peer);
    let d = x(d_peer.wall(), d_ours.wall());
    let floor = d_dump.wall() + d_flush.wall();
    println!(
        "  conntrack-tools / ours = {d:.2}x wall, {:.2}x cpu (target >= 5x: {})",
        x(d_peer.cpu(), d_ours.cpu()),
        verdict(d >= 5.0)
    );
    println!(
        "  floor = dump + flush = {:.1} ms; ours / floor = {:.2}x; conntrack-tools / floor = {:.2}x (the most a -D that prints can gain)",
        ms(floor),
        x(d_ours.wall(), floor),
        x(d_peer.wall(), floor)
    );
}

fn cpu_thread() -> Duration {
    benches::cpu::thread()
}
