//! ALARM, NOTRACK and FT-FW control paths on a virtual clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ctsync_proto::Session;
use ctsync_proto::session::{Action, Alarm, AlarmConfig, Ftfw, FtfwConfig, Notrack, NotrackConfig};
use ctsync_proto::wire::{
    AddrPair, Body, Change, CtEntry, Flags, Message, Mode, PortPair, messages,
};
use std::time::{Duration, Instant};

fn entry(i: u16) -> CtEntry {
    CtEntry {
        addrs: Some(AddrPair::V4 {
            src: [10, 0, 0, 1].into(),
            dst: [10, 0, 0, 2].into(),
        }),
        l4proto: Some(17),
        ports: Some(PortPair {
            sport: i,
            dport: 53,
        }),
        status: Some(ctnl::Status::from_bits_retain(8)),
        timeout: Some(60),
        ..CtEntry::default()
    }
}

fn drain<F: FnMut(Instant, &mut [u8]) -> Option<usize>>(now: Instant, mut f: F) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1472];
    while let Some(n) = f(now, &mut buf) {
        out.push(buf[..n].to_vec());
    }
    out
}

fn decode(d: &[Vec<u8>]) -> Vec<Message> {
    d.iter()
        .flat_map(|d| messages(d, Mode::Strict).map(|m| m.unwrap()))
        .collect()
}

#[test]
fn alarm_refreshes_with_seeded_jitter_and_external_expires() {
    let t0 = Instant::now();
    let cfg = AlarmConfig::default()
        .with_refresh_secs(5)
        .with_cache_timeout(Duration::from_secs(20))
        .with_seed(42);
    let mut a = Alarm::new(t0, cfg);
    let mut b = Alarm::new(t0, cfg);
    for i in 0..50 {
        a.handle_local(t0, Change::New, entry(i));
    }
    let first = decode(&drain(t0, |n, buf| a.poll_transmit(n, buf)));
    assert_eq!(first.len(), 50, "each new entry is announced at once");
    // Run 30 virtual seconds: every entry is refreshed between 1.2 s and 6 s apart.
    let mut refreshes = 0;
    let mut t = t0;
    while t < t0 + Duration::from_secs(30) {
        t += Duration::from_millis(100);
        if a.poll_timeout().is_some_and(|d| d <= t) {
            a.handle_timeout(t);
        }
        for d in drain(t, |n, buf| a.poll_transmit(n, buf)) {
            refreshes += messages(&d, Mode::Strict).count();
            b.handle_datagram(t, &d);
        }
        b.handle_timeout(t);
    }
    assert!(
        (50 * 30 / 6..=50 * 30 * 10 / 12 + 50).contains(&refreshes),
        "{refreshes} refreshes"
    );
    assert_eq!(b.external().len(), 50);
    // The same seed gives the same schedule.
    let schedule = || {
        let mut x = Alarm::new(t0, cfg);
        x.handle_local(t0, Change::New, entry(1));
        drain(t0, |n, buf| x.poll_transmit(n, buf));
        let mut at = t0;
        (0..10)
            .map(|_| {
                let next = x.poll_timeout().unwrap();
                x.handle_timeout(next);
                assert_eq!(drain(next, |n, buf| x.poll_transmit(n, buf)).len(), 1);
                let gap = next - at;
                at = next;
                gap
            })
            .collect::<Vec<_>>()
    };
    let (jx, jy) = (schedule(), schedule());
    assert_eq!(jx, jy);
    assert!(
        jx.iter()
            .all(|d| *d >= Duration::from_millis(1_199) && *d < Duration::from_secs(7))
    );
    // Stop refreshing: B's external cache expires everything after CacheTimeout.
    let later = t + Duration::from_secs(21);
    b.handle_timeout(later);
    assert!(b.external().is_empty());
    let mut expired = 0;
    while let Some(act) = b.poll_action() {
        if matches!(act, Action::Expired(_)) {
            expired += 1;
        }
    }
    assert_eq!(expired, 50);
    // A delete is sent once as DEL and leaves the internal cache.
    a.handle_local(t, Change::Delete, entry(3));
    let del = decode(&drain(t, |n, buf| a.poll_transmit(n, buf)));
    assert!(matches!(
        del.last().unwrap().body,
        Body::Ct(Change::Delete, _)
    ));
    assert_eq!(a.internal().len(), 49);
}

