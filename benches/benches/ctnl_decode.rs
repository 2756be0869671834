//! Micro-bench of `ctnl`'s entry decoder on one real kernel message, no root needed:
//! `cargo bench -p benches --bench ctnl_decode`.
//!
//! The table bench (`ctnl_table`) shows the typed dump's user-space share; this isolates it so decoder
//! changes can be measured quickly. At 200,000 entries, every 100 ns per entry is 20 ms of dump time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

/// The nfgenmsg + attributes of one IPCTNL_MSG_CT_NEW dump message for an unreplied IPv4 UDP entry, as
/// Linux 6.18 sent it: captured with a raw NETLINK_NETFILTER socket (IPCTNL_MSG_CT_GET, NLM_F_DUMP,
/// AF_INET) in a namespace filled by `conntrack -R` with `-I -p udp -s 10.2.123.193 -d 192.0.2.1
/// --sport 43777 --dport 123 -t 600`-style lines; the 16-byte nlmsghdr is stripped.
const UDP_ENTRY: &str = "020000003400018014000180080001000a027bc108000200c00002011c000280050001001100000006000200ab01000006000300007b0000340002801400018008000100c0000201080002000a027bc11c000280050001001100000006000200007b000006000300ab0100000800030000000008080008000000000008000c00e2a5fa6508000b000000000108000700000002081c001880080001000000000008000200000000000800030000000000";

fn decode(c: &mut Criterion) {
    let msg = hex::decode(UDP_ENTRY).unwrap();
    let e = ctnl::Entry::parse(&msg).unwrap();
    let orig = e.orig.as_ref().unwrap();
    assert_eq!(orig.src.to_string(), "10.2.123.193");
    assert_eq!(e.timeout.map(|t| t > 0), Some(true));

    let mut g = c.benchmark_group("ctnl_decode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("udp_entry", |b| {
        b.iter(|| black_box(ctnl::Entry::parse(black_box(&msg)).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
