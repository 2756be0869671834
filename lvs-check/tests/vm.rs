//! lvs-check against keepalived 2.2.7 inside the IPVS VM (`cargo xtask vm-test`).
//!
//! Three private network namespaces hold the same world: virtual addresses, real servers (small HTTP,
//! HTTPS and TCP servers run by this test, each switchable between answering, a wrong body, a 500
//! status, accepting and never answering, and not listening), a MISC_CHECK script whose exit status a
//! file sets, and a foreign IPVS service that no daemon may touch. keepalived (`-C`, checker only) runs
//! in one with a keepalived.conf, `vrrpd -C` on the same file in the second, and this crate's engine and
//! driver, with the same configuration built as `lvs_check::config` values, in the third.
//!
//! After each event every side's table (`ipvsadm -S -n`) is polled until it is exactly the table the
//! event must give, with a generous deadline counted in the checkers' own units (delay_loop, retries,
//! delay_before_retry, connect_timeout): nothing assumes how fast the (emulated, often loaded) VM is.
//! The time each side took is printed as an `lvs-event` line (`cargo xtask vm-lvs-events` repeats the
//! script and reports medians). The events: wrong digest, comes back, wrong status, a server that
//! accepts and never answers, a server that stops listening (inhibit_on_failure), every server fails
//! (sorry server, quorum), the servers come back, MISC_CHECK exit statuses (misc_dynamic weight,
//! failure, recovery), a reload that adds and removes real servers, and the shutdown (each removes what
//! it added and nothing else).
#![cfg(feature = "vm-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "vm/samples.rs"]
mod samples;

use ipvs_nl::{FwdMethod, Protocol};
use lvs_check::config::{
    CheckKind, Checker, Forwarding, HttpCheck, MiscCheck, RealServer, Target, Url, VirtualServer,
};
use lvs_check::{Driver, Engine};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

const DELAY: Duration = Duration::from_secs(1);
const BODY: &[u8] = b"<html>lvs-check</html>\n";

/// Server modes.
const OK: u8 = 0;
const WRONG: u8 = 1;
const STATUS500: u8 = 2;
const DOWN: u8 = 3;
/// Accepts, reads the request and never answers (until the mode changes).
const HANG: u8 = 4;

/// Waits until `fd` is readable, at most `ms` milliseconds.
fn readable(fd: &impl std::os::fd::AsFd, ms: i32) -> bool {
    let mut p = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
    let ts = rustix::event::Timespec {
        tv_sec: i64::from(ms / 1000),
        tv_nsec: i64::from(ms % 1000) * 1_000_000,
    };
    matches!(rustix::event::poll(&mut p, Some(&ts)), Ok(n) if n > 0)
}

