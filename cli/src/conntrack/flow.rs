//! The entry model the formatters and filters work on: what `ctnl` decodes, reduced to what is printed.

use std::net::IpAddr;

/// Layer-4 part of a tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum L4 {
    /// Ports (TCP, UDP, UDP-Lite, SCTP, DCCP).
    Ports {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
    },
    /// ICMP / ICMPv6 type, code and id.
    Icmp {
        /// Type.
        kind: u8,
        /// Code.
        code: u8,
        /// Identifier.
        id: u16,
    },
    /// GRE keys (16-bit, as conntrack-tools prints them).
    Gre {
        /// Source key.
        skey: u16,
        /// Destination key.
        dkey: u16,
    },
    /// Nothing layer-4 specific.
    #[default]
    None,
}

/// One direction of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuple {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Layer-4 protocol number.
    pub proto: u8,
    /// Layer-4 fields.
    pub l4: L4,
    /// Per-direction zone, when the kernel sent one.
    pub zone: Option<u16>,
}

impl Tuple {
    /// Source port (or GRE key), when the protocol has one.
    pub fn sport(&self) -> Option<u16> {
        match self.l4 {
            L4::Ports { sport, .. } => Some(sport),
            L4::Gre { skey, .. } => Some(skey),
            _ => None,
        }
    }
    /// Destination port (or GRE key).
    pub fn dport(&self) -> Option<u16> {
        match self.l4 {
            L4::Ports { dport, .. } => Some(dport),
            L4::Gre { dkey, .. } => Some(dkey),
            _ => None,
        }
    }

    /// libnetfilter_conntrack's `l4src.all`: the source port or key, the ICMP id, 0 when absent.
    pub fn src_all(&self) -> u16 {
        match self.l4 {
            L4::Ports { sport, .. } => sport,
            L4::Gre { skey, .. } => skey,
            L4::Icmp { id, .. } => id,
            L4::None => 0,
        }
    }

    /// libnetfilter_conntrack's `l4dst.all`: the destination port or key; for ICMP the type and code
    /// bytes, which its NAT checks compare with the other direction's id as they are.
    pub fn dst_all(&self) -> u16 {
        match self.l4 {
            L4::Ports { dport, .. } => dport,
            L4::Gre { dkey, .. } => dkey,
            L4::Icmp { kind, code, .. } => u16::from_be_bytes([kind, code]),
            L4::None => 0,
        }
    }
}

/// Packet and byte counters of one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// Protocol state from protoinfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoState {
    /// TCP state number.
    Tcp(u8),
    /// SCTP state number.
    Sctp(u8),
    /// DCCP state number.
    Dccp(u8),
}

/// One conntrack entry as printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// Original direction.
    pub orig: Tuple,
    /// Reply direction (absent only in odd events).
    pub reply: Option<Tuple>,
    /// Seconds left.
    pub timeout: Option<u32>,
    /// Protocol state.
    pub state: Option<ProtoState>,
    /// Status bits (`IPS_*`).
    pub status: Option<u32>,
    /// Mark.
    pub mark: Option<u32>,
    /// Secmark.
    pub secmark: Option<u32>,
    /// Security context name.
    pub secctx: Option<String>,
    /// Zone.
    pub zone: Option<u16>,
    /// Original counters.
    pub counters_orig: Option<Counters>,
    /// Reply counters.
    pub counters_reply: Option<Counters>,
    /// Start timestamp, ns since the epoch.
    pub ts_start: Option<u64>,
    /// Stop timestamp, ns since the epoch.
    pub ts_stop: Option<u64>,
    /// Helper name.
    pub helper: Option<String>,
    /// Reference count.
    pub use_count: Option<u32>,
    /// Entry id.
    pub id: Option<u32>,
    /// Label bitmap (bit i of byte i/8... as the kernel sends it: little-endian u32 words).
    pub labels: Option<Vec<u8>>,
    /// SCTP verification tags (original, reply).
    pub sctp_vtags: Option<(u32, u32)>,
}

impl Flow {
    /// A flow with only an original tuple (the rest empty), for building test vectors.
    pub fn new(orig: Tuple) -> Flow {
        Flow {
            orig,
            reply: None,
            timeout: None,
            state: None,
            status: None,
            mark: None,
            secmark: None,
            secctx: None,
            zone: None,
            counters_orig: None,
            counters_reply: None,
            ts_start: None,
            ts_stop: None,
            helper: None,
            use_count: None,
            id: None,
            labels: None,
            sctp_vtags: None,
        }
    }

    /// Layer-3 family number (2 or 10).
    pub fn family(&self) -> u8 {
        if self.orig.src.is_ipv4() { 2 } else { 10 }
    }

    /// Is label bit `bit` set?
    pub fn has_label(&self, bit: u32) -> bool {
        let Some(b) = &self.labels else { return false };
        let byte = (bit / 8) as usize;
        b.get(byte).is_some_and(|v| v & (1 << (bit % 8)) != 0)
    }

    /// Highest label bit the bitmap can hold.
    pub fn label_bits(&self) -> u32 {
        self.labels.as_ref().map_or(0, |b| b.len() as u32 * 8)
    }

    fn nat_done(&self, bit: u32) -> bool {
        self.status.is_none_or(|s| s & bit != 0)
    }

    /// Source NAT (libnetfilter_conntrack's rule): SRC_NAT_DONE set (when the status is known) and the reply
    /// destination differs from the original source.
    pub fn is_snat(&self) -> bool {
        self.nat_done(SRC_NAT_DONE) && self.reply.is_some_and(|r| r.dst != self.orig.src)
    }
    /// Destination NAT: DST_NAT_DONE set and the reply source differs from the original destination.
    pub fn is_dnat(&self) -> bool {
        self.nat_done(DST_NAT_DONE) && self.reply.is_some_and(|r| r.src != self.orig.dst)
    }
    /// Source port translation: the reply's `l4dst.all` differs from the original's `l4src.all` (for
    /// ICMP that compares type and code with the id, as libnetfilter_conntrack does).
    pub fn is_spat(&self) -> bool {
        self.nat_done(SRC_NAT_DONE)
            && self
                .reply
                .is_some_and(|r| r.dst_all() != self.orig.src_all())
    }
    /// Destination port translation: the reply's `l4src.all` differs from the original's `l4dst.all`.
    pub fn is_dpat(&self) -> bool {
        self.nat_done(DST_NAT_DONE)
            && self
                .reply
                .is_some_and(|r| r.src_all() != self.orig.dst_all())
    }
}

/// `IPS_SRC_NAT_DONE`.
const SRC_NAT_DONE: u32 = 1 << 7;
/// `IPS_DST_NAT_DONE`.
const DST_NAT_DONE: u32 = 1 << 8;
