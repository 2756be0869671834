//! The option set of conntrack-tools 1.4.7 and the validation it performs, as data.
//!
//! The tables below restate conntrack-tools' documented command/option legality matrix (`conntrack(8)`), so a
//! mistake on our command line is refused with the same wording and exit code as the original.

use super::getopt::{HasArg, LongOpt};

/// Exit status for a parameter problem (conntrack-tools `PARAMETER_PROBLEM`).
pub const EXIT_PARAMETER_PROBLEM: i32 = 2;
/// Exit status for any other problem (conntrack-tools `OTHER_PROBLEM`).
pub const EXIT_OTHER_PROBLEM: i32 = 1;

/// Command bits (conntrack-tools `enum ct_command`).
pub mod cmd {
    /// `-L`.
    pub const CT_LIST: u32 = 1 << 0;
    /// `-I`.
    pub const CT_CREATE: u32 = 1 << 1;
    /// `-U`.
    pub const CT_UPDATE: u32 = 1 << 2;
    /// `-D`.
    pub const CT_DELETE: u32 = 1 << 3;
    /// `-G`.
    pub const CT_GET: u32 = 1 << 4;
    /// `-F`.
    pub const CT_FLUSH: u32 = 1 << 5;
    /// `-E`.
    pub const CT_EVENT: u32 = 1 << 6;
    /// `-V`.
    pub const CT_VERSION: u32 = 1 << 7;
    /// `-h`.
    pub const CT_HELP: u32 = 1 << 8;
    /// `-L expect`.
    pub const EXP_LIST: u32 = 1 << 9;
    /// `-I expect`.
    pub const EXP_CREATE: u32 = 1 << 10;
    /// `-D expect`.
    pub const EXP_DELETE: u32 = 1 << 11;
    /// `-G expect`.
    pub const EXP_GET: u32 = 1 << 12;
    /// `-F expect`.
    pub const EXP_FLUSH: u32 = 1 << 13;
    /// `-E expect`.
    pub const EXP_EVENT: u32 = 1 << 14;
    /// `-C`.
    pub const CT_COUNT: u32 = 1 << 15;
    /// `-C expect`.
    pub const EXP_COUNT: u32 = 1 << 16;
    /// `-S`.
    pub const CT_STATS: u32 = 1 << 17;
    /// `-S expect`.
    pub const EXP_STATS: u32 = 1 << 18;
    /// `-A`.
    pub const CT_ADD: u32 = 1 << 19;
    /// Number of command bits.
    pub const NUMBER: usize = 20;
}

/// Option bits (conntrack-tools `enum ct_options`), in the order of [`OPT_NAMES`].
pub mod opt {
    /// `-s`.
    pub const ORIG_SRC: u32 = 1 << 0;
    /// `-d`.
    pub const ORIG_DST: u32 = 1 << 1;
    /// `-r`.
    pub const REPL_SRC: u32 = 1 << 2;
    /// `-q`.
    pub const REPL_DST: u32 = 1 << 3;
    /// `-p`.
    pub const PROTO: u32 = 1 << 4;
    /// `-t`.
    pub const TIMEOUT: u32 = 1 << 5;
    /// `-u`.
    pub const STATUS: u32 = 1 << 6;
    /// `-z`.
    pub const ZERO: u32 = 1 << 7;
    /// `-e`.
    pub const EVENT_MASK: u32 = 1 << 8;
    /// `--tuple-src`.
    pub const EXP_SRC: u32 = 1 << 9;
    /// `--tuple-dst`.
    pub const EXP_DST: u32 = 1 << 10;
    /// `--mask-src`.
    pub const MASK_SRC: u32 = 1 << 11;
    /// `--mask-dst`.
    pub const MASK_DST: u32 = 1 << 12;
    /// `-a` (deprecated).
    pub const NATRANGE: u32 = 1 << 13;
    /// `-m`.
    pub const MARK: u32 = 1 << 14;
    /// `-i`.
    pub const ID: u32 = 1 << 15;
    /// `-f`.
    pub const FAMILY: u32 = 1 << 16;
    /// `-n`.
    pub const SRC_NAT: u32 = 1 << 17;
    /// `-g`.
    pub const DST_NAT: u32 = 1 << 18;
    /// `-o`.
    pub const OUTPUT: u32 = 1 << 19;
    /// `-c`.
    pub const SECMARK: u32 = 1 << 20;
    /// `-b`.
    pub const BUFFERSIZE: u32 = 1 << 21;
    /// `-j`.
    pub const ANY_NAT: u32 = 1 << 22;
    /// `-w`.
    pub const ZONE: u32 = 1 << 23;
    /// `-l`.
    pub const LABEL: u32 = 1 << 24;
    /// `--label-add`.
    pub const ADD_LABEL: u32 = 1 << 25;
    /// `--label-del`.
    pub const DEL_LABEL: u32 = 1 << 26;
    /// `--orig-zone`.
    pub const ORIG_ZONE: u32 = 1 << 27;
    /// `--reply-zone`.
    pub const REPL_ZONE: u32 = 1 << 28;
    /// Both original addresses.
    pub const ORIG: u32 = ORIG_SRC | ORIG_DST;
    /// Both reply addresses.
    pub const REPL: u32 = REPL_SRC | REPL_DST;
    /// Options that make a listing compare entries against the template.
    pub const COMPARISON: u32 =
        PROTO | ORIG | REPL | MARK | SECMARK | STATUS | ID | ZONE | LABEL | ORIG_ZONE | REPL_ZONE;
    /// Number of option bits.
    pub const NUMBER: usize = 29;
}

