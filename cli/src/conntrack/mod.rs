//! `conntrack`: a drop-in replacement for conntrack-tools 1.4.7's `conntrack`, built on [`ctnl`].
//!
//! Layers, each testable alone:
//! * [`getopt`] and [`parse`]: the command line, with conntrack-tools' exact option set, abbreviations,
//!   checks, error texts and exit codes (2 for parameter problems, 1 for the rest);
//! * [`kernel`]: the commands, on `ctnl` sockets, printing through `ctnl::text` (the default, extended, id,
//!   ktimestamp, labels, save and xml formats and our `json`, with ctnl's state names, label map and local
//!   time); [`restore`]: `-R FILE`, parsed on every core and sent in batches;
//! * [`manual`]: the clap definition the man page and shell completions are generated from;
//! * [`userspace`]: the `-E` ` [USERSPACE] portid=N progname=X` suffix.

pub mod getopt;
pub mod kernel;
pub mod manual;
pub mod opts;
pub mod parse;
pub mod restore;
pub mod userspace;

use std::io::Write;

use opts::{ProtoKind, cmd};
use parse::{Fail, Parsed};

/// The prefix of every summary and error line. The original prints `conntrack v1.4.7 (conntrack-tools): `;
/// we keep the tool name and the compatibility level and name ourselves.
pub const PREFIX: &str = "conntrack v1.4.7 (linux-ha-rs): ";

/// `conntrack -V`.
pub const VERSION_LINE: &str = "conntrack v1.4.7 (linux-ha-rs)";

/// Runs the tool with the process arguments and returns the exit status.
pub fn run() -> i32 {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let code = main_with(argv, &mut out);
    match out.flush() {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        _ => code,
    }
}

/// Prints a refusal the way conntrack-tools does and returns its exit status.
pub fn report(fail: &Fail) -> i32 {
    eprintln!("{PREFIX}{}", fail.msg);
    if fail.code == opts::EXIT_PARAMETER_PROBLEM {
        eprintln!("Try `conntrack -h' or 'conntrack --help' for more information.");
    }
    fail.code
}

/// The whole tool over an argument vector and a stdout; stderr is the process's.
pub fn main_with(argv: Vec<String>, out: &mut dyn Write) -> i32 {
    if let Some(first) = argv.get(1) {
        match first.as_str() {
            "--generate-man" => return write_quiet(out, &manual::man_page()),
            "--generate-completions" => {
                let shell = argv.get(2).map(String::as_str).unwrap_or("bash");
                return match manual::completions(shell) {
                    Some(text) => write_quiet(out, &text),
                    None => report(&Fail::param(format!("unknown shell `{shell}'"))),
                };
            }
            "-R" | "--load-file" if argv.len() > 2 => {
                return match restore::load_file(&argv[0], &argv[2], out) {
                    Ok(()) => 0,
                    Err(f) => report(&f),
                };
            }
            _ => {}
        }
    }
    let words: Vec<&str> = argv.iter().map(String::as_str).collect();
    let parsed = match parse::parse(&words) {
        Ok(p) => p,
        Err(f) => return report(&f),
    };
    let prog = argv.first().map_or("conntrack", String::as_str);
    match execute_as(prog, &parsed, out) {
        Ok(code) => code,
        Err(Outcome::Fail(f)) => report(&f),
        Err(Outcome::BrokenPipe) => 0,
    }
}

/// Why a command stopped early.
#[derive(Debug)]
pub enum Outcome {
    /// A refusal or failure to report.
    Fail(Fail),
    /// stdout went away (`| head`): end quietly.
    BrokenPipe,
}

impl From<Fail> for Outcome {
    fn from(f: Fail) -> Self {
        Outcome::Fail(f)
    }
}

impl From<std::io::Error> for Outcome {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Outcome::BrokenPipe
        } else {
            Outcome::Fail(Fail::other(format!("write error: {e}")))
        }
    }
}

fn write_quiet(out: &mut dyn Write, text: &str) -> i32 {
    match out.write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => 1,
        _ => 0,
    }
}

