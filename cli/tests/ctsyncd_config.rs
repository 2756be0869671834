//! The conntrackd.conf reader: conntrack-tools' shipped example files load (only interfaces, addresses
//! and paths changed), every malformed file is refused with `file:line: reason`, and clauses ctsyncd
//! does not implement are reported with their line. Also the command line, parsed conntrackd's way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cli::ctsyncd::args::{self, CacheSel, Parsed, Request, StatsKind, Table};
use cli::ctsyncd::config::{self, ModeCfg};
use ctsync_proto::SyncMode;
use ctsync_proto::driver::{Link, Logic};
use std::path::Path;

const EXAMPLES: &str = "/usr/share/doc/conntrackd/examples/sync";

#[test]
fn shipped_examples_load() {
    for (dir, mode) in [
        ("ftfw", SyncMode::Ftfw),
        ("alarm", SyncMode::Alarm),
        ("notrack", SyncMode::Notrack),
    ] {
        let p = Path::new(EXAMPLES).join(dir).join("conntrackd.conf");
        if !testkit::require(&format!("{} (package conntrackd)", p.display()), p.exists()) {
            return;
        }
        let c = config::load(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.driver.session.mode(), mode, "{dir}");
        assert_eq!(c.unix_path, Path::new("/var/run/conntrackd.ctl"));
        assert_eq!(c.lockfile, Path::new("/var/lock/conntrack.lock"));
        let Link::Multicast {
            group,
            interface_addr,
            ..
        } = c.driver.channel.link
        else {
            panic!("{dir}: multicast expected");
        };
        assert_eq!(group.to_string(), "225.0.0.50");
        assert_eq!(interface_addr.unwrap().to_string(), "192.168.100.100");
        assert_eq!(c.driver.channel.port, 3780);
        assert_eq!(c.driver.channel.sndbuf, 1_249_280);
        assert_eq!(c.hashsize, 32768);
        assert_eq!(c.driver.hash_limit, 131_072);
        let (logic, protos) = c.driver.filter.protocols.clone().unwrap();
        assert_eq!((logic, protos), (Logic::Accept, vec![6, 132, 33]), "{dir}");
        let (logic, addrs) = c.driver.filter.addresses.clone().unwrap();
        assert_eq!(logic, Logic::Ignore);
        assert!(addrs.len() >= 4, "{dir}: {addrs:?}");
        // eth2 does not exist here: reported, with its line.
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("eth2 is an invalid interface")),
            "{:?}",
            c.warnings
        );
    }
}

fn parse(text: &str) -> Result<config::Config, String> {
    config::parse(Path::new("/etc/x.conf"), text).map_err(|e| e.to_string())
}

const GOOD: &str = "Sync {\n Mode FTFW {\n  ACKWindowSize 20\n  CommitTimeout 180\n }\n UDP {\n  IPv4_address 10.0.0.1\n  IPv4_Destination_Address 10.0.0.2\n  Port 3780\n  Checksum off\n }\n Options {\n  TCPWindowTracking on\n  ExpectationSync on\n }\n}\nGeneral {\n LockFile /tmp/l\n UNIX {\n  Path /tmp/s.ctl\n }\n NetlinkOverrunResync 5\n Filter From Kernelspace {\n  Protocol Ignore { UDP }\n  Address Accept { IPv4_address 10.0.0.0/8 IPv6_address ::1 }\n  State Accept { ESTABLISHED CLOSED TIME_WAIT for TCP }\n }\n}\n";