/// A server that can be switched between modes; DOWN closes its listener (connections refused).
/// It sleeps in poll(2) between connections (a busy accept loop would eat the emulated CPU).
/// `hits` counts the connections it accepted. Returns once it listens.
fn switchable(addr: SocketAddr, mode: Arc<AtomicU8>, hits: Arc<AtomicU64>, tls: bool) {
    let tls_cfg = tls.then(common::tls_server_config);
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut listener: Option<TcpListener> = None;
        loop {
            let m = mode.load(Ordering::Relaxed);
            if m == DOWN {
                listener = None;
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            if listener.is_none() {
                let l = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                    .unwrap();
                l.set_reuse_address(true).unwrap();
                if l.bind(&addr.into()).is_err() {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                l.listen(64).unwrap();
                let l: TcpListener = l.into();
                l.set_nonblocking(true).unwrap();
                listener = Some(l);
                let _ = ready_tx.send(());
            }
            let Some(l) = &listener else { continue };
            if !readable(l, 100) {
                continue;
            }
            let Ok((s, _)) = l.accept() else { continue };
            hits.fetch_add(1, Ordering::Relaxed);
            let cfg = tls_cfg.clone();
            let mode = mode.clone();
            std::thread::spawn(move || {
                let _ = s.set_nonblocking(false);
                let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
                let (status, body): (&str, &[u8]) = match m {
                    WRONG => ("200 OK", b"something else\n"),
                    STATUS500 => ("500 Internal Server Error", BODY),
                    _ => ("200 OK", BODY),
                };
                let reply = [
                    format!(
                        "HTTP/1.0 {status}\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    )
                    .into_bytes(),
                    body.to_vec(),
                ]
                .concat();
                // HANG: hold the connection, silent, while the mode stays (at most 20 s).
                let hang = || {
                    let t = Instant::now();
                    while mode.load(Ordering::Relaxed) == HANG
                        && t.elapsed() < Duration::from_secs(20)
                    {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                };
                match cfg {
                    Some(cfg) => {
                        let mut conn = rustls::ServerConnection::new(cfg).unwrap();
                        let mut s = s;
                        let mut t = rustls::Stream::new(&mut conn, &mut s);
                        if read_head(&mut t) {
                            if m == HANG {
                                return hang();
                            }
                            let _ = t.write_all(&reply);
                            t.conn.send_close_notify();
                            let _ = t.flush();
                        }
                    }
                    None => {
                        let mut s = s;
                        if read_head(&mut s) {
                            if m == HANG {
                                return hang();
                            }
                            let _ = s.write_all(&reply);
                        }
                    }
                }
            });
        }
    });
    ready_rx.recv().unwrap();
}

/// Reads up to the end of a request's headers (a TCP check sends nothing: false at EOF).
fn read_head(s: &mut impl Read) -> bool {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    true
}

/// The keepalived.conf of the test; `reloaded` is the configuration after the reload step.
fn keepalived_conf(dir: &str, digest: &str, reloaded: bool) -> String {
    let rs3 = if reloaded {
        "  real_server 10.0.2.5 8080 {\n    weight 1\n    TCP_CHECK {\n      connect_timeout 1\n      warmup 0\n    }\n  }\n".to_string()
    } else {
        "  real_server 10.0.2.2 8080 {\n    weight 3\n    inhibit_on_failure\n    TCP_CHECK {\n      connect_timeout 1\n      warmup 0\n    }\n  }\n".to_string()
    };
    format!(
        "virtual_server 10.0.1.1 80 {{
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol TCP
  quorum 2
  sorry_server 10.0.2.9 8080
  real_server 10.0.2.1 8080 {{
    weight 2
    HTTP_GET {{
      url {{
        path /index.html
        digest {digest}
      }}
      connect_timeout 1
      retry 1
      delay_before_retry 1
      warmup 0
    }}
  }}
{rs3}}}
virtual_server fwmark 7 {{
  delay_loop 1
  lb_algo wlc
  lb_kind DR
  persistence_timeout 300
  real_server 10.0.2.3 80 {{
    weight 4
    MISC_CHECK {{
      misc_path \"/bin/sh {dir}/misc.sh {dir}/code\"
      misc_timeout 2
      misc_dynamic
      warmup 0
    }}
  }}
}}
virtual_server_group web {{
  10.0.1.5-6 443
}}
virtual_server group web {{
  delay_loop 1
  lb_algo sh
  sh-port
  lb_kind DR
  protocol TCP
  real_server 10.0.2.4 443 {{
    SSL_GET {{
      url {{
        path /
        status_code 200
      }}
      connect_timeout 5
      retry 3
      warmup 0
    }}
  }}
}}
"
    )
}

