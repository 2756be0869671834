//! LVS health checking at scale: 1,000 real servers under 100 virtual servers, HTTP_GET every second.
//! lvs-check's driver (in its own process) against keepalived 2.2.7 (`-C`) with the same configuration,
//! each in its own network namespace of the IPVS VM, same run: CPU (user + system, % of one core) and RSS
//! over a measured window, then the time from one real server failing to its removal from IPVS. The
//! floor is a plain blocking loop doing the same 1,000 requests per second (no scheduling, no IPVS).
//! Run with `cargo xtask vm-lvs-bench [SECONDS]`; elsewhere it prints one SKIP line (fails under CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use lvs_check::config::{CheckKind, Checker, HttpCheck, RealServer, Target, Url, VirtualServer};
use lvs_check::{Driver, Engine};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const VS: usize = 100;
const RS_PER_VS: usize = 10;

fn rs_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, (i / 250) as u8, (i % 250 + 1) as u8)
}

fn vs_addr(v: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, (v + 1) as u8)
}

fn keepalived_conf() -> String {
    let mut s = String::new();
    for v in 0..VS {
        s.push_str(&format!(
            "virtual_server {} 80 {{\n  delay_loop 1\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n",
            vs_addr(v)
        ));
        for r in 0..RS_PER_VS {
            s.push_str(&format!(
                "  real_server {} 80 {{\n    HTTP_GET {{\n      url {{\n        path /\n        status_code 200\n      }}\n      connect_timeout 5\n    }}\n  }}\n",
                rs_addr(v * RS_PER_VS + r)
            ));
        }
        s.push_str("}\n");
    }
    s
}

fn our_config() -> Vec<VirtualServer> {
    (0..VS)
        .map(|v| {
            let mut vs = VirtualServer::new(Target::Addr {
                addr: SocketAddr::new(vs_addr(v).into(), 80),
                protocol: ipvs_nl::Protocol::Tcp,
            });
            vs.delay_loop = Duration::from_secs(1);
            vs.scheduler = ipvs_nl::Scheduler::Rr;
            for r in 0..RS_PER_VS {
                let mut rs =
                    RealServer::new(SocketAddr::new(rs_addr(v * RS_PER_VS + r).into(), 80));
                let mut h = HttpCheck::default();
                let mut u = Url::new("/");
                u.status = lvs_check::config::StatusCodes::empty();
                u.status.insert_range(200, 200);
                h.urls.push(u);
                let mut c = Checker::new(CheckKind::Http(h));
                c.connect_timeout = Some(Duration::from_secs(5));
                rs.checkers.push(c);
                vs.real_servers.push(rs);
            }
            vs
        })
        .collect()
}

/// A small HTTP server on every address of the namespace (port 80), with a pool of threads; counts the
/// requests it answered.
fn serve() -> Arc<AtomicU64> {
    let count = Arc::new(AtomicU64::new(0));
    let l = TcpListener::bind("0.0.0.0:80").unwrap();
    for _ in 0..8 {
        let l = l.try_clone().unwrap();
        let count = count.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut got = 0;
                while let Ok(n) = s.read(&mut buf[got..]) {
                    if n == 0 {
                        break;
                    }
                    got += n;
                    if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") || got == buf.len() {
                        break;
                    }
                }
                let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n");
                count.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    count
}

/// CPU seconds (user + system) of a process and its reaped children, and its RSS in KiB.
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(") ").map(|(_, a)| a).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields after the command: state is 0; utime 11, stime 12, cutime 13, cstime 14.
    let tick = 100.0;
    let cpu: f64 = [11, 12, 13, 14]
        .iter()
        .map(|&i| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0))
        .sum::<f64>()
        / tick;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (cpu, rss)
}

