//! The `conntrack` CLI bench (issue 3): our `conntrack` against conntrack-tools 1.4.7 and the raw netlink
//! floor, in one fresh network namespace, median of 3 rounds.
//!
//! ```text
//! cargo build --release -p cli --bin conntrack && cargo bench -p benches --bench conntrack_cli
//! CONNTRACK_BENCH_N=20000 CONNTRACK_BENCH_ROUNDS=1 cargo bench -p benches --bench conntrack_cli   # quick look
//! ```
//!
//! * `conntrack -L > /dev/null` on 200,000 UDP entries: ours vs conntrack-tools vs the raw dump floor (one dump
//!   request, count messages, parse nothing);
//! * `conntrack -R FILE` of the same 200,000 `-I` lines: ours vs conntrack-tools (raw batched create shown for
//!   reference);
//! * `conntrack -D -p udp --dport 53 > /dev/null` deleting 50,000 of 100,000 entries: ours vs conntrack-tools,
//!   and the two raw floors whose sum bounds any `-D` that prints what it deletes: a kernel-filtered dump of
//!   the 50,000 (messages counted, nothing parsed) and the kernel's filtered flush of them.
//!
//! Our binary is `target/release/conntrack` next to this bench (or `$CONNTRACK_BIN`). Needs root and
//! conntrack-tools; without them it prints SKIP and exits 0 (under `CI=true` it fails instead).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use benches::ctraw::{self, RawCt, UdpFlow};
use benches::median;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT: u32 = 600;

fn ours() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("CONNTRACK_BIN") {
        return Some(PathBuf::from(p));
    }
    // target/release/deps/conntrack_cli-HASH -> target/release/conntrack
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.parent()?.join("conntrack");
    p.is_file().then_some(p)
}

fn timed(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let st = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let d = t.elapsed();
    // -D exits 1 only when nothing matched; every timed command here must succeed.
    assert!(st.success(), "{cmd:?} failed: {st}");
    d
}

