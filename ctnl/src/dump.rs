//! Streaming dumps: conntrack entries (all, dying, unconfirmed, zero-counters), expectations and per-CPU
//! statistics, with kernel-side filters.

use crate::error::{DecodeError, EmitError, Error};
use crate::socket::CtSocket;
use crate::wire::{
    CpuStats, Entry, Expect, ExpectCpuStats, Family, L4, Msgs, NLMSG_DONE, NLMSG_ERROR,
    NLMSG_HDRLEN, NLMSG_OVERRUN, Out, Status, VecOut, cta, family_at, filter_flag,
};
use std::net::IpAddr;

/// Fields of one tuple direction to match in a dump (`CTA_FILTER`, kernel 5.8+). Unset fields match anything.
/// Port and ICMP fields need `proto` (the kernel refuses them without a protocol number). It grows with the
/// kernel's filter: start from `TupleFilter::default()` and set fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TupleFilter {
    /// Source address.
    pub src: Option<IpAddr>,
    /// Destination address.
    pub dst: Option<IpAddr>,
    /// IP protocol number.
    pub proto: Option<u8>,
    /// Source port.
    pub sport: Option<u16>,
    /// Destination port.
    pub dport: Option<u16>,
    /// ICMP/ICMPv6 type.
    pub icmp_type: Option<u8>,
    /// ICMP/ICMPv6 code.
    pub icmp_code: Option<u8>,
    /// ICMP/ICMPv6 identifier.
    pub icmp_id: Option<u16>,
}

impl TupleFilter {
    /// Matches any tuple; set fields with the `with_*` methods or directly.
    pub fn new() -> Self {
        TupleFilter::default()
    }
    /// Only this source address.
    pub fn with_src(mut self, a: IpAddr) -> Self {
        self.src = Some(a);
        self
    }
    /// Only this destination address.
    pub fn with_dst(mut self, a: IpAddr) -> Self {
        self.dst = Some(a);
        self
    }
    /// Only this IP protocol number.
    pub fn with_proto(mut self, p: u8) -> Self {
        self.proto = Some(p);
        self
    }
    /// Only this source port (needs a protocol).
    pub fn with_sport(mut self, p: u16) -> Self {
        self.sport = Some(p);
        self
    }
    /// Only this destination port (needs a protocol).
    pub fn with_dport(mut self, p: u16) -> Self {
        self.dport = Some(p);
        self
    }
    /// Only this ICMP/ICMPv6 type (needs a protocol).
    pub fn with_icmp_type(mut self, t: u8) -> Self {
        self.icmp_type = Some(t);
        self
    }
    /// Only this ICMP/ICMPv6 code (needs a protocol).
    pub fn with_icmp_code(mut self, c: u8) -> Self {
        self.icmp_code = Some(c);
        self
    }
    /// Only this ICMP/ICMPv6 identifier (needs a protocol).
    pub fn with_icmp_id(mut self, id: u16) -> Self {
        self.icmp_id = Some(id);
        self
    }

    fn is_empty(&self) -> bool {
        *self == TupleFilter::default()
    }

    fn family(&self) -> Option<Family> {
        self.src.or(self.dst).map(|a| Family::of(&a))
    }

    fn flags(&self, v6: bool) -> u32 {
        let mut f = 0;
        let mut set = |c: bool, bit: u32| {
            if c {
                f |= bit;
            }
        };
        // IPv6 addresses stay in user space; see `TupleFilter::kernel_exact` for why.
        set(self.src.is_some() && !v6, filter_flag::IP_SRC);
        set(self.dst.is_some() && !v6, filter_flag::IP_DST);
        set(self.proto.is_some(), filter_flag::PROTO_NUM);
        set(self.sport.is_some(), filter_flag::PROTO_SRC_PORT);
        set(self.dport.is_some(), filter_flag::PROTO_DST_PORT);
        let (t, c, i) = if v6 {
            (
                filter_flag::PROTO_ICMPV6_TYPE,
                filter_flag::PROTO_ICMPV6_CODE,
                filter_flag::PROTO_ICMPV6_ID,
            )
        } else {
            (
                filter_flag::PROTO_ICMP_TYPE,
                filter_flag::PROTO_ICMP_CODE,
                filter_flag::PROTO_ICMP_ID,
            )
        };
        set(self.icmp_type.is_some(), t);
        set(self.icmp_code.is_some(), c);
        set(self.icmp_id.is_some(), i);
        f
    }

