//! Sans-IO sync sessions: FT-FW, ALARM and NOTRACK, after conntrackd's `sync-ftfw.c`, `sync-alarm.c` and
//! `sync-notrack.c`.
//!
//! A session owns the [`InternalCache`] (local entries, fed by [`Ftfw::handle_local`] from kernel events)
//! and the [`ExternalCache`] (entries learnt from the peer). It never touches a socket or a clock:
//!
//! * inputs: `handle_local(now, change, entry)`, `handle_datagram(now, bytes)`, `handle_timeout(now)`,
//!   `request_resync(now)`;
//! * outputs: `poll_transmit(now, buf)` fills one datagram (several messages packed up to the MTU) until
//!   it returns `None`; `poll_action()` reports what changed; `poll_timeout()` is the next deadline.

use crate::cache::{ExternalCache, InternalCache, Meta, ObjState};
use crate::entry::{ExpKey, Key};
use crate::wire::{self, Body, Change, CtEntry, ExpEntry, Flags, Message, Mode, Packer, msg_type};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

/// conntrackd's `ALIVE_INT`: a keep-alive (or pending ACK) after one second without transmission.
pub const ALIVE_INTERVAL: Duration = Duration::from_secs(1);

/// `before()` from network.h (wrap-around aware, as in TCP).
pub(crate) fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `after()` from network.h.
pub(crate) fn after(a: u32, b: u32) -> bool {
    before(b, a)
}

/// splitmix64: a tiny seedable generator for timer jitter (tests replay the same schedule).
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A value in `0..n` (`n > 0`; 0 yields 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// What a session reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// The peer announced a conntrack change; the external cache has applied it (an update merged into
    /// the cached entry, as conntrackd merges it): `external().get(&key)` gives the entry now, nothing
    /// after a delete.
    External {
        /// What happened.
        change: Change,
        /// The entry's key.
        key: Key,
    },
    /// An external entry expired (ALARM mode: not refreshed within the cache timeout).
    Expired(Box<CtEntry>),
    /// An external expectation expired (ALARM mode).
    ExpectationExpired(Box<ExpEntry>),
    /// The peer announced an expectation change; the external expectation cache has applied it
    /// (`external_exp().get(&key)` gives it now).
    Expectation {
        /// What happened.
        change: Change,
        /// The expectation's key.
        key: ExpKey,
    },
    /// The peer asked for a resync; the bulk send of the internal cache is queued.
    ResyncRequested,
    /// FT-FW: the peer answered our HELLO.
    HelloDone,
    /// FT-FW with a reliable handshake ([`FtfwConfig::reliable_handshake`]): the peer restarted (a new
    /// run of sequence numbers); what we were resending was dropped.
    PeerRestarted,
}

/// Protocol counters (`conntrackd -s network`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Messages sent.
    pub msg_sent: u64,
    /// Datagrams sent.
    pub datagrams_sent: u64,
    /// Messages received and decoded.
    pub msg_recv: u64,
    /// Messages that failed to decode (`msg_rcv_malformed`).
    pub malformed: u64,
    /// Messages judged bad by the mode (unexpected flags or ranges; conntrackd's `msg_rcv_bad_header`).
    pub bad: u64,
    /// Of `malformed`: a version other than 1 (`msg_rcv_bad_version`).
    pub bad_version: u64,
    /// Of `malformed`: an unknown message type (`msg_rcv_bad_type`).
    pub bad_type: u64,
    /// Of `malformed`: attributes that do not decode (`msg_rcv_bad_payload`).
    pub bad_payload: u64,
    /// Of `malformed`: a header cut short (`msg_rcv_truncated`).
    pub truncated: u64,
    /// Of `malformed`: an impossible length field (`msg_rcv_bad_size`).
    pub bad_size: u64,
    /// Messages the sequence tracking says were lost (`msg_rcv_lost`).
    pub lost: u64,
    /// Late or duplicate messages (`msg_rcv_before`); FT-FW drops them.
    pub before: u64,
    /// NACKs sent.
    pub nacks_sent: u64,
    /// ACKs sent.
    pub acks_sent: u64,
    /// Resend-queue nodes moved back to the transmit queue by a NACK.
    pub resent: u64,
    /// Resend-queue nodes evicted because the queue was full.
    pub rs_evicted: u64,
    /// Largest resend-queue length seen.
    pub rs_max_len: usize,
    /// Messages dropped because they do not fit the MTU.
    pub oversize: u64,
    /// Unknown attributes skipped in lenient mode.
    pub unknown_attrs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxItem {
    Ctl { flags: Flags, from: u32, to: u32 },
    Obj(ObjRef),
}

/// A reference to an internal cache object: conntrack or expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObjRef {
    Ct(Key),
    Exp(ExpKey),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Data,
    Ctl,
    Drop,
    Bad,
}

enum Track {
    Unset,
    InSync,
    After(u32),
    Before,
}

/// State shared by the three modes.
#[derive(Debug)]
struct Core {
    mtu: usize,
    mode: Mode,
    next_seq: u32,
    rx_last: Option<u32>,
    internal: InternalCache,
    external: ExternalCache,
    internal_exp: InternalCache<ExpEntry>,
    external_exp: ExternalCache<ExpEntry>,
    tx: VecDeque<TxItem>,
    /// Control messages in `tx`, and how many of them carry no range (ALIVE): FT-FW looks for them
    /// behind objects that wait, and only when there are some.
    ctl_queued: usize,
    plain_ctl_queued: usize,
    actions: VecDeque<Action>,
    stats: Stats,
}

