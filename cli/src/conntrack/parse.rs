//! From `argv` to a validated [`Parsed`] command, with conntrack-tools' checks, in its order.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::getopt::{Getopt, Step};
use super::opts::{
    COMMANDS_V_OPTIONS, EXIT_OTHER_PROBLEM, EXIT_PARAMETER_PROBLEM, OPT_NAMES, PROTO_OPT_OFFSET,
    ProtoKind, SHORT_OPTS, cmd, opt,
};

thread_local! {
    /// Warnings kept instead of printed on this thread, while `-R` parses a file's lines on several
    /// threads (see [`hold_warnings`]).
    static HELD: std::cell::RefCell<Option<Vec<String>>> = const { std::cell::RefCell::new(None) };
    /// How many [`muted`] calls are running on this thread.
    static MUTED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Prints a parser warning on stderr, as conntrack-tools does while parsing, keeps it when this thread
/// holds its warnings, or drops it inside [`muted`].
fn warn(msg: String) {
    if MUTED.get() > 0 {
        return;
    }
    HELD.with(|h| match h.borrow_mut().as_mut() {
        Some(kept) => kept.push(msg),
        None => eprintln!("{msg}"),
    });
}

/// Runs `f` with this thread's parser warnings dropped: for lines parsed a second time, whose warnings
/// were printed the first time.
pub fn muted<R>(f: impl FnOnce() -> R) -> R {
    MUTED.set(MUTED.get() + 1);
    let r = f();
    MUTED.set(MUTED.get().saturating_sub(1));
    r
}

/// From now on, keeps this thread's parser warnings (`true`) or prints them again (`false`); returns the
/// warnings kept since the last call. `-R` parses lines on several threads and prints their warnings in
/// file order afterwards, only those of the lines up to the first bad one, as a sequential parse would.
pub fn hold_warnings(hold: bool) -> Vec<String> {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        let kept = h.take().unwrap_or_default();
        if hold {
            *h = Some(Vec::new());
        }
        kept
    })
}

/// A refusal: the exit status and the message (without the program prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail {
    /// Exit status (2 for parameter problems, 1 otherwise).
    pub code: i32,
    /// The message, worded like conntrack-tools.
    pub msg: String,
}

impl Fail {
    /// A parameter problem (exit 2; a "Try `conntrack -h'" line follows the message).
    pub fn param(msg: impl Into<String>) -> Fail {
        Fail {
            code: EXIT_PARAMETER_PROBLEM,
            msg: msg.into(),
        }
    }
    /// Any other problem (exit 1).
    pub fn other(msg: impl Into<String>) -> Fail {
        Fail {
            code: EXIT_OTHER_PROBLEM,
            msg: msg.into(),
        }
    }
}

/// Which table a command applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Table {
    /// The conntrack table (default).
    #[default]
    Conntrack,
    /// Expectations.
    Expect,
    /// Entries being destroyed.
    Dying,
    /// Entries not yet confirmed.
    Unconfirmed,
}

/// Output flags of `-o`.
pub mod out {
    /// `xml`.
    pub const XML: u32 = 1 << 0;
    /// `extended`.
    pub const EXT: u32 = 1 << 1;
    /// `timestamp`.
    pub const TMS: u32 = 1 << 2;
    /// `id`.
    pub const ID: u32 = 1 << 3;
    /// `ktimestamp`.
    pub const KTMS: u32 = 1 << 4;
    /// `labels`.
    pub const CL: u32 = 1 << 5;
    /// `save`.
    pub const SAVE: u32 = 1 << 6;
    /// `json` (ours).
    pub const JSON: u32 = 1 << 7;
}

/// Event mask bits of `-e`.
pub mod ev {
    /// NEW.
    pub const NEW: u32 = 1;
    /// UPDATES.
    pub const UPD: u32 = 2;
    /// DESTROY.
    pub const DEL: u32 = 4;
}

/// The `IPS_*` status bits `-u` names, as numbers (ctnl's [`ctnl::Status`]).
pub mod status {
    use ctnl::Status;
    /// IPS_EXPECTED.
    pub const EXPECTED: u32 = Status::EXPECTED.bits();
    /// IPS_SEEN_REPLY.
    pub const SEEN_REPLY: u32 = Status::SEEN_REPLY.bits();
    /// IPS_ASSURED.
    pub const ASSURED: u32 = Status::ASSURED.bits();
    /// IPS_FIXED_TIMEOUT.
    pub const FIXED_TIMEOUT: u32 = Status::FIXED_TIMEOUT.bits();
    /// IPS_OFFLOAD.
    pub const OFFLOAD: u32 = Status::OFFLOAD.bits();
    /// IPS_HW_OFFLOAD.
    pub const HW_OFFLOAD: u32 = Status::HW_OFFLOAD.bits();
}

/// Layer-4 fields given on the command line for one direction or purpose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct L4Fields {
    /// Source port / GRE source key.
    pub sport: Option<u16>,
    /// Destination port / GRE destination key.
    pub dport: Option<u16>,
}

/// A NAT filter or setting (`-n`, `-g`, `-j`): an address and optionally a port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NatSpec {
    /// Address, if one was given.
    pub addr: Option<IpAddr>,
    /// Port, if one was given.
    pub port: Option<u16>,
}

