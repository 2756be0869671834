//! The Internet checksum (RFC 1071) over a VRRP message, with or without a pseudo-header.

use std::net::IpAddr;

/// IP protocol number of VRRP (RFC 5798 §5.1.1.3, §5.1.2.3).
pub const IP_PROTOCOL: u8 = 112;

/// How the checksum of a VRRP message is computed.
///
/// VRRPv2 always uses [`Checksum::MessageOnly`] (RFC 3768 §5.3.8). VRRPv3 over IPv6 always uses the
/// pseudo-header (RFC 5798 §5.2.8, RFC 9568 §5.2.8). VRRPv3 over IPv4 comes in two flavours: RFC 5798 (and
/// keepalived 2.2.7 and FRR) include the IPv4 pseudo-header, RFC 9568 (Arista, Cisco) leaves it out. For a
/// unicast advert the pseudo-header carries the unicast destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Checksum {
    /// Sum over the VRRP message only (VRRPv2; VRRPv3 IPv4 per RFC 9568).
    MessageOnly,
    /// Sum over the IPv4 or IPv6 pseudo-header, then the VRRP message (VRRPv3 per RFC 5798; IPv6 always).
    PseudoHeader {
        /// IP source address of the carrying packet.
        src: IpAddr,
        /// IP destination address of the carrying packet (the multicast group or the unicast peer).
        dst: IpAddr,
    },
}

/// Which checksum computations a received message satisfies (see [`checksum_modes`](super::checksum_modes)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChecksumModes {
    /// The checksum is right when computed over the pseudo-header and the message.
    pub pseudo_header: bool,
    /// The checksum is right when computed over the message only.
    pub message_only: bool,
}

impl ChecksumModes {
    /// True when neither computation matches.
    pub fn none(&self) -> bool {
        !self.pseudo_header && !self.message_only
    }
}

/// Adds `data` to a running one's complement sum, as 16-bit big-endian words (odd tail padded with zero).
///
/// Sums 32-bit words into a 64-bit accumulator (half the additions; no overflow for any input this
/// crate sees) and folds at the end: since 2^16 = 1 modulo 0xffff, the folded result is the same as a
/// word-by-word one's complement sum (RFC 1071 §2, "Parallel Summation").
#[inline]
pub(crate) fn sum_words(acc: u32, data: &[u8]) -> u32 {
    let mut wide = u64::from(acc);
    let mut quads = data.chunks_exact(4);
    for q in &mut quads {
        wide += u64::from(u32::from_be_bytes([q[0], q[1], q[2], q[3]]));
    }
    let mut tail = quads.remainder();
    if tail.len() >= 2 {
        wide += u64::from(u16::from_be_bytes([tail[0], tail[1]]));
        tail = &tail[2..];
    }
    if let [last] = tail {
        wide += u64::from(*last) << 8;
    }
    while wide > 0xffff {
        wide = (wide & 0xffff) + (wide >> 16);
    }
    // The loop above leaves at most 16 bits.
    wide as u32
}

fn fold(mut acc: u32) -> u32 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

/// The pseudo-header's partial sum (RFC 768-style for IPv4, RFC 8200 §8.1 for IPv6).
/// Returns `None` when the two addresses are of different families.
#[inline]
pub(crate) fn pseudo_header_sum(src: IpAddr, dst: IpAddr, len: usize) -> Option<u32> {
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut acc = sum_words(0, &s.octets());
            acc = sum_words(acc, &d.octets());
            // zero, protocol, 16-bit length
            acc += u32::from(IP_PROTOCOL) + (len & 0xffff);
            Some(fold(acc))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut acc = sum_words(0, &s.octets());
            acc = sum_words(acc, &d.octets());
            // 32-bit upper-layer length, three zero bytes, next header
            acc += (len >> 16) + (len & 0xffff) + u32::from(IP_PROTOCOL);
            Some(fold(acc))
        }
        _ => None,
    }
}

/// Computes the checksum of `msg` whose checksum field (bytes 6..8) is treated as zero.
/// Returns `None` for a pseudo-header whose two addresses are of different families.
#[inline]
pub(crate) fn compute(msg: &[u8], mode: &Checksum) -> Option<u16> {
    let mut acc = match mode {
        Checksum::MessageOnly => 0,
        Checksum::PseudoHeader { src, dst } => pseudo_header_sum(*src, *dst, msg.len())?,
    };
    if msg.len() >= 8 {
        acc = sum_words(acc, &msg[..6]);
        acc = sum_words(acc, &msg[8..]);
    } else {
        acc = sum_words(acc, msg);
    }
    // The folded sum fits in 16 bits.
    Some(!(fold(acc) as u16))
}