impl Core {
    fn new(mtu: usize, initial_seq: u32, mode: Mode) -> Self {
        Core {
            mtu,
            mode,
            next_seq: initial_seq,
            rx_last: None,
            internal: InternalCache::default(),
            external: ExternalCache::default(),
            internal_exp: InternalCache::default(),
            external_exp: ExternalCache::default(),
            tx: VecDeque::new(),
            ctl_queued: 0,
            plain_ctl_queued: 0,
            actions: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// Counts a message that failed to decode, by conntrackd's kinds.
    fn count_decode_error(&mut self, e: &wire::DecodeError) {
        self.stats.malformed += 1;
        match e {
            wire::DecodeError::Truncated { .. } => self.stats.truncated += 1,
            wire::DecodeError::BadLength { .. } => self.stats.bad_size += 1,
            wire::DecodeError::BadVersion { .. } => self.stats.bad_version += 1,
            wire::DecodeError::UnknownType { .. } => self.stats.bad_type += 1,
            _ => self.stats.bad_payload += 1,
        }
    }

    /// `nethdr_track_seq`: classifies a sequence number without recording it.
    fn track(&mut self, seq: u32) -> Track {
        let Some(last) = self.rx_last else {
            return Track::Unset;
        };
        let exp = last.wrapping_add(1);
        if seq == exp {
            Track::InSync
        } else if after(seq, exp) {
            self.stats.lost += u64::from(seq.wrapping_sub(exp));
            Track::After(exp)
        } else {
            self.stats.before += 1;
            Track::Before
        }
    }

    fn meta_mut(&mut self, r: &ObjRef) -> Option<&mut Meta> {
        match r {
            ObjRef::Ct(k) => self.internal.map.get_mut(k).map(|o| &mut o.meta),
            ObjRef::Exp(k) => self.internal_exp.map.get_mut(k).map(|o| &mut o.meta),
        }
    }

    fn meta(&self, r: &ObjRef) -> Option<(Meta, ObjState)> {
        match r {
            ObjRef::Ct(k) => self.internal.map.get(k).map(|o| (o.meta, o.state)),
            ObjRef::Exp(k) => self.internal_exp.map.get(k).map(|o| (o.meta, o.state)),
        }
    }

    /// Drops a dead object once no queue refers to it.
    fn release(&mut self, r: &ObjRef) {
        match r {
            ObjRef::Ct(k) => self.internal.release(k),
            ObjRef::Exp(k) => self.internal_exp.release(k),
        }
    }

    /// Queues an object for transmission (`ftfw_enqueue` / `do_cache_to_tx`); a node it had in the resend
    /// queue becomes stale, as conntrackd moves it.
    fn enqueue(&mut self, r: ObjRef) {
        if let Some(m) = self.meta_mut(&r) {
            m.rs_seq = None;
            if !m.in_tx {
                m.in_tx = true;
                self.tx.push_back(TxItem::Obj(r));
            }
        }
    }

    /// A local change to a cache; returns the object to announce.
    fn apply_local_ct(&mut self, now: Instant, change: Change, entry: CtEntry) -> Option<ObjRef> {
        self.internal.apply(now, change, entry).map(ObjRef::Ct)
    }

    fn apply_local_exp(&mut self, now: Instant, change: Change, entry: ExpEntry) -> Option<ObjRef> {
        self.internal_exp.apply(now, change, entry).map(ObjRef::Exp)
    }

    /// A local change recorded without announcing it (conntrackd's `populate`, and the events its own
    /// commit causes): a deleted object leaves at once unless a queue still holds it.
    fn record_local(&mut self, r: Option<ObjRef>) {
        if let Some(r) = r {
            self.release(&r);
        }
    }

    fn ctl(&mut self, flags: Flags, from: u32, to: u32) {
        if flags.contains(Flags::ACK) {
            self.stats.acks_sent += 1;
        }
        if flags.contains(Flags::NACK) {
            self.stats.nacks_sent += 1;
        }
        self.push_ctl(TxItem::Ctl { flags, from, to });
    }

    /// Appends a control message to the transmit queue.
    fn push_ctl(&mut self, item: TxItem) {
        if let TxItem::Ctl { flags, .. } = item {
            self.ctl_queued += 1;
            if !flags.has_range() {
                self.plain_ctl_queued += 1;
            }
        }
        self.tx.push_back(item);
    }

    /// Removes the item at `i` of the transmit queue.
    fn take_tx(&mut self, i: usize) -> Option<TxItem> {
        let item = self.tx.remove(i)?;
        if let TxItem::Ctl { flags, .. } = item {
            self.ctl_queued -= 1;
            if !flags.has_range() {
                self.plain_ctl_queued -= 1;
            }
        }
        Some(item)
    }

    /// `resync_send`: every internal object goes to the transmit queue.
    fn bulk_send(&mut self) {
        // resync_send: the conntrack cache, then the expectation cache.
        let refs: Vec<ObjRef> = (self.internal.map.keys().map(|k| ObjRef::Ct(*k)))
            .chain(self.internal_exp.map.keys().map(|k| ObjRef::Exp(*k)))
            .collect();
        for r in refs {
            self.enqueue(r);
        }
    }

    /// Packs the message of a queued item with sequence number `next_seq` (objects from their encoded
    /// form, no decoding); returns the flags it carries, or why it was not packed.
    fn pack(&self, p: &mut Packer<'_>, item: &TxItem, flags: Flags) -> Packed {
        let seq = self.next_seq;
        let fits = match item {
            TxItem::Ctl { flags: f, from, to } => {
                let flags = f.union(flags);
                let m = Message {
                    flags,
                    seq,
                    body: Body::Ctl {
                        from: *from,
                        to: *to,
                    },
                };
                return if p.push(&m) {
                    Packed::Yes(flags)
                } else {
                    Packed::NoRoom
                };
            }
            TxItem::Obj(ObjRef::Ct(k)) => match self.internal.map.get(k) {
                Some(o) => {
                    let ty = msg_type::CT_NEW + o.state.change().offset();
                    p.push_encoded(ty, flags, seq, o.encoded())
                }
                None => return Packed::Gone,
            },
            TxItem::Obj(ObjRef::Exp(k)) => match self.internal_exp.map.get(k) {
                Some(o) => {
                    let ty = msg_type::EXP_NEW + o.state.change().offset();
                    p.push_encoded(ty, flags, seq, o.encoded())
                }
                None => return Packed::Gone,
            },
        };
        if fits {
            Packed::Yes(flags)
        } else {
            Packed::NoRoom
        }
    }

    /// Applies a data message to the external caches; `raw` is its attributes as received when the
    /// cache may keep them as they are (see `Messages::last_attrs`).
    fn apply_data(
        &mut self,
        now: Instant,
        m: Message,
        raw: Option<&[u8]>,
        expires: Option<Instant>,
    ) -> Option<ObjRef> {
        match m.body {
            Body::Ct(change, entry) => {
                let key = entry.key();
                // The cache counts an entry without a tuple (and applies nothing).
                if self.external.apply(now, change, entry, raw, expires)
                    && let Some(key) = key
                {
                    self.actions.push_back(Action::External { change, key });
                }
                key.map(ObjRef::Ct)
            }
            Body::Exp(change, entry) => {
                let key = entry.key();
                if self.external_exp.apply(now, change, entry, raw, expires)
                    && let Some(key) = key
                {
                    self.actions.push_back(Action::Expectation { change, key });
                }
                key.map(ObjRef::Exp)
            }
            Body::Ctl { .. } => None,
        }
    }
}

/// Gives memory back once a queue that grew large (a bulk send) holds a quarter of its capacity or less.
fn shrink<T>(q: &mut VecDeque<T>) {
    if q.capacity() > 4096 && q.len() * 4 <= q.capacity() {
        q.shrink_to(q.len() * 2);
    }
}

/// A received message's payload: decoded (with its attributes as received when a cache may keep them
/// so), or undecodable (the message still counts in the sequence).
#[derive(Debug, Clone, Copy)]
enum Payload<'a> {
    Ok(Option<&'a [u8]>),
    Bad,
}

/// What [`Core::pack`] did with an item.
enum Packed {
    /// Packed, with these flags.
    Yes(Flags),
    /// The datagram has no room for it.
    NoRoom,
    /// The object left the cache.
    Gone,
}

/// A body-less stand-in for a message whose payload failed to decode: it carries the header's type, flags
/// and sequence number through the mode's accounting and is never applied.
fn placeholder(h: wire::Header) -> Message {
    let change = match h.msg_type % 3 {
        0 => Change::New,
        1 => Change::Update,
        _ => Change::Delete,
    };
    let body = if h.msg_type >= msg_type::EXP_NEW {
        Body::Exp(change, ExpEntry::default())
    } else {
        Body::Ct(change, CtEntry::default())
    };
    Message {
        flags: h.flags,
        seq: h.seq,
        body,
    }
}

fn is_data(m: &Message) -> bool {
    // IS_DATA: a state message whose only flags are HELLO / HELLO_BACK.
    m.msg_type() <= msg_type::EXP_DEL && (m.flags - (Flags::HELLO | Flags::HELLO_BACK)).is_empty()
}

fn is_ctl(m: &Message, f: Flags) -> bool {
    m.msg_type() == msg_type::CTL && m.flags.contains(f)
}

/// The cache and counter accessors of [`Session`]: each session type keeps its caches and counters in a
/// `core: Core` field.
macro_rules! core_accessors {
    () => {
        fn internal(&self) -> &InternalCache {
            &self.core.internal
        }

        fn internal_mut(&mut self) -> &mut InternalCache {
            &mut self.core.internal
        }

        fn external(&self) -> &ExternalCache {
            &self.core.external
        }

        fn external_mut(&mut self) -> &mut ExternalCache {
            &mut self.core.external
        }

        fn internal_exp(&self) -> &InternalCache<ExpEntry> {
            &self.core.internal_exp
        }

        fn internal_exp_mut(&mut self) -> &mut InternalCache<ExpEntry> {
            &mut self.core.internal_exp
        }

        fn external_exp(&self) -> &ExternalCache<ExpEntry> {
            &self.core.external_exp
        }

        fn external_exp_mut(&mut self) -> &mut ExternalCache<ExpEntry> {
            &mut self.core.external_exp
        }

        fn stats(&self) -> Stats {
            self.core.stats
        }
    };
}

/// The local-change, resync-request and bulk-send methods FT-FW and NOTRACK share: a local change is
/// queued for sending at once (`sync_send`), `-n` queues a RESYNC control message (`resync_req`) and `-B`
/// queues the whole internal cache (`resync_send`).
macro_rules! local_changes_at_once {
    () => {
        fn handle_local(&mut self, now: Instant, change: Change, entry: CtEntry) {
            if let Some(r) = self.core.apply_local_ct(now, change, entry) {
                self.core.enqueue(r);
            }
        }

        fn handle_local_exp(&mut self, now: Instant, change: Change, entry: ExpEntry) {
            if let Some(r) = self.core.apply_local_exp(now, change, entry) {
                self.core.enqueue(r);
            }
        }

        fn record_local(&mut self, now: Instant, change: Change, entry: CtEntry) {
            let r = self.core.apply_local_ct(now, change, entry);
            self.core.record_local(r);
        }

        fn record_local_exp(&mut self, now: Instant, change: Change, entry: ExpEntry) {
            let r = self.core.apply_local_exp(now, change, entry);
            self.core.record_local(r);
        }

        fn request_resync(&mut self, _now: Instant) {
            self.core.ctl(Flags::RESYNC, 0, 0);
        }

        fn send_bulk(&mut self, _now: Instant) {
            self.core.bulk_send();
        }
    };
}

/// Chainable setters for a `#[non_exhaustive]` settings struct, so dependents can build it from
/// `Default`: `FtfwConfig::default().with_window_size(20)`.
macro_rules! with_setters {
    ($t:ty { $($with:ident => $field:ident: $ty:ty),* $(,)? }) => {
        impl $t {
            $(
                #[doc = concat!("Sets `", stringify!($field), "`.")]
                #[must_use]
                pub fn $with(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

with_setters!(FtfwConfig {
    with_mtu => mtu: usize,
    with_window_size => window_size: u32,
    with_resend_queue_size => resend_queue_size: usize,
    with_initial_seq => initial_seq: u32,
    with_mode => mode: Mode,
    with_flow_control => flow_control: bool,
    with_reliable_handshake => reliable_handshake: bool,
});

with_setters!(AlarmConfig {
    with_mtu => mtu: usize,
    with_refresh_secs => refresh_secs: u32,
    with_cache_timeout => cache_timeout: Duration,
    with_seed => seed: u64,
    with_initial_seq => initial_seq: u32,
    with_mode => mode: Mode,
});

with_setters!(NotrackConfig {
    with_mtu => mtu: usize,
    with_initial_seq => initial_seq: u32,
    with_mode => mode: Mode,
});

/// Which of conntrackd's three sync modes a session runs (`Sync { Mode FTFW | ALARM | NOTRACK }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SyncMode {
    /// FT-FW: reliable (sequence numbers, ACK/NACK, resend queue).
    Ftfw,
    /// ALARM: periodic refresh of every entry, expiry on the receiver.
    Alarm,
    /// NOTRACK: best effort, resync on request.
    Notrack,
}

impl SyncMode {
    /// The name conntrackd's configuration uses (`FTFW`, `ALARM`, `NOTRACK`).
    pub fn name(self) -> &'static str {
        match self {
            SyncMode::Ftfw => "FTFW",
            SyncMode::Alarm => "ALARM",
            SyncMode::Notrack => "NOTRACK",
        }
    }
}

/// One node of the FT-FW resend queue, as `conntrackd -s rsqueue` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResendNode {
    /// A control message (ACK, NACK or RESYNC) awaiting acknowledgement.
    Control {
        /// Its sequence number.
        seq: u32,
        /// Its flags.
        flags: Flags,
    },
    /// An object (conntrack entry or expectation) awaiting acknowledgement.
    Object {
        /// Sequence number of the message that carried it.
        seq: u32,
    },
}

/// What every sync session does, so that one loop drives FT-FW ([`Ftfw`]), ALARM ([`Alarm`]) and
/// NOTRACK ([`Notrack`]) alike (for example through a `Box<dyn Session>` from [`SessionConfig::build`]).
///
/// Inputs carry the current time; outputs are polled. A driver loop:
///
/// 1. waits until a socket is readable or [`Session::poll_timeout`] passes;
/// 2. feeds kernel events to [`Session::handle_local`], datagrams to [`Session::handle_datagram`] and
///    calls [`Session::handle_timeout`];
/// 3. sends every datagram [`Session::poll_transmit`] fills, and acts on every [`Session::poll_action`].
pub trait Session: std::fmt::Debug + Send {
    /// The mode this session runs.
    fn mode(&self) -> SyncMode;

    /// A local (kernel) conntrack change to announce to the peer.
    fn handle_local(&mut self, now: Instant, change: Change, entry: CtEntry);

    /// A local expectation change to announce (`ExpectationSync on`).
    fn handle_local_exp(&mut self, now: Instant, change: Change, entry: ExpEntry);

    /// A local conntrack change recorded in the internal cache without being announced: what conntrackd
    /// does with a kernel dump (`populate`, at start and on `-R`) and with the events its own commit
    /// causes. ALARM still refreshes the entry later, as conntrackd does.
    fn record_local(&mut self, now: Instant, change: Change, entry: CtEntry);

    /// An expectation change recorded without being announced (see [`Session::record_local`]).
    fn record_local_exp(&mut self, now: Instant, change: Change, entry: ExpEntry);

    /// A datagram from the peer.
    fn handle_datagram(&mut self, now: Instant, datagram: &[u8]);

    /// Timers whose deadline passed.
    fn handle_timeout(&mut self, now: Instant);

    /// Asks the peer for a full dump (`conntrackd -n`; nothing in ALARM mode).
    fn request_resync(&mut self, now: Instant);

    /// Queues the whole internal cache for sending (`conntrackd -B`; nothing in ALARM mode).
    fn send_bulk(&mut self, now: Instant);

    /// Fills `buf` with the next datagram (messages packed up to the MTU); `None` when nothing is queued.
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize>;

    /// The next report.
    fn poll_action(&mut self) -> Option<Action>;

    /// The next deadline.
    fn poll_timeout(&self) -> Option<Instant>;

    /// Transmit-queue length.
    fn tx_queue_len(&self) -> usize;

    /// The resend queue, oldest first (FT-FW only; empty for the other modes).
    fn resend_queue(&self) -> Vec<ResendNode> {
        Vec::new()
    }

    /// Internal cache (local entries).
    fn internal(&self) -> &InternalCache;

    /// Internal cache, for flushing.
    fn internal_mut(&mut self) -> &mut InternalCache;

    /// External cache (entries learnt from the peer).
    fn external(&self) -> &ExternalCache;

    /// External cache, for flushing.
    fn external_mut(&mut self) -> &mut ExternalCache;

    /// Internal expectation cache.
    fn internal_exp(&self) -> &InternalCache<ExpEntry>;

    /// Internal expectation cache, for flushing.
    fn internal_exp_mut(&mut self) -> &mut InternalCache<ExpEntry>;

    /// External expectation cache.
    fn external_exp(&self) -> &ExternalCache<ExpEntry>;

    /// External expectation cache, for flushing.
    fn external_exp_mut(&mut self) -> &mut ExternalCache<ExpEntry>;

    /// Counters.
    fn stats(&self) -> Stats;
}

/// The settings of one of the three modes: builds the matching session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionConfig {
    /// FT-FW.
    Ftfw(FtfwConfig),
    /// ALARM.
    Alarm(AlarmConfig),
    /// NOTRACK.
    Notrack(NotrackConfig),
}

impl SessionConfig {
    /// The mode.
    pub fn mode(&self) -> SyncMode {
        match self {
            SessionConfig::Ftfw(_) => SyncMode::Ftfw,
            SessionConfig::Alarm(_) => SyncMode::Alarm,
            SessionConfig::Notrack(_) => SyncMode::Notrack,
        }
    }

    /// A session started at `now`.
    pub fn build(&self, now: Instant) -> Box<dyn Session> {
        match *self {
            SessionConfig::Ftfw(c) => Box::new(Ftfw::new(now, c)),
            SessionConfig::Alarm(c) => Box::new(Alarm::new(now, c)),
            SessionConfig::Notrack(c) => Box::new(Notrack::new(now, c)),
        }
    }
}

/// FT-FW settings (conntrackd's `Mode FTFW { ... }` and channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FtfwConfig {
    /// Datagram size limit (default 1471: conntrackd's on a 1500-byte MTU, see
    /// [`wire::conntrackd_datagram_limit`]).
    pub mtu: usize,
    /// `ACKWindowSize` (default 300): acknowledge every this many messages.
    pub window_size: u32,
    /// `ResendQueueSize` (default 131072): bound of the resend queue; when full, the oldest node goes.
    pub resend_queue_size: usize,
    /// First sequence number (conntrackd uses `time(NULL)`).
    pub initial_seq: u32,
    /// Attribute checking.
    pub mode: Mode,
    /// Flow control (off by default, which is conntrackd's behaviour): when the resend queue is full,
    /// entries wait in the transmit queue for the peer's acknowledgements instead of pushing the oldest
    /// unacknowledged node out. conntrackd evicts, so a burst larger than `ResendQueueSize` that the link
    /// or the receiver drops is lost for good; with flow control it is only delayed. Control messages are
    /// never held back. The peer sees nothing different on the wire.
    pub flow_control: bool,
    /// Reliable handshake (off by default, which is conntrackd's behaviour). conntrackd is unreliable
    /// while a HELLO handshake runs: a receiver accepts every message that says HELLO without checking
    /// its sequence number, acknowledges whole windows of them (so the sender forgets what was lost) and
    /// empties its resend queue on each; and the first message it receives after a start sets its
    /// baseline, so messages that arrive after it, reordered, are dropped for good. A burst sent during
    /// the handshake (a busy firewall starting, a peer restarting) through a lossy, reordering link
    /// loses entries. With this on, on the same wire:
    ///
    /// * objects, and ACK, NACK and RESYNC messages, wait until the peer tracks our sequence numbers:
    ///   it answered our HELLO (and 100 ms passed since our last HELLO, so that a late one cannot
    ///   empty a conntrackd peer's resend queue after them), or, after it restarted, acknowledged a
    ///   message we sent since; only ALIVE messages go before;
    /// * a peer that says HELLO has its sequence tracked like any other: gaps are NACKed, nothing
    ///   unseen is acknowledged (a late message that says HELLO is still taken, as conntrackd takes it,
    ///   because a conntrackd sender may have forgotten it); a HELLO counts as a restart (a new baseline, the resend queue emptied)
    ///   only on the first message, after the peer had stopped saying HELLO, far (more than 8192)
    ///   behind, or a little behind a number the peer's sequence passed more than a second before
    ///   (conntrackd numbers a run from the time in seconds, so a quick restart starts just behind the
    ///   last run; a datagram overtaken on the way is late by milliseconds);
    ///   two seconds of nothing but late messages also count as a restart;
    /// * on each new baseline, a NACK asks for the 8192 sequence numbers before it, so the messages that
    ///   were overtaken by the first one are sent again;
    /// * our HELLO goes out at once (an ALIVE) and every 200 ms until answered, rather than after the
    ///   first second and every second; once our own handshake is done, a peer's HELLO is answered at
    ///   once (an ALIVE carrying HELLO_BACK) instead of at the next keep-alive.
    ///
    /// What a conntrackd peer sends while *we* say HELLO can still be lost: conntrackd empties its resend
    /// queue on every HELLO message it receives (late ones too), so it cannot repair what it sent before.
    pub reliable_handshake: bool,
}

impl Default for FtfwConfig {
    fn default() -> Self {
        FtfwConfig {
            mtu: wire::conntrackd_datagram_limit(1500),
            window_size: 300,
            resend_queue_size: 131_072,
            initial_seq: 0,
            mode: Mode::Strict,
            flow_control: false,
            reliable_handshake: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hello {
    Init,
    Say,
    Done,
}

#[derive(Debug, Clone, Copy)]
struct RsNode {
    seq: u32,
    item: TxItem,
}

/// Reliable handshake: how far before a new baseline the NACK that recovers reordered messages reaches,
/// and how far back a HELLO message counts as a late one of the peer's current run rather than a restart.
const BASELINE_SPAN: u32 = 8192;
/// Reliable handshake: after this long with nothing but late (already passed) messages from the peer, its
/// sequence moved back without a HELLO we recognised: it restarted.
const LATE_LIMIT: Duration = Duration::from_secs(2);
/// Reliable handshake: a HELLO a little behind the peer's sequence is a late one of its current run
/// only if the sequence passed its number less than this long ago; else the peer restarted.
const LATE_HELLO_LIMIT: Duration = Duration::from_secs(1);
/// Reliable handshake: how often the peer's progress is noted, to tell how long ago it passed a number.
const PASSED_MARK_GAP: Duration = Duration::from_millis(100);

/// Reliable handshake: were the numbers of a progress mark made at `at` all passed at least
/// [`LATE_HELLO_LIMIT`] before `now`? (A mark covers the [`PASSED_MARK_GAP`] after it.)
fn passed_long_ago(now: Instant, at: Instant) -> bool {
    now.duration_since(at) >= LATE_HELLO_LIMIT + PASSED_MARK_GAP
}
/// Reliable handshake: a HELLO is answered at once, at most this often.
const HELLO_ANSWER_GAP: Duration = Duration::from_millis(50);
/// Reliable handshake: our HELLO is repeated this often until the peer answers.
const HELLO_RETRY: Duration = Duration::from_millis(200);
/// Reliable handshake: how long after our last HELLO objects and ranges still wait, so that a late HELLO
/// (reordered on the link) cannot empty a conntrackd peer's resend queue after they went out.
const HELLO_SETTLE: Duration = Duration::from_millis(100);

/// The FT-FW reliable sync session (`sync-ftfw.c`).
///
/// Every message carries a sequence number. The receiver acknowledges each window of `window_size`
/// messages with an ACK `from..=to`, and answers a gap with an ACK for what arrived plus a NACK for what
/// is missing; late messages are dropped. Sent objects and ACK/NACK/RESYNC messages wait in a bounded
/// resend queue until acknowledged; a NACK moves them back to the transmit queue (objects are rebuilt
/// from their current state). Messages carry HELLO until the peer answers with HELLO_BACK; a HELLO from
/// the peer resets the ACK window and empties the resend queue, because the peer knows nothing of it.
///
/// With [`FtfwConfig::reliable_handshake`] the session also stays reliable while a handshake runs (see
/// there).
#[derive(Debug)]
pub struct Ftfw {
    core: Core,
    cfg: FtfwConfig,
    rs: VecDeque<RsNode>,
    window: i64,
    ack_from: Option<u32>,
    hello: Hello,
    say_hello_back: bool,
    alive_at: Instant,
    /// Reliable handshake: the last message accepted from the peer said HELLO.
    peer_hello: bool,
    /// Reliable handshake: how far the peer's sequence had come, and when: one mark per 100 ms (the
    /// highest number accepted since that time), back to the newest that was surely passed longer
    /// than `LATE_HELLO_LIMIT` before the last message.
    passed: VecDeque<(u32, Instant)>,
    /// Reliable handshake: the peer tracks our sequence numbers (it answered our HELLO, or acknowledged a
    /// message we sent since it last restarted).
    peer_tracks: bool,
    /// Reliable handshake: our first sequence number since the peer last restarted.
    peer_mark: u32,
    /// Reliable handshake: since when only late messages arrived from the peer.
    late_since: Option<Instant>,
    /// Reliable handshake: when a HELLO was last answered at once.
    answered_at: Option<Instant>,
    /// When we last sent a message that says HELLO.
    hello_sent: Option<Instant>,
}

impl Ftfw {
    /// A session started at `now`.
    pub fn new(now: Instant, cfg: FtfwConfig) -> Self {
        let mut s = Ftfw {
            core: Core::new(cfg.mtu, cfg.initial_seq, cfg.mode),
            cfg,
            rs: VecDeque::new(),
            window: i64::from(cfg.window_size),
            ack_from: None,
            hello: Hello::Init,
            say_hello_back: false,
            alive_at: now + ALIVE_INTERVAL,
            peer_hello: false,
            passed: VecDeque::new(),
            peer_tracks: false,
            peer_mark: cfg.initial_seq,
            late_since: None,
            answered_at: None,
            hello_sent: None,
        };
        if cfg.reliable_handshake {
            // Say HELLO at once rather than after the first second: the handshake ends before much
            // traffic flows.
            s.core.ctl(Flags::ALIVE, 0, 0);
        }
        s
    }

    /// Resend-queue length (nodes held, including ones made stale by a later update).
    pub fn resend_queue_len(&self) -> usize {
        self.rs.len()
    }

    /// True once the peer answered our HELLO.
    pub fn hello_done(&self) -> bool {
        self.hello == Hello::Done
    }

    /// With [`FtfwConfig::reliable_handshake`]: true while objects wait because the peer cannot yet
    /// track our sequence numbers (our HELLO is unanswered or was sent less than 100 ms ago, or the peer
    /// restarted and has not acknowledged anything since). Always false without it.
    pub fn holding(&self, now: Instant) -> bool {
        self.cfg.reliable_handshake
            && (self.hello != Hello::Done
                || !self.peer_tracks
                || self.hello_sent.is_some_and(|t| now < t + HELLO_SETTLE))
    }

    /// The keep-alive period: with a reliable handshake, our HELLO is repeated every 200 ms until the
    /// peer answers (a conntrackd peer can only repair what it sent after our last HELLO).
    fn alive_interval(&self) -> Duration {
        if self.cfg.reliable_handshake && self.hello != Hello::Done {
            HELLO_RETRY
        } else {
            ALIVE_INTERVAL
        }
    }

    fn hello_flags(&self) -> Flags {
        // nethdr_set_hello
        let mut f = Flags::NONE;
        if self.hello != Hello::Done {
            f = f.union(Flags::HELLO);
        }
        if self.say_hello_back {
            f = f.union(Flags::HELLO_BACK);
        }
        f
    }

    fn release_node(&mut self, n: RsNode) {
        if let TxItem::Obj(r) = n.item
            && let Some(m) = self.core.meta_mut(&r)
            && m.rs_seq == Some(n.seq)
        {
            m.rs_seq = None;
            self.core.release(&r);
        }
    }

    fn rs_push(&mut self, node: RsNode) {
        // With flow control only control messages can push past the bound (objects wait): keep them.
        if !self.cfg.flow_control && self.rs.len() >= self.cfg.resend_queue_size.max(1) {
            // rs_queue_purge_full: the oldest node goes.
            if let Some(old) = self.rs.pop_front() {
                self.core.stats.rs_evicted += 1;
                self.release_node(old);
            }
        }
        self.rs.push_back(node);
        self.core.stats.rs_max_len = self.core.stats.rs_max_len.max(self.rs.len());
    }

    /// Walks the resend queue over `from..=to` (`rs_queue_empty` with `resend == false`, `rs_queue_to_tx`
    /// with `resend == true`).
    fn rs_range(&mut self, from: u32, to: u32, resend: bool) {
        if !resend {
            // The acknowledged objects' slots, looked up back to back (see `InternalCache::warm`).
            self.core.internal.warm(
                self.rs
                    .iter()
                    .skip_while(|n| before(n.seq, from))
                    .take_while(|n| !after(n.seq, to))
                    .filter_map(|n| match n.item {
                        TxItem::Obj(ObjRef::Ct(k)) => Some(k),
                        _ => None,
                    }),
            );
        }
        self.rs_range_walk(from, to, resend);
        shrink(&mut self.rs);
    }

    fn rs_range_walk(&mut self, from: u32, to: u32, resend: bool) {
        let mut i = 0;
        while i < self.rs.len() {
            let seq = self.rs[i].seq;
            if before(seq, from) {
                i += 1;
                continue;
            }
            if after(seq, to) {
                break;
            }
            let Some(n) = self.rs.remove(i) else { break };
            if !resend {
                self.release_node(n);
                continue;
            }
            match n.item {
                TxItem::Ctl { flags, from, to } => {
                    self.core.stats.resent += 1;
                    // conntrackd resends a queued control message with the flags it was first sent with,
                    // HELLO and HELLO_BACK included (nethdr_set_hello only adds bits). The reliable
                    // handshake drops them: a stale HELLO would make a conntrackd peer empty its resend
                    // queue.
                    let flags = if self.cfg.reliable_handshake {
                        flags - (Flags::HELLO | Flags::HELLO_BACK)
                    } else {
                        flags
                    };
                    self.core.push_ctl(TxItem::Ctl { flags, from, to });
                }
                TxItem::Obj(r) => {
                    if self
                        .core
                        .meta(&r)
                        .is_some_and(|(m, _)| m.rs_seq == Some(n.seq))
                    {
                        self.core.stats.resent += 1;
                        self.core.enqueue(r);
                    }
                }
            }
        }
    }

    fn rs_flush(&mut self) {
        while let Some(n) = self.rs.pop_front() {
            self.release_node(n);
        }
        shrink(&mut self.rs);
    }

    /// `digest_msg`.
    fn digest(&mut self, m: &Message) -> Class {
        if is_data(m) {
            return Class::Data;
        }
        let (from, to) = match m.body {
            Body::Ctl { from, to } => (from, to),
            _ => (0, 0),
        };
        if is_ctl(m, Flags::ACK) {
            if before(to, from) {
                return Class::Bad;
            }
            self.rs_range(from, to, false);
            self.tracked_up_to(to);
            Class::Ctl
        } else if is_ctl(m, Flags::NACK) {
            if before(to, from) {
                return Class::Bad;
            }
            self.rs_range(from, to, true);
            self.tracked_up_to(to);
            Class::Ctl
        } else if is_ctl(m, Flags::RESYNC) {
            self.core.bulk_send();
            self.core.actions.push_back(Action::ResyncRequested);
            Class::Ctl
        } else if is_ctl(m, Flags::ALIVE) {
            Class::Ctl
        } else {
            Class::Bad
        }
    }

    /// An ACK or NACK up to `to` arrived: if it reaches a message we sent since the peer last restarted,
    /// the peer tracks our sequence numbers.
    fn tracked_up_to(&mut self, to: u32) {
        if !before(to, self.peer_mark) {
            self.peer_tracks = true;
        }
    }

    /// The in-sync path of `ftfw_recv` (also taken after a HELLO and for the first message).
    fn bypass(&mut self, m: &Message) -> Class {
        let c = self.digest(m);
        if c == Class::Bad {
            return c;
        }
        let from = *self.ack_from.get_or_insert(m.seq);
        self.window -= 1;
        if self.window <= 0 {
            // A full window arrived: acknowledge it.
            self.core.ctl(Flags::ACK, from, m.seq);
            self.window = i64::from(self.cfg.window_size);
            self.ack_from = None;
        }
        c
    }

    /// `digest_hello`'s HELLO_BACK half: the peer answered our HELLO.
    fn hello_back(&mut self, m: &Message) {
        if m.flags.contains(Flags::HELLO_BACK) && self.hello == Hello::Say {
            self.hello = Hello::Done;
            // It saw a HELLO of ours, so it tracks our sequence from there.
            self.peer_tracks = true;
            self.core.actions.push_back(Action::HelloDone);
        }
    }

    /// The end of `ftfw_recv`: apply what was accepted.
    fn accept(&mut self, now: Instant, m: Message, payload: Payload<'_>, class: Class) {
        match class {
            Class::Data => {
                self.core.rx_last = Some(m.seq);
                if let Payload::Ok(raw) = payload {
                    self.core.apply_data(now, m, raw, None);
                }
            }
            Class::Ctl => self.core.rx_last = Some(m.seq),
            Class::Bad => self.core.stats.bad += 1,
            Class::Drop => {}
        }
    }

    fn recv(&mut self, now: Instant, m: Message, payload: Payload<'_>) {
        if self.cfg.reliable_handshake {
            return self.recv_reliable(now, m, payload);
        }
        self.hello_back(&m);
        // digest_hello
        let hello = m.flags.contains(Flags::HELLO);
        let class = if hello {
            self.say_hello_back = true;
            // The peer restarted: reset the window; it knows nothing of what we were resending.
            if self.ack_from.is_some_and(|a| before(m.seq, a)) {
                self.window = i64::from(self.cfg.window_size) - 1;
                self.ack_from = Some(m.seq);
            }
            self.rs_flush();
            self.bypass(&m)
        } else {
            match self.core.track(m.seq) {
                Track::After(exp) => self.gap(&m, exp),
                // We do not accept delayed packets.
                Track::Before => Class::Drop,
                Track::Unset | Track::InSync => self.bypass(&m),
            }
        };
        self.accept(now, m, payload, class);
    }

    /// `ftfw_recv`, SEQ_AFTER: ACK what arrived in sync, NACK the hole, start a new window here.
    fn gap(&mut self, m: &Message, exp: u32) -> Class {
        let c = self.digest(m);
        if c != Class::Bad {
            if let Some(from) = self.ack_from {
                self.core.ctl(Flags::ACK, from, exp.wrapping_sub(1));
            }
            self.core.ctl(Flags::NACK, exp, m.seq.wrapping_sub(1));
            self.window = i64::from(self.cfg.window_size) - 1;
            self.ack_from = Some(m.seq);
        }
        c
    }

    /// Reliable handshake: is this HELLO message from a restarted peer (a new run of its sequence
    /// numbers) rather than one of its current run?
    fn is_restart(&self, now: Instant, m: &Message) -> bool {
        let Some(last) = self.core.rx_last else {
            return true;
        };
        let exp = last.wrapping_add(1);
        if before(m.seq, exp) {
            // Far behind: a new run. Near: a late message of the current one, unless its number
            // was passed too long ago for a datagram overtaken on the way (conntrackd numbers a
            // run from the time in seconds, so a quick restart starts just behind its last run).
            exp.wrapping_sub(m.seq) > BASELINE_SPAN
                || self
                    .passed
                    .iter()
                    .any(|&(seq, at)| passed_long_ago(now, at) && !before(seq, m.seq))
        } else if self.peer_hello {
            false
        } else {
            // The peer stops saying HELLO once answered, and only a restart makes it start again;
            // except that conntrackd resends a queued ACK, NACK or RESYNC with the HELLO it was first
            // sent with, so one of those says restart only when far ahead.
            !m.flags.has_range() || m.seq.wrapping_sub(exp) > BASELINE_SPAN
        }
    }

    /// Reliable handshake: notes that the peer's sequence reached `seq` at `now` (see `passed`).
    fn mark_passed(&mut self, now: Instant, seq: u32) {
        match self.passed.back_mut() {
            Some((s, at)) if now.duration_since(*at) < PASSED_MARK_GAP => *s = seq,
            _ => self.passed.push_back((seq, now)),
        }
        while self
            .passed
            .get(1)
            .is_some_and(|&(_, at)| passed_long_ago(now, at))
        {
            self.passed.pop_front();
        }
    }

    /// Reliable handshake: the peer restarted. Its sequence starts afresh, it knows nothing of what we
    /// were resending, and it does not track our sequence numbers until it acknowledges one.
    fn peer_restarted(&mut self) {
        self.core.rx_last = None;
        self.ack_from = None;
        self.window = i64::from(self.cfg.window_size);
        self.rs_flush();
        self.peer_tracks = false;
        self.peer_mark = self.core.next_seq;
        self.late_since = None;
        self.passed.clear();
        self.core.actions.push_back(Action::PeerRestarted);
    }

    /// `ftfw_recv` with [`FtfwConfig::reliable_handshake`].
    fn recv_reliable(&mut self, now: Instant, m: Message, payload: Payload<'_>) {
        let hello = m.flags.contains(Flags::HELLO);
        let late = self
            .core
            .rx_last
            .is_some_and(|l| before(m.seq, l.wrapping_add(1)));
        let stuck = late
            && self
                .late_since
                .is_some_and(|t| now.duration_since(t) >= LATE_LIMIT);
        if (hello && self.is_restart(now, &m)) || stuck {
            self.peer_restarted();
            // A new run says HELLO until answered, whatever its first message (the script's `-n`
            // makes it a RESYNC): its next HELLO is no second restart.
            self.peer_hello = hello;
        }
        self.hello_back(&m);
        if hello {
            self.say_hello_back = true;
            // Answer at once rather than at the next keep-alive, so that a restarted peer gets a
            // baseline for our sequence soon; not while we say HELLO ourselves (conntrackd empties its
            // resend queue on every HELLO it receives, late ones included).
            if self.hello == Hello::Done
                && self.core.plain_ctl_queued == 0
                && self
                    .answered_at
                    .is_none_or(|t| now.duration_since(t) >= HELLO_ANSWER_GAP)
            {
                self.answered_at = Some(now);
                self.core.ctl(Flags::ALIVE, 0, 0);
            }
        }
        // HELLO or not, the sequence is tracked: gaps are NACKed, never acknowledged.
        let class = match self.core.track(m.seq) {
            Track::After(exp) => self.gap(&m, exp),
            Track::Before if hello => {
                // A late message of a peer that says HELLO: conntrackd sends objects during its
                // handshake and empties its resend queue on our HELLO messages, so it may never send
                // this again. Take it as conntrackd would (without moving the sequence back).
                let c = self.digest(&m);
                if c != Class::Bad
                    && let Payload::Ok(raw) = payload
                {
                    self.core.apply_data(now, m, raw, None);
                }
                if c == Class::Bad {
                    self.core.stats.bad += 1;
                }
                return;
            }
            Track::Before => {
                self.late_since.get_or_insert(now);
                Class::Drop
            }
            Track::InSync => self.bypass(&m),
            Track::Unset => {
                let c = self.bypass(&m);
                if c != Class::Bad {
                    // A new baseline: messages sent just before it may still be on their way (and will
                    // be dropped as late); ask for them again.
                    self.core.ctl(
                        Flags::NACK,
                        m.seq.wrapping_sub(BASELINE_SPAN),
                        m.seq.wrapping_sub(1),
                    );
                }
                c
            }
        };
        if matches!(class, Class::Data | Class::Ctl) {
            self.late_since = None;
            // A resent ACK, NACK or RESYNC may carry a stale HELLO (see is_restart).
            if !(hello && m.flags.has_range()) {
                self.peer_hello = hello;
            }
            self.mark_passed(now, m.seq);
        }
        self.accept(now, m, payload, class);
    }

    /// The index of the next item of the transmit queue to send, or `None` when everything queued must
    /// wait: objects wait while the resend queue is full (flow control) or while the peer cannot track
    /// us (reliable handshake, which also holds ACK, NACK and RESYNC), control messages behind them go.
    fn next_tx(&self, now: Instant) -> Option<usize> {
        let first = self.core.tx.front()?;
        let holding = self.holding(now);
        let full = self.cfg.flow_control && self.rs.len() >= self.cfg.resend_queue_size.max(1);
        let sendable = |t: &TxItem| match t {
            TxItem::Obj(_) => !holding && !full,
            TxItem::Ctl { flags, .. } => !holding || !flags.has_range(),
        };
        if sendable(first) {
            return Some(0);
        }
        let waiting = if holding {
            self.core.plain_ctl_queued
        } else {
            self.core.ctl_queued
        };
        if waiting == 0 {
            return None;
        }
        self.core.tx.iter().position(sendable)
    }
}

impl Session for Ftfw {
    fn mode(&self) -> SyncMode {
        SyncMode::Ftfw
    }

    fn resend_queue(&self) -> Vec<ResendNode> {
        self.rs
            .iter()
            .map(|n| match n.item {
                TxItem::Ctl { flags, .. } => ResendNode::Control { seq: n.seq, flags },
                TxItem::Obj(_) => ResendNode::Object { seq: n.seq },
            })
            .collect()
    }

    local_changes_at_once!();

    /// Timers: the ALIVE/ACK alarm.
    fn handle_timeout(&mut self, now: Instant) {
        if now >= self.alive_at {
            // do_alive_alarm: flush a pending acknowledgement, else say we are alive. While the peer
            // cannot track us (reliable handshake), only an ALIVE would go: say HELLO with it.
            match (self.ack_from, self.core.rx_last) {
                _ if self.holding(now) => self.core.ctl(Flags::ALIVE, 0, 0),
                (Some(from), Some(last)) => {
                    self.core.ctl(Flags::ACK, from, last);
                    self.ack_from = None;
                }
                _ => self.core.ctl(Flags::ALIVE, 0, 0),
            }
            self.alive_at = now + self.alive_interval();
        }
    }

    /// The next deadline: the keep-alive, or the end of the wait after our last HELLO when something
    /// waits for it.
    fn poll_timeout(&self) -> Option<Instant> {
        let settle = self
            .hello_sent
            .filter(|_| self.hello == Hello::Done && !self.core.tx.is_empty())
            .map(|t| t + HELLO_SETTLE);
        Some(settle.map_or(self.alive_at, |t| t.min(self.alive_at)))
    }

    /// The next report.
    fn poll_action(&mut self) -> Option<Action> {
        self.core.actions.pop_front()
    }

    /// Transmit-queue length.
    fn tx_queue_len(&self) -> usize {
        self.core.tx.len()
    }

    fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) {
        let mut it = wire::messages(datagram, self.core.mode);
        while let Some(m) = it.next() {
            match m {
                Ok(m) => {
                    self.core.stats.msg_recv += 1;
                    let raw = it.last_attrs();
                    self.recv(now, m, Payload::Ok(raw));
                }
                Err(e) => {
                    self.core.count_decode_error(&e);
                    // conntrackd runs ftfw_recv before msg2ct: a message whose payload is bad still counts
                    // in the sequence (else the peer would resend it forever after our NACKs).
                    if let Some(m) = e
                        .is_payload_error()
                        .then(|| it.last_error_header())
                        .flatten()
                        .map(placeholder)
                    {
                        self.recv(now, m, Payload::Bad);
                    }
                }
            }
        }
        self.core.stats.unknown_attrs += u64::from(it.skipped.unknown_attrs);
    }

    /// Fills `buf` with the next datagram (messages packed up to the MTU); `None` when nothing is queued.
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let limit = buf.len().min(self.core.mtu);
        let mut p = Packer::new(&mut buf[..limit]);
        while let Some(i) = self.next_tx(now) {
            let item = self.core.tx[i];
            let sent_flags = match self.core.pack(&mut p, &item, self.hello_flags()) {
                Packed::Yes(f) => f,
                Packed::Gone => {
                    self.core.take_tx(i);
                    continue;
                }
                Packed::NoRoom if !p.is_empty() => break,
                Packed::NoRoom => {
                    // Larger than the MTU: it can never be sent.
                    self.core.stats.oversize += 1;
                    self.core.take_tx(i);
                    if let TxItem::Obj(r) = item {
                        if let Some(m) = self.core.meta_mut(&r) {
                            m.in_tx = false;
                        }
                        self.core.release(&r);
                    }
                    continue;
                }
            };
            self.core.take_tx(i);
            if self.hello == Hello::Init {
                self.hello = Hello::Say;
            }
            if self.hello != Hello::Done {
                self.hello_sent = Some(now);
            }
            self.say_hello_back = false;
            let seq = self.core.next_seq;
            self.core.next_seq = seq.wrapping_add(1);
            self.core.stats.msg_sent += 1;
            match item {
                TxItem::Ctl { flags, from, to } => {
                    if flags.has_range() {
                        // Queued as sent, handshake bits included (`-s rsqueue` shows them).
                        let flags = sent_flags;
                        self.rs_push(RsNode {
                            seq,
                            item: TxItem::Ctl { flags, from, to },
                        });
                    }
                }
                TxItem::Obj(r) => {
                    if let Some(m) = self.core.meta_mut(&r) {
                        m.in_tx = false;
                        m.rs_seq = Some(seq);
                    }
                    self.rs_push(RsNode { seq, item });
                }
            }
        }
        shrink(&mut self.core.tx);
        if p.is_empty() {
            return None;
        }
        self.core.stats.datagrams_sent += 1;
        self.alive_at = now + self.alive_interval();
        Some(p.len())
    }

    core_accessors!();
}

/// A deadline in a timer heap; ordered by time, then by generation.
#[derive(Debug, Clone, Copy)]
struct Timer {
    at: Instant,
    generation: u64,
    key: ObjRef,
}

impl PartialEq for Timer {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.generation) == (o.at, o.generation)
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Timer {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.generation).cmp(&(o.at, o.generation))
    }
}

/// ALARM settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AlarmConfig {
    /// Datagram size limit (default 1471: conntrackd's on a 1500-byte MTU, see
    /// [`wire::conntrackd_datagram_limit`]).
    pub mtu: usize,
    /// `RefreshTime` in seconds (default 15): each entry is re-sent every 1..=refresh seconds plus
    /// 0.2-1 s of jitter.
    pub refresh_secs: u32,
    /// `CacheTimeout` (default 180 s): an external entry not refreshed for this long expires.
    pub cache_timeout: Duration,
    /// Seed of the jitter generator (conntrackd uses `random()`).
    pub seed: u64,
    /// First sequence number.
    pub initial_seq: u32,
    /// Attribute checking.
    pub mode: Mode,
}

