//! Attribute framing (`struct netattr`) and the value types shared by conntrack and expectation messages.

use super::{DecodeError, Mode, Skipped, align4};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Size of `struct netattr` (`u16 nta_len`, `u16 nta_attr`).
pub(crate) const NTA_HDR: usize = 4;

/// Where attribute bytes go: a length counter or a real buffer. One emit routine drives both, so
/// `buffer_len()` and `emit()` cannot disagree.
pub(crate) trait Sink {
    fn put(&mut self, attr: u16, data: &[u8]);

    fn u8(&mut self, attr: u16, v: u8) {
        self.put(attr, &[v]);
    }
    fn u16(&mut self, attr: u16, v: u16) {
        self.put(attr, &v.to_be_bytes());
    }
    fn u32(&mut self, attr: u16, v: u32) {
        self.put(attr, &v.to_be_bytes());
    }
    fn addrs(&mut self, v4: u16, v6: u16, a: &AddrPair) {
        match a {
            AddrPair::V4 { src, dst } => {
                let mut b = [0u8; 8];
                b[..4].copy_from_slice(&src.octets());
                b[4..].copy_from_slice(&dst.octets());
                self.put(v4, &b);
            }
            AddrPair::V6 { src, dst } => {
                let mut b = [0u8; 32];
                b[..16].copy_from_slice(&src.octets());
                b[16..].copy_from_slice(&dst.octets());
                self.put(v6, &b);
            }
        }
    }
    fn ports(&mut self, attr: u16, p: &PortPair) {
        let mut b = [0u8; 4];
        b[..2].copy_from_slice(&p.sport.to_be_bytes());
        b[2..].copy_from_slice(&p.dport.to_be_bytes());
        self.put(attr, &b);
    }
}

/// Counts the encoded length.
#[derive(Default)]
pub(crate) struct Counter(pub usize);

impl Sink for Counter {
    fn put(&mut self, _attr: u16, data: &[u8]) {
        self.0 += align4(NTA_HDR + data.len());
    }
}

/// Writes attributes; padding bytes are zeroed like conntrackd's `put_header`.
pub(crate) struct Writer<'a> {
    pub buf: &'a mut [u8],
    pub off: usize,
}

impl Sink for Writer<'_> {
    fn put(&mut self, attr: u16, data: &[u8]) {
        let len = NTA_HDR + data.len();
        let total = align4(len);
        // The caller sized the buffer with `Counter`, so this slice always exists; a short buffer writes nothing.
        if let Some(out) = self.buf.get_mut(self.off..self.off + total) {
            out[..2].copy_from_slice(&(len as u16).to_be_bytes());
            out[2..4].copy_from_slice(&attr.to_be_bytes());
            out[4..len].copy_from_slice(data);
            out[len..].fill(0);
        }
        self.off += total;
    }
}

/// The size rule for one attribute number, as in conntrackd's parser tables.
#[derive(Clone, Copy)]
pub(crate) enum Size {
    /// `nta_len` must equal this (header included).
    Fixed(usize),
    /// `nta_len` must not exceed this (header included).
    Max(usize),
}

/// Walks the attributes of `msg` (a whole message, header included) from `hdr_len`, applying conntrackd's
/// checks (`msg2ct`/`msg2exp`): a trailing fragment of 4 bytes or less is ignored, an attribute may not
/// overrun the message, must be at least 4 bytes, must be known (below `max`) and must have the right size.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // one internal call site per message kind; a struct would only rename them
pub(crate) fn walk(
    msg: &[u8],
    hdr_len: usize,
    base: usize,
    max: u16,
    size_of: impl Fn(u16) -> Size,
    mode: Mode,
    skipped: &mut Skipped,
    mut f: impl FnMut(u16, &[u8]),
) -> Result<(), DecodeError> {
    let mut off = hdr_len;
    while msg.len().saturating_sub(off) > NTA_HDR {
        let remaining = msg.len() - off;
        let len = usize::from(u16::from_be_bytes([msg[off], msg[off + 1]]));
        let attr = u16::from_be_bytes([msg[off + 2], msg[off + 3]]);
        let offset = base + off;
        if len > remaining {
            return Err(DecodeError::AttrOverrun {
                offset,
                attr,
                len,
                remaining,
            });
        }
        if len < NTA_HDR {
            return Err(DecodeError::AttrTooShort { offset, attr, len });
        }
        if attr >= max {
            match mode {
                Mode::Strict => return Err(DecodeError::UnknownAttr { offset, attr }),
                Mode::Lenient => {
                    skipped.unknown_attrs += 1;
                    off += align4(len);
                    continue;
                }
            }
        }
        match size_of(attr) {
            Size::Fixed(expected) if len != expected => {
                return Err(DecodeError::AttrSize {
                    offset,
                    attr,
                    expected,
                    actual: len,
                });
            }
            Size::Max(m) if len > m => {
                return Err(DecodeError::AttrTooLong {
                    offset,
                    attr,
                    max: m,
                    actual: len,
                });
            }
            _ => {}
        }
        f(attr, &msg[off + NTA_HDR..off + len]);
        off += align4(len);
    }
    Ok(())
}

