//! A validated configuration model with the `vrrp_instance` keys keepalived users rely on.
//!
//! Build a [`Config`] (start from [`Config::new`]), then [`Config::validate`] it; [`Router::new`]
//! validates again. Each [`ConfigError`] names the keepalived key at fault.
//!
//! [`Router::new`]: crate::router::Router::new

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// The scope of a virtual address (`scope` in keepalived's `virtual_ipaddress` lines, as in `ip addr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Scope {
    /// `global` (0), the default.
    #[default]
    Global,
    /// `site` (200).
    Site,
    /// `link` (253).
    Link,
    /// `host` (254).
    Host,
    /// `nowhere` (255).
    Nowhere,
    /// Any other number.
    Other(u8),
}

impl Scope {
    /// The kernel's `RT_SCOPE_*` number.
    pub fn to_u8(self) -> u8 {
        match self {
            Scope::Global => 0,
            Scope::Site => 200,
            Scope::Link => 253,
            Scope::Host => 254,
            Scope::Nowhere => 255,
            Scope::Other(v) => v,
        }
    }

    /// From the kernel's number.
    pub fn from_u8(v: u8) -> Scope {
        match v {
            0 => Scope::Global,
            200 => Scope::Site,
            253 => Scope::Link,
            254 => Scope::Host,
            255 => Scope::Nowhere,
            v => Scope::Other(v),
        }
    }

    /// From a name (`global`, `site`, `link`, `host`, `nowhere`) or a number.
    pub fn parse(s: &str) -> Option<Scope> {
        Some(match s {
            "global" | "universe" => Scope::Global,
            "site" => Scope::Site,
            "link" => Scope::Link,
            "host" => Scope::Host,
            "nowhere" => Scope::Nowhere,
            n => Scope::from_u8(n.parse().ok()?),
        })
    }
}

/// A virtual address with what the driver needs to put it on an interface (a `virtual_ipaddress`
/// line: `ADDR[/LEN] [brd ADDR] [dev IF] [scope SCOPE] [label LABEL] [no_track]`). Only [`addr`]
/// is advertised; the rest is how it is installed.
///
/// [`addr`]: VirtualAddress::addr
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct VirtualAddress {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length: keepalived's default is 32 for IPv4 and 128 for IPv6.
    pub prefix_len: u8,
    /// `dev`: the interface to put it on, when not the instance's.
    pub dev: Option<String>,
    /// `label` (IPv4): the address label shown by `ip addr` (`eth0:vip`).
    pub label: Option<String>,
    /// `scope`.
    pub scope: Scope,
    /// `brd` (IPv4): the broadcast address.
    pub broadcast: Option<Ipv4Addr>,
    /// `no_track`: a missing `dev` interface does not fault the instance (kept for the driver).
    pub no_track: bool,
}

impl VirtualAddress {
    /// An address with keepalived's defaults: full-length prefix, the instance's interface, global scope.
    pub fn new(addr: IpAddr) -> VirtualAddress {
        VirtualAddress {
            addr,
            prefix_len: if addr.is_ipv6() { 128 } else { 32 },
            dev: None,
            label: None,
            scope: Scope::Global,
            broadcast: None,
            no_track: false,
        }
    }

    /// The interface it goes on: [`VirtualAddress::dev`] or `default`.
    pub fn interface<'a>(&'a self, default: &'a str) -> &'a str {
        self.dev.as_deref().unwrap_or(default)
    }
}

impl From<IpAddr> for VirtualAddress {
    fn from(addr: IpAddr) -> VirtualAddress {
        VirtualAddress::new(addr)
    }
}

/// Checks an interface name as Linux does: 1 to 15 bytes, no `/`, space or NUL.
pub(crate) fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && !name.contains(['/', ' ', '\0', ':'])
        && name != "."
        && name != ".."
}

