//! `ipvs-nl`: the Linux IPVS load balancer over generic netlink, blocking and typed.
//!
//! # Layers
//! * [`wire`]: codecs only (no I/O): netlink/genetlink headers, attribute helpers, and the IPVS values
//!   ([`Service`], [`Destination`], [`Stats`], [`Daemon`], [`Timeouts`], [`Info`]) with `parse`/`emit`.
//!   Unknown attributes are skipped, never an error.
//! * `socket`: the only module that touches the kernel: one `NETLINK_GENERIC` socket.
//! * [`Ipvs`]: the handle. It resolves the "IPVS" family once (`CTRL_CMD_GETFAMILY`) and keeps its one socket
//!   for every operation (libipvs opens a socket per operation). Listings stream ([`Ipvs::services`],
//!   [`Ipvs::destinations`]); [`Ipvs::apply`] pipelines many changes ([`Op`]) and returns each one's result.
//!
//! Kernel errors map to typed [`Error`] kinds: `EEXIST` → [`Error::Exists`], `ESRCH` →
//! [`Error::NoSuchService`], `ENOENT` → [`Error::NotFound`] (no such destination, or scheduler/persistence
//! engine not found when adding a service), and so on.
//!
//! ```no_run
//! use ipvs_nl::{Ipvs, Service, ServiceKey, Protocol, Destination};
//! let mut ipvs = Ipvs::new()?;
//! let key = ServiceKey::Inet { protocol: Protocol::Tcp, addr: "10.0.0.1".parse()?, port: 80 };
//! let mut svc = Service::new(key);
//! svc.scheduler = "rr".into();
//! ipvs.add_service(&svc)?;
//! ipvs.add_destination(&key, &Destination::new("10.0.0.2".parse()?, 80))?;
//! for s in ipvs.services()? {
//!     println!("{:?}", s?.key);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Tests
//! This machine's kernel has no IPVS, so the kernel tests (`tests/vm.rs`) are behind the cargo feature
//! `vm-tests`, which plain `cargo test` does not enable. `cargo xtask vm-test` builds them, copies the test
//! executables into a qemu VM booting Debian's kernel with the ip_vs modules, and runs them there; each test
//! works in its own network namespace (IPVS tables are per namespace). `cargo xtask ci` runs that step.
#![warn(missing_docs)]
#![deny(unsafe_code)] // allowed only in `socket` (one recvmmsg call)

mod error;
mod handle;
mod socket;
pub mod wire;

pub use error::{DecodeError, Error, Result};
pub use handle::{Dump, Ipvs, Op};
pub use socket::DEFAULT_RECV_LEN;
pub use wire::{
    Daemon, DaemonState, Destination, FwdMethod, Info, Protocol, Reply, Service, ServiceFlags,
    ServiceKey, Stats, Timeouts, TunnelType,
};
