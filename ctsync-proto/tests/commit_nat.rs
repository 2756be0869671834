//! A NATed entry committed by `driver::commit::commit_entry` is NATed by the kernel, and a whole cache
//! commits (twice, with refused entries named) through `driver::commit::commit`
//! (`cargo test -p ctsync-proto --features linux --test commit_nat`; root, a fresh namespace).
//!
//! conntrackd creates such an entry with the inverted original as the reply tuple plus `CTA_NAT_SRC`,
//! and the kernel sets up the NAT binding. Created with the translated reply tuple and no range, the entry
//! looks the same in a listing but has no `IPS_SRC_NAT`, and the kernel forwards the connection's packets
//! untranslated: found by the HA lab (`cargo xtask ha-lab`), where a committed SNAT connection stalled.
#![cfg(feature = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ctsync_proto::driver::{CommitOptions, commit::commit_entry};
use ctsync_proto::wire::{AddrPair, CtEntry, PortPair};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

fn snat_entry() -> CtEntry {
    CtEntry {
        addrs: Some(AddrPair::V4 {
            src: Ipv4Addr::new(192, 168, 0, 10),
            dst: Ipv4Addr::new(192, 168, 1, 10),
        }),
        l4proto: Some(6),
        ports: Some(PortPair {
            sport: 40000,
            dport: 7000,
        }),
        tcp_state: Some(3), // ESTABLISHED
        // SEEN_REPLY ASSURED CONFIRMED SRC_NAT SRC_NAT_DONE DST_NAT_DONE, as conntrackd sends it
        status: Some(ctnl::Status::from_bits_retain(0x19e)),
        timeout: Some(300),
        snat_ipv4: Some(Ipv4Addr::new(192, 168, 1, 100)),
        snat_port: Some(40001),
        ..CtEntry::default()
    }
}

#[test]
fn a_committed_snat_entry_is_translated_by_the_kernel() {
    let now = Instant::now();
    let k = commit_entry(&snat_entry(), now, now, &CommitOptions::new()).unwrap();
    let orig = k.orig.clone().unwrap();
    assert_eq!(
        k.reply,
        Some(orig.reversed()),
        "the reply goes untranslated, as conntrackd's"
    );
    let range = k.nat_src.unwrap();
    let vip = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 100));
    assert_eq!((range.min_ip, range.max_ip), (Some(vip), Some(vip)));
    assert_eq!((range.min_port, range.max_port), (Some(40001), Some(40001)));
    assert!(k.nat_dst.is_none());

    let Some(_ns) = testkit::netns() else { return };
    let mut ct = ctnl::Conntrack::open().unwrap();
    ct.create(&k).unwrap();
    let got = ct.get(&ctnl::Key::orig(orig)).unwrap();
    let status = got.status.unwrap();
    assert!(status.contains(ctnl::Status::SRC_NAT), "{status:?}");
    let reply = got.reply.unwrap();
    assert_eq!(reply.dst, vip);
    assert_eq!(
        reply.l4,
        ctnl::L4::Ports {
            src: 7000,
            dst: 40001
        }
    );
}

#[test]
fn an_entry_without_nat_keeps_its_reply_and_gets_no_range() {
    let mut e = snat_entry();
    e.snat_ipv4 = None;
    e.snat_port = None;
    let now = Instant::now();
    let k = commit_entry(&e, now, now, &CommitOptions::new()).unwrap();
    assert_eq!(k.reply, Some(k.orig.clone().unwrap().reversed()));
    assert!(k.nat_src.is_none() && k.nat_dst.is_none());
}

/// A UDP entry numbered `i`.
fn udp(i: u16) -> CtEntry {
    CtEntry {
        addrs: Some(AddrPair::V4 {
            src: Ipv4Addr::new(10, 9, 0, 1),
            dst: Ipv4Addr::new(10, 9, 0, 2),
        }),
        l4proto: Some(17),
        ports: Some(PortPair {
            sport: 1000 + i,
            dport: 53,
        }),
        status: Some(ctnl::Status::from_bits_retain(8)),
        timeout: Some(60),
        ..CtEntry::default()
    }
}

/// `driver::commit::commit` on a whole external cache, filled by a session from the peer's messages:
/// every entry is created; committed once more, each one exists and is deleted and created again; an
/// entry the kernel refuses is reported by itself, among masters and among related entries.
#[test]
fn a_cache_commits_again_and_names_the_refused_entries() {
    use ctsync_proto::Session;
    use ctsync_proto::driver::commit::commit;
    use ctsync_proto::session::{Notrack, NotrackConfig};
    use ctsync_proto::wire::Change;
    let now = Instant::now();
    let mut a = Notrack::new(now, NotrackConfig::default());
    let mut b = Notrack::new(now, NotrackConfig::default());
    for i in 0..300 {
        a.handle_local(now, Change::New, udp(i));
    }
    // A master whose TCP state the kernel refuses (no such state), and a related entry whose master
    // is not in the table.
    let bad_state = CtEntry {
        tcp_state: Some(200),
        ..snat_entry()
    };
    let orphan = CtEntry {
        master_addrs: Some(AddrPair::V4 {
            src: Ipv4Addr::new(10, 9, 1, 1),
            dst: Ipv4Addr::new(10, 9, 1, 2),
        }),
        master_l4proto: Some(6),
        master_ports: Some(PortPair {
            sport: 1111,
            dport: 21,
        }),
        ..udp(999)
    };
    a.handle_local(now, Change::New, bad_state);
    a.handle_local(now, Change::New, orphan);
    let mut buf = [0u8; 1472];
    while let Some(n) = a.poll_transmit(now, &mut buf) {
        b.handle_datagram(now, &buf[..n]);
    }
    assert_eq!(b.external().len(), 302);

    let Some(_ns) = testkit::netns() else { return };
    let mut ct = ctnl::Conntrack::open().unwrap();
    for round in ["first", "again"] {
        let r = commit(&mut ct, b.external(), now, &CommitOptions::new()).unwrap();
        assert_eq!(r.ok, 300, "{round}: {:?}", r.failed);
        let mut failed: Vec<CtEntry> = r.failed.iter().map(|(e, _)| *e).collect();
        failed.sort_by_key(|e| e.master_addrs.is_some());
        assert_eq!(failed, [bad_state, orphan], "{round}");
        let listed = ct.dump(&ctnl::DumpFilter::default()).unwrap().count();
        assert_eq!(listed, 300, "{round}");
    }
}
