//! The daemons of each stack, started on a firewall the way Debian's units start them (in the
//! foreground, sync daemon first), and the ways a master is made to fail and to come back.

use super::configs::NodeFiles;
use super::sys::{self, Signal};
use super::topo::{self, Fw, Net};
use anyhow::{Context, Result, bail};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The VRRP half of a stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vrrp {
    /// Debian's keepalived 2.2.7.
    Keepalived,
    /// Our vrrpd (path of its binary).
    Vrrpd(PathBuf),
}

/// The sync half of a stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sync {
    /// Debian's conntrackd 1.4.7.
    Conntrackd,
    /// Our ctsyncd (path of its binary).
    Ctsyncd(PathBuf),
    /// No sync daemon (the control scenario): the notify script's binary is `/bin/true`.
    Off,
}

/// A pair of daemons run on each firewall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    /// The VRRP daemon.
    pub vrrp: Vrrp,
    /// The sync daemon.
    pub sync: Sync,
}

impl Stack {
    /// A short name for tables: `keepalived+conntrackd`, `vrrpd+ctsyncd`, ...
    pub fn name(&self) -> String {
        let v = match self.vrrp {
            Vrrp::Keepalived => "keepalived",
            Vrrp::Vrrpd(_) => "vrrpd",
        };
        let s = match self.sync {
            Sync::Conntrackd => "conntrackd",
            Sync::Ctsyncd(_) => "ctsyncd",
            Sync::Off => "no sync",
        };
        format!("{v}+{s}")
    }

    /// The program the notify script calls as `CONNTRACKD_BIN`.
    pub fn sync_bin(&self) -> PathBuf {
        match &self.sync {
            Sync::Conntrackd => PathBuf::from("/usr/sbin/conntrackd"),
            Sync::Ctsyncd(p) => p.clone(),
            Sync::Off => PathBuf::from("/bin/true"),
        }
    }

    /// The same stack without its sync daemons (scenario 4).
    pub fn without_sync(&self) -> Stack {
        Stack {
            vrrp: self.vrrp.clone(),
            sync: Sync::Off,
        }
    }
}

/// How the master is made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// SIGKILL of every process on the master (both daemons and any running script), atomically.
    Kill,
    /// Both LAN cables pulled on the switch side (carrier loss).
    Unplug,
    /// A graceful stop: SIGTERM to the VRRP daemon, then to the sync daemon, as `systemctl stop` does.
    Stop,
}

impl Method {
    /// Every method, in the issue's order.
    pub const ALL: [Method; 3] = [Method::Kill, Method::Unplug, Method::Stop];

    /// The name used on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Method::Kill => "kill",
            Method::Unplug => "unplug",
            Method::Stop => "stop",
        }
    }

    /// Parses a `--method` word.
    pub fn parse(s: &str) -> Result<Method> {
        Method::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .with_context(|| format!("unknown method `{s}` (kill, unplug, stop)"))
    }
}

/// One firewall's daemons.
#[derive(Debug)]
pub struct Node {
    fw: Fw,
    ns: String,
    dir: PathBuf,
    files: NodeFiles,
    vrrp: Option<Child>,
    sync: Option<Child>,
    starts: u32,
}

impl Node {
    /// A node whose files are written; nothing runs yet.
    pub fn new(net: &Net, fw: Fw, dir: &Path, files: NodeFiles) -> Node {
        Node {
            fw,
            ns: net.fw_ns(fw),
            dir: dir.to_path_buf(),
            files,
            vrrp: None,
            sync: None,
            starts: 0,
        }
    }

    /// Starts the stack's daemons: the sync daemon first (and waits until it answers `-s`), then the
    /// VRRP daemon, whose first state change runs the notify script.
    pub fn start(&mut self, stack: &Stack) -> Result<()> {
        self.starts += 1;
        let conf = self.files.conntrackd.to_string_lossy().into_owned();
        let sync_bin = stack.sync_bin();
        if stack.sync != Sync::Off {
            let log = self.log(&format!("sync.{}.log", self.starts))?;
            let child = self
                .spawn(&[&sync_bin.to_string_lossy(), "-C", &conf], log)
                .with_context(|| {
                    format!("starting {} on {}", sync_bin.display(), self.fw.name())
                })?;
            self.sync = Some(child);
            self.wait_sync_ready(&sync_bin, &conf)?;
        }
        let log = self.log(&format!("vrrp.{}.log", self.starts))?;
        let kconf = self.files.keepalived.to_string_lossy().into_owned();
        let child = match &stack.vrrp {
            Vrrp::Keepalived => {
                let pid = self
                    .dir
                    .join("keepalived.pid")
                    .to_string_lossy()
                    .into_owned();
                let vpid = self.dir.join("vrrp.pid").to_string_lossy().into_owned();
                self.spawn(
                    &[
                        "keepalived",
                        "-n",
                        "-l",
                        "-D",
                        "-P",
                        "-f",
                        &kconf,
                        "-p",
                        &pid,
                        "-r",
                        &vpid,
                    ],
                    log,
                )
            }
            Vrrp::Vrrpd(bin) => {
                let sock = self.dir.join("vrrpd.sock").to_string_lossy().into_owned();
                self.spawn(
                    &[&bin.to_string_lossy(), "-f", &kconf, "--socket", &sock],
                    log,
                )
            }
        }
        .with_context(|| format!("starting the VRRP daemon on {}", self.fw.name()))?;
        self.vrrp = Some(child);
        Ok(())
    }

