//! Output formats, as pure functions over a [`Flow`]: default (with the `extended`, `id` and `ktimestamp`
//! flags), `xml`, `save` and our `json`. Byte-identical to conntrack-tools 1.4.7 with libnetfilter_conntrack.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::flow::{Flow, L4, ProtoState, Tuple};
use super::opts::{DCCP_STATES, ProtoKind, SCTP_STATES, TCP_STATES};
use super::parse::status;
use super::tz;

/// What kind of message a line describes (events print a tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgKind {
    /// A dump or get result: no tag.
    Plain,
    /// `[NEW]`.
    New,
    /// `[UPDATE]`.
    Update,
    /// `[DESTROY]`.
    Destroy,
}

/// Flags of the default format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// `-o extended`: print the layer-3 protocol first.
    pub layer3: bool,
    /// `-o id`: print `id=`.
    pub id: bool,
    /// `-o ktimestamp`: print `[start=...]`/`[stop=...]`.
    pub ktimestamp: bool,
    /// `-o timestamp` in XML: print a `<when>` element.
    pub when: bool,
}

/// Bit-to-name mapping of connection labels (`/etc/xtables/connlabel.conf`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelMap {
    names: Vec<Option<String>>,
}

impl LabelMap {
    /// Parses connlabel.conf text: `BIT NAME` per line, `#` comments, first definition of a bit wins,
    /// names limited to letters, digits, space and `-`. Returns `None` when no label was defined.
    pub fn parse(text: &str) -> Option<LabelMap> {
        let mut names: Vec<Option<String>> = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let t = line.trim_start();
            let (digits, radix, skip) = if t.starts_with("0x") || t.starts_with("0X") {
                (&t[2..], 16, 2)
            } else if t.starts_with('0') {
                (t, 8, 0)
            } else {
                (t, 10, 0)
            };
            let end = digits
                .find(|c: char| !c.is_digit(radix))
                .unwrap_or(digits.len());
            if end == 0 && skip == 0 {
                continue;
            }
            let Ok(bit) = usize::from_str_radix(if end == 0 { "0" } else { &digits[..end] }, radix)
            else {
                continue;
            };
            if bit >= 1024 {
                continue;
            }
            let name = digits[end..]
                .trim_matches(|c: char| c == ' ' || c == '\t' || c == '\n' || c == '\r');
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'-')
            {
                continue;
            }
            if names.len() <= bit {
                names.resize(bit + 1, None);
            }
            if names[bit].is_none() && !names.iter().any(|n| n.as_deref() == Some(name)) {
                names[bit] = Some(name.to_string());
            }
        }
        if names.iter().all(Option::is_none) {
            None
        } else {
            Some(LabelMap { names })
        }
    }

    /// Loads the system file (or `$CONNTRACK_CONNLABEL_CONF` when set, for tests).
    pub fn load() -> Option<LabelMap> {
        LabelMap::load_result().ok().flatten()
    }

    /// Like [`LabelMap::load`], telling a missing file (the error) from a file without labels (`Ok(None)`).
    pub fn load_result() -> std::io::Result<Option<LabelMap>> {
        let path = std::env::var("CONNTRACK_CONNLABEL_CONF")
            .unwrap_or_else(|_| "/etc/xtables/connlabel.conf".to_string());
        Ok(LabelMap::parse(&std::fs::read_to_string(path)?))
    }

    /// The name of bit `bit`.
    pub fn name(&self, bit: usize) -> Option<&str> {
        self.names.get(bit).and_then(|n| n.as_deref())
    }

    /// The bit of `name`.
    pub fn bit(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n.as_deref() == Some(name))
    }
}

fn proto_name(n: u8) -> &'static str {
    match n {
        6 => "tcp",
        17 => "udp",
        136 => "udplite",
        1 => "icmp",
        58 => "icmpv6",
        132 => "sctp",
        47 => "gre",
        33 => "dccp",
        _ => "unknown",
    }
}

fn l3_name(f: u8) -> &'static str {
    match f {
        2 => "ipv4",
        10 => "ipv6",
        _ => "unknown",
    }
}

fn addr(ip: &IpAddr) -> String {
    ip.to_string()
}

/// The decimal digits of 0..1000, three bytes each, left-aligned.
static SMALL_DIGITS: [[u8; 3]; 1000] = {
    let mut t = [[0u8; 3]; 1000];
    let mut v = 0;
    while v < 1000 {
        let (h, d, u) = ((v / 100) as u8, (v / 10 % 10) as u8, (v % 10) as u8);
        t[v] = if v >= 100 {
            [b'0' + h, b'0' + d, b'0' + u]
        } else if v >= 10 {
            [b'0' + d, b'0' + u, 0]
        } else {
            [b'0' + u, 0, 0]
        };
        v += 1;
    }
    t
};

/// 0..1000 as strings, built at compile time: every IPv4 octet, protocol number, most timeouts.
static SMALL: [&str; 1000] = {
    let mut t = [""; 1000];
    let mut v = 0;
    while v < 1000 {
        let len = if v >= 100 {
            3
        } else if v >= 10 {
            2
        } else {
            1
        };
        let (digits, _) = SMALL_DIGITS[v].split_at(len);
        t[v] = match std::str::from_utf8(digits) {
            Ok(x) => x,
            Err(_) => "",
        };
        v += 1;
    }
    t
};

