//! The conntrackd sync wire format (no I/O).
//!
//! Facts come from conntrack-tools 1.4.7: `include/network.h` (header, flags, attribute numbers),
//! `src/build.c` (what is sent and in which order), `src/parse.c` (how attributes are checked) and
//! `src/sync-mode.c` (how a datagram is split into messages).
//!
//! A datagram carries one or more [`Message`]s back to back. Each starts with an 8-byte header
//! (`version << 4 | type`, flags, big-endian length and sequence number); control messages that carry a
//! sequence range (ACK, NACK, RESYNC) use a 16-byte header that adds `from` and `to`. Conntrack and
//! expectation messages carry TLV attributes (`u16 len`, `u16 type`, big-endian, each padded to 4 bytes).

mod attr;
mod ct;
mod exp;

pub use attr::{AddrPair, HelperName, Labels, NatSeqAdj, PortPair, Synproxy};
pub use ct::{CtEntry, nta};
pub use exp::{ExpEntry, ExpFn, nta_exp};

/// The protocol version conntrackd writes in the high nibble of the first byte (`CONNTRACKD_PROTOCOL_VERSION`).
pub const VERSION: u8 = 1;
/// Size of the plain message header (`NETHDR_SIZ`).
pub const HEADER_LEN: usize = 8;
/// Size of the control header with a sequence range (`NETHDR_ACK_SIZ`).
pub const CTL_HEADER_LEN: usize = 16;
/// Largest message conntrackd builds (`BUILD_NETMSG_FROM_CT` uses a 4096-byte buffer).
pub const MAX_MESSAGE_LEN: usize = 4096;

/// Rounds up to the 4-byte alignment of headers and attributes (`NTA_ALIGN`, `nethdr_align`).
pub(crate) const fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// A structured decoding error. Offsets are in bytes from the start of the buffer given to the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than a header needs (conntrackd: `msg_rcv_truncated`).
    #[error("truncated header at offset {offset}: need {expected} bytes, have {actual}")]
    Truncated {
        /// Where the header starts.
        offset: usize,
        /// Bytes the header needs.
        expected: usize,
        /// Bytes available.
        actual: usize,
    },
    /// The header's length field is shorter than its header or longer than the data (`msg_rcv_bad_size`).
    #[error("bad message length {len} at offset {offset} (minimum {min}, available {available})")]
    BadLength {
        /// Where the message starts.
        offset: usize,
        /// The length field.
        len: usize,
        /// The smallest valid length for this header.
        min: usize,
        /// Bytes available from `offset`.
        available: usize,
    },
    /// The version nibble is not 1 (`msg_rcv_bad_version`); conntrackd skips such a message.
    #[error("unsupported version {version} at offset {offset}")]
    BadVersion {
        /// Where the message starts.
        offset: usize,
        /// The version found.
        version: u8,
    },
    /// A message type conntrackd does not know (`msg_rcv_bad_type`).
    #[error("unknown message type {msg_type} at offset {offset}")]
    UnknownType {
        /// Where the message starts.
        offset: usize,
        /// The type nibble.
        msg_type: u8,
    },
    /// An attribute's length runs past the end of its message.
    #[error("attribute {attr} at offset {offset} has length {len}, only {remaining} bytes remain")]
    AttrOverrun {
        /// Where the attribute starts.
        offset: usize,
        /// Its type.
        attr: u16,
        /// Its length field.
        len: usize,
        /// Bytes left in the message.
        remaining: usize,
    },
    /// An attribute's length is below the 4-byte attribute header.
    #[error("attribute {attr} at offset {offset} has length {len} < 4")]
    AttrTooShort {
        /// Where the attribute starts.
        offset: usize,
        /// Its type.
        attr: u16,
        /// Its length field.
        len: usize,
    },
    /// An attribute number at or above `NTA_MAX` (strict mode only; lenient mode skips and counts it).
    #[error("unknown attribute {attr} at offset {offset}")]
    UnknownAttr {
        /// Where the attribute starts.
        offset: usize,
        /// Its type.
        attr: u16,
    },
    /// A fixed-size attribute with the wrong length (length includes the 4-byte attribute header).
    #[error("attribute {attr} at offset {offset}: length {actual}, expected {expected}")]
    AttrSize {
        /// Where the attribute starts.
        offset: usize,
        /// Its type.
        attr: u16,
        /// Length conntrackd requires.
        expected: usize,
        /// Length found.
        actual: usize,
    },
    /// A variable-size attribute longer than conntrackd's limit (or than this crate stores, for labels).
    #[error("attribute {attr} at offset {offset}: length {actual} exceeds {max}")]
    AttrTooLong {
        /// Where the attribute starts.
        offset: usize,
        /// Its type.
        attr: u16,
        /// The limit, header included.
        max: usize,
        /// Length found.
        actual: usize,
    },
    /// Bytes after the message that `Message::parse` was given (use [`messages`] for datagrams).
    #[error("{count} trailing bytes at offset {offset}")]
    TrailingBytes {
        /// Where they start.
        offset: usize,
        /// How many.
        count: usize,
    },
}

