//! VRRP codec speed (issue 4): parse + validate and emit, no allocation per packet.
//!
//! ```text
//! cargo bench -p benches --bench vrrp
//! ```
//!
//! Criterion groups, each over a batch of 1024 adverts (throughput in adverts/s):
//! * `vrrp_parse_validate`: `Packet::parse` (version, type, length/count, count, checksum in the right
//!   mode) plus reading VRID, priority and every address, for keepalived's v2 PASS, v3 IPv4 (pseudo-header)
//!   and v3 IPv6 adverts; `router_check` adds every configuration check of §7.1 (`Router::check_packet`);
//! * `vrrp_floor`: the raw floor, a one's complement sum over the same bytes and nothing else;
//! * `vrrp_emit`: `Repr::emit` into a reused buffer.
//!
//! Every input goes through `black_box`, so the compiler cannot fold the checksum's pseudo-header (or anything
//! else) out of the loop.
//!
//! Then the peer, process against process (a library loop against a CLI that does more would say
//! nothing): tshark 4.0's VRRP dissector, which also verifies checksums, reading a pcap of 100,000 of the
//! v3 IPv4 advert (`tshark -r F -T fields -e vrrp.virt_rtr_id -e vrrp.checksum.status`), against our
//! `vrrp_decode` example (rebuilt first) reading the same adverts as `SRC DST HEX` lines and printing a
//! JSON report for each; a warm-up round, then 3 rounds alternating who goes first, each side's output
//! checked line by line. A counting allocator checks that parse + validate and emit allocate nothing per
//! packet.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(unsafe_code)] // only the counting global allocator below

use criterion::{BenchmarkId, Criterion, Throughput};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use vrrp_proto::wire::{Checksum, Packet, Repr};
use vrrp_proto::{Command, Config, Router};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call unchanged to the system allocator; it only counts allocations.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const BATCH: usize = 1024;

struct Case {
    name: &'static str,
    src: IpAddr,
    dst: IpAddr,
    bytes: Vec<u8>,
}

fn cases() -> Vec<Case> {
    // From vrrp-proto/tests/data (captured from keepalived 2.2.7).
    let v = |name, src: &str, dst: &str, hex: &str| Case {
        name,
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        bytes: hex::decode(hex).unwrap(),
    };
    vec![
        v(
            "v2_pass",
            "10.77.0.1",
            "224.0.0.18",
            "210a96020101c5f60a4d000a0a4d000b7365637265743100",
        ),
        v(
            "v3_ipv4",
            "10.77.0.1",
            "224.0.0.18",
            "31147801006461480a4d0014",
        ),
        v(
            "v3_ipv6",
            "fe80::a8c1:abff:fe00:1",
            "ff02::12",
            "311e6e02006412bafe800000000000000000000000770030fd000077000000000000000000000030",
        ),
    ]
}

fn mode(c: &Case) -> Checksum {
    if c.bytes[0] >> 4 == 2 {
        Checksum::MessageOnly
    } else {
        Checksum::PseudoHeader {
            src: c.src,
            dst: c.dst,
        }
    }
}

/// Parse + validate one advert and touch every field a router reads.
#[inline]
fn parse_validate(bytes: &[u8], mode: &Checksum) -> u32 {
    match Packet::parse(bytes, mode) {
        Ok(p) => {
            let mut acc = u32::from(p.vrid()) + u32::from(p.priority());
            for a in p.addresses() {
                acc = acc.wrapping_add(match a {
                    IpAddr::V4(a) => u32::from(a),
                    IpAddr::V6(a) => a.segments()[7].into(),
                });
            }
            acc
        }
        Err(_) => 0,
    }
}