/// Appends a decimal number (the hot path of every line; no formatting machinery).
fn push_num(s: &mut String, v: u64) {
    if let Some(small) = usize::try_from(v).ok().and_then(|i| SMALL.get(i)) {
        s.push_str(small);
        return;
    }
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for b in &buf[i..] {
        s.push(char::from(*b));
    }
}

/// Appends an address as `inet_ntoa`/`inet_ntop` print it.
fn push_addr(s: &mut String, ip: &IpAddr) {
    match ip {
        IpAddr::V4(a) => {
            let [a, b, c, d] = a.octets();
            s.push_str(SMALL[usize::from(a)]);
            s.push('.');
            s.push_str(SMALL[usize::from(b)]);
            s.push('.');
            s.push_str(SMALL[usize::from(c)]);
            s.push('.');
            s.push_str(SMALL[usize::from(d)]);
        }
        IpAddr::V6(_) => {
            let _ = write!(s, "{ip}");
        }
    }
}

fn tuple_default(s: &mut String, t: &Tuple) {
    s.push_str("src=");
    push_addr(s, &t.src);
    s.push_str(" dst=");
    push_addr(s, &t.dst);
    s.push(' ');
    // libnetfilter_conntrack prints the layer-4 fields by protocol number, 0 for what the kernel did
    // not send (a DCCP entry on a kernel without DCCP tracking has no ports: `sport=0 dport=0`).
    match t.proto {
        6 | 17 | 136 | 132 | 33 => {
            let (sport, dport) = match t.l4 {
                L4::Ports { sport, dport } => (sport, dport),
                _ => (0, 0),
            };
            s.push_str("sport=");
            push_num(s, u64::from(sport));
            s.push_str(" dport=");
            push_num(s, u64::from(dport));
            s.push(' ');
        }
        47 => {
            let (skey, dkey) = match t.l4 {
                L4::Gre { skey, dkey } => (skey, dkey),
                _ => (0, 0),
            };
            let _ = write!(s, "srckey=0x{skey:x} dstkey=0x{dkey:x} ");
        }
        1 | 58 => {
            let (kind, code, id) = match t.l4 {
                L4::Icmp { kind, code, id } => (kind, code, id),
                _ => (0, 0, 0),
            };
            let _ = write!(s, "type={kind} code={code} id={id} ");
        }
        _ => {}
    }
}

fn state_name(st: ProtoState) -> &'static str {
    match st {
        ProtoState::Tcp(n) => TCP_STATES.get(usize::from(n)).copied().unwrap_or("NONE"),
        ProtoState::Sctp(n) => SCTP_STATES.get(usize::from(n)).copied().unwrap_or("NONE"),
        ProtoState::Dccp(n) => DCCP_STATES.get(usize::from(n)).copied().unwrap_or("NONE"),
    }
}

/// `ctime()` without the newline, in local time ([`tz::local`]): `Sun Nov 22 03:19:27 2026`.
pub fn ctime(secs: i64) -> String {
    ctime_at(secs, tz::local().offset(secs))
}

/// Broken-down time `offset` seconds east of UTC: (year, month 1-12, day, hour, minute, second, weekday
/// 0 = Sunday), like `struct tm`.
pub fn broken_down(secs: i64, offset: i32) -> (i64, u32, u32, i64, i64, i64, usize) {
    let secs = secs + i64::from(offset);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // 1970-01-01 was a Thursday.
    let wday = (days + 4).rem_euclid(7) as usize;
    let (y, mo, d) = tz::civil_from_days(days);
    (y, mo, d, rem / 3600, (rem % 3600) / 60, rem % 60, wday)
}

/// `ctime()` without the newline, `offset` seconds east of UTC.
pub fn ctime_at(secs: i64, offset: i32) -> String {
    let (y, mo, d, h, m, s, wday) = broken_down(secs, offset);
    const WD: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MN: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        WD[wday],
        MN[(mo - 1) as usize],
        d,
        h,
        m,
        s,
        y
    )
}

fn label_names(f: &Flow, map: &LabelMap) -> Vec<String> {
    (0..f.label_bits())
        .filter(|b| f.has_label(*b))
        .filter_map(|b| map.name(b as usize).map(str::to_string))
        .filter(|n| !n.is_empty())
        .collect()
}

/// The default one-line format. `now` (seconds since the epoch) is used for `delta-time=` of live entries.
pub fn default_line(
    f: &Flow,
    kind: MsgKind,
    flags: Flags,
    map: Option<&LabelMap>,
    now: i64,
) -> String {
    let mut s = String::with_capacity(256);
    default_line_into(&mut s, f, kind, flags, map, now);
    s
}

