//! `ipvsadm`: a drop-in for ipvsadm 1.31 over `ipvs-nl`.
//!
//! Layers: [`args`] parses a command line exactly like ipvsadm's popt code and its legality checks (same
//! texts, same exit codes); this module turns the result into `ipvs-nl` calls; [`format`](mod@format) prints with
//! ipvsadm's exact widths and sort order. Differences by design: one netlink socket for the whole run
//! (ipvsadm opens one per operation), `-R` pipelines its lines through [`ipvs_nl::Ipvs::apply`] (errors are
//! still printed in line order, and a line that ipvsadm would abort on still aborts after the lines before
//! it were applied; the only visible difference is timing: a run of consecutive changes is sent in
//! datagrams of up to 128 requests and its error messages appear once the whole run is acknowledged, not
//! line by line — the exit status, the texts, their order and the resulting table are ipvsadm's), and destination stats64 counters are printed in full: libipvs 1.31 reads a
//! destination's STATS64 nest with its 32-bit parser, so Debian's ipvsadm shows the low 32 bits of the
//! connection, packet and rate counters (bytes stay 64-bit). Byte-identical output is kept for every value
//! below 2^32; above it we print the kernel's value rather than reproduce the bug.

pub mod args;
pub mod format;
pub mod names;

use args::{Cmd, Entry, Exit, Parsed, fmt, optc};
use ipvs_nl::{Destination, Error, Ipvs, Op, Service};
use std::io::{Read, Write};

const VERSION_LINE: &str = "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)";
const CONN_PROC_FILE: &str = "/proc/net/ip_vs_conn";

/// Which libipvs function an error came from: its messages depend on it (`ipvs_strerror`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    AddService,
    UpdateService,
    DelService,
    ZeroService,
    AddDest,
    UpdateDest,
    DelDest,
    StartDaemon,
    StopDaemon,
    GetServices,
    Other,
}

fn errno_of(e: &Error) -> i32 {
    match e {
        Error::FamilyNotFound => libc::ENOPROTOOPT,
        e => e.errno().unwrap_or(libc::EINVAL),
    }
}

/// libipvs `ipvs_strerror`.
fn ipvs_strerror(func: Func, err: i32) -> String {
    use Func::*;
    let specific = match (func, err) {
        (AddService, libc::EEXIST) => Some("Service already exists"),
        (AddService | UpdateService, libc::ENOENT) => {
            Some("Scheduler or persistence engine not found")
        }
        (UpdateService | DelService | ZeroService | GetServices, libc::ESRCH) => {
            Some("No such service")
        }
        (AddDest | UpdateDest | DelDest, libc::ESRCH) => Some("Service not defined"),
        (AddDest, libc::EEXIST) => Some("Destination already exists"),
        (UpdateDest | DelDest, libc::ENOENT) => Some("No such destination"),
        (StartDaemon, libc::EEXIST) => Some("Daemon has already run"),
        (StopDaemon, libc::ESRCH) => Some("No daemon is running"),
        (_, libc::EPERM) => Some("Permission denied (you must be root)"),
        (_, libc::EINVAL) => {
            Some("Invalid operation.  Possibly wrong module version, address not unicast, ...")
        }
        (_, libc::ENOPROTOOPT) => Some("Protocol not available"),
        (_, libc::ENOMEM) => Some("Memory allocation problem"),
        (_, libc::EOPNOTSUPP) => Some("Operation not supported with IPv6"),
        (_, libc::EAFNOSUPPORT) => Some("Operation not supported with specified address family"),
        (_, libc::EMSGSIZE) => Some("Module is wrong version"),
        _ => None,
    };
    match specific {
        Some(s) => s.to_string(),
        None => strerror(err),
    }
}

fn strerror(err: i32) -> String {
    let s = std::io::Error::from_raw_os_error(err).to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Everything a run writes, and how it ends.
struct Ctx<'a> {
    ipvs: Ipvs,
    info: ipvs_nl::Info,
    out: &'a mut dyn Write,
    program: Vec<u8>,
}

/// A write to stdout failed (e.g. a closed pipe): stop quietly.
struct Broken;

/// How processing stops early: ipvsadm's `exit()` calls, or a closed stdout.
enum Stop {
    Exit(Exit),
    Broken,
}

impl From<Exit> for Stop {
    fn from(e: Exit) -> Self {
        Stop::Exit(e)
    }
}

impl From<Broken> for Stop {
    fn from(_: Broken) -> Self {
        Stop::Broken
    }
}