impl Default for AlarmConfig {
    fn default() -> Self {
        AlarmConfig {
            mtu: wire::conntrackd_datagram_limit(1500),
            refresh_secs: 15,
            cache_timeout: Duration::from_secs(180),
            seed: 0x5eed,
            initial_seq: 0,
            mode: Mode::Strict,
        }
    }
}

/// The ALARM session (`sync-alarm.c`): no acknowledgements; every entry is periodically re-sent with a
/// randomized delay, and the receiver's external cache expires what is not refreshed.
#[derive(Debug)]
pub struct Alarm {
    core: Core,
    cfg: AlarmConfig,
    rng: SplitMix64,
    generation: u64,
    refresh: BinaryHeap<Reverse<Timer>>,
    expiry: BinaryHeap<Reverse<Timer>>,
}

impl Alarm {
    /// A session started at `now`.
    pub fn new(_now: Instant, cfg: AlarmConfig) -> Self {
        Alarm {
            core: Core::new(cfg.mtu, cfg.initial_seq, cfg.mode),
            cfg,
            rng: SplitMix64::new(cfg.seed),
            generation: 0,
            refresh: BinaryHeap::new(),
            expiry: BinaryHeap::new(),
        }
    }

    /// The delay of conntrackd's `add_alarm(random() % refresh + 1 s, (random() % 5 + 1) * 200000 - 1 µs)`.
    fn jitter(&mut self) -> Duration {
        let secs = self.rng.below(u64::from(self.cfg.refresh_secs.max(1))) + 1;
        let usecs = (self.rng.below(5) + 1) * 200_000 - 1;
        Duration::from_secs(secs) + Duration::from_micros(usecs)
    }