/// [`default_line`] into a reused buffer (cleared first).
pub fn default_line_into(
    s: &mut String,
    f: &Flow,
    kind: MsgKind,
    flags: Flags,
    map: Option<&LabelMap>,
    now: i64,
) {
    s.clear();
    match kind {
        MsgKind::New => s.push_str("    [NEW] "),
        MsgKind::Update => s.push_str(" [UPDATE] "),
        MsgKind::Destroy => s.push_str("[DESTROY] "),
        MsgKind::Plain => {}
    }
    if flags.layer3 {
        let fam = f.family();
        let _ = write!(s, "{:<8} {} ", l3_name(fam), fam);
    }
    let pn = proto_name(f.orig.proto);
    s.push_str(pn);
    for _ in pn.len()..8 {
        s.push(' ');
    }
    s.push(' ');
    push_num(s, u64::from(f.orig.proto));
    s.push(' ');
    if let Some(t) = f.timeout {
        push_num(s, u64::from(t));
        s.push(' ');
    }
    if let Some(st) = f.state {
        let _ = write!(s, "{} ", state_name(st));
    }
    tuple_default(s, &f.orig);
    if let Some(z) = f.orig.zone {
        let _ = write!(s, "zone-orig={z} ");
    }
    if let Some(c) = f.counters_orig {
        s.push_str("packets=");
        push_num(s, c.packets);
        s.push_str(" bytes=");
        push_num(s, c.bytes);
        s.push(' ');
    }
    if let Some(st) = f.status
        && st & status::SEEN_REPLY == 0
    {
        s.push_str("[UNREPLIED] ");
    }
    if let Some(r) = &f.reply {
        tuple_default(s, r);
        if let Some(z) = r.zone {
            let _ = write!(s, "zone-reply={z} ");
        }
    }
    if let Some(c) = f.counters_reply {
        s.push_str("packets=");
        push_num(s, c.packets);
        s.push_str(" bytes=");
        push_num(s, c.bytes);
        s.push(' ');
    }
    if let Some(st) = f.status {
        if st & status::HW_OFFLOAD != 0 {
            s.push_str("[HW_OFFLOAD] ");
        } else if st & status::OFFLOAD != 0 {
            s.push_str("[OFFLOAD] ");
        } else if st & status::ASSURED != 0 {
            s.push_str("[ASSURED] ");
        }
    }
    if let Some(m) = f.mark {
        s.push_str("mark=");
        push_num(s, u64::from(m));
        s.push(' ');
    }
    if let Some(m) = f.secmark {
        let _ = write!(s, "secmark={m} ");
    }
    if let Some(c) = &f.secctx {
        let _ = write!(s, "secctx={c} ");
    }
    if let Some(z) = f.zone {
        let _ = write!(s, "zone={z} ");
    }
    if let Some(start) = f.ts_start {
        let stop = match f.ts_stop {
            Some(0) | None => now,
            Some(st) => (st / 1_000_000_000) as i64,
        };
        let delta = stop - (start / 1_000_000_000) as i64;
        s.push_str("delta-time=");
        push_num(s, delta as u64);
        s.push(' ');
    }
    if flags.ktimestamp {
        if let Some(start) = f.ts_start {
            let _ = write!(s, "[start={}] ", ctime((start / 1_000_000_000) as i64));
        }
        if let Some(stop) = f.ts_stop {
            let _ = write!(s, "[stop={}] ", ctime((stop / 1_000_000_000) as i64));
        }
    }
    if let Some(h) = &f.helper {
        let _ = write!(s, "helper={h} ");
    }
    if let Some(u) = f.use_count {
        s.push_str("use=");
        push_num(s, u64::from(u));
        s.push(' ');
    }
    if flags.id
        && let Some(id) = f.id
    {
        let _ = write!(s, "id={id} ");
    }
    if let (Some(map), Some(_)) = (map, &f.labels) {
        let names = label_names(f, map);
        if names.is_empty() {
            s.push_str("labels ");
        } else {
            let _ = write!(s, "labels={} ", names.join(","));
        }
    }
    s.pop();
}

fn tuple_xml(s: &mut String, f: &Flow, t: Option<&Tuple>, dir: &str) {
    let _ = write!(s, "<meta direction=\"{dir}\">");
    let (fam, proto) = match t {
        Some(t) => (if t.src.is_ipv4() { 2 } else { 10 }, t.proto),
        None => (0, 0),
    };
    let _ = write!(
        s,
        "<layer3 protonum=\"{fam}\" protoname=\"{}\">",
        l3_name(fam)
    );
    match t {
        Some(t) => {
            let _ = write!(s, "<src>{}</src><dst>{}</dst>", addr(&t.src), addr(&t.dst));
        }
        None => s.push_str("<src></src><dst></dst>"),
    }
    s.push_str("</layer3>");
    let _ = write!(
        s,
        "<layer4 protonum=\"{proto}\" protoname=\"{}\">",
        proto_name(proto)
    );
    if let Some(t) = t {
        // By protocol number, 0 for fields the kernel did not send (as in the default format).
        match (t.proto, t.l4) {
            (6 | 17 | 136 | 132 | 33, l4) => {
                let (sport, dport) = match l4 {
                    L4::Ports { sport, dport } => (sport, dport),
                    _ => (0, 0),
                };
                let _ = write!(s, "<sport>{sport}</sport><dport>{dport}</dport>");
            }
            (47, l4) => {
                let (skey, dkey) = match l4 {
                    L4::Gre { skey, dkey } => (skey, dkey),
                    _ => (0, 0),
                };
                let _ = write!(s, "<srckey>0x{skey:x}</srckey><dstkey>0x{dkey:x}</dstkey>");
            }
            _ => {}
        }
    }
    s.push_str("</layer4>");
    if let Some(z) = t.and_then(|t| t.zone) {
        let _ = write!(s, "<zone>{z}</zone>");
    }
    // libnetfilter_conntrack prints either direction's counters only when the original ones are present.
    if f.counters_orig.is_some() {
        let c = if dir == "original" {
            f.counters_orig
        } else {
            f.counters_reply
        };
        let c = c.unwrap_or_default();
        let _ = write!(
            s,
            "<counters><packets>{}</packets><bytes>{}</bytes></counters>",
            c.packets, c.bytes
        );
    }
    s.push_str("</meta>");
}

