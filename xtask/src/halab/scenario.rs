//! The scenarios: which jobs a command line asks for, and one failover sample of a job with its checks.

use super::configs;
use super::daemons::{self, Method, Node, Stack, Sync};
use super::observe::{FwWatch, Wire, WireKind};
use super::topo::{self, Fw, Net};
use super::traffic::{self, Client, End, Server};
use super::{Opts, StackSel, check_interrupted, sleep};
use anyhow::{Context, Result, bail};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

/// One scenario on one stack with one failover method; run `--failovers` times.
#[derive(Debug, Clone)]
pub struct Job {
    /// 1 to 5.
    pub scenario: u8,
    /// The daemons.
    pub stack: Stack,
    /// How fw-a fails.
    pub method: Method,
    /// Idle connections.
    pub idle: usize,
    /// Synthetic entries added on fw-a before the failover (scenario 2 with `--entries`).
    pub synthetic: usize,
}

impl Job {
    /// `s2 keepalived+conntrackd kill 50001 entries`
    pub fn title(&self) -> String {
        let mut t = format!(
            "scenario {} {} {}",
            self.scenario,
            self.stack.name(),
            self.method.name()
        );
        if self.scenario == 2 {
            t.push_str(&format!(" ({} entries)", self.entries()));
        }
        t
    }

    /// Entries the backup must hold when fw-a fails: the idle connections, the stream, the synthetic ones.
    pub fn entries(&self) -> usize {
        self.idle + 1 + self.synthetic
    }

    fn slug(&self) -> String {
        let s: String = self
            .stack
            .name()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        format!(
            "s{}-{s}-{}-{}",
            self.scenario,
            self.method.name(),
            self.entries()
        )
    }

    fn synced(&self) -> bool {
        self.stack.sync != Sync::Off
    }
}

/// The jobs of a command line, in order.
pub fn plan(opts: &Opts, stacks: impl Fn(&[StackSel]) -> Result<Vec<Stack>>) -> Result<Vec<Job>> {
    let mut jobs = Vec::new();
    let methods = |default: &[Method]| opts.methods.clone().unwrap_or_else(|| default.to_vec());
    for &sc in &opts.scenarios {
        let (sel, default_methods): (Vec<StackSel>, &[Method]) = match sc {
            5 => (StackSel::MIXED.to_vec(), &Method::ALL),
            2 | 4 => (opts.stacks.clone(), &[Method::Kill]),
            _ => (opts.stacks.clone(), &Method::ALL),
        };
        let mut list = stacks(&sel)?;
        if sc == 4 {
            list = list.iter().map(Stack::without_sync).collect();
            list.dedup();
        }
        for stack in list {
            for &method in &methods(default_methods) {
                let job = |idle, synthetic| Job {
                    scenario: sc,
                    stack: stack.clone(),
                    method,
                    idle,
                    synthetic,
                };
                match sc {
                    1 | 5 => jobs.push(job(0, 0)),
                    2 => {
                        for &e in &opts.entries {
                            jobs.push(job(
                                opts.connections,
                                e.saturating_sub(opts.connections + 1),
                            ));
                        }
                    }
                    _ => jobs.push(job(opts.connections, 0)),
                }
            }
        }
    }
    Ok(jobs)
}

/// What one failover sample measured and what went wrong.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Checks that failed (empty = the sample passed).
    pub problems: Vec<String>,
    /// Longest gap between stream echoes around the failover.
    pub gap: Option<Duration>,
    /// Longest gap of the UDP path probe (a datagram every 10 ms) around the failover.
    pub path_gap: Option<Duration>,
    /// On the wire: old master's last advert to new master's first.
    pub vrrp: Option<Duration>,
    /// Priority of the old master's last advert (0 after a graceful stop).
    pub last_prio: Option<u8>,
    /// From the trigger to the first gratuitous ARP that maps the inside VIP to the new master.
    pub garp: Option<Duration>,
    /// From the trigger to the VIP on the new master.
    pub takeover: Option<Duration>,
    /// From the VIP on the new master to its kernel table holding every synced entry.
    pub commit: Option<Duration>,
    /// The commit as the new master's sync daemon logged it (`commit has taken N seconds`, which
    /// conntrackd and ctsyncd both write): the kernel work alone, without the notify path before it.
    pub commit_logged: Option<Duration>,
    /// Entries in the backup's external cache at the failover.
    pub synced: Option<usize>,
    /// The stream's fate: `ok`, `RST`, `closed`, `error`, `stalled`.
    pub stream: String,
    /// Idle connections that answered the probe after the failover, of how many.
    pub survivors: Option<(usize, usize)>,
    /// Failback (scenario 3): gap, and survivors.
    pub failback_gap: Option<Duration>,
    /// Idle connections that answered after the failback.
    pub failback_survivors: Option<(usize, usize)>,
    /// For a broken stream: whether a new connection through the new master worked.
    pub new_conn_ok: Option<bool>,
    /// Where the logs were kept, if they were.
    pub logs: Option<String>,
}

