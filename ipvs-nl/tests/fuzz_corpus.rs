//! Replays the `ipvs_reply` fuzz corpus (`fuzz/corpus/ipvs_reply/*`) with the fuzz target's checks: every
//! datagram decodes without panicking, and every reply in it re-encodes to bytes that decode to an equal
//! reply. The seeds are kernel replies of each kind, so each must also decode to what its name says.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ipvs_nl::wire::{AF_INET, Decoded, Reply, decode_datagram};

/// The generic netlink family id the target assumes for IPVS.
const FAMILY: u16 = 0x1c;

#[test]
fn replay_ipvs_reply_corpus() {
    let mut replies = 0;
    for (path, data) in testkit::fuzz_corpus("ipvs_reply") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let decoded = decode_datagram(&data, FAMILY, AF_INET);
        for m in &decoded {
            if let Ok(Decoded::Reply { reply, .. }) = m {
                replies += 1;
                let again = Reply::parse(&reply.emit(), AF_INET);
                assert_eq!(again.as_ref(), Ok(reply), "{name}: round trip");
            }
        }
        let kind = |m: &Result<Decoded, _>| match m {
            Ok(Decoded::Reply { reply, .. }) => match reply {
                Reply::Service(_) => "service",
                Reply::Destination(_) => "destination",
                Reply::Daemon(_) => "daemon",
                Reply::Timeouts(_) => "timeouts",
                Reply::Info(_) => "info",
                _ => "other",
            },
            Ok(Decoded::Ack { errno: 0, .. }) => "ack",
            Ok(Decoded::Ack { .. }) => "error",
            Ok(Decoded::Done { .. }) => "done",
            Err(_) => "undecodable",
        };
        let kinds: Vec<&str> = decoded.iter().map(kind).collect();
        // What each seed is (the kernel's reply of that kind, or a regression input).
        let want: &[&str] = match name.as_str() {
            "daemon" => &["daemon"],
            "dest_tunnel" => &["destination"],
            "error_eexist" => &["error"],
            "info" => &["info"],
            "service_tcp" => &["service", "done"],
            "timeouts" => &["timeouts"],
            _ => continue,
        };
        assert_eq!(kinds, want, "{name}");
    }
    assert!(replies >= 5, "only {replies} replies in the corpus");
}
