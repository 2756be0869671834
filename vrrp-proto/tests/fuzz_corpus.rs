//! Replays fuzz/corpus/vrrp_decode/* (the captured vectors as binary, plus a truncated one) through the same
//! checks as the fuzz target.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;
use vrrp_proto::wire::{Checksum, Packet, Repr, checksum_modes};

#[test]
fn replay_vrrp_decode_corpus() {
    let corpus = testkit::fuzz_corpus("vrrp_decode");
    let mut parsed = 0;
    for (path, data) in &corpus {
        let src = IpAddr::from([192, 0, 2, 2]);
        let dst = IpAddr::from([224, 0, 0, 18]);
        if let Ok(p) = Packet::parse_unverified(data) {
            parsed += 1;
            let out = Repr::from_packet(&p)
                .to_bytes(&Checksum::MessageOnly)
                .unwrap();
            assert_eq!(out[..6], data[..6], "{}", path.display());
            assert_eq!(out[8..], data[8..], "{}", path.display());
        }
        let _ = checksum_modes(data, src, dst);
        let _ = vrrp_proto::inspect::inspect(src, dst, data).to_json();
    }
    // Every captured vector in the corpus parses; only the deliberately truncated seed does not.
    assert_eq!(parsed, corpus.len() - 1);
}
