//! Kernel tests: every operation against the real conntrack table, each test in its own fresh network
//! namespace (created inside the test's thread by `testkit::netns()`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ctnl::{
    Conntrack, DumpFilter, Entry, Error, Event, EventKind, EventSocket, Family, Groups, Key, L4,
    ProtoInfo, Status, TcpInfo, Tuple, TupleFilter,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn udp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16) -> Entry {
    let orig = Tuple::ports(src, dst, 17, sport, dport);
    let mut e = Entry::new(orig.clone(), orig.reversed());
    e.timeout = Some(120);
    e
}

fn udp_n(i: u32) -> Entry {
    let [a, b, c, d] = (0x0a00_0000u32 + (i >> 8)).to_be_bytes();
    udp(
        IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
        v4(10, 99, 0, 1),
        1024 + (i & 0xff) as u16,
        53,
    )
}

fn count(ct: &mut Conntrack, f: &DumpFilter) -> usize {
    let mut n = 0;
    for e in ct.dump(f).unwrap() {
        e.unwrap();
        n += 1;
    }
    n
}

#[test]
fn create_get_update_delete() {
    let Some(_ns) = testkit::netns() else { return };
    let mut ct = Conntrack::open().unwrap();
    let mut e = udp(v4(10, 0, 0, 1), v4(10, 0, 0, 2), 1111, 53);
    e.mark = Some(7);
    ct.create(&e).unwrap();
    assert!(matches!(ct.create(&e), Err(Error::Exists)));

    let key = Key::orig(e.orig.clone().unwrap());
    let got = ct.get(&key).unwrap();
    assert_eq!(got.orig, e.orig);
    assert_eq!(got.reply, e.reply);
    assert_eq!(got.mark, Some(7));
    assert_eq!(got.family, Family::Ipv4);
    assert!(got.timeout.unwrap() <= 120 && got.timeout.unwrap() > 100);
    let id = got.id.expect("kernel sends CTA_ID");

    // get by reply tuple finds the same entry
    let by_reply = ct.get(&Key::reply(e.reply.clone().unwrap())).unwrap();
    assert_eq!(by_reply.id, Some(id));

    // update mark and timeout
    let mut u = {
        let mut x = Entry::default();
        x.family = Family::Ipv4;
        x.orig = e.orig.clone();
        x
    };
    u.mark = Some(42);
    u.timeout = Some(500);
    ct.update(&u).unwrap();
    let got = ct.get(&key).unwrap();
    assert_eq!(got.mark, Some(42));
    assert!(got.timeout.unwrap() > 400);

    // update of a missing entry
    let missing = udp(v4(10, 0, 0, 9), v4(10, 0, 0, 2), 1, 2);
    assert!(matches!(ct.update(&missing), Err(Error::NotFound)));

    // delete with a wrong id fails, with the right id succeeds
    assert!(matches!(
        ct.delete(&key.clone().with_id(id.wrapping_add(1))),
        Err(Error::NotFound)
    ));
    ct.delete(&key.clone().with_id(id)).unwrap();
    assert!(matches!(ct.get(&key), Err(Error::NotFound)));
    assert!(matches!(ct.delete(&key), Err(Error::NotFound)));
    assert_eq!(Error::NotFound.errno(), Some(libc::ENOENT));
}

#[test]
fn ipv6_tcp_with_protoinfo() {
    let Some(_ns) = testkit::netns() else { return };
    let mut ct = Conntrack::open().unwrap();
    let s = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
    let d = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2));
    let orig = Tuple::ports(s, d, 6, 40000, 443);
    let mut e = Entry::new(orig.clone(), orig.reversed());
    e.timeout = Some(300);
    e.status = Some(Status::SEEN_REPLY | Status::ASSURED);
    e.protoinfo = Some(ProtoInfo::Tcp({
        let mut x = TcpInfo::default();
        x.state = Some(3);
        x
    }));
    ct.create(&e).unwrap();
    let got = ct.get(&Key::orig(orig)).unwrap();
    assert_eq!(got.family, Family::Ipv6);
    let st = got.status.unwrap();
    assert!(
        st.contains(Status::ASSURED | Status::SEEN_REPLY | Status::CONFIRMED),
        "{st:?}"
    );
    match got.protoinfo {
        Some(ProtoInfo::Tcp(t)) => {
            assert_eq!(t.state, Some(3));
            assert!(t.wscale_orig.is_some() && t.flags_orig.is_some());
        }
        other => panic!("expected TCP protoinfo, got {other:?}"),
    }
}

#[test]
fn icmp_entry() {
    let Some(_ns) = testkit::netns() else { return };
    let mut ct = Conntrack::open().unwrap();
    let orig = Tuple {
        src: v4(10, 1, 0, 1),
        dst: v4(10, 1, 0, 2),
        proto: 1,
        l4: L4::Icmp {
            id: 77,
            kind: 8,
            code: 0,
        },
        zone: None,
        unknown: vec![],
    };
    let mut e = Entry::new(orig.clone(), orig.reversed());
    e.timeout = Some(30);
    ct.create(&e).unwrap();
    let got = ct.get(&Key::orig(orig.clone())).unwrap();
    assert_eq!(
        got.orig.as_ref().unwrap().l4,
        L4::Icmp {
            id: 77,
            kind: 8,
            code: 0
        }
    );
    assert_eq!(
        got.reply.as_ref().unwrap().l4,
        L4::Icmp {
            id: 77,
            kind: 0,
            code: 0
        }
    );
}