    fn arm(&mut self, now: Instant, key: ObjRef) {
        self.generation += 1;
        let generation = self.generation;
        let at = now + self.jitter();
        if let Some(m) = self.core.meta_mut(&key) {
            m.timer_gen = generation;
            self.refresh.push(Reverse(Timer {
                at,
                generation,
                key,
            }));
        }
    }

    fn local(&mut self, now: Instant, change: Change, r: Option<ObjRef>, announce: bool) {
        if let Some(r) = r {
            if change != Change::Delete {
                self.arm(now, r);
            } else if let Some(m) = self.core.meta_mut(&r) {
                m.timer_gen = 0;
            }
            if announce {
                self.core.enqueue(r);
            } else {
                self.core.record_local(Some(r));
            }
        }
    }
}

impl Session for Alarm {
    fn mode(&self) -> SyncMode {
        SyncMode::Alarm
    }

    /// Announced at once, then refreshed periodically until deleted.
    fn handle_local(&mut self, now: Instant, change: Change, entry: CtEntry) {
        let r = self.core.apply_local_ct(now, change, entry);
        self.local(now, change, r, true);
    }

    fn handle_local_exp(&mut self, now: Instant, change: Change, entry: ExpEntry) {
        let r = self.core.apply_local_exp(now, change, entry);
        self.local(now, change, r, true);
    }

