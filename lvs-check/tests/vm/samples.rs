//! keepalived's shipped samples (Debian's `/usr/share/doc/keepalived/samples/` and
//! `/etc/keepalived/keepalived.conf.sample`) under keepalived 2.2.7 `-C` and under `vrrpd -C`, each in its
//! own namespace of the VM: the same `ipvsadm -S -n` table after the first checks, after a real server
//! fails and after it comes back.
//!
//! The samples are adapted mechanically, and only in this:
//! * paths: `/usr/local/bin/script.sh` (MISC_CHECK) and `/usr/local/sbin/quorum-{up,down}.sh` become
//!   scripts in the case's directory (the MISC_CHECK one exits with the status a file holds; the quorum
//!   ones log their calls);
//! * addresses are kept, every one of them: the namespace routes all IPv4 addresses to itself
//!   (`local 0.0.0.0/0 dev lo`), and the real servers are small HTTP and HTTPS servers listening on
//!   every address, on the ports the sample's checkers use;
//! * digests, in the `served` variant only: every `digest` becomes the MD5 of the page the test servers
//!   serve, so the servers are up and their failure and recovery can be compared. The `shipped` variant
//!   keeps the samples' digests (pages we do not have), so their servers fail the first check on both
//!   sides.
//!
//! A failure is an `unreachable` route to the victim's address (connections fail at once), or, for the
//! MISC_CHECK samples, exit status 1. Not run: the samples whose checkers are out of scope
//! (`SMTP_CHECK`, `UDP_CHECK`, `PING_CHECK`, and the IPv6 sample, whose only checker is SMTP_CHECK),
//! and the VRRP-only ones.

