//! `ctnl`: the Linux conntrack table over ctnetlink, blocking and typed.
//!
//! No async runtime and no threads: every call blocks on one netlink socket owned by the handle. Everything
//! runs in the network namespace of the calling thread.
//!
//! # Layers
//!
//! * Codecs with no I/O (a private `wire` module, its typed values re-exported here): [`Entry`] (with
//!   [`Tuple`], [`Status`], [`Counters`], [`ProtoInfo`], [`NatRange`], ...) and [`Expect`]. Each has
//!   `parse(&[u8]) -> Result<_, DecodeError>`, `buffer_len()` and
//!   `emit(&mut [u8]) -> Result<usize, EmitError>`; parsing never panics, unknown attributes are kept raw
//!   ([`RawAttr`]) and written back, at the top level and inside every known nest. [`Event::parse`] reads
//!   one netlink message as the kernel multicasts it. Families are [`Family`], flags typed bitflags
//!   ([`Status`], [`TcpFlags`], [`ExpectFlags`], [`Groups`]); [`icmp_reply_type`] is the kernel's ICMP and
//!   ICMPv6 reply-type map. Netlink framing stays inside the crate.
//! * A private socket module, the only one that touches the kernel (netlink-sys underneath), with one
//!   reusable receive buffer per handle.
//! * Operations on [`Conntrack`]: [`Conntrack::dump`] (a streaming [`Dump`] iterator with [`DumpFilter`]),
//!   [`Conntrack::get`], [`Conntrack::create`], [`Conntrack::update`], [`Conntrack::delete`], batched
//!   [`Conntrack::batch`] (a [`Batch`] giving a [`BatchReport`] with one result per entry), flushes
//!   ([`Conntrack::flush_all`], [`Conntrack::flush_family`], filtered [`Conntrack::flush`]),
//!   [`Conntrack::zero_counters`], [`Conntrack::stats`] / [`Conntrack::stats_cpu`], the dying and
//!   unconfirmed lists, and expectations ([`Conntrack::dump_expect`], [`Conntrack::create_expect`], ...).
//!   Events come from a separate [`EventSocket`], which is a file descriptor ([`std::os::fd::AsFd`]) with a
//!   non-blocking mode ([`EventSocket::set_nonblocking`], [`EventSocket::try_recv`] giving
//!   [`TryRecv::WouldBlock`]), so one `poll(2)` loop can serve it with other sockets and timers.
//! * [`sysctl`]: typed conntrack sysctl knobs (`nf_conntrack_max`, timeouts, ...), read, validated, written.
//! * [`text`]: what conntrack-tools prints, on [`Entry`] and [`Expect`]: the default line
//!   ([`Entry::write_text`] with a [`Style`]), XML, `save` lines and JSON; the names behind them (TCP, SCTP
//!   and DCCP states, status flags, connection labels from `connlabel.conf` as a [`LabelMap`]) and local
//!   time as the C library computes it ([`TimeZone`], [`Clock`]).
//!
//! # Examples
//!
//! List the table:
//!
//! ```no_run
//! use ctnl::{Conntrack, DumpFilter};
//! let mut ct = Conntrack::open()?;
//! for entry in ct.dump(&DumpFilter::all())? {
//!     let entry = entry?;
//!     if let Some(t) = &entry.orig {
//!         println!("{} {} -> {} timeout {:?}", t.proto, t.src, t.dst, entry.timeout);
//!     }
//! }
//! # Ok::<(), ctnl::Error>(())
//! ```
//!
//! Create entries in one batch and check each result:
//!
//! ```no_run
//! use ctnl::{Conntrack, Entry, Tuple};
//! use std::net::{IpAddr, Ipv4Addr};
//! let mut ct = Conntrack::open()?;
//! let mut batch = ct.batch();
//! for port in 1000..2000u16 {
//!     let orig = Tuple::ports(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 17, port, 53);
//!     let mut e = Entry::new(orig.clone(), orig.reversed());
//!     e.timeout = Some(60);
//!     batch.create(&e)?;
//! }
//! let report = batch.finish()?;
//! for (i, err) in &report.failures {
//!     eprintln!("entry {i}: {err}");
//! }
//! # Ok::<(), ctnl::Error>(())
//! ```
//!
//! Watch events:
//!
//! ```no_run
//! use ctnl::{EventSocket, Groups, Error};
//! let mut ev = EventSocket::open(Groups::CONNTRACK)?;
//! loop {
//!     match ev.next_event() {
//!         Ok(Some(e)) => println!("{e:?}"),
//!         Ok(None) => continue,
//!         Err(Error::Overrun) => eprintln!("events lost: resync with a dump"),
//!         Err(e) => return Err(e),
//!     }
//! }
//! # Ok::<(), ctnl::Error>(())
//! ```
//!
//! # Errors
//!
//! [`Error`] maps kernel errnos to kinds ([`Error::NotFound`], [`Error::Exists`],
//! [`Error::PermissionDenied`], [`Error::Invalid`], [`Error::Busy`], [`Error::Overrun`]); [`Error::errno`]
//! returns the raw errno. Undecodable kernel data gives [`Error::Decode`] with a structured [`DecodeError`].
//! Nothing panics on any kernel or caller input.
//!
//! # Kernel behaviour worth knowing (6.x, verified by this crate's kernel tests)
//!
//! * Create and update requests carry `IPS_CONFIRMED` in `CTA_STATUS` whenever a status is given: the
//!   kernel marks every entry it creates confirmed and answers `EBUSY` to a status that would clear it.
//! * IPv6 address fields of a `CTA_FILTER` are matched inverted by the kernel (an entry is skipped when
//!   its address equals the filter's), so [`DumpFilter`] keeps them in user space. Ports are compared by
//!   the kernel only for TCP and UDP, ICMP fields only for ICMP/ICMPv6: anything else is accepted and
//!   ignored (see [`TupleFilter::kernel_exact`]). Dumps always re-check in user space; flushes go to the
//!   kernel only when its match is exact.
//! * A filtered [`Conntrack::flush`] is one kernel request on kernels that take `CTA_FILTER` on a flush
//!   (6.11+); older ones answer `EOPNOTSUPP` and the crate falls back to dump plus batched delete. Tuple
//!   fields need a family (`AF_UNSPEC` gets `EOPNOTSUPP`): without one the flush runs once per family.
//! * Events exist only for entries created while some socket listens: open the [`EventSocket`] first.
//! * Labels are stored only once a ruleset in the namespace uses `ct label`; an expectation's timeout
//!   comes from its helper's policy, not from the request; the ftp helper keeps one expectation per master.
//! * `CTA_ZONE` is dumped only for a zone covering both directions; a per-direction zone shows up as
//!   [`Tuple::zone`].
//!
//! # Performance
//!
//! A dump decodes each entry into plain fixed-size fields without per-attribute heap allocation, reading
//! datagrams into one 128 KiB buffer. For the fastest scan use the lending [`Dump::next_into`], which decodes
//! into one reused [`Entry`] (measured here on 200,000 UDP entries: within 2% of a raw receive-and-count
//! loop, against about 13% for the owning iterator, which moves each ~700-byte entry out):
//!
//! ```no_run
//! # use ctnl::{Conntrack, DumpFilter, Entry};
//! let mut ct = Conntrack::open()?;
//! let mut dump = ct.dump(&DumpFilter::all())?;
//! let mut entry = Entry::default();
//! let mut udp = 0;
//! while let Some(r) = dump.next_into(&mut entry) {
//!     r?;
//!     udp += usize::from(entry.orig.as_ref().is_some_and(|t| t.proto == 17));
//! }
//! # Ok::<(), ctnl::Error>(())
//! ```
//! A batch encodes straight into one send buffer and sends 96 KiB per
//! `sendmsg`; only failures are answered, plus one ack per chunk.
//!
//! Two halves can run on separate threads, so that the kernel's share overlaps the program's:
//! * [`Dump::next_raw`] copies each datagram's entries out undecoded into [`RawItems`], to be decoded
//!   (and checked against [`Dump::user_filter`]) on another thread while the socket's thread waits for the
//!   next datagram. `conntrack -L` works this way.
//! * [`Prepared`] encodes creates, updates and deletes without a socket, on any thread;
//!   [`Batch::extend`] queues them later on the socket's thread. `conntrack -R` encodes a file's lines on
//!   every core this way, and sends nothing before the whole file has been checked.
#![warn(missing_docs)]

pub mod batch;
pub mod dump;
mod error;
pub mod event_filter;
pub mod events;
pub mod expect;
pub mod ops;
mod socket;
pub mod stats;
pub mod sysctl;
pub mod text;
mod wire;

pub use batch::{Batch, BatchReport, Prepared};
pub use dump::{Dump, DumpFilter, DumpItem, RawItem, RawItems, TupleFilter};
pub use error::{DecodeError, EmitError, Error, strerror};
pub use event_filter::{AddrFields, EventFilter, Prefix, Rule};
pub use events::{Event, EventKind, EventSocket, Groups, TryRecv};
pub use ops::{Conntrack, Direction, FlushOutcome, Key};
pub use text::{Clock, LabelMap, Style, TimeZone};
pub use wire::{
    Counters, CpuStats, DccpInfo, Entry, Expect, ExpectCpuStats, ExpectFlags, ExpectNat, Family,
    GlobalStats, Helper, L4, NatRange, ProtoInfo, RawAttr, SctpInfo, SeqAdj, Status, Synproxy,
    TcpFlags, TcpFlagsMasked, TcpInfo, Timestamp, Tuple, icmp_reply_type,
};
