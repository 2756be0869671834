//! `vrrp_instance NAME { ... }`: a [`vrrp_proto::Config`] plus what the daemon adds around it
//! (tracking, notify scripts, VMAC, sync group membership).

use super::vrrp_sync_group::Notify;
use super::{ConfError, GlobalDefs, Item, KeepalivedConf, Notice, Pos, Word, err};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;
use vrrp_proto::{Config, InitialState, Scope, Track, Version, VirtualAddress};

/// The tracked-object name of an interface in [`Config::track`] (what the driver follows).
pub fn track_interface_name(ifname: &str) -> String {
    format!("{}{ifname}", vrrp_proto::linux::TRACK_INTERFACE)
}

/// The tracked-object name of a `vrrp_script` in [`Config::track`].
pub fn track_script_name(script: &str) -> String {
    format!("script:{script}")
}

/// One instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The name.
    pub name: String,
    /// Where its block starts.
    pub pos: Pos,
    /// The protocol configuration (tracking weights included, as `interface:IF` / `script:NAME`).
    pub config: Config,
    /// `mcast_src_ip`: the advert source instead of the interface's first address.
    pub mcast_src_ip: Option<IpAddr>,
    /// `track_interface` entries: interface and weight (0: fault while down).
    pub track_interface: Vec<(String, i32)>,
    /// `track_script` entries: script and the weight override, if any.
    pub track_script: Vec<(String, Option<i32>)>,
    /// `dont_track_primary`: the instance's own interface going down does not fault it.
    pub dont_track_primary: bool,
    /// Notify scripts.
    pub notify: Notify,
    /// `use_vmac [NAME]`: the macvlan's name (`vrrp.VRID` when not given).
    pub use_vmac: Option<String>,
    /// `vmac_xmit_base`: adverts leave from the base interface, not the VMAC.
    pub vmac_xmit_base: bool,
    /// The sync group it belongs to (filled by [`check_all`]).
    pub sync_group: Option<String>,
}

/// Reads `track_interface` / `track_script` block lines: `NAME [weight W [reverse]]`.
pub fn tracks(item: &Item) -> Result<Vec<(String, Option<i32>)>, ConfError> {
    let mut out = Vec::new();
    for l in item.block()? {
        let mut weight = None;
        let mut words = l.args.iter();
        while let Some(w) = words.next() {
            match w.text.as_str() {
                "weight" => {
                    let Some(v) = words.next() else {
                        return err(&w.pos, "weight: needs a value");
                    };
                    weight = Some(super::parse_int("weight", v, -254..=254)?);
                }
                "reverse" => weight = weight.map(|x: i32| -x),
                other => return err(&w.pos, format!("{}: unexpected {other:?}", item.name())),
            }
        }
        out.push((l.key.text.clone(), weight));
    }
    Ok(out)
}

fn ip(key: &str, w: &Word) -> Result<IpAddr, ConfError> {
    w.text
        .parse()
        .or_else(|_| err(&w.pos, format!("{key}: {:?} is not an IP address", w.text)))
}

/// A `virtual_ipaddress` line: `ADDR[/LEN] [brd X] [dev IF] [scope S] [label L] [no_track]`.
fn vaddr(l: &Item, key: &str, notices: &mut Vec<Notice>) -> Result<VirtualAddress, ConfError> {
    let first = &l.key;
    let (a, len) = match first.text.split_once('/') {
        Some((a, len)) => (a, Some(len)),
        None => (first.text.as_str(), None),
    };
    let addr: IpAddr = a
        .parse()
        .or_else(|_| err(&first.pos, format!("{key}: {a:?} is not an IP address")))?;
    let mut v = VirtualAddress::new(addr);
    if let Some(len) = len {
        let max = if addr.is_ipv6() { 128 } else { 32 };
        v.prefix_len = match len.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => return err(&first.pos, format!("{key}: bad prefix length {len:?}")),
        };
    }
    let mut words = l.args.iter();
    while let Some(w) = words.next() {
        let mut next = |what: &str| match words.next() {
            Some(v) => Ok(v),
            None => err(&w.pos, format!("{key}: {what} needs a value")),
        };
        match w.text.as_str() {
            "dev" => v.dev = Some(next("dev")?.text.clone()),
            "label" => v.label = Some(next("label")?.text.clone()),
            "scope" => {
                let s = next("scope")?;
                v.scope = Scope::parse(&s.text)
                    .map_or_else(|| err(&s.pos, format!("scope: unknown {:?}", s.text)), Ok)?;
            }
            "brd" | "broadcast" => {
                let b = next("brd")?;
                v.broadcast = match b.text.parse() {
                    Ok(a) => Some(a),
                    Err(_) => {
                        return err(&b.pos, format!("brd: {:?} is not an IPv4 address", b.text));
                    }
                };
            }
            "no_track" => v.no_track = true,
            "track" => v.no_track = false,
            other => notices.push(Notice {
                pos: w.pos.clone(),
                msg: format!("{key}: option {other:?} is not implemented; ignored"),
            }),
        }
    }
    Ok(v)
}

