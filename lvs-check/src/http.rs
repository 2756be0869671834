//! HTTP_GET / SSL_GET without I/O: the request keepalived sends, and the evaluation of the response
//! bytes (status code, `Content-Length`, MD5 of the body), as `check_http.c` and `lib/html.c` do.

use crate::config::{HttpProtocol, Url};
use md5::{Digest, Md5};

/// keepalived reads the status line and headers into a 4096-byte buffer (`MAX_BUFFER_LENGTH`): headers
/// whose blank line ends past `MAX_HEADER + 1` bytes fail, however the bytes arrive.
pub const MAX_HEADER: usize = 4095;

/// The request for `path` (keepalived's `request_template`): `host` is the virtual host, or the
/// address with `:port` (IPv6 in brackets) when there is none.
pub fn request(path: &str, protocol: HttpProtocol, host: &str) -> Vec<u8> {
    let (minor, close) = match protocol {
        HttpProtocol::Http10 => (0, ""),
        HttpProtocol::Http10Close => (0, "Connection: close\r\n"),
        HttpProtocol::Http11 => (1, "Connection: close\r\n"),
    };
    format!(
        "GET {path} HTTP/1.{minor}\r\nUser-Agent: KeepAliveClient\r\n{close}Host: {host}\r\n\r\n"
    )
    .into_bytes()
}

/// Why an HTTP check failed (the text is keepalived's log wording where it has one).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpError {
    /// The connection closed before the end of the headers.
    NoData,
    /// The headers did not fit keepalived's buffer.
    HeaderTooLong,
    /// A status code outside the accepted set.
    Status(u16),
    /// The body's MD5 differs.
    Digest {
        /// What the body hashed to.
        got: [u8; 16],
    },
    /// More body than the configured limit.
    BodyTooLarge(usize),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::NoData => f.write_str("Read, no data received"),
            HttpError::HeaderTooLong => write!(f, "HTTP header over {MAX_HEADER} bytes"),
            HttpError::Status(c) => write!(f, "HTTP status code error ({c})"),
            HttpError::Digest { got } => {
                f.write_str("MD5 digest error (got ")?;
                for b in got {
                    write!(f, "{b:02x}")?;
                }
                f.write_str(")")
            }
            HttpError::BodyTooLarge(n) => write!(f, "response body over {n} bytes"),
        }
    }
}

/// A response being received: feed it the bytes read, then [`Response::finish`] at end of stream.
#[derive(Debug)]
pub struct Response {
    head: Vec<u8>,
    /// Status and content length, once the headers ended.
    parsed: Option<(u16, Option<usize>)>,
    body: usize,
    md5: Option<Md5>,
    max_body: usize,
}

impl Response {
    /// A response to a request for `url` (the digest is computed only when the URL has one);
    /// more than `max_body` body bytes is an error.
    pub fn new(url: &Url, max_body: usize) -> Self {
        Response {
            head: Vec::with_capacity(1024),
            parsed: None,
            body: 0,
            md5: url.digest.map(|_| Md5::new()),
            max_body,
        }
    }

    fn body_bytes(&mut self, mut data: &[u8]) -> Result<(), HttpError> {
        let Some((_, clen)) = self.parsed else {
            return Ok(());
        };
        // keepalived hashes at most Content-Length bytes, and reads on to the end of the stream.
        if let Some(n) = clen {
            let left = n.saturating_sub(self.body);
            let take = data.len().min(left);
            if let Some(m) = &mut self.md5 {
                m.update(&data[..take]);
            }
            self.body += data.len();
            data = &[];
        }
        if !data.is_empty() {
            if let Some(m) = &mut self.md5 {
                m.update(data);
            }
            self.body += data.len();
        }
        if self.body > self.max_body {
            return Err(HttpError::BodyTooLarge(self.max_body));
        }
        Ok(())
    }

