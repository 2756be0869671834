//! IPVS: restore and list 5,000 services x 4 destinations, our `ipvsadm` against Debian's ipvsadm 1.31,
//! process against process, with the raw netlink floors of the same kernel work (`benches/src/ipvsraw.rs`,
//! nothing from ipvs-nl). Needs IPVS, so it runs inside the VM: `cargo xtask vm-bench [ROUNDS]`, which
//! rebuilds our release binaries and this bench first (a failure in strict mode elsewhere, as in any VM run;
//! a counted skip under plain `cargo bench`).
//!
//! A warm-up round, then `IPVS_BENCH_ROUNDS` (3) rounds; in each, ipvsadm 1.31 and ours take turns at going
//! first (odd rounds ipvsadm first):
//! * `-R` of the 25,000 lines, each side and the floor in a fresh network namespace (IPVS keeps deleted
//!   destinations in a per-namespace trash list that later adds walk); checked: the namespace then holds
//!   exactly 5,000 services and 20,000 destinations;
//! * `-S -n` on one table; checked: each side printed 25,000 lines, and the two printed the same bytes
//!   (an order-free checksum of the lines);
//! * the listing floor: the service dump, then one destination dump per service, over a grid of receive
//!   sizes for each and with or without `recvmmsg`; the floor is the fastest point of the grid (medians),
//!   and the whole grid is printed;
//! * start-up: `-L --timeout`, one small request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use benches::ipvsraw::{self, RawIpvs, TcpService};
use benches::{Digest, median, ms, peer_first, run_timed};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const SERVICES: u32 = 5000;
const DESTS: u32 = 4;
/// Receive sizes of the listing floor's grid: service dump, destination dumps.
const SVC_LENS: [usize; 3] = [16 << 10, 32 << 10, 64 << 10];
const DEST_LENS: [usize; 3] = [4 << 10, 8 << 10, 32 << 10];

fn env_or(k: &str, d: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| d.to_string())
}

fn svc_addr(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, 1 + (i >> 16) as u8, (i >> 8) as u8, i as u8)
}

fn dest_addr(i: u32, j: u32) -> Ipv4Addr {
    let n = i * DESTS + j;
    Ipv4Addr::new(10, 100 + (n >> 16) as u8, (n >> 8) as u8, n as u8)
}

fn services() -> Vec<TcpService> {
    (0..SERVICES)
        .map(|i| TcpService {
            addr: svc_addr(i),
            port: 80,
            scheduler: "wlc".into(),
            dests: (0..DESTS).map(|j| (dest_addr(i, j), 8080, 1)).collect(),
        })
        .collect()
}

fn restore_text(services: &[TcpService]) -> String {
    let mut s = String::new();
    for svc in services {
        s.push_str(&format!(
            "-A -t {}:{} -s {}\n",
            svc.addr, svc.port, svc.scheduler
        ));
        for (a, p, w) in &svc.dests {
            s.push_str(&format!(
                "-a -t {}:{} -r {a}:{p} -m -w {w}\n",
                svc.addr, svc.port
            ));
        }
    }
    s
}

/// `(services, destinations)` in the calling thread's namespace, counted with the raw floor.
fn count() -> (usize, usize) {
    let (_, s, d) = ipvsraw::list(64 << 10, 8 << 10, true).unwrap();
    (s, d)
}

const FULL: (usize, usize) = (SERVICES as usize, (SERVICES * DESTS) as usize);

struct Tool<'a> {
    name: &'static str,
    exe: &'a str,
}

/// Runs `tool ARGS` (stdin from `stdin` or /dev/null, stdout to `out`); fails unless it exits 0 with an
/// empty stderr.
fn run(tool: &Tool<'_>, args: &[&str], stdin: Option<&Path>, out: &Path) -> Duration {
    let mut c = Command::new(tool.exe);
    c.args(args);
    match stdin {
        Some(p) => c.stdin(std::fs::File::open(p).unwrap()),
        None => c.stdin(std::process::Stdio::null()),
    };
    let t = run_timed(&mut c, out);
    assert!(
        t.status.success() && t.stderr.is_empty(),
        "{} {args:?}: {} {}",
        tool.name,
        t.status,
        t.stderr
    );
    t.wall
}

