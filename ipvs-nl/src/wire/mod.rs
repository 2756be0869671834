//! Codecs, no I/O: netlink and genetlink headers, attribute helpers, and the IPVS messages.
//!
//! Everything here follows the house codec shape: `parse(&[u8]) -> Result<Self, DecodeError>`,
//! `buffer_len()`, `emit(&mut [u8])`. Attribute walking uses netlink-packet-core's `NlasIterator`.

mod ipvs;

pub use ipvs::*;

use crate::error::DecodeError;
use netlink_packet_core::{NLA_F_NESTED, NLA_TYPE_MASK, NlasIterator};

/// `NLMSG_ERROR`.
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`.
pub const NLMSG_DONE: u16 = 3;
/// `NLMSG_OVERRUN`.
pub const NLMSG_OVERRUN: u16 = 4;
/// `GENL_ID_CTRL`, the generic-netlink controller.
pub const GENL_ID_CTRL: u16 = 0x10;
/// `CTRL_CMD_GETFAMILY`.
pub const CTRL_CMD_GETFAMILY: u8 = 3;
/// `CTRL_ATTR_FAMILY_ID`.
pub const CTRL_ATTR_FAMILY_ID: u16 = 1;
/// `CTRL_ATTR_FAMILY_NAME`.
pub const CTRL_ATTR_FAMILY_NAME: u16 = 2;

/// `NLM_F_REQUEST`.
pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_MULTI`.
pub const NLM_F_MULTI: u16 = 0x2;
/// `NLM_F_ACK`.
pub const NLM_F_ACK: u16 = 0x4;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
pub const NLM_F_DUMP: u16 = 0x300;

/// Size of `struct nlmsghdr`.
pub const NLMSG_HDRLEN: usize = 16;
/// Size of `struct genlmsghdr`.
pub const GENL_HDRLEN: usize = 4;

/// Rounds up to the 4-byte netlink alignment.
pub const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// `struct nlmsghdr`: the 16-byte header of every netlink message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NlHeader {
    /// Length of the whole message, header included.
    pub len: u32,
    /// Message type (a family id, or `NLMSG_ERROR`/`NLMSG_DONE`).
    pub kind: u16,
    /// `NLM_F_*` flags.
    pub flags: u16,
    /// Sequence number.
    pub seq: u32,
    /// Port id.
    pub pid: u32,
}

impl NlHeader {
    /// Parses the header at the start of `buf` (`offset` is only for error reports).
    pub fn parse_at(buf: &[u8], offset: usize) -> Result<Self, DecodeError> {
        let b = buf.get(..NLMSG_HDRLEN).ok_or(DecodeError::Truncated {
            what: "nlmsghdr",
            offset,
            expected: NLMSG_HDRLEN,
            actual: buf.len(),
        })?;
        Ok(NlHeader {
            len: u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
            kind: u16::from_ne_bytes([b[4], b[5]]),
            flags: u16::from_ne_bytes([b[6], b[7]]),
            seq: u32::from_ne_bytes([b[8], b[9], b[10], b[11]]),
            pid: u32::from_ne_bytes([b[12], b[13], b[14], b[15]]),
        })
    }

    /// Always 16.
    pub fn buffer_len(&self) -> usize {
        NLMSG_HDRLEN
    }

    /// Writes the header into the first 16 bytes of `out`.
    pub fn emit(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&self.len.to_ne_bytes());
        out[4..6].copy_from_slice(&self.kind.to_ne_bytes());
        out[6..8].copy_from_slice(&self.flags.to_ne_bytes());
        out[8..12].copy_from_slice(&self.seq.to_ne_bytes());
        out[12..16].copy_from_slice(&self.pid.to_ne_bytes());
    }
}

/// `struct genlmsghdr`: command, version, 2 reserved bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GenlHeader {
    /// The family's command.
    pub cmd: u8,
    /// The family's version.
    pub version: u8,
}

