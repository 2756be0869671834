//! Fuzzes the receive path as the Linux driver drives it: `Instances::handle_packet` (demultiplexing by
//! VRID and family, every §7.1 check, a sync group) with the first input byte as the TTL and the rest
//! as the payload, from a peer address. Nothing may panic, and a rejected advert changes no state.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vrrp_proto::instances::fuzz_receive(data);
});
