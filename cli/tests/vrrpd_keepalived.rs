//! vrrpd against keepalived 2.2.7, in network namespaces (the lab is `vrrpd_lab`): after each step the
//! virtual address must be on exactly the expected namespace, and tshark watching from a third
//! namespace on the same LAN sees adverts from the expected master only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod vrrpd_lab;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use vrrpd_lab::*;

/// VRRPv2 with PASS: vrrpd wins by priority, announces itself (the client's neighbour entry moves
/// without the client sending anything), hands over with priority 0 on SIGTERM and removes its
/// address, preempts again on restart, and after SIGKILL + restart removes its own leftover only.
/// tshark in a third namespace checks each step on the wire: only the expected master's adverts
/// (sender, VRID 51, priority, v2, good checksum), priority 0 before each hand-over on SIGTERM,
/// nothing from a killed vrrpd, and keepalived's takeover no sooner than Master_Down_Interval.
#[test]
fn v2_pass_election_stop_preempt_kill_restart() {
    let Some(mut lab) = Lab::new("v2", 1) else {
        return;
    };
    let Some(w) = lab.watch() else {
        return;
    };
    let auth = "  authentication {\n  auth_type PASS\n  auth_pass s3cret\n }\n";
    let vip = "10.70.0.100";
    let ours = lab.write(
        "a.conf",
        &instance("VI_1", "va0", 51, 150, &format!("{vip}/24"), auth),
    );
    let theirs = lab.write(
        "b.conf",
        &instance("VI_1", "vb0", 51, 100, &format!("{vip}/24"), auth),
    );
    // What each side's adverts look like on the wire.
    let (us, k100) = (
        advert_of(&lab.a, "va0", false, 51, 150),
        advert_of(&lab.b, "vb0", false, 51, 100),
    );
    let only = |from: f64, want: &Frame, what: &str| w.only(from, want, 2, 1.0, what);
    let takeover = |from: f64, old: &Frame, new: &Frame, graceful: bool, what: &str| {
        w.takeover(from, old, new, graceful, Duration::from_secs(8), what)
    };
    // Someone else's address in A, which vrrpd must never remove.
    sh(&format!("ip -n {} addr add 10.70.0.77/24 dev va0", lab.a));
    lab.start_keepalived(&theirs);
    lab.expect_on(
        vip,
        Some(&lab.b.clone()),
        Duration::from_secs(8),
        "keepalived alone",
    );
    only(epoch() + GRACE, &k100, "keepalived alone");
    let mac_b = lab.mac(&lab.b, "vb0");
    let mac_a = lab.mac(&lab.a, "va0");
    let started = epoch();
    let pid = lab.start_vrrpd(&ours);
    // Higher priority: vrrpd preempts at once (keepalived's adverts are lower).
    lab.expect_on(
        vip,
        Some(&lab.a.clone()),
        Duration::from_secs(6),
        "vrrpd preempts",
    );
    let from = epoch() + GRACE;
    takeover(started, &k100, &us, false, "vrrpd preempts");
    // Gratuitous ARP: the client's entry follows without it sending anything (it may need a moment).
    let end = Instant::now() + Duration::from_secs(3);
    while lab.client_neigh(vip).as_deref() != Some(&mac_a) {
        assert!(
            Instant::now() < end,
            "neighbour entry {:?} != {mac_a}",
            lab.client_neigh(vip)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let st = lab.status();
    let i = &st["instances"][0];
    assert_eq!(i["state"], "MASTER", "{st}");
    assert_eq!(i["version"], 2);
    assert!(i["counters"]["sent"].as_u64().unwrap() >= 1, "{st}");
    only(from, &us, "vrrpd master, keepalived silent");
    // SIGTERM: priority 0, keepalived takes over within Skew_Time (+ margin); our VIP is gone.
    let stopped = epoch();
    kill("TERM", pid);
    lab.wait_gone(pid, Duration::from_secs(3));
    lab.expect_on(
        vip,
        Some(&lab.b.clone()),
        Duration::from_secs(2),
        "hand-over on SIGTERM",
    );
    let from = epoch() + GRACE;
    takeover(stopped, &us, &k100, true, "hand-over on SIGTERM");
    let end = Instant::now() + Duration::from_secs(3);
    while lab.client_neigh(vip).as_deref() != Some(&mac_b) {
        assert!(Instant::now() < end, "neighbour entry after hand-over");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!lab.socket().exists(), "control socket removed at exit");
    only(from, &k100, "keepalived master after vrrpd's stop");
    // Restart: preempts again.
    let started = epoch();
    let pid = lab.start_vrrpd(&ours);
    lab.expect_on(
        vip,
        Some(&lab.a.clone()),
        Duration::from_secs(6),
        "restart preempts",
    );
    let from = epoch() + GRACE;
    takeover(started, &k100, &us, false, "restart preempts");
    only(from, &us, "vrrpd master after its restart");
    // SIGKILL leaves the address (as keepalived's does); keepalived takes over after
    // Master_Down_Interval; a restarted vrrpd removes its own leftover at once.
    let killed = epoch();
    kill("KILL", pid);
    lab.wait_gone(pid, Duration::from_secs(3));
    assert!(lab.has(&lab.a, vip), "SIGKILL cannot clean up");
    let end = Instant::now() + Duration::from_secs(6);
    while !lab.has(&lab.b, vip) {
        assert!(Instant::now() < end, "keepalived takes over after a kill");
        std::thread::sleep(Duration::from_millis(50));
    }
    let from = epoch() + GRACE;
    let first = takeover(killed, &us, &k100, false, "keepalived after a kill");
    // Nothing from the killed vrrpd (no priority 0), and keepalived waited Master_Down_Interval
    // (3 x 1 s + skew) from vrrpd's last advert.
    w.after_kill(killed, &us, first, 2.5, "keepalived after a kill");
    only(from, &k100, "keepalived master after the kill");
    let started = epoch();
    let pid = lab.start_vrrpd(&ours);
    // The leftover goes right away (vrrpd is Backup for Master_Down_Interval), then it preempts.
    std::thread::sleep(Duration::from_millis(500));
    lab.expect_on(
        vip,
        Some(&lab.b.clone()),
        Duration::from_millis(100),
        "leftover removed at restart",
    );
    lab.expect_on(
        vip,
        Some(&lab.a.clone()),
        Duration::from_secs(6),
        "preempts after restart",
    );
    let from = epoch() + GRACE;
    takeover(started, &k100, &us, false, "preempts after restart");
    assert!(
        lab.has(&lab.a, "10.70.0.77"),
        "an address vrrpd did not add stays"
    );
    only(from, &us, "vrrpd master after the restart");
    let stopped = epoch();
    kill("TERM", pid);
    lab.wait_gone(pid, Duration::from_secs(3));
    assert!(
        lab.has(&lab.a, "10.70.0.77"),
        "an address vrrpd did not add stays after exit"
    );
    lab.expect_on(
        vip,
        Some(&lab.b.clone()),
        Duration::from_secs(2),
        "hand-over on the last SIGTERM",
    );
    let from = epoch() + GRACE;
    takeover(stopped, &us, &k100, true, "hand-over on the last SIGTERM");
    only(from, &k100, "keepalived master at the end");
}

/// conntrack-tools' shipped keepalived.conf (a sync group of two instances on two interfaces, notify
/// scripts calling primary-backup.sh) runs under vrrpd with only interfaces, addresses and the script
/// path changed: the group moves as one against keepalived (frozen master, link fault, recovery), and
/// the scripts get their arguments. On the wire (tshark from a third namespace, on both LANs): only
/// keepalived's adverts while vrrpd is Backup, only vrrpd's (VRIDs 61 and 62, priority 80, v2) once
/// the group is Master, and none from vrrpd from its fault to the end.
#[test]
fn conntrackd_example_sync_group_against_keepalived() {
    let example = Path::new("/usr/share/doc/conntrackd/examples/sync/keepalived.conf");
    if !testkit::require("conntrackd's example keepalived.conf", example.exists()) {
        return;
    }
    let Some(mut lab) = Lab::new("sg", 2) else {
        return;
    };
    let Some(w) = lab.watch() else {
        return;
    };
    let log = lab.dir.join("notify.log");
    let script = lab.write(
        "primary-backup.sh",
        &format!("#!/bin/sh\necho \"$@\" >> {}\n", log.display()),
    );
    sh(&format!("chmod +x {}", script.display()));
    let text = std::fs::read_to_string(example).unwrap();
    let adapt = |text: &str, if1: &str, if0: &str| {
        text.replace("interface eth1", &format!("interface {if1}"))
            .replace("interface eth0", &format!("interface {if0}"))
            .replace("192.168.0.100", "10.70.0.100")
            .replace("192.168.1.100", "10.71.0.100")
            .replace(
                "/etc/conntrackd/primary-backup.sh",
                &script.display().to_string(),
            )
    };
    let ours = lab.write("a.conf", &adapt(&text, "va0", "va1"));
    // keepalived's side is the same file with a higher priority, so it starts as the master.
    let theirs = lab.write(
        "b.conf",
        &adapt(&text, "vb0", "vb1")
            .replace("primary-backup.sh", "no-such-script.sh")
            .replace("priority 80", "priority 100"),
    );
    let (b, a) = (lab.b.clone(), lab.a.clone());
    // The example's VI_1 (VRID 61) runs on the first LAN, VI_2 (62) on the second; v2, 3 s.
    let (ours1, ours2, theirs1, theirs2) = (
        advert_of(&a, "va0", false, 61, 80),
        advert_of(&a, "va1", false, 62, 80),
        advert_of(&b, "vb0", false, 61, 100),
        advert_of(&b, "vb1", false, 62, 100),
    );
    let only = |from: f64, want: &Frame, what: &str| w.only(from, want, 2, 3.0, what);
    lab.start_keepalived(&theirs);
    lab.expect_on(
        "10.70.0.100",
        Some(&b),
        Duration::from_secs(12),
        "keepalived master",
    );
    lab.expect_on(
        "10.71.0.100",
        Some(&b),
        Duration::from_secs(1),
        "keepalived master",
    );
    let from = epoch() + GRACE;
    let _pid = lab.start_vrrpd(&ours);
    let notified = |want: &str, limit: Duration| {
        let end = Instant::now() + limit;
        loop {
            let got = std::fs::read_to_string(&log).unwrap_or_default();
            if got.lines().last() == Some(want) {
                return got;
            }
            assert!(
                Instant::now() < end,
                "notify log {got:?}, wanted a last line {want:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    notified("backup", Duration::from_secs(5));
    only(from, &theirs1, "keepalived master of VI_1, vrrpd silent");
    only(from, &theirs2, "keepalived master of VI_2, vrrpd silent");
    // Freeze keepalived's VRRP process: both members time out, the group goes Master together.
    let (_, kvrrp) = lab.keepalived_pids();
    let frozen = epoch();
    kill("STOP", kvrrp);
    // (The frozen keepalived still holds its addresses: only A is checked while it is stopped.)
    let on_a = |vip: &str, want: bool, limit: Duration, what: &str| {
        let end = Instant::now() + limit;
        while lab.has(&a, vip) != want {
            assert!(Instant::now() < end, "{what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    on_a(
        "10.70.0.100",
        true,
        Duration::from_secs(15),
        "group master (VI_1)",
    );
    on_a(
        "10.71.0.100",
        true,
        Duration::from_secs(1),
        "group master (VI_2)",
    );
    notified("primary", Duration::from_secs(2));
    let from = epoch() + GRACE;
    let st = lab.status();
    assert_eq!(st["groups"][0]["state"], "MASTER", "{st}");
    for (old, new) in [(&theirs1, &ours1), (&theirs2, &ours2)] {
        w.takeover(
            frozen,
            old,
            new,
            false,
            Duration::from_secs(15),
            "group master",
        );
    }
    only(from, &ours1, "vrrpd master of VI_1");
    only(from, &ours2, "vrrpd master of VI_2");
    // One link down: VI_2 faults, the group takes VI_1 to Fault too; no address stays.
    sh(&format!("ip -n {a} link set va1 down"));
    on_a(
        "10.70.0.100",
        false,
        Duration::from_secs(2),
        "group fault (VI_1)",
    );
    on_a(
        "10.71.0.100",
        false,
        Duration::from_secs(1),
        "group fault (VI_2)",
    );
    notified("fault", Duration::from_secs(2));
    // From here on vrrpd is never Master again: nothing more from A on either LAN.
    let faulted = epoch() + GRACE;
    // keepalived thaws (it still believes it is master), the link returns: vrrpd goes Backup.
    kill("CONT", kvrrp);
    lab.expect_on(
        "10.70.0.100",
        Some(&b),
        Duration::from_secs(6),
        "keepalived back",
    );
    let thawed = epoch();
    sh(&format!("ip -n {a} link set va1 up"));
    let up = epoch() + GRACE;
    notified("backup", Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(2));
    lab.expect_on(
        "10.71.0.100",
        Some(&b),
        Duration::from_secs(1),
        "stays with keepalived",
    );
    // keepalived's adverts (every 3 s) are heard again: the master is known, the group stays Backup.
    let end = Instant::now() + Duration::from_secs(8);
    loop {
        let st = lab.status();
        assert_eq!(st["groups"][0]["state"], "BACKUP", "{st}");
        if st["instances"][0]["counters"]["accepted"].as_u64().unwrap() > 0
            && st["instances"][0]["master"]["priority"] == 100
        {
            break;
        }
        assert!(Instant::now() < end, "{st}");
        std::thread::sleep(Duration::from_millis(200));
    }
    only(thawed, &theirs1, "keepalived master of VI_1 again");
    only(up, &theirs2, "keepalived master of VI_2 again");
    w.silent_since(
        faulted,
        &[&ours1.mac, &ours2.mac],
        "vrrpd after its group's fault",
    );
}

/// Bad adverts (wrong TTL, truncated, bad checksum, wrong version) are counted by reason in
/// `status` and never change state; a malformed file is refused by `--check-config` with its line
/// and by SIGHUP without any change; a reload that drops an instance removes exactly its address and
/// keeps the other instance's state.
#[test]
fn bad_input_counted_and_reload_applies_only_the_difference() {
    let Some(mut lab) = Lab::new("bi", 1) else {
        return;
    };
    let two = format!(
        "{}{}",
        instance("VI_1", "va0", 51, 100, "10.70.0.100/24", ""),
        instance("VI_2", "va0", 52, 100, "10.70.0.101/24", "")
    );
    let conf = lab.write("a.conf", &two);
    let pid = lab.start_vrrpd(&conf);
    let a = lab.a.clone();
    lab.expect_on(
        "10.70.0.100",
        Some(&a),
        Duration::from_secs(6),
        "VI_1 master alone",
    );
    lab.expect_on(
        "10.70.0.101",
        Some(&a),
        Duration::from_secs(1),
        "VI_2 master alone",
    );
    let b = lab.b.clone();
    let good = v2_advert(51, 254, [10, 70, 0, 100]);
    send_raw(&b, "vb0", 64, std::slice::from_ref(&good));
    let mut bad_ck = good.clone();
    bad_ck[7] ^= 0xff;
    let mut v3 = good.clone();
    v3[0] = 0x31;
    send_raw(
        &b,
        "vb0",
        255,
        &[good[..5].to_vec(), bad_ck, v3[..12].to_vec()],
    );
    std::thread::sleep(Duration::from_millis(300));
    let st = lab.status();
    let vi1 = &st["instances"][0];
    assert_eq!(vi1["state"], "MASTER", "{st}");
    let rej = &vi1["counters"]["rejected"];
    assert_eq!(rej["ttl"], 1, "{st}");
    assert_eq!(rej["truncated"], 1, "{st}");
    assert_eq!(rej["checksum"], 1, "{st}");
    assert!(
        rej["version"].as_u64().unwrap_or(0) + rej["length"].as_u64().unwrap_or(0) >= 1,
        "{st}"
    );
    assert_eq!(vi1["counters"]["became_master"], 1);
    // --check-config: a broken file names its line and exits 1; the good one exits 0.
    let broken = lab.write(
        "broken.conf",
        &two.replace(
            "priority 100\n advert_int 1\n virtual_ipaddress {\n  10.70.0.101",
            "priority 100\n advert_int x\n virtual_ipaddress {\n  10.70.0.101",
        ),
    );
    let o = Command::new(vrrpd_bin())
        .arg("--check-config")
        .arg("-f")
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("broken.conf:14: advert_int: \"x\""), "{err}");
    let o = Command::new(vrrpd_bin())
        .arg("-t")
        .arg("-f")
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A control client that connects and says nothing holds up neither the adverts nor another
    // client.
    let silent = std::os::unix::net::UnixStream::connect(lab.socket()).unwrap();
    let sent = |st: &serde_json::Value| st["instances"][0]["counters"]["sent"].as_u64().unwrap();
    let asked = Instant::now();
    let before = sent(&lab.status());
    // (A server that waited for the silent client would take its read timeout first.)
    assert!(
        asked.elapsed() < Duration::from_millis(400),
        "{:?}",
        asked.elapsed()
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(sent(&lab.status()) > before, "adverts went on");
    drop(silent);
    // A second vrrpd started on the broken file, or on a file naming a missing interface, stops
    // with the line and the reason before touching anything.
    let no_if = lab.write(
        "noif.conf",
        &instance("VI_9", "nosuch0", 59, 100, "10.70.0.109/24", ""),
    );
    let before = sh(&format!("ip -n {a} -br addr; ip -n {a} -br link"));
    for (conf_path, want) in [
        (&broken, "broken.conf:14: advert_int"),
        (&no_if, "noif.conf:1: vrrp_instance VI_9"),
    ] {
        let o = Command::new("ip")
            .args(["netns", "exec", &a])
            .arg(vrrpd_bin())
            .arg("-f")
            .arg(conf_path)
            .arg("--socket")
            .arg(lab.dir.join("other.sock"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains(want), "{err}");
    }
    assert_eq!(
        before,
        sh(&format!("ip -n {a} -br addr; ip -n {a} -br link"))
    );
    // SIGHUP with the broken file: nothing changes.
    std::fs::copy(&broken, &conf).unwrap();
    kill("HUP", pid);
    std::thread::sleep(Duration::from_millis(500));
    assert!(lab.has(&a, "10.70.0.100") && lab.has(&a, "10.70.0.101"));
    let log = std::fs::read_to_string(lab.dir.join("vrrpd.log")).unwrap();
    assert!(
        log.contains("reload refused, configuration unchanged"),
        "{log}"
    );
    // SIGHUP dropping VI_2: its address goes, VI_1 stays Master without a transition.
    std::fs::write(
        &conf,
        instance("VI_1", "va0", 51, 100, "10.70.0.100/24", ""),
    )
    .unwrap();
    kill("HUP", pid);
    let end = Instant::now() + Duration::from_secs(2);
    while lab.has(&a, "10.70.0.101") {
        assert!(
            Instant::now() < end,
            "VI_2's address left behind after reload"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let st = lab.status();
    assert_eq!(st["instances"].as_array().unwrap().len(), 1, "{st}");
    assert_eq!(st["instances"][0]["state"], "MASTER");
    assert_eq!(
        st["instances"][0]["counters"]["became_master"], 1,
        "state kept: {st}"
    );
    assert!(lab.has(&a, "10.70.0.100"));
    kill("TERM", pid);
    lab.wait_gone(pid, Duration::from_secs(3));
    lab.expect_on(
        "10.70.0.100",
        None,
        Duration::from_secs(1),
        "nothing left after SIGTERM",
    );
}

/// One protocol mode in both roles: keepalived (150) is Master and vrrpd (100) stays Backup hearing
/// it; keepalived stops (priority 0) and vrrpd takes over within Skew_Time; keepalived restarts and
/// preempts. For `v4`, then `nopreempt` on a higher-priority vrrpd keeps keepalived Master,
/// `preempt_delay 2` delays vrrpd's takeover by about 2 s, and vrrpd's own stop hands back with
/// priority 0. tshark watches from a third namespace: after each step the adverts on the wire come
/// from the expected master only (sender, VRID, priority, version, good checksum), a graceful stop
/// sends priority 0 before the other side's first advert, and the Backup stays silent.
fn both_roles(mode: &str) {
    {
        let Some(mut lab) = Lab::new(&format!("r{mode}"), 1) else {
            return;
        };
        let Some(w) = lab.watch() else {
            return;
        };
        if mode == "v6" {
            wait_link_local(&lab);
        }
        let (vip_line, vip) = match mode {
            "v6" => ("fe80::70:100/64\n  fd00:70::100/64", "fd00:70::100"),
            _ => ("10.70.0.100/24", "10.70.0.100"),
        };
        let extra = |me: u8, peer: u8| match mode {
            "unicast" => format!(
                " version 3\n unicast_src_ip 10.70.0.{me}\n unicast_peer {{\n  10.70.0.{peer}\n }}\n"
            ),
            "v2pass" => " version 2\n authentication {\n  auth_type PASS\n  auth_pass s3cret\n }\n"
                .to_owned(),
            _ => " version 3\n".to_owned(),
        };
        let version = if mode == "v2pass" { 2 } else { 3 };
        let theirs = lab.write(
            "b.conf",
            &instance("VI_1", "vb0", 61, 150, vip_line, &extra(2, 1)),
        );
        let ours_text = instance("VI_1", "va0", 61, 100, vip_line, &extra(1, 2));
        let ours = lab.write("a.conf", &ours_text);
        let (a, b) = (lab.a.clone(), lab.b.clone());
        let v6 = mode == "v6";
        // (Taken before any virtual address is added: a link-local VIP is not the source.)
        let k150 = advert_of(&b, "vb0", v6, 61, 150);
        let us100 = advert_of(&a, "va0", v6, 61, 100);
        let us = |prio: u8| Frame {
            prio,
            ..us100.clone()
        };
        let only = |from: f64, want: &Frame, what: &str| {
            w.only(from, want, version, 1.0, &format!("{mode}: {what}"))
        };
        lab.start_keepalived(&theirs);
        lab.expect_on(
            vip,
            Some(&b),
            Duration::from_secs(8),
            &format!("{mode}: keepalived master"),
        );
        let from = epoch() + GRACE;
        let pid = lab.start_vrrpd(&ours);
        std::thread::sleep(Duration::from_millis(3500));
        lab.expect_on(
            vip,
            Some(&b),
            Duration::from_millis(10),
            &format!("{mode}: vrrpd stays backup"),
        );
        let st = lab.status();
        assert_eq!(st["instances"][0]["state"], "BACKUP", "{mode}: {st}");
        assert_eq!(
            st["instances"][0]["master"]["priority"], 150,
            "{mode}: {st}"
        );
        assert!(
            st["instances"][0]["counters"]["accepted"].as_u64().unwrap() >= 2,
            "{mode}: {st}"
        );
        only(from, &k150, "keepalived master, vrrpd silent");
        // keepalived stops: priority 0, vrrpd takes over after Skew_Time (0.61 s) plus margin.
        let k = lab.keepalived.take().unwrap();
        let stopped = epoch();
        kill("TERM", k.id());
        lab.expect_on(
            vip,
            Some(&a),
            Duration::from_millis(2500),
            &format!("{mode}: vrrpd takes over"),
        );
        let from = epoch() + GRACE;
        w.takeover(
            stopped,
            &k150,
            &us(100),
            true,
            Duration::from_secs(3),
            &format!("{mode}: keepalived's stop"),
        );
        let mut k = k;
        let _ = k.wait();
        only(from, &us(100), "vrrpd master after keepalived's stop");
        // keepalived returns and preempts (150 > 100).
        let restarted = epoch();
        lab.start_keepalived(&theirs);
        lab.expect_on(
            vip,
            Some(&b),
            Duration::from_secs(8),
            &format!("{mode}: keepalived preempts"),
        );
        let from = epoch() + GRACE;
        w.takeover(
            restarted,
            &us(100),
            &k150,
            false,
            Duration::from_secs(3),
            &format!("{mode}: keepalived's preemption"),
        );
        only(from, &k150, "keepalived master again, vrrpd silent");
        kill("TERM", pid);
        lab.wait_gone(pid, Duration::from_secs(3));
        if mode != "v4" {
            return;
        }
        // nopreempt: vrrpd with 200 joins a running keepalived Master and leaves it be.
        std::fs::write(
            &ours,
            ours_text.replace("priority 100", "priority 200\n nopreempt"),
        )
        .unwrap();
        let from = epoch();
        let pid = lab.start_vrrpd(&ours);
        std::thread::sleep(Duration::from_secs(5));
        lab.expect_on(vip, Some(&b), Duration::from_millis(10), "nopreempt");
        only(from, &k150, "nopreempt: keepalived alone on the wire");
        kill("TERM", pid);
        lab.wait_gone(pid, Duration::from_secs(3));
        // preempt_delay 2: no takeover for 2 s after the first lower-priority advert.
        std::fs::write(
            &ours,
            ours_text.replace("priority 100", "priority 200\n preempt_delay 2"),
        )
        .unwrap();
        let started = Instant::now();
        let start = epoch();
        let pid = lab.start_vrrpd(&ours);
        std::thread::sleep(Duration::from_millis(1500));
        lab.expect_on(
            vip,
            Some(&b),
            Duration::from_millis(10),
            "preempt_delay still running",
        );
        lab.expect_on(
            vip,
            Some(&a),
            // The delay runs from the first lower-priority advert (up to 1 s after the start);
            // then the lower adverts are discarded and Master_Down_Interval (3.2 s) runs out from
            // the last one accepted: up to about 5.3 s after the start.
            Duration::from_secs(7),
            "preempt after the delay",
        );
        assert!(started.elapsed() >= Duration::from_secs(2));
        let from = epoch() + GRACE;
        let first = w.takeover(
            start,
            &k150,
            &us(200),
            false,
            Duration::from_secs(3),
            "preempt_delay",
        );
        assert!(
            first - start >= 2.0,
            "vrrpd's first advert {:.3} s after its start",
            first - start
        );
        only(from, &us(200), "vrrpd master after its preempt_delay");
        // vrrpd's stop: priority 0, keepalived takes over.
        let stopped = epoch();
        kill("TERM", pid);
        lab.wait_gone(pid, Duration::from_secs(3));
        lab.expect_on(
            vip,
            Some(&b),
            Duration::from_millis(2500),
            "keepalived after vrrpd's stop",
        );
        let from = epoch() + GRACE;
        w.takeover(
            stopped,
            &us(200),
            &k150,
            true,
            Duration::from_secs(3),
            "vrrpd's stop",
        );
        only(from, &k150, "keepalived master after vrrpd's stop");
    }
}

/// VRRPv2 with PASS authentication in both roles.
#[test]
fn v2_pass_both_roles() {
    both_roles("v2pass");
}

/// VRRPv3 over IPv4 in both roles, with vrrpd's `nopreempt` and `preempt_delay`.
#[test]
fn v3_ipv4_both_roles_nopreempt_preempt_delay() {
    both_roles("v4");
}

/// VRRPv3 over IPv6 in both roles.
#[test]
fn v3_ipv6_both_roles() {
    both_roles("v6");
}

/// VRRPv3 unicast in both roles.
#[test]
fn v3_unicast_both_roles() {
    both_roles("unicast");
}

/// splitmix64, for the seeded event sequence.
fn next_rand(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// No split brain: a seeded run of random events against a keepalived peer (SIGKILL + restart,
/// SIGTERM + restart, freeze/thaw of either side, keepalived restart, link down/up, priority change
/// by SIGHUP, a tracked script failing and recovering), each followed by a settle: within the settle
/// limit exactly one namespace must hold the address. `VRRPD_CHAOS_EVENTS` (default 10) and
/// `VRRPD_CHAOS_SEED` (default 12) choose the run; `cargo xtask vrrp-chaos` runs the long one.
#[test]
fn split_brain_chaos_seeded() {
    let events: usize = std::env::var("VRRPD_CHAOS_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let seed: u64 = std::env::var("VRRPD_CHAOS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let Some(mut lab) = Lab::new("ch", 1) else {
        return;
    };
    let flag = lab.dir.join("healthy");
    std::fs::write(&flag, "").unwrap();
    let vip = "10.70.0.100";
    let ours_for = |prio: u8| {
        format!(
            "vrrp_script chk {{\n script \"/bin/test -e {}\"\n interval 0.2\n weight -120\n fall 1\n rise 1\n}}\n{}",
            flag.display(),
            instance(
                "VI_1",
                "va0",
                71,
                prio,
                "10.70.0.100/24",
                " version 3\n track_script {\n  chk\n }\n"
            )
            .replace("advert_int 1", "advert_int 0.5")
        )
    };
    let theirs_text = instance("VI_1", "vb0", 71, 100, "10.70.0.100/24", " version 3\n")
        .replace("advert_int 1", "advert_int 0.5");
    let theirs = lab.write("b.conf", &theirs_text);
    let ours = lab.write("a.conf", &ours_for(150));
    lab.start_keepalived(&theirs);
    let mut pid = lab.start_vrrpd(&ours);
    let (a, b) = (lab.a.clone(), lab.b.clone());
    let mut rng = seed;
    let mut violations = Vec::new();
    let settle = Duration::from_secs(8);
    let one_holder = |lab: &Lab| {
        let end = Instant::now() + settle;
        loop {
            let (x, y) = (lab.has(&a, vip), lab.has(&b, vip));
            if x != y {
                return Ok(Instant::now());
            }
            if Instant::now() >= end {
                return Err((x, y));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert!(one_holder(&lab).is_ok(), "initial election");
    for n in 0..events {
        let r = next_rand(&mut rng);
        let pause = Duration::from_millis(500 + r % 3000);
        let what = match (r >> 16) % 8 {
            0 => {
                kill("KILL", pid);
                lab.wait_gone(pid, Duration::from_secs(3));
                pid = lab.start_vrrpd(&ours);
                "vrrpd SIGKILL + restart"
            }
            1 => {
                kill("TERM", pid);
                lab.wait_gone(pid, Duration::from_secs(3));
                std::thread::sleep(pause);
                pid = lab.start_vrrpd(&ours);
                "vrrpd SIGTERM + restart"
            }
            2 => {
                let (_, k) = lab.keepalived_pids();
                kill("STOP", k);
                std::thread::sleep(pause);
                kill("CONT", k);
                "keepalived frozen and thawed"
            }
            3 => {
                kill("STOP", pid);
                std::thread::sleep(pause);
                kill("CONT", pid);
                "vrrpd frozen and thawed"
            }
            4 => {
                let mut k = lab.keepalived.take().unwrap();
                kill("TERM", k.id());
                let _ = k.wait();
                std::thread::sleep(pause);
                lab.start_keepalived(&theirs);
                "keepalived restart"
            }
            5 => {
                sh(&format!("ip -n {a} link set va0 down"));
                std::thread::sleep(pause);
                sh(&format!("ip -n {a} link set va0 up"));
                "vrrpd's link down and up"
            }
            6 => {
                let prio = 50 + (r >> 24) % 150;
                std::fs::write(&ours, ours_for(u8::try_from(prio).unwrap())).unwrap();
                kill("HUP", pid);
                "vrrpd priority change (SIGHUP)"
            }
            _ => {
                if flag.exists() {
                    std::fs::remove_file(&flag).unwrap();
                    "tracked script fails"
                } else {
                    std::fs::write(&flag, "").unwrap();
                    "tracked script recovers"
                }
            }
        };
        // The settle time: longer than Master_Down_Interval (3 x 0.5 s + skew), then up to 8 s more.
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_millis(2500));
        match one_holder(&lab) {
            Ok(t) => eprintln!("event {n}: {what}: one holder after {:?}", t - t0),
            Err((x, y)) => {
                eprintln!("event {n}: {what}: VIOLATION A={x} B={y}");
                violations.push((n, what, x, y));
            }
        }
    }
    eprintln!(
        "split-brain run: seed {seed}, {events} events, {} violations",
        violations.len()
    );
    assert!(
        violations.is_empty(),
        "{violations:?}\n{}",
        std::fs::read_to_string(lab.dir.join("vrrpd.log")).unwrap_or_default()
    );
}

/// keepalived in the roles the other tests give vrrpd: a killed keepalived Master (SIGKILL on both
/// its processes, as a crashed daemon: its address stays behind, as LAB.md says) is replaced by
/// vrrpd after Master_Down_Interval; a higher-priority keepalived with `nopreempt` leaves vrrpd
/// Master; a frozen vrrpd Master (SIGSTOP) is replaced by keepalived, and once thawed steps down and
/// removes its address; a higher-priority keepalived with `preempt_delay 2` takes over about 2 s
/// after it started hearing vrrpd. On the wire (tshark from a third namespace): after each step only
/// the expected master advertises, nothing comes from the killed keepalived, whose replacement
/// waits Master_Down_Interval; keepalived's stop sends priority 0 before vrrpd's first advert.
#[test]
fn keepalived_killed_nopreempt_preempt_delay_and_vrrpd_frozen() {
    let Some(mut lab) = Lab::new("kr", 1) else {
        return;
    };
    let Some(w) = lab.watch() else {
        return;
    };
    let (a, b) = (lab.a.clone(), lab.b.clone());
    let vip = "10.70.0.100";
    let v3 = " version 3\n";
    let theirs = |prio: u8, extra: &str| {
        instance(
            "VI_1",
            "vb0",
            81,
            prio,
            "10.70.0.100/24",
            &format!("{v3}{extra}"),
        )
        .replace("advert_int 1\n", "advert_int 0.5\n")
    };
    let ours = lab.write(
        "a.conf",
        &instance("VI_1", "va0", 81, 100, "10.70.0.100/24", v3)
            .replace("advert_int 1\n", "advert_int 0.5\n"),
    );
    let (us, k150, k200) = (
        advert_of(&a, "va0", false, 81, 100),
        advert_of(&b, "vb0", false, 81, 150),
        advert_of(&b, "vb0", false, 81, 200),
    );
    let only = |from: f64, want: &Frame, what: &str| w.only(from, want, 3, 0.5, what);
    let takeover = |from: f64, old: &Frame, new: &Frame, graceful: bool, what: &str| {
        w.takeover(from, old, new, graceful, Duration::from_secs(8), what)
    };
    let k150_conf = lab.write("b150.conf", &theirs(150, ""));
    lab.start_keepalived(&k150_conf);
    lab.expect_on(vip, Some(&b), Duration::from_secs(4), "keepalived master");
    let from = epoch() + GRACE;
    let pid = lab.start_vrrpd(&ours);
    std::thread::sleep(Duration::from_secs(2));
    lab.expect_on(vip, Some(&b), Duration::from_millis(10), "vrrpd backup");
    only(from, &k150, "keepalived master, vrrpd backup and silent");
    // SIGKILL on both keepalived processes at once (its VRRP child hands over cleanly when only its
    // parent dies, and the parent restarts a child that dies alone).
    let (main, child) = lab.keepalived_pids();
    let killed = Instant::now();
    let killed_at = epoch();
    sh(&format!("kill -KILL {child} {main}"));
    let mut k = lab.keepalived.take().unwrap();
    let _ = k.wait();
    let end = Instant::now() + Duration::from_secs(4);
    while !lab.has(&a, vip) {
        assert!(
            Instant::now() < end,
            "vrrpd takes over from a killed keepalived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Master_Down_Interval: 3 x 0.5 s + (256 - 100) / 256 x 0.5 s = 1.80 s.
    let took = killed.elapsed();
    assert!(took >= Duration::from_millis(1300), "{took:?}");
    let from = epoch() + GRACE;
    // On the wire: nothing from the killed keepalived (no priority 0), and vrrpd's first advert
    // Master_Down_Interval after keepalived's last one.
    let first = takeover(killed_at, &k150, &us, false, "a killed keepalived");
    w.after_kill(
        killed_at,
        &k150,
        first,
        1.3,
        "vrrpd after a killed keepalived",
    );
    assert!(lab.has(&b, vip), "a killed keepalived leaves its address");
    sh(&format!("ip -n {b} addr del {vip}/24 dev vb0"));
    // keepalived returns with 200 but nopreempt: vrrpd stays Master, keepalived stays silent.
    let nopreempt = lab.write("bno.conf", &theirs(200, " nopreempt\n"));
    lab.start_keepalived(&nopreempt);
    std::thread::sleep(Duration::from_secs(4));
    lab.expect_on(
        vip,
        Some(&a),
        Duration::from_millis(10),
        "keepalived nopreempt",
    );
    only(from, &us, "vrrpd master, keepalived nopreempt silent");
    // vrrpd frozen: keepalived takes over; thawed, vrrpd hears 200 > 100, steps down and cleans up.
    let frozen = epoch();
    kill("STOP", pid);
    let end = Instant::now() + Duration::from_secs(4);
    while !lab.has(&b, vip) {
        assert!(
            Instant::now() < end,
            "keepalived takes over from a frozen vrrpd:\n{}",
            std::fs::read_to_string(lab.dir.join("keepalived.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    takeover(frozen, &us, &k200, false, "a frozen vrrpd");
    kill("CONT", pid);
    lab.expect_on(
        vip,
        Some(&b),
        Duration::from_secs(2),
        "thawed vrrpd steps down",
    );
    let from = epoch() + GRACE;
    let st = lab.status();
    assert_eq!(st["instances"][0]["state"], "BACKUP", "{st}");
    only(from, &k200, "keepalived master, the thawed vrrpd silent");
    // keepalived with preempt_delay 2 against a vrrpd Master.
    let mut k = lab.keepalived.take().unwrap();
    let stopped = epoch();
    kill("TERM", k.id());
    let _ = k.wait();
    lab.expect_on(
        vip,
        Some(&a),
        Duration::from_secs(2),
        "vrrpd after keepalived's stop",
    );
    let from = epoch() + GRACE;
    takeover(stopped, &k200, &us, true, "keepalived's stop");
    only(from, &us, "vrrpd master after keepalived's stop");
    let delayed = lab.write("bdelay.conf", &theirs(200, " preempt_delay 2\n"));
    let started = Instant::now();
    let start = epoch();
    lab.start_keepalived(&delayed);
    std::thread::sleep(Duration::from_millis(1500));
    lab.expect_on(
        vip,
        Some(&a),
        Duration::from_millis(10),
        "keepalived's preempt_delay runs",
    );
    lab.expect_on(
        vip,
        Some(&b),
        Duration::from_secs(5),
        "keepalived preempts after its delay",
    );
    assert!(started.elapsed() >= Duration::from_secs(2));
    let from = epoch() + GRACE;
    let first = takeover(start, &us, &k200, false, "keepalived's preempt_delay");
    assert!(
        first - start >= 2.0,
        "keepalived's first advert {:.3} s after its start\n{}",
        first - start,
        w.dump()
    );
    only(
        from,
        &k200,
        "keepalived master after its delay, vrrpd silent",
    );
    kill("TERM", pid);
    lab.wait_gone(pid, Duration::from_secs(3));
}
