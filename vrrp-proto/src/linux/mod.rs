//! The Linux driver (feature `linux`): a thin blocking loop body around [`Instances`] that turns
//! actions into I/O and packets into input. An HA controller embeds it without the `vrrpd` binary.
//!
//! * [`socket`]: raw IPPROTO 112 sockets per interface and family (bound to the device, joined to
//!   224.0.0.18 / ff02::12, TTL / hop limit 255 out and read back in, RFC 9568 §7.1), and an AF_PACKET
//!   socket for gratuitous ARP and unsolicited Neighbor Advertisements.
//! * [`rtnl`]: rtnetlink through `netlink-packet-route`: virtual addresses (prefix, `dev`, `label`,
//!   scope, broadcast), VMAC macvlans, link state and link events.
//! * [`Driver`]: owns both and the [`Instances`]. Poll [`Driver::fds`] (they are `AsFd`) with
//!   [`Driver::poll_timeout`], then call [`Driver::handle_readable`] / [`Driver::handle_timeout`], and
//!   read what happened from [`Driver::poll_note`] (state changes for notify scripts and logs).
//!
//! What it adds to the system it records, and removes exactly that ([`Driver::shutdown`]): addresses
//! it added (marked with `IFA_PROTO` [`rtnl::ADDRESS_PROTO`], so that a restart after a crash removes
//! its own leftovers and never an address someone else added) and the VMACs it created.
//!
//! ```no_run
//! use std::time::Instant;
//! use vrrp_proto::linux::{Driver, rtnl::Rtnl};
//! use vrrp_proto::{Config, Instances, Router};
//!
//! let mut rtnl = Rtnl::open()?;
//! let eth0 = rtnl.link("eth0")?;
//! let primary = rtnl.primary_address(eth0.index, false)?.expect("an IPv4 address on eth0");
//! let mut set = Instances::new();
//! let cfg = Config::new("eth0", 51, vec!["192.0.2.100".parse()?]);
//! set.add("VI_1", Router::new(cfg, primary)?)?;
//! let mut driver = Driver::new(set)?;
//! driver.start(Instant::now())?;
//! loop {
//!     // poll(2) on driver.fds() until driver.poll_timeout(), then:
//!     driver.handle_readable(Instant::now())?;
//!     driver.handle_timeout(Instant::now());
//!     while let Some(note) = driver.poll_note() {
//!         println!("{note:?}");
//!     }
//! #   break;
//! }
//! driver.shutdown(Instant::now());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod rtnl;
pub mod socket;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Instant;

use crate::config::VirtualAddress;
use crate::instances::{Event, Instances};
use crate::router::{Action, Command, Reason, RxError, State};
use crate::wire::DecodeError;
use rtnl::{ADDRESS_PROTO, Link, LinkEvents, Rtnl};
use socket::{PacketSocket, VrrpSocket};

/// Errors of the Linux driver. Kernel errnos map to the workspace's typed kinds.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// ENOENT, ESRCH, EADDRNOTAVAIL on delete.
    #[error("not found")]
    NotFound,
    /// EEXIST.
    #[error("already exists")]
    Exists,
    /// EPERM or EACCES (kept).
    #[error("permission denied (errno {errno})")]
    PermissionDenied {
        /// The errno.
        errno: i32,
    },
    /// EINVAL.
    #[error("invalid argument")]
    Invalid,
    /// EBUSY.
    #[error("busy")]
    Busy,
    /// The event socket overflowed (ENOBUFS): state must be read again.
    #[error("event socket overrun")]
    Overrun,
    /// Any other kernel errno.
    #[error("kernel error {errno}")]
    Kernel {
        /// The errno.
        errno: i32,
    },
    /// An undecodable netlink reply.
    #[error("undecodable netlink reply")]
    Decode,
    /// A configured interface does not exist.
    #[error("no interface named {name}")]
    NoSuchInterface {
        /// Its name.
        name: String,
    },
    /// An interface has no address of the family to send adverts from.
    #[error("interface {name} has no usable {family} address to send adverts from")]
    NoPrimaryAddress {
        /// The interface.
        name: String,
        /// "IPv4" or "IPv6 link-local".
        family: &'static str,
    },
}

