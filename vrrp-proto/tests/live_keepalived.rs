//! Re-captures the byte vectors from a live keepalived 2.2.7 on every run and checks that they are the
//! stored ones (tests/data/capture.hex), that each decodes and re-encodes byte-identically, and that a
//! `Router` configured like keepalived.conf would have sent the same bytes.
//!
//! Layout: keepalived runs in this test thread's private namespace (`testkit::netns`) on `va`; the far end
//! `vb` sits in a named namespace `vrrp-live-PID` where tshark captures. About 9 s. keepalived and tshark
//! are stopped by PID, the named namespace deleted, whatever happens.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vrrp_proto::wire::{Checksum, Repr};

struct Cleanup {
    children: Vec<Child>,
    netns: String,
    dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &mut self.children {
            if let Ok(Some(_)) = c.try_wait() {
                continue;
            }
            // Stop by PID: SIGTERM first (keepalived hands over cleanly), then reap.
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!("kill {} 2>/dev/null", c.id()))
                .status();
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn stored() -> BTreeSet<String> {
    let path = format!("{}/tests/data/capture.hex", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// `SRC DST HEX` lines from tshark's JSON (`-T json -x`, the `vrrp_raw` field).
fn lines_from_tshark_json(json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
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
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let tag = format!("{}-{nanos}", std::process::id());
    let peer = format!("vrrp-live-{tag}");
    let dir = std::env::temp_dir().join(format!("vrrp-live-{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut guard = Cleanup {
        children: Vec::new(),
        netns: peer.clone(),
        dir: dir.clone(),
    };

    ns.sh(&format!("ip netns add {peer}"));
    ns.sh(&format!("ip netns exec {peer} ip link set lo up"));
    ns.sh(&format!(
        "ip link add va type veth peer name vb netns {peer}"
    ));
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
    let mut ts = Command::new("ip")
        .args(["netns", "exec", &peer])
        .arg(&tshark)
        .args([
            "-i",
            "vb",
            "-f",
            "ip proto 112 or ip6 proto 112",
            "-a",
            "duration:9",
            "-w",
        ])
        .arg(&pcap)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = ts.stderr.take().unwrap();
    guard.children.push(ts);
    let mut reader = BufReader::new(stderr);
    let started = Instant::now();
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 && !line.contains("Capturing on") {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "tshark did not start: {line}"
        );
        line.clear();
    }
    assert!(line.contains("Capturing on"), "tshark: {line}");
    // Keep draining tshark's stderr so it never blocks.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while reader.read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    });

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
    let ka = &mut guard.children[0];
    let deadline = Instant::now() + Duration::from_secs(5);
    while ka.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "keepalived did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    // tshark stops by itself at 9 s.
    let ts = &mut guard.children[1];
    let deadline = Instant::now() + Duration::from_secs(8);
    while ts.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "tshark did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }

    let out = Command::new(&tshark)
        .arg("-r")
        .arg(&pcap)
        .args(["-T", "json", "-x"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tshark -r: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live = lines_from_tshark_json(&String::from_utf8(out.stdout).unwrap());
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
    assert_eq!(live, stored());
}