/// The template built from the options: what to match, create or set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Template {
    /// `-s` (its CIDR mask is in `mask_src`).
    pub orig_src: Option<IpAddr>,
    /// `-d`.
    pub orig_dst: Option<IpAddr>,
    /// `-r`.
    pub repl_src: Option<IpAddr>,
    /// `-q`.
    pub repl_dst: Option<IpAddr>,
    /// Netmask for `-s` (from CIDR or `--mask-src`).
    pub mask_src: Option<IpAddr>,
    /// Netmask for `-d`.
    pub mask_dst: Option<IpAddr>,
    /// `--tuple-src` (expectations).
    pub tuple_src: Option<IpAddr>,
    /// `--tuple-dst`.
    pub tuple_dst: Option<IpAddr>,
    /// Layer-4 protocol number from `-p`.
    pub l4proto: Option<u8>,
    /// Original ports / keys.
    pub orig_l4: L4Fields,
    /// Reply ports / keys.
    pub repl_l4: L4Fields,
    /// Mask ports (expectations).
    pub mask_l4: L4Fields,
    /// Expectation tuple ports.
    pub tuple_l4: L4Fields,
    /// TCP/SCTP/DCCP state by kernel number.
    pub state: Option<u8>,
    /// DCCP role.
    pub dccp_role: Option<u8>,
    /// SCTP verification tags.
    pub orig_vtag: Option<u32>,
    /// SCTP reply verification tag.
    pub repl_vtag: Option<u32>,
    /// ICMP type.
    pub icmp_type: Option<u8>,
    /// ICMP code.
    pub icmp_code: Option<u8>,
    /// ICMP id.
    pub icmp_id: Option<u16>,
    /// `-t`.
    pub timeout: Option<u32>,
    /// `-u`: status bits that must be set (and that are set on create/update).
    pub status: u32,
    /// `-u`: status mask for filtering.
    pub status_mask: u32,
    /// `-m` value.
    pub mark: u32,
    /// `-m` mask (all ones without `/mask`).
    pub mark_mask: u32,
    /// `-c`.
    pub secmark: Option<u32>,
    /// `-w`.
    pub zone: Option<u16>,
    /// `--orig-zone`.
    pub orig_zone: Option<u16>,
    /// `--reply-zone`.
    pub repl_zone: Option<u16>,
    /// `-i`.
    pub id: Option<u32>,
    /// `-n`.
    pub snat: NatSpec,
    /// `-g`.
    pub dnat: NatSpec,
    /// `-l`: label names to match.
    pub labels: Vec<String>,
    /// `--label-add` / `--label-del` names (`None` in `label_del_all` case).
    pub label_modify: Vec<String>,
}

/// A fully parsed and validated command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The command bit (one of [`cmd`]), 0 when none was given.
    pub command: u32,
    /// Index of the command bit.
    pub cmd_bit: usize,
    /// The table named after the command.
    pub table: Table,
    /// Option bits ([`opt`]).
    pub options: u32,
    /// Address family: 0 (any), 2 (IPv4) or 10 (IPv6).
    pub family: u8,
    /// Protocol handler selected by `-p`.
    pub proto: Option<ProtoKind>,
    /// Protocol-specific flags given (bit per flag index).
    pub l4flags: u32,
    /// `-e` mask.
    pub event_mask: u32,
    /// `-o` flags.
    pub output: u32,
    /// `-b`.
    pub buffer_size: Option<usize>,
    /// The connlabel.conf mapping, loaded when labels are printed or named (like conntrack-tools).
    pub labelmap: Option<ctnl::LabelMap>,
    /// Values.
    pub tmpl: Template,
}

/// The conntrack half of the `command_lines` fuzz target, public so that its corpus replays as an
/// ordinary test: parses `args` as the words after `conntrack`. Nothing may panic, and a refusal has
/// exit status 1 or 2 and a message.
#[doc(hidden)]
pub fn fuzz_parse(args: &[&str]) {
    let argv: Vec<&str> = std::iter::once("conntrack")
        .chain(args.iter().copied())
        .collect();
    if let Err(f) = parse(&argv) {
        assert!(matches!(f.code, 1 | 2), "exit {}: {}", f.code, f.msg);
        assert!(!f.msg.is_empty(), "a refusal without a message");
    }
}

