//! Byte vectors for the genetlink messages, both ways, unknown attributes in every nest, emit errors, and
//! proptest round trips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::ipvs::{AF_INET, AF_INET6};
use super::*;
use crate::error::{DecodeError, EmitError};
use proptest::prelude::*;
use std::net::IpAddr;

/// Writes attributes with the crate's writer into a fresh vector.
fn attrs_of(f: impl FnOnce(&mut Writer<'_>) -> Result<(), EmitError>) -> Vec<u8> {
    let mut v = Vec::new();
    f(&mut Writer::vec(&mut v)).unwrap();
    v
}

/// Emits through the public codec shape: into exactly `buffer_len()` bytes, and checks the count.
fn emitted(len: usize, emit: impl FnOnce(&mut [u8]) -> Result<usize, EmitError>) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    let n = emit(&mut buf).unwrap();
    assert_eq!(n, len, "emit wrote a different length than buffer_len");
    buf
}

/// The genetlink payload of a request, without the 16-byte netlink header.
fn request_payload(op: &Op) -> Vec<u8> {
    let mut out = Vec::new();
    op.write_request(0x1c, 5, &mut out).unwrap();
    out[NLMSG_HDRLEN..].to_vec()
}

/// `ipvsadm -D -t 10.0.0.1:80` as libipvs sends it (family id 0x1c, seq 5), laid out by hand from
/// include/uapi/linux/ip_vs.h: nlmsghdr, genlmsghdr {cmd 3, version 1}, nested IPVS_CMD_ATTR_SERVICE
/// {AF=2, PROTOCOL=6, ADDR=16 bytes, PORT=be16 80}.
#[rustfmt::skip]
const DEL_SERVICE: &[u8] = &[
    0x44, 0, 0, 0,  0x1c, 0,  0x05, 0,  5, 0, 0, 0,  0, 0, 0, 0,
    3, 1, 0, 0,
    0x30, 0, 0x01, 0x80,
        6, 0, 1, 0,  2, 0, 0, 0,
        6, 0, 2, 0,  6, 0, 0, 0,
        20, 0, 3, 0,  10, 0, 0, 1,  0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,
        6, 0, 4, 0,  0, 80, 0, 0,
];

#[test]
fn del_service_request_matches_vector() {
    let key = ServiceKey::Inet {
        protocol: Protocol::Tcp,
        addr: "10.0.0.1".parse().unwrap(),
        port: 80,
    };
    let op = Op::DelService(key);
    let mut out = Vec::new();
    op.write_request(0x1c, 5, &mut out).unwrap();
    assert_eq!(out, DEL_SERVICE);
    // The public codec writes the same genetlink payload, and reads it back.
    let payload = emitted(op.buffer_len(), |b| op.emit(b));
    assert_eq!(payload, &DEL_SERVICE[NLMSG_HDRLEN..]);
    assert_eq!(Op::parse(&payload).unwrap(), op);
    let m = Messages::new(DEL_SERVICE).next().unwrap().unwrap();
    assert_eq!(m.header.flags, NLM_F_REQUEST | NLM_F_ACK);
}

/// A GET_SERVICE dump reply as the 6.1 kernel sends it (ip_vs_genl_fill_service): a fwmark IPv6 service
/// with an unknown attribute 99 appended (a future kernel), which is kept, and no stats.
#[rustfmt::skip]
const SERVICE_REPLY: &[u8] = &[
    0x54, 0, 0, 0,  0x1c, 0,  0x02, 0,  9, 0, 0, 0,  0x44, 0x33, 0x22, 0x11,
    1, 1, 0, 0,
    0x40, 0, 0x01, 0x80,
        6, 0, 1, 0,  10, 0, 0, 0,
        8, 0, 5, 0,  7, 0, 0, 0,
        7, 0, 6, 0,  b'r', b'r', 0, 0,
        12, 0, 7, 0,  3, 0, 0, 0,  0xff, 0xff, 0xff, 0xff,
        8, 0, 8, 0,  0x2c, 1, 0, 0,
        8, 0, 9, 0,  64, 0, 0, 0,
        8, 0, 99, 0,  1, 2, 3, 4,
];