/// The ICMP tuple of type `kind` (code 0, id `kind`) between two addresses of `family`.
fn icmp_tuple(family: Family, kind: u8) -> Tuple {
    let (src, dst, proto, l4) = match family {
        Family::Ipv4 => (
            v4(10, 7, 0, 1),
            v4(10, 7, 0, 2),
            1,
            L4::Icmp {
                id: u16::from(kind),
                kind,
                code: 0,
            },
        ),
        Family::Ipv6 => (
            IpAddr::V6(Ipv6Addr::new(0xfd07, 0, 0, 0, 0, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(0xfd07, 0, 0, 0, 0, 0, 0, 2)),
            58,
            L4::Icmpv6 {
                id: u16::from(kind),
                kind,
                code: 0,
            },
        ),
    };
    Tuple {
        src,
        dst,
        proto,
        l4,
        zone: None,
        unknown: vec![],
    }
}

/// `icmp_reply_type` against the kernel, for all 256 types of both families: a ctnetlink create whose
/// tuples carry type `t` and its reply type succeeds exactly when `icmp_reply_type` knows one (the kernel
/// refuses a tuple whose type it cannot invert with `EINVAL`), and the entry comes back with that reply.
#[test]
fn icmp_reply_types_are_the_kernels_for_all_256_types() {
    let Some(_ns) = testkit::netns() else { return };
    let mut ct = Conntrack::open().unwrap();
    for family in [Family::Ipv4, Family::Ipv6] {
        let mut b = ct.batch();
        for t in 0..=255u8 {
            let o = icmp_tuple(family, t);
            let mut e = Entry::new(o.clone(), o.reversed());
            e.timeout = Some(60);
            b.create(&e).unwrap();
        }
        let report = b.finish().unwrap();
        for t in 0..=255u8 {
            match (
                ctnl::icmp_reply_type(family, t),
                report.result(usize::from(t)),
            ) {
                (Some(_), Ok(())) => {}
                (None, Err(Error::Invalid)) => {}
                (want, got) => panic!("{family:?} type {t}: reply {want:?}, kernel said {got:?}"),
            }
        }
        let mut n = 0;
        for e in ct.dump(&DumpFilter::family(family)).unwrap() {
            let e = e.unwrap();
            let (L4::Icmp { kind, .. } | L4::Icmpv6 { kind, .. }) = e.orig.as_ref().unwrap().l4
            else {
                panic!("{e:?}")
            };
            let (L4::Icmp { kind: r, .. } | L4::Icmpv6 { kind: r, .. }) =
                e.reply.as_ref().unwrap().l4
            else {
                panic!("{e:?}")
            };
            assert_eq!(ctnl::icmp_reply_type(family, kind), Some(r), "{e:?}");
            n += 1;
        }
        assert_eq!(n, if family == Family::Ipv4 { 8 } else { 4 });
    }
}

/// Sends one ICMP (`v6` false) or ICMPv6 message of `kind` (code 0, id `id`) to the loopback address
/// through a raw socket.
#[allow(unsafe_code)]
fn send_icmp(v6: bool, kind: u8, id: u16) {
    let mut msg = [kind, 0, 0, 0, (id >> 8) as u8, id as u8, 0, 1];
    // SAFETY: plain socket(2) call; the result is checked and closed below.
    let fd = unsafe {
        if v6 {
            libc::socket(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6)
        } else {
            libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP)
        }
    };
    assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
    let rc = if v6 {
        // The kernel fills in the ICMPv6 checksum of a raw ICMPv6 socket.
        // SAFETY: an all-zero sockaddr_in6 is valid; the fields are set below.
        let mut a: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
        a.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        a.sin6_addr.s6_addr = Ipv6Addr::LOCALHOST.octets();
        // SAFETY: `msg` and `a` are valid for the lengths passed and outlive the call.
        unsafe {
            libc::sendto(
                fd,
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&a as *const libc::sockaddr_in6).cast(),
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    } else {
        let sum = msg
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum::<u32>();
        let sum = !((sum & 0xffff) + (sum >> 16)) as u16;
        msg[2..4].copy_from_slice(&sum.to_be_bytes());
        // SAFETY: an all-zero sockaddr_in is valid; the fields are set below.
        let mut a: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        a.sin_family = libc::AF_INET as libc::sa_family_t;
        a.sin_addr.s_addr = u32::from(Ipv4Addr::LOCALHOST).to_be();
        // SAFETY: `msg` and `a` are valid for the lengths passed and outlive the call.
        unsafe {
            libc::sendto(
                fd,
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&a as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
    };
    let err = std::io::Error::last_os_error();
    // SAFETY: `fd` is the socket opened above, closed once.
    unsafe { libc::close(fd) };
    assert_eq!(rc, msg.len() as isize, "sendto type {kind}: {err}");
}

/// The same facts from real traffic: ICMP and ICMPv6 messages of every type (0 to 255) sent on loopback
/// in a namespace whose ruleset tracks connections. The kernel makes an entry only for the types that
/// open a connection (echo, timestamp, information and address-mask requests; ICMPv6 echo and node
/// information queries), and its reply tuple carries `icmp_reply_type` of the original type.
#[test]
fn icmp_traffic_of_every_type_gets_the_reply_type_icmp_reply_type_names() {
    let Some(nft) = testkit::require_tool("nft") else {
        return;
    };
    let Some(ns) = testkit::netns() else { return };
    ns.sh(&format!(
        "{0} add table inet ict && {0} add chain inet ict out '{{ type filter hook output priority 0; }}' && {0} add rule inet ict out ct state new counter",
        nft.display()
    ));
    for t in 0..=255u8 {
        send_icmp(false, t, 1000 + u16::from(t));
        send_icmp(true, t, 2000 + u16::from(t));
    }
    let mut ct = Conntrack::open().unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for e in ct.dump(&DumpFilter::all()).unwrap() {
        let e = e.unwrap();
        let (o, r) = (e.orig.as_ref().unwrap(), e.reply.as_ref().unwrap());
        let (family, kind, reply) = match (o.l4, r.l4) {
            (L4::Icmp { kind, .. }, L4::Icmp { kind: r, .. }) => (Family::Ipv4, kind, r),
            (L4::Icmpv6 { kind, .. }, L4::Icmpv6 { kind: r, .. }) => (Family::Ipv6, kind, r),
            _ => continue,
        };
        assert_eq!(ctnl::icmp_reply_type(family, kind), Some(reply), "{e:?}");
        seen.insert((family, kind));
    }
    let want: std::collections::BTreeSet<(Family, u8)> = [
        (Family::Ipv4, 8),
        (Family::Ipv4, 13),
        (Family::Ipv4, 15),
        (Family::Ipv4, 17),
        (Family::Ipv6, 128),
        (Family::Ipv6, 139),
    ]
    .into_iter()
    .collect();
    assert_eq!(seen, want);
}

/// 3000 UDP entries (`udp_n(0..3000)`), entry `i` with mark `i % 3`.
fn create_3000_marked(ct: &mut Conntrack) {
    let mut batch = ct.batch();
    for i in 0..3000u32 {
        let mut e = udp_n(i);
        e.mark = Some(i % 3);
        batch.create(&e).unwrap();
    }
    let r = batch.finish().unwrap();
    assert_eq!((r.total, r.ok, r.failures.len()), (3000, 3000, 0));
}

#[test]
fn dump_streams_everything_and_filters() {
    let Some(_ns) = testkit::netns() else { return };
    let mut ct = Conntrack::open().unwrap();
    create_3000_marked(&mut ct);

    assert_eq!(count(&mut ct, &DumpFilter::all()), 3000);
    assert_eq!(count(&mut ct, &DumpFilter::family(Family::Ipv4)), 3000);
    assert_eq!(count(&mut ct, &DumpFilter::family(Family::Ipv6)), 0);
    let by_mark = DumpFilter::all().with_mark(1, 0xffff_ffff);
    assert_eq!(count(&mut ct, &by_mark), 1000);
    for e in ct.dump(&by_mark).unwrap() {
        assert_eq!(e.unwrap().mark, Some(1));
    }
    // tuple filter via CTA_FILTER: source 10.0.0.x (i < 256) and source port 1024+5
    let tf = DumpFilter::all().with_orig(
        TupleFilter::new()
            .with_src(v4(10, 0, 0, 0))
            .with_proto(17)
            .with_sport(1029),
    );
    let hits: Vec<Entry> = ct.dump(&tf).unwrap().map(|e| e.unwrap()).collect();
    assert_eq!(hits.len(), 1);
    assert_eq!(
        hits[0].orig.as_ref().unwrap().l4,
        L4::Ports { src: 1029, dst: 53 }
    );
    // reply-direction filter
    let rf = DumpFilter::all().with_reply(TupleFilter::new().with_proto(17).with_dport(1024));
    assert_eq!(count(&mut ct, &rf), 3000usize.div_ceil(256));
    // status filter: none are ASSURED
    let sf = DumpFilter::all().with_status(Status::ASSURED, Status::ASSURED);
    assert_eq!(count(&mut ct, &sf), 0);

    // a dump abandoned half way leaves the socket usable
    {
        let mut d = ct.dump(&DumpFilter::all()).unwrap();
        for _ in 0..10 {
            d.next().unwrap().unwrap();
        }
    }
    assert_eq!(ct.stats().unwrap().entries, 3000);
    assert_eq!(count(&mut ct, &DumpFilter::all()), 3000);
}

#[test]
fn raw_dump_items_decode_elsewhere_to_what_the_iterator_yields() {
    let Some(_ns) = testkit::netns() else { return };
    let mut ct = Conntrack::open().unwrap();
    create_3000_marked(&mut ct);
    for filter in [
        DumpFilter::all(),
        DumpFilter::all().with_mark(2, 0xffff_ffff),
    ] {
        let want: Vec<Entry> = ct.dump(&filter).unwrap().map(|e| e.unwrap()).collect();
        // The socket owner only copies datagrams; another thread decodes and filters them.
        let (tx, rx) = std::sync::mpsc::channel::<ctnl::RawItems>();
        let user = filter.clone();
        let decoder = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut e = Entry::default();
            for raw in rx {
                for item in raw.iter() {
                    item.decode_into(&mut e).unwrap();
                    if user.is_empty() || user.matches(&e) {
                        got.push(e.clone());
                    }
                    let typed: Entry = item.decode().unwrap();
                    assert_eq!(typed, e);
                }
            }
            got
        });
        let mut dump = ct.dump(&filter).unwrap();
        assert_eq!(dump.user_filter().is_some(), !filter.is_empty());
        let mut datagrams = 0;
        loop {
            // One datagram, then two more appended to the same set when there are.
            let mut raw = ctnl::RawItems::with_capacity(64 * 1024);
            match dump.next_raw(&mut raw) {
                None => break,
                Some(r) => r.unwrap(),
            }
            datagrams += 1;
            let one = (raw.len(), raw.encoded_len());
            for _ in 0..2 {
                if let Some(r) = dump.next_raw(&mut raw) {
                    r.unwrap();
                    datagrams += 1;
                }
            }
            assert!(one.0 > 0 && raw.len() >= one.0 && raw.encoded_len() >= one.1);
            assert_eq!(raw.len(), raw.iter().count());
            tx.send(raw).unwrap();
        }
        assert!(dump.next_raw(&mut ctnl::RawItems::new()).is_none());
        drop(dump);
        drop(tx);
        let got = decoder.join().unwrap();
        // Two dumps of the same table, a moment apart: the same entries in the same order (the
        // timeouts may have ticked).
        let key = |v: &[Entry]| -> Vec<(Option<u32>, Option<u32>, Option<Tuple>)> {
            v.iter().map(|e| (e.id, e.mark, e.orig.clone())).collect()
        };
        assert_eq!(got.len(), want.len());
        assert!(
            key(&got) == key(&want),
            "raw items differ from the iterator's"
        );
        assert!(datagrams > 1, "3000 entries take several datagrams");
    }
    // The socket is clean afterwards.
    assert_eq!(count(&mut ct, &DumpFilter::all()), 3000);
}

#[test]
fn zones() {
    let Some(_ns) = testkit::netns() else { return };
    let mut ct = Conntrack::open().unwrap();
    for z in [0u16, 5, 5, 9] {
        let mut e = udp(v4(10, 2, 0, 1), v4(10, 2, 0, 2), 1000 + z, 53);
        if z == 5 {
            // two distinct entries in zone 5
            e = udp(
                v4(10, 2, 0, 1),
                v4(10, 2, 0, 2),
                1000 + z + (ct.stats().unwrap().entries as u16),
                53,
            );
        }
        e.zone = Some(z);
        ct.create(&e).unwrap();
    }
    let f = DumpFilter::all().with_zone(5);
    let got: Vec<Entry> = ct.dump(&f).unwrap().map(|e| e.unwrap()).collect();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|e| e.zone == Some(5)));
    // same tuple can exist in two zones; get needs the zone
    let mut a = udp(v4(10, 3, 0, 1), v4(10, 3, 0, 2), 1, 2);
    a.zone = Some(1);
    ct.create(&a).unwrap();
    a.zone = Some(2);
    ct.create(&a).unwrap();
    let k = Key::orig(a.orig.clone().unwrap()).with_zone(2);
    assert_eq!(ct.get(&k).unwrap().zone, Some(2));
    ct.delete(&k).unwrap();
    assert!(matches!(ct.get(&k), Err(Error::NotFound)));
    assert!(ct.get(&k.clone().with_zone(1)).is_ok());
}

