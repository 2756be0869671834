//! The request handle [`Conntrack`] and single-entry operations: get, create, update, delete, flush.

use crate::batch::Batch;
use crate::dump::{Dump, DumpFilter, dump_request};
use crate::error::{EmitError, Error};
use crate::socket::CtSocket;
use crate::wire::{
    Entry, Family, NFNL_SUBSYS_CTNETLINK, Out, Status, Tuple, VecOut, ct_msg, cta, finish_msg,
    start_msg,
};
use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST};
use std::time::Duration;

/// Which tuple a [`Key`] names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `CTA_TUPLE_ORIG`.
    #[default]
    Original,
    /// `CTA_TUPLE_REPLY`.
    Reply,
}

/// Identifies one entry for get and delete: a tuple in one direction, optionally pinned to a kernel id
/// (the operation then fails with [`Error::NotFound`] if the entry with that tuple has another id) and a zone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// The tuple.
    pub tuple: Tuple,
    /// Which direction the tuple is.
    pub dir: Direction,
    /// `CTA_ID` to match.
    pub id: Option<u32>,
    /// `CTA_ZONE`.
    pub zone: Option<u16>,
}

impl Key {
    /// The entry whose original tuple is `tuple`.
    pub fn orig(tuple: Tuple) -> Self {
        Key {
            tuple,
            dir: Direction::Original,
            id: None,
            zone: None,
        }
    }
    /// The entry whose reply tuple is `tuple`.
    pub fn reply(tuple: Tuple) -> Self {
        Key {
            tuple,
            dir: Direction::Reply,
            id: None,
            zone: None,
        }
    }
    /// Also require this kernel id.
    pub fn with_id(mut self, id: u32) -> Self {
        self.id = Some(id);
        self
    }
    /// In this zone.
    pub fn with_zone(mut self, zone: u16) -> Self {
        self.zone = Some(zone);
        self
    }
    /// The key of an entry: its original tuple, id and zone. `None` when it has no original tuple.
    pub fn of(e: &Entry) -> Option<Self> {
        Some(Key {
            tuple: e.orig.clone()?,
            dir: Direction::Original,
            id: e.id,
            zone: e.zone,
        })
    }

    pub(crate) fn emit<O: Out>(&self, o: &mut O) {
        let kind = match self.dir {
            Direction::Original => cta::TUPLE_ORIG,
            Direction::Reply => cta::TUPLE_REPLY,
        };
        self.tuple.emit_as(o, kind);
        if let Some(z) = self.zone {
            o.u16_be(cta::ZONE, z);
        }
        if let Some(id) = self.id {
            o.u32_be(cta::ID, id);
        }
    }
}

/// What a flush did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlushOutcome {
    /// True when the kernel did the filtering (one request); false when it was a dump plus batched delete.
    pub kernel_side: bool,
    /// Entries deleted, when known (only for the dump-plus-delete path).
    pub deleted: Option<usize>,
    /// Entries that vanished between the dump and the delete (already gone, not an error).
    pub vanished: usize,
}

/// A handle on the conntrack table of the calling thread's network namespace.
///
/// One handle owns one netlink socket and its buffers; operations take `&mut self` and block. Open one per
/// thread that needs one (the library has no threads or locks of its own).
#[derive(Debug)]
pub struct Conntrack {
    pub(crate) sock: CtSocket,
    pub(crate) sbuf: Vec<u8>,
}

impl Conntrack {
    /// Opens a request socket.
    pub fn open() -> Result<Self, Error> {
        Ok(Conntrack {
            sock: CtSocket::open()?,
            sbuf: Vec::with_capacity(128 * 1024),
        })
    }

    /// Sets how long a request may wait for the kernel's answer (`None`, the default: forever). A request
    /// that times out fails with an [`Error::Io`] of kind `TimedOut`.
    pub fn set_timeout(&mut self, t: Option<Duration>) -> Result<(), Error> {
        self.sock.set_read_timeout(t)
    }

    /// Sets the kernel receive queue of the request socket (`SO_RCVBUFFORCE`, falling back to
    /// `SO_RCVBUF`); returns the size the kernel reports afterwards (twice the request: it counts its
    /// bookkeeping). The default, 8 MiB, holds the error answers of the largest batch chunk.
    pub fn set_rcvbuf(&mut self, bytes: usize) -> Result<usize, Error> {
        self.sock.set_rcvbuf(bytes)
    }

