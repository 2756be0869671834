//! The raw ctnetlink floor for the conntrack benches: hand-built messages straight onto a netlink-sys
//! socket, many per `sendmsg`, and dumps that count messages without parsing them. Nothing here uses
//! `ctnl`, so the floor measures only what the kernel and the socket cost.

use crate::nl::{attr, msg_end, nest_end, nest_start, put_u16};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};
use std::io;
use std::net::Ipv4Addr;

/// Largest payload of one `sendmsg` in the batched floor.
pub const MAX_SEND: usize = 96 * 1024;

const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_NEW: u16 = 0;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_TIMEOUT: u16 = 7;
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;

const CTA_FILTER: u16 = 25;
const CTA_FILTER_ORIG_FLAGS: u16 = 1;
const CTA_FILTER_F_CTA_PROTO_NUM: u32 = 1 << 3;
const CTA_FILTER_F_CTA_PROTO_DST_PORT: u32 = 1 << 5;

const AF_INET: u8 = 2;
const IPPROTO_UDP: u8 = 17;

/// One UDP flow of the bench table (original direction; the reply is its mirror).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpFlow {
    /// Original source address.
    pub src: Ipv4Addr,
    /// Original destination address.
    pub dst: Ipv4Addr,
    /// Original source port.
    pub sport: u16,
    /// Original destination port.
    pub dport: u16,
}

/// `n` distinct UDP flows; every fourth one (index divisible by 4) has destination port 53, the rest
/// port 123, so a filtered delete of `--dport 53` hits exactly `n.div_ceil(4)` of them.
pub fn flows(n: usize) -> Vec<UdpFlow> {
    (0..n)
        .map(|i| {
            let i32 = u32::try_from(i).unwrap_or(u32::MAX);
            UdpFlow {
                src: Ipv4Addr::from(0x0a00_0000 | (i32 & 0x00ff_ffff)),
                dst: Ipv4Addr::new(192, 0, 2, 1),
                sport: 1024 + (i32 % 60_000) as u16,
                dport: if i % 4 == 0 { 53 } else { 123 },
            }
        })
        .collect()
}

/// The same flows as `-I` lines for `conntrack -R FILE`.
pub fn conntrack_r_lines(flows: &[UdpFlow], timeout: u32) -> String {
    let mut s = String::with_capacity(flows.len() * 80);
    for f in flows {
        s.push_str(&format!(
            "-I -p udp -s {} -d {} --sport {} --dport {} -t {timeout}\n",
            f.src, f.dst, f.sport, f.dport
        ));
    }
    s
}

fn tuple(buf: &mut Vec<u8>, kind: u16, src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16) {
    let t = nest_start(buf, kind);
    let ip = nest_start(buf, CTA_TUPLE_IP);
    attr(buf, CTA_IP_V4_SRC, &src.octets());
    attr(buf, CTA_IP_V4_DST, &dst.octets());
    nest_end(buf, ip);
    let p = nest_start(buf, CTA_TUPLE_PROTO);
    attr(buf, CTA_PROTO_NUM, &[IPPROTO_UDP]);
    attr(buf, CTA_PROTO_SRC_PORT, &sport.to_be_bytes());
    attr(buf, CTA_PROTO_DST_PORT, &dport.to_be_bytes());
    nest_end(buf, p);
    nest_end(buf, t);
}

/// Starts a ctnetlink message (nlmsghdr + nfgenmsg); returns where its length goes.
fn msg_start(buf: &mut Vec<u8>, msg: u16, flags: u16, seq: u32, family: u8) -> usize {
    let at = buf.len();
    buf.extend_from_slice(&0u32.to_ne_bytes());
    put_u16(buf, (NFNL_SUBSYS_CTNETLINK << 8) | msg);
    put_u16(buf, flags);
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
    buf.extend_from_slice(&[family, 0, 0, 0]); // nfgenmsg: family, version 0, res_id 0
    at
}

