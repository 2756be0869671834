//! Fuzzes lvs-check's HTTP response judge (HTTP_GET / SSL_GET) with what a real server may send: the
//! input's first byte says how many reads to cut the rest into, the next ones where. The verdict of the
//! cut stream must equal that of one read, and nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (cut, whole, _) = lvs_check::http::fuzz_verdicts(data);
    assert_eq!(cut, whole);
});