/// The same configuration as `lvs_check::config` values.
fn our_config(dir: &str, digest: [u8; 16], reloaded: bool) -> Vec<VirtualServer> {
    let warm0 = |mut c: Checker| {
        c.warmup = Some(Duration::ZERO);
        c.connect_timeout = Some(Duration::from_secs(1));
        c
    };
    let mut v1 = VirtualServer::new(Target::Addr {
        addr: "10.0.1.1:80".parse().unwrap(),
        protocol: Protocol::Tcp,
    });
    v1.delay_loop = DELAY;
    v1.scheduler = ipvs_nl::Scheduler::Rr;
    v1.quorum = 2;
    v1.sorry_server = Some(RealServer::new("10.0.2.9:8080".parse().unwrap()));
    let mut r1 = RealServer::new("10.0.2.1:8080".parse().unwrap());
    r1.weight = Some(2);
    let mut h = HttpCheck::default();
    let mut u = Url::new("/index.html");
    u.digest = Some(digest);
    h.urls.push(u);
    let mut c = warm0(Checker::new(CheckKind::Http(h)));
    c.retry = Some(1);
    c.delay_before_retry = Some(DELAY);
    r1.checkers.push(c);
    v1.real_servers.push(r1);
    if reloaded {
        let mut r = RealServer::new("10.0.2.5:8080".parse().unwrap());
        r.weight = Some(1);
        r.checkers.push(warm0(Checker::new(CheckKind::Tcp)));
        v1.real_servers.push(r);
    } else {
        let mut r2 = RealServer::new("10.0.2.2:8080".parse().unwrap());
        r2.weight = Some(3);
        r2.inhibit_on_failure = Some(true);
        r2.checkers.push(warm0(Checker::new(CheckKind::Tcp)));
        v1.real_servers.push(r2);
    }

    let mut v2 = VirtualServer::new(Target::Fwmark {
        mark: 7,
        family: ipvs_nl::Family::Ipv4,
    });
    v2.delay_loop = DELAY;
    v2.forwarding = Forwarding::new(FwdMethod::Route);
    v2.persistence_timeout = 300;
    let mut r3 = RealServer::new("10.0.2.3:80".parse().unwrap());
    r3.weight = Some(4);
    let mut m = MiscCheck::new(vec![
        "/bin/sh".into(),
        format!("{dir}/misc.sh"),
        format!("{dir}/code"),
    ]);
    m.timeout = Some(Duration::from_secs(2));
    m.dynamic = true;
    let mut mc = Checker::new(CheckKind::Misc(m));
    mc.warmup = Some(Duration::ZERO);
    r3.checkers.push(mc);
    v2.real_servers.push(r3);

    let key = |a: &str| ipvs_nl::ServiceKey::Inet {
        protocol: Protocol::Tcp,
        addr: a.parse().unwrap(),
        port: 443,
    };
    let mut v3 = VirtualServer::new(Target::Group {
        name: "web".into(),
        services: vec![key("10.0.1.5"), key("10.0.1.6")],
    });
    v3.delay_loop = DELAY;
    v3.scheduler = ipvs_nl::Scheduler::Sh;
    v3.flags = ipvs_nl::ServiceFlags::SCHED2;
    v3.forwarding = Forwarding::new(FwdMethod::Route);
    let mut r4 = RealServer::new("10.0.2.4:443".parse().unwrap());
    let mut h = HttpCheck::default();
    let mut u = Url::new("/");
    u.status = lvs_check::config::StatusCodes::empty();
    u.status.insert_range(200, 200);
    h.urls.push(u);
    // No event touches this server: generous timers, so that a TLS handshake slowed by a loaded
    // host does not take it out on either side (keepalived once did with connect_timeout 1).
    let mut c = warm0(Checker::new(CheckKind::Ssl(h)));
    c.connect_timeout = Some(Duration::from_secs(5));
    c.retry = Some(3);
    r4.checkers.push(c);
    v3.real_servers.push(r4);
    vec![v1, v2, v3]
}

/// What the main thread asks a side.
enum Cmd {
    Table(mpsc::Sender<String>),
    /// The table, with the instant its reading started.
    Sample(mpsc::Sender<(Instant, String)>),
    /// `vrrpd status` (vrrpd side only).
    Status(mpsc::Sender<String>),
    Reload,
    Stop(mpsc::Sender<String>),
}

/// One side: a namespace with the servers, and a daemon (keepalived, vrrpd or the library).
struct Side {
    name: &'static str,
    tx: mpsc::Sender<Cmd>,
    modes: Vec<Arc<AtomicU8>>,
    /// Connections each server accepted.
    hits: Vec<Arc<AtomicU64>>,
    dir: String,
    join: Option<std::thread::JoinHandle<()>>,
}

const SERVERS: [(&str, bool); 6] = [
    ("10.0.2.1:8080", false),
    ("10.0.2.2:8080", false),
    ("10.0.2.4:443", true),
    ("10.0.2.5:8080", false),
    ("10.0.2.9:8080", false),
    ("10.0.2.3:80", false),
];

/// A service no daemon manages: added with ipvsadm before the daemon starts, it must be there, intact,
/// after every step and after the shutdown.
const FOREIGN: [&str; 2] = [
    "-A -t 10.0.9.9:80 -s wrr",
    "-a -t 10.0.9.9:80 -r 10.0.2.1:8080 -m -w 5",
];

/// When this namespace's IPVS table last changed, read through ipvs-nl (fast and in-process, unlike
/// `ipvsadm`, whose start-up alone takes a good part of a second on a loaded emulated machine): the
/// side threads look every 50 ms, and once more with each reading, so the time of a change is known
/// to 50 ms whatever `ipvsadm` costs.
struct Watch {
    ipvs: ipvs_nl::Ipvs,
    seen: String,
    changed: Instant,
    looked: Instant,
}

impl Watch {
    fn new() -> Self {
        let mut w = Watch {
            ipvs: ipvs_nl::Ipvs::open().unwrap(),
            seen: String::new(),
            changed: Instant::now(),
            looked: Instant::now(),
        };
        w.seen = w.fingerprint();
        w
    }

