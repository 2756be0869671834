//! The raw IPVS floor for the IPVS bench: hand-built generic netlink messages straight onto a netlink-sys
//! socket, nothing from `ipvs-nl`, so the floor measures only what the kernel and the socket cost.
//!
//! * restore: pre-built `IPVS_CMD_NEW_SERVICE`/`IPVS_CMD_NEW_DEST` requests, many per `send`, acks counted
//!   (and checked to be 0) without decoding anything else;
//! * listing (`ipvsadm -S -n`'s kernel work): one service dump, then one destination dump per service,
//!   messages counted, nothing decoded. The kernel sizes every dump datagram to the largest receive buffer
//!   the socket has used (capped at 32 KiB), and IPVS restarts its service walk for every datagram, so the
//!   service dump wants a large buffer and the per-service destination dumps a small one: the floor takes
//!   both sizes as parameters, and optionally receives a dump's data and its `NLMSG_DONE` with one
//!   `recvmmsg`. The bench measures a grid of them and calls the fastest the floor.
//!
//! Facts from `include/uapi/linux/ip_vs.h`, `include/uapi/linux/genetlink.h` and
//! `net/netfilter/ipvs/ip_vs_ctl.c` (which attributes a full service or destination needs).
#![allow(unsafe_code)] // one recvmmsg(2) call, which netlink-sys does not wrap

use crate::nl::{NLA_F_NESTED, attr, msg_end, nest_end, nest_start, put_u16};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_GENERIC};
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;

const IPVS_GENL_VERSION: u8 = 1;
const CMD_NEW_SERVICE: u8 = 1;
const CMD_GET_SERVICE: u8 = 4;
const CMD_NEW_DEST: u8 = 5;
const CMD_GET_DEST: u8 = 8;
const ATTR_SERVICE: u16 = 1;
const ATTR_DEST: u16 = 2;
const SVC_AF: u16 = 1;
const SVC_PROTOCOL: u16 = 2;
const SVC_ADDR: u16 = 3;
const SVC_PORT: u16 = 4;
const SVC_SCHED_NAME: u16 = 6;
const SVC_FLAGS: u16 = 7;
const SVC_TIMEOUT: u16 = 8;
const SVC_NETMASK: u16 = 9;
const DEST_ADDR: u16 = 1;
const DEST_PORT: u16 = 2;
const DEST_FWD_METHOD: u16 = 3;
const DEST_WEIGHT: u16 = 4;
const DEST_U_THRESH: u16 = 5;
const DEST_L_THRESH: u16 = 6;
const DEST_ADDR_FAMILY: u16 = 11;

const AF_INET: u16 = 2;
const IPPROTO_TCP: u16 = 6;
/// `IP_VS_CONN_F_MASQ`.
const FWD_MASQ: u32 = 0;

/// One TCP service with its masquerading destinations, as an `ipvsadm -R` file would add them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpService {
    /// Virtual address.
    pub addr: Ipv4Addr,
    /// Virtual port.
    pub port: u16,
    /// Scheduler name.
    pub scheduler: String,
    /// `(real server, port, weight)`.
    pub dests: Vec<(Ipv4Addr, u16, u32)>,
}

/// Starts a generic netlink message (nlmsghdr + genlmsghdr); returns where its length goes.
fn msg_start(buf: &mut Vec<u8>, family: u16, flags: u16, seq: u32, cmd: u8, version: u8) -> usize {
    let at = buf.len();
    buf.extend_from_slice(&0u32.to_ne_bytes());
    put_u16(buf, family);
    put_u16(buf, flags);
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(&[cmd, version, 0, 0]);
    at
}

/// The service key attributes (family, protocol, address, port) inside an open `IPVS_CMD_ATTR_SERVICE`.
fn service_key(buf: &mut Vec<u8>, s: &TcpService) {
    attr(buf, SVC_AF, &AF_INET.to_ne_bytes());
    attr(buf, SVC_PROTOCOL, &IPPROTO_TCP.to_ne_bytes());
    attr(buf, SVC_ADDR, &s.addr.octets());
    attr(buf, SVC_PORT, &s.port.to_be_bytes());
}

