//! Codec properties: proptest round trips, conntrackd's rejection rules, lenient mode, JSON, reply tuples.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ctsync_proto::entry::{L4, Tuple};
use ctsync_proto::wire::{
    AddrPair, Body, Change, CtEntry, DecodeError, ExpEntry, Flags, HelperName, Labels, Message,
    Mode, NatSeqAdj, Packer, PortPair, Skipped, Synproxy, messages, nta,
};
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

fn addrs() -> impl Strategy<Value = AddrPair> {
    prop_oneof![
        (any::<u32>(), any::<u32>()).prop_map(|(s, d)| AddrPair::V4 {
            src: s.into(),
            dst: d.into()
        }),
        (any::<u128>(), any::<u128>()).prop_map(|(s, d)| AddrPair::V6 {
            src: s.into(),
            dst: d.into()
        }),
    ]
}

fn ports() -> impl Strategy<Value = PortPair> {
    (any::<u16>(), any::<u16>()).prop_map(|(sport, dport)| PortPair { sport, dport })
}

fn ct_entry() -> impl Strategy<Value = CtEntry> {
    let a = (
        proptest::option::of(addrs()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u8>()),
        proptest::option::of(ports()),
        proptest::option::of(any::<u8>()),
        proptest::option::of(any::<u8>()),
        proptest::option::of(any::<u8>()),
        proptest::option::of(any::<u8>()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u8>()),
        proptest::option::of(any::<u8>()),
    );
    let b = (
        proptest::option::of(any::<u8>()),
        proptest::option::of(any::<u8>()),
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(addrs()),
        proptest::option::of(any::<u8>()),
        proptest::option::of(ports()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u128>()),
        proptest::option::of(any::<u128>()),
    );
    let c = (
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<[u32; 6]>()),
        proptest::option::of("[a-z0-9-]{0,10}"),
        proptest::option::of(proptest::collection::vec(any::<u32>(), 1..=4)),
        proptest::option::of(any::<[u32; 3]>()),
        proptest::option::of(any::<u16>()),
    );
    (a, b, c).prop_map(|(a, b, c)| CtEntry {
        addrs: a.0,
        status: a.1,
        l4proto: a.2,
        ports: a.3,
        tcp_state: a.4,
        tcp_wscale_orig: a.5,
        tcp_wscale_repl: a.6,
        sctp_state: a.7,
        sctp_vtag_orig: a.8,
        sctp_vtag_repl: a.9,
        dccp_state: a.10,
        dccp_role: a.11,
        icmp_type: b.0,
        icmp_code: b.1,
        icmp_id: b.2,
        timeout: b.3,
        mark: b.4,
        master_addrs: b.5,
        master_l4proto: b.6,
        master_ports: b.7,
        snat_ipv4: b.8.map(Ipv4Addr::from),
        dnat_ipv4: b.9.map(Ipv4Addr::from),
        snat_ipv6: b.10.map(Ipv6Addr::from),
        dnat_ipv6: b.11.map(Ipv6Addr::from),
        snat_port: c.0,
        dnat_port: c.1,
        nat_seq_adj: c.2.map(|w| NatSeqAdj {
            orig_correction_pos: w[0],
            orig_offset_before: w[1],
            orig_offset_after: w[2],
            repl_correction_pos: w[3],
            repl_offset_before: w[4],
            repl_offset_after: w[5],
        }),
        helper: c.3.and_then(|h| HelperName::new(&h)),
        labels: c.4.and_then(|w| Labels::new(&w)),
        synproxy: c.5.map(|w| Synproxy {
            its: w[0],
            isn: w[1],
            tsoff: w[2],
        }),
        zone: c.6,
    })
}

