//! The raw sockets: IPPROTO 112 for adverts (IPv4 and IPv6) and AF_PACKET for gratuitous ARP and
//! unsolicited Neighbor Advertisements. The only module of the crate with `unsafe` (libc calls).
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::wire::{self, MULTICAST_V4, MULTICAST_V6};

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn setopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: `val` points to a live T of the size passed; the fd is open.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

fn socket(domain: libc::c_int, ty: libc::c_int, proto: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain system call; on success the fd is new and owned by us alone.
    let fd =
        cvt(unsafe { libc::socket(domain, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, proto) })?;
    // SAFETY: fd was just returned by socket(2) and is not owned elsewhere.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A received advert: carrying addresses, TTL / hop limit, and the VRRP payload's range in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Received {
    /// IP source.
    pub src: IpAddr,
    /// IP destination.
    pub dst: IpAddr,
    /// TTL or hop limit.
    pub ttl: u8,
    /// Offset of the VRRP payload.
    pub start: usize,
    /// Length of the VRRP payload.
    pub len: usize,
}

/// A raw IPPROTO 112 socket on one interface and family: bound to the device, joined to the VRRP group,
/// sending with TTL / hop limit 255 and no multicast loop, receiving TTL and destination.
#[derive(Debug)]
pub struct VrrpSocket {
    fd: OwnedFd,
    v6: bool,
    ifindex: u32,
}

