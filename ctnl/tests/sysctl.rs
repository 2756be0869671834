//! Kernel tests of `ctnl::sysctl`: each test moves its own thread into a fresh network namespace, where
//! the per-namespace knobs are private and writable and the global ones are read-only. The host
//! namespace's knobs are only ever read (by a helper thread started before the test unshares).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ctnl::sysctl::{
    Access, Change, Events, Knob, Plan, Reason, SysctlFs, Sysctls, TIMEOUT_MAX_SECS,
};
use std::sync::mpsc;

/// A thread that stays in the host namespace and reads host knobs on request (read-only).
struct HostReader {
    tx: mpsc::Sender<(Knob, mpsc::Sender<i64>)>,
}

impl HostReader {
    fn start() -> Self {
        let (tx, rx) = mpsc::channel::<(Knob, mpsc::Sender<i64>)>();
        std::thread::spawn(move || {
            let fs = SysctlFs::new().unwrap();
            for (knob, reply) in rx {
                let _ = reply.send(fs.read(knob).unwrap());
            }
        });
        HostReader { tx }
    }

    fn read(&self, knob: Knob) -> i64 {
        let (tx, rx) = mpsc::channel();
        self.tx.send((knob, tx)).unwrap();
        rx.recv().unwrap()
    }
}

fn sh_read(ns: &testkit::NetNs, knob: Knob) -> i64 {
    let out = ns.sh(&format!("cat /proc/sys/net/netfilter/{}", knob.name()));
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn read_all_in_fresh_namespace() {
    let Some(_ns) = testkit::netns() else { return };
    let fs = SysctlFs::new().unwrap();
    assert!(!fs.is_initial_netns());
    let s = fs.read_all().unwrap();
    // Present on every 6.x kernel with conntrack.
    for k in [
        Knob::Max,
        Knob::Buckets,
        Knob::Hashsize,
        Knob::ExpectMax,
        Knob::Count,
        Knob::Acct,
        Knob::Timestamp,
        Knob::Events,
        Knob::TcpLoose,
        Knob::TcpBeLiberal,
        Knob::TcpTimeoutEstablished,
        Knob::UdpTimeout,
        Knob::UdpTimeoutStream,
        Knob::IcmpTimeout,
        Knob::Icmpv6Timeout,
        Knob::GenericTimeout,
        Knob::GreTimeout,
        Knob::SctpTimeoutEstablished,
    ] {
        assert!(s.get_raw(k).is_some(), "{k} missing");
        assert_eq!(fs.read(k).unwrap(), s.get_raw(k).unwrap(), "{k}");
    }
    // A fresh namespace has an empty table.
    assert_eq!(s.count, Some(0));
    // The two views of the hash size agree.
    assert_eq!(s.buckets, s.hashsize);
    // Every file under /proc/sys/net/netfilter named nf_conntrack_* is a knob this module knows.
    for entry in std::fs::read_dir("/proc/sys/net/netfilter").unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.starts_with("nf_conntrack_") {
            let k = Knob::from_name(&name).unwrap_or_else(|e| panic!("{e}"));
            assert!(s.get_raw(k).is_some(), "{name} present but not read");
        }
    }
}

#[test]
fn apply_per_namespace_knobs_leaves_host_alone() {
    let host = HostReader::start();
    let host_udp = host.read(Knob::UdpTimeout);
    let host_acct = host.read(Knob::Acct);
    let Some(ns) = testkit::netns() else { return };
    let fs = SysctlFs::new().unwrap();
    let before = fs.read_all().unwrap();

    let mut want = before.clone();
    want.acct = Some(!before.acct.unwrap());
    want.timestamp = Some(!before.timestamp.unwrap());
    want.events = Some(if before.events == Some(Events::Enabled) {
        Events::Disabled
    } else {
        Events::Enabled
    });
    want.tcp_loose = Some(!before.tcp_loose.unwrap());
    want.tcp_be_liberal = Some(!before.tcp_be_liberal.unwrap());
    want.udp_timeout = Some(before.udp_timeout.unwrap() + 11);
    want.udp_timeout_stream = Some(before.udp_timeout_stream.unwrap() + 12);
    want.tcp_timeout_established = Some(TIMEOUT_MAX_SECS as u32);
    want.icmp_timeout = Some(7);
    want.generic_timeout = Some(0);
    want.gre_timeout = Some(31);
    want.sctp_timeout_established = Some(211);
    // Raise both frag6 thresholds above the current high one: needs the right write order.
    let high = before.frag6_high_thresh.unwrap();
    want.frag6_low_thresh = Some(high + 1000);
    want.frag6_high_thresh = Some(high + 2000);

    let applied = fs.apply(&want).unwrap();
    assert_eq!(applied.changed.len(), 14);
    let after = fs.read_all().unwrap();
    for c in &applied.changed {
        assert_eq!(after.get_raw(c.knob), Some(c.new), "{}", c.knob);
        assert_eq!(sh_read(&ns, c.knob), c.new, "{} via cat", c.knob);
        assert_eq!(before.get_raw(c.knob), Some(c.old), "{}", c.knob);
    }
    assert_eq!(after.diff(&want), vec![]);
    // Applying the same snapshot again changes nothing.
    assert!(fs.apply(&want).unwrap().changed.is_empty());

    // The host namespace did not move.
    assert_eq!(host.read(Knob::UdpTimeout), host_udp);
    assert_eq!(host.read(Knob::Acct), host_acct);
}

