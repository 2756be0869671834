//! Conversion to and from the `ctnl` crate's [`ctnl::Entry`] (feature `ctnl`).
//!
//! [`CtEntry`] stays the core type of this crate; these functions map it to the netlink model with both
//! tuples, the reply tuple rebuilt from the NAT attributes ([`CtEntry::reply_tuple`]), and back, deriving
//! the NAT attributes from the difference between the reply tuple and the inverted original
//! ([`CtEntry::set_tuples`]), as conntrackd does through libnetfilter_conntrack.

use crate::entry::{L4, Tuple};
use crate::wire::{AddrPair, CtEntry, HelperName, Labels, NatSeqAdj, PortPair, Synproxy};
use std::net::IpAddr;

fn tuple_to_ctnl(t: &Tuple) -> ctnl::Tuple {
    let l4 = match t.l4 {
        L4::Ports(p) => ctnl::L4::Ports {
            src: p.sport,
            dst: p.dport,
        },
        L4::Icmp {
            icmp_type,
            code,
            id,
        } if t.l4proto == 58 => ctnl::L4::Icmpv6 {
            id,
            kind: icmp_type,
            code,
        },
        L4::Icmp {
            icmp_type,
            code,
            id,
        } => ctnl::L4::Icmp {
            id,
            kind: icmp_type,
            code,
        },
        L4::None => ctnl::L4::None,
    };
    ctnl::Tuple {
        src: t.addrs.src(),
        dst: t.addrs.dst(),
        proto: t.l4proto,
        l4,
        zone: None,
        unknown: Vec::new(),
    }
}

fn tuple_from_ctnl(t: &ctnl::Tuple) -> Option<Tuple> {
    let addrs = match (t.src, t.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => AddrPair::V4 { src, dst },
        (IpAddr::V6(src), IpAddr::V6(dst)) => AddrPair::V6 { src, dst },
        _ => return None,
    };
    let l4 = match t.l4 {
        ctnl::L4::Ports { src, dst } => L4::Ports(PortPair {
            sport: src,
            dport: dst,
        }),
        ctnl::L4::Icmp { id, kind, code } | ctnl::L4::Icmpv6 { id, kind, code } => L4::Icmp {
            icmp_type: kind,
            code,
            id,
        },
        _ => L4::None,
    };
    Some(Tuple {
        addrs,
        l4proto: t.proto,
        l4,
    })
}

impl CtEntry {
    /// The netlink entry for this message (`None` without a tuple): the original tuple, the reply tuple
    /// rebuilt from it and the NAT attributes ([`CtEntry::reply_tuple`]), and every other attribute as
    /// carried, so that [`CtEntry::from_ctnl`] gives the message back. conntrackd's commit
    /// (`nl_create_conntrack`) then also clears `IPS_EXPECTED` from the status, applies `CommitTimeout`
    /// and, without `TCPWindowTracking`, makes TCP window tracking liberal; those are the committing
    /// caller's choices and are not applied here.
    pub fn to_ctnl(&self) -> Option<ctnl::Entry> {
        let orig = self.orig_tuple()?;
        let reply = self.reply_tuple()?;
        let mut e = ctnl::Entry::new(tuple_to_ctnl(&orig), tuple_to_ctnl(&reply));
        e.status = self.status;
        e.timeout = self.timeout;
        e.mark = self.mark;
        e.zone = self.zone;
        e.protoinfo = if self.tcp_state.is_some() || self.tcp_wscale_orig.is_some() {
            let mut t = ctnl::TcpInfo::default();
            t.state = self.tcp_state;
            t.wscale_orig = self.tcp_wscale_orig;
            t.wscale_reply = self.tcp_wscale_repl;
            Some(ctnl::ProtoInfo::Tcp(t))
        } else if self.sctp_state.is_some() {
            let mut s = ctnl::SctpInfo::default();
            s.state = self.sctp_state;
            s.vtag_orig = self.sctp_vtag_orig;
            s.vtag_reply = self.sctp_vtag_repl;
            Some(ctnl::ProtoInfo::Sctp(s))
        } else if self.dccp_state.is_some() {
            let mut d = ctnl::DccpInfo::default();
            d.state = self.dccp_state;
            d.role = self.dccp_role;
            Some(ctnl::ProtoInfo::Dccp(d))
        } else {
            None
        };
        if let (Some(a), Some(p)) = (self.master_addrs, self.master_l4proto) {
            let l4 = self.master_ports.map_or(L4::None, L4::Ports);
            e.master = Some(tuple_to_ctnl(&Tuple {
                addrs: a,
                l4proto: p,
                l4,
            }));
        }
        if let Some(s) = self.nat_seq_adj {
            e.seq_adj_orig = Some(ctnl::SeqAdj {
                correction_pos: Some(s.orig_correction_pos),
                offset_before: Some(s.orig_offset_before),
                offset_after: Some(s.orig_offset_after),
            });
            e.seq_adj_reply = Some(ctnl::SeqAdj {
                correction_pos: Some(s.repl_correction_pos),
                offset_before: Some(s.repl_offset_before),
                offset_after: Some(s.repl_offset_after),
            });
        }
        e.helper = self.helper.map(|h| ctnl::Helper {
            name: h.name().into_owned(),
            info: None,
        });
        // The kernel's label bitmap is in host-order words: label 32 * w + b is bit b of word w.
        e.labels = self
            .labels
            .map(|l| l.words().iter().flat_map(|w| w.to_ne_bytes()).collect());
        e.synproxy = self.synproxy.map(|s| ctnl::Synproxy {
            isn: Some(s.isn),
            its: Some(s.its),
            tsoff: Some(s.tsoff),
        });
        Some(e)
    }

