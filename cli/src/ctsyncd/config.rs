//! `conntrackd.conf` reader (conntrack-tools 1.4.7's grammar: `read_config_lex.l`, `read_config_yy.y`).
//!
//! Every value keeps its line: a malformed file stops with `file:line: reason`, and a clause ctsyncd
//! does not implement is reported as a warning with its line (or refused, when running without it would
//! do something else than the user asked).

use ctsync_proto::driver::{
    ChannelConfig, CommitOptions, DriverConfig, Filter, Link, Logic, Net, SchedPolicy,
};
use ctsync_proto::{AlarmConfig, FtfwConfig, NotrackConfig, SessionConfig};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// conntrackd's default configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/conntrackd/conntrackd.conf";
/// conntrackd's default lock file.
pub const DEFAULT_LOCKFILE: &str = "/var/lock/conntrackd.lock";
/// conntrackd's default log file (`LogFile on`).
pub const DEFAULT_LOGFILE: &str = "/var/log/conntrackd.log";

/// A parse error: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0: the file as a whole).
    pub line: usize,
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.reason)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

/// `Syslog` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syslog {
    /// Off.
    Off,
    /// On with a facility number (`LOG_DAEMON` = 3 << 3, `LOG_LOCALn` = (16 + n) << 3).
    Facility(u8),
}

/// The sync mode and its options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeCfg {
    /// FT-FW.
    Ftfw,
    /// ALARM.
    Alarm,
    /// NOTRACK.
    Notrack,
}

/// What ctsyncd runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file read.
    pub file: PathBuf,
    /// Library settings (session, channel, filter, commit, netlink).
    pub driver: DriverConfig,
    /// `LockFile`.
    pub lockfile: PathBuf,
    /// `UNIX { Path }`.
    pub unix_path: PathBuf,
    /// `LogFile` (None: off).
    pub logfile: Option<PathBuf>,
    /// `Syslog`.
    pub syslog: Syslog,
    /// `StartupResync`.
    pub startup_resync: bool,
    /// The mode.
    pub mode: ModeCfg,
    /// `HashSize`.
    pub hashsize: usize,
    /// `Scheduler { Type }` (`SCHED_RR` by default, as conntrackd).
    pub sched_policy: SchedPolicy,
    /// `Scheduler { Priority }` (`None`: the policy's highest, as conntrackd).
    pub sched_priority: Option<i32>,
    /// Warnings, each `file:line: text`, to log at start.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Open,
    Close,
    Word(String),
}

#[derive(Debug, Clone)]
struct T {
    tok: Tok,
    line: usize,
}

fn lex(text: &str) -> Vec<T> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.split('#').next().unwrap_or("");
        let mut word = String::new();
        let flush = |w: &mut String, out: &mut Vec<T>| {
            if !w.is_empty() {
                out.push(T {
                    tok: Tok::Word(std::mem::take(w)),
                    line,
                });
            }
        };
        for c in l.chars() {
            match c {
                '{' | '}' => {
                    flush(&mut word, &mut out);
                    out.push(T {
                        tok: if c == '{' { Tok::Open } else { Tok::Close },
                        line,
                    });
                }
                c if c.is_whitespace() => flush(&mut word, &mut out),
                c => word.push(c),
            }
        }
        flush(&mut word, &mut out);
    }
    out
}

struct P<'a> {
    toks: Vec<T>,
    pos: usize,
    file: &'a Path,
    warnings: Vec<String>,
}

type R<T> = Result<T, ConfigError>;

