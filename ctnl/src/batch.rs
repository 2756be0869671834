//! Batched create, update and delete: many messages per `sendmsg`, one result per entry.

use crate::error::Error;
use crate::ops::{Conntrack, Key, encode_delete_msg, encode_entry_msg};
use crate::wire::{Entry, Msgs, NLMSG_ERROR, ct_msg};
use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST};

/// Bytes per `sendmsg`: the kernel processes a datagram's messages one by one in the sender's context, and
/// 96 KiB keeps the error answers of even an all-failing chunk well inside the socket's receive queue.
pub const DEFAULT_CHUNK: usize = 96 * 1024;

/// The outcome of a batch: how many operations succeeded and which failed, by position.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct BatchReport {
    /// Operations pushed.
    pub total: usize,
    /// Operations the kernel accepted.
    pub ok: usize,
    /// `(index, error)` for each failed operation, index in push order, sorted.
    pub failures: Vec<(usize, Error)>,
}

impl BatchReport {
    /// The result of operation `i` (in push order).
    pub fn result(&self, i: usize) -> Result<(), &Error> {
        match self.failures.binary_search_by_key(&i, |(j, _)| *j) {
            Ok(k) => Err(&self.failures[k].1),
            Err(_) => Ok(()),
        }
    }
    /// One result per operation, in push order.
    pub fn results(&self) -> impl Iterator<Item = Result<(), &Error>> + '_ {
        (0..self.total).map(|i| self.result(i))
    }
}

/// Creates, updates and deletes encoded ahead of time, without a socket, to be queued later on a [`Batch`]
/// with [`Batch::extend`].
///
/// It lets a program do the encoding wherever it likes, for example on the threads that parse a file while
/// nothing may be sent until the whole file has been checked, and then hand the result to the one thread
/// that owns the socket. The messages are stored back to back, about 100 to 200 bytes per UDP or TCP entry.
#[derive(Debug, Default, Clone)]
pub struct Prepared {
    buf: Vec<u8>,
    count: usize,
}

impl Prepared {
    /// An empty set.
    pub fn new() -> Self {
        Prepared::default()
    }

    /// An empty set with room for `bytes` of encoded messages.
    pub fn with_capacity(bytes: usize) -> Self {
        Prepared {
            buf: Vec::with_capacity(bytes),
            count: 0,
        }
    }

    /// Adds a create (the entry must not exist, see [`Batch::create`]).
    pub fn create(&mut self, e: &Entry) -> Result<(), Error> {
        encode_entry_msg(
            &mut self.buf,
            ct_msg::NEW,
            NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL,
            0,
            e,
        )?;
        self.count += 1;
        Ok(())
    }

    /// Adds an update (the entry must exist, see [`Batch::update`]).
    pub fn update(&mut self, e: &Entry) -> Result<(), Error> {
        encode_entry_msg(&mut self.buf, ct_msg::NEW, NLM_F_REQUEST, 0, e)?;
        self.count += 1;
        Ok(())
    }

    /// Adds a delete.
    pub fn delete(&mut self, key: &Key) -> Result<(), Error> {
        encode_delete_msg(&mut self.buf, NLM_F_REQUEST, 0, key)?;
        self.count += 1;
        Ok(())
    }

    /// Operations held.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of encoded messages held.
    pub fn encoded_len(&self) -> usize {
        self.buf.len()
    }

    /// Forgets every operation, keeping the memory.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.count = 0;
    }
}

/// A batch in progress. Operations are encoded straight into one send buffer; when it reaches the chunk
/// size it is sent, and the kernel's answers for that chunk are read before the next one. Only failures
/// are answered (the last message of each chunk asks for an ack to mark the end), so a successful batch
/// costs one `recv` per chunk.
#[derive(Debug)]
pub struct Batch<'a> {
    ct: &'a mut Conntrack,
    chunk: usize,
    /// Sequence number of the first message of the pending chunk, and index of its first operation.
    first_seq: u32,
    first_idx: usize,
    pending: usize,
    /// Offset of the last message's header in the buffer (to set its ACK flag at send time).
    last_off: usize,
    report: BatchReport,
}

impl<'a> Batch<'a> {
    pub(crate) fn new(ct: &'a mut Conntrack) -> Self {
        ct.sbuf.clear();
        Batch {
            ct,
            chunk: DEFAULT_CHUNK,
            first_seq: 0,
            first_idx: 0,
            pending: 0,
            last_off: 0,
            report: BatchReport::default(),
        }
    }

    /// Sets the bytes per `sendmsg` (clamped to 4 KiB ..= 1 MiB).
    pub fn chunk_size(mut self, bytes: usize) -> Self {
        self.chunk = bytes.clamp(4096, 1 << 20);
        self
    }

    fn next_seq(&mut self) -> u32 {
        if self.pending == 0 {
            self.first_seq = self.ct.sock.next_seq();
            self.first_idx = self.report.total;
            self.first_seq
        } else {
            // Consecutive within a chunk; the socket's counter catches up when the chunk is sent.
            self.first_seq.wrapping_add(self.pending as u32)
        }
    }