    fn emit<O: Out>(&self, o: &mut O, kind: u16, v6: bool) {
        let t = o.nest_start(kind);
        if (self.src.is_some() || self.dst.is_some()) && !v6 {
            let ip = o.nest_start(cta::TUPLE_IP);
            let put = |o: &mut O, a: IpAddr, k4: u16, k6: u16| match a {
                IpAddr::V4(a) => o.attr(k4, &a.octets()),
                IpAddr::V6(a) => o.attr(k6, &a.octets()),
            };
            if let Some(a) = self.src {
                put(o, a, cta::IP_V4_SRC, cta::IP_V6_SRC);
            }
            if let Some(a) = self.dst {
                put(o, a, cta::IP_V4_DST, cta::IP_V6_DST);
            }
            o.nest_end(ip);
        }
        if let Some(p) = self.proto {
            let n = o.nest_start(cta::TUPLE_PROTO);
            o.u8(cta::PROTO_NUM, p);
            if let Some(v) = self.sport {
                o.u16_be(cta::PROTO_SRC_PORT, v);
            }
            if let Some(v) = self.dport {
                o.u16_be(cta::PROTO_DST_PORT, v);
            }
            let (ki, kt, kc) = if v6 {
                (
                    cta::PROTO_ICMPV6_ID,
                    cta::PROTO_ICMPV6_TYPE,
                    cta::PROTO_ICMPV6_CODE,
                )
            } else {
                (
                    cta::PROTO_ICMP_ID,
                    cta::PROTO_ICMP_TYPE,
                    cta::PROTO_ICMP_CODE,
                )
            };
            if let Some(v) = self.icmp_id {
                o.u16_be(ki, v);
            }
            if let Some(v) = self.icmp_type {
                o.u8(kt, v);
            }
            if let Some(v) = self.icmp_code {
                o.u8(kc, v);
            }
            o.nest_end(n);
        }
        o.nest_end(t);
    }

    /// True when the kernel's `CTA_FILTER` match (`ctnetlink_filter_match_tuple` in
    /// `net/netfilter/nf_conntrack_netlink.c`) selects exactly what [`TupleFilter::matches`] selects, for
    /// nfgenmsg family `family`. Read in torvalds/linux (the code is the same from its introduction in 5.8
    /// through the 6.x releases):
    ///
    /// - IPv6 addresses: the `NFPROTO_IPV6` case rejects an entry when
    ///   `!ipv6_addr_cmp(&filter_tuple->src.u3.in6, &ct_tuple->src.u3.in6)`. `ipv6_addr_cmp` is a
    ///   `memcmp` (0 when equal), so the entry is skipped when its address *equals* the filter's and kept
    ///   when it differs: the opposite of the IPv4 case (`filter != ct` → skip). Checked on 6.18: a
    ///   kernel-side flush of ten IPv6 entries with `CTA_IP_SRC` = one of their sources deleted the nine
    ///   others and kept that one. IPv6 addresses are therefore never sent: they are matched
    ///   in user space after the copy (and a flush with one is a dump plus batched delete).
    /// - Ports are compared only in the `IPPROTO_TCP`/`IPPROTO_UDP` case of the switch on the entry's
    ///   protocol; for SCTP, DCCP, UDP-Lite or GRE the port flags are accepted and then ignored, so a
    ///   kernel-side flush would delete every entry of that protocol. Ports are exact only with protocol
    ///   6 or 17.
    /// - ICMP type/code/id are compared only for `IPPROTO_ICMP` (the `CTA_FILTER_FLAG(CTA_PROTO_ICMP_*)`
    ///   bits) and ICMPv6 fields only for `IPPROTO_ICMPV6`, so they are exact only with protocol 1 in
    ///   `AF_INET` or 58 in `AF_INET6`.
    /// - `ctnetlink_parse_tuple_filter` answers `EOPNOTSUPP` unless the family is `NFPROTO_IPV4` or
    ///   `NFPROTO_IPV6`: tuple fields need a family (`None` here is never exact).
    pub fn kernel_exact(&self, family: Option<Family>) -> bool {
        if self.is_empty() {
            return true;
        }
        let v6 = match family {
            Some(Family::Ipv4) => false,
            Some(Family::Ipv6) => true,
            None => return false,
        };
        let ports = self.sport.is_some() || self.dport.is_some();
        let icmp = self.icmp_type.is_some() || self.icmp_code.is_some() || self.icmp_id.is_some();
        let icmp_proto = if v6 { 58 } else { 1 };
        !(v6 && (self.src.is_some() || self.dst.is_some()))
            && (!ports || matches!(self.proto, Some(6 | 17)))
            && (!icmp || self.proto == Some(icmp_proto))
    }