/// Set when a write to stdout met a pipe without readers: ipvsadm would have died of SIGPIPE there.
static PIPE_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn note_write_error(e: &std::io::Error) {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        PIPE_CLOSED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn put(out: &mut dyn Write, s: impl AsRef<[u8]>) -> Result<(), Broken> {
    out.write_all(s.as_ref()).map_err(|e| {
        note_write_error(&e);
        Broken
    })
}

fn exit(code: i32, msg: impl AsRef<[u8]>) -> Stop {
    Stop::Exit(Exit {
        code,
        msg: msg.as_ref().to_vec(),
    })
}

/// The kernel change of a command, with the libipvs function its errors are named after.
fn op_of(e: &Entry) -> Option<(Op, Func)> {
    let key = e.service.key;
    Some(match e.cmd {
        Cmd::Add => (Op::AddService(e.service.clone()), Func::AddService),
        Cmd::Edit => (Op::EditService(e.service.clone()), Func::UpdateService),
        Cmd::Del => (Op::DelService(key), Func::DelService),
        Cmd::Flush => (Op::Flush, Func::Other),
        Cmd::Zero => (
            Op::Zero(e.has(optc::SERVICE).then_some(key)),
            Func::ZeroService,
        ),
        Cmd::AddDest => (Op::AddDest(key, e.dest.clone()), Func::AddDest),
        Cmd::EditDest => (Op::EditDest(key, e.dest.clone()), Func::UpdateDest),
        Cmd::DelDest => (Op::DelDest(key, e.dest.addr, e.dest.port), Func::DelDest),
        Cmd::Timeout => (Op::SetTimeouts(e.timeouts.clone()), Func::Other),
        Cmd::StartDaemon => (Op::StartDaemon(e.daemon.clone()), Func::StartDaemon),
        Cmd::StopDaemon => (Op::StopDaemon(e.daemon.state), Func::StopDaemon),
        Cmd::List | Cmd::Restore | Cmd::Save => return None,
    })
}

/// The usage text with `program` (bytes as given in `argv[0]`) in its places.
fn usage(program: &[u8]) -> Vec<u8> {
    const P: &str = "\u{0}PROGRAM\u{0}";
    let text = usage_text(P);
    let mut out = Vec::with_capacity(text.len() + 16 * program.len());
    for (i, part) in text.split(P).enumerate() {
        if i > 0 {
            out.extend_from_slice(program);
        }
        out.extend_from_slice(part.as_bytes());
    }
    out
}

fn usage_text(program: &str) -> String {
    let p = program;
    format!(
        "{VERSION_LINE}\n\
Usage:\n\
\x20 {p} -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]\n\
\x20 {p} -D virtual-service\n\
\x20 {p} -C\n\
\x20 {p} -R\n\
\x20 {p} -S [-n]\n\
\x20 {p} -a|e virtual-service -r server-address [options]\n\
\x20 {p} -d virtual-service -r server-address\n\
\x20 {p} -L|l [virtual-service] [options]\n\
\x20 {p} -Z [virtual-service]\n\
\x20 {p} --set tcp tcpfin udp\n\
\x20 {p} --start-daemon {{master|backup}} [daemon-options]\n\
\x20 {p} --stop-daemon {{master|backup}}\n\
\x20 {p} -h\n\n\
Commands:\n\
Either long or short options are allowed.\n\
\x20 --add-service     -A        add virtual service with options\n\
\x20 --edit-service    -E        edit virtual service with options\n\
\x20 --delete-service  -D        delete virtual service\n\
\x20 --clear           -C        clear the whole table\n\
\x20 --restore         -R        restore rules from stdin\n\
\x20 --save            -S        save rules to stdout\n\
\x20 --add-server      -a        add real server with options\n\
\x20 --edit-server     -e        edit real server with options\n\
\x20 --delete-server   -d        delete real server\n\
\x20 --list            -L|-l     list the table\n\
\x20 --zero            -Z        zero counters in a service or all services\n\
\x20 --set tcp tcpfin udp        set connection timeout values\n\
\x20 --start-daemon              start connection sync daemon\n\
\x20 --stop-daemon               stop connection sync daemon\n\
\x20 --help            -h        display this help message\n\n\
virtual-service:\n\
\x20 --tcp-service|-t  service-address   service-address is host[:port]\n\
\x20 --udp-service|-u  service-address   service-address is host[:port]\n\
\x20 --sctp-service    service-address   service-address is host[:port]\n\
\x20 --fwmark-service|-f fwmark          fwmark is an integer greater than zero\n\
\n\
Options:\n\
\x20 --ipv6         -6                   fwmark entry uses IPv6\n\
\x20 --scheduler    -s scheduler         one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh,\n\
\x20                                     the default scheduler is wlc.\n\
\x20 --pe            engine              alternate persistence engine may be sip,\n\
\x20                                     not set by default.\n\
\x20 --persistent   -p [timeout]         persistent service\n\
\x20 --netmask      -M netmask           persistent granularity mask\n\
\x20 --real-server  -r server-address    server-address is host (and port)\n\
\x20 --gatewaying   -g                   gatewaying (direct routing) (default)\n\
\x20 --ipip         -i                   ipip encapsulation (tunneling)\n\
\x20 --masquerading -m                   masquerading (NAT)\n\
\x20 --tun-type      type                one of ipip|gue|gre,\n\
\x20                                     the default tunnel type is ipip.\n\
\x20 --tun-port      port                tunnel destination port\n\
\x20 --tun-nocsum                        tunnel encapsulation without checksum\n\
\x20 --tun-csum                          tunnel encapsulation with checksum\n\
\x20 --tun-remcsum                       tunnel encapsulation with remote checksum\n\
\x20 --weight       -w weight            capacity of real server\n\
\x20 --u-threshold  -x uthreshold        upper threshold of connections\n\
\x20 --l-threshold  -y lthreshold        lower threshold of connections\n\
\x20 --connection   -c                   output of current IPVS connections\n\
\x20 --timeout                           output of timeout (tcp tcpfin udp)\n\
\x20 --daemon                            output of daemon information\n\
\x20 --stats                             output of statistics information\n\
\x20 --rate                              output of rate information\n\
\x20 --exact                             expand numbers (display exact values)\n\
\x20 --thresholds                        output of thresholds information\n\
\x20 --persistent-conn                   output of persistent connection info\n\
\x20 --tun-info                          output of tunnel information\n\
\x20 --nosort                            disable sorting output of service/server entries\n\
\x20 --sort                              does nothing, for backwards compatibility\n\
\x20 --ops          -o                   one-packet scheduling\n\
\x20 --numeric      -n                   numeric output of addresses and ports\n\
\x20 --sched-flags  -b flags             scheduler flags (comma-separated)\n\
Daemon Options:\n\
\x20 --syncid sid                        syncid for connection sync (default=255)\n\
\x20 --sync-maxlen length                Max sync message length (default=1472)\n\
\x20 --mcast-interface interface         multicast interface for connection sync\n\
\x20 --mcast-group address               IPv4/IPv6 group (default=224.0.0.81)\n\
\x20 --mcast-port port                   UDP port (default=8848)\n\
\x20 --mcast-ttl ttl                     Multicast TTL (default=1)\n"
    )
}

impl Ctx<'_> {
    fn list_all(&mut self, format: u32) -> Result<(), Stop> {
        if format & fmt::RULE == 0 {
            let v = self.info.version;
            put(
                self.out,
                format!(
                    "IP Virtual Server version {}.{}.{} (size={})\n",
                    (v >> 16) & 0xff,
                    (v >> 8) & 0xff,
                    v & 0xff,
                    self.info.conn_tab_size as i32
                ),
            )?;
        }
        // Only --stats and --rate print counters; skip decoding them otherwise.
        self.ipvs
            .set_decode_stats(format & (fmt::STATS | fmt::RATE) != 0);
        let services: Result<Vec<Service>, Error> = match self.ipvs.services() {
            Ok(it) => it.collect(),
            Err(e) => Err(e),
        };
        let mut services = services.map_err(|e| {
            exit(
                args::EXIT_LIST,
                ipvs_strerror(Func::GetServices, errno_of(&e)),
            )
        })?;
        if format & fmt::NOSORT == 0 {
            format::glibc_msort(&mut services, &format::cmp_services);
        }
        let mut text = String::new();
        format::title(&mut text, format);
        put(self.out, &text)?;
        for s in &services {
            self.print_service(s, format)?;
        }
        Ok(())
    }

    fn print_service(&mut self, s: &Service, format: u32) -> Result<(), Stop> {
        let dests: Result<Vec<Destination>, Error> = match self.ipvs.destinations(&s.key) {
            Ok(it) => it.collect(),
            Err(e) => Err(e),
        };
        let dests = dests.map_err(|e| {
            exit(
                args::EXIT_LIST,
                ipvs_strerror(Func::GetServices, errno_of(&e)),
            )
        })?;
        let mut text = String::new();
        format::service_entry(&mut text, s, &dests, format);
        put(self.out, &text)?;
        Ok(())
    }

    fn list_conn(&mut self, format: u32) -> Result<(), Stop> {
        let text = std::fs::read_to_string(CONN_PROC_FILE).map_err(|_| {
            exit(
                args::EXIT_LIST,
                format!("cannot open file {CONN_PROC_FILE}"),
            )
        })?;
        let mut lines = text.lines();
        if lines.next().is_none() {
            return Err(exit(
                args::EXIT_LIST,
                format!("unexpected input from {CONN_PROC_FILE}"),
            ));
        }
        let mut out = format::conn_header(format);
        for l in lines {
            if let Some(s) = format::conn_line(l, format) {
                out.push_str(&s);
            }
        }
        put(self.out, &out)?;
        Ok(())
    }

    fn list(&mut self, e: &Entry) -> Result<i32, Stop> {
        if e.has(optc::CONNECTION) {
            self.list_conn(e.format)?;
        } else if e.has(optc::SERVICE) {
            let s = self.ipvs.service(&e.service.key).map_err(|err| {
                exit(
                    args::EXIT_LIST,
                    ipvs_strerror(Func::GetServices, errno_of(&err)),
                )
            })?;
            let mut text = String::new();
            format::title(&mut text, e.format);
            put(self.out, &text)?;
            self.print_service(&s, e.format)?;
        } else if e.has(optc::TIMEOUT) {
            let t = self
                .ipvs
                .timeouts()
                .map_err(|_| exit(args::EXIT_LIST, ""))?;
            put(self.out, format::timeouts(&t))?;
        } else if e.has(optc::DAEMON) {
            let d = self.ipvs.daemons().map_err(|_| exit(args::EXIT_LIST, ""))?;
            put(self.out, format::daemons(&d))?;
        } else {
            self.list_all(e.format)?;
        }
        Ok(0)
    }

    /// ipvsadm's `process_options` for one command line; returns its result (0 or 255).
    fn process(&mut self, argv: &[Vec<u8>], reading_stdin: bool) -> Result<i32, Stop> {
        let e = match args::parse(argv)? {
            Parsed::Help => {
                put(self.out, usage(&self.program))?;
                return Err(exit(0, ""));
            }
            Parsed::Version => {
                put(self.out, format!("{VERSION_LINE}\n"))?;
                return Err(exit(0, ""));
            }
            Parsed::Run(e) => e,
        };
        match e.cmd {
            Cmd::List => self.list(&e),
            Cmd::Save => {
                self.list_all(e.format | fmt::RULE)?;
                Ok(0)
            }
            Cmd::Restore => {
                if reading_stdin {
                    return Err(Stop::Exit(args::tryhelp(&self.program)));
                }
                self.restore()
            }
            _ => {
                let Some((op, func)) = op_of(&e) else {
                    return Ok(0);
                };
                match self.ipvs.exec(&op) {
                    Ok(()) => Ok(0),
                    Err(err) => {
                        eprintln!("{}", ipvs_strerror(func, errno_of(&err)));
                        Ok(args::EXIT_ERROR)
                    }
                }
            }
        }
    }

    /// `-R`: every stdin line is a command line. Consecutive kernel changes are pipelined; their errors are
    /// printed in line order; the result is the last line's.
    fn restore(&mut self) -> Result<i32, Stop> {
        // Bytes, not read_to_string: one non-UTF-8 byte would make that return nothing at all (and the
        // restore silently apply no line), where ipvsadm goes on line by line.
        let mut bytes = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut bytes);
        let mut input: &[u8] = &bytes;
        // ipvsadm's config_stream_read quirk: a last line without its newline that ends in two or more
        // blanks hits EOF while skipping them and is dropped whole (one blank is consumed with the token).
        if !input.ends_with(b"\n") {
            let start = input.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let last = &input[start..];
            let blanks = last
                .iter()
                .rev()
                .take_while(|b| matches!(b, b' ' | b'\t' | b'\r'))
                .count();
            if blanks >= 2 {
                input = &input[..start];
            }
        }
        let mut pending: Vec<(Op, Func)> = Vec::new();
        let mut result = 0;
        for line in input.split(|&b| b == b'\n') {
            let tokens: Vec<&[u8]> = line
                .split(|b| matches!(b, b' ' | b'\t' | b'\r'))
                .filter(|t| !t.is_empty() && *t != b"ipvsadm")
                .collect();
            if tokens.is_empty() {
                continue;
            }
            let argv: Vec<Vec<u8>> = std::iter::once(self.program.clone())
                .chain(tokens.iter().map(|t| t.to_vec()))
                .collect();
            let parsed = args::parse(&argv);
            if let Ok(Parsed::Run(e)) = &parsed
                && let Some(op) = op_of(e)
            {
                pending.push(op);
                continue;
            }
            if !pending.is_empty() {
                self.flush_batch(&mut pending)?;
            }
            result = self.process(&argv, true)?;
        }
        if !pending.is_empty() {
            result = self.flush_batch(&mut pending)?;
        }
        Ok(result)
    }

    fn flush_batch(&mut self, pending: &mut Vec<(Op, Func)>) -> Result<i32, Stop> {
        let ops: Vec<Op> = pending.iter().map(|(o, _)| o.clone()).collect();
        let results = self
            .ipvs
            .apply(&ops)
            .map_err(|e| exit(args::EXIT_ERROR, e.to_string()))?;
        let mut last = 0;
        let mut errors = String::new();
        for (r, (_, func)) in results.iter().zip(pending.iter()) {
            last = match r {
                Ok(()) => 0,
                Err(err) => {
                    errors.push_str(&ipvs_strerror(*func, errno_of(err)));
                    errors.push('\n');
                    args::EXIT_ERROR
                }
            };
        }
        if !errors.is_empty() {
            let _ = std::io::stderr().write_all(errors.as_bytes());
        }
        pending.clear();
        Ok(last)
    }
}

