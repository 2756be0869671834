//! `virtual_server_group NAME { ... }` and `virtual_server IP PORT | fwmark N | group NAME { ... }`,
//! with their `real_server`, `sorry_server` and checkers (`TCP_CHECK`, `HTTP_GET`, `SSL_GET`,
//! `MISC_CHECK`), into `lvs_check::config` values. Keywords and defaults are keepalived 2.2.7's
//! (`check_parser.c`, `check_api.c`, `check_http.c`, `check_misc.c`); values that keepalived would log and
//! ignore are errors here (the file is rejected with `file:line`); keys that are not implemented (SMTP
//! alerts, SNMP names, regex matching, `bind_if`, ...) give a notice.

use super::vrrp_script::split_command;
use super::{ConfError, Item, Notice, Word, err, parse_int};
use ipvs_nl::{Family, FwdMethod, Protocol, Scheduler, ServiceFlags, ServiceKey, TunnelFlags};
use lvs_check::config::{
    CheckKind, Checker, Forwarding, HttpCheck, HttpProtocol, MiscCheck, RealServer, StatusCodes,
    Target, Url, VirtualServer,
};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The longest timer read (a day is plenty for a health check).
const MAX_TIMER: Duration = Duration::from_secs(86_400);

/// One `virtual_server_group`: its name and its entries, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The name.
    pub name: String,
    /// Its entries (address ranges expanded).
    pub entries: Vec<GroupEntry>,
}

/// One entry of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEntry {
    /// `IP[-LAST] PORT`, expanded: one per address.
    Addr(SocketAddr),
    /// `fwmark N [inet|inet6]`.
    Fwmark(u32, Option<Family>),
}

fn notice(notices: &mut Vec<Notice>, item: &Item, what: &str) {
    notices.push(Notice {
        pos: item.pos().clone(),
        msg: format!("{}: {what}; ignored", item.name()),
    });
}

fn ip(w: &Word, what: &str) -> Result<IpAddr, ConfError> {
    w.text
        .parse()
        .or_else(|_| err(&w.pos, format!("{what}: {:?} is not an IP address", w.text)))
}

fn port(w: &Word, what: &str) -> Result<u16, ConfError> {
    parse_int(what, w, 0..=65535)
}

/// `IP [PORT]` of `real_server`/`sorry_server` (a missing port is 0: the virtual server's).
fn server_addr(item: &Item) -> Result<SocketAddr, ConfError> {
    let a = ip(item.arg(0)?, item.name())?;
    let p = match item.args.get(1) {
        Some(w) => port(w, item.name())?,
        None => 0,
    };
    Ok(SocketAddr::new(a, p))
}

fn range_end<T: std::str::FromStr>(e: &Item, name: &str, s: &str) -> Result<T, ConfError> {
    s.parse().or_else(|_| {
        err(
            e.pos(),
            format!("virtual_server_group {name}: bad range end {s:?}"),
        )
    })
}

