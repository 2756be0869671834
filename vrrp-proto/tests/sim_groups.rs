//! Sync groups, Fault and reload on a simulated LAN: nodes each run an `Instances` set, adverts go
//! through the real codec per interface with a 1 ms delay, on a virtual clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use vrrp_proto::{Action, Command, Config, Event, Instances, Reason, Router, State};

struct Node {
    set: Instances,
    alive: bool,
    /// (instance name) holding its addresses.
    holds: HashSet<String>,
    /// Interfaces whose packets are cut (both ways).
    cut: HashSet<String>,
    group_changes: Vec<(State, State)>,
    changes: Vec<(String, State, State, Reason)>,
}

struct Lan {
    now: Instant,
    nodes: Vec<Node>,
    /// (due, to node, interface, src, dst, bytes)
    flight: Vec<(Instant, usize, String, IpAddr, IpAddr, Vec<u8>)>,
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Node `n`'s set: VI_1 on eth0 (VRID 1), VI_2 on eth1 (VRID 2), in group G when `grouped`.
fn node_set(n: u8, prio: u8, grouped: bool) -> Instances {
    let mut set = Instances::new();
    for (name, ifname, vrid, net) in [("VI_1", "eth0", 1u8, 0u8), ("VI_2", "eth1", 2, 1)] {
        let mut c = Config::new(ifname, vrid, vec![ip(&format!("10.{net}.0.100"))]);
        c.priority = prio;
        c.advert_int = Duration::from_secs(1);
        let r = Router::new(c, ip(&format!("10.{net}.0.{n}"))).unwrap();
        set.add(name, r).unwrap();
    }
    if grouped {
        set.add_sync_group("G", &["VI_1", "VI_2"]).unwrap();
    }
    set
}

impl Lan {
    fn new(sets: Vec<Instances>) -> Lan {
        Lan {
            now: Instant::now(),
            nodes: sets
                .into_iter()
                .map(|set| Node {
                    set,
                    alive: true,
                    holds: HashSet::new(),
                    cut: HashSet::new(),
                    group_changes: Vec::new(),
                    changes: Vec::new(),
                })
                .collect(),
            flight: Vec::new(),
        }
    }

    fn drain(&mut self) {
        for i in 0..self.nodes.len() {
            while let Some(e) = self.nodes[i].set.poll_event() {
                match e {
                    Event::Instance { index, action } => {
                        let name = self.nodes[i].set.name(index).to_owned();
                        self.apply(i, &name, action);
                    }
                    Event::GroupState { from, to, .. } => {
                        self.nodes[i].group_changes.push((from, to))
                    }
                    _ => {}
                }
            }
        }
    }

    fn apply(&mut self, i: usize, name: &str, action: Action) {
        let ifname = match name {
            "VI_1" => "eth0",
            _ => "eth1",
        };
        match action {
            Action::SendAdvert(adv) => {
                if self.nodes[i].cut.contains(ifname) {
                    return;
                }
                let bytes = adv.to_bytes().unwrap();
                for j in 0..self.nodes.len() {
                    if j != i && !self.nodes[j].cut.contains(ifname) {
                        self.flight.push((
                            self.now + Duration::from_millis(1),
                            j,
                            ifname.to_owned(),
                            adv.src,
                            adv.dst,
                            bytes.clone(),
                        ));
                    }
                }
            }
            Action::AddAddresses { .. } => {
                self.nodes[i].holds.insert(name.to_owned());
            }
            Action::RemoveAddresses { .. } => {
                self.nodes[i].holds.remove(name);
            }
            Action::StateChange { from, to, reason } => {
                self.nodes[i]
                    .changes
                    .push((name.to_owned(), from, to, reason))
            }
            _ => {}
        }
    }

    fn run(&mut self, secs: f64) {
        let end = self.now + Duration::from_secs_f64(secs);
        loop {
            let p = self.flight.iter().map(|f| f.0).min();
            let t = self
                .nodes
                .iter()
                .filter(|n| n.alive)
                .filter_map(|n| n.set.poll_timeout())
                .min();
            let Some(next) = [p, t].into_iter().flatten().min() else {
                break;
            };
            if next > end {
                break;
            }
            self.now = next;
            let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.flight)
                .into_iter()
                .partition(|f| f.0 <= next);
            self.flight = rest;
            for (_, j, ifname, src, dst, bytes) in due {
                if self.nodes[j].alive {
                    let _ = self.nodes[j]
                        .set
                        .handle_packet(next, &ifname, src, dst, 255, &bytes);
                }
            }
            for n in self.nodes.iter_mut().filter(|n| n.alive) {
                n.set.handle_timeout(next);
            }
            self.drain();
        }
        self.now = end;
    }

