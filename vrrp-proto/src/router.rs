//! The VRRP router state machine (RFC 3768 §6, RFC 5798 §6, RFC 9568 §6), sans-IO.
//!
//! Feed it time and events, drain what it wants done:
//!
//! ```text
//! handle_command(now, Command::Startup)          poll_action() -> SendAdvert / AddAddresses / Announce /
//! handle_packet(now, src, dst, ttl, bytes)                        RemoveAddresses / StateChange
//! handle_timeout(now)   when now >= poll_timeout()
//! ```
//!
//! Timers are plain deadlines (`Adver_Timer`, `Master_Down_Timer`, and the announcement repeats); nothing
//! here reads a clock, so tests drive a virtual one. RFC 9568 calls the Master state "Active"; this module
//! keeps the name [`State::Master`] that keepalived and RFC 5798 use.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::{Config, ConfigError, V4Checksum, Version, VirtualAddress};
use crate::wire::{
    self, Addresses, AuthType, Body, Checksum, ChecksumModes, DecodeError, EmitError, Family,
    Packet, Repr,
};

/// The three states of RFC 5798 §6.4, plus keepalived's Fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Waiting for a Startup event, or shut down (RFC 5798 §6.4.1).
    Initialize,
    /// Running but unable to serve: the interface is down, a tracked object with weight 0 is down, or
    /// (in a sync group) another member is in Fault. Not an RFC state: keepalived's FAULT. The instance
    /// holds no address, sends nothing and leaves for Backup when the fault clears.
    Fault,
    /// Monitoring the Master (RFC 5798 §6.4.2).
    Backup,
    /// Forwarding for the virtual addresses; RFC 9568 calls it Active (§6.4.3).
    Master,
}

/// Why the state changed, carried by [`Action::StateChange`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// Startup of a non-owner: Backup first (RFC 5798 §6.4.1).
    Startup,
    /// Startup of the address owner, priority 255: Master at once (RFC 5798 §6.4.1).
    Owner,
    /// No advert from the Master for Master_Down_Interval (RFC 5798 §6.4.2).
    MasterDown,
    /// The Master sent priority 0 and Skew_Time passed (RFC 5798 §6.4.2).
    HandOver,
    /// Lower-priority adverts were discarded until Master_Down_Interval ran out (preemption, §6.4.2).
    Preempt,
    /// A better advert reached the Master (RFC 5798 §6.4.3).
    HigherPriority {
        /// The sender.
        from: IpAddr,
        /// Its priority.
        priority: u8,
    },
    /// An administrative Shutdown event.
    Shutdown,
    /// The interface went down.
    InterfaceDown,
    /// A tracked object with weight 0 went down.
    TrackFault {
        /// Its name.
        name: String,
    },
    /// Every fault cleared: back to Backup (RFC 5798 §6.4.1 Startup path).
    FaultCleared,
    /// The sync group moved this member with another one (keepalived's `vrrp_sync_group`).
    SyncGroup {
        /// The member whose change was followed.
        member: String,
    },
}

/// Administrative inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// The RFC 5798 §6.4.1 Startup event.
    Startup,
    /// The Shutdown event: a Master sends priority 0 first (RFC 5798 §6.4.3).
    Shutdown,
    /// Change the configured (base) priority, 1..=255; tracking weights still apply. 0 is ignored
    /// (priority 0 is the hand-over advert: use [`Command::Shutdown`]). The new priority goes out
    /// with the next periodic advert and takes part in the next election; it changes no state by
    /// itself (RFC 5798 §6 has no priority-change event), so a Master that lowers its priority keeps
    /// the role until a better Backup preempts it.
    SetPriority(u8),
    /// The interface came up: a running instance starts again.
    InterfaceUp,
    /// The interface went down: a running instance leaves Backup/Master for Fault.
    InterfaceDown,
    /// A tracked object changed state (its name is in [`Config::track`]).
    Track {
        /// The object's name.
        name: String,
        /// Whether it is up.
        up: bool,
    },
    /// Sync group: another member is Master, follow it now (a Backup member only). Used by
    /// [`Instances`](crate::Instances); `member` names the leader for the [`Reason`].
    SyncMaster {
        /// The member that became Master.
        member: String,
    },
    /// Sync group: another member left Master for Backup; a Master member follows without a priority 0
    /// advert (keepalived's `vrrp_sync_backup`), so peers take over after Master_Down_Interval.
    SyncBackup {
        /// The member that went to Backup.
        member: String,
    },
    /// Sync group: another member is in Fault (`Some`) or no member is any more (`None`).
    SyncFault {
        /// The faulty member, if any.
        member: Option<String>,
    },
    /// Sync group membership: when on, this router does not become Master by its own
    /// Master_Down_Timer; it raises [`Action::WantMaster`] and waits for [`Command::SyncMaster`].
    SetSyncGated(bool),
}

/// An advert to send: the typed message, where to, and the checksum mode to emit it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    /// IP source (the primary address, or `unicast_src_ip`).
    pub src: IpAddr,
    /// IP destination: the multicast group or one unicast peer. Send with TTL / hop limit 255.
    pub dst: IpAddr,
    /// The checksum mode.
    pub checksum: Checksum,
    /// The message.
    pub repr: Repr,
}

