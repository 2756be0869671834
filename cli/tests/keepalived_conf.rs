//! The keepalived.conf reader: keepalived 2.2.7's lexical rules, `include` globs, `file:line` on every
//! error and notice, the typed sections, and Debian's shipped conntrackd example read unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cli::keepalived::{self, KeepalivedConf};
use std::path::{Path, PathBuf};
use std::time::Duration;
use vrrp_proto::{InitialState, Scope, Version};

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "kaconf-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn read(text: &str) -> Result<KeepalivedConf, String> {
    keepalived::load_str(text, Path::new("test.conf"), None)
        .and_then(|items| keepalived::read(&items))
        .map_err(|e| e.to_string())
}

const MIN: &str = "vrrp_instance A {\n interface eth0\n virtual_router_id 7\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n";

/// Debian's conntrackd example (a sync group with notify scripts, `state SLAVE`, a 16-character
/// password) reads like keepalived reads it: SLAVE defaults to BACKUP and the password is cut to 8
/// bytes, each with a notice naming its line.
#[test]
fn conntrackd_example_reads_unchanged() {
    let path = Path::new("/usr/share/doc/conntrackd/examples/sync/keepalived.conf");
    if !testkit::require("conntrackd's example keepalived.conf", path.exists()) {
        return;
    }
    let conf = keepalived::read_file(path, None).unwrap();
    assert_eq!(conf.instances.len(), 2);
    let g = &conf.groups[0];
    assert_eq!(g.name, "G1");
    assert_eq!(g.members, ["VI_1", "VI_2"]);
    assert_eq!(
        g.notify.master.as_ref().unwrap().argv,
        ["/etc/conntrackd/primary-backup.sh", "primary"]
    );
    assert_eq!(
        g.notify.fault.as_ref().unwrap().argv,
        ["/etc/conntrackd/primary-backup.sh", "fault"]
    );
    let vi1 = &conf.instances[0];
    assert_eq!(vi1.sync_group.as_deref(), Some("G1"));
    assert_eq!(vi1.config.interface, "eth1");
    assert_eq!(vi1.config.version, Version::V2);
    assert_eq!(vi1.config.advert_int, Duration::from_secs(3));
    assert_eq!(vi1.config.auth_pass.as_deref(), Some(&b"papas_co"[..]));
    assert_eq!(vi1.config.state, InitialState::Backup);
    let notices: Vec<String> = conf.notices.iter().map(ToString::to_string).collect();
    assert!(
        notices.iter().any(|n| n
            .contains("keepalived.conf:17: vrrp_instance VI_1: state: unknown state \"SLAVE\"")),
        "{notices:?}"
    );
    assert!(
        notices
            .iter()
            .any(|n| n.contains(":23: vrrp_instance VI_1: auth_pass: longer than 8"))
    );
}