/// Runs sample `k` (0-based) of a job: a fresh lab, one failover, its checks, the teardown. Fails only when
/// the run is interrupted; a failed check or a lab error is one of the sample's problems.
pub fn run_sample(job: &Job, opts: &Opts, k: usize) -> Result<Sample> {
    check_interrupted()?;
    let dir = topo::run_dir(&format!("{}-{k}", job.slug()))?;
    let mut s = Sample::default();
    let t = Instant::now();
    let r = sample(job, opts, &dir, &mut s);
    if let Err(e) = r {
        if super::check_interrupted().is_err() {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        s.problems.push(format!("error: {e:#}"));
    }
    if !s.problems.is_empty() || opts.keep_logs {
        let dest = crate::vm::target_dir()
            .join("ha-lab")
            .join(format!("{}-{k}", job.slug()));
        match copy_logs(&dir, &dest) {
            Ok(()) => s.logs = Some(dest.display().to_string()),
            Err(e) => s.problems.push(format!("keeping logs: {e:#}")),
        }
    }
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        s.problems
            .push(format!("removing the run directory {}: {e}", dir.display()));
    }
    eprintln!(
        "==> ha-lab: {}, failover {}/{}: {} in {:.0?}{}",
        job.title(),
        k + 1,
        opts.failovers,
        if s.problems.is_empty() {
            "ok"
        } else {
            "FAILED"
        },
        t.elapsed(),
        s.problems
            .iter()
            .map(|p| format!("\n      - {p}"))
            .collect::<String>()
    );
    Ok(s)
}

fn copy_logs(from: &Path, to: &Path) -> Result<()> {
    if to.exists() {
        std::fs::remove_dir_all(to)?;
    }
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)?.flatten() {
        let ft = e.file_type()?;
        if ft.is_dir() {
            copy_logs(&e.path(), &to.join(e.file_name()))?;
        } else if ft.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap_or(Ipv4Addr::UNSPECIFIED)
}

