//! keepalived 2.2.7, live, on the behaviours this crate copies from it where the RFCs leave a choice:
//! a Master answers a lower-priority advert with its own at once (RFC 9568 §6.4.3; keepalived's default,
//! hence `Config::answer_lower_priority` defaulting to true), and does not with `lower_prio_no_advert`.
//! The crate's router is then shown the same captured lower-priority advert and must answer it too.
//!
//! Layout: keepalived "A" (priority 200, VRID 62 default, VRID 63 `lower_prio_no_advert`) runs in this
//! test thread's namespace on `va`; keepalived "B" (priority 100, both VRIDs) in a named namespace
//! `vrrp-ans-PID` on `vb`, whose nftables input drops VRRP, so B never hears A and stays Master. A hears
//! B's lower-priority adverts once a second. tshark captures on `vb` (before B's input filter). About
//! 9 s; keepalived and tshark stopped by PID, the named namespace deleted, whatever happens.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vrrp_proto::{Action, Config, Router, State};

fn conf(router_id: &str, iface: &str, priority: u8) -> String {
    let inst = |vrid: u8, extra: &str| {
        format!(
            "vrrp_instance V{vrid} {{\n version 3\n interface {iface}\n virtual_router_id {vrid}\n \
             priority {priority}\n advert_int 1\n{extra} virtual_ipaddress {{\n  10.79.0.{vrid}/24\n }}\n}}\n"
        )
    };
    format!(
        "global_defs {{\n router_id {router_id}\n}}\n{}{}",
        inst(62, ""),
        inst(63, " lower_prio_no_advert\n")
    )
}

/// (time, source, vrid, priority, VRRP bytes) of each captured advert.
type Advert = (f64, IpAddr, u8, u8, Vec<u8>);

fn read_capture(tshark: &std::path::Path, pcap: &std::path::Path) -> Vec<Advert> {
    common::tshark_json(tshark, pcap)
        .as_array()
        .unwrap()
        .iter()
        .map(|pkt| {
            let l = &pkt["_source"]["layers"];
            let t: f64 = l["frame"]["frame.time_relative"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            let src: IpAddr = l["ip"]["ip.src"].as_str().unwrap().parse().unwrap();
            let bytes = hex::decode(l["vrrp_raw"][0].as_str().unwrap()).unwrap();
            (t, src, bytes[1], bytes[2], bytes)
        })
        .collect()
}

/// How many of B's adverts (after A took over) A followed within 50 ms with one of its own.
fn answered(adverts: &[Advert], vrid: u8, a: IpAddr, b: IpAddr) -> (usize, usize) {
    let of = |who: IpAddr| -> Vec<f64> {
        adverts
            .iter()
            .filter(|x| x.2 == vrid && x.1 == who && x.3 != 0)
            .map(|x| x.0)
            .collect()
    };
    let (from_a, from_b) = (of(a), of(b));
    let Some(&a_first) = from_a.first() else {
        return (0, 0);
    };
    let heard: Vec<f64> = from_b.into_iter().filter(|&t| t > a_first).collect();
    let answers = heard
        .iter()
        .filter(|&&t| from_a.iter().any(|&ta| ta > t && ta - t < 0.05))
        .count();
    (answers, heard.len())
}

#[test]
fn keepalived_master_answers_lower_priority_adverts_by_default() {
    let Some(ns) = testkit::netns() else { return };
    let (Some(keepalived), Some(tshark), Some(_nft)) = (
        testkit::require_tool("keepalived"),
        testkit::require_tool("tshark"),
        testkit::require_tool("nft"),
    ) else {
        return;
    };
    let mut guard = common::cleanup("vrrp-ans");
    let (peer, dir) = (guard.netns.clone(), guard.dir.clone());
    common::veth_to_peer(&ns, &peer);
    ns.sh("ip addr add 10.79.0.1/24 dev va && ip link set va up");
    ns.sh(&format!(
        "ip -n {peer} addr add 10.79.0.2/24 dev vb && ip -n {peer} link set vb up"
    ));
    // B never hears A: it stays Master and keeps sending its lower-priority adverts to A.
    ns.sh(&format!(
        "printf 'table inet deaf {{\\n chain i {{\\n type filter hook input priority 0; ip protocol 112 drop\\n }}\\n}}\\n' \
         | ip netns exec {peer} nft -f -"
    ));

    let pcap = dir.join("cap.pcapng");
    common::start_tshark(&mut guard, &tshark, "ip proto 112", &pcap);

    let mut start = |name: &str, iface: &str, priority: u8, netns: Option<&str>| {
        let path = dir.join(format!("{name}.conf"));
        std::fs::write(&path, conf(name, iface, priority)).unwrap();
        let mut cmd = match netns {
            Some(n) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", n]).arg(&keepalived);
                c
            }
            None => Command::new(&keepalived),
        };
        let child = cmd
            .arg("-f")
            .arg(&path)
            .args(["-n", "-l", "-D", "-p"])
            .arg(dir.join(format!("{name}.pid")))
            .arg("-r")
            .arg(dir.join(format!("{name}-vrrp.pid")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        guard.children.insert(0, child);
    };
    start("A", "va", 200, None);
    start("B", "vb", 100, Some(&peer));
    // Both take over after about 3.2 s (A) and 3.6 s (B); then 4 to 5 of B's adverts reach A.
    std::thread::sleep(Duration::from_millis(8500));
    // tshark stops by itself at 9 s; keepalived is stopped by the guard.
    common::wait_exit(
        guard.children.last_mut().unwrap(),
        Duration::from_secs(8),
        "tshark",
    );

    let adverts = read_capture(&tshark, &pcap);
    let (a, b) = ("10.79.0.1".parse().unwrap(), "10.79.0.2".parse().unwrap());
    let (answers, heard) = answered(&adverts, 62, a, b);
    eprintln!("VRID 62 (default): A answered {answers} of B's {heard} adverts");
    assert!(
        heard >= 3,
        "too few adverts from B after A took over: {heard}"
    );
    assert!(
        answers + 1 >= heard,
        "keepalived (default) answered {answers} of {heard} lower-priority adverts"
    );
    let (answers, heard) = answered(&adverts, 63, a, b);
    eprintln!("VRID 63 (lower_prio_no_advert): A answered {answers} of B's {heard} adverts");
    assert!(
        heard >= 3,
        "too few adverts from B after A took over: {heard}"
    );
    assert!(
        answers <= 1,
        "keepalived with lower_prio_no_advert answered {answers} of {heard}"
    );

    // The crate's router, configured like A's VRID 62, answers the same captured advert.
    let (_, _, _, _, lower) = adverts
        .iter()
        .find(|x| x.2 == 62 && x.1 == b && x.3 == 100)
        .unwrap()
        .clone();
    let mut cfg = Config::new("va", 62, vec!["10.79.0.62".parse().unwrap()]);
    cfg.priority = 200;
    let mut r = Router::new(cfg, a).unwrap();
    let t0 = Instant::now();
    r.handle_command(t0, vrrp_proto::Command::Startup);
    r.handle_timeout(r.poll_timeout().unwrap());
    assert_eq!(r.state(), State::Master);
    while r.poll_action().is_some() {}
    let at = t0 + Duration::from_secs(4);
    r.handle_packet(at, b, "224.0.0.18".parse().unwrap(), 255, &lower)
        .unwrap();
    let sent: Vec<Action> = std::iter::from_fn(|| r.poll_action()).collect();
    assert!(
        matches!(&sent[..], [Action::SendAdvert(adv)] if adv.repr.priority == 200),
        "{sent:?}"
    );
}
