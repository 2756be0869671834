//! `vrrpd`: keepalived's VRRP half on `vrrp-proto` and its Linux driver.
//!
//! Layers: [`crate::keepalived`] reads the configuration (every error with `file:line`, before anything
//! is touched); [`build`] turns it into `vrrp_proto::Instances`; `vrrp_proto::linux::Driver` does the
//! I/O; this module runs one blocking poll(2) loop over the driver's fds, the signal pipe, the control
//! socket and the script timers, and runs notify scripts with keepalived's arguments.
//!
//! Signals: SIGHUP reloads (a bad file changes nothing); SIGTERM and SIGINT send priority 0 from every
//! Master, remove every address and VMAC the daemon added, run `notify_stop`, and exit 0.

pub mod args;
pub mod control;
pub mod log;
pub mod scripts;
pub mod security;

use crate::keepalived::vrrp_script::ScriptCmd;
use crate::keepalived::{self, KeepalivedConf, vrrp_instance::track_script_name};
use anyhow::{Context, Result, anyhow};
use args::{Args, Sub};
use clap::Parser;
use log::{Level, Log};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, timerfd_create, timerfd_settime,
};
use scripts::{Check, Notifier};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use vrrp_proto::linux::rtnl::Rtnl;
use vrrp_proto::linux::{Driver, InstanceOptions, Note};
use vrrp_proto::{Instances, Reason, Router, State};

/// Waits at least this long go through a timerfd rather than poll(2)'s timeout (whose slack is
/// 0.1 % of the wait, so 50 µs, the default timer slack, from here on).
const PRECISE_FROM: Duration = Duration::from_millis(50);

fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

/// Exit status of a bad configuration or a failed start (keepalived exits 1 too).
pub const EXIT_FAILURE: i32 = 1;

/// Entry point of `src/bin/vrrpd.rs`.
pub fn run() -> i32 {
    let args = Args::parse();
    if args.generate_man {
        return write_out(&args::man_page());
    }
    if let Some(shell) = args.generate_completions {
        return write_out(&args::completions(shell));
    }
    if let Some(Sub::Status { json }) = args.command {
        return match control::request(&args.socket) {
            Ok(v) if json => write_out(format!("{v}\n").as_bytes()),
            Ok(v) => write_out(control::format_text(&v).as_bytes()),
            Err(e) => {
                eprintln!("vrrpd: {}: {e}", args.socket.display());
                EXIT_FAILURE
            }
        };
    }
    let log = Log::new(args.syslog);
    let conf = match load(&args, &log) {
        Ok(c) => c,
        Err(e) => {
            log.log(Level::Err, &format!("{e}"));
            return EXIT_FAILURE;
        }
    };
    if args.check_config {
        println!(
            "{}: configuration OK ({} instances, {} sync groups, {} scripts, {} virtual servers)",
            args.file.display(),
            conf.instances.len(),
            conf.groups.len(),
            conf.scripts.len(),
            conf.virtual_servers.len()
        );
        return 0;
    }
    match daemon(&args, conf, &log) {
        Ok(()) => 0,
        Err(e) => {
            log.log(Level::Err, &format!("{e:#}"));
            EXIT_FAILURE
        }
    }
}

fn write_out(b: &[u8]) -> i32 {
    let mut o = std::io::stdout().lock();
    match o.write_all(b).and_then(|()| o.flush()) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(_) => EXIT_FAILURE,
    }
}

/// Reads the file, logs its notices, then decides who runs each script and drops the refused
/// ones ([`security::apply`]), logging why.
fn load(args: &Args, log: &Log) -> Result<KeepalivedConf> {
    // -C and -P read only their half, as keepalived's checker and VRRP children do.
    let halves = keepalived::Halves {
        vrrp: !args.check_only,
        lvs: !args.vrrp_only,
    };
    let mut conf = keepalived::read_file_halves(&args.file, args.config_id.as_deref(), halves)?;
    for n in &conf.notices {
        log.log(Level::Warning, &n.to_string());
    }
    for w in security::apply(&mut conf) {
        log.log(Level::Warning, &w);
    }
    Ok(conf)
}

