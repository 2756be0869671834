//! The sans-IO core: when to check, what a result means, which IPVS changes and events follow.
//!
//! No sockets, threads or clocks: time is a parameter. Inputs are [`Engine::start`],
//! [`Engine::handle_timeout`], [`Engine::handle_result`], [`Engine::set_address_present`] (for
//! `ha_suspend`), [`Engine::reload`] and [`Engine::stop`]; outputs are [`Engine::poll_action`] and
//! [`Engine::poll_timeout`]. Every rule follows keepalived 2.2.7 (`ipwrapper.c`, `ipvswrapper.c`,
//! `check_tcp.c`, `check_http.c`, `check_misc.c`, `check_data.c`); the function names in comments are
//! keepalived's, for the reader who compares.

use crate::config::{
    CheckKind, Checker, Forwarding, RealServer, Script, Target, Url, VirtualServer,
};
use ipvs_nl::{Destination, FwdMethod, Op, Service, ServiceFlags, ServiceKey};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// keepalived's `BOOTSTRAP_DELAY`: checkers start one second after the daemon, plus their warmup.
const BOOTSTRAP_DELAY: Duration = Duration::from_secs(1);
/// `IPVS_WEIGHT_LIMIT` (`INT_MAX`).
const WEIGHT_LIMIT: i64 = i32::MAX as i64;

/// A checker, by its position in [`Engine::checks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckId(pub usize);

/// One attempt the driver must make, and report with [`Engine::handle_result`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Probe {
    /// Connect over TCP, then close.
    Tcp {
        /// Where.
        target: SocketAddr,
        /// Local address to bind (`bindto`, `bind_port`).
        bind: Option<SocketAddr>,
        /// `connect_timeout`.
        timeout: Duration,
    },
    /// One URL of an HTTP_GET or SSL_GET checker.
    Http {
        /// Where.
        target: SocketAddr,
        /// Local address to bind.
        bind: Option<SocketAddr>,
        /// Connect, and per-read, timeout.
        timeout: Duration,
        /// TLS first (SSL_GET).
        tls: bool,
        /// TLS server name (SSL_GET with `enable_sni` and a virtual host).
        sni: Option<String>,
        /// The request bytes.
        request: Vec<u8>,
        /// What the response must satisfy.
        url: Url,
    },
    /// Run a program (MISC_CHECK).
    Misc {
        /// Program and arguments.
        argv: Script,
        /// `misc_timeout`: then SIGTERM, and SIGKILL 2 s later.
        timeout: Duration,
    },
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// TCP connected, or the HTTP response satisfied the URL.
    Success,
    /// It failed, with a reason for the logs and `status`.
    Failure(String),
    /// MISC_CHECK: the program exited with this status.
    Exited(u8),
    /// MISC_CHECK: the program was killed by a signal (other than our timeout's).
    Signaled(i32),
    /// MISC_CHECK: it did not finish within `misc_timeout` and was killed.
    TimedOut,
}

/// Something that happened to the pool, for logs, status and HA controllers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A real server is in service (added, or enabled with `inhibit_on_failure`).
    RealServerUp {
        /// The virtual server's name.
        vs: String,
        /// The real server.
        rs: SocketAddr,
    },
    /// A real server is out of service.
    RealServerDown {
        /// The virtual server's name.
        vs: String,
        /// The real server.
        rs: SocketAddr,
        /// The failure that caused it (`None` at shutdown or removal).
        reason: Option<String>,
    },
    /// The live weight reached the quorum.
    QuorumUp {
        /// The virtual server's name.
        vs: String,
    },
    /// The live weight fell below the quorum (the sorry server, if any, is in).
    QuorumDown {
        /// The virtual server's name.
        vs: String,
    },
    /// A MISC_CHECK with `misc_dynamic` changed a real server's weight.
    WeightChanged {
        /// The virtual server's name.
        vs: String,
        /// The real server.
        rs: SocketAddr,
        /// The new weight.
        weight: u32,
    },
}

/// What the engine asks of its driver, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Apply this change to the IPVS table (keepalived's `ipvs_talk` forgives `EEXIST` on adds and
    /// `ENOENT` on deletes, and turns an edit that finds nothing into an add).
    Ipvs(Op),
    /// Start this attempt.
    Check(CheckId, Probe),
    /// Run this notify script (`notify_up`, `notify_down`, `quorum_up`, `quorum_down`).
    Script(Script),
    /// Report this.
    Event(Event),
}

/// A checker's state, for `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckStatus {
    /// `TCP_CHECK`, `HTTP_GET`, `SSL_GET`, `MISC_CHECK`.
    pub kind: &'static str,
    /// Whether the checker counts the server up.
    pub up: bool,
    /// Whether it has completed a check.
    pub has_run: bool,
    /// The last failure's reason.
    pub last_failure: Option<String>,
}

/// A real server's state, for `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RealServerStatus {
    /// The real server.
    pub addr: SocketAddr,
    /// In service (alive).
    pub alive: bool,
    /// Present in the IPVS table (maybe at weight 0).
    pub in_ipvs: bool,
    /// Current weight.
    pub weight: u32,
    /// Its checkers.
    pub checks: Vec<CheckStatus>,
}

/// A virtual server's state, for `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VirtualServerStatus {
    /// Its name.
    pub name: String,
    /// Whether the quorum is up.
    pub quorum_up: bool,
    /// Whether the sorry server is in.
    pub sorry_server_active: bool,
    /// Its real servers.
    pub real_servers: Vec<RealServerStatus>,
}

#[derive(Debug, Clone)]
struct Rs {
    cfg: RealServer,
    /// The address IPVS uses (port fixed up as keepalived does).
    addr: SocketAddr,
    fwd: Forwarding,
    iweight: i64,
    effective_weight: i64,
    inhibit: bool,
    alive: bool,
    set: bool,
    num_failed: u32,
    checks: Vec<usize>,
    last_failure: Option<String>,
    reloaded: bool,
}

#[derive(Debug, Clone)]
struct Vs {
    cfg: VirtualServer,
    name: String,
    services: Vec<ServiceKey>,
    alive: bool,
    quorum_up: bool,
    quorum: u32,
    hysteresis: u32,
    rs: Vec<Rs>,
    sorry: Option<Rs>,
    sorry_duplicates_rs: bool,
    ha_addr_count: u32,
    reloaded: bool,
}

