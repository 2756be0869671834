//! Command-line parsing with ipvsadm 1.31's exact rules: popt-style options (short clusters, `--long=value`,
//! an optional argument for `-p`), the command/option legality table, and the same error texts and exit
//! codes. clap is not used here because a drop-in must accept and reject exactly what popt does.
//!
//! Arguments are bytes (`std::env::args_os`), as they are for the C original: an argument that is not
//! UTF-8 is parsed like any other and, where ipvsadm quotes an argument in an error, the bytes are quoted
//! as given. Names sent to the kernel (scheduler, persistence engine, interface) are converted lossily,
//! which changes no outcome for the schedulers and engines Linux has (all ASCII names); an interface whose
//! name is not UTF-8 cannot be used for a sync daemon (ipvsadm can use it).

use super::names;
use ipvs_nl::{
    Daemon, DaemonState, Destination, Family, FwdMethod, Protocol, Scheduler, Service,
    ServiceFlags, ServiceKey, Timeouts, TunnelFlags, TunnelType,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `fail(2, ...)`: parameter errors.
pub const EXIT_PARAM: i32 = 2;
/// `exit(-1)` / `return -1`: popt errors and kernel errors.
pub const EXIT_ERROR: i32 = 255;
/// `exit(1)`: listing errors.
pub const EXIT_LIST: i32 = 1;

/// Why parsing stopped: print `msg` (if any) on stderr and exit with `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// Exit status.
    pub code: i32,
    /// Bytes for stderr, without the final newline (they may quote a non-UTF-8 argument).
    pub msg: Vec<u8>,
}

fn fail(code: i32, msg: impl AsRef<[u8]>) -> Exit {
    Exit {
        code,
        msg: msg.as_ref().to_vec(),
    }
}

/// Concatenates text and argument bytes into one message.
fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// `Try ... -h` and exit 255.
pub fn tryhelp(program: &[u8]) -> Exit {
    fail(
        EXIT_ERROR,
        cat(&[
            b"Try `",
            program,
            b" -h' or '",
            program,
            b" --help' for more information.",
        ]),
    )
}

/// The command (one per invocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Cmd {
    Add = 1,
    Edit,
    Del,
    Flush,
    List,
    AddDest,
    DelDest,
    EditDest,
    Timeout,
    StartDaemon,
    StopDaemon,
    Restore,
    Save,
    Zero,
}

const CMDNAMES: [&str; 14] = [
    "add-service",
    "edit-service",
    "delete-service",
    "flush",
    "list",
    "add-server",
    "delete-server",
    "edit-server",
    "set",
    "start-daemon",
    "stop-daemon",
    "restore",
    "save",
    "zero",
];

/// Option bit numbers (`OPTC_*`).
#[allow(missing_docs)]
pub mod optc {
    pub const NUMERIC: u32 = 0;
    pub const CONNECTION: u32 = 1;
    pub const SERVICE: u32 = 2;
    pub const SCHEDULER: u32 = 3;
    pub const PERSISTENT: u32 = 4;
    pub const NETMASK: u32 = 5;
    pub const SERVER: u32 = 6;
    pub const FORWARD: u32 = 7;
    pub const WEIGHT: u32 = 8;
    pub const UTHRESHOLD: u32 = 9;
    pub const LTHRESHOLD: u32 = 10;
    pub const MCAST: u32 = 11;
    pub const TIMEOUT: u32 = 12;
    pub const DAEMON: u32 = 13;
    pub const STATS: u32 = 14;
    pub const RATE: u32 = 15;
    pub const THRESHOLDS: u32 = 16;
    pub const PERSISTENTCONN: u32 = 17;
    pub const NOSORT: u32 = 18;
    pub const SYNCID: u32 = 19;
    pub const EXACT: u32 = 20;
    pub const ONEPACKET: u32 = 21;
    pub const PE: u32 = 22;
    pub const SCHED_FLAGS: u32 = 23;
    pub const MCAST_GROUP: u32 = 24;
    pub const MCAST_PORT: u32 = 25;
    pub const MCAST_TTL: u32 = 26;
    pub const SYNC_MAXLEN: u32 = 27;
    pub const TUN_INFO: u32 = 28;
    pub const TUN_TYPE: u32 = 29;
    pub const TUN_PORT: u32 = 30;
    pub const TUN_NOCSUM: u32 = 31;
    pub const TUN_CSUM: u32 = 32;
    pub const TUN_REMCSUM: u32 = 33;
}

const OPTNAMES: [&str; 34] = [
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "ops",
    "pe",
    "sched-flags",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
];

/// Legal combinations of commands and options (ipvsadm's `commands_v_options`): `+` compulsory,
/// `x` illegal, `1` exclusive, ` ` optional. One row per command, one column per option bit.
const COMMANDS_V_OPTIONS: [&[u8; 34]; 14] = [
    b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx", // ADD
    b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx", // EDIT
    b"xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // DEL
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // FLUSH
    b" 11xxxxxxxxx11       xxxxxxx xxxxx", // LIST
    b"xx+xxx+    xxxxxxxxxxxxxxxxxx     ", // ADDSRV
    b"xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx", // DELSRV
    b"xx+xxx+    xxxxxxxxxxxxxxxxxx     ", // EDITSRV
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // TIMEOUT
    b"xxxxxxxxxxx xxxxxxx xxxx    xxxxxx", // STARTD
    b"xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx", // STOPD
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // RESTORE
    b" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // SAVE
    b"xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // ZERO
];

/// Output format flags (`FMT_*`).
#[allow(missing_docs)]
pub mod fmt {
    pub const NUMERIC: u32 = 0x0001;
    pub const RULE: u32 = 0x0002;
    pub const STATS: u32 = 0x0004;
    pub const RATE: u32 = 0x0008;
    pub const THRESHOLDS: u32 = 0x0010;
    pub const PERSISTENTCONN: u32 = 0x0020;
    pub const NOSORT: u32 = 0x0040;
    pub const EXACT: u32 = 0x0080;
    pub const TUN_INFO: u32 = 0x0100;
}

/// One fully parsed and checked command line, as `ipvs-nl` values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The command.
    pub cmd: Cmd,
    /// The service (`-t`/`-u`/`--sctp-service`/`-f` and the service options).
    pub service: Service,
    /// The real server (`-r` and the server options).
    pub dest: Destination,
    /// `--set tcp tcpfin udp`.
    pub timeouts: Timeouts,
    /// `--start-daemon`/`--stop-daemon` and the daemon options.
    pub daemon: Daemon,
    /// Option bits given (`1 << optc::*`).
    pub options: u64,
    /// Output format (`fmt::*`).
    pub format: u32,
}

impl Entry {
    /// True when option bit `o` was given.
    pub fn has(&self, o: u32) -> bool {
        self.options & (1u64 << o) != 0
    }
}

const DEF_SCHED: &[u8] = b"wlc";
const MAX_TIMEOUT: i64 = 86400 * 31;
/// `IP_VS_SCHEDNAME_MAXLEN - 1`: ipvsadm copies at most this many bytes of `-s`.
const SCHEDNAME_BYTES: usize = 15;
/// `IP_VS_PENAME_MAXLEN`: ipvsadm copies at most this many bytes of `--pe`.
const PENAME_BYTES: usize = 16;
/// `IP_VS_IFNAME_MAXLEN - 1`.
const IFNAME_BYTES: usize = 15;