/// keepalived's `state`: the state an instance wants at startup.
///
/// RFC 5798 §6.4.1 lets only the owner (priority 255) go straight to Master; everyone else starts in
/// Backup and waits Master_Down_Interval. keepalived 2.2.7 does the same for a non-owner with
/// `state MASTER` outside a sync group: its `vrrp_init_state` shortens the wait (to one interval plus the
/// smallest skew) only for a member of a sync group held in Backup, which this model has no notion of.
/// Measured here: keepalived 2.2.7, `state MASTER`, priority 100, `advert_int 1`, VRRPv3, alone on a veth
/// pair, sent its first advert 3.63 s after being started (Master_Down_Interval = 3 + 156/256 = 3.61 s).
/// So `state` is kept for configuration round trips and does not change the router's timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum InitialState {
    /// `state MASTER`.
    Master,
    /// `state BACKUP` (the default).
    #[default]
    Backup,
}

/// VRRP protocol version (`version 2|3`; keepalived's default is 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Version {
    /// VRRPv2, RFC 3768 (IPv4 only).
    V2,
    /// VRRPv3, RFC 5798 / RFC 9568.
    #[default]
    V3,
}

/// How a VRRPv3 IPv4 checksum is computed and checked (IPv6 always uses the pseudo-header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum V4Checksum {
    /// RFC 5798: include the IPv4 pseudo-header (keepalived 2.2.7, FRR). The default.
    #[default]
    PseudoHeader,
    /// RFC 9568: the VRRP message only (Arista, Cisco).
    MessageOnly,
}

/// A tracked object (script, interface, file...) and its weight (`track_* { NAME weight W }`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Track {
    /// The tracked object's name, as used in [`Command::Track`](crate::router::Command::Track).
    pub name: String,
    /// keepalived semantics: a positive weight is added to the priority while the object is up, a
    /// negative one is added while it is down; 0 means the instance goes to fault while it is down.
    pub weight: i32,
}

impl Track {
    /// A tracked object `name` with `weight` (see [`Track::weight`]).
    pub fn new(name: &str, weight: i32) -> Track {
        Track {
            name: name.to_owned(),
            weight,
        }
    }
}

/// One VRRP instance (`vrrp_instance NAME { ... }`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// `state MASTER|BACKUP`.
    pub state: InitialState,
    /// `interface`: the interface name (the driver's business; must be a valid Linux name).
    pub interface: String,
    /// `virtual_router_id`, 1..=255.
    pub virtual_router_id: u8,
    /// `priority`, 1..=255; 255 means the address owner.
    pub priority: u8,
    /// `advert_int`: v2 whole seconds 1..=255; v3 a multiple of 10 ms from 10 ms to 40.95 s.
    pub advert_int: Duration,
    /// `nopreempt`.
    pub nopreempt: bool,
    /// `preempt_delay`: 0..=1000 s. As in keepalived 2.2.7, a Backup preempts a lower-priority Master
    /// only after hearing it for this long (counted from its first lower-priority advert; an advert at
    /// or above our priority restarts the count).
    pub preempt_delay: Duration,
    /// `virtual_ipaddress`: the advertised addresses, one family, at least one, at most 255 (v2: IPv4).
    pub virtual_ipaddress: Vec<VirtualAddress>,
    /// `virtual_ipaddress_excluded`: added and removed with the others, never advertised.
    pub virtual_ipaddress_excluded: Vec<VirtualAddress>,
    /// `unicast_src_ip`: source of unicast adverts (else the primary address).
    pub unicast_src_ip: Option<IpAddr>,
    /// `unicast_peer`: when not empty, adverts go to each peer instead of the multicast group.
    pub unicast_peer: Vec<IpAddr>,
    /// `check_unicast_src`: a unicast instance drops adverts whose IP source is not in
    /// `unicast_peer`. Off by default, as in keepalived 2.2.7.
    pub check_unicast_src: bool,
    /// `authentication { auth_type PASS auth_pass .. }`: VRRPv2 only, 1 to 8 bytes.
    pub auth_pass: Option<Vec<u8>>,
    /// `version 2|3`.
    pub version: Version,
    /// `accept`: Accept_Mode (RFC 5798 §6.1); the owner always accepts.
    pub accept: bool,
    /// `track_*` weights giving the effective priority.
    pub track: Vec<Track>,
    /// VRRPv3 IPv4 checksum mode (not a keepalived key: keepalived always uses the pseudo-header).
    pub v4_checksum: V4Checksum,
    /// RFC 9568 §6.4.3: the Master (Active) router answers a lower-priority advert with its own at once
    /// (without resetting Adver_Timer). On by default: keepalived 2.2.7 does the same unless
    /// `lower_prio_no_advert` (or `vrrp_strict`) is set. Off is the RFC 3768 / RFC 5798 behaviour:
    /// discard it silently (keepalived's `lower_prio_no_advert`).
    pub answer_lower_priority: bool,
    /// `garp_master_repeat`: announcements (gratuitous ARP / unsolicited NA) per burst, 1..=255; default 5.
    pub garp_master_repeat: u8,
    /// `garp_master_delay`: delay of the second burst after becoming Master (0 disables); default 5 s.
    pub garp_master_delay: Duration,
    /// `garp_master_refresh`: period of repeat bursts while Master (0 disables); default 0.
    pub garp_master_refresh: Duration,
}