/// One expectation, as libnetfilter_conntrack prints it by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectView {
    /// Seconds left.
    pub timeout: Option<u32>,
    /// The expected tuple.
    pub tuple: Tuple,
    /// Its mask.
    pub mask: Option<Tuple>,
    /// The master connection's original tuple.
    pub master: Option<Tuple>,
    /// Zone.
    pub zone: Option<u16>,
    /// `NF_CT_EXPECT_*` flags.
    pub flags: u32,
    /// Expectation class.
    pub class: Option<u32>,
    /// Helper name.
    pub helper: Option<String>,
}

/// The default line of an expectation (`conntrack -L expect`).
pub fn expect_line(x: &ExpectView, kind: MsgKind) -> String {
    let mut s = String::with_capacity(200);
    match kind {
        MsgKind::New => s.push_str("    [NEW] "),
        MsgKind::Update => s.push_str(" [UPDATE] "),
        MsgKind::Destroy => s.push_str("[DESTROY] "),
        MsgKind::Plain => {}
    }
    if let Some(t) = x.timeout {
        let _ = write!(s, "{t} ");
    }
    let _ = write!(s, "proto={} ", x.tuple.proto);
    tuple_default(&mut s, &x.tuple);
    let tagged = |s: &mut String, t: &Tuple, pre: &str| {
        let mut tmp = String::new();
        tuple_default(&mut tmp, t);
        // Re-tag "src=" / "dst=" as "<pre>src=" / "<pre>dst=" for the address part only.
        let tmp = tmp.replacen("src=", &format!("{pre}src="), 1).replacen(
            "dst=",
            &format!("{pre}dst="),
            1,
        );
        s.push_str(&tmp);
    };
    if let Some(m) = &x.mask {
        tagged(&mut s, m, "mask-");
    }
    if let Some(m) = &x.master {
        tagged(&mut s, m, "master-");
    }
    if let Some(z) = x.zone {
        let _ = write!(s, "zone={z} ");
    }
    let mut names = Vec::new();
    for (b, n) in [(1, "PERMANENT"), (2, "INACTIVE"), (4, "USERSPACE")] {
        if x.flags & b != 0 {
            names.push(n);
        }
    }
    s.push_str(&names.join(","));
    if x.flags != 0 {
        s.push(' ');
    }
    if let Some(c) = x.class {
        let _ = write!(s, "class={c} ");
    }
    if let Some(h) = &x.helper {
        let _ = write!(s, "helper={h}");
    }
    if s.ends_with(' ') {
        s.pop();
    }
    s
}

/// The XML format of one expectation (`-L expect -o xml`, libnetfilter_conntrack's layout): the expected,
/// mask and master addresses under `<layer3>`, their ports or keys under `<layer4>`, then `<meta>`. `when`:
/// the time for a `<when>` element (`-o xml,timestamp`).
pub fn expect_xml(x: &ExpectView, kind: MsgKind, when: Option<i64>) -> String {
    let mut s = String::with_capacity(600);
    s.push_str(match kind {
        MsgKind::New => "<flow type=\"new\">",
        MsgKind::Update => "<flow type=\"update\">",
        MsgKind::Destroy => "<flow type=\"destroy\">",
        MsgKind::Plain => "<flow>",
    });
    let t = &x.tuple;
    let parts = [
        ("expected", Some(t)),
        ("mask", x.mask.as_ref()),
        ("master", x.master.as_ref()),
    ];
    let fam = if t.src.is_ipv4() { 2 } else { 10 };
    let _ = write!(
        s,
        "<layer3 protonum=\"{fam}\" protoname=\"{}\">",
        l3_name(fam)
    );
    for (tag, u) in parts {
        match u {
            Some(u) => {
                let _ = write!(
                    s,
                    "<{tag}><src>{}</src><dst>{}</dst></{tag}>",
                    addr(&u.src),
                    addr(&u.dst)
                );
            }
            None => {
                let _ = write!(s, "<{tag}><src></src><dst></dst></{tag}>");
            }
        }
    }
    s.push_str("</layer3>");
    let _ = write!(
        s,
        "<layer4 protonum=\"{}\" protoname=\"{}\">",
        t.proto,
        proto_name(t.proto)
    );
    for (tag, u) in parts {
        let _ = write!(s, "<{tag}>");
        if let Some(u) = u {
            match (t.proto, u.l4) {
                (6 | 17 | 136 | 132 | 33, L4::Ports { sport, dport }) => {
                    let _ = write!(s, "<sport>{sport}</sport><dport>{dport}</dport>");
                }
                (47, L4::Gre { skey, dkey }) => {
                    let _ = write!(s, "<srckey>0x{skey:x}</srckey><dstkey>0x{dkey:x}</dstkey>");
                }
                _ => {}
            }
        }
        let _ = write!(s, "</{tag}>");
    }
    s.push_str("</layer4><meta>");
    if let Some(h) = &x.helper {
        let _ = write!(s, "<helper-name>{h}</helper-name>");
    }
    if let Some(t) = x.timeout {
        let _ = write!(s, "<timeout>{t}</timeout>");
    }
    if let Some(c) = x.class {
        let _ = write!(s, "<class>{c}</class>");
    }
    if let Some(z) = x.zone {
        let _ = write!(s, "<zone>{z}</zone>");
    }
    if let Some(now) = when {
        when_xml(&mut s, now);
    }
    for (b, n) in [(1, "<permanent/>"), (2, "<inactive/>"), (4, "<userspace/>")] {
        if x.flags & b != 0 {
            s.push_str(n);
        }
    }
    s.push_str("</meta></flow>");
    s
}