/// Parses a conntrack command line. `argv[0]` is the program name.
pub fn parse(argv: &[&str]) -> Result<Parsed, Fail> {
    let mut g = Getopt::new(argv);
    let mut p = Parsed::default();
    let mut longs: &'static [super::getopt::LongOpt] = super::opts::LONG_OPTS;
    let mut family: u8 = 0;
    // conntrack-tools' `labelmap_init` keeps a map it loaded, but tries again (and warns again) at each
    // option that needs one while loading fails.
    let labelmap_init = |p: &mut Parsed| {
        if p.labelmap.is_some() {
            return;
        }
        match ctnl::LabelMap::load_result() {
            Ok(Some(m)) => p.labelmap = Some(m),
            Ok(None) => warn("nfct_labelmap_new: Success".to_string()),
            Err(e) => warn(format!(
                "nfct_labelmap_new: {}",
                ctnl::strerror(e.raw_os_error().unwrap_or(0))
            )),
        }
    };
    while let Some(step) = g.next(SHORT_OPTS, longs) {
        let (c, arg) = match step {
            Step::Opt(c, a) => (c, a),
            Step::Unknown(w) => return Err(Fail::param(format!("unknown option `{w}'"))),
            Step::MissingArg(w) => {
                return Err(Fail::param(format!("option `{w}' requires an argument")));
            }
        };
        if c >= PROTO_OPT_OFFSET {
            let flag = c - PROTO_OPT_OFFSET;
            proto_opt(&mut p, flag, arg.unwrap_or(""))?;
            continue;
        }
        let ch = char::from_u32(c).unwrap_or('\0');
        let a: &str = arg.unwrap_or("");
        match ch {
            'L' | 'I' | 'D' | 'G' | 'F' | 'E' | 'V' | 'h' | 'C' | 'S' | 'U' | 'A' => {
                let table = check_type(g.optional_next(arg.is_some()))?;
                let command = command_for(ch, table);
                if ch == 'L' {
                    add_command(
                        &mut p.command,
                        if command == 0 { cmd::CT_LIST } else { command },
                    )?;
                } else {
                    if matches!(table, Table::Dying | Table::Unconfirmed) {
                        return Err(Fail::param(
                            "Can't do that command with tables `dying' and `unconfirmed'",
                        ));
                    }
                    if command == 0 {
                        return Err(Fail::param(format!(
                            "Can't do --{} on {}",
                            long_name(c),
                            if table == Table::Conntrack {
                                "conntrack"
                            } else {
                                "expectations"
                            }
                        )));
                    }
                    add_command(&mut p.command, command)?;
                }
                p.table = table;
            }
            's' | 'd' | 'r' | 'q' | '[' | ']' | '{' | '}' => addr_opt(&mut p, &mut family, ch, a)?,
            'p' => {
                p.options |= opt::PROTO;
                let (kind, num) = find_proto(a)
                    .ok_or_else(|| Fail::param(format!("`{a}' unsupported protocol")))?;
                p.proto = Some(kind);
                p.tmpl.l4proto = Some(num);
                longs = long_opts_for(kind);
            }
            't' => {
                p.options |= opt::TIMEOUT;
                p.tmpl.timeout = Some(atol(a) as u32);
            }
            'u' => {
                p.options |= opt::STATUS;
                // Bits accumulate over repeated `-u` options, as conntrack-tools' `status` does.
                let mut mask = p.tmpl.status_mask;
                let mut val = p.tmpl.status;
                parse_status_mask(a, &mut val, &mut mask)?;
                p.tmpl.status = val;
                p.tmpl.status_mask = if mask == 0 { val } else { mask };
            }
            'e' => {
                p.options |= opt::EVENT_MASK;
                parse_list(a, &mut p.event_mask, EVENT_WORDS)?;
            }
            'o' => {
                p.options |= opt::OUTPUT;
                parse_list(a, &mut p.output, OUTPUT_WORDS)?;
                if p.output & out::CL != 0 {
                    labelmap_init(&mut p);
                }
                if p.output & out::SAVE != 0 && p.output & !out::SAVE != 0 {
                    return Err(Fail::other(
                        "cannot combine save output with any other output type, use -o save only",
                    ));
                }
            }
            'z' => p.options |= opt::ZERO,
            'n' | 'g' | 'j' => {
                p.options |= match ch {
                    'n' => opt::SRC_NAT,
                    'g' => opt::DST_NAT,
                    _ => opt::ANY_NAT,
                };
                let optional = if arg.is_some() {
                    arg
                } else {
                    g.optional_next(false)
                };
                if let Some(v) = optional {
                    let (addr_s, port) = split_address_and_port(v)?;
                    let (ip, mask) = parse_addr(&addr_s);
                    let ip =
                        ip.ok_or_else(|| Fail::param(format!("Invalid IP address `{addr_s}'")))?;
                    set_family(&mut family, fam_of(&ip))?;
                    if mask.is_some() {
                        return Err(Fail::param(format!(
                            "CIDR notation unavailable for `--{}'",
                            long_name(c)
                        )));
                    }
                    let spec = NatSpec {
                        addr: Some(ip),
                        port,
                    };
                    match ch {
                        'n' => p.tmpl.snat = spec,
                        'g' => p.tmpl.dnat = spec,
                        _ => {
                            p.tmpl.snat = spec;
                            p.tmpl.dnat = spec;
                        }
                    }
                }
            }
            'w' => {
                p.options |= opt::ZONE;
                p.tmpl.zone = Some(strtoul(a) as u16);
            }
            '(' => {
                p.options |= opt::ORIG_ZONE;
                p.tmpl.orig_zone = Some(strtoul(a) as u16);
            }
            ')' => {
                p.options |= opt::REPL_ZONE;
                p.tmpl.repl_zone = Some(strtoul(a) as u16);
            }
            'i' => {
                p.options |= opt::ID;
                p.tmpl.id = Some(strtoul(a) as u32);
            }
            'c' => {
                p.options |= opt::SECMARK;
                p.tmpl.secmark = Some(strtoul(a) as u32);
            }
            'm' => {
                p.options |= opt::MARK;
                let (v, m) = parse_u32_mask(a);
                p.tmpl.mark = v;
                p.tmpl.mark_mask = m;
            }
            'l' | '<' | '>' => {
                p.options |= match ch {
                    'l' => opt::LABEL,
                    '<' => opt::ADD_LABEL,
                    _ => opt::DEL_LABEL,
                };
                labelmap_init(&mut p);
                if p.options & (opt::ADD_LABEL | opt::DEL_LABEL)
                    == (opt::ADD_LABEL | opt::DEL_LABEL)
                {
                    return Err(Fail::other(
                        "cannot use --label-add and --label-del at the same time",
                    ));
                }
                let v = if ch == '>' {
                    match if arg.is_some() {
                        arg
                    } else {
                        g.optional_next(false)
                    } {
                        Some(v) => v,
                        None => continue,
                    }
                } else {
                    a
                };
                for n in v.split(',') {
                    if p.labelmap.as_ref().and_then(|m| m.bit(n)).is_none() {
                        return Err(Fail::param(format!("unknown label '{n}'")));
                    }
                }
                let names = v.split(',').map(str::to_string);
                if ch == 'l' {
                    p.tmpl.labels.extend(names)
                } else {
                    p.tmpl.label_modify.extend(names)
                }
            }
            'a' => warn("WARNING: ignoring -a, deprecated option.".to_string()),
            'f' => {
                p.options |= opt::FAMILY;
                if a.starts_with("ipv4") {
                    set_family(&mut family, 2)?;
                } else if a.starts_with("ipv6") {
                    set_family(&mut family, 10)?;
                } else {
                    return Err(Fail::param(format!("`{a}' unsupported protocol")));
                }
            }
            'b' => {
                p.buffer_size = Some(atol(a).max(0) as usize);
                p.options |= opt::BUFFERSIZE;
            }
            _ => return Err(Fail::param(format!("unknown option `{}'", g.prev_word()))),
        }
    }

    if family == 0
        && !matches!(
            p.command,
            cmd::CT_LIST
                | cmd::CT_UPDATE
                | cmd::CT_DELETE
                | cmd::CT_GET
                | cmd::CT_FLUSH
                | cmd::CT_EVENT
        )
    {
        family = 2;
    }
    if p.options & opt::ANY_NAT != 0 && p.options & (opt::SRC_NAT | opt::DST_NAT) != 0 {
        return Err(Fail::param(
            "cannot specify `--src-nat' or `--dst-nat' with `--any-nat'",
        ));
    }
    p.cmd_bit = (0..cmd::NUMBER)
        .find(|b| p.command & (1 << b) != 0)
        .unwrap_or(cmd::NUMBER);
    let row = COMMANDS_V_OPTIONS
        .get(p.cmd_bit)
        .copied()
        .unwrap_or([0; opt::NUMBER]);
    let ok = generic_opt_check(p.options, &row, &OPT_NAMES, &[opt::ORIG, opt::REPL])?;
    match ok {
        Pairing::Ok => {}
        Pairing::Partial(1) => {
            return Err(Fail::param(
                "you have to specify `--reply-src' and `--reply-dst'",
            ));
        }
        Pairing::Partial(_) => return Err(Fail::param("you have to specify `--src' and `--dst'")),
    }
    if p.command & cmd::CT_HELP == 0
        && let Some(kind) = p.proto
    {
        let names = kind.flag_names();
        let mut row = [0u8; 16];
        for (f, r) in row.iter_mut().enumerate().take(names.len()) {
            *r = kind.legality(p.cmd_bit, f);
        }
        let res = generic_opt_check(p.l4flags, &row[..names.len()], names, &[0b0011, 0b1100])?;
        if let (Pairing::Partial(i), Some((m0, m1))) = (res, kind.pairing_messages()) {
            return Err(Fail::param(if i == 1 { m1 } else { m0 }));
        }
    }
    p.family = family;
    Ok(p)
}

