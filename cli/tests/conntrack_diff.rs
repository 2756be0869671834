//! Differential test: generated `conntrack` command lines, run by conntrack-tools 1.4.7 and by ours on
//! twin tables (two network namespaces filled from the same varied corpus), compared on stdout, stderr
//! (the tool's prefix aside), exit status and the whole table afterwards, marks and labels included.
//!
//! The generator covers the whole option grammar: `-L`, `-G`, `-D`, `-U`, `-I`/`-A`, `-C`, `-F` and `-R`
//! (files of generated lines on stdin or as a file; each tool's `-L -o save` output, compared like any
//! output, then piped back through its own `-R -` as it is or rewritten into another zone); original and reply tuples with ports, masks and CIDR; each protocol's options; status with `!`;
//! marks with masks; zones by direction; NAT filters; `-f` and `-o`. Valid lines and invalid ones.
//!
//! conntrack-tools' own `Protocol error` flake is repeated on its side only (see [`FLAKE`]).
//!
//! Every line is generated from the seed and its own index, and the tables are refilled from the corpus
//! every [`BLOCK`] lines, so any line can be reproduced from its block: a mismatch prints the seed, the
//! line's index, the block's first index, the line and both outputs.
//!
//! Environment (the defaults are the CI run; `cargo xtask ct-diff` sets them for long runs):
//! `CT_DIFF_SEED` (default 2024), `CT_DIFF_START` (first line index, default 0), `CT_DIFF_COUNT`
//! (lines, default [`CI_COUNT`]), `CT_DIFF_MAX_REPORTS` (mismatches printed before giving up, default 20),
//! `CT_DIFF_DEBUG` (reports also print the block's corpus and earlier lines), `CT_DIFF_CORPUS=B` (print
//! block B's corpus and stop), `CT_DIFF_OURS` (our `conntrack` binary to test, default the one cargo
//! built with this test: a long run can test a copy while the tree changes).
//!
//! The deliberate differences listed in README.md ("Where `conntrack` differs from conntrack-tools 1.4.7
//! on purpose") are each recognised by one matcher in [`Deliberate`]; anything else fails the run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const OURS: &str = env!("CARGO_BIN_EXE_conntrack");

/// Lines in the CI run (fixed seed): about a minute on a quiet 2-core machine, under three when loaded.
const CI_COUNT: u64 = 2500;
/// Lines between two refills of the twin tables from the corpus.
const BLOCK: u64 = 40;

// ---------------------------------------------------------------------------------------------------
// Randomness: SplitMix64, seeded per line from (seed, index), so every line stands alone.

#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn for_line(seed: u64, index: u64, salt: u64) -> Rng {
        let mut r =
            Rng(seed ^ 0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(index.wrapping_add(1)) ^ salt);
        r.next();
        r
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// True with probability `pct` percent.
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------------------------------------------
// Value pools, shared by the corpus and the generated lines so that filters find entries.

const V4: &[&str] = &[
    "10.0.0.1",
    "10.0.0.2",
    "10.0.0.3",
    "10.0.1.1",
    "192.168.1.1",
    "172.16.0.9",
    "1.1.1.1",
    "2.2.2.2",
    "203.0.113.5",
];
const V6: &[&str] = &["fd00::1", "fd00::2", "fd00::3", "fd00::a", "2001:db8::1"];
const PORTS: &[u16] = &[1, 11, 21, 22, 53, 80, 443, 1000, 5000, 65535];
const MARKS: &[&str] = &["0", "1", "5", "7", "0x10", "255", "0xffffffff", "16"];
const ZONES: &[&str] = &["0", "1", "5", "11", "65535"];
const PROTOS: &[&str] = &[
    "tcp", "udp", "udplite", "sctp", "dccp", "icmp", "icmpv6", "gre", "99",
];
const TCP_STATES: &[&str] = &[
    "NONE",
    "SYN_SENT",
    "SYN_RECV",
    "ESTABLISHED",
    "FIN_WAIT",
    "CLOSE_WAIT",
    "LAST_ACK",
    "TIME_WAIT",
    "CLOSE",
    "LISTEN",
];
const SCTP_STATES: &[&str] = &[
    "NONE",
    "CLOSED",
    "COOKIE_WAIT",
    "COOKIE_ECHOED",
    "ESTABLISHED",
    "SHUTDOWN_SENT",
    "SHUTDOWN_RECD",
    "SHUTDOWN_ACK_SENT",
];
const DCCP_STATES: &[&str] = &[
    "NONE", "REQUEST", "RESPOND", "PARTOPEN", "OPEN", "CLOSEREQ", "CLOSING", "TIMEWAIT",
];
const STATUS_WORDS: &[&str] = &[
    "ASSURED",
    "SEEN_REPLY",
    "FIXED_TIMEOUT",
    "EXPECTED",
    "UNSET",
    "OFFLOAD",
    "HW_OFFLOAD",
    "UNREPLIED",
    "SRC_NAT",
    "DST_NAT",
];
const OUTPUT_WORDS: &[&str] = &[
    "extended",
    "id",
    "ktimestamp",
    "xml",
    "save",
    "labels",
    "userspace",
    "timestamp",
];
const ICMP_TYPES: &[u8] = &[0, 3, 8, 11, 13, 14, 15, 16, 17, 18];
const ICMPV6_TYPES: &[u8] = &[1, 128, 129, 135, 139, 140];
/// Words that are not what an option wants.
const JUNK: &[&str] = &[
    "bogus",
    "1.2.3.400",
    "::g",
    "-1",
    "0x",
    "",
    "1.2.3.4/33",
    "fd00::/129",
    "999999999999",
    "A,B",
    "!",
];

// ---------------------------------------------------------------------------------------------------
// The generator.

/// A generated step: the arguments after the program name, and the text of a `-R` file: fed on stdin
/// to `-R -`, or, with `file`, written to a file whose path replaces the `-`.
#[derive(Debug, Clone)]
struct Line {
    args: Vec<String>,
    stdin: Option<String>,
    file: bool,
}

impl Line {
    fn plain(args: Vec<String>) -> Line {
        Line {
            args,
            stdin: None,
            file: false,
        }
    }
    fn text(&self) -> String {
        match &self.stdin {
            Some(i) if self.file => format!("-R FILE   (FILE: {i:?})"),
            Some(i) => format!("{}   <<< {i:?}", self.args.join(" ")),
            None => self.args.join(" "),
        }
    }
    /// The arguments to run, with `file` the path the text was written to.
    fn argv(&self, file: &std::path::Path) -> Vec<String> {
        if self.file && self.stdin.is_some() {
            vec!["-R".into(), file.display().to_string()]
        } else {
            self.args.clone()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fam {
    V4,
    V6,
}

struct Gen<'a> {
    r: &'a mut Rng,
    out: Vec<String>,
}

impl Gen<'_> {
    fn push(&mut self, w: impl Into<String>) {
        self.out.push(w.into());
    }
    fn opt(&mut self, o: &str, v: impl Into<String>) {
        self.push(o);
        self.push(v);
    }
    fn addr(&mut self, f: Fam) -> String {
        if self.r.chance(3) {
            return self.r.pick(JUNK).to_string();
        }
        match f {
            Fam::V4 => self.r.pick(V4).to_string(),
            Fam::V6 => self.r.pick(V6).to_string(),
        }
    }
    fn port(&mut self) -> String {
        if self.r.chance(2) {
            return self.r.pick(JUNK).to_string();
        }
        self.r.pick(PORTS).to_string()
    }
    fn status(&mut self) -> String {
        let n = 1 + self.r.below(3);
        let mut v = Vec::new();
        for _ in 0..n {
            let mut w = self.r.pick(STATUS_WORDS).to_string();
            if self.r.chance(20) {
                w.insert(0, '!');
            }
            if self.r.chance(5) {
                w = w.to_lowercase();
            }
            if self.r.chance(3) {
                w.truncate(3);
            }
            v.push(w);
        }
        if self.r.chance(3) {
            v.push(String::new());
        }
        v.join(",")
    }
    fn mark(&mut self) -> String {
        let v = self.r.pick(MARKS).to_string();
        if self.r.chance(30) {
            format!(
                "{v}/{}",
                self.r.pick(&["0xff", "0xf0", "1", "0xffffffff", "0"])
            )
        } else {
            v
        }
    }
    fn output(&mut self) -> String {
        let n = 1 + self.r.below(3);
        let mut v: Vec<String> = (0..n)
            .map(|_| self.r.pick(OUTPUT_WORDS).to_string())
            .collect();
        if self.r.chance(3) {
            v.push("bogus".into());
        }
        v.join(",")
    }
}

/// The protocol of a line and its family.
fn proto_family(r: &mut Rng) -> (&'static str, Fam) {
    let p = *r.pick(PROTOS);
    let f = match p {
        "icmp" => Fam::V4,
        "icmpv6" => Fam::V6,
        _ if r.chance(25) => Fam::V6,
        _ => Fam::V4,
    };
    (p, f)
}

/// Protocol-specific options; `create` asks for what a create needs most of the time.
fn proto_opts(g: &mut Gen<'_>, p: &str, create: bool, reply: bool) {
    match p {
        "tcp" | "udp" | "udplite" | "sctp" | "dccp" => {
            if create || g.r.chance(50) {
                let (a, b) = (g.port(), g.port());
                if g.r.chance(80) || create {
                    let o = if g.r.chance(50) {
                        "--sport"
                    } else {
                        "--orig-port-src"
                    };
                    g.opt(o, a);
                }
                if g.r.chance(80) || create {
                    let o = if g.r.chance(50) {
                        "--dport"
                    } else {
                        "--orig-port-dst"
                    };
                    g.opt(o, b);
                }
            }
            if reply || g.r.chance(20) {
                let (a, b) = (g.port(), g.port());
                if g.r.chance(85) {
                    g.opt("--reply-port-src", a);
                }
                if g.r.chance(85) {
                    g.opt("--reply-port-dst", b);
                }
            }
            let states = match p {
                "tcp" => Some(TCP_STATES),
                "sctp" => Some(SCTP_STATES),
                "dccp" => Some(DCCP_STATES),
                _ => None,
            };
            if let Some(states) = states
                && (create || g.r.chance(25))
            {
                let s = if g.r.chance(4) {
                    "BOGUS".to_string()
                } else {
                    g.r.pick(states).to_string()
                };
                g.opt("--state", s);
            }
            if p == "sctp" && (create || g.r.chance(10)) {
                let (a, b) = (g.r.below(5000).to_string(), g.r.below(5000).to_string());
                g.opt("--orig-vtag", a);
                g.opt("--reply-vtag", b);
            }
            if p == "dccp" && (create && g.r.chance(85) || g.r.chance(20)) {
                let role = g.r.pick(&["client", "server", "c", "bogus"]).to_string();
                g.opt("--role", role);
            }
            if g.r.chance(3) {
                let a = g.port();
                let o =
                    g.r.pick(&["--mask-port-src", "--tuple-port-dst"])
                        .to_string();
                g.opt(&o, a);
            }
        }
        "gre" => {
            if create || g.r.chance(40) {
                let (a, b) = (
                    g.r.pick(&["0x10", "3", "0x20", "7"]).to_string(),
                    g.r.pick(&["0x20", "4", "9"]).to_string(),
                );
                g.opt("--srckey", a);
                g.opt("--dstkey", b);
            }
            if reply || g.r.chance(15) {
                let (a, b) = (
                    g.r.pick(&["0x20", "4"]).to_string(),
                    g.r.pick(&["0x10", "3"]).to_string(),
                );
                g.opt("--reply-key-src", a);
                g.opt("--reply-key-dst", b);
            }
        }
        "icmp" | "icmpv6" => {
            let pre = if p == "icmp" { "--icmp" } else { "--icmpv6" };
            let types = if p == "icmp" {
                ICMP_TYPES
            } else {
                ICMPV6_TYPES
            };
            if create || g.r.chance(50) {
                let t = g.r.pick(types).to_string();
                g.opt(&format!("{pre}-type"), t);
            }
            if create || g.r.chance(40) {
                let c = g.r.pick(&["0", "1"]).to_string();
                g.opt(&format!("{pre}-code"), c);
            }
            if create || g.r.chance(40) {
                let i = g.r.pick(&["1", "77", "9", "65535"]).to_string();
                g.opt(&format!("{pre}-id"), i);
            }
        }
        _ => {}
    }
}

/// A create (`-I` or `-A`) line's arguments, valid most of the time. `zone_ok`: zones may be given.
fn create_args(r: &mut Rng, word: &str, strict: bool) -> Vec<String> {
    let mut g = Gen { r, out: Vec::new() };
    g.push(word);
    let (p, f) = proto_family(g.r);
    let addr = |g: &mut Gen<'_>| {
        if strict {
            match f {
                Fam::V4 => g.r.pick(V4).to_string(),
                Fam::V6 => g.r.pick(V6).to_string(),
            }
        } else {
            g.addr(f)
        }
    };
    let orig = strict || g.r.chance(90);
    let reply = !orig || g.r.chance(25);
    if orig {
        let (a, b) = (addr(&mut g), addr(&mut g));
        g.opt("-s", a);
        g.opt("-d", b);
    }
    if reply {
        let (a, b) = (addr(&mut g), addr(&mut g));
        g.opt("-r", a);
        g.opt("-q", b);
    }
    g.opt("-p", p);
    if strict {
        strict_proto_opts(&mut g, p, orig, reply);
    } else {
        proto_opts(&mut g, p, true, reply);
    }
    if strict || g.r.chance(95) {
        let t = (100 + g.r.below(5000)).to_string();
        g.opt("-t", t);
    }
    if g.r.chance(40) {
        let m = g.r.pick(MARKS).to_string();
        g.opt("-m", m);
    }
    if g.r.chance(35) {
        let s = if strict {
            g.r.pick(&[
                "ASSURED",
                "SEEN_REPLY",
                "ASSURED,SEEN_REPLY",
                "FIXED_TIMEOUT",
            ])
            .to_string()
        } else {
            g.status()
        };
        g.opt("-u", s);
    }
    match g.r.below(10) {
        0 | 1 => {
            let z = g.r.pick(ZONES).to_string();
            g.opt("-w", z);
        }
        2 => {
            let z = g.r.pick(ZONES).to_string();
            g.opt("--orig-zone", z);
        }
        3 => {
            let z = g.r.pick(ZONES).to_string();
            g.opt("--reply-zone", z);
        }
        _ => {}
    }
    if f == Fam::V4 && g.r.chance(12) && !reply {
        let a = g.r.pick(V4).to_string();
        let nat = if g.r.chance(50) {
            "--src-nat"
        } else {
            "--dst-nat"
        };
        if !strict && g.r.chance(30) {
            let p = *g.r.pick(PORTS);
            g.opt(nat, format!("{a}:{p}"));
        } else {
            g.opt(nat, a);
        }
    }
    if !strict {
        sprinkle(&mut g);
    }
    g.out
}

