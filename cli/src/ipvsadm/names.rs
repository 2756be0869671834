//! Name lookups ipvsadm does through libc's NSS, limited to the `files` source: `/etc/hosts` for
//! `gethostbyname`/`gethostbyaddr` and `/etc/services` for `getservbyname`/`getservbyport`.

use ipvs_nl::Protocol;
use std::net::{IpAddr, Ipv4Addr};

/// `/etc/hosts`, read once per process (listings look up every address).
fn hosts() -> &'static [(IpAddr, Vec<String>)] {
    static HOSTS: std::sync::OnceLock<Vec<(IpAddr, Vec<String>)>> = std::sync::OnceLock::new();
    HOSTS.get_or_init(read_hosts)
}

fn read_hosts() -> Vec<(IpAddr, Vec<String>)> {
    let text = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut words = line.split_whitespace();
        let Some(addr) = words.next().and_then(|a| a.parse::<IpAddr>().ok()) else {
            continue;
        };
        let names: Vec<String> = words.map(str::to_string).collect();
        if !names.is_empty() {
            out.push((addr, names));
        }
    }
    out
}

/// `gethostbyname` restricted to IPv4 results, as ipvsadm's `host_to_addr`.
pub fn host_to_addr(name: &str) -> Option<Ipv4Addr> {
    hosts().iter().find_map(|(a, names)| match a {
        IpAddr::V4(v4) if names.iter().any(|n| n == name) => Some(*v4),
        _ => None,
    })
}

/// `gethostbyaddr`: the canonical (first) name of the first matching `/etc/hosts` line.
pub fn addr_to_host(addr: &IpAddr) -> Option<String> {
    hosts()
        .iter()
        .find(|(a, _)| a == addr)
        .and_then(|(_, n)| n.first().cloned())
}

fn proto_name(proto: Protocol) -> Option<&'static str> {
    match proto {
        Protocol::Tcp => Some("tcp"),
        Protocol::Udp => Some("udp"),
        Protocol::Sctp => Some("sctp"),
        _ => None,
    }
}

/// One `/etc/services` line: name, port, protocol, aliases.
type ServEnt = (String, u16, String, Vec<String>);

/// `/etc/services`, read once per process.
fn services() -> &'static [ServEnt] {
    static SERVICES: std::sync::OnceLock<Vec<ServEnt>> = std::sync::OnceLock::new();
    SERVICES.get_or_init(read_services)
}

fn read_services() -> Vec<ServEnt> {
    let text = std::fs::read_to_string("/etc/services").unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut words = line.split_whitespace();
        let (Some(name), Some(pp)) = (words.next(), words.next()) else {
            continue;
        };
        let Some((port, proto)) = pp.split_once('/') else {
            continue;
        };
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        out.push((
            name.to_string(),
            port,
            proto.to_string(),
            words.map(str::to_string).collect(),
        ));
    }
    out
}

/// `getservbyname(name, proto)`.
pub fn service_to_port(name: &str, proto: Protocol) -> Option<u16> {
    let p = proto_name(proto)?;
    services()
        .iter()
        .find(|(n, _, pr, aliases)| pr == p && (n == name || aliases.iter().any(|a| a == name)))
        .map(|(_, port, _, _)| *port)
}

/// `getservbyport(port, proto)`.
pub fn port_to_service(port: u16, proto: Protocol) -> Option<String> {
    let p = proto_name(proto)?;
    services()
        .iter()
        .find(|(_, po, pr, _)| *po == port && pr == p)
        .map(|(n, _, _, _)| n.clone())
}

/// ipvsadm's `addrport_to_anyname`: `addr:port`, IPv6 in brackets; names unless `numeric`. At most
/// 59 bytes, like its 60-byte buffer.
pub fn addrport_to_anyname(addr: &IpAddr, port: u16, proto: Protocol, numeric: bool) -> String {
    if numeric && let IpAddr::V4(a) = addr {
        // Hot path of `-S -n` / `-L -n`: no formatting machinery.
        let mut s = String::with_capacity(21);
        for (i, o) in a.octets().iter().enumerate() {
            if i > 0 {
                s.push('.');
            }
            push_u32(&mut s, u32::from(*o));
        }
        s.push(':');
        push_u32(&mut s, u32::from(port));
        return s;
    }
    let (open, close) = if addr.is_ipv6() { ("[", "]") } else { ("", "") };
    let mut s = if numeric {
        format!("{open}{addr}{close}:{port}")
    } else {
        let host = addr_to_host(addr).unwrap_or_else(|| addr.to_string());
        let serv = port_to_service(port, proto).unwrap_or_else(|| port.to_string());
        format!("{open}{host}{close}:{serv}")
    };
    truncate_bytes(&mut s, 59);
    s
}

/// Cuts `s` to at most `n` bytes (on a char boundary).
pub fn truncate_bytes(s: &mut String, n: usize) {
    if s.len() > n {
        let mut cut = n;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

/// Appends the decimal digits of `v`.
pub fn push_u32(s: &mut String, v: u32) {
    let mut buf = [0u8; 10];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for &b in &buf[i..] {
        s.push(char::from(b));
    }
}
