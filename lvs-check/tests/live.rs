//! The driver against real servers on real sockets, in a private network namespace per test (no IPVS
//! needed: changes are reported, not applied). Bad peers: refused and black-holed addresses, servers
//! that accept and never answer, endless and huge bodies, wrong status and digest, TLS handshakes that
//! fail; a failing check never delays the others.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Behaviour, serve, serve_tls};
use lvs_check::config::{
    CheckKind, Checker, HttpCheck, MiscCheck, RealServer, Target, Url, VirtualServer,
};
use lvs_check::{CheckId, Driver, Engine, Outcome, Output};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn base() -> VirtualServer {
    let mut v = VirtualServer::new(Target::Addr {
        addr: "10.0.0.1:80".parse().unwrap(),
        protocol: ipvs_nl::Protocol::Tcp,
    });
    v.delay_loop = Duration::from_millis(500);
    v.connect_timeout = Duration::from_millis(400);
    v.warmup = Some(Duration::ZERO);
    v
}

fn http(path: &str, digest: Option<[u8; 16]>) -> CheckKind {
    let mut h = HttpCheck::default();
    let mut u = Url::new(path);
    u.digest = digest;
    h.urls.push(u);
    CheckKind::Http(h)
}

fn rs(addr: SocketAddr, kind: CheckKind) -> RealServer {
    let mut r = RealServer::new(addr);
    let mut c = Checker::new(kind);
    c.retry = Some(0);
    r.checkers.push(c);
    r
}

/// Every attempt's outcome per checker, with its time since start.
type Outcomes = HashMap<usize, Vec<(f64, Outcome)>>;

/// Runs the driver for `d`; returns the outcomes and every output.
fn run(vs: VirtualServer, d: Duration) -> (Outcomes, Vec<Output>) {
    let mut drv = Driver::new(Engine::new(vec![vs], 3));
    let t0 = Instant::now();
    drv.start();
    let mut by_check = Outcomes::new();
    let mut all = Vec::new();
    while t0.elapsed() < d {
        drv.run_once(Some(Duration::from_millis(50))).unwrap();
        while let Some(o) = drv.poll_output() {
            if let Output::Checked {
                id: CheckId(i),
                outcome,
            } = &o
            {
                by_check
                    .entry(*i)
                    .or_default()
                    .push((t0.elapsed().as_secs_f64(), outcome.clone()));
            }
            all.push(o);
        }
    }
    drv.stop();
    while let Some(o) = drv.poll_output() {
        all.push(o);
    }
    (by_check, all)
}

