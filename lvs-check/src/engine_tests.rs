//! The engine on a virtual clock: every rule of keepalived's pool handling, step by step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::config::{HttpCheck, MiscCheck, StatusCodes};
use ipvs_nl::Protocol;

const DL: Duration = Duration::from_secs(10);

fn vs(rs: &[&str], f: impl Fn(&mut Checker)) -> VirtualServer {
    let mut v = VirtualServer::new(Target::Addr {
        addr: "10.0.0.1:80".parse().unwrap(),
        protocol: Protocol::Tcp,
    });
    v.delay_loop = DL;
    v.warmup = Some(Duration::ZERO);
    for a in rs {
        let mut r = RealServer::new(a.parse().unwrap());
        let mut c = Checker::new(CheckKind::Tcp);
        f(&mut c);
        r.checkers.push(c);
        v.real_servers.push(r);
    }
    v
}

/// A simplified view of one action, for assertions.
fn show(a: &Action) -> String {
    match a {
        Action::Ipvs(Op::AddService(s)) => format!("+svc {:?}", s.key),
        Action::Ipvs(Op::DelService(k)) => format!("-svc {k:?}"),
        Action::Ipvs(Op::EditService(s)) => format!("~svc {:?}", s.key),
        Action::Ipvs(Op::AddDest(_, d)) => format!("+{}:{} w{}", d.addr, d.port, d.weight),
        Action::Ipvs(Op::EditDest(_, d)) => format!("~{}:{} w{}", d.addr, d.port, d.weight),
        Action::Ipvs(Op::DelDest(_, a, p)) => format!("-{a}:{p}"),
        Action::Ipvs(op) => format!("{op:?}"),
        Action::Check(id, _) => format!("check {}", id.0),
        Action::Script(s) => format!("script {}", s.join(" ")),
        Action::Event(Event::RealServerUp { rs, .. }) => format!("up {rs}"),
        Action::Event(Event::RealServerDown { rs, .. }) => format!("down {rs}"),
        Action::Event(Event::QuorumUp { .. }) => "quorum up".into(),
        Action::Event(Event::QuorumDown { .. }) => "quorum down".into(),
        Action::Event(Event::WeightChanged { rs, weight, .. }) => format!("weight {rs} {weight}"),
    }
}

struct Sim {
    e: Engine,
    t0: Instant,
    now: Instant,
}

impl Sim {
    fn new(cfg: Vec<VirtualServer>) -> (Sim, Vec<String>) {
        let t0 = Instant::now();
        let mut e = Engine::new(cfg, 7);
        e.start(t0);
        let mut s = Sim { e, t0, now: t0 };
        let a = s.actions();
        (s, a)
    }

    fn actions(&mut self) -> Vec<String> {
        let mut v = Vec::new();
        while let Some(a) = self.e.poll_action() {
            v.push(show(&a));
        }
        v
    }

    /// Advances to the next deadline; returns the checks it started (id) and the time.
    fn next_checks(&mut self) -> Vec<usize> {
        let t = self.e.poll_timeout().expect("a deadline");
        self.now = t.max(self.now);
        self.e.handle_timeout(self.now);
        let mut ids = Vec::new();
        while let Some(a) = self.e.poll_action() {
            match a {
                Action::Check(id, _) => ids.push(id.0),
                other => panic!("unexpected {}", show(&other)),
            }
        }
        ids
    }

    fn result(&mut self, id: usize, o: Outcome) -> Vec<String> {
        self.e.handle_result(self.now, CheckId(id), o);
        self.actions()
    }

    fn secs(&self) -> f64 {
        (self.now - self.t0).as_secs_f64()
    }
}

fn fail() -> Outcome {
    Outcome::Failure("Timeout connecting".into())
}