    fn log(&self, name: &str) -> Result<std::fs::File> {
        let p = self.dir.join(name);
        std::fs::File::create(&p).with_context(|| format!("creating {}", p.display()))
    }

    fn spawn(&self, argv: &[&str], log: std::fs::File) -> Result<Child> {
        let err = log.try_clone()?;
        Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            // Own process group: a Ctrl-C on the terminal reaches only the xtask, which then tears the
            // lab down in order.
            .process_group(0)
            .spawn()
            .with_context(|| format!("spawning {}", argv.join(" ")))
    }

    fn wait_sync_ready(&mut self, bin: &Path, conf: &str) -> Result<()> {
        let t = Instant::now();
        loop {
            super::check_interrupted()?;
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", &self.ns])
                .arg(bin)
                .args(["-C", conf, "-s"]);
            let ok =
                topo::output_within(cmd, Duration::from_secs(10)).is_ok_and(|o| o.status.success());
            if ok {
                return Ok(());
            }
            if let Some(c) = self.sync.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                bail!(
                    "{} on {} exited at start ({st}); log: {}",
                    bin.display(),
                    self.fw.name(),
                    self.dir.display()
                );
            }
            if t.elapsed() > Duration::from_secs(10) {
                bail!(
                    "{} on {} did not answer `-s` within 10 s",
                    bin.display(),
                    self.fw.name()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Makes this (master) node fail by `method`.
    pub fn fail(&mut self, net: &Net, method: Method) -> Result<()> {
        match method {
            Method::Kill => {
                // Freeze every process first, then kill: keepalived's VRRP child gets SIGTERM from the
                // kernel when its parent dies (PR_SET_PDEATHSIG) and would then stop gracefully (priority
                // 0), turning a kill into a stop. A frozen child cannot act on it before the SIGKILL.
                let pids = topo::pids_in(&self.ns);
                for &p in &pids {
                    sys::signal(p, Signal::Stop)?;
                }
                for &p in &pids {
                    sys::signal(p, Signal::Kill)?;
                }
                self.reap(Duration::from_secs(5));
            }
            Method::Unplug => net.set_lan_links(self.fw, false)?,
            Method::Stop => {
                for child in [self.vrrp.take(), self.sync.take()].into_iter().flatten() {
                    stop_child(child, Duration::from_secs(10))?;
                }
            }
        }
        Ok(())
    }

    /// Brings the node back after `method`: restarts the daemons (after a kill or a stop) or plugs the
    /// cables back. After a kill, the files a dead daemon leaves (pid files, conntrackd's lock file and
    /// socket) are removed first, as a reboot's clean /run would; the kernel state (addresses, conntrack
    /// entries) is left as the killed daemons left it.
    pub fn recover(&mut self, net: &Net, method: Method, stack: &Stack) -> Result<()> {
        match method {
            Method::Unplug => net.set_lan_links(self.fw, true),
            Method::Kill | Method::Stop => {
                for f in [
                    "keepalived.pid",
                    "vrrp.pid",
                    "conntrack.lock",
                    "conntrackd.ctl",
                    "vrrpd.sock",
                ] {
                    let _ = std::fs::remove_file(self.dir.join(f));
                }
                self.start(stack)
            }
        }
    }

    /// Waits for our own children that have exited (they were killed), up to `limit`.
    fn reap(&mut self, limit: Duration) {
        let t = Instant::now();
        for slot in [&mut self.vrrp, &mut self.sync] {
            if let Some(mut c) = slot.take() {
                while t.elapsed() < limit {
                    if let Ok(Some(_)) = c.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }

    /// Stops the daemons gracefully (teardown); the namespace sweep kills whatever remains.
    pub fn shutdown(&mut self) {
        for child in [self.vrrp.take(), self.sync.take()].into_iter().flatten() {
            let _ = stop_child(child, Duration::from_secs(5));
        }
    }

    /// The node's directory (configs, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The node's conntrackd.conf.
    pub fn conntrackd_conf(&self) -> &Path {
        &self.files.conntrackd
    }

    /// True when both daemons that were started are still running.
    pub fn alive(&mut self) -> Vec<String> {
        let mut dead = Vec::new();
        for (name, slot) in [
            ("VRRP daemon", &mut self.vrrp),
            ("sync daemon", &mut self.sync),
        ] {
            if let Some(c) = slot.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                dead.push(format!("{} {name} exited ({st})", self.fw.name()));
                *slot = None;
            }
        }
        dead
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// SIGTERM, wait up to `limit`, then SIGKILL; always reaps.
fn stop_child(mut child: Child, limit: Duration) -> Result<()> {
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    sys::signal(child.id(), Signal::Term)?;
    let t = Instant::now();
    while t.elapsed() < limit {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    bail!(
        "pid {} ignored SIGTERM for {limit:?} and was killed",
        child.id()
    )
}

/// The number of entries in a sync daemon's external cache (`-e` prints one line per entry).
pub fn external_cache_len(net: &Net, fw: Fw, stack: &Stack, conf: &Path) -> Result<usize> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &net.fw_ns(fw)])
        .arg(stack.sync_bin())
        .arg("-C")
        .arg(conf)
        .arg("-e");
    let out = topo::output_within(cmd, topo::COMMAND_LIMIT).context("running `-e`")?;
    if !out.status.success() {
        bail!(
            "`{} -e` failed ({})",
            stack.sync_bin().display(),
            out.status
        );
    }
    Ok(out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count())
}