impl Advert {
    /// Parses a received VRRP payload carried from `src` to `dst`, with every configuration-free
    /// check. The checksum must be right in one of the modes the version allows: VRRPv2 message-only
    /// (RFC 3768 §5.3.8); VRRPv3 the pseudo-header (RFC 5798 §5.2.8), or for IPv4 also message-only
    /// (RFC 9568 §5.2.8). [`Advert::checksum`] records the mode that matched (pseudo-header first).
    pub fn parse(src: IpAddr, dst: IpAddr, bytes: &[u8]) -> Result<Advert, DecodeError> {
        let p = Packet::parse_unverified(bytes)?;
        let pseudo = Checksum::PseudoHeader { src, dst };
        let checksum = if p.version() == 2 {
            Checksum::MessageOnly
        } else if p.verify_checksum(&pseudo).is_ok() || p.family() == Family::Ipv6 {
            pseudo
        } else {
            Checksum::MessageOnly
        };
        p.verify_checksum(&checksum)?;
        Ok(Advert {
            src,
            dst,
            checksum,
            repr: Repr::from_packet(&p),
        })
    }

    /// Bytes [`Advert::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        self.repr.buffer_len()
    }

    /// Emits the VRRP payload into `buf` (at least [`Advert::buffer_len`] bytes), computing count and
    /// checksum; returns the bytes written. See [`Repr::emit`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        self.repr.emit(buf, &self.checksum)
    }

    /// Emits into a new vector.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EmitError> {
        self.repr.to_bytes(&self.checksum)
    }
}

/// What the driver should do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Send an advert.
    SendAdvert(Advert),
    /// Add the virtual addresses (and the excluded ones) to the interface.
    AddAddresses {
        /// The addresses, with prefix, device and label.
        addresses: Vec<VirtualAddress>,
        /// Accept_Mode: accept packets addressed to them (RFC 5798 §6.1; always for the owner).
        accept: bool,
    },
    /// Remove them.
    RemoveAddresses {
        /// The addresses.
        addresses: Vec<VirtualAddress>,
    },
    /// Announce the addresses: gratuitous ARP for IPv4, unsolicited Neighbor Advertisement (router flag)
    /// for IPv6 (RFC 5798 §6.4.2), `repeat` times in a row.
    Announce {
        /// The addresses (each announced on its device).
        addresses: Vec<VirtualAddress>,
        /// How many announcements per address in this burst.
        repeat: u8,
    },
    /// RFC 5798 §7.1: an advert from the address owner (priority 255) lists other addresses than
    /// ours. The RFC says to log it (a misconfiguration) and carry on; the advert was processed. A
    /// non-owner's mismatching advert is dropped instead, with [`RxError::AddressMismatch`].
    AddressListMismatch {
        /// The owner's IP source.
        from: IpAddr,
    },
    /// A sync-gated Backup's Master_Down_Timer ran out: it wants to be Master and waits for every
    /// member of its group to want it too (keepalived's `vrrp_sync_can_goto_master`). Its timer was reset.
    WantMaster,
    /// The state changed.
    StateChange {
        /// The old state.
        from: State,
        /// The new state.
        to: State,
        /// Why.
        reason: Reason,
    },
}

/// Why a received packet was dropped (or, for [`RxError::AddressMismatch`], merely noted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RxError {
    /// The instance is not running (Initialize state).
    #[error("instance not running")]
    NotRunning,
    /// RFC 5798 §7.1: TTL / hop limit must be 255 (multicast instances only; see
    /// [`Router::check_packet`]).
    #[error("TTL or hop limit: expected 255, got {actual}")]
    Ttl {
        /// What arrived.
        actual: u8,
    },
    /// A configuration-free check failed: version, type, length, count, checksum.
    #[error("decode: {0}")]
    Decode(#[from] DecodeError),
    /// The packet's VRRP version is not the instance's.
    #[error("version: expected {expected}, got {actual}")]
    Version {
        /// Configured.
        expected: u8,
        /// Received.
        actual: u8,
    },
    /// The packet's address family is not the instance's.
    #[error("address family does not match the instance")]
    Family,
    /// The checksum is right in the other IPv4 mode: the peer speaks RFC 5798 and we RFC 9568, or back.
    #[error("checksum mode: expected {expected:?}, the peer's checksum satisfies {satisfied:?}")]
    ChecksumMode {
        /// Configured.
        expected: V4Checksum,
        /// What the received checksum satisfies.
        satisfied: ChecksumModes,
    },
    /// RFC 5798 §7.1: the VRID is not configured here.
    #[error("unknown VRID {actual}")]
    UnknownVrid {
        /// Received.
        actual: u8,
    },
    /// VRRPv3 reserved bits set (RFC 5798 §5.2.6).
    #[error("reserved bits set: {actual:#x}")]
    Reserved {
        /// The 4 bits.
        actual: u8,
    },
    /// RFC 5798 §5.2.9: the first IPv6 address must be link-local.
    #[error("first IPv6 address {actual} is not link-local")]
    FirstAddressNotLinkLocal {
        /// The address.
        actual: IpAddr,
    },
    /// RFC 3768 §7.1: authentication type differs from the configured one.
    #[error("authentication type: expected {expected}, got {actual}")]
    AuthType {
        /// Configured.
        expected: u8,
        /// Received.
        actual: u8,
    },
    /// RFC 3768 §7.1: the password differs.
    #[error("authentication data mismatch")]
    AuthData,
    /// RFC 3768 §7.1: VRRPv2 advert interval differs from the configured one (v3 learns it instead).
    #[error("advert interval: expected {expected} s, got {actual} s")]
    AdverInt {
        /// Configured.
        expected: u8,
        /// Received.
        actual: u8,
    },
    /// RFC 5798 §7.1: the address list differs and the sender is not the owner: dropped.
    #[error("address list differs from the configured virtual addresses")]
    AddressMismatch,
    /// Our own advert looped back.
    #[error("own advert")]
    Own,
    /// A multicast advert reached a unicast instance, or a unicast advert a multicast instance
    /// (keepalived 2.2.7 drops both).
    #[error("destination {actual}: not the instance's (multicast or unicast) mode")]
    Destination {
        /// The IP destination received.
        actual: IpAddr,
    },
    /// `check_unicast_src` is on and the sender is not in `unicast_peer` (keepalived 2.2.7).
    #[error("unicast source {actual} is not a configured peer")]
    NotAPeer {
        /// The IP source received.
        actual: IpAddr,
    },
}