/// Names used in "Illegal option `--%s'" messages, indexed by option bit.
pub const OPT_NAMES: [&str; opt::NUMBER] = [
    "src",
    "dst",
    "reply-src",
    "reply-dst",
    "protonum",
    "timeout",
    "status",
    "zero",
    "event-mask",
    "tuple-src",
    "tuple-dst",
    "mask-src",
    "mask-dst",
    "nat-range",
    "mark",
    "id",
    "family",
    "src-nat",
    "dst-nat",
    "output",
    "secmark",
    "buffer-size",
    "any-nat",
    "zone",
    "label",
    "label-add",
    "label-del",
    "orig-zone",
    "reply-zone",
];

/// Legality of each option with each command: 0 illegal, 1 required, 2 optional, 3 decided by address pairing.
/// Rows by command bit; columns by option bit (s d r q p t u z e [ ] { } a m i f n g o c b j w l < > ( )).
pub const COMMANDS_V_OPTIONS: [[u8; opt::NUMBER]; cmd::NUMBER] = [
    [
        2, 2, 2, 2, 2, 0, 2, 2, 0, 0, 0, 2, 2, 0, 2, 0, 2, 2, 2, 2, 2, 0, 2, 2, 2, 0, 0, 2, 2,
    ], // -L
    [
        3, 3, 3, 3, 1, 1, 2, 0, 0, 0, 0, 0, 0, 2, 2, 0, 0, 2, 2, 0, 0, 0, 0, 2, 0, 2, 0, 2, 2,
    ], // -I
    [
        2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 2, 2, 0, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 2, 2, 2, 0, 0,
    ], // -U
    [
        2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 2, 2, 0, 2, 2, 2, 2, 2, 2, 0, 0, 0, 2, 2, 0, 0, 2, 2,
    ], // -D
    [
        3, 3, 3, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0,
    ], // -G
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ], // -F
    [
        2, 2, 2, 2, 2, 0, 0, 0, 2, 0, 0, 2, 2, 0, 2, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 2, 2,
    ], // -E
    [0; opt::NUMBER], // -V
    [
        0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ], // -h
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ], // -L expect
    [
        1, 1, 2, 2, 1, 1, 2, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ], // -I expect
    [
        1, 1, 2, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ], // -D expect
    [
        1, 1, 2, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ], // -G expect
    [0; opt::NUMBER], // -F expect
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ], // -E expect
    [0; opt::NUMBER], // -C
    [0; opt::NUMBER], // -C expect
    [0; opt::NUMBER], // -S
    [0; opt::NUMBER], // -S expect
    [
        3, 3, 3, 3, 1, 1, 2, 0, 0, 0, 0, 0, 0, 2, 2, 0, 0, 2, 2, 0, 0, 0, 0, 2, 0, 2, 0, 2, 2,
    ], // -A
];

