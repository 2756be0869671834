//! Entry caches, as in conntrackd's `cache.c`, `internal_cache.c` and `external_cache.c`.
//!
//! * The **internal cache** holds the local entries this node announces. An entry is `New`, `Alive`
//!   (updated) or `Dead` (deleted, kept until every queue that refers to it has let go, so the DEL can be
//!   resent). The message type is derived from that state (`object_status_to_network_type`).
//! * The **external cache** holds what the peer announced: the state to commit to the kernel on
//!   fail-over (`conntrackd -c`). In ALARM mode its entries expire unless refreshed.
//!
//! Objects are kept compact: the entry as its sync message's attributes ([`Object::encode`], about 60
//! bytes for a UDP entry instead of the 280-byte [`CtEntry`]), decoded when read ([`InternalObj::entry`],
//! [`ExternalObj::entry`]) and copied straight into a datagram when sent. The maps hash with a
//! per-cache random key.

use crate::entry::{ExpKey, Key};
use crate::wire::{Change, CtEntry, ExpEntry};
use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::{BuildHasher, Hash, Hasher};
use std::marker::PhantomData;
use std::time::Instant;

/// A fast keyed hasher for the cache maps (multiply and rotate per word, as rustc's FxHash, from a
/// random per-map seed): the keys are short fixed tuples, for which SipHash costs more than the rest of
/// a lookup.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FastHash(u64);

impl Default for FastHash {
    fn default() -> Self {
        // A random seed per map (std's RandomState draws one per process and varies it per instance).
        FastHash(std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64) | 1)
    }
}

impl BuildHasher for FastHash {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(self.0)
    }
}

/// The hasher [`FastHash`] builds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FastHasher(u64);

const K: u64 = 0xf135_7aea_2e62_a9c5;

impl FastHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(26) ^ w).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in chunks.by_ref() {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // A final mix so that the low bits (hashbrown's bucket index) depend on every input bit.
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^ (x >> 33)
    }
}

/// What a cache can hold: conntrack entries ([`CtEntry`], keyed by [`Key`]) and expectations
/// ([`ExpEntry`], keyed by [`ExpKey`]), as conntrackd keeps a cache of each.
pub trait Object: Copy + PartialEq + Debug {
    /// The identity of an object in a cache.
    type Key: Copy + Eq + Hash + Debug;
    /// The key, or `None` when the object lacks the fields that identify it.
    fn cache_key(&self) -> Option<Self::Key>;
    /// Applies an update to the cached object, as conntrackd's `cache_update` does with the cache's
    /// `copy` operation. The default replaces the whole object (expectations: `cache_exp_copy` is a
    /// `memcpy`).
    fn update_from(&mut self, newer: &Self) {
        *self = *newer;
    }
    /// The compact form a cache keeps: the object's sync message attributes.
    fn encode(&self) -> Box<[u8]>;
    /// [`Object::encode`] into `dst`, reusing its memory when the length is unchanged (an update
    /// usually keeps it), so the steady state allocates nothing.
    fn encode_into(&self, dst: &mut Box<[u8]>) {
        *dst = self.encode();
    }
    /// The object back from [`Object::encode`]'s bytes.
    fn decode(bytes: &[u8]) -> Self;
}