#[test]
fn batch_reports_each_failure_by_index() {
    let Some(_ns) = testkit::netns() else { return };
    let mut ct = Conntrack::open().unwrap();
    // Pre-create every 7th entry so that those creates fail with EEXIST.
    let mut b = ct.batch();
    for i in (0..5000u32).filter(|i| i % 7 == 0) {
        b.create(&udp_n(i)).unwrap();
    }
    b.finish().unwrap();
    let mut b = ct.batch();
    for i in 0..5000u32 {
        b.create(&udp_n(i)).unwrap();
    }
    let r = b.finish().unwrap();
    assert_eq!(r.total, 5000);
    let expected_fail = (0..5000).filter(|i| i % 7 == 0).count();
    assert_eq!(r.failures.len(), expected_fail);
    assert_eq!(r.ok, 5000 - expected_fail);
    for (i, res) in r.results().enumerate() {
        if i % 7 == 0 {
            assert!(matches!(res, Err(Error::Exists)), "entry {i}: {res:?}");
        } else {
            assert!(res.is_ok(), "entry {i}: {res:?}");
        }
    }
    // batched update (half exist) and batched delete
    let mut b = ct.batch();
    for i in 0..6000u32 {
        let mut e = udp_n(i);
        e.mark = Some(99);
        b.update(&e).unwrap();
    }
    let r = b.finish().unwrap();
    assert_eq!(r.ok, 5000);
    assert!(
        r.failures
            .iter()
            .all(|(i, e)| *i >= 5000 && matches!(e, Error::NotFound))
    );
    let f = DumpFilter::all().with_mark(99, !0);
    assert_eq!(count(&mut ct, &f), 5000);

    let mut b = ct.batch();
    for i in 0..5000u32 {
        b.delete(&Key::orig(udp_n(i).orig.unwrap())).unwrap();
    }
    b.delete(&Key::orig(udp_n(5000).orig.unwrap())).unwrap();
    let r = b.finish().unwrap();
    assert_eq!(r.ok, 5000);
    assert_eq!(r.failures.len(), 1);
    assert_eq!(r.failures[0].0, 5000);
    assert_eq!(count(&mut ct, &DumpFilter::all()), 0);
}

