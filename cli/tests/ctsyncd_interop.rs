//! ctsyncd against conntrackd 1.4.7, in network namespaces: for each mode (FT-FW, ALARM, NOTRACK) and
//! link (UDP, multicast), four pairs run side by side: conntrackd -> conntrackd (the reference),
//! conntrackd -> ctsyncd, ctsyncd -> conntrackd and ctsyncd -> ctsyncd. Entries made with
//! `conntrack -I` on the sending node (TCP, UDP with a mark, ICMP, IPv6, zone, SNAT, DNAT, SCTP) must
//! appear in the receiver's external cache exactly as in the reference (`-e` lines), an entry made on the
//! receiving node must reach the sender, and after `-c` the receiver's kernel table must equal the
//! reference's (`conntrack -L`, timeouts removed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "ctsyncd/harness.rs"]
mod harness;

use harness::{Daemon, ENTRIES, LinkKind, Opts, lab, ready, start_with_entries};
use std::collections::BTreeSet;
use std::time::Duration;

const REVERSE: &[&str] = &["-p udp -s 172.16.0.1 -d 172.16.0.2 --sport 7777 --dport 8888 -t 120"];

/// A command's output with every number replaced by `N` and runs of spaces (the padding of right-aligned
/// numbers) shortened to one: the layout (lines, tabs) and the labels stay.
fn skeleton(text: &str) -> String {
    let mut out = String::new();
    let mut in_num = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !in_num {
                out.push('N');
            }
            in_num = true;
        } else {
            in_num = false;
            if !(c == ' ' && out.ends_with(' ')) {
                out.push(c);
            }
        }
    }
    out
}

/// The statistics commands compared with conntrackd: exit status, layout and labels.
const STATS: &[&str] = &[
    "-s",
    "-s ct",
    "-s network",
    "-s cache",
    "-s runtime",
    "-s link",
    "-s expect",
];

#[derive(Debug)]
struct Outcome {
    stats: Vec<(i32, String)>,
    internal: BTreeSet<String>,
    external: BTreeSet<String>,
    reverse: BTreeSet<String>,
    committed: BTreeSet<String>,
}

fn pair(sender: Daemon, receiver: Daemon, o: &Opts) -> Outcome {
    let tag = match (sender, receiver) {
        (Daemon::Conntrackd, Daemon::Conntrackd) => "cc",
        (Daemon::Conntrackd, Daemon::Ctsyncd) => "cy",
        (Daemon::Ctsyncd, Daemon::Conntrackd) => "yc",
        (Daemon::Ctsyncd, Daemon::Ctsyncd) => "yy",
    };
    let lab = lab(&format!("ia{tag}"), &[sender, receiver], o);
    let (a, b) = (&lab.nodes[0], &lab.nodes[1]);
    start_with_entries(&lab, REVERSE);
    let external = b.wait_external(Duration::from_secs(15), |e| e.len() >= ENTRIES.len());
    let reverse = a.wait_external(Duration::from_secs(10), |e| e.len() >= REVERSE.len());
    let internal = a.cache("-i");
    let stats = STATS
        .iter()
        .map(|c| {
            let o = b.client(c);
            (
                o.status.code().unwrap_or(-1),
                skeleton(&String::from_utf8_lossy(&o.stdout)),
            )
        })
        .collect();
    // Fail-over on the receiver: commit the external cache.
    b.client_ok("-c");
    let mut committed = b.table();
    // The receiver's own entry is there too; keep only the committed ones.
    committed.retain(|l| !l.contains("src=172.16.0.1"));
    assert!(
        external.len() == ENTRIES.len(),
        "{sender:?} -> {receiver:?}: {} of {} entries arrived: {external:#?}\nlogs:\n{}\n{}",
        external.len(),
        ENTRIES.len(),
        harness::log_of(&lab, 0),
        harness::log_of(&lab, 1)
    );
    Outcome {
        stats,
        internal,
        external,
        reverse,
        committed,
    }
}

fn interop(mode: &'static str, link: LinkKind) {
    if !ready() {
        return;
    }
    let o = Opts::new(mode, link);
    let combos = [
        (Daemon::Conntrackd, Daemon::Conntrackd),
        (Daemon::Conntrackd, Daemon::Ctsyncd),
        (Daemon::Ctsyncd, Daemon::Conntrackd),
        (Daemon::Ctsyncd, Daemon::Ctsyncd),
    ];
    let outcomes: Vec<Outcome> = std::thread::scope(|s| {
        let hs: Vec<_> = combos
            .iter()
            .map(|(a, b)| {
                let o = &o;
                s.spawn(move || pair(*a, *b, o))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let reference = &outcomes[0];
    assert_eq!(reference.committed.len(), ENTRIES.len(), "{reference:#?}");
    for (c, out) in combos.iter().zip(&outcomes).skip(1) {
        for (i, cmd) in STATS.iter().enumerate() {
            assert_eq!(
                out.stats[i], reference.stats[i],
                "{mode} {link:?} {c:?}: `{cmd}` differs from conntrackd's (status, layout)"
            );
        }
        assert_eq!(
            out.internal, reference.internal,
            "{mode} {link:?} {c:?}: internal cache (-i) differs from conntrackd's"
        );
        assert_eq!(
            out.external, reference.external,
            "{mode} {link:?} {c:?}: external cache differs from conntrackd's"
        );
        assert_eq!(
            out.reverse, reference.reverse,
            "{mode} {link:?} {c:?}: the reverse direction differs"
        );
        assert_eq!(
            out.committed, reference.committed,
            "{mode} {link:?} {c:?}: committed table differs from conntrackd's"
        );
    }
}

#[test]
fn ftfw_udp() {
    interop("FTFW", LinkKind::Udp);
}

#[test]
fn ftfw_multicast() {
    interop("FTFW", LinkKind::Multicast);
}

#[test]
fn alarm_udp() {
    interop("ALARM", LinkKind::Udp);
}

#[test]
fn alarm_multicast() {
    interop("ALARM", LinkKind::Multicast);
}

#[test]
fn notrack_udp() {
    interop("NOTRACK", LinkKind::Udp);
}

#[test]
fn notrack_multicast() {
    interop("NOTRACK", LinkKind::Multicast);
}