    /// True when `t` has every field this filter sets.
    pub fn matches(&self, t: &crate::wire::Tuple) -> bool {
        let (sport, dport, it, ic, ii) = match t.l4 {
            L4::Ports { src, dst } => (Some(src), Some(dst), None, None, None),
            L4::Icmp { id, kind, code } | L4::Icmpv6 { id, kind, code } => {
                (None, None, Some(kind), Some(code), Some(id))
            }
            _ => (None, None, None, None, None),
        };
        fn ok<T: PartialEq>(want: Option<T>, have: Option<T>) -> bool {
            want.is_none() || want == have
        }
        ok(self.src, Some(t.src))
            && ok(self.dst, Some(t.dst))
            && ok(self.proto, Some(t.proto))
            && ok(self.sport, sport)
            && ok(self.dport, dport)
            && ok(self.icmp_type, it)
            && ok(self.icmp_code, ic)
            && ok(self.icmp_id, ii)
    }
}

/// What a dump (or a filtered flush) selects. The default selects everything.
///
/// Family, mark and status filters run in the kernel on every 6.x kernel; tuple filters use `CTA_FILTER`
/// (kernel 5.8+) when the family is known (given, or implied by an address), except IPv6 addresses (see
/// [`TupleFilter::kernel_exact`] for what the kernel's match gets wrong).
/// Every entry is also checked against the whole filter in user space, so whatever the kernel does not
/// filter (zones on kernels that ignore them, IPv6 addresses, tuple fields without a family) is still
/// filtered, just after the copy.
///
/// It grows with the kernel's filters: start from [`DumpFilter::all`] and set fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DumpFilter {
    /// Address family.
    pub family: Option<Family>,
    /// `(value, mask)`: entries whose `mark & mask == value & mask`.
    pub mark: Option<(u32, u32)>,
    /// `(value, mask)`: entries whose `status & mask == value & mask`.
    pub status: Option<(Status, Status)>,
    /// Conntrack zone (`CTA_ZONE` with `CTA_FILTER`; kernels before the zone-filter fix ignore it in dumps,
    /// and the user-space check still applies).
    pub zone: Option<u16>,
    /// Original-direction tuple fields.
    pub orig: Option<TupleFilter>,
    /// Reply-direction tuple fields.
    pub reply: Option<TupleFilter>,
}

impl DumpFilter {
    /// Everything.
    pub fn all() -> Self {
        DumpFilter::default()
    }

    /// Only one family.
    pub fn family(family: Family) -> Self {
        DumpFilter {
            family: Some(family),
            ..DumpFilter::default()
        }
    }

