//! FT-FW rules of conntrackd 1.4.7's `sync-ftfw.c`, one at a time, driven with hand-built peer messages
//! on a virtual clock: the ACK window, ACK + NACK on a gap, late messages dropped, a HELLO resetting the
//! window, the resend queue evicting its oldest node, and ALIVE after each second of silence.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ctsync_proto::Session;
use ctsync_proto::session::{Ftfw, FtfwConfig};
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

fn data(seq: u32, flags: Flags) -> Vec<u8> {
    let m = Message {
        flags,
        seq,
        body: Body::Ct(Change::New, entry(seq as u16)),
    };
    let mut b = vec![0u8; m.buffer_len()];
    m.emit(&mut b).unwrap();
    b
}

fn ctl(seq: u32, flags: Flags, from: u32, to: u32) -> Vec<u8> {
    let m = Message {
        flags,
        seq,
        body: Body::Ctl { from, to },
    };
    let mut b = vec![0u8; m.buffer_len()];
    m.emit(&mut b).unwrap();
    b
}

/// Everything the session has queued, decoded.
fn sent(s: &mut Ftfw, now: Instant) -> Vec<Message> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1472];
    while let Some(n) = s.poll_transmit(now, &mut buf) {
        out.extend(messages(&buf[..n], Mode::Strict).map(|m| m.unwrap()));
    }
    out
}

/// The (flag, from, to) of each ACK or NACK sent.
fn ranges(ms: &[Message]) -> Vec<(&'static str, u32, u32)> {
    ms.iter()
        .filter_map(|m| match m.body {
            Body::Ctl { from, to } if m.flags.contains(Flags::ACK) => Some(("ack", from, to)),
            Body::Ctl { from, to } if m.flags.contains(Flags::NACK) => Some(("nack", from, to)),
            _ => None,
        })
        .collect()
}

fn session(window_size: u32, resend_queue_size: usize) -> (Ftfw, Instant) {
    let t0 = Instant::now();
    let s = Ftfw::new(
        t0,
        FtfwConfig::default()
            .with_window_size(window_size)
            .with_resend_queue_size(resend_queue_size),
    );
    (s, t0)
}

#[test]
fn ack_after_each_full_window() {
    let (mut b, t0) = session(4, 64);
    let mut acks = Vec::new();
    for seq in 50..58 {
        b.handle_datagram(t0, &data(seq, Flags::NONE));
        acks.extend(ranges(&sent(&mut b, t0)));
        if seq == 52 {
            assert!(acks.is_empty(), "no ACK before the window is full");
        }
    }
    assert_eq!(acks, [("ack", 50, 53), ("ack", 54, 57)]);
    assert_eq!(b.external().len(), 8);
}

#[test]
fn gap_is_acked_then_nacked_and_late_messages_dropped() {
    let (mut b, t0) = session(10, 64);
    for seq in [50, 51, 52, 56] {
        b.handle_datagram(t0, &data(seq, Flags::NONE));
    }
    // ftfw_recv, SEQ_AFTER: ACK what arrived, NACK the hole.
    assert_eq!(
        ranges(&sent(&mut b, t0)),
        [("ack", 50, 52), ("nack", 53, 55)]
    );
    assert_eq!(b.external().len(), 4);
    // A late message (before the next expected) is dropped, not applied.
    let before = b.stats().before;
    b.handle_datagram(t0, &data(54, Flags::NONE));
    assert_eq!(b.stats().before, before + 1);
    assert_eq!(b.external().len(), 4);
    assert!(b.external().get(&entry(54).key().unwrap()).is_none());
    // The window restarted at 56 (counted as its first message): 9 more complete it.
    for seq in 57..66 {
        b.handle_datagram(t0, &data(seq, Flags::NONE));
    }
    assert_eq!(ranges(&sent(&mut b, t0)), [("ack", 56, 65)]);
}

#[test]
fn hello_from_a_restarted_peer_resets_the_ack_window() {
    let (mut b, t0) = session(4, 64);
    b.handle_datagram(t0, &data(1000, Flags::NONE));
    b.handle_datagram(t0, &data(1001, Flags::NONE));
    // The peer restarts with a lower sequence number and says HELLO: the window restarts there
    // (without the reset the next ACK would be 1000..=6).
    for seq in 5..8 {
        b.handle_datagram(t0, &data(seq, Flags::HELLO));
    }
    let m = sent(&mut b, t0);
    assert_eq!(ranges(&m), [("ack", 5, 7)]);
    // The first message after a HELLO answers HELLO_BACK, once (nethdr_set_hello).
    assert!(m[0].flags.contains(Flags::HELLO_BACK));
    b.handle_timeout(t0 + Duration::from_secs(1));
    let m = sent(&mut b, t0 + Duration::from_secs(1));
    assert!(!m.is_empty() && m.iter().all(|m| !m.flags.contains(Flags::HELLO_BACK)));
}

