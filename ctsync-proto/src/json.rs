//! One JSON object per message, as printed by `examples/ctsync_decode` (hand-written: the output has only
//! numbers, address strings and flag names, so no serializer is needed).
//!
//! Keys: `type` (`ct_new`, `ct_upd`, `ct_del`, `exp_new`, `exp_upd`, `exp_del`, `ctl`), `flags` (a list of
//! `resync`, `nack`, `ack`, `alive`, `hello`, `hello_back`), `seq`; `ack_from` and `ack_to` for control
//! messages whose header carries a range (ACK, NACK, RESYNC); `entry` for conntrack messages, with `src`,
//! `dst`, `l4proto`, `sport`, `dport`, `icmp_type`, `icmp_code`, `icmp_id`, `status`, `timeout`, `mark`,
//! `zone` and `tcp_state` where present. Expectation messages carry `exp` (see [`write_exp`]). A message
//! that does not decode is printed as `{"error":"..."}`.
//!
//! [`decode_lines`] is the whole of `examples/ctsync_decode` (the example only hands it stdin and stdout),
//! so the tests that run it on the captured vectors test the example's behaviour, exit status included.

use crate::wire::{
    AddrPair, Body, Change, CtEntry, ExpEntry, Message, Mode, PortPair, messages, msg_type,
};
use std::fmt::Write;
use std::io::BufRead;

/// Why [`decode_lines`] stopped: the input could not be read. The example exits non-zero only for these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// Reading failed (including a line that is not UTF-8).
    #[error("cannot read input: {0}")]
    Io(#[from] std::io::Error),
    /// A line is not an even number of hex digits.
    #[error("line {line}: not hex ({reason})")]
    NotHex {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Decodes one hex datagram per line (as printed by `tshark -T fields -e data`; blank lines are skipped)
/// and writes one JSON object per message, one per line. A datagram that does not decode prints an
/// `{"error":...}` line for the failing message and decoding goes on, as conntrackd's receive loop would
/// ([`messages`]). Stops with an error only when the input cannot be read or a line is not hex; a failed
/// write (a closed pipe, `| head`) ends the output quietly with `Ok`.
pub fn decode_lines<R: BufRead, W: std::io::Write>(
    input: R,
    mut out: W,
    mode: Mode,
) -> Result<(), InputError> {
    let mut json = String::with_capacity(512);
    let mut data = Vec::with_capacity(2048);
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        unhex(line, &mut data).map_err(|reason| InputError::NotHex {
            line: n + 1,
            reason,
        })?;
        for m in messages(&data, mode) {
            json.clear();
            match m {
                Ok(m) => write_message(&mut json, &m),
                Err(e) => {
                    json.push_str("{\"error\":");
                    write_str(&mut json, &e.to_string());
                    json.push('}');
                }
            }
            json.push('\n');
            if out.write_all(json.as_bytes()).is_err() {
                return Ok(());
            }
        }
    }
    let _ = out.flush();
    Ok(())
}

fn unhex(s: &str, out: &mut Vec<u8>) -> Result<(), &'static str> {
    out.clear();
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return Err("odd number of digits");
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err("a character that is not a hex digit"),
    };
    for pair in b.chunks_exact(2) {
        out.push(digit(pair[0])? << 4 | digit(pair[1])?);
    }
    Ok(())
}

/// Appends `s` as a JSON string literal.
fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The `type` name of a message.
pub fn type_name(m: &Message) -> &'static str {
    match &m.body {
        Body::Ct(Change::New, _) => "ct_new",
        Body::Ct(Change::Update, _) => "ct_upd",
        Body::Ct(Change::Delete, _) => "ct_del",
        Body::Exp(Change::New, _) => "exp_new",
        Body::Exp(Change::Update, _) => "exp_upd",
        Body::Exp(Change::Delete, _) => "exp_del",
        Body::Ctl { .. } => "ctl",
    }
}

/// Appends the JSON object of `m` (no trailing newline) to `out`.
pub fn write_message(out: &mut String, m: &Message) {
    let _ = write!(out, "{{\"type\":\"{}\",\"flags\":[", type_name(m));
    for (i, n) in m.flags.names().enumerate() {
        let _ = write!(out, "{}\"{n}\"", if i > 0 { "," } else { "" });
    }
    let _ = write!(out, "],\"seq\":{}", m.seq);
    match &m.body {
        Body::Ctl { from, to } if m.flags.has_range() && m.msg_type() == msg_type::CTL => {
            let _ = write!(out, ",\"ack_from\":{from},\"ack_to\":{to}");
        }
        Body::Ct(_, e) => {
            out.push_str(",\"entry\":");
            write_entry(out, e);
        }
        Body::Exp(_, e) => {
            out.push_str(",\"exp\":");
            write_exp(out, e);
        }
        Body::Ctl { .. } => {}
    }
    out.push('}');
}

