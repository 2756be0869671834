//! What the client commands print: conntrackd 1.4.7's texts (`cache.c`, `sync-mode.c`, `run.c`,
//! `udp.c`/`mcast.c`, `sync-ftfw.c`), field for field, and their JSON forms (`-o json`).

use ctsync_proto::cache::CacheStats;
use ctsync_proto::driver::{Driver, Link};
use ctsync_proto::session::ResendNode;
use ctsync_proto::{CtEntry, SyncMode};
use serde_json::json;
use std::fmt::Write;
use std::time::Instant;

/// Daemon-level counters `-s runtime` shows besides the driver's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Runtime {
    /// When the daemon started (seconds since the epoch).
    pub start: i64,
    /// Control requests that could not be read.
    pub local_read_failed: u64,
    /// Control requests not understood.
    pub local_unknown_request: u64,
    /// `poll` failures.
    pub select_failed: u64,
}

/// `cache_stats`: the short form `-s` shows.
pub fn cache_short(name: &str, s: &CacheStats) -> String {
    format!(
        "cache {name}:\ncurrent active connections:\t{:12}\nconnections created:\t\t{:12}\tfailed:\t{:12}\nconnections updated:\t\t{:12}\tfailed:\t{:12}\nconnections destroyed:\t\t{:12}\tfailed:\t{:12}\n\n",
        s.active as u32,
        s.created as u32,
        s.create_failed as u32,
        s.updated as u32,
        0u32,
        s.deleted as u32,
        0u32
    )
}

/// `cache_stats_extended`: `-s cache`.
pub fn cache_long(name: &str, s: &CacheStats) -> String {
    format!(
        "cache:{name}\tactive objects:\t\t{:12}\n\tactive/total entries:\t\t{:12}/{:12}\n\tcreation OK/failed:\t\t{:12}/{:12}\n\t\tno memory available:\t{:12}\n\t\tno space left in cache:\t{:12}\n\tupdate OK/failed:\t\t{:12}/{:12}\n\t\tentry not found:\t{:12}\n\tdeletion created/failed:\t{:12}/{:12}\n\t\tentry not found:\t{:12}\n\n",
        s.objects as u32,
        s.active as u32,
        s.objects as u32,
        s.created as u32,
        s.create_failed as u32,
        0u32,
        s.create_failed as u32,
        s.updated as u32,
        0u32,
        0u32,
        s.deleted as u32,
        0u32,
        0u32
    )
}