impl Config {
    /// A configuration with keepalived 2.2.7's defaults for everything but the three keys without a
    /// default, except the protocol version: VRRPv3 here, where keepalived defaults to VRRPv2 for IPv4
    /// (its `vrrp_version`; [`parse_keepalived`] follows keepalived).
    pub fn new(interface: &str, virtual_router_id: u8, virtual_ipaddress: Vec<IpAddr>) -> Config {
        Config {
            state: InitialState::Backup,
            interface: interface.to_owned(),
            virtual_router_id,
            priority: 100,
            advert_int: Duration::from_secs(1),
            nopreempt: false,
            preempt_delay: Duration::ZERO,
            virtual_ipaddress: virtual_ipaddress
                .into_iter()
                .map(VirtualAddress::new)
                .collect(),
            virtual_ipaddress_excluded: Vec::new(),
            unicast_src_ip: None,
            unicast_peer: Vec::new(),
            check_unicast_src: false,
            auth_pass: None,
            version: Version::V3,
            accept: false,
            track: Vec::new(),
            v4_checksum: V4Checksum::PseudoHeader,
            answer_lower_priority: true,
            garp_master_repeat: 5,
            garp_master_delay: Duration::from_secs(5),
            garp_master_refresh: Duration::ZERO,
        }
    }

    /// The address family of the instance (that of its first virtual address).
    pub fn is_ipv6(&self) -> bool {
        self.virtual_ipaddress
            .first()
            .is_some_and(|a| a.addr.is_ipv6())
    }

