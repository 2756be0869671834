//! Conntrack messages (`NET_T_STATE_CT_*`): `ct2msg` in build.c and `msg2ct` in parse.c.

use super::attr::{
    Counter, HelperName, Labels, NTA_HDR, NatSeqAdj, PortPair, Sink, Size, Synproxy, Writer,
    rd_addrs_v4, rd_addrs_v6, rd_ports, rd_u8, rd_u16, rd_u16_le, rd_u32, rd_v4, rd_v6, walk,
};
use super::{AddrPair, DecodeError, HEADER_LEN, Mode, Skipped};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Conntrack attribute numbers (`enum nta_attr`, conntrack-tools 1.4.7).
#[allow(missing_docs)]
pub mod nta {
    pub const IPV4: u16 = 0;
    pub const IPV6: u16 = 1;
    pub const L4PROTO: u16 = 2;
    pub const PORT: u16 = 3;
    pub const TCP_STATE: u16 = 4;
    pub const STATUS: u16 = 5;
    pub const TIMEOUT: u16 = 6;
    pub const MARK: u16 = 7;
    pub const MASTER_IPV4: u16 = 8;
    pub const MASTER_IPV6: u16 = 9;
    pub const MASTER_L4PROTO: u16 = 10;
    pub const MASTER_PORT: u16 = 11;
    pub const SNAT_IPV4: u16 = 12;
    pub const DNAT_IPV4: u16 = 13;
    pub const SPAT_PORT: u16 = 14;
    pub const DPAT_PORT: u16 = 15;
    pub const NAT_SEQ_ADJ: u16 = 16;
    pub const SCTP_STATE: u16 = 17;
    pub const SCTP_VTAG_ORIG: u16 = 18;
    pub const SCTP_VTAG_REPL: u16 = 19;
    pub const DCCP_STATE: u16 = 20;
    pub const DCCP_ROLE: u16 = 21;
    pub const ICMP_TYPE: u16 = 22;
    pub const ICMP_CODE: u16 = 23;
    pub const ICMP_ID: u16 = 24;
    pub const TCP_WSCALE_ORIG: u16 = 25;
    pub const TCP_WSCALE_REPL: u16 = 26;
    pub const HELPER_NAME: u16 = 27;
    pub const LABELS: u16 = 28;
    pub const SNAT_IPV6: u16 = 29;
    pub const DNAT_IPV6: u16 = 30;
    pub const SYNPROXY: u16 = 31;
    pub const ZONE: u16 = 32;
    /// `NTA_MAX`: numbers at or above are unknown.
    pub const MAX: u16 = 33;
}

/// Size rules of `h[]` in parse.c (lengths include the 4-byte attribute header).
#[inline(always)]
fn size_of(attr: u16) -> Size {
    let f = |n: usize| Size::Fixed(NTA_HDR + n);
    match attr {
        nta::IPV4 | nta::MASTER_IPV4 => f(8),
        nta::IPV6 | nta::MASTER_IPV6 => f(32),
        nta::PORT | nta::MASTER_PORT => f(4),
        nta::L4PROTO
        | nta::TCP_STATE
        | nta::MASTER_L4PROTO
        | nta::SCTP_STATE
        | nta::DCCP_STATE
        | nta::DCCP_ROLE
        | nta::ICMP_TYPE
        | nta::ICMP_CODE
        | nta::TCP_WSCALE_ORIG
        | nta::TCP_WSCALE_REPL => f(1),
        nta::STATUS
        | nta::TIMEOUT
        | nta::MARK
        | nta::SNAT_IPV4
        | nta::DNAT_IPV4
        | nta::SCTP_VTAG_ORIG
        | nta::SCTP_VTAG_REPL => f(4),
        nta::SPAT_PORT | nta::DPAT_PORT | nta::ICMP_ID | nta::ZONE => f(2),
        nta::NAT_SEQ_ADJ => f(24),
        nta::SNAT_IPV6 | nta::DNAT_IPV6 => f(16),
        nta::SYNPROXY => f(12),
        // NFCT_HELPER_NAME_MAX (16) bounds nta_len, header included.
        nta::HELPER_NAME => Size::Max(16),
        // NTA_LABELS: NTA_SIZE(NTA_LABELS_MAX_SIZE), a 1024-byte bitmap.
        _ => Size::Max(NTA_HDR + Labels::MAX_WIRE_WORDS * 4),
    }
}