/// Reads `virtual_server_group NAME { ... }`.
pub fn read_group(item: &Item, notices: &mut Vec<Notice>) -> Result<Group, ConfError> {
    let name = item.value()?.text.clone();
    let mut entries = Vec::new();
    for e in item.block()? {
        if e.name() == "fwmark" {
            let mark = parse_int("fwmark", e.arg(0)?, 1..=u32::MAX)?;
            let family = match e.args.get(1).map(|w| w.text.as_str()) {
                None => None,
                Some("inet") => Some(Family::Ipv4),
                Some("inet6") => Some(Family::Ipv6),
                Some(o) => return err(e.pos(), format!("fwmark: unknown family {o:?}")),
            };
            entries.push(GroupEntry::Fwmark(mark, family));
            continue;
        }
        // IP[-LAST] PORT: the range replaces the last byte (IPv4) or the last 16 bits (IPv6).
        let (first, last) = match e.key.text.split_once('-') {
            Some((a, b)) => (a, Some(b)),
            None => (e.key.text.as_str(), None),
        };
        let start: IpAddr = first.parse().or_else(|_| {
            err(
                e.pos(),
                format!(
                    "virtual_server_group {name}: {:?} is not an address or range",
                    e.key.text
                ),
            )
        })?;
        let p = match e.args.first() {
            Some(w) => port(w, "virtual_server_group")?,
            None => 0,
        };
        let addrs: Vec<IpAddr> = match (start, last) {
            (a, None) => vec![a],
            (IpAddr::V4(a), Some(l)) => {
                let o = a.octets();
                let end: u8 = range_end(e, &name, l)?;
                if end < o[3] {
                    return err(e.pos(), format!("virtual_server_group {name}: empty range"));
                }
                (o[3]..=end)
                    .map(|x| IpAddr::from([o[0], o[1], o[2], x]))
                    .collect()
            }
            (IpAddr::V6(a), Some(l)) => {
                let s = a.segments();
                let end = u16::from_str_radix(l, 16).or_else(|_| {
                    err(
                        e.pos(),
                        format!("virtual_server_group {name}: bad range end {l:?}"),
                    )
                })?;
                if end < s[7] {
                    return err(e.pos(), format!("virtual_server_group {name}: empty range"));
                }
                (s[7]..=end)
                    .map(|x| {
                        let mut t = s;
                        t[7] = x;
                        IpAddr::from(t)
                    })
                    .collect()
            }
        };
        entries.extend(
            addrs
                .into_iter()
                .map(|a| GroupEntry::Addr(SocketAddr::new(a, p))),
        );
    }
    if entries.is_empty() {
        notice(notices, item, "the group has no entries");
    }
    Ok(Group { name, entries })
}

/// `lb_kind`/`lvs_method NAT|DR|TUN [type ipip|gue|gre] [port N] [nocsum|csum|remcsum]`.
fn forwarding(item: &Item) -> Result<Forwarding, ConfError> {
    let m = item.arg(0)?;
    let method = match m.text.as_str() {
        "NAT" => FwdMethod::Masq,
        "DR" => FwdMethod::Route,
        "TUN" => FwdMethod::Tunnel,
        o => return err(&m.pos, format!("{}: unknown method {o:?}", item.name())),
    };
    let mut f = Forwarding::new(method);
    let mut it = item.args[1..].iter();
    while let Some(w) = it.next() {
        match w.text.as_str() {
            "type" => {
                let Some(t) = it.next() else {
                    return err(&w.pos, "type: needs ipip, gue or gre");
                };
                f.tun_type = match t.text.as_str() {
                    "ipip" => ipvs_nl::TunnelType::Ipip,
                    "gue" => ipvs_nl::TunnelType::Gue,
                    "gre" => ipvs_nl::TunnelType::Gre,
                    o => return err(&t.pos, format!("unknown tunnel type {o:?}")),
                };
            }
            "port" => {
                let Some(p) = it.next() else {
                    return err(&w.pos, "port: needs a value");
                };
                f.tun_port = parse_int("tunnel port", p, 1..=65535)?;
            }
            "nocsum" => f.tun_flags = TunnelFlags::empty(),
            "csum" => f.tun_flags = TunnelFlags::CSUM,
            "remcsum" => f.tun_flags = TunnelFlags::REMCSUM,
            o => return err(&w.pos, format!("{}: unknown option {o:?}", item.name())),
        }
    }
    if method == FwdMethod::Tunnel && (f.tun_type == ipvs_nl::TunnelType::Gue) != (f.tun_port != 0)
    {
        return err(
            item.pos(),
            "gue tunnels require a port, other tunnels cannot have one",
        );
    }
    Ok(f)
}

/// A command line (`misc_path`, `notify_up`, ...): keepalived splits the string and runs it directly.
fn command(item: &Item) -> Result<Vec<String>, ConfError> {
    let c = split_command(&item.joined_args());
    if c.is_empty() {
        return err(item.pos(), format!("{}: needs a command", item.name()));
    }
    Ok(c)
}

const CHECKERS: [&str; 4] = ["TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK"];

