//! The receive path (`Packet::parse` + reading every field, `Router::check_packet`) and `Repr::emit` into a
//! buffer allocate nothing per packet: counted with a global allocator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(unsafe_code)] // the counting global allocator only

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::IpAddr;
use std::time::Instant;
use vrrp_proto::wire::{Checksum, Packet, Repr};
use vrrp_proto::{Command, Config, Router};

struct Counting;

thread_local! {
    // Per thread: the test harness's own threads allocate concurrently (output capture, timing), and those
    // allocations must not be charged to the code under test.
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn allocs() -> usize {
    ALLOCS.with(Cell::get)
}

// SAFETY: forwards every call unchanged to the system allocator; it only bumps a thread-local counter, which
// does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn receive_and_emit_do_not_allocate() {
    let src: IpAddr = "10.77.0.1".parse().unwrap();
    let dst: IpAddr = "224.0.0.18".parse().unwrap();
    let bytes = hex::decode("31147801006461480a4d0014").unwrap();
    let mode = Checksum::PseudoHeader { src, dst };
    let mut cfg = Config::new("va", 20, vec!["10.77.0.20".parse().unwrap()]);
    cfg.priority = 50;
    let mut r = Router::new(cfg, "10.77.0.2".parse().unwrap()).unwrap();
    r.handle_command(Instant::now(), Command::Startup);
    while r.poll_action().is_some() {}
    let repr = Repr::parse(&bytes, &mode).unwrap();
    let mut out = [0u8; 64];
    let before = allocs();
    let mut acc = 0u64;
    for _ in 0..1000 {
        let p = Packet::parse(std::hint::black_box(&bytes), &mode).unwrap();
        acc += u64::from(p.vrid()) + p.addresses().count() as u64;
        acc += u64::from(r.check_packet(src, dst, 255, &bytes).is_ok());
        acc += repr.emit(&mut out, &mode).unwrap() as u64;
    }
    let n = allocs() - before;
    assert_eq!(acc, 1000 * (20 + 1 + 1 + 12));
    assert_eq!(n, 0);
}
