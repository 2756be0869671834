//! The expectation model (`CTA_EXPECT_*`) and its codec.

use super::{
    Attrs, Extras, Family, LenCounter, Out, RawAttr, SliceOut, Tuple, cta, emit_extras, family_at,
    overlay,
};
use crate::error::{DecodeError, EmitError};

bitflags::bitflags! {
    /// Expectation flags (`CTA_EXPECT_FLAGS`, `NF_CT_EXPECT_*`). Unknown bits are kept.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
    pub struct ExpectFlags: u32 {
        /// `NF_CT_EXPECT_PERMANENT`: stays after a connection matched it.
        const PERMANENT = 1 << 0;
        /// `NF_CT_EXPECT_INACTIVE`: not yet matchable.
        const INACTIVE = 1 << 1;
        /// `NF_CT_EXPECT_USERSPACE`: created from user space.
        const USERSPACE = 1 << 2;
    }
}

/// NAT applied to an expected connection (`CTA_EXPECT_NAT`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExpectNat {
    /// `CTA_EXPECT_NAT_DIR`: 0 original, 1 reply.
    pub dir: u32,
    /// `CTA_EXPECT_NAT_TUPLE`.
    pub tuple: Tuple,
}

/// One expectation: a connection a helper expects to see, tied to a master connection. It grows with the
/// kernel: start from `Expect::default()` and set fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Expect {
    /// Address family (the nfgenmsg header's).
    pub family: Family,
    /// The master connection's original tuple (`CTA_EXPECT_MASTER`).
    pub master: Option<Tuple>,
    /// The expected tuple (`CTA_EXPECT_TUPLE`).
    pub tuple: Option<Tuple>,
    /// Which bits of the expected tuple must match (`CTA_EXPECT_MASK`).
    pub mask: Option<Tuple>,
    /// Seconds until the expectation expires.
    pub timeout: Option<u32>,
    /// Kernel id.
    pub id: Option<u32>,
    /// Helper name (`CTA_EXPECT_HELP_NAME`), e.g. `"ftp"`.
    pub helper: Option<String>,
    /// Zone.
    pub zone: Option<u16>,
    /// `CTA_EXPECT_FLAGS`.
    pub flags: Option<ExpectFlags>,
    /// Expectation class.
    pub class: Option<u32>,
    /// NAT for the expected connection.
    pub nat: Option<ExpectNat>,
    /// Expectation function name (`CTA_EXPECT_FN`).
    pub func: Option<String>,
    /// Attributes the model does not know, kept raw (unknown attributes inside `CTA_EXPECT_NAT` as an
    /// overlay of that type; see [`RawAttr`]).
    pub unknown: Vec<RawAttr>,
}

impl Expect {
    /// Parses the attributes of an expectation message; `family` is the nfgenmsg family.
    pub(crate) fn parse_attrs(family: Family, buf: &[u8]) -> Result<Self, DecodeError> {
        Self::parse_at(family, buf, 0)
    }

