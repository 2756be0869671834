//! Byte vectors recorded from the real kernel (6.18), checked both ways: each decodes to the fields the
//! command set, and re-emits to the same bytes.
//!
//! Produced by `ctnl/examples/capture_vectors.rs`:
//! `ip netns add vec && ip netns exec vec cargo run -p ctnl --example capture_vectors; ip netns del vec`
//! (with `nf_conntrack_acct=1` and `nf_conntrack_timestamp=1`), which creates the entries with the commands
//! quoted above each vector and prints the nfnetlink payload (nfgenmsg + attributes) of every message of a
//! raw `IPCTNL_MSG_CT_GET` dump.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ctnl::{Entry, Family, L4, ProtoInfo, Status, Tuple};
use std::net::IpAddr;

/// `conntrack -I -p udp -s 10.0.0.3 -d 10.0.0.4 --sport 1 --dport 2 -t 60 -w 5`
const ZONE_UDP: &str = "020000003400018014000180080001000a000003080002000a0000041c0002800500010011000000060002000001000006000300000200003400028014000180080001000a000004080002000a0000031c00028005000100110000000600020000020000060003000001000006001200000500000800030000000008080008000000000008000c0047f9fcd908000b0000000001080007000000003b1c0009800c00010000000000000000000c00020000000000000000001c000a800c00010000000000000000000c0002000000000000000000100014800c00010018ea40d656a74c4c1c001880080001000000000008000200000000000800030000000000";
/// `conntrack -I -p gre -s 10.0.0.7 -d 10.0.0.8 --srckey 3 --dstkey 4 -t 60`
const GRE: &str = "020000003400018014000180080001000a000007080002000a0000081c000280050001002f000000060002000003000006000300000400003400028014000180080001000a000008080002000a0000071c000280050001002f000000060002000004000006000300000300000800030000000008080008000000000008000c00cf464a3308000b0000000001080007000000003c1c0009800c00010000000000000000000c00020000000000000000001c000a800c00010000000000000000000c0002000000000000000000100014800c00010018ea40d656dbe85c1c001880080001000000000008000200000000000800030000000000";
/// `conntrack -I -p udp -s fd00::1 -d fd00::2 --sport 5 --dport 6 -t 60`
const UDP6: &str = "0a0000004c0001802c00018014000300fd00000000000000000000000000000114000400fd0000000000000000000000000000021c0002800500010011000000060002000005000006000300000600004c0002802c00018014000300fd00000000000000000000000000000214000400fd0000000000000000000000000000011c0002800500010011000000060002000006000006000300000500000800030000000008080008000000000008000c00108f0c0e08000b0000000001080007000000003b1c0009800c00010000000000000000000c00020000000000000000001c000a800c00010000000000000000000c0002000000000000000000100014800c00010018ea40d6568d97f01c001880080001000000000008000200000000000800030000000000";
/// `conntrack -I -p sctp -s 10.0.0.5 -d 10.0.0.6 --sport 7 --dport 8 --state ESTABLISHED --orig-vtag 10 --reply-vtag 11 -t 60`
const SCTP: &str = "020000003400018014000180080001000a000005080002000a0000061c0002800500010084000000060002000007000006000300000800003400028014000180080001000a000006080002000a0000051c0002800500010084000000060002000008000006000300000700000800030000000008080008000000000008000c0003e8559e08000b0000000001080007000000003b200004801c0003800500010004000000080002000a000000080003000b0000001c0009800c00010000000000000000000c00020000000000000000001c000a800c00010000000000000000000c0002000000000000000000100014800c00010018ea40d656c08a291c001880080001000000000008000200000000000800030000000000";
/// `conntrack -I -p icmp -s 10.0.0.1 -d 10.0.0.2 --icmp-type 8 --icmp-code 0 --icmp-id 77 -t 30`
const ICMP: &str = "020000003c00018014000180080001000a000001080002000a00000224000280050001000100000006000400004d0000050005000800000005000600000000003c00028014000180080001000a000002080002000a00000124000280050001000100000006000400004d0000050005000000000005000600000000000800030000000008080008000000000008000c00c931bf3608000b0000000001080007000000001d1c0009800c00010000000000000000000c00020000000000000000001c000a800c00010000000000000000000c0002000000000000000000100014800c00010018ea40d65674f2e61c001880080001000000000008000200000000000800030000000000";
/// `conntrack -I -p udp -s 10.0.0.1 -d 10.0.0.2 --sport 1000 --dport 53 -t 60 -m 7`
const UDP_MARK: &str = "020000003400018014000180080001000a000001080002000a0000021c00028005000100110000000600020003e8000006000300003500003400028014000180080001000a000002080002000a0000011c000280050001001100000006000200003500000600030003e800000800030000000008080008000000000708000c0072f9571f08000b0000000001080007000000003b1c0009800c00010000000000000000000c00020000000000000000001c000a800c00010000000000000000000c0002000000000000000000100014800c00010018ea40d655dc894d1c001880080001000000000008000200000000000800030000000000";
/// `conntrack -I -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 40000 --dport 80 --state ESTABLISHED -u SEEN_REPLY,ASSURED -t 300`
const TCP: &str = "020000003400018014000180080001000a000001080002000a0000021c0002800500010006000000060002009c40000006000300005000003400028014000180080001000a000002080002000a0000011c00028005000100060000000600020000500000060003009c400000080003000000000e080008000000000008000c00f83ee25f08000b0000000001080007000000012b300004802c000180050001000300000005000200000000000500030000000000060004000a000000060005000a0000001c0009800c00010000000000000000000c00020000000000000000001c000a800c00010000000000000000000c0002000000000000000000100014800c00010018ea40d6565a0df41c001880080001000000000008000200000000000800030000000000";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Decodes, re-emits and compares bytes; returns the entry.
fn both_ways(hex_str: &str) -> Entry {
    let bytes = hex::decode(hex_str).unwrap();
    let e = Entry::parse(&bytes).unwrap();
    assert_eq!(e.buffer_len(), bytes.len(), "buffer_len of {e:?}");
    let mut out = vec![0u8; e.buffer_len()];
    assert_eq!(e.emit(&mut out), Ok(bytes.len()));
    assert_eq!(
        hex::encode(&out),
        hex_str,
        "re-emitted bytes differ for {e:?}"
    );
    assert!(
        e.unknown.is_empty(),
        "unexpected unknown attributes: {:?}",
        e.unknown
    );
    e
}

