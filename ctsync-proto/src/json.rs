//! One JSON object per message, as printed by `examples/ctsync_decode` (hand-written: the output has only
//! numbers, address strings and flag names, so no serializer is needed).
//!
//! Keys: `type` (`ct_new`, `ct_upd`, `ct_del`, `exp_new`, `exp_upd`, `exp_del`, `ctl`), `flags` (a list of
//! `resync`, `nack`, `ack`, `alive`, `hello`, `hello_back`), `seq`; `ack_from` and `ack_to` for control
//! messages whose header carries a range (ACK, NACK, RESYNC); `entry` for conntrack messages, with `src`,
//! `dst`, `l4proto`, `sport`, `dport`, `icmp_type`, `icmp_code`, `icmp_id`, `status`, `timeout`, `mark`,
//! `zone` and `tcp_state` where present.

use crate::wire::{Body, Change, CtEntry, Message, msg_type};
use std::fmt::Write;

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
        _ => {}
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
        ("status", e.status.map(u64::from)),
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
