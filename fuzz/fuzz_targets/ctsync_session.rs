//! Fuzzes the sans-IO sessions with hostile datagrams: FT-FW, ALARM and NOTRACK must never panic,
//! whatever they receive, and what they transmit must decode. Replayed as a test by
//! `ctsync-proto/tests/fuzz_corpus.rs`.
#![no_main]

use ctsync_proto::session::{Alarm, AlarmConfig, Ftfw, FtfwConfig, Notrack, NotrackConfig, Session};
use ctsync_proto::wire::{Mode, messages};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut f = Ftfw::new(
        t0,
        FtfwConfig::default().with_resend_queue_size(8).with_window_size(3),
    );
    let mut a = Alarm::new(t0, AlarmConfig::default());
    let mut n = Notrack::new(t0, NotrackConfig::default());
    let mut buf = [0u8; 1472];
    // The first byte of each chunk is its length: several datagrams per input.
    let mut rest = data;
    let mut t = t0;
    while let Some((&len, tail)) = rest.split_first() {
        let (d, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        t += Duration::from_millis(300);
        f.handle_datagram(t, d);
        a.handle_datagram(t, d);
        n.handle_datagram(t, d);
        f.handle_timeout(t);
        a.handle_timeout(t);
        n.handle_timeout(t);
        while let Some(k) = f.poll_transmit(t, &mut buf) {
            assert!(messages(&buf[..k], Mode::Strict).all(|m| m.is_ok()));
        }
        while a.poll_transmit(t, &mut buf).is_some() {}
        while n.poll_transmit(t, &mut buf).is_some() {}
        while f.poll_action().is_some() || a.poll_action().is_some() || n.poll_action().is_some() {}
        assert!(f.resend_queue_len() <= 8);
    }
});
