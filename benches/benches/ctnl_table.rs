//! The conntrack table speed bench (issue 2): `ctnl` against the raw netlink floor of the same kernel
//! requests, 200,000 UDP entries in a fresh network namespace.
//!
//! ```text
//! cargo bench -p benches --bench ctnl_table
//! CTNL_BENCH_N=20000 CTNL_BENCH_ROUNDS=1 cargo bench -p benches --bench ctnl_table   # quick look
//! ```
//!
//! Library calls against the floor of the same work, never against a CLI (that comparison, process
//! against process, is `conntrack_cli`): in one namespace, a warm-up round and then `CTNL_BENCH_ROUNDS`
//! (3) rounds, ctnl and the floor taking turns at going first:
//! * batched create: `ctnl` (typed entries built inside the timing, one batch) vs the raw floor
//!   (hand-built messages, <= 96 KiB per sendmsg); checked: `nf_conntrack_count` is `n` after each;
//! * typed dump: `ctnl` decoding every entry (the owning `Iterator`, and the lending `Dump::next_into`)
//!   vs the raw dump floor (count messages, parse nothing); checked: each counts `n` entries;
//! * filtered delete of the quarter with `dport 53`: `ctnl`'s filtered flush vs the raw kernel-side
//!   filtered flush (the same CTA_FILTER request, Linux >= 6.11), plus the same flush with a filter that
//!   matches nothing (the cost of the kernel's walk alone); checked: the count drops by exactly the
//!   quarter, or not at all for the walk;
//! * the peak memory of a child process that only dumps the table with `ctnl`.
//!
//! Every step is timed twice: wall clock, and CPU time (user + system) of this thread (ctnetlink works
//! inside the caller's `sendmsg`/`recvmsg`, so the kernel's share counts). On a shared, loaded machine the
//! CPU-time ratios are the steadier view; the targets are judged on wall time.
//!
//! Needs root: a failure under `cargo xtask ci`/`TESTKIT_STRICT=1`, a counted skip otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use benches::ctraw::{self, RawCt, UdpFlow};
use benches::{median, ms};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT: u32 = 600;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--child-dump") {
        child_dump();
        return;
    }
    if args.iter().any(|a| a == "--child-idle") {
        println!("{}", vm_hwm_kib());
        return;
    }
    let n: usize = env_or("CTNL_BENCH_N", 200_000);
    let rounds: usize = env_or("CTNL_BENCH_ROUNDS", 3);

    let Some(_ns) = testkit::netns() else { return };
    let max: usize = std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        max == 0 || max >= n,
        "nf_conntrack_max {max} is below the bench size {n}"
    );

    let flows = ctraw::flows(n);
    let dns: Vec<UdpFlow> = flows.iter().copied().filter(|f| f.dport == 53).collect();
    let mut raw = RawCt::new().unwrap();
    let mut ct = ctnl::Conntrack::open().unwrap();
    let mut s = Samples::default();
    println!("{}", benches::context("ctnl_table"));
    println!("{n} UDP entries, warm-up + {rounds} round(s), fresh network namespace");
    for round in 0..=rounds {
        let keep = round > 0;
        // The floor goes first in odd rounds, ctnl in even ones.
        let floor_first = benches::peer_first(round);

        // --- batched create ---
        for floor in [floor_first, !floor_first] {
            raw.flush().unwrap();
            expect_count(0);
            let t = Clock::start();
            if floor {
                assert_eq!(
                    raw.create_batched(&flows, TIMEOUT).unwrap(),
                    0,
                    "raw creates"
                );
            } else {
                ctnl_ops::create(&mut ct, &flows, TIMEOUT);
            }
            let m = t.stop();
            expect_count(n);
            if keep {
                if floor {
                    &mut s.create_raw
                } else {
                    &mut s.create_ctnl
                }
                .push(m);
            }
        }

        // --- dump (the table holds the n entries made last) ---
        for floor in [floor_first, !floor_first] {
            if floor {
                let t = Clock::start();
                let got = raw.dump_count().unwrap();
                let m = t.stop();
                assert_eq!(got, n, "raw dump count");
                if keep {
                    s.dump_raw.push(m);
                }
            } else {
                let t = Clock::start();
                let got = ctnl_ops::dump_count(&mut ct);
                let m = t.stop();
                assert_eq!(got, n, "ctnl dump count");
                let t = Clock::start();
                let got = ctnl_ops::dump_count_into(&mut ct);
                let m_into = t.stop();
                assert_eq!(got, n, "ctnl next_into dump count");
                if keep {
                    s.dump_ctnl.push(m);
                    s.dump_ctnl_into.push(m_into);
                }
            }
        }

        // --- filtered delete of dport 53, each on the full table ---
        // The same kernel flush with a filter that matches nothing: the cost of the walk alone.
        let t = Clock::start();
        raw.flush_udp_dport(9).unwrap();
        let walk = t.stop();
        expect_count(n);
        if keep {
            s.delete_raw_walk.push(walk);
        }
        for floor in [floor_first, !floor_first] {
            expect_count(n);
            let t = Clock::start();
            if floor {
                raw.flush_udp_dport(53).unwrap();
            } else {
                assert_eq!(
                    ctnl_ops::delete_dport(&mut ct, 53),
                    dns.len(),
                    "ctnl deleted"
                );
            }
            let m = t.stop();
            expect_count(n - dns.len());
            if keep {
                if floor {
                    &mut s.delete_raw
                } else {
                    &mut s.delete_ctnl
                }
                .push(m);
            }
            assert_eq!(raw.create_batched(&dns, TIMEOUT).unwrap(), 0);
        }
        benches::round_done(round, if floor_first { "floor" } else { "ctnl" });
    }

    // --- peak memory of a process that only dumps (table full: n entries) ---
    expect_count(n);
    let exe = std::env::current_exe().unwrap();
    let idle_kib: u64 = child_output(Command::new(&exe).arg("--child-idle"))
        .trim()
        .parse()
        .unwrap();
    let out = child_output(Command::new(&exe).arg("--child-dump"));
    let mut it = out.split_whitespace();
    let dumped: usize = it.next().unwrap().parse().unwrap();
    let hwm_kib: u64 = it.next().unwrap().parse().unwrap();
    let heap_peak: u64 = it.next().unwrap().parse().unwrap();
    assert_eq!(dumped, n, "child dump count");
    raw.flush().unwrap();

    s.report(n, dns.len(), idle_kib, hwm_kib, heap_peak);
}

