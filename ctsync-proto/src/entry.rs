//! Conversion between a sync message's [`CtEntry`] and a conntrack entry with both tuples.
//!
//! A sync message carries only the original tuple plus the NAT attributes; the receiver rebuilds the
//! reply tuple. conntrackd does it with `nfct_setobjopt(ct, NFCT_SOPT_SETUP_REPLY)` (reply = inverted
//! original) and the kernel then applies the NAT ranges (`NTA_SNAT_*` becomes the reply destination,
//! `NTA_DNAT_*` the reply source, `NTA_SPAT_PORT` the reply destination port, `NTA_DPAT_PORT` the reply
//! source port). The sender side is libnetfilter_conntrack's `NFCT_GOPT_IS_SNAT/DNAT/SPAT/DPAT`: an
//! address or port is sent when the reply tuple differs from the inverted original.

use crate::wire::{AddrPair, CtEntry, ExpEntry, PortPair};

/// `IPS_SRC_NAT_DONE` (linux/netfilter/nf_conntrack_common.h).
pub const IPS_SRC_NAT_DONE: u32 = 1 << 7;
/// `IPS_DST_NAT_DONE`.
pub const IPS_DST_NAT_DONE: u32 = 1 << 8;

/// The layer-4 part of a tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L4 {
    /// TCP, UDP, SCTP, DCCP, UDP-Lite.
    Ports(PortPair),
    /// ICMP or ICMPv6.
    Icmp {
        /// Type.
        icmp_type: u8,
        /// Code.
        code: u8,
        /// Identifier.
        id: u16,
    },
    /// Protocols without layer-4 identifiers.
    None,
}

/// One direction's tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple {
    /// Addresses.
    pub addrs: AddrPair,
    /// Layer-4 protocol number.
    pub l4proto: u8,
    /// Ports or ICMP identifiers.
    pub l4: L4,
}

/// The identity of an entry in a cache: original tuple and zone (conntrackd hashes the same fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// Original tuple.
    pub orig: Tuple,
    /// Conntrack zone (0 when absent).
    pub zone: u16,
}

/// Hashes every field (so equal keys hash equally) packed into a few words: the derived impl would call
/// the hasher once per byte array and discriminant, which costs more than the lookup itself.
impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let t = &self.orig;
        let l4 = match t.l4 {
            L4::Ports(p) => (1u64 << 32) | u64::from(p.sport) << 16 | u64::from(p.dport),
            L4::Icmp {
                icmp_type,
                code,
                id,
            } => (2u64 << 32) | u64::from(icmp_type) << 24 | u64::from(code) << 16 | u64::from(id),
            L4::None => 3u64 << 32,
        };
        let tail = l4 | u64::from(t.l4proto) << 40 | u64::from(self.zone) << 48;
        match t.addrs {
            AddrPair::V4 { src, dst } => {
                state.write_u64(u64::from(u32::from(src)) << 32 | u64::from(u32::from(dst)));
                state.write_u64(tail);
            }
            AddrPair::V6 { src, dst } => {
                let (s, d) = (u128::from(src), u128::from(dst));
                state.write_u64(s as u64);
                state.write_u64((s >> 64) as u64);
                state.write_u64(d as u64);
                state.write_u64((d >> 64) as u64);
                state.write_u64(tail | 1 << 35);
            }
        }
    }
}

/// The identity of an expectation in a cache: its master and expected tuples (conntrackd hashes these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExpKey {
    /// Master addresses.
    pub master: AddrPair,
    /// Master protocol and ports.
    pub master_l4: (Option<u8>, Option<PortPair>),
    /// Expected addresses.
    pub expect: AddrPair,
    /// Expected protocol and ports.
    pub expect_l4: (Option<u8>, Option<PortPair>),
}

impl ExpEntry {
    /// The cache key: master and expected tuples (`None` without both address pairs).
    pub fn key(&self) -> Option<ExpKey> {
        Some(ExpKey {
            master: self.master_addrs?,
            master_l4: (self.master_l4proto, self.master_ports),
            expect: self.expect_addrs?,
            expect_l4: (self.expect_l4proto, self.expect_ports),
        })
    }
}

/// The reply ICMP type for a request type, as conntrackd sets up the reply tuple: `ctnl`'s table (the
/// kernel's `invmap`, the workspace's one ICMP inversion: echo, timestamp, information and address-mask
/// requests and replies for ICMP; echo and node-information for ICMPv6). Any other type has no reply and
/// gets 255, which the kernel refuses (`-EINVAL`), exactly as libnetfilter_conntrack's setter leaves it
/// for conntrackd.
pub fn icmp_reply_type(l4proto: u8, t: u8) -> u8 {
    let family = match l4proto {
        58 => ctnl::Family::Ipv6,
        1 => ctnl::Family::Ipv4,
        _ => return 255,
    };
    ctnl::icmp_reply_type(family, t).unwrap_or(255)
}

