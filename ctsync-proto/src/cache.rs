//! Entry caches, as in conntrackd's `cache.c`, `internal_cache.c` and `external_cache.c`.
//!
//! * The **internal cache** holds the local entries this node announces. An entry is `New`, `Alive`
//!   (updated) or `Dead` (deleted, kept until every queue that refers to it has let go, so the DEL can be
//!   resent). The message type is derived from that state (`object_status_to_network_type`).
//! * The **external cache** holds what the peer announced: the state to commit to the kernel on
//!   fail-over (`conntrackd -c`). In ALARM mode its entries expire unless refreshed.

use crate::entry::{ExpKey, Key};
use crate::wire::{Change, CtEntry, ExpEntry};
use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::time::Instant;

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
}

impl Object for CtEntry {
    type Key = Key;
    fn cache_key(&self) -> Option<Key> {
        self.key()
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
    /// The entry.
    pub entry: E,
    /// Its state.
    pub state: ObjState,
    /// When it entered the cache (conntrackd's `lifetime`, shown by `-i` as `[active since Ns]`).
    pub created: Instant,
    /// When it last changed (conntrackd's `lastupdate`).
    pub updated: Instant,
    pub(crate) meta: Meta,
}

/// Local entries to announce.
#[derive(Debug)]
pub struct InternalCache<E: Object = CtEntry> {
    pub(crate) map: HashMap<E::Key, InternalObj<E>>,
    live: usize,
    limit: usize,
    stats: CacheStats,
}

impl<E: Object> Default for InternalCache<E> {
    fn default() -> Self {
        InternalCache {
            map: HashMap::new(),
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
                o.entry.update_from(&entry);
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
                o.entry = entry;
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
                        entry,
                        state: ObjState::New,
                        created: now,
                        updated: now,
                        meta: Meta::default(),
                    },
                );
                self.live += 1;
                self.stats.created += 1;
            }
        }
        Some(key)
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
    pub fn live(&self) -> impl Iterator<Item = &E> {
        self.map
            .values()
            .filter(|o| o.state != ObjState::Dead)
            .map(|o| &o.entry)
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
    /// The entry as last announced.
    pub entry: E,
    /// When it expires (ALARM mode only).
    pub expires: Option<Instant>,
    /// When it entered the cache (`[active since Ns]` in `-e`).
    pub created: Instant,
    /// When the peer last announced it (conntrackd's `lastupdate`: the commit subtracts the time since
    /// from the announced timeout).
    pub updated: Instant,
}

/// Entries learnt from the peer.
#[derive(Debug)]
pub struct ExternalCache<E: Object = CtEntry> {
    pub(crate) map: HashMap<E::Key, ExternalObj<E>>,
    limit: usize,
    stats: CacheStats,
}

impl<E: Object> Default for ExternalCache<E> {
    fn default() -> Self {
        ExternalCache {
            map: HashMap::new(),
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
    pub(crate) fn apply(
        &mut self,
        now: Instant,
        change: Change,
        entry: E,
        expires: Option<Instant>,
    ) -> bool {
        let Some(key) = entry.cache_key() else {
            self.stats.no_tuple += 1;
            return false;
        };
        match change {
            Change::Delete => {
                let had = self.map.remove(&key).is_some();
                if had {
                    self.stats.deleted += 1;
                }
                had
            }
            // external_cache_ct_upd: cache_update_force, which merges into an existing object.
            Change::Update if self.map.contains_key(&key) => {
                if let Some(o) = self.map.get_mut(&key) {
                    o.entry.update_from(&entry);
                    o.expires = expires;
                    o.updated = now;
                }
                self.stats.updated += 1;
                true
            }
            // external_cache_ct_new: an existing object is deleted and a fresh one added.
            Change::New | Change::Update => {
                let obj = ExternalObj {
                    entry,
                    expires,
                    created: now,
                    updated: now,
                };
                let full = self.map.len() >= self.limit;
                match self.map.get_mut(&key) {
                    Some(o) => {
                        *o = obj;
                        self.stats.deleted += 1;
                    }
                    None if full => {
                        self.stats.create_failed += 1;
                        return false;
                    }
                    None => {
                        self.map.insert(key, obj);
                    }
                }
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
            return self.map.remove(key).map(|o| o.entry);
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
        self.map.values().map(|o| o.entry).collect()
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
