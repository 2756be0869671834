//! Expectation messages (`NET_T_STATE_EXP_*`): `exp2msg` in build.c and `msg2exp` in parse.c.

use super::attr::{
    Counter, NTA_HDR, PortPair, Sink, Size, Writer, rd_addrs_v4, rd_addrs_v6, rd_ports, rd_u8,
    rd_u32, rd_v4, walk,
};
pub use super::attr::{ExpFn, HelperName};
use super::{AddrPair, DecodeError, HEADER_LEN, Mode, Skipped};
use std::net::Ipv4Addr;

/// Expectation attribute numbers (`enum nta_exp_attr`).
#[allow(missing_docs)]
pub mod nta_exp {
    pub const MASTER_IPV4: u16 = 0;
    pub const MASTER_IPV6: u16 = 1;
    pub const MASTER_L4PROTO: u16 = 2;
    pub const MASTER_PORT: u16 = 3;
    pub const EXPECT_IPV4: u16 = 4;
    pub const EXPECT_IPV6: u16 = 5;
    pub const EXPECT_L4PROTO: u16 = 6;
    pub const EXPECT_PORT: u16 = 7;
    pub const MASK_IPV4: u16 = 8;
    pub const MASK_IPV6: u16 = 9;
    pub const MASK_L4PROTO: u16 = 10;
    pub const MASK_PORT: u16 = 11;
    pub const TIMEOUT: u16 = 12;
    pub const FLAGS: u16 = 13;
    pub const CLASS: u16 = 14;
    pub const NAT_IPV4: u16 = 15;
    pub const NAT_PORT: u16 = 16;
    pub const NAT_L4PROTO: u16 = 17;
    pub const NAT_DIR: u16 = 18;
    pub const HELPER_NAME: u16 = 19;
    pub const FN: u16 = 20;
    /// `NTA_EXP_MAX`.
    pub const MAX: u16 = 21;
}

#[inline(always)]
fn size_of(attr: u16) -> Size {
    use nta_exp::*;
    let f = |n: usize| Size::Fixed(NTA_HDR + n);
    match attr {
        MASTER_IPV4 | EXPECT_IPV4 | MASK_IPV4 | NAT_IPV4 => f(8),
        MASTER_IPV6 | EXPECT_IPV6 | MASK_IPV6 => f(32),
        MASTER_L4PROTO | EXPECT_L4PROTO | MASK_L4PROTO | NAT_L4PROTO => f(1),
        MASTER_PORT | EXPECT_PORT | MASK_PORT | NAT_PORT => f(4),
        TIMEOUT | FLAGS | CLASS | NAT_DIR => f(4),
        HELPER_NAME => Size::Max(16),
        // "XXX: artificial limit" of 32 in parse.c.
        _ => Size::Max(32),
    }
}

/// An expectation as carried in a sync message. Emitting follows `exp2msg`'s order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ExpEntry {
    /// Master conntrack addresses.
    pub master_addrs: Option<AddrPair>,
    /// Master layer-4 protocol.
    pub master_l4proto: Option<u8>,
    /// Master ports.
    pub master_ports: Option<PortPair>,
    /// Expected tuple addresses.
    pub expect_addrs: Option<AddrPair>,
    /// Expected layer-4 protocol.
    pub expect_l4proto: Option<u8>,
    /// Expected ports.
    pub expect_ports: Option<PortPair>,
    /// Mask addresses.
    pub mask_addrs: Option<AddrPair>,
    /// Mask layer-4 protocol.
    pub mask_l4proto: Option<u8>,
    /// Mask ports.
    pub mask_ports: Option<PortPair>,
    /// `NTA_EXP_TIMEOUT`.
    pub timeout: Option<u32>,
    /// `NTA_EXP_FLAGS`.
    pub flags: Option<u32>,
    /// `NTA_EXP_CLASS`.
    pub class: Option<u32>,
    /// NAT tuple addresses (`NTA_EXP_NAT_IPV4`: source, destination; IPv4 only in conntrackd).
    pub nat_addrs: Option<[Ipv4Addr; 2]>,
    /// `NTA_EXP_NAT_L4PROTO`.
    pub nat_l4proto: Option<u8>,
    /// `NTA_EXP_NAT_PORT`.
    pub nat_ports: Option<PortPair>,
    /// `NTA_EXP_NAT_DIR`.
    pub nat_dir: Option<u32>,
    /// `NTA_EXP_HELPER_NAME`.
    pub helper: Option<HelperName>,
    /// `NTA_EXP_FN`.
    pub func: Option<ExpFn>,
}

