//! proptest round trips for every attribute type: any value emits to `buffer_len()` bytes and parses back
//! equal; arbitrary bytes never make the parsers panic.
//!
//! A unit test module (not in `tests/`): it writes raw attribute streams with the crate's private
//! framing helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::{Out, VecOut, cta};
use crate::{
    Counters, CpuStats, DccpInfo, Entry, Expect, ExpectFlags, ExpectNat, Family, GlobalStats,
    Helper, L4, NatRange, ProtoInfo, RawAttr, SctpInfo, SeqAdj, Status, Synproxy, TcpFlags,
    TcpFlagsMasked, TcpInfo, Timestamp, Tuple,
};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn addr_pair() -> BoxedStrategy<(IpAddr, IpAddr)> {
    prop_oneof![
        (any::<u32>(), any::<u32>())
            .prop_map(|(a, b)| (IpAddr::V4(Ipv4Addr::from(a)), IpAddr::V4(Ipv4Addr::from(b)))),
        (any::<u128>(), any::<u128>())
            .prop_map(|(a, b)| (IpAddr::V6(Ipv6Addr::from(a)), IpAddr::V6(Ipv6Addr::from(b)))),
    ]
    .boxed()
}

fn any_ip() -> BoxedStrategy<IpAddr> {
    addr_pair().prop_map(|(a, _)| a).boxed()
}

fn l4() -> BoxedStrategy<L4> {
    prop_oneof![
        Just(L4::None),
        (any::<u16>(), any::<u16>()).prop_map(|(src, dst)| L4::Ports { src, dst }),
        (any::<u16>(), any::<u8>(), any::<u8>()).prop_map(|(id, kind, code)| L4::Icmp {
            id,
            kind,
            code
        }),
        (any::<u16>(), any::<u8>(), any::<u8>()).prop_map(|(id, kind, code)| L4::Icmpv6 {
            id,
            kind,
            code
        }),
    ]
    .boxed()
}

fn raw(kinds: std::ops::RangeInclusive<u16>) -> BoxedStrategy<RawAttr> {
    (
        kinds,
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..24),
    )
        .prop_map(|(k, nested, value)| RawAttr {
            kind: if nested { k | 0x8000 } else { k },
            value,
        })
        .boxed()
}

fn tuple() -> BoxedStrategy<Tuple> {
    (
        addr_pair(),
        any::<u8>(),
        l4(),
        proptest::option::of(any::<u16>()),
        proptest::collection::vec(raw(4..=40), 0..2),
    )
        .prop_map(|((src, dst), proto, l4, zone, unknown)| Tuple {
            src,
            dst,
            proto,
            l4,
            zone,
            unknown,
        })
        .boxed()
}

fn name() -> impl Strategy<Value = String> {
    "[a-z0-9_-]{0,15}"
}

fn protoinfo() -> BoxedStrategy<ProtoInfo> {
    let o8 = || proptest::option::of(any::<u8>());
    let o32 = || proptest::option::of(any::<u32>());
    let flags = || {
        proptest::option::of(
            (any::<u8>(), any::<u8>()).prop_map(|(flags, mask)| TcpFlagsMasked {
                flags: TcpFlags::from_bits_retain(flags),
                mask: TcpFlags::from_bits_retain(mask),
            }),
        )
    };
    prop_oneof![
        (o8(), o8(), o8(), flags(), flags()).prop_map(
            |(state, wscale_orig, wscale_reply, flags_orig, flags_reply)| {
                ProtoInfo::Tcp(TcpInfo {
                    state,
                    wscale_orig,
                    wscale_reply,
                    flags_orig,
                    flags_reply,
                })
            }
        ),
        (o8(), o32(), o32()).prop_map(|(state, vtag_orig, vtag_reply)| ProtoInfo::Sctp(SctpInfo {
            state,
            vtag_orig,
            vtag_reply
        })),
        (o8(), o8(), proptest::option::of(any::<u64>())).prop_map(
            |(state, role, handshake_seq)| ProtoInfo::Dccp(DccpInfo {
                state,
                role,
                handshake_seq
            })
        ),
        raw(4..=30).prop_map(ProtoInfo::Other),
    ]
    .boxed()
}

fn nat() -> BoxedStrategy<NatRange> {
    (
        proptest::option::of(any_ip()),
        proptest::option::of(any_ip()),
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u16>()),
    )
        .prop_map(|(min_ip, max_ip, min_port, max_port)| NatRange {
            min_ip,
            max_ip,
            min_port,
            max_port,
        })
        .boxed()
}

