//! Fuzzes the VRRP decoder, the inspector, the router's receive path and the keepalived configuration
//! reader: none may panic, and whatever parses re-encodes to the same bytes (the checksum apart, which
//! depends on the mode). The router also gets the input re-checksummed, for its own VRID, so that
//! fuzzed priorities, intervals and address lists reach the state machine.
//! Replayed as a test by `vrrp-proto/tests/fuzz_corpus.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use vrrp_proto::config::Version;
use vrrp_proto::wire::{Checksum, Packet, Repr, checksum_modes};
use vrrp_proto::{Command, Config, Router};

fuzz_target!(|data: &[u8]| {
    let src = IpAddr::from([192, 0, 2, 2]);
    let dst = IpAddr::from([224, 0, 0, 18]);
    let mut fixed = None;
    if let Ok(p) = Packet::parse_unverified(data) {
        let repr = Repr::from_packet(&p);
        let out = repr
            .to_bytes(&Checksum::MessageOnly)
            .expect("buffer_len bytes");
        assert_eq!(out.len(), data.len());
        assert_eq!(out[..6], data[..6]);
        assert_eq!(out[8..], data[8..]);
        // The re-encoded bytes decode to an equal value.
        let back = Packet::parse_unverified(&out).map(|q| Repr::from_packet(&q));
        assert_eq!(back.as_ref(), Ok(&repr));
        let _ = p.addresses().count();
        let mode = if p.version() == 2 {
            Checksum::MessageOnly
        } else {
            Checksum::PseudoHeader { src, dst }
        };
        fixed = repr.to_bytes(&mode).ok().map(|b| {
            // With the right checksum, whatever passes the full receive checks is the same value.
            if let Ok(checked) = Repr::parse(&b, &mode) {
                assert_eq!(checked, repr);
            }
            (p.version(), p.vrid(), b)
        });
    }
    let _ = checksum_modes(data, src, dst);
    let _ = Repr::parse(data, &Checksum::PseudoHeader { src, dst });
    let _ = vrrp_proto::inspect::inspect(src, dst, data).to_json();
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = vrrp_proto::config::parse_keepalived(text);
    }
    let mut cfg = Config::new("eth0", 20, vec![IpAddr::from([10, 77, 0, 20])]);
    let run = |cfg: &Config, bytes: &[u8]| {
        if let Ok(mut r) = Router::new(cfg.clone(), IpAddr::from([192, 0, 2, 1])) {
            let t = Instant::now();
            r.handle_command(t, Command::Startup);
            let _ = r.handle_packet(t, src, dst, 255, bytes);
            while r.poll_action().is_some() {}
            // Let every timer the packet set fire, twice over.
            for _ in 0..2 {
                if let Some(d) = r.poll_timeout() {
                    r.handle_timeout(d);
                }
                while r.poll_action().is_some() {}
            }
            let _ = r.handle_packet(t + Duration::from_secs(1), src, dst, 255, bytes);
            while r.poll_action().is_some() {}
        }
    };
    run(&cfg, data);
    if let Some((version, vrid, bytes)) = fixed {
        if vrid != 0 {
            cfg.virtual_router_id = vrid;
            if version == 2 {
                cfg.version = Version::V2;
            }
            run(&cfg, &bytes);
        }
    }
});
