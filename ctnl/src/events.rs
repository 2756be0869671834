//! Event subscription: conntrack NEW/UPDATE/DESTROY and expectation NEW/DESTROY multicast groups.

use crate::error::DecodeError;
use crate::error::Error;
use crate::socket::CtSocket;
use crate::wire::{
    Entry, Expect, Msg, Msgs, NFNL_SUBSYS_CTNETLINK, NFNL_SUBSYS_CTNETLINK_EXP, NLMSG_ERROR,
    NLMSG_HDRLEN, NLMSG_OVERRUN, exp_msg, family_at,
};
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_netfilter::conntrack::ConntrackMessageType;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

bitflags::bitflags! {
    /// Multicast groups to join (`NFNLGRP_CONNTRACK_*`): bit `n-1` for group `n`.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
    pub struct Groups: u32 {
        /// `NFNLGRP_CONNTRACK_NEW` (group 1).
        const NEW = 1 << 0;
        /// `NFNLGRP_CONNTRACK_UPDATE` (group 2).
        const UPDATE = 1 << 1;
        /// `NFNLGRP_CONNTRACK_DESTROY` (group 3).
        const DESTROY = 1 << 2;
        /// `NFNLGRP_CONNTRACK_EXP_NEW` (group 4).
        const EXP_NEW = 1 << 3;
        /// `NFNLGRP_CONNTRACK_EXP_UPDATE` (group 5).
        const EXP_UPDATE = 1 << 4;
        /// `NFNLGRP_CONNTRACK_EXP_DESTROY` (group 6).
        const EXP_DESTROY = 1 << 5;
        /// All three conntrack groups.
        const CONNTRACK = Self::NEW.bits() | Self::UPDATE.bits() | Self::DESTROY.bits();
        /// All three expectation groups.
        const EXPECT = Self::EXP_NEW.bits() | Self::EXP_UPDATE.bits() | Self::EXP_DESTROY.bits();
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A new entry (or expectation).
    New,
    /// An entry changed.
    Update,
    /// An entry (or expectation) went away.
    Destroy,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // nearly all events are entries; boxing them would allocate per event
pub enum Event {
    /// A conntrack entry event.
    Conntrack {
        /// New, update or destroy.
        kind: EventKind,
        /// The entry as the kernel reported it.
        entry: Entry,
    },
    /// An expectation event.
    Expect {
        /// New or destroy.
        kind: EventKind,
        /// The expectation.
        expect: Expect,
    },
}

/// What [`EventSocket::try_recv`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // an event is what the caller wants; boxing it would allocate per event
pub enum TryRecv {
    /// The next event.
    Event(Event),
    /// Nothing to read now: the socket is non-blocking ([`EventSocket::set_nonblocking`]) and nothing is
    /// queued, or the receive timeout ([`EventSocket::set_timeout`]) elapsed with nothing received.
    WouldBlock,
}

/// Default kernel receive queue for an event socket: 64 MiB (the kernel doubles it). Each queued event
/// costs about 1.3 KiB of socket memory, so this holds a burst of about 100,000 events even when the
/// consumer reads nothing until the burst is over; the memory is only used while events are queued.
pub const DEFAULT_EVENT_RCVBUF: usize = 64 << 20;

/// A socket subscribed to event groups.
///
/// Its kernel receive queue is sized on this socket itself (`SO_RCVBUFFORCE`, falling back to
/// `SO_RCVBUF`). When the kernel still has to drop events, the next receive returns [`Error::Overrun`]:
/// events were lost and the caller must resynchronise (dump the table). Events are never lost silently.
///
/// # In a poll loop
///
/// The socket is a file descriptor ([`AsFd`], [`AsRawFd`]), so one `poll(2)` can wait on it together
/// with other sockets, timers and a control socket. Make it non-blocking
/// ([`EventSocket::set_nonblocking`]) and, each time it polls readable, call [`EventSocket::try_recv`]
/// until it returns [`TryRecv::WouldBlock`]: the kernel delivers several events per datagram, and the
/// ones after the first wait in this socket's buffer, where `poll` cannot see them
/// ([`EventSocket::has_buffered`] tells when some are left, for a loop that stops draining early).
///
/// ```no_run
/// # #![allow(unsafe_code)]
/// use ctnl::{Error, EventSocket, Groups, TryRecv};
/// use std::os::fd::AsRawFd;
/// let mut ev = EventSocket::open(Groups::CONNTRACK)?;
/// ev.set_nonblocking(true)?;
/// let mut fds = [libc::pollfd { fd: ev.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
/// loop {
///     // ... plus the program's other descriptors, and its nearest timer as the timeout
///     // SAFETY: `fds` is a valid array of pollfd for the duration of the call.
///     unsafe { libc::poll(fds.as_mut_ptr(), 1, 1000) };
///     loop {
///         match ev.try_recv() {
///             Ok(TryRecv::Event(e)) => println!("{e:?}"),
///             Ok(TryRecv::WouldBlock) => break,
///             Err(Error::Overrun) => eprintln!("events lost: resync with a dump"),
///             Err(e) => return Err(e),
///         }
///     }
/// }
/// # Ok::<(), ctnl::Error>(())
/// ```
#[derive(Debug)]
pub struct EventSocket {
    sock: CtSocket,
    pos: usize,
    rcvbuf: usize,
    last_portid: u32,
}

impl EventSocket {
    /// Joins `groups` with a receive queue of [`DEFAULT_EVENT_RCVBUF`].
    pub fn open(groups: Groups) -> Result<Self, Error> {
        Self::open_with(groups, DEFAULT_EVENT_RCVBUF)
    }

    /// Joins `groups` with a receive queue of `rcvbuf` bytes.
    pub fn open_with(groups: Groups, rcvbuf: usize) -> Result<Self, Error> {
        let sock = CtSocket::open_groups(groups.bits())?;
        let rcvbuf = sock.set_rcvbuf(rcvbuf)?;
        Ok(EventSocket {
            sock,
            pos: 0,
            rcvbuf,
            last_portid: 0,
        })
    }

    /// The receive queue size the kernel reports for this socket (twice what was asked: it counts its
    /// bookkeeping).
    pub fn rcvbuf(&self) -> usize {
        self.rcvbuf
    }

    /// Reliable delivery (`NETLINK_BROADCAST_ERROR`, what conntrackd's `NetlinkEventsReliable` sets): when an
    /// event cannot be queued to this socket the kernel is told, and for DESTROY events it keeps the entry
    /// on its dying list and redelivers later instead of dropping the event.
    pub fn set_reliable(&mut self, on: bool) -> Result<(), Error> {
        self.sock.inner().set_broadcast_error(on).map_err(Error::Io)
    }

    /// The socket, for options set in other modules (`event_filter`).
    pub(crate) fn socket(&self) -> &CtSocket {
        &self.sock
    }

    /// The netlink header's port id (`nlmsg_pid`) of the message the last event returned by
    /// [`EventSocket::next_event`] came from: the port of the user-space socket whose request caused the
    /// event (what conntrack-tools prints as `[USERSPACE] portid=N`), or 0 when the kernel itself did.
    pub fn last_portid(&self) -> u32 {
        self.last_portid
    }

    /// Sets how long [`EventSocket::next_event`] waits (`None`: forever).
    pub fn set_timeout(&mut self, t: Option<Duration>) -> Result<(), Error> {
        self.sock.set_read_timeout(t)
    }

    /// Switches non-blocking mode on or off (`O_NONBLOCK`). When on, [`EventSocket::try_recv`] returns
    /// [`TryRecv::WouldBlock`] at once when nothing is queued, instead of waiting.
    pub fn set_nonblocking(&mut self, on: bool) -> Result<(), Error> {
        self.sock.set_nonblocking(on)
    }

    /// True when events of the last datagram received are still in this socket's buffer: the next
    /// [`EventSocket::try_recv`] returns without a system call, and `poll(2)` on the descriptor does not
    /// report them.
    pub fn has_buffered(&self) -> bool {
        self.pos < self.sock.received().len()
    }

    /// The next event. `Ok(None)` when the timeout elapsed with nothing received (or, on a non-blocking
    /// socket, when nothing is queued); `Err(Error::Overrun)` when the kernel dropped events for this
    /// socket since the last call.
    pub fn next_event(&mut self) -> Result<Option<Event>, Error> {
        Ok(match self.try_recv()? {
            TryRecv::Event(e) => Some(e),
            TryRecv::WouldBlock => None,
        })
    }

    /// The next event, or [`TryRecv::WouldBlock`] when there is none to read now: on a non-blocking socket
    /// as soon as the kernel queue is empty, on a blocking one when the timeout elapses.
    /// `Err(Error::Overrun)` when the kernel dropped events for this socket since the last call.
    pub fn try_recv(&mut self) -> Result<TryRecv, Error> {
        loop {
            if self.pos >= self.sock.received().len() {
                self.pos = 0;
                if self.sock.recv()?.is_none() {
                    return Ok(TryRecv::WouldBlock);
                }
            }
            let buf = self.sock.received();
            let mut it = Msgs::new(buf.get(self.pos..).unwrap_or_default());
            let m = match it.next() {
                None => {
                    self.pos = buf.len();
                    continue;
                }
                Some(Err(e)) => {
                    self.pos = buf.len();
                    return Err(e.into());
                }
                Some(Ok(m)) => m,
            };
            self.pos += it.position();
            if m.kind == NLMSG_OVERRUN {
                return Err(Error::Overrun);
            }
            if m.kind == NLMSG_ERROR {
                let code = m.error_code()?;
                if code != 0 {
                    return Err(Error::from_nl_code(code));
                }
                continue;
            }
            self.last_portid = m.pid;
            if let Some(e) = event_of(&m)? {
                return Ok(TryRecv::Event(e));
            }
        }
    }
}

impl Event {
    /// Parses one netlink message as the kernel multicasts it to an event socket (`nlmsghdr`, `nfgenmsg`,
    /// attributes): `Ok(None)` for a well-formed message that is not a conntrack or expectation event
    /// (an acknowledgement, another subsystem's message). Bytes after the message are ignored.
    pub fn parse(buf: &[u8]) -> Result<Option<Event>, DecodeError> {
        match Msgs::new(buf).next() {
            None => Err(DecodeError::Truncated {
                what: "nlmsghdr",
                offset: 0,
                expected: NLMSG_HDRLEN,
                actual: 0,
            }),
            Some(m) => event_of(&m?),
        }
    }
}

/// The event a message carries, if it is one.
fn event_of(m: &Msg<'_>) -> Result<Option<Event>, DecodeError> {
    if m.kind == NLMSG_ERROR || m.kind == NLMSG_OVERRUN {
        return Ok(None);
    }
    let created = m.flags & (NLM_F_CREATE | NLM_F_EXCL) != 0;
    let (family, _, _, attrs) = m.nfgen()?;
    Ok(match (m.subsys(), m.ct_type()) {
        (NFNL_SUBSYS_CTNETLINK, t) => {
            let kind = match (ConntrackMessageType::from(t), created) {
                (ConntrackMessageType::Delete, _) => EventKind::Destroy,
                (ConntrackMessageType::New, true) => EventKind::New,
                (ConntrackMessageType::New, false) => EventKind::Update,
                _ => return Ok(None),
            };
            let entry = Entry::parse_attrs(family_at(family, NLMSG_HDRLEN)?, attrs)?;
            Some(Event::Conntrack { kind, entry })
        }
        (NFNL_SUBSYS_CTNETLINK_EXP, t @ (exp_msg::NEW | exp_msg::DELETE)) => {
            let kind = match (t, created) {
                (exp_msg::DELETE, _) => EventKind::Destroy,
                (_, true) => EventKind::New,
                _ => EventKind::Update,
            };
            let expect = Expect::parse_attrs(family_at(family, NLMSG_HDRLEN)?, attrs)?;
            Some(Event::Expect { kind, expect })
        }
        _ => None,
    })
}

impl AsFd for EventSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl AsRawFd for EventSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl Iterator for EventSocket {
    type Item = Result<Event, Error>;

    /// Blocks for the next event; ends when a timeout elapses with nothing received.
    fn next(&mut self) -> Option<Self::Item> {
        self.next_event().transpose()
    }
}
