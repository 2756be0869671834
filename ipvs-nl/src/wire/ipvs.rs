//! The IPVS genetlink family: commands, attributes and typed values (facts from
//! `include/uapi/linux/ip_vs.h` and `net/netfilter/ipvs/ip_vs_ctl.c`).

use super::{Attr, AttrWriter, DecodeError, attrs};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `IPVS_GENL_NAME`.
pub const IPVS_GENL_NAME: &str = "IPVS";
/// `IPVS_GENL_VERSION`.
pub const IPVS_GENL_VERSION: u8 = 1;

/// `AF_INET`.
pub const AF_INET: u16 = 2;
/// `AF_INET6`.
pub const AF_INET6: u16 = 10;

/// `IPVS_CMD_*`.
#[allow(missing_docs)]
pub mod cmd {
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

/// Attribute numbers (`IPVS_CMD_ATTR_*`, `IPVS_SVC_ATTR_*`, ...).
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
        /// True for an IPv6 fwmark service.
        ipv6: bool,
    },
}

impl ServiceKey {
    /// `AF_INET` or `AF_INET6`.
    pub fn af(&self) -> u16 {
        let v6 = match self {
            ServiceKey::Inet { addr, .. } => addr.is_ipv6(),
            ServiceKey::Fwmark { ipv6, .. } => *ipv6,
        };
        if v6 { AF_INET6 } else { AF_INET }
    }
}

/// Service flags (`IP_VS_SVC_F_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ServiceFlags(pub u32);

impl ServiceFlags {
    /// Persistent service.
    pub const PERSISTENT: u32 = 0x0001;
    /// Hashed (set by the kernel).
    pub const HASHED: u32 = 0x0002;
    /// One-packet scheduling.
    pub const ONEPACKET: u32 = 0x0004;
    /// Scheduler flag 1 (sh: fallback; mh: fallback).
    pub const SCHED1: u32 = 0x0008;
    /// Scheduler flag 2 (sh/mh: port).
    pub const SCHED2: u32 = 0x0010;
    /// Scheduler flag 3.
    pub const SCHED3: u32 = 0x0020;

    /// True when every bit of `bit` is set.
    pub fn has(self, bit: u32) -> bool {
        self.0 & bit == bit
    }
}

/// Traffic counters and rates. From `IPVS_*_ATTR_STATS` (32-bit counters) or `..._STATS64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

impl Stats {
    /// Parses the nested stats attributes (counters of 4 or 8 bytes; unknown attributes skipped).
    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut s = Stats::default();
        for a in attrs(buf) {
            let a = a?;
            let slot = match a.kind {
                attr::STATS_CONNS => &mut s.conns,
                attr::STATS_INPKTS => &mut s.inpkts,
                attr::STATS_OUTPKTS => &mut s.outpkts,
                attr::STATS_INBYTES => &mut s.inbytes,
                attr::STATS_OUTBYTES => &mut s.outbytes,
                attr::STATS_CPS => &mut s.cps,
                attr::STATS_INPPS => &mut s.inpps,
                attr::STATS_OUTPPS => &mut s.outpps,
                attr::STATS_INBPS => &mut s.inbps,
                attr::STATS_OUTBPS => &mut s.outbps,
                _ => continue,
            };
            *slot = a.u64_or_u32("IPVS_STATS_ATTR")?;
        }
        Ok(s)
    }

    /// Emits as a nested attribute; `wide` selects the 64-bit (`STATS64`) encoding.
    pub fn emit(&self, w: &mut AttrWriter<'_>, kind: u16, wide: bool) {
        let n = w.begin_nested(kind);
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
            if wide || is64 {
                w.put(k, &v.to_ne_bytes());
            } else {
                w.u32(k, v as u32);
            }
        }
        w.end_nested(n);
    }
}

/// A virtual service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// What identifies it.
    pub key: ServiceKey,
    /// Scheduler name (`wlc`, `rr`, `sh`, `mh`, ...).
    pub scheduler: String,
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
}

impl Service {
    /// A service with ipvsadm's defaults: scheduler `wlc`, no flags, timeout 0, host netmask.
    pub fn new(key: ServiceKey) -> Self {
        Service {
            key,
            scheduler: "wlc".to_string(),
            flags: ServiceFlags::default(),
            timeout: 0,
            netmask: if key.af() == AF_INET6 {
                128
            } else {
                0xffff_ffff
            },
            pe_name: None,
            stats: None,
            stats64: None,
        }
    }