/// The service key while the command line is read: ipvsadm's `ipvs_service_t` fields that options
/// change one by one (`-6` after `-f`, a port looked up with the protocol of `-t`/`-u`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyParts {
    /// `None` until a service option is read (ipvsadm's `af == 0`).
    family: Option<Family>,
    protocol: Protocol,
    addr: IpAddr,
    port: u16,
    fwmark: u32,
}

impl KeyParts {
    fn key(&self) -> ServiceKey {
        if self.fwmark != 0 {
            ServiceKey::Fwmark {
                mark: self.fwmark,
                family: self.family.unwrap_or(Family::Ipv4),
            }
        } else {
            ServiceKey::Inet {
                protocol: self.protocol,
                addr: self.addr,
                port: self.port,
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArgKind {
    None,
    Required,
    Optional,
}

/// popt's table: long name, short letter, argument kind, tag (the short letter, or a name for long-only).
const TABLE: &[(&str, Option<u8>, ArgKind, &str)] = &[
    ("add-service", Some(b'A'), ArgKind::None, "A"),
    ("edit-service", Some(b'E'), ArgKind::None, "E"),
    ("delete-service", Some(b'D'), ArgKind::None, "D"),
    ("clear", Some(b'C'), ArgKind::None, "C"),
    ("list", Some(b'L'), ArgKind::None, "L"),
    ("list", Some(b'l'), ArgKind::None, "l"),
    ("zero", Some(b'Z'), ArgKind::None, "Z"),
    ("add-server", Some(b'a'), ArgKind::None, "a"),
    ("edit-server", Some(b'e'), ArgKind::None, "e"),
    ("delete-server", Some(b'd'), ArgKind::None, "d"),
    ("set", None, ArgKind::None, "set"),
    ("help", Some(b'h'), ArgKind::None, "h"),
    ("version", Some(b'v'), ArgKind::None, "v"),
    ("restore", Some(b'R'), ArgKind::None, "R"),
    ("save", Some(b'S'), ArgKind::None, "S"),
    ("start-daemon", None, ArgKind::Required, "start-daemon"),
    ("stop-daemon", None, ArgKind::Required, "stop-daemon"),
    ("tcp-service", Some(b't'), ArgKind::Required, "t"),
    ("udp-service", Some(b'u'), ArgKind::Required, "u"),
    ("sctp-service", None, ArgKind::Required, "sctp-service"),
    ("fwmark-service", Some(b'f'), ArgKind::Required, "f"),
    ("scheduler", Some(b's'), ArgKind::Required, "s"),
    ("persistent", Some(b'p'), ArgKind::Optional, "p"),
    ("netmask", Some(b'M'), ArgKind::Required, "M"),
    ("real-server", Some(b'r'), ArgKind::Required, "r"),
    ("masquerading", Some(b'm'), ArgKind::None, "m"),
    ("ipip", Some(b'i'), ArgKind::None, "i"),
    ("gatewaying", Some(b'g'), ArgKind::None, "g"),
    ("weight", Some(b'w'), ArgKind::Required, "w"),
    ("u-threshold", Some(b'x'), ArgKind::Required, "x"),
    ("l-threshold", Some(b'y'), ArgKind::Required, "y"),
    ("numeric", Some(b'n'), ArgKind::None, "n"),
    ("connection", Some(b'c'), ArgKind::None, "c"),
    (
        "mcast-interface",
        None,
        ArgKind::Required,
        "mcast-interface",
    ),
    ("syncid", None, ArgKind::Required, "syncid"),
    ("timeout", None, ArgKind::None, "timeout"),
    ("daemon", None, ArgKind::None, "daemon"),
    ("stats", None, ArgKind::None, "stats"),
    ("rate", None, ArgKind::None, "rate"),
    ("thresholds", None, ArgKind::None, "thresholds"),
    ("persistent-conn", None, ArgKind::None, "persistent-conn"),
    ("nosort", None, ArgKind::None, "nosort"),
    ("sort", None, ArgKind::None, "sort"),
    ("exact", Some(b'X'), ArgKind::None, "X"),
    ("ipv6", Some(b'6'), ArgKind::None, "6"),
    ("ops", Some(b'o'), ArgKind::None, "o"),
    ("pe", None, ArgKind::Required, "pe"),
    ("sched-flags", Some(b'b'), ArgKind::Required, "b"),
    ("mcast-group", None, ArgKind::Required, "mcast-group"),
    ("mcast-port", None, ArgKind::Required, "mcast-port"),
    ("mcast-ttl", None, ArgKind::Required, "mcast-ttl"),
    ("sync-maxlen", None, ArgKind::Required, "sync-maxlen"),
    ("tun-info", None, ArgKind::None, "tun-info"),
    ("tun-type", None, ArgKind::Required, "tun-type"),
    ("tun-port", None, ArgKind::Required, "tun-port"),
    ("tun-nocsum", None, ArgKind::None, "tun-nocsum"),
    ("tun-csum", None, ArgKind::None, "tun-csum"),
    ("tun-remcsum", None, ArgKind::None, "tun-remcsum"),
];

/// One popt result: an option with its tag, the text popt names in errors, and its argument.
#[derive(Debug)]
struct Opt<'a> {
    tag: &'static str,
    /// A whole argument as typed; for a letter of a short-option cluster, the whole cluster (popt's
    /// `poptBadOption` returns the argv element: ipvsadm prints "invalid option `-ALn'", "-At: missing
    /// argument").
    text: &'a [u8],
    arg: Option<&'a [u8]>,
}

/// popt's option scanner over `argv[1..]`. Borrows everything: `-R` parses every line with it.
struct Popt<'a> {
    args: &'a [Vec<u8>],
    next: usize,
    /// The short-option cluster being read: its argument index and the byte offset of the next letter.
    cluster: Option<(usize, usize)>,
    leftovers: Vec<&'a [u8]>,
    rest_are_args: bool,
}

/// A popt error: the offending option text and the reason.
struct PoptError<'a> {
    text: &'a [u8],
    reason: &'static str,
}

impl<'a> Popt<'a> {
    fn new(args: &'a [Vec<u8>]) -> Self {
        Popt {
            args,
            next: 0,
            cluster: None,
            leftovers: Vec::new(),
            rest_are_args: false,
        }
    }

    fn take_arg(
        &mut self,
        kind: ArgKind,
        attached: Option<&'a [u8]>,
        text: &'a [u8],
    ) -> Result<Option<&'a [u8]>, PoptError<'a>> {
        match kind {
            ArgKind::None => Ok(None),
            _ if attached.is_some() => Ok(attached),
            ArgKind::Required => match self.args.get(self.next) {
                Some(a) => {
                    self.next += 1;
                    Ok(Some(a.as_slice()))
                }
                None => Err(PoptError {
                    text,
                    reason: "missing argument",
                }),
            },
            ArgKind::Optional => match self.args.get(self.next) {
                Some(a) if !a.starts_with(b"-") => {
                    self.next += 1;
                    Ok(Some(a.as_slice()))
                }
                _ => Ok(None),
            },
        }
    }

