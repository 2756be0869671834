//! conntrackd's `Filter` in the kernel and in user space: for random entries and filters, the kernel's
//! event filter ([`Filter::event_filter`], run by the kernel as a BPF program that decides like
//! `ctnl::EventFilter::matches`) keeps everything the user-space test ([`Filter::matches`],
//! conntrackd's `ct_filter_check`) keeps, and keeps nothing else when the entry has both tuples, as
//! kernel events do; the kernel dumps ([`Filter::kernel_dumps`]) cover every entry the test keeps.
#![cfg(feature = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ctsync_proto::driver::{Filter, Logic, Net};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn addr(v6: bool, i: u8) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            u16::from(i >> 3),
            0,
            0,
            0,
            0,
            u16::from(i),
        ))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, i >> 3, 0, i))
    }
}

fn entry() -> impl Strategy<Value = (ctnl::Entry, bool)> {
    (
        any::<bool>(),
        prop_oneof![Just(6u8), Just(17), Just(1), Just(132)],
        (0u8..32, 0u8..32, 0u8..32),
        proptest::option::of(0u8..10),
        any::<bool>(),
    )
        .prop_map(|(v6, proto, (s, d, r), state, no_reply)| {
            let orig = ctnl::Tuple::ports(addr(v6, s), addr(v6, d), proto, 1, 2);
            let mut reply = orig.reversed();
            reply.src = addr(v6, r);
            let mut e = ctnl::Entry::new(orig, reply);
            if proto == 6
                && let Some(st) = state
            {
                let mut t = ctnl::TcpInfo::default();
                t.state = Some(st);
                e.protoinfo = Some(ctnl::ProtoInfo::Tcp(t));
            }
            if no_reply {
                e.reply = None;
            }
            (e, !no_reply)
        })
}

fn logic() -> impl Strategy<Value = Logic> {
    prop_oneof![Just(Logic::Accept), Just(Logic::Ignore)]
}

fn filter() -> impl Strategy<Value = Filter> {
    let net = (any::<bool>(), 0u8..32, 0u8..=128).prop_map(|(v6, i, p)| Net {
        addr: addr(v6, i),
        prefix: if v6 { p } else { p.min(32) },
    });
    (
        proptest::option::of((
            logic(),
            proptest::collection::vec(prop_oneof![Just(6u8), Just(17), Just(1)], 0..4),
        )),
        proptest::option::of((logic(), proptest::collection::vec(net, 0..5))),
        proptest::option::of((logic(), proptest::collection::vec(0u8..10, 0..4))),
    )
        .prop_map(|(p, a, s)| {
            let mut f = Filter::new();
            f.protocols = p;
            f.addresses = a;
            f.tcp_states = s;
            f
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]
    #[test]
    fn kernel_filter_keeps_what_user_space_keeps((e, both) in entry(), f in filter()) {
        let user = f.matches(&e);
        let kernel = f.event_filter().matches(&e);
        if user {
            prop_assert!(kernel, "the kernel would drop an entry user space keeps: {:?} {:?}", f, e);
        }
        if both {
            prop_assert_eq!(kernel, user, "{:?} {:?}", f, e);
        }
        if user {
            let proto = e.orig.as_ref().unwrap().proto;
            prop_assert!(f.kernel_dumps().iter().any(|d| d.orig.as_ref().and_then(|t| t.proto).is_none_or(|p| p == proto)));
        }
    }
}
