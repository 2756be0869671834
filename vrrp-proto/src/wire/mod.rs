//! VRRP message codecs: VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798, RFC 9568), no I/O.
//!
//! Two layers, in the smoltcp manner:
//!
//! * [`Packet`] is a checked, zero-copy view over received bytes. [`Packet::parse`] runs the
//!   configuration-free receive checks (version, type, length against count, count, checksum) without
//!   allocating, so a router can validate at line rate.
//! * [`Repr`] is the owned, typed value with [`Repr::parse`], [`Repr::buffer_len`] and [`Repr::emit`]. It
//!   stores neither the address count nor the checksum: both are derived on emit and checked on parse.
//!
//! ```text
//! VRRPv2 (RFC 3768 §5.1)                     VRRPv3 (RFC 5798 §5.1, RFC 9568 §5.1)
//!  0      1      2        3                   0      1      2        3
//! |ver|ty| VRID | Prio  | Count |            |ver|ty| VRID | Prio  | Count |
//! | Auth | Adv  |    Checksum   |            |rsv| Max Adver Int |  Checksum  |
//! | IPv4 address (Count of them)|            | IPv4 or IPv6 addresses ...    |
//! | Authentication data (8)     |
//! ```

mod checksum;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use checksum::{Checksum, ChecksumModes, IP_PROTOCOL};

/// The IPv4 multicast group of VRRP (RFC 5798 §5.1.1.2).
pub const MULTICAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 multicast group of VRRP (RFC 5798 §5.1.2.2).
pub const MULTICAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The only TTL / hop limit a VRRP packet may arrive with (RFC 5798 §5.1.1.3, §7.1).
pub const TTL: u8 = 255;
/// Length of the fixed header, both versions.
pub const HEADER_LEN: usize = 8;
/// Length of the VRRPv2 authentication data trailer (RFC 3768 §5.3.10).
pub const AUTH_DATA_LEN: usize = 8;
/// The only message type: ADVERTISEMENT (RFC 3768 §5.3.2, RFC 5798 §5.2.2).
pub const TYPE_ADVERTISEMENT: u8 = 1;

/// A structural decoding failure, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than the fixed header.
    #[error("truncated at offset {offset}: expected {expected} bytes, got {actual}")]
    Truncated {
        /// Offset where more bytes were needed.
        offset: usize,
        /// Bytes needed.
        expected: usize,
        /// Bytes present.
        actual: usize,
    },
    /// The version nibble is neither 2 nor 3 (RFC 5798 §7.1).
    #[error("version at offset {offset}: expected 2 or 3, got {actual}")]
    Version {
        /// Always 0.
        offset: usize,
        /// The version found.
        actual: u8,
    },
    /// The type nibble is not ADVERTISEMENT (RFC 5798 §5.2.2: other types are discarded).
    #[error("type at offset {offset}: expected {expected} (ADVERTISEMENT), got {actual}")]
    Type {
        /// Always 0.
        offset: usize,
        /// 1.
        expected: u8,
        /// The type found.
        actual: u8,
    },
    /// The message length does not match the address count (plus the v2 authentication data), RFC 5798 §7.1.
    #[error("length: count {count} needs {expected} bytes, got {actual}")]
    Length {
        /// The count field (offset 3).
        count: u8,
        /// The length the count implies (for v3 the IPv4 length; IPv6 is accepted too).
        expected: usize,
        /// The length received.
        actual: usize,
    },
    /// A VRRPv3 message with no address (RFC 9568 errata: count 0 is invalid).
    #[error("count at offset {offset}: expected at least 1, got 0")]
    CountZero {
        /// Always 3.
        offset: usize,
    },
    /// VRRPv2 authentication type 2, IP Authentication Header, removed by RFC 3768 §5.3.6.
    #[error(
        "auth type at offset {offset}: type 2 (IP Authentication Header) is not supported (RFC 3768 §5.3.6)"
    )]
    AuthHeader {
        /// Always 4.
        offset: usize,
    },
    /// The checksum field does not match the computed checksum (RFC 5798 §7.1).
    #[error("checksum at offset {offset}: expected {expected:#06x}, got {actual:#06x}")]
    Checksum {
        /// Always 6.
        offset: usize,
        /// The checksum computed in the requested mode.
        expected: u16,
        /// The checksum field.
        actual: u16,
    },
    /// The pseudo-header's two addresses are of different families, or of a family the message is not.
    #[error("address family: the pseudo-header addresses do not match the message's family")]
    Family,
}