impl VrrpSocket {
    /// Opens the socket for interface `ifname` (index `ifindex`).
    pub fn open(ifname: &str, ifindex: u32, v6: bool) -> io::Result<VrrpSocket> {
        let domain = if v6 { libc::AF_INET6 } else { libc::AF_INET };
        let fd = socket(domain, libc::SOCK_RAW, libc::c_int::from(wire::IP_PROTOCOL))?;
        let name = ifname.as_bytes();
        // SAFETY: name points to name.len() readable bytes.
        cvt(unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_BINDTODEVICE,
                name.as_ptr().cast(),
                name.len() as libc::socklen_t,
            )
        })?;
        let one: libc::c_int = 1;
        let zero: libc::c_int = 0;
        let ttl: libc::c_int = 255;
        let idx = libc::c_int::try_from(ifindex).unwrap_or(0);
        if v6 {
            setopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, &ttl)?;
            setopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, &ttl)?;
            setopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, &zero)?;
            setopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, &idx)?;
            setopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, &one)?;
            setopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, &one)?;
            let mreq = libc::ipv6_mreq {
                ipv6mr_multiaddr: libc::in6_addr {
                    s6_addr: MULTICAST_V6.octets(),
                },
                ipv6mr_interface: ifindex,
            };
            setopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_ADD_MEMBERSHIP, &mreq)?;
        } else {
            setopt(&fd, libc::IPPROTO_IP, libc::IP_MULTICAST_TTL, &ttl)?;
            setopt(&fd, libc::IPPROTO_IP, libc::IP_TTL, &ttl)?;
            setopt(&fd, libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, &zero)?;
            setopt(&fd, libc::IPPROTO_IP, libc::IP_PKTINFO, &one)?;
            let mreq = libc::ip_mreqn {
                imr_multiaddr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(MULTICAST_V4.octets()),
                },
                imr_address: libc::in_addr { s_addr: 0 },
                imr_ifindex: idx,
            };
            setopt(&fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &mreq)?;
            setopt(&fd, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &mreq)?;
        }
        Ok(VrrpSocket { fd, v6, ifindex })
    }

    /// Receives one packet into `buf`; `Ok(None)` when nothing is waiting. A packet too short to
    /// carry its IP header comes back with `len` 0.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        // SAFETY: all-zero is a valid value for these plain C structs.
        let mut from: libc::sockaddr_storage = unsafe { zeroed() };
        let mut cbuf = [0u64; 16];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: as above.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_name = (&mut from as *mut libc::sockaddr_storage).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 16]>();
        // SAFETY: msg points to live buffers of the lengths it states.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                return Ok(None);
            }
            return Err(e);
        }
        let n = n as usize;
        if !self.v6 {
            // Raw IPv4 sockets deliver the IP header.
            if n < 20 {
                return Ok(Some(Received {
                    src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    ttl: 0,
                    start: 0,
                    len: 0,
                }));
            }
            let ihl = usize::from(buf[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([buf[2], buf[3]])).min(n);
            let src = Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
            let dst = Ipv4Addr::new(buf[16], buf[17], buf[18], buf[19]);
            let start = ihl.min(total);
            return Ok(Some(Received {
                src: IpAddr::V4(src),
                dst: IpAddr::V4(dst),
                ttl: buf[8],
                start,
                len: total - start,
            }));
        }
        // SAFETY: recvmsg filled a sockaddr_in6 for an AF_INET6 socket.
        let sin6: libc::sockaddr_in6 = unsafe { *(&from as *const libc::sockaddr_storage).cast() };
        let src = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
        let mut dst = Ipv6Addr::UNSPECIFIED;
        let mut ttl = 0u8;
        // SAFETY: walking the control messages the kernel wrote into cbuf with the libc macros.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::IPPROTO_IPV6 {
                    if (*c).cmsg_type == libc::IPV6_HOPLIMIT {
                        let v: libc::c_int = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                        ttl = u8::try_from(v).unwrap_or(0);
                    } else if (*c).cmsg_type == libc::IPV6_PKTINFO {
                        let p: libc::in6_pktinfo =
                            std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                        dst = Ipv6Addr::from(p.ipi6_addr.s6_addr);
                    }
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        Ok(Some(Received {
            src: IpAddr::V6(src),
            dst: IpAddr::V6(dst),
            ttl,
            start: 0,
            len: n,
        }))
    }

    /// Sends a VRRP payload from `src` (a local address) to `dst`.
    pub fn send(&self, src: IpAddr, dst: IpAddr, payload: &[u8]) -> io::Result<()> {
        let mut cbuf = [0u64; 8];
        let mut iov = libc::iovec {
            iov_base: payload.as_ptr().cast_mut().cast(),
            iov_len: payload.len(),
        };
        // SAFETY: all-zero is valid for these C structs.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        // SAFETY: as above.
        let mut sin: libc::sockaddr_in = unsafe { zeroed() };
        // SAFETY: as above.
        let mut sin6: libc::sockaddr_in6 = unsafe { zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) if !self.v6 => {
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_addr.s_addr = u32::from_ne_bytes(d.octets());
                msg.msg_name = (&mut sin as *mut libc::sockaddr_in).cast();
                msg.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
                let info = libc::in_pktinfo {
                    ipi_ifindex: libc::c_int::try_from(self.ifindex).unwrap_or(0),
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from_ne_bytes(s.octets()),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                // SAFETY: CMSG_SPACE of the payload fits in cbuf (64 bytes).
                unsafe {
                    msg.msg_controllen =
                        libc::CMSG_SPACE(size_of::<libc::in_pktinfo>() as u32) as usize;
                    let c = libc::CMSG_FIRSTHDR(&msg);
                    (*c).cmsg_level = libc::IPPROTO_IP;
                    (*c).cmsg_type = libc::IP_PKTINFO;
                    (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32) as usize;
                    std::ptr::write_unaligned(libc::CMSG_DATA(c).cast(), info);
                }
            }
            (IpAddr::V6(s), IpAddr::V6(d)) if self.v6 => {
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_addr.s6_addr = d.octets();
                sin6.sin6_scope_id = self.ifindex;
                msg.msg_name = (&mut sin6 as *mut libc::sockaddr_in6).cast();
                msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: s.octets(),
                    },
                    ipi6_ifindex: self.ifindex,
                };
                // SAFETY: CMSG_SPACE of the payload fits in cbuf (64 bytes).
                unsafe {
                    msg.msg_controllen =
                        libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) as usize;
                    let c = libc::CMSG_FIRSTHDR(&msg);
                    (*c).cmsg_level = libc::IPPROTO_IPV6;
                    (*c).cmsg_type = libc::IPV6_PKTINFO;
                    (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as usize;
                    std::ptr::write_unaligned(libc::CMSG_DATA(c).cast(), info);
                }
            }
            _ => return Err(io::Error::from(io::ErrorKind::InvalidInput)),
        }
        // SAFETY: msg points to live buffers of the lengths it states.
        cvt(unsafe { libc::sendmsg(self.fd.as_raw_fd(), &msg, 0) as libc::c_int }).map(drop)
    }
}