impl Object for CtEntry {
    type Key = Key;
    fn cache_key(&self) -> Option<Key> {
        self.key()
    }
    fn encode(&self) -> Box<[u8]> {
        self.attr_bytes()
    }
    fn decode(bytes: &[u8]) -> Self {
        CtEntry::from_attr_bytes(bytes)
    }
    fn encode_into(&self, dst: &mut Box<[u8]>) {
        if self.attrs_len() == dst.len() {
            self.emit_attrs(dst);
        } else {
            *dst = self.encode();
        }
    }
    /// `nfct_copy(cached, update, NFCT_CP_META)`: every attribute the update carries replaces the cached
    /// one, and attributes it lacks keep their cached value (the tuple fields are the key, so equal).
    fn update_from(&mut self, newer: &Self) {
        // Exhaustive, so that a new field cannot be forgotten here.
        let CtEntry {
            addrs,
            status,
            l4proto,
            ports,
            tcp_state,
            tcp_wscale_orig,
            tcp_wscale_repl,
            sctp_state,
            sctp_vtag_orig,
            sctp_vtag_repl,
            dccp_state,
            dccp_role,
            icmp_type,
            icmp_code,
            icmp_id,
            timeout,
            mark,
            master_addrs,
            master_l4proto,
            master_ports,
            snat_ipv4,
            dnat_ipv4,
            snat_ipv6,
            dnat_ipv6,
            snat_port,
            dnat_port,
            nat_seq_adj,
            helper,
            labels,
            synproxy,
            zone,
        } = *newer;
        macro_rules! take {
            ($($f:ident),*) => {
                $(if $f.is_some() {
                    self.$f = $f;
                })*
            };
        }
        take!(
            addrs,
            status,
            l4proto,
            ports,
            tcp_state,
            tcp_wscale_orig,
            tcp_wscale_repl,
            sctp_state,
            sctp_vtag_orig,
            sctp_vtag_repl,
            dccp_state,
            dccp_role,
            icmp_type,
            icmp_code,
            icmp_id,
            timeout,
            mark,
            master_addrs,
            master_l4proto,
            master_ports,
            snat_ipv4,
            dnat_ipv4,
            snat_ipv6,
            dnat_ipv6,
            snat_port,
            dnat_port,
            nat_seq_adj,
            helper,
            labels,
            synproxy,
            zone
        );
    }
}

impl Object for ExpEntry {
    type Key = ExpKey;
    fn cache_key(&self) -> Option<ExpKey> {
        self.key()
    }
    fn encode(&self) -> Box<[u8]> {
        self.attr_bytes()
    }
    fn decode(bytes: &[u8]) -> Self {
        ExpEntry::from_attr_bytes(bytes)
    }
    fn encode_into(&self, dst: &mut Box<[u8]>) {
        if self.attrs_len() == dst.len() {
            self.emit_attrs(dst);
        } else {
            *dst = self.encode();
        }
    }
}

/// Queue bookkeeping of an internal object.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Meta {
    /// In the transmit queue.
    pub in_tx: bool,
    /// Sequence number of its live node in the FT-FW resend queue.
    pub rs_seq: Option<u32>,
    /// Generation of its ALARM refresh timer (older timer nodes are stale).
    pub timer_gen: u64,
}

/// State of an internal cache object (`C_OBJ_NEW`, `C_OBJ_ALIVE`, `C_OBJ_DEAD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ObjState {
    /// Created, not updated since.
    New,
    /// Updated at least once.
    Alive,
    /// Deleted; kept while a queue still refers to it.
    Dead,
}

impl ObjState {
    /// The change a message about this object announces.
    pub fn change(self) -> Change {
        match self {
            ObjState::New => Change::New,
            ObjState::Alive => Change::Update,
            ObjState::Dead => Change::Delete,
        }
    }
}

/// Counters of a cache (`conntrackd -s` and `-s cache`), with conntrackd's meanings (`cache.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CacheStats {
    /// Live entries (conntrackd's `active`: dead internal objects kept for a resend are not counted).
    pub active: usize,
    /// Objects held, dead ones included (conntrackd's `objects`).
    pub objects: usize,
    /// Objects added (`add_ok`).
    pub created: u64,
    /// Objects that could not be added because the cache held `HashLimit` objects (`add_fail`,
    /// `add_fail_enospc`).
    pub create_failed: u64,
    /// Updates applied (`upd_ok`).
    pub updated: u64,
    /// Objects that stopped being live: deleted, replaced by a NEW, flushed or expired (`del_ok`).
    pub deleted: u64,
    /// Entries expired (ALARM external cache).
    pub expired: u64,
    /// Entries ignored because they had no tuple.
    pub no_tuple: u64,
    /// Flushes (`-f`).
    pub flushes: u64,
}