/// Appends `IPVS_CMD_NEW_SERVICE` for `s` (a full entry: scheduler, flags, timeout and netmask are
/// required by the kernel), with an ack requested.
pub fn emit_new_service(buf: &mut Vec<u8>, family: u16, seq: u32, s: &TcpService) {
    let m = msg_start(
        buf,
        family,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        CMD_NEW_SERVICE,
        IPVS_GENL_VERSION,
    );
    let n = nest_start(buf, ATTR_SERVICE);
    service_key(buf, s);
    let mut sched = s.scheduler.as_bytes().to_vec();
    sched.push(0);
    attr(buf, SVC_SCHED_NAME, &sched);
    // struct ip_vs_flags { flags, mask }: no flags.
    attr(buf, SVC_FLAGS, &[0; 8]);
    attr(buf, SVC_TIMEOUT, &0u32.to_ne_bytes());
    attr(buf, SVC_NETMASK, &u32::MAX.to_ne_bytes());
    nest_end(buf, n);
    msg_end(buf, m);
}

/// Appends `IPVS_CMD_NEW_DEST` adding `(addr, port, weight)` to `s` as a masquerading destination, with an
/// ack requested.
pub fn emit_new_dest(
    buf: &mut Vec<u8>,
    family: u16,
    seq: u32,
    s: &TcpService,
    (addr, port, weight): (Ipv4Addr, u16, u32),
) {
    let m = msg_start(
        buf,
        family,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        CMD_NEW_DEST,
        IPVS_GENL_VERSION,
    );
    let n = nest_start(buf, ATTR_SERVICE);
    service_key(buf, s);
    nest_end(buf, n);
    let d = nest_start(buf, ATTR_DEST);
    attr(buf, DEST_ADDR, &addr.octets());
    attr(buf, DEST_PORT, &port.to_be_bytes());
    attr(buf, DEST_FWD_METHOD, &FWD_MASQ.to_ne_bytes());
    attr(buf, DEST_WEIGHT, &weight.to_ne_bytes());
    attr(buf, DEST_U_THRESH, &0u32.to_ne_bytes());
    attr(buf, DEST_L_THRESH, &0u32.to_ne_bytes());
    attr(buf, DEST_ADDR_FAMILY, &AF_INET.to_ne_bytes());
    nest_end(buf, d);
    msg_end(buf, m);
}

/// A walk over the netlink messages of a datagram: `(type, payload after the nlmsghdr)`.
fn messages(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut off = 0;
    std::iter::from_fn(move || {
        let h = buf.get(off..off + 16)?;
        let len = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let kind = u16::from_ne_bytes([h[4], h[5]]);
        if len < 16 || off + len > buf.len() {
            return None;
        }
        let payload = &buf[off + 16..off + len];
        off += len.next_multiple_of(4);
        Some((kind, payload))
    })
}

/// The attributes of a payload: `(type without flags, value)`.
fn attrs(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut off = 0;
    std::iter::from_fn(move || {
        let h = buf.get(off..off + 4)?;
        let len = u16::from_ne_bytes([h[0], h[1]]) as usize;
        let kind = u16::from_ne_bytes([h[2], h[3]]) & 0x3fff;
        if len < 4 || off + len > buf.len() {
            return None;
        }
        let v = &buf[off + 4..off + len];
        off += len.next_multiple_of(4);
        Some((kind, v))
    })
}

fn errno_of(payload: &[u8]) -> i32 {
    payload.get(..4).map_or(-libc::EBADMSG, |b| {
        i32::from_ne_bytes([b[0], b[1], b[2], b[3]])
    })
}

/// A raw generic netlink socket that talks to the IPVS family of the calling thread's namespace.
#[derive(Debug)]
pub struct RawIpvs {
    sock: Socket,
    /// The IPVS family id.
    pub family: u16,
    seq: u32,
    recv_len: usize,
    bufs: [Vec<u8>; 2],
}