/// Appends one IPCTNL_MSG_CT_NEW (create, exclusive, no ack: only failures answer) for `f`.
pub fn emit_create(buf: &mut Vec<u8>, seq: u32, f: &UdpFlow, timeout: u32) {
    let m = msg_start(
        buf,
        IPCTNL_MSG_CT_NEW,
        NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL,
        seq,
        AF_INET,
    );
    tuple(buf, CTA_TUPLE_ORIG, f.src, f.dst, f.sport, f.dport);
    tuple(buf, CTA_TUPLE_REPLY, f.dst, f.src, f.dport, f.sport);
    attr(buf, CTA_TIMEOUT, &timeout.to_be_bytes());
    msg_end(buf, m);
}

/// A raw ctnetlink socket of the calling thread's network namespace.
#[derive(Debug)]
pub struct RawCt {
    sock: Socket,
    seq: u32,
    out: Vec<u8>,
    inp: Vec<u8>,
}

impl RawCt {
    /// Opens and binds the socket (in the calling thread's namespace).
    pub fn new() -> io::Result<Self> {
        let mut sock = Socket::new(NETLINK_NETFILTER)?;
        sock.bind_auto()?;
        sock.set_rx_buf_sz(4 * 1024 * 1024)?;
        Ok(RawCt {
            sock,
            seq: 1,
            out: Vec::with_capacity(MAX_SEND),
            inp: Vec::with_capacity(64 * 1024),
        })
    }

    fn send_out(&mut self) -> io::Result<()> {
        let kernel = SocketAddr::new(0, 0);
        let n = self.sock.send_to(&self.out, &kernel, 0)?;
        if n != self.out.len() {
            return Err(io::Error::other(format!(
                "short send {n} of {}",
                self.out.len()
            )));
        }
        self.out.clear();
        Ok(())
    }

    /// Counts error messages waiting on the socket without blocking.
    fn drain_errors(&mut self) -> io::Result<usize> {
        let mut errors = 0;
        loop {
            self.inp.clear();
            match self.sock.recv(&mut self.inp, libc::MSG_DONTWAIT) {
                Ok(_) => errors += count_errors(&self.inp),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(errors),
                Err(e) => return Err(e),
            }
        }
    }

    /// Creates every flow, as many messages per `sendmsg` as fit in [`MAX_SEND`]. The kernel handles each
    /// message of a send before `sendmsg` returns, so afterwards only failures are left to read. Returns
    /// how many creates failed.
    pub fn create_batched(&mut self, flows: &[UdpFlow], timeout: u32) -> io::Result<usize> {
        let mut errors = 0;
        self.out.clear();
        for f in flows {
            let before = self.out.len();
            emit_create(&mut self.out, self.seq, f, timeout);
            self.seq = self.seq.wrapping_add(1);
            if self.out.len() > MAX_SEND {
                // Send what fitted; keep the message that overflowed for the next send.
                let last = self.out.split_off(before);
                self.send_out()?;
                self.out = last;
                errors += self.drain_errors()?;
            }
        }
        if !self.out.is_empty() {
            self.send_out()?;
        }
        errors += self.drain_errors()?;
        Ok(errors)
    }

    /// Dumps the whole table, counting the entry messages without parsing them.
    pub fn dump_count(&mut self) -> io::Result<usize> {
        self.out.clear();
        let m = msg_start(
            &mut self.out,
            IPCTNL_MSG_CT_GET,
            NLM_F_REQUEST | NLM_F_DUMP,
            self.seq,
            AF_INET,
        );
        msg_end(&mut self.out, m);
        self.count_dump()
    }

    /// Dumps, filtered in the kernel, the IPv4 UDP entries whose original destination port is `port`,
    /// counting the entry messages without parsing them: the least any `conntrack -D -p udp --dport PORT`
    /// must read to print what it deletes.
    pub fn dump_count_udp_dport(&mut self, port: u16) -> io::Result<usize> {
        self.out.clear();
        let m = msg_start(
            &mut self.out,
            IPCTNL_MSG_CT_GET,
            NLM_F_REQUEST | NLM_F_DUMP,
            self.seq,
            AF_INET,
        );
        self.udp_dport_filter(port);
        msg_end(&mut self.out, m);
        self.count_dump()
    }

