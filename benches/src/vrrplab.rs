//! Namespaces and daemons for the vrrpd benches (issue 12): vrrpd and keepalived 2.2.7 run side by
//! side in network namespaces of the bench's private namespace, with the same configuration file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` with `sh -c`; panics with its stderr when it fails; returns its stdout.
pub fn sh(cmd: &str) -> String {
    let o = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        o.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A suffix unique to this process and moment, for namespace and file names.
pub fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}{}", std::process::id(), nanos % 1_000_000)
}

/// Named namespaces and a scratch directory, removed (with every process inside) on drop.
#[derive(Debug)]
pub struct Lab {
    /// The namespaces' names.
    pub ns: Vec<String>,
    /// Configuration files, pid files, captures.
    pub dir: PathBuf,
}

impl Lab {
    /// Namespaces `PREFIX-NAME-ID` for each of `names`, with `lo` up.
    pub fn new(prefix: &str, names: &[&str]) -> Lab {
        let id = unique();
        let dir = std::env::temp_dir().join(format!("{prefix}-{id}"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let ns: Vec<String> = names.iter().map(|n| format!("{prefix}-{n}-{id}")).collect();
        for n in &ns {
            sh(&format!("ip netns add {n} && ip -n {n} link set lo up"));
        }
        Lab { ns, dir }
    }

    /// Puts namespace `ns` on `bridge` (in the calling thread's namespace) through a veth pair:
    /// `dev` with address `addr` (a /24) there, `pDEV` on the bridge here.
    pub fn attach(&self, bridge: &str, ns: &str, dev: &str, addr: &str) {
        sh(&format!(
            "ip link add {dev} netns {ns} type veth peer name p{dev} && \
             ip link set p{dev} master {bridge} up && ip -n {ns} addr add {addr}/24 dev {dev} && \
             ip -n {ns} link set {dev} up"
        ));
    }

    /// Writes `text` to `name` in the scratch directory.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        p
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in &self.ns {
            for p in sh(&format!("ip netns pids {ns} 2>/dev/null || true")).split_whitespace() {
                let _ = Command::new("kill").args(["-CONT", p]).status();
                let _ = Command::new("kill").args(["-9", p]).status();
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The daemon under test.
#[derive(Debug, Clone)]
pub enum Daemon {
    /// Debian's keepalived 2.2.7 (VRRP only, foreground).
    Keepalived,
    /// Our vrrpd, the release binary at this path.
    Vrrpd(PathBuf),
}

impl Daemon {
    /// `keepalived` or `vrrpd`.
    pub fn name(&self) -> &'static str {
        match self {
            Daemon::Keepalived => "keepalived",
            Daemon::Vrrpd(_) => "vrrpd",
        }
    }

    /// Starts it in namespace `ns` on `conf`; pid files and the control socket are `dir/TAG.*`.
    pub fn spawn(&self, ns: &str, conf: &Path, dir: &Path, tag: &str) -> Child {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]);
        match self {
            Daemon::Keepalived => {
                // `--dont-respawn`: a killed VRRP child must stay dead. Respawned, the old
                // master (priority 200, shorter Skew_Time) can come back within the new
                // master's Master_Down_Interval and keep the mastership, and the round then
                // sees no advert from the new master at all.
                c.args(["keepalived", "-n", "-l", "-P", "--dont-respawn", "-f"])
                    .arg(conf)
                    .arg("-p")
                    .arg(dir.join(format!("{tag}.pid")))
                    .arg("-r")
                    .arg(dir.join(format!("{tag}-vrrp.pid")));
            }
            Daemon::Vrrpd(bin) => {
                c.arg(bin)
                    .arg("-f")
                    .arg(conf)
                    .arg("--socket")
                    .arg(dir.join(format!("{tag}.sock")));
            }
        }
        c.stdout(Stdio::null())
            .stderr(
                std::fs::File::create(dir.join(format!("{tag}.log")))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.name()))
    }
}

/// The start of every vrrpd bench: the peer tools it needs (keepalived and `tools`), a private
/// network namespace for the bench (kept while the returned guard lives), the release vrrpd rebuilt,
/// and the context line printed. `None` when a prerequisite is missing (outside strict mode).
pub fn begin(bench: &str, tools: &[&str]) -> Option<(testkit::NetNs, Daemon)> {
    testkit::require_tool("keepalived")?;
    for t in tools {
        testkit::require_tool(t)?;
    }
    let ns = testkit::netns()?;
    let vrrpd = vrrpd();
    println!("{}", crate::context(bench));
    Some((ns, vrrpd))
}

/// The bench's numeric arguments (`-- ROUNDS ...`), in order.
pub fn number_args() -> Vec<u64> {
    std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect()
}

/// The release vrrpd, rebuilt now (a bench never times a stale binary).
pub fn vrrpd() -> Daemon {
    Daemon::Vrrpd(crate::build_one(&["-p", "cli", "--bin", "vrrpd"], "vrrpd"))
}

/// The pids of processes named `comm` in namespace `ns`, each with its parent pid.
pub fn pids_named(ns: &str, comm: &str) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for p in sh(&format!("ip netns pids {ns}")).split_whitespace() {
        let c = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        if c.trim() != comm {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        // The fields after the command name (which may hold spaces): state, ppid, ...
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        if let Ok(pid) = p.parse() {
            out.push((pid, ppid));
        }
    }
    out
}

/// The daemon's process in `ns` that sends adverts: vrrpd itself, or keepalived's VRRP child (whose
/// parent is keepalived too). Waits up to 5 s for it.
pub fn vrrp_pid(ns: &str, daemon: &Daemon) -> u32 {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let found = match daemon {
            Daemon::Vrrpd(_) => pids_named(ns, "vrrpd").first().map(|p| p.0),
            Daemon::Keepalived => {
                let all = pids_named(ns, "keepalived");
                all.iter()
                    .find(|(_, ppid)| all.iter().any(|(p, _)| p == ppid))
                    .map(|p| p.0)
            }
        };
        if let Some(p) = found {
            return p;
        }
        assert!(
            Instant::now() < end,
            "{} not running in {ns}",
            daemon.name()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// CPU time (user + system, nanoseconds, from `/proc/PID/task/*/schedstat`) of every thread of the
/// processes named `comm` in `ns`.
pub fn cpu_ns(ns: &str, comm: &str) -> u64 {
    let mut total = 0;
    for (pid, _) in pids_named(ns, comm) {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let s = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
            total += s
                .split_whitespace()
                .next()
                .and_then(|x| x.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    total
}

/// CPU time (nanoseconds, `/proc/thread-self/schedstat`) of the calling thread.
pub fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(0)
}

/// One `vrrp_instance` block: VRRPv3 on `ifname` with `vrid`, `prio`, `advert_int` seconds and the
/// one address `vip`.
pub fn instance(
    name: &str,
    ifname: &str,
    vrid: u8,
    prio: u8,
    advert_int: &str,
    vip: &str,
) -> String {
    format!(
        "vrrp_instance {name} {{\n interface {ifname}\n virtual_router_id {vrid}\n priority {prio}\n version 3\n advert_int {advert_int}\n virtual_ipaddress {{\n  {vip}\n }}\n}}\n"
    )
}

/// One instance for the failover benches: VRRPv3 with a 0.1 s interval, or VRRPv2 with 1 s.
pub fn failover_conf(ifname: &str, vrid: u8, prio: u8, v3: bool, vip: &str) -> String {
    let text = instance(
        "VI_1",
        ifname,
        vrid,
        prio,
        if v3 { "0.1" } else { "1" },
        vip,
    );
    if v3 {
        text
    } else {
        text.replace(" version 3\n", " version 2\n")
    }
}

/// The index of interface `name` in the calling thread's namespace.
pub fn ifindex(name: &str) -> u32 {
    sh(&format!("ip -o link show {name}"))
        .split(':')
        .next()
        .and_then(|i| i.trim().parse().ok())
        .unwrap_or_else(|| panic!("no interface {name}"))
}

/// The `p`-th percentile (0..=100) of sorted samples (nearest rank).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of samples (sorted here; the lower middle for an even count).
pub fn median_f64(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[3.0], 99.0), 3.0);
        assert_eq!(median_f64(vec![3.0, 1.0, 2.0]), 2.0);
    }
}