#[test]
fn global_knobs_are_read_only_in_child_namespace() {
    let Some(_ns) = testkit::netns() else { return };
    let fs = SysctlFs::new().unwrap();
    let before = fs.read_all().unwrap();
    for knob in [Knob::Max, Knob::Buckets, Knob::ExpectMax, Knob::Hashsize] {
        assert_eq!(fs.access(knob), Access::ReadOnlyInChildNamespace, "{knob}");
        let cur = before.get_raw(knob).unwrap();
        let mut want = before.clone();
        want.set_raw(knob, Some(cur + 1)).unwrap();
        let e = fs.apply(&want).unwrap_err();
        assert_eq!(e.knob, knob);
        assert!(matches!(e.reason, Reason::ReadOnlyInChildNamespace), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains(knob.name()) && msg.contains("non-initial network namespace"),
            "{msg}"
        );
        let e = fs.write(knob, cur + 1).unwrap_err();
        assert!(matches!(e.reason, Reason::ReadOnlyInChildNamespace), "{e}");
        assert_eq!(fs.read(knob).unwrap(), cur);
    }
    // The kernel agrees: a direct write of the /proc file is refused.
    let err = std::fs::write(fs.path(Knob::Max), "1000\n").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
    // Status knobs are read-only everywhere.
    assert_eq!(fs.access(Knob::Count), Access::ReadOnly);
    let e = fs.write(Knob::Count, 5).unwrap_err();
    assert!(matches!(e.reason, Reason::ReadOnly), "{e}");
}

#[test]
fn invalid_change_writes_nothing() {
    let Some(_ns) = testkit::netns() else { return };
    let fs = SysctlFs::new().unwrap();
    let before = fs.read_all().unwrap();

    // Out of range, caught before any write.
    let e = Knob::Acct.parse_value("2").unwrap_err();
    assert!(
        matches!(
            e.reason,
            Reason::OutOfRange {
                value: 2,
                min: 0,
                max: 1
            }
        ),
        "{e}"
    );
    let e = fs
        .write(Knob::UdpTimeout, TIMEOUT_MAX_SECS + 1)
        .unwrap_err();
    assert_eq!(e.knob, Knob::UdpTimeout);
    assert!(matches!(e.reason, Reason::OutOfRange { .. }), "{e}");
    assert!(e.to_string().contains("nf_conntrack_udp_timeout"));
    let mut s = Sysctls::default();
    assert!(s.set_raw(Knob::Events, Some(3)).is_err());

    // A good knob plus a read-only one: the whole change is refused, nothing written.
    let mut want = before.clone();
    want.acct = Some(!before.acct.unwrap());
    want.udp_timeout = Some(before.udp_timeout.unwrap() + 5);
    want.max = Some(before.max.unwrap() / 2);
    let e = fs.apply(&want).unwrap_err();
    assert_eq!(e.knob, Knob::Max);
    assert_eq!(fs.read_all().unwrap(), before);

    // A good knob plus a cross-knob conflict: refused, nothing written.
    let mut want = before.clone();
    want.acct = Some(!before.acct.unwrap());
    want.frag6_low_thresh = Some(before.frag6_high_thresh.unwrap() + 1);
    let e = fs.apply(&want).unwrap_err();
    assert_eq!(e.knob, Knob::Frag6LowThresh);
    assert!(
        matches!(
            e.reason,
            Reason::Conflict {
                other: Knob::Frag6HighThresh,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(fs.read_all().unwrap(), before);
}

#[test]
fn kernel_refusal_mid_change_restores_earlier_writes() {
    let Some(_ns) = testkit::netns() else { return };
    let fs = SysctlFs::new().unwrap();
    let before = fs.read_all().unwrap();
    let high = i64::try_from(before.frag6_high_thresh.unwrap()).unwrap();
    let low = i64::try_from(before.frag6_low_thresh.unwrap()).unwrap();
    let acct = i64::from(before.acct.unwrap());
    let udp = i64::from(before.udp_timeout.unwrap());
    // A hand-made plan whose last write the kernel refuses (low threshold above the high one), to
    // prove that the writes before it are undone.
    let plan = Plan {
        changes: vec![
            Change {
                knob: Knob::Acct,
                old: acct,
                new: 1 - acct,
            },
            Change {
                knob: Knob::UdpTimeout,
                old: udp,
                new: udp + 3,
            },
            Change {
                knob: Knob::Frag6LowThresh,
                old: low,
                new: high + 1,
            },
        ],
    };
    let e = fs.apply_plan(&plan).unwrap_err();
    assert_eq!(e.knob, Knob::Frag6LowThresh);
    match &e.reason {
        Reason::Io(io) => assert_eq!(io.raw_os_error(), Some(libc_einval()), "{io}"),
        other => panic!("unexpected {other}"),
    }
    assert_eq!(fs.read_all().unwrap(), before);
}

fn libc_einval() -> i32 {
    22 // EINVAL on Linux
}
