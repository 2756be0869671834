//! The Linux driver (feature `linux`): a thin loop around a [`Session`] that an HA controller can embed
//! without the `ctsyncd` binary.
//!
//! * [`Channel`]: the dedicated link (conntrackd's `Multicast` or `UDP` channel), pollable.
//! * [`Filter`]: conntrackd's `Filter` clause.
//! * [`commit`](commit::commit): the external cache into the kernel with conntrackd's rules, one result
//!   per entry.
//! * [`Driver`]: events in, datagrams in and out, timers, and the operations of conntrackd's client
//!   commands (commit, flush, resync, bulk send, purge). Every descriptor is pollable ([`Driver::fds`]) and
//!   every deadline is known ([`Driver::poll_timeout`]), so the driver fits into the caller's own loop;
//!   [`Driver::run_once`] is a ready-made one.

mod channel;
pub mod commit;
mod filter;
mod sockopt;

pub use channel::{Channel, ChannelConfig, Link, LinkStats};
pub use commit::{CommitOptions, CommitReport};
pub use filter::{Filter, Logic, Net};
pub use sockopt::SchedPolicy;

/// Puts this process under a real-time scheduling policy, as conntrackd does at start (its `Scheduler`
/// clause; without one, `SCHED_RR` at the highest priority), so that a busy machine does not starve the
/// event reader into overruns. `priority` `None` takes the policy's highest.
pub fn set_scheduler(policy: SchedPolicy, priority: Option<i32>) -> std::io::Result<()> {
    sockopt::set_scheduler(policy, priority)
}

use crate::session::{Action, Session, SessionConfig};
use crate::wire::{Change, CtEntry, ExpEntry};
use ctnl::{Conntrack, Event, EventKind, EventSocket, Groups, TryRecv};
use rustix::event::{PollFd, PollFlags};
use rustix::fd::{AsFd, BorrowedFd};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// What the driver reports as going wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A channel socket call failed.
    #[error("{what}: {source}")]
    Channel {
        /// The call.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// A ctnetlink operation failed.
    #[error(transparent)]
    Kernel(#[from] ctnl::Error),
    /// Inconsistent settings.
    #[error("{0}")]
    Config(&'static str),
}

impl Error {
    /// The kernel errno behind the error, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Channel { source, .. } => source.raw_os_error(),
            Error::Kernel(e) => e.errno(),
            Error::Config(_) => None,
        }
    }
}

/// The driver's settings (conntrackd's `Sync` and `General` sections).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DriverConfig {
    /// The mode and its settings.
    pub session: SessionConfig,
    /// The dedicated link.
    pub channel: ChannelConfig,
    /// Which entries to replicate.
    pub filter: Filter,
    /// Commit rules.
    pub commit: CommitOptions,
    /// `ExpectationSync`: replicate expectations too.
    pub expectations: bool,
    /// `NetlinkBufferSize` (0: ctnl's default).
    pub event_buffer: usize,
    /// `NetlinkBufferSizeMaxGrowth`: the event buffer doubles on each overrun up to this. The driver
    /// starts at the larger of the two (see [`Driver::open`]).
    pub event_buffer_max: usize,
    /// `NetlinkOverrunResync`: how long after an overrun the table is dumped again (`None`: never).
    pub overrun_resync: Option<Duration>,
    /// `NetlinkEventsReliable`.
    pub events_reliable: bool,
    /// `HashLimit`: most objects per cache.
    pub hash_limit: usize,
    /// `PurgeTimeout`: the delay of the kernel flush `-t` schedules.
    pub purge_timeout: Duration,
}

impl DriverConfig {
    /// Settings with conntrackd's defaults around a session and a channel.
    pub fn new(session: SessionConfig, channel: ChannelConfig) -> Self {
        DriverConfig {
            session,
            channel,
            filter: Filter::default(),
            commit: CommitOptions::default(),
            expectations: false,
            event_buffer: 0,
            event_buffer_max: 0,
            overrun_resync: Some(Duration::from_secs(30)),
            events_reliable: false,
            hash_limit: crate::cache::DEFAULT_LIMIT,
            purge_timeout: Duration::from_secs(60),
        }
    }
}