use super::{BODY, Watch, common, ipvsadm_save, read_head, readable};
use std::io::Write;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How a sample's victim fails.
#[derive(Clone, Copy, Debug)]
enum Failure {
    /// Connections to this address fail (an `unreachable` route).
    Unreachable(&'static str),
    /// The MISC_CHECK script exits 1 (the victim is the real server at this address).
    MiscExit(&'static str),
}

impl Failure {
    fn victim(self) -> &'static str {
        match self {
            Failure::Unreachable(a) | Failure::MiscExit(a) => a,
        }
    }
}

/// One shipped sample: its file, the servers its checkers need (port, TLS), how its victim fails, and
/// whether it has digests (then it also runs as shipped).
struct Sample {
    file: &'static str,
    servers: &'static [(u16, bool)],
    failure: Failure,
    digests: bool,
}

const DOC: &str = "/usr/share/doc/keepalived/samples/keepalived.conf.";

const SAMPLES: &[Sample] = &[
    Sample {
        file: "HTTP_GET.port",
        servers: &[(444, true)],
        failure: Failure::Unreachable("192.168.201.100"),
        digests: true,
    },
    Sample {
        file: "SSL_GET",
        servers: &[(443, true), (80, false)],
        failure: Failure::Unreachable("192.168.201.100"),
        digests: true,
    },
    Sample {
        file: "fwmark",
        servers: &[(80, false)],
        failure: Failure::Unreachable("192.168.201.101"),
        digests: false,
    },
    // The victim is 192.168.200.1, the real server that is also a virtual address of the group: its
    // checks go through IPVS (to any real server of the pool, pinned by persistence_timeout), so with
    // 192.168.200.2 as the victim they could be sent to the failed server and remove 192.168.200.1
    // too, on either side, depending on which server persistence had picked.
    Sample {
        file: "virtual_server_group",
        servers: &[(1358, false)],
        failure: Failure::Unreachable("192.168.200.1"),
        digests: true,
    },
    Sample {
        file: "misc_check",
        servers: &[],
        failure: Failure::MiscExit("192.168.200.6"),
        digests: false,
    },
    Sample {
        file: "misc_check_arg",
        servers: &[],
        failure: Failure::MiscExit("192.168.200.6"),
        digests: false,
    },
    Sample {
        file: "sample",
        servers: &[(1358, false)],
        failure: Failure::Unreachable("192.168.200.2"),
        digests: true,
    },
    Sample {
        file: "inhibit",
        servers: &[(1358, false)],
        failure: Failure::Unreachable("192.168.200.2"),
        digests: true,
    },
    Sample {
        file: "quorum",
        servers: &[(80, false)],
        failure: Failure::Unreachable("10.0.0.3"),
        digests: false,
    },
    Sample {
        file: "status_code",
        servers: &[(443, true)],
        failure: Failure::Unreachable("192.168.201.100"),
        digests: true,
    },
    Sample {
        file: "virtualhost",
        servers: &[(80, true)],
        failure: Failure::Unreachable("192.168.201.100"),
        digests: true,
    },
    Sample {
        file: "vrrp.lvs_syncd",
        servers: &[(80, false)],
        failure: Failure::Unreachable("192.168.201.100"),
        digests: false,
    },
    Sample {
        file: "/etc/keepalived/keepalived.conf.sample",
        servers: &[(443, true), (1358, false)],
        failure: Failure::Unreachable("192.168.200.3"),
        digests: true,
    },
];

fn path(s: &Sample) -> String {
    if s.file.starts_with('/') {
        s.file.to_string()
    } else {
        format!("{DOC}{}", s.file)
    }
}

/// The mechanical adaptation (see the module docs).
fn adapt(text: &str, dir: &str, served: bool) -> String {
    let mut t = text
        .replace("/usr/local/bin/script.sh", &format!("{dir}/script.sh"))
        .replace(
            "/usr/local/sbin/quorum-up.sh",
            &format!("{dir}/quorum-up.sh"),
        )
        .replace(
            "/usr/local/sbin/quorum-down.sh",
            &format!("{dir}/quorum-down.sh"),
        );
    if served {
        let page = lvs_check::http::digest_hex(&lvs_check::http::md5(BODY));
        t = t
            .lines()
            .map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                if w.first() == Some(&"digest") && w.len() >= 2 {
                    l.replace(w[1], &page)
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
    }
    t
}

/// A server on every address at `port`, answering `200 OK` with [`BODY`] (over TLS with `tls`).
fn serve_any(port: u16, tls: bool) {
    let cfg = tls.then(common::tls_server_config);
    let l = TcpListener::bind(("0.0.0.0", port)).unwrap();
    l.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        loop {
            if !readable(&l, 200) {
                continue;
            }
            let Ok((s, _)) = l.accept() else { continue };
            let cfg = cfg.clone();
            std::thread::spawn(move || {
                let _ = s.set_nonblocking(false);
                let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
                let reply = [
                    format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", BODY.len())
                        .into_bytes(),
                    BODY.to_vec(),
                ]
                .concat();
                let mut s = s;
                match cfg {
                    Some(cfg) => {
                        let mut conn = rustls::ServerConnection::new(cfg).unwrap();
                        let mut t = rustls::Stream::new(&mut conn, &mut s);
                        if read_head(&mut t) {
                            let _ = t.write_all(&reply);
                            t.conn.send_close_notify();
                            let _ = t.flush();
                        }
                    }
                    None => {
                        if read_head(&mut s) {
                            let _ = s.write_all(&reply);
                        }
                    }
                }
            });
        }
    });
}

enum Cmd {
    /// `(when read, ipvsadm -S -n)`.
    Table(mpsc::Sender<(Instant, String)>),
    /// vrrpd's `status --json` (vrrpd only).
    Status(mpsc::Sender<serde_json::Value>),
    /// A shell command in the namespace.
    Sh(String),
    /// Stops the daemon; answers the table left and the quorum scripts' log.
    Stop(mpsc::Sender<(String, String)>),
}

/// One daemon on one adapted sample, in its own namespace.
struct Side {
    name: String,
    tx: mpsc::Sender<Cmd>,
    dir: String,
}

