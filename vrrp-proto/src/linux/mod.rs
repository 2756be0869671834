//! The Linux driver (feature `linux`): a thin blocking loop body around [`Instances`] that turns
//! actions into I/O and packets into input. An HA controller embeds it without the `vrrpd` binary.
//!
//! * [`socket`]: raw IPPROTO 112 sockets per device and family (bound to the device, joined to
//!   224.0.0.18 / ff02::12, TTL / hop limit 255 out and read back in, RFC 9568 §7.1), and an AF_PACKET
//!   socket for gratuitous ARP and unsolicited Neighbor Advertisements. The device is the instance's
//!   interface, or its VMAC: with [`InstanceOptions::vmac`], as keepalived does by default, adverts
//!   leave from the VMAC (source MAC 00:00:5e:00:01:VRID, :02: for IPv6) and arrive on it, unless
//!   [`InstanceOptions::vmac_xmit_base`].
//! * [`rtnl`]: rtnetlink through `netlink-packet-route`: virtual addresses (prefix, `dev`, `label`,
//!   scope, broadcast), VMAC macvlans, link state and link events.
//! * [`Driver`]: owns both and the [`Instances`]. Poll [`Driver::fds`] (they are `AsFd`) with
//!   [`Driver::poll_timeout`], then call [`Driver::handle_readable`] / [`Driver::handle_timeout`], and
//!   read what happened from [`Driver::poll_note`] (state changes for notify scripts and logs).
//!
//! What it adds to the system it records, and removes exactly that ([`Driver::shutdown`]): addresses
//! it added (marked with `IFA_PROTO` [`rtnl::ADDRESS_PROTO`], so that a restart after a crash removes
//! its own leftovers and never an address someone else added), the VMACs it created, and the IPv4
//! settings a VMAC needs (keepalived's: `arp_ignore` and `arp_filter` 1 on the VMAC's parent, and
//! `all.rp_filter` 0 with every interface raised to its old value), put back when the last VMAC
//! goes if nobody changed them since. After SIGKILL those settings stay, as keepalived's do.
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
//! let mut driver = Driver::open(set)?;
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
mod sysctl;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use crate::config::VirtualAddress;
use crate::instances::{Event, Instances};
use crate::router::{Action, Command, Reason, RxError, State};
use crate::wire::{DecodeError, Packet};
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

/// How the driver runs one instance on Linux (keepalived's per-instance interface keys). Build it
/// with `InstanceOptions::default()` and set the fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InstanceOptions {
    /// `use_vmac`: the name of a macvlan with the VMAC (00:00:5e:00:01:VRID, or :02: for IPv6) that
    /// the driver creates on the instance's interface. The virtual addresses go on it, their
    /// announcements and (unless [`vmac_xmit_base`](Self::vmac_xmit_base)) the adverts leave from
    /// it, and it is deleted at the end.
    pub vmac: Option<String>,
    /// `vmac_xmit_base`: adverts are sent and received on the parent interface (from its MAC)
    /// instead of the VMAC.
    pub vmac_xmit_base: bool,
    /// `dont_track_primary`: the instance ignores its own interface (and VMAC) going down, instead
    /// of going to Fault (keepalived's `VRRP_NOT_TRACK_IF`).
    pub dont_track_primary: bool,
}

impl InstanceOptions {
    /// The device adverts leave from and arrive on, for an instance on `iface`.
    fn xmit_dev<'a>(&'a self, iface: &'a str) -> &'a str {
        match &self.vmac {
            Some(v) if !self.vmac_xmit_base => v,
            _ => iface,
        }
    }
}

#[derive(Debug)]
struct IfSock {
    /// The device the socket is bound to (an interface or a VMAC).
    dev: String,
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
    parent: String,
    mac: [u8; 6],
    v6: bool,
}

/// What the driver keeps per running instance, by index in the [`Instances`].
#[derive(Debug, Clone)]
struct Per {
    name: String,
    iface: String,
    v6: bool,
    opts: InstanceOptions,
    /// Index of the socket its adverts use.
    tx: Option<usize>,
    /// The link state last given to the router (it starts up).
    link_up: bool,
}

