//! The netlink socket: the only module that talks to the kernel.
//!
//! One [`CtSocket`] wraps a `NETLINK_NETFILTER` socket from netlink-sys with a reusable receive buffer and a
//! sequence counter. Requests are sent as whole datagrams (many messages per `send` for batches); answers are
//! read into the same buffer every time, so receiving allocates nothing.
#![allow(unsafe_code)] // setsockopt(2) for SO_RCVBUFFORCE and SO_RCVTIMEO has no safe wrapper.

use crate::error::{DecodeError, Error};
use crate::wire::{Msg, Msgs, NLMSG_DONE, NLMSG_ERROR, NLMSG_OVERRUN};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

/// Receive buffer size. Netlink dumps come in datagrams of at most 32 KiB (the kernel caps its dump skbs),
/// single messages are far smaller; 128 KiB leaves room and is allocated once per socket.
const RECV_BUF: usize = 128 * 1024;

/// Kernel-side receive queue asked for on request sockets, so that the error answers to a large batch
/// cannot overflow it (each queued answer costs about 1 KiB of socket memory).
const REQUEST_RCVBUF: usize = 8 << 20;

/// A `NETLINK_NETFILTER` socket with its receive buffer.
#[derive(Debug)]
pub(crate) struct CtSocket {
    sock: Socket,
    rbuf: Vec<u8>,
    len: usize,
    seq: u32,
}

impl CtSocket {
    /// Opens a socket for requests (dump, get, create, ...), bound to a kernel-assigned port, with capped
    /// acknowledgements and an enlarged receive queue.
    pub(crate) fn open() -> Result<Self, Error> {
        let mut s = Self::open_raw(0)?;
        // Capped acks: the kernel does not echo each failed request back in full.
        s.sock.set_cap_ack(true).map_err(Error::Io)?;
        // Best effort: a larger queue for batch answers. Failing is not fatal (small batches still work).
        let _ = s.set_rcvbuf(REQUEST_RCVBUF);
        s.seq = seed_seq();
        Ok(s)
    }

    /// Opens a socket subscribed to the given multicast groups bit mask (bit `n-1` for group `n`).
    pub(crate) fn open_groups(groups: u32) -> Result<Self, Error> {
        let s = Self::open_raw(groups)?;
        Ok(s)
    }

    fn open_raw(groups: u32) -> Result<Self, Error> {
        let mut sock = Socket::new(NETLINK_NETFILTER).map_err(Error::Io)?;
        sock.bind(&SocketAddr::new(0, groups)).map_err(Error::Io)?;
        Ok(CtSocket {
            sock,
            rbuf: vec![0; RECV_BUF],
            len: 0,
            seq: 0,
        })
    }

    /// Sets the kernel receive queue size of this socket: `SO_RCVBUFFORCE` (needs `CAP_NET_ADMIN`, ignores
    /// `rmem_max`), falling back to `SO_RCVBUF`. Returns the size the kernel reports afterwards (it doubles
    /// the request for bookkeeping).
    pub(crate) fn set_rcvbuf(&self, bytes: usize) -> Result<usize, Error> {
        let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        if setsockopt_int(&self.sock, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, v).is_err() {
            setsockopt_int(&self.sock, libc::SOL_SOCKET, libc::SO_RCVBUF, v).map_err(Error::Io)?;
        }
        self.sock.get_rx_buf_sz().map_err(Error::Io)
    }