#[test]
fn notrack_best_effort_with_resync() {
    let t0 = Instant::now();
    let mut a = Notrack::new(t0, NotrackConfig::default());
    let mut b = Notrack::new(t0, NotrackConfig::default());
    for i in 0..10 {
        a.handle_local(t0, Change::New, entry(i));
    }
    // The first datagram is lost: best effort, nothing is resent.
    let lost = drain(t0, |n, buf| a.poll_transmit(n, buf));
    assert_eq!(decode(&lost).len(), 10);
    assert!(drain(t0, |n, buf| a.poll_transmit(n, buf)).is_empty());
    assert!(b.external().is_empty());
    // B asks for a resync; A answers with a bulk send of its internal cache.
    b.request_resync(t0);
    for d in drain(t0, |n, buf| b.poll_transmit(n, buf)) {
        assert!(
            decode(std::slice::from_ref(&d))
                .iter()
                .any(|m| m.flags.contains(Flags::RESYNC))
        );
        a.handle_datagram(t0, &d);
    }
    assert_eq!(a.poll_action(), Some(Action::ResyncRequested));
    for d in drain(t0, |n, buf| a.poll_transmit(n, buf)) {
        b.handle_datagram(t0, &d);
    }
    assert_eq!(b.external().len(), 10);
    // ALIVE after a second of silence.
    let t1 = t0 + Duration::from_secs(2);
    a.handle_timeout(t1);
    let alive = decode(&drain(t1, |n, buf| a.poll_transmit(n, buf)));
    assert!(alive.iter().all(|m| m.flags == Flags::ALIVE));
}

#[test]
fn ftfw_hello_handshake_and_resync() {
    let t0 = Instant::now();
    let mut a = Ftfw::new(t0, FtfwConfig::default().with_initial_seq(100));
    let mut b = Ftfw::new(t0, FtfwConfig::default().with_initial_seq(900));
    a.handle_local(t0, Change::New, entry(1));
    let d = drain(t0, |n, buf| a.poll_transmit(n, buf));
    let m = decode(&d);
    assert_eq!(m[0].flags, Flags::HELLO, "first messages say HELLO");
    assert_eq!(m[0].seq, 100);
    for x in &d {
        b.handle_datagram(t0, x);
    }
    assert_eq!(b.external().len(), 1);
    // B's next message answers HELLO_BACK (and says its own HELLO).
    let t1 = t0 + Duration::from_secs(1);
    b.handle_timeout(t1);
    let d = drain(t1, |n, buf| b.poll_transmit(n, buf));
    let m = decode(&d);
    assert!(m[0].flags.contains(Flags::HELLO_BACK) && m[0].flags.contains(Flags::HELLO));
    assert!(
        m[0].flags.contains(Flags::ACK),
        "pending data is acknowledged on the alive timer"
    );
    assert_eq!(m[0].body, Body::Ctl { from: 100, to: 100 });
    assert_eq!(a.resend_queue_len(), 1);
    for x in &d {
        a.handle_datagram(t1, x);
    }
    assert!(a.hello_done());
    // A got a HELLO from B: the resend queue is emptied (B knows nothing of it).
    assert_eq!(a.resend_queue_len(), 0);
    // Resync: B asks, A sends its whole internal cache.
    b.request_resync(t1);
    for x in drain(t1, |n, buf| b.poll_transmit(n, buf)) {
        a.handle_datagram(t1, &x);
    }
    let bulk = decode(&drain(t1, |n, buf| a.poll_transmit(n, buf)));
    assert!(
        bulk.iter()
            .any(|m| matches!(m.body, Body::Ct(Change::New, e) if e == entry(1)))
    );
}

