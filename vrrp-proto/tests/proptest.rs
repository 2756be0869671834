//! proptest round trips for the codec, and "never panics" for the decoder, the inspector and the router.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;
use vrrp_proto::wire::{Addresses, AuthType, Body, Checksum, Packet, Repr, checksum_modes};
use vrrp_proto::{Command, Config, Router};

fn auth_type() -> impl Strategy<Value = AuthType> {
    prop_oneof![
        Just(AuthType::None),
        Just(AuthType::SimpleText),
        (3u8..=255).prop_map(AuthType::Unknown)
    ]
}

fn v4s(min: usize) -> impl Strategy<Value = Vec<Ipv4Addr>> {
    prop::collection::vec(any::<u32>().prop_map(Ipv4Addr::from), min..20)
}

fn v6s() -> impl Strategy<Value = Vec<Ipv6Addr>> {
    prop::collection::vec(any::<u128>().prop_map(Ipv6Addr::from), 1..12)
}

/// Any valid message with the checksum mode to emit and parse it with.
fn message() -> impl Strategy<Value = (Repr, Checksum)> {
    let v2 = (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        auth_type(),
        any::<[u8; 8]>(),
        v4s(0),
    )
        .prop_map(|(vrid, priority, adver_int, auth_type, auth_data, a)| {
            let r = Repr {
                vrid,
                priority,
                body: Body::V2 {
                    adver_int,
                    auth_type,
                    auth_data,
                },
                addresses: Addresses::V4(a),
            };
            (r, Checksum::MessageOnly)
        });
    let v3_4 = (
        any::<u8>(),
        any::<u8>(),
        0u16..4096,
        0u8..16,
        v4s(1),
        any::<[u32; 2]>(),
        any::<bool>(),
    )
        .prop_map(
            |(vrid, priority, max_adver_int, reserved, a, [s, d], pseudo)| {
                let r = Repr {
                    vrid,
                    priority,
                    body: Body::V3 {
                        max_adver_int,
                        reserved,
                    },
                    addresses: Addresses::V4(a),
                };
                let mode = if pseudo {
                    Checksum::PseudoHeader {
                        src: IpAddr::V4(s.into()),
                        dst: IpAddr::V4(d.into()),
                    }
                } else {
                    Checksum::MessageOnly
                };
                (r, mode)
            },
        );
    let v3_6 = (
        any::<u8>(),
        any::<u8>(),
        0u16..4096,
        0u8..16,
        v6s(),
        any::<[u128; 2]>(),
    )
        .prop_map(|(vrid, priority, max_adver_int, reserved, a, [s, d])| {
            let r = Repr {
                vrid,
                priority,
                body: Body::V3 {
                    max_adver_int,
                    reserved,
                },
                addresses: Addresses::V6(a),
            };
            (
                r,
                Checksum::PseudoHeader {
                    src: IpAddr::V6(s.into()),
                    dst: IpAddr::V6(d.into()),
                },
            )
        });
    prop_oneof![v2, v3_4, v3_6]
}

proptest! {
    #[test]
    fn repr_round_trips((repr, mode) in message()) {
        let mut buf = vec![0u8; repr.buffer_len()];
        prop_assert_eq!(repr.emit(&mut buf, &mode).unwrap(), buf.len());
        let back = Repr::parse(&buf, &mode).unwrap();
        prop_assert_eq!(&back, &repr);
        // The checksum satisfies the mode it was emitted in.
        if let Checksum::PseudoHeader { src, dst } = mode {
            prop_assert!(checksum_modes(&buf, src, dst).pseudo_header);
        } else {
            prop_assert!(Packet::parse(&buf, &Checksum::MessageOnly).is_ok());
        }
        // A short buffer is an error, not a panic.
        let mut short = vec![0u8; repr.buffer_len() - 1];
        prop_assert!(repr.emit(&mut short, &mode).is_err());
    }

    #[test]
    fn any_bytes_reencode_identically_but_the_checksum(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(p) = Packet::parse_unverified(&bytes) {
            let repr = Repr::from_packet(&p);
            let out = repr.to_bytes(&Checksum::MessageOnly).unwrap();
            prop_assert_eq!(out.len(), bytes.len());
            prop_assert_eq!(&out[..6], &bytes[..6]);
            prop_assert_eq!(&out[8..], &bytes[8..]);
        }
        let _ = checksum_modes(&bytes, IpAddr::from([10, 0, 0, 1]), IpAddr::from([224, 0, 0, 18]));
        let _ = vrrp_proto::inspect::inspect(IpAddr::from([10, 0, 0, 1]), IpAddr::from([224, 0, 0, 18]), &bytes).to_json();
    }

    #[test]
    fn v3_headers_with_valid_shape_parse(vrid: u8, prio: u8, n in 1usize..30, fill: u8) {
        let mut bytes = vec![fill; 8 + 4 * n];
        bytes[0] = 0x31;
        bytes[1] = vrid;
        bytes[2] = prio;
        bytes[3] = u8::try_from(n).unwrap();
        prop_assert!(Packet::parse_unverified(&bytes).is_ok());
    }

    #[test]
    fn router_survives_any_packet(bytes in prop::collection::vec(any::<u8>(), 0..120), ttl: u8) {
        let mut r = Router::new(Config::new("eth0", 7, vec![IpAddr::from([192, 0, 2, 100])]), IpAddr::from([192, 0, 2, 1])).unwrap();
        let t = Instant::now();
        r.handle_command(t, Command::Startup);
        let _ = r.handle_packet(t, IpAddr::from([192, 0, 2, 2]), IpAddr::from([224, 0, 0, 18]), ttl, &bytes);
        while r.poll_action().is_some() {}
    }

    #[test]
    fn keepalived_reader_never_panics(words in prop::collection::vec(prop_oneof![
        Just("{".to_owned()), Just("}".to_owned()), Just("\n".to_owned()), Just("vrrp_instance".to_owned()),
        Just("virtual_ipaddress".to_owned()), Just("unicast_peer".to_owned()), Just("track_script".to_owned()),
        Just("authentication".to_owned()), Just("auth_pass".to_owned()), Just("weight".to_owned()),
        Just("global_defs".to_owned()), Just("vrrp_version".to_owned()), Just("priority".to_owned()),
        Just("advert_int".to_owned()), Just("# c".to_owned()), "[a-z0-9./:]{0,12}",
    ], 0..60)) {
        let text = words.join(" ");
        let _ = vrrp_proto::config::parse_keepalived(&text);
    }
}
