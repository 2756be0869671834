//! `vrrp_script` checks (interval, timeout, rise, fall) and notify scripts, as child processes that
//! never block the loop.

use crate::keepalived::Script;
use crate::keepalived::vrrp_script::ScriptCmd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A command for `cmd` (plus `extra` arguments), without a shell, in a process group of its own
/// (so a timeout ends what it started too), as the user it runs as (`security::apply` set it;
/// the ids are only changed when they differ from ours, as keepalived does).
fn command(cmd: &ScriptCmd, extra: &[&str]) -> Command {
    let mut c = Command::new(&cmd.argv[0]);
    c.args(&cmd.argv[1..]).args(extra).process_group(0);
    if let Some(who) = cmd.run_as {
        if who.gid != rustix::process::getegid().as_raw() {
            c.gid(who.gid);
        }
        if who.uid != rustix::process::geteuid().as_raw() {
            c.uid(who.uid);
        }
    }
    c
}

/// Kills the process group a script leads, and reaps it.
fn kill_group(child: &mut Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id().cast_signed()) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// One tracking script's run state.
#[derive(Debug)]
pub struct Check {
    /// The configuration.
    pub script: Script,
    /// Up (counts as passing) or down.
    pub up: bool,
    next: Instant,
    running: Option<(Child, Instant)>,
    successes: u32,
    failures: u32,
}

impl Check {
    /// A check that first runs at `now`; starts up, or down with `init_fail`.
    pub fn new(script: Script, now: Instant) -> Check {
        Check {
            up: !script.init_fail,
            script,
            next: now,
            running: None,
            successes: 0,
            failures: 0,
        }
    }

    /// The next moment something must be looked at.
    pub fn deadline(&self) -> Instant {
        match &self.running {
            // A running child is polled every 20 ms at most (SIGCHLD also wakes the loop).
            Some((_, started)) => {
                (*started + self.script.timeout).min(Instant::now() + Duration::from_millis(20))
            }
            None => self.next,
        }
    }

    /// Starts, reaps or times out the script; returns `Some(up)` when its state changed.
    pub fn poll(&mut self, now: Instant) -> Option<bool> {
        if let Some((child, started)) = &mut self.running {
            let result = match child.try_wait() {
                Ok(Some(status)) => Some(status.success()),
                Ok(None) if now >= *started + self.script.timeout => {
                    kill_group(child);
                    Some(false)
                }
                Ok(None) => None,
                Err(_) => Some(false),
            };
            let ok = result?;
            self.running = None;
            self.next = now + self.script.interval;
            return self.record(ok);
        }
        if now >= self.next {
            match command(&self.script.command, &[])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            {
                Ok(child) => self.running = Some((child, now)),
                Err(_) => {
                    self.next = now + self.script.interval;
                    return self.record(false);
                }
            }
        }
        None
    }

    fn record(&mut self, ok: bool) -> Option<bool> {
        if ok {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            if !self.up && self.successes >= self.script.rise {
                self.up = true;
                return Some(true);
            }
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.up && self.failures >= self.script.fall {
                self.up = false;
                return Some(false);
            }
        }
        None
    }

    /// Stops a running child.
    pub fn stop(&mut self) {
        if let Some((mut c, _)) = self.running.take() {
            kill_group(&mut c);
        }
    }
}

/// Notify children, reaped as they end.
#[derive(Debug, Default)]
pub struct Notifier {
    children: Vec<Child>,
}

impl Notifier {
    /// Runs `cmd` with `extra` arguments appended (keepalived execs it directly, without a shell).
    pub fn spawn(&mut self, cmd: &ScriptCmd, extra: &[&str]) -> std::io::Result<()> {
        let child = command(cmd, extra).stdin(Stdio::null()).spawn()?;
        self.children.push(child);
        Ok(())
    }

    /// Reaps finished children.
    pub fn reap(&mut self) {
        self.children
            .retain_mut(|c| matches!(c.try_wait(), Ok(None)));
    }

    /// Waits up to `limit` for the running ones (notify_stop at exit), then leaves them.
    pub fn wait_all(&mut self, limit: Duration) {
        let end = Instant::now() + limit;
        while !self.children.is_empty() && Instant::now() < end {
            self.reap();
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
