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

use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vrrp_proto::linux::socket::VrrpSocket;

fn sh(cmd: &str) -> String {
    let o = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        o.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn conf(ifname: &str, prio: u8, v3: bool) -> String {
    let (ver, int) = if v3 { ("3", "0.1") } else { ("2", "1") };
    format!(
        "vrrp_instance VI_1 {{\n interface {ifname}\n virtual_router_id 90\n priority {prio}\n version {ver}\n advert_int {int}\n virtual_ipaddress {{\n  10.90.0.100/24\n }}\n}}\n"
    )
}

struct Ns {
    m: String,
    n: String,
    dir: PathBuf,
}

impl Drop for Ns {
    fn drop(&mut self) {
        for ns in [&self.m, &self.n] {
            for p in sh(&format!("ip netns pids {ns} 2>/dev/null || true")).split_whitespace() {
                let _ = Command::new("kill").args(["-9", p]).status();
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spawn_in(ns: &str, daemon: &str, conf: &Path, dir: &Path, tag: &str) -> Child {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]);
    if daemon == "keepalived" {
        c.args(["keepalived", "-n", "-l", "-D", "-P", "-f"])
            .arg(conf);
        c.arg("-p").arg(dir.join(format!("{tag}.pid")));
        c.arg("-r").arg(dir.join(format!("{tag}-vrrp.pid")));
    } else {
        let bin = testkit::workspace_root().join("target/release/vrrpd");
        c.arg(bin)
            .arg("-f")
            .arg(conf)
            .arg("--socket")
            .arg(dir.join(format!("{tag}.sock")));
    }
    c.stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// keepalived's main process (`want_child` false) or its VRRP child (true): SIGKILL must hit the child
/// that sends the adverts, since the child hands over cleanly when its parent dies.
fn keepalived_pid(ns: &str, want_child: bool) -> u32 {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        for p in sh(&format!("ip netns pids {ns}")).split_whitespace() {
            let c = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            let ppid_ns = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            if c.trim() == "keepalived" {
                let ppid: u32 = ppid_ns
                    .split_whitespace()
                    .nth(3)
                    .and_then(|x| x.parse().ok())
                    .unwrap_or(0);
                let pc = std::fs::read_to_string(format!("/proc/{ppid}/comm")).unwrap_or_default();
                if (pc.trim() == "keepalived") == want_child {
                    return p.parse().unwrap();
                }
            }
        }
        assert!(Instant::now() < end, "keepalived not found in {ns}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One failover: returns the gap in seconds.
fn round(new: &str, v3: bool, kill_sig: &str) -> f64 {
    let id = format!(
        "{}{}",
        std::process::id(),
        Instant::now().elapsed().subsec_nanos() % 100_000 + rand_u32() % 1000
    );
    let ns = Ns {
        m: format!("fb-m-{id}"),
        n: format!("fb-n-{id}"),
        dir: std::env::temp_dir().join(format!("fb-{id}")),
    };
    std::fs::create_dir_all(&ns.dir).unwrap();
    for (name, dev, addr) in [(&ns.m, "vm", "10.90.0.1"), (&ns.n, "vn", "10.90.0.2")] {
        sh(&format!(
            "ip netns add {name} && ip -n {name} link set lo up && ip link add {dev} netns {name} type veth peer name p{dev} && \
             ip link set p{dev} master fbr up && ip -n {name} addr add {addr}/24 dev {dev} && ip -n {name} link set {dev} up"
        ));
    }
    let cm = ns.dir.join("m.conf");
    let cn = ns.dir.join("n.conf");
    std::fs::write(&cm, conf("vm", 200, v3)).unwrap();
    std::fs::write(&cn, conf("vn", 100, v3)).unwrap();
    let mut old = spawn_in(&ns.m, "keepalived", &cm, &ns.dir, "m");
    // Let the old master win and settle, then start the new one (a Backup).
    std::thread::sleep(Duration::from_millis(if v3 { 1500 } else { 4500 }));
    let mut newc = spawn_in(&ns.n, new, &cn, &ns.dir, "n");
    std::thread::sleep(Duration::from_secs(2));
    let idx: u32 = sh("ip -o link show fbr")
        .split(':')
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let sock = VrrpSocket::open("fbr", idx, false).unwrap();
    let old_src: IpAddr = "10.90.0.1".parse().unwrap();
    let new_src: IpAddr = "10.90.0.2".parse().unwrap();
    let mut buf = vec![0u8; 2048];
    let mut last_old: Option<Instant> = None;
    let pid = keepalived_pid(&ns.m, kill_sig == "KILL");
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
    let first_new = read_until_new(&sock, &mut buf, new_src, old_src, &mut last_old)
        .expect("no advert from the new master");
    let gap = first_new - last_old.unwrap_or(first_new);
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
    gap.as_secs_f64()
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

fn rand_u32() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if testkit::require_tool("keepalived").is_none() {
        return;
    }
    let Some(_ns) = testkit::netns() else {
        return;
    };
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    let ok = Command::new("cargo")
        .args(["build", "--release", "-p", "cli", "--bin", "vrrpd"])
        .current_dir(testkit::workspace_root())
        .status()
        .unwrap()
        .success();
    assert!(ok, "building vrrpd");
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
            for r in 0..rounds {
                // Alternate the order between rounds.
                let order = if r % 2 == 0 {
                    ["keepalived", "vrrpd"]
                } else {
                    ["vrrpd", "keepalived"]
                };
                for who in order {
                    sh("ip link add fbr type bridge && ip link set fbr up");
                    let g = round(who, v3, sig);
                    if who == "vrrpd" {
                        us.push(g)
                    } else {
                        ka.push(g)
                    }
                }
            }
            let (k, u) = (median(ka), median(us));
            println!(
                "| {label}, {what} | {:.1} ms | {:.1} ms | {:.1} ms | {:+.1} ms | {:+.1} ms |",
                rfc * 1e3,
                k * 1e3,
                u * 1e3,
                (u - rfc) * 1e3,
                (u - k) * 1e3
            );
        }
    }
}
