//! A configuration-free report on one VRRP message, for operators: what the `vrrp_decode` example prints.
//!
//! Input lines are `SRC DST HEX` (the carrying packet's IP source and destination, the VRRP payload);
//! [`inspect_line`] turns one into an [`Inspection`], and [`Inspection::to_json`] into one JSON object.
//! The JSON is built here (not in the example) so the crate's tests check it on the captured vectors.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::wire::{self, AuthType, Body, ChecksumModes, Family, Packet};

/// What a message says and whether it passes the configuration-free receive checks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Inspection {
    /// IP source of the carrying packet.
    pub src: Option<IpAddr>,
    /// IP destination of the carrying packet.
    pub dst: Option<IpAddr>,
    /// Version nibble (present whenever there is a first byte).
    pub version: Option<u8>,
    /// VRID.
    pub vrid: Option<u8>,
    /// Priority.
    pub priority: Option<u8>,
    /// Count field.
    pub count: Option<u8>,
    /// The addresses (only when the length matches the count).
    pub addresses: Vec<IpAddr>,
    /// VRRPv2: authentication type.
    pub auth_type: Option<u8>,
    /// VRRPv2: the 8 authentication data bytes.
    pub auth_data: Option<[u8; wire::AUTH_DATA_LEN]>,
    /// VRRPv2: advert interval, seconds.
    pub adver_int: Option<u8>,
    /// VRRPv3: max advert interval, centiseconds.
    pub max_adver_int: Option<u16>,
    /// The checksum field.
    pub checksum: Option<u16>,
    /// Which computations the checksum satisfies.
    pub checksum_valid_as: ChecksumModes,
    /// False when version/type, length, count or checksum fail.
    pub valid: bool,
    /// Why not valid, one reason each.
    pub errors: Vec<String>,
}

/// Inspects one message carried from `src` to `dst`.
pub fn inspect(src: IpAddr, dst: IpAddr, bytes: &[u8]) -> Inspection {
    let mut out = Inspection {
        src: Some(src),
        dst: Some(dst),
        ..Inspection::default()
    };
    if let Some(b) = bytes.first() {
        out.version = Some(b >> 4);
    }
    if bytes.len() >= wire::HEADER_LEN {
        out.vrid = Some(bytes[1]);
        out.priority = Some(bytes[2]);
        out.count = Some(bytes[3]);
        out.checksum = Some(u16::from_be_bytes([bytes[6], bytes[7]]));
        out.checksum_valid_as = wire::checksum_modes(bytes, src, dst);
    }
    match Packet::parse_unverified(bytes) {
        Ok(p) => {
            out.addresses = p.addresses().collect();
            match p.body() {
                Body::V2 {
                    adver_int,
                    auth_type,
                    auth_data,
                } => {
                    out.auth_type = Some(auth_type.to_u8());
                    out.auth_data = Some(auth_data);
                    out.adver_int = Some(adver_int);
                }
                Body::V3 { max_adver_int, .. } => out.max_adver_int = Some(max_adver_int),
            }
            if Family::of(&src) != p.family() || Family::of(&dst) != p.family() {
                out.errors.push(
                    "address family: the packet's addresses and the IP header's differ".into(),
                );
            } else if out.checksum_valid_as.none() {
                out.errors.push(format!(
                    "checksum at offset 6: {:#06x} matches neither the pseudo-header nor the message-only sum",
                    p.checksum()
                ));
            } else if p.family() == Family::Ipv6 && !out.checksum_valid_as.pseudo_header {
                // RFC 5798 / RFC 9568 §5.2.8: an IPv6 checksum always covers the pseudo-header; the
                // message-only sum is an IPv4-only mode of RFC 9568.
                out.errors.push(format!(
                    "checksum at offset 6: {:#06x} is the message-only sum, but IPv6 requires the pseudo-header",
                    p.checksum()
                ));
            }
        }
        Err(e) => out.errors.push(e.to_string()),
    }
    out.valid = out.errors.is_empty();
    out
}

