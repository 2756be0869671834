//! A simulated LAN of 2 to 5 routers on a seeded virtual clock. Adverts go through the real codec
//! (emit, then `handle_packet` on the bytes), with a fixed link delay, optional seeded loss and partitions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;
use std::time::{Duration, Instant};
use vrrp_proto::config::{Track, Version};
use vrrp_proto::{Action, Command, Config, Reason, Router, State};

const DELAY: Duration = Duration::from_millis(1);

struct Node {
    router: Router,
    alive: bool,
    group: u8,
    holds_vips: bool,
    /// (time, from, to, reason)
    changes: Vec<(Instant, State, State, Reason)>,
    /// Time each advert was delivered to this node (accepted or not).
    rx: Vec<Instant>,
    sent: usize,
}

struct Packet {
    at: Instant,
    seq: u64,
    to: usize,
    src: IpAddr,
    dst: IpAddr,
    bytes: Vec<u8>,
}

struct Lan {
    t0: Instant,
    now: Instant,
    nodes: Vec<Node>,
    flight: Vec<Packet>,
    seq: u64,
    rng: u64,
    /// Drop probability in per-mille.
    loss: u64,
    dropped: usize,
}

impl Lan {
    fn new(seed: u64, routers: Vec<Router>) -> Lan {
        let t0 = Instant::now();
        Lan {
            t0,
            now: t0,
            nodes: routers
                .into_iter()
                .map(|router| Node {
                    router,
                    alive: true,
                    group: 0,
                    holds_vips: false,
                    changes: Vec::new(),
                    rx: Vec::new(),
                    sent: 0,
                })
                .collect(),
            flight: Vec::new(),
            seq: 0,
            rng: seed,
            loss: 0,
            dropped: 0,
        }
    }

    fn at(&self, secs: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(secs)
    }

    /// splitmix64
    fn rand(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn command(&mut self, i: usize, cmd: Command) {
        let now = self.now;
        self.nodes[i].router.handle_command(now, cmd);
        self.drain();
    }

    fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.command(i, Command::Startup);
        }
    }

    fn drain(&mut self) {
        for i in 0..self.nodes.len() {
            while let Some(a) = self.nodes[i].router.poll_action() {
                match a {
                    Action::SendAdvert(adv) => {
                        self.nodes[i].sent += 1;
                        let bytes = adv.to_bytes().unwrap();
                        for j in 0..self.nodes.len() {
                            if j == i || self.nodes[j].group != self.nodes[i].group {
                                continue;
                            }
                            // Unicast goes to the node owning the destination address only.
                            if !adv.dst.is_multicast()
                                && self.nodes[j].router.source_address() != adv.dst
                            {
                                continue;
                            }
                            if self.loss > 0 && self.rand() % 1000 < self.loss {
                                self.dropped += 1;
                                continue;
                            }
                            self.seq += 1;
                            self.flight.push(Packet {
                                at: self.now + DELAY,
                                seq: self.seq,
                                to: j,
                                src: adv.src,
                                dst: adv.dst,
                                bytes: bytes.clone(),
                            });
                        }
                    }
                    Action::AddAddresses { .. } => self.nodes[i].holds_vips = true,
                    Action::RemoveAddresses { .. } => self.nodes[i].holds_vips = false,
                    Action::StateChange { from, to, reason } => {
                        self.nodes[i].changes.push((self.now, from, to, reason))
                    }
                    _ => {}
                }
            }
        }
    }

    fn next_event(&self) -> Option<Instant> {
        let p = self.flight.iter().map(|p| p.at).min();
        let t = self
            .nodes
            .iter()
            .filter(|n| n.alive)
            .filter_map(|n| n.router.poll_timeout())
            .min();
        [p, t].into_iter().flatten().min()
    }

    fn run_until(&mut self, end: Instant) {
        while let Some(t) = self.next_event() {
            if t > end {
                break;
            }
            self.now = t;
            // Deliveries due now, in send order.
            let mut due: Vec<Packet> = Vec::new();
            let mut i = 0;
            while i < self.flight.len() {
                if self.flight[i].at <= t {
                    due.push(self.flight.swap_remove(i));
                } else {
                    i += 1;
                }
            }
            due.sort_by_key(|p| p.seq);
            for p in due {
                let n = &mut self.nodes[p.to];
                if n.alive {
                    n.rx.push(t);
                    let _ = n.router.handle_packet(t, p.src, p.dst, 255, &p.bytes);
                }
            }
            for n in self.nodes.iter_mut().filter(|n| n.alive) {
                if n.router.poll_timeout().is_some_and(|d| d <= t) {
                    n.router.handle_timeout(t);
                }
            }
            self.drain();
        }
        self.now = end;
    }

    fn run_secs(&mut self, secs: f64) {
        let end = self.now + Duration::from_secs_f64(secs);
        self.run_until(end);
    }

    fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].alive && self.nodes[i].router.state() == State::Master)
            .collect()
    }

    fn crash(&mut self, i: usize) {
        self.nodes[i].alive = false;
        self.flight.retain(|p| p.to != i);
    }

    /// When node `i` last received an advert before `before`.
    fn last_rx_before(&self, i: usize, before: Instant) -> Instant {
        *self.nodes[i]
            .rx
            .iter()
            .filter(|&&t| t < before)
            .max()
            .unwrap()
    }

    fn last_change(&self, i: usize) -> &(Instant, State, State, Reason) {
        self.nodes[i].changes.last().unwrap()
    }
}

