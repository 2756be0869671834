//! Wire codecs: netlink/nfnetlink headers and the ctnetlink attribute trees, with no I/O.
//!
//! This module is private: its typed values are re-exported at the crate root, and the framing helpers
//! (message headers, attribute readers and writers) stay inside the crate.
//!
//! Every typed value follows the house codec shape: `parse(&[u8]) -> Result<Self, DecodeError>`,
//! `buffer_len()` and `emit(&mut [u8]) -> Result<usize, EmitError>`. Parsing never panics on any input. Emitting into exactly
//! `buffer_len()` bytes never panics. Attribute headers are read with netlink-packet-core's [`NlaBuffer`]
//! after this module has checked their lengths, and an attribute the model does not know is kept raw
//! ([`RawAttr`]) and written back unchanged.
//!
//! Constant names and numbers follow `include/uapi/linux/netfilter/nfnetlink_conntrack.h`.
//!
//! How unknown attributes inside known nests are kept is explained on [`RawAttr`].

mod entry;
mod expect;
mod stats;

#[cfg(test)]
mod roundtrip_tests;

pub(crate) use entry::emit_extras_list;
pub use entry::{
    Counters, DccpInfo, Entry, Helper, L4, NatRange, ProtoInfo, SctpInfo, SeqAdj, Status, Synproxy,
    TcpFlags, TcpFlagsMasked, TcpInfo, Timestamp, Tuple, icmp_reply_type,
};
pub use expect::{Expect, ExpectFlags, ExpectNat};
pub use stats::{CpuStats, ExpectCpuStats, GlobalStats};

use crate::error::DecodeError;
use netlink_packet_core::{NLA_F_NESTED, NLA_TYPE_MASK};
use std::net::IpAddr;