#[test]
fn start_builds_the_table_and_tcp_failures_remove_and_restore() {
    let (mut s, a) = Sim::new(vec![vs(&["10.0.0.2:80", "10.0.0.3:80"], |_| {})]);
    assert_eq!(
        a,
        [
            "+svc Inet { protocol: Tcp, addr: 10.0.0.1, port: 80 }",
            "+10.0.0.2:80 w1",
            "+10.0.0.3:80 w1",
            "quorum up"
        ]
    );
    // First checks one second after start (warmup 0), both checkers at once.
    assert_eq!(s.next_checks(), [0, 1]);
    assert_eq!(s.secs(), 1.0);
    assert!(s.result(0, Outcome::Success).is_empty());
    // "One failure is enough initially": the first failure removes the server.
    assert_eq!(s.result(1, fail()), ["-10.0.0.3:80", "down 10.0.0.3:80"]);
    let st = s.e.status();
    assert_eq!(
        st[0].real_servers[1].checks[0].last_failure.as_deref(),
        Some("Timeout connecting")
    );
    // Next round one delay_loop later.
    assert_eq!(s.next_checks(), [0, 1]);
    assert_eq!(s.secs(), 11.0);
    assert!(s.result(0, Outcome::Success).is_empty());
    assert_eq!(
        s.result(1, Outcome::Success),
        ["+10.0.0.3:80 w1", "up 10.0.0.3:80"]
    );
    // Once up, a failure is retried after delay_before_retry (1 s) before the server goes (retry 1).
    assert_eq!(s.next_checks(), [0, 1]);
    assert!(s.result(0, fail()).is_empty());
    assert!(s.result(1, Outcome::Success).is_empty());
    assert_eq!(s.next_checks(), [0]);
    assert_eq!(s.secs(), 22.0);
    assert_eq!(s.result(0, fail()), ["-10.0.0.2:80", "down 10.0.0.2:80"]);
    assert!(s.e.status()[0].quorum_up);
}

#[test]
fn retry_and_delay_before_retry_count_like_keepalived() {
    let (mut s, _) = Sim::new(vec![vs(&["10.0.0.2:80"], |c| {
        c.retry = Some(3);
        c.delay_before_retry = Some(Duration::from_secs(2));
    })]);
    assert_eq!(s.next_checks(), [0]);
    assert!(s.result(0, Outcome::Success).is_empty());
    // Up at 1 s; fails from 11 s: retries at 13, 15, 17; down at the 4th failure.
    for t in [11.0, 13.0, 15.0] {
        assert_eq!(s.next_checks(), [0]);
        assert_eq!(s.secs(), t);
        assert!(s.result(0, fail()).is_empty(), "at {t}");
    }
    assert_eq!(s.next_checks(), [0]);
    assert_eq!(s.secs(), 17.0);
    assert_eq!(
        s.result(0, fail()),
        ["-10.0.0.2:80", "down 10.0.0.2:80", "quorum down"]
    );
    // A success in between resets the count.
    assert_eq!(s.next_checks(), [0]);
    assert_eq!(s.secs(), 27.0);
    assert_eq!(
        s.result(0, Outcome::Success),
        ["+10.0.0.2:80 w1", "up 10.0.0.2:80", "quorum up"]
    );
}

#[test]
fn inhibit_on_failure_sets_weight_zero() {
    let mut v = vs(&["10.0.0.2:80", "10.0.0.3:80"], |_| {});
    v.inhibit_on_failure = true;
    v.real_servers[0].weight = Some(5);
    let (mut s, a) = Sim::new(vec![v]);
    assert_eq!(a[1..3], ["+10.0.0.2:80 w5", "+10.0.0.3:80 w1"]);
    s.next_checks();
    assert_eq!(s.result(0, fail()), ["~10.0.0.2:80 w0", "down 10.0.0.2:80"]);
    assert!(s.result(1, Outcome::Success).is_empty());
    s.next_checks();
    assert_eq!(
        s.result(0, Outcome::Success),
        ["~10.0.0.2:80 w5", "up 10.0.0.2:80"]
    );
    // Shutdown removes inhibited servers too.
    s.result(1, Outcome::Success);
    s.e.stop(s.now);
    assert_eq!(
        s.actions(),
        [
            "-10.0.0.2:80",
            "-10.0.0.3:80",
            "-svc Inet { protocol: Tcp, addr: 10.0.0.1, port: 80 }"
        ]
    );
}

