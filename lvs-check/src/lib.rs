//! `lvs-check`: the LVS health-check engine of keepalived's `virtual_server` half, as a library.
//!
//! An HA controller embeds it without any daemon. Three layers, each usable alone:
//!
//! * [`config`]: virtual servers, real servers, sorry servers and checkers (`TCP_CHECK`, `HTTP_GET`,
//!   `SSL_GET`, `MISC_CHECK`) with keepalived 2.2.7's options and defaults.
//! * [`Engine`]: the sans-IO core. Given a clock (every input takes `now`), it decides when each check
//!   runs ([`Action::Check`] with a [`Probe`]), what each result means (retries, alpha, weights of
//!   `misc_dynamic`), and which IPVS changes ([`Action::Ipvs`] with an [`ipvs_nl::Op`]), scripts and
//!   [`Event`]s follow, with keepalived's pool rules: `inhibit_on_failure`, `sorry_server`,
//!   `sorry_server_inhibit`, `quorum`/`hysteresis`, `quorum_up`/`quorum_down`, `notify_up`/`notify_down`,
//!   `alpha`/`omega`, `ha_suspend`, and reloads that keep the state of what did not change.
//! * [`Driver`]: the blocking I/O around it: non-blocking sockets (TCP, HTTP, TLS through rustls) and
//!   child processes (MISC_CHECK, notify scripts) multiplexed with `poll(2)`; it applies IPVS changes
//!   through `ipvs-nl` only when given an [`ipvs_nl::Ipvs`] handle, and reports every output.
//!
//! Placement: this is a workspace crate of its own (not inside `vrrpd`), so a controller can depend on
//! it with neither the VRRP code nor the binary; the `vrrpd` binary reads `virtual_server` blocks into
//! [`config`] values and runs a [`Driver`].
//!
//! ```no_run
//! use lvs_check::{Driver, Engine, config::*};
//! use ipvs_nl::Protocol;
//! let mut vs = VirtualServer::new(Target::Addr { addr: "10.0.0.1:80".parse()?, protocol: Protocol::Tcp });
//! vs.delay_loop = std::time::Duration::from_secs(5);
//! let mut rs = RealServer::new("10.0.0.2:80".parse()?);
//! rs.checkers.push(Checker::new(CheckKind::Tcp));
//! vs.real_servers.push(rs);
//! let mut driver = Driver::new(Engine::new(vec![vs], 1)).with_ipvs(ipvs_nl::Ipvs::open()?);
//! driver.start();
//! loop {
//!     driver.run_once(None)?;
//!     while let Some(out) = driver.poll_output() {
//!         println!("{out:?}");
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod config;
mod driver;
mod engine;
pub mod http;

pub use driver::{Driver, DriverOptions, Output};
pub use engine::{
    Action, CheckId, CheckStatus, Engine, Event, Outcome, Probe, RealServerStatus,
    VirtualServerStatus,
};