impl RawIpvs {
    /// Opens a socket whose every receive uses `recv_len` bytes (the kernel then sizes dump datagrams to
    /// it, up to 32 KiB) and resolves the IPVS family.
    pub fn open(recv_len: usize) -> io::Result<RawIpvs> {
        let mut sock = Socket::new(NETLINK_GENERIC)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        let _ = sock.set_cap_ack(true);
        let _ = sock.set_rx_buf_sz(4 << 20);
        let mut me = RawIpvs {
            sock,
            family: 0,
            seq: 1,
            recv_len,
            bufs: [vec![0; recv_len], vec![0; recv_len]],
        };
        let mut req = Vec::new();
        let m = msg_start(
            &mut req,
            GENL_ID_CTRL,
            NLM_F_REQUEST,
            1,
            CTRL_CMD_GETFAMILY,
            1,
        );
        attr(&mut req, CTRL_ATTR_FAMILY_NAME, b"IPVS\0");
        msg_end(&mut req, m);
        me.sock.send(&req, 0)?;
        let n = me.recv1()?;
        let mut family = None;
        for (kind, payload) in messages(&me.bufs[0][..n]) {
            if kind == NLMSG_ERROR {
                return Err(io::Error::from_raw_os_error(-errno_of(payload)));
            }
            family = attrs(payload.get(4..).unwrap_or_default())
                .find(|(k, v)| *k == CTRL_ATTR_FAMILY_ID && v.len() == 2)
                .map(|(_, v)| u16::from_ne_bytes([v[0], v[1]]));
        }
        me.family = family.ok_or_else(|| io::Error::other("no IPVS family id in the reply"))?;
        Ok(me)
    }

    fn recv1(&mut self) -> io::Result<usize> {
        let mut b: &mut [u8] = &mut self.bufs[0][..self.recv_len];
        self.sock.recv(&mut b, 0)
    }

