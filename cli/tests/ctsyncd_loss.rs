//! FT-FW through a lossy, reordering link: on each side nft drops 10% of the sync datagrams at random
//! (`numgen random`), and the datagrams travel through a relay that drops another 10% and holds each
//! for a random 0-30 ms, from a seed, so that a burst arrives shuffled. The sender makes 1,500 new
//! entries and deletes 300; once the stream settles, the receiver's external cache holds exactly the
//! sender's table: nothing lost. Three seeds, one pair each: ctsyncd -> conntrackd, conntrackd ->
//! ctsyncd, ctsyncd -> ctsyncd.
//!
//! When a ctsyncd sends, the burst starts 300 ms after the daemons, while the HELLO handshake still
//! runs (ctsyncd's reliable handshake: objects wait until the peer tracks its sequence). When conntrackd
//! sends, the burst starts once ctsyncd's own HELLO is answered: conntrackd empties its resend queue on
//! every HELLO it receives, so what it sends before cannot be repaired, whoever the receiver is.
//!
//! Long runs by hand: `cargo xtask ctsync-loss` sets `CTSYNCD_LOSS_SEEDS` (how many), `CTSYNCD_LOSS_PAIRS`
//! (`yc,cy,yy,cc`: y is ctsyncd, c conntrackd, sender first), `CTSYNCD_LOSS_ENTRIES`,
//! `CTSYNCD_LOSS_HOLD_MS`, `CTSYNCD_LOSS_START_MS` (every pair starts its burst then) and
//! `CTSYNCD_LOSS_PARALLEL`; every run prints one line, and the pairs with a ctsyncd must lose nothing
//! (conntrackd -> conntrackd is only reported).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "ctsyncd/harness.rs"]
mod harness;

use harness::{Daemon, LossRun, StartAt, lossy_run, ready};

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// The runs: the CI set, or the long run the environment asks for.
fn runs() -> Vec<LossRun> {
    let Some(seeds) = env::<u64>("CTSYNCD_LOSS_SEEDS") else {
        return vec![
            LossRun::new(1, Daemon::Ctsyncd, Daemon::Conntrackd),
            LossRun::new(2, Daemon::Conntrackd, Daemon::Ctsyncd),
            LossRun::new(3, Daemon::Ctsyncd, Daemon::Ctsyncd),
        ];
    };
    let pairs = std::env::var("CTSYNCD_LOSS_PAIRS").unwrap_or_else(|_| "yc,cy,yy,cc".into());
    let daemon = |c: char| match c {
        'y' => Daemon::Ctsyncd,
        'c' => Daemon::Conntrackd,
        _ => panic!("CTSYNCD_LOSS_PAIRS: `{c}` is neither y (ctsyncd) nor c (conntrackd)"),
    };
    let mut out = Vec::new();
    for seed in 1..=seeds {
        for p in pairs.split(',') {
            let cs: Vec<char> = p.trim().chars().collect();
            assert_eq!(cs.len(), 2, "CTSYNCD_LOSS_PAIRS: `{p}` is not a pair");
            let mut r = LossRun::new(seed, daemon(cs[0]), daemon(cs[1]));
            if let Some(n) = env("CTSYNCD_LOSS_ENTRIES") {
                r.entries = n;
                r.deletes = n / 5;
            }
            if let Some(ms) = env("CTSYNCD_LOSS_HOLD_MS") {
                r.hold_ms = ms;
            }
            if let Some(ms) = env("CTSYNCD_LOSS_START_MS") {
                r.start = StartAt::Millis(ms);
            }
            if r.sender == Daemon::Conntrackd && r.receiver == Daemon::Conntrackd {
                // Reported, not asserted: give up sooner.
                r.settle = std::time::Duration::from_secs(20);
            }
            out.push(r);
        }
    }
    out
}

#[test]
fn ftfw_survives_loss_and_reordering_three_seeds() {
    if !ready()
        || testkit::require_tool("nft").is_none()
        || testkit::require_tool("python3").is_none()
    {
        return;
    }
    let runs = runs();
    let parallel = env::<usize>("CTSYNCD_LOSS_PARALLEL").unwrap_or(3).max(1);
    let mut failures = Vec::new();
    for chunk in runs.chunks(parallel) {
        let results: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = chunk
                .iter()
                .map(|r| s.spawn(move || lossy_run(r)))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in results {
            println!("{r}");
            let peer_only =
                r.run.sender == Daemon::Conntrackd && r.run.receiver == Daemon::Conntrackd;
            if !peer_only && r.link_lost == 0 {
                failures.push(format!(
                    "{r}: the link lost nothing, the run proves nothing"
                ));
            }
            if !peer_only && (r.missing > 0 || r.extra > 0) {
                failures.push(format!("{r}\n{}", r.detail));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
