//! ctsync-proto codec and FT-FW session throughput, and an end-to-end comparison with conntrackd.
//!
//! `cargo bench -p benches --bench ctsync` (the peer comparison needs root, conntrackd and conntrack;
//! run only it with `cargo bench -p benches --bench ctsync -- peer`)
//!
//! Peer comparison (same run, same namespaces): a conntrackd 1.4.7 in namespace B replicates 20,000 UDP
//! entries loaded with `conntrack -R` over FT-FW to the receiver in namespace A, which is either a second
//! conntrackd (the peer) or our `session::Ftfw` on a UDP socket. Both receivers do the same work: take
//! the FT-FW stream, acknowledge it and keep the entries in an external cache (no commit to the kernel).
//! The time runs from the start of the load to the moment the receiver's external cache holds all 20,000
//! entries: conntrackd's is asked on its UNIX socket every 5 ms (the request `conntrackd -s cache` sends,
//! without a process per poll), ours is looked at between two receive waits of at most 5 ms. The sender
//! is the same in both, so the ratio is about the receiver. A warm-up round, then 5 rounds in which the
//! two receivers take turns at going first; a side that does not hold exactly 20,000 entries within 60 s
//! fails the bench instead of giving a timing.
//!
//! Each group measures a batch of 1000 conntrack entries shaped like what conntrackd 1.4.7 sends for an
//! established TCP flow with `TCPWindowTracking on` (addresses, status, protocol, ports, TCP state, both
//! window scales, timeout, mark, synproxy: 116 bytes), and a raw floor in the same run: copying the same
//! bytes with `copy_from_slice`. Nothing allocates per message (tests/alloc.rs in ctsync-proto proves it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{Criterion, Throughput, criterion_group};
use ctsync_proto::session::{Ftfw, FtfwConfig, Session};
use ctsync_proto::wire::{
    AddrPair, Body, Change, CtEntry, Flags, Message, Mode, PortPair, Synproxy, messages,
};
use std::hint::black_box;
use std::time::Instant;

const N: usize = 1000;

fn entry(i: usize) -> CtEntry {
    CtEntry {
        addrs: Some(AddrPair::V4 {
            src: [10, 0, (i >> 8) as u8, i as u8].into(),
            dst: [192, 168, 1, 20].into(),
        }),
        status: Some(ctnl::Status::from_bits_retain(0xc)),
        l4proto: Some(6),
        ports: Some(PortPair {
            sport: 40_000u16.wrapping_add(i as u16),
            dport: 80,
        }),
        tcp_state: Some(3),
        tcp_wscale_orig: Some(7),
        tcp_wscale_repl: Some(7),
        timeout: Some(300),
        mark: Some(0),
        synproxy: Some(Synproxy::default()),
        ..CtEntry::default()
    }
}

fn msgs() -> Vec<Message> {
    (0..N)
        .map(|i| Message {
            flags: Flags::NONE,
            seq: i as u32,
            body: Body::Ct(Change::Update, entry(i)),
        })
        .collect()
}

fn encoded(ms: &[Message]) -> Vec<u8> {
    let mut out = vec![0u8; ms.iter().map(Message::buffer_len).sum()];
    let mut off = 0;
    for m in ms {
        off += m.emit(&mut out[off..]).unwrap_or(0);
    }
    out
}

fn codec(c: &mut Criterion) {
    let ms = msgs();
    let bytes = encoded(&ms);
    let mut g = c.benchmark_group("ctsync");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("decode_1000_entries", |b| {
        b.iter(|| {
            let mut marks = 0u64;
            for m in messages(black_box(&bytes), Mode::Strict).flatten() {
                if let Body::Ct(_, e) = &m.body {
                    marks += u64::from(e.timeout.unwrap_or(0));
                }
            }
            black_box(marks)
        })
    });
    let mut out = vec![0u8; bytes.len()];
    g.bench_function("encode_1000_entries", |b| {
        b.iter(|| {
            let mut off = 0;
            for m in black_box(&ms) {
                off += m.emit(&mut out[off..]).unwrap_or(0);
            }
            black_box(off)
        })
    });
    g.bench_function("raw_floor_copy_1000_entries", |b| {
        b.iter(|| {
            // The same bytes copied message by message: what any codec must at least do.
            let mut off = 0;
            for m in black_box(&ms) {
                let n = m.buffer_len();
                out[off..off + n].copy_from_slice(&bytes[off..off + n]);
                off += n;
            }
            black_box(off)
        })
    });
    g.finish();
}

