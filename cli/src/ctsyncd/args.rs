//! conntrackd's command line (`main.c` of conntrack-tools 1.4.7), read its way: only the letter after
//! the first character of each argument counts (`-c`, `-cx` and `+c` are all `-c`), a table name
//! (`ct`, `expect`) or cache name (`internal`, `external`) may follow and may be shortened to a prefix,
//! and mixing a daemon option with a client command is an error. ctsyncd adds `-o json` (entries and
//! statistics as JSON), `--generate-man` and `--generate-completions SHELL`.

use super::config::DEFAULT_CONFIG;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::path::PathBuf;

/// Which table a command acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Table {
    /// Conntrack entries.
    Ct,
    /// Expectations.
    Expect,
    /// Both (`-c`, `-F`, `-R` without a table).
    All,
}

/// Which statistics `-s` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatsKind {
    /// `-s` / `-s ct`.
    General,
    /// `-s expect`.
    Expect,
    /// `-s network`.
    Network,
    /// `-s cache`.
    Cache,
    /// `-s runtime`.
    Runtime,
    /// `-s link` (and the old `-s multicast`).
    Link,
    /// `-s rsqueue`.
    Rsqueue,
    /// `-s process`.
    Process,
    /// `-s queue`.
    Queue,
}

/// Which cache `-f` flushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheSel {
    /// Both (`-f`).
    All,
    /// `-f internal`.
    Internal,
    /// `-f external`.
    External,
}

/// A client command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// `-c [ct|expect]`: commit the external cache into the kernel.
    Commit {
        /// Which table.
        table: Table,
    },
    /// `-f [internal|external]`: flush caches.
    FlushCache {
        /// Which cache.
        cache: CacheSel,
    },
    /// `-F [ct|expect]`: flush the kernel table.
    FlushKernel {
        /// Which table.
        table: Table,
    },
    /// `-i [ct|expect]`: show the internal cache.
    DumpInternal {
        /// `Ct` or `Expect`.
        table: Table,
        /// `-x`.
        xml: bool,
    },
    /// `-e [ct|expect]`: show the external cache.
    DumpExternal {
        /// `Ct` or `Expect`.
        table: Table,
        /// `-x`.
        xml: bool,
    },
    /// `-k`: stop the daemon.
    Kill,
    /// `-s [...]`: statistics.
    Stats {
        /// Which.
        kind: StatsKind,
    },
    /// `-R [ct|expect]`: resync the internal cache with the kernel table.
    ResyncKernel {
        /// Which table.
        table: Table,
    },
    /// `-n`: ask the peer for a resync.
    RequestResync,
    /// `-B`: send a bulk update to the peer.
    SendBulk,
    /// `-t`: flush the kernel table after `PurgeTimeout`.
    ResetTimers,
}

impl Request {
    /// conntrackd's request number for this command (`include/conntrackd.h`), as its client sends it.
    pub fn conntrackd_code(self) -> i32 {
        use Request::*;
        match self {
            FlushKernel { table: Table::Ct } => 0,
            ResyncKernel { table: Table::Ct } => 1,
            DumpInternal {
                table: Table::Expect,
                xml: false,
            } => 40,
            DumpInternal {
                table: Table::Expect,
                xml: true,
            } => 47,
            DumpInternal { xml: false, .. } => 16,
            DumpInternal { xml: true, .. } => 24,
            DumpExternal {
                table: Table::Expect,
                xml: false,
            } => 41,
            DumpExternal {
                table: Table::Expect,
                xml: true,
            } => 48,
            DumpExternal { xml: false, .. } => 17,
            DumpExternal { xml: true, .. } => 25,
            Commit { table: Table::Ct } => 18,
            Commit {
                table: Table::Expect,
            } => 42,
            Commit { table: Table::All } => 46,
            FlushCache {
                cache: CacheSel::All,
            } => 45,
            FlushCache {
                cache: CacheSel::Internal,
            } => 33,
            FlushCache {
                cache: CacheSel::External,
            } => 34,
            Kill => 20,
            Stats { kind } => match kind {
                StatsKind::General => 21,
                StatsKind::Network => 28,
                StatsKind::Cache => 29,
                StatsKind::Runtime => 30,
                StatsKind::Link => 31,
                StatsKind::Rsqueue => 32,
                StatsKind::Process => 35,
                StatsKind::Queue => 36,
                StatsKind::Expect => 37,
            },
            SendBulk => 22,
            RequestResync => 23,
            ResetTimers => 26,
            FlushKernel {
                table: Table::Expect,
            } => 38,
            ResyncKernel {
                table: Table::Expect,
            } => 39,
            FlushKernel { table: Table::All } => 43,
            ResyncKernel { table: Table::All } => 44,
        }
    }

