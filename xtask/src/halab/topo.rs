//! The lab's network: five network namespaces, two bridges, a dedicated sync link, the firewall
//! ruleset and sysctls; and its teardown, which leaves nothing behind.
//!
//! ```text
//!                 LAN-in (br-in)                         LAN-out (br-out)
//!  client ─────────────┬──────────────┐      ┌───────────────┬──────────────── server
//!  192.168.0.10/24     │ eth1         │      │ eth0          │          192.168.1.10/24
//!  gw 192.168.0.100    │ .0.1         │      │ .1.1          │
//!                    ┌─┴────────┐     │      │         ┌─────┴────┐
//!                    │   fw-a   ├─────┼──────┼─────────┤          │
//!                    └─┬────────┘     │      │         └──────────┘
//!                      │ eth2 192.168.100.100/24 (sync link)
//!                      │ eth2 192.168.100.101/24
//!                    ┌─┴────────┐ eth1 .0.2   eth0 .1.2
//!                    │   fw-b   ├─────┘      └─────
//!                    └──────────┘
//! ```
//!
//! Addresses and interface names are those of conntrack-tools' shipped examples (VI_1 = 192.168.0.100 on
//! `eth1`, VI_2 = 192.168.1.100 on `eth0`, sync on `eth2` from 192.168.100.100), so fw-a needs no address
//! substitution at all. Every name that the host can see is a namespace name with the run's prefix
//! (`halab<pid>n<k>-<role>`); interface names live inside the lab's own namespaces, so labs of several
//! runs and other engineers' tests never collide. Both bridges sit in their own `sw` namespace: the host's
//! namespace is never touched.

use super::sys;
use anyhow::{Context, Result, bail};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The client's address on LAN-in.
pub const CLIENT: &str = "192.168.0.10";
/// The server's address on LAN-out.
pub const SERVER: &str = "192.168.1.10";
/// The inside virtual address (VI_1), the client's gateway.
pub const VIP_IN: &str = "192.168.0.100";
/// The outside virtual address (VI_2), the source of every NATed connection.
pub const VIP_OUT: &str = "192.168.1.100";
/// The echo server's TCP port.
pub const PORT: u16 = 7000;

/// The two firewalls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fw {
    /// The primary (priority 100 in the lab).
    A,
    /// The backup (priority 80, as shipped).
    B,
}

impl Fw {
    /// The role suffix of its namespace.
    pub fn role(self) -> &'static str {
        match self {
            Fw::A => "fa",
            Fw::B => "fb",
        }
    }
    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Fw::A => "fw-a",
            Fw::B => "fw-b",
        }
    }
    /// `(inside, outside, sync)` addresses.
    pub fn addrs(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Fw::A => ("192.168.0.1", "192.168.1.1", "192.168.100.100"),
            Fw::B => ("192.168.0.2", "192.168.1.2", "192.168.100.101"),
        }
    }
}

/// The firewall ruleset loaded on both firewalls unless `--nft FILE` replaces it.
///
/// `forward` passes `established,related` and new connections from the inside only; `postrouting` source
/// NATs to the outside VIP (not masquerade: the VIP must be the source on whichever firewall is master).
/// `input` protects the firewall itself; without it, a packet of a connection the new master has not yet
/// committed reaches the master's own TCP stack (the VIP is local there) and is answered with a RST
/// that kills the connection, a race the lab hit in its first runs.
pub const DEFAULT_NFT: &str = r#"# linux-ha-rs HA lab firewall (both firewalls)
table inet halab {
    chain input {
        type filter hook input priority filter; policy drop;
        ct state established,related accept
        iifname "lo" accept
        ip protocol vrrp accept
        iifname "eth2" accept
        ip protocol icmp accept
    }
    chain forward {
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        iifname "eth1" oifname "eth0" ct state new accept
    }
    chain postrouting {
        type nat hook postrouting priority srcnat;
        oifname "eth0" snat ip to 192.168.1.100
    }
}
"#;

const PREFIX: &str = "halab";
const ROLES: [&str; 5] = ["sw", "cl", "sv", "fa", "fb"];

static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// One built lab. Dropping it tears everything down.
#[derive(Debug)]
pub struct Net {
    prefix: String,
    built: Vec<String>,
}