    /// Also only this family.
    pub fn with_family(mut self, family: Family) -> Self {
        self.family = Some(family);
        self
    }
    /// Also only entries whose `mark & mask == value & mask`.
    pub fn with_mark(mut self, value: u32, mask: u32) -> Self {
        self.mark = Some((value, mask));
        self
    }
    /// Also only entries whose `status & mask == value & mask`.
    pub fn with_status(mut self, value: Status, mask: Status) -> Self {
        self.status = Some((value, mask));
        self
    }
    /// Also only this zone.
    pub fn with_zone(mut self, zone: u16) -> Self {
        self.zone = Some(zone);
        self
    }
    /// Also only entries whose original tuple matches.
    pub fn with_orig(mut self, t: TupleFilter) -> Self {
        self.orig = Some(t);
        self
    }
    /// Also only entries whose reply tuple matches.
    pub fn with_reply(mut self, t: TupleFilter) -> Self {
        self.reply = Some(t);
        self
    }

    /// True when nothing is filtered.
    pub fn is_empty(&self) -> bool {
        *self == DumpFilter::default()
    }

    /// True when the filter needs `CTA_FILTER` (zone or tuple fields), which a kernel-side flush cannot use.
    pub fn needs_cta_filter(&self) -> bool {
        self.zone.is_some()
            || self.orig.as_ref().is_some_and(|t| !t.is_empty())
            || self.reply.as_ref().is_some_and(|t| !t.is_empty())
    }

    /// True when the kernel can apply this whole filter itself, so that a kernel-side flush deletes
    /// exactly what a dump with this filter returns: tuple fields only with a known family and only where
    /// the kernel's match is exact ([`TupleFilter::kernel_exact`]: no IPv6 addresses, ports only for TCP
    /// and UDP, ICMP fields only for ICMP/ICMPv6).
    pub fn kernel_exact(&self) -> bool {
        let family = self.effective_family();
        [&self.orig, &self.reply]
            .into_iter()
            .flatten()
            .all(|t| t.kernel_exact(family))
    }

    /// True when some tuple field is set.
    pub fn has_tuple_fields(&self) -> bool {
        [&self.orig, &self.reply]
            .into_iter()
            .flatten()
            .any(|t| !t.is_empty())
    }

    /// The family this filter implies: the one given, or the one of an address; `None` for any.
    pub fn effective_family(&self) -> Option<Family> {
        self.family
            .or_else(|| self.orig.as_ref().and_then(TupleFilter::family))
            .or_else(|| self.reply.as_ref().and_then(TupleFilter::family))
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        for t in [&self.orig, &self.reply].into_iter().flatten() {
            let l4 = t.sport.is_some()
                || t.dport.is_some()
                || t.icmp_type.is_some()
                || t.icmp_code.is_some()
                || t.icmp_id.is_some();
            if l4 && t.proto.is_none() {
                return Err(Error::Emit(EmitError::Invalid {
                    what: "tuple filter",
                    reason: "port or ICMP fields need a protocol",
                }));
            }
        }
        Ok(())
    }

    /// Writes the filter attributes (mark, status and, when needed, `CTA_FILTER` with its tuples and zone).
    pub(crate) fn emit<O: Out>(&self, o: &mut O, with_cta_filter: bool) {
        let family = self.effective_family();
        let v6 = family == Some(Family::Ipv6);
        if let Some((v, m)) = self.mark {
            // The kernel compares `mark & mask` with the value as given: mask the value here.
            o.u32_be(cta::MARK, v & m);
            o.u32_be(cta::MARK_MASK, m);
        }
        if let Some((v, m)) = self.status.filter(|(_, m)| !m.is_empty()) {
            // A zero mask matches everything, and the kernel refuses it: it is simply not sent.
            o.u32_be(cta::STATUS, (v & m).bits());
            o.u32_be(cta::STATUS_MASK, m.bits());
        }
        if with_cta_filter && self.needs_cta_filter() {
            // Tuple fields need the family in nfgenmsg (the kernel parses addresses by it); without one
            // they are matched in user space only.
            let known = family.is_some();
            let flags = |t: &Option<TupleFilter>| match t {
                Some(t) if known => t.flags(v6),
                _ => 0,
            };
            let (of, rf) = (flags(&self.orig), flags(&self.reply));
            if of == 0 && rf == 0 && self.zone.is_none() {
                return;
            }
            let n = o.nest_start(cta::FILTER);
            // CTA_FILTER_*_FLAGS are host-endian u32 (nla_get_u32).
            o.attr(cta::FILTER_ORIG_FLAGS, &of.to_ne_bytes());
            o.attr(cta::FILTER_REPLY_FLAGS, &rf.to_ne_bytes());
            o.nest_end(n);
            if let Some(z) = self.zone {
                o.u16_be(cta::ZONE, z);
            }
            if let Some(t) = self.orig.as_ref().filter(|_| of != 0) {
                t.emit(o, cta::TUPLE_ORIG, v6);
            }
            if let Some(t) = self.reply.as_ref().filter(|_| rf != 0) {
                t.emit(o, cta::TUPLE_REPLY, v6);
            }
        }
    }