/// Reads one checker block (`item` is one of [`CHECKERS`]); `None` when keepalived would drop it.
fn read_checker(item: &Item, notices: &mut Vec<Notice>) -> Result<Option<Checker>, ConfError> {
    let mut kind = match item.name() {
        "HTTP_GET" => CheckKind::Http(HttpCheck::default()),
        "SSL_GET" => CheckKind::Ssl(HttpCheck::default()),
        "MISC_CHECK" => CheckKind::Misc(MiscCheck::new(Vec::new())),
        _ => CheckKind::Tcp,
    };
    let mut c = Checker::new(CheckKind::Tcp);
    for k in item.block.as_deref().unwrap_or_default() {
        match (k.name(), &mut kind) {
            ("connect_ip", _) => c.connect_ip = Some(ip(k.value()?, "connect_ip")?),
            ("connect_port", _) => {
                c.connect_port = Some(parse_int("connect_port", k.value()?, 1..=65535)?)
            }
            ("bindto", _) => c.bindto = Some(ip(k.value()?, "bindto")?),
            ("bind_port", _) => c.bind_port = Some(parse_int("bind_port", k.value()?, 1..=65535)?),
            ("connect_timeout", _) => c.connect_timeout = Some(k.seconds(MAX_TIMER)?),
            ("retry" | "nb_get_retry", _) => c.retry = Some(k.int(0..=u32::MAX)?),
            ("delay_before_retry", _) => c.delay_before_retry = Some(k.seconds(MAX_TIMER)?),
            ("delay_loop", _) => c.delay_loop = Some(k.seconds(MAX_TIMER)?),
            ("warmup", _) => c.warmup = Some(k.seconds(MAX_TIMER)?),
            ("alpha", _) => c.alpha = Some(k.flag()?),
            ("bind_if" | "fwmark" | "log_all_failures", _) => notice(notices, k, "not implemented"),
            ("url", CheckKind::Http(h) | CheckKind::Ssl(h)) => h.urls.push(read_url(k, notices)?),
            ("virtualhost", CheckKind::Http(h) | CheckKind::Ssl(h)) => {
                h.virtualhost = Some(k.value()?.text.clone())
            }
            ("http_protocol", CheckKind::Http(h) | CheckKind::Ssl(h)) => {
                let v = k.value()?;
                h.protocol = match v.text.as_str() {
                    "1.0" => HttpProtocol::Http10,
                    "1.1" => HttpProtocol::Http11,
                    "1.0C" | "1.0c" => HttpProtocol::Http10Close,
                    o => return err(&v.pos, format!("http_protocol: unknown version {o:?}")),
                };
            }
            ("enable_sni", CheckKind::Http(h) | CheckKind::Ssl(h)) => h.enable_sni = k.flag()?,
            ("fast_recovery", CheckKind::Http(h) | CheckKind::Ssl(h)) => {
                h.fast_recovery = k.flag()?
            }
            ("misc_path", CheckKind::Misc(m)) => m.path = command(k)?,
            ("misc_timeout", CheckKind::Misc(m)) => {
                m.timeout = Some(Duration::from_secs(k.int(0..=u64::from(u32::MAX))?))
            }
            ("misc_dynamic", CheckKind::Misc(m)) => m.dynamic = true,
            ("user", CheckKind::Misc(_)) => notice(notices, k, "scripts run as vrrpd's user"),
            _ => notice(notices, k, "unknown checker keyword"),
        }
    }
    match &kind {
        CheckKind::Http(h) | CheckKind::Ssl(h) if h.urls.is_empty() => {
            notice(notices, item, "checker without url dropped, as keepalived");
            return Ok(None);
        }
        CheckKind::Misc(m) if m.path.is_empty() => {
            notice(
                notices,
                item,
                "MISC_CHECK without misc_path dropped, as keepalived",
            );
            return Ok(None);
        }
        _ => {}
    }
    c.kind = kind;
    Ok(Some(c))
}

fn read_url(item: &Item, notices: &mut Vec<Notice>) -> Result<Url, ConfError> {
    let mut u = Url::new("");
    let mut codes = StatusCodes::empty();
    for k in item.block()? {
        match k.name() {
            "path" => u.path = k.value()?.text.clone(),
            "digest" => {
                let w = k.value()?;
                let Some(d) = lvs_check::http::parse_digest(&w.text) else {
                    return err(&w.pos, format!("digest: {:?} is not 32 hex digits", w.text));
                };
                u.digest = Some(d);
            }
            "status_code" => {
                for w in &k.args {
                    let (a, b) = w.text.split_once('-').unwrap_or((&w.text, &w.text));
                    match (a.parse::<u16>(), b.parse::<u16>()) {
                        (Ok(a), Ok(b)) if (100..=599).contains(&a) && (a..=599).contains(&b) => {
                            codes.insert_range(a, b)
                        }
                        _ => return err(&w.pos, format!("status_code: invalid {:?}", w.text)),
                    }
                }
            }
            "virtualhost" => u.virtualhost = Some(k.value()?.text.clone()),
            _ => notice(notices, k, "not implemented"),
        }
    }
    if u.path.is_empty() {
        return err(item.pos(), "url: needs a path");
    }
    if !codes.is_empty() {
        u.status = codes;
    }
    Ok(u)
}