/// Parses and inspects one `SRC DST HEX` line. `None` for blank lines and `#` comments; a malformed line
/// gives an invalid inspection whose error says what is wrong with the line.
pub fn inspect_line(line: &str) -> Option<Inspection> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let bad = |why: String| {
        Some(Inspection {
            errors: vec![why],
            ..Inspection::default()
        })
    };
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [src, dst, hex] = fields[..] else {
        return bad(format!(
            "line: expected `SRC DST HEX`, got {} fields",
            fields.len()
        ));
    };
    let Ok(src) = src.parse::<IpAddr>() else {
        return bad(format!("line: source {src:?} is not an IP address"));
    };
    let Ok(dst) = dst.parse::<IpAddr>() else {
        return bad(format!("line: destination {dst:?} is not an IP address"));
    };
    match decode_hex(hex) {
        Some(bytes) => Some(inspect(src, dst, &bytes)),
        None => bad("line: the payload is not an even number of hex digits".into()),
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16);
    s.as_bytes()
        .chunks_exact(2)
        .map(|p| Some(u8::try_from(digit(p[0])? * 16 + digit(p[1])?).unwrap_or(0)))
        .collect()
}

fn json_str(out: &mut String, s: &str) {
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

impl Inspection {
    /// One JSON object on one line. Keys: `src`, `dst`, `valid`, `version`, `vrid`, `priority`, `count`,
    /// `addresses`, `checksum` (hex string), `checksum_valid_as` (`"pseudo-header"`, `"message-only"`);
    /// VRRPv2 adds `auth_type` (number), `auth_type_name`, `auth_data` (hex), `auth_text` (the
    /// password, for a printable simple-text one) and `adver_int` (seconds); VRRPv3 adds `max_adver_int`
    /// (centiseconds); `errors` lists the reasons when there are any. Absent values are left out.
    pub fn to_json(&self) -> String {
        let mut o = String::from("{");
        let mut sep = "";
        let mut key = |o: &mut String, k: &str| {
            o.push_str(sep);
            json_str(o, k);
            o.push(':');
            sep = ",";
        };
        if let Some(a) = self.src {
            key(&mut o, "src");
            json_str(&mut o, &a.to_string());
        }
        if let Some(a) = self.dst {
            key(&mut o, "dst");
            json_str(&mut o, &a.to_string());
        }
        key(&mut o, "valid");
        o.push_str(if self.valid { "true" } else { "false" });
        for (k, v) in [
            ("version", self.version),
            ("vrid", self.vrid),
            ("priority", self.priority),
            ("count", self.count),
        ] {
            if let Some(v) = v {
                key(&mut o, k);
                let _ = write!(o, "{v}");
            }
        }
        key(&mut o, "addresses");
        o.push('[');
        for (i, a) in self.addresses.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            json_str(&mut o, &a.to_string());
        }
        o.push(']');
        if let Some(t) = self.auth_type {
            key(&mut o, "auth_type");
            let _ = write!(o, "{t}");
            key(&mut o, "auth_type_name");
            json_str(
                &mut o,
                match AuthType::from_u8(t) {
                    AuthType::None => "none",
                    AuthType::SimpleText => "simple-text",
                    _ if t == 2 => "ip-ah",
                    _ => "unknown",
                },
            );
        }
        if let Some(d) = self.auth_data {
            key(&mut o, "auth_data");
            let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
            json_str(&mut o, &hex);
            let text = d.split(|&b| b == 0).next().unwrap_or(&[]);
            if self.auth_type == Some(1)
                && d[text.len()..].iter().all(|&b| b == 0)
                && text.iter().all(|b| b.is_ascii_graphic())
            {
                key(&mut o, "auth_text");
                json_str(&mut o, &String::from_utf8_lossy(text));
            }
        }
        if let Some(v) = self.adver_int {
            key(&mut o, "adver_int");
            let _ = write!(o, "{v}");
        }
        if let Some(v) = self.max_adver_int {
            key(&mut o, "max_adver_int");
            let _ = write!(o, "{v}");
        }
        if let Some(c) = self.checksum {
            key(&mut o, "checksum");
            json_str(&mut o, &format!("{c:#06x}"));
        }
        key(&mut o, "checksum_valid_as");
        let mut modes = Vec::new();
        if self.checksum_valid_as.pseudo_header {
            modes.push("\"pseudo-header\"");
        }
        if self.checksum_valid_as.message_only {
            modes.push("\"message-only\"");
        }
        let _ = write!(o, "[{}]", modes.join(","));
        if !self.errors.is_empty() {
            key(&mut o, "errors");
            o.push('[');
            for (i, e) in self.errors.iter().enumerate() {
                if i > 0 {
                    o.push(',');
                }
                json_str(&mut o, e);
            }
            o.push(']');
        }
        o.push('}');
        o
    }
}