/// One announcement waiting for its interface's spacing (`vrrp_garp_interval` / `vrrp_gna_interval`).
#[derive(Debug, Clone)]
struct Pending {
    instance: String,
    ifindex: u32,
    mac: [u8; 6],
    addr: IpAddr,
    dev: String,
}

/// The announcements of one parent interface and family, spaced by the interval.
#[derive(Debug)]
struct Spacing {
    base: String,
    v6: bool,
    /// When the next one may leave.
    next: Instant,
    queue: VecDeque<Pending>,
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
    options: HashMap<String, InstanceOptions>,
    vmacs: Vec<Vmac>,
    sysctls: sysctl::Settings,
    per: Vec<Per>,
    /// (socket, VRID) to instance index.
    rx_map: HashMap<(usize, u8), usize>,
    notes: VecDeque<Note>,
    counters: HashMap<String, Counters>,
    garp_interval: Duration,
    gna_interval: Duration,
    spacing: Vec<Spacing>,
    buf: Vec<u8>,
    out: Vec<u8>,
}

/// The VMAC of a VRID: 00:00:5e:00:01:VRID (IPv4) or 00:00:5e:00:02:VRID (IPv6), RFC 5798 §7.3.
pub fn vmac_address(vrid: u8, v6: bool) -> [u8; 6] {
    [0, 0, 0x5e, 0, if v6 { 2 } else { 1 }, vrid]
}

/// Who an action belongs to: a running instance, or one a reload just shut down.
#[derive(Debug, Clone, Copy)]
enum Whose {
    Live(usize),
    Gone(usize),
}

