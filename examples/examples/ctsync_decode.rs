//! Decodes conntrackd sync datagrams: one hex UDP payload per line on stdin (as printed by
//! `tshark -T fields -e data`), one JSON object per message on stdout.
//!
//! ```text
//! tshark -r sync.pcapng -T fields -e data | cargo run -p examples --example ctsync_decode
//! ```
//!
//! A datagram that does not decode prints `{"error": "..."}` for the failing message and decoding goes on;
//! the exit status is non-zero only when the input cannot be read (I/O error or a line that is not hex).

use ctsync_proto::wire::{Mode, messages};
use std::io::{BufRead, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut json = String::new();
    for (n, line) in stdin.lock().lines().enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("ctsync_decode: cannot read stdin: {e}");
                return ExitCode::FAILURE;
            }
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let data = match hex::decode(line) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("ctsync_decode: line {}: not hex: {e}", n + 1);
                return ExitCode::FAILURE;
            }
        };
        for m in messages(&data, Mode::Lenient) {
            json.clear();
            match m {
                Ok(m) => ctsync_proto::json::write_message(&mut json, &m),
                Err(e) => json.push_str(&format!(
                    "{{\"error\":{}}}",
                    serde_json::Value::from(e.to_string())
                )),
            }
            if writeln!(out, "{json}").is_err() {
                // Broken pipe (`| head`): stop quietly.
                return ExitCode::SUCCESS;
            }
        }
    }
    let _ = out.flush();
    ExitCode::SUCCESS
}