fn v4(i: u8) -> IpAddr {
    IpAddr::from([192, 0, 2, i])
}

fn cfg(prio: u8) -> Config {
    let mut c = Config::new("eth0", 7, vec![v4(100)]);
    c.priority = prio;
    c
}

fn routers(prios: &[u8], f: impl Fn(&mut Config)) -> Vec<Router> {
    prios
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let mut c = cfg(p);
            f(&mut c);
            Router::new(c, v4(u8::try_from(i).unwrap() + 1)).unwrap()
        })
        .collect()
}

/// Skew_Time and Master_Down_Interval by RFC 5798 §6.1, computed here independently of the crate.
fn v3_mdi(prio: u8, mai: Duration) -> Duration {
    let skew = Duration::from_nanos(
        u64::try_from(mai.as_nanos() * (256 - u128::from(prio)) / 256).unwrap(),
    );
    mai * 3 + skew
}

#[test]
fn election_highest_priority_wins_without_flapping() {
    let mut lan = Lan::new(1, routers(&[100, 200, 150], |_| {}));
    lan.start_all();
    lan.run_secs(20.0);
    assert_eq!(lan.masters(), vec![1]);
    // Node 1 became Master exactly when its first Master_Down_Interval ran out, nobody else ever did.
    let (t, from, to, reason) = lan.nodes[1].changes[1].clone();
    assert_eq!(
        (from, to, reason),
        (State::Backup, State::Master, Reason::MasterDown)
    );
    assert_eq!(t, lan.t0 + v3_mdi(200, Duration::from_secs(1)));
    for i in [0, 2] {
        assert_eq!(
            lan.nodes[i].changes.len(),
            1,
            "node {i}: {:?}",
            lan.nodes[i].changes
        );
        assert_eq!(lan.nodes[i].router.master(), Some((v4(2), 200)));
        assert!(!lan.nodes[i].holds_vips);
    }
    assert!(lan.nodes[1].holds_vips);
    // One advert on taking over, then one a second until t = 20 s, from the Master only.
    let after = lan.at(20.0) - t;
    assert_eq!(
        lan.nodes[1].sent,
        1 + usize::try_from(after.as_secs()).unwrap()
    );
    assert_eq!(lan.nodes[0].sent + lan.nodes[2].sent, 0);
}

#[test]
fn failover_exactly_at_master_down_interval_v3() {
    let mut lan = Lan::new(2, routers(&[100, 200, 150], |_| {}));
    lan.start_all();
    lan.run_secs(10.0);
    lan.crash(1);
    lan.run_secs(10.0);
    assert_eq!(lan.masters(), vec![2]);
    let last_rx = lan.last_rx_before(2, lan.at(10.0));
    let (t, _, to, reason) = lan.last_change(2).clone();
    assert_eq!((to, reason), (State::Master, Reason::MasterDown));
    assert_eq!(t - last_rx, v3_mdi(150, Duration::from_secs(1)));
    // And not a nanosecond earlier: the other backup (prio 100) heard the new master first.
    assert_eq!(lan.nodes[0].changes.len(), 1);
    assert_eq!(lan.nodes[0].router.master(), Some((v4(3), 150)));
}

#[test]
fn failover_exactly_at_master_down_interval_v2() {
    let mut lan = Lan::new(
        3,
        routers(&[100, 254], |c| {
            c.version = Version::V2;
            c.advert_int = Duration::from_secs(2);
            c.auth_pass = Some(b"pw".to_vec());
        }),
    );
    lan.start_all();
    lan.run_secs(20.0);
    assert_eq!(lan.masters(), vec![1]);
    lan.crash(1);
    lan.run_secs(20.0);
    let last_rx = lan.last_rx_before(0, lan.at(20.0));
    let (t, _, to, _) = lan.last_change(0).clone();
    assert_eq!(to, State::Master);
    // RFC 3768 §6.1: 3 * Advertisement_Interval + (256 - 100) / 256 s.
    assert_eq!(
        t - last_rx,
        Duration::from_secs(6) + Duration::from_nanos(156 * 1_000_000_000 / 256)
    );
}

