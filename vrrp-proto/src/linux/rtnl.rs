//! rtnetlink through the rust-netlink crates: interfaces, addresses, macvlans and link events.

use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressMessage, AddressProtocol, AddressScope,
};
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoKind, InfoMacVlan, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage, MacVlanMode,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, protocols::NETLINK_ROUTE};

use super::Error;
use crate::config::VirtualAddress;

/// The `IFA_PROTO` mark vrrpd puts on the addresses it adds (kernel 6.3+ keeps it), so that a restart
/// after a crash can tell its own leftovers from addresses someone else added. 0x56 is 'V'.
pub const ADDRESS_PROTO: u8 = 0x56;

/// An interface, as rtnetlink reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Name.
    pub name: String,
    /// Hardware address (empty when it has none).
    pub mac: Vec<u8>,
    /// Administratively up and running (carrier).
    pub up: bool,
    /// The lower device of a macvlan or VLAN, if any.
    pub parent: Option<u32>,
}

/// An address of an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Address {
    /// Interface index.
    pub index: u32,
    /// The address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// `IFA_PROTO`, when the kernel reported one.
    pub proto: Option<u8>,
}

/// A blocking rtnetlink request socket.
#[derive(Debug)]
pub struct Rtnl {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

fn kernel(errno: i32) -> Error {
    Error::from_errno(errno)
}

impl Rtnl {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<Rtnl, Error> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(Error::Io)?;
        sock.bind_auto().map_err(Error::Io)?;
        Ok(Rtnl {
            sock,
            seq: 0,
            buf: vec![0; 64 * 1024],
        })
    }

    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, Error> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut m = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        m.finalize();
        let mut out = vec![0u8; m.buffer_len()];
        m.serialize(&mut out);
        self.sock.send(&out, 0).map_err(Error::Io)?;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut replies = Vec::new();
        loop {
            let n = self
                .sock
                .recv(&mut &mut self.buf[..], 0)
                .map_err(Error::Io)?;
            let mut off = 0;
            while off < n {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..n])
                    .map_err(|_| Error::Decode)?;
                let len = msg.header.length as usize;
                if len == 0 {
                    return Err(Error::Decode);
                }
                off += len.next_multiple_of(4);
                if msg.header.sequence_number != self.seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::Error(e) => match e.code {
                        None => return Ok(replies),
                        Some(code) => return Err(kernel(-code.get())),
                    },
                    NetlinkPayload::InnerMessage(inner) => {
                        replies.push(inner);
                        if !dump {
                            // An answer without ACK (a GET by index) ends the exchange.
                            if flags & NLM_F_ACK == 0 {
                                return Ok(replies);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Every interface.
    pub fn links(&mut self) -> Result<Vec<Link>, Error> {
        let replies = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(link_of(&l)),
                _ => None,
            })
            .collect())
    }

    /// The interface named `name`.
    pub fn link(&mut self, name: &str) -> Result<Link, Error> {
        self.links()?
            .into_iter()
            .find(|l| l.name == name)
            .ok_or(Error::NoSuchInterface {
                name: name.to_owned(),
            })
    }

    /// Every address of every interface (of one family when `family` is given).
    pub fn addresses(&mut self) -> Result<Vec<Address>, Error> {
        let replies = self.request(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_DUMP,
        )?;
        let mut out = Vec::new();
        for m in replies {
            let RouteNetlinkMessage::NewAddress(a) = m else {
                continue;
            };
            let mut addr = None;
            let mut local = None;
            let mut proto = None;
            for attr in &a.attributes {
                match attr {
                    AddressAttribute::Address(x) => addr = Some(*x),
                    AddressAttribute::Local(x) => local = Some(*x),
                    AddressAttribute::Protocol(p) => proto = Some(u8::from(*p)),
                    _ => {}
                }
            }
            if let Some(addr) = local.or(addr) {
                out.push(Address {
                    index: a.header.index,
                    addr,
                    prefix_len: a.header.prefix_len,
                    proto,
                });
            }
        }
        Ok(out)
    }

    /// The primary address of interface `index` for a family: for IPv6 the first link-local one, for
    /// IPv4 the first one (what keepalived uses as the advert source).
    pub fn primary_address(&mut self, index: u32, v6: bool) -> Result<Option<IpAddr>, Error> {
        Ok(self
            .addresses()?
            .into_iter()
            .filter(|a| {
                a.index == index && a.addr.is_ipv6() == v6 && a.proto != Some(ADDRESS_PROTO)
            })
            .map(|a| a.addr)
            .find(|a| match a {
                IpAddr::V6(x) => x.is_unicast_link_local(),
                IpAddr::V4(_) => true,
            }))
    }

