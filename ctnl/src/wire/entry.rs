//! The conntrack entry model and its attribute codec.

use super::{
    Attr, Attrs, Extras, Family, LenCounter, Out, RawAttr, SliceOut, canonical_order, cta,
    emit_extras, family_at, overlay, sub_overlay,
};
use crate::error::{DecodeError, EmitError};
use std::net::{IpAddr, Ipv6Addr};

bitflags::bitflags! {
    /// Connection status bits (`enum ip_conntrack_status`, `CTA_STATUS`). Bits the kernel adds later are
    /// kept as they are (build with [`Status::from_bits_retain`]).
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
    pub struct Status: u32 {
        /// `IPS_EXPECTED`: an expected connection.
        const EXPECTED = 1 << 0;
        /// `IPS_SEEN_REPLY`: packets seen in both directions.
        const SEEN_REPLY = 1 << 1;
        /// `IPS_ASSURED`: will not be early-dropped.
        const ASSURED = 1 << 2;
        /// `IPS_CONFIRMED`: in the main table.
        const CONFIRMED = 1 << 3;
        /// `IPS_SRC_NAT`.
        const SRC_NAT = 1 << 4;
        /// `IPS_DST_NAT`.
        const DST_NAT = 1 << 5;
        /// `IPS_SEQ_ADJUST`.
        const SEQ_ADJUST = 1 << 6;
        /// `IPS_SRC_NAT_DONE`.
        const SRC_NAT_DONE = 1 << 7;
        /// `IPS_DST_NAT_DONE`.
        const DST_NAT_DONE = 1 << 8;
        /// `IPS_DYING`.
        const DYING = 1 << 9;
        /// `IPS_FIXED_TIMEOUT`.
        const FIXED_TIMEOUT = 1 << 10;
        /// `IPS_TEMPLATE`.
        const TEMPLATE = 1 << 11;
        /// `IPS_UNTRACKED` (obsolete; current kernels use bit 12 as `IPS_NAT_CLASH`).
        const UNTRACKED = 1 << 12;
        /// `IPS_NAT_CLASH` (bit 12, shared with the obsolete `IPS_UNTRACKED`).
        const NAT_CLASH = 1 << 12;
        /// `IPS_HELPER`.
        const HELPER = 1 << 13;
        /// `IPS_OFFLOAD`.
        const OFFLOAD = 1 << 14;
        /// `IPS_HW_OFFLOAD`.
        const HW_OFFLOAD = 1 << 15;
    }
}

bitflags::bitflags! {
    /// TCP connection tracking flags of one direction (`IP_CT_TCP_FLAG_*` in
    /// `include/uapi/linux/netfilter/nf_conntrack_tcp.h`). Unknown bits are kept.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
    pub struct TcpFlags: u8 {
        /// `IP_CT_TCP_FLAG_WINDOW_SCALE`: window scaling advertised by the sender.
        const WINDOW_SCALE = 0x01;
        /// `IP_CT_TCP_FLAG_SACK_PERM`: SACK permitted by the sender.
        const SACK_PERM = 0x02;
        /// `IP_CT_TCP_FLAG_CLOSE_INIT`: this side sent FIN first.
        const CLOSE_INIT = 0x04;
        /// `IP_CT_TCP_FLAG_BE_LIBERAL`: window checks are relaxed.
        const BE_LIBERAL = 0x08;
        /// `IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED`: data waits to be acknowledged.
        const DATA_UNACKNOWLEDGED = 0x10;
        /// `IP_CT_TCP_FLAG_MAXACK_SET`: the maximum ACK is known.
        const MAXACK_SET = 0x20;
        /// `IP_CT_EXP_CHALLENGE_ACK`: a challenge ACK is expected.
        const EXP_CHALLENGE_ACK = 0x40;
        /// `IP_CT_TCP_SIMULTANEOUS_OPEN`: simultaneous open.
        const SIMULTANEOUS_OPEN = 0x80;
    }
}

/// The reply type of an ICMP or ICMPv6 type, as the kernel inverts a tuple (`invmap` in
/// `net/netfilter/nf_conntrack_proto_icmp.c` and `nf_conntrack_proto_icmpv6.c`): echo, timestamp,
/// information and address-mask requests and replies in IPv4 (8/0, 13/14, 15/16, 17/18), echo and node
/// information query and reply in IPv6 (128/129, 139/140). `None` for every other type: the kernel tracks no
/// connection of its own for it, and refuses it in a ctnetlink tuple (`EINVAL`).
pub const fn icmp_reply_type(family: Family, kind: u8) -> Option<u8> {
    match (family, kind) {
        (Family::Ipv4, 8) => Some(0),
        (Family::Ipv4, 0) => Some(8),
        (Family::Ipv4, 13) => Some(14),
        (Family::Ipv4, 14) => Some(13),
        (Family::Ipv4, 15) => Some(16),
        (Family::Ipv4, 16) => Some(15),
        (Family::Ipv4, 17) => Some(18),
        (Family::Ipv4, 18) => Some(17),
        (Family::Ipv6, 128) => Some(129),
        (Family::Ipv6, 129) => Some(128),
        (Family::Ipv6, 139) => Some(140),
        (Family::Ipv6, 140) => Some(139),
        _ => None,
    }
}

#[cfg(test)]
mod icmp_tests {
    use super::{Family, icmp_reply_type};

    /// The kernel's `invmap` tables as data (`net/netfilter/nf_conntrack_proto_icmp.c`,
    /// `nf_conntrack_proto_icmpv6.c`: `[ICMP_ECHO] = ICMP_ECHOREPLY + 1`, ...; 0 means no inverse).
    const V4: [(u8, u8); 8] = [
        (8, 0),
        (0, 8),
        (13, 14),
        (14, 13),
        (15, 16),
        (16, 15),
        (17, 18),
        (18, 17),
    ];
    const V6: [(u8, u8); 4] = [(128, 129), (129, 128), (139, 140), (140, 139)];

    #[test]
    fn all_256_types_of_both_families() {
        for (family, table) in [(Family::Ipv4, &V4[..]), (Family::Ipv6, &V6[..])] {
            for t in 0..=255u8 {
                let want = table.iter().find(|(a, _)| *a == t).map(|(_, b)| *b);
                let got = icmp_reply_type(family, t);
                assert_eq!(got, want, "{family:?} type {t}");
                // An involution: the reply of the reply is the request.
                if let Some(r) = got {
                    assert_eq!(icmp_reply_type(family, r), Some(t));
                }
            }
        }
        // Types of one family are not the other's.
        assert_eq!(icmp_reply_type(Family::Ipv6, 8), None);
        assert_eq!(icmp_reply_type(Family::Ipv4, 128), None);
    }
}

