//! The IPVS genetlink family: commands, attributes and typed values (facts from
//! `include/uapi/linux/ip_vs.h` and `net/netfilter/ipvs/ip_vs_ctl.c`, kernel 6.1).

use super::{Attr, Attrs, GENL_HDRLEN, GenlHeader, RawAttr, Writer};
use crate::error::{DecodeError, EmitError};
use crate::testing::{Nest, is_blind};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `IPVS_GENL_NAME`.
pub(crate) const IPVS_GENL_NAME: &str = "IPVS";
/// `IPVS_GENL_VERSION`.
pub(crate) const IPVS_GENL_VERSION: u8 = 1;

/// `AF_INET`.
pub(crate) const AF_INET: u16 = 2;
/// `AF_INET6`.
pub(crate) const AF_INET6: u16 = 10;

/// `IPVS_CMD_*`.
pub(crate) mod cmd {
    pub const NEW_SERVICE: u8 = 1;
    pub const SET_SERVICE: u8 = 2;
    pub const DEL_SERVICE: u8 = 3;
    pub const GET_SERVICE: u8 = 4;
    pub const NEW_DEST: u8 = 5;
    pub const SET_DEST: u8 = 6;
    pub const DEL_DEST: u8 = 7;
    pub const GET_DEST: u8 = 8;
    pub const NEW_DAEMON: u8 = 9;
    pub const DEL_DAEMON: u8 = 10;
    pub const GET_DAEMON: u8 = 11;
    pub const SET_CONFIG: u8 = 12;
    pub const GET_CONFIG: u8 = 13;
    pub const SET_INFO: u8 = 14;
    pub const GET_INFO: u8 = 15;
    pub const ZERO: u8 = 16;
    pub const FLUSH: u8 = 17;
}

/// Attribute numbers (`IPVS_CMD_ATTR_*`, `IPVS_SVC_ATTR_*`, ...), to read the `kind` of a [`RawAttr`].
#[allow(missing_docs)]
pub mod attr {
    pub const CMD_SERVICE: u16 = 1;
    pub const CMD_DEST: u16 = 2;
    pub const CMD_DAEMON: u16 = 3;
    pub const CMD_TIMEOUT_TCP: u16 = 4;
    pub const CMD_TIMEOUT_TCP_FIN: u16 = 5;
    pub const CMD_TIMEOUT_UDP: u16 = 6;

    pub const SVC_AF: u16 = 1;
    pub const SVC_PROTOCOL: u16 = 2;
    pub const SVC_ADDR: u16 = 3;
    pub const SVC_PORT: u16 = 4;
    pub const SVC_FWMARK: u16 = 5;
    pub const SVC_SCHED_NAME: u16 = 6;
    pub const SVC_FLAGS: u16 = 7;
    pub const SVC_TIMEOUT: u16 = 8;
    pub const SVC_NETMASK: u16 = 9;
    pub const SVC_STATS: u16 = 10;
    pub const SVC_PE_NAME: u16 = 11;
    pub const SVC_STATS64: u16 = 12;

    pub const DEST_ADDR: u16 = 1;
    pub const DEST_PORT: u16 = 2;
    pub const DEST_FWD_METHOD: u16 = 3;
    pub const DEST_WEIGHT: u16 = 4;
    pub const DEST_U_THRESH: u16 = 5;
    pub const DEST_L_THRESH: u16 = 6;
    pub const DEST_ACTIVE_CONNS: u16 = 7;
    pub const DEST_INACT_CONNS: u16 = 8;
    pub const DEST_PERSIST_CONNS: u16 = 9;
    pub const DEST_STATS: u16 = 10;
    pub const DEST_ADDR_FAMILY: u16 = 11;
    pub const DEST_STATS64: u16 = 12;
    pub const DEST_TUN_TYPE: u16 = 13;
    pub const DEST_TUN_PORT: u16 = 14;
    pub const DEST_TUN_FLAGS: u16 = 15;

    pub const DAEMON_STATE: u16 = 1;
    pub const DAEMON_MCAST_IFN: u16 = 2;
    pub const DAEMON_SYNC_ID: u16 = 3;
    pub const DAEMON_SYNC_MAXLEN: u16 = 4;
    pub const DAEMON_MCAST_GROUP: u16 = 5;
    pub const DAEMON_MCAST_GROUP6: u16 = 6;
    pub const DAEMON_MCAST_PORT: u16 = 7;
    pub const DAEMON_MCAST_TTL: u16 = 8;

    pub const STATS_CONNS: u16 = 1;
    pub const STATS_INPKTS: u16 = 2;
    pub const STATS_OUTPKTS: u16 = 3;
    pub const STATS_INBYTES: u16 = 4;
    pub const STATS_OUTBYTES: u16 = 5;
    pub const STATS_CPS: u16 = 6;
    pub const STATS_INPPS: u16 = 7;
    pub const STATS_OUTPPS: u16 = 8;
    pub const STATS_INBPS: u16 = 9;
    pub const STATS_OUTBPS: u16 = 10;

    pub const INFO_VERSION: u16 = 1;
    pub const INFO_CONN_TAB_SIZE: u16 = 2;
}

/// True when the decoder and encoder model attribute `kind` of `nest` (always, outside the
/// `test-unknown-attrs` hook).
#[inline]
fn known(nest: Nest, kind: u16) -> bool {
    !is_blind(nest, kind)
}

/// Runs a public `emit`: writes with `f` into `buf`, names a short buffer after `what`.
fn emit_with(
    buf: &mut [u8],
    what: &'static str,
    needed: impl FnOnce() -> usize,
    f: impl FnOnce(&mut Writer<'_>) -> Result<(), EmitError>,
) -> Result<usize, EmitError> {
    let mut w = Writer::slice(buf);
    match f(&mut w) {
        Ok(()) => Ok(w.len()),
        Err(e) => Err(w.fix(what, e, needed())),
    }
}

/// Counts what `f` writes.
fn count_with(f: impl FnOnce(&mut Writer<'_>) -> Result<(), EmitError>) -> usize {
    let mut w = Writer::count();
    let _ = f(&mut w);
    w.len()
}

/// The public `buffer_len` and `emit` of a value, from its one attribute writer.
macro_rules! codec_emit {
    ($name:literal, $doc:literal, |$s:ident, $w:ident| $body:expr) => {
        /// The length of `emit`'s output.
        pub fn buffer_len(&self) -> usize {
            let $s = self;
            count_with(|$w| $body)
        }

        #[doc = $doc]
        /// Returns the bytes written; a buffer shorter than `buffer_len()` is an error.
        pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
            let $s = self;
            emit_with(buf, $name, || $s.buffer_len(), |$w| $body)
        }
    };
}

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Family {
    /// IPv4 (`AF_INET`).
    #[default]
    Ipv4,
    /// IPv6 (`AF_INET6`).
    Ipv6,
}

impl Family {
    /// The family of `addr`.
    pub fn of(addr: &IpAddr) -> Family {
        if addr.is_ipv6() {
            Family::Ipv6
        } else {
            Family::Ipv4
        }
    }

    /// The `AF_*` number.
    pub(crate) fn af(self) -> u16 {
        match self {
            Family::Ipv4 => AF_INET,
            Family::Ipv6 => AF_INET6,
        }
    }

    fn from_af(af: u16) -> Option<Family> {
        match af {
            AF_INET => Some(Family::Ipv4),
            AF_INET6 => Some(Family::Ipv6),
            _ => None,
        }
    }

    fn parse_af(a: &Attr<'_>, what: &'static str) -> Result<Family, DecodeError> {
        let af = a.u16(what)?;
        Family::from_af(af).ok_or(DecodeError::Invalid {
            what,
            offset: a.offset,
            value: af.into(),
        })
    }
}

/// A service's transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Protocol {
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// SCTP (132).
    Sctp,
    /// Any other IP protocol number.
    Other(u16),
}

