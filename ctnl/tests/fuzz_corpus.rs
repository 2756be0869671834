//! Replays the `ctnl_entry` fuzz corpus (`fuzz/corpus/ctnl_entry/*`) with the fuzz target's own checks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ctnl::{Entry, Event, Expect};

#[test]
fn replay_ctnl_entry_corpus() {
    let corpus = testkit::fuzz_corpus("ctnl_entry");
    let mut decoded = 0;
    for (path, data) in corpus {
        // The event decoder: a whole netlink message (header, nfgenmsg, attributes).
        let _ = Event::parse(&data);
        if let Ok(x) = Expect::parse(&data) {
            let mut buf = vec![0u8; x.buffer_len()];
            assert_eq!(x.emit(&mut buf), Ok(buf.len()), "{}", path.display());
            assert_eq!(Expect::parse(&buf).unwrap(), x, "{}", path.display());
        }
        if let Ok(e) = Entry::parse(&data) {
            decoded += 1;
            let mut buf = vec![0u8; e.buffer_len()];
            assert_eq!(e.emit(&mut buf), Ok(buf.len()), "{}", path.display());
            assert_eq!(Entry::parse(&buf).unwrap(), e, "{}", path.display());
            if path.ends_with("unknown_in_nests.bin") {
                // Unknown attributes at the end of every nest (tuple IP/PROTO, protoinfo TCP, counters,
                // timestamp, top level), in the kernel's order: kept and re-emitted byte for byte.
                assert!(!e.unknown.is_empty() && !e.orig.as_ref().unwrap().unknown.is_empty());
                assert_eq!(buf, data, "{}", path.display());
            }
        }
    }
    // The seeds include the kernel-recorded vectors, which must decode.
    assert!(decoded >= 8, "only {decoded} corpus files decoded");
}