/// Layer-4 part of a tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum L4 {
    /// No layer-4 identifiers (e.g. a protocol without ports).
    #[default]
    None,
    /// Source and destination ports (TCP, UDP, UDP-Lite, SCTP, DCCP). GRE keys travel in the same
    /// attributes (`CTA_PROTO_SRC_PORT`/`CTA_PROTO_DST_PORT`), so a GRE tuple uses this variant too.
    Ports {
        /// Source port (or GRE source key).
        src: u16,
        /// Destination port (or GRE destination key).
        dst: u16,
    },
    /// ICMP identifier, type and code.
    Icmp {
        /// `CTA_PROTO_ICMP_ID`.
        id: u16,
        /// `CTA_PROTO_ICMP_TYPE`.
        kind: u8,
        /// `CTA_PROTO_ICMP_CODE`.
        code: u8,
    },
    /// ICMPv6 identifier, type and code.
    Icmpv6 {
        /// `CTA_PROTO_ICMPV6_ID`.
        id: u16,
        /// `CTA_PROTO_ICMPV6_TYPE`.
        kind: u8,
        /// `CTA_PROTO_ICMPV6_CODE`.
        code: u8,
    },
}

/// A connection tuple (`CTA_TUPLE_ORIG`, `CTA_TUPLE_REPLY`, `CTA_TUPLE_MASTER`): addresses, protocol and
/// layer-4 identifiers, plus the per-direction zone when the kernel sends one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tuple {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol number (`CTA_PROTO_NUM`), e.g. 6 for TCP, 17 for UDP.
    pub proto: u8,
    /// Ports or ICMP fields.
    pub l4: L4,
    /// `CTA_TUPLE_ZONE`: per-direction zone.
    pub zone: Option<u16>,
    /// Attributes inside the tuple nest the model does not know, kept raw. Unknown attributes inside
    /// its `CTA_TUPLE_IP` and `CTA_TUPLE_PROTO` nests are kept here too, as overlays of type
    /// `CTA_TUPLE_IP`/`CTA_TUPLE_PROTO` (see [`RawAttr`] on overlays).
    pub unknown: Vec<RawAttr>,
}

/// Types of the overlays a tuple's unknown list may hold (inside these nests, not beside them).
const TUPLE_OVERLAYS: &[u16] = &[cta::TUPLE_IP, cta::TUPLE_PROTO];

/// Types of the overlays an entry's unknown list may hold, in the order [`Entry::emit_attrs`] writes
/// their nests.
const ENTRY_OVERLAYS: &[u16] = &[
    cta::SECCTX,
    cta::PROTOINFO,
    cta::COUNTERS_ORIG,
    cta::COUNTERS_REPLY,
    cta::TIMESTAMP,
    cta::HELP,
    cta::SEQ_ADJ_ORIG,
    cta::SEQ_ADJ_REPLY,
    cta::SYNPROXY,
    cta::NAT_SRC,
    cta::NAT_DST,
];

/// Writes the genuinely unknown attributes of an owner's list (not its overlays).
pub(crate) fn emit_extras_list<O: Out>(o: &mut O, list: &[RawAttr], overlays: &[u16]) {
    for u in list {
        if !overlays.contains(&(u.kind & netlink_packet_core::NLA_TYPE_MASK)) {
            o.attr(u.kind, &u.value);
        }
    }
}

impl Tuple {
    /// A UDP/TCP/SCTP-style tuple with ports.
    pub fn ports(src: IpAddr, dst: IpAddr, proto: u8, sport: u16, dport: u16) -> Self {
        Tuple {
            src,
            dst,
            proto,
            l4: L4::Ports {
                src: sport,
                dst: dport,
            },
            zone: None,
            unknown: Vec::new(),
        }
    }

    /// The address family of the source address.
    pub fn family(&self) -> Family {
        Family::of(&self.src)
    }

    /// The tuple with source and destination swapped, ports too: the reply tuple of a connection without
    /// NAT. An ICMP or ICMPv6 type becomes its reply type ([`icmp_reply_type`]); a type without one (the
    /// kernel tracks no connection for it) is kept as it is. The zone is kept; unknown attributes are not.
    pub fn reversed(&self) -> Tuple {
        let l4 = match self.l4 {
            L4::Ports { src, dst } => L4::Ports { src: dst, dst: src },
            L4::Icmp { id, kind, code } => L4::Icmp {
                id,
                kind: icmp_reply_type(Family::Ipv4, kind).unwrap_or(kind),
                code,
            },
            L4::Icmpv6 { id, kind, code } => L4::Icmpv6 {
                id,
                kind: icmp_reply_type(Family::Ipv6, kind).unwrap_or(kind),
                code,
            },
            L4::None => L4::None,
        };
        Tuple {
            src: self.dst,
            dst: self.src,
            proto: self.proto,
            l4,
            zone: self.zone,
            unknown: Vec::new(),
        }
    }

    /// Parses the contents of a tuple nest (the attributes inside `CTA_TUPLE_*`). `base` is the offset of
    /// `buf` in the outer message, for error reports.
    pub(crate) fn parse_at(buf: &[u8], base: usize) -> Result<Self, DecodeError> {
        let mut src = None;
        let mut dst = None;
        let mut proto = None;
        let mut l4 = L4::None;
        let mut zone = None;
        let mut unknown = Vec::new();
        let (mut sport, mut dport) = (None, None);
        let (mut icmp_id, mut icmp_type, mut icmp_code) = (None, None, None);
        let mut v6 = false;
        for a in Attrs::new(buf, base) {
            let a = a?;
            match a.kind {
                cta::TUPLE_IP => {
                    if let Some((s, d)) = fast_ip_pair(a.value) {
                        src = Some(s);
                        dst = Some(d);
                        continue;
                    }
                    let mut extras = Extras::default();
                    for ip in a.nested() {
                        let ip = ip?;
                        match ip.kind {
                            cta::IP_V4_SRC => src = Some(IpAddr::V4(ip.ipv4("CTA_IP_V4_SRC")?)),
                            cta::IP_V4_DST => dst = Some(IpAddr::V4(ip.ipv4("CTA_IP_V4_DST")?)),
                            cta::IP_V6_SRC => src = Some(IpAddr::V6(ip.ipv6("CTA_IP_V6_SRC")?)),
                            cta::IP_V6_DST => dst = Some(IpAddr::V6(ip.ipv6("CTA_IP_V6_DST")?)),
                            _ => extras.keep(&ip),
                        }
                    }
                    extras.push_into(&mut unknown, cta::TUPLE_IP);
                }
                cta::TUPLE_PROTO => {
                    if let Some((n, sp, dp)) = fast_ports(a.value) {
                        proto = Some(n);
                        sport = Some(sp);
                        dport = Some(dp);
                        continue;
                    }
                    let mut extras = Extras::default();
                    for p in a.nested() {
                        let p = p?;
                        match p.kind {
                            cta::PROTO_NUM => proto = Some(p.u8("CTA_PROTO_NUM")?),
                            cta::PROTO_SRC_PORT => sport = Some(p.u16_be("CTA_PROTO_SRC_PORT")?),
                            cta::PROTO_DST_PORT => dport = Some(p.u16_be("CTA_PROTO_DST_PORT")?),
                            cta::PROTO_ICMP_ID => icmp_id = Some(p.u16_be("CTA_PROTO_ICMP_ID")?),
                            cta::PROTO_ICMP_TYPE => icmp_type = Some(p.u8("CTA_PROTO_ICMP_TYPE")?),
                            cta::PROTO_ICMP_CODE => icmp_code = Some(p.u8("CTA_PROTO_ICMP_CODE")?),
                            cta::PROTO_ICMPV6_ID => {
                                v6 = true;
                                icmp_id = Some(p.u16_be("CTA_PROTO_ICMPV6_ID")?)
                            }
                            cta::PROTO_ICMPV6_TYPE => {
                                v6 = true;
                                icmp_type = Some(p.u8("CTA_PROTO_ICMPV6_TYPE")?)
                            }
                            cta::PROTO_ICMPV6_CODE => {
                                v6 = true;
                                icmp_code = Some(p.u8("CTA_PROTO_ICMPV6_CODE")?)
                            }
                            _ => extras.keep(&p),
                        }
                    }
                    extras.push_into(&mut unknown, cta::TUPLE_PROTO);
                }
                cta::TUPLE_ZONE => zone = Some(a.u16_be("CTA_TUPLE_ZONE")?),
                _ => unknown.push(a.raw()),
            }
        }
        if sport.is_some() || dport.is_some() {
            l4 = L4::Ports {
                src: sport.unwrap_or(0),
                dst: dport.unwrap_or(0),
            };
        } else if icmp_id.is_some() || icmp_type.is_some() || icmp_code.is_some() {
            let (id, kind, code) = (
                icmp_id.unwrap_or(0),
                icmp_type.unwrap_or(0),
                icmp_code.unwrap_or(0),
            );
            l4 = if v6 {
                L4::Icmpv6 { id, kind, code }
            } else {
                L4::Icmp { id, kind, code }
            };
        }
        let src = src.ok_or(DecodeError::Missing {
            what: "CTA_IP_*_SRC",
        })?;
        let dst = dst.ok_or(DecodeError::Missing {
            what: "CTA_IP_*_DST",
        })?;
        if src.is_ipv4() != dst.is_ipv4() {
            return Err(DecodeError::Invalid {
                what: "tuple address families differ",
                offset: base,
                value: 0,
            });
        }
        let proto = proto.ok_or(DecodeError::Missing {
            what: "CTA_PROTO_NUM",
        })?;
        canonical_order(&mut unknown, TUPLE_OVERLAYS);
        Ok(Tuple {
            src,
            dst,
            proto,
            l4,
            zone,
            unknown,
        })
    }