fn exp_entry() -> impl Strategy<Value = ExpEntry> {
    (
        (
            proptest::option::of(addrs()),
            proptest::option::of(any::<u8>()),
            proptest::option::of(ports()),
        ),
        (
            proptest::option::of(addrs()),
            proptest::option::of(any::<u8>()),
            proptest::option::of(ports()),
        ),
        (
            proptest::option::of(addrs()),
            proptest::option::of(any::<u8>()),
            proptest::option::of(ports()),
        ),
        (
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
        ),
        (
            proptest::option::of(any::<[u32; 2]>()),
            proptest::option::of(any::<u8>()),
            proptest::option::of(ports()),
        ),
        (
            proptest::option::of(any::<u32>()),
            proptest::option::of("[a-z]{0,10}"),
            proptest::option::of("[a-z_]{0,26}"),
        ),
    )
        .prop_map(|(m, e, k, t, n, h)| ExpEntry {
            master_addrs: m.0,
            master_l4proto: m.1,
            master_ports: m.2,
            expect_addrs: e.0,
            expect_l4proto: e.1,
            expect_ports: e.2,
            mask_addrs: k.0,
            mask_l4proto: k.1,
            mask_ports: k.2,
            timeout: t.0,
            flags: t.1,
            class: t.2,
            nat_addrs: n.0.map(|a| [a[0].into(), a[1].into()]),
            nat_l4proto: n.1,
            nat_ports: n.2,
            nat_dir: h.0,
            helper: h.1.and_then(|s| HelperName::new(&s)),
            func: h.2.and_then(|s| ctsync_proto::wire::ExpFn::new(&s)),
        })
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        Just(Change::New),
        Just(Change::Update),
        Just(Change::Delete)
    ]
}

fn message() -> impl Strategy<Value = Message> {
    let body = prop_oneof![
        (change(), ct_entry()).prop_map(|(c, e)| Body::Ct(c, e)),
        (change(), exp_entry()).prop_map(|(c, e)| Body::Exp(c, e)),
        (any::<u32>(), any::<u32>()).prop_map(|(from, to)| Body::Ctl { from, to }),
    ];
    (any::<u8>(), any::<u32>(), body).prop_map(|(flags, seq, body)| {
        let flags = Flags::from_bits_retain(flags);
        // from/to exist on the wire only for ranged control messages.
        let body = match body {
            Body::Ctl { .. } if !flags.has_range() => Body::Ctl { from: 0, to: 0 },
            b => b,
        };
        Message { flags, seq, body }
    })
}

proptest! {
    /// The caches keep entries encoded ([`Object::encode`]): what comes back is what went in, and an
    /// in-place re-encode gives the same bytes.
    #[test]
    fn cache_encoding_roundtrip(e in ct_entry(), x in exp_entry(), other in ct_entry()) {
        use ctsync_proto::cache::Object;
        prop_assert_eq!(CtEntry::decode(&e.encode()), e);
        prop_assert_eq!(ExpEntry::decode(&x.encode()), x);
        let mut b = other.encode();
        e.encode_into(&mut b);
        prop_assert_eq!(&b, &e.encode());
    }

    #[test]
    fn message_roundtrip(m in message()) {
        let mut buf = vec![0u8; m.buffer_len()];
        prop_assert_eq!(m.emit(&mut buf).unwrap(), buf.len());
        prop_assert_eq!(buf.len() % 4, 0);
        let back = Message::parse(&buf).unwrap();
        prop_assert_eq!(&back, &m);
        let mut again = vec![0u8; back.buffer_len()];
        back.emit(&mut again).unwrap();
        prop_assert_eq!(again, buf);
    }

    #[test]
    fn datagram_roundtrip(ms in proptest::collection::vec(message(), 1..8)) {
        let mut buf = vec![0u8; 65536];
        let mut p = Packer::new(&mut buf);
        for m in &ms { prop_assert!(p.push(m)); }
        let n = p.len();
        let back: Vec<Message> = messages(&buf[..n], Mode::Strict).map(|r| r.unwrap()).collect();
        prop_assert_eq!(back, ms);
    }

    #[test]
    fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        for r in messages(&data, Mode::Lenient) { let _ = r; }
        let _ = Message::parse(&data);
    }

    #[test]
    fn reply_tuple_inverts_set_tuples(e in ct_entry(), snat in any::<bool>(), dnat in any::<bool>()) {
        let Some(orig) = e.orig_tuple() else { return Ok(()) };
        let mut reply = orig.invert();
        if snat && let AddrPair::V4 { dst, .. } = &mut reply.addrs { *dst = Ipv4Addr::new(203, 0, 113, 1); }
        if dnat && let L4::Ports(p) = &mut reply.l4 { p.sport = p.sport.wrapping_add(1); }
        let mut m = CtEntry { status: Some(0x180), ..e };
        m.set_tuples(&orig, &reply);
        prop_assert_eq!(m.reply_tuple().unwrap(), reply);
    }
}