/// Runs a parsed command: prints results on `out`, the summary on stderr, and returns the exit status.
pub fn execute(p: &Parsed, out: &mut dyn Write) -> Result<i32, Outcome> {
    execute_as("conntrack", p, out)
}

/// [`execute`] for a tool invoked as `prog` (`argv[0]`, which `-h` prints in its usage line as
/// conntrack-tools does).
pub fn execute_as(prog: &str, p: &Parsed, out: &mut dyn Write) -> Result<i32, Outcome> {
    match p.command {
        cmd::CT_VERSION => {
            writeln!(out, "{VERSION_LINE}")?;
            return Ok(0);
        }
        cmd::CT_HELP | 0 => {
            out.write_all(usage_as(prog).as_bytes())?;
            if p.command == cmd::CT_HELP
                && let Some(k) = p.proto
            {
                out.write_all(proto_help(k, p.tmpl.l4proto.unwrap_or(0)).as_bytes())?;
            }
            return Ok(0);
        }
        _ => {}
    }
    let counter = kernel::execute(p, out)?;
    out.flush()?;
    if let Some(msg) = opts::exit_msg(p.cmd_bit) {
        eprintln!("{PREFIX}{counter} {msg}");
        // -E ends only by SIGINT/SIGTERM, which conntrack-tools answers with exit(0) whatever the count.
        if counter == 0
            && p.command & (cmd::CT_LIST | cmd::EXP_LIST | cmd::CT_ADD | cmd::CT_EVENT) == 0
        {
            return Ok(1);
        }
    }
    Ok(0)
}

/// The `-h` text (the same as conntrack-tools') for a tool invoked as `conntrack`.
pub fn usage() -> String {
    usage_as("conntrack")
}

/// The `-h` text for a tool invoked as `prog`.
pub fn usage_as(prog: &str) -> String {
    let mut s = String::new();
    s.push_str("Command line interface for the connection tracking system. Version 1.4.7\n");
    s.push_str(&format!("Usage: {prog} [commands] [options]\n"));
    s.push_str("\nCommands:\n");
    s.push_str("  -L [table] [options]\t\tList conntrack or expectation table\n");
    s.push_str("  -G [table] parameters\t\tGet conntrack or expectation\n");
    s.push_str("  -D [table] parameters\t\tDelete conntrack or expectation\n");
    s.push_str("  -I [table] parameters\t\tCreate a conntrack or expectation\n");
    s.push_str("  -U [table] parameters\t\tUpdate a conntrack\n");
    s.push_str("  -E [table] [options]\t\tShow events\n");
    s.push_str("  -F [table]\t\t\tFlush table\n");
    s.push_str("  -C [table]\t\t\tShow counter\n");
    s.push_str("  -S\t\t\t\tShow statistics\n");
    s.push_str("\nTables: conntrack, expect, dying, unconfirmed\n");
    s.push_str("\nConntrack parameters and options:\n");
    s.push_str("  -n, --src-nat ip\t\t\tsource NAT ip\n");
    s.push_str("  -g, --dst-nat ip\t\t\tdestination NAT ip\n");
    s.push_str("  -j, --any-nat ip\t\t\tsource or destination NAT ip\n");
    s.push_str("  -m, --mark mark\t\t\tSet mark\n");
    s.push_str("  -c, --secmark secmark\t\t\tSet selinux secmark\n");
    s.push_str("  -e, --event-mask eventmask\t\tEvent mask, eg. NEW,DESTROY\n");
    s.push_str("  -z, --zero \t\t\t\tZero counters while listing\n");
    s.push_str("  -o, --output type[,...]\t\tOutput format, eg. xml\n");
    s.push_str("  -l, --label label[,...]\t\tconntrack labels\n");
    s.push_str("\nExpectation parameters and options:\n");
    s.push_str("  --tuple-src ip\tSource address in expect tuple\n");
    s.push_str("  --tuple-dst ip\tDestination address in expect tuple\n");
    s.push_str("\nUpdating parameters and options:\n");
    s.push_str("  --label-add label\tAdd label\n");
    s.push_str("  --label-del label\tDelete label\n");
    s.push_str("\nCommon parameters and options:\n");
    s.push_str("  -s, --src, --orig-src ip\t\tSource address from original direction\n");
    s.push_str("  -d, --dst, --orig-dst ip\t\tDestination address from original direction\n");
    s.push_str("  -r, --reply-src ip\t\tSource addres from reply direction\n");
    s.push_str("  -q, --reply-dst ip\t\tDestination address from reply direction\n");
    s.push_str("  -p, --protonum proto\t\tLayer 4 Protocol, eg. 'tcp'\n");
    s.push_str("  -f, --family proto\t\tLayer 3 Protocol, eg. 'ipv6'\n");
    s.push_str("  -t, --timeout timeout\t\tSet timeout\n");
    s.push_str("  -u, --status status\t\tSet status, eg. ASSURED\n");
    s.push_str("  -w, --zone value\t\tSet conntrack zone\n");
    s.push_str("  --orig-zone value\t\tSet zone for original direction\n");
    s.push_str("  --reply-zone value\t\tSet zone for reply direction\n");
    s.push_str("  -b, --buffer-size\t\tNetlink socket buffer size\n");
    s.push_str("  --mask-src ip\t\t\tSource mask address\n");
    s.push_str("  --mask-dst ip\t\t\tDestination mask address\n");
    s.push('\n');
    s
}