    /// Parses the contents of a tuple nest.
    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        Self::parse_at(buf, 0)
    }

    /// Writes the contents of a tuple nest (without the outer `CTA_TUPLE_*` header).
    pub(crate) fn emit_inner<O: Out>(&self, o: &mut O) {
        let ip = o.nest_start(cta::TUPLE_IP);
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                o.attr(cta::IP_V4_SRC, &s.octets());
                o.attr(cta::IP_V4_DST, &d.octets());
            }
            (s, d) => {
                o.attr(cta::IP_V6_SRC, &v6(s).octets());
                o.attr(cta::IP_V6_DST, &v6(d).octets());
            }
        }
        emit_extras(o, overlay(&self.unknown, cta::TUPLE_IP), &[]);
        o.nest_end(ip);
        let p = o.nest_start(cta::TUPLE_PROTO);
        o.u8(cta::PROTO_NUM, self.proto);
        match self.l4 {
            L4::None => {}
            L4::Ports { src, dst } => {
                o.u16_be(cta::PROTO_SRC_PORT, src);
                o.u16_be(cta::PROTO_DST_PORT, dst);
            }
            L4::Icmp { id, kind, code } => {
                o.u16_be(cta::PROTO_ICMP_ID, id);
                o.u8(cta::PROTO_ICMP_TYPE, kind);
                o.u8(cta::PROTO_ICMP_CODE, code);
            }
            L4::Icmpv6 { id, kind, code } => {
                o.u16_be(cta::PROTO_ICMPV6_ID, id);
                o.u8(cta::PROTO_ICMPV6_TYPE, kind);
                o.u8(cta::PROTO_ICMPV6_CODE, code);
            }
        }
        emit_extras(o, overlay(&self.unknown, cta::TUPLE_PROTO), &[]);
        o.nest_end(p);
        if let Some(z) = self.zone {
            o.u16_be(cta::TUPLE_ZONE, z);
        }
        emit_extras_list(o, &self.unknown, TUPLE_OVERLAYS);
    }

    /// Writes a full tuple attribute of type `kind` (e.g. `CTA_TUPLE_ORIG`).
    pub(crate) fn emit_as<O: Out>(&self, o: &mut O, kind: u16) {
        let t = o.nest_start(kind);
        self.emit_inner(o);
        o.nest_end(t);
    }

    /// Size of the tuple nest contents.
    pub fn buffer_len(&self) -> usize {
        let mut c = LenCounter::default();
        self.emit_inner(&mut c);
        c.len
    }

    /// Writes the tuple nest contents into `buf` (at least [`Tuple::buffer_len`] bytes); returns the bytes
    /// written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let actual = buf.len();
        let mut s = SliceOut::new(buf);
        self.emit_inner(&mut s);
        if s.overflowed() {
            return Err(EmitError::overflow("tuple", self.buffer_len(), actual));
        }
        Ok(s.pos)
    }
}

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V6(a) => a,
        IpAddr::V4(a) => a.to_ipv6_mapped(),
    }
}

/// Packet and byte counters of one direction (`CTA_COUNTERS_ORIG`/`CTA_COUNTERS_REPLY`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Counters {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

impl Counters {
    /// Counters of `packets` packets and `bytes` bytes.
    pub const fn new(packets: u64, bytes: u64) -> Self {
        Counters { packets, bytes }
    }
}

/// Start and stop timestamps in nanoseconds since the epoch (`CTA_TIMESTAMP`), when `nf_conntrack_timestamp`
/// is on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Timestamp {
    /// `CTA_TIMESTAMP_START`.
    pub start: Option<u64>,
    /// `CTA_TIMESTAMP_STOP` (only in DESTROY events).
    pub stop: Option<u64>,
}

/// TCP flags of one direction with their mask (`struct nf_ct_tcp_flags`): on an update, the kernel
/// changes the `mask` bits to their value in `flags`; in a dump the mask is empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TcpFlagsMasked {
    /// The flags.
    pub flags: TcpFlags,
    /// Which flags to change (on update).
    pub mask: TcpFlags,
}

/// TCP protocol state (`CTA_PROTOINFO_TCP`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct TcpInfo {
    /// `CTA_PROTOINFO_TCP_STATE` (`enum tcp_conntrack`: 1 SYN_SENT, 3 ESTABLISHED, 7 TIME_WAIT, ...).
    pub state: Option<u8>,
    /// Window scale, original direction.
    pub wscale_orig: Option<u8>,
    /// Window scale, reply direction.
    pub wscale_reply: Option<u8>,
    /// Flags, original direction.
    pub flags_orig: Option<TcpFlagsMasked>,
    /// Flags, reply direction.
    pub flags_reply: Option<TcpFlagsMasked>,
}

/// SCTP protocol state (`CTA_PROTOINFO_SCTP`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SctpInfo {
    /// `CTA_PROTOINFO_SCTP_STATE`.
    pub state: Option<u8>,
    /// Verification tag, original direction.
    pub vtag_orig: Option<u32>,
    /// Verification tag, reply direction.
    pub vtag_reply: Option<u32>,
}

/// DCCP protocol state (`CTA_PROTOINFO_DCCP`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct DccpInfo {
    /// `CTA_PROTOINFO_DCCP_STATE`.
    pub state: Option<u8>,
    /// `CTA_PROTOINFO_DCCP_ROLE`.
    pub role: Option<u8>,
    /// `CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ`.
    pub handshake_seq: Option<u64>,
}

