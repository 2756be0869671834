//! The router against keepalived 2.2.7's bytes: configured like keepalived.conf, it emits the captured
//! adverts byte for byte (and the priority-0 ones on shutdown), accepts them as a backup, and each receive
//! check of RFC 3768 / RFC 5798 / RFC 9568 §7.1 fails with its own error kind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::vectors;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use vrrp_proto::config::{V4Checksum, Version};
use vrrp_proto::wire::{ChecksumModes, DecodeError, Packet, Repr, checksum_modes};
use vrrp_proto::{Action, Command, Config, Router, RxError, State};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The four instances of tests/data/keepalived.conf, by VRID.
fn keepalived_instance(vrid: u8) -> (Config, IpAddr) {
    let ka_v4 = ip("10.77.0.1");
    match vrid {
        10 => {
            let mut c = Config::new("va", 10, vec![ip("10.77.0.10"), ip("10.77.0.11")]);
            c.version = Version::V2;
            c.priority = 150;
            c.auth_pass = Some(b"secret1".to_vec());
            c.state = vrrp_proto::config::InitialState::Master;
            (c, ka_v4)
        }
        20 => {
            let mut c = Config::new("va", 20, vec![ip("10.77.0.20")]);
            c.priority = 120;
            (c, ka_v4)
        }
        30 => {
            let mut c = Config::new("va", 30, vec![ip("fe80::77:30"), ip("fd00:77::30")]);
            c.priority = 110;
            (c, ip("fe80::a8c1:abff:fe00:1"))
        }
        40 => {
            let mut c = Config::new("va", 40, vec![ip("10.77.0.40")]);
            c.priority = 100;
            c.unicast_src_ip = Some(ka_v4);
            c.unicast_peer = vec![ip("10.77.0.2")];
            (c, ka_v4)
        }
        _ => unreachable!(),
    }
}

fn adverts(r: &mut Router) -> Vec<(IpAddr, IpAddr, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(a) = r.poll_action() {
        if let Action::SendAdvert(adv) = a {
            out.push((adv.src, adv.dst, adv.to_bytes().unwrap()));
        }
    }
    out
}

#[test]
fn router_emits_keepalived_bytes_exactly() {
    let files = [
        "v2_pass.hex",
        "v3_ipv4.hex",
        "v3_ipv6.hex",
        "v3_unicast.hex",
    ];
    let zeros = vectors("priority0.hex");
    for ((file, vrid), zero) in files.iter().zip([10u8, 20, 30, 40]).zip(zeros) {
        let (cfg, primary) = keepalived_instance(vrid);
        let mut r = Router::new(cfg, primary).unwrap();
        let t0 = Instant::now();
        r.handle_command(t0, Command::Startup);
        assert_eq!(r.state(), State::Backup);
        assert!(adverts(&mut r).is_empty());
        let t = r.poll_timeout().unwrap();
        r.handle_timeout(t);
        assert_eq!(r.state(), State::Master);
        let sent = adverts(&mut r);
        assert_eq!(sent, vectors(file), "{file}");
        r.handle_command(t + Duration::from_secs(3), Command::Shutdown);
        assert_eq!(adverts(&mut r), vec![zero], "priority 0 of {file}");
        assert_eq!(r.state(), State::Initialize);
    }
}

#[test]
fn backup_accepts_keepalived_adverts() {
    for (file, vrid) in [
        ("v2_pass.hex", 10u8),
        ("v3_ipv4.hex", 20),
        ("v3_ipv6.hex", 30),
        ("v3_unicast.hex", 40),
    ] {
        let (mut cfg, _) = keepalived_instance(vrid);
        cfg.priority = 50;
        let me = if vrid == 30 {
            ip("fe80::a8c1:abff:fe00:2")
        } else {
            ip("10.77.0.2")
        };
        if vrid == 40 {
            cfg.unicast_src_ip = Some(me);
            cfg.unicast_peer = vec![ip("10.77.0.1")];
        }
        let mut r = Router::new(cfg, me).unwrap();
        let t0 = Instant::now();
        r.handle_command(t0, Command::Startup);
        let (src, dst, bytes) = &vectors(file)[0];
        let t = t0 + Duration::from_millis(500);
        r.handle_packet(t, *src, *dst, 255, bytes)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let p = Packet::parse_unverified(bytes).unwrap();
        assert_eq!(r.master(), Some((*src, p.priority())));
        // The down timer was reset by the advert.
        assert_eq!(r.poll_timeout(), Some(t + r.master_down_interval()));
    }
}