enum Pairing {
    Ok,
    Partial(i32),
}

fn generic_opt_check(
    options: u32,
    row: &[u8],
    names: &[&str],
    coupled: &[u32],
) -> Result<Pairing, Fail> {
    let mut special = false;
    for (i, legal) in row.iter().enumerate() {
        let set = options & (1 << i) != 0;
        if !set && *legal == 1 {
            return Err(Fail::param(format!(
                "You need to supply the `--{}' option for this command",
                names[i]
            )));
        }
        if set && *legal == 0 {
            return Err(Fail::param(format!(
                "Illegal option `--{}' with this command",
                names[i]
            )));
        }
        special |= *legal == 3;
    }
    // Options beyond the row (e.g. no command at all) are illegal too.
    for (i, name) in names.iter().enumerate().skip(row.len()) {
        if options & (1 << i) != 0 {
            return Err(Fail::param(format!(
                "Illegal option `--{name}' with this command"
            )));
        }
    }
    if !special {
        return Ok(Pairing::Ok);
    }
    let mut partial = -1;
    for (i, c) in coupled.iter().enumerate() {
        if options & c == *c {
            return Ok(Pairing::Ok);
        }
        if options & c != 0 && partial < 0 {
            partial = i as i32;
        }
    }
    Ok(Pairing::Partial(partial))
}

fn add_command(cur: &mut u32, new: u32) -> Result<(), Fail> {
    if *cur != 0 {
        return Err(Fail::param("Invalid commands combination"));
    }
    *cur |= new;
    Ok(())
}

fn command_for(ch: char, table: Table) -> u32 {
    let exp = table == Table::Expect;
    match (ch, exp) {
        ('L', false) => cmd::CT_LIST,
        ('L', true) => cmd::EXP_LIST,
        ('I', false) => cmd::CT_CREATE,
        ('I', true) => cmd::EXP_CREATE,
        ('D', false) => cmd::CT_DELETE,
        ('D', true) => cmd::EXP_DELETE,
        ('G', false) => cmd::CT_GET,
        ('G', true) => cmd::EXP_GET,
        ('F', false) => cmd::CT_FLUSH,
        ('F', true) => cmd::EXP_FLUSH,
        ('E', false) => cmd::CT_EVENT,
        ('E', true) => cmd::EXP_EVENT,
        ('V', _) => cmd::CT_VERSION,
        ('h', _) => cmd::CT_HELP,
        ('C', false) => cmd::CT_COUNT,
        ('C', true) => cmd::EXP_COUNT,
        ('S', false) => cmd::CT_STATS,
        ('S', true) => cmd::EXP_STATS,
        ('U', false) => cmd::CT_UPDATE,
        ('A', false) => cmd::CT_ADD,
        _ => 0,
    }
}

