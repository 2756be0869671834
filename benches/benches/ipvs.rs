//! IPVS: restore and list 5,000 services x 4 destinations, our `ipvsadm` vs Debian's ipvsadm 1.31 vs a raw
//! netlink floor, plus the effect of the receive buffer size on dumps. Needs IPVS, so it runs inside the
//! VM: `cargo xtask vm-bench` (prints SKIP and exits 0 elsewhere).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ipvs_nl::{Destination, FwdMethod, Ipvs, Op, Options, Protocol, Service, ServiceKey};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_GENERIC};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SERVICES: u32 = 5000;
const DESTS: u32 = 4;

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

fn restore_text() -> String {
    let mut s = String::new();
    for i in 0..SERVICES {
        let a = svc_addr(i);
        s.push_str(&format!("-A -t {a}:80 -s wlc\n"));
        for j in 0..DESTS {
            s.push_str(&format!(
                "-a -t {a}:80 -r {}:8080 -m -w 1\n",
                dest_addr(i, j)
            ));
        }
    }
    s
}

fn ops() -> Vec<Op> {
    let mut v = Vec::new();
    for i in 0..SERVICES {
        let key = ServiceKey::Inet {
            protocol: Protocol::Tcp,
            addr: IpAddr::V4(svc_addr(i)),
            port: 80,
        };
        v.push(Op::AddService(Service::new(key)));
        for j in 0..DESTS {
            let mut d = Destination::new(IpAddr::V4(dest_addr(i, j)), 8080);
            d.fwd = FwdMethod::Masq;
            v.push(Op::AddDest(key, d));
        }
    }
    v
}

fn run_tool(tool: &str, args: &[&str], stdin: Option<&str>) -> Duration {
    let t = Instant::now();
    let mut child = Command::new(tool)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let el = t.elapsed();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{tool} {args:?}: {out:?}"
    );
    el
}

fn count(ipvs: &mut Ipvs) -> (usize, usize) {
    let svcs: Vec<Service> = ipvs.services().unwrap().collect::<Result<_, _>>().unwrap();
    let mut d = 0;
    for s in &svcs {
        d += ipvs.destinations(&s.key).unwrap().count();
    }
    (svcs.len(), d)
}

/// The raw floor: one socket, requests pre-built, 128 per datagram, acks counted without decoding.
fn raw_restore(family: u16, ops: &[Op]) -> Duration {
    let mut sock = Socket::new(NETLINK_GENERIC).unwrap();
    sock.bind_auto().unwrap();
    sock.connect(&SocketAddr::new(0, 0)).unwrap();
    let _ = sock.set_cap_ack(true);
    let _ = sock.set_rx_buf_sz(4 << 20);
    let mut datagrams = Vec::new();
    for (n, chunk) in ops.chunks(128).enumerate() {
        let mut b = Vec::new();
        for (i, op) in chunk.iter().enumerate() {
            let mut payload = vec![0u8; op.buffer_len()];
            op.emit(&mut payload).unwrap();
            raw::message(
                &mut b,
                family,
                raw::NLM_F_REQUEST | raw::NLM_F_ACK,
                (n * 128 + i + 1) as u32,
                &payload,
            );
        }
        datagrams.push((b, chunk.len()));
    }
    let mut buf = vec![0u8; 65536];
    let t = Instant::now();
    for (b, n) in &datagrams {
        sock.send(b, 0).unwrap();
        let mut acks = 0;
        while acks < *n {
            let mut s: &mut [u8] = &mut buf[..];
            let len = sock.recv(&mut s, 0).unwrap();
            acks += raw::messages(&buf[..len]).count();
        }
    }
    t.elapsed()
}