/// A conntrack entry as carried in a sync message: one optional field per attribute.
///
/// Byte order: everything is big-endian except `NTA_ICMP_ID`, `NTA_SPAT_PORT` and `NTA_DPAT_PORT`,
/// which conntrackd 1.4.7 sends in the *sender's host order* (little-endian from x86 and arm64). Why, from
/// the sources:
///
/// 1. libnetfilter_conntrack stores the ICMP id and the reply ports exactly as ctnetlink delivers them,
///    in network order (`parse_mnl.c`: `tuple->l4src.icmp.id = mnl_attr_get_u16(..)`, no `ntohs`), and
///    `nfct_get_attr_u16()` returns those two stored bytes reinterpreted as a host `u16`. For id 4321
///    (`0x10e1`) the bytes are `10 e1`, so on a little-endian host the getter returns `0xe110`.
/// 2. `ct_build_u16()` in build.c then applies `htons()` as if the value were in host order: `0xe110`
///    becomes `0x10e1`, stored in memory as `e1 10`, which is what goes on the wire: the real id,
///    little-endian. On a big-endian host both steps are identities and the wire is big-endian.
/// 3. The receiver undoes it symmetrically (`ct_parse_u16`: `ntohs`, then `nfct_set_attr_u16` stores
///    the result as the raw network-order field), so two conntrackd of the same endianness agree.
///
/// `NTA_ZONE` goes through the same `ct_build_u16()` but is big-endian, because libnetfilter_conntrack
/// converts the zone to host order when parsing (`ct->zone = ntohs(..)`), so the one `htons` is right.
/// Captures confirm both (ICMP id 4321 is sent as `e1 10`, SNAT port 61000 as `48 ee`, zone 5 as `00 05`).
/// This crate speaks to the little-endian conntrackd everyone runs: it writes and reads those three
/// attributes little-endian, and the fields here hold the real id and ports.
///
/// Parsing keeps the last value of a repeated attribute, like libnetfilter_conntrack's setters. Emitting
/// writes the present fields in the order of conntrackd's `ct2msg`, so a message that conntrackd built
/// re-encodes byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CtEntry {
    /// Original-direction addresses (`NTA_IPV4` / `NTA_IPV6`).
    pub addrs: Option<AddrPair>,
    /// `NTA_STATUS` (the kernel's `IPS_*` bits).
    pub status: Option<u32>,
    /// `NTA_L4PROTO`.
    pub l4proto: Option<u8>,
    /// Original-direction ports (`NTA_PORT`; TCP, UDP, SCTP, DCCP).
    pub ports: Option<PortPair>,
    /// `NTA_TCP_STATE`.
    pub tcp_state: Option<u8>,
    /// `NTA_TCP_WSCALE_ORIG` (sent with `TCPWindowTracking on`).
    pub tcp_wscale_orig: Option<u8>,
    /// `NTA_TCP_WSCALE_REPL`.
    pub tcp_wscale_repl: Option<u8>,
    /// `NTA_SCTP_STATE`.
    pub sctp_state: Option<u8>,
    /// `NTA_SCTP_VTAG_ORIG`.
    pub sctp_vtag_orig: Option<u32>,
    /// `NTA_SCTP_VTAG_REPL`.
    pub sctp_vtag_repl: Option<u32>,
    /// `NTA_DCCP_STATE`.
    pub dccp_state: Option<u8>,
    /// `NTA_DCCP_ROLE`.
    pub dccp_role: Option<u8>,
    /// `NTA_ICMP_TYPE` (ICMP and ICMPv6).
    pub icmp_type: Option<u8>,
    /// `NTA_ICMP_CODE`.
    pub icmp_code: Option<u8>,
    /// `NTA_ICMP_ID`.
    pub icmp_id: Option<u16>,
    /// `NTA_TIMEOUT` in seconds (absent with `CommitTimeout`).
    pub timeout: Option<u32>,
    /// `NTA_MARK`.
    pub mark: Option<u32>,
    /// Master conntrack addresses (`NTA_MASTER_IPV4` / `_IPV6`).
    pub master_addrs: Option<AddrPair>,
    /// `NTA_MASTER_L4PROTO`.
    pub master_l4proto: Option<u8>,
    /// `NTA_MASTER_PORT`.
    pub master_ports: Option<PortPair>,
    /// `NTA_SNAT_IPV4`: the address the source is translated to (the reply destination).
    pub snat_ipv4: Option<Ipv4Addr>,
    /// `NTA_DNAT_IPV4`: the address the destination is translated to (the reply source).
    pub dnat_ipv4: Option<Ipv4Addr>,
    /// `NTA_SNAT_IPV6`.
    pub snat_ipv6: Option<Ipv6Addr>,
    /// `NTA_DNAT_IPV6`.
    pub dnat_ipv6: Option<Ipv6Addr>,
    /// `NTA_SPAT_PORT`: the translated source port (the reply destination port).
    pub snat_port: Option<u16>,
    /// `NTA_DPAT_PORT`: the translated destination port (the reply source port).
    pub dnat_port: Option<u16>,
    /// `NTA_NAT_SEQ_ADJ`.
    pub nat_seq_adj: Option<NatSeqAdj>,
    /// `NTA_HELPER_NAME`.
    pub helper: Option<HelperName>,
    /// `NTA_LABELS`.
    pub labels: Option<Labels>,
    /// `NTA_SYNPROXY`.
    pub synproxy: Option<Synproxy>,
    /// `NTA_ZONE`.
    pub zone: Option<u16>,
}