    /// The advertised addresses (without their installation details).
    pub fn advertised(&self) -> impl ExactSizeIterator<Item = IpAddr> + '_ {
        self.virtual_ipaddress.iter().map(|a| a.addr)
    }

    /// Checks every key; the first problem found is returned, naming its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |field: &'static str, problem: &str| {
            Err(ConfigError {
                field,
                problem: problem.to_owned(),
            })
        };
        if !valid_ifname(&self.interface) {
            return err(
                "interface",
                "must be 1 to 15 characters, without '/', space or NUL",
            );
        }
        if self.virtual_router_id == 0 {
            return err("virtual_router_id", "must be 1 to 255");
        }
        if self.priority == 0 {
            return err(
                "priority",
                "must be 1 to 255 (0 is reserved for the hand-over advert)",
            );
        }
        match self.version {
            Version::V2 => {
                // RFC 3768 §5.3.7: whole seconds, 8 bits.
                if self.advert_int.subsec_nanos() != 0
                    || self.advert_int.as_secs() == 0
                    || self.advert_int.as_secs() > 255
                {
                    return err("advert_int", "VRRPv2 needs whole seconds from 1 to 255");
                }
            }
            Version::V3 => {
                // RFC 5798 §5.2.7: 12 bits of centiseconds.
                let ns = self.advert_int.as_nanos();
                if !ns.is_multiple_of(10_000_000) || ns == 0 || ns / 10_000_000 > 4095 {
                    return err(
                        "advert_int",
                        "VRRPv3 needs a multiple of 10 ms from 10 ms to 40.95 s",
                    );
                }
            }
        }
        if self.preempt_delay > Duration::from_secs(1000) {
            return err("preempt_delay", "must be 0 to 1000 seconds");
        }
        let Some(first) = self.virtual_ipaddress.first() else {
            return err("virtual_ipaddress", "needs at least one address");
        };
        let v6 = first.addr.is_ipv6();
        for a in self
            .virtual_ipaddress
            .iter()
            .chain(&self.virtual_ipaddress_excluded)
        {
            let max = if a.addr.is_ipv6() { 128 } else { 32 };
            if a.prefix_len > max {
                return err("virtual_ipaddress", "prefix length too long for the family");
            }
            if a.dev.as_deref().is_some_and(|d| !valid_ifname(d)) {
                return err(
                    "dev",
                    "must be 1 to 15 characters, without '/', ':', space or NUL",
                );
            }
            if a.label
                .as_deref()
                .is_some_and(|l| l.is_empty() || l.len() > 15)
            {
                return err("label", "must be 1 to 15 characters");
            }
            if a.broadcast.is_some() && a.addr.is_ipv6() {
                return err("brd", "a broadcast address is IPv4 only");
            }
        }
        if self.virtual_ipaddress.len() > 255 {
            return err(
                "virtual_ipaddress",
                "at most 255 addresses fit in an advert",
            );
        }
        if self
            .virtual_ipaddress
            .iter()
            .any(|a| a.addr.is_ipv6() != v6)
        {
            return err("virtual_ipaddress", "all addresses must be of one family");
        }
        if self
            .virtual_ipaddress
            .iter()
            .any(|a| a.addr.is_unspecified() || a.addr.is_multicast())
        {
            return err(
                "virtual_ipaddress",
                "unspecified and multicast addresses are not valid",
            );
        }
        if self.version == Version::V2 && v6 {
            return err(
                "version",
                "VRRPv2 is IPv4 only (RFC 3768); use version 3 for IPv6",
            );
        }
        if self
            .virtual_ipaddress_excluded
            .iter()
            .any(|a| a.addr.is_unspecified() || a.addr.is_multicast())
        {
            return err(
                "virtual_ipaddress_excluded",
                "unspecified and multicast addresses are not valid",
            );
        }
        if let Some(src) = self.unicast_src_ip
            && (src.is_ipv6() != v6 || src.is_unspecified() || src.is_multicast())
        {
            return err(
                "unicast_src_ip",
                "must be a unicast address of the virtual addresses' family",
            );
        }
        if self
            .unicast_peer
            .iter()
            .any(|a| a.is_ipv6() != v6 || a.is_unspecified() || a.is_multicast())
        {
            return err(
                "unicast_peer",
                "peers must be unicast addresses of the virtual addresses' family",
            );
        }
        if let Some(pass) = &self.auth_pass {
            if self.version != Version::V2 {
                return err(
                    "auth_pass",
                    "authentication exists only in VRRPv2 (RFC 5798 §9 removed it)",
                );
            }
            if pass.is_empty() || pass.len() > 8 {
                return err("auth_pass", "must be 1 to 8 bytes (RFC 3768 §5.3.10)");
            }
        }
        for t in &self.track {
            if t.name.is_empty() {
                return err("track", "a tracked object needs a name");
            }
            if !(-253..=253).contains(&t.weight) {
                return err("weight", "must be -253 to 253");
            }
        }
        if self.garp_master_repeat == 0 {
            return err("garp_master_repeat", "must be 1 to 255");
        }
        Ok(())
    }
}

/// A configuration problem: which key, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
#[non_exhaustive]
pub struct ConfigError {
    /// The keepalived key at fault (`virtual_router_id`, `advert_int`, ...).
    pub field: &'static str,
    /// What is wrong.
    pub problem: String,
}

/// One `vrrp_instance` read from a keepalived configuration by [`parse_keepalived`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeepalivedInstance {
    /// The instance name (`vrrp_instance NAME`).
    pub name: String,
    /// The validated configuration.
    pub config: Config,
    /// Keys this model does not use (notify scripts, `dont_track_primary`, ...), as `instance: key`.
    pub ignored: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Open,
    Close,
    Eol,
}