fn seqadj() -> BoxedStrategy<SeqAdj> {
    let o = || proptest::option::of(any::<u32>());
    (o(), o(), o())
        .prop_map(|(correction_pos, offset_before, offset_after)| SeqAdj {
            correction_pos,
            offset_before,
            offset_after,
        })
        .boxed()
}

prop_compose! {
    fn entry()(
        family in prop_oneof![Just(Family::Ipv4), Just(Family::Ipv6)],
        orig in proptest::option::of(tuple()),
        reply in proptest::option::of(tuple()),
        master in proptest::option::of(tuple()),
        status in proptest::option::of(any::<u32>().prop_map(Status::from_bits_retain)),
        nums in (proptest::option::of(any::<u32>()), proptest::option::of(any::<u32>()), proptest::option::of(any::<u32>()),
                 proptest::option::of(any::<u32>()), proptest::option::of(any::<u32>()), proptest::option::of(any::<u32>())),
        zone in proptest::option::of(any::<u16>()),
        counters in (proptest::option::of((any::<u64>(), any::<u64>())), proptest::option::of((any::<u64>(), any::<u64>()))),
        timestamp in proptest::option::of((proptest::option::of(any::<u64>()), proptest::option::of(any::<u64>()))),
        protoinfo in proptest::option::of(protoinfo()),
        nats in (proptest::option::of(nat()), proptest::option::of(nat())),
        seqs in (proptest::option::of(seqadj()), proptest::option::of(seqadj())),
        helper in proptest::option::of((name(), proptest::option::of(proptest::collection::vec(any::<u8>(), 0..12)))),
        secctx in proptest::option::of(name()),
        synproxy in proptest::option::of((proptest::option::of(any::<u32>()), proptest::option::of(any::<u32>()), proptest::option::of(any::<u32>()))),
        labels in (proptest::option::of(proptest::collection::vec(any::<u8>(), 0..17)), proptest::option::of(proptest::collection::vec(any::<u8>(), 0..17))),
        mark_mask in proptest::option::of(any::<u32>()),
        unknown in proptest::collection::vec(raw(25..=200), 0..3),
    ) -> Entry {
        let (timeout, mark, secmark, use_count, id, _) = nums;
        Entry {
            family, orig, reply, master, status, timeout, mark, secmark, zone, use_count, id,
            counters_orig: counters.0.map(|(packets, bytes)| Counters { packets, bytes }),
            counters_reply: counters.1.map(|(packets, bytes)| Counters { packets, bytes }),
            timestamp: timestamp.map(|(start, stop)| Timestamp { start, stop }),
            protoinfo,
            nat_src: nats.0,
            nat_dst: nats.1,
            seq_adj_orig: seqs.0,
            seq_adj_reply: seqs.1,
            helper: helper.map(|(name, info)| Helper { name, info }),
            secctx,
            synproxy: synproxy.map(|(isn, its, tsoff)| Synproxy { isn, its, tsoff }),
            labels: labels.0,
            labels_mask: labels.1,
            mark_mask,
            unknown,
        }
    }
}

prop_compose! {
    fn expect()(
        family in prop_oneof![Just(Family::Ipv4), Just(Family::Ipv6)],
        master in proptest::option::of(tuple()),
        tuple_ in proptest::option::of(tuple()),
        mask in proptest::option::of(tuple()),
        nums in (proptest::option::of(any::<u32>()), proptest::option::of(any::<u32>()), proptest::option::of(any::<u32>()), proptest::option::of(any::<u32>())),
        helper in proptest::option::of(name()),
        zone in proptest::option::of(any::<u16>()),
        nat in proptest::option::of((any::<u32>(), tuple())),
        func in proptest::option::of(name()),
        unknown in proptest::collection::vec(raw(12..=200), 0..3),
    ) -> Expect {
        let (timeout, id, flags, class) = nums;
        let flags = flags.map(ExpectFlags::from_bits_retain);
        Expect {
            family, master, tuple: tuple_, mask, timeout, id, helper, zone, flags, class,
            nat: nat.map(|(dir, tuple)| ExpectNat { dir, tuple }), func, unknown,
        }
    }
}

