//! Command-line parsing with ipvsadm 1.31's exact rules: popt-style options (short clusters, `--long=value`,
//! an optional argument for `-p`), the command/option legality table, and the same error texts and exit
//! codes. clap is not used here because a drop-in must accept and reject exactly what popt does.

use super::names;
use ipvs_nl::wire::{AF_INET, AF_INET6};
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
    /// Text for stderr, without the final newline.
    pub msg: String,
}

fn fail(code: i32, msg: impl Into<String>) -> Exit {
    Exit {
        code,
        msg: msg.into(),
    }
}

/// `Try ... -h` and exit 255.
pub fn tryhelp(program: &str) -> Exit {
    fail(
        EXIT_ERROR,
        format!("Try `{program} -h' or '{program} --help' for more information."),
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

/// The service part of a command (ipvsadm's `ipvs_service_t`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Svc {
    pub af: u16,
    pub protocol: u16,
    pub addr: IpAddr,
    pub port: u16,
    pub fwmark: u32,
    pub sched_name: String,
    pub flags: u32,
    pub timeout: u32,
    pub netmask: u32,
    pub pe_name: String,
}

/// The destination part (ipvsadm's `ipvs_dest_t`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Dst {
    pub af: u16,
    pub addr: IpAddr,
    pub port: u16,
    pub conn_flags: u32,
    pub weight: i32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    pub tun_type: u8,
    pub tun_port: u16,
    pub tun_flags: u16,
}

/// The daemon part.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct Dmn {
    pub state: u32,
    pub mcast_ifn: String,
    pub syncid: u32,
    pub sync_maxlen: u16,
    pub mcast_group: Option<IpAddr>,
    pub mcast_port: u16,
    pub mcast_ttl: u8,
}

/// One fully parsed and checked command line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Entry {
    pub cmd: Cmd,
    pub svc: Svc,
    pub dest: Dst,
    pub timeout: (u32, u32, u32),
    pub daemon: Dmn,
    pub options: u64,
    pub format: u32,
}

impl Entry {
    /// True when option bit `o` was given.
    pub fn has(&self, o: u32) -> bool {
        self.options & (1u64 << o) != 0
    }
}

const DEF_SCHED: &str = "wlc";
const MAX_TIMEOUT: i64 = 86400 * 31;
const SVC_PERSISTENT: u32 = 0x0001;
const SVC_ONEPACKET: u32 = 0x0004;
const SVC_SCHED1: u32 = 0x0008;
const SVC_SCHED2: u32 = 0x0010;
const SVC_SCHED3: u32 = 0x0020;
/// `IP_VS_CONN_F_TUNNEL`.
pub const CONN_TUNNEL: u32 = 2;
/// `IP_VS_CONN_F_DROUTE`.
pub const CONN_DROUTE: u32 = 3;
/// IP protocol numbers.
pub const IPPROTO_TCP: u16 = 6;
/// UDP.
pub const IPPROTO_UDP: u16 = 17;
/// SCTP.
pub const IPPROTO_SCTP: u16 = 132;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arg {
    None,
    Required,
    Optional,
}