fn ct_msg(e: CtEntry) -> Vec<u8> {
    let m = Message {
        flags: Flags::NONE,
        seq: 7,
        body: Body::Ct(Change::New, e),
    };
    let mut b = vec![0u8; m.buffer_len()];
    m.emit(&mut b).unwrap();
    b
}

fn set_len(b: &mut [u8]) {
    let l = b.len() as u16;
    b[2..4].copy_from_slice(&l.to_be_bytes());
}

#[test]
fn rejects_like_conntrackd() {
    let base = ct_msg(CtEntry {
        l4proto: Some(6),
        ..CtEntry::default()
    });
    // An unknown attribute number (>= NTA_MAX): strict rejects, lenient skips and counts.
    let mut b = base.clone();
    b.extend_from_slice(&[0, 8, 0, nta::MAX as u8, 1, 2, 3, 4]);
    set_len(&mut b);
    assert_eq!(
        Message::parse(&b),
        Err(DecodeError::UnknownAttr {
            offset: 16,
            attr: nta::MAX
        })
    );
    let mut sk = Skipped::default();
    let (m, used) = Message::parse_prefix(&b, 0, Mode::Lenient, &mut sk).unwrap();
    assert_eq!((used, sk.unknown_attrs), (b.len(), 1));
    assert_eq!(
        m.body,
        Body::Ct(
            Change::New,
            CtEntry {
                l4proto: Some(6),
                ..CtEntry::default()
            }
        )
    );
    // A wrong size for a fixed-size attribute.
    let mut b = base.clone();
    b.extend_from_slice(&[0, 6, 0, nta::MARK as u8, 1, 2, 0, 0]);
    set_len(&mut b);
    assert_eq!(
        Message::parse(&b),
        Err(DecodeError::AttrSize {
            offset: 16,
            attr: nta::MARK,
            expected: 8,
            actual: 6
        })
    );
    // An attribute running past its message.
    let mut b = base.clone();
    b.extend_from_slice(&[0, 40, 0, nta::MARK as u8, 1, 2, 3, 4]);
    set_len(&mut b);
    assert!(matches!(
        Message::parse(&b),
        Err(DecodeError::AttrOverrun {
            offset: 16,
            len: 40,
            remaining: 8,
            ..
        })
    ));
    // An attribute shorter than its header.
    let mut b = base.clone();
    b.extend_from_slice(&[0, 2, 0, 7, 0, 0, 0, 0]);
    set_len(&mut b);
    assert!(matches!(
        Message::parse(&b),
        Err(DecodeError::AttrTooShort { len: 2, .. })
    ));
    // A helper name over NFCT_HELPER_NAME_MAX.
    let mut b = base.clone();
    b.extend_from_slice(&[0, 17, 0, nta::HELPER_NAME as u8]);
    b.extend_from_slice(b"0123456789abc\0\0\0");
    set_len(&mut b);
    assert!(matches!(
        Message::parse(&b),
        Err(DecodeError::AttrTooLong {
            max: 16,
            actual: 17,
            ..
        })
    ));
    // Header errors.
    assert!(matches!(
        Message::parse(&base[..5]),
        Err(DecodeError::Truncated {
            expected: 8,
            actual: 5,
            ..
        })
    ));
    let mut b = base.clone();
    b[0] = 0x20;
    assert_eq!(
        Message::parse(&b),
        Err(DecodeError::BadVersion {
            offset: 0,
            version: 2
        })
    );
    let mut b = base.clone();
    b[0] = 0x17;
    assert_eq!(
        Message::parse(&b),
        Err(DecodeError::UnknownType {
            offset: 0,
            msg_type: 7
        })
    );
    let mut b = base.clone();
    b[3] = 200;
    assert!(matches!(
        Message::parse(&b),
        Err(DecodeError::BadLength { len: 200, .. })
    ));
    // An ACK needs the 16-byte header.
    let ack = [0x1a, 0x08, 0, 8, 0, 0, 0, 1];
    assert!(matches!(
        Message::parse(&ack),
        Err(DecodeError::Truncated { expected: 16, .. })
    ));
    // In a datagram, a bad message is skipped when it is delimited, and the next one still decodes.
    let mut d = base.clone();
    d[0] = 0x20;
    d.extend_from_slice(&base);
    let r: Vec<_> = messages(&d, Mode::Strict).collect();
    assert_eq!(r.len(), 2);
    assert!(r[0].is_err() && r[1].is_ok());
}

