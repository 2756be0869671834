//! The compiled programs run on a classic BPF interpreter that follows the kernel's (`net/core/filter.c`:
//! `bpf_skb_get_nlattr`, `bpf_skb_get_nlattr_nest`; `lib/nlattr.c`: `nla_find`), over event messages
//! built from random entries: the program's verdict must be [`EventFilter::matches`]'s. The kernel test
//! `event_filter_drops_in_the_kernel` (tests/kernel.rs) checks the same programs in the real kernel.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::{ProtoInfo, TcpInfo, Tuple};
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

/// `nla_find`: the first attribute of type `kind` in `buf[start..end]`, as an offset into `buf`, or 0.
fn nla_find(buf: &[u8], start: usize, end: usize, kind: u32) -> u32 {
    let mut pos = start;
    while pos + 4 <= end {
        let len = usize::from(u16::from_ne_bytes([buf[pos], buf[pos + 1]]));
        let t = u16::from_ne_bytes([buf[pos + 2], buf[pos + 3]]) & 0x3fff;
        if len < 4 || len > end - pos {
            break;
        }
        if u32::from(t) == kind {
            return pos as u32;
        }
        pos += (len + 3) & !3;
    }
    0
}

/// Runs a program over `pkt`; the verdict (0 drops).
fn run(prog: &[Insn], pkt: &[u8]) -> u32 {
    let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
    let mut pc = 0;
    let load = |off: usize, size: usize| -> Option<u32> {
        let b = pkt.get(off..off + size)?;
        Some(b.iter().fold(0, |v, &c| (v << 8) | u32::from(c)))
    };
    loop {
        let i = prog[pc];
        pc += 1;
        match i.code {
            c if c == LD | IMM => a = i.k,
            c if c == LDX | IMM => x = i.k,
            c if c == LD | MEM => a = mem[i.k as usize],
            c if c == ST => mem[i.k as usize] = a,
            c if c == MISC | TAX => x = a,
            c if c == ALU | AND => a &= i.k,
            c if c == LD | B | ABS && i.k == SKF_AD_OFF.wrapping_add(SKF_AD_NLATTR) => {
                let s = a as usize;
                a = if s + 4 > pkt.len() {
                    0
                } else {
                    nla_find(pkt, s, pkt.len(), x)
                };
            }
            c if c == LD | B | ABS && i.k == SKF_AD_OFF.wrapping_add(SKF_AD_NLATTR_NEST) => {
                let s = a as usize;
                a = if s + 4 > pkt.len() {
                    0
                } else {
                    let len = usize::from(u16::from_ne_bytes([pkt[s], pkt[s + 1]]));
                    if len > pkt.len() - s || len < 4 {
                        0
                    } else {
                        nla_find(pkt, s + 4, s + len, x)
                    }
                };
            }
            c if c == LD | B | ABS => match load(i.k as usize, 1) {
                Some(v) => a = v,
                None => return 0,
            },
            c if c == LD | B | IND => match load(x as usize + i.k as usize, 1) {
                Some(v) => a = v,
                None => return 0,
            },
            c if c == LD | W | IND => match load(x as usize + i.k as usize, 4) {
                Some(v) => a = v,
                None => return 0,
            },
            c if c == JMP | JA => pc += i.k as usize,
            c if c == JMP | JEQ => {
                pc += usize::from(if a == i.k { i.jt } else { i.jf });
            }
            c if c == RET => return i.k,
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
}

/// The event message the kernel multicasts for `e`: nlmsghdr (type IPCTNL_MSG_CT_NEW of subsystem
/// `subsys`), nfgenmsg, attributes.
fn event(e: &Entry, subsys: u8) -> Vec<u8> {
    let mut body = vec![0u8; e.buffer_len()];
    let n = e.emit(&mut body).unwrap();
    let mut m = Vec::new();
    m.extend_from_slice(&((16 + n) as u32).to_ne_bytes());
    m.extend_from_slice(&(u16::from(subsys) << 8).to_ne_bytes());
    m.extend_from_slice(&[0u8; 10]);
    m.extend_from_slice(&body[..n]);
    m
}

fn addr(v6: bool, i: u8) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0,
            u16::from(i >> 4),
            0,
            0,
            0,
            u16::from(i),
        ))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, i >> 4, 0, i))
    }
}

