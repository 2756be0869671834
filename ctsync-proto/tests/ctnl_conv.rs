//! Conversion to and from `ctnl::Entry` (`cargo test -p ctsync-proto --test ctnl_conv`): every
//! conntrack entry captured from conntrackd survives `to_ctnl` then `from_ctnl` unchanged, and the reply
//! tuple carries the NAT translation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ctsync_proto::wire::{Body, Mode, messages};
use std::net::IpAddr;

#[test]
fn captured_entries_roundtrip_through_ctnl() {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ftfw_capture.hex");
    let mut n = 0;
    let mut nat = 0;
    for line in std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let d: Vec<u8> = (0..line.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&line[i..i + 2], 16).unwrap())
            .collect();
        for m in messages(&d, Mode::Strict) {
            let Body::Ct(_, e) = m.unwrap().body else {
                continue;
            };
            let c = e.to_ctnl().unwrap();
            assert_eq!(ctsync_proto::wire::CtEntry::from_ctnl(&c).unwrap(), e);
            let (o, r) = (c.orig.as_ref().unwrap(), c.reply.as_ref().unwrap());
            if let Some(s) = e.snat_ipv4 {
                assert_eq!(r.dst, IpAddr::V4(s));
                assert_eq!(r.src, o.dst);
                nat += 1;
            }
            if let Some(d) = e.dnat_ipv4 {
                assert_eq!(r.src, IpAddr::V4(d));
                assert_eq!(
                    r.l4,
                    ctnl::L4::Ports {
                        src: e.dnat_port.unwrap(),
                        dst: e.ports.unwrap().sport
                    }
                );
                nat += 1;
            }
            if e.l4proto == Some(1) {
                assert!(
                    matches!(r.l4, ctnl::L4::Icmp { kind: 0, .. }),
                    "echo reply in the reply tuple"
                );
            }
            n += 1;
        }
    }
    assert!(n >= 20 && nat >= 2);
}
