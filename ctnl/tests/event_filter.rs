//! Kernel-side event filtering in the real kernel (a fresh network namespace): a socket with an
//! [`EventFilter`] attached receives exactly the events of an unfiltered socket that
//! [`EventFilter::matches`] keeps, for creations, updates and deletions of TCP, UDP, IPv4, IPv6 and DNAT
//! entries; the others never reach it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ctnl::{
    AddrFields, Conntrack, Entry, Event, EventFilter, EventSocket, Groups, Prefix, ProtoInfo, Rule,
    TcpInfo, TryRecv, Tuple,
};
use std::net::IpAddr;
use std::time::Duration;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn entry(proto: u8, src: &str, dst: &str, reply_src: &str, port: u16, state: Option<u8>) -> Entry {
    let orig = Tuple::ports(ip(src), ip(dst), proto, port, 80);
    let mut reply = orig.reversed();
    reply.src = ip(reply_src);
    let mut e = Entry::new(orig, reply);
    e.timeout = Some(120);
    if let Some(s) = state {
        let mut t = TcpInfo::default();
        t.state = Some(s);
        e.protoinfo = Some(ProtoInfo::Tcp(t));
    }
    e
}

fn drain(ev: &mut EventSocket) -> Vec<Event> {
    let mut out = Vec::new();
    loop {
        match ev.try_recv().unwrap() {
            TryRecv::Event(e) => out.push(e),
            TryRecv::WouldBlock => return out,
        }
    }
}

#[test]
fn event_filter_drops_in_the_kernel() {
    let Some(_ns) = testkit::netns() else { return };
    let mut f = EventFilter::new();
    f.protocols = Some(Rule::Accept(vec![6, 17]));
    f.addresses = Some((
        AddrFields::ORIG_SRC | AddrFields::REPLY_SRC,
        Rule::Ignore(vec![
            Prefix::new(ip("10.1.0.0"), 16),
            Prefix::new(ip("2001:db8:1::"), 48),
        ]),
    ));
    f.tcp_states = Some(Rule::Accept(vec![3])); // ESTABLISHED
    let mut all = EventSocket::open(Groups::CONNTRACK).unwrap();
    let mut some = EventSocket::open(Groups::CONNTRACK).unwrap();
    let prog = some.set_filter(&f).unwrap();
    assert!(!prog.insns.is_empty() && !prog.addresses_left_out);
    for s in [&mut all, &mut some] {
        s.set_timeout(Some(Duration::from_millis(300))).unwrap();
    }
    let entries = [
        entry(6, "10.2.0.1", "10.9.0.1", "10.9.0.1", 1, Some(3)),
        entry(6, "10.2.0.1", "10.9.0.1", "10.9.0.1", 2, Some(1)),
        entry(6, "10.1.0.5", "10.9.0.1", "10.9.0.1", 3, Some(3)),
        entry(6, "10.2.0.1", "10.9.0.1", "10.1.7.7", 4, Some(3)),
        entry(17, "10.2.0.1", "10.9.0.1", "10.9.0.1", 5, None),
        entry(17, "10.1.255.1", "10.9.0.1", "10.9.0.1", 6, None),
        entry(132, "10.2.0.1", "10.9.0.1", "10.9.0.1", 7, None),
        entry(
            17,
            "2001:db8:2::1",
            "2001:db8:9::1",
            "2001:db8:9::1",
            8,
            None,
        ),
        entry(
            17,
            "2001:db8:1:5::1",
            "2001:db8:9::1",
            "2001:db8:9::1",
            9,
            None,
        ),
        entry(
            6,
            "2001:db8:2::1",
            "2001:db8:9::1",
            "2001:db8:1::9",
            10,
            Some(3),
        ),
    ];
    let mut ct = Conntrack::open().unwrap();
    for e in &entries {
        ct.create(e).unwrap();
    }
    // Updates (a new timeout and mark), then deletions.
    for e in &entries {
        let mut u = e.clone();
        u.timeout = Some(200);
        u.mark = Some(7);
        ct.update(&u).unwrap();
    }
    for e in &entries {
        ct.delete(&ctnl::Key::of(e).unwrap()).unwrap();
    }
    let everything = drain(&mut all);
    let passed = drain(&mut some);
    assert!(
        everything.len() >= entries.len() * 3,
        "{}",
        everything.len()
    );
    let kept: Vec<&Event> = everything
        .iter()
        .filter(|e| match e {
            Event::Conntrack { entry, .. } => f.matches(entry),
            _ => true,
        })
        .collect();
    let passed: Vec<&Event> = passed.iter().collect();
    assert_eq!(
        passed, kept,
        "the kernel let through exactly what matches() keeps"
    );
    assert!(
        !passed.is_empty() && passed.len() < everything.len(),
        "{} of {} passed: the filter decided nothing",
        passed.len(),
        everything.len()
    );
    // Detaching lets everything through again.
    some.set_filter(&EventFilter::new()).unwrap();
    ct.create(&entries[2]).unwrap();
    assert_eq!(drain(&mut some).len(), 1);
}