impl Protocol {
    /// The IP protocol number.
    pub fn number(self) -> u16 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
            Protocol::Other(n) => n,
        }
    }

    /// From an IP protocol number.
    pub fn from_number(n: u16) -> Self {
        match n {
            6 => Protocol::Tcp,
            17 => Protocol::Udp,
            132 => Protocol::Sctp,
            n => Protocol::Other(n),
        }
    }
}

/// A scheduler: every one Linux ships (`net/netfilter/ipvs/ip_vs_*.c`, up to 6.x), or another name.
///
/// [`Scheduler::from_name`] (and `From<&str>`, `FromStr`) maps a known name to its variant, so `Other`
/// only ever holds a name the kernel does not ship.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[non_exhaustive]
pub enum Scheduler {
    /// `rr`: round robin.
    Rr,
    /// `wrr`: weighted round robin.
    Wrr,
    /// `lc`: least connections.
    Lc,
    /// `wlc`: weighted least connections (ipvsadm's and keepalived's default).
    #[default]
    Wlc,
    /// `lblc`: locality-based least connections.
    Lblc,
    /// `lblcr`: locality-based least connections with replication.
    Lblcr,
    /// `dh`: destination hashing.
    Dh,
    /// `sh`: source hashing (flags [`ServiceFlags::SCHED1`] fallback, [`ServiceFlags::SCHED2`] port).
    Sh,
    /// `sed`: shortest expected delay.
    Sed,
    /// `nq`: never queue.
    Nq,
    /// `fo`: weighted failover.
    Fo,
    /// `ovf`: weighted overflow.
    Ovf,
    /// `mh`: Maglev hashing (flags [`ServiceFlags::SCHED1`] fallback, [`ServiceFlags::SCHED2`] port).
    Mh,
    /// `twos`: weighted random twos choice (Linux 6.2 and later).
    Twos,
    /// Any other name (an out-of-tree scheduler, or a typo the kernel will refuse).
    Other(String),
}

impl Scheduler {
    /// Every scheduler Linux ships, in the kernel's documentation order.
    pub const KNOWN: [Scheduler; 14] = [
        Scheduler::Rr,
        Scheduler::Wrr,
        Scheduler::Lc,
        Scheduler::Wlc,
        Scheduler::Lblc,
        Scheduler::Lblcr,
        Scheduler::Dh,
        Scheduler::Sh,
        Scheduler::Sed,
        Scheduler::Nq,
        Scheduler::Fo,
        Scheduler::Ovf,
        Scheduler::Mh,
        Scheduler::Twos,
    ];

    /// The kernel's name (`"rr"`, ...).
    pub fn name(&self) -> &str {
        match self {
            Scheduler::Rr => "rr",
            Scheduler::Wrr => "wrr",
            Scheduler::Lc => "lc",
            Scheduler::Wlc => "wlc",
            Scheduler::Lblc => "lblc",
            Scheduler::Lblcr => "lblcr",
            Scheduler::Dh => "dh",
            Scheduler::Sh => "sh",
            Scheduler::Sed => "sed",
            Scheduler::Nq => "nq",
            Scheduler::Fo => "fo",
            Scheduler::Ovf => "ovf",
            Scheduler::Mh => "mh",
            Scheduler::Twos => "twos",
            Scheduler::Other(s) => s,
        }
    }

    /// From the kernel's name; exact, case-sensitive match (the kernel's lookup is).
    pub fn from_name(name: &str) -> Scheduler {
        Scheduler::KNOWN
            .iter()
            .find(|s| s.name() == name)
            .cloned()
            .unwrap_or_else(|| Scheduler::Other(name.to_string()))
    }
}

impl std::fmt::Display for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl From<&str> for Scheduler {
    fn from(s: &str) -> Self {
        Scheduler::from_name(s)
    }
}

impl std::str::FromStr for Scheduler {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Scheduler::from_name(s))
    }
}

/// What identifies a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKey {
    /// A protocol, virtual address and port.
    Inet {
        /// Transport protocol.
        protocol: Protocol,
        /// Virtual address (its family is the service's).
        addr: IpAddr,
        /// Virtual port (0 for a persistent all-ports service).
        port: u16,
    },
    /// A firewall mark, for IPv4 or IPv6 packets.
    Fwmark {
        /// The mark.
        mark: u32,
        /// The packets' family.
        family: Family,
    },
}

impl ServiceKey {
    /// The service's address family.
    pub fn family(&self) -> Family {
        match self {
            ServiceKey::Inet { addr, .. } => Family::of(addr),
            ServiceKey::Fwmark { family, .. } => *family,
        }
    }

    /// Writes the identity attributes (af + fwmark, or af + protocol + addr + port).
    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        w.u16("IPVS_SVC_ATTR_AF", attr::SVC_AF, self.family().af())?;
        match self {
            ServiceKey::Fwmark { mark, .. } => {
                w.u32("IPVS_SVC_ATTR_FWMARK", attr::SVC_FWMARK, *mark)
            }
            ServiceKey::Inet {
                protocol,
                addr,
                port,
            } => {
                w.u16(
                    "IPVS_SVC_ATTR_PROTOCOL",
                    attr::SVC_PROTOCOL,
                    protocol.number(),
                )?;
                w.put("IPVS_SVC_ATTR_ADDR", attr::SVC_ADDR, &addr16(addr))?;
                w.be16("IPVS_SVC_ATTR_PORT", attr::SVC_PORT, *port)
            }
        }
    }

    /// Writes a nested `IPVS_CMD_ATTR_SERVICE` holding only the identity.
    pub(crate) fn write_nested(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        w.nest("IPVS_CMD_ATTR_SERVICE", attr::CMD_SERVICE, |w| {
            self.write(w)
        })
    }
}

bitflags::bitflags! {
    /// Service flags (`IP_VS_SVC_F_*`). Bits this crate does not name are kept.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct ServiceFlags: u32 {
        /// Persistent service (`-p`, `persistence_timeout`).
        const PERSISTENT = 0x0001;
        /// Hashed (set by the kernel on every listed service).
        const HASHED = 0x0002;
        /// One-packet scheduling (`-o`, UDP).
        const ONEPACKET = 0x0004;
        /// Scheduler flag 1 (`sh-fallback`, `mh-fallback`, `flag-1`).
        const SCHED1 = 0x0008;
        /// Scheduler flag 2 (`sh-port`, `mh-port`, `flag-2`).
        const SCHED2 = 0x0010;
        /// Scheduler flag 3 (`flag-3`).
        const SCHED3 = 0x0020;
        // Unknown bits from a newer kernel are kept.
        const _ = !0;
    }
}