#[test]
fn prepared_operations_encoded_on_other_threads_apply_like_direct_ones() {
    let Some(_ns) = testkit::netns() else { return };
    let mut ct = Conntrack::open().unwrap();
    ct.create(&udp_n(3)).unwrap();
    // Two threads encode halves without a socket; the owner of the socket queues them in order.
    let (a, b) = std::thread::scope(|sc| {
        let h = sc.spawn(|| {
            let mut p = ctnl::Prepared::new();
            for i in 2000..4000u32 {
                p.create(&udp_n(i)).unwrap();
            }
            p
        });
        let mut p = ctnl::Prepared::with_capacity(1 << 16);
        for i in 0..2000u32 {
            p.create(&udp_n(i)).unwrap();
        }
        (p, h.join().unwrap())
    });
    assert_eq!((a.len(), b.len()), (2000, 2000));
    assert!(a.encoded_len() >= 2000 * 60);
    let mut batch = ct.batch();
    batch.create(&udp_n(4000)).unwrap();
    batch.extend(&a).unwrap();
    batch.extend(&b).unwrap();
    let r = batch.finish().unwrap();
    assert_eq!(r.total, 4001);
    assert_eq!(r.ok, 4000);
    // Entry 3 existed: it is operation 1 + 3 of the batch.
    assert_eq!(r.failures.len(), 1);
    assert_eq!(r.failures[0].0, 4);
    assert!(matches!(r.failures[0].1, Error::Exists));
    assert_eq!(count(&mut ct, &DumpFilter::all()), 4001);

    // Updates and deletes prepared the same way.
    let mut p = ctnl::Prepared::new();
    for i in 0..10u32 {
        let mut e = udp_n(i);
        e.mark = Some(5);
        p.update(&e).unwrap();
    }
    for i in 10..4001u32 {
        p.delete(&Key::orig(udp_n(i).orig.unwrap())).unwrap();
    }
    p.delete(&Key::orig(udp_n(9999).orig.unwrap())).unwrap();
    let mut batch = ct.batch();
    batch.extend(&p).unwrap();
    let r = batch.finish().unwrap();
    assert_eq!((r.total, r.ok), (4002, 4001));
    assert_eq!(r.failures[0].0, 4001);
    assert!(matches!(r.failures[0].1, Error::NotFound));
    let marked = DumpFilter::all().with_mark(5, !0);
    assert_eq!(count(&mut ct, &marked), 10);
    assert_eq!(count(&mut ct, &DumpFilter::all()), 10);
    p.clear();
    assert!(p.is_empty() && p.encoded_len() == 0);
}

#[test]
fn flushes() {
    let Some(_ns) = testkit::netns() else { return };
    let mut ct = Conntrack::open().unwrap();
    let s6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let d6 = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2));
    let fill = |ct: &mut Conntrack| {
        let mut b = ct.batch();
        for i in 0..200u32 {
            let mut e = udp_n(i);
            e.mark = Some(i % 2);
            b.create(&e).unwrap();
            b.create(&udp(s6, d6, 2000 + i as u16, 53)).unwrap();
        }
        let r = b.finish().unwrap();
        assert_eq!(r.ok, 400);
    };
    fill(&mut ct);
    ct.flush_family(Family::Ipv6).unwrap();
    assert_eq!(count(&mut ct, &DumpFilter::family(Family::Ipv6)), 0);
    assert_eq!(count(&mut ct, &DumpFilter::family(Family::Ipv4)), 200);
    ct.flush_all().unwrap();
    assert_eq!(count(&mut ct, &DumpFilter::all()), 0);

    fill(&mut ct);
    // kernel-side filtered flush (mark)
    let out = ct.flush(&DumpFilter::all().with_mark(1, !0)).unwrap();
    assert!(out.kernel_side);
    assert_eq!(count(&mut ct, &DumpFilter::all()), 300);
    // tuple filter: dump + batched delete
    let tf = DumpFilter::all().with_orig(
        TupleFilter::new()
            .with_proto(17)
            .with_dport(53)
            .with_src(s6),
    );
    let out = ct.flush(&tf).unwrap();
    assert!(!out.kernel_side);
    assert_eq!(out.deleted, Some(200));
    assert_eq!(count(&mut ct, &DumpFilter::all()), 100);
    assert!(
        ct.dump(&DumpFilter::all())
            .unwrap()
            .all(|e| e.unwrap().family == Family::Ipv4)
    );
}