fn entry_strategy() -> impl Strategy<Value = Entry> {
    (
        any::<bool>(),
        prop_oneof![Just(6u8), Just(17), Just(132), Just(1)],
        (0u8..64, 0u8..64, 0u8..64),
        proptest::option::of(0u8..10),
        0u8..4,
    )
        .prop_map(|(v6, proto, (s, d, r), state, shape)| {
            let orig = Tuple::ports(addr(v6, s), addr(v6, d), proto, 1000, 80);
            let mut reply = orig.reversed();
            // A DNATed connection: the reply comes from elsewhere.
            reply.src = addr(v6, r);
            let mut e = Entry::new(orig, reply);
            if proto == 6
                && let Some(st) = state
            {
                e.protoinfo = Some(ProtoInfo::Tcp(TcpInfo {
                    state: Some(st),
                    ..TcpInfo::default()
                }));
            }
            match shape {
                1 => e.reply = None,
                2 => e.orig = None,
                _ => {}
            }
            e
        })
}

fn rule<T: std::fmt::Debug + Clone>(
    s: impl Strategy<Value = Vec<T>>,
) -> impl Strategy<Value = Rule<T>> {
    (any::<bool>(), s).prop_map(|(accept, v)| {
        if accept {
            Rule::Accept(v)
        } else {
            Rule::Ignore(v)
        }
    })
}

fn filter_strategy() -> impl Strategy<Value = EventFilter> {
    let prefix =
        (any::<bool>(), 0u8..64, 0u8..=128).prop_map(|(v6, i, len)| Prefix::new(addr(v6, i), len));
    (
        proptest::option::of(rule(proptest::collection::vec(
            prop_oneof![Just(6u8), Just(17), Just(132), Just(1)],
            0..3,
        ))),
        proptest::option::of((
            (1u8..16).prop_map(AddrFields::from_bits_truncate),
            rule(proptest::collection::vec(prefix, 0..6)),
        )),
        proptest::option::of(rule(proptest::collection::vec(0u8..10, 0..4))),
    )
        .prop_map(|(protocols, addresses, tcp_states)| {
            let mut f = EventFilter::new();
            f.protocols = protocols;
            f.addresses = addresses;
            f.tcp_states = tcp_states;
            f
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn program_decides_like_matches(e in entry_strategy(), f in filter_strategy()) {
        let prog = f.program();
        prop_assert!(!prog.addresses_left_out);
        let verdict = if prog.insns.is_empty() { u32::MAX } else { run(&prog.insns, &event(&e, 1)) };
        prop_assert_eq!(verdict != 0, f.matches(&e), "{:?}\n{:?}", f, e);
    }
}

#[test]
fn expectation_events_always_pass() {
    let mut f = EventFilter::new();
    f.protocols = Some(Rule::Accept(vec![6]));
    let e = Entry::new(
        Tuple::ports(addr(false, 1), addr(false, 2), 17, 1, 2),
        Tuple::ports(addr(false, 2), addr(false, 1), 17, 2, 1),
    );
    let prog = f.program().insns;
    assert_eq!(
        run(&prog, &event(&e, 1)),
        0,
        "a UDP entry fails `Accept TCP`"
    );
    assert_eq!(run(&prog, &event(&e, 2)), u32::MAX, "other subsystems pass");
}

#[test]
fn a_filter_too_large_for_the_kernel_leaves_addresses_to_user_space() {
    let many: Vec<Prefix> = (0..2000u32)
        .map(|i| Prefix::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), 32))
        .collect();
    let mut f = EventFilter::new();
    f.protocols = Some(Rule::Accept(vec![6]));
    f.addresses = Some((
        AddrFields::ORIG_SRC | AddrFields::REPLY_SRC,
        Rule::Accept(many),
    ));
    let p = f.program();
    assert!(p.addresses_left_out);
    assert!(!p.insns.is_empty() && p.insns.len() <= MAX_INSNS);
}

#[test]
fn empty_filter_is_no_program() {
    assert!(EventFilter::new().program().insns.is_empty());
}