    fn addr_msg(index: u32, v: &VirtualAddress) -> AddressMessage {
        let mut m = AddressMessage::default();
        m.header.family = if v.addr.is_ipv6() {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        m.header.prefix_len = v.prefix_len;
        m.header.scope = AddressScope::from(v.scope.to_u8());
        m.header.index = index;
        m.attributes.push(AddressAttribute::Local(v.addr));
        if v.addr.is_ipv4() {
            m.attributes.push(AddressAttribute::Address(v.addr));
        }
        if let Some(b) = v.broadcast {
            m.attributes.push(AddressAttribute::Broadcast(b));
        }
        if let Some(l) = &v.label
            && v.addr.is_ipv4()
        {
            m.attributes.push(AddressAttribute::Label(l.clone()));
        }
        if v.addr.is_ipv6() {
            // Usable at once, as keepalived adds them: no duplicate address detection delay.
            m.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        m.attributes
            .push(AddressAttribute::Protocol(AddressProtocol::from(
                ADDRESS_PROTO,
            )));
        m
    }

    /// Adds `v` to interface `index`; [`Error::Exists`] when it is already there.
    pub fn add_address(&mut self, index: u32, v: &VirtualAddress) -> Result<(), Error> {
        let m = Self::addr_msg(index, v);
        self.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Removes `v` from interface `index`; [`Error::NotFound`] when it is not there.
    pub fn del_address(&mut self, index: u32, v: &VirtualAddress) -> Result<(), Error> {
        let m = Self::addr_msg(index, v);
        match self.request(RouteNetlinkMessage::DelAddress(m), NLM_F_ACK) {
            // The kernel says EADDRNOTAVAIL for a missing address.
            Err(Error::Kernel { errno }) if errno == libc::EADDRNOTAVAIL => Err(Error::NotFound),
            r => r.map(drop),
        }
    }

    /// Creates a macvlan `name` on `parent` (mode private, as keepalived's VMACs) with `mac`, turns
    /// IPv6 address generation off on it (RFC 5798 §7.4: no link-local address derived from the
    /// VMAC; keepalived does the same), and sets it up. Returns its index. A failure after the
    /// creation deletes it again.
    pub fn add_macvlan(&mut self, name: &str, parent: u32, mac: [u8; 6]) -> Result<u32, Error> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        m.attributes.push(LinkAttribute::Link(parent));
        m.attributes.push(LinkAttribute::Address(mac.to_vec()));
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::MacVlan),
            LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(
                MacVlanMode::Private,
            )])),
        ]));
        self.request(
            RouteNetlinkMessage::NewLink(m),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        let index = self.link(name)?.index;
        // The address generation mode cannot go with the creation (the kernel ignores IFLA_AF_SPEC
        // there) and must be set before the link goes up, or the EUI-64 address is already made.
        let mut g = LinkMessage::default();
        g.header.index = index;
        g.attributes
            .push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
                vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)],
            )]));
        let r = self
            .request(RouteNetlinkMessage::SetLink(g), NLM_F_ACK)
            .and_then(|_| self.set_up(index, true));
        if let Err(e) = r {
            let _ = self.del_link(index);
            return Err(e);
        }
        Ok(index)
    }

    /// Sets interface `index` administratively up or down.
    pub fn set_up(&mut self, index: u32, up: bool) -> Result<(), Error> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        if up {
            m.header.flags = LinkFlags::Up;
        }
        m.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(m), NLM_F_ACK)
            .map(drop)
    }

    /// Deletes interface `index`.
    pub fn del_link(&mut self, index: u32) -> Result<(), Error> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        self.request(RouteNetlinkMessage::DelLink(m), NLM_F_ACK)
            .map(drop)
    }
}

fn link_of(l: &LinkMessage) -> Link {
    let mut name = String::new();
    let mut mac = Vec::new();
    let mut parent = None;
    for a in &l.attributes {
        match a {
            LinkAttribute::IfName(n) => name = n.clone(),
            LinkAttribute::Address(m) => mac = m.clone(),
            LinkAttribute::Link(p) => parent = Some(*p),
            _ => {}
        }
    }
    let f = l.header.flags;
    Link {
        index: l.header.index,
        name,
        mac,
        up: f.contains(LinkFlags::Up) && f.contains(LinkFlags::Running),
        parent,
    }
}

/// A non-blocking socket subscribed to link changes (`RTNLGRP_LINK`): poll its fd, then [`read`].
///
/// [`read`]: LinkEvents::read
#[derive(Debug)]
pub struct LinkEvents {
    sock: Socket,
    buf: Vec<u8>,
}

/// `RTNLGRP_LINK`.
const RTNLGRP_LINK: u32 = 1;

impl LinkEvents {
    /// Subscribes in the calling thread's namespace.
    pub fn open() -> Result<LinkEvents, Error> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(Error::Io)?;
        sock.bind_auto().map_err(Error::Io)?;
        sock.add_membership(RTNLGRP_LINK).map_err(Error::Io)?;
        sock.set_non_blocking(true).map_err(Error::Io)?;
        Ok(LinkEvents {
            sock,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Every pending change (new or changed links; `up` false for deleted ones). An overrun of the
    /// socket buffer is [`Error::Overrun`]: re-read the links then.
    pub fn read(&mut self) -> Result<Vec<Link>, Error> {
        let mut out = Vec::new();
        loop {
            let n = match self.sock.recv(&mut &mut self.buf[..], 0) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(out),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return Err(Error::Overrun),
                Err(e) => return Err(Error::Io(e)),
            };
            let mut off = 0;
            while off < n {
                let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..n])
                else {
                    break;
                };
                let len = msg.header.length as usize;
                if len == 0 {
                    break;
                }
                off += len.next_multiple_of(4);
                match msg.payload {
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => {
                        out.push(link_of(&l))
                    }
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(l)) => {
                        let mut k = link_of(&l);
                        k.up = false;
                        out.push(k);
                    }
                    _ => {}
                }
            }
        }
    }
}

impl AsFd for LinkEvents {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}