/// popt's table: long name, short letter, argument kind, tag (the short letter, or a name for long-only).
const TABLE: &[(&str, Option<char>, Arg, &str)] = &[
    ("add-service", Some('A'), Arg::None, "A"),
    ("edit-service", Some('E'), Arg::None, "E"),
    ("delete-service", Some('D'), Arg::None, "D"),
    ("clear", Some('C'), Arg::None, "C"),
    ("list", Some('L'), Arg::None, "L"),
    ("list", Some('l'), Arg::None, "l"),
    ("zero", Some('Z'), Arg::None, "Z"),
    ("add-server", Some('a'), Arg::None, "a"),
    ("edit-server", Some('e'), Arg::None, "e"),
    ("delete-server", Some('d'), Arg::None, "d"),
    ("set", None, Arg::None, "set"),
    ("help", Some('h'), Arg::None, "h"),
    ("version", Some('v'), Arg::None, "v"),
    ("restore", Some('R'), Arg::None, "R"),
    ("save", Some('S'), Arg::None, "S"),
    ("start-daemon", None, Arg::Required, "start-daemon"),
    ("stop-daemon", None, Arg::Required, "stop-daemon"),
    ("tcp-service", Some('t'), Arg::Required, "t"),
    ("udp-service", Some('u'), Arg::Required, "u"),
    ("sctp-service", None, Arg::Required, "sctp-service"),
    ("fwmark-service", Some('f'), Arg::Required, "f"),
    ("scheduler", Some('s'), Arg::Required, "s"),
    ("persistent", Some('p'), Arg::Optional, "p"),
    ("netmask", Some('M'), Arg::Required, "M"),
    ("real-server", Some('r'), Arg::Required, "r"),
    ("masquerading", Some('m'), Arg::None, "m"),
    ("ipip", Some('i'), Arg::None, "i"),
    ("gatewaying", Some('g'), Arg::None, "g"),
    ("weight", Some('w'), Arg::Required, "w"),
    ("u-threshold", Some('x'), Arg::Required, "x"),
    ("l-threshold", Some('y'), Arg::Required, "y"),
    ("numeric", Some('n'), Arg::None, "n"),
    ("connection", Some('c'), Arg::None, "c"),
    ("mcast-interface", None, Arg::Required, "mcast-interface"),
    ("syncid", None, Arg::Required, "syncid"),
    ("timeout", None, Arg::None, "timeout"),
    ("daemon", None, Arg::None, "daemon"),
    ("stats", None, Arg::None, "stats"),
    ("rate", None, Arg::None, "rate"),
    ("thresholds", None, Arg::None, "thresholds"),
    ("persistent-conn", None, Arg::None, "persistent-conn"),
    ("nosort", None, Arg::None, "nosort"),
    ("sort", None, Arg::None, "sort"),
    ("exact", Some('X'), Arg::None, "X"),
    ("ipv6", Some('6'), Arg::None, "6"),
    ("ops", Some('o'), Arg::None, "o"),
    ("pe", None, Arg::Required, "pe"),
    ("sched-flags", Some('b'), Arg::Required, "b"),
    ("mcast-group", None, Arg::Required, "mcast-group"),
    ("mcast-port", None, Arg::Required, "mcast-port"),
    ("mcast-ttl", None, Arg::Required, "mcast-ttl"),
    ("sync-maxlen", None, Arg::Required, "sync-maxlen"),
    ("tun-info", None, Arg::None, "tun-info"),
    ("tun-type", None, Arg::Required, "tun-type"),
    ("tun-port", None, Arg::Required, "tun-port"),
    ("tun-nocsum", None, Arg::None, "tun-nocsum"),
    ("tun-csum", None, Arg::None, "tun-csum"),
    ("tun-remcsum", None, Arg::None, "tun-remcsum"),
];

/// How an option was typed, for error messages.
#[derive(Debug, Clone, Copy)]
enum OptText<'a> {
    /// A whole argument as typed; for a letter of a short-option cluster, the whole cluster (popt's
    /// `poptBadOption` returns the argv element: ipvsadm prints "invalid option `-ALn'", "-At: missing argument").
    Arg(&'a str),
}

impl std::fmt::Display for OptText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OptText::Arg(a) => f.write_str(a),
        }
    }
}

/// One popt result: an option with its tag, text as typed, and argument.
#[derive(Debug)]
struct Opt<'a> {
    tag: &'static str,
    text: OptText<'a>,
    arg: Option<&'a str>,
}

/// popt's option scanner over `argv[1..]`. Borrows everything: `-R` parses every line with it.
struct Popt<'a> {
    args: &'a [String],
    next: usize,
    /// The short-option cluster being read: its argument index and the byte offset of the next letter.
    cluster: Option<(usize, usize)>,
    leftovers: Vec<&'a str>,
    rest_are_args: bool,
}

/// A popt error: the offending option text and the reason.
struct PoptError<'a> {
    text: OptText<'a>,
    reason: &'static str,
}

