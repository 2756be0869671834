//! Replays the `ipvs_reply` fuzz corpus (`fuzz/corpus/ipvs_reply/*`) through the public API with the fuzz
//! target's checks: every genetlink payload that decodes as a reply emits into exactly `buffer_len()` bytes
//! that decode to an equal reply. The seeds are kernel replies of each kind, so each must also decode to what
//! its name says. (ipvs-nl keeps its netlink framing private, so the 16-byte headers are split here, as the
//! fuzz target does.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ipvs_nl::Reply;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

/// `(netlink message type, payload after the 16-byte header)` of each message of a datagram.
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
        for (kind, payload) in messages(&data) {
            let k = match kind {
                NLMSG_ERROR => {
                    let errno = payload
                        .get(..4)
                        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                    if errno == Some(0) { "ack" } else { "error" }
                }
                NLMSG_DONE => "done",
                _ => match Reply::parse(payload) {
                    Ok(reply) => {
                        replies += 1;
                        let mut buf = vec![0u8; reply.buffer_len()];
                        assert_eq!(reply.emit(&mut buf), Ok(buf.len()), "{name}: emit");
                        assert_eq!(
                            Reply::parse(&buf).as_ref(),
                            Ok(&reply),
                            "{name}: round trip"
                        );
                        match reply {
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
            };
            kinds.push(k);
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