/// The address family of a message, inferred from its length and count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 addresses, 4 bytes each.
    Ipv4,
    /// IPv6 addresses, 16 bytes each.
    Ipv6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    /// Bytes per address.
    pub fn addr_len(self) -> usize {
        match self {
            Family::Ipv4 => 4,
            Family::Ipv6 => 16,
        }
    }
}

/// VRRPv2 authentication type (RFC 3768 §5.3.6). Unknown code points survive a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthType {
    /// 0: no authentication.
    None,
    /// 1: simple text password (`auth_type PASS` in keepalived).
    SimpleText,
    /// Any other value except 2 (which is rejected by [`DecodeError::AuthHeader`]).
    Unknown(u8),
}

impl AuthType {
    /// The wire value.
    pub fn to_u8(self) -> u8 {
        match self {
            AuthType::None => 0,
            AuthType::SimpleText => 1,
            AuthType::Unknown(v) => v,
        }
    }

    /// From the wire value (2 maps to `Unknown(2)`; [`Packet::parse`] rejects it before).
    pub fn from_u8(v: u8) -> AuthType {
        match v {
            0 => AuthType::None,
            1 => AuthType::SimpleText,
            v => AuthType::Unknown(v),
        }
    }
}

/// The version-specific part of an advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Body {
    /// VRRPv2 (RFC 3768).
    V2 {
        /// Advertisement interval in seconds (RFC 3768 §5.3.7).
        adver_int: u8,
        /// Authentication type.
        auth_type: AuthType,
        /// The 8 authentication data bytes, as received (the password, zero padded, for `SimpleText`).
        auth_data: [u8; AUTH_DATA_LEN],
    },
    /// VRRPv3 (RFC 5798, RFC 9568).
    V3 {
        /// Maximum advertisement interval in centiseconds, 12 bits (RFC 5798 §5.2.7).
        max_adver_int: u16,
        /// The 4 reserved bits before it, kept so any message round-trips; must be 0 (RFC 5798 §5.2.6).
        reserved: u8,
    },
}

impl Body {
    /// 2 or 3.
    pub fn version(&self) -> u8 {
        match self {
            Body::V2 { .. } => 2,
            Body::V3 { .. } => 3,
        }
    }
}

/// The address list of an advertisement, one family.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Addresses {
    /// IPv4 addresses.
    V4(Vec<Ipv4Addr>),
    /// IPv6 addresses (the first one should be link-local, RFC 5798 §5.2.9).
    V6(Vec<Ipv6Addr>),
}