#[derive(Default)]
struct Samples {
    create_raw: Meas,
    create_ctnl: Meas,
    dump_raw: Meas,
    dump_ctnl: Meas,
    dump_ctnl_into: Meas,
    delete_raw: Meas,
    delete_raw_walk: Meas,
    delete_ctnl: Meas,
}

/// Wall-clock and CPU-time samples of one measured step.
///
/// CPU time is user + system time of this thread, which does the work for ctnl and the raw floors alike.
/// ctnetlink does its work in the caller's `sendmsg`/`recvmsg`, so the kernel's share is included, while
/// time spent waiting for a CPU on a shared, loaded machine is not: the CPU-time ratios are the
/// noise-resistant view of the same comparison.
#[derive(Default)]
struct Meas {
    wall: Vec<Duration>,
    cpu: Vec<Duration>,
}

impl Meas {
    fn push(&mut self, (wall, cpu): (Duration, Duration)) {
        self.wall.push(wall);
        self.cpu.push(cpu);
    }
}

/// Wall clock and this thread's CPU time from `start` to `stop`.
struct Clock {
    wall: Instant,
    cpu: Duration,
}

impl Clock {
    fn start() -> Self {
        Clock {
            wall: Instant::now(),
            cpu: benches::cpu::thread(),
        }
    }