impl AsFd for VrrpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// An AF_PACKET datagram socket (the kernel writes the Ethernet header) for announcements.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
}

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;

impl PacketSocket {
    /// Opens one (protocol 0: it receives nothing).
    pub fn open() -> io::Result<PacketSocket> {
        Ok(PacketSocket {
            fd: socket(libc::AF_PACKET, libc::SOCK_DGRAM, 0)?,
        })
    }

    fn send(&self, ifindex: u32, proto: u16, dst_mac: [u8; 6], frame: &[u8]) -> io::Result<()> {
        // SAFETY: all-zero is valid for sockaddr_ll.
        let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto.to_be();
        sll.sll_ifindex = libc::c_int::try_from(ifindex).unwrap_or(0);
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&dst_mac);
        // SAFETY: frame and sll are live for the call, with the lengths given.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        cvt(rc as libc::c_int).map(drop)
    }

    /// A gratuitous ARP request for `addr` from `mac` on `ifindex`, broadcast.
    pub fn gratuitous_arp(&self, ifindex: u32, mac: [u8; 6], addr: Ipv4Addr) -> io::Result<()> {
        let mut f = [0u8; 28];
        f[0..2].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
        f[2..4].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
        f[4] = 6;
        f[5] = 4;
        f[6..8].copy_from_slice(&1u16.to_be_bytes()); // request, as keepalived sends
        f[8..14].copy_from_slice(&mac);
        f[14..18].copy_from_slice(&addr.octets());
        f[18..24].copy_from_slice(&[0xff; 6]);
        f[24..28].copy_from_slice(&addr.octets());
        self.send(ifindex, ETH_P_ARP, [0xff; 6], &f)
    }

    /// An unsolicited Neighbor Advertisement (RFC 4861 §7.2.6) for `addr` to all nodes, with the
    /// Router and Override flags (RFC 5798 §6.4.2 asks for the router flag) and the target link-layer
    /// address option.
    pub fn unsolicited_na(&self, ifindex: u32, mac: [u8; 6], addr: Ipv6Addr) -> io::Result<()> {
        let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        let mut f = [0u8; 40 + 32];
        f[0] = 0x60;
        f[4..6].copy_from_slice(&32u16.to_be_bytes());
        f[6] = 58; // ICMPv6
        f[7] = 255; // RFC 4861 §7.1.2: hop limit 255
        f[8..24].copy_from_slice(&addr.octets());
        f[24..40].copy_from_slice(&dst.octets());
        let icmp = &mut f[40..];
        icmp[0] = 136;
        icmp[4] = 0xa0; // Router | Override
        icmp[8..24].copy_from_slice(&addr.octets());
        icmp[24] = 2; // target link-layer address
        icmp[25] = 1;
        icmp[26..32].copy_from_slice(&mac);
        let ck = icmpv6_checksum(addr, dst, icmp);
        icmp[2..4].copy_from_slice(&ck.to_be_bytes());
        self.send(ifindex, ETH_P_IPV6, [0x33, 0x33, 0, 0, 0, 1], &f)
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The ICMPv6 checksum (RFC 4443 §2.3) over the IPv6 pseudo-header and `msg` (checksum field zero).
fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&u32::try_from(msg.len()).unwrap_or(0).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(msg);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