/// Waits until exactly `holder` holds both VIPs (`None`: nobody), up to `limit`.
fn wait_vips(net: &Net, holder: Option<Fw>, limit: Duration) -> Result<()> {
    let want: Vec<Fw> = holder.into_iter().collect();
    let t = Instant::now();
    loop {
        check_interrupted()?;
        let (vin, vout) = net.vip_holders()?;
        if vin == want && vout == want {
            return Ok(());
        }
        if t.elapsed() > limit {
            bail!(
                "after {limit:?} the VIPs are on {:?} (inside) and {:?} (outside), expected {want:?}",
                vin,
                vout
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sample(job: &Job, opts: &Opts, dir: &Path, s: &mut Sample) -> Result<()> {
    let net = Net::build(&opts.nft, dir)?;
    let mut nodes = Vec::new();
    for fw in [Fw::A, Fw::B] {
        let nd = dir.join(fw.name());
        std::fs::create_dir_all(&nd)?;
        let files = configs::render(&opts.sources, fw, &nd, &job.stack.sync_bin())?;
        nodes.push(Node::new(&net, fw, &nd, files));
    }
    let [na, nb] = &mut nodes[..] else {
        bail!("internal: two nodes");
    };
    // fw-a first, and fw-b only once fw-a is master: both start as BACKUP and would otherwise race for
    // the first Master_Down_Interval (their intervals differ by 78 ms).
    // The wire observer runs from the start, so it has every advert of the old master.
    let mut wire = Wire::start(&net.ns("cl"), "eth0")?;
    na.start(&job.stack)?;
    wait_vips(&net, Some(Fw::A), Duration::from_secs(30)).context("fw-a did not become master")?;
    nb.start(&job.stack)?;
    let b_started = Instant::now();
    sleep(Duration::from_secs(1))?;
    let mut dead = na.alive();
    dead.extend(nb.alive());
    if !dead.is_empty() {
        bail!("daemons died before the failover: {}", dead.join("; "));
    }

    let mut watch_a = FwWatch::start(&net.fw_ns(Fw::A))?;
    let mut watch_b = FwWatch::start(&net.fw_ns(Fw::B))?;
    let mut server = Server::start(&net.ns("sv"), topo::PORT)?;
    let server_addr = SocketAddr::new(ip(topo::SERVER).into(), topo::PORT);
    let mut client = Client::start(&net.ns("cl"), server_addr, job.idle)?;
    if !traffic::wait_for(&client, Duration::from_secs(30), |c| {
        c.idle_ready == job.idle && c.echoed > 10
    })? {
        let c = client.snapshot();
        bail!(
            "traffic did not start through fw-a: {}/{} idle connections echoed, {} stream echoes",
            c.idle_ready,
            job.idle,
            c.echoed
        );
    }
    if job.synthetic > 0 {
        inject(&net, dir, job.synthetic)?;
    }
    if job.synced() {
        let want = job.entries();
        let t = Instant::now();
        let mut have = 0;
        while t.elapsed() < Duration::from_secs(90) {
            check_interrupted()?;
            have = daemons::external_cache_len(&net, Fw::B, &job.stack, nb.conntrackd_conf())?;
            if have >= want {
                break;
            }
            sleep(Duration::from_millis(250))?;
        }
        s.synced = Some(have);
        if have < want {
            bail!("fw-b's external cache holds {have} entries after 90 s, expected {want}");
        }
    }
    sleep(Duration::from_millis(500))?;
    // Fail fw-a right after a fresh advert of its own, which fw-b (started before it) has heard: every
    // sample then fails at the same phase, the worst (fw-b waits a whole Master_Down_Interval). A backup
    // that has not heard an advert yet would run the timer it started with (RFC 3768 §6.4.1), and the
    // failover would measure fw-b's start instead of fw-a's death.
    let a = ip(Fw::A.addrs().0);
    let adverts_a = || {
        wire.events()
            .iter()
            .filter(|e| {
                matches!(e.kind, WireKind::Advert { src, vrid, .. } if src == a && vrid == VRID_IN)
                    && e.t > b_started + Duration::from_millis(100)
            })
            .count()
    };
    let before = adverts_a();
    let t = Instant::now();
    while adverts_a() <= before {
        if t.elapsed() > Duration::from_secs(30) {
            bail!("no VRRP advert from fw-a on LAN-in within 30 s");
        }
        sleep(Duration::from_millis(5))?;
    }

    // The failover.
    if job.synced() {
        watch_b.arm(job.entries());
    }
    let t0 = Instant::now();
    na.fail(&net, job.method)?;
    let vip = ip(topo::VIP_IN);
    let recovered = traffic::wait_for(&client, opts.deadline, |c| {
        c.stream_end != End::Open
            || watch_b
                .added_after(vip, t0)
                .is_some_and(|tv| c.last_echo_sent.is_some_and(|ts| ts > tv))
    })?;
    let t_vip = watch_b.added_after(vip, t0);
    s.takeover = t_vip.map(|t| t - t0);
    let snap = client.snapshot();
    s.stream = match snap.stream_end {
        End::Reset => "RST",
        End::Eof => "closed",
        End::Error => "error",
        End::Open if !recovered || t_vip.is_none() => "stalled",
        End::Open => "ok",
    }
    .to_string();
    let broken = s.stream != "ok";
    if broken {
        // The gaps are still open: measure them now, at the deadline.
        s.gap = Some(gap_between(&snap, t0, true));
        s.path_gap = Some(path_gap(&snap, t0, t_vip));
    }
    if broken {
        client.reconnect()?;
        s.new_conn_ok = Some(traffic::wait_for(&client, Duration::from_secs(10), |c| {
            c.reconnect_echoed
        })?);
    }
    // --hold: keep the stream running on the new master before the checks (e.g. past conntrackd's
    // PurgeTimeout, 60 s in the shipped file, which the backup's `-t` armed).
    sleep(Duration::from_secs(1) + opts.hold)?;
    if !broken {
        // Measured a second after the recovery: right after the VIP moved, a few records may still
        // have gone through fw-a (the clients follow the gratuitous ARPs within milliseconds), and a
        // gap that starts when they reach fw-b belongs to this failover too.
        let later = client.snapshot();
        s.gap = Some(gap_between(&later, t0, false));
        s.path_gap = Some(path_gap(&later, t0, t_vip));
    }
    if job.idle > 0 {
        s.survivors = Some(probe(&client, job.idle)?);
    }
    if job.synced() {
        let t = Instant::now();
        while watch_b.reached().is_none() && t.elapsed() < Duration::from_secs(10) {
            sleep(Duration::from_millis(10))?;
        }
        s.commit = match (watch_b.reached(), t_vip) {
            (Some(r), Some(v)) => Some(r.saturating_duration_since(v)),
            _ => None,
        };
        s.commit_logged = logged_commit(&nb.dir().join("conntrackd.log"));
        if s.commit.is_none() {
            s.problems.push(format!(
                "fw-b's table never held the {} synced entries ({} TCP entries created{})",
                job.entries(),
                watch_b.tcp_new(),
                if watch_b.overrun() {
                    ", event socket overrun"
                } else {
                    ""
                }
            ));
        }
    }
    let (vin, vout) = net.vip_holders()?;
    let old_may_keep = job.method == Method::Kill; // SIGKILL gives keepalived no chance to remove them
    if !vin.contains(&Fw::B) || !vout.contains(&Fw::B) {
        s.problems.push(format!(
            "after the failover fw-b does not hold both VIPs ({vin:?} / {vout:?})"
        ));
    }
    if !old_may_keep && (vin.contains(&Fw::A) || vout.contains(&Fw::A)) {
        s.problems.push(format!(
            "after the failover fw-a still holds a VIP ({vin:?} / {vout:?})"
        ));
    }
    vrrp_times(&wire, t0, s);
    let mac_b = net.mac(Fw::B, "eth1")?;
    s.garp = wire.events().iter().find_map(|e| match e.kind {
        WireKind::Garp { ip: a, mac } if a == vip && mac == mac_b && e.t >= t0 => Some(e.t - t0),
        _ => None,
    });
    if s.garp.is_none() {
        s.problems
            .push("the client's LAN saw no gratuitous ARP for the inside VIP from fw-b".into());
    }

    // Scenario 3: fw-a returns and preempts.
    if job.scenario == 3 && s.stream == "ok" {
        let t1 = Instant::now();
        na.recover(&net, job.method, &job.stack)?;
        let back = traffic::wait_for(&client, opts.deadline + Duration::from_secs(15), |c| {
            c.stream_end != End::Open
                || watch_a
                    .added_after(vip, t1)
                    .is_some_and(|tv| c.last_echo_sent.is_some_and(|ts| ts > tv))
        })?;
        if back {
            sleep(Duration::from_secs(1))?;
        }
        let snap = client.snapshot();
        s.failback_gap = Some(gap_between(&snap, t1, !back));
        if snap.stream_end != End::Open {
            s.problems.push(format!(
                "failback: the stream ended ({:?})",
                snap.stream_end
            ));
        } else if !back {
            s.problems
                .push("failback: fw-a did not take over, or the stream did not resume".into());
        }
        if job.idle > 0 {
            s.failback_survivors = Some(probe(&client, job.idle)?);
        }
        if let Err(e) = wait_vips(&net, Some(Fw::A), Duration::from_secs(5)) {
            s.problems.push(format!("failback: {e:#}"));
        }
    }

    // Drain: stop sending and let every record come back.
    client.stop_stream()?;
    let drained = traffic::wait_for(&client, Duration::from_secs(5), |c| {
        !c.sending && c.echoed >= c.sent
    })?;
    let end = client.snapshot();
    client.finish()?;
    let stats = server.stats();
    server.finish()?;
    wire.finish()?;
    watch_a.finish()?;
    watch_b.finish()?;
    let mut dead = na.alive();
    dead.extend(nb.alive());
    na.shutdown();
    nb.shutdown();
    drop(nodes);
    let mut net = net;
    let leftovers = net.teardown();

    let stream_ids = stats.get(&0).cloned().unwrap_or_default();
    let end_state = EndState {
        client_order_errors: end.order_errors,
        server_order_errors: stream_ids.order_errors,
        stream_connections: stream_ids.connections,
        client_reconnects: end.reconnects,
        server_resets: stream_ids.resets,
        drained,
        echoed: end.echoed,
        sent: end.sent,
        idle_order_errors: stats
            .iter()
            .filter(|(id, _)| **id != 0)
            .map(|(_, v)| v.order_errors)
            .sum(),
        idle_reconnects: stats
            .iter()
            .filter(|(id, v)| **id != 0 && v.connections > 1)
            .count(),
        idle_resets: end.idle_resets,
        dead,
    };
    let verdict = judge(job.synced(), s, &end_state);
    s.problems.extend(verdict);
    // Nothing may survive the teardown (a process that ignores SIGKILL, a namespace that stays).
    s.problems
        .extend(leftovers.into_iter().map(|p| format!("teardown: {p}")));
    Ok(())
}

/// What a sample's end showed, besides the [`Sample`]'s measurements: the inputs of [`judge`].
#[derive(Debug, Clone, Default)]
struct EndState {
    /// Stream records echoed out of order, seen by the client.
    client_order_errors: u64,
    /// Stream records out of order at the server.
    server_order_errors: u64,
    /// TCP connections the server saw for the stream (1 = no reconnect).
    stream_connections: u32,
    /// Reconnects of the stream by the client.
    client_reconnects: u32,
    /// RSTs the server saw on the stream.
    server_resets: u32,
    /// Every stream record came back after the sender stopped.
    drained: bool,
    /// Stream records echoed and sent.
    echoed: u64,
    sent: u64,
    /// Idle connections: out-of-order records, reconnects, resets.
    idle_order_errors: u64,
    idle_reconnects: usize,
    idle_resets: usize,
    /// Daemons that died before the teardown.
    dead: Vec<String>,
}

/// The scenario's pass/fail rules, given what the sample measured: the problems (none = pass).
///
/// With sync daemons (scenarios 1, 2, 3, 5) the stream must survive: resumed, in order, no RST, no
/// reconnect, every record back, every idle connection answering. Without them (the control, scenario 4)
/// the connections must break (the stream stalled or reset, no idle connection answering) while the new
/// master took the VIP and passes a new connection: the lab can fail, and fails for the missing state.
fn judge(synced: bool, s: &Sample, e: &EndState) -> Vec<String> {
    let mut p = Vec::new();
    if synced {
        if s.stream != "ok" {
            p.push(format!("the stream did not survive: {}", s.stream));
        }
        if e.client_order_errors > 0 || e.server_order_errors > 0 {
            p.push(format!(
                "stream records out of order: {} echoed, {} at the server",
                e.client_order_errors, e.server_order_errors
            ));
        }
        if e.stream_connections != 1 || e.client_reconnects > 0 {
            p.push(format!(
                "the stream reconnected ({} connections)",
                e.stream_connections
            ));
        }
        if e.server_resets > 0 {
            p.push("the server saw a RST on the stream".into());
        }
        if !e.drained {
            p.push(format!(
                "only {} of {} stream records came back",
                e.echoed, e.sent
            ));
        }
        for (what, v) in [
            ("after the failover", s.survivors),
            ("after the failback", s.failback_survivors),
        ] {
            if let Some((ok, n)) = v
                && ok != n
            {
                p.push(format!("{what}: {ok} of {n} idle connections survived"));
            }
        }
        if e.idle_order_errors > 0 || e.idle_reconnects > 0 || e.idle_resets > 0 {
            p.push(format!(
                "idle connections: {} order errors, {} reconnects, {} resets",
                e.idle_order_errors, e.idle_reconnects, e.idle_resets
            ));
        }
        if !e.dead.is_empty() {
            p.push(format!("daemons died: {}", e.dead.join("; ")));
        }
    } else {
        // Control: the lab must be able to fail.
        if s.stream == "ok" {
            p.push(
                "control: the stream survived a failover without sync daemons, so the lab cannot tell \
                 a working sync from none"
                    .into(),
            );
        }
        if let Some((ok, n)) = s.survivors
            && ok > 0
        {
            p.push(format!(
                "control: {ok} of {n} idle connections survived without sync"
            ));
        }
        if s.new_conn_ok != Some(true) {
            p.push(
                "control: a new connection through the new master failed too, so the break is not \
                 (only) the missing state"
                    .into(),
            );
        }
        if s.takeover.is_none() {
            p.push("control: fw-b never took the VIP".into());
        }
    }
    p
}

/// The longest of `gaps` that ends after `from`; with `open_since`, at least the
/// time since then (a gap that has not ended); with neither, at most `steady` (no gap over 50 ms: the
/// longest interval of the whole run bounds it).
fn longest(
    gaps: &[traffic::Gap],
    from: Instant,
    open_since: Option<Instant>,
    steady: Duration,
) -> Duration {
    let g = gaps
        .iter()
        .filter(|g| g.from + g.len > from)
        .map(|g| g.len)
        .max()
        .unwrap_or(Duration::ZERO);
    match open_since {
        Some(last) => g.max(Instant::now() - last),
        None if g.is_zero() => steady.min(Duration::from_millis(50)),
        None => g,
    }
}

/// The stream's longest gap between echoes after `from`; `open`: it has not resumed.
fn gap_between(snap: &traffic::Snapshot, from: Instant, open: bool) -> Duration {
    let open_since = if open { snap.last_echo } else { None };
    longest(&snap.gaps, from, open_since, snap.max_gap)
}

/// The path probe's longest gap after `from`; still open if no echo arrived after the new
/// master took the VIP.
fn path_gap(snap: &traffic::Snapshot, from: Instant, took_over: Option<Instant>) -> Duration {
    let resumed = took_over.is_some_and(|tv| snap.path_last.is_some_and(|l| l > tv));
    let open_since = if resumed { None } else { snap.path_last };
    longest(&snap.path_gaps, from, open_since, snap.path_max)
}

/// Each idle connection sends one record; returns how many got their echo.
fn probe(client: &Client, n: usize) -> Result<(usize, usize)> {
    let round = client.snapshot().probe_rounds + 1;
    client.probe()?;
    // A surviving connection answers at once through the new master; a broken one never does. TCP's first
    // retransmissions (0.2, 0.6, 1.4, 3 s) fit in the wait.
    traffic::wait_for(client, Duration::from_secs(8), |c| {
        c.probe_rounds == round && c.probe_pending == 0
    })?;
    let c = client.snapshot();
    Ok((c.probe_ok, n))
}

/// The last `commit has taken N seconds` of a sync daemon's log file.
fn logged_commit(log: &Path) -> Option<Duration> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().rev().find_map(|l| {
        let secs = l
            .split("commit has taken ")
            .nth(1)?
            .split_whitespace()
            .next()?;
        Duration::try_from_secs_f64(secs.parse().ok()?).ok()
    })
}

/// The inside instance's virtual router id (VI_1 in the shipped keepalived.conf).
const VRID_IN: u8 = 61;

/// VRRP failover on the wire, as the client's LAN saw it: the old master's last advert to the new
/// master's first, after the trigger.
fn vrrp_times(wire: &Wire, t0: Instant, s: &mut Sample) {
    let events = wire.events();
    let (a, b) = (ip(Fw::A.addrs().0), ip(Fw::B.addrs().0));
    let first_b = events.iter().find_map(|e| match e.kind {
        WireKind::Advert { src, prio, vrid }
            if src == b && vrid == VRID_IN && e.t >= t0 && prio > 0 =>
        {
            Some(e.t)
        }
        _ => None,
    });
    let Some(tb) = first_b else { return };
    let last_a = events.iter().rev().find_map(|e| match e.kind {
        WireKind::Advert { src, prio, vrid } if src == a && vrid == VRID_IN && e.t <= tb => {
            Some((e.t, prio))
        }
        _ => None,
    });
    if let Some((ta, prio)) = last_a {
        s.vrrp = Some(tb.saturating_duration_since(ta));
        s.last_prio = Some(prio);
    }
}

/// Adds `n` synthetic ESTABLISHED TCP entries on fw-a (conntrack-tools' `conntrack -R`), shaped like the
/// lab's NATed connections: 172.16.x.y:40000 -> server:9, reply to the outside VIP on a distinct port.
fn inject(net: &Net, dir: &Path, n: usize) -> Result<()> {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(n * 160);
    for i in 0..n {
        let (hi, lo) = ((i >> 8) & 0xff, i & 0xff);
        let port = 10_000 + i;
        let _ = writeln!(
            text,
            "-I -p tcp -s 172.16.{hi}.{lo} -d {srv} --sport 40000 --dport 9 -r {srv} -q {vip} \
             --reply-port-src 9 --reply-port-dst {port} --state ESTABLISHED -t 86400 -u SEEN_REPLY,ASSURED",
            srv = topo::SERVER,
            vip = topo::VIP_OUT,
        );
    }
    let file = dir.join("synthetic.conntrack");
    std::fs::write(&file, text)?;
    let ns = net.fw_ns(Fw::A);
    topo::run(&[
        "ip",
        "netns",
        "exec",
        &ns,
        "conntrack",
        "-R",
        &file.to_string_lossy(),
    ])
    .context("loading synthetic entries on fw-a")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sample in which everything went well, and its end state.
    fn good(idle: usize) -> (Sample, EndState) {
        let s = Sample {
            stream: "ok".into(),
            takeover: Some(Duration::from_millis(9700)),
            survivors: (idle > 0).then_some((idle, idle)),
            ..Sample::default()
        };
        let e = EndState {
            stream_connections: 1,
            drained: true,
            echoed: 3000,
            sent: 3000,
            ..EndState::default()
        };
        (s, e)
    }

    /// What the control looks like when it does its job: the stream stalled, nothing survived, a new
    /// connection through the new master works.
    fn broken(idle: usize) -> (Sample, EndState) {
        let (mut s, mut e) = good(idle);
        s.stream = "stalled".into();
        s.survivors = (idle > 0).then_some((0, idle));
        s.new_conn_ok = Some(true);
        e.drained = false;
        e.echoed = 1000;
        (s, e)
    }

    #[test]
    fn a_surviving_stream_passes_with_sync_and_fails_the_control() {
        let (s, e) = good(200);
        assert_eq!(judge(true, &s, &e), Vec::<String>::new());
        let p = judge(false, &s, &e);
        assert!(p.iter().any(|p| p.contains("stream survived")), "{p:?}");
        assert!(p.iter().any(|p| p.contains("200 of 200")), "{p:?}");
    }

    #[test]
    fn a_broken_stream_fails_with_sync_and_passes_the_control() {
        let (s, e) = broken(200);
        assert_eq!(judge(false, &s, &e), Vec::<String>::new());
        let p = judge(true, &s, &e);
        assert!(p.iter().any(|p| p.contains("stalled")), "{p:?}");
        assert!(p.iter().any(|p| p.contains("0 of 200")), "{p:?}");
        assert!(p.iter().any(|p| p.contains("1000 of 3000")), "{p:?}");
    }

    #[test]
    fn every_kind_of_damage_to_a_synced_stream_fails() {
        type Hurt = fn(&mut Sample, &mut EndState);
        let damage: [(&str, Hurt); 9] = [
            ("RST", |s, _| s.stream = "RST".into()),
            ("out of order", |_, e| e.client_order_errors = 1),
            ("out of order", |_, e| e.server_order_errors = 1),
            ("reconnected", |_, e| e.stream_connections = 2),
            ("reconnected", |_, e| e.client_reconnects = 1),
            ("RST on the stream", |_, e| e.server_resets = 1),
            ("199 of 200", |s, _| s.survivors = Some((199, 200))),
            ("1 resets", |_, e| e.idle_resets = 1),
            ("daemons died", |_, e| e.dead = vec!["ctsyncd".into()]),
        ];
        for (want, hurt) in damage {
            let (mut s, mut e) = good(200);
            hurt(&mut s, &mut e);
            let p = judge(true, &s, &e);
            assert!(p.iter().any(|p| p.contains(want)), "{want}: {p:?}");
        }
    }

    #[test]
    fn the_control_fails_when_the_break_is_not_the_missing_state() {
        // Some idle connections survived without sync.
        let (mut s, e) = broken(200);
        s.survivors = Some((1, 200));
        assert!(!judge(false, &s, &e).is_empty());
        // A new connection fails too: the path, not the state, is broken.
        let (mut s, e) = broken(200);
        s.new_conn_ok = Some(false);
        assert!(!judge(false, &s, &e).is_empty());
        // fw-b never took over.
        let (mut s, e) = broken(200);
        s.takeover = None;
        assert!(!judge(false, &s, &e).is_empty());
    }
}
