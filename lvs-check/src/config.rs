//! What the engine checks: virtual servers, their real servers and sorry server, and the checkers, with
//! keepalived 2.2.7's options and defaults (`check_data.c`, `check_parser.c`, `check_api.c`).
//!
//! Timing options exist at three levels, as in keepalived: a virtual server sets them for its real
//! servers, a real server for its checkers, a checker for itself. Real server and checker fields are
//! `Option`s ("not set here"); [`VirtualServer`] fields carry keepalived's defaults. The engine resolves
//! each checker's values the way keepalived's `validate_check_config` does.

use ipvs_nl::{
    Family, FwdMethod, Protocol, Scheduler, ServiceFlags, ServiceKey, TunnelFlags, TunnelType,
};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// keepalived's default `delay_loop` (`KEEPALIVED_DEFAULT_DELAY`).
pub const DEFAULT_DELAY_LOOP: Duration = Duration::from_secs(60);
/// keepalived's default `connect_timeout` of a virtual server.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// `IPVS_SVC_PERSISTENT_TIMEOUT`: what `persistence_granularity` alone implies.
pub const DEFAULT_PERSISTENCE_TIMEOUT: u32 = 360;

/// A command to run (`notify_up`, `notify_down`, `quorum_up`, `quorum_down`, `misc_path`): the program
/// and its arguments, executed directly (no shell), as keepalived does for an executable path.
pub type Script = Vec<String>;

/// How packets reach a real server (`lb_kind` / `lvs_method`), with the tunnel options of `TUN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Forwarding {
    /// NAT, DR or TUN.
    pub method: FwdMethod,
    /// Tunnel type (`TUN type ipip|gue|gre`).
    pub tun_type: TunnelType,
    /// GUE port.
    pub tun_port: u16,
    /// Tunnel checksum flags.
    pub tun_flags: TunnelFlags,
}

impl Forwarding {
    /// A forwarding method without tunnel options.
    pub fn new(method: FwdMethod) -> Self {
        Forwarding {
            method,
            tun_type: TunnelType::Ipip,
            tun_port: 0,
            tun_flags: TunnelFlags::empty(),
        }
    }
}

impl Default for Forwarding {
    /// keepalived's default when nothing is set: NAT.
    fn default() -> Self {
        Forwarding::new(FwdMethod::Masq)
    }
}

/// HTTP version of `HTTP_GET`/`SSL_GET` requests (`http_protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum HttpProtocol {
    /// `GET ... HTTP/1.0` (the default).
    #[default]
    Http10,
    /// `HTTP/1.0` with `Connection: close` (`1.0C`).
    Http10Close,
    /// `HTTP/1.1` with `Connection: close`.
    Http11,
}

/// The accepted status codes of a URL (`status_code 200 301-302`), 100 to 599.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusCodes([u64; 8]);

impl StatusCodes {
    /// No code.
    pub const fn empty() -> Self {
        StatusCodes([0; 8])
    }

    /// keepalived's default when none is given: 200 to 299.
    pub fn default_codes() -> Self {
        let mut s = StatusCodes::empty();
        s.insert_range(200, 299);
        s
    }

    /// Adds `min..=max` (codes outside 100..=599 are ignored).
    pub fn insert_range(&mut self, min: u16, max: u16) {
        for c in min.max(100)..=max.min(599) {
            let i = usize::from(c - 100);
            self.0[i / 64] |= 1 << (i % 64);
        }
    }

    /// True when `code` is accepted.
    pub fn contains(&self, code: u16) -> bool {
        if !(100..=599).contains(&code) {
            return false;
        }
        let i = usize::from(code - 100);
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    /// True when no code is set.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }
}

impl Default for StatusCodes {
    fn default() -> Self {
        StatusCodes::default_codes()
    }
}

/// One `url { }` block of `HTTP_GET`/`SSL_GET`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Url {
    /// `path`.
    pub path: String,
    /// `digest`: the MD5 of the body (what `genhash` prints).
    pub digest: Option<[u8; 16]>,
    /// `status_code` (default 200-299).
    pub status: StatusCodes,
    /// `virtualhost` of this URL.
    pub virtualhost: Option<String>,
}

impl Url {
    /// A URL expecting 200-299 and no digest.
    pub fn new(path: &str) -> Self {
        Url {
            path: path.to_string(),
            digest: None,
            status: StatusCodes::default_codes(),
            virtualhost: None,
        }
    }
}

/// `HTTP_GET` / `SSL_GET` options.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct HttpCheck {
    /// The URLs, checked one per `delay_loop` in turn; the server is up when all succeeded.
    pub urls: Vec<Url>,
    /// `virtualhost` of the checker.
    pub virtualhost: Option<String>,
    /// `http_protocol`.
    pub protocol: HttpProtocol,
    /// `fast_recovery`: while down with no known failure, check again at once.
    pub fast_recovery: bool,
    /// `enable_sni` (`SSL_GET`): send the virtual host as TLS server name.
    pub enable_sni: bool,
}