/// Kernel-side counters (`conntrackd -s runtime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DriverStats {
    /// Events read.
    pub events_received: u64,
    /// Events the filter dropped.
    pub events_filtered: u64,
    /// Events of an unknown kind.
    pub events_unknown: u64,
    /// Receive errors other than overruns.
    pub catch_failed: u64,
    /// Event overruns (`ENOBUFS`): events were lost.
    pub overruns: u64,
    /// Kernel table flushes (`-F`, `-t`).
    pub kernel_flushes: u64,
    /// Resyncs with the kernel table (overruns, `-R`).
    pub kernel_resyncs: u64,
    /// The event socket's receive buffer now.
    pub event_buffer: usize,
    /// Datagrams that could not be sent.
    pub send_failed: u64,
    /// Bytes of the connections that ended while cached (`traffic processed`, with accounting on).
    pub bytes: u64,
    /// Packets of the connections that ended while cached.
    pub packets: u64,
}

/// Events read per [`Driver::handle_events`] call before the other sockets get their turn
/// (conntrackd's `EventIterationLimit` plays the same role).
const EVENT_BATCH: usize = 4096;

/// Events applied together by [`Driver::handle_events`]: the cache slots they change are looked up back
/// to back first ([`crate::cache::InternalCache::warm`]).
const WARM_BATCH: usize = 256;

/// A kernel event read and checked, waiting in a batch to be applied.
#[derive(Debug)]
enum Local {
    Ct {
        change: Change,
        entry: CtEntry,
        /// Caused by our own commit or flush.
        mine: bool,
        /// A DESTROY's traffic counters (both directions).
        bytes: u64,
        packets: u64,
    },
    Exp {
        change: Change,
        entry: ExpEntry,
        mine: bool,
    },
}

/// The running sync: a session, its channel, the kernel's events and a ctnetlink handle.
#[derive(Debug)]
pub struct Driver {
    session: Box<dyn Session>,
    channel: Channel,
    events: EventSocket,
    ct: Conntrack,
    own_portid: u32,
    /// The handle `-F` and `-t` flush through, and its port id: the deletions they cause are cached
    /// but not announced, as conntrackd does with its `CTD_ORIGIN_FLUSH` handle.
    flusher: Conntrack,
    flush_portid: u32,
    cfg: DriverConfig,
    buf: Vec<u8>,
    tx: Vec<u8>,
    /// Events read, not yet applied (empty between calls; kept for its memory).
    batch: Vec<Local>,
    resync_at: Option<Instant>,
    purge_at: Option<Instant>,
    stats: DriverStats,
    kernel_filter: ctnl::event_filter::Program,
}

fn portid(fd: BorrowedFd<'_>) -> u32 {
    rustix::net::getsockname(fd)
        .ok()
        .and_then(|a| rustix::net::netlink::SocketAddrNetlink::try_from(a).ok())
        .map_or(0, |a| a.pid())
}