pub(crate) fn rd_u16(d: &[u8]) -> u16 {
    match d {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    }
}

pub(crate) fn rd_u16_le(d: &[u8]) -> u16 {
    match d {
        [a, b, ..] => u16::from_le_bytes([*a, *b]),
        _ => 0,
    }
}

pub(crate) fn rd_u32(d: &[u8]) -> u32 {
    match d {
        [a, b, c, e, ..] => u32::from_be_bytes([*a, *b, *c, *e]),
        _ => 0,
    }
}

pub(crate) fn rd_v4(d: &[u8]) -> Ipv4Addr {
    Ipv4Addr::from(rd_u32(d))
}

pub(crate) fn rd_v6(d: &[u8]) -> Ipv6Addr {
    let mut b = [0u8; 16];
    if let Some(s) = d.get(..16) {
        b.copy_from_slice(s);
    }
    Ipv6Addr::from(b)
}

pub(crate) fn rd_addrs_v4(d: &[u8]) -> AddrPair {
    AddrPair::V4 {
        src: rd_v4(d),
        dst: rd_v4(d.get(4..).unwrap_or(&[])),
    }
}

pub(crate) fn rd_addrs_v6(d: &[u8]) -> AddrPair {
    AddrPair::V6 {
        src: rd_v6(d),
        dst: rd_v6(d.get(16..).unwrap_or(&[])),
    }
}

pub(crate) fn rd_ports(d: &[u8]) -> PortPair {
    PortPair {
        sport: rd_u16(d),
        dport: rd_u16(d.get(2..).unwrap_or(&[])),
    }
}

pub(crate) fn rd_u8(d: &[u8]) -> u8 {
    d.first().copied().unwrap_or(0)
}

/// Source and destination addresses of a tuple (`struct nfct_attr_grp_ipv4` / `_ipv6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrPair {
    /// IPv4.
    V4 {
        /// Source.
        src: Ipv4Addr,
        /// Destination.
        dst: Ipv4Addr,
    },
    /// IPv6.
    V6 {
        /// Source.
        src: Ipv6Addr,
        /// Destination.
        dst: Ipv6Addr,
    },
}

impl AddrPair {
    /// Source address.
    pub fn src(&self) -> std::net::IpAddr {
        match self {
            AddrPair::V4 { src, .. } => (*src).into(),
            AddrPair::V6 { src, .. } => (*src).into(),
        }
    }
    /// Destination address.
    pub fn dst(&self) -> std::net::IpAddr {
        match self {
            AddrPair::V4 { dst, .. } => (*dst).into(),
            AddrPair::V6 { dst, .. } => (*dst).into(),
        }
    }
}

/// Source and destination ports (`struct nfct_attr_grp_port`, big-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PortPair {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
}

/// NAT sequence adjustment (`struct nta_attr_natseqadj`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct NatSeqAdj {
    pub orig_correction_pos: u32,
    pub orig_offset_before: u32,
    pub orig_offset_after: u32,
    pub repl_correction_pos: u32,
    pub repl_offset_before: u32,
    pub repl_offset_after: u32,
}

impl NatSeqAdj {
    pub(crate) fn to_bytes(self) -> [u8; 24] {
        let mut b = [0u8; 24];
        for (i, v) in [
            self.orig_correction_pos,
            self.orig_offset_before,
            self.orig_offset_after,
            self.repl_correction_pos,
            self.repl_offset_before,
            self.repl_offset_after,
        ]
        .into_iter()
        .enumerate()
        {
            b[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
        }
        b
    }
    pub(crate) fn from_bytes(d: &[u8]) -> Self {
        let w = |i: usize| rd_u32(d.get(i * 4..).unwrap_or(&[]));
        NatSeqAdj {
            orig_correction_pos: w(0),
            orig_offset_before: w(1),
            orig_offset_after: w(2),
            repl_correction_pos: w(3),
            repl_offset_before: w(4),
            repl_offset_after: w(5),
        }
    }
}

/// SYN proxy state (`struct nta_attr_synproxy`: its, isn, tsoff, big-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Synproxy {
    /// Initial timestamp.
    pub its: u32,
    /// Initial sequence number.
    pub isn: u32,
    /// Timestamp offset.
    pub tsoff: u32,
}

/// Raw bytes of a short NUL-terminated string attribute, stored inline (no allocation).
///
/// conntrackd sends `strlen + 1` bytes (the NUL included) and accepts up to `N` bytes of data.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct InlineStr<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

