//! The conntrack table speed bench (issue 2): 200,000 UDP entries in a fresh network namespace.
//!
//! ```text
//! cargo bench -p benches --bench ctnl_table
//! CTNL_BENCH_N=20000 CTNL_BENCH_ROUNDS=1 cargo bench -p benches --bench ctnl_table   # quick look
//! ```
//!
//! In one run, in one namespace, median of 3 rounds each:
//! * batched create: `ctnl` vs the raw batched-send floor (hand-built messages, <= 96 KiB per sendmsg)
//!   vs `conntrack -R` of the same entries;
//! * typed dump: `ctnl` (decoding every entry; both the owning `Iterator` and the lending
//!   `Dump::next_into`) vs the raw dump floor (count messages, parse nothing) vs
//!   `conntrack -L > /dev/null`, plus the peak RSS of a child process that only dumps with `ctnl`;
//! * filtered delete of the quarter of the entries with `dport 53`: `ctnl` vs `conntrack -D -p udp
//!   --dport 53`, and a raw floor: one kernel-side filtered flush (CTA_FILTER, Linux >= 6.11).
//!
//! Every step is timed twice: wall clock, and CPU time (user + system) of whoever did the work (this
//! thread for ctnl and the floors, the waited-for child for conntrack-tools; ctnetlink works inside the
//! caller's `sendmsg`/`recvmsg`, so the kernel's share counts). On a shared, loaded machine the CPU-time
//! ratios are the steadier view; the targets are judged on wall time.
//!
//! It needs root (for the namespace) and conntrack-tools; without them it prints SKIP and exits 0
//! (under `CI=true` it fails instead).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use benches::ctraw::{self, RawCt, UdpFlow};
use benches::median;
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
    let Some(conntrack) = testkit::require_tool("conntrack") else {
        return;
    };
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
    let tmp = std::env::temp_dir().join(format!("ctnl-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let rfile = tmp.join("entries.txt");
    std::fs::write(&rfile, ctraw::conntrack_r_lines(&flows, TIMEOUT)).unwrap();

    let mut raw = RawCt::new().unwrap();
    let mut ct = ctnl::Conntrack::open().unwrap();
    let mut s = Samples::default();
    println!("ctnl_table: {n} UDP entries, {rounds} round(s), fresh network namespace");
    for round in 0..rounds {
        // --- batched create ---
        raw.flush().unwrap();
        expect_count(0);
        let t = Clock::start(Who::Thread);
        let errors = raw.create_batched(&flows, TIMEOUT).unwrap();
        s.create_raw.push(t.stop());
        assert_eq!(errors, 0, "raw floor create errors");
        expect_count(n);

        raw.flush().unwrap();
        expect_count(0);
        let t = Clock::start(Who::Children);
        run(Command::new(&conntrack).arg("-R").arg(&rfile));
        s.create_peer.push(t.stop());
        expect_count(n);

        raw.flush().unwrap();
        expect_count(0);
        let t = Clock::start(Who::Thread);
        ctnl_ops::create(&mut ct, &flows, TIMEOUT);
        s.create_ctnl.push(t.stop());
        expect_count(n);

        // --- dump (the table holds the n entries ctnl made) ---
        let t = Clock::start(Who::Thread);
        let got = raw.dump_count().unwrap();
        s.dump_raw.push(t.stop());
        assert_eq!(got, n, "raw dump count");

        let t = Clock::start(Who::Children);
        run(Command::new(&conntrack).arg("-L"));
        s.dump_peer.push(t.stop());

        let t = Clock::start(Who::Thread);
        let got = ctnl_ops::dump_count(&mut ct);
        s.dump_ctnl.push(t.stop());
        assert_eq!(got, n, "ctnl dump count");

        let t = Clock::start(Who::Thread);
        let got = ctnl_ops::dump_count_into(&mut ct);
        s.dump_ctnl_into.push(t.stop());
        assert_eq!(got, n, "ctnl next_into dump count");

        // --- filtered delete of dport 53 ---
        let t = Clock::start(Who::Thread);
        let deleted = ctnl_ops::delete_dport(&mut ct, 53);
        s.delete_ctnl.push(t.stop());
        assert_eq!(deleted, dns.len(), "ctnl deleted");
        expect_count(n - dns.len());

        assert_eq!(raw.create_batched(&dns, TIMEOUT).unwrap(), 0);
        expect_count(n);
        // The same kernel flush with a filter that matches nothing: the cost of the walk alone.
        let t = Clock::start(Who::Thread);
        raw.flush_udp_dport(9).unwrap();
        s.delete_raw_walk.push(t.stop());
        expect_count(n);
        let t = Clock::start(Who::Thread);
        raw.flush_udp_dport(53).unwrap();
        s.delete_raw.push(t.stop());
        expect_count(n - dns.len());

        assert_eq!(raw.create_batched(&dns, TIMEOUT).unwrap(), 0);
        expect_count(n);
        let t = Clock::start(Who::Children);
        run(Command::new(&conntrack).args(["-D", "-p", "udp", "--dport", "53"]));
        s.delete_peer.push(t.stop());
        expect_count(n - dns.len());
        eprintln!("round {} done", round + 1);
    }

    // --- peak memory of a process that only dumps (table refilled to n) ---
    assert_eq!(raw.create_batched(&dns, TIMEOUT).unwrap(), 0);
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
    std::fs::remove_dir_all(&tmp).unwrap();

    s.report(n, dns.len(), idle_kib, hwm_kib, heap_peak);
}

#[derive(Default)]
struct Samples {
    create_raw: Meas,
    create_peer: Meas,
    create_ctnl: Meas,
    dump_raw: Meas,
    dump_peer: Meas,
    dump_ctnl: Meas,
    dump_ctnl_into: Meas,
    delete_raw: Meas,
    delete_raw_walk: Meas,
    delete_ctnl: Meas,
    delete_peer: Meas,
}

/// Wall-clock and CPU-time samples of one measured step.
///
/// CPU time is user + system time of whoever did the work: this thread for ctnl and the raw floors, the
/// waited-for child for conntrack-tools. ctnetlink does its work in the caller's `sendmsg`/`recvmsg`, so the
/// kernel's share is included, while time spent waiting for a CPU on a shared, loaded machine is not: the
/// CPU-time ratios are the noise-resistant view of the same comparison.
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

#[derive(Clone, Copy)]
enum Who {
    Thread,
    Children,
}

struct Clock {
    who: Who,
    wall: Instant,
    cpu: Duration,
}

impl Clock {
    fn start(who: Who) -> Self {
        Clock {
            who,
            wall: Instant::now(),
            cpu: cpu::used(who),
        }
    }

    fn stop(&self) -> (Duration, Duration) {
        let wall = self.wall.elapsed();
        (wall, cpu::used(self.who).saturating_sub(self.cpu))
    }
}

/// `getrusage(2)`, which std does not wrap.
mod cpu {
    #![allow(unsafe_code)]
    use super::Who;
    use std::time::Duration;

    fn tv(t: libc::timeval) -> Duration {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    }

    /// User + system time so far of this thread, or of all waited-for children.
    pub fn used(who: Who) -> Duration {
        let who = match who {
            Who::Thread => libc::RUSAGE_THREAD,
            Who::Children => libc::RUSAGE_CHILDREN,
        };
        let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage writes one `struct rusage` to the pointer, which points to space for one.
        let rc = unsafe { libc::getrusage(who, ru.as_mut_ptr()) };
        assert_eq!(rc, 0, "getrusage: {}", std::io::Error::last_os_error());
        // SAFETY: the struct was zero-initialised (a valid rusage) and getrusage succeeded in filling it.
        let ru = unsafe { ru.assume_init() };
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
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

        println!("batched create of {n} entries");
        line("raw floor (<=96 KiB per sendmsg)", &self.create_raw);
        line("ctnl batch", &self.create_ctnl);
        line("conntrack -R", &self.create_peer);
        let r = ratio(&self.create_ctnl, &self.create_raw);
        println!(
            "  ctnl / floor = {r:.2}x (target <= 1.25x: {})   conntrack -R / ctnl = {:.2}x   \
             cpu: {:.2}x, {:.2}x",
            verdict(r <= 1.25),
            ratio(&self.create_peer, &self.create_ctnl),
            cpu_ratio(&self.create_ctnl, &self.create_raw),
            cpu_ratio(&self.create_peer, &self.create_ctnl)
        );

        println!("dump of {n} entries");
        line("raw floor (count, no parsing)", &self.dump_raw);
        line("ctnl typed dump (Iterator)", &self.dump_ctnl);
        line("ctnl typed dump (next_into)", &self.dump_ctnl_into);
        line("conntrack -L >/dev/null", &self.dump_peer);
        let r = ratio(&self.dump_ctnl, &self.dump_raw);
        let ri = ratio(&self.dump_ctnl_into, &self.dump_raw);
        println!(
            "  ctnl Iterator / floor = {r:.2}x (target <= 1.15x: {})   conntrack -L / ctnl = {:.2}x   \
             cpu: {:.2}x, {:.2}x",
            verdict(r <= 1.15),
            ratio(&self.dump_peer, &self.dump_ctnl),
            cpu_ratio(&self.dump_ctnl, &self.dump_raw),
            cpu_ratio(&self.dump_peer, &self.dump_ctnl)
        );
        println!(
            "  ctnl next_into / floor = {ri:.2}x (target <= 1.15x: {})   conntrack -L / ctnl = {:.2}x   \
             cpu: {:.2}x, {:.2}x",
            verdict(ri <= 1.15),
            ratio(&self.dump_peer, &self.dump_ctnl_into),
            cpu_ratio(&self.dump_ctnl_into, &self.dump_raw),
            cpu_ratio(&self.dump_peer, &self.dump_ctnl_into)
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
        line("ctnl", &self.delete_ctnl);
        line("conntrack -D -p udp --dport 53", &self.delete_peer);
        let r = ratio(&self.delete_peer, &self.delete_ctnl);
        println!(
            "  conntrack -D / ctnl = {r:.2}x (target >= 5x: {})   ctnl / raw flush = {:.2}x   \
             cpu: {:.2}x, {:.2}x",
            verdict(r >= 5.0),
            ratio(&self.delete_ctnl, &self.delete_raw),
            cpu_ratio(&self.delete_peer, &self.delete_ctnl),
            cpu_ratio(&self.delete_ctnl, &self.delete_raw)
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

fn run(cmd: &mut Command) {
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
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