impl DecodeError {
    /// True for errors inside a well-delimited message's attributes. conntrackd has already run the
    /// sequence tracking on such a message when `msg2ct`/`msg2exp` rejects it, so sessions still account
    /// for its sequence number (see [`Header`]).
    pub fn is_payload_error(&self) -> bool {
        matches!(
            self,
            DecodeError::AttrOverrun { .. }
                | DecodeError::AttrTooShort { .. }
                | DecodeError::UnknownAttr { .. }
                | DecodeError::AttrSize { .. }
                | DecodeError::AttrTooLong { .. }
        )
    }
}

/// The fixed 8-byte part of every message, readable even when the payload is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Version nibble.
    pub version: u8,
    /// Type nibble ([`msg_type`]).
    pub msg_type: u8,
    /// Flags.
    pub flags: Flags,
    /// Length field.
    pub len: u16,
    /// Sequence number.
    pub seq: u32,
}

impl Header {
    /// Reads the header at the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        if buf.len() < HEADER_LEN {
            return Err(DecodeError::Truncated {
                offset: 0,
                expected: HEADER_LEN,
                actual: buf.len(),
            });
        }
        Ok(Header {
            version: buf[0] >> 4,
            msg_type: buf[0] & 0x0f,
            flags: Flags::from_bits_retain(buf[1]),
            len: be16(buf, 2),
            seq: be32(buf, 4),
        })
    }
}

/// Why a value could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The output buffer is smaller than [`Message::buffer_len`].
    #[error("buffer too small: need {needed} bytes, have {available}")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        available: usize,
    },
    /// The message is longer than its 16-bit length field can say.
    #[error("message of {len} bytes exceeds the 65535-byte length field")]
    TooLong {
        /// The encoded length.
        len: usize,
    },
}

/// How strictly attributes are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Mode {
    /// Exactly conntrackd's checks: an attribute number at or above `NTA_MAX` rejects the message.
    #[default]
    Strict,
    /// Like [`Mode::Strict`], but unknown attribute numbers are skipped and counted (for newer peers).
    Lenient,
}

/// What a parse skipped (only in [`Mode::Lenient`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Skipped {
    /// Unknown attributes skipped.
    pub unknown_attrs: u32,
}

bitflags::bitflags! {
    /// Message flags (`NET_F_*`). Unknown bits are kept so they survive a round trip.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Flags: u8 {
        /// `NET_F_RESYNC`: ask the peer for a full dump.
        const RESYNC = 1 << 1;
        /// `NET_F_NACK`: ask the peer to resend `from..=to`.
        const NACK = 1 << 2;
        /// `NET_F_ACK`: `from..=to` arrived.
        const ACK = 1 << 3;
        /// `NET_F_ALIVE`: keep-alive.
        const ALIVE = 1 << 4;
        /// `NET_F_HELLO`: the sender (re)started its sequence tracking.
        const HELLO = 1 << 5;
        /// `NET_F_HELLO_BACK`: answer to a HELLO.
        const HELLO_BACK = 1 << 6;
        // Bits 0 and 7 have no name in conntrackd; they are kept as they are.
        const _ = !0;
    }
}

impl Flags {
    /// No flags.
    pub const NONE: Flags = Flags::empty();