/// The protocol options of a create that the kernel accepts (for the corpus).
fn strict_proto_opts(g: &mut Gen<'_>, p: &str, orig: bool, reply: bool) {
    match p {
        "tcp" | "udp" | "udplite" | "sctp" | "dccp" => {
            if orig {
                let (a, b) = (g.r.pick(PORTS).to_string(), g.r.pick(PORTS).to_string());
                g.opt("--sport", a);
                g.opt("--dport", b);
            }
            if reply {
                let (a, b) = (g.r.pick(PORTS).to_string(), g.r.pick(PORTS).to_string());
                g.opt("--reply-port-src", a);
                g.opt("--reply-port-dst", b);
            }
            match p {
                "tcp" => {
                    let s = g.r.pick(TCP_STATES).to_string();
                    g.opt("--state", s);
                }
                "sctp" => {
                    let s = g.r.pick(&SCTP_STATES[1..]).to_string();
                    g.opt("--state", s);
                    let (a, b) = (g.r.below(5000).to_string(), g.r.below(5000).to_string());
                    g.opt("--orig-vtag", a);
                    g.opt("--reply-vtag", b);
                }
                "dccp" => {
                    let s = g.r.pick(&DCCP_STATES[1..]).to_string();
                    g.opt("--state", s);
                    let role = g.r.pick(&["client", "server"]).to_string();
                    g.opt("--role", role);
                }
                _ => {}
            }
        }
        "gre" => {
            let (a, b) = (
                g.r.pick(&["0x10", "3"]).to_string(),
                g.r.pick(&["0x20", "4"]).to_string(),
            );
            g.opt("--srckey", a);
            g.opt("--dstkey", b);
            if reply {
                g.opt("--reply-key-src", "4");
                g.opt("--reply-key-dst", "3");
            }
        }
        "icmp" | "icmpv6" => {
            let pre = if p == "icmp" { "--icmp" } else { "--icmpv6" };
            let t = if p == "icmp" {
                g.r.pick(&["8", "13", "0", "15", "17"]).to_string()
            } else {
                g.r.pick(&["128", "129", "139"]).to_string()
            };
            g.opt(&format!("{pre}-type"), t);
            g.opt(&format!("{pre}-code"), "0");
            let i = g.r.pick(&["1", "77", "9"]).to_string();
            g.opt(&format!("{pre}-id"), i);
        }
        _ => {}
    }
}

/// Sometimes an option that does not belong, a junk word, or a missing argument.
fn sprinkle(g: &mut Gen<'_>) {
    if g.r.chance(4) {
        let o =
            g.r.pick(&[
                "-z",
                "-e",
                "-b",
                "-c",
                "-i",
                "--tuple-src",
                "-a",
                "-x",
                "--bogus",
                "-l",
                "--label-add",
                "--label-del",
                "-o",
                "-f",
                "-h",
            ])
            .to_string();
        g.push(o);
        if g.r.chance(70) {
            let v =
                g.r.pick(&["1", "ipv4", "NEW", "1.2.3.4", "foo", "xml"])
                    .to_string();
            g.push(v);
        }
    }
    if g.r.chance(2) {
        let j = g.r.pick(JUNK).to_string();
        g.push(j);
    }
    if g.r.chance(2) {
        g.out.pop();
    }
}

/// Filter options shared by `-L`, `-D`, `-U` (and, partly, `-G`).
fn filter_args(g: &mut Gen<'_>, with_proto: bool) {
    let (p, f) = proto_family(g.r);
    let fam = if g.r.chance(50) { Some(f) } else { None };
    if g.r.chance(35) {
        let a = g.addr(f);
        let cidr = g.r.chance(25);
        let a = if cidr {
            format!(
                "{a}/{}",
                g.r.pick(&["8", "16", "24", "32", "64", "120", "0"])
            )
        } else {
            a
        };
        let o = if g.r.chance(80) { "-s" } else { "--orig-src" };
        g.opt(o, a);
        if g.r.chance(8) {
            let m = if f == Fam::V4 {
                "255.255.255.0"
            } else {
                "ffff:ffff::"
            };
            g.opt("--mask-src", m);
        }
    }
    if g.r.chance(25) {
        let a = g.addr(f);
        let a = if g.r.chance(20) { format!("{a}/24") } else { a };
        g.opt("-d", a);
        if g.r.chance(6) {
            g.opt("--mask-dst", "255.255.0.0");
        }
    }
    // Reply addresses; conntrack-tools takes no CIDR on them (an error to match).
    for o in ["-r", "-q"] {
        if g.r.chance(20) {
            let a = g.addr(f);
            let a = if g.r.chance(6) { format!("{a}/24") } else { a };
            g.opt(o, a);
        }
    }
    // A mask without the address it masks (an error to match).
    if g.r.chance(2) {
        let o = g.r.pick(&["--mask-src", "--mask-dst"]).to_string();
        g.opt(&o, "255.255.255.0");
    }
    if with_proto && g.r.chance(55) {
        let name = if g.r.chance(10) {
            match p {
                "tcp" => "6".to_string(),
                "udp" => "UDP".to_string(),
                other => other.to_string(),
            }
        } else {
            p.to_string()
        };
        g.opt("-p", name);
        proto_opts(g, p, false, false);
    }
    if g.r.chance(15) {
        let s = g.status();
        g.opt("-u", s);
    }
    if g.r.chance(20) {
        let m = g.mark();
        g.opt("-m", m);
    }
    match g.r.below(12) {
        0 => {
            let z = g.r.pick(ZONES).to_string();
            g.opt("-w", z);
        }
        1 => {
            let z = g.r.pick(ZONES).to_string();
            g.opt("--orig-zone", z);
        }
        2 => {
            let z = g.r.pick(ZONES).to_string();
            g.opt("--reply-zone", z);
        }
        _ => {}
    }
    if g.r.chance(12) {
        let o =
            g.r.pick(&["-n", "-g", "-j", "--src-nat", "--dst-nat", "--any-nat"])
                .to_string();
        g.push(o);
        if g.r.chance(50) {
            let a = g.r.pick(V4).to_string();
            let v = if g.r.chance(30) {
                format!("{a}:{}", g.r.pick(PORTS))
            } else {
                a
            };
            g.push(v);
        }
    }
    if let Some(f) = fam.filter(|_| g.r.chance(40)) {
        let w = match (f, g.r.below(12)) {
            (_, 0) => "ipv5",
            (Fam::V4, _) => "ipv4",
            (Fam::V6, _) => "ipv6",
        };
        g.opt("-f", w);
    }
}

/// A DCCP create with `-r`/`-q` and no reply port: conntrack-tools' reply tuple has no protocol
/// ([`Deliberate::DccpReplyWithoutPorts`]).
fn dccp_reply_without_ports(args: &[String]) -> bool {
    matches!(args.first().map(String::as_str), Some("-I" | "-A"))
        && args.windows(2).any(|w| w[0] == "-p" && w[1] == "dccp")
        && args.iter().any(|w| w == "-r" || w == "-q")
        && !args.iter().any(|w| w.starts_with("--reply-port"))
}

/// An ICMP create whose `--icmp-type` came before any original address (or with the reply tuple
/// only): conntrack-tools' reply type is 255 and the kernel refuses it; ours creates the entry
/// ([`Deliberate::IcmpTypeOrder`]).
fn icmp_type_before_address(args: &[String]) -> bool {
    let is_create = matches!(args.first().map(String::as_str), Some("-I" | "-A"));
    let proto = args
        .iter()
        .position(|w| w == "-p")
        .and_then(|i| args.get(i + 1));
    let icmp = proto.is_some_and(|p| p == "icmp" || p == "icmpv6");
    let ty = args
        .iter()
        .position(|w| w == "--icmp-type" || w == "--icmpv6-type");
    let addr = args
        .iter()
        .position(|w| w == "-s" || w == "-d" || w == "--orig-src");
    is_create && icmp && ty.is_some_and(|t| addr.is_none_or(|a| a > t))
}

/// A `-R` line at which conntrack-tools may stop (exit 1, the rest of the file not run) where ours goes
/// on, for one of the deliberate differences: a delete, which stops at an entry whose original tuple
/// is another's reply tuple ([`Deliberate::DeleteSharedTuple`]; seed 8 line 4301 of the long run), an
/// update that can fail (a status, a timeout, which
/// FIXED_TIMEOUT entries refuse, a protocol state, which the kernel refuses for SCTP without both
/// verification tags, or a NAT address, which the kernel refuses on existing entries;
/// [`Deliberate::UpdateReadsEachAnswer`]), or a create the kernel refuses
/// from conntrack-tools only ([`Deliberate::IcmpTypeOrder`], [`Deliberate::DccpReplyWithoutPorts`]).
fn may_stop_conntrack_tools(args: &[String]) -> bool {
    let delete = args.first().map(String::as_str) == Some("-D");
    let update_can_fail = args.first().map(String::as_str) == Some("-U")
        && args.iter().any(|w| {
            matches!(
                w.as_str(),
                "-u" | "--status"
                    | "-t"
                    | "--timeout"
                    | "--state"
                    | "-n"
                    | "-g"
                    | "--src-nat"
                    | "--dst-nat"
            )
        });
    delete || update_can_fail || icmp_type_before_address(args) || dccp_reply_without_ports(args)
}

