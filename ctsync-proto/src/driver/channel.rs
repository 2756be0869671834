//! The dedicated link: conntrackd's `Multicast` and `UDP` channels (`mcast.c`, `udp.c`), with the same
//! socket options, so that either end can be conntrackd.
//!
//! Each channel is two sockets, as in conntrackd: a receiving one bound to the sync port (pollable through
//! [`Channel::as_fd`]) and a sending one with an ephemeral source port. Both are non-blocking.

use super::Error;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::net::{
    AddressFamily, SocketAddrAny, SocketAddrV4, SocketAddrV6, SocketType, bind, recvfrom, sendto,
    socket, sockopt,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Where the sync traffic goes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Link {
    /// `Multicast { IPv4_address | IPv6_address; Group; IPv4_interface | Interface }`: datagrams to a
    /// multicast group on port `Group`, sent through one interface, loopback off.
    Multicast {
        /// The group (`IPv4_address` or `IPv6_address`).
        group: IpAddr,
        /// IPv4: the address of the interface to send and join on (`IPv4_interface`).
        interface_addr: Option<Ipv4Addr>,
        /// The interface index (`Interface`; IPv6 needs it).
        ifindex: u32,
    },
    /// `UDP { IPv4_address | IPv6_address; IPv4_Destination_Address | IPv6_Destination_Address }`:
    /// unicast datagrams to the peer.
    Udp {
        /// The local address the receiving socket binds to.
        local: IpAddr,
        /// The peer's address.
        peer: IpAddr,
        /// The interface index (`Interface`; scope of IPv6 link-local addresses).
        ifindex: u32,
    },
}

/// A channel's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelConfig {
    /// Multicast or unicast.
    pub link: Link,
    /// UDP port (`Port`, or `Group` for multicast).
    pub port: u16,
    /// `SndSocketBuffer` (0: the system default); set with `SO_SNDBUFFORCE` as conntrackd does.
    pub sndbuf: usize,
    /// `RcvSocketBuffer` (0: the system default); set with `SO_RCVBUFFORCE`.
    pub rcvbuf: usize,
    /// `Checksum` (on by default): off sets `SO_NO_CHECK` on the sending socket.
    pub checksum: bool,
}

impl ChannelConfig {
    /// A channel with default buffers and checksums on.
    pub fn new(link: Link, port: u16) -> Self {
        ChannelConfig {
            link,
            port,
            sndbuf: 0,
            rcvbuf: 0,
            checksum: true,
        }
    }
}

/// Traffic counters (`conntrackd -s link`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LinkStats {
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Datagrams sent.
    pub msgs_sent: u64,
    /// Failed sends.
    pub send_errors: u64,
    /// Bytes received.
    pub bytes_recv: u64,
    /// Datagrams received.
    pub msgs_recv: u64,
    /// Failed receives (other than "nothing to read").
    pub recv_errors: u64,
}

/// An open channel.
#[derive(Debug)]
pub struct Channel {
    rx: OwnedFd,
    tx: OwnedFd,
    dest: SocketAddr,
    stats: LinkStats,
    sndbuf: usize,
    rcvbuf: usize,
}

fn family(a: &IpAddr) -> AddressFamily {
    match a {
        IpAddr::V4(_) => AddressFamily::INET,
        IpAddr::V6(_) => AddressFamily::INET6,
    }
}

fn sockaddr(ip: IpAddr, port: u16, ifindex: u32) -> SocketAddr {
    match ip {
        IpAddr::V4(a) => SocketAddr::V4(SocketAddrV4::new(a, port)),
        IpAddr::V6(a) => {
            // A link-local address needs its interface as scope (conntrackd sets sin6_scope_id).
            let scope = if a.segments()[0] & 0xffc0 == 0xfe80 || a.is_multicast() {
                ifindex
            } else {
                0
            };
            SocketAddr::V6(SocketAddrV6::new(a, port, 0, scope))
        }
    }
}

fn io(what: &'static str, e: rustix::io::Errno) -> Error {
    Error::Channel {
        what,
        source: std::io::Error::from_raw_os_error(e.raw_os_error()),
    }
}