    /// The flags that make a control message carry `from`/`to` (conntrackd's `IS_ACK || IS_NACK || IS_RESYNC`).
    pub const fn has_range(self) -> bool {
        self.intersects(Self::ACK.union(Self::NACK).union(Self::RESYNC))
    }
    /// Names of the known bits, in the order of the issue: resync, nack, ack, alive, hello, hello_back.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        [
            (Self::RESYNC, "resync"),
            (Self::NACK, "nack"),
            (Self::ACK, "ack"),
            (Self::ALIVE, "alive"),
            (Self::HELLO, "hello"),
            (Self::HELLO_BACK, "hello_back"),
        ]
        .into_iter()
        .filter(move |(f, _)| self.contains(*f))
        .map(|(_, n)| n)
    }
}

/// What happened to an object (the state part of `NET_T_STATE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// `*_NEW`.
    New,
    /// `*_UPD`.
    Update,
    /// `*_DEL`.
    Delete,
}

impl Change {
    pub(crate) const fn offset(self) -> u8 {
        match self {
            Change::New => 0,
            Change::Update => 1,
            Change::Delete => 2,
        }
    }
}

/// Message type numbers (`enum nethdr_type`).
pub mod msg_type {
    /// `NET_T_STATE_CT_NEW`.
    pub const CT_NEW: u8 = 0;
    /// `NET_T_STATE_CT_UPD`.
    pub const CT_UPD: u8 = 1;
    /// `NET_T_STATE_CT_DEL`.
    pub const CT_DEL: u8 = 2;
    /// `NET_T_STATE_EXP_NEW`.
    pub const EXP_NEW: u8 = 3;
    /// `NET_T_STATE_EXP_UPD`.
    pub const EXP_UPD: u8 = 4;
    /// `NET_T_STATE_EXP_DEL`.
    pub const EXP_DEL: u8 = 5;
    /// `NET_T_CTL`.
    pub const CTL: u8 = 10;
}

/// The payload of a message, which also decides its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// A conntrack entry (types 0-2).
    Ct(Change, CtEntry),
    /// An expectation (types 3-5).
    Exp(Change, ExpEntry),
    /// A control message (type 10). `from`/`to` are on the wire only when the flags include ACK, NACK or
    /// RESYNC ([`Flags::has_range`]); otherwise they are not emitted and parse as 0.
    Ctl {
        /// First sequence number of the range.
        from: u32,
        /// Last sequence number of the range.
        to: u32,
    },
}

/// One sync message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Flags byte.
    pub flags: Flags,
    /// Sequence number.
    pub seq: u32,
    /// Type and payload.
    pub body: Body,
}

fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(s) => u16::from_be_bytes([s[0], s[1]]),
        None => 0,
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(s) => u32::from_be_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

impl Message {
    /// The message type number written on the wire.
    pub fn msg_type(&self) -> u8 {
        match &self.body {
            Body::Ct(c, _) => msg_type::CT_NEW + c.offset(),
            Body::Exp(c, _) => msg_type::EXP_NEW + c.offset(),
            Body::Ctl { .. } => msg_type::CTL,
        }
    }

    /// Header size of this message: 16 for a control message with a range, else 8.
    pub fn header_len(&self) -> usize {
        match self.body {
            Body::Ctl { .. } if self.flags.has_range() => CTL_HEADER_LEN,
            _ => HEADER_LEN,
        }
    }

    /// Encoded length (the header's length field).
    pub fn buffer_len(&self) -> usize {
        self.header_len()
            + match &self.body {
                Body::Ct(_, e) => e.attrs_len(),
                Body::Exp(_, e) => e.attrs_len(),
                Body::Ctl { .. } => 0,
            }
    }

