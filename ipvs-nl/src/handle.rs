//! The [`Ipvs`] handle: every IPVS operation over one socket, with the family resolved once.

use crate::error::{DecodeError, EmitError, Error, Result};
use crate::socket::NlSocket;
use crate::wire::{
    self, Daemon, DaemonState, Decoded, Destination, Family, GenlHeader, IPVS_GENL_NAME,
    IPVS_GENL_VERSION, Info, NLM_F_DUMP, NLM_F_REQUEST, Op, Reply, Service, ServiceKey, Timeouts,
    Writer, cmd,
};
use std::collections::VecDeque;
use std::net::IpAddr;

/// Receive length of the destination-dump socket.
const SMALL_RECV_LEN: usize = 8192;

/// How [`Ipvs::open_with`] sets up its handle.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// The user buffer of every `recv` (at least 4096; default 64 KiB). The kernel fills each dump
    /// datagram up to the largest buffer the socket has received into (at most 32 KiB), and IPVS restarts
    /// its dump walk from the top for every datagram, so small buffers make listings of many services
    /// quadratic. Fixed for the handle's life because the kernel never forgets a larger one.
    pub recv_len: usize,
    /// Requests per datagram in [`Ipvs::apply`] (at least 1; default 128).
    pub batch: usize,
    /// Whether listings decode the stats attributes (default true); see [`Ipvs::set_decode_stats`].
    pub decode_stats: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            recv_len: crate::socket::DEFAULT_RECV_LEN,
            batch: 128,
            decode_stats: true,
        }
    }
}

/// A handle on the kernel's IPVS tables: one generic-netlink socket, the "IPVS" family resolved once.
/// Every call works in the network namespace the handle was opened in.
#[derive(Debug)]
pub struct Ipvs {
    sock: NlSocket,
    /// A second socket with a small receive buffer for per-service destination dumps (opened on first use):
    /// the kernel allocates each dump datagram at the socket's largest receive size, and one page is
    /// cheaper than 32 KiB for the usual handful of destinations.
    small: Option<NlSocket>,
    /// Whether replies' stats attributes are decoded.
    stats: bool,
    family: u16,
    req: Vec<u8>,
    /// Requests per `send` in [`Ipvs::apply`].
    batch: usize,
}

impl Ipvs {
    /// Opens a socket and resolves the IPVS family, with the default [`Options`].
    /// [`Error::FamilyNotFound`] when the kernel has no IPVS.
    pub fn open() -> Result<Self> {
        Ipvs::open_with(&Options::default())
    }

    /// Like [`Ipvs::open`] with the given options.
    pub fn open_with(options: &Options) -> Result<Self> {
        let mut sock = NlSocket::open(options.recv_len)?;
        let family = sock.resolve_family(IPVS_GENL_NAME)?;
        // Room for a batch's acks; the kernel caps this at rmem_max (best effort).
        let _ = sock.set_rcvbuf(4 << 20);
        Ok(Ipvs {
            sock,
            small: None,
            stats: options.decode_stats,
            family,
            req: Vec::with_capacity(64 * 1024),
            batch: options.batch.max(1),
        })
    }

    /// Whether listings decode the stats attributes (default true). Listings that print no counters (like
    /// `ipvsadm -S`) skip about half of the decoding work with `false`; `stats`/`stats64` are then `None`.
    pub fn set_decode_stats(&mut self, on: bool) {
        self.stats = on;
    }

    /// Sets the socket's `SO_RCVBUF` (the kernel doubles it and caps it at `net.core.rmem_max`).
    pub fn set_rcvbuf(&self, bytes: usize) -> Result<()> {
        self.sock.set_rcvbuf(bytes)
    }

    fn dump(
        &mut self,
        small: bool,
        c: u8,
        fallback: Option<Family>,
        body: impl FnOnce(&mut Writer<'_>) -> Result<(), EmitError>,
    ) -> Result<Dump<'_>> {
        if small && self.small.is_none() {
            self.small = Some(NlSocket::open(SMALL_RECV_LEN)?);
        }
        let Ipvs {
            sock,
            small: small_sock,
            req,
            family,
            stats,
            ..
        } = self;
        let sock = match small_sock {
            Some(s) if small => s,
            _ => sock,
        };
        let seq = sock.next_seq();
        req.clear();
        wire::build_request(
            req,
            *family,
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            GenlHeader {
                cmd: c,
                version: IPVS_GENL_VERSION,
            },
            body,
        )?;
        sock.send(req)?;
        Ok(Dump {
            sock,
            family: *family,
            stats: *stats,
            seq,
            fallback,
            pending: VecDeque::new(),
            done: false,
        })
    }

    /// Streams every service (with stats unless turned off). Destinations are listed per service by
    /// [`Ipvs::destinations`].
    pub fn services(&mut self) -> Result<impl Iterator<Item = Result<Service>> + '_> {
        let d = self.dump(false, cmd::GET_SERVICE, None, |_| Ok(()))?;
        Ok(d.filter_map(|r| match r {
            Ok(Reply::Service(s)) => Some(Ok(s)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        }))
    }

