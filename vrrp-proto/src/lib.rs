//! `vrrp-proto`: VRRPv2/v3 codecs and a sans-IO router state machine.
//!
//! Layers, bottom up:
//!
//! * [`wire`]: the message codecs (VRRPv2, RFC 3768; VRRPv3, RFC 5798 and RFC 9568) and the checksum
//!   modes (RFC 5798 IPv4 pseudo-header as keepalived 2.2.7 sends it, RFC 9568 message-only, IPv6
//!   pseudo-header, unicast). [`wire::Packet`] validates received bytes without allocating;
//!   [`wire::Repr`] is the owned value with `parse` / `buffer_len` / `emit`; the address count and the
//!   checksum are never stored. [`wire::checksum_modes`] tells which modes a peer's checksum satisfies.
//! * [`config`]: a validated configuration model with keepalived's `vrrp_instance` keys; every
//!   [`ConfigError`] names its key.
//! * [`router`]: the RFC 5798 / RFC 9568 §6 state machine (Initialize, Backup, Master a.k.a. Active) as a
//!   sans-IO core: `handle_packet(now, ..)`, `handle_timeout(now)`, `handle_command(now, ..)` in;
//!   `poll_action()` and `poll_timeout()` out. Time is a parameter: no sockets, threads, clocks or channels.
//! * [`inspect`]: a configuration-free report on one message, as JSON (what `examples/vrrp_decode` prints).
//!
//! The codec shape of the workspace (README, "API conventions") with one VRRP twist: a VRRPv3 checksum
//! covers the carrying IP packet's pseudo-header, so the context-complete value is [`Advert`] (IP source,
//! destination, checksum mode and message): [`Advert::parse`]`(src, dst, bytes)`, [`Advert::buffer_len`],
//! [`Advert::emit`]`(&mut [u8]) -> Result<usize, EmitError>`. The bare message [`Repr`] takes the checksum
//! mode as a parameter of `parse` and `emit`, as smoltcp's UDP codec takes the addresses. States, reasons,
//! commands, actions, receive errors and configurations are `#[non_exhaustive]`; [`Config::new`] and
//! [`Track::new`] build the structs. The common types are re-exported here.
//!
//! Where RFC 5798 / RFC 9568 leave a choice, or say nothing, the router does what keepalived 2.2.7 does
//! (checked in its source), so it can replace or join a keepalived pair:
//!
//! * a Master answers a lower-priority advert with its own at once (RFC 9568 §6.4.3, keepalived's default;
//!   [`Config::answer_lower_priority`] off is RFC 5798's silent discard). Adver_Timer is not reset.
//! * `state MASTER` on a non-owner changes no timing: Backup for Master_Down_Interval first, as
//!   keepalived does outside a sync group (measured; see [`config::InitialState`]).
//! * `preempt_delay` runs from the first lower-priority advert heard in Backup.
//! * unicast (`unicast_peer`, outside the RFCs): any TTL, multicast adverts dropped, optional
//!   `check_unicast_src`; the IPv4 pseudo-header carries the unicast destination.
//! * an owner's advert with a different address list is obeyed and reported
//!   ([`Action::AddressListMismatch`]), a non-owner's dropped ([`RxError::AddressMismatch`]).
//! * [`config::parse_keepalived`] applies keepalived's defaults (VRRPv2 for IPv4 unless `vrrp_version 3`).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use vrrp_proto::{Action, Command, Config, Router, State};
//!
//! let mut cfg = Config::new("eth0", 51, vec!["192.0.2.100".parse().unwrap()]);
//! cfg.priority = 150;
//! let mut r = Router::new(cfg, "192.0.2.1".parse().unwrap()).unwrap();
//! let t0 = Instant::now(); // any origin: the router never reads a clock
//! r.handle_command(t0, Command::Startup);
//! assert_eq!(r.state(), State::Backup);
//! // Nobody advertises: at Master_Down_Interval = 3 s + (256 - 150) / 256 s the router takes over.
//! let deadline = r.poll_timeout().unwrap();
//! assert_eq!(deadline - t0, Duration::from_secs(3) + Duration::from_nanos(1_000_000_000 * 106 / 256));
//! r.handle_timeout(deadline);
//! assert_eq!(r.state(), State::Master);
//! let mut sent = 0;
//! while let Some(action) = r.poll_action() {
//!     if let Action::SendAdvert(advert) = action {
//!         let bytes = advert.to_bytes().unwrap(); // 12 bytes, to 224.0.0.18 with TTL 255
//!         assert_eq!(bytes.len(), 12);
//!         sent += 1;
//!     }
//! }
//! assert_eq!(sent, 1);
//! ```
#![warn(missing_docs)]
#![deny(unsafe_code)] // allowed only in linux::socket

pub mod config;
pub mod inspect;
pub mod instances;
#[cfg(feature = "linux")]
pub mod linux;
pub mod router;
pub mod wire;

pub use config::{
    Config, ConfigError, InitialState, Scope, Track, V4Checksum, Version, VirtualAddress,
};
pub use instances::{Event, Instances, Reloaded};
pub use router::{Action, Advert, Command, Reason, Router, RxError, State};
pub use wire::{Checksum, DecodeError, EmitError, Family, Packet, Repr};
