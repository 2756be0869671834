//! FT-FW over a simulated lossy link on a seeded virtual clock: 10% loss, reordering (random delays) and
//! 10% duplication. After convergence every entry is delivered, the external cache holds each entry once
//! with its latest state, and the resend queue never exceeds its bound.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ctsync_proto::Session;
use ctsync_proto::session::{Action, Ftfw, FtfwConfig};
use ctsync_proto::wire::{AddrPair, Change, CtEntry, ExpEntry, PortPair};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// splitmix64: the seeded generator of the simulated link (loss, delay, duplication).
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n.max(1)
    }
}

struct Link {
    rng: SplitMix64,
    // (deliver at in µs, tie-break, destination 0/1, bytes)
    inflight: BTreeMap<(u64, u64), (usize, Vec<u8>)>,
    n: u64,
    sent: u64,
    dropped: u64,
    duplicated: u64,
}

impl Link {
    fn send(&mut self, now_us: u64, to: usize, data: &[u8]) {
        self.sent += 1;
        if self.rng.below(10) == 0 {
            self.dropped += 1;
            return;
        }
        let copies = if self.rng.below(10) == 0 {
            self.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            // 0.1-30 ms of delay: later datagrams often overtake earlier ones.
            let at = now_us + 100 + self.rng.below(30_000);
            self.n += 1;
            self.inflight.insert((at, self.n), (to, data.to_vec()));
        }
    }
}

fn entry(i: u32) -> CtEntry {
    let addrs = if i.is_multiple_of(3) {
        AddrPair::V6 {
            src: format!("2001:db8::{:x}", i + 1).parse().unwrap(),
            dst: "2001:db8::ffff".parse().unwrap(),
        }
    } else {
        AddrPair::V4 {
            src: [10, 0, (i >> 8) as u8, i as u8].into(),
            dst: [192, 0, 2, 1].into(),
        }
    };
    CtEntry {
        addrs: Some(addrs),
        status: Some(0x8),
        l4proto: Some(17),
        ports: Some(PortPair {
            sport: 10_000 + (i % 50_000) as u16,
            dport: 53,
        }),
        timeout: Some(120),
        mark: Some(i),
        ..CtEntry::default()
    }
}

/// An FTP-style expectation of entry `i`'s flow.
fn expectation(i: u32) -> ExpEntry {
    let e = entry(i);
    ExpEntry {
        master_addrs: e.addrs,
        master_l4proto: Some(6),
        master_ports: Some(PortPair {
            sport: 40_000,
            dport: 21,
        }),
        expect_addrs: e.addrs,
        expect_l4proto: Some(6),
        expect_ports: Some(PortPair {
            sport: 0,
            dport: 50_000 + (i % 10_000) as u16,
        }),
        mask_l4proto: Some(6),
        timeout: Some(300),
        flags: Some(0),
        ..ExpEntry::default()
    }
}

/// How a simulated run goes.
#[derive(Clone, Copy)]
struct Setup {
    seed: u64,
    /// Entries created on node 0.
    n: u32,
    /// `ResendQueueSize` of both nodes.
    rs_bound: usize,
    /// [`FtfwConfig::reliable_handshake`] on node 0 (the sender) and node 1.
    reliable: [bool; 2],
    /// Start the workload at once, while the HELLO handshake runs, instead of after it.
    at_once: bool,
    /// Restart node 1 (a fresh session with a new sequence, which then asks for a resync) this many
    /// virtual µs after the workload started.
    restart_receiver: Option<u64>,
}

impl Setup {
    fn new(seed: u64) -> Self {
        Setup {
            seed,
            n: 2_000,
            rs_bound: 131_072,
            reliable: [false, false],
            at_once: false,
            restart_receiver: None,
        }
    }
}