/// Summary line per command, printed on stderr after the command ran.
pub fn exit_msg(cmd_bit: usize) -> Option<&'static str> {
    Some(match cmd_bit {
        0 | 4 => "flow entries have been shown.",
        1 => "flow entries have been created.",
        2 => "flow entries have been updated.",
        3 => "flow entries have been deleted.",
        6 => "flow events have been shown.",
        9 | 11 => "expectations have been shown.",
        19 => "flow entries have been added.",
        _ => return None,
    })
}

const fn lo(name: &'static str, has_arg: HasArg, c: char) -> LongOpt {
    LongOpt {
        name,
        has_arg,
        val: c as u32,
    }
}

/// The long options known before any `-p`.
pub const LONG_OPTS: &[LongOpt] = &[
    lo("dump", HasArg::Optional, 'L'),
    lo("create", HasArg::Optional, 'I'),
    lo("add", HasArg::Optional, 'A'),
    lo("delete", HasArg::Optional, 'D'),
    lo("update", HasArg::Optional, 'U'),
    lo("get", HasArg::Optional, 'G'),
    lo("flush", HasArg::Optional, 'F'),
    lo("event", HasArg::Optional, 'E'),
    lo("counter", HasArg::Optional, 'C'),
    lo("stats", HasArg::No, 'S'),
    lo("version", HasArg::No, 'V'),
    lo("help", HasArg::No, 'h'),
    lo("orig-src", HasArg::Required, 's'),
    lo("src", HasArg::Required, 's'),
    lo("orig-dst", HasArg::Required, 'd'),
    lo("dst", HasArg::Required, 'd'),
    lo("reply-src", HasArg::Required, 'r'),
    lo("reply-dst", HasArg::Required, 'q'),
    lo("protonum", HasArg::Required, 'p'),
    lo("timeout", HasArg::Required, 't'),
    lo("status", HasArg::Required, 'u'),
    lo("zero", HasArg::No, 'z'),
    lo("event-mask", HasArg::Required, 'e'),
    lo("tuple-src", HasArg::Required, '['),
    lo("tuple-dst", HasArg::Required, ']'),
    lo("mask-src", HasArg::Required, '{'),
    lo("mask-dst", HasArg::Required, '}'),
    lo("nat-range", HasArg::Required, 'a'),
    lo("mark", HasArg::Required, 'm'),
    lo("secmark", HasArg::Required, 'c'),
    lo("id", HasArg::Optional, 'i'),
    lo("family", HasArg::Required, 'f'),
    lo("src-nat", HasArg::Optional, 'n'),
    lo("dst-nat", HasArg::Optional, 'g'),
    lo("output", HasArg::Required, 'o'),
    lo("buffer-size", HasArg::Required, 'b'),
    lo("any-nat", HasArg::Optional, 'j'),
    lo("zone", HasArg::Required, 'w'),
    lo("label", HasArg::Required, 'l'),
    lo("label-add", HasArg::Required, '<'),
    lo("label-del", HasArg::Optional, '>'),
    lo("orig-zone", HasArg::Required, '('),
    lo("reply-zone", HasArg::Required, ')'),
];

/// The short options (conntrack-tools' getopt string).
pub const SHORT_OPTS: &[(char, HasArg)] = &[
    ('L', HasArg::Optional),
    ('I', HasArg::Optional),
    ('U', HasArg::Optional),
    ('D', HasArg::Optional),
    ('G', HasArg::Optional),
    ('E', HasArg::Optional),
    ('F', HasArg::Optional),
    ('A', HasArg::Optional),
    ('h', HasArg::No),
    ('V', HasArg::No),
    ('s', HasArg::Required),
    ('d', HasArg::Required),
    ('r', HasArg::Required),
    ('q', HasArg::Required),
    ('p', HasArg::Required),
    ('t', HasArg::Required),
    ('u', HasArg::Required),
    ('e', HasArg::Required),
    ('a', HasArg::Required),
    ('z', HasArg::No),
    ('[', HasArg::Required),
    (']', HasArg::Required),
    ('{', HasArg::Required),
    ('}', HasArg::Required),
    ('m', HasArg::Required),
    ('i', HasArg::Required),
    ('f', HasArg::Required),
    ('o', HasArg::Required),
    ('n', HasArg::Optional),
    ('g', HasArg::Optional),
    ('c', HasArg::Required),
    ('b', HasArg::Required),
    ('C', HasArg::Optional),
    ('S', HasArg::No),
    ('j', HasArg::Optional),
    ('w', HasArg::Required),
    ('l', HasArg::Required),
    ('<', HasArg::Required),
    ('>', HasArg::Optional),
    ('(', HasArg::Required),
    (')', HasArg::Required),
];