impl P<'_> {
    fn err<X>(&self, line: usize, reason: impl Into<String>) -> R<X> {
        Err(ConfigError {
            file: self.file.to_path_buf(),
            line,
            reason: reason.into(),
        })
    }
    fn warn(&mut self, line: usize, text: impl AsRef<str>) {
        self.warnings.push(format!(
            "{}:{}: {}",
            self.file.display(),
            line,
            text.as_ref()
        ));
    }
    fn last_line(&self) -> usize {
        self.toks.last().map_or(0, |t| t.line)
    }
    fn peek(&self) -> Option<&T> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<T> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    /// The next word (a value), or an error naming what `key` wanted.
    fn value(&mut self, key: &str, key_line: usize) -> R<(String, usize)> {
        match self.next() {
            Some(T {
                tok: Tok::Word(w),
                line,
            }) => Ok((w, line)),
            Some(t) => self.err(t.line, format!("`{key}` needs a value")),
            None => self.err(key_line, format!("`{key}` needs a value")),
        }
    }
    fn open(&mut self, what: &str, line: usize) -> R<()> {
        match self.next() {
            Some(T { tok: Tok::Open, .. }) => Ok(()),
            Some(t) => self.err(t.line, format!("expected `{{` after `{what}`")),
            None => self.err(line, format!("expected `{{` after `{what}`")),
        }
    }
    /// The next key of a block, or None at its `}`.
    fn key(&mut self, block: &str, open_line: usize) -> R<Option<(String, usize)>> {
        match self.next() {
            Some(T {
                tok: Tok::Word(w),
                line,
            }) => Ok(Some((w, line))),
            Some(T {
                tok: Tok::Close, ..
            }) => Ok(None),
            Some(T {
                tok: Tok::Open,
                line,
            }) => self.err(line, "unexpected `{`"),
            None => self.err(
                self.last_line().max(open_line),
                format!("`{block}` block opened at line {open_line} is not closed"),
            ),
        }
    }
    fn number(&mut self, key: &str, line: usize) -> R<u64> {
        let (v, l) = self.value(key, line)?;
        match v.parse::<u64>() {
            Ok(n) if n <= i32::MAX as u64 => Ok(n),
            _ => self.err(l, format!("`{key}` wants a number, not `{v}`")),
        }
    }
    fn boolean(&mut self, key: &str, line: usize) -> R<bool> {
        let (v, l) = self.value(key, line)?;
        match parse_bool(&v) {
            Some(b) => Ok(b),
            None => self.err(l, format!("`{key}` wants on or off, not `{v}`")),
        }
    }
    fn path(&mut self, key: &str, line: usize) -> R<PathBuf> {
        let (v, l) = self.value(key, line)?;
        if !v.starts_with('/') {
            return self.err(l, format!("`{key}` wants an absolute path, not `{v}`"));
        }
        Ok(PathBuf::from(v))
    }
    fn ip(&mut self, key: &str, line: usize) -> R<IpAddr> {
        let (v, l) = self.value(key, line)?;
        match v.parse() {
            Ok(a) => Ok(a),
            Err(_) => self.err(l, format!("`{key}`: `{v}` is not a valid IP address")),
        }
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "on" | "yes" => Some(true),
        "off" | "no" => Some(false),
        _ => None,
    }
}

#[derive(Default)]
struct ChannelDraft {
    kind: &'static str,
    line: usize,
    default: bool,
    v4: Option<IpAddr>,
    v6: Option<IpAddr>,
    dest: Option<IpAddr>,
    iface_addr: Option<Ipv4Addr>,
    iface: Option<(String, usize)>,
    port: Option<u16>,
    sndbuf: usize,
    rcvbuf: usize,
    checksum: bool,
}

#[derive(Default)]
struct Draft {
    mode: Option<(ModeCfg, usize)>,
    resend_queue_size: Option<usize>,
    window_size: Option<u32>,
    commit_timeout: Option<u32>,
    purge_timeout: Option<u64>,
    refresh: Option<u32>,
    cache_timeout: Option<u64>,
    startup_resync: bool,
    channels: Vec<ChannelDraft>,
    tcp_window_tracking: bool,
    expectations: bool,
    hashsize: Option<usize>,
    hashlimit: Option<usize>,
    logfile: Option<PathBuf>,
    syslog: Option<Syslog>,
    lockfile: Option<PathBuf>,
    unix_path: Option<PathBuf>,
    netlink_buffer: Option<usize>,
    netlink_buffer_max: Option<usize>,
    overrun_resync: Option<Option<u64>>,
    events_reliable: bool,
    filter: Filter,
    saw_sync: bool,
    sched_policy: SchedPolicy,
    sched_priority: Option<i32>,
}

/// Reads and checks a configuration file.
pub fn load(file: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read(file).map_err(|e| ConfigError {
        file: file.to_path_buf(),
        line: 0,
        reason: format!("cannot read: {e}"),
    })?;
    let text = String::from_utf8_lossy(&text);
    parse(file, &text)
}