#[derive(Debug, Clone)]
struct Check {
    cfg: Checker,
    vs: usize,
    rs: usize,
    target: SocketAddr,
    bind: Option<SocketAddr>,
    timeout: Duration,
    retry: u32,
    delay_before_retry: Duration,
    delay_loop: Duration,
    warmup: Duration,
    alpha: bool,
    misc_timeout: Duration,
    virtualhost: Option<String>,
    enabled: bool,
    is_up: bool,
    has_run: bool,
    retry_it: u32,
    cur_weight: i64,
    next: Option<Instant>,
    /// Bumped whenever `next` changes (see [`Engine::timers`]).
    generation: u64,
    running: bool,
    url_it: usize,
    failed_url: Option<usize>,
    last_exit: u32,
    last_ran: Option<Instant>,
    last_failure: Option<String>,
}

/// Which server of a virtual server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sel {
    Rs(usize),
    Sorry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Add,
    Del,
    Edit,
}

/// The health-check engine (see the module docs).
#[derive(Debug)]
pub struct Engine {
    vss: Vec<Vs>,
    checks: Vec<Check>,
    actions: VecDeque<Action>,
    rng: u64,
    started: bool,
    /// Deadlines: `(when, checker, generation)`; an entry whose generation is not the checker's
    /// current one is stale and skipped.
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
}

/// `real_weight`: the weight IPVS can take.
fn real_weight(w: i64) -> u32 {
    w.clamp(0, WEIGHT_LIMIT) as u32
}

fn kind_name(k: &CheckKind) -> &'static str {
    match k {
        CheckKind::Tcp => "TCP_CHECK",
        CheckKind::Http(_) => "HTTP_GET",
        CheckKind::Ssl(_) => "SSL_GET",
        CheckKind::Misc(_) => "MISC_CHECK",
    }
}

impl Engine {
    /// An engine for `config`; `seed` drives the random warmups. Nothing happens before
    /// [`Engine::start`].
    pub fn new(config: Vec<VirtualServer>, seed: u64) -> Self {
        let mut e = Engine {
            vss: Vec::new(),
            checks: Vec::new(),
            actions: VecDeque::new(),
            rng: seed,
            started: false,
            timers: BinaryHeap::new(),
        };
        for vs in config {
            e.add_vs(vs);
        }
        e
    }