/// Builds the instances of `conf`, reading each interface's primary address (or `mcast_src_ip`).
pub fn build(conf: &KeepalivedConf, rtnl: &mut Rtnl) -> Result<Instances> {
    let mut set = Instances::new();
    for i in &conf.instances {
        let c = &i.config;
        let link = rtnl
            .link(&c.interface)
            .with_context(|| format!("{}: vrrp_instance {}", i.pos, i.name))?;
        let primary = match i.mcast_src_ip {
            Some(a) => a,
            None => rtnl
                .primary_address(link.index, c.is_ipv6())?
                .ok_or_else(|| {
                    anyhow!(
                        "{}: vrrp_instance {}: interface {} has no {} address to send adverts from",
                        i.pos,
                        i.name,
                        c.interface,
                        if c.is_ipv6() {
                            "IPv6 link-local"
                        } else {
                            "IPv4"
                        }
                    )
                })?,
        };
        let r = Router::new(c.clone(), primary)
            .map_err(|e| anyhow!("{}: vrrp_instance {}: {e}", i.pos, i.name))?;
        set.add(&i.name, r)
            .map_err(|e| anyhow!("{}: vrrp_instance {}: {e}", i.pos, i.name))?;
    }
    for g in &conf.groups {
        let members: Vec<&str> = g.members.iter().map(String::as_str).collect();
        set.add_sync_group(&g.name, &members)
            .map_err(|e| anyhow!("{}: vrrp_sync_group {}: {e}", g.pos, g.name))?;
    }
    Ok(set)
}

/// The driver's per-instance options of `conf` (VMAC, `dont_track_primary`).
pub fn options(conf: &KeepalivedConf) -> HashMap<String, InstanceOptions> {
    conf.instances
        .iter()
        .map(|i| {
            let mut o = InstanceOptions::default();
            o.vmac.clone_from(&i.use_vmac);
            o.vmac_xmit_base = i.vmac_xmit_base;
            o.dont_track_primary = i.dont_track_primary;
            (i.name.clone(), o)
        })
        .collect()
}

struct Daemon<'a> {
    /// The LVS checker (`virtual_server` blocks), unless `--vrrp-only` or there are none.
    lvs: Option<lvs_check::Driver>,
    conf: KeepalivedConf,
    /// During a reload, the configuration before it (for the instances it removes).
    gone_conf: Option<KeepalivedConf>,
    driver: Driver,
    checks: Vec<Check>,
    notifier: Notifier,
    log: &'a Log,
}

/// `--check-only`: the VRRP half is left out (no instances, groups or scripts run).
fn vrrp_part(args: &Args, mut conf: KeepalivedConf) -> KeepalivedConf {
    if args.check_only {
        conf.instances.clear();
        conf.groups.clear();
        conf.scripts.clear();
    }
    conf
}

/// The LVS checker for `conf`'s virtual servers (none with `--vrrp-only` or no `virtual_server`).
fn lvs_part(args: &Args, conf: &KeepalivedConf) -> Result<Option<lvs_check::Driver>> {
    if args.vrrp_only || conf.virtual_servers.is_empty() {
        return Ok(None);
    }
    let ipvs = ipvs_nl::Ipvs::open().context("IPVS (is ip_vs loaded?)")?;
    let seed = u64::from(std::process::id()) ^ 0x5eed;
    let engine = lvs_check::Engine::new(conf.virtual_servers.clone(), seed);
    let mut d = lvs_check::Driver::new(engine).with_ipvs(ipvs);
    d.start();
    Ok(Some(d))
}