impl Net {
    /// Builds the namespaces, links, addresses, sysctls and the ruleset `nft` on both firewalls.
    pub fn build(nft: &str, dir: &Path) -> Result<Net> {
        let k = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let prefix = format!("{PREFIX}{}n{k}", std::process::id());
        let mut net = Net {
            prefix,
            built: Vec::new(),
        };
        for role in ROLES {
            let ns = net.ns(role);
            run(&["ip", "netns", "add", &ns])?;
            net.built.push(ns.clone());
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
        }
        let (sw, cl, sv, fa, fb) = (
            net.ns("sw"),
            net.ns("cl"),
            net.ns("sv"),
            net.ns("fa"),
            net.ns("fb"),
        );
        let ip = |ns: &str, args: &str| -> Result<()> {
            let mut argv = vec!["ip", "-n", ns];
            argv.extend(args.split_whitespace());
            run(&argv)
        };
        for br in ["br-in", "br-out"] {
            ip(&sw, &format!("link add {br} type bridge mcast_snooping 0"))?;
            ip(&sw, &format!("link set {br} up"))?;
        }
        // Each veth is created from the switch (or fw-a) namespace with its peer placed directly in the
        // other namespace, so no interface ever exists in the host's namespace.
        ip(
            &sw,
            &format!("link add in-cl type veth peer name eth0 netns {cl}"),
        )?;
        ip(
            &sw,
            &format!("link add out-sv type veth peer name eth0 netns {sv}"),
        )?;
        for (f, ns) in [("fa", &fa), ("fb", &fb)] {
            ip(
                &sw,
                &format!("link add in-{f} type veth peer name eth1 netns {ns}"),
            )?;
            ip(
                &sw,
                &format!("link add out-{f} type veth peer name eth0 netns {ns}"),
            )?;
        }
        ip(
            &fa,
            &format!("link add eth2 type veth peer name eth2 netns {fb}"),
        )?;
        for port in ["in-cl", "in-fa", "in-fb"] {
            ip(&sw, &format!("link set {port} master br-in up"))?;
        }
        for port in ["out-sv", "out-fa", "out-fb"] {
            ip(&sw, &format!("link set {port} master br-out up"))?;
        }
        ip(&cl, &format!("addr add {CLIENT}/24 dev eth0"))?;
        ip(&cl, "link set eth0 up")?;
        ip(&cl, &format!("route add default via {VIP_IN}"))?;
        ip(&sv, &format!("addr add {SERVER}/24 dev eth0"))?;
        ip(&sv, "link set eth0 up")?;
        for fw in [Fw::A, Fw::B] {
            let ns = net.fw_ns(fw);
            let (inside, outside, sync) = fw.addrs();
            ip(&ns, &format!("addr add {inside}/24 dev eth1"))?;
            ip(&ns, &format!("addr add {outside}/24 dev eth0"))?;
            ip(&ns, &format!("addr add {sync}/24 dev eth2"))?;
            for dev in ["eth0", "eth1", "eth2"] {
                ip(&ns, &format!("link set {dev} up"))?;
            }
            run(&[
                "ip",
                "netns",
                "exec",
                &ns,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
                "net.netfilter.nf_conntrack_tcp_loose=0",
            ])?;
            let rules = dir.join("firewall.nft");
            std::fs::write(&rules, nft).with_context(|| format!("writing {}", rules.display()))?;
            let rules = rules.to_string_lossy().into_owned();
            run(&["ip", "netns", "exec", &ns, "nft", "-f", &rules])
                .context("loading the firewall ruleset")?;
        }
        Ok(net)
    }

    /// The namespace name of a role (`sw`, `cl`, `sv`, `fa`, `fb`).
    pub fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    /// The namespace of a firewall.
    pub fn fw_ns(&self, fw: Fw) -> String {
        self.ns(fw.role())
    }

    /// The MAC address of a firewall's interface.
    pub fn mac(&self, fw: Fw, dev: &str) -> Result<[u8; 6]> {
        let out = output(&["ip", "-n", &self.fw_ns(fw), "-o", "link", "show", dev])?;
        let text = out
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .with_context(|| format!("no MAC address in `{out}`"))?;
        let mut mac = [0u8; 6];
        let parts: Vec<&str> = text.split(':').collect();
        if parts.len() != 6 {
            bail!("bad MAC address `{text}`");
        }
        for (m, p) in mac.iter_mut().zip(parts) {
            *m = u8::from_str_radix(p, 16).with_context(|| format!("bad MAC address `{text}`"))?;
        }
        Ok(mac)
    }

    /// Pulls (or plugs back) both LAN cables of a firewall, on the switch side: the firewall sees its
    /// carrier go away, as with a real unplug.
    pub fn set_lan_links(&self, fw: Fw, up: bool) -> Result<()> {
        let sw = self.ns("sw");
        let state = if up { "up" } else { "down" };
        for side in ["in", "out"] {
            let port = format!("{side}-{}", fw.role());
            run(&["ip", "-n", &sw, "link", "set", &port, state])?;
        }
        Ok(())
    }