#[test]
fn full_resend_queue_evicts_its_oldest_node() {
    let (mut a, t0) = session(300, 4);
    for i in 0..6 {
        a.handle_local(t0, Change::New, entry(i));
    }
    let first = sent(&mut a, t0);
    let seqs: Vec<u32> = first.iter().map(|m| m.seq).collect();
    assert_eq!(seqs.len(), 6);
    assert_eq!(a.resend_queue_len(), 4);
    assert_eq!(a.stats().rs_evicted, 2);
    // The peer NACKs everything: only the four newest are still held, so only they are resent.
    a.handle_datagram(t0, &ctl(7000, Flags::NACK, seqs[0], seqs[5]));
    let resent: Vec<u16> = sent(&mut a, t0)
        .iter()
        .filter_map(|m| match m.body {
            Body::Ct(_, e) => e.ports.map(|p| p.sport),
            _ => None,
        })
        .collect();
    assert_eq!(resent, [2, 3, 4, 5]);
    assert!(a.resend_queue_len() <= 4);
    // An ACK of the whole range empties the queue.
    a.handle_datagram(t0, &ctl(7001, Flags::ACK, seqs[0], seqs[5].wrapping_add(4)));
    assert_eq!(a.resend_queue_len(), 0);
}

#[test]
fn alive_after_each_second_without_transmission() {
    let (mut a, t0) = session(300, 64);
    assert_eq!(a.poll_timeout(), Some(t0 + Duration::from_secs(1)));
    a.handle_timeout(t0 + Duration::from_millis(999));
    assert!(sent(&mut a, t0 + Duration::from_millis(999)).is_empty());
    let t1 = t0 + Duration::from_secs(1);
    a.handle_timeout(t1);
    let m = sent(&mut a, t1);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].flags, Flags::ALIVE.union(Flags::HELLO));
    assert_eq!(m[0].body, Body::Ctl { from: 0, to: 0 });
    // Sending data pushes the keep-alive a second past the transmission.
    let t15 = t0 + Duration::from_millis(1500);
    a.handle_local(t15, Change::New, entry(1));
    assert_eq!(sent(&mut a, t15).len(), 1);
    assert_eq!(a.poll_timeout(), Some(t15 + Duration::from_secs(1)));
    a.handle_timeout(t0 + Duration::from_secs(2));
    assert!(sent(&mut a, t0 + Duration::from_secs(2)).is_empty());
    a.handle_timeout(t15 + Duration::from_secs(1));
    let m = sent(&mut a, t15 + Duration::from_secs(1));
    assert_eq!(m.len(), 1);
    assert!(m[0].flags.contains(Flags::ALIVE));
}