    /// Streams the destinations of one service.
    pub fn destinations(
        &mut self,
        key: &ServiceKey,
    ) -> Result<impl Iterator<Item = Result<Destination>> + '_> {
        let k = *key;
        let d = self.dump(true, cmd::GET_DEST, Some(key.family()), move |w| {
            k.write_nested(w)
        })?;
        Ok(d.filter_map(|r| match r {
            Ok(Reply::Destination(x)) => Some(Ok(x)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        }))
    }

    /// The running sync daemons (zero, one or two: master and backup).
    pub fn daemons(&mut self) -> Result<Vec<Daemon>> {
        let d = self.dump(false, cmd::GET_DAEMON, None, |_| Ok(()))?;
        let mut out = Vec::new();
        for r in d {
            if let Reply::Daemon(x) = r? {
                out.push(x);
            }
        }
        Ok(out)
    }

    /// Sends a non-dump get and returns its single reply.
    fn get(
        &mut self,
        c: u8,
        fallback: Option<Family>,
        body: impl FnOnce(&mut Writer<'_>) -> Result<(), EmitError>,
    ) -> Result<Reply> {
        let seq = self.sock.next_seq();
        self.req.clear();
        wire::build_request(
            &mut self.req,
            self.family,
            NLM_F_REQUEST,
            seq,
            GenlHeader {
                cmd: c,
                version: IPVS_GENL_VERSION,
            },
            body,
        )?;
        self.sock.send(&self.req)?;
        let family = self.family;
        loop {
            let data = self.sock.recv()?;
            for m in wire::decode_datagram(data, family, fallback, true) {
                match m? {
                    Decoded::Reply { seq: s, reply } if s == seq => return Ok(reply),
                    Decoded::Ack { seq: s, errno } if s == seq && errno != 0 => {
                        return Err(Error::from_errno(errno));
                    }
                    _ => {}
                }
            }
        }
    }

    /// One service with its stats. [`Error::NoSuchService`] if absent.
    pub fn service(&mut self, key: &ServiceKey) -> Result<Service> {
        let k = *key;
        match self.get(cmd::GET_SERVICE, None, move |w| k.write_nested(w))? {
            Reply::Service(s) => Ok(s),
            _ => Err(Error::Decode(DecodeError::Missing {
                what: "IPVS_CMD_ATTR_SERVICE",
            })),
        }
    }

    /// Connection timeouts.
    pub fn timeouts(&mut self) -> Result<Timeouts> {
        match self.get(cmd::GET_CONFIG, None, |_| Ok(()))? {
            Reply::Timeouts(t) => Ok(t),
            _ => Err(Error::Decode(DecodeError::Missing {
                what: "IPVS_CMD_ATTR_TIMEOUT_TCP",
            })),
        }
    }

    /// Version and connection table size.
    pub fn info(&mut self) -> Result<Info> {
        match self.get(cmd::GET_INFO, None, |_| Ok(()))? {
            Reply::Info(i) => Ok(i),
            _ => Err(Error::Decode(DecodeError::Missing {
                what: "IPVS_INFO_ATTR_VERSION",
            })),
        }
    }

    /// Runs one change and waits for its acknowledgement.
    pub fn exec(&mut self, op: &Op) -> Result<()> {
        let mut r = self.apply(std::slice::from_ref(op))?;
        r.pop().unwrap_or(Ok(()))
    }

    /// Pipelines many changes (many requests per datagram, each with `NLM_F_ACK`) and returns each one's
    /// result, in order. The outer error is for the socket failing, or a change that cannot be encoded
    /// (then nothing was sent). The kernel applies each request on its own: a failed one does not undo
    /// or stop the others.
    pub fn apply(&mut self, ops: &[Op]) -> Result<Vec<Result<()>>> {
        // Encode everything first, so an unencodable change fails before anything is applied.
        let mut sizes = Vec::with_capacity(ops.len());
        let mut encoded = Vec::new();
        for op in ops {
            let before = encoded.len();
            // Sequence numbers are patched per chunk below; 0 is a placeholder.
            op.write_request(self.family, 0, &mut encoded)?;
            sizes.push(encoded.len() - before);
        }
        let mut results: Vec<Option<Result<()>>> = (0..ops.len()).map(|_| None).collect();
        let mut offset = 0;
        for (chunk_no, chunk) in sizes.chunks(self.batch).enumerate() {
            let base = chunk_no * self.batch;
            let first = self.sock.next_seq();
            self.req.clear();
            for (i, len) in chunk.iter().enumerate() {
                let seq = if i == 0 { first } else { self.sock.next_seq() };
                let start = self.req.len();
                self.req.extend_from_slice(&encoded[offset..offset + len]);
                // nlmsghdr.seq is bytes 8..12.
                self.req[start + 8..start + 12].copy_from_slice(&seq.to_ne_bytes());
                offset += len;
            }
            self.sock.send(&self.req)?;
            let mut left = chunk.len();
            let family = self.family;
            while left > 0 {
                let data = self.sock.recv()?;
                for m in wire::decode_datagram(data, family, None, false) {
                    if let Decoded::Ack { seq, errno } = m? {
                        let idx = seq.wrapping_sub(first) as usize;
                        if idx < chunk.len() && results[base + idx].is_none() {
                            results[base + idx] = Some(if errno == 0 {
                                Ok(())
                            } else {
                                Err(Error::from_errno(errno))
                            });
                            left -= 1;
                        }
                    }
                }
            }
        }
        Ok(results.into_iter().map(|r| r.unwrap_or(Ok(()))).collect())
    }

    /// Adds a service.
    pub fn add_service(&mut self, s: &Service) -> Result<()> {
        self.exec(&Op::AddService(s.clone()))
    }
    /// Edits a service (scheduler, flags, timeout, netmask, persistence engine, and the attributes this
    /// crate does not know, as read).
    pub fn edit_service(&mut self, s: &Service) -> Result<()> {
        self.exec(&Op::EditService(s.clone()))
    }
    /// Deletes a service and its destinations.
    pub fn del_service(&mut self, key: &ServiceKey) -> Result<()> {
        self.exec(&Op::DelService(*key))
    }
    /// Adds a destination to a service.
    pub fn add_destination(&mut self, key: &ServiceKey, d: &Destination) -> Result<()> {
        self.exec(&Op::AddDest(*key, d.clone()))
    }
    /// Edits a destination.
    pub fn edit_destination(&mut self, key: &ServiceKey, d: &Destination) -> Result<()> {
        self.exec(&Op::EditDest(*key, d.clone()))
    }
    /// Deletes a destination.
    pub fn del_destination(&mut self, key: &ServiceKey, addr: IpAddr, port: u16) -> Result<()> {
        self.exec(&Op::DelDest(*key, addr, port))
    }
    /// Deletes every service.
    pub fn flush(&mut self) -> Result<()> {
        self.exec(&Op::Flush)
    }
    /// Zeroes the counters of one service, or all.
    pub fn zero(&mut self, key: Option<&ServiceKey>) -> Result<()> {
        self.exec(&Op::Zero(key.copied()))
    }
    /// Sets timeouts (zeros unchanged).
    pub fn set_timeouts(&mut self, t: &Timeouts) -> Result<()> {
        self.exec(&Op::SetTimeouts(t.clone()))
    }
    /// Starts a sync daemon.
    pub fn start_daemon(&mut self, d: &Daemon) -> Result<()> {
        self.exec(&Op::StartDaemon(d.clone()))
    }
    /// Stops a sync daemon.
    pub fn stop_daemon(&mut self, state: DaemonState) -> Result<()> {
        self.exec(&Op::StopDaemon(state))
    }
}

/// A dump in progress: yields replies as datagrams arrive. Dropping it early drains the rest, so the
/// socket stays usable.
#[derive(Debug)]
struct Dump<'a> {
    sock: &'a mut NlSocket,
    family: u16,
    stats: bool,
    seq: u32,
    fallback: Option<Family>,
    pending: VecDeque<Reply>,
    done: bool,
}

