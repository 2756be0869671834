//! Re-captures conntrackd 1.4.7 FT-FW traffic live (two daemons in a namespace pair, entries created,
//! updated and deleted with `conntrack -I/-U/-D`, a resync request, captured with tshark) and checks that
//! every datagram decodes and re-encodes byte for byte. The commands are in tests/data/capture.sh; it
//! stops conntrackd and tshark by PID and deletes its namespaces.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ctsync_proto::wire::{Body, Change, Flags, Message, Mode, Packer, messages};

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
    let datagrams: Vec<Vec<u8>> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            (0..l.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&l[i..i + 2], 16).unwrap())
                .collect()
        })
        .collect();
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
}