fn failures(v: &[(f64, Outcome)]) -> Vec<String> {
    v.iter()
        .filter_map(|(_, o)| match o {
            Outcome::Failure(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn tcp_and_http_checks_see_what_the_servers_do() {
    let Some(_ns) = testkit::netns() else { return };
    let body = b"hello\n".to_vec();
    let ok = serve("127.0.0.1:0", Behaviour::Ok(body.clone()));
    let status = serve("127.0.0.1:0", Behaviour::Status(503));
    let wrong = serve("127.0.0.1:0", Behaviour::Ok(b"other\n".to_vec()));
    let mut v = base();
    let d = lvs_check::http::md5(&body);
    // connect_ip/connect_port: the TCP check of 127.0.0.2:80 goes to the HTTP server.
    let mut tcp = rs("127.0.0.2:80".parse().unwrap(), CheckKind::Tcp);
    tcp.checkers[0].connect_ip = Some("127.0.0.1".parse().unwrap());
    tcp.checkers[0].connect_port = Some(ok.port());
    v.real_servers.push(tcp);
    v.real_servers.push(rs(ok, http("/", Some(d))));
    v.real_servers.push(rs(status, http("/", None)));
    v.real_servers.push(rs(wrong, http("/", Some(d))));
    v.real_servers
        .push(rs("127.0.0.1:1".parse().unwrap(), CheckKind::Tcp));
    let (r, outs) = run(v, Duration::from_millis(2300));
    assert!(
        r[&0].iter().all(|(_, o)| *o == Outcome::Success),
        "{:?}",
        r[&0]
    );
    assert!(
        r[&1].iter().all(|(_, o)| *o == Outcome::Success),
        "{:?}",
        r[&1]
    );
    assert!(r[&0].len() >= 3, "checks every 500 ms: {:?}", r[&0]);
    assert!(
        failures(&r[&2])
            .iter()
            .all(|f| f == "HTTP status code error (503)"),
        "{:?}",
        r[&2]
    );
    assert!(
        failures(&r[&3])
            .iter()
            .all(|f| f.starts_with("MD5 digest error (got ")),
        "{:?}",
        r[&3]
    );
    assert!(
        failures(&r[&4])
            .iter()
            .all(|f| f == "Connection failed: Connection refused"),
        "{:?}",
        r[&4]
    );
    // The failing servers were removed from the pool, the good ones kept.
    let dels: Vec<String> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Ipvs {
                op: ipvs_nl::Op::DelDest(_, a, p),
                applied: None,
            } => Some(format!("{a}:{p}")),
            _ => None,
        })
        .collect();
    let mut dels = dels[..3].to_vec();
    dels.sort();
    let mut want = vec![
        format!("127.0.0.1:{}", status.port()),
        format!("127.0.0.1:{}", wrong.port()),
        "127.0.0.1:1".to_string(),
    ];
    want.sort();
    assert_eq!(dels, want);
}

#[test]
fn bad_peers_fail_with_reasons_and_never_block_the_others() {
    let Some(ns) = testkit::netns() else { return };
    // A black hole: SYNs to 10.99.0.1 vanish, so the connect can only time out.
    ns.sh("ip route add 10.99.0.0/16 dev lo && nft add table inet t && nft add chain inet t o '{ type filter hook output priority 0; }' && nft add rule inet t o ip daddr 10.99.0.1 drop");
    let good = serve("127.0.0.1:0", Behaviour::Ok(b"ok".to_vec()));
    let hang = serve("127.0.0.1:0", Behaviour::Hang);
    let endless = serve("127.0.0.1:0", Behaviour::Endless);
    let huge = serve("127.0.0.1:0", Behaviour::Huge(64 << 20));
    let plain = serve("127.0.0.1:0", Behaviour::NotTls);
    let mut v = base();
    v.real_servers.push(rs(good, http("/", None)));
    v.real_servers.push(rs(hang, http("/", None)));
    v.real_servers.push(rs(endless, http("/", None)));
    v.real_servers.push(rs(huge, http("/", None)));
    v.real_servers.push(rs(
        plain,
        CheckKind::Ssl(match http("/", None) {
            CheckKind::Http(h) => h,
            _ => unreachable!(),
        }),
    ));
    v.real_servers
        .push(rs("10.99.0.1:80".parse().unwrap(), CheckKind::Tcp));
    let t = Instant::now();
    let (r, _) = run(v, Duration::from_millis(2600));
    assert!(t.elapsed() < Duration::from_secs(4));
    // The good server was checked on time all along: every 500 ms from 1 s.
    let good_times: Vec<f64> = r[&0].iter().map(|(t, _)| *t).collect();
    assert!(
        r[&0].iter().all(|(_, o)| *o == Outcome::Success),
        "{:?}",
        r[&0]
    );
    assert!(good_times.len() >= 3, "{good_times:?}");
    for w in good_times.windows(2) {
        assert!(w[1] - w[0] < 0.8, "a check was delayed: {good_times:?}");
    }
    assert_eq!(failures(&r[&1])[0], "Timeout HTTP read", "{:?}", r[&1]);
    let endless_f = failures(&r[&2]);
    assert!(
        endless_f[0] == "response body over 16777216 bytes",
        "{:?}",
        r[&2]
    );
    assert_eq!(failures(&r[&3])[0], "response body over 16777216 bytes");
    assert!(
        failures(&r[&4])[0].starts_with("SSL handshake/communication error"),
        "{:?}",
        r[&4]
    );
    assert_eq!(failures(&r[&5])[0], "Timeout connecting", "{:?}", r[&5]);
}

#[test]
fn ssl_get_over_real_tls() {
    let Some(_ns) = testkit::netns() else { return };
    let body = b"secure\n".to_vec();
    let tls = serve_tls("127.0.0.1:0", body.clone());
    let mut v = base();
    let mut h = HttpCheck::default();
    let mut u = Url::new("/");
    u.digest = Some(lvs_check::http::md5(&body));
    h.urls.push(u);
    v.real_servers.push(rs(tls, CheckKind::Ssl(h)));
    let (r, _) = run(v, Duration::from_millis(1700));
    assert!(!r[&0].is_empty());
    assert!(
        r[&0].iter().all(|(_, o)| *o == Outcome::Success),
        "{:?}",
        r[&0]
    );
}

#[test]
fn misc_check_exit_statuses_and_timeout() {
    let Some(_ns) = testkit::netns() else { return };
    let mut v = base();
    let m = |cmd: &str, dynamic: bool| {
        let mut mc = MiscCheck::new(vec!["/bin/sh".into(), "-c".into(), cmd.into()]);
        mc.dynamic = dynamic;
        mc.timeout = Some(Duration::from_millis(300));
        mc
    };
    let addrs = ["10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80", "10.0.0.5:80"];
    for (a, (cmd, dynamic)) in addrs.iter().zip([
        ("exit 0", false),
        ("exit 1", false),
        ("exit 9", true),
        ("sleep 5", false),
    ]) {
        v.real_servers
            .push(rs(a.parse().unwrap(), CheckKind::Misc(m(cmd, dynamic))));
    }
    let t = Instant::now();
    let (r, outs) = run(v, Duration::from_millis(1800));
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "a script blocked the driver"
    );
    assert_eq!(r[&0][0].1, Outcome::Exited(0));
    assert_eq!(r[&1][0].1, Outcome::Exited(1));
    assert_eq!(r[&2][0].1, Outcome::Exited(9));
    assert_eq!(r[&3][0].1, Outcome::TimedOut);
    // misc_dynamic 9: weight 7.
    assert!(outs.iter().any(|o| matches!(o, Output::Ipvs {
        op: ipvs_nl::Op::EditDest(_, d), ..
    } if d.weight == 7 && d.addr.to_string() == "10.0.0.4")));
    // The sleeping script's process group is gone.
    let left = std::process::Command::new("pgrep")
        .args(["-f", "^/bin/sh -c sleep 5$"])
        .output()
        .unwrap();
    assert!(left.stdout.is_empty(), "script left running: {left:?}");
}