    /// Streams the whole table (or what `filter` selects).
    pub fn dump(&mut self, filter: &DumpFilter) -> Result<Dump<'_, Entry>, Error> {
        self.dump_kind(ct_msg::GET, filter)
    }

    /// Streams the dying list (entries being destroyed, still referenced).
    pub fn dump_dying(&mut self) -> Result<Dump<'_, Entry>, Error> {
        self.dump_kind(ct_msg::GET_DYING, &DumpFilter::default())
    }

    /// Streams the unconfirmed list (entries not yet inserted in the table).
    pub fn dump_unconfirmed(&mut self) -> Result<Dump<'_, Entry>, Error> {
        self.dump_kind(ct_msg::GET_UNCONFIRMED, &DumpFilter::default())
    }

    /// Zeroes the counters of every entry `filter` selects (`IPCTNL_MSG_CT_GET_CTRZERO`), streaming each
    /// entry with its counters as they were before zeroing.
    pub fn zero_counters(&mut self, filter: &DumpFilter) -> Result<Dump<'_, Entry>, Error> {
        self.dump_kind(ct_msg::GET_CTRZERO, filter)
    }

    fn dump_kind(&mut self, msg: u8, filter: &DumpFilter) -> Result<Dump<'_, Entry>, Error> {
        let seq = self.sock.next_seq();
        dump_request(&mut self.sbuf, NFNL_SUBSYS_CTNETLINK, msg, seq, filter)?;
        let uf = (!filter.is_empty()).then(|| filter.clone());
        Dump::start(&mut self.sock, &self.sbuf, seq, uf)
    }

    /// Reads one entry.
    pub fn get(&mut self, key: &Key) -> Result<Entry, Error> {
        self.get_kind(ct_msg::GET, key)
    }

    /// Reads one entry and zeroes its counters (`IPCTNL_MSG_CT_GET_CTRZERO` on one tuple); the entry comes
    /// back with the counters as they were before.
    pub fn get_zero_counters(&mut self, key: &Key) -> Result<Entry, Error> {
        self.get_kind(ct_msg::GET_CTRZERO, key)
    }

    fn get_kind(&mut self, msg: u8, key: &Key) -> Result<Entry, Error> {
        let seq = self.sock.next_seq();
        self.sbuf.clear();
        let start = start_msg(
            &mut self.sbuf,
            NFNL_SUBSYS_CTNETLINK,
            msg,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            key.tuple.family().to_af(),
            0,
        );
        let mut o = VecOut::new(&mut self.sbuf);
        key.emit(&mut o);
        check(&o, "key")?;
        finish_msg(&mut self.sbuf, start);
        let mut out = None;
        self.sock.transact(&self.sbuf, seq, |m| {
            if m.subsys() == NFNL_SUBSYS_CTNETLINK && out.is_none() {
                let (family, _, _, attrs) = m.nfgen()?;
                out = Some(Entry::parse_attrs(
                    crate::wire::family_at(family, crate::wire::NLMSG_HDRLEN)?,
                    attrs,
                )?);
            }
            Ok(())
        })?;
        out.ok_or(Error::Protocol("get acknowledged without an entry"))
    }

    /// Creates an entry (fails with [`Error::Exists`] if its tuple is taken). The entry needs at least its
    /// original and reply tuples and a timeout; see [`Entry`].
    pub fn create(&mut self, e: &Entry) -> Result<(), Error> {
        self.entry_request(e, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Changes an existing entry (fails with [`Error::NotFound`] if there is none): timeout, mark, status
    /// bits that may be set, labels, protocol state, helper, sequence adjustment.
    pub fn update(&mut self, e: &Entry) -> Result<(), Error> {
        self.entry_request(e, NLM_F_REQUEST | NLM_F_ACK)
    }

    fn entry_request(&mut self, e: &Entry, flags: u16) -> Result<(), Error> {
        let seq = self.sock.next_seq();
        self.sbuf.clear();
        encode_entry_msg(&mut self.sbuf, ct_msg::NEW, flags, seq, e)?;
        self.sock.transact(&self.sbuf, seq, |_| Ok(()))
    }

    /// Deletes one entry.
    pub fn delete(&mut self, key: &Key) -> Result<(), Error> {
        let seq = self.sock.next_seq();
        self.sbuf.clear();
        encode_delete_msg(&mut self.sbuf, NLM_F_REQUEST | NLM_F_ACK, seq, key)?;
        self.sock.transact(&self.sbuf, seq, |_| Ok(()))
    }

    /// Deletes every entry of every family.
    pub fn flush_all(&mut self) -> Result<(), Error> {
        self.flush_kernel(None, &DumpFilter::default())
    }

    /// Deletes every entry of one family. Uses nfgenmsg version 1: with version 0 the kernel ignores the
    /// family and flushes everything.
    pub fn flush_family(&mut self, family: Family) -> Result<(), Error> {
        self.flush_kernel(Some(family), &DumpFilter::default())
    }

    /// Deletes the entries `filter` selects.
    ///
    /// When the kernel can apply the whole filter ([`DumpFilter::kernel_exact`]) this is one request:
    /// family, mark and status on every kernel, zone and tuple fields through `CTA_FILTER` on kernels that
    /// take it on a flush (6.11 and later). Otherwise (older kernels answer `EOPNOTSUPP`; IPv6 address
    /// fields; ports of protocols other than TCP/UDP) it is a filtered dump followed by a batched delete
    /// of what it returned, each entry pinned by its id so that a tuple reused in between is not hit.
    ///
    /// Tuple fields without a family (none given, no address to imply one) are run once for `AF_INET`
    /// and once for `AF_INET6`: the kernel parses `CTA_FILTER` tuples by the nfgenmsg family and answers
    /// `EOPNOTSUPP` for `AF_UNSPEC` (`ctnetlink_parse_tuple_filter`). The outcome then sums both passes
    /// (`kernel_side` only when both were).
    pub fn flush(&mut self, filter: &DumpFilter) -> Result<FlushOutcome, Error> {
        filter.check()?;
        if filter.effective_family().is_none() && filter.has_tuple_fields() {
            let mut total: Option<FlushOutcome> = None;
            for family in [Family::Ipv4, Family::Ipv6] {
                let one = self.flush_one(&DumpFilter {
                    family: Some(family),
                    ..filter.clone()
                })?;
                total = Some(match total {
                    None => one,
                    Some(t) => FlushOutcome {
                        kernel_side: t.kernel_side && one.kernel_side,
                        deleted: t.deleted.zip(one.deleted).map(|(a, b)| a + b),
                        vanished: t.vanished + one.vanished,
                    },
                });
            }
            return total.ok_or(Error::Emit(EmitError::Invalid {
                what: "flush",
                reason: "no family to flush",
            }));
        }
        self.flush_one(filter)
    }

    fn flush_one(&mut self, filter: &DumpFilter) -> Result<FlushOutcome, Error> {
        if filter.kernel_exact() {
            match self.flush_kernel(filter.effective_family(), filter) {
                Ok(()) => {
                    return Ok(FlushOutcome {
                        kernel_side: true,
                        deleted: None,
                        vanished: 0,
                    });
                }
                Err(Error::Kernel { errno }) if errno == libc::EOPNOTSUPP => {}
                Err(e) => return Err(e),
            }
        }
        let mut keys = Vec::new();
        for e in self.dump(filter)? {
            if let Some(k) = Key::of(&e?) {
                keys.push(k);
            }
        }
        let mut batch = self.batch();
        for k in &keys {
            batch.delete(k)?;
        }
        let report = batch.finish()?;
        let mut vanished = 0;
        for (_, e) in &report.failures {
            match e {
                Error::NotFound => vanished += 1,
                other => return Err(Error::from_errno(other.errno().unwrap_or(libc::EIO))),
            }
        }
        Ok(FlushOutcome {
            kernel_side: false,
            deleted: Some(report.ok),
            vanished,
        })
    }

    fn flush_kernel(&mut self, family: Option<Family>, filter: &DumpFilter) -> Result<(), Error> {
        let seq = self.sock.next_seq();
        self.sbuf.clear();
        let start = start_msg(
            &mut self.sbuf,
            NFNL_SUBSYS_CTNETLINK,
            ct_msg::DELETE,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            family.map_or(0, Family::to_af),
            1,
        );
        let mut o = VecOut::new(&mut self.sbuf);
        filter.emit(&mut o, true);
        check(&o, "flush filter")?;
        finish_msg(&mut self.sbuf, start);
        self.sock.transact(&self.sbuf, seq, |_| Ok(()))
    }

    /// Starts a batch of creates, updates and deletes sent many per `sendmsg`.
    pub fn batch(&mut self) -> Batch<'_> {
        Batch::new(self)
    }
}