    /// SplitMix64.
    fn random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Resolves one real server of `vs` (keepalived's `validate_check_config` defaults and port fixes).
    fn make_rs(vs: &VirtualServer, cfg: &RealServer) -> Rs {
        let fwd = cfg.forwarding.unwrap_or(vs.forwarding);
        let mut addr = cfg.addr;
        match &vs.target {
            Target::Addr { addr: va, .. } => {
                if fwd.method == FwdMethod::Masq {
                    if addr.port() == 0 {
                        addr.set_port(va.port());
                    }
                } else {
                    addr.set_port(va.port());
                }
            }
            Target::Fwmark { .. } if fwd.method != FwdMethod::Masq => addr.set_port(0),
            _ => {}
        }
        let w = i64::from(cfg.weight.unwrap_or(vs.weight));
        Rs {
            cfg: cfg.clone(),
            addr,
            fwd,
            iweight: w,
            effective_weight: w,
            inhibit: cfg.inhibit_on_failure.unwrap_or(vs.inhibit_on_failure),
            alive: false,
            set: false,
            num_failed: 0,
            checks: Vec::new(),
            last_failure: None,
            reloaded: false,
        }
    }

    fn add_vs(&mut self, cfg: VirtualServer) -> usize {
        let vi = self.vss.len();
        let mut rs: Vec<Rs> = Vec::new();
        for r in &cfg.real_servers {
            // A duplicate real server is dropped (keepalived: "real server ... is duplicated").
            let made = Engine::make_rs(&cfg, r);
            if rs.iter().any(|x| x.addr == made.addr) {
                continue;
            }
            rs.push(made);
        }
        let mut sorry = cfg.sorry_server.as_ref().map(|s| {
            let mut r = Engine::make_rs(&cfg, s);
            r.inhibit = cfg.sorry_server_inhibit;
            r.effective_weight = i64::from(s.weight.unwrap_or(1));
            r.iweight = r.effective_weight;
            r
        });
        let mut dup = false;
        if let Some(s) = &mut sorry
            && let Some(r) = rs.iter().find(|r| r.addr == s.addr)
        {
            s.inhibit = r.inhibit;
            dup = true;
        }
        // quorum <= the total weight; hysteresis < quorum.
        let weight_sum: i64 = rs.iter().map(|r| r.effective_weight).sum();
        let quorum = i64::from(cfg.quorum).min(weight_sum).max(0) as u32;
        let hysteresis = if cfg.hysteresis >= quorum {
            quorum.saturating_sub(1)
        } else {
            cfg.hysteresis
        };
        let vs = Vs {
            name: cfg.name(),
            services: cfg.target.services(),
            alive: false,
            quorum_up: false,
            quorum,
            hysteresis,
            rs,
            sorry,
            sorry_duplicates_rs: dup,
            ha_addr_count: 0,
            reloaded: false,
            cfg,
        };
        self.vss.push(vs);
        for ri in 0..self.vss[vi].rs.len() {
            let checkers = self.vss[vi].rs[ri].cfg.checkers.clone();
            for c in checkers {
                if let Some(ci) = self.add_check(vi, ri, c) {
                    self.vss[vi].rs[ri].checks.push(ci);
                }
            }
        }
        vi
    }

    /// Resolves a checker's options (checker, then real server, then virtual server, then the kind's
    /// default) and its initial state. An HTTP/SSL checker without URLs or a MISC_CHECK without a
    /// program is dropped, as keepalived drops it.
    fn add_check(&mut self, vi: usize, ri: usize, cfg: Checker) -> Option<usize> {
        let vs = &self.vss[vi].cfg;
        let rs = &self.vss[vi].rs[ri].cfg;
        let (default_retry, default_dbr) = match &cfg.kind {
            CheckKind::Misc(m) if m.path.is_empty() => return None,
            CheckKind::Http(h) | CheckKind::Ssl(h) if h.urls.is_empty() => return None,
            CheckKind::Misc(_) => (0, Duration::from_secs(1)),
            CheckKind::Http(_) | CheckKind::Ssl(_) => (1, Duration::from_secs(3)),
            CheckKind::Tcp => (1, Duration::from_secs(1)),
        };
        let delay_loop = cfg.delay_loop.or(rs.delay_loop).unwrap_or(vs.delay_loop);
        let ip = cfg.connect_ip.unwrap_or(rs.addr.ip());
        let port = cfg.connect_port.unwrap_or(rs.addr.port());
        let bind = match (cfg.bindto, cfg.bind_port) {
            (Some(a), p) => Some(SocketAddr::new(a, p.unwrap_or(0))),
            (None, Some(p)) => Some(SocketAddr::new(
                match ip {
                    IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                    IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                },
                p,
            )),
            (None, None) => None,
        };
        let alpha = cfg.alpha.or(rs.alpha).unwrap_or(vs.alpha);
        let virtualhost = match &cfg.kind {
            CheckKind::Http(h) | CheckKind::Ssl(h) => h.virtualhost.clone(),
            _ => None,
        }
        .or_else(|| rs.virtualhost.clone())
        .or_else(|| vs.virtualhost.clone());
        let retry = cfg.retry.or(rs.retry).or(vs.retry).unwrap_or(default_retry);
        let c = Check {
            vs: vi,
            rs: ri,
            target: SocketAddr::new(ip, port),
            bind,
            timeout: cfg
                .connect_timeout
                .or(rs.connect_timeout)
                .unwrap_or(vs.connect_timeout),
            retry,
            delay_before_retry: cfg
                .delay_before_retry
                .or(rs.delay_before_retry)
                .or(vs.delay_before_retry)
                .unwrap_or(default_dbr),
            delay_loop,
            warmup: cfg.warmup.or(rs.warmup).or(vs.warmup).unwrap_or(delay_loop),
            alpha,
            misc_timeout: match &cfg.kind {
                CheckKind::Misc(m) => m.timeout.unwrap_or(vs.delay_loop),
                _ => Duration::ZERO,
            },
            virtualhost,
            enabled: true,
            is_up: true,
            has_run: false,
            // "For non alpha mode, one failure is enough initially."
            retry_it: retry,
            cur_weight: 0,
            next: None,
            generation: 0,
            running: false,
            url_it: 0,
            failed_url: None,
            last_exit: 0,
            last_ran: None,
            last_failure: None,
            cfg,
        };
        let ci = self.checks.len();
        self.checks.push(c);
        if alpha {
            self.set_checker_state(ci, false);
            self.vss[vi].rs[ri].alive = false;
        }
        Some(ci)
    }

    /// The checkers, in [`CheckId`] order: `(virtual server name, real server, kind)`.
    pub fn checks(&self) -> impl Iterator<Item = (CheckId, &str, SocketAddr, &'static str)> {
        self.checks.iter().enumerate().map(|(i, c)| {
            let vs = &self.vss[c.vs];
            (
                CheckId(i),
                vs.name.as_str(),
                vs.rs[c.rs].cfg.addr,
                kind_name(&c.cfg.kind),
            )
        })
    }

    fn push(&mut self, a: Action) {
        self.actions.push_back(a);
    }

    /// Sets (or clears) checker `ci`'s next deadline.
    fn set_next(&mut self, ci: usize, t: Option<Instant>) {
        let c = &mut self.checks[ci];
        c.next = t;
        c.generation += 1;
        if let Some(t) = t {
            self.timers.push(Reverse((t, ci, c.generation)));
        }
    }

    /// The next action for the driver.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Engine::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        // The earliest entry may be stale: an early wake-up at worst.
        self.timers.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Builds the IPVS service of `vs` for `key` (`ipvs_set_srule`).
    fn service(vs: &Vs, key: ServiceKey) -> Service {
        let mut s = Service::new(key);
        s.scheduler = vs.cfg.scheduler.clone();
        s.flags = vs.cfg.flags;
        if vs.cfg.persistence_timeout != 0 {
            s.timeout = vs.cfg.persistence_timeout;
            s.flags |= ServiceFlags::PERSISTENT;
            if let Some(g) = vs.cfg.persistence_granularity {
                s.netmask = g;
            }
            s.pe_name = vs.cfg.persistence_engine.clone();
        }
        s
    }

    /// `ipvs_cmd` for a service. A service that another live virtual server also uses (a
    /// `virtual_server_group` shared by several virtual servers, or a fwmark entry shared by a TCP and
    /// a UDP virtual server of one group) is added by the first and removed with the last, as
    /// keepalived's per-entry counts do (`ipvs_change_needed`).
    fn service_cmd(&mut self, vi: usize, cmd: Cmd) {
        let vs = &self.vss[vi];
        let shared = |k: &ServiceKey| {
            self.vss
                .iter()
                .enumerate()
                .any(|(i, o)| i != vi && o.alive && o.services.contains(k))
        };
        let ops: Vec<Op> = vs
            .services
            .iter()
            .filter(|k| cmd == Cmd::Edit || !shared(k))
            .map(|k| match cmd {
                Cmd::Add => Op::AddService(Engine::service(vs, *k)),
                Cmd::Edit => Op::EditService(Engine::service(vs, *k)),
                Cmd::Del => Op::DelService(*k),
            })
            .collect();
        for op in ops {
            self.push(Action::Ipvs(op));
        }
    }

    fn server(&self, vi: usize, sel: Sel) -> &Rs {
        match sel {
            Sel::Rs(i) => &self.vss[vi].rs[i],
            // A sorry selector is only made when the sorry server exists.
            Sel::Sorry => self.vss[vi].sorry.as_ref().unwrap_or(&self.vss[vi].rs[0]),
        }
    }

    fn server_mut(&mut self, vi: usize, sel: Sel) -> &mut Rs {
        let vs = &mut self.vss[vi];
        match sel {
            Sel::Rs(i) => &mut vs.rs[i],
            Sel::Sorry => match vs.sorry.as_mut() {
                Some(s) => s,
                None => &mut vs.rs[0],
            },
        }
    }

    /// `ipvs_cmd` for a destination: inhibit turns a delete into weight 0 and an add of a present
    /// server into an edit; `set` tracks presence in the table.
    fn dest_cmd(&mut self, vi: usize, sel: Sel, cmd: Cmd) {
        let rs = self.server_mut(vi, sel);
        let mut weight = real_weight(rs.effective_weight);
        let mut cmd = cmd;
        if cmd == Cmd::Del && rs.inhibit {
            weight = 0;
            cmd = Cmd::Edit;
        } else if cmd == Cmd::Add && rs.inhibit && rs.set {
            cmd = Cmd::Edit;
        } else if cmd == Cmd::Add && !rs.set {
            rs.set = true;
            if rs.inhibit && rs.num_failed > 0 {
                weight = 0;
            }
        } else if cmd == Cmd::Del && rs.set {
            rs.set = false;
        }
        let rs = self.server(vi, sel);
        let vs = &self.vss[vi];
        let mut ops = Vec::new();
        for key in &vs.services {
            let port = match (key, rs.fwd.method) {
                (_, FwdMethod::Masq) => rs.addr.port(),
                (ServiceKey::Inet { port, .. }, _) => *port,
                (ServiceKey::Fwmark { .. }, _) => 0,
            };
            let mut d = Destination::new(rs.addr.ip(), port);
            d.fwd = rs.fwd.method;
            d.weight = weight;
            d.u_threshold = rs.cfg.u_threshold;
            d.l_threshold = rs.cfg.l_threshold;
            d.tun_type = rs.fwd.tun_type;
            d.tun_port = rs.fwd.tun_port;
            d.tun_flags = rs.fwd.tun_flags;
            ops.push(match cmd {
                Cmd::Add => Op::AddDest(*key, d),
                Cmd::Edit => Op::EditDest(*key, d),
                Cmd::Del => Op::DelDest(*key, d.addr, d.port),
            });
        }
        for op in ops {
            self.push(Action::Ipvs(op));
        }
    }

    /// `weigh_live_realservers`.
    fn live_weight(&self, vi: usize) -> i64 {
        self.vss[vi]
            .rs
            .iter()
            .filter(|r| r.alive)
            .map(|r| i64::from(real_weight(r.effective_weight)))
            .sum()
    }

    /// `do_rs_notifies`.
    fn rs_notifies(&mut self, vi: usize, ri: usize, reason: Option<String>) {
        let vs = &self.vss[vi];
        let rs = &vs.rs[ri];
        let script = if rs.alive {
            rs.cfg.notify_up.clone()
        } else {
            rs.cfg.notify_down.clone()
        };
        let ev = if rs.alive {
            Event::RealServerUp {
                vs: vs.name.clone(),
                rs: rs.cfg.addr,
            }
        } else {
            Event::RealServerDown {
                vs: vs.name.clone(),
                rs: rs.cfg.addr,
                reason,
            }
        };
        if let Some(s) = script {
            self.push(Action::Script(s));
        }
        self.push(Action::Event(ev));
    }

    /// `do_vs_notifies`.
    fn vs_notifies(&mut self, vi: usize, stopping: bool) {
        let vs = &self.vss[vi];
        if stopping && !vs.cfg.omega {
            return;
        }
        let (script, ev) = if vs.quorum_up {
            (
                vs.cfg.quorum_up.clone(),
                Event::QuorumUp {
                    vs: vs.name.clone(),
                },
            )
        } else {
            (
                vs.cfg.quorum_down.clone(),
                Event::QuorumDown {
                    vs: vs.name.clone(),
                },
            )
        };
        if let Some(s) = script {
            self.push(Action::Script(s));
        }
        self.push(Action::Event(ev));
    }

    /// `perform_quorum_state`: add or remove the alive real servers.
    fn perform_quorum_state(&mut self, vi: usize, add: bool) {
        for ri in 0..self.vss[vi].rs.len() {
            if !self.vss[vi].rs[ri].alive {
                continue;
            }
            if add {
                self.vss[vi].rs[ri].alive = false;
            }
            self.dest_cmd(vi, Sel::Rs(ri), if add { Cmd::Add } else { Cmd::Del });
            self.vss[vi].rs[ri].alive = true;
        }
    }

    /// `update_quorum_state`.
    fn update_quorum_state(&mut self, vi: usize, init: bool) {
        let weight_sum = self.live_weight(vi);
        let vs = &self.vss[vi];
        let h = i64::from(vs.hysteresis);
        let threshold = i64::from(vs.quorum) + if vs.quorum_up { -h } else { h };
        let sorry_alive = vs.sorry.as_ref().map(|s| s.alive);
        if !vs.quorum_up && weight_sum >= threshold {
            self.vss[vi].quorum_up = true;
            if sorry_alive == Some(true) {
                self.dest_cmd(vi, Sel::Sorry, Cmd::Del);
                if let Some(s) = &mut self.vss[vi].sorry {
                    s.alive = false;
                }
                self.perform_quorum_state(vi, true);
            }
            self.vs_notifies(vi, false);
        } else if (vs.quorum_up && (weight_sum == 0 || weight_sum < threshold))
            || (init && !vs.quorum_up && sorry_alive == Some(false))
        {
            self.vss[vi].quorum_up = false;
            if sorry_alive == Some(false) {
                self.perform_quorum_state(vi, false);
                self.dest_cmd(vi, Sel::Sorry, Cmd::Add);
                if let Some(s) = &mut self.vss[vi].sorry {
                    s.alive = true;
                }
            }
            self.vs_notifies(vi, false);
        }
    }

    /// `perform_svr_state`.
    fn perform_svr_state(&mut self, vi: usize, ri: usize, alive: bool, reason: Option<String>) {
        if self.vss[vi].rs[ri].alive == alive {
            return;
        }
        let vs = &self.vss[vi];
        let sorry_in = vs.sorry.as_ref().is_some_and(|s| s.alive);
        if vs.quorum_up || !sorry_in {
            self.dest_cmd(vi, Sel::Rs(ri), if alive { Cmd::Add } else { Cmd::Del });
        }
        self.vss[vi].rs[ri].alive = alive;
        self.rs_notifies(vi, ri, reason);
        self.update_quorum_state(vi, false);
    }

    /// `set_checker_state`.
    fn set_checker_state(&mut self, ci: usize, up: bool) {
        let c = &mut self.checks[ci];
        if c.is_up == up {
            return;
        }
        c.is_up = up;
        let rs = &mut self.vss[c.vs].rs[c.rs];
        if !up {
            rs.num_failed += 1;
        } else if rs.num_failed > 0 {
            rs.num_failed -= 1;
        }
    }

    /// `update_svr_checker_state`.
    fn update_checker_state(&mut self, ci: usize, alive: bool) {
        let (vi, ri) = (self.checks[ci].vs, self.checks[ci].rs);
        let reason = if alive {
            None
        } else {
            self.checks[ci].last_failure.clone()
        };
        if alive {
            self.vss[vi].rs[ri].last_failure = None;
        } else {
            self.vss[vi].rs[ri].last_failure = reason.clone();
        }
        if self.checks[ci].is_up == alive {
            if !self.checks[ci].has_run {
                if self.checks[ci].alpha || !alive {
                    self.rs_notifies(vi, ri, reason);
                }
                self.checks[ci].has_run = true;
            }
            return;
        }
        self.checks[ci].has_run = true;
        let failed = self.vss[vi].rs[ri].num_failed;
        if alive {
            if failed <= 1 {
                self.perform_svr_state(vi, ri, true, None);
            }
        } else if failed == 0 {
            self.perform_svr_state(vi, ri, false, reason);
        }
        self.set_checker_state(ci, alive);
    }

    /// `update_svr_wgt`.
    fn update_weight(&mut self, vi: usize, ri: usize, weight: i64, update_quorum: bool) {
        let rs = &mut self.vss[vi].rs[ri];
        let new = real_weight(weight);
        let old = real_weight(rs.effective_weight);
        rs.effective_weight = weight;
        if new == old {
            return;
        }
        let (set, alive, addr) = (rs.set, rs.alive, rs.cfg.addr);
        let vs = &self.vss[vi];
        let sorry_in = vs.sorry.as_ref().is_some_and(|s| s.alive);
        let name = vs.name.clone();
        if set && alive && (vs.quorum_up || !sorry_in) {
            self.dest_cmd(vi, Sel::Rs(ri), Cmd::Edit);
        }
        self.push(Action::Event(Event::WeightChanged {
            vs: name,
            rs: addr,
            weight: new,
        }));
        if update_quorum {
            self.update_quorum_state(vi, false);
        }
    }

    /// `init_service_vs` for every virtual server (`init_services`) and schedules every checker:
    /// the first check of each runs 1 s from `now` plus a random part of its warmup.
    pub fn start(&mut self, now: Instant) {
        if self.started {
            return;
        }
        self.started = true;
        for vi in 0..self.vss.len() {
            self.init_vs(vi);
        }
        for ci in 0..self.checks.len() {
            self.schedule_first(ci, now);
        }
    }

    fn schedule_first(&mut self, ci: usize, now: Instant) {
        let vs = &self.vss[self.checks[ci].vs];
        let suspended = vs.cfg.ha_suspend && vs.ha_addr_count == 0;
        let warmup = self.checks[ci].warmup;
        let r = self.random();
        let c = &mut self.checks[ci];
        c.enabled = !suspended;
        let jitter = if warmup.is_zero() {
            Duration::ZERO
        } else {
            // warmup * random() / RAND_MAX
            Duration::from_nanos(
                ((warmup.as_nanos() * u128::from(r >> 33)) / u128::from(u32::MAX >> 1)) as u64,
            )
        };
        self.set_next(ci, Some(now + BOOTSTRAP_DELAY + jitter));
    }

    fn init_vs(&mut self, vi: usize) {
        if !self.vss[vi].alive {
            self.service_cmd(vi, Cmd::Add);
            self.vss[vi].alive = true;
        }
        // init_service_rs
        for ri in 0..self.vss[vi].rs.len() {
            let rs = &self.vss[vi].rs[ri];
            if rs.reloaded {
                continue;
            }
            if (rs.num_failed == 0 && !rs.alive) || (rs.inhibit && !rs.set) {
                self.dest_cmd(vi, Sel::Rs(ri), Cmd::Add);
                if self.vss[vi].rs[ri].num_failed == 0 {
                    self.vss[vi].rs[ri].alive = true;
                }
            }
        }
        self.update_quorum_state(vi, true);
        // A sorry server with inhibit goes in at weight 0 now.
        let vs = &self.vss[vi];
        if let Some(s) = &vs.sorry
            && s.inhibit
            && !s.set
        {
            if vs.sorry_duplicates_rs {
                if let Some(s) = &mut self.vss[vi].sorry {
                    s.set = true;
                }
            } else {
                if let Some(s) = &mut self.vss[vi].sorry {
                    s.num_failed = 1;
                }
                self.dest_cmd(vi, Sel::Sorry, Cmd::Add);
                if let Some(s) = &mut self.vss[vi].sorry {
                    s.num_failed = 0;
                }
            }
        }
    }

    /// Starts the checks that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due = Vec::new();
        while let Some(Reverse((t, ci, generation))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let c = &self.checks[ci];
            if c.generation == generation && !c.running {
                due.push(ci);
            }
        }
        for ci in due {
            if !self.checks[ci].enabled {
                let d = self.checks[ci].delay_loop;
                self.set_next(ci, Some(now + d));
                continue;
            }
            let probe = self.probe(ci);
            self.set_next(ci, None);
            let c = &mut self.checks[ci];
            c.running = true;
            if matches!(c.cfg.kind, CheckKind::Misc(_)) {
                c.last_ran = Some(now);
            }
            self.push(Action::Check(CheckId(ci), probe));
        }
    }

