//! The lab's traffic: an echo server in the server namespace and a client in the client namespace, one
//! poll loop each, in threads of the xtask (so both share its monotonic clock).
//!
//! Every message is a 32-byte record: magic `HALB`, connection id, sequence number, send time, reserved.
//! The server checks that each connection's sequence numbers arrive in order without holes and echoes
//! every byte back; the client checks the echoes the same way. So a lost, duplicated or reordered record
//! is seen at both ends, a RST is an `ECONNRESET` at either end, and a reconnect is a second connection
//! carrying the same id (the server counts those).
//!
//! * The **stream** (id 0) sends a record every 10 ms whatever happens; the client measures the gaps
//!   between consecutive echoes.
//! * The **path probe** is a UDP datagram to the same port every 10 ms, echoed too. UDP is not synced
//!   (the shipped conntrackd.conf accepts TCP, SCTP and DCCP only), but a new UDP flow from the inside
//!   passes the ruleset, so its echoes resume the moment the new master forwards: its gap is the
//!   network's, without TCP's retransmission backoff.
//! * The **idle** connections (ids 1..=N) send one record when opened and then nothing until a
//!   [`Client::probe`], when each sends one more and must get its echo.

use super::nsthread::NsThread;
use super::sys::{self, Ready};
use anyhow::{Context, Result};
use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

const MAGIC: u32 = 0x4841_4c42; // "HALB"
const REC: usize = 32;
/// The stream's send interval.
pub const TICK: Duration = Duration::from_millis(10);

fn record(id: u32, seq: u64, epoch: Instant) -> [u8; REC] {
    let mut r = [0u8; REC];
    r[0..4].copy_from_slice(&MAGIC.to_be_bytes());
    r[4..8].copy_from_slice(&id.to_be_bytes());
    r[8..16].copy_from_slice(&seq.to_be_bytes());
    let ns = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
    r[16..24].copy_from_slice(&ns.to_be_bytes());
    r
}

/// `(id, seq)` of a record, or `None` if the magic is wrong.
fn parse(r: &[u8]) -> Option<(u32, u64)> {
    let magic = u32::from_be_bytes(r.get(0..4)?.try_into().ok()?);
    if magic != MAGIC {
        return None;
    }
    let id = u32::from_be_bytes(r.get(4..8)?.try_into().ok()?);
    let seq = u64::from_be_bytes(r.get(8..16)?.try_into().ok()?);
    Some((id, seq))
}

/// What the server saw of one connection id.
#[derive(Debug, Clone, Default)]
pub struct IdStats {
    /// TCP connections that carried this id (more than one is a reconnect).
    pub connections: u32,
    /// Records received.
    pub records: u64,
    /// Records whose sequence number was not the next one (loss, duplication or reordering).
    pub order_errors: u64,
    /// Connections of this id that ended with ECONNRESET.
    pub resets: u32,
    /// Records with a bad magic or the wrong id for their connection.
    pub garbage: u64,
}

/// The echo server.
#[derive(Debug)]
pub struct Server {
    stats: Arc<Mutex<HashMap<u32, IdStats>>>,
    thread: NsThread,
}

struct SConn {
    s: TcpStream,
    inbuf: Vec<u8>,
    out: VecDeque<u8>,
    id: Option<u32>,
    next: Option<u64>,
}

impl Server {
    /// Listens on `0.0.0.0:port` (TCP and UDP) in namespace `ns`. Returns once listening.
    pub fn start(ns: &str, port: u16) -> Result<Server> {
        let stats = Arc::new(Mutex::new(HashMap::new()));
        let sx = stats.clone();
        let setup = move || {
            let l = TcpListener::bind(("0.0.0.0", port)).context("binding the echo server")?;
            l.set_nonblocking(true)?;
            let u = UdpSocket::bind(("0.0.0.0", port)).context("binding the UDP echo")?;
            u.set_nonblocking(true)?;
            Ok((l, u))
        };
        let thread = NsThread::spawn("echo server", ns, setup, move |(l, u), stop| {
            serve(l, u, stop, &sx)
        })?;
        Ok(Server { stats, thread })
    }