/// Reads a real server key into `rs`; `Ok(false)` for a key that is not one.
fn read_rs_key(
    k: &Item,
    rs: &mut RealServer,
    notices: &mut Vec<Notice>,
) -> Result<bool, ConfError> {
    match k.name() {
        "weight" => rs.weight = Some(k.int(0..=i32::MAX as u32)?),
        "lvs_method" => rs.forwarding = Some(forwarding(k)?),
        "uthreshold" => rs.u_threshold = k.int(0..=u32::MAX)?,
        "lthreshold" => rs.l_threshold = k.int(0..=u32::MAX)?,
        "inhibit_on_failure" => rs.inhibit_on_failure = Some(k.flag()?),
        "notify_up" => rs.notify_up = Some(command(k)?),
        "notify_down" => rs.notify_down = Some(command(k)?),
        "alpha" => rs.alpha = Some(k.flag()?),
        "retry" => rs.retry = Some(k.int(1..=u32::MAX)?),
        "delay_before_retry" => rs.delay_before_retry = Some(k.seconds(MAX_TIMER)?),
        "warmup" => rs.warmup = Some(k.seconds(MAX_TIMER)?),
        "connect_timeout" => rs.connect_timeout = Some(k.seconds(MAX_TIMER)?),
        "delay_loop" => rs.delay_loop = Some(k.seconds(MAX_TIMER)?),
        "virtualhost" => rs.virtualhost = Some(k.value()?.text.clone()),
        "smtp_alert" | "snmp_name" => notice(notices, k, "not implemented"),
        _ => return Ok(false),
    }
    Ok(true)
}

fn read_real_server(k: &Item, notices: &mut Vec<Notice>) -> Result<RealServer, ConfError> {
    let mut rs = RealServer::new(server_addr(k)?);
    for rk in k.block.as_deref().unwrap_or_default() {
        if read_rs_key(rk, &mut rs, notices)? {
            continue;
        }
        if CHECKERS.contains(&rk.name()) {
            if let Some(c) = read_checker(rk, notices)? {
                rs.checkers.push(c);
            }
        } else if rk.name().ends_with("_CHECK") {
            notice(notices, rk, "checker not implemented");
        } else {
            notice(notices, rk, "unknown real_server keyword");
        }
    }
    Ok(rs)
}

/// What a `virtual_server` line names.
enum Head {
    Addr(SocketAddr),
    Fwmark(u32),
    Group(String),
}

