//! `ipvs-nl`: the Linux IPVS load balancer over generic netlink, blocking and typed.
//!
//! # Layers
//! * [`wire`]: codecs only (no I/O). The IPVS values ([`Service`], [`Destination`], [`Stats`], [`Daemon`],
//!   [`Timeouts`], [`Info`]), a kernel message ([`Reply`]) and a request ([`Op`]) each have
//!   `parse(&[u8])`, `buffer_len()` and `emit(&mut [u8]) -> Result<usize, EmitError>`. An attribute this
//!   crate does not know is kept raw ([`RawAttr`]) in the `unknown` list of its nest and written back, so
//!   a service or destination read from a newer kernel, changed and written back keeps it. The netlink and
//!   genetlink framing is private.
//! * `socket`: the only module that touches the kernel: one `NETLINK_GENERIC` socket.
//! * [`Ipvs`]: the handle. It resolves the "IPVS" family once (`CTRL_CMD_GETFAMILY`) and keeps its one socket
//!   for every operation (libipvs opens a socket per operation). Listings stream ([`Ipvs::services`],
//!   [`Ipvs::destinations`]); [`Ipvs::apply`] pipelines many changes ([`Op`]) and returns each one's result.
//!
//! Kernel errors map to typed [`Error`] kinds: `EEXIST` → [`Error::Exists`], `ESRCH` →
//! [`Error::NoSuchService`], `ENOENT` → [`Error::NotFound`] (no such destination, or scheduler/persistence
//! engine not found when adding a service), `EPERM`/`EACCES` → [`Error::PermissionDenied`] (the errno
//! kept), other errnos → [`Error::Kernel`]; [`Error::errno`] gives the raw value back.
//!
//! ```no_run
//! use ipvs_nl::{Destination, Ipvs, Protocol, Scheduler, Service, ServiceKey};
//! let mut ipvs = Ipvs::open()?;
//! let key = ServiceKey::Inet { protocol: Protocol::Tcp, addr: "10.0.0.1".parse()?, port: 80 };
//! let mut svc = Service::new(key);
//! svc.scheduler = Scheduler::Rr;
//! ipvs.add_service(&svc)?;
//! ipvs.add_destination(&key, &Destination::new("10.0.0.2".parse()?, 80))?;
//! for s in ipvs.services()? {
//!     println!("{:?}", s?.key);
//! }
//! // Read, change, write back: attributes this crate does not know go back as they came.
//! let mut d = ipvs.destinations(&key)?.next().transpose()?.ok_or("no destination")?;
//! d.weight = 5;
//! ipvs.edit_destination(&key, &d)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Tests
//! This machine's kernel has no IPVS, so the kernel tests (`tests/vm.rs`) are behind the cargo feature
//! `vm-tests`, which plain `cargo test` does not enable. `cargo xtask vm-test` builds them, copies the test
//! executables into a qemu VM booting Debian's kernel with the ip_vs modules, and runs them there; each test
//! works in its own network namespace (IPVS tables are per namespace). `cargo xtask ci` runs that step.
//! The feature `test-unknown-attrs` (enabled by `vm-tests`) adds a test hook, `testing::treat_as_unknown`,
//! used to prove the unknown-attribute round trip against the real kernel; it is not part of the API.
#![warn(missing_docs)]
#![deny(unsafe_code)] // allowed only in `socket` (one recvmmsg call)

mod error;
mod handle;
mod socket;
#[cfg(feature = "test-unknown-attrs")]
#[doc(hidden)]
pub mod testing;
#[cfg(not(feature = "test-unknown-attrs"))]
mod testing;
pub mod wire;

pub use error::{DecodeError, EmitError, Error, Result};
pub use handle::{Ipvs, Options};
pub use wire::{
    Daemon, DaemonState, Destination, Family, FwdMethod, Info, Op, Protocol, RawAttr, Reply,
    Scheduler, Service, ServiceFlags, ServiceKey, Stats, Timeouts, TunnelFlags, TunnelType,
};
