//! `vrrp-proto`: VRRPv2/v3 codecs and a sans-IO router state machine.
//!
//! Layers, bottom up:
//!
//! * [`wire`]: the message codecs (VRRPv2, RFC 3768; VRRPv3, RFC 5798 and RFC 9568) and the checksum
//!   modes. No I/O, no allocation on the receive path ([`wire::Packet`]).
//! * [`config`]: a validated configuration model with keepalived's `vrrp_instance` keys; every error
//!   names its field.
//! * [`router`]: the RFC 9568 §6 state machine (Initialize, Backup, Master/Active) as a sans-IO core:
//!   `handle_packet(now, ..)`, `handle_timeout(now)`, `handle_command(now, ..)` in,
//!   `poll_action()` and `poll_timeout()` out. Time is a parameter; there are no sockets, threads,
//!   clocks or channels here.
//! * [`inspect`]: a configuration-free decoder report for operators (what the `vrrp_decode` example prints).
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod config;
pub mod inspect;
pub mod router;
pub mod wire;

pub use config::{Config, ConfigError};
pub use router::{Action, Command, Reason, Router, RxError, State};