    /// The next option; `Ok(None)` at the end.
    fn next_opt(&mut self) -> Result<Option<Opt<'a>>, PoptError<'a>> {
        let args = self.args;
        loop {
            if let Some((ai, pos)) = self.cluster.take() {
                let whole = args[ai].as_slice();
                // popt walks a cluster byte by byte, as C does.
                let Some(&c) = whole.get(pos) else {
                    continue;
                };
                let after = pos + 1;
                let Some(&(_, _, kind, tag)) = TABLE.iter().find(|(_, s, _, _)| *s == Some(c))
                else {
                    return Err(PoptError {
                        text: whole,
                        reason: "unknown option",
                    });
                };
                let remaining = whole.get(after..).unwrap_or_default();
                let attached = if kind != ArgKind::None && !remaining.is_empty() {
                    Some(remaining.strip_prefix(b"=").unwrap_or(remaining))
                } else {
                    if !remaining.is_empty() {
                        self.cluster = Some((ai, after));
                    }
                    None
                };
                let arg = self.take_arg(kind, attached, whole)?;
                return Ok(Some(Opt {
                    tag,
                    text: bad_option_text(whole, attached, arg),
                    arg,
                }));
            }
            let Some(a) = args.get(self.next).map(Vec::as_slice) else {
                return Ok(None);
            };
            let ai = self.next;
            self.next += 1;
            if self.rest_are_args || a == b"-" || !a.starts_with(b"-") {
                self.leftovers.push(a);
                continue;
            }
            if a == b"--" {
                self.rest_are_args = true;
                continue;
            }
            if let Some(long) = a.strip_prefix(b"--") {
                let (name, attached) = match long.iter().position(|&b| b == b'=') {
                    Some(i) => (&long[..i], Some(&long[i + 1..])),
                    None => (long, None),
                };
                let Some(&(_, _, kind, tag)) =
                    TABLE.iter().find(|(l, _, _, _)| l.as_bytes() == name)
                else {
                    return Err(PoptError {
                        text: a,
                        reason: "unknown option",
                    });
                };
                if kind == ArgKind::None && attached.is_some() {
                    return Err(PoptError {
                        text: a,
                        reason: "option does not take an argument",
                    });
                }
                let arg = self.take_arg(kind, attached, a)?;
                return Ok(Some(Opt {
                    tag,
                    text: bad_option_text(a, attached, arg),
                    arg,
                }));
            }
            self.cluster = Some((ai, 1));
        }
    }
}

/// What popt's `poptBadOption` names for an option: the last argv element it read, so the separate argument
/// when the option took one ("--start-daemon master --start-daemon backup" → "invalid option `backup'").
fn bad_option_text<'a>(
    option: &'a [u8],
    attached: Option<&'a [u8]>,
    arg: Option<&'a [u8]>,
) -> &'a [u8] {
    match (attached, arg) {
        (None, Some(separate)) => separate,
        _ => option,
    }
}

/// C `strtol(s, &end, 10)` that must consume everything, within `min..=max` (ipvsadm `string_to_number`).
pub fn string_to_number(s: &[u8], min: i64, max: i64) -> Option<i64> {
    let start = s
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c'))
        .unwrap_or(s.len());
    let t = &s[start..];
    let (neg, digits) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v: i64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let v = if neg { -v } else { v };
    (min <= v && v <= max).then_some(v)
}

fn parse_timeout(buf: Option<&[u8]>, min: i64, max: i64) -> Result<u32, Exit> {
    let Some(buf) = buf else { return Ok(360) };
    string_to_number(buf, min, max)
        .map(|v| v as u32)
        .ok_or_else(|| {
            fail(
                EXIT_PARAM,
                cat(&[b"invalid timeout value `", buf, b"' specified"]),
            )
        })
}

/// `inet_aton`: dotted quads with 1 to 4 parts, each decimal, octal (leading 0) or hex (0x).
pub fn inet_aton(s: &[u8]) -> Option<Ipv4Addr> {
    fn num(p: &[u8]) -> Option<u64> {
        let p = std::str::from_utf8(p).ok()?;
        if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
            if h.is_empty() {
                return Some(0);
            }
            u64::from_str_radix(h, 16).ok()
        } else if p.len() > 1 && p.starts_with('0') {
            u64::from_str_radix(&p[1..], 8).ok()
        } else if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
            p.parse().ok()
        } else {
            None
        }
    }
    let parts: Vec<u64> = s.split(|&b| b == b'.').map(num).collect::<Option<_>>()?;
    let v: u64 = match parts.as_slice() {
        [a] if *a <= 0xffff_ffff => *a,
        [a, b] if *a <= 255 && *b <= 0xff_ffff => (a << 24) | b,
        [a, b, c] if *a <= 255 && *b <= 255 && *c <= 0xffff => (a << 24) | (b << 16) | c,
        [a, b, c, d] if [a, b, c, d].iter().all(|x| **x <= 255) => {
            (a << 24) | (b << 16) | (c << 8) | d
        }
        _ => return None,
    };
    Some(Ipv4Addr::from(v as u32))
}

/// `inet_aton`, then `gethostbyname` (IPv4 results only) as ipvsadm's `host_to_addr`.
fn host_to_addr(s: &[u8]) -> Option<Ipv4Addr> {
    inet_aton(s).or_else(|| names::host_to_addr(std::str::from_utf8(s).ok()?))
}

const SERVICE_ADDR: u32 = 1;
const SERVICE_PORT: u32 = 2;

/// ipvsadm's `parse_service`: `host[:port]`, `[v6]:port` or a bare IPv6 address. Returns the
/// SERVICE_ADDR/SERVICE_PORT bits, updating `key` (and `netmask`, for an IPv6 address) like the C code.
fn parse_service(buf: &[u8], key: &mut KeyParts, netmask: &mut u32) -> u32 {
    if buf.iter().all(u8::is_ascii_digit) {
        return 0;
    }
    let mut host = buf;
    let mut port: Option<&[u8]> = None;
    if let Some(rest) = buf.strip_prefix(b"[") {
        let Some(close) = rest.iter().position(|&b| b == b']') else {
            return 0;
        };
        let Some(p) = rest[close + 1..].strip_prefix(b":") else {
            return 0;
        };
        host = &rest[..close];
        port = Some(p);
    }
    if let Some(a6) = std::str::from_utf8(host)
        .ok()
        .and_then(|h| h.parse::<Ipv6Addr>().ok())
    {
        key.addr = IpAddr::V6(a6);
        key.family = Some(Family::Ipv6);
        *netmask = 128;
    } else {
        if let Some(colon) = host.iter().rposition(|&b| b == b':') {
            port = Some(&host[colon + 1..]);
            host = &host[..colon];
        }
        match host_to_addr(host) {
            Some(a) => {
                key.addr = IpAddr::V4(a);
                key.family = Some(Family::Ipv4);
            }
            None => return 0,
        }
    }
    let mut result = SERVICE_ADDR;
    if let Some(p) = port {
        result |= SERVICE_PORT;
        if let Some(n) = string_to_number(p, 0, 65535) {
            key.port = n as u16;
        } else if let Some(n) = std::str::from_utf8(p)
            .ok()
            .and_then(|p| names::service_to_port(p, key.protocol))
        {
            key.port = n;
        } else {
            return 0;
        }
    }
    result
}

