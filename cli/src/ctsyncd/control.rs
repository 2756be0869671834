//! The control socket: a UNIX stream socket (mode 0600, `UNIX { Path }`), one request and one reply per
//! connection.
//!
//! ctsyncd's client sends one JSON line, `{"request":{"cmd":"stats","kind":"network"},"json":false}`, and
//! reads one JSON line back, `{"ok":true,"output":"...","error":""}`: `output` is what the command
//! prints (conntrackd's text, or JSON lines with `-o json`), `error` a message for stderr. A conntrackd
//! 1.4.7 client's request (a native-endian `int`, its request number) is answered the conntrackd way:
//! the text alone, then the connection closes.

use super::args::Request;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A request as it travels.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// The command.
    pub request: Request,
    /// `-o json`.
    #[serde(default)]
    pub json: bool,
}

/// A reply.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Reply {
    /// Whether the request was understood and carried out.
    pub ok: bool,
    /// What the command prints on stdout.
    pub output: String,
    /// A message for stderr (empty: none).
    #[serde(default)]
    pub error: String,
}

impl Reply {
    /// A successful reply printing `output`.
    pub fn text(output: String) -> Reply {
        Reply {
            ok: true,
            output,
            error: String::new(),
        }
    }
}

/// How a request arrived.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// ctsyncd's JSON line.
    Json(Envelope),
    /// A conntrackd client's request number.
    Conntrackd(Request),
    /// Something else: counted and answered with an error.
    Garbage(String),
}

/// Longest request line accepted.
const MAX_REQUEST: usize = 4096;

/// Reads one request from a freshly accepted connection (with a short timeout, so a silent client
/// cannot stall the daemon).
pub fn read_request(stream: &mut UnixStream) -> std::io::Result<Incoming> {
    stream.set_read_timeout(Some(Duration::from_millis(500)))?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.first() != Some(&b'{') && buf.len() >= 4 {
            break;
        }
        if buf.contains(&b'\n') || buf.len() > MAX_REQUEST {
            break;
        }
    }
    Ok(parse_request(&buf))
}

/// Classifies the bytes of one request: a JSON line, a conntrackd request number, or garbage.
pub fn parse_request(buf: &[u8]) -> Incoming {
    if buf.first() == Some(&b'{') {
        let line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
        return match serde_json::from_slice::<Envelope>(line) {
            Ok(e) => Incoming::Json(e),
            Err(e) => Incoming::Garbage(format!("bad request: {e}")),
        };
    }
    if let Some(b) = buf.get(..4) {
        let code = i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        return match Request::from_conntrackd_code(code) {
            Some(r) => Incoming::Conntrackd(r),
            None => Incoming::Garbage(format!("unknown request {code}")),
        };
    }
    Incoming::Garbage(format!("short request ({} bytes)", buf.len()))
}

/// Writes a reply in the form the request came in.
pub fn write_reply(stream: &mut UnixStream, how: &Incoming, reply: &Reply) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    match how {
        Incoming::Conntrackd(_) => {
            let _ = stream.write_all(reply.output.as_bytes());
        }
        _ => {
            let mut line = serde_json::to_vec(reply).unwrap_or_default();
            line.push(b'\n');
            let _ = stream.write_all(&line);
        }
    }
}

/// Sends a request to the daemon at `path` and waits for its reply.
pub fn request(path: &Path, request: Request, json: bool) -> std::io::Result<Reply> {
    let mut s = UnixStream::connect(path)?;
    let mut line =
        serde_json::to_vec(&Envelope { request, json }).map_err(std::io::Error::other)?;
    line.push(b'\n');
    s.write_all(&line)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    serde_json::from_slice::<Reply>(buf.trim_ascii_end()).map_err(std::io::Error::other)
}