fn backup_for(vrid: u8) -> Router {
    let (mut cfg, _) = keepalived_instance(vrid);
    cfg.priority = 50;
    let me = if vrid == 30 {
        ip("fe80::a8c1:abff:fe00:2")
    } else {
        ip("10.77.0.2")
    };
    let mut r = Router::new(cfg, me).unwrap();
    r.handle_command(Instant::now(), Command::Startup);
    r
}

/// Fixes the checksum of a mutated message so that only the intended check fails.
fn refix(bytes: &mut [u8], src: IpAddr, dst: IpAddr) {
    let mut repr = Repr::parse(bytes, &vrrp_proto::wire::Checksum::MessageOnly)
        .or_else(|_| {
            Repr::parse(
                bytes,
                &vrrp_proto::wire::Checksum::PseudoHeader { src, dst },
            )
        })
        .or_else(|_| {
            // Checksum now wrong: parse structurally and take the typed value.
            Packet::parse_unverified(bytes).map(|p| Repr::from_packet(&p))
        })
        .unwrap();
    repr.vrid = bytes[1];
    let mode = if bytes[0] >> 4 == 2 {
        vrrp_proto::wire::Checksum::MessageOnly
    } else {
        vrrp_proto::wire::Checksum::PseudoHeader { src, dst }
    };
    repr.emit(bytes, &mode).unwrap();
}