impl Driver {
    /// Opens everything and fills the internal cache from a dump of the kernel table (not announced: the
    /// peer asks with a resync, or `-B` sends it), as conntrackd does at start. The event socket is
    /// opened before the dump, so nothing that changes during it is missed.
    pub fn open(cfg: DriverConfig, now: Instant) -> Result<Driver, Error> {
        let groups = if cfg.expectations {
            Groups::CONNTRACK | Groups::EXPECT
        } else {
            Groups::CONNTRACK
        };
        // Start at the growth cap: conntrackd starts at NetlinkBufferSize and doubles after each overrun,
        // losing events every time; the kernel only uses the memory while events are queued.
        let size = cfg.event_buffer.max(cfg.event_buffer_max);
        let mut events = if size > 0 {
            EventSocket::open_with(groups, size)?
        } else {
            EventSocket::open(groups)?
        };
        if cfg.events_reliable {
            events.set_reliable(true)?;
        }
        // The kernel drops what the filter rejects before it is queued; user space still checks.
        let kernel_filter = events.set_filter(&cfg.filter.event_filter())?;
        events.set_nonblocking(true)?;
        let ct = Conntrack::open()?;
        let own_portid = portid(ct.as_fd());
        let flusher = Conntrack::open()?;
        let flush_portid = portid(flusher.as_fd());
        let channel = Channel::open(&cfg.channel)?;
        let mut session = cfg.session.build(now);
        session.internal_mut().set_limit(cfg.hash_limit);
        session.external_mut().set_limit(cfg.hash_limit);
        session.internal_exp_mut().set_limit(cfg.hash_limit);
        session.external_exp_mut().set_limit(cfg.hash_limit);
        let stats = DriverStats {
            event_buffer: events.rcvbuf(),
            ..DriverStats::default()
        };
        let mut d = Driver {
            session,
            channel,
            events,
            ct,
            own_portid,
            flusher,
            flush_portid,
            cfg,
            buf: vec![0u8; 65536],
            tx: vec![0u8; 65536],
            batch: Vec::with_capacity(WARM_BATCH),
            resync_at: None,
            purge_at: None,
            stats,
            kernel_filter,
        };
        d.populate(now)?;
        Ok(d)
    }

    /// The session.
    pub fn session(&self) -> &dyn Session {
        self.session.as_ref()
    }

    /// The session, for flushing caches and other direct calls.
    pub fn session_mut(&mut self) -> &mut dyn Session {
        self.session.as_mut()
    }

    /// The channel.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// The settings.
    pub fn config(&self) -> &DriverConfig {
        &self.cfg
    }

    /// Kernel-side counters.
    pub fn stats(&self) -> DriverStats {
        self.stats
    }

    /// The program the kernel runs on the event socket (empty without a filter; see
    /// [`Filter::event_filter`]).
    pub fn kernel_filter(&self) -> &ctnl::event_filter::Program {
        &self.kernel_filter
    }

    /// The descriptors to poll for reading: the event socket and the channel.
    pub fn fds(&self) -> [BorrowedFd<'_>; 2] {
        [self.events.as_fd(), self.channel.as_fd()]
    }

    /// The nearest deadline: the session's timers, a pending overrun resync or a scheduled purge.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.session.poll_timeout(), self.resync_at, self.purge_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// True when events are waiting in the event socket's buffer (poll cannot see them).
    pub fn has_buffered_events(&self) -> bool {
        self.events.has_buffered()
    }

    /// Reads up to a batch of kernel events and hands them to the session, 256 at a time (their cache
    /// slots looked up together first). Returns whether more may be waiting.
    pub fn handle_events(&mut self, now: Instant) -> Result<bool, Error> {
        let mut batch = std::mem::take(&mut self.batch);
        let mut result = Ok(true);
        for _ in 0..EVENT_BATCH {
            if batch.len() == WARM_BATCH {
                self.apply_batch(now, &mut batch);
            }
            match self.events.try_recv() {
                Ok(TryRecv::Event(ev)) => batch.extend(self.check(ev)),
                Ok(TryRecv::WouldBlock) => {
                    result = Ok(false);
                    break;
                }
                // Applying the events read before an overrun later changes nothing: the resync it
                // schedules is not due yet.
                Err(ctnl::Error::Overrun) => self.overrun(now),
                Err(ctnl::Error::Decode(_)) => self.stats.catch_failed += 1,
                Err(e) => {
                    result = Err(e.into());
                    break;
                }
            }
        }
        self.apply_batch(now, &mut batch);
        self.batch = batch;
        result
    }

