//! ctsyncd against conntrackd 1.4.7, same run, same lab (two namespaces, FT-FW over UDP), alternating
//! which goes first each round, one warm-up round:
//!
//! * replication: 50,000 UDP entries loaded with `conntrack -R` on A; the time until B's external cache
//!   holds all of them (`-s`), against the floor of reading the 50,000 NEW events alone (a ctnl
//!   `EventSocket` in A, same load);
//! * commit: `-c` of those 50,000 external entries into B's kernel table, against the floor of ctnl's
//!   batched create of the same entries;
//! * sustained load: 20,000 events/s (creates and deletes) for 30 s on A; CPU seconds of each daemon
//!   and whether B ends with exactly A's entries; alongside, in the same round, on the same events, the
//!   floors: a raw netlink reader in A that copies each event into 1,400-byte UDP datagrams to B, and a
//!   UDP receiver in B (`--relay-floor`, `--sink-floor`): the CPU any daemon must spend; and the cache
//!   floors, the same pair each keeping the least cache a sync daemon needs (one hash table entry per
//!   live connection holding its last event, stored on NEW, removed on DESTROY);
//! * memory: RSS of each daemon with 200,000 entries in its internal cache (loaded before the start, so
//!   the start-up dump fills it), and of the receiver after a `-B` bulk send of them.
//!
//! `cargo bench -p benches --bench ctsyncd` (root, conntrackd and conntrack-tools; builds the release
//! ctsyncd first). Each side's counts are checked before a timing is accepted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../cli/tests/ctsyncd/harness.rs"]
mod harness;

use harness::{Daemon, LinkKind, Node, Opts, lab, load_entries, sh, sh_ok};
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const N: u32 = 50_000;
const BIG: u32 = 200_000;

fn wall_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

/// The entries `load_entries(.., n, base)` creates, as ctnl entries.
fn entries(n: u32, base: [u8; 3]) -> Vec<ctnl::Entry> {
    (0..n)
        .map(|i| {
            let src = IpAddr::V4(Ipv4Addr::new(
                base[0],
                base[1],
                base[2],
                (i % 200 + 1) as u8,
            ));
            let dst = IpAddr::V4(Ipv4Addr::new(base[0], base[1], base[2], 250));
            let t = ctnl::Tuple::ports(src, dst, 17, (1000 + i) as u16, 53);
            let mut e = ctnl::Entry::new(t.clone(), t.reversed());
            e.timeout = Some(300);
            e
        })
        .collect()
}

/// Helper mode: count NEW events until `n`, print the wall-clock µs when done.
fn events_floor(n: u64) {
    let mut ev = ctnl::EventSocket::open(ctnl::Groups::NEW).unwrap();
    ev.set_timeout(Some(Duration::from_secs(60))).unwrap();
    println!("ready");
    let mut seen = 0u64;
    while seen < n {
        match ev.next_event() {
            Ok(Some(_)) => seen += 1,
            Ok(None) => break,
            Err(ctnl::Error::Overrun) => {
                println!("overrun");
                return;
            }
            Err(e) => panic!("{e}"),
        }
    }
    println!("{} {seen}", wall_us());
}