    fn probe(&self, ci: usize) -> Probe {
        let c = &self.checks[ci];
        match &c.cfg.kind {
            CheckKind::Tcp => Probe::Tcp {
                target: c.target,
                bind: c.bind,
                timeout: c.timeout,
            },
            CheckKind::Http(h) | CheckKind::Ssl(h) => {
                let url = h.urls[c.url_it.min(h.urls.len() - 1)].clone();
                let vhost = url.virtualhost.clone().or_else(|| c.virtualhost.clone());
                let host = match &vhost {
                    Some(v) => v.clone(),
                    None => match c.target {
                        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
                        SocketAddr::V4(a) => a.to_string(),
                    },
                };
                let tls = matches!(c.cfg.kind, CheckKind::Ssl(_));
                Probe::Http {
                    target: c.target,
                    bind: c.bind,
                    timeout: c.timeout,
                    tls,
                    sni: if h.enable_sni { vhost } else { None },
                    request: crate::http::request(&url.path, h.protocol, &host),
                    url,
                }
            }
            CheckKind::Misc(m) => Probe::Misc {
                argv: m.path.clone(),
                timeout: c.misc_timeout,
            },
        }
    }

    /// Takes the result of a [`Action::Check`] attempt.
    pub fn handle_result(&mut self, now: Instant, id: CheckId, outcome: Outcome) {
        let ci = id.0;
        if ci >= self.checks.len() || !self.checks[ci].running {
            return;
        }
        self.checks[ci].running = false;
        if let Outcome::Failure(r) = &outcome {
            self.checks[ci].last_failure = Some(r.clone());
        }
        // What the epilogs need of the checker's kind (no copy of its URLs per result).
        match &self.checks[ci].cfg.kind {
            CheckKind::Tcp => self.tcp_epilog(ci, now, outcome == Outcome::Success),
            CheckKind::Http(h) | CheckKind::Ssl(h) => {
                let h = (h.urls.len(), h.fast_recovery);
                if outcome == Outcome::Success {
                    self.http_epilog(ci, now, HttpStep::New, h);
                } else {
                    let c = &mut self.checks[ci];
                    if c.is_up || !c.has_run {
                        c.has_run = true;
                        self.http_epilog(ci, now, HttpStep::Retry, h);
                    } else {
                        self.http_epilog(ci, now, HttpStep::Failed, h);
                    }
                }
            }
            CheckKind::Misc(m) => {
                let dynamic = m.dynamic;
                self.misc_result(ci, now, outcome, dynamic)
            }
        }
    }