    /// True when `e` passes this filter (the user-space check; absent fields in `e` fail a set filter field).
    pub fn matches(&self, e: &Entry) -> bool {
        if self.family.is_some_and(|f| e.family != f) {
            return false;
        }
        if self
            .mark
            .is_some_and(|(v, m)| e.mark.unwrap_or(0) & m != v & m)
        {
            return false;
        }
        if self
            .status
            .is_some_and(|(v, m)| e.status.unwrap_or_default() & m != v & m)
        {
            return false;
        }
        if self.zone.is_some_and(|z| e.zone.unwrap_or(0) != z) {
            return false;
        }
        for (f, t) in [(&self.orig, &e.orig), (&self.reply, &e.reply)] {
            if let Some(f) = f {
                match t {
                    Some(t) if f.matches(t) => {}
                    None if f.is_empty() => {}
                    _ => return false,
                }
            }
        }
        true
    }
}

/// Something a dump yields: [`Entry`], [`Expect`], [`CpuStats`] or [`ExpectCpuStats`]. Sealed: the crate
/// decodes these from the kernel's messages itself.
pub trait DumpItem: Sized + sealed::Decode {}

impl<T: sealed::Decode> DumpItem for T {}

mod sealed {
    use super::*;

    /// How each dumped item is decoded from one message.
    pub trait Decode: Sized {
        /// The nfnetlink subsystem whose messages carry this item.
        const SUBSYS: u8;
        /// Decodes one message: `family` and `res_id` from nfgenmsg, `attrs` after it.
        fn decode(family: u8, res_id: u16, attrs: &[u8]) -> Result<Self, DecodeError>;
        /// Decodes into `slot`, so that a large item is built where it will be returned instead of
        /// being moved through `Result`s.
        fn decode_in_place(
            slot: &mut Option<Self>,
            family: u8,
            res_id: u16,
            attrs: &[u8],
        ) -> Result<(), DecodeError> {
            *slot = Some(Self::decode(family, res_id, attrs)?);
            Ok(())
        }
        /// The user-space filter check (only entries are filtered).
        fn passes(&self, _filter: &DumpFilter) -> bool {
            true
        }
    }

    impl Decode for Entry {
        const SUBSYS: u8 = crate::wire::NFNL_SUBSYS_CTNETLINK;
        #[inline]
        fn decode(family: u8, _res_id: u16, attrs: &[u8]) -> Result<Self, DecodeError> {
            Entry::parse_attrs(family_at(family, NLMSG_HDRLEN)?, attrs)
        }
        #[inline]
        fn decode_in_place(
            slot: &mut Option<Self>,
            family: u8,
            _res_id: u16,
            attrs: &[u8],
        ) -> Result<(), DecodeError> {
            let e = slot.insert(Entry {
                family: family_at(family, NLMSG_HDRLEN)?,
                ..Entry::default()
            });
            e.merge_attrs(attrs, 0)
        }
        fn passes(&self, filter: &DumpFilter) -> bool {
            filter.matches(self)
        }
    }