    /// What `ipvsadm -S` shows of the table (no counters), as text.
    fn fingerprint(&mut self) -> String {
        let services: Vec<ipvs_nl::Service> = self
            .ipvs
            .services()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut out = Vec::new();
        for s in services {
            let mut dests: Vec<String> = self
                .ipvs
                .destinations(&s.key)
                .unwrap()
                .map(|d| {
                    let d = d.unwrap();
                    format!(
                        "{}:{} {:?} {} {} {} {:?} {} {:?}",
                        d.addr,
                        d.port,
                        d.fwd,
                        d.weight,
                        d.u_threshold,
                        d.l_threshold,
                        d.tun_type,
                        d.tun_port,
                        d.tun_flags
                    )
                })
                .collect();
            dests.sort();
            out.push(format!(
                "{:?} {} {:?} {} {} {:?} [{}]",
                s.key,
                s.scheduler.name(),
                s.flags,
                s.timeout,
                s.netmask,
                s.pe_name,
                dests.join(", ")
            ));
        }
        out.sort();
        out.join("\n")
    }

    /// Looks at the table if `force` or 50 ms have passed; returns when it last changed.
    fn poll(&mut self, force: bool) -> Instant {
        if force || self.looked.elapsed() >= Duration::from_millis(50) {
            self.looked = Instant::now();
            let f = self.fingerprint();
            if f != self.seen {
                self.seen = f;
                self.changed = self.looked;
            }
        }
        self.changed
    }

    /// `ipvsadm -S -n` and when the table it shows came to be.
    fn sample(&mut self) -> (Instant, String) {
        let t = ipvsadm_save();
        (self.poll(true), t)
    }
}

fn ipvsadm_save() -> String {
    let o = std::process::Command::new("/usr/sbin/ipvsadm")
        .args(["-S", "-n"])
        .output()
        .unwrap();
    let mut lines: Vec<&str> = std::str::from_utf8(&o.stdout).unwrap().lines().collect();
    lines.sort();
    lines.join("\n")
}

/// Which daemon a side runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Debian's keepalived 2.2.7, `-C`.
    Keepalived,
    /// Our vrrpd binary, `-C`, reading the same keepalived.conf.
    Vrrpd,
    /// lvs-check's driver in this process, configured with `config` values.
    Library,
}

/// Runs a daemon process and answers the main thread's commands in this namespace until told to stop.
fn serve_process(
    mut child: std::process::Child,
    rx: &mpsc::Receiver<Cmd>,
    conf: &str,
    dir: &str,
    status_sock: Option<&str>,
    log: &str,
) {
    let digest = lvs_check::http::md5(BODY);
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    let mut watch = Watch::new();
    loop {
        watch.poll(false);
        match rx.recv_timeout(Duration::from_millis(50)) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(Cmd::Table(r)) => {
                let _ = r.send(ipvsadm_save());
            }
            Ok(Cmd::Sample(r)) => {
                let _ = r.send(watch.sample());
            }
            Ok(Cmd::Status(r)) => {
                let text = match status_sock {
                    Some(sock) => {
                        let o = std::process::Command::new("/opt/project/bin/vrrpd")
                            .args(["status", "--socket", sock])
                            .output()
                            .unwrap();
                        String::from_utf8_lossy(&o.stdout).into_owned()
                    }
                    None => ipvsadm_save(),
                };
                let _ = r.send(text);
            }
            Ok(Cmd::Reload) => {
                std::fs::write(
                    conf,
                    keepalived_conf(dir, &lvs_check::http::digest_hex(&digest), true),
                )
                .unwrap();
                rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
            }
            Ok(Cmd::Stop(r)) => {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
                let st = child.wait().unwrap();
                let text = std::fs::read_to_string(log).unwrap_or_default();
                assert!(st.success(), "{log}: exited {st}:\n{text}");
                let _ = r.send(ipvsadm_save());
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
                let _ = child.wait();
                break;
            }
        }
    }
}