/// The JSON object of `m`.
pub fn message(m: &Message) -> String {
    let mut s = String::with_capacity(256);
    write_message(&mut s, m);
    s
}

/// Appends the `entry` object of a conntrack message.
pub fn write_entry(out: &mut String, e: &CtEntry) {
    out.push('{');
    let mut first = true;
    let mut key = |out: &mut String, k: &str| {
        let _ = write!(out, "{}\"{k}\":", if first { "" } else { "," });
        first = false;
    };
    if let Some(a) = e.addrs {
        key(out, "src");
        let _ = write!(out, "\"{}\"", a.src());
        key(out, "dst");
        let _ = write!(out, "\"{}\"", a.dst());
    }
    let nums: [(&str, Option<u64>); 11] = [
        ("l4proto", e.l4proto.map(u64::from)),
        ("sport", e.ports.map(|p| u64::from(p.sport))),
        ("dport", e.ports.map(|p| u64::from(p.dport))),
        ("icmp_type", e.icmp_type.map(u64::from)),
        ("icmp_code", e.icmp_code.map(u64::from)),
        ("icmp_id", e.icmp_id.map(u64::from)),
        ("status", e.status.map(|s| u64::from(s.bits()))),
        ("timeout", e.timeout.map(u64::from)),
        ("mark", e.mark.map(u64::from)),
        ("zone", e.zone.map(u64::from)),
        ("tcp_state", e.tcp_state.map(u64::from)),
    ];
    for (k, v) in nums {
        if let Some(v) = v {
            key(out, k);
            let _ = write!(out, "{v}");
        }
    }
    out.push('}');
}

/// Writes `"key":` with a leading comma after the first key of an object.
struct Keys {
    first: bool,
}

impl Keys {
    fn new(out: &mut String) -> Self {
        out.push('{');
        Keys { first: true }
    }
    fn key(&mut self, out: &mut String, k: &str) {
        let _ = write!(out, "{}\"{k}\":", if self.first { "" } else { "," });
        self.first = false;
    }
    fn num(&mut self, out: &mut String, k: &str, v: Option<impl Into<u64>>) {
        if let Some(v) = v {
            self.key(out, k);
            let _ = write!(out, "{}", v.into());
        }
    }
}

fn write_tuple(out: &mut String, a: Option<AddrPair>, l4: Option<u8>, p: Option<PortPair>) {
    let mut k = Keys::new(out);
    if let Some(a) = a {
        k.key(out, "src");
        let _ = write!(out, "\"{}\"", a.src());
        k.key(out, "dst");
        let _ = write!(out, "\"{}\"", a.dst());
    }
    k.num(out, "l4proto", l4);
    k.num(out, "sport", p.map(|p| p.sport));
    k.num(out, "dport", p.map(|p| p.dport));
    out.push('}');
}

/// Appends the `exp` object of an expectation message: `master`, `expected` and `mask` tuples (each with
/// `src`, `dst`, `l4proto`, `sport`, `dport` where present), then `timeout`, `exp_flags`, `class`,
/// `nat_dir`, `helper` and `fn` where present.
pub fn write_exp(out: &mut String, e: &ExpEntry) {
    let mut k = Keys::new(out);
    k.key(out, "master");
    write_tuple(out, e.master_addrs, e.master_l4proto, e.master_ports);
    k.key(out, "expected");
    write_tuple(out, e.expect_addrs, e.expect_l4proto, e.expect_ports);
    k.key(out, "mask");
    write_tuple(out, e.mask_addrs, e.mask_l4proto, e.mask_ports);
    k.num(out, "timeout", e.timeout);
    k.num(out, "exp_flags", e.flags.map(|f| f.bits()));
    k.num(out, "class", e.class);
    k.num(out, "nat_dir", e.nat_dir);
    if let Some(h) = &e.helper {
        k.key(out, "helper");
        write_str(out, &h.name());
    }
    if let Some(f) = &e.func {
        k.key(out, "fn");
        write_str(out, &f.name());
    }
    out.push('}');
}