#[test]
fn trailing_fragment_is_ignored_like_conntrackd() {
    // msg2ct loops while more than 4 bytes remain: a 4-byte tail is ignored.
    let mut b = ct_msg(CtEntry {
        mark: Some(1),
        ..CtEntry::default()
    });
    b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    set_len(&mut b);
    let m = Message::parse(&b).unwrap();
    assert_eq!(
        m.body,
        Body::Ct(
            Change::New,
            CtEntry {
                mark: Some(1),
                ..CtEntry::default()
            }
        )
    );
}

#[test]
fn icmp_id_and_nat_ports_travel_little_endian() {
    // As captured from conntrackd on x86: id 4321 is e1 10, SNAT port 61000 is 48 ee.
    let e = CtEntry {
        icmp_id: Some(4321),
        snat_port: Some(61000),
        zone: Some(5),
        ..CtEntry::default()
    };
    let b = ct_msg(e);
    assert_eq!(
        &b[8..],
        &[
            0, 6, 0, 24, 0xe1, 0x10, 0, 0, 0, 6, 0, 14, 0x48, 0xee, 0, 0, 0, 6, 0, 32, 0, 5, 0, 0
        ]
    );
}

#[test]
fn reply_tuple_from_nat_attributes() {
    let e = CtEntry {
        addrs: Some(AddrPair::V4 {
            src: [192, 168, 1, 11].into(),
            dst: [198, 51, 100, 7].into(),
        }),
        l4proto: Some(6),
        ports: Some(PortPair {
            sport: 41000,
            dport: 443,
        }),
        snat_ipv4: Some([203, 0, 113, 1].into()),
        snat_port: Some(61000),
        ..CtEntry::default()
    };
    let r = e.reply_tuple().unwrap();
    assert_eq!(
        r,
        Tuple {
            addrs: AddrPair::V4 {
                src: [198, 51, 100, 7].into(),
                dst: [203, 0, 113, 1].into()
            },
            l4proto: 6,
            l4: L4::Ports(PortPair {
                sport: 443,
                dport: 61000
            }),
        }
    );
    let icmp = CtEntry {
        addrs: Some(AddrPair::V4 {
            src: [10, 0, 0, 1].into(),
            dst: [10, 0, 0, 2].into(),
        }),
        l4proto: Some(1),
        icmp_type: Some(8),
        icmp_code: Some(0),
        icmp_id: Some(9),
        ..CtEntry::default()
    };
    assert_eq!(
        icmp.reply_tuple().unwrap().l4,
        L4::Icmp {
            icmp_type: 0,
            code: 0,
            id: 9
        }
    );
}

