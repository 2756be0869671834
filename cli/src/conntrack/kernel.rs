//! The commands, on `ctnl`: listing, get, create, update, delete, flush, counters, statistics, events and
//! `-R` files. Filtering follows conntrack-tools' rules; what the kernel can filter (family, mark, status,
//! tuple fields) is also sent to the kernel so less crosses the socket, and every entry is still checked here
//! with the same rules, so results equal userspace filtering.

use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ctnl::{
    Conntrack, DumpFilter, Entry, Error as CtError, EventKind, EventSocket, Groups, Key,
    TupleFilter,
};

use super::opts::{ProtoKind, cmd, opt};
use super::parse::{Fail, Parsed, Table, ev, out};
use super::userspace::PortNames;
use super::{Outcome, PREFIX};
use ctnl::{Clock, LabelMap, Style};

// Linux errno values (asm-generic/errno-base.h, errno.h; ENOTSUPP is kernel-internal, linux/errno.h).
const ENOENT: i32 = 2;
const EPERM: i32 = 1;
const ENOMEM: i32 = 12;
const EEXIST: i32 = 17;
const EINVAL: i32 = 22;
const ETIME: i32 = 62;
const EAFNOSUPPORT: i32 = 97;
const ENOTSUPP: i32 = 524;

/// conntrack-tools' wording for a kernel error, by command (`err2str`): the first row whose commands
/// include `command` and whose errno matches, else the C library's text. `-A` (`CT_ADD`, bit 19) is outside
/// the `0xFFFF` of the `EINVAL` row, so its invalid parameters read "Invalid argument".
pub fn err2str(e: &CtError, command: u32) -> String {
    const CREATE: u32 = cmd::CT_CREATE;
    const ADD: u32 = cmd::CT_ADD;
    let table: [(u32, i32, &str); 10] = [
        (cmd::CT_LIST, ENOTSUPP, "function not implemented"),
        (0xFFFF, EINVAL, "invalid parameters"),
        (CREATE, EEXIST, "Such conntrack exists, try -U to update"),
        (
            CREATE | cmd::CT_GET | cmd::CT_DELETE | ADD,
            ENOENT,
            "such conntrack doesn't exist",
        ),
        (CREATE | cmd::CT_GET | ADD, ENOMEM, "not enough memory"),
        (cmd::CT_GET, EAFNOSUPPORT, "protocol not supported"),
        (CREATE | ADD, ETIME, "conntrack has expired"),
        (cmd::EXP_CREATE, ENOENT, "master conntrack not found"),
        (cmd::EXP_CREATE, EINVAL, "invalid parameters"),
        (
            !0,
            EPERM,
            "sorry, you must be root or get CAP_NET_ADMIN capability to do this",
        ),
    ];
    let Some(errno) = e.errno() else {
        return e.to_string();
    };
    match table
        .iter()
        .find(|(cmds, err, _)| cmds & command != 0 && *err == errno)
    {
        Some((_, _, msg)) => msg.to_string(),
        None => ctnl::strerror(errno),
    }
}

pub(super) fn failed(e: &CtError, command: u32) -> Fail {
    Fail::other(format!("Operation failed: {}", err2str(e, command)))
}

pub(super) fn open() -> Result<Conntrack, Fail> {
    Conntrack::open().map_err(|_| Fail::other("Can't open handler"))
}

/// The matching rules of one command line, applied to each entry.
#[derive(Debug)]
pub struct Matcher<'a> {
    p: &'a Parsed,
    labels: Option<Vec<usize>>,
    /// Status compared the kernel way ((status & mask) == value), as conntrack-tools asks the kernel for -L.
    kernel_status: bool,
}

fn net_match(ip: &IpAddr, net: &IpAddr, mask: &IpAddr) -> bool {
    match (ip, net, mask) {
        (IpAddr::V4(a), IpAddr::V4(n), IpAddr::V4(m)) => {
            u32::from(*a) & u32::from(*m) == u32::from(*n) & u32::from(*m)
        }
        (IpAddr::V6(a), IpAddr::V6(n), IpAddr::V6(m)) => {
            u128::from(*a) & u128::from(*m) == u128::from(*n) & u128::from(*m)
        }
        _ => false,
    }
}

impl<'a> Matcher<'a> {
    /// Builds the matcher; label names are resolved against `map`.
    pub fn new(p: &'a Parsed, map: Option<&LabelMap>, kernel_status: bool) -> Result<Self, Fail> {
        let labels = if p.tmpl.labels.is_empty() {
            None
        } else {
            let mut bits = Vec::new();
            for n in &p.tmpl.labels {
                bits.push(
                    map.and_then(|m| m.bit(n))
                        .ok_or_else(|| Fail::param(format!("unknown label '{n}'")))?,
                );
            }
            Some(bits)
        };
        Ok(Matcher {
            p,
            labels,
            kernel_status,
        })
    }

    fn nat(&self, e: &Entry) -> bool {
        let opts = self.p.options;
        let (mut cs, mut cd) = (opts & opt::SRC_NAT != 0, opts & opt::DST_NAT != 0);
        if opts & opt::ANY_NAT != 0 {
            cs = true;
            cd = true;
        }
        let check = |spec: &super::parse::NatSpec,
                     is_nat: bool,
                     is_pat: bool,
                     addr: Option<IpAddr>,
                     port: Option<u16>| {
            // conntrack-tools compares NAT addresses for IPv4 only.
            let a = spec.addr.filter(IpAddr::is_ipv4);
            let mut has = false;
            if let Some(want) = a {
                has = is_nat && addr == Some(want);
            }
            if let Some(p) = spec.port {
                let ok = is_pat && port == Some(p);
                if a.is_some() && has && !ok {
                    has = false;
                }
                if a.is_none() && ok {
                    has = true;
                }
            }
            if a.is_none() && spec.port.is_none() && (is_nat || is_pat) {
                has = true;
            }
            has
        };
        let r = e.reply.as_ref();
        let has_s = cs
            && check(
                &self.p.tmpl.snat,
                e.is_snat(),
                e.is_spat(),
                r.map(|r| r.dst),
                // `ATTR_REPL_PORT_DST` as libnetfilter_conntrack returns it: `l4dst.all`, 0 when unset.
                r.map(l4_dst_all),
            );
        let has_d = cd
            && check(
                &self.p.tmpl.dnat,
                e.is_dnat(),
                e.is_dpat(),
                r.map(|r| r.src),
                r.map(l4_src_all),
            );
        if opts & opt::ANY_NAT != 0 {
            has_s || has_d
        } else if opts & opt::SRC_NAT != 0 && opts & opt::DST_NAT != 0 {
            has_s && has_d
        } else if opts & opt::SRC_NAT != 0 {
            has_s
        } else if opts & opt::DST_NAT != 0 {
            has_d
        } else {
            true
        }
    }

    fn network(&self, o: &ctnl::Tuple) -> bool {
        let t = &self.p.tmpl;
        let fam = self.p.family;
        if self.p.options & opt::MASK_SRC != 0 {
            let (Some(net), Some(m)) = (t.orig_src, t.mask_src) else {
                return false;
            };
            if af(&o.src) != fam || !net_match(&o.src, &net, &m) {
                return false;
            }
        }
        if self.p.options & opt::MASK_DST != 0 {
            let (Some(net), Some(m)) = (t.orig_dst, t.mask_dst) else {
                return false;
            };
            if af(&o.src) != fam || !net_match(&o.dst, &net, &m) {
                return false;
            }
        }
        true
    }

    fn label(&self, e: &Entry) -> bool {
        match &self.labels {
            None => true,
            Some(bits) => e.labels.as_ref().is_some_and(|l| {
                bits.iter()
                    .all(|b| l.get(b / 8).is_some_and(|v| v & (1 << (b % 8)) != 0))
            }),
        }
    }

    fn mark(&self, e: &Entry) -> bool {
        self.p.options & opt::MARK == 0
            || e.mark
                .is_some_and(|m| m & self.p.tmpl.mark_mask == self.p.tmpl.mark)
    }

