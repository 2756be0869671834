//! Kernel-side event filtering: a typed [`EventFilter`] compiled into a classic BPF program that the
//! kernel runs on every conntrack event before it queues it to an [`EventSocket`]
//! ([`EventSocket::set_filter`]). Events the program rejects never reach user space: no wake-up, no copy,
//! no decoding, no room taken in the receive queue.
//!
//! The program reads the event's netlink attributes with the kernel's `SKF_AD_NLATTR` and
//! `SKF_AD_NLATTR_NEST` helpers (as libnetfilter_conntrack's `nfct_filter_attach` does for conntrackd's
//! `Filter From Kernelspace`). Three tests, each optional, all of which must pass:
//!
//! * protocols: the layer-4 protocol number of the original tuple;
//! * addresses: the chosen address fields ([`AddrFields`]) against networks ([`Prefix`], IPv4 and IPv6,
//!   any prefix length): an entry matches when one of its fields is in one of the networks;
//! * TCP states: the state in `CTA_PROTOINFO_TCP`.
//!
//! Each test either keeps only what matches ([`Rule::Accept`]) or drops what matches ([`Rule::Ignore`]).
//! A test the kernel cannot decide because the event lacks the attribute passes, so the program never
//! drops what [`EventFilter::matches`] would keep: keep checking in user space when events may lack
//! fields. Events of other subsystems (expectations) always pass. A filter too large for one program
//! (more than the kernel's 4096 instructions, about 500 IPv4 or 120 IPv6 networks with two address
//! fields) leaves its address test to user space ([`EventFilter::program`] says so).

use crate::error::Error;
use crate::events::EventSocket;
use crate::wire::{Entry, NFNL_SUBSYS_CTNETLINK};
use std::net::IpAddr;

/// Keep only what matches, or drop what matches.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rule<T> {
    /// Only events that match one of these pass.
    Accept(Vec<T>),
    /// Events that match one of these are dropped.
    Ignore(Vec<T>),
}

impl<T> Rule<T> {
    fn parts(&self) -> (bool, &[T]) {
        match self {
            Rule::Accept(v) => (true, v),
            Rule::Ignore(v) => (false, v),
        }
    }
}

/// An address or a network: `addr` with its first `len` bits significant (32 or 128 for one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    /// The address.
    pub addr: IpAddr,
    /// Significant leading bits (capped at the family's width).
    pub len: u8,
}

impl Prefix {
    /// A prefix.
    pub fn new(addr: IpAddr, len: u8) -> Self {
        Prefix { addr, len }
    }

    /// True when `a` is inside (an address of the other family never is).
    pub fn contains(&self, a: &IpAddr) -> bool {
        match (self.addr, a) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let m = mask32(self.len);
                u32::from(n) & m == u32::from(*a) & m
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let m = mask128(self.len);
                u128::from(n) & m == u128::from(*a) & m
            }
            _ => false,
        }
    }
}

fn mask32(len: u8) -> u32 {
    match u32::from(len.min(32)) {
        0 => 0,
        l => u32::MAX << (32 - l),
    }
}

fn mask128(len: u8) -> u128 {
    match u32::from(len.min(128)) {
        0 => 0,
        l => u128::MAX << (128 - l),
    }
}

bitflags::bitflags! {
    /// Which address fields the address test looks at.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
    pub struct AddrFields: u8 {
        /// The original tuple's source.
        const ORIG_SRC = 1 << 0;
        /// The original tuple's destination.
        const ORIG_DST = 1 << 1;
        /// The reply tuple's source (the real destination of a DNATed connection).
        const REPLY_SRC = 1 << 2;
        /// The reply tuple's destination.
        const REPLY_DST = 1 << 3;
    }
}

/// What the kernel should let through to an event socket. The default lets everything through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventFilter {
    /// Layer-4 protocol numbers of the original tuple.
    pub protocols: Option<Rule<u8>>,
    /// Networks, tested against the chosen fields: an entry matches when any of them is inside any of
    /// the networks.
    pub addresses: Option<(AddrFields, Rule<Prefix>)>,
    /// TCP states (`TCP_CONNTRACK_*`: 3 is ESTABLISHED); entries without a TCP state pass.
    pub tcp_states: Option<Rule<u8>>,
}

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Operation.
    pub code: u16,
    /// Jump offset when true.
    pub jt: u8,
    /// Jump offset when false.
    pub jf: u8,
    /// Operand.
    pub k: u32,
}