fn parse_sched_flags(sched: &[u8], arg: &[u8]) -> Result<ServiceFlags, Exit> {
    let sched = if sched.is_empty() { DEF_SCHED } else { sched };
    let mut flags = ServiceFlags::empty();
    // strtok skips empty tokens; an all-separator argument yields one NULL token in the C code, which
    // strcmp would crash on; we report it as an invalid flag instead.
    let tokens: Vec<&[u8]> = arg
        .split(|&b| b == b',')
        .filter(|t| !t.is_empty())
        .collect();
    if tokens.is_empty() {
        return Err(fail(
            EXIT_PARAM,
            cat(&[b"invalid scheduler flag `", arg, b"'"]),
        ));
    }
    for flag in tokens {
        let (bit, need): (ServiceFlags, Option<&[u8]>) = match flag {
            b"flag-1" => (ServiceFlags::SCHED1, None),
            b"flag-2" => (ServiceFlags::SCHED2, None),
            b"flag-3" => (ServiceFlags::SCHED3, None),
            b"sh-fallback" => (ServiceFlags::SCHED1, Some(b"sh")),
            b"sh-port" => (ServiceFlags::SCHED2, Some(b"sh")),
            b"mh-fallback" => (ServiceFlags::SCHED1, Some(b"mh")),
            b"mh-port" => (ServiceFlags::SCHED2, Some(b"mh")),
            _ => {
                return Err(fail(
                    EXIT_PARAM,
                    cat(&[b"invalid scheduler flag `", flag, b"'"]),
                ));
            }
        };
        flags |= bit;
        if let Some(s) = need
            && s != sched
        {
            return Err(fail(
                EXIT_PARAM,
                cat(&[b"incompatible scheduler flag `", flag, b"'"]),
            ));
        }
    }
    Ok(flags)
}

fn set_option(options: &mut u64, o: u32) -> Result<(), Exit> {
    let bit = 1u64 << o;
    if *options & bit != 0 {
        return Err(fail(
            EXIT_PARAM,
            format!("multiple '{}' options specified", OPTNAMES[o as usize]),
        ));
    }
    *options |= bit;
    Ok(())
}

fn generic_opt_check(cmd: Cmd, options: u64) -> Result<(), Exit> {
    let i = cmd as usize - 1;
    let row = COMMANDS_V_OPTIONS[i];
    let mut last = 0;
    let mut count = 0;
    for (j, &rule) in row.iter().enumerate() {
        if options & (1u64 << j) == 0 {
            if rule == b'+' {
                return Err(fail(
                    EXIT_PARAM,
                    format!(
                        "You need to supply the '{}' option for the '{}' command",
                        OPTNAMES[j], CMDNAMES[i]
                    ),
                ));
            }
        } else {
            if rule == b'x' {
                return Err(fail(
                    EXIT_PARAM,
                    format!(
                        "Illegal '{}' option with the '{}' command",
                        OPTNAMES[j], CMDNAMES[i]
                    ),
                ));
            }
            if rule == b'1' {
                count += 1;
                if count == 1 {
                    last = j;
                    continue;
                }
                return Err(fail(
                    EXIT_PARAM,
                    format!(
                        "The option '{}' conflicts with the '{}' option in the '{}' command",
                        OPTNAMES[j], OPTNAMES[last], CMDNAMES[i]
                    ),
                ));
            }
        }
    }
    Ok(())
}

const TUNNAMES: [&str; 3] = ["ipip", "gue", "gre"];
const TUNOPTS: [u32; 4] = [
    optc::TUN_PORT,
    optc::TUN_NOCSUM,
    optc::TUN_CSUM,
    optc::TUN_REMCSUM,
];
const TUNNEL_TYPES_V_OPTIONS: [&[u8; 4]; 3] = [b"xxxx", b"+111", b"x11x"];