    /// `tcp_epilog`.
    fn tcp_epilog(&mut self, ci: usize, now: Instant, success: bool) {
        let c = &mut self.checks[ci];
        let delay;
        if success || c.retry_it >= c.retry {
            delay = c.delay_loop;
            c.retry_it = 0;
            if success && (!c.is_up || !c.has_run) {
                self.update_checker_state(ci, true);
            } else if !success && (c.is_up || !c.has_run) {
                self.update_checker_state(ci, false);
            }
        } else {
            delay = c.delay_before_retry;
            c.retry_it += 1;
        }
        self.checks[ci].has_run = true;
        self.set_next(ci, Some(now + delay));
    }

    /// `epilog` of check_http.c; `(n, fast_recovery)`: the checker's number of URLs and its
    /// `fast_recovery`.
    fn http_epilog(
        &mut self,
        ci: usize,
        now: Instant,
        step: HttpStep,
        (n, fast_recovery): (usize, bool),
    ) {
        let mut last_done = false;
        {
            let c = &mut self.checks[ci];
            match step {
                HttpStep::New => {
                    if c.url_it + 1 >= n {
                        last_done = true;
                    } else {
                        c.url_it += 1;
                    }
                    c.retry_it = 0;
                }
                HttpStep::Retry => c.retry_it += 1,
                HttpStep::Failed => {}
            }
        }
        let c = &self.checks[ci];
        if step == HttpStep::New && last_done && c.failed_url.is_none() {
            // Every URL succeeded.
            if !c.is_up || !c.has_run {
                self.update_checker_state(ci, true);
                self.checks[ci].has_run = true;
            }
            let c = &mut self.checks[ci];
            c.url_it = 0;
            c.retry_it = 0;
        } else if step == HttpStep::Retry && c.retry_it > c.retry {
            if c.is_up || !c.has_run {
                self.update_checker_state(ci, false);
            }
            let c = &mut self.checks[ci];
            c.failed_url = Some(c.url_it);
        } else if step == HttpStep::New && self.checks[ci].failed_url.is_some() {
            // The failed URL answers again: check every URL from the first.
            let c = &mut self.checks[ci];
            c.failed_url = None;
            c.url_it = 0;
            c.retry_it = 0;
        } else if step == HttpStep::New && last_done {
            self.checks[ci].url_it = 0;
        }
        let c = &mut self.checks[ci];
        let delay = if step == HttpStep::New {
            if !c.has_run {
                c.retry_it = c.retry;
            }
            c.delay_loop
        } else if c.failed_url.is_some() {
            c.delay_before_retry.max(c.delay_loop)
        } else {
            c.delay_before_retry
        };
        let fast = fast_recovery && (!c.has_run || (!c.is_up && c.failed_url.is_none()));
        self.set_next(ci, Some(if fast { now } else { now + delay }));
    }