/// Default bound on the objects of one cache: conntrackd's `HashLimit` default (262144).
pub const DEFAULT_LIMIT: usize = 262_144;

/// An internal cache object with the bookkeeping of the sync modes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InternalObj<E = CtEntry> {
    /// The entry, encoded ([`Object::encode`]).
    data: Box<[u8]>,
    /// Its state.
    pub state: ObjState,
    /// When it entered the cache (conntrackd's `lifetime`, shown by `-i` as `[active since Ns]`).
    pub created: Instant,
    /// When it last changed (conntrackd's `lastupdate`).
    pub updated: Instant,
    pub(crate) meta: Meta,
    kind: PhantomData<fn() -> E>,
}

impl<E: Object> InternalObj<E> {
    /// The entry.
    pub fn entry(&self) -> E {
        E::decode(&self.data)
    }

    /// The entry as its sync message's attributes.
    pub(crate) fn encoded(&self) -> &[u8] {
        &self.data
    }
}

/// Local entries to announce.
#[derive(Debug)]
pub struct InternalCache<E: Object = CtEntry> {
    pub(crate) map: HashMap<E::Key, InternalObj<E>, FastHash>,
    live: usize,
    limit: usize,
    stats: CacheStats,
}

impl<E: Object> Default for InternalCache<E> {
    fn default() -> Self {
        InternalCache {
            map: HashMap::default(),
            live: 0,
            limit: DEFAULT_LIMIT,
            stats: CacheStats::default(),
        }
    }
}