#[test]
fn json_of_messages() {
    let e = CtEntry {
        addrs: Some(AddrPair::V4 {
            src: [10, 0, 0, 1].into(),
            dst: [10, 0, 0, 2].into(),
        }),
        l4proto: Some(6),
        ports: Some(PortPair {
            sport: 1000,
            dport: 80,
        }),
        status: Some(8),
        timeout: Some(30),
        mark: Some(3),
        tcp_state: Some(3),
        zone: Some(2),
        ..CtEntry::default()
    };
    let m = Message {
        flags: Flags::HELLO,
        seq: 42,
        body: Body::Ct(Change::Update, e),
    };
    assert_eq!(
        ctsync_proto::json::message(&m),
        r#"{"type":"ct_upd","flags":["hello"],"seq":42,"entry":{"src":"10.0.0.1","dst":"10.0.0.2","l4proto":6,"sport":1000,"dport":80,"status":8,"timeout":30,"mark":3,"zone":2,"tcp_state":3}}"#
    );
    let ack = Message {
        flags: Flags::ACK.union(Flags::HELLO_BACK),
        seq: 5,
        body: Body::Ctl { from: 1, to: 4 },
    };
    assert_eq!(
        ctsync_proto::json::message(&ack),
        r#"{"type":"ctl","flags":["ack","hello_back"],"seq":5,"ack_from":1,"ack_to":4}"#
    );
    let alive = Message {
        flags: Flags::ALIVE,
        seq: 6,
        body: Body::Ctl { from: 0, to: 0 },
    };
    assert_eq!(
        ctsync_proto::json::message(&alive),
        r#"{"type":"ctl","flags":["alive"],"seq":6}"#
    );
}

#[test]
fn labels_accepted_up_to_conntrackds_limit() {
    // parse.c: NTA_LABELS max_size = NTA_SIZE(NTA_LABELS_MAX_SIZE) = 4 + 1024.
    let base = ct_msg(CtEntry {
        l4proto: Some(17),
        ..CtEntry::default()
    });
    let with_labels = |words: &[u32]| {
        let mut b = base.clone();
        let len = 4 + 4 * words.len();
        b.extend_from_slice(&(len as u16).to_be_bytes());
        b.extend_from_slice(&nta::LABELS.to_be_bytes());
        for w in words {
            b.extend_from_slice(&w.to_be_bytes());
        }
        set_len(&mut b);
        b
    };
    // 256 words (1024 bytes), high words zero: accepted, 128 bits stored, re-encodes byte for byte.
    let mut words = vec![0u32; 256];
    words[0] = 0x8000_0001;
    words[3] = 7;
    let b = with_labels(&words);
    let m = Message::parse(&b).unwrap();
    let Body::Ct(_, e) = &m.body else {
        panic!("not a ct message")
    };
    let l = e.labels.unwrap();
    assert_eq!(l.words(), &[0x8000_0001, 0, 0, 7]);
    assert_eq!(l.wire_words(), 256);
    let mut out = vec![0u8; m.buffer_len()];
    assert_eq!(m.emit(&mut out), Ok(b.len()));
    assert_eq!(out, b);
    // 257 words: over conntrackd's limit, rejected.
    let b = with_labels(&[0u32; 257]);
    assert!(matches!(
        Message::parse(&b),
        Err(DecodeError::AttrTooLong {
            attr: nta::LABELS,
            max: 1028,
            actual: 1032,
            ..
        })
    ));
    // Bits past label 127 are dropped, as the kernel drops them.
    let b = with_labels(&[1, 2, 3, 4, 5, 6]);
    let m = Message::parse(&b).unwrap();
    let Body::Ct(_, e) = &m.body else {
        panic!("not a ct message")
    };
    assert_eq!(e.labels.unwrap().words(), &[1, 2, 3, 4]);
    assert_eq!(e.labels.unwrap().wire_words(), 6);
    // An unaligned bitmap is ignored (ct_parse_clabel returns early), and an earlier one stays.
    let mut b = with_labels(&[9]);
    b.extend_from_slice(&[0, 7, 0, nta::LABELS as u8, 1, 2, 3, 0]);
    set_len(&mut b);
    let m = Message::parse(&b).unwrap();
    let Body::Ct(_, e) = &m.body else {
        panic!("not a ct message")
    };
    assert_eq!(e.labels.unwrap().words(), &[9]);
}