#[test]
fn sorry_server_takes_over_when_the_quorum_is_lost() {
    let mut v = vs(&["10.0.0.2:80", "10.0.0.3:80"], |_| {});
    v.sorry_server = Some(RealServer::new("10.0.0.9:80".parse().unwrap()));
    v.quorum_up = Some(vec!["/bin/qup".into()]);
    v.quorum_down = Some(vec!["/bin/qdown".into()]);
    v.real_servers[0].notify_down = Some(vec!["/bin/down".into(), "a".into()]);
    let (mut s, a) = Sim::new(vec![v]);
    assert_eq!(a[3..], ["script /bin/qup", "quorum up"]);
    s.next_checks();
    assert_eq!(
        s.result(0, fail()),
        ["-10.0.0.2:80", "script /bin/down a", "down 10.0.0.2:80"]
    );
    assert_eq!(
        s.result(1, fail()),
        [
            "-10.0.0.3:80",
            "down 10.0.0.3:80",
            "+10.0.0.9:80 w1",
            "script /bin/qdown",
            "quorum down"
        ]
    );
    assert!(s.e.status()[0].sorry_server_active);
    // One comes back: the sorry server goes, the alive servers go in.
    s.next_checks();
    assert_eq!(
        s.result(0, Outcome::Success),
        [
            "up 10.0.0.2:80",
            "-10.0.0.9:80",
            "+10.0.0.2:80 w1",
            "script /bin/qup",
            "quorum up"
        ]
    );
}

#[test]
fn quorum_and_hysteresis() {
    // Weights 2+2+2, quorum 4, hysteresis 1: down below 3, up again at 5.
    let mut v = vs(&["10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"], |c| {
        c.retry = Some(0)
    });
    for r in &mut v.real_servers {
        r.weight = Some(2);
    }
    v.quorum = 4;
    v.hysteresis = 1;
    let (mut s, a) = Sim::new(vec![v]);
    assert_eq!(a.last().unwrap(), "quorum up");
    s.next_checks();
    let r = s.result(0, fail());
    assert!(!r.contains(&"quorum down".to_string()), "4 >= 3: {r:?}");
    s.result(1, Outcome::Success);
    s.result(2, Outcome::Success);
    s.next_checks();
    s.result(0, fail());
    s.result(1, fail());
    assert!(s.actions().is_empty());
    let st = s.e.status();
    assert!(!st[0].quorum_up, "2 < 3");
    s.result(2, Outcome::Success);
    s.next_checks();
    let r = s.result(0, Outcome::Success);
    assert!(!r.contains(&"quorum up".to_string()), "4 < 5: {r:?}");
    let r = s.result(1, Outcome::Success);
    assert!(r.contains(&"quorum up".to_string()), "6 >= 5: {r:?}");
}

#[test]
fn alpha_starts_down_and_the_sorry_server_starts_in() {
    let mut v = vs(&["10.0.0.2:80"], |_| {});
    v.alpha = true;
    v.sorry_server = Some(RealServer::new("10.0.0.9:80".parse().unwrap()));
    let (mut s, a) = Sim::new(vec![v]);
    assert_eq!(
        a,
        [
            "+svc Inet { protocol: Tcp, addr: 10.0.0.1, port: 80 }",
            "+10.0.0.9:80 w1",
            "quorum down"
        ]
    );
    s.next_checks();
    assert_eq!(
        s.result(0, Outcome::Success),
        [
            "up 10.0.0.2:80",
            "-10.0.0.9:80",
            "+10.0.0.2:80 w1",
            "quorum up"
        ]
    );
}

#[test]
fn sorry_server_inhibit_is_present_at_weight_zero() {
    let mut v = vs(&["10.0.0.2:80"], |_| {});
    v.sorry_server = Some(RealServer::new("10.0.0.9:80".parse().unwrap()));
    v.sorry_server_inhibit = true;
    let (mut s, a) = Sim::new(vec![v]);
    assert_eq!(a[1..], ["+10.0.0.2:80 w1", "quorum up", "+10.0.0.9:80 w0"]);
    s.next_checks();
    assert_eq!(
        s.result(0, fail()),
        [
            "-10.0.0.2:80",
            "down 10.0.0.2:80",
            "~10.0.0.9:80 w1",
            "quorum down"
        ]
    );
}

