//! An event overrun: ctsyncd is frozen (SIGSTOP) with a tiny netlink buffer while 3,000 entries are
//! created, so the kernel drops events (ENOBUFS). ctsyncd must notice, count it (`-s runtime`), resync
//! from a kernel dump after `NetlinkOverrunResync` seconds, and the peer (conntrackd) must end with every
//! entry: nothing silently diverges.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "ctsyncd/harness.rs"]
mod harness;

use harness::{Daemon, LinkKind, Opts, field, lab, load_entries, ready, sh};
use std::time::Duration;

#[test]
fn overrun_is_counted_and_resynced() {
    if !ready() {
        return;
    }
    let mut o = Opts::new("FTFW", LinkKind::Udp);
    o.general = "\tNetlinkOverrunResync 1".into();
    let lab = lab("ov", &[Daemon::Ctsyncd, Daemon::Conntrackd], &o);
    // The harness writes NetlinkBufferSize 2097152; shrink it so a frozen reader overflows.
    let conf = std::fs::read_to_string(&lab.nodes[0].conf)
        .unwrap()
        .replace("NetlinkBufferSize 2097152", "NetlinkBufferSize 65536")
        .replace(
            "NetlinkBufferSizeMaxGrowth 8388608",
            "NetlinkBufferSizeMaxGrowth 131072",
        );
    std::fs::write(&lab.nodes[0].conf, conf).unwrap();
    let (a, b) = (&lab.nodes[0], &lab.nodes[1]);
    b.start();
    a.start();
    std::thread::sleep(Duration::from_millis(2000));
    let pids = a.pids();
    assert_eq!(pids.len(), 1);
    sh(&format!("kill -STOP {}", pids[0]));
    load_entries(a, &lab.dir, 3000, "10.210.0");
    sh(&format!("kill -CONT {}", pids[0]));
    let got = b.wait_external(Duration::from_secs(30), |e| e.len() == 3000);
    let rt = a.client_ok("-s runtime");
    assert!(field(&rt, "netlink overrun:") >= 1, "{rt}");
    assert!(field(&rt, "resync with kernel table:") >= 1, "{rt}");
    assert_eq!(
        got.len(),
        3000,
        "the peer has every entry after the resync\n{rt}"
    );
    assert_eq!(a.cache("-i").len(), 3000);
    let log = harness::log_of(&lab, 0);
    assert!(log.contains("netlink event overrun"), "{log}");
}
