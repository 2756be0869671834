//! Observers, each a thread inside one lab namespace, stamping what they see with the lab's monotonic
//! clock:
//!
//! * [`Wire`], on the client's LAN-in interface: every VRRP advertisement (source, VRID, priority) and
//!   every gratuitous ARP, as a host on the LAN sees them;
//! * [`FwWatch`], on a firewall: its virtual-address changes (rtnetlink address events) and the TCP
//!   entries created in its conntrack table (ctnetlink NEW events), with the moment their count reaches
//!   a target: on the backup, every TCP entry created after the failover is a committed one.

use super::nsthread::NsThread;
use super::sys;
use anyhow::{Context, Result};
use std::io::Read;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the wire observer saw.
#[derive(Debug, Clone, Copy)]
pub enum WireKind {
    /// A VRRP advertisement.
    Advert {
        /// Sender (the router's primary address on the LAN).
        src: Ipv4Addr,
        /// Virtual router id.
        vrid: u8,
        /// Priority (0: the master is stopping).
        prio: u8,
    },
    /// A gratuitous ARP (sender address = target address).
    Garp {
        /// The announced address.
        ip: Ipv4Addr,
        /// The MAC address it now maps to.
        mac: [u8; 6],
    },
}

/// One observation.
#[derive(Debug, Clone, Copy)]
pub struct WireEvent {
    /// When it was read.
    pub t: Instant,
    /// What it was.
    pub kind: WireKind,
}

/// A thread capturing one interface.
#[derive(Debug)]
pub struct Wire {
    events: Arc<Mutex<Vec<WireEvent>>>,
    thread: NsThread,
}

impl Wire {
    /// Starts capturing `ifname` in namespace `ns`. Returns once the socket is bound.
    pub fn start(ns: &str, ifname: &str) -> Result<Wire> {
        let events = Arc::new(Mutex::new(Vec::new()));
        let e = events.clone();
        let ifname = ifname.to_string();
        let thread = NsThread::spawn(
            "wire observer",
            ns,
            move || sys::packet_socket(&ifname),
            move |fd, stop| {
                let raw = fd.as_raw_fd();
                let mut file = std::fs::File::from(fd);
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    if !sys::wait_readable(raw, Duration::from_millis(100))? {
                        continue;
                    }
                    let n = file.read(&mut buf).context("reading the capture socket")?;
                    let t = Instant::now();
                    if let Some(kind) = parse_frame(&buf[..n])
                        && let Ok(mut v) = e.lock()
                    {
                        v.push(WireEvent { t, kind });
                    }
                }
                Ok(())
            },
        )?;
        Ok(Wire { events, thread })
    }

    /// Everything seen so far.
    pub fn events(&self) -> Vec<WireEvent> {
        self.events.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Stops the thread.
    pub fn finish(&mut self) -> Result<()> {
        self.thread.finish()
    }
}

/// Decodes an Ethernet frame into a VRRP advert or a gratuitous ARP; anything else is `None`.
pub fn parse_frame(f: &[u8]) -> Option<WireKind> {
    let ethertype = u16::from_be_bytes([*f.get(12)?, *f.get(13)?]);
    match ethertype {
        0x0800 => {
            let ip = f.get(14..)?;
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            if ip.get(9)? != &112 || ihl < 20 {
                return None;
            }
            let src = Ipv4Addr::new(*ip.get(12)?, *ip.get(13)?, *ip.get(14)?, *ip.get(15)?);
            let vrrp = ip.get(ihl..)?;
            Some(WireKind::Advert {
                src,
                vrid: *vrrp.get(1)?,
                prio: *vrrp.get(2)?,
            })
        }
        0x0806 => {
            let arp = f.get(14..42)?;
            let sender = Ipv4Addr::new(arp[14], arp[15], arp[16], arp[17]);
            let target = Ipv4Addr::new(arp[24], arp[25], arp[26], arp[27]);
            if sender != target {
                return None;
            }
            let mut mac = [0u8; 6];
            mac.copy_from_slice(&arp[8..14]);
            Some(WireKind::Garp { ip: sender, mac })
        }
        _ => None,
    }
}