#[test]
fn misc_dynamic_weights_and_failures() {
    let mut v = vs(&[], |_| {});
    let mut r = RealServer::new("10.0.0.2:80".parse().unwrap());
    r.weight = Some(3);
    let mut m = MiscCheck::new(vec!["/bin/check".into()]);
    m.dynamic = true;
    r.checkers.push(Checker::new(CheckKind::Misc(m)));
    v.real_servers.push(r);
    let (mut s, a) = Sim::new(vec![v]);
    assert_eq!(a[1], "+10.0.0.2:80 w3");
    s.next_checks();
    // Exit status 7: weight 5.
    assert_eq!(
        s.result(0, Outcome::Exited(7)),
        ["~10.0.0.2:80 w5", "weight 10.0.0.2:80 5"]
    );
    // Exit 1: failure (MISC retry defaults to 0), down at once.
    s.next_checks();
    assert_eq!(s.secs(), 11.0);
    assert_eq!(
        s.result(0, Outcome::Exited(1)),
        ["-10.0.0.2:80", "down 10.0.0.2:80", "quorum down"]
    );
    // Exit 0: up with the configured weight.
    s.next_checks();
    assert_eq!(
        s.result(0, Outcome::Exited(0)),
        ["+10.0.0.2:80 w3", "up 10.0.0.2:80", "quorum up"]
    );
    // A timeout is a failure.
    s.next_checks();
    assert_eq!(
        s.result(0, Outcome::TimedOut)[..2],
        ["-10.0.0.2:80", "down 10.0.0.2:80"]
    );
    assert_eq!(
        s.e.status()[0].real_servers[0].checks[0]
            .last_failure
            .as_deref(),
        Some("timed out")
    );
}