/// The raw floor of `-S -n`: a service dump, then one destination dump per service, messages counted
/// (service keys are taken from the bytes, nothing else is decoded).
fn raw_list(family: u16, recv_len: usize) -> (Duration, usize) {
    let mut sock = Socket::new(NETLINK_GENERIC).unwrap();
    sock.bind_auto().unwrap();
    sock.connect(&SocketAddr::new(0, 0)).unwrap();
    let mut buf = vec![0u8; recv_len];
    let t = Instant::now();
    let dump = |sock: &mut Socket, buf: &mut Vec<u8>, c: u8, key: Option<&[u8]>| -> Vec<Vec<u8>> {
        let mut payload = vec![c, raw::IPVS_GENL_VERSION, 0, 0];
        if let Some(k) = key {
            // The service's nested attributes, copied verbatim from the service dump.
            raw::attr(&mut payload, raw::IPVS_CMD_ATTR_SERVICE | 0x8000, k);
        }
        let mut req = Vec::new();
        raw::message(
            &mut req,
            family,
            raw::NLM_F_REQUEST | raw::NLM_F_DUMP,
            1,
            &payload,
        );
        sock.send(&req, 0).unwrap();
        let mut out = Vec::new();
        loop {
            let mut s: &mut [u8] = &mut buf[..];
            let len = sock.recv(&mut s, 0).unwrap();
            for (kind, payload) in raw::messages(&buf[..len]) {
                if kind == raw::NLMSG_DONE {
                    return out;
                }
                let nested = raw::find_attr(&payload[4..], raw::IPVS_CMD_ATTR_SERVICE);
                out.push(nested.unwrap_or_default().to_vec());
            }
        }
    };
    let services = dump(&mut sock, &mut buf, raw::IPVS_CMD_GET_SERVICE, None);
    let mut dests = 0;
    for s in &services {
        dests += dump(&mut sock, &mut buf, raw::IPVS_CMD_GET_DEST, Some(s)).len();
    }
    (t.elapsed(), services.len() + dests)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let ours = env_or("IPVS_BENCH_OURS", "/opt/project/bin/ipvsadm");
    let theirs = env_or("IPVS_BENCH_THEIRS", "/usr/sbin/ipvsadm");
    // testkit::require prints one SKIP line locally and fails under CI=true.
    let ipvs = Ipvs::open();
    if !testkit::require(
        "IPVS in this kernel (run `cargo xtask vm-bench`)",
        ipvs.is_ok(),
    ) {
        return;
    }
    if ipvs.is_err() {
        return;
    }
    let both = std::path::Path::new(&ours).exists() && std::path::Path::new(&theirs).exists();
    if !testkit::require(
        &format!("{ours} and {theirs} (run `cargo xtask vm-bench`)"),
        both,
    ) {
        return;
    }
    let rounds: usize = env_or("IPVS_BENCH_ROUNDS", "3").parse().unwrap_or(3);
    let family = raw::resolve_family();
    let text = restore_text();
    let ops = ops();
    println!(
        "IPVS bench: {SERVICES} services x {DESTS} destinations ({} restore lines), {rounds} rounds",
        ops.len()
    );

    let (mut r_theirs, mut r_ours, mut r_raw) = (Vec::new(), Vec::new(), Vec::new());
    let (mut l_theirs, mut l_ours, mut l_raw) = (Vec::new(), Vec::new(), Vec::new());
    let (mut s_theirs, mut s_ours) = (Vec::new(), Vec::new());
    let mut recv: Vec<(usize, Vec<Duration>, Vec<Duration>)> =
        [4096usize, 8192, 16384, 32768, 65536]
            .iter()
            .map(|l| (*l, Vec::new(), Vec::new()))
            .collect();
    for _ in 0..rounds {
        // Each restore starts in a fresh network namespace: IPVS keeps deleted destinations in a per-namespace
        // trash list that every later add walks, so re-using one namespace would bias whoever runs second.
        let t = in_fresh_ns(|| {
            let mut ipvs = Ipvs::open().unwrap();
            let r = run_tool(&theirs, &["-R"], Some(&text));
            assert_eq!(
                count(&mut ipvs),
                (SERVICES as usize, (SERVICES * DESTS) as usize)
            );
            // Listing, all three on the same table.
            let lt = run_tool(&theirs, &["-S", "-n"], None);
            let lo = run_tool(&ours, &["-S", "-n"], None);
            let (lr, n) = raw_list(family, 65536);
            assert_eq!(n, (SERVICES * (DESTS + 1)) as usize);
            // Process start-up plus one small request, for scale.
            let st = run_tool(&theirs, &["-L", "--timeout"], None);
            let so = run_tool(&ours, &["-L", "--timeout"], None);
            let mut bufs = Vec::new();
            for len in [4096usize, 8192, 16384, 32768, 65536] {
                let mut o = Options::default();
                o.recv_len = len;
                let mut h = Ipvs::open_with(&o).unwrap();
                let t0 = Instant::now();
                assert_eq!(h.services().unwrap().count(), SERVICES as usize);
                let svc = t0.elapsed();
                let t0 = Instant::now();
                assert_eq!(count(&mut h).1, (SERVICES * DESTS) as usize);
                bufs.push((svc, t0.elapsed()));
            }
            (r, lt, lo, lr, st, so, bufs)
        });
        r_theirs.push(t.0);
        l_theirs.push(t.1);
        l_ours.push(t.2);
        l_raw.push(t.3);
        s_theirs.push(t.4);
        s_ours.push(t.5);
        for (slot, (a, b)) in recv.iter_mut().zip(t.6) {
            slot.1.push(a);
            slot.2.push(b);
        }
        r_ours.push(in_fresh_ns(|| {
            let mut ipvs = Ipvs::open().unwrap();
            let r = run_tool(&ours, &["-R"], Some(&text));
            assert_eq!(
                count(&mut ipvs),
                (SERVICES as usize, (SERVICES * DESTS) as usize)
            );
            r
        }));
        r_raw.push(in_fresh_ns(|| {
            let mut ipvs = Ipvs::open().unwrap();
            let r = raw_restore(family, &ops);
            assert_eq!(
                count(&mut ipvs),
                (SERVICES as usize, (SERVICES * DESTS) as usize)
            );
            r
        }));
    }
    let (rt, ro, rr) = (median(r_theirs), median(r_ours), median(r_raw));
    let (lt, lo, lr) = (median(l_theirs), median(l_ours), median(l_raw));
    println!(
        "restore -R      : ipvsadm 1.31 {:9.1} ms | ours {:8.1} ms | raw floor {:8.1} ms | ours {:5.1}x faster, {:4.2}x the floor",
        ms(rt),
        ms(ro),
        ms(rr),
        ms(rt) / ms(ro),
        ms(ro) / ms(rr)
    );
    println!(
        "list -S -n      : ipvsadm 1.31 {:9.1} ms | ours {:8.1} ms | raw floor {:8.1} ms | ours {:5.1}x faster, {:4.2}x the floor",
        ms(lt),
        ms(lo),
        ms(lr),
        ms(lt) / ms(lo),
        ms(lo) / ms(lr)
    );
    println!(
        "start-up (-L --timeout): ipvsadm 1.31 {:6.1} ms | ours {:6.1} ms",
        ms(median(s_theirs)),
        ms(median(s_ours))
    );
    for (len, svc, all) in recv {
        println!(
            "recv buffer {len:>6} B: service dump {:8.1} ms | full listing (typed) {:8.1} ms",
            ms(median(svc)),
            ms(median(all))
        );
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

/// The raw floor's own netlink framing (from include/uapi/linux/netlink.h, genetlink.h and ip_vs.h):
/// ipvs-nl keeps its framing private, and a floor should not go through the code it is measured against.
mod raw {
    use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_GENERIC};

    pub const NLM_F_REQUEST: u16 = 0x1;
    pub const NLM_F_ACK: u16 = 0x4;
    pub const NLM_F_DUMP: u16 = 0x300;
    pub const NLMSG_DONE: u16 = 3;
    pub const IPVS_GENL_VERSION: u8 = 1;
    pub const IPVS_CMD_GET_SERVICE: u8 = 4;
    pub const IPVS_CMD_GET_DEST: u8 = 8;
    pub const IPVS_CMD_ATTR_SERVICE: u16 = 1;
    const GENL_ID_CTRL: u16 = 0x10;
    const CTRL_CMD_GETFAMILY: u8 = 3;
    const CTRL_ATTR_FAMILY_ID: u16 = 1;
    const CTRL_ATTR_FAMILY_NAME: u16 = 2;

    /// Appends one attribute (padded).
    pub fn attr(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
        out.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(value);
        out.resize(out.len().next_multiple_of(4), 0);
    }

    /// Appends one netlink message around a genetlink payload.
    pub fn message(out: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, payload: &[u8]) {
        out.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&flags.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(payload);
        out.resize(out.len().next_multiple_of(4), 0);
    }

    /// `(type, payload)` of each message of a datagram.
    pub fn messages(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
        std::iter::from_fn(move || {
            let len = u32::from_ne_bytes(buf.get(..4)?.try_into().ok()?) as usize;
            let kind = u16::from_ne_bytes(buf.get(4..6)?.try_into().ok()?);
            let payload = buf.get(16..len)?;
            buf = buf.get(len.next_multiple_of(4)..).unwrap_or_default();
            Some((kind, payload))
        })
    }

    /// The payload of the first attribute `kind` in `buf`.
    pub fn find_attr(mut buf: &[u8], kind: u16) -> Option<&[u8]> {
        while buf.len() >= 4 {
            let len = usize::from(u16::from_ne_bytes([buf[0], buf[1]]));
            let k = u16::from_ne_bytes([buf[2], buf[3]]) & 0x3fff;
            let value = buf.get(4..len)?;
            if k == kind {
                return Some(value);
            }
            buf = buf.get(len.next_multiple_of(4)..).unwrap_or_default();
        }
        None
    }

    /// The id of the "IPVS" generic netlink family.
    pub fn resolve_family() -> u16 {
        let mut sock = Socket::new(NETLINK_GENERIC).unwrap();
        sock.bind_auto().unwrap();
        sock.connect(&SocketAddr::new(0, 0)).unwrap();
        let mut payload = vec![CTRL_CMD_GETFAMILY, 1, 0, 0];
        attr(&mut payload, CTRL_ATTR_FAMILY_NAME, b"IPVS\0");
        let mut req = Vec::new();
        message(&mut req, GENL_ID_CTRL, NLM_F_REQUEST, 1, &payload);
        sock.send(&req, 0).unwrap();
        let mut buf = vec![0u8; 8192];
        let mut s: &mut [u8] = &mut buf[..];
        let len = sock.recv(&mut s, 0).unwrap();
        let (kind, payload) = messages(&buf[..len]).next().unwrap();
        assert_eq!(kind, GENL_ID_CTRL, "no IPVS family");
        let id = find_attr(&payload[4..], CTRL_ATTR_FAMILY_ID).unwrap();
        u16::from_ne_bytes([id[0], id[1]])
    }
}
