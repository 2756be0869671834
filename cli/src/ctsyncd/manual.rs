//! The clap definition of ctsyncd's command line, for the man page (`ctsyncd --generate-man`) and shell
//! completions (`ctsyncd --generate-completions SHELL`). Parsing goes through [`super::args`], because
//! conntrackd's rules (one letter per argument, optional table names, prefixes) are not clap's.

use clap::{Arg, ArgAction, Command};

/// The command, documented option by option.
pub fn command() -> Command {
    let flag = |id: &'static str, short: char, help: &'static str| {
        Arg::new(id)
            .short(short)
            .action(ArgAction::SetTrue)
            .help(help)
    };
    let table = |id: &'static str, short: char, help: &'static str| {
        Arg::new(id)
            .short(short)
            .num_args(0..=1)
            .value_name("ct|expect")
            .value_parser(["ct", "expect"])
            .help(help)
    };
    Command::new("ctsyncd")
        .version("1.4.7")
        .about("Connection tracking state synchronisation daemon, a drop-in for conntrackd 1.4.7")
        .long_about(
            "ctsyncd replicates the kernel's connection tracking table to a peer firewall over a \
             dedicated link, with conntrackd's wire protocol (FT-FW, ALARM or NOTRACK), configuration \
             file (conntrackd.conf) and client commands, so that it works with conntrackd as a peer and \
             with keepalived's primary-backup.sh notify script. Started with -d (or without any \
             command, in the foreground) it is the daemon; with a client command it asks the running \
             daemon through the UNIX socket of the configuration (`UNIX { Path }`, mode 0600) and prints \
             the answer. Exit status: 0 when the daemon answered (or started), 1 when it could not be \
             reached, the configuration is wrong or the daemon could not start.",
        )
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(flag("daemon", 'd', "Run in daemon mode (in the background, once initialised)"))
        .arg(
            Arg::new("config")
                .short('C')
                .value_name("FILE")
                .help("Configuration file (default /etc/conntrackd/conntrackd.conf)"),
        )
        .arg(table("commit", 'c', "Commit the external cache to the kernel table"))
        .arg(
            Arg::new("flush-cache")
                .short('f')
                .num_args(0..=1)
                .value_name("internal|external")
                .value_parser(["internal", "external"])
                .help("Flush the internal and/or external cache"),
        )
        .arg(table("flush-kernel", 'F', "Flush the kernel conntrack table (what the Filter accepts)"))
        .arg(table("internal", 'i', "Display the internal cache"))
        .arg(table("external", 'e', "Display the external cache"))
        .arg(flag("kill", 'k', "Stop the daemon"))
        .arg(
            Arg::new("stats")
                .short('s')
                .num_args(0..=1)
                .value_name("KIND")
                .value_parser([
                    "network", "cache", "runtime", "link", "rsqueue", "queue", "ct", "expect",
                    "process", "multicast",
                ])
                .help("Dump statistics"),
        )
        .arg(table("resync", 'R', "Resync the internal cache with the kernel table"))
        .arg(flag("request-resync", 'n', "Request a resync from the other node (FT-FW and NOTRACK)"))
        .arg(flag("bulk", 'B', "Send a bulk update to the other node"))
        .arg(flag("xml", 'x', "Dump the cache in XML (with -i or -e)"))
        .arg(flag("reset-timers", 't', "Flush the kernel table after PurgeTimeout seconds"))
        .arg(
            Arg::new("output")
                .short('o')
                .value_name("json")
                .value_parser(["json"])
                .help("Print entries (-i, -e) and statistics (-s) as JSON, one object per line"),
        )
        .arg(flag("version", 'v', "Display the version"))
        .arg(flag("help", 'h', "Display the help"))
        .arg(
            Arg::new("generate-man")
                .long("generate-man")
                .action(ArgAction::SetTrue)
                .help("Print this man page (roff)"),
        )
        .arg(
            Arg::new("generate-completions")
                .long("generate-completions")
                .value_name("SHELL")
                .value_parser(["bash", "zsh", "fish", "elvish", "powershell"])
                .help("Print shell completions"),
        )
}