/// A change of an IPv4 address on a firewall.
#[derive(Debug, Clone, Copy)]
pub struct AddrEvent {
    /// When it was read.
    pub t: Instant,
    /// Added (true) or removed.
    pub added: bool,
    /// The address.
    pub addr: Ipv4Addr,
}

/// A thread on one firewall: address events, and conntrack NEW events of TCP entries (counted from
/// [`FwWatch::arm`], with the moment the count reaches its target).
#[derive(Debug)]
pub struct FwWatch {
    addrs: Arc<Mutex<Vec<AddrEvent>>>,
    target: Arc<AtomicUsize>,
    reached: Arc<Mutex<Option<Instant>>>,
    tcp_new: Arc<AtomicUsize>,
    overrun: Arc<AtomicBool>,
    thread: NsThread,
}

/// Reads every datagram the non-blocking socket holds; calls `f` on each. Returns false on ENOBUFS.
fn drain(file: &mut std::fs::File, buf: &mut [u8], mut f: impl FnMut(&[u8])) -> Result<bool> {
    loop {
        match file.read(buf) {
            Ok(n) => f(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return Ok(false),
            Err(e) => return Err(e).context("reading netlink"),
        }
    }
}

impl FwWatch {
    /// Starts watching namespace `ns`. Returns once its sockets are open.
    pub fn start(ns: &str) -> Result<FwWatch> {
        let addrs = Arc::new(Mutex::new(Vec::new()));
        let target = Arc::new(AtomicUsize::new(0));
        let reached = Arc::new(Mutex::new(None));
        let tcp_new = Arc::new(AtomicUsize::new(0));
        let overrun = Arc::new(AtomicBool::new(false));
        let (a, tg, r, c, o) = (
            addrs.clone(),
            target.clone(),
            reached.clone(),
            tcp_new.clone(),
            overrun.clone(),
        );
        let setup = || {
            Ok((
                sys::addr_event_socket()?,
                sys::ct_new_event_socket(64 << 20)?,
            ))
        };
        let thread = NsThread::spawn("firewall watch", ns, setup, move |(asock, csock), stop| {
            let fds = [(asock.as_raw_fd(), false), (csock.as_raw_fd(), false)];
            let cfd = csock.as_raw_fd();
            let mut afile = std::fs::File::from(asock);
            let mut cbufs = vec![vec![0u8; 8192]; 256];
            let mut lens = Vec::with_capacity(256);
            let mut buf = vec![0u8; 1 << 17];
            let mut ready = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                sys::poll(&fds, &mut ready, Duration::from_millis(50))?;
                if ready.first().is_some_and(|r| r.read) {
                    drain(&mut afile, &mut buf, |d| {
                        if let Ok(mut v) = a.lock() {
                            v.extend(parse_addr_events(d, Instant::now()));
                        }
                    })?;
                }
                // A commit of 50,000 entries is 50,000 event datagrams: read them 256 at a time, so the
                // watch keeps up with the kernel (and takes little CPU from the committing daemon).
                while ready.get(1).is_some_and(|r| r.read) {
                    match sys::recv_many(cfd, &mut cbufs, &mut lens) {
                        Ok(()) => {}
                        Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                            o.store(true, Ordering::Relaxed);
                            continue;
                        }
                        Err(e) => return Err(e).context("reading ctnetlink events"),
                    }
                    if lens.is_empty() {
                        break;
                    }
                    let n: usize = lens
                        .iter()
                        .zip(&cbufs)
                        .map(|(&l, b)| count_tcp_new(&b[..l]))
                        .sum();
                    if n > 0 {
                        let total = c.fetch_add(n, Ordering::Relaxed) + n;
                        let want = tg.load(Ordering::Relaxed);
                        if want > 0
                            && total >= want
                            && let Ok(mut g) = r.lock()
                            && g.is_none()
                        {
                            *g = Some(Instant::now());
                        }
                    }
                }
            }
            Ok(())
        })?;
        Ok(FwWatch {
            addrs,
            target,
            reached,
            tcp_new,
            overrun,
            thread,
        })
    }

    /// TCP entries created since [`FwWatch::arm`].
    pub fn tcp_new(&self) -> usize {
        self.tcp_new.load(Ordering::Relaxed)
    }

    /// True if the event socket overran (some NEW events were lost, so the count is low).
    pub fn overrun(&self) -> bool {
        self.overrun.load(Ordering::Relaxed)
    }

    /// Starts counting TCP NEW events from zero; records the first moment the count reaches `n`.
    pub fn arm(&self, n: usize) {
        if let Ok(mut g) = self.reached.lock() {
            *g = None;
        }
        self.tcp_new.store(0, Ordering::Relaxed);
        self.target.store(n.max(1), Ordering::Relaxed);
    }

    /// When the armed target was reached.
    pub fn reached(&self) -> Option<Instant> {
        self.reached.lock().ok().and_then(|g| *g)
    }

    /// The first time `addr` was added after `after`.
    pub fn added_after(&self, addr: Ipv4Addr, after: Instant) -> Option<Instant> {
        self.addrs
            .lock()
            .ok()?
            .iter()
            .find(|e| e.added && e.addr == addr && e.t >= after)
            .map(|e| e.t)
    }

    /// Stops the thread.
    pub fn finish(&mut self) -> Result<()> {
        self.thread.finish()
    }
}

