//! vrrpd's keepalived features on the real kernel, with keepalived 2.2.7 as the peer where one
//! applies (the lab is `vrrpd_lab`): VMACs, announcement spacing, script users and security, reload.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod vrrpd_lab;

use std::time::{Duration, Instant};
use vrrpd_lab::*;

fn fast(text: String) -> String {
    text.replace("advert_int 1\n", "advert_int 0.5\n")
}

/// `use_vmac` against a keepalived that uses one too, IPv4 and IPv6: vrrpd creates `vrrp.51` with
/// 00:00:5e:00:01:33 and `vrrp.52` with 00:00:5e:00:02:34, hears keepalived's adverts on them as a
/// Backup, and as Master sends its adverts from them (source MAC on the wire = the VMAC, as
/// keepalived does by default) so that keepalived hears it; the address sits on the VMAC and the
/// client learns the VMAC. While a VMAC exists the parent answers no ARP for it (`arp_ignore`,
/// `arp_filter` 1) and `all.rp_filter` 1 is lifted; at exit the VMACs go and every setting is back.
/// With `vmac_xmit_base` the adverts leave from the parent's MAC, the address still on the VMAC.
#[test]
fn use_vmac_adverts_leave_from_the_vmac_both_ways() {
    let Some(mut lab) = Lab::new("vm", 1) else {
        return;
    };
    wait_link_local(&lab);
    let (a, b) = (lab.a.clone(), lab.b.clone());
    sh(&format!(
        "ip netns exec {a} sh -c 'echo 1 > /proc/sys/net/ipv4/conf/all/rp_filter'"
    ));
    let conf = |ifname: &str, prio: u8, extra: &str| {
        fast(instance(
            "VI_4",
            ifname,
            51,
            prio,
            "10.70.0.100/24",
            &format!(" version 3\n use_vmac\n{extra}"),
        )) + &fast(instance(
            "VI_6",
            ifname,
            52,
            prio,
            "fe80::70:100/64\n  fd00:70::100/64",
            " use_vmac\n",
        ))
    };
    let theirs = lab.write("b.conf", &conf("vb0", 200, ""));
    let ours = lab.write("a.conf", &conf("va0", 100, ""));
    lab.start_keepalived(&theirs);
    lab.expect_on(
        "10.70.0.100",
        Some(&b),
        Duration::from_secs(6),
        "keepalived",
    );
    lab.expect_on(
        "fd00:70::100",
        Some(&b),
        Duration::from_secs(3),
        "keepalived v6",
    );
    let pid = lab.start_vrrpd(&ours);
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let st = lab.status();
        let heard = (0..2).all(|i| {
            st["instances"][i]["state"] == "BACKUP"
                && st["instances"][i]["master"]["priority"] == 200
                && st["instances"][i]["counters"]["accepted"].as_u64().unwrap() > 0
        });
        if heard {
            break;
        }
        assert!(
            Instant::now() < end,
            "vrrpd hears keepalived on its VMACs: {st}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let link = sh(&format!("ip -n {a} -br link"));
    assert!(
        link.contains("vrrp.51@va0") && link.contains("00:00:5e:00:01:33"),
        "{link}"
    );
    assert!(
        link.contains("vrrp.52@va0") && link.contains("00:00:5e:00:02:34"),
        "{link}"
    );
    assert_eq!(ipv4_conf(&a, "va0", "arp_ignore"), 1);
    assert_eq!(ipv4_conf(&a, "va0", "arp_filter"), 1);
    assert_eq!(ipv4_conf(&a, "all", "rp_filter"), 0);
    assert_eq!(ipv4_conf(&a, "vrrp.51", "rp_filter"), 0);
    // keepalived stops: vrrpd takes both over, and speaks from its VMACs.
    let mut k = lab.keepalived.take().unwrap();
    kill("TERM", k.id());
    let _ = k.wait();
    lab.expect_on(
        "10.70.0.100",
        Some(&a),
        Duration::from_secs(3),
        "vrrpd master",
    );
    lab.expect_on(
        "fd00:70::100",
        Some(&a),
        Duration::from_secs(3),
        "vrrpd master v6",
    );
    let addr = sh(&format!("ip -n {a} -br addr show vrrp.51"));
    assert!(addr.contains("10.70.0.100/24"), "{addr}");
    let frames = vrrp_frames("br0", 1.5, 20);
    let ours4: Vec<&Frame> = frames.iter().filter(|f| f.src == "10.70.0.1").collect();
    let ours6: Vec<&Frame> = frames.iter().filter(|f| f.vrid == 52).collect();
    assert!(ours4.len() >= 2 && ours6.len() >= 2, "{frames:?}");
    assert!(
        ours4
            .iter()
            .all(|f| f.mac == "00:00:5e:00:01:33" && f.prio == 100),
        "{frames:?}"
    );
    assert!(
        ours6
            .iter()
            .all(|f| f.mac == "00:00:5e:00:02:34" && f.src.starts_with("fe80::")),
        "{frames:?}"
    );
    let end = Instant::now() + Duration::from_secs(3);
    while lab.client_neigh("10.70.0.100").as_deref() != Some("00:00:5e:00:01:33") {
        assert!(
            Instant::now() < end,
            "client entry {:?}",
            lab.client_neigh("10.70.0.100")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A lower keepalived hears those adverts through its own VMAC and stays Backup.
    let lower = lab.write("b-low.conf", &conf("vb0", 50, ""));
    lab.start_keepalived(&lower);
    std::thread::sleep(Duration::from_secs(3));
    lab.expect_on(
        "10.70.0.100",
        Some(&a),
        Duration::from_millis(10),
        "keepalived stays backup",
    );
    lab.expect_on(
        "fd00:70::100",
        Some(&a),
        Duration::from_millis(10),
        "keepalived stays backup",
    );
    // Exit: VMACs deleted, settings back.
    kill("TERM", pid);
    lab.wait_gone(pid, Duration::from_secs(3));
    let link = sh(&format!("ip -n {a} -br link"));
    assert!(!link.contains("vrrp."), "{link}");
    assert_eq!(ipv4_conf(&a, "va0", "arp_ignore"), 0);
    assert_eq!(ipv4_conf(&a, "va0", "arp_filter"), 0);
    assert_eq!(ipv4_conf(&a, "all", "rp_filter"), 1);
    assert_eq!(ipv4_conf(&a, "va0", "rp_filter"), 0);
    lab.expect_on(
        "10.70.0.100",
        Some(&b),
        Duration::from_secs(3),
        "keepalived takes over",
    );
    // vmac_xmit_base: adverts from va0's MAC, the address still on the VMAC.
    let mac_a = lab.mac(&a, "va0");
    let xmit = lab.write(
        "a-xmit.conf",
        &conf("va0", 100, " vmac_xmit_base\n").replace("priority 100", "priority 150"),
    );
    let pid = lab.start_vrrpd(&xmit);
    lab.expect_on(
        "10.70.0.100",
        Some(&a),
        Duration::from_secs(4),
        "vrrpd preempts",
    );
    let addr = sh(&format!("ip -n {a} -br addr show vrrp.51"));
    assert!(addr.contains("10.70.0.100/24"), "{addr}");
    let frames = vrrp_frames("br0", 1.2, 10);
    let ours4: Vec<&Frame> = frames.iter().filter(|f| f.src == "10.70.0.1").collect();
    assert!(
        !ours4.is_empty() && ours4.iter().all(|f| f.mac == mac_a),
        "{mac_a}: {frames:?}"
    );
    // SIGKILL leaves the VMACs; a restart takes them back (one each) and runs; a reload that drops
    // the IPv6 instance deletes its VMAC; SIGTERM deletes the rest.
    kill("KILL", pid);
    lab.wait_gone(pid, Duration::from_secs(3));
    let link = sh(&format!("ip -n {a} -br link"));
    assert!(
        link.contains("vrrp.51") && link.contains("vrrp.52"),
        "{link}"
    );
    let pid = lab.start_vrrpd(&xmit);
    // The VIP is still on the leftover VMAC: a status reply proves the restart has taken the
    // leftovers back (the loop answers only after the driver started).
    let _ = lab.status();
    lab.expect_on(
        "10.70.0.100",
        Some(&a),
        Duration::from_secs(4),
        "after a restart",
    );
    let link = sh(&format!("ip -n {a} -br link"));
    assert_eq!(link.matches("vrrp.51@va0").count(), 1, "{link}");
    assert_eq!(link.matches("vrrp.52@va0").count(), 1, "{link}");
    let text = std::fs::read_to_string(&xmit).unwrap();
    let only_v4 = &text[..text.find("vrrp_instance VI_6").unwrap()];
    std::fs::write(&xmit, only_v4).unwrap();
    kill("HUP", pid);
    let end = Instant::now() + Duration::from_secs(3);
    while sh(&format!("ip -n {a} -br link")).contains("vrrp.52") {
        assert!(Instant::now() < end, "the dropped instance's VMAC stays");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        lab.has(&a, "10.70.0.100"),
        "the other instance keeps running"
    );
    kill("TERM", pid);
    lab.wait_gone(pid, Duration::from_secs(3));
    assert!(!sh(&format!("ip -n {a} -br link")).contains("vrrp."));
}

/// `dont_track_primary`, and the tracking of the interfaces that addresses name with `dev`
/// (unless `no_track`), against keepalived running the same instances (other VRIDs and addresses,
/// same links) on the same link changes: after each change both report the same state for each
/// instance (keepalived's from its log).
#[test]
fn dont_track_primary_and_address_devices_as_keepalived() {
    let Some(mut lab) = Lab::new("dt", 2) else {
        return;
    };
    let (a, b) = (lab.a.clone(), lab.b.clone());
    let conf = |side: &str, base: u8, host: u8| {
        let i = |name: &str, ifn: u8, vrid: u8, vips: &str, extra: &str| {
            fast(instance(
                name,
                &format!("v{side}{ifn}"),
                base + vrid,
                100,
                vips,
                &format!(" version 3\n{extra}"),
            ))
        };
        let vip = |net: u8, n: u8| format!("10.7{net}.0.{}/24", host + n);
        [
            i("VI_1", 0, 1, &vip(0, 1), " dont_track_primary\n"),
            i("VI_2", 1, 2, &vip(1, 2), ""),
            i(
                "VI_3",
                0,
                3,
                &format!("{}\n  {} dev v{side}1", vip(0, 3), vip(1, 3)),
                "",
            ),
            i(
                "VI_4",
                0,
                4,
                &format!("{}\n  {} dev v{side}1 no_track", vip(0, 4), vip(1, 4)),
                "",
            ),
        ]
        .concat()
    };
    let ours = lab.write("a.conf", &conf("a", 0, 100));
    let theirs = lab.write("b.conf", &conf("b", 100, 200));
    lab.start_keepalived(&theirs);
    let pid = lab.start_vrrpd(&ours);
    let log = lab.dir.join("keepalived.log");
    let same = |lab: &Lab, what: &str, want: &[(&str, &str)]| {
        let end = Instant::now() + Duration::from_secs(6);
        loop {
            let ours = vrrpd_states(&lab.status());
            let theirs = keepalived_states(&std::fs::read_to_string(&log).unwrap_or_default());
            let want: std::collections::BTreeMap<String, String> = want
                .iter()
                .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
                .collect();
            if ours == want && theirs == want {
                return;
            }
            assert!(
                Instant::now() < end,
                "{what}: vrrpd {ours:?}, keepalived {theirs:?}, wanted {want:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let all = |s: &'static str| [("VI_1", s), ("VI_2", s), ("VI_3", s), ("VI_4", s)];
    same(&lab, "start", &all("MASTER"));
    // The second link goes down: VI_2 (its interface) and VI_3 (an address on it) fault; VI_4's
    // address there says no_track.
    sh(&format!(
        "ip -n {a} link set va1 down; ip -n {b} link set vb1 down"
    ));
    same(
        &lab,
        "link 1 down",
        &[
            ("VI_1", "MASTER"),
            ("VI_2", "FAULT"),
            ("VI_3", "FAULT"),
            ("VI_4", "MASTER"),
        ],
    );
    sh(&format!(
        "ip -n {a} link set va1 up; ip -n {b} link set vb1 up"
    ));
    same(&lab, "link 1 up", &all("MASTER"));
    // The first link goes down: VI_1 does not track it and stays Master; VI_3 and VI_4 fault.
    sh(&format!(
        "ip -n {a} link set va0 down; ip -n {b} link set vb0 down"
    ));
    same(
        &lab,
        "link 0 down",
        &[
            ("VI_1", "MASTER"),
            ("VI_2", "MASTER"),
            ("VI_3", "FAULT"),
            ("VI_4", "FAULT"),
        ],
    );
    sh(&format!(
        "ip -n {a} link set va0 up; ip -n {b} link set vb0 up"
    ));
    same(&lab, "link 0 up", &all("MASTER"));
    kill("TERM", pid);
    lab.wait_gone(pid, Duration::from_secs(3));
}

/// `vrrp_garp_interval` and `vrrp_gna_interval` space the announcements of a burst on an
/// interface (gratuitous ARPs 100 ms apart, NAs 50 ms apart, every one of the burst sent, in
/// keepalived's order: round after round of every address), and `garp_master_refresh` with
/// `garp_master_refresh_repeat 2` repeats a burst of two rounds every second.
#[test]
fn announcement_intervals_and_refresh_repeat() {
    let Some(mut lab) = Lab::new("ga", 1) else {
        return;
    };
    wait_link_local(&lab);
    let a = lab.a.clone();
    let mac = lab.mac(&a, "va0");
    let text = format!(
        "global_defs {{\n vrrp_garp_interval 0.1\n vrrp_gna_interval 0.05\n vrrp_garp_master_delay 0\n}}\n{}{}",
        fast(instance(
            "VI_4",
            "va0",
            51,
            100,
            "10.70.0.100/24\n  10.70.0.101/24",
            " version 3\n garp_master_repeat 3\n garp_master_refresh 1.5\n garp_master_refresh_repeat 2\n",
        )),
        fast(instance(
            "VI_6",
            "va0",
            52,
            100,
            "fe80::70:100/64\n  fd00:70::100/64",
            " garp_master_repeat 2\n",
        ))
    );
    let conf = lab.write("a.conf", &text);
    let cap = capture_announcements("br0", 4.5);
    let pid = lab.start_vrrpd(&conf);
    let seen = announcements(cap);
    kill("TERM", pid);
    lab.wait_gone(pid, Duration::from_secs(3));
    let arps: Vec<&Announcement> = seen
        .iter()
        .filter(|x| x.kind == "arp" && x.mac == mac)
        .collect();
    let nas: Vec<&Announcement> = seen
        .iter()
        .filter(|x| x.kind == "na" && x.mac == mac)
        .collect();
    let order: Vec<&str> = arps.iter().map(|x| x.addr.as_str()).collect();
    // The Master burst (3 rounds of 2), then the first refresh burst (2 rounds of 2) 1.5 s later.
    assert!(arps.len() >= 10, "{seen:#?}");
    assert_eq!(
        order[..10],
        ["10.70.0.100", "10.70.0.101"].repeat(5)[..],
        "{seen:#?}"
    );
    for w in arps[..6].windows(2).chain(arps[6..10].windows(2)) {
        let gap = w[1].t - w[0].t;
        // The interval, less a little for delivery jitter; the upper bound only allows for load.
        assert!((0.09..0.5).contains(&gap), "ARP gap {gap}: {seen:#?}");
    }
    let refresh = arps[6].t - arps[0].t;
    assert!(
        (1.45..2.3).contains(&refresh),
        "refresh after {refresh} s: {seen:#?}"
    );
    // Two rounds of the two IPv6 addresses, 50 ms apart.
    assert!(nas.len() >= 4, "{seen:#?}");
    for w in nas[..4].windows(2) {
        let gap = w[1].t - w[0].t;
        assert!((0.045..0.4).contains(&gap), "NA gap {gap}: {seen:#?}");
    }
}

/// `script_user`, a notify script's own user and group, and `enable_script_security`: scripts run
/// as their user (`id -u`/`id -g` written by the script), a world-writable script that would run as
/// root is refused (notify and vrrp_script alike: the refused check is not tracked, the priority
/// stays) with the reason in the log; without `enable_script_security` the same script runs, with
/// keepalived's SECURITY VIOLATION warning.
#[test]
fn script_users_and_script_security() {
    let Some(mut lab) = Lab::new("ss", 1) else {
        return;
    };
    if !testkit::require(
        "the nobody user and nogroup group",
        sh("getent passwd nobody; getent group nogroup || true").contains("nogroup"),
    ) {
        return;
    }
    let dir = lab.dir.clone();
    let out = |n: &str| dir.join(format!("out.{n}"));
    for n in ["default", "own", "unsafe", "check"] {
        std::fs::write(out(n), "").unwrap();
        sh(&format!("chmod 666 {}", out(n).display()));
    }
    let script = lab.write(
        "notify.sh",
        &format!(
            "#!/bin/sh\necho \"$(id -u) $(id -g)\" >> {}/out.$1\n",
            lab.dir.display()
        ),
    );
    sh(&format!("chmod 755 {}", script.display()));
    let unsafe_script = lab.write("unsafe.sh", &std::fs::read_to_string(&script).unwrap());
    sh(&format!("chmod 777 {}", unsafe_script.display()));
    let conf_text = |security: &str| {
        format!(
            "global_defs {{\n {security}\n script_user nobody\n}}\n\
             vrrp_script chk {{\n script \"{u} check\"\n interval 0.2\n weight -50\n user root\n}}\n{}{}",
            fast(instance(
                "VI_1",
                "va0",
                51,
                100,
                "10.70.0.100/24",
                &format!(
                    " version 3\n notify_master \"{s} default\"\n notify_backup \"{s} own\" nobody nogroup\n \
                     notify_fault \"{u} unsafe\" root\n track_script {{\n  chk\n }}\n",
                    s = script.display(),
                    u = unsafe_script.display()
                ),
            )),
            "",
            u = unsafe_script.display(),
        )
    };
    let conf = lab.write("a.conf", &conf_text("enable_script_security"));
    let pid = lab.start_vrrpd(&conf);
    lab.expect_on(
        "10.70.0.100",
        Some(&lab.a.clone()),
        Duration::from_secs(4),
        "master",
    );
    // A fault runs notify_fault: refused, so nothing is written.
    sh(&format!("ip -n {} link set va0 down", lab.a));
    std::thread::sleep(Duration::from_millis(500));
    sh(&format!("ip -n {} link set va0 up", lab.a));
    std::thread::sleep(Duration::from_millis(500));
    let st = lab.status();
    assert_eq!(
        st["instances"][0]["priority"], 100,
        "the refused check is not tracked: {st}"
    );
    kill("TERM", pid);
    lab.wait_gone(pid, Duration::from_secs(3));
    let read = |n: &str| std::fs::read_to_string(out(n)).unwrap();
    assert_eq!(
        read("default").lines().next(),
        Some("65534 65534"),
        "script_user nobody"
    );
    assert_eq!(
        read("own").lines().next(),
        Some("65534 65534"),
        "nobody nogroup"
    );
    assert_eq!(read("unsafe"), "", "refused notify script ran");
    assert_eq!(read("check"), "", "refused vrrp_script ran");
    let log = std::fs::read_to_string(lab.dir.join("vrrpd.log")).unwrap();
    assert!(
        log.contains("a.conf:") && log.contains("unsafe permissions"),
        "{log}"
    );
    assert!(
        log.contains("is writable by a non-root group or by everyone"),
        "{log}"
    );
    assert!(!log.contains("SECURITY VIOLATION"), "{log}");
    // Without enable_script_security the unsafe scripts run (as root), with the warning.
    std::fs::write(&conf, conf_text("")).unwrap();
    let pid = lab.start_vrrpd(&conf);
    let end = Instant::now() + Duration::from_secs(4);
    while read("check").is_empty() {
        assert!(
            Instant::now() < end,
            "the unsafe check runs without script security"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    kill("TERM", pid);
    lab.wait_gone(pid, Duration::from_secs(3));
    assert!(
        read("check").lines().all(|l| l == "0 0"),
        "{}",
        read("check")
    );
    let log = std::fs::read_to_string(lab.dir.join("vrrpd.log")).unwrap();
    assert!(
        log.contains("SECURITY VIOLATION - scripts are being executed but script_security not enabled. There are insecure scripts."),
        "{log}"
    );
}

/// A reload keeps what keepalived keeps: vrrpd is the VRRPv3 Master (priority 150) with keepalived
/// as Backup. Reloaded with another excluded address, a shorter `advert_int`, `nopreempt`, a
/// tracked script that fails (weight -10) and a new name, it stays Master without a state change
/// (keepalived never takes over, vrrpd's counters carry on): the kept address is never removed,
/// the dropped one is removed and the new one added (`ip monitor`), the adverts come at the new
/// interval and with the new priority. A new VRID (an identity change) starts the instance over:
/// priority 0, and keepalived takes over within Skew_Time.
#[test]
fn reload_keeps_state_and_applies_the_difference() {
    let Some(mut lab) = Lab::new("rl", 1) else {
        return;
    };
    let (a, b) = (lab.a.clone(), lab.b.clone());
    let ours = |name: &str, vrid: u8, vip: &str, excluded: &str, extra: &str| {
        format!(
            "vrrp_script chk {{\n script /bin/false\n interval 0.2\n}}\n{}",
            fast(instance(
                name,
                "va0",
                vrid,
                150,
                vip,
                &format!(" version 3\n virtual_ipaddress_excluded {{\n  {excluded}\n }}\n{extra}"),
            ))
        )
    };
    let conf = lab.write(
        "a.conf",
        &ours("VI_1", 51, "10.70.0.100/24", "10.70.0.102/24", ""),
    );
    let theirs = lab.write(
        "b.conf",
        &fast(instance(
            "VI_1",
            "vb0",
            51,
            100,
            "10.70.0.100/24",
            " version 3\n",
        )),
    );
    let pid = lab.start_vrrpd(&conf);
    lab.expect_on(
        "10.70.0.100",
        Some(&a),
        Duration::from_secs(4),
        "vrrpd master",
    );
    lab.start_keepalived(&theirs);
    std::thread::sleep(Duration::from_secs(2));
    lab.expect_on(
        "10.70.0.100",
        Some(&a),
        Duration::from_millis(10),
        "keepalived backup",
    );
    assert!(lab.has(&a, "10.70.0.102"));
    let mut monitor = std::process::Command::new("ip")
        .args(["-n", &a, "monitor", "address"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The monitor's lines, read as they come; a marker address on lo proves it listens before the
    // reload (on a loaded machine `ip` may subscribe only after the first reload is done).
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let seen = seen.clone();
        let out = monitor.stdout.take().unwrap();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let mut s = seen.lock().unwrap();
                s.push_str(&l);
                s.push('\n');
            }
        })
    };
    let end = Instant::now() + Duration::from_secs(10);
    while !seen.lock().unwrap().contains("192.0.2.77/32") {
        assert!(Instant::now() < end, "ip monitor never listened");
        sh(&format!("ip -n {a} addr replace 192.0.2.77/32 dev lo"));
        std::thread::sleep(Duration::from_millis(50));
        sh(&format!("ip -n {a} addr del 192.0.2.77/32 dev lo"));
    }
    let sent_before = lab.status()["instances"][0]["counters"]["sent"]
        .as_u64()
        .unwrap();
    std::fs::write(
        &conf,
        ours(
            "VI_R",
            51,
            "10.70.0.100/24",
            "10.70.0.101/24",
            " nopreempt\n track_script {\n  chk weight -10\n }\n",
        )
        .replace("advert_int 0.5", "advert_int 0.3"),
    )
    .unwrap();
    kill("HUP", pid);
    let end = Instant::now() + Duration::from_secs(3);
    while !lab.has(&a, "10.70.0.101") || lab.has(&a, "10.70.0.102") {
        assert!(Instant::now() < end, "addresses not applied");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    let st = lab.status();
    let i = &st["instances"][0];
    assert_eq!(i["name"], "VI_R", "{st}");
    assert_eq!(i["state"], "MASTER", "{st}");
    assert_eq!(i["priority"], 140, "the new tracked script applies: {st}");
    assert_eq!(i["counters"]["became_master"], 1, "{st}");
    assert!(
        i["counters"]["sent"].as_u64().unwrap() > sent_before,
        "{st}"
    );
    let frames: Vec<Frame> = vrrp_frames("br0", 1.0, 10)
        .into_iter()
        .filter(|f| f.src == "10.70.0.1")
        .collect();
    assert!(
        frames.len() >= 3 && frames.iter().all(|f| f.prio == 140),
        "adverts every 0.3 s with priority 140: {frames:?}"
    );
    // A new VRID: a new instance. The old one hands over with priority 0.
    std::fs::write(
        &conf,
        ours("VI_R", 53, "10.70.0.103/24", "10.70.0.101/24", ""),
    )
    .unwrap();
    kill("HUP", pid);
    lab.expect_on(
        "10.70.0.100",
        Some(&b),
        Duration::from_secs(2),
        "keepalived takes over",
    );
    lab.expect_on(
        "10.70.0.103",
        Some(&a),
        Duration::from_secs(4),
        "the new instance",
    );
    let _ = std::process::Command::new("kill")
        .arg(monitor.id().to_string())
        .status();
    let _ = monitor.wait();
    reader.join().unwrap();
    let events = seen.lock().unwrap().clone();
    let deleted = |addr: &str| {
        events
            .lines()
            .filter(|l| l.starts_with("Deleted") && l.contains(&format!(" {addr}/")))
            .count()
    };
    assert_eq!(deleted("10.70.0.102"), 1, "{events}");
    // .100 goes once, at the identity change, and never before.
    assert_eq!(deleted("10.70.0.100"), 1, "{events}");
    let first_100 = events
        .lines()
        .position(|l| l.starts_with("Deleted") && l.contains(" 10.70.0.100/"));
    let added_101 = events
        .lines()
        .position(|l| !l.starts_with("Deleted") && l.contains(" 10.70.0.101/"));
    assert!(added_101 < first_100, "{events}");
    let klog = std::fs::read_to_string(lab.dir.join("keepalived.log")).unwrap();
    assert_eq!(
        klog.matches("Entering MASTER STATE").count(),
        1,
        "keepalived became Master only at the identity change:\n{klog}"
    );
    kill("TERM", pid);
    lab.wait_gone(pid, Duration::from_secs(3));
}
