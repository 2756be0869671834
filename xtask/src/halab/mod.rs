//! `cargo xtask ha-lab`: established TCP connections through a pair of stateful NAT firewalls survive the
//! death of the active firewall, measured side by side for keepalived + conntrackd and for our vrrpd +
//! ctsyncd. See docs/ha-lab.md for the operator's view.
//!
//! Layout of the module:
//! * `topo`: namespaces, bridges, links, addresses, ruleset, sysctls; teardown and the sweep of stale labs;
//! * `configs`: conntrack-tools' shipped example files and the substitution list that adapts them;
//! * `daemons`: the stacks, starting and failing a firewall;
//! * `traffic`: the echo server and the client (stream + idle connections);
//! * `observe`: the wire observer (VRRP adverts, GARPs) and the firewall watches (VIPs, conntrack count);
//! * `scenario`: one failover sample of a scenario, and its checks;
//! * `report`: tables and medians;
//! * `sys`: the few raw system calls.
//!
//! Every sample builds a fresh lab and tears it down, so samples are independent and a failed sample
//! leaves nothing behind. Ctrl-C (or SIGTERM, SIGHUP) stops at the next check and tears down; a lab left
//! by a run that was SIGKILLed is removed by the next run.

mod configs;
mod daemons;
mod nsthread;
mod observe;
mod report;
mod scenario;
mod sys;
mod topo;
mod traffic;

use anyhow::{Context, Result, bail};
use daemons::{Method, Stack, Sync, Vrrp};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const USAGE: &str =
    "usage: cargo xtask ha-lab [--stack ours|keepalived|mixed|all[,..]] [--scenario N[,N..]]
                       [--method kill|unplug|stop|all[,..]] [--failovers N] [--connections N]
                       [--entries N[,N..]] [--deadline SECS] [--hold SECS] [--configs DIR] [--nft FILE]
                       [--vrrpd PATH] [--ctsyncd PATH] [--keep-logs] [--print-configs] [--ci]

Stacks: keepalived (+conntrackd), ours (vrrpd+ctsyncd), mixed (vrrpd+conntrackd and keepalived+ctsyncd),
all, or one pair by name (vrrpd+conntrackd, keepalived+ctsyncd, ...).

Scenarios (each sample builds a fresh lab, fails fw-a over to fw-b, checks, tears down):
  1  a steady TCP stream (a record every 10 ms, echoed) survives the failover: in order, no RST,
     no reconnect; methods: kill (SIGKILL of both daemons), unplug (LAN cables), stop (graceful)
  2  1,000 mostly idle connections survive (each sends one more record and gets its echo); also
     measures the time to commit with --entries synced entries (default 1000 and 50000)
  3  failback: fw-a comes back (daemons restarted / cables plugged) and preempts; same checks again
  4  control: the same failover without sync daemons must break the connections
  5  mixed stacks (vrrpd+conntrackd, keepalived+ctsyncd) pass scenario 1

Defaults: --stack keepalived,ours --scenario 1,2,3,4,5 --method all (kill for 2 and 4) --failovers 5
          --connections 1000 --entries 1000,50000 --deadline 30 --hold 0
--deadline: how long a failover may take before the stream counts as stalled
--hold: how long the connections run on the new master before they are checked
--vrrpd, --ctsyncd: use these binaries (copied at the start) instead of building target/release ones
--ci is --stack ours --scenario 1,4 --method kill --failovers 1 --connections 200 --deadline 20, with
     the debug build of vrrpd and ctsyncd (cargo xtask ci)";

static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Fails once Ctrl-C (SIGINT), SIGTERM or SIGHUP arrived; every wait loop of the lab calls it.
pub fn check_interrupted() -> Result<()> {
    if STOP.get().is_some_and(|s| s.load(Ordering::Relaxed)) {
        bail!("interrupted");
    }
    Ok(())
}

/// Sleeps `d` in small steps, failing early when interrupted.
pub fn sleep(d: Duration) -> Result<()> {
    let end = std::time::Instant::now() + d;
    loop {
        check_interrupted()?;
        let now = std::time::Instant::now();
        if now >= end {
            return Ok(());
        }
        std::thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}

/// One stack to run: whether its VRRP daemon is our vrrpd (else keepalived) and its sync daemon our
/// ctsyncd (else conntrackd).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackSel {
    vrrpd: bool,
    ctsyncd: bool,
}

