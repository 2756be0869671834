//! Expectations (`ExpectationSync on`): the kernel's ftp helper on the sending node creates an
//! expectation when a tiny FTP server answers PASV to a client in a third namespace; it must reach the
//! receiver's external expectation cache, and after `-c` the receiver's kernel must hold the master and
//! the expectation, the same as conntrackd -> conntrackd gives (`conntrack -L expect`, timeout removed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "ctsyncd/harness.rs"]
mod harness;

use harness::{Daemon, LinkKind, Opts, lab, ready, sh_ok};
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn norm(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(|l| {
            let l = l.find(" [active since").map_or(l, |i| &l[..i]);
            // The first field is the timeout, which counts down.
            l.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")
        })
        .filter(|l| !l.is_empty())
        .collect()
}

fn pair(sender: Daemon, receiver: Daemon) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut o = Opts::new("FTFW", LinkKind::Udp);
    o.options = "\t\tExpectationSync on".into();
    let lab = lab("ex", &[sender, receiver], &o);
    let (a, b) = (&lab.nodes[0], &lab.nodes[1]);
    // A third namespace, the FTP client, behind A.
    let c = format!("{}c", a.ns);
    sh_ok(&format!(
        "ip netns add {c} && ip -n {c} link set lo up && ip -n {} link add vc type veth peer name vd netns {c} && ip -n {} addr add 10.78.1.1/24 dev vc && ip -n {} link set vc up && ip -n {c} addr add 10.78.1.2/24 dev vd && ip -n {c} link set vd up",
        a.ns, a.ns, a.ns
    ));
    struct DelNs(String);
    impl Drop for DelNs {
        fn drop(&mut self) {
            let _ = harness::sh(&format!("ip netns del {}", self.0));
        }
    }
    let _c_guard = DelNs(c.clone());
    a.exec_ok("nft -f - <<'NFT'\ntable inet ftp {\n\tct helper ftp-standard {\n\t\ttype \"ftp\" protocol tcp;\n\t}\n\tchain pre {\n\t\ttype filter hook prerouting priority 0;\n\t\ttcp dport 21 ct helper set \"ftp-standard\"\n\t}\n}\nNFT");
    b.start();
    a.start();
    std::thread::sleep(Duration::from_millis(1500));
    let spawn = |ns: &str, code: &str| {
        Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", code])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    lab.helpers.borrow_mut().push(spawn(
        &a.ns,
        "import socket, time\ns = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('10.78.1.1', 21)); s.listen(1)\nc, _ = s.accept(); c.sendall(b'220 ready\\r\\n'); c.recv(100)\nc.sendall(b'227 Entering Passive Mode (10,78,1,1,195,80)\\r\\n'); time.sleep(30)\n",
    ));
    std::thread::sleep(Duration::from_millis(500));
    lab.helpers.borrow_mut().push(spawn(
        &c,
        "import socket, time\nc = socket.create_connection(('10.78.1.1', 21), source_address=('10.78.1.2', 47000)); c.recv(100); c.sendall(b'PASV\\r\\n'); c.recv(100); time.sleep(30)\n",
    ));
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut ext = BTreeSet::new();
    while Instant::now() < deadline {
        ext = norm(&b.client_ok("-e expect"));
        if !ext.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        ext.len(),
        1,
        "{sender:?} -> {receiver:?}: expectation not replicated"
    );
    // conntrackd 1.4.7's plain `-c` skips the expectations when the conntrack commit finishes in one
    // step (its second callback only runs from the multi-step path), so commit both tables explicitly.
    b.client_ok("-c ct");
    b.client_ok("-c expect");
    let committed = norm(&b.exec_ok("conntrack -L expect 2>/dev/null"));
    assert_eq!(
        committed.len(),
        1,
        "{sender:?} -> {receiver:?}: expectation not committed\n{}\n{}",
        b.exec_ok("conntrack -L 2>&1"),
        harness::log_of(&lab, 1)
    );
    (ext, committed)
}

#[test]
fn expectations_replicate_and_commit_like_conntrackd() {
    if !ready()
        || testkit::require_tool("nft").is_none()
        || testkit::require_tool("python3").is_none()
    {
        return;
    }
    let combos = [
        (Daemon::Conntrackd, Daemon::Conntrackd),
        (Daemon::Conntrackd, Daemon::Ctsyncd),
        (Daemon::Ctsyncd, Daemon::Conntrackd),
        (Daemon::Ctsyncd, Daemon::Ctsyncd),
    ];
    let out: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = combos
            .iter()
            .map(|(a, b)| s.spawn(move || pair(*a, *b)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (c, o) in combos.iter().zip(&out).skip(1) {
        assert_eq!(
            o.1, out[0].1,
            "{c:?}: committed expectation differs from conntrackd's"
        );
    }
}