/// Helper mode: `rate` events per second for `secs` seconds: every 100 ms, half the tick's events create
/// entries and half delete the entries created a second earlier. Prints how many entries it leaves.
fn churn(rate: u32, secs: u32) {
    let per_tick = (rate / 20) as usize; // creates per 100 ms tick (and as many deletes)
    let all = entries(per_tick as u32 * 10 * (secs + 1), [10, 240, 0]);
    let mut ct = ctnl::Conntrack::open().unwrap();
    let start = Instant::now();
    let mut created = 0usize;
    let mut deleted = 0usize;
    for tick in 0..(secs as usize * 10) {
        let mut b = ct.batch();
        for e in &all[created..created + per_tick] {
            b.create(e).unwrap();
        }
        if tick >= 10 {
            for e in &all[deleted..deleted + per_tick] {
                b.delete(&ctnl::Key::of(e).unwrap()).unwrap();
            }
            deleted += per_tick;
        }
        created += per_tick;
        let _ = b.finish().unwrap();
        let next = start + Duration::from_millis(100 * (tick as u64 + 1));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    println!("{}", created - deleted);
}

/// The original tuple of a ctnetlink event (`CTA_TUPLE_ORIG`'s bytes) hashed to 64 bits (multiply and
/// rotate per word): the identity the cache floors key their table with. `attrs` starts after the
/// `nfgenmsg`.
fn orig_tuple_id(attrs: &[u8]) -> Option<u64> {
    let mut off = 0;
    while off + 4 <= attrs.len() {
        let len = u16::from_ne_bytes([attrs[off], attrs[off + 1]]) as usize;
        let ty = u16::from_ne_bytes([attrs[off + 2], attrs[off + 3]]) & 0x3fff;
        if len < 4 || off + len > attrs.len() {
            return None;
        }
        if ty == 1 {
            let mut h = 0x9e37_79b9_7f4a_7c15u64;
            for c in attrs[off..off + len].chunks(8) {
                let mut w = [0u8; 8];
                w[..c.len()].copy_from_slice(c);
                h = (h.rotate_left(26) ^ u64::from_le_bytes(w)).wrapping_mul(0xf135_7aea_2e62_a9c5);
            }
            return Some(h ^ (h >> 29));
        }
        off += (len + 3) & !3;
    }
    None
}

/// Hashes the cache floors' keys, which are hashes already: the key itself.
#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys")
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The least cache a sync daemon keeps (the cache floors): each live entry's last event, keyed by its
/// original tuple; a NEW or UPDATE event (`kind` 0) stores it, a DESTROY (`kind` 2) removes it.
#[derive(Default)]
struct FloorCache(
    std::collections::HashMap<u64, Box<[u8]>, std::hash::BuildHasherDefault<IdHasher>>,
);

impl FloorCache {
    fn apply(&mut self, kind: u8, attrs: &[u8]) {
        let Some(id) = orig_tuple_id(attrs) else {
            return;
        };
        if kind == 2 {
            self.0.remove(&id);
        } else {
            self.0.insert(id, attrs.into());
        }
    }
}

/// Helper mode, the sender's floors: for `secs` seconds, read every conntrack event (NEW, UPDATE,
/// DESTROY) raw from a netlink socket, copy each event's attributes into a datagram and send it over UDP
/// to `peer`:`port` whenever the next event would not fit in 1,400 bytes or the socket has nothing more
/// to read. Without `cache`: only the netlink header is looked at, the least any sync daemon does per
/// event. With `cache`: also the least cache (`FloorCache`), and each event framed (length, kind) so
/// that the receiving floor can keep one too. Prints events read, datagrams sent, overruns and its own
/// CPU seconds.
fn relay_floor(secs: u64, peer: &str, port: u16, cache: bool) {
    use netlink_sys::{Socket, protocols::NETLINK_NETFILTER};
    let mut sock = Socket::new(NETLINK_NETFILTER).unwrap();
    // Bound (a port id other than the kernel's 0), or the kernel's multicasts skip it.
    sock.bind_auto().unwrap();
    let fd = std::os::fd::AsFd::as_fd(&sock);
    rustix::net::sockopt::set_socket_recv_buffer_size_force(fd, 8 << 20).unwrap();
    sock.set_non_blocking(true).unwrap();
    // NFNLGRP_CONNTRACK_NEW, _UPDATE, _DESTROY.
    for g in 1..=3 {
        sock.add_membership(g).unwrap();
    }
    let udp = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    udp.connect((peer, port)).unwrap();
    let mut inp: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(1500);
    let mut table = FloorCache::default();
    let (mut events, mut sent, mut overruns) = (0u64, 0u64, 0u64);
    let c0 = cpu_secs(std::process::id());
    println!("ready");
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        inp.clear();
        match sock.recv(&mut inp, 0) {
            Ok(_) => {
                let mut off = 0;
                while off + 20 <= inp.len() {
                    let len = u32::from_ne_bytes(inp[off..off + 4].try_into().unwrap()) as usize;
                    if len < 20 || off + len > inp.len() {
                        break;
                    }
                    let body = &inp[off + 20..off + len];
                    let frame = if cache { 4 } else { 0 };
                    if out.len() + frame + body.len() > 1400 {
                        let _ = udp.send(&out);
                        sent += 1;
                        out.clear();
                    }
                    if cache {
                        // IPCTNL_MSG_CT_NEW (0) or _DELETE (2), the low byte of the message type.
                        let kind = inp[off + 4];
                        table.apply(kind, body);
                        out.extend_from_slice(&(body.len() as u16).to_le_bytes());
                        out.extend_from_slice(&[kind, 0]);
                    }
                    out.extend_from_slice(body);
                    events += 1;
                    off += (len + 3) & !3;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if !out.is_empty() {
                    let _ = udp.send(&out);
                    sent += 1;
                    out.clear();
                }
                let mut fds = [rustix::event::PollFd::new(
                    &sock,
                    rustix::event::PollFlags::IN,
                )];
                let ts = rustix::time::Timespec {
                    tv_sec: 0,
                    tv_nsec: 100_000_000,
                };
                let _ = rustix::event::poll(&mut fds, Some(&ts));
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => overruns += 1,
            Err(e) => panic!("{e}"),
        }
    }
    let cpu = cpu_secs(std::process::id()) - c0;
    println!("{events} {sent} {overruns} {cpu:.2} {}", table.0.len());
}

/// Helper mode, the receiver's floors: for `secs` seconds, receive a sender floor's datagrams on UDP
/// `port` and count them; with `cache`, also keep the least cache of what they carry (`FloorCache`).
/// Prints datagrams, bytes, its own CPU seconds and (with `cache`) the entries it holds.
fn sink_floor(secs: u64, port: u16, cache: bool) {
    let udp = std::net::UdpSocket::bind(("0.0.0.0", port)).unwrap();
    // 8 MB, so that a moment of preemption by the real-time daemons loses nothing.
    rustix::net::sockopt::set_socket_recv_buffer_size_force(&udp, 8 << 20).unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 65536];
    let mut table = FloorCache::default();
    let (mut n, mut bytes) = (0u64, 0u64);
    let c0 = cpu_secs(std::process::id());
    println!("ready");
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if let Ok(len) = udp.recv(&mut buf) {
            n += 1;
            bytes += len as u64;
            let mut off = 0;
            while cache && off + 4 <= len {
                let l = u16::from_le_bytes([buf[off], buf[off + 1]]) as usize;
                if off + 4 + l > len {
                    break;
                }
                table.apply(buf[off + 2], &buf[off + 4..off + 4 + l]);
                off += 4 + l;
            }
        }
    }
    let cpu = cpu_secs(std::process::id()) - c0;
    println!("{n} {bytes} {cpu:.2} {}", table.0.len());
}

