//! 200 VRRPv3 instances at a 0.1 s interval on one interface pair: CPU and advert lateness, vrrpd
//! against keepalived 2.2.7 in the same run, and a raw floor (issue 12).
//!
//! ```text
//! cargo bench -p benches --bench vrrpd_scale [-- ROUNDS [SECONDS]]
//! ```
//!
//! Each round makes two namespaces joined by a veth pair. The daemon under test runs in both: in N as
//! the Master of all 200 instances (priority 200, 2,000 adverts/s), in M as their Backup (priority
//! 100, receiving them), with the same file but for the priority; keepalived and vrrpd take turns,
//! the order alternating between rounds after a warm-up round. Once all 200 addresses sit on N, the
//! bench reads each side's CPU time (`/proc/PID/task/*/schedstat`: every process of that name in the
//! namespace, i.e. keepalived's parent and VRRP child) over SECONDS (default 8) while tshark records
//! N's adverts on the wire (kernel timestamps at transmit). Lateness of an advert: its gap from the
//! previous advert of the same VRID minus 100 ms (so an advert is due one interval after the one
//! before it, as both daemons schedule).
//!
//! The floor: this bench binary, started again as a process in N, sends the Master's 200 adverts
//! (same source, priority and addresses, built once) every 100 ms from one thread (a deadline heap,
//! `nanosleep` to the next deadline, one `sendmsg` each), with vrrpd as the Backup in M; its CPU and
//! lateness are measured exactly as the daemons' are.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use benches::vrrplab::{self, Daemon, Lab, sh};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use vrrp_proto::linux::socket::VrrpSocket;
use vrrp_proto::wire::{Addresses, Body};
use vrrp_proto::{Checksum, Repr};

const INSTANCES: u8 = 200;
const INTERVAL: Duration = Duration::from_millis(100);

fn conf(ifname: &str, prio: u8) -> String {
    (1..=INSTANCES)
        .map(|k| {
            vrrplab::instance(
                &format!("VI_{k}"),
                ifname,
                k,
                prio,
                "0.1",
                &format!("10.91.1.{k}/32"),
            )
        })
        .collect()
}

struct Sample {
    /// CPU of the Master side, in % of one core.
    master_cpu: f64,
    /// CPU of the Backup side.
    backup_cpu: f64,
    /// Lateness of each advert, ms.
    late: Vec<f64>,
    /// Adverts per second seen.
    rate: f64,
}

fn holders(ns: &str) -> usize {
    sh(&format!("ip -n {ns} -br addr"))
        .matches(" 10.91.1.")
        .count()
}