impl CtEntry {
    pub(crate) fn emit_to<S: Sink>(&self, s: &mut S) {
        if let Some(a) = &self.addrs {
            s.addrs(nta::IPV4, nta::IPV6, a);
        }
        if let Some(v) = self.status {
            s.u32(nta::STATUS, v);
        }
        if let Some(v) = self.l4proto {
            s.u8(nta::L4PROTO, v);
        }
        if let Some(p) = &self.ports {
            s.ports(nta::PORT, p);
        }
        if let Some(v) = self.tcp_state {
            s.u8(nta::TCP_STATE, v);
        }
        if let Some(v) = self.tcp_wscale_orig {
            s.u8(nta::TCP_WSCALE_ORIG, v);
        }
        if let Some(v) = self.tcp_wscale_repl {
            s.u8(nta::TCP_WSCALE_REPL, v);
        }
        if let Some(v) = self.sctp_state {
            s.u8(nta::SCTP_STATE, v);
        }
        if let Some(v) = self.sctp_vtag_orig {
            s.u32(nta::SCTP_VTAG_ORIG, v);
        }
        if let Some(v) = self.sctp_vtag_repl {
            s.u32(nta::SCTP_VTAG_REPL, v);
        }
        if let Some(v) = self.dccp_state {
            s.u8(nta::DCCP_STATE, v);
        }
        if let Some(v) = self.dccp_role {
            s.u8(nta::DCCP_ROLE, v);
        }
        if let Some(v) = self.icmp_type {
            s.u8(nta::ICMP_TYPE, v);
        }
        if let Some(v) = self.icmp_code {
            s.u8(nta::ICMP_CODE, v);
        }
        if let Some(v) = self.icmp_id {
            // Little-endian: a network-order value passed through htons() on x86 (see the type's docs).
            s.put(nta::ICMP_ID, &v.to_le_bytes());
        }
        if let Some(v) = self.timeout {
            s.u32(nta::TIMEOUT, v);
        }
        if let Some(v) = self.mark {
            s.u32(nta::MARK, v);
        }
        if let Some(a) = &self.master_addrs {
            s.addrs(nta::MASTER_IPV4, nta::MASTER_IPV6, a);
        }
        if let Some(v) = self.master_l4proto {
            s.u8(nta::MASTER_L4PROTO, v);
        }
        if let Some(p) = &self.master_ports {
            s.ports(nta::MASTER_PORT, p);
        }
        if let Some(a) = self.snat_ipv4 {
            s.put(nta::SNAT_IPV4, &a.octets());
        }
        if let Some(a) = self.dnat_ipv4 {
            s.put(nta::DNAT_IPV4, &a.octets());
        }
        if let Some(a) = self.snat_ipv6 {
            s.put(nta::SNAT_IPV6, &a.octets());
        }
        if let Some(a) = self.dnat_ipv6 {
            s.put(nta::DNAT_IPV6, &a.octets());
        }
        if let Some(v) = self.snat_port {
            // Little-endian for the same reason as NTA_ICMP_ID (network-order port, then htons()).
            s.put(nta::SPAT_PORT, &v.to_le_bytes());
        }
        if let Some(v) = self.dnat_port {
            s.put(nta::DPAT_PORT, &v.to_le_bytes());
        }
        if let Some(v) = self.nat_seq_adj {
            s.put(nta::NAT_SEQ_ADJ, &v.to_bytes());
        }
        if let Some(h) = &self.helper {
            s.put(nta::HELPER_NAME, h.raw());
        }
        if let Some(l) = &self.labels {
            l.emit_to(s, nta::LABELS);
        }
        if let Some(p) = self.synproxy {
            let mut b = [0u8; 12];
            b[..4].copy_from_slice(&p.its.to_be_bytes());
            b[4..8].copy_from_slice(&p.isn.to_be_bytes());
            b[8..].copy_from_slice(&p.tsoff.to_be_bytes());
            s.put(nta::SYNPROXY, &b);
        }
        if let Some(v) = self.zone {
            s.u16(nta::ZONE, v);
        }
    }

