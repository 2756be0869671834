//! The daemon: start-up (lock file, driver, control socket, signals), one poll loop, and a clean exit
//! that removes exactly what it created (the control socket and the lock file).

use super::args::{CacheSel, Request, StatsKind, Table};
use super::config::Config;
use super::control::{self, Incoming, Reply};
use super::log::Logger;
use super::output::{self, Runtime};
use super::{EXIT_FAILURE, EXIT_OK};
use ctsync_proto::driver::Driver;
use ctsync_proto::session::Action;
use rustix::event::{PollFd, PollFlags};
use std::io::{BufRead, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Set in the environment of the background process `-d` starts.
const CHILD_ENV: &str = "CTSYNCD_BACKGROUND_CHILD";
/// What the background process prints on stdout once it is ready.
const READY: &str = "ctsyncd-ready";

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Runs the daemon; `background` is `-d`.
pub fn run(cfg: Config, background: bool) -> i32 {
    let child = std::env::var_os(CHILD_ENV).is_some();
    if background && !child {
        return spawn_background();
    }
    match Daemon::start(cfg, background) {
        Ok(mut d) => {
            if child {
                // Tell the parent we are up, then let go of its pipes and terminal.
                let mut out = std::io::stdout();
                let _ = writeln!(out, "{READY}");
                let _ = out.flush();
                if let Ok(null) = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/null")
                {
                    let _ = rustix::stdio::dup2_stdin(&null);
                    let _ = rustix::stdio::dup2_stdout(&null);
                    let _ = rustix::stdio::dup2_stderr(&null);
                }
                let _ = rustix::process::setsid();
                d.log.detach();
            }
            let rc = d.run_loop();
            d.cleanup();
            rc
        }
        Err(rc) => rc,
    }
}

/// `-d`: starts this program again in the background and waits until it is ready (or failed, in which
/// case its messages are on our stderr and the exit status is 1), as conntrackd initialises before it
/// forks.
fn spawn_background() -> i32 {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            super::log::console_error(&format!("fork has failed: {e}"));
            return EXIT_FAILURE;
        }
    };
    let mut child = match std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(CHILD_ENV, "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            super::log::console_error(&format!("fork has failed: {e}"));
            return EXIT_FAILURE;
        }
    };
    let mut ready = false;
    if let Some(out) = child.stdout.take() {
        let mut r = std::io::BufReader::new(out);
        let mut line = String::new();
        while r.read_line(&mut line).is_ok_and(|n| n > 0) {
            if line.trim_end() == READY {
                ready = true;
                break;
            }
            // Console output before readiness goes to our stdout.
            print!("{line}");
            line.clear();
        }
    }
    if ready {
        EXIT_OK
    } else {
        let _ = child.wait();
        EXIT_FAILURE
    }
}

struct Daemon {
    cfg: Config,
    driver: Driver,
    listener: UnixListener,
    signals: UnixStream,
    log: Logger,
    runtime: Runtime,
    seen_overruns: u64,
    socket_path: PathBuf,
    lockfile: PathBuf,
}

fn remove_quietly(p: &Path) {
    let _ = std::fs::remove_file(p);
}