    /// The sync message conntrackd would build for a netlink entry (`None` without an original tuple).
    pub fn from_ctnl(e: &ctnl::Entry) -> Option<CtEntry> {
        let orig = tuple_from_ctnl(e.orig.as_ref()?)?;
        let mut m = CtEntry {
            status: e.status,
            ..CtEntry::default()
        };
        let reply = e
            .reply
            .as_ref()
            .and_then(tuple_from_ctnl)
            .unwrap_or_else(|| orig.invert());
        m.set_tuples(&orig, &reply);
        m.timeout = e.timeout;
        m.mark = e.mark;
        m.zone = e.zone;
        match &e.protoinfo {
            Some(ctnl::ProtoInfo::Tcp(t)) => {
                m.tcp_state = t.state;
                m.tcp_wscale_orig = t.wscale_orig;
                m.tcp_wscale_repl = t.wscale_reply;
            }
            Some(ctnl::ProtoInfo::Sctp(s)) => {
                m.sctp_state = s.state;
                m.sctp_vtag_orig = s.vtag_orig;
                m.sctp_vtag_repl = s.vtag_reply;
            }
            Some(ctnl::ProtoInfo::Dccp(d)) => {
                m.dccp_state = d.state;
                m.dccp_role = d.role;
            }
            _ => {}
        }
        if let Some(t) = e.master.as_ref().and_then(tuple_from_ctnl) {
            m.master_addrs = Some(t.addrs);
            m.master_l4proto = Some(t.l4proto);
            if let L4::Ports(p) = t.l4 {
                m.master_ports = Some(p);
            }
        }
        // conntrackd sends the adjustment only when all six values are set.
        if let (Some(o), Some(r)) = (e.seq_adj_orig, e.seq_adj_reply)
            && let (Some(a), Some(b), Some(c), Some(d), Some(f), Some(g)) = (
                o.correction_pos,
                o.offset_before,
                o.offset_after,
                r.correction_pos,
                r.offset_before,
                r.offset_after,
            )
        {
            m.nat_seq_adj = Some(NatSeqAdj {
                orig_correction_pos: a,
                orig_offset_before: b,
                orig_offset_after: c,
                repl_correction_pos: d,
                repl_offset_before: f,
                repl_offset_after: g,
            });
        }
        m.helper = e.helper.as_ref().and_then(|h| HelperName::new(&h.name));
        m.labels = e.labels.as_ref().and_then(|b| {
            let mut w = [0u32; 4];
            let n = (b.len() / 4).min(4);
            for (i, slot) in w.iter_mut().enumerate().take(n) {
                *slot = u32::from_ne_bytes([b[i * 4], b[i * 4 + 1], b[i * 4 + 2], b[i * 4 + 3]]);
            }
            // ct_build_clabel sends nothing for an all-zero bitmap.
            if w.iter().all(|x| *x == 0) {
                None
            } else {
                Labels::new(&w[..n])
            }
        });
        m.synproxy = e.synproxy.and_then(|s| {
            Some(Synproxy {
                its: s.its?,
                isn: s.isn?,
                tsoff: s.tsoff?,
            })
        });
        Some(m)
    }
}