    /// The original-direction comparison (libnetfilter_conntrack's `NFCT_CMP_ORIG`, with `NFCT_CMP_MASK`
    /// when `mask`): only what the template sets; addresses under a CIDR mask are left to
    /// [`Matcher::network`] but still fix the family; ports, ICMP fields and the protocol must be equal,
    /// and with `mask` present.
    fn tuple_orig(&self, o: &ctnl::Tuple, mask: bool) -> bool {
        let t = &self.p.tmpl;
        let masked_src = self.p.options & opt::MASK_SRC != 0;
        let masked_dst = self.p.options & opt::MASK_DST != 0;
        if t.orig_src
            .or(t.orig_dst)
            .is_some_and(|a| af(&a) != af(&o.src))
        {
            return false;
        }
        if !masked_src && t.orig_src.is_some_and(|a| a != o.src) {
            return false;
        }
        if !masked_dst && t.orig_dst.is_some_and(|a| a != o.dst) {
            return false;
        }
        if let Some(p) = t.l4proto {
            if p != o.proto {
                return false;
            }
            match p {
                1 | 58 => {
                    let (k, c, i) = match o.l4 {
                        ctnl::L4::Icmp { kind, code, id } | ctnl::L4::Icmpv6 { kind, code, id } => {
                            (Some(kind), Some(code), Some(id))
                        }
                        _ => (None, None, None),
                    };
                    if t.icmp_id.is_some_and(|v| Some(v) != i)
                        || t.icmp_code.is_some_and(|v| Some(v) != c)
                        || t.icmp_type.is_some_and(|v| Some(v) != k)
                    {
                        return false;
                    }
                }
                // A port the entry does not carry (DCCP on a kernel that tracks it as a generic
                // protocol) fails the masked comparison (`-L`, `-D`: the template has an attribute
                // the entry lacks) and is not compared otherwise (`-U`: only attributes both have).
                6 | 17 | 136 | 33 | 132 => {
                    let (sport, dport) = ports(o);
                    if t.orig_l4
                        .sport
                        .is_some_and(|v| sport.map_or(mask, |h| h != v))
                        || t.orig_l4
                            .dport
                            .is_some_and(|v| dport.map_or(mask, |h| h != v))
                    {
                        return false;
                    }
                }
                _ => {}
            }
        }
        // Zones compare non-strictly: a missing zone counts as zone 0.
        t.orig_zone.is_none_or(|z| z == o.zone.unwrap_or(0))
    }

    /// The reply-direction comparison (`NFCT_CMP_REPL`, with `NFCT_CMP_MASK` when `mask`).
    fn tuple_repl(&self, e: &Entry, mask: bool) -> bool {
        let t = &self.p.tmpl;
        let r = e.reply.as_ref();
        if let Some(want) = t.repl_src.or(t.repl_dst) {
            let Some(r) = r else { return false };
            if af(&r.src) != af(&want) {
                return false;
            }
        }
        if t.repl_src.is_some_and(|a| r.is_none_or(|r| r.src != a))
            || t.repl_dst.is_some_and(|a| r.is_none_or(|r| r.dst != a))
        {
            return false;
        }
        if (t.repl_l4.sport.is_some() || t.repl_l4.dport.is_some())
            && let Some(p) = t.l4proto
        {
            let Some(r) = r else { return false };
            if r.proto != p {
                return false;
            }
            // GRE keys are not compared (conntrack-tools deletes every GRE entry whatever keys it
            // is given), like the original direction's.
            let (sport, dport) = ports(r);
            if matches!(p, 6 | 17 | 136 | 33 | 132)
                && (t
                    .repl_l4
                    .sport
                    .is_some_and(|v| sport.map_or(mask, |h| h != v))
                    || t.repl_l4
                        .dport
                        .is_some_and(|v| dport.map_or(mask, |h| h != v)))
            {
                return false;
            }
        }
        t.repl_zone
            .is_none_or(|z| z == r.and_then(|r| r.zone).unwrap_or(0))
    }

    /// Meta attributes (`cmp_meta`): id, status (every given bit set), protocol state and zone. The secmark
    /// is not compared by conntrack-tools, so neither is it here.
    fn meta(&self, e: &Entry) -> bool {
        let t = &self.p.tmpl;
        let o = self.p.options;
        if o & opt::STATUS != 0 {
            let Some(st) = e.status.map(|s| s.bits()) else {
                return false;
            };
            if st & t.status != t.status {
                return false;
            }
            if self.kernel_status && st & t.status_mask != t.status {
                return false;
            }
        }
        if let Some(s) = t.state
            && state_of(e) != Some(s)
        {
            return false;
        }
        if t.id.is_some() && t.id != e.id {
            return false;
        }
        t.zone.is_none_or(|z| z == e.zone.unwrap_or(0))
    }

    /// conntrack-tools' `nfct_filter`: NAT, mark, labels, networks, then every compared attribute. An entry
    /// without an original tuple never matches.
    pub fn matches(&self, e: &Entry) -> bool {
        let Some(o) = e.orig.as_ref() else {
            return false;
        };
        if !(self.nat(e) && self.mark(e) && self.label(e) && self.network(o)) {
            return false;
        }
        if self.p.options & opt::COMPARISON == 0 {
            return true;
        }
        self.tuple_orig(o, true) && self.tuple_repl(e, true) && self.meta(e)
    }

    /// The update command's selection: NAT, labels, networks, id and the tuples.
    pub fn matches_update(&self, e: &Entry) -> bool {
        let Some(o) = e.orig.as_ref() else {
            return false;
        };
        if !(self.nat(e) && self.label(e) && self.network(o)) {
            return false;
        }
        if let (Some(a), Some(b)) = (self.p.tmpl.id, e.id)
            && a != b
        {
            return false;
        }
        let opts = self.p.options;
        if opts & (opt::ORIG | opt::PROTO) != 0 && !self.tuple_orig(o, false) {
            return false;
        }
        if opts & (opt::REPL | opt::PROTO) != 0 && !self.tuple_repl(e, false) {
            return false;
        }
        true
    }
}

/// The address family number of an address (2 or 10).
fn af(a: &IpAddr) -> u8 {
    if a.is_ipv4() { 2 } else { 10 }
}

/// The ports (or GRE keys) of a tuple, when it has them.
fn ports(t: &ctnl::Tuple) -> (Option<u16>, Option<u16>) {
    match t.l4 {
        ctnl::L4::Ports { src, dst } => (Some(src), Some(dst)),
        _ => (None, None),
    }
}

/// libnetfilter_conntrack's `l4src.all`: the source port or key, the ICMP id, 0 when absent.
fn l4_src_all(t: &ctnl::Tuple) -> u16 {
    match t.l4 {
        ctnl::L4::Ports { src, .. } => src,
        ctnl::L4::Icmp { id, .. } | ctnl::L4::Icmpv6 { id, .. } => id,
        _ => 0,
    }
}

/// libnetfilter_conntrack's `l4dst.all`: the destination port or key; for ICMP the type and code bytes,
/// which its NAT checks compare with the other direction's id as they are.
fn l4_dst_all(t: &ctnl::Tuple) -> u16 {
    match t.l4 {
        ctnl::L4::Ports { dst, .. } => dst,
        ctnl::L4::Icmp { kind, code, .. } | ctnl::L4::Icmpv6 { kind, code, .. } => {
            u16::from_be_bytes([kind, code])
        }
        _ => 0,
    }
}

/// The TCP, SCTP or DCCP state number of an entry.
fn state_of(e: &Entry) -> Option<u8> {
    match e.protoinfo.as_ref()? {
        ctnl::ProtoInfo::Tcp(t) => t.state,
        ctnl::ProtoInfo::Sctp(s) => s.state,
        ctnl::ProtoInfo::Dccp(d) => d.state,
        _ => None,
    }
}