impl<E: Object> InternalCache<E> {
    /// Sets the most objects the cache holds (`HashLimit`); past it, new objects are refused and counted
    /// in [`CacheStats::create_failed`].
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.max(1);
    }

    /// Applies a local change the way conntrackd 1.4.7's `internal_cache.c` handles kernel events, and
    /// returns the key of the object to announce, or `None` when there is nothing to announce. The
    /// message type is chosen at transmission from the object's state, as conntrackd does
    /// (`object_status_to_network_type`):
    ///
    /// * NEW (`internal_cache_ct_event_new`): an existing object, dead or alive, is replaced by a fresh
    ///   one, so the peer gets a NEW;
    /// * UPDATE (`cache_update_force`): a live object is updated ([`Object::update_from`]) and becomes
    ///   ALIVE (an UPD is sent, even if its NEW had not gone out yet); a dead or unknown one is created
    ///   afresh (a NEW is sent);
    /// * DELETE (`internal_cache_ct_event_del`): a live object becomes DEAD and keeps its last state for
    ///   the DEL message; an unknown or already dead one is ignored.
    ///
    /// An entry without a tuple is counted in [`CacheStats::no_tuple`] and ignored.
    pub(crate) fn apply(&mut self, now: Instant, change: Change, entry: E) -> Option<E::Key> {
        let Some(key) = entry.cache_key() else {
            self.stats.no_tuple += 1;
            return None;
        };
        match (change, self.map.get_mut(&key)) {
            (Change::Delete, None) => return None,
            (Change::Delete, Some(o)) => {
                if o.state == ObjState::Dead {
                    return None;
                }
                o.state = ObjState::Dead;
                self.live -= 1;
                self.stats.deleted += 1;
            }
            (Change::Update, Some(o)) if o.state != ObjState::Dead => {
                let mut cur = E::decode(&o.data);
                cur.update_from(&entry);
                cur.encode_into(&mut o.data);
                o.state = ObjState::Alive;
                o.updated = now;
                self.stats.updated += 1;
            }
            (Change::New | Change::Update, Some(o)) => {
                // cache_del + cache_add: the old object goes, a fresh one takes its place.
                if o.state != ObjState::Dead {
                    self.stats.deleted += 1;
                } else {
                    self.live += 1;
                }
                entry.encode_into(&mut o.data);
                o.state = ObjState::New;
                o.created = now;
                o.updated = now;
                self.stats.created += 1;
            }
            (_, None) => {
                if self.map.len() >= self.limit {
                    self.stats.create_failed += 1;
                    return None;
                }
                self.map.insert(
                    key,
                    InternalObj {
                        data: entry.encode(),
                        state: ObjState::New,
                        created: now,
                        updated: now,
                        meta: Meta::default(),
                        kind: PhantomData,
                    },
                );
                self.live += 1;
                self.stats.created += 1;
            }
        }
        Some(key)
    }

    /// Looks every key up and forgets the answers, ahead of changes to them: the lookups are
    /// independent, so the CPU overlaps their memory accesses, and the changes applied next find their
    /// slots in the CPU caches. A daemon touches each entry's slot about once a second, long enough for
    /// it to leave the caches, and one change after another each waits for memory in turn (on the lab's
    /// VM a cold cache line costs about 0.27 µs read alone and 0.03 µs overlapped with others:
    /// BENCHMARKS.md, "ctsyncd against conntrackd").
    pub fn warm(&self, keys: impl IntoIterator<Item = E::Key>) {
        for k in keys {
            std::hint::black_box(self.map.contains_key(&k));
        }
    }

    /// Drops a dead object once no queue refers to it.
    pub(crate) fn release(&mut self, key: &E::Key) {
        if self
            .map
            .get(key)
            .is_some_and(|o| o.state == ObjState::Dead && !o.meta.in_tx && o.meta.rs_seq.is_none())
        {
            self.map.remove(key);
        }
    }

    /// Looks an object up.
    pub fn get(&self, key: &E::Key) -> Option<&InternalObj<E>> {
        self.map.get(key)
    }

    /// Every object, dead ones included.
    pub fn dump(&self) -> impl Iterator<Item = (&E::Key, &InternalObj<E>)> {
        self.map.iter()
    }

    /// Empties the cache (`conntrackd -f internal`); returns how many objects were dropped. Queued
    /// references to them are skipped when their turn comes.
    pub fn flush(&mut self) -> usize {
        let n = self.map.len();
        self.stats.deleted += self.live as u64;
        self.stats.flushes += 1;
        self.live = 0;
        self.map.clear();
        n
    }

    /// Live (not dead) entries.
    pub fn live(&self) -> impl Iterator<Item = E> + '_ {
        self.map
            .values()
            .filter(|o| o.state != ObjState::Dead)
            .map(|o| o.entry())
    }

    /// Number of objects, dead ones included.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Number of live objects.
    pub fn live_len(&self) -> usize {
        self.live
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Counters.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            active: self.live,
            objects: self.map.len(),
            ..self.stats
        }
    }
}

/// An external cache object.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ExternalObj<E = CtEntry> {
    /// The entry as last announced, encoded ([`Object::encode`]).
    data: Box<[u8]>,
    /// When it expires (ALARM mode only).
    pub expires: Option<Instant>,
    /// When it entered the cache (`[active since Ns]` in `-e`).
    pub created: Instant,
    /// When the peer last announced it (conntrackd's `lastupdate`: the commit subtracts the time since
    /// from the announced timeout).
    pub updated: Instant,
    kind: PhantomData<fn() -> E>,
}

impl<E: Object> ExternalObj<E> {
    /// The entry as last announced.
    pub fn entry(&self) -> E {
        E::decode(&self.data)
    }
}

/// Entries learnt from the peer.
#[derive(Debug)]
pub struct ExternalCache<E: Object = CtEntry> {
    pub(crate) map: HashMap<E::Key, ExternalObj<E>, FastHash>,
    limit: usize,
    stats: CacheStats,
}