/// Waits up to 30 s until the Master side holds `on_n` addresses and the Backup side `on_m`.
fn wait_for(lab: &Lab, who: &str, on_n: usize, on_m: usize) {
    let (m, n) = (&lab.ns[0], &lab.ns[1]);
    let end = Instant::now() + Duration::from_secs(30);
    while holders(n) != on_n || holders(m) != on_m {
        assert!(
            Instant::now() < end,
            "{who}: {} addresses on the master, {} on the backup, wanted {on_n} and {on_m}",
            holders(n),
            holders(m),
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// CPU time (ns, schedstat) of every thread of these processes.
fn cpu_of(pids: &[u32]) -> u64 {
    pids.iter()
        .flat_map(|p| {
            std::fs::read_dir(format!("/proc/{p}/task"))
                .into_iter()
                .flatten()
        })
        .flatten()
        .filter_map(|t| {
            std::fs::read_to_string(t.path().join("schedstat"))
                .ok()?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// The Master side of a round: a daemon, or the floor (this bench as a child process in N).
enum Master<'a> {
    Daemon(&'a Daemon),
    Floor,
}

/// One round: `master` in N (a daemon, with the same daemon as Backup in M; or the floor, with
/// vrrpd as Backup).
fn round(master: Master<'_>, vrrpd: &Daemon, secs: u64) -> Sample {
    let lab = Lab::new("vs", &["m", "n"]);
    let (m, n) = (lab.ns[0].clone(), lab.ns[1].clone());
    sh(&format!(
        "ip link add sm netns {m} type veth peer name sn netns {n} && \
         ip -n {m} addr add 10.91.0.1/24 dev sm && ip -n {m} link set sm up && \
         ip -n {n} addr add 10.91.0.2/24 dev sn && ip -n {n} link set sn up"
    ));
    let cm = lab.write("m.conf", &conf("sm", 100));
    let cn = lab.write("n.conf", &conf("sn", 200));
    let (name, backup_daemon) = match &master {
        Master::Daemon(d) => (d.name(), *d),
        Master::Floor => ("floor", vrrpd),
    };
    // The Master first (its 200 addresses up), then the Backup joins: no preemption storm.
    let mut master_child = match &master {
        Master::Daemon(d) => {
            let c = d.spawn(&n, &cn, &lab.dir, "n");
            wait_for(&lab, name, usize::from(INSTANCES), 0);
            c
        }
        Master::Floor => std::process::Command::new("ip")
            .args(["netns", "exec", &n])
            .arg(std::env::current_exe().unwrap())
            .env(FLOOR_ENV, "sn")
            .spawn()
            .unwrap(),
    };
    let master_pids: Vec<u32> = match &master {
        Master::Daemon(d) => vrrplab::pids_named(&n, d.name())
            .iter()
            .map(|p| p.0)
            .collect(),
        Master::Floor => vec![master_child.id()],
    };
    let on_n = if matches!(master, Master::Floor) {
        0
    } else {
        usize::from(INSTANCES)
    };
    let mut backup = backup_daemon.spawn(&m, &cm, &lab.dir, "m");
    std::thread::sleep(Duration::from_secs(2));
    wait_for(&lab, name, on_n, 0);
    let backup_pids: Vec<u32> = vrrplab::pids_named(&m, backup_daemon.name())
        .iter()
        .map(|p| p.0)
        .collect();
    // Settle, then record the wire and the CPU over the same window.
    std::thread::sleep(Duration::from_secs(2));
    let pcap = lab.dir.join("n.pcapng");
    let mut tshark = std::process::Command::new("ip")
        .args(["netns", "exec", &n, "tshark", "-q", "-i", "sn", "-f"])
        .arg("ip proto 112 and src host 10.91.0.2")
        .arg("-w")
        .arg(&pcap)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // tshark needs a moment before it captures.
    std::thread::sleep(Duration::from_secs(2));
    let (m0, n0, t0) = (cpu_of(&backup_pids), cpu_of(&master_pids), Instant::now());
    std::thread::sleep(Duration::from_secs(secs));
    let (m1, n1, wall) = (cpu_of(&backup_pids), cpu_of(&master_pids), t0.elapsed());
    sh(&format!("kill -INT {}", tshark.id()));
    let _ = tshark.wait();
    // Nothing moved during the measurement.
    wait_for(&lab, name, on_n, 0);
    let _ = master_child.kill();
    let _ = backup.kill();
    let _ = master_child.wait();
    let _ = backup.wait();
    let fields = sh(&format!(
        "tshark -r {} -T fields -e frame.time_epoch -e vrrp.virt_rtr_id",
        pcap.display()
    ));
    let mut per_vrid: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
    let (mut first, mut last, mut count) = (f64::MAX, 0.0f64, 0usize);
    for l in fields.lines() {
        let mut w = l.split_whitespace();
        let (Some(t), Some(v)) = (w.next(), w.next()) else {
            continue;
        };
        let (Ok(t), Ok(v)) = (t.parse::<f64>(), v.parse::<u32>()) else {
            continue;
        };
        per_vrid.entry(v).or_default().push(t);
        first = first.min(t);
        last = last.max(t);
        count += 1;
    }
    assert_eq!(
        per_vrid.len(),
        usize::from(INSTANCES),
        "every VRID on the wire"
    );
    let late = lateness(per_vrid.values().map(Vec::as_slice));
    let pct = |d: u64| d as f64 / wall.as_nanos() as f64 * 100.0;
    Sample {
        master_cpu: pct(n1 - n0),
        backup_cpu: pct(m1 - m0),
        late,
        rate: count as f64 / (last - first),
    }
}

fn report(r: usize, who: &str, s: &Sample) {
    eprintln!(
        "round {r} {who}: master {:.2} % backup {:.2} % late p99 {:.3} ms, {:.0} adverts/s",
        s.master_cpu,
        s.backup_cpu,
        vrrplab::percentile(&s.late, 99.0),
        s.rate
    );
}

/// Gaps between consecutive adverts of each VRID minus the interval, in ms.
fn lateness<'a>(series: impl Iterator<Item = &'a [f64]>) -> Vec<f64> {
    let mut late = Vec::new();
    for s in series {
        for w in s.windows(2) {
            late.push((w[1] - w[0] - INTERVAL.as_secs_f64()) * 1e3);
        }
    }
    late.sort_by(f64::total_cmp);
    late
}

/// The environment variable that makes this binary the floor (the interface to send on).
const FLOOR_ENV: &str = "VRRPD_SCALE_FLOOR";

/// The floor, run as a child in N until killed: the 200 adverts the Master sends (same source,
/// priority, addresses), prebuilt, every 100 ms from one thread (a deadline heap, `nanosleep` to the
/// next deadline, one `sendmsg` each).
fn floor(ifname: &str) {
    let sock = VrrpSocket::open(ifname, vrrplab::ifindex(ifname), false).unwrap();
    let src = IpAddr::V4(Ipv4Addr::new(10, 91, 0, 2));
    let dst = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
    let msgs: Vec<Vec<u8>> = (1..=INSTANCES)
        .map(|k| {
            Repr {
                vrid: k,
                priority: 200,
                body: Body::V3 {
                    max_adver_int: 10,
                    reserved: 0,
                },
                addresses: Addresses::V4(vec![Ipv4Addr::new(10, 91, 1, k)]),
            }
            .to_bytes(&Checksum::PseudoHeader { src, dst })
            .unwrap()
        })
        .collect();
    let start = Instant::now();
    let mut heap: BinaryHeap<Reverse<(Instant, usize)>> = (0..msgs.len())
        .map(|i| Reverse((start + INTERVAL * u32::try_from(i).unwrap() / 200, i)))
        .collect();
    while let Some(Reverse((due, i))) = heap.pop() {
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        sock.send(src, dst, &msgs[i]).unwrap();
        heap.push(Reverse((Instant::now() + INTERVAL, i)));
    }
}

fn main() {
    if let Ok(ifname) = std::env::var(FLOOR_ENV) {
        floor(&ifname);
        return;
    }
    let Some((_ns, vrrpd)) = vrrplab::begin("vrrpd_scale", &["tshark"]) else {
        return;
    };
    let args = vrrplab::number_args();
    let rounds = args.first().map_or(3, |&r| usize::try_from(r).unwrap());
    let secs = args.get(1).copied().unwrap_or(8);
    let mut all: BTreeMap<&str, Vec<Sample>> = BTreeMap::new();
    for r in 0..=rounds {
        let order = benches::order(r);
        for peer in order {
            let d = if peer { &Daemon::Keepalived } else { &vrrpd };
            let s = round(Master::Daemon(d), &vrrpd, secs);
            report(r, d.name(), &s);
            if r > 0 {
                all.entry(d.name()).or_default().push(s);
            }
        }
        let f = round(Master::Floor, &vrrpd, secs);
        report(r, "floor", &f);
        if r > 0 {
            all.entry("floor").or_default().push(f);
        }
        benches::round_done(r, if order[0] { "keepalived" } else { "vrrpd" });
    }
    println!(
        "| who | Master CPU (% of a core) | Backup CPU | adverts/s | lateness p50 | p99 | max | Master CPU vs keepalived |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let med =
        |v: &[Sample], f: &dyn Fn(&Sample) -> f64| vrrplab::median_f64(v.iter().map(f).collect());
    let ka_master = med(&all["keepalived"], &|s| s.master_cpu);
    for who in ["keepalived", "vrrpd", "floor"] {
        let v = &all[who];
        let mc = med(v, &|s| s.master_cpu);
        println!(
            "| {who} | {mc:.2} % | {} | {:.0} | {:+.3} ms | {:+.3} ms | {:+.3} ms | {:.2}× |",
            if who == "floor" {
                format!("(vrrpd) {:.2} %", med(v, &|s| s.backup_cpu))
            } else {
                format!("{:.2} %", med(v, &|s| s.backup_cpu))
            },
            med(v, &|s| s.rate),
            med(v, &|s| vrrplab::percentile(&s.late, 50.0)),
            med(v, &|s| vrrplab::percentile(&s.late, 99.0)),
            med(v, &|s| s.late.last().copied().unwrap_or(f64::NAN)),
            mc / ka_master
        );
    }
}