#[test]
fn each_receive_check_has_its_own_error() {
    let now = Instant::now() + Duration::from_millis(10);
    let (s4, d4, v2) = vectors("v2_pass.hex").remove(0);
    let (_, _, v3) = vectors("v3_ipv4.hex").remove(0);
    let (s6, d6, v6) = vectors("v3_ipv6.hex").remove(0);

    // TTL
    assert_eq!(
        backup_for(20).handle_packet(now, s4, d4, 64, &v3),
        Err(RxError::Ttl { actual: 64 })
    );
    // version / type / length / count (structural)
    let mut b = v3.clone();
    b[0] = 0x41;
    assert_eq!(
        backup_for(20).handle_packet(now, s4, d4, 255, &b),
        Err(RxError::Decode(DecodeError::Version {
            offset: 0,
            actual: 4
        }))
    );
    let mut b = v3.clone();
    b[0] = 0x32;
    assert!(matches!(
        backup_for(20).handle_packet(now, s4, d4, 255, &b),
        Err(RxError::Decode(DecodeError::Type { actual: 2, .. }))
    ));
    assert!(matches!(
        backup_for(20).handle_packet(now, s4, d4, 255, &v3[..11]),
        Err(RxError::Decode(DecodeError::Length {
            count: 1,
            expected: 12,
            actual: 11
        }))
    ));
    let mut b = v3[..8].to_vec();
    b[3] = 0;
    assert_eq!(
        backup_for(20).handle_packet(now, s4, d4, 255, &b),
        Err(RxError::Decode(DecodeError::CountZero { offset: 3 }))
    );
    // v2 length includes the 8 bytes of authentication data
    assert!(matches!(
        backup_for(10).handle_packet(now, s4, d4, 255, &v2[..v2.len() - 8]),
        Err(RxError::Decode(DecodeError::Length {
            count: 2,
            expected: 24,
            actual: 16
        }))
    ));
    let mut b = v2.clone();
    b[4] = 2;
    assert_eq!(
        backup_for(10).handle_packet(now, s4, d4, 255, &b),
        Err(RxError::Decode(DecodeError::AuthHeader { offset: 4 }))
    );
    // a v2 packet to a v3 instance
    assert_eq!(
        backup_for(20).handle_packet(now, s4, d4, 255, &v2),
        Err(RxError::Version {
            expected: 3,
            actual: 2
        })
    );
    // checksum
    let mut b = v3.clone();
    b[7] ^= 1;
    assert!(matches!(
        backup_for(20).handle_packet(now, s4, d4, 255, &b),
        Err(RxError::Decode(DecodeError::Checksum { offset: 6, .. }))
    ));
    // unknown VRID
    let mut b = v3.clone();
    b[1] = 21;
    refix(&mut b, s4, d4);
    assert_eq!(
        backup_for(20).handle_packet(now, s4, d4, 255, &b),
        Err(RxError::UnknownVrid { actual: 21 })
    );
    // reserved bits
    let mut b = v3.clone();
    b[4] |= 0x50;
    refix(&mut b, s4, d4);
    assert_eq!(
        backup_for(20).handle_packet(now, s4, d4, 255, &b),
        Err(RxError::Reserved { actual: 5 })
    );
    // IPv6 first address not link-local: swap the two addresses
    let mut b = v6.clone();
    let (a, z) = b[8..].split_at_mut(16);
    a.swap_with_slice(z);
    refix(&mut b, s6, d6);
    assert_eq!(
        backup_for(30).handle_packet(now, s6, d6, 255, &b),
        Err(RxError::FirstAddressNotLinkLocal {
            actual: ip("fd00:77::30")
        })
    );
    // v2 authentication type and data
    let mut b = v2.clone();
    b[4] = 0;
    refix(&mut b, s4, d4);
    assert_eq!(
        backup_for(10).handle_packet(now, s4, d4, 255, &b),
        Err(RxError::AuthType {
            expected: 1,
            actual: 0
        })
    );
    let mut b = v2.clone();
    b[16] = b'S';
    refix(&mut b, s4, d4);
    assert_eq!(
        backup_for(10).handle_packet(now, s4, d4, 255, &b),
        Err(RxError::AuthData)
    );
    // v2 advert interval mismatch (v3 learns it instead)
    let mut b = v2.clone();
    b[5] = 3;
    refix(&mut b, s4, d4);
    assert_eq!(
        backup_for(10).handle_packet(now, s4, d4, 255, &b),
        Err(RxError::AdverInt {
            expected: 1,
            actual: 3
        })
    );
    let mut b = v3.clone();
    b[5] = 50;
    refix(&mut b, s4, d4);
    let mut r = backup_for(20);
    assert_eq!(r.handle_packet(now, s4, d4, 255, &b), Ok(()));
    assert_eq!(r.master_adver_interval(), Duration::from_millis(500));
    // address list mismatch: dropped, unless the sender is the owner (priority 255)
    let mut b = v3.clone();
    b[11] = 99;
    refix(&mut b, s4, d4);
    assert_eq!(
        backup_for(20).handle_packet(now, s4, d4, 255, &b),
        Err(RxError::AddressMismatch)
    );
    b[2] = 255;
    refix(&mut b, s4, d4);
    let mut r = backup_for(20);
    while r.poll_action().is_some() {}
    assert_eq!(r.handle_packet(now, s4, d4, 255, &b), Ok(()));
    // ... processed (the owner is now the Master heard), and the mismatch reported for the log.
    assert_eq!(r.master(), Some((s4, 255)));
    assert_eq!(
        r.poll_action(),
        Some(Action::AddressListMismatch { from: s4 })
    );
    assert_eq!(r.poll_action(), None);
    // A matching owner advert reports nothing.
    let mut b = v3.clone();
    b[2] = 255;
    refix(&mut b, s4, d4);
    let mut r = backup_for(20);
    while r.poll_action().is_some() {}
    assert_eq!(r.handle_packet(now, s4, d4, 255, &b), Ok(()));
    assert_eq!(r.poll_action(), None);
    // not running
    let (cfg, _) = keepalived_instance(20);
    let mut idle = Router::new(cfg, ip("10.77.0.2")).unwrap();
    assert_eq!(
        idle.handle_packet(now, s4, d4, 255, &v3),
        Err(RxError::NotRunning)
    );
}

#[test]
fn rfc9568_router_detects_a_keepalived_checksum() {
    let (src, dst, bytes) = vectors("v3_ipv4.hex").remove(0);
    let (mut cfg, _) = keepalived_instance(20);
    cfg.priority = 50;
    cfg.v4_checksum = V4Checksum::MessageOnly;
    let mut r = Router::new(cfg, ip("10.77.0.2")).unwrap();
    let now = Instant::now();
    r.handle_command(now, Command::Startup);
    assert_eq!(
        r.handle_packet(now, src, dst, 255, &bytes),
        Err(RxError::ChecksumMode {
            expected: V4Checksum::MessageOnly,
            satisfied: ChecksumModes {
                pseudo_header: true,
                message_only: false
            }
        })
    );
}