/// Traffic counters and rates, from `IPVS_*_ATTR_STATS` (32-bit counters, 64-bit bytes) or
/// `..._STATS64` (all 64-bit).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Connections scheduled.
    pub conns: u64,
    /// Incoming packets.
    pub inpkts: u64,
    /// Outgoing packets.
    pub outpkts: u64,
    /// Incoming bytes.
    pub inbytes: u64,
    /// Outgoing bytes.
    pub outbytes: u64,
    /// Connections per second (estimator).
    pub cps: u64,
    /// Incoming packets per second.
    pub inpps: u64,
    /// Outgoing packets per second.
    pub outpps: u64,
    /// Incoming bytes per second.
    pub inbps: u64,
    /// Outgoing bytes per second.
    pub outbps: u64,
    /// Attributes of the stats nest this crate does not know, kept raw.
    pub unknown: Vec<RawAttr>,
}

impl Stats {
    /// Parses the payload of a stats nest (counters of 4 or 8 bytes).
    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        Stats::parse_at(buf, 0)
    }

    fn parse_at(buf: &[u8], base: usize) -> Result<Self, DecodeError> {
        let mut s = Stats::default();
        for a in Attrs::new(buf, base) {
            let a = a?;
            let slot = match a.kind {
                k if !known(Nest::Stats, k) => None,
                attr::STATS_CONNS => Some(&mut s.conns),
                attr::STATS_INPKTS => Some(&mut s.inpkts),
                attr::STATS_OUTPKTS => Some(&mut s.outpkts),
                attr::STATS_INBYTES => Some(&mut s.inbytes),
                attr::STATS_OUTBYTES => Some(&mut s.outbytes),
                attr::STATS_CPS => Some(&mut s.cps),
                attr::STATS_INPPS => Some(&mut s.inpps),
                attr::STATS_OUTPPS => Some(&mut s.outpps),
                attr::STATS_INBPS => Some(&mut s.inbps),
                attr::STATS_OUTBPS => Some(&mut s.outbps),
                _ => None,
            };
            match slot {
                Some(slot) => *slot = a.u64_or_u32("IPVS_STATS_ATTR")?,
                None => s.unknown.push(a.raw()),
            }
        }
        Ok(s)
    }

    codec_emit!(
        "Stats",
        "Writes the payload of a stats nest in the 64-bit (`STATS64`) encoding, unknown attributes last.",
        |s, w| s.write(w, true)
    );

    /// Writes the counters: `wide` is the STATS64 encoding; otherwise the STATS one, where the kernel
    /// sends 32-bit counters and 64-bit byte counts (a counter above `u32::MAX` is written in 64 bits
    /// rather than cut, and the parser reads either size).
    fn write(&self, w: &mut Writer<'_>, wide: bool) -> Result<(), EmitError> {
        let fields = [
            (attr::STATS_CONNS, self.conns, false),
            (attr::STATS_INPKTS, self.inpkts, false),
            (attr::STATS_OUTPKTS, self.outpkts, false),
            (attr::STATS_INBYTES, self.inbytes, true),
            (attr::STATS_OUTBYTES, self.outbytes, true),
            (attr::STATS_CPS, self.cps, false),
            (attr::STATS_INPPS, self.inpps, false),
            (attr::STATS_OUTPPS, self.outpps, false),
            (attr::STATS_INBPS, self.inbps, false),
            (attr::STATS_OUTBPS, self.outbps, false),
        ];
        for (k, v, is64) in fields {
            if !known(Nest::Stats, k) {
                continue;
            }
            match u32::try_from(v) {
                Ok(v32) if !wide && !is64 => w.u32("IPVS_STATS_ATTR", k, v32)?,
                _ => w.put("IPVS_STATS_ATTR", k, &v.to_ne_bytes())?,
            }
        }
        w.raws(&self.unknown)
    }

    fn write_nested(&self, w: &mut Writer<'_>, kind: u16, wide: bool) -> Result<(), EmitError> {
        w.nest("IPVS_STATS_ATTR", kind, |w| self.write(w, wide))
    }
}

/// Writes the 32-bit and 64-bit stats nests (`kinds`) of a service or destination, when present.
fn write_stats_pair(
    w: &mut Writer<'_>,
    nest: Nest,
    stats: &Option<Stats>,
    stats64: &Option<Stats>,
    kinds: (u16, u16),
) -> Result<(), EmitError> {
    for (s, kind, wide) in [(stats, kinds.0, false), (stats64, kinds.1, true)] {
        if let Some(s) = s
            && known(nest, kind)
        {
            s.write_nested(w, kind, wide)?;
        }
    }
    Ok(())
}

/// A virtual service.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Service {
    /// What identifies it.
    pub key: ServiceKey,
    /// Scheduler.
    pub scheduler: Scheduler,
    /// `IP_VS_SVC_F_*` flags.
    pub flags: ServiceFlags,
    /// Persistence timeout in seconds.
    pub timeout: u32,
    /// Persistence netmask: for IPv4 the mask as a number (`0xffff_ff00` for /24), for IPv6 the prefix length.
    pub netmask: u32,
    /// Persistence engine (`sip`), if any.
    pub pe_name: Option<String>,
    /// 32-bit statistics (in replies).
    pub stats: Option<Stats>,
    /// 64-bit statistics (in replies, kernel >= 4.0).
    pub stats64: Option<Stats>,
    /// Attributes of the service nest this crate does not know, kept raw and written back (so a service
    /// read, changed and written back keeps what a newer kernel added).
    pub unknown: Vec<RawAttr>,
}

impl Service {
    /// A service with ipvsadm's defaults: scheduler `wlc`, no flags, timeout 0, host netmask.
    pub fn new(key: ServiceKey) -> Self {
        Service {
            key,
            scheduler: Scheduler::Wlc,
            flags: ServiceFlags::empty(),
            timeout: 0,
            netmask: match key.family() {
                Family::Ipv6 => 128,
                Family::Ipv4 => 0xffff_ffff,
            },
            pe_name: None,
            stats: None,
            stats64: None,
            unknown: Vec::new(),
        }
    }

    /// The best statistics available (64-bit preferred; zeros when the reply had none).
    pub fn best_stats(&self) -> Stats {
        self.stats64
            .as_ref()
            .or(self.stats.as_ref())
            .cloned()
            .unwrap_or_default()
    }