fn long_name(c: u32) -> &'static str {
    super::opts::LONG_OPTS
        .iter()
        .find(|o| o.val == c)
        .map(|o| o.name)
        .unwrap_or("unknown")
}

fn check_type(word: Option<&str>) -> Result<Table, Fail> {
    let Some(t) = word else {
        return Ok(Table::Conntrack);
    };
    // conntrack-tools accepts any prefix (including the empty string) of a table name.
    for (name, table) in [
        ("expect", Table::Expect),
        ("conntrack", Table::Conntrack),
        ("dying", Table::Dying),
        ("unconfirmed", Table::Unconfirmed),
    ] {
        if name.starts_with(t) {
            return Ok(table);
        }
    }
    Err(Fail::param(format!("unknown type `{t}'")))
}

fn set_family(family: &mut u8, new: u8) -> Result<(), Fail> {
    if *family == 0 {
        *family = new;
    } else if *family != new {
        return Err(Fail::param("mismatched address family"));
    }
    Ok(())
}

fn fam_of(ip: &IpAddr) -> u8 {
    if ip.is_ipv4() { 2 } else { 10 }
}

/// Parses `addr[/mask]`: the address (None if invalid) and the mask (None: no mask; Some(-2) invalid).
fn parse_addr(s: &str) -> (Option<IpAddr>, Option<i64>) {
    // conntrack-tools copies at most INET6_ADDRSTRLEN-1 (45) bytes.
    let s = match s.char_indices().nth(45) {
        Some((i, _)) => &s[..i],
        None => s,
    };
    let (a, mask) = match s.split_once('/') {
        Some((a, m)) => {
            let v = strtol_full(m);
            (a, Some(v.filter(|v| *v >= 0).unwrap_or(-2)))
        }
        None => (s, None),
    };
    let ip = inet_aton(a)
        .map(IpAddr::V4)
        .or_else(|| a.parse::<Ipv6Addr>().ok().map(IpAddr::V6));
    let mask = match (ip, mask) {
        (Some(IpAddr::V4(_)), Some(m)) if m > 32 => Some(-2),
        (Some(IpAddr::V6(_)), Some(m)) if m > 128 => Some(-2),
        (_, m) => m,
    };
    (ip, mask)
}

fn strtol_full(s: &str) -> Option<i64> {
    let t = s.trim_start();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return if s.is_empty() { Some(0) } else { None };
    }
    let v: i64 = digits.parse().ok()?;
    Some(if neg { -v } else { v })
}

/// `inet_aton`: accepts the classic forms `a`, `a.b`, `a.b.c`, `a.b.c.d`, each part decimal, octal or hex.
pub fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut vals = Vec::with_capacity(4);
    for p in &parts {
        vals.push(c_number(p)?);
    }
    let n = vals.len();
    let mut out: u64 = 0;
    for (i, v) in vals.iter().enumerate() {
        if i + 1 < n {
            if *v > 255 {
                return None;
            }
            out |= v << (8 * (3 - i));
        } else {
            let room = 8 * (4 - i as u32);
            if room < 64 && *v >= (1u64 << room) {
                return None;
            }
            out |= v;
        }
    }
    Some(Ipv4Addr::from(out as u32))
}

fn c_number(p: &str) -> Option<u64> {
    if p.is_empty() {
        return None;
    }
    let (digits, radix) = if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
        (h, 16)
    } else if p.len() > 1 && p.starts_with('0') {
        (&p[1..], 8)
    } else {
        (p, 10)
    };
    // A bare `0x` is no number: glibc's strtoul stops after the `0`, and the `x` left over makes the
    // address invalid.
    if digits.is_empty() {
        return None;
    }
    u64::from_str_radix(digits, radix)
        .ok()
        .filter(|v| *v <= u64::from(u32::MAX))
}

fn netmask(ip: &IpAddr, bits: i64) -> IpAddr {
    match ip {
        IpAddr::V4(_) => {
            let b = bits.clamp(0, 32) as u32;
            let m = if b == 0 { 0 } else { u32::MAX << (32 - b) };
            IpAddr::V4(Ipv4Addr::from(m))
        }
        IpAddr::V6(_) => {
            let b = bits.clamp(0, 128) as u32;
            let m = if b == 0 { 0 } else { u128::MAX << (128 - b) };
            IpAddr::V6(Ipv6Addr::from(m))
        }
    }
}