/// Runs a property on a thread with a large stack: the composed `Entry` strategy is deep, and debug builds
/// overflow the default 2 MiB test-thread stack while generating it.
fn check<S: Strategy>(
    cases: u32,
    strategy: impl FnOnce() -> S + Send + 'static,
    test: impl Fn(S::Value) -> Result<(), TestCaseError> + Send + 'static,
) {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || {
            let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
                cases,
                ..ProptestConfig::default()
            });
            if let Err(e) = runner.run(&strategy(), test) {
                panic!("{e}");
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn entry_round_trip() {
    check(512, entry, |e| {
        let mut buf = vec![0u8; e.buffer_len()];
        prop_assert_eq!(e.emit(&mut buf), Ok(buf.len()));
        let back = Entry::parse(&buf).unwrap();
        prop_assert_eq!(back, e);
        Ok(())
    });
}

#[test]
fn entry_emit_into_short_buffer_is_refused_not_a_panic() {
    check(
        256,
        || (entry(), 1usize..64),
        |(e, cut)| {
            let n = e.buffer_len().saturating_sub(cut);
            let mut buf = vec![0u8; n];
            let short = matches!(
                e.emit(&mut buf),
                Err(crate::EmitError::BufferTooShort { .. })
            );
            prop_assert!(short, "a short buffer must be refused as such");
            Ok(())
        },
    );
}

#[test]
fn tuple_round_trip() {
    check(512, tuple, |t| {
        let mut buf = vec![0u8; t.buffer_len()];
        prop_assert_eq!(t.emit(&mut buf), Ok(buf.len()));
        prop_assert_eq!(Tuple::parse(&buf).unwrap(), t);
        Ok(())
    });
}

#[test]
fn expect_round_trip() {
    check(512, expect, |x| {
        let mut buf = vec![0u8; x.buffer_len()];
        prop_assert_eq!(x.emit(&mut buf), Ok(buf.len()));
        prop_assert_eq!(Expect::parse(&buf).unwrap(), x);
        Ok(())
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn stats_round_trip(v in proptest::collection::vec(any::<u32>(), 15), cpu in any::<u16>(), g in (any::<u32>(), any::<u32>())) {
        let mut buf = Vec::new();
        let mut o = VecOut::new(&mut buf);
        for (i, x) in v.iter().enumerate() {
            o.u32_be(i as u16 + 1, *x);
        }
        let s = CpuStats::parse_attrs(cpu, &buf).unwrap();
        prop_assert_eq!(
            [s.searched, s.found, s.new, s.invalid, s.ignore, s.delete, s.delete_list, s.insert, s.insert_failed,
             s.drop, s.early_drop, s.error, s.search_restart, s.clash_resolve, s.chain_toolong].to_vec(),
            v
        );
        prop_assert_eq!(s.cpu, cpu);
        let mut buf = Vec::new();
        let mut o = VecOut::new(&mut buf);
        o.u32_be(cta::STATS_GLOBAL_ENTRIES, g.0);
        o.u32_be(cta::STATS_GLOBAL_MAX_ENTRIES, g.1);
        prop_assert_eq!(GlobalStats::parse_attrs(&buf).unwrap(), GlobalStats { entries: g.0, max_entries: g.1 });
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Entry::parse(&b);
        let _ = Expect::parse(&b);
        let _ = Tuple::parse(&b);
        let _ = CpuStats::parse_attrs(0, &b);
        for m in super::Msgs::new(&b).flatten() {
            let _ = m.nfgen();
            let _ = m.error_code();
        }
    }
}

proptest! {
    /// The decoder's fast paths (the kernel's usual attribute order) and its general walk agree: the same
    /// tuple written in another order, or with an extra attribute, decodes to the same values.
    #[test]
    fn tuple_decodes_the_same_in_any_attribute_order(
        (src, dst) in addr_pair(),
        proto in any::<u8>(),
        sport in any::<u16>(),
        dport in any::<u16>(),
    ) {
        let want = Tuple::ports(src, dst, proto, sport, dport);
        let mut buf = Vec::new();
        let mut o = VecOut::new(&mut buf);
        let p = o.nest_start(cta::TUPLE_PROTO);
        o.u16_be(cta::PROTO_DST_PORT, dport);
        o.u16_be(cta::PROTO_SRC_PORT, sport);
        o.u8(cta::PROTO_NUM, proto);
        o.nest_end(p);
        let ip = o.nest_start(cta::TUPLE_IP);
        let (ks, kd) = if src.is_ipv4() { (cta::IP_V4_SRC, cta::IP_V4_DST) } else { (cta::IP_V6_SRC, cta::IP_V6_DST) };
        let bytes = |a: IpAddr| match a {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        o.attr(kd, &bytes(dst));
        o.attr(ks, &bytes(src));
        o.attr(99, &[1, 2, 3]); // unknown inside the IP nest: kept as a CTA_TUPLE_IP overlay
        o.nest_end(ip);
        let mut with_unknown = want.clone();
        with_unknown.unknown.push(RawAttr { kind: cta::TUPLE_IP | 0x8000, value: vec![7, 0, 99, 0, 1, 2, 3, 0] });
        prop_assert_eq!(Tuple::parse(&buf).unwrap(), with_unknown);

        // and the usual order (fast path) gives the same
        let mut std_buf = vec![0u8; want.buffer_len()];
        prop_assert!(want.emit(&mut std_buf).is_ok());
        prop_assert_eq!(Tuple::parse(&std_buf).unwrap(), want);
    }
}

/// Unknown attributes inside a nest: `(kind, value)` pairs with kinds from `lo` up (above the nest's known
/// types), some with `NLA_F_NESTED` set.
type Extra = Vec<(u16, Vec<u8>)>;

fn extra(lo: u16) -> impl Fn(&[(u16, bool, Vec<u8>)]) -> Extra {
    move |v| {
        v.iter()
            .map(|(k, nested, val)| {
                let k = lo + k;
                (if *nested { k | 0x8000 } else { k }, val.clone())
            })
            .collect()
    }
}

fn stream(items: &Extra) -> Vec<u8> {
    let mut b = Vec::new();
    let mut o = VecOut::new(&mut b);
    for (k, v) in items {
        o.attr(*k, v);
    }
    b
}

/// Appends the overlay of nest `kind` holding `sub` (a sub-nest overlay, if any) then `items`.
fn push_overlay(list: &mut Vec<RawAttr>, kind: u16, sub: Option<(u16, &Extra)>, items: &Extra) {
    let mut value = Vec::new();
    if let Some((sk, s)) = sub
        && !s.is_empty()
    {
        VecOut::new(&mut value).attr(sk | 0x8000, &stream(s));
    }
    value.extend(stream(items));
    if !value.is_empty() {
        list.push(RawAttr {
            kind: kind | 0x8000,
            value,
        });
    }
}

fn with_tuple_overlays(t: &mut Tuple, ip: &Extra, proto: &Extra) {
    let genuine = std::mem::take(&mut t.unknown);
    push_overlay(&mut t.unknown, cta::TUPLE_IP, None, ip);
    push_overlay(&mut t.unknown, cta::TUPLE_PROTO, None, proto);
    t.unknown.extend(genuine);
}

fn extras_strategy() -> impl Strategy<Value = Vec<Vec<(u16, bool, Vec<u8>)>>> {
    proptest::collection::vec(
        proptest::collection::vec(
            (
                0u16..30,
                any::<bool>(),
                proptest::collection::vec(any::<u8>(), 0..12),
            ),
            0..3,
        ),
        24,
    )
}

#[test]
fn unknown_attributes_inside_every_nest_round_trip() {
    check(
        512,
        || (entry(), extras_strategy()),
        |(mut e, x)| {
            // Tuples: unknown attributes inside CTA_TUPLE_IP (known 1..=4) and CTA_TUPLE_PROTO (known 1..=9).
            for (i, t) in [&mut e.orig, &mut e.reply, &mut e.master]
                .into_iter()
                .enumerate()
            {
                if let Some(t) = t {
                    with_tuple_overlays(t, &extra(5)(&x[2 * i]), &extra(10)(&x[2 * i + 1]));
                }
            }
            // Entry-level nests, in the order the encoder writes them.
            let genuine = std::mem::take(&mut e.unknown);
            let u = &mut e.unknown;
            if e.secctx.is_some() {
                push_overlay(u, cta::SECCTX, None, &extra(2)(&x[6]));
            }
            match &e.protoinfo {
                Some(ProtoInfo::Tcp(_)) => push_overlay(
                    u,
                    cta::PROTOINFO,
                    Some((cta::PROTOINFO_TCP, &extra(6)(&x[7]))),
                    &extra(4)(&x[8]),
                ),
                Some(ProtoInfo::Sctp(_)) => push_overlay(
                    u,
                    cta::PROTOINFO,
                    Some((cta::PROTOINFO_SCTP, &extra(4)(&x[7]))),
                    &extra(4)(&x[8]),
                ),
                Some(ProtoInfo::Dccp(_)) => push_overlay(
                    u,
                    cta::PROTOINFO,
                    Some((cta::PROTOINFO_DCCP, &extra(5)(&x[7]))),
                    &extra(4)(&x[8]),
                ),
                Some(_) => push_overlay(u, cta::PROTOINFO, None, &extra(4)(&x[8])),
                None => {}
            }
            if e.counters_orig.is_some() {
                push_overlay(u, cta::COUNTERS_ORIG, None, &extra(5)(&x[9]));
            }
            if e.counters_reply.is_some() {
                push_overlay(u, cta::COUNTERS_REPLY, None, &extra(5)(&x[10]));
            }
            if e.timestamp.is_some() {
                push_overlay(u, cta::TIMESTAMP, None, &extra(3)(&x[11]));
            }
            if e.helper.is_some() {
                push_overlay(u, cta::HELP, None, &extra(3)(&x[12]));
            }
            if e.seq_adj_orig.is_some() {
                push_overlay(u, cta::SEQ_ADJ_ORIG, None, &extra(4)(&x[13]));
            }
            if e.seq_adj_reply.is_some() {
                push_overlay(u, cta::SEQ_ADJ_REPLY, None, &extra(4)(&x[14]));
            }
            if e.synproxy.is_some() {
                push_overlay(u, cta::SYNPROXY, None, &extra(4)(&x[15]));
            }
            if e.nat_src.is_some() {
                push_overlay(
                    u,
                    cta::NAT_SRC,
                    Some((cta::NAT_PROTO, &extra(3)(&x[16]))),
                    &extra(6)(&x[17]),
                );
            }
            if e.nat_dst.is_some() {
                push_overlay(
                    u,
                    cta::NAT_DST,
                    Some((cta::NAT_PROTO, &extra(3)(&x[18]))),
                    &extra(6)(&x[19]),
                );
            }
            u.extend(genuine);

            let mut buf = vec![0u8; e.buffer_len()];
            prop_assert_eq!(e.emit(&mut buf), Ok(buf.len()));
            let back = Entry::parse(&buf).unwrap();
            prop_assert_eq!(&back, &e);
            // And the bytes are stable: the re-emitted message is the same message.
            let mut again = vec![0u8; back.buffer_len()];
            prop_assert_eq!(back.emit(&mut again), Ok(again.len()));
            prop_assert_eq!(again, buf);
            Ok(())
        },
    );
}

/// A hand-built message in the kernel's attribute order with an unknown attribute (type 30, then a
/// nested type 31) at the end of every nest: it parses, and re-emits byte for byte.
#[test]
fn unknown_attributes_inside_nests_hand_built_vector() {
    let mut b = vec![libc_af_inet(), 0, 0, 0];
    {
        let mut o = VecOut::new(&mut b);
        let odd = |o: &mut VecOut<'_>| {
            o.u32_be(30, 0xdead_beef);
            let n = o.nest_start(31);
            o.u8(1, 7);
            o.nest_end(n);
        };
        for (kind, s, d) in [
            (cta::TUPLE_ORIG, [10, 0, 0, 1], [10, 0, 0, 2]),
            (cta::TUPLE_REPLY, [10, 0, 0, 2], [10, 0, 0, 1]),
        ] {
            let t = o.nest_start(kind);
            let ip = o.nest_start(cta::TUPLE_IP);
            o.attr(cta::IP_V4_SRC, &s);
            o.attr(cta::IP_V4_DST, &d);
            odd(&mut o);
            o.nest_end(ip);
            let p = o.nest_start(cta::TUPLE_PROTO);
            o.u8(cta::PROTO_NUM, 6);
            o.u16_be(cta::PROTO_SRC_PORT, 1000);
            o.u16_be(cta::PROTO_DST_PORT, 80);
            odd(&mut o);
            o.nest_end(p);
            odd(&mut o);
            o.nest_end(t);
        }
        o.u32_be(cta::STATUS, 0x8);
        let pi = o.nest_start(cta::PROTOINFO);
        let tcp = o.nest_start(cta::PROTOINFO_TCP);
        o.u8(cta::TCP_STATE, 3);
        odd(&mut o);
        o.nest_end(tcp);
        odd(&mut o);
        o.nest_end(pi);
        for kind in [cta::COUNTERS_ORIG, cta::COUNTERS_REPLY] {
            let c = o.nest_start(kind);
            o.u64_be(cta::COUNTERS_PACKETS, 3);
            o.u64_be(cta::COUNTERS_BYTES, 180);
            o.u64_be(cta::COUNTERS_PAD, 0);
            odd(&mut o);
            o.nest_end(c);
        }
        let ts = o.nest_start(cta::TIMESTAMP);
        o.u64_be(cta::TIMESTAMP_START, 1);
        odd(&mut o);
        o.nest_end(ts);
        let h = o.nest_start(cta::HELP);
        o.string(cta::HELP_NAME, "ftp");
        odd(&mut o);
        o.nest_end(h);
        for kind in [cta::SEQ_ADJ_ORIG, cta::SEQ_ADJ_REPLY] {
            let s = o.nest_start(kind);
            o.u32_be(cta::SEQADJ_CORRECTION_POS, 9);
            odd(&mut o);
            o.nest_end(s);
        }
        let sp = o.nest_start(cta::SYNPROXY);
        o.u32_be(cta::SYNPROXY_ISN, 1);
        o.u32_be(cta::SYNPROXY_ITS, 2);
        o.u32_be(cta::SYNPROXY_TSOFF, 3);
        odd(&mut o);
        o.nest_end(sp);
        for kind in [cta::NAT_SRC, cta::NAT_DST] {
            let n = o.nest_start(kind);
            o.attr(cta::NAT_V4_MINIP, &[192, 168, 0, 1]);
            let p = o.nest_start(cta::NAT_PROTO);
            o.u16_be(cta::PROTONAT_PORT_MIN, 5);
            odd(&mut o);
            o.nest_end(p);
            odd(&mut o);
            o.nest_end(n);
        }
        odd(&mut o);
        assert!(!o.overflowed());
    }
    let e = Entry::parse(&b).unwrap();
    // The typed fields are all there...
    let orig = e.orig.as_ref().unwrap();
    assert_eq!(orig.l4, L4::Ports { src: 1000, dst: 80 });
    assert_eq!(
        e.counters_reply,
        Some(Counters {
            packets: 3,
            bytes: 180
        })
    );
    assert_eq!(e.nat_dst.unwrap().min_port, Some(5));
    assert!(matches!(
        e.protoinfo,
        Some(ProtoInfo::Tcp(TcpInfo { state: Some(3), .. }))
    ));
    // ...the unknown ones are kept: the tuple's IP and PROTO overlays plus its own two, and one overlay per
    // entry nest plus the two top-level unknowns.
    assert_eq!(orig.unknown.len(), 4, "{:?}", orig.unknown);
    assert_eq!(e.unknown.len(), 10 + 2, "{:?}", e.unknown);
    // ...and everything is written back where it was.
    let mut out = vec![0u8; e.buffer_len()];
    assert_eq!(e.emit(&mut out), Ok(b.len()));
    assert_eq!(out, b);
}

fn libc_af_inet() -> u8 {
    2
}

/// Unknown attributes in an order the encoder does not use (before the known ones, top-level unknowns
/// first, nests out of the kernel's order) and duplicated nests still round-trip: the decoded value is
/// put in the encoder's order, so decode → emit → decode gives an equal value and stable bytes.
#[test]
fn unknown_attributes_in_any_order_and_duplicate_nests_round_trip() {
    let mut b = vec![2u8, 0, 0, 0];
    {
        let mut o = VecOut::new(&mut b);
        o.u32_be(40, 1); // top-level unknown first
        let n = o.nest_start(cta::NAT_DST);
        o.u32_be(30, 2); // unknown before the known ones
        let p = o.nest_start(cta::NAT_PROTO);
        o.u32_be(30, 3);
        o.u16_be(cta::PROTONAT_PORT_MIN, 5);
        o.nest_end(p);
        o.attr(cta::NAT_V4_MINIP, &[192, 168, 0, 1]);
        o.nest_end(n);
        let t = o.nest_start(cta::TUPLE_ORIG);
        o.u32_be(30, 4);
        let p = o.nest_start(cta::TUPLE_PROTO);
        o.u32_be(30, 5);
        o.u8(cta::PROTO_NUM, 17);
        o.u16_be(cta::PROTO_SRC_PORT, 1);
        o.u16_be(cta::PROTO_DST_PORT, 2);
        o.nest_end(p);
        let ip = o.nest_start(cta::TUPLE_IP);
        o.u32_be(30, 6);
        o.attr(cta::IP_V4_SRC, &[10, 0, 0, 1]);
        o.attr(cta::IP_V4_DST, &[10, 0, 0, 2]);
        o.nest_end(ip);
        o.nest_end(t);
        let c = o.nest_start(cta::COUNTERS_ORIG);
        o.u32_be(30, 7);
        o.u64_be(cta::COUNTERS_PACKETS, 1);
        o.nest_end(c);
        // two protoinfo nests: the second (SCTP) wins, and the first one's TCP unknowns go with it
        let pi = o.nest_start(cta::PROTOINFO);
        let tcp = o.nest_start(cta::PROTOINFO_TCP);
        o.u32_be(30, 8);
        o.u8(cta::TCP_STATE, 3);
        o.nest_end(tcp);
        o.nest_end(pi);
        let pi = o.nest_start(cta::PROTOINFO);
        o.u32_be(30, 9);
        let sctp = o.nest_start(cta::PROTOINFO_SCTP);
        o.u8(cta::SCTP_STATE, 3);
        o.nest_end(sctp);
        o.nest_end(pi);
        o.u32_be(41, 10); // another top-level unknown
    }
    let e = Entry::parse(&b).unwrap();
    assert!(matches!(e.protoinfo, Some(ProtoInfo::Sctp(_))));
    // NAT_DST, COUNTERS_ORIG and the second PROTOINFO overlays, then the two top-level unknowns in order
    let kinds: Vec<u16> = e.unknown.iter().map(|u| u.kind & 0x3fff).collect();
    assert_eq!(
        kinds,
        [cta::PROTOINFO, cta::COUNTERS_ORIG, cta::NAT_DST, 40, 41]
    );
    assert_eq!(e.orig.as_ref().unwrap().unknown.len(), 3);
    let mut out = vec![0u8; e.buffer_len()];
    assert_eq!(e.emit(&mut out), Ok(out.len()));
    let back = Entry::parse(&out).unwrap();
    assert_eq!(back, e);
    let mut again = vec![0u8; back.buffer_len()];
    assert_eq!(back.emit(&mut again), Ok(again.len()));
    assert_eq!(again, out);
}

/// An unknown attribute inside `CTA_EXPECT_NAT` and inside the expectation's tuples is kept and written
/// back in place.
#[test]
fn expect_keeps_unknown_attributes_inside_its_nests() {
    let mut b = vec![2u8, 0, 0, 0];
    {
        let mut o = VecOut::new(&mut b);
        let tuple = |o: &mut VecOut<'_>, kind: u16| {
            let t = o.nest_start(kind);
            let ip = o.nest_start(cta::TUPLE_IP);
            o.attr(cta::IP_V4_SRC, &[10, 0, 0, 1]);
            o.attr(cta::IP_V4_DST, &[10, 0, 0, 2]);
            o.u32_be(30, 1);
            o.nest_end(ip);
            let p = o.nest_start(cta::TUPLE_PROTO);
            o.u8(cta::PROTO_NUM, 6);
            o.u16_be(cta::PROTO_SRC_PORT, 0);
            o.u16_be(cta::PROTO_DST_PORT, 2021);
            o.nest_end(p);
            o.nest_end(t);
        };
        tuple(&mut o, cta::EXPECT_MASTER);
        tuple(&mut o, cta::EXPECT_TUPLE);
        o.u32_be(cta::EXPECT_TIMEOUT, 300);
        let n = o.nest_start(cta::EXPECT_NAT);
        o.u32_be(cta::EXPECT_NAT_DIR, 1);
        tuple(&mut o, cta::EXPECT_NAT_TUPLE);
        o.u32_be(30, 2);
        o.nest_end(n);
        o.u32_be(60, 3);
    }
    let e = Expect::parse(&b).unwrap();
    assert_eq!(e.unknown.len(), 2, "{:?}", e.unknown);
    assert_eq!(e.nat.as_ref().unwrap().tuple.unknown.len(), 1);
    let mut out = vec![0u8; e.buffer_len()];
    assert_eq!(e.emit(&mut out), Ok(b.len()));
    assert_eq!(out, b);
}