fn start_side(name: &'static str, kind: Kind) -> Side {
    let dir = format!("/tmp/lvsvm-{name}-{}", std::process::id());
    std::fs::create_dir_all(&dir).unwrap();
    // The MISC_CHECK script counts its runs in `code.ran`, and exits with the status in `code`.
    std::fs::write(
        format!("{dir}/misc.sh"),
        "echo . >> \"$1.ran\"\nexit $(cat \"$1\")\n",
    )
    .unwrap();
    std::fs::write(format!("{dir}/code"), "0").unwrap();
    let digest = lvs_check::http::md5(BODY);
    let modes: Vec<Arc<AtomicU8>> = SERVERS
        .iter()
        .map(|_| Arc::new(AtomicU8::new(OK)))
        .collect();
    let (tx, rx) = mpsc::channel::<Cmd>();
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let hits: Vec<Arc<AtomicU64>> = SERVERS
        .iter()
        .map(|_| Arc::new(AtomicU64::new(0)))
        .collect();
    let m2 = modes.clone();
    let h2 = hits.clone();
    let d2 = dir.clone();
    let join = std::thread::spawn(move || {
        let ns = testkit::netns().expect("root");
        ns.sh("for a in 10.0.1.1 10.0.1.5 10.0.1.6 10.0.2.1 10.0.2.2 10.0.2.3 10.0.2.4 10.0.2.5 10.0.2.9 10.0.9.9; do ip addr add $a/32 dev lo; done");
        for line in FOREIGN {
            ns.sh(&format!("/usr/sbin/ipvsadm {line}"));
        }
        for (((a, tls), m), h) in SERVERS.iter().zip(&m2).zip(&h2) {
            switchable(a.parse().unwrap(), m.clone(), h.clone(), *tls);
        }
        let conf = format!("{d2}/keepalived.conf");
        std::fs::write(
            &conf,
            keepalived_conf(&d2, &lvs_check::http::digest_hex(&digest), false),
        )
        .unwrap();
        let _ = ready_tx.send(());
        match kind {
            Kind::Vrrpd => {
                let sock = format!("{d2}/vrrpd.sock");
                let log = format!("{d2}/vrrpd.log");
                let out = std::fs::File::create(&log).unwrap();
                let child = std::process::Command::new("/opt/project/bin/vrrpd")
                    .args(["-C", "-f", &conf, "--socket", &sock])
                    .stdout(out.try_clone().unwrap())
                    .stderr(out)
                    .spawn()
                    .unwrap();
                serve_process(child, &rx, &conf, &d2, Some(&sock), &log);
            }
            Kind::Keepalived => {
                // Its log, for a failing run: /tmp/lvsvm-keepalived-PID/keepalived.log in the VM.
                let log = format!("{d2}/keepalived.log");
                let child =
                    spawn_keepalived_checker(&conf, &d2, std::fs::File::create(&log).unwrap());
                serve_process(child, &rx, &conf, &d2, None, &log);
            }
            Kind::Library => {
                let ipvs = ipvs_nl::Ipvs::open().unwrap();
                let mut drv =
                    Driver::new(Engine::new(our_config(&d2, digest, false), 11)).with_ipvs(ipvs);
                drv.start();
                let mut watch = Watch::new();
                loop {
                    drv.run_once(Some(Duration::from_millis(20))).unwrap();
                    watch.poll(false);
                    while let Some(o) = drv.poll_output() {
                        if let lvs_check::Output::Ipvs {
                            applied: Some(Err(e)),
                            op,
                        } = &o
                        {
                            panic!("ours: IPVS error {e} for {op:?}");
                        }
                    }
                    match rx.try_recv() {
                        Ok(Cmd::Table(r) | Cmd::Status(r)) => {
                            let _ = r.send(ipvsadm_save());
                        }
                        Ok(Cmd::Sample(r)) => {
                            let _ = r.send(watch.sample());
                        }
                        Ok(Cmd::Reload) => drv.reload(our_config(&d2, digest, true)),
                        Ok(Cmd::Stop(r)) => {
                            drv.stop();
                            let _ = r.send(ipvsadm_save());
                            break;
                        }
                        Err(mpsc::TryRecvError::Empty) => {}
                        Err(mpsc::TryRecvError::Disconnected) => break,
                    }
                }
            }
        }
    });
    ready_rx.recv().unwrap();
    Side {
        name,
        tx,
        modes,
        hits,
        dir,
        join: Some(join),
    }
}

impl Side {
    fn ask(&self, cmd: fn(mpsc::Sender<String>) -> Cmd) -> String {
        let (r, rr) = mpsc::channel();
        self.tx.send(cmd(r)).unwrap();
        rr.recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{}: no answer ({e})", self.name))
    }

    fn table(&self) -> String {
        self.ask(Cmd::Table)
    }

    fn set(&self, server: usize, mode: u8) {
        self.modes[server].store(mode, Ordering::Relaxed);
    }