impl Error {
    /// The kernel errno mapped to a kind.
    pub fn from_errno(errno: i32) -> Error {
        match errno {
            libc::ENOENT | libc::ESRCH | libc::ENODEV => Error::NotFound,
            libc::EEXIST => Error::Exists,
            libc::EPERM | libc::EACCES => Error::PermissionDenied { errno },
            libc::EINVAL => Error::Invalid,
            libc::EBUSY => Error::Busy,
            libc::ENOBUFS => Error::Overrun,
            errno => Error::Kernel { errno },
        }
    }

    /// The real kernel errno of a kernel-originated error.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Io(e) => e.raw_os_error(),
            Error::NotFound => Some(libc::ENOENT),
            Error::Exists => Some(libc::EEXIST),
            Error::PermissionDenied { errno } | Error::Kernel { errno } => Some(*errno),
            Error::Invalid => Some(libc::EINVAL),
            Error::Busy => Some(libc::EBUSY),
            Error::Overrun => Some(libc::ENOBUFS),
            _ => None,
        }
    }
}

/// What happened, for logs and notify scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Note {
    /// An instance changed state.
    State {
        /// Its name.
        instance: String,
        /// Before.
        from: State,
        /// After.
        to: State,
        /// Why.
        reason: Reason,
        /// Its effective priority now.
        priority: u8,
    },
    /// A sync group changed state.
    Group {
        /// Its name.
        group: String,
        /// Before.
        from: State,
        /// After.
        to: State,
    },
    /// The owner's advert lists other addresses (RFC 5798 §7.1 asks to log it).
    AddressListMismatch {
        /// The instance.
        instance: String,
        /// The owner.
        from: IpAddr,
    },
    /// A system operation failed (an address could not be added, a send failed...). The protocol goes on.
    Failed {
        /// The instance concerned, if one is.
        instance: Option<String>,
        /// What failed, with the error.
        what: String,
    },
}

/// Per-instance counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Adverts received and accepted.
    pub accepted: u64,
    /// Adverts rejected, by reason ([`rx_reason`]).
    pub rejected: BTreeMap<&'static str, u64>,
    /// Adverts sent.
    pub sent: u64,
    /// Transitions to Master.
    pub became_master: u64,
}

/// A short, stable name for why an advert was rejected (the keys of [`Counters::rejected`]).
pub fn rx_reason(e: &RxError) -> &'static str {
    match e {
        RxError::NotRunning => "not_running",
        RxError::Ttl { .. } => "ttl",
        RxError::Decode(d) => match d {
            DecodeError::Truncated { .. } => "truncated",
            DecodeError::Version { .. } => "version",
            DecodeError::Type { .. } => "type",
            DecodeError::Length { .. } => "length",
            DecodeError::CountZero { .. } => "count",
            DecodeError::AuthHeader { .. } => "auth_type",
            DecodeError::Checksum { .. } => "checksum",
            _ => "malformed",
        },
        RxError::Version { .. } => "version",
        RxError::Family => "family",
        RxError::ChecksumMode { .. } => "checksum_mode",
        RxError::UnknownVrid { .. } => "vrid",
        RxError::Reserved { .. } => "reserved",
        RxError::FirstAddressNotLinkLocal { .. } => "not_link_local",
        RxError::AuthType { .. } => "auth_type",
        RxError::AuthData => "auth_data",
        RxError::AdverInt { .. } => "advert_int",
        RxError::AddressMismatch => "address_list",
        RxError::Own => "own",
        RxError::Destination { .. } => "destination",
        RxError::NotAPeer { .. } => "not_a_peer",
    }
}