    /// The best statistics available (64-bit preferred).
    pub fn best_stats(&self) -> Stats {
        self.stats64.or(self.stats).unwrap_or_default()
    }

    /// Parses the payload of a nested `IPVS_CMD_ATTR_SERVICE`.
    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        Service::parse_with(buf, true)
    }

    /// Like [`Service::parse`]; with `stats` false the stats attributes are skipped (left `None`).
    pub fn parse_with(buf: &[u8], with_stats: bool) -> Result<Self, DecodeError> {
        let mut af = None;
        let mut protocol = None;
        let mut addr = None;
        let mut port = None;
        let mut fwmark = None;
        let mut scheduler = None;
        let mut flags = 0;
        let mut timeout = 0;
        let mut netmask_raw = None;
        let mut pe_name = None;
        let mut stats = None;
        let mut stats64 = None;
        for a in attrs(buf) {
            let a = a?;
            match a.kind {
                attr::SVC_AF => af = Some(a.u16("IPVS_SVC_ATTR_AF")?),
                attr::SVC_PROTOCOL => protocol = Some(a.u16("IPVS_SVC_ATTR_PROTOCOL")?),
                attr::SVC_ADDR => addr = Some(a),
                attr::SVC_PORT => port = Some(a.be16("IPVS_SVC_ATTR_PORT")?),
                attr::SVC_FWMARK => fwmark = Some(a.u32("IPVS_SVC_ATTR_FWMARK")?),
                attr::SVC_SCHED_NAME => scheduler = Some(a.string()),
                // struct ip_vs_flags { flags, mask }: the flags come first.
                attr::SVC_FLAGS => {
                    flags = u32::from_ne_bytes(a.prefix::<4>("IPVS_SVC_ATTR_FLAGS")?)
                }
                attr::SVC_TIMEOUT => timeout = a.u32("IPVS_SVC_ATTR_TIMEOUT")?,
                attr::SVC_NETMASK => netmask_raw = Some(a.exact::<4>("IPVS_SVC_ATTR_NETMASK")?),
                attr::SVC_STATS if with_stats => stats = Some(Stats::parse(a.value)?),
                attr::SVC_PE_NAME => pe_name = Some(a.string()).filter(|s| !s.is_empty()),
                attr::SVC_STATS64 if with_stats => stats64 = Some(Stats::parse(a.value)?),
                _ => {}
            }
        }
        let af = af.ok_or(DecodeError::Missing {
            what: "IPVS_SVC_ATTR_AF",
        })?;
        let ipv6 = match af {
            AF_INET => false,
            AF_INET6 => true,
            other => {
                return Err(DecodeError::Invalid {
                    what: "IPVS_SVC_ATTR_AF",
                    value: other.into(),
                });
            }
        };
        // The kernel sends both a (zero) fwmark and an address for address services.
        let key = match (fwmark.filter(|&m| m != 0 || addr.is_none()), addr) {
            (Some(mark), _) => ServiceKey::Fwmark { mark, ipv6 },
            (None, Some(a)) => ServiceKey::Inet {
                protocol: Protocol::from_number(protocol.ok_or(DecodeError::Missing {
                    what: "IPVS_SVC_ATTR_PROTOCOL",
                })?),
                addr: parse_addr(&a, af, "IPVS_SVC_ATTR_ADDR")?,
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
        let netmask = match netmask_raw {
            // IPv4: a __be32 mask; IPv6: a prefix length as a host-order u32 (ip_vs_ctl.c).
            Some(b) if !ipv6 => u32::from_be_bytes(b),
            Some(b) => u32::from_ne_bytes(b),
            None if ipv6 => 128,
            None => 0xffff_ffff,
        };
        Ok(Service {
            key,
            scheduler: scheduler.unwrap_or_default(),
            flags: ServiceFlags(flags),
            timeout,
            netmask,
            pe_name,
            stats,
            stats64,
        })
    }

    /// Emits the identity attributes (af + fwmark, or af + protocol + addr + port).
    pub fn emit_key(key: &ServiceKey, w: &mut AttrWriter<'_>) {
        w.u16(attr::SVC_AF, key.af());
        match key {
            ServiceKey::Fwmark { mark, .. } => w.u32(attr::SVC_FWMARK, *mark),
            ServiceKey::Inet {
                protocol,
                addr,
                port,
            } => {
                w.u16(attr::SVC_PROTOCOL, protocol.number());
                w.put(attr::SVC_ADDR, &addr16(addr));
                w.be16(attr::SVC_PORT, *port);
            }
        }
    }

    /// Emits a nested `IPVS_CMD_ATTR_SERVICE` with only the identity.
    pub fn emit_key_nested(key: &ServiceKey, w: &mut AttrWriter<'_>) {
        let n = w.begin_nested(attr::CMD_SERVICE);
        Service::emit_key(key, w);
        w.end_nested(n);
    }

    /// Emits a nested `IPVS_CMD_ATTR_SERVICE` with every attribute the kernel needs to add or edit it
    /// (and stats when present, so a reply can be re-encoded for tests).
    pub fn emit_nested(&self, w: &mut AttrWriter<'_>) {
        let n = w.begin_nested(attr::CMD_SERVICE);
        Service::emit_key(&self.key, w);
        w.string(attr::SVC_SCHED_NAME, &self.scheduler);
        if let Some(pe) = &self.pe_name {
            w.string(attr::SVC_PE_NAME, pe);
        }
        let mut fl = [0u8; 8];
        fl[..4].copy_from_slice(&self.flags.0.to_ne_bytes());
        fl[4..].copy_from_slice(&u32::MAX.to_ne_bytes());
        w.put(attr::SVC_FLAGS, &fl);
        w.u32(attr::SVC_TIMEOUT, self.timeout);
        if self.key.af() == AF_INET6 {
            w.u32(attr::SVC_NETMASK, self.netmask);
        } else {
            w.put(attr::SVC_NETMASK, &self.netmask.to_be_bytes());
        }
        if let Some(s) = &self.stats {
            s.emit(w, attr::SVC_STATS, false);
        }
        if let Some(s) = &self.stats64 {
            s.emit(w, attr::SVC_STATS64, true);
        }
        w.end_nested(n);
    }
}

/// A 16-byte `union nf_inet_addr` holding `addr`.
pub fn addr16(addr: &IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match addr {
        IpAddr::V4(a) => b[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => b.copy_from_slice(&a.octets()),
    }
    b
}

fn parse_addr(a: &Attr<'_>, af: u16, what: &'static str) -> Result<IpAddr, DecodeError> {
    match af {
        AF_INET => Ok(IpAddr::V4(Ipv4Addr::from(a.prefix::<4>(what)?))),
        AF_INET6 => Ok(IpAddr::V6(Ipv6Addr::from(a.prefix::<16>(what)?))),
        other => Err(DecodeError::Invalid {
            what,
            value: other.into(),
        }),
    }
}

/// How packets reach a destination (`IP_VS_CONN_F_*` forwarding bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FwdMethod {
    /// NAT (`-m`).
    Masq,
    /// Local node.
    Local,
    /// IP tunnelling (`-i`).
    Tunnel,
    /// Direct routing, "gatewaying" (`-g`).
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TunnelType {
    /// IP in IP.
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

/// Tunnel checksum flag: no checksum.
pub const TUN_FLAG_NOCSUM: u16 = 0;
/// Tunnel checksum flag: checksum (`IP_VS_TUNNEL_ENCAP_FLAG_CSUM`).
pub const TUN_FLAG_CSUM: u16 = 1;
/// Tunnel checksum flag: remote checksum offload (`IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM`).
pub const TUN_FLAG_REMCSUM: u16 = 2;

/// A real server of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Its address (may be of another family than the service's, for tunnels).
    pub addr: IpAddr,
    /// Its port.
    pub port: u16,
    /// Forwarding method.
    pub fwd: FwdMethod,
    /// Weight.
    pub weight: u32,
    /// Upper connection threshold (0: none).
    pub u_threshold: u32,
    /// Lower connection threshold (0: none).
    pub l_threshold: u32,
    /// Tunnel type (tunnel forwarding only).
    pub tun_type: TunnelType,
    /// Tunnel (GUE) port.
    pub tun_port: u16,
    /// Tunnel flags (`TUN_FLAG_*`).
    pub tun_flags: u16,
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
}

impl Destination {
    /// A destination with ipvsadm's defaults: masquerading, weight 1, no thresholds.
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
            tun_flags: 0,
            active_conns: 0,
            inact_conns: 0,
            persist_conns: 0,
            stats: None,
            stats64: None,
        }
    }

    /// The best statistics available (64-bit preferred).
    pub fn best_stats(&self) -> Stats {
        self.stats64.or(self.stats).unwrap_or_default()
    }

    /// Parses the payload of a nested `IPVS_CMD_ATTR_DEST`. `service_af` is used when the reply has no
    /// `IPVS_DEST_ATTR_ADDR_FAMILY` (kernels before 4.3).
    pub fn parse(buf: &[u8], service_af: u16) -> Result<Self, DecodeError> {
        Destination::parse_with(buf, service_af, true)
    }

    /// Like [`Destination::parse`]; with `stats` false the stats attributes are skipped (left `None`).
    pub fn parse_with(buf: &[u8], service_af: u16, with_stats: bool) -> Result<Self, DecodeError> {
        let mut d = Destination::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        let mut addr = None;
        let mut af = service_af;
        let mut port = None;
        for a in attrs(buf) {
            let a = a?;
            match a.kind {
                attr::DEST_ADDR => addr = Some(a),
                attr::DEST_PORT => port = Some(a.be16("IPVS_DEST_ATTR_PORT")?),
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
                attr::DEST_STATS if with_stats => d.stats = Some(Stats::parse(a.value)?),
                attr::DEST_ADDR_FAMILY => af = a.u16("IPVS_DEST_ATTR_ADDR_FAMILY")?,
                attr::DEST_STATS64 if with_stats => d.stats64 = Some(Stats::parse(a.value)?),
                attr::DEST_TUN_TYPE => {
                    d.tun_type = TunnelType::from_value(a.u8("IPVS_DEST_ATTR_TUN_TYPE")?)
                }
                attr::DEST_TUN_PORT => d.tun_port = a.be16("IPVS_DEST_ATTR_TUN_PORT")?,
                attr::DEST_TUN_FLAGS => d.tun_flags = a.u16("IPVS_DEST_ATTR_TUN_FLAGS")?,
                _ => {}
            }
        }
        let a = addr.ok_or(DecodeError::Missing {
            what: "IPVS_DEST_ATTR_ADDR",
        })?;
        d.addr = parse_addr(&a, af, "IPVS_DEST_ATTR_ADDR")?;
        d.port = port.ok_or(DecodeError::Missing {
            what: "IPVS_DEST_ATTR_PORT",
        })?;
        Ok(d)
    }

    /// Emits a nested `IPVS_CMD_ATTR_DEST` with only the identity (address, port, family).
    pub fn emit_key_nested(addr: &IpAddr, port: u16, w: &mut AttrWriter<'_>) {
        let n = w.begin_nested(attr::CMD_DEST);
        w.u16(
            attr::DEST_ADDR_FAMILY,
            if addr.is_ipv6() { AF_INET6 } else { AF_INET },
        );
        w.put(attr::DEST_ADDR, &addr16(addr));
        w.be16(attr::DEST_PORT, port);
        w.end_nested(n);
    }

    /// Emits a nested `IPVS_CMD_ATTR_DEST` with every attribute needed to add or edit it (and the reply-only
    /// counters when non-zero, so replies can be re-encoded for tests).
    pub fn emit_nested(&self, w: &mut AttrWriter<'_>) {
        let n = w.begin_nested(attr::CMD_DEST);
        w.u16(
            attr::DEST_ADDR_FAMILY,
            if self.addr.is_ipv6() {
                AF_INET6
            } else {
                AF_INET
            },
        );
        w.put(attr::DEST_ADDR, &addr16(&self.addr));
        w.be16(attr::DEST_PORT, self.port);
        w.u32(attr::DEST_FWD_METHOD, self.fwd.value());
        w.u32(attr::DEST_WEIGHT, self.weight);
        w.u32(attr::DEST_U_THRESH, self.u_threshold);
        w.u32(attr::DEST_L_THRESH, self.l_threshold);
        if self.fwd == FwdMethod::Tunnel {
            w.u8(attr::DEST_TUN_TYPE, self.tun_type.value());
            w.be16(attr::DEST_TUN_PORT, self.tun_port);
            w.u16(attr::DEST_TUN_FLAGS, self.tun_flags);
        }
        if self.active_conns != 0 {
            w.u32(attr::DEST_ACTIVE_CONNS, self.active_conns);
        }
        if self.inact_conns != 0 {
            w.u32(attr::DEST_INACT_CONNS, self.inact_conns);
        }
        if self.persist_conns != 0 {
            w.u32(attr::DEST_PERSIST_CONNS, self.persist_conns);
        }
        if let Some(s) = &self.stats {
            s.emit(w, attr::DEST_STATS, false);
        }
        if let Some(s) = &self.stats64 {
            s.emit(w, attr::DEST_STATS64, true);
        }
        w.end_nested(n);
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
        }
    }

    /// Parses the payload of a nested `IPVS_CMD_ATTR_DAEMON`.
    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Daemon::new(DaemonState::Unknown(0), "", 0);
        let mut have_state = false;
        for a in attrs(buf) {
            let a = a?;
            match a.kind {
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
                _ => {}
            }
        }
        if !have_state {
            return Err(DecodeError::Missing {
                what: "IPVS_DAEMON_ATTR_STATE",
            });
        }
        Ok(d)
    }

    /// Emits a nested `IPVS_CMD_ATTR_DAEMON`; `full` adds the optional attributes that are set.
    pub fn emit_nested(&self, w: &mut AttrWriter<'_>, full: bool) {
        let n = w.begin_nested(attr::CMD_DAEMON);
        w.u32(attr::DAEMON_STATE, self.state.value());
        if full {
            w.string(attr::DAEMON_MCAST_IFN, &self.mcast_ifn);
            w.u32(attr::DAEMON_SYNC_ID, self.syncid);
            if self.sync_maxlen != 0 {
                w.u16(attr::DAEMON_SYNC_MAXLEN, self.sync_maxlen);
            }
            if let Some(g) = self.mcast_group {
                w.put(attr::DAEMON_MCAST_GROUP, &g.octets());
            }
            if let Some(g) = self.mcast_group6 {
                w.put(attr::DAEMON_MCAST_GROUP6, &g.octets());
            }
            if self.mcast_port != 0 {
                w.u16(attr::DAEMON_MCAST_PORT, self.mcast_port);
            }
            if self.mcast_ttl != 0 {
                w.u8(attr::DAEMON_MCAST_TTL, self.mcast_ttl);
            }
        }
        w.end_nested(n);
    }
}