impl ExpEntry {
    fn emit_to<S: Sink>(&self, s: &mut S) {
        use nta_exp::*;
        if let Some(a) = &self.master_addrs {
            s.addrs(MASTER_IPV4, MASTER_IPV6, a);
        }
        if let Some(v) = self.master_l4proto {
            s.u8(MASTER_L4PROTO, v);
        }
        if let Some(p) = &self.master_ports {
            s.ports(MASTER_PORT, p);
        }
        if let Some(a) = &self.expect_addrs {
            s.addrs(EXPECT_IPV4, EXPECT_IPV6, a);
        }
        if let Some(v) = self.expect_l4proto {
            s.u8(EXPECT_L4PROTO, v);
        }
        if let Some(p) = &self.expect_ports {
            s.ports(EXPECT_PORT, p);
        }
        if let Some(a) = &self.mask_addrs {
            s.addrs(MASK_IPV4, MASK_IPV6, a);
        }
        if let Some(v) = self.mask_l4proto {
            s.u8(MASK_L4PROTO, v);
        }
        if let Some(p) = &self.mask_ports {
            s.ports(MASK_PORT, p);
        }
        if let Some(v) = self.timeout {
            s.u32(TIMEOUT, v);
        }
        if let Some(v) = self.flags {
            s.u32(FLAGS, v);
        }
        if let Some(v) = self.class {
            s.u32(CLASS, v);
        }
        if let Some([src, dst]) = self.nat_addrs {
            s.addrs(NAT_IPV4, NAT_IPV4, &AddrPair::V4 { src, dst });
        }
        if let Some(v) = self.nat_l4proto {
            s.u8(NAT_L4PROTO, v);
        }
        if let Some(p) = &self.nat_ports {
            s.ports(NAT_PORT, p);
        }
        if let Some(v) = self.nat_dir {
            s.u32(NAT_DIR, v);
        }
        if let Some(h) = &self.helper {
            s.put(HELPER_NAME, h.raw());
        }
        if let Some(h) = &self.func {
            s.put(FN, h.raw());
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

    /// Back from [`ExpEntry::attr_bytes`] (bytes this crate wrote; anything undecodable gives an empty
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
        use nta_exp::*;
        let mut e = ExpEntry::default();
        walk(
            msg,
            hdr_len,
            base,
            MAX,
            size_of,
            mode,
            skipped,
            |attr, d| match attr {
                MASTER_IPV4 => e.master_addrs = Some(rd_addrs_v4(d)),
                MASTER_IPV6 => e.master_addrs = Some(rd_addrs_v6(d)),
                MASTER_L4PROTO => e.master_l4proto = Some(rd_u8(d)),
                MASTER_PORT => e.master_ports = Some(rd_ports(d)),
                EXPECT_IPV4 => e.expect_addrs = Some(rd_addrs_v4(d)),
                EXPECT_IPV6 => e.expect_addrs = Some(rd_addrs_v6(d)),
                EXPECT_L4PROTO => e.expect_l4proto = Some(rd_u8(d)),
                EXPECT_PORT => e.expect_ports = Some(rd_ports(d)),
                MASK_IPV4 => e.mask_addrs = Some(rd_addrs_v4(d)),
                MASK_IPV6 => e.mask_addrs = Some(rd_addrs_v6(d)),
                MASK_L4PROTO => e.mask_l4proto = Some(rd_u8(d)),
                MASK_PORT => e.mask_ports = Some(rd_ports(d)),
                TIMEOUT => e.timeout = Some(rd_u32(d)),
                FLAGS => e.flags = Some(rd_u32(d)),
                CLASS => e.class = Some(rd_u32(d)),
                NAT_IPV4 => e.nat_addrs = Some([rd_v4(d), rd_v4(d.get(4..).unwrap_or(&[]))]),
                NAT_PORT => e.nat_ports = Some(rd_ports(d)),
                NAT_L4PROTO => e.nat_l4proto = Some(rd_u8(d)),
                NAT_DIR => e.nat_dir = Some(rd_u32(d)),
                // Empty strings carry nothing (and a trailing one is skipped by msg2exp's loop).
                HELPER_NAME => e.helper = HelperName::from_raw(d),
                FN => e.func = ExpFn::from_raw(d),
                _ => {}
            },
        )?;
        Ok(e)
    }
}