fn session(c: &mut Criterion) {
    let mut g = c.benchmark_group("ctsync_ftfw");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(30);
    let entries: Vec<CtEntry> = (0..N).map(entry).collect();
    g.bench_function("replicate_1000_entries_a_to_b", |b| {
        b.iter(|| {
            let now = Instant::now();
            let mut a = Ftfw::new(now, FtfwConfig::default());
            let mut bb = Ftfw::new(now, FtfwConfig::default());
            let mut buf = [0u8; 1472];
            for e in &entries {
                a.handle_local(now, Change::New, *e);
            }
            while let Some(n) = a.poll_transmit(now, &mut buf) {
                bb.handle_datagram(now, &buf[..n]);
            }
            while let Some(n) = bb.poll_transmit(now, &mut buf) {
                a.handle_datagram(now, &buf[..n]);
            }
            black_box(bb.external().len())
        })
    });
    g.finish();
}

criterion_group!(benches, codec, session);

mod peer {
    use ctsync_proto::session::{Ftfw, FtfwConfig, Session};
    use std::net::UdpSocket;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    const N: usize = 20_000;
    const ROUNDS: usize = 5;

    struct Lab {
        b: String,
        dir: std::path::PathBuf,
        daemons: Vec<Child>,
    }

    impl Lab {
        fn ip(&self, args: &str) -> std::process::Output {
            Command::new("sh")
                .arg("-c")
                .arg(format!("ip netns exec {} {args}", self.b))
                .output()
                .unwrap_or_else(|e| {
                    eprintln!("ip netns exec: {e}");
                    std::process::exit(1)
                })
        }
        fn start(&mut self, in_b: bool, conf: &str) {
            let mut c = if in_b {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &self.b, "conntrackd"]);
                c
            } else {
                Command::new("conntrackd")
            };
            let child = c
                .arg("-C")
                .arg(self.dir.join(conf))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            match child {
                Ok(ch) => self.daemons.push(ch),
                Err(e) => eprintln!("conntrackd: {e}"),
            }
            let ctl = self.dir.join(conf.replace(".conf", ".ctl"));
            let t = Instant::now();
            while !ctl.exists() && t.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        fn stop_all(&mut self) {
            for mut c in self.daemons.drain(..) {
                // Stop each conntrackd by its PID.
                let _ = Command::new("kill").arg(c.id().to_string()).status();
                let _ = c.wait();
            }
            for f in ["a.ctl", "b.ctl", "a.lock", "b.lock"] {
                let _ = std::fs::remove_file(self.dir.join(f));
            }
        }
    }

    impl Drop for Lab {
        fn drop(&mut self) {
            self.stop_all();
            let _ = Command::new("ip").args(["netns", "del", &self.b]).status();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn conf(dir: &std::path::Path, name: &str, local: &str, peer: &str, iface: &str) -> String {
        let d = dir.display();
        format!(
            "Sync {{\n Mode FTFW {{\n }}\n UDP {{\n IPv4_address {local}\n IPv4_Destination_Address {peer}\n \
             Port 3780\n Interface {iface}\n Checksum on\n }}\n}}\nGeneral {{\n Systemd off\n HashSize 32768\n \
             HashLimit 131072\n LogFile {d}/{name}.log\n Syslog off\n LockFile {d}/{name}.lock\n \
             UNIX {{\n Path {d}/{name}.ctl\n }}\n NetlinkBufferSize 2097152\n \
             NetlinkBufferSizeMaxGrowth 8388608\n}}\n"
        )
    }

    fn external_active(out: &[u8]) -> usize {
        String::from_utf8_lossy(out)
            .lines()
            .find(|l| l.starts_with("cache:external"))
            .and_then(|l| l.split_whitespace().last().and_then(|n| n.parse().ok()))
            .unwrap_or(0)
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    /// How long a side may take before the run is declared broken (no timing is accepted from it).
    const LIMIT: Duration = Duration::from_secs(60);

    /// Starts the load in B (`conntrack -R` of the N entries) and returns its child.
    fn start_load(lab: &Lab, load: &str) -> std::process::Child {
        Command::new("sh")
            .arg("-c")
            .arg(format!("ip netns exec {} {load}", lab.b))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the load: {e}"))
    }

    fn finish_load(mut loader: std::process::Child) {
        let st = loader.wait().unwrap_or_else(|e| panic!("load: {e}"));
        assert!(st.success(), "conntrack -R in B failed: {st}");
    }

    /// The `active objects` of conntrackd's external cache, asked on its UNIX socket as `conntrackd -s
    /// cache` does (request 29, STATS_CACHE, as a native-endian int; the text reply ends at EOF), without
    /// starting a process per poll.
    fn conntrackd_external(ctl: &std::path::Path) -> usize {
        use std::io::{Read, Write};
        let Ok(mut s) = std::os::unix::net::UnixStream::connect(ctl) else {
            return 0;
        };
        let mut reply = Vec::new();
        if s.write_all(&29i32.to_ne_bytes()).is_err() || s.read_to_end(&mut reply).is_err() {
            return 0;
        }
        external_active(&reply)
    }

    /// UDP datagrams this namespace (A, the receivers') dropped for a full receive buffer so far
    /// (`RcvbufErrors` of `/proc/net/snmp`): a slow round with drops is an FT-FW recovery.
    fn rcvbuf_drops() -> u64 {
        let snmp = std::fs::read_to_string("/proc/self/net/snmp").unwrap_or_default();
        let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
        let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
            return 0;
        };
        names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(n, _)| *n == "RcvbufErrors")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0)
    }

    /// conntrackd (B) -> conntrackd (A): seconds from the start of the load until A's external cache
    /// holds all N entries (polled on its socket every 5 ms). Panics if it never does.
    fn receive_with_conntrackd(lab: &mut Lab, load: &str) -> f64 {
        lab.ip("conntrack -F >/dev/null 2>&1");
        lab.start(false, "a.conf");
        lab.start(true, "b.conf");
        std::thread::sleep(Duration::from_millis(1500));
        let ctl = lab.dir.join("a.ctl");
        let t0 = Instant::now();
        let loader = start_load(lab, load);
        let mut got = 0;
        while got < N && t0.elapsed() < LIMIT {
            std::thread::sleep(Duration::from_millis(5));
            got = conntrackd_external(&ctl);
        }
        let t = t0.elapsed().as_secs_f64();
        finish_load(loader);
        lab.stop_all();
        assert_eq!(
            got, N,
            "conntrackd received {got} of {N} entries in {LIMIT:?}"
        );
        t
    }

    /// conntrackd (B) -> our `session::Ftfw` on a UDP socket in A: seconds from the start of the load
    /// until its external cache holds all N entries. Panics if it never does.
    fn receive_with_ctsync(lab: &mut Lab, load: &str) -> Option<f64> {
        lab.ip("conntrack -F >/dev/null 2>&1");
        let sock = UdpSocket::bind("10.99.0.1:3780");
        if !testkit::require("a UDP socket on 10.99.0.1:3780", sock.is_ok()) {
            return None;
        }
        let sock = sock.ok()?;
        let _ = sock.set_read_timeout(Some(Duration::from_millis(5)));
        let mut s = Ftfw::new(Instant::now(), FtfwConfig::default());
        lab.start(true, "b.conf");
        let mut buf = [0u8; 65536];
        // The loop a daemon would run around the sans-IO core: wait up to 5 ms for a datagram, then take
        // every datagram already queued, feeding each to the session and sending what it has to send
        // (ACKs, NACKs) right after it; then the timers.
        let mut out = [0u8; 1472];
        let mut pump = |s: &mut Ftfw| {
            let mut transmit = |s: &mut Ftfw| {
                while let Some(n) = s.poll_transmit(Instant::now(), &mut out) {
                    let _ = sock.send_to(&out[..n], "10.99.0.2:3780");
                }
                while s.poll_action().is_some() {}
            };
            if let Ok((n, _)) = sock.recv_from(&mut buf) {
                s.handle_datagram(Instant::now(), &buf[..n]);
                transmit(s);
                let _ = sock.set_nonblocking(true);
                while let Ok((n, _)) = sock.recv_from(&mut buf) {
                    s.handle_datagram(Instant::now(), &buf[..n]);
                    transmit(s);
                }
                let _ = sock.set_nonblocking(false);
            }
            let now = Instant::now();
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
            transmit(s);
        };
        let warm = Instant::now();
        while warm.elapsed() < Duration::from_millis(1500) {
            pump(&mut s);
        }
        let t0 = Instant::now();
        let loader = start_load(lab, load);
        while s.external().len() < N && t0.elapsed() < LIMIT {
            pump(&mut s);
        }
        let t = t0.elapsed().as_secs_f64();
        finish_load(loader);
        lab.stop_all();
        let got = s.external().len();
        assert_eq!(
            got, N,
            "ctsync-proto received {got} of {N} entries in {LIMIT:?}"
        );
        Some(t)
    }

    pub fn run() {
        let filters: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with('-'))
            .collect();
        if !(filters.is_empty() || filters.iter().any(|f| f.contains("peer"))) {
            return;
        }
        // A failure in strict mode (`cargo xtask ci`), a counted skip otherwise.
        let met = testkit::is_root()
            && ["conntrackd", "conntrack", "ip"]
                .iter()
                .all(|t| testkit::which(t).is_some());
        if !testkit::require(
            "ctsync peer comparison: root, conntrackd, conntrack and ip",
            met,
        ) {
            return;
        }
        let Some(_ns) = testkit::netns() else { return };
        let dir = std::env::temp_dir().join(format!("ctsync-bench-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let mut lab = Lab {
            b: format!("ctsyncbench{}", std::process::id()),
            dir: dir.clone(),
            daemons: Vec::new(),
        };
        let setup = format!(
            "ip netns add {b} && ip -n {b} link set lo up && ip link add va type veth peer name vb netns {b} \
             && ip addr add 10.99.0.1/24 dev va && ip link set va up \
             && ip -n {b} addr add 10.99.0.2/24 dev vb && ip -n {b} link set vb up",
            b = lab.b
        );
        let set_up = Command::new("sh")
            .arg("-c")
            .arg(&setup)
            .status()
            .is_ok_and(|s| s.success());
        if !testkit::require(
            "namespaces and veths for the ctsync peer comparison",
            set_up,
        ) {
            return;
        }
        let _ = std::fs::write(
            dir.join("a.conf"),
            conf(&dir, "a", "10.99.0.1", "10.99.0.2", "va"),
        );
        let _ = std::fs::write(
            dir.join("b.conf"),
            conf(&dir, "b", "10.99.0.2", "10.99.0.1", "vb"),
        );
        let mut rules = String::new();
        for i in 0..N {
            rules.push_str(&format!(
                "-I -p udp -s 10.{}.{}.{} -d 10.200.0.1 --sport 1000 --dport 53 -t 600\n",
                1 + i / 60_000,
                (i / 250) % 240,
                i % 250 + 1
            ));
        }
        let rfile = dir.join("rules.txt");
        let _ = std::fs::write(&rfile, rules);
        let load = format!("conntrack -R {} >/dev/null 2>&1", rfile.display());
        let (mut peer_t, mut ours_t) = (Vec::new(), Vec::new());
        let (mut peer_d, mut ours_d) = (Vec::new(), Vec::new());
        // Round 0 is a warm-up; then the receivers take turns at going first.
        for round in 0..=ROUNDS {
            let order = benches::order(round);
            for is_peer in order {
                let drops = rcvbuf_drops();
                let t = if is_peer {
                    receive_with_conntrackd(&mut lab, &load)
                } else {
                    let Some(t) = receive_with_ctsync(&mut lab, &load) else {
                        return;
                    };
                    t
                };
                let drops = rcvbuf_drops() - drops;
                if round > 0 {
                    if is_peer { &mut peer_t } else { &mut ours_t }.push(t);
                    if is_peer { &mut peer_d } else { &mut ours_d }.push(drops);
                }
            }
            benches::round_done(
                round,
                if order[0] {
                    "conntrackd"
                } else {
                    "ctsync-proto"
                },
            );
        }
        let (p, o) = (median(peer_t.clone()), median(ours_t.clone()));
        println!(
            "ctsync peer comparison: {N} UDP entries, conntrackd (B) -> receiver (A) over FT-FW, {ROUNDS} rounds"
        );
        println!(
            "  receiver conntrackd 1.4.7: median {:.3} s  (rounds {peer_t:.3?})",
            p
        );
        println!(
            "  receiver ctsync-proto Ftfw: median {:.3} s  (rounds {ours_t:.3?})",
            o
        );
        println!("  conntrackd / ctsync-proto = {:.2}x", p / o);
        println!(
            "  datagrams dropped by a full receive buffer in A, per round: conntrackd {peer_d:?}, ctsync-proto {ours_d:?}"
        );
    }
}

fn main() {
    println!("{}", benches::context("ctsync"));
    peer::run();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
