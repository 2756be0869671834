//! Fuzzes the IPVS decoders with datagrams as the kernel sends them: every message's genetlink payload
//! must decode to a reply (and as a request) or a structured error, never panic; whatever decodes must
//! emit into `buffer_len()` bytes and decode back to the same value. The netlink message split is done
//! here (ipvs-nl keeps its framing private; its own framing is covered by the crate's proptests).
#![no_main]

use ipvs_nl::{Op, Reply};
use libfuzzer_sys::fuzz_target;

/// The payloads of the netlink messages of a datagram (16-byte headers, 4-byte alignment).
fn payloads(mut buf: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while buf.len() >= 16 {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        let Some(p) = buf.get(16..len) else { break };
        out.push(p);
        buf = buf.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    out
}

fuzz_target!(|data: &[u8]| {
    for p in payloads(data).into_iter().chain([data]) {
        if let Ok(r) = Reply::parse(p) {
            let mut buf = vec![0u8; r.buffer_len()];
            assert_eq!(r.emit(&mut buf), Ok(buf.len()));
            assert_eq!(Reply::parse(&buf).as_ref(), Ok(&r));
        }
        if let Ok(op) = Op::parse(p) {
            let mut buf = vec![0u8; op.buffer_len()];
            assert_eq!(op.emit(&mut buf), Ok(buf.len()));
            // A request leaves counters out, so compare the second encoding with the first.
            let again = Op::parse(&buf).unwrap();
            let mut buf2 = vec![0u8; again.buffer_len()];
            assert_eq!(again.emit(&mut buf2), Ok(buf2.len()));
            assert_eq!(buf2, buf);
        }
    }
});