    /// The IPv4 addresses on a firewall's interfaces (`ip -4 -o addr`), as `(dev, addr)`.
    pub fn addresses(&self, fw: Fw) -> Result<Vec<(String, String)>> {
        let out = output(&["ip", "-n", &self.fw_ns(fw), "-4", "-o", "addr", "show"])?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let dev = f.get(1)?;
                let addr = f
                    .iter()
                    .position(|w| *w == "inet")
                    .and_then(|i| f.get(i + 1))?;
                let addr = addr.split('/').next()?;
                Some((dev.to_string(), addr.to_string()))
            })
            .collect())
    }

    /// Which firewalls hold each VIP: `(holders of VIP_IN, holders of VIP_OUT)`.
    pub fn vip_holders(&self) -> Result<(Vec<Fw>, Vec<Fw>)> {
        let mut vin = Vec::new();
        let mut vout = Vec::new();
        for fw in [Fw::A, Fw::B] {
            let addrs = self.addresses(fw)?;
            if addrs.iter().any(|(d, a)| d == "eth1" && a == VIP_IN) {
                vin.push(fw);
            }
            if addrs.iter().any(|(d, a)| d == "eth0" && a == VIP_OUT) {
                vout.push(fw);
            }
        }
        Ok((vin, vout))
    }

    /// Tears the lab down: TERM to every process in its namespaces, KILL after a grace period, then
    /// deletes the namespaces (which destroys every interface and address in them).
    pub fn teardown(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        let names = std::mem::take(&mut self.built);
        if names.is_empty() {
            return problems;
        }
        stop_processes(&names, &mut problems);
        delete_namespaces(&names, &mut problems);
        problems
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for p in self.teardown() {
            eprintln!("ha-lab: teardown: {p}");
        }
    }
}

/// Deletes the namespaces `names`. Not interruptible: a Ctrl-C must not stop the cleanup it triggered.
fn delete_namespaces(names: &[String], problems: &mut Vec<String>) {
    for ns in names {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "del", ns]);
        match output_until(cmd, COMMAND_LIMIT, false) {
            Ok(o) if o.status.success() => {}
            Ok(o) => problems.push(format!(
                "ip netns del {ns}: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => problems.push(format!("ip netns del {ns}: {e:#}")),
        }
    }
}

/// TERM, then KILL after 3 s, every process living in any of `names`; waits up to 10 s for the killed
/// ones (on a loaded machine a dying process can take seconds to leave).
fn stop_processes(names: &[String], problems: &mut Vec<String>) {
    let all = |names: &[String]| -> Vec<u32> { names.iter().flat_map(|n| pids_in(n)).collect() };
    for pid in all(names) {
        let _ = sys::signal(pid, sys::Signal::Term);
    }
    let t = Instant::now();
    while !all(names).is_empty() && t.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for pid in all(names) {
        let _ = sys::signal(pid, sys::Signal::Kill);
    }
    let t = Instant::now();
    while !all(names).is_empty() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for pid in all(names) {
        problems.push(format!("pid {pid} ({}) survived SIGKILL", comm(pid)));
    }
}

/// The live (not zombie) processes whose network namespace is the one bound at `/run/netns/NAME`.
/// Compares namespace inodes, so it finds daemons that forked or were started by scripts.
pub fn pids_in(name: &str) -> Vec<u32> {
    let Ok(target) = std::fs::metadata(Path::new("/run/netns").join(name)) else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(m) = std::fs::metadata(format!("/proc/{pid}/ns/net")) else {
            continue;
        };
        if m.ino() == target.ino() && m.dev() == target.dev() && !is_zombie(pid) {
            out.push(pid);
        }
    }
    out
}

/// True while `pid` is a live (not zombie) process running the lab (`ha-lab` in its command line): a
/// dead run's pid may already belong to something else.
fn lab_runner_alive(pid: u32) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    !is_zombie(pid) && cmdline.split(|&b| b == 0).any(|a| a == b"ha-lab")
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// A process's command name, for messages.
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Removes labs left by runs that died without cleaning up (SIGKILL of the xtask): every
/// `/run/netns/halab<pid>n<k>-*` whose `<pid>` is no longer a running process. Returns what it removed.
pub fn sweep_stale() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return Vec::new();
    };
    let mut stale = Vec::new();
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('n').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !lab_runner_alive(pid) {
            stale.push(name);
        }
    }
    // Run directories of dead runs, too.
    if let Ok(dir) = std::fs::read_dir(std::env::temp_dir()) {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix("halab-")
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = pid
                && !lab_runner_alive(pid)
                && entry.path().is_dir()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    if stale.is_empty() {
        return stale;
    }
    let mut problems = Vec::new();
    stop_processes(&stale, &mut problems);
    delete_namespaces(&stale, &mut problems);
    for p in problems {
        eprintln!("ha-lab: sweeping stale labs: {p}");
    }
    stale
}