/// Logs what the LVS checker did.
fn lvs_log(lvs: &mut lvs_check::Driver, log: &Log) {
    use lvs_check::{Event, Output};
    while let Some(o) = lvs.poll_output() {
        let line = match o {
            Output::Event(Event::RealServerUp { vs, rs, .. }) => {
                format!("LVS: real server {rs} of {vs} is up")
            }
            Output::Event(Event::RealServerDown { vs, rs, reason, .. }) => format!(
                "LVS: real server {rs} of {vs} is down ({})",
                reason.as_deref().unwrap_or("removed")
            ),
            Output::Event(Event::QuorumUp { vs, .. }) => format!("LVS: {vs} gained its quorum"),
            Output::Event(Event::QuorumDown { vs, .. }) => format!("LVS: {vs} lost its quorum"),
            Output::Event(Event::WeightChanged { vs, rs, weight, .. }) => {
                format!("LVS: real server {rs} of {vs} weight {weight}")
            }
            Output::Ipvs {
                op,
                applied: Some(Err(e)),
            } => {
                log.log(Level::Err, &format!("LVS: IPVS change {op:?} failed: {e}"));
                continue;
            }
            Output::Script {
                argv,
                started: Err(e),
            } => {
                log.log(
                    Level::Err,
                    &format!("LVS: notify script {}: {e}", argv.join(" ")),
                );
                continue;
            }
            _ => continue,
        };
        log.log(Level::Info, &line);
    }
}

