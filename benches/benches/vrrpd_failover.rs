//! Failover time on the wire, vrrpd against keepalived 2.2.7 in the same run (issue 12).
//!
//! ```text
//! cargo bench -p benches --bench vrrpd_failover [-- ROUNDS]
//! ```
//!
//! A LAN bridge in this process's private namespace; namespace M runs the old master (keepalived,
//! priority 200), namespace N the new one under test (vrrpd or keepalived, priority 100). A raw VRRP
//! socket on the bridge timestamps every advert. The old master is killed (SIGKILL on keepalived's
//! VRRP child, the one that sends adverts: expect
//! Master_Down_Interval) or stopped (SIGTERM, priority 0: expect Skew_Time); the figure is the gap
//! between the old master's last advert and the new master's first, for VRRPv2 with a 1 s interval and
//! VRRPv3 with 0.1 s. Medians of ROUNDS (default 3) per cell, with the RFC value and the difference.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use benches::vrrplab::{self, Daemon, Lab, sh};
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vrrp_proto::linux::socket::VrrpSocket;

/// One failover: returns the gap in seconds, or `None` when the new master sent nothing within 8 s
/// (reported and left out of the medians, so that one bad round on a loaded machine does not abort
/// the whole run).
fn round(new: &Daemon, v3: bool, kill_sig: &str) -> Option<f64> {
    let lab = Lab::new("fb", &["m", "n"]);
    let (m, n) = (lab.ns[0].clone(), lab.ns[1].clone());
    lab.attach("fbr", &m, "vm", "10.90.0.1");
    lab.attach("fbr", &n, "vn", "10.90.0.2");
    let cm = lab.write(
        "m.conf",
        &vrrplab::failover_conf("vm", 90, 200, v3, "10.90.0.100/24"),
    );
    let cn = lab.write(
        "n.conf",
        &vrrplab::failover_conf("vn", 90, 100, v3, "10.90.0.100/24"),
    );
    let mut old = Daemon::Keepalived.spawn(&m, &cm, &lab.dir, "m");
    // Let the old master win and settle, then start the new one (a Backup).
    std::thread::sleep(Duration::from_millis(if v3 { 1500 } else { 4500 }));
    let mut newc = new.spawn(&n, &cn, &lab.dir, "n");
    std::thread::sleep(Duration::from_secs(2));
    let idx = vrrplab::ifindex("fbr");
    let sock = VrrpSocket::open("fbr", idx, false).unwrap();
    let old_src: IpAddr = "10.90.0.1".parse().unwrap();
    let new_src: IpAddr = "10.90.0.2".parse().unwrap();
    let mut buf = vec![0u8; 2048];
    let mut last_old: Option<Instant> = None;
    // SIGKILL hits keepalived's VRRP child (the one that sends adverts: the child hands over
    // cleanly when its parent dies); SIGTERM its main process.
    let pid = if kill_sig == "KILL" {
        vrrplab::vrrp_pid(&m, &Daemon::Keepalived)
    } else {
        let all = vrrplab::pids_named(&m, "keepalived");
        all.iter()
            .find(|(_, ppid)| all.iter().all(|(p, _)| p != ppid))
            .expect("keepalived's main process")
            .0
    };
    // Watch the old master's adverts for a while, then stop it.
    let warm = Instant::now() + Duration::from_millis(if v3 { 500 } else { 1500 });
    while Instant::now() < warm {
        let mut fds = [rustix_pollfd(&sock)];
        let _ = rustix::event::poll(
            &mut fds,
            Some(&rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 5_000_000,
            }),
        );
        while let Some(rx) = sock.recv(&mut buf).unwrap() {
            if rx.src == old_src {
                last_old = Some(Instant::now());
            }
        }
    }
    assert!(last_old.is_some(), "the old master is silent");
    sh(&format!("kill -{kill_sig} {pid}"));
    let first_new = read_until_new(&sock, &mut buf, new_src, old_src, &mut last_old);
    let _ = newc.kill();
    let _ = old.kill();
    let _ = newc.wait();
    let _ = old.wait();
    let _ = Command::new("ip").args(["link", "del", "fbr"]).status();
    // Namespace deletion is asynchronous: remove our veth ends now.
    for dev in ["pvm", "pvn"] {
        let _ = Command::new("ip")
            .args(["link", "del", dev])
            .stderr(Stdio::null())
            .status();
    }
    first_new.map(|t| (t - last_old.unwrap_or(t)).as_secs_f64())
}

fn read_until_new(
    sock: &VrrpSocket,
    buf: &mut [u8],
    new_src: IpAddr,
    old_src: IpAddr,
    last_old: &mut Option<Instant>,
) -> Option<Instant> {
    let end = Instant::now() + Duration::from_secs(8);
    while Instant::now() < end {
        let mut fds = [rustix_pollfd(sock)];
        let _ = rustix::event::poll(
            &mut fds,
            Some(&rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 20_000_000,
            }),
        );
        while let Some(rx) = sock.recv(buf).unwrap() {
            let t = Instant::now();
            if rx.src == old_src {
                *last_old = Some(t);
            } else if rx.src == new_src {
                return Some(t);
            }
        }
    }
    None
}

fn rustix_pollfd(s: &VrrpSocket) -> rustix::event::PollFd<'_> {
    rustix::event::PollFd::from_borrowed_fd(s.as_fd(), rustix::event::PollFlags::IN)
}

fn main() {
    let Some((_ns, vrrpd)) = vrrplab::begin("vrrpd_failover", &[]) else {
        return;
    };
    let rounds = vrrplab::number_args()
        .first()
        .map_or(3, |&r| usize::try_from(r).unwrap());
    println!(
        "| case | RFC value | keepalived median | vrrpd median | vrrpd - RFC | vrrpd - keepalived |"
    );
    println!("|---|---|---|---|---|---|");
    for (v3, label) in [
        (false, "v2, advert_int 1 s"),
        (true, "v3, advert_int 0.1 s"),
    ] {
        let int = if v3 { 0.1 } else { 1.0 };
        let skew = if v3 {
            int * 156.0 / 256.0
        } else {
            156.0 / 256.0
        };
        for (sig, what, rfc) in [
            ("KILL", "killed master", 3.0 * int + skew),
            ("TERM", "priority 0", skew),
        ] {
            let mut ka = Vec::new();
            let mut us = Vec::new();
            let mut failed = 0;
            for r in 0..rounds {
                // Alternate the order between rounds.
                for peer in benches::order(r + 1) {
                    let who = if peer { &Daemon::Keepalived } else { &vrrpd };
                    sh("ip link add fbr type bridge && ip link set fbr up");
                    let Some(g) = round(who, v3, sig) else {
                        eprintln!(
                            "{label}, {what}, round {r}, {}: FAILED, no advert from the new master within 8 s",
                            who.name()
                        );
                        failed += 1;
                        continue;
                    };
                    eprintln!(
                        "{label}, {what}, round {r}, {}: {:.1} ms",
                        who.name(),
                        g * 1e3
                    );
                    if peer { ka.push(g) } else { us.push(g) }
                }
            }
            let (k, u) = (vrrplab::median_f64(ka), vrrplab::median_f64(us));
            println!(
                "| {label}, {what} | {:.1} ms | {:.1} ms | {:.1} ms | {:+.1} ms | {:+.1} ms |{}",
                rfc * 1e3,
                k * 1e3,
                u * 1e3,
                (u - rfc) * 1e3,
                (u - k) * 1e3,
                if failed > 0 {
                    format!(" {failed} round(s) failed, left out")
                } else {
                    String::new()
                }
            );
        }
    }
}
