//! Replays the `ipvs_reply` fuzz corpus (`fuzz/corpus/ipvs_reply/*`) with the fuzz target's checks:
//! every message's genetlink payload decodes as a reply (and as a request) or fails with a structured
//! error, and whatever decodes emits into `buffer_len()` bytes that decode to an equal value. The seeds
//! are kernel replies of each kind, so each must also decode to what its name says.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ipvs_nl::{Op, Reply};

/// `(netlink message type, payload)` of each message of a datagram (16-byte headers, 4-byte aligned),
/// as the fuzz target splits them (the crate's own framing is private).
fn messages(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= 16 {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        let kind = u16::from_ne_bytes([buf[4], buf[5]]);
        let Some(p) = buf.get(16..len) else { break };
        out.push((kind, p));
        buf = buf.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    out
}

#[test]
fn replay_ipvs_reply_corpus() {
    let mut replies = 0;
    for (path, data) in testkit::fuzz_corpus("ipvs_reply") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut kinds = Vec::new();
        for (kind, p) in messages(&data) {
            kinds.push(match kind {
                2 if p.get(..4) == Some(&[0, 0, 0, 0]) => "ack",
                2 => "error",
                3 => "done",
                _ => match Reply::parse(p) {
                    Ok(r) => {
                        replies += 1;
                        let mut buf = vec![0u8; r.buffer_len()];
                        assert_eq!(r.emit(&mut buf), Ok(buf.len()), "{name}");
                        assert_eq!(Reply::parse(&buf).as_ref(), Ok(&r), "{name}: round trip");
                        match r {
                            Reply::Service(_) => "service",
                            Reply::Destination(_) => "destination",
                            Reply::Daemon(_) => "daemon",
                            Reply::Timeouts(_) => "timeouts",
                            Reply::Info(_) => "info",
                            _ => "other",
                        }
                    }
                    Err(_) => "undecodable",
                },
            });
            if let Ok(op) = Op::parse(p) {
                let mut buf = vec![0u8; op.buffer_len()];
                assert_eq!(op.emit(&mut buf), Ok(buf.len()), "{name}");
                let again = Op::parse(&buf).unwrap();
                let mut buf2 = vec![0u8; again.buffer_len()];
                again.emit(&mut buf2).unwrap();
                assert_eq!(buf2, buf, "{name}: request round trip");
            }
        }
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