impl Tuple {
    /// The inverted tuple (`NFCT_SOPT_SETUP_REPLY`): addresses and ports swapped, ICMP type answered.
    pub fn invert(&self) -> Tuple {
        let addrs = match self.addrs {
            AddrPair::V4 { src, dst } => AddrPair::V4 { src: dst, dst: src },
            AddrPair::V6 { src, dst } => AddrPair::V6 { src: dst, dst: src },
        };
        let l4 = match self.l4 {
            L4::Ports(p) => L4::Ports(PortPair {
                sport: p.dport,
                dport: p.sport,
            }),
            L4::Icmp {
                icmp_type,
                code,
                id,
            } => L4::Icmp {
                icmp_type: icmp_reply_type(self.l4proto, icmp_type),
                code,
                id,
            },
            L4::None => L4::None,
        };
        Tuple {
            addrs,
            l4proto: self.l4proto,
            l4,
        }
    }
}

impl CtEntry {
    /// The original tuple, if the message carried addresses and a protocol.
    pub fn orig_tuple(&self) -> Option<Tuple> {
        let addrs = self.addrs?;
        let l4proto = self.l4proto?;
        let l4 = match (self.ports, self.icmp_type) {
            (Some(p), _) => L4::Ports(p),
            (None, Some(t)) => L4::Icmp {
                icmp_type: t,
                code: self.icmp_code.unwrap_or(0),
                id: self.icmp_id.unwrap_or(0),
            },
            (None, None) => L4::None,
        };
        Some(Tuple { addrs, l4proto, l4 })
    }

    /// The cache key: original tuple plus zone.
    pub fn key(&self) -> Option<Key> {
        Some(Key {
            orig: self.orig_tuple()?,
            zone: self.zone.unwrap_or(0),
        })
    }

    /// The reply tuple as conntrackd (and then the kernel) rebuilds it: the inverted original tuple with
    /// the SNAT address and port as its destination and the DNAT address and port as its source.
    ///
    /// ICMP: NAT ports are ignored. conntrackd can send `NTA_SPAT_PORT`/`NTA_DPAT_PORT` for a NATed ICMP
    /// entry because libnetfilter_conntrack's `NFCT_GOPT_IS_SPAT/DPAT` compare the 16-bit port unions,
    /// which for ICMP alias the reply's type/code with the original id (and the reply id with the
    /// original type/code); those values are not ports, so this crate neither uses them here nor
    /// produces them in [`CtEntry::set_tuples`] (a message re-encodes unchanged either way).
    pub fn reply_tuple(&self) -> Option<Tuple> {
        let mut r = self.orig_tuple()?.invert();
        r.addrs = match r.addrs {
            AddrPair::V4 { src, dst } => AddrPair::V4 {
                src: self.dnat_ipv4.unwrap_or(src),
                dst: self.snat_ipv4.unwrap_or(dst),
            },
            AddrPair::V6 { src, dst } => AddrPair::V6 {
                src: self.dnat_ipv6.unwrap_or(src),
                dst: self.snat_ipv6.unwrap_or(dst),
            },
        };
        if let L4::Ports(p) = &mut r.l4 {
            p.sport = self.dnat_port.unwrap_or(p.sport);
            p.dport = self.snat_port.unwrap_or(p.dport);
        }
        Some(r)
    }

    /// Sets the tuple attributes and, from the difference between `reply` and the inverted `orig`, the
    /// NAT attributes, as conntrackd's `ct2msg` does with `NFCT_GOPT_IS_SNAT/DNAT/SPAT/DPAT` (which also
    /// require `IPS_SRC_NAT_DONE` / `IPS_DST_NAT_DONE` when a status is known).
    pub fn set_tuples(&mut self, orig: &Tuple, reply: &Tuple) {
        self.addrs = Some(orig.addrs);
        self.l4proto = Some(orig.l4proto);
        self.ports = None;
        self.icmp_type = None;
        self.icmp_code = None;
        self.icmp_id = None;
        match orig.l4 {
            L4::Ports(p) => self.ports = Some(p),
            L4::Icmp {
                icmp_type,
                code,
                id,
            } => {
                self.icmp_type = Some(icmp_type);
                self.icmp_code = Some(code);
                self.icmp_id = Some(id);
            }
            L4::None => {}
        }
        let snat_ok = self.status.is_none_or(|s| s & IPS_SRC_NAT_DONE != 0);
        let dnat_ok = self.status.is_none_or(|s| s & IPS_DST_NAT_DONE != 0);
        self.snat_ipv4 = None;
        self.dnat_ipv4 = None;
        self.snat_ipv6 = None;
        self.dnat_ipv6 = None;
        match (orig.addrs, reply.addrs) {
            (AddrPair::V4 { src: os, dst: od }, AddrPair::V4 { src: rs, dst: rd }) => {
                self.snat_ipv4 = (snat_ok && rd != os).then_some(rd);
                self.dnat_ipv4 = (dnat_ok && rs != od).then_some(rs);
            }
            (AddrPair::V6 { src: os, dst: od }, AddrPair::V6 { src: rs, dst: rd }) => {
                self.snat_ipv6 = (snat_ok && rd != os).then_some(rd);
                self.dnat_ipv6 = (dnat_ok && rs != od).then_some(rs);
            }
            _ => {}
        }
        self.snat_port = None;
        self.dnat_port = None;
        if let (L4::Ports(o), L4::Ports(r)) = (orig.l4, reply.l4) {
            self.snat_port = (snat_ok && r.dport != o.sport).then_some(r.dport);
            self.dnat_port = (dnat_ok && r.sport != o.dport).then_some(r.sport);
        }
    }
}
