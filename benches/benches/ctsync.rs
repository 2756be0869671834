//! ctsync-proto codec and FT-FW session throughput.
//!
//! `cargo bench -p benches --bench ctsync`
//!
//! Each group measures a batch of 1000 conntrack entries shaped like what conntrackd 1.4.7 sends for an
//! established TCP flow with `TCPWindowTracking on` (addresses, status, protocol, ports, TCP state, both
//! window scales, timeout, mark, synproxy: 116 bytes), and a raw floor in the same run: copying the same
//! bytes with `copy_from_slice`. Nothing allocates per message (tests/alloc.rs in ctsync-proto proves it).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ctsync_proto::session::{Ftfw, FtfwConfig};
use ctsync_proto::wire::{
    AddrPair, Body, Change, CtEntry, Flags, Message, Mode, PortPair, Synproxy, messages,
};
use std::hint::black_box;
use std::time::Instant;

const N: usize = 1000;

fn entry(i: usize) -> CtEntry {
    CtEntry {
        addrs: Some(AddrPair::V4 {
            src: [10, 0, (i >> 8) as u8, i as u8].into(),
            dst: [192, 168, 1, 20].into(),
        }),
        status: Some(0xc),
        l4proto: Some(6),
        ports: Some(PortPair {
            sport: 40_000u16.wrapping_add(i as u16),
            dport: 80,
        }),
        tcp_state: Some(3),
        tcp_wscale_orig: Some(7),
        tcp_wscale_repl: Some(7),
        timeout: Some(300),
        mark: Some(0),
        synproxy: Some(Synproxy::default()),
        ..CtEntry::default()
    }
}

fn msgs() -> Vec<Message> {
    (0..N)
        .map(|i| Message {
            flags: Flags::NONE,
            seq: i as u32,
            body: Body::Ct(Change::Update, entry(i)),
        })
        .collect()
}

fn encoded(ms: &[Message]) -> Vec<u8> {
    let mut out = vec![0u8; ms.iter().map(Message::buffer_len).sum()];
    let mut off = 0;
    for m in ms {
        off += m.emit(&mut out[off..]).unwrap_or(0);
    }
    out
}

fn codec(c: &mut Criterion) {
    let ms = msgs();
    let bytes = encoded(&ms);
    let mut g = c.benchmark_group("ctsync");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("decode_1000_entries", |b| {
        b.iter(|| {
            let mut marks = 0u64;
            for m in messages(black_box(&bytes), Mode::Strict).flatten() {
                if let Body::Ct(_, e) = &m.body {
                    marks += u64::from(e.timeout.unwrap_or(0));
                }
            }
            black_box(marks)
        })
    });
    let mut out = vec![0u8; bytes.len()];
    g.bench_function("encode_1000_entries", |b| {
        b.iter(|| {
            let mut off = 0;
            for m in black_box(&ms) {
                off += m.emit(&mut out[off..]).unwrap_or(0);
            }
            black_box(off)
        })
    });
    g.bench_function("raw_floor_copy_1000_entries", |b| {
        b.iter(|| {
            // The same bytes copied message by message: what any codec must at least do.
            let mut off = 0;
            for m in black_box(&ms) {
                let n = m.buffer_len();
                out[off..off + n].copy_from_slice(&bytes[off..off + n]);
                off += n;
            }
            black_box(off)
        })
    });
    g.finish();
}

fn session(c: &mut Criterion) {
    let mut g = c.benchmark_group("ctsync_ftfw");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(30);
    let entries: Vec<CtEntry> = (0..N).map(entry).collect();
    g.bench_function("replicate_1000_entries_a_to_b", |b| {
        b.iter(|| {
            let now = Instant::now();
            let mut a = Ftfw::new(now, FtfwConfig::default());
            let mut bb = Ftfw::new(now, FtfwConfig::default());
            let mut buf = [0u8; 1472];
            for e in &entries {
                a.handle_local(now, Change::New, *e);
            }
            while let Some(n) = a.poll_transmit(now, &mut buf) {
                bb.handle_datagram(now, &buf[..n]);
            }
            while let Some(n) = bb.poll_transmit(now, &mut buf) {
                a.handle_datagram(now, &buf[..n]);
            }
            black_box(bb.external().len())
        })
    });
    g.finish();
}

criterion_group!(benches, codec, session);
criterion_main!(benches);