fn common(e: &Entry, family: Family, timeout: u32) {
    assert_eq!(e.family, family);
    // The kernel counts down from the requested timeout; the capture ran within a second or two.
    let t = e.timeout.unwrap();
    assert!(
        t <= timeout && t + 3 >= timeout,
        "timeout {t} for {timeout}"
    );
    assert!(e.status.unwrap().contains(Status::CONFIRMED));
    assert_eq!(e.use_count, Some(1));
    assert!(e.id.is_some());
    // acct and timestamp were on
    assert_eq!(e.counters_orig.unwrap().packets, 0);
    assert_eq!(e.counters_reply.unwrap().bytes, 0);
    assert!(e.timestamp.unwrap().start.unwrap() > 1_600_000_000_000_000_000);
    assert_eq!(e.timestamp.unwrap().stop, None);
    assert!(e.synproxy.is_some());
}

fn ports(t: &Tuple) -> (u16, u16) {
    match t.l4 {
        L4::Ports { src, dst } => (src, dst),
        other => panic!("expected ports, got {other:?}"),
    }
}

#[test]
fn udp_with_mark() {
    let e = both_ways(UDP_MARK);
    common(&e, Family::Ipv4, 60);
    let o = e.orig.as_ref().unwrap();
    assert_eq!(
        (o.src, o.dst, o.proto),
        (ip("10.0.0.1"), ip("10.0.0.2"), 17)
    );
    assert_eq!(ports(o), (1000, 53));
    assert_eq!(e.reply.as_ref().unwrap(), &o.reversed());
    assert_eq!(e.mark, Some(7));
    assert_eq!(e.zone, None);
    assert_eq!(e.protoinfo, None);
}