    /// Not announced now, but refreshed periodically (conntrackd arms the refresh alarm whenever the
    /// internal cache adds or updates an object).
    fn record_local(&mut self, now: Instant, change: Change, entry: CtEntry) {
        let r = self.core.apply_local_ct(now, change, entry);
        self.local(now, change, r, false);
    }

    fn record_local_exp(&mut self, now: Instant, change: Change, entry: ExpEntry) {
        let r = self.core.apply_local_exp(now, change, entry);
        self.local(now, change, r, false);
    }

    /// ALARM has no resync request (`conntrackd -n` does nothing in this mode): a peer catches up
    /// within `RefreshTime`.
    fn request_resync(&mut self, _now: Instant) {}

    /// ALARM has no bulk send (`conntrackd -B` does nothing in this mode).
    fn send_bulk(&mut self, _now: Instant) {}

    fn tx_queue_len(&self) -> usize {
        self.core.tx.len()
    }

    /// Refresh and expiry timers.
    fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse(t)) = self.refresh.peek().copied() {
            if t.at > now {
                break;
            }
            self.refresh.pop();
            let live = self
                .core
                .meta(&t.key)
                .is_some_and(|(m, st)| m.timer_gen == t.generation && st != ObjState::Dead);
            if live {
                self.arm(now, t.key);
                self.core.enqueue(t.key);
            }
        }
        while let Some(Reverse(t)) = self.expiry.peek().copied() {
            if t.at > now {
                break;
            }
            self.expiry.pop();
            match t.key {
                ObjRef::Ct(k) => {
                    if let Some(e) = self.core.external.expire(now, &k) {
                        self.core.actions.push_back(Action::Expired(Box::new(e)));
                    }
                }
                ObjRef::Exp(k) => {
                    if let Some(e) = self.core.external_exp.expire(now, &k) {
                        self.core
                            .actions
                            .push_back(Action::ExpectationExpired(Box::new(e)));
                    }
                }
            }
        }
    }

    /// The next deadline.
    fn poll_timeout(&self) -> Option<Instant> {
        let a = self.refresh.peek().map(|t| t.0.at);
        let b = self.expiry.peek().map(|t| t.0.at);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next report.
    fn poll_action(&mut self) -> Option<Action> {
        self.core.actions.pop_front()
    }

    /// A datagram from the peer.
    fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) {
        let mut it = wire::messages(datagram, self.core.mode);
        while let Some(m) = it.next() {
            let m = match m {
                Ok(m) => m,
                Err(e) => {
                    self.core.count_decode_error(&e);
                    continue;
                }
            };
            self.core.stats.msg_recv += 1;
            // alarm_recv: control messages are ignored; the sequence is tracked for statistics only.
            if m.flags != Flags::NONE || m.msg_type() == msg_type::CTL {
                continue;
            }
            if !matches!(self.core.track(m.seq), Track::Before) {
                self.core.rx_last = Some(m.seq);
            }
            // A timeout past what an Instant can hold (e.g. Duration::MAX) means "never expires".
            let at = now.checked_add(self.cfg.cache_timeout);
            let raw = it.last_attrs();
            if let Some(key) = self.core.apply_data(now, m, raw, at)
                && let Some(at) = at
                && match &key {
                    ObjRef::Ct(k) => self.core.external.get(k).is_some(),
                    ObjRef::Exp(k) => self.core.external_exp.get(k).is_some(),
                }
            {
                self.generation += 1;
                self.expiry.push(Reverse(Timer {
                    at,
                    generation: self.generation,
                    key,
                }));
            }
        }
        self.core.stats.unknown_attrs += u64::from(it.skipped.unknown_attrs);
    }

    /// Fills `buf` with the next datagram; `None` when nothing is queued.
    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<usize> {
        transmit_once(&mut self.core, buf)
    }

    core_accessors!();
}