/// Reads a `vrrp_instance` block.
pub fn read(item: &Item, g: &GlobalDefs, notices: &mut Vec<Notice>) -> Result<Instance, ConfError> {
    let name = item.arg(0)?.text.clone();
    let mut c = Config::new("", 0, Vec::new());
    c.answer_lower_priority = !g.lower_prio_no_advert;
    c.check_unicast_src = g.check_unicast_src;
    c.garp_master_delay = g.garp_master_delay;
    c.garp_master_repeat = g.garp_master_repeat;
    c.garp_master_refresh = g.garp_master_refresh;
    c.garp_master_refresh_repeat = g.garp_master_refresh_repeat;
    let mut inst = Instance {
        name: name.clone(),
        pos: item.pos().clone(),
        config: Config::new("", 0, Vec::new()),
        mcast_src_ip: None,
        track_interface: Vec::new(),
        track_script: Vec::new(),
        dont_track_primary: false,
        notify: Notify::default(),
        use_vmac: None,
        vmac_xmit_base: false,
        sync_group: None,
    };
    let mut version = None;
    // Where each key was set, to put a line on the model's validation errors.
    let mut at: HashMap<&'static str, Pos> = HashMap::new();
    let big = Duration::from_secs(100_000);
    let who = |k: &str| format!("vrrp_instance {name}: {k}");
    for l in item.block()? {
        if inst.notify.read(l, notices)? {
            continue;
        }
        let key = l.name();
        let mut mark = |k: &'static str| {
            at.insert(k, l.pos().clone());
        };
        match key {
            "state" => {
                mark("state");
                let v = l.value()?;
                c.state = match v.text.as_str() {
                    "MASTER" => InitialState::Master,
                    "BACKUP" => InitialState::Backup,
                    other => {
                        // keepalived: "unknown state '%s', defaulting to BACKUP".
                        notices.push(Notice {
                            pos: v.pos.clone(),
                            msg: format!(
                                "{}: unknown state {other:?}, defaulting to BACKUP",
                                who("state")
                            ),
                        });
                        InitialState::Backup
                    }
                }
            }
            "interface" => {
                mark("interface");
                c.interface = l.value()?.text.clone();
            }
            "virtual_router_id" => {
                mark("virtual_router_id");
                c.virtual_router_id = l.int(1..=255)?;
            }
            "priority" => {
                mark("priority");
                c.priority = l.int(1..=255)?;
            }
            "advert_int" => {
                mark("advert_int");
                c.advert_int = l.seconds(Duration::from_secs(255))?;
            }
            "nopreempt" => c.nopreempt = true,
            "preempt" => c.nopreempt = false,
            "preempt_delay" => {
                mark("preempt_delay");
                c.preempt_delay = l.seconds(Duration::from_secs(1000))?;
            }
            "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                let list: Result<Vec<_>, _> =
                    l.block()?.iter().map(|a| vaddr(a, key, notices)).collect();
                if key == "virtual_ipaddress" {
                    mark("virtual_ipaddress");
                    c.virtual_ipaddress.extend(list?);
                } else {
                    mark("virtual_ipaddress_excluded");
                    c.virtual_ipaddress_excluded.extend(list?);
                }
            }
            "unicast_src_ip" => {
                mark("unicast_src_ip");
                c.unicast_src_ip = Some(ip(key, l.value()?)?);
            }
            "mcast_src_ip" => inst.mcast_src_ip = Some(ip(key, l.value()?)?),
            "unicast_peer" => {
                mark("unicast_peer");
                for p in l.block()? {
                    c.unicast_peer.push(ip(key, &p.key)?);
                }
            }
            "check_unicast_src" => c.check_unicast_src = true,
            "authentication" => {
                mark("auth_pass");
                for a in l.block()? {
                    match a.name() {
                        "auth_type" => match a.value()?.text.as_str() {
                            "PASS" => {}
                            other => {
                                return err(
                                    a.pos(),
                                    format!(
                                        "{}: {other:?}: only PASS is supported (AH was removed by RFC 3768)",
                                        who("auth_type")
                                    ),
                                );
                            }
                        },
                        "auth_pass" => {
                            let mut p = a.value()?.text.as_bytes().to_vec();
                            if p.len() > 8 {
                                // keepalived truncates to the 8 bytes of the field, with a warning.
                                notices.push(Notice {
                                    pos: a.pos().clone(),
                                    msg: format!(
                                        "{}: longer than 8 characters, truncated",
                                        who("auth_pass")
                                    ),
                                });
                                p.truncate(8);
                            }
                            c.auth_pass = Some(p);
                        }
                        k => notices.push(Notice {
                            pos: a.pos().clone(),
                            msg: format!(
                                "{}: {k} is not implemented; ignored",
                                who("authentication")
                            ),
                        }),
                    }
                }
            }
            "version" => {
                mark("version");
                version = Some(match l.value()?.text.as_str() {
                    "2" => Version::V2,
                    "3" => Version::V3,
                    v => {
                        return err(
                            l.pos(),
                            format!("{}: {v:?} is neither 2 nor 3", who("version")),
                        );
                    }
                });
            }
            "accept" => c.accept = true,
            "no_accept" => c.accept = false,
            "lower_prio_no_advert" => c.answer_lower_priority = !l.flag()?,
            "garp_master_delay" => c.garp_master_delay = l.seconds(Duration::from_secs(255))?,
            "garp_master_repeat" => {
                mark("garp_master_repeat");
                c.garp_master_repeat = l.int(1..=255)?;
            }
            "garp_master_refresh" => c.garp_master_refresh = l.seconds(big)?,
            "garp_master_refresh_repeat" => c.garp_master_refresh_repeat = l.int(1..=255)?,
            "track_interface" => {
                mark("weight");
                for (n, w) in tracks(l)? {
                    inst.track_interface.push((n, w.unwrap_or(0)));
                }
            }
            "track_script" => {
                mark("weight");
                inst.track_script.extend(tracks(l)?);
            }
            "dont_track_primary" => inst.dont_track_primary = true,
            "use_vmac" => {
                let vname = match l.args.first() {
                    Some(w) => w.text.clone(),
                    None => String::new(),
                };
                inst.use_vmac = Some(vname);
            }
            "vmac_xmit_base" => inst.vmac_xmit_base = true,
            "smtp_alert" | "debug" => {}
            k => notices.push(Notice {
                pos: l.pos().clone(),
                msg: format!("{}: not implemented by vrrpd; ignored", who(k)),
            }),
        }
    }
    if c.interface.is_empty() {
        return err(item.pos(), format!("vrrp_instance {name}: no interface"));
    }
    if c.virtual_router_id == 0 {
        return err(
            item.pos(),
            format!("vrrp_instance {name}: no virtual_router_id"),
        );
    }
    if c.virtual_ipaddress.is_empty() {
        return err(
            item.pos(),
            format!("vrrp_instance {name}: no virtual_ipaddress"),
        );
    }
    // keepalived 2.2.7 (vrrp_complete_instance): without `version`, IPv6 speaks 3, IPv4 `vrrp_version`.
    c.version = version.unwrap_or(if c.is_ipv6() {
        Version::V3
    } else {
        g.vrrp_version
    });
    if c.version == Version::V3 && c.auth_pass.is_some() {
        notices.push(Notice {
            pos: at
                .get("auth_pass")
                .cloned()
                .unwrap_or_else(|| item.pos().clone()),
            msg: format!(
                "vrrp_instance {name}: authentication is ignored with VRRPv3 (RFC 5798 §9)"
            ),
        });
        c.auth_pass = None;
    }
    if inst.vmac_xmit_base && inst.use_vmac.is_none() {
        // keepalived: "vmac_xmit_base is only valid with a vmac".
        notices.push(Notice {
            pos: item.pos().clone(),
            msg: format!(
                "vrrp_instance {name}: vmac_xmit_base is only valid with use_vmac; ignored"
            ),
        });
        inst.vmac_xmit_base = false;
    }
    if inst.use_vmac.is_some() && !c.unicast_peer.is_empty() && !inst.vmac_xmit_base {
        // keepalived: "unicast with use_vmac requires vmac_xmit_base - setting".
        notices.push(Notice {
            pos: item.pos().clone(),
            msg: format!(
                "vrrp_instance {name}: unicast with use_vmac requires vmac_xmit_base; setting it"
            ),
        });
        inst.vmac_xmit_base = true;
    }
    // keepalived ignores a track_interface entry naming the instance's own interface.
    inst.track_interface.retain(|(n, _)| {
        let own = *n == c.interface;
        if own {
            notices.push(Notice {
                pos: item.pos().clone(),
                msg: format!(
                    "vrrp_instance {name}: track_interface {n} is the instance's own interface; ignored"
                ),
            });
        }
        !own
    });
    for (n, w) in &inst.track_interface {
        c.track.push(Track::new(&track_interface_name(n), *w));
    }
    // keepalived (vrrp_complete_instance): an address on another interface (`dev`) makes the
    // instance track that interface, as a fault while it is down, unless the address says
    // `no_track` (or the interface is tracked already).
    let devs: Vec<String> = c
        .virtual_ipaddress
        .iter()
        .chain(&c.virtual_ipaddress_excluded)
        .filter(|a| !a.no_track)
        .filter_map(|a| a.dev.clone())
        .filter(|d| *d != c.interface)
        .collect();
    for d in devs {
        let t = track_interface_name(&d);
        if !c.track.iter().any(|x| x.name == t) {
            c.track.push(Track::new(&t, 0));
        }
    }
    if let Err(e) = c.validate() {
        let pos = at
            .get(e.field)
            .cloned()
            .unwrap_or_else(|| item.pos().clone());
        return err(&pos, format!("vrrp_instance {name}: {e}"));
    }
    inst.config = c;
    Ok(inst)
}

