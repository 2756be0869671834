//! Fuzzes the IPVS reply decoder: any datagram must decode to values or structured errors, never panic,
//! and every decoded reply must re-encode to bytes that decode to an equal reply.
//! Replayed as a test by `ipvs-nl/tests/fuzz_corpus.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for m in ipvs_nl::wire::decode_datagram(data, 0x1c, ipvs_nl::wire::AF_INET) {
        if let Ok(ipvs_nl::wire::Decoded::Reply { reply, .. }) = m {
            let again = ipvs_nl::wire::Reply::parse(&reply.emit(), ipvs_nl::wire::AF_INET);
            assert_eq!(again.as_ref(), Ok(&reply));
        }
    }
});