/// `MISC_CHECK` options.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct MiscCheck {
    /// `misc_path`: program and arguments.
    pub path: Script,
    /// `misc_timeout` (default: the virtual server's `delay_loop`).
    pub timeout: Option<Duration>,
    /// `misc_dynamic`: exit status 2 to 255 means up with weight status - 2.
    pub dynamic: bool,
}

impl MiscCheck {
    /// A script check.
    pub fn new(path: Script) -> Self {
        MiscCheck {
            path,
            timeout: None,
            dynamic: false,
        }
    }
}

/// The kind of a checker.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CheckKind {
    /// `TCP_CHECK`: a TCP connection is made and closed.
    Tcp,
    /// `HTTP_GET`.
    Http(HttpCheck),
    /// `SSL_GET`: HTTP over TLS (no certificate verification, as keepalived without an `SSL` block).
    Ssl(HttpCheck),
    /// `MISC_CHECK`.
    Misc(MiscCheck),
}

/// One checker of a real server, with the common options (`connect_ip`, `connect_port`, `bindto`,
/// `bind_port`, `connect_timeout`, `retry`/`nb_get_retry`, `delay_before_retry`, `delay_loop`,
/// `warmup`, `alpha`). `None` takes the value from the real server, then the virtual server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Checker {
    /// What it does.
    pub kind: CheckKind,
    /// `connect_ip` (default: the real server's address).
    pub connect_ip: Option<IpAddr>,
    /// `connect_port` (default: the real server's port).
    pub connect_port: Option<u16>,
    /// `bindto`.
    pub bindto: Option<IpAddr>,
    /// `bind_port`.
    pub bind_port: Option<u16>,
    /// `connect_timeout`.
    pub connect_timeout: Option<Duration>,
    /// `retry` (`nb_get_retry`): failures tolerated before the checker fails (default 1, MISC 0).
    pub retry: Option<u32>,
    /// `delay_before_retry` (default 1 s, HTTP/SSL 3 s).
    pub delay_before_retry: Option<Duration>,
    /// `delay_loop`.
    pub delay_loop: Option<Duration>,
    /// `warmup`: the first check runs at a random time in `[0, warmup]` after 1 s (default: delay_loop).
    pub warmup: Option<Duration>,
    /// `alpha`: start down until the first success.
    pub alpha: Option<bool>,
}

impl Checker {
    /// A checker of `kind` with every common option inherited.
    pub fn new(kind: CheckKind) -> Self {
        Checker {
            kind,
            connect_ip: None,
            connect_port: None,
            bindto: None,
            bind_port: None,
            connect_timeout: None,
            retry: None,
            delay_before_retry: None,
            delay_loop: None,
            warmup: None,
            alpha: None,
        }
    }
}

/// A real server (`real_server IP PORT { }`), or a sorry server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RealServer {
    /// Address and port (the port is the virtual server's for DR/TUN, 0 for fwmark DR/TUN).
    pub addr: SocketAddr,
    /// `weight` (default: the virtual server's `weight`, 1).
    pub weight: Option<u32>,
    /// `lvs_method` of this server (default: the virtual server's `lb_kind`).
    pub forwarding: Option<Forwarding>,
    /// `uthreshold`.
    pub u_threshold: u32,
    /// `lthreshold`.
    pub l_threshold: u32,
    /// `inhibit_on_failure`: weight 0 instead of removal (default: the virtual server's).
    pub inhibit_on_failure: Option<bool>,
    /// `notify_up`.
    pub notify_up: Option<Script>,
    /// `notify_down`.
    pub notify_down: Option<Script>,
    /// `alpha`.
    pub alpha: Option<bool>,
    /// `retry`.
    pub retry: Option<u32>,
    /// `delay_before_retry`.
    pub delay_before_retry: Option<Duration>,
    /// `warmup`.
    pub warmup: Option<Duration>,
    /// `connect_timeout`.
    pub connect_timeout: Option<Duration>,
    /// `delay_loop`.
    pub delay_loop: Option<Duration>,
    /// `virtualhost` for its HTTP/SSL checkers.
    pub virtualhost: Option<String>,
    /// The checkers. None: the server is always up.
    pub checkers: Vec<Checker>,
}

impl RealServer {
    /// A real server at `addr` with everything inherited and no checker.
    pub fn new(addr: SocketAddr) -> Self {
        RealServer {
            addr,
            weight: None,
            forwarding: None,
            u_threshold: 0,
            l_threshold: 0,
            inhibit_on_failure: None,
            notify_up: None,
            notify_down: None,
            alpha: None,
            retry: None,
            delay_before_retry: None,
            warmup: None,
            connect_timeout: None,
            delay_loop: None,
            virtualhost: None,
            checkers: Vec::new(),
        }
    }
}