#[test]
fn tcp_established_assured() {
    let e = both_ways(TCP);
    common(&e, Family::Ipv4, 300);
    let st = e.status.unwrap();
    assert!(st.contains(Status::SEEN_REPLY | Status::ASSURED));
    assert_eq!(ports(e.orig.as_ref().unwrap()), (40000, 80));
    match e.protoinfo {
        Some(ProtoInfo::Tcp(t)) => {
            assert_eq!(t.state, Some(3)); // TCP_CONNTRACK_ESTABLISHED
            assert_eq!(t.wscale_orig, Some(0));
            assert_eq!(t.flags_orig.unwrap().flags.bits(), 0x0a);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn icmp_echo() {
    let e = both_ways(ICMP);
    common(&e, Family::Ipv4, 30);
    assert_eq!(e.orig.as_ref().unwrap().proto, 1);
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
}

#[test]
fn udp_ipv6() {
    let e = both_ways(UDP6);
    common(&e, Family::Ipv6, 60);
    let o = e.orig.as_ref().unwrap();
    assert_eq!((o.src, o.dst), (ip("fd00::1"), ip("fd00::2")));
    assert_eq!(ports(o), (5, 6));
}

#[test]
fn udp_in_zone() {
    let e = both_ways(ZONE_UDP);
    common(&e, Family::Ipv4, 60);
    assert_eq!(e.zone, Some(5));
    assert_eq!(e.orig.as_ref().unwrap().zone, None);
}

#[test]
fn sctp_vtags() {
    let e = both_ways(SCTP);
    common(&e, Family::Ipv4, 60);
    assert_eq!(e.orig.as_ref().unwrap().proto, 132);
    match e.protoinfo {
        Some(ProtoInfo::Sctp(s)) => {
            assert_eq!(s.state, Some(4)); // SCTP_CONNTRACK_ESTABLISHED
            // The kernel carries vtags as big-endian u32 (as in the SCTP header). conntrack-tools 1.4.7
            // writes `--orig-vtag 10` in host order, so the wire holds 0a 00 00 00: numerically 10 << 24.
            assert_eq!(
                (s.vtag_orig, s.vtag_reply),
                (Some(10 << 24), Some(11 << 24))
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn gre_keys() {
    let e = both_ways(GRE);
    common(&e, Family::Ipv4, 60);
    assert_eq!(e.orig.as_ref().unwrap().proto, 47);
    assert_eq!(ports(e.orig.as_ref().unwrap()), (3, 4));
    assert_eq!(ports(e.reply.as_ref().unwrap()), (4, 3));
}

#[test]
fn every_prefix_and_bit_flip_decodes_or_errors_without_panic() {
    for v in [ZONE_UDP, GRE, UDP6, SCTP, ICMP, UDP_MARK, TCP] {
        let bytes = hex::decode(v).unwrap();
        for n in 0..bytes.len() {
            let _ = Entry::parse(&bytes[..n]);
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xff;
            if let Ok(e) = Entry::parse(&b) {
                // whatever decodes must emit without panicking
                let mut out = vec![0u8; e.buffer_len()];
                let _ = e.emit(&mut out);
            }
        }
    }
}

/// Our status bits are the kernel's `IPS_*` bits: checked against netlink-packet-netfilter's copy of the
/// same header (a dependency only, never in our public API).
#[test]
fn status_bits_are_the_kernels() {
    use netlink_packet_netfilter::conntrack::Status as Theirs;
    let e = both_ways(TCP);
    let st = e.status.unwrap();
    assert!(st.contains(Status::ASSURED | Status::SEEN_REPLY | Status::CONFIRMED));
    assert!(Theirs::from_bits_retain(st.bits()).contains(Theirs::Assured | Theirs::SeenReply));
    for (ours, theirs) in [
        (Status::EXPECTED, Theirs::Expected),
        (Status::SEEN_REPLY, Theirs::SeenReply),
        (Status::ASSURED, Theirs::Assured),
        (Status::CONFIRMED, Theirs::Confirmed),
        (Status::SRC_NAT, Theirs::SrcNat),
        (Status::DST_NAT, Theirs::DstNat),
        (Status::SEQ_ADJUST, Theirs::SeqAdjust),
        (Status::SRC_NAT_DONE, Theirs::SrcNatDone),
        (Status::DST_NAT_DONE, Theirs::DstNatDone),
        (Status::DYING, Theirs::Dying),
        (Status::FIXED_TIMEOUT, Theirs::FixedTimeout),
        (Status::TEMPLATE, Theirs::Template),
        (Status::UNTRACKED, Theirs::Untracked),
        (Status::HELPER, Theirs::Helper),
        (Status::OFFLOAD, Theirs::Offload),
    ] {
        assert_eq!(ours.bits(), theirs.bits(), "{ours:?}");
    }
}