    /// Parses an nfnetlink payload: nfgenmsg (whose family must be `AF_INET` or `AF_INET6`) then
    /// attributes.
    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        let (hdr, rest) = buf.split_at_checked(4).ok_or(DecodeError::Truncated {
            what: "nfgenmsg",
            offset: 0,
            expected: 4,
            actual: buf.len(),
        })?;
        Self::parse_at(family_at(hdr[0], 0)?, rest, 4)
    }

    fn parse_at(family: Family, buf: &[u8], base: usize) -> Result<Self, DecodeError> {
        let mut e = Expect {
            family,
            ..Expect::default()
        };
        for a in Attrs::new(buf, base) {
            let a = a?;
            match a.kind {
                cta::EXPECT_MASTER => e.master = Some(Tuple::parse_at(a.value, a.value_offset())?),
                cta::EXPECT_TUPLE => e.tuple = Some(Tuple::parse_at(a.value, a.value_offset())?),
                cta::EXPECT_MASK => e.mask = Some(Tuple::parse_at(a.value, a.value_offset())?),
                cta::EXPECT_TIMEOUT => e.timeout = Some(a.u32_be("CTA_EXPECT_TIMEOUT")?),
                cta::EXPECT_ID => e.id = Some(a.u32_be("CTA_EXPECT_ID")?),
                cta::EXPECT_HELP_NAME => e.helper = Some(a.string("CTA_EXPECT_HELP_NAME")?),
                cta::EXPECT_ZONE => e.zone = Some(a.u16_be("CTA_EXPECT_ZONE")?),
                cta::EXPECT_FLAGS => {
                    e.flags = Some(ExpectFlags::from_bits_retain(a.u32_be("CTA_EXPECT_FLAGS")?))
                }
                cta::EXPECT_CLASS => e.class = Some(a.u32_be("CTA_EXPECT_CLASS")?),
                cta::EXPECT_FN => e.func = Some(a.string("CTA_EXPECT_FN")?),
                cta::EXPECT_NAT => {
                    let mut dir = None;
                    let mut tuple = None;
                    let mut extras = Extras::default();
                    for n in a.nested() {
                        let n = n?;
                        match n.kind {
                            cta::EXPECT_NAT_DIR => dir = Some(n.u32_be("CTA_EXPECT_NAT_DIR")?),
                            cta::EXPECT_NAT_TUPLE => {
                                tuple = Some(Tuple::parse_at(n.value, n.value_offset())?)
                            }
                            _ => extras.keep(&n),
                        }
                    }
                    extras.push_into(&mut e.unknown, cta::EXPECT_NAT);
                    e.nat = Some(ExpectNat {
                        dir: dir.ok_or(DecodeError::Missing {
                            what: "CTA_EXPECT_NAT_DIR",
                        })?,
                        tuple: tuple.ok_or(DecodeError::Missing {
                            what: "CTA_EXPECT_NAT_TUPLE",
                        })?,
                    });
                }
                _ => e.unknown.push(a.raw()),
            }
        }
        super::canonical_order(&mut e.unknown, &[cta::EXPECT_NAT]);
        Ok(e)
    }

    /// Writes every present attribute.
    pub(crate) fn emit_attrs<O: Out>(&self, o: &mut O) {
        if let Some(t) = &self.master {
            t.emit_as(o, cta::EXPECT_MASTER);
        }
        if let Some(t) = &self.tuple {
            t.emit_as(o, cta::EXPECT_TUPLE);
        }
        if let Some(t) = &self.mask {
            t.emit_as(o, cta::EXPECT_MASK);
        }
        if let Some(v) = self.timeout {
            o.u32_be(cta::EXPECT_TIMEOUT, v);
        }
        if let Some(v) = self.id {
            o.u32_be(cta::EXPECT_ID, v);
        }
        if let Some(h) = &self.helper {
            o.string(cta::EXPECT_HELP_NAME, h);
        }
        if let Some(v) = self.zone {
            o.u16_be(cta::EXPECT_ZONE, v);
        }
        if let Some(v) = self.flags {
            o.u32_be(cta::EXPECT_FLAGS, v.bits());
        }
        if let Some(v) = self.class {
            o.u32_be(cta::EXPECT_CLASS, v);
        }
        if let Some(n) = &self.nat {
            let t = o.nest_start(cta::EXPECT_NAT);
            o.u32_be(cta::EXPECT_NAT_DIR, n.dir);
            n.tuple.emit_as(o, cta::EXPECT_NAT_TUPLE);
            emit_extras(o, overlay(&self.unknown, cta::EXPECT_NAT), &[]);
            o.nest_end(t);
        }
        if let Some(f) = &self.func {
            o.string(cta::EXPECT_FN, f);
        }
        super::emit_extras_list(o, &self.unknown, &[cta::EXPECT_NAT]);
    }

    /// Size of the nfnetlink payload [`Expect::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        let mut c = LenCounter {
            len: 4,
            ..LenCounter::default()
        };
        self.emit_attrs(&mut c);
        c.len
    }

    /// Writes nfgenmsg then attributes into `buf` (at least [`Expect::buffer_len`] bytes); returns the
    /// bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let actual = buf.len();
        let overflow = || EmitError::overflow("expectation", self.buffer_len(), actual);
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
