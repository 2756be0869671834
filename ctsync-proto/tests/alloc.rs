//! No allocation per message in the steady state: decoding a datagram, encoding messages and packing
//! them, and a warmed-up FT-FW exchange, counted by a global allocator wrapper.
#![allow(unsafe_code)] // a counting GlobalAlloc needs `unsafe impl`; it only forwards to System.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ctsync_proto::Session;
use ctsync_proto::session::{Ftfw, FtfwConfig};
use ctsync_proto::wire::{
    AddrPair, Body, Change, CtEntry, Flags, Message, Mode, Packer, PortPair, messages,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every method forwards to the System allocator with the caller's arguments unchanged; the only
// extra work is bumping a thread-local counter, which does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `System.alloc` with layout `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

fn entry(i: u16) -> CtEntry {
    CtEntry {
        addrs: Some(AddrPair::V4 {
            src: [10, 0, 0, 1].into(),
            dst: [10, 0, 0, 2].into(),
        }),
        l4proto: Some(6),
        ports: Some(PortPair {
            sport: i,
            dport: 80,
        }),
        status: Some(ctnl::Status::from_bits_retain(0xc)),
        tcp_state: Some(3),
        timeout: Some(300),
        mark: Some(u32::from(i)),
        ..CtEntry::default()
    }
}

#[test]
fn codec_does_not_allocate() {
    let msgs: Vec<Message> = (0..20)
        .map(|i| Message {
            flags: Flags::NONE,
            seq: u32::from(i),
            body: Body::Ct(Change::New, entry(i)),
        })
        .collect();
    let mut buf = vec![0u8; 4096];
    let before = allocs();
    let mut p = Packer::new(&mut buf);
    for m in &msgs {
        assert!(p.push(m));
    }
    let n = p.len();
    let mut count = 0;
    for m in messages(&buf[..n], Mode::Strict) {
        let m = m.unwrap();
        assert!(matches!(m.body, Body::Ct(Change::New, _)));
        count += 1;
    }
    assert_eq!(count, 20);
    assert_eq!(allocs() - before, 0, "encode + pack + decode allocated");
}

#[test]
fn warmed_up_ftfw_exchange_allocates_nothing_per_message() {
    let now = Instant::now();
    let mut a = Ftfw::new(now, FtfwConfig::default().with_window_size(10));
    let mut b = Ftfw::new(now, FtfwConfig::default().with_window_size(10));
    let mut buf = [0u8; 1472];
    let mut round = |a: &mut Ftfw, b: &mut Ftfw, mark: u32| {
        for i in 0..200 {
            let mut e = entry(i);
            e.mark = Some(mark);
            a.handle_local(now, Change::Update, e);
        }
        while let Some(n) = a.poll_transmit(now, &mut buf) {
            b.handle_datagram(now, &buf[..n]);
        }
        while let Some(n) = b.poll_transmit(now, &mut buf) {
            a.handle_datagram(now, &buf[..n]);
        }
        while b.poll_action().is_some() {}
    };
    // Warm up: caches, queues and the action queue reach their size.
    for k in 0..5 {
        round(&mut a, &mut b, k);
    }
    let before = allocs();
    for k in 5..10 {
        round(&mut a, &mut b, k);
    }
    let per_round = (allocs() - before) / 5;
    assert_eq!(b.external().len(), 200);
    // 200 updates and ~40 datagrams per round: allow a few amortised queue regrowths, never one per message.
    assert!(
        per_round < 10,
        "{per_round} allocations per round of 200 messages"
    );
}