#[test]
fn v3_backup_learns_master_adver_interval() {
    // The master advertises every 500 ms; the backup is configured with 2 s but must learn 500 ms.
    let mut rs = routers(&[200], |c| c.advert_int = Duration::from_millis(500));
    rs.extend(
        routers(&[100, 100], |c| c.advert_int = Duration::from_secs(2))
            .into_iter()
            .skip(1),
    );
    let mut lan = Lan::new(4, rs);
    // Node 1 of the second batch has address .2.
    lan.start_all();
    lan.run_secs(8.0);
    assert_eq!(lan.masters(), vec![0]);
    assert_eq!(
        lan.nodes[1].router.master_adver_interval(),
        Duration::from_millis(500)
    );
    lan.crash(0);
    lan.run_secs(10.0);
    let last_rx = lan.last_rx_before(1, lan.at(8.0));
    let (t, _, to, _) = lan.last_change(1).clone();
    assert_eq!(to, State::Master);
    assert_eq!(t - last_rx, v3_mdi(100, Duration::from_millis(500)));
}

#[test]
fn preemption_by_a_higher_priority_latecomer() {
    let mut lan = Lan::new(5, routers(&[100, 200], |_| {}));
    lan.command(0, Command::Startup);
    lan.run_secs(10.0);
    assert_eq!(lan.masters(), vec![0]);
    let start = lan.now;
    lan.command(1, Command::Startup);
    lan.run_secs(10.0);
    assert_eq!(lan.masters(), vec![1]);
    // Lower-priority adverts are discarded, so the takeover comes one Master_Down_Interval after startup.
    let (t, _, to, reason) = lan.last_change(1).clone();
    assert_eq!((to, reason), (State::Master, Reason::Preempt));
    assert_eq!(t - start, v3_mdi(200, Duration::from_secs(1)));
    let (t0, _, to0, reason0) = lan.last_change(0).clone();
    assert_eq!(
        (to0, reason0),
        (
            State::Backup,
            Reason::HigherPriority {
                from: v4(2),
                priority: 200
            }
        )
    );
    assert_eq!(t0, t + DELAY);
}

#[test]
fn nopreempt_keeps_the_running_master() {
    let mut lan = Lan::new(6, routers(&[100, 200], |c| c.nopreempt = true));
    lan.command(0, Command::Startup);
    lan.run_secs(10.0);
    lan.command(1, Command::Startup);
    lan.run_secs(30.0);
    assert_eq!(lan.masters(), vec![0]);
    assert_eq!(lan.nodes[1].router.state(), State::Backup);
}

#[test]
fn preempt_delay_postpones_the_takeover() {
    let mut lan = Lan::new(
        7,
        routers(&[100, 200], |c| c.preempt_delay = Duration::from_secs(5)),
    );
    lan.command(0, Command::Startup);
    lan.run_secs(10.0);
    let start = lan.now;
    lan.command(1, Command::Startup);
    lan.run_secs(4.9);
    assert_eq!(lan.masters(), vec![0], "no preemption inside preempt_delay");
    lan.run_secs(10.0);
    assert_eq!(lan.masters(), vec![1]);
    // keepalived 2.2.7: the delay runs from the first lower-priority advert heard. The last advert
    // accepted came before that + 5 s; the takeover is one Master_Down_Interval later.
    let (t, _, _, reason) = lan.last_change(1).clone();
    assert_eq!(reason, Reason::Preempt);
    let first_heard = *lan.nodes[1].rx.iter().find(|&&r| r >= start).unwrap();
    assert!(first_heard > start);
    let delay_end = first_heard + Duration::from_secs(5);
    let last_accepted = lan.last_rx_before(1, delay_end);
    assert_eq!(t - last_accepted, v3_mdi(200, Duration::from_secs(1)));
    assert!(t > delay_end);
}