    /// Per-id statistics so far.
    pub fn stats(&self) -> HashMap<u32, IdStats> {
        self.stats.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// Stops the server.
    pub fn finish(&mut self) -> Result<()> {
        self.thread.finish()
    }
}

fn serve(
    listener: TcpListener,
    udp: UdpSocket,
    stop: &AtomicBool,
    stats: &Mutex<HashMap<u32, IdStats>>,
) -> Result<()> {
    let mut conns: Vec<SConn> = Vec::new();
    let mut fds = Vec::new();
    let mut ready = Vec::new();
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        fds.clear();
        fds.push((listener.as_raw_fd(), false));
        fds.push((udp.as_raw_fd(), false));
        fds.extend(conns.iter().map(|c| (c.s.as_raw_fd(), !c.out.is_empty())));
        sys::poll(&fds, &mut ready, Duration::from_millis(50))?;
        if ready.first().is_some_and(|r| r.read) {
            loop {
                match listener.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(true)?;
                        s.set_nodelay(true)?;
                        conns.push(SConn {
                            s,
                            inbuf: Vec::new(),
                            out: VecDeque::new(),
                            id: None,
                            next: None,
                        });
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e).context("accept"),
                }
            }
        }
        if ready.get(1).is_some_and(|r| r.read) {
            while let Ok((n, from)) = udp.recv_from(&mut buf) {
                let _ = udp.send_to(&buf[..n], from);
            }
        }
        let mut g = stats
            .lock()
            .map_err(|_| anyhow::anyhow!("stats lock poisoned"))?;
        let mut dead = Vec::new();
        for (i, c) in conns.iter_mut().enumerate() {
            let r = ready.get(i + 2).copied().unwrap_or_default();
            if r.read {
                match read_some(&mut c.s, &mut buf) {
                    Ok(0) => dead.push(i),
                    Ok(n) => {
                        c.inbuf.extend_from_slice(&buf[..n]);
                        c.out.extend(&buf[..n]);
                        let whole = c.inbuf.len() / REC * REC;
                        for rec in c.inbuf[..whole].chunks(REC) {
                            let Some((id, seq)) = parse(rec) else {
                                if let Some(id) = c.id {
                                    g.entry(id).or_default().garbage += 1;
                                }
                                continue;
                            };
                            if c.id.is_none() {
                                c.id = Some(id);
                                g.entry(id).or_default().connections += 1;
                            }
                            let e = g.entry(id).or_default();
                            if c.id != Some(id) {
                                e.garbage += 1;
                                continue;
                            }
                            e.records += 1;
                            if c.next.is_some_and(|n| n != seq) {
                                e.order_errors += 1;
                            }
                            c.next = Some(seq + 1);
                        }
                        c.inbuf.drain(..whole);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => {
                        if e.kind() == ErrorKind::ConnectionReset
                            && let Some(id) = c.id
                        {
                            g.entry(id).or_default().resets += 1;
                        }
                        dead.push(i);
                        continue;
                    }
                }
            }
            if !c.out.is_empty()
                && let Err(e) = flush(&mut c.s, &mut c.out)
            {
                if e.kind() == ErrorKind::ConnectionReset
                    && let Some(id) = c.id
                {
                    g.entry(id).or_default().resets += 1;
                }
                if !dead.contains(&i) {
                    dead.push(i);
                }
            }
        }
        drop(g);
        for i in dead.into_iter().rev() {
            conns.swap_remove(i);
        }
    }
    Ok(())
}