#[test]
fn ftfw_gap_triggers_nack_and_resend() {
    let t0 = Instant::now();
    let mut a = Ftfw::new(t0, FtfwConfig::default().with_mtu(200));
    let mut b = Ftfw::new(t0, FtfwConfig::default());
    // Finish the handshake first.
    let mut t = t0;
    while !(a.hello_done() && b.hello_done()) {
        t += Duration::from_secs(1);
        a.handle_timeout(t);
        b.handle_timeout(t);
        for x in drain(t, |n, buf| a.poll_transmit(n, buf)) {
            b.handle_datagram(t, &x);
        }
        for x in drain(t, |n, buf| b.poll_transmit(n, buf)) {
            a.handle_datagram(t, &x);
        }
        assert!(t < t0 + Duration::from_secs(10));
    }
    for i in 0..6 {
        a.handle_local(t, Change::New, entry(i));
    }
    let d = drain(t, |n, buf| a.poll_transmit(n, buf));
    assert!(
        d.len() >= 2,
        "a small MTU splits the messages over several datagrams"
    );
    // Lose the first datagram.
    for x in &d[1..] {
        b.handle_datagram(t, x);
    }
    let reply = decode(&drain(t, |n, buf| b.poll_transmit(n, buf)));
    assert!(
        reply.iter().any(|m| m.flags.contains(Flags::NACK)),
        "{reply:?}"
    );
    let mut buf = [0u8; 1472];
    let mut bytes = Vec::new();
    for m in &reply {
        let n = m.emit(&mut buf).unwrap();
        bytes.extend_from_slice(&buf[..n]);
    }
    a.handle_datagram(t, &bytes);
    for x in drain(t, |n, buf| a.poll_transmit(n, buf)) {
        b.handle_datagram(t, &x);
    }
    assert_eq!(b.external().len(), 6);
    assert!(a.stats().resent > 0 && b.stats().nacks_sent == 1);
}

#[test]
fn ftfw_bad_payload_still_counts_in_the_sequence() {
    let t0 = Instant::now();
    let mut a = Ftfw::new(t0, FtfwConfig::default());
    let mut b = Ftfw::new(t0, FtfwConfig::default());
    let mut t = t0;
    while !(a.hello_done() && b.hello_done()) {
        t += Duration::from_secs(1);
        a.handle_timeout(t);
        b.handle_timeout(t);
        for x in drain(t, |n, buf| a.poll_transmit(n, buf)) {
            b.handle_datagram(t, &x);
        }
        for x in drain(t, |n, buf| b.poll_transmit(n, buf)) {
            a.handle_datagram(t, &x);
        }
        assert!(t < t0 + Duration::from_secs(10));
    }
    for i in 0..3 {
        a.handle_local(t, Change::New, entry(i));
    }
    let mut d = drain(t, |n, buf| a.poll_transmit(n, buf));
    assert_eq!(d.len(), 1);
    // Corrupt the first attribute type of the second message (an unknown attribute: msg2ct rejects it).
    let first_len = usize::from(u16::from_be_bytes([d[0][2], d[0][3]]));
    d[0][first_len + 8 + 3] = 200;
    // One more message after it, so a miscounted sequence would show as a gap.
    a.handle_local(t, Change::New, entry(9));
    d.extend(drain(t, |n, buf| a.poll_transmit(n, buf)));
    let before = b.stats();
    for x in &d {
        b.handle_datagram(t, x);
    }
    let st = b.stats();
    assert_eq!(st.malformed - before.malformed, 1);
    assert_eq!(
        st.nacks_sent, before.nacks_sent,
        "a bad payload is not a lost message"
    );
    assert_eq!(b.external().len(), 3);
}

#[test]
fn caches_dump_flush_commit_and_stats() {
    let t0 = Instant::now();
    let mut a = Notrack::new(t0, NotrackConfig::default());
    let mut b = Notrack::new(t0, NotrackConfig::default());
    for i in 0..5 {
        a.handle_local(t0, Change::New, entry(i));
    }
    a.handle_local(t0, Change::Update, entry(1));
    a.handle_local(t0, Change::Delete, entry(4));
    assert_eq!(a.internal().stats().created, 5);
    assert_eq!(a.internal().stats().updated, 1);
    assert_eq!(a.internal().stats().deleted, 1);
    // The dead entry is kept until its DEL is sent.
    assert_eq!(a.internal().dump().count(), 5);
    assert_eq!(a.internal().live().count(), 4);
    for d in drain(t0, |n, buf| a.poll_transmit(n, buf)) {
        b.handle_datagram(t0, &d);
    }
    assert_eq!(a.internal().len(), 4, "sent DEL releases the dead entry");
    // B never saw entry 4 as live (its NEW and DEL were coalesced into one DEL on A).
    assert_eq!(b.external().len(), 4);
    let mut commit = b.external().commit_list();
    commit.sort_by_key(|e| e.ports.map(|p| p.sport));
    assert_eq!(commit, (0..4).map(entry).collect::<Vec<_>>());
    assert_eq!(b.external().stats().created, 4);
    assert_eq!(b.external_mut().flush(), 4);
    assert!(b.external().is_empty());
    assert_eq!(a.internal_mut().flush(), 4);
    // A queued reference to a flushed object is skipped.
    a.handle_local(t0, Change::New, entry(7));
    a.internal_mut().flush();
    assert!(drain(t0, |n, buf| a.poll_transmit(n, buf)).is_empty());
}