#[test]
fn service_reply_vector_decodes_and_keeps_the_unknown_attribute() {
    let out = decode_datagram(SERVICE_REPLY, 0x1c, None, true);
    assert_eq!(out.len(), 1);
    let Ok(Decoded::Reply {
        seq: 9,
        reply: Reply::Service(s),
    }) = &out[0]
    else {
        panic!("{out:?}")
    };
    assert_eq!(
        s.key,
        ServiceKey::Fwmark {
            mark: 7,
            family: Family::Ipv6
        }
    );
    assert_eq!(s.scheduler, Scheduler::Rr);
    assert_eq!(s.flags, ServiceFlags::PERSISTENT | ServiceFlags::HASHED);
    assert_eq!((s.timeout, s.netmask), (300, 64));
    assert_eq!((s.pe_name.as_deref(), &s.stats), (None, &None));
    assert_eq!(s.unknown, vec![RawAttr::new(99, [1, 2, 3, 4])]);
    // Written back in an edit request, the unknown attribute comes last in the service nest.
    let payload = request_payload(&Op::EditService(s.clone()));
    let nest = attrs(&payload[GENL_HDRLEN..]).next().unwrap().unwrap();
    let last = attrs(nest.value).last().unwrap().unwrap();
    assert_eq!((last.raw_kind, last.value), (99, &[1u8, 2, 3, 4][..]));
}