pub(crate) fn check<O: Out>(o: &O, what: &'static str) -> Result<(), Error> {
    if o.overflowed() {
        Err(Error::Emit(EmitError::TooLong { what }))
    } else {
        Ok(())
    }
}

/// Appends one `IPCTNL_MSG_CT_NEW`-style message for `e` to `buf`.
pub(crate) fn encode_entry_msg(
    buf: &mut Vec<u8>,
    msg: u8,
    flags: u16,
    seq: u32,
    e: &Entry,
) -> Result<(), Error> {
    let family = match (&e.orig, &e.reply) {
        (Some(t), _) | (None, Some(t)) => t.family(),
        _ => e.family,
    };
    let start = start_msg(
        buf,
        NFNL_SUBSYS_CTNETLINK,
        msg,
        flags,
        seq,
        family.to_af(),
        0,
    );
    let mut o = VecOut::new(buf);
    e.emit_attrs_status(&mut o, Status::CONFIRMED);
    if o.overflowed() {
        buf.truncate(start);
        return Err(Error::Emit(EmitError::TooLong { what: "entry" }));
    }
    finish_msg(buf, start);
    Ok(())
}

/// Appends one `IPCTNL_MSG_CT_DELETE` message for `key` to `buf`.
pub(crate) fn encode_delete_msg(
    buf: &mut Vec<u8>,
    flags: u16,
    seq: u32,
    key: &Key,
) -> Result<(), Error> {
    let start = start_msg(
        buf,
        NFNL_SUBSYS_CTNETLINK,
        ct_msg::DELETE,
        flags,
        seq,
        key.tuple.family().to_af(),
        0,
    );
    let mut o = VecOut::new(buf);
    key.emit(&mut o);
    if o.overflowed() {
        buf.truncate(start);
        return Err(Error::Emit(EmitError::TooLong { what: "key" }));
    }
    finish_msg(buf, start);
    Ok(())
}

/// The request socket's descriptor: a program that listens to events can tell the ones its own requests
/// caused (the event's port id equals this socket's, from `getsockname`), as conntrackd does for its
/// commits.
impl std::os::fd::AsFd for Conntrack {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.sock.as_fd()
    }
}
