//! Output formatting: pure functions over `ipvs-nl` values, reproducing ipvsadm 1.31's `printf`s byte for
//! byte (widths, truncations, sort order).

use super::args::fmt;
use super::names::{addrport_to_anyname, truncate_bytes};
use ipvs_nl::{
    Daemon, DaemonState, Destination, Family, FwdMethod, Protocol, Service, ServiceFlags,
    ServiceKey, Stats, TunnelFlags,
};
use std::cmp::Ordering;
use std::fmt::Write as _;
use std::net::IpAddr;

/// glibc's `qsort` (a top-down merge sort, `msort_with_tmp`) driven by a C-style comparator. ipvsadm's
/// comparators subtract unsigned values into an `int`, which is not a total order; reproducing glibc's
/// merge order keeps the output identical even then.
pub fn glibc_msort<T: Clone>(v: &mut [T], cmp: &impl Fn(&T, &T) -> i32) {
    let idx = glibc_order(v, cmp);
    let sorted: Vec<T> = idx.iter().map(|&i| v[i].clone()).collect();
    v.clone_from_slice(&sorted);
}

/// The permutation [`glibc_msort`] would apply: `v[order[0]]` comes first.
pub fn glibc_order<T>(v: &[T], cmp: &impl Fn(&T, &T) -> i32) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    let mut tmp = Vec::with_capacity(v.len());
    msort_idx(&mut idx, &mut tmp, &|a: usize, b: usize| cmp(&v[a], &v[b]));
    idx
}

fn msort_idx(b: &mut [usize], tmp: &mut Vec<usize>, cmp: &impl Fn(usize, usize) -> i32) {
    let n = b.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    msort_idx(&mut b[..n1], tmp, cmp);
    msort_idx(&mut b[n1..], tmp, cmp);
    tmp.clear();
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if cmp(b[i], b[j]) <= 0 {
            tmp.push(b[i]);
            i += 1;
        } else {
            tmp.push(b[j]);
            j += 1;
        }
    }
    tmp.extend_from_slice(&b[i..n1]);
    tmp.extend_from_slice(&b[j..n]);
    b.copy_from_slice(tmp);
}

fn words(a: &IpAddr) -> [u32; 4] {
    match a {
        IpAddr::V4(v) => [u32::from(*v), 0, 0, 0],
        IpAddr::V6(v) => {
            let o = v.octets();
            std::array::from_fn(|i| {
                u32::from_be_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
            })
        }
    }
}

fn cmp_addr(a: &IpAddr, b: &IpAddr, v6: bool) -> i32 {
    let (wa, wb) = (words(a), words(b));
    let n = if v6 { 4 } else { 1 };
    for i in 0..n {
        let r = wa[i].wrapping_sub(wb[i]) as i32;
        if r != 0 {
            return r;
        }
    }
    0
}

/// The fields ipvsadm's service comparator and printer use.
fn svc_parts(s: &Service) -> (u32, u16, Protocol, IpAddr, u16) {
    match s.key {
        ServiceKey::Fwmark { mark, family } => (
            mark,
            if family == Family::Ipv6 { 10 } else { 2 },
            Protocol::Other(0),
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            0,
        ),
        ServiceKey::Inet {
            protocol,
            addr,
            port,
        } => (0, if addr.is_ipv6() { 10 } else { 2 }, protocol, addr, port),
    }
}

/// libipvs `ipvs_cmp_services`.
pub fn cmp_services(a: &Service, b: &Service) -> i32 {
    let (fa, afa, pa, aa, pta) = svc_parts(a);
    let (fb, afb, pb, ab, ptb) = svc_parts(b);
    let r = fa.wrapping_sub(fb) as i32;
    if r != 0 {
        return r;
    }
    let r = i32::from(afa) - i32::from(afb);
    if r != 0 {
        return r;
    }
    let r = i32::from(pa.number()) - i32::from(pb.number());
    if r != 0 {
        return r;
    }
    let r = cmp_addr(&aa, &ab, afa == 10);
    if r != 0 {
        return r;
    }
    i32::from(pta) - i32::from(ptb)
}