impl Daemon {
    fn start(cfg: Config, background: bool) -> Result<Daemon, i32> {
        // conntrackd's umask: files and the control socket are 0600.
        rustix::process::umask(rustix::fs::Mode::from_bits_truncate(0o177));
        // Like conntrackd, a daemon started with -d writes nothing to the console.
        let mut log = match Logger::open(cfg.logfile.clone(), cfg.syslog, !background) {
            Ok(l) => l,
            Err(e) => {
                super::log::console_error(&format!(
                    "can't open log file `{}': {e}",
                    cfg.logfile
                        .as_ref()
                        .map_or(String::new(), |p| p.display().to_string())
                ));
                return Err(EXIT_FAILURE);
            }
        };
        for w in &cfg.warnings {
            log.warning(w);
        }
        // conntrackd's set_scheduler: real-time round robin unless configured otherwise.
        if let Err(e) = ctsync_proto::driver::set_scheduler(cfg.sched_policy, cfg.sched_priority) {
            log.warning(&format!(
                "scheduler configuration failed: {e}. Continuing with system default scheduler."
            ));
        }
        if let Err(e) = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&cfg.lockfile)
        {
            log.error(&format!(
                "lockfile `{}' exists, perhaps ctsyncd already running? ({e})",
                cfg.lockfile.display()
            ));
            return Err(EXIT_FAILURE);
        }
        let lockfile = cfg.lockfile.clone();
        let fail = |log: &mut Logger, msg: String| {
            log.error(&msg);
            log.error("ctsyncd cannot start, please review your configuration");
            remove_quietly(&lockfile);
            Err(EXIT_FAILURE)
        };
        let driver = match Driver::open(cfg.driver.clone(), Instant::now()) {
            Ok(d) => d,
            Err(e) => return fail(&mut log, format!("can't start synchronisation: {e}")),
        };
        // Like conntrackd: a stale socket file from a killed instance is replaced (the lock file above
        // guarantees no live instance owns it).
        remove_quietly(&cfg.unix_path);
        let listener = match UnixListener::bind(&cfg.unix_path) {
            Ok(l) => l,
            Err(e) => {
                return fail(
                    &mut log,
                    format!("can't open unix socket `{}': {e}", cfg.unix_path.display()),
                );
            }
        };
        let socket_path = cfg.unix_path.clone();
        if let Err(e) = listener.set_nonblocking(true) {
            remove_quietly(&socket_path);
            return fail(&mut log, format!("unix socket: {e}"));
        }
        let (sig_read, sig_write) = match UnixStream::pair() {
            Ok(p) => p,
            Err(e) => {
                remove_quietly(&socket_path);
                return fail(&mut log, format!("signal pipe: {e}"));
            }
        };
        let _ = sig_read.set_nonblocking(true);
        let _ = sig_write.set_nonblocking(true);
        for sig in [
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGHUP,
        ] {
            let w = match sig_write.try_clone() {
                Ok(w) => w,
                Err(e) => {
                    remove_quietly(&socket_path);
                    return fail(&mut log, format!("signal pipe: {e}"));
                }
            };
            if let Err(e) = signal_hook::low_level::pipe::register(sig, w) {
                remove_quietly(&socket_path);
                return fail(&mut log, format!("signal handler: {e}"));
            }
        }
        let kf = driver.kernel_filter();
        if !kf.insns.is_empty() {
            log.notice(&format!(
                "using kernel-space event filtering ({} BPF instructions)",
                kf.insns.len()
            ));
            if kf.addresses_left_out {
                log.warning(
                    "the Address filter is too large for the kernel: addresses are checked in user space",
                );
            }
        }
        log.notice("initialization completed");
        log.notice(if background {
            "-- starting in daemon mode --"
        } else {
            "-- starting in console mode --"
        });
        let mut d = Daemon {
            cfg,
            driver,
            listener,
            signals: sig_read,
            log,
            runtime: Runtime {
                start: now_secs(),
                ..Runtime::default()
            },
            seen_overruns: 0,
            socket_path,
            lockfile,
        };
        if d.cfg.startup_resync {
            d.log.notice("resync requested");
            d.driver.session_mut().request_resync(Instant::now());
            d.driver.transmit(Instant::now());
        }
        Ok(d)
    }

    fn cleanup(&mut self) {
        remove_quietly(&self.socket_path);
        remove_quietly(&self.lockfile);
        self.log.notice("---- shutdown received ----");
    }

    fn run_loop(&mut self) -> i32 {
        loop {
            let now = Instant::now();
            let wait = if self.driver.has_buffered_events() {
                Duration::ZERO
            } else {
                self.driver
                    .poll_timeout()
                    .map_or(Duration::from_secs(1), |t| {
                        t.saturating_duration_since(now).min(Duration::from_secs(1))
                    })
            };
            let [evfd, chfd] = self.driver.fds();
            let mut fds = [
                PollFd::new(&evfd, PollFlags::IN),
                PollFd::new(&chfd, PollFlags::IN),
                PollFd::new(&self.listener, PollFlags::IN),
                PollFd::new(&self.signals, PollFlags::IN),
            ];
            let ts = rustix::time::Timespec {
                tv_sec: wait.as_secs() as i64,
                tv_nsec: i64::from(wait.subsec_nanos()),
            };
            if let Err(e) = rustix::event::poll(&mut fds, Some(&ts))
                && e != rustix::io::Errno::INTR
            {
                self.runtime.select_failed += 1;
            }
            let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
            let now = Instant::now();
            if ready[3] {
                let mut b = [0u8; 64];
                let _ = (&self.signals).read(&mut b);
                return EXIT_OK;
            }
            if (ready[0] || self.driver.has_buffered_events())
                && let Err(e) = self.driver.handle_events(now)
            {
                self.log.error(&format!("netlink: {e}"));
            }
            if ready[1] {
                let _ = self.driver.handle_channel(now);
            }
            if let Err(e) = self.driver.handle_timeout(now) {
                self.log.error(&format!("{e}"));
            }
            self.driver.transmit(now);
            self.note_changes();
            if ready[2] && self.serve_clients() {
                return EXIT_OK;
            }
        }
    }

    /// Logs what the driver and the session report.
    fn note_changes(&mut self) {
        let s = self.driver.stats();
        if s.overruns > self.seen_overruns {
            self.seen_overruns = s.overruns;
            self.log.warning(&format!(
                "netlink event overrun ({} so far): events were lost; {}",
                s.overruns,
                match self.cfg.driver.overrun_resync {
                    Some(t) => format!("resync with the kernel table in {} s", t.as_secs()),
                    None => "NetlinkOverrunResync is off: the caches may diverge".into(),
                }
            ));
        }
        while let Some(a) = self.driver.poll_action() {
            match a {
                Action::ResyncRequested => self.log.notice("resync requested by other node"),
                Action::HelloDone => self.log.notice("the peer answered our HELLO"),
                Action::PeerRestarted => self.log.notice("the peer restarted (new sequence)"),
                _ => {}
            }
        }
    }

    /// Answers every waiting client; true when one asked us to stop.
    fn serve_clients(&mut self) -> bool {
        loop {
            let (mut stream, _) = match self.listener.accept() {
                Ok(s) => s,
                Err(_) => return false,
            };
            let _ = stream.set_nonblocking(false);
            let incoming = match control::read_request(&mut stream) {
                Ok(i) => i,
                Err(_) => {
                    self.runtime.local_read_failed += 1;
                    continue;
                }
            };
            let (request, json) = match &incoming {
                Incoming::Json(e) => (e.request, e.json),
                Incoming::Conntrackd(r) => (*r, false),
                Incoming::Garbage(why) => {
                    self.runtime.local_unknown_request += 1;
                    self.log.warning(&format!("control socket: {why}"));
                    let reply = Reply {
                        ok: false,
                        output: String::new(),
                        error: why.clone(),
                    };
                    control::write_reply(&mut stream, &incoming, &reply);
                    continue;
                }
            };
            let reply = self.handle(request, json);
            control::write_reply(&mut stream, &incoming, &reply);
            if request == Request::Kill {
                return true;
            }
        }
    }

    fn commit(&mut self, table: Table) -> Reply {
        let start = Instant::now();
        let exp = self.cfg.driver.expectations;
        let mut out = Vec::new();
        if table != Table::Expect {
            self.log.notice(if table == Table::All {
                "committing all external caches"
            } else {
                "committing conntrack cache"
            });
            out.push(self.driver.commit(Instant::now()));
        }
        if exp && table != Table::Ct {
            if table == Table::Expect {
                self.log.notice("committing expectation cache");
            }
            out.push(self.driver.commit_expect());
        }
        for r in out {
            match r {
                Ok(r) => {
                    self.log.notice(&format!("Committed {} new entries", r.ok));
                    if !r.failed.is_empty() {
                        self.log
                            .notice(&format!("{} entries can't be committed", r.failed.len()));
                        for (_, e) in r.failed.iter().take(10) {
                            self.log.error(&format!("commit-create: {e}"));
                        }
                    }
                }
                Err(e) => self.log.error(&format!("commit: {e}")),
            }
        }
        let t = start.elapsed();
        self.log.notice(&format!(
            "commit has taken {}.{:06} seconds",
            t.as_secs(),
            t.subsec_micros()
        ));
        Reply::text(String::new())
    }

    fn handle(&mut self, request: Request, json: bool) -> Reply {
        let now = Instant::now();
        let exp = self.cfg.driver.expectations;
        match request {
            Request::Commit { table } => {
                self.driver.cancel_purge();
                self.commit(table)
            }
            Request::FlushCache { cache } => {
                let s = self.driver.session_mut();
                match cache {
                    CacheSel::All => {
                        s.internal_mut().flush();
                        s.external_mut().flush();
                        if exp {
                            s.internal_exp_mut().flush();
                            s.external_exp_mut().flush();
                        }
                        self.driver.cancel_purge();
                        self.log.notice("flushing caches");
                    }
                    CacheSel::Internal => {
                        s.internal_mut().flush();
                        self.driver.cancel_purge();
                        self.log.notice("flushing internal cache");
                    }
                    CacheSel::External => {
                        s.external_mut().flush();
                        self.log.notice("flushing external cache");
                    }
                }
                Reply::text(String::new())
            }
            Request::FlushKernel { table } => {
                if table != Table::Expect {
                    self.log.notice("flushing kernel conntrack table");
                    if let Err(e) = self.driver.flush_kernel() {
                        self.log.error(&format!("flush: {e}"));
                    }
                }
                if exp && table != Table::Ct {
                    self.log.notice("flushing kernel expect table");
                    if let Err(e) = self.driver.flush_kernel_expect() {
                        self.log.error(&format!("flush: {e}"));
                    }
                }
                Reply::text(String::new())
            }
            Request::ResyncKernel { table } => {
                if table != Table::Expect || exp {
                    self.log.notice(if table == Table::Expect {
                        "resync with master expect table"
                    } else {
                        "resync with master conntrack table"
                    });
                    if let Err(e) = self.driver.resync_from_kernel(now) {
                        self.log.error(&format!("resync: {e}"));
                    }
                }
                Reply::text(String::new())
            }
            Request::DumpInternal { table, xml } | Request::DumpExternal { table, xml } => {
                let internal = matches!(request, Request::DumpInternal { .. });
                let text = match table {
                    Table::Expect if !exp => String::new(),
                    Table::Expect => output::dump_exp(&self.driver, internal, json, now),
                    _ if xml && !json => output::dump_ct_xml(&mut self.driver, internal),
                    _ => output::dump_ct(&self.driver, internal, json, now),
                };
                Reply::text(text)
            }
            Request::Kill => Reply::text(String::new()),
            Request::Stats { kind } => {
                if json {
                    return Reply::text(output::stats_json(
                        &self.driver,
                        &self.runtime,
                        now_secs(),
                    ));
                }
                let d = &self.driver;
                Reply::text(match kind {
                    StatsKind::General => output::general(d),
                    StatsKind::Expect => output::general_expect(d),
                    StatsKind::Network => output::sync_long(d) + &output::link_short(d),
                    StatsKind::Cache => {
                        output::cache_long("internal", &d.session().internal().stats())
                            + &output::cache_long("external", &d.session().external().stats())
                    }
                    StatsKind::Runtime => output::runtime(d, &self.runtime, now_secs()),
                    StatsKind::Link => output::link_long(d),
                    StatsKind::Rsqueue => output::rsqueue(d),
                    StatsKind::Process => String::new(),
                    StatsKind::Queue => output::queues(d),
                })
            }
            Request::RequestResync => {
                self.log.notice("resync requested");
                self.driver.session_mut().request_resync(now);
                self.driver.transmit(now);
                Reply::text(String::new())
            }
            Request::SendBulk => {
                self.log.notice("sending bulk update");
                self.driver.session_mut().send_bulk(now);
                self.driver.transmit(now);
                Reply::text(String::new())
            }
            Request::ResetTimers => {
                self.log.notice(&format!(
                    "flushing conntrack table in {} secs",
                    self.cfg.driver.purge_timeout.as_secs()
                ));
                self.driver.schedule_purge(now);
                Reply::text(String::new())
            }
        }
    }
}