#[test]
fn rfc9568_message_only_vectors_by_hand() {
    let vs = vectors("rfc9568_message_only.hex");
    assert_eq!(vs.len(), 2);
    let expect = [(1u8, 100u8, 0xa897u16), (254, 255, 0xaafc)];
    for ((src, dst, bytes), (vrid, prio, ck)) in vs.iter().zip(expect) {
        let p = Packet::parse(bytes, &vrrp_proto::wire::Checksum::MessageOnly).unwrap();
        assert_eq!((p.vrid(), p.priority(), p.checksum()), (vrid, prio, ck));
        assert_eq!(
            checksum_modes(bytes, *src, *dst),
            ChecksumModes {
                pseudo_header: false,
                message_only: true
            }
        );
        // Re-encoded in the same mode: identical.
        let repr = Repr::from_packet(&p);
        assert_eq!(
            &repr
                .to_bytes(&vrrp_proto::wire::Checksum::MessageOnly)
                .unwrap(),
            bytes
        );
    }
    // The hand computation in the file for the RFC 5798 pseudo-header variant of vector 1.
    let (src, dst, bytes) = &vs[0];
    let repr = Repr::from_packet(&Packet::parse_unverified(bytes).unwrap());
    let pseudo = repr
        .to_bytes(&vrrp_proto::wire::Checksum::PseudoHeader {
            src: *src,
            dst: *dst,
        })
        .unwrap();
    assert_eq!(&pseudo[6..8], &[0x05, 0xfe]);

    // A router in RFC 9568 mode emits exactly vector 1 and accepts it; one in RFC 5798 mode rejects it.
    let mut cfg = Config::new("eth0", 1, vec![ip("192.0.2.1")]);
    cfg.v4_checksum = V4Checksum::MessageOnly;
    let mut r = Router::new(cfg.clone(), *src).unwrap();
    let t0 = Instant::now();
    r.handle_command(t0, Command::Startup);
    let t = r.poll_timeout().unwrap();
    r.handle_timeout(t);
    assert_eq!(adverts(&mut r), vec![(*src, *dst, bytes.clone())]);
    let mut b = Router::new(cfg.clone(), ip("192.0.2.11")).unwrap();
    b.handle_command(t0, Command::Startup);
    assert_eq!(b.handle_packet(t0, *src, *dst, 255, bytes), Ok(()));
    cfg.v4_checksum = V4Checksum::PseudoHeader;
    let mut b = Router::new(cfg, ip("192.0.2.11")).unwrap();
    b.handle_command(t0, Command::Startup);
    assert!(matches!(
        b.handle_packet(t0, *src, *dst, 255, bytes),
        Err(RxError::ChecksumMode { .. })
    ));
}

#[test]
fn answer_lower_priority_is_selectable() {
    for answer in [false, true] {
        let mut cfg = Config::new("eth0", 1, vec![ip("192.0.2.1")]);
        cfg.priority = 200;
        cfg.answer_lower_priority = answer;
        let mut m = Router::new(cfg.clone(), ip("192.0.2.10")).unwrap();
        let t0 = Instant::now();
        m.handle_command(t0, Command::Startup);
        let t = m.poll_timeout().unwrap();
        m.handle_timeout(t);
        adverts(&mut m);
        // A lower-priority master's advert.
        cfg.priority = 100;
        let mut low = Router::new(cfg, ip("192.0.2.20")).unwrap();
        low.handle_command(t0, Command::Startup);
        low.handle_timeout(low.poll_timeout().unwrap());
        let (s, d, b) = adverts(&mut low).remove(0);
        let at = t + Duration::from_millis(300);
        assert_eq!(m.handle_packet(at, s, d, 255, &b), Ok(()));
        let answered = adverts(&mut m);
        assert_eq!(
            answered.len(),
            usize::from(answer),
            "answer_lower_priority = {answer}"
        );
        if answer {
            let p = Packet::parse_unverified(&answered[0].2).unwrap();
            assert_eq!((p.priority(), answered[0].0), (200, ip("192.0.2.10")));
        }
        assert_eq!(m.state(), State::Master);
        // RFC 9568 §6.4.3 sends the answer without resetting Adver_Timer (only the priority-0
        // branch resets it): the next periodic advert stays one interval after the previous one.
        assert_eq!(m.poll_timeout(), Some(t + Duration::from_secs(1)));
    }
}