/// libipvs `ipvs_cmp_dests` (the first destination's family decides the address width).
pub fn cmp_dests(a: &Destination, b: &Destination) -> i32 {
    let r = cmp_addr(&a.addr, &b.addr, a.addr.is_ipv6());
    if r != 0 {
        return r;
    }
    i32::from(a.port) - i32::from(b.port)
}

/// A total order helper for callers that need one (not used for output).
pub fn ord(r: i32) -> Ordering {
    r.cmp(&0)
}

/// `print_largenum`.
pub fn largenum(out: &mut String, i: u64, format: u32) {
    if format & fmt::EXACT != 0 {
        let len = i.to_string().len();
        let w = if len <= 8 { 9 } else { len + 1 };
        let _ = write!(out, "{i:>w$}");
        return;
    }
    let _ = if i < 100_000_000 {
        write!(out, "{i:>9}")
    } else if i < 1_000_000_000 {
        write!(out, "{:>8}K", i / 1000)
    } else if i < 100_000_000_000 {
        write!(out, "{:>8}M", i / 1_000_000)
    } else if i < 100_000_000_000_000 {
        write!(out, "{:>8}G", i / 1_000_000_000)
    } else {
        write!(out, "{:>8}T", i / 1_000_000_000_000)
    };
}

fn sched_flags(s: &Service) -> String {
    let f = s.flags;
    let mut v = Vec::new();
    match s.scheduler.name() {
        p @ ("sh" | "mh") => {
            if f.contains(ServiceFlags::SCHED1) {
                v.push(format!("{p}-fallback"));
            }
            if f.contains(ServiceFlags::SCHED2) {
                v.push(format!("{p}-port"));
            }
        }
        _ => {
            for (bit, name) in [
                (ServiceFlags::SCHED1, "flag-1"),
                (ServiceFlags::SCHED2, "flag-2"),
                (ServiceFlags::SCHED3, "flag-3"),
            ] {
                if f.contains(bit) {
                    v.push(name.to_string());
                }
            }
        }
    }
    v.join(",")
}

/// `print_title`.
pub fn title(out: &mut String, format: u32) {
    let head = "Prot LocalAddress:Port";
    if format & fmt::STATS != 0 {
        let _ = writeln!(
            out,
            "{head:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
            "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        );
    } else if format & fmt::RATE != 0 {
        let _ = writeln!(
            out,
            "{head:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
            "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        );
    } else if format & fmt::THRESHOLDS != 0 {
        let _ = writeln!(
            out,
            "{head:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port",
            "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        );
    } else if format & fmt::PERSISTENTCONN != 0 {
        let _ = writeln!(
            out,
            "{head:<33} {:<9} {:<11} {:<10} {:<10}\n  -> RemoteAddress:Port",
            "Weight", "PersistConn", "ActiveConn", "InActConn"
        );
    } else if format & fmt::TUN_INFO != 0 {
        out.push_str(
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n",
        );
    } else if format & fmt::RULE == 0 {
        out.push_str(
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        );
    }
}

fn fwd_name(f: FwdMethod) -> &'static str {
    match f {
        FwdMethod::Masq => "Masq",
        FwdMethod::Local => "Local",
        FwdMethod::Tunnel => "Tunnel",
        FwdMethod::Route => "Route",
        // printf("%s", NULL) in glibc.
        _ => "(null)",
    }
}

fn fwd_switch(f: FwdMethod) -> &'static str {
    match f {
        FwdMethod::Masq => "-m",
        FwdMethod::Tunnel => "-i",
        FwdMethod::Local | FwdMethod::Route => "-g",
        _ => "(null)",
    }
}

const TUNNAMES: [&str; 3] = ["ipip", "gue", "gre"];
const TUNFLAGS: [&str; 3] = ["-c", "+c", "r+c"];
const TUN_FLAGS_OPTS: [&str; 3] = ["--tun-nocsum", "--tun-csum", "--tun-remcsum"];

fn tun_flag<'a>(table: &[&'a str; 3], f: TunnelFlags) -> &'a str {
    table
        .get(usize::from(f.bits()))
        .copied()
        .unwrap_or("(null)")
}

