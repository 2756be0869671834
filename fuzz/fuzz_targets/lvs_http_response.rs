//! Fuzzes lvs-check's HTTP response judge (HTTP_GET / SSL_GET) with what a real server may send: the
//! input's first byte says how many reads to cut the rest into, the next ones where. The verdict of the
//! cut stream must equal that of one read, and nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lvs_check::config::Url;
use lvs_check::http::{HttpError, Response};

/// The verdict on `chunks` for a URL with a digest (MD5 of "hello\n") and the default status 200-299.
fn judge(chunks: &[&[u8]]) -> Result<(), HttpError> {
    let mut url = Url::new("/");
    url.digest = lvs_check::http::parse_digest("b1946ac92492d2347c6235b4d2611184");
    let mut r = Response::new(&url, 1 << 16);
    for c in chunks {
        r.feed(c)?;
    }
    r.finish(&url)
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 8).min(rest.len());
    let (sizes, stream) = rest.split_at(n);
    let mut chunks: Vec<&[u8]> = Vec::new();
    let mut left = stream;
    for &s in sizes {
        let (a, b) = left.split_at((usize::from(s) * 32).min(left.len()));
        chunks.push(a);
        left = b;
    }
    chunks.push(left);
    assert_eq!(judge(&chunks), judge(&[stream]));
});