    impl Decode for Expect {
        const SUBSYS: u8 = crate::wire::NFNL_SUBSYS_CTNETLINK_EXP;
        fn decode(family: u8, _res_id: u16, attrs: &[u8]) -> Result<Self, DecodeError> {
            Expect::parse_attrs(family_at(family, NLMSG_HDRLEN)?, attrs)
        }
    }

    impl Decode for CpuStats {
        const SUBSYS: u8 = crate::wire::NFNL_SUBSYS_CTNETLINK;
        fn decode(_family: u8, res_id: u16, attrs: &[u8]) -> Result<Self, DecodeError> {
            CpuStats::parse_attrs(res_id, attrs)
        }
    }

    impl Decode for ExpectCpuStats {
        // Asked on the expectation subsystem, answered on the conntrack one (`ctnetlink_exp_stat_fill_info`
        // builds its messages with NFNL_SUBSYS_CTNETLINK).
        const SUBSYS: u8 = crate::wire::NFNL_SUBSYS_CTNETLINK;
        fn decode(_family: u8, res_id: u16, attrs: &[u8]) -> Result<Self, DecodeError> {
            ExpectCpuStats::parse_attrs(res_id, attrs)
        }
    }
}

/// A running dump: an iterator that reads the kernel's answer one datagram at a time into the socket's
/// reusable buffer and decodes one item per `next()`. Memory does not grow with the table.
///
/// A decode error for one message is yielded as `Err` and the iteration goes on with the next message; a
/// socket or kernel error ends it. Dropping a dump before its end reads and discards the rest, so the
/// socket is clean for the next request.
#[derive(Debug)]
pub struct Dump<'a, T: DumpItem = Entry> {
    sock: &'a mut CtSocket,
    seq: u32,
    pos: usize,
    done: bool,
    filter: Option<DumpFilter>,
    _item: std::marker::PhantomData<fn() -> T>,
}

impl<'a, T: DumpItem> Dump<'a, T> {
    /// Sends `req` (a dump request with sequence `seq`) and returns the iterator over its answer.
    pub(crate) fn start(
        sock: &'a mut CtSocket,
        req: &[u8],
        seq: u32,
        filter: Option<DumpFilter>,
    ) -> Result<Self, Error> {
        sock.send(req)?;
        let len = sock.received().len();
        Ok(Dump {
            sock,
            seq,
            pos: len,
            done: false,
            filter,
            _item: std::marker::PhantomData,
        })
    }