fn read_some(s: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match s.read(buf) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// Writes as much of `out` as the socket takes. WouldBlock is not an error.
fn flush(s: &mut TcpStream, out: &mut VecDeque<u8>) -> std::io::Result<()> {
    while !out.is_empty() {
        let (a, _) = out.as_slices();
        match s.write(a) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => {
                out.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// How a client connection ended, if it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Still open.
    Open,
    /// ECONNRESET (a RST arrived).
    Reset,
    /// The peer closed it.
    Eof,
    /// Another error.
    Error,
}

/// A gap in the stream's echoes.
#[derive(Debug, Clone, Copy)]
pub struct Gap {
    /// The echo before the gap.
    pub from: Instant,
    /// Its length.
    pub len: Duration,
}

/// The client's view, refreshed every loop.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Idle connections whose first echo arrived.
    pub idle_ready: usize,
    /// Stream records sent (by the application; some may still be in the socket).
    pub sent: u64,
    /// Stream records echoed.
    pub echoed: u64,
    /// When the last stream echo arrived.
    pub last_echo: Option<Instant>,
    /// When the record of the last stream echo was sent.
    pub last_echo_sent: Option<Instant>,
    /// Stream gaps longer than 50 ms, oldest first.
    pub gaps: Vec<Gap>,
    /// Longest gap between stream echoes.
    pub max_gap: Duration,
    /// Path-probe (UDP) gaps longer than 50 ms, oldest first.
    pub path_gaps: Vec<Gap>,
    /// Longest gap between path-probe echoes.
    pub path_max: Duration,
    /// When the last path-probe echo arrived.
    pub path_last: Option<Instant>,
    /// Stream echoes out of order (loss, duplication, reordering).
    pub order_errors: u64,
    /// How the stream's current connection ended (Open while it runs).
    pub stream_end: End,
    /// Stream connections after the first (made only on [`Client::reconnect`]).
    pub reconnects: u32,
    /// True once a reconnected stream got an echo.
    pub reconnect_echoed: bool,
    /// Results of the last probe: echoed, failed (reset, closed, error, or out of order).
    pub probe_ok: usize,
    /// Probe failures so far.
    pub probe_failed: usize,
    /// Probes still waiting for their echo.
    pub probe_pending: usize,
    /// Idle connections that ended (reset/closed/error) at any time.
    pub idle_ended: usize,
    /// Idle connections that saw a reset.
    pub idle_resets: usize,
    /// Probes started so far ([`Client::probe`] calls processed).
    pub probe_rounds: u32,
    /// False once [`Client::stop_stream`] was processed.
    pub sending: bool,
}

#[derive(Debug)]
enum Cmd {
    Probe,
    Reconnect,
    StopStream,
}

struct CConn {
    s: TcpStream,
    id: u32,
    out: VecDeque<u8>,
    inbuf: Vec<u8>,
    next_send: u64,
    next_echo: u64,
    sent_at: VecDeque<(u64, Instant)>,
    end: End,
    probing: bool,
}

impl CConn {
    fn open(server: SocketAddr, id: u32) -> Result<CConn> {
        let s = TcpStream::connect_timeout(&server, Duration::from_secs(5))
            .with_context(|| format!("connecting to {server}"))?;
        s.set_nodelay(true)?;
        s.set_nonblocking(true)?;
        Ok(CConn {
            s,
            id,
            out: VecDeque::new(),
            inbuf: Vec::new(),
            next_send: 0,
            next_echo: 0,
            sent_at: VecDeque::new(),
            end: End::Open,
            probing: false,
        })
    }

    fn send(&mut self, epoch: Instant) {
        let r = record(self.id, self.next_send, epoch);
        self.sent_at.push_back((self.next_send, Instant::now()));
        self.next_send += 1;
        self.out.extend(r);
        if let Err(e) = flush(&mut self.s, &mut self.out) {
            self.fail(&e);
        }
    }

    fn fail(&mut self, e: &std::io::Error) {
        if self.end == End::Open {
            self.end = if e.kind() == ErrorKind::ConnectionReset {
                End::Reset
            } else {
                End::Error
            };
        }
    }

    /// Reads echoes; returns `(seq, sent_at, in_order)` for each.
    fn receive(&mut self, buf: &mut [u8]) -> Vec<(u64, Option<Instant>, bool)> {
        let mut got = Vec::new();
        loop {
            match read_some(&mut self.s, buf) {
                Ok(0) => {
                    if self.end == End::Open {
                        self.end = End::Eof;
                    }
                    break;
                }
                Ok(n) => self.inbuf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.fail(&e);
                    break;
                }
            }
        }
        let whole = self.inbuf.len() / REC * REC;
        for rec in self.inbuf[..whole].chunks(REC) {
            let (ok, seq) = match parse(rec) {
                Some((id, seq)) => (id == self.id && seq == self.next_echo, seq),
                None => (false, u64::MAX),
            };
            let mut sent = None;
            while let Some(&(s, t)) = self.sent_at.front() {
                if s > seq {
                    break;
                }
                self.sent_at.pop_front();
                if s == seq {
                    sent = Some(t);
                }
            }
            if ok {
                self.next_echo = seq + 1;
            } else if seq != u64::MAX {
                self.next_echo = seq.saturating_add(1);
            }
            got.push((seq, sent, ok));
        }
        self.inbuf.drain(..whole);
        got
    }
}

/// The client: one stream, `idle` idle connections and the path probe.
#[derive(Debug)]
pub struct Client {
    tx: mpsc::Sender<Cmd>,
    snap: Arc<Mutex<Snapshot>>,
    thread: NsThread,
}

impl Client {
    /// Opens the idle connections (each sends its first record), then the stream and the path probe,
    /// in namespace `ns`. Returns once every connection is open; [`Snapshot::idle_ready`] counts first
    /// echoes.
    pub fn start(ns: &str, server: SocketAddr, idle: usize) -> Result<Client> {
        let snap = Arc::new(Mutex::new(Snapshot {
            idle_ready: 0,
            sent: 0,
            echoed: 0,
            last_echo: None,
            last_echo_sent: None,
            gaps: Vec::new(),
            max_gap: Duration::ZERO,
            path_gaps: Vec::new(),
            path_max: Duration::ZERO,
            path_last: None,
            order_errors: 0,
            stream_end: End::Open,
            reconnects: 0,
            reconnect_echoed: false,
            probe_ok: 0,
            probe_failed: 0,
            probe_pending: 0,
            idle_ended: 0,
            idle_resets: 0,
            probe_rounds: 0,
            sending: true,
        }));
        let (tx, rx) = mpsc::channel();
        let sn = snap.clone();
        let setup = move || -> Result<(CConn, Vec<CConn>, UdpSocket)> {
            let epoch = Instant::now();
            let mut conns = Vec::with_capacity(idle);
            for i in 0..idle {
                super::check_interrupted()?;
                let id = u32::try_from(i + 1).context("too many connections")?;
                let mut c = CConn::open(server, id)
                    .with_context(|| format!("opening idle connection {id} of {idle}"))?;
                c.send(epoch);
                conns.push(c);
            }
            let stream = CConn::open(server, 0).context("opening the stream")?;
            let udp = UdpSocket::bind(("0.0.0.0", 0)).context("binding the path probe")?;
            udp.connect(server)?;
            udp.set_nonblocking(true)?;
            Ok((stream, conns, udp))
        };
        let thread = NsThread::spawn("client", ns, setup, move |(stream, conns, udp), stop| {
            client_loop(server, stream, conns, udp, &rx, stop, &sn)
        })?;
        Ok(Client { tx, snap, thread })
    }

    /// The client's current view.
    pub fn snapshot(&self) -> Snapshot {
        self.snap
            .lock()
            .map(|g| g.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Every idle connection sends one record (which must be echoed).
    pub fn probe(&self) -> Result<()> {
        self.tx.send(Cmd::Probe).context("client thread gone")
    }

    /// Opens a new stream connection (after the old one broke), to show that new connections pass.
    pub fn reconnect(&self) -> Result<()> {
        self.tx.send(Cmd::Reconnect).context("client thread gone")
    }

    /// Stops sending on the stream (so its backlog can drain and be counted).
    pub fn stop_stream(&self) -> Result<()> {
        self.tx.send(Cmd::StopStream).context("client thread gone")
    }

    /// Closes everything.
    pub fn finish(&mut self) -> Result<()> {
        self.thread.finish()
    }
}

fn client_loop(
    server: SocketAddr,
    mut stream: CConn,
    mut idle: Vec<CConn>,
    udp: UdpSocket,
    rx: &mpsc::Receiver<Cmd>,
    stop: &AtomicBool,
    snap: &Mutex<Snapshot>,
) -> Result<()> {
    let epoch = Instant::now();
    let mut buf = vec![0u8; 65536];
    let mut fds = Vec::new();
    let mut ready: Vec<Ready> = Vec::new();
    let mut next_tick = Instant::now();
    let mut sending = true;
    let mut sent = 0u64;
    let mut echoed = 0u64;
    let mut last_echo: Option<Instant> = None;
    let mut last_echo_sent = None;
    let mut gaps = Vec::new();
    let mut max_gap = Duration::ZERO;
    let mut order_errors = 0u64;
    let mut reconnects = 0u32;
    let mut reconnect_echoed = false;
    let mut idle_first = vec![false; idle.len()];
    let mut probe_ok = 0usize;
    let mut probe_failed = 0usize;
    let mut probe_rounds = 0u32;
    let mut path_seq = 0u64;
    let mut path_last: Option<Instant> = None;
    let mut path_gaps = Vec::new();
    let mut path_max = Duration::ZERO;
    while !stop.load(Ordering::Relaxed) {
        match rx.try_recv() {
            Err(mpsc::TryRecvError::Disconnected) => break,
            Ok(Cmd::Probe) => {
                probe_rounds += 1;
                probe_ok = 0;
                probe_failed = 0;
                for c in idle.iter_mut() {
                    if c.end == End::Open {
                        c.probing = true;
                        c.send(epoch);
                    } else {
                        probe_failed += 1;
                    }
                }
            }
            Ok(Cmd::Reconnect) => {
                // The old connection stays in its state; a new one carries the same id on.
                if let Ok(mut c) = CConn::open(server, 0) {
                    c.next_send = stream.next_send;
                    c.next_echo = stream.next_send;
                    stream = c;
                    reconnects += 1;
                } else {
                    reconnects += 1;
                    stream.end = End::Error;
                }
            }
            Ok(Cmd::StopStream) => sending = false,
            Err(mpsc::TryRecvError::Empty) => {}
        }
        let now = Instant::now();
        if sending && now >= next_tick {
            if stream.end == End::Open {
                stream.send(epoch);
                sent += 1;
            }
            // A lost datagram (no route yet, dropped) is what the probe measures, not an error.
            let _ = udp.send(&path_seq.to_be_bytes());
            path_seq += 1;
            next_tick += TICK;
            if next_tick < now {
                next_tick = now + TICK;
            }
        }
        fds.clear();
        // A connection that ended stays readable (EOF, error) forever: it leaves the poll set (a negative
        // fd is ignored by poll), or the loop would spin.
        let entry = |c: &CConn| match c.end {
            End::Open => (c.s.as_raw_fd(), !c.out.is_empty()),
            _ => (-1, false),
        };
        fds.push(entry(&stream));
        fds.push((udp.as_raw_fd(), false));
        fds.extend(idle.iter().map(entry));
        let wait = next_tick
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(10));
        sys::poll(&fds, &mut ready, wait)?;
        if ready.first().is_some_and(|r| r.write)
            && stream.end == End::Open
            && let Err(e) = flush(&mut stream.s, &mut stream.out)
        {
            stream.fail(&e);
        }
        if ready.first().is_some_and(|r| r.read) && stream.end == End::Open {
            for (_, sent_at, ok) in stream.receive(&mut buf) {
                let t = Instant::now();
                if let Some(prev) = last_echo {
                    let g = t - prev;
                    max_gap = max_gap.max(g);
                    if g > Duration::from_millis(50) {
                        gaps.push(Gap { from: prev, len: g });
                    }
                }
                last_echo = Some(t);
                if sent_at.is_some() {
                    last_echo_sent = sent_at;
                }
                echoed += 1;
                if !ok {
                    order_errors += 1;
                }
                if reconnects > 0 {
                    reconnect_echoed = true;
                }
            }
        }
        if ready.get(1).is_some_and(|r| r.read) {
            while udp.recv(&mut buf).is_ok() {
                let t = Instant::now();
                if let Some(prev) = path_last {
                    path_max = path_max.max(t - prev);
                }
                if let Some(prev) = path_last
                    && t - prev > Duration::from_millis(50)
                {
                    path_gaps.push(Gap {
                        from: prev,
                        len: t - prev,
                    });
                }
                path_last = Some(t);
            }
        }
        for (i, c) in idle.iter_mut().enumerate() {
            let r = ready.get(i + 2).copied().unwrap_or_default();
            if c.end != End::Open {
                continue;
            }
            if r.write
                && !c.out.is_empty()
                && let Err(e) = flush(&mut c.s, &mut c.out)
            {
                c.fail(&e);
            }
            if r.read {
                for (_, _, ok) in c.receive(&mut buf) {
                    if !idle_first[i] {
                        idle_first[i] = ok;
                    } else if c.probing {
                        c.probing = false;
                        if ok {
                            probe_ok += 1;
                        } else {
                            probe_failed += 1;
                        }
                    }
                }
                if c.end != End::Open && c.probing {
                    c.probing = false;
                    probe_failed += 1;
                }
            }
        }
        if let Ok(mut s) = snap.lock() {
            s.idle_ready = idle_first.iter().filter(|&&b| b).count();
            s.sent = sent;
            s.echoed = echoed;
            s.last_echo = last_echo;
            s.last_echo_sent = last_echo_sent;
            s.gaps.clone_from(&gaps);
            s.max_gap = max_gap;
            s.path_gaps.clone_from(&path_gaps);
            s.path_last = path_last;
            s.path_max = path_max;
            s.order_errors = order_errors;
            s.stream_end = stream.end;
            s.reconnects = reconnects;
            s.reconnect_echoed = reconnect_echoed;
            s.probe_ok = probe_ok;
            s.probe_failed = probe_failed;
            s.probe_pending = idle.iter().filter(|c| c.probing).count();
            s.idle_ended = idle.iter().filter(|c| c.end != End::Open).count();
            s.idle_resets = idle.iter().filter(|c| c.end == End::Reset).count();
            s.probe_rounds = probe_rounds;
            s.sending = sending;
        }
    }
    // Close: the stream and every idle connection get a FIN (a drop closes the socket).
    drop(stream);
    drop(idle);
    Ok(())
}

/// Waits until `cond(snapshot)` holds, checking every 10 ms, up to `limit`. Returns whether it held.
pub fn wait_for(
    client: &Client,
    limit: Duration,
    cond: impl Fn(&Snapshot) -> bool,
) -> Result<bool> {
    let t = Instant::now();
    loop {
        super::check_interrupted()?;
        if cond(&client.snapshot()) {
            return Ok(true);
        }
        if t.elapsed() >= limit {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