impl GenlHeader {
    /// Parses the 4-byte header.
    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        match buf {
            [cmd, version, _, _, ..] => Ok(GenlHeader {
                cmd: *cmd,
                version: *version,
            }),
            _ => Err(DecodeError::Truncated {
                what: "genlmsghdr",
                offset: NLMSG_HDRLEN,
                expected: GENL_HDRLEN,
                actual: buf.len(),
            }),
        }
    }

    /// Always 4.
    pub fn buffer_len(&self) -> usize {
        GENL_HDRLEN
    }

    /// Writes the header (reserved bytes zero).
    pub fn emit(&self, out: &mut [u8]) {
        out[0] = self.cmd;
        out[1] = self.version;
        out[2] = 0;
        out[3] = 0;
    }
}

/// One netlink message inside a receive buffer.
#[derive(Debug, Clone, Copy)]
pub struct RawMessage<'a> {
    /// Its header.
    pub header: NlHeader,
    /// The bytes after the 16-byte header, up to `header.len`.
    pub payload: &'a [u8],
}

/// Iterates over the netlink messages of one datagram; stops after the first framing error.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Messages<'a> {
    /// Walks `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Messages { buf, pos: 0 }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<RawMessage<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.buf.get(self.pos..)?;
        if rest.is_empty() {
            return None;
        }
        let header = match NlHeader::parse_at(rest, self.pos) {
            Ok(h) => h,
            Err(e) => {
                self.pos = self.buf.len();
                return Some(Err(e));
            }
        };
        let len = header.len as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            let err = DecodeError::BadLength {
                what: "nlmsghdr",
                offset: self.pos,
                length: len,
                available: rest.len(),
            };
            self.pos = self.buf.len();
            return Some(Err(err));
        }
        let payload = &rest[NLMSG_HDRLEN..len];
        self.pos += align4(len).min(rest.len());
        Some(Ok(RawMessage { header, payload }))
    }
}

/// Reads the `errno` of an `NLMSG_ERROR` payload (0 for an ACK; positive otherwise).
pub fn parse_error_payload(payload: &[u8]) -> Result<i32, DecodeError> {
    match payload {
        [a, b, c, d, ..] => Ok(i32::from_ne_bytes([*a, *b, *c, *d]).wrapping_neg()),
        _ => Err(DecodeError::Truncated {
            what: "nlmsgerr",
            offset: NLMSG_HDRLEN,
            expected: 4,
            actual: payload.len(),
        }),
    }
}

/// A view of one attribute: kind (flags masked off) and payload.
#[derive(Debug, Clone, Copy)]
pub struct Attr<'a> {
    /// Attribute type with `NLA_F_NESTED`/`NLA_F_NET_BYTEORDER` removed.
    pub kind: u16,
    /// Payload bytes.
    pub value: &'a [u8],
}

/// Iterates over the attributes in `buf` (the payload of a message or a nested attribute).
pub fn attrs(buf: &[u8]) -> impl Iterator<Item = Result<Attr<'_>, DecodeError>> {
    let total = buf.len();
    NlasIterator::new(buf).map(move |r| match r {
        Ok(nla) => {
            let kind = nla.kind() & NLA_TYPE_MASK;
            let len = usize::from(nla.length());
            let inner = nla.into_inner();
            // new_checked verified 4 <= len <= inner.len(); `get` keeps this panic-free regardless.
            let value = inner.get(4..len).unwrap_or_default();
            Ok(Attr { kind, value })
        }
        Err(_) => Err(DecodeError::BadLength {
            what: "nlattr",
            offset: 0,
            length: 0,
            available: total,
        }),
    })
}

impl<'a> Attr<'a> {
    /// The payload, which must be exactly `N` bytes.
    pub fn exact<const N: usize>(&self, what: &'static str) -> Result<[u8; N], DecodeError> {
        <[u8; N]>::try_from(self.value).map_err(|_| DecodeError::AttrSize {
            what,
            expected: N,
            actual: self.value.len(),
        })
    }

    /// The first `N` bytes of the payload (addresses come in a 16-byte union whatever their family).
    pub fn prefix<const N: usize>(&self, what: &'static str) -> Result<[u8; N], DecodeError> {
        self.value
            .get(..N)
            .and_then(|s| <[u8; N]>::try_from(s).ok())
            .ok_or(DecodeError::AttrSize {
                what,
                expected: N,
                actual: self.value.len(),
            })
    }