fn addr_opt(p: &mut Parsed, family: &mut u8, ch: char, a: &str) -> Result<(), Fail> {
    let (ip, mask) = parse_addr(a);
    let ip = ip.ok_or_else(|| Fail::param(format!("Invalid IP address `{a}'")))?;
    set_family(family, fam_of(&ip))?;
    let has_maskopt = matches!(ch, 's' | 'd' | '[' | ']');
    if let Some(m) = mask {
        if !has_maskopt {
            return Err(Fail::param(format!(
                "CIDR notation unavailable for `--{}'",
                long_name(ch as u32)
            )));
        }
        if m == -2 {
            return Err(Fail::param("Invalid netmask"));
        }
    }
    let t = &mut p.tmpl;
    match ch {
        's' => {
            p.options |= opt::ORIG_SRC;
            t.orig_src = Some(ip);
        }
        'd' => {
            p.options |= opt::ORIG_DST;
            t.orig_dst = Some(ip);
        }
        'r' => {
            p.options |= opt::REPL_SRC;
            t.repl_src = Some(ip);
        }
        'q' => {
            p.options |= opt::REPL_DST;
            t.repl_dst = Some(ip);
        }
        '[' => {
            p.options |= opt::EXP_SRC;
            t.tuple_src = Some(ip);
        }
        ']' => {
            p.options |= opt::EXP_DST;
            t.tuple_dst = Some(ip);
        }
        '{' => {
            p.options |= opt::MASK_SRC;
            t.mask_src = Some(ip);
        }
        _ => {
            p.options |= opt::MASK_DST;
            t.mask_dst = Some(ip);
        }
    }
    if let Some(m) = mask {
        let full = if ip.is_ipv4() { 32 } else { 128 };
        if m != full {
            let nm = netmask(&ip, m);
            if matches!(ch, 's' | '[') {
                p.options |= opt::MASK_SRC;
                t.mask_src = Some(nm);
            } else {
                p.options |= opt::MASK_DST;
                t.mask_dst = Some(nm);
            }
        }
    }
    Ok(())
}

fn split_address_and_port(arg: &str) -> Result<(String, Option<u16>), Fail> {
    let (addr, port) = if let Some(open) = arg.find('[') {
        let start = &arg[open + 1..];
        let Some(close) = start.find(']') else {
            return Err(Fail::param("No closing ']' around IPv6 address"));
        };
        if close == 0 {
            return Err(Fail::param("No IPv6 address specified"));
        }
        match start[close..].find(':') {
            Some(c) => (
                start[..close].to_string(),
                Some(start[close + c + 1..].to_string()),
            ),
            None => (arg.to_string(), None),
        }
    } else {
        match arg.split_once(':') {
            Some((a, rest)) if !rest.contains(':') => (a.to_string(), Some(rest.to_string())),
            _ => (arg.to_string(), None),
        }
    };
    let port = match port {
        None => None,
        Some(p) if p.is_empty() => return Err(Fail::param("No port specified after `:'")),
        Some(p) => {
            if !p.bytes().all(|b| b.is_ascii_digit())
                || p.parse::<u32>().map_or(true, |v| v > 65535)
            {
                return Err(Fail::param(format!("Invalid port `{p}'")));
            }
            p.parse::<u16>().ok()
        }
    };
    Ok((addr, port))
}

/// The long options after `-p` with `kind` (built once).
fn long_opts_for(kind: ProtoKind) -> &'static [super::getopt::LongOpt] {
    static CACHE: std::sync::OnceLock<Vec<(ProtoKind, Vec<super::getopt::LongOpt>)>> =
        std::sync::OnceLock::new();
    let all = CACHE.get_or_init(|| {
        [
            ProtoKind::Tcp,
            ProtoKind::Udp,
            ProtoKind::Udplite,
            ProtoKind::Sctp,
            ProtoKind::Dccp,
            ProtoKind::Icmp,
            ProtoKind::Icmpv6,
            ProtoKind::Gre,
            ProtoKind::Unknown,
        ]
        .into_iter()
        .map(|k| (k, k.long_opts()))
        .collect()
    });
    all.iter()
        .find(|(k, _)| *k == kind)
        .map_or(super::opts::LONG_OPTS, |(_, v)| v.as_slice())
}

/// Finds the handler for `-p NAME|NUMBER`, like conntrack-tools (names case-insensitive, then
/// /etc/protocols, then a number up to 255).
fn find_proto(name: &str) -> Option<(ProtoKind, u8)> {
    const KNOWN: [ProtoKind; 8] = [
        ProtoKind::Tcp,
        ProtoKind::Udp,
        ProtoKind::Udplite,
        ProtoKind::Sctp,
        ProtoKind::Dccp,
        ProtoKind::Icmp,
        ProtoKind::Icmpv6,
        ProtoKind::Gre,
    ];
    for k in KNOWN {
        if k.name().eq_ignore_ascii_case(name) {
            return k.number().map(|n| (k, n));
        }
    }
    if let Some(n) = etc_protocols(name) {
        // A name found in /etc/protocols uses the "unknown" handler even when the number is known.
        return Some((ProtoKind::Unknown, n));
    }
    let v = strtoul_strict(name)?;
    if v > 255 {
        return None;
    }
    let n = v as u8;
    Some((ProtoKind::from_number(n), n))
}

fn etc_protocols(name: &str) -> Option<u8> {
    let text = std::fs::read_to_string("/etc/protocols").ok()?;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let (Some(first), Some(num)) = (words.next(), words.next()) else {
            continue;
        };
        if first == name || words.any(|w| w == name) {
            return num.parse().ok();
        }
    }
    None
}

fn strtoul_strict(s: &str) -> Option<u64> {
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// C `strtoul(s, NULL, 0)`: leading digits in base 0, garbage ignored, 0 when none.
pub fn strtoul(s: &str) -> u64 {
    let t = s.trim_start();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (digits, radix) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (h, 16)
    } else if t.starts_with('0') {
        (t, 8)
    } else {
        (t, 10)
    };
    let end = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    let v =
        u64::from_str_radix(&digits[..end], radix).unwrap_or(if end == 0 { 0 } else { u64::MAX });
    if neg { v.wrapping_neg() } else { v }
}

/// C `atol`/`atoi`: optional sign and decimal digits, garbage ignored.
pub fn atol(s: &str) -> i64 {
    let t = s.trim_start();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let v: i64 = t[..end].parse().unwrap_or(0);
    if neg { -v } else { v }
}

