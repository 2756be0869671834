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
    kill("TERM", pid);
    lab.wait_gone(pid, Duration::from_secs(3));
    assert!(!sh(&format!("ip -n {a} -br link")).contains("vrrp."));
}