    /// Appends a partial original tuple (UDP, destination `port`) and the CTA_FILTER that matches on it.
    fn udp_dport_filter(&mut self, port: u16) {
        let t = nest_start(&mut self.out, CTA_TUPLE_ORIG);
        let p = nest_start(&mut self.out, CTA_TUPLE_PROTO);
        attr(&mut self.out, CTA_PROTO_NUM, &[IPPROTO_UDP]);
        attr(&mut self.out, CTA_PROTO_DST_PORT, &port.to_be_bytes());
        nest_end(&mut self.out, p);
        nest_end(&mut self.out, t);
        let f = nest_start(&mut self.out, CTA_FILTER);
        let flags = CTA_FILTER_F_CTA_PROTO_NUM | CTA_FILTER_F_CTA_PROTO_DST_PORT;
        attr(&mut self.out, CTA_FILTER_ORIG_FLAGS, &flags.to_ne_bytes());
        nest_end(&mut self.out, f);
    }

    /// Sends the dump request in `out` and counts the entry messages until NLMSG_DONE.
    fn count_dump(&mut self) -> io::Result<usize> {
        self.seq = self.seq.wrapping_add(1);
        self.send_out()?;
        let mut entries = 0;
        loop {
            self.inp.clear();
            self.sock.recv(&mut self.inp, 0)?;
            let mut off = 0;
            while off + 16 <= self.inp.len() {
                let len = u32::from_ne_bytes([
                    self.inp[off],
                    self.inp[off + 1],
                    self.inp[off + 2],
                    self.inp[off + 3],
                ]) as usize;
                let kind = u16::from_ne_bytes([self.inp[off + 4], self.inp[off + 5]]);
                match kind {
                    NLMSG_DONE => return Ok(entries),
                    NLMSG_ERROR => {
                        let errno = error_code(&self.inp[off..]);
                        return Err(io::Error::from_raw_os_error(errno.unsigned_abs() as i32));
                    }
                    _ => entries += 1,
                }
                if len < 16 {
                    return Err(io::Error::other("bad netlink length"));
                }
                off += len.next_multiple_of(4);
            }
        }
    }

    /// Deletes every entry (IPCTNL_MSG_CT_DELETE without a tuple) and waits for the ack.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.clear();
        let m = msg_start(
            &mut self.out,
            IPCTNL_MSG_CT_DELETE,
            NLM_F_REQUEST | NLM_F_ACK,
            self.seq,
            AF_INET,
        );
        msg_end(&mut self.out, m);
        self.seq = self.seq.wrapping_add(1);
        self.send_out()?;
        self.wait_ack()
    }
}

impl RawCt {
    /// Deletes, kernel-side, every IPv4 UDP entry whose original destination port is `port`: one
    /// IPCTNL_MSG_CT_DELETE carrying CTA_FILTER (protocol number + destination port) and a partial
    /// original tuple. Kernels since 6.11 accept CTA_FILTER on a flush; older ones answer EOPNOTSUPP.
    pub fn flush_udp_dport(&mut self, port: u16) -> io::Result<()> {
        self.out.clear();
        let m = msg_start(
            &mut self.out,
            IPCTNL_MSG_CT_DELETE,
            NLM_F_REQUEST | NLM_F_ACK,
            self.seq,
            AF_INET,
        );
        self.udp_dport_filter(port);
        msg_end(&mut self.out, m);
        self.seq = self.seq.wrapping_add(1);
        self.send_out()?;
        self.wait_ack()
    }

    fn wait_ack(&mut self) -> io::Result<()> {
        loop {
            self.inp.clear();
            self.sock.recv(&mut self.inp, 0)?;
            if self.inp.len() >= 20 && u16::from_ne_bytes([self.inp[4], self.inp[5]]) == NLMSG_ERROR
            {
                let errno = error_code(&self.inp);
                return if errno == 0 {
                    Ok(())
                } else {
                    Err(io::Error::from_raw_os_error(-errno))
                };
            }
        }
    }
}

fn error_code(msg: &[u8]) -> i32 {
    match msg.get(16..20) {
        Some(b) => i32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
        None => -libc::EBADMSG,
    }
}

/// Counts NLMSG_ERROR messages with a non-zero code in a receive buffer.
fn count_errors(buf: &[u8]) -> usize {
    let mut off = 0;
    let mut n = 0;
    while off + 16 <= buf.len() {
        let len = u32::from_ne_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]]) as usize;
        let kind = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
        if kind == NLMSG_ERROR && error_code(&buf[off..]) != 0 {
            n += 1;
        }
        if len < 16 {
            break;
        }
        off += len.next_multiple_of(4);
    }
    n
}