#[derive(Debug)]
struct IfSock {
    ifname: String,
    v6: bool,
    sock: VrrpSocket,
}

#[derive(Debug, Clone)]
struct Added {
    instance: String,
    ifindex: u32,
    addr: VirtualAddress,
}

#[derive(Debug, Clone)]
struct Vmac {
    instance: String,
    name: String,
    index: u32,
    mac: [u8; 6],
}

/// The driver: sockets, rtnetlink, and the instances. See the module docs.
#[derive(Debug)]
pub struct Driver {
    set: Instances,
    rtnl: Rtnl,
    links: LinkEvents,
    packet: PacketSocket,
    socks: Vec<IfSock>,
    ifaces: HashMap<String, Link>,
    added: Vec<Added>,
    vmac_wanted: HashMap<String, String>,
    vmacs: Vec<Vmac>,
    notes: VecDeque<Note>,
    counters: HashMap<String, Counters>,
    /// Interface of each instance, kept for reload (a removed instance's last actions).
    iface_of: HashMap<String, String>,
    buf: Vec<u8>,
    out: Vec<u8>,
}

/// The VMAC of a VRID: 00:00:5e:00:01:VRID (IPv4) or 00:00:5e:00:02:VRID (IPv6), RFC 5798 §7.3.
pub fn vmac_address(vrid: u8, v6: bool) -> [u8; 6] {
    [0, 0, 0x5e, 0, if v6 { 2 } else { 1 }, vrid]
}

impl Driver {
    /// Opens the sockets for `set` (built, not started) in the calling thread's network namespace.
    pub fn new(set: Instances) -> Result<Driver, Error> {
        let mut rtnl = Rtnl::open()?;
        let links = LinkEvents::open()?;
        let ifaces = rtnl
            .links()?
            .into_iter()
            .map(|l| (l.name.clone(), l))
            .collect();
        Ok(Driver {
            set,
            rtnl,
            links,
            packet: PacketSocket::open()?,
            socks: Vec::new(),
            ifaces,
            added: Vec::new(),
            vmac_wanted: HashMap::new(),
            vmacs: Vec::new(),
            notes: VecDeque::new(),
            counters: HashMap::new(),
            iface_of: HashMap::new(),
            buf: vec![0; 65536],
            out: vec![0; 4096],
        })
    }

    /// Gives instance `instance` a VMAC macvlan named `name` (keepalived's `use_vmac`): created at
    /// [`Driver::start`], its virtual addresses go on it, announcements leave from its MAC, and it is
    /// deleted at shutdown. Call before `start`.
    pub fn use_vmac(&mut self, instance: &str, name: &str) {
        self.vmac_wanted
            .insert(instance.to_owned(), name.to_owned());
    }

    /// The instances (states, priorities, configs).
    pub fn instances(&self) -> &Instances {
        &self.set
    }

    /// The counters of instance `name`.
    pub fn counters(&self, name: &str) -> Option<&Counters> {
        self.counters.get(name)
    }

    /// The interfaces the driver uses (for a status report).
    pub fn link(&self, name: &str) -> Option<&Link> {
        self.ifaces.get(name)
    }

    /// Checks the interfaces, removes this daemon's leftovers of a previous run, creates the VMACs,
    /// opens the sockets and starts every instance.
    pub fn start(&mut self, now: Instant) -> Result<(), Error> {
        self.prepare()?;
        for i in 0..self.set.len() {
            let ifname = self
                .set
                .router(i)
                .map(|r| r.config().interface.clone())
                .unwrap_or_default();
            let up = self.ifaces.get(&ifname).is_some_and(|l| l.up);
            if !up {
                self.set.command(now, i, Command::InterfaceDown);
            }
        }
        self.sync_tracked_interfaces(now);
        self.set.start(now);
        self.drain();
        Ok(())
    }