fn daemon(args: &Args, conf: KeepalivedConf, log: &Log) -> Result<()> {
    let conf = vrrp_part(args, conf);
    let mut lvs = lvs_part(args, &conf)?;
    if let Some(l) = &mut lvs {
        lvs_log(l, log);
    }
    let mut rtnl = Rtnl::open().context("rtnetlink")?;
    let set = build(&conf, &mut rtnl)?;
    let control = control::Control::bind(&args.socket)
        .with_context(|| format!("control socket {}", args.socket.display()))?;
    let (sig_r, sig_w) = UnixStream::pair()?;
    sig_r.set_nonblocking(true)?;
    // The handlers only set a flag and write a byte to the pipe that wakes the loop.
    let term = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM};
    signal_hook::flag::register(SIGTERM, term.clone())?;
    signal_hook::flag::register(SIGINT, term.clone())?;
    signal_hook::flag::register(SIGHUP, hup.clone())?;
    for sig in [SIGTERM, SIGINT, SIGHUP, SIGCHLD] {
        signal_hook::low_level::pipe::register(sig, sig_w.try_clone()?)?;
    }
    let mut driver = Driver::open(set)?;
    for (name, o) in options(&conf) {
        driver.set_options(&name, o);
    }
    driver.set_announce_intervals(conf.global.garp_interval, conf.global.gna_interval);
    let now = Instant::now();
    if let Err(e) = driver.start(now) {
        driver.cleanup();
        return Err(e.into());
    }
    let checks = conf
        .scripts
        .iter()
        .map(|s| Check::new(s.clone(), now))
        .collect();
    let mut d = Daemon {
        lvs,
        conf,
        gone_conf: None,
        driver,
        checks,
        notifier: Notifier::default(),
        log,
    };
    // Scripts that start down (init_fail) are reported before the first poll.
    for k in 0..d.checks.len() {
        if !d.checks[k].up {
            let name = track_script_name(&d.checks[k].script.name);
            d.driver.track(now, &name, false);
        }
    }
    d.notes();
    log.log(
        Level::Info,
        &format!("started, {} instances", d.driver.instances().len()),
    );
    let mut sigbuf = [0u8; 64];
    let mut sig_r = sig_r;
    let mut control = control;
    // poll(2) may wake up late by 0.1 % of its timeout (the kernel's select_estimate_accuracy:
    // 3.6 ms on a 3.6 s Master_Down_Interval); a timerfd fires on time, so long waits use one.
    let timer = timerfd_create(
        TimerfdClockId::Monotonic,
        TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
    )?;
    let mut armed = false;
    loop {
        let now = Instant::now();
        let lvs_deadline = d.lvs.as_ref().and_then(lvs_check::Driver::next_deadline);
        let deadline = [
            d.driver.poll_timeout(),
            d.checks.iter().map(Check::deadline).min(),
            control.deadline(),
            lvs_deadline,
        ]
        .into_iter()
        .flatten()
        .min();
        let wait = deadline.map(|t| t.saturating_duration_since(now));
        let long = wait.is_some_and(|w| w >= PRECISE_FROM);
        if long || armed {
            let value = if long { wait } else { None };
            let spec = Itimerspec {
                it_interval: timespec(Duration::ZERO),
                it_value: timespec(value.unwrap_or(Duration::ZERO)),
            };
            timerfd_settime(&timer, TimerfdTimerFlags::empty(), &spec)?;
            armed = long;
        }
        let ts = wait.filter(|_| !long).map(timespec);
        // Which fds are ready: only those are read (a timer wake-up costs one poll).
        let (driver_ready, timer_ready, signal_ready, control_ready, lvs_ready) = {
            let dfds = d.driver.fds();
            let mut fds: Vec<PollFd<'_>> =
                dfds.iter().map(|f| PollFd::new(f, PollFlags::IN)).collect();
            // Layout: driver sockets, timer, signal pipe, control socket and clients, LVS checks.
            let it = fds.len();
            fds.push(PollFd::new(&timer, PollFlags::IN));
            fds.push(PollFd::new(&sig_r, PollFlags::IN));
            fds.extend(control.poll_fds());
            let il = fds.len();
            if let Some(l) = &d.lvs {
                for (fd, r, w) in l.fds() {
                    let mut fl = PollFlags::empty();
                    if r {
                        fl |= PollFlags::IN;
                    }
                    if w {
                        fl |= PollFlags::OUT;
                    }
                    fds.push(PollFd::from_borrowed_fd(fd, fl));
                }
            }
            match poll(&mut fds, ts.as_ref()) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
            let ready = |f: &PollFd<'_>| !f.revents().is_empty();
            (
                fds[..it].iter().any(ready),
                ready(&fds[it]),
                ready(&fds[it + 1]),
                fds[it + 2..il].iter().any(ready),
                fds[il..].iter().any(ready),
            )
        };
        if timer_ready {
            // Clear the timer's expiry count.
            let mut count = [0u8; 8];
            let _ = rustix::io::read(&timer, &mut count);
        }
        if signal_ready {
            // Empty the wake-up pipe; the flags say which signals came.
            while sig_r.read(&mut sigbuf).is_ok_and(|n| n > 0) {}
        }
        let terminate = term.swap(false, Ordering::SeqCst);
        let reload = hup.swap(false, Ordering::SeqCst);
        if driver_ready && let Err(e) = d.driver.handle_readable(Instant::now()) {
            log.log(Level::Err, &format!("receive: {e}"));
        }
        d.driver.handle_timeout(Instant::now());
        d.run_checks(Instant::now());
        d.notes();
        if signal_ready {
            // SIGCHLD: notify scripts ended.
            d.notifier.reap();
        }
        // The LVS checker runs a turn when one of its sockets or children is ready, at its
        // deadline, or on a signal (SIGCHLD of a check child it could not get a pidfd for).
        if let Some(l) = &mut d.lvs
            && (lvs_ready || signal_ready || lvs_deadline.is_some_and(|t| t <= Instant::now()))
        {
            if let Err(e) = l.run_once(Some(Duration::ZERO)) {
                log.log(Level::Err, &format!("LVS: {e}"));
            }
            lvs_log(l, log);
        }
        let now = Instant::now();
        if control_ready || control.deadline().is_some_and(|t| t <= now) {
            control.serve(&d.driver, d.lvs.as_ref(), now);
        }
        if terminate {
            break;
        }
        if reload {
            d.reload(args);
        }
    }
    log.log(
        Level::Info,
        "stopping: priority 0 from every Master, removing addresses",
    );
    d.driver.shutdown(Instant::now());
    d.notes();
    if let Some(l) = &mut d.lvs {
        // Removes exactly the IPVS services and real servers it added.
        l.stop();
        lvs_log(l, log);
    }
    for c in &mut d.checks {
        c.stop();
    }
    // notify_stop with keepalived's arguments.
    for i in d.conf.instances.clone() {
        if let Some(cmd) = &i.notify.stop {
            let _ = d.notifier.spawn(cmd, &[]);
        }
        if let Some(cmd) = &i.notify.any {
            let _ = d.notifier.spawn(cmd, &["INSTANCE", &i.name, "STOP", "0"]);
        }
    }
    d.notifier.wait_all(Duration::from_secs(1));
    drop(control);
    Ok(())
}