fn ifname(index: u32) -> String {
    if index == 0 {
        return String::new();
    }
    std::fs::read_dir("/sys/class/net")
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .find(|e| {
            std::fs::read_to_string(e.path().join("ifindex"))
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
                == Some(index)
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn link_info(d: &Driver) -> (&'static str, String, u32) {
    match &d.config().channel.link {
        Link::Multicast { ifindex, .. } => ("multicast", ifname(*ifindex), *ifindex),
        Link::Udp { ifindex, .. } => ("UDP", ifname(*ifindex), *ifindex),
        _ => ("UDP", String::new(), 0),
    }
}

/// `udp_snprintf_stats` / `mcast_snprintf_stats`.
pub fn link_short(d: &Driver) -> String {
    let (kind, name, _) = link_info(d);
    let l = d.channel().stats();
    format!(
        "{kind} traffic (active device={name}):\n{:20} Bytes sent {:20} Bytes recv\n{:20} Pckts sent {:20} Pckts recv\n{:20} Error send {:20} Error recv\n\n",
        l.bytes_sent, l.bytes_recv, l.msgs_sent, l.msgs_recv, l.send_errors, l.recv_errors
    )
}

/// `udp_snprintf_stats2` / `mcast_snprintf_stats2`: `-s link`.
pub fn link_long(d: &Driver) -> String {
    let (kind, name, idx) = link_info(d);
    let flags = std::fs::read_to_string(format!("/sys/class/net/{name}/flags"))
        .ok()
        .and_then(|s| u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok())
        .unwrap_or(0);
    // IFF_UP shows the administrative status, IFF_RUNNING the carrier (sysfs keeps the latter apart).
    let carrier = std::fs::read_to_string(format!("/sys/class/net/{name}/carrier"))
        .is_ok_and(|c| c.trim() == "1");
    let status = if idx == 0 || flags & 0x1 == 0 {
        "DOWN"
    } else if !carrier {
        "NO-CARRIER"
    } else {
        "RUNNING"
    };
    let l = d.channel().stats();
    format!(
        "{kind} traffic device={name} status={status} role=ACTIVE:\n{:20} Bytes sent {:20} Bytes recv\n{:20} Pckts sent {:20} Pckts recv\n{:20} Error send {:20} Error recv\n\n",
        l.bytes_sent, l.bytes_recv, l.msgs_sent, l.msgs_recv, l.send_errors, l.recv_errors
    )
}

/// `dump_traffic_stats`.
pub fn traffic(d: &Driver) -> String {
    let s = d.stats();
    format!(
        "traffic processed:\n{:20} Bytes      {:20} Pckts\n\n",
        s.bytes, s.packets
    )
}

/// `dump_stats_sync`.
pub fn sync_short(d: &Driver) -> String {
    let s = d.session().stats();
    format!(
        "message tracking:\n{:20} Malformed msgs {:20} Lost msgs\n\n",
        s.malformed, s.lost
    )
}

/// `dump_stats_sync_extended`: `-s network`.
pub fn sync_long(d: &Driver) -> String {
    let s = d.session().stats();
    format!(
        "network statistics:\n\trecv:\n\t\tMalformed messages:\t{:20}\n\t\tWrong protocol version:\t{:20}\n\t\tMalformed header:\t{:20}\n\t\tMalformed payload:\t{:20}\n\t\tBad message type:\t{:20}\n\t\tTruncated message:\t{:20}\n\t\tBad message size:\t{:20}\n\tsend:\n\t\tMalformed messages:\t{:20}\n\nsequence tracking statistics:\n\trecv:\n\t\tPackets lost:\t\t{:20}\n\t\tPackets before:\t\t{:20}\n\n",
        s.malformed + s.bad,
        s.bad_version,
        s.bad,
        s.bad_payload,
        s.bad_type,
        s.truncated,
        s.bad_size,
        s.oversize,
        s.lost,
        s.before
    )
}

/// `dump_stats_runtime`: `-s runtime`.
pub fn runtime(d: &Driver, r: &Runtime, now_secs: i64) -> String {
    let up = (now_secs - r.start).max(0);
    let days = up / 86_400;
    let mut upt = String::new();
    if days > 0 {
        let _ = write!(upt, "{days} day{} ", if days != 1 { "s" } else { "" });
    }
    let mins = up / 60;
    let hours = (mins / 60) % 24;
    let mins = mins % 60;
    if hours > 0 {
        let _ = write!(upt, "{hours} h {mins} min");
    } else {
        let _ = write!(upt, "{mins} min");
    }
    let s = d.stats();
    format!(
        "daemon uptime: {upt}\n\nnetlink stats:\n\tevents received:\t{:20}\n\tevents filtered:\t{:20}\n\tevents unknown type:\t\t{:12}\n\tcatch event failed:\t\t{:12}\n\tdump unknown type:\t\t{:12}\n\tnetlink overrun:\t\t{:12}\n\tflush kernel table:\t\t{:12}\n\tresync with kernel table:\t{:12}\n\tcurrent buffer size (in bytes):\t{:12}\n\nruntime stats:\n\tchild process failed:\t\t{:12}\n\t\tchild process segfault:\t{:12}\n\t\tchild process termsig:\t{:12}\n\tselect failed:\t\t\t{:12}\n\twait failed:\t\t\t{:12}\n\tlocal read failed:\t\t{:12}\n\tlocal unknown request:\t\t{:12}\n\n",
        s.events_received,
        s.events_filtered,
        s.events_unknown as u32,
        (s.catch_failed + s.overruns) as u32,
        0u32,
        s.overruns as u32,
        s.kernel_flushes as u32,
        s.kernel_resyncs as u32,
        s.event_buffer as u32,
        0u32,
        0u32,
        0u32,
        r.select_failed as u32,
        0u32,
        r.local_read_failed as u32,
        r.local_unknown_request as u32
    )
}

/// `ftfw_local_queue`: `-s rsqueue` (FT-FW only; nothing in the other modes).
pub fn rsqueue(d: &Driver) -> String {
    if d.session().mode() != SyncMode::Ftfw {
        return String::new();
    }
    let q = d.session().resend_queue();
    let mut s = format!("resent queue (len={})\n", q.len());
    for n in q {
        match n {
            ResendNode::Control { seq, flags } => {
                let _ = writeln!(s, "control -> seq:{seq} flags:{}", flags.bits());
            }
            ResendNode::Object { seq } => {
                let _ = writeln!(s, "object -> seq:{seq}");
            }
            _ => {}
        }
    }
    s
}

/// `queue_stats_show`: `-s queue` (conntrackd lists its queues newest first: txqueue, then FT-FW's
/// rsqueue; "allocated queue nodes" counts the control messages held).
pub fn queues(d: &Driver) -> String {
    let rsq = d.session().resend_queue();
    let ctl = rsq
        .iter()
        .filter(|n| matches!(n, ResendNode::Control { .. }))
        .count();
    let mut s = format!("allocated queue nodes:\t\t{ctl:12}\n\n");
    let q = |s: &mut String, name: &str, cur: usize, max: usize, enospc: u64| {
        let _ = write!(
            s,
            "queue {name}:\ncurrent elements:\t\t{cur:12}\nmaximum elements:\t\t{max:12}\nnot enough space errors:\t{enospc:12}\n\n"
        );
    };
    q(
        &mut s,
        "txqueue",
        d.session().tx_queue_len(),
        i32::MAX as usize,
        0,
    );
    if d.session().mode() == SyncMode::Ftfw {
        let max = match d.config().session {
            ctsync_proto::SessionConfig::Ftfw(c) => c.resend_queue_size,
            _ => 0,
        };
        q(
            &mut s,
            "rsqueue",
            rsq.len(),
            max,
            d.session().stats().rs_evicted,
        );
    }
    s
}

/// `-s` / `-s ct`.
pub fn general(d: &Driver) -> String {
    let mut s = cache_short("internal", &d.session().internal().stats());
    s += &cache_short("external", &d.session().external().stats());
    s += &traffic(d);
    s += &link_short(d);
    s += &sync_short(d);
    s
}

/// `-s expect`.
pub fn general_expect(d: &Driver) -> String {
    if !d.config().expectations {
        return String::new();
    }
    let mut s = cache_short("internal", &d.session().internal_exp().stats());
    s += &cache_short("external", &d.session().external_exp().stats());
    s += &traffic(d);
    s += &link_short(d);
    s += &sync_short(d);
    s
}

/// Every counter as one JSON object (`-s -o json`, whatever the kind).
pub fn stats_json(d: &Driver, r: &Runtime, now_secs: i64) -> String {
    let cache = |c: CacheStats| {
        json!({"active": c.active, "objects": c.objects, "created": c.created,
               "create_failed": c.create_failed, "updated": c.updated, "deleted": c.deleted,
               "expired": c.expired, "flushes": c.flushes})
    };
    let st = d.session().stats();
    let ds = d.stats();
    let l = d.channel().stats();
    let v = json!({
        "mode": d.session().mode().name(),
        "uptime_secs": (now_secs - r.start).max(0),
        "cache_internal": cache(d.session().internal().stats()),
        "cache_external": cache(d.session().external().stats()),
        "cache_internal_expect": cache(d.session().internal_exp().stats()),
        "cache_external_expect": cache(d.session().external_exp().stats()),
        "traffic": {"bytes": ds.bytes, "packets": ds.packets},
        "link": {"bytes_sent": l.bytes_sent, "bytes_recv": l.bytes_recv, "msgs_sent": l.msgs_sent,
                 "msgs_recv": l.msgs_recv, "send_errors": l.send_errors, "recv_errors": l.recv_errors},
        "network": {"msg_sent": st.msg_sent, "datagrams_sent": st.datagrams_sent, "msg_recv": st.msg_recv,
                    "malformed": st.malformed, "bad": st.bad, "lost": st.lost, "before": st.before,
                    "acks_sent": st.acks_sent, "nacks_sent": st.nacks_sent, "resent": st.resent,
                    "resend_queue": d.session().resend_queue().len(), "rs_evicted": st.rs_evicted},
        "netlink": {"events_received": ds.events_received, "events_filtered": ds.events_filtered,
                    "overruns": ds.overruns, "kernel_resyncs": ds.kernel_resyncs,
                    "kernel_flushes": ds.kernel_flushes, "buffer": ds.event_buffer},
        "runtime": {"local_read_failed": r.local_read_failed,
                    "local_unknown_request": r.local_unknown_request},
    });
    format!("{v}\n")
}

/// One entry as `-i`/`-e` print it: libnetfilter_conntrack's plain line without the timeout, then
/// ` [active since Ns]` (and ` [expires in Ns]` for an ALARM external entry). An external entry has no
/// reply tuple yet (conntrackd builds it only when committing), so none is printed.
pub fn entry_line(
    e: &CtEntry,
    with_reply: bool,
    active_secs: u64,
    expires_secs: Option<u64>,
) -> Option<String> {
    let mut k = e.to_ctnl()?;
    k.timeout = None;
    if !with_reply {
        k.reply = None;
    }
    k.orig.as_ref()?;
    let mut s = String::new();
    let clock = ctnl::Clock::at(0, ctnl::TimeZone::utc());
    k.write_text(&mut s, None, &ctnl::Style::default(), None, &clock);
    while s.ends_with(' ') {
        s.pop();
    }
    if let Some(x) = expires_secs {
        let _ = write!(s, " [expires in {x}s]");
    }
    let _ = write!(s, " [active since {active_secs}s]");
    s.push('\n');
    Some(s)
}

/// One entry as a JSON line (`-i -o json`): conntrack's JSON schema plus `active_secs`.
pub fn entry_json(e: &CtEntry, active_secs: u64, expires_secs: Option<u64>) -> Option<String> {
    let mut k = e.to_ctnl()?;
    k.timeout = e.timeout;
    k.orig.as_ref()?;
    let mut line = String::new();
    k.write_json(&mut line, None, None);
    let mut v: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
    if let Some(o) = v.as_object_mut() {
        o.insert("active_secs".into(), json!(active_secs));
        if let Some(x) = expires_secs {
            o.insert("expires_secs".into(), json!(x));
        }
    }
    Some(format!("{v}\n"))
}

/// `-i`/`-e` of conntrack entries.
pub fn dump_ct(d: &Driver, internal: bool, json: bool, now: Instant) -> String {
    let mut out = String::new();
    let line = |e: &CtEntry, created: Instant, expires: Option<Instant>| {
        let active = now.saturating_duration_since(created).as_secs();
        let exp = expires.map(|t| t.saturating_duration_since(now).as_secs());
        if json {
            entry_json(e, active, exp)
        } else {
            entry_line(e, internal, active, exp)
        }
    };
    if internal {
        let ftfw = d.session().mode() == SyncMode::Ftfw;
        for (_, o) in d.session().internal().dump() {
            // conntrackd hides the dead objects FT-FW keeps for a resend.
            if ftfw && o.state == ctsync_proto::cache::ObjState::Dead {
                continue;
            }
            if let Some(l) = line(&o.entry(), o.created, None) {
                out += &l;
            }
        }
    } else {
        for (_, o) in d.session().external().dump() {
            if let Some(l) = line(&o.entry(), o.created, o.expires) {
                out += &l;
            }
        }
    }
    out
}

/// `-i -x`/`-e -x`: libnetfilter_conntrack's XML of each entry, one per line.
pub fn dump_ct_xml(d: &Driver, internal: bool) -> String {
    let entries: Vec<CtEntry> = if internal {
        d.session().internal().live().collect()
    } else {
        d.session()
            .external()
            .dump()
            .map(|(_, o)| o.entry())
            .collect()
    };
    let mut out = String::new();
    for e in entries {
        let Some(mut k) = e.to_ctnl() else { continue };
        k.timeout = None;
        if k.orig.is_some() {
            let clock = ctnl::Clock::at(0, ctnl::TimeZone::utc());
            k.write_xml(&mut out, None, &ctnl::Style::default(), None, &clock);
            out.push('\n');
        }
    }
    out
}

/// `-i expect`/`-e expect`.
pub fn dump_exp(d: &Driver, internal: bool, json: bool, now: Instant) -> String {
    let mut out = String::new();
    let entries: Vec<(ctsync_proto::ExpEntry, Instant)> = if internal {
        d.session()
            .internal_exp()
            .dump()
            .filter(|(_, o)| o.state != ctsync_proto::cache::ObjState::Dead)
            .map(|(_, o)| (o.entry(), o.created))
            .collect()
    } else {
        d.session()
            .external_exp()
            .dump()
            .map(|(_, o)| (o.entry(), o.created))
            .collect()
    };
    for (e, created) in entries {
        let active = now.saturating_duration_since(created).as_secs();
        let Some(x) = e.to_ctnl() else { continue };
        if json {
            let v = json!({
                "master": x.master.as_ref().map(|t| format!("{} -> {}", t.src, t.dst)),
                "expected": x.tuple.as_ref().map(|t| format!("{} -> {}", t.src, t.dst)),
                "proto": x.tuple.as_ref().map(|t| t.proto),
                "helper": x.helper,
                "timeout": x.timeout,
                "active_secs": active,
            });
            out += &format!("{v}\n");
        } else {
            if x.tuple.is_none() {
                continue;
            }
            let mut l = String::new();
            x.write_text(&mut l, None);
            while l.ends_with('\n') || l.ends_with(' ') {
                l.pop();
            }
            let _ = writeln!(l, " [active since {active}s]");
            out += &l;
        }
    }
    out
}