    /// `misc_check_child_thread`.
    fn misc_result(&mut self, ci: usize, now: Instant, outcome: Outcome, dynamic: bool) {
        let (vi, ri) = (self.checks[ci].vs, self.checks[ci].rs);
        // Some(true): succeeded; Some(false): failed; None: no state change.
        let mut verdict = None;
        match outcome {
            Outcome::Exited(status) if status == 0 || (dynamic && status >= 2) => {
                let status = u32::from(status);
                if status != self.checks[ci].last_exit {
                    let iweight = self.vss[vi].rs[ri].iweight;
                    let mut eff = self.vss[vi].rs[ri].effective_weight - self.checks[ci].cur_weight;
                    self.checks[ci].cur_weight = if status != 0 {
                        i64::from(status) - 2 - iweight
                    } else {
                        0
                    };
                    eff += self.checks[ci].cur_weight;
                    self.update_weight(vi, ri, eff, true);
                    self.checks[ci].last_exit = status;
                }
                let c = &mut self.checks[ci];
                if !c.is_up || !c.has_run {
                    verdict = Some(true);
                }
                c.retry_it = 0;
            }
            Outcome::Exited(status) => {
                let c = &mut self.checks[ci];
                c.last_failure = Some(format!("exited with status {status}"));
                if c.is_up || !c.has_run {
                    if c.retry_it < c.retry {
                        c.retry_it += 1;
                    } else {
                        c.retry_it = 0;
                        let cw = c.cur_weight;
                        c.cur_weight = 0;
                        c.last_exit = u32::from(status);
                        self.vss[vi].rs[ri].effective_weight -= cw;
                        verdict = Some(false);
                    }
                }
            }
            other => {
                let c = &mut self.checks[ci];
                c.last_failure = Some(match other {
                    Outcome::Signaled(s) => format!("killed by signal {s}"),
                    Outcome::TimedOut => "timed out".to_string(),
                    Outcome::Failure(r) => r,
                    _ => "failed".to_string(),
                });
                if c.is_up || !c.has_run {
                    if c.retry_it < c.retry {
                        c.retry_it += 1;
                    } else {
                        c.retry_it = 0;
                        verdict = Some(false);
                    }
                }
            }
        }
        if let Some(ok) = verdict {
            self.update_checker_state(ci, ok);
            if !ok {
                self.checks[ci].cur_weight = 0;
            }
        }
        let c = &mut self.checks[ci];
        let delay = if c.retry_it > 0 {
            c.delay_before_retry
        } else {
            c.delay_loop
        };
        let next = c.last_ran.unwrap_or(now) + delay;
        c.has_run = true;
        self.set_next(ci, Some(next.max(now)));
    }