    fn prepare(&mut self) -> Result<(), Error> {
        let mut wanted: Vec<(String, bool)> = Vec::new();
        let mut vips: Vec<(String, VirtualAddress)> = Vec::new();
        for (name, r) in self.set.iter() {
            let c = r.config();
            self.iface_of.insert(name.to_owned(), c.interface.clone());
            self.counters.entry(name.to_owned()).or_default();
            if !self.ifaces.contains_key(&c.interface) {
                return Err(Error::NoSuchInterface {
                    name: c.interface.clone(),
                });
            }
            let key = (c.interface.clone(), c.is_ipv6());
            if !wanted.contains(&key) {
                wanted.push(key);
            }
            let vmac = self.vmac_wanted.get(name);
            for a in c
                .virtual_ipaddress
                .iter()
                .chain(&c.virtual_ipaddress_excluded)
            {
                let dev = match (vmac, &a.dev) {
                    (_, Some(d)) => d.clone(),
                    (Some(v), None) => v.clone(),
                    (None, None) => c.interface.clone(),
                };
                vips.push((dev, a.clone()));
            }
        }
        // Leftovers of a killed run: our mark, one of our addresses, on its interface.
        let mine: Vec<_> = self
            .rtnl
            .addresses()?
            .into_iter()
            .filter(|a| a.proto == Some(ADDRESS_PROTO))
            .collect();
        for a in mine {
            let ifname = self
                .ifaces
                .values()
                .find(|l| l.index == a.index)
                .map(|l| l.name.clone());
            if let Some(v) = vips.iter().find(|(d, v)| {
                Some(d) == ifname.as_ref() && v.addr == a.addr && v.prefix_len == a.prefix_len
            }) {
                let _ = self.rtnl.del_address(a.index, &v.1);
            }
        }
        // VMACs: a leftover with our name and VMAC address is ours from a previous run.
        let wanted_vmacs: Vec<(String, String)> = self
            .vmac_wanted
            .iter()
            .map(|(i, v)| (i.clone(), v.clone()))
            .collect();
        for (inst, name) in wanted_vmacs {
            let Some(idx) = self.set.index(&inst) else {
                continue;
            };
            let Some(c) = self.set.router(idx).map(|r| r.config().clone()) else {
                continue;
            };
            let mac = vmac_address(c.virtual_router_id, c.is_ipv6());
            if let Some(old) = self.ifaces.get(&name) {
                if old.mac == mac {
                    self.rtnl.del_link(old.index)?;
                } else {
                    return Err(Error::Exists);
                }
            }
            let parent = self.ifaces.get(&c.interface).map_or(0, |l| l.index);
            let index = self.rtnl.add_macvlan(&name, parent, mac)?;
            self.vmacs.push(Vmac {
                instance: inst.clone(),
                name: name.clone(),
                index,
                mac,
            });
        }
        if !self.vmacs.is_empty() {
            self.refresh_links()?;
        }
        for (ifname, v6) in wanted {
            if self.socks.iter().any(|s| s.ifname == ifname && s.v6 == v6) {
                continue;
            }
            let index = self.ifaces.get(&ifname).map_or(0, |l| l.index);
            let sock = VrrpSocket::open(&ifname, index, v6)?;
            self.socks.push(IfSock { ifname, v6, sock });
        }
        Ok(())
    }

    fn refresh_links(&mut self) -> Result<(), Error> {
        self.ifaces = self
            .rtnl
            .links()?
            .into_iter()
            .map(|l| (l.name.clone(), l))
            .collect();
        Ok(())
    }

    fn sync_tracked_interfaces(&mut self, now: Instant) {
        let names: Vec<String> = self
            .set
            .iter()
            .flat_map(|(_, r)| r.config().track.iter().map(|t| t.name.clone()))
            .filter(|n| n.starts_with("interface:"))
            .collect();
        for n in names {
            let up = self
                .ifaces
                .get(&n["interface:".len()..])
                .is_some_and(|l| l.up);
            self.set.track(now, &n, up);
        }
    }

