//! FT-FW through a lossy, reordering link: on each side nft drops 10% of the sync datagrams at random
//! (`numgen random`), and the datagrams travel through a relay that drops another 10% and reorders them
//! (random 0-5 ms holds), from a seed. ctsyncd sends 1,500 new entries and 300 deletions to conntrackd
//! (and conntrackd to ctsyncd); once the stream settles, the receiver's external cache holds exactly the
//! sender's table: nothing lost. Three seeds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "ctsyncd/harness.rs"]
mod harness;

use harness::{Daemon, LinkKind, Opts, lab, load_entries, ready, start_relay};
use std::time::Duration;

fn lossy(seed: u64, sender: Daemon, receiver: Daemon) {
    let mut o = Opts::new("FTFW", LinkKind::Udp);
    o.relay = true;
    let lab = lab(&format!("ls{seed}"), &[sender, receiver], &o);
    let (a, b) = (&lab.nodes[0], &lab.nodes[1]);
    let _relay = start_relay(&lab, seed, 10);
    for n in [a, b] {
        n.exec_ok("nft add table inet lossy");
        n.exec_ok("nft add chain inet lossy in '{ type filter hook input priority -300; }'");
        n.exec_ok("nft add rule inet lossy in udp dport 3780 numgen random mod 10 0 drop");
    }
    b.start();
    a.start();
    // Let the HELLO handshake finish first: FT-FW does not repair losses while a peer says HELLO.
    std::thread::sleep(Duration::from_millis(4000));
    load_entries(a, &lab.dir, 1500, "10.200.0");
    for i in 0..300 {
        a.exec_ok(&format!(
            "conntrack -D -p udp -s 10.200.0.{} -d 10.200.0.250 --sport {} --dport 53 >/dev/null 2>&1 || true",
            i % 200 + 1,
            1000 + i
        ));
        if i % 100 == 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let want = a.cache("-i");
    assert_eq!(want.len(), 1200, "sender's table");
    // Internal lines carry the reply tuple, external ones do not: compare the original tuples.
    let orig = |l: &String| {
        l.split(" src=")
            .nth(1)
            .map(|x| x.split(" [").next().unwrap_or(x).to_string())
            .unwrap_or_default()
    };
    let want: std::collections::BTreeSet<String> = want.iter().map(orig).collect();
    let got = b.wait_external(Duration::from_secs(60), |e| e.len() == 1200);
    let got: std::collections::BTreeSet<String> = got.iter().map(orig).collect();
    let missing: Vec<_> = want.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(&want).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "seed {seed} {sender:?} -> {receiver:?}: {} missing (e.g. {missing:?}), {} extra (e.g. {extra:?})\n{}",
        want.difference(&got).count(),
        got.difference(&want).count(),
        b.client_ok("-s network")
    );
    let lost: u64 = b
        .client_ok("-s network")
        .lines()
        .find(|l| l.contains("Packets lost"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(lost > 0, "the link lost nothing: the test proves nothing");
}

#[test]
fn ftfw_survives_loss_and_reordering_three_seeds() {
    if !ready()
        || testkit::require_tool("nft").is_none()
        || testkit::require_tool("python3").is_none()
    {
        return;
    }
    std::thread::scope(|s| {
        let hs = [
            s.spawn(|| lossy(1, Daemon::Ctsyncd, Daemon::Conntrackd)),
            s.spawn(|| lossy(2, Daemon::Conntrackd, Daemon::Ctsyncd)),
            s.spawn(|| lossy(3, Daemon::Ctsyncd, Daemon::Ctsyncd)),
        ];
        for h in hs {
            h.join().unwrap();
        }
    });
}
