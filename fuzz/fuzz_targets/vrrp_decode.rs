//! Fuzzes the VRRP decoder, the inspector and the router's receive path: none may panic, and whatever
//! parses re-encodes to the same bytes (the checksum apart, which depends on the mode).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;
use std::time::Instant;
use vrrp_proto::wire::{Checksum, Packet, Repr, checksum_modes};

fuzz_target!(|data: &[u8]| {
    let src = IpAddr::from([192, 0, 2, 2]);
    let dst = IpAddr::from([224, 0, 0, 18]);
    if let Ok(p) = Packet::parse_unverified(data) {
        let repr = Repr::from_packet(&p);
        let out = repr.to_bytes(&Checksum::MessageOnly).expect("buffer_len bytes");
        assert_eq!(out.len(), data.len());
        assert_eq!(out[..6], data[..6]);
        assert_eq!(out[8..], data[8..]);
        let _ = p.addresses().count();
    }
    let _ = checksum_modes(data, src, dst);
    let _ = Repr::parse(data, &Checksum::PseudoHeader { src, dst });
    let _ = vrrp_proto::inspect::inspect(src, dst, data).to_json();
    let cfg = vrrp_proto::Config::new("eth0", 20, vec![IpAddr::from([10, 77, 0, 20])]);
    if let Ok(mut r) = vrrp_proto::Router::new(cfg, IpAddr::from([192, 0, 2, 1])) {
        let t = Instant::now();
        r.handle_command(t, vrrp_proto::Command::Startup);
        let _ = r.handle_packet(t, src, dst, 255, data);
        while r.poll_action().is_some() {}
    }
});