fn tun_info(d: &Destination) -> Option<String> {
    if d.fwd != FwdMethod::Tunnel {
        return None;
    }
    let mut s = match d.tun_type.value() {
        0 => "ipip".to_string(),
        1 => format!("gue:{}:{}", d.tun_port, tun_flag(&TUNFLAGS, d.tun_flags)),
        2 => format!("gre:{}", tun_flag(&TUNFLAGS, d.tun_flags)),
        _ => return None,
    };
    truncate_bytes(&mut s, 15);
    Some(s)
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
        Protocol::Sctp => "SCTP",
        _ => "?",
    }
}

fn option_from_protocol(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "-t",
        Protocol::Udp => "-u",
        Protocol::Sctp => "--sctp-service",
        _ => "--xxx-service",
    }
}

/// `print_service_entry` for one service and its destinations (sorted unless `--nosort`).
pub fn service_entry(out: &mut String, se: &Service, dests: &[Destination], format: u32) {
    let numeric = format & fmt::NUMERIC != 0;
    let rule = format & fmt::RULE != 0;
    let (fwmark, af, proto, addr, port) = svc_parts(se);
    let v6 = af == 10;
    let svc_name = if fwmark != 0 || matches!(se.key, ServiceKey::Fwmark { .. }) {
        // ipvsadm prints the mark with %d.
        let m = fwmark as i32;
        match (rule, v6) {
            (true, true) => format!("-f {m} -6"),
            (true, false) => format!("-f {m}"),
            (false, true) => format!("FWM  {m} IPv6"),
            (false, false) => format!("FWM  {m}"),
        }
    } else {
        let vname = addrport_to_anyname(&addr, port, proto, numeric);
        if rule {
            format!("{} {vname}", option_from_protocol(proto))
        } else {
            let mut s = format!("{:<4} {vname}", protocol_name(proto));
            if !v6 {
                truncate_bytes(&mut s, 33);
            }
            s
        }
    };
    let persistent = se.flags.contains(ServiceFlags::PERSISTENT);
    let sched_bits = se
        .flags
        .intersects(ServiceFlags::SCHED1 | ServiceFlags::SCHED2 | ServiceFlags::SCHED3);
    let mask = |out: &mut String, kw: &str| {
        if !v6 && se.netmask != 0xffff_ffff {
            let _ = write!(out, " {kw} {}", std::net::Ipv4Addr::from(se.netmask));
        }
        if v6 && se.netmask != 128 {
            let _ = write!(out, " {kw} {}", se.netmask as i32);
        }
    };
    let st = se.best_stats();
    if rule {
        let _ = write!(out, "-A {svc_name} -s {}", se.scheduler);
        if persistent {
            let _ = write!(out, " -p {}", se.timeout);
            mask(out, "-M");
        }
        if let Some(pe) = &se.pe_name {
            let _ = write!(out, " --pe {pe}");
        }
        if se.flags.contains(ServiceFlags::ONEPACKET) {
            out.push_str(" -o");
        }
        if sched_bits {
            let _ = write!(out, " -b {}", sched_flags(se));
        }
    } else if format & fmt::STATS != 0 {
        let _ = write!(out, "{svc_name:<33}");
        for v in [st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes] {
            largenum(out, v, format);
        }
    } else if format & fmt::RATE != 0 {
        let _ = write!(out, "{svc_name:<33}");
        for v in [st.cps, st.inpps, st.outpps, st.inbps, st.outbps] {
            largenum(out, v, format);
        }
    } else {
        let _ = write!(out, "{svc_name} {}", se.scheduler);
        if sched_bits {
            let _ = write!(out, " ({})", sched_flags(se));
        }
        if persistent {
            let _ = write!(out, " persistent {}", se.timeout);
            mask(out, "mask");
            if let Some(pe) = &se.pe_name {
                let _ = write!(out, " pe {pe}");
            }
        }
        if se.flags.contains(ServiceFlags::ONEPACKET) {
            out.push_str(" ops");
        }
    }
    out.push('\n');

    let order: Vec<usize> = if format & fmt::NOSORT == 0 {
        glibc_order(dests, &cmp_dests)
    } else {
        (0..dests.len()).collect()
    };
    for e in order.iter().map(|&i| &dests[i]) {
        let mut dname = addrport_to_anyname(&e.addr, e.port, proto, numeric);
        if !rule && !e.addr.is_ipv6() {
            truncate_bytes(&mut dname, 28);
        }
        let s: Stats = e.best_stats();
        let weight = e.weight as i32;
        if rule {
            let sw = fwd_switch(e.fwd);
            if e.fwd == FwdMethod::Tunnel {
                let tt = e.tun_type.value();
                let _ = match tt {
                    2 => writeln!(
                        out,
                        "-a {svc_name} -r {dname} {sw} -w {weight} --tun-type gre {}",
                        tun_flag(&TUN_FLAGS_OPTS, e.tun_flags)
                    ),
                    1 => writeln!(
                        out,
                        "-a {svc_name} -r {dname} {sw} -w {weight} --tun-type gue --tun-port {} {}",
                        e.tun_port,
                        tun_flag(&TUN_FLAGS_OPTS, e.tun_flags)
                    ),
                    0 => writeln!(
                        out,
                        "-a {svc_name} -r {dname} {sw} -w {weight} --tun-type {}",
                        TUNNAMES[0]
                    ),
                    _ => writeln!(out, "-a {svc_name} -r {dname} {sw} -w {weight}"),
                };
            } else {
                let _ = writeln!(out, "-a {svc_name} -r {dname} {sw} -w {weight}");
            }
        } else if format & fmt::STATS != 0 {
            let _ = write!(out, "  -> {dname:<28}");
            for v in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
                largenum(out, v, format);
            }
            out.push('\n');
        } else if format & fmt::RATE != 0 {
            let _ = write!(
                out,
                "  -> {dname:<28} {:>8} {:>8} {:>8}",
                s.cps, s.inpps, s.outpps
            );
            largenum(out, s.inbps, format);
            largenum(out, s.outbps, format);
            out.push('\n');
        } else if format & fmt::THRESHOLDS != 0 {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}",
                e.u_threshold, e.l_threshold, e.active_conns, e.inact_conns
            );
        } else if format & fmt::PERSISTENTCONN != 0 {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}",
                e.weight, e.persist_conns, e.active_conns, e.inact_conns
            );
        } else if format & fmt::TUN_INFO != 0 {
            let ti = tun_info(e).unwrap_or_else(|| "n/a".to_string());
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<7} {ti:<13} {weight:<6} {:<10} {:<10}",
                fwd_name(e.fwd),
                e.active_conns,
                e.inact_conns
            );
        } else {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<7} {weight:<6} {:<10} {:<10}",
                fwd_name(e.fwd),
                e.active_conns,
                e.inact_conns
            );
        }
    }
}