/// `<when>...</when>` for `now`, in local time (libnetfilter_conntrack's `localtime()` fields).
fn when_xml(s: &mut String, now: i64) {
    // wday is tm_wday + 1, month tm_mon + 1.
    let (year, mon, day, h, m, sec, wday) = broken_down(now, tz::local().offset(now));
    let _ = write!(
        s,
        "<when><hour>{h}</hour><min>{m:02}</min><sec>{sec:02}</sec><wday>{}</wday><day>{day}</day><month>{mon}</month><year>{year}</year></when>",
        wday + 1
    );
}

/// The XML format of one flow (`-o xml`), without the document header.
pub fn xml_flow(f: &Flow, kind: MsgKind, flags: Flags, map: Option<&LabelMap>, now: i64) -> String {
    let mut s = String::with_capacity(512);
    s.push_str(match kind {
        MsgKind::New => "<flow type=\"new\">",
        MsgKind::Update => "<flow type=\"update\">",
        MsgKind::Destroy => "<flow type=\"destroy\">",
        MsgKind::Plain => "<flow>",
    });
    tuple_xml(&mut s, f, Some(&f.orig), "original");
    tuple_xml(&mut s, f, f.reply.as_ref(), "reply");
    let independent = f.state.is_some()
        || f.timeout.is_some()
        || f.mark.is_some()
        || f.secmark.is_some()
        || f.zone.is_some()
        || f.use_count.is_some()
        || f.status.is_some()
        || f.id.is_some()
        || f.labels.is_some()
        || f.ts_start.is_some()
        || f.ts_stop.is_some();
    if independent {
        s.push_str("<meta direction=\"independent\">");
    }
    if let Some(st) = f.state {
        // libnetfilter_conntrack names every protocol's state from the TCP table here.
        let n = match st {
            ProtoState::Tcp(n) | ProtoState::Sctp(n) | ProtoState::Dccp(n) => n,
        };
        let _ = write!(
            s,
            "<state>{}</state>",
            TCP_STATES.get(usize::from(n)).copied().unwrap_or("NONE")
        );
    }
    if let Some(t) = f.timeout {
        let _ = write!(s, "<timeout>{t}</timeout>");
    }
    if let Some(m) = f.mark {
        let _ = write!(s, "<mark>{m}</mark>");
    }
    if let (Some(map), Some(_)) = (map, &f.labels) {
        s.push_str("<labels>");
        for n in label_names(f, map) {
            let _ = write!(s, "<label>{n}</label>");
        }
        s.push_str("</labels>");
    }
    if let Some(m) = f.secmark {
        let _ = write!(s, "<secmark>{m}</secmark>");
    }
    if let Some(c) = &f.secctx {
        let _ = write!(s, "<secctx>{c}</secctx>");
    }
    if let Some(z) = f.zone {
        let _ = write!(s, "<zone>{z}</zone>");
    }
    if let Some(u) = f.use_count {
        let _ = write!(s, "<use>{u}</use>");
    }
    if let Some(id) = f.id {
        let _ = write!(s, "<id>{id}</id>");
    }
    if let Some(st) = f.status {
        if st & status::ASSURED != 0 {
            s.push_str("<assured/>");
        }
        if st & status::SEEN_REPLY == 0 {
            s.push_str("<unreplied/>");
        }
    }
    if flags.ktimestamp && (f.ts_start.is_some() || f.ts_stop.is_some()) {
        s.push_str("<timestamp>");
        if let Some(v) = f.ts_start {
            let _ = write!(s, "<start>{v}</start>");
        }
        if let Some(v) = f.ts_stop {
            let _ = write!(s, "<stop>{v}</stop>");
        }
        s.push_str("</timestamp>");
    }
    match (f.ts_start, f.ts_stop) {
        (Some(a), Some(b)) => {
            let _ = write!(
                s,
                "<deltatime>{}</deltatime>",
                (b.wrapping_sub(a) / 1_000_000_000) as i64 as u64
            );
        }
        (Some(a), None) => {
            let _ = write!(
                s,
                "<deltatime>{}</deltatime>",
                (now - (a / 1_000_000_000) as i64) as u64
            );
        }
        _ => {}
    }
    if independent {
        s.push_str("</meta>");
    }
    if flags.when {
        when_xml(&mut s, now);
    }
    if let Some(h) = &f.helper {
        let _ = write!(s, "<helper>{h}</helper>");
    }
    s.push_str("</flow>");
    s
}