impl StackSel {
    const KEEPALIVED: StackSel = StackSel {
        vrrpd: false,
        ctsyncd: false,
    };
    const OURS: StackSel = StackSel {
        vrrpd: true,
        ctsyncd: true,
    };
    /// The two mixed pairs: vrrpd + conntrackd, keepalived + ctsyncd.
    const MIXED: [StackSel; 2] = [
        StackSel {
            vrrpd: true,
            ctsyncd: false,
        },
        StackSel {
            vrrpd: false,
            ctsyncd: true,
        },
    ];

    fn parse(w: &str) -> Result<Vec<StackSel>> {
        Ok(match w {
            "ours" | "vrrpd+ctsyncd" => vec![StackSel::OURS],
            "keepalived" | "keepalived+conntrackd" => vec![StackSel::KEEPALIVED],
            "mixed" => StackSel::MIXED.to_vec(),
            "vrrpd+conntrackd" => vec![StackSel::MIXED[0]],
            "keepalived+ctsyncd" => vec![StackSel::MIXED[1]],
            "all" => {
                let mut v = vec![StackSel::KEEPALIVED, StackSel::OURS];
                v.extend(StackSel::MIXED);
                v
            }
            _ => bail!(
                "unknown stack `{w}` (ours, keepalived, mixed, all, or a pair such as vrrpd+conntrackd)"
            ),
        })
    }
}

/// Parsed command line.
#[derive(Debug, Clone)]
pub struct Opts {
    stacks: Vec<StackSel>,
    scenarios: Vec<u8>,
    methods: Option<Vec<Method>>,
    failovers: usize,
    connections: usize,
    entries: Vec<usize>,
    deadline: Duration,
    hold: Duration,
    sources: configs::Sources,
    nft: String,
    keep_logs: bool,
    print_configs: bool,
    vrrpd: Option<PathBuf>,
    ctsyncd: Option<PathBuf>,
    /// Build our daemons in release mode (the figures); `--ci` uses the debug build that CI's `cargo test`
    /// step has already made, instead of a release build from scratch on a fresh machine.
    release: bool,
}

fn list<T>(v: &str, f: impl Fn(&str) -> Result<Vec<T>>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for w in v.split(',').filter(|w| !w.is_empty()) {
        out.extend(f(w)?);
    }
    if out.is_empty() {
        bail!("empty list `{v}`");
    }
    Ok(out)
}

