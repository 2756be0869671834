//! lvs-check against keepalived 2.2.7 inside the IPVS VM (`cargo xtask vm-test`).
//!
//! Two private network namespaces hold the same world: virtual addresses, real servers (small HTTP,
//! HTTPS and TCP servers run by this test, each switchable between answering, a wrong body, a 500
//! status and not listening), and a MISC_CHECK script whose exit status a file sets. keepalived
//! (`-C`, checker only) runs in one with a keepalived.conf; our engine and driver, with the same
//! configuration built as `lvs_check::config` values, run in the other. After each event both IPVS
//! tables (`ipvsadm -S -n`) must settle to the same text; the time each daemon took is measured in
//! delay_loop units and printed. The events: a server answers the wrong digest, comes back, answers a
//! wrong status, stops listening (inhibit_on_failure), every server fails (sorry server, quorum),
//! MISC_CHECK exit statuses (misc_dynamic weight, failure, recovery), a reload that adds and removes
//! real servers, and the shutdown (both remove everything they added).
//!
//! The `virtual_server` reader belongs to vrrpd and is not on this branch yet, so the test writes the
//! configuration twice (keepalived.conf text and `config` values); a mismatch between the two shows up
//! as differing tables.
#![cfg(feature = "vm-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use ipvs_nl::{FwdMethod, Protocol};
use lvs_check::config::{
    CheckKind, Checker, Forwarding, HttpCheck, MiscCheck, RealServer, Target, Url, VirtualServer,
};
use lvs_check::{Driver, Engine};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

const DELAY: Duration = Duration::from_secs(1);
const BODY: &[u8] = b"<html>lvs-check</html>\n";

/// Server modes.
const OK: u8 = 0;
const WRONG: u8 = 1;
const STATUS500: u8 = 2;
const DOWN: u8 = 3;