/// One VRRP instance as a sans-IO state machine.
#[derive(Debug)]
pub struct Router {
    cfg: Config,
    primary: IpAddr,
    state: State,
    base_priority: u8,
    track_up: Vec<bool>,
    iface_up: bool,
    group_fault: Option<String>,
    gated: bool,
    wants_master: bool,
    running: bool,
    master_adver_interval: Duration,
    adver_timer: Option<Instant>,
    master_down_timer: Option<Instant>,
    garp_timer: Option<Instant>,
    refresh_timer: Option<Instant>,
    preempt_after: Option<Instant>,
    down_reason: Reason,
    master: Option<(IpAddr, u8)>,
    actions: VecDeque<Action>,
}

impl Router {
    /// A router for `cfg` whose primary address on the interface is `primary` (the tie-breaker of
    /// RFC 5798 §6.4.3 and the source of multicast adverts). Starts in Initialize: send
    /// [`Command::Startup`] to run it.
    pub fn new(cfg: Config, primary: IpAddr) -> Result<Router, ConfigError> {
        cfg.validate()?;
        if primary.is_ipv6() != cfg.is_ipv6() || primary.is_unspecified() || primary.is_multicast()
        {
            return Err(ConfigError {
                field: "interface",
                problem:
                    "the primary address must be a unicast address of the virtual addresses' family"
                        .into(),
            });
        }
        // RFC 5798 §5.1.2.1: an IPv6 advert's source is the interface's link-local address.
        if let IpAddr::V6(a) = primary
            && cfg.unicast_peer.is_empty()
            && !a.is_unicast_link_local()
        {
            return Err(ConfigError {
                field: "interface",
                problem:
                    "an IPv6 instance's primary address must be link-local (RFC 5798 §5.1.2.1)"
                        .into(),
            });
        }
        let track_up = vec![true; cfg.track.len()];
        Ok(Router {
            base_priority: cfg.priority,
            master_adver_interval: cfg.advert_int,
            cfg,
            primary,
            state: State::Initialize,
            track_up,
            iface_up: true,
            group_fault: None,
            gated: false,
            wants_master: false,
            running: false,
            adver_timer: None,
            master_down_timer: None,
            garp_timer: None,
            refresh_timer: None,
            preempt_after: None,
            down_reason: Reason::MasterDown,
            master: None,
            actions: VecDeque::new(),
        })
    }