/// Netlink attributes `(type without flags, payload)` of a buffer.
fn nlattrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([b[0], b[1]]));
        let ty = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        b = b.get((len + 3) & !3..).unwrap_or(&[]);
        Some((ty, payload))
    })
}

/// Counts the conntrack NEW messages of TCP entries in one ctnetlink datagram.
pub fn count_tcp_new(mut buf: &[u8]) -> usize {
    const CT_NEW: u16 = 1 << 8; // NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_NEW
    const CTA_TUPLE_ORIG: u16 = 1;
    const CTA_TUPLE_PROTO: u16 = 2;
    const CTA_PROTO_NUM: u16 = 1;
    let mut n = 0;
    while buf.len() >= 16 {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        let ty = u16::from_ne_bytes([buf[4], buf[5]]);
        if len < 16 || len > buf.len() {
            break;
        }
        if ty == CT_NEW && len >= 20 {
            let tcp = nlattrs(&buf[20..len])
                .filter(|(t, _)| *t == CTA_TUPLE_ORIG)
                .flat_map(|(_, p)| nlattrs(p))
                .filter(|(t, _)| *t == CTA_TUPLE_PROTO)
                .flat_map(|(_, p)| nlattrs(p))
                .any(|(t, p)| t == CTA_PROTO_NUM && p.first() == Some(&6));
            if tcp {
                n += 1;
            }
        }
        buf = buf.get((len + 3) & !3..).unwrap_or(&[]);
    }
    n
}

