//! The only module that touches the kernel: one `NETLINK_GENERIC` socket, sends and receives datagrams.
//!
//! It holds the crate's only `unsafe` code: one `recvmmsg(2)` call, which netlink-sys does not wrap.
//! A dump's last data datagram and its `NLMSG_DONE` are queued by the kernel during the same `recvmsg`,
//! so receiving up to two datagrams per call saves one system call per dump (per listed service).
#![allow(unsafe_code)]

use crate::error::{Error, Result};
use crate::wire::{self, GenlHeader, NLM_F_REQUEST};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_GENERIC};

/// Default size of the user buffer passed to `recv`: the kernel sizes each dump reply to the largest
/// buffer a socket has received into, capped at 32 KiB, so anything at or above that is the fastest.
pub(crate) const DEFAULT_RECV_LEN: usize = 64 * 1024;

/// A bound generic-netlink socket with a reusable receive buffer.
#[derive(Debug)]
pub(crate) struct NlSocket {
    sock: Socket,
    buf: Vec<u8>,
    recv_len: usize,
    seq: u32,
    /// Lengths of the datagrams of the last [`NlSocket::recv_batch`].
    lens: [usize; BATCH],
}

/// Datagrams per [`NlSocket::recv_batch`].
const BATCH: usize = 2;

impl NlSocket {
    /// Opens and binds a `NETLINK_GENERIC` socket. Acks are capped (`NETLINK_CAP_ACK`) so a batch's acks
    /// stay small in the receive queue.
    /// `recv_len` is the user buffer of every `recv`; the kernel remembers the largest one a socket has
    /// used and sizes dump datagrams to it (capped at 32 KiB), so it is fixed for the socket's life.
    pub fn open(recv_len: usize) -> Result<Self> {
        let recv_len = recv_len.max(4096);
        let mut sock = Socket::new(NETLINK_GENERIC)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        // Best effort: older kernels lack it, and it only makes acks smaller.
        let _ = sock.set_cap_ack(true);
        let _ = sock.set_ext_ack(false);
        Ok(NlSocket {
            sock,
            buf: vec![0; recv_len * BATCH],
            recv_len,
            seq: 1,
            lens: [0; BATCH],
        })
    }

    /// Sets the socket's `SO_RCVBUF` (the kernel doubles it and caps it at `net.core.rmem_max`).
    pub fn set_rcvbuf(&self, bytes: usize) -> Result<()> {
        self.sock.set_rx_buf_sz(bytes as libc::c_int)?;
        Ok(())
    }

    /// The next sequence number.
    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Sends one datagram (possibly many messages).
    pub fn send(&self, bytes: &[u8]) -> Result<()> {
        let n = self.sock.send(bytes, 0)?;
        if n != bytes.len() {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                "short netlink send",
            )));
        }
        Ok(())
    }

    /// Receives one datagram into the internal buffer and returns it. A datagram larger than the buffer is
    /// an error (its tail is lost), never silently cut.
    pub fn recv(&mut self) -> Result<&[u8]> {
        loop {
            let mut slice: &mut [u8] = &mut self.buf[..self.recv_len];
            match self.sock.recv(&mut slice, libc::MSG_TRUNC) {
                Ok(n) if n > self.recv_len => {
                    return Err(Error::Decode(crate::error::DecodeError::Truncated {
                        what: "netlink datagram",
                        offset: 0,
                        expected: n,
                        actual: self.recv_len,
                    }));
                }
                Ok(n) => return Ok(&self.buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return Err(Error::Overrun),
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }

    /// Receives one datagram, waiting for it, plus one more if it is already queued (`recvmmsg` with
    /// `MSG_WAITFORONE`). Returns how many; read them with [`NlSocket::datagram`]. A truncated datagram is
    /// an error.
    pub fn recv_batch(&mut self) -> Result<usize> {
        use std::os::fd::AsRawFd;
        let len = self.recv_len;
        let (first, second) = self.buf.split_at_mut(len);
        let mut iov = [
            libc::iovec {
                iov_base: first.as_mut_ptr().cast(),
                iov_len: len,
            },
            libc::iovec {
                iov_base: second.as_mut_ptr().cast(),
                iov_len: len,
            },
        ];
        // SAFETY: an all-zero mmsghdr is a valid "no name, no control" header.
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
        }
        let n = loop {
            // SAFETY: `msgs` holds BATCH headers, each pointing at one iovec of `len` writable bytes inside
            // `self.buf` (split into two disjoint halves above), all alive until the call returns; the
            // kernel writes at most `iov_len` bytes per message and fills `msg_len`/`msg_flags`.
            let rc = unsafe {
                libc::recvmmsg(
                    self.sock.as_raw_fd(),
                    msgs.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    libc::MSG_WAITFORONE,
                    std::ptr::null_mut(),
                )
            };
            if rc >= 0 {
                break rc as usize;
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ENOBUFS) => return Err(Error::Overrun),
                _ => return Err(Error::Io(e)),
            }
        };
        for (i, m) in msgs.iter().take(n).enumerate() {
            if m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                return Err(Error::Decode(crate::error::DecodeError::Truncated {
                    what: "netlink datagram",
                    offset: 0,
                    expected: len + 1,
                    actual: len,
                }));
            }
            self.lens[i] = (m.msg_len as usize).min(len);
        }
        Ok(n)
    }

    /// Datagram `i` of the last [`NlSocket::recv_batch`].
    pub fn datagram(&self, i: usize) -> &[u8] {
        let len = self.lens.get(i).copied().unwrap_or(0);
        let start = i * self.recv_len;
        self.buf.get(start..start + len).unwrap_or_default()
    }

    /// Resolves a generic-netlink family id by name (`CTRL_CMD_GETFAMILY`).
    pub fn resolve_family(&mut self, name: &str) -> Result<u16> {
        let seq = self.next_seq();
        let mut req = Vec::with_capacity(64);
        wire::build_request(
            &mut req,
            wire::GENL_ID_CTRL,
            NLM_F_REQUEST,
            seq,
            GenlHeader {
                cmd: wire::CTRL_CMD_GETFAMILY,
                version: 1,
            },
            |w| w.string("CTRL_ATTR_FAMILY_NAME", wire::CTRL_ATTR_FAMILY_NAME, name),
        )?;
        self.send(&req)?;
        loop {
            let data = self.recv()?;
            for m in wire::Messages::new(data) {
                let m = m?;
                if m.header.seq != seq {
                    continue;
                }
                match m.header.kind {
                    wire::NLMSG_ERROR => {
                        let errno = wire::parse_error_payload(m.payload)?;
                        return Err(if errno == libc::ENOENT {
                            Error::FamilyNotFound
                        } else {
                            Error::from_errno(errno)
                        });
                    }
                    wire::GENL_ID_CTRL => {
                        let body = m.payload.get(wire::GENL_HDRLEN..).unwrap_or_default();
                        return Ok(wire::parse_family_id(body)?);
                    }
                    _ => continue,
                }
            }
        }
    }
}
