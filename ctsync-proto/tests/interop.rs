//! Interoperability with a real conntrackd 1.4.7: our FT-FW session, on a UDP socket in the test's own
//! namespace, synchronises with conntrackd running in a peer namespace over a veth.
//!
//! * Our entries (UDP with a mark, TCP with SNAT address and port, ICMP echo) land in conntrackd's
//!   external cache (`conntrackd -e`), and after `conntrackd -c` in its kernel table, where the reply
//!   tuple the kernel built equals `CtEntry::reply_tuple()`.
//! * An entry created in the peer with `conntrack -I` reaches our external cache.
//!
//! conntrackd is stopped by PID and the peer namespace deleted when the test ends (also on failure).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ctsync_proto::Session;
use ctsync_proto::session::{Ftfw, FtfwConfig};
use ctsync_proto::wire::{AddrPair, Change, CtEntry, PortPair};
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Peer {
    ns: String,
    dir: std::path::PathBuf,
    daemon: Option<Child>,
}

impl Peer {
    fn sh(&self, cmd: &str) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "sh", "-c", cmd])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }
    fn ctl(&self, opt: &str) -> String {
        self.sh(&format!(
            "conntrackd -C {}/b.conf {opt}",
            self.dir.display()
        ))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            // Stop conntrackd by its PID (ip netns exec execs it, so the child's PID is conntrackd's).
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn entries() -> Vec<CtEntry> {
    let v4 = |s: [u8; 4], d: [u8; 4]| {
        Some(AddrPair::V4 {
            src: s.into(),
            dst: d.into(),
        })
    };
    vec![
        CtEntry {
            addrs: v4([192, 0, 2, 1], [192, 0, 2, 53]),
            status: Some(0x8),
            l4proto: Some(17),
            ports: Some(PortPair {
                sport: 5353,
                dport: 53,
            }),
            timeout: Some(120),
            mark: Some(77),
            ..CtEntry::default()
        },
        CtEntry {
            addrs: v4([192, 0, 2, 11], [198, 51, 100, 7]),
            // IPS_SEEN_REPLY | ASSURED | CONFIRMED | SRC_NAT | SRC_NAT_DONE (what conntrack -I sets).
            status: Some(0x19e),
            l4proto: Some(6),
            ports: Some(PortPair {
                sport: 41000,
                dport: 443,
            }),
            tcp_state: Some(3),
            timeout: Some(300),
            mark: Some(0),
            snat_ipv4: Some([203, 0, 113, 1].into()),
            snat_port: Some(61000),
            ..CtEntry::default()
        },
        CtEntry {
            addrs: v4([192, 0, 2, 1], [192, 0, 2, 254]),
            status: Some(0x8),
            l4proto: Some(1),
            icmp_type: Some(8),
            icmp_code: Some(0),
            icmp_id: Some(4321),
            timeout: Some(30),
            ..CtEntry::default()
        },
    ]
}

#[test]
fn ftfw_session_syncs_with_real_conntrackd() {
    let Some(ns) = testkit::netns() else { return };
    for tool in ["conntrackd", "conntrack", "ip"] {
        if testkit::require_tool(tool).is_none() {
            return;
        }
    }
    let name = format!("ctsyncB{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("ctsync-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut peer = Peer {
        ns: name.clone(),
        dir: dir.clone(),
        daemon: None,
    };
    ns.sh(&format!(
        "ip netns add {name} && ip -n {name} link set lo up && ip link add va type veth peer name vb netns {name} \
         && ip addr add 10.99.0.1/24 dev va && ip link set va up \
         && ip -n {name} addr add 10.99.0.2/24 dev vb && ip -n {name} link set vb up"
    ));
    let d = dir.display();
    std::fs::write(
        dir.join("b.conf"),
        format!(
            "Sync {{\n Mode FTFW {{\n ResendQueueSize 131072\n ACKWindowSize 20\n }}\n UDP {{\n IPv4_address 10.99.0.2\n \
             IPv4_Destination_Address 10.99.0.1\n Port 3780\n Interface vb\n Checksum on\n }}\n}}\n\
             General {{\n Systemd off\n HashSize 8192\n HashLimit 65535\n LogFile {d}/b.log\n Syslog off\n \
             LockFile {d}/b.lock\n UNIX {{\n Path {d}/b.ctl\n }}\n NetlinkBufferSize 2097152\n \
             NetlinkBufferSizeMaxGrowth 8388608\n}}\n"
        ),
    )
    .unwrap();
    let sock = UdpSocket::bind("10.99.0.1:3780").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    peer.daemon = Some(
        Command::new("ip")
            .args(["netns", "exec", &name, "conntrackd", "-C"])
            .arg(dir.join("b.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let t0 = Instant::now();
    while !dir.join("b.ctl").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "conntrackd did not start: {}",
            peer.sh("cat /dev/null")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut s = Ftfw::new(
        Instant::now(),
        FtfwConfig::default().with_initial_seq(7_000),
    );
    for e in entries() {
        s.handle_local(Instant::now(), Change::New, e);
    }
    let mut buf = [0u8; 2048];
    let mut injected = false;
    let want = CtEntry {
        addrs: Some(AddrPair::V4 {
            src: [172, 16, 0, 1].into(),
            dst: [172, 16, 0, 2].into(),
        }),
        l4proto: Some(17),
        ports: Some(PortPair { sport: 7, dport: 8 }),
        ..CtEntry::default()
    }
    .key()
    .unwrap();
    let mut ext = String::new();
    loop {
        let now = Instant::now();
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
        while let Some(n) = s.poll_transmit(now, &mut buf) {
            sock.send_to(&buf[..n], "10.99.0.2:3780").unwrap();
        }
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            s.handle_datagram(Instant::now(), &buf[..n]);
        }
        while s.poll_action().is_some() {}
        if !injected && s.hello_done() {
            peer.sh(
                "conntrack -I -p udp -s 172.16.0.1 -d 172.16.0.2 --sport 7 --dport 8 -t 100 -m 42",
            );
            injected = true;
        }
        let got_theirs = s.external().get(&want).is_some();
        if injected && got_theirs && t0.elapsed().as_millis() % 500 < 25 {
            ext = peer.ctl("-e");
            if [
                "src=192.0.2.1 dst=192.0.2.53",
                "src=192.0.2.11 dst=198.51.100.7",
                "type=8 code=0 id=4321",
            ]
            .iter()
            .all(|p| ext.contains(p))
            {
                break;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no sync: hello_done={} theirs={got_theirs} stats={:?}\nexternal cache of conntrackd:\n{ext}\nlog:\n{}",
            s.hello_done(),
            s.stats(),
            std::fs::read_to_string(dir.join("b.log")).unwrap_or_default()
        );
    }
    // What conntrackd received matches what we sent, mark included.
    assert!(ext.contains("mark=77"), "{ext}");
    let theirs = s.external().get(&want).unwrap().entry();
    assert_eq!(theirs.mark, Some(42));
    assert_eq!(theirs.timeout.map(|t| t <= 100), Some(true));
    // Commit conntrackd's external cache to its kernel: the kernel builds the reply tuple from the NAT
    // attributes, and it must equal ours.
    peer.ctl("-c");
    let tcp = entries()[1];
    let r = tcp.reply_tuple().unwrap();
    let ctnl_pat = match (r.addrs, r.l4) {
        (AddrPair::V4 { src, dst }, ctsync_proto::entry::L4::Ports(p)) => {
            format!("src={src} dst={dst} sport={} dport={}", p.sport, p.dport)
        }
        _ => unreachable!(),
    };
    assert_eq!(
        ctnl_pat,
        "src=198.51.100.7 dst=203.0.113.1 sport=443 dport=61000"
    );
    let mut listing = String::new();
    for _ in 0..40 {
        listing = peer.sh("conntrack -L 2>/dev/null");
        if listing.contains(&ctnl_pat) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let line = listing
        .lines()
        .find(|l| l.contains("src=192.0.2.11"))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(
        line.contains(&ctnl_pat),
        "kernel reply tuple differs: {line}"
    );
    assert!(
        listing.contains("src=192.0.2.1 dst=192.0.2.254 type=8 code=0 id=4321"),
        "{listing}"
    );
}
