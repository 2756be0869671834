//! Kernel tests: run inside the IPVS VM (`cargo xtask vm-test`), each in a private network namespace.
#![cfg(feature = "vm-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ipvs_nl::{
    Daemon, DaemonState, Destination, Error, Family, FwdMethod, Ipvs, Op, Options, Protocol,
    Scheduler, Service, ServiceFlags, ServiceKey, Timeouts, TunnelFlags, TunnelType,
};
use std::net::IpAddr;

/// A fresh namespace with the VM's test addresses on `lo`, and a handle.
fn setup() -> Option<(testkit::NetNs, Ipvs)> {
    let ns = testkit::netns()?;
    ns.sh("ip addr add 10.0.0.254/8 dev lo && ip -6 addr add 2001:db8::fe/32 dev lo");
    let ipvs = Ipvs::open();
    if !testkit::require(
        "the IPVS generic netlink family (run via `cargo xtask vm-test`)",
        ipvs.is_ok(),
    ) {
        return None;
    }
    Some((ns, ipvs.unwrap()))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(a: &str, port: u16) -> ServiceKey {
    ServiceKey::Inet {
        protocol: Protocol::Tcp,
        addr: ip(a),
        port,
    }
}

fn ipvsadm(ns: &testkit::NetNs, args: &str) -> String {
    String::from_utf8(ns.sh(&format!("/usr/sbin/ipvsadm {args}")).stdout).unwrap()
}

#[test]
fn services_of_every_kind_round_trip() {
    let Some((ns, mut ipvs)) = setup() else {
        return;
    };
    let mut want = Vec::new();
    let mut s = Service::new(tcp("10.0.0.1", 80));
    s.scheduler = "rr".into();
    want.push(s);
    let mut s = Service::new(ServiceKey::Inet {
        protocol: Protocol::Udp,
        addr: ip("10.0.0.1"),
        port: 53,
    });
    s.flags = ServiceFlags::PERSISTENT | ServiceFlags::ONEPACKET;
    s.timeout = 360;
    s.netmask = 0xffff_ff00;
    want.push(s);
    let mut s = Service::new(ServiceKey::Inet {
        protocol: Protocol::Sctp,
        addr: ip("2001:db8::1"),
        port: 9,
    });
    s.scheduler = "sh".into();
    s.flags = ServiceFlags::SCHED1 | ServiceFlags::SCHED2 | ServiceFlags::PERSISTENT;
    s.timeout = 100;
    s.netmask = 64;
    want.push(s);
    let mut s = Service::new(ServiceKey::Fwmark {
        mark: 7,
        family: Family::Ipv4,
    });
    s.scheduler = "mh".into();
    s.flags = ServiceFlags::SCHED1 | ServiceFlags::SCHED3;
    want.push(s);
    let mut s = Service::new(ServiceKey::Fwmark {
        mark: 8,
        family: Family::Ipv6,
    });
    s.pe_name = Some("sip".into());
    s.flags = ServiceFlags::PERSISTENT;
    s.timeout = 30;
    s.scheduler = "lblcr".into();
    want.push(s);
    for s in &want {
        ipvs.add_service(s)
            .unwrap_or_else(|e| panic!("add {:?}: {e}", s.key));
    }
    let got: Vec<Service> = ipvs.services().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(got.len(), want.len());
    for w in &want {
        let g = got
            .iter()
            .find(|g| g.key == w.key)
            .unwrap_or_else(|| panic!("{:?} not listed", w.key));
        assert_eq!(g.scheduler, w.scheduler);
        // The kernel adds HASHED to every listed service.
        assert_eq!(g.flags - ServiceFlags::HASHED, w.flags, "{:?}", w.key);
        assert_eq!(g.timeout, w.timeout);
        assert_eq!(g.netmask, w.netmask, "{:?}", w.key);
        assert_eq!(g.pe_name, w.pe_name);
        assert!(g.stats.is_some() && g.stats64.is_some());
        assert_eq!(&ipvs.service(&w.key).unwrap().key, &w.key);
    }
    // The peer sees the same table.
    let text = ipvsadm(&ns, "-S -n");
    assert!(text.contains("-A -t 10.0.0.1:80 -s rr"), "{text}");
    assert!(
        text.contains("-A -u 10.0.0.1:53 -s wlc -p 360 -M 255.255.255.0 -o"),
        "{text}"
    );
    assert!(
        text.contains("-A -f 8 -6 -s lblcr -p 30 --pe sip"),
        "{text}"
    );
}

#[test]
fn destinations_with_every_method_and_tunnel_options() {
    let Some((ns, mut ipvs)) = setup() else {
        return;
    };
    let key = tcp("10.0.0.1", 80);
    ipvs.add_service(&Service::new(key)).unwrap();
    let mut dests = Vec::new();
    let mut d = Destination::new(ip("10.0.0.2"), 8080);
    d.weight = 5;
    d.u_threshold = 100;
    d.l_threshold = 10;
    dests.push(d);
    let mut d = Destination::new(ip("10.0.0.3"), 80);
    d.fwd = FwdMethod::Route;
    dests.push(d);
    let mut d = Destination::new(ip("10.0.0.4"), 80);
    d.fwd = FwdMethod::Tunnel;
    d.tun_type = TunnelType::Gue;
    d.tun_port = 6080;
    d.tun_flags = TunnelFlags::CSUM;
    dests.push(d);
    let mut d = Destination::new(ip("10.0.0.5"), 80);
    d.fwd = FwdMethod::Tunnel;
    d.tun_type = TunnelType::Gre;
    d.tun_flags = TunnelFlags::REMCSUM;
    dests.push(d);
    // Mixed family: an IPv6 real server behind an IPv4 service, tunnelled.
    let mut d = Destination::new(ip("2001:db8::2"), 80);
    d.fwd = FwdMethod::Tunnel;
    dests.push(d);
    for d in &dests {
        ipvs.add_destination(&key, d)
            .unwrap_or_else(|e| panic!("add {}: {e}", d.addr));
    }
    let got: Vec<Destination> = ipvs
        .destinations(&key)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(got.len(), dests.len());
    for w in &dests {
        let g = got.iter().find(|g| g.addr == w.addr).unwrap();
        assert_eq!(
            (g.port, g.fwd, g.weight, g.u_threshold, g.l_threshold),
            (w.port, w.fwd, w.weight, w.u_threshold, w.l_threshold)
        );
        if w.fwd == FwdMethod::Tunnel {
            assert_eq!(
                (g.tun_type, g.tun_port, g.tun_flags),
                (w.tun_type, w.tun_port, w.tun_flags),
                "{}",
                w.addr
            );
        }
        assert_eq!((g.active_conns, g.inact_conns, g.persist_conns), (0, 0, 0));
        assert!(g.stats.is_some() && g.stats64.is_some());
    }
    let text = ipvsadm(&ns, "-L -n --tun-info");
    assert!(text.contains("10.0.0.4:80"), "{text}");
    // Edit, then delete.
    let mut d = dests[0].clone();
    d.weight = 0;
    d.fwd = FwdMethod::Route;
    ipvs.edit_destination(&key, &d).unwrap();
    let g: Vec<Destination> = ipvs
        .destinations(&key)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let e = g.iter().find(|x| x.addr == d.addr).unwrap();
    assert_eq!((e.weight, e.fwd), (0, FwdMethod::Route));
    ipvs.del_destination(&key, d.addr, d.port).unwrap();
    assert_eq!(ipvs.destinations(&key).unwrap().count(), dests.len() - 1);
    assert!(!ipvsadm(&ns, "-L -n").contains("10.0.0.2:8080"));
}

#[test]
fn kernel_errors_are_typed() {
    let Some((_ns, mut ipvs)) = setup() else {
        return;
    };
    let key = tcp("10.0.0.1", 80);
    let mut s = Service::new(key);
    ipvs.add_service(&s).unwrap();
    assert!(matches!(ipvs.add_service(&s), Err(Error::Exists)));
    let other = tcp("10.0.0.9", 80);
    assert!(matches!(
        ipvs.del_service(&other),
        Err(Error::NoSuchService)
    ));
    assert!(matches!(
        ipvs.add_destination(&other, &Destination::new(ip("10.0.0.2"), 80)),
        Err(Error::NoSuchService)
    ));
    assert!(matches!(ipvs.service(&other), Err(Error::NoSuchService)));
    ipvs.add_destination(&key, &Destination::new(ip("10.0.0.2"), 80))
        .unwrap();
    assert!(matches!(
        ipvs.add_destination(&key, &Destination::new(ip("10.0.0.2"), 80)),
        Err(Error::Exists)
    ));
    assert!(matches!(
        ipvs.del_destination(&key, ip("10.0.0.3"), 80),
        Err(Error::NotFound)
    ));
    s.key = tcp("10.0.0.1", 81);
    s.scheduler = "nosuchsched".into();
    assert!(matches!(ipvs.add_service(&s), Err(Error::NotFound)));
    s.scheduler = "rr".into();
    s.pe_name = Some("nosuchpe".into());
    assert!(matches!(ipvs.add_service(&s), Err(Error::NotFound)));
    let e = ipvs.add_service(&s).unwrap_err();
    assert_eq!(e.errno(), Some(2), "ENOENT");
    assert!(matches!(e, Error::NotFound));
}

#[test]
fn batch_apply_reports_each_error_and_flush_zero_work() {
    let Some((ns, mut ipvs)) = setup() else {
        return;
    };
    let mut o = Options::default();
    o.batch = 50;
    let mut ipvs_batch = Ipvs::open_with(&o).unwrap();
    let mut ops = Vec::new();
    for i in 0..300u16 {
        let key = tcp("10.0.1.1", 1000 + i);
        ops.push(Op::AddService(Service::new(key)));
        ops.push(Op::AddDest(key, Destination::new(ip("10.0.0.2"), 80)));
    }
    // Two failing requests in the middle: a duplicate service and a destination of an unknown service.
    ops.insert(101, Op::AddService(Service::new(tcp("10.0.1.1", 1000))));
    ops.insert(
        203,
        Op::AddDest(tcp("10.9.9.9", 1), Destination::new(ip("10.0.0.2"), 80)),
    );
    let res = ipvs_batch.apply(&ops).unwrap();
    assert_eq!(res.len(), ops.len());
    for (i, r) in res.iter().enumerate() {
        match i {
            101 => assert!(matches!(r, Err(Error::Exists)), "{r:?}"),
            203 => assert!(matches!(r, Err(Error::NoSuchService)), "{r:?}"),
            _ => assert!(r.is_ok(), "op {i}: {r:?}"),
        }
    }
    assert_eq!(ipvs.services().unwrap().count(), 300);
    let peer = ipvsadm(&ns, "-S -n");
    assert_eq!(peer.lines().filter(|l| l.starts_with("-a ")).count(), 300);
    // Small receive buffers still list everything (more datagrams).
    let mut o = Options::default();
    o.recv_len = 4096;
    let mut small = Ipvs::open_with(&o).unwrap();
    assert_eq!(small.services().unwrap().count(), 300);
    let k = tcp("10.0.1.1", 1299);
    assert_eq!(small.destinations(&k).unwrap().count(), 1);
    // An early-dropped dump leaves the socket usable.
    {
        let mut it = ipvs.services().unwrap();
        assert!(it.next().is_some());
    }
    assert_eq!(ipvs.info().unwrap().version >> 16, 1);
    ipvs.zero(Some(&tcp("10.0.1.1", 1000))).unwrap();
    ipvs.zero(None).unwrap();
    ipvs.flush().unwrap();
    assert_eq!(ipvs.services().unwrap().count(), 0);
    assert!(ipvsadm(&ns, "-S -n").is_empty());
}

#[test]
fn timeouts_info_and_sync_daemons() {
    let Some((ns, mut ipvs)) = setup() else {
        return;
    };
    let info = ipvs.info().unwrap();
    assert_eq!(info.version, 0x010201);
    assert_eq!(info.conn_tab_size, 4096);
    let t0 = ipvs.timeouts().unwrap();
    assert_eq!(t0, Timeouts::new(900, 120, 300));
    ipvs.set_timeouts(&Timeouts::new(1000, 0, 77)).unwrap();
    assert_eq!(ipvs.timeouts().unwrap(), Timeouts::new(1000, 120, 77));
    assert!(ipvsadm(&ns, "-L --timeout").contains("1000 120 77"));

    assert!(ipvs.daemons().unwrap().is_empty());
    ns.sh("ip link add d0 type dummy && ip link set d0 up multicast on && ip addr add 192.0.2.1/24 dev d0");
    let mut m = Daemon::new(DaemonState::Master, "d0", 9);
    m.sync_maxlen = 1400;
    m.mcast_group = Some("239.1.2.3".parse().unwrap());
    m.mcast_port = 8849;
    m.mcast_ttl = 3;
    ipvs.start_daemon(&m).unwrap();
    let b = Daemon::new(DaemonState::Backup, "d0", 10);
    ipvs.start_daemon(&b).unwrap();
    assert!(matches!(
        ipvs.start_daemon(&m),
        Err(Error::Exists | Error::Busy)
    ));
    let ds = ipvs.daemons().unwrap();
    assert_eq!(ds.len(), 2, "{ds:?}");
    let gm = ds.iter().find(|d| d.state == DaemonState::Master).unwrap();
    assert_eq!(gm, &m);
    let gb = ds.iter().find(|d| d.state == DaemonState::Backup).unwrap();
    assert_eq!((gb.mcast_ifn.as_str(), gb.syncid), ("d0", 10));
    let text = ipvsadm(&ns, "-L --daemon");
    assert!(
        text.contains("master sync daemon (mcast=d0, syncid=9"),
        "{text}"
    );
    ipvs.stop_daemon(DaemonState::Master).unwrap();
    ipvs.stop_daemon(DaemonState::Backup).unwrap();
    assert!(ipvs.daemons().unwrap().is_empty());
}

#[test]
fn edit_service_and_peer_written_tables_parse() {
    let Some((ns, mut ipvs)) = setup() else {
        return;
    };
    ns.sh(
        "/usr/sbin/ipvsadm -A -t [2001:db8::1]:443 -s wrr -p 60 -M 96 && \
           /usr/sbin/ipvsadm -a -t [2001:db8::1]:443 -r [2001:db8::3]:443 -g -w 3 -x 9 -y 2 && \
           /usr/sbin/ipvsadm -A -f 5 -s sh -b sh-port",
    );
    let svcs: Vec<Service> = ipvs.services().unwrap().collect::<Result<_, _>>().unwrap();
    let v6 = svcs
        .iter()
        .find(|s| matches!(s.key, ServiceKey::Inet { .. }))
        .unwrap();
    assert_eq!(
        (v6.scheduler.name(), v6.timeout, v6.netmask),
        ("wrr", 60, 96)
    );
    assert!(v6.flags.contains(ServiceFlags::PERSISTENT));
    let fw = svcs
        .iter()
        .find(|s| {
            s.key
                == ServiceKey::Fwmark {
                    mark: 5,
                    family: Family::Ipv4,
                }
        })
        .unwrap();
    assert!(fw.flags.contains(ServiceFlags::SCHED2));
    let d: Vec<Destination> = ipvs
        .destinations(&v6.key)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(
        (
            d[0].addr,
            d[0].fwd,
            d[0].weight,
            d[0].u_threshold,
            d[0].l_threshold
        ),
        (ip("2001:db8::3"), FwdMethod::Route, 3, 9, 2)
    );
    let mut e = v6.clone();
    e.scheduler = "lc".into();
    e.flags = ServiceFlags::empty();
    ipvs.edit_service(&e).unwrap();
    assert!(ipvsadm(&ns, "-S -n").contains("-A -t [2001:db8::1]:443 -s lc\n"));
    ipvs.del_service(&e.key).unwrap();
    assert_eq!(ipvs.services().unwrap().count(), 1);
}

/// Traffic through two services: connection counts (active/inactive/persistent) and stats come back
/// non-zero, agree with Debian's ipvsadm, and `zero` clears one service's counters, then all.
#[test]
fn connection_counts_stats_and_zero() {
    let Some((ns, mut ipvs)) = setup() else {
        return;
    };
    let a = tcp("10.0.0.254", 80);
    let b = tcp("10.0.0.254", 81);
    let mut sa = Service::new(a);
    sa.scheduler = "rr".into();
    sa.flags = ServiceFlags::PERSISTENT;
    sa.timeout = 60;
    ipvs.add_service(&sa).unwrap();
    ipvs.add_service(&Service::new(b)).unwrap();
    let mut d = Destination::new(ip("10.0.0.2"), 80);
    d.fwd = FwdMethod::Masq;
    ipvs.add_destination(&a, &d).unwrap();
    d.port = 81;
    ipvs.add_destination(&b, &d).unwrap();
    ns.sh("for p in 80 81 80; do nc -w 1 10.0.0.254 $p </dev/null >/dev/null 2>&1; done; true");
    let da = ipvs.destinations(&a).unwrap().next().unwrap().unwrap();
    assert!(
        da.active_conns + da.inact_conns >= 1,
        "no connection counted: {da:?}"
    );
    assert_eq!(da.persist_conns, 1, "one template per client: {da:?}");
    let peer = ipvsadm(&ns, "-L -n --persistent-conn -t 10.0.0.254:80");
    let want = format!(
        "  -> {:<28} {:<9} {:<11} {:<10} {:<10}",
        "10.0.0.2:80", 1, da.persist_conns, da.active_conns, da.inact_conns
    );
    assert!(peer.contains(&want), "{peer}\nwant {want}");
    // The counters the kernel reports are summed from its per-CPU counters by the 2 s estimator timer.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let stats = |ipvs: &mut Ipvs, k: &ServiceKey| ipvs.service(k).unwrap().best_stats();
    let (before_a, before_b) = (stats(&mut ipvs, &a), stats(&mut ipvs, &b));
    assert!(before_a.conns >= 2 && before_a.inpkts >= 2, "{before_a:?}");
    assert!(before_b.conns >= 1 && before_b.inpkts >= 1, "{before_b:?}");
    let ds = ipvs.destinations(&a).unwrap().next().unwrap().unwrap();
    assert_eq!(ds.best_stats().conns, before_a.conns);
    ipvs.zero(Some(&a)).unwrap();
    let (za, zb) = (stats(&mut ipvs, &a), stats(&mut ipvs, &b));
    assert_eq!((za.conns, za.inpkts, za.inbytes), (0, 0, 0), "{za:?}");
    assert_eq!(zb.conns, before_b.conns, "zeroing a touched b: {zb:?}");
    let ds = ipvs.destinations(&a).unwrap().next().unwrap().unwrap();
    assert_eq!(ds.best_stats().conns, 0, "{ds:?}");
    ipvs.zero(None).unwrap();
    let zb = stats(&mut ipvs, &b);
    assert_eq!((zb.conns, zb.inpkts, zb.outpkts), (0, 0, 0), "{zb:?}");
}

/// An attribute this crate does not know survives a get/modify/set against the real kernel.
///
/// The VM's 6.1 kernel sends nothing the codec does not know, so the test hook
/// `ipvs_nl::testing::treat_as_unknown` blinds the codec to attributes the kernel sends *and honours*:
/// the service's persistence engine (`IPVS_SVC_ATTR_PE_NAME`) and the destination's tunnel type, port and
/// flags. Blinded, the codec neither decodes them nor writes them from typed fields, like a crate older
/// than those attributes. The test reads, changes another field, writes back, and asks Debian's ipvsadm
/// whether the kernel still has the values. A control round drops the kept attributes before writing
/// back and must lose them, so the check can fail.
#[test]
fn unknown_attributes_survive_get_modify_set() {
    use ipvs_nl::testing::{Nest, treat_as_unknown};
    use ipvs_nl::wire::attr;
    let Some((ns, mut ipvs)) = setup() else {
        return;
    };
    let key = ServiceKey::Inet {
        protocol: Protocol::Udp,
        addr: ip("10.0.0.1"),
        port: 5060,
    };
    let mut s = Service::new(key);
    s.scheduler = Scheduler::Rr;
    s.flags = ServiceFlags::PERSISTENT;
    s.timeout = 60;
    s.pe_name = Some("sip".into());
    ipvs.add_service(&s).unwrap();
    let mut d = Destination::new(ip("10.0.0.4"), 5060);
    d.fwd = FwdMethod::Tunnel;
    d.tun_type = TunnelType::Gue;
    d.tun_port = 6080;
    d.tun_flags = TunnelFlags::CSUM;
    ipvs.add_destination(&key, &d).unwrap();
    let before = ipvsadm(&ns, "-S -n");
    assert!(
        before.contains("-A -u 10.0.0.1:5060 -s rr -p 60 --pe sip\n")
            && before.contains("-i -w 1 --tun-type gue --tun-port 6080 --tun-csum\n"),
        "{before}"
    );

    // Get, modify another field, set, with the codec blind to the persistence engine and tunnel fields.
    let blind = [
        (Nest::Service, attr::SVC_PE_NAME),
        (Nest::Destination, attr::DEST_TUN_TYPE),
        (Nest::Destination, attr::DEST_TUN_PORT),
        (Nest::Destination, attr::DEST_TUN_FLAGS),
    ];
    let round = |ipvs: &mut Ipvs, timeout: u32, weight: u32, drop_unknown: bool| {
        let _blind = treat_as_unknown(&blind);
        let mut got = ipvs.service(&key).unwrap();
        assert_eq!(got.pe_name, None, "the codec decoded a blinded attribute");
        assert!(
            got.unknown
                .iter()
                .any(|a| a.number() == attr::SVC_PE_NAME && a.value == b"sip\0"),
            "{:?}",
            got.unknown
        );
        got.timeout = timeout;
        if drop_unknown {
            got.unknown.clear();
        }
        ipvs.edit_service(&got).unwrap();
        let mut dest = ipvs.destinations(&key).unwrap().next().unwrap().unwrap();
        assert_eq!(
            (dest.tun_type, dest.tun_port, dest.tun_flags),
            (TunnelType::Ipip, 0, TunnelFlags::empty()),
            "the codec decoded a blinded attribute"
        );
        let kept: Vec<u16> = dest.unknown.iter().map(|a| a.number()).collect();
        assert_eq!(
            kept,
            [
                attr::DEST_TUN_TYPE,
                attr::DEST_TUN_PORT,
                attr::DEST_TUN_FLAGS
            ]
        );
        dest.weight = weight;
        if drop_unknown {
            dest.unknown.clear();
        }
        ipvs.edit_destination(&key, &dest).unwrap();
    };

    round(&mut ipvs, 120, 7, false);
    let after = ipvsadm(&ns, "-S -n");
    assert!(
        after.contains("-A -u 10.0.0.1:5060 -s rr -p 120 --pe sip\n"),
        "persistence engine lost: {after}"
    );
    assert!(
        after.contains(
            "-a -u 10.0.0.1:5060 -r 10.0.0.4:5060 -i -w 7 --tun-type gue --tun-port 6080 --tun-csum\n"
        ),
        "tunnel settings lost: {after}"
    );
    // And the unblinded codec reads them back typed.
    let s2 = ipvs.service(&key).unwrap();
    assert_eq!(
        (s2.pe_name.as_deref(), s2.timeout, s2.unknown.len()),
        (Some("sip"), 120, 0)
    );

    // Control: without the kept attributes, the same get/modify/set loses both values.
    round(&mut ipvs, 180, 8, true);
    let control = ipvsadm(&ns, "-S -n");
    assert!(
        control.contains("-A -u 10.0.0.1:5060 -s rr -p 180\n") && !control.contains("--pe"),
        "{control}"
    );
    assert!(
        control.contains("-r 10.0.0.4:5060 -i -w 8 --tun-type ipip\n") && !control.contains("gue"),
        "{control}"
    );
}