    fn pushed(&mut self, off: usize) -> Result<(), Error> {
        self.last_off = off;
        self.pending += 1;
        self.report.total += 1;
        if self.ct.sbuf.len() >= self.chunk {
            self.flush_chunk()?;
        }
        Ok(())
    }

    /// Queues a create (fails per entry with [`Error::Exists`] when taken).
    pub fn create(&mut self, e: &Entry) -> Result<(), Error> {
        self.push_entry(e, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Queues an update (fails per entry with [`Error::NotFound`] when absent).
    pub fn update(&mut self, e: &Entry) -> Result<(), Error> {
        self.push_entry(e, NLM_F_REQUEST)
    }

    fn push_entry(&mut self, e: &Entry, flags: u16) -> Result<(), Error> {
        let seq = self.next_seq();
        let off = self.ct.sbuf.len();
        encode_entry_msg(&mut self.ct.sbuf, ct_msg::NEW, flags, seq, e)?;
        self.pushed(off)
    }

    /// Queues a delete.
    pub fn delete(&mut self, key: &Key) -> Result<(), Error> {
        let seq = self.next_seq();
        let off = self.ct.sbuf.len();
        encode_delete_msg(&mut self.ct.sbuf, NLM_F_REQUEST, seq, key)?;
        self.pushed(off)
    }

    /// Queues every operation of `p`, in its order, as if each had been pushed here. Their positions in the
    /// report follow those already pushed.
    pub fn extend(&mut self, p: &Prepared) -> Result<(), Error> {
        let mut rest = p.buf.as_slice();
        while let Some(len) = rest
            .get(..4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        {
            // `Prepared` only ever holds whole messages it encoded itself, each at least a header long.
            let len = (len as usize).next_multiple_of(4).min(rest.len());
            if len < 16 {
                return Err(Error::Protocol("prepared message shorter than its header"));
            }
            let (msg, tail) = rest.split_at(len);
            rest = tail;
            let seq = self.next_seq();
            let off = self.ct.sbuf.len();
            self.ct.sbuf.extend_from_slice(msg);
            if let Some(s) = self.ct.sbuf.get_mut(off + 8..off + 12) {
                s.copy_from_slice(&seq.to_ne_bytes());
            }
            self.pushed(off)?;
        }
        Ok(())
    }

    fn flush_chunk(&mut self) -> Result<(), Error> {
        if self.pending == 0 {
            return Ok(());
        }
        // Ask for an ack on the last message only: it marks the end of this chunk's answers.
        let flags_off = self.last_off + 6;
        if let Some(b) = self.ct.sbuf.get_mut(flags_off..flags_off + 2) {
            let f = u16::from_ne_bytes([b[0], b[1]]) | NLM_F_ACK;
            b.copy_from_slice(&f.to_ne_bytes());
        }
        let last_seq = self.first_seq.wrapping_add(self.pending as u32 - 1);
        self.ct.sock.set_seq(last_seq);
        let sent = self.ct.sock.send(&self.ct.sbuf);
        self.ct.sbuf.clear();
        let (first_seq, first_idx, n) = (self.first_seq, self.first_idx, self.pending);
        self.pending = 0;
        let fail_start = self.report.failures.len();
        if let Err(e) = sent {
            // Nothing of this chunk reached the kernel: every operation in it failed the same way.
            for i in 0..n {
                let err = e
                    .errno()
                    .map_or(Error::Protocol("batch send failed"), Error::from_errno);
                self.report.failures.push((first_idx + i, err));
            }
            return Err(e);
        }
        loop {
            match self.ct.sock.recv() {
                Ok(Some(_)) => {}
                Ok(None) => return Err(Error::Io(std::io::ErrorKind::TimedOut.into())),
                Err(Error::Overrun) => {
                    // Answers were lost: the outcome of this chunk's unanswered operations is unknown.
                    let answered: Vec<usize> = self.report.failures[fail_start..]
                        .iter()
                        .map(|(i, _)| *i)
                        .collect();
                    for i in first_idx..first_idx + n {
                        if !answered.contains(&i) {
                            self.report.failures.push((i, Error::Overrun));
                        }
                    }
                    self.report.failures.sort_by_key(|(i, _)| *i);
                    return Err(Error::Overrun);
                }
                Err(e) => return Err(e),
            }
            let mut end = false;
            for m in Msgs::new(self.ct.sock.received()) {
                let m = m?;
                if m.kind != NLMSG_ERROR {
                    continue;
                }
                let rel = m.seq.wrapping_sub(first_seq) as usize;
                if rel >= n {
                    continue;
                }
                let code = m.error_code()?;
                if code != 0 {
                    self.report
                        .failures
                        .push((first_idx + rel, Error::from_nl_code(code)));
                }
                if m.seq == last_seq {
                    end = true;
                }
            }
            if end {
                break;
            }
        }
        let failed = self.report.failures.len() - fail_start;
        self.report.ok += n - failed.min(n);
        Ok(())
    }

    /// Sends what is still queued and returns the report. `Err` only when the exchange itself failed
    /// (socket error or lost answers); per-operation failures are in [`BatchReport::failures`].
    pub fn finish(mut self) -> Result<BatchReport, Error> {
        self.flush_chunk()?;
        self.report.failures.sort_by_key(|(i, _)| *i);
        Ok(std::mem::take(&mut self.report))
    }
}