fn tokenize(text: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    for line in text.lines() {
        // keepalived comments start with '#' or '!'.
        let line = line.split(['#', '!']).next().unwrap_or("");
        for w in line.split_whitespace() {
            // Braces may touch words: `virtual_ipaddress{`.
            let mut rest = w;
            while !rest.is_empty() {
                if let Some(r) = rest.strip_prefix('{') {
                    out.push(Tok::Open);
                    rest = r;
                } else if let Some(r) = rest.strip_prefix('}') {
                    out.push(Tok::Close);
                    rest = r;
                } else {
                    let end = rest.find(['{', '}']).unwrap_or(rest.len());
                    out.push(Tok::Word(rest[..end].to_owned()));
                    rest = &rest[end..];
                }
            }
        }
        out.push(Tok::Eol);
    }
    out
}

/// A line of words, or a block (`key words { lines }`).
#[derive(Debug)]
struct Item {
    words: Vec<String>,
    block: Option<Vec<Item>>,
}

fn parse_items(toks: &[Tok], pos: &mut usize, nested: bool) -> Result<Vec<Item>, ConfigError> {
    let mut items = Vec::new();
    let mut words = Vec::new();
    while *pos < toks.len() {
        let t = &toks[*pos];
        *pos += 1;
        match t {
            Tok::Word(w) => words.push(w.clone()),
            Tok::Eol => {
                if !words.is_empty() {
                    // A `{` may open on the next line.
                    let mut look = *pos;
                    while look < toks.len() && toks[look] == Tok::Eol {
                        look += 1;
                    }
                    if look < toks.len() && toks[look] == Tok::Open {
                        *pos = look;
                        continue;
                    }
                    items.push(Item {
                        words: std::mem::take(&mut words),
                        block: None,
                    });
                }
            }
            Tok::Open => {
                if words.is_empty() {
                    return Err(ConfigError {
                        field: "vrrp_instance",
                        problem: "'{' without a key before it".into(),
                    });
                }
                let block = parse_items(toks, pos, true)?;
                items.push(Item {
                    words: std::mem::take(&mut words),
                    block: Some(block),
                });
            }
            Tok::Close => {
                if !words.is_empty() {
                    items.push(Item {
                        words: std::mem::take(&mut words),
                        block: None,
                    });
                }
                if nested {
                    return Ok(items);
                }
                return Err(ConfigError {
                    field: "vrrp_instance",
                    problem: "unbalanced '}'".into(),
                });
            }
        }
    }
    if nested {
        return Err(ConfigError {
            field: "vrrp_instance",
            problem: "missing '}'".into(),
        });
    }
    if !words.is_empty() {
        items.push(Item { words, block: None });
    }
    Ok(items)
}

/// The keys this model reads, as `'static` names for [`ConfigError::field`].
const KEYS: &[&str] = &[
    "state",
    "interface",
    "virtual_router_id",
    "priority",
    "advert_int",
    "nopreempt",
    "preempt_delay",
    "virtual_ipaddress",
    "virtual_ipaddress_excluded",
    "unicast_src_ip",
    "unicast_peer",
    "check_unicast_src",
    "authentication",
    "auth_type",
    "auth_pass",
    "version",
    "accept",
    "no_accept",
    "track_interface",
    "track_script",
    "track_file",
    "weight",
    "garp_master_delay",
    "garp_master_repeat",
    "garp_master_refresh",
    "lower_prio_no_advert",
    "vrrp_lower_prio_no_advert",
];

fn key_name(k: &str) -> &'static str {
    KEYS.iter()
        .find(|s| **s == k)
        .copied()
        .unwrap_or("vrrp_instance")
}

fn bad(field: &str, problem: String) -> ConfigError {
    ConfigError {
        field: key_name(field),
        problem,
    }
}

fn value(item: &Item) -> Result<&str, ConfigError> {
    match item.words.get(1) {
        Some(v) => Ok(v),
        None => Err(bad(&item.words[0], "needs a value".into())),
    }
}