fn start(sample: &'static Sample, served: bool, vrrpd: bool) -> Side {
    let variant = if served { "served" } else { "shipped" };
    let daemon = if vrrpd { "vrrpd" } else { "keepalived" };
    // The directory (pid files, control socket) is the case's own: index and file's last word.
    let index = SAMPLES
        .iter()
        .position(|s| std::ptr::eq(s, sample))
        .unwrap_or(99);
    let last = sample.file.rsplit(['/', '.']).next().unwrap_or("x");
    let tag = format!("{index}-{last}");
    let name = format!("{}/{variant}/{daemon}", sample.file);
    let dir = format!(
        "/tmp/lvs-sample-{tag}-{variant}-{daemon}-{}",
        std::process::id()
    );
    std::fs::create_dir_all(&dir).unwrap();
    let script = |file: &str, body: &str| {
        let p = format!("{dir}/{file}");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    };
    script("script.sh", &format!("exit $(cat {dir}/code)"));
    script(
        "quorum-up.sh",
        &format!("echo up \"$@\" >> {dir}/quorum.log"),
    );
    script(
        "quorum-down.sh",
        &format!("echo down \"$@\" >> {dir}/quorum.log"),
    );
    std::fs::write(format!("{dir}/code"), "0").unwrap();
    let text = std::fs::read_to_string(path(sample)).unwrap();
    let quorum_scripts = text.contains("quorum_up") || text.contains("quorum_down");
    let conf = format!("{dir}/keepalived.conf");
    std::fs::write(&conf, adapt(&text, &dir, served)).unwrap();
    let (tx, rx) = mpsc::channel::<Cmd>();
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let d2 = dir.clone();
    std::thread::spawn(move || {
        let ns = testkit::netns().expect("root");
        ns.sh("ip route add local 0.0.0.0/0 dev lo table local");
        for &(port, tls) in sample.servers {
            serve_any(port, tls);
        }
        let log = format!("{d2}/daemon.log");
        let out = std::fs::File::create(&log).unwrap();
        let sock = format!("{d2}/vrrpd.sock");
        let mut child = if vrrpd {
            std::process::Command::new("/opt/project/bin/vrrpd")
                .args(["-C", "-f", &conf, "--socket", &sock])
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap()
        } else {
            super::spawn_keepalived_checker(&conf, &d2, out)
        };
        let _ = ready_tx.send(());
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        // Only looked at with each reading: forty-odd daemons share the emulated CPU, and the
        // samples' reactions take seconds.
        let mut watch = Watch::new();
        for cmd in rx.iter() {
            match cmd {
                Cmd::Table(r) => {
                    let _ = r.send(watch.sample());
                }
                Cmd::Status(r) => {
                    let o = std::process::Command::new("/opt/project/bin/vrrpd")
                        .args(["status", "--json", "--socket", &sock])
                        .output()
                        .unwrap();
                    let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
                    let _ = r.send(v);
                }
                Cmd::Sh(c) => {
                    ns.sh(&c);
                }
                Cmd::Stop(r) => {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
                    let st = child.wait().unwrap();
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    assert!(st.success(), "{log}: exited {st}:\n{text}");
                    // The quorum scripts run detached: give the last one a moment to write (only
                    // where the sample has some: the others' log stays empty).
                    let t = Instant::now();
                    let q = format!("{d2}/quorum.log");
                    let mut last = String::new();
                    while quorum_scripts && t.elapsed() < Duration::from_secs(5) {
                        let now = std::fs::read_to_string(&q).unwrap_or_default();
                        if !now.is_empty() && now == last {
                            break;
                        }
                        last = now;
                        std::thread::sleep(Duration::from_millis(500));
                    }
                    let _ = r.send((ipvsadm_save(), last));
                    return;
                }
            }
        }
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let _ = child.wait();
    });
    ready_rx.recv().unwrap();
    Side { name, tx, dir }
}

impl Side {
    fn table(&self) -> (Instant, String) {
        let (r, rr) = mpsc::channel();
        self.tx.send(Cmd::Table(r)).unwrap();
        rr.recv_timeout(Duration::from_secs(60)).unwrap()
    }

    fn status(&self) -> serde_json::Value {
        let (r, rr) = mpsc::channel();
        self.tx.send(Cmd::Status(r)).unwrap();
        rr.recv_timeout(Duration::from_secs(60)).unwrap()
    }