    /// Parses the payload of a nested `IPVS_CMD_ATTR_SERVICE`.
    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        Service::parse_at(buf, 0, true)
    }

    /// Like [`Service::parse`] at offset `base` of the caller's buffer; with `with_stats` false the
    /// stats nests are skipped (left `None`).
    pub(crate) fn parse_at(buf: &[u8], base: usize, with_stats: bool) -> Result<Self, DecodeError> {
        let mut af = None;
        let mut protocol = None;
        let mut addr = None;
        let mut port = None;
        let mut fwmark = None;
        let mut s = Service::new(ServiceKey::Fwmark {
            mark: 0,
            family: Family::Ipv4,
        });
        let mut scheduler = None;
        let mut netmask_raw = None;
        for a in Attrs::new(buf, base) {
            let a = a?;
            match a.kind {
                attr::SVC_AF => af = Some(Family::parse_af(&a, "IPVS_SVC_ATTR_AF")?),
                attr::SVC_PROTOCOL => protocol = Some(a.u16("IPVS_SVC_ATTR_PROTOCOL")?),
                attr::SVC_ADDR => addr = Some(a),
                attr::SVC_PORT => port = Some(a.be16("IPVS_SVC_ATTR_PORT")?),
                attr::SVC_FWMARK => fwmark = Some(a.u32("IPVS_SVC_ATTR_FWMARK")?),
                k if !known(Nest::Service, k) => s.unknown.push(a.raw()),
                attr::SVC_SCHED_NAME => scheduler = Some(Scheduler::from_name(&a.string())),
                // struct ip_vs_flags { flags, mask }: the flags come first.
                attr::SVC_FLAGS => {
                    s.flags = ServiceFlags::from_bits_retain(u32::from_ne_bytes(
                        a.prefix::<4>("IPVS_SVC_ATTR_FLAGS")?,
                    ))
                }
                attr::SVC_TIMEOUT => s.timeout = a.u32("IPVS_SVC_ATTR_TIMEOUT")?,
                attr::SVC_NETMASK => netmask_raw = Some(a.exact::<4>("IPVS_SVC_ATTR_NETMASK")?),
                attr::SVC_STATS | attr::SVC_STATS64 if !with_stats => {}
                attr::SVC_STATS => s.stats = Some(Stats::parse_at(a.value, a.value_offset())?),
                attr::SVC_PE_NAME => s.pe_name = Some(a.string()).filter(|s| !s.is_empty()),
                attr::SVC_STATS64 => s.stats64 = Some(Stats::parse_at(a.value, a.value_offset())?),
                _ => s.unknown.push(a.raw()),
            }
        }
        let family = af.ok_or(DecodeError::Missing {
            what: "IPVS_SVC_ATTR_AF",
        })?;
        // The kernel sends both a (zero) fwmark and an address for address services.
        s.key = match (fwmark.filter(|&m| m != 0 || addr.is_none()), addr) {
            (Some(mark), _) => ServiceKey::Fwmark { mark, family },
            (None, Some(a)) => ServiceKey::Inet {
                protocol: Protocol::from_number(protocol.ok_or(DecodeError::Missing {
                    what: "IPVS_SVC_ATTR_PROTOCOL",
                })?),
                addr: parse_addr(&a, family, "IPVS_SVC_ATTR_ADDR")?,
                port: port.ok_or(DecodeError::Missing {
                    what: "IPVS_SVC_ATTR_PORT",
                })?,
            },
            (None, None) => {
                return Err(DecodeError::Missing {
                    what: "IPVS_SVC_ATTR_ADDR",
                });
            }
        };
        s.netmask = match (netmask_raw, family) {
            // IPv4: a __be32 mask; IPv6: a prefix length as a host-order u32 (ip_vs_ctl.c).
            (Some(b), Family::Ipv4) => u32::from_be_bytes(b),
            (Some(b), Family::Ipv6) => u32::from_ne_bytes(b),
            (None, Family::Ipv6) => 128,
            (None, Family::Ipv4) => 0xffff_ffff,
        };
        s.scheduler = scheduler.unwrap_or(Scheduler::Other(String::new()));
        Ok(s)
    }

    codec_emit!(
        "Service",
        "Writes the payload of a nested `IPVS_CMD_ATTR_SERVICE`: identity, scheduler, persistence engine, flags, timeout, netmask, the stats when present, and the unknown attributes last.",
        |s, w| s.write(w, true)
    );

    /// Writes the attributes; `counters` adds the stats nests (replies; requests leave them out).
    pub(crate) fn write(&self, w: &mut Writer<'_>, counters: bool) -> Result<(), EmitError> {
        const N: Nest = Nest::Service;
        self.key.write(w)?;
        if known(N, attr::SVC_SCHED_NAME) {
            w.string(
                "IPVS_SVC_ATTR_SCHED_NAME",
                attr::SVC_SCHED_NAME,
                self.scheduler.name(),
            )?;
        }
        if let Some(pe) = &self.pe_name
            && known(N, attr::SVC_PE_NAME)
        {
            w.string("IPVS_SVC_ATTR_PE_NAME", attr::SVC_PE_NAME, pe)?;
        }
        if known(N, attr::SVC_FLAGS) {
            // { flags, mask }: every bit is set to the given value.
            let mut fl = [0u8; 8];
            fl[..4].copy_from_slice(&self.flags.bits().to_ne_bytes());
            fl[4..].copy_from_slice(&u32::MAX.to_ne_bytes());
            w.put("IPVS_SVC_ATTR_FLAGS", attr::SVC_FLAGS, &fl)?;
        }
        if known(N, attr::SVC_TIMEOUT) {
            w.u32("IPVS_SVC_ATTR_TIMEOUT", attr::SVC_TIMEOUT, self.timeout)?;
        }
        if known(N, attr::SVC_NETMASK) {
            let mask = match self.key.family() {
                Family::Ipv6 => self.netmask.to_ne_bytes(),
                Family::Ipv4 => self.netmask.to_be_bytes(),
            };
            w.put("IPVS_SVC_ATTR_NETMASK", attr::SVC_NETMASK, &mask)?;
        }
        if counters {
            let kinds = (attr::SVC_STATS, attr::SVC_STATS64);
            write_stats_pair(w, N, &self.stats, &self.stats64, kinds)?;
        }
        w.raws(&self.unknown)
    }

    /// Writes a nested `IPVS_CMD_ATTR_SERVICE`.
    pub(crate) fn write_nested(&self, w: &mut Writer<'_>, counters: bool) -> Result<(), EmitError> {
        w.nest("IPVS_CMD_ATTR_SERVICE", attr::CMD_SERVICE, |w| {
            self.write(w, counters)
        })
    }
}

/// A 16-byte `union nf_inet_addr` holding `addr`.
fn addr16(addr: &IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match addr {
        IpAddr::V4(a) => b[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => b.copy_from_slice(&a.octets()),
    }
    b
}

fn parse_addr(a: &Attr<'_>, family: Family, what: &'static str) -> Result<IpAddr, DecodeError> {
    match family {
        Family::Ipv4 => Ok(IpAddr::V4(Ipv4Addr::from(a.prefix::<4>(what)?))),
        Family::Ipv6 => Ok(IpAddr::V6(Ipv6Addr::from(a.prefix::<16>(what)?))),
    }
}

/// How packets reach a destination (`IP_VS_CONN_F_*` forwarding bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FwdMethod {
    /// NAT (`-m`, keepalived `lb_kind NAT`).
    Masq,
    /// Local node.
    Local,
    /// IP tunnelling (`-i`, `lb_kind TUN`).
    Tunnel,
    /// Direct routing, "gatewaying" (`-g`, `lb_kind DR`).
    Route,
    /// Cache bypass.
    Bypass,
    /// Any other value.
    Unknown(u32),
}

impl FwdMethod {
    /// The kernel value.
    pub fn value(self) -> u32 {
        match self {
            FwdMethod::Masq => 0,
            FwdMethod::Local => 1,
            FwdMethod::Tunnel => 2,
            FwdMethod::Route => 3,
            FwdMethod::Bypass => 4,
            FwdMethod::Unknown(v) => v,
        }
    }

    /// From the kernel value (the `IP_VS_CONN_F_FWD_MASK` bits).
    pub fn from_value(v: u32) -> Self {
        match v & 0x7 {
            0 => FwdMethod::Masq,
            1 => FwdMethod::Local,
            2 => FwdMethod::Tunnel,
            3 => FwdMethod::Route,
            4 => FwdMethod::Bypass,
            _ => FwdMethod::Unknown(v),
        }
    }
}

/// Tunnel encapsulation (`IP_VS_CONN_F_TUNNEL_TYPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TunnelType {
    /// IP in IP.
    #[default]
    Ipip,
    /// Generic UDP encapsulation.
    Gue,
    /// GRE.
    Gre,
    /// Any other value.
    Unknown(u8),
}

