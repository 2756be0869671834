//! Many routers as one sans-IO core: demultiplexing by interface, family and VRID, keepalived's
//! `vrrp_sync_group`, and configuration reload that keeps the state of unchanged instances.
//!
//! Same shape as [`Router`]: `handle_packet`, `handle_timeout`, `handle_command` in; [`Instances::poll_event`]
//! and [`Instances::poll_timeout`] out. Sync groups follow keepalived 2.2.7 (`vrrp_sync.c`):
//!
//! * a member that becomes Master on its own takes every other member to Master with it, but a
//!   member's Master_Down_Timer only makes it *want* Master: the group moves when every member wants it
//!   (`vrrp_sync_can_goto_master`, "prefer backup state to avoid thrashing");
//! * a Master member that goes to Backup (a better advert) takes the others to Backup, without a
//!   priority 0 advert (`vrrp_sync_backup`);
//! * while any member has a fault of its own, every member is in Fault; Masters send priority 0 on the
//!   way (`vrrp_sync_fault`); when none has, they all return to Backup.
//!
//! The group's state is Fault if a member is in Fault, Master if all are Master, Backup otherwise once
//! running; each change is an [`Event::GroupState`] (what keepalived's group notify scripts follow).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Instant;

use crate::config::{Config, ConfigError};
use crate::router::{Action, Command, Reason, Router, RxError, State};
use crate::wire::{Family, Packet};

/// What the driver should do or report, from one of the instances or a sync group.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// An action of the instance at `index` ([`Instances::name`] gives its name).
    Instance {
        /// The instance's index.
        index: usize,
        /// What it wants done.
        action: Action,
    },
    /// A sync group changed state.
    GroupState {
        /// The group's index ([`Instances::group_name`]).
        group: usize,
        /// Before.
        from: State,
        /// After.
        to: State,
    },
}

#[derive(Debug)]
struct Slot {
    name: String,
    router: Router,
    group: Option<usize>,
    /// The group fault last imposed on it (the faulty member's name).
    group_fault: Option<String>,
}

#[derive(Debug)]
struct Group {
    name: String,
    members: Vec<usize>,
    state: State,
}

/// A set of named routers and sync groups. Build it with [`Instances::add`] and
/// [`Instances::add_sync_group`], then [`Instances::start`] it.
#[derive(Debug, Default)]
pub struct Instances {
    slots: Vec<Slot>,
    groups: Vec<Group>,
    events: VecDeque<Event>,
    work: Vec<usize>,
}

fn conf_err(field: &'static str, problem: String) -> ConfigError {
    ConfigError { field, problem }
}

impl Instances {
    /// An empty set.
    pub fn new() -> Instances {
        Instances::default()
    }

    /// Adds a router named `name`. Names are unique, and so is each (interface, family, VRID).
    pub fn add(&mut self, name: &str, router: Router) -> Result<usize, ConfigError> {
        if self.index(name).is_some() {
            return Err(conf_err(
                "vrrp_instance",
                format!("{name}: two instances have this name"),
            ));
        }
        let c = router.config();
        if let Some(other) = self.slots.iter().find(|s| {
            let o = s.router.config();
            o.virtual_router_id == c.virtual_router_id
                && o.interface == c.interface
                && o.is_ipv6() == c.is_ipv6()
        }) {
            return Err(conf_err(
                "virtual_router_id",
                format!(
                    "{name}: VRID {} on {} is already used by {} (one VRID per interface and family)",
                    c.virtual_router_id, c.interface, other.name
                ),
            ));
        }
        self.slots.push(Slot {
            name: name.to_owned(),
            router,
            group: None,
            group_fault: None,
        });
        Ok(self.slots.len() - 1)
    }

    /// Adds a sync group of existing instances (each in at most one group).
    pub fn add_sync_group(&mut self, name: &str, members: &[&str]) -> Result<(), ConfigError> {
        let g = self.groups.len();
        let mut idx = Vec::new();
        for m in members {
            let Some(i) = self.index(m) else {
                return Err(conf_err(
                    "group",
                    format!("{name}: no vrrp_instance named {m}"),
                ));
            };
            if let Some(other) = self.slots[i].group {
                return Err(conf_err(
                    "group",
                    format!(
                        "{name}: {m} is already in sync group {}",
                        self.groups[other].name
                    ),
                ));
            }
            if idx.contains(&i) {
                return Err(conf_err("group", format!("{name}: {m} is listed twice")));
            }
            idx.push(i);
        }
        for &i in &idx {
            self.slots[i].group = Some(g);
            if idx.len() > 1 {
                self.slots[i]
                    .router
                    .handle_command(Instant::now(), Command::SetSyncGated(true));
            }
        }
        self.groups.push(Group {
            name: name.to_owned(),
            members: idx,
            state: State::Initialize,
        });
        Ok(())
    }