    /// The command for a conntrackd request number (`None`: unknown, or `CT_FLUSH_CACHE`'s twin 19,
    /// which conntrackd's client never sends but its daemon treats like 45 without expectations).
    pub fn from_conntrackd_code(code: i32) -> Option<Request> {
        use Request::*;
        Some(match code {
            19 => FlushCache {
                cache: CacheSel::All,
            },
            20 => Kill,
            21 => Stats {
                kind: StatsKind::General,
            },
            22 => SendBulk,
            23 => RequestResync,
            26 => ResetTimers,
            _ => {
                return ALL_CODES
                    .iter()
                    .copied()
                    .find(|r| r.conntrackd_code() == code);
            }
        })
    }
}

/// Every command with a distinct request number.
const ALL_CODES: &[Request] = &[
    Request::FlushKernel { table: Table::Ct },
    Request::FlushKernel {
        table: Table::Expect,
    },
    Request::FlushKernel { table: Table::All },
    Request::ResyncKernel { table: Table::Ct },
    Request::ResyncKernel {
        table: Table::Expect,
    },
    Request::ResyncKernel { table: Table::All },
    Request::DumpInternal {
        table: Table::Ct,
        xml: false,
    },
    Request::DumpInternal {
        table: Table::Ct,
        xml: true,
    },
    Request::DumpInternal {
        table: Table::Expect,
        xml: false,
    },
    Request::DumpInternal {
        table: Table::Expect,
        xml: true,
    },
    Request::DumpExternal {
        table: Table::Ct,
        xml: false,
    },
    Request::DumpExternal {
        table: Table::Ct,
        xml: true,
    },
    Request::DumpExternal {
        table: Table::Expect,
        xml: false,
    },
    Request::DumpExternal {
        table: Table::Expect,
        xml: true,
    },
    Request::Commit { table: Table::Ct },
    Request::Commit {
        table: Table::Expect,
    },
    Request::Commit { table: Table::All },
    Request::FlushCache {
        cache: CacheSel::All,
    },
    Request::FlushCache {
        cache: CacheSel::Internal,
    },
    Request::FlushCache {
        cache: CacheSel::External,
    },
    Request::Stats {
        kind: StatsKind::Network,
    },
    Request::Stats {
        kind: StatsKind::Cache,
    },
    Request::Stats {
        kind: StatsKind::Runtime,
    },
    Request::Stats {
        kind: StatsKind::Link,
    },
    Request::Stats {
        kind: StatsKind::Rsqueue,
    },
    Request::Stats {
        kind: StatsKind::Process,
    },
    Request::Stats {
        kind: StatsKind::Queue,
    },
    Request::Stats {
        kind: StatsKind::Expect,
    },
];

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// `-h`.
    Help,
    /// `-v`.
    Version,
    /// `--generate-man`.
    Man,
    /// `--generate-completions SHELL`.
    Completions(clap_complete::Shell),
    /// Run the daemon (`-d`: in the background).
    Run {
        /// `-C`.
        config: PathBuf,
        /// `-d`.
        daemon: bool,
    },
    /// A client command.
    Request {
        /// `-C`.
        config: PathBuf,
        /// The command.
        request: Request,
        /// `-o json`.
        json: bool,
    },
}

/// Why the command line was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgError {
    /// conntrackd's "Invalid parameters" and other usage errors (usage printed, exit 1).
    Usage(String),
    /// An unknown option (conntrackd prints its usage and exits 0).
    UnknownOption(String),
    /// A bad value (exit 1, no usage).
    Fail(String),
}

/// conntrackd's prefix test: `strncmp(arg, name, strlen(arg)) == 0` (so the empty string matches too).
fn prefix_of(arg: &str, name: &str) -> bool {
    name.starts_with(arg)
}