    /// `ha_suspend`: the virtual address `addr` was added to (`present`) or removed from this host.
    /// Checkers of `ha_suspend` virtual servers using it run only while it is present.
    pub fn set_address_present(&mut self, addr: IpAddr, present: bool) {
        for vi in 0..self.vss.len() {
            let vs = &mut self.vss[vi];
            let Target::Addr { addr: va, .. } = &vs.cfg.target else {
                continue;
            };
            if !vs.cfg.ha_suspend || va.ip() != addr {
                continue;
            }
            if present {
                vs.ha_addr_count += 1;
            } else {
                vs.ha_addr_count = vs.ha_addr_count.saturating_sub(1);
            }
            let count = vs.ha_addr_count;
            for c in self.checks.iter_mut().filter(|c| c.vs == vi) {
                if present != c.enabled && (present || count == 0) {
                    c.enabled = present;
                }
            }
        }
    }

    /// `clear_service_rs`.
    fn clear_rs(&mut self, vi: usize, ri: usize, stopping: bool) {
        if !self.vss[vi].rs[ri].set {
            return;
        }
        let inhibit = self.vss[vi].rs[ri].inhibit;
        self.vss[vi].rs[ri].inhibit = false;
        self.dest_cmd(vi, Sel::Rs(ri), Cmd::Del);
        self.vss[vi].rs[ri].inhibit = inhibit;
        if !self.vss[vi].rs[ri].alive {
            return;
        }
        self.vss[vi].rs[ri].alive = false;
        if !self.vss[vi].cfg.omega && stopping {
            return;
        }
        self.rs_notifies(vi, ri, None);
    }

    /// `clear_service_vs` (keepalived's default: no flush; only what was added is removed).
    fn clear_vs(&mut self, vi: usize, stopping: bool) {
        let vs = &self.vss[vi];
        if let Some(s) = &vs.sorry
            && s.set
        {
            if vs.sorry_duplicates_rs {
                if let Some(s) = &mut self.vss[vi].sorry {
                    s.set = false;
                }
            } else {
                let inhibit = s.inhibit;
                if let Some(s) = &mut self.vss[vi].sorry {
                    s.inhibit = false;
                }
                self.dest_cmd(vi, Sel::Sorry, Cmd::Del);
                if let Some(s) = &mut self.vss[vi].sorry {
                    s.inhibit = inhibit;
                }
            }
            if let Some(s) = &mut self.vss[vi].sorry {
                s.alive = false;
            }
        }
        for ri in 0..self.vss[vi].rs.len() {
            self.clear_rs(vi, ri, stopping);
        }
        // update_vs_notifies
        let weight_sum = self.live_weight(vi);
        let vs = &self.vss[vi];
        let threshold = i64::from(vs.quorum) - i64::from(vs.hysteresis);
        if stopping || (vs.quorum_up && (weight_sum == 0 || weight_sum < threshold)) {
            self.vss[vi].quorum_up = false;
            self.vs_notifies(vi, stopping);
        }
        self.service_cmd(vi, Cmd::Del);
        self.vss[vi].alive = false;
    }

    /// Shutdown (`clear_services`): removes every destination and service the engine added, runs the
    /// down notifiers of `omega` virtual servers, and stops all checking.
    pub fn stop(&mut self, _now: Instant) {
        for vi in 0..self.vss.len() {
            if self.vss[vi].alive {
                self.clear_vs(vi, true);
            }
        }
        for ci in 0..self.checks.len() {
            self.set_next(ci, None);
            self.checks[ci].running = false;
        }
        self.timers.clear();
        self.started = false;
    }

    /// A new configuration (`clear_diff_services` + `init_services`): virtual servers and real servers
    /// that are gone are removed, new ones are added (alpha checkers start down), and kept ones keep
    /// their state and their checkers' state when the checker did not change. Attempts in flight are
    /// forgotten (their results are ignored).
    pub fn reload(&mut self, now: Instant, config: Vec<VirtualServer>) {
        let old_vss = std::mem::take(&mut self.vss);
        let old_checks = std::mem::take(&mut self.checks);
        // Deadlines name checkers by index: the old ones mean nothing now.
        self.timers.clear();
        for vs in config {
            self.add_vs(vs);
        }
        // Remove what is gone; carry what stays.
        let mut old = Engine {
            vss: old_vss,
            checks: old_checks,
            actions: VecDeque::new(),
            rng: 0,
            started: true,
            timers: BinaryHeap::new(),
        };
        for ovi in 0..old.vss.len() {
            let target = old.vss[ovi].cfg.target.clone();
            let Some(nvi) = self.vss.iter().position(|v| v.cfg.target == target) else {
                if old.vss[ovi].alive {
                    old.clear_vs(ovi, false);
                }
                continue;
            };
            let (ov, nv) = (&old.vss[ovi], &mut self.vss[nvi]);
            nv.alive = ov.alive;
            nv.quorum_up = ov.quorum_up;
            nv.reloaded = true;
            nv.ha_addr_count = ov.ha_addr_count;
            let changed = ov.cfg.scheduler != nv.cfg.scheduler
                || ov.cfg.flags != nv.cfg.flags
                || ov.cfg.persistence_engine != nv.cfg.persistence_engine
                || ov.cfg.persistence_granularity != nv.cfg.persistence_granularity
                || ov.cfg.persistence_timeout != nv.cfg.persistence_timeout;
            if changed && ov.alive {
                self.service_cmd(nvi, Cmd::Edit);
            }
            // Real servers.
            for ori in 0..old.vss[ovi].rs.len() {
                let oaddr = old.vss[ovi].rs[ori].addr;
                let Some(nri) = self.vss[nvi].rs.iter().position(|r| r.addr == oaddr) else {
                    old.clear_rs(ovi, ori, false);
                    continue;
                };
                self.migrate_rs(&old, ovi, ori, nvi, nri, now);
            }
            // The sorry server, if unchanged, keeps its state; else the old one goes.
            let same_sorry = match (&old.vss[ovi].sorry, &self.vss[nvi].sorry) {
                (Some(o), Some(n)) => o.addr == n.addr,
                _ => false,
            };
            if same_sorry {
                if let (Some(o), Some(n)) = (&old.vss[ovi].sorry, &mut self.vss[nvi].sorry) {
                    n.alive = o.alive;
                    n.set = o.set;
                    n.reloaded = true;
                }
            } else if let Some(o) = &old.vss[ovi].sorry
                && (o.alive || (o.inhibit && o.set))
            {
                if let Some(s) = &mut old.vss[ovi].sorry {
                    s.inhibit = false;
                }
                old.dest_cmd(ovi, Sel::Sorry, Cmd::Del);
            }
        }
        // The old engine's removals come first.
        let mut first: VecDeque<Action> = old.actions.drain(..).collect();
        first.append(&mut self.actions);
        self.actions = first;
        // New real servers of kept virtual servers: alpha checkers start down (check_new_rs_state).
        for ci in 0..self.checks.len() {
            let (vi, ri) = (self.checks[ci].vs, self.checks[ci].rs);
            if self.vss[vi].rs[ri].reloaded || !self.checks[ci].alpha || !self.vss[vi].reloaded {
                continue;
            }
            self.vss[vi].rs[ri].alive = false;
        }
        for vi in 0..self.vss.len() {
            self.init_vs(vi);
        }
        for ci in 0..self.checks.len() {
            if self.checks[ci].next.is_none() {
                self.schedule_first(ci, now);
            }
        }
        self.started = true;
    }