/// Connection timeouts in seconds. In a set request, 0 leaves a value unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timeouts {
    /// Established TCP.
    pub tcp: u32,
    /// TCP after FIN.
    pub tcp_fin: u32,
    /// UDP.
    pub udp: u32,
}

impl Timeouts {
    /// Parses the top-level attributes of a `GET_CONFIG` reply.
    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut t = Timeouts::default();
        for a in attrs(buf) {
            let a = a?;
            match a.kind {
                attr::CMD_TIMEOUT_TCP => t.tcp = a.u32("IPVS_CMD_ATTR_TIMEOUT_TCP")?,
                attr::CMD_TIMEOUT_TCP_FIN => t.tcp_fin = a.u32("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN")?,
                attr::CMD_TIMEOUT_UDP => t.udp = a.u32("IPVS_CMD_ATTR_TIMEOUT_UDP")?,
                _ => {}
            }
        }
        Ok(t)
    }

    /// Emits the three top-level attributes (zeros included: the kernel ignores them).
    pub fn emit(&self, w: &mut AttrWriter<'_>) {
        w.u32(attr::CMD_TIMEOUT_TCP, self.tcp);
        w.u32(attr::CMD_TIMEOUT_TCP_FIN, self.tcp_fin);
        w.u32(attr::CMD_TIMEOUT_UDP, self.udp);
    }
}