/// What a cache line costs the daemons on this machine when it was last touched before a sleep: 200
/// times, sleep 5 ms, then read 200 random lines of a 4 MiB table, one after the other (each address
/// depends on the line before, as a hash lookup's probe depends on its control bytes) and independently
/// (the addresses known ahead, as `warm` looks a batch up). Returns ns per line (dependent, independent).
fn cold_lines() -> (f64, f64) {
    use std::hint::black_box;
    const LINES: usize = 4 << 20 >> 6;
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    // One u64 per 64-byte line: a random cycle through every line (the dependent walk).
    let mut table = vec![0u64; LINES * 8];
    let mut order: Vec<usize> = (0..LINES).collect();
    for i in (1..LINES).rev() {
        order.swap(i, rnd() as usize % (i + 1));
    }
    for w in 0..LINES {
        table[order[w] * 8] = (order[(w + 1) % LINES] * 8) as u64;
    }
    let (mut dep, mut ind) = (Duration::ZERO, Duration::ZERO);
    let mut p = 0usize;
    for _ in 0..200 {
        std::thread::sleep(Duration::from_millis(5));
        let t = Instant::now();
        for _ in 0..200 {
            p = black_box(table[p]) as usize;
        }
        dep += t.elapsed();
        let idx: Vec<usize> = (0..200).map(|_| rnd() as usize % LINES * 8).collect();
        std::thread::sleep(Duration::from_millis(5));
        let t = Instant::now();
        let mut sum = 0u64;
        for &i in &idx {
            sum = sum.wrapping_add(black_box(table[i]));
        }
        ind += t.elapsed();
        black_box(sum);
    }
    let per = |d: Duration| d.as_nanos() as f64 / 40_000.0;
    (per(dep), per(ind))
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 (utime, stime) are 12 and 13 after the command name; 100 ticks per second.
    (ticks(11) + ticks(12)) / 100.0
}