/// What a virtual server is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Target {
    /// `virtual_server IP PORT` with `protocol`.
    Addr {
        /// Address and port.
        addr: SocketAddr,
        /// `protocol TCP|UDP|SCTP`.
        protocol: Protocol,
    },
    /// `virtual_server fwmark N`.
    Fwmark {
        /// The mark.
        mark: u32,
        /// `ip_family` (or the real servers' family).
        family: Family,
    },
    /// `virtual_server group NAME`: every entry of the `virtual_server_group`, expanded to IPVS services
    /// (address ranges `10.0.0.1-5 80` become one service per address).
    Group {
        /// The group's name.
        name: String,
        /// Its services, in order.
        services: Vec<ServiceKey>,
    },
}

impl Target {
    /// The IPVS services this virtual server stands for.
    pub fn services(&self) -> Vec<ServiceKey> {
        match self {
            Target::Addr { addr, protocol } => vec![ServiceKey::Inet {
                protocol: *protocol,
                addr: addr.ip(),
                port: addr.port(),
            }],
            Target::Fwmark { mark, family } => vec![ServiceKey::Fwmark {
                mark: *mark,
                family: *family,
            }],
            Target::Group { services, .. } => services.clone(),
        }
    }
}

/// A `virtual_server` block.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct VirtualServer {
    /// What it is bound to.
    pub target: Target,
    /// `lb_algo` / `lvs_sched` (default wlc).
    pub scheduler: Scheduler,
    /// `ops`, `flag-1..3`, `sh-port`, ... (PERSISTENT is added from `persistence_timeout`).
    pub flags: ServiceFlags,
    /// `persistence_timeout` (0: not persistent).
    pub persistence_timeout: u32,
    /// `persistence_granularity`: IPv4 mask as a number or IPv6 prefix length (None: host).
    pub persistence_granularity: Option<u32>,
    /// `persistence_engine`.
    pub persistence_engine: Option<String>,
    /// `lb_kind` / `lvs_method`.
    pub forwarding: Forwarding,
    /// `ha_suspend`: checkers run only while the virtual address is configured on this host.
    pub ha_suspend: bool,
    /// `virtualhost` for the HTTP/SSL checkers.
    pub virtualhost: Option<String>,
    /// `alpha`.
    pub alpha: bool,
    /// `omega`: run the down notifiers when shutting down.
    pub omega: bool,
    /// `inhibit_on_failure` for the real servers.
    pub inhibit_on_failure: bool,
    /// `quorum` (default 1): the weight of live real servers needed.
    pub quorum: u32,
    /// `hysteresis` (default 0).
    pub hysteresis: u32,
    /// `quorum_up`.
    pub quorum_up: Option<Script>,
    /// `quorum_down`.
    pub quorum_down: Option<Script>,
    /// `weight`: the real servers' default weight (default 1).
    pub weight: u32,
    /// `connect_timeout` (default 5 s).
    pub connect_timeout: Duration,
    /// `delay_loop` (default 60 s).
    pub delay_loop: Duration,
    /// `warmup`.
    pub warmup: Option<Duration>,
    /// `retry`.
    pub retry: Option<u32>,
    /// `delay_before_retry`.
    pub delay_before_retry: Option<Duration>,
    /// `sorry_server`: put in when the quorum is lost.
    pub sorry_server: Option<RealServer>,
    /// `sorry_server_inhibit`: keep the sorry server at weight 0 instead of removing it.
    pub sorry_server_inhibit: bool,
    /// The real servers.
    pub real_servers: Vec<RealServer>,
}

impl VirtualServer {
    /// A virtual server with keepalived's defaults and no real server.
    pub fn new(target: Target) -> Self {
        VirtualServer {
            target,
            scheduler: Scheduler::Wlc,
            flags: ServiceFlags::empty(),
            persistence_timeout: 0,
            persistence_granularity: None,
            persistence_engine: None,
            forwarding: Forwarding::default(),
            ha_suspend: false,
            virtualhost: None,
            alpha: false,
            omega: false,
            inhibit_on_failure: false,
            quorum: 1,
            hysteresis: 0,
            quorum_up: None,
            quorum_down: None,
            weight: 1,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            delay_loop: DEFAULT_DELAY_LOOP,
            warmup: None,
            retry: None,
            delay_before_retry: None,
            sorry_server: None,
            sorry_server_inhibit: false,
            real_servers: Vec::new(),
        }
    }

    /// A display name, as keepalived's `FMT_VS`: `[10.0.0.1]:tcp:80`, `FWM 5`, `group NAME`.
    pub fn name(&self) -> String {
        match &self.target {
            Target::Addr { addr, protocol } => {
                let p = match protocol {
                    Protocol::Tcp => "tcp".to_string(),
                    Protocol::Udp => "udp".to_string(),
                    Protocol::Sctp => "sctp".to_string(),
                    p => p.number().to_string(),
                };
                format!("[{}]:{p}:{}", addr.ip(), addr.port())
            }
            Target::Fwmark { mark, .. } => format!("FWM {mark}"),
            Target::Group { name, .. } => format!("group {name}"),
        }
    }
}
