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
    /// Every action applied, with its instance's name and the time.
    log: Vec<(Instant, String, Action)>,
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
                    log: Vec::new(),
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
        self.nodes[i]
            .log
            .push((self.now, name.to_owned(), action.clone()));
        let ifname = match name {
            "VI_2" | "VI_3" => "eth1",
            _ => "eth0",
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
        log: Vec::new(),
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

/// Node `n`'s VI_1 alone on eth0 (VRID 1), VRRPv3 at 1 s, with `vips` and `prio`.
fn vi1(n: u8, prio: u8, vips: &[&str], edit: impl FnOnce(&mut Config)) -> Instances {
    let mut c = Config::new("eth0", 1, vips.iter().map(|a| ip(a)).collect());
    c.priority = prio;
    edit(&mut c);
    let mut set = Instances::new();
    set.add("VI_1", Router::new(c, ip(&format!("10.0.0.{n}"))).unwrap())
        .unwrap();
    set
}

fn addrs(v: &[vrrp_proto::VirtualAddress]) -> Vec<String> {
    v.iter().map(|a| a.addr.to_string()).collect()
}

/// keepalived's reload of an instance it keeps: a Master stays Master with no state change, its
/// addresses change as a difference (removed ones removed, new ones added, then all announced),
/// the new advert_int takes effect at once, the new priority goes out, new tracking applies; the
/// peer never takes over.
#[test]
fn reload_keeps_a_master_and_applies_addresses_as_a_difference() {
    let mut lan = started(vec![
        vi1(1, 150, &["10.0.0.100", "10.0.0.102"], |_| {}),
        vi1(2, 100, &["10.0.0.100", "10.0.0.102"], |_| {}),
    ]);
    assert_eq!(lan.states(0), vec![State::Master]);
    let changes = lan.nodes[0].changes.len();
    // The peer gets the same address list (RFC 5798 §7.1: a non-owner's advert with another list
    // is dropped); it is a Backup and stays one.
    let now = lan.now;
    let peer = vi1(2, 100, &["10.0.0.100", "10.0.0.101"], |_| {});
    assert_eq!(lan.nodes[1].set.reload(now, peer).kept.len(), 1);
    lan.drain();
    let t0 = lan.now;
    let next = vi1(1, 140, &["10.0.0.100", "10.0.0.101"], |c| {
        c.advert_int = Duration::from_millis(500);
        c.nopreempt = true;
        c.track.push(vrrp_proto::Track::new("script:chk", -20));
    });
    let done = lan.nodes[0].set.reload(t0, next);
    assert!(done.gone.is_empty(), "{:?}", done.gone);
    assert_eq!(done.kept, [("VI_1".to_owned(), 0)]);
    lan.drain();
    let log: Vec<&Action> = lan.nodes[0]
        .log
        .iter()
        .filter(|l| l.0 >= t0)
        .map(|l| &l.2)
        .collect();
    let [
        Action::RemoveAddresses { addresses: removed },
        Action::AddAddresses {
            addresses: added, ..
        },
        Action::Announce {
            addresses: announced,
            repeat: 5,
        },
    ] = log.as_slice()
    else {
        panic!("{log:#?}");
    };
    assert_eq!(addrs(removed), ["10.0.0.102"]);
    assert_eq!(addrs(added), ["10.0.0.101"]);
    assert_eq!(addrs(announced), ["10.0.0.100", "10.0.0.101"]);
    lan.run(3.0);
    // Adverts every 0.5 s from now on, with priority 140 and the new interval; a failing tracked
    // script lowers them to 120; the Backup (v3) learns the interval and never takes over.
    let sent: Vec<(Instant, u8, u16)> = lan.nodes[0]
        .log
        .iter()
        .filter(|l| l.0 > t0)
        .filter_map(|l| match &l.2 {
            Action::SendAdvert(a) => match a.repr.body {
                vrrp_proto::wire::Body::V3 { max_adver_int, .. } => {
                    Some((l.0, a.repr.priority, max_adver_int))
                }
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert!(sent.len() >= 5, "{sent:?}");
    assert!(sent[0].0 - t0 <= Duration::from_millis(500), "{sent:?}");
    assert!(sent.iter().all(|s| s.1 == 140 && s.2 == 50), "{sent:?}");
    lan.command(
        0,
        "VI_1",
        Command::Track {
            name: "script:chk".into(),
            up: false,
        },
    );
    assert_eq!(lan.nodes[0].set.router(0).unwrap().priority(), 120);
    lan.run(3.0);
    assert_eq!(
        lan.nodes[0].changes.len(),
        changes,
        "{:?}",
        lan.nodes[0].changes
    );
    assert_eq!(lan.states(1), vec![State::Backup]);
    assert_eq!(
        lan.nodes[1].set.router(0).unwrap().master_adver_interval(),
        Duration::from_millis(500)
    );
    assert!(lan.nodes[0].set.router(0).unwrap().config().nopreempt);
}

/// A Backup reloaded with a new interval stays Backup (its Master_Down_Timer restarts), and a
/// renamed instance keeps running under its new name.
#[test]
fn reload_keeps_a_backup_and_follows_a_rename() {
    let mut lan = started(vec![
        vi1(1, 150, &["10.0.0.100"], |_| {}),
        vi1(2, 100, &["10.0.0.100"], |_| {}),
    ]);
    let changes = lan.nodes[1].changes.len();
    let now = lan.now;
    let next = vi1(2, 100, &["10.0.0.100"], |c| {
        c.advert_int = Duration::from_secs(2)
    });
    assert!(lan.nodes[1].set.reload(now, next).gone.is_empty());
    lan.drain();
    lan.run(10.0);
    assert_eq!(lan.states(1), vec![State::Backup]);
    assert_eq!(lan.nodes[1].changes.len(), changes);
    // Renamed: same identity, so the same running router (no state change), new name.
    let mut renamed = Instances::new();
    let mut c = Config::new("eth0", 1, vec![ip("10.0.0.100")]);
    c.priority = 150;
    renamed
        .add("VI_X", Router::new(c, ip("10.0.0.1")).unwrap())
        .unwrap();
    let before = lan.nodes[0].changes.len();
    let now = lan.now;
    let done = lan.nodes[0].set.reload(now, renamed);
    assert_eq!(done.kept, [("VI_1".to_owned(), 0)]);
    assert!(done.gone.is_empty());
    lan.drain();
    assert_eq!(lan.nodes[0].set.name(0), "VI_X");
    assert_eq!(lan.nodes[0].set.router(0).unwrap().state(), State::Master);
    assert_eq!(lan.nodes[0].changes.len(), before);
}

/// Identity changes start the instance over: VRID, interface, family, version, becoming the owner.
/// The old one hands over with priority 0 and drops its addresses; the new one starts in Backup.
#[test]
fn reload_restarts_an_instance_whose_identity_changed() {
    type Edit = fn(&mut Config);
    let edits: [(&str, Edit); 4] = [
        ("VRID", |c| c.virtual_router_id = 9),
        ("interface", |c| c.interface = "eth9".into()),
        ("version", |c| c.version = vrrp_proto::Version::V2),
        ("owner", |c| c.priority = 255),
    ];
    for (what, edit) in edits {
        let mut lan = started(vec![vi1(1, 150, &["10.0.0.100"], |_| {})]);
        assert_eq!(lan.states(0), vec![State::Master], "{what}");
        let now = lan.now;
        let done = lan.nodes[0]
            .set
            .reload(now, vi1(1, 150, &["10.0.0.100"], edit));
        assert!(done.kept.is_empty(), "{what}");
        assert!(
            done.gone
                .iter()
                .any(|(_, a)| matches!(a, Action::SendAdvert(x) if x.repr.priority == 0)),
            "{what}: {:?}",
            done.gone
        );
        assert!(
            done.gone
                .iter()
                .any(|(_, a)| matches!(a, Action::RemoveAddresses { .. })),
            "{what}"
        );
        let expect = if what == "owner" {
            State::Master
        } else {
            State::Backup
        };
        assert_eq!(
            lan.nodes[0].set.router(0).unwrap().state(),
            expect,
            "{what}"
        );
    }
    // A family change too.
    let mut set = vi1(1, 150, &["10.0.0.100"], |_| {});
    let now = Instant::now();
    set.start(now);
    let mut v6 = Instances::new();
    v6.add(
        "VI_1",
        Router::new(Config::new("eth0", 1, vec![ip("fe80::100")]), ip("fe80::1")).unwrap(),
    )
    .unwrap();
    assert!(set.reload(now, v6).kept.is_empty());
}

/// A sync group whose members keep their identity keeps its state through a reload (no group event,
/// so no group notify), while a change of membership starts its members over.
#[test]
fn reload_keeps_an_unchanged_sync_group() {
    let mut lan = started(vec![node_set(1, 150, true), node_set(2, 100, true)]);
    assert_eq!(lan.nodes[0].set.group_state(0), State::Master);
    let groups = lan.nodes[0].group_changes.len();
    let changes = lan.nodes[0].changes.len();
    let now = lan.now;
    let done = lan.nodes[0].set.reload(now, node_set(1, 140, true));
    assert_eq!(done.kept.len(), 2);
    lan.drain();
    lan.run(3.0);
    assert_eq!(lan.nodes[0].group_changes.len(), groups);
    assert_eq!(lan.nodes[0].changes.len(), changes);
    assert_eq!(lan.states(0), vec![State::Master, State::Master]);
    // Out of the group: both members start over.
    let now = lan.now;
    let done = lan.nodes[0].set.reload(now, node_set(1, 140, false));
    assert!(done.kept.is_empty(), "{:?}", done.kept);
}