/// The `-o save` format: a command line that recreates the entry.
pub fn save_line(f: &Flow, kind: MsgKind) -> String {
    let mut s = String::with_capacity(200);
    match kind {
        MsgKind::New => s.push_str("-A "),
        MsgKind::Update => s.push_str("-U "),
        MsgKind::Destroy => s.push_str("-D "),
        MsgKind::Plain => {}
    }
    if let Some(t) = f.timeout {
        let _ = write!(s, "-t {t} ");
    }
    if let Some(st) = f.status {
        s.push_str("-u ");
        let names: Vec<&str> = [
            (status::EXPECTED, "EXPECTED"),
            (status::SEEN_REPLY, "SEEN_REPLY"),
            (status::ASSURED, "ASSURED"),
            (status::FIXED_TIMEOUT, "FIXED_TIMEOUT"),
        ]
        .iter()
        .filter(|(b, _)| st & b != 0)
        .map(|(_, n)| *n)
        .collect();
        if names.is_empty() {
            s.push_str("UNSET ");
        } else {
            let _ = write!(s, "{} ", names.join(","));
        }
    }
    if let Some(v) = f.secmark {
        let _ = write!(s, "-c {v} ");
    }
    if let Some(v) = f.zone {
        let _ = write!(s, "-w {v} ");
    }
    if let Some(v) = f.orig.zone {
        let _ = write!(s, "--orig-zone {v} ");
    }
    if let Some(v) = f.reply.and_then(|r| r.zone) {
        let _ = write!(s, "--reply-zone {v} ");
    }
    let _ = write!(s, "-s {} -d {} ", addr(&f.orig.src), addr(&f.orig.dst));
    if let Some(r) = &f.reply {
        let _ = write!(
            s,
            "{} {} ",
            if f.is_dnat() { "-g" } else { "-r" },
            addr(&r.src)
        );
        let _ = write!(
            s,
            "{} {} ",
            if f.is_snat() { "-n" } else { "-q" },
            addr(&r.dst)
        );
    }
    let proto = f.orig.proto;
    let kind = ProtoKind::from_number(proto);
    if kind == ProtoKind::Unknown {
        let _ = write!(s, "-p {proto} ");
    } else {
        let _ = write!(s, "-p {} ", kind.name());
        let r = f.reply.as_ref();
        match kind {
            ProtoKind::Icmp | ProtoKind::Icmpv6 => {
                let pre = if kind == ProtoKind::Icmp {
                    "--icmp"
                } else {
                    "--icmpv6"
                };
                if let L4::Icmp { kind, code, id } = f.orig.l4 {
                    let _ = write!(s, "{pre}-type {kind} {pre}-code {code} {pre}-id {id} ");
                }
            }
            ProtoKind::Gre => {
                if let (Some(a), Some(b)) = (f.orig.sport(), f.orig.dport()) {
                    let _ = write!(s, "--srckey {a} --dstkey {b} ");
                }
                if let Some(r) = r
                    && let (Some(a), Some(b)) = (r.sport(), r.dport())
                {
                    let _ = write!(s, "--reply-key-src {a} --reply-key-dst {b} ");
                }
            }
            _ => {
                if let (Some(a), Some(b)) = (f.orig.sport(), f.orig.dport()) {
                    let _ = write!(s, "--sport {a} --dport {b} ");
                }
                if let Some(r) = r
                    && let (Some(a), Some(b)) = (r.sport(), r.dport())
                {
                    let _ = write!(s, "--reply-port-src {a} --reply-port-dst {b} ");
                }
                match (kind, f.state) {
                    (ProtoKind::Tcp, Some(ProtoState::Tcp(n))) => {
                        let _ = write!(
                            s,
                            "--state {} ",
                            TCP_STATES.get(usize::from(n)).copied().unwrap_or("")
                        );
                    }
                    (ProtoKind::Sctp, Some(ProtoState::Sctp(n))) => {
                        let _ = write!(
                            s,
                            "--state {} ",
                            SCTP_STATES.get(usize::from(n)).copied().unwrap_or("")
                        );
                    }
                    (ProtoKind::Dccp, Some(ProtoState::Dccp(n))) => {
                        let _ = write!(
                            s,
                            "--state {} ",
                            DCCP_STATES.get(usize::from(n)).copied().unwrap_or("")
                        );
                    }
                    _ => {}
                }
                if kind == ProtoKind::Sctp
                    && let Some((o, r)) = f.sctp_vtags
                {
                    // conntrack-tools byte-swaps vtags both when it sets and when it prints them; the kernel holds
                    // the swapped value, so print it swapped back.
                    let _ = write!(
                        s,
                        "--orig-vtag {} --reply-vtag {} ",
                        o.swap_bytes(),
                        r.swap_bytes()
                    );
                }
            }
        }
    }
    while s.ends_with(' ') {
        s.pop();
    }
    s
}

fn tuple_json(t: &Tuple) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("src".into(), t.src.to_string().into());
    m.insert("dst".into(), t.dst.to_string().into());
    m.insert("protonum".into(), t.proto.into());
    m.insert("proto".into(), proto_name(t.proto).into());
    match t.l4 {
        L4::Ports { sport, dport } => {
            m.insert("sport".into(), sport.into());
            m.insert("dport".into(), dport.into());
        }
        L4::Icmp { kind, code, id } => {
            m.insert("icmp_type".into(), kind.into());
            m.insert("icmp_code".into(), code.into());
            m.insert("icmp_id".into(), id.into());
        }
        L4::Gre { skey, dkey } => {
            m.insert("srckey".into(), skey.into());
            m.insert("dstkey".into(), dkey.into());
        }
        L4::None => {}
    }
    if let Some(z) = t.zone {
        m.insert("zone".into(), z.into());
    }
    serde_json::Value::Object(m)
}

/// Adds `"portid"` (and `"progname"` when known) to a JSON object line: the user-space program whose request
/// caused an `-E` event (conntrack-tools' ` [USERSPACE] portid=N progname=X`).
pub fn json_add_user(line: &mut String, portid: u32, progname: Option<&str>) {
    if !line.ends_with('}') {
        return;
    }
    line.pop();
    let _ = write!(line, ",\"portid\":{portid}");
    if let Some(n) = progname {
        let _ = write!(line, ",\"progname\":{}", serde_json::Value::from(n));
    }
    line.push('}');
}