#[test]
fn stats_and_zero_counters() {
    let Some(ns) = testkit::netns() else { return };
    ns.sysctl("net/netfilter/nf_conntrack_acct", "1");
    let mut ct = Conntrack::open().unwrap();
    let per_cpu = ct.stats_cpu().unwrap();
    assert!(!per_cpu.is_empty());
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    assert!(
        per_cpu.len() >= cpus,
        "{} per-cpu records for {cpus} cpus",
        per_cpu.len()
    );
    let g = ct.stats().unwrap();
    assert_eq!(g.entries, 0);
    assert!(g.max_entries > 0);

    // Real traffic so that counters move: UDP over loopback. Conntrack hooks into a namespace only once a
    // ruleset uses it, so load a one-rule nftables table first.
    if !testkit::require("nft", testkit::which("nft").is_some()) {
        return;
    }
    ns.sh("nft add table inet ctnl_t && nft 'add chain inet ctnl_t out { type filter hook output priority 0; }' && nft add rule inet ctnl_t out ct state new counter");
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..5 {
        tx.send_to(b"hello", rx.local_addr().unwrap()).unwrap();
    }
    let f = DumpFilter::all().with_orig(
        TupleFilter::new()
            .with_proto(17)
            .with_dport(rx.local_addr().unwrap().port()),
    );
    let before: Vec<Entry> = ct.zero_counters(&f).unwrap().map(|e| e.unwrap()).collect();
    assert_eq!(before.len(), 1);
    let c = before[0].counters_orig.expect("acct on");
    assert_eq!(c.packets, 5);
    assert_eq!(c.bytes, 5 * (20 + 8 + 5));
    let after: Vec<Entry> = ct.dump(&f).unwrap().map(|e| e.unwrap()).collect();
    assert_eq!(after[0].counters_orig.unwrap().packets, 0);
    // one entry: read and zero
    tx.send_to(b"again", rx.local_addr().unwrap()).unwrap();
    let key = Key::of(&after[0]).unwrap();
    assert_eq!(
        ct.get_zero_counters(&key)
            .unwrap()
            .counters_orig
            .unwrap()
            .packets,
        1
    );
    assert_eq!(ct.get(&key).unwrap().counters_orig.unwrap().packets, 0);
    assert_eq!(ct.stats().unwrap().entries, 1);
}

#[test]
fn dying_and_unconfirmed_lists_dump() {
    let Some(_ns) = testkit::netns() else { return };
    let mut ct = Conntrack::open().unwrap();
    // Both lists are normally empty or nearly so; the requests must succeed and decode.
    let dying: Result<Vec<Entry>, Error> = ct.dump_dying().unwrap().collect();
    let unconfirmed: Result<Vec<Entry>, Error> = ct.dump_unconfirmed().unwrap().collect();
    assert!(dying.unwrap().iter().all(|e| e.orig.is_some()));
    assert!(unconfirmed.unwrap().iter().all(|e| e.orig.is_some()));
    // and the socket is still in step
    assert_eq!(ct.stats().unwrap().entries, 0);
}

#[test]
fn events_new_update_destroy() {
    let Some(_ns) = testkit::netns() else { return };
    let mut ev = EventSocket::open(Groups::CONNTRACK).unwrap();
    ev.set_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut ct = Conntrack::open().unwrap();
    let e = udp(v4(10, 4, 0, 1), v4(10, 4, 0, 2), 5, 6);
    ct.create(&e).unwrap();
    let mut u = e.clone();
    u.mark = Some(3);
    ct.update(&u).unwrap();
    ct.delete(&Key::orig(e.orig.clone().unwrap())).unwrap();
    let mut kinds = Vec::new();
    while let Some(ev) = ev.next_event().unwrap() {
        if let Event::Conntrack { kind, entry } = ev {
            assert_eq!(entry.orig, e.orig);
            kinds.push(kind);
        }
        if kinds.len() == 3 {
            break;
        }
    }
    assert_eq!(
        kinds,
        vec![EventKind::New, EventKind::Update, EventKind::Destroy]
    );
}

/// `poll(2)` on one descriptor for up to `ms` milliseconds; true when it is readable.
#[allow(unsafe_code)]
fn readable(fd: std::os::fd::RawFd, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd that outlives the call, and the count passed is 1.
    let n = unsafe { libc::poll(&mut p, 1, ms) };
    assert!(n >= 0, "poll: {}", std::io::Error::last_os_error());
    n == 1 && p.revents & libc::POLLIN != 0
}

/// A non-blocking event socket in a poll loop: nothing queued gives `WouldBlock` at once (no timeout is
/// set, so a blocking receive would hang), the descriptor polls readable only once events are queued,
/// and draining until `WouldBlock` yields every event of the datagrams received, in order.
#[test]
fn event_socket_in_a_poll_loop() {
    use ctnl::TryRecv;
    use std::os::fd::{AsFd, AsRawFd};
    let Some(_ns) = testkit::netns() else { return };
    let mut ev = EventSocket::open(Groups::CONNTRACK).unwrap();
    ev.set_nonblocking(true).unwrap();
    assert_eq!(ev.as_fd().as_raw_fd(), ev.as_raw_fd());
    let t0 = std::time::Instant::now();
    assert_eq!(ev.try_recv().unwrap(), TryRecv::WouldBlock);
    assert!(matches!(ev.next_event(), Ok(None)));
    assert!(t0.elapsed() < Duration::from_secs(1), "a receive blocked");
    assert!(!ev.has_buffered());
    assert!(
        !readable(ev.as_raw_fd(), 50),
        "readable with nothing queued"
    );

    let mut ct = Conntrack::open().unwrap();
    let mut b = ct.batch();
    for i in 0..200 {
        b.create(&udp_n(i)).unwrap();
    }
    assert_eq!(b.finish().unwrap().ok, 200);
    let mut seen = Vec::new();
    while seen.len() < 200 {
        assert!(
            readable(ev.as_raw_fd(), 5000),
            "no event after {}",
            seen.len()
        );
        loop {
            match ev.try_recv().unwrap() {
                TryRecv::Event(Event::Conntrack {
                    kind: EventKind::New,
                    entry,
                }) => seen.push(entry.orig.unwrap()),
                TryRecv::Event(other) => panic!("unexpected {other:?}"),
                TryRecv::WouldBlock => break,
            }
        }
        assert!(!ev.has_buffered());
    }
    let want: Vec<Tuple> = (0..200).map(|i| udp_n(i).orig.unwrap()).collect();
    assert_eq!(seen, want);
    assert_eq!(ev.try_recv().unwrap(), TryRecv::WouldBlock);
    assert!(!readable(ev.as_raw_fd(), 50));

    // Back to blocking with a timeout: the same socket waits, then reports nothing.
    ev.set_nonblocking(false).unwrap();
    ev.set_timeout(Some(Duration::from_millis(200))).unwrap();
    let t0 = std::time::Instant::now();
    assert_eq!(ev.try_recv().unwrap(), TryRecv::WouldBlock);
    assert!(t0.elapsed() >= Duration::from_millis(150), "did not wait");
}

