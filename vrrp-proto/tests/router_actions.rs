//! The router's outputs one by one: order of actions on takeover, announcement repeat and refresh timers,
//! Accept_Mode, excluded addresses, priority changes, shutdown from Backup.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;
use std::time::{Duration, Instant};
use vrrp_proto::wire::{Addresses, Packet};
use vrrp_proto::{Action, Command, Config, Reason, Router, State};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn drain(r: &mut Router) -> Vec<Action> {
    std::iter::from_fn(|| r.poll_action()).collect()
}

fn take_over(cfg: Config) -> (Router, Instant, Vec<Action>) {
    let mut r = Router::new(cfg, ip("192.0.2.1")).unwrap();
    let t0 = Instant::now();
    r.handle_command(t0, Command::Startup);
    drain(&mut r);
    let t = r.poll_timeout().unwrap();
    r.handle_timeout(t);
    let a = drain(&mut r);
    (r, t, a)
}

#[test]
fn takeover_actions_in_order_with_excluded_addresses() {
    let mut cfg = Config::new("eth0", 3, vec![ip("192.0.2.100"), ip("192.0.2.101")]);
    cfg.virtual_ipaddress_excluded = vec![ip("198.51.100.7").into()];
    let (_, _, a) = take_over(cfg);
    assert_eq!(a.len(), 4, "{a:?}");
    let Action::SendAdvert(adv) = &a[0] else {
        panic!("{a:?}")
    };
    // Excluded addresses are never advertised.
    assert_eq!(
        adv.repr.addresses,
        Addresses::V4(vec![
            "192.0.2.100".parse().unwrap(),
            "192.0.2.101".parse().unwrap()
        ])
    );
    let all: Vec<vrrp_proto::VirtualAddress> =
        [ip("192.0.2.100"), ip("192.0.2.101"), ip("198.51.100.7")]
            .map(Into::into)
            .to_vec();
    assert_eq!(
        a[1],
        Action::AddAddresses {
            addresses: all.clone(),
            accept: false
        }
    );
    assert_eq!(
        a[2],
        Action::Announce {
            addresses: all,
            repeat: 5
        }
    );
    assert_eq!(
        a[3],
        Action::StateChange {
            from: State::Backup,
            to: State::Master,
            reason: Reason::MasterDown
        }
    );
}

#[test]
fn accept_mode_and_owner() {
    let mut cfg = Config::new("eth0", 3, vec![ip("192.0.2.100")]);
    cfg.accept = true;
    let (_, _, a) = take_over(cfg);
    assert!(matches!(a[1], Action::AddAddresses { accept: true, .. }));
    // The owner always accepts (RFC 5798 §6.1), and needs no Startup wait.
    let mut cfg = Config::new("eth0", 3, vec![ip("192.0.2.1")]);
    cfg.priority = 255;
    let mut r = Router::new(cfg, ip("192.0.2.1")).unwrap();
    r.handle_command(Instant::now(), Command::Startup);
    let a = drain(&mut r);
    assert!(matches!(a[1], Action::AddAddresses { accept: true, .. }));
    assert_eq!(r.state(), State::Master);
}

#[test]
fn announcement_repeat_delay_and_refresh() {
    let mut cfg = Config::new("eth0", 3, vec![ip("192.0.2.100")]);
    cfg.advert_int = Duration::from_secs(10);
    cfg.garp_master_repeat = 3;
    cfg.garp_master_delay = Duration::from_secs(2);
    cfg.garp_master_refresh = Duration::from_secs(7);
    let (mut r, t, a) = take_over(cfg);
    assert!(a.contains(&Action::Announce {
        addresses: vec![ip("192.0.2.100").into()],
        repeat: 3
    }));
    let mut announces = Vec::new();
    let end = t + Duration::from_secs(25);
    while let Some(d) = r.poll_timeout() {
        if d > end {
            break;
        }
        r.handle_timeout(d);
        for a in drain(&mut r) {
            if let Action::Announce { repeat, .. } = a {
                announces.push((d - t, repeat));
            }
        }
    }
    let s = Duration::from_secs;
    // Second burst after garp_master_delay, then one every garp_master_refresh.
    assert_eq!(
        announces,
        vec![(s(2), 3), (s(7), 1), (s(14), 1), (s(21), 1)]
    );
}