    /// Encoded length of the attributes (without the message header).
    pub fn attrs_len(&self) -> usize {
        let mut c = Counter::default();
        self.emit_to(&mut c);
        c.0
    }

    pub(crate) fn emit_attrs(&self, buf: &mut [u8]) {
        self.emit_to(&mut Writer { buf, off: 0 });
    }

    /// Parses the attributes of a whole message (`msg` includes its 8-byte header); `base` is the offset of
    /// `msg` in the datagram, for error offsets.
    #[inline]
    pub(crate) fn parse_attrs(
        msg: &[u8],
        base: usize,
        mode: Mode,
        skipped: &mut Skipped,
    ) -> Result<Self, DecodeError> {
        Self::parse_attrs_at(msg, HEADER_LEN, base, mode, skipped)
    }

    /// The attributes alone, as a cache keeps them (see [`crate::cache::Object::encode`]).
    pub(crate) fn attr_bytes(&self) -> Box<[u8]> {
        // One pass into a stack buffer larger than any entry; the two-pass way only if not.
        let mut buf = [0u8; 1536];
        let mut w = Writer {
            buf: &mut buf,
            off: 0,
        };
        self.emit_to(&mut w);
        let n = w.off;
        match buf.get(..n) {
            Some(b) => Box::from(b),
            None => {
                let mut b = vec![0u8; self.attrs_len()].into_boxed_slice();
                self.emit_attrs(&mut b);
                b
            }
        }
    }

    /// Back from [`CtEntry::attr_bytes`] (bytes this crate wrote; anything undecodable gives an empty
    /// entry).
    pub(crate) fn from_attr_bytes(b: &[u8]) -> Self {
        Self::parse_attrs_at(b, 0, 0, Mode::Strict, &mut Skipped::default()).unwrap_or_default()
    }