/// A `-R -` file: generated lines of the commands `-R` takes (and now and then one it refuses).
fn load_file(r: &mut Rng) -> String {
    let n = 1 + r.below(7);
    let mut lines = Vec::new();
    for _ in 0..n {
        let l = match r.below(10) {
            0..=4 => {
                let word = if r.chance(50) { "-I" } else { "-A" };
                let strict = r.chance(50);
                create_args(r, word, strict)
            }
            5 | 6 => mutation_args(r, "-D", true),
            7 => mutation_args(r, "-U", true),
            8 if r.chance(20) => vec!["-F".to_string()],
            8 => vec!["# a comment".to_string()],
            _ => {
                let mut g = Gen {
                    r,
                    out: vec!["-L".into()],
                };
                filter_args(&mut g, true);
                if g.r.chance(80) {
                    g.out = create_args(g.r, "-A", true);
                }
                g.out
            }
        };
        lines.push(l);
        if r.chance(5) {
            lines.push(Vec::new());
        }
    }
    // conntrack-tools may stop at such a line: the file keeps one, last, so that what the two ran
    // can be compared.
    if let Some(i) = lines.iter().position(|l| may_stop_conntrack_tools(l)) {
        let last = lines.remove(i);
        lines.retain(|l| !may_stop_conntrack_tools(l));
        lines.push(last);
    }
    // Its `-D` after a `-U` reads the update's late answers on the same socket, and stops at a stale
    // "not found" (`Deliberate::UpdateReadsEachAnswer`): a file deletes before it updates.
    if let Some(u) = lines
        .iter()
        .position(|l| l.first().is_some_and(|w| w == "-U"))
    {
        let (head, tail) = lines.split_at(u);
        let tail: Vec<Vec<String>> = tail
            .iter()
            .filter(|l| l.first().is_none_or(|w| w != "-D"))
            .cloned()
            .collect();
        lines = head.iter().cloned().chain(tail).collect();
    }
    lines
        .iter()
        .map(|l| l.join(" "))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// A generated `-R` file holds at most one line at which conntrack-tools may stop, and as its last
/// line: an `-U` that sets a protocol state is one (seed 6 line 1566 of the long run: SCTP without both
/// verification tags, refused, and conntrack-tools stopped before the file's later creates).
#[test]
fn load_files_end_with_their_only_line_that_may_stop_conntrack_tools() {
    let state = words("-U -p sctp --state SHUTDOWN_ACK_SENT -f ipv4");
    assert!(may_stop_conntrack_tools(&state));
    assert!(may_stop_conntrack_tools(&words("-D -f ipv6 -o xml")));
    let (mut with_state, mut with_delete) = (0, 0);
    for i in 0..20_000 {
        let text = load_file(&mut Rng::for_line(6, i, 1));
        let lines: Vec<Vec<String>> = text.lines().map(words).filter(|l| !l.is_empty()).collect();
        let stops: Vec<usize> = (0..lines.len())
            .filter(|&k| may_stop_conntrack_tools(&lines[k]))
            .collect();
        assert!(stops.is_empty() || stops == [lines.len() - 1], "{text}");
        with_state += usize::from(
            lines
                .iter()
                .any(|l| l[0] == "-U" && l.iter().any(|w| w == "--state")),
        );
        with_delete += usize::from(lines.iter().any(|l| l[0] == "-D"));
    }
    assert!(with_state > 0, "no -U --state line generated");
    assert!(with_delete > 0, "no -D line generated");
}

/// A `-D` or `-U` line.
fn mutation_args(r: &mut Rng, word: &str, in_file: bool) -> Vec<String> {
    let mut g = Gen {
        r,
        out: vec![word.to_string()],
    };
    filter_args(&mut g, true);
    if in_file && word == "-U" && line_family(&g.out).is_none() {
        // In a file, conntrack-tools stops at an update without a family ("Operation not supported")
        // while ours goes on, so the tables after the rest of the file could not be compared: that
        // difference is exercised on the command line (`Deliberate::UpdateFamilyAndZone`).
        let f = g.r.pick(&["ipv4", "ipv6"]).to_string();
        g.opt("-f", f);
    }
    if word == "-U" {
        // What to change: a mark (often with a mask), a status, a timeout, labels.
        let what = g.r.below(6);
        if what <= 2 {
            let m = g.mark();
            if !g.out.iter().any(|w| w == "-m") {
                g.opt("-m", m);
            }
        }
        if what == 3 && !g.out.iter().any(|w| w == "-u") {
            let s =
                g.r.pick(&[
                    "ASSURED",
                    "SEEN_REPLY",
                    "FIXED_TIMEOUT",
                    "ASSURED,SEEN_REPLY",
                ])
                .to_string();
            g.opt("-u", s);
        }
        if what == 4 {
            let t = (60 + g.r.below(3000)).to_string();
            g.opt("-t", t);
        }
    }
    if g.r.chance(20) {
        let o = g.output();
        g.opt("-o", o);
    }
    sprinkle(&mut g);
    g.out
}

/// Line `index` of the run with `seed`.
fn generate(seed: u64, index: u64) -> Line {
    let r = &mut Rng::for_line(seed, index, 1);
    let plain = Line::plain;
    match r.below(100) {
        0..=27 => {
            let word = if r.chance(93) { "-L" } else { "--dump" };
            let mut g = Gen {
                r,
                out: vec![word.into()],
            };
            if g.r.chance(5) {
                let t =
                    g.r.pick(&["conntrack", "dying", "unconfirmed", "expect", "bogus"])
                        .to_string();
                g.push(t);
            }
            filter_args(&mut g, true);
            if g.r.chance(45) {
                let o = g.output();
                g.opt("-o", o);
            }
            if g.r.chance(4) {
                g.push("-z");
            }
            sprinkle(&mut g);
            plain(g.out)
        }
        28..=35 => {
            let strict = r.chance(60);
            let mut args = create_args(r, "-G", strict);
            args.retain(|w| w != "-t");
            let mut g = Gen { r, out: args };
            if g.r.chance(30) {
                let o = g.output();
                g.opt("-o", o);
            }
            plain(g.out)
        }
        36..=49 => plain(mutation_args(r, "-D", false)),
        50..=61 => plain(mutation_args(r, "-U", false)),
        62..=75 => {
            let word = if r.chance(70) { "-I" } else { "-A" };
            let strict = r.chance(40);
            plain(create_args(r, word, strict))
        }
        76..=78 => {
            let mut g = Gen {
                r,
                out: vec!["-C".into()],
            };
            if g.r.chance(20) {
                g.push("expect");
            }
            sprinkle(&mut g);
            plain(g.out)
        }
        79..=80 => {
            let mut g = Gen {
                r,
                out: vec!["-F".into()],
            };
            if g.r.chance(40) {
                let f = g.r.pick(&["ipv4", "ipv6", "ipv5"]).to_string();
                g.opt("-f", f);
            }
            if g.r.chance(10) {
                g.push("expect");
            }
            sprinkle(&mut g);
            plain(g.out)
        }
        // A file of generated lines, on stdin or as a file.
        81..=92 => Line {
            args: vec!["-R".into(), "-".into()],
            file: r.chance(35),
            stdin: Some(load_file(r)),
        },
        // The save round trip and its zone rewrites are built from the table by the runner.
        93..=97 => Line {
            args: vec!["-R".into(), "-".into()],
            file: r.chance(35),
            stdin: None,
        },
        _ => {
            // Oddities: no command, two commands, help, version, a bad -R file.
            let v = match r.below(7) {
                0 => vec!["-L".into(), "-D".into()],
                1 => vec!["-h".into()],
                2 => vec!["-V".into()],
                3 => vec![],
                4 => vec!["-R".into(), "/nonexistent/file".into()],
                5 => vec!["-S".into()],
                _ => vec!["-h".into(), "-p".into(), r.pick(PROTOS).to_string()],
            };
            plain(v)
        }
    }
}

/// The corpus of block `block`: creates (`-A`, so that a line repeating an entry is skipped) of every
/// protocol, both families, zones, marks, statuses and NAT, all of them valid.
fn corpus(seed: u64, block: u64) -> String {
    let r = &mut Rng::for_line(seed, block, 2);
    let n = 40 + r.below(40);
    let mut s = String::new();
    for _ in 0..n {
        s.push_str(&create_args(r, "-A", true).join(" "));
        s.push('\n');
    }
    s
}

/// `-o save` output in one order for both twins: each tool lists its table in its namespace's hash
/// order, and a file whose rewritten lines collide (two entries moved into one zone) ends differently
/// in another order. Sorted by the line with its timeout blanked, then as it is.
fn save_order(saved: &str) -> String {
    let mut lines: Vec<(String, &str)> = saved
        .lines()
        .map(|l| (common::normalize(l.as_bytes()), l))
        .collect();
    lines.sort();
    lines.into_iter().map(|(_, l)| format!("{l}\n")).collect()
}

/// The largest difference between the `-t` timeouts of two save outputs in [`save_order`] whose lines
/// are otherwise the same: how much older one twin's loaded entries may be than the other's.
fn save_timeout_skew(a: &str, b: &str) -> u64 {
    let t = |l: &str| -> Option<u64> {
        let w: Vec<&str> = l.split(' ').collect();
        let i = w.iter().position(|x| *x == "-t")?;
        w.get(i + 1)?.parse().ok()
    };
    a.lines()
        .zip(b.lines())
        .filter_map(|(x, y)| Some(t(x)?.abs_diff(t(y)?)))
        .max()
        .unwrap_or(0)
}

/// `-o save` output made into a `-R` file: as it is, or with every line moved to another zone.
fn save_file(r: &mut Rng, saved: &str) -> String {
    let rewrite = r.below(4);
    let z = *r.pick(ZONES);
    saved
        .lines()
        .map(|l| match rewrite {
            0 => l.to_string(),
            1 => format!("{l} -w {z}"),
            2 => format!("{l} --orig-zone {z}"),
            _ => l.replacen("-A ", "-I ", 1) + &format!(" --reply-zone {z}"),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

// ---------------------------------------------------------------------------------------------------
// The twin tables: one worker thread per tool, each in its own network namespace.

/// What one tool did with one line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    status: Option<i32>,
    stdout: String,
    stderr: String,
    /// The table after, each entry without timeout, id, use count and timestamps, sorted.
    table: Vec<String>,
    /// The timeouts, in the order of `table`.
    timeouts: Vec<u32>,
    /// When the tool started, and when the table was read.
    started: Instant,
    read_at: Instant,
    /// How much younger this table's entries may be than its twin's: after conntrack-tools' table was
    /// rebuilt to run a line again ([`FLAKE`]), the time from the block's refill to the rebuild.
    skew: Duration,
    /// How many times conntrack-tools' run of this job was repeated after [`FLAKE`].
    retries: u32,
    /// A rebuilt table that differed from the one before the line (kernel-chosen NAT ports).
    rebuilt_differently: bool,
}

enum Job {
    Run(Line),
    /// Flush, then load this corpus with conntrack-tools' own `-R`.
    Refill(String),
    /// `conntrack -L -o save` with the twin's own tool (its output is piped back through `-R -`).
    Save,
}

struct Twin {
    tx: mpsc::Sender<Job>,
    rx: mpsc::Receiver<Outcome>,
}

/// conntrack-tools 1.4.7's own flake: it numbers its requests `time(NULL)` and reads one datagram per
/// request, so an answer left over from an earlier request of the same run passes libmnl's sequence
/// check within the same second and fails it ("Operation failed: Protocol error", `EPROTO`) once the
/// clock has ticked, which a busy machine makes likely. A run of conntrack-tools that reports it is
/// repeated on the same table, up to [`RETRIES`] times: the corpus load and `-L -o save` as they are,
/// a line after its table was rebuilt (flush, the block's corpus, the block's earlier lines, all with
/// conntrack-tools). Our tool's runs are never repeated.
const FLAKE: &str = "Protocol error";
const RETRIES: u32 = 6;

/// The reference side's record of how its table came to be since the last refill, to rebuild it.
struct Journal {
    corpus: String,
    lines: Vec<Line>,
    refilled_at: Instant,
    skew: Duration,
}

/// One run of `line` with `bin`; a `-R` file line writes its text to `file` first.
fn run_line(bin: &str, line: &Line, file: &std::path::Path) -> (Option<i32>, String, String) {
    if line.file
        && let Some(text) = &line.stdin
    {
        std::fs::write(file, text).expect("write the -R file");
        let r = run(bin, &line.argv(file), None);
        let _ = std::fs::remove_file(file);
        return r;
    }
    run(bin, &line.args, line.stdin.as_deref())
}

/// Flush, then load `corpus` with conntrack-tools (`real`), again while it flakes: the number of
/// repeats and the last load's outcome.
fn refill(real: &str, corpus: &str) -> (u32, (Option<i32>, String, String)) {
    let mut retries = 0;
    loop {
        let f = run(real, &["-F".into()], None);
        assert_eq!(f.0, Some(0), "conntrack-tools -F: {}", f.2);
        let r = run(real, &["-R".into(), "-".into()], Some(corpus));
        if !r.2.contains(FLAKE) || retries == RETRIES {
            return (retries, r);
        }
        retries += 1;
    }
}

/// Rebuilds conntrack-tools' table from the journal (corpus, then every line since), again while a
/// run flakes. The number of repeats.
fn rebuild(real: &str, j: &Journal, file: &std::path::Path) -> u32 {
    let mut retries = 0;
    'again: loop {
        retries += refill(real, &j.corpus).0;
        for l in &j.lines {
            let (_, _, stderr) = run_line(real, l, file);
            if stderr.contains(FLAKE) && retries < RETRIES {
                retries += 1;
                continue 'again;
            }
        }
        return retries;
    }
}

/// The worker of one twin: `tool` runs the lines, `real` (conntrack-tools) fills the table. The twin
/// whose `tool` is `real` is the reference, whose flaky runs are repeated ([`FLAKE`]).
fn worker(tool: String, real: String) -> Twin {
    let (tx, jobs) = mpsc::channel::<Job>();
    let (done, rx) = mpsc::channel::<Outcome>();
    let reference = tool == real;
    let file = std::env::temp_dir().join(format!(
        "ct-diff-{}-{}.txt",
        std::process::id(),
        if reference { "real" } else { "ours" }
    ));
    std::thread::spawn(move || {
        let _ns = testkit::netns().expect("namespace");
        for k in ["nf_conntrack_acct", "nf_conntrack_timestamp"] {
            std::fs::write(format!("/proc/sys/net/netfilter/{k}"), "1").expect(k);
        }
        let mut journal = Journal {
            corpus: String::new(),
            lines: Vec::new(),
            refilled_at: Instant::now(),
            skew: Duration::ZERO,
        };
        let mut last_table = Vec::new();
        for job in jobs {
            let mut retries = 0;
            let mut rebuilt_differently = false;
            let mut started = Instant::now();
            let (status, stdout, stderr) = match job {
                Job::Run(l) => {
                    let mut r = run_line(&tool, &l, &file);
                    while reference && r.2.contains(FLAKE) && retries < RETRIES {
                        retries += 1 + rebuild(&real, &journal, &file);
                        journal.skew = journal.refilled_at.elapsed();
                        rebuilt_differently |= dump().0 != last_table;
                        started = Instant::now();
                        r = run_line(&tool, &l, &file);
                    }
                    journal.lines.push(l);
                    r
                }
                Job::Refill(text) => {
                    journal = Journal {
                        corpus: text,
                        lines: Vec::new(),
                        refilled_at: started,
                        skew: Duration::ZERO,
                    };
                    let (n, r) = refill(&real, &journal.corpus);
                    retries = n;
                    r
                }
                Job::Save => loop {
                    let r = run(&tool, &["-L".into(), "-o".into(), "save".into()], None);
                    if !reference || !r.2.contains(FLAKE) || retries == RETRIES {
                        break r;
                    }
                    retries += 1;
                },
            };
            let (table, timeouts) = dump();
            last_table.clone_from(&table);
            let o = Outcome {
                status,
                stdout,
                stderr,
                table,
                timeouts,
                started,
                read_at: Instant::now(),
                skew: journal.skew,
                retries,
                rebuilt_differently,
            };
            if done.send(o).is_err() {
                break;
            }
        }
    });
    Twin { tx, rx }
}

/// How long one run may take before it is killed (a hang is a failure too); generous, for a loaded
/// machine.
const KILL_AFTER: Duration = Duration::from_secs(120);

/// Runs one tool (as `conntrack`); a run longer than [`KILL_AFTER`] is killed.
fn run(bin: &str, args: &[String], stdin: Option<&str>) -> (Option<i32>, String, String) {
    let mut c = Command::new(bin);
    c.arg0("conntrack")
        .args(args)
        .env("TZ", "UTC0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
    let mut input = child.stdin.take().expect("stdin");
    let text = stdin.unwrap_or("").to_string();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(text.as_bytes());
    });
    let pid = child.id();
    let started = Instant::now();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if stop_rx.recv_timeout(KILL_AFTER).is_err() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    });
    let o = child.wait_with_output().expect("wait");
    let _ = stop_tx.send(());
    let _ = watchdog.join();
    let _ = feeder.join();
    let mut stderr = String::from_utf8_lossy(&o.stderr).to_string();
    if started.elapsed() >= KILL_AFTER {
        stderr.push_str("\n[killed]");
    }
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).to_string(),
        stderr,
    )
}