/// Best-effort transmission shared by ALARM and NOTRACK: each queued object is sent once with its current
/// state and released (a dead one leaves the cache).
fn transmit_once(core: &mut Core, buf: &mut [u8]) -> Option<usize> {
    let limit = buf.len().min(core.mtu);
    let mut p = Packer::new(&mut buf[..limit]);
    while let Some(item) = core.tx.front().copied() {
        let fits = match core.pack(&mut p, &item, Flags::NONE) {
            Packed::Gone => {
                core.take_tx(0);
                continue;
            }
            Packed::NoRoom if !p.is_empty() => break,
            Packed::NoRoom => false,
            Packed::Yes(_) => true,
        };
        core.take_tx(0);
        if fits {
            core.next_seq = core.next_seq.wrapping_add(1);
            core.stats.msg_sent += 1;
        } else {
            core.stats.oversize += 1;
        }
        if let TxItem::Obj(r) = item {
            if let Some(m) = core.meta_mut(&r) {
                m.in_tx = false;
            }
            core.release(&r);
        }
    }
    shrink(&mut core.tx);
    if p.is_empty() {
        return None;
    }
    core.stats.datagrams_sent += 1;
    Some(p.len())
}

/// NOTRACK settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct NotrackConfig {
    /// Datagram size limit (default 1471: conntrackd's on a 1500-byte MTU, see
    /// [`wire::conntrackd_datagram_limit`]).
    pub mtu: usize,
    /// First sequence number.
    pub initial_seq: u32,
    /// Attribute checking.
    pub mode: Mode,
}