#[test]
fn icmp_reply_types_as_libnetfilter_conntrack() {
    use ctsync_proto::entry::icmp_reply_type;
    // The pairs of libnfct's invmap_icmp / invmap_icmpv6 (and the kernel's invmap).
    for (req, rep) in [(8, 0), (13, 14), (15, 16), (17, 18)] {
        assert_eq!(icmp_reply_type(1, req), rep);
        assert_eq!(icmp_reply_type(1, rep), req);
    }
    for (req, rep) in [(128, 129), (139, 140)] {
        assert_eq!(icmp_reply_type(58, req), rep);
        assert_eq!(icmp_reply_type(58, rep), req);
    }
    // No reply: 255, which the kernel rejects, as libnfct's setter leaves it. Router advertisement and
    // solicitation (9, 10) are not in either table, nor neighbour discovery for ICMPv6.
    for t in [3, 5, 9, 10, 11] {
        assert_eq!(icmp_reply_type(1, t), 255, "icmp type {t}");
    }
    for t in [1, 133, 135, 136] {
        assert_eq!(icmp_reply_type(58, t), 255, "icmpv6 type {t}");
    }
    // ICMP echo types mean nothing for other protocols.
    assert_eq!(icmp_reply_type(58, 8), 255);
}

/// conntrackd's `channel_send` as a reference model: a buffer of `if_mtu - 28` bytes, a message is
/// appended while `len + msg_len < size`, else the buffer is sent and the message retried. Returns the
/// datagram sizes.
fn conntrackd_boundaries(if_mtu: usize, sizes: &[usize]) -> Vec<usize> {
    let size = if_mtu - 28;
    let (mut out, mut len) = (Vec::new(), 0);
    for &l in sizes {
        if len + l >= size {
            out.push(len);
            len = 0;
        }
        len += l;
    }
    if len > 0 {
        out.push(len);
    }
    out
}

fn sized_msg(attrs: usize, seq: u32) -> Message {
    // 8-byte header + NTA_STATUS + `attrs` marks: each attribute is 8 bytes.
    let mut e = CtEntry {
        status: Some(seq),
        ..CtEntry::default()
    };
    if attrs > 0 {
        e.mark = Some(1);
    }
    if attrs > 1 {
        e.timeout = Some(2);
    }
    if attrs > 2 {
        e.sctp_vtag_orig = Some(3);
    }
    Message {
        flags: Flags::NONE,
        seq,
        body: Body::Ct(Change::Update, e),
    }
}

proptest! {
    #[test]
    fn packer_matches_conntrackds_channel_boundaries(
        kinds in proptest::collection::vec(0usize..4, 1..400),
        if_mtu in 100usize..1600,
    ) {
        let msgs: Vec<Message> = kinds.iter().enumerate().map(|(i, k)| sized_msg(*k, i as u32)).collect();
        let sizes: Vec<usize> = msgs.iter().map(Message::buffer_len).collect();
        let mut ours = Vec::new();
        let mut buf = vec![0u8; ctsync_proto::wire::conntrackd_datagram_limit(if_mtu)];
        let mut i = 0;
        while i < msgs.len() {
            let mut p = Packer::new(&mut buf);
            while i < msgs.len() && p.push(&msgs[i]) {
                i += 1;
            }
            prop_assert!(!p.is_empty());
            ours.push(p.len());
        }
        prop_assert_eq!(ours, conntrackd_boundaries(if_mtu, &sizes));
    }
}

#[test]
fn packer_fills_exactly_to_its_limit() {
    let m = sized_msg(3, 1);
    let s = m.buffer_len();
    assert_eq!(s, 40);
    let mut buf = vec![0xaau8; 3 * s];
    let mut p = Packer::new(&mut buf);
    assert!(p.push(&m) && p.push(&m) && p.push(&m));
    assert!(!p.push(&m), "a fourth does not fit");
    assert_eq!(p.len(), 3 * s);
    let mut buf = vec![0xaau8; 3 * s - 1];
    let mut p = Packer::new(&mut buf);
    assert!(p.push(&m) && p.push(&m));
    assert!(!p.push(&m));
    assert_eq!(p.len(), 2 * s);
    assert!(
        buf[2 * s..].iter().all(|b| *b == 0xaa),
        "a refused push writes nothing"
    );
    assert_eq!(ctsync_proto::wire::conntrackd_datagram_limit(1500), 1471);
    assert_eq!(
        ctsync_proto::session::FtfwConfig::default().mtu,
        1471,
        "default: conntrackd's datagrams on a 1500-byte MTU"
    );
}
