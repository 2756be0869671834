//! List the conntrack table of the current network namespace, one line per entry, like `conntrack -L`.
//!
//! `cargo run -p examples --example ctnl_dump [-- --family ipv4|ipv6] [--mark N] [--count]`

use ctnl::{Conntrack, DumpFilter, Entry, Family, L4, ProtoInfo};
use std::io::Write;

fn line(e: &Entry) -> String {
    let mut s = String::new();
    let proto = e.orig.as_ref().map_or(0, |t| t.proto);
    s.push_str(&format!("{proto:<4} {:>8} ", e.timeout.unwrap_or(0)));
    if let Some(ProtoInfo::Tcp(t)) = &e.protoinfo {
        s.push_str(&format!("tcp-state={} ", t.state.unwrap_or(0)));
    }
    for t in [&e.orig, &e.reply].into_iter().flatten() {
        s.push_str(&format!("src={} dst={} ", t.src, t.dst));
        match t.l4 {
            L4::Ports { src, dst } => s.push_str(&format!("sport={src} dport={dst} ")),
            L4::Icmp { id, kind, code } | L4::Icmpv6 { id, kind, code } => {
                s.push_str(&format!("type={kind} code={code} id={id} "))
            }
            _ => {}
        }
    }
    if let Some(m) = e.mark {
        s.push_str(&format!("mark={m} "));
    }
    if let Some(z) = e.zone {
        s.push_str(&format!("zone={z} "));
    }
    if let Some(u) = e.use_count {
        s.push_str(&format!("use={u}"));
    }
    s
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut filter = DumpFilter::all();
    let mut only_count = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--family" => {
                filter.family = Some(match args.next().as_deref() {
                    Some("ipv6") => Family::Ipv6,
                    _ => Family::Ipv4,
                })
            }
            "--mark" => {
                let m: u32 = args.next().ok_or("--mark needs a value")?.parse()?;
                filter.mark = Some((m, u32::MAX));
            }
            "--count" => only_count = true,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let mut ct = Conntrack::open()?;
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let mut n = 0usize;
    for e in ct.dump(&filter)? {
        let e = e?;
        n += 1;
        if !only_count && writeln!(out, "{}", line(&e)).is_err() {
            return Ok(()); // broken pipe: stop quietly
        }
    }
    let _ = out.flush();
    eprintln!("{n} flow entries");
    Ok(())
}