    /// Number of instances.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The index of the instance named `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.slots.iter().position(|s| s.name == name)
    }

    /// The name of instance `index`.
    pub fn name(&self, index: usize) -> &str {
        self.slots.get(index).map_or("", |s| s.name.as_str())
    }

    /// The router of instance `index`.
    pub fn router(&self, index: usize) -> Option<&Router> {
        self.slots.get(index).map(|s| &s.router)
    }

    /// Every instance: name and router.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Router)> {
        self.slots.iter().map(|s| (s.name.as_str(), &s.router))
    }

    /// The sync group of instance `index`, if any.
    pub fn group_of(&self, index: usize) -> Option<usize> {
        self.slots.get(index).and_then(|s| s.group)
    }

    /// The name of group `group`.
    pub fn group_name(&self, group: usize) -> &str {
        self.groups.get(group).map_or("", |g| g.name.as_str())
    }

    /// The state of group `group`.
    pub fn group_state(&self, group: usize) -> State {
        self.groups
            .get(group)
            .map_or(State::Initialize, |g| g.state)
    }

    /// Every group: name, state and member indices.
    pub fn groups(&self) -> impl Iterator<Item = (&str, State, &[usize])> {
        self.groups
            .iter()
            .map(|g| (g.name.as_str(), g.state, g.members.as_slice()))
    }

    /// The Startup event for every instance.
    pub fn start(&mut self, now: Instant) {
        for i in 0..self.slots.len() {
            self.command(now, i, Command::Startup);
        }
    }

    /// An administrative input for instance `index`.
    pub fn command(&mut self, now: Instant, index: usize, cmd: Command) {
        if let Some(s) = self.slots.get_mut(index) {
            s.router.handle_command(now, cmd);
            self.pump(now, index);
        }
    }

    /// A command for every instance tracking `name` (an interface or script): [`Command::Track`].
    pub fn track(&mut self, now: Instant, name: &str, up: bool) {
        for i in 0..self.slots.len() {
            if self.slots[i]
                .router
                .config()
                .track
                .iter()
                .any(|t| t.name == name)
            {
                self.command(
                    now,
                    i,
                    Command::Track {
                        name: name.to_owned(),
                        up,
                    },
                );
            }
        }
    }

    /// A received advert on `interface`: demultiplexed by family and VRID to its instance, whose
    /// index is returned; see [`Router::handle_packet`] for the checks.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        interface: &str,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        bytes: &[u8],
    ) -> Result<usize, (Option<usize>, RxError)> {
        let p = Packet::parse_unverified(bytes).map_err(|e| (None, e.into()))?;
        let v6 = p.family() == Family::Ipv6;
        let vrid = p.vrid();
        let Some(i) = self.find(interface, v6, vrid) else {
            return Err((None, RxError::UnknownVrid { actual: vrid }));
        };
        self.handle_packet_at(now, i, src, dst, ttl, bytes)
            .map(|()| i)
            .map_err(|e| (Some(i), e))
    }

    /// The instance configured on `interface` for a family and VRID.
    pub fn find(&self, interface: &str, v6: bool, vrid: u8) -> Option<usize> {
        self.slots.iter().position(|s| {
            let c = s.router.config();
            c.virtual_router_id == vrid && c.is_ipv6() == v6 && c.interface == interface
        })
    }

    /// A received advert for instance `index`, demultiplexed by the caller (a driver that receives
    /// on several sockets per interface, say); see [`Router::handle_packet`] for the checks.
    pub fn handle_packet_at(
        &mut self,
        now: Instant,
        index: usize,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        bytes: &[u8],
    ) -> Result<(), RxError> {
        let Some(s) = self.slots.get_mut(index) else {
            return Err(RxError::NotRunning);
        };
        let r = s.router.handle_packet(now, src, dst, ttl, bytes);
        self.pump(now, index);
        r
    }

    /// Timer expiry: runs every instance whose deadline is at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for i in 0..self.slots.len() {
            if self.slots[i]
                .router
                .poll_timeout()
                .is_some_and(|t| t <= now)
            {
                self.slots[i].router.handle_timeout(now);
                self.pump(now, i);
            }
        }
    }

    /// The earliest deadline of any instance.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter_map(|s| s.router.poll_timeout())
            .min()
    }

    /// The next event, in order.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Drains instance `start`'s actions and everything the sync groups make of them.
    fn pump(&mut self, now: Instant, start: usize) {
        self.work.push(start);
        while let Some(i) = self.work.pop() {
            while let Some(action) = self.slots[i].router.poll_action() {
                if let Some(g) = self.slots[i].group {
                    self.follow(now, g, i, &action);
                }
                self.events.push_back(Event::Instance { index: i, action });
            }
            if let Some(g) = self.slots[i].group {
                self.sync_faults(now, g);
                self.update_group_state(g);
            }
        }
    }

    fn send(&mut self, now: Instant, j: usize, cmd: Command) {
        self.slots[j].router.handle_command(now, cmd);
        self.work.push(j);
    }

    /// keepalived's vrrp_sync_master / vrrp_sync_backup, for member `i`'s action.
    fn follow(&mut self, now: Instant, g: usize, i: usize, action: &Action) {
        let members = self.groups[g].members.clone();
        if members.len() < 2 {
            return;
        }
        let name = self.slots[i].name.clone();
        match action {
            Action::StateChange { from, to, reason } => {
                if matches!(reason, Reason::SyncGroup { .. }) {
                    return;
                }
                if *to == State::Master {
                    for &j in members.iter().filter(|&&j| j != i) {
                        if self.slots[j].router.state() == State::Backup {
                            self.send(
                                now,
                                j,
                                Command::SyncMaster {
                                    member: name.clone(),
                                },
                            );
                        }
                    }
                } else if *from == State::Master && *to == State::Backup {
                    for &j in members.iter().filter(|&&j| j != i) {
                        if self.slots[j].router.state() == State::Master {
                            self.send(
                                now,
                                j,
                                Command::SyncBackup {
                                    member: name.clone(),
                                },
                            );
                        }
                    }
                }
            }
            Action::WantMaster => {
                // vrrp_sync_can_goto_master: only when every other member wants it (or is Master).
                let all = members.iter().filter(|&&j| j != i).all(|&j| {
                    let r = &self.slots[j].router;
                    r.wants_master() || r.state() == State::Master
                });
                if all {
                    for &j in &members {
                        if self.slots[j].router.state() == State::Backup {
                            self.send(
                                now,
                                j,
                                Command::SyncMaster {
                                    member: name.clone(),
                                },
                            );
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// vrrp_sync_fault: every member is held in Fault while another member has a fault of its own.
    fn sync_faults(&mut self, now: Instant, g: usize) {
        let members = self.groups[g].members.clone();
        if members.len() < 2 {
            return;
        }
        for &j in &members {
            let culprit = members
                .iter()
                .copied()
                .filter(|&k| k != j)
                .find(|&k| self.slots[k].router.own_fault())
                .map(|k| self.slots[k].name.clone());
            if self.slots[j].group_fault != culprit {
                self.slots[j].group_fault = culprit.clone();
                self.send(now, j, Command::SyncFault { member: culprit });
            }
        }
    }

    fn update_group_state(&mut self, g: usize) {
        let states: Vec<State> = self.groups[g]
            .members
            .iter()
            .map(|&j| self.slots[j].router.state())
            .collect();
        let to = if states.contains(&State::Fault) {
            State::Fault
        } else if !states.is_empty() && states.iter().all(|s| *s == State::Master) {
            State::Master
        } else if states.iter().all(|s| *s == State::Initialize) {
            State::Initialize
        } else if states.contains(&State::Backup) || states.contains(&State::Master) {
            State::Backup
        } else {
            State::Initialize
        };
        let from = self.groups[g].state;
        if from != to {
            self.groups[g].state = to;
            self.events
                .push_back(Event::GroupState { group: g, from, to });
        }
    }

    /// Shuts every instance down (Masters send priority 0 and drop their addresses).
    pub fn shutdown(&mut self, now: Instant) {
        for i in 0..self.slots.len() {
            self.command(now, i, Command::Shutdown);
        }
    }

    /// Replaces the configuration with `next` (built but not started), the way keepalived 2.2.7
    /// reloads (`clear_diff_vrrp`, `vrrp_exist`): an instance keeps running when its identity is
    /// unchanged, and its new configuration is applied with [`Router::reconfigure`] (addresses as a
    /// difference, tracking, timers, preemption; see there). The identity is the interface, the
    /// family, the VRID and, for a unicast instance, its source address; like keepalived, not the
    /// name, so a renamed instance keeps its state. Decided here, where keepalived keeps the state
    /// anyway: an instance also starts over when its protocol version changes, when it becomes or
    /// stops being the address owner (priority 255), or when its sync group changes (another group,
    /// or other members).
    ///
    /// Removed and restarted instances are shut down first (a Master sends priority 0 and drops its
    /// addresses): their last actions come back in [`Reloaded::gone`] by their old name, since their
    /// indices are gone. New and restarted instances start. Events of the new set follow from
    /// [`Instances::poll_event`]. A sync group whose members are unchanged keeps its state, so no
    /// group event is raised for it.
    pub fn reload(&mut self, now: Instant, next: Instances) -> Reloaded {
        self.reload_with(now, next, |_, _| false)
    }

    /// [`Instances::reload`], where `restart(old name, new name)` may also ask for an instance of
    /// unchanged identity to start over (a driver whose own per-instance settings changed).
    pub fn reload_with(
        &mut self,
        now: Instant,
        next: Instances,
        restart: impl Fn(&str, &str) -> bool,
    ) -> Reloaded {
        let mut old: Vec<Option<Slot>> = std::mem::take(&mut self.slots)
            .into_iter()
            .map(Some)
            .collect();
        // Events still queued refer to the old indices: hand them back by name.
        let mut gone: Vec<(String, Action)> = Vec::new();
        for e in std::mem::take(&mut self.events) {
            if let Event::Instance { index, action } = e
                && let Some(Some(s)) = old.get(index)
            {
                gone.push((s.name.clone(), action));
            }
        }
        let old_groups = std::mem::take(&mut self.groups);
        let members = |groups: &[Group], slots: &dyn Fn(usize) -> String, g: Option<usize>| {
            g.map(|g| {
                let mut m: Vec<String> = groups[g].members.iter().map(|&i| slots(i)).collect();
                m.sort();
                (groups[g].name.clone(), m)
            })
        };
        let old_names: Vec<String> = old
            .iter()
            .map(|o| o.as_ref().map(|o| o.name.clone()).unwrap_or_default())
            .collect();
        let new_names: Vec<String> = next.slots.iter().map(|s| s.name.clone()).collect();
        let mut fresh = Vec::new();
        let mut kept = Vec::new();
        for (k, mut slot) in next.slots.into_iter().enumerate() {
            let new_group = members(&next.groups, &|i| new_names[i].clone(), slot.group);
            let found = old.iter().position(|o| {
                o.as_ref().is_some_and(|o| {
                    same_identity(&o.router, &slot.router)
                        && members(&old_groups, &|i| old_names[i].clone(), o.group) == new_group
                        && !restart(&o.name, &slot.name)
                })
            });
            match found.and_then(|p| old[p].take()) {
                Some(mut o) => {
                    let cfg = slot.router.config().clone();
                    // Validated when `next` was built; a failure leaves the old configuration.
                    let _ = o.router.reconfigure(now, cfg, slot.router.primary());
                    kept.push((std::mem::take(&mut o.name), k));
                    o.name = slot.name;
                    o.group = slot.group;
                    slot = o;
                }
                None => fresh.push(k),
            }
            self.slots.push(slot);
        }
        // Shut down what is gone or restarted, before the new ones start.
        for mut o in old.into_iter().flatten() {
            o.router.handle_command(now, Command::Shutdown);
            while let Some(a) = o.router.poll_action() {
                gone.push((o.name.clone(), a));
            }
        }
        self.groups = next.groups;
        for g in 0..self.groups.len() {
            let mut m: Vec<String> = self.groups[g]
                .members
                .iter()
                .map(|&i| self.slots[i].name.clone())
                .collect();
            m.sort();
            let same = old_groups.iter().find(|o| {
                let mut om: Vec<String> = o.members.iter().map(|&i| old_names[i].clone()).collect();
                om.sort();
                o.name == self.groups[g].name && om == m
            });
            self.groups[g].state = same.map_or(State::Initialize, |o| o.state);
        }
        for s in &mut self.slots {
            let gated = s.group.is_some_and(|g| self.groups[g].members.len() > 1);
            s.router.handle_command(now, Command::SetSyncGated(gated));
        }
        for i in fresh {
            self.command(now, i, Command::Startup);
        }
        for i in 0..self.slots.len() {
            self.pump(now, i);
        }
        Reloaded { gone, kept }
    }
}

/// What [`Instances::reload`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reloaded {
    /// The last actions of the instances shut down (removed, or restarted), by their old name:
    /// priority 0 adverts, addresses to remove, the state change to Initialize.
    pub gone: Vec<(String, Action)>,
    /// The instances that kept running: their old name and their index in the new set.
    pub kept: Vec<(String, usize)>,
}

/// keepalived's `vrrp_exist`: same interface, family, VRID, unicast or not (and the same unicast
/// source); here also the same version and owner status (see [`Instances::reload`]).
fn same_identity(a: &Router, b: &Router) -> bool {
    let (x, y) = (a.config(), b.config());
    let unicast = |c: &Config, r: &Router| (!c.unicast_peer.is_empty()).then(|| r.source_address());
    x.interface == y.interface
        && x.is_ipv6() == y.is_ipv6()
        && x.virtual_router_id == y.virtual_router_id
        && unicast(x, a) == unicast(y, b)
        && x.version == y.version
        && (x.priority == 255) == (y.priority == 255)
}

/// The body of the `vrrp_receive` fuzz target, public so that its corpus replays as an ordinary test:
/// the first byte is the TTL, the rest the payload, received on `eth0` from 192.0.2.2 to 224.0.0.18
/// by a set of a VRRPv2 (VRID 51, PASS) and a VRRPv3 (VRID 52) instance in one sync group, in each
/// state they reach, with a reload in between (another priority, interval and address list, taken
/// from the input). Panics if a rejected advert or the reload changed a state.
#[doc(hidden)]
pub fn fuzz_receive(data: &[u8]) {
    use crate::config::Version;
    let Some((&ttl, bytes)) = data.split_first() else {
        return;
    };
    let src = IpAddr::from([192, 0, 2, 2]);
    let dst = IpAddr::from([224, 0, 0, 18]);
    // The pair of instances; `edit` gives a reload's variant (same identities).
    let build = |edit: Option<(u8, u8)>| {
        let mut set = Instances::new();
        let mut c = Config::new("eth0", 51, vec![IpAddr::from([192, 0, 2, 100])]);
        c.version = Version::V2;
        c.auth_pass = Some(b"pw".to_vec());
        let mut c3 = Config::new("eth0", 52, vec![IpAddr::from([192, 0, 2, 101])]);
        c3.priority = 200;
        if let Some((prio, last)) = edit {
            c.priority = prio.clamp(1, 254);
            c3.virtual_ipaddress
                .push(IpAddr::from([192, 0, 2, last.max(102)]).into());
            c3.advert_int = std::time::Duration::from_millis(10 * u64::from(prio.max(1)));
        }
        for (name, cfg) in [("A", c), ("B", c3)] {
            if let Ok(r) = Router::new(cfg, IpAddr::from([192, 0, 2, 1])) {
                let _ = set.add(name, r);
            }
        }
        let _ = set.add_sync_group("G", &["A", "B"]);
        set
    };
    let mut set = build(None);
    let t = Instant::now();
    set.start(t);
    let mut now = t;
    for round in 0..3 {
        let before: Vec<State> = set.iter().map(|(_, r)| r.state()).collect();
        let r = set.handle_packet(now, "eth0", src, dst, ttl, bytes);
        let after: Vec<State> = set.iter().map(|(_, r)| r.state()).collect();
        if r.is_err() {
            assert_eq!(before, after, "a rejected advert changed a state");
        }
        while set.poll_event().is_some() {}
        // Let the timers run: the next round sees Master (or the group's reaction).
        if let Some(d) = set.poll_timeout() {
            now = d.max(now);
            set.handle_timeout(now);
        }
        while set.poll_event().is_some() {}
        if round == 0 {
            // A reload that changes priority, interval and addresses keeps every instance and
            // its state (RFC states never move by a reload alone).
            let edit = (bytes.first().copied().unwrap_or(100), ttl);
            let before: Vec<State> = set.iter().map(|(_, r)| r.state()).collect();
            let done = set.reload(now, build(Some(edit)));
            assert_eq!(
                done.kept.len(),
                set.len(),
                "a reload of the same identities"
            );
            let after: Vec<State> = set.iter().map(|(_, r)| r.state()).collect();
            assert_eq!(before, after, "a reload changed a state");
            while set.poll_event().is_some() {}
        }
        if round == 1 {
            // Backup again (a better advert), so every state meets the input.
            for i in 0..set.len() {
                set.command(now, i, Command::SetPriority(1));
            }
        }
    }
}