fn dump() -> (Vec<String>, Vec<u32>) {
    let mut ct = ctnl::Conntrack::open().expect("socket");
    let mut v: Vec<(String, u32)> = ct
        .dump(&ctnl::DumpFilter::all())
        .expect("dump")
        .map(|e| {
            let e = e.expect("entry");
            let t = e.timeout.unwrap_or(0);
            (common::entry_line(e), t)
        })
        .collect();
    v.sort();
    v.into_iter().unzip()
}

// ---------------------------------------------------------------------------------------------------
// Comparison and the documented deliberate differences.

/// What is compared: status, stdout (normalized, lines sorted), stderr (prefix aside) and the table.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    status: Option<i32>,
    stdout: String,
    stderr: String,
    table: Vec<String>,
}

fn seen(o: &Outcome) -> Seen {
    let stdout = o
        .stdout
        .replace("conntrack v1.4.7 (conntrack-tools)", "VERSION")
        .replace("conntrack v1.4.7 (linux-ha-rs)", "VERSION");
    // `-S`: per-CPU counters are each namespace's own history; the layout is compared, not the values.
    let stdout = if stdout.starts_with("cpu=") {
        let mut out = String::new();
        let mut key = String::new();
        let mut chars = stdout.chars().peekable();
        while let Some(c) = chars.next() {
            out.push(c);
            if c == '=' && key != "cpu" {
                while chars.peek().is_some_and(char::is_ascii_digit) {
                    chars.next();
                }
                out.push('N');
            }
            if c.is_ascii_alphanumeric() || c == '_' {
                key.push(c);
            } else {
                key.clear();
            }
        }
        out
    } else {
        stdout
    };
    Seen {
        status: o.status,
        stdout: common::normalize_sorted(stdout.as_bytes()),
        stderr: o
            .stderr
            .replace("conntrack v1.4.7 (conntrack-tools): ", "PREFIX: ")
            .replace("conntrack v1.4.7 (linux-ha-rs): ", "PREFIX: "),
        table: o.table.clone(),
    }
}

/// Timeouts agree when both tables hold the same entries and each pair is within 2 s plus how far apart
/// the twins started and read their tables (they run side by side, but a loaded machine delays one),
/// plus the age difference of a rebuilt table ([`Outcome::skew`]).
fn timeouts_agree(a: &Outcome, b: &Outcome) -> bool {
    let apart = |x: Instant, y: Instant| x.max(y).duration_since(x.min(y)).as_secs();
    let slack = 2
        + apart(a.started, b.started)
        + apart(a.read_at, b.read_at)
        + a.skew.max(b.skew).as_secs();
    a.table != b.table
        || a.timeouts
            .iter()
            .zip(&b.timeouts)
            .all(|(x, y)| u64::from(x.abs_diff(*y)) <= slack)
}

/// The differences README.md documents as deliberate ("Where `conntrack` differs from conntrack-tools
/// 1.4.7 on purpose"), each recognised by one matcher. The tool prefix (`(linux-ha-rs)`) is normalized
/// away before any comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Deliberate {
    /// "`-m` followed by `-u`": conntrack-tools 1.4.7 replaces the mark's value with the status bits.
    /// Matched by running ours with the mark conntrack-tools uses ([`translate`]).
    MarkThenStatus,
    /// "In a `-R` file, every `-U` line uses its own mark": conntrack-tools applies the file's last
    /// line's mark. Matched by running ours with that mark ([`translate`]).
    LoadFileUpdateMark,
    /// "`-F -f ipv6` flushes only IPv6 entries": conntrack-tools flushes every family.
    FlushByFamily,
    /// "`-U` without an address also updates IPv6 and zoned entries": conntrack-tools sends each update
    /// with the command's family (unspecified: every update fails with "Operation not supported") and
    /// without the zone (zoned entries are skipped as vanished).
    UpdateFamilyAndZone,
    /// "An unknown SCTP `--state` is refused": conntrack-tools 1.4.7 crashes on it.
    SctpStateCrash,
    /// "A bad line in a `-R` file is named": `line N: ` after the prefix.
    LoadFileLineNumber,
    /// "`-U` reads each answer with its request": conntrack-tools 1.4.7 sends each update, then a get
    /// that asks for an acknowledgement too, on one socket, and reads one message per request; from
    /// the first fetched entry on, it reads the previous request's answers: it prints only some of the
    /// updated entries, reports a failed update later and unprefixed, and stops (prefixed message,
    /// exit 1, the rest of a `-R` file not run) when the late answer a get reads is a failure, or when
    /// a later `-D` of the file reads a stale "not found".
    UpdateReadsEachAnswer,
    /// "In a `-R` file each line prints in its own `-o` format": conntrack-tools ORs every line's `-o`
    /// into one global mask. Matched by running ours with that union ([`translate`]).
    LoadFileOutputUnion,
    /// "A DCCP entry with a reply tuple but no reply ports is created": conntrack-tools leaves the
    /// protocol out of such a reply tuple and the kernel refuses it; a kernel without DCCP tracking
    /// (6.16 and later) takes DCCP without ports.
    DccpReplyWithoutPorts,
    /// "ICMP entries do not depend on option order": conntrack-tools computes the reply type when it
    /// reads `--icmp-type`, from an original address given before it, else the kernel refuses the entry.
    /// Ours creates it, or fails for what the kernel refuses next (the status `EXPECTED`: EBUSY; a tuple
    /// the table holds: EEXIST).
    IcmpTypeOrder,
    /// "`-D` and `-U` reach an entry whose original tuple is another entry's reply tuple": conntrack-tools
    /// names the entry by that tuple alone, the kernel may find the other entry first, and conntrack-tools
    /// deletes that one in its place (printing the entry it meant), and may then stop at the other
    /// entry's own delete ("such conntrack doesn't exist"); ours names it by tuple and id, and asks again
    /// by its reply tuple.
    DeleteSharedTuple,
    /// "`--any-nat ADDR` combines with other filters": conntrack-tools writes the address into the
    /// template's original tuple as well, so with any other filter it matches nothing.
    AnyNatWithFilters,
    /// "`-G` with reply ports but no reply address reports `Operation failed: Success`":
    /// conntrack-tools fails before sending anything and prints whatever errno an earlier call left.
    GetStaleErrno,
}

/// Our parser on a command line, its warnings (`-a`, `SRC_NAT`, connlabel.conf) muted: the matchers
/// use it to read lines as conntrack-tools reads them.
fn parse(argv: &[&str]) -> Result<cli::conntrack::parse::Parsed, cli::conntrack::parse::Fail> {
    cli::conntrack::parse::muted(|| cli::conntrack::parse::parse(argv))
}