    /// Receives one datagram, waiting for it, plus a second one if it is already queued. Returns how many
    /// and their lengths.
    fn recv2(&mut self) -> io::Result<(usize, [usize; 2])> {
        let [a, b] = &mut self.bufs;
        let mut iov = [
            libc::iovec {
                iov_base: a.as_mut_ptr().cast(),
                iov_len: self.recv_len,
            },
            libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: self.recv_len,
            },
        ];
        // SAFETY: an all-zero mmsghdr is a valid "no name, no control" header.
        let mut msgs: [libc::mmsghdr; 2] = unsafe { std::mem::zeroed() };
        for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: both headers point at one iovec each, each of `recv_len` writable bytes in a buffer of
        // that length that lives until the call returns; the kernel writes at most `iov_len` bytes per
        // message and fills `msg_len`.
        let rc = unsafe {
            libc::recvmmsg(
                self.sock.as_raw_fd(),
                msgs.as_mut_ptr(),
                2,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((
            rc as usize,
            [msgs[0].msg_len as usize, msgs[1].msg_len as usize],
        ))
    }

    /// Sends pre-built request datagrams `(bytes, requests in it)`, one after the other, and waits for each
    /// one's acks. Fails on the first non-zero errno.
    pub fn restore(&mut self, datagrams: &[(Vec<u8>, usize)]) -> io::Result<()> {
        for (bytes, n) in datagrams {
            self.sock.send(bytes, 0)?;
            let mut acks = 0;
            while acks < *n {
                let len = self.recv1()?;
                for (kind, payload) in messages(&self.bufs[0][..len]) {
                    if kind == NLMSG_ERROR {
                        let e = errno_of(payload);
                        if e != 0 {
                            return Err(io::Error::from_raw_os_error(-e));
                        }
                        acks += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// Dumps `cmd` (with `service`, the raw nested service attribute of a service dump reply, for a
    /// destination dump); returns, for each message, its nested `IPVS_CMD_ATTR_SERVICE` bytes (empty for
    /// destinations: only counted). With `mmsg`, up to two datagrams per system call.
    fn dump(&mut self, cmd: u8, service: Option<&[u8]>, mmsg: bool) -> io::Result<Vec<Vec<u8>>> {
        let mut req = Vec::with_capacity(256);
        self.seq = self.seq.wrapping_add(1);
        let m = msg_start(
            &mut req,
            self.family,
            NLM_F_REQUEST | NLM_F_DUMP,
            self.seq,
            cmd,
            IPVS_GENL_VERSION,
        );
        if let Some(s) = service {
            attr(&mut req, ATTR_SERVICE | NLA_F_NESTED, s);
        }
        msg_end(&mut req, m);
        self.sock.send(&req, 0)?;
        let mut out = Vec::new();
        loop {
            let (n, lens) = if mmsg {
                self.recv2()?
            } else {
                (1, [self.recv1()?, 0])
            };
            for (buf, len) in self.bufs.iter().zip(lens).take(n) {
                for (kind, payload) in messages(&buf[..len]) {
                    match kind {
                        NLMSG_DONE => return Ok(out),
                        NLMSG_ERROR => {
                            return Err(io::Error::from_raw_os_error(-errno_of(payload)));
                        }
                        _ if cmd == CMD_GET_SERVICE => out.push(
                            attrs(payload.get(4..).unwrap_or_default())
                                .find(|(k, _)| *k == ATTR_SERVICE)
                                .map(|(_, v)| v.to_vec())
                                .unwrap_or_default(),
                        ),
                        _ => out.push(Vec::new()),
                    }
                }
            }
        }
    }
}

/// The listing floor: the service dump on a socket receiving `svc_len` bytes at a time, then one
/// destination dump per service on a second socket receiving `dest_len`; `mmsg` receives a dump's data and
/// its `NLMSG_DONE` in one system call. Sockets are opened before the clock starts. Returns the time and
/// `(services, destinations)` counted.
pub fn list(
    svc_len: usize,
    dest_len: usize,
    mmsg: bool,
) -> io::Result<(std::time::Duration, usize, usize)> {
    let mut svc = RawIpvs::open(svc_len)?;
    let mut dst = RawIpvs::open(dest_len)?;
    let t = std::time::Instant::now();
    let services = svc.dump(CMD_GET_SERVICE, None, mmsg)?;
    let mut dests = 0;
    for s in &services {
        dests += dst.dump(CMD_GET_DEST, Some(s), mmsg)?.len();
    }
    Ok((t.elapsed(), services.len(), dests))
}

/// Pre-builds the restore of `services`: every request, `per_send` to a datagram.
pub fn restore_datagrams(
    family: u16,
    services: &[TcpService],
    per_send: usize,
) -> Vec<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut n = 0;
    let mut seq = 0u32;
    let mut push = |cur: &mut Vec<u8>, n: &mut usize| {
        if *n == per_send {
            out.push((std::mem::take(cur), *n));
            *n = 0;
        }
    };
    for s in services {
        seq += 1;
        emit_new_service(&mut cur, family, seq, s);
        n += 1;
        push(&mut cur, &mut n);
        for d in &s.dests {
            seq += 1;
            emit_new_dest(&mut cur, family, seq, s, *d);
            n += 1;
            push(&mut cur, &mut n);
        }
    }
    if n > 0 {
        out.push((cur, n));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc() -> TcpService {
        TcpService {
            addr: Ipv4Addr::new(10, 1, 0, 1),
            port: 80,
            scheduler: "wlc".into(),
            dests: vec![(Ipv4Addr::new(10, 100, 0, 1), 8080, 1)],
        }
    }

    #[test]
    fn request_layout() {
        let mut b = Vec::new();
        emit_new_service(&mut b, 0x22, 7, &svc());
        // nlmsghdr 16 + genl 4 + service nest 4 + af 8 + proto 8 + addr 8 + port 8 + "wlc\0" 8 +
        // flags 12 + timeout 8 + netmask 8.
        assert_eq!(b.len(), 92);
        assert_eq!(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]), 92);
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), 0x22);
        assert_eq!(&b[16..18], &[CMD_NEW_SERVICE, IPVS_GENL_VERSION]);
        let (kind, payload) = messages(&b).next().unwrap();
        assert_eq!(kind, 0x22);
        let nested: Vec<u16> = attrs(&payload[4..])
            .flat_map(|(k, v)| {
                assert_eq!(k, ATTR_SERVICE);
                attrs(v).map(|(k, _)| k).collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(
            nested,
            [
                SVC_AF,
                SVC_PROTOCOL,
                SVC_ADDR,
                SVC_PORT,
                SVC_SCHED_NAME,
                SVC_FLAGS,
                SVC_TIMEOUT,
                SVC_NETMASK
            ]
        );
    }

    #[test]
    fn restore_is_split_into_sends() {
        let services = vec![svc(); 3];
        let d = restore_datagrams(0x22, &services, 4);
        assert_eq!(d.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [4, 2]);
        let msgs: usize = d.iter().map(|(b, _)| messages(b).count()).sum();
        assert_eq!(msgs, 6);
    }
}