fn parse_u32_mask(s: &str) -> (u32, u32) {
    let (v, rest) = match s.find('/') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let value = strtoul(v) as u32;
    // conntrack-tools only looks at the character after the digits; anything but '/' means "no mask".
    let after_digits_is_slash = rest.is_some() && {
        let t = v.trim_start();
        let t = t.strip_prefix(['+', '-']).unwrap_or(t);
        let digits_end = if t.starts_with("0x") || t.starts_with("0X") {
            2 + t[2..]
                .find(|c: char| !c.is_ascii_hexdigit())
                .unwrap_or(t.len() - 2)
        } else {
            t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len())
        };
        digits_end == t.len()
    };
    let mask = match rest {
        Some(m) if after_digits_is_slash => strtoul(m) as u32,
        _ => u32::MAX,
    };
    (value, mask)
}

const STATUS_WORDS: &[(&str, u32)] = &[
    ("ASSURED", status::ASSURED),
    ("SEEN_REPLY", status::SEEN_REPLY),
    ("UNSET", 0),
    ("FIXED_TIMEOUT", status::FIXED_TIMEOUT),
    ("EXPECTED", status::EXPECTED),
    ("OFFLOAD", status::OFFLOAD),
    ("HW_OFFLOAD", status::HW_OFFLOAD),
];
const EVENT_WORDS: &[(&str, u32)] = &[
    ("ALL", ev::NEW | ev::UPD | ev::DEL),
    ("NEW", ev::NEW),
    ("UPDATES", ev::UPD),
    ("DESTROY", ev::DEL),
];
const OUTPUT_WORDS: &[(&str, u32)] = &[
    ("xml", out::XML),
    ("extended", out::EXT),
    ("timestamp", out::TMS),
    ("id", out::ID),
    ("ktimestamp", out::KTMS),
    ("labels", out::CL),
    ("userspace", 0),
    ("save", out::SAVE),
    ("json", out::JSON),
];

/// One word of a comma list: conntrack-tools compares case-insensitively over the *given* length, so any
/// prefix matches (first table entry wins). SRC_NAT/DST_NAT are ignored with a warning.
fn one_word(w: &str, acc: &mut u32, words: &[(&str, u32)]) -> bool {
    let pre = |full: &str| full.len() >= w.len() && full[..w.len()].eq_ignore_ascii_case(w);
    if pre("SRC_NAT") {
        warn("WARNING: ignoring SRC_NAT, use --src-nat instead".to_string());
        return true;
    }
    if pre("DST_NAT") {
        warn("WARNING: ignoring DST_NAT, use --dst-nat instead".to_string());
        return true;
    }
    for (name, v) in words {
        if pre(name) {
            *acc |= v;
            return true;
        }
    }
    false
}

fn parse_list(arg: &str, acc: &mut u32, words: &[(&str, u32)]) -> Result<(), Fail> {
    let mut rest = arg;
    loop {
        match rest.find(',') {
            Some(i) => {
                if i == 0 || !one_word(&rest[..i], acc, words) {
                    return Err(Fail::param(format!("Bad parameter `{rest}'")));
                }
                rest = &rest[i + 1..];
            }
            None => {
                if rest.is_empty() || !one_word(rest, acc, words) {
                    return Err(Fail::param(format!("Bad parameter `{rest}'")));
                }
                return Ok(());
            }
        }
    }
}

