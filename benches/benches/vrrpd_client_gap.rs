//! The client-visible gap of a failover: the longest silence in echo replies to a client pinging the
//! virtual address every 10 ms, vrrpd against keepalived 2.2.7 in the same run (issue 12).
//!
//! ```text
//! cargo bench -p benches --bench vrrpd_client_gap [-- ROUNDS]
//! ```
//!
//! A LAN bridge in the bench's private namespace, which is also the client (10.93.0.9); namespace M
//! runs the old master (keepalived, priority 200), namespace N the new one under test (vrrpd or
//! keepalived, priority 100, the same file), address 10.93.0.100/24. The client sends an ICMP echo
//! request every 10 ms from a raw socket and notes when each reply arrives; the figure is the longest
//! gap between two replies across the failover. Two failovers:
//!
//! * **dead master**: M's bridge port goes down right after one of its adverts (the old master vanishes
//!   with its address, as a box that loses power): the new master takes over after
//!   Master_Down_Interval, then its gratuitous ARP moves the client;
//! * **priority 0**: SIGTERM to keepalived in M (it sends priority 0 and drops its address): the new
//!   master takes over after Skew_Time.
//!
//! For VRRPv3 with a 0.1 s interval and VRRPv2 with 1 s; medians of ROUNDS (default 3) after a
//! warm-up round, the order of vrrpd and keepalived alternating between rounds; fresh namespaces
//! every round. The RFC value is the expected takeover time alone (the floor of the gap: a reply
//! lost every 10 ms adds up to 10 ms, the ARP update a little more).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use benches::vrrplab::{self, Daemon, Lab, sh};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType, ipproto};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use vrrp_proto::linux::socket::VrrpSocket;

fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Pings `dst` every 10 ms until `stop`; returns the arrival times of the replies.
fn pinger(dst: Ipv4Addr, stop: Arc<AtomicBool>) -> Vec<Instant> {
    let sock: OwnedFd =
        rustix::net::socket(AddressFamily::INET, SocketType::RAW, Some(ipproto::ICMP)).unwrap();
    let id: u16 = (std::process::id() & 0xffff) as u16;
    let to = SocketAddrV4::new(dst, 0);
    let mut replies = Vec::new();
    let mut next = Instant::now();
    let mut seq: u16 = 0;
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= next {
            let mut m = [0u8; 16];
            m[0] = 8;
            m[4..6].copy_from_slice(&id.to_be_bytes());
            m[6..8].copy_from_slice(&seq.to_be_bytes());
            let ck = checksum(&m);
            m[2..4].copy_from_slice(&ck.to_be_bytes());
            // A send may fail while the client has no neighbour entry: that is part of the gap.
            let _ = rustix::net::sendto(&sock, &m, SendFlags::empty(), &to);
            seq = seq.wrapping_add(1);
            next += Duration::from_millis(10);
            continue;
        }
        let wait = next - now;
        let mut fds = [rustix::event::PollFd::new(
            &sock,
            rustix::event::PollFlags::IN,
        )];
        let ts = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: i64::from(wait.subsec_nanos()),
        };
        let _ = rustix::event::poll(&mut fds, Some(&ts));
        while let Ok((n, _)) = rustix::net::recv(&sock, &mut buf[..], RecvFlags::DONTWAIT) {
            let b = &buf[..n];
            let ihl = usize::from(b[0] & 0x0f) * 4;
            if n >= ihl + 8 && b[ihl] == 0 && b[ihl + 4..ihl + 6] == id.to_be_bytes() {
                replies.push(Instant::now());
            }
        }
    }
    replies
}

/// Returns as soon as an advert from `src` crosses `bridge`.
fn after_advert_from(bridge: &str, src: std::net::IpAddr) {
    let idx = vrrplab::ifindex(bridge);
    let sock = VrrpSocket::open(bridge, idx, false).unwrap();
    let mut buf = vec![0u8; 2048];
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let mut fds = [rustix::event::PollFd::from_borrowed_fd(
            sock.as_fd(),
            rustix::event::PollFlags::IN,
        )];
        let ts = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 50_000_000,
        };
        let _ = rustix::event::poll(&mut fds, Some(&ts));
        while let Some(rx) = sock.recv(&mut buf).unwrap() {
            if rx.src == src {
                return;
            }
        }
        assert!(Instant::now() < end, "no advert from {src}");
    }
}