/// The body of the `conntrackd_conf` fuzz target, public so that its corpus replays as an ordinary
/// test: reads `data` (as UTF-8, lossily) as a configuration named `fuzz.conf`. Nothing may panic; an
/// error names a line of the file (or none, for the file as a whole); a file that reads builds the
/// sync session it describes.
#[doc(hidden)]
pub fn fuzz_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match parse(Path::new("fuzz.conf"), &text) {
        Ok(c) => {
            let mode = c.driver.session.mode();
            let s = c.driver.session.build(std::time::Instant::now());
            assert_eq!(s.mode(), mode, "the session built is not the mode read");
        }
        Err(e) => {
            let lines = text.lines().count().max(1);
            assert!(e.line <= lines + 1, "{e}: line out of the file");
            assert!(!e.reason.is_empty(), "an error without a reason");
        }
    }
}

/// Parses configuration text (`file` names it in errors).
pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
    let mut p = P {
        toks: lex(text),
        pos: 0,
        file,
        warnings: Vec::new(),
    };
    let mut d = Draft::default();
    while let Some(t) = p.next() {
        let Tok::Word(w) = t.tok else {
            return p.err(t.line, "unexpected brace at the top level");
        };
        match w.as_str() {
            "General" => {
                p.open("General", t.line)?;
                general(&mut p, &mut d, t.line)?;
            }
            "Sync" => {
                p.open("Sync", t.line)?;
                d.saw_sync = true;
                sync(&mut p, &mut d, t.line)?;
            }
            "Stats" => {
                return p.err(
                    t.line,
                    "the `Stats` mode (connection logging) is not implemented by ctsyncd; it only synchronises (`Sync`)",
                );
            }
            "Helper" => {
                return p.err(
                    t.line,
                    "user-space helpers (`Helper`) are not implemented by ctsyncd",
                );
            }
            other => return p.err(t.line, format!("unknown section `{other}`")),
        }
    }
    finish(file, d, p.warnings)
}

fn general(p: &mut P<'_>, d: &mut Draft, open: usize) -> R<()> {
    while let Some((k, line)) = p.key("General", open)? {
        match k.as_str() {
            "HashSize" => d.hashsize = Some(p.number(&k, line)? as usize),
            "HashLimit" => d.hashlimit = Some(p.number(&k, line)? as usize),
            "LogFile" => {
                let (v, l) = p.value(&k, line)?;
                d.logfile = match parse_bool(&v) {
                    Some(true) => Some(PathBuf::from(DEFAULT_LOGFILE)),
                    Some(false) => None,
                    None if v.starts_with('/') => Some(PathBuf::from(v)),
                    None => {
                        return p.err(l, format!("`LogFile` wants on, off or a path, not `{v}`"));
                    }
                };
            }
            "Syslog" => {
                let (v, l) = p.value(&k, line)?;
                d.syslog = Some(match parse_bool(&v) {
                    Some(true) => Syslog::Facility(3 << 3),
                    Some(false) => Syslog::Off,
                    None => match v.as_str() {
                        "daemon" => Syslog::Facility(3 << 3),
                        s if s.len() == 6
                            && s.starts_with("local")
                            && s.as_bytes()[5].is_ascii_digit()
                            && s.as_bytes()[5] <= b'7' =>
                        {
                            Syslog::Facility((16 + (s.as_bytes()[5] - b'0')) << 3)
                        }
                        _ => {
                            p.warn(l, format!("'{v}' is not a known syslog facility, ignoring"));
                            continue;
                        }
                    },
                });
            }
            "LockFile" => d.lockfile = Some(p.path(&k, line)?),
            "UNIX" => {
                p.open("UNIX", line)?;
                while let Some((k, line)) = p.key("UNIX", line)? {
                    match k.as_str() {
                        "Path" => {
                            let path = p.path(&k, line)?;
                            if path.as_os_str().len() >= 108 {
                                return p.err(line, "Path is longer than 107 characters");
                            }
                            d.unix_path = Some(path);
                        }
                        "Backlog" => {
                            p.number(&k, line)?;
                            p.warn(line, "deprecated unix backlog configuration, ignoring.");
                        }
                        _ => return p.err(line, format!("unknown key `{k}` in `UNIX`")),
                    }
                }
            }
            "NetlinkBufferSize" | "SocketBufferSize" => {
                d.netlink_buffer = Some(p.number(&k, line)? as usize)
            }
            "NetlinkBufferSizeMaxGrowth"
            | "SocketBufferSizeMaxGrowth"
            | "SocketBufferSizeMaxGrown" => {
                d.netlink_buffer_max = Some(p.number(&k, line)? as usize)
            }
            "NetlinkOverrunResync" => {
                let (v, l) = p.value(&k, line)?;
                d.overrun_resync = Some(match (parse_bool(&v), v.parse::<u64>()) {
                    (Some(true), _) => Some(30),
                    (Some(false), _) => None,
                    (None, Ok(0)) => Some(30),
                    (None, Ok(n)) => Some(n),
                    _ => {
                        return p.err(
                            l,
                            format!("`NetlinkOverrunResync` wants on, off or seconds, not `{v}`"),
                        );
                    }
                });
            }
            "NetlinkEventsReliable" => d.events_reliable = p.boolean(&k, line)?,
            "EventIterationLimit" => {
                p.number(&k, line)?;
            }
            "PollSecs" => {
                p.number(&k, line)?;
                p.warn(
                    line,
                    "`PollSecs` (polling mode) is not implemented by ctsyncd: it follows kernel events",
                );
            }
            "Nice" => {
                p.value(&k, line)?;
                p.warn(
                    line,
                    "deprecated nice configuration, ignoring. The nice value can be set externally with nice(1) and renice(1).",
                );
            }
            "Scheduler" => {
                p.open("Scheduler", line)?;
                while let Some((k, kl)) = p.key("Scheduler", line)? {
                    match k.as_str() {
                        "Type" => {
                            let (v, vl) = p.value(&k, kl)?;
                            d.sched_policy = match v.to_ascii_lowercase().as_str() {
                                "rr" => SchedPolicy::RoundRobin,
                                "fifo" => SchedPolicy::Fifo,
                                _ => return p.err(vl, format!("unknown scheduler `{v}'")),
                            };
                        }
                        "Priority" => {
                            let n = p.number(&k, kl)?;
                            if n > 99 {
                                return p.err(kl, "`Priority' must be [0, 99]");
                            }
                            d.sched_priority = Some(n as i32);
                        }
                        _ => return p.err(kl, format!("unknown key `{k}` in `Scheduler`")),
                    }
                }
            }
            "Systemd" => {
                if p.boolean(&k, line)? {
                    p.warn(
                        line,
                        "`Systemd on` is not implemented by ctsyncd (no sd_notify), ignoring",
                    );
                }
            }
            "Filter" => filter(p, d, line)?,
            _ => return p.err(line, format!("unknown key `{k}` in `General`")),
        }
    }
    Ok(())
}