/// Unknown attributes in every nest: service (with a nested unknown), stats inside it, destination,
/// daemon, and the top level of timeouts and info. Each is kept with its flags and written back.
#[test]
fn unknown_attributes_survive_in_every_nest() {
    let odd = RawAttr::new(200 | 0x8000, attrs_of(|w| w.u32("x", 1, 7)));
    let stats = attrs_of(|w| {
        w.u32("c", attr::STATS_CONNS, 5)?;
        w.put("new counter", 11, &9u64.to_ne_bytes())
    });
    let svc = attrs_of(|w| {
        w.u16("af", attr::SVC_AF, AF_INET)?;
        w.u16("p", attr::SVC_PROTOCOL, 17)?;
        w.put(
            "a",
            attr::SVC_ADDR,
            &[10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        )?;
        w.be16("port", attr::SVC_PORT, 53)?;
        w.string("s", attr::SVC_SCHED_NAME, "twos")?;
        w.put("stats", attr::SVC_STATS | 0x8000, &stats)?;
        w.put("odd", odd.kind, &odd.value)?;
        w.u8("tiny", 13, 1)
    });
    let s = Service::parse(&svc).unwrap();
    assert_eq!(s.scheduler, Scheduler::Twos);
    assert_eq!(s.unknown, vec![odd.clone(), RawAttr::new(13, [1])]);
    let st = s.stats.as_ref().unwrap();
    assert_eq!(st.conns, 5);
    assert_eq!(st.unknown, vec![RawAttr::new(11, 9u64.to_ne_bytes())]);
    let again = Service::parse(&emitted(s.buffer_len(), |b| s.emit(b))).unwrap();
    assert_eq!(again, s);

    let dest = attrs_of(|w| {
        w.u16("af", attr::DEST_ADDR_FAMILY, AF_INET6)?;
        w.put(
            "a",
            attr::DEST_ADDR,
            &[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        )?;
        w.be16("port", attr::DEST_PORT, 80)?;
        w.u32("w", attr::DEST_WEIGHT, 3)?;
        w.put("future", 16, &[0xaa; 6])
    });
    let d = Destination::parse(&dest).unwrap();
    assert_eq!(
        (d.addr, d.port, d.weight),
        ("2001:db8::2".parse().unwrap(), 80, 3)
    );
    assert_eq!(d.unknown, vec![RawAttr::new(16, [0xaa; 6])]);
    assert_eq!(
        Destination::parse(&emitted(d.buffer_len(), |b| d.emit(b))).unwrap(),
        d
    );

    let daemon = attrs_of(|w| {
        w.u32("st", attr::DAEMON_STATE, 1)?;
        w.string("if", attr::DAEMON_MCAST_IFN, "eth1")?;
        w.u32("future", 9, 1234)
    });
    let dm = Daemon::parse(&daemon).unwrap();
    assert_eq!(dm.unknown, vec![RawAttr::new(9, 1234u32.to_ne_bytes())]);
    assert_eq!(
        Daemon::parse(&emitted(dm.buffer_len(), |b| dm.emit(b))).unwrap(),
        dm
    );

    let top = attrs_of(|w| {
        w.u32("tcp", attr::CMD_TIMEOUT_TCP, 900)?;
        w.u32("sctp?", 7, 30)
    });
    let t = Timeouts::parse(&top).unwrap();
    assert_eq!((t.tcp, t.unknown.len()), (900, 1));
    let payload = request_payload(&Op::SetTimeouts(t.clone()));
    assert_eq!(Op::parse(&payload).unwrap(), Op::SetTimeouts(t));
    let i = Info::parse(&attrs_of(|w| w.u32("v", 3, 1))).unwrap();
    assert_eq!(i.unknown, vec![RawAttr::new(3, 1u32.to_ne_bytes())]);
}

#[test]
fn requests_leave_counters_out_but_keep_unknowns() {
    let mut d = Destination::new("10.0.0.2".parse().unwrap(), 80);
    d.active_conns = 4;
    d.stats64 = Some(Stats::default());
    d.unknown.push(RawAttr::new(40, [1]));
    let key = ServiceKey::Fwmark {
        mark: 1,
        family: Family::Ipv4,
    };
    let Op::EditDest(_, back) = Op::parse(&request_payload(&Op::EditDest(key, d.clone()))).unwrap()
    else {
        panic!()
    };
    assert_eq!((back.active_conns, &back.stats64), (0, &None));
    assert_eq!(back.unknown, d.unknown);
    // A reply keeps them.
    let r = Reply::Destination(d.clone());
    let bytes = emitted(r.buffer_len(), |b| r.emit(b));
    assert_eq!(Reply::parse(&bytes).unwrap(), r);
}

#[test]
fn emit_errors_instead_of_panics() {
    let mut s = Service::new(ServiceKey::Fwmark {
        mark: 3,
        family: Family::Ipv4,
    });
    let need = s.buffer_len();
    for short in 0..need {
        let mut buf = vec![0u8; short];
        assert_eq!(
            s.emit(&mut buf),
            Err(EmitError::BufferTooShort {
                what: "Service",
                needed: need,
                actual: short
            })
        );
    }
    // A longer buffer is fine: emit reports what it wrote.
    let mut buf = vec![0u8; need + 9];
    assert_eq!(s.emit(&mut buf), Ok(need));
    s.scheduler = Scheduler::Other("r\0r".into());
    assert_eq!(
        s.emit(&mut [0u8; 128]),
        Err(EmitError::Invalid {
            what: "IPVS_SVC_ATTR_SCHED_NAME",
            reason: "contains a NUL byte"
        })
    );
    s.scheduler = Scheduler::Wlc;
    s.unknown.push(RawAttr::new(50, vec![0; 70_000]));
    assert!(matches!(
        s.emit(&mut vec![0u8; 80_000]),
        Err(EmitError::TooLong { length: 70_004, .. })
    ));
    // Unencodable ops fail before anything is built.
    let mut out = Vec::new();
    assert!(Op::AddService(s).write_request(0x1c, 1, &mut out).is_err());
    assert!(out.is_empty());
}

#[test]
fn schedulers_map_both_ways() {
    for s in Scheduler::KNOWN {
        assert_eq!(Scheduler::from_name(s.name()), s);
        assert_eq!(s.to_string().parse::<Scheduler>().unwrap(), s);
    }
    assert_eq!(Scheduler::from_name("RR"), Scheduler::Other("RR".into()));
    assert_eq!(Scheduler::default(), Scheduler::Wlc);
    let names: Vec<&str> = Scheduler::KNOWN.iter().map(|s| s.name()).collect();
    assert_eq!(
        names.join(","),
        "rr,wrr,lc,wlc,lblc,lblcr,dh,sh,sed,nq,fo,ovf,mh,twos"
    );
}

#[test]
fn flags_keep_unknown_bits() {
    let f = ServiceFlags::from_bits_retain(0x8000_0001);
    assert!(f.contains(ServiceFlags::PERSISTENT));
    let mut s = Service::new(ServiceKey::Fwmark {
        mark: 1,
        family: Family::Ipv4,
    });
    s.flags = f;
    assert_eq!(
        Service::parse(&emitted(s.buffer_len(), |b| s.emit(b)))
            .unwrap()
            .flags
            .bits(),
        0x8000_0001
    );
    assert_eq!(TunnelFlags::from_bits_retain(0x40).bits(), 0x40);
}

#[test]
fn errors_done_and_acks_decode() {
    // NLMSG_ERROR -17 (EEXIST) for seq 3, then an ACK for seq 4, then NLMSG_DONE for seq 5.
    let mut buf = Vec::new();
    for (kind, seq, code) in [
        (NLMSG_ERROR, 3u32, -17i32),
        (NLMSG_ERROR, 4, 0),
        (NLMSG_DONE, 5, 0),
    ] {
        let len = if kind == NLMSG_ERROR { 36 } else { 20 };
        let start = buf.len();
        buf.extend_from_slice(
            &NlHeader {
                len: len as u32,
                kind,
                flags: 0,
                seq,
                pid: 0,
            }
            .to_bytes(),
        );
        buf.extend_from_slice(&code.to_ne_bytes());
        buf.resize(start + len, 0);
    }
    let out: Vec<_> = decode_datagram(&buf, 0x1c, None, true)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        out,
        vec![
            Decoded::Ack { seq: 3, errno: 17 },
            Decoded::Ack { seq: 4, errno: 0 },
            Decoded::Done { seq: 5, errno: 0 }
        ]
    );
}

#[test]
fn errnos_map_to_kinds_and_back() {
    use crate::Error;
    for (errno, kind) in [
        (libc::EEXIST, "Exists"),
        (libc::ESRCH, "NoSuchService"),
        (libc::ENOENT, "NotFound"),
        (libc::EPERM, "PermissionDenied { errno: 1 }"),
        (libc::EACCES, "PermissionDenied { errno: 13 }"),
        (libc::EBUSY, "Busy"),
        (libc::EINVAL, "Invalid"),
        (libc::ENOBUFS, "Overrun"),
        (libc::ENOMEM, "Kernel { errno: 12 }"),
        (libc::EAFNOSUPPORT, "Kernel { errno: 97 }"),
    ] {
        let e = Error::from_errno(errno);
        assert_eq!(format!("{e:?}"), kind);
        assert_eq!(e.errno(), Some(errno));
    }
    assert_eq!(
        Error::Kernel { errno: 12 }.to_string(),
        "kernel error: Cannot allocate memory"
    );
    assert_eq!(Error::FamilyNotFound.errno(), Some(libc::ENOENT));
    assert_eq!(
        Error::Decode(DecodeError::Missing { what: "x" }).errno(),
        None
    );
}

#[test]
fn errno_i32_min_does_not_overflow() {
    // Found by the ipvs_reply fuzz target: NLMSG_DONE carrying i32::MIN as its errno.
    let buf = [
        20, 0, 0, 0, 3, 0, 0, 187, 0, 0, 0, 0, 128, 0, 187, 0, 0, 0, 0, 128,
    ];
    let out = decode_datagram(&buf, 0x1c, None, true);
    assert_eq!(
        out,
        vec![Ok(Decoded::Done {
            seq: 0,
            errno: i32::MIN
        })]
    );
}

#[test]
fn truncated_and_bad_lengths_are_structured_errors() {
    let r = decode_datagram(&SERVICE_REPLY[..10], 0x1c, None, true);
    assert!(matches!(
        r[0],
        Err(DecodeError::Truncated {
            what: "nlmsghdr",
            expected: 16,
            actual: 10,
            ..
        })
    ));
    let mut bad = SERVICE_REPLY.to_vec();
    bad[0] = 0xff;
    let r = decode_datagram(&bad, 0x1c, None, true);
    assert!(matches!(
        r[0],
        Err(DecodeError::BadLength {
            what: "nlmsghdr",
            length: 255,
            ..
        })
    ));
    // An attribute claiming more than its nest holds: the offset is the attribute's, counted from the
    // start of the genetlink payload handed to Reply::parse (4-byte header + 4-byte nest header + 52).
    let mut bad = SERVICE_REPLY[NLMSG_HDRLEN..].to_vec();
    bad[4 + 4 + 52] = 0x30;
    assert_eq!(
        Reply::parse(&bad),
        Err(DecodeError::BadLength {
            what: "nlattr",
            offset: 60,
            length: 0x30,
            available: 8
        })
    );
    // A service without its family.
    let w = attrs_of(|w| w.u32("m", attr::SVC_FWMARK, 1));
    assert_eq!(
        Service::parse(&w),
        Err(DecodeError::Missing {
            what: "IPVS_SVC_ATTR_AF"
        })
    );
    // A port of the wrong size, with the attribute's offset.
    let w = attrs_of(|w| {
        w.u16("af", attr::SVC_AF, AF_INET)?;
        w.u32("port", attr::SVC_PORT, 1)?;
        w.put("addr", attr::SVC_ADDR, &[0; 16])
    });
    assert_eq!(
        Service::parse(&w),
        Err(DecodeError::AttrSize {
            what: "IPVS_SVC_ATTR_PORT",
            offset: 8,
            expected: 2,
            actual: 4
        })
    );
    // A family that is neither.
    let w = attrs_of(|w| {
        w.u16("af", attr::SVC_AF, 7)?;
        w.u32("m", attr::SVC_FWMARK, 1)
    });
    assert_eq!(
        Service::parse(&w),
        Err(DecodeError::Invalid {
            what: "IPVS_SVC_ATTR_AF",
            offset: 0,
            value: 7
        })
    );
    // A destination that does not say its family parses only with the service's.
    let w = attrs_of(|w| {
        w.put(
            "a",
            attr::DEST_ADDR,
            &[10, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        )?;
        w.be16("p", attr::DEST_PORT, 1)
    });
    assert_eq!(
        Destination::parse(&w),
        Err(DecodeError::Missing {
            what: "IPVS_DEST_ATTR_ADDR_FAMILY"
        })
    );
    assert_eq!(
        Destination::parse_in(&w, Family::Ipv4).unwrap().addr,
        "10.0.0.9".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn family_request_and_reply() {
    let mut out = Vec::new();
    build_request(
        &mut out,
        GENL_ID_CTRL,
        NLM_F_REQUEST,
        1,
        GenlHeader {
            cmd: CTRL_CMD_GETFAMILY,
            version: 1,
        },
        |w| w.string("name", CTRL_ATTR_FAMILY_NAME, IPVS_GENL_NAME),
    )
    .unwrap();
    #[rustfmt::skip]
    let want: &[u8] = &[
        0x20, 0, 0, 0,  0x10, 0,  1, 0,  1, 0, 0, 0,  0, 0, 0, 0,
        3, 1, 0, 0,
        9, 0, 2, 0,  b'I', b'P', b'V', b'S', 0, 0, 0, 0,
    ];
    assert_eq!(out, want);
    let reply = attrs_of(|w| {
        w.string("n", CTRL_ATTR_FAMILY_NAME, "IPVS")?;
        w.u16("id", CTRL_ATTR_FAMILY_ID, 0x23)
    });
    assert_eq!(parse_family_id(&reply), Ok(0x23));
}

#[test]
fn raw_attr_codec() {
    let a = RawAttr::new(0x8005, [1, 2, 3]);
    let bytes = emitted(a.buffer_len(), |b| a.emit(b));
    assert_eq!(bytes, [7, 0, 5, 0x80, 1, 2, 3, 0]);
    assert_eq!(RawAttr::parse(&bytes).unwrap(), a);
    assert_eq!(a.number(), 5);
    assert!(RawAttr::parse(&[8, 0, 1, 0, 0, 0, 0, 0, 1]).is_err());
}

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from)
    ]
}

/// Unknown attributes with numbers the codec does not model (above the nest's maximum).
fn arb_unknown(min: u16) -> impl Strategy<Value = Vec<RawAttr>> {
    proptest::collection::vec(
        (
            min..0x3fffu16,
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..12),
        )
            .prop_map(|(k, nested, v)| RawAttr::new(if nested { k | 0x8000 } else { k }, v)),
        0..3,
    )
}

