//! Codecs, no I/O: the IPVS values and messages, and (privately) the netlink/genetlink framing.
//!
//! Every typed value follows the house codec shape: `parse(&[u8]) -> Result<Self, DecodeError>`,
//! `buffer_len()` and `emit(&mut [u8]) -> Result<usize, EmitError>`. Parsing never panics on any input;
//! emitting never panics either (a short buffer is an [`EmitError`]). Attribute headers are read with
//! netlink-packet-core's `NlaBuffer` after this module has checked their lengths.
//!
//! ## Unknown attributes
//!
//! Every nest the codec models ([`Service`], [`Destination`], [`Stats`], [`Daemon`], and the top-level
//! attributes of [`Timeouts`] and [`Info`]) has an `unknown` list. An attribute whose type the codec does
//! not know (a newer kernel's) is kept there as a [`RawAttr`], type flags and payload as received, and
//! written back at the end of the same nest when the value is emitted. So a service or destination read
//! from a newer kernel, changed and written back with `edit_service`/`edit_destination` keeps what this
//! crate does not understand (the kernel parses IPVS requests liberally: an older kernel ignores types
//! above its maximum, a newer one honours them).

mod ipvs;
mod op;

pub use ipvs::{
    Daemon, DaemonState, Destination, Family, FwdMethod, Info, Protocol, Reply, Scheduler, Service,
    ServiceFlags, ServiceKey, Stats, Timeouts, TunnelFlags, TunnelType, attr,
};
pub(crate) use ipvs::{Decoded, IPVS_GENL_NAME, IPVS_GENL_VERSION, cmd, decode_datagram};
pub use op::Op;

use crate::error::{DecodeError, EmitError};
use netlink_packet_core::{NLA_F_NESTED, NLA_F_NET_BYTEORDER, NLA_TYPE_MASK, NlaBuffer};

/// `NLMSG_ERROR`.
pub(crate) const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`.
pub(crate) const NLMSG_DONE: u16 = 3;
/// `GENL_ID_CTRL`, the generic-netlink controller.
pub(crate) const GENL_ID_CTRL: u16 = 0x10;
/// `CTRL_CMD_GETFAMILY`.
pub(crate) const CTRL_CMD_GETFAMILY: u8 = 3;
/// `CTRL_ATTR_FAMILY_ID`.
pub(crate) const CTRL_ATTR_FAMILY_ID: u16 = 1;
/// `CTRL_ATTR_FAMILY_NAME`.
pub(crate) const CTRL_ATTR_FAMILY_NAME: u16 = 2;

/// `NLM_F_REQUEST`.
pub(crate) const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_ACK`.
pub(crate) const NLM_F_ACK: u16 = 0x4;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
pub(crate) const NLM_F_DUMP: u16 = 0x300;

/// Size of `struct nlmsghdr`.
pub(crate) const NLMSG_HDRLEN: usize = 16;
/// Size of `struct genlmsghdr`.
pub(crate) const GENL_HDRLEN: usize = 4;
/// Size of `struct nlattr`.
const NLA_HDRLEN: usize = 4;

/// Rounds up to the 4-byte netlink alignment.
pub(crate) const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// `struct nlmsghdr`: the 16-byte header of every netlink message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct NlHeader {
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
        let b: &[u8; NLMSG_HDRLEN] = buf
            .get(..NLMSG_HDRLEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(DecodeError::Truncated {
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

    /// The 16 header bytes.
    pub fn to_bytes(self) -> [u8; NLMSG_HDRLEN] {
        let mut out = [0u8; NLMSG_HDRLEN];
        out[0..4].copy_from_slice(&self.len.to_ne_bytes());
        out[4..6].copy_from_slice(&self.kind.to_ne_bytes());
        out[6..8].copy_from_slice(&self.flags.to_ne_bytes());
        out[8..12].copy_from_slice(&self.seq.to_ne_bytes());
        out[12..16].copy_from_slice(&self.pid.to_ne_bytes());
        out
    }
}

/// `struct genlmsghdr`: command, version, 2 reserved bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct GenlHeader {
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
                offset: 0,
                expected: GENL_HDRLEN,
                actual: buf.len(),
            }),
        }
    }

    /// The 4 header bytes (reserved bytes zero).
    pub fn to_bytes(self) -> [u8; GENL_HDRLEN] {
        [self.cmd, self.version, 0, 0]
    }
}

/// One netlink message inside a receive buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawMessage<'a> {
    /// Its header.
    pub header: NlHeader,
    /// The bytes after the 16-byte header, up to `header.len`.
    pub payload: &'a [u8],
}

