//! Byte vectors for the genetlink messages, both ways, and proptest round trips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::handle::Op;
use proptest::prelude::*;
use std::net::IpAddr;

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
    let mut out = Vec::new();
    let key = ServiceKey::Inet {
        protocol: Protocol::Tcp,
        addr: "10.0.0.1".parse().unwrap(),
        port: 80,
    };
    Op::DelService(key).emit(0x1c, 5, &mut out);
    assert_eq!(out, DEL_SERVICE);
    // And the vector decodes back to the same key.
    let m = Messages::new(DEL_SERVICE).next().unwrap().unwrap();
    assert_eq!(m.header.flags, NLM_F_REQUEST | NLM_F_ACK);
    let genl = GenlHeader::parse(m.payload).unwrap();
    assert_eq!(genl.cmd, cmd::DEL_SERVICE);
    let nested = attrs(&m.payload[4..]).next().unwrap().unwrap();
    assert_eq!(nested.kind, attr::CMD_SERVICE);
    let mut wrote = Vec::new();
    Service::emit_key(&key, &mut AttrWriter::new(&mut wrote));
    assert_eq!(nested.value, &wrote[..]);
}

/// A GET_SERVICE dump reply as the 6.1 kernel sends it (ip_vs_genl_fill_service): a fwmark IPv6 service
/// with an unknown attribute 99 appended (a future kernel) that must be skipped, and 32-bit stats.
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
fn service_reply_vector_decodes() {
    let out = decode_datagram(SERVICE_REPLY, 0x1c, AF_INET);
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
            ipv6: true
        }
    );
    assert_eq!(s.scheduler, "rr");
    assert_eq!(
        s.flags,
        ServiceFlags(ServiceFlags::PERSISTENT | ServiceFlags::HASHED)
    );
    assert_eq!((s.timeout, s.netmask), (300, 64));
    assert_eq!((s.pe_name.as_deref(), s.stats), (None, None));
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
        buf.resize(start + len, 0);
        NlHeader {
            len: len as u32,
            kind,
            flags: 0,
            seq,
            pid: 0,
        }
        .emit(&mut buf[start..]);
        buf[start + 16..start + 20].copy_from_slice(&code.to_ne_bytes());
    }
    let out: Vec<_> = decode_datagram(&buf, 0x1c, AF_INET)
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
    assert!(matches!(crate::Error::from_errno(17), crate::Error::Exists));
    assert!(matches!(
        crate::Error::from_errno(3),
        crate::Error::NoSuchService
    ));
}

#[test]
fn errno_i32_min_does_not_overflow() {
    // Found by the ipvs_reply fuzz target: NLMSG_DONE carrying i32::MIN as its errno.
    let buf = [
        20, 0, 0, 0, 3, 0, 0, 187, 0, 0, 0, 0, 128, 0, 187, 0, 0, 0, 0, 128,
    ];
    let out = decode_datagram(&buf, 0x1c, AF_INET);
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
    let r = decode_datagram(&SERVICE_REPLY[..10], 0x1c, AF_INET);
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
    let r = decode_datagram(&bad, 0x1c, AF_INET);
    assert!(matches!(
        r[0],
        Err(DecodeError::BadLength {
            what: "nlmsghdr",
            length: 255,
            ..
        })
    ));
    // A service without its family.
    let mut w = Vec::new();
    AttrWriter::new(&mut w).u32(attr::SVC_FWMARK, 1);
    assert_eq!(
        Service::parse(&w),
        Err(DecodeError::Missing {
            what: "IPVS_SVC_ATTR_AF"
        })
    );
    // A port of the wrong size.
    let mut w = Vec::new();
    let mut a = AttrWriter::new(&mut w);
    a.u16(attr::SVC_AF, AF_INET);
    a.u32(attr::SVC_PORT, 1);
    a.put(attr::SVC_ADDR, &[0; 16]);
    assert!(matches!(
        Service::parse(&w),
        Err(DecodeError::AttrSize {
            what: "IPVS_SVC_ATTR_PORT",
            ..
        })
    ));
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
        |w| w.string(CTRL_ATTR_FAMILY_NAME, IPVS_GENL_NAME),
    );
    #[rustfmt::skip]
    let want: &[u8] = &[
        0x20, 0, 0, 0,  0x10, 0,  1, 0,  1, 0, 0, 0,  0, 0, 0, 0,
        3, 1, 0, 0,
        9, 0, 2, 0,  b'I', b'P', b'V', b'S', 0, 0, 0, 0,
    ];
    assert_eq!(out, want);
    let mut reply = Vec::new();
    let mut w = AttrWriter::new(&mut reply);
    w.string(CTRL_ATTR_FAMILY_NAME, "IPVS");
    w.u16(CTRL_ATTR_FAMILY_ID, 0x23);
    assert_eq!(parse_family_id(&reply), Ok(0x23));
}

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from)
    ]
}