fn tunnel_opt_check(tun_type: TunnelType, options: u64) -> Result<(), Exit> {
    let i = usize::from(tun_type.value()).min(2);
    let mut last = 0;
    let mut count = 0;
    for (j, &k) in TUNOPTS.iter().enumerate() {
        let rule = TUNNEL_TYPES_V_OPTIONS[i][j];
        if options & (1u64 << k) == 0 {
            if rule == b'+' {
                return Err(fail(
                    EXIT_PARAM,
                    format!(
                        "You need to supply the '{}' option for the '{}' tunnel type",
                        OPTNAMES[k as usize], TUNNAMES[i]
                    ),
                ));
            }
        } else {
            if rule == b'x' {
                return Err(fail(
                    EXIT_PARAM,
                    format!(
                        "Illegal '{}' option with the '{}' tunnel type",
                        OPTNAMES[k as usize], TUNNAMES[i]
                    ),
                ));
            }
            if rule == b'1' {
                count += 1;
                if count == 1 {
                    last = k;
                    continue;
                }
                return Err(fail(
                    EXIT_PARAM,
                    format!(
                        "The option '{}' conflicts with the '{}' option in the '{}' tunnel type",
                        OPTNAMES[k as usize], OPTNAMES[last as usize], TUNNAMES[i]
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// What the command line asks for before any kernel work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// `-h`: usage on stdout, exit 0.
    Help,
    /// `-v`: version on stdout, exit 0.
    Version,
    /// A command to run.
    Run(Box<Entry>),
}

/// The first `n` bytes of `b` as text (names are C strings cut by `strncpy`; lossy for non-UTF-8).
fn cut(b: &[u8], n: usize) -> String {
    String::from_utf8_lossy(&b[..b.len().min(n)]).into_owned()
}

/// The ipvsadm half of the `command_lines` fuzz target, public so that its corpus replays as an
/// ordinary test: parses `args` as the words after `ipvsadm`. Nothing may panic, and a refusal has a
/// failing exit status and a message.
#[doc(hidden)]
pub fn fuzz_parse(args: &[Vec<u8>]) {
    let argv: Vec<Vec<u8>> = std::iter::once(b"ipvsadm".to_vec())
        .chain(args.iter().cloned())
        .collect();
    if let Err(e) = parse(&argv) {
        assert!(
            e.code == EXIT_PARAM || e.code == EXIT_ERROR,
            "exit {}: {}",
            e.code,
            String::from_utf8_lossy(&e.msg)
        );
        assert!(!e.msg.is_empty(), "a refusal without a message");
    }
}

/// Parses `argv` (with `argv[0]`) exactly like ipvsadm's `parse_options` + the checks of `process_options`.
pub fn parse(argv: &[Vec<u8>]) -> Result<Parsed, Exit> {
    let program: &[u8] = argv.first().map(Vec::as_slice).unwrap_or(b"ipvsadm");
    let rest = argv.get(1..).unwrap_or_default();
    let mut popt = Popt::new(rest);
    let mut key = KeyParts {
        family: None,
        protocol: Protocol::Other(0),
        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        port: 0,
        fwmark: 0,
    };
    let mut service = Service::new(key.key());
    let mut sched_name: Vec<u8> = Vec::new();
    let mut dest = Destination::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
    dest.fwd = FwdMethod::Route;
    let mut e = Entry {
        cmd: Cmd::List,
        service: service.clone(),
        dest: dest.clone(),
        timeouts: Timeouts::default(),
        daemon: Daemon::new(DaemonState::Unknown(0), "", 0),
        options: 0,
        format: 0,
    };
    let first = match popt.next_opt() {
        Ok(Some(o)) => o,
        _ => return Err(tryhelp(program)),
    };
    e.cmd = match first.tag {
        "A" => Cmd::Add,
        "E" => Cmd::Edit,
        "D" => Cmd::Del,
        "a" => Cmd::AddDest,
        "e" => Cmd::EditDest,
        "d" => Cmd::DelDest,
        "C" => Cmd::Flush,
        "L" | "l" => Cmd::List,
        "Z" => Cmd::Zero,
        "set" => Cmd::Timeout,
        "R" => Cmd::Restore,
        "S" => Cmd::Save,
        "start-daemon" | "stop-daemon" => {
            e.daemon.state = match first.arg.unwrap_or_default() {
                b"master" => DaemonState::Master,
                b"backup" => DaemonState::Backup,
                _ if first.tag == "start-daemon" => {
                    return Err(fail(EXIT_PARAM, "illegal start-daemon parameter specified"));
                }
                _ => return Err(fail(EXIT_PARAM, "illegal start_daemon specified")),
            };
            if first.tag == "start-daemon" {
                Cmd::StartDaemon
            } else {
                Cmd::StopDaemon
            }
        }
        "h" => return Ok(Parsed::Help),
        "v" => return Ok(Parsed::Version),
        _ => return Err(tryhelp(program)),
    };
    let mut sched_flags_arg: &[u8] = b"";
    loop {
        let o = match popt.next_opt() {
            Ok(Some(o)) => o,
            Ok(None) => break,
            Err(pe) => {
                return Err(fail(
                    EXIT_ERROR,
                    cat(&[pe.text, b": ", pe.reason.as_bytes()]),
                ));
            }
        };
        let arg: &[u8] = o.arg.unwrap_or_default();
        match o.tag {
            "t" | "u" | "sctp-service" => {
                set_option(&mut e.options, optc::SERVICE)?;
                key.protocol = match o.tag {
                    "t" => Protocol::Tcp,
                    "u" => Protocol::Udp,
                    _ => Protocol::Sctp,
                };
                if parse_service(arg, &mut key, &mut service.netmask) & SERVICE_ADDR == 0 {
                    return Err(fail(
                        EXIT_PARAM,
                        "illegal virtual server address[:port] specified",
                    ));
                }
            }
            "f" => {
                set_option(&mut e.options, optc::SERVICE)?;
                key.family = Some(Family::Ipv4);
                key.protocol = Protocol::Tcp;
                key.fwmark = match string_to_number(arg, 1, i64::from(u32::MAX)) {
                    Some(v) => v as u32,
                    None => {
                        return Err(fail(
                            EXIT_PARAM,
                            cat(&[b"invalid fwmark value `", arg, b"' specified"]),
                        ));
                    }
                };
            }
            "s" => {
                set_option(&mut e.options, optc::SCHEDULER)?;
                sched_name = arg[..arg.len().min(SCHEDNAME_BYTES)].to_vec();
            }
            "p" => {
                set_option(&mut e.options, optc::PERSISTENT)?;
                service.flags |= ServiceFlags::PERSISTENT;
                service.timeout = parse_timeout(o.arg, 1, MAX_TIMEOUT)?;
            }
            "M" => {
                set_option(&mut e.options, optc::NETMASK)?;
                if key.family != Some(Family::Ipv6) {
                    match host_to_addr(arg) {
                        Some(m) => service.netmask = u32::from(m),
                        None => {
                            return Err(fail(
                                EXIT_PARAM,
                                "illegal virtual server persistent mask specified",
                            ));
                        }
                    }
                } else {
                    // atoi: leading digits, else 0.
                    let start = arg
                        .iter()
                        .position(|b| !b.is_ascii_whitespace())
                        .unwrap_or(arg.len());
                    let digits: Vec<u8> = arg[start..]
                        .iter()
                        .copied()
                        .take_while(u8::is_ascii_digit)
                        .collect();
                    service.netmask = std::str::from_utf8(&digits)
                        .ok()
                        .and_then(|d| d.parse().ok())
                        .unwrap_or(0);
                    if !(1..=128).contains(&service.netmask) {
                        return Err(fail(EXIT_PARAM, "illegal ipv6 netmask specified"));
                    }
                }
            }
            "r" => {
                set_option(&mut e.options, optc::SERVER)?;
                // ipvsadm parses into a copy of the service (its port is the default).
                let mut t = key.clone();
                let parse = parse_service(arg, &mut t, &mut 0);
                dest.addr = t.addr;
                dest.port = t.port;
                if parse & SERVICE_ADDR == 0 {
                    return Err(fail(
                        EXIT_PARAM,
                        "illegal real server address[:port] specified",
                    ));
                }
                if parse == SERVICE_ADDR {
                    dest.port = key.port;
                }
            }
            "i" | "g" | "m" => {
                set_option(&mut e.options, optc::FORWARD)?;
                dest.fwd = match o.tag {
                    "i" => FwdMethod::Tunnel,
                    "g" => FwdMethod::Route,
                    _ => FwdMethod::Masq,
                };
            }
            "w" => {
                set_option(&mut e.options, optc::WEIGHT)?;
                // Debian's 1.31 build accepts weights up to INT_MAX (upstream: 65535); measured in the VM.
                dest.weight = string_to_number(arg, 0, i64::from(i32::MAX))
                    .ok_or_else(|| fail(EXIT_PARAM, "illegal weight specified"))?
                    as u32;
            }
            "x" => {
                set_option(&mut e.options, optc::UTHRESHOLD)?;
                dest.u_threshold = string_to_number(arg, 0, i64::from(i32::MAX))
                    .ok_or_else(|| fail(EXIT_PARAM, "illegal u_threshold specified"))?
                    as u32;
            }
            "y" => {
                set_option(&mut e.options, optc::LTHRESHOLD)?;
                dest.l_threshold = string_to_number(arg, 0, i64::from(i32::MAX))
                    .ok_or_else(|| fail(EXIT_PARAM, "illegal l_threshold specified"))?
                    as u32;
            }
            "c" => set_option(&mut e.options, optc::CONNECTION)?,
            "n" => {
                set_option(&mut e.options, optc::NUMERIC)?;
                e.format |= fmt::NUMERIC;
            }
            "mcast-interface" => {
                set_option(&mut e.options, optc::MCAST)?;
                e.daemon.mcast_ifn = cut(arg, IFNAME_BYTES);
            }
            "syncid" => {
                set_option(&mut e.options, optc::SYNCID)?;
                e.daemon.syncid = string_to_number(arg, 0, 255)
                    .ok_or_else(|| fail(EXIT_PARAM, "illegal syncid specified"))?
                    as u32;
            }
            "timeout" => set_option(&mut e.options, optc::TIMEOUT)?,
            "daemon" => set_option(&mut e.options, optc::DAEMON)?,
            "stats" => {
                set_option(&mut e.options, optc::STATS)?;
                e.format |= fmt::STATS;
            }
            "rate" => {
                set_option(&mut e.options, optc::RATE)?;
                e.format |= fmt::RATE;
            }
            "thresholds" => {
                set_option(&mut e.options, optc::THRESHOLDS)?;
                e.format |= fmt::THRESHOLDS;
            }
            "persistent-conn" => {
                set_option(&mut e.options, optc::PERSISTENTCONN)?;
                e.format |= fmt::PERSISTENTCONN;
            }
            "nosort" => {
                set_option(&mut e.options, optc::NOSORT)?;
                e.format |= fmt::NOSORT;
            }
            "sort" => {}
            "X" => {
                set_option(&mut e.options, optc::EXACT)?;
                e.format |= fmt::EXACT;
            }
            "6" => {
                if key.fwmark != 0 {
                    key.family = Some(Family::Ipv6);
                    service.netmask = 128;
                } else {
                    return Err(fail(EXIT_PARAM, "-6 used before -f\n"));
                }
            }
            "o" => {
                set_option(&mut e.options, optc::ONEPACKET)?;
                service.flags |= ServiceFlags::ONEPACKET;
            }
            "pe" => {
                set_option(&mut e.options, optc::PE)?;
                let pe = cut(arg, PENAME_BYTES);
                service.pe_name = (!pe.is_empty()).then_some(pe);
            }
            "b" => {
                set_option(&mut e.options, optc::SCHED_FLAGS)?;
                sched_flags_arg = &arg[..arg.len().min(127)];
            }
            "mcast-group" => {
                set_option(&mut e.options, optc::MCAST_GROUP)?;
                let text = std::str::from_utf8(arg).ok();
                if arg.contains(&b':') {
                    match text.and_then(|t| t.parse::<Ipv6Addr>().ok()) {
                        Some(a) if a.is_multicast() => e.daemon.mcast_group6 = Some(a),
                        _ => {
                            return Err(fail(
                                EXIT_PARAM,
                                cat(&[b"invalid IPv6 mcast-group `", arg, b"'"]),
                            ));
                        }
                    }
                } else {
                    match text.and_then(|t| t.parse::<Ipv4Addr>().ok()) {
                        Some(a) if a.is_multicast() => e.daemon.mcast_group = Some(a),
                        _ => {
                            return Err(fail(
                                EXIT_PARAM,
                                cat(&[b"invalid IPv4 mcast-group `", arg, b"'"]),
                            ));
                        }
                    }
                }
            }
            "mcast-port" => {
                set_option(&mut e.options, optc::MCAST_PORT)?;
                e.daemon.mcast_port = string_to_number(arg, 1, 65535)
                    .ok_or_else(|| fail(EXIT_PARAM, "illegal mcast-port specified"))?
                    as u16;
            }
            "mcast-ttl" => {
                set_option(&mut e.options, optc::MCAST_TTL)?;
                e.daemon.mcast_ttl = string_to_number(arg, 1, 255)
                    .ok_or_else(|| fail(EXIT_PARAM, "illegal mcast-ttl specified"))?
                    as u8;
            }
            "sync-maxlen" => {
                set_option(&mut e.options, optc::SYNC_MAXLEN)?;
                e.daemon.sync_maxlen = string_to_number(arg, 1, 65535 - 20 - 8)
                    .ok_or_else(|| fail(EXIT_PARAM, "illegal sync-maxlen specified"))?
                    as u16;
            }
            "tun-info" => {
                set_option(&mut e.options, optc::TUN_INFO)?;
                e.format |= fmt::TUN_INFO;
            }
            "tun-type" => {
                set_option(&mut e.options, optc::TUN_TYPE)?;
                dest.tun_type = match arg {
                    b"ipip" => TunnelType::Ipip,
                    b"gue" => TunnelType::Gue,
                    b"gre" => TunnelType::Gre,
                    _ => return Err(fail(EXIT_PARAM, "illegal tunnel type specified")),
                };
            }
            "tun-port" => {
                set_option(&mut e.options, optc::TUN_PORT)?;
                dest.tun_port = string_to_number(arg, 1, 65535)
                    .ok_or_else(|| fail(EXIT_PARAM, "illegal tunnel port specified"))?
                    as u16;
            }
            "tun-nocsum" => set_option(&mut e.options, optc::TUN_NOCSUM)?,
            "tun-csum" => {
                set_option(&mut e.options, optc::TUN_CSUM)?;
                dest.tun_flags |= TunnelFlags::CSUM;
            }
            "tun-remcsum" => {
                set_option(&mut e.options, optc::TUN_REMCSUM)?;
                dest.tun_flags |= TunnelFlags::REMCSUM;
            }
            _ => {
                return Err(fail(EXIT_PARAM, cat(&[b"invalid option `", o.text, b"'"])));
            }
        }
    }

    let mut leftovers = popt.leftovers.into_iter();
    if e.cmd == Cmd::Timeout {
        match (leftovers.next(), leftovers.next(), leftovers.next()) {
            (Some(a), Some(b), Some(c)) => {
                e.timeouts = Timeouts::new(
                    parse_timeout(Some(a), 0, MAX_TIMEOUT)?,
                    parse_timeout(Some(b), 0, MAX_TIMEOUT)?,
                    parse_timeout(Some(c), 0, MAX_TIMEOUT)?,
                );
            }
            _ => return Err(fail(EXIT_PARAM, "--set option requires 3 timeout values")),
        }
    }
    if let Some(a) = leftovers.next() {
        return Err(fail(EXIT_PARAM, cat(&[b"unexpected argument ", a])));
    }
    if !sched_flags_arg.is_empty() {
        service.flags -= ServiceFlags::SCHED1 | ServiceFlags::SCHED2 | ServiceFlags::SCHED3;
        service.flags |= parse_sched_flags(&sched_name, sched_flags_arg)?;
    }

    // process_options' checks, in its order.
    generic_opt_check(e.cmd, e.options)?;
    if matches!(e.cmd, Cmd::Add | Cmd::Edit) {
        if key.fwmark == 0 && key.port == 0 && !service.flags.contains(ServiceFlags::PERSISTENT) {
            return Err(fail(
                EXIT_PARAM,
                "Zero port specified for non-persistent service",
            ));
        }
        if service.flags.contains(ServiceFlags::ONEPACKET)
            && key.fwmark == 0
            && key.protocol != Protocol::Udp
        {
            return Err(fail(
                EXIT_PARAM,
                "One-Packet Scheduling is only for UDP virtual services",
            ));
        }
        if sched_name.is_empty() {
            sched_name = DEF_SCHED.to_vec();
        }
    }
    service.scheduler = Scheduler::from_name(&String::from_utf8_lossy(&sched_name));
    if e.cmd == Cmd::StartDaemon && e.daemon.mcast_ifn.is_empty() {
        e.daemon.mcast_ifn = "eth0".to_string();
    }
    if matches!(e.cmd, Cmd::AddDest | Cmd::EditDest) {
        if key.fwmark == 0 && matches!(dest.fwd, FwdMethod::Tunnel | FwdMethod::Route) {
            dest.port = key.port;
        }
        if Some(Family::of(&dest.addr)) != key.family && dest.fwd != FwdMethod::Tunnel {
            return Err(fail(
                EXIT_PARAM,
                "Different address family is allowed only for tunneling servers",
            ));
        }
        let tun_bits = [
            optc::TUN_TYPE,
            optc::TUN_PORT,
            optc::TUN_NOCSUM,
            optc::TUN_CSUM,
            optc::TUN_REMCSUM,
        ];
        if tun_bits.iter().any(|b| e.has(*b)) && dest.fwd != FwdMethod::Tunnel {
            return Err(fail(
                EXIT_PARAM,
                "Tunnel options conflict with forward method",
            ));
        }
        tunnel_opt_check(dest.tun_type, e.options)?;
    }
    if e.cmd == Cmd::List {
        let a = e.has(optc::CONNECTION) || e.has(optc::TIMEOUT) || e.has(optc::DAEMON);
        let b = e.has(optc::STATS) || e.has(optc::RATE) || e.has(optc::THRESHOLDS);
        let c = (e.has(optc::TIMEOUT) || e.has(optc::DAEMON)) && e.has(optc::PERSISTENTCONN);
        if (a && b) || c {
            return Err(fail(EXIT_PARAM, "options conflicts in the list command"));
        }
    }
    service.key = key.key();
    e.service = service;
    e.dest = dest;
    Ok(Parsed::Run(Box::new(e)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn argv(words: &[&[u8]]) -> Vec<Vec<u8>> {
        std::iter::once(&b"ipvsadm"[..])
            .chain(words.iter().copied())
            .map(<[u8]>::to_vec)
            .collect()
    }

    fn p(s: &str) -> Result<Parsed, Exit> {
        let words: Vec<&[u8]> = s.split_whitespace().map(str::as_bytes).collect();
        parse(&argv(&words))
    }

    fn entry(s: &str) -> Entry {
        match p(s) {
            Ok(Parsed::Run(e)) => *e,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn err(s: &str) -> (i32, String) {
        let e = p(s).unwrap_err();
        (e.code, String::from_utf8(e.msg).unwrap())
    }

    #[test]
    fn defaults_match_ipvsadm() {
        let e = entry("-A -t 10.0.0.1:80");
        assert_eq!(
            (&e.service.scheduler, e.service.flags, e.service.netmask),
            (&Scheduler::Wlc, ServiceFlags::empty(), 0xffff_ffff)
        );
        let e = entry("-A -t 10.0.0.1:80 -p");
        assert_eq!(
            (e.service.flags, e.service.timeout),
            (ServiceFlags::PERSISTENT, 360)
        );
        let e = entry("-A -t10.0.0.1:0 -p100 -s=rr");
        assert_eq!(
            (e.service.timeout, &e.service.scheduler, e.service.key),
            (
                100,
                &Scheduler::Rr,
                ServiceKey::Inet {
                    protocol: Protocol::Tcp,
                    addr: "10.0.0.1".parse().unwrap(),
                    port: 0
                }
            )
        );
        let e = entry("-a -t 10.0.0.1:80 -r 10.0.0.2:99");
        // Direct routing is the default and forces the service port.
        assert_eq!(
            (e.dest.fwd, e.dest.weight, e.dest.port),
            (FwdMethod::Route, 1, 80)
        );
        let e = entry("-a -t 10.0.0.1:80 -r 10.0.0.2:99 -m -w 0");
        assert_eq!(
            (e.dest.fwd, e.dest.weight, e.dest.port),
            (FwdMethod::Masq, 0, 99)
        );
        let e = entry("-A -f 5 -6 -s sh -b sh-port,sh-fallback");
        assert_eq!(
            (e.service.key, e.service.netmask, e.service.flags),
            (
                ServiceKey::Fwmark {
                    mark: 5,
                    family: Family::Ipv6
                },
                128,
                ServiceFlags::SCHED1 | ServiceFlags::SCHED2
            )
        );
        let e = entry("-Ln --stats");
        assert_eq!(e.format, fmt::NUMERIC | fmt::STATS);
        let e = entry("--set 1 2 3");
        assert_eq!(e.timeouts, Timeouts::new(1, 2, 3));
        let e = entry("--start-daemon master");
        assert_eq!(
            (e.daemon.state, e.daemon.mcast_ifn.as_str()),
            (DaemonState::Master, "eth0")
        );
        let e = entry("-A -t [2001:db8::1]:443 -M 64 -p");
        assert_eq!(
            (e.service.key.family(), e.service.netmask),
            (Family::Ipv6, 64)
        );
        let e = entry("-a -t 10.0.0.1:1 -r 10.0.0.2 -i --tun-type gue --tun-port 9 --tun-csum");
        assert_eq!(
            (e.dest.tun_type, e.dest.tun_port, e.dest.tun_flags),
            (TunnelType::Gue, 9, TunnelFlags::CSUM)
        );
    }

    #[test]
    fn errors_match_ipvsadm() {
        assert_eq!(err("--foo").0, 255);
        assert!(err("--foo").1.starts_with("Try `ipvsadm -h'"));
        assert_eq!(err("-L --foo"), (255, "--foo: unknown option".into()));
        assert_eq!(err("-L -t"), (255, "-t: missing argument".into()));
        // A letter of a cluster is reported as the whole argument (Debian's ipvsadm 1.31 in the VM).
        assert_eq!(err("-At"), (255, "-At: missing argument".into()));
        assert_eq!(err("-ALn"), (2, "invalid option `-ALn'".into()));
        assert_eq!(err("-Ln -ZL"), (2, "invalid option `-ZL'".into()));
        assert_eq!(
            err("--start-daemon master --start-daemon backup"),
            (2, "invalid option `backup'".into())
        );
        assert_eq!(
            err("--start-daemon master --start-daemon=backup"),
            (2, "invalid option `--start-daemon=backup'".into())
        );
        assert_eq!(
            err("-A -t 1.2.3.4:80 extra"),
            (2, "unexpected argument extra".into())
        );
        assert_eq!(
            err("-L -n -x 3"),
            (
                2,
                "Illegal 'u-threshold' option with the 'list' command".into()
            )
        );
        assert_eq!(
            err("-A -t 1.2.3.7:80 -o"),
            (
                2,
                "One-Packet Scheduling is only for UDP virtual services".into()
            )
        );
        assert_eq!(
            err("-A -t 1.2.3.4:80 -A"),
            (2, "invalid option `-A'".into())
        );
        assert_eq!(
            err("-A -t 1.2.3.4:80 -s rr -s rr"),
            (2, "multiple 'scheduler' options specified".into())
        );
        assert_eq!(
            err("-L --timeout --stats"),
            (2, "options conflicts in the list command".into())
        );
        assert_eq!(
            err("-A -t 1.2.3.4"),
            (2, "Zero port specified for non-persistent service".into())
        );
        assert_eq!(
            err("-a -t 1.2.3.4:1 -r 1.1.1.1 -m --tun-type gre"),
            (2, "Tunnel options conflict with forward method".into())
        );
        assert_eq!(
            err("-a -t 1.2.3.4:1 -r 1.1.1.1 -i --tun-type gue"),
            (
                2,
                "You need to supply the 'tun-port' option for the 'gue' tunnel type".into()
            )
        );
        assert_eq!(
            err("-a -t 1.2.3.4:1 -r [::1]:1 -m"),
            (
                2,
                "Different address family is allowed only for tunneling servers".into()
            )
        );
        assert_eq!(err("-L -c -t 1.1.1.1:1"), (2, "The option 'service-address' conflicts with the 'connection' option in the 'list' command".into()));
        assert_eq!(
            err("-A -f 0"),
            (2, "invalid fwmark value `0' specified".into())
        );
        assert_eq!(
            err("-A -t 1.2.3.4:1 -b sh-port"),
            (2, "incompatible scheduler flag `sh-port'".into())
        );
        assert_eq!(
            err("--set 1 2"),
            (2, "--set option requires 3 timeout values".into())
        );
        assert_eq!(
            err("-A -t 999.1.1.1:1"),
            (2, "illegal virtual server address[:port] specified".into())
        );
        assert_eq!(
            err("-D"),
            (
                2,
                "You need to supply the 'service-address' option for the 'delete-service' command"
                    .into()
            )
        );
    }

    /// Every option, long, short and clustered, with odd arguments (multi-byte text, bracket and port edge
    /// cases, huge numbers): parsing returns a result or an error, never panics.
    #[test]
    fn odd_command_lines_never_panic() {
        const ODD: &[&str] = &[
            "",
            "é",
            "[",
            "]",
            "[::1",
            "[::1]:",
            "[é]:80",
            ":",
            "é:é",
            "1.2.3.4:",
            "1.2.3.4:é",
            "-",
            "--",
            "=",
            "\u{1F600}",
            "99999999999999999999",
            "-1",
            "0x",
            "1e3",
            "[2001:db8::1]:99999",
            "::1:80",
            "255.255.255.255",
            "128",
            "flag-1,",
            ",",
            "sh-port,,mh-port",
            "é,é",
        ];
        let cmds = [
            "-A",
            "-E",
            "-D",
            "-a",
            "-e",
            "-d",
            "-L",
            "-Z",
            "-S",
            "-C",
            "--start-daemon",
        ];
        let mut runs = 0;
        for &(long, short, kind, _) in TABLE {
            for cmd in cmds {
                for odd in ODD {
                    let mut lines = vec![
                        vec![cmd, "-t", "10.0.0.1:80", "-r", "10.0.0.2"],
                        vec![cmd, "-f", "1"],
                    ];
                    let long_opt = format!("--{long}");
                    let long_eq = format!("--{long}={odd}");
                    let short_opt = short.map(|c| format!("-{c}"));
                    let short_attached = short.map(|c| format!("-{c}{odd}"));
                    let cluster = short.map(|c| format!("-L{c}{odd}"));
                    for l in &mut lines {
                        l.push(&long_opt);
                        if kind != ArgKind::None {
                            l.push(odd);
                        }
                        l.push(&long_eq);
                        if let (Some(so), Some(sa), Some(cl)) =
                            (&short_opt, &short_attached, &cluster)
                        {
                            l.push(so);
                            l.push(odd);
                            l.push(sa);
                            l.push(cl);
                        }
                        l.push(odd);
                    }
                    for l in lines {
                        for n in 1..=l.len() {
                            let words: Vec<&[u8]> = l[..n].iter().map(|w| w.as_bytes()).collect();
                            let _ = parse(&argv(&words));
                            runs += 1;
                        }
                    }
                }
            }
        }
        assert!(runs > 50_000, "{runs}");
    }

    #[test]
    fn inet_aton_forms() {
        assert_eq!(inet_aton(b"10.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inet_aton(b"0x0a.0.0.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inet_aton(b"256.0.0.1"), None);
        assert_eq!(string_to_number(b" +5", 0, 9), Some(5));
        assert_eq!(string_to_number(b"5x", 0, 9), None);
    }

    /// Arguments that are not UTF-8: parsed like any other, quoted byte for byte where ipvsadm quotes
    /// them, never a panic.
    #[test]
    fn non_utf8_arguments_give_ipvsadm_errors() {
        let e = |words: &[&[u8]]| parse(&argv(words)).unwrap_err();
        let x = e(&[b"-A", b"-f", b"\xff\xfe"]);
        assert_eq!(
            (x.code, x.msg),
            (
                EXIT_PARAM,
                b"invalid fwmark value `\xff\xfe' specified".to_vec()
            )
        );
        let x = e(&[b"-A", b"-t", b"caf\xe9:80"]);
        assert_eq!(
            (x.code, x.msg),
            (
                EXIT_PARAM,
                b"illegal virtual server address[:port] specified".to_vec()
            )
        );
        let x = e(&[b"-L", b"--\xff"]);
        assert_eq!(
            (x.code, x.msg),
            (EXIT_ERROR, b"--\xff: unknown option".to_vec())
        );
        let x = e(&[b"-A", b"-t", b"1.2.3.4:80", b"\xc3"]);
        assert_eq!(
            (x.code, x.msg),
            (EXIT_PARAM, b"unexpected argument \xc3".to_vec())
        );
        let x = e(&[
            b"-A",
            b"-t",
            b"1.2.3.4:80",
            b"-s",
            b"sh",
            b"-b",
            b"sh-port,\x80",
        ]);
        assert_eq!(
            (x.code, x.msg),
            (EXIT_PARAM, b"invalid scheduler flag `\x80'".to_vec())
        );
        let x = e(&[b"--set", b"1", b"2", b"\xff"]);
        assert_eq!(
            (x.code, x.msg),
            (
                EXIT_PARAM,
                b"invalid timeout value `\xff' specified".to_vec()
            )
        );
        // A non-UTF-8 program name is quoted as given.
        let x = parse(&[b"ipv\xffsadm".to_vec()]).unwrap_err();
        assert_eq!(
            x.msg,
            b"Try `ipv\xffsadm -h' or 'ipv\xffsadm --help' for more information.".to_vec()
        );
        // A cluster with a non-ASCII byte is an unknown option, named whole.
        let x = e(&[b"-L\xe9"]);
        assert_eq!(
            (x.code, x.msg),
            (EXIT_ERROR, b"-L\xe9: unknown option".to_vec())
        );
        // A scheduler name is cut to 15 bytes (not characters) and sent to the kernel, which will refuse it.
        let Parsed::Run(r) = parse(&argv(&[
            b"-A",
            b"-t",
            b"1.2.3.4:80",
            b"-s",
            b"\xe9\xe9\xe9",
        ]))
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            r.service.scheduler,
            Scheduler::Other("\u{fffd}\u{fffd}\u{fffd}".into())
        );
    }
}
