//! The [`Ipvs`] handle: every IPVS operation over one socket, with the family resolved once.

use crate::error::{DecodeError, Error, Result};
use crate::socket::NlSocket;
use crate::wire::{
    self, AF_INET, AttrWriter, Daemon, DaemonState, Decoded, Destination, GenlHeader,
    IPVS_GENL_NAME, IPVS_GENL_VERSION, Info, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, Reply, Service,
    ServiceKey, Timeouts, cmd,
};
use std::collections::VecDeque;
use std::net::IpAddr;

/// Receive length of the destination-dump socket.
const SMALL_RECV_LEN: usize = 8192;

/// One change to the IPVS tables; [`Ipvs::apply`] pipelines many of them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// Add a service (`-A`).
    AddService(Service),
    /// Edit a service (`-E`).
    EditService(Service),
    /// Delete a service (`-D`).
    DelService(ServiceKey),
    /// Add a destination to a service (`-a`).
    AddDest(ServiceKey, Destination),
    /// Edit a destination (`-e`).
    EditDest(ServiceKey, Destination),
    /// Delete a destination (`-d`): service, address, port.
    DelDest(ServiceKey, IpAddr, u16),
    /// Delete every service (`-C`).
    Flush,
    /// Zero the counters of one service, or of all (`-Z`).
    Zero(Option<ServiceKey>),
    /// Set timeouts; zeros leave a value unchanged (`--set`).
    SetTimeouts(Timeouts),
    /// Start a sync daemon (`--start-daemon`).
    StartDaemon(Daemon),
    /// Stop a sync daemon (`--stop-daemon`).
    StopDaemon(DaemonState),
}

/// Writes a request's attributes.
type Body<'a> = Box<dyn FnOnce(&mut AttrWriter<'_>) + 'a>;

impl Op {
    /// Appends this operation's request (with `NLM_F_ACK`) to `out`.
    pub fn emit(&self, family: u16, seq: u32, out: &mut Vec<u8>) {
        let (c, body): (u8, Body<'_>) = match self {
            Op::AddService(s) => (cmd::NEW_SERVICE, Box::new(move |w| s.emit_nested(w))),
            Op::EditService(s) => (cmd::SET_SERVICE, Box::new(move |w| s.emit_nested(w))),
            Op::DelService(k) => (
                cmd::DEL_SERVICE,
                Box::new(move |w| Service::emit_key_nested(k, w)),
            ),
            Op::AddDest(k, d) => (
                cmd::NEW_DEST,
                Box::new(move |w| {
                    Service::emit_key_nested(k, w);
                    d.emit_nested(w);
                }),
            ),
            Op::EditDest(k, d) => (
                cmd::SET_DEST,
                Box::new(move |w| {
                    Service::emit_key_nested(k, w);
                    d.emit_nested(w);
                }),
            ),
            Op::DelDest(k, a, p) => (
                cmd::DEL_DEST,
                Box::new(move |w| {
                    Service::emit_key_nested(k, w);
                    Destination::emit_key_nested(a, *p, w);
                }),
            ),
            Op::Flush => (cmd::FLUSH, Box::new(|_| {})),
            Op::Zero(k) => (
                cmd::ZERO,
                Box::new(move |w| {
                    if let Some(k) = k {
                        Service::emit_key_nested(k, w);
                    }
                }),
            ),
            Op::SetTimeouts(t) => (cmd::SET_CONFIG, Box::new(move |w| t.emit(w))),
            Op::StartDaemon(d) => (cmd::NEW_DAEMON, Box::new(move |w| d.emit_nested(w, true))),
            Op::StopDaemon(st) => (
                cmd::DEL_DAEMON,
                Box::new(move |w| Daemon::new(*st, "", 0).emit_nested(w, false)),
            ),
        };
        wire::build_request(
            out,
            family,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            GenlHeader {
                cmd: c,
                version: IPVS_GENL_VERSION,
            },
            body,
        );
    }
}

