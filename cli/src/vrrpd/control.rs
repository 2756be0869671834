//! The control socket: one JSON request line, one JSON reply line, then close. The status report.
//!
//! Clients are served without blocking the VRRP loop: the listener and every connection are
//! non-blocking and polled with the driver's sockets; a request is answered once its line is
//! complete, the reply written as the client takes it, and a client that has not finished within
//! [`CLIENT_LIMIT`] is dropped.

use rustix::event::{PollFd, PollFlags};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vrrp_proto::State;
use vrrp_proto::linux::Driver;

/// How long a client may take to send its request and read the reply.
pub const CLIENT_LIMIT: Duration = Duration::from_secs(2);

/// Requests longer than this are refused.
const MAX_REQUEST: usize = 4096;

#[derive(Debug)]
struct Client {
    stream: UnixStream,
    input: Vec<u8>,
    /// The reply, once the request is complete, and how much of it is written.
    output: Option<(Vec<u8>, usize)>,
    since: Instant,
}

/// The listening socket and its clients; the file is removed on drop.
#[derive(Debug)]
pub struct Control {
    /// The listener (non-blocking).
    pub listener: UnixListener,
    path: PathBuf,
    clients: Vec<Client>,
}

impl Control {
    /// Binds `path` with mode 0600. A stale socket file (nobody answers) is replaced; a live one is
    /// an error (another vrrpd uses it).
    pub fn bind(path: &Path) -> std::io::Result<Control> {
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("{} is in use by a running vrrpd", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        Ok(Control {
            listener,
            path: path.to_path_buf(),
            clients: Vec::new(),
        })
    }

    /// What to poll: the listener, and each client for its request or for room for its reply.
    pub fn poll_fds(&self) -> Vec<PollFd<'_>> {
        let mut v = vec![PollFd::new(&self.listener, PollFlags::IN)];
        for c in &self.clients {
            let f = if c.output.is_some() {
                PollFlags::OUT
            } else {
                PollFlags::IN
            };
            v.push(PollFd::new(&c.stream, f));
        }
        v
    }

    /// When the oldest client runs out of time.
    pub fn deadline(&self) -> Option<Instant> {
        self.clients.iter().map(|c| c.since + CLIENT_LIMIT).min()
    }

