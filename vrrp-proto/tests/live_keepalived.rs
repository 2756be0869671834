//! Re-captures the byte vectors from a live keepalived 2.2.7 on every run and checks that they are the
//! stored ones (tests/data/capture.hex), that each decodes and re-encodes byte-identically, and that a
//! `Router` configured like keepalived.conf would have sent the same bytes.
//!
//! Layout: keepalived runs in this test thread's private namespace (`testkit::netns`) on `va`; the far end
//! `vb` sits in a named namespace `vrrp-live-PID` where tshark captures. About 9 s. keepalived and tshark
//! are stopped by PID, the named namespace deleted, whatever happens.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::Duration;
use vrrp_proto::wire::{Checksum, Repr};

/// `SRC DST HEX` lines from tshark's JSON (`-T json -x`, the `vrrp_raw` field).
fn lines_from_tshark_json(v: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for pkt in v.as_array().unwrap() {
        let layers = &pkt["_source"]["layers"];
        let (ip, s, d, ttl) = if layers.get("ip").is_some() {
            (&layers["ip"], "ip.src", "ip.dst", "ip.ttl")
        } else {
            (&layers["ipv6"], "ipv6.src", "ipv6.dst", "ipv6.hlim")
        };
        assert_eq!(ip[ttl].as_str(), Some("255"), "TTL / hop limit must be 255");
        let hex = layers["vrrp_raw"][0].as_str().unwrap();
        out.push(format!(
            "{} {} {hex}",
            ip[s].as_str().unwrap(),
            ip[d].as_str().unwrap()
        ));
    }
    out
}

#[test]
fn live_keepalived_matches_stored_vectors() {
    let Some(ns) = testkit::netns() else { return };
    let (Some(keepalived), Some(tshark)) = (
        testkit::require_tool("keepalived"),
        testkit::require_tool("tshark"),
    ) else {
        return;
    };
    let mut guard = common::cleanup("vrrp-live");
    let (peer, dir) = (guard.netns.clone(), guard.dir.clone());
    common::veth_to_peer(&ns, &peer);
    ns.sh("ip link set va address aa:c1:ab:00:00:01");
    ns.sh(&format!(
        "ip -n {peer} link set vb address aa:c1:ab:00:00:02"
    ));
    // No DAD: the link-local addresses (keepalived's IPv6 source) are usable at once.
    ns.sysctl("net/ipv6/conf/va/accept_dad", "0");
    ns.sh(&format!(
        "ip netns exec {peer} sh -c 'echo 0 > /proc/sys/net/ipv6/conf/vb/accept_dad'"
    ));
    ns.sh("ip addr add 10.77.0.1/24 dev va && ip addr add fd00:77::1/64 dev va nodad && ip link set va up");
    ns.sh(&format!(
        "ip -n {peer} addr add 10.77.0.2/24 dev vb && ip -n {peer} addr add fd00:77::2/64 dev vb nodad && ip -n {peer} link set vb up"
    ));

    // tshark first; wait for its "Capturing on" line so no advert is missed.
    let pcap = dir.join("cap.pcapng");
    common::start_tshark(&mut guard, &tshark, "ip proto 112 or ip6 proto 112", &pcap);

    let conf = format!("{}/tests/data/keepalived.conf", env!("CARGO_MANIFEST_DIR"));
    let ka = Command::new(&keepalived)
        .args(["-f", &conf, "-n", "-l", "-D", "-p"])
        .arg(dir.join("ka.pid"))
        .arg("-r")
        .arg(dir.join("ka-vrrp.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ka_pid = ka.id();
    guard.children.insert(0, ka);
    // Every instance takes over after about 3.6 s, then advertises once a second.
    std::thread::sleep(Duration::from_millis(6000));
    ns.sh(&format!("kill -TERM {ka_pid}"));
    common::wait_exit(&mut guard.children[0], Duration::from_secs(5), "keepalived");
    // tshark stops by itself at 9 s.
    common::wait_exit(&mut guard.children[1], Duration::from_secs(8), "tshark");

    let live = lines_from_tshark_json(&common::tshark_json(&tshark, &pcap));
    assert!(
        live.len() >= 8,
        "only {} adverts captured: {live:?}",
        live.len()
    );

    // Every live advert decodes and re-encodes byte-identically...
    for l in &live {
        let f: Vec<&str> = l.split(' ').collect();
        let (src, dst): (IpAddr, IpAddr) = (f[0].parse().unwrap(), f[1].parse().unwrap());
        let bytes = hex::decode(f[2]).unwrap();
        let mode = if bytes[0] >> 4 == 2 {
            Checksum::MessageOnly
        } else {
            Checksum::PseudoHeader { src, dst }
        };
        let repr = Repr::parse(&bytes, &mode).unwrap_or_else(|e| panic!("{l}: {e}"));
        assert_eq!(repr.to_bytes(&mode).unwrap(), bytes, "{l}");
    }
    // ...and the distinct adverts are exactly the stored vectors (4 instances, running and priority 0).
    let live: BTreeSet<String> = live.into_iter().collect();
    let stored: BTreeSet<String> = common::data_lines("capture.hex").into_iter().collect();
    assert_eq!(live, stored);
}