#[test]
fn config_errors_name_the_field() {
    let ok = Config::new("eth0", 1, vec![ip("192.0.2.1")]);
    assert_eq!(ok.validate(), Ok(()));
    type Edit = Box<dyn Fn(&mut Config)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "interface",
            Box::new(|c| c.interface = "a-very-long-interface".into()),
        ),
        ("virtual_router_id", Box::new(|c| c.virtual_router_id = 0)),
        ("priority", Box::new(|c| c.priority = 0)),
        (
            "advert_int",
            Box::new(|c| c.advert_int = Duration::from_millis(15)),
        ),
        (
            "advert_int",
            Box::new(|c| c.advert_int = Duration::from_secs(41)),
        ),
        (
            "advert_int",
            Box::new(|c| {
                c.version = Version::V2;
                c.advert_int = Duration::from_millis(500);
            }),
        ),
        (
            "preempt_delay",
            Box::new(|c| c.preempt_delay = Duration::from_secs(1001)),
        ),
        (
            "virtual_ipaddress",
            Box::new(|c| c.virtual_ipaddress.clear()),
        ),
        (
            "virtual_ipaddress",
            Box::new(|c| c.virtual_ipaddress.push(ip("2001:db8::1").into())),
        ),
        (
            "virtual_ipaddress",
            Box::new(|c| c.virtual_ipaddress.push(ip("224.0.0.1").into())),
        ),
        (
            "virtual_ipaddress_excluded",
            Box::new(|c| c.virtual_ipaddress_excluded.push(ip("0.0.0.0").into())),
        ),
        (
            "version",
            Box::new(|c| {
                c.version = Version::V2;
                c.virtual_ipaddress = vec![ip("2001:db8::1").into()];
            }),
        ),
        (
            "unicast_src_ip",
            Box::new(|c| c.unicast_src_ip = Some(ip("2001:db8::1"))),
        ),
        (
            "unicast_peer",
            Box::new(|c| c.unicast_peer = vec![ip("224.0.0.18")]),
        ),
        ("auth_pass", Box::new(|c| c.auth_pass = Some(b"x".to_vec()))),
        (
            "auth_pass",
            Box::new(|c| {
                c.version = Version::V2;
                c.auth_pass = Some(b"123456789".to_vec());
            }),
        ),
        (
            "weight",
            Box::new(|c| c.track = vec![vrrp_proto::config::Track::new("x", 300)]),
        ),
        ("garp_master_repeat", Box::new(|c| c.garp_master_repeat = 0)),
    ];
    for (field, f) in cases {
        let mut c = ok.clone();
        f(&mut c);
        let e = c.validate().unwrap_err();
        assert_eq!(e.field, field, "{e}");
        assert!(e.to_string().starts_with(field));
        assert_eq!(Router::new(c, ip("192.0.2.10")).unwrap_err().field, field);
    }
}