impl Default for NotrackConfig {
    fn default() -> Self {
        NotrackConfig {
            mtu: wire::conntrackd_datagram_limit(1500),
            initial_seq: 0,
            mode: Mode::Strict,
        }
    }
}

/// The NOTRACK session (`sync-notrack.c`): best effort, each change sent once; a RESYNC request is
/// answered by a bulk send of the internal cache; ALIVE after a second without transmission.
#[derive(Debug)]
pub struct Notrack {
    core: Core,
    alive_at: Instant,
}

impl Notrack {
    /// A session started at `now`.
    pub fn new(now: Instant, cfg: NotrackConfig) -> Self {
        Notrack {
            core: Core::new(cfg.mtu, cfg.initial_seq, cfg.mode),
            alive_at: now + ALIVE_INTERVAL,
        }
    }
}

impl Session for Notrack {
    fn mode(&self) -> SyncMode {
        SyncMode::Notrack
    }

    local_changes_at_once!();

    fn tx_queue_len(&self) -> usize {
        self.core.tx.len()
    }

    /// The ALIVE timer.
    fn handle_timeout(&mut self, now: Instant) {
        if now >= self.alive_at {
            self.core.ctl(Flags::ALIVE, 0, 0);
            self.alive_at = now + ALIVE_INTERVAL;
        }
    }