    /// Sets how long a receive may block (`None`: forever).
    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) -> Result<(), Error> {
        let tv = match t {
            Some(d) => libc::timeval {
                tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
                // a zero duration would mean "forever" to the kernel: round up to 1 µs
                tv_usec: libc::suseconds_t::from(d.subsec_micros().max(u32::from(d.is_zero()))),
            },
            None => libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
        };
        // SAFETY: `tv` is a valid timeval that outlives the call; the length passed is its exact size.
        let rc = unsafe {
            libc::setsockopt(
                self.sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            Err(Error::Io(std::io::Error::last_os_error()))
        } else {
            Ok(())
        }
    }

    /// Attaches a classic BPF program to this socket (`SO_ATTACH_FILTER`), or detaches the current one
    /// when `prog` is empty (`SO_DETACH_FILTER`; no filter attached is not an error).
    pub(crate) fn attach_filter(&self, prog: &[crate::event_filter::Insn]) -> Result<(), Error> {
        if prog.is_empty() {
            return match setsockopt_int(&self.sock, libc::SOL_SOCKET, libc::SO_DETACH_FILTER, 0) {
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
                r => r.map_err(Error::Io),
            };
        }
        let mut code: Vec<libc::sock_filter> = prog
            .iter()
            .map(|i| libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect();
        let fprog = libc::sock_fprog {
            len: u16::try_from(code.len()).map_err(|_| Error::Invalid)?,
            filter: code.as_mut_ptr(),
        };
        // SAFETY: `fprog` points at `code`, which holds `len` instructions and outlives the call; the
        // kernel copies the program. The length passed is the exact size of `fprog`.
        let rc = unsafe {
            libc::setsockopt(
                self.sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                (&fprog as *const libc::sock_fprog).cast(),
                std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            Err(Error::Io(std::io::Error::last_os_error()))
        } else {
            Ok(())
        }
    }

    /// The underlying netlink-sys socket (for options this type does not wrap).
    pub(crate) fn inner(&self) -> &Socket {
        &self.sock
    }

    /// Switches `O_NONBLOCK` on or off: a receive with nothing queued then returns at once
    /// ([`CtSocket::recv`] gives `Ok(None)`) instead of waiting.
    pub(crate) fn set_nonblocking(&self, on: bool) -> Result<(), Error> {
        self.sock.set_non_blocking(on).map_err(Error::Io)
    }

    /// A fresh sequence number.
    pub(crate) fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        if self.seq == 0 {
            self.seq = 1;
        }
        self.seq
    }

    /// Sets the last used sequence number (after a batch used a consecutive run).
    pub(crate) fn set_seq(&mut self, seq: u32) {
        self.seq = seq;
    }

    /// Sends one datagram (one or many netlink messages) to the kernel.
    pub(crate) fn send(&self, buf: &[u8]) -> Result<(), Error> {
        let n = self.sock.send(buf, 0).map_err(Error::from_io)?;
        if n != buf.len() {
            return Err(Error::Protocol("short netlink send"));
        }
        Ok(())
    }

    /// Receives one datagram into the internal buffer; returns its length. `Ok(None)` when a read timeout
    /// elapsed. `ENOBUFS` (the kernel dropped messages for this socket) becomes [`Error::Overrun`].
    pub(crate) fn recv(&mut self) -> Result<Option<usize>, Error> {
        loop {
            let mut slice: &mut [u8] = &mut self.rbuf[..];
            match self.sock.recv(&mut slice, libc::MSG_TRUNC) {
                Ok(n) if n > self.rbuf.len() => {
                    self.len = 0;
                    return Err(Error::Decode(DecodeError::Truncated {
                        what: "netlink datagram larger than the receive buffer",
                        offset: 0,
                        expected: n,
                        actual: self.rbuf.len(),
                    }));
                }
                Ok(n) => {
                    self.len = n;
                    return Ok(Some(n));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    self.len = 0;
                    return Ok(None);
                }
                Err(e) => {
                    self.len = 0;
                    return Err(Error::from_io(e));
                }
            }
        }
    }

    /// The datagram last received by [`CtSocket::recv`].
    pub(crate) fn received(&self) -> &[u8] {
        &self.rbuf[..self.len.min(self.rbuf.len())]
    }

    /// Sends a request and reads answers until the acknowledgement (`NLMSG_ERROR` with code 0) or the end
    /// of a dump (`NLMSG_DONE`) for sequence `seq`. Every other message with that sequence goes to
    /// `on_msg`. A negative error code ends the exchange with the typed error; messages for other sequence
    /// numbers (late answers to an abandoned request) are skipped.
    pub(crate) fn transact(
        &mut self,
        req: &[u8],
        seq: u32,
        mut on_msg: impl FnMut(Msg<'_>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.send(req)?;
        loop {
            if self.recv()?.is_none() {
                return Err(Error::Io(std::io::ErrorKind::TimedOut.into()));
            }
            let mut result: Option<Result<(), Error>> = None;
            for m in Msgs::new(self.received()) {
                let m = m?;
                if m.seq != seq {
                    continue;
                }
                match m.kind {
                    NLMSG_ERROR => {
                        let code = m.error_code()?;
                        result = Some(if code == 0 {
                            Ok(())
                        } else {
                            Err(Error::from_nl_code(code))
                        });
                        break;
                    }
                    NLMSG_DONE => {
                        let code = m.error_code().unwrap_or(0);
                        result = Some(if code < 0 {
                            Err(Error::from_nl_code(code))
                        } else {
                            Ok(())
                        });
                        break;
                    }
                    NLMSG_OVERRUN => {
                        result = Some(Err(Error::Overrun));
                        break;
                    }
                    _ => {
                        if let Err(e) = on_msg(m) {
                            result = Some(Err(e));
                            break;
                        }
                    }
                }
            }
            if let Some(r) = result {
                return r;
            }
        }
    }
}

impl AsFd for CtSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl AsRawFd for CtSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

fn setsockopt_int(
    sock: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    v: libc::c_int,
) -> std::io::Result<()> {
    // SAFETY: `v` is a valid c_int that outlives the call; the length passed is its exact size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A starting sequence number that differs between sockets and runs (like `time(NULL)` in libmnl users).
fn seed_seq() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or(1);
    t & 0x3fff_ffff
}
