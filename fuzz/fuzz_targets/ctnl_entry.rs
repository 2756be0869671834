//! Fuzzes the conntrack entry decoder (and the expectation and event decoders on the same input): any
//! input must decode or fail with a `DecodeError`, never panic; whatever decodes must emit into
//! `buffer_len()` bytes and decode back to the same value.
#![no_main]

use ctnl::{Entry, Event, Expect};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A whole netlink message, as an event socket receives it.
    let _ = Event::parse(data);
    if let Ok(e) = Entry::parse(data) {
        let mut buf = vec![0u8; e.buffer_len()];
        if e.emit(&mut buf).is_ok() {
            assert_eq!(Entry::parse(&buf).ok().as_ref(), Some(&e));
        }
    }
    // The expectation decoder shares the tuple codec and the nested-unknown overlays: same property.
    if let Ok(x) = Expect::parse(data) {
        let mut buf = vec![0u8; x.buffer_len()];
        if x.emit(&mut buf).is_ok() {
            assert_eq!(Expect::parse(&buf).ok().as_ref(), Some(&x));
        }
    }
});