/// One failover; returns the longest gap between two replies, in seconds.
fn round(new: &Daemon, v3: bool, dead: bool) -> f64 {
    let lab = Lab::new("cg", &["m", "n"]);
    let (m, n) = (lab.ns[0].clone(), lab.ns[1].clone());
    sh("ip link add cgbr type bridge && ip link set cgbr up && ip addr add 10.93.0.9/24 dev cgbr");
    lab.attach("cgbr", &m, "vm", "10.93.0.1");
    lab.attach("cgbr", &n, "vn", "10.93.0.2");
    let cm = lab.write(
        "m.conf",
        &vrrplab::failover_conf("vm", 93, 200, v3, "10.93.0.100/24"),
    );
    let cn = lab.write(
        "n.conf",
        &vrrplab::failover_conf("vn", 93, 100, v3, "10.93.0.100/24"),
    );
    let mut old = Daemon::Keepalived.spawn(&m, &cm, &lab.dir, "m");
    std::thread::sleep(Duration::from_millis(if v3 { 1500 } else { 4500 }));
    let mut newc = new.spawn(&n, &cn, &lab.dir, "n");
    std::thread::sleep(Duration::from_secs(2));
    let has = |ns: &str| sh(&format!("ip -n {ns} -br addr")).contains(" 10.93.0.100/");
    assert!(has(&m) && !has(&n), "the old master holds the address");
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let ping = std::thread::spawn(move || pinger(Ipv4Addr::new(10, 93, 0, 100), s));
    std::thread::sleep(Duration::from_millis(500));
    if dead {
        // Right after one of the old master's adverts, so that every round waits the whole
        // Master_Down_Interval (the phase of the cut would otherwise add up to one interval of noise).
        after_advert_from("cgbr", "10.93.0.1".parse().unwrap());
        sh("ip link set pvm down");
    } else {
        let main = vrrplab::pids_named(&m, "keepalived")
            .into_iter()
            .find(|(_, ppid)| {
                vrrplab::pids_named(&m, "keepalived")
                    .iter()
                    .all(|(p, _)| p != ppid)
            })
            .expect("keepalived's main process")
            .0;
        sh(&format!("kill -TERM {main}"));
    }
    let event = Instant::now();
    // Wait for the new master, then for a second of replies from it.
    let end = event + Duration::from_secs(10);
    while !has(&n) {
        assert!(Instant::now() < end, "{}: no takeover", new.name());
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);
    let replies = ping.join().unwrap();
    let _ = newc.kill();
    let _ = old.kill();
    let _ = newc.wait();
    let _ = old.wait();
    let _ = std::process::Command::new("ip")
        .args(["link", "del", "cgbr"])
        .status();
    for dev in ["pvm", "pvn"] {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", dev])
            .stderr(std::process::Stdio::null())
            .status();
    }
    assert!(
        replies.iter().any(|t| *t < event) && replies.iter().any(|t| *t > event),
        "replies before and after the failover"
    );
    replies
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .fold(0.0, f64::max)
}

fn main() {
    let Some((_ns, vrrpd)) = vrrplab::begin("vrrpd_client_gap", &[]) else {
        return;
    };
    let rounds = vrrplab::number_args()
        .first()
        .map_or(3, |&r| usize::try_from(r).unwrap());
    println!(
        "| case | RFC takeover | keepalived median | vrrpd median | vrrpd - keepalived | rounds (keepalived / vrrpd) |"
    );
    println!("|---|---|---|---|---|---|");
    for (v3, label) in [
        (true, "v3, advert_int 0.1 s"),
        (false, "v2, advert_int 1 s"),
    ] {
        let int = if v3 { 0.1 } else { 1.0 };
        let skew = 156.0 / 256.0 * if v3 { int } else { 1.0 };
        for (dead, what, rfc) in [
            (true, "dead master", 3.0 * int + skew),
            (false, "priority 0", skew),
        ] {
            let (mut ka, mut us) = (Vec::new(), Vec::new());
            for r in 0..=rounds {
                for peer in benches::order(r) {
                    let d = if peer { &Daemon::Keepalived } else { &vrrpd };
                    let g = round(d, v3, dead);
                    eprintln!(
                        "{label}, {what}, round {r}, {}: {:.1} ms",
                        d.name(),
                        g * 1e3
                    );
                    if r > 0 {
                        if peer { ka.push(g) } else { us.push(g) }
                    }
                }
            }
            let fmt = |v: &[f64]| {
                v.iter()
                    .map(|g| format!("{:.0}", g * 1e3))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let (k, u) = (
                vrrplab::median_f64(ka.clone()),
                vrrplab::median_f64(us.clone()),
            );
            println!(
                "| {label}, {what} | {:.1} ms | {:.1} ms | {:.1} ms | {:+.1} ms | {} / {} |",
                rfc * 1e3,
                k * 1e3,
                u * 1e3,
                (u - k) * 1e3,
                fmt(&ka),
                fmt(&us)
            );
        }
    }
}