/// Protocol-specific state (`CTA_PROTOINFO`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProtoInfo {
    /// TCP.
    Tcp(TcpInfo),
    /// SCTP.
    Sctp(SctpInfo),
    /// DCCP.
    Dccp(DccpInfo),
    /// A protocol-info nest the model does not know, kept raw (the inner attribute).
    Other(RawAttr),
}

/// A NAT range (`CTA_NAT_SRC`/`CTA_NAT_DST`), used when creating an entry with NAT.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct NatRange {
    /// Lowest address (`CTA_NAT_V4_MINIP`/`CTA_NAT_V6_MINIP`).
    pub min_ip: Option<IpAddr>,
    /// Highest address.
    pub max_ip: Option<IpAddr>,
    /// Lowest port (`CTA_PROTONAT_PORT_MIN`).
    pub min_port: Option<u16>,
    /// Highest port.
    pub max_port: Option<u16>,
}

/// TCP sequence adjustment of one direction (`CTA_SEQ_ADJ_ORIG`/`CTA_SEQ_ADJ_REPLY`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SeqAdj {
    /// `CTA_SEQADJ_CORRECTION_POS`.
    pub correction_pos: Option<u32>,
    /// `CTA_SEQADJ_OFFSET_BEFORE`.
    pub offset_before: Option<u32>,
    /// `CTA_SEQADJ_OFFSET_AFTER`.
    pub offset_after: Option<u32>,
}

/// SYN proxy state (`CTA_SYNPROXY`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Synproxy {
    /// `CTA_SYNPROXY_ISN`.
    pub isn: Option<u32>,
    /// `CTA_SYNPROXY_ITS`.
    pub its: Option<u32>,
    /// `CTA_SYNPROXY_TSOFF`.
    pub tsoff: Option<u32>,
}

/// The helper attached to a connection (`CTA_HELP`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Helper {
    /// `CTA_HELP_NAME`, e.g. `"ftp"`.
    pub name: String,
    /// `CTA_HELP_INFO`: helper-private data, raw.
    pub info: Option<Vec<u8>>,
}

/// One conntrack entry: every attribute a 6.x kernel sends, each optional (a dump, an event and a request
/// carry different subsets). Build one with [`Entry::new`] (both tuples) or [`Entry::for_update`] (the
/// original tuple only), then set fields; the struct grows with the kernel, so it cannot be written as a
/// literal outside this crate.
///
/// Fixed-size fields are plain values, so decoding a typical entry allocates nothing; only helper names,
/// security contexts, labels and unknown attributes use the heap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Entry {
    /// Address family (the nfgenmsg header's).
    pub family: Family,
    /// Original-direction tuple.
    pub orig: Option<Tuple>,
    /// Reply-direction tuple.
    pub reply: Option<Tuple>,
    /// Master connection's tuple (for expected connections).
    pub master: Option<Tuple>,
    /// Status bits.
    pub status: Option<Status>,
    /// Seconds until the entry expires.
    pub timeout: Option<u32>,
    /// Connection mark.
    pub mark: Option<u32>,
    /// Security mark (`CTA_SECMARK`, obsolete but still sent by some kernels).
    pub secmark: Option<u32>,
    /// Conntrack zone.
    pub zone: Option<u16>,
    /// Reference count (`CTA_USE`).
    pub use_count: Option<u32>,
    /// Kernel id of the entry (`CTA_ID`).
    pub id: Option<u32>,
    /// Original-direction counters (when `nf_conntrack_acct` is on).
    pub counters_orig: Option<Counters>,
    /// Reply-direction counters.
    pub counters_reply: Option<Counters>,
    /// Timestamps (when `nf_conntrack_timestamp` is on).
    pub timestamp: Option<Timestamp>,
    /// Protocol state.
    pub protoinfo: Option<ProtoInfo>,
    /// Source NAT range (requests only; the kernel does not dump it).
    pub nat_src: Option<NatRange>,
    /// Destination NAT range (requests only).
    pub nat_dst: Option<NatRange>,
    /// Sequence adjustment, original direction.
    pub seq_adj_orig: Option<SeqAdj>,
    /// Sequence adjustment, reply direction.
    pub seq_adj_reply: Option<SeqAdj>,
    /// Helper.
    pub helper: Option<Helper>,
    /// Security context name (`CTA_SECCTX_NAME`).
    pub secctx: Option<String>,
    /// Synproxy state.
    pub synproxy: Option<Synproxy>,
    /// Connection labels bitmap (`CTA_LABELS`), raw bytes (host-endian 32-bit words).
    pub labels: Option<Vec<u8>>,
    /// Which labels to change (`CTA_LABELS_MASK`, requests only).
    pub labels_mask: Option<Vec<u8>>,
    /// Mark mask (`CTA_MARK_MASK`, requests and filters only).
    pub mark_mask: Option<u32>,
    /// Top-level attributes the model does not know, kept raw for a round trip. Unknown attributes
    /// inside the known nests (`CTA_PROTOINFO` and its TCP/SCTP/DCCP nests, `CTA_COUNTERS_*`,
    /// `CTA_TIMESTAMP`, `CTA_NAT_*` and `CTA_NAT_PROTO`, `CTA_SEQ_ADJ_*`, `CTA_SYNPROXY`, `CTA_HELP`,
    /// `CTA_SECCTX`) are kept here too, as overlays whose type is the nest's (see [`RawAttr`]); tuples keep theirs in [`Tuple::unknown`].
    pub unknown: Vec<RawAttr>,
}

impl Entry {
    /// An entry with the given original and reply tuples and nothing else. The family comes from the
    /// original tuple.
    pub fn new(orig: Tuple, reply: Tuple) -> Self {
        Entry {
            family: orig.family(),
            orig: Some(orig),
            reply: Some(reply),
            ..Entry::default()
        }
    }

    /// An entry with only an original tuple (and the family it implies): what an update or a delete by
    /// entry needs.
    pub fn for_update(orig: Tuple) -> Self {
        Entry {
            family: orig.family(),
            orig: Some(orig),
            ..Entry::default()
        }
    }

    /// Parses the attributes of a conntrack message (what follows the nfgenmsg header).
    #[inline]
    pub(crate) fn parse_attrs(family: Family, buf: &[u8]) -> Result<Self, DecodeError> {
        let mut e = Entry {
            family,
            ..Entry::default()
        };
        e.merge_attrs(buf, 0)?;
        Ok(e)
    }

    /// Replaces this entry's contents with the attributes in `buf` (what [`Entry::parse_attrs`] returns),
    /// reusing heap storage of the previous contents where it can. On error the entry holds what was
    /// decoded before the bad attribute.
    pub(crate) fn reparse(&mut self, family: Family, buf: &[u8]) -> Result<(), DecodeError> {
        let mut unknown = std::mem::take(&mut self.unknown);
        unknown.clear();
        *self = Entry {
            family,
            unknown,
            ..Entry::default()
        };
        self.merge_attrs(buf, 0)
    }