impl Daemon<'_> {
    fn run_checks(&mut self, now: Instant) {
        for k in 0..self.checks.len() {
            if let Some(up) = self.checks[k].poll(now) {
                let name = self.checks[k].script.name.clone();
                self.log.log(
                    Level::Info,
                    &format!(
                        "VRRP_Script({name}) {}",
                        if up { "succeeded" } else { "failed" }
                    ),
                );
                self.driver.track(now, &track_script_name(&name), up);
            }
        }
    }

    fn notes(&mut self) {
        while let Some(n) = self.driver.poll_note() {
            match n {
                Note::State {
                    instance,
                    from,
                    to,
                    reason,
                    priority,
                } => {
                    self.log.log(
                        Level::Info,
                        &format!(
                            "({instance}) {} -> {} ({})",
                            control::state_name(from),
                            control::state_name(to),
                            reason_text(&reason)
                        ),
                    );
                    if to == State::Initialize {
                        // An instance a reload removed (or restarted): keepalived 2.2.7 notifies
                        // FAULT for it, unless it was in Fault already.
                        let notify = self
                            .gone_conf
                            .as_ref()
                            .and_then(|c| c.instances.iter().find(|i| i.name == instance))
                            .map(|i| i.notify.clone());
                        if from != State::Fault {
                            self.run_notify(notify, State::Fault, "INSTANCE", &instance, priority);
                        }
                        continue;
                    }
                    let notify = self
                        .conf
                        .instances
                        .iter()
                        .find(|i| i.name == instance)
                        .map(|i| i.notify.clone());
                    self.run_notify(notify, to, "INSTANCE", &instance, priority);
                }
                Note::Group { group, from, to } => {
                    self.log.log(
                        Level::Info,
                        &format!(
                            "VRRP_Group({group}) {} -> {}",
                            control::state_name(from),
                            control::state_name(to)
                        ),
                    );
                    let notify = self
                        .conf
                        .groups
                        .iter()
                        .find(|g| g.name == group)
                        .map(|g| g.notify.clone());
                    // keepalived passes priority 0 for a group.
                    self.run_notify(notify, to, "GROUP", &group, 0);
                }
                Note::AddressListMismatch { instance, from } => self.log.log(
                    Level::Warning,
                    &format!(
                        "({instance}) the owner {from} advertises other addresses (RFC 5798 §7.1)"
                    ),
                ),
                Note::Failed { instance, what } => self.log.log(
                    Level::Err,
                    &format!("({}) {what}", instance.unwrap_or_default()),
                ),
                _ => {}
            }
        }
    }

    /// notify_master/backup/fault as given, then `notify` with `KIND NAME STATE PRIORITY`.
    fn run_notify(
        &mut self,
        notify: Option<keepalived::vrrp_sync_group::Notify>,
        to: State,
        kind: &str,
        name: &str,
        priority: u8,
    ) {
        let Some(notify) = notify else {
            return;
        };
        let (script, word) = match to {
            State::Master => (&notify.master, "MASTER"),
            State::Backup => (&notify.backup, "BACKUP"),
            State::Fault => (&notify.fault, "FAULT"),
            _ => return,
        };
        if let Some(cmd) = script {
            self.spawn(cmd, &[]);
        }
        if let Some(cmd) = &notify.any {
            self.spawn(cmd, &[kind, name, word, &priority.to_string()]);
        }
    }

    fn spawn(&mut self, cmd: &ScriptCmd, extra: &[&str]) {
        if let Err(e) = self.notifier.spawn(cmd, extra) {
            self.log
                .log(Level::Err, &format!("notify script {}: {e}", cmd.display()));
        }
    }

    /// SIGHUP: parse the file fully; if good, apply the difference; if bad, change nothing.
    fn reload(&mut self, args: &Args) {
        let conf = match load(args, self.log) {
            Ok(c) => vrrp_part(args, c),
            Err(e) => {
                self.log.log(
                    Level::Err,
                    &format!("reload refused, configuration unchanged: {e}"),
                );
                return;
            }
        };
        let mut rtnl = match Rtnl::open() {
            Ok(r) => r,
            Err(e) => {
                self.log.log(Level::Err, &format!("reload: {e}"));
                return;
            }
        };
        let set = match build(&conf, &mut rtnl) {
            Ok(s) => s,
            Err(e) => {
                self.log.log(
                    Level::Err,
                    &format!("reload refused, configuration unchanged: {e:#}"),
                );
                return;
            }
        };
        let now = Instant::now();
        self.driver
            .set_announce_intervals(conf.global.garp_interval, conf.global.gna_interval);
        // Tracking scripts keep their result by name (keepalived's clear_diff_script).
        let mut old_checks = std::mem::take(&mut self.checks);
        self.checks = conf
            .scripts
            .iter()
            .map(|s| {
                let mut c = Check::new(s.clone(), now);
                if let Some(o) = old_checks.iter().find(|o| o.script.name == s.name) {
                    c.up = o.up;
                }
                c
            })
            .collect();
        for c in &mut old_checks {
            c.stop();
        }
        if let Err(e) = self.driver.reload(now, set, options(&conf)) {
            self.log.log(Level::Err, &format!("reload: {e}"));
        }
        for k in 0..self.checks.len() {
            let name = track_script_name(&self.checks[k].script.name);
            let up = self.checks[k].up;
            self.driver.track(now, &name, up);
        }
        // The LVS half: applied as a difference, or started if the old file had none.
        match &mut self.lvs {
            Some(l) if !args.vrrp_only => {
                l.reload(conf.virtual_servers.clone());
                lvs_log(l, self.log);
            }
            Some(_) => {}
            None => match lvs_part(args, &conf) {
                Ok(l) => self.lvs = l,
                Err(e) => self.log.log(Level::Err, &format!("reload: LVS: {e:#}")),
            },
        }
        // Notes of instances the reload removed or restarted name the old configuration.
        let old = std::mem::replace(&mut self.conf, conf);
        self.gone_conf = Some(old);
        self.notes();
        self.gone_conf = None;
        self.log.log(Level::Info, "configuration reloaded");
    }
}

fn reason_text(r: &Reason) -> String {
    match r {
        Reason::Startup => "startup".into(),
        Reason::Owner => "address owner".into(),
        Reason::MasterDown => "master down".into(),
        Reason::HandOver => "master sent priority 0".into(),
        Reason::Preempt => "preempting a lower priority master".into(),
        Reason::HigherPriority { from, priority } => {
            format!("higher priority {priority} from {from}")
        }
        Reason::Shutdown => "shutdown".into(),
        Reason::InterfaceDown => "interface down".into(),
        Reason::TrackFault { name } => format!("{name} down"),
        Reason::FaultCleared => "fault cleared".into(),
        Reason::SyncGroup { member } => format!("sync group follows {member}"),
        other => format!("{other:?}"),
    }
}