/// The kernel-side part of the filter.
fn kernel_filter(p: &Parsed, with_status: bool, with_tuples: bool) -> DumpFilter {
    let mut f = DumpFilter::all();
    f.family = ctnl::Family::from_af(p.family);
    if p.options & opt::MARK != 0 {
        f.mark = Some((p.tmpl.mark, p.tmpl.mark_mask));
    }
    if with_status && p.options & opt::STATUS != 0 {
        f.status = Some((
            ctnl::Status::from_bits_retain(p.tmpl.status),
            ctnl::Status::from_bits_retain(p.tmpl.status_mask),
        ));
    }
    if with_tuples && p.options & (opt::SRC_NAT | opt::DST_NAT | opt::ANY_NAT) == 0 {
        let t = &p.tmpl;
        let mut o = TupleFilter::default();
        if p.options & opt::MASK_SRC == 0 {
            o.src = t.orig_src;
        }
        if p.options & opt::MASK_DST == 0 {
            o.dst = t.orig_dst;
        }
        o.proto = t.l4proto;
        // Port fields are sent only for the protocols whose tuple has ports.
        let has_ports = matches!(
            p.proto,
            Some(
                ProtoKind::Tcp
                    | ProtoKind::Udp
                    | ProtoKind::Udplite
                    | ProtoKind::Sctp
                    | ProtoKind::Dccp
            )
        );
        if has_ports {
            o.sport = t.orig_l4.sport;
            o.dport = t.orig_l4.dport;
        }
        if matches!(p.proto, Some(ProtoKind::Icmp | ProtoKind::Icmpv6)) {
            // The kernel refuses (EINVAL) a filter tuple whose ICMP type it cannot invert; such a type
            // is matched in user space only (conntrack-tools lists nothing for it, without an error).
            let fam = if p.proto == Some(ProtoKind::Icmpv6) {
                ctnl::Family::Ipv6
            } else {
                ctnl::Family::Ipv4
            };
            o.icmp_type = t
                .icmp_type
                .filter(|&ty| ctnl::icmp_reply_type(fam, ty).is_some());
            o.icmp_code = t.icmp_code;
            o.icmp_id = t.icmp_id;
        }
        if o != TupleFilter::default() {
            f.orig = Some(o);
        }
        let mut r = TupleFilter::new();
        r.src = t.repl_src;
        r.dst = t.repl_dst;
        if has_ports {
            r.sport = t.repl_l4.sport;
            r.dport = t.repl_l4.dport;
        }
        if r != TupleFilter::default() {
            // Port fields need the protocol in the same tuple filter (issue 11: the reply tuple's ports
            // went to the kernel without it, and every -L/-D by reply address and port failed).
            r.proto = t.l4proto;
            f.reply = Some(r);
        }
    }
    f
}

/// How to print one entry.
#[derive(Debug)]
pub struct Printer {
    line: String,
    output: u32,
    map: Option<LabelMap>,
    xml_open: bool,
    clock: Clock,
    /// Appended to each line except JSON (`-E`'s ` [USERSPACE] ...`); empty otherwise.
    pub suffix: String,
    /// The same for JSON: the event's port id and program name (`portid`, `progname` keys).
    pub user: Option<(u32, Option<String>)>,
    /// Whether XML lines go inside a `<?xml ...?><conntrack>` document (not for `-D` and `-U`, whose
    /// callbacks in conntrack-tools print bare `<flow>` lines).
    pub xml_document: bool,
    /// The message type a listed entry is saved as with `-o save` (`-D` writes `-D` lines).
    pub save_as: Option<EventKind>,
}

impl Printer {
    /// A printer for the `-o` flags of `p`; loads connlabel.conf when labels are shown or used.
    pub fn new(p: &Parsed) -> Printer {
        let wants_map = p.output & out::CL != 0
            || p.options & (opt::LABEL | opt::ADD_LABEL | opt::DEL_LABEL) != 0;
        Printer {
            line: String::with_capacity(512),
            output: p.output,
            map: if wants_map { LabelMap::load() } else { None },
            xml_open: false,
            clock: Clock::system(),
            suffix: String::new(),
            user: None,
            xml_document: true,
            save_as: None,
        }
    }

    /// The label map, if loaded.
    pub fn map(&self) -> Option<&LabelMap> {
        self.map.as_ref()
    }

    /// Reads the system clock again (`delta-time` of events printed over time).
    pub fn refresh_clock(&mut self) {
        self.clock.refresh();
    }

