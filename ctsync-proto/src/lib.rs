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
//! * [`session`]: sans-IO state machines for conntrackd's three sync modes, FT-FW ([`session::Ftfw`]),
//!   ALARM ([`session::Alarm`]) and NOTRACK ([`session::Notrack`]). No sockets, threads or clocks: time
//!   is a parameter (`handle_datagram(now, ..)`, `handle_timeout(now)`), output is polled
//!   (`poll_transmit`, `poll_action`, `poll_timeout`).
//! * With the `ctnl` feature: `CtEntry::to_ctnl` / `CtEntry::from_ctnl` convert to and from
//!   `ctnl::Entry`.
//! * [`json`]: the one-object-per-message JSON used by `examples/ctsync_decode`.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod cache;
#[cfg(feature = "ctnl")]
mod ctnl_conv;
pub mod entry;
pub mod json;
pub mod session;
pub mod wire;