/// A tuple from an address pair, a protocol and ports as an expectation message carries them.
fn exp_tuple(a: Option<AddrPair>, p: Option<u8>, ports: Option<PortPair>) -> Option<ctnl::Tuple> {
    let addrs = a?;
    let l4 = ports.map_or(L4::None, L4::Ports);
    Some(tuple_to_ctnl(&Tuple {
        addrs,
        l4proto: p.unwrap_or(0),
        l4,
    }))
}

fn exp_tuple_parts(t: Option<&ctnl::Tuple>) -> (Option<AddrPair>, Option<u8>, Option<PortPair>) {
    match t.and_then(tuple_from_ctnl) {
        Some(t) => {
            let ports = match t.l4 {
                L4::Ports(p) => Some(p),
                _ => None,
            };
            (Some(t.addrs), Some(t.l4proto), ports)
        }
        None => (None, None, None),
    }
}

impl crate::wire::ExpEntry {
    /// The netlink expectation for this message (`None` without master and expected tuples): master,
    /// expected and mask tuples, timeout, flags, class, helper, function and NAT (`exp2msg` in reverse).
    pub fn to_ctnl(&self) -> Option<ctnl::Expect> {
        let master = exp_tuple(self.master_addrs, self.master_l4proto, self.master_ports)?;
        let tuple = exp_tuple(self.expect_addrs, self.expect_l4proto, self.expect_ports)?;
        let mut x = ctnl::Expect::default();
        x.family = if master.src.is_ipv4() {
            ctnl::Family::Ipv4
        } else {
            ctnl::Family::Ipv6
        };
        x.master = Some(master);
        x.tuple = Some(tuple);
        x.mask = exp_tuple(self.mask_addrs, self.mask_l4proto, self.mask_ports);
        x.timeout = self.timeout;
        x.flags = self.flags;
        x.class = self.class;
        x.helper = self.helper.map(|h| h.name().into_owned());
        x.func = self.func.map(|f| f.name().into_owned());
        if let (Some([src, dst]), Some(dir)) = (self.nat_addrs, self.nat_dir) {
            let l4 = self.nat_ports.map_or(L4::None, L4::Ports);
            x.nat = Some(ctnl::ExpectNat {
                dir,
                tuple: tuple_to_ctnl(&Tuple {
                    addrs: AddrPair::V4 { src, dst },
                    l4proto: self.nat_l4proto.unwrap_or(0),
                    l4,
                }),
            });
        }
        Some(x)
    }

    /// The sync message conntrackd would build for a netlink expectation (`exp2msg`).
    pub fn from_ctnl(x: &ctnl::Expect) -> crate::wire::ExpEntry {
        let (master_addrs, master_l4proto, master_ports) = exp_tuple_parts(x.master.as_ref());
        let (expect_addrs, expect_l4proto, expect_ports) = exp_tuple_parts(x.tuple.as_ref());
        let (mask_addrs, mask_l4proto, mask_ports) = exp_tuple_parts(x.mask.as_ref());
        let mut e = crate::wire::ExpEntry {
            master_addrs,
            master_l4proto,
            master_ports,
            expect_addrs,
            expect_l4proto,
            expect_ports,
            mask_addrs,
            mask_l4proto,
            mask_ports,
            timeout: x.timeout,
            flags: x.flags,
            class: x.class,
            helper: x.helper.as_deref().and_then(HelperName::new),
            func: x.func.as_deref().and_then(crate::wire::ExpFn::new),
            ..crate::wire::ExpEntry::default()
        };
        if let Some(n) = &x.nat
            && let (Some(AddrPair::V4 { src, dst }), p, ports) = exp_tuple_parts(Some(&n.tuple))
        {
            e.nat_addrs = Some([src, dst]);
            e.nat_l4proto = p;
            e.nat_ports = ports;
            e.nat_dir = Some(n.dir);
        }
        e
    }
}