fn filter(p: &mut P<'_>, d: &mut Draft, line: usize) -> R<()> {
    // `Filter {`, `Filter From Userspace {`, `Filter From Kernelspace {`.
    if let Some(Tok::Word(w)) = p.peek().map(|t| t.tok.clone()) {
        if w != "From" {
            return p.err(line, format!("`Filter` wants `From` or `{{`, not `{w}`"));
        }
        p.next();
        let (v, l) = p.value("Filter From", line)?;
        if v != "Userspace" && v != "Kernelspace" {
            return p.err(
                l,
                format!("`Filter From` wants Userspace or Kernelspace, not `{v}`"),
            );
        }
    }
    p.open("Filter", line)?;
    while let Some((k, kl)) = p.key("Filter", line)? {
        let (lv, ll) = p.value(&k, kl)?;
        let logic = match lv.as_str() {
            "Accept" => Logic::Accept,
            "Ignore" => Logic::Ignore,
            _ => return p.err(ll, format!("`{k}` wants Accept or Ignore, not `{lv}`")),
        };
        p.open(&k, kl)?;
        match k.as_str() {
            "Protocol" => {
                let mut list = d.filter.protocols.take().map(|x| x.1).unwrap_or_default();
                while let Some((name, nl)) = p.key("Protocol", kl)? {
                    match protocol_number(&name) {
                        Some(n) => list.push(n),
                        None => p.warn(
                            nl,
                            format!(
                                "getprotobyname() cannot find protocol `{name}' in /etc/protocols"
                            ),
                        ),
                    }
                }
                d.filter.protocols = Some((logic, list));
            }
            "Address" => {
                let mut list = d.filter.addresses.take().map(|x| x.1).unwrap_or_default();
                while let Some((fam, al)) = p.key("Address", kl)? {
                    let (v, vl) = p.value(&fam, al)?;
                    let (addr, prefix) = match v.split_once('/') {
                        Some((a, c)) => (a, Some(c)),
                        None => (v.as_str(), None),
                    };
                    let parsed: Option<IpAddr> = addr.parse().ok();
                    let ok_fam = match (fam.as_str(), parsed) {
                        ("IPv4_address", Some(IpAddr::V4(_))) => true,
                        ("IPv6_address", Some(IpAddr::V6(_))) => true,
                        ("IPv4_address" | "IPv6_address", _) => false,
                        _ => return p.err(al, format!("unknown key `{fam}` in `Address`")),
                    };
                    let max = if fam == "IPv4_address" { 32 } else { 128 };
                    let prefix = match prefix.map(str::parse::<u8>) {
                        None => Some(max),
                        Some(Ok(c)) if c <= max => Some(c),
                        _ => None,
                    };
                    match (ok_fam, parsed, prefix) {
                        (true, Some(a), Some(prefix)) => list.push(Net { addr: a, prefix }),
                        (true, Some(_), None) => {
                            p.warn(vl, format!("{v} is not a valid network, ignoring"))
                        }
                        _ => p.warn(
                            vl,
                            format!(
                                "{addr} is not a valid {}, ignoring",
                                if max == 32 { "IPv4" } else { "IPv6" }
                            ),
                        ),
                    }
                }
                d.filter.addresses = Some((logic, list));
            }
            "State" => {
                let mut list = d.filter.tcp_states.take().map(|x| x.1).unwrap_or_default();
                let mut pending = Vec::new();
                while let Some((w, wl)) = p.key("State", kl)? {
                    if w == "for" {
                        let (proto, pl) = p.value("for", wl)?;
                        if proto != "TCP" {
                            return p.err(pl, format!("states are only for TCP, not `{proto}`"));
                        }
                        list.append(&mut pending);
                        continue;
                    }
                    match tcp_state(w.trim_end_matches(',')) {
                        Some(s) => pending.push(s),
                        None => return p.err(wl, format!("unknown TCP state `{w}`")),
                    }
                }
                if !pending.is_empty() {
                    return p.err(kl, "a state list must end with `for TCP`");
                }
                d.filter.tcp_states = Some((logic, list));
            }
            _ => {
                return p.err(
                    kl,
                    format!("unknown filter `{k}` (Protocol, Address or State)"),
                );
            }
        }
    }
    Ok(())
}