    #[inline]
    fn parse_attrs_at(
        msg: &[u8],
        hdr_len: usize,
        base: usize,
        mode: Mode,
        skipped: &mut Skipped,
    ) -> Result<Self, DecodeError> {
        let mut e = CtEntry::default();
        walk(
            msg,
            hdr_len,
            base,
            nta::MAX,
            size_of,
            mode,
            skipped,
            |attr, d| match attr {
                nta::IPV4 => e.addrs = Some(rd_addrs_v4(d)),
                nta::IPV6 => e.addrs = Some(rd_addrs_v6(d)),
                nta::L4PROTO => e.l4proto = Some(rd_u8(d)),
                nta::PORT => e.ports = Some(rd_ports(d)),
                nta::TCP_STATE => e.tcp_state = Some(rd_u8(d)),
                nta::STATUS => e.status = Some(rd_u32(d)),
                nta::TIMEOUT => e.timeout = Some(rd_u32(d)),
                nta::MARK => e.mark = Some(rd_u32(d)),
                nta::MASTER_IPV4 => e.master_addrs = Some(rd_addrs_v4(d)),
                nta::MASTER_IPV6 => e.master_addrs = Some(rd_addrs_v6(d)),
                nta::MASTER_L4PROTO => e.master_l4proto = Some(rd_u8(d)),
                nta::MASTER_PORT => e.master_ports = Some(rd_ports(d)),
                nta::SNAT_IPV4 => e.snat_ipv4 = Some(rd_v4(d)),
                nta::DNAT_IPV4 => e.dnat_ipv4 = Some(rd_v4(d)),
                nta::SPAT_PORT => e.snat_port = Some(rd_u16_le(d)),
                nta::DPAT_PORT => e.dnat_port = Some(rd_u16_le(d)),
                nta::NAT_SEQ_ADJ => e.nat_seq_adj = Some(NatSeqAdj::from_bytes(d)),
                nta::SCTP_STATE => e.sctp_state = Some(rd_u8(d)),
                nta::SCTP_VTAG_ORIG => e.sctp_vtag_orig = Some(rd_u32(d)),
                nta::SCTP_VTAG_REPL => e.sctp_vtag_repl = Some(rd_u32(d)),
                nta::DCCP_STATE => e.dccp_state = Some(rd_u8(d)),
                nta::DCCP_ROLE => e.dccp_role = Some(rd_u8(d)),
                nta::ICMP_TYPE => e.icmp_type = Some(rd_u8(d)),
                nta::ICMP_CODE => e.icmp_code = Some(rd_u8(d)),
                nta::ICMP_ID => e.icmp_id = Some(rd_u16_le(d)),
                nta::TCP_WSCALE_ORIG => e.tcp_wscale_orig = Some(rd_u8(d)),
                nta::TCP_WSCALE_REPL => e.tcp_wscale_repl = Some(rd_u8(d)),
                // An empty string attribute carries nothing (and a trailing one is skipped by msg2ct's loop).
                nta::HELPER_NAME => e.helper = HelperName::from_raw(d),
                // ct_parse_clabel ignores an empty or unaligned bitmap (an earlier one stays).
                nta::LABELS => {
                    if let Some(l) = Labels::from_wire(d) {
                        e.labels = Some(l);
                    }
                }
                nta::SNAT_IPV6 => e.snat_ipv6 = Some(rd_v6(d)),
                nta::DNAT_IPV6 => e.dnat_ipv6 = Some(rd_v6(d)),
                nta::SYNPROXY => {
                    e.synproxy = Some(Synproxy {
                        its: rd_u32(d),
                        isn: rd_u32(d.get(4..).unwrap_or(&[])),
                        tsoff: rd_u32(d.get(8..).unwrap_or(&[])),
                    })
                }
                nta::ZONE => e.zone = Some(rd_u16(d)),
                _ => {}
            },
        )?;
        Ok(e)
    }
}