/// IPVS version and connection table size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Info {
    /// `IP_VS_VERSION_CODE`-style number, e.g. `0x010201` for 1.2.1.
    pub version: u32,
    /// Connection hash table size.
    pub conn_tab_size: u32,
}

impl Info {
    /// Parses a `GET_INFO` reply's attributes.
    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut i = Info::default();
        for a in attrs(buf) {
            let a = a?;
            match a.kind {
                attr::INFO_VERSION => i.version = a.u32("IPVS_INFO_ATTR_VERSION")?,
                attr::INFO_CONN_TAB_SIZE => {
                    i.conn_tab_size = a.u32("IPVS_INFO_ATTR_CONN_TAB_SIZE")?
                }
                _ => {}
            }
        }
        Ok(i)
    }

    /// Emits the two attributes.
    pub fn emit(&self, w: &mut AttrWriter<'_>) {
        w.u32(attr::INFO_VERSION, self.version);
        w.u32(attr::INFO_CONN_TAB_SIZE, self.conn_tab_size);
    }
}

/// One decoded IPVS reply message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// A service (dump of `GET_SERVICE`).
    Service(Service),
    /// A destination (dump of `GET_DEST`).
    Destination(Destination),
    /// A sync daemon (dump of `GET_DAEMON`).
    Daemon(Daemon),
    /// Timeouts (`GET_CONFIG`).
    Timeouts(Timeouts),
    /// Info (`GET_INFO`).
    Info(Info),
    /// A command this crate does not know, kept as its number.
    Other(u8),
}

