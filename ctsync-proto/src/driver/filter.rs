//! conntrackd's `Filter` clause (`filter.c`): which kernel entries are replicated.
//!
//! Three independent tests, each optional, each either `Accept` (only what is listed passes) or `Ignore`
//! (what is listed is dropped):
//!
//! * `Protocol`: the layer-4 protocol number;
//! * `Address`: the real source and destination of the connection (original source, reply source),
//!   exact addresses or CIDR networks, IPv4 and IPv6;
//! * `State`: the TCP state (entries of other protocols, or without a state, pass).
//!
//! [`Filter::matches`] is conntrackd's user-space test (`ct_filter_check`), and stays the authority: it
//! runs on every event and every dumped entry. Before it, the kernel drops what it can:
//!
//! * [`Filter::event_filter`] is the same test as a socket filter for the event socket (a classic BPF
//!   program, `ctnl::EventFilter`), so filtered-out events never reach user space. It is exact on the
//!   events the kernel sends (both tuples present); a test whose attribute is missing passes to user
//!   space. conntrackd attaches its own BPF only with `Filter From Kernelspace`, and that program
//!   differs from its user-space test (it tests the original source and destination, both, against
//!   the `Address` list, where user space tests the original source or the reply source); the driver
//!   always attaches this one, which decides like user space.
//! * [`Filter::kernel_dumps`] gives the dumps a kernel-side dump filter can narrow (one per accepted
//!   protocol); addresses and states are not kernel dump filters (no prefix match, no state).

use std::net::IpAddr;

/// `Accept` or `Ignore`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Logic {
    /// Only the listed values pass (`CT_FILTER_POSITIVE`).
    Accept,
    /// The listed values are dropped (`CT_FILTER_NEGATIVE`).
    Ignore,
}

/// An address or network of the `Address` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length (32 or 128 for one address).
    pub prefix: u8,
}

impl Net {
    /// True when `a` is inside this network.
    pub fn contains(&self, a: &IpAddr) -> bool {
        match (self.addr, a) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let p = u32::from(self.prefix.min(32));
                let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
                u32::from(n) & mask == u32::from(*a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let p = u32::from(self.prefix.min(128));
                let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
                u128::from(n) & mask == u128::from(*a) & mask
            }
            _ => false,
        }
    }
}

/// The filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Filter {
    /// `Protocol Accept|Ignore { ... }`: protocol numbers.
    pub protocols: Option<(Logic, Vec<u8>)>,
    /// `Address Accept|Ignore { ... }`.
    pub addresses: Option<(Logic, Vec<Net>)>,
    /// `State Accept|Ignore { ... for TCP }`: TCP state numbers (`TCP_CONNTRACK_*`).
    pub tcp_states: Option<(Logic, Vec<u8>)>,
}

impl Filter {
    /// A filter that lets everything through.
    pub fn new() -> Self {
        Filter::default()
    }

    /// True when no test is configured.
    pub fn is_empty(&self) -> bool {
        self.protocols.is_none() && self.addresses.is_none() && self.tcp_states.is_none()
    }

    /// Whether conntrackd would replicate this entry (`ct_filter_check`): every configured test passes.
    /// An entry without an original tuple never passes (conntrackd's sanity check drops it).
    pub fn matches(&self, e: &ctnl::Entry) -> bool {
        let Some(orig) = e.orig.as_ref() else {
            return false;
        };
        if let Some((logic, list)) = &self.protocols {
            let listed = list.contains(&orig.proto);
            if listed != (*logic == Logic::Accept) {
                return false;
            }
        }
        if let Some((logic, list)) = &self.addresses {
            let src = orig.src;
            // "we only use the real source and destination address": the reply's source.
            let dst = e.reply.as_ref().map_or(orig.dst, |r| r.src);
            let listed = list.iter().any(|n| n.contains(&src) || n.contains(&dst));
            if listed != (*logic == Logic::Accept) {
                return false;
            }
        }
        if let Some((logic, states)) = &self.tcp_states
            && orig.proto == 6
            && let Some(ctnl::ProtoInfo::Tcp(t)) = &e.protoinfo
            && let Some(state) = t.state
        {
            let listed = states.contains(&state);
            if listed != (*logic == Logic::Accept) {
                return false;
            }
        }
        true
    }

    /// The dumps to run instead of one of the whole table: with `Protocol Accept` listing at most four
    /// protocols, one dump per protocol, each filtered by the kernel (`CTA_FILTER`), so entries of
    /// other protocols are never copied to user space; otherwise one dump of everything.
    /// [`Filter::matches`] still decides on what comes back.
    pub fn kernel_dumps(&self) -> Vec<ctnl::DumpFilter> {
        match &self.protocols {
            Some((Logic::Accept, list)) if (1..=4).contains(&list.len()) => {
                let mut protos = list.clone();
                protos.sort_unstable();
                protos.dedup();
                protos
                    .into_iter()
                    .map(|p| {
                        let mut t = ctnl::TupleFilter::default();
                        t.proto = Some(p);
                        let mut f = ctnl::DumpFilter::all();
                        f.orig = Some(t);
                        f
                    })
                    .collect()
            }
            _ => vec![ctnl::DumpFilter::all()],
        }
    }

    /// The event-socket filter the kernel runs (see the module docs); empty when nothing is filtered.
    pub fn event_filter(&self) -> ctnl::EventFilter {
        fn rule<T>(logic: Logic, v: Vec<T>) -> ctnl::Rule<T> {
            match logic {
                Logic::Accept => ctnl::Rule::Accept(v),
                Logic::Ignore => ctnl::Rule::Ignore(v),
            }
        }
        let mut f = ctnl::EventFilter::new();
        f.protocols = self
            .protocols
            .as_ref()
            .map(|(l, list)| rule(*l, list.clone()));
        f.addresses = self.addresses.as_ref().map(|(l, list)| {
            let nets = list
                .iter()
                .map(|n| ctnl::Prefix::new(n.addr, n.prefix))
                .collect();
            (
                ctnl::AddrFields::ORIG_SRC | ctnl::AddrFields::REPLY_SRC,
                rule(*l, nets),
            )
        });
        f.tcp_states = self
            .tcp_states
            .as_ref()
            .map(|(l, list)| rule(*l, list.clone()));
        f
    }
}
