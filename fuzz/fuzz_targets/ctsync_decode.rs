//! Fuzzes the conntrackd sync decoder: any datagram must decode without panicking, and every message that
//! decodes must re-encode, into exactly `buffer_len()` bytes, to something that decodes to the same message.
//! Replayed as a test by `ctsync-proto/tests/fuzz_corpus.rs`.
#![no_main]

use ctsync_proto::wire::{Message, Mode, messages};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for mode in [Mode::Strict, Mode::Lenient] {
        for m in messages(data, mode).flatten() {
            let mut buf = vec![0u8; m.buffer_len()];
            let n = m.emit(&mut buf).expect("buffer_len bytes are enough");
            assert_eq!(n, buf.len());
            let back = Message::parse(&buf).expect("an emitted message parses");
            assert_eq!(back, m);
        }
    }
});