#[test]
fn values_reach_the_driver() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.mode, ModeCfg::Ftfw);
    assert_eq!(c.driver.commit.commit_timeout, Some(180));
    assert!(c.driver.commit.tcp_window_tracking);
    assert!(c.driver.expectations);
    assert!(!c.driver.channel.checksum);
    assert_eq!(
        c.driver.overrun_resync,
        Some(std::time::Duration::from_secs(5))
    );
    assert_eq!(
        c.driver.filter.tcp_states,
        Some((Logic::Accept, vec![3, 8, 7]))
    );
    assert_eq!(c.driver.filter.protocols, Some((Logic::Ignore, vec![17])));
    assert_eq!(c.driver.filter.addresses.as_ref().unwrap().1.len(), 2);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn malformed_files_name_the_line() {
    let cases: &[(&str, &str)] = &[
        (
            "Sync {\n Mode FTFW {\n }\n",
            "/etc/x.conf:3: `Sync` block opened at line 1 is not closed",
        ),
        (
            "Sync {\n Mode FOO {\n }\n}\n",
            "/etc/x.conf:2: unknown sync mode `FOO`",
        ),
        (
            "Sync {\n Mode FTFW {\n  ACKWindowSize many\n }\n}\n",
            "/etc/x.conf:3: `ACKWindowSize` wants a number, not `many`",
        ),
        (
            "Sync {\n Mode ALARM {\n  ACKWindowSize 3\n }\n}\n",
            "/etc/x.conf:3: `ACKWindowSize` is not an option of this mode",
        ),
        (
            "Sync {\n UDP {\n  IPv4_address 10.0.0.300\n }\n}\n",
            "/etc/x.conf:3: `IPv4_address`: `10.0.0.300` is not a valid IP address",
        ),
        (
            "Sync {\n UDP {\n  Port 70000\n }\n}\n",
            "/etc/x.conf:3: `Port` 70000 is not a port number",
        ),
        (
            "Sync {\n TCP {\n }\n}\n",
            "/etc/x.conf:2: the `TCP` dedicated link is not implemented",
        ),
        (
            "Sync {\n UDP {\n }\n Multicast {\n }\n}\n",
            "/etc/x.conf:4: cannot use `Multicast` with other dedicated link protocols!",
        ),
        (
            "General {\n Frobnicate 1\n}\n",
            "/etc/x.conf:2: unknown key `Frobnicate` in `General`",
        ),
        (
            "General {\n LockFile relative\n}\n",
            "/etc/x.conf:2: `LockFile` wants an absolute path",
        ),
        (
            "General {\n Filter {\n  Protocol Maybe { TCP }\n }\n}\n",
            "/etc/x.conf:3: `Protocol` wants Accept or Ignore, not `Maybe`",
        ),
        (
            "General {\n Filter {\n  State Accept { ESTABLISHED }\n }\n}\n",
            "/etc/x.conf:3: a state list must end with `for TCP`",
        ),
        ("Stats {\n}\n", "/etc/x.conf:1: the `Stats` mode"),
        ("}\n", "/etc/x.conf:1: unexpected brace"),
        (
            "General {\n UNIX {\n  Path /tmp/s\n }\n}\n",
            "/etc/x.conf: no `Sync` section",
        ),
        (
            "Sync {\n Mode NOTRACK {\n  DisableExternalCache on\n }\n}\n",
            "/etc/x.conf:3: `DisableExternalCache on`",
        ),
    ];
    for (text, want) in cases {
        let got = parse(text)
            .err()
            .unwrap_or_else(|| panic!("accepted: {text}"));
        assert!(got.starts_with(want), "{text:?}\n got: {got}\nwant: {want}");
    }
}

#[test]
fn unimplemented_clauses_warn_with_their_line() {
    let text = GOOD.replace(
        " LockFile /tmp/l\n",
        " LockFile /tmp/l\n PollSecs 5\n Nice -20\n Scheduler {\n  Type RR\n  Priority 99\n }\n",
    );
    let c = parse(&text).unwrap();
    let w = c.warnings.join("\n");
    assert!(w.contains("/etc/x.conf:19: `PollSecs`"), "{w}");
    assert!(w.contains("/etc/x.conf:20: deprecated nice"), "{w}");
    assert!(!w.contains("Scheduler"), "{w}");
    assert_eq!(c.sched_priority, Some(99));
}

#[test]
fn garbage_configs_never_panic() {
    // Every prefix and a byte-flipped copy of a good file either load or fail with a located error.
    for cut in 0..GOOD.len() {
        let _ = parse(&GOOD[..cut]);
    }
    let mut bytes = GOOD.as_bytes().to_vec();
    for i in (0..bytes.len()).step_by(7) {
        bytes[i] ^= 0x5a;
        let _ = parse(&String::from_utf8_lossy(&bytes));
    }
}

fn argv(s: &str) -> Vec<std::ffi::OsString> {
    std::iter::once("ctsyncd")
        .chain(s.split_whitespace())
        .map(Into::into)
        .collect()
}

