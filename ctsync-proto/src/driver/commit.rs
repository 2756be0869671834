//! Commit: the external cache into the kernel table (`conntrackd -c`), with conntrackd's rules
//! (`cache_ct_commit_step` in cache-ct.c, `nl_create_conntrack` in netlink.c):
//!
//! * the timeout is `CommitTimeout` when set; otherwise the announced timeout minus the seconds since the
//!   peer last announced the entry, and 60 s when that is negative;
//! * `IPS_EXPECTED` is cleared from the status (the kernel refuses to set it);
//! * a NATed entry is created as conntrackd's `nl_create_conntrack` creates it (the reply tuple set up
//!   with `NFCT_SOPT_SETUP_REPLY`, plus `ATTR_SNAT_*`/`ATTR_DNAT_*`): the reply tuple is the inverted
//!   original and the NAT attributes go to the kernel as `CTA_NAT_SRC`/`CTA_NAT_DST` ranges, from which
//!   the kernel sets up the NAT binding (`IPS_SRC_NAT`, `IPS_DST_NAT`) and translates the reply tuple
//!   itself. Handing it the translated reply tuple without the ranges gives an entry that the kernel
//!   never translates: the new master forwards the connection's packets untranslated;
//! * without `TCPWindowTracking`, TCP entries get `IP_CT_TCP_FLAG_BE_LIBERAL` in both directions, so the
//!   new primary accepts the stream's packets whatever their window;
//! * masters first, then related entries (those with a master tuple), so that a related entry finds its
//!   master;
//! * an entry that already exists is deleted and created once more.
//!
//! Creates go through `ctnl`'s batches; the report has one result per entry.

use super::Error;
use crate::cache::ExternalCache;
use crate::wire::{CtEntry, ExpEntry};
use std::net::IpAddr;
use std::time::Instant;

/// conntrackd's commit settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CommitOptions {
    /// `CommitTimeout`: a fixed timeout for every committed entry (seconds); `None` estimates it from
    /// the announced timeout.
    pub commit_timeout: Option<u32>,
    /// `TCPWindowTracking`: when off (the default), committed TCP entries are liberal.
    pub tcp_window_tracking: bool,
}

impl CommitOptions {
    /// conntrackd's defaults: estimated timeouts, liberal TCP.
    pub fn new() -> Self {
        CommitOptions::default()
    }
}

/// What a commit did: one result per entry, in commit order (masters, then related entries).
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct CommitReport {
    /// Entries committed.
    pub ok: usize,
    /// Entries the kernel refused, with why.
    pub failed: Vec<(CtEntry, Error)>,
}

impl CommitReport {
    /// Entries tried.
    pub fn total(&self) -> usize {
        self.ok + self.failed.len()
    }
}

/// The kernel entry conntrackd would create for a cached entry last announced at `updated`.
pub fn commit_entry(
    e: &CtEntry,
    updated: Instant,
    now: Instant,
    opts: &CommitOptions,
) -> Option<ctnl::Entry> {
    let mut k = e.to_ctnl()?;
    let timeout = match opts.commit_timeout {
        Some(t) if t > 0 => i64::from(t),
        _ => {
            let elapsed =
                i64::try_from(now.saturating_duration_since(updated).as_secs()).unwrap_or(i64::MAX);
            let t = i64::from(e.timeout.unwrap_or(0)).saturating_sub(elapsed);
            if t < 0 { 60 } else { t }
        }
    };
    // nl_create_conntrack sets the timeout only when positive.
    if timeout > 0 {
        k.timeout = Some(u32::try_from(timeout).unwrap_or(u32::MAX));
    }
    if let Some(s) = &mut k.status {
        s.remove(ctnl::Status::EXPECTED);
    }
    let snat = e.snat_ipv4.map(IpAddr::V4).or(e.snat_ipv6.map(IpAddr::V6));
    let dnat = e.dnat_ipv4.map(IpAddr::V4).or(e.dnat_ipv6.map(IpAddr::V6));
    let range = |ip: Option<IpAddr>, port: Option<u16>| {
        (ip.is_some() || port.is_some()).then_some(ctnl::NatRange {
            min_ip: ip,
            max_ip: ip,
            min_port: port,
            max_port: port,
        })
    };
    k.nat_src = range(snat, e.snat_port);
    k.nat_dst = range(dnat, e.dnat_port);
    if k.nat_src.is_some() || k.nat_dst.is_some() {
        k.reply = k.orig.as_ref().map(ctnl::Tuple::reversed);
    }
    if !opts.tcp_window_tracking && e.l4proto == Some(6) {
        let mut info = match k.protoinfo {
            Some(ctnl::ProtoInfo::Tcp(t)) => t,
            _ => ctnl::TcpInfo::default(),
        };
        let liberal = |f: Option<ctnl::TcpFlagsMasked>| {
            let f = f.unwrap_or_default();
            Some(ctnl::TcpFlagsMasked {
                flags: f.flags | ctnl::TcpFlags::BE_LIBERAL,
                mask: f.mask | ctnl::TcpFlags::BE_LIBERAL,
            })
        };
        info.flags_orig = liberal(info.flags_orig);
        info.flags_reply = liberal(info.flags_reply);
        k.protoinfo = Some(ctnl::ProtoInfo::Tcp(info));
    }
    Some(k)
}