fn protocol_number(name: &str) -> Option<u8> {
    Some(match name.to_ascii_lowercase().as_str() {
        "icmp" => 1,
        "igmp" => 2,
        "tcp" => 6,
        "udp" => 17,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "ipv6-icmp" | "icmpv6" => 58,
        "dccp" => 33,
        "sctp" => 132,
        "udplite" => 136,
        _ => return None,
    })
}

fn tcp_state(s: &str) -> Option<u8> {
    Some(match s {
        "SYN_SENT" => 1,
        "SYN_RECV" => 2,
        "ESTABLISHED" => 3,
        "FIN_WAIT" => 4,
        "CLOSE_WAIT" => 5,
        "LAST_ACK" => 6,
        "TIME_WAIT" => 7,
        "CLOSE" | "CLOSED" => 8,
        "LISTEN" => 9,
        _ => return None,
    })
}

fn sync(p: &mut P<'_>, d: &mut Draft, open: usize) -> R<()> {
    while let Some((k, line)) = p.key("Sync", open)? {
        match k.as_str() {
            "Mode" => {
                let (m, ml) = p.value("Mode", line)?;
                let mode = match m.to_ascii_lowercase().as_str() {
                    "ftfw" => ModeCfg::Ftfw,
                    "nack" => {
                        p.warn(ml, "Now `nack' mode is called `ftfw'. Please, update your conntrackd.conf file.");
                        ModeCfg::Ftfw
                    }
                    "alarm" => ModeCfg::Alarm,
                    "persistent" => {
                        p.warn(ml, "Now `persistent' mode is called `alarm'. Please, update your conntrackd.conf file.");
                        ModeCfg::Alarm
                    }
                    "notrack" => ModeCfg::Notrack,
                    _ => {
                        return p.err(
                            ml,
                            format!("unknown sync mode `{m}` (FTFW, ALARM or NOTRACK)"),
                        );
                    }
                };
                if let Some((_, first)) = d.mode {
                    return p.err(
                        line,
                        format!("a second `Mode` (the first is at line {first})"),
                    );
                }
                d.mode = Some((mode, line));
                p.open("Mode", line)?;
                while let Some((k, kl)) = p.key("Mode", line)? {
                    mode_key(p, d, mode, &k, kl)?;
                }
            }
            "RefreshTime" | "CacheTimeout" | "CommitTimeout" | "PurgeTimeout" => {
                let mode = d.mode.map_or(ModeCfg::Alarm, |m| m.0);
                mode_key(p, d, mode, &k, line)?;
            }
            "Multicast" | "UDP" => channel(p, d, &k, line)?,
            "TCP" => {
                return p.err(
                    line,
                    "the `TCP` dedicated link is not implemented by ctsyncd (use `UDP` or `Multicast`)",
                );
            }
            "Options" => {
                p.open("Options", line)?;
                while let Some((k, kl)) = p.key("Options", line)? {
                    match k.as_str() {
                        "TCPWindowTracking" => d.tcp_window_tracking = p.boolean(&k, kl)?,
                        "ExpectationSync" => {
                            if matches!(p.peek().map(|t| &t.tok), Some(Tok::Open)) {
                                p.next();
                                let mut names = Vec::new();
                                while let Some((n, _)) = p.key("ExpectationSync", kl)? {
                                    names.push(n);
                                }
                                if !names.is_empty() {
                                    p.warn(
                                        kl,
                                        format!(
                                            "`ExpectationSync {{ {} }}`: ctsyncd replicates the expectations of every helper",
                                            names.join(" ")
                                        ),
                                    );
                                }
                                d.expectations = true;
                            } else {
                                d.expectations = p.boolean(&k, kl)?;
                            }
                        }
                        _ => return p.err(kl, format!("unknown key `{k}` in `Options`")),
                    }
                }
            }
            _ => return p.err(line, format!("unknown key `{k}` in `Sync`")),
        }
    }
    Ok(())
}