/// Iterates over the netlink messages of one datagram; stops after the first framing error.
#[derive(Debug, Clone)]
pub(crate) struct Messages<'a> {
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
        let Some(payload) = rest.get(NLMSG_HDRLEN..len) else {
            let err = DecodeError::BadLength {
                what: "nlmsghdr",
                offset: self.pos,
                length: len,
                available: rest.len(),
            };
            self.pos = self.buf.len();
            return Some(Err(err));
        };
        self.pos += align4(len).min(rest.len());
        Some(Ok(RawMessage { header, payload }))
    }
}

/// Reads the `errno` of an `NLMSG_ERROR` payload (0 for an ACK; positive otherwise).
pub(crate) fn parse_error_payload(payload: &[u8]) -> Result<i32, DecodeError> {
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

/// An attribute the codec does not model, kept as received and written back unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawAttr {
    /// The attribute type as received, flag bits (`NLA_F_NESTED`, `NLA_F_NET_BYTEORDER`) included.
    pub kind: u16,
    /// The payload, without header or padding.
    pub value: Vec<u8>,
}

impl RawAttr {
    /// An attribute of type `kind` (flags included) holding `value`.
    pub fn new(kind: u16, value: impl Into<Vec<u8>>) -> Self {
        RawAttr {
            kind,
            value: value.into(),
        }
    }

    /// The attribute number, flag bits removed.
    pub fn number(&self) -> u16 {
        self.kind & NLA_TYPE_MASK
    }

    /// Parses one attribute (header and payload; trailing padding allowed, anything more is an error).
    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut it = Attrs::new(buf, 0);
        let a = match it.next() {
            Some(a) => a?,
            None => {
                return Err(DecodeError::Truncated {
                    what: "nlattr",
                    offset: 0,
                    expected: NLA_HDRLEN,
                    actual: 0,
                });
            }
        };
        if it.pos < buf.len() {
            return Err(DecodeError::BadLength {
                what: "nlattr",
                offset: 0,
                length: usize::from(a.len),
                available: buf.len(),
            });
        }
        Ok(a.raw())
    }

    /// Header, payload and padding.
    pub fn buffer_len(&self) -> usize {
        align4(NLA_HDRLEN + self.value.len())
    }

    /// Writes header, payload and padding; returns the bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let mut w = Writer::slice(buf);
        w.put("unknown attribute", self.kind, &self.value)
            .map_err(|e| w.fix("RawAttr", e, self.buffer_len()))?;
        Ok(w.len())
    }
}

/// A view of one attribute inside a buffer being parsed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attr<'a> {
    /// Attribute number, flags removed.
    pub kind: u16,
    /// Attribute type as received, flags included.
    pub raw_kind: u16,
    /// Payload bytes.
    pub value: &'a [u8],
    /// Offset of the attribute header in the parser's buffer.
    pub offset: usize,
    /// The length field.
    pub len: u16,
}

/// Iterates over the attributes in `buf` (the payload of a message or a nested attribute); stops after
/// the first framing error. `base` is the offset of `buf` in the parser's buffer, for error reports.
#[derive(Debug, Clone)]
pub(crate) struct Attrs<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Attrs<'a> {
    pub fn new(buf: &'a [u8], base: usize) -> Self {
        Attrs { buf, pos: 0, base }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.buf.get(self.pos..)?;
        if rest.is_empty() {
            return None;
        }
        let offset = self.base + self.pos;
        let fail = |e| {
            // Stop here: the rest cannot be framed.
            Some(Err(e))
        };
        if rest.len() < NLA_HDRLEN {
            self.pos = self.buf.len();
            return fail(DecodeError::Truncated {
                what: "nlattr",
                offset,
                expected: NLA_HDRLEN,
                actual: rest.len(),
            });
        }
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        if len < NLA_HDRLEN || len > rest.len() {
            self.pos = self.buf.len();
            return fail(DecodeError::BadLength {
                what: "nlattr",
                offset,
                length: len,
                available: rest.len(),
            });
        }
        // Lengths checked above, so NlaBuffer's accessors cannot index out of bounds.
        let nla = NlaBuffer::new(&rest[..len]);
        let mut raw_kind = nla.kind();
        if nla.nested_flag() {
            raw_kind |= NLA_F_NESTED;
        }
        if nla.network_byte_order_flag() {
            raw_kind |= NLA_F_NET_BYTEORDER;
        }
        let value = &rest[NLA_HDRLEN..len];
        self.pos += align4(len).min(rest.len());
        Some(Ok(Attr {
            kind: raw_kind & NLA_TYPE_MASK,
            raw_kind,
            value,
            offset,
            len: len as u16,
        }))
    }
}

/// Iterates over the attributes of `buf`, which starts at offset 0 of the parser's buffer.
pub(crate) fn attrs(buf: &[u8]) -> Attrs<'_> {
    Attrs::new(buf, 0)
}