/// A handle on the kernel's IPVS tables: one generic-netlink socket, the "IPVS" family resolved once.
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
    /// Opens a socket and resolves the IPVS family. [`Error::FamilyNotFound`] when the kernel has no IPVS.
    pub fn new() -> Result<Self> {
        Ipvs::with_recv_len(crate::socket::DEFAULT_RECV_LEN)
    }

    /// Like [`Ipvs::new`] with a given user buffer length for each `recv` (at least 4096). The kernel
    /// fills each dump datagram up to the largest buffer the socket has received into (at most 32 KiB), and
    /// IPVS restarts its dump walk from the top for every datagram, so small buffers make listings of many
    /// services quadratic. The length is fixed for the handle's life because the kernel never forgets it.
    pub fn with_recv_len(recv_len: usize) -> Result<Self> {
        let mut sock = NlSocket::open(recv_len)?;
        let family = sock.resolve_family(IPVS_GENL_NAME)?;
        // Room for a batch's acks; the kernel caps this at rmem_max (best effort).
        let _ = sock.set_rcvbuf(4 << 20);
        Ok(Ipvs {
            sock,
            small: None,
            stats: true,
            family,
            req: Vec::with_capacity(64 * 1024),
            batch: 128,
        })
    }

    /// The resolved family id.
    pub fn family(&self) -> u16 {
        self.family
    }

    /// Whether listings decode the stats attributes (default true). Listings that print no counters (like
    /// `ipvsadm -S`) skip about half of the decoding work with `false`; `stats`/`stats64` are then `None`.
    pub fn set_decode_stats(&mut self, on: bool) {
        self.stats = on;
    }

    /// Sets how many requests [`Ipvs::apply`] sends per datagram (at least 1).
    pub fn set_batch(&mut self, n: usize) {
        self.batch = n.max(1);
    }

    /// Sets the socket's `SO_RCVBUF`.
    pub fn set_rcvbuf(&self, bytes: usize) -> Result<()> {
        self.sock.set_rcvbuf(bytes)
    }

    fn dump(
        &mut self,
        small: bool,
        c: u8,
        af: u16,
        body: impl FnOnce(&mut AttrWriter<'_>),
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
        );
        sock.send(req)?;
        Ok(Dump {
            sock,
            family: *family,
            stats: *stats,
            seq,
            af,
            pending: VecDeque::new(),
            done: false,
        })
    }

    /// Streams every service (with stats). Destinations are listed per service by [`Ipvs::destinations`].
    pub fn services(&mut self) -> Result<impl Iterator<Item = Result<Service>> + '_> {
        let d = self.dump(false, cmd::GET_SERVICE, AF_INET, |_| {})?;
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
        let d = self.dump(true, cmd::GET_DEST, key.af(), move |w| {
            Service::emit_key_nested(&k, w)
        })?;
        Ok(d.filter_map(|r| match r {
            Ok(Reply::Destination(x)) => Some(Ok(x)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        }))
    }

    /// The running sync daemons (zero, one or two: master and backup).
    pub fn daemons(&mut self) -> Result<Vec<Daemon>> {
        let d = self.dump(false, cmd::GET_DAEMON, AF_INET, |_| {})?;
        let mut out = Vec::new();
        for r in d {
            if let Reply::Daemon(x) = r? {
                out.push(x);
            }
        }
        Ok(out)
    }

    /// Sends a non-dump get and returns its single reply.
    fn get(&mut self, c: u8, af: u16, body: impl FnOnce(&mut AttrWriter<'_>)) -> Result<Reply> {
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
        );
        self.sock.send(&self.req)?;
        let family = self.family;
        loop {
            let data = self.sock.recv()?;
            for m in wire::decode_datagram(data, family, af) {
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
        match self.get(cmd::GET_SERVICE, key.af(), move |w| {
            Service::emit_key_nested(&k, w)
        })? {
            Reply::Service(s) => Ok(s),
            _ => Err(Error::Decode(DecodeError::Missing {
                what: "IPVS_CMD_ATTR_SERVICE",
            })),
        }
    }

    /// Connection timeouts.
    pub fn timeouts(&mut self) -> Result<Timeouts> {
        match self.get(cmd::GET_CONFIG, AF_INET, |_| {})? {
            Reply::Timeouts(t) => Ok(t),
            _ => Err(Error::Decode(DecodeError::Missing {
                what: "IPVS_CMD_ATTR_TIMEOUT_TCP",
            })),
        }
    }

    /// Version and connection table size.
    pub fn info(&mut self) -> Result<Info> {
        match self.get(cmd::GET_INFO, AF_INET, |_| {})? {
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
    /// result, in order. The outer error is for the socket itself failing.
    pub fn apply(&mut self, ops: &[Op]) -> Result<Vec<Result<()>>> {
        let mut results: Vec<Option<Result<()>>> = (0..ops.len()).map(|_| None).collect();
        for (chunk_no, chunk) in ops.chunks(self.batch).enumerate() {
            let base = chunk_no * self.batch;
            self.req.clear();
            let first = self.sock.next_seq();
            for (i, op) in chunk.iter().enumerate() {
                let seq = if i == 0 { first } else { self.sock.next_seq() };
                op.emit(self.family, seq, &mut self.req);
            }
            self.sock.send(&self.req)?;
            let mut left = chunk.len();
            let family = self.family;
            while left > 0 {
                let data = self.sock.recv()?;
                for m in wire::decode_datagram(data, family, AF_INET) {
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
    /// Edits a service (scheduler, flags, timeout, netmask, persistence engine).
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
        self.exec(&Op::SetTimeouts(*t))
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
pub struct Dump<'a> {
    sock: &'a mut NlSocket,
    family: u16,
    stats: bool,
    seq: u32,
    af: u16,
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
                decoded.extend(wire::decode_datagram_with(
                    self.sock.datagram(i),
                    family,
                    self.af,
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
            if let Err(Error::Io(_) | Error::Overrun) =
                self.next().unwrap_or(Ok(Reply::Other(0))).map(|_| ())
            {
                break;
            }
        }
    }
}