/// Finds the payload of the first top-level attribute `kind`.
fn find(buf: &[u8], kind: u16) -> Result<Option<&[u8]>, DecodeError> {
    for a in attrs(buf) {
        let a = a?;
        if a.kind == kind {
            return Ok(Some(a.value));
        }
    }
    Ok(None)
}

impl Reply {
    /// Decodes a genetlink payload (header included) sent by the IPVS family. `service_af` is the family
    /// assumed for destination addresses when the kernel does not say.
    pub fn parse(genl_payload: &[u8], service_af: u16) -> Result<Self, DecodeError> {
        Reply::parse_with(genl_payload, service_af, true)
    }

    /// Like [`Reply::parse`]; with `stats` false the stats attributes of services and destinations are
    /// skipped.
    pub fn parse_with(
        genl_payload: &[u8],
        service_af: u16,
        stats: bool,
    ) -> Result<Self, DecodeError> {
        let genl = super::GenlHeader::parse(genl_payload)?;
        let body = &genl_payload[super::GENL_HDRLEN..];
        let need = |what| DecodeError::Missing { what };
        Ok(match genl.cmd {
            cmd::NEW_SERVICE | cmd::GET_SERVICE | cmd::SET_SERVICE => {
                Reply::Service(Service::parse_with(
                    find(body, attr::CMD_SERVICE)?.ok_or(need("IPVS_CMD_ATTR_SERVICE"))?,
                    stats,
                )?)
            }
            cmd::NEW_DEST | cmd::GET_DEST | cmd::SET_DEST => {
                Reply::Destination(Destination::parse_with(
                    find(body, attr::CMD_DEST)?.ok_or(need("IPVS_CMD_ATTR_DEST"))?,
                    service_af,
                    stats,
                )?)
            }
            cmd::NEW_DAEMON | cmd::GET_DAEMON => Reply::Daemon(Daemon::parse(
                find(body, attr::CMD_DAEMON)?.ok_or(need("IPVS_CMD_ATTR_DAEMON"))?,
            )?),
            cmd::SET_CONFIG | cmd::GET_CONFIG => Reply::Timeouts(Timeouts::parse(body)?),
            cmd::SET_INFO | cmd::GET_INFO => Reply::Info(Info::parse(body)?),
            other => Reply::Other(other),
        })
    }