/// The raw floor: a one's complement sum over the bytes, nothing else.
#[inline]
fn floor(bytes: &[u8]) -> u32 {
    let mut acc = 0u32;
    for c in bytes.chunks_exact(2) {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    (acc & 0xffff) + (acc >> 16)
}

fn router_for(c: &Case) -> Router {
    let p = Packet::parse_unverified(&c.bytes).unwrap();
    let mut cfg = Config::new("eth0", p.vrid(), p.addresses().collect());
    cfg.priority = 50;
    if p.version() == 2 {
        cfg.version = vrrp_proto::config::Version::V2;
        cfg.auth_pass = Some(b"secret1".to_vec());
    }
    let me: IpAddr = if c.src.is_ipv6() {
        "fe80::2".parse().unwrap()
    } else {
        "10.77.0.2".parse().unwrap()
    };
    let mut r = Router::new(cfg, me).unwrap();
    r.handle_command(Instant::now(), Command::Startup);
    while r.poll_action().is_some() {}
    r
}

fn allocations_per_packet(cases: &[Case]) {
    let routers: Vec<Router> = cases.iter().map(router_for).collect();
    let mut out = [0u8; 64];
    let reprs: Vec<(Repr, Checksum)> = cases
        .iter()
        .map(|c| (Repr::parse(&c.bytes, &mode(c)).unwrap(), mode(c)))
        .collect();
    let before = ALLOCS.load(Ordering::Relaxed);
    let mut acc = 0u32;
    for _ in 0..10_000 {
        for (c, r) in cases.iter().zip(&routers) {
            acc = acc.wrapping_add(parse_validate(black_box(&c.bytes), black_box(&mode(c))));
            acc = acc.wrapping_add(u32::from(
                r.check_packet(c.src, c.dst, 255, black_box(&c.bytes))
                    .is_ok(),
            ));
        }
        for (r, m) in &reprs {
            acc = acc.wrapping_add(u32::try_from(r.emit(black_box(&mut out), m).unwrap()).unwrap());
        }
    }
    let n = ALLOCS.load(Ordering::Relaxed) - before;
    black_box(acc);
    println!("allocations in 30,000 parse+validate, 30,000 router checks and 30,000 emits: {n}");
    assert_eq!(n, 0, "parse, validate and emit must not allocate");
}

fn bench(c: &mut Criterion, cases: &[Case]) {
    let mut g = c.benchmark_group("vrrp_parse_validate");
    g.throughput(Throughput::Elements(BATCH as u64));
    for case in cases {
        let m = mode(case);
        g.bench_with_input(BenchmarkId::from_parameter(case.name), case, |b, case| {
            b.iter(|| {
                let mut acc = 0u32;
                for _ in 0..BATCH {
                    acc = acc.wrapping_add(parse_validate(black_box(&case.bytes), black_box(&m)));
                }
                acc
            })
        });
    }
    for case in cases {
        let r = router_for(case);
        g.bench_with_input(
            BenchmarkId::new("router_check", case.name),
            case,
            |b, case| {
                b.iter(|| {
                    let mut ok = 0u32;
                    for _ in 0..BATCH {
                        ok += u32::from(
                            r.check_packet(
                                black_box(case.src),
                                black_box(case.dst),
                                255,
                                black_box(&case.bytes),
                            )
                            .is_ok(),
                        );
                    }
                    assert_eq!(ok as usize, BATCH);
                    ok
                })
            },
        );
    }
    g.finish();

    let mut g = c.benchmark_group("vrrp_floor");
    g.throughput(Throughput::Elements(BATCH as u64));
    for case in cases {
        g.bench_with_input(BenchmarkId::from_parameter(case.name), case, |b, case| {
            b.iter(|| {
                let mut acc = 0u32;
                for _ in 0..BATCH {
                    acc = acc.wrapping_add(floor(black_box(&case.bytes)));
                }
                acc
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("vrrp_emit");
    g.throughput(Throughput::Elements(BATCH as u64));
    for case in cases {
        let m = mode(case);
        let repr = Repr::parse(&case.bytes, &m).unwrap();
        let mut buf = [0u8; 64];
        g.bench_function(BenchmarkId::from_parameter(case.name), |b| {
            b.iter(|| {
                let mut n = 0usize;
                for _ in 0..BATCH {
                    n += black_box(&repr)
                        .emit(black_box(&mut buf), black_box(&m))
                        .unwrap();
                }
                n
            })
        });
    }
    g.finish();
}

/// A pcap (LINKTYPE_RAW: each record an IPv4 packet) of `n` copies of the v3 IPv4 advert.
fn write_pcap(path: &std::path::Path, case: &Case, n: usize) {
    let mut f = Vec::with_capacity(24 + n * 60);
    f.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&65535u32.to_le_bytes());
    f.extend_from_slice(&101u32.to_le_bytes()); // LINKTYPE_RAW
    let (IpAddr::V4(s), IpAddr::V4(d)) = (case.src, case.dst) else {
        panic!("IPv4 case expected")
    };
    let total = u16::try_from(20 + case.bytes.len()).unwrap();
    let mut ip = vec![0x45, 0xc0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0x40, 0, 255, 112, 0, 0]);
    ip.extend_from_slice(&s.octets());
    ip.extend_from_slice(&d.octets());
    let mut sum = 0u32;
    for c in ip.chunks_exact(2) {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let ck = !u16::try_from(sum).unwrap();
    ip[10..12].copy_from_slice(&ck.to_be_bytes());
    ip.extend_from_slice(&case.bytes);
    for i in 0..n {
        f.extend_from_slice(&u32::try_from(i / 1000).unwrap().to_le_bytes());
        f.extend_from_slice(&u32::try_from((i % 1000) * 1000).unwrap().to_le_bytes());
        f.extend_from_slice(&u32::try_from(ip.len()).unwrap().to_le_bytes());
        f.extend_from_slice(&u32::try_from(ip.len()).unwrap().to_le_bytes());
        f.extend_from_slice(&ip);
    }
    std::fs::write(path, f).unwrap();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Process against process: tshark 4.0's VRRP dissector reading a pcap of `N` v3 IPv4 adverts and
/// printing VRID and checksum status, against our `vrrp_decode` example reading the same adverts as
/// `SRC DST HEX` lines and printing a full JSON report each (which includes the checksum verdict). Both
/// read a capture file, decode and check every advert and print a line for it; ours prints more.
/// Rebuilt first, warm-up round, order alternating, each side's output checked before a timing counts.
fn peer_processes(cases: &[Case]) {
    // A failure in strict mode (`cargo xtask ci`), a counted skip otherwise.
    let Some(tshark) = testkit::require_tool("tshark") else {
        return;
    };
    const N: usize = 100_000;
    const ROUNDS: usize = 3;
    let ours = benches::build_one(
        &["-p", "examples", "--example", "vrrp_decode"],
        "vrrp_decode",
    );
    let case = &cases[1];
    let dir = std::env::temp_dir().join(format!("vrrp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("adverts.pcap");
    write_pcap(&pcap, case, N);
    let hex_lines = dir.join("adverts.txt");
    let line = format!("{} {} {}\n", case.src, case.dst, hex::encode(&case.bytes));
    std::fs::write(&hex_lines, line.repeat(N)).unwrap();
    let out = dir.join("stdout");
    // What each side must print for every advert: VRID 20, checksum good.
    let peer_line = "20\t1";
    let ours_line = r#"{"src":"10.77.0.1","dst":"224.0.0.18","valid":true,"version":3,"vrid":20,"priority":120,"count":1,"addresses":["10.77.0.20"],"max_adver_int":100,"checksum":"0x6148","checksum_valid_as":["pseudo-header"]}"#;
    let check = |who: &str, want: &str| {
        let text = std::fs::read_to_string(&out).unwrap();
        let good = text.lines().filter(|l| *l == want).count();
        assert_eq!(good, N, "{who} printed {good} good lines of {N}");
        assert_eq!(text.lines().count(), N, "{who}: extra lines");
    };
    let (mut peer, mut mine) = (Vec::new(), Vec::new());
    for round in 0..=ROUNDS {
        for is_peer in benches::order(round) {
            let t = if is_peer {
                let mut c = std::process::Command::new(&tshark);
                c.arg("-r").arg(&pcap).args([
                    "-T",
                    "fields",
                    "-e",
                    "vrrp.virt_rtr_id",
                    "-e",
                    "vrrp.checksum.status",
                ]);
                let t = benches::run_timed(&mut c, &out);
                check("tshark", peer_line);
                t
            } else {
                let mut c = std::process::Command::new(&ours);
                c.stdin(std::fs::File::open(&hex_lines).unwrap());
                let t = benches::run_timed(&mut c, &out);
                check("vrrp_decode", ours_line);
                t
            };
            assert!(t.status.success(), "{}", t.stderr);
            if round > 0 {
                if is_peer { &mut peer } else { &mut mine }.push(t.wall);
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    let (p, o) = (median(peer), median(mine));
    println!(
        "peer, process against process, {N} v3 adverts, warm-up + {ROUNDS} rounds: tshark -T fields (vrid, checksum \
         status) {:.1} ms ({:.2} M adverts/s); vrrp_decode (JSON report each) {:.1} ms ({:.2} M adverts/s); \
         tshark / vrrp_decode = {:.1}x",
        p.as_secs_f64() * 1e3,
        N as f64 / p.as_secs_f64() / 1e6,
        o.as_secs_f64() * 1e3,
        N as f64 / o.as_secs_f64() / 1e6,
        p.as_secs_f64() / o.as_secs_f64()
    );
}

fn main() {
    println!("{}", benches::context("vrrp"));
    let cases = cases();
    allocations_per_packet(&cases);
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    bench(&mut c, &cases);
    c.final_summary();
    peer_processes(&cases);
}