    fn states(&self, i: usize) -> Vec<State> {
        self.nodes[i].set.iter().map(|(_, r)| r.state()).collect()
    }

    fn command(&mut self, i: usize, name: &str, cmd: Command) {
        let idx = self.nodes[i].set.index(name).unwrap();
        let now = self.now;
        self.nodes[i].set.command(now, idx, cmd);
        self.drain();
    }
}

fn started(sets: Vec<Instances>) -> Lan {
    let mut lan = Lan::new(sets);
    let now = lan.now;
    for n in &mut lan.nodes {
        n.set.start(now);
    }
    lan.drain();
    lan.run(5.0);
    lan
}

#[test]
fn group_members_fail_over_together_on_a_link_fault() {
    let mut lan = started(vec![node_set(1, 150, true), node_set(2, 100, true)]);
    assert_eq!(lan.states(0), vec![State::Master, State::Master]);
    assert_eq!(lan.states(1), vec![State::Backup, State::Backup]);
    assert_eq!(lan.nodes[0].set.group_state(0), State::Master);
    // eth1 of node 0 goes down: VI_2 faults, the group takes VI_1 to Fault with it (priority 0 on
    // eth0), node 1 takes both over.
    lan.nodes[0].cut.insert("eth1".into());
    lan.command(0, "VI_2", Command::InterfaceDown);
    assert_eq!(lan.states(0), vec![State::Fault, State::Fault]);
    assert!(lan.nodes[0].holds.is_empty());
    let vi1 = lan.nodes[0]
        .changes
        .iter()
        .rev()
        .find(|c| c.0 == "VI_1")
        .unwrap();
    assert_eq!(
        vi1.3,
        Reason::SyncGroup {
            member: "VI_2".into()
        }
    );
    lan.run(4.0);
    assert_eq!(lan.states(1), vec![State::Master, State::Master]);
    assert_eq!(lan.nodes[1].holds.len(), 2);
    assert_eq!(lan.nodes[0].set.group_state(0), State::Fault);
    assert_eq!(lan.nodes[1].set.group_state(0), State::Master);
    // The link comes back: node 0 returns to Backup, then preempts on both links (it has the higher
    // priority), and node 1's group follows its members back to Backup.
    lan.nodes[0].cut.clear();
    lan.command(0, "VI_2", Command::InterfaceUp);
    assert_eq!(lan.states(0), vec![State::Backup, State::Backup]);
    lan.run(5.0);
    assert_eq!(lan.states(0), vec![State::Master, State::Master]);
    assert_eq!(lan.states(1), vec![State::Backup, State::Backup]);
    assert_eq!(
        lan.nodes[1].group_changes.last(),
        Some(&(State::Master, State::Backup))
    );
    assert!(lan.nodes[1].holds.is_empty());
}

#[test]
fn a_group_waits_until_every_member_wants_master() {
    let mut lan = started(vec![node_set(1, 150, true), node_set(2, 100, true)]);
    // Node 1 stops hearing node 0 on eth0 only: its VI_1 wants Master, but VI_2 still hears a Master,
    // so the group (keepalived: "prefer backup state to avoid thrashing") stays Backup.
    lan.nodes[1].cut.insert("eth0".into());
    lan.run(10.0);
    assert_eq!(lan.states(1), vec![State::Backup, State::Backup]);
    assert!(lan.nodes[1].holds.is_empty());
    // Without the group, VI_1 would have taken over on its own.
    let mut lan = started(vec![node_set(1, 150, false), node_set(2, 100, false)]);
    lan.nodes[1].cut.insert("eth0".into());
    lan.run(10.0);
    assert_eq!(lan.states(1), vec![State::Master, State::Backup]);
    // With the group, a crash of node 0 makes every member want Master: they move together.
    let mut lan = started(vec![node_set(1, 150, true), node_set(2, 100, true)]);
    lan.nodes[0].alive = false;
    lan.run(3.0 + 156.0 / 256.0 + 0.1);
    assert_eq!(lan.states(1), vec![State::Master, State::Master]);
}