fn table_arg(argv: &[String], i: &mut usize, dfl: Table) -> Table {
    if let Some(next) = argv.get(*i + 1)
        && !next.starts_with('-')
    {
        if prefix_of(next, "ct") {
            *i += 1;
            return Table::Ct;
        }
        if prefix_of(next, "expect") {
            *i += 1;
            return Table::Expect;
        }
    }
    dfl
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    NotSet,
    Daemon,
    Request,
}

/// The ctsyncd third of the `command_lines` fuzz target, public so that its corpus replays as an
/// ordinary test: parses `args` as the words after `ctsyncd`. Nothing may panic; a usage error or a
/// bad value carries a message, and an unknown option is one of the arguments given (an empty one
/// too: conntrackd reports it as `Unknown option: `).
#[doc(hidden)]
pub fn fuzz_parse(args: &[OsString]) {
    let argv: Vec<OsString> = std::iter::once(OsString::from("ctsyncd"))
        .chain(args.iter().cloned())
        .collect();
    match parse(&argv) {
        Err(ArgError::Usage(m) | ArgError::Fail(m)) => {
            assert!(!m.is_empty(), "a refusal without a message");
        }
        Err(ArgError::UnknownOption(a)) => {
            assert!(
                args.iter().any(|x| *x == *a),
                "unknown option `{a}` not given"
            );
        }
        Ok(_) => {}
    }
}