    /// Parses an nfnetlink payload: the 4-byte nfgenmsg header (whose family must be `AF_INET` or
    /// `AF_INET6`) then the attributes.
    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        let (hdr, rest) = buf.split_at_checked(4).ok_or(DecodeError::Truncated {
            what: "nfgenmsg",
            offset: 0,
            expected: 4,
            actual: buf.len(),
        })?;
        let mut e = Entry {
            family: family_at(hdr[0], 0)?,
            ..Entry::default()
        };
        e.merge_attrs(rest, 4)?;
        Ok(e)
    }

    pub(crate) fn merge_attrs(&mut self, buf: &[u8], base: usize) -> Result<(), DecodeError> {
        for a in Attrs::new(buf, base) {
            let a = a?;
            match a.kind {
                cta::TUPLE_ORIG => self.orig = Some(Tuple::parse_at(a.value, a.value_offset())?),
                cta::TUPLE_REPLY => self.reply = Some(Tuple::parse_at(a.value, a.value_offset())?),
                cta::TUPLE_MASTER => {
                    self.master = Some(Tuple::parse_at(a.value, a.value_offset())?)
                }
                cta::STATUS => {
                    self.status = Some(Status::from_bits_retain(a.u32_be("CTA_STATUS")?))
                }
                cta::TIMEOUT => self.timeout = Some(a.u32_be("CTA_TIMEOUT")?),
                cta::MARK => self.mark = Some(a.u32_be("CTA_MARK")?),
                cta::SECMARK => self.secmark = Some(a.u32_be("CTA_SECMARK")?),
                cta::ZONE => self.zone = Some(a.u16_be("CTA_ZONE")?),
                cta::USE => self.use_count = Some(a.u32_be("CTA_USE")?),
                cta::ID => self.id = Some(a.u32_be("CTA_ID")?),
                cta::COUNTERS_ORIG => {
                    self.counters_orig = Some(parse_counters(&a, &mut self.unknown)?)
                }
                cta::COUNTERS_REPLY => {
                    self.counters_reply = Some(parse_counters(&a, &mut self.unknown)?)
                }
                cta::TIMESTAMP => self.timestamp = Some(parse_timestamp(&a, &mut self.unknown)?),
                cta::PROTOINFO => self.protoinfo = parse_protoinfo(&a, &mut self.unknown)?,
                cta::NAT_SRC => self.nat_src = Some(parse_nat(&a, &mut self.unknown)?),
                cta::NAT_DST => self.nat_dst = Some(parse_nat(&a, &mut self.unknown)?),
                cta::SEQ_ADJ_ORIG => self.seq_adj_orig = Some(parse_seqadj(&a, &mut self.unknown)?),
                cta::SEQ_ADJ_REPLY => {
                    self.seq_adj_reply = Some(parse_seqadj(&a, &mut self.unknown)?)
                }
                cta::HELP => self.helper = Some(parse_helper(&a, &mut self.unknown)?),
                cta::SECCTX => {
                    let mut name = None;
                    let mut extras = Extras::default();
                    for s in a.nested() {
                        let s = s?;
                        if s.kind == cta::SECCTX_NAME {
                            name = Some(s.string("CTA_SECCTX_NAME")?);
                        } else {
                            extras.keep(&s);
                        }
                    }
                    extras.push_into(&mut self.unknown, cta::SECCTX);
                    self.secctx = Some(name.ok_or(DecodeError::Missing {
                        what: "CTA_SECCTX_NAME",
                    })?);
                }
                cta::SYNPROXY => {
                    if let Some(s) = fast_synproxy(a.value) {
                        self.synproxy = Some(s);
                        continue;
                    }
                    let mut s = Synproxy::default();
                    let mut extras = Extras::default();
                    for n in a.nested() {
                        let n = n?;
                        match n.kind {
                            cta::SYNPROXY_ISN => s.isn = Some(n.u32_be("CTA_SYNPROXY_ISN")?),
                            cta::SYNPROXY_ITS => s.its = Some(n.u32_be("CTA_SYNPROXY_ITS")?),
                            cta::SYNPROXY_TSOFF => s.tsoff = Some(n.u32_be("CTA_SYNPROXY_TSOFF")?),
                            _ => extras.keep(&n),
                        }
                    }
                    extras.push_into(&mut self.unknown, cta::SYNPROXY);
                    self.synproxy = Some(s);
                }
                cta::LABELS => self.labels = Some(a.value.to_vec()),
                cta::LABELS_MASK => self.labels_mask = Some(a.value.to_vec()),
                cta::MARK_MASK => self.mark_mask = Some(a.u32_be("CTA_MARK_MASK")?),
                _ => self.unknown.push(a.raw()),
            }
        }
        canonical_order(&mut self.unknown, ENTRY_OVERLAYS);
        Ok(())
    }

    /// Writes every present attribute (not the nfgenmsg header) in the kernel's order.
    pub(crate) fn emit_attrs<O: Out>(&self, o: &mut O) {
        self.emit_attrs_status(o, Status::empty());
    }

    /// Like [`Entry::emit_attrs`], with `status_or` OR-ed into a present status (requests set
    /// `IPS_CONFIRMED`, which the kernel sets on every entry it creates and refuses to see cleared).
    pub(crate) fn emit_attrs_status<O: Out>(&self, o: &mut O, status_or: Status) {
        // The order is the kernel's dump order (`ctnetlink_fill_info`), so that a dumped message is
        // re-emitted byte for byte.
        if let Some(t) = &self.orig {
            t.emit_as(o, cta::TUPLE_ORIG);
        }
        if let Some(t) = &self.reply {
            t.emit_as(o, cta::TUPLE_REPLY);
        }
        if let Some(z) = self.zone {
            o.u16_be(cta::ZONE, z);
        }
        if let Some(s) = self.status {
            o.u32_be(cta::STATUS, (s | status_or).bits());
        }
        if let Some(v) = self.mark {
            o.u32_be(cta::MARK, v);
        }
        if let Some(v) = self.mark_mask {
            o.u32_be(cta::MARK_MASK, v);
        }
        if let Some(v) = self.secmark {
            o.u32_be(cta::SECMARK, v);
        }
        if let Some(s) = &self.secctx {
            let n = o.nest_start(cta::SECCTX);
            o.string(cta::SECCTX_NAME, s);
            emit_extras(o, overlay(&self.unknown, cta::SECCTX), &[]);
            o.nest_end(n);
        }
        if let Some(v) = self.id {
            o.u32_be(cta::ID, v);
        }
        if let Some(v) = self.use_count {
            o.u32_be(cta::USE, v);
        }
        if let Some(t) = &self.master {
            t.emit_as(o, cta::TUPLE_MASTER);
        }
        if let Some(v) = self.timeout {
            o.u32_be(cta::TIMEOUT, v);
        }
        if let Some(p) = &self.protoinfo {
            emit_protoinfo(o, p, overlay(&self.unknown, cta::PROTOINFO));
        }
        if let Some(c) = &self.counters_orig {
            emit_counters(o, cta::COUNTERS_ORIG, c, &self.unknown);
        }
        if let Some(c) = &self.counters_reply {
            emit_counters(o, cta::COUNTERS_REPLY, c, &self.unknown);
        }
        if let Some(t) = &self.timestamp {
            let n = o.nest_start(cta::TIMESTAMP);
            if let Some(v) = t.start {
                o.u64_be(cta::TIMESTAMP_START, v);
            }
            if let Some(v) = t.stop {
                o.u64_be(cta::TIMESTAMP_STOP, v);
            }
            emit_extras(o, overlay(&self.unknown, cta::TIMESTAMP), &[]);
            o.nest_end(n);
        }
        if let Some(h) = &self.helper {
            let n = o.nest_start(cta::HELP);
            o.string(cta::HELP_NAME, &h.name);
            if let Some(i) = &h.info {
                o.attr(cta::HELP_INFO, i);
            }
            emit_extras(o, overlay(&self.unknown, cta::HELP), &[]);
            o.nest_end(n);
        }
        if let Some(l) = &self.labels {
            o.attr(cta::LABELS, l);
        }
        if let Some(l) = &self.labels_mask {
            o.attr(cta::LABELS_MASK, l);
        }
        if let Some(s) = &self.seq_adj_orig {
            emit_seqadj(o, cta::SEQ_ADJ_ORIG, s, &self.unknown);
        }
        if let Some(s) = &self.seq_adj_reply {
            emit_seqadj(o, cta::SEQ_ADJ_REPLY, s, &self.unknown);
        }
        if let Some(s) = &self.synproxy {
            let n = o.nest_start(cta::SYNPROXY);
            if let Some(v) = s.isn {
                o.u32_be(cta::SYNPROXY_ISN, v);
            }
            if let Some(v) = s.its {
                o.u32_be(cta::SYNPROXY_ITS, v);
            }
            if let Some(v) = s.tsoff {
                o.u32_be(cta::SYNPROXY_TSOFF, v);
            }
            emit_extras(o, overlay(&self.unknown, cta::SYNPROXY), &[]);
            o.nest_end(n);
        }
        if let Some(n) = &self.nat_src {
            emit_nat(o, cta::NAT_SRC, n, &self.unknown);
        }
        if let Some(n) = &self.nat_dst {
            emit_nat(o, cta::NAT_DST, n, &self.unknown);
        }
        emit_extras_list(o, &self.unknown, ENTRY_OVERLAYS);
    }

    /// Size of the nfnetlink payload [`Entry::emit`] writes (nfgenmsg header plus attributes).
    pub fn buffer_len(&self) -> usize {
        let mut c = LenCounter {
            len: 4,
            ..LenCounter::default()
        };
        self.emit_attrs(&mut c);
        c.len
    }

    /// Writes the nfnetlink payload (nfgenmsg with version 0, then attributes) into `buf`; returns the bytes
    /// written. An error when `buf` is shorter than [`Entry::buffer_len`] or a value is too long for a
    /// netlink attribute.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let actual = buf.len();
        let overflow = || EmitError::overflow("entry", self.buffer_len(), actual);
        let (hdr, rest) = buf.split_at_mut_checked(4).ok_or_else(overflow)?;
        hdr.copy_from_slice(&[self.family.to_af(), 0, 0, 0]);
        let mut s = SliceOut::new(rest);
        self.emit_attrs(&mut s);
        if s.overflowed() {
            return Err(overflow());
        }
        Ok(4 + s.pos)
    }
}