/// One expectation as a JSON object (`-L/-G/-E expect -o json`): `event` (events only), `family`,
/// `expected`, `mask` and `master` tuples (the entry tuple schema), `timeout`, `zone`, `class`, `helper`, and
/// `flags` (`PERMANENT`, `INACTIVE`, `USERSPACE`); keys only when the kernel sent the attribute.
pub fn expect_json(x: &ExpectView, kind: MsgKind) -> String {
    let mut m = serde_json::Map::new();
    if kind != MsgKind::Plain {
        let k = match kind {
            MsgKind::New => "new",
            MsgKind::Update => "update",
            _ => "destroy",
        };
        m.insert("event".into(), k.into());
    }
    let fam = if x.tuple.src.is_ipv4() { 2 } else { 10 };
    m.insert("family".into(), l3_name(fam).into());
    m.insert("expected".into(), tuple_json(&x.tuple));
    if let Some(t) = &x.mask {
        m.insert("mask".into(), tuple_json(t));
    }
    if let Some(t) = &x.master {
        m.insert("master".into(), tuple_json(t));
    }
    if let Some(t) = x.timeout {
        m.insert("timeout".into(), t.into());
    }
    if let Some(z) = x.zone {
        m.insert("zone".into(), z.into());
    }
    if let Some(c) = x.class {
        m.insert("class".into(), c.into());
    }
    if let Some(h) = &x.helper {
        m.insert("helper".into(), h.clone().into());
    }
    let flags: Vec<serde_json::Value> = [(1, "PERMANENT"), (2, "INACTIVE"), (4, "USERSPACE")]
        .into_iter()
        .filter(|(b, _)| x.flags & b != 0)
        .map(|(_, n)| n.into())
        .collect();
    if !flags.is_empty() {
        m.insert("flags".into(), flags.into());
    }
    serde_json::Value::Object(m).to_string()
}

/// One JSON object per entry or event (`-o json`); the schema is documented in README.md.
pub fn json_line(f: &Flow, kind: MsgKind, map: Option<&LabelMap>) -> String {
    let mut m = serde_json::Map::new();
    if kind != MsgKind::Plain {
        let k = match kind {
            MsgKind::New => "new",
            MsgKind::Update => "update",
            _ => "destroy",
        };
        m.insert("event".into(), k.into());
    }
    m.insert("family".into(), l3_name(f.family()).into());
    m.insert("original".into(), tuple_json(&f.orig));
    if let Some(r) = &f.reply {
        m.insert("reply".into(), tuple_json(r));
    }
    if let Some(v) = f.timeout {
        m.insert("timeout".into(), v.into());
    }
    if let Some(st) = f.state {
        m.insert("state".into(), state_name(st).into());
    }
    if let Some(st) = f.status {
        m.insert("status".into(), st.into());
        let mut flags = Vec::new();
        for (b, n) in [
            (status::EXPECTED, "EXPECTED"),
            (status::SEEN_REPLY, "SEEN_REPLY"),
            (status::ASSURED, "ASSURED"),
            (1 << 3, "CONFIRMED"),
            (status::SRC_NAT, "SRC_NAT"),
            (status::DST_NAT, "DST_NAT"),
            (1 << 9, "DYING"),
            (status::FIXED_TIMEOUT, "FIXED_TIMEOUT"),
            (status::OFFLOAD, "OFFLOAD"),
            (status::HW_OFFLOAD, "HW_OFFLOAD"),
        ] {
            if st & b != 0 {
                flags.push(serde_json::Value::from(n));
            }
        }
        m.insert("status_flags".into(), flags.into());
    }
    for (k, v) in [
        ("mark", f.mark),
        ("secmark", f.secmark),
        ("use", f.use_count),
        ("id", f.id),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), v.into());
        }
    }
    if let Some(z) = f.zone {
        m.insert("zone".into(), z.into());
    }
    if let Some(c) = &f.secctx {
        m.insert("secctx".into(), c.clone().into());
    }
    if let Some(h) = &f.helper {
        m.insert("helper".into(), h.clone().into());
    }
    if let Some(c) = f.counters_orig {
        m.insert(
            "counters_original".into(),
            serde_json::json!({"packets": c.packets, "bytes": c.bytes}),
        );
    }
    if let Some(c) = f.counters_reply {
        m.insert(
            "counters_reply".into(),
            serde_json::json!({"packets": c.packets, "bytes": c.bytes}),
        );
    }
    if let Some(v) = f.ts_start {
        m.insert("timestamp_start_ns".into(), v.into());
    }
    if let Some(v) = f.ts_stop {
        m.insert("timestamp_stop_ns".into(), v.into());
    }
    if f.labels.is_some() {
        let bits: Vec<serde_json::Value> = (0..f.label_bits())
            .filter(|b| f.has_label(*b))
            .map(serde_json::Value::from)
            .collect();
        m.insert("label_bits".into(), bits.into());
        if let Some(map) = map {
            m.insert("labels".into(), label_names(f, map).into());
        }
    }
    serde_json::Value::Object(m).to_string()
}

#[cfg(test)]
mod tests {