    /// Writes the message at the start of `buf` and returns its length (the bytes written).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let len = self.buffer_len();
        let wire_len = u16::try_from(len).map_err(|_| EmitError::TooLong { len })?;
        let available = buf.len();
        let out = buf.get_mut(..len).ok_or(EmitError::BufferTooSmall {
            needed: len,
            available,
        })?;
        out[0] = (VERSION << 4) | (self.msg_type() & 0x0f);
        out[1] = self.flags.bits();
        out[2..4].copy_from_slice(&wire_len.to_be_bytes());
        out[4..8].copy_from_slice(&self.seq.to_be_bytes());
        let hl = self.header_len();
        match &self.body {
            Body::Ct(_, e) => e.emit_attrs(&mut out[hl..]),
            Body::Exp(_, e) => e.emit_attrs(&mut out[hl..]),
            Body::Ctl { from, to } => {
                if hl == CTL_HEADER_LEN {
                    out[8..12].copy_from_slice(&from.to_be_bytes());
                    out[12..16].copy_from_slice(&to.to_be_bytes());
                }
            }
        }
        Ok(len)
    }

    /// Parses exactly one message filling `buf` (strict mode).
    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        let (m, used) = Self::parse_prefix(buf, 0, Mode::Strict, &mut Skipped::default())?;
        if used != buf.len() {
            return Err(DecodeError::TrailingBytes {
                offset: used,
                count: buf.len() - used,
            });
        }
        Ok(m)
    }

    /// Parses the message starting at `buf[offset..]`; returns it and its length (the header's length
    /// field), following conntrackd's checks in `channel_handler_routine` and `msg2ct`/`msg2exp`.
    #[inline]
    pub fn parse_prefix(
        buf: &[u8],
        offset: usize,
        mode: Mode,
        skipped: &mut Skipped,
    ) -> Result<(Self, usize), DecodeError> {
        let Some(rest) = buf.get(offset..) else {
            return Err(DecodeError::Truncated {
                offset,
                expected: HEADER_LEN,
                actual: 0,
            });
        };
        if rest.len() < HEADER_LEN {
            return Err(DecodeError::Truncated {
                offset,
                expected: HEADER_LEN,
                actual: rest.len(),
            });
        }
        let version = rest[0] >> 4;
        let ty = rest[0] & 0x0f;
        let flags = Flags::from_bits_retain(rest[1]);
        let len = usize::from(be16(rest, 2));
        let seq = be32(rest, 4);
        if len == 0 || len > rest.len() {
            return Err(DecodeError::BadLength {
                offset,
                len,
                min: HEADER_LEN,
                available: rest.len(),
            });
        }
        let ranged = ty == msg_type::CTL && flags.has_range();
        let min = if ranged { CTL_HEADER_LEN } else { HEADER_LEN };
        if ranged && rest.len() < CTL_HEADER_LEN {
            return Err(DecodeError::Truncated {
                offset,
                expected: CTL_HEADER_LEN,
                actual: rest.len(),
            });
        }
        if len < min {
            return Err(DecodeError::BadLength {
                offset,
                len,
                min,
                available: rest.len(),
            });
        }
        if version != VERSION {
            return Err(DecodeError::BadVersion { offset, version });
        }
        let msg = &rest[..len];
        let change = |base: u8| match ty - base {
            0 => Change::New,
            1 => Change::Update,
            _ => Change::Delete,
        };
        let body = match ty {
            msg_type::CT_NEW..=msg_type::CT_DEL => Body::Ct(
                change(msg_type::CT_NEW),
                CtEntry::parse_attrs(msg, offset, mode, skipped)?,
            ),
            msg_type::EXP_NEW..=msg_type::EXP_DEL => Body::Exp(
                change(msg_type::EXP_NEW),
                ExpEntry::parse_attrs(msg, offset, mode, skipped)?,
            ),
            msg_type::CTL => {
                if ranged {
                    Body::Ctl {
                        from: be32(msg, 8),
                        to: be32(msg, 12),
                    }
                } else {
                    Body::Ctl { from: 0, to: 0 }
                }
            }
            _ => {
                return Err(DecodeError::UnknownType {
                    offset,
                    msg_type: ty,
                });
            }
        };
        Ok((Message { flags, seq, body }, len))
    }
}

/// Splits a datagram into messages the way conntrackd's receive loop does.
///
/// Each item is one message or the error that message raised. After a header error (truncated, bad length)
/// the rest of the datagram cannot be delimited, so iteration stops, as in conntrackd; after an error inside
/// a well-delimited message (version, type, attributes) it goes on with the next message.
pub fn messages(datagram: &[u8], mode: Mode) -> Messages<'_> {
    Messages {
        buf: datagram,
        off: 0,
        mode,
        done: false,
        skipped: Skipped::default(),
        err_off: 0,
        last: None,
    }
}

/// Iterator returned by [`messages`].
#[derive(Debug)]
pub struct Messages<'a> {
    buf: &'a [u8],
    off: usize,
    mode: Mode,
    done: bool,
    /// What lenient parsing skipped so far.
    pub skipped: Skipped,
    err_off: usize,
    /// The attribute bytes of the last message returned, when nothing in them was skipped.
    last: Option<(usize, usize)>,
}