/// A netlink attribute header as it appears in memory (native-endian length and type).
const fn nla_hdr(len: u16, kind: u16) -> [u8; 4] {
    let l = len.to_ne_bytes();
    let k = kind.to_ne_bytes();
    [l[0], l[1], k[0], k[1]]
}

/// Fast path for the common `CTA_TUPLE_IP` layouts: exactly `CTA_IP_V4_SRC` then `CTA_IP_V4_DST`, or the
/// IPv6 pair. Anything else returns `None` and goes through the general attribute walk.
#[inline]
fn fast_ip_pair(v: &[u8]) -> Option<(IpAddr, IpAddr)> {
    if let Ok(b) = <&[u8; 16]>::try_from(v) {
        if b[0..4] != nla_hdr(8, cta::IP_V4_SRC) || b[8..12] != nla_hdr(8, cta::IP_V4_DST) {
            return None;
        }
        let s = std::net::Ipv4Addr::from([b[4], b[5], b[6], b[7]]);
        let d = std::net::Ipv4Addr::from([b[12], b[13], b[14], b[15]]);
        return Some((IpAddr::V4(s), IpAddr::V4(d)));
    }
    let b: &[u8; 40] = v.try_into().ok()?;
    if b[0..4] != nla_hdr(20, cta::IP_V6_SRC) || b[20..24] != nla_hdr(20, cta::IP_V6_DST) {
        return None;
    }
    let mut s = [0u8; 16];
    s.copy_from_slice(&b[4..20]);
    let mut d = [0u8; 16];
    d.copy_from_slice(&b[24..40]);
    Some((IpAddr::V6(Ipv6Addr::from(s)), IpAddr::V6(Ipv6Addr::from(d))))
}

/// Fast path for `CTA_SYNPROXY` as the kernel dumps it: ISN, ITS, TSOFF in order.
#[inline]
fn fast_synproxy(v: &[u8]) -> Option<Synproxy> {
    let b: &[u8; 24] = v.try_into().ok()?;
    if b[0..4] != nla_hdr(8, cta::SYNPROXY_ISN)
        || b[8..12] != nla_hdr(8, cta::SYNPROXY_ITS)
        || b[16..20] != nla_hdr(8, cta::SYNPROXY_TSOFF)
    {
        return None;
    }
    let u = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    Some(Synproxy {
        isn: Some(u(4)),
        its: Some(u(12)),
        tsoff: Some(u(20)),
    })
}

/// Fast path for `CTA_TIMESTAMP` with only a start time (a live entry).
#[inline]
fn fast_timestamp_start(v: &[u8]) -> Option<Timestamp> {
    let b: &[u8; 12] = v.try_into().ok()?;
    if b[0..4] != nla_hdr(12, cta::TIMESTAMP_START) {
        return None;
    }
    let mut t = [0u8; 8];
    t.copy_from_slice(&b[4..12]);
    Some(Timestamp {
        start: Some(u64::from_be_bytes(t)),
        stop: None,
    })
}

/// Fast path for the common `CTA_TUPLE_PROTO` layout: `CTA_PROTO_NUM`, `CTA_PROTO_SRC_PORT`,
/// `CTA_PROTO_DST_PORT` and nothing else.
#[inline]
fn fast_ports(v: &[u8]) -> Option<(u8, u16, u16)> {
    let b: &[u8; 24] = v.try_into().ok()?;
    if b[0..4] != nla_hdr(5, cta::PROTO_NUM)
        || b[8..12] != nla_hdr(6, cta::PROTO_SRC_PORT)
        || b[16..20] != nla_hdr(6, cta::PROTO_DST_PORT)
    {
        return None;
    }
    Some((
        b[4],
        u16::from_be_bytes([b[12], b[13]]),
        u16::from_be_bytes([b[20], b[21]]),
    ))
}