/// The number of entries in the calling thread's namespace (`nf_conntrack_count`).
pub fn count() -> io::Result<u64> {
    let s = std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_count")?;
    s.trim()
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nl::NLA_F_NESTED;

    #[test]
    fn flows_are_distinct_and_a_quarter_are_dns() {
        let f = flows(1000);
        let set: std::collections::HashSet<_> = f.iter().map(|x| (x.src, x.sport)).collect();
        assert_eq!(set.len(), 1000);
        assert_eq!(f.iter().filter(|x| x.dport == 53).count(), 250);
        let lines = conntrack_r_lines(&f[..2], 600);
        assert_eq!(
            lines,
            "-I -p udp -s 10.0.0.0 -d 192.0.2.1 --sport 1024 --dport 53 -t 600\n\
             -I -p udp -s 10.0.0.1 -d 192.0.2.1 --sport 1025 --dport 123 -t 600\n"
        );
    }

    #[test]
    fn create_message_layout() {
        let mut buf = Vec::new();
        let f = UdpFlow {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            sport: 1,
            dport: 53,
        };
        emit_create(&mut buf, 7, &f, 60);
        // nlmsghdr 16 + nfgenmsg 4 + two tuples of 52 + timeout 8.
        assert_eq!(buf.len(), 132);
        assert_eq!(u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]), 132);
        assert_eq!(u16::from_ne_bytes([buf[4], buf[5]]), 0x100);
        // CTA_TUPLE_ORIG nest of 52 bytes right after the nfgenmsg.
        assert_eq!(u16::from_ne_bytes([buf[20], buf[21]]), 52);
        assert_eq!(
            u16::from_ne_bytes([buf[22], buf[23]]),
            CTA_TUPLE_ORIG | NLA_F_NESTED
        );
        // The timeout is the last attribute, big-endian.
        assert_eq!(&buf[128..132], &60u32.to_be_bytes());
    }

    /// The floor itself on the real kernel: what it creates is what `conntrack -L` shows, the dump counts
    /// every entry, and the filtered flush removes exactly the `dport 53` quarter.
    #[test]
    fn raw_floor_on_the_kernel() {
        let Some(ns) = testkit::netns() else { return };
        let Some(conntrack) = testkit::require_tool("conntrack") else {
            return;
        };
        let mut raw = RawCt::new().unwrap();
        // Enough flows for several 96 KiB sends (about 745 creates fit in one).
        let f = flows(2000);
        assert_eq!(raw.create_batched(&f, 600).unwrap(), 0);
        assert_eq!(count().unwrap(), 2000);
        // Creating them again fails entry by entry (EEXIST), and every failure is counted.
        assert_eq!(raw.create_batched(&f[..10], 600).unwrap(), 10);
        assert_eq!(raw.dump_count().unwrap(), 2000);
        let out = ns.sh(&format!(
            "{} -L -p udp -s 10.0.0.1 2>/dev/null",
            conntrack.display()
        ));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("src=10.0.0.1 dst=192.0.2.1 sport=1025 dport=123")
                && text.contains("src=192.0.2.1 dst=10.0.0.1 sport=123 dport=1025"),
            "{text}"
        );
        assert_eq!(raw.dump_count_udp_dport(53).unwrap(), 500);
        assert_eq!(raw.dump_count_udp_dport(123).unwrap(), 1500);
        raw.flush_udp_dport(53).unwrap();
        assert_eq!(count().unwrap(), 1500);
        assert_eq!(raw.dump_count_udp_dport(53).unwrap(), 0);
        raw.flush().unwrap();
        assert_eq!(count().unwrap(), 0);
        assert_eq!(raw.dump_count().unwrap(), 0);
    }

    #[test]
    fn error_counting() {
        let mut buf = Vec::new();
        for code in [0i32, -17, -2] {
            buf.extend_from_slice(&36u32.to_ne_bytes());
            buf.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
            buf.extend_from_slice(&[0; 10]);
            buf.extend_from_slice(&code.to_ne_bytes());
            buf.extend_from_slice(&[0; 16]);
        }
        assert_eq!(count_errors(&buf), 2);
    }
}