/// A helper name (`NTA_HELPER_NAME`, at most 12 bytes of data: `nta_len <= NFCT_HELPER_NAME_MAX`).
pub type HelperName = InlineStr<12>;
/// An expectation function name (`NTA_EXP_FN`, at most 28 bytes of data).
pub type ExpFn = InlineStr<28>;

impl<const N: usize> InlineStr<N> {
    /// From a name; appends the NUL conntrackd sends. `None` if it does not fit.
    pub fn new(name: &str) -> Option<Self> {
        let b = name.as_bytes();
        if b.len() + 1 > N || b.contains(&0) {
            return None;
        }
        let mut bytes = [0u8; N];
        bytes[..b.len()].copy_from_slice(b);
        Some(InlineStr {
            len: (b.len() + 1) as u8,
            bytes,
        })
    }
    /// From the raw attribute data (longer than `N` bytes is cut). `None` for empty data: conntrackd never
    /// sends it, and a trailing empty attribute would not survive its parser's loop, so parsers treat it as
    /// an absent attribute.
    pub fn from_raw(d: &[u8]) -> Option<Self> {
        if d.is_empty() {
            return None;
        }
        let n = d.len().min(N);
        let mut bytes = [0u8; N];
        bytes[..n].copy_from_slice(&d[..n]);
        Some(InlineStr {
            len: n as u8,
            bytes,
        })
    }
    /// The raw attribute data.
    pub fn raw(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len).min(N)]
    }
    /// The name up to the first NUL, lossily as UTF-8.
    pub fn name(&self) -> std::borrow::Cow<'_, str> {
        let raw = self.raw();
        let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
        String::from_utf8_lossy(&raw[..end])
    }
}

impl<const N: usize> std::fmt::Debug for InlineStr<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.name())
    }
}

/// Connection labels (`NTA_LABELS`) as big-endian 32-bit words: bit `i` of word `w` is label `32 * w + i`
/// (`ct_build_clabel` / `ct_parse_clabel`).
///
/// conntrackd accepts a bitmap of up to `NTA_LABELS_MAX_SIZE` (1024) bytes, so this codec does too. The
/// kernel keeps 128 bits (`NF_CT_LABELS_MAX_SIZE`) and `nf_connlabels_replace` ignores words past them,
/// so only the first [`Labels::MAX_WORDS`] words are stored; the number of words on the wire is kept, so
/// a longer bitmap whose extra words are zero re-encodes byte for byte. Set bits past label 127 are
/// dropped (as the kernel drops them); such a message does not re-encode identically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Labels {
    /// Words on the wire (1..=256).
    wire_words: u16,
    data: [u32; 4],
}

impl Labels {
    /// Largest number of 32-bit words stored (the kernel's 128 label bits).
    pub const MAX_WORDS: usize = 4;
    /// Largest number of 32-bit words conntrackd accepts on the wire (`NTA_LABELS_MAX_SIZE` / 4).
    pub const MAX_WIRE_WORDS: usize = 256;

    /// From words (bit `i` of word `w` is label `32 * w + i`). `None` if empty or longer than 4 words.
    pub fn new(words: &[u32]) -> Option<Self> {
        if words.is_empty() || words.len() > Self::MAX_WORDS {
            return None;
        }
        let mut data = [0u32; 4];
        data[..words.len()].copy_from_slice(words);
        Some(Labels {
            wire_words: words.len() as u16,
            data,
        })
    }
    /// From the attribute data: a non-empty multiple of 4 bytes, at most 1024 (else `None`, which
    /// `ct_parse_clabel` also ignores). Words past the fourth are counted but not stored.
    pub(crate) fn from_wire(d: &[u8]) -> Option<Self> {
        if d.is_empty() || !d.len().is_multiple_of(4) || d.len() > Self::MAX_WIRE_WORDS * 4 {
            return None;
        }
        let mut data = [0u32; 4];
        for (slot, w) in data.iter_mut().zip(d.chunks_exact(4)) {
            *slot = rd_u32(w);
        }
        Some(Labels {
            wire_words: (d.len() / 4) as u16,
            data,
        })
    }
    /// The stored words (at most 4).
    pub fn words(&self) -> &[u32] {
        &self.data[..usize::from(self.wire_words).min(Self::MAX_WORDS)]
    }
    /// Number of words on the wire (more than [`Labels::words`] when the peer sent a longer bitmap).
    pub fn wire_words(&self) -> usize {
        usize::from(self.wire_words).clamp(1, Self::MAX_WIRE_WORDS)
    }
    /// Emits the attribute data: the stored words, then zero words up to [`Labels::wire_words`].
    pub(crate) fn emit_to<S: Sink>(&self, s: &mut S, attr: u16) {
        let mut b = [0u8; Self::MAX_WIRE_WORDS * 4];
        for (i, w) in self.words().iter().enumerate() {
            b[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
        }
        s.put(attr, &b[..self.wire_words() * 4]);
    }
}