impl Channel {
    /// Opens both sockets with conntrackd's options.
    pub fn open(cfg: &ChannelConfig) -> Result<Channel, Error> {
        let (bind_ip, dest_ip, ifindex) = match &cfg.link {
            Link::Multicast { group, ifindex, .. } => {
                let any = match group {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                };
                (any, *group, *ifindex)
            }
            Link::Udp {
                local,
                peer,
                ifindex,
            } => (*local, *peer, *ifindex),
        };
        if family(&bind_ip) != family(&dest_ip) {
            return Err(Error::Config(
                "the local and destination addresses are of different families",
            ));
        }
        let fam = family(&bind_ip);
        // Receiving side (mcast_server_create / udp_server_create).
        let rx = socket(fam, SocketType::DGRAM, None).map_err(|e| io("socket", e))?;
        sockopt::set_socket_reuseaddr(&rx, true).map_err(|e| io("SO_REUSEADDR", e))?;
        if cfg.rcvbuf > 0 {
            sockopt::set_socket_recv_buffer_size_force(&rx, cfg.rcvbuf)
                .or_else(|_| sockopt::set_socket_recv_buffer_size(&rx, cfg.rcvbuf))
                .map_err(|e| io("SO_RCVBUFFORCE", e))?;
        }
        let rcvbuf = sockopt::socket_recv_buffer_size(&rx).unwrap_or(0);
        bind(&rx, &sockaddr(bind_ip, cfg.port, ifindex)).map_err(|e| io("bind", e))?;
        if let Link::Multicast {
            group,
            interface_addr,
            ifindex,
        } = &cfg.link
        {
            match group {
                IpAddr::V4(g) => sockopt::set_ip_add_membership(
                    &rx,
                    g,
                    &interface_addr.unwrap_or(Ipv4Addr::UNSPECIFIED),
                ),
                IpAddr::V6(g) => sockopt::set_ipv6_add_membership(&rx, g, *ifindex),
            }
            .map_err(|e| io("IP_ADD_MEMBERSHIP", e))?;
        }
        rustix::io::ioctl_fionbio(&rx, true).map_err(|e| io("FIONBIO", e))?;
        // Sending side (mcast_client_create / udp_client_create).
        let tx = socket(fam, SocketType::DGRAM, None).map_err(|e| io("socket", e))?;
        if !cfg.checksum {
            super::sockopt::set_no_check(&tx, true).map_err(|e| Error::Channel {
                what: "SO_NO_CHECK",
                source: e,
            })?;
        }
        if cfg.sndbuf > 0 {
            sockopt::set_socket_send_buffer_size_force(&tx, cfg.sndbuf)
                .or_else(|_| sockopt::set_socket_send_buffer_size(&tx, cfg.sndbuf))
                .map_err(|e| io("SO_SNDBUFFORCE", e))?;
        }
        let sndbuf = sockopt::socket_send_buffer_size(&tx).unwrap_or(0);
        if let Link::Multicast {
            group,
            interface_addr,
            ifindex,
        } = &cfg.link
        {
            match group {
                IpAddr::V4(_) => {
                    sockopt::set_ip_multicast_loop(&tx, false)
                        .map_err(|e| io("IP_MULTICAST_LOOP", e))?;
                    match interface_addr {
                        Some(a) => sockopt::set_ip_multicast_if(&tx, a),
                        None => sockopt::set_ip_multicast_if_with_ifindex(
                            &tx,
                            &Ipv4Addr::UNSPECIFIED,
                            &Ipv4Addr::UNSPECIFIED,
                            *ifindex,
                        ),
                    }
                    .map_err(|e| io("IP_MULTICAST_IF", e))?;
                }
                IpAddr::V6(_) => {
                    sockopt::set_ipv6_multicast_loop(&tx, false)
                        .map_err(|e| io("IPV6_MULTICAST_LOOP", e))?;
                    sockopt::set_ipv6_multicast_if(&tx, *ifindex)
                        .map_err(|e| io("IPV6_MULTICAST_IF", e))?;
                }
            }
        }
        rustix::io::ioctl_fionbio(&tx, true).map_err(|e| io("FIONBIO", e))?;
        Ok(Channel {
            rx,
            tx,
            dest: sockaddr(dest_ip, cfg.port, ifindex),
            stats: LinkStats::default(),
            sndbuf,
            rcvbuf,
        })
    }

    /// Sends one datagram to the peer (or group). A full send queue counts as an error and drops the
    /// datagram, as conntrackd's channel does (FT-FW recovers it through the resend queue).
    pub fn send(&mut self, datagram: &[u8]) -> Result<(), Error> {
        match sendto(
            &self.tx,
            datagram,
            rustix::net::SendFlags::empty(),
            &self.dest,
        ) {
            Ok(n) => {
                self.stats.bytes_sent += n as u64;
                self.stats.msgs_sent += 1;
                Ok(())
            }
            Err(e) => {
                self.stats.send_errors += 1;
                Err(io("sendto", e))
            }
        }
    }

    /// Receives one datagram into `buf`: `Ok(None)` when nothing is queued.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<Option<(usize, Option<SocketAddr>)>, Error> {
        match recvfrom(&self.rx, &mut *buf, rustix::net::RecvFlags::empty()) {
            Ok((n, _, from)) => {
                self.stats.bytes_recv += n as u64;
                self.stats.msgs_recv += 1;
                let from = from.and_then(|a: SocketAddrAny| SocketAddr::try_from(a).ok());
                Ok(Some((n.min(buf.len()), from)))
            }
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => Ok(None),
            Err(e) => {
                self.stats.recv_errors += 1;
                Err(io("recvfrom", e))
            }
        }
    }

    /// Traffic counters.
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// Where datagrams go.
    pub fn destination(&self) -> SocketAddr {
        self.dest
    }

    /// The send buffer the kernel reports (`SO_SNDBUF`).
    pub fn send_buffer(&self) -> usize {
        self.sndbuf
    }

    /// The receive buffer the kernel reports (`SO_RCVBUF`).
    pub fn recv_buffer(&self) -> usize {
        self.rcvbuf
    }

    /// The receiving socket's address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        rustix::net::getsockname(&self.rx)
            .ok()
            .and_then(|a| SocketAddr::try_from(a).ok())
    }
}

impl AsFd for Channel {
    /// The receiving socket, to poll for readability.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.rx.as_fd()
    }
}