/// The delay applies again when the higher-priority router comes back from a fault: it must hear the
/// lower-priority Master for preempt_delay before preempting (keepalived 2.2.7; it once counted from
/// Startup only, so a router back from an interface fault preempted at once).
#[test]
fn preempt_delay_applies_after_a_fault_too() {
    let mut lan = Lan::new(
        17,
        routers(&[100, 200], |c| c.preempt_delay = Duration::from_secs(5)),
    );
    lan.start_all();
    lan.run_secs(30.0);
    assert_eq!(lan.masters(), vec![1]);
    lan.command(1, Command::InterfaceDown);
    lan.run_secs(10.0);
    assert_eq!(lan.masters(), vec![0]);
    let back = lan.now;
    lan.command(1, Command::InterfaceUp);
    lan.run_secs(4.5);
    assert_eq!(lan.masters(), vec![0], "no preemption inside preempt_delay");
    lan.run_secs(10.0);
    assert_eq!(lan.masters(), vec![1]);
    let first_heard = *lan.nodes[1].rx.iter().find(|&&r| r >= back).unwrap();
    let delay_end = first_heard + Duration::from_secs(5);
    let last_accepted = lan.last_rx_before(1, delay_end);
    let (t, _, _, reason) = lan.last_change(1).clone();
    assert_eq!(reason, Reason::Preempt);
    assert_eq!(t - last_accepted, v3_mdi(200, Duration::from_secs(1)));
}

#[test]
fn priority_zero_hand_over_after_skew_time() {
    let mut lan = Lan::new(8, routers(&[100, 200, 150], |_| {}));
    lan.start_all();
    lan.run_secs(10.0);
    lan.command(1, Command::Shutdown);
    let shut = lan.now;
    lan.run_secs(5.0);
    assert_eq!(lan.masters(), vec![2]);
    assert!(!lan.nodes[1].holds_vips);
    let (t, _, to, reason) = lan.last_change(2).clone();
    assert_eq!((to, reason), (State::Master, Reason::HandOver));
    // RFC 5798 §6.4.2: Master_Down_Timer = Skew_Time after the priority-0 advert arrives.
    let skew = Duration::from_nanos(1_000_000_000 * (256 - 150) / 256);
    assert_eq!(t, shut + DELAY + skew);
    assert_eq!(lan.last_change(1).3, Reason::Shutdown);
}

#[test]
fn owner_takes_over_at_once() {
    let mut lan = Lan::new(9, routers(&[100, 255], |_| {}));
    lan.command(0, Command::Startup);
    lan.run_secs(10.0);
    assert_eq!(lan.masters(), vec![0]);
    let start = lan.now;
    lan.command(1, Command::Startup);
    // RFC 5798 §6.4.1: the owner goes to Master on Startup, no waiting.
    let (t, from, to, reason) = lan.last_change(1).clone();
    assert_eq!(
        (t, from, to, reason),
        (start, State::Initialize, State::Master, Reason::Owner)
    );
    lan.run_secs(0.5);
    assert_eq!(lan.masters(), vec![1]);
    assert_eq!(lan.last_change(0).0, start + DELAY);
}

#[test]
fn split_brain_heals_to_the_higher_address() {
    // Equal priorities: RFC 5798 §6.4.3 breaks the tie by the higher primary address.
    let mut lan = Lan::new(10, routers(&[100, 100, 100], |_| {}));
    lan.start_all();
    lan.run_secs(10.0);
    assert_eq!(lan.masters().len(), 1);
    // Partition: node 0 alone on one side.
    lan.nodes[0].group = 1;
    lan.run_secs(10.0);
    assert_eq!(lan.masters().len(), 2, "both sides elect a master");
    assert!(lan.nodes[0].holds_vips);
    lan.nodes[0].group = 0;
    lan.run_secs(3.0);
    assert_eq!(lan.masters(), vec![2]);
    for i in [0, 1] {
        assert_eq!(lan.nodes[i].router.state(), State::Backup);
        assert!(!lan.nodes[i].holds_vips);
    }
}

#[test]
fn split_brain_heals_to_the_higher_priority() {
    let mut lan = Lan::new(11, routers(&[150, 120, 110, 130], |_| {}));
    lan.start_all();
    lan.run_secs(10.0);
    assert_eq!(lan.masters(), vec![0]);
    lan.nodes[2].group = 1;
    lan.nodes[3].group = 1;
    lan.run_secs(10.0);
    assert_eq!(lan.masters(), vec![0, 3]);
    lan.nodes[2].group = 0;
    lan.nodes[3].group = 0;
    lan.run_secs(3.0);
    assert_eq!(lan.masters(), vec![0]);
    assert_eq!(
        lan.last_change(3).3,
        Reason::HigherPriority {
            from: v4(1),
            priority: 150
        }
    );
}