fn parse_counters(a: &Attr<'_>, unknown: &mut Vec<RawAttr>) -> Result<Counters, DecodeError> {
    // Fast path: exactly CTA_COUNTERS_PACKETS then CTA_COUNTERS_BYTES (64-bit).
    if let Ok(b) = <&[u8; 24]>::try_from(a.value)
        && b[0..4] == nla_hdr(12, cta::COUNTERS_PACKETS)
        && b[12..16] == nla_hdr(12, cta::COUNTERS_BYTES)
    {
        let mut p = [0u8; 8];
        p.copy_from_slice(&b[4..12]);
        let mut y = [0u8; 8];
        y.copy_from_slice(&b[16..24]);
        return Ok(Counters {
            packets: u64::from_be_bytes(p),
            bytes: u64::from_be_bytes(y),
        });
    }
    let mut c = Counters::default();
    let mut extras = Extras::default();
    for n in a.nested() {
        let n = n?;
        match n.kind {
            cta::COUNTERS_PACKETS => c.packets = n.u64_be("CTA_COUNTERS_PACKETS")?,
            cta::COUNTERS_BYTES => c.bytes = n.u64_be("CTA_COUNTERS_BYTES")?,
            cta::COUNTERS32_PACKETS => c.packets = u64::from(n.u32_be("CTA_COUNTERS32_PACKETS")?),
            cta::COUNTERS32_BYTES => c.bytes = u64::from(n.u32_be("CTA_COUNTERS32_BYTES")?),
            _ => extras.keep(&n),
        }
    }
    extras.push_into(unknown, a.kind);
    Ok(c)
}

fn emit_counters<O: Out>(o: &mut O, kind: u16, c: &Counters, unknown: &[RawAttr]) {
    let n = o.nest_start(kind);
    o.u64_be(cta::COUNTERS_PACKETS, c.packets);
    o.u64_be(cta::COUNTERS_BYTES, c.bytes);
    emit_extras(o, overlay(unknown, kind), &[]);
    o.nest_end(n);
}

fn parse_timestamp(a: &Attr<'_>, unknown: &mut Vec<RawAttr>) -> Result<Timestamp, DecodeError> {
    if let Some(t) = fast_timestamp_start(a.value) {
        return Ok(t);
    }
    let mut t = Timestamp::default();
    let mut extras = Extras::default();
    for n in a.nested() {
        let n = n?;
        match n.kind {
            cta::TIMESTAMP_START => t.start = Some(n.u64_be("CTA_TIMESTAMP_START")?),
            cta::TIMESTAMP_STOP => t.stop = Some(n.u64_be("CTA_TIMESTAMP_STOP")?),
            _ => extras.keep(&n),
        }
    }
    extras.push_into(unknown, cta::TIMESTAMP);
    Ok(t)
}

fn parse_tcp_flags(a: &Attr<'_>, what: &'static str) -> Result<TcpFlagsMasked, DecodeError> {
    let v: [u8; 2] = a.value.try_into().map_err(|_| DecodeError::BadSize {
        what,
        offset: a.offset,
        expected: 2,
        actual: a.value.len(),
    })?;
    Ok(TcpFlagsMasked {
        flags: TcpFlags::from_bits_retain(v[0]),
        mask: TcpFlags::from_bits_retain(v[1]),
    })
}

fn parse_protoinfo(
    a: &Attr<'_>,
    unknown: &mut Vec<RawAttr>,
) -> Result<Option<ProtoInfo>, DecodeError> {
    let mut out = None;
    let mut extras = Extras::default();
    // An unknown protocol's nest becomes `ProtoInfo::Other` when no known one is present; any further
    // unknown nests are kept in the overlay.
    let mut others: Vec<RawAttr> = Vec::new();
    for p in a.nested() {
        let p = p?;
        let mut sub = Extras::default();
        out = Some(match p.kind {
            cta::PROTOINFO_TCP => {
                let mut t = TcpInfo::default();
                for n in p.nested() {
                    let n = n?;
                    match n.kind {
                        cta::TCP_STATE => t.state = Some(n.u8("CTA_PROTOINFO_TCP_STATE")?),
                        cta::TCP_WSCALE_ORIGINAL => {
                            t.wscale_orig = Some(n.u8("CTA_PROTOINFO_TCP_WSCALE_ORIGINAL")?)
                        }
                        cta::TCP_WSCALE_REPLY => {
                            t.wscale_reply = Some(n.u8("CTA_PROTOINFO_TCP_WSCALE_REPLY")?)
                        }
                        cta::TCP_FLAGS_ORIGINAL => {
                            t.flags_orig =
                                Some(parse_tcp_flags(&n, "CTA_PROTOINFO_TCP_FLAGS_ORIGINAL")?)
                        }
                        cta::TCP_FLAGS_REPLY => {
                            t.flags_reply =
                                Some(parse_tcp_flags(&n, "CTA_PROTOINFO_TCP_FLAGS_REPLY")?)
                        }
                        _ => sub.keep(&n),
                    }
                }
                extras.sub(p.kind, sub);
                ProtoInfo::Tcp(t)
            }
            cta::PROTOINFO_SCTP => {
                let mut s = SctpInfo::default();
                for n in p.nested() {
                    let n = n?;
                    match n.kind {
                        cta::SCTP_STATE => s.state = Some(n.u8("CTA_PROTOINFO_SCTP_STATE")?),
                        cta::SCTP_VTAG_ORIGINAL => {
                            s.vtag_orig = Some(n.u32_be("CTA_PROTOINFO_SCTP_VTAG_ORIGINAL")?)
                        }
                        cta::SCTP_VTAG_REPLY => {
                            s.vtag_reply = Some(n.u32_be("CTA_PROTOINFO_SCTP_VTAG_REPLY")?)
                        }
                        _ => sub.keep(&n),
                    }
                }
                extras.sub(p.kind, sub);
                ProtoInfo::Sctp(s)
            }
            cta::PROTOINFO_DCCP => {
                let mut d = DccpInfo::default();
                for n in p.nested() {
                    let n = n?;
                    match n.kind {
                        cta::DCCP_STATE => d.state = Some(n.u8("CTA_PROTOINFO_DCCP_STATE")?),
                        cta::DCCP_ROLE => d.role = Some(n.u8("CTA_PROTOINFO_DCCP_ROLE")?),
                        cta::DCCP_HANDSHAKE_SEQ => {
                            d.handshake_seq = Some(n.u64_be("CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ")?)
                        }
                        _ => sub.keep(&n),
                    }
                }
                extras.sub(p.kind, sub);
                ProtoInfo::Dccp(d)
            }
            _ => {
                others.push(p.raw());
                continue;
            }
        });
    }
    let mut others = others.into_iter();
    if out.is_none() {
        out = others.next().map(ProtoInfo::Other);
    }
    for o in others {
        extras.keep_raw(&o);
    }
    extras.push_into(unknown, cta::PROTOINFO);
    Ok(out)
}

/// Sub-nests of `CTA_PROTOINFO` that may have overlays of their own.
const PROTOINFO_SUBNESTS: &[u16] = &[cta::PROTOINFO_TCP, cta::PROTOINFO_SCTP, cta::PROTOINFO_DCCP];