/// One sustained round's figures: CPU seconds of the sending and receiving daemon, of the sender's and
/// receiver's floors (run alongside, on the same events), and the receiver's count against the sender's.
#[derive(Debug, Clone, Copy)]
struct Sustained {
    sender: f64,
    receiver: f64,
    floor_sender: f64,
    floor_receiver: f64,
    floor_events: u64,
    /// The cache floors' CPU seconds (sender, receiver) and the entries the receiving one holds.
    cache_floor: (f64, f64, u64),
    left: u64,
    got: u64,
}

impl Sustained {
    fn line(&self) -> String {
        format!(
            "CPU sender {:.2} s, receiver {:.2} s; floors (same events, alongside) sender {:.2} s for {} events, receiver {:.2} s; cache floors sender {:.2} s, receiver {:.2} s holding {}; receiver holds {} of {}",
            self.sender,
            self.receiver,
            self.floor_sender,
            self.floor_events,
            self.floor_receiver,
            self.cache_floor.0,
            self.cache_floor.1,
            self.cache_floor.2,
            self.got,
            self.left
        )
    }
}

/// Starts a helper that prints "ready" first; returns it with its stdout.
fn ready_helper(
    node: &Node,
    args: &str,
) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let mut h = helper(node, args);
    let mut out = BufReader::new(h.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "helper {args}");
    (h, out)
}

fn last_line(mut h: (std::process::Child, BufReader<std::process::ChildStdout>)) -> Vec<f64> {
    let mut line = String::new();
    h.1.read_line(&mut line).unwrap();
    let _ = h.0.wait();
    line.split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect()
}

/// Sustained churn: CPU of the sending and receiving daemon and of the floors, and the receiver's count
/// at the end.
fn sustained(d: Daemon, rate: u32, secs: u32) -> Sustained {
    let lab = lab("bs", &[d, d], &Opts::new("FTFW", LinkKind::Udp));
    let (a, b) = (&lab.nodes[0], &lab.nodes[1]);
    b.start();
    a.start();
    std::thread::sleep(Duration::from_secs(3));
    let (pa, pb) = (a.pids()[0], b.pids()[0]);
    let sink = ready_helper(b, &format!("--sink-floor {} 3790", secs + 4));
    let relay = ready_helper(a, &format!("--relay-floor {} {} 3790", secs + 2, b.addr));
    let csink = ready_helper(b, &format!("--sink-floor {} 3791 cache", secs + 4));
    let crelay = ready_helper(
        a,
        &format!("--relay-floor {} {} 3791 cache", secs + 2, b.addr),
    );
    let (ca, cb) = (cpu_secs(pa), cpu_secs(pb));
    let h = helper(a, &format!("--churn {rate} {secs}"));
    let o = h.wait_with_output().unwrap();
    let left: u64 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    wait(|| external_active(b) == left, Duration::from_secs(30));
    let (sender, receiver) = (cpu_secs(pa) - ca, cpu_secs(pb) - cb);
    let r = last_line(relay);
    let s = last_line(sink);
    let cr = last_line(crelay);
    let cs = last_line(csink);
    assert_eq!(r[2], 0.0, "the sender floor overran");
    assert_eq!(cr[2], 0.0, "the sender's cache floor overran");
    assert_eq!(cr[0], r[0], "the two sender floors saw different events");
    assert_eq!(
        cr[4] as u64, left,
        "the sender's cache floor holds what churn left"
    );
    assert!(
        r[0] >= f64::from(rate * secs) * 0.9 && s[0] > 0.0,
        "the floors saw too little: {r:?} {s:?}"
    );
    Sustained {
        sender,
        receiver,
        floor_sender: r[3],
        floor_receiver: s[2],
        floor_events: r[0] as u64,
        cache_floor: (cr[3], cs[2], cs[3] as u64),
        left,
        got: external_active(b),
    }
}

