//! Records the unit vectors of `tests/vectors.rs`: creates entries with the real `conntrack` tool, dumps the
//! table with a raw netlink request and prints every message's nfnetlink payload as hex.
//!
//! Run inside a scratch namespace (it writes sysctls and entries there):
//!
//! ```text
//! ip netns add vec && ip netns exec vec cargo run -p ctnl --example capture_vectors; ip netns del vec
//! ```
//! The commands it runs are printed with each vector.

//! The request is framed by hand here (16-byte `nlmsghdr`, 4-byte `nfgenmsg`): ctnl keeps its framing
//! helpers private, and this tool records what the kernel sends without going through ctnl's decoder.

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};
use std::process::Command;

/// `NLMSG_DONE`.
const NLMSG_DONE: u16 = 3;

const COMMANDS: &[&str] = &[
    "conntrack -I -p udp -s 10.0.0.1 -d 10.0.0.2 --sport 1000 --dport 53 -t 60 -m 7",
    "conntrack -I -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 40000 --dport 80 --state ESTABLISHED -u SEEN_REPLY,ASSURED -t 300",
    "conntrack -I -p icmp -s 10.0.0.1 -d 10.0.0.2 --icmp-type 8 --icmp-code 0 --icmp-id 77 -t 30",
    "conntrack -I -p udp -s fd00::1 -d fd00::2 --sport 5 --dport 6 -t 60",
    "conntrack -I -p udp -s 10.0.0.3 -d 10.0.0.4 --sport 1 --dport 2 -t 60 -w 5",
    "conntrack -I -p sctp -s 10.0.0.5 -d 10.0.0.6 --sport 7 --dport 8 --state ESTABLISHED --orig-vtag 10 --reply-vtag 11 -t 60",
    "conntrack -I -p gre -s 10.0.0.7 -d 10.0.0.8 --srckey 3 --dstkey 4 -t 60",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for (k, v) in [("nf_conntrack_acct", "1"), ("nf_conntrack_timestamp", "1")] {
        std::fs::write(format!("/proc/sys/net/netfilter/{k}"), v)?;
    }
    for c in COMMANDS {
        let out = Command::new("sh").arg("-c").arg(c).output()?;
        eprintln!("{c}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let mut s = Socket::new(NETLINK_NETFILTER)?;
    s.bind(&SocketAddr::new(0, 0))?;
    let seq: u32 = 1;
    // IPCTNL_MSG_CT_GET on NFNL_SUBSYS_CTNETLINK, NLM_F_REQUEST | NLM_F_DUMP, AF_UNSPEC, version 0.
    let mut req = Vec::new();
    req.extend_from_slice(&20u32.to_ne_bytes());
    req.extend_from_slice(&((1u16 << 8) | 1).to_ne_bytes());
    req.extend_from_slice(&0x301u16.to_ne_bytes());
    req.extend_from_slice(&seq.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    req.extend_from_slice(&[0, 0, 0, 0]);
    s.send(&req, 0)?;
    let mut buf = vec![0u8; 1 << 17];
    let mut n = 0;
    'dump: loop {
        let len = s.recv(&mut &mut buf[..], 0)?;
        let mut rest = &buf[..len];
        while rest.len() >= 16 {
            let mlen = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let kind = u16::from_ne_bytes([rest[4], rest[5]]);
            if mlen < 16 || mlen > rest.len() {
                return Err("bad netlink message length".into());
            }
            if kind == NLMSG_DONE {
                break 'dump;
            }
            let hex: String = rest[16..mlen].iter().map(|b| format!("{b:02x}")).collect();
            println!("// message {n}, type {kind:#06x}\n\"{hex}\",");
            n += 1;
            rest = &rest[mlen.next_multiple_of(4).min(rest.len())..];
        }
    }
    Ok(())
}