    /// Advances to the next item message of this dump and hands it to `decode`.
    #[inline]
    fn step_with<R>(
        &mut self,
        mut decode: impl FnMut(u8, u16, &[u8]) -> Result<R, DecodeError>,
    ) -> Option<Result<R, Error>> {
        loop {
            if self.done {
                return None;
            }
            if self.pos >= self.sock.received().len() {
                match self.sock.recv() {
                    Ok(Some(_)) => self.pos = 0,
                    Ok(None) => {
                        self.done = true;
                        return Some(Err(Error::Io(std::io::ErrorKind::TimedOut.into())));
                    }
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
            }
            let buf = self.sock.received();
            let Some(rest) = buf.get(self.pos..) else {
                self.pos = buf.len();
                continue;
            };
            let mut it = Msgs::new(rest);
            let m = match it.next() {
                None => {
                    self.pos = buf.len();
                    continue;
                }
                Some(Err(e)) => {
                    // A broken datagram: skip the rest of it.
                    self.pos = buf.len();
                    return Some(Err(e.into()));
                }
                Some(Ok(m)) => m,
            };
            self.pos += it.position();
            if m.seq != self.seq {
                continue;
            }
            match m.kind {
                NLMSG_DONE => {
                    self.done = true;
                    let code = m.error_code().unwrap_or(0);
                    if code < 0 {
                        return Some(Err(Error::from_nl_code(code)));
                    }
                    return None;
                }
                NLMSG_ERROR => {
                    self.done = true;
                    match m.error_code() {
                        Ok(0) => return None,
                        Ok(c) => return Some(Err(Error::from_nl_code(c))),
                        Err(e) => return Some(Err(e.into())),
                    }
                }
                NLMSG_OVERRUN => {
                    self.done = true;
                    return Some(Err(Error::Overrun));
                }
                _ if m.subsys() == T::SUBSYS => {
                    return Some(
                        m.nfgen()
                            .and_then(|(family, _, res_id, attrs)| decode(family, res_id, attrs))
                            .map_err(Error::from),
                    );
                }
                _ => continue,
            }
        }
    }
}

impl<T: DumpItem> Dump<'_, T> {
    /// Appends the item messages of the datagram being read (receiving the next one first when needed) to
    /// `out`, undecoded, so that they can be decoded elsewhere, typically on another thread while this one
    /// waits for the kernel's next datagram. Call it again to gather several datagrams into one `out`
    /// (fewer hand-overs between threads). Returns `None` at the end of the dump, when nothing was added.
    ///
    /// The kernel has applied what it can of the dump's filter to these items, but not the rest: check each
    /// decoded entry against [`Dump::user_filter`].
    pub fn next_raw(&mut self, out: &mut RawItems) -> Option<Result<(), Error>> {
        let before = out.len();
        loop {
            let copied = self.step_with(|family, res_id, attrs| {
                out.push(family, res_id, attrs);
                Ok(())
            });
            match copied {
                None if out.len() == before => return None,
                None => return Some(Ok(())),
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(())) if self.pos >= self.sock.received().len() => return Some(Ok(())),
                Some(Ok(())) => {}
            }
        }
    }

    /// The filter to check in user space on what [`Dump::next_raw`] returns, `None` for an unfiltered dump.
    /// The kernel has already applied what it can of it, so checking it again only removes what the kernel
    /// could not filter. The iterator and [`Dump::next_into`] check it themselves.
    pub fn user_filter(&self) -> Option<&DumpFilter> {
        self.filter.as_ref()
    }
}

/// Undecoded item messages of a dump, as [`Dump::next_raw`] copies them: the nfgenmsg family, the resource
/// id and the attributes of each, back to back.
#[derive(Debug, Default, Clone)]
pub struct RawItems {
    buf: Vec<u8>,
    count: usize,
}

/// One undecoded item of [`RawItems`].
#[derive(Debug, Clone, Copy)]
pub struct RawItem<'a> {
    family: u8,
    res_id: u16,
    attrs: &'a [u8],
}

impl RawItem<'_> {
    /// Decodes the item into `entry`, reusing its storage (see [`Dump::next_into`]).
    pub fn decode_into(&self, entry: &mut Entry) -> Result<(), Error> {
        let family = family_at(self.family, NLMSG_HDRLEN)?;
        entry.reparse(family, self.attrs).map_err(Error::from)
    }

    /// Decodes the item.
    pub fn decode<T: DumpItem>(&self) -> Result<T, Error> {
        T::decode(self.family, self.res_id, self.attrs).map_err(Error::from)
    }
}

/// Bytes before each item's attributes in [`RawItems`]: length (u32), family (u8), pad (u8), res_id (u16).
const RAW_HEAD: usize = 8;

impl RawItems {
    /// An empty set.
    pub fn new() -> Self {
        RawItems::default()
    }

    /// An empty set with room for `bytes`.
    pub fn with_capacity(bytes: usize) -> Self {
        RawItems {
            buf: Vec::with_capacity(bytes),
            count: 0,
        }
    }

    fn push(&mut self, family: u8, res_id: u16, attrs: &[u8]) {
        self.buf
            .extend_from_slice(&(attrs.len() as u32).to_ne_bytes());
        self.buf.push(family);
        self.buf.push(0);
        self.buf.extend_from_slice(&res_id.to_ne_bytes());
        self.buf.extend_from_slice(attrs);
        self.count += 1;
    }