    fn sh(&self, c: String) {
        self.tx.send(Cmd::Sh(c)).unwrap();
    }
}

/// Every real server of vrrpd's status, as `(address, alive, every check has reached a verdict)`.
fn real_servers(st: &serde_json::Value) -> Vec<(String, bool, bool)> {
    let mut out = Vec::new();
    for vs in st["virtual_servers"].as_array().into_iter().flatten() {
        for rs in vs["real_servers"].as_array().into_iter().flatten() {
            let run = rs["checks"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|c| c["has_run"] == true);
            out.push((
                rs["address"].as_str().unwrap_or("").to_string(),
                rs["alive"] == true,
                run,
            ));
        }
    }
    out
}

/// The case's units: the samples' timers (delay_loop 6 s at most... 20 s for lvs_syncd, connect_timeout
/// and delay_before_retry 3 s, retry 3): a failure takes at most delay_loop + retry x delay_before_retry
/// on keepalived's schedule. The deadline is 60 s plus four times the longest delay_loop (20 s) and
/// the retries: far beyond what a loaded emulated machine needs, and only a failing run waits it out.
const DEADLINE: Duration = Duration::from_secs(60 + 4 * (20 + 3 * 3));

/// One pair of daemons on one adapted sample; returns the report lines.
struct Case {
    sample: &'static Sample,
    served: bool,
    ka: Side,
    vd: Side,
}

impl Case {
    fn what(&self) -> String {
        format!(
            "{} ({})",
            self.sample.file,
            if self.served { "served" } else { "shipped" }
        )
    }