fn mode_key(p: &mut P<'_>, d: &mut Draft, mode: ModeCfg, k: &str, line: usize) -> R<()> {
    let allowed: &[&str] = match mode {
        ModeCfg::Ftfw => &[
            "ResendQueueSize",
            "CommitTimeout",
            "PurgeTimeout",
            "ACKWindowSize",
            "DisableExternalCache",
            "StartupResync",
        ],
        ModeCfg::Alarm => &[
            "RefreshTime",
            "CacheTimeout",
            "CommitTimeout",
            "PurgeTimeout",
        ],
        ModeCfg::Notrack => &[
            "CommitTimeout",
            "PurgeTimeout",
            "DisableInternalCache",
            "DisableExternalCache",
            "StartupResync",
        ],
    };
    if !allowed.contains(&k) {
        return p.err(line, format!("`{k}` is not an option of this mode"));
    }
    match k {
        "ResendQueueSize" => d.resend_queue_size = Some(p.number(k, line)? as usize),
        "ACKWindowSize" => d.window_size = Some(p.number(k, line)? as u32),
        "CommitTimeout" => d.commit_timeout = Some(p.number(k, line)? as u32),
        "PurgeTimeout" => d.purge_timeout = Some(p.number(k, line)?),
        "RefreshTime" => d.refresh = Some(p.number(k, line)? as u32),
        "CacheTimeout" => d.cache_timeout = Some(p.number(k, line)?),
        "StartupResync" => d.startup_resync = p.boolean(k, line)?,
        "DisableExternalCache" => {
            if p.boolean(k, line)? {
                return p.err(
                    line,
                    "`DisableExternalCache on` (direct injection into the kernel) is not implemented by ctsyncd",
                );
            }
        }
        _ => {
            if p.boolean(k, line)? {
                p.warn(
                    line,
                    "`DisableInternalCache on` is not implemented by ctsyncd; the internal cache stays on",
                );
            }
        }
    }
    Ok(())
}