fn open() -> Result<Ipvs, Error> {
    match Ipvs::open() {
        Ok(i) => Ok(i),
        Err(_) => {
            // Like ipvsadm: try to load the module, then retry once.
            let loaded = std::process::Command::new("/sbin/modprobe")
                .args(["--", "ip_vs"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if loaded {
                Ipvs::open()
            } else {
                Err(Error::FamilyNotFound)
            }
        }
    }
}

/// Runs ipvsadm with `argv` (including `argv[0]`; bytes, as the OS gives them), writing listings to
/// `out`; returns the exit status.
pub fn main_with(argv: &[Vec<u8>], out: &mut dyn Write) -> i32 {
    let program = argv.first().cloned().unwrap_or_else(|| b"ipvsadm".to_vec());
    let mut ipvs = match open() {
        Ok(i) => i,
        Err(e) => {
            eprintln!(
                "Can't initialize ipvs: {}\nAre you sure that IP Virtual Server is built in the kernel or as module?",
                ipvs_strerror(Func::Other, errno_of(&e))
            );
            return args::EXIT_PARAM;
        }
    };
    let info = ipvs.info().unwrap_or_default();
    let mut ctx = Ctx {
        ipvs,
        info,
        out,
        program,
    };
    let r = if argv.len() <= 1 {
        ctx.list_all(0).map(|()| 0)
    } else {
        ctx.process(argv, false)
    };
    let code = match r {
        Ok(code) => code,
        Err(Stop::Broken) => 0,
        Err(Stop::Exit(Exit { code, mut msg })) => {
            if !msg.is_empty() {
                msg.push(b'\n');
                let _ = std::io::stderr().write_all(&msg);
            }
            code
        }
    };
    if let Err(e) = ctx.out.flush() {
        note_write_error(&e);
    }
    code
}

/// The `ipvsadm` binary's entry point.
pub fn run() -> ! {
    use std::os::unix::ffi::OsStringExt;
    // args_os: an argument that is not UTF-8 is an argument like any other (std::env::args would panic).
    let argv: Vec<Vec<u8>> = std::env::args_os().map(OsStringExt::into_vec).collect();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let code = main_with(&argv, &mut out);
    if let Err(e) = out.flush() {
        note_write_error(&e);
    }
    drop(out);
    if PIPE_CLOSED.load(std::sync::atomic::Ordering::Relaxed) {
        // Rust ignores SIGPIPE, ipvsadm (C) is killed by it: end the same way, so `set -o pipefail`
        // scripts and callers that look at the wait status see what they saw with ipvsadm.
        let _ = signal_hook::low_level::emulate_default_handler(signal_hook::consts::SIGPIPE);
    }
    std::process::exit(code)
}