impl<'a> Messages<'a> {
    /// The header of the message that raised the last error, when it can be read.
    pub fn last_error_header(&self) -> Option<Header> {
        Header::parse(self.buf.get(self.err_off..)?).ok()
    }

    /// The attributes of the last conntrack or expectation message returned, as received, when they
    /// decode strictly to what it carries (nothing skipped): a cache can keep them as they are.
    pub(crate) fn last_attrs(&self) -> Option<&'a [u8]> {
        let (from, to) = self.last?;
        self.buf.get(from..to)
    }
}

impl Iterator for Messages<'_> {
    type Item = Result<Message, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.off >= self.buf.len() {
            return None;
        }
        let off = self.off;
        let skipped = self.skipped.unknown_attrs;
        self.last = None;
        match Message::parse_prefix(self.buf, off, self.mode, &mut self.skipped) {
            Ok((m, len)) => {
                self.off += len;
                if matches!(m.body, Body::Ct(..) | Body::Exp(..))
                    && self.skipped.unknown_attrs == skipped
                {
                    self.last = Some((off + HEADER_LEN, off + len));
                }
                Some(Ok(m))
            }
            Err(e) => {
                self.err_off = off;
                // A delimited message can be skipped; a broken header ends the datagram.
                let len = usize::from(be16(self.buf, off + 2));
                match e {
                    DecodeError::Truncated { .. } | DecodeError::BadLength { .. } => {
                        self.done = true
                    }
                    _ if len >= HEADER_LEN && off + len <= self.buf.len() => self.off += len,
                    _ => self.done = true,
                }
                Some(Err(e))
            }
        }
    }
}

/// The largest datagram conntrackd sends on an interface of MTU `if_mtu`.
///
/// Its buffered channel (`channel.c`) keeps a buffer of `if_mtu - 28` bytes (`headersiz`: IPv4 + UDP
/// headers) and appends a message only while `len + msg_len < size`, strictly, so a datagram holds at
/// most `if_mtu - 29` bytes. A [`Packer`] over a buffer of this length packs the same messages into the
/// same datagrams as conntrackd; the sessions' default `mtu` is `conntrackd_datagram_limit(1500)`.
pub const fn conntrackd_datagram_limit(if_mtu: usize) -> usize {
    if_mtu.saturating_sub(29)
}

/// Packs messages into datagrams of at most `buf.len()` bytes (conntrackd's buffered channel): messages
/// are appended in order while they fit, and the first that does not fit starts the next datagram. For
/// conntrackd's exact boundaries, size the buffer with [`conntrackd_datagram_limit`].
#[derive(Debug)]
pub struct Packer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Packer<'a> {
    /// Packs into `buf` (its length is the datagram limit).
    pub fn new(buf: &'a mut [u8]) -> Self {
        Packer { buf, len: 0 }
    }

    /// Appends `msg` if it fits; returns false (and writes nothing) if it does not.
    pub fn push(&mut self, msg: &Message) -> bool {
        match self.buf.get_mut(self.len..) {
            Some(rest) => match msg.emit(rest) {
                Ok(n) => {
                    self.len += n;
                    true
                }
                Err(_) => false,
            },
            None => false,
        }
    }

    /// Appends a conntrack or expectation message of type `ty` whose attributes are already encoded
    /// (a cache keeps them so); returns false (and writes nothing) if it does not fit.
    pub(crate) fn push_encoded(&mut self, ty: u8, flags: Flags, seq: u32, attrs: &[u8]) -> bool {
        let len = HEADER_LEN + attrs.len();
        let (Ok(wire_len), Some(out)) = (
            u16::try_from(len),
            self.buf.get_mut(self.len..self.len + len),
        ) else {
            return false;
        };
        out[0] = (VERSION << 4) | (ty & 0x0f);
        out[1] = flags.bits();
        out[2..4].copy_from_slice(&wire_len.to_be_bytes());
        out[4..8].copy_from_slice(&seq.to_be_bytes());
        out[HEADER_LEN..].copy_from_slice(attrs);
        self.len += len;
        true
    }

    /// Bytes used so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing was packed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
