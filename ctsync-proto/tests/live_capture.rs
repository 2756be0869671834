//! Re-captures conntrackd 1.4.7 FT-FW traffic live (two daemons in a namespace pair, entries created,
//! updated and deleted with `conntrack -I/-U/-D`, a resync request, captured with tshark) and checks that
//! every datagram decodes and re-encodes byte for byte, and that the live capture says what the stored
//! one (tests/data/ftfw_capture.hex) says: the same distinct conntrack messages (type and every attribute
//! but the timeout, which counts down) and the same kinds of control messages. Sequence numbers start at
//! `time(NULL)` and timeouts tick, so those are the only differences allowed. The commands are in
//! tests/data/capture.sh; it stops conntrackd and tshark by PID and deletes its namespaces.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ctsync_proto::wire::{Body, Change, Flags, Message, Mode, Packer, messages};
use std::collections::BTreeSet;

fn hex_lines(text: &str) -> Vec<Vec<u8>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            (0..l.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&l[i..i + 2], 16).unwrap())
                .collect()
        })
        .collect()
}

/// What a capture says, without sequence numbers, timeouts and the HELLO handshake bits (which messages
/// carry them depends on timing): each distinct conntrack or expectation message (its type and
/// attributes, timeout cleared) and each distinct (type, flags) of the control messages.
fn summary(datagrams: &[Vec<u8>]) -> (BTreeSet<String>, BTreeSet<(u8, u8)>) {
    let mut data = BTreeSet::new();
    let mut other = BTreeSet::new();
    let handshake = Flags::HELLO | Flags::HELLO_BACK;
    for d in datagrams {
        for m in messages(d, Mode::Strict) {
            let m = m.unwrap();
            match m.body {
                Body::Ct(c, mut e) => {
                    e.timeout = None;
                    data.insert(format!("{c:?} {e:?}"));
                }
                Body::Exp(c, mut e) => {
                    e.timeout = None;
                    data.insert(format!("{c:?} {e:?}"));
                }
                Body::Ctl { .. } => {
                    other.insert((m.msg_type(), (m.flags - handshake).bits()));
                }
            }
        }
    }
    (data, other)
}

#[test]
fn live_conntrackd_capture_roundtrips() {
    let Some(_ns) = testkit::netns() else { return };
    for tool in ["conntrackd", "conntrack", "tshark", "ip"] {
        if testkit::require_tool(tool).is_none() {
            return;
        }
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/capture.sh");
    let out = std::env::temp_dir().join(format!("ctsync-live-{}.hex", std::process::id()));
    let started = std::time::Instant::now();
    let st = std::process::Command::new("sh")
        .arg(&script)
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "capture.sh failed: {st}");
    assert!(started.elapsed().as_secs() < 30);
    let text = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    let datagrams = hex_lines(&text);
    assert!(
        datagrams.len() >= 15,
        "only {} datagrams captured",
        datagrams.len()
    );
    let mut msgs = Vec::new();
    for d in &datagrams {
        let ms: Vec<Message> = messages(d, Mode::Strict).map(|m| m.unwrap()).collect();
        let mut buf = vec![0u8; d.len()];
        let mut p = Packer::new(&mut buf);
        for m in &ms {
            assert!(p.push(m));
        }
        assert_eq!(p.len(), d.len());
        assert_eq!(&buf, d);
        msgs.extend(ms);
    }
    let cts: Vec<_> = msgs
        .iter()
        .filter_map(|m| match m.body {
            Body::Ct(c, e) => Some((c, e)),
            _ => None,
        })
        .collect();
    for c in [Change::New, Change::Update, Change::Delete] {
        assert!(cts.iter().any(|(k, _)| *k == c));
    }
    assert!(cts.iter().any(|(_, e)| e.zone == Some(5)));
    assert!(cts.iter().any(|(_, e)| e.snat_port == Some(61000)));
    assert!(cts.iter().any(|(_, e)| e.icmp_id == Some(4321)));
    assert!(msgs.iter().any(|m| m.flags.contains(Flags::ACK)));
    assert!(msgs.iter().any(|m| m.flags.contains(Flags::RESYNC)));
    // The live capture says what the stored one says.
    let stored = hex_lines(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ftfw_capture.hex"),
        )
        .unwrap(),
    );
    let (live_data, live_ctl) = summary(&datagrams);
    let (stored_data, stored_ctl) = summary(&stored);
    assert_eq!(
        live_data
            .symmetric_difference(&stored_data)
            .collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "conntrack messages differ from the stored capture"
    );
    assert_eq!(
        live_ctl, stored_ctl,
        "control messages differ from the stored capture"
    );
}