/// Parses the command line (`argv[0]` included).
pub fn parse(argv: &[OsString]) -> Result<Parsed, ArgError> {
    // Arguments are compared as text; a non-UTF-8 one is refused with a message, never a panic.
    let mut args = Vec::with_capacity(argv.len());
    for a in argv.iter().skip(1) {
        match a.to_str() {
            Some(s) => args.push(s.to_string()),
            None => {
                return Err(ArgError::Fail(format!(
                    "argument `{}` is not valid UTF-8",
                    a.to_string_lossy()
                )));
            }
        }
    }
    let mut kind = Kind::NotSet;
    let mut config = PathBuf::from(DEFAULT_CONFIG);
    let mut request: Option<Request> = None;
    let mut json = false;
    let set = |kind: &mut Kind, want: Kind| -> Result<(), ArgError> {
        if *kind == Kind::NotSet || *kind == want {
            *kind = want;
            Ok(())
        } else {
            Err(ArgError::Usage("Invalid parameters".into()))
        }
    };
    let mut i = 0;
    while i < args.len() {
        let a = args[i].clone();
        if a == "--generate-man" {
            return Ok(Parsed::Man);
        }
        if a == "--generate-completions" {
            let shell = args
                .get(i + 1)
                .and_then(|s| s.parse::<clap_complete::Shell>().ok())
                .ok_or_else(|| {
                    ArgError::Fail(
                        "--generate-completions wants bash, zsh, fish, elvish or powershell".into(),
                    )
                })?;
            return Ok(Parsed::Completions(shell));
        }
        let letter = a.chars().nth(1).unwrap_or('\0');
        match letter {
            'd' => set(&mut kind, Kind::Daemon)?,
            'c' => {
                set(&mut kind, Kind::Request)?;
                let table = table_arg(&args, &mut i, Table::All);
                request = Some(Request::Commit { table });
            }
            'i' | 'e' => {
                set(&mut kind, Kind::Request)?;
                let table = table_arg(&args, &mut i, Table::Ct);
                request = Some(if letter == 'i' {
                    Request::DumpInternal { table, xml: false }
                } else {
                    Request::DumpExternal { table, xml: false }
                });
            }
            'C' => {
                i += 1;
                match args.get(i) {
                    Some(p) => config = PathBuf::from(p),
                    None => return Err(ArgError::Usage("Missing config filename".into())),
                }
            }
            'F' => {
                set(&mut kind, Kind::Request)?;
                let table = table_arg(&args, &mut i, Table::All);
                request = Some(Request::FlushKernel { table });
            }
            'f' => {
                set(&mut kind, Kind::Request)?;
                let mut cache = CacheSel::All;
                if let Some(next) = args.get(i + 1)
                    && !next.starts_with('-')
                {
                    if prefix_of(next, "internal") {
                        cache = CacheSel::Internal;
                    } else if prefix_of(next, "external") {
                        cache = CacheSel::External;
                    } else {
                        return Err(ArgError::Fail(format!(
                            "unknown parameter `{next}' for option `-f'"
                        )));
                    }
                    i += 1;
                }
                request = Some(Request::FlushCache { cache });
            }
            'R' => {
                set(&mut kind, Kind::Request)?;
                let table = table_arg(&args, &mut i, Table::All);
                request = Some(Request::ResyncKernel { table });
            }
            'B' => {
                set(&mut kind, Kind::Request)?;
                request = Some(Request::SendBulk);
            }
            't' => {
                set(&mut kind, Kind::Request)?;
                request = Some(Request::ResetTimers);
            }
            'k' => {
                set(&mut kind, Kind::Request)?;
                request = Some(Request::Kill);
            }
            'n' => {
                set(&mut kind, Kind::Request)?;
                request = Some(Request::RequestResync);
            }
            's' => {
                set(&mut kind, Kind::Request)?;
                let mut k = StatsKind::General;
                if let Some(next) = args.get(i + 1)
                    && !next.starts_with('-')
                {
                    k = [
                        ("network", StatsKind::Network),
                        ("cache", StatsKind::Cache),
                        ("runtime", StatsKind::Runtime),
                        ("multicast", StatsKind::Link),
                        ("link", StatsKind::Link),
                        ("rsqueue", StatsKind::Rsqueue),
                        ("process", StatsKind::Process),
                        ("queue", StatsKind::Queue),
                        ("ct", StatsKind::General),
                        ("expect", StatsKind::Expect),
                    ]
                    .iter()
                    .find(|(name, _)| prefix_of(next, name))
                    .map(|(_, k)| *k)
                    .ok_or_else(|| {
                        ArgError::Fail(format!("unknown parameter `{next}' for option `-s'"))
                    })?;
                    i += 1;
                }
                request = Some(Request::Stats { kind: k });
            }
            'x' => {
                request = match request {
                    Some(Request::DumpInternal { table, .. }) => {
                        Some(Request::DumpInternal { table, xml: true })
                    }
                    Some(Request::DumpExternal { table, .. }) => {
                        Some(Request::DumpExternal { table, xml: true })
                    }
                    _ => return Err(ArgError::Usage("Invalid parameters".into())),
                };
            }
            'o' => {
                i += 1;
                match args.get(i).map(String::as_str) {
                    Some("json") => json = true,
                    Some(other) => {
                        return Err(ArgError::Fail(format!(
                            "unknown output format `{other}' for option `-o' (json)"
                        )));
                    }
                    None => return Err(ArgError::Fail("option `-o' needs json".into())),
                }
            }
            'v' => return Ok(Parsed::Version),
            'h' => return Ok(Parsed::Help),
            _ => return Err(ArgError::UnknownOption(a)),
        }
        i += 1;
    }
    match (kind, request) {
        (Kind::Request, Some(request)) => Ok(Parsed::Request {
            config,
            request,
            json,
        }),
        (Kind::Daemon, _) => Ok(Parsed::Run {
            config,
            daemon: true,
        }),
        _ => Ok(Parsed::Run {
            config,
            daemon: false,
        }),
    }
}

/// conntrackd's usage text, naming ctsyncd.
pub fn print_usage() {
    print!(
        "Connection tracking userspace daemon v1.4.7 (linux-ha-rs ctsyncd)\n\
Usage: ctsyncd [commands] [options]\n\n\
General commands:\n  -d, run in daemon mode\n  -C [configfile], configuration file path\n  -v, display conntrackd version\n  -h, display this help information\n\n\
Client mode commands:\n  -c [ct|expect], commit external cache to conntrack table\n  -f [internal|external], flush internal and external cache\n  -F [ct|expect], flush kernel conntrack table\n  -i [ct|expect], display content of the internal cache\n  -e [ct|expect], display the content of the external cache\n  -k, kill conntrack daemon\n  -s  [network|cache|runtime|link|rsqueue|queue|ct|expect], dump statistics\n  -R [ct|expect], resync with kernel conntrack table\n  -n, request resync with other node (only FT-FW and NOTRACK modes)\n  -B, force a bulk send to other replica firewalls\n  -x, dump cache in XML format (requires -i or -e)\n  -t, reset the kernel timeout (see PurgeTimeout clause)\n  -o json, print entries and statistics as JSON (ctsyncd)\n\n"
    );
}
