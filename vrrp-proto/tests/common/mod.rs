//! Helpers shared by the integration tests: reading the captured vectors in tests/data, and the setup of
//! the live keepalived tests (a veth pair from this test thread's namespace (`va`) into a named peer
//! namespace (`vb`), a scratch directory, tshark capturing on `vb`, and a guard that stops every child by
//! PID and deletes the peer namespace and the directory whatever happens).
// Each test binary uses only some of these.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The lines of tests/data/`name`, without `#` comments and blank lines.
pub fn data_lines(name: &str) -> Vec<String> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// The `SRC DST HEX` vectors of tests/data/`name` (at least one; exactly three fields each).
pub fn vectors(name: &str) -> Vec<(IpAddr, IpAddr, Vec<u8>)> {
    let v: Vec<_> = data_lines(name)
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 3, "{name}: {l}");
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                hex::decode(f[2]).unwrap(),
            )
        })
        .collect();
    assert!(!v.is_empty(), "{name} has no vector");
    v
}

/// Children to stop, the peer namespace and the scratch directory to delete, on drop.
pub struct Cleanup {
    pub children: Vec<Child>,
    pub netns: String,
    pub dir: PathBuf,
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

/// A guard for a fresh peer namespace `PREFIX-PID-NANOS` and a scratch directory of the same name
/// (created here; the namespace is added by [`veth_to_peer`]).
pub fn cleanup(prefix: &str) -> Cleanup {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let tag = format!("{}-{nanos}", std::process::id());
    let netns = format!("{prefix}-{tag}");
    let dir = std::env::temp_dir().join(&netns);
    std::fs::create_dir_all(&dir).unwrap();
    Cleanup {
        children: Vec::new(),
        netns,
        dir,
    }
}

/// Adds the named namespace `peer` (loopback up) and a veth pair: `va` here, `vb` in `peer`.
pub fn veth_to_peer(ns: &testkit::NetNs, peer: &str) {
    ns.sh(&format!("ip netns add {peer}"));
    ns.sh(&format!("ip netns exec {peer} ip link set lo up"));
    ns.sh(&format!(
        "ip link add va type veth peer name vb netns {peer}"
    ));
}

/// Starts tshark in `guard`'s peer namespace capturing `filter` on `vb` for 9 s into `pcap`, pushes it
/// onto `guard.children`, and returns once it says "Capturing on" (so no advert is missed); its stderr
/// keeps being drained so it never blocks.
pub fn start_tshark(guard: &mut Cleanup, tshark: &Path, filter: &str, pcap: &Path) {
    let mut ts = Command::new("ip")
        .args(["netns", "exec", &guard.netns])
        .arg(tshark)
        .args(["-i", "vb", "-f", filter, "-a", "duration:9", "-w"])
        .arg(pcap)
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
    std::thread::spawn(move || {
        let mut sink = String::new();
        while reader.read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    });
}

/// Waits up to `limit` for `child` to exit by itself, panicking with "`what` did not stop" after.
pub fn wait_exit(child: &mut Child, limit: Duration, what: &str) {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "{what} did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The capture `pcap` as tshark's JSON (`-T json -x`, so each packet has a `vrrp_raw` field).
pub fn tshark_json(tshark: &Path, pcap: &Path) -> serde_json::Value {
    let out = Command::new(tshark)
        .arg("-r")
        .arg(pcap)
        .args(["-T", "json", "-x"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tshark -r: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
