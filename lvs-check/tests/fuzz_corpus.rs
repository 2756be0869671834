//! Replays the `lvs_http_response` fuzz corpus (`fuzz/corpus/lvs_http_response/*`) with the fuzz
//! target's check: the stream cut into reads as the input's first bytes say gets the verdict of one
//! read. Each hand-made seed's name starts with the verdict it must get (`ok`, `digest`, `status`,
//! `nodata`, `header`, `body`), so the replay also proves the seeds mean what they say.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use lvs_check::http::{HttpError, fuzz_verdicts};

#[test]
fn replay_lvs_http_response_corpus() {
    for (path, data) in testkit::fuzz_corpus("lvs_http_response") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (cut, verdict, reads) = fuzz_verdicts(&data);
        assert_eq!(cut, verdict, "{name}: cut into {reads} reads");
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