/// Extracts RTM_NEWADDR/RTM_DELADDR of IPv4 addresses from one rtnetlink datagram.
pub fn parse_addr_events(mut buf: &[u8], t: Instant) -> Vec<AddrEvent> {
    const RTM_NEWADDR: u16 = 20;
    const RTM_DELADDR: u16 = 21;
    const IFA_ADDRESS: u16 = 1;
    const IFA_LOCAL: u16 = 2;
    let mut out = Vec::new();
    while buf.len() >= 16 {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        let ty = u16::from_ne_bytes([buf[4], buf[5]]);
        if len < 16 || len > buf.len() {
            break;
        }
        let msg = &buf[16..len];
        if (ty == RTM_NEWADDR || ty == RTM_DELADDR)
            && msg.len() >= 8
            && msg[0] == libc::AF_INET as u8
        {
            let mut attrs = &msg[8..];
            let mut local = None;
            let mut address = None;
            while attrs.len() >= 4 {
                let alen = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
                let aty = u16::from_ne_bytes([attrs[2], attrs[3]]);
                if alen < 4 || alen > attrs.len() {
                    break;
                }
                if alen == 8 {
                    let a = Ipv4Addr::new(attrs[4], attrs[5], attrs[6], attrs[7]);
                    match aty {
                        IFA_LOCAL => local = Some(a),
                        IFA_ADDRESS => address = Some(a),
                        _ => {}
                    }
                }
                let step = (alen + 3) & !3;
                attrs = attrs.get(step..).unwrap_or(&[]);
            }
            if let Some(addr) = local.or(address) {
                out.push(AddrEvent {
                    t,
                    added: ty == RTM_NEWADDR,
                    addr,
                });
            }
        }
        let step = (len + 3) & !3;
        buf = buf.get(step..).unwrap_or(&[]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decoders against the real kernel: a TCP and a UDP entry created in a fresh namespace give
    /// one TCP NEW event; an address added to `lo` gives its RTM_NEWADDR.
    #[test]
    fn kernel_events_are_decoded() {
        let Some(ns) = testkit::netns() else { return };
        if testkit::require_tool("conntrack").is_none() {
            return;
        }
        let ct = sys::ct_new_event_socket(1 << 20).unwrap();
        let addr = sys::addr_event_socket().unwrap();
        ns.sh("conntrack -I -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 1 --dport 2 --state ESTABLISHED -t 100 -u ASSURED");
        ns.sh("conntrack -I -p udp -s 10.0.0.1 -d 10.0.0.2 --sport 1 --dport 2 -t 100");
        ns.sh("ip addr add 10.9.9.9/32 dev lo");
        let mut bufs = vec![vec![0u8; 8192]; 4];
        let mut lens = Vec::new();
        sys::recv_many(ct.as_raw_fd(), &mut bufs, &mut lens).unwrap();
        let tcp: usize = lens
            .iter()
            .zip(&bufs)
            .map(|(&l, b)| count_tcp_new(&b[..l]))
            .sum();
        assert_eq!((lens.len(), tcp), (2, 1));
        sys::recv_many(ct.as_raw_fd(), &mut bufs, &mut lens).unwrap();
        assert!(lens.is_empty(), "a drained socket gives nothing");
        let mut buf = vec![0u8; 65536];
        let mut events = Vec::new();
        let mut file = std::fs::File::from(addr);
        drain(&mut file, &mut buf, |d| {
            events.extend(parse_addr_events(d, Instant::now()))
        })
        .unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.added && e.addr == Ipv4Addr::new(10, 9, 9, 9)),
            "{events:?}"
        );
    }

    #[test]
    fn decodes_a_vrrp_advert_and_a_garp() {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[12] = 0x08;
        f[14] = 0x45;
        f[14 + 9] = 112;
        f[14 + 12..14 + 16].copy_from_slice(&[192, 168, 0, 2]);
        f[34] = 0x21;
        f[35] = 61;
        f[36] = 80;
        match parse_frame(&f) {
            Some(WireKind::Advert { src, vrid, prio }) => {
                assert_eq!((src, vrid, prio), (Ipv4Addr::new(192, 168, 0, 2), 61, 80))
            }
            other => panic!("{other:?}"),
        }
        let mut a = vec![0u8; 42];
        a[12] = 0x08;
        a[13] = 0x06;
        a[22..28].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
        a[28..32].copy_from_slice(&[192, 168, 0, 100]);
        a[38..42].copy_from_slice(&[192, 168, 0, 100]);
        match parse_frame(&a) {
            Some(WireKind::Garp { ip, mac }) => {
                assert_eq!(
                    (ip, mac),
                    (Ipv4Addr::new(192, 168, 0, 100), [2, 0, 0, 0, 0, 9])
                )
            }
            other => panic!("{other:?}"),
        }
        a[41] = 1; // an ordinary request for another address
        assert!(parse_frame(&a).is_none());
        assert!(parse_frame(&a[..20]).is_none());
    }
}