impl TunnelType {
    /// The kernel value.
    pub fn value(self) -> u8 {
        match self {
            TunnelType::Ipip => 0,
            TunnelType::Gue => 1,
            TunnelType::Gre => 2,
            TunnelType::Unknown(v) => v,
        }
    }
    /// From the kernel value.
    pub fn from_value(v: u8) -> Self {
        match v {
            0 => TunnelType::Ipip,
            1 => TunnelType::Gue,
            2 => TunnelType::Gre,
            v => TunnelType::Unknown(v),
        }
    }
}

bitflags::bitflags! {
    /// Tunnel encapsulation flags (`IP_VS_TUNNEL_ENCAP_FLAG_*`); empty is "no checksum". Bits this crate
    /// does not name are kept.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct TunnelFlags: u16 {
        /// Checksum (`--tun-csum`).
        const CSUM = 0x1;
        /// Remote checksum offload (`--tun-remcsum`).
        const REMCSUM = 0x2;
        // Unknown bits from a newer kernel are kept.
        const _ = !0;
    }
}

/// A real server of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Destination {
    /// Its address (may be of another family than the service's, for tunnels).
    pub addr: IpAddr,
    /// Its port.
    pub port: u16,
    /// Forwarding method.
    pub fwd: FwdMethod,
    /// Weight (the kernel accepts 0 to `i32::MAX`).
    pub weight: u32,
    /// Upper connection threshold (0: none).
    pub u_threshold: u32,
    /// Lower connection threshold (0: none).
    pub l_threshold: u32,
    /// Tunnel type (tunnel forwarding).
    pub tun_type: TunnelType,
    /// Tunnel (GUE) port.
    pub tun_port: u16,
    /// Tunnel flags.
    pub tun_flags: TunnelFlags,
    /// Active connections (replies only).
    pub active_conns: u32,
    /// Inactive connections (replies only).
    pub inact_conns: u32,
    /// Persistent (template) connections (replies only).
    pub persist_conns: u32,
    /// 32-bit stats (replies only).
    pub stats: Option<Stats>,
    /// 64-bit stats (replies only).
    pub stats64: Option<Stats>,
    /// Attributes of the destination nest this crate does not know, kept raw and written back.
    pub unknown: Vec<RawAttr>,
}

impl Destination {
    /// A destination with ipvsadm's library defaults: masquerading, weight 1, no thresholds.
    pub fn new(addr: IpAddr, port: u16) -> Self {
        Destination {
            addr,
            port,
            fwd: FwdMethod::Masq,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tun_type: TunnelType::Ipip,
            tun_port: 0,
            tun_flags: TunnelFlags::empty(),
            active_conns: 0,
            inact_conns: 0,
            persist_conns: 0,
            stats: None,
            stats64: None,
            unknown: Vec::new(),
        }
    }

    /// The best statistics available (64-bit preferred; zeros when the reply had none).
    pub fn best_stats(&self) -> Stats {
        self.stats64
            .as_ref()
            .or(self.stats.as_ref())
            .cloned()
            .unwrap_or_default()
    }

    /// Parses the payload of a nested `IPVS_CMD_ATTR_DEST`, which must name its address family
    /// (`IPVS_DEST_ATTR_ADDR_FAMILY`, sent since Linux 4.3); see [`Destination::parse_in`] otherwise.
    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        Destination::parse_at(buf, 0, None, true)
    }

    /// Like [`Destination::parse`], with `family` (the service's) when the nest does not say.
    pub fn parse_in(buf: &[u8], family: Family) -> Result<Self, DecodeError> {
        Destination::parse_at(buf, 0, Some(family), true)
    }

    pub(crate) fn parse_at(
        buf: &[u8],
        base: usize,
        fallback: Option<Family>,
        with_stats: bool,
    ) -> Result<Self, DecodeError> {
        const N: Nest = Nest::Destination;
        let mut d = Destination::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        let mut addr = None;
        let mut family = fallback;
        let mut port = None;
        for a in Attrs::new(buf, base) {
            let a = a?;
            match a.kind {
                attr::DEST_ADDR => addr = Some(a),
                attr::DEST_PORT => port = Some(a.be16("IPVS_DEST_ATTR_PORT")?),
                attr::DEST_ADDR_FAMILY => {
                    family = Some(Family::parse_af(&a, "IPVS_DEST_ATTR_ADDR_FAMILY")?)
                }
                k if !known(N, k) => d.unknown.push(a.raw()),
                attr::DEST_FWD_METHOD => {
                    d.fwd = FwdMethod::from_value(a.u32("IPVS_DEST_ATTR_FWD_METHOD")?)
                }
                attr::DEST_WEIGHT => d.weight = a.u32("IPVS_DEST_ATTR_WEIGHT")?,
                attr::DEST_U_THRESH => d.u_threshold = a.u32("IPVS_DEST_ATTR_U_THRESH")?,
                attr::DEST_L_THRESH => d.l_threshold = a.u32("IPVS_DEST_ATTR_L_THRESH")?,
                attr::DEST_ACTIVE_CONNS => d.active_conns = a.u32("IPVS_DEST_ATTR_ACTIVE_CONNS")?,
                attr::DEST_INACT_CONNS => d.inact_conns = a.u32("IPVS_DEST_ATTR_INACT_CONNS")?,
                attr::DEST_PERSIST_CONNS => {
                    d.persist_conns = a.u32("IPVS_DEST_ATTR_PERSIST_CONNS")?
                }
                attr::DEST_STATS | attr::DEST_STATS64 if !with_stats => {}
                attr::DEST_STATS => d.stats = Some(Stats::parse_at(a.value, a.value_offset())?),
                attr::DEST_STATS64 => d.stats64 = Some(Stats::parse_at(a.value, a.value_offset())?),
                attr::DEST_TUN_TYPE => {
                    d.tun_type = TunnelType::from_value(a.u8("IPVS_DEST_ATTR_TUN_TYPE")?)
                }
                attr::DEST_TUN_PORT => d.tun_port = a.be16("IPVS_DEST_ATTR_TUN_PORT")?,
                attr::DEST_TUN_FLAGS => {
                    d.tun_flags = TunnelFlags::from_bits_retain(a.u16("IPVS_DEST_ATTR_TUN_FLAGS")?)
                }
                _ => d.unknown.push(a.raw()),
            }
        }
        let a = addr.ok_or(DecodeError::Missing {
            what: "IPVS_DEST_ATTR_ADDR",
        })?;
        let family = family.ok_or(DecodeError::Missing {
            what: "IPVS_DEST_ATTR_ADDR_FAMILY",
        })?;
        d.addr = parse_addr(&a, family, "IPVS_DEST_ATTR_ADDR")?;
        d.port = port.ok_or(DecodeError::Missing {
            what: "IPVS_DEST_ATTR_PORT",
        })?;
        Ok(d)
    }

    codec_emit!(
        "Destination",
        "Writes the payload of a nested `IPVS_CMD_ATTR_DEST`: family, address, port, method, weight, thresholds, the tunnel attributes (for tunnel forwarding, or when set), the counters when non-zero, the stats when present, and the unknown attributes last.",
        |s, w| s.write(w, true)
    );

    fn write_key(addr: &IpAddr, port: u16, w: &mut Writer<'_>) -> Result<(), EmitError> {
        w.u16(
            "IPVS_DEST_ATTR_ADDR_FAMILY",
            attr::DEST_ADDR_FAMILY,
            Family::of(addr).af(),
        )?;
        w.put("IPVS_DEST_ATTR_ADDR", attr::DEST_ADDR, &addr16(addr))?;
        w.be16("IPVS_DEST_ATTR_PORT", attr::DEST_PORT, port)
    }

    /// Writes a nested `IPVS_CMD_ATTR_DEST` with only the identity (family, address, port).
    pub(crate) fn write_key_nested(
        addr: &IpAddr,
        port: u16,
        w: &mut Writer<'_>,
    ) -> Result<(), EmitError> {
        w.nest("IPVS_CMD_ATTR_DEST", attr::CMD_DEST, |w| {
            Destination::write_key(addr, port, w)
        })
    }

    /// Writes the attributes; `counters` adds the reply-only counters and stats.
    pub(crate) fn write(&self, w: &mut Writer<'_>, counters: bool) -> Result<(), EmitError> {
        const N: Nest = Nest::Destination;
        Destination::write_key(&self.addr, self.port, w)?;
        let u32s = [
            (
                "IPVS_DEST_ATTR_FWD_METHOD",
                attr::DEST_FWD_METHOD,
                self.fwd.value(),
            ),
            ("IPVS_DEST_ATTR_WEIGHT", attr::DEST_WEIGHT, self.weight),
            (
                "IPVS_DEST_ATTR_U_THRESH",
                attr::DEST_U_THRESH,
                self.u_threshold,
            ),
            (
                "IPVS_DEST_ATTR_L_THRESH",
                attr::DEST_L_THRESH,
                self.l_threshold,
            ),
        ];
        for (what, k, v) in u32s {
            if known(N, k) {
                w.u32(what, k, v)?;
            }
        }
        let tunnel = self.fwd == FwdMethod::Tunnel
            || self.tun_type != TunnelType::Ipip
            || self.tun_port != 0
            || !self.tun_flags.is_empty();
        if tunnel {
            if known(N, attr::DEST_TUN_TYPE) {
                w.u8(
                    "IPVS_DEST_ATTR_TUN_TYPE",
                    attr::DEST_TUN_TYPE,
                    self.tun_type.value(),
                )?;
            }
            if known(N, attr::DEST_TUN_PORT) {
                w.be16(
                    "IPVS_DEST_ATTR_TUN_PORT",
                    attr::DEST_TUN_PORT,
                    self.tun_port,
                )?;
            }
            if known(N, attr::DEST_TUN_FLAGS) {
                w.u16(
                    "IPVS_DEST_ATTR_TUN_FLAGS",
                    attr::DEST_TUN_FLAGS,
                    self.tun_flags.bits(),
                )?;
            }
        }
        if counters {
            let conns = [
                (
                    "IPVS_DEST_ATTR_ACTIVE_CONNS",
                    attr::DEST_ACTIVE_CONNS,
                    self.active_conns,
                ),
                (
                    "IPVS_DEST_ATTR_INACT_CONNS",
                    attr::DEST_INACT_CONNS,
                    self.inact_conns,
                ),
                (
                    "IPVS_DEST_ATTR_PERSIST_CONNS",
                    attr::DEST_PERSIST_CONNS,
                    self.persist_conns,
                ),
            ];
            for (what, k, v) in conns {
                if v != 0 && known(N, k) {
                    w.u32(what, k, v)?;
                }
            }
            let kinds = (attr::DEST_STATS, attr::DEST_STATS64);
            write_stats_pair(w, N, &self.stats, &self.stats64, kinds)?;
        }
        w.raws(&self.unknown)
    }

    /// Writes a nested `IPVS_CMD_ATTR_DEST`.
    pub(crate) fn write_nested(&self, w: &mut Writer<'_>, counters: bool) -> Result<(), EmitError> {
        w.nest("IPVS_CMD_ATTR_DEST", attr::CMD_DEST, |w| {
            self.write(w, counters)
        })
    }
}