#[test]
fn packet_loss_keeps_the_highest_priority_master() {
    let mut lan = Lan::new(0x5eed, routers(&[200, 150, 100, 120, 180], |_| {}));
    lan.loss = 100; // 10 %
    lan.start_all();
    let mut dual_ms = 0u32;
    let mut none_ms = 0u32;
    // Sample every 10 ms for 200 s.
    for _ in 0..20_000 {
        lan.run_secs(0.01);
        match lan.masters().len() {
            0 => none_ms += 10,
            1 => {}
            _ => dual_ms += 10,
        }
    }
    assert!(lan.dropped > 0);
    eprintln!(
        "dropped {} adverts; no master {none_ms} ms, two masters {dual_ms} ms",
        lan.dropped
    );
    // The highest priority is never demoted by loss: only a better advert could demote it.
    assert_eq!(lan.nodes[0].changes.len(), 2, "{:?}", lan.nodes[0].changes);
    // Initial election apart (about 3.2 s), someone is always Master, and spurious takeovers
    // (three adverts lost in a row, p = 0.001 per second per backup) are short and rare.
    assert!(none_ms <= 3_300, "no master for {none_ms} ms");
    assert!(dual_ms <= 2_000, "two masters for {dual_ms} ms");
    lan.loss = 0;
    lan.run_secs(5.0);
    assert_eq!(lan.masters(), vec![0]);
}

#[test]
fn unicast_peers_elect_and_fail_over() {
    let peers = [v4(1), v4(2)];
    let mut lan = Lan::new(
        12,
        routers(&[100, 200], |c| {
            c.unicast_peer = peers.to_vec();
        }),
    );
    // Unicast sources default to the primary addresses; both routers share one peer list naming both,
    // and a router never sends to itself: exactly one unicast advert per interval.
    lan.start_all();
    lan.run_secs(10.0);
    assert_eq!(lan.masters(), vec![1]);
    let took_over = lan.last_change(1).0;
    assert_eq!(
        lan.nodes[1].sent,
        1 + usize::try_from((lan.at(10.0) - took_over).as_secs()).unwrap()
    );
    lan.crash(1);
    lan.run_secs(10.0);
    assert_eq!(lan.masters(), vec![0]);
}

#[test]
fn five_ipv6_routers_elect_one() {
    let rs: Vec<Router> = [90u8, 210, 130, 170, 50]
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let mut c = Config::new(
                "eth0",
                9,
                vec!["fe80::9".parse().unwrap(), "2001:db8::9".parse().unwrap()],
            );
            c.priority = p;
            c.advert_int = Duration::from_millis(300);
            let me: IpAddr = format!("fe80::{}", i + 1).parse().unwrap();
            Router::new(c, me).unwrap()
        })
        .collect();
    let mut lan = Lan::new(13, rs);
    lan.start_all();
    lan.run_secs(5.0);
    assert_eq!(lan.masters(), vec![1]);
    lan.crash(1);
    lan.run_secs(5.0);
    assert_eq!(lan.masters(), vec![3]);
    let last_rx = lan.last_rx_before(3, lan.at(5.0));
    assert_eq!(
        lan.last_change(3).0 - last_rx,
        v3_mdi(170, Duration::from_millis(300))
    );
}

#[test]
fn tracking_weight_moves_the_master() {
    let mut lan = Lan::new(
        14,
        routers(&[150, 130], |c| {
            c.track = vec![Track::new("uplink", -30)];
        }),
    );
    lan.start_all();
    lan.run_secs(10.0);
    assert_eq!(lan.masters(), vec![0]);
    lan.command(
        0,
        Command::Track {
            name: "uplink".into(),
            up: false,
        },
    );
    assert_eq!(lan.nodes[0].router.priority(), 120);
    lan.run_secs(10.0);
    assert_eq!(lan.masters(), vec![1]);
    lan.command(
        0,
        Command::Track {
            name: "uplink".into(),
            up: true,
        },
    );
    lan.run_secs(10.0);
    assert_eq!(lan.masters(), vec![0]);
}

#[test]
fn interface_down_and_up() {
    let mut lan = Lan::new(15, routers(&[200, 100], |_| {}));
    lan.start_all();
    lan.run_secs(10.0);
    lan.command(0, Command::InterfaceDown);
    assert_eq!(lan.last_change(0).3, Reason::InterfaceDown);
    assert!(!lan.nodes[0].holds_vips);
    lan.run_secs(10.0);
    assert_eq!(lan.masters(), vec![1]);
    lan.command(0, Command::InterfaceUp);
    lan.run_secs(10.0);
    assert_eq!(lan.masters(), vec![0]);
}
