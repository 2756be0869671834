//! A two-namespace lab for sync daemons: namespaces `NAME_PID_A`/`_B` joined by a veth pair (UDP) or
//! a bridge namespace (multicast), a daemon in each (ctsyncd or conntrackd), conntrack-tools to make
//! entries. Everything is named per run and removed on drop; daemons are stopped by PID.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The ctsyncd under test: `CTSYNCD_BIN`, else the binary cargo built for these tests.
pub fn ctsyncd_bin() -> String {
    std::env::var("CTSYNCD_BIN")
        .ok()
        .or(option_env!("CARGO_BIN_EXE_ctsyncd").map(String::from))
        .unwrap_or_else(|| "target/release/ctsyncd".into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Daemon {
    Ctsyncd,
    Conntrackd,
}

impl Daemon {
    pub fn bin(self) -> String {
        match self {
            Daemon::Ctsyncd => ctsyncd_bin(),
            Daemon::Conntrackd => testkit::which("conntrackd")
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "/usr/sbin/conntrackd".into()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    Udp,
    Multicast,
}

pub fn sh(cmd: &str) -> std::process::Output {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

#[track_caller]
pub fn sh_ok(cmd: &str) -> String {
    let o = sh(cmd);
    assert!(
        o.status.success(),
        "`{cmd}` failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Prerequisites: root, ip, conntrack, conntrackd. False (after a SKIP line) outside CI when missing.
pub fn ready() -> bool {
    testkit::require("root", testkit::is_root())
        && testkit::require_tool("ip").is_some()
        && testkit::require_tool("conntrack").is_some()
        && testkit::require_tool("conntrackd").is_some()
}

pub struct Node {
    pub ns: String,
    pub conf: PathBuf,
    pub daemon: Daemon,
    pub addr: String,
}

impl Node {
    pub fn exec(&self, cmd: &str) -> std::process::Output {
        sh(&format!("ip netns exec {} {cmd}", self.ns))
    }
    #[track_caller]
    pub fn exec_ok(&self, cmd: &str) -> String {
        sh_ok(&format!("ip netns exec {} {cmd}", self.ns))
    }
    /// Runs a client command of this node's daemon.
    pub fn client(&self, args: &str) -> std::process::Output {
        self.exec(&format!(
            "{} -C {} {args}",
            self.daemon.bin(),
            self.conf.display()
        ))
    }
    pub fn client_ok(&self, args: &str) -> String {
        let o = self.client(args);
        assert!(
            o.status.success(),
            "{:?} {args}: {}",
            self.daemon,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    pub fn start(&self) {
        let o = self.exec(&format!(
            "{} -C {} -d",
            self.daemon.bin(),
            self.conf.display()
        ));
        assert!(
            o.status.success(),
            "{:?} -d failed: {}",
            self.daemon,
            String::from_utf8_lossy(&o.stderr)
        );
    }
    /// Stops the daemon: `-k`, then SIGKILL to whatever still runs in the namespace.
    pub fn stop(&self) {
        let _ = self.client("-k");
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && !self.pids().is_empty() {
            std::thread::sleep(Duration::from_millis(50));
        }
        for p in self.pids() {
            let _ = sh(&format!("kill -9 {p}"));
        }
    }
    pub fn pids(&self) -> Vec<u32> {
        String::from_utf8_lossy(&sh(&format!("ip netns pids {}", self.ns)).stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
    /// Lines of `-e` (or `-i`), with the `[active since ..]`/`[expires in ..]` suffixes removed, sorted.
    pub fn cache(&self, flag: &str) -> BTreeSet<String> {
        let out = self.client_ok(flag);
        out.lines()
            .map(timeless)
            .filter(|l| !l.is_empty())
            .collect()
    }
    /// The kernel table as `conntrack -L` prints it, timeouts removed, sorted.
    pub fn table(&self) -> BTreeSet<String> {
        let out = self.exec_ok("conntrack -L 2>/dev/null");
        out.lines()
            .map(|l| {
                let mut t: Vec<&str> = l.split_whitespace().collect();
                if t.len() > 2 && t[2].chars().all(|c| c.is_ascii_digit()) {
                    t.remove(2);
                }
                t.join(" ")
            })
            .collect()
    }
    /// Waits until `cond(-e lines)` holds (or the timeout passes); returns the last lines seen.
    pub fn wait_external(
        &self,
        timeout: Duration,
        cond: impl Fn(&BTreeSet<String>) -> bool,
    ) -> BTreeSet<String> {
        self.wait_cache("-e", timeout, cond)
    }

    /// Polls a cache (`-e` or `-i`) until `cond` holds or `timeout` passes; returns the last read.
    pub fn wait_cache(
        &self,
        which: &str,
        timeout: Duration,
        cond: impl Fn(&BTreeSet<String>) -> bool,
    ) -> BTreeSet<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let e = self.cache(which);
            if cond(&e) || Instant::now() > deadline {
                return e;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A `-i`/`-e` line without its `[active since ..]`/`[expires in ..]` suffix, spaces collapsed.
pub fn timeless(l: &str) -> String {
    let l = l.find(" [active since").map_or(l, |i| &l[..i]);
    let l = l.find(" [expires in").map_or(l, |i| &l[..i]);
    l.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub struct Lab {
    /// Helper processes (relays) to stop by PID.
    pub helpers: std::cell::RefCell<Vec<std::process::Child>>,
    pub nodes: Vec<Node>,
    pub bridge: Option<String>,
    pub dir: PathBuf,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for mut c in self.helpers.borrow_mut().drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in &self.nodes {
            n.stop();
        }
        for n in &self.nodes {
            let _ = sh(&format!("ip netns del {}", n.ns));
        }
        if let Some(b) = &self.bridge {
            let _ = sh(&format!("ip netns del {b}"));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct Opts {
    /// Send through a relay at 10.77.0.99 (in its own namespace on the bridge) instead of to the peer.
    pub relay: bool,
    pub mode: &'static str,
    pub mode_body: String,
    pub link: LinkKind,
    pub options: String,
    pub general: String,
}

impl Opts {
    pub fn new(mode: &'static str, link: LinkKind) -> Opts {
        Opts {
            relay: false,
            mode,
            mode_body: String::new(),
            link,
            options: String::new(),
            general: String::new(),
        }
    }
}

fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{tag}{}_{}",
        std::process::id() % 100_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Builds a lab with one node per daemon: addresses 10.77.0.(i+1)/24.
pub fn lab(tag: &str, daemons: &[Daemon], o: &Opts) -> Lab {
    let id = unique(tag);
    let dir = std::env::temp_dir().join(format!("ctsyncd-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut lab = Lab {
        helpers: std::cell::RefCell::new(Vec::new()),
        nodes: Vec::new(),
        bridge: None,
        dir: dir.clone(),
    };
    let names: Vec<String> = (0..daemons.len()).map(|i| format!("{id}n{i}")).collect();
    for n in &names {
        sh_ok(&format!("ip netns add {n} && ip -n {n} link set lo up"));
        // Register at once so that a failing setup still removes it.
        lab.nodes.push(Node {
            ns: n.clone(),
            conf: PathBuf::new(),
            daemon: Daemon::Ctsyncd,
            addr: String::new(),
        });
    }
    if daemons.len() == 2 && o.link == LinkKind::Udp && !o.relay {
        sh_ok(&format!(
            "ip -n {} link add s0 type veth peer name s0 netns {}",
            names[0], names[1]
        ));
    } else {
        let br = format!("{id}br");
        sh_ok(&format!(
            "ip netns add {br} && ip -n {br} link add br0 type bridge && ip -n {br} link set br0 up"
        ));
        lab.bridge = Some(br.clone());
        for (i, n) in names.iter().enumerate() {
            sh_ok(&format!(
                "ip -n {br} link add p{i} type veth peer name s0 netns {n} && ip -n {br} link set p{i} master br0 && ip -n {br} link set p{i} up"
            ));
        }
        if o.relay {
            sh_ok(&format!(
                "ip -n {br} link add pr type veth peer name rl && ip -n {br} link set pr master br0 && ip -n {br} link set pr up && ip -n {br} addr add 10.77.0.99/24 dev rl && ip -n {br} link set rl up"
            ));
        }
    }
    for (i, n) in names.iter().enumerate() {
        sh_ok(&format!(
            "ip -n {n} addr add 10.77.0.{}/24 dev s0 && ip -n {n} link set s0 up",
            i + 1
        ));
    }
    for (i, d) in daemons.iter().enumerate() {
        let addr = format!("10.77.0.{}", i + 1);
        let peer = if o.relay {
            "10.77.0.99".to_string()
        } else {
            format!("10.77.0.{}", if i == 0 { 2 } else { 1 })
        };
        let link = match o.link {
            LinkKind::Udp => format!(
                "UDP {{\n\t\tIPv4_address {addr}\n\t\tIPv4_Destination_Address {peer}\n\t\tPort 3780\n\t\tInterface s0\n\t\tSndSocketBuffer 1249280\n\t\tRcvSocketBuffer 1249280\n\t\tChecksum on\n\t}}"
            ),
            LinkKind::Multicast => format!(
                "Multicast {{\n\t\tIPv4_address 225.0.0.50\n\t\tGroup 3780\n\t\tIPv4_interface {addr}\n\t\tInterface s0\n\t\tSndSocketBuffer 1249280\n\t\tRcvSocketBuffer 1249280\n\t\tChecksum on\n\t}}"
            ),
        };
        let conf = dir.join(format!("n{i}.conf"));
        let text = format!(
            "Sync {{\n\tMode {} {{\n{}\n\t}}\n\t{link}\n\tOptions {{\n{}\n\t}}\n}}\nGeneral {{\n\tSystemd off\n\tHashSize 8192\n\tHashLimit 262144\n\tLogFile {d}/n{i}.log\n\tSyslog off\n\tLockFile {d}/n{i}.lock\n\tUNIX {{\n\t\tPath {d}/n{i}.ctl\n\t}}\n\tNetlinkBufferSize 2097152\n\tNetlinkBufferSizeMaxGrowth 8388608\n{}\n}}\n",
            o.mode,
            o.mode_body,
            o.options,
            o.general,
            d = dir.display()
        );
        std::fs::write(&conf, text).unwrap();
        lab.nodes[i] = Node {
            ns: names[i].clone(),
            conf,
            daemon: *d,
            addr,
        };
    }
    lab
}

/// The entries every interop test creates on the sending side, one `conntrack -I` argument list each.
pub const ENTRIES: &[&str] = &[
    "-p tcp -s 192.168.1.10 -d 192.168.1.20 --sport 40000 --dport 80 --state ESTABLISHED -t 300 -u ASSURED,SEEN_REPLY",
    "-p udp -s 192.168.1.10 -d 192.168.1.53 --sport 5353 --dport 53 -t 60 -m 7",
    "-p icmp -s 192.168.1.10 -d 192.168.1.1 --icmp-type 8 --icmp-code 0 --icmp-id 4321 -t 30",
    "-p udp -s 2001:db8::1 -d 2001:db8::2 --sport 1000 --dport 2000 -t 60",
    "-p icmpv6 -s 2001:db8::1 -d 2001:db8::2 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 99 -t 30",
    "-p udp -s 192.168.2.10 -d 192.168.2.20 --sport 111 --dport 222 -t 60 -w 5",
    "-p tcp -s 192.168.1.11 -d 198.51.100.7 --sport 41000 --dport 443 --state ESTABLISHED -t 300 --src-nat 203.0.113.1:61000",
    "-p udp -s 198.51.100.9 -d 203.0.113.1 --sport 5000 --dport 53 -t 60 --dst-nat 192.168.1.53:5353",
    "-p tcp -s 2001:db8::10 -d 2001:db8:1::20 --sport 3000 --dport 443 --state ESTABLISHED -t 300 --src-nat 2001:db8:ffff::1",
];

/// Starts a two-node lab's daemons (B first), gives them 800 ms to meet, then makes [`ENTRIES`] on A
/// and `local` on B.
pub fn start_with_entries(lab: &Lab, local: &[&str]) {
    let (a, b) = (&lab.nodes[0], &lab.nodes[1]);
    b.start();
    a.start();
    std::thread::sleep(Duration::from_millis(800));
    create_entries(a, ENTRIES);
    create_entries(b, local);
}

pub fn create_entries(n: &Node, list: &[&str]) {
    for e in list {
        n.exec_ok(&format!("conntrack -I {e} 2>/dev/null"));
    }
}

/// The number at the end of the first line of `text` that contains `name` (a `-s` counter).
#[track_caller]
pub fn field(text: &str, name: &str) -> u64 {
    text.lines()
        .find(|l| l.contains(name))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no `{name}` in {text}"))
}

pub fn log_of(lab: &Lab, i: usize) -> String {
    std::fs::read_to_string(lab.dir.join(format!("n{i}.log"))).unwrap_or_default()
}

pub fn path_exists(p: &Path) -> bool {
    p.exists()
}

/// A UDP relay at 10.77.0.99:3780 in the lab's bridge namespace: forwards 10.77.0.1 <-> 10.77.0.2,
/// holding each datagram for a random 0-5 ms (so datagrams overtake each other) and dropping `drop_pct`
/// percent, from a seeded generator. Returns the relay's PID (stopped with the lab's namespaces).
pub fn start_relay(lab: &Lab, seed: u64, drop_pct: u32, hold_ms: u32) -> u32 {
    let br = lab.bridge.as_ref().expect("a relay needs the bridge");
    let script = lab.dir.join("relay.py");
    std::fs::write(
        &script,
        format!(
            r#"import heapq, random, select, socket, time
random.seed({seed})
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.77.0.99", 3780))
peer = {{"10.77.0.1": "10.77.0.2", "10.77.0.2": "10.77.0.1"}}
q = []
n = 0
while True:
    t = max(0.0, q[0][0] - time.monotonic()) if q else 1.0
    r, _, _ = select.select([s], [], [], t)
    if r:
        d, (src, _) = s.recvfrom(65536)
        if src in peer and random.randrange(100) >= {drop_pct}:
            n += 1
            heapq.heappush(q, (time.monotonic() + random.uniform(0, {hold_s}), n, peer[src], d))
    now = time.monotonic()
    while q and q[0][0] <= now:
        _, _, dst, d = heapq.heappop(q)
        s.sendto(d, (dst, 3780))
"#,
            hold_s = f64::from(hold_ms) / 1000.0
        ),
    )
    .unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", br, "python3"])
        .arg(&script)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    lab.helpers.borrow_mut().push(child);
    pid
}

/// Loads `n` UDP entries (ports 1000..) with `conntrack -R`.
pub fn load_entries(node: &Node, dir: &Path, n: u32, base: &str) {
    let file = dir.join(format!("{}-load", node.ns));
    let mut text = String::new();
    for i in 0..n {
        text += &format!(
            "-I -p udp -s {base}.{} -d {base}.250 --sport {} --dport 53 -t 300\n",
            i % 200 + 1,
            1000 + i
        );
    }
    std::fs::write(&file, text).unwrap();
    node.exec_ok(&format!("conntrack -R {} 2>/dev/null", file.display()));
}

/// When the burst of a loss run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// This many milliseconds after both daemons started.
    Millis(u64),
    /// Once every ctsyncd of the pair logged that the peer answered its HELLO (then 100 ms more, so
    /// that its last HELLO, possibly held by the relay, has arrived).
    HelloDone,
}

/// One run of the loss test: a pair, a seed, a burst.
#[derive(Debug, Clone)]
pub struct LossRun {
    pub seed: u64,
    pub sender: Daemon,
    pub receiver: Daemon,
    /// Entries created on the sender (`conntrack -R`), then `deletes` of them deleted.
    pub entries: u32,
    pub deletes: u32,
    /// The relay's drop percentage and longest hold.
    pub drop_pct: u32,
    pub hold_ms: u32,
    pub start: StartAt,
    /// How long the receiver may take to hold the sender's table.
    pub settle: Duration,
}

impl LossRun {
    /// The CI run: 1,500 entries, 300 deleted, 10% dropped by the relay (and 10% by nft on each
    /// side), 0-30 ms holds. A ctsyncd sender starts 300 ms after the daemons (during the handshake); a
    /// conntrackd sender once ctsyncd's HELLO is answered (see the test's docs).
    pub fn new(seed: u64, sender: Daemon, receiver: Daemon) -> LossRun {
        LossRun {
            seed,
            sender,
            receiver,
            entries: 1500,
            deletes: 300,
            drop_pct: 10,
            hold_ms: 30,
            start: if sender == Daemon::Conntrackd && receiver == Daemon::Ctsyncd {
                StartAt::HelloDone
            } else {
                StartAt::Millis(300)
            },
            settle: Duration::from_secs(60),
        }
    }
}

/// What a loss run found.
#[derive(Debug)]
pub struct LossResult {
    pub run: LossRun,
    /// Entries in the sender's table at the end, and of them in the receiver's external cache.
    pub want: usize,
    pub got: usize,
    /// Sender's entries the receiver lacks, and receiver's entries the sender does not have.
    pub missing: usize,
    pub extra: usize,
    /// Messages the receiver's sequence tracking saw lost (`-s network`: Packets lost).
    pub link_lost: u64,
    /// From the end of the burst until the receiver held the sender's table (or gave up).
    pub settled_in: Duration,
    /// The first differences and both sides' `-s network`, for a failure message.
    pub detail: String,
}

impl std::fmt::Display for LossResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.run;
        write!(
            f,
            "seed {} {:?} -> {:?} ({} entries, {} deleted, start {:?}, holds 0-{} ms): {} of {} arrived, {} extra, {} messages lost on the link, settled in {:.1} s",
            r.seed,
            r.sender,
            r.receiver,
            r.entries,
            r.deletes,
            r.start,
            r.hold_ms,
            self.want - self.missing,
            self.want,
            self.extra,
            self.link_lost,
            self.settled_in.as_secs_f64()
        )
    }
}

/// Runs one loss run in its own lab (see `cli/tests/ctsyncd_loss.rs`).
pub fn lossy_run(r: &LossRun) -> LossResult {
    let mut o = Opts::new("FTFW", LinkKind::Udp);
    o.relay = true;
    let lab = lab(&format!("ls{}", r.seed), &[r.sender, r.receiver], &o);
    let (a, b) = (&lab.nodes[0], &lab.nodes[1]);
    start_relay(&lab, r.seed, r.drop_pct, r.hold_ms);
    for n in [a, b] {
        n.exec_ok("nft add table inet lossy");
        n.exec_ok("nft add chain inet lossy in '{ type filter hook input priority -300; }'");
        n.exec_ok("nft add rule inet lossy in udp dport 3780 numgen random mod 10 0 drop");
    }
    b.start();
    a.start();
    match r.start {
        StartAt::Millis(ms) => std::thread::sleep(Duration::from_millis(ms)),
        StartAt::HelloDone => {
            for (i, d) in [r.sender, r.receiver].into_iter().enumerate() {
                if d == Daemon::Ctsyncd {
                    let deadline = Instant::now() + Duration::from_secs(30);
                    while !log_of(&lab, i).contains("the peer answered our HELLO") {
                        assert!(Instant::now() < deadline, "no handshake in 30 s");
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    load_entries(a, &lab.dir, r.entries, "10.200.0");
    // The deletions, one `conntrack -R` file of `-D` lines.
    let file = lab.dir.join("deletes");
    let mut text = String::new();
    for i in 0..r.deletes.min(r.entries) {
        text += &format!(
            "-D -p udp -s 10.200.0.{} -d 10.200.0.250 --sport {} --dport 53\n",
            i % 200 + 1,
            1000 + i
        );
    }
    std::fs::write(&file, text).unwrap();
    a.exec_ok(&format!("conntrack -R {} 2>/dev/null", file.display()));
    let burst_end = Instant::now();
    // Internal lines carry the reply tuple, external ones do not: compare the original tuples.
    let orig = |l: &String| {
        l.split(" src=")
            .nth(1)
            .map(|x| x.split(" [").next().unwrap_or(x).to_string())
            .unwrap_or_default()
    };
    // What the sender's table holds once both files are applied: the entries not deleted. The
    // receiver has settled when its external cache holds exactly these (a count alone can match
    // while one delete and one new entry are still on the way).
    let want: BTreeSet<String> = (r.deletes.min(r.entries)..r.entries)
        .map(|i| {
            format!(
                "10.200.0.{} dst=10.200.0.250 sport={} dport=53",
                i % 200 + 1,
                1000 + i
            )
        })
        .collect();
    let internal = a.wait_cache("-i", Duration::from_secs(10), |i| {
        i.iter().map(orig).collect::<BTreeSet<_>>() == want
    });
    let internal: BTreeSet<String> = internal.iter().map(orig).collect();
    let got = b.wait_external(r.settle, |e| {
        e.iter().map(orig).collect::<BTreeSet<_>>() == want
    });
    let settled_in = burst_end.elapsed();
    let got: BTreeSet<String> = got.iter().map(orig).collect();
    let missing: Vec<&String> = want.difference(&got).collect();
    let extra: Vec<&String> = got.difference(&want).collect();
    let net_b = b.client_ok("-s network");
    let link_lost = field(&net_b, "Packets lost");
    let detail = format!(
        "missing e.g. {:?}\nextra e.g. {:?}\nsender's internal cache: {} of {} entries, {} it should not hold\nreceiver -s network:\n{net_b}\nsender -s network:\n{}",
        missing.iter().take(5).collect::<Vec<_>>(),
        extra.iter().take(5).collect::<Vec<_>>(),
        want.intersection(&internal).count(),
        want.len(),
        internal.difference(&want).count(),
        a.client_ok("-s network")
    );
    LossResult {
        run: r.clone(),
        want: want.len(),
        got: got.len(),
        missing: missing.len(),
        extra: extra.len(),
        link_lost,
        settled_in,
        detail,
    }
}