/// Sync daemon role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DaemonState {
    /// Sends sync messages.
    Master,
    /// Receives them.
    Backup,
    /// Any other value.
    Unknown(u32),
}

impl DaemonState {
    /// The kernel value (`IP_VS_STATE_*`).
    pub fn value(self) -> u32 {
        match self {
            DaemonState::Master => 1,
            DaemonState::Backup => 2,
            DaemonState::Unknown(v) => v,
        }
    }
    /// From the kernel value.
    pub fn from_value(v: u32) -> Self {
        match v {
            1 => DaemonState::Master,
            2 => DaemonState::Backup,
            v => DaemonState::Unknown(v),
        }
    }
}

/// A connection sync daemon's configuration (`IPVS_DAEMON_ATTR_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Daemon {
    /// Master or backup.
    pub state: DaemonState,
    /// Multicast interface.
    pub mcast_ifn: String,
    /// Sync id.
    pub syncid: u32,
    /// Maximum UDP payload (0: kernel default).
    pub sync_maxlen: u16,
    /// IPv4 multicast group (unset: 224.0.0.81).
    pub mcast_group: Option<Ipv4Addr>,
    /// IPv6 multicast group.
    pub mcast_group6: Option<Ipv6Addr>,
    /// UDP port (0: kernel default 8848).
    pub mcast_port: u16,
    /// Multicast TTL (0: kernel default 1).
    pub mcast_ttl: u8,
    /// Attributes of the daemon nest this crate does not know, kept raw and written back.
    pub unknown: Vec<RawAttr>,
}

impl Daemon {
    /// A daemon of `state` on `ifname` with the kernel's defaults for everything else.
    pub fn new(state: DaemonState, ifname: &str, syncid: u32) -> Self {
        Daemon {
            state,
            mcast_ifn: ifname.to_string(),
            syncid,
            sync_maxlen: 0,
            mcast_group: None,
            mcast_group6: None,
            mcast_port: 0,
            mcast_ttl: 0,
            unknown: Vec::new(),
        }
    }