#[test]
fn priority_change_shows_in_the_next_advert() {
    let cfg = Config::new("eth0", 3, vec![ip("192.0.2.100")]);
    let (mut r, t, _) = take_over(cfg);
    r.handle_command(t, Command::SetPriority(42));
    assert_eq!(r.priority(), 42);
    let next = r.poll_timeout().unwrap();
    assert_eq!(next, t + Duration::from_secs(1));
    r.handle_timeout(next);
    let a = drain(&mut r);
    let Action::SendAdvert(adv) = &a[0] else {
        panic!("{a:?}")
    };
    assert_eq!(
        Packet::parse_unverified(&adv.to_bytes().unwrap())
            .unwrap()
            .priority(),
        42
    );
    // 0 is not a priority one can set: ignored.
    r.handle_command(t, Command::SetPriority(0));
    assert_eq!(r.priority(), 42);
}

#[test]
fn shutdown_from_backup_sends_nothing() {
    let mut r = Router::new(
        Config::new("eth0", 3, vec![ip("192.0.2.100")]),
        ip("192.0.2.1"),
    )
    .unwrap();
    let t0 = Instant::now();
    r.handle_command(t0, Command::Startup);
    drain(&mut r);
    r.handle_command(t0 + Duration::from_secs(1), Command::Shutdown);
    assert_eq!(
        drain(&mut r),
        vec![Action::StateChange {
            from: State::Backup,
            to: State::Initialize,
            reason: Reason::Shutdown
        }]
    );
    assert_eq!(r.poll_timeout(), None);
    // Interface events do not restart a shut-down instance.
    r.handle_command(t0 + Duration::from_secs(2), Command::InterfaceUp);
    assert_eq!(r.state(), State::Initialize);
}

#[test]
fn weight_zero_track_faults_and_recovers() {
    let mut cfg = Config::new("eth0", 3, vec![ip("192.0.2.100")]);
    cfg.track = vec![vrrp_proto::config::Track::new("chk", 0)];
    let (mut r, t, _) = take_over(cfg);
    r.handle_command(
        t,
        Command::Track {
            name: "chk".into(),
            up: false,
        },
    );
    let a = drain(&mut r);
    // Still able to send: hands over with priority 0, drops the addresses.
    let Action::SendAdvert(adv) = &a[0] else {
        panic!("{a:?}")
    };
    assert_eq!(adv.repr.priority, 0);
    assert!(matches!(a[1], Action::RemoveAddresses { .. }));
    assert_eq!(
        a[2],
        Action::StateChange {
            from: State::Master,
            to: State::Fault,
            reason: Reason::TrackFault { name: "chk".into() }
        }
    );
    assert_eq!(r.state(), State::Fault);
    assert_eq!(r.poll_timeout(), None, "a faulty instance runs no timer");
    r.handle_command(
        t,
        Command::Track {
            name: "chk".into(),
            up: true,
        },
    );
    assert_eq!(r.state(), State::Backup);
}

/// A non-owner configured `state MASTER` waits the full Master_Down_Interval, exactly like `state
/// BACKUP`: RFC 5798 §6.4.1, and what keepalived 2.2.7 does outside a sync group (measured: first advert
/// 3.63 s after start for priority 100, `advert_int 1`, against 3.61 s). The v2 case with `advert_int 3`
/// pins the v2 Skew_Time, `(256 - Priority) / 256` s whatever the interval (RFC 3768 §6.1).
#[test]
fn state_master_waits_master_down_interval_like_keepalived() {
    use vrrp_proto::config::{InitialState, Version};
    let t0 = Instant::now();
    let vip = vec![ip("192.0.2.100")];
    for (version, int, prio) in [
        (Version::V3, Duration::from_secs(1), 100u8),
        (Version::V3, Duration::from_millis(250), 200),
        (Version::V2, Duration::from_secs(3), 100),
    ] {
        let base = match version {
            Version::V2 => Duration::from_secs(1),
            _ => int,
        };
        let skew = base * u32::from(256 - u16::from(prio)) / 256;
        for state in [InitialState::Master, InitialState::Backup] {
            let mut cfg = Config::new("eth0", 7, vip.clone());
            cfg.version = version;
            cfg.advert_int = int;
            cfg.priority = prio;
            cfg.state = state;
            let mut r = Router::new(cfg, ip("192.0.2.1")).unwrap();
            r.handle_command(t0, Command::Startup);
            assert_eq!(r.state(), State::Backup);
            assert_eq!(r.skew_time(), skew, "{version:?}");
            let want = int * 3 + skew;
            assert_eq!(r.master_down_interval(), want);
            assert_eq!(r.poll_timeout(), Some(t0 + want), "{version:?} {state:?}");
            r.handle_timeout(t0 + want - Duration::from_nanos(1));
            assert_eq!(r.state(), State::Backup);
            r.handle_timeout(t0 + want);
            assert_eq!(r.state(), State::Master, "{version:?} {state:?}");
        }
    }
}