    #[test]
    fn numbers_and_ipv4_addresses_print_like_display() {
        let mut values = vec![
            0u64,
            9,
            10,
            99,
            100,
            255,
            256,
            999,
            1000,
            65535,
            u64::from(u32::MAX),
            u64::MAX,
        ];
        let mut x = 1u64;
        for _ in 0..3000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            values.extend([x, x >> 40, x % 1000]);
        }
        for v in values {
            let mut s = String::from("x=");
            push_num(&mut s, v);
            assert_eq!(s, format!("x={v}"));
            let ip = IpAddr::V4(std::net::Ipv4Addr::from((v >> 7) as u32));
            let mut s = String::new();
            push_addr(&mut s, &ip);
            assert_eq!(s, ip.to_string());
        }
    }
    use super::*;
    use crate::conntrack::flow::Counters;

    fn udp() -> Flow {
        let mut f = Flow::new(Tuple {
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            proto: 17,
            l4: L4::Ports {
                sport: 1,
                dport: 53,
            },
            zone: None,
        });
        f.reply = Some(Tuple {
            src: "10.0.0.2".parse().unwrap(),
            dst: "10.0.0.1".parse().unwrap(),
            proto: 17,
            l4: L4::Ports {
                sport: 53,
                dport: 1,
            },
            zone: None,
        });
        f.timeout = Some(59);
        f.status = Some(8);
        f.mark = Some(0);
        f.use_count = Some(1);
        f.id = Some(1234);
        f
    }

    // Expected strings are what /usr/sbin/conntrack 1.4.7 printed for the same entries, made with
    // `conntrack -I -p udp -s 10.0.0.1 -d 10.0.0.2 --sport 1 --dport 53 -t 60` in a fresh namespace.
    #[test]
    fn default_and_extended() {
        let f = udp();
        assert_eq!(
            default_line(&f, MsgKind::Plain, Flags::default(), None, 0),
            "udp      17 59 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=53 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=53 dport=1 mark=0 use=1"
        );
        let fl = Flags {
            layer3: true,
            id: true,
            ..Flags::default()
        };
        assert_eq!(
            default_line(&f, MsgKind::New, fl, None, 0),
            "    [NEW] ipv4     2 udp      17 59 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=53 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=53 dport=1 mark=0 use=1 id=1234"
        );
    }

    #[test]
    fn counters_and_delta() {
        let mut f = udp();
        f.counters_orig = Some(Counters {
            packets: 0,
            bytes: 0,
        });
        f.counters_reply = Some(Counters {
            packets: 0,
            bytes: 0,
        });
        f.ts_start = Some(1_000_000_000_000);
        let line = default_line(&f, MsgKind::Plain, Flags::default(), None, 1005);
        assert!(
            line.contains("dport=53 packets=0 bytes=0 [UNREPLIED]"),
            "{line}"
        );
        assert!(line.ends_with("mark=0 delta-time=5 use=1"), "{line}");
    }

    #[test]
    fn save_format() {
        let f = udp();
        assert_eq!(
            save_line(&f, MsgKind::New),
            "-A -t 59 -u UNSET -s 10.0.0.1 -d 10.0.0.2 -r 10.0.0.2 -q 10.0.0.1 -p udp --sport 1 --dport 53 --reply-port-src 53 --reply-port-dst 1"
        );
    }

    #[test]
    fn ctime_matches_libc() {
        assert_eq!(ctime_at(0, 0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(ctime_at(1_795_317_976, 0), "Sun Nov 22 03:26:16 2026");
        assert_eq!(
            ctime_at(1_795_317_976, -5 * 3600),
            "Sat Nov 21 22:26:16 2026"
        );
        assert_eq!(ctime_at(0, 9 * 3600), "Thu Jan  1 09:00:00 1970");
    }

    #[test]
    fn expectation_line() {
        let t = |a: &str, b: &str, sp, dp| Tuple {
            src: a.parse().unwrap(),
            dst: b.parse().unwrap(),
            proto: 6,
            l4: L4::Ports {
                sport: sp,
                dport: dp,
            },
            zone: None,
        };
        let x = ExpectView {
            timeout: Some(299),
            tuple: t("10.0.0.2", "10.0.0.1", 0, 40000),
            mask: Some(t("255.255.255.255", "255.255.255.255", 0, 65535)),
            master: Some(t("10.0.0.1", "10.0.0.2", 33000, 21)),
            zone: None,
            flags: 0,
            class: Some(0),
            helper: Some("ftp".into()),
        };
        assert_eq!(
            expect_line(&x, MsgKind::Plain),
            "299 proto=6 src=10.0.0.2 dst=10.0.0.1 sport=0 dport=40000 mask-src=255.255.255.255 mask-dst=255.255.255.255 sport=0 dport=65535 master-src=10.0.0.1 master-dst=10.0.0.2 sport=33000 dport=21 class=0 helper=ftp"
        );
    }

    #[test]
    fn labelmap_parse() {
        let m = LabelMap::parse("# c\n0 eth0-in\n1\tbad;name\n0 dup\n7 seven\n").unwrap();
        assert_eq!(m.name(0), Some("eth0-in"));
        assert_eq!(m.name(1), None);
        assert_eq!(m.bit("seven"), Some(7));
    }

    #[test]
    fn json_is_valid() {
        let v: serde_json::Value =
            serde_json::from_str(&json_line(&udp(), MsgKind::Plain, None)).unwrap();
        assert_eq!(v["original"]["dport"], 53);
        assert_eq!(v["status_flags"][0], "CONFIRMED");
    }
}