#[test]
fn keepalived_conf_parses_into_the_same_model() {
    let text = std::fs::read_to_string(format!(
        "{}/tests/data/keepalived.conf",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let got = vrrp_proto::config::parse_keepalived(&text).unwrap();
    let names: Vec<&str> = got.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["V2PASS", "V3V4", "V3V6", "UNI"]);
    for (inst, vrid) in got.iter().zip([10u8, 20, 30, 40]) {
        let (mut want, _) = keepalived_instance(vrid);
        want.state = vrrp_proto::config::InitialState::Master;
        assert_eq!(inst.config, want, "{}", inst.name);
        assert!(inst.ignored.is_empty(), "{:?}", inst.ignored);
    }
}

#[test]
fn keepalived_syntax_details_and_errors() {
    let text = r"
global_defs {
    router_id x   # comment
    vrrp_version 2
}
vrrp_script chk { script /bin/true }
vrrp_instance A
{
    interface eth0
    virtual_router_id 51
    priority 200
    advert_int 2
    nopreempt
    preempt_delay 7.5
    accept
    garp_master_refresh 60
    notify_master /bin/true
    virtual_ipaddress{
        192.0.2.1/24 dev eth0 label eth0:vip
        192.0.2.2
    }
    virtual_ipaddress_excluded {
        198.51.100.9/32
    }
    track_interface {
        eth1 weight -20
        eth2
    }
    track_script {
        chk weight 10
    }
}
";
    let got = vrrp_proto::config::parse_keepalived(text).unwrap();
    assert_eq!(got.len(), 1);
    let c = &got[0].config;
    assert_eq!(c.version, Version::V2);
    assert_eq!(
        (c.virtual_router_id, c.priority, c.nopreempt, c.accept),
        (51, 200, true, true)
    );
    assert_eq!(c.advert_int, Duration::from_secs(2));
    assert_eq!(c.preempt_delay, Duration::from_millis(7500));
    assert_eq!(c.garp_master_refresh, Duration::from_secs(60));
    assert_eq!(
        c.advertised().collect::<Vec<_>>(),
        vec![ip("192.0.2.1"), ip("192.0.2.2")]
    );
    assert_eq!(
        c.virtual_ipaddress_excluded,
        vec![ip("198.51.100.9").into()]
    );
    let tracks: Vec<(&str, i32)> = c
        .track
        .iter()
        .map(|t| (t.name.as_str(), t.weight))
        .collect();
    assert_eq!(tracks, [("eth1", -20), ("eth2", 0), ("chk", 10)]);
    assert_eq!(got[0].ignored, ["A: notify_master"]);

    let base = "vrrp_instance B {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n 192.0.2.1\n }\n";
    for (extra, field) in [
        ("priority 300\n", "priority"),
        ("priority x\n", "priority"),
        ("advert_int 0.015\n", "advert_int"),
        ("state LEADER\n", "state"),
        ("version 4\n", "version"),
        ("unicast_src_ip 300.1.1.1\n", "unicast_src_ip"),
        ("authentication {\n auth_type AH\n }\n", "auth_type"),
        (
            // keepalived's default for IPv4 is VRRPv2; authentication needs it.
            "version 3\n authentication {\n auth_type PASS\n auth_pass secret\n }\n",
            "auth_pass",
        ),
        ("track_interface {\n eth1 weight\n }\n", "weight"),
        ("virtual_router_id 0\n", "virtual_router_id"),
    ] {
        let text = format!("{base}{extra}}}\n");
        let e = vrrp_proto::config::parse_keepalived(&text).unwrap_err();
        assert_eq!(e.field, field, "{extra}: {e}");
    }
    assert_eq!(
        vrrp_proto::config::parse_keepalived("vrrp_instance C {\n")
            .unwrap_err()
            .field,
        "vrrp_instance"
    );
    assert_eq!(
        vrrp_proto::config::parse_keepalived("}\n")
            .unwrap_err()
            .field,
        "vrrp_instance"
    );
    for text in ["{\n}\n", "vrrp_instance D {\n {\n }\n}\n"] {
        let e = vrrp_proto::config::parse_keepalived(text).unwrap_err();
        assert_eq!(e.field, "vrrp_instance", "{text:?}: {e}");
    }
}

/// Unicast, where the RFCs are silent, follows keepalived 2.2.7's vrrp_check_packet: any TTL (peers may
/// be routed), multicast adverts dropped by a unicast instance and unicast ones by a multicast instance,
/// and with `check_unicast_src` only the listed peers heard.
#[test]
fn unicast_receive_checks_follow_keepalived() {
    let now = Instant::now() + Duration::from_millis(10);
    let (us, ud, uni) = vectors("v3_unicast.hex").remove(0);
    let (ms, md, multi) = vectors("v3_ipv4.hex").remove(0);
    let me = ip("10.77.0.2");
    let unicast_backup = |check: bool, peers: Vec<IpAddr>| {
        let (mut cfg, _) = keepalived_instance(40);
        cfg.priority = 50;
        cfg.unicast_src_ip = Some(me);
        cfg.unicast_peer = peers;
        cfg.check_unicast_src = check;
        let mut r = Router::new(cfg, me).unwrap();
        r.handle_command(Instant::now(), Command::Startup);
        r
    };
    // A routed peer: TTL 254 (and 1) is fine in unicast, still not in multicast.
    for ttl in [255, 254, 1] {
        assert_eq!(
            unicast_backup(false, vec![us]).handle_packet(now, us, ud, ttl, &uni),
            Ok(()),
            "ttl {ttl}"
        );
    }
    assert_eq!(
        backup_for(20).handle_packet(now, ms, md, 254, &multi),
        Err(RxError::Ttl { actual: 254 })
    );
    // Mode mismatch, both ways, each re-checksummed so that only the destination is wrong: the
    // multicast vector sent to a unicast address, then rewritten as instance 40's to the group.
    let mut b = multi.clone();
    refix(&mut b, ms, ud);
    assert_eq!(
        backup_for(20).handle_packet(now, ms, ud, 255, &b),
        Err(RxError::Destination { actual: ud })
    );
    let mut b = multi.clone();
    b[1] = 40;
    b[8..12].copy_from_slice(&[10, 77, 0, 40]);
    refix(&mut b, ms, md);
    assert_eq!(
        unicast_backup(false, vec![us]).handle_packet(now, ms, md, 255, &b),
        Err(RxError::Destination { actual: md })
    );
    // check_unicast_src: a stranger is dropped only when it is on; a listed peer always passes.
    let stranger = vec![ip("10.77.0.9")];
    assert_eq!(
        unicast_backup(false, stranger.clone()).handle_packet(now, us, ud, 255, &uni),
        Ok(())
    );
    assert_eq!(
        unicast_backup(true, stranger).handle_packet(now, us, ud, 255, &uni),
        Err(RxError::NotAPeer { actual: us })
    );
    assert_eq!(
        unicast_backup(true, vec![ip("10.77.0.9"), us]).handle_packet(now, us, ud, 255, &uni),
        Ok(())
    );
    // The keepalived key.
    let text = "vrrp_instance U {\n interface eth0\n virtual_router_id 40\n unicast_peer {\n 10.77.0.1\n }\n \
                check_unicast_src\n virtual_ipaddress {\n 10.77.0.40\n }\n}\n";
    let got = vrrp_proto::config::parse_keepalived(text).unwrap();
    assert!(got[0].config.check_unicast_src);
    assert!(got[0].ignored.is_empty(), "{:?}", got[0].ignored);
}

/// keepalived 2.2.7's defaults where a configuration says nothing: `vrrp_version` 2 for IPv4 instances
/// (global_data.c), VRRPv3 for IPv6 ones (vrrp_complete_instance), and a Master that answers
/// lower-priority adverts unless `lower_prio_no_advert` (instance or global) says otherwise.
#[test]
fn keepalived_defaults_for_version_and_lower_priority_answers() {
    let inst = |name: &str, vip: &str, extra: &str| {
        format!(
            "vrrp_instance {name} {{\n interface eth0\n virtual_router_id 9\n{extra}\n \
             virtual_ipaddress {{\n {vip}\n }}\n}}\n"
        )
    };
    let text = [
        inst("V4", "192.0.2.9", ""),
        inst("V6", "fe80::9", ""),
        inst("V4v3", "192.0.2.9", " version 3"),
        inst("NOANS", "192.0.2.9", " lower_prio_no_advert"),
        inst("ANS", "192.0.2.9", " lower_prio_no_advert false"),
    ]
    .concat();
    let got = vrrp_proto::config::parse_keepalived(&text).unwrap();
    let summary: Vec<(&str, Version, bool)> = got
        .iter()
        .map(|i| {
            (
                i.name.as_str(),
                i.config.version,
                i.config.answer_lower_priority,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("V4", Version::V2, true),
            ("V6", Version::V3, true),
            ("V4v3", Version::V3, true),
            ("NOANS", Version::V2, false),
            ("ANS", Version::V2, true),
        ]
    );
    assert!(got.iter().all(|i| i.ignored.is_empty()));
    // Globals: vrrp_version 3 and vrrp_lower_prio_no_advert apply to instances that do not override.
    let text = format!(
        "global_defs {{\n vrrp_version 3\n vrrp_lower_prio_no_advert\n}}\n{}{}",
        inst("G", "192.0.2.9", ""),
        inst("O", "192.0.2.9", " version 2\n lower_prio_no_advert off"),
    );
    let got = vrrp_proto::config::parse_keepalived(&text).unwrap();
    assert_eq!(
        (got[0].config.version, got[0].config.answer_lower_priority),
        (Version::V3, false)
    );
    assert_eq!(
        (got[1].config.version, got[1].config.answer_lower_priority),
        (Version::V2, true)
    );
    let err = vrrp_proto::config::parse_keepalived(&inst(
        "B",
        "192.0.2.9",
        " lower_prio_no_advert maybe",
    ))
    .unwrap_err();
    assert_eq!(err.field, "lower_prio_no_advert");
    // The model's own constructor answers too (RFC 9568 §6.4.3 and keepalived agree).
    assert!(Config::new("eth0", 1, vec![ip("192.0.2.1")]).answer_lower_priority);
}