/// Runs the workload; with `must_converge`, until the receiver holds exactly the sender's entries (or
/// fails after 600 virtual seconds); otherwise for 60 virtual seconds after the workload. Returns the
/// sender's evictions and how many live entries the receiver lacks or holds in another state.
fn run(su: Setup, must_converge: bool) -> (u64, usize) {
    let Setup {
        seed, n, rs_bound, ..
    } = su;
    let base = Instant::now();
    let cfg = |s: u32, reliable: bool| {
        FtfwConfig::default()
            .with_resend_queue_size(rs_bound)
            .with_window_size(50)
            .with_initial_seq(s)
            .with_reliable_handshake(reliable)
    };
    let mut nodes = [
        Ftfw::new(base, cfg(1_000, su.reliable[0])),
        Ftfw::new(base, cfg(4_000_000_000, su.reliable[1])),
    ];
    // The receiver's restart: down from `down.0` (it neither sends nor receives) until `down.1`, when
    // a fresh session with a new sequence takes its place and asks for a resync.
    let mut down: Option<(u64, u64)> = None;
    let mut restarted = false;
    let mut link = Link {
        rng: SplitMix64::new(seed),
        inflight: BTreeMap::new(),
        n: 0,
        sent: 0,
        dropped: 0,
        duplicated: 0,
    };
    let mut wl = SplitMix64::new(seed ^ 0xabcdef);
    let mut buf = vec![0u8; 1472];
    let step = 5_000u64; // µs
    let mut t = 0u64;
    let mut added = 0u32;
    let mut started: Option<u64> = None;
    let mut updates = 0;
    let mut deletes = 0;
    let mut live: HashMap<u32, CtEntry> = HashMap::new();
    let mut exps: Vec<ExpEntry> = Vec::new();
    let mut external_news = 0u64;
    loop {
        let now = base + Duration::from_micros(t);
        // Workload on node 0, after both sides finished the HELLO handshake (or at once).
        if started.is_none() && (su.at_once || nodes[0].hello_done() && nodes[1].hello_done()) {
            started = Some(t);
        }
        if let (Some(s0), Some(after)) = (started, su.restart_receiver)
            && down.is_none()
            && t >= s0 + after
        {
            down = Some((t, t + 1_000_000));
        }
        let is_down = down.is_some_and(|(a, b)| t >= a && t < b);
        if let Some((_, up)) = down
            && !restarted
            && t >= up
        {
            // The receiver comes back with an empty cache and asks for everything.
            restarted = true;
            nodes[1] = Ftfw::new(now, cfg(3_000_000_000, su.reliable[1]));
            nodes[1].request_resync(now);
        }
        if let Some(s0) = started {
            if added < n {
                for _ in 0..20.min(n - added) {
                    let e = entry(added);
                    nodes[0].handle_local(now, Change::New, e);
                    live.insert(added, e);
                    if added.is_multiple_of(10) {
                        let x = expectation(added);
                        nodes[0].handle_local_exp(now, Change::New, x);
                        exps.push(x);
                    }
                    added += 1;
                }
            } else if updates < n / 5 && t > s0 + 500_000 {
                let i = wl.below(u64::from(n)) as u32;
                if let Some(e) = live.get_mut(&i) {
                    e.mark = Some(e.mark.unwrap_or(0) + 1_000_000);
                    e.timeout = Some(300);
                    nodes[0].handle_local(now, Change::Update, *e);
                }
                updates += 1;
            } else if deletes < n / 4 && t > s0 + 1_000_000 {
                let i = wl.below(u64::from(n)) as u32;
                if let Some(e) = live.remove(&i) {
                    nodes[0].handle_local(now, Change::Delete, e);
                }
                deletes += 1;
            }
        }
        for (i, node) in nodes.iter_mut().enumerate() {
            if i == 1 && is_down {
                continue;
            }
            if node.poll_timeout().is_some_and(|d| d <= now) {
                node.handle_timeout(now);
            }
        }
        while let Some((&k, _)) = link.inflight.first_key_value() {
            if k.0 > t {
                break;
            }
            let (to, data) = link.inflight.remove(&k).unwrap();
            if !(to == 1 && is_down) {
                nodes[to].handle_datagram(now, &data);
            }
        }
        for (i, node) in nodes.iter_mut().enumerate() {
            if i == 1 && is_down {
                continue;
            }
            while let Some(len) = node.poll_transmit(now, &mut buf) {
                link.send(t, 1 - i, &buf[..len]);
            }
            while let Some(a) = node.poll_action() {
                if matches!(
                    a,
                    Action::External {
                        change: Change::New,
                        ..
                    }
                ) {
                    external_news += 1;
                }
            }
            assert!(
                node.resend_queue_len() <= rs_bound,
                "resend queue {} > {rs_bound}",
                node.resend_queue_len()
            );
        }
        let done_workload = added == n && updates >= n / 5 && deletes >= n / 4;
        let missing = |nodes: &[Ftfw; 2]| {
            let ext = nodes[1].external();
            live.values()
                .filter(|e| !ext.get(&e.key().unwrap()).is_some_and(|o| o.entry() == **e))
                .count()
                + ext.len().saturating_sub(live.len())
        };
        if done_workload && link.inflight.is_empty() && nodes[0].tx_queue_len() == 0 {
            let ext = nodes[1].external();
            let converged = ext.len() == live.len()
                && missing(&nodes) == 0
                && nodes[1].external_exp().len() == exps.len()
                && exps.iter().all(|x| {
                    nodes[1]
                        .external_exp()
                        .get(&x.key().unwrap())
                        .is_some_and(|o| o.entry() == *x)
                });
            if converged {
                break;
            }
        }
        t += step;
        if !must_converge && done_workload && t > started.unwrap_or(0) + 60_000_000 {
            let st = nodes[0].stats();
            assert!(st.rs_max_len <= rs_bound);
            return (st.rs_evicted, missing(&nodes));
        }
        assert!(
            t < 600_000_000,
            "no convergence after 600 virtual seconds (seed {seed})"
        );
    }
    let ext = nodes[1].external();
    assert_eq!(
        ext.len(),
        live.len(),
        "external cache has duplicates or leftovers"
    );
    assert!(external_news > 0);
    assert_eq!(
        nodes[1].external_exp().len(),
        exps.len(),
        "expectations replicated once each"
    );
    let st = nodes[1].stats();
    let st0 = nodes[0].stats();
    assert!(link.dropped > 0 && link.duplicated > 0);
    assert!(st.nacks_sent > 0, "loss must have been repaired by NACKs");
    assert!(st0.resent > 0);
    eprintln!(
        "seed {seed}: converged at {:.1} s virtual; {} datagrams, {} dropped, {} duplicated; B sent {} NACKs, \
         A resent {}; max resend queue {} (bound {rs_bound}); {} live entries",
        t as f64 / 1e6,
        link.sent,
        link.dropped,
        link.duplicated,
        st.nacks_sent,
        st0.resent,
        st0.rs_max_len,
        live.len()
    );
    (st0.rs_evicted, 0)
}

