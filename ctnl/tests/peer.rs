//! Cross-checks with conntrack-tools, each case in a fresh namespace: an entry made by `conntrack -I` decodes
//! to the fields of the command, and the same entry made by ctnl looks identical in `conntrack -L`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ctnl::{Conntrack, DumpFilter, Entry, Family, Key, L4, ProtoInfo, Status, TcpInfo, Tuple};
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// `conntrack -L` output for the namespace, with the countdown timeout (third column) replaced by `T`.
fn listing(ns: &testkit::NetNs, family: &str) -> Vec<String> {
    let out = ns.sh(&format!("conntrack -L -f {family} 2>/dev/null"));
    let mut lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let mut cols: Vec<&str> = l.split_whitespace().collect();
            if cols.len() > 2 {
                cols[2] = "T";
            }
            cols.join(" ")
        })
        .collect();
    lines.sort();
    lines
}

struct Case {
    cmd: &'static str,
    family: &'static str,
    entry: fn() -> Entry,
    check: fn(&Entry),
}

fn udp_mark() -> Entry {
    let o = Tuple::ports(ip("10.0.0.1"), ip("10.0.0.2"), 17, 1000, 53);
    {
        let mut x = Entry::new(o.clone(), o.reversed());
        x.timeout = Some(60);
        x.mark = Some(7);
        x
    }
}

fn tcp_est() -> Entry {
    let o = Tuple::ports(ip("10.0.0.1"), ip("10.0.0.2"), 6, 40000, 80);
    {
        let mut x = Entry::new(o.clone(), o.reversed());
        x.timeout = Some(300);
        x.status = Some(Status::SEEN_REPLY | Status::ASSURED);
        x.protoinfo = Some(ProtoInfo::Tcp({
            let mut x = TcpInfo::default();
            x.state = Some(3);
            x
        }));
        x
    }
}

fn icmp() -> Entry {
    let o = Tuple {
        src: ip("10.0.0.1"),
        dst: ip("10.0.0.2"),
        proto: 1,
        l4: L4::Icmp {
            id: 77,
            kind: 8,
            code: 0,
        },
        zone: None,
        unknown: vec![],
    };
    {
        let mut x = Entry::new(o.clone(), o.reversed());
        x.timeout = Some(30);
        x
    }
}

fn udp6_zone() -> Entry {
    let o = Tuple::ports(ip("fd00::1"), ip("fd00::2"), 17, 5, 6);
    {
        let mut x = Entry::new(o.clone(), o.reversed());
        x.timeout = Some(60);
        x.zone = Some(5);
        x
    }
}

fn udp_nat() -> Entry {
    // DNAT: reply comes from the translated address.
    let o = Tuple::ports(ip("10.0.0.1"), ip("192.0.2.1"), 17, 2000, 53);
    let r = Tuple::ports(ip("10.9.9.9"), ip("10.0.0.1"), 17, 5353, 2000);
    {
        let mut x = Entry::new(o, r);
        x.timeout = Some(60);
        x
    }
}