/// Reads `virtual_server ... { }`; `groups` are the `virtual_server_group`s of the whole file. A block
/// without real servers is skipped with a notice, as keepalived ignores it.
pub fn read(
    item: &Item,
    groups: &[Group],
    notices: &mut Vec<Notice>,
) -> Result<Option<VirtualServer>, ConfError> {
    let a0 = item.arg(0)?;
    let head = match a0.text.as_str() {
        "fwmark" => Head::Fwmark(parse_int("fwmark", item.arg(1)?, 1..=u32::MAX)?),
        "group" => Head::Group(item.arg(1)?.text.clone()),
        _ => {
            let a = ip(a0, "virtual_server")?;
            let p = match item.args.get(1) {
                Some(w) => port(w, "virtual_server")?,
                None => 0,
            };
            Head::Addr(SocketAddr::new(a, p))
        }
    };
    let mut vs = VirtualServer::new(Target::Fwmark {
        mark: 0,
        family: Family::Ipv4,
    });
    let mut protocol = None;
    let mut family = None;
    let mut sorry: Option<RealServer> = None;
    let mut granularity: Option<Word> = None;
    let mut persistence_set = false;
    for k in item.block()? {
        let name = k.name();
        match name {
            "ip_family" => {
                let v = k.value()?;
                family = Some(match v.text.as_str() {
                    "inet" => Family::Ipv4,
                    "inet6" => Family::Ipv6,
                    o => return err(&v.pos, format!("ip_family: unknown family {o:?}")),
                });
            }
            "delay_loop" => vs.delay_loop = k.seconds(MAX_TIMER)?,
            "lb_algo" | "lvs_sched" => {
                let v = k.value()?;
                vs.scheduler = Scheduler::from_name(&v.text);
                if let Scheduler::Other(s) = &vs.scheduler {
                    return err(&v.pos, format!("{name}: unknown scheduler {s:?}"));
                }
            }
            "lb_kind" | "lvs_method" => vs.forwarding = forwarding(k)?,
            "persistence_timeout" => {
                vs.persistence_timeout = match k.args.first() {
                    None => lvs_check::config::DEFAULT_PERSISTENCE_TIMEOUT,
                    Some(_) => k.int(1..=86_400 * 31)?,
                };
                persistence_set = true;
            }
            "persistence_granularity" => granularity = Some(k.value()?.clone()),
            "persistence_engine" => vs.persistence_engine = Some(k.value()?.text.clone()),
            "protocol" => {
                let v = k.value()?;
                protocol = Some(match v.text.to_ascii_uppercase().as_str() {
                    "TCP" => Protocol::Tcp,
                    "UDP" => Protocol::Udp,
                    "SCTP" => Protocol::Sctp,
                    o => return err(&v.pos, format!("protocol: unknown {o:?}")),
                });
            }
            "ha_suspend" => vs.ha_suspend = true,
            "virtualhost" => vs.virtualhost = Some(k.value()?.text.clone()),
            "alpha" => vs.alpha = k.flag()?,
            "omega" => vs.omega = k.flag()?,
            "quorum_up" => vs.quorum_up = Some(command(k)?),
            "quorum_down" => vs.quorum_down = Some(command(k)?),
            "quorum" => vs.quorum = k.int(1..=u32::MAX)?,
            "hysteresis" => vs.hysteresis = k.int(0..=u32::MAX)?,
            "weight" => vs.weight = k.int(1..=i32::MAX as u32)?,
            "connect_timeout" => vs.connect_timeout = k.seconds(MAX_TIMER)?,
            "retry" => vs.retry = Some(k.int(1..=u32::MAX)?),
            "delay_before_retry" => vs.delay_before_retry = Some(k.seconds(MAX_TIMER)?),
            "warmup" => vs.warmup = Some(k.seconds(MAX_TIMER)?),
            "inhibit_on_failure" => vs.inhibit_on_failure = k.flag()?,
            "ops" => vs.flags |= ServiceFlags::ONEPACKET,
            "hashed" => {}
            "flag-1" => vs.flags |= ServiceFlags::SCHED1,
            "flag-2" => vs.flags |= ServiceFlags::SCHED2,
            "flag-3" => vs.flags |= ServiceFlags::SCHED3,
            // sh-/mh- flags apply to their own scheduler only (keepalived ignores them otherwise).
            "sh-fallback" | "mh-fallback" if vs.scheduler.name() == &name[..2] => {
                vs.flags |= ServiceFlags::SCHED1
            }
            "sh-port" | "mh-port" if vs.scheduler.name() == &name[..2] => {
                vs.flags |= ServiceFlags::SCHED2
            }
            "sh-fallback" | "mh-fallback" | "sh-port" | "mh-port" => notice(
                notices,
                k,
                "only applies to its scheduler (set lb_algo first)",
            ),
            "sorry_server" => sorry = Some(RealServer::new(server_addr(k)?)),
            "sorry_server_inhibit" => vs.sorry_server_inhibit = k.flag()?,
            "sorry_server_lvs_method" => match &mut sorry {
                Some(s) => s.forwarding = Some(forwarding(k)?),
                None => return err(k.pos(), "sorry_server_lvs_method before sorry_server"),
            },
            "real_server" => vs.real_servers.push(read_real_server(k, notices)?),
            "smtp_alert" | "snmp_name" => notice(notices, k, "not implemented"),
            _ => notice(notices, k, "unknown virtual_server keyword"),
        }
    }
    // The family: ip_family, else the address's, else the real servers' (keepalived's vs_end_handler).
    let rs_family = vs.real_servers.first().map(|r| Family::of(&r.addr.ip()));
    vs.target = match head {
        Head::Addr(a) => {
            if family.is_some_and(|f| f != Family::of(&a.ip())) {
                return err(item.pos(), "ip_family does not match the address");
            }
            let protocol = protocol.unwrap_or_else(|| {
                notices.push(Notice {
                    pos: item.pos().clone(),
                    msg: "virtual_server: no protocol set, defaulting to UDP as keepalived".into(),
                });
                Protocol::Udp
            });
            Target::Addr { addr: a, protocol }
        }
        Head::Fwmark(mark) => Target::Fwmark {
            mark,
            family: family.or(rs_family).unwrap_or(Family::Ipv4),
        },
        Head::Group(name) => {
            let Some(g) = groups.iter().find(|g| g.name == name) else {
                return err(
                    item.pos(),
                    format!("virtual_server group {name}: no virtual_server_group of that name"),
                );
            };
            let proto = protocol.unwrap_or(Protocol::Udp);
            let services = g
                .entries
                .iter()
                .map(|e| match e {
                    GroupEntry::Addr(a) => ServiceKey::Inet {
                        protocol: proto,
                        addr: a.ip(),
                        port: a.port(),
                    },
                    GroupEntry::Fwmark(mark, f) => ServiceKey::Fwmark {
                        mark: *mark,
                        family: f.or(family).or(rs_family).unwrap_or(Family::Ipv4),
                    },
                })
                .collect();
            Target::Group { name, services }
        }
    };
    let vs_family = match &vs.target {
        Target::Addr { addr, .. } => Family::of(&addr.ip()),
        Target::Fwmark { family, .. } => *family,
        Target::Group { services, .. } => services.first().map_or(Family::Ipv4, |k| k.family()),
        _ => Family::Ipv4,
    };
    if let Some(g) = granularity {
        vs.persistence_granularity = Some(match vs_family {
            Family::Ipv6 => parse_int("persistence_granularity", &g, 1..=128)?,
            Family::Ipv4 => match g.text.parse::<std::net::Ipv4Addr>() {
                Ok(m) => u32::from(m),
                Err(_) => {
                    return err(
                        &g.pos,
                        format!("persistence_granularity: {:?} is not a netmask", g.text),
                    );
                }
            },
        });
        if !persistence_set {
            vs.persistence_timeout = lvs_check::config::DEFAULT_PERSISTENCE_TIMEOUT;
        }
    }
    vs.sorry_server = sorry;
    if vs.real_servers.is_empty() {
        notices.push(Notice {
            pos: item.pos().clone(),
            msg: "virtual_server: no real_server; ignored, as keepalived".into(),
        });
        return Ok(None);
    }
    Ok(Some(vs))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::super::{load_str, read as read_conf};
    use super::*;
    use std::path::Path;

    const CONF: &str = r#"
virtual_server_group web {
  10.0.1.5-6 443
  fwmark 9
}
virtual_server 10.0.1.1 80 {
  delay_loop 2
  lb_algo rr
  lb_kind NAT
  protocol TCP
  persistence_timeout 300
  persistence_granularity 255.255.255.0
  quorum 2
  hysteresis 1
  quorum_up "/bin/echo up"
  sorry_server 10.0.2.9 8080
  sorry_server_inhibit
  real_server 10.0.2.1 8080 {
    weight 2
    inhibit_on_failure
    notify_down "/bin/logger down 10.0.2.1"
    HTTP_GET {
      url {
        path /index.html
        digest b1946ac92492d2347c6235b4d2611184
        status_code 200 301-302
      }
      connect_timeout 1.5
      nb_get_retry 2
      delay_before_retry 1
      virtualhost www.example.com
    }
  }
  real_server 10.0.2.2 8080 {
    TCP_CHECK {
      connect_port 8081
      bindto 10.0.2.254
    }
    SMTP_CHECK {
    }
  }
}
virtual_server fwmark 7 {
  lb_algo sh
  sh-port
  lb_kind DR
  real_server 10.0.2.3 80 {
    MISC_CHECK {
      misc_path "/bin/sh /etc/check.sh arg"
      misc_timeout 3
      misc_dynamic
    }
  }
}
virtual_server group web {
  lb_kind TUN type gue port 6080 csum
  protocol TCP
  real_server 10.0.2.4 443 {
    SSL_GET {
      url {
        path /
      }
      enable_sni
    }
  }
}
"#;

    #[test]
    fn reads_keepalived_virtual_servers() {
        let items = load_str(CONF, Path::new("t.conf"), None).unwrap();
        let conf = read_conf(&items).unwrap();
        let v = &conf.virtual_servers;
        assert_eq!(v.len(), 3);
        let v1 = &v[0];
        assert_eq!(
            v1.target,
            Target::Addr {
                addr: "10.0.1.1:80".parse().unwrap(),
                protocol: Protocol::Tcp
            }
        );
        assert_eq!(
            (v1.scheduler.name(), v1.delay_loop),
            ("rr", Duration::from_secs(2))
        );
        assert_eq!(
            (
                v1.persistence_timeout,
                v1.persistence_granularity,
                v1.quorum,
                v1.hysteresis
            ),
            (300, Some(0xffff_ff00), 2, 1)
        );
        assert_eq!(
            v1.quorum_up.as_deref(),
            Some(&["/bin/echo".to_string(), "up".into()][..])
        );
        assert!(v1.sorry_server_inhibit);
        assert_eq!(
            v1.sorry_server.as_ref().unwrap().addr,
            "10.0.2.9:8080".parse().unwrap()
        );
        let r1 = &v1.real_servers[0];
        assert_eq!((r1.weight, r1.inhibit_on_failure), (Some(2), Some(true)));
        let c = &r1.checkers[0];
        let CheckKind::Http(h) = &c.kind else {
            panic!()
        };
        assert_eq!(h.urls[0].path, "/index.html");
        assert!(h.urls[0].status.contains(301) && !h.urls[0].status.contains(200 + 4));
        assert_eq!(h.virtualhost.as_deref(), Some("www.example.com"));
        assert_eq!(
            (c.connect_timeout, c.retry, c.delay_before_retry),
            (
                Some(Duration::from_millis(1500)),
                Some(2),
                Some(Duration::from_secs(1))
            )
        );
        let r2 = &v1.real_servers[1];
        assert_eq!(r2.checkers.len(), 1, "SMTP_CHECK is not implemented");
        assert_eq!(r2.checkers[0].connect_port, Some(8081));
        assert!(conf.notices.iter().any(|n| n.msg.contains("SMTP_CHECK")));
        let v2 = &v[1];
        assert_eq!(v2.flags, ServiceFlags::SCHED2);
        assert_eq!(v2.forwarding.method, FwdMethod::Route);
        let CheckKind::Misc(m) = &v2.real_servers[0].checkers[0].kind else {
            panic!()
        };
        assert_eq!(m.path, ["/bin/sh", "/etc/check.sh", "arg"]);
        assert!(m.dynamic);
        let v3 = &v[2];
        let Target::Group { services, .. } = &v3.target else {
            panic!()
        };
        assert_eq!(
            services.len(),
            3,
            "two addresses and a fwmark: {services:?}"
        );
        assert_eq!(v3.forwarding.tun_port, 6080);
    }

    #[test]
    fn bad_values_name_their_line() {
        for (bad, want) in [
            (
                "virtual_server 10.0.1.1 80 {\n lb_algo nope\n real_server 10.0.0.2 80 {\n }\n}\n",
                "t.conf:2: lb_algo: unknown scheduler",
            ),
            (
                "virtual_server 10.0.1.1 80 {\n real_server 10.0.0.2 80 {\n HTTP_GET {\n url {\n digest 12\n path /\n }\n }\n }\n}\n",
                "t.conf:5: digest",
            ),
            (
                "virtual_server group nope {\n real_server 10.0.0.2 80 {\n }\n}\n",
                "t.conf:1: virtual_server group nope",
            ),
            (
                "virtual_server 10.0.1.1 80 {\n lb_kind TUN type gue\n real_server 10.0.0.2 80 {\n }\n}\n",
                "t.conf:2: gue tunnels",
            ),
            (
                "virtual_server 10.0.1.1 99999 {\n}\n",
                "t.conf:1: virtual_server",
            ),
        ] {
            let items = load_str(bad, Path::new("t.conf"), None).unwrap();
            let e = read_conf(&items).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e} (want {want})");
        }
    }
}