    /// Accepts new clients, reads what they sent, answers complete requests, writes what fits, and
    /// drops the clients that are done or out of time. Never blocks.
    pub fn serve(&mut self, driver: &Driver, lvs: Option<&lvs_check::Driver>, now: Instant) {
        while let Ok((stream, _)) = self.listener.accept() {
            if stream.set_nonblocking(true).is_ok() {
                self.clients.push(Client {
                    stream,
                    input: Vec::new(),
                    output: None,
                    since: now,
                });
            }
        }
        self.clients.retain_mut(|c| {
            if now >= c.since + CLIENT_LIMIT {
                return false;
            }
            if c.output.is_none() {
                let mut buf = [0u8; 1024];
                loop {
                    match c.stream.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => c.input.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(_) => return false,
                    }
                }
                let line_end = c.input.iter().position(|&b| b == b'\n');
                if line_end.is_none() && c.input.len() < MAX_REQUEST {
                    return true;
                }
                let line = &c.input[..line_end.unwrap_or(c.input.len())];
                let reply = match serde_json::from_slice::<Value>(line) {
                    Ok(v) if v["cmd"] == "status" => status(driver, lvs),
                    Ok(_) => json!({"error": "unknown command"}),
                    Err(e) => json!({"error": format!("bad request: {e}")}),
                };
                c.output = Some((format!("{reply}\n").into_bytes(), 0));
            }
            let Some((out, done)) = &mut c.output else {
                return true;
            };
            while *done < out.len() {
                match c.stream.write(&out[*done..]) {
                    Ok(n) => *done += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                    Err(_) => return false,
                }
            }
            false
        });
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// keepalived's state names.
pub fn state_name(s: State) -> &'static str {
    match s {
        State::Initialize => "INIT",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
        State::Fault => "FAULT",
        _ => "UNKNOWN",
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The status of the LVS checker: every virtual server, its quorum, and each real server's state,
/// weight and checks with the last failure's reason.
fn lvs_status(lvs: &lvs_check::Driver) -> Vec<Value> {
    lvs.engine()
        .status()
        .iter()
        .map(|v| {
            json!({
                "name": v.name,
                "quorum_up": v.quorum_up,
                "sorry_server_active": v.sorry_server_active,
                "real_servers": v.real_servers.iter().map(|r| json!({
                    "address": r.addr.to_string(),
                    "alive": r.alive,
                    "in_ipvs": r.in_ipvs,
                    "weight": r.weight,
                    "checks": r.checks.iter().map(|c| json!({
                        "kind": c.kind,
                        "up": c.up,
                        "has_run": c.has_run,
                        "last_failure": c.last_failure,
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// The status report.
pub fn status(driver: &Driver, lvs: Option<&lvs_check::Driver>) -> Value {
    let set = driver.instances();
    let now = std::time::Instant::now();
    let instances: Vec<Value> = set
        .iter()
        .map(|(name, r)| {
            let c = r.config();
            let counters = driver.counters(name).cloned().unwrap_or_default();
            json!({
                "name": name,
                "state": state_name(r.state()),
                "interface": c.interface,
                "vrid": c.virtual_router_id,
                "version": if c.version == vrrp_proto::Version::V2 { 2 } else { 3 },
                "priority": r.priority(),
                "base_priority": c.priority,
                "source": r.source_address().to_string(),
                "master": r.master().map(|(a, p)| json!({"address": a.to_string(), "priority": p})),
                "advert_int_ms": ms(c.advert_int),
                "master_adver_interval_ms": ms(r.master_adver_interval()),
                "master_down_interval_ms": ms(r.master_down_interval()),
                "next_timer_ms": r.poll_timeout().map(|t| ms(t.saturating_duration_since(now))),
                "virtual_ipaddress": c.virtual_ipaddress.iter().map(|a| format!("{}/{}", a.addr, a.prefix_len)).collect::<Vec<_>>(),
                "counters": {
                    "accepted": counters.accepted,
                    "sent": counters.sent,
                    "became_master": counters.became_master,
                    "rejected": counters.rejected,
                },
            })
        })
        .collect();
    let groups: Vec<Value> = set
        .groups()
        .map(|(name, st, members)| {
            json!({
                "name": name,
                "state": state_name(st),
                "members": members.iter().map(|&i| set.name(i)).collect::<Vec<_>>(),
            })
        })
        .collect();
    let virtual_servers = lvs.map(lvs_status).unwrap_or_default();
    json!({"pid": std::process::id(), "instances": instances, "groups": groups, "virtual_servers": virtual_servers})
}

/// The client: asks `path` for the status.
pub fn request(path: &Path) -> std::io::Result<Value> {
    let s = UnixStream::connect(path)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut w = &s;
    writeln!(w, "{}", json!({"cmd": "status"}))?;
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(std::io::Error::other)
}

/// The text form of a status report.
pub fn format_text(v: &Value) -> String {
    let mut out = String::new();
    for i in v["instances"].as_array().into_iter().flatten() {
        let master = match &i["master"] {
            Value::Object(m) => format!(
                " master {} prio {}",
                m["address"].as_str().unwrap_or("?"),
                m["priority"]
            ),
            _ => String::new(),
        };
        let rej = i["counters"]["rejected"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, n)| format!("{k}={n}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        out.push_str(&format!(
            "{} {} {} vrid {} prio {}{} sent {} accepted {} rejected [{}]\n",
            i["name"].as_str().unwrap_or("?"),
            i["state"].as_str().unwrap_or("?"),
            i["interface"].as_str().unwrap_or("?"),
            i["vrid"],
            i["priority"],
            master,
            i["counters"]["sent"],
            i["counters"]["accepted"],
            rej
        ));
    }
    for vs in v["virtual_servers"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "virtual_server {} quorum {}{}\n",
            vs["name"].as_str().unwrap_or("?"),
            if vs["quorum_up"] == true {
                "up"
            } else {
                "down"
            },
            if vs["sorry_server_active"] == true {
                " (sorry server in)"
            } else {
                ""
            }
        ));
        for r in vs["real_servers"].as_array().into_iter().flatten() {
            let checks: Vec<String> = r["checks"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let state = if c["up"] == true { "up" } else { "down" };
                    match c["last_failure"].as_str() {
                        Some(f) => format!(
                            "{} {state} (last failure: {f})",
                            c["kind"].as_str().unwrap_or("?")
                        ),
                        None => format!("{} {state}", c["kind"].as_str().unwrap_or("?")),
                    }
                })
                .collect();
            out.push_str(&format!(
                "  real_server {} {} weight {}{} {}\n",
                r["address"].as_str().unwrap_or("?"),
                if r["alive"] == true { "UP" } else { "DOWN" },
                r["weight"],
                if r["in_ipvs"] == true {
                    ""
                } else {
                    " (not in IPVS)"
                },
                checks.join(", ")
            ));
        }
    }
    for g in v["groups"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "group {} {} {}\n",
            g["name"].as_str().unwrap_or("?"),
            g["state"].as_str().unwrap_or("?"),
            g["members"]
                .as_array()
                .map(|m| m
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" "))
                .unwrap_or_default()
        ));
    }
    out
}