    /// `clear_diff_rs` + `migrate_checkers` for one kept real server.
    fn migrate_rs(
        &mut self,
        old: &Engine,
        ovi: usize,
        ori: usize,
        nvi: usize,
        nri: usize,
        now: Instant,
    ) {
        let o = &old.vss[ovi].rs[ori];
        {
            let n = &mut self.vss[nvi].rs[nri];
            n.alive = o.alive;
            n.set = o.set;
            n.reloaded = true;
            n.last_failure = o.last_failure.clone();
        }
        let new_weight = self.vss[nvi].rs[nri].effective_weight;
        self.vss[nvi].rs[nri].effective_weight = o.effective_weight;
        // Checkers: an unchanged checker keeps its state and schedule.
        let ochecks: Vec<usize> = o.checks.clone();
        let nchecks: Vec<usize> = self.vss[nvi].rs[nri].checks.clone();
        let mut used = vec![false; ochecks.len()];
        for &nci in &nchecks {
            let found = ochecks
                .iter()
                .enumerate()
                .find(|(k, oci)| !used[*k] && old.checks[**oci].cfg == self.checks[nci].cfg);
            if let Some((k, &oci)) = found {
                used[k] = true;
                let oc = &old.checks[oci];
                let (up, has_run) = (oc.is_up, oc.has_run);
                if has_run && self.checks[nci].is_up != up {
                    self.set_checker_state(nci, up);
                }
                let nc = &mut self.checks[nci];
                nc.has_run = has_run;
                if oc.retry_it > 0 && nc.retry > 0 {
                    nc.retry_it = oc.retry_it.min(nc.retry - 1);
                }
                nc.last_exit = oc.last_exit;
                // migrate_misc_check: the weight a dynamic exit status gives, against the new
                // configured weight. keepalived computes `status - 2 - iweight` for status 0 too,
                // which zeroes a healthy server's weight at each reload; status 0 adds nothing here.
                nc.cur_weight = match &nc.cfg.kind {
                    CheckKind::Misc(m) if m.dynamic && oc.last_exit >= 2 => {
                        i64::from(oc.last_exit) - 2 - new_weight
                    }
                    CheckKind::Misc(m) if m.dynamic && oc.last_exit == 1 => oc.cur_weight,
                    _ => 0,
                };
                nc.last_ran = oc.last_ran;
                nc.last_failure = oc.last_failure.clone();
                // An attempt in flight is forgotten: check again now.
                let next = if oc.running {
                    now
                } else {
                    oc.next.unwrap_or(now)
                };
                self.set_next(nci, Some(next));
            }
        }
        // How many checkers really failed.
        let mut failed = 0;
        let mut any_run = false;
        for &nci in &nchecks {
            let c = &self.checks[nci];
            if c.has_run && !c.is_up {
                failed += 1;
            }
            any_run |= c.has_run;
        }
        // set_checker_state may have counted; recount from the checkers.
        self.vss[nvi].rs[nri].num_failed = failed;
        let alive = self.vss[nvi].rs[nri].alive;
        if failed > 0 || (!alive && !any_run) {
            for &nci in &nchecks {
                if !self.checks[nci].has_run {
                    if self.checks[nci].alpha {
                        self.checks[nci].is_up = false;
                        self.vss[nvi].rs[nri].num_failed += 1;
                    }
                    self.checks[nci].retry_it = self.checks[nci].retry;
                }
            }
        }
        let rs = &self.vss[nvi].rs[nri];
        if rs.num_failed == 0 && !rs.alive {
            self.perform_svr_state(nvi, nri, true, None);
        } else if rs.num_failed > 0 && rs.set != rs.inhibit {
            let cmd = if rs.inhibit { Cmd::Add } else { Cmd::Del };
            self.dest_cmd(nvi, Sel::Rs(nri), cmd);
        }
        // A new forwarding method is pushed to the kernel (clear_diff_rs).
        if o.fwd != self.vss[nvi].rs[nri].fwd && self.vss[nvi].rs[nri].set {
            self.dest_cmd(nvi, Sel::Rs(nri), Cmd::Edit);
        }
        // set_effective_weights + init_service_rs: the weight is the configured one plus what the
        // checkers add (misc_dynamic), and a change is pushed like any weight change.
        let iweight = self.vss[nvi].rs[nri].iweight;
        let target = iweight
            + nchecks
                .iter()
                .map(|&ci| self.checks[ci].cur_weight)
                .sum::<i64>();
        if target != self.vss[nvi].rs[nri].effective_weight {
            self.update_weight(nvi, nri, target, false);
        }
    }

    /// Every virtual server's state (for `vrrpd status`).
    pub fn status(&self) -> Vec<VirtualServerStatus> {
        self.vss
            .iter()
            .map(|vs| VirtualServerStatus {
                name: vs.name.clone(),
                quorum_up: vs.quorum_up,
                sorry_server_active: vs.sorry.as_ref().is_some_and(|s| s.alive),
                real_servers: vs
                    .rs
                    .iter()
                    .map(|r| RealServerStatus {
                        addr: r.cfg.addr,
                        alive: r.alive,
                        in_ipvs: r.set,
                        weight: real_weight(r.effective_weight),
                        checks: r
                            .checks
                            .iter()
                            .map(|&ci| {
                                let c = &self.checks[ci];
                                CheckStatus {
                                    kind: kind_name(&c.cfg.kind),
                                    up: c.is_up,
                                    has_run: c.has_run,
                                    last_failure: c.last_failure.clone(),
                                }
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect()
    }

    /// The IPVS services of every virtual server, with their families (what the engine owns).
    pub fn services(&self) -> Vec<ServiceKey> {
        self.vss.iter().flat_map(|v| v.services.clone()).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HttpStep {
    New,
    Retry,
    Failed,
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
