//! Decode VRRP adverts for humans and scripts: what is on the wire, and is it valid?
//!
//! Reads lines `SRC DST HEX` from stdin (the IP source and destination of the carrying packet, then the
//! VRRP payload as hex; `#` comments and blank lines are skipped) and prints one JSON object per line
//! with `version`, `vrid`, `priority`, `count`, `addresses`, for VRRPv2 `auth_type`, `auth_data`,
//! `adver_int` (seconds), for VRRPv3 `max_adver_int` (centiseconds), `checksum_valid_as` (which of
//! `"pseudo-header"` and `"message-only"` the checksum satisfies), `valid` and, on error, `errors`.
//!
//! ```text
//! grep -hv '^#' vrrp-proto/tests/data/*.hex | cargo run -p examples --example vrrp_decode
//! # from a capture (tshark's raw VRRP bytes are only in its JSON output):
//! tshark -r cap.pcapng -T json -x | jq -r '.[]._source.layers | [(.ip // .ipv6) as $l
//!     | ($l["ip.src"] // $l["ipv6.src"]), ($l["ip.dst"] // $l["ipv6.dst"]), .vrrp_raw[0]] | join(" ")' \
//!     | cargo run -p examples --example vrrp_decode
//! ```
//!
//! The report and its JSON come from `vrrp_proto::inspect` (tested there on the captured keepalived
//! vectors); this program only feeds it lines. Each object is re-parsed with serde_json before printing,
//! so a malformed object would be caught here rather than by the consumer.

use std::io::{BufRead, Write};

fn main() {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    let mut status = 0;
    for line in stdin.lock().lines() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("vrrp_decode: reading stdin: {e}");
                std::process::exit(1);
            }
        };
        let Some(report) = vrrp_proto::inspect::inspect_line(&line) else {
            continue;
        };
        let json = report.to_json();
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&json) {
            eprintln!("vrrp_decode: internal error, bad JSON ({e}): {json}");
            status = 1;
        }
        // A closed pipe (`| head`) ends the program quietly.
        if writeln!(out, "{json}").is_err() {
            return;
        }
    }
    std::process::exit(status);
}