    /// A native-endian `u8`.
    pub fn u8(&self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.exact::<1>(what)?[0])
    }

    /// A native-endian `u16`.
    pub fn u16(&self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_ne_bytes(self.exact(what)?))
    }

    /// A big-endian `u16` (ports).
    pub fn be16(&self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.exact(what)?))
    }

    /// A native-endian `u32`.
    pub fn u32(&self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_ne_bytes(self.exact(what)?))
    }

    /// A native-endian `u64`, or a `u32` widened (stats counters come in both sizes).
    pub fn u64_or_u32(&self, what: &'static str) -> Result<u64, DecodeError> {
        match self.value.len() {
            8.. => Ok(u64::from_ne_bytes(self.exact(what)?)),
            4..8 => Ok(u64::from(self.u32(what)?)),
            n => Err(DecodeError::AttrSize {
                what,
                expected: 4,
                actual: n,
            }),
        }
    }

    /// A NUL-terminated (or unterminated) string, lossily decoded.
    pub fn string(&self) -> String {
        let end = self
            .value
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.value.len());
        String::from_utf8_lossy(&self.value[..end]).into_owned()
    }
}

/// Appends attributes to a message being built. Lengths of nested attributes are patched on `end_nested`.
#[derive(Debug)]
pub struct AttrWriter<'a> {
    buf: &'a mut Vec<u8>,
}

impl<'a> AttrWriter<'a> {
    /// Appends to `buf`.
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        AttrWriter { buf }
    }

    fn buf(&mut self) -> &mut Vec<u8> {
        self.buf
    }

    /// Appends one attribute with `value` as payload (padded to 4 bytes).
    pub fn put(&mut self, kind: u16, value: &[u8]) {
        let b = self.buf();
        let len = 4 + value.len();
        b.extend_from_slice(&(len as u16).to_ne_bytes());
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(value);
        b.resize(align4(b.len()), 0);
    }

    /// A `u8`.
    pub fn u8(&mut self, kind: u16, v: u8) {
        self.put(kind, &[v]);
    }
    /// A native `u16`.
    pub fn u16(&mut self, kind: u16, v: u16) {
        self.put(kind, &v.to_ne_bytes());
    }
    /// A big-endian `u16`.
    pub fn be16(&mut self, kind: u16, v: u16) {
        self.put(kind, &v.to_be_bytes());
    }
    /// A native `u32`.
    pub fn u32(&mut self, kind: u16, v: u32) {
        self.put(kind, &v.to_ne_bytes());
    }
    /// A NUL-terminated string.
    pub fn string(&mut self, kind: u16, s: &str) {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        self.put(kind, &v);
    }

    /// Opens a nested attribute; returns the offset to pass to [`AttrWriter::end_nested`].
    pub fn begin_nested(&mut self, kind: u16) -> usize {
        let b = self.buf();
        let start = b.len();
        b.extend_from_slice(&0u16.to_ne_bytes());
        b.extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        start
    }

    /// Closes a nested attribute opened at `start`.
    pub fn end_nested(&mut self, start: usize) {
        let b = self.buf();
        let len = (b.len() - start) as u16;
        b[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }
}

/// Builds one complete genetlink request: nlmsghdr + genlmsghdr + attributes written by `body`.
pub fn build_request(
    out: &mut Vec<u8>,
    family: u16,
    flags: u16,
    seq: u32,
    genl: GenlHeader,
    body: impl FnOnce(&mut AttrWriter<'_>),
) {
    let start = out.len();
    out.resize(start + NLMSG_HDRLEN + GENL_HDRLEN, 0);
    genl.emit(&mut out[start + NLMSG_HDRLEN..]);
    {
        let mut w = AttrWriter::new(out);
        body(&mut w);
    }
    let header = NlHeader {
        len: (out.len() - start) as u32,
        kind: family,
        flags,
        seq,
        pid: 0,
    };
    header.emit(&mut out[start..]);
}

/// The family id in a `CTRL_CMD_NEWFAMILY` reply's attributes.
pub fn parse_family_id(genl_payload: &[u8]) -> Result<u16, DecodeError> {
    for a in attrs(genl_payload) {
        let a = a?;
        if a.kind == CTRL_ATTR_FAMILY_ID {
            return a.u16("CTRL_ATTR_FAMILY_ID");
        }
    }
    Err(DecodeError::Missing {
        what: "CTRL_ATTR_FAMILY_ID",
    })
}

#[cfg(test)]
mod tests;