    /// Takes the next bytes of the stream.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), HttpError> {
        if self.parsed.is_some() {
            return self.body_bytes(data);
        }
        let before = self.head.len();
        self.head.extend_from_slice(data);
        // Look for the end of the headers from a little before the new bytes.
        let from = before.saturating_sub(3);
        if let Some(i) = find(&self.head[from..], b"\r\n\r\n") {
            let end = from + i + 4;
            // The same limit as when the bytes come one by one (then the length check below fires
            // first), so that the verdict never depends on how the stream was cut into reads.
            if end > MAX_HEADER + 1 {
                return Err(HttpError::HeaderTooLong);
            }
            let header = &self.head[..end];
            self.parsed = Some((status_code(header), content_length(header)));
            let rest = self.head.split_off(end);
            self.body_bytes(&rest)
        } else if self.head.len() > MAX_HEADER {
            Err(HttpError::HeaderTooLong)
        } else {
            Ok(())
        }
    }

    /// The end of the stream: judges the response against `url`.
    pub fn finish(self, url: &Url) -> Result<(), HttpError> {
        let Some((status, _)) = self.parsed else {
            return Err(HttpError::NoData);
        };
        if !url.status.contains(status) {
            return Err(HttpError::Status(status));
        }
        if let (Some(want), Some(m)) = (url.digest, self.md5) {
            let got: [u8; 16] = m.finalize().into();
            if got != want {
                return Err(HttpError::Digest { got });
            }
        }
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `extract_status_code`: the three digits after the first space of the status line, followed by a
/// space; 0 otherwise.
pub fn status_code(header: &[u8]) -> u16 {
    let Some(sp) = header.iter().position(|&b| b == b' ' || b == b'\r') else {
        return 0;
    };
    if header[sp] != b' ' {
        return 0;
    }
    let rest = &header[sp + 1..];
    match rest {
        [a, b, c, b' ', ..] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => 0,
    }
}

/// `extract_content_length`: `Content-Length:` (case as written), optional blanks, digits, then end
/// of line; `None` when absent or malformed.
pub fn content_length(header: &[u8]) -> Option<usize> {
    const TAG: &[u8] = b"Content-Length:";
    let i = find(header, TAG)? + TAG.len();
    let rest = &header[i..];
    let start = rest.iter().position(|b| !matches!(b, b' ' | b'\t'))?;
    let digits: &[u8] = &rest[start..];
    let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    match digits.get(n) {
        None | Some(b'\r' | b'\n') => std::str::from_utf8(&digits[..n]).ok()?.parse().ok(),
        _ => None,
    }
}

/// The hex form of a digest (`genhash` output, `digest` keyword).
pub fn digest_hex(d: &[u8; 16]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses the `digest` keyword's 32 hex digits.
pub fn parse_digest(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// What the `lvs_http_response` fuzz target checks, shared with its corpus replay
/// (`tests/fuzz_corpus.rs`). The input's first byte says how many reads to cut the rest into (up to
/// 7), the next bytes where (32 bytes a unit); the rest is the server's stream. Returns the verdict on
/// the stream fed in those reads, the verdict on it fed in one read, and the number of reads, for a
/// URL with a digest (MD5 of "hello\n"), the default statuses 200-299 and bodies up to 64 KiB. The
/// two verdicts must be equal.
#[doc(hidden)]
pub fn fuzz_verdicts(data: &[u8]) -> (Result<(), HttpError>, Result<(), HttpError>, usize) {
    let judge = |chunks: &[&[u8]]| -> Result<(), HttpError> {
        let mut url = Url::new("/");
        url.digest = parse_digest("b1946ac92492d2347c6235b4d2611184");
        let mut r = Response::new(&url, 1 << 16);
        for c in chunks {
            r.feed(c)?;
        }
        r.finish(&url)
    };
    let (n, rest) = data.split_first().map_or((0, data), |(&n, r)| (n, r));
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
    (judge(&chunks), judge(&[stream]), chunks.len())
}

/// The MD5 of `body`, as keepalived's `digest` expects.
pub fn md5(body: &[u8]) -> [u8; 16] {
    Md5::digest(body).into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn url(digest: Option<&str>) -> Url {
        let mut u = Url::new("/");
        u.digest = digest.map(|d| parse_digest(d).unwrap());
        u
    }

    fn judge(u: &Url, chunks: &[&[u8]]) -> Result<(), HttpError> {
        let mut r = Response::new(u, 1 << 20);
        for c in chunks {
            r.feed(c)?;
        }
        r.finish(u)
    }

    #[test]
    fn request_is_keepalived_template() {
        assert_eq!(
            request("/index.html", HttpProtocol::Http10, "10.0.0.2:80"),
            b"GET /index.html HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 10.0.0.2:80\r\n\r\n"
        );
        assert_eq!(
            request("/", HttpProtocol::Http11, "[2001:db8::2]:8080"),
            b"GET / HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: [2001:db8::2]:8080\r\n\r\n"
        );
    }

    #[test]
    fn status_digest_and_content_length() {
        // md5("hello\n") = b1946ac92492d2347c6235b4d2611184 (as `echo hello | md5sum`).
        let d = "b1946ac92492d2347c6235b4d2611184";
        assert_eq!(digest_hex(&md5(b"hello\n")), d);
        let u = url(Some(d));
        let ok: &[u8] = b"HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nhello\n";
        assert_eq!(judge(&u, &[ok]), Ok(()));
        // Split anywhere, the result is the same.
        for i in 0..ok.len() {
            assert_eq!(judge(&u, &[&ok[..i], &ok[i..]]), Ok(()), "split at {i}");
        }
        // Bytes past Content-Length are read but not hashed.
        assert_eq!(
            judge(
                &u,
                &[b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello\ntrailing"]
            ),
            Ok(())
        );
        assert!(matches!(
            judge(&u, &[b"HTTP/1.0 200 OK\r\n\r\nhello!"]),
            Err(HttpError::Digest { .. })
        ));
        assert_eq!(
            judge(&u, &[b"HTTP/1.0 503 Busy\r\n\r\nhello\n"]),
            Err(HttpError::Status(503))
        );
        assert_eq!(judge(&u, &[b"HTTP/1.0 200 OK\r\n"]), Err(HttpError::NoData));
        assert_eq!(judge(&u, &[]), Err(HttpError::NoData));
        assert_eq!(judge(&u, &[b"garbage\r\n\r\n"]), Err(HttpError::Status(0)));
        let mut any = url(None);
        any.status = crate::config::StatusCodes::empty();
        any.status.insert_range(301, 302);
        assert_eq!(judge(&any, &[b"HTTP/1.0 302 Found\r\n\r\n"]), Ok(()));
        assert_eq!(
            judge(&any, &[b"HTTP/1.0 200 OK\r\n\r\n"]),
            Err(HttpError::Status(200))
        );
    }

    proptest::proptest! {
        /// However a response is cut into reads, the verdict is the one of a single read, and nothing
        /// panics (the fuzz target `lvs_http_response` checks the same on any bytes).
        #[test]
        fn verdict_does_not_depend_on_how_the_stream_is_cut(
            head in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            status in 100u16..600,
            clen in proptest::option::of(0usize..16),
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24),
            pad in 0usize..5000,
            cuts in proptest::collection::vec(0usize..5200, 0..6),
        ) {
            let mut stream = head;
            stream.extend_from_slice(format!("HTTP/1.0 {status} X\r\n").as_bytes());
            if let Some(n) = clen {
                stream.extend_from_slice(format!("Content-Length: {n}\r\n").as_bytes());
            }
            stream.extend_from_slice(format!("X-Pad: {}\r\n\r\n", "p".repeat(pad)).as_bytes());
            stream.extend_from_slice(&body);
            let u = url(Some("b1946ac92492d2347c6235b4d2611184"));
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(stream.len())).collect();
            cuts.sort_unstable();
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut at = 0;
            for c in cuts.into_iter().chain([stream.len()]) {
                chunks.push(&stream[at..c]);
                at = c;
            }
            proptest::prop_assert_eq!(judge(&u, &chunks), judge(&u, &[&stream]));
        }
    }

    #[test]
    fn limits() {
        let u = url(None);
        let big = vec![b'x'; MAX_HEADER + 10];
        assert_eq!(judge(&u, &[&big]), Err(HttpError::HeaderTooLong));
        // The blank line may end the 4096th byte, not the 4097th, in one read or in many.
        for (len, ok) in [(MAX_HEADER + 1, true), (MAX_HEADER + 2, false)] {
            let mut h = b"HTTP/1.0 200 OK\r\nX: ".to_vec();
            h.resize(len - 4, b'x');
            h.extend_from_slice(b"\r\n\r\n");
            let bytes: Vec<&[u8]> = h.chunks(1).collect();
            for chunks in [vec![h.as_slice()], bytes] {
                let want = if ok {
                    Ok(())
                } else {
                    Err(HttpError::HeaderTooLong)
                };
                assert_eq!(
                    judge(&u, &chunks),
                    want,
                    "{len} bytes in {} reads",
                    chunks.len()
                );
            }
        }
        let mut r = Response::new(&u, 100);
        r.feed(b"HTTP/1.0 200 OK\r\n\r\n").unwrap();
        r.feed(&[0u8; 100]).unwrap();
        assert_eq!(r.feed(&[0u8; 1]), Err(HttpError::BodyTooLarge(100)));
        assert_eq!(content_length(b"Content-Length: 12x\r\n"), None);
        assert_eq!(content_length(b"content-length: 12\r\n"), None);
        assert_eq!(status_code(b"HTTP/1.0 2000 OK"), 0);
        assert_eq!(parse_digest("zz"), None);
    }
}