fn expect_count(n: usize) {
    assert_eq!(ctraw::count().unwrap() as usize, n, "nf_conntrack_count");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
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
    let Some(mine) = ours() else {
        testkit::require(
            "target/release/conntrack (cargo build --release -p cli --bin conntrack)",
            false,
        );
        return;
    };

    let flows = ctraw::flows(n);
    // Delete scenario: half of n/2 entries have dport 53.
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

    let mut raw = RawCt::new().unwrap();
    let (mut l_raw, mut l_ours, mut l_peer) = (Vec::new(), Vec::new(), Vec::new());
    let (mut r_raw, mut r_ours, mut r_peer) = (Vec::new(), Vec::new(), Vec::new());
    let (mut d_ours, mut d_peer) = (Vec::new(), Vec::new());
    let (mut d_dump, mut d_flush) = (Vec::new(), Vec::new());
    println!("conntrack_cli: {n} UDP entries, {rounds} round(s), fresh network namespace");
    println!(
        "ours: {}; conntrack-tools: {}",
        mine.display(),
        peer.display()
    );
    for round in 0..rounds {
        // --- -R (create) ---
        raw.flush().unwrap();
        let t = Instant::now();
        assert_eq!(raw.create_batched(&flows, TIMEOUT).unwrap(), 0);
        r_raw.push(t.elapsed());
        expect_count(n);
        raw.flush().unwrap();
        r_peer.push(timed(Command::new(&peer).arg("-R").arg(&rfile)));
        expect_count(n);
        raw.flush().unwrap();
        r_ours.push(timed(Command::new(&mine).arg("-R").arg(&rfile)));
        expect_count(n);

        // --- -L > /dev/null (the table holds the n entries we made) ---
        let t = Instant::now();
        assert_eq!(raw.dump_count().unwrap(), n);
        l_raw.push(t.elapsed());
        l_peer.push(timed(Command::new(&peer).arg("-L")));
        l_ours.push(timed(Command::new(&mine).arg("-L")));

        // --- -D -p udp --dport 53: 50% of n/2 ---
        // Floors: reading the matching entries (kernel-filtered dump, nothing parsed), then the kernel
        // removing them (one filtered flush). A `-D` that prints what it deletes needs both.
        raw.flush().unwrap();
        assert_eq!(raw.create_batched(&half, TIMEOUT).unwrap(), 0);
        let t = Instant::now();
        assert_eq!(raw.dump_count_udp_dport(53).unwrap(), dns);
        d_dump.push(t.elapsed());
        let t = Instant::now();
        raw.flush_udp_dport(53).unwrap();
        d_flush.push(t.elapsed());
        expect_count(half.len() - dns);
        for (who, out) in [(&peer, &mut d_peer), (&mine, &mut d_ours)] {
            raw.flush().unwrap();
            assert_eq!(raw.create_batched(&half, TIMEOUT).unwrap(), 0);
            expect_count(half.len());
            out.push(timed(
                Command::new(who).args(["-D", "-p", "udp", "--dport", "53"]),
            ));
            expect_count(half.len() - dns);
        }
        eprintln!("round {} done", round + 1);
    }
    raw.flush().unwrap();
    std::fs::remove_dir_all(&tmp).ok();

    let m = |v: &mut Vec<Duration>| median(v).unwrap();
    let (lr, lo, lp) = (m(&mut l_raw), m(&mut l_ours), m(&mut l_peer));
    let (rr, ro, rp) = (m(&mut r_raw), m(&mut r_ours), m(&mut r_peer));
    let (dou, dp) = (m(&mut d_ours), m(&mut d_peer));
    let (dd, df) = (m(&mut d_dump), m(&mut d_flush));
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "-L > /dev/null ({n} entries): raw floor {:.1} ms, ours {:.1} ms, conntrack-tools {:.1} ms",
        ms(lr),
        ms(lo),
        ms(lp)
    );
    let (a, b) = (
        lp.as_secs_f64() / lo.as_secs_f64(),
        lo.as_secs_f64() / lr.as_secs_f64(),
    );
    println!(
        "  conntrack-tools / ours = {a:.2}x (target >= 2.5x: {})",
        verdict(a >= 2.5)
    );
    println!(
        "  ours / raw floor = {b:.2}x (target <= 1.3x: {})",
        verdict(b <= 1.3)
    );
    println!(
        "  conntrack-tools / raw floor = {:.2}x (no tool can beat the floor: the most any -L can gain)",
        lp.as_secs_f64() / lr.as_secs_f64()
    );
    println!(
        "-R ({n} lines): raw batched create {:.1} ms, ours {:.1} ms, conntrack-tools {:.1} ms",
        ms(rr),
        ms(ro),
        ms(rp)
    );
    let c = rp.as_secs_f64() / ro.as_secs_f64();
    println!(
        "  conntrack-tools / ours = {c:.2}x (target >= 2x: {})",
        verdict(c >= 2.0)
    );
    println!(
        "-D -p udp --dport 53 ({dns} of {} entries): ours {:.1} ms, conntrack-tools {:.1} ms",
        half.len(),
        ms(dou),
        ms(dp)
    );
    let d = dp.as_secs_f64() / dou.as_secs_f64();
    println!(
        "  conntrack-tools / ours = {d:.2}x (target >= 5x: {})",
        verdict(d >= 5.0)
    );
    let floor = dd + df;
    println!(
        "  raw floors: filtered dump {:.1} ms + filtered flush {:.1} ms = {:.1} ms; ours / floor = {:.2}x; conntrack-tools / floor = {:.2}x (the most a -D that prints each entry can gain)",
        ms(dd),
        ms(df),
        ms(floor),
        dou.as_secs_f64() / floor.as_secs_f64(),
        dp.as_secs_f64() / floor.as_secs_f64()
    );
    println!(
        "  conntrack-tools / filtered flush alone = {:.2}x (deleting without reporting)",
        dp.as_secs_f64() / df.as_secs_f64()
    );
}