#[test]
fn alarm_refreshes_and_expires_expectations() {
    use ctsync_proto::wire::ExpEntry;
    let t0 = Instant::now();
    let cfg = AlarmConfig::default()
        .with_refresh_secs(2)
        .with_cache_timeout(Duration::from_secs(5))
        .with_seed(9);
    let (mut a, mut b) = (Alarm::new(t0, cfg), Alarm::new(t0, cfg));
    let e = entry(1);
    let x = ExpEntry {
        master_addrs: e.addrs,
        master_l4proto: Some(6),
        master_ports: Some(PortPair {
            sport: 1234,
            dport: 21,
        }),
        expect_addrs: e.addrs,
        expect_l4proto: Some(6),
        expect_ports: Some(PortPair {
            sport: 0,
            dport: 50_000,
        }),
        timeout: Some(60),
        ..ExpEntry::default()
    };
    a.handle_local_exp(t0, Change::New, x);
    let mut sent = 0;
    let mut t = t0;
    while t < t0 + Duration::from_secs(10) {
        t += Duration::from_millis(100);
        if a.poll_timeout().is_some_and(|d| d <= t) {
            a.handle_timeout(t);
        }
        for d in drain(t, |n, buf| a.poll_transmit(n, buf)) {
            sent += decode(std::slice::from_ref(&d))
                .iter()
                .filter(|m| matches!(m.body, Body::Exp(..)))
                .count();
            b.handle_datagram(t, &d);
        }
        b.handle_timeout(t);
        assert_eq!(b.external_exp().len(), 1, "refreshed before it can expire");
    }
    assert!(sent >= 4, "{sent} refreshes in 10 s with RefreshTime 2");
    // Deleted locally: one DEL, and the peer drops it.
    a.handle_local_exp(t, Change::Delete, x);
    for d in drain(t, |n, buf| a.poll_transmit(n, buf)) {
        b.handle_datagram(t, &d);
    }
    assert!(b.external_exp().is_empty());
    assert!(a.internal_exp().is_empty());
}

#[test]
fn alarm_with_an_unrepresentable_cache_timeout_never_expires() {
    // A CacheTimeout an Instant cannot hold must not panic: such entries simply never expire.
    let t0 = Instant::now();
    let mut a = Alarm::new(t0, AlarmConfig::default());
    let mut b = Alarm::new(t0, AlarmConfig::default().with_cache_timeout(Duration::MAX));
    a.handle_local(t0, Change::New, entry(1));
    for d in drain(t0, |n, buf| a.poll_transmit(n, buf)) {
        b.handle_datagram(t0, &d);
    }
    assert_eq!(b.external().len(), 1);
    assert_eq!(b.poll_timeout(), None, "no expiry deadline");
    b.handle_timeout(t0 + Duration::from_secs(10 * 365 * 86_400));
    assert_eq!(b.external().len(), 1);
}