/// `-h -p PROTO`: the protocol's own help.
pub fn proto_help(kind: ProtoKind, num: u8) -> String {
    let name = if kind == ProtoKind::Unknown {
        protocol_name(num).unwrap_or_else(|| "unknown".to_string())
    } else {
        kind.name().to_string()
    };
    let mut s = format!("Proto `{name}' help:\n");
    let ports = |s: &mut String, what: &str| {
        for (o, d) in [
            ("orig-port-src", "\t\toriginal source port"),
            ("orig-port-dst", "\t\toriginal destination port"),
            ("reply-port-src", "\t\treply source port"),
            ("reply-port-dst", "\t\treply destination port"),
            ("mask-port-src", "\t\tmask source port"),
            ("mask-port-dst", "\t\tmask destination port"),
            ("tuple-port-src", "\t\texpectation tuple src port"),
            ("tuple-port-src", "\t\texpectation tuple dst port"),
        ] {
            let o = o.replace("port", what);
            let d = d.replace("port", what);
            s.push_str(&format!("  --{o}{d}\n"));
        }
    };
    match kind {
        ProtoKind::Tcp => {
            ports(&mut s, "port");
            s.push_str("  --state\t\t\tTCP state, fe. ESTABLISHED\n");
        }
        ProtoKind::Sctp => {
            ports(&mut s, "port");
            s.push_str("  --state\t\t\tSCTP state, fe. ESTABLISHED\n");
            s.push_str("  --orig-vtag\t\toriginal verification tag\n");
            s.push_str("  --reply-vtag\t\treply verification tag\n");
        }
        ProtoKind::Dccp => {
            ports(&mut s, "port");
            s.push_str("  --state\t\t\tDCCP state, fe. RESPOND\n");
        }
        ProtoKind::Udp | ProtoKind::Udplite => ports(&mut s, "port"),
        ProtoKind::Gre => ports(&mut s, "key"),
        ProtoKind::Icmp => {
            s.push_str("  --icmp-type\t\t\ticmp type\n  --icmp-code\t\t\ticmp code\n  --icmp-id\t\t\ticmp id\n");
        }
        ProtoKind::Icmpv6 => {
            s.push_str(
                "  --icmpv6-type\t\t\ticmpv6 type\n  --icmpv6-code\t\t\ticmpv6 code\n  --icmpv6-id\t\t\ticmpv6 id\n",
            );
        }
        ProtoKind::Unknown => s.push_str("  no options (unsupported)\n"),
    }
    s
}

fn protocol_name(num: u8) -> Option<String> {
    let text = std::fs::read_to_string("/etc/protocols").ok()?;
    text.lines().find_map(|l| {
        let l = l.split('#').next().unwrap_or("");
        let mut w = l.split_whitespace();
        let name = w.next()?;
        (w.next()?.parse::<u8>().ok()? == num).then(|| name.to_string())
    })
}