fn arb_stats() -> impl Strategy<Value = Option<Stats>> {
    proptest::option::of(
        (any::<[u64; 10]>(), arb_unknown(11)).prop_map(|(v, unknown)| {
            let mut s = Stats::default();
            [
                s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes, s.cps, s.inpps, s.outpps,
                s.inbps, s.outbps,
            ] = v;
            s.unknown = unknown;
            s
        }),
    )
}

fn arb_sched() -> impl Strategy<Value = Scheduler> {
    prop_oneof![
        (0usize..14).prop_map(|i| Scheduler::KNOWN[i].clone()),
        "[a-z]{1,15}".prop_map(|s| Scheduler::from_name(&s)),
    ]
}

fn arb_key() -> impl Strategy<Value = ServiceKey> {
    prop_oneof![
        (arb_ip(), any::<u16>(), 0u16..300).prop_map(|(addr, port, p)| ServiceKey::Inet {
            protocol: Protocol::from_number(p),
            addr,
            port
        }),
        (1u32.., any::<bool>()).prop_map(|(mark, v6)| ServiceKey::Fwmark {
            mark,
            family: if v6 { Family::Ipv6 } else { Family::Ipv4 }
        }),
    ]
}

fn arb_service() -> impl Strategy<Value = Service> {
    (
        arb_key(),
        arb_sched(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        proptest::option::of("[a-z]{1,15}"),
        arb_stats(),
        arb_stats(),
        arb_unknown(13),
    )
        .prop_map(
            |(key, scheduler, flags, timeout, netmask, pe, st, st64, unknown)| {
                let mut s = Service::new(key);
                s.scheduler = scheduler;
                s.flags = ServiceFlags::from_bits_retain(flags);
                s.timeout = timeout;
                s.netmask = netmask;
                s.pe_name = pe;
                s.stats = st;
                s.stats64 = st64;
                s.unknown = unknown;
                s
            },
        )
}

fn arb_dest() -> impl Strategy<Value = Destination> {
    (
        (
            arb_ip(),
            any::<u16>(),
            0u32..8,
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
        ),
        (any::<u8>(), any::<u16>(), any::<u16>()),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            arb_stats(),
            arb_stats(),
        ),
        arb_unknown(16),
    )
        .prop_map(
            |((ip, port, fwd, weight, u, l), (tt, tp, tf), (a, i, p, st, st64), unknown)| {
                let mut d = Destination::new(ip, port);
                d.fwd = FwdMethod::from_value(fwd);
                d.weight = weight;
                d.u_threshold = u;
                d.l_threshold = l;
                d.tun_type = TunnelType::from_value(tt);
                d.tun_port = tp;
                d.tun_flags = TunnelFlags::from_bits_retain(tf);
                d.active_conns = a;
                d.inact_conns = i;
                d.persist_conns = p;
                d.stats = st;
                d.stats64 = st64;
                d.unknown = unknown;
                d
            },
        )
}