    /// Polls both tables until `done(keepalived's, vrrpd's, vrrpd's status)`; returns the tables and,
    /// per side, the time its table first differed from `before` (or matched `until`).
    fn wait(
        &self,
        t0: Instant,
        what: &str,
        done: &dyn Fn(&str, &str, &serde_json::Value) -> bool,
        changed: &dyn Fn(&str) -> bool,
    ) -> (String, [f64; 2]) {
        let mut took = [f64::NAN; 2];
        loop {
            let (tk, k) = self.ka.table();
            let (tv, v) = self.vd.table();
            for (i, (t, table)) in [(tk, &k), (tv, &v)].into_iter().enumerate() {
                if took[i].is_nan() && changed(table) {
                    took[i] = t.saturating_duration_since(t0).as_secs_f64();
                }
            }
            let st = self.vd.status();
            if done(&k, &v, &st) {
                return (v, took);
            }
            assert!(
                t0.elapsed() < DEADLINE,
                "{} {what}: no agreement after {DEADLINE:?}\n--- keepalived:\n{k}\n--- vrrpd:\n{v}\n--- vrrpd status:\n{st}",
                self.what()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// Every real server's checks have reached a verdict and the tables are the same.
fn settled(k: &str, v: &str, st: &serde_json::Value) -> bool {
    let rs = real_servers(st);
    !rs.is_empty() && rs.iter().all(|r| r.2) && k == v
}

/// [`settled`] with every real server up: in the `served` variant every real server is served, so a
/// down one is a first check that failed on the loaded machine (a TLS handshake past connect_timeout),
/// and the case waits for its next check rather than take a table without it as the start.
fn settled_up(k: &str, v: &str, st: &serde_json::Value) -> bool {
    settled(k, v, st) && real_servers(st).iter().all(|r| r.1)
}

fn run_case(c: &Case) -> Vec<String> {
    let mut report = Vec::new();
    let t0 = Instant::now();
    let start: &dyn Fn(&str, &str, &serde_json::Value) -> bool =
        if c.served { &settled_up } else { &settled };
    let (initial, _) = c.wait(t0, "after the first checks", start, &|_| false);
    report.push(format!(
        "lvs-sample\t{}\tstart\t{:.1}",
        c.what(),
        t0.elapsed().as_secs_f64()
    ));
    assert!(
        initial.lines().any(|l| l.starts_with("-A ")),
        "{}: no service in\n{initial}",
        c.what()
    );
    if !c.served {
        return report;
    }
    // The victim fails.
    let victim = c.sample.failure.victim();
    let fail = |s: &Side, up: bool| {
        s.sh(match c.sample.failure {
            Failure::Unreachable(a) => format!(
                "ip route {} unreachable {a}/32 table local",
                if up { "del" } else { "add" }
            ),
            Failure::MiscExit(_) => format!("echo {} > {}/code", u8::from(!up), s.dir),
        })
    };
    let t0 = Instant::now();
    fail(&c.ka, false);
    fail(&c.vd, false);
    let victim_down = |k: &str, v: &str, st: &serde_json::Value| {
        let rs = real_servers(st);
        k == v
            && k != initial
            && rs
                .iter()
                .filter(|r| r.0.starts_with(&format!("{victim}:")))
                .all(|r| !r.1 && r.2)
    };
    let (down, took) = c.wait(t0, "after the failure", &victim_down, &|t| t != initial);
    report.push(format!(
        "lvs-sample\t{}\t{victim} fails\t{:.1}\t{:.1}",
        c.what(),
        took[0],
        took[1]
    ));
    // It comes back: the table of the start again, on both sides.
    let t0 = Instant::now();
    fail(&c.ka, true);
    fail(&c.vd, true);
    let (_, took) = c.wait(
        t0,
        "after the recovery",
        &|k, v, _| k == initial && v == initial,
        &|t| t == initial,
    );
    assert_ne!(down, initial);
    report.push(format!(
        "lvs-sample\t{}\t{victim} comes back\t{:.1}\t{:.1}",
        c.what(),
        took[0],
        took[1]
    ));
    report
}

#[test]
fn keepalived_samples_give_the_same_tables_under_vrrpd() {
    if !testkit::require(
        "keepalived and its shipped samples in the VM",
        std::path::Path::new("/usr/sbin/keepalived").exists()
            && std::path::Path::new(&path(&SAMPLES[0])).exists(),
    ) {
        return;
    }
    if !testkit::require("root", testkit::is_root()) {
        return;
    }
    let mut cases = Vec::new();
    for s in SAMPLES {
        for served in [true, false] {
            if !served && !s.digests {
                continue;
            }
            cases.push(Case {
                sample: s,
                served,
                ka: start(s, served, false),
                vd: start(s, served, true),
            });
        }
    }
    // Every case runs at the same time, each on its own thread.
    let reports: Vec<Vec<String>> = std::thread::scope(|sc| {
        let hs: Vec<_> = cases
            .iter()
            .map(|c| {
                sc.spawn(|| {
                    let r = run_case(c);
                    // As each case ends, for the reader of a run that fails later.
                    for l in &r {
                        println!("{l}");
                    }
                    r
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Both remove everything they added, and ran the same quorum scripts (alpha, omega: quorum_up when
    // the pool fills, quorum_down at the shutdown).
    // Every daemon is told to stop at once (each side's thread stops its own), then each answer read.
    let stop = |s: &Side| {
        let (r, rr) = mpsc::channel();
        s.tx.send(Cmd::Stop(r)).unwrap();
        rr
    };
    let stopping: Vec<_> = cases
        .iter()
        .map(|c| (c, stop(&c.ka), stop(&c.vd)))
        .collect();
    for (c, ka, vd) in stopping {
        let (kt, kq) = ka.recv_timeout(Duration::from_secs(120)).unwrap();
        let (vt, vq) = vd.recv_timeout(Duration::from_secs(120)).unwrap();
        assert_eq!(
            (kt.as_str(), vt.as_str()),
            ("", ""),
            "{}: tables after shutdown",
            c.what()
        );
        assert_eq!(vq, kq, "{}: quorum scripts (vrrpd, keepalived)", c.what());
        if c.sample.file == "quorum" {
            assert_eq!(kq, "up\ndown\n", "{}", c.ka.name);
        }
    }
    println!("lvs-sample\tcase\tevent\tkeepalived s\tvrrpd s");
    for r in reports.iter().flatten() {
        println!("{r}");
    }
}