impl Addresses {
    /// Number of addresses.
    pub fn len(&self) -> usize {
        match self {
            Addresses::V4(v) => v.len(),
            Addresses::V6(v) => v.len(),
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The family.
    pub fn family(&self) -> Family {
        match self {
            Addresses::V4(_) => Family::Ipv4,
            Addresses::V6(_) => Family::Ipv6,
        }
    }

    /// The addresses as `IpAddr`s.
    pub fn to_ip_addrs(&self) -> Vec<IpAddr> {
        match self {
            Addresses::V4(v) => v.iter().map(|a| IpAddr::V4(*a)).collect(),
            Addresses::V6(v) => v.iter().map(|a| IpAddr::V6(*a)).collect(),
        }
    }
}

/// A checked, zero-copy view over a received VRRP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    bytes: &'a [u8],
    family: Family,
}

impl<'a> Packet<'a> {
    /// Structural checks only: length, version, type, length against count, v3 count, v2 AH.
    /// The checksum is not verified (it needs the carrying IP addresses): see [`Packet::parse`].
    #[inline]
    pub fn parse_unverified(bytes: &'a [u8]) -> Result<Packet<'a>, DecodeError> {
        if bytes.len() < HEADER_LEN {
            return Err(DecodeError::Truncated {
                offset: 0,
                expected: HEADER_LEN,
                actual: bytes.len(),
            });
        }
        let version = bytes[0] >> 4;
        let kind = bytes[0] & 0x0f;
        // RFC 3768 §7.1, RFC 5798 §7.1: the version field must be valid.
        if version != 2 && version != 3 {
            return Err(DecodeError::Version {
                offset: 0,
                actual: version,
            });
        }
        // RFC 5798 §5.2.2: a packet with an unknown type must be discarded.
        if kind != TYPE_ADVERTISEMENT {
            return Err(DecodeError::Type {
                offset: 0,
                expected: TYPE_ADVERTISEMENT,
                actual: kind,
            });
        }
        let count = bytes[3];
        let n = usize::from(count);
        let family = if version == 2 {
            // RFC 3768 §5.3.6: type 2 (AH) was removed; say so rather than mis-parse.
            if bytes[4] == 2 {
                return Err(DecodeError::AuthHeader { offset: 4 });
            }
            // RFC 3768 §7.1: the length must cover the addresses and the authentication data.
            let expected = HEADER_LEN + 4 * n + AUTH_DATA_LEN;
            if bytes.len() != expected {
                return Err(DecodeError::Length {
                    count,
                    expected,
                    actual: bytes.len(),
                });
            }
            Family::Ipv4
        } else {
            // RFC 9568 errata: a count of 0 is invalid.
            if count == 0 {
                return Err(DecodeError::CountZero { offset: 3 });
            }
            // RFC 5798 §7.1: the length must match the count (the family follows from it).
            if bytes.len() == HEADER_LEN + 4 * n {
                Family::Ipv4
            } else if bytes.len() == HEADER_LEN + 16 * n {
                Family::Ipv6
            } else {
                return Err(DecodeError::Length {
                    count,
                    expected: HEADER_LEN + 4 * n,
                    actual: bytes.len(),
                });
            }
        };
        Ok(Packet { bytes, family })
    }

    /// All configuration-free receive checks, including the checksum computed in `mode`.
    /// For VRRPv2 the mode is ignored: its checksum never includes a pseudo-header (RFC 3768 §5.3.8).
    #[inline]
    pub fn parse(bytes: &'a [u8], mode: &Checksum) -> Result<Packet<'a>, DecodeError> {
        let p = Packet::parse_unverified(bytes)?;
        p.verify_checksum(mode)?;
        Ok(p)
    }

    /// Verifies the checksum in `mode` (VRRPv2 always message-only).
    #[inline]
    pub fn verify_checksum(&self, mode: &Checksum) -> Result<(), DecodeError> {
        let mode = self.effective_mode(mode)?;
        let expected = checksum::compute(self.bytes, &mode).ok_or(DecodeError::Family)?;
        let actual = self.checksum();
        if expected != actual {
            return Err(DecodeError::Checksum {
                offset: 6,
                expected,
                actual,
            });
        }
        Ok(())
    }

    #[inline]
    fn effective_mode(&self, mode: &Checksum) -> Result<Checksum, DecodeError> {
        if self.version() == 2 {
            return Ok(Checksum::MessageOnly);
        }
        if let Checksum::PseudoHeader { src, .. } = mode
            && Family::of(src) != self.family
        {
            return Err(DecodeError::Family);
        }
        Ok(*mode)
    }

    /// Which computations the checksum satisfies, given the carrying packet's addresses.
    #[inline]
    pub fn checksum_modes(&self, src: IpAddr, dst: IpAddr) -> ChecksumModes {
        checksum_modes(self.bytes, src, dst)
    }

    /// The underlying bytes.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// 2 or 3.
    #[inline]
    pub fn version(&self) -> u8 {
        self.bytes[0] >> 4
    }

    /// The address family, inferred from length and count.
    #[inline]
    pub fn family(&self) -> Family {
        self.family
    }

    /// Virtual router identifier.
    #[inline]
    pub fn vrid(&self) -> u8 {
        self.bytes[1]
    }

    /// Priority (0: the master stops, 255: the address owner).
    #[inline]
    pub fn priority(&self) -> u8 {
        self.bytes[2]
    }

    /// The address count field.
    #[inline]
    pub fn count(&self) -> u8 {
        self.bytes[3]
    }

    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes([self.bytes[6], self.bytes[7]])
    }

    /// v3 reserved bits (0 for v2).
    #[inline]
    pub fn reserved(&self) -> u8 {
        if self.version() == 3 {
            self.bytes[4] >> 4
        } else {
            0
        }
    }

    /// The advertisement interval as a `Duration`: v2 seconds, v3 centiseconds.
    #[inline]
    pub fn interval(&self) -> std::time::Duration {
        match self.version() {
            2 => std::time::Duration::from_secs(u64::from(self.bytes[5])),
            _ => std::time::Duration::from_millis(
                10 * u64::from(u16::from_be_bytes([self.bytes[4] & 0x0f, self.bytes[5]])),
            ),
        }
    }

    /// The version-specific fields.
    #[inline]
    pub fn body(&self) -> Body {
        if self.version() == 2 {
            let mut auth_data = [0u8; AUTH_DATA_LEN];
            auth_data.copy_from_slice(&self.bytes[self.bytes.len() - AUTH_DATA_LEN..]);
            Body::V2 {
                adver_int: self.bytes[5],
                auth_type: AuthType::from_u8(self.bytes[4]),
                auth_data,
            }
        } else {
            Body::V3 {
                max_adver_int: u16::from_be_bytes([self.bytes[4] & 0x0f, self.bytes[5]]),
                reserved: self.bytes[4] >> 4,
            }
        }
    }

    /// The raw bytes of the address list.
    #[inline]
    fn addr_bytes(&self) -> &'a [u8] {
        let n = usize::from(self.count()) * self.family.addr_len();
        &self.bytes[HEADER_LEN..HEADER_LEN + n]
    }