/// Netlink message header length (`struct nlmsghdr`).
pub(crate) const NLMSG_HDRLEN: usize = 16;
/// nfnetlink header length (`struct nfgenmsg`).
pub(crate) const NFGENMSG_LEN: usize = 4;
/// `NLMSG_ERROR`.
pub(crate) const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`.
pub(crate) const NLMSG_DONE: u16 = 3;
/// `NLMSG_OVERRUN`.
pub(crate) const NLMSG_OVERRUN: u16 = 4;
/// `NFNL_SUBSYS_CTNETLINK`.
pub(crate) const NFNL_SUBSYS_CTNETLINK: u8 = 1;
/// `NFNL_SUBSYS_CTNETLINK_EXP`.
pub(crate) const NFNL_SUBSYS_CTNETLINK_EXP: u8 = 2;

/// Message types of the conntrack subsystem (`enum cntl_msg_types`).
#[allow(dead_code)] // the whole kernel enum, for reference, used or not
pub(crate) mod ct_msg {
    /// `IPCTNL_MSG_CT_NEW`
    pub const NEW: u8 = 0;
    /// `IPCTNL_MSG_CT_GET`
    pub const GET: u8 = 1;
    /// `IPCTNL_MSG_CT_DELETE`
    pub const DELETE: u8 = 2;
    /// `IPCTNL_MSG_CT_GET_CTRZERO`
    pub const GET_CTRZERO: u8 = 3;
    /// `IPCTNL_MSG_CT_GET_STATS_CPU`
    pub const GET_STATS_CPU: u8 = 4;
    /// `IPCTNL_MSG_CT_GET_STATS`
    pub const GET_STATS: u8 = 5;
    /// `IPCTNL_MSG_CT_GET_DYING`
    pub const GET_DYING: u8 = 6;
    /// `IPCTNL_MSG_CT_GET_UNCONFIRMED`
    pub const GET_UNCONFIRMED: u8 = 7;
}

/// Message types of the expectation subsystem (`enum ctnl_exp_msg_types`).
#[allow(dead_code)] // the whole kernel enum, for reference, used or not
pub(crate) mod exp_msg {
    /// `IPCTNL_MSG_EXP_NEW`
    pub const NEW: u8 = 0;
    /// `IPCTNL_MSG_EXP_GET`
    pub const GET: u8 = 1;
    /// `IPCTNL_MSG_EXP_DELETE`
    pub const DELETE: u8 = 2;
    /// `IPCTNL_MSG_EXP_GET_STATS_CPU`
    pub const GET_STATS_CPU: u8 = 3;
}

/// Top-level conntrack attributes (`enum ctattr_type`).
#[allow(missing_docs)]
#[allow(dead_code)] // the whole kernel enum, for reference, used or not
pub(crate) mod cta {
    pub const TUPLE_ORIG: u16 = 1;
    pub const TUPLE_REPLY: u16 = 2;
    pub const STATUS: u16 = 3;
    pub const PROTOINFO: u16 = 4;
    pub const HELP: u16 = 5;
    pub const NAT_SRC: u16 = 6;
    pub const TIMEOUT: u16 = 7;
    pub const MARK: u16 = 8;
    pub const COUNTERS_ORIG: u16 = 9;
    pub const COUNTERS_REPLY: u16 = 10;
    pub const USE: u16 = 11;
    pub const ID: u16 = 12;
    pub const NAT_DST: u16 = 13;
    pub const TUPLE_MASTER: u16 = 14;
    pub const SEQ_ADJ_ORIG: u16 = 15;
    pub const SEQ_ADJ_REPLY: u16 = 16;
    pub const SECMARK: u16 = 17;
    pub const ZONE: u16 = 18;
    pub const SECCTX: u16 = 19;
    pub const TIMESTAMP: u16 = 20;
    pub const MARK_MASK: u16 = 21;
    pub const LABELS: u16 = 22;
    pub const LABELS_MASK: u16 = 23;
    pub const SYNPROXY: u16 = 24;
    pub const FILTER: u16 = 25;
    pub const STATUS_MASK: u16 = 26;

    // enum ctattr_tuple
    pub const TUPLE_IP: u16 = 1;
    pub const TUPLE_PROTO: u16 = 2;
    pub const TUPLE_ZONE: u16 = 3;
    // enum ctattr_ip
    pub const IP_V4_SRC: u16 = 1;
    pub const IP_V4_DST: u16 = 2;
    pub const IP_V6_SRC: u16 = 3;
    pub const IP_V6_DST: u16 = 4;
    // enum ctattr_l4proto
    pub const PROTO_NUM: u16 = 1;
    pub const PROTO_SRC_PORT: u16 = 2;
    pub const PROTO_DST_PORT: u16 = 3;
    pub const PROTO_ICMP_ID: u16 = 4;
    pub const PROTO_ICMP_TYPE: u16 = 5;
    pub const PROTO_ICMP_CODE: u16 = 6;
    pub const PROTO_ICMPV6_ID: u16 = 7;
    pub const PROTO_ICMPV6_TYPE: u16 = 8;
    pub const PROTO_ICMPV6_CODE: u16 = 9;
    // enum ctattr_protoinfo
    pub const PROTOINFO_TCP: u16 = 1;
    pub const PROTOINFO_DCCP: u16 = 2;
    pub const PROTOINFO_SCTP: u16 = 3;
    // enum ctattr_protoinfo_tcp
    pub const TCP_STATE: u16 = 1;
    pub const TCP_WSCALE_ORIGINAL: u16 = 2;
    pub const TCP_WSCALE_REPLY: u16 = 3;
    pub const TCP_FLAGS_ORIGINAL: u16 = 4;
    pub const TCP_FLAGS_REPLY: u16 = 5;
    // enum ctattr_protoinfo_dccp
    pub const DCCP_STATE: u16 = 1;
    pub const DCCP_ROLE: u16 = 2;
    pub const DCCP_HANDSHAKE_SEQ: u16 = 3;
    pub const DCCP_PAD: u16 = 4;
    // enum ctattr_protoinfo_sctp
    pub const SCTP_STATE: u16 = 1;
    pub const SCTP_VTAG_ORIGINAL: u16 = 2;
    pub const SCTP_VTAG_REPLY: u16 = 3;
    // enum ctattr_counters
    pub const COUNTERS_PACKETS: u16 = 1;
    pub const COUNTERS_BYTES: u16 = 2;
    pub const COUNTERS32_PACKETS: u16 = 3;
    pub const COUNTERS32_BYTES: u16 = 4;
    pub const COUNTERS_PAD: u16 = 5;
    // enum ctattr_tstamp
    pub const TIMESTAMP_START: u16 = 1;
    pub const TIMESTAMP_STOP: u16 = 2;
    pub const TIMESTAMP_PAD: u16 = 3;
    // enum ctattr_nat
    pub const NAT_V4_MINIP: u16 = 1;
    pub const NAT_V4_MAXIP: u16 = 2;
    pub const NAT_PROTO: u16 = 3;
    pub const NAT_V6_MINIP: u16 = 4;
    pub const NAT_V6_MAXIP: u16 = 5;
    // enum ctattr_protonat
    pub const PROTONAT_PORT_MIN: u16 = 1;
    pub const PROTONAT_PORT_MAX: u16 = 2;
    // enum ctattr_seqadj
    pub const SEQADJ_CORRECTION_POS: u16 = 1;
    pub const SEQADJ_OFFSET_BEFORE: u16 = 2;
    pub const SEQADJ_OFFSET_AFTER: u16 = 3;
    // enum ctattr_synproxy
    pub const SYNPROXY_ISN: u16 = 1;
    pub const SYNPROXY_ITS: u16 = 2;
    pub const SYNPROXY_TSOFF: u16 = 3;
    // enum ctattr_help
    pub const HELP_NAME: u16 = 1;
    pub const HELP_INFO: u16 = 2;
    // enum ctattr_secctx
    pub const SECCTX_NAME: u16 = 1;
    // enum ctattr_filter
    pub const FILTER_ORIG_FLAGS: u16 = 1;
    pub const FILTER_REPLY_FLAGS: u16 = 2;
    // enum ctattr_expect
    pub const EXPECT_MASTER: u16 = 1;
    pub const EXPECT_TUPLE: u16 = 2;
    pub const EXPECT_MASK: u16 = 3;
    pub const EXPECT_TIMEOUT: u16 = 4;
    pub const EXPECT_ID: u16 = 5;
    pub const EXPECT_HELP_NAME: u16 = 6;
    pub const EXPECT_ZONE: u16 = 7;
    pub const EXPECT_FLAGS: u16 = 8;
    pub const EXPECT_CLASS: u16 = 9;
    pub const EXPECT_NAT: u16 = 10;
    pub const EXPECT_FN: u16 = 11;
    // enum ctattr_expect_nat
    pub const EXPECT_NAT_DIR: u16 = 1;
    pub const EXPECT_NAT_TUPLE: u16 = 2;
    // enum ctattr_stats_cpu
    pub const STATS_SEARCHED: u16 = 1;
    pub const STATS_FOUND: u16 = 2;
    pub const STATS_NEW: u16 = 3;
    pub const STATS_INVALID: u16 = 4;
    pub const STATS_IGNORE: u16 = 5;
    pub const STATS_DELETE: u16 = 6;
    pub const STATS_DELETE_LIST: u16 = 7;
    pub const STATS_INSERT: u16 = 8;
    pub const STATS_INSERT_FAILED: u16 = 9;
    pub const STATS_DROP: u16 = 10;
    pub const STATS_EARLY_DROP: u16 = 11;
    pub const STATS_ERROR: u16 = 12;
    pub const STATS_SEARCH_RESTART: u16 = 13;
    pub const STATS_CLASH_RESOLVE: u16 = 14;
    pub const STATS_CHAIN_TOOLONG: u16 = 15;
    // enum ctattr_stats_global
    pub const STATS_GLOBAL_ENTRIES: u16 = 1;
    pub const STATS_GLOBAL_MAX_ENTRIES: u16 = 2;
    // enum ctattr_expect_stats
    pub const STATS_EXP_NEW: u16 = 1;
    pub const STATS_EXP_CREATE: u16 = 2;
    pub const STATS_EXP_DELETE: u16 = 3;
}

/// Bits of `CTA_FILTER_ORIG_FLAGS`/`CTA_FILTER_REPLY_FLAGS` (`net/netfilter/nf_conntrack_netlink.c`).
#[allow(missing_docs)]
#[allow(dead_code)] // the whole kernel enum, for reference, used or not
pub(crate) mod filter_flag {
    pub const IP_SRC: u32 = 1 << 0;
    pub const IP_DST: u32 = 1 << 1;
    pub const TUPLE_ZONE: u32 = 1 << 2;
    pub const PROTO_NUM: u32 = 1 << 3;
    pub const PROTO_SRC_PORT: u32 = 1 << 4;
    pub const PROTO_DST_PORT: u32 = 1 << 5;
    pub const PROTO_ICMP_TYPE: u32 = 1 << 6;
    pub const PROTO_ICMP_CODE: u32 = 1 << 7;
    pub const PROTO_ICMP_ID: u32 = 1 << 8;
    pub const PROTO_ICMPV6_TYPE: u32 = 1 << 9;
    pub const PROTO_ICMPV6_CODE: u32 = 1 << 10;
    pub const PROTO_ICMPV6_ID: u32 = 1 << 11;
}

/// An address family: the layer-3 protocol of an entry, a tuple, an expectation or a filter. On the wire
/// it is the nfgenmsg `nfgen_family` (`AF_INET` = 2, `AF_INET6` = 10).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv4 (`AF_INET`). The default, so that `Entry::default()` has a family; [`crate::Entry::new`] takes
    /// it from the tuples.
    #[default]
    Ipv4,
    /// IPv6 (`AF_INET6`).
    Ipv6,
}

impl Family {
    /// The `AF_*` number (2 or 10).
    pub const fn to_af(self) -> u8 {
        match self {
            Family::Ipv4 => libc::AF_INET as u8,
            Family::Ipv6 => libc::AF_INET6 as u8,
        }
    }

    /// The family of an `AF_*` number; `None` for anything but `AF_INET` and `AF_INET6`.
    pub const fn from_af(af: u8) -> Option<Family> {
        match af as i32 {
            libc::AF_INET => Some(Family::Ipv4),
            libc::AF_INET6 => Some(Family::Ipv6),
            _ => None,
        }
    }

    /// The family of an address.
    pub const fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    /// `"ipv4"` or `"ipv6"`, as conntrack-tools names the layer-3 protocol.
    pub const fn name(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }
}

/// The family in an nfgenmsg header at `offset`: an error for anything but `AF_INET` and `AF_INET6`.
pub(crate) fn family_at(af: u8, offset: usize) -> Result<Family, DecodeError> {
    Family::from_af(af).ok_or(DecodeError::Invalid {
        what: "nfgenmsg family (neither AF_INET nor AF_INET6)",
        offset,
        value: u64::from(af),
    })
}

/// An attribute the model does not know, kept byte for byte so it survives a round trip.
///
/// # Unknown attributes inside known nests
///
/// The typed structs (`Counters`, `TcpInfo`, ...) have no room for raw attributes, so an unknown
/// attribute found *inside* a known nest (say a new `CTA_PROTOINFO_TCP_*` from a future kernel, or a
/// `CTA_COUNTERS_PAD`) is kept in the `unknown` list of the nearest owner that has one ([`Entry::unknown`],
/// [`Tuple::unknown`] or [`Expect::unknown`]) as an *overlay*: a [`RawAttr`] whose `kind` is the known
/// nest's own type (`CTA_PROTOINFO`, `CTA_TUPLE_IP`, ...) with `NLA_F_NESTED`, and whose value is an
/// attribute stream holding:
/// - the unknown attributes of that nest, raw (type flags and value as received), and
/// - for each known sub-nest that itself held unknown attributes, an overlay of that sub-nest (so
///   `CTA_PROTOINFO` → `CTA_PROTOINFO_TCP` → unknown attribute is kept at any depth).
///
/// Such a `kind` can never be a genuinely unknown attribute of the owner, because the parser decodes
/// every attribute of that type into the typed field. On emit, the overlay's raw attributes are written
/// at the end of the re-emitted nest (and sub-overlays at the end of their sub-nests); an overlay whose
/// typed field is `None` is not written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawAttr {
    /// The type field including the `NLA_F_NESTED`/`NLA_F_NET_BYTEORDER` flag bits, as received.
    pub kind: u16,
    /// The value, without padding.
    pub value: Vec<u8>,
}

const NLA_HDR: usize = 4;

/// Rounds up to the 4-byte netlink alignment.
#[inline]
pub(crate) const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One attribute seen by [`Attrs`]: its type (flags masked off), the raw type field, its value and the
/// offset of its header in the outermost buffer (for error reports).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attr<'a> {
    /// Type with the nested/byte-order flag bits removed.
    pub kind: u16,
    /// The raw type field including flags.
    pub raw_kind: u16,
    /// The value, without padding.
    pub value: &'a [u8],
    /// Offset of the attribute header.
    pub offset: usize,
}

impl<'a> Attr<'a> {
    /// Offset of the value.
    #[inline]
    pub fn value_offset(&self) -> usize {
        self.offset + NLA_HDR
    }
    /// The nested attributes inside this one.
    #[inline]
    pub fn nested(&self) -> Attrs<'a> {
        Attrs::new(self.value, self.value_offset())
    }
    #[inline]
    fn fixed<const N: usize>(&self, what: &'static str) -> Result<[u8; N], DecodeError> {
        self.value.try_into().map_err(|_| DecodeError::BadSize {
            what,
            offset: self.offset,
            expected: N,
            actual: self.value.len(),
        })
    }
    /// A `u8` value.
    #[inline]
    pub fn u8(&self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.fixed::<1>(what)?[0])
    }
    /// A big-endian `u16` value.
    #[inline]
    pub fn u16_be(&self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.fixed(what)?))
    }
    /// A big-endian `u32` value.
    #[inline]
    pub fn u32_be(&self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.fixed(what)?))
    }
    /// A big-endian `u64` value.
    #[inline]
    pub fn u64_be(&self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.fixed(what)?))
    }
    /// A 4-byte IPv4 address.
    #[inline]
    pub fn ipv4(&self, what: &'static str) -> Result<std::net::Ipv4Addr, DecodeError> {
        Ok(std::net::Ipv4Addr::from(self.fixed::<4>(what)?))
    }
    /// A 16-byte IPv6 address.
    #[inline]
    pub fn ipv6(&self, what: &'static str) -> Result<std::net::Ipv6Addr, DecodeError> {
        Ok(std::net::Ipv6Addr::from(self.fixed::<16>(what)?))
    }
    /// A NUL-terminated (or unterminated) string; the terminator and anything after it are dropped.
    pub fn string(&self, what: &'static str) -> Result<String, DecodeError> {
        let end = self
            .value
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.value.len());
        std::str::from_utf8(&self.value[..end])
            .map(str::to_owned)
            .map_err(|_| DecodeError::NotUtf8 {
                what,
                offset: self.offset,
            })
    }
    /// This attribute kept raw.
    pub fn raw(&self) -> RawAttr {
        RawAttr {
            kind: self.raw_kind,
            value: self.value.to_vec(),
        }
    }
}

/// Iterator over a run of netlink attributes. Yields an error (once, then stops) when a header is truncated
/// or its length field is impossible; never panics.
#[derive(Debug, Clone)]
pub(crate) struct Attrs<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Attrs<'a> {
    /// Iterates over `buf`, reporting offsets as `base + position`.
    pub fn new(buf: &'a [u8], base: usize) -> Self {
        Attrs { buf, pos: 0, base }
    }
}

impl<'a> Attrs<'a> {
    #[cold]
    fn fail(
        &mut self,
        offset: usize,
        len: usize,
        room: usize,
    ) -> Option<Result<Attr<'a>, DecodeError>> {
        self.pos = self.buf.len();
        Some(Err(if room < NLA_HDR {
            DecodeError::Truncated {
                what: "attribute header",
                offset,
                expected: NLA_HDR,
                actual: room,
            }
        } else {
            DecodeError::BadLength {
                what: "attribute",
                offset,
                length: len,
                room,
            }
        }))
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.buf.get(self.pos..)?;
        if rest.is_empty() {
            return None;
        }
        let offset = self.base + self.pos;
        let Some(hdr) = rest.first_chunk::<NLA_HDR>() else {
            return self.fail(offset, 0, rest.len());
        };
        // The header layout is netlink-packet-core's `NlaBuffer`: length (u16), type (u16) with the
        // `NLA_F_NESTED`/`NLA_F_NET_BYTEORDER` bits on top; read inline here, this is the hot path of a dump.
        let len = usize::from(u16::from_ne_bytes([hdr[0], hdr[1]]));
        let raw_kind = u16::from_ne_bytes([hdr[2], hdr[3]]);
        if len < NLA_HDR || len > rest.len() {
            return self.fail(offset, len, rest.len());
        }
        let value = &rest[NLA_HDR..len];
        self.pos = self.pos.saturating_add(align4(len));
        Some(Ok(Attr {
            kind: raw_kind & NLA_TYPE_MASK,
            raw_kind,
            value,
            offset,
        }))
    }
}

/// Where encoders write. One encoder serves three sinks: [`LenCounter`] (for `buffer_len`), [`SliceOut`]
/// (for `emit(&mut [u8])`) and [`VecOut`] (appending straight into a reusable send buffer).
pub(crate) trait Out {
    /// Writes an attribute header and value (plus padding).
    fn attr(&mut self, kind: u16, value: &[u8]);
    /// Opens a nested attribute; returns a token for [`Out::nest_end`].
    fn nest_start(&mut self, kind: u16) -> usize;
    /// Closes the nested attribute opened at `token`, filling in its length.
    fn nest_end(&mut self, token: usize);

    /// A `u8` attribute.
    fn u8(&mut self, kind: u16, v: u8) {
        self.attr(kind, &[v]);
    }
    /// A big-endian `u16` attribute.
    fn u16_be(&mut self, kind: u16, v: u16) {
        self.attr(kind, &v.to_be_bytes());
    }
    /// A big-endian `u32` attribute.
    fn u32_be(&mut self, kind: u16, v: u32) {
        self.attr(kind, &v.to_be_bytes());
    }
    /// A big-endian `u64` attribute.
    fn u64_be(&mut self, kind: u16, v: u64) {
        self.attr(kind, &v.to_be_bytes());
    }
    /// A string attribute, NUL-terminated as the kernel's `nla_put_string` writes it.
    fn string(&mut self, kind: u16, s: &str) {
        let b = s.as_bytes();
        let tok = self.nest_start_plain(kind);
        self.raw_bytes(b);
        self.raw_bytes(&[0]);
        self.nest_end(tok);
    }
    /// Like [`Out::nest_start`] but without the `NLA_F_NESTED` flag (for composite plain values).
    fn nest_start_plain(&mut self, kind: u16) -> usize;
    /// Appends bytes inside an open attribute (no header, no padding).
    fn raw_bytes(&mut self, b: &[u8]);
    /// True when something could not be written (value too long, or the slice was too small).
    fn overflowed(&self) -> bool;
}

/// Counts the bytes an encoder would write.
#[derive(Debug, Default)]
pub(crate) struct LenCounter {
    /// Bytes counted so far (padded).
    pub len: usize,
    open: usize,
}

impl Out for LenCounter {
    fn attr(&mut self, _kind: u16, value: &[u8]) {
        self.len += NLA_HDR + align4(value.len());
    }
    fn nest_start(&mut self, _kind: u16) -> usize {
        self.len += NLA_HDR;
        self.open += 1;
        self.len
    }
    fn nest_start_plain(&mut self, kind: u16) -> usize {
        self.nest_start(kind)
    }
    fn nest_end(&mut self, _token: usize) {
        self.open = self.open.saturating_sub(1);
        self.len = align4(self.len);
    }
    fn raw_bytes(&mut self, b: &[u8]) {
        self.len += b.len();
    }
    fn overflowed(&self) -> bool {
        false
    }
}

/// Writes attributes into a fixed slice. Never panics: when the slice is too small it stops writing and
/// reports [`Out::overflowed`].
#[derive(Debug)]
pub(crate) struct SliceOut<'a> {
    buf: &'a mut [u8],
    /// Bytes written so far.
    pub pos: usize,
    overflow: bool,
}

impl<'a> SliceOut<'a> {
    /// Writes into `buf` from its start.
    pub fn new(buf: &'a mut [u8]) -> Self {
        SliceOut {
            buf,
            pos: 0,
            overflow: false,
        }
    }
    fn put(&mut self, b: &[u8]) {
        let end = self.pos + b.len();
        match self.buf.get_mut(self.pos..end) {
            Some(dst) => {
                dst.copy_from_slice(b);
                self.pos = end;
            }
            None => self.overflow = true,
        }
    }
    fn pad(&mut self) {
        let target = align4(self.pos);
        while self.pos < target && !self.overflow {
            self.put(&[0]);
        }
    }
}

fn nla_header(kind: u16, len: usize) -> Option<[u8; 4]> {
    let len = u16::try_from(len).ok()?;
    let l = len.to_ne_bytes();
    let k = kind.to_ne_bytes();
    Some([l[0], l[1], k[0], k[1]])
}

impl Out for SliceOut<'_> {
    fn attr(&mut self, kind: u16, value: &[u8]) {
        match nla_header(kind, NLA_HDR + value.len()) {
            Some(h) => {
                self.put(&h);
                self.put(value);
                self.pad();
            }
            None => self.overflow = true,
        }
    }
    fn nest_start(&mut self, kind: u16) -> usize {
        self.nest_start_plain(kind | NLA_F_NESTED)
    }
    fn nest_start_plain(&mut self, kind: u16) -> usize {
        let tok = self.pos;
        self.put(&[0, 0]);
        self.put(&kind.to_ne_bytes());
        tok
    }
    fn nest_end(&mut self, token: usize) {
        let len = self.pos.saturating_sub(token);
        match (u16::try_from(len), self.buf.get_mut(token..token + 2)) {
            (Ok(l), Some(dst)) => dst.copy_from_slice(&l.to_ne_bytes()),
            _ => self.overflow = true,
        }
        self.pad();
    }
    fn raw_bytes(&mut self, b: &[u8]) {
        self.put(b);
    }
    fn overflowed(&self) -> bool {
        self.overflow
    }
}

/// Appends attributes to a `Vec<u8>` (the batch send buffer), growing it as needed.
#[derive(Debug)]
pub(crate) struct VecOut<'a> {
    /// The buffer written to.
    pub buf: &'a mut Vec<u8>,
    overflow: bool,
}

impl<'a> VecOut<'a> {
    /// Appends to `buf`.
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        VecOut {
            buf,
            overflow: false,
        }
    }
    fn pad(&mut self) {
        let target = align4(self.buf.len());
        self.buf.resize(target, 0);
    }
}

impl Out for VecOut<'_> {
    fn attr(&mut self, kind: u16, value: &[u8]) {
        match nla_header(kind, NLA_HDR + value.len()) {
            Some(h) => {
                self.buf.extend_from_slice(&h);
                self.buf.extend_from_slice(value);
                self.pad();
            }
            None => self.overflow = true,
        }
    }
    fn nest_start(&mut self, kind: u16) -> usize {
        self.nest_start_plain(kind | NLA_F_NESTED)
    }
    fn nest_start_plain(&mut self, kind: u16) -> usize {
        let tok = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        tok
    }
    fn nest_end(&mut self, token: usize) {
        let len = self.buf.len().saturating_sub(token);
        match (u16::try_from(len), self.buf.get_mut(token..token + 2)) {
            (Ok(l), Some(dst)) => dst.copy_from_slice(&l.to_ne_bytes()),
            _ => self.overflow = true,
        }
        self.pad();
    }
    fn raw_bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    fn overflowed(&self) -> bool {
        self.overflow
    }
}

/// A received netlink message, split into header fields and payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Msg<'a> {
    /// `nlmsg_type`.
    pub kind: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// `nlmsg_pid`.
    pub pid: u32,
    /// Everything after the 16-byte header.
    pub payload: &'a [u8],
}

impl<'a> Msg<'a> {
    /// The nfnetlink subsystem (high byte of the type).
    pub fn subsys(&self) -> u8 {
        (self.kind >> 8) as u8
    }
    /// The subsystem's message type (low byte).
    pub fn ct_type(&self) -> u8 {
        (self.kind & 0xff) as u8
    }
    /// For `NLMSG_ERROR`: the (negative or zero) error code.
    pub fn error_code(&self) -> Result<i32, DecodeError> {
        match self.payload.get(..4) {
            Some(b) => Ok(i32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
            None => Err(DecodeError::Truncated {
                what: "nlmsgerr",
                offset: NLMSG_HDRLEN,
                expected: 4,
                actual: self.payload.len(),
            }),
        }
    }
    /// Splits an nfnetlink payload into (family, version, res_id) and its attribute bytes.
    pub fn nfgen(&self) -> Result<(u8, u8, u16, &'a [u8]), DecodeError> {
        if self.payload.len() < NFGENMSG_LEN {
            return Err(DecodeError::Truncated {
                what: "nfgenmsg",
                offset: NLMSG_HDRLEN,
                expected: NFGENMSG_LEN,
                actual: self.payload.len(),
            });
        }
        let p = self.payload;
        Ok((
            p[0],
            p[1],
            u16::from_be_bytes([p[2], p[3]]),
            &p[NFGENMSG_LEN..],
        ))
    }
}

/// Iterator over the netlink messages of one received datagram.
#[derive(Debug, Clone)]
pub(crate) struct Msgs<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Msgs<'a> {
    /// Iterates over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Msgs { buf, pos: 0 }
    }
    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Msgs<'a> {
    type Item = Result<Msg<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.buf.get(self.pos..)?;
        if rest.is_empty() {
            return None;
        }
        let offset = self.pos;
        if rest.len() < NLMSG_HDRLEN {
            self.pos = self.buf.len();
            return Some(Err(DecodeError::Truncated {
                what: "nlmsghdr",
                offset,
                expected: NLMSG_HDRLEN,
                actual: rest.len(),
            }));
        }
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            self.pos = self.buf.len();
            return Some(Err(DecodeError::BadLength {
                what: "nlmsghdr",
                offset,
                length: len,
                room: rest.len(),
            }));
        }
        let kind = u16::from_ne_bytes([rest[4], rest[5]]);
        let flags = u16::from_ne_bytes([rest[6], rest[7]]);
        let seq = u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]);
        let pid = u32::from_ne_bytes([rest[12], rest[13], rest[14], rest[15]]);
        self.pos = self.pos.saturating_add(align4(len));
        Some(Ok(Msg {
            kind,
            flags,
            seq,
            pid,
            payload: &rest[NLMSG_HDRLEN..len],
        }))
    }
}

/// Starts a netlink + nfgenmsg header at the end of `buf`; returns the offset to pass to [`finish_msg`].
pub(crate) fn start_msg(
    buf: &mut Vec<u8>,
    subsys: u8,
    msg: u8,
    flags: u16,
    seq: u32,
    family: u8,
    version: u8,
) -> usize {
    let start = buf.len();
    let kind = (u16::from(subsys) << 8) | u16::from(msg);
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(&[family, version, 0, 0]);
    start
}

/// Fills in the length of the message started at `start`.
pub(crate) fn finish_msg(buf: &mut [u8], start: usize) {
    let len = buf.len().saturating_sub(start) as u32;
    if let Some(dst) = buf.get_mut(start..start + 4) {
        dst.copy_from_slice(&len.to_ne_bytes());
    }
}

/// The parts of one nest the model does not know, gathered while parsing it (an overlay; see the
/// module docs).
#[derive(Debug, Default)]
pub(crate) struct Extras {
    /// Unknown attributes of this nest, raw, in the order received.
    raw: Vec<u8>,
    /// The overlay of the one known sub-nest that carries one (the last such sub-nest wins, as its typed
    /// fields do).
    sub: Option<(u16, Vec<u8>)>,
}

impl Extras {
    /// Keeps `a` raw.
    pub(crate) fn keep(&mut self, a: &Attr<'_>) {
        VecOut::new(&mut self.raw).attr(a.raw_kind, a.value);
    }
    /// Keeps a raw attribute.
    pub(crate) fn keep_raw(&mut self, a: &RawAttr) {
        VecOut::new(&mut self.raw).attr(a.kind, &a.value);
    }
    /// Sets the overlay of sub-nest `kind` (replacing an earlier sub-nest's, which the typed value also
    /// replaced).
    pub(crate) fn sub(&mut self, kind: u16, sub: Extras) {
        let v = sub.into_stream();
        self.sub = (!v.is_empty()).then_some((kind, v));
    }
    /// The canonical stream: the sub-nest overlay first, then the raw attributes, which is the order an
    /// emit writes them in (sub-nest inside the typed part, raw ones at the end of the nest).
    fn into_stream(self) -> Vec<u8> {
        match self.sub {
            None => self.raw,
            Some((kind, v)) => {
                let mut out = Vec::with_capacity(v.len() + 4 + self.raw.len());
                VecOut::new(&mut out).attr(kind | NLA_F_NESTED, &v);
                out.extend_from_slice(&self.raw);
                out
            }
        }
    }
    /// Puts the overlay of nest `kind` into `list`, when it holds anything. The overlay of an earlier nest
    /// of the same type is dropped even when this one is empty: the last nest wins, as its typed value
    /// does (an earlier overlay could name a sub-nest the typed value no longer has).
    pub(crate) fn push_into(self, list: &mut Vec<RawAttr>, kind: u16) {
        let value = self.into_stream();
        if list.iter().any(|u| u.kind & NLA_TYPE_MASK == kind) {
            list.retain(|u| u.kind & NLA_TYPE_MASK != kind);
        }
        if !value.is_empty() {
            list.push(RawAttr {
                kind: kind | NLA_F_NESTED,
                value,
            });
        }
    }
}

/// Puts an owner's unknown list in the order an emit writes it: overlays first, in the order of
/// `overlays` (the owner's emit order of those nests), then the genuinely unknown attributes in the order
/// received. So a message whose attributes came in another order still decodes, re-emits and decodes
/// back to an equal value.
pub(crate) fn canonical_order(list: &mut [RawAttr], overlays: &[u16]) {
    if list.len() > 1 {
        list.sort_by_key(|u| {
            overlays
                .iter()
                .position(|&k| k == u.kind & NLA_TYPE_MASK)
                .unwrap_or(usize::MAX)
        });
    }
}

/// The overlay of nest `kind` in an owner's unknown list (see [`Extras`]).
pub(crate) fn overlay(list: &[RawAttr], kind: u16) -> Option<&[u8]> {
    list.iter()
        .find(|u| u.kind & NLA_TYPE_MASK == kind)
        .map(|u| u.value.as_slice())
}

/// The overlay of sub-nest `kind` inside the overlay `extras` (see [`Extras`]).
pub(crate) fn sub_overlay(extras: Option<&[u8]>, kind: u16) -> Option<&[u8]> {
    Attrs::new(extras?, 0)
        .map_while(Result::ok)
        .find(|a| a.kind == kind)
        .map(|a| a.value)
}

/// Writes the raw attributes of overlay `extras`, skipping the sub-overlays whose types are in `subnests`
/// (those were written inside their sub-nests).
pub(crate) fn emit_extras<O: Out>(o: &mut O, extras: Option<&[u8]>, subnests: &[u16]) {
    let Some(extras) = extras else { return };
    for a in Attrs::new(extras, 0).map_while(Result::ok) {
        if !subnests.contains(&a.kind) {
            o.attr(a.raw_kind, a.value);
        }
    }
}