    /// Encodes this reply as a genetlink payload (header included), as the kernel would send it.
    pub fn emit(&self) -> Vec<u8> {
        let mut out = vec![0u8; super::GENL_HDRLEN];
        let cmd = {
            let mut w = AttrWriter::new(&mut out);
            match self {
                Reply::Service(s) => {
                    s.emit_nested(&mut w);
                    cmd::NEW_SERVICE
                }
                Reply::Destination(d) => {
                    d.emit_nested(&mut w);
                    cmd::NEW_DEST
                }
                Reply::Daemon(d) => {
                    d.emit_nested(&mut w, true);
                    cmd::NEW_DAEMON
                }
                Reply::Timeouts(t) => {
                    t.emit(&mut w);
                    cmd::SET_CONFIG
                }
                Reply::Info(i) => {
                    i.emit(&mut w);
                    cmd::SET_INFO
                }
                Reply::Other(c) => *c,
            }
        };
        super::GenlHeader {
            cmd,
            version: IPVS_GENL_VERSION,
        }
        .emit(&mut out);
        out
    }
}

/// Decodes every message of a received datagram from the IPVS family (`family` is its id): replies,
/// errors (as positive errnos) and the end of a dump. Used by the socket layer and the fuzz target.
pub fn decode_datagram(
    buf: &[u8],
    family: u16,
    service_af: u16,
) -> Vec<Result<Decoded, DecodeError>> {
    decode_datagram_with(buf, family, service_af, true)
}

/// Like [`decode_datagram`]; with `stats` false the stats attributes are skipped.
pub fn decode_datagram_with(
    buf: &[u8],
    family: u16,
    service_af: u16,
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
                Reply::parse_with(m.payload, service_af, stats).map(|r| Decoded::Reply {
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

/// One message of a datagram, as sorted by [`decode_datagram`].
// Transient (one per received message, consumed at once): boxing the reply would only add allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
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