#[test]
fn comments_quotes_continuation_and_braces() {
    let text = "! comment\n# comment\nglobal_defs { router_id \"my router\" # trailing\n vrrp_version 3 }\n\
        vrrp_script chk {\n script \"/bin/test -e '/tmp/a b'\"\n interval 2 ! comment\n weight -20\n fall 2\n rise 3\n}\n\
        vrrp_instance A\n{\n interface eth0 ; \n virtual_router_id \\\n 7\n priority 150\n advert_int 0.1\n\
        virtual_ipaddress{\n 192.0.2.1/24 dev eth1 label eth1:vip scope link brd 192.0.2.255\n 192.0.2.2\n }\n\
        track_script { chk }\n notify \"/usr/bin/logger vrrp\"\n}\n";
    let conf = read(text).unwrap_err();
    // `;` is a word, so `interface eth0 ;` has one value too many: the error names line 14.
    assert!(conf.starts_with("test.conf:14:"), "{conf}");
    let text = text.replace(" ; ", "");
    let conf = read(&text).unwrap();
    assert_eq!(conf.global.router_id.as_deref(), Some("my router"));
    assert_eq!(conf.global.vrrp_version, Version::V3);
    let s = &conf.scripts[0];
    assert_eq!(s.command.argv, ["/bin/test", "-e", "/tmp/a b"]);
    assert_eq!(
        (s.interval, s.timeout),
        (Duration::from_secs(2), Duration::from_secs(2))
    );
    assert_eq!((s.weight, s.fall, s.rise), (-20, 2, 3));
    let a = &conf.instances[0];
    assert_eq!(a.config.virtual_router_id, 7);
    assert_eq!(a.config.version, Version::V3);
    assert_eq!(a.config.advert_int, Duration::from_millis(100));
    let v = &a.config.virtual_ipaddress[0];
    assert_eq!(v.prefix_len, 24);
    assert_eq!(v.dev.as_deref(), Some("eth1"));
    assert_eq!(v.label.as_deref(), Some("eth1:vip"));
    assert_eq!(v.scope, Scope::Link);
    assert_eq!(v.broadcast, Some("192.0.2.255".parse().unwrap()));
    assert_eq!(a.config.virtual_ipaddress[1].prefix_len, 32);
    // The address on eth1 makes the instance track eth1 (a fault while it is down), as keepalived
    // does unless the address says `no_track`.
    let tracks: Vec<(&str, i32)> = a
        .config
        .track
        .iter()
        .map(|t| (t.name.as_str(), t.weight))
        .collect();
    assert_eq!(tracks, [("interface:eth1", 0), ("script:chk", -20)]);
    let no_track = read(&text.replace("brd 192.0.2.255", "brd 192.0.2.255 no_track")).unwrap();
    assert_eq!(no_track.instances[0].config.track.len(), 1);
    assert_eq!(
        a.notify.any.as_ref().unwrap().argv,
        ["/usr/bin/logger", "vrrp"]
    );
    // `\#` is a literal '#'.
    let conf = read(&MIN.replace("interface eth0", "interface e\\#0")).unwrap();
    assert_eq!(conf.instances[0].config.interface, "e#0");
}