/// A compiled filter: the instructions, and whether the address test had to be left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The instructions (empty when the filter lets everything through).
    pub insns: Vec<Insn>,
    /// True when the address test was too large for the kernel and is not in the program.
    pub addresses_left_out: bool,
}

// Classic BPF (linux/filter.h, linux/bpf_common.h).
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ST: u16 = 0x02;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const MISC: u16 = 0x07;
const W: u16 = 0x00;
const B: u16 = 0x10;
const IMM: u16 = 0x00;
const ABS: u16 = 0x20;
const IND: u16 = 0x40;
const MEM: u16 = 0x60;
const AND: u16 = 0x50;
const JA: u16 = 0x00;
const JEQ: u16 = 0x10;
const TAX: u16 = 0x00;
/// The most instructions the kernel takes (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;
/// Ancillary loads: `SKF_AD_OFF` + `SKF_AD_NLATTR` / `SKF_AD_NLATTR_NEST`.
const SKF_AD_OFF: u32 = (-0x1000i32) as u32;
const SKF_AD_NLATTR: u32 = 12;
const SKF_AD_NLATTR_NEST: u32 = 16;
/// nlmsghdr (16) plus nfgenmsg (4): where the attributes start.
const PAYLOAD: u32 = 20;
/// The byte of `nlmsg_type` that holds the subsystem (its high byte).
const SUBSYS_BYTE: u32 = if cfg!(target_endian = "little") { 5 } else { 4 };
// Attribute numbers (linux/netfilter/nfnetlink_conntrack.h).
const CTA_TUPLE_ORIG: u32 = 1;
const CTA_TUPLE_REPLY: u32 = 2;
const CTA_PROTOINFO: u32 = 4;
const CTA_TUPLE_IP: u32 = 1;
const CTA_TUPLE_PROTO: u32 = 2;
const CTA_PROTO_NUM: u32 = 1;
const CTA_PROTOINFO_TCP: u32 = 1;
const CTA_PROTOINFO_TCP_STATE: u32 = 1;
const CTA_IP_V4_SRC: u32 = 1;
const CTA_IP_V4_DST: u32 = 2;
const CTA_IP_V6_SRC: u32 = 3;
const CTA_IP_V6_DST: u32 = 4;

/// A label in the program being assembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Label(usize);

/// Jumps to labels always go through `BPF_JA` (a 32-bit offset); conditional jumps only skip one
/// instruction, so no offset can overflow the 8-bit `jt`/`jf`.
#[derive(Debug, Default)]
struct Asm {
    code: Vec<Insn>,
    /// (instruction index, label) of each `JA`.
    fixups: Vec<(usize, Label)>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn op(&mut self, code: u16, k: u32) {
        self.code.push(Insn {
            code,
            jt: 0,
            jf: 0,
            k,
        });
    }
    fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }
    fn here(&mut self, l: Label) {
        self.labels[l.0] = Some(self.code.len());
    }
    fn goto(&mut self, l: Label) {
        self.fixups.push((self.code.len(), l));
        self.op(JMP | JA, 0);
    }
    /// `if A == k goto l`.
    fn if_eq(&mut self, k: u32, l: Label) {
        self.code.push(Insn {
            code: JMP | JEQ,
            jt: 0,
            jf: 1,
            k,
        });
        self.goto(l);
    }
    /// `if A != k goto l`.
    fn if_ne(&mut self, k: u32, l: Label) {
        self.code.push(Insn {
            code: JMP | JEQ,
            jt: 1,
            jf: 0,
            k,
        });
        self.goto(l);
    }
    /// A = offset of the top-level attribute `kind`; `goto missing` when absent.
    fn find_top(&mut self, kind: u32, missing: Label) {
        self.op(LD | IMM, PAYLOAD);
        self.op(LDX | IMM, kind);
        self.op(LD | B | ABS, SKF_AD_OFF.wrapping_add(SKF_AD_NLATTR));
        self.if_eq(0, missing);
    }
    /// A = offset of the attribute `kind` nested in the attribute at offset A; `goto missing` when absent.
    fn find_nested(&mut self, kind: u32, missing: Label) {
        self.op(LDX | IMM, kind);
        self.op(LD | B | ABS, SKF_AD_OFF.wrapping_add(SKF_AD_NLATTR_NEST));
        self.if_eq(0, missing);
    }
    /// Resolves the jumps.
    fn finish(mut self) -> Vec<Insn> {
        for (at, l) in std::mem::take(&mut self.fixups) {
            let target = self.labels[l.0].unwrap_or(self.code.len());
            // Labels are only ever placed after the jumps to them.
            self.code[at].k = u32::try_from(target.saturating_sub(at + 1)).unwrap_or(0);
        }
        self.code
    }
}