    /// Every fd to poll for reading.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut v: Vec<BorrowedFd<'_>> = self.socks.iter().map(|s| s.sock.as_fd()).collect();
        v.push(self.links.as_fd());
        v
    }

    /// The nearest deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.set.poll_timeout()
    }

    /// What happened since the last call, in order.
    pub fn poll_note(&mut self) -> Option<Note> {
        self.notes.pop_front()
    }

    /// Reads every pending packet and link event.
    pub fn handle_readable(&mut self, now: Instant) -> Result<(), Error> {
        for k in 0..self.socks.len() {
            loop {
                let got = self.socks[k].sock.recv(&mut self.buf)?;
                let Some(rx) = got else {
                    break;
                };
                let bytes = &self.buf[rx.start..rx.start + rx.len];
                let r = self.set.handle_packet(
                    now,
                    &self.socks[k].ifname,
                    rx.src,
                    rx.dst,
                    rx.ttl,
                    bytes,
                );
                match r {
                    Ok(i) => {
                        let name = self.set.name(i).to_owned();
                        self.counters.entry(name).or_default().accepted += 1;
                    }
                    Err((Some(i), e)) => {
                        let name = self.set.name(i).to_owned();
                        *self
                            .counters
                            .entry(name)
                            .or_default()
                            .rejected
                            .entry(rx_reason(&e))
                            .or_default() += 1;
                    }
                    Err((None, e)) => {
                        // Not attributable to an instance (malformed, or another VRID): counted for
                        // every instance on that interface and family.
                        let (ifname, v6) = (self.socks[k].ifname.clone(), self.socks[k].v6);
                        let names: Vec<String> = self
                            .set
                            .iter()
                            .filter(|(_, r)| {
                                r.config().interface == ifname && r.config().is_ipv6() == v6
                            })
                            .map(|(n, _)| n.to_owned())
                            .collect();
                        for n in names {
                            *self
                                .counters
                                .entry(n)
                                .or_default()
                                .rejected
                                .entry(rx_reason(&e))
                                .or_default() += 1;
                        }
                    }
                }
                self.drain();
            }
        }
        let changes = match self.links.read() {
            Ok(c) => c,
            Err(Error::Overrun) => {
                self.refresh_links()?;
                self.ifaces.values().cloned().collect()
            }
            Err(e) => return Err(e),
        };
        for l in changes {
            let before = self.ifaces.get(&l.name).map(|k| k.up);
            self.ifaces.insert(l.name.clone(), l.clone());
            if before == Some(l.up) {
                continue;
            }
            for i in 0..self.set.len() {
                if self
                    .set
                    .router(i)
                    .is_some_and(|r| r.config().interface == l.name)
                {
                    let cmd = if l.up {
                        Command::InterfaceUp
                    } else {
                        Command::InterfaceDown
                    };
                    self.set.command(now, i, cmd);
                }
            }
            self.set.track(now, &format!("interface:{}", l.name), l.up);
            self.drain();
        }
        Ok(())
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.set.handle_timeout(now);
        self.drain();
    }

    /// A command for instance `name` (false when there is none).
    pub fn command(&mut self, now: Instant, name: &str, cmd: Command) -> bool {
        let Some(i) = self.set.index(name) else {
            return false;
        };
        self.set.command(now, i, cmd);
        self.drain();
        true
    }

    /// A tracked object (a script, say) changed: every instance tracking `name` follows.
    pub fn track(&mut self, now: Instant, name: &str, up: bool) {
        self.set.track(now, name, up);
        self.drain();
    }

    /// Replaces the instances with `next`, keeping unchanged ones running ([`Instances::reload`]).
    pub fn reload(&mut self, now: Instant, next: Instances) -> Result<(), Error> {
        let gone = self.set.reload(now, next);
        for (name, action) in gone {
            self.execute(&name, action);
        }
        // VMACs of instances that no longer want one.
        let keep: Vec<String> = self.vmac_wanted.keys().cloned().collect();
        let stale: Vec<Vmac> = self
            .vmacs
            .iter()
            .filter(|v| !keep.contains(&v.instance) || self.set.index(&v.instance).is_none())
            .cloned()
            .collect();
        for v in stale {
            let _ = self.rtnl.del_link(v.index);
            self.vmacs.retain(|x| x.index != v.index);
        }
        self.refresh_links()?;
        let fresh: Vec<(String, String)> = self
            .vmac_wanted
            .iter()
            .filter(|(i, _)| !self.vmacs.iter().any(|v| &v.instance == *i))
            .map(|(i, v)| (i.clone(), v.clone()))
            .collect();
        let _ = fresh; // VMACs of new instances are created by prepare() below.
        self.prepare_after_reload()?;
        self.sync_tracked_interfaces(now);
        self.drain();
        Ok(())
    }

    fn prepare_after_reload(&mut self) -> Result<(), Error> {
        let wanted: Vec<(String, bool)> = self
            .set
            .iter()
            .map(|(_, r)| (r.config().interface.clone(), r.config().is_ipv6()))
            .collect();
        for (name, r) in self.set.iter() {
            self.iface_of
                .insert(name.to_owned(), r.config().interface.clone());
            self.counters.entry(name.to_owned()).or_default();
        }
        for (ifname, v6) in wanted {
            if self.socks.iter().any(|s| s.ifname == ifname && s.v6 == v6) {
                continue;
            }
            let Some(index) = self.ifaces.get(&ifname).map(|l| l.index) else {
                return Err(Error::NoSuchInterface { name: ifname });
            };
            let sock = VrrpSocket::open(&ifname, index, v6)?;
            self.socks.push(IfSock { ifname, v6, sock });
        }
        Ok(())
    }

    /// Shuts every instance down (Masters send priority 0), then removes every address the driver
    /// added and every VMAC it created.
    pub fn shutdown(&mut self, now: Instant) {
        self.set.shutdown(now);
        self.drain();
        self.cleanup();
    }

    /// Removes what the driver added, without sending anything (after a failed start, say).
    pub fn cleanup(&mut self) {
        for a in std::mem::take(&mut self.added) {
            if let Err(e) = self.rtnl.del_address(a.ifindex, &a.addr) {
                self.notes.push_back(Note::Failed {
                    instance: Some(a.instance.clone()),
                    what: format!("removing {}: {e}", a.addr.addr),
                });
            }
        }
        for v in std::mem::take(&mut self.vmacs) {
            let _ = self.rtnl.del_link(v.index);
        }
    }

    fn drain(&mut self) {
        while let Some(e) = self.set.poll_event() {
            match e {
                Event::Instance { index, action } => {
                    let name = self.set.name(index).to_owned();
                    self.execute(&name, action);
                }
                Event::GroupState { group, from, to } => self.notes.push_back(Note::Group {
                    group: self.set.group_name(group).to_owned(),
                    from,
                    to,
                }),
            }
        }
    }

    fn vmac_of(&self, instance: &str) -> Option<&Vmac> {
        self.vmacs.iter().find(|v| v.instance == instance)
    }

    fn dev_for(&self, instance: &str, a: &VirtualAddress) -> String {
        if let Some(d) = &a.dev {
            return d.clone();
        }
        if let Some(v) = self.vmac_of(instance) {
            return v.name.clone();
        }
        self.iface_of.get(instance).cloned().unwrap_or_default()
    }

    fn execute(&mut self, instance: &str, action: Action) {
        match action {
            Action::SendAdvert(adv) => {
                let Ok(n) = adv.emit(&mut self.out) else {
                    return;
                };
                let ifname = self.iface_of.get(instance).cloned().unwrap_or_default();
                let v6 = adv.dst.is_ipv6();
                if let Some(s) = self.socks.iter().find(|s| s.ifname == ifname && s.v6 == v6) {
                    match s.sock.send(adv.src, adv.dst, &self.out[..n]) {
                        Ok(()) => self.counters.entry(instance.to_owned()).or_default().sent += 1,
                        Err(e) => self.notes.push_back(Note::Failed {
                            instance: Some(instance.to_owned()),
                            what: format!("sending an advert to {}: {e}", adv.dst),
                        }),
                    }
                }
            }
            Action::AddAddresses { addresses, .. } => {
                for a in addresses {
                    let dev = self.dev_for(instance, &a);
                    let Some(ifindex) = self.ifaces.get(&dev).map(|l| l.index) else {
                        self.notes.push_back(Note::Failed {
                            instance: Some(instance.to_owned()),
                            what: format!("adding {}: no interface {dev}", a.addr),
                        });
                        continue;
                    };
                    match self.rtnl.add_address(ifindex, &a) {
                        Ok(()) => self.added.push(Added {
                            instance: instance.to_owned(),
                            ifindex,
                            addr: a,
                        }),
                        // Someone else's address: used, never removed by us.
                        Err(Error::Exists) => {}
                        Err(e) => self.notes.push_back(Note::Failed {
                            instance: Some(instance.to_owned()),
                            what: format!("adding {}/{} on {dev}: {e}", a.addr, a.prefix_len),
                        }),
                    }
                }
            }
            Action::RemoveAddresses { addresses } => {
                for a in addresses {
                    let Some(pos) = self
                        .added
                        .iter()
                        .position(|x| x.instance == instance && x.addr.addr == a.addr)
                    else {
                        continue;
                    };
                    let x = self.added.remove(pos);
                    match self.rtnl.del_address(x.ifindex, &x.addr) {
                        Ok(()) | Err(Error::NotFound) => {}
                        Err(e) => self.notes.push_back(Note::Failed {
                            instance: Some(instance.to_owned()),
                            what: format!("removing {}: {e}", a.addr),
                        }),
                    }
                }
            }
            Action::Announce { addresses, repeat } => {
                for a in addresses {
                    let dev = self.dev_for(instance, &a);
                    let Some(link) = self.ifaces.get(&dev) else {
                        continue;
                    };
                    let mac: [u8; 6] = match self.vmac_of(instance) {
                        Some(v) if v.name == dev => v.mac,
                        _ => match <[u8; 6]>::try_from(link.mac.as_slice()) {
                            Ok(m) => m,
                            Err(_) => continue,
                        },
                    };
                    let index = link.index;
                    for _ in 0..repeat {
                        let r = match a.addr {
                            IpAddr::V4(x) => self.packet.gratuitous_arp(index, mac, x),
                            IpAddr::V6(x) => self.packet.unsolicited_na(index, mac, x),
                        };
                        if let Err(e) = r {
                            self.notes.push_back(Note::Failed {
                                instance: Some(instance.to_owned()),
                                what: format!("announcing {} on {dev}: {e}", a.addr),
                            });
                            break;
                        }
                    }
                }
            }
            Action::AddressListMismatch { from } => {
                self.notes.push_back(Note::AddressListMismatch {
                    instance: instance.to_owned(),
                    from,
                })
            }
            Action::StateChange { from, to, reason } => {
                let priority = self
                    .set
                    .index(instance)
                    .and_then(|i| self.set.router(i))
                    .map_or(0, |r| r.priority());
                if to == State::Master {
                    self.counters
                        .entry(instance.to_owned())
                        .or_default()
                        .became_master += 1;
                }
                self.notes.push_back(Note::State {
                    instance: instance.to_owned(),
                    from,
                    to,
                    reason,
                    priority,
                });
            }
            _ => {}
        }
    }
}
