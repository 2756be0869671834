//! `ctsyncd`: a conntrack state-sync daemon that replaces conntrackd 1.4.7 (sync mode): the same
//! `conntrackd.conf`, the same command line, the same client commands, interoperating on the wire.
//!
//! * [`config`]: the `conntrackd.conf` reader (every error and warning names `file:line`).
//! * [`args`]: conntrackd's command line, parsed its way (`-c [ct|expect]`, prefixes of table names, ...),
//!   plus `-o json`, `--generate-man` and `--generate-completions`.
//! * [`daemon`]: the daemon (`-d` or console mode): lock file, one poll loop over the kernel events, the
//!   sync channel, the control socket and signals, around `ctsync_proto::driver::Driver`.
//! * [`control`]: the control socket (mode 0600): one JSON request line and one JSON reply line per
//!   connection; a conntrackd client's binary request is understood too.
//! * [`output`]: conntrackd's texts (`-s` statistics, `-i`/`-e` entries) and their JSON forms.

pub mod args;
pub mod config;
pub mod control;
pub mod daemon;
pub mod log;
pub mod manual;
pub mod output;

use args::{Parsed, Request};
use std::io::Write;

/// The daemon's receive path without sockets, for the fuzz target `ctsyncd_receive` and its corpus
/// replay: the input is split into datagrams (each prefixed by its length byte) and fed to a session of
/// each mode; every entry that lands in an external cache is then printed (`-e`, text and JSON) and
/// turned into the kernel entry a commit would create. Nothing may panic. The last datagram is also
/// parsed as a control request.
pub fn receive_path_check(data: &[u8]) {
    use ctsync_proto::driver::{CommitOptions, commit::commit_entry};
    use ctsync_proto::{AlarmConfig, FtfwConfig, NotrackConfig, SessionConfig};
    let t0 = std::time::Instant::now();
    let mut buf = vec![0u8; 2048];
    for cfg in [
        SessionConfig::Ftfw(FtfwConfig::default()),
        SessionConfig::Alarm(AlarmConfig::default()),
        SessionConfig::Notrack(NotrackConfig::default()),
    ] {
        let mut s = cfg.build(t0);
        let mut rest = data;
        let mut last: &[u8] = &[];
        while let Some((&len, tail)) = rest.split_first() {
            let (d, tail) = tail.split_at(usize::from(len).min(tail.len()));
            rest = tail;
            last = d;
            s.handle_datagram(t0, d);
            s.handle_timeout(t0 + std::time::Duration::from_secs(2));
            while s.poll_transmit(t0, &mut buf).is_some() {}
            while s.poll_action().is_some() {}
        }
        for (_, o) in s.external().dump() {
            let e = o.entry();
            let _ = output::entry_line(&e, false, 1, None);
            let _ = output::entry_json(&e, 1, Some(1));
            let mut opts = CommitOptions::new();
            let _ = commit_entry(&e, t0, t0, &opts);
            opts.tcp_window_tracking = true;
            opts.commit_timeout = Some(180);
            let _ = commit_entry(&e, t0, t0, &opts);
        }
        for (_, o) in s.external_exp().dump() {
            let _ = o.entry().to_ctnl();
        }
        let _ = control::parse_request(last);
    }
}

/// Exit status on success.
pub const EXIT_OK: i32 = 0;
/// Exit status on failure (conntrackd's `EXIT_FAILURE`).
pub const EXIT_FAILURE: i32 = 1;

/// Runs `ctsyncd` with the process's arguments; returns the exit status.
pub fn run() -> i32 {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let parsed = match args::parse(&argv) {
        Ok(p) => p,
        Err(args::ArgError::Usage(msg)) => {
            args::print_usage();
            log::console_error(&msg);
            return EXIT_FAILURE;
        }
        Err(args::ArgError::UnknownOption(opt)) => {
            // conntrackd prints its usage and the error, and exits 0 here.
            args::print_usage();
            log::console_error(&format!("Unknown option: {opt}"));
            return EXIT_OK;
        }
        Err(args::ArgError::Fail(msg)) => {
            log::console_error(&msg);
            return EXIT_FAILURE;
        }
    };
    match parsed {
        Parsed::Help => {
            args::print_usage();
            EXIT_OK
        }
        Parsed::Version => {
            println!(
                "Connection tracking userspace daemon v1.4.7 (linux-ha-rs ctsyncd). Licensed under MIT OR Apache-2.0."
            );
            EXIT_OK
        }
        Parsed::Man => {
            let mut out = Vec::new();
            match clap_mangen::Man::new(manual::command()).render(&mut out) {
                Ok(()) => {
                    let _ = std::io::stdout().write_all(&out);
                    EXIT_OK
                }
                Err(e) => {
                    log::console_error(&format!("cannot render the man page: {e}"));
                    EXIT_FAILURE
                }
            }
        }
        Parsed::Completions(shell) => {
            let mut cmd = manual::command();
            clap_complete::generate(shell, &mut cmd, "ctsyncd", &mut std::io::stdout());
            EXIT_OK
        }
        Parsed::Run { config, daemon } => {
            let cfg = match config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    log::console_error(&format!("{e}"));
                    log::console_error("ctsyncd cannot start, please review your configuration");
                    return EXIT_FAILURE;
                }
            };
            daemon::run(cfg, daemon)
        }
        Parsed::Request {
            config,
            request,
            json,
        } => client(&config, request, json),
    }
}

/// A client command: send the request to the daemon named by the configuration, print its answer.
fn client(config: &std::path::Path, request: Request, json: bool) -> i32 {
    let cfg = match config::load(config) {
        Ok(c) => c,
        Err(e) => {
            log::console_error(&format!("{e}"));
            return EXIT_FAILURE;
        }
    };
    match control::request(&cfg.unix_path, request, json) {
        Ok(reply) => {
            let mut out = std::io::stdout().lock();
            if out.write_all(reply.output.as_bytes()).is_err() || out.flush().is_err() {
                // A closed pipe (`| head`): quietly done.
                return EXIT_OK;
            }
            if !reply.error.is_empty() {
                log::console_error(&reply.error);
            }
            // conntrackd's client exits 0 once the daemon answered; a refused request says why above.
            if reply.ok { EXIT_OK } else { EXIT_FAILURE }
        }
        Err(_) => {
            log::console_error("can't connect: is ctsyncd running? appropriate permissions?");
            EXIT_FAILURE
        }
    }
}