fn arb_stats() -> impl Strategy<Value = Option<Stats>> {
    proptest::option::of(any::<[u64; 10]>().prop_map(|v| Stats {
        conns: v[0],
        inpkts: v[1],
        outpkts: v[2],
        inbytes: v[3],
        outbytes: v[4],
        cps: v[5],
        inpps: v[6],
        outpps: v[7],
        inbps: v[8],
        outbps: v[9],
    }))
}

proptest! {
    #[test]
    fn service_round_trip(ip in arb_ip(), port: u16, proto in 0u16..300, mark: u32, fw: bool, v6: bool,
                          sched in "[a-z]{1,15}", flags: u32, timeout: u32, netmask: u32,
                          pe in proptest::option::of("[a-z]{1,15}"), st64 in arb_stats()) {
        let key = if fw && mark != 0 { ServiceKey::Fwmark { mark, ipv6: v6 } } else {
            ServiceKey::Inet { protocol: Protocol::from_number(proto), addr: ip, port }
        };
        let s = Service { key, scheduler: sched, flags: ServiceFlags(flags), timeout, netmask, pe_name: pe,
                          stats: None, stats64: st64 };
        let bytes = Reply::Service(s.clone()).emit();
        prop_assert_eq!(Reply::parse(&bytes, AF_INET).unwrap(), Reply::Service(s));
    }

    #[test]
    fn destination_round_trip(ip in arb_ip(), port: u16, fwd in 0u32..5, weight: u32, u: u32, l: u32,
                              tt in 0u8..3, tp: u16, tf in 0u16..3, a: u32, i: u32, p: u32, st64 in arb_stats()) {
        let mut d = Destination::new(ip, port);
        d.fwd = FwdMethod::from_value(fwd);
        d.weight = weight; d.u_threshold = u; d.l_threshold = l;
        if d.fwd == FwdMethod::Tunnel { d.tun_type = TunnelType::from_value(tt); d.tun_port = tp; d.tun_flags = tf; }
        d.active_conns = a; d.inact_conns = i; d.persist_conns = p; d.stats64 = st64;
        let bytes = Reply::Destination(d.clone()).emit();
        prop_assert_eq!(Reply::parse(&bytes, AF_INET).unwrap(), Reply::Destination(d));
    }

    #[test]
    fn daemon_round_trip(master: bool, ifn in "[a-z0-9]{1,15}", syncid: u32, maxlen: u16,
                         g in proptest::option::of(any::<[u8; 4]>()), port: u16, ttl: u8) {
        let mut d = Daemon::new(if master { DaemonState::Master } else { DaemonState::Backup }, &ifn, syncid);
        d.sync_maxlen = maxlen; d.mcast_port = port; d.mcast_ttl = ttl;
        d.mcast_group = g.map(std::net::Ipv4Addr::from).filter(|a| !a.is_unspecified());
        let bytes = Reply::Daemon(d.clone()).emit();
        prop_assert_eq!(Reply::parse(&bytes, AF_INET).unwrap(), Reply::Daemon(d));
    }

    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_datagram(&bytes, 0x1c, AF_INET);
    }
}
