//! Decodes conntrackd sync datagrams: one hex UDP payload per line on stdin (as printed by
//! `tshark -T fields -e data`), one JSON object per message on stdout.
//!
//! ```text
//! tshark -r sync.pcapng -T fields -e data | cargo run -p examples --example ctsync_decode
//! ```
//!
//! Keys: `type`, `flags`, `seq`; `ack_from`/`ack_to` on ACK, NACK and RESYNC; `entry` on conntrack
//! messages; `exp` on expectation messages. A message that does not decode prints `{"error": "..."}` and
//! decoding goes on (unknown attributes are skipped, lenient mode); the exit status is non-zero only when
//! the input cannot be read (an I/O error, a line that is not UTF-8 or not hex).
//!
//! All of the logic is `ctsync_proto::json::decode_lines`, tested in ctsync-proto (`tests/vectors.rs`)
//! on the captured conntrackd traffic: cargo builds no example binary for another crate's tests, so the
//! example stays this thin wrapper.

use ctsync_proto::json::decode_lines;
use ctsync_proto::wire::Mode;
use std::process::ExitCode;

fn main() -> ExitCode {
    let stdin = std::io::stdin();
    let stdout = std::io::BufWriter::new(std::io::stdout().lock());
    match decode_lines(stdin.lock(), stdout, Mode::Lenient) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ctsync_decode: {e}");
            ExitCode::FAILURE
        }
    }
}