/// A server that can be switched between modes; DOWN closes its listener (connections refused).
fn switchable(addr: SocketAddr, mode: Arc<AtomicU8>, tls: bool) {
    std::thread::spawn(move || {
        let tls_cfg = tls.then(common::tls_server_config);
        let mut listener: Option<TcpListener> = None;
        loop {
            let m = mode.load(Ordering::Relaxed);
            if m == DOWN {
                listener = None;
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            if listener.is_none() {
                let l = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                    .unwrap();
                l.set_reuse_address(true).unwrap();
                if l.bind(&addr.into()).is_err() {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                l.listen(64).unwrap();
                let l: TcpListener = l.into();
                l.set_nonblocking(true).unwrap();
                listener = Some(l);
            }
            let Some(l) = &listener else { continue };
            match l.accept() {
                Ok((s, _)) => {
                    let cfg = tls_cfg.clone();
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
                        match cfg {
                            Some(cfg) => {
                                let mut conn = rustls::ServerConnection::new(cfg).unwrap();
                                let mut s = s;
                                let mut t = rustls::Stream::new(&mut conn, &mut s);
                                if read_head(&mut t) {
                                    let _ = t.write_all(&reply);
                                    t.conn.send_close_notify();
                                    let _ = t.flush();
                                }
                            }
                            None => {
                                let mut s = s;
                                if read_head(&mut s) {
                                    let _ = s.write_all(&reply);
                                }
                            }
                        }
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
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
      connect_timeout 1
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
    r4.checkers.push(warm0(Checker::new(CheckKind::Ssl(h))));
    v3.real_servers.push(r4);
    vec![v1, v2, v3]
}

/// What the main thread asks a side.
enum Cmd {
    Table(mpsc::Sender<String>),
    /// `vrrpd status` (vrrpd side only).
    Status(mpsc::Sender<String>),
    Reload,
    Stop(mpsc::Sender<String>),
}

/// One side: a namespace with the servers, and a daemon (keepalived or ours).
struct Side {
    name: &'static str,
    tx: mpsc::Sender<Cmd>,
    modes: Vec<Arc<AtomicU8>>,
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

fn start_side(name: &'static str, kind: Kind) -> Side {
    let dir = format!("/tmp/lvsvm-{name}-{}", std::process::id());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(format!("{dir}/misc.sh"), "exit $(cat \"$1\")\n").unwrap();
    std::fs::write(format!("{dir}/code"), "0").unwrap();
    let digest = lvs_check::http::md5(BODY);
    let modes: Vec<Arc<AtomicU8>> = SERVERS
        .iter()
        .map(|_| Arc::new(AtomicU8::new(OK)))
        .collect();
    let (tx, rx) = mpsc::channel::<Cmd>();
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let m2 = modes.clone();
    let d2 = dir.clone();
    let join = std::thread::spawn(move || {
        let ns = testkit::netns().expect("root");
        ns.sh("for a in 10.0.1.1 10.0.1.5 10.0.1.6 10.0.2.1 10.0.2.2 10.0.2.3 10.0.2.4 10.0.2.5 10.0.2.9; do ip addr add $a/32 dev lo; done");
        for ((a, tls), m) in SERVERS.iter().zip(&m2) {
            switchable(a.parse().unwrap(), m.clone(), *tls);
        }
        let conf = format!("{d2}/keepalived.conf");
        std::fs::write(
            &conf,
            keepalived_conf(&d2, &lvs_check::http::digest_hex(&digest), false),
        )
        .unwrap();
        let _ = ready_tx.send(());
        if kind == Kind::Vrrpd {
            let sock = format!("{d2}/vrrpd.sock");
            let mut child = std::process::Command::new("/opt/project/bin/vrrpd")
                .args(["-C", "-f", &conf, "--socket", &sock])
                .stdout(std::fs::File::create(format!("{d2}/vrrpd.log")).unwrap())
                .stderr(std::fs::File::create(format!("{d2}/vrrpd.err")).unwrap())
                .spawn()
                .unwrap();
            let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
            loop {
                match rx.recv() {
                    Ok(Cmd::Table(r)) => {
                        let _ = r.send(ipvsadm_save());
                    }
                    Ok(Cmd::Status(r)) => {
                        let o = std::process::Command::new("/opt/project/bin/vrrpd")
                            .args(["status", "--socket", &sock])
                            .output()
                            .unwrap();
                        let _ = r.send(String::from_utf8_lossy(&o.stdout).into_owned());
                    }
                    Ok(Cmd::Reload) => {
                        std::fs::write(
                            &conf,
                            keepalived_conf(&d2, &lvs_check::http::digest_hex(&digest), true),
                        )
                        .unwrap();
                        rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
                    }
                    Ok(Cmd::Stop(r)) => {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
                        let st = child.wait().unwrap();
                        let log =
                            std::fs::read_to_string(format!("{d2}/vrrpd.err")).unwrap_or_default();
                        assert!(st.success(), "vrrpd exited {st}: {log}");
                        let _ = r.send(ipvsadm_save());
                        break;
                    }
                    Err(_) => {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
                        let _ = child.wait();
                        break;
                    }
                }
            }
        } else if kind == Kind::Keepalived {
            let mut child = std::process::Command::new("/usr/sbin/keepalived")
                .args(["-C", "-n", "-l", "-D", "-f", &conf])
                .args([
                    "-p",
                    &format!("{d2}/ka.pid"),
                    "-c",
                    &format!("{d2}/chk.pid"),
                ])
                // Its log, for a failing run: /tmp/lvsvm-keepalived-PID/keepalived.log in the VM.
                .stdout(std::fs::File::create(format!("{d2}/keepalived.log")).unwrap())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
            loop {
                match rx.recv() {
                    Ok(Cmd::Table(r) | Cmd::Status(r)) => {
                        let _ = r.send(ipvsadm_save());
                    }
                    Ok(Cmd::Reload) => {
                        std::fs::write(
                            &conf,
                            keepalived_conf(&d2, &lvs_check::http::digest_hex(&digest), true),
                        )
                        .unwrap();
                        rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
                    }
                    Ok(Cmd::Stop(r)) => {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
                        let _ = child.wait();
                        let _ = r.send(ipvsadm_save());
                        break;
                    }
                    Err(_) => {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
                        let _ = child.wait();
                        break;
                    }
                }
            }
        } else {
            let ipvs = ipvs_nl::Ipvs::open().unwrap();
            let mut drv =
                Driver::new(Engine::new(our_config(&d2, digest, false), 11)).with_ipvs(ipvs);
            drv.start();
            loop {
                drv.run_once(Some(Duration::from_millis(20))).unwrap();
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
    });
    ready_rx.recv().unwrap();
    Side {
        name,
        tx,
        modes,
        dir,
        join: Some(join),
    }
}

impl Side {
    fn table(&self) -> String {
        let (r, rr) = mpsc::channel();
        self.tx.send(Cmd::Table(r)).unwrap();
        rr.recv_timeout(Duration::from_secs(10)).unwrap()
    }
}

impl Side {
    fn set(&self, server: usize, mode: u8) {
        self.modes[server].store(mode, Ordering::Relaxed);
    }

    fn code(&self, code: u8) {
        std::fs::write(format!("{}/code", self.dir), code.to_string()).unwrap();
    }

    fn stop(&mut self) -> String {
        let (r, rr) = mpsc::channel();
        self.tx.send(Cmd::Stop(r)).unwrap();
        let t = rr.recv_timeout(Duration::from_secs(20)).unwrap();
        if let Some(j) = self.join.take() {
            j.join().unwrap();
        }
        t
    }
}

/// Waits until both tables are equal and steady for 2.5 delay_loops (at most `limit`); returns the
/// table and, per side, the time since `t0` of its last change from `before` (the tables sampled just
/// before the event; 0 when it did not change).
fn settle(
    ka: &Side,
    ours: &Side,
    before: (String, String),
    t0: Instant,
    limit: Duration,
    what: &str,
) -> (String, f64, f64) {
    let (mut last_k, mut last_o) = before;
    let (mut tk, mut to) = (0.0, 0.0);
    let mut steady_since = Instant::now();
    loop {
        let (k, o) = (ka.table(), ours.table());
        let now = t0.elapsed().as_secs_f64();
        if k != last_k {
            tk = now;
            steady_since = Instant::now();
        }
        if o != last_o {
            to = now;
            steady_since = Instant::now();
        }
        last_k = k;
        last_o = o;
        if last_k == last_o && steady_since.elapsed() >= DELAY * 5 / 2 {
            return (last_k, tk, to);
        }
        if t0.elapsed() > limit {
            panic!(
                "{what}: tables differ after {limit:?}\n--- {}:\n{last_k}\n--- {}:\n{last_o}",
                ka.name, ours.name
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
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
    let mut ka = start_side("keepalived", Kind::Keepalived);
    let mut ours = start_side("lvs-check", Kind::Library);
    let mut vd = start_side("vrrpd", Kind::Vrrpd);
    let limit = Duration::from_secs(25);
    let mut report = Vec::new();
    let mut step = |what: &str, f: &dyn Fn(&Side), check: &dyn Fn(&str) -> bool| {
        let before = (ka.table(), ours.table());
        let t0 = Instant::now();
        f(&ka);
        f(&ours);
        f(&vd);
        let (table, tk, to) = settle(&ka, &ours, before, t0, limit, what);
        assert!(check(&table), "{what}: unexpected table:\n{table}");
        // vrrpd (the same keepalived.conf through its reader) must reach the same table.
        let mut v = vd.table();
        while v != table && t0.elapsed() < limit * 2 {
            std::thread::sleep(Duration::from_millis(100));
            v = vd.table();
        }
        assert_eq!(v, table, "{what}: vrrpd's table differs from keepalived's");
        report.push(format!(
            "{what}: keepalived {:.1} delay_loops, lvs-check {:.1}",
            tk / DELAY.as_secs_f64(),
            to / DELAY.as_secs_f64()
        ));
        table
    };
    let has = |s: &str, l: &str| s.lines().any(|x| x == l);
    let t = step("start", &|_| {}, &|t| {
        has(t, "-a -t 10.0.1.1:80 -r 10.0.2.1:8080 -m -w 2")
            && has(t, "-a -t 10.0.1.1:80 -r 10.0.2.2:8080 -m -w 3")
            && has(t, "-a -t 10.0.1.5:443 -r 10.0.2.4:443 -g -w 1")
            && has(t, "-a -f 7 -r 10.0.2.3:0 -g -w 4")
    });
    assert!(t.contains("-A -t 10.0.1.6:443 -s sh -b sh-port"), "{t}");
    step("wrong digest", &|s| s.set(0, WRONG), &|t| {
        !t.contains("10.0.2.1:8080")
    });
    step("comes back", &|s| s.set(0, OK), &|t| {
        t.contains("10.0.2.1:8080 -m -w 2")
    });
    step("wrong status", &|s| s.set(0, STATUS500), &|t| {
        !t.contains("10.0.2.1:8080")
    });
    step("comes back again", &|s| s.set(0, OK), &|t| {
        t.contains("10.0.2.1:8080")
    });
    step("stops listening (inhibit)", &|s| s.set(1, DOWN), &|t| {
        t.contains("-r 10.0.2.2:8080 -m -w 0")
    });
    step(
        "every server fails (sorry server)",
        &|s| s.set(0, DOWN),
        &|t| t.contains("-r 10.0.2.9:8080 -m -w 1") && !t.contains("10.0.2.1:8080"),
    );
    step(
        "servers come back",
        &|s| {
            s.set(0, OK);
            s.set(1, OK);
        },
        &|t| !t.contains("10.0.2.9") && t.contains("10.0.2.2:8080 -m -w 3"),
    );
    step("misc_dynamic exit 7 (weight 5)", &|s| s.code(7), &|t| {
        t.contains("-r 10.0.2.3:0 -g -w 5")
    });
    step("misc exit 1 (failure)", &|s| s.code(1), &|t| {
        !t.contains("10.0.2.3")
    });
    step("misc exit 0 (back)", &|s| s.code(0), &|t| {
        t.contains("-r 10.0.2.3:0 -g -w 4")
    });
    step("misc_dynamic exit 9 (weight 7)", &|s| s.code(9), &|t| {
        t.contains("-r 10.0.2.3:0 -g -w 7")
    });
    // keepalived recomputes a misc_dynamic weight at a reload as `status - 2 - weight` from the last
    // status, and gives a server whose last status was 0 weight 0: lvs-check keeps the weight the last
    // status gave (see its README, and the unit test reload_keeps_misc_dynamic_weights). So the reload
    // is compared with the MISC_CHECK failing, and its recovery after the reload.
    step("misc exit 1 before the reload", &|s| s.code(1), &|t| {
        !t.contains("10.0.2.3")
    });
    step(
        "reload: +10.0.2.5, -10.0.2.2",
        &|s| s.tx.send(Cmd::Reload).unwrap(),
        &|t| t.contains("10.0.2.5:8080") && !t.contains("10.0.2.2"),
    );
    step("misc exit 0 after the reload", &|s| s.code(0), &|t| {
        t.contains("-r 10.0.2.3:0 -g -w 4")
    });
    // vrrpd status: every real server with its check state and last failure.
    let (r, rr) = mpsc::channel();
    vd.tx.send(Cmd::Status(r)).unwrap();
    let st = rr.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        st.contains("virtual_server FWM 7 quorum up")
            && st.contains("real_server 10.0.2.3:80 UP weight 4")
            && st.contains("MISC_CHECK up (last failure: exited with status 1)"),
        "{st}"
    );
    let (k, o) = (ka.stop(), ours.stop());
    assert_eq!(vd.stop(), "", "vrrpd left IPVS entries");
    assert_eq!(
        (k.as_str(), o.as_str()),
        ("", ""),
        "tables left after shutdown"
    );
    // The figures (run with --nocapture to see them): time from each event to the table change.
    for r in &report {
        println!("{r}");
    }
}