#[test]
fn a_master_member_beaten_on_one_link_takes_the_group_to_backup() {
    let mut lan = started(vec![node_set(1, 100, true), node_set(2, 150, true)]);
    assert_eq!(lan.states(1), vec![State::Master, State::Master]);
    // A third router with priority 200 on eth0 only, outside any group.
    let mut c = Config::new("eth0", 1, vec![ip("10.0.0.100")]);
    c.priority = 200;
    let mut third = Instances::new();
    third
        .add("VI_1", Router::new(c, ip("10.0.0.3")).unwrap())
        .unwrap();
    lan.nodes.push(Node {
        set: third,
        alive: true,
        holds: HashSet::new(),
        cut: ["eth1".to_owned()].into(),
        group_changes: Vec::new(),
        changes: Vec::new(),
    });
    let now = lan.now;
    lan.nodes[2].set.start(now);
    lan.drain();
    lan.run(6.0);
    // Node 2 won eth0; node 1's VI_1 went to Backup and took VI_2 with it (no priority 0), so node 0,
    // a Backup on eth1, takes VI_2 after Master_Down_Interval... and its group makes VI_1 want Master
    // too; it cannot win eth0 (priority 100 < 200): the group stays Backup there.
    assert_eq!(lan.nodes[2].set.router(0).unwrap().state(), State::Master);
    assert_eq!(lan.states(1)[0], State::Backup);
    assert!(
        lan.nodes[1].changes.iter().any(|c| c.0 == "VI_2"
            && c.2 == State::Backup
            && c.3
                == Reason::SyncGroup {
                    member: "VI_1".into()
                }),
        "{:?}",
        lan.nodes[1].changes
    );
}

#[test]
fn reload_keeps_unchanged_instances_and_applies_the_difference() {
    let mut lan = started(vec![node_set(1, 150, false), node_set(2, 100, false)]);
    assert_eq!(lan.states(0), vec![State::Master, State::Master]);
    let before = lan.nodes[0].changes.len();
    // New configuration for node 0: VI_1 unchanged but priority 140, VI_2 removed, VI_3 added.
    let mut next = Instances::new();
    let mut c = Config::new("eth0", 1, vec![ip("10.0.0.100")]);
    c.priority = 140;
    next.add("VI_1", Router::new(c, ip("10.0.0.1")).unwrap())
        .unwrap();
    let c = Config::new("eth1", 3, vec![ip("10.1.0.103")]);
    next.add("VI_3", Router::new(c, ip("10.1.0.1")).unwrap())
        .unwrap();
    let now = lan.now;
    let gone = lan.nodes[0].set.reload(now, next).gone;
    // VI_2 was shut down: priority 0, addresses removed, Initialize.
    assert!(gone.iter().all(|(n, _)| n == "VI_2"), "{gone:?}");
    assert!(
        gone.iter()
            .any(|(_, a)| matches!(a, Action::SendAdvert(adv) if adv.repr.priority == 0))
    );
    assert!(
        gone.iter()
            .any(|(_, a)| matches!(a, Action::RemoveAddresses { .. }))
    );
    lan.drain();
    // VI_1 kept its state (no state change at all) and took the new priority.
    let vi1 = lan.nodes[0].set.router(0).unwrap();
    assert_eq!(vi1.state(), State::Master);
    assert_eq!(vi1.priority(), 140);
    assert!(
        lan.nodes[0].changes[before..].iter().all(|c| c.0 != "VI_1"),
        "{:?}",
        &lan.nodes[0].changes[before..]
    );
    // VI_3 started in Backup.
    assert_eq!(lan.nodes[0].set.router(1).unwrap().state(), State::Backup);
    lan.run(5.0);
    assert_eq!(lan.states(0), vec![State::Master, State::Master]);
}

#[test]
fn duplicate_vrid_and_unknown_group_member_are_refused() {
    let mut set = node_set(1, 100, false);
    let c = Config::new("eth0", 1, vec![ip("10.0.0.200")]);
    let e = set
        .add("OTHER", Router::new(c, ip("10.0.0.1")).unwrap())
        .unwrap_err();
    assert_eq!(e.field, "virtual_router_id");
    let e = set.add_sync_group("G", &["VI_1", "NOPE"]).unwrap_err();
    assert_eq!(e.field, "group");
    set.add_sync_group("G", &["VI_1"]).unwrap();
    assert!(set.add_sync_group("H", &["VI_1", "VI_2"]).is_err());
}