fn channel(p: &mut P<'_>, d: &mut Draft, kind: &str, line: usize) -> R<()> {
    let mut c = ChannelDraft {
        kind: if kind == "UDP" { "UDP" } else { "Multicast" },
        line,
        checksum: true,
        ..ChannelDraft::default()
    };
    if let Some(prev) = d.channels.first()
        && prev.kind != c.kind
    {
        return p.err(
            line,
            format!("cannot use `{kind}` with other dedicated link protocols!"),
        );
    }
    if let Some(Tok::Word(w)) = p.peek().map(|t| t.tok.clone()) {
        if w != "Default" {
            return p.err(line, format!("`{kind}` wants `Default` or `{{`, not `{w}`"));
        }
        p.next();
        c.default = true;
    }
    p.open(kind, line)?;
    while let Some((k, kl)) = p.key(kind, line)? {
        match (c.kind, k.as_str()) {
            (_, "IPv4_address") => match p.ip(&k, kl)? {
                a @ IpAddr::V4(_) => c.v4 = Some(a),
                _ => return p.err(kl, "`IPv4_address` wants an IPv4 address"),
            },
            (_, "IPv6_address") => match p.ip(&k, kl)? {
                a @ IpAddr::V6(_) => c.v6 = Some(a),
                _ => return p.err(kl, "`IPv6_address` wants an IPv6 address"),
            },
            ("UDP", "IPv4_Destination_Address" | "IPv6_Destination_Address") => {
                c.dest = Some(p.ip(&k, kl)?)
            }
            ("Multicast", "IPv4_interface") => match p.ip(&k, kl)? {
                IpAddr::V4(a) => c.iface_addr = Some(a),
                _ => return p.err(kl, "`IPv4_interface` wants an IPv4 address"),
            },
            ("Multicast", "IPv6_interface") => {
                p.value(&k, kl)?;
                p.warn(kl, "`IPv6_interface' not required, ignoring");
            }
            (_, "Interface") => c.iface = Some(p.value(&k, kl)?),
            ("UDP", "Port") | ("Multicast", "Group") => {
                let n = p.number(&k, kl)?;
                c.port = Some(u16::try_from(n).map_err(|_| ConfigError {
                    file: p.file.to_path_buf(),
                    line: kl,
                    reason: format!("`{k}` {n} is not a port number"),
                })?);
            }
            (_, "SndSocketBuffer") => c.sndbuf = p.number(&k, kl)? as usize,
            (_, "RcvSocketBuffer") => c.rcvbuf = p.number(&k, kl)? as usize,
            (_, "Checksum") => c.checksum = p.boolean(&k, kl)?,
            _ => return p.err(kl, format!("unknown key `{k}` in `{kind}`")),
        }
    }
    d.channels.push(c);
    Ok(())
}

fn ifindex(name: &str) -> Option<u32> {
    let idx = std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex")).ok()?;
    idx.trim().parse().ok()
}