fn emit_protoinfo<O: Out>(o: &mut O, p: &ProtoInfo, extras: Option<&[u8]>) {
    let outer = o.nest_start(cta::PROTOINFO);
    match p {
        ProtoInfo::Tcp(t) => {
            let n = o.nest_start(cta::PROTOINFO_TCP);
            if let Some(v) = t.state {
                o.u8(cta::TCP_STATE, v);
            }
            if let Some(v) = t.wscale_orig {
                o.u8(cta::TCP_WSCALE_ORIGINAL, v);
            }
            if let Some(v) = t.wscale_reply {
                o.u8(cta::TCP_WSCALE_REPLY, v);
            }
            if let Some(f) = t.flags_orig {
                o.attr(cta::TCP_FLAGS_ORIGINAL, &[f.flags.bits(), f.mask.bits()]);
            }
            if let Some(f) = t.flags_reply {
                o.attr(cta::TCP_FLAGS_REPLY, &[f.flags.bits(), f.mask.bits()]);
            }
            emit_extras(o, sub_overlay(extras, cta::PROTOINFO_TCP), &[]);
            o.nest_end(n);
        }
        ProtoInfo::Sctp(s) => {
            let n = o.nest_start(cta::PROTOINFO_SCTP);
            if let Some(v) = s.state {
                o.u8(cta::SCTP_STATE, v);
            }
            if let Some(v) = s.vtag_orig {
                o.u32_be(cta::SCTP_VTAG_ORIGINAL, v);
            }
            if let Some(v) = s.vtag_reply {
                o.u32_be(cta::SCTP_VTAG_REPLY, v);
            }
            emit_extras(o, sub_overlay(extras, cta::PROTOINFO_SCTP), &[]);
            o.nest_end(n);
        }
        ProtoInfo::Dccp(d) => {
            let n = o.nest_start(cta::PROTOINFO_DCCP);
            if let Some(v) = d.state {
                o.u8(cta::DCCP_STATE, v);
            }
            if let Some(v) = d.role {
                o.u8(cta::DCCP_ROLE, v);
            }
            if let Some(v) = d.handshake_seq {
                o.u64_be(cta::DCCP_HANDSHAKE_SEQ, v);
            }
            emit_extras(o, sub_overlay(extras, cta::PROTOINFO_DCCP), &[]);
            o.nest_end(n);
        }
        ProtoInfo::Other(raw) => o.attr(raw.kind, &raw.value),
    }
    emit_extras(o, extras, PROTOINFO_SUBNESTS);
    o.nest_end(outer);
}

fn parse_nat(a: &Attr<'_>, unknown: &mut Vec<RawAttr>) -> Result<NatRange, DecodeError> {
    let mut n = NatRange::default();
    let mut extras = Extras::default();
    for x in a.nested() {
        let x = x?;
        match x.kind {
            cta::NAT_V4_MINIP => n.min_ip = Some(IpAddr::V4(x.ipv4("CTA_NAT_V4_MINIP")?)),
            cta::NAT_V4_MAXIP => n.max_ip = Some(IpAddr::V4(x.ipv4("CTA_NAT_V4_MAXIP")?)),
            cta::NAT_V6_MINIP => n.min_ip = Some(IpAddr::V6(x.ipv6("CTA_NAT_V6_MINIP")?)),
            cta::NAT_V6_MAXIP => n.max_ip = Some(IpAddr::V6(x.ipv6("CTA_NAT_V6_MAXIP")?)),
            cta::NAT_PROTO => {
                let mut sub = Extras::default();
                for p in x.nested() {
                    let p = p?;
                    match p.kind {
                        cta::PROTONAT_PORT_MIN => {
                            n.min_port = Some(p.u16_be("CTA_PROTONAT_PORT_MIN")?)
                        }
                        cta::PROTONAT_PORT_MAX => {
                            n.max_port = Some(p.u16_be("CTA_PROTONAT_PORT_MAX")?)
                        }
                        _ => sub.keep(&p),
                    }
                }
                extras.sub(cta::NAT_PROTO, sub);
            }
            _ => extras.keep(&x),
        }
    }
    extras.push_into(unknown, a.kind);
    Ok(n)
}

fn emit_ip<O: Out>(o: &mut O, v4kind: u16, v6kind: u16, a: IpAddr) {
    match a {
        IpAddr::V4(a) => o.attr(v4kind, &a.octets()),
        IpAddr::V6(a) => o.attr(v6kind, &a.octets()),
    }
}

fn emit_nat<O: Out>(o: &mut O, kind: u16, n: &NatRange, unknown: &[RawAttr]) {
    let extras = overlay(unknown, kind);
    let proto_extras = sub_overlay(extras, cta::NAT_PROTO);
    let t = o.nest_start(kind);
    if let Some(a) = n.min_ip {
        emit_ip(o, cta::NAT_V4_MINIP, cta::NAT_V6_MINIP, a);
    }
    if let Some(a) = n.max_ip {
        emit_ip(o, cta::NAT_V4_MAXIP, cta::NAT_V6_MAXIP, a);
    }
    if n.min_port.is_some() || n.max_port.is_some() || proto_extras.is_some() {
        let p = o.nest_start(cta::NAT_PROTO);
        if let Some(v) = n.min_port {
            o.u16_be(cta::PROTONAT_PORT_MIN, v);
        }
        if let Some(v) = n.max_port {
            o.u16_be(cta::PROTONAT_PORT_MAX, v);
        }
        emit_extras(o, proto_extras, &[]);
        o.nest_end(p);
    }
    emit_extras(o, extras, &[cta::NAT_PROTO]);
    o.nest_end(t);
}

fn parse_seqadj(a: &Attr<'_>, unknown: &mut Vec<RawAttr>) -> Result<SeqAdj, DecodeError> {
    let mut s = SeqAdj::default();
    let mut extras = Extras::default();
    for n in a.nested() {
        let n = n?;
        match n.kind {
            cta::SEQADJ_CORRECTION_POS => {
                s.correction_pos = Some(n.u32_be("CTA_SEQADJ_CORRECTION_POS")?)
            }
            cta::SEQADJ_OFFSET_BEFORE => {
                s.offset_before = Some(n.u32_be("CTA_SEQADJ_OFFSET_BEFORE")?)
            }
            cta::SEQADJ_OFFSET_AFTER => s.offset_after = Some(n.u32_be("CTA_SEQADJ_OFFSET_AFTER")?),
            _ => extras.keep(&n),
        }
    }
    extras.push_into(unknown, a.kind);
    Ok(s)
}

fn emit_seqadj<O: Out>(o: &mut O, kind: u16, s: &SeqAdj, unknown: &[RawAttr]) {
    let n = o.nest_start(kind);
    if let Some(v) = s.correction_pos {
        o.u32_be(cta::SEQADJ_CORRECTION_POS, v);
    }
    if let Some(v) = s.offset_before {
        o.u32_be(cta::SEQADJ_OFFSET_BEFORE, v);
    }
    if let Some(v) = s.offset_after {
        o.u32_be(cta::SEQADJ_OFFSET_AFTER, v);
    }
    emit_extras(o, overlay(unknown, kind), &[]);
    o.nest_end(n);
}

fn parse_helper(a: &Attr<'_>, unknown: &mut Vec<RawAttr>) -> Result<Helper, DecodeError> {
    let mut name = None;
    let mut info = None;
    let mut extras = Extras::default();
    for n in a.nested() {
        let n = n?;
        match n.kind {
            cta::HELP_NAME => name = Some(n.string("CTA_HELP_NAME")?),
            cta::HELP_INFO => info = Some(n.value.to_vec()),
            _ => extras.keep(&n),
        }
    }
    extras.push_into(unknown, cta::HELP);
    Ok(Helper {
        name: name.ok_or(DecodeError::Missing {
            what: "CTA_HELP_NAME",
        })?,
        info,
    })
}