/// Offset added to protocol-specific option codes so they never collide with the main ones.
pub const PROTO_OPT_OFFSET: u32 = 256;

/// The protocols conntrack-tools has a handler for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoKind {
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// UDP-Lite (136).
    Udplite,
    /// SCTP (132).
    Sctp,
    /// DCCP (33).
    Dccp,
    /// ICMP (1).
    Icmp,
    /// ICMPv6 (58).
    Icmpv6,
    /// GRE (47).
    Gre,
    /// Anything else, by number.
    Unknown,
}

/// A protocol-specific option: name, code (1-based index into the protocol's flag names) and legality row.
#[derive(Debug, Clone, Copy)]
pub struct ProtoOpt {
    /// Long name.
    pub name: &'static str,
    /// Flag index (0-based) in the protocol's legality table.
    pub flag: u8,
}

const fn po(name: &'static str, flag: u8) -> ProtoOpt {
    ProtoOpt { name, flag }
}

impl ProtoKind {
    /// The handler name, as printed by `-o save` (`-p tcp`).
    pub fn name(self) -> &'static str {
        match self {
            ProtoKind::Tcp => "tcp",
            ProtoKind::Udp => "udp",
            ProtoKind::Udplite => "udplite",
            ProtoKind::Sctp => "sctp",
            ProtoKind::Dccp => "dccp",
            ProtoKind::Icmp => "icmp",
            ProtoKind::Icmpv6 => "icmpv6",
            ProtoKind::Gre => "gre",
            ProtoKind::Unknown => "unknown",
        }
    }

    /// The protocol number of a known handler.
    pub fn number(self) -> Option<u8> {
        Some(match self {
            ProtoKind::Tcp => 6,
            ProtoKind::Udp => 17,
            ProtoKind::Udplite => 136,
            ProtoKind::Sctp => 132,
            ProtoKind::Dccp => 33,
            ProtoKind::Icmp => 1,
            ProtoKind::Icmpv6 => 58,
            ProtoKind::Gre => 47,
            ProtoKind::Unknown => return None,
        })
    }

    /// The handler for a protocol number.
    pub fn from_number(n: u8) -> ProtoKind {
        match n {
            6 => ProtoKind::Tcp,
            17 => ProtoKind::Udp,
            136 => ProtoKind::Udplite,
            132 => ProtoKind::Sctp,
            33 => ProtoKind::Dccp,
            1 => ProtoKind::Icmp,
            58 => ProtoKind::Icmpv6,
            47 => ProtoKind::Gre,
            _ => ProtoKind::Unknown,
        }
    }

    /// The long options this protocol adds after `-p`.
    pub fn opts(self) -> &'static [ProtoOpt] {
        const PORTS: &[ProtoOpt] = &[
            po("orig-port-src", 0),
            po("sport", 0),
            po("orig-port-dst", 1),
            po("dport", 1),
            po("reply-port-src", 2),
            po("reply-port-dst", 3),
            po("mask-port-src", 4),
            po("mask-port-dst", 5),
            po("tuple-port-src", 6),
            po("tuple-port-dst", 7),
        ];
        const TCP: &[ProtoOpt] = &[
            po("orig-port-src", 0),
            po("sport", 0),
            po("orig-port-dst", 1),
            po("dport", 1),
            po("reply-port-src", 2),
            po("reply-port-dst", 3),
            po("mask-port-src", 4),
            po("mask-port-dst", 5),
            po("state", 6),
            po("tuple-port-src", 7),
            po("tuple-port-dst", 8),
        ];
        const SCTP: &[ProtoOpt] = &[
            po("orig-port-src", 0),
            po("orig-port-dst", 1),
            po("reply-port-src", 2),
            po("reply-port-dst", 3),
            po("mask-port-src", 4),
            po("mask-port-dst", 5),
            po("state", 6),
            po("tuple-port-src", 7),
            po("tuple-port-dst", 8),
            po("orig-vtag", 9),
            po("reply-vtag", 10),
            po("sport", 0),
            po("dport", 1),
        ];
        const DCCP: &[ProtoOpt] = &[
            po("orig-port-src", 0),
            po("orig-port-dst", 1),
            po("reply-port-src", 2),
            po("reply-port-dst", 3),
            po("mask-port-src", 4),
            po("mask-port-dst", 5),
            po("state", 6),
            po("tuple-port-src", 7),
            po("tuple-port-dst", 8),
            po("sport", 0),
            po("dport", 1),
            po("role", 9),
        ];
        const ICMP: &[ProtoOpt] = &[po("icmp-type", 0), po("icmp-code", 1), po("icmp-id", 2)];
        const ICMPV6: &[ProtoOpt] = &[
            po("icmpv6-type", 0),
            po("icmpv6-code", 1),
            po("icmpv6-id", 2),
        ];
        const GRE: &[ProtoOpt] = &[
            po("orig-key-src", 0),
            po("srckey", 0),
            po("orig-key-dst", 1),
            po("dstkey", 1),
            po("reply-key-src", 2),
            po("reply-key-dst", 3),
            po("mask-key-src", 4),
            po("mask-key-dst", 5),
            po("tuple-key-src", 6),
            po("tuple-key-dst", 7),
        ];
        match self {
            ProtoKind::Tcp => TCP,
            ProtoKind::Udp | ProtoKind::Udplite => PORTS,
            ProtoKind::Sctp => SCTP,
            ProtoKind::Dccp => DCCP,
            ProtoKind::Icmp => ICMP,
            ProtoKind::Icmpv6 => ICMPV6,
            ProtoKind::Gre => GRE,
            ProtoKind::Unknown => &[],
        }
    }

    /// Flag names used in "Illegal option" messages, by flag index.
    pub fn flag_names(self) -> &'static [&'static str] {
        match self {
            ProtoKind::Tcp => &[
                "sport",
                "dport",
                "reply-port-src",
                "reply-port-dst",
                "mask-port-src",
                "mask-port-dst",
                "state",
                "tuple-port-src",
                "tuple-port-dst",
            ],
            ProtoKind::Udp | ProtoKind::Udplite => &[
                "sport",
                "dport",
                "reply-port-src",
                "reply-port-dst",
                "mask-port-src",
                "mask-port-dst",
                "tuple-port-src",
                "tuple-port-dst",
            ],
            ProtoKind::Sctp => &[
                "sport",
                "dport",
                "reply-port-src",
                "reply-port-dst",
                "mask-port-src",
                "mask-port-dst",
                "state",
                "tuple-port-src",
                "tuple-port-dst",
                "orig-vtag",
                "reply-vtag",
            ],
            ProtoKind::Dccp => &[
                "sport",
                "dport",
                "reply-port-src",
                "reply-port-dst",
                "mask-port-src",
                "mask-port-dst",
                "state",
                "tuple-port-src",
                "tuple-port-dst",
                "role",
            ],
            ProtoKind::Icmp => &["icmp-type", "icmp-code", "icmp-id"],
            ProtoKind::Icmpv6 => &["icmpv6-type", "icmpv6-code", "icmpv6-id"],
            ProtoKind::Gre => &[
                "srckey",
                "dstkey",
                "reply-key-src",
                "reply-key-dst",
                "mask-key-src",
                "mask-key-dst",
                "tuple-key-src",
                "tuple-key-dst",
            ],
            ProtoKind::Unknown => &[],
        }
    }

    /// Legality of flag `flag` with command bit `cmd_bit` (0 illegal, 1 required, 2 optional, 3 paired).
    pub fn legality(self, cmd_bit: usize, flag: usize) -> u8 {
        // Rows: -L -I -U -D -G -F -E -V -h, -L/-I/-D/-G/-F/-E expect, -C, -C expect, -S, -S expect, -A.
        let row: &[u8] = match (self, cmd_bit) {
            (ProtoKind::Unknown, _) => &[],
            (ProtoKind::Icmp | ProtoKind::Icmpv6, 0 | 2 | 3 | 6) => &[2, 2, 2],
            (ProtoKind::Icmp | ProtoKind::Icmpv6, 1 | 4 | 19) => &[1, 1, 2],
            (ProtoKind::Tcp, 0 | 2 | 3 | 6) => &[2, 2, 2, 2, 0, 0, 2, 0, 0],
            (ProtoKind::Tcp, 1 | 19) => &[3, 3, 3, 3, 0, 0, 1, 0, 0],
            (ProtoKind::Tcp, 4) => &[3, 3, 3, 3, 0, 0, 2, 0, 0],
            (ProtoKind::Tcp, 10) => &[1, 1, 0, 0, 1, 1, 0, 1, 1],
            (ProtoKind::Tcp, 11 | 12) => &[1, 1, 1, 1, 0, 0, 0, 0, 0],
            (ProtoKind::Udp | ProtoKind::Udplite | ProtoKind::Gre, 0 | 2 | 3 | 6) => &[2, 2, 2, 2],
            (ProtoKind::Udp | ProtoKind::Udplite | ProtoKind::Gre, 1 | 4 | 19) => &[3, 3, 3, 3],
            (ProtoKind::Udp | ProtoKind::Udplite, 10) => &[1, 1, 0, 0, 1, 1, 1, 1],
            (ProtoKind::Gre, 10) => &[1, 1, 1, 1, 1, 1, 1, 1],
            (ProtoKind::Udp | ProtoKind::Udplite | ProtoKind::Gre, 11 | 12) => &[1, 1, 1, 1],
            (ProtoKind::Sctp, 0 | 3 | 6) => &[2, 2, 2, 2, 0, 0, 2],
            (ProtoKind::Sctp, 2) => &[2, 2, 2, 2, 0, 0, 2, 0, 0, 2, 2],
            (ProtoKind::Sctp, 1 | 19) => &[3, 3, 3, 3, 0, 0, 1, 0, 0, 1, 1],
            (ProtoKind::Sctp, 4) => &[3, 3, 3, 3, 0, 0, 2, 0, 0, 2, 2],
            (ProtoKind::Sctp, 10) => &[1, 1, 0, 0, 1, 1, 0, 1, 1, 1, 1],
            (ProtoKind::Sctp, 11 | 12) => &[1, 1, 1, 1],
            (ProtoKind::Dccp, 0 | 2 | 3 | 6) => &[2, 2, 2, 2, 0, 0, 2],
            (ProtoKind::Dccp, 1 | 19) => &[3, 3, 3, 3, 0, 0, 1, 0, 0, 1],
            (ProtoKind::Dccp, 4) => &[3, 3, 3, 3, 0, 0, 2],
            (ProtoKind::Dccp, 10) => &[1, 1, 0, 0, 1, 1, 0, 1, 1, 1],
            (ProtoKind::Dccp, 11 | 12) => &[1, 1, 1, 1],
            _ => &[],
        };
        row.get(flag).copied().unwrap_or(0)
    }

    /// Whether this protocol checks its port/key pairing for create/get (`3` in its table), and the message.
    pub fn pairing_messages(self) -> Option<(&'static str, &'static str)> {
        match self {
            ProtoKind::Tcp | ProtoKind::Udp | ProtoKind::Udplite | ProtoKind::Sctp => Some((
                "you have to specify `--sport' and `--dport'",
                "you have to specify `--reply-src-port' and `--reply-dst-port'",
            )),
            ProtoKind::Dccp => Some((
                "you have to specify `--sport' and `--dport'",
                "you have to specify `--reply-port-src' and `--report-port-dst'",
            )),
            ProtoKind::Gre => Some((
                "you have to specify `--srckey' and `--dstkey'",
                "you have to specify `--reply-src-key' and `--reply-dst-key'",
            )),
            _ => None,
        }
    }

    /// The long options visible after `-p` with this protocol (main ones plus the protocol's).
    pub fn long_opts(self) -> Vec<LongOpt> {
        let mut v = LONG_OPTS.to_vec();
        v.extend(self.opts().iter().map(|o| LongOpt {
            name: o.name,
            has_arg: HasArg::Required,
            val: PROTO_OPT_OFFSET + u32::from(o.flag),
        }));
        v
    }
}

// The TCP, SCTP and DCCP state names are ctnl's (`ctnl::text::TCP_STATES`, ...).