#[test]
fn local_events_follow_conntrackds_internal_cache() {
    // internal_cache.c of conntrackd 1.4.7; the message type comes from the object's state when sent.
    let (mut a, t0) = session(300, 1024);
    let step = |a: &mut Ftfw, change: Change, e: CtEntry| {
        a.handle_local(t0, change, e);
        sent(a, t0)
            .into_iter()
            .filter_map(|m| match m.body {
                Body::Ct(c, e) => Some((c, e)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let with = |i: u16, mark: u32| CtEntry {
        mark: Some(mark),
        ..entry(i)
    };
    assert_eq!(
        step(&mut a, Change::New, with(1, 1)),
        [(Change::New, with(1, 1))]
    );
    // A NEW event for a live object replaces it: the peer gets a NEW again, not an UPD.
    assert_eq!(
        step(&mut a, Change::New, with(1, 2)),
        [(Change::New, with(1, 2))]
    );
    assert_eq!(
        step(&mut a, Change::Update, with(1, 3)),
        [(Change::Update, with(1, 3))]
    );
    // DEL carries the object's last state, not the destroy event's.
    assert_eq!(
        step(&mut a, Change::Delete, with(1, 99)),
        [(Change::Delete, with(1, 3))]
    );
    // A second DEL of a dead object, or a DEL of an unknown one, announces nothing.
    assert_eq!(step(&mut a, Change::Delete, with(1, 4)), []);
    assert_eq!(step(&mut a, Change::Delete, with(3, 4)), []);
    // UPDATE of a dead or unknown object creates it afresh: a NEW.
    assert_eq!(
        step(&mut a, Change::Update, with(1, 5)),
        [(Change::New, with(1, 5))]
    );
    assert_eq!(
        step(&mut a, Change::Update, with(2, 6)),
        [(Change::New, with(2, 6))]
    );
    // NEW then UPDATE before transmission: cache_update makes it ALIVE, one UPD goes out.
    a.handle_local(t0, Change::New, with(4, 7));
    assert_eq!(
        step(&mut a, Change::Update, with(4, 8)),
        [(Change::Update, with(4, 8))]
    );
    let st = a.internal().stats();
    assert_eq!((st.created, st.updated, st.deleted), (5, 2, 2));
}

#[test]
fn updates_merge_into_cached_entries_like_nfct_copy_meta() {
    use ctsync_proto::session::Action;
    use ctsync_proto::wire::HelperName;
    let (mut a, t0) = session(300, 1024);
    let (mut b, _) = session(300, 1024);
    let full = CtEntry {
        mark: Some(7),
        helper: HelperName::new("ftp"),
        snat_ipv4: Some([203, 0, 113, 1].into()),
        ..entry(9)
    };
    // An update that carries less (no helper, no mark, no NAT): the rest is kept, as conntrackd's
    // cache_update keeps it with nfct_copy(.., NFCT_CP_META).
    let partial = CtEntry {
        timeout: Some(120),
        mark: None,
        ..entry(9)
    };
    let merged = CtEntry {
        timeout: Some(120),
        ..full
    };
    a.handle_local(t0, Change::New, full);
    a.handle_local(t0, Change::Update, partial);
    assert_eq!(
        a.internal().get(&full.key().unwrap()).unwrap().entry(),
        merged
    );
    // The peer side: NEW then a partial UPD, each in its own datagram.
    for (seq, change, e) in [(1, Change::New, full), (2, Change::Update, partial)] {
        let m = Message {
            flags: Flags::NONE,
            seq,
            body: Body::Ct(change, e),
        };
        let mut d = vec![0u8; m.buffer_len()];
        m.emit(&mut d).unwrap();
        b.handle_datagram(t0, &d);
    }
    assert_eq!(
        b.external().get(&full.key().unwrap()).unwrap().entry(),
        merged
    );
    let actions: Vec<Action> = std::iter::from_fn(|| b.poll_action()).collect();
    assert_eq!(
        actions.last(),
        Some(&Action::External {
            change: Change::Update,
            key: full.key().unwrap()
        })
    );
    // A NEW replaces the cached entry whole.
    let m = Message {
        flags: Flags::NONE,
        seq: 3,
        body: Body::Ct(Change::New, partial),
    };
    let mut d = vec![0u8; m.buffer_len()];
    m.emit(&mut d).unwrap();
    b.handle_datagram(t0, &d);
    assert_eq!(
        b.external().get(&full.key().unwrap()).unwrap().entry(),
        partial
    );
}

fn reliable(window_size: u32) -> (Ftfw, Instant) {
    let t0 = Instant::now();
    let s = Ftfw::new(
        t0,
        FtfwConfig::default()
            .with_window_size(window_size)
            .with_reliable_handshake(true),
    );
    (s, t0)
}

#[test]
fn reliable_handshake_nacks_a_gap_in_hello_messages() {
    // conntrackd acknowledges 50..=53 here (HELLO messages bypass the sequence check); the reliable
    // handshake tracks them: the first one is a baseline (a NACK asks for the 8192 before it), the gap
    // at 52 is NACKed and the window is acknowledged only up to what arrived.
    let (mut b, t0) = reliable(4);
    let _ = sent(&mut b, t0);
    for seq in [50, 51, 53] {
        b.handle_datagram(t0, &data(seq, Flags::HELLO));
    }
    // Our HELLO is not answered yet: ranges wait (an ALIVE carrying HELLO_BACK may go).
    assert!(ranges(&sent(&mut b, t0)).is_empty());
    b.handle_datagram(t0, &ctl(54, Flags::ALIVE.union(Flags::HELLO_BACK), 0, 0));
    assert!(b.hello_done());
    let t1 = t0 + Duration::from_millis(200);
    assert_eq!(
        ranges(&sent(&mut b, t1)),
        [
            ("nack", 50u32.wrapping_sub(8192), 49),
            ("ack", 50, 51),
            ("nack", 52, 52)
        ]
    );
    // A late HELLO message is still taken (a conntrackd sender may have forgotten it).
    b.handle_datagram(t1, &data(52, Flags::HELLO));
    assert_eq!(b.external().len(), 4);
}

#[test]
fn reliable_handshake_holds_objects_until_the_peer_answers() {
    let (mut a, t0) = reliable(300);
    a.handle_local(t0, Change::New, entry(1));
    // At once: an ALIVE that says HELLO, and no object.
    let m = sent(&mut a, t0);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].flags, Flags::ALIVE.union(Flags::HELLO));
    // Unanswered: HELLO again after 200 ms, still no object.
    let t1 = t0 + Duration::from_millis(200);
    a.handle_timeout(t1);
    let m = sent(&mut a, t1);
    assert_eq!(m.len(), 1);
    assert!(matches!(m[0].body, Body::Ctl { .. }));
    // The peer answers; the object goes 100 ms after our last HELLO (a late HELLO must not reach a
    // conntrackd peer after it).
    a.handle_datagram(t1, &ctl(900, Flags::ALIVE.union(Flags::HELLO_BACK), 0, 0));
    assert!(a.hello_done());
    assert!(
        sent(&mut a, t1)
            .iter()
            .all(|m| matches!(m.body, Body::Ctl { .. }))
    );
    let t2 = t1 + Duration::from_millis(100);
    assert_eq!(a.poll_timeout(), Some(t2));
    let m = sent(&mut a, t2);
    assert!(
        m.iter().any(|m| matches!(m.body, Body::Ct(Change::New, _))),
        "{m:?}"
    );
}

#[test]
fn reliable_handshake_holds_objects_after_a_peer_restart_until_it_acknowledges() {
    let (mut a, t0) = reliable(300);
    let _ = sent(&mut a, t0);
    a.handle_datagram(t0, &ctl(500, Flags::ALIVE.union(Flags::HELLO_BACK), 0, 0));
    let t1 = t0 + Duration::from_millis(150);
    let _ = sent(&mut a, t1);
    // The peer restarts: a HELLO after it had stopped saying HELLO.
    a.handle_datagram(t1, &ctl(600, Flags::ALIVE.union(Flags::HELLO), 0, 0));
    a.handle_local(t1, Change::New, entry(2));
    let m = sent(&mut a, t1);
    // Answered at once with HELLO_BACK; the object waits.
    assert!(m.iter().any(|m| m.flags.contains(Flags::HELLO_BACK)));
    assert!(
        m.iter().all(|m| matches!(m.body, Body::Ctl { .. })),
        "{m:?}"
    );
    // Its acknowledgement of that answer releases the object.
    let answer = m.last().unwrap().seq;
    a.handle_datagram(t1, &ctl(601, Flags::ACK, answer, answer));
    let m = sent(&mut a, t1);
    assert!(
        m.iter().any(|m| matches!(m.body, Body::Ct(Change::New, _))),
        "{m:?}"
    );
}

#[test]
fn a_resent_control_message_keeps_its_hello_and_is_no_restart() {
    // conntrackd resends a queued ACK/NACK with the flags it was first sent with (nethdr_set_hello only
    // adds bits), so a NACK first sent during the handshake says HELLO when resent after it.
    let (mut a, t0) = session(300, 64);
    a.handle_datagram(t0, &data(50, Flags::NONE));
    a.handle_datagram(t0, &data(52, Flags::NONE));
    let first = sent(&mut a, t0);
    let nack = first
        .iter()
        .find(|m| m.flags.contains(Flags::NACK))
        .unwrap();
    assert!(nack.flags.contains(Flags::HELLO));
    a.handle_datagram(t0, &ctl(900, Flags::HELLO_BACK.union(Flags::ALIVE), 0, 0));
    assert!(a.hello_done());
    a.handle_datagram(t0, &ctl(901, Flags::NACK, nack.seq, nack.seq));
    let again = sent(&mut a, t0);
    let resent = again
        .iter()
        .find(|m| m.flags.contains(Flags::NACK) && m.body == nack.body)
        .unwrap();
    assert!(resent.flags.contains(Flags::HELLO), "{resent:?}");

    // The reliable handshake receiving such a message: no restart (its resend queue stays), and its own
    // resends carry no stale HELLO.
    let (mut b, t0) = reliable(300);
    let _ = sent(&mut b, t0);
    b.handle_datagram(t0, &ctl(10, Flags::ALIVE.union(Flags::HELLO_BACK), 0, 0));
    b.handle_local(t0, Change::New, entry(1));
    let t1 = t0 + Duration::from_millis(100);
    let out = sent(&mut b, t1);
    let obj = out
        .iter()
        .find(|m| matches!(m.body, Body::Ct(..)))
        .unwrap()
        .seq;
    assert_eq!(b.resend_queue_len(), 2, "the baseline NACK and the object");
    b.handle_datagram(t1, &ctl(11, Flags::ACK.union(Flags::HELLO), 5, 6));
    let actions: Vec<_> = std::iter::from_fn(|| b.poll_action()).collect();
    assert!(
        !actions.contains(&ctsync_proto::Action::PeerRestarted),
        "{actions:?}"
    );
    assert_eq!(b.resend_queue_len(), 2);
    b.handle_datagram(t1, &ctl(12, Flags::NACK, 0, obj));
    let again = sent(&mut b, t1);
    assert!(
        again.iter().all(|m| !m.flags.contains(Flags::HELLO)),
        "{again:?}"
    );
    assert!(again.iter().any(|m| matches!(m.body, Body::Ct(..))));
}

#[test]
fn reliable_handshake_takes_a_hello_a_little_behind_for_a_restart_once_its_number_is_long_passed() {
    // conntrackd numbers a run from the time in seconds: restarted within seconds, it starts just
    // behind the numbers its last run reached. A message that says HELLO a little behind the sequence
    // is a late one of the current run while the sequence passed its number less than a second ago
    // (overtaken on the way); later it can only be a restart.
    let actions = |s: &mut Ftfw| std::iter::from_fn(|| s.poll_action()).collect::<Vec<_>>();
    let restarted = |a: &[ctsync_proto::Action]| a.contains(&ctsync_proto::Action::PeerRestarted);
    let resync = |a: &[ctsync_proto::Action]| a.contains(&ctsync_proto::Action::ResyncRequested);
    let (mut b, t0) = reliable(300);
    let _ = sent(&mut b, t0);
    b.handle_datagram(t0, &ctl(100, Flags::ALIVE.union(Flags::HELLO), 0, 0));
    b.handle_datagram(t0, &ctl(101, Flags::ALIVE.union(Flags::HELLO_BACK), 0, 0));
    for seq in 102..=110 {
        b.handle_datagram(t0, &data(seq, Flags::NONE));
    }
    let _ = actions(&mut b);
    let _ = sent(&mut b, t0);

    // 300 ms later: a late HELLO of the current run, taken without a restart; a plain message
    // behind the sequence is dropped as late.
    let t1 = t0 + Duration::from_millis(300);
    b.handle_datagram(t1, &ctl(101, Flags::ALIVE.union(Flags::HELLO), 0, 0));
    b.handle_datagram(t1, &ctl(104, Flags::RESYNC, 0, 0));
    let a1 = actions(&mut b);
    assert!(!restarted(&a1) && !resync(&a1), "{a1:?}");

    // The run goes on; a resent ACK that kept its HELLO is overtaken by a few milliseconds, long after
    // the peer stopped saying HELLO: still no restart.
    let t2 = t0 + Duration::from_millis(1500);
    for seq in 111..=120 {
        b.handle_datagram(t2, &data(seq, Flags::NONE));
    }
    b.handle_datagram(t2, &ctl(118, Flags::ACK.union(Flags::HELLO), 5, 6));
    let a2 = actions(&mut b);
    assert!(!restarted(&a2), "{a2:?}");

    // 2.6 s after it passed 105, a HELLO at 105: the peer restarted (here with the resync request
    // the script's `-n` sends first). It counts, and so do the plain messages after the handshake.
    let t3 = t0 + Duration::from_millis(2600);
    b.handle_datagram(t3, &ctl(105, Flags::RESYNC.union(Flags::HELLO), 0, 0));
    let a3 = actions(&mut b);
    assert!(restarted(&a3) && resync(&a3), "{a3:?}");
    b.handle_datagram(t3, &ctl(106, Flags::ALIVE.union(Flags::HELLO), 0, 0));
    b.handle_datagram(t3, &ctl(107, Flags::RESYNC, 0, 0));
    let a4 = actions(&mut b);
    assert!(!restarted(&a4) && resync(&a4), "{a4:?}");
}