impl Iterator for Dump<'_> {
    type Item = Result<Reply>;

    fn next(&mut self) -> Option<Result<Reply>> {
        loop {
            if let Some(r) = self.pending.pop_front() {
                return Some(Ok(r));
            }
            if self.done {
                return None;
            }
            let family = self.family;
            let n = match self.sock.recv_batch() {
                Ok(n) => n,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            let mut decoded = Vec::new();
            for i in 0..n {
                decoded.extend(wire::decode_datagram(
                    self.sock.datagram(i),
                    family,
                    self.fallback,
                    self.stats,
                ));
            }
            for m in decoded {
                match m {
                    Ok(Decoded::Reply { seq, reply }) if seq == self.seq => {
                        self.pending.push_back(reply)
                    }
                    Ok(Decoded::Done { seq, errno }) if seq == self.seq => {
                        self.done = true;
                        if errno != 0 {
                            return Some(Err(Error::from_errno(errno)));
                        }
                    }
                    Ok(Decoded::Ack { seq, errno }) if seq == self.seq => {
                        self.done = true;
                        if errno != 0 {
                            return Some(Err(Error::from_errno(errno)));
                        }
                    }
                    Ok(_) => {}
                    Err(e) => return Some(Err(Error::Decode(e))),
                }
            }
        }
    }
}

impl Drop for Dump<'_> {
    fn drop(&mut self) {
        while !self.done {
            match self.next() {
                None | Some(Err(Error::Io(_) | Error::Overrun)) => break,
                Some(_) => {}
            }
        }
    }
}