fn round_trip_reply(r: &Reply) -> Reply {
    Reply::parse(&emitted(r.buffer_len(), |b| r.emit(b))).unwrap()
}

fn round_trip_op(op: &Op) -> Op {
    let bytes = emitted(op.buffer_len(), |b| op.emit(b));
    assert_eq!(bytes, request_payload(op));
    Op::parse(&bytes).unwrap()
}

proptest! {
    #[test]
    fn service_round_trip(s in arb_service()) {
        let r = Reply::Service(s.clone());
        prop_assert_eq!(round_trip_reply(&r), r);
        prop_assert_eq!(Service::parse(&emitted(s.buffer_len(), |b| s.emit(b))).unwrap(), s.clone());
        // Requests carry no stats.
        let mut bare = s.clone();
        bare.stats = None;
        bare.stats64 = None;
        prop_assert_eq!(round_trip_op(&Op::AddService(s)), Op::AddService(bare));
    }

    #[test]
    fn destination_round_trip(d in arb_dest(), key in arb_key()) {
        let r = Reply::Destination(d.clone());
        prop_assert_eq!(round_trip_reply(&r), r);
        let mut bare = d.clone();
        bare.active_conns = 0;
        bare.inact_conns = 0;
        bare.persist_conns = 0;
        bare.stats = None;
        bare.stats64 = None;
        prop_assert_eq!(round_trip_op(&Op::EditDest(key, d.clone())), Op::EditDest(key, bare));
        prop_assert_eq!(round_trip_op(&Op::DelDest(key, d.addr, d.port)), Op::DelDest(key, d.addr, d.port));
    }

    #[test]
    fn daemon_round_trip(master: bool, ifn in "[a-z0-9]{1,15}", syncid: u32, maxlen: u16,
                         g in proptest::option::of(any::<[u8; 4]>()), g6 in proptest::option::of(any::<[u8; 16]>()),
                         port: u16, ttl: u8, unknown in arb_unknown(9)) {
        let mut d = Daemon::new(if master { DaemonState::Master } else { DaemonState::Backup }, &ifn, syncid);
        d.sync_maxlen = maxlen; d.mcast_port = port; d.mcast_ttl = ttl;
        d.mcast_group = g.map(std::net::Ipv4Addr::from).filter(|a| !a.is_unspecified());
        d.mcast_group6 = g6.map(std::net::Ipv6Addr::from).filter(|a| !a.is_unspecified());
        d.unknown = unknown;
        let r = Reply::Daemon(d.clone());
        prop_assert_eq!(round_trip_reply(&r), r);
        prop_assert_eq!(round_trip_op(&Op::StartDaemon(d.clone())), Op::StartDaemon(d.clone()));
        prop_assert_eq!(round_trip_op(&Op::StopDaemon(d.state)), Op::StopDaemon(d.state));
    }

    #[test]
    fn other_ops_round_trip(key in arb_key(), t: (u32, u32, u32), unknown in arb_unknown(7)) {
        let mut tm = Timeouts::new(t.0, t.1, t.2);
        tm.unknown = unknown;
        for op in [Op::DelService(key), Op::Flush, Op::Zero(None), Op::Zero(Some(key)), Op::SetTimeouts(tm)] {
            prop_assert_eq!(round_trip_op(&op), op);
        }
    }

    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_datagram(&bytes, 0x1c, None, true);
        let _ = decode_datagram(&bytes, 0x1c, Some(Family::Ipv6), false);
        replay(&bytes);
    }
}

/// What the `ipvs_reply` fuzz target asserts: every message of a datagram that decodes emits into
/// `buffer_len()` bytes and decodes back to the same value (as a reply, and as a request).
fn replay(data: &[u8]) {
    for m in Messages::new(data).flatten() {
        if let Ok(r) = Reply::parse(m.payload) {
            assert_eq!(round_trip_reply(&r), r);
        }
        if let Ok(op) = Op::parse(m.payload) {
            let bytes = emitted(op.buffer_len(), |b| op.emit(b));
            let again = Op::parse(&bytes).unwrap();
            // A request decoded from arbitrary bytes may carry counters, which requests leave out.
            assert_eq!(
                emitted(again.buffer_len(), |b| again.emit(b)),
                bytes,
                "request not stable"
            );
        }
    }
}