#[test]
fn command_line_is_read_the_conntrackd_way() {
    let req = |s: &str| match args::parse(&argv(s)).unwrap() {
        Parsed::Request { request, json, .. } => (request, json),
        other => panic!("{s}: {other:?}"),
    };
    assert_eq!(req("-c").0, Request::Commit { table: Table::All });
    assert_eq!(req("-c ct").0, Request::Commit { table: Table::Ct });
    assert_eq!(
        req("-c e").0,
        Request::Commit {
            table: Table::Expect
        }
    );
    assert_eq!(
        req("-f").0,
        Request::FlushCache {
            cache: CacheSel::All
        }
    );
    assert_eq!(
        req("-f int").0,
        Request::FlushCache {
            cache: CacheSel::Internal
        }
    );
    assert_eq!(
        req("-s").0,
        Request::Stats {
            kind: StatsKind::General
        }
    );
    assert_eq!(
        req("-s net").0,
        Request::Stats {
            kind: StatsKind::Network
        }
    );
    assert_eq!(
        req("-s multicast").0,
        Request::Stats {
            kind: StatsKind::Link
        }
    );
    assert_eq!(
        req("-i -x").0,
        Request::DumpInternal {
            table: Table::Ct,
            xml: true
        }
    );
    assert_eq!(
        req("-e expect").0,
        Request::DumpExternal {
            table: Table::Expect,
            xml: false
        }
    );
    assert_eq!(
        req("-i -o json"),
        (
            Request::DumpInternal {
                table: Table::Ct,
                xml: false
            },
            true
        )
    );
    // conntrackd only looks at the second character.
    assert_eq!(req("-Bogus").0, Request::SendBulk);
    assert!(matches!(
        args::parse(&argv("-d -c")),
        Err(args::ArgError::Usage(_))
    ));
    assert!(matches!(
        args::parse(&argv("-x")),
        Err(args::ArgError::Usage(_))
    ));
    assert!(matches!(
        args::parse(&argv("-f bogus")),
        Err(args::ArgError::Fail(_))
    ));
    assert!(matches!(
        args::parse(&argv("-s bogus")),
        Err(args::ArgError::Fail(_))
    ));
    assert!(matches!(
        args::parse(&argv("-q")),
        Err(args::ArgError::UnknownOption(_))
    ));
    assert_eq!(
        args::parse(&argv("-C /x.conf")).unwrap(),
        Parsed::Run {
            config: "/x.conf".into(),
            daemon: false
        }
    );
    // Every request number round-trips.
    for code in 0..=48 {
        if let Some(r) = Request::from_conntrackd_code(code)
            && code != 19
        {
            assert_eq!(r.conntrackd_code(), code);
        }
    }
    // A non-UTF-8 argument is refused, not a panic.
    use std::os::unix::ffi::OsStringExt;
    let bad = vec![
        "ctsyncd".into(),
        std::ffi::OsString::from_vec(vec![b'-', 0xff]),
    ];
    assert!(matches!(args::parse(&bad), Err(args::ArgError::Fail(_))));
}

/// The `ctsyncd_receive` fuzz corpus (captured conntrackd traffic and control requests), replayed.
#[test]
fn receive_fuzz_corpus_replays() {
    let corpus = testkit::fuzz_corpus("ctsyncd_receive");
    assert!(corpus.len() >= 6);
    for (_, data) in corpus {
        cli::ctsyncd::receive_path_check(&data);
    }
    // The seeds really reach an external cache: the FT-FW capture fills one.
    let seed =
        std::fs::read(testkit::workspace_root().join("fuzz/corpus/ctsyncd_receive/ftfw_capture"))
            .unwrap();
    let mut s = ctsync_proto::SessionConfig::Ftfw(ctsync_proto::FtfwConfig::default())
        .build(std::time::Instant::now());
    let mut rest = seed.as_slice();
    while let Some((&len, tail)) = rest.split_first() {
        let (d, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        s.handle_datagram(std::time::Instant::now(), d);
    }
    assert!(!s.external().is_empty());
}

/// The `conntrackd_conf` fuzz target's corpus replays through its body (`config::fuzz_parse`): no
/// panic, errors name a line of the file; the seeds that use every key of each mode read whole.
#[test]
fn conf_fuzz_corpus_replays() {
    let corpus = testkit::replay_fuzz_corpus("conntrackd_conf", 6, config::fuzz_parse);
    for (seed, mode) in [
        ("ftfw_udp.conf", ModeCfg::Ftfw),
        ("alarm_multicast.conf", ModeCfg::Alarm),
        ("notrack_udp6.conf", ModeCfg::Notrack),
    ] {
        let (path, data) = corpus.iter().find(|(p, _)| p.ends_with(seed)).unwrap();
        let c = config::parse(path, std::str::from_utf8(data).unwrap())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.mode, mode, "{seed}");
    }
    let (path, data) = corpus
        .iter()
        .find(|(p, _)| p.ends_with("unclosed.conf"))
        .unwrap();
    let e = config::parse(path, std::str::from_utf8(data).unwrap()).unwrap_err();
    assert_eq!(e.line, 3, "{e}");
}