/// Commits every entry of `cache` into the kernel through `ct`, as `conntrackd -c` does.
///
/// Each entry goes from its cached form into the batch's buffer on its own (nothing is built for the
/// whole cache first); the entries are only walked again to name the ones the kernel refused.
pub fn commit(
    ct: &mut ctnl::Conntrack,
    cache: &ExternalCache,
    now: Instant,
    opts: &CommitOptions,
) -> Result<CommitReport, Error> {
    let mut report = CommitReport::default();
    // Masters first; the related entries (rare) are kept aside for the second round.
    let mut related = Vec::new();
    let first = cache.dump().filter_map(|(_, o)| {
        let e = o.entry();
        if e.master_addrs.is_some() {
            related.push((e, o.updated));
            return None;
        }
        Some((e, o.updated))
    });
    let masters = || {
        cache.dump().filter_map(|(_, o)| {
            let e = o.entry();
            e.master_addrs.is_none().then_some((e, o.updated))
        })
    };
    commit_group(ct, first, masters, now, opts, &mut report)?;
    let again = || related.iter().copied();
    commit_group(ct, again(), again, now, opts, &mut report)?;
    Ok(report)
}

/// Creates one group's entries in a batch; an entry that exists already is deleted and created once
/// more. `again` gives the entries of `group` once more, in the same order.
fn commit_group<I: Iterator<Item = (CtEntry, Instant)>>(
    ct: &mut ctnl::Conntrack,
    group: impl Iterator<Item = (CtEntry, Instant)>,
    again: impl Fn() -> I,
    now: Instant,
    opts: &CommitOptions,
    report: &mut CommitReport,
) -> Result<(), Error> {
    let mut batch = ct.batch();
    for (e, updated) in group {
        match commit_entry(&e, updated, now, opts) {
            Some(k) => batch.create(&k)?,
            None => report
                .failed
                .push((e, Error::Config("entry without a tuple"))),
        }
    }
    let first = batch.finish()?;
    report.ok += first.ok;
    if first.failures.is_empty() {
        return Ok(());
    }
    // Walk the group again to name the refused entries (batch positions count created entries only).
    let mut retry = Vec::new();
    let mut failures = first.failures.iter().peekable();
    let created =
        again().filter_map(|(e, updated)| commit_entry(&e, updated, now, opts).map(|k| (e, k)));
    for (i, (e, k)) in created.enumerate() {
        let Some((_, err)) = failures.next_if(|(j, _)| *j == i) else {
            continue;
        };
        if matches!(err, ctnl::Error::Exists) {
            retry.push((e, k));
        } else {
            report.failed.push((e, Error::Kernel(clone_err(err))));
        }
        if failures.peek().is_none() {
            break;
        }
    }
    if retry.is_empty() {
        return Ok(());
    }
    let mut batch = ct.batch();
    for (_, k) in &retry {
        if let Some(key) = ctnl::Key::of(k) {
            batch.delete(&key)?;
        }
    }
    // A delete that finds nothing is fine (ENOENT): the create decides.
    let _ = batch.finish()?;
    let mut batch = ct.batch();
    for (_, k) in &retry {
        batch.create(k)?;
    }
    let second = batch.finish()?;
    for (i, (e, _)) in retry.iter().enumerate() {
        match second.result(i) {
            Ok(()) => report.ok += 1,
            Err(err) => report.failed.push((*e, Error::Kernel(clone_err(err)))),
        }
    }
    Ok(())
}

/// A kernel error as a fresh value (the report owns its errors).
fn clone_err(e: &ctnl::Error) -> ctnl::Error {
    match e.errno() {
        Some(errno) => ctnl::Error::from_errno(errno),
        None => ctnl::Error::Protocol("commit failed"),
    }
}

/// Commits the expectation cache (`conntrackd -c expect`): each expectation is created with its
/// announced timeout.
pub fn commit_expect(
    ct: &mut ctnl::Conntrack,
    cache: &ExternalCache<ExpEntry>,
) -> Result<CommitReport, Error> {
    let mut report = CommitReport::default();
    for (_, o) in cache.dump() {
        match o.entry().to_ctnl() {
            Some(x) => match ct.create_expect(&x) {
                Ok(()) => report.ok += 1,
                Err(e) => report.failed.push((CtEntry::default(), Error::Kernel(e))),
            },
            None => report.failed.push((
                CtEntry::default(),
                Error::Config("expectation without tuples"),
            )),
        }
    }
    Ok(report)
}