    /// The addresses, without allocating.
    #[inline]
    pub fn addresses(&self) -> impl ExactSizeIterator<Item = IpAddr> + 'a {
        let family = self.family;
        self.addr_bytes()
            .chunks_exact(family.addr_len())
            .map(move |c| addr_from(family, c))
    }

    /// The first address, if any.
    #[inline]
    pub fn first_address(&self) -> Option<IpAddr> {
        self.addresses().next()
    }
}

#[inline]
fn addr_from(family: Family, c: &[u8]) -> IpAddr {
    match family {
        Family::Ipv4 => IpAddr::V4(Ipv4Addr::new(c[0], c[1], c[2], c[3])),
        Family::Ipv6 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(c);
            IpAddr::V6(Ipv6Addr::from(o))
        }
    }
}

/// Which checksum computations `msg` satisfies when carried from `src` to `dst`. A VRRPv2 checksum is
/// message-only by definition; so is a VRRPv3 IPv4 one from an RFC 9568 peer. Works on any bytes of
/// at least the fixed header's length (otherwise both are false).
pub fn checksum_modes(msg: &[u8], src: IpAddr, dst: IpAddr) -> ChecksumModes {
    if msg.len() < HEADER_LEN {
        return ChecksumModes::default();
    }
    let actual = u16::from_be_bytes([msg[6], msg[7]]);
    let ok = |mode: Checksum| checksum::compute(msg, &mode) == Some(actual);
    let message_only = ok(Checksum::MessageOnly);
    // The pseudo-header does not apply to VRRPv2 (RFC 3768 §5.3.8).
    let pseudo_header = msg[0] >> 4 != 2 && ok(Checksum::PseudoHeader { src, dst });
    ChecksumModes {
        pseudo_header,
        message_only,
    }
}

/// An owned VRRP advertisement. Count and checksum are not stored: they are derived on emit, checked on parse.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Virtual router identifier (1..=255 on the wire of a sane router; 0 parses too).
    pub vrid: u8,
    /// Priority.
    pub priority: u8,
    /// Version-specific fields.
    pub body: Body,
    /// The virtual addresses (at most 255 are emitted; VRRPv2 carries IPv4 only).
    pub addresses: Addresses,
}

impl Repr {
    /// Parses and runs every configuration-free receive check, including the checksum in `mode`.
    pub fn parse(bytes: &[u8], mode: &Checksum) -> Result<Repr, DecodeError> {
        Packet::parse(bytes, mode).map(|p| Repr::from_packet(&p))
    }