/// The key case: 50,000 creates while listening. Every event must arrive, or the loss must be
/// reported as `Error::Overrun`; here the event socket is sized for the burst, so all must arrive.
#[test]
fn burst_50k_events_all_delivered_or_overrun() {
    let Some(_ns) = testkit::netns() else { return };
    const N: u32 = 50_000;
    let mut ev = EventSocket::open(Groups::NEW).unwrap();
    ev.set_timeout(Some(Duration::from_secs(1))).unwrap();
    // The whole burst is sent before the listener reads anything: the default queue must hold it.
    let mut ct = Conntrack::open().unwrap();
    let mut b = ct.batch();
    for i in 0..N {
        b.create(&udp_n(i)).unwrap();
    }
    assert_eq!(b.finish().unwrap().ok, N as usize);
    let mut seen = std::collections::HashSet::new();
    let mut overrun = false;
    loop {
        match ev.next_event() {
            Ok(Some(Event::Conntrack {
                kind: EventKind::New,
                entry,
            })) => {
                seen.insert(entry.orig.unwrap());
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(Error::Overrun) => overrun = true,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        overrun || seen.len() == N as usize,
        "got {} of {N} events without an overrun report",
        seen.len()
    );
    assert!(
        !overrun,
        "the default event queue overran on a {N}-event burst"
    );

    // And with a deliberately tiny queue the loss is reported, never silent.
    let mut small = EventSocket::open_with(Groups::DESTROY, 4096).unwrap();
    small.set_timeout(Some(Duration::from_secs(1))).unwrap();
    ct.flush_all().unwrap();
    let mut got = 0usize;
    let mut overrun = false;
    loop {
        match small.next_event() {
            Ok(Some(_)) => got += 1,
            Ok(None) => break,
            Err(Error::Overrun) => overrun = true,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        overrun || got == N as usize,
        "lost events silently: {got} of {N}"
    );
    assert!(overrun, "a 4 KiB queue cannot hold {N} destroy events");
}

#[test]
fn permission_and_invalid_errors_are_typed() {
    let Some(_ns) = testkit::netns() else { return };
    let mut ct = Conntrack::open().unwrap();
    // An entry without a reply tuple is refused as invalid.
    let e = {
        let mut x = Entry::default();
        x.family = Family::Ipv4;
        x.orig = Some(Tuple::ports(v4(1, 1, 1, 1), v4(2, 2, 2, 2), 17, 1, 2));
        x.timeout = Some(10);
        x
    };
    let err = ct.create(&e).unwrap_err();
    assert!(matches!(err, Error::Invalid), "{err:?}");
    assert_eq!(err.errno(), Some(libc::EINVAL));
    // Port filter without a protocol is refused before sending.
    let bad = DumpFilter::all().with_orig(TupleFilter::new().with_sport(1));
    assert!(matches!(ct.dump(&bad), Err(Error::Emit(_))));
}

fn ftp_master(ct: &mut Conntrack, sport: u16) -> Tuple {
    let orig = Tuple::ports(v4(10, 5, 0, 1), v4(10, 5, 0, 2), 6, sport, 21);
    let mut m = Entry::new(orig.clone(), orig.reversed());
    m.timeout = Some(300);
    m.status = Some(Status::SEEN_REPLY | Status::ASSURED);
    m.protoinfo = Some(ProtoInfo::Tcp({
        let mut x = TcpInfo::default();
        x.state = Some(3);
        x
    }));
    m.helper = Some(ctnl::Helper {
        name: "ftp".into(),
        info: None,
    });
    ct.create(&m).unwrap();
    let got = ct.get(&Key::orig(orig.clone())).unwrap();
    assert_eq!(got.helper.as_ref().map(|h| h.name.as_str()), Some("ftp"));
    assert!(got.status.unwrap().contains(Status::HELPER));
    orig
}

fn ftp_expect(master: &Tuple, port: u16) -> ctnl::Expect {
    let tuple = Tuple::ports(v4(10, 5, 0, 2), v4(10, 5, 0, 1), 6, 20, port);
    let mask = Tuple::ports(v4(255, 255, 255, 255), v4(255, 255, 255, 255), 6, 0, 0xffff);
    {
        let mut x = ctnl::Expect::default();
        x.family = Family::Ipv4;
        x.master = Some(master.clone());
        x.tuple = Some(tuple);
        x.mask = Some(mask);
        x.timeout = Some(100);
        x.helper = Some("ftp".into());
        x
    }
}

#[test]
fn expectations_create_get_dump_delete_flush_events() {
    let Some(_ns) = testkit::netns() else { return };
    let mut ev = EventSocket::open(Groups::EXPECT).unwrap();
    ev.set_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut ct = Conntrack::open().unwrap();
    // The ftp helper allows one expectation per master: three masters, one expectation each.
    let masters: Vec<Tuple> = (0..3).map(|i| ftp_master(&mut ct, 40000 + i)).collect();
    for (i, m) in masters.iter().enumerate() {
        ct.create_expect(&ftp_expect(m, 2000 + i as u16)).unwrap();
    }
    // Creating the same expectation again is refused (create asks for NLM_F_EXCL).
    assert!(matches!(
        ct.create_expect(&ftp_expect(&masters[0], 2000)),
        Err(Error::Exists)
    ));

    let all: Vec<ctnl::Expect> = ct.dump_expect(None).unwrap().map(|x| x.unwrap()).collect();
    assert_eq!(all.len(), 3);
    for x in &all {
        assert!(masters.contains(x.master.as_ref().unwrap()));
        assert_eq!(x.helper.as_deref(), Some("ftp"));
        // the kernel takes the timeout from the helper's policy (ftp: 300 s), not from the request
        assert!(x.timeout.unwrap() <= 300 && x.id.is_some(), "{x:?}");
        assert_eq!(
            x.mask.as_ref().unwrap().l4,
            L4::Ports {
                src: 0,
                dst: 0xffff
            }
        );
    }
    assert_eq!(ct.dump_expect(Some(Family::Ipv6)).unwrap().count(), 0);

    let t = ftp_expect(&masters[1], 2001).tuple.unwrap();
    let got = ct.get_expect(&t, None).unwrap();
    assert_eq!(got.tuple.as_ref(), Some(&t));
    assert!(matches!(
        ct.get_expect(&t, Some(got.id.unwrap().wrapping_add(1))),
        Err(Error::NotFound)
    ));
    ct.delete_expect(&t, got.id).unwrap();
    assert!(matches!(ct.get_expect(&t, None), Err(Error::NotFound)));
    assert_eq!(ct.dump_expect(None).unwrap().count(), 2);

    let stats = ct.expect_stats_cpu().unwrap();
    assert!(
        stats.iter().map(|s| u64::from(s.create)).sum::<u64>() >= 3,
        "{stats:?}"
    );

    // A one-family flush leaves the other family's expectations alone (the kernel's own expectation
    // flush ignores the family and would take all of them).
    ct.flush_expect(Some(Family::Ipv6)).unwrap();
    assert_eq!(ct.dump_expect(None).unwrap().count(), 2);
    ct.flush_expect(None).unwrap();
    assert_eq!(ct.dump_expect(None).unwrap().count(), 0);

    let mut kinds = Vec::new();
    while let Some(e) = ev.next_event().unwrap() {
        if let Event::Expect { kind, expect } = e {
            assert!(masters.contains(expect.master.as_ref().unwrap()));
            kinds.push(kind);
        }
    }
    // three creates; one delete and a flush of the other two
    assert_eq!(
        kinds.iter().filter(|k| **k == EventKind::New).count(),
        3,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == EventKind::Destroy).count(),
        3,
        "{kinds:?}"
    );
}

#[test]
fn labels_nat_seqadj_and_timestamps() {
    let Some(ns) = testkit::netns() else { return };
    ns.sysctl("net/netfilter/nf_conntrack_timestamp", "1");
    // Entries get a label area only once a ruleset in the namespace uses labels.
    if !testkit::require("nft", testkit::which("nft").is_some()) {
        return;
    }
    ns.sh("nft add table inet ctnl_l && nft 'add chain inet ctnl_l c { type filter hook output priority 0; }' && nft add rule inet ctnl_l c ct label 127 counter");
    let mut ct = Conntrack::open().unwrap();

    // labels: set bits 1 and 40 on create, then change them with a mask on update
    let o = Tuple::ports(v4(10, 6, 0, 1), v4(10, 6, 0, 2), 17, 1, 2);
    let mut e = Entry::new(o.clone(), o.reversed());
    e.timeout = Some(60);
    let mut labels = vec![0u8; 16];
    labels[0] = 0b10;
    labels[5] = 0b1;
    e.labels = Some(labels.clone());
    ct.create(&e).unwrap();
    let got = ct.get(&Key::orig(o.clone())).unwrap();
    assert_eq!(got.labels.as_deref(), Some(&labels[..]));
    assert!(got.timestamp.unwrap().start.is_some());
    let mut u = {
        let mut x = Entry::default();
        x.family = Family::Ipv4;
        x.orig = Some(o.clone());
        x
    };
    let mut set = vec![0u8; 16];
    set[15] = 0x80;
    let mut mask = vec![0u8; 16];
    mask[15] = 0x80;
    mask[0] = 0b10; // clear bit 1
    u.labels = Some(set);
    u.labels_mask = Some(mask);
    ct.update(&u).unwrap();
    let got = ct.get(&Key::orig(o)).unwrap();
    let l = got.labels.unwrap();
    assert_eq!((l[0], l[5], l[15]), (0, 1, 0x80));

    // NAT: a DNAT range on create is applied to the reply tuple by the kernel
    let o = Tuple::ports(v4(10, 7, 0, 1), v4(192, 0, 2, 1), 17, 3000, 53);
    let mut n = Entry::new(o.clone(), o.reversed());
    n.timeout = Some(60);
    n.nat_dst = Some(ctnl::NatRange {
        min_ip: Some(v4(10, 7, 0, 9)),
        max_ip: Some(v4(10, 7, 0, 9)),
        min_port: Some(5353),
        max_port: Some(5353),
    });
    ct.create(&n).unwrap();
    let got = ct.get(&Key::orig(o)).unwrap();
    let r = got.reply.unwrap();
    assert_eq!(
        (r.src, r.l4),
        (
            v4(10, 7, 0, 9),
            L4::Ports {
                src: 5353,
                dst: 3000
            }
        )
    );
    assert!(
        got.status
            .unwrap()
            .contains(Status::DST_NAT | Status::DST_NAT_DONE),
        "{:?}",
        got.status
    );

    // sequence adjustment on a TCP entry, read back. Events only exist for entries created while someone
    // listens (the kernel skips the event extension otherwise), so the listener comes first.
    let mut ev = EventSocket::open(Groups::DESTROY).unwrap();
    ev.set_timeout(Some(Duration::from_secs(2))).unwrap();
    let o = Tuple::ports(v4(10, 8, 0, 1), v4(10, 8, 0, 2), 6, 4000, 21);
    let mut t = Entry::new(o.clone(), o.reversed());
    t.timeout = Some(60);
    t.protoinfo = Some(ProtoInfo::Tcp({
        let mut x = TcpInfo::default();
        x.state = Some(3);
        x
    }));
    let adj = ctnl::SeqAdj {
        correction_pos: Some(100),
        offset_before: Some(5),
        offset_after: Some(9),
    };
    t.seq_adj_orig = Some(adj);
    ct.create(&t).unwrap();
    let got = ct.get(&Key::orig(o.clone())).unwrap();
    assert_eq!(got.seq_adj_orig, Some(adj));
    assert!(got.status.unwrap().contains(Status::SEQ_ADJUST));

    // a DESTROY event carries the stop timestamp
    ct.delete(&Key::orig(o)).unwrap();
    match ev.next_event().unwrap() {
        Some(Event::Conntrack {
            kind: EventKind::Destroy,
            entry,
        }) => {
            let ts = entry.timestamp.unwrap();
            assert!(ts.stop.unwrap() >= ts.start.unwrap());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn filtered_flush_by_ipv4_tuple_and_zone_is_exact() {
    let Some(_ns) = testkit::netns() else { return };
    let mut ct = Conntrack::open().unwrap();
    let mut b = ct.batch();
    for i in 0..400u32 {
        let mut e = udp_n(i);
        if i % 4 == 0 {
            // dport 53 -> 5353 on every fourth
            let o = Tuple::ports(
                e.orig.as_ref().unwrap().src,
                v4(10, 99, 0, 1),
                17,
                1024 + (i & 0xff) as u16,
                5353,
            );
            e = {
                let mut x = Entry::new(o.clone(), o.reversed());
                x.timeout = Some(120);
                x
            };
        }
        e.zone = Some((i % 3) as u16);
        b.create(&e).unwrap();
    }
    assert_eq!(b.finish().unwrap().ok, 400);

    // tuple filter (IPv4 family known): one kernel request where the kernel takes CTA_FILTER on a flush
    let f = DumpFilter::all()
        .with_family(Family::Ipv4)
        .with_orig(TupleFilter::new().with_proto(17).with_dport(5353));
    let out = ct.flush(&f).unwrap();
    assert_eq!(count(&mut ct, &DumpFilter::all()), 300, "{out:?}");
    assert!(
        ct.dump(&DumpFilter::all())
            .unwrap()
            .all(|e| { e.unwrap().orig.unwrap().l4 != L4::Ports { src: 0, dst: 5353 } })
    );

    // zone 0 (the default zone) and zone 2, exactly
    for z in [0u16, 2] {
        let before = count(&mut ct, &DumpFilter::all());
        let in_zone = count(&mut ct, &DumpFilter::all().with_zone(z));
        assert!(in_zone > 0);
        let out = ct.flush(&DumpFilter::all().with_zone(z)).unwrap();
        assert_eq!(
            count(&mut ct, &DumpFilter::all()),
            before - in_zone,
            "zone {z}: {out:?}"
        );
        assert_eq!(count(&mut ct, &DumpFilter::all().with_zone(z)), 0);
    }
    let left: Vec<Entry> = ct
        .dump(&DumpFilter::all())
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    assert!(!left.is_empty() && left.iter().all(|e| e.zone == Some(1)));
}

#[test]
fn per_direction_zone() {
    let Some(_ns) = testkit::netns() else { return };
    let mut ct = Conntrack::open().unwrap();
    // A zone on the original direction only (`conntrack -I --orig-zone 3`).
    let mut o = Tuple::ports(v4(10, 11, 0, 1), v4(10, 11, 0, 2), 17, 1, 2);
    let r = o.reversed();
    o.zone = Some(3);
    let e = {
        let mut x = Entry::new(o.clone(), r);
        x.timeout = Some(60);
        x
    };
    ct.create(&e).unwrap();
    let got: Vec<Entry> = ct
        .dump(&DumpFilter::all())
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].orig.as_ref().unwrap().zone, Some(3));
    assert_eq!(got[0].reply.as_ref().unwrap().zone, None);
    // CTA_ZONE is only sent for a zone that covers both directions.
    assert_eq!(got[0].zone, None);
    // get by the zoned original tuple finds it
    assert_eq!(ct.get(&Key::orig(o)).unwrap().id, got[0].id);
}

#[test]
fn dying_list_holds_entries_whose_destroy_event_is_undelivered() {
    let Some(_ns) = testkit::netns() else { return };
    // A reliable listener that never reads, with a tiny queue: destroy events cannot be delivered, so the
    // kernel keeps the deleted entries on its dying list and retries.
    let mut stuck = EventSocket::open_with(Groups::DESTROY, 1024).unwrap();
    stuck.set_reliable(true).unwrap();
    let mut ct = Conntrack::open().unwrap();
    let mut b = ct.batch();
    for i in 0..200u32 {
        b.create(&udp_n(i)).unwrap();
    }
    assert_eq!(b.finish().unwrap().ok, 200);
    ct.flush_all().unwrap();
    assert_eq!(count(&mut ct, &DumpFilter::all()), 0);
    let dying: Vec<Entry> = ct.dump_dying().unwrap().map(|e| e.unwrap()).collect();
    assert!(
        dying.len() >= 150,
        "only {} entries on the dying list",
        dying.len()
    );
    for e in &dying {
        assert!(e.status.unwrap().contains(Status::DYING), "{e:?}");
        let o = e.orig.as_ref().unwrap();
        assert_eq!((o.dst, o.proto), (v4(10, 99, 0, 1), 17));
    }
}

/// True when the running kernel is at least `major.minor`.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut it = r
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

#[test]
fn filtered_flush_without_family_runs_per_family_and_never_over_deletes() {
    let Some(_ns) = testkit::netns() else { return };
    let mut ct = Conntrack::open().unwrap();
    let s6 = |i: u16| IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 1, i));
    let d6 = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2));
    let sctp = |i: u16, dport: u16| {
        let o = Tuple::ports(
            v4(10, 7, (i >> 8) as u8, i as u8),
            v4(10, 99, 0, 7),
            132,
            4000 + i,
            dport,
        );
        let mut e = Entry::new(o.clone(), o.reversed());
        e.timeout = Some(120);
        e.protoinfo = Some(ProtoInfo::Sctp({
            let mut x = ctnl::SctpInfo::default();
            x.state = Some(3);
            x.vtag_orig = Some(1);
            x.vtag_reply = Some(2);
            x
        }));
        e
    };
    let mut b = ct.batch();
    for i in 0..100u16 {
        let dport = if i % 2 == 0 { 53 } else { 54 };
        b.create(&udp(
            v4(10, 1, 0, i as u8),
            v4(10, 99, 0, 1),
            2000 + i,
            dport,
        ))
        .unwrap();
        b.create(&udp(s6(i), d6, 2000 + i, dport)).unwrap();
        b.create(&sctp(i, if i % 2 == 0 { 5000 } else { 6000 }))
            .unwrap();
    }
    let r = b.finish().unwrap();
    assert_eq!(r.ok, 300, "{:?}", r.failures);

    // proto + dport, no family and no address: the kernel refuses CTA_FILTER tuples with AF_UNSPEC, so
    // ctnl runs one flush per family. Both families' dport 53 entries go, nothing else.
    let f = DumpFilter::all().with_orig(TupleFilter::new().with_proto(17).with_dport(53));
    assert_eq!(f.effective_family(), None);
    let out = ct.flush(&f).unwrap();
    if kernel_at_least(6, 11) {
        // 6.11+ take CTA_FILTER on a flush: both passes ran in the kernel.
        assert!(out.kernel_side, "{out:?}");
    }
    assert_eq!(count(&mut ct, &f), 0);
    assert_eq!(count(&mut ct, &DumpFilter::family(Family::Ipv4)), 50 + 100);
    assert_eq!(count(&mut ct, &DumpFilter::family(Family::Ipv6)), 50);
    assert!(ct.dump(&DumpFilter::all()).unwrap().all(|e| {
        let e = e.unwrap();
        let o = e.orig.unwrap();
        !(o.proto == 17 && matches!(o.l4, L4::Ports { dst: 53, .. }))
    }));

    // SCTP ports: the kernel's CTA_FILTER match compares ports for TCP and UDP only and takes every SCTP
    // entry (checked: sending this filter as a kernel-side flush left 0 of the 100 SCTP entries, not 50);
    // ctnl must not send it to the kernel and must delete exactly the 50 dport 5000 entries.
    let f = DumpFilter::all()
        .with_family(Family::Ipv4)
        .with_orig(TupleFilter::new().with_proto(132).with_dport(5000));
    assert!(!f.kernel_exact());
    let out = ct.flush(&f).unwrap();
    assert!(!out.kernel_side);
    assert_eq!(out.deleted, Some(50));
    let sctp_left = DumpFilter::all().with_orig(TupleFilter::new().with_proto(132));
    assert_eq!(count(&mut ct, &sctp_left), 50);
    assert_eq!(count(&mut ct, &DumpFilter::all()), 50 + 50 + 50);
}