impl Driver {
    /// Opens the sockets for `set` (built, not started) in the calling thread's network namespace.
    pub fn open(set: Instances) -> Result<Driver, Error> {
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
            options: HashMap::new(),
            vmacs: Vec::new(),
            sysctls: sysctl::Settings::default(),
            per: Vec::new(),
            rx_map: HashMap::new(),
            notes: VecDeque::new(),
            counters: HashMap::new(),
            garp_interval: Duration::ZERO,
            gna_interval: Duration::ZERO,
            spacing: Vec::new(),
            buf: vec![0; 65536],
            out: vec![0; 4096],
        })
    }

    /// Sets how instance `instance` runs on Linux (VMAC, `dont_track_primary`). Call before
    /// [`Driver::start`]; [`Driver::reload`] takes the options of the new set.
    pub fn set_options(&mut self, instance: &str, options: InstanceOptions) {
        self.options.insert(instance.to_owned(), options);
    }

    /// keepalived's `vrrp_garp_interval` and `vrrp_gna_interval`: the least time between two
    /// gratuitous ARPs (two unsolicited NAs) leaving the same interface, counted per parent
    /// interface for VMACs, across instances. Zero (the default) sends each burst at once.
    /// Unlike keepalived 2.2.7, which drops the repeats of an address already waiting (measured:
    /// 3 gratuitous ARPs instead of 10 for two addresses, `garp_master_repeat 5`, interval 0.1 s),
    /// every announcement of a burst is sent, one per interval.
    pub fn set_announce_intervals(&mut self, garp: Duration, gna: Duration) {
        self.garp_interval = garp;
        self.gna_interval = gna;
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
        self.check_interfaces()?;
        self.remove_leftovers()?;
        self.sync_vmacs()?;
        self.rebuild()?;
        self.sync_links(now);
        self.set.start(now);
        self.drain(now);
        Ok(())
    }

    fn opts(&self, name: &str) -> InstanceOptions {
        self.options.get(name).cloned().unwrap_or_default()
    }

    fn check_interfaces(&self) -> Result<(), Error> {
        for (_, r) in self.set.iter() {
            let c = r.config();
            if !self.ifaces.contains_key(&c.interface) {
                return Err(Error::NoSuchInterface {
                    name: c.interface.clone(),
                });
            }
        }
        Ok(())
    }

    /// Leftovers of a killed run: addresses with our mark that are one of our addresses on its
    /// interface (never an address someone else added).
    fn remove_leftovers(&mut self) -> Result<(), Error> {
        let mut vips: Vec<(String, VirtualAddress)> = Vec::new();
        for (name, r) in self.set.iter() {
            let c = r.config();
            let o = self.opts(name);
            for a in c
                .virtual_ipaddress
                .iter()
                .chain(&c.virtual_ipaddress_excluded)
            {
                let dev = match (&o.vmac, &a.dev) {
                    (_, Some(d)) => d.clone(),
                    (Some(v), None) => v.clone(),
                    (None, None) => c.interface.clone(),
                };
                vips.push((dev, a.clone()));
            }
        }
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
        Ok(())
    }

    /// Creates the VMACs the instances want and deletes those no instance wants any more.
    fn sync_vmacs(&mut self) -> Result<(), Error> {
        let wanted: Vec<(String, String, String, u8, bool, IpAddr)> = self
            .set
            .iter()
            .filter_map(|(name, r)| {
                let o = self.options.get(name)?;
                let c = r.config();
                o.vmac.as_ref().map(|v| {
                    (
                        name.to_owned(),
                        v.clone(),
                        c.interface.clone(),
                        c.virtual_router_id,
                        c.is_ipv6(),
                        r.primary(),
                    )
                })
            })
            .collect();
        // Stale: the instance is gone or wants another VMAC (name, parent, MAC).
        let stale: Vec<Vmac> = self
            .vmacs
            .iter()
            .filter(|v| {
                !wanted.iter().any(|(i, n, p, vrid, v6, _)| {
                    *i == v.instance
                        && *n == v.name
                        && *p == v.parent
                        && vmac_address(*vrid, *v6) == v.mac
                })
            })
            .cloned()
            .collect();
        for v in stale {
            self.delete_vmac(&v);
        }
        let mut created = false;
        for (inst, name, parent, vrid, v6, primary) in wanted {
            if self.vmacs.iter().any(|v| v.instance == inst) {
                continue;
            }
            let mac = vmac_address(vrid, v6);
            if let Some(old) = self.ifaces.get(&name) {
                // A leftover with our name and VMAC is ours from a previous run; anything else with
                // that name is someone else's.
                if old.mac == mac {
                    self.rtnl.del_link(old.index)?;
                } else {
                    return Err(Error::Exists);
                }
            }
            let Some(parent_index) = self.ifaces.get(&parent).map(|l| l.index) else {
                return Err(Error::NoSuchInterface { name: parent });
            };
            let index = self.rtnl.add_macvlan(&name, parent_index, mac)?;
            let vmac = Vmac {
                instance: inst.clone(),
                name: name.clone(),
                index,
                parent: parent.clone(),
                mac,
                v6,
            };
            let set_up = if v6 {
                // The adverts leave from the VMAC with the parent's link-local source, which must
                // sit on the sending interface (keepalived adds it there too).
                let xmit_base = self.options.get(&inst).is_some_and(|o| o.vmac_xmit_base);
                if xmit_base {
                    Ok(())
                } else {
                    let mut ll = VirtualAddress::new(primary);
                    ll.prefix_len = 64;
                    self.rtnl.add_address(index, &ll)
                }
            } else {
                let mut names: Vec<String> =
                    self.rtnl.links()?.into_iter().map(|l| l.name).collect();
                names.retain(|n| n != "lo");
                self.sysctls
                    .add_vmac(&name, &parent, &names)
                    .map_err(Error::Io)
            };
            self.vmacs.push(vmac);
            created = true;
            set_up?;
        }
        if created {
            self.refresh_links()?;
        }
        Ok(())
    }

    fn delete_vmac(&mut self, v: &Vmac) {
        // Addresses on it go with it.
        self.added.retain(|a| a.ifindex != v.index);
        if let Err(e) = self.rtnl.del_link(v.index)
            && !matches!(e, Error::NotFound)
        {
            self.notes.push_back(Note::Failed {
                instance: Some(v.instance.clone()),
                what: format!("deleting VMAC {}: {e}", v.name),
            });
        }
        if !v.v6 {
            self.sysctls.remove_vmac(&v.parent);
        }
        self.vmacs.retain(|x| x.index != v.index);
    }

    /// Rebuilds the per-instance table and the sockets after a start or a reload.
    fn rebuild(&mut self) -> Result<(), Error> {
        let old: Vec<Per> = std::mem::take(&mut self.per);
        let mut per = Vec::new();
        let mut wanted: Vec<(String, bool)> = Vec::new();
        for (name, r) in self.set.iter() {
            let c = r.config();
            let opts = self.opts(name);
            let dev = opts.xmit_dev(&c.interface).to_owned();
            let key = (dev, c.is_ipv6());
            let tx = match wanted.iter().position(|k| *k == key) {
                Some(t) => t,
                None => {
                    wanted.push(key);
                    wanted.len() - 1
                }
            };
            per.push(Per {
                name: name.to_owned(),
                iface: c.interface.clone(),
                v6: c.is_ipv6(),
                opts,
                tx: Some(tx),
                link_up: old
                    .iter()
                    .find(|p| p.name == name)
                    .is_none_or(|p| p.link_up),
            });
            self.counters.entry(name.to_owned()).or_default();
        }
        // Sockets in the order of `wanted`, reusing the open ones.
        let mut old_socks = std::mem::take(&mut self.socks);
        for (dev, v6) in wanted {
            let sock = match old_socks.iter().position(|s| s.dev == dev && s.v6 == v6) {
                Some(k) => old_socks.swap_remove(k),
                None => {
                    let Some(index) = self.ifaces.get(&dev).map(|l| l.index) else {
                        return Err(Error::NoSuchInterface { name: dev });
                    };
                    IfSock {
                        sock: VrrpSocket::open(&dev, index, v6)?,
                        dev,
                        v6,
                    }
                }
            };
            self.socks.push(sock);
        }
        self.rx_map = per
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let vrid = self.set.router(i)?.config().virtual_router_id;
                Some(((p.tx?, vrid), i))
            })
            .collect();
        self.per = per;
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

    /// Gives each instance the state of its own link (its interface, and its VMAC), unless it does
    /// not track it, and every tracked interface's state.
    fn sync_links(&mut self, now: Instant) {
        for i in 0..self.per.len() {
            let p = &self.per[i];
            let up_of = |n: &str| self.ifaces.get(n).is_some_and(|l| l.up);
            let want = p.opts.dont_track_primary
                || (up_of(&p.iface) && p.opts.vmac.as_deref().is_none_or(up_of));
            if want != p.link_up {
                self.per[i].link_up = want;
                let cmd = if want {
                    Command::InterfaceUp
                } else {
                    Command::InterfaceDown
                };
                self.set.command(now, i, cmd);
            }
        }
        let mut names: Vec<String> = self
            .set
            .iter()
            .flat_map(|(_, r)| r.config().track.iter().map(|t| t.name.clone()))
            .filter(|n| n.starts_with(TRACK_INTERFACE))
            .collect();
        names.sort();
        names.dedup();
        for n in names {
            let up = self
                .ifaces
                .get(&n[TRACK_INTERFACE.len()..])
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
        let spaced = self
            .spacing
            .iter()
            .filter(|s| !s.queue.is_empty())
            .map(|s| s.next)
            .min();
        [self.set.poll_timeout(), spaced]
            .into_iter()
            .flatten()
            .min()
    }

    /// What happened since the last call, in order.
    pub fn poll_note(&mut self) -> Option<Note> {
        self.notes.pop_front()
    }

    /// Reads every pending packet and link event.
    pub fn handle_readable(&mut self, now: Instant) -> Result<(), Error> {
        for k in 0..self.socks.len() {
            while let Some(rx) = self.socks[k].sock.recv(&mut self.buf)? {
                self.dispatch(now, k, rx);
                self.drain(now);
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
        if !changes.is_empty() {
            for l in changes {
                self.ifaces.insert(l.name.clone(), l);
            }
            self.sync_links(now);
            self.drain(now);
        }
        Ok(())
    }

    /// One received packet on socket `k`: demultiplexed by family and VRID among the instances that
    /// use that socket, counted.
    fn dispatch(&mut self, now: Instant, k: usize, rx: socket::Received) {
        let bytes = &self.buf[rx.start..rx.start + rx.len];
        let v6 = self.socks[k].v6;
        let vrid = match Packet::parse_unverified(bytes) {
            Ok(p) => p.vrid(),
            Err(e) => {
                self.count_all(k, &RxError::Decode(e));
                return;
            }
        };
        let Some(&i) = self.rx_map.get(&(k, vrid)) else {
            // An advert for an instance of the same interface served by another socket (its VMAC's,
            // say) arrives here too: not an error.
            let dev = &self.socks[k].dev;
            let elsewhere = self.per.iter().enumerate().any(|(i, p)| {
                p.v6 == v6
                    && (p.iface == *dev || p.opts.vmac.as_deref() == Some(dev))
                    && self
                        .set
                        .router(i)
                        .is_some_and(|r| r.config().virtual_router_id == vrid)
            });
            if !elsewhere {
                self.count_all(k, &RxError::UnknownVrid { actual: vrid });
            }
            return;
        };
        let r = self
            .set
            .handle_packet_at(now, i, rx.src, rx.dst, rx.ttl, bytes);
        let c = self.counters.entry(self.per[i].name.clone()).or_default();
        match r {
            Ok(()) => c.accepted += 1,
            Err(e) => *c.rejected.entry(rx_reason(&e)).or_default() += 1,
        }
    }

    /// A packet not attributable to one instance (malformed, or another VRID): counted for every
    /// instance on that socket.
    fn count_all(&mut self, k: usize, e: &RxError) {
        for p in self.per.iter().filter(|p| p.tx == Some(k)) {
            *self
                .counters
                .entry(p.name.clone())
                .or_default()
                .rejected
                .entry(rx_reason(e))
                .or_default() += 1;
        }
    }

    /// Runs the timers due at `now`, and sends the spaced announcements that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.set.handle_timeout(now);
        self.drain(now);
        self.send_spaced(now);
    }

    /// A command for instance `name` (false when there is none).
    pub fn command(&mut self, now: Instant, name: &str, cmd: Command) -> bool {
        let Some(i) = self.set.index(name) else {
            return false;
        };
        self.set.command(now, i, cmd);
        self.drain(now);
        true
    }

    /// A tracked object (a script, say) changed: every instance tracking `name` follows.
    pub fn track(&mut self, now: Instant, name: &str, up: bool) {
        self.set.track(now, name, up);
        self.drain(now);
    }

    /// Replaces the instances with `next` and its `options`, the way keepalived 2.2.7 reloads
    /// ([`Instances::reload_with`]): an instance whose identity (interface, family, VRID, unicast
    /// source) and VMAC settings are unchanged keeps running with its new configuration (addresses
    /// applied as a difference); the others are shut down and the new ones started. VMACs no longer
    /// wanted are deleted, new ones created.
    pub fn reload(
        &mut self,
        now: Instant,
        next: Instances,
        options: HashMap<String, InstanceOptions>,
    ) -> Result<(), Error> {
        let old_opts = std::mem::take(&mut self.options);
        let vmac_of = |o: Option<&InstanceOptions>| {
            o.map(|o| (o.vmac.clone(), o.vmac.is_some() && o.vmac_xmit_base))
                .unwrap_or_default()
        };
        let done = self.set.reload_with(now, next, |old, new| {
            vmac_of(old_opts.get(old)) != vmac_of(options.get(new))
        });
        self.options = options;
        // The last actions of the instances shut down, with their old interface and socket.
        let gone_per = std::mem::take(&mut self.per);
        for (name, action) in done.gone {
            if let Some(g) = gone_per.iter().position(|p| p.name == name) {
                self.per.push(gone_per[g].clone());
                let at = self.per.len() - 1;
                self.execute(now, Whose::Gone(at), action);
                self.per.pop();
            }
        }
        // Kept instances may have a new name: their records follow them.
        for (old, index) in &done.kept {
            let new = self.set.name(*index).to_owned();
            if *old == new {
                continue;
            }
            if let Some(c) = self.counters.remove(old) {
                self.counters.insert(new.clone(), c);
            }
            for a in self.added.iter_mut().filter(|a| a.instance == *old) {
                a.instance.clone_from(&new);
            }
            for v in self.vmacs.iter_mut().filter(|v| v.instance == *old) {
                v.instance.clone_from(&new);
            }
            for q in &mut self.spacing {
                for p in q.queue.iter_mut().filter(|p| p.instance == *old) {
                    p.instance.clone_from(&new);
                }
            }
        }
        // Link states carry over by the instance's new name.
        self.per = gone_per
            .into_iter()
            .filter_map(|mut p| {
                let (_, index) = done.kept.iter().find(|(o, _)| *o == p.name)?;
                p.name = self.set.name(*index).to_owned();
                Some(p)
            })
            .collect();
        let live: Vec<String> = self.set.iter().map(|(n, _)| n.to_owned()).collect();
        self.counters.retain(|n, _| live.contains(n));
        self.check_interfaces()?;
        self.refresh_links()?;
        self.sync_vmacs()?;
        self.rebuild()?;
        self.sync_links(now);
        self.drain(now);
        Ok(())
    }

    /// Shuts every instance down (Masters send priority 0), then removes every address the driver
    /// added and every VMAC it created, and puts back the interface settings it changed.
    pub fn shutdown(&mut self, now: Instant) {
        self.set.shutdown(now);
        self.drain(now);
        self.cleanup();
    }

    /// Removes what the driver added, without sending anything (after a failed start, say).
    pub fn cleanup(&mut self) {
        for a in std::mem::take(&mut self.added) {
            if let Err(e) = self.rtnl.del_address(a.ifindex, &a.addr)
                && !matches!(e, Error::NotFound)
            {
                self.notes.push_back(Note::Failed {
                    instance: Some(a.instance.clone()),
                    what: format!("removing {}: {e}", a.addr.addr),
                });
            }
        }
        for v in self.vmacs.clone() {
            self.delete_vmac(&v);
        }
        self.sysctls.restore_all();
        self.spacing.clear();
    }

    fn drain(&mut self, now: Instant) {
        while let Some(e) = self.set.poll_event() {
            match e {
                Event::Instance { index, action } => self.execute(now, Whose::Live(index), action),
                Event::GroupState { group, from, to } => self.notes.push_back(Note::Group {
                    group: self.set.group_name(group).to_owned(),
                    from,
                    to,
                }),
            }
        }
    }

    fn per_of(&self, who: Whose) -> Option<&Per> {
        match who {
            Whose::Live(i) | Whose::Gone(i) => self.per.get(i),
        }
    }

    fn vmac_of(&self, instance: &str) -> Option<&Vmac> {
        self.vmacs.iter().find(|v| v.instance == instance)
    }

    /// The device a virtual address goes on: its `dev`, else the instance's VMAC, else its interface.
    fn dev_for(&self, p: &Per, a: &VirtualAddress) -> String {
        if let Some(d) = &a.dev {
            return d.clone();
        }
        if let Some(v) = self.vmac_of(&p.name) {
            return v.name.clone();
        }
        p.iface.clone()
    }

    fn note_failed(&mut self, instance: &str, what: String) {
        self.notes.push_back(Note::Failed {
            instance: Some(instance.to_owned()),
            what,
        });
    }

    fn execute(&mut self, now: Instant, who: Whose, action: Action) {
        if let Action::SendAdvert(adv) = &action {
            // The hot path (every advert): nothing cloned.
            let (Whose::Live(i) | Whose::Gone(i)) = who;
            let Some(p) = self.per.get(i) else {
                return;
            };
            let Ok(n) = adv.emit(&mut self.out) else {
                return;
            };
            let Some(s) = p.tx.and_then(|t| self.socks.get(t)) else {
                return;
            };
            match s.sock.send(adv.src, adv.dst, &self.out[..n]) {
                Ok(()) => {
                    if let Some(c) = self.counters.get_mut(&p.name) {
                        c.sent += 1;
                    }
                }
                Err(e) => self.notes.push_back(Note::Failed {
                    instance: Some(p.name.clone()),
                    what: format!("sending an advert to {}: {e}", adv.dst),
                }),
            }
            return;
        }
        let Some(p) = self.per_of(who).cloned() else {
            return;
        };
        let instance = p.name.as_str();
        match action {
            Action::AddAddresses { addresses, .. } => {
                for a in addresses {
                    let dev = self.dev_for(&p, &a);
                    let Some(ifindex) = self.ifaces.get(&dev).map(|l| l.index) else {
                        self.note_failed(
                            instance,
                            format!("adding {}: no interface {dev}", a.addr),
                        );
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
                        Err(e) => self.note_failed(
                            instance,
                            format!("adding {}/{} on {dev}: {e}", a.addr, a.prefix_len),
                        ),
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
                        Err(e) => self.note_failed(instance, format!("removing {}: {e}", a.addr)),
                    }
                }
                // Announcements still waiting for these addresses are void.
                for q in &mut self.spacing {
                    q.queue.retain(|x| x.instance != instance);
                }
            }
            Action::Announce { addresses, repeat } => self.announce(now, &p, &addresses, repeat),
            Action::AddressListMismatch { from } => {
                self.notes.push_back(Note::AddressListMismatch {
                    instance: instance.to_owned(),
                    from,
                })
            }
            Action::StateChange { from, to, reason } => {
                let priority = match who {
                    Whose::Live(i) => self.set.router(i).map_or(0, |r| r.priority()),
                    Whose::Gone(_) => 0,
                };
                if let Some(c) = self.counters.get_mut(instance)
                    && to == State::Master
                {
                    c.became_master += 1;
                }
                if from == State::Master {
                    for q in &mut self.spacing {
                        q.queue.retain(|x| x.instance != instance);
                    }
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

    /// Gratuitous ARPs / unsolicited NAs for `addresses`, `repeat` rounds (keepalived sends round
    /// after round of every address), at once or spaced by the interface's interval.
    fn announce(&mut self, now: Instant, p: &Per, addresses: &[VirtualAddress], repeat: u8) {
        let mut items = Vec::new();
        for a in addresses {
            let dev = self.dev_for(p, a);
            let Some(link) = self.ifaces.get(&dev) else {
                continue;
            };
            let mac: [u8; 6] = match self.vmac_of(&p.name) {
                Some(v) if v.name == dev => v.mac,
                _ => match <[u8; 6]>::try_from(link.mac.as_slice()) {
                    Ok(m) => m,
                    Err(_) => continue,
                },
            };
            items.push(Pending {
                instance: p.name.clone(),
                ifindex: link.index,
                mac,
                addr: a.addr,
                dev,
            });
        }
        for _ in 0..repeat {
            for item in &items {
                // keepalived spaces announcements per parent interface (a VMAC's is its parent).
                let base = self
                    .vmacs
                    .iter()
                    .find(|v| v.name == item.dev)
                    .map_or_else(|| item.dev.clone(), |v| v.parent.clone());
                let v6 = item.addr.is_ipv6();
                let interval = if v6 {
                    self.gna_interval
                } else {
                    self.garp_interval
                };
                if interval.is_zero() {
                    self.send_announcement(item);
                    continue;
                }
                let q = match self
                    .spacing
                    .iter()
                    .position(|s| s.base == base && s.v6 == v6)
                {
                    Some(q) => q,
                    None => {
                        self.spacing.push(Spacing {
                            base,
                            v6,
                            next: now,
                            queue: VecDeque::new(),
                        });
                        self.spacing.len() - 1
                    }
                };
                self.spacing[q].queue.push_back(item.clone());
            }
        }
        self.send_spaced(now);
    }

    /// Sends the spaced announcements whose time has come: one per interval per interface.
    fn send_spaced(&mut self, now: Instant) {
        for q in 0..self.spacing.len() {
            if self.spacing[q].next > now {
                continue;
            }
            let Some(item) = self.spacing[q].queue.pop_front() else {
                continue;
            };
            let interval = if self.spacing[q].v6 {
                self.gna_interval
            } else {
                self.garp_interval
            };
            self.send_announcement(&item);
            self.spacing[q].next = now + interval;
        }
    }

    fn send_announcement(&mut self, item: &Pending) {
        let r = match item.addr {
            IpAddr::V4(x) => self.packet.gratuitous_arp(item.ifindex, item.mac, x),
            IpAddr::V6(x) => self.packet.unsolicited_na(item.ifindex, item.mac, x),
        };
        if let Err(e) = r {
            let what = format!("announcing {} on {}: {e}", item.addr, item.dev);
            self.note_failed(&item.instance, what);
        }
    }
}

/// The prefix of a tracked interface's name in [`Config::track`](crate::Config::track)
/// (`interface:eth1`), as `vrrpd` names them.
pub const TRACK_INTERFACE: &str = "interface:";