/// Helper mode: create the entries with ctnl batches, print the µs taken.
fn create_floor(n: u32) {
    let es = entries(n, [10, 220, 0]);
    let mut ct = ctnl::Conntrack::open().unwrap();
    let t = Instant::now();
    let mut b = ct.batch();
    for e in &es {
        b.create(e).unwrap();
    }
    let r = b.finish().unwrap();
    let us = t.elapsed().as_micros();
    assert_eq!(r.ok, n as usize);
    println!("{us}");
}

fn external_active(n: &Node) -> u64 {
    let s = n.client_ok("-s");
    s.split("cache external:")
        .nth(1)
        .and_then(|x| x.lines().find(|l| l.contains("current active connections")))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn rss_kib(n: &Node) -> u64 {
    n.pids()
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter_map(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .max()
        .unwrap_or(0)
}

fn wait(cond: impl Fn() -> bool, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

#[derive(Debug, Default, Clone, Copy)]
struct Round {
    repl: Duration,
    events: Duration,
    commit: Duration,
    create: Duration,
}

fn helper(node: &Node, args: &str) -> std::process::Child {
    let exe = std::env::current_exe().unwrap();
    Command::new("ip")
        .args(["netns", "exec", &node.ns])
        .arg(exe)
        .args(args.split_whitespace())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn round(d: Daemon) -> Round {
    let lab = lab("bn", &[d, d], &Opts::new("FTFW", LinkKind::Udp));
    let (a, b) = (&lab.nodes[0], &lab.nodes[1]);
    b.start();
    a.start();
    std::thread::sleep(Duration::from_secs(3));
    let mut floor = helper(a, &format!("--events-floor {N}"));
    let mut out = BufReader::new(floor.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let t0 = Instant::now();
    let w0 = wall_us();
    load_entries(a, &lab.dir, N, "10.210.0");
    assert!(
        wait(
            || external_active(b) >= u64::from(N),
            Duration::from_secs(120)
        ),
        "{d:?}: replication did not finish"
    );
    let repl = t0.elapsed();
    line.clear();
    out.read_line(&mut line).unwrap();
    let _ = floor.wait();
    let mut f = line.split_whitespace();
    let done: u128 = f
        .next()
        .and_then(|v| v.parse().ok())
        .expect("events floor failed");
    assert_eq!(f.next(), Some(&*N.to_string()));
    let events = Duration::from_micros((done - w0) as u64);
    // Commit on B.
    let t = Instant::now();
    b.client_ok("-c");
    let commit = t.elapsed();
    let count = b.exec_ok("conntrack -C 2>/dev/null");
    assert_eq!(count.trim(), N.to_string(), "{d:?}: committed");
    // ctnl's floor in B's namespace, table emptied first, with no daemon there to feed events to
    // (the daemon would compete for the CPU).
    b.stop();
    b.exec_ok("conntrack -F 2>/dev/null");
    let h = helper(b, &format!("--create-floor {N}"));
    let o = h.wait_with_output().unwrap();
    let us: u64 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    Round {
        repl,
        events,
        commit,
        create: Duration::from_micros(us),
    }
}

/// RSS with `BIG` entries cached: the entries are in A's kernel table before the daemons start, so both
/// fill their internal cache from the start-up dump; then `-B` sends them to B's external cache. Returns
/// (A's RSS, B's RSS, entries B holds), RSS in KiB.
fn memory(d: Daemon) -> (u64, u64, u64) {
    let lab = lab("bm", &[d, d], &Opts::new("FTFW", LinkKind::Udp));
    let (a, b) = (&lab.nodes[0], &lab.nodes[1]);
    load_entries(a, &lab.dir, BIG, "10.230.0");
    b.start();
    a.start();
    let internal = |n: &Node| -> u64 {
        n.client_ok("-s")
            .split("cache internal:")
            .nth(1)
            .and_then(|x| x.lines().find(|l| l.contains("current active connections")))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    assert!(
        wait(|| internal(a) >= u64::from(BIG), Duration::from_secs(60)),
        "{d:?}: the start-up dump did not fill the internal cache"
    );
    std::thread::sleep(Duration::from_secs(3));
    a.client_ok("-B");
    wait(
        || external_active(b) >= u64::from(BIG),
        Duration::from_secs(90),
    );
    std::thread::sleep(Duration::from_millis(500));
    (rss_kib(a), rss_kib(b), external_active(b))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--events-floor") {
        events_floor(args[i + 1].parse().unwrap());
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--create-floor") {
        create_floor(args[i + 1].parse().unwrap());
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--churn") {
        churn(args[i + 1].parse().unwrap(), args[i + 2].parse().unwrap());
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--relay-floor") {
        relay_floor(
            args[i + 1].parse().unwrap(),
            &args[i + 2],
            args[i + 3].parse().unwrap(),
            args.get(i + 4).is_some_and(|a| a == "cache"),
        );
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--sink-floor") {
        sink_floor(
            args[i + 1].parse().unwrap(),
            args[i + 2].parse().unwrap(),
            args.get(i + 3).is_some_and(|a| a == "cache"),
        );
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    // `cargo bench --bench ctsyncd -- PART...` runs only these parts: replication (with the commit),
    // sustained, memory; sustained-ctsyncd (one round of ctsyncd alone).
    let parts: Vec<&str> = args
        .iter()
        .skip(1)
        .map(String::as_str)
        .filter(|a| ["replication", "sustained", "memory", "sustained-ctsyncd"].contains(a))
        .collect();
    let part = |name: &str| parts.is_empty() || parts.contains(&name);
    if !harness::ready() {
        return;
    }
    println!("{}", benches::context("ctsyncd"));
    // The release binary is what gets timed.
    sh_ok("cargo build --release -q -p cli --bin ctsyncd");
    let bin = testkit::workspace_root().join("target/release/ctsyncd");
    // The harness reads this variable to find the ctsyncd to time.
    unsafe_env(&bin.display().to_string());
    if part("replication") {
        replication();
    }
    if part("sustained") || parts.contains(&"sustained-ctsyncd") {
        let (dep, ind) = cold_lines();
        println!(
            "  cold cache lines (4 MiB table, 5 ms asleep before each 200 reads): {dep:.0} ns each when read one after another, {ind:.0} ns when overlapped"
        );
    }
    if part("sustained") {
        // Three rounds each, alternating which goes first; medians.
        let mut runs: [Vec<Sustained>; 2] = [Vec::new(), Vec::new()];
        for r in 0..3 {
            let order = if r % 2 == 0 {
                [Daemon::Ctsyncd, Daemon::Conntrackd]
            } else {
                [Daemon::Conntrackd, Daemon::Ctsyncd]
            };
            for d in order {
                let s = sustained(d, 20_000, 30);
                eprintln!("sustained round {r} {d:?}: {}", s.line());
                assert_eq!(s.got, s.left, "{d:?}: the receiver lost entries");
                runs[usize::from(d == Daemon::Conntrackd)].push(s);
            }
        }
        let med = |v: &[Sustained], f: fn(&Sustained) -> f64| {
            let mut x: Vec<f64> = v.iter().map(f).collect();
            x.sort_by(f64::total_cmp);
            x[x.len() / 2]
        };
        let (oa, ob) = (med(&runs[0], |x| x.sender), med(&runs[0], |x| x.receiver));
        let (pa, pb) = (med(&runs[1], |x| x.sender), med(&runs[1], |x| x.receiver));
        let all: Vec<Sustained> = runs.concat();
        let (fa, fb) = (
            med(&all, |x| x.floor_sender),
            med(&all, |x| x.floor_receiver),
        );
        let (ca, cb) = (
            med(&all, |x| x.cache_floor.0),
            med(&all, |x| x.cache_floor.1),
        );
        println!(
            "  20,000 events/s for 30 s (medians of 3; none lost): CPU sender ctsyncd {oa:.2} s, conntrackd {pa:.2} s -> {:.2}x; receiver ctsyncd {ob:.2} s, conntrackd {pb:.2} s -> {:.2}x",
            oa / pa,
            ob / pb
        );
        println!(
            "  floors (median of 6, raw event read + UDP send / UDP receive): sender {fa:.2} s (ctsyncd {:.2}x, conntrackd {:.2}x the floor), receiver {fb:.2} s (ctsyncd {:.2}x, conntrackd {:.2}x)",
            oa / fa,
            pa / fa,
            ob / fb,
            pb / fb
        );
        println!(
            "  cache floors (median of 6, the floors plus the least cache: one hash table entry per live connection, its last event, stored on NEW, removed on DESTROY): sender {ca:.2} s = {:.2}x conntrackd's (ctsyncd {:.2}x the cache floor), receiver {cb:.2} s = {:.2}x conntrackd's (ctsyncd {:.2}x)",
            ca / pa,
            oa / ca,
            cb / pb,
            ob / cb
        );
    }
    if parts.contains(&"sustained-ctsyncd") {
        // A development aid: one sustained round of ctsyncd alone (profile it with perf meanwhile).
        let s = sustained(Daemon::Ctsyncd, 20_000, 30);
        println!("  ctsyncd alone: {}", s.line());
        assert_eq!(s.got, s.left, "the receiver lost entries");
    }
    if part("memory") {
        let (oa, ob, on) = memory(Daemon::Ctsyncd);
        let (pa, pb, pn) = memory(Daemon::Conntrackd);
        println!(
            "  RSS with {BIG} in the internal cache: ctsyncd {oa} KiB, conntrackd {pa} KiB -> {:.2}x",
            oa as f64 / pa as f64
        );
        println!(
            "  RSS of the receiver after a bulk send: ctsyncd {ob} KiB holding {on}, conntrackd {pb} KiB holding {pn} -> {:.2}x",
            ob as f64 / pb as f64
        );
    }
    let _ = sh;
}

fn replication() {
    let rounds = 4;
    let mut ours = Vec::new();
    let mut peer = Vec::new();
    for r in 0..rounds {
        let order = if r % 2 == 0 {
            [Daemon::Conntrackd, Daemon::Ctsyncd]
        } else {
            [Daemon::Ctsyncd, Daemon::Conntrackd]
        };
        for d in order {
            let x = round(d);
            eprintln!("round {r} {d:?}: {x:?}");
            if r == 0 {
                continue; // warm-up
            }
            match d {
                Daemon::Ctsyncd => ours.push(x),
                Daemon::Conntrackd => peer.push(x),
            }
        }
    }
    let m = |v: &[Round], f: fn(&Round) -> Duration| median(v.iter().map(f).collect());
    let (or, pr) = (m(&ours, |x| x.repl), m(&peer, |x| x.repl));
    let fl = m(&[ours.clone(), peer.clone()].concat(), |x| x.events);
    // The load itself (conntrack -R) dominates and varies with the machine's load: each side's lag
    // behind its own round's events-alone floor is the daemon's share.
    let (ol, pl) = (
        m(&ours, |x| x.repl.saturating_sub(x.events)),
        m(&peer, |x| x.repl.saturating_sub(x.events)),
    );
    let (oc, pc) = (m(&ours, |x| x.commit), m(&peer, |x| x.commit));
    let cf = m(&[ours.clone(), peer.clone()].concat(), |x| x.create);
    println!(
        "ctsyncd bench ({N} entries, medians of {} rounds after a warm-up)",
        rounds - 1
    );
    println!(
        "  replication until the peer's external cache is full: ctsyncd {:.3} s, conntrackd {:.3} s, events-alone floor {:.3} s -> {:.2}x conntrackd, {:.2}x the floor",
        or.as_secs_f64(),
        pr.as_secs_f64(),
        fl.as_secs_f64(),
        or.as_secs_f64() / pr.as_secs_f64(),
        or.as_secs_f64() / fl.as_secs_f64()
    );
    println!(
        "  lag after the last event: ctsyncd {:.0} ms, conntrackd {:.0} ms",
        ol.as_secs_f64() * 1e3,
        pl.as_secs_f64() * 1e3
    );
    println!(
        "  commit -c: ctsyncd {:.3} s, conntrackd {:.3} s, ctnl batch floor {:.3} s -> conntrackd/ctsyncd {:.2}x, {:.2}x the floor",
        oc.as_secs_f64(),
        pc.as_secs_f64(),
        cf.as_secs_f64(),
        pc.as_secs_f64() / oc.as_secs_f64(),
        oc.as_secs_f64() / cf.as_secs_f64()
    );
}

#[allow(unsafe_code)]
fn unsafe_env(bin: &str) {
    // SAFETY: called once from main before any other thread exists.
    unsafe { std::env::set_var("CTSYNCD_BIN", bin) };
}