#[test]
fn include_globs_relative_to_the_including_file_with_their_own_line_numbers() {
    let d = tmpdir("inc");
    std::fs::create_dir_all(d.join("conf.d")).unwrap();
    std::fs::write(
        d.join("keepalived.conf"),
        "global_defs {\n router_id x\n}\ninclude conf.d/*.conf\ninclude nothing-*.conf\n",
    )
    .unwrap();
    std::fs::write(
        d.join("conf.d/b.conf"),
        MIN.replace("A {", "B {").replace(" 7", " 8"),
    )
    .unwrap();
    std::fs::write(d.join("conf.d/a.conf"), MIN).unwrap();
    std::fs::write(d.join("conf.d/.hidden.conf"), "garbage {\n").unwrap();
    std::fs::write(d.join("conf.d/c.txt"), "garbage {\n").unwrap();
    let conf = keepalived::read_file(&d.join("keepalived.conf"), None).unwrap();
    let names: Vec<&str> = conf.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["A", "B"], "sorted glob order");
    // An error in an included file names that file and its line.
    std::fs::write(
        d.join("conf.d/b.conf"),
        "\n\nvrrp_instance B {\n priority 300\n}\n",
    )
    .unwrap();
    let e = keepalived::read_file(&d.join("keepalived.conf"), None)
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with("conf.d/b.conf:4: priority: \"300\" is not a number from 1 to 255"),
        "{e}"
    );
    // A file including itself stops with an error, not a stack overflow.
    std::fs::write(d.join("loop.conf"), "include loop.conf\n").unwrap();
    let e = keepalived::read_file(&d.join("loop.conf"), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nested more than"), "{e}");
    // A strict include of a missing file is an error; a plain one is silent (as in keepalived).
    std::fs::write(d.join("strict.conf"), "includew missing.conf\n").unwrap();
    assert!(keepalived::read_file(&d.join("strict.conf"), None).is_err());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn malformed_files_name_the_line() {
    for (text, want) in [
        (
            "vrrp_instance A {\n interface eth0\n",
            "test.conf:1: '{' is never closed",
        ),
        ("}\n", "test.conf:1: '}' without a matching '{'"),
        (
            &MIN.replace("virtual_router_id 7", "virtual_router_id 0"),
            "test.conf:3: virtual_router_id",
        ),
        (
            &MIN.replace("virtual_router_id 7", "virtual_router_id x7"),
            "test.conf:3:",
        ),
        (
            &MIN.replace("192.0.2.1", "192.0.2.300"),
            "test.conf:5: virtual_ipaddress: \"192.0.2.300\"",
        ),
        (
            &MIN.replace("192.0.2.1", "192.0.2.1/33"),
            "test.conf:5: virtual_ipaddress: bad prefix",
        ),
        (
            &MIN.replace(
                " interface eth0\n",
                " interface eth0\n advert_int 0.015\n version 3\n",
            ),
            "test.conf:3: vrrp_instance A: advert_int",
        ),
        (
            &MIN.replace(
                " interface eth0\n",
                " interface eth0\n track_script {\n nope\n }\n",
            ),
            "test.conf:1: vrrp_instance A: track_script nope",
        ),
        (
            &format!("{MIN}vrrp_sync_group G {{\n group {{\n A\n Z\n }}\n}}\n"),
            "test.conf:8: vrrp_sync_group G: no vrrp_instance named Z",
        ),
        (
            &format!("{MIN}{}", MIN.replace("A {", "B {")),
            "test.conf:8: vrrp_instance B: virtual_router_id 7 on eth0 is already used by A",
        ),
        (
            "vrrp_instance A {\n interface \"eth0\n}\n",
            "test.conf:2: unterminated quote",
        ),
        (
            &MIN.replace("eth0", "a-very-long-interface-name"),
            "test.conf:2: vrrp_instance A: interface",
        ),
        (
            &MIN.replace(
                " interface eth0\n",
                " interface eth0\n authentication {\n auth_type AH\n }\n",
            ),
            "test.conf:4:",
        ),
    ] {
        let e = read(text).unwrap_err();
        assert!(e.starts_with(want), "{text}\n=> {e}\nwanted {want}");
    }
}

#[test]
fn virtual_server_blocks_are_read_and_unknown_keys_are_reported() {
    let text = format!(
        "{MIN}virtual_server 10.0.0.1 80 {{\n real_server 10.0.0.2 80 {{\n weight 1\n }}\n}}\n\
         virtual_server 10.0.0.1 81 {{\n}}\nfoo_bar 1\n$IF=eth9\nvrrp_instance B {{\n interface $IF\n \
         virtual_router_id 9\n smtp_alert\n frobnicate 3\n virtual_ipaddress {{\n 192.0.2.9 home\n }}\n}}\n"
    );
    let conf = read(&text).unwrap();
    let n: Vec<String> = conf.notices.iter().map(ToString::to_string).collect();
    // The LVS half (issue 14): the first block is read; the one without real servers is ignored with a
    // notice, as keepalived ignores it.
    assert_eq!(conf.virtual_servers.len(), 1, "{n:?}");
    assert!(
        n.iter()
            .any(|m| m.starts_with("test.conf:13: virtual_server: no real_server; ignored")),
        "{n:?}"
    );
    assert!(
        n.iter()
            .any(|m| m.starts_with("test.conf:15: unknown keyword \"foo_bar\"")),
        "{n:?}"
    );
    assert!(
        n.iter()
            .any(|m| m.starts_with("test.conf:21: vrrp_instance B: frobnicate")),
        "{n:?}"
    );
    assert!(
        n.iter()
            .any(|m| m.starts_with("test.conf:23: virtual_ipaddress: option \"home\"")),
        "{n:?}"
    );
    assert_eq!(conf.instances[1].config.interface, "eth9", "$IF expanded");
}

#[test]
fn conditional_lines_follow_the_config_id() {
    let text = MIN.replace(
        " interface eth0\n",
        " @a interface eth1\n @^a interface eth2\n",
    );
    let items = keepalived::load_str(&text, Path::new("t"), Some("a")).unwrap();
    assert_eq!(
        keepalived::read(&items).unwrap().instances[0]
            .config
            .interface,
        "eth1"
    );
    let items = keepalived::load_str(&text, Path::new("t"), Some("b")).unwrap();
    assert_eq!(
        keepalived::read(&items).unwrap().instances[0]
            .config
            .interface,
        "eth2"
    );
}

/// keepalived's script lines: the command is the first argument (quoted to carry arguments); a
/// `notify*` key takes the user and group after it; `vrrp_script`'s `user USER GROUP` and
/// `script_user USER GROUP`; words past those are reported and ignored.
#[test]
fn script_commands_users_and_groups() {
    let text = MIN.replace(
        "interface eth0",
        "interface eth0\n notify_master \"/bin/n.sh master\" nobody nogroup\n notify_backup /bin/n.sh backup\n notify_fault \"/bin/n.sh\" root wheel extra",
    ) + "global_defs {\n script_user www data\n enable_script_security\n}\n\
         vrrp_script c {\n script /bin/check eth0\n user nobody nogroup\n}\n";
    let conf = read(&text).unwrap();
    let n = &conf.instances[0].notify;
    let m = n.master.as_ref().unwrap();
    assert_eq!(m.argv, ["/bin/n.sh", "master"]);
    assert_eq!(
        (m.user.as_deref(), m.group.as_deref()),
        (Some("nobody"), Some("nogroup"))
    );
    // Unquoted: `backup` is the user, as keepalived reads it.
    let b = n.backup.as_ref().unwrap();
    assert_eq!(
        (b.argv.as_slice(), b.user.as_deref()),
        (&["/bin/n.sh".to_owned()][..], Some("backup"))
    );
    assert_eq!(n.fault.as_ref().unwrap().group.as_deref(), Some("wheel"));
    let c = &conf.scripts[0].command;
    assert_eq!(c.argv, ["/bin/check"]);
    assert_eq!(
        (c.user.as_deref(), c.group.as_deref()),
        (Some("nobody"), Some("nogroup"))
    );
    assert_eq!(
        conf.global.script_user,
        Some(("www".to_owned(), Some("data".to_owned())))
    );
    assert!(conf.global.enable_script_security);
    let notices: Vec<String> = conf.notices.iter().map(ToString::to_string).collect();
    assert!(
        notices
            .iter()
            .any(|x| x.contains("notify_fault: \"extra\" and what follows ignored")),
        "{notices:?}"
    );
    assert!(
        notices
            .iter()
            .any(|x| x.contains("script: \"eth0\" and what follows ignored")),
        "{notices:?}"
    );
}

/// The `keepalived_conf` fuzz target's corpus replays through its body (`keepalived::fuzz_read`):
/// no panic, errors name a line of the file; the seeds include a file that uses every key vrrpd
/// reads, and it reads whole.
#[test]
fn fuzz_corpus_replays() {
    let corpus = testkit::replay_fuzz_corpus("keepalived_conf", 3, keepalived::fuzz_read);
    let (_, full) = corpus
        .iter()
        .find(|(p, _)| p.ends_with("full.conf"))
        .unwrap();
    let conf = read(std::str::from_utf8(full).unwrap()).unwrap();
    assert_eq!(conf.instances.len(), 3);
    assert_eq!(conf.instances[0].use_vmac.as_deref(), Some("vrrp.51"));
}

/// `-C` reads only the checker's half and `-P` only the VRRP half, as keepalived's children do: the
/// shipped SSL_GET sample has a `vrrp_instance` with `auth_type AH` (which vrrpd refuses) and its
/// virtual servers still run under `-C`; a broken `virtual_server` does not stop `-P`.
#[test]
fn check_only_and_vrrp_only_read_their_half() {
    let path = Path::new("/usr/share/doc/keepalived/samples/keepalived.conf.SSL_GET");
    if !testkit::require("keepalived's shipped samples", path.exists()) {
        return;
    }
    let e = keepalived::read_file(path, None).unwrap_err().to_string();
    assert!(e.contains("auth_type"), "{e}");
    let lvs = keepalived::Halves {
        vrrp: false,
        lvs: true,
    };
    let conf = keepalived::read_file_halves(path, None, lvs).unwrap();
    assert_eq!((conf.instances.len(), conf.virtual_servers.len()), (0, 2));
    let text = format!("{MIN}virtual_server 10.0.0.1 80 {{\n lb_algo nope\n}}\n");
    let items = keepalived::load_str(&text, Path::new("t.conf"), None).unwrap();
    assert!(keepalived::read(&items).is_err());
    let vrrp = keepalived::Halves {
        vrrp: true,
        lvs: false,
    };
    let conf = keepalived::read_halves(&items, vrrp).unwrap();
    assert_eq!((conf.instances.len(), conf.virtual_servers.len()), (1, 0));
}
