//! Replays fuzz/corpus/vrrp_decode/* (the captured vectors as binary, plus a truncated one, and the
//! inputs the fuzzer kept, named by their SHA-1) through the same checks as the fuzz target: decode and re-encode, inspect, the keepalived reader, and the router with the
//! input as received and re-checksummed for its own VRID; and every value that parses re-encodes to bytes
//! that decode to an equal value.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;
use std::time::{Duration, Instant};
use vrrp_proto::config::Version;
use vrrp_proto::wire::{Checksum, Packet, Repr, checksum_modes};
use vrrp_proto::{Command, Config, Router};

/// The router part of the fuzz target: must not panic, whatever the bytes.
fn run(cfg: &Config, src: IpAddr, dst: IpAddr, bytes: &[u8]) {
    // VRID 0 is not a valid configuration: the fuzz target skips it.
    let Ok(mut r) = Router::new(cfg.clone(), IpAddr::from([192, 0, 2, 1])) else {
        assert_eq!(cfg.virtual_router_id, 0);
        return;
    };
    let t = Instant::now();
    r.handle_command(t, Command::Startup);
    let _ = r.handle_packet(t, src, dst, 255, bytes);
    while r.poll_action().is_some() {}
    for _ in 0..2 {
        if let Some(d) = r.poll_timeout() {
            r.handle_timeout(d);
        }
        while r.poll_action().is_some() {}
    }
    let _ = r.handle_packet(t + Duration::from_secs(1), src, dst, 255, bytes);
}

#[test]
fn replay_vrrp_decode_corpus() {
    let corpus = testkit::fuzz_corpus("vrrp_decode");
    let mut parsed = 0;
    let mut verified = 0;
    // The fuzzer's own finds are named by their SHA-1; the captured seeds are not.
    let generated = |p: &std::path::Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.len() == 40 && n.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    let seeds = corpus.iter().filter(|(p, _)| !generated(p)).count();
    for (path, data) in &corpus {
        let seed = !generated(path);
        let src = IpAddr::from([192, 0, 2, 2]);
        let dst = IpAddr::from([224, 0, 0, 18]);
        let mut fixed = None;
        if let Ok(p) = Packet::parse_unverified(data) {
            parsed += usize::from(seed);
            let repr = Repr::from_packet(&p);
            let out = repr.to_bytes(&Checksum::MessageOnly).unwrap();
            assert_eq!(out.len(), data.len(), "{}", path.display());
            assert_eq!(out[..6], data[..6], "{}", path.display());
            assert_eq!(out[8..], data[8..], "{}", path.display());
            // The re-encoded bytes decode to an equal value.
            let back = Packet::parse_unverified(&out).map(|q| Repr::from_packet(&q));
            assert_eq!(back.as_ref(), Ok(&repr), "{}", path.display());
            let mode = if p.version() == 2 {
                Checksum::MessageOnly
            } else {
                Checksum::PseudoHeader { src, dst }
            };
            // IPv6 messages have no IPv4 pseudo-header: skipped, as in the fuzz target.
            fixed = repr.to_bytes(&mode).ok().map(|b| {
                // Re-checksummed, a captured advert passes every receive check and is the same value
                // (the fuzz target asserts the equality whenever the checks pass).
                assert_eq!(
                    Repr::parse(&b, &mode).as_ref(),
                    Ok(&repr),
                    "{}",
                    path.display()
                );
                verified += usize::from(seed);
                (p.version(), p.vrid(), b)
            });
        }
        let _ = checksum_modes(data, src, dst);
        let _ = vrrp_proto::inspect::inspect(src, dst, data).to_json();
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = vrrp_proto::config::parse_keepalived(text);
        }
        let mut cfg = Config::new("eth0", 20, vec![IpAddr::from([10, 77, 0, 20])]);
        run(&cfg, src, dst, data);
        if let Some((version, vrid, bytes)) = fixed {
            cfg.virtual_router_id = vrid;
            if version == 2 {
                cfg.version = Version::V2;
            }
            run(&cfg, src, dst, &bytes);
        }
    }
    // Every captured vector in the corpus parses; only the deliberately truncated seed does not.
    assert_eq!(parsed, seeds - 1);
    assert!(corpus.len() > seeds, "the fuzzer's finds are replayed too");
    // The eight IPv4 adverts (two v2, six v3) round-trip through the full receive checks.
    assert_eq!(verified, 8);
}