    /// How many times each checked server was checked: HTTP_GET, TCP_CHECK, SSL_GET, MISC_CHECK.
    fn checked(&self) -> [u64; 4] {
        let misc = std::fs::read_to_string(format!("{}/code.ran", self.dir))
            .map(|s| s.lines().count() as u64)
            .unwrap_or(0);
        let h = |i: usize| self.hits[i].load(Ordering::Relaxed);
        [h(0), h(1), h(2), misc]
    }

    fn code(&self, code: u8) {
        std::fs::write(format!("{}/code", self.dir), code.to_string()).unwrap();
    }

    fn stop(&mut self) -> String {
        let t = self.ask(Cmd::Stop);
        if let Some(j) = self.join.take() {
            j.join().unwrap();
        }
        t
    }
}

/// What the IPVS table must hold: the weight of each real server (`None`: not in the table).
#[derive(Clone, Copy, Debug)]
struct Model {
    /// 10.0.2.1:8080, HTTP_GET with a digest, weight 2.
    http: Option<u32>,
    /// 10.0.2.2:8080, TCP_CHECK, inhibit_on_failure, weight 3 (gone after the reload).
    tcp: Option<u32>,
    /// 10.0.2.5:8080, TCP_CHECK, weight 1 (added by the reload).
    added: Option<u32>,
    /// The sorry server 10.0.2.9:8080, weight 1.
    sorry: bool,
    /// 10.0.2.3 under fwmark 7, MISC_CHECK with misc_dynamic, weight 4.
    misc: Option<u32>,
    /// 10.0.2.4:443 under the group's two services, SSL_GET, weight 1.
    ssl: Option<u32>,
}

impl Model {
    /// The sorted `ipvsadm -S -n` text of this state, the foreign service included.
    fn table(&self) -> String {
        let mut l: Vec<String> = FOREIGN.iter().map(|s| s.to_string()).collect();
        l.push("-A -t 10.0.1.1:80 -s rr".into());
        let v1 = |rs: &str, w: Option<u32>, l: &mut Vec<String>| {
            if let Some(w) = w {
                l.push(format!("-a -t 10.0.1.1:80 -r {rs} -m -w {w}"));
            }
        };
        v1("10.0.2.1:8080", self.http, &mut l);
        v1("10.0.2.2:8080", self.tcp, &mut l);
        v1("10.0.2.5:8080", self.added, &mut l);
        v1("10.0.2.9:8080", self.sorry.then_some(1), &mut l);
        l.push("-A -f 7 -s wlc -p 300".into());
        if let Some(w) = self.misc {
            l.push(format!("-a -f 7 -r 10.0.2.3:0 -g -w {w}"));
        }
        for vip in ["10.0.1.5", "10.0.1.6"] {
            l.push(format!("-A -t {vip}:443 -s sh -b sh-port"));
            if let Some(w) = self.ssl {
                l.push(format!("-a -t {vip}:443 -r 10.0.2.4:443 -g -w {w}"));
            }
        }
        l.sort();
        l.join("\n")
    }
}

/// The checkers' units in this test's configuration, in seconds: every timer is 1 s (delay_loop,
/// delay_before_retry, connect_timeout) and HTTP_GET has retry 1.
const D: f64 = 1.0;
const RETRY: f64 = 1.0;
const DBR: f64 = 1.0;
const CT: f64 = 1.0;

/// How long a step may take: the keepalived schedule `bound` (seconds) of the event, fifteen times
/// over, plus 20 s for the emulated machine's start-up of processes; the passing run waits only as long
/// as the slowest side needs.
fn deadline(bound: f64) -> Duration {
    Duration::from_secs_f64(20.0 + 15.0 * bound)
}

/// One event of the script: what it does, the table it must give, and the keepalived schedule that
/// bounds the reaction (`formula` in the checkers' units, `bound` in seconds).
struct Step<'a> {
    what: &'a str,
    act: &'a dyn Fn(&Side),
    want: Model,
    formula: &'a str,
    bound: f64,
    /// Before the table counts, every checked server must have been checked twice (the first check
    /// is over) on every side: for the start, whose table the first checks must confirm.
    confirm: bool,
}