    /// Parses the payload of a nested `IPVS_CMD_ATTR_DAEMON`.
    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        Daemon::parse_at(buf, 0)
    }

    pub(crate) fn parse_at(buf: &[u8], base: usize) -> Result<Self, DecodeError> {
        let mut d = Daemon::new(DaemonState::Unknown(0), "", 0);
        let mut have_state = false;
        for a in Attrs::new(buf, base) {
            let a = a?;
            match a.kind {
                k if !known(Nest::Daemon, k) => d.unknown.push(a.raw()),
                attr::DAEMON_STATE => {
                    d.state = DaemonState::from_value(a.u32("IPVS_DAEMON_ATTR_STATE")?);
                    have_state = true;
                }
                attr::DAEMON_MCAST_IFN => d.mcast_ifn = a.string(),
                attr::DAEMON_SYNC_ID => d.syncid = a.u32("IPVS_DAEMON_ATTR_SYNC_ID")?,
                attr::DAEMON_SYNC_MAXLEN => {
                    d.sync_maxlen = a.u16("IPVS_DAEMON_ATTR_SYNC_MAXLEN")?
                }
                attr::DAEMON_MCAST_GROUP => {
                    let v = Ipv4Addr::from(a.exact::<4>("IPVS_DAEMON_ATTR_MCAST_GROUP")?);
                    d.mcast_group = (!v.is_unspecified()).then_some(v);
                }
                attr::DAEMON_MCAST_GROUP6 => {
                    let v = Ipv6Addr::from(a.exact::<16>("IPVS_DAEMON_ATTR_MCAST_GROUP6")?);
                    d.mcast_group6 = (!v.is_unspecified()).then_some(v);
                }
                attr::DAEMON_MCAST_PORT => d.mcast_port = a.u16("IPVS_DAEMON_ATTR_MCAST_PORT")?,
                attr::DAEMON_MCAST_TTL => d.mcast_ttl = a.u8("IPVS_DAEMON_ATTR_MCAST_TTL")?,
                _ => d.unknown.push(a.raw()),
            }
        }
        if !have_state {
            return Err(DecodeError::Missing {
                what: "IPVS_DAEMON_ATTR_STATE",
            });
        }
        Ok(d)
    }

    codec_emit!(
        "Daemon",
        "Writes the payload of a nested `IPVS_CMD_ATTR_DAEMON`: state, interface, sync id, the optional attributes that are set, and the unknown attributes last.",
        |s, w| s.write(w, true)
    );

    /// Writes the attributes; without `full`, only the state (what stopping a daemon sends).
    fn write(&self, w: &mut Writer<'_>, full: bool) -> Result<(), EmitError> {
        const N: Nest = Nest::Daemon;
        w.u32(
            "IPVS_DAEMON_ATTR_STATE",
            attr::DAEMON_STATE,
            self.state.value(),
        )?;
        if !full {
            return Ok(());
        }
        if known(N, attr::DAEMON_MCAST_IFN) {
            w.string(
                "IPVS_DAEMON_ATTR_MCAST_IFN",
                attr::DAEMON_MCAST_IFN,
                &self.mcast_ifn,
            )?;
        }
        if known(N, attr::DAEMON_SYNC_ID) {
            w.u32(
                "IPVS_DAEMON_ATTR_SYNC_ID",
                attr::DAEMON_SYNC_ID,
                self.syncid,
            )?;
        }
        if self.sync_maxlen != 0 && known(N, attr::DAEMON_SYNC_MAXLEN) {
            w.u16(
                "IPVS_DAEMON_ATTR_SYNC_MAXLEN",
                attr::DAEMON_SYNC_MAXLEN,
                self.sync_maxlen,
            )?;
        }
        if let Some(g) = self.mcast_group
            && known(N, attr::DAEMON_MCAST_GROUP)
        {
            w.put(
                "IPVS_DAEMON_ATTR_MCAST_GROUP",
                attr::DAEMON_MCAST_GROUP,
                &g.octets(),
            )?;
        }
        if let Some(g) = self.mcast_group6
            && known(N, attr::DAEMON_MCAST_GROUP6)
        {
            w.put(
                "IPVS_DAEMON_ATTR_MCAST_GROUP6",
                attr::DAEMON_MCAST_GROUP6,
                &g.octets(),
            )?;
        }
        if self.mcast_port != 0 && known(N, attr::DAEMON_MCAST_PORT) {
            w.u16(
                "IPVS_DAEMON_ATTR_MCAST_PORT",
                attr::DAEMON_MCAST_PORT,
                self.mcast_port,
            )?;
        }
        if self.mcast_ttl != 0 && known(N, attr::DAEMON_MCAST_TTL) {
            w.u8(
                "IPVS_DAEMON_ATTR_MCAST_TTL",
                attr::DAEMON_MCAST_TTL,
                self.mcast_ttl,
            )?;
        }
        w.raws(&self.unknown)
    }

    pub(crate) fn write_nested(&self, w: &mut Writer<'_>, full: bool) -> Result<(), EmitError> {
        w.nest("IPVS_CMD_ATTR_DAEMON", attr::CMD_DAEMON, |w| {
            self.write(w, full)
        })
    }
}

/// Connection timeouts in seconds. In a set request, 0 leaves a value unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Timeouts {
    /// Established TCP.
    pub tcp: u32,
    /// TCP after FIN.
    pub tcp_fin: u32,
    /// UDP.
    pub udp: u32,
    /// Top-level attributes of the reply this crate does not know, kept raw and written back.
    pub unknown: Vec<RawAttr>,
}

impl Timeouts {
    /// Timeouts of `tcp`, `tcp_fin` and `udp` seconds (0: unchanged, in a set request).
    pub fn new(tcp: u32, tcp_fin: u32, udp: u32) -> Self {
        Timeouts {
            tcp,
            tcp_fin,
            udp,
            unknown: Vec::new(),
        }
    }

    /// Parses the attributes of a `GET_CONFIG` reply (after the genetlink header).
    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        Timeouts::parse_at(buf, 0)
    }

    pub(crate) fn parse_at(buf: &[u8], base: usize) -> Result<Self, DecodeError> {
        let mut t = Timeouts::default();
        for a in Attrs::new(buf, base) {
            let a = a?;
            match a.kind {
                k if !known(Nest::Config, k) => t.unknown.push(a.raw()),
                attr::CMD_TIMEOUT_TCP => t.tcp = a.u32("IPVS_CMD_ATTR_TIMEOUT_TCP")?,
                attr::CMD_TIMEOUT_TCP_FIN => t.tcp_fin = a.u32("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN")?,
                attr::CMD_TIMEOUT_UDP => t.udp = a.u32("IPVS_CMD_ATTR_TIMEOUT_UDP")?,
                _ => t.unknown.push(a.raw()),
            }
        }
        Ok(t)
    }

    codec_emit!(
        "Timeouts",
        "Writes the three attributes (zeros included: the kernel ignores them) and the unknown ones.",
        |s, w| s.write(w)
    );

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        for (what, k, v) in [
            ("IPVS_CMD_ATTR_TIMEOUT_TCP", attr::CMD_TIMEOUT_TCP, self.tcp),
            (
                "IPVS_CMD_ATTR_TIMEOUT_TCP_FIN",
                attr::CMD_TIMEOUT_TCP_FIN,
                self.tcp_fin,
            ),
            ("IPVS_CMD_ATTR_TIMEOUT_UDP", attr::CMD_TIMEOUT_UDP, self.udp),
        ] {
            if known(Nest::Config, k) {
                w.u32(what, k, v)?;
            }
        }
        w.raws(&self.unknown)
    }
}

/// IPVS version and connection table size.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Info {
    /// `IP_VS_VERSION_CODE`-style number, e.g. `0x010201` for 1.2.1.
    pub version: u32,
    /// Connection hash table size.
    pub conn_tab_size: u32,
    /// Top-level attributes of the reply this crate does not know, kept raw.
    pub unknown: Vec<RawAttr>,
}

impl Info {
    /// Parses the attributes of a `GET_INFO` reply (after the genetlink header).
    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        Info::parse_at(buf, 0)
    }

    fn parse_at(buf: &[u8], base: usize) -> Result<Self, DecodeError> {
        let mut i = Info::default();
        for a in Attrs::new(buf, base) {
            let a = a?;
            match a.kind {
                k if !known(Nest::Info, k) => i.unknown.push(a.raw()),
                attr::INFO_VERSION => i.version = a.u32("IPVS_INFO_ATTR_VERSION")?,
                attr::INFO_CONN_TAB_SIZE => {
                    i.conn_tab_size = a.u32("IPVS_INFO_ATTR_CONN_TAB_SIZE")?
                }
                _ => i.unknown.push(a.raw()),
            }
        }
        Ok(i)
    }

    codec_emit!(
        "Info",
        "Writes the two attributes and the unknown ones.",
        |s, w| s.write(w)
    );

    fn write(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        w.u32("IPVS_INFO_ATTR_VERSION", attr::INFO_VERSION, self.version)?;
        w.u32(
            "IPVS_INFO_ATTR_CONN_TAB_SIZE",
            attr::INFO_CONN_TAB_SIZE,
            self.conn_tab_size,
        )?;
        w.raws(&self.unknown)
    }
}