impl EventFilter {
    /// A filter that lets everything through.
    pub fn new() -> Self {
        EventFilter::default()
    }

    /// True when no test is set.
    pub fn is_empty(&self) -> bool {
        self.protocols.is_none() && self.addresses.is_none() && self.tcp_states.is_none()
    }

    /// What the kernel program decides for an event carrying `e`: every test passes (a test whose field
    /// `e` lacks passes).
    pub fn matches(&self, e: &Entry) -> bool {
        if let Some(rule) = &self.protocols
            && let Some(t) = &e.orig
        {
            let (accept, list) = rule.parts();
            if list.contains(&t.proto) != accept {
                return false;
            }
        }
        if let Some((fields, rule)) = &self.addresses {
            let (accept, list) = rule.parts();
            let pick = [
                (AddrFields::ORIG_SRC, e.orig.as_ref().map(|t| t.src)),
                (AddrFields::ORIG_DST, e.orig.as_ref().map(|t| t.dst)),
                (AddrFields::REPLY_SRC, e.reply.as_ref().map(|t| t.src)),
                (AddrFields::REPLY_DST, e.reply.as_ref().map(|t| t.dst)),
            ];
            let mut unknown = false;
            let mut hit = false;
            for (f, a) in pick {
                if !fields.contains(f) {
                    continue;
                }
                match a {
                    Some(a) => hit |= list.iter().any(|p| p.contains(&a)),
                    None => unknown = true,
                }
            }
            let pass = if accept { hit || unknown } else { !hit };
            if !pass {
                return false;
            }
        }
        if let Some(rule) = &self.tcp_states
            && let Some(crate::ProtoInfo::Tcp(t)) = &e.protoinfo
            && let Some(state) = t.state
        {
            let (accept, list) = rule.parts();
            if list.contains(&state) != accept {
                return false;
            }
        }
        true
    }

    /// The classic BPF program (empty when the filter lets everything through).
    pub fn program(&self) -> Program {
        if self.is_empty() {
            return Program {
                insns: Vec::new(),
                addresses_left_out: false,
            };
        }
        let full = self.assemble(true);
        if full.len() <= MAX_INSNS {
            return Program {
                insns: full,
                addresses_left_out: false,
            };
        }
        Program {
            insns: self.assemble(false),
            addresses_left_out: true,
        }
    }

    fn assemble(&self, with_addresses: bool) -> Vec<Insn> {
        let mut a = Asm::default();
        let reject = a.label();
        // Only conntrack events are tested; anything else passes.
        let ct = a.label();
        a.op(LD | B | ABS, SUBSYS_BYTE);
        a.if_eq(u32::from(NFNL_SUBSYS_CTNETLINK), ct);
        a.op(RET, u32::MAX);
        a.here(ct);
        if let Some(rule) = &self.protocols {
            let (accept, list) = rule.parts();
            let pass = a.label();
            a.find_top(CTA_TUPLE_ORIG, pass);
            a.find_nested(CTA_TUPLE_PROTO, pass);
            a.find_nested(CTA_PROTO_NUM, pass);
            load_u8(&mut a);
            one_of(
                &mut a,
                accept,
                list.iter().map(|p| u32::from(*p)),
                pass,
                reject,
            );
            a.here(pass);
        }
        if let Some(rule) = &self.tcp_states {
            let (accept, list) = rule.parts();
            let pass = a.label();
            a.find_top(CTA_PROTOINFO, pass);
            a.find_nested(CTA_PROTOINFO_TCP, pass);
            a.find_nested(CTA_PROTOINFO_TCP_STATE, pass);
            load_u8(&mut a);
            one_of(
                &mut a,
                accept,
                list.iter().map(|s| u32::from(*s)),
                pass,
                reject,
            );
            a.here(pass);
        }
        if with_addresses && let Some((fields, rule)) = &self.addresses {
            addresses(&mut a, *fields, rule, reject);
        }
        a.op(RET, u32::MAX);
        a.here(reject);
        a.op(RET, 0);
        a.finish()
    }
}