/// Applies `step` to every side, then polls every table until it is exactly the wanted one (at most
/// [`deadline`]), and checks them all once more; returns the seconds each side took.
fn run_step(sides: &[Side], step: &Step<'_>) -> Vec<f64> {
    let want = step.want.table();
    let t0 = Instant::now();
    for s in sides {
        (step.act)(s);
    }
    let limit = deadline(step.bound);
    let mut took: Vec<Option<f64>> = vec![None; sides.len()];
    let mut last: Vec<String> = vec![String::new(); sides.len()];
    while took.iter().any(Option::is_none) && t0.elapsed() < limit {
        // Every pending side is read at the same time (its own thread runs ipvsadm), each reading
        // stamped with when that table came to be (see `Watch`).
        let mut asked = Vec::new();
        for (i, s) in sides.iter().enumerate() {
            if took[i].is_some() || (step.confirm && s.checked().iter().any(|&n| n < 2)) {
                continue;
            }
            let (r, rr) = mpsc::channel();
            s.tx.send(Cmd::Sample(r)).unwrap();
            asked.push((i, rr));
        }
        for (i, rr) in asked {
            let (at, table) = rr
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("{}: no answer ({e})", sides[i].name));
            if table == want {
                took[i] = Some(at.saturating_duration_since(t0).as_secs_f64());
            }
            last[i] = table;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for (i, s) in sides.iter().enumerate() {
        assert!(
            took[i].is_some(),
            "{}: {}'s table after {limit:?} (checks made: {:?}):\n{}\n--- expected:\n{want}",
            step.what,
            s.name,
            s.checked(),
            last[i]
        );
    }
    // Reaching the table is not enough: every side must still hold it (no flapping).
    for s in sides {
        assert_eq!(
            s.table(),
            want,
            "{}: {} left the expected table",
            step.what,
            s.name
        );
    }
    took.into_iter().map(|t| t.unwrap_or(f64::NAN)).collect()
}

#[test]
fn same_ipvs_table_and_reactions_as_keepalived() {
    if !testkit::require(
        "keepalived in the VM",
        std::path::Path::new("/usr/sbin/keepalived").exists(),
    ) {
        return;
    }
    if !testkit::require("root", testkit::is_root()) {
        return;
    }
    let mut sides = vec![
        start_side("keepalived", Kind::Keepalived),
        start_side("vrrpd", Kind::Vrrpd),
        start_side("lvs-check", Kind::Library),
    ];
    let all_up = Model {
        http: Some(2),
        tcp: Some(3),
        added: None,
        sorry: false,
        misc: Some(4),
        ssl: Some(1),
    };
    // Failure of an up HTTP_GET checker: the next check, then `retry` more after delay_before_retry.
    let http_down = D + RETRY * DBR;
    // A server that never answers: each of those attempts also waits connect_timeout.
    let http_hang = D + CT + RETRY * (DBR + CT);
    // A failed HTTP_GET checker is checked every max(delay_before_retry, delay_loop); once its failed
    // URL answers, every URL is checked again (one more delay_loop) before the server is up.
    let http_up = DBR.max(D) + D;
    let steps: Vec<Step<'_>> = vec![
        Step {
            what: "start",
            act: &|_| {},
            want: all_up,
            formula: "1 s + warmup (0) + d (two checks)",
            bound: 2.0,
            confirm: true,
        },
        Step {
            what: "wrong digest",
            act: &|s| s.set(0, WRONG),
            want: Model {
                http: None,
                ..all_up
            },
            formula: "d + r",
            bound: http_down,
            confirm: false,
        },
        Step {
            what: "comes back",
            act: &|s| s.set(0, OK),
            want: all_up,
            formula: "max(dbr, d) + d",
            bound: http_up,
            confirm: false,
        },
        Step {
            what: "wrong status",
            act: &|s| s.set(0, STATUS500),
            want: Model {
                http: None,
                ..all_up
            },
            formula: "d + r",
            bound: http_down,
            confirm: false,
        },
        Step {
            what: "comes back again",
            act: &|s| s.set(0, OK),
            want: all_up,
            formula: "max(dbr, d) + d",
            bound: http_up,
            confirm: false,
        },
        Step {
            what: "accepts, never answers",
            act: &|s| s.set(0, HANG),
            want: Model {
                http: None,
                ..all_up
            },
            formula: "d + t + r·(dbr + t)",
            bound: http_hang,
            confirm: false,
        },
        Step {
            what: "answers again",
            act: &|s| s.set(0, OK),
            want: all_up,
            formula: "max(dbr, d) + d",
            bound: http_up,
            confirm: false,
        },
        Step {
            what: "stops listening (inhibit)",
            act: &|s| s.set(1, DOWN),
            want: Model {
                tcp: Some(0),
                ..all_up
            },
            formula: "d + r",
            bound: D + DBR,
            confirm: false,
        },
        Step {
            what: "every server fails (sorry server)",
            act: &|s| s.set(0, DOWN),
            want: Model {
                http: None,
                tcp: Some(0),
                sorry: true,
                ..all_up
            },
            formula: "d + r",
            bound: http_down,
            confirm: false,
        },
        Step {
            what: "servers come back",
            act: &|s| {
                s.set(0, OK);
                s.set(1, OK);
            },
            want: all_up,
            formula: "max(dbr, d) + d",
            bound: http_up,
            confirm: false,
        },
        Step {
            what: "misc_dynamic exit 7 (weight 5)",
            act: &|s| s.code(7),
            want: Model {
                misc: Some(5),
                ..all_up
            },
            formula: "d",
            bound: D,
            confirm: false,
        },
        Step {
            what: "misc exit 1 (failure)",
            act: &|s| s.code(1),
            want: Model {
                misc: None,
                ..all_up
            },
            formula: "d",
            bound: D,
            confirm: false,
        },
        Step {
            what: "misc exit 0 (back)",
            act: &|s| s.code(0),
            want: all_up,
            formula: "d",
            bound: D,
            confirm: false,
        },
        Step {
            what: "misc_dynamic exit 9 (weight 7)",
            act: &|s| s.code(9),
            want: Model {
                misc: Some(7),
                ..all_up
            },
            formula: "d",
            bound: D,
            confirm: false,
        },
        // keepalived recomputes a misc_dynamic weight at a reload as `status - 2 - weight` from the
        // last status, and gives a server whose last status was 0 weight 0: lvs-check keeps the weight
        // the last status gave (see its README, and the unit test reload_keeps_misc_dynamic_weights).
        // So the reload is compared with the MISC_CHECK failing, and its recovery after the reload.
        Step {
            what: "misc exit 1 before the reload",
            act: &|s| s.code(1),
            want: Model {
                misc: None,
                ..all_up
            },
            formula: "d",
            bound: D,
            confirm: false,
        },
        Step {
            what: "reload: +10.0.2.5, -10.0.2.2",
            act: &|s| s.tx.send(Cmd::Reload).unwrap(),
            want: Model {
                tcp: None,
                added: Some(1),
                misc: None,
                ..all_up
            },
            formula: "0 (at the reload)",
            bound: 0.0,
            confirm: false,
        },
        Step {
            what: "misc exit 0 after the reload",
            act: &|s| s.code(0),
            want: Model {
                tcp: None,
                added: Some(1),
                ..all_up
            },
            formula: "d",
            bound: D,
            confirm: false,
        },
    ];
    let mut report = Vec::new();
    for step in &steps {
        let took = run_step(&sides, step);
        report.push(format!(
            "lvs-event\t{}\t{}\t{:.2}\t{}",
            step.what,
            step.formula,
            step.bound,
            took.iter()
                .map(|t| format!("{t:.2}"))
                .collect::<Vec<_>>()
                .join("\t")
        ));
    }
    // vrrpd status: every real server with its check state and last failure.
    let st = sides[1].ask(Cmd::Status);
    for want in [
        "virtual_server FWM 7 quorum up",
        "real_server 10.0.2.3:80 UP weight 4",
        "MISC_CHECK up (last failure: exited with status 1)",
        "real_server 10.0.2.1:8080 UP weight 2 HTTP_GET up (last failure: Connection failed: Connection refused)",
    ] {
        assert!(st.contains(want), "vrrpd status lacks {want:?}:\n{st}");
    }
    // Each removes what it added, and only that: the foreign service stays.
    let foreign = {
        let mut f = FOREIGN.to_vec();
        f.sort();
        f.join("\n")
    };
    for s in &mut sides {
        let left = s.stop();
        assert_eq!(left, foreign, "{}: the table after its shutdown", s.name);
    }
    // The figures (run with --nocapture to see them): seconds from each event to the expected table,
    // keepalived, vrrpd, lvs-check.
    println!("lvs-event\tstep\tkeepalived schedule\tbound s\tkeepalived\tvrrpd\tlvs-check");
    for r in &report {
        println!("{r}");
    }
}

/// keepalived's checker alone (`-C`) in the foreground on `conf`, its pid files in `dir`, its log
/// (`-l -D`) to `log`.
fn spawn_keepalived_checker(conf: &str, dir: &str, log: std::fs::File) -> std::process::Child {
    std::process::Command::new("/usr/sbin/keepalived")
        .args(["-C", "-n", "-l", "-D", "-f", conf])
        .args([
            "-p",
            &format!("{dir}/ka.pid"),
            "-c",
            &format!("{dir}/chk.pid"),
        ])
        .stdout(log)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}