    /// Counts an event and checks it against the filter; returns what to apply.
    fn check(&mut self, ev: Event) -> Option<Local> {
        self.stats.events_received += 1;
        let from = self.events.last_portid();
        let mine = from != 0 && (from == self.own_portid || from == self.flush_portid);
        match ev {
            Event::Conntrack { kind, entry } => {
                if !self.cfg.filter.matches(&entry) {
                    self.stats.events_filtered += 1;
                    return None;
                }
                let Some(e) = CtEntry::from_ctnl(&entry) else {
                    self.stats.events_filtered += 1;
                    return None;
                };
                let change = change_of(kind);
                let (mut bytes, mut packets) = (0, 0);
                if change == Change::Delete {
                    for c in [entry.counters_orig, entry.counters_reply]
                        .into_iter()
                        .flatten()
                    {
                        bytes += c.bytes;
                        packets += c.packets;
                    }
                }
                Some(Local::Ct {
                    change,
                    entry: e,
                    mine,
                    bytes,
                    packets,
                })
            }
            Event::Expect { kind, expect } => Some(Local::Exp {
                change: change_of(kind),
                entry: ExpEntry::from_ctnl(&expect),
                mine,
            }),
            _ => {
                self.stats.events_unknown += 1;
                None
            }
        }
    }

    /// Applies a batch of events in order, after looking their cache slots up back to back.
    fn apply_batch(&mut self, now: Instant, batch: &mut Vec<Local>) {
        self.session
            .internal()
            .warm(batch.iter().filter_map(|l| match l {
                Local::Ct { entry, .. } => entry.key(),
                Local::Exp { .. } => None,
            }));
        for l in batch.drain(..) {
            match l {
                Local::Ct {
                    change,
                    entry,
                    mine,
                    bytes,
                    packets,
                } => {
                    if change == Change::Delete
                        && entry
                            .key()
                            .and_then(|k| self.session.internal().get(&k))
                            .is_some()
                    {
                        // update_traffic_stats: counters of a connection that ends while cached.
                        self.stats.bytes += bytes;
                        self.stats.packets += packets;
                    }
                    if mine {
                        // Caused by our own commit or flush: cached, not announced (CTD_ORIGIN_COMMIT,
                        // CTD_ORIGIN_FLUSH).
                        self.session.record_local(now, change, entry);
                    } else {
                        self.session.handle_local(now, change, entry);
                    }
                }
                Local::Exp {
                    change,
                    entry,
                    mine,
                } => {
                    if mine {
                        self.session.record_local_exp(now, change, entry);
                    } else {
                        self.session.handle_local_exp(now, change, entry);
                    }
                }
            }
        }
    }

    /// Events were lost: grow the buffer (up to `NetlinkBufferSizeMaxGrowth`) and schedule a resync from
    /// a dump (`NetlinkOverrunResync`).
    fn overrun(&mut self, now: Instant) {
        self.stats.overruns += 1;
        let doubled = self.stats.event_buffer.saturating_mul(2);
        if self.cfg.event_buffer_max > 0 && doubled <= self.cfg.event_buffer_max {
            // The kernel doubles what it is given, so ask for the current size to double it.
            let fd = self.events.as_fd();
            if rustix::net::sockopt::set_socket_recv_buffer_size_force(fd, self.stats.event_buffer)
                .is_ok()
                && let Ok(n) = rustix::net::sockopt::socket_recv_buffer_size(fd)
            {
                self.stats.event_buffer = n;
            }
        }
        if let Some(after) = self.cfg.overrun_resync
            && self.resync_at.is_none()
        {
            self.resync_at = Some(now + after);
        }
    }

    /// Reads every datagram waiting on the channel and hands it to the session.
    pub fn handle_channel(&mut self, now: Instant) -> Result<(), Error> {
        loop {
            match self.channel.recv(&mut self.buf) {
                Ok(Some((n, _))) => self.session.handle_datagram(now, &self.buf[..n]),
                Ok(None) => return Ok(()),
                Err(_) => return Ok(()),
            }
        }
    }

