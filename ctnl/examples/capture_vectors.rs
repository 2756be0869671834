//! Records the unit vectors of `tests/vectors.rs`: creates entries with the real `conntrack` tool, dumps the
//! table with a raw netlink request and prints every message's nfnetlink payload as hex.
//!
//! Run inside a scratch namespace (it writes sysctls and entries there):
//!
//! ```text
//! ip netns add vec && ip netns exec vec cargo run -p ctnl --example capture_vectors; ip netns del vec
//! ```
//! The commands it runs are printed with each vector.

use ctnl::CtSocket;
use ctnl::wire::{Msgs, NLMSG_DONE, finish_msg, start_msg};
use std::process::Command;

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
    let mut s = CtSocket::open()?;
    let seq = s.next_seq();
    let mut req = Vec::new();
    // IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, AF_UNSPEC
    let st = start_msg(&mut req, 1, 1, 0x301, seq, 0, 0);
    finish_msg(&mut req, st);
    s.send(&req)?;
    let mut n = 0;
    'dump: loop {
        s.recv()?;
        for m in Msgs::new(s.received()) {
            let m = m?;
            if m.kind == NLMSG_DONE {
                break 'dump;
            }
            let hex: String = m.payload.iter().map(|b| format!("{b:02x}")).collect();
            println!("// message {n}, type {:#06x}\n\"{hex}\",", m.kind);
            n += 1;
        }
    }
    Ok(())
}
