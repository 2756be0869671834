//! Replays the ctsync fuzz corpora as ordinary tests, with the fuzz targets' own checks:
//!
//! * `fuzz/corpus/ctsync_decode` (`fuzz/fuzz_targets/ctsync_decode.rs`): in strict and lenient mode, every
//!   message that decodes emits exactly `buffer_len()` bytes, which decode to an equal message. The seeds
//!   captured from conntrackd 1.4.7 (`capture-*`) must decode in strict mode, every message of them.
//! * `fuzz/corpus/ctsync_session` (`fuzz/fuzz_targets/ctsync_session.rs`): FT-FW, ALARM and NOTRACK fed
//!   the inputs as datagrams never panic, what FT-FW transmits decodes, and its resend queue stays within
//!   its bound; the captured traffic makes the sessions act.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ctsync_proto::session::{
    Alarm, AlarmConfig, Ftfw, FtfwConfig, Notrack, NotrackConfig, Session,
};
use ctsync_proto::wire::{Message, Mode, messages};
use std::time::{Duration, Instant};

#[test]
fn replay_ctsync_decode_corpus() {
    let mut round_trips = 0;
    for (path, data) in testkit::fuzz_corpus("ctsync_decode") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for mode in [Mode::Strict, Mode::Lenient] {
            for m in messages(&data, mode).flatten() {
                let mut buf = vec![0u8; m.buffer_len()];
                let n = m.emit(&mut buf).unwrap();
                assert_eq!(n, buf.len(), "{name}: emit wrote {n} of buffer_len()");
                assert_eq!(Message::parse(&buf).unwrap(), m, "{name}: round trip");
                round_trips += 1;
            }
        }
        if name.starts_with("capture-") {
            let all: Vec<_> = messages(&data, Mode::Strict).collect();
            assert!(
                !all.is_empty() && all.iter().all(Result::is_ok),
                "{name}: conntrackd's own traffic must decode strictly: {all:?}"
            );
        }
    }
    assert!(
        round_trips >= 20,
        "only {round_trips} messages round-tripped"
    );
}

#[test]
fn replay_ctsync_session_corpus() {
    let mut actions = 0;
    let mut buf = [0u8; 1472];
    for (path, data) in testkit::fuzz_corpus("ctsync_session") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let t0 = Instant::now();
        let mut f = Ftfw::new(
            t0,
            FtfwConfig::default()
                .with_resend_queue_size(8)
                .with_window_size(3),
        );
        let mut a = Alarm::new(t0, AlarmConfig::default());
        let mut n = Notrack::new(t0, NotrackConfig::default());
        // The first byte of each chunk is its length: several datagrams per input.
        let mut rest = &data[..];
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
                assert!(
                    messages(&buf[..k], Mode::Strict).all(|m| m.is_ok()),
                    "{name}: FT-FW sent an undecodable datagram"
                );
            }
            while a.poll_transmit(t, &mut buf).is_some() {}
            while n.poll_transmit(t, &mut buf).is_some() {}
            while f.poll_action().is_some()
                || a.poll_action().is_some()
                || n.poll_action().is_some()
            {
                actions += 1;
            }
            assert!(
                f.resend_queue_len() <= 8,
                "{name}: resend queue over its bound"
            );
        }
    }
    assert!(actions > 0, "the captured traffic produced no action");
}