/// `list_timeout`.
pub fn timeouts(t: &ipvs_nl::Timeouts) -> String {
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t.tcp as i32, t.tcp_fin as i32, t.udp as i32
    )
}

/// `list_daemon` (master first, then backup, as the kernel dumps them).
pub fn daemons(ds: &[Daemon]) -> String {
    let mut out = String::new();
    for want in [DaemonState::Master, DaemonState::Backup] {
        for d in ds.iter().filter(|d| d.state == want) {
            let kind = if want == DaemonState::Master {
                "master"
            } else {
                "backup"
            };
            let _ = write!(
                out,
                "{kind} sync daemon (mcast={}, syncid={}",
                d.mcast_ifn, d.syncid as i32
            );
            if d.sync_maxlen != 0 {
                let _ = write!(out, ", maxlen={}", d.sync_maxlen);
            }
            if let Some(g) = d.mcast_group {
                let _ = write!(out, ", group={g}");
            } else if let Some(g) = d.mcast_group6 {
                let _ = write!(out, ", group={g}");
            }
            if d.mcast_port != 0 {
                let _ = write!(out, ", port={}", d.mcast_port);
            }
            if d.mcast_ttl != 0 {
                let _ = write!(out, ", ttl={}", d.mcast_ttl);
            }
            out.push_str(")\n");
        }
    }
    out
}