fn ipvsadm_save() -> String {
    String::from_utf8(
        Command::new("/usr/sbin/ipvsadm")
            .args(["-S", "-n"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
}

/// The roles this executable plays in a child process.
fn child_role(role: &str) {
    match role {
        "driver" => {
            let ipvs = ipvs_nl::Ipvs::open().unwrap();
            let mut d = Driver::new(Engine::new(our_config(), 5)).with_ipvs(ipvs);
            d.start();
            loop {
                d.run_once(None).unwrap();
                while d.poll_output().is_some() {}
            }
        }
        "floor" => loop {
            let t = Instant::now();
            for i in 0..VS * RS_PER_VS {
                let a = SocketAddr::new(rs_addr(i).into(), 80);
                if let Ok(mut s) = TcpStream::connect_timeout(&a, Duration::from_secs(5)) {
                    let _ = s.write_all(
                        b"GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: x\r\n\r\n",
                    );
                    let mut v = Vec::new();
                    let _ = s.read_to_end(&mut v);
                }
            }
            std::thread::sleep(Duration::from_secs(1).saturating_sub(t.elapsed()));
        },
        other => panic!("unknown role {other}"),
    }
}

/// One side: a namespace with 1,000 real server addresses and the HTTP server, and a daemon.
struct Side {
    child: Child,
    /// The processes whose CPU counts (keepalived: parent and checker child).
    pids: Vec<u32>,
    tx: std::sync::mpsc::Sender<(String, std::sync::mpsc::Sender<String>)>,
}

fn side(kind: &'static str) -> Side {
    let (tx, rx) = std::sync::mpsc::channel::<(String, std::sync::mpsc::Sender<String>)>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let ns = testkit::netns().expect("root");
        let dir = format!("/tmp/lvsbench-{kind}");
        std::fs::create_dir_all(&dir).unwrap();
        // Every real server address is local through one route (no 1,000 `ip addr add`s).
        ns.sh("ip route add local 10.1.0.0/16 dev lo");
        let served = serve();
        let exe = std::env::current_exe().unwrap();
        let (child, pids) = match kind {
            "keepalived" => {
                std::fs::write(format!("{dir}/ka.conf"), keepalived_conf()).unwrap();
                let c = Command::new("/usr/sbin/keepalived")
                    .args(["-C", "-n", "-f", &format!("{dir}/ka.conf")])
                    .args([
                        "-p",
                        &format!("{dir}/ka.pid"),
                        "-c",
                        &format!("{dir}/chk.pid"),
                    ])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap();
                let pid = c.id();
                let mut chk = None;
                for _ in 0..200 {
                    std::thread::sleep(Duration::from_millis(50));
                    if let Ok(s) = std::fs::read_to_string(format!("{dir}/chk.pid")) {
                        chk = s.trim().parse::<u32>().ok();
                        if chk.is_some() {
                            break;
                        }
                    }
                }
                (c, vec![pid, chk.expect("keepalived's checker pid")])
            }
            role => {
                let c = Command::new(exe)
                    .env("BENCH_ROLE", role)
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap();
                let pid = c.id();
                (c, vec![pid])
            }
        };
        ready_tx.send((child, pids)).unwrap();
        // Commands run in this namespace.
        for (cmd, reply) in rx {
            let out = if cmd == "save" {
                ipvsadm_save()
            } else if cmd == "served" {
                served.load(Ordering::Relaxed).to_string()
            } else {
                let o = ns.sh_any(&cmd).unwrap();
                String::from_utf8_lossy(&o.stdout).into_owned()
            };
            let _ = reply.send(out);
        }
    });
    let (child, pids) = ready_rx.recv().unwrap();
    Side { child, pids, tx }
}

impl Side {
    fn ask(&self, cmd: &str) -> String {
        let (r, rr) = std::sync::mpsc::channel();
        self.tx.send((cmd.to_string(), r)).unwrap();
        rr.recv().unwrap()
    }

    fn usage(&self) -> (f64, u64) {
        self.pids
            .iter()
            .map(|p| usage(*p))
            .fold((0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    }

    fn stop(mut self) {
        term(self.child.id());
        let _ = self.child.wait();
    }
}

fn term(pid: u32) {
    if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
    }
}

fn main() {
    if let Ok(role) = std::env::var("BENCH_ROLE") {
        child_role(&role);
        return;
    }
    if !testkit::require(
        "IPVS and keepalived (run `cargo xtask vm-lvs-bench`)",
        ipvs_nl::Ipvs::open().is_ok() && std::path::Path::new("/usr/sbin/keepalived").exists(),
    ) {
        return;
    }
    let window: u64 = std::env::var("LVS_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    println!(
        "LVS check bench: {VS} virtual servers x {RS_PER_VS} real servers, HTTP_GET every 1 s, window {window} s; commit {}, host load {}",
        std::env::var("BENCH_COMMIT").unwrap_or_default(),
        std::env::var("BENCH_HOST_LOAD").unwrap_or_default().trim()
    );
    // One side at a time, so each has the whole VM (TCG on a shared host is slow enough).
    let mut rows = Vec::new();
    for kind in ["keepalived", "driver", "floor"] {
        let sd = side(kind);
        let count = |t: &str| t.lines().filter(|l| l.starts_with("-a ")).count();
        // Warm-up: the table fills (every first check within delay_loop + 1 s), then 3 s more.
        let t = Instant::now();
        while kind != "floor"
            && count(&sd.ask("save")) < VS * RS_PER_VS
            && t.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_millis(500));
        }
        std::thread::sleep(Duration::from_secs(3));
        let served = |s: &Side| s.ask("served").parse::<u64>().unwrap_or(0);
        let (u0, n0) = (sd.usage(), served(&sd));
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs(window));
        let secs = t0.elapsed().as_secs_f64();
        let (u1, n1) = (sd.usage(), served(&sd));
        let in_table = if kind == "floor" {
            0
        } else {
            count(&sd.ask("save"))
        };
        let cpu = 100.0 * (u1.0 - u0.0) / secs;
        let rate = (n1 - n0) as f64 / secs;
        // A real server fails: its address becomes unreachable; time until IPVS drops it.
        let mut removal = f64::NAN;
        if kind != "floor" {
            let victim = rs_addr(0);
            let needle = format!("-r {victim}:80 ");
            if sd.ask("save").contains(&needle) {
                let t0 = Instant::now();
                sd.ask(&format!("ip route add unreachable {victim}/32 table local"));
                while t0.elapsed() < Duration::from_secs(60) {
                    if !sd.ask("save").contains(&needle) {
                        removal = t0.elapsed().as_secs_f64();
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        println!(
            "{kind:<10}: CPU {cpu:5.1} % of one core | {rate:6.0} checks answered/s | {:5.1} % per 1,000 checks/s | RSS {} KiB | {in_table} real servers in IPVS | failure to removal {removal:.2} s",
            cpu * 1000.0 / rate.max(1.0),
            u1.1
        );
        rows.push((kind, cpu, rate, u1.1, removal));
        sd.stop();
    }
    let (k, o) = (&rows[0], &rows[1]);
    println!(
        "lvs-check/keepalived: CPU {:.2}x, CPU per check {:.2}x, RSS {:.2}x, removal {:.2} s vs {:.2} s",
        o.1 / k.1,
        (o.1 / o.2) / (k.1 / k.2),
        o.3 as f64 / k.3 as f64,
        o.4,
        k.4
    );
}
