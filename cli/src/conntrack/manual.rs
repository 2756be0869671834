//! The clap definition of the command line, built from the same option tables the parser uses, and the man
//! page and shell completions generated from it (`conntrack --generate-man`,
//! `conntrack --generate-completions bash|zsh|fish|elvish|powershell`).
//!
//! Parsing itself goes through [`super::getopt`], because conntrack-tools' getopt rules (abbreviations,
//! optional table names, protocol options enabled by `-p`) and its exact error texts cannot be expressed in
//! clap; this definition documents every option and keeps the two in step (a test checks that every long
//! option of the parser appears here).

use clap::{Arg, ArgAction, Command};

use super::getopt::HasArg;
use super::opts::{LONG_OPTS, ProtoKind};

fn help_for(name: &str) -> &'static str {
    match name {
        "dump" => "List the conntrack table, or another table: expect, dying, unconfirmed",
        "create" => "Create a conntrack or expectation",
        "add" => "Add a conntrack, succeeding if it already exists",
        "delete" => "Delete conntracks or an expectation",
        "update" => "Update conntracks",
        "get" => "Get a conntrack or expectation",
        "flush" => "Flush the table",
        "event" => {
            "Show events until SIGINT or SIGTERM, then print \"N flow events have been shown.\" and exit 0; \
             events caused by a program end in \" [USERSPACE] portid=N progname=X\""
        }
        "counter" => "Show the counter of entries",
        "stats" => "Show statistics",
        "version" => "Show the version",
        "help" => "Show help (with -p PROTO, that protocol's options)",
        "orig-src" | "src" => "Source address from original direction (CIDR allowed)",
        "orig-dst" | "dst" => "Destination address from original direction (CIDR allowed)",
        "reply-src" => "Source address from reply direction",
        "reply-dst" => "Destination address from reply direction",
        "protonum" => "Layer 4 protocol, e.g. tcp, udp, 132",
        "timeout" => "Set timeout",
        "status" => "Status, e.g. ASSURED, !SEEN_REPLY, UNREPLIED",
        "zero" => "Zero counters while listing",
        "event-mask" => "Event mask, e.g. NEW,DESTROY",
        "tuple-src" => "Source address in expect tuple",
        "tuple-dst" => "Destination address in expect tuple",
        "mask-src" => "Source mask address",
        "mask-dst" => "Destination mask address",
        "nat-range" => "Deprecated, ignored",
        "mark" => "Mark value[/mask]; on update the new mark is (old & ~mask) ^ value",
        "secmark" => "Set selinux secmark",
        "id" => "Conntrack id",
        "family" => "Layer 3 protocol: ipv4 or ipv6",
        "src-nat" => "Filter source NAT entries, optionally to ip[:port]",
        "dst-nat" => "Filter destination NAT entries, optionally to ip[:port]",
        "output" => {
            "Output format: extended, timestamp, id, ktimestamp, labels, userspace, save, xml, json"
        }
        "buffer-size" => "Netlink socket buffer size (of the socket that is read)",
        "any-nat" => "Filter source or destination NAT entries, optionally to ip[:port]",
        "zone" => "Conntrack zone",
        "label" => "Conntrack labels (names from connlabel.conf)",
        "label-add" => "Add labels",
        "label-del" => "Delete labels (all without an argument)",
        "orig-zone" => "Zone of the original direction",
        "reply-zone" => "Zone of the reply direction",
        _ => "Protocol-specific option (after -p)",
    }
}

/// The clap command describing `conntrack`.
pub fn command() -> Command {
    let mut c = Command::new("conntrack")
        .version("1.4.7")
        .about("Command line interface for the connection tracking system (drop-in for conntrack-tools 1.4.7)")
        .after_help(
            "Times ([start=...], [stop=...], <when>) are local, as localtime() gives them: TZ when set (a zone \
             file or a POSIX string such as UTC0 or EST5EDT,M3.2.0,M11.1.0), else /etc/localtime. \
             -o json prints one JSON object per entry, expectation or event (schema in the project README).",
        )
        .disable_help_flag(true)
        .disable_version_flag(true);
    let mut seen: Vec<&str> = Vec::new();
    for o in LONG_OPTS {
        if seen.contains(&o.name) {
            continue;
        }
        seen.push(o.name);
        let mut a = Arg::new(o.name).long(o.name).help(help_for(o.name));
        if let Some(ch) = char::from_u32(o.val).filter(|c| c.is_ascii_alphabetic()) {
            // Only the first long name of a short option carries it (-s is --orig-src and --src).
            if !LONG_OPTS
                .iter()
                .take_while(|p| p.name != o.name)
                .any(|p| p.val == o.val)
            {
                a = a.short(ch);
            }
        }
        a = match o.has_arg {
            HasArg::No => a.action(ArgAction::SetTrue),
            HasArg::Required => a.num_args(1).value_name("VALUE"),
            HasArg::Optional => a.num_args(0..=1).value_name("ARG"),
        };
        c = c.arg(a);
    }
    for kind in [
        ProtoKind::Tcp,
        ProtoKind::Udp,
        ProtoKind::Sctp,
        ProtoKind::Dccp,
        ProtoKind::Icmp,
        ProtoKind::Icmpv6,
        ProtoKind::Gre,
    ] {
        for o in kind.opts() {
            if seen.contains(&o.name) {
                continue;
            }
            seen.push(o.name);
            c = c.arg(
                Arg::new(o.name)
                    .long(o.name)
                    .num_args(1)
                    .value_name("VALUE")
                    .help(format!("{} (after -p)", o.name.replace('-', " "))),
            );
        }
    }
    c.arg(
        Arg::new("load-file")
            .short('R')
            .long("load-file")
            .num_args(1)
            .value_name("FILE")
            .help(
                "Apply the commands of FILE (parsed whole first; - for stdin), as the first option",
            ),
    )
}

/// The man page (roff).
pub fn man_page() -> String {
    let mut buf = Vec::new();
    if clap_mangen::Man::new(command()).render(&mut buf).is_err() {
        return String::new();
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Completions for `shell` (bash, zsh, fish, elvish, powershell).
pub fn completions(shell: &str) -> Option<String> {
    use clap_complete::Shell;
    let sh: Shell = shell.parse().ok()?;
    let mut buf = Vec::new();
    clap_complete::generate(sh, &mut command(), "conntrack", &mut buf);
    Some(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_parser_option_is_documented() {
        let cmd = command();
        cmd.clone().debug_assert();
        for o in LONG_OPTS {
            assert!(
                cmd.get_arguments().any(|a| a.get_long() == Some(o.name)),
                "{} missing",
                o.name
            );
        }
        let man = man_page();
        assert!(
            man.contains("\\-\\-src\\-nat") || man.contains("src-nat"),
            "man page lacks --src-nat"
        );
        assert!(man.contains("USERSPACE") && man.contains("localtime"));
        let bash = completions("bash").unwrap();
        assert!(bash.contains("--buffer-size"));
    }
}