    /// The next deadline.
    fn poll_timeout(&self) -> Option<Instant> {
        Some(self.alive_at)
    }

    /// The next report.
    fn poll_action(&mut self) -> Option<Action> {
        self.core.actions.pop_front()
    }

    fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) {
        let mut it = wire::messages(datagram, self.core.mode);
        while let Some(m) = it.next() {
            let (m, payload_ok) = match m {
                Ok(m) => (m, true),
                Err(e) => {
                    self.core.count_decode_error(&e);
                    match e
                        .is_payload_error()
                        .then(|| it.last_error_header())
                        .flatten()
                    {
                        Some(h) => (placeholder(h), false),
                        None => continue,
                    }
                }
            };
            self.core.stats.msg_recv += u64::from(payload_ok);
            let _ = self.core.track(m.seq);
            // notrack digest_msg
            let class = if is_data(&m) {
                Class::Data
            } else if is_ctl(&m, Flags::RESYNC) {
                self.core.bulk_send();
                self.core.actions.push_back(Action::ResyncRequested);
                Class::Ctl
            } else if is_ctl(&m, Flags::ALIVE) {
                Class::Ctl
            } else {
                Class::Bad
            };
            if class == Class::Bad {
                self.core.stats.bad += 1;
                continue;
            }
            self.core.rx_last = Some(m.seq);
            if class == Class::Data && payload_ok {
                let raw = it.last_attrs();
                self.core.apply_data(now, m, raw, None);
            }
        }
        self.core.stats.unknown_attrs += u64::from(it.skipped.unknown_attrs);
    }

    /// Fills `buf` with the next datagram; `None` when nothing is queued.
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let n = transmit_once(&mut self.core, buf)?;
        self.alive_at = now + ALIVE_INTERVAL;
        Some(n)
    }

    core_accessors!();
}
