//! `ctsync-proto`: a conntrackd-compatible state-sync wire protocol with sans-IO reliability sessions.
//!
//! The layers, bottom up:
//!
//! * [`wire`]: the codec, byte-compatible with conntrackd 1.4.7 (`include/network.h`, `src/build.c`,
//!   `src/parse.c`). [`wire::Message`] has `parse` / `buffer_len` / `emit`; [`wire::messages`] splits a
//!   datagram; [`wire::Packer`] packs messages up to an MTU. Nothing allocates per message.
//! * [`entry`]: conversion between a sync message's [`wire::CtEntry`] and both tuples of a conntrack entry
//!   ([`wire::CtEntry::reply_tuple`], [`wire::CtEntry::set_tuples`]), rebuilding the reply tuple from the
//!   original tuple plus the NAT attributes the way conntrackd and libnetfilter_conntrack do.
//! * [`cache`]: the internal cache (local entries to announce) and the external cache (entries learnt
//!   from the peer), with dump, flush, commit list and stats.
//! * [`session`]: sans-IO state machines for conntrackd's three sync modes, FT-FW ([`Ftfw`]), ALARM
//!   ([`Alarm`]) and NOTRACK ([`Notrack`]), behind one trait, [`Session`], so that one loop drives any of
//!   them ([`SessionConfig::build`] gives a `Box<dyn Session>` for a configured mode). No sockets,
//!   threads or clocks: time is a parameter (`handle_datagram(now, ..)`, `handle_timeout(now)`), output is
//!   polled (`poll_transmit`, `poll_action`, `poll_timeout`).
//! * `CtEntry::to_ctnl` / `CtEntry::from_ctnl` (and the same on `ExpEntry`) convert to and from `ctnl`'s
//!   types.
//! * With the `linux` feature: [`driver`], the thin Linux loop around a session (channel sockets,
//!   kernel events, commit with conntrackd's rules, conntrackd's `Filter`), embeddable without `ctsyncd`.
//! * [`json`]: the one-object-per-message JSON used by `examples/ctsync_decode`.
//!
//! # Compatibility notes (checked against captures of conntrackd 1.4.7, see `tests/data/README.md`)
//!
//! * `NTA_ICMP_ID`, `NTA_SPAT_PORT` and `NTA_DPAT_PORT` travel little-endian from x86/arm64 conntrackd
//!   (a double byte swap in `ct_build_u16`); the codec follows the wire, fields hold real values.
//! * Attributes are emitted in `ct2msg`/`exp2msg` order, so conntrackd's messages re-encode byte for
//!   byte; a repeated attribute keeps its last value and an arbitrary order re-encodes canonically.
//! * Validation is conntrackd's: unknown attribute numbers, wrong fixed sizes, over-long strings,
//!   overruns and short attributes reject the message ([`wire::Mode::Lenient`] skips and counts unknown
//!   numbers); a trailing fragment of 4 bytes or less is ignored. Labels are accepted up to
//!   conntrackd's 1024-byte bitmap; the first 128 bits (all the kernel keeps) are stored and the wire
//!   length is kept for re-encoding.
//! * Datagrams are packed as conntrackd's channel packs them ([`wire::conntrackd_datagram_limit`]:
//!   at most MTU − 29 bytes, 1471 on a 1500-byte link, the sessions' default).
//! * The caches follow `internal_cache.c`/`external_cache.c`: the message type comes from the object's
//!   state when it is sent, a NEW event replaces a cached object, an UPDATE merges into it
//!   (`nfct_copy(.., NFCT_CP_META)`), a second DELETE is ignored.
//! * FT-FW follows `sync-ftfw.c` exactly by default, including its limits: while a peer still says
//!   HELLO, gaps in its sequence are not NACKed and whole windows are acknowledged, the resend queue is
//!   emptied on every HELLO received, the first message after a start sets the baseline (reordered
//!   earlier ones are dropped), and a resent control message keeps the HELLO it was first sent with. So
//!   a burst sent during a handshake through a lossy, reordering link loses entries, in conntrackd too.
//!   [`FtfwConfig::reliable_handshake`] (on in `ctsyncd`) stays reliable on the same wire.
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod cache;
mod ctnl_conv;
#[cfg(feature = "linux")]
pub mod driver;
pub mod entry;
pub mod json;
pub mod session;
pub mod wire;

pub use cache::{CacheStats, ExternalCache, InternalCache};
pub use entry::{ExpKey, Key, Tuple};
pub use session::{
    Action, Alarm, AlarmConfig, Ftfw, FtfwConfig, Notrack, NotrackConfig, Session, SessionConfig,
    Stats, SyncMode,
};
pub use wire::{
    AddrPair, Body, Change, CtEntry, DecodeError, EmitError, ExpEntry, Flags, Message, PortPair,
};