/// The header of `list_conn`.
pub fn conn_header(format: u32) -> String {
    let mut out = String::from("IPVS connection entries\n");
    if format & fmt::PERSISTENTCONN != 0 {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} pe_data",
            "state", "source", "virtual", "destination", "pe name"
        );
    } else {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} destination",
            "state", "source", "virtual"
        );
    }
    out
}

fn parse_proc_addr(s: &str) -> Option<IpAddr> {
    if let Ok(a) = s.parse::<std::net::Ipv6Addr>() {
        return Some(IpAddr::V6(a));
    }
    if let Ok(a) = s.parse::<std::net::Ipv4Addr>() {
        return Some(IpAddr::V4(a));
    }
    // strtoul(.., 16): leading hex digits, 0 if none.
    let hex: String = s.chars().take_while(char::is_ascii_hexdigit).collect();
    Some(IpAddr::V4(std::net::Ipv4Addr::from(
        u32::from_str_radix(&hex, 16).unwrap_or(0),
    )))
}

/// `print_conn` for one line of `/proc/net/ip_vs_conn`; `None` where ipvsadm would print nothing.
pub fn conn_line(line: &str, format: u32) -> Option<String> {
    let t: Vec<&str> = line.split_whitespace().collect();
    if t.len() < 9 {
        return None;
    }
    let proto = match t[0] {
        "TCP" => Protocol::Tcp,
        "UDP" => Protocol::Udp,
        "SCTP" => Protocol::Sctp,
        _ => Protocol::Other(0),
    };
    let hexport = |s: &str| u16::from_str_radix(s, 16).unwrap_or(0);
    let (caddr, vaddr) = match t[1].parse::<std::net::Ipv6Addr>() {
        Ok(c) => (
            IpAddr::V6(c),
            IpAddr::V6(t[3].parse().unwrap_or(std::net::Ipv6Addr::UNSPECIFIED)),
        ),
        Err(_) => (parse_proc_addr(t[1])?, parse_proc_addr(t[3])?),
    };
    let daddr = parse_proc_addr(t[5])?;
    let numeric = format & fmt::NUMERIC != 0;
    let cname = addrport_to_anyname(&caddr, hexport(t[2]), proto, numeric);
    let vname = addrport_to_anyname(&vaddr, hexport(t[4]), proto, numeric);
    let dname = addrport_to_anyname(&daddr, hexport(t[6]), proto, numeric);
    let expires: i64 = t[8].parse().unwrap_or(0);
    let expire = format!("{:02}:{:02}", expires / 60, expires % 60);
    let state = t[7];
    Some(if format & fmt::PERSISTENTCONN != 0 && t.len() >= 11 {
        format!(
            "{:<3} {expire:<6} {state:<11} {cname:<18} {vname:<18} {dname:<16} {:<18} {}\n",
            t[0], t[9], t[10]
        )
    } else {
        format!(
            "{:<3} {expire:<6} {state:<11} {cname:<18} {vname:<18} {dname}\n",
            t[0]
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn largenum_matches_printf() {
        let mut s = String::new();
        largenum(&mut s, 60, 0);
        largenum(&mut s, 123_456_789, 0);
        largenum(&mut s, 123_456_789, fmt::EXACT);
        largenum(&mut s, 5_000_000_000, 0);
        assert_eq!(s, "       60  123456K 123456789    5000M");
    }

    #[test]
    fn list_and_rule_lines_match_ipvsadm() {
        // Output of Debian's ipvsadm 1.31 for the same table, captured in the VM (`ipvsadm -L -n`, `-S -n`).
        let key = ServiceKey::Inet {
            protocol: Protocol::Tcp,
            addr: "1.2.3.4".parse().unwrap(),
            port: 80,
        };
        let mut s = Service::new(key);
        s.flags = ServiceFlags::HASHED;
        let mut d = Destination::new("1.1.1.1".parse().unwrap(), 80);
        d.fwd = FwdMethod::Route;
        let mut out = String::new();
        title(&mut out, fmt::NUMERIC);
        service_entry(&mut out, &s, std::slice::from_ref(&d), fmt::NUMERIC);
        assert_eq!(
            out,
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
             TCP  1.2.3.4:80 wlc\n  -> 1.1.1.1:80                   Route   1      0          0         \n"
        );
        let mut out = String::new();
        service_entry(&mut out, &s, &[d], fmt::NUMERIC | fmt::RULE);
        assert_eq!(
            out,
            "-A -t 1.2.3.4:80 -s wlc\n-a -t 1.2.3.4:80 -r 1.1.1.1:80 -g -w 1\n"
        );
        let mut u = Service::new(ServiceKey::Inet {
            protocol: Protocol::Udp,
            addr: "1.2.3.7".parse().unwrap(),
            port: 80,
        });
        u.flags = ServiceFlags::PERSISTENT | ServiceFlags::ONEPACKET;
        u.timeout = 100;
        u.netmask = 0xffff_0000;
        let mut out = String::new();
        service_entry(&mut out, &u, &[], fmt::NUMERIC | fmt::RULE);
        assert_eq!(out, "-A -u 1.2.3.7:80 -s wlc -p 100 -M 255.255.0.0 -o\n");
    }

    /// A deliberate difference: libipvs 1.31 reads a destination's IPVS_DEST_ATTR_STATS64 nest with its
    /// 32-bit parser, so Debian's ipvsadm prints the low 32 bits of the connection, packet and rate counters
    /// (here 5000000005 → 705032709) while the byte counters stay 64-bit. We print the kernel's values.
    #[test]
    fn destination_stats64_are_printed_in_full() {
        let key = ServiceKey::Inet {
            protocol: Protocol::Tcp,
            addr: "1.2.3.4".parse().unwrap(),
            port: 80,
        };
        let s = Service::new(key);
        let mut d = Destination::new("1.1.1.1".parse().unwrap(), 80);
        d.fwd = FwdMethod::Masq;
        let big = 5_000_000_005u64;
        let mut s64 = Stats::default();
        [
            s64.conns,
            s64.inpkts,
            s64.outpkts,
            s64.inbytes,
            s64.outbytes,
            s64.cps,
            s64.inpps,
            s64.outpps,
            s64.inbps,
            s64.outbps,
        ] = std::array::from_fn(|i| big + i as u64);
        d.stats64 = Some(s64);
        let mut s32 = Stats::default();
        s32.conns = big & 0xffff_ffff;
        d.stats = Some(s32);
        let mut out = String::new();
        service_entry(
            &mut out,
            &s,
            std::slice::from_ref(&d),
            fmt::NUMERIC | fmt::STATS | fmt::EXACT,
        );
        let line = out.lines().nth(1).unwrap();
        assert_eq!(
            line,
            "  -> 1.1.1.1:80                   5000000005 5000000006 5000000007 5000000008 5000000009"
        );
        let mut out = String::new();
        service_entry(&mut out, &s, &[d], fmt::NUMERIC | fmt::RATE | fmt::EXACT);
        assert_eq!(
            out.lines().nth(1).unwrap(),
            "  -> 1.1.1.1:80                   5000000010 5000000011 5000000012 5000000013 5000000014"
        );
    }

    #[test]
    fn conn_lines_match_ipvsadm() {
        let line = "TCP 0A0000FE 80BC 0A0000FE 0050 0A000002 0050 CLOSE             9\n";
        assert_eq!(
            conn_line(line, fmt::NUMERIC).unwrap(),
            "TCP 00:09  CLOSE       10.0.0.254:32956   10.0.0.254:80      10.0.0.2:80\n"
        );
    }

    #[test]
    fn msort_is_glibc_order_even_for_wrapping_comparisons() {
        let mut v = vec![0xc800_0001u32, 0x0a00_0001, 0x0b00_0000, 0x0100_0000];
        glibc_msort(&mut v, &|a: &u32, b: &u32| a.wrapping_sub(*b) as i32);
        // 0xc8000001 - 0x0a000001 wraps to a negative int, so 200.0.0.1 sorts before 10.0.0.1 and 1.0.0.0.
        assert_eq!(v, vec![0xc800_0001, 0x0100_0000, 0x0a00_0001, 0x0b00_0000]);
    }
}