impl<'a> Popt<'a> {
    fn new(args: &'a [String]) -> Self {
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
        kind: Arg,
        attached: Option<&'a str>,
        text: OptText<'a>,
    ) -> Result<Option<&'a str>, PoptError<'a>> {
        match kind {
            Arg::None => Ok(None),
            _ if attached.is_some() => Ok(attached),
            Arg::Required => match self.args.get(self.next) {
                Some(a) => {
                    self.next += 1;
                    Ok(Some(a.as_str()))
                }
                None => Err(PoptError {
                    text,
                    reason: "missing argument",
                }),
            },
            Arg::Optional => match self.args.get(self.next) {
                Some(a) if !a.starts_with('-') => {
                    self.next += 1;
                    Ok(Some(a.as_str()))
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
                let whole = args[ai].as_str();
                let Some(c) = whole.get(pos..).and_then(|r| r.chars().next()) else {
                    continue;
                };
                let after = pos + c.len_utf8();
                let Some(&(_, _, kind, tag)) = TABLE.iter().find(|(_, s, _, _)| *s == Some(c))
                else {
                    return Err(PoptError {
                        text: OptText::Arg(whole),
                        reason: "unknown option",
                    });
                };
                let remaining = whole.get(after..).unwrap_or_default();
                let attached = if kind != Arg::None && !remaining.is_empty() {
                    Some(remaining.strip_prefix('=').unwrap_or(remaining))
                } else {
                    if !remaining.is_empty() {
                        self.cluster = Some((ai, after));
                    }
                    None
                };
                let arg = self.take_arg(kind, attached, OptText::Arg(whole))?;
                return Ok(Some(Opt {
                    tag,
                    text: bad_option_text(whole, attached, arg),
                    arg,
                }));
            }
            let Some(a) = args.get(self.next).map(String::as_str) else {
                return Ok(None);
            };
            let ai = self.next;
            self.next += 1;
            if self.rest_are_args || a == "-" || !a.starts_with('-') {
                self.leftovers.push(a);
                continue;
            }
            if a == "--" {
                self.rest_are_args = true;
                continue;
            }
            if let Some(long) = a.strip_prefix("--") {
                let (name, attached) = match long.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (long, None),
                };
                let Some(&(_, _, kind, tag)) = TABLE.iter().find(|(l, _, _, _)| *l == name) else {
                    return Err(PoptError {
                        text: OptText::Arg(a),
                        reason: "unknown option",
                    });
                };
                if kind == Arg::None && attached.is_some() {
                    return Err(PoptError {
                        text: OptText::Arg(a),
                        reason: "option does not take an argument",
                    });
                }
                let arg = self.take_arg(kind, attached, OptText::Arg(a))?;
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
    option: &'a str,
    attached: Option<&'a str>,
    arg: Option<&'a str>,
) -> OptText<'a> {
    match (attached, arg) {
        (None, Some(separate)) => OptText::Arg(separate),
        _ => OptText::Arg(option),
    }
}

/// C `strtol(s, &end, 10)` that must consume everything, within `min..=max` (ipvsadm `string_to_number`).
pub fn string_to_number(s: &str, min: i64, max: i64) -> Option<i64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i64 = digits.parse().ok()?;
    let v = if neg { -v } else { v };
    (min <= v && v <= max).then_some(v)
}

fn parse_timeout(buf: Option<&str>, min: i64, max: i64) -> Result<u32, Exit> {
    let Some(buf) = buf else { return Ok(360) };
    string_to_number(buf, min, max)
        .map(|v| v as u32)
        .ok_or_else(|| {
            fail(
                EXIT_PARAM,
                format!("invalid timeout value `{buf}' specified"),
            )
        })
}

/// `inet_aton`: dotted quads with 1 to 4 parts, each decimal, octal (leading 0) or hex (0x).
pub fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    fn num(p: &str) -> Option<u64> {
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
    let parts: Vec<u64> = s.split('.').map(num).collect::<Option<_>>()?;
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

const SERVICE_ADDR: u32 = 1;
const SERVICE_PORT: u32 = 2;

/// ipvsadm's `parse_service`: `host[:port]`, `[v6]:port` or a bare IPv6 address. Returns the
/// SERVICE_ADDR/SERVICE_PORT bits, updating `svc` like the C code does.
fn parse_service(buf: &str, svc: &mut Svc) -> u32 {
    if buf.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    let mut host = buf;
    let mut port: Option<&str> = None;
    if let Some(rest) = buf.strip_prefix('[') {
        let Some((h, after)) = rest.split_once(']') else {
            return 0;
        };
        let Some(p) = after.strip_prefix(':') else {
            return 0;
        };
        host = h;
        port = Some(p);
    }
    if let Ok(a6) = host.parse::<Ipv6Addr>() {
        svc.addr = IpAddr::V6(a6);
        svc.af = AF_INET6;
        svc.netmask = 128;
    } else {
        if let Some((h, p)) = host.rsplit_once(':') {
            host = h;
            port = Some(p);
        }
        if let Some(a) = inet_aton(host).or_else(|| names::host_to_addr(host)) {
            svc.addr = IpAddr::V4(a);
            svc.af = AF_INET;
        } else {
            return 0;
        }
    }
    let mut result = SERVICE_ADDR;
    if let Some(p) = port {
        result |= SERVICE_PORT;
        if let Some(n) = string_to_number(p, 0, 65535) {
            svc.port = n as u16;
        } else if let Some(n) = names::service_to_port(p, svc.protocol) {
            svc.port = n;
        } else {
            return 0;
        }
    }
    result
}

fn parse_sched_flags(sched: &str, arg: &str) -> Result<u32, Exit> {
    let sched = if sched.is_empty() { DEF_SCHED } else { sched };
    let mut flags = 0;
    // strtok skips empty tokens; an all-separator argument yields one NULL token in the C code, which
    // strcmp would crash on; we report it as an invalid flag instead.
    let tokens: Vec<&str> = arg.split(',').filter(|t| !t.is_empty()).collect();
    if tokens.is_empty() {
        return Err(fail(EXIT_PARAM, format!("invalid scheduler flag `{arg}'")));
    }
    for flag in tokens {
        let (bit, need) = match flag {
            "flag-1" => (SVC_SCHED1, None),
            "flag-2" => (SVC_SCHED2, None),
            "flag-3" => (SVC_SCHED3, None),
            "sh-fallback" => (SVC_SCHED1, Some("sh")),
            "sh-port" => (SVC_SCHED2, Some("sh")),
            "mh-fallback" => (SVC_SCHED1, Some("mh")),
            "mh-port" => (SVC_SCHED2, Some("mh")),
            _ => return Err(fail(EXIT_PARAM, format!("invalid scheduler flag `{flag}'"))),
        };
        flags |= bit;
        if let Some(s) = need
            && s != sched
        {
            return Err(fail(
                EXIT_PARAM,
                format!("incompatible scheduler flag `{flag}'"),
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

fn tunnel_opt_check(tun_type: u8, options: u64) -> Result<(), Exit> {
    let i = usize::from(tun_type).min(2);
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

/// Parses `argv` (with `argv[0]`) exactly like ipvsadm's `parse_options` + the checks of `process_options`.
pub fn parse(argv: &[String]) -> Result<Parsed, Exit> {
    let program = argv.first().map(String::as_str).unwrap_or("ipvsadm");
    let rest = argv.get(1..).unwrap_or_default();
    let mut popt = Popt::new(rest);
    let mut e = Entry {
        cmd: Cmd::List,
        svc: Svc {
            af: 0,
            protocol: 0,
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 0,
            fwmark: 0,
            sched_name: String::new(),
            flags: 0,
            timeout: 0,
            netmask: 0xffff_ffff,
            pe_name: String::new(),
        },
        dest: Dst {
            af: 0,
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 0,
            conn_flags: CONN_DROUTE,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tun_type: 0,
            tun_port: 0,
            tun_flags: 0,
        },
        timeout: (0, 0, 0),
        daemon: Dmn::default(),
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
            let arg = first.arg.unwrap_or_default();
            e.daemon.state = match arg {
                "master" => 1,
                "backup" => 2,
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
    let mut sched_flags_arg = String::new();
    loop {
        let o = match popt.next_opt() {
            Ok(Some(o)) => o,
            Ok(None) => break,
            Err(pe) => return Err(fail(EXIT_ERROR, format!("{}: {}", pe.text, pe.reason))),
        };
        let arg: &str = o.arg.unwrap_or_default();
        match o.tag {
            "t" | "u" | "sctp-service" => {
                set_option(&mut e.options, optc::SERVICE)?;
                e.svc.protocol = match o.tag {
                    "t" => IPPROTO_TCP,
                    "u" => IPPROTO_UDP,
                    _ => IPPROTO_SCTP,
                };
                if parse_service(arg, &mut e.svc) & SERVICE_ADDR == 0 {
                    return Err(fail(
                        EXIT_PARAM,
                        "illegal virtual server address[:port] specified",
                    ));
                }
            }
            "f" => {
                set_option(&mut e.options, optc::SERVICE)?;
                e.svc.af = AF_INET;
                e.svc.protocol = IPPROTO_TCP;
                e.svc.fwmark = match string_to_number(arg, 1, i64::from(u32::MAX)) {
                    Some(v) => v as u32,
                    None => {
                        return Err(fail(
                            EXIT_PARAM,
                            format!("invalid fwmark value `{arg}' specified"),
                        ));
                    }
                };
            }
            "s" => {
                set_option(&mut e.options, optc::SCHEDULER)?;
                e.svc.sched_name = arg.chars().take(15).collect();
            }
            "p" => {
                set_option(&mut e.options, optc::PERSISTENT)?;
                e.svc.flags |= SVC_PERSISTENT;
                e.svc.timeout = parse_timeout(o.arg, 1, MAX_TIMEOUT)?;
            }
            "M" => {
                set_option(&mut e.options, optc::NETMASK)?;
                if e.svc.af != AF_INET6 {
                    match inet_aton(arg).or_else(|| names::host_to_addr(arg)) {
                        Some(m) => e.svc.netmask = u32::from(m),
                        None => {
                            return Err(fail(
                                EXIT_PARAM,
                                "illegal virtual server persistent mask specified",
                            ));
                        }
                    }
                } else {
                    // atoi: leading digits, else 0.
                    let n: String = arg
                        .trim_start()
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    e.svc.netmask = n.parse().unwrap_or(0);
                    if !(1..=128).contains(&e.svc.netmask) {
                        return Err(fail(EXIT_PARAM, "illegal ipv6 netmask specified"));
                    }
                }
            }
            "r" => {
                set_option(&mut e.options, optc::SERVER)?;
                let mut t = e.svc.clone();
                let parse = parse_service(arg, &mut t);
                e.dest.af = t.af;
                e.dest.addr = t.addr;
                e.dest.port = t.port;
                if parse & SERVICE_ADDR == 0 {
                    return Err(fail(
                        EXIT_PARAM,
                        "illegal real server address[:port] specified",
                    ));
                }
                if parse == SERVICE_ADDR {
                    e.dest.port = e.svc.port;
                }
            }
            "i" | "g" | "m" => {
                set_option(&mut e.options, optc::FORWARD)?;
                e.dest.conn_flags = match o.tag {
                    "i" => CONN_TUNNEL,
                    "g" => CONN_DROUTE,
                    _ => 0,
                };
            }
            "w" => {
                set_option(&mut e.options, optc::WEIGHT)?;
                // Debian's 1.31 build accepts weights up to INT_MAX (upstream: 65535); measured in the VM.
                e.dest.weight = string_to_number(arg, 0, i64::from(i32::MAX))
                    .ok_or_else(|| fail(EXIT_PARAM, "illegal weight specified"))?
                    as i32;
            }
            "x" => {
                set_option(&mut e.options, optc::UTHRESHOLD)?;
                e.dest.u_threshold = string_to_number(arg, 0, i64::from(i32::MAX))
                    .ok_or_else(|| fail(EXIT_PARAM, "illegal u_threshold specified"))?
                    as u32;
            }
            "y" => {
                set_option(&mut e.options, optc::LTHRESHOLD)?;
                e.dest.l_threshold = string_to_number(arg, 0, i64::from(i32::MAX))
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
                e.daemon.mcast_ifn = arg.chars().take(15).collect();
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
                if e.svc.fwmark != 0 {
                    e.svc.af = AF_INET6;
                    e.svc.netmask = 128;
                } else {
                    return Err(fail(EXIT_PARAM, "-6 used before -f\n"));
                }
            }
            "o" => {
                set_option(&mut e.options, optc::ONEPACKET)?;
                e.svc.flags |= SVC_ONEPACKET;
            }
            "pe" => {
                set_option(&mut e.options, optc::PE)?;
                e.svc.pe_name = arg.chars().take(16).collect();
            }
            "b" => {
                set_option(&mut e.options, optc::SCHED_FLAGS)?;
                sched_flags_arg = arg.chars().take(127).collect();
            }
            "mcast-group" => {
                set_option(&mut e.options, optc::MCAST_GROUP)?;
                if arg.contains(':') {
                    match arg.parse::<Ipv6Addr>() {
                        Ok(a) if a.is_multicast() => e.daemon.mcast_group = Some(IpAddr::V6(a)),
                        _ => {
                            return Err(fail(
                                EXIT_PARAM,
                                format!("invalid IPv6 mcast-group `{arg}'"),
                            ));
                        }
                    }
                } else {
                    match arg.parse::<Ipv4Addr>() {
                        Ok(a) if a.is_multicast() => e.daemon.mcast_group = Some(IpAddr::V4(a)),
                        _ => {
                            return Err(fail(
                                EXIT_PARAM,
                                format!("invalid IPv4 mcast-group `{arg}'"),
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
                e.dest.tun_type = match arg {
                    "ipip" => 0,
                    "gue" => 1,
                    "gre" => 2,
                    _ => return Err(fail(EXIT_PARAM, "illegal tunnel type specified")),
                };
            }
            "tun-port" => {
                set_option(&mut e.options, optc::TUN_PORT)?;
                e.dest.tun_port = string_to_number(arg, 1, 65535)
                    .ok_or_else(|| fail(EXIT_PARAM, "illegal tunnel port specified"))?
                    as u16;
            }
            "tun-nocsum" => set_option(&mut e.options, optc::TUN_NOCSUM)?,
            "tun-csum" => {
                set_option(&mut e.options, optc::TUN_CSUM)?;
                e.dest.tun_flags |= 1;
            }
            "tun-remcsum" => {
                set_option(&mut e.options, optc::TUN_REMCSUM)?;
                e.dest.tun_flags |= 2;
            }
            _ => return Err(fail(EXIT_PARAM, format!("invalid option `{}'", o.text))),
        }
    }

    let mut leftovers = popt.leftovers.into_iter();
    if e.cmd == Cmd::Timeout {
        match (leftovers.next(), leftovers.next(), leftovers.next()) {
            (Some(a), Some(b), Some(c)) => {
                e.timeout = (
                    parse_timeout(Some(a), 0, MAX_TIMEOUT)?,
                    parse_timeout(Some(b), 0, MAX_TIMEOUT)?,
                    parse_timeout(Some(c), 0, MAX_TIMEOUT)?,
                );
            }
            _ => return Err(fail(EXIT_PARAM, "--set option requires 3 timeout values")),
        }
    }
    if let Some(a) = leftovers.next() {
        return Err(fail(EXIT_PARAM, format!("unexpected argument {a}")));
    }
    if !sched_flags_arg.is_empty() {
        e.svc.flags &= !(SVC_SCHED1 | SVC_SCHED2 | SVC_SCHED3);
        e.svc.flags |= parse_sched_flags(&e.svc.sched_name, &sched_flags_arg)?;
    }

    // process_options' checks, in its order.
    generic_opt_check(e.cmd, e.options)?;
    if matches!(e.cmd, Cmd::Add | Cmd::Edit) {
        if e.svc.fwmark == 0 && e.svc.port == 0 && e.svc.flags & SVC_PERSISTENT == 0 {
            return Err(fail(
                EXIT_PARAM,
                "Zero port specified for non-persistent service",
            ));
        }
        if e.svc.flags & SVC_ONEPACKET != 0 && e.svc.fwmark == 0 && e.svc.protocol != IPPROTO_UDP {
            return Err(fail(
                EXIT_PARAM,
                "One-Packet Scheduling is only for UDP virtual services",
            ));
        }
        if e.svc.sched_name.is_empty() {
            e.svc.sched_name = DEF_SCHED.to_string();
        }
    }
    if e.cmd == Cmd::StartDaemon && e.daemon.mcast_ifn.is_empty() {
        e.daemon.mcast_ifn = "eth0".to_string();
    }
    let fwd = e.dest.conn_flags & 7;
    if matches!(e.cmd, Cmd::AddDest | Cmd::EditDest) {
        if e.svc.fwmark == 0 && (fwd == CONN_TUNNEL || fwd == CONN_DROUTE) {
            e.dest.port = e.svc.port;
        }
        if e.dest.af != e.svc.af && fwd != CONN_TUNNEL {
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
        if tun_bits.iter().any(|b| e.has(*b)) && fwd != CONN_TUNNEL {
            return Err(fail(
                EXIT_PARAM,
                "Tunnel options conflict with forward method",
            ));
        }
        tunnel_opt_check(e.dest.tun_type, e.options)?;
    }
    if e.cmd == Cmd::List {
        let a = e.has(optc::CONNECTION) || e.has(optc::TIMEOUT) || e.has(optc::DAEMON);
        let b = e.has(optc::STATS) || e.has(optc::RATE) || e.has(optc::THRESHOLDS);
        let c = (e.has(optc::TIMEOUT) || e.has(optc::DAEMON)) && e.has(optc::PERSISTENTCONN);
        if (a && b) || c {
            return Err(fail(EXIT_PARAM, "options conflicts in the list command"));
        }
    }
    Ok(Parsed::Run(Box::new(e)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn p(s: &str) -> Result<Parsed, Exit> {
        let v: Vec<String> = std::iter::once("ipvsadm")
            .chain(s.split_whitespace())
            .map(String::from)
            .collect();
        parse(&v)
    }

    fn entry(s: &str) -> Entry {
        match p(s) {
            Ok(Parsed::Run(e)) => *e,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn err(s: &str) -> (i32, String) {
        let e = p(s).unwrap_err();
        (e.code, e.msg)
    }

    #[test]
    fn defaults_match_ipvsadm() {
        let e = entry("-A -t 10.0.0.1:80");
        assert_eq!(
            (e.svc.sched_name.as_str(), e.svc.flags, e.svc.netmask),
            ("wlc", 0, 0xffff_ffff)
        );
        let e = entry("-A -t 10.0.0.1:80 -p");
        assert_eq!((e.svc.flags, e.svc.timeout), (1, 360));
        let e = entry("-A -t10.0.0.1:0 -p100 -s=rr");
        assert_eq!(
            (e.svc.timeout, e.svc.sched_name.as_str(), e.svc.port),
            (100, "rr", 0)
        );
        let e = entry("-a -t 10.0.0.1:80 -r 10.0.0.2:99");
        // Direct routing is the default and forces the service port.
        assert_eq!(
            (e.dest.conn_flags, e.dest.weight, e.dest.port),
            (CONN_DROUTE, 1, 80)
        );
        let e = entry("-a -t 10.0.0.1:80 -r 10.0.0.2:99 -m -w 0");
        assert_eq!((e.dest.conn_flags, e.dest.weight, e.dest.port), (0, 0, 99));
        let e = entry("-A -f 5 -6 -s sh -b sh-port,sh-fallback");
        assert_eq!(
            (e.svc.af, e.svc.netmask, e.svc.flags),
            (AF_INET6, 128, SVC_SCHED1 | SVC_SCHED2)
        );
        let e = entry("-Ln --stats");
        assert_eq!(e.format, fmt::NUMERIC | fmt::STATS);
        let e = entry("--set 1 2 3");
        assert_eq!(e.timeout, (1, 2, 3));
        let e = entry("--start-daemon master");
        assert_eq!(e.daemon.mcast_ifn, "eth0");
        let e = entry("-A -t [2001:db8::1]:443 -M 64 -p");
        assert_eq!((e.svc.af, e.svc.netmask), (AF_INET6, 64));
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
                        if kind != Arg::None {
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
                            let argv: Vec<String> = std::iter::once("ipvsadm")
                                .chain(l[..n].iter().copied())
                                .map(String::from)
                                .collect();
                            let _ = parse(&argv);
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
        assert_eq!(inet_aton("10.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inet_aton("0x0a.0.0.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inet_aton("256.0.0.1"), None);
        assert_eq!(string_to_number(" +5", 0, 9), Some(5));
        assert_eq!(string_to_number("5x", 0, 9), None);
    }
}