#[test]
fn ftfw_converges_over_lossy_link() {
    for seed in [1, 2, 3] {
        run(Setup::new(seed), true);
    }
}

#[test]
fn ftfw_resend_queue_stays_bounded() {
    // A bound far below the traffic in flight: the oldest nodes are evicted (conntrackd's
    // rs_queue_purge_full) and the queue never grows past the bound (checked after every step).
    let su = Setup {
        rs_bound: 64,
        ..Setup::new(7)
    };
    let (evicted, _) = run(su, false);
    assert!(evicted > 0, "the bound was never reached");
}

/// conntrackd's FT-FW rules (the default settings) on both sides lose entries twice over on this link:
/// a burst that starts with the HELLO handshake (the receiver acknowledges whole windows of HELLO
/// messages, lost ones included), and a receiver that restarts mid-stream and asks for a resync (the
/// sender empties its resend queue on each of the receiver's HELLO messages, so the resync's losses are
/// never repaired). This is what the reliable handshake fixes; it also shows the setup can fail.
#[test]
fn conntrackd_rules_lose_entries_in_a_handshake() {
    let mut during = 0;
    let mut restart = 0;
    for seed in [1, 2, 3] {
        let su = Setup {
            at_once: true,
            ..Setup::new(seed)
        };
        during += run(su, false).1;
        let su = Setup {
            restart_receiver: Some(300_000),
            ..Setup::new(seed)
        };
        restart += run(su, false).1;
    }
    assert!(
        during > 0,
        "conntrackd's rules lost nothing during the handshake"
    );
    assert!(
        restart > 0,
        "conntrackd's rules lost nothing across the restart"
    );
}

#[test]
fn reliable_sender_loses_nothing_during_the_handshake() {
    // The burst starts with the handshake; the sender has the reliable handshake, the receiver too or
    // conntrackd's rules.
    for seed in [1, 2, 3] {
        for reliable in [[true, true], [true, false]] {
            let su = Setup {
                at_once: true,
                reliable,
                ..Setup::new(seed)
            };
            run(su, true);
        }
    }
}

#[test]
fn reliable_receiver_loses_nothing_from_a_conntrackd_sender_after_the_handshake() {
    for seed in [1, 2, 3, 6] {
        let su = Setup {
            reliable: [false, true],
            ..Setup::new(seed)
        };
        run(su, true);
    }
}

#[test]
fn reliable_handshake_survives_a_receiver_restart_mid_stream() {
    // The receiver is down for a second, comes back empty with a new sequence and asks for a resync.
    for seed in [1, 2, 3] {
        for reliable in [[true, true], [true, false], [false, true]] {
            let su = Setup {
                reliable,
                restart_receiver: Some(300_000),
                ..Setup::new(seed)
            };
            run(su, true);
        }
    }
}