/// What this run left on the machine: its namespaces (`halab<pid>n*`), processes in them or naming one
/// of its run directories on their command line (a daemon whose namespace is gone), and its run
/// directories (`<tmp>/halab-<pid>-*`). Empty after a clean run; `cargo xtask ha-lab` fails otherwise.
pub fn leftovers_of_this_run() -> Vec<String> {
    let me = std::process::id();
    let ns_prefix = format!("{PREFIX}{me}n");
    let dir_prefix = format!("halab-{me}-");
    let names = |dir: &Path, prefix: &str| -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(prefix))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for ns in names(Path::new("/run/netns"), &ns_prefix) {
        for pid in pids_in(&ns) {
            out.push(format!("process {pid} ({}) in namespace {ns}", comm(pid)));
        }
        out.push(format!("namespace {ns}"));
    }
    let tmp = std::env::temp_dir();
    for pid in processes_naming_run_dirs() {
        out.push(format!(
            "process {pid} ({}) naming a run directory",
            comm(pid)
        ));
    }
    for d in names(&tmp, &dir_prefix) {
        out.push(format!("directory {}", tmp.join(d).display()));
    }
    out
}

/// Removes what [`leftovers_of_this_run`] lists: kills the processes (by pid), deletes the namespaces and
/// the run directories. Returns what could not be removed.
pub fn remove_leftovers_of_this_run() -> Vec<String> {
    let me = std::process::id();
    let ns_prefix = format!("{PREFIX}{me}n");
    let names: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&ns_prefix))
                .collect()
        })
        .unwrap_or_default();
    let mut problems = Vec::new();
    stop_processes(&names, &mut problems);
    delete_namespaces(&names, &mut problems);
    for pid in processes_naming_run_dirs() {
        let _ = sys::signal(pid, sys::Signal::Kill);
    }
    let tmp = std::env::temp_dir();
    if let Ok(dir) = std::fs::read_dir(&tmp) {
        for e in dir.flatten() {
            if e.file_name()
                .to_string_lossy()
                .starts_with(&format!("halab-{me}-"))
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    problems.extend(leftovers_of_this_run());
    problems
}

/// Live processes whose command line names one of this run's directories (`<tmp>/halab-<pid>-`).
fn processes_naming_run_dirs() -> Vec<u32> {
    let me = std::process::id();
    let run_dir = format!("{}/halab-{me}-", std::env::temp_dir().display());
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|&p| p != me && !is_zombie(p))
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline)
                .replace('\0', " ")
                .contains(&run_dir)
        })
        .collect()
}

/// How long any helper command (`ip`, `nft`, `conntrack`, a sync daemon's client) may take. Generous: on
/// a machine loaded by parallel builds, creating a namespace can take seconds; a command that takes this
/// long is stuck, and the sample fails instead of hanging.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// Runs a command; fails with its stderr.
pub fn run(argv: &[&str]) -> Result<()> {
    output(argv).map(|_| ())
}

/// Runs a command; returns its stdout, or fails with its stderr.
pub fn output(argv: &[&str]) -> Result<String> {
    let (prog, rest) = argv.split_first().context("empty command")?;
    let mut cmd = Command::new(prog);
    cmd.args(rest);
    let out = output_within(cmd, COMMAND_LIMIT).with_context(|| format!("`{}`", argv.join(" ")))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cmd` with its output captured; kills it (by its pid) if it has not finished within `limit` or
/// the run is interrupted.
pub fn output_within(cmd: Command, limit: Duration) -> Result<std::process::Output> {
    output_until(cmd, limit, true)
}

/// [`output_within`]; `interruptible: false` lets the command finish after a Ctrl-C (the cleanup's).
fn output_until(
    mut cmd: Command,
    limit: Duration,
    interruptible: bool,
) -> Result<std::process::Output> {
    use std::io::Read;
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("cannot start it")?;
    // Drain both pipes in threads, so a large output (a 50,000-line `-e`) cannot block the child.
    let drain = |p: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut p) = p {
                let _ = p.read_to_end(&mut v);
            }
            v
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        let interrupted = if interruptible {
            super::check_interrupted()
        } else {
            Ok(())
        };
        if t.elapsed() > limit || interrupted.is_err() {
            let _ = child.kill();
            let _ = child.wait();
            interrupted?;
            bail!("still running after {limit:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok(std::process::Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// A fresh directory for one run's configs, logs and sockets: `<tmp>/halab-<pid>-<k>`.
pub fn run_dir(tag: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("halab-{}-{tag}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