    /// Items held.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Forgets every item, keeping the memory.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.count = 0;
    }

    /// Bytes held (attributes plus 8 bytes per item).
    pub fn encoded_len(&self) -> usize {
        self.buf.len()
    }

    /// The items, in the kernel's order.
    pub fn iter(&self) -> impl Iterator<Item = RawItem<'_>> + '_ {
        let mut rest = self.buf.as_slice();
        std::iter::from_fn(move || {
            let head = rest.get(..RAW_HEAD)?;
            let len = u32::from_ne_bytes([head[0], head[1], head[2], head[3]]) as usize;
            let item = RawItem {
                family: head[4],
                res_id: u16::from_ne_bytes([head[6], head[7]]),
                attrs: rest.get(RAW_HEAD..RAW_HEAD + len)?,
            };
            rest = &rest[RAW_HEAD + len..];
            Some(item)
        })
    }
}

impl Dump<'_, Entry> {
    /// Lending variant of `next()`: decodes the next entry into `entry`, reusing its storage (a decoded
    /// entry is about 700 bytes; this avoids moving it through the iterator machinery). Returns `None` at
    /// the end of the dump, `Some(Ok(()))` when `entry` holds the next entry.
    pub fn next_into(&mut self, entry: &mut Entry) -> Option<Result<(), Error>> {
        loop {
            let r = self.step_with(|family, _res_id, attrs| {
                entry.reparse(family_at(family, NLMSG_HDRLEN)?, attrs)
            })?;
            if let (Some(f), Ok(())) = (&self.filter, &r)
                && !f.matches(entry)
            {
                continue;
            }
            return Some(r);
        }
    }
}

impl<T: DumpItem> Iterator for Dump<'_, T> {
    type Item = Result<T, Error>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let mut slot: Option<T> = None;
        loop {
            match self.step_with(|family, res_id, attrs| {
                T::decode_in_place(&mut slot, family, res_id, attrs)
            })? {
                Err(e) => return Some(Err(e)),
                Ok(()) => {
                    let item = slot.take()?;
                    if let Some(f) = &self.filter
                        && !item.passes(f)
                    {
                        continue;
                    }
                    return Some(Ok(item));
                }
            }
        }
    }
}

impl<T: DumpItem> Drop for Dump<'_, T> {
    fn drop(&mut self) {
        // Read what the kernel still has for this dump so the next request starts clean.
        while !self.done {
            if self.pos >= self.sock.received().len() {
                match self.sock.recv() {
                    Ok(Some(_)) => self.pos = 0,
                    _ => return,
                }
            }
            let buf = self.sock.received();
            for m in Msgs::new(buf.get(self.pos..).unwrap_or_default()) {
                match m {
                    Ok(m)
                        if m.seq == self.seq
                            && matches!(m.kind, NLMSG_DONE | NLMSG_ERROR | NLMSG_OVERRUN) =>
                    {
                        self.done = true;
                        break;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            self.pos = buf.len();
        }
    }
}

/// Builds a dump request into `buf`: message type, flags `NLM_F_REQUEST | NLM_F_DUMP`, the filter.
pub(crate) fn dump_request(
    buf: &mut Vec<u8>,
    subsys: u8,
    msg: u8,
    seq: u32,
    filter: &DumpFilter,
) -> Result<(), Error> {
    filter.check()?;
    buf.clear();
    let flags = netlink_packet_core::NLM_F_REQUEST | netlink_packet_core::NLM_F_DUMP;
    let family = filter.effective_family().map_or(0, Family::to_af);
    let start = crate::wire::start_msg(buf, subsys, msg, flags, seq, family, 0);
    let mut o = VecOut::new(buf);
    filter.emit(&mut o, true);
    if o.overflowed() {
        return Err(Error::Emit(EmitError::TooLong {
            what: "dump filter",
        }));
    }
    crate::wire::finish_msg(buf, start);
    Ok(())
}