#[test]
fn http_checks_urls_in_turn_and_recovers_after_two_rounds() {
    let mut v = vs(&[], |_| {});
    let mut r = RealServer::new("10.0.0.2:80".parse().unwrap());
    let mut h = HttpCheck::default();
    h.urls.push(Url::new("/a"));
    let mut u = Url::new("/b");
    u.status = StatusCodes::empty();
    u.status.insert_range(200, 200);
    h.urls.push(u);
    r.checkers.push(Checker::new(CheckKind::Http(h)));
    v.real_servers.push(r);
    let (mut s, _) = Sim::new(vec![v]);
    let path = |s: &mut Sim| {
        let t = s.e.poll_timeout().unwrap();
        s.now = t;
        s.e.handle_timeout(t);
        match s.e.poll_action() {
            Some(Action::Check(_, Probe::Http { url, request, .. })) => {
                assert!(request.starts_with(format!("GET {} HTTP/1.0\r\n", url.path).as_bytes()));
                url.path
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(path(&mut s), "/a");
    assert!(s.result(0, Outcome::Success).is_empty());
    assert_eq!((path(&mut s), s.secs()), ("/b".to_string(), 11.0));
    assert!(s.result(0, Outcome::Success).is_empty());
    assert_eq!(path(&mut s), "/a");
    // /a fails: retried after 3 s (HTTP default), then down; the failed URL is tried every delay_loop.
    assert!(s.result(0, fail()).is_empty());
    assert_eq!((path(&mut s), s.secs()), ("/a".to_string(), 24.0));
    assert_eq!(
        s.result(0, fail())[..2],
        ["-10.0.0.2:80", "down 10.0.0.2:80"]
    );
    assert_eq!((path(&mut s), s.secs()), ("/a".to_string(), 34.0));
    // The failed URL answers: every URL again from the first; up when the round completes.
    assert!(s.result(0, Outcome::Success).is_empty());
    assert_eq!(path(&mut s), "/a");
    assert!(s.result(0, Outcome::Success).is_empty());
    assert_eq!(path(&mut s), "/b");
    assert_eq!(
        s.result(0, Outcome::Success)[..2],
        ["+10.0.0.2:80 w1", "up 10.0.0.2:80"]
    );
    assert_eq!(s.secs(), 54.0);
}

#[test]
fn fwmark_and_group_services_with_dr_ports() {
    let mut v = vs(&[], |_| {});
    v.target = Target::Group {
        name: "g".into(),
        services: vec![
            ServiceKey::Inet {
                protocol: Protocol::Tcp,
                addr: "10.0.0.1".parse().unwrap(),
                port: 80,
            },
            ServiceKey::Fwmark {
                mark: 5,
                family: ipvs_nl::Family::Ipv4,
            },
        ],
    };
    v.forwarding = Forwarding::new(FwdMethod::Route);
    let mut r = RealServer::new("10.0.0.2:8080".parse().unwrap());
    r.checkers.push(Checker::new(CheckKind::Tcp));
    v.real_servers.push(r);
    v.persistence_timeout = 300;
    v.persistence_granularity = Some(0xffff_ff00);
    let (_s, a) = Sim::new(vec![v.clone()]);
    // DR: the destination port is the service's (0 for the fwmark).
    assert_eq!(a[2..4], ["+10.0.0.2:80 w1", "+10.0.0.2:0 w1"]);
    let e = Engine::new(vec![v], 1);
    let svc = Engine::service(&e.vss[0], e.vss[0].services[0]);
    assert_eq!((svc.timeout, svc.netmask), (300, 0xffff_ff00));
    assert!(svc.flags.contains(ServiceFlags::PERSISTENT));
}

#[test]
fn warmup_spreads_first_checks_within_the_bound() {
    let mut v = vs(
        &["10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80", "10.0.0.5:80"],
        |_| {},
    );
    v.warmup = None; // default: delay_loop
    let t0 = Instant::now();
    let mut e = Engine::new(vec![v], 99);
    e.start(t0);
    let firsts: Vec<Duration> = e.checks.iter().map(|c| c.next.unwrap() - t0).collect();
    assert!(
        firsts
            .iter()
            .all(|d| *d >= BOOTSTRAP_DELAY && *d <= BOOTSTRAP_DELAY + DL),
        "{firsts:?}"
    );
    assert!(
        firsts.windows(2).any(|w| w[0] != w[1]),
        "not spread: {firsts:?}"
    );
}

#[test]
fn ha_suspend_pauses_checkers_until_the_address_is_here() {
    let mut v = vs(&["10.0.0.2:80"], |_| {});
    v.ha_suspend = true;
    let (mut s, _) = Sim::new(vec![v]);
    // Suspended: the deadline passes without a check.
    assert_eq!(s.next_checks(), Vec::<usize>::new());
    s.e.set_address_present("10.0.0.1".parse().unwrap(), true);
    assert_eq!(s.next_checks(), [0]);
}

#[test]
fn reload_adds_and_removes_real_servers_and_keeps_the_rest() {
    let (mut s, _) = Sim::new(vec![vs(&["10.0.0.2:80", "10.0.0.3:80"], |_| {})]);
    s.next_checks();
    s.result(0, Outcome::Success);
    s.result(1, fail());
    // New config: .3 (down) is gone, .4 is new, .2 (up) stays.
    s.e.reload(s.now, vec![vs(&["10.0.0.2:80", "10.0.0.4:80"], |_| {})]);
    let a = s.actions();
    assert_eq!(a, ["+10.0.0.4:80 w1"], "only the new server: {a:?}");
    let st = s.e.status();
    assert_eq!(st[0].real_servers.len(), 2);
    assert!(st[0].real_servers[0].alive && st[0].real_servers[0].checks[0].has_run);
    // An up server that is removed goes out of IPVS.
    s.e.reload(s.now, vec![vs(&["10.0.0.4:80"], |_| {})]);
    assert_eq!(s.actions(), ["-10.0.0.2:80", "down 10.0.0.2:80"]);
    // A whole virtual server that is removed goes, with its servers.
    let mut other = vs(&["10.0.0.7:80"], |_| {});
    other.target = Target::Fwmark {
        mark: 3,
        family: ipvs_nl::Family::Ipv4,
    };
    s.e.reload(s.now, vec![other]);
    let a = s.actions();
    assert_eq!(
        a[..4],
        [
            "-10.0.0.4:80",
            "down 10.0.0.4:80",
            "quorum down",
            "-svc Inet { protocol: Tcp, addr: 10.0.0.1, port: 80 }"
        ]
    );
    assert!(
        a.contains(&"+svc Fwmark { mark: 3, family: Ipv4 }".to_string()),
        "{a:?}"
    );
}

#[test]
fn reload_keeps_misc_dynamic_weights() {
    let cfg = || {
        let mut v = vs(&[], |_| {});
        let mut r = RealServer::new("10.0.0.2:80".parse().unwrap());
        r.weight = Some(4);
        let mut m = MiscCheck::new(vec!["/bin/check".into()]);
        m.dynamic = true;
        r.checkers.push(Checker::new(CheckKind::Misc(m)));
        v.real_servers.push(r);
        vec![v]
    };
    let (mut s, _) = Sim::new(cfg());
    s.next_checks();
    assert_eq!(s.result(0, Outcome::Exited(9))[0], "~10.0.0.2:80 w7");
    s.e.reload(s.now, cfg());
    assert!(s.actions().is_empty(), "weight 7 kept, nothing to change");
    assert_eq!(s.e.status()[0].real_servers[0].weight, 7);
    // Exit 0 means the configured weight, also across a reload (keepalived 2.2.7 computes
    // 0 - iweight for it at reload and sets the server to weight 0: a deliberate difference).
    s.next_checks();
    assert_eq!(s.result(0, Outcome::Exited(0))[0], "~10.0.0.2:80 w4");
    s.e.reload(s.now, cfg());
    assert!(s.actions().is_empty());
    assert_eq!(s.e.status()[0].real_servers[0].weight, 4);
}

/// A `virtual_server_group` used by a TCP and a UDP virtual server: the address entries give each its
/// own service, the fwmark entry one service for both, added by the first, holding both's real
/// servers, and removed only with the last (a reload that drops one keeps it).
#[test]
fn a_group_shared_by_two_virtual_servers() {
    let group = |protocol: Protocol, rs: &str| {
        let mut v = vs(&[rs], |_| {});
        v.target = Target::Group {
            name: "g".into(),
            services: vec![
                ServiceKey::Inet {
                    protocol,
                    addr: "10.0.0.1".parse().unwrap(),
                    port: 53,
                },
                ServiceKey::Fwmark {
                    mark: 5,
                    family: ipvs_nl::Family::Ipv4,
                },
            ],
        };
        v
    };
    let fwm = "+svc Fwmark { mark: 5, family: Ipv4 }";
    let (mut s, a) = Sim::new(vec![
        group(Protocol::Tcp, "10.0.0.2:53"),
        group(Protocol::Udp, "10.0.0.3:53"),
    ]);
    assert_eq!(
        a.iter().filter(|x| *x == fwm).count(),
        1,
        "the fwmark service once: {a:?}"
    );
    assert_eq!(
        a.iter().filter(|x| x.starts_with("+svc")).count(),
        3,
        "{a:?}"
    );
    assert!(
        a.contains(&"+10.0.0.2:53 w1".to_string()) && a.contains(&"+10.0.0.3:53 w1".to_string())
    );
    // The UDP virtual server goes: its service and its servers, not the shared fwmark service.
    s.e.reload(s.now, vec![group(Protocol::Tcp, "10.0.0.2:53")]);
    let a = s.actions();
    assert!(
        a.contains(&"-svc Inet { protocol: Udp, addr: 10.0.0.1, port: 53 }".to_string()),
        "{a:?}"
    );
    assert!(!a.iter().any(|x| x.starts_with("-svc Fwmark")), "{a:?}");
    assert_eq!(
        a.iter().filter(|x| x.as_str() == "-10.0.0.3:53").count(),
        2,
        "{a:?}"
    );
    // The last user removes it.
    s.e.stop(s.now);
    let a = s.actions();
    assert!(
        a.contains(&"-svc Fwmark { mark: 5, family: Ipv4 }".to_string()),
        "{a:?}"
    );
}