    fn stop(&self) -> (Duration, Duration) {
        let wall = self.wall.elapsed();
        (wall, benches::cpu::thread().saturating_sub(self.cpu))
    }
}

fn med(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    median(&mut v).unwrap()
}

impl Samples {
    fn report(&self, n: usize, deleted: usize, idle_kib: u64, hwm_kib: u64, heap_peak: u64) {
        let line = |what: &str, m: &Meas| {
            let all: Vec<String> = m.wall.iter().map(|d| format!("{:.1}", ms(*d))).collect();
            println!(
                "  {what:<34} median {:>8.1} ms   cpu {:>8.1} ms   wall samples [{}]",
                ms(med(&m.wall)),
                ms(med(&m.cpu)),
                all.join(", ")
            );
        };
        let ratio = |a: &Meas, b: &Meas| ms(med(&a.wall)) / ms(med(&b.wall));
        let cpu_ratio = |a: &Meas, b: &Meas| ms(med(&a.cpu)) / ms(med(&b.cpu));

        let both = |what: &str, a: &Meas, b: &Meas| {
            format!(
                "{what} = {:.2}x wall, {:.2}x cpu",
                ratio(a, b),
                cpu_ratio(a, b)
            )
        };

        println!("batched create of {n} entries");
        line("raw floor (<=96 KiB per sendmsg)", &self.create_raw);
        line("ctnl batch", &self.create_ctnl);
        let r = ratio(&self.create_ctnl, &self.create_raw);
        println!(
            "  {} (target <= 1.25x: {})",
            both("ctnl / floor", &self.create_ctnl, &self.create_raw),
            verdict(r <= 1.25)
        );

        println!("dump of {n} entries");
        line("raw floor (count, no parsing)", &self.dump_raw);
        line("ctnl typed dump (Iterator)", &self.dump_ctnl);
        line("ctnl typed dump (next_into)", &self.dump_ctnl_into);
        let r = ratio(&self.dump_ctnl, &self.dump_raw);
        let ri = ratio(&self.dump_ctnl_into, &self.dump_raw);
        println!(
            "  {} (target <= 1.15x: {})",
            both("ctnl Iterator / floor", &self.dump_ctnl, &self.dump_raw),
            verdict(r <= 1.15)
        );
        println!(
            "  {} (target <= 1.15x: {})",
            both(
                "ctnl next_into / floor",
                &self.dump_ctnl_into,
                &self.dump_raw
            ),
            verdict(ri <= 1.15)
        );
        let mib = |k: u64| k as f64 / 1024.0;
        println!(
            "  ctnl dump child process: VmHWM {:.1} MiB (idle process {:.1} MiB), peak live heap {:.2} MiB \
             (target < 16 MiB: {})",
            mib(hwm_kib),
            mib(idle_kib),
            heap_peak as f64 / (1024.0 * 1024.0),
            verdict(hwm_kib < 16 * 1024)
        );

        println!("filtered delete of {deleted} entries (dport 53)");
        line("raw kernel-side filtered flush", &self.delete_raw);
        line("  same, filter matching nothing", &self.delete_raw_walk);
        line("ctnl filtered flush", &self.delete_ctnl);
        println!(
            "  {}; the walk alone is {:.0}% of the floor",
            both("ctnl / floor", &self.delete_ctnl, &self.delete_raw),
            100.0 * ratio(&self.delete_raw_walk, &self.delete_raw)
        );
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn expect_count(n: usize) {
    let c = ctraw::count().unwrap();
    assert_eq!(c, n as u64, "nf_conntrack_count");
}

fn child_output(cmd: &mut Command) -> String {
    let out = cmd.stderr(Stdio::inherit()).output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

/// The high-water mark of this process's resident memory, KiB.
fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string(Path::new("/proc/self/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Child mode: dump the table with ctnl once; print the count, VmHWM (KiB) and the peak live heap.
fn child_dump() {
    let mut ct = ctnl::Conntrack::open().unwrap();
    let got = ctnl_ops::dump_count(&mut ct);
    println!("{got} {} {}", vm_hwm_kib(), alloc_count::peak());
}

/// A counting global allocator: the peak of live heap bytes (for the dump's memory bound).
mod alloc_count {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering};

    static LIVE: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);

    struct Counting;

    // SAFETY (no unsafe code of our own beyond forwarding): every call forwards to `System` with the
    // caller's arguments, so `System`'s contract is the caller's contract.
    #[allow(unsafe_code)]
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded unchanged to the system allocator.
            let p = unsafe { System.alloc(layout) };
            if !p.is_null() {
                let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
                PEAK.fetch_max(now, Ordering::Relaxed);
            }
            p
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: forwarded unchanged to the system allocator.
            unsafe { System.dealloc(ptr, layout) };
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: forwarded unchanged to the system allocator.
            let p = unsafe { System.realloc(ptr, layout, new_size) };
            if !p.is_null() {
                if new_size >= layout.size() {
                    let now = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed)
                        + (new_size - layout.size());
                    PEAK.fetch_max(now, Ordering::Relaxed);
                } else {
                    LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
                }
            }
            p
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    /// The peak of live heap bytes so far.
    pub fn peak() -> usize {
        PEAK.load(Ordering::Relaxed)
    }
}

/// The `ctnl` side of each measurement: the typed API as an application would use it.
mod ctnl_ops {
    use super::UdpFlow;
    use ctnl::{Conntrack, DumpFilter, Entry, Tuple, TupleFilter};
    use std::hint::black_box;
    use std::net::IpAddr;

    /// Creates every flow with one ctnl batch (typed entries built here, inside the timing); panics on
    /// any per-entry error.
    pub fn create(ct: &mut Conntrack, flows: &[UdpFlow], timeout: u32) {
        let mut batch = ct.batch();
        for f in flows {
            let orig = Tuple::ports(IpAddr::V4(f.src), IpAddr::V4(f.dst), 17, f.sport, f.dport);
            let mut e = Entry::new(orig.clone(), orig.reversed());
            e.timeout = Some(timeout);
            batch.create(&e).unwrap();
        }
        let report = batch.finish().unwrap();
        assert!(
            report.failures.is_empty(),
            "ctnl batch failures: {:?}",
            &report.failures[..1]
        );
        assert_eq!(report.ok, flows.len());
    }

    /// Dumps the table with ctnl, decoding every entry into its typed form; returns the count.
    pub fn dump_count(ct: &mut Conntrack) -> usize {
        let mut n = 0;
        for e in ct.dump(&DumpFilter::all()).unwrap() {
            black_box(e.unwrap());
            n += 1;
        }
        n
    }

    /// Dumps the table with ctnl's lending `Dump::next_into`, decoding every entry into one reused typed
    /// `Entry`; returns the count.
    pub fn dump_count_into(ct: &mut Conntrack) -> usize {
        let mut dump = ct.dump(&DumpFilter::all()).unwrap();
        let mut entry = Entry::default();
        let mut n = 0;
        while let Some(r) = dump.next_into(&mut entry) {
            r.unwrap();
            black_box(&entry);
            n += 1;
        }
        n
    }

    /// Deletes every UDP entry with original destination port `port` through ctnl's filtered flush;
    /// returns how many entries went.
    pub fn delete_dport(ct: &mut Conntrack, port: u16) -> usize {
        let before = benches::ctraw::count().unwrap();
        // conntrack -D defaults to IPv4 too; without a family the kernel refuses a CTA_FILTER request
        // (EOPNOTSUPP).
        let filter = DumpFilter::all()
            .with_family(ctnl::Family::Ipv4)
            .with_orig(TupleFilter::new().with_proto(17).with_dport(port));
        let outcome = ct.flush(&filter).unwrap();
        let after = benches::ctraw::count().unwrap();
        if let Some(d) = outcome.deleted {
            assert_eq!(d as u64, before - after);
        }
        (before - after) as usize
    }
}