/// A = the byte after the attribute header at offset A.
fn load_u8(a: &mut Asm) {
    a.op(MISC | TAX, 0);
    a.op(LD | B | IND, 4);
}

/// `A` against a list: go on at `pass` or jump to `reject` by the rule.
fn one_of(a: &mut Asm, accept: bool, list: impl Iterator<Item = u32>, pass: Label, reject: Label) {
    let hit = a.label();
    for k in list {
        a.if_eq(k, hit);
    }
    // No match.
    a.goto(if accept { reject } else { pass });
    a.here(hit);
    a.goto(if accept { pass } else { reject });
}

/// The address test. Scratch memory: M[0] holds the `CTA_TUPLE_IP` offset of the field being tested,
/// M[1] is non-zero once a chosen field was missing.
fn addresses(a: &mut Asm, fields: AddrFields, rule: &Rule<Prefix>, reject: Label) {
    let (accept, list) = rule.parts();
    let v4: Vec<(u32, u32)> = list
        .iter()
        .filter_map(|p| match p.addr {
            IpAddr::V4(x) => Some((u32::from(x) & mask32(p.len), mask32(p.len))),
            IpAddr::V6(_) => None,
        })
        .collect();
    let v6: Vec<(u128, u128)> = list
        .iter()
        .filter_map(|p| match p.addr {
            IpAddr::V6(x) => Some((u128::from(x) & mask128(p.len), mask128(p.len))),
            IpAddr::V4(_) => None,
        })
        .collect();
    let pass = a.label();
    let hit = a.label();
    a.op(LD | IMM, 0);
    a.op(ST, 1);
    for (flag, tuple, src) in [
        (AddrFields::ORIG_SRC, CTA_TUPLE_ORIG, true),
        (AddrFields::ORIG_DST, CTA_TUPLE_ORIG, false),
        (AddrFields::REPLY_SRC, CTA_TUPLE_REPLY, true),
        (AddrFields::REPLY_DST, CTA_TUPLE_REPLY, false),
    ] {
        if !fields.contains(flag) {
            continue;
        }
        let missing = a.label();
        let try_v6 = a.label();
        let next = a.label();
        a.find_top(tuple, missing);
        a.find_nested(CTA_TUPLE_IP, missing);
        a.op(ST, 0);
        a.find_nested(if src { CTA_IP_V4_SRC } else { CTA_IP_V4_DST }, try_v6);
        a.op(MISC | TAX, 0);
        for &(net, mask) in &v4 {
            a.op(LD | W | IND, 4);
            if mask != u32::MAX {
                a.op(ALU | AND, mask);
            }
            a.if_eq(net, hit);
        }
        a.goto(next);
        a.here(try_v6);
        a.op(LD | MEM, 0);
        a.find_nested(if src { CTA_IP_V6_SRC } else { CTA_IP_V6_DST }, missing);
        a.op(MISC | TAX, 0);
        for &(net, mask) in &v6 {
            let other = a.label();
            for w in 0..4u32 {
                let shift = 96 - 32 * w;
                let (n, m) = ((net >> shift) as u32, (mask >> shift) as u32);
                if m == 0 {
                    continue;
                }
                a.op(LD | W | IND, 4 + 4 * w);
                if m != u32::MAX {
                    a.op(ALU | AND, m);
                }
                a.if_ne(n, other);
            }
            a.goto(hit);
            a.here(other);
        }
        a.goto(next);
        a.here(missing);
        a.op(LD | IMM, 1);
        a.op(ST, 1);
        a.here(next);
    }
    // No field matched: an Accept passes only when a field was missing.
    if accept {
        a.op(LD | MEM, 1);
        a.if_eq(0, reject);
    }
    a.goto(pass);
    a.here(hit);
    if !accept {
        a.goto(reject);
    }
    a.here(pass);
}

impl EventSocket {
    /// Attaches `filter` to this socket (`SO_ATTACH_FILTER`), replacing any filter set before; an empty
    /// filter detaches. Returns the program attached. The kernel then drops the events the program
    /// rejects before they are queued (see the module docs for what it can decide).
    pub fn set_filter(&mut self, filter: &EventFilter) -> Result<Program, Error> {
        let prog = filter.program();
        self.socket().attach_filter(&prog.insns)?;
        Ok(prog)
    }
}

#[cfg(test)]
#[path = "event_filter_tests.rs"]
mod tests;
