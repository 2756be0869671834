//! conntrackd's `Filter` (protocol, address with CIDR, TCP state): ctsyncd -> ctsyncd against
//! conntrackd -> conntrackd with the same `Filter From Userspace` clause, side by side. Half of the
//! entries exist before the daemons start (the start-up dump), half are created after (events). Both
//! senders must keep the same entries (`-i`), both receivers learn the same ones (`-e`), and after
//! everything is deleted both receivers are empty again.
//!
//! ctsyncd runs the filter in the kernel (a BPF program on its event socket): the events of filtered-out
//! entries never reach it. Its `-s runtime` counts only the matching entries' events as received and
//! none as filtered, where conntrackd (filtering in user space) receives every event and counts the
//! rest as filtered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "ctsyncd/harness.rs"]
mod harness;

use harness::{Daemon, LinkKind, Node, Opts, field, lab, ready};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const FILTER: &str = "\tFilter From Userspace {
\t\tProtocol Accept {
\t\t\tTCP
\t\t\tUDP
\t\t}
\t\tAddress Ignore {
\t\t\tIPv4_address 10.1.0.0/16
\t\t\tIPv4_address 192.168.7.7
\t\t\tIPv6_address 2001:db8:1::/48
\t\t}
\t\tState Accept {
\t\t\tESTABLISHED CLOSE_WAIT for TCP
\t\t}
\t}";

/// (conntrack -I arguments, whether the filter keeps it).
const ENTRIES: &[(&str, bool)] = &[
    (
        "-p tcp -s 192.168.1.10 -d 192.168.1.20 --sport 40000 --dport 80 --state ESTABLISHED -t 300",
        true,
    ),
    (
        "-p tcp -s 192.168.1.10 -d 192.168.1.21 --sport 40001 --dport 80 --state SYN_SENT -t 300",
        false,
    ),
    (
        "-p udp -s 192.168.1.10 -d 192.168.1.53 --sport 5353 --dport 53 -t 60",
        true,
    ),
    (
        "-p icmp -s 192.168.1.10 -d 192.168.1.1 --icmp-type 8 --icmp-code 0 --icmp-id 7 -t 30",
        false,
    ),
    (
        "-p udp -s 10.1.2.3 -d 192.168.1.53 --sport 5000 --dport 53 -t 60",
        false,
    ),
    (
        "-p udp -s 192.168.1.11 -d 198.51.100.9 --sport 5001 --dport 53 -t 60 --dst-nat 10.1.9.9",
        false,
    ),
    (
        "-p udp -s 2001:db8::1 -d 2001:db8::2 --sport 1000 --dport 2000 -t 60",
        true,
    ),
    (
        "-p udp -s 2001:db8:1:5::1 -d 2001:db8::2 --sport 1001 --dport 2000 -t 60",
        false,
    ),
    (
        "-p tcp -s 192.168.7.7 -d 192.168.1.20 --sport 40002 --dport 80 --state ESTABLISHED -t 300",
        false,
    ),
    (
        "-p tcp -s 192.168.1.12 -d 192.168.1.20 --sport 40003 --dport 80 --state CLOSE_WAIT -t 300",
        true,
    ),
    (
        "-p tcp -s 192.168.1.10 -d 192.168.1.22 --sport 40004 --dport 80 --state TIME_WAIT -t 300",
        false,
    ),
    (
        "-p udp -s 192.168.1.13 -d 198.51.100.9 --sport 5002 --dport 53 -t 60 --dst-nat 192.168.2.2",
        true,
    ),
];

/// Where an entry goes: odd ones exist before the daemons start.
fn before_start(i: usize) -> bool {
    i % 2 == 1
}

#[derive(Debug)]
struct Outcome {
    internal: BTreeSet<String>,
    external: BTreeSet<String>,
    /// `events received` and `events filtered` of the sender's `-s runtime`.
    received: u64,
    filtered: u64,
    /// The receiver's external cache once the sender's table was flushed.
    left: BTreeSet<String>,
}

fn wait_until(n: &Node, flag: &str, want: usize) -> BTreeSet<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let c = n.cache(flag);
        if c.len() == want || Instant::now() > deadline {
            return c;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run(d: Daemon) -> Outcome {
    let mut o = Opts::new("FTFW", LinkKind::Udp);
    o.general = FILTER.into();
    let lab = lab("fl", &[d, d], &o);
    let (a, b) = (&lab.nodes[0], &lab.nodes[1]);
    // Entries made while nobody listens get no event extension (nf_conntrack_events 2, the default),
    // so the kernel would never report their deletion: ask for events on every entry.
    a.exec_ok("sysctl -qw net.netfilter.nf_conntrack_events=1");
    for (i, (e, _)) in ENTRIES.iter().enumerate() {
        if before_start(i) {
            a.exec_ok(&format!("conntrack -I {e} 2>/dev/null"));
        }
    }
    b.start();
    a.start();
    std::thread::sleep(Duration::from_millis(800));
    for (i, (e, _)) in ENTRIES.iter().enumerate() {
        if !before_start(i) {
            a.exec_ok(&format!("conntrack -I {e} 2>/dev/null"));
        }
    }
    let kept = ENTRIES.iter().filter(|(_, k)| *k).count();
    let internal = wait_until(a, "-i", kept);
    // The start-up dump is not announced: send it.
    a.client_ok("-B");
    let external = wait_until(b, "-e", kept);
    let rt = a.client_ok("-s runtime");
    a.exec_ok("conntrack -F 2>/dev/null");
    let after = wait_until(b, "-e", 0);
    Outcome {
        internal,
        external,
        received: field(&rt, "events received:"),
        filtered: field(&rt, "events filtered:"),
        left: after,
    }
}

#[test]
fn filter_matches_conntrackd_and_drops_in_the_kernel() {
    if !ready() {
        return;
    }
    let (ours, theirs) = std::thread::scope(|s| {
        let o = s.spawn(|| run(Daemon::Ctsyncd));
        let t = s.spawn(|| run(Daemon::Conntrackd));
        (o.join().unwrap(), t.join().unwrap())
    });
    let kept = ENTRIES.iter().filter(|(_, k)| *k).count();
    assert_eq!(theirs.internal.len(), kept, "conntrackd's -i: {theirs:#?}");
    assert_eq!(
        ours.internal, theirs.internal,
        "-i differs from conntrackd's"
    );
    assert_eq!(theirs.external.len(), kept, "{theirs:#?}");
    assert_eq!(
        ours.external, theirs.external,
        "-e differs from conntrackd's"
    );
    assert!(ours.left.is_empty(), "deletions not replicated: {ours:#?}");
    assert!(theirs.left.is_empty(), "conntrackd: {theirs:#?}");
    // The events of the entries created after the start: conntrackd sees them all and filters in user
    // space; ctsyncd sees only the kept ones (the kernel dropped the rest), then their deletions.
    let after_start: Vec<bool> = ENTRIES
        .iter()
        .enumerate()
        .filter(|(i, _)| !before_start(*i))
        .map(|(_, (_, k))| *k)
        .collect();
    let kept_after = after_start.iter().filter(|k| **k).count() as u64;
    assert!(
        theirs.received >= after_start.len() as u64 && theirs.filtered > 0,
        "conntrackd: {theirs:?}"
    );
    assert_eq!(
        (ours.received, ours.filtered),
        (kept_after, 0),
        "ctsyncd received filtered-out events: {ours:?}"
    );
}