fn finish(file: &Path, d: Draft, mut warnings: Vec<String>) -> Result<Config, ConfigError> {
    let err = |line: usize, reason: String| ConfigError {
        file: file.to_path_buf(),
        line,
        reason,
    };
    if !d.saw_sync {
        return Err(err(0, "no `Sync` section: nothing to synchronise".into()));
    }
    let mode = match d.mode {
        Some((m, _)) => m,
        None => {
            warnings.push(format!(
                "{}: No synchronization mode specified. Defaulting to FT-FW mode.",
                file.display()
            ));
            ModeCfg::Ftfw
        }
    };
    if d.channels.is_empty() {
        return Err(err(
            0,
            "no dedicated link (`Multicast` or `UDP`) in `Sync`".into(),
        ));
    }
    let pick = d.channels.iter().position(|c| c.default).unwrap_or(0);
    for (i, c) in d.channels.iter().enumerate() {
        if i != pick {
            warnings.push(format!(
                "{}:{}: more than one dedicated link: ctsyncd uses only the one at line {} (no link fail-over)",
                file.display(),
                c.line,
                d.channels[pick].line
            ));
        }
    }
    let c = &d.channels[pick];
    let idx = match &c.iface {
        Some((name, l)) => match ifindex(name) {
            Some(i) => i,
            None => {
                warnings.push(format!(
                    "{}:{}: {name} is an invalid interface",
                    file.display(),
                    l
                ));
                0
            }
        },
        None => 0,
    };
    let port = c.port.ok_or_else(|| {
        err(
            c.line,
            format!(
                "`{}` needs a `{}`",
                c.kind,
                if c.kind == "UDP" { "Port" } else { "Group" }
            ),
        )
    })?;
    let link = if c.kind == "UDP" {
        let local = c.v4.or(c.v6).ok_or_else(|| {
            err(
                c.line,
                "`UDP` needs `IPv4_address` or `IPv6_address`".into(),
            )
        })?;
        let peer = c.dest.ok_or_else(|| {
            err(
                c.line,
                "`UDP` needs `IPv4_Destination_Address` or `IPv6_Destination_Address`".into(),
            )
        })?;
        if local.is_ipv4() != peer.is_ipv4() {
            return Err(err(c.line, "`UDP` mixes IPv4 and IPv6 addresses".into()));
        }
        Link::Udp {
            local,
            peer,
            ifindex: idx,
        }
    } else {
        let group = c.v4.or(c.v6).ok_or_else(|| {
            err(
                c.line,
                "`Multicast` needs `IPv4_address` or `IPv6_address`".into(),
            )
        })?;
        if !group.is_multicast() {
            return Err(err(c.line, format!("{group} is not a multicast address")));
        }
        if group.is_ipv6() && idx == 0 {
            return Err(err(
                c.line,
                "IPv6 `Multicast` needs a valid `Interface`".into(),
            ));
        }
        Link::Multicast {
            group,
            interface_addr: c.iface_addr,
            ifindex: idx,
        }
    };
    let mut channel = ChannelConfig::new(link, port);
    channel.sndbuf = c.sndbuf;
    channel.rcvbuf = c.rcvbuf;
    channel.checksum = c.checksum;
    let initial_seq = random_initial_seq();
    let session = match mode {
        ModeCfg::Ftfw => SessionConfig::Ftfw(
            FtfwConfig::default()
                .with_window_size(d.window_size.filter(|w| *w > 0).unwrap_or(300))
                .with_resend_queue_size(d.resend_queue_size.filter(|w| *w > 0).unwrap_or(131_072))
                // Delay rather than lose a burst larger than the resend queue (see FtfwConfig).
                .with_flow_control(true)
                // Stay reliable while a HELLO handshake runs (see FtfwConfig).
                .with_reliable_handshake(true)
                .with_initial_seq(initial_seq),
        ),
        ModeCfg::Alarm => SessionConfig::Alarm(
            AlarmConfig::default()
                .with_refresh_secs(d.refresh.filter(|r| *r > 0).unwrap_or(60))
                .with_cache_timeout(Duration::from_secs(
                    d.cache_timeout.filter(|t| *t > 0).unwrap_or(180),
                ))
                .with_seed(u64::from(initial_seq) ^ (u64::from(std::process::id()) << 32))
                .with_initial_seq(initial_seq),
        ),
        ModeCfg::Notrack => {
            SessionConfig::Notrack(NotrackConfig::default().with_initial_seq(initial_seq))
        }
    };
    let mut driver = DriverConfig::new(session, channel);
    driver.filter = d.filter;
    let mut commit = CommitOptions::new();
    commit.commit_timeout = d.commit_timeout.filter(|t| *t > 0);
    commit.tcp_window_tracking = d.tcp_window_tracking;
    driver.commit = commit;
    driver.expectations = d.expectations;
    driver.event_buffer = d.netlink_buffer.unwrap_or(0);
    driver.event_buffer_max = d.netlink_buffer_max.unwrap_or(0);
    driver.overrun_resync = match d.overrun_resync {
        Some(v) => v.map(Duration::from_secs),
        None => Some(Duration::from_secs(30)),
    };
    driver.events_reliable = d.events_reliable;
    driver.hash_limit = d.hashlimit.filter(|h| *h > 0).unwrap_or(262_144);
    driver.purge_timeout = Duration::from_secs(d.purge_timeout.filter(|t| *t > 0).unwrap_or(60));
    Ok(Config {
        file: file.to_path_buf(),
        driver,
        lockfile: d
            .lockfile
            .unwrap_or_else(|| PathBuf::from(DEFAULT_LOCKFILE)),
        unix_path: d.unix_path.ok_or_else(|| {
            err(
                0,
                "no `UNIX { Path }` in `General`: the client commands need it".into(),
            )
        })?,
        logfile: d.logfile,
        syslog: d.syslog.unwrap_or(Syslog::Off),
        startup_resync: d.startup_resync,
        mode,
        hashsize: d.hashsize.unwrap_or(65_536),
        sched_policy: d.sched_policy,
        sched_priority: d.sched_priority,
        warnings,
    })
}

/// Where our sequence numbers start: at random, not at the time in seconds as conntrackd starts them.
///
/// A daemon restarted within seconds of its last start would otherwise number its messages just
/// behind the last ones its peer saw from it. A peer with the reliable handshake takes a HELLO a
/// little behind the sequence it tracks for a late message of the current run, not a restart
/// (see `FtfwConfig::reliable_handshake`), and drops the plain messages after it, a resync request
/// among them, until the numbers catch up. A random start lands within 8,192 behind the old run
/// with a chance of 2^-19; anywhere else, the HELLO says restart. The peer sees nothing unusual:
/// conntrackd accepts any first sequence number.
fn random_initial_seq() -> u32 {
    use std::hash::BuildHasher;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // std seeds each RandomState from the operating system's random source.
    let h = std::collections::hash_map::RandomState::new().hash_one((now, std::process::id()));
    (h ^ (h >> 32)) as u32
}