fn parse_opts(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        stacks: vec![StackSel::KEEPALIVED, StackSel::OURS],
        scenarios: vec![1, 2, 3, 4, 5],
        methods: None,
        failovers: 5,
        connections: 1000,
        entries: vec![1000, 50_000],
        deadline: Duration::from_secs(30),
        hold: Duration::ZERO,
        sources: configs::Sources::shipped(),
        nft: topo::DEFAULT_NFT.to_string(),
        keep_logs: false,
        print_configs: false,
        vrrpd: None,
        ctsyncd: None,
        release: true,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .with_context(|| format!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--stack" => o.stacks = list(&val()?, StackSel::parse)?,
            "--scenario" => {
                o.scenarios = list(&val()?, |w| match w.parse::<u8>() {
                    Ok(n @ 1..=5) => Ok(vec![n]),
                    _ => bail!("unknown scenario `{w}` (1 to 5)"),
                })?
            }
            "--method" => {
                o.methods = Some(list(&val()?, |w| {
                    if w == "all" {
                        Ok(Method::ALL.to_vec())
                    } else {
                        Ok(vec![Method::parse(w)?])
                    }
                })?)
            }
            "--failovers" => {
                o.failovers = val()?.parse().context("--failovers N")?;
                if o.failovers == 0 {
                    bail!("--failovers must be at least 1");
                }
            }
            "--connections" => o.connections = val()?.parse().context("--connections N")?,
            "--entries" => {
                o.entries = list(&val()?, |w| Ok(vec![w.parse().context("--entries N")?]))?
            }
            "--deadline" => {
                o.deadline = Duration::from_secs(val()?.parse().context("--deadline SECS")?)
            }
            "--hold" => o.hold = Duration::from_secs(val()?.parse().context("--hold SECS")?),
            "--configs" => o.sources = configs::Sources::dir(Path::new(&val()?)),
            "--nft" => {
                let p = val()?;
                o.nft = std::fs::read_to_string(&p).with_context(|| format!("reading {p}"))?;
            }
            "--keep-logs" => o.keep_logs = true,
            "--vrrpd" => o.vrrpd = Some(PathBuf::from(val()?)),
            "--ctsyncd" => o.ctsyncd = Some(PathBuf::from(val()?)),
            "--print-configs" => o.print_configs = true,
            "--ci" => {
                o.stacks = vec![StackSel::OURS];
                o.scenarios = vec![1, 4];
                o.methods = Some(vec![Method::Kill]);
                o.failovers = 1;
                o.connections = 200;
                o.entries = vec![201];
                // Our stack resumes within milliseconds of fw-b's takeover (9.7 s); 20 s leaves
                // 10 s of margin on a loaded machine and ends the control's stall 10 s sooner.
                o.deadline = Duration::from_secs(20);
                o.release = false;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    if o.entries.iter().any(|&e| e > o.connections + 1 + 55_000) {
        bail!("--entries: at most 55,000 synthetic entries above the connections");
    }
    Ok(o)
}

/// Our binaries that the chosen stacks need, built in release mode (the lab measures them).
#[derive(Debug, Clone, Default)]
struct Ours {
    vrrpd: Option<PathBuf>,
    ctsyncd: Option<PathBuf>,
}

/// Our binaries that `need` names (`(vrrpd, ctsyncd)`): the given ones, copied into a run directory (so
/// that a rebuild during the run does not change them), or this tree's, built in release mode.
fn ours_binaries(opts: &Opts, need: (bool, bool)) -> Result<(Ours, Option<PathBuf>)> {
    let given = [
        (need.0, &opts.vrrpd, "vrrpd"),
        (need.1, &opts.ctsyncd, "ctsyncd"),
    ];
    if given.iter().all(|(_, p, _)| p.is_none()) {
        return Ok((build_ours(need, opts.release)?, None));
    }
    let dir = topo::run_dir("bin")?;
    let mut ours = Ours::default();
    for (needed, path, name) in given {
        if !needed {
            continue;
        }
        let from = path
            .as_ref()
            .with_context(|| format!("the chosen stacks need {name}: give --{name} PATH too"))?;
        let to = dir.join(name);
        std::fs::copy(from, &to).with_context(|| format!("copying {}", from.display()))?;
        match name {
            "vrrpd" => ours.vrrpd = Some(to),
            _ => ours.ctsyncd = Some(to),
        }
    }
    Ok((ours, Some(dir)))
}

fn build_ours(need: (bool, bool), release: bool) -> Result<Ours> {
    let root = crate::workspace_root();
    let bins: Vec<&str> = [(need.0, "vrrpd"), (need.1, "ctsyncd")]
        .into_iter()
        .filter(|(n, _)| *n)
        .map(|(_, b)| b)
        .collect();
    for bin in &bins {
        let src = root.join("cli/src/bin").join(format!("{bin}.rs"));
        if !src.exists() {
            bail!(
                "the chosen stacks need {bin}, and {} does not exist on this branch yet (merge main \
                 once it has landed); `--stack keepalived` runs without it",
                src.display()
            );
        }
    }
    let profile = if release { "release" } else { "debug" };
    eprintln!("==> ha-lab: building {} ({profile})", bins.join(" and "));
    let mut cmd = std::process::Command::new("cargo");
    cmd.args(["build", "--locked", "-p", "cli"]);
    if release {
        cmd.arg("--release");
    }
    for bin in &bins {
        cmd.args(["--bin", bin]);
    }
    let status = cmd
        .current_dir(&root)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!(
            "cargo build{} -p cli --bin {} failed",
            if release { " --release" } else { "" },
            bins.join(" --bin ")
        );
    }
    let rel = crate::vm::target_dir().join(profile);
    Ok(Ours {
        vrrpd: need.0.then(|| rel.join("vrrpd")),
        ctsyncd: need.1.then(|| rel.join("ctsyncd")),
    })
}

fn stacks_for(sel: &[StackSel], ours: &Ours) -> Result<Vec<Stack>> {
    let mut out: Vec<Stack> = Vec::new();
    for s in sel {
        let vrrp = match (s.vrrpd, &ours.vrrpd) {
            (false, _) => Vrrp::Keepalived,
            (true, Some(p)) => Vrrp::Vrrpd(p.clone()),
            (true, None) => bail!("internal: vrrpd was not built"),
        };
        let sync = match (s.ctsyncd, &ours.ctsyncd) {
            (false, _) => Sync::Conntrackd,
            (true, Some(p)) => Sync::Ctsyncd(p.clone()),
            (true, None) => bail!("internal: ctsyncd was not built"),
        };
        let st = Stack { vrrp, sync };
        if !out.contains(&st) {
            out.push(st);
        }
    }
    Ok(out)
}

/// `cargo xtask ha-lab ...`
pub fn run(args: &[String]) -> Result<()> {
    let opts = parse_opts(args)?;
    if opts.print_configs {
        return print_configs(&opts);
    }
    if !is_root() {
        bail!("the HA lab needs root (network namespaces)");
    }
    crate::deps::install()?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }
    let _ = STOP.set(stop);
    let swept = topo::sweep_stale();
    if !swept.is_empty() {
        eprintln!(
            "==> ha-lab: removed {} namespaces of dead runs: {}",
            swept.len(),
            swept.join(" ")
        );
    }
    let nofile = sys::raise_nofile_limit()?;
    let fds_needed = 2 * opts.connections as u64 + 64;
    if nofile < fds_needed {
        bail!(
            "--connections {}: needs {fds_needed} open files, the hard limit is {nofile}",
            opts.connections
        );
    }

    let mut chosen = opts.stacks.clone();
    if opts.scenarios.contains(&5) {
        chosen.extend(StackSel::MIXED);
    }
    let need = (
        chosen.iter().any(|s| s.vrrpd),
        chosen.iter().any(|s| s.ctsyncd),
    );
    let (ours, bin_dir) = if need.0 || need.1 {
        ours_binaries(&opts, need)?
    } else {
        (Ours::default(), None)
    };
    let _bin_dir = bin_dir.map(RemoveOnDrop);
    let jobs = scenario::plan(&opts, |sel| stacks_for(sel, &ours))?;
    eprintln!(
        "==> ha-lab: {} jobs x {} failovers; configs from {}",
        jobs.len(),
        opts.failovers,
        opts.sources
            .keepalived
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    let started = std::time::Instant::now();
    // Round robin: failover k of every job, then failover k+1 of every job. The load that other work puts
    // on the machine then weighs on every stack alike, and the stacks' medians compare fairly.
    let mut results: Vec<(scenario::Job, Vec<scenario::Sample>)> =
        jobs.iter().map(|j| (j.clone(), Vec::new())).collect();
    let ran = (|| -> Result<()> {
        for k in 0..opts.failovers {
            for (job, samples) in &mut results {
                samples.push(scenario::run_sample(job, &opts, k)?);
            }
        }
        Ok(())
    })();
    // Whatever happened (an interrupt included), the run must leave nothing behind.
    drop(_bin_dir);
    let left = topo::leftovers_of_this_run();
    if !left.is_empty() {
        eprintln!("xtask ha-lab: left behind:\n  {}", left.join("\n  "));
        let still = topo::remove_leftovers_of_this_run();
        if still.is_empty() {
            eprintln!("xtask ha-lab: removed them");
        } else {
            eprintln!("xtask ha-lab: could not remove:\n  {}", still.join("\n  "));
        }
    }
    ran?;
    if !left.is_empty() {
        bail!("the run left {} things behind (listed above)", left.len());
    }
    for (job, samples) in &results {
        report::print_job(job, samples);
    }
    report::print_summary(&results, started.elapsed());
    report::print_comparison(&results, opts.sources.shipped);
    let failed: Vec<String> = results
        .iter()
        .filter(|(_, r)| r.iter().any(|s| !s.problems.is_empty()))
        .map(|(j, _)| j.title())
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} of {} jobs failed: {}",
            failed.len(),
            results.len(),
            failed.join("; ")
        );
    }
    Ok(())
}

/// Removes a directory when dropped (the copied binaries, whatever way the run ends).
#[derive(Debug)]
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn print_configs(opts: &Opts) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("halab-print-{}", std::process::id()));
    let _remove = RemoveOnDrop(dir.clone());
    for fw in [topo::Fw::A, topo::Fw::B] {
        let node = dir.join(fw.name());
        std::fs::create_dir_all(&node)?;
        let text = configs::describe(&opts.sources, fw, &node, Path::new("/usr/sbin/conntrackd"))?;
        // The run directory differs every run: show it as $RUN.
        println!(
            "{}",
            text.replace(&dir.to_string_lossy().into_owned(), "$RUN")
        );
    }
    println!(
        "(CONNTRACKD_BIN stays /usr/sbin/conntrackd for conntrackd; it becomes target/release/ctsyncd \
         for ctsyncd, and /bin/true in scenario 4, which runs no sync daemon.)\n"
    );
    println!("## firewall ruleset (both firewalls)\n{}", opts.nft);
    Ok(())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}