const CASES: &[Case] = &[
    Case {
        cmd: "conntrack -I -p udp -s 10.0.0.1 -d 10.0.0.2 --sport 1000 --dport 53 -t 60 -m 7",
        family: "ipv4",
        entry: udp_mark,
        check: |e| {
            assert_eq!(e.family, Family::Ipv4);
            assert_eq!(e.mark, Some(7));
            assert_eq!(
                e.orig.as_ref().unwrap().l4,
                L4::Ports { src: 1000, dst: 53 }
            );
            assert_eq!(e.reply, Some(e.orig.as_ref().unwrap().reversed()));
        },
    },
    Case {
        cmd: "conntrack -I -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 40000 --dport 80 --state ESTABLISHED -u SEEN_REPLY,ASSURED -t 300",
        family: "ipv4",
        entry: tcp_est,
        check: |e| {
            assert!(
                e.status
                    .unwrap()
                    .contains(Status::SEEN_REPLY | Status::ASSURED | Status::CONFIRMED)
            );
            match &e.protoinfo {
                Some(ProtoInfo::Tcp(t)) => assert_eq!(t.state, Some(3)),
                other => panic!("{other:?}"),
            }
        },
    },
    Case {
        cmd: "conntrack -I -p icmp -s 10.0.0.1 -d 10.0.0.2 --icmp-type 8 --icmp-code 0 --icmp-id 77 -t 30",
        family: "ipv4",
        entry: icmp,
        check: |e| {
            assert_eq!(
                e.orig.as_ref().unwrap().l4,
                L4::Icmp {
                    id: 77,
                    kind: 8,
                    code: 0
                }
            );
            assert_eq!(
                e.reply.as_ref().unwrap().l4,
                L4::Icmp {
                    id: 77,
                    kind: 0,
                    code: 0
                }
            );
        },
    },
    Case {
        cmd: "conntrack -I -p udp -s fd00::1 -d fd00::2 --sport 5 --dport 6 -t 60 -w 5",
        family: "ipv6",
        entry: udp6_zone,
        check: |e| {
            assert_eq!(e.family, Family::Ipv6);
            assert_eq!(e.zone, Some(5));
            assert_eq!(e.orig.as_ref().unwrap().src, ip("fd00::1"));
        },
    },
    Case {
        cmd: "conntrack -I -p udp -s 10.0.0.1 -d 192.0.2.1 --sport 2000 --dport 53 -r 10.9.9.9 -q 10.0.0.1 --reply-port-src 5353 --reply-port-dst 2000 -t 60",
        family: "ipv4",
        entry: udp_nat,
        check: |e| {
            let r = e.reply.as_ref().unwrap();
            assert_eq!(
                (r.src, r.dst, r.l4),
                (
                    ip("10.9.9.9"),
                    ip("10.0.0.1"),
                    L4::Ports {
                        src: 5353,
                        dst: 2000
                    }
                )
            );
            // Without NAT ranges the kernel records the asymmetric tuples as given, setting no NAT bits.
            assert_eq!(e.status, Some(Status::CONFIRMED));
        },
    },
];

#[test]
fn conntrack_tool_and_ctnl_agree() {
    let Some(ns) = testkit::netns() else { return };
    if testkit::require_tool("conntrack").is_none() {
        return;
    }
    let mut ct = Conntrack::open().unwrap();
    for case in CASES {
        let want = (case.entry)();
        // 1. made by conntrack -I, decoded by ctnl
        ns.sh(&format!("{} 2>/dev/null", case.cmd));
        let key = Key {
            zone: want.zone,
            ..Key::orig(want.orig.clone().unwrap())
        };
        let got = ct.get(&key).unwrap_or_else(|e| panic!("{}: {e}", case.cmd));
        (case.check)(&got);
        assert_eq!(got.orig, want.orig, "{}", case.cmd);
        assert_eq!(got.reply, want.reply, "{}", case.cmd);
        let by_tool = listing(&ns, case.family);
        assert_eq!(by_tool.len(), 1, "{}: {by_tool:?}", case.cmd);

        // 2. the same entry made by ctnl lists identically
        ct.delete(&key).unwrap();
        assert!(listing(&ns, case.family).is_empty());
        ct.create(&want)
            .unwrap_or_else(|e| panic!("{}: ctnl create: {e}", case.cmd));
        let by_ctnl = listing(&ns, case.family);
        assert_eq!(by_ctnl, by_tool, "{}", case.cmd);
        (case.check)(&ct.get(&key).unwrap());
        ct.flush_all().unwrap();
    }
}

#[test]
fn ctnl_batch_is_seen_whole_by_conntrack_and_tool_deletes_are_seen_by_ctnl() {
    let Some(ns) = testkit::netns() else { return };
    if testkit::require_tool("conntrack").is_none() {
        return;
    }
    let mut ct = Conntrack::open().unwrap();
    let mut b = ct.batch();
    for i in 0..1000u16 {
        let o = Tuple::ports(ip("10.1.0.1"), ip("10.1.0.2"), 17, 10000 + i, 53);
        b.create(&{
            let mut x = Entry::new(o.clone(), o.reversed());
            x.timeout = Some(100);
            x.mark = Some(u32::from(i % 4));
            x
        })
        .unwrap();
    }
    assert_eq!(b.finish().unwrap().ok, 1000);
    let out = ns.sh("conntrack -C");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1000");
    let out = ns.sh("conntrack -L -m 3 2>/dev/null | wc -l");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "250");
    // conntrack -D with a filter; ctnl sees exactly what is left.
    ns.sh("conntrack -D -m 3 >/dev/null 2>&1");
    let left: Vec<Entry> = ct
        .dump(&DumpFilter::all())
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    assert_eq!(left.len(), 750);
    assert!(left.iter().all(|e| e.mark != Some(3)));
    // and ctnl's kernel-side filtered flush is what conntrack sees
    ct.flush(&DumpFilter::all().with_mark(1, !0)).unwrap();
    let out = ns.sh("conntrack -C");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "500");
}