/// One IPVS message from the kernel: a genetlink payload (the 4-byte genetlink header, then attributes).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// A service (dump of `GET_SERVICE`, sent as `NEW_SERVICE`).
    Service(Service),
    /// A destination (dump of `GET_DEST`, sent as `NEW_DEST`).
    Destination(Destination),
    /// A sync daemon (dump of `GET_DAEMON`, sent as `NEW_DAEMON`).
    Daemon(Daemon),
    /// Timeouts (`GET_CONFIG`, answered as `SET_CONFIG`).
    Timeouts(Timeouts),
    /// Info (`GET_INFO`, answered as `SET_INFO`).
    Info(Info),
    /// A command this crate does not know, with its attributes kept raw.
    Other {
        /// The genetlink command.
        cmd: u8,
        /// Its attributes.
        attrs: Vec<RawAttr>,
    },
}

/// Finds the first top-level attribute `kind`.
fn find(buf: &[u8], base: usize, kind: u16) -> Result<Option<Attr<'_>>, DecodeError> {
    for a in Attrs::new(buf, base) {
        let a = a?;
        if a.kind == kind {
            return Ok(Some(a));
        }
    }
    Ok(None)
}

impl Reply {
    /// Decodes a genetlink payload (header included) sent by the IPVS family. A destination must name
    /// its address family (Linux 4.3 and later do).
    pub fn parse(genl_payload: &[u8]) -> Result<Self, DecodeError> {
        Reply::parse_with(genl_payload, None, true)
    }

    /// Like [`Reply::parse`]; `fallback` is the family of destination addresses when the kernel does
    /// not say; with `stats` false the stats of services and destinations are skipped.
    pub(crate) fn parse_with(
        genl_payload: &[u8],
        fallback: Option<Family>,
        stats: bool,
    ) -> Result<Self, DecodeError> {
        let genl = GenlHeader::parse(genl_payload)?;
        let body = genl_payload.get(GENL_HDRLEN..).unwrap_or_default();
        let need = |what| DecodeError::Missing { what };
        Ok(match genl.cmd {
            cmd::NEW_SERVICE | cmd::GET_SERVICE | cmd::SET_SERVICE => {
                let a = find(body, GENL_HDRLEN, attr::CMD_SERVICE)?
                    .ok_or(need("IPVS_CMD_ATTR_SERVICE"))?;
                Reply::Service(Service::parse_at(a.value, a.value_offset(), stats)?)
            }
            cmd::NEW_DEST | cmd::GET_DEST | cmd::SET_DEST => {
                let a =
                    find(body, GENL_HDRLEN, attr::CMD_DEST)?.ok_or(need("IPVS_CMD_ATTR_DEST"))?;
                Reply::Destination(Destination::parse_at(
                    a.value,
                    a.value_offset(),
                    fallback,
                    stats,
                )?)
            }
            cmd::NEW_DAEMON | cmd::GET_DAEMON => {
                let a = find(body, GENL_HDRLEN, attr::CMD_DAEMON)?
                    .ok_or(need("IPVS_CMD_ATTR_DAEMON"))?;
                Reply::Daemon(Daemon::parse_at(a.value, a.value_offset())?)
            }
            cmd::SET_CONFIG | cmd::GET_CONFIG => {
                Reply::Timeouts(Timeouts::parse_at(body, GENL_HDRLEN)?)
            }
            cmd::SET_INFO | cmd::GET_INFO => Reply::Info(Info::parse_at(body, GENL_HDRLEN)?),
            cmd => Reply::Other {
                cmd,
                attrs: Attrs::new(body, GENL_HDRLEN)
                    .map(|a| a.map(|a| a.raw()))
                    .collect::<Result<_, _>>()?,
            },
        })
    }

    codec_emit!(
        "Reply",
        "Encodes this reply as a genetlink payload (header included), as the kernel would send it.",
        |s, w| s.write(w)
    );

    fn write(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        let cmd = match self {
            Reply::Service(_) => cmd::NEW_SERVICE,
            Reply::Destination(_) => cmd::NEW_DEST,
            Reply::Daemon(_) => cmd::NEW_DAEMON,
            Reply::Timeouts(_) => cmd::SET_CONFIG,
            Reply::Info(_) => cmd::SET_INFO,
            Reply::Other { cmd, .. } => *cmd,
        };
        w.header(
            &GenlHeader {
                cmd,
                version: IPVS_GENL_VERSION,
            }
            .to_bytes(),
        )?;
        match self {
            Reply::Service(s) => s.write_nested(w, true),
            Reply::Destination(d) => d.write_nested(w, true),
            Reply::Daemon(d) => d.write_nested(w, true),
            Reply::Timeouts(t) => t.write(w),
            Reply::Info(i) => i.write(w),
            Reply::Other { attrs, .. } => w.raws(attrs),
        }
    }
}

/// One message of a datagram, as sorted by [`decode_datagram`].
// Transient (one per received message, consumed at once): boxing the reply would only add allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// A reply (part of a dump, or the answer of a get).
    Reply {
        /// Its sequence number.
        seq: u32,
        /// The reply.
        reply: Reply,
    },
    /// An `NLMSG_ERROR`: `errno` 0 is an acknowledgement.
    Ack {
        /// The request's sequence number.
        seq: u32,
        /// Positive errno, or 0.
        errno: i32,
    },
    /// `NLMSG_DONE`: the end of a dump.
    Done {
        /// The dump's sequence number.
        seq: u32,
        /// Positive errno if the dump failed, else 0.
        errno: i32,
    },
}

/// Decodes every message of a received datagram from the IPVS family (`family` is its id): replies,
/// errors (as positive errnos) and the end of a dump. `fallback` is the destinations' family when the
/// kernel does not send it; with `stats` false the stats attributes are skipped.
pub(crate) fn decode_datagram(
    buf: &[u8],
    family: u16,
    fallback: Option<Family>,
    stats: bool,
) -> Vec<Result<Decoded, DecodeError>> {
    let mut out = Vec::new();
    for m in super::Messages::new(buf) {
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                out.push(Err(e));
                break;
            }
        };
        out.push(match m.header.kind {
            super::NLMSG_ERROR => super::parse_error_payload(m.payload).map(|e| Decoded::Ack {
                seq: m.header.seq,
                errno: e,
            }),
            super::NLMSG_DONE => Ok(Decoded::Done {
                seq: m.header.seq,
                // A dump that failed half-way ends with NLMSG_DONE carrying a negative errno.
                errno: super::parse_error_payload(m.payload).unwrap_or(0),
            }),
            k if k == family => {
                Reply::parse_with(m.payload, fallback, stats).map(|r| Decoded::Reply {
                    seq: m.header.seq,
                    reply: r,
                })
            }
            k => Err(DecodeError::UnexpectedMessage {
                kind: k,
                cmd: m.payload.first().copied().unwrap_or(0),
            }),
        });
    }
    out
}

/// Parses a key-only service nest (what delete, zero and destination requests carry).
pub(crate) fn parse_key(a: &Attr<'_>) -> Result<ServiceKey, DecodeError> {
    Ok(Service::parse_at(a.value, a.value_offset(), false)?.key)
}

/// Top-level attribute `kind` of a genetlink body (which starts after the genetlink header).
pub(crate) fn find_top(body: &[u8], kind: u16) -> Result<Option<Attr<'_>>, DecodeError> {
    find(body, GENL_HDRLEN, kind)
}
