//! Our `conntrack` on the real kernel, each test in a fresh network namespace: the 50,000-event burst, `-R`
//! files (twin tables against conntrack-tools, and a bad line applying nothing), labels, `-o json`, broken
//! pipes, the man page and completions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const OURS: &str = env!("CARGO_BIN_EXE_conntrack");

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"))
}

fn count(bin: &str) -> usize {
    String::from_utf8_lossy(&run(bin, &["-C"]).stdout)
        .trim()
        .parse()
        .unwrap()
}

fn creates(n: usize, base: u32) -> String {
    let mut s = String::new();
    for i in 0..n as u32 {
        let a = base + i;
        s.push_str(&format!(
            "-I -p udp -s 10.{}.{}.{} -d 10.255.0.1 --sport {} --dport 53 -t 120\n",
            (a >> 16) & 0xff,
            (a >> 8) & 0xff,
            a & 0xff,
            1024 + (i % 60000)
        ));
    }
    s
}

#[test]
fn events_burst_of_50000_creates_all_printed() {
    let Some(_ns) = testkit::netns() else { return };
    let dir = std::env::temp_dir().join(format!("ctcli-ev-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("burst.txt");
    std::fs::write(&file, creates(50_000, 0)).unwrap();
    let mut child = Command::new(OURS)
        .args(["-E", "-e", "NEW", "-b", "67108864"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The NOTICE line is printed once the event socket is subscribed and sized.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut notice = String::new();
    err.read_line(&mut notice).unwrap();
    assert!(
        notice.starts_with("NOTICE: Netlink socket buffer size has been set to"),
        "{notice}"
    );
    let out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut n = 0usize;
        let mut lines = BufReader::new(out).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        while n < 50_000 && Instant::now() < deadline {
            match lines.next() {
                Some(Ok(l)) => {
                    assert!(l.starts_with("    [NEW] udp      17 "), "{l}");
                    n += 1;
                }
                _ => break,
            }
        }
        n
    });
    let r = run(OURS, &["-R", file.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let start = Instant::now();
    while !reader.is_finished() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Stop the listener by its PID; then the reader sees EOF.
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    let n = reader.join().unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut err, &mut rest);
    assert!(!rest.contains("ENOBUFS"), "overrun reported: {rest}");
    assert_eq!(n, 50_000, "events printed");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn load_file_twin_tables_and_bad_line_applies_nothing() {
    let Some(real) = testkit::require_tool("conntrack") else {
        return;
    };
    let real = real.display().to_string();
    let dir = std::env::temp_dir().join(format!("ctcli-r-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.txt");
    let mut text = creates(2000, 1 << 16);
    text.push_str("# a comment\n\n-I -p tcp -s 10.9.9.9 -d 10.9.9.8 --sport 1 --dport 2 -t 50 --state ESTABLISHED\n");
    text.push_str("-D -p udp -s 10.1.0.5\n-A -p udp -s 10.1.0.6 -d 10.255.0.1 --sport 1030 --dport 53 -t 120\n");
    std::fs::write(&good, &text).unwrap();
    let tables: Vec<(String, Output)> = [real.clone(), OURS.to_string()]
        .into_iter()
        .map(|tool| {
            let g = good.clone();
            let real = real.clone();
            std::thread::spawn(move || {
                let _ns = testkit::netns().expect("namespace");
                let o = run(&tool, &["-R", g.to_str().unwrap()]);
                let l = run(&real, &["-L", "-o", "save"]);
                let mut v: Vec<String> = String::from_utf8_lossy(&l.stdout)
                    .lines()
                    .map(|s| s.split_whitespace().skip(3).collect::<Vec<_>>().join(" "))
                    .collect();
                v.sort();
                (v.join("\n"), o)
            })
            .join()
            .unwrap()
        })
        .collect();
    assert_eq!(tables[0].0, tables[1].0, "tables after -R differ");
    assert_eq!(tables[0].1.status.code(), tables[1].1.status.code());
    assert_eq!(tables[0].0.lines().count(), 2000);

    let Some(_ns) = testkit::netns() else { return };
    let bad = dir.join("bad.txt");
    std::fs::write(
        &bad,
        format!(
            "{}-I -p udp -s 10.0.0.300 -d 1.1.1.1 --sport 1 --dport 2 -t 5\n",
            creates(2, 5 << 16)
        ),
    )
    .unwrap();
    let o = run(OURS, &["-R", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("line 3: Invalid IP address `10.0.0.300'"), "{e}");
    assert_eq!(count(OURS), 0, "nothing applied");
    let o = run(OURS, &["-R", dir.join("missing").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn labels_with_connlabel_conf() {
    let Some(nft) = testkit::require_tool("nft") else {
        return;
    };
    let Some(ns) = testkit::netns() else { return };
    // The kernel attaches labels only once a ruleset uses them (net->ct.labels_used).
    ns.sh(&format!(
        "{0} add table ip lbl && {0} add chain ip lbl c '{{ type filter hook prerouting priority 0; }}' && {0} add rule ip lbl c ct label set 127",
        nft.display()
    ));
    let dir = std::env::temp_dir().join(format!("ctcli-l-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("connlabel.conf");
    std::fs::write(&conf, "0 eth0-in\n1 eth1-in\n5 vip\n").unwrap();
    let with_map = |args: &[&str]| {
        Command::new(OURS)
            .env("CONNTRACK_CONNLABEL_CONF", &conf)
            .args(args)
            .output()
            .unwrap()
    };
    let base = [
        "-p", "udp", "-s", "10.0.0.1", "-d", "10.0.0.2", "--sport", "1", "--dport", "2", "-t", "60",
    ];
    let mut a = vec!["-I"];
    a.extend(base);
    a.extend(["--label-add", "eth0-in,vip"]);
    let o = with_map(&a);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let l = with_map(&["-L", "-o", "labels"]);
    let s = String::from_utf8_lossy(&l.stdout);
    assert!(s.trim_end().ends_with("use=1 labels=eth0-in,vip"), "{s}");
    assert_eq!(
        with_map(&["-L", "-l", "vip"])
            .stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
        1
    );
    assert_eq!(with_map(&["-L", "-l", "eth1-in"]).stdout.len(), 0);
    let u = with_map(&["-U", "-s", "10.0.0.1", "--label-add", "eth1-in"]);
    assert!(u.status.success(), "{}", String::from_utf8_lossy(&u.stderr));
    let s = String::from_utf8_lossy(&with_map(&["-L", "-o", "labels"]).stdout).to_string();
    assert!(s.contains("labels=eth0-in,eth1-in,vip"), "{s}");
    let u = with_map(&["-U", "-s", "10.0.0.1", "--label-del", "eth0-in"]);
    assert!(u.status.success(), "{}", String::from_utf8_lossy(&u.stderr));
    let s = String::from_utf8_lossy(&with_map(&["-L", "-o", "labels"]).stdout).to_string();
    assert!(s.contains("labels=eth1-in,vip"), "{s}");
    let bad = with_map(&["-L", "-l", "nope"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown label 'nope'"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn json_one_object_per_entry() {
    let Some(ns) = testkit::netns() else { return };
    ns.sysctl("net/netfilter/nf_conntrack_acct", "1");
    for a in [
        "-I -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 5 --dport 80 -t 60 --state ESTABLISHED -u SEEN_REPLY,ASSURED -m 0xffffffff",
        "-I -p icmp -s 10.0.0.1 -d 10.0.0.3 --icmp-type 8 --icmp-code 0 --icmp-id 4 -t 30 -w 2",
        "-I -p udp -s fd00::1 -d fd00::2 --sport 7 --dport 53 -t 60",
    ] {
        let args: Vec<&str> = a.split(' ').collect();
        assert!(run(OURS, &args).status.success(), "{a}");
    }
    let o = run(OURS, &["-L", "-o", "json"]);
    let text = String::from_utf8(o.stdout).unwrap();
    let objs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objs.len(), 3);
    let tcp = objs
        .iter()
        .find(|v| v["original"]["proto"] == "tcp")
        .unwrap();
    assert_eq!(tcp["family"], "ipv4");
    assert_eq!(tcp["original"]["dport"], 80);
    assert_eq!(tcp["reply"]["sport"], 80);
    assert_eq!(tcp["state"], "ESTABLISHED");
    assert_eq!(tcp["mark"], 0xffff_ffffu32);
    assert!(
        tcp["status_flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "ASSURED")
    );
    assert_eq!(tcp["counters_original"]["packets"], 0);
    assert!(tcp["timeout"].as_u64().unwrap() <= 60);
    let icmp = objs
        .iter()
        .find(|v| v["original"]["proto"] == "icmp")
        .unwrap();
    assert_eq!(icmp["original"]["icmp_type"], 8);
    assert_eq!(icmp["reply"]["icmp_type"], 0);
    assert_eq!(icmp["zone"], 2);
    let v6 = objs.iter().find(|v| v["family"] == "ipv6").unwrap();
    assert_eq!(v6["original"]["src"], "fd00::1");
    assert!(v6.get("reply").is_some());
}

#[test]
fn broken_pipe_ends_quietly() {
    let Some(_ns) = testkit::netns() else { return };
    let dir = std::env::temp_dir().join(format!("ctcli-p-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("f.txt");
    std::fs::write(&f, creates(5000, 7 << 16)).unwrap();
    assert!(run(OURS, &["-R", f.to_str().unwrap()]).status.success());
    let mut child = Command::new(OURS)
        .arg("-L")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut out = child.stdout.take().unwrap();
        let mut first = [0u8; 16];
        std::io::Read::read_exact(&mut out, &mut first).unwrap();
        // Closing our end makes the next write fail with EPIPE.
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "", "nothing on stderr");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn man_page_and_completions_generated() {
    let man = run(OURS, &["--generate-man"]);
    let m = String::from_utf8_lossy(&man.stdout);
    assert!(
        m.starts_with(".ie") || m.contains(".TH conntrack"),
        "{}",
        &m[..m.len().min(200)]
    );
    for opt in ["src\\-nat", "buffer\\-size", "label\\-add", "orig\\-zone"] {
        assert!(m.contains(opt), "man page lacks {opt}");
    }
    for sh in ["bash", "zsh", "fish"] {
        let c = run(OURS, &["--generate-completions", sh]);
        assert!(c.status.success());
        assert!(
            String::from_utf8_lossy(&c.stdout).contains("any-nat"),
            "{sh}"
        );
    }
    let mut bad = Command::new(OURS)
        .args(["--generate-completions", "tcsh"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    bad.stdout.flush().unwrap();
}