fn int<T: std::str::FromStr>(item: &Item) -> Result<T, ConfigError> {
    let v = value(item)?;
    v.parse()
        .map_err(|_| bad(&item.words[0], format!("{v:?} is not a valid number")))
}

fn seconds(item: &Item) -> Result<Duration, ConfigError> {
    let v = value(item)?;
    let err = || bad(&item.words[0], format!("{v:?} is not a number of seconds"));
    let s: f64 = v.parse().map_err(|_| err())?;
    if !s.is_finite() || !(0.0..=100_000.0).contains(&s) {
        return Err(err());
    }
    // Round to whole microseconds: "0.1" must mean exactly 100 ms.
    let us = (s * 1_000_000.0).round();
    Ok(Duration::from_micros(us as u64))
}

fn address(field: &str, word: &str) -> Result<IpAddr, ConfigError> {
    let a = word.split('/').next().unwrap_or(word);
    a.parse()
        .map_err(|_| bad(field, format!("{word:?} is not an IP address")))
}

fn addresses(item: &Item) -> Result<Vec<VirtualAddress>, ConfigError> {
    let key = &item.words[0];
    let Some(block) = &item.block else {
        return Err(bad(key, "needs a { } block".into()));
    };
    // One address per line, optionally followed by `dev`, `label`, `brd`, `scope`...: only the first word counts.
    block
        .iter()
        .map(|l| address(key, &l.words[0]).map(VirtualAddress::new))
        .collect()
}

fn tracks(item: &Item) -> Result<Vec<Track>, ConfigError> {
    let key = &item.words[0];
    let Some(block) = &item.block else {
        return Err(bad(key, "needs a { } block".into()));
    };
    let mut out = Vec::new();
    for l in block {
        let mut weight = 0;
        if let Some(pos) = l.words.iter().position(|w| w == "weight") {
            let Some(w) = l.words.get(pos + 1) else {
                return Err(bad("weight", "needs a value".into()));
            };
            weight = w
                .parse()
                .map_err(|_| bad("weight", format!("{w:?} is not an integer")))?;
        }
        out.push(Track {
            name: l.words[0].clone(),
            weight,
        });
    }
    Ok(out)
}

/// keepalived's optional boolean argument (`key`, `key true`, `key off`, ...): absent means true.
fn flag(item: &Item) -> Result<bool, ConfigError> {
    match item.words.get(1).map(String::as_str) {
        None | Some("true" | "on" | "yes") => Ok(true),
        Some("false" | "off" | "no") => Ok(false),
        Some(v) => Err(bad(
            &item.words[0],
            format!("{v:?} is neither true nor false"),
        )),
    }
}

/// The `global_defs` keys an instance inherits.
struct Globals {
    /// `vrrp_version`; keepalived 2.2.7 defaults to 2.
    version: Version,
    /// `vrrp_lower_prio_no_advert`; default false.
    lower_prio_no_advert: bool,
}