/// The words of a `-R` file line as conntrack-tools splits them (blanks only; the generator writes no
/// quotes).
fn words(line: &str) -> Vec<String> {
    line.split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// The status bits of `-u VALUE` as conntrack-tools accumulates them; `None` when it does not parse.
fn status_bits(value: &str) -> Option<u32> {
    parse(&["conntrack", "-L", "-u", value])
        .ok()
        .map(|p| p.tmpl.status)
}

/// conntrack-tools 1.4.7's mark template after one line's options: `(value, mask)`, or `None` when the
/// line has neither `-m` nor `-u`. Its `-u` handler stores the status bits in the mark's value
/// (`tmpl->mark.value = status`), so a `-u` after the last `-m` replaces the value; the mask is the last
/// `-m`'s, or 0 (the template starts zeroed).
fn ct_tools_mark(args: &[String]) -> Option<(u32, u32)> {
    let mut mark = None::<(u32, u32)>;
    let mut status = 0u32;
    let mut i = 0;
    while i + 1 < args.len() {
        match args[i].as_str() {
            "-m" => {
                let p = parse(&["conntrack", "-L", "-m", &args[i + 1]]).ok()?;
                mark = Some((p.tmpl.mark, p.tmpl.mark_mask));
                i += 1;
            }
            "-u" => {
                status |= status_bits(&args[i + 1])?;
                mark = Some((status, mark.map_or(0, |m| m.1)));
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    mark
}

/// Replaces the argument of the last `-m` with `value/mask`.
fn set_mark(args: &mut [String], value: u32, mask: u32) -> bool {
    match args.iter().rposition(|a| a == "-m") {
        Some(i) if i + 1 < args.len() => {
            let new = format!("{value:#x}/{mask:#x}");
            let changed = args[i + 1] != new;
            args[i + 1] = new;
            changed
        }
        _ => false,
    }
}

/// The line to run ours with, so that a documented conntrack-tools mark bug cannot show as a
/// difference: ours is given the mark conntrack-tools actually uses. `None` when nothing changes.
fn translate(line: &Line) -> Option<(Line, Deliberate)> {
    let mark_then_status = |args: &mut Vec<String>| -> bool {
        let last_m = args.iter().rposition(|a| a == "-m");
        let last_u = args.iter().rposition(|a| a == "-u");
        match (last_m, last_u, ct_tools_mark(args)) {
            (Some(m), Some(u), Some((v, k))) if u > m => set_mark(args, v, k),
            _ => false,
        }
    };
    if line.args.first().map(String::as_str) == Some("-R") {
        let text = line.stdin.as_ref()?;
        let mut lines: Vec<Vec<String>> = text.lines().map(words).collect();
        let mut kind = None;
        for l in lines.iter_mut() {
            if l.first().is_some_and(|w| !w.starts_with('#')) && mark_then_status(l) {
                kind = Some(Deliberate::MarkThenStatus);
            }
        }
        // conntrack-tools ORs every line's `-o` into one mask while it parses the file (refusing `save`
        // with anything else as soon as the mask holds both), and prints every line with the final mask.
        // (Only for a file whose every line parses: one that does not stops conntrack-tools before the
        // later lines' `-o` count.)
        let parses = lines
            .iter()
            .filter(|l| l.first().is_some_and(|w| !w.starts_with('#')))
            .all(|l| {
                let mut v = vec!["conntrack"];
                v.extend(l.iter().map(String::as_str));
                parse(&v).is_ok()
            });
        let (union, refused) = match output_union(&mut lines) {
            OutputUnion::Words(w) if parses => (Some(w), false),
            OutputUnion::Refused => (None, true),
            _ => (None, false),
        };
        if refused {
            kind = Some(Deliberate::LoadFileOutputUnion);
        }
        {
            let output = |v: &str| parse(&["conntrack", "-L", "-o", v]).ok().map(|p| p.output);
            let has_labels =
                |v: &str| output(v).is_some_and(|o| o & cli::conntrack::parse::out::CL != 0);
            // Once the mask holds `labels`, conntrack-tools loads connlabel.conf again (and, without
            // it, warns again) at every `-o` it parses, up to a bad line too: those lines get `labels`.
            // (Without connlabel.conf `labels` prints nothing but the warnings.)
            let mut labels_seen = false;
            for l in lines.iter_mut() {
                let own = l
                    .iter()
                    .position(|w| w == "-o")
                    .filter(|i| i + 1 < l.len() && output(&l[i + 1]).is_some());
                let own_labels = own.is_some_and(|i| has_labels(&l[i + 1]));
                labels_seen |= own_labels;
                let with_labels = own.is_some() && labels_seen;
                let mutation = matches!(l.first().map(String::as_str), Some("-D" | "-U"));
                if let Some(union) = union.as_ref().filter(|_| mutation) {
                    let mut words = union.clone();
                    if with_labels {
                        if !words.is_empty() {
                            words.push(',');
                        }
                        words.push_str("labels");
                    }
                    if words.is_empty() {
                        continue;
                    }
                    match own {
                        Some(i) => l[i + 1] = words,
                        None => {
                            l.push("-o".into());
                            l.push(words);
                        }
                    }
                    kind = Some(Deliberate::LoadFileOutputUnion);
                } else if let Some(i) = own.filter(|_| with_labels && !own_labels) {
                    l[i + 1].push_str(",labels");
                    kind = Some(Deliberate::LoadFileOutputUnion);
                }
            }
        }
        // conntrack-tools' `-U` lines take their mark from the template of the file's last line.
        let last = text.lines().rev().find(|l| {
            let t = l.trim_start_matches([' ', '\t']);
            !t.is_empty() && !t.starts_with('#')
        });
        let (v, k) = last
            .map(words)
            .as_deref()
            .and_then(ct_tools_mark)
            .unwrap_or((0, 0));
        for l in lines.iter_mut() {
            if l.first().map(String::as_str) == Some("-U")
                && l.iter().any(|w| w == "-m")
                && set_mark(l, v, k)
            {
                kind = Some(Deliberate::LoadFileUpdateMark);
            }
        }
        let kind = kind?;
        let stdin = lines
            .iter()
            .map(|l| l.join(" "))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
        return Some((
            Line {
                args: line.args.clone(),
                stdin: Some(stdin),
                file: line.file,
            },
            kind,
        ));
    }
    let mut args = line.args.clone();
    mark_then_status(&mut args).then(|| {
        (
            Line {
                args,
                stdin: line.stdin.clone(),
                file: line.file,
            },
            Deliberate::MarkThenStatus,
        )
    })
}

/// In a `-R` file that stops at a bad line, a `-o` after a `-o labels` still gets `labels`: conntrack-tools'
/// global mask holds it, and it warns again about connlabel.conf before it reaches the bad option (seed 6
/// line 19522 of the long run). A value that does not parse is left alone.
#[test]
fn labels_are_carried_to_later_outputs_up_to_a_bad_line() {
    // The file conntrack-tools runs, and the one ours runs for it (`LoadFileOutputUnion`).
    let ours_for = |file: &str| {
        let line = Line {
            args: vec!["-R".into(), "-".into()],
            stdin: Some(file.into()),
            file: false,
        };
        let (ours, kind) = translate(&line).expect("translated");
        assert_eq!(kind, Deliberate::LoadFileOutputUnion);
        ours.stdin.expect("a file")
    };
    assert_eq!(
        ours_for(
            "-D -r 2.2.2.2 --reply-zone 1 -o labels\n\
             -D -s 10.0.0.3 -p dccp -w 11\n\
             -D -q 203.0.113.5 -o xml,timestamp,userspace -b foo\n\
             -D -d 192.168.1.1/24 -o bogus\n"
        ),
        "-D -r 2.2.2.2 --reply-zone 1 -o labels\n\
         -D -s 10.0.0.3 -p dccp -w 11\n\
         -D -q 203.0.113.5 -o xml,timestamp,userspace,labels -b foo\n\
         -D -d 192.168.1.1/24 -o bogus\n"
    );
    // A line's own `save` with another format, after `-o labels` (seed 13 line 2271): conntrack-tools
    // warns again before it refuses the line, so ours is given the union with `labels`.
    assert_eq!(
        ours_for("-D -p gre -o labels\n-D -p tcp -o xml\n-D -p udplite -o timestamp,save\n"),
        "-D -p gre -o labels\n-D -p tcp -o xml,labels\n-D -p udplite -o xml,timestamp,labels,save\n"
    );
}

/// The `-o` words of output bits.
fn output_words(bits: u32) -> String {
    use cli::conntrack::parse::out;
    [
        (out::XML, "xml"),
        (out::EXT, "extended"),
        (out::TMS, "timestamp"),
        (out::ID, "id"),
        (out::KTMS, "ktimestamp"),
        (out::CL, "labels"),
        (out::SAVE, "save"),
    ]
    .iter()
    .filter(|(b, _)| bits & b != 0)
    .map(|(_, w)| *w)
    .collect::<Vec<_>>()
    .join(",")
}

/// conntrack-tools' global `-o` mask over a file's lines.
enum OutputUnion {
    /// No line has `-o`, or a value does not parse.
    None,
    /// The final union, for the lines that print.
    Words(String),
    /// The union holds `save` and another format: conntrack-tools refuses the line where it first
    /// does, and that line is given the union so that ours refuses it too.
    Refused,
}

fn output_union(lines: &mut [Vec<String>]) -> OutputUnion {
    use cli::conntrack::parse::out;
    let mut union = 0u32;
    let mut any = false;
    for l in lines.iter_mut() {
        let Some(i) = l.iter().position(|w| w == "-o").filter(|i| i + 1 < l.len()) else {
            continue;
        };
        // Word by word: a line's own `save` with another format is refused too, after the union.
        let Some(bits) = l[i + 1].split(',').try_fold(0u32, |acc, w| {
            parse(&["conntrack", "-L", "-o", w])
                .ok()
                .map(|p| acc | p.output)
        }) else {
            return OutputUnion::None;
        };
        union |= bits;
        any = true;
        if union & out::SAVE != 0 && union & !out::SAVE != 0 {
            l[i + 1] = output_words(union);
            return OutputUnion::Refused;
        }
    }
    if any && union != 0 {
        OutputUnion::Words(output_words(union & !out::CL))
    } else {
        OutputUnion::None
    }
}

/// The family a command line fixes (an address, a NAT address or `-f`), as conntrack-tools derives it.
fn line_family(args: &[String]) -> Option<&'static str> {
    let mut i = 0;
    while i + 1 < args.len() {
        let v = &args[i + 1];
        match args[i].as_str() {
            "-s" | "--orig-src" | "-d" | "-r" | "-q" | "-n" | "-g" | "-j" | "--src-nat"
            | "--dst-nat" | "--any-nat" => {
                let a = v.split('/').next().unwrap_or("");
                if a.parse::<std::net::Ipv4Addr>().is_ok()
                    || a.split(':')
                        .next()
                        .is_some_and(|h| h.parse::<std::net::Ipv4Addr>().is_ok())
                {
                    return Some("ipv4");
                }
                if a.parse::<std::net::Ipv6Addr>().is_ok() {
                    return Some("ipv6");
                }
            }
            "-f" if v.starts_with("ipv4") => return Some("ipv4"),
            "-f" if v.starts_with("ipv6") => return Some("ipv6"),
            _ => {}
        }
        i += 1;
    }
    None
}

/// An entry line of [`dump`] is of family `f` (`"ipv4"`/`"ipv6"`).
fn entry_family(entry: &str, f: &str) -> bool {
    entry.starts_with(&format!(
        "Entry {{ family: {}",
        if f == "ipv4" { "Ipv4" } else { "Ipv6" }
    ))
}

/// The entry with what `-U` may change (mark, status, labels) left out.
fn update_key(entry: &str) -> String {
    let mut s = entry.to_string();
    for (open, close) in [
        (", status: ", ", timeout: "),
        (", mark: ", ", secmark: "),
        (", labels: ", ", mark_mask: "),
        (", protoinfo: ", ", nat_src: "),
    ] {
        if let (Some(a), Some(b)) = (s.find(open), s.find(close))
            && a < b
        {
            s.replace_range(a..b, "");
        }
    }
    s
}

/// A printed entry line without what `-U` may change: the mark, status flags and protocol state (the
/// default, extended and save formats as words; XML as elements).
fn update_line_key(line: &str) -> String {
    if line.starts_with('<') {
        let mut l = line.to_string();
        for (open, close) in [("<mark>", "</mark>"), ("<state>", "</state>")] {
            while let (Some(a), Some(b)) = (l.find(open), l.find(close)) {
                if a > b {
                    break;
                }
                l.replace_range(a..b + close.len(), "");
            }
        }
        for flag in ["<assured/>", "<unreplied/>"] {
            l = l.replace(flag, "");
        }
        return l;
    }
    let words: Vec<&str> = line.split(' ').collect();
    let mut kept = Vec::new();
    let mut skip = false;
    for w in words {
        if skip {
            skip = false;
            continue;
        }
        if matches!(w, "-m" | "-u" | "--state") {
            skip = true;
            continue;
        }
        let state = !w.is_empty() && w.chars().all(|c| c.is_ascii_uppercase() || c == '_');
        if w.starts_with("mark=") || w.starts_with('[') || state {
            continue;
        }
        kept.push(w);
    }
    kept.join(" ")
}

/// Whether the entry is in a zone, its own or one of its tuples' (as printed by `{:?}`).
fn zoned(entry: &str) -> bool {
    entry.contains("zone: Some(")
}

/// The entry as it would be in zone 0: every `zone: Some(N)` made `zone: None`.
fn without_zone(entry: &str) -> String {
    let mut s = entry.to_string();
    while let Some(a) = s.find("zone: Some(") {
        let Some(len) = s[a..].find(')') else { break };
        s.replace_range(a..=a + len, "zone: None");
    }
    s
}

/// The text of an entry's `orig` or `reply` tuple (as printed by `{:?}`), without its zone.
fn tuple_text(entry: &str, which: &str) -> Option<String> {
    tuple_raw(entry, which).map(without_zone)
}

/// The text of an entry's `orig` or `reply` tuple (as printed by `{:?}`), its zone kept.
fn tuple_raw<'a>(entry: &'a str, which: &str) -> Option<&'a str> {
    let start = entry.find(&format!("{which}: Some(Tuple {{"))? + which.len() + 2;
    let len = entry[start..].find(" }),")? + 3;
    Some(&entry[start..start + len])
}

/// The source and destination addresses of an entry's `orig` or `reply` tuple (as printed by `{:?}`).
fn tuple_addresses(entry: &str, which: &str) -> Option<(String, String)> {
    let t = tuple_text(entry, which)?;
    let field = |name: &str| -> Option<String> {
        let start = t.find(&format!("{name}: "))? + name.len() + 2;
        let len = t[start..].find(',')?;
        Some(t[start..start + len].to_string())
    };
    Some((field("src")?, field("dst")?))
}

/// Whether a line of `conntrack` output, in any of its formats (the default text, `-o save` or
/// `-o xml`), shows an entry whose original tuple goes from `src` to `dst`.
fn line_names_orig(line: &str, src: &str, dst: &str) -> bool {
    if let Some(at) = line.find("direction=\"original\"") {
        let orig = &line[at..];
        let orig = orig
            .find("direction=\"reply\"")
            .map_or(orig, |end| &orig[..end]);
        return orig.contains(&format!("<src>{src}</src><dst>{dst}</dst>"));
    }
    if line.starts_with('-') {
        return line.contains(&format!(" -s {src} -d {dst} "));
    }
    line.find(" src=")
        .is_some_and(|at| line[at..].starts_with(&format!(" src={src} dst={dst} ")))
}

#[test]
fn line_names_orig_reads_every_format() {
    let text = "tcp      6 49 ESTABLISHED src=10.0.0.2 dst=1.1.1.1 sport=5 dport=6 [UNREPLIED] \
                src=10.0.0.3 dst=10.0.0.2 sport=6 dport=5 mark=0 use=1";
    let save = "-D -t 49 -u UNSET --reply-zone 1 -s 10.0.0.2 -d 1.1.1.1 -r 10.0.0.3 -q 10.0.0.2 \
                -p tcp --sport 5 --dport 6 --reply-port-src 6 --reply-port-dst 5 --state ESTABLISHED";
    let xml = "<flow><meta direction=\"original\"><layer3 protonum=\"2\" protoname=\"ipv4\">\
               <src>10.0.0.2</src><dst>1.1.1.1</dst></layer3></meta><meta direction=\"reply\">\
               <layer3 protonum=\"2\" protoname=\"ipv4\"><src>10.0.0.3</src><dst>10.0.0.2</dst>\
               </layer3></meta></flow>";
    for line in [text, save, xml] {
        assert!(line_names_orig(line, "10.0.0.2", "1.1.1.1"), "{line}");
        // The reply tuple is not the original one.
        assert!(!line_names_orig(line, "10.0.0.3", "10.0.0.2"), "{line}");
        assert!(!line_names_orig(line, "1.1.1.1", "10.0.0.2"), "{line}");
    }
}

/// The sorted [`update_key`]s of a table.
fn update_keys(t: &[String]) -> Vec<String> {
    let mut v: Vec<String> = t.iter().map(|e| update_key(e)).collect();
    v.sort();
    v
}

/// The `-U` differences, on the command line or in a `-R` file:
/// - [`Deliberate::UpdateFamilyAndZone`]: conntrack-tools sends every update with the command's family
///   (without an address or `-f` none, so each fails with "Operation not supported" and nothing
///   changes) and without the zone (a zoned entry is not found: "No such file or directory"); ours
///   updated those entries. The entries are the same; only zoned ones, or all in the first case,
///   differ, and only in what `-U` changes; an update meant for a zoned entry lands on its twin in
///   zone 0 when there is one.
/// - [`Deliberate::UpdateReadsEachAnswer`]: conntrack-tools reads its answers one request late, so it
///   prints only some updated entries and reports errors out of place; every line it printed and every
///   error it reported is one of ours.
fn update_difference(
    line: &Line,
    before: &[String],
    real: &Seen,
    ours: &Seen,
) -> Option<Deliberate> {
    let a = &line.args;
    let in_file = a.first().map(String::as_str) == Some("-R");
    let text = line.stdin.as_deref().unwrap_or("");
    if !(a.first().map(String::as_str) == Some("-U")
        || in_file && text.lines().any(|l| l.starts_with("-U")))
    {
        return None;
    }
    let errors = |s: &str| -> Vec<String> {
        let mut v: Vec<String> = s
            .lines()
            .filter_map(|l| {
                l.split_once("Operation failed: ")
                    .map(|(_, e)| e.to_string())
            })
            .collect();
        v.sort();
        v.dedup();
        v
    };
    const UNSUPPORTED: &str = "Operation not supported";
    const NOT_FOUND: &str = "No such file or directory";
    // Without a family: conntrack-tools changed nothing and failed.
    if !in_file
        && line_family(a).is_none()
        && real.status == Some(1)
        && errors(&real.stderr).iter().all(|e| e == UNSUPPORTED)
        && real.table == before
        && update_keys(&ours.table) == update_keys(before)
    {
        return Some(Deliberate::UpdateFamilyAndZone);
    }
    // With a family: the same entries; where the tables differ, conntrack-tools' entry is either zoned
    // (it could not find it) or as it was before (its update was lost to the late reads), and every
    // line it printed is one of ours. Its errors and exit status are not compared: they belong to
    // other requests than the ones they are printed for.
    let differing: Vec<&String> = real
        .table
        .iter()
        .filter(|e| !ours.table.contains(e))
        .collect();
    // An update of a zoned entry, sent without the zone, lands on the zone 0 entry that has its
    // original tuple as either of its tuples, when there is one.
    let has_zoned_twin = |e: &str| {
        let (o, r) = (tuple_text(e, "orig"), tuple_text(e, "reply"));
        before.iter().any(|b| {
            zoned(b) && !zoned(e) && {
                let t = tuple_text(&without_zone(b), "orig");
                t.is_some() && (t == o || t == r)
            }
        })
    };
    // In a file, an entry an earlier line created has no state from before to compare with.
    let before_keys = update_keys(before);
    let made_by_file = |e: &str| in_file && !before_keys.contains(&update_key(e));
    let explained_entries = update_keys(&real.table) == update_keys(&ours.table)
        && differing
            .iter()
            .all(|e| zoned(e) || before.contains(e) || has_zoned_twin(e) || made_by_file(e));
    // The lines printed are compared without what `-U` changes: conntrack-tools prints entries as
    // they were between its misdirected updates, and the entries its updates landed on (the
    // explained differences above).
    let needles = |e: &str| tuple_addresses(e, "orig");
    // A line shows the addresses in a tuple (either, in text and XML), or as the original tuple of a
    // `-o save` line (seed 7 line 16095 of the long run).
    let shows = |l: &str, s: &str, d: &str| {
        l.contains(&format!(" src={s} dst={d} "))
            || l.contains(&format!("<src>{s}</src><dst>{d}</dst>"))
            || line_names_orig(l, s, d)
    };
    let twins: Vec<(String, String)> = differing.iter().filter_map(|e| needles(e)).collect();
    // The zone 0 twins the updates of zoned entries landed on, where ours updated (and printed) the
    // zoned entry itself. When the line sets only a timeout, such a twin differs in its timeout alone,
    // which the tables compared leave out, so it is not among `differing`; conntrack-tools prints it.
    let printed_zoned = |z: &str| {
        needles(z).is_some_and(|(s, d)| {
            ours.stdout
                .lines()
                .any(|l| (l.contains("zone") || l.contains(" -w ")) && shows(l, &s, &d))
        })
    };
    // The lookup without a zone finds a tuple of an entry in zone 0 in that tuple's direction: an
    // entry zoned in the other direction only can be the twin (seed 5 line 14843 of the long run).
    let zone0_tuple = |t: &str, which: &str| {
        let raw = tuple_raw(t, which)?;
        let tuple_zones = ["orig", "reply"]
            .iter()
            .filter_map(|w| tuple_raw(t, w))
            .map(|x| x.matches("zone: Some(").count())
            .sum::<usize>();
        let entry_zone = t.matches("zone: Some(").count() > tuple_zones;
        (!entry_zone && !raw.contains("zone: Some(")).then(|| without_zone(raw))
    };
    let landed: Vec<(String, String)> = before
        .iter()
        .filter(|t| {
            let (o, r) = (zone0_tuple(t, "orig"), zone0_tuple(t, "reply"));
            before.iter().any(|z| {
                let zo = tuple_text(z, "orig");
                z != *t && zoned(z) && zo.is_some() && (zo == o || zo == r) && printed_zoned(z)
            })
        })
        .filter_map(|t| needles(t))
        .collect();
    let (r, o): (Vec<String>, Vec<String>) = (
        real.stdout.lines().map(update_line_key).collect(),
        ours.stdout.lines().map(update_line_key).collect(),
    );
    let among = |l: &String, set: &[(String, String)]| set.iter().any(|(s, d)| shows(l, s, d));
    let printed_by_ours_or_twin =
        |l: &String| o.contains(l) || among(l, &twins) || among(l, &landed);
    if !(explained_entries && r.iter().all(printed_by_ours_or_twin)) {
        return None;
    }
    if differing.iter().any(|e| zoned(e) || has_zoned_twin(e))
        || r.iter().any(|l| !o.contains(l) && among(l, &landed))
        || errors(&real.stderr).iter().any(|e| e == NOT_FOUND)
    {
        Some(Deliberate::UpdateFamilyAndZone)
    } else {
        Some(Deliberate::UpdateReadsEachAnswer)
    }
}

/// Which deliberate difference, if any, explains `real` vs `ours` for `line` (tables were `before`).
fn deliberate(line: &Line, before: &[String], real: &Seen, ours: &Seen) -> Option<Deliberate> {
    let a = &line.args;
    let first = a.first().map(String::as_str);
    // `-F` with a family: conntrack-tools empties the table, ours keeps the other family.
    let flush_family = {
        let mut v = vec!["conntrack"];
        v.extend(a.iter().map(String::as_str));
        parse(&v)
            .ok()
            .filter(|p| p.command == cli::conntrack::opts::cmd::CT_FLUSH && p.family != 0)
            .map(|p| if p.family == 2 { "ipv4" } else { "ipv6" })
    };
    if let Some(f) = flush_family {
        let kept: Vec<String> = before
            .iter()
            .filter(|e| !entry_family(e, f))
            .cloned()
            .collect();
        if real.table.is_empty()
            && ours.table == kept
            && (real.status, &real.stdout, &real.stderr)
                == (ours.status, &ours.stdout, &ours.stderr)
        {
            return Some(Deliberate::FlushByFamily);
        }
    }
    // An unknown SCTP state name: conntrack-tools 1.4.7 crashes (SIGSEGV), ours refuses it.
    if real.status.is_none()
        && !real.stderr.contains("[killed]")
        && ours.status == Some(2)
        && ours.stderr.contains("unknown SCTP state")
        && real.table == ours.table
    {
        return Some(Deliberate::SctpStateCrash);
    }
    if let Some(d) = update_difference(line, before, real, ours) {
        return Some(d);
    }
    let parsed = {
        let mut v = vec!["conntrack"];
        v.extend(a.iter().map(String::as_str));
        parse(&v).ok()
    };
    // `--any-nat ADDR` with another filter: conntrack-tools matched (showed, deleted) nothing.
    if let Some(p) = &parsed {
        use cli::conntrack::opts::{cmd, opt};
        let any_nat_addr = p.options & opt::ANY_NAT != 0
            && (p.tmpl.snat.addr.is_some() || p.tmpl.dnat.addr.is_some());
        let listed_nothing = real.stdout.is_empty()
            && (real.stderr.contains("PREFIX: 0 flow entries have been") || real.stderr.is_empty())
            && real.table == before;
        // The address goes where `-s` keeps its own (the template's original source): with `-s` before
        // it, conntrack-tools lists (deletes) entries of that original source instead of `-s`'s (seed 4
        // line 5310); nothing else.
        let nat_addr = p.tmpl.snat.addr.or(p.tmpl.dnat.addr).map(|a| a.to_string());
        let first_src = |l: &str| {
            l.split(' ')
                .find_map(|w| w.strip_prefix("src="))
                .map(str::to_string)
        };
        let listed_nat_sources = p.tmpl.orig_src.is_some()
            && nat_addr.is_some()
            && real.stdout.lines().all(|l| first_src(l) == nat_addr)
            && real.table.iter().all(|e| before.contains(e))
            && before
                .iter()
                .filter(|e| !real.table.contains(e))
                .all(|e| tuple_addresses(e, "orig").map(|(s, _)| s) == nat_addr);
        if any_nat_addr
            && p.options & opt::COMPARISON != 0
            && p.command & (cmd::CT_LIST | cmd::CT_DELETE | cmd::CT_GET) != 0
            && (listed_nothing || listed_nat_sources)
            && ours.table.iter().all(|e| before.contains(e))
        {
            return Some(Deliberate::AnyNatWithFilters);
        }
        // `-G` by reply ports without a reply address: the same failure, the errno text aside.
        let reply_ports = p.tmpl.repl_l4.sport.is_some() || p.tmpl.repl_l4.dport.is_some();
        if p.command == cmd::CT_GET
            && reply_ports
            && p.tmpl.repl_src.is_none()
            && p.tmpl.repl_dst.is_none()
            && (real.status, &real.stdout, &real.table) == (ours.status, &ours.stdout, &ours.table)
            && ours
                .stderr
                .trim_end()
                .ends_with("PREFIX: Operation failed: Success")
            && real
                .stderr
                .lines()
                .last()
                .is_some_and(|l| l.starts_with("PREFIX: Operation failed: "))
            && real.stderr.lines().count() == ours.stderr.lines().count()
        {
            return Some(Deliberate::GetStaleErrno);
        }
    }
    // `-D`: what conntrack-tools left (and printed as deleted) are entries whose original tuple is
    // another entry's reply tuple (a partner); it deleted partners in their place, and does not print
    // a partner whose own delete then finds nothing. Ours deleted and printed both.
    let deletes = first == Some("-D")
        || first == Some("-R")
            && line
                .stdin
                .as_deref()
                .is_some_and(|t| t.lines().any(|l| l.starts_with("-D")));
    // Or, deleting the partner in its place, conntrack-tools then fails the partner's own delete ("such
    // conntrack doesn't exist") and stops there: what it printed and deleted is a part of ours.
    let shared_pair = before.iter().any(|a| {
        let o = tuple_text(a, "orig");
        o.is_some() && before.iter().any(|b| b != a && tuple_text(b, "reply") == o)
    });
    if deletes
        && shared_pair
        && real.status == Some(1)
        && ours.status == Some(0)
        && real
            .stderr
            .trim_end()
            .ends_with("PREFIX: Operation failed: such conntrack doesn't exist")
    {
        let (r, o): (Vec<&str>, Vec<&str>) =
            (real.stdout.lines().collect(), ours.stdout.lines().collect());
        let printed_by_ours = |e: &String| {
            tuple_addresses(e, "orig")
                .is_some_and(|(s, d)| o.iter().any(|l| line_names_orig(l, &s, &d)))
        };
        if r.iter().all(|l| o.contains(l))
            && ours.table.iter().all(|e| real.table.contains(e))
            && real
                .table
                .iter()
                .filter(|e| !ours.table.contains(e))
                .all(printed_by_ours)
        {
            return Some(Deliberate::DeleteSharedTuple);
        }
    }
    if deletes && real.status == ours.status {
        let left: Vec<&String> = real
            .table
            .iter()
            .filter(|e| !ours.table.contains(e))
            .collect();
        let instead: Vec<&String> = ours
            .table
            .iter()
            .filter(|e| !real.table.contains(e))
            .collect();
        let origs: Vec<Option<String>> = left.iter().map(|e| tuple_text(e, "orig")).collect();
        let partners: Vec<&String> = before
            .iter()
            .filter(|b| tuple_text(b, "reply").is_some_and(|r| origs.contains(&Some(r))))
            .filter(|b| !left.contains(b))
            .collect();
        let partner_origs: Vec<(String, String)> = partners
            .iter()
            .filter_map(|b| tuple_addresses(b, "orig"))
            .collect();
        let (r, o): (Vec<&str>, Vec<&str>) =
            (real.stdout.lines().collect(), ours.stdout.lines().collect());
        let extra: Vec<&&str> = o.iter().filter(|l| !r.contains(l)).collect();
        let count = |s: &str| -> String {
            s.split(' ')
                .filter(|w| !w.chars().all(|c| c.is_ascii_digit()))
                .collect::<Vec<_>>()
                .join(" ")
        };
        if !left.is_empty()
            && origs.iter().all(Option::is_some)
            && left.len() <= partners.len()
            && instead.iter().all(|b| partners.contains(b))
            && r.iter().all(|l| o.contains(l))
            && extra.len() <= partners.len()
            && extra
                .iter()
                .all(|l| partner_origs.iter().any(|(s, d)| line_names_orig(l, s, d)))
            && count(&real.stderr) == count(&ours.stderr)
        {
            return Some(Deliberate::DeleteSharedTuple);
        }
    }
    // `-R`: ours names the bad line.
    if first == Some("-R")
        && real.status == ours.status
        && real.stdout == ours.stdout
        && real.table == ours.table
    {
        let strip = |s: &str| -> String {
            s.lines()
                .map(|l| match l.strip_prefix("PREFIX: line ") {
                    Some(rest) => match rest.split_once(": ") {
                        Some((n, msg)) if n.chars().all(|c| c.is_ascii_digit()) => {
                            format!("PREFIX: {msg}")
                        }
                        _ => l.to_string(),
                    },
                    None => l.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        if ours.stderr != real.stderr && strip(&ours.stderr) == strip(&real.stderr) {
            return Some(Deliberate::LoadFileLineNumber);
        }
    }
    let dccp_line = line_or_file(line, &dccp_reply_without_ports);
    let einval = real.stderr.contains("Operation failed: invalid parameters")
        || real.stderr.contains("Operation failed: Invalid argument");
    if dccp_line && einval && real.status == Some(1) && ours_created_more(real, ours, &[33]) {
        return Some(Deliberate::DccpReplyWithoutPorts);
    }
    let icmp_line = line_or_file(line, &icmp_type_before_address);
    if icmp_line
        && real.status == Some(1)
        && real.stderr.contains("Operation failed: ")
        && ours_created_more(real, ours, &[1, 58])
    {
        return Some(Deliberate::IcmpTypeOrder);
    }
    // Or both refuse the entry: conntrack-tools for its reply type 255 ("invalid parameters", or
    // "Invalid argument" for `-A`), ours, with the right reply type, for what the kernel refuses next,
    // as it does to conntrack-tools when the address comes first: the status EXPECTED, which no create
    // may set ("Device or resource busy"), or a tuple an entry of the table has ("Such conntrack exists,
    // try -U to update", or "File exists" for `-A`). All else is the same.
    let einval_text = ["invalid parameters", "Invalid argument"]
        .map(|e| format!("Operation failed: {e}"))
        .into_iter()
        .find(|t| real.stderr.matches(t.as_str()).count() == 1);
    let refused_next = |args: &[String], text: &str| {
        if !icmp_type_before_address(args) {
            return false;
        }
        match text {
            // IPS_EXPECTED is bit 0 (`EXP` abbreviates `EXPECTED`, as conntrack-tools reads it).
            "Device or resource busy" => args.windows(2).any(|w| {
                matches!(w[0].as_str(), "-u" | "--status")
                    && status_bits(&w[1]).is_some_and(|b| b & 1 != 0)
            }),
            "Such conntrack exists, try -U to update" | "File exists" => {
                clashes_with_table(args, before)
            }
            _ => false,
        }
    };
    let refused = ours
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("PREFIX: Operation failed: "))
        .find(|t| {
            [
                "Device or resource busy",
                "Such conntrack exists, try -U to update",
                "File exists",
            ]
            .contains(t)
        });
    // Or, for `-A`, ours' entry is in the table already (its tuple clashes), which `-A` takes as done,
    // as conntrack-tools does: ours changes nothing and says nothing where conntrack-tools refused
    // the line first (seed 8 line 8853 of the long run). All else is the same.
    if let Some(einval) = einval_text.as_deref()
        && real.status == Some(1)
        && ours.status == Some(0)
        && (&real.stdout, &real.table) == (&ours.stdout, &ours.table)
        && real
            .stderr
            .lines()
            .filter(|l| l.strip_prefix("PREFIX: ") != Some(einval))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            == ours.stderr
        && line_or_file(line, &|args| {
            args.first().map(String::as_str) == Some("-A")
                && icmp_type_before_address(args)
                && clashes_with_table(args, before)
        })
    {
        return Some(Deliberate::IcmpTypeOrder);
    }
    if let (Some(einval), Some(text)) = (einval_text, refused)
        && real.status == Some(1)
        && (real.status, &real.stdout, &real.table) == (ours.status, &ours.stdout, &ours.table)
        && real
            .stderr
            .replace(&einval, &format!("Operation failed: {text}"))
            == ours.stderr
        && line_or_file(line, &|args| refused_next(args, text))
    {
        return Some(Deliberate::IcmpTypeOrder);
    }
    refused_last_line(line, before, real, ours)
}

/// Two differences in one `-R` file. Its last line is a create that conntrack-tools refuses for
/// [`Deliberate::IcmpTypeOrder`] or [`Deliberate::DccpReplyWithoutPorts`] (the generator puts a line
/// at which conntrack-tools may stop last), and an earlier line differs for another reason (seed 3
/// line 20334 of the long run: a `-U` without a family, [`Deliberate::UpdateFamilyAndZone`] and
/// [`Deliberate::UpdateReadsEachAnswer`]). Ours, less the one entry that last line created, plus
/// conntrack-tools' refusal of it, must then be conntrack-tools' outcome, or differ from it only as
/// [`deliberate`] explains for the file without its last line.
fn refused_last_line(
    line: &Line,
    before: &[String],
    real: &Seen,
    ours: &Seen,
) -> Option<Deliberate> {
    if line.args.first().map(String::as_str) != Some("-R") {
        return None;
    }
    let mut rows: Vec<&str> = line.stdin.as_deref()?.lines().collect();
    let is_blank = |l: &str| {
        let t = l.trim_start_matches([' ', '\t']);
        t.is_empty() || t.starts_with('#')
    };
    while rows.last().is_some_and(|l| is_blank(l)) {
        rows.pop();
    }
    let last = words(rows.pop()?);
    let (kind, protos): (Deliberate, &[u8]) = if icmp_type_before_address(&last) {
        (Deliberate::IcmpTypeOrder, &[1, 58])
    } else if dccp_reply_without_ports(&last) {
        (Deliberate::DccpReplyWithoutPorts, &[33])
    } else {
        return None;
    };
    let refusal = real.stderr.lines().last().filter(|l| {
        *l == "PREFIX: Operation failed: invalid parameters"
            || *l == "PREFIX: Operation failed: Invalid argument"
    })?;
    if rows.iter().all(|l| is_blank(l)) || real.status != Some(1) || ours.status != Some(0) {
        return None;
    }
    // The entry the last line created: its original tuple (zone kept) was in no entry before.
    let created: Vec<&String> = ours
        .table
        .iter()
        .filter(|e| !real.table.contains(e))
        .filter(|e| {
            let orig = tuple_raw(e, "orig");
            orig.is_some_and(|t| protos.iter().any(|p| t.contains(&format!("proto: {p},"))))
                && before.iter().all(|b| tuple_raw(b, "orig") != orig)
        })
        .collect();
    let [created] = created[..] else {
        return None;
    };
    let without = Seen {
        status: real.status,
        stdout: ours.stdout.clone(),
        stderr: format!("{}{refusal}\n", ours.stderr),
        table: ours
            .table
            .iter()
            .filter(|e| *e != created)
            .cloned()
            .collect(),
    };
    if without == *real {
        return Some(kind);
    }
    let shorter = Line {
        args: line.args.clone(),
        stdin: Some(rows.join("\n") + "\n"),
        file: line.file,
    };
    deliberate(&shorter, before, real, &without)
}

/// The entry a create line makes (as our parser reads it) has a tuple, with its zones, that an entry of
/// `table` (a [`dump`]) has in the same zone, so the kernel refuses it ("File exists").
fn clashes_with_table(args: &[String], table: &[String]) -> bool {
    let mut v = vec!["conntrack"];
    v.extend(args.iter().map(String::as_str));
    let Some(new) = parse(&v)
        .ok()
        .and_then(|p| cli::conntrack::kernel::entry_for_create(&p, None).ok())
    else {
        return false;
    };
    let new = format!("{new:?}");
    let tuples = |e: &str| -> Vec<String> {
        ["orig", "reply"]
            .iter()
            .filter_map(|w| tuple_raw(e, w))
            .map(str::to_string)
            .collect()
    };
    let mine = tuples(&new);
    table
        .iter()
        .any(|e| entry_zone(e) == entry_zone(&new) && tuples(e).iter().any(|t| mine.contains(t)))
}

/// The entry's own zone (`-w`) as printed by `{:?}`: what follows its `secmark`.
fn entry_zone(entry: &str) -> Option<&str> {
    let from = entry.find(", secmark: ")?;
    let start = from + entry[from..].find(", zone: ")? + ", zone: ".len();
    let len = entry[start..].find(", ")?;
    Some(&entry[start..start + len])
}

/// `pred` holds for the command line, or for a line of its `-R` file.
fn line_or_file(line: &Line, pred: &dyn Fn(&[String]) -> bool) -> bool {
    if line.args.first().map(String::as_str) == Some("-R") {
        line.stdin
            .as_deref()
            .unwrap_or("")
            .lines()
            .map(words)
            .any(|l| pred(&l))
    } else {
        pred(&line.args)
    }
}

/// Ours created entries where conntrack-tools stopped: its table and its printed lines are part of
/// ours, and every entry only ours has is one of `protos` (protocol numbers), at least one.
fn ours_created_more(real: &Seen, ours: &Seen, protos: &[u8]) -> bool {
    let extra: Vec<&String> = ours
        .table
        .iter()
        .filter(|e| !real.table.contains(e))
        .collect();
    let o: Vec<&str> = ours.stdout.lines().collect();
    real.table.iter().all(|e| ours.table.contains(e))
        && !extra.is_empty()
        && extra.iter().all(|e| {
            protos
                .iter()
                .any(|p| tuple_text(e, "orig").is_some_and(|t| t.contains(&format!("proto: {p},"))))
        })
        && real.stdout.lines().all(|l| o.contains(&l))
}

// ---------------------------------------------------------------------------------------------------

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn differential_against_conntrack_tools() {
    let Some(real) = testkit::require_tool("conntrack") else {
        return;
    };
    if !testkit::require("root", testkit::is_root()) {
        return;
    }
    let real = real.display().to_string();
    let seed = env_u64("CT_DIFF_SEED", 2024);
    // `CT_DIFF_CORPUS=B`: print block B's corpus (a `-R` file) and stop.
    if let Ok(b) = std::env::var("CT_DIFF_CORPUS") {
        print!(
            "{}",
            corpus(seed, b.parse().expect("CT_DIFF_CORPUS: a block number"))
        );
        return;
    }
    let start = env_u64("CT_DIFF_START", 0);
    let count = env_u64("CT_DIFF_COUNT", CI_COUNT);
    let max_reports = env_u64("CT_DIFF_MAX_REPORTS", 20);
    let a = worker(real.clone(), real.clone());
    let ours = std::env::var("CT_DIFF_OURS").unwrap_or_else(|_| OURS.to_string());
    let b = worker(ours, real.clone());
    // Runs of conntrack-tools repeated after its own flake ([`FLAKE`]).
    let flakes = std::cell::Cell::new(0u64);
    let both = |ja: Job, jb: Job| {
        a.tx.send(ja).expect("worker");
        b.tx.send(jb).expect("worker");
        let (x, y) = (a.rx.recv().expect("worker"), b.rx.recv().expect("worker"));
        flakes.set(flakes.get() + u64::from(x.retries + y.retries));
        (x, y)
    };
    let mut reports = Vec::new();
    let mut explained = std::collections::BTreeMap::<String, u64>::new();
    let mut before: Vec<String> = Vec::new();
    // Save round trips run (both tools' save outputs agreed and went back through `-R -`).
    let mut saves = 0u64;
    let t0 = Instant::now();
    for index in start..start + count {
        if index == start || index % BLOCK == 0 {
            let c = corpus(seed, index / BLOCK);
            let (x, y) = both(Job::Refill(c.clone()), Job::Refill(c));
            assert_eq!(
                x.table,
                y.table,
                "refill of block {} differs",
                index / BLOCK
            );
            before = x.table;
        }
        let mut line = generate(seed, index);
        let mut ours_line = line.clone();
        // The save round trip: each tool's `-L -o save` (compared like any line's output) is piped back
        // through its own `-R -`, as it is or moved to another zone, the lines in one order on both sides.
        let mut save_skew = 0;
        let mut saved = None;
        if line.args == ["-R", "-"] && line.stdin.is_none() {
            let (x, y) = both(Job::Save, Job::Save);
            if seen(&x) == seen(&y) {
                let (tx, ty) = (save_order(&x.stdout), save_order(&y.stdout));
                save_skew = save_timeout_skew(&tx, &ty);
                saves += 1;
                line.stdin = Some(save_file(&mut Rng::for_line(seed, index, 3), &tx));
                ours_line.stdin = Some(save_file(&mut Rng::for_line(seed, index, 3), &ty));
            } else {
                // The save outputs differ: that is the line's outcome, judged and reported below.
                line = Line::plain(vec!["-L".into(), "-o".into(), "save".into()]);
                ours_line = line.clone();
                saved = Some((x, y));
            }
        }
        let translated = translate(&line);
        if let Some((l, _)) = &translated {
            ours_line = if ours_line.stdin == line.stdin {
                l.clone()
            } else {
                translate(&ours_line).map_or(ours_line, |(l, _)| l)
            };
        }
        let (x, mut y) =
            saved.unwrap_or_else(|| both(Job::Run(line.clone()), Job::Run(ours_line.clone())));
        // Entries loaded from the two save outputs differ in age by as much as their `-t` values do.
        y.skew += Duration::from_secs(save_skew);
        let (sx, sy) = (seen(&x), seen(&y));
        let nat_ports = sx != sy && kernel_chose_nat_ports(&sx, &sy);
        if nat_ports {
            *explained.entry("KernelChoseNatPorts".into()).or_default() += 1;
        }
        let same = (sx == sy || nat_ports) && timeouts_agree(&x, &y);
        if same && let Some((_, d)) = &translated {
            *explained.entry(format!("{d:?}")).or_default() += 1;
        }
        if !same || nat_ports {
            let explanation = if same {
                None
            } else {
                deliberate(&line, &before, &sx, &sy)
            };
            match explanation {
                Some(d) => *explained.entry(format!("{d:?}")).or_default() += 1,
                None if same => {}
                None => {
                    let shown = match &translated {
                        Some((_, d)) => Some((ours_line.clone(), format!("for {d:?}"))),
                        None if ours_line.stdin != line.stdin => {
                            Some((ours_line.clone(), "its own save output".to_string()))
                        }
                        None => None,
                    };
                    let r = report(seed, index, &line, &shown, (&x, &sx), (&y, &sy), &before);
                    eprintln!("{r}");
                    reports.push(r);
                    if reports.len() as u64 >= max_reports {
                        break;
                    }
                }
            }
            // Twins that diverged are refilled before the next line.
            let c = corpus(seed, index / BLOCK);
            let (x2, _) = both(Job::Refill(c.clone()), Job::Refill(c));
            before = x2.table;
        } else {
            before = x.table;
        }
    }
    eprintln!(
        "ct-diff: seed {seed}, lines {start}..{}, {} mismatches, save round trips {saves}, deliberate differences matched: {explained:?}, conntrack-tools runs repeated after its own '{FLAKE}': {}, {:.1} s",
        start + count,
        reports.len(),
        flakes.get(),
        t0.elapsed().as_secs_f64()
    );
    assert!(
        reports.is_empty(),
        "{} unexplained differences (first above)",
        reports.len()
    );
}

/// The reference side repeats a run of conntrack-tools that hit its own flake ([`FLAKE`]) on its table
/// as it was before the line: rebuilt from the corpus and the block's earlier lines. A stand-in for
/// conntrack-tools applies the first `-I` and then reports the flake, as the real one does when a late
/// answer fails the sequence check after its request went through: the repeat must not find that entry
/// (`File exists`), and the table must still lack what an earlier line deleted. Ours is never repeated.
#[test]
fn reference_flake_is_repeated_on_a_rebuilt_table() {
    let Some(real) = testkit::require_tool("conntrack") else {
        return;
    };
    if !testkit::require("root", testkit::is_root()) {
        return;
    }
    let dir = std::env::temp_dir().join(format!("ct-diff-flake-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (script, state) = (dir.join("conntrack"), dir.join("flaked"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ \"$1\" = -I ] && [ ! -e {state} ]; then\n  touch {state}\n  {real} \"$@\" >/dev/null 2>&1\n  echo 'conntrack v1.4.7 (conntrack-tools): Operation failed: {FLAKE}' >&2\n  exit 1\nfi\nexec {real} \"$@\"\n",
            state = state.display(),
            real = real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let script_path = script.display().to_string();
    let twin = worker(script_path.clone(), script_path.clone());
    let job = |j: Job| {
        twin.tx.send(j).unwrap();
        twin.rx.recv().unwrap()
    };
    let corpus = "-A -p udp -s 10.0.0.1 -d 10.0.0.2 --sport 1 --dport 2 -t 100\n\
                  -A -p udp -s 10.0.0.3 -d 10.0.0.4 --sport 1 --dport 2 -t 100\n";
    let refilled = job(Job::Refill(corpus.into()));
    assert_eq!(refilled.table.len(), 2, "{refilled:?}");
    let deleted = job(Job::Run(Line::plain(words("-D -s 10.0.0.3"))));
    assert_eq!(deleted.table.len(), 1, "{deleted:?}");
    let create = "-I -p tcp -s 10.0.0.5 -d 10.0.0.6 --sport 3 --dport 4 -t 100 --state LISTEN";
    let o = job(Job::Run(Line::plain(words(create))));
    assert_eq!(o.retries, 1, "{o:?}");
    assert_eq!(o.status, Some(0), "{o:?}");
    assert!(!o.stderr.contains(FLAKE), "{o:?}");
    assert!(!o.rebuilt_differently, "{o:?}");
    assert_eq!(o.table.len(), 2, "{o:?}");
    assert!(o.table.iter().any(|e| e.contains("10.0.0.5")), "{o:?}");
    assert!(!o.table.iter().any(|e| e.contains("10.0.0.3")), "{o:?}");
    assert!(o.skew > Duration::ZERO, "{o:?}");
    // The same flaky tool in the place of ours: its outcome stands.
    std::fs::remove_file(&state).unwrap();
    let ours = worker(script_path.clone(), real.display().to_string());
    ours.tx.send(Job::Refill(corpus.into())).unwrap();
    ours.rx.recv().unwrap();
    ours.tx.send(Job::Run(Line::plain(words(create)))).unwrap();
    let o = ours.rx.recv().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(o.retries, 0, "{o:?}");
    assert_eq!(o.status, Some(1), "{o:?}");
    assert!(o.stderr.contains(FLAKE), "{o:?}");
    assert_eq!(o.table.len(), 3, "{o:?}");
}

/// The entry with its reply tuple's ports left out.
fn without_reply_ports(entry: &str) -> String {
    let Some(reply) = entry.find("reply: Some(Tuple {") else {
        return entry.to_string();
    };
    let mut s = entry.to_string();
    // Ports, or an ICMP id (the kernel picks a new id the same way).
    for kind in ["l4: Ports {", "l4: Icmp {", "l4: Icmpv6 {"] {
        if let Some(a) = s[reply..].find(kind).map(|a| a + reply)
            && let Some(len) = s[a..].find('}')
        {
            let rest = &s[a..=a + len];
            let blanked = match rest.find("id: ") {
                Some(i) if kind != "l4: Ports {" => {
                    let end = rest[i..].find(',').map_or(rest.len(), |e| i + e);
                    format!("{}id: *{}", &rest[..i], &rest[end..])
                }
                _ => format!("{kind} * }}"),
            };
            s.replace_range(a..=a + len, &blanked);
            break;
        }
    }
    s
}

/// Not a difference: where a NAT entry's reply tuple clashes with an existing entry, the kernel picks
/// the reply ports (or ICMP id) at random (nf_nat_l4proto_unique_tuple), so the twins' picks differ. Everything else
/// is the same, and the entries that differ are NAT entries differing only in their reply ports.
fn kernel_chose_nat_ports(a: &Seen, b: &Seen) -> bool {
    let only = |x: &[String], y: &[String]| -> Vec<String> {
        let mut v: Vec<String> = x
            .iter()
            .filter(|e| !y.contains(e))
            .map(|e| without_reply_ports(e))
            .collect();
        v.sort();
        v
    };
    let (oa, ob) = (only(&a.table, &b.table), only(&b.table, &a.table));
    (a.status, &a.stdout, &a.stderr) == (b.status, &b.stdout, &b.stderr)
        && a.table.len() == b.table.len()
        && !oa.is_empty()
        && oa == ob
        && oa.iter().all(|e| e.contains("_NAT"))
}

/// The report of an unexplained difference at line `index`: seed, line, how to reproduce it, both
/// outcomes and how the tables differ (with `CT_DIFF_DEBUG`, the block's corpus and earlier lines too).
fn report(
    seed: u64,
    index: u64,
    line: &Line,
    ours_ran: &Option<(Line, String)>,
    (x, sx): (&Outcome, &Seen),
    (y, sy): (&Outcome, &Seen),
    before: &[String],
) -> String {
    let block = index - index % BLOCK;
    let mut r = format!(
        "MISMATCH seed {seed} line {index} (block from line {block}; reproduce: cargo xtask ct-diff --seed {seed} --start {block} --count {})\n  conntrack {}\n",
        index - block + 1,
        line.text()
    );
    if let Some((l, why)) = ours_ran {
        r.push_str(&format!("  ours ran, {why}: conntrack {}\n", l.text()));
    }
    for (name, s, o) in [("conntrack-tools", sx, x), ("ours", sy, y)] {
        r.push_str(&format!(
            "  --- {name}: status {:?}\n  stdout:\n{}\n  stderr:\n{}\n",
            s.status,
            indent(&o.stdout),
            indent(&s.stderr)
        ));
    }
    if x.retries > 0 {
        r.push_str(&format!(
            "  (conntrack-tools' run was repeated {} times after '{FLAKE}' on a rebuilt table{})\n",
            x.retries,
            if x.rebuilt_differently {
                ", which differed from the one before the line"
            } else {
                ""
            }
        ));
    }
    let debug = std::env::var("CT_DIFF_DEBUG").is_ok();
    if sx.table != sy.table {
        r.push_str(&table_diff(&sx.table, &sy.table));
        if debug {
            r.push_str("  conntrack-tools vs before:\n");
            r.push_str(&table_diff(before, &sx.table));
        }
    } else if !timeouts_agree(x, y) {
        r.push_str(&format!(
            "  timeouts differ: {:?} vs {:?}\n",
            x.timeouts, y.timeouts
        ));
    }
    if debug {
        r.push_str("  corpus:\n");
        r.push_str(&indent(&corpus(seed, index / BLOCK)));
        r.push_str("\n  lines before:\n");
        for i in block..index {
            r.push_str(&format!("    {}\n", generate(seed, i).text()));
        }
    }
    r
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn table_diff(a: &[String], b: &[String]) -> String {
    let mut s = String::from("  tables differ:\n");
    for l in a.iter().filter(|l| !b.contains(l)) {
        s.push_str(&format!("    only conntrack-tools: {l}\n"));
    }
    for l in b.iter().filter(|l| !a.contains(l)) {
        s.push_str(&format!("    only ours:            {l}\n"));
    }
    s
}