impl<E: Object> Default for ExternalCache<E> {
    fn default() -> Self {
        ExternalCache {
            map: HashMap::default(),
            limit: DEFAULT_LIMIT,
            stats: CacheStats::default(),
        }
    }
}

impl<E: Object> ExternalCache<E> {
    /// Sets the most entries the cache holds (`HashLimit`); past it, new entries are refused and counted
    /// in [`CacheStats::create_failed`].
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.max(1);
    }

    /// Applies a change from the peer as conntrackd's `external_cache.c` does: NEW replaces any cached
    /// object, UPDATE merges into it ([`Object::update_from`]) or creates it, DELETE removes it. Returns
    /// whether the cache changed.
    ///
    /// `raw` is `entry`'s encoding as received when there is one ([`Object::decode`] gives `entry` back
    /// from it): a new object keeps it as it is instead of encoding `entry` again.
    pub(crate) fn apply(
        &mut self,
        now: Instant,
        change: Change,
        entry: E,
        raw: Option<&[u8]>,
        expires: Option<Instant>,
    ) -> bool {
        let Some(key) = entry.cache_key() else {
            self.stats.no_tuple += 1;
            return false;
        };
        let encode = |e: &E| raw.map_or_else(|| e.encode(), Box::from);
        let full = self.map.len() >= self.limit;
        match (change, self.map.get_mut(&key)) {
            (Change::Delete, _) => {
                let had = self.map.remove(&key).is_some();
                self.stats.deleted += u64::from(had);
                had
            }
            // external_cache_ct_upd: cache_update_force, which merges into an existing object.
            (Change::Update, Some(o)) => {
                let mut cur = E::decode(&o.data);
                cur.update_from(&entry);
                cur.encode_into(&mut o.data);
                o.expires = expires;
                o.updated = now;
                self.stats.updated += 1;
                true
            }
            // external_cache_ct_new: an existing object is deleted and a fresh one added.
            (Change::New, Some(o)) => {
                *o = ExternalObj {
                    data: encode(&entry),
                    expires,
                    created: now,
                    updated: now,
                    kind: PhantomData,
                };
                self.stats.deleted += 1;
                self.stats.created += 1;
                true
            }
            (Change::New | Change::Update, None) if full => {
                self.stats.create_failed += 1;
                false
            }
            (Change::New | Change::Update, None) => {
                self.map.insert(
                    key,
                    ExternalObj {
                        data: encode(&entry),
                        expires,
                        created: now,
                        updated: now,
                        kind: PhantomData,
                    },
                );
                self.stats.created += 1;
                true
            }
        }
    }

    /// Removes entries whose deadline passed; returns them.
    pub(crate) fn expire(&mut self, now: Instant, key: &E::Key) -> Option<E> {
        if self
            .map
            .get(key)
            .and_then(|o| o.expires)
            .is_some_and(|t| t <= now)
        {
            self.stats.expired += 1;
            self.stats.deleted += 1;
            return self.map.remove(key).map(|o| o.entry());
        }
        None
    }

    /// Looks an entry up.
    pub fn get(&self, key: &E::Key) -> Option<&ExternalObj<E>> {
        self.map.get(key)
    }

    /// Every entry (`conntrackd -e`).
    pub fn dump(&self) -> impl Iterator<Item = (&E::Key, &ExternalObj<E>)> {
        self.map.iter()
    }

    /// The entries to inject into the kernel on fail-over (`conntrackd -c`).
    pub fn commit_list(&self) -> Vec<E> {
        self.map.values().map(|o| o.entry()).collect()
    }

    /// Empties the cache (`conntrackd -f external`); returns how many entries were dropped.
    pub fn flush(&mut self) -> usize {
        let n = self.map.len();
        self.stats.deleted += n as u64;
        self.stats.flushes += 1;
        self.map.clear();
        n
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Counters.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            active: self.map.len(),
            objects: self.map.len(),
            ..self.stats
        }
    }
}