fn instance(name: &str, body: &[Item], g: &Globals) -> Result<KeepalivedInstance, ConfigError> {
    let mut c = Config::new("", 0, Vec::new());
    let mut version = None;
    c.answer_lower_priority = !g.lower_prio_no_advert;
    let mut ignored = Vec::new();
    for item in body {
        let key = item.words[0].as_str();
        match key {
            "state" => {
                c.state = match value(item)? {
                    "MASTER" => InitialState::Master,
                    "BACKUP" => InitialState::Backup,
                    v => return Err(bad(key, format!("{v:?} is neither MASTER nor BACKUP"))),
                }
            }
            "interface" => c.interface = value(item)?.to_owned(),
            "virtual_router_id" => c.virtual_router_id = int(item)?,
            "priority" => c.priority = int(item)?,
            "advert_int" => c.advert_int = seconds(item)?,
            "nopreempt" => c.nopreempt = true,
            "preempt_delay" => c.preempt_delay = seconds(item)?,
            "virtual_ipaddress" => c.virtual_ipaddress = addresses(item)?,
            "virtual_ipaddress_excluded" => c.virtual_ipaddress_excluded = addresses(item)?,
            "unicast_src_ip" => c.unicast_src_ip = Some(address(key, value(item)?)?),
            "unicast_peer" => {
                c.unicast_peer = addresses(item)?.into_iter().map(|a| a.addr).collect()
            }
            "check_unicast_src" => c.check_unicast_src = true,
            "authentication" => {
                let Some(block) = &item.block else {
                    return Err(bad(key, "needs a { } block".into()));
                };
                for l in block {
                    match l.words[0].as_str() {
                        "auth_type" if value(l)? == "PASS" => {}
                        "auth_type" => {
                            return Err(bad(
                                "auth_type",
                                format!("{:?}: only PASS is supported", value(l)?),
                            ));
                        }
                        "auth_pass" => c.auth_pass = Some(value(l)?.as_bytes().to_vec()),
                        other => ignored.push(format!("{name}: authentication {other}")),
                    }
                }
            }
            "version" => {
                version = Some(match value(item)? {
                    "2" => Version::V2,
                    "3" => Version::V3,
                    v => return Err(bad(key, format!("{v:?} is neither 2 nor 3"))),
                })
            }
            "lower_prio_no_advert" => c.answer_lower_priority = !flag(item)?,
            "accept" => c.accept = true,
            "no_accept" => c.accept = false,
            "track_interface" | "track_script" | "track_file" => c.track.extend(tracks(item)?),
            "garp_master_delay" => c.garp_master_delay = seconds(item)?,
            "garp_master_repeat" => c.garp_master_repeat = int(item)?,
            "garp_master_refresh" => c.garp_master_refresh = seconds(item)?,
            other => ignored.push(format!("{name}: {other}")),
        }
    }
    // keepalived 2.2.7 (vrrp_complete_instance): an instance without `version` speaks VRRPv3 if its
    // addresses are IPv6, else `vrrp_version` (default 2).
    c.version = version.unwrap_or(if c.is_ipv6() { Version::V3 } else { g.version });
    c.validate()?;
    Ok(KeepalivedInstance {
        name: name.to_owned(),
        config: c,
        ignored,
    })
}

/// Reads the `vrrp_instance` blocks of a keepalived configuration (and `vrrp_version` and
/// `vrrp_lower_prio_no_advert` from `global_defs`), validating each. Defaults are keepalived 2.2.7's:
/// an IPv4 instance without `version` speaks VRRPv2 unless `vrrp_version 3`, an IPv6 one VRRPv3; the
/// Master answers lower-priority adverts unless `lower_prio_no_advert`. Blocks and keys this model does not use are skipped and listed in
/// [`KeepalivedInstance::ignored`]; `include` is not followed.
pub fn parse_keepalived(text: &str) -> Result<Vec<KeepalivedInstance>, ConfigError> {
    let toks = tokenize(text);
    let mut pos = 0;
    let items = parse_items(&toks, &mut pos, false)?;
    let mut g = Globals {
        version: Version::V2,
        lower_prio_no_advert: false,
    };
    for item in &items {
        if item.words[0] == "global_defs"
            && let Some(block) = &item.block
        {
            for l in block {
                if l.words[0] == "vrrp_version" {
                    g.version = match l.words.get(1).map(String::as_str) {
                        Some("2") => Version::V2,
                        Some("3") => Version::V3,
                        _ => {
                            return Err(ConfigError {
                                field: "version",
                                problem: "vrrp_version must be 2 or 3".into(),
                            });
                        }
                    };
                } else if l.words[0] == "vrrp_lower_prio_no_advert" {
                    g.lower_prio_no_advert = flag(l)?;
                }
            }
        }
    }
    let mut out = Vec::new();
    for item in &items {
        if item.words[0] != "vrrp_instance" {
            continue;
        }
        let (Some(name), Some(body)) = (item.words.get(1), &item.block) else {
            return Err(ConfigError {
                field: "vrrp_instance",
                problem: "expected `vrrp_instance NAME { ... }`".into(),
            });
        };
        out.push(instance(name, body, &g)?);
    }
    Ok(out)
}