/// Cross references: group members exist and are in one group, tracked scripts exist (their weight
/// goes into the config), VRIDs are unique per interface and family.
pub fn check_all(conf: &mut KeepalivedConf) -> Result<(), ConfError> {
    let mut seen: HashMap<(String, bool, u8), String> = HashMap::new();
    for i in &conf.instances {
        let c = &i.config;
        let key = (c.interface.clone(), c.is_ipv6(), c.virtual_router_id);
        if let Some(other) = seen.insert(key, i.name.clone()) {
            return err(
                &i.pos,
                format!(
                    "vrrp_instance {}: virtual_router_id {} on {} is already used by {other}",
                    i.name, c.virtual_router_id, c.interface
                ),
            );
        }
        if conf.instances.iter().filter(|j| j.name == i.name).count() > 1 {
            return err(&i.pos, format!("vrrp_instance {}: defined twice", i.name));
        }
    }
    // keepalived (create_vmac_name): a VMAC without a name is `vrrp.VRID`, or when another
    // instance has that name already, `vrrp6.VRID` first for IPv6, then `vrrp1.VRID`, `vrrp2.VRID`...
    let mut taken: Vec<String> = conf
        .instances
        .iter()
        .filter_map(|i| i.use_vmac.clone())
        .filter(|v| !v.is_empty())
        .collect();
    for inst in &mut conf.instances {
        if inst.use_vmac.as_deref() != Some("") {
            continue;
        }
        let vrid = inst.config.virtual_router_id;
        let mut candidates = vec![format!("vrrp.{vrid}")];
        if inst.config.is_ipv6() {
            candidates.push(format!("vrrp6.{vrid}"));
        }
        let v6 = inst.config.is_ipv6();
        candidates.extend(
            (1..100)
                .filter(|n| !v6 || *n != 6)
                .map(|n| format!("vrrp{n}.{vrid}")),
        );
        let name = candidates
            .into_iter()
            .find(|c| !taken.contains(c))
            .unwrap_or_default();
        taken.push(name.clone());
        inst.use_vmac = Some(name);
    }
    for g in &conf.groups {
        for m in &g.members {
            let Some(inst) = conf.instances.iter_mut().find(|i| &i.name == m) else {
                return err(
                    &g.pos,
                    format!("vrrp_sync_group {}: no vrrp_instance named {m}", g.name),
                );
            };
            if let Some(other) = &inst.sync_group {
                return err(
                    &g.pos,
                    format!(
                        "vrrp_sync_group {}: {m} is already in group {other}",
                        g.name
                    ),
                );
            }
            inst.sync_group = Some(g.name.clone());
            inst.track_script.extend(g.track_script.iter().cloned());
        }
    }
    for inst in &mut conf.instances {
        for (s, w) in &inst.track_script {
            let Some(script) = conf.scripts.iter().find(|x| &x.name == s) else {
                return err(
                    &inst.pos,
                    format!(
                        "vrrp_instance {}: track_script {s}: no vrrp_script of that name",
                        inst.name
                    ),
                );
            };
            inst.config.track.push(Track::new(
                &track_script_name(s),
                w.unwrap_or(script.weight),
            ));
        }
        if let Err(e) = inst.config.validate() {
            return err(&inst.pos, format!("vrrp_instance {}: {e}", inst.name));
        }
    }
    Ok(())
}