    /// Prints one entry, an event's when `event` is given. `ktms`: whether `ktimestamp` applies (dumps and
    /// events); `labels`: whether labels are printed (not by -D).
    pub fn print(
        &mut self,
        w: &mut dyn Write,
        e: &Entry,
        event: Option<EventKind>,
        ktms: bool,
        labels: bool,
    ) -> std::io::Result<()> {
        let map = if labels { self.map.as_ref() } else { None };
        self.line.clear();
        if self.output & out::JSON != 0 {
            e.write_json(&mut self.line, event, self.map.as_ref());
            if let Some((portid, name)) = &self.user {
                json_add_user(&mut self.line, *portid, name.as_deref());
            }
        } else if self.output & out::SAVE != 0 {
            e.write_save(&mut self.line, event.or(self.save_as));
            self.line.push_str(&self.suffix);
        } else {
            let style = Style::default()
                .with_extended(self.output & out::EXT != 0)
                .with_id(self.output & out::ID != 0)
                .with_ktimestamp(ktms && self.output & out::KTMS != 0)
                // `-o xml,timestamp` adds a <when> element to events (NFCT_OF_TIME).
                .with_when(event.is_some() && self.output & out::TMS != 0);
            if self.output & out::XML != 0 {
                if self.xml_document && !self.xml_open {
                    self.xml_open = true;
                    w.write_all(b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<conntrack>\n")?;
                }
                e.write_xml(&mut self.line, event, &style, map, &self.clock);
            } else {
                e.write_text(&mut self.line, event, &style, map, &self.clock);
            }
            self.line.push_str(&self.suffix);
        }
        self.line.push('\n');
        w.write_all(self.line.as_bytes())
    }

    /// Closes the XML document if one was opened.
    pub fn finish(&mut self, w: &mut dyn Write) -> std::io::Result<()> {
        if self.xml_open {
            self.xml_open = false;
            w.write_all(b"</conntrack>\n")?;
        }
        Ok(())
    }
}

/// Adds `"portid"` (and `"progname"` when known) to a JSON object line: the user-space program whose request
/// caused an `-E` event (conntrack-tools' ` [USERSPACE] portid=N progname=X`).
fn json_add_user(line: &mut String, portid: u32, progname: Option<&str>) {
    if !line.ends_with('}') {
        return;
    }
    line.pop();
    line.push_str(",\"portid\":");
    line.push_str(&portid.to_string());
    if let Some(n) = progname {
        line.push_str(",\"progname\":");
        ctnl::text::json_str(line, n);
    }
    line.push('}');
}

/// Runs a kernel command and returns the number of entries it handled (for the summary line).
pub fn execute(p: &Parsed, w: &mut dyn Write) -> Result<usize, Outcome> {
    match p.command {
        cmd::CT_LIST => list(p, w),
        cmd::CT_GET => get(p, w),
        cmd::CT_CREATE | cmd::CT_ADD => create(p).map_err(Outcome::from),
        cmd::CT_DELETE => delete(p, w),
        cmd::CT_UPDATE => update(p, w),
        cmd::CT_FLUSH => {
            let mut ct = open()?;
            let r = match ctnl::Family::from_af(p.family) {
                None => ct.flush_all(),
                Some(f) => ct.flush_family(f),
            };
            eprintln!("{PREFIX}connection tracking table has been emptied.");
            r.map_err(|e| failed(&e, p.command))?;
            Ok(0)
        }
        cmd::CT_COUNT => {
            let mut ct = open()?;
            let n = match ct.stats() {
                Ok(s) => s.entries as u64,
                Err(_) => std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_count")
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .ok_or_else(|| {
                        Fail::other("Can't open /proc/sys/net/netfilter/nf_conntrack_count")
                    })?,
            };
            writeln!(w, "{n}")?;
            Ok(0)
        }
        cmd::CT_STATS => {
            let mut ct = open()?;
            let stats = ct.stats_cpu().map_err(|e| failed(&e, p.command))?;
            for s in stats {
                writeln!(
                    w,
                    "cpu={:<4}\tfound={} invalid={} insert={} insert_failed={} drop={} early_drop={} error={} search_restart={} clash_resolve={} chaintoolong={} ",
                    s.cpu,
                    s.found,
                    s.invalid,
                    s.insert,
                    s.insert_failed,
                    s.drop,
                    s.early_drop,
                    s.error,
                    s.search_restart,
                    s.clash_resolve,
                    s.chain_toolong
                )?;
            }
            Ok(0)
        }
        cmd::CT_EVENT => events(p, w),
        cmd::EXP_FLUSH => {
            let mut ct = open()?;
            let r = ct.flush_expect(ctnl::Family::from_af(p.family));
            eprintln!("{PREFIX}expectation table has been emptied.");
            r.map_err(|e| failed(&e, p.command))?;
            Ok(0)
        }
        cmd::EXP_GET | cmd::EXP_DELETE => {
            let t = orig_tuple(p)
                .ok_or_else(|| Fail::param("you have to specify `--src' and `--dst'"))?;
            let mut ct = open()?;
            if p.command == cmd::EXP_GET {
                let x = ct
                    .get_expect(&t, p.tmpl.id)
                    .map_err(|e| failed(&e, p.command))?;
                // conntrack-tools leaves the XML document of -G expect open.
                ExpPrinter::new(p).print(w, &x, None)?;
            } else {
                ct.delete_expect(&t, p.tmpl.id)
                    .map_err(|e| failed(&e, p.command))?;
            }
            // conntrack-tools counts nothing here ("0 expectations have been shown." after -D expect).
            Ok(0)
        }
        cmd::EXP_CREATE => {
            let master = orig_tuple(p)
                .ok_or_else(|| Fail::param("you have to specify `--src' and `--dst'"))?;
            let t = &p.tmpl;
            let proto = t.l4proto.unwrap_or(0);
            let mk = |src: Option<IpAddr>, dst: Option<IpAddr>, l4: super::parse::L4Fields| {
                let (src, dst) = (src?, dst?);
                let mut x = ctnl::Tuple::ports(src, dst, proto, 0, 0);
                x.l4 = tmpl_l4(p, l4.sport, l4.dport, proto, src.is_ipv6());
                Some(x)
            };
            let mut x = ctnl::Expect::default();
            x.family = master.family();
            x.tuple = mk(t.tuple_src, t.tuple_dst, t.tuple_l4);
            x.mask = mk(t.mask_src, t.mask_dst, t.mask_l4);
            x.master = Some(master);
            x.timeout = t.timeout;
            let mut ct = open()?;
            ct.create_expect(&x).map_err(|e| failed(&e, p.command))?;
            Ok(0)
        }
        cmd::EXP_EVENT => {
            let mask = if p.options & opt::EVENT_MASK != 0 {
                p.event_mask
            } else {
                ev::NEW | ev::UPD | ev::DEL
            };
            let mut groups = Groups::empty();
            for (bit, g) in [
                (ev::NEW, Groups::EXP_NEW),
                (ev::UPD, Groups::EXP_UPDATE),
                (ev::DEL, Groups::EXP_DESTROY),
            ] {
                if mask & bit != 0 {
                    groups |= g;
                }
            }
            let mut sock =
                EventSocket::open(groups).map_err(|_| Fail::other("Can't open handler"))?;
            sock.set_timeout(Some(std::time::Duration::from_millis(100)))
                .map_err(|_| Fail::other("Can't open handler"))?;
            let stop = stop_on_signals()?;
            let mut printer = ExpPrinter::new(p);
            let mut counter = 0usize;
            while !stop.load(Ordering::Relaxed) {
                match sock.next_event() {
                    Ok(Some(ctnl::Event::Expect { kind, expect })) => {
                        if printer.print(w, &expect, Some(kind))? {
                            w.flush()?;
                            counter += 1;
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => w.flush()?,
                    Err(CtError::Overrun) => {
                        eprintln!("WARNING: We have hit ENOBUFS! We are losing events.")
                    }
                    Err(e) => {
                        return Err(
                            Fail::other(format!("failed to received netlink event: {e}")).into(),
                        );
                    }
                }
            }
            // conntrack-tools' handler for SIGINT/SIGTERM: </expect>, the summary on stderr, then exit 0.
            printer.finish(w)?;
            w.flush()?;
            eprintln!("{PREFIX}{counter} expectation events have been shown.");
            Ok(0)
        }
        cmd::EXP_STATS => {
            let mut ct = open()?;
            for s in ct.expect_stats_cpu().map_err(|e| failed(&e, p.command))? {
                writeln!(
                    w,
                    "cpu={:<4}\texpect_new={} expect_create={} expect_delete={} ",
                    s.cpu, s.new, s.create, s.delete
                )?;
            }
            Ok(0)
        }
        cmd::EXP_LIST => {
            let mut ct = open()?;
            let mut printer = ExpPrinter::new(p);
            let mut n = 0usize;
            for x in ct
                .dump_expect(ctnl::Family::from_af(p.family))
                .map_err(|e| failed(&e, p.command))?
            {
                let x = x.map_err(|e| failed(&e, p.command))?;
                if printer.print(w, &x, None)? {
                    n += 1;
                }
            }
            printer.finish(w)?;
            Ok(n)
        }
        cmd::EXP_COUNT => {
            let mut ct = open()?;
            let mut n = 0usize;
            for e in ct
                .dump_expect(ctnl::Family::from_af(p.family))
                .map_err(|e| failed(&e, p.command))?
            {
                e.map_err(|e| failed(&e, p.command))?;
                n += 1;
            }
            writeln!(w, "{n}")?;
            Ok(0)
        }
        _ => Err(Fail::other(
            "Operation failed: this command is not implemented yet by this conntrack",
        )
        .into()),
    }
}

/// Prints expectations as conntrack-tools' `dump_exp_cb`/`event_exp_cb` do: `-o xml` opens an `<expect>`
/// document, `-o timestamp` prefixes `[secs.usecs]\t` (left-aligned, space-padded) or adds `<when>` in XML.
#[derive(Debug)]
struct ExpPrinter {
    output: u32,
    xml_open: bool,
    line: String,
}

impl ExpPrinter {
    fn new(p: &Parsed) -> Self {
        ExpPrinter {
            output: p.output,
            xml_open: false,
            line: String::new(),
        }
    }

    /// Prints one expectation (nothing for one without an expected tuple); `true` when it did.
    fn print(
        &mut self,
        w: &mut dyn Write,
        x: &ctnl::Expect,
        event: Option<EventKind>,
    ) -> std::io::Result<bool> {
        if x.tuple.is_none() {
            return Ok(false);
        }
        self.line.clear();
        let tms = self.output & out::TMS != 0;
        if self.output & out::JSON != 0 {
            x.write_json(&mut self.line, event);
        } else if self.output & out::XML != 0 {
            if !self.xml_open {
                self.xml_open = true;
                w.write_all(b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<expect>\n")?;
            }
            x.write_xml(&mut self.line, event, tms.then(Clock::system).as_ref());
        } else {
            if tms {
                let d = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                write!(w, "[{:<8}.{:<6}]\t", d.as_secs(), d.subsec_micros())?;
            }
            x.write_text(&mut self.line, event);
        }
        self.line.push('\n');
        w.write_all(self.line.as_bytes())?;
        Ok(true)
    }

    /// Closes the XML document if one was opened.
    fn finish(&mut self, w: &mut dyn Write) -> std::io::Result<()> {
        if self.xml_open {
            self.xml_open = false;
            w.write_all(b"</expect>\n")?;
        }
        Ok(())
    }
}

/// Bytes of undecoded entries `list` hands from the dump thread to the printing thread at a time (about
/// 1,000 UDP entries, 8 datagrams).
const RAW_HANDOVER: usize = 256 << 10;

/// Entries handed from the dump thread to the printing thread at a time.
const BATCH: usize = 512;

/// The dump-thread half of `list` and `delete`: sends what `pick` keeps of each dumped entry to `tx` in
/// batches of [`BATCH`]. A dump error is sent as the command's failure and ends the dump; so does a closed
/// receiver (the printing side returned early).
fn send_batches<T>(
    tx: &std::sync::mpsc::SyncSender<Result<Vec<T>, Fail>>,
    dump: Result<impl IntoIterator<Item = Result<Entry, CtError>>, CtError>,
    command: u32,
    mut pick: impl FnMut(&Entry) -> Option<T>,
) {
    let iter = match dump {
        Ok(i) => i,
        Err(e) => {
            let _ = tx.send(Err(failed(&e, command)));
            return;
        }
    };
    let mut batch = Vec::with_capacity(BATCH);
    for e in iter {
        let e = match e {
            Ok(e) => e,
            Err(e) => {
                let _ = tx.send(Err(failed(&e, command)));
                return;
            }
        };
        if let Some(item) = pick(&e) {
            batch.push(item);
            if batch.len() == BATCH
                && tx
                    .send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))))
                    .is_err()
            {
                return;
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(Ok(batch));
    }
}

fn list(p: &Parsed, w: &mut dyn Write) -> Result<usize, Outcome> {
    let mut printer = Printer::new(p);
    if p.table == Table::Conntrack {
        if p.options & opt::COMPARISON != 0 && p.options & opt::ZERO != 0 {
            return Err(Fail::param("Can't use -z with filtering parameters").into());
        }
        mask_checks(p)?;
    }
    let m = Matcher::new(p, printer.map(), true)?;
    let mut ct = open()?;
    // Two stages on two threads: the dump thread only waits for the kernel's datagrams and copies their
    // entries out undecoded; this thread decodes, filters, formats and writes. A bounded channel keeps
    // memory flat whatever the table size.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<ctnl::RawItems, Fail>>(8);
    let (free_tx, free_rx) = std::sync::mpsc::channel::<ctnl::RawItems>();
    let user_filter = std::sync::OnceLock::<Option<DumpFilter>>::new();
    let user_filter = &user_filter;
    std::thread::scope(|sc| {
        sc.spawn(move || {
            let dump = match p.table {
                Table::Dying => ct.dump_dying(),
                Table::Unconfirmed => ct.dump_unconfirmed(),
                // `-u SRC_NAT`, `DST_NAT` or `UNSET` alone leave a zero status mask, which conntrack-tools
                // sends to the kernel as it is: the kernel refuses it (EINVAL).
                _ if p.options & opt::STATUS != 0 && p.tmpl.status_mask == 0 => {
                    let _ = tx.send(Err(Fail::other("Operation failed: invalid parameters")));
                    return;
                }
                _ => {
                    let filter = kernel_filter(p, true, true);
                    if p.options & opt::ZERO != 0 {
                        ct.zero_counters(&filter)
                    } else {
                        ct.dump(&filter)
                    }
                }
            };
            let mut dump = match dump {
                Ok(d) => d,
                Err(e) => {
                    let _ = tx.send(Err(failed(&e, p.command)));
                    return;
                }
            };
            let _ = user_filter.set(dump.user_filter().cloned());
            loop {
                // Buffers come back from the printing side to be refilled. Several datagrams go in one
                // hand-over: with a single free core, every hand-over costs two context switches.
                let mut raw = free_rx
                    .try_recv()
                    .unwrap_or_else(|_| ctnl::RawItems::with_capacity(RAW_HANDOVER + (64 << 10)));
                raw.clear();
                let mut end = false;
                while raw.encoded_len() < RAW_HANDOVER {
                    match dump.next_raw(&mut raw) {
                        None => {
                            end = true;
                            break;
                        }
                        Some(Ok(())) => {}
                        Some(Err(e)) => {
                            let _ = tx.send(Err(failed(&e, p.command)));
                            return;
                        }
                    }
                }
                if (!raw.is_empty() && tx.send(Ok(raw)).is_err()) || end {
                    return;
                }
            }
        });
        let mut counter = 0usize;
        let mut e = Entry::default();
        // On an early return the receiver is dropped, which stops the dump thread at its next send.
        for raw in rx {
            let raw = raw?;
            // Set before the first batch was sent.
            let uf = user_filter.get().and_then(Option::as_ref);
            for item in raw.iter() {
                item.decode_into(&mut e)
                    .map_err(|err| failed(&err, p.command))?;
                if uf.is_some_and(|f| !f.matches(&e)) {
                    continue;
                }
                if m.matches(&e) {
                    printer.print(w, &e, None, true, true)?;
                    counter += 1;
                }
            }
            let _ = free_tx.send(raw);
        }
        printer.finish(w)?;
        Ok(counter)
    })
}

fn mask_checks(p: &Parsed) -> Result<(), Fail> {
    if p.options & opt::MASK_SRC != 0 && p.options & opt::ORIG_SRC == 0 {
        return Err(Fail::param("Can't use --mask-src without --src"));
    }
    if p.options & opt::MASK_DST != 0 && p.options & opt::ORIG_DST == 0 {
        return Err(Fail::param("Can't use --mask-dst without --dst"));
    }
    Ok(())
}

fn tmpl_l4(p: &Parsed, sport: Option<u16>, dport: Option<u16>, proto: u8, v6: bool) -> ctnl::L4 {
    let t = &p.tmpl;
    match p.proto {
        Some(ProtoKind::Icmp) | Some(ProtoKind::Icmpv6) => {
            let (id, kind, code) = (
                t.icmp_id.unwrap_or(0),
                t.icmp_type.unwrap_or(0),
                t.icmp_code.unwrap_or(0),
            );
            if v6 || proto == 58 {
                ctnl::L4::Icmpv6 { id, kind, code }
            } else {
                ctnl::L4::Icmp { id, kind, code }
            }
        }
        Some(ProtoKind::Unknown) | None => ctnl::L4::None,
        _ => match (sport, dport) {
            (None, None) => ctnl::L4::None,
            (s, d) => ctnl::L4::Ports {
                src: s.unwrap_or(0),
                dst: d.unwrap_or(0),
            },
        },
    }
}

/// The ICMP type of the reply to `kind` (the kernel's table, [`ctnl::icmp_reply_type`]); 255 for a type
/// without one, as libnetfilter_conntrack sets it (the kernel refuses it).
fn reply_type(fam: ctnl::Family, kind: u8) -> u8 {
    ctnl::icmp_reply_type(fam, kind).unwrap_or(255)
}

/// The other direction's tuple: addresses and ports swapped, an ICMP type replaced by its reply type
/// (255 for a type without one, where [`ctnl::Tuple::reversed`] keeps the type).
fn invert(t: &ctnl::Tuple) -> ctnl::Tuple {
    let mut r = t.reversed();
    match (t.l4, &mut r.l4) {
        (ctnl::L4::Icmp { kind, .. }, ctnl::L4::Icmp { kind: reply, .. }) => {
            *reply = reply_type(ctnl::Family::Ipv4, kind);
        }
        (ctnl::L4::Icmpv6 { kind, .. }, ctnl::L4::Icmpv6 { kind: reply, .. }) => {
            *reply = reply_type(ctnl::Family::Ipv6, kind);
        }
        _ => {}
    }
    r.zone = None;
    r
}

fn tuple_from(
    p: &Parsed,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    l4: (Option<u16>, Option<u16>),
) -> Option<ctnl::Tuple> {
    let (src, dst) = (src?, dst?);
    let proto = p.tmpl.l4proto.unwrap_or(0);
    let mut t = ctnl::Tuple::ports(src, dst, proto, 0, 0);
    t.l4 = tmpl_l4(p, l4.0, l4.1, proto, src.is_ipv6());
    Some(t)
}

fn orig_tuple(p: &Parsed) -> Option<ctnl::Tuple> {
    let mut t = tuple_from(
        p,
        p.tmpl.orig_src,
        p.tmpl.orig_dst,
        (p.tmpl.orig_l4.sport, p.tmpl.orig_l4.dport),
    )?;
    t.zone = p.tmpl.orig_zone;
    Some(t)
}

fn repl_tuple(p: &Parsed) -> Option<ctnl::Tuple> {
    let t = tuple_from(
        p,
        p.tmpl.repl_src,
        p.tmpl.repl_dst,
        (p.tmpl.repl_l4.sport, p.tmpl.repl_l4.dport),
    )?;
    let mut t = repl_l4_types(t);
    t.zone = p.tmpl.repl_zone;
    Some(t)
}

/// `--icmp-type` names the original direction's type; the reply tuple carries its reply type, as
/// libnetfilter_conntrack's setter fills it in (code and id are the same in both directions).
fn repl_l4_types(mut t: ctnl::Tuple) -> ctnl::Tuple {
    t.l4 = match t.l4 {
        ctnl::L4::Icmp { id, kind, code } => ctnl::L4::Icmp {
            id,
            kind: reply_type(ctnl::Family::Ipv4, kind),
            code,
        },
        ctnl::L4::Icmpv6 { id, kind, code } => ctnl::L4::Icmpv6 {
            id,
            kind: reply_type(ctnl::Family::Ipv6, kind),
            code,
        },
        other => other,
    };
    t
}

/// The TCP protocol info of a create or a `-U --state`: the state, and in both directions SACK_PERM and
/// BE_LIBERAL (no window tracking for hand-made entries), plus CLOSE_INIT from TIME_WAIT on so that a new
/// SYN can reopen the connection, as conntrack-tools' TCP handler sets them (flags and mask alike).
fn tcp_info(state: Option<u8>) -> ctnl::TcpInfo {
    let mut flags = ctnl::TcpFlags::SACK_PERM | ctnl::TcpFlags::BE_LIBERAL;
    if state.is_some_and(|s| s >= 7) {
        flags |= ctnl::TcpFlags::CLOSE_INIT;
    }
    let tf = ctnl::TcpFlagsMasked { flags, mask: flags };
    let mut info = ctnl::TcpInfo::default();
    info.state = state;
    info.flags_orig = Some(tf);
    info.flags_reply = Some(tf);
    info
}

/// A tuple of which only one address was given, next to a whole tuple the other way (`-s A -d B -q C`):
/// conntrack-tools sends it as libnetfilter_conntrack holds it, the missing address all zeros, ports
/// not given 0. A reply of a protocol with ports or keys has its protocol only if a reply-side option
/// set it (`--reply-port-*`, `--reply-key-*`): else protocol 0, which the kernel refuses against the
/// original's ("invalid parameters"). (Checked against conntrack-tools 1.4.7: the differential test,
/// seed 7 line 24772, and `create_with_one_address_of_a_tuple` in conntrack_golden.)
fn partial_tuple(p: &Parsed, reply: bool) -> Option<ctnl::Tuple> {
    let t = &p.tmpl;
    let (src, dst, l4) = if reply {
        (t.repl_src, t.repl_dst, &t.repl_l4)
    } else {
        (t.orig_src, t.orig_dst, &t.orig_l4)
    };
    let zero = |a: IpAddr| match a {
        IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    };
    let (src, dst) = match (src, dst) {
        (Some(s), None) => (s, zero(s)),
        (None, Some(d)) => (zero(d), d),
        _ => return None,
    };
    let ports = matches!(t.l4proto, Some(6 | 17 | 136 | 132 | 33 | 47));
    let mut tuple = if ports {
        let mut tuple = ctnl::Tuple::ports(src, dst, t.l4proto.unwrap_or(0), 0, 0);
        tuple.l4 = ctnl::L4::Ports {
            src: l4.sport.unwrap_or(0),
            dst: l4.dport.unwrap_or(0),
        };
        tuple
    } else {
        tuple_from(p, Some(src), Some(dst), (l4.sport, l4.dport))?
    };
    if reply {
        let icmp = matches!(p.proto, Some(ProtoKind::Icmp | ProtoKind::Icmpv6));
        if icmp {
            tuple = repl_l4_types(tuple);
        } else if ports && l4.sport.is_none() && l4.dport.is_none() {
            tuple.proto = 0;
            tuple.l4 = ctnl::L4::None;
        }
        tuple.zone = t.repl_zone;
    } else {
        tuple.zone = t.orig_zone;
    }
    Some(tuple)
}

/// The entry `-I`/`-A` creates from the template.
pub fn entry_for_create(p: &Parsed, map: Option<&LabelMap>) -> Result<Entry, Fail> {
    let t = &p.tmpl;
    let (whole_orig, whole_repl) = (orig_tuple(p), repl_tuple(p));
    let orig = whole_orig
        .clone()
        .or_else(|| whole_repl.as_ref().and_then(|_| partial_tuple(p, false)));
    let repl = whole_repl.or_else(|| whole_orig.as_ref().and_then(|_| partial_tuple(p, true)));
    let (orig, reply) = match (orig, repl) {
        (Some(o), Some(r)) => (o, r),
        (Some(o), None) => {
            let mut r = invert(&o);
            r.zone = t.repl_zone;
            (o, r)
        }
        (None, Some(mut r)) => {
            // libnetfilter_conntrack builds the original tuple by inverting the reply one, whose
            // protocol only reply-side options (`--reply-port-*`, `--reply-key-*`) set for a protocol
            // with ports or keys: without them both tuples go as protocol 0 (a generic entry).
            if matches!(t.l4proto, Some(6 | 17 | 136 | 132 | 33 | 47))
                && t.repl_l4.sport.is_none()
                && t.repl_l4.dport.is_none()
            {
                r.proto = 0;
                r.l4 = ctnl::L4::None;
            }
            let mut o = invert(&r);
            // The original direction keeps the ICMP type given (the reply has its reply type).
            if let (ctnl::L4::Icmp { kind, .. } | ctnl::L4::Icmpv6 { kind, .. }, Some(given)) =
                (&mut o.l4, t.icmp_type)
            {
                *kind = given;
            }
            o.zone = t.orig_zone;
            (o, r)
        }
        (None, None) => return Err(Fail::param("you have to specify `--src' and `--dst'")),
    };
    let mut e = Entry::new(orig, reply);
    e.timeout = t.timeout;
    if p.options & opt::STATUS != 0 {
        e.status = Some(ctnl::Status::from_bits_retain(t.status));
    }
    if p.options & opt::MARK != 0 {
        e.mark = Some(t.mark);
    }
    e.zone = t.zone;
    // libnetfilter_conntrack sends a NAT port only for TCP and UDP (`nfct_build_protonat`); for other
    // protocols the port of `--src-nat A:P`/`--dst-nat A:P` is dropped, so the kernel keeps the
    // entry's own port (or ICMP id).
    let nat_port = |port: Option<u16>| port.filter(|_| matches!(t.l4proto, Some(6 | 17)));
    if let Some(a) = t.snat.addr {
        e.nat_src = Some(ctnl::NatRange {
            min_ip: Some(a),
            max_ip: Some(a),
            min_port: nat_port(t.snat.port),
            max_port: nat_port(t.snat.port),
        });
    }
    if let Some(a) = t.dnat.addr {
        e.nat_dst = Some(ctnl::NatRange {
            min_ip: Some(a),
            max_ip: Some(a),
            min_port: nat_port(t.dnat.port),
            max_port: nat_port(t.dnat.port),
        });
    }
    match p.proto {
        Some(ProtoKind::Tcp) => {
            e.protoinfo = Some(ctnl::ProtoInfo::Tcp(tcp_info(t.state)));
        }
        Some(ProtoKind::Sctp) => {
            let mut info = ctnl::SctpInfo::default();
            info.state = t.state;
            // Byte-swapped like conntrack-tools, so entries look the same to both tools.
            info.vtag_orig = t.orig_vtag.map(u32::swap_bytes);
            info.vtag_reply = t.repl_vtag.map(u32::swap_bytes);
            e.protoinfo = Some(ctnl::ProtoInfo::Sctp(info));
        }
        Some(ProtoKind::Dccp) => {
            let mut info = ctnl::DccpInfo::default();
            info.state = t.state;
            info.role = t.dccp_role;
            e.protoinfo = Some(ctnl::ProtoInfo::Dccp(info));
        }
        _ => {}
    }
    if p.options & opt::ADD_LABEL != 0 {
        let mut bits = vec![0u8; 16];
        for n in &t.label_modify {
            let b = map
                .and_then(|m| m.bit(n))
                .ok_or_else(|| Fail::param(format!("unknown label '{n}'")))?;
            if b / 8 >= bits.len() {
                bits.resize(b / 8 + 1, 0);
            }
            bits[b / 8] |= 1 << (b % 8);
        }
        e.labels = Some(bits);
    }
    Ok(e)
}

fn create(p: &Parsed) -> Result<usize, Fail> {
    let map = if p.options & opt::ADD_LABEL != 0 {
        LabelMap::load()
    } else {
        None
    };
    let e = entry_for_create(p, map.as_ref())?;
    let mut ct = open()?;
    match ct.create(&e) {
        Ok(()) => Ok(1),
        Err(CtError::Exists) if p.command == cmd::CT_ADD => Ok(0),
        Err(err) => Err(failed(&err, p.command)),
    }
}

fn get(p: &Parsed, w: &mut dyn Write) -> Result<usize, Outcome> {
    let mut printer = Printer::new(p);
    // A reply port or key without a reply address: libnetfilter_conntrack builds a reply tuple without a
    // family, fails before sending and leaves errno at 0, so conntrack-tools reports "Success".
    if (p.tmpl.repl_l4.sport.is_some() || p.tmpl.repl_l4.dport.is_some())
        && p.tmpl.repl_src.is_none()
        && p.tmpl.repl_dst.is_none()
    {
        return Err(Fail::other("Operation failed: Success").into());
    }
    // conntrack-tools always sends an original tuple (its family is always set), so a -G by reply tuple
    // alone reaches the kernel with an original tuple lacking addresses (EINVAL), and one with a single
    // original address looks up the other as zero (ENOENT). We answer the same without asking.
    let key = match orig_tuple(p) {
        Some(t) => Key::orig(t),
        None if repl_tuple(p).is_some() => {
            let why = if p.tmpl.orig_src.is_some() || p.tmpl.orig_dst.is_some() {
                "such conntrack doesn't exist"
            } else {
                "invalid parameters"
            };
            return Err(Fail::other(format!("Operation failed: {why}")).into());
        }
        None => return Err(Fail::param("you have to specify `--src' and `--dst'").into()),
    };
    let key = match (p.tmpl.id, p.tmpl.zone) {
        (Some(id), _) => key.with_id(id),
        (None, Some(z)) => key.with_zone(z),
        _ => key,
    };
    let m = Matcher::new(p, printer.map(), false)?;
    let mut ct = open()?;
    let e = ct.get(&key).map_err(|e| failed(&e, p.command))?;
    // The kernel finds an entry by either of its tuples; conntrack-tools then filters what it got like a
    // listing (an entry found by its reply tuple does not match the original one asked for: 0 shown).
    if !m.matches(&e) {
        return Ok(0);
    }
    printer.print(w, &e, None, true, true)?;
    // conntrack-tools does not close the XML document after -G.
    Ok(1)
}

/// `t` without its direction's zone.
fn zoneless(t: &ctnl::Tuple) -> ctnl::Tuple {
    let mut t = t.clone();
    t.zone = None;
    t
}

/// The key naming `e` by its reply tuple and id. With directional zones (`--orig-zone`, `--reply-zone`)
/// an entry's original tuple can also be another entry's reply tuple; the kernel looks a tuple up in both
/// directions, finds the other entry first, and the id does not match ("not found"); ours asks again by
/// this key. (conntrack-tools sends no id: it deletes the other entry in its place.)
fn key_by_reply(e: &Entry) -> Option<Key> {
    let mut k = Key::reply(e.reply.clone()?).with_id(e.id?);
    k.zone = e.zone;
    Some(k)
}

fn delete(p: &Parsed, w: &mut dyn Write) -> Result<usize, Outcome> {
    mask_checks(p)?;
    let mut printer = Printer::new(p);
    printer.xml_document = false;
    printer.save_as = Some(EventKind::Destroy);
    let m = Matcher::new(p, printer.map(), false)?;
    let mut dumper = open()?;
    let mut deleter = open()?;
    // Pipelined like conntrack-tools (which deletes from inside its dump callback), but batched: one thread
    // dumps (kernel-filtered where possible) and filters, this one deletes each batch with one sendmsg and
    // prints what went.
    // Each victim: its key, the key by its reply tuple (to ask again), and what to print.
    type Victim = (Key, Option<Key>, Entry);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<Victim>, Fail>>(8);
    let m = &m;
    std::thread::scope(|sc| {
        sc.spawn(move || {
            // One dump, so deleted entries are printed in the kernel's hash order like conntrack-tools
            // (per-family dumps would let the kernel filter tuple fields, but reorder the lines).
            let filter = kernel_filter(p, false, true);
            send_batches(&tx, dumper.dump(&filter), p.command, |e| {
                if !m.matches(e) {
                    return None;
                }
                Some((Key::of(e)?, key_by_reply(e), e.clone()))
            });
        });
        let mut counter = 0usize;
        for victims in rx {
            let victims = victims?;
            let mut batch = deleter.batch();
            for (k, _, _) in &victims {
                batch.delete(k).map_err(|e| failed(&e, p.command))?;
            }
            let report = batch.finish().map_err(|e| failed(&e, p.command))?;
            for (i, (_, by_reply, f)) in victims.iter().enumerate() {
                let result = match (report.result(i), by_reply) {
                    (Err(CtError::NotFound), Some(k)) => deleter.delete(k),
                    (Err(CtError::NotFound), None) => Err(CtError::NotFound),
                    (Err(e), _) => return Err(failed(e, p.command).into()),
                    (Ok(()), _) => Ok(()),
                };
                match result {
                    Ok(()) => {
                        printer.print(w, f, None, false, false)?;
                        counter += 1;
                    }
                    // Gone in the meantime (timed out): not ours to report.
                    Err(CtError::NotFound) => {}
                    Err(e) => return Err(failed(&e, p.command).into()),
                }
            }
        }
        Ok(counter)
    })
}

fn update(p: &Parsed, w: &mut dyn Write) -> Result<usize, Outcome> {
    mask_checks(p)?;
    let mut printer = Printer::new(p);
    printer.xml_document = false;
    let m = Matcher::new(p, printer.map(), false)?;
    let t = &p.tmpl;
    let mut modify_bits: Option<Vec<u8>> = None;
    if p.options & (opt::ADD_LABEL | opt::DEL_LABEL) != 0 && !t.label_modify.is_empty() {
        let mut bits = vec![0u8; 16];
        for n in &t.label_modify {
            let b = printer
                .map()
                .and_then(|mp| mp.bit(n))
                .ok_or_else(|| Fail::param(format!("unknown label '{n}'")))?;
            bits[(b / 8).min(15)] |= 1 << (b % 8);
        }
        modify_bits = Some(bits);
    }
    let mut ct = open()?;
    let mut changes: Vec<(Entry, Option<ctnl::Tuple>)> = Vec::new();
    // Every entry's tuples, without zones, to tell a shared one.
    let (mut origs, mut replies) = (
        std::collections::HashSet::new(),
        std::collections::HashSet::new(),
    );
    // conntrack-tools dumps with the command's family in nfgenmsg: `-f` (or an address) restricts -U to it.
    let mut scope = DumpFilter::all();
    scope.family = ctnl::Family::from_af(p.family);
    for e in ct.dump(&scope).map_err(|e| failed(&e, p.command))? {
        let e = e.map_err(|e| failed(&e, p.command))?;
        origs.extend(e.orig.as_ref().map(zoneless));
        replies.extend(e.reply.as_ref().map(zoneless));
        if !m.matches_update(&e) {
            continue;
        }
        let Some(orig) = e.orig.clone() else { continue };
        let mut u = Entry::for_update(orig);
        u.family = e.family;
        u.id = e.id;
        u.zone = e.zone;
        let mut changed = false;
        if let Some(to) = t.timeout {
            u.timeout = Some(to);
            changed |= e.timeout != Some(to);
        }
        if p.options & opt::MARK != 0 {
            let old = e.mark.unwrap_or(0);
            let new = (old & !t.mark_mask) ^ t.mark;
            u.mark = Some(new);
            changed |= e.mark != Some(new);
        }
        if p.options & opt::STATUS != 0 {
            let old = e.status.map_or(0, |s| s.bits());
            let new = old | t.status;
            u.status = Some(ctnl::Status::from_bits_retain(new));
            changed |= new != old;
        }
        // `--state` (and SCTP's `--orig-vtag`/`--reply-vtag`) are set too: conntrack-tools copies the
        // template's protocol info into each update. An entry without that protocol info (DCCP on a
        // kernel that tracks it as a generic protocol) counts as changed, as libnetfilter_conntrack's
        // comparison has it.
        if let Some((info, differs)) = update_protoinfo(p, &e) {
            u.protoinfo = Some(info);
            changed |= differs;
        }
        // A `--src-nat`/`--dst-nat` address goes into each update as well (conntrack-tools copies the
        // template's NAT setup), and a dumped entry carries none, so every selected entry is sent one;
        // the kernel refuses NAT on an existing entry ("Operation not supported").
        for (spec, slot) in [(&t.snat, &mut u.nat_src), (&t.dnat, &mut u.nat_dst)] {
            if let Some(a) = spec.addr {
                *slot = Some(ctnl::NatRange {
                    min_ip: Some(a),
                    max_ip: Some(a),
                    ..Default::default()
                });
                changed = true;
            }
        }
        if p.options & (opt::ADD_LABEL | opt::DEL_LABEL) != 0 {
            let cur = e.labels.clone();
            // Deleting labels of an entry that has none changes nothing there (the rest of the update
            // still goes, as in conntrack-tools' copy_label).
            let mut skip_labels = false;
            let len = cur.as_ref().map_or(16, Vec::len).max(16);
            let mut labels = cur.clone().unwrap_or_default();
            labels.resize(len, 0);
            let mut mask = vec![0u8; len];
            match (&modify_bits, p.options & opt::ADD_LABEL != 0) {
                (Some(bits), true) => {
                    // The kernel computes new = (old & !mask) ^ labels: send only the bits to change.
                    for i in 0..len {
                        let b = bits.get(i).copied().unwrap_or(0);
                        labels[i] = b;
                        mask[i] = b;
                    }
                }
                (Some(bits), false) => {
                    if cur.is_none() {
                        skip_labels = true;
                    }
                    for i in 0..len {
                        labels[i] = 0;
                        mask[i] = bits.get(i).copied().unwrap_or(0);
                    }
                }
                (None, _) => {
                    if cur.is_none() {
                        skip_labels = true;
                    }
                    labels = vec![0u8; len];
                    mask = vec![0xffu8; len];
                }
            }
            let mut before = cur.clone().unwrap_or_default();
            before.resize(len, 0);
            let after: Vec<u8> = (0..len)
                .map(|i| (before[i] & !mask[i]) ^ labels[i])
                .collect();
            if !skip_labels {
                changed |= after != before;
                u.labels = Some(labels);
                u.labels_mask = Some(mask);
            }
        }
        if changed {
            changes.push((u, e.reply.clone()));
        }
    }
    let mut counter = 0;
    // An update the kernel refuses (EBUSY for a status bit it cannot change, EPERM for the timeout of a
    // FIXED_TIMEOUT entry, EOPNOTSUPP for NAT, ...) is reported on its own line without the prefix and
    // the entry is still shown and counted as it is now, as conntrack-tools 1.4.7's update callback does
    // for the first one; one that vanished meanwhile is skipped.
    for (u, reply) in &changes {
        // The kernel looks an update's tuple up in both directions and does not check the id: an entry
        // whose original tuple is also another entry's reply tuple (see `key_by_reply`) is updated by
        // its reply tuple.
        let shared = u
            .orig
            .as_ref()
            .is_some_and(|o| replies.contains(&zoneless(o)));
        let (result, key) = match reply {
            Some(r) if shared && !origs.contains(&zoneless(r)) => {
                let mut by_reply = u.clone();
                by_reply.orig = None;
                by_reply.reply = Some(r.clone());
                let mut key = Key::reply(r.clone());
                key.id = u.id;
                key.zone = u.zone;
                (ct.update(&by_reply), Some(key))
            }
            _ => (ct.update(u), Key::of(u)),
        };
        match result {
            Ok(()) => {}
            Err(CtError::NotFound) => continue,
            Err(e) => eprintln!("Operation failed: {}", err2str(&e, p.command)),
        }
        let Some(key) = key else { continue };
        match ct.get(&key) {
            Ok(now) => {
                if now.orig.is_some() {
                    printer.print(w, &now, None, false, true)?;
                }
            }
            Err(CtError::NotFound) => continue,
            Err(e) => return Err(failed(&e, p.command).into()),
        }
        counter += 1;
    }
    printer.finish(w)?;
    Ok(counter)
}

/// The protocol info a `-U` sets on `e` (`--state`, SCTP verification tags, DCCP role), and whether it
/// differs from what `e` holds; `None` when the command sets none.
fn update_protoinfo(p: &Parsed, e: &Entry) -> Option<(ctnl::ProtoInfo, bool)> {
    let t = &p.tmpl;
    let given = |v: Option<u8>, have: Option<u8>| v.is_some() && v != have;
    match p.proto {
        Some(ProtoKind::Tcp) => {
            let state = t.state?;
            // The same state and flags as a create, as conntrack-tools' TCP handler sets them.
            let info = tcp_info(Some(state));
            let has =
                |have: Option<ctnl::TcpFlagsMasked>, want: Option<ctnl::TcpFlagsMasked>| match (
                    have, want,
                ) {
                    (Some(h), Some(w)) => h.flags.contains(w.flags),
                    _ => want.is_none(),
                };
            let differs = match &e.protoinfo {
                Some(ctnl::ProtoInfo::Tcp(h)) => {
                    h.state != Some(state)
                        || !has(h.flags_orig, info.flags_orig)
                        || !has(h.flags_reply, info.flags_reply)
                }
                _ => true,
            };
            Some((ctnl::ProtoInfo::Tcp(info), differs))
        }
        Some(ProtoKind::Sctp) => {
            if t.state.is_none() && t.orig_vtag.is_none() && t.repl_vtag.is_none() {
                return None;
            }
            let mut info = ctnl::SctpInfo::default();
            info.state = t.state;
            // Byte-swapped like conntrack-tools, as for a create.
            info.vtag_orig = t.orig_vtag.map(u32::swap_bytes);
            info.vtag_reply = t.repl_vtag.map(u32::swap_bytes);
            let differs = match &e.protoinfo {
                Some(ctnl::ProtoInfo::Sctp(h)) => {
                    given(info.state, h.state)
                        || info.vtag_orig.is_some() && info.vtag_orig != h.vtag_orig
                        || info.vtag_reply.is_some() && info.vtag_reply != h.vtag_reply
                }
                _ => true,
            };
            Some((ctnl::ProtoInfo::Sctp(info), differs))
        }
        Some(ProtoKind::Dccp) => {
            if t.state.is_none() && t.dccp_role.is_none() {
                return None;
            }
            let mut info = ctnl::DccpInfo::default();
            info.state = t.state;
            info.role = t.dccp_role;
            let differs = match &e.protoinfo {
                Some(ctnl::ProtoInfo::Dccp(h)) => {
                    given(info.state, h.state) || given(info.role, h.role)
                }
                _ => true,
            };
            Some((ctnl::ProtoInfo::Dccp(info), differs))
        }
        _ => None,
    }
}

fn events(p: &Parsed, w: &mut dyn Write) -> Result<usize, Outcome> {
    let mut groups = Groups::empty();
    let mask = if p.options & opt::EVENT_MASK != 0 {
        p.event_mask
    } else {
        ev::NEW | ev::UPD | ev::DEL
    };
    if mask & ev::NEW != 0 {
        groups |= Groups::NEW;
    }
    if mask & ev::UPD != 0 {
        groups |= Groups::UPDATE;
    }
    if mask & ev::DEL != 0 {
        groups |= Groups::DESTROY;
    }
    let mut sock = match p.buffer_size {
        Some(b) => EventSocket::open_with(groups, b),
        None => EventSocket::open(groups),
    }
    .map_err(|_| Fail::other("Can't open netlink socket"))?;
    if p.buffer_size.is_some() {
        eprintln!(
            "NOTICE: Netlink socket buffer size has been set to {} bytes.",
            sock.rcvbuf()
        );
    }
    mask_checks(p)?;
    // A short read timeout lets buffered lines out when the burst pauses.
    sock.set_timeout(Some(std::time::Duration::from_millis(100)))
        .map_err(|_| Fail::other("Can't open netlink socket"))?;
    let mut printer = Printer::new(p);
    let m = Matcher::new(p, printer.map(), true)?;
    let stop = stop_on_signals()?;
    let mut names = PortNames::new();
    let mut counter = 0usize;
    let mut lost = 0u64;
    while !stop.load(Ordering::Relaxed) {
        match sock.next_event() {
            Ok(Some(ctnl::Event::Conntrack { kind, entry })) => {
                if p.family != 0 && entry.family.to_af() != p.family {
                    continue;
                }
                if !m.matches(&entry) {
                    continue;
                }
                if p.output & out::TMS != 0 && p.output & (out::XML | out::JSON | out::SAVE) == 0 {
                    let d = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default();
                    write!(w, "[{}.{:06}]\t", d.as_secs(), d.subsec_micros())?;
                }
                printer.user = names.lookup(sock.last_portid());
                printer.suffix = super::userspace::suffix_text(printer.user.as_ref());
                printer.refresh_clock();
                printer.print(w, &entry, Some(kind), true, true)?;
                counter += 1;
                if counter.is_multiple_of(64) {
                    w.flush()?;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => w.flush()?,
            Err(CtError::Overrun) => {
                lost += 1;
                w.flush()?;
                eprintln!(
                    "WARNING: We have hit ENOBUFS! We are losing events (overrun #{lost} after {counter} events shown).\nThis message means that the current netlink socket buffer size is too small.\nPlease, check --buffer-size in conntrack(8) manpage."
                );
            }
            Err(e) => {
                return Err(Fail::other(format!("failed to received netlink event: {e}")).into());
            }
        }
    }
    // SIGINT or SIGTERM: close the XML document; the caller prints "N flow events have been shown." and
    // exits 0, as conntrack-tools' signal handler does.
    printer.finish(w)?;
    Ok(counter)
}

/// A flag raised by SIGINT or SIGTERM. The event loops read with a 100 ms timeout and check it between
/// reads, so the summary is printed promptly, outside any signal handler.
fn stop_on_signals() -> Result<Arc<AtomicBool>, Fail> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| Fail::other(format!("cannot handle signal {sig}: {e}")))?;
    }
    Ok(stop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmp_reply_types() {
        assert_eq!(reply_type(ctnl::Family::Ipv4, 8), 0);
        assert_eq!(reply_type(ctnl::Family::Ipv6, 128), 129);
        // No reply type: 255, as libnetfilter_conntrack sets it.
        assert_eq!(reply_type(ctnl::Family::Ipv4, 3), 255);
        let t = ctnl::Tuple::ports(
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            6,
            1,
            2,
        );
        assert_eq!(invert(&t).l4, ctnl::L4::Ports { src: 2, dst: 1 });
        let icmp = |kind| ctnl::L4::Icmp {
            id: 7,
            kind,
            code: 0,
        };
        let mut echo = t.clone();
        echo.proto = 1;
        echo.l4 = icmp(8);
        assert_eq!(invert(&echo).l4, icmp(0));
        echo.l4 = icmp(3);
        assert_eq!(invert(&echo).l4, icmp(255));
    }
}
