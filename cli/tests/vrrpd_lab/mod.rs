//! The lab of the vrrpd tests (`vrrpd_keepalived.rs`, `vrrpd_features.rs`): a LAN bridge in the test
//! thread's namespace (which is also the client), vrrpd in namespace A, keepalived in namespace B,
//! names unique per run.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub struct Lab {
    /// The run's unique suffix (in every name the lab creates).
    pub id: String,
    /// How many LANs (bridges `br0`..).
    pub links: u8,
    pub a: String,
    pub b: String,
    pub dir: PathBuf,
    pub keepalived: Option<Child>,
    pub ipexec: Vec<Child>,
    pub ns: testkit::NetNs,
}

pub fn sh(cmd: &str) -> String {
    let o = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        o.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn vrrpd_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vrrpd"))
}

impl Lab {
    /// `links` LANs: bridge brN here, vaN in A, vbN in B; A has 10.7N.0.1, B .2, the client .9.
    pub fn new(tag: &str, links: u8) -> Option<Lab> {
        testkit::require_tool("keepalived")?;
        let ns = testkit::netns()?;
        let id = format!(
            "{tag}{}{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
                % 100_000
        );
        let (a, b) = (format!("vd-a-{id}"), format!("vd-b-{id}"));
        let dir = std::env::temp_dir().join(format!("vrrpd-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let lab = Lab {
            id: id.clone(),
            links,
            a: a.clone(),
            b: b.clone(),
            dir,
            keepalived: None,
            ipexec: Vec::new(),
            ns,
        };
        for n in ["a", "b"] {
            let name = if n == "a" { &a } else { &b };
            lab.ns
                .sh(&format!("ip netns add {name}; ip -n {name} link set lo up"));
        }
        for l in 0..links {
            lab.ns.sh(&format!(
                "ip link add br{l} type bridge && ip link set br{l} up && ip addr add 10.7{l}.0.9/24 dev br{l} && \
                 ip link add va{l} netns {a} type veth peer name pa{l} && ip link set pa{l} master br{l} up && \
                 ip link add vb{l} netns {b} type veth peer name pb{l} && ip link set pb{l} master br{l} up && \
                 ip -n {a} addr add 10.7{l}.0.1/24 dev va{l} && ip -n {a} link set va{l} up && \
                 ip -n {b} addr add 10.7{l}.0.2/24 dev vb{l} && ip -n {b} link set vb{l} up"
            ));
            // The client learns from gratuitous ARP without asking first (Linux only updates an
            // existing entry unless arp_accept is set).
            lab.ns
                .sysctl(&format!("net/ipv4/conf/br{l}/arp_accept"), "1");
        }
        Some(lab)
    }

    pub fn has(&self, ns: &str, addr: &str) -> bool {
        sh(&format!("ip -n {ns} -br addr")).contains(&format!(" {addr}/"))
    }

    /// Waits until `addr` is on exactly `want` (A or B, or none), up to `limit`.
    pub fn expect_on(&self, addr: &str, want: Option<&str>, limit: Duration, what: &str) {
        let end = Instant::now() + limit;
        loop {
            let on_a = self.has(&self.a, addr);
            let on_b = self.has(&self.b, addr);
            let ok = match want {
                Some(w) if w == self.a => on_a && !on_b,
                Some(_) => on_b && !on_a,
                None => !on_a && !on_b,
            };
            if ok {
                return;
            }
            assert!(
                Instant::now() < end,
                "{what}: {addr} on A={on_a} B={on_b}, wanted {want:?}\nvrrpd log:\n{}",
                std::fs::read_to_string(self.dir.join("vrrpd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn start_keepalived(&mut self, conf: &Path) {
        let d = &self.dir;
        // keepalived refuses to start ("daemon is already running") while a process, even a zombie,
        // has a pid from its pid files: after a SIGKILL the orphaned VRRP child stays a zombie until
        // init reaps it (here up to about 2 s). Wait for a killed predecessor to be gone.
        for f in ["ka.pid", "ka-vrrp.pid"] {
            let pid = std::fs::read_to_string(d.join(f)).unwrap_or_default();
            let Ok(pid) = pid.trim().parse::<u32>() else {
                continue;
            };
            let end = Instant::now() + Duration::from_secs(10);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.b,
                "keepalived",
                "-n",
                "-l",
                "-D",
                "-P",
                "-f",
            ])
            .arg(conf)
            .arg("-p")
            .arg(d.join("ka.pid"))
            .arg("-r")
            .arg(d.join("ka-vrrp.pid"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("keepalived.log")).unwrap())
            .spawn()
            .unwrap();
        self.keepalived = Some(child);
    }

    /// keepalived's VRRP child pid (for SIGSTOP) and main pid.
    pub fn keepalived_pids(&self) -> (u32, u32) {
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            let main = std::fs::read_to_string(self.dir.join("ka.pid")).unwrap_or_default();
            let vrrp = std::fs::read_to_string(self.dir.join("ka-vrrp.pid")).unwrap_or_default();
            if let (Ok(m), Ok(v)) = (main.trim().parse(), vrrp.trim().parse()) {
                return (m, v);
            }
            assert!(Instant::now() < end, "keepalived pid files");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts vrrpd in A; returns its pid (`ip netns exec` forks, so it is found in A's pid list).
    pub fn start_vrrpd(&mut self, conf: &Path) -> u32 {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("vrrpd.log"))
            .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.a])
            .arg(vrrpd_bin())
            .arg("-f")
            .arg(conf)
            .arg("--socket")
            .arg(self.socket())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.ipexec.push(child);
        self.vrrpd_pid().expect("vrrpd did not start")
    }

    pub fn vrrpd_pid(&self) -> Option<u32> {
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            for p in sh(&format!("ip netns pids {}", self.a)).split_whitespace() {
                let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
                if comm.trim() == "vrrpd" {
                    return p.parse().ok();
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("vrrpd.sock")
    }

    pub fn wait_gone(&self, pid: u32, limit: Duration) {
        let end = Instant::now() + limit;
        while Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ")
        {
            assert!(Instant::now() < end, "process {pid} did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
        for c in &mut self.ipexec.iter() {
            let _ = c.id();
        }
    }

    pub fn status(&self) -> serde_json::Value {
        // Right after a start the control socket may not be there yet.
        let end = Instant::now() + Duration::from_secs(3);
        loop {
            let o = Command::new(vrrpd_bin())
                .args(["status", "--json", "--socket"])
                .arg(self.socket())
                .output()
                .unwrap();
            if o.status.success() {
                return serde_json::from_slice(&o.stdout).unwrap();
            }
            assert!(
                Instant::now() < end,
                "{}\nvrrpd log:\n{}",
                String::from_utf8_lossy(&o.stderr),
                std::fs::read_to_string(self.dir.join("vrrpd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The client's neighbour entry for `addr` (its MAC), if any.
    pub fn client_neigh(&self, addr: &str) -> Option<String> {
        let out = sh(&format!("ip neigh show {addr}"));
        out.split_whitespace()
            .skip_while(|w| *w != "lladdr")
            .nth(1)
            .map(str::to_owned)
    }

    pub fn mac(&self, ns: &str, ifname: &str) -> String {
        let out = sh(&format!("ip -n {ns} -br link show {ifname}"));
        out.split_whitespace().nth(2).unwrap().to_owned()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for p in sh(&format!("ip netns pids {} 2>/dev/null || true", self.a)).split_whitespace() {
            let _ = Command::new("kill").arg("-9").arg(p).status();
        }
        if let Some(k) = &mut self.keepalived {
            for p in sh(&format!("ip netns pids {} 2>/dev/null || true", self.b)).split_whitespace()
            {
                let _ = Command::new("kill").arg("-CONT").arg(p).status();
            }
            let _ = Command::new("kill").arg(k.id().to_string()).status();
            let end = Instant::now() + Duration::from_secs(3);
            while Instant::now() < end && matches!(k.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = k.kill();
            let _ = k.wait();
        }
        for c in &mut self.ipexec {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.a]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.b]).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn instance(name: &str, ifname: &str, vrid: u8, prio: u8, vip: &str, extra: &str) -> String {
    format!(
        "vrrp_instance {name} {{\n interface {ifname}\n virtual_router_id {vrid}\n priority {prio}\n advert_int 1\n{extra} virtual_ipaddress {{\n  {vip}\n }}\n}}\n"
    )
}

pub fn kill(sig: &str, pid: u32) {
    sh(&format!("kill -{sig} {pid}"));
}

/// Sends raw VRRP payloads from namespace `ns` on `dev` to 224.0.0.18 with `ttl` (python3, raw socket).
pub fn send_raw(ns: &str, dev: &str, ttl: u8, payloads: &[Vec<u8>]) {
    let hexes: Vec<String> = payloads.iter().map(|p| hex_of(p)).collect();
    let py = format!(
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_RAW,112)\n\
         s.setsockopt(socket.SOL_SOCKET,25,b'{dev}')\n\
         s.setsockopt(socket.IPPROTO_IP,socket.IP_MULTICAST_TTL,{ttl})\n\
         for h in {hexes:?}:\n    s.sendto(bytes.fromhex(h),('224.0.0.18',0))\n"
    );
    let o = Command::new("ip")
        .args(["netns", "exec", ns, "python3", "-c", &py])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

pub fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A valid VRRPv2 advert (no auth) for `vrid` with `prio`, one address.
pub fn v2_advert(vrid: u8, prio: u8, vip: [u8; 4]) -> Vec<u8> {
    let mut m = vec![0x21, vrid, prio, 1, 0, 1, 0, 0];
    m.extend_from_slice(&vip);
    m.extend_from_slice(&[0; 8]);
    let mut sum: u32 = m
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let ck = !(sum as u16);
    m[6..8].copy_from_slice(&ck.to_be_bytes());
    m
}

/// Waits until A's and B's IPv6 link-local addresses on `va0` / `vb0` have passed DAD.
pub fn wait_link_local(lab: &Lab) {
    let end = Instant::now() + Duration::from_secs(5);
    for (ns, dev) in [(&lab.a, "va0"), (&lab.b, "vb0")] {
        loop {
            let out = sh(&format!("ip -n {ns} -6 addr show dev {dev} scope link"));
            if out.contains("fe80") && !out.contains("tentative") {
                break;
            }
            assert!(Instant::now() < end, "no link-local address: {out}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One VRRP frame seen on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Ethernet source.
    pub mac: String,
    /// IP source.
    pub src: String,
    /// VRID.
    pub vrid: u8,
    /// Priority.
    pub prio: u8,
}

/// The VRRP frames (IPv4 and IPv6) crossing `dev` of the test's namespace during `secs` seconds
/// (an AF_PACKET socket in python3), up to `max` of them.
pub fn vrrp_frames(dev: &str, secs: f64, max: usize) -> Vec<Frame> {
    let py = format!(
        "import socket,struct,time\n\
         s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW,socket.htons(3))\n\
         s.bind(('{dev}',0))\n\
         end=time.time()+{secs}\n\
         n=0\n\
         while n<{max}:\n\
         \x20left=end-time.time()\n\
         \x20if left<=0: break\n\
         \x20s.settimeout(left)\n\
         \x20try: f,a=s.recvfrom(4096)\n\
         \x20except socket.timeout: break\n\
         \x20et=struct.unpack('!H',f[12:14])[0]\n\
         \x20if et==0x0800 and f[23]==112:\n\
         \x20\x20o=14+(f[14]&15)*4\n\
         \x20\x20print(f[6:12].hex(':'),socket.inet_ntoa(f[26:30]),f[o+1],f[o+2],flush=True); n+=1\n\
         \x20elif et==0x86dd and f[20]==112:\n\
         \x20\x20print(f[6:12].hex(':'),socket.inet_ntop(socket.AF_INET6,f[22:38]),f[55],f[56],flush=True); n+=1\n"
    );
    let o = Command::new("python3").args(["-c", &py]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            Some(Frame {
                mac: (*w.first()?).to_owned(),
                src: (*w.get(1)?).to_owned(),
                vrid: w.get(2)?.parse().ok()?,
                prio: w.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

/// `net.ipv4.conf.IFACE.KEY` in namespace `ns`.
pub fn ipv4_conf(ns: &str, iface: &str, key: &str) -> u32 {
    sh(&format!(
        "ip netns exec {ns} cat /proc/sys/net/ipv4/conf/{iface}/{key}"
    ))
    .trim()
    .parse()
    .unwrap()
}

/// The state of each instance as keepalived last logged it (`(NAME) Entering X STATE`).
pub fn keepalived_states(log: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for l in log.lines() {
        let Some(open) = l.find("(") else { continue };
        let Some(close) = l[open..].find(") Entering ") else {
            continue;
        };
        let name = &l[open + 1..open + close];
        let rest = &l[open + close + ") Entering ".len()..];
        if let Some(state) = rest.split_whitespace().next() {
            out.insert(name.to_owned(), state.to_owned());
        }
    }
    out
}

/// vrrpd's state of each instance, from `status`.
pub fn vrrpd_states(st: &serde_json::Value) -> std::collections::BTreeMap<String, String> {
    st["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_owned(),
                i["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Starts a python3 AF_PACKET capture of ARP and ICMPv6 neighbour advertisements on `dev` of the
/// test's namespace for `secs` seconds; [`announcements`] reads what it saw.
pub fn capture_announcements(dev: &str, secs: f64) -> Child {
    let py = format!(
        "import socket,struct,time\n\
         s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW,socket.htons(3))\n\
         s.bind(('{dev}',0))\n\
         s.setsockopt(socket.SOL_SOCKET,35,1)\n\
         end=time.time()+{secs}\n\
         print('ready',flush=True)\n\
         while True:\n\
         \x20left=end-time.time()\n\
         \x20if left<=0: break\n\
         \x20s.settimeout(left)\n\
         \x20try: f,anc,fl,a=s.recvmsg(4096,64)\n\
         \x20except socket.timeout: break\n\
         \x20if a[2]==socket.PACKET_OUTGOING: continue\n\
         \x20t=time.time()\n\
         \x20for lv,ty,d in anc:\n\
         \x20\x20if lv==socket.SOL_SOCKET and ty==35: sec,ns=struct.unpack('qq',d[:16]); t=sec+ns/1e9\n\
         \x20et=struct.unpack('!H',f[12:14])[0]\n\
         \x20if et==0x0806:\n\
         \x20\x20print('%.6f arp %s %s'%(t,f[6:12].hex(':'),socket.inet_ntoa(f[28:32])),flush=True)\n\
         \x20elif et==0x86dd and f[20]==58 and f[54]==136:\n\
         \x20\x20print('%.6f na %s %s'%(t,f[6:12].hex(':'),socket.inet_ntop(socket.AF_INET6,f[62:78])),flush=True)\n"
    );
    let mut c = Command::new("python3")
        .args(["-c", &py])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the socket to be open.
    let mut out = c.stdout.take().unwrap();
    let mut b = [0u8; 6];
    std::io::Read::read_exact(&mut out, &mut b).unwrap();
    assert_eq!(&b, b"ready\n");
    c.stdout = Some(out);
    c
}

/// One announcement seen: time (s), `arp` or `na`, source MAC, address announced.
#[derive(Debug, Clone, PartialEq)]
pub struct Announcement {
    /// When the kernel received it (`SO_TIMESTAMPNS`), seconds.
    pub t: f64,
    /// `arp` or `na`.
    pub kind: String,
    /// Ethernet source.
    pub mac: String,
    /// The address.
    pub addr: String,
}

/// What a [`capture_announcements`] child saw (waits for it to end).
pub fn announcements(c: Child) -> Vec<Announcement> {
    let o = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            Some(Announcement {
                t: w.first()?.parse().ok()?,
                kind: (*w.get(1)?).to_owned(),
                mac: (*w.get(2)?).to_owned(),
                addr: (*w.get(3)?).to_owned(),
            })
        })
        .collect()
}

/// Now, in seconds since the epoch (the clock of tshark's `frame.time_epoch`).
pub fn epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// One VRRP advert seen by a [`Watch`].
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// When the observer's kernel received it (`frame.time_epoch`).
    pub t: f64,
    /// VRRP version (2 or 3).
    pub version: u8,
    /// tshark's checksum verdict: 1 good, 0 bad, 2 unverified.
    pub checksum: u8,
    /// Who sent it, for which VRID, with which priority.
    pub frame: Frame,
}

/// tshark in a third namespace (`vd-w-ID`) with a veth on each of the lab's bridges, capturing
/// VRRP (IPv4 and IPv6) for the whole test and dissecting each advert as it arrives. The bridges
/// are made hubs (no MAC learning, no multicast snooping) so unicast adverts reach it too.
pub struct Watch {
    pub ns: String,
    child: Child,
    seen: Arc<Mutex<Vec<Seen>>>,
    stderr: Arc<Mutex<String>>,
}

/// How long after the address is seen on the new master an advert from the old one may still be
/// timestamped by the observer (a send just before the state change, delivered late at load).
pub const GRACE: f64 = 0.2;

impl Lab {
    /// Starts the observer; `None` (a skip, or a failure under `cargo xtask ci`) without tshark.
    pub fn watch(&self) -> Option<Watch> {
        let tshark = testkit::require_tool("tshark")?;
        let w = format!("vd-w-{}", self.id);
        sh(&format!("ip netns add {w} && ip -n {w} link set lo up"));
        let mut args: Vec<String> = ["-n", "-l", "-f", "ip proto 112 or ip6 proto 112"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        for l in 0..self.links {
            self.ns.sh(&format!(
                "ip link set br{l} type bridge ageing_time 0 mcast_snooping 0 && \
                 ip link add pw{l} type veth peer name vw{l} netns {w} && ip link set pw{l} master br{l} up && \
                 ip netns exec {w} sysctl -qw net.ipv6.conf.vw{l}.disable_ipv6=1 && ip -n {w} link set vw{l} up"
            ));
            args.extend(["-i".to_owned(), format!("vw{l}")]);
        }
        args.extend(["-T", "fields"].map(str::to_owned));
        for f in [
            "frame.time_epoch",
            "eth.src",
            "ip.src",
            "ipv6.src",
            "vrrp.version",
            "vrrp.virt_rtr_id",
            "vrrp.prio",
            "vrrp.checksum.status",
        ] {
            args.extend(["-e".to_owned(), f.to_owned()]);
        }
        // `ip netns exec` execs tshark, so the child's pid is tshark's (stopped by that pid); its
        // temporary capture file goes in the lab's directory.
        let mut child = Command::new("ip")
            .args(["netns", "exec", &w])
            .arg(tshark)
            .args(&args)
            .env("TMPDIR", &self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().unwrap();
        let sink = Arc::clone(&seen);
        let odd = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let f: Vec<&str> = line.split('\t').collect();
                let parsed = (|| {
                    Some(Seen {
                        t: f.first()?.parse().ok()?,
                        version: f.get(4)?.parse().ok()?,
                        checksum: f.get(7)?.parse().ok()?,
                        frame: Frame {
                            mac: (*f.get(1)?).to_owned(),
                            src: [f.get(2)?, f.get(3)?]
                                .into_iter()
                                .find(|s| !s.is_empty())?
                                .to_string(),
                            vrid: f.get(5)?.parse().ok()?,
                            prio: f.get(6)?.parse().ok()?,
                        },
                    })
                })();
                match parsed {
                    Some(p) => sink.lock().unwrap().push(p),
                    None => odd
                        .lock()
                        .unwrap()
                        .push_str(&format!("unparsed tshark line: {line:?}\n")),
                }
            }
        });
        let err = child.stderr.take().unwrap();
        let log = Arc::clone(&stderr);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if line.contains("Capturing on") {
                    let _ = tx.send(());
                }
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let watch = Watch {
            ns: w,
            child,
            seen,
            stderr,
        };
        // tshark takes a while to load its dissectors, longer at load; nothing is missed after it
        // says "Capturing on".
        assert!(
            rx.recv_timeout(Duration::from_secs(60)).is_ok(),
            "tshark did not start: {}",
            watch.stderr.lock().unwrap()
        );
        Some(watch)
    }
}

impl Watch {
    /// Every advert seen so far for `vrid`.
    pub fn adverts(&self, vrid: u8) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.frame.vrid == vrid)
            .cloned()
            .collect()
    }

    /// Waits until tshark has reported an advert (of any VRID) stamped after `t`, so that every
    /// advert up to `t` is in; panics after 10 s.
    fn caught_up(&self, t: f64, what: &str) {
        assert!(
            !self.stderr.lock().unwrap().contains("unparsed"),
            "{what}: {}",
            self.dump()
        );
        let end = Instant::now() + Duration::from_secs(10);
        while !self.seen.lock().unwrap().iter().any(|s| s.t > t) {
            assert!(
                Instant::now() < end,
                "{what}: the observer saw nothing after {t:.3}\n{}",
                self.dump()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What was seen, for failure messages.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for s in self.seen.lock().unwrap().iter() {
            out.push_str(&format!(
                "{:.3} v{} ck{} {} {} vrid {} prio {}\n",
                s.t, s.version, s.checksum, s.frame.mac, s.frame.src, s.frame.vrid, s.frame.prio
            ));
        }
        out.push_str(&self.stderr.lock().unwrap());
        out
    }

    /// The steady state from `from` until now (extended to at least `from + 1.5 x interval`): every
    /// advert of `want.vrid` is exactly `want` (sender MAC and address, priority), of `version`,
    /// with a good checksum, and the master sent at about its rate (at most two intervals missing,
    /// at least one advert). Returns the end of the window.
    pub fn only(&self, from: f64, want: &Frame, version: u8, interval: f64, what: &str) -> f64 {
        let to = epoch().max(from + 1.5 * interval);
        let wait = to - epoch();
        if wait > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(wait));
        }
        self.caught_up(to, what);
        let window: Vec<Seen> = self
            .adverts(want.vrid)
            .into_iter()
            .filter(|s| s.t >= from && s.t <= to)
            .collect();
        let fail = |why: &str| {
            panic!(
                "{what}: {why} in [{from:.3}, {to:.3}], wanted only {want:?} v{version}\n{}",
                self.dump()
            )
        };
        if let Some(s) = window
            .iter()
            .find(|s| s.frame != *want || s.version != version || s.checksum != 1)
        {
            fail(&format!("{s:?}"));
        }
        let least = (((to - from) / interval).floor() as usize)
            .saturating_sub(2)
            .max(1);
        if window.len() < least {
            fail(&format!("{} adverts, fewer than {least}", window.len()));
        }
        to
    }

    /// A takeover that started at `from` (the step that stops `old`): waits up to `limit` for the
    /// first advert of `new`, and checks that until then only `old` (at its priority, or at 0)
    /// spoke; with `graceful`, `old` must have sent priority 0 before `new`'s first advert. Returns
    /// the time of that first advert.
    pub fn takeover(
        &self,
        from: f64,
        old: &Frame,
        new: &Frame,
        graceful: bool,
        limit: Duration,
        what: &str,
    ) -> f64 {
        let end = Instant::now() + limit;
        let first = loop {
            if let Some(s) = self
                .adverts(new.vrid)
                .into_iter()
                .find(|s| s.t >= from && s.frame == *new)
            {
                break s.t;
            }
            assert!(
                Instant::now() < end,
                "{what}: no advert {new:?} since {from:.3}\n{}",
                self.dump()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let before: Vec<Seen> = self
            .adverts(new.vrid)
            .into_iter()
            .filter(|s| s.t >= from && s.t < first)
            .collect();
        let zero = Frame {
            prio: 0,
            ..old.clone()
        };
        if let Some(s) = before.iter().find(|s| s.frame != *old && s.frame != zero) {
            panic!("{what}: {s:?} before {new:?} took over\n{}", self.dump());
        }
        assert!(
            !graceful || before.iter().any(|s| s.frame == zero),
            "{what}: no priority 0 from {old:?} before {new:?} took over\n{}",
            self.dump()
        );
        first
    }
}

impl Watch {
    /// Nothing on the wire from any of `macs` since `from` (checks what tshark reported so far).
    pub fn silent_since(&self, from: f64, macs: &[&str], what: &str) {
        if let Some(s) = self
            .seen
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.t >= from && macs.contains(&s.frame.mac.as_str()))
        {
            panic!("{what}: {s:?} after {from:.3}\n{}", self.dump());
        }
    }

    /// `old` was killed at `killed`: nothing from it since (no priority 0), and the new master's
    /// first advert (`first`) came at least `at_least` s after `old`'s last one
    /// (Master_Down_Interval less a margin).
    pub fn after_kill(&self, killed: f64, old: &Frame, first: f64, at_least: f64, what: &str) {
        self.silent_since(killed, &[&old.mac], what);
        let last = self
            .adverts(old.vrid)
            .iter()
            .filter(|s| s.frame == *old)
            .map(|s| s.t)
            .fold(0.0, f64::max);
        assert!(
            first - last >= at_least,
            "{what}: the new master's first advert {:.3} s after the last of {old:?}\n{}",
            first - last,
            self.dump()
        );
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // tshark's dumpcap child, should it outlive tshark.
        for p in sh(&format!("ip netns pids {} 2>/dev/null || true", self.ns)).split_whitespace() {
            let _ = Command::new("kill").arg("-9").arg(p).status();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// The advert `lab`'s namespace `ns` sends for `vrid` at `prio` on `dev` (`v6`: from its link-local
/// address, else from the first IPv4 address of `dev`).
pub fn advert_of(ns: &str, dev: &str, v6: bool, vrid: u8, prio: u8) -> Frame {
    let fam = if v6 { "-6" } else { "-4" };
    let scope = if v6 { "scope link" } else { "" };
    let out = sh(&format!("ip -n {ns} {fam} -br addr show dev {dev} {scope}"));
    let src = out
        .split_whitespace()
        .nth(2)
        .and_then(|a| a.split('/').next())
        .unwrap_or_else(|| panic!("no address on {ns}/{dev}: {out}"))
        .to_owned();
    let link = sh(&format!("ip -n {ns} -br link show {dev}"));
    Frame {
        mac: link.split_whitespace().nth(2).unwrap().to_owned(),
        src,
        vrid,
        prio,
    }
}