fn parse_status_mask(arg: &str, val: &mut u32, mask: &mut u32) -> Result<(), Fail> {
    let mut rest = arg;
    loop {
        let (item, next) = match rest.find(',') {
            Some(0) => return Err(Fail::param(format!("Bad parameter `{rest}'"))),
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let negated = item.starts_with('!');
        let word = if negated { &item[1..] } else { item };
        if negated && word.is_empty() && next.is_some() {
            return Err(Fail::param(format!("Bad parameter `{}'", &rest[1..])));
        }
        if !negated && word.starts_with("UNREPLIED") {
            *mask |= status::SEEN_REPLY;
        } else {
            let target = if negated { &mut *mask } else { &mut *val };
            if word.is_empty() || !one_word(word, target, STATUS_WORDS) {
                let shown = if negated { &rest[1..] } else { rest };
                return Err(Fail::param(format!("Bad parameter `{shown}'")));
            }
        }
        match next {
            Some(n) => rest = n,
            None => return Ok(()),
        }
    }
}

fn proto_opt(p: &mut Parsed, flag: u32, a: &str) -> Result<(), Fail> {
    let Some(kind) = p.proto else { return Ok(()) };
    p.l4flags |= 1 << flag;
    let port = || atol(a) as u16;
    let key = || strtoul(a) as u16;
    let t = &mut p.tmpl;
    match kind {
        ProtoKind::Icmp | ProtoKind::Icmpv6 => match flag {
            0 => t.icmp_type = Some(atol(a) as u8),
            1 => t.icmp_code = Some(atol(a) as u8),
            _ => t.icmp_id = Some(atol(a) as u16),
        },
        ProtoKind::Gre => match flag {
            0 => t.orig_l4.sport = Some(key()),
            1 => t.orig_l4.dport = Some(key()),
            2 => t.repl_l4.sport = Some(key()),
            3 => t.repl_l4.dport = Some(key()),
            4 => t.mask_l4.sport = Some(key()),
            5 => t.mask_l4.dport = Some(key()),
            6 => t.tuple_l4.sport = Some(key()),
            _ => t.tuple_l4.dport = Some(key()),
        },
        _ => {
            // Port protocols: 0..5 are ports; then state (tcp/sctp/dccp) and tuple ports.
            let has_state = !matches!(kind, ProtoKind::Udp | ProtoKind::Udplite);
            match (flag, has_state) {
                (0, _) => t.orig_l4.sport = Some(port()),
                (1, _) => t.orig_l4.dport = Some(port()),
                (2, _) => t.repl_l4.sport = Some(port()),
                (3, _) => t.repl_l4.dport = Some(port()),
                (4, _) => t.mask_l4.sport = Some(port()),
                (5, _) => t.mask_l4.dport = Some(port()),
                (6, true) => t.state = Some(parse_state(kind, a)?),
                (6, false) => t.tuple_l4.sport = Some(port()),
                (7, false) => t.tuple_l4.dport = Some(port()),
                (7, true) => t.tuple_l4.sport = Some(port()),
                (8, true) => t.tuple_l4.dport = Some(port()),
                (9, _) if kind == ProtoKind::Sctp => t.orig_vtag = Some(strtoul(a) as u32),
                (10, _) if kind == ProtoKind::Sctp => t.repl_vtag = Some(strtoul(a) as u32),
                (9, _) => {
                    let pre = |full: &str| {
                        full.len() >= a.len() && full[..a.len()].eq_ignore_ascii_case(a)
                    };
                    t.dccp_role = Some(if pre("client") {
                        0
                    } else if pre("server") {
                        1
                    } else {
                        return Err(Fail::param(format!("Unknown DCCP role `{a}'")));
                    });
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn parse_state(kind: ProtoKind, a: &str) -> Result<u8, Fail> {
    match kind {
        ProtoKind::Tcp => {
            if a == "LISTEN" {
                return Ok(9);
            }
            ctnl::text::TCP_STATES
                .iter()
                .position(|s| *s == a)
                .map(|i| i as u8)
                .ok_or_else(|| Fail::param(format!("unknown TCP state `{a}'")))
        }
        ProtoKind::Sctp => ctnl::text::SCTP_STATES[..8]
            .iter()
            .position(|s| *s == a)
            .map(|i| i as u8)
            .ok_or_else(|| Fail::param(format!("unknown SCTP state `{a}'"))),
        _ => ctnl::text::DCCP_STATES
            .iter()
            .position(|s| *s == a)
            .map(|i| i as u8)
            .ok_or_else(|| Fail::param(format!("Unknown DCCP state `{a}'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Parsed, Fail> {
        let mut v = vec!["conntrack"];
        v.extend(args.iter().copied());
        parse(&v)
    }

    #[test]
    fn list_with_filters() {
        let r = p(&[
            "-L",
            "-p",
            "udp",
            "--dport",
            "53",
            "-m",
            "0x10/0xf0",
            "-s",
            "10.0.0.0/8",
        ])
        .unwrap();
        assert_eq!(r.command, cmd::CT_LIST);
        assert_eq!(r.tmpl.orig_l4.dport, Some(53));
        assert_eq!((r.tmpl.mark, r.tmpl.mark_mask), (0x10, 0xf0));
        assert_eq!(r.tmpl.mask_src, Some("255.0.0.0".parse().unwrap()));
        assert_eq!(r.family, 2);
    }

    #[test]
    fn errors_match_conntrack_tools() {
        let e = |a: &[&str]| p(a).unwrap_err().msg;
        assert_eq!(e(&["-L", "-D"]), "Invalid commands combination");
        assert_eq!(e(&["-L", "--sport", "1"]), "unknown option `--sport'");
        assert_eq!(
            e(&["-I", "-s", "1.1.1.1"]),
            "You need to supply the `--protonum' option for this command"
        );
        assert_eq!(
            e(&["-L", "-r", "1.2.3.4/8"]),
            "CIDR notation unavailable for `--reply-src'"
        );
        assert_eq!(e(&["-L", "-u", "FOO"]), "Bad parameter `FOO'");
        assert_eq!(
            e(&["-s", "1.2.3.4"]),
            "Illegal option `--src' with this command"
        );
        assert_eq!(e(&["-L", "-n", "1.2.3.4:99999"]), "Invalid port `99999'");
        assert_eq!(p(&["-L", "-o", "xml,save"]).unwrap_err().code, 1);
    }

    #[test]
    fn status_unreplied_and_negation() {
        let r = p(&["-L", "-u", "UNREPLIED"]).unwrap();
        assert_eq!((r.tmpl.status, r.tmpl.status_mask), (0, status::SEEN_REPLY));
        let r = p(&["-L", "-u", "ASSURED,!SEEN_REPLY"]).unwrap();
        assert_eq!(
            (r.tmpl.status, r.tmpl.status_mask),
            (status::ASSURED, status::SEEN_REPLY)
        );
    }

    #[test]
    fn c_number_parsing() {
        assert_eq!(inet_aton("10.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inet_aton("1.2.3.400"), None);
        for bad in [
            "0x.1.1.1", "1.0x.1.1", "1.0x", "0x", "0X.1", "00x.1", "08.1.1.1", "1..1",
        ] {
            assert_eq!(inet_aton(bad), None, "{bad}");
        }
        assert_eq!(inet_aton("0x1f.1"), Some(Ipv4Addr::new(31, 0, 0, 1)));
        assert_eq!(strtoul("0x10"), 16);
        assert_eq!(strtoul("010"), 8);
        assert_eq!(atol("12abc"), 12);
    }
}