    /// Runs the timers whose deadline passed.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        if self.session.poll_timeout().is_some_and(|t| t <= now) {
            self.session.handle_timeout(now);
        }
        if self.resync_at.is_some_and(|t| t <= now) {
            self.resync_at = None;
            self.resync_after_overrun(now)?;
        }
        if self.purge_at.is_some_and(|t| t <= now) {
            self.purge_at = None;
            self.session.internal_mut().flush();
            self.flush_kernel()?;
        }
        Ok(())
    }

    /// Sends every datagram the session has queued.
    pub fn transmit(&mut self, now: Instant) {
        while let Some(n) = self.session.poll_transmit(now, &mut self.tx) {
            if self.channel.send(&self.tx[..n]).is_err() {
                self.stats.send_failed += 1;
            }
        }
    }

    /// The next thing the session reports.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.session.poll_action()
    }

    /// One turn of a ready-made loop: waits for a descriptor or the nearest deadline (at most `max`),
    /// then reads events and datagrams, runs timers and sends what is queued. The caller drains
    /// [`Driver::poll_action`] afterwards if it cares.
    pub fn run_once(&mut self, max: Duration) -> Result<(), Error> {
        let now = Instant::now();
        let wait = self
            .poll_timeout()
            .map_or(max, |t| t.saturating_duration_since(now).min(max));
        let (ev_ready, ch_ready) = if self.events.has_buffered() {
            (true, false)
        } else {
            let mut fds = [
                PollFd::new(&self.events, PollFlags::IN),
                PollFd::new(&self.channel, PollFlags::IN),
            ];
            let ts = rustix::time::Timespec {
                tv_sec: i64::try_from(wait.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(wait.subsec_nanos()),
            };
            match rustix::event::poll(&mut fds, Some(&ts)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    return Err(Error::Channel {
                        what: "poll",
                        source: std::io::Error::from_raw_os_error(e.raw_os_error()),
                    });
                }
            }
            (!fds[0].revents().is_empty(), !fds[1].revents().is_empty())
        };
        let now = Instant::now();
        if ev_ready {
            self.handle_events(now)?;
        }
        if ch_ready {
            self.handle_channel(now)?;
        }
        self.handle_timeout(now)?;
        self.transmit(now);
        Ok(())
    }

    /// Fills the internal cache from a kernel dump without announcing anything (conntrackd's start and
    /// `-R`).
    pub fn populate(&mut self, now: Instant) -> Result<usize, Error> {
        let session = &mut self.session;
        let n = dump_kept(&mut self.ct, &self.cfg.filter, |c| {
            session.record_local(now, Change::Update, c);
        })?;
        if self.cfg.expectations {
            let mut xs = Vec::new();
            for fam in [ctnl::Family::Ipv4, ctnl::Family::Ipv6] {
                for x in self.ct.dump_expect(Some(fam))? {
                    xs.push(ExpEntry::from_ctnl(&x?));
                }
            }
            for x in xs {
                self.session.record_local_exp(now, Change::Update, x);
            }
        }
        Ok(n)
    }

    /// `conntrackd -R`: resync the internal cache with the kernel table (a dump, not announced).
    pub fn resync_from_kernel(&mut self, now: Instant) -> Result<usize, Error> {
        self.stats.kernel_resyncs += 1;
        self.populate(now)
    }

    /// After an overrun: dump the table, announce every entry (`internal_cache_ct_resync`), and announce
    /// the deletion of cached entries the kernel no longer has (`purge`).
    pub fn resync_after_overrun(&mut self, now: Instant) -> Result<usize, Error> {
        self.stats.kernel_resyncs += 1;
        let mut seen = HashSet::new();
        let session = &mut self.session;
        let n = dump_kept(&mut self.ct, &self.cfg.filter, |c| {
            if let Some(k) = c.key() {
                seen.insert(k);
            }
            session.handle_local(now, Change::Update, c);
        })?;
        let gone: Vec<CtEntry> = self
            .session
            .internal()
            .live()
            .filter(|e| e.key().is_some_and(|k| !seen.contains(&k)))
            .collect();
        for e in gone {
            self.session.handle_local(now, Change::Delete, e);
        }
        Ok(n)
    }

    /// `conntrackd -c`: commits the external cache into the kernel.
    pub fn commit(&mut self, now: Instant) -> Result<CommitReport, Error> {
        self.purge_at = None;
        commit::commit(&mut self.ct, self.session.external(), now, &self.cfg.commit)
    }

    /// `conntrackd -c expect`: commits the external expectation cache.
    pub fn commit_expect(&mut self) -> Result<CommitReport, Error> {
        commit::commit_expect(&mut self.ct, self.session.external_exp())
    }

    /// `conntrackd -t`: flush the kernel table (what the filter accepts) and the internal cache after
    /// `PurgeTimeout`, unless already scheduled.
    pub fn schedule_purge(&mut self, now: Instant) {
        if self.purge_at.is_none() {
            self.purge_at = Some(now + self.cfg.purge_timeout);
        }
    }

    /// Cancels a scheduled purge (`-f` and `-c` do, as in conntrackd).
    pub fn cancel_purge(&mut self) {
        self.purge_at = None;
    }

    /// `conntrackd -F`: deletes every kernel entry the filter accepts, through the flush handle: the
    /// deletions leave the internal cache but are not announced to the peer, whose external cache keeps
    /// them (conntrackd 1.4.7 sends only the deletions of `CTD_ORIGIN_NOT_ME`).
    pub fn flush_kernel(&mut self) -> Result<usize, Error> {
        self.stats.kernel_flushes += 1;
        let other = &mut self.flusher;
        let mut keys = Vec::new();
        for filter in self.cfg.filter.kernel_dumps() {
            for e in other.dump(&filter)? {
                let e = e?;
                if self.cfg.filter.matches(&e)
                    && let Some(k) = ctnl::Key::of(&e)
                {
                    keys.push(k);
                }
            }
        }
        let mut batch = other.batch();
        for k in &keys {
            batch.delete(k)?;
        }
        let r = batch.finish()?;
        Ok(r.ok)
    }

    /// The kernel's conntrack ids of the entries the filter accepts, by original tuple and zone: what
    /// `conntrackd -i -x` shows in `<id>` (conntrackd keeps the id of the event; the cache here keeps
    /// only what the wire carries, so the id is read back from the kernel when asked).
    pub fn kernel_ids(&mut self) -> Result<HashMap<(ctnl::Tuple, Option<u16>), u32>, Error> {
        let mut ids = HashMap::new();
        for filter in self.cfg.filter.kernel_dumps() {
            for e in self.flusher.dump(&filter)? {
                let e = e?;
                if let (Some(t), Some(id)) = (e.orig, e.id) {
                    ids.insert((t, e.zone), id);
                }
            }
        }
        Ok(ids)
    }

    /// `conntrackd -F expect`: deletes every kernel expectation.
    pub fn flush_kernel_expect(&mut self) -> Result<(), Error> {
        self.stats.kernel_flushes += 1;
        let other = &mut self.flusher;
        for fam in [ctnl::Family::Ipv4, ctnl::Family::Ipv6] {
            other.flush_expect(Some(fam))?;
        }
        Ok(())
    }
}

/// Streams the kernel table's entries the filter keeps to `f` (the kernel narrows the dumps, user space
/// decides), decoding each into one reused entry; returns how many.
fn dump_kept(
    ct: &mut Conntrack,
    filter: &Filter,
    mut f: impl FnMut(CtEntry),
) -> Result<usize, Error> {
    let mut n = 0;
    let mut e = ctnl::Entry::default();
    for kernel in filter.kernel_dumps() {
        let mut dump = ct.dump(&kernel)?;
        while let Some(r) = dump.next_into(&mut e) {
            r?;
            if filter.matches(&e)
                && let Some(c) = CtEntry::from_ctnl(&e)
            {
                f(c);
                n += 1;
            }
        }
    }
    Ok(n)
}

fn change_of(kind: EventKind) -> Change {
    match kind {
        EventKind::New => Change::New,
        EventKind::Update => Change::Update,
        _ => Change::Delete,
    }
}