    /// Applies a new configuration (and primary address) to a running router, keeping its state,
    /// as keepalived 2.2.7 does on reload for an instance it keeps (`restore_vrrp_state`,
    /// `clear_diff_vrrp_vip`):
    ///
    /// * a Master removes the addresses that left the lists, adds the new ones, and when it added
    ///   any, announces all of them (`garp_master_repeat` each); an address whose prefix, device,
    ///   label, scope or broadcast changed is removed and added again;
    /// * `priority` becomes the base priority (tracking weights still apply); the advert carries
    ///   it from the next one on, and no state changes by itself;
    /// * tracked objects kept by name keep their state, new ones start up; a fault that appears or
    ///   clears moves the router to or from Fault;
    /// * `advert_int`: a Master's next advert is due no later than one new interval from now; a
    ///   Backup restarts Master_Down_Timer with the new interval (keepalived's reloaded instance
    ///   has forgotten the interval it learned);
    /// * `nopreempt`, `preempt_delay`, `accept`, unicast peers, the announcement settings and the
    ///   checks apply to what comes next; a changed `preempt_delay` restarts its count.
    ///
    /// Identity changes (interface, VRID, family, version, becoming or leaving owner) are not for
    /// this: [`Instances::reload`](crate::Instances::reload) starts such an instance over.
    pub fn reconfigure(
        &mut self,
        now: Instant,
        cfg: Config,
        primary: IpAddr,
    ) -> Result<(), ConfigError> {
        let probe = Router::new(cfg, primary)?;
        let cfg = probe.cfg;
        let old = std::mem::replace(&mut self.cfg, cfg);
        self.primary = primary;
        let old_up: Vec<(&str, bool)> = old
            .track
            .iter()
            .map(|t| t.name.as_str())
            .zip(self.track_up.iter().copied())
            .collect();
        self.track_up = self
            .cfg
            .track
            .iter()
            .map(|t| {
                old_up
                    .iter()
                    .find(|(n, _)| *n == t.name)
                    .is_none_or(|x| x.1)
            })
            .collect();
        self.base_priority = self.cfg.priority;
        if old.preempt_delay != self.cfg.preempt_delay {
            self.preempt_after = None;
        }
        let new_int = old.advert_int != self.cfg.advert_int;
        match self.state {
            State::Master => {
                let all = |c: &Config| -> Vec<VirtualAddress> {
                    c.virtual_ipaddress
                        .iter()
                        .chain(&c.virtual_ipaddress_excluded)
                        .cloned()
                        .collect()
                };
                let (before, after) = (all(&old), all(&self.cfg));
                let removed: Vec<VirtualAddress> = before
                    .iter()
                    .filter(|a| !after.contains(a))
                    .cloned()
                    .collect();
                let added: Vec<VirtualAddress> = after
                    .iter()
                    .filter(|a| !before.contains(a))
                    .cloned()
                    .collect();
                if !removed.is_empty() {
                    self.actions
                        .push_back(Action::RemoveAddresses { addresses: removed });
                }
                if !added.is_empty() {
                    let accept = self.cfg.accept || self.priority() == 255;
                    self.actions.push_back(Action::AddAddresses {
                        addresses: added,
                        accept,
                    });
                    self.actions.push_back(Action::Announce {
                        addresses: after,
                        repeat: self.cfg.garp_master_repeat,
                    });
                }
                if new_int {
                    let due = now + self.cfg.advert_int;
                    self.adver_timer = Some(self.adver_timer.map_or(due, |t| t.min(due)));
                }
                if old.garp_master_refresh != self.cfg.garp_master_refresh {
                    self.refresh_timer = (!self.cfg.garp_master_refresh.is_zero())
                        .then(|| now + self.cfg.garp_master_refresh);
                }
            }
            State::Backup if new_int => {
                self.master_adver_interval = self.cfg.advert_int;
                self.master_down_timer = Some(now + self.master_down_interval());
            }
            _ => {}
        }
        if let Some(reason) = self.faulted() {
            self.fault(reason, true);
        } else {
            self.recover(now);
        }
        Ok(())
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The primary address given to [`Router::new`].
    pub fn primary(&self) -> IpAddr {
        self.primary
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The effective priority: the owner's 255 is fixed; otherwise the base priority plus the tracking
    /// weights (keepalived semantics), clamped to 1..=254.
    pub fn priority(&self) -> u8 {
        if self.base_priority == 255 {
            return 255;
        }
        let mut p = i32::from(self.base_priority);
        for (t, up) in self.cfg.track.iter().zip(&self.track_up) {
            if (t.weight > 0 && *up) || (t.weight < 0 && !*up) {
                p += t.weight;
            }
        }
        u8::try_from(p.clamp(1, 254)).unwrap_or(1)
    }

    /// The Master as last heard in Backup: its address and priority.
    pub fn master(&self) -> Option<(IpAddr, u8)> {
        self.master
    }

    /// Master_Adver_Interval: learned from the Master in VRRPv3 (RFC 5798 §6.4.2), the configured interval
    /// in VRRPv2.
    pub fn master_adver_interval(&self) -> Duration {
        self.master_adver_interval
    }

    /// Skew_Time: v2 `(256 - Priority) / 256` s (RFC 3768 §6.1); v3
    /// `((256 - Priority) * Master_Adver_Interval) / 256` (RFC 5798 §6.1, RFC 9568 §6.1), exact to the ns.
    pub fn skew_time(&self) -> Duration {
        let p = 256 - u128::from(self.priority());
        let base = match self.cfg.version {
            Version::V2 => Duration::from_secs(1),
            Version::V3 => self.master_adver_interval,
        };
        let ns = base.as_nanos() * p / 256;
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// Master_Down_Interval: `3 * Advertisement_Interval + Skew_Time` (RFC 3768 §6.1) in v2,
    /// `3 * Master_Adver_Interval + Skew_Time` (RFC 5798 §6.1) in v3.
    pub fn master_down_interval(&self) -> Duration {
        let base = match self.cfg.version {
            Version::V2 => self.cfg.advert_int,
            Version::V3 => self.master_adver_interval,
        };
        base * 3 + self.skew_time()
    }

    /// The address adverts are sent from (and compared with, for ties).
    pub fn source_address(&self) -> IpAddr {
        if self.cfg.unicast_peer.is_empty() {
            self.primary
        } else {
            self.cfg.unicast_src_ip.unwrap_or(self.primary)
        }
    }

    /// The next action to perform, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The earliest deadline at which [`Router::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.adver_timer,
            self.master_down_timer,
            self.garp_timer,
            self.refresh_timer,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether this router's own fault (interface or weight-0 track down) holds it in Fault; a fault
    /// imposed by a sync group does not count.
    pub fn own_fault(&self) -> bool {
        self.own_faulted().is_some()
    }

    /// A sync-gated Backup whose Master_Down_Timer ran out (see [`Action::WantMaster`]).
    pub fn wants_master(&self) -> bool {
        self.wants_master && self.state == State::Backup
    }

    fn faulted(&self) -> Option<Reason> {
        self.own_faulted().or_else(|| {
            self.group_fault
                .as_ref()
                .map(|m| Reason::SyncGroup { member: m.clone() })
        })
    }

    fn own_faulted(&self) -> Option<Reason> {
        if !self.iface_up {
            return Some(Reason::InterfaceDown);
        }
        self.cfg
            .track
            .iter()
            .zip(&self.track_up)
            .find(|(t, up)| t.weight == 0 && !**up)
            .map(|(t, _)| Reason::TrackFault {
                name: t.name.clone(),
            })
    }

    /// Administrative input.
    pub fn handle_command(&mut self, now: Instant, cmd: Command) {
        match cmd {
            Command::Startup => {
                self.running = true;
                self.startup(now);
            }
            Command::Shutdown => {
                self.running = false;
                self.leave(State::Initialize, Reason::Shutdown, true);
            }
            Command::SetPriority(p) => {
                if p != 0 {
                    self.base_priority = p;
                }
            }
            Command::InterfaceDown => {
                self.iface_up = false;
                // The link is gone: no priority-0 advert can leave.
                self.fault(Reason::InterfaceDown, false);
            }
            Command::InterfaceUp => {
                self.iface_up = true;
                self.recover(now);
            }
            Command::Track { name, up } => {
                for (t, u) in self.cfg.track.iter().zip(self.track_up.iter_mut()) {
                    if t.name == name {
                        *u = up;
                    }
                }
                if let Some(reason) = self.faulted() {
                    // The link still works: hand over at once with priority 0.
                    self.fault(reason, true);
                } else {
                    self.recover(now);
                }
            }
            Command::SyncMaster { member } => {
                if self.running && self.state == State::Backup {
                    self.become_master(now, Reason::SyncGroup { member });
                }
            }
            Command::SyncBackup { member } => {
                if self.running && self.state == State::Master {
                    // keepalived's vrrp_sync_backup: leave Master without a priority 0 advert.
                    self.leave_master_timers();
                    self.actions.push_back(Action::RemoveAddresses {
                        addresses: self.all_addresses(),
                    });
                    self.master_down_timer = Some(now + self.master_down_interval());
                    self.down_reason = Reason::MasterDown;
                    self.set_state(State::Backup, Reason::SyncGroup { member });
                }
            }
            Command::SyncFault { member } => {
                self.group_fault = member;
                if let Some(reason) = self.faulted() {
                    self.fault(reason, true);
                } else {
                    self.recover(now);
                }
            }
            Command::SetSyncGated(on) => {
                self.gated = on;
                self.wants_master = false;
            }
        }
    }

    /// Enters Fault (from Backup or Master) for `reason`.
    fn fault(&mut self, reason: Reason, send_zero: bool) {
        if self.running && self.state != State::Fault {
            self.leave(State::Fault, reason, send_zero);
        }
    }

    /// Leaves Fault when nothing holds it there any more: the Startup path to Backup (or Master for
    /// the owner), RFC 5798 §6.4.1.
    fn recover(&mut self, now: Instant) {
        if self.running && self.state == State::Fault && self.faulted().is_none() {
            self.state = State::Initialize;
            self.startup_with(now, Reason::FaultCleared);
        } else {
            self.startup(now);
        }
    }

    /// RFC 5798 §6.4.1: the Startup event (no-op unless running, in Initialize and not faulted).
    fn startup(&mut self, now: Instant) {
        self.startup_with(now, Reason::Startup);
    }

    fn startup_with(&mut self, now: Instant, why: Reason) {
        if !self.running || self.state != State::Initialize {
            return;
        }
        if let Some(reason) = self.faulted() {
            // keepalived starts a faulty instance in FAULT.
            self.set_state(State::Fault, reason);
            return;
        }
        self.wants_master = false;
        if self.priority() == 255 {
            // RFC 5798 §6.4.1: the owner becomes Master at once.
            self.become_master(now, Reason::Owner);
        } else {
            // RFC 5798 §6.4.1: Master_Adver_Interval = Advertisement_Interval, Master_Down_Timer =
            // Master_Down_Interval, go to Backup.
            // A non-owner's `state MASTER` changes nothing here: keepalived 2.2.7 also waits the full
            // Master_Down_Interval (see config::InitialState).
            self.master_adver_interval = self.cfg.advert_int;
            self.master_down_timer = Some(now + self.master_down_interval());
            self.down_reason = Reason::MasterDown;
            self.set_state(State::Backup, why);
        }
    }

    fn set_state(&mut self, to: State, reason: Reason) {
        let from = self.state;
        if to == State::Backup {
            // keepalived clears the preempt_delay start on entering Backup.
            self.preempt_after = None;
        }
        self.state = to;
        self.actions
            .push_back(Action::StateChange { from, to, reason });
    }

    fn all_addresses(&self) -> Vec<VirtualAddress> {
        self.cfg
            .virtual_ipaddress
            .iter()
            .chain(&self.cfg.virtual_ipaddress_excluded)
            .cloned()
            .collect()
    }

    fn become_master(&mut self, now: Instant, reason: Reason) {
        // RFC 5798 §6.4.1 / §6.4.2: send an ADVERTISEMENT, announce the addresses (gratuitous ARP /
        // unsolicited NA), set Adver_Timer to Advertisement_Interval, transition to Master.
        self.master_down_timer = None;
        self.master = None;
        self.send_adverts(self.priority());
        let addresses = self.all_addresses();
        let accept = self.cfg.accept || self.priority() == 255;
        self.actions.push_back(Action::AddAddresses {
            addresses: addresses.clone(),
            accept,
        });
        self.actions.push_back(Action::Announce {
            addresses,
            repeat: self.cfg.garp_master_repeat,
        });
        self.adver_timer = Some(now + self.cfg.advert_int);
        // keepalived's garp_master_delay / garp_master_refresh.
        self.garp_timer =
            (!self.cfg.garp_master_delay.is_zero()).then(|| now + self.cfg.garp_master_delay);
        self.refresh_timer =
            (!self.cfg.garp_master_refresh.is_zero()).then(|| now + self.cfg.garp_master_refresh);
        self.set_state(State::Master, reason);
    }

    fn leave_master_timers(&mut self) {
        self.adver_timer = None;
        self.garp_timer = None;
        self.refresh_timer = None;
    }

    /// Leaves Backup or Master (or Fault) for `to` (Initialize or Fault).
    fn leave(&mut self, to: State, reason: Reason, send_zero: bool) {
        match self.state {
            State::Initialize => return,
            State::Fault => {}
            State::Backup => {
                // RFC 5798 §6.4.2 Shutdown: cancel Master_Down_Timer.
                self.master_down_timer = None;
            }
            State::Master => {
                // RFC 5798 §6.4.3 Shutdown: cancel Adver_Timer, send priority 0.
                self.leave_master_timers();
                if send_zero {
                    self.send_adverts(0);
                }
                self.actions.push_back(Action::RemoveAddresses {
                    addresses: self.all_addresses(),
                });
            }
        }
        self.master = None;
        self.wants_master = false;
        self.set_state(to, reason);
    }

    fn advert_repr(&self, priority: u8) -> Repr {
        let body = match self.cfg.version {
            Version::V2 => {
                let mut auth_data = [0u8; wire::AUTH_DATA_LEN];
                let auth_type = match &self.cfg.auth_pass {
                    Some(p) => {
                        let n = p.len().min(wire::AUTH_DATA_LEN);
                        auth_data[..n].copy_from_slice(&p[..n]);
                        AuthType::SimpleText
                    }
                    None => AuthType::None,
                };
                let adver_int = u8::try_from(self.cfg.advert_int.as_secs()).unwrap_or(u8::MAX);
                Body::V2 {
                    adver_int,
                    auth_type,
                    auth_data,
                }
            }
            Version::V3 => {
                let cs = self.cfg.advert_int.as_millis() / 10;
                Body::V3 {
                    max_adver_int: u16::try_from(cs).unwrap_or(0x0fff).min(0x0fff),
                    reserved: 0,
                }
            }
        };
        let addresses = if self.cfg.is_ipv6() {
            Addresses::V6(
                self.cfg
                    .advertised()
                    .filter_map(|a| match a {
                        IpAddr::V6(a) => Some(a),
                        IpAddr::V4(_) => None,
                    })
                    .collect(),
            )
        } else {
            Addresses::V4(
                self.cfg
                    .advertised()
                    .filter_map(|a| match a {
                        IpAddr::V4(a) => Some(a),
                        IpAddr::V6(_) => None,
                    })
                    .collect(),
            )
        };
        Repr {
            vrid: self.cfg.virtual_router_id,
            priority,
            body,
            addresses,
        }
    }

    fn checksum_for(&self, src: IpAddr, dst: IpAddr) -> Checksum {
        match (self.cfg.version, self.cfg.is_ipv6(), self.cfg.v4_checksum) {
            // RFC 3768 §5.3.8: the v2 checksum covers the message only.
            (Version::V2, _, _) => Checksum::MessageOnly,
            // RFC 5798 §5.2.8: IPv6 always uses the pseudo-header.
            (Version::V3, true, _) => Checksum::PseudoHeader { src, dst },
            // RFC 5798 §5.2.8 (IPv4 pseudo-header) or RFC 9568 §5.2.8 (message only).
            (Version::V3, false, V4Checksum::PseudoHeader) => Checksum::PseudoHeader { src, dst },
            (Version::V3, false, V4Checksum::MessageOnly) => Checksum::MessageOnly,
        }
    }

    fn send_adverts(&mut self, priority: u8) {
        let repr = self.advert_repr(priority);
        let src = self.source_address();
        if self.cfg.unicast_peer.is_empty() {
            let dst = if self.cfg.is_ipv6() {
                IpAddr::V6(wire::MULTICAST_V6)
            } else {
                IpAddr::V4(wire::MULTICAST_V4)
            };
            let checksum = self.checksum_for(src, dst);
            self.actions.push_back(Action::SendAdvert(Advert {
                src,
                dst,
                checksum,
                repr,
            }));
        } else {
            // A peer list shared by every member may name this router too: never send to ourselves.
            for dst in self
                .cfg
                .unicast_peer
                .clone()
                .into_iter()
                .filter(|d| *d != src)
            {
                let checksum = self.checksum_for(src, dst);
                self.actions.push_back(Action::SendAdvert(Advert {
                    src,
                    dst,
                    checksum,
                    repr: repr.clone(),
                }));
            }
        }
    }

    /// Timer expiry: call when `now` reaches [`Router::poll_timeout`] (earlier calls do nothing).
    pub fn handle_timeout(&mut self, now: Instant) {
        // A few rounds at most: each handled timer is cleared or moved past `now`.
        for _ in 0..8 {
            let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
            if due(self.master_down_timer) && self.state == State::Backup && self.gated {
                // keepalived's sync group: want Master, wait for the other members, time again.
                self.master_down_timer = Some(now + self.master_down_interval());
                if !self.wants_master {
                    self.wants_master = true;
                    self.actions.push_back(Action::WantMaster);
                }
            } else if due(self.master_down_timer) && self.state == State::Backup {
                // RFC 5798 §6.4.2: Master_Down_Timer fired: become Master.
                let reason = std::mem::replace(&mut self.down_reason, Reason::MasterDown);
                self.become_master(now, reason);
            } else if due(self.adver_timer) && self.state == State::Master {
                // RFC 5798 §6.4.3: Adver_Timer fired: send an ADVERTISEMENT, reset the timer.
                self.send_adverts(self.priority());
                self.adver_timer = Some(now + self.cfg.advert_int);
            } else if due(self.garp_timer) && self.state == State::Master {
                self.garp_timer = None;
                let addresses = self.all_addresses();
                self.actions.push_back(Action::Announce {
                    addresses,
                    repeat: self.cfg.garp_master_repeat,
                });
            } else if due(self.refresh_timer) && self.state == State::Master {
                self.refresh_timer = Some(now + self.cfg.garp_master_refresh);
                let addresses = self.all_addresses();
                // keepalived's garp_master_refresh_repeat.
                self.actions.push_back(Action::Announce {
                    addresses,
                    repeat: self.cfg.garp_master_refresh_repeat,
                });
            } else {
                return;
            }
        }
    }

    /// The receive checks of RFC 3768 §7.1 / RFC 5798 §7.1 / RFC 9568 §7.1, in the RFC's order, each
    /// failure its own [`RxError`] kind. `Ok` carries the checked view.
    ///
    /// Unicast instances (a non-empty `unicast_peer`) follow keepalived 2.2.7 where the RFCs are
    /// silent: any TTL is accepted, multicast adverts are dropped, and with `check_unicast_src` only
    /// the listed peers are heard. Multicast instances drop unicast adverts.
    ///
    /// An address-list mismatch from the owner (priority 255) passes this check: RFC 5798 §7.1 says
    /// to log it and continue, and [`Router::handle_packet`] reports it with
    /// [`Action::AddressListMismatch`].
    pub fn check_packet<'a>(
        &self,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        bytes: &'a [u8],
    ) -> Result<Packet<'a>, RxError> {
        let unicast = !self.cfg.unicast_peer.is_empty();
        // RFC 5798 §7.1: the TTL / hop limit must be 255. Unicast is outside the RFCs: like keepalived
        // 2.2.7 (vrrp_check_packet), a unicast instance accepts any TTL, so peers may be routed hops
        // away; `check_unicast_src` then restricts who may speak.
        if !unicast && ttl != wire::TTL {
            return Err(RxError::Ttl { actual: ttl });
        }
        // RFC 5798 §7.1: version, type, length against count (RFC 9568 errata: count > 0).
        let p = Packet::parse_unverified(bytes)?;
        let expected_version = match self.cfg.version {
            Version::V2 => 2,
            Version::V3 => 3,
        };
        if p.version() != expected_version {
            return Err(RxError::Version {
                expected: expected_version,
                actual: p.version(),
            });
        }
        let v6 = self.cfg.is_ipv6();
        if (p.family() == Family::Ipv6) != v6 || src.is_ipv6() != v6 || dst.is_ipv6() != v6 {
            return Err(RxError::Family);
        }
        // RFC 5798 §7.1: verify the checksum.
        let mode = self.checksum_for(src, dst);
        if let Err(e) = p.verify_checksum(&mode) {
            let satisfied = p.checksum_modes(src, dst);
            if p.version() == 3 && !v6 && !satisfied.none() {
                return Err(RxError::ChecksumMode {
                    expected: self.cfg.v4_checksum,
                    satisfied,
                });
            }
            return Err(e.into());
        }
        // RFC 5798 §7.1: the VRID must be configured on this interface.
        if p.vrid() != self.cfg.virtual_router_id {
            return Err(RxError::UnknownVrid { actual: p.vrid() });
        }
        // RFC 5798 §5.2.6: reserved bits are zero.
        if p.reserved() != 0 {
            return Err(RxError::Reserved {
                actual: p.reserved(),
            });
        }
        // RFC 5798 §5.2.9: the first IPv6 address is the link-local one.
        if let Some(first @ IpAddr::V6(a)) = p.first_address()
            && !a.is_unicast_link_local()
        {
            return Err(RxError::FirstAddressNotLinkLocal { actual: first });
        }
        if let Body::V2 {
            adver_int,
            auth_type,
            auth_data,
        } = p.body()
        {
            // RFC 3768 §7.1: authentication type and data must match.
            let (want_type, want_data) = match &self.cfg.auth_pass {
                Some(pass) => {
                    let mut d = [0u8; wire::AUTH_DATA_LEN];
                    let n = pass.len().min(wire::AUTH_DATA_LEN);
                    d[..n].copy_from_slice(&pass[..n]);
                    (AuthType::SimpleText, Some(d))
                }
                None => (AuthType::None, None),
            };
            if auth_type != want_type {
                return Err(RxError::AuthType {
                    expected: want_type.to_u8(),
                    actual: auth_type.to_u8(),
                });
            }
            if let Some(d) = want_data
                && d != auth_data
            {
                return Err(RxError::AuthData);
            }
            // RFC 3768 §7.1: the advert interval must match the configured one.
            let want = u8::try_from(self.cfg.advert_int.as_secs()).unwrap_or(u8::MAX);
            if adver_int != want {
                return Err(RxError::AdverInt {
                    expected: want,
                    actual: adver_int,
                });
            }
        }
        // keepalived 2.2.7: a unicast instance drops multicast adverts, a multicast one unicast adverts.
        if dst.is_multicast() == unicast {
            return Err(RxError::Destination { actual: dst });
        }
        if src == self.source_address() {
            return Err(RxError::Own);
        }
        // keepalived's `check_unicast_src`: only the configured peers may speak.
        if unicast && self.cfg.check_unicast_src && !self.cfg.unicast_peer.contains(&src) {
            return Err(RxError::NotAPeer { actual: src });
        }
        // RFC 5798 §7.1: an address list that differs is logged and dropped unless the sender is the owner.
        if p.priority() != 255 && !self.same_addresses(&p) {
            return Err(RxError::AddressMismatch);
        }
        Ok(p)
    }

    fn same_addresses(&self, p: &Packet<'_>) -> bool {
        usize::from(p.count()) == self.cfg.virtual_ipaddress.len()
            && p.addresses()
                .all(|a| self.cfg.virtual_ipaddress.iter().any(|v| v.addr == a))
    }

    /// A received advert: its IP source and destination, TTL / hop limit, and VRRP payload. Returns why it
    /// was dropped, if it was (see [`Router::check_packet`]); what to do next is in
    /// [`Router::poll_action`] and [`Router::poll_timeout`].
    pub fn handle_packet(
        &mut self,
        now: Instant,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        bytes: &[u8],
    ) -> Result<(), RxError> {
        if !self.running || matches!(self.state, State::Initialize | State::Fault) {
            return Err(RxError::NotRunning);
        }
        let p = self.check_packet(src, dst, ttl, bytes)?;
        if p.priority() == 255 && !self.same_addresses(&p) {
            // RFC 5798 §7.1: the owner's advert is processed anyway, but the mismatch MUST be logged.
            self.actions
                .push_back(Action::AddressListMismatch { from: src });
        }
        let their = p.priority();
        let ours = self.priority();
        match self.state {
            State::Initialize | State::Fault => Err(RxError::NotRunning),
            State::Backup => {
                if their == 0 {
                    // RFC 5798 §6.4.2: priority 0: set Master_Down_Timer to Skew_Time.
                    self.master_down_timer = Some(now + self.skew_time());
                    self.down_reason = Reason::HandOver;
                    return Ok(());
                }
                // keepalived 2.2.7's preempt_delay: the delay starts with the first lower-priority
                // advert heard in Backup and is cancelled by an advert at or above our priority, so a
                // lower-priority Master must have been heard for preempt_delay before we preempt
                // (also after a fault or a priority change, not only after Startup).
                let delaying =
                    !self.cfg.preempt_delay.is_zero() && self.preempt_after.is_none_or(|t| now < t);
                if self.cfg.nopreempt || their >= ours || delaying {
                    if !self.cfg.preempt_delay.is_zero() {
                        if their >= ours {
                            self.preempt_after = None;
                        } else if self.preempt_after.is_none() {
                            self.preempt_after = Some(now + self.cfg.preempt_delay);
                        }
                    }
                    // RFC 5798 §6.4.2: learn Master_Adver_Interval (v3), recompute Master_Down_Interval,
                    // reset Master_Down_Timer. keepalived's preempt_delay counts as no preemption for a while.
                    if self.cfg.version == Version::V3 {
                        self.master_adver_interval = p.interval();
                    }
                    self.master_down_timer = Some(now + self.master_down_interval());
                    self.down_reason = Reason::MasterDown;
                    self.master = Some((src, their));
                    self.wants_master = false;
                } else {
                    // RFC 5798 §6.4.2: preempt: discard; Master_Down_Timer runs out.
                    self.down_reason = Reason::Preempt;
                }
                Ok(())
            }
            State::Master => {
                if their == 0 {
                    // RFC 5798 §6.4.3: priority 0: send an ADVERTISEMENT at once, reset Adver_Timer.
                    self.send_adverts(ours);
                    self.adver_timer = Some(now + self.cfg.advert_int);
                } else if their > ours || (their == ours && src > self.source_address()) {
                    // RFC 5798 §6.4.3: a better Master (ties: the higher primary address): cancel
                    // Adver_Timer, learn Master_Adver_Interval, reset Master_Down_Timer, go to Backup.
                    self.leave_master_timers();
                    if self.cfg.version == Version::V3 {
                        self.master_adver_interval = p.interval();
                    }
                    self.actions.push_back(Action::RemoveAddresses {
                        addresses: self.all_addresses(),
                    });
                    self.master_down_timer = Some(now + self.master_down_interval());
                    self.down_reason = Reason::MasterDown;
                    self.master = Some((src, their));
                    self.set_state(
                        State::Backup,
                        Reason::HigherPriority {
                            from: src,
                            priority: their,
                        },
                    );
                } else if self.cfg.answer_lower_priority {
                    // RFC 9568 §6.4.3: discard it and "send an ADVERTISEMENT immediately to assert the
                    // Active state". Unlike the priority-0 branch above, the RFC does not reset
                    // Adver_Timer here, so the periodic adverts keep their phase.
                    self.send_adverts(ours);
                }
                // else RFC 5798 §6.4.3: discard.
                Ok(())
            }
        }
    }
}
