//! Replays the `lvs_http_response` fuzz corpus (`fuzz/corpus/lvs_http_response/*`) with the fuzz
//! target's check: the stream cut into reads as the input's first bytes say gets the verdict of one
//! read. Each hand-made seed's name starts with the verdict it must get (`ok`, `digest`, `status`,
//! `nodata`, `header`, `body`), so the replay also proves the seeds mean what they say.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use lvs_check::config::Url;
use lvs_check::http::{HttpError, Response};

/// The verdict on `chunks` for a URL with a digest (MD5 of "hello\n") and the default status 200-299,
/// bodies up to 64 KiB (as the fuzz target).
fn judge(chunks: &[&[u8]]) -> Result<(), HttpError> {
    let mut url = Url::new("/");
    url.digest = lvs_check::http::parse_digest("b1946ac92492d2347c6235b4d2611184");
    let mut r = Response::new(&url, 1 << 16);
    for c in chunks {
        r.feed(c)?;
    }
    r.finish(&url)
}

/// The fuzz target's reading of an input: `(reads, whole stream)`.
fn cut(data: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return (vec![], &[]);
    };
    let n = usize::from(n % 8).min(rest.len());
    let (sizes, stream) = rest.split_at(n);
    let mut chunks = Vec::new();
    let mut left = stream;
    for &s in sizes {
        let (a, b) = left.split_at((usize::from(s) * 32).min(left.len()));
        chunks.push(a);
        left = b;
    }
    chunks.push(left);
    (chunks, stream)
}

#[test]
fn replay_lvs_http_response_corpus() {
    for (path, data) in testkit::fuzz_corpus("lvs_http_response") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (chunks, stream) = cut(&data);
        let verdict = judge(&[stream]);
        assert_eq!(
            judge(&chunks),
            verdict,
            "{name}: cut into {} reads",
            chunks.len()
        );
        let kind = match &verdict {
            Ok(()) => "ok",
            Err(HttpError::Digest { .. }) => "digest",
            Err(HttpError::Status(_)) => "status",
            Err(HttpError::NoData) => "nodata",
            Err(HttpError::HeaderTooLong) => "header",
            Err(HttpError::BodyTooLarge(_)) => "body",
            // HttpError may grow (non_exhaustive): a new kind names no seed yet.
            Err(_) => "other",
        };
        // Inputs libfuzzer adds are named by their hash: only the hand-made seeds name a verdict.
        if name.contains('_') {
            assert!(name.starts_with(kind), "{name}: {verdict:?}");
        }
    }
}