    /// The owned value of a checked view.
    pub fn from_packet(p: &Packet<'_>) -> Repr {
        let addresses = match p.family() {
            Family::Ipv4 => Addresses::V4(
                p.addr_bytes()
                    .chunks_exact(4)
                    .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
                    .collect(),
            ),
            Family::Ipv6 => Addresses::V6(
                p.addr_bytes()
                    .chunks_exact(16)
                    .map(|c| {
                        let mut o = [0u8; 16];
                        o.copy_from_slice(c);
                        Ipv6Addr::from(o)
                    })
                    .collect(),
            ),
        };
        Repr {
            vrid: p.vrid(),
            priority: p.priority(),
            body: p.body(),
            addresses,
        }
    }

    /// Number of addresses emitted (the count field): at most 255.
    pub fn count(&self) -> u8 {
        u8::try_from(self.addresses.len()).unwrap_or(u8::MAX)
    }

    /// Bytes `emit` writes.
    pub fn buffer_len(&self) -> usize {
        let addrs = usize::from(self.count()) * self.addresses.family().addr_len();
        match self.body {
            Body::V2 { .. } => HEADER_LEN + addrs + AUTH_DATA_LEN,
            Body::V3 { .. } => HEADER_LEN + addrs,
        }
    }

    /// Writes the message into `buf[..buffer_len()]`, computing count and checksum (`mode` is ignored for
    /// VRRPv2, always message-only). Returns the bytes written. Never panics: a short buffer or a
    /// pseudo-header of the wrong family is an error.
    pub fn emit(&self, buf: &mut [u8], mode: &Checksum) -> Result<usize, EmitError> {
        let len = self.buffer_len();
        let Some(buf) = buf.get_mut(..len) else {
            return Err(EmitError::BufferTooShort {
                expected: len,
                actual: buf.len(),
            });
        };
        let mode = match (self.body, mode) {
            (Body::V2 { .. }, _) => Checksum::MessageOnly,
            (_, Checksum::PseudoHeader { src, dst })
                if Family::of(src) != self.addresses.family()
                    || Family::of(dst) != Family::of(src) =>
            {
                return Err(EmitError::Family);
            }
            (_, m) => *m,
        };
        buf[0] = (self.body.version() << 4) | TYPE_ADVERTISEMENT;
        buf[1] = self.vrid;
        buf[2] = self.priority;
        buf[3] = self.count();
        match self.body {
            Body::V2 {
                adver_int,
                auth_type,
                auth_data,
            } => {
                buf[4] = auth_type.to_u8();
                buf[5] = adver_int;
                buf[len - AUTH_DATA_LEN..].copy_from_slice(&auth_data);
            }
            Body::V3 {
                max_adver_int,
                reserved,
            } => {
                let v = (u16::from(reserved & 0x0f) << 12) | (max_adver_int & 0x0fff);
                buf[4..6].copy_from_slice(&v.to_be_bytes());
            }
        }
        buf[6] = 0;
        buf[7] = 0;
        let n = usize::from(self.count());
        let mut off = HEADER_LEN;
        match &self.addresses {
            Addresses::V4(v) => {
                for a in v.iter().take(n) {
                    buf[off..off + 4].copy_from_slice(&a.octets());
                    off += 4;
                }
            }
            Addresses::V6(v) => {
                for a in v.iter().take(n) {
                    buf[off..off + 16].copy_from_slice(&a.octets());
                    off += 16;
                }
            }
        }
        let ck = checksum::compute(buf, &mode).ok_or(EmitError::Family)?;
        buf[6..8].copy_from_slice(&ck.to_be_bytes());
        Ok(len)
    }

    /// Emits into a new vector (convenience; allocates).
    pub fn to_bytes(&self, mode: &Checksum) -> Result<Vec<u8>, EmitError> {
        let mut v = vec![0u8; self.buffer_len()];
        self.emit(&mut v, mode)?;
        Ok(v)
    }
}

/// Why [`Repr::emit`] could not write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The buffer is shorter than [`Repr::buffer_len`].
    #[error("buffer too short: expected {expected} bytes, got {actual}")]
    BufferTooShort {
        /// Bytes needed.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The pseudo-header addresses are not of the family of the address list.
    #[error("the pseudo-header addresses are not of the address list's family")]
    Family,
}