impl<'a> Attr<'a> {
    /// The offset of this attribute's payload, for the attributes nested inside it.
    pub fn value_offset(&self) -> usize {
        self.offset + NLA_HDRLEN
    }

    /// The attribute kept raw.
    pub fn raw(&self) -> RawAttr {
        RawAttr::new(self.raw_kind, self.value)
    }

    fn size_error(&self, what: &'static str, expected: usize) -> DecodeError {
        DecodeError::AttrSize {
            what,
            offset: self.offset,
            expected,
            actual: self.value.len(),
        }
    }

    /// The payload, which must be exactly `N` bytes.
    pub fn exact<const N: usize>(&self, what: &'static str) -> Result<[u8; N], DecodeError> {
        <[u8; N]>::try_from(self.value).map_err(|_| self.size_error(what, N))
    }

    /// The first `N` bytes of the payload (addresses come in a 16-byte union whatever their family).
    pub fn prefix<const N: usize>(&self, what: &'static str) -> Result<[u8; N], DecodeError> {
        self.value
            .get(..N)
            .and_then(|s| <[u8; N]>::try_from(s).ok())
            .ok_or_else(|| self.size_error(what, N))
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
            8 => Ok(u64::from_ne_bytes(self.exact(what)?)),
            4 => Ok(u64::from(self.u32(what)?)),
            _ => Err(self.size_error(what, 4)),
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

/// Where a [`Writer`] puts its bytes.
#[derive(Debug)]
enum Out<'a> {
    /// Only counts (for `buffer_len`).
    Count(usize),
    /// A caller's buffer, filled from the start.
    Slice(&'a mut [u8], usize),
    /// Appends to a vector (requests).
    Vec(&'a mut Vec<u8>),
}

/// Writes attributes. One code path serves `buffer_len` (counting), `emit` (into a slice) and request
/// building (into a vector). Padding is relative to where the writer started.
#[derive(Debug)]
pub(crate) struct Writer<'a> {
    out: Out<'a>,
    origin: usize,
}

/// The one error a [`Writer`] returns before [`Writer::fix`] names it: out of room.
const SHORT: EmitError = EmitError::BufferTooShort {
    what: "",
    needed: 0,
    actual: 0,
};

impl<'a> Writer<'a> {
    /// A writer that only counts.
    pub fn count() -> Writer<'static> {
        Writer {
            out: Out::Count(0),
            origin: 0,
        }
    }

    /// A writer into `buf` from its start.
    pub fn slice(buf: &'a mut [u8]) -> Self {
        Writer {
            out: Out::Slice(buf, 0),
            origin: 0,
        }
    }

    /// A writer appending to `buf`.
    pub fn vec(buf: &'a mut Vec<u8>) -> Self {
        let origin = buf.len();
        Writer {
            out: Out::Vec(buf),
            origin,
        }
    }

    fn pos(&self) -> usize {
        match &self.out {
            Out::Count(n) => *n,
            Out::Slice(_, n) => *n,
            Out::Vec(v) => v.len(),
        }
    }

    /// Bytes written (or counted) since the writer started.
    pub fn len(&self) -> usize {
        self.pos() - self.origin
    }

    /// Names an error: an out-of-room error becomes `BufferTooShort` for `what` with `needed` bytes.
    pub fn fix(&self, what: &'static str, e: EmitError, needed: usize) -> EmitError {
        match (&e, &self.out) {
            (EmitError::BufferTooShort { .. }, Out::Slice(b, _)) => EmitError::BufferTooShort {
                what,
                needed,
                actual: b.len(),
            },
            _ => e,
        }
    }

    fn bytes(&mut self, b: &[u8]) -> Result<(), EmitError> {
        match &mut self.out {
            Out::Count(n) => *n += b.len(),
            Out::Slice(buf, n) => {
                let dst = buf.get_mut(*n..*n + b.len()).ok_or(SHORT)?;
                dst.copy_from_slice(b);
                *n += b.len();
            }
            Out::Vec(v) => v.extend_from_slice(b),
        }
        Ok(())
    }

    fn pad(&mut self) -> Result<(), EmitError> {
        let n = self.len();
        self.bytes(&[0u8; 3][..align4(n) - n])
    }

    /// Overwrites two bytes at absolute position `at` (a nest's length).
    fn patch(&mut self, at: usize, v: [u8; 2]) -> Result<(), EmitError> {
        match &mut self.out {
            Out::Count(_) => {}
            Out::Slice(buf, _) => buf.get_mut(at..at + 2).ok_or(SHORT)?.copy_from_slice(&v),
            Out::Vec(buf) => buf.get_mut(at..at + 2).ok_or(SHORT)?.copy_from_slice(&v),
        }
        Ok(())
    }

    /// Writes raw bytes that are not an attribute (a message or genetlink header).
    pub fn header(&mut self, b: &[u8]) -> Result<(), EmitError> {
        self.bytes(b)
    }

    /// One attribute with `value` as payload (padded to 4 bytes).
    pub fn put(&mut self, what: &'static str, kind: u16, value: &[u8]) -> Result<(), EmitError> {
        let len = NLA_HDRLEN + value.len();
        let len16 = u16::try_from(len).map_err(|_| EmitError::TooLong { what, length: len })?;
        self.bytes(&len16.to_ne_bytes())?;
        self.bytes(&kind.to_ne_bytes())?;
        self.bytes(value)?;
        self.pad()
    }

    /// A `u8`.
    pub fn u8(&mut self, what: &'static str, kind: u16, v: u8) -> Result<(), EmitError> {
        self.put(what, kind, &[v])
    }
    /// A native `u16`.
    pub fn u16(&mut self, what: &'static str, kind: u16, v: u16) -> Result<(), EmitError> {
        self.put(what, kind, &v.to_ne_bytes())
    }
    /// A big-endian `u16`.
    pub fn be16(&mut self, what: &'static str, kind: u16, v: u16) -> Result<(), EmitError> {
        self.put(what, kind, &v.to_be_bytes())
    }
    /// A native `u32`.
    pub fn u32(&mut self, what: &'static str, kind: u16, v: u32) -> Result<(), EmitError> {
        self.put(what, kind, &v.to_ne_bytes())
    }
    /// A NUL-terminated string; a NUL inside is an error (the kernel would read a shorter string).
    pub fn string(&mut self, what: &'static str, kind: u16, s: &str) -> Result<(), EmitError> {
        if s.as_bytes().contains(&0) {
            return Err(EmitError::Invalid {
                what,
                reason: "contains a NUL byte",
            });
        }
        let len = NLA_HDRLEN + s.len() + 1;
        let len16 = u16::try_from(len).map_err(|_| EmitError::TooLong { what, length: len })?;
        self.bytes(&len16.to_ne_bytes())?;
        self.bytes(&kind.to_ne_bytes())?;
        self.bytes(s.as_bytes())?;
        self.bytes(&[0])?;
        self.pad()
    }

    /// Writes the raw attributes kept from a parse.
    pub fn raws(&mut self, list: &[RawAttr]) -> Result<(), EmitError> {
        for a in list {
            self.put("unknown attribute", a.kind, &a.value)?;
        }
        Ok(())
    }

    /// A nested attribute `kind` whose content `f` writes; its length is patched afterwards.
    pub fn nest(
        &mut self,
        what: &'static str,
        kind: u16,
        f: impl FnOnce(&mut Self) -> Result<(), EmitError>,
    ) -> Result<(), EmitError> {
        let start = self.pos();
        self.bytes(&[0, 0])?;
        self.bytes(&(kind | NLA_F_NESTED).to_ne_bytes())?;
        f(self)?;
        self.end(what, start)
    }

    /// Closes a nested attribute opened at `start`.
    fn end(&mut self, what: &'static str, start: usize) -> Result<(), EmitError> {
        let len = self.pos() - start;
        if matches!(self.out, Out::Count(_)) {
            return Ok(());
        }
        let len16 = u16::try_from(len).map_err(|_| EmitError::TooLong { what, length: len })?;
        self.patch(start, len16.to_ne_bytes())
    }
}

/// Appends one complete genetlink request: nlmsghdr + genlmsghdr + attributes written by `body`.
pub(crate) fn build_request(
    out: &mut Vec<u8>,
    family: u16,
    flags: u16,
    seq: u32,
    genl: GenlHeader,
    body: impl FnOnce(&mut Writer<'_>) -> Result<(), EmitError>,
) -> Result<(), EmitError> {
    let start = out.len();
    let mut w = Writer::vec(out);
    w.header(&[0; NLMSG_HDRLEN])?;
    w.header(&genl.to_bytes())?;
    let r = body(&mut w);
    if let Err(e) = r {
        out.truncate(start);
        return Err(e);
    }
    let len = out.len() - start;
    let header = NlHeader {
        len: len as u32,
        kind: family,
        flags,
        seq,
        pid: 0,
    };
    out[start..start + NLMSG_HDRLEN].copy_from_slice(&header.to_bytes());
    Ok(())
}

/// The family id in a `CTRL_CMD_NEWFAMILY` reply's attributes.
pub(crate) fn parse_family_id(genl_payload: &[u8]) -> Result<u16, DecodeError> {
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