fn main() {
    let ours = env_or("IPVS_BENCH_OURS", "/opt/project/bin/ipvsadm");
    let theirs = env_or("IPVS_BENCH_THEIRS", "/usr/sbin/ipvsadm");
    let have_ipvs = RawIpvs::open(4096).is_ok();
    if !testkit::require(
        "IPVS in this kernel (run `cargo xtask vm-bench`)",
        have_ipvs,
    ) {
        return;
    }
    let both = Path::new(&ours).exists() && Path::new(&theirs).exists();
    if !testkit::require(
        &format!("{ours} and {theirs} (run `cargo xtask vm-bench`)"),
        both,
    ) {
        return;
    }
    let peer = Tool {
        name: "ipvsadm 1.31",
        exe: &theirs,
    };
    let mine = Tool {
        name: "ours",
        exe: &ours,
    };
    let rounds: usize = env_or("IPVS_BENCH_ROUNDS", "3").parse().unwrap_or(3);
    let services = services();
    let tmp = std::env::temp_dir().join(format!("ipvs-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let rfile = tmp.join("restore.txt");
    std::fs::write(&rfile, restore_text(&services)).unwrap();
    let out = tmp.join("stdout");
    println!("{}", benches::context("ipvs"));
    println!(
        "IPVS bench: {SERVICES} services x {DESTS} destinations ({} restore lines), warm-up + {rounds} rounds",
        SERVICES * (DESTS + 1)
    );

    let (mut r_theirs, mut r_ours, mut r_raw) = (Vec::new(), Vec::new(), Vec::new());
    let (mut l_theirs, mut l_ours) = (Vec::new(), Vec::new());
    let (mut s_theirs, mut s_ours) = (Vec::new(), Vec::new());
    let grid: Vec<(usize, usize, bool)> = SVC_LENS
        .iter()
        .flat_map(|s| {
            DEST_LENS
                .iter()
                .flat_map(move |d| [(*s, *d, false), (*s, *d, true)])
        })
        .collect();
    let mut floor: Vec<Vec<Duration>> = vec![Vec::new(); grid.len()];
    for round in 0..=rounds {
        let keep = round > 0;
        let sides = if peer_first(round) {
            [(&peer, true), (&mine, false)]
        } else {
            [(&mine, false), (&peer, true)]
        };
        // --- restore, each in a fresh namespace ---
        for (tool, is_peer) in sides {
            let t = in_fresh_ns(|| {
                let t = run(tool, &["-R"], Some(&rfile), &out);
                assert_eq!(count(), FULL, "{} -R", tool.name);
                t
            });
            if keep {
                if is_peer { &mut r_theirs } else { &mut r_ours }.push(t);
            }
        }
        let raw = in_fresh_ns(|| {
            let mut sock = RawIpvs::open(64 << 10).unwrap();
            let datagrams = ipvsraw::restore_datagrams(sock.family, &services, 128);
            let t = std::time::Instant::now();
            sock.restore(&datagrams).unwrap();
            let t = t.elapsed();
            assert_eq!(count(), FULL, "raw restore");
            t
        });
        if keep {
            r_raw.push(raw);
        }

        // --- listing, start-up and the floor grid, all on one table ---
        in_fresh_ns(|| {
            assert!(run(&mine, &["-R"], Some(&rfile), &out) > Duration::ZERO);
            let mut seen: Option<Digest> = None;
            for (tool, is_peer) in sides {
                let t = run(tool, &["-S", "-n"], None, &out);
                let d = Digest::of_file(&out, None);
                assert_eq!(
                    d.lines,
                    FULL.0 + FULL.1,
                    "{} -S -n printed {} lines",
                    tool.name,
                    d.lines
                );
                assert_eq!(*seen.get_or_insert(d), d, "-S -n: the two tools differ");
                let st = run(tool, &["-L", "--timeout"], None, &out);
                if keep {
                    if is_peer { &mut l_theirs } else { &mut l_ours }.push(t);
                    if is_peer { &mut s_theirs } else { &mut s_ours }.push(st);
                }
            }
            for (i, (s, d, mmsg)) in grid.iter().enumerate() {
                let (t, svcs, dests) = ipvsraw::list(*s, *d, *mmsg).unwrap();
                assert_eq!((svcs, dests), FULL, "floor listing");
                if keep {
                    floor[i].push(t);
                }
            }
        });
        benches::round_done(round, sides[0].0.name);
    }
    std::fs::remove_dir_all(&tmp).ok();

    let med = |v: &mut Vec<Duration>| median(v).unwrap();
    let floors: Vec<Duration> = floor.iter_mut().map(med).collect();
    let (best, lr) = floors
        .iter()
        .copied()
        .enumerate()
        .min_by_key(|(_, d)| *d)
        .unwrap();
    let (rt, ro, rr) = (med(&mut r_theirs), med(&mut r_ours), med(&mut r_raw));
    let (lt, lo) = (med(&mut l_theirs), med(&mut l_ours));
    println!(
        "restore -R      : ipvsadm 1.31 {:9.1} ms | ours {:8.1} ms | raw floor {:8.1} ms | ours {:5.1}x faster, {:4.2}x the floor",
        ms(rt),
        ms(ro),
        ms(rr),
        ms(rt) / ms(ro),
        ms(ro) / ms(rr)
    );
    let (s, d, mmsg) = grid[best];
    println!(
        "list -S -n      : ipvsadm 1.31 {:9.1} ms | ours {:8.1} ms | raw floor {:8.1} ms | ours {:5.1}x faster, {:4.2}x the floor",
        ms(lt),
        ms(lo),
        ms(lr),
        ms(lt) / ms(lo),
        ms(lo) / ms(lr)
    );
    println!(
        "  the floor is the fastest of the grid: service dump {} KiB, destination dumps {} KiB, {}",
        s >> 10,
        d >> 10,
        if mmsg { "recvmmsg" } else { "recv" }
    );
    println!(
        "start-up (-L --timeout): ipvsadm 1.31 {:6.1} ms | ours {:6.1} ms",
        ms(med(&mut s_theirs)),
        ms(med(&mut s_ours))
    );
    println!("listing floor grid (median ms): service KiB x destination KiB, recv / recvmmsg");
    for (i, (s, d, mmsg)) in grid.iter().enumerate() {
        if !mmsg {
            println!(
                "  {:>3} x {:>3}: {:8.1} / {:8.1}",
                s >> 10,
                d >> 10,
                ms(floors[i]),
                ms(floors[i + 1])
            );
        }
    }
}

/// Runs `f` on a new thread inside a fresh network namespace (lo up, 10.0.0.254/8 on it so the
/// destinations are routable); the namespace and its IPVS tables vanish with the thread.
fn in_fresh_ns<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|sc| {
        sc.spawn(move || {
            let ns = testkit::netns().expect("root, for a network namespace");
            ns.sh("ip addr add 10.0.0.254/8 dev lo");
            f()
        })
        .join()
        .unwrap()
    })
}