/// One loop over `Box<dyn Session>` drives every mode: changes announced with `handle_local` reach the
/// peer's external cache, changes recorded with `record_local` are not sent, and `send_bulk` sends the
/// internal cache in FT-FW and NOTRACK (ALARM has no bulk send: its refreshes catch up instead).
#[test]
fn one_loop_drives_every_mode() {
    use ctsync_proto::{SessionConfig, SyncMode};
    let t0 = Instant::now();
    for cfg in [
        SessionConfig::Ftfw(FtfwConfig::default()),
        SessionConfig::Alarm(AlarmConfig::default().with_refresh_secs(2)),
        SessionConfig::Notrack(NotrackConfig::default()),
    ] {
        let mut a = cfg.build(t0);
        let mut b = cfg.build(t0);
        assert_eq!(a.mode(), cfg.mode());
        let pump = |a: &mut Box<dyn Session>, b: &mut Box<dyn Session>, t: Instant| {
            for _ in 0..4 {
                for d in drain(t, |n, buf| a.poll_transmit(n, buf)) {
                    b.handle_datagram(t, &d);
                }
                for d in drain(t, |n, buf| b.poll_transmit(n, buf)) {
                    a.handle_datagram(t, &d);
                }
            }
        };
        for i in 0..20 {
            a.handle_local(t0, Change::New, entry(i));
        }
        pump(&mut a, &mut b, t0);
        assert_eq!(b.external().len(), 20, "{cfg:?}");
        for i in 0..5 {
            a.handle_local(t0, Change::Delete, entry(i));
        }
        pump(&mut a, &mut b, t0);
        assert_eq!(b.external().len(), 15, "{cfg:?}");
        // Recorded, not announced.
        for i in 100..110 {
            a.record_local(t0, Change::New, entry(i));
        }
        assert!(
            drain(t0, |n, buf| a.poll_transmit(n, buf)).is_empty(),
            "{cfg:?}"
        );
        assert_eq!(a.internal().live_len(), 25, "{cfg:?}");
        a.send_bulk(t0);
        pump(&mut a, &mut b, t0);
        let expected = if cfg.mode() == SyncMode::Alarm {
            15
        } else {
            25
        };
        assert_eq!(b.external().len(), expected, "{cfg:?}");
        if cfg.mode() == SyncMode::Alarm {
            // The recorded entries are refreshed within RefreshTime + 1 s.
            let t = t0 + Duration::from_secs(4);
            a.handle_timeout(t);
            pump(&mut a, &mut b, t);
            assert_eq!(b.external().len(), 25);
        }
        // A recorded delete leaves the internal cache without a message.
        a.record_local(t0, Change::Delete, entry(100));
        assert_eq!(a.internal().live_len(), 24, "{cfg:?}");
    }
}

/// With flow control, a burst ten times the resend queue through a link that drops every third datagram
/// still arrives whole and nothing is evicted; without it (conntrackd's behaviour) the queue evicts
/// unacknowledged entries and some are lost for good.
#[test]
fn ftfw_flow_control_delays_instead_of_losing() {
    let run = |flow: bool| {
        let t0 = Instant::now();
        let cfg = FtfwConfig::default()
            .with_resend_queue_size(60)
            .with_window_size(20)
            .with_flow_control(flow);
        let (mut a, mut b) = (
            Ftfw::new(t0, cfg),
            Ftfw::new(t0, cfg.with_initial_seq(5000)),
        );
        let mut t = t0;
        let mut n = 0u32;
        let mut pump = |a: &mut Ftfw, b: &mut Ftfw, t: Instant| {
            for d in drain(t, |x, buf| a.poll_transmit(x, buf)) {
                n += 1;
                if !n.is_multiple_of(3) {
                    b.handle_datagram(t, &d);
                }
            }
            for d in drain(t, |x, buf| b.poll_transmit(x, buf)) {
                a.handle_datagram(t, &d);
            }
        };
        // Handshake first.
        for _ in 0..5 {
            t += Duration::from_secs(1);
            a.handle_timeout(t);
            b.handle_timeout(t);
            pump(&mut a, &mut b, t);
        }
        for i in 0..600 {
            a.handle_local(t, Change::New, entry(i));
        }
        for _ in 0..400 {
            t += Duration::from_millis(250);
            a.handle_timeout(t);
            b.handle_timeout(t);
            pump(&mut a, &mut b, t);
        }
        (
            b.external().len(),
            a.stats().rs_evicted,
            a.resend_queue_len(),
        )
    };
    let (got, evicted, rs) = run(true);
    assert_eq!((got, evicted), (600, 0));
    assert!(rs <= 60, "resend queue {rs} after the stream settled");
    let (got, evicted, _) = run(false);
    assert!(
        evicted > 0 && got < 600,
        "without flow control: {got} arrived, {evicted} evicted"
    );
}
