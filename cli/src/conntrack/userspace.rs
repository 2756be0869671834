//! The ` [USERSPACE] portid=N progname=X` suffix conntrack-tools 1.4.7 appends to an `-E` event line when
//! the event's netlink header carries a port id, that is when a user-space program's request (a
//! `conntrack -I`, a conntrackd, ...) caused it.
//!
//! The program is found the way conntrack-tools finds it, from this network namespace's `/proc`:
//! the port's socket inode from `/proc/net/netlink` (protocol `NETLINK_NETFILTER`), then the process holding
//! a descriptor `socket:[inode]` (first the process whose pid equals the port id, then every process), then
//! that process's name from `/proc/PID/stat`. When the program has already gone, only `portid=N` is printed.
//! As in conntrack-tools, the answer for the last (port id, inode) pair is remembered, so a burst of events
//! from one program costs one lookup.

use std::fs;

/// `NETLINK_NETFILTER`, the protocol column of `/proc/net/netlink`.
const NETLINK_NETFILTER: u32 = 12;

/// Resolves port ids to program names, remembering the last answer.
#[derive(Debug, Default)]
pub struct PortNames {
    last: Option<(u32, u64, Option<String>)>,
}

impl PortNames {
    /// A resolver with nothing remembered.
    pub fn new() -> Self {
        Self::default()
    }

    /// The text to append to an event line for an event with this `nlmsg_pid`: empty for 0 (the kernel's
    /// own events), else ` [USERSPACE] portid=N` with ` progname=X` when the program is found.
    pub fn suffix(&mut self, portid: u32) -> String {
        suffix_text(self.lookup(portid).as_ref())
    }

    /// The port id and, when found, the program name; `None` for 0 (the kernel's own events).
    pub fn lookup(&mut self, portid: u32) -> Option<(u32, Option<String>)> {
        (portid != 0).then(|| (portid, self.progname(portid)))
    }

    fn progname(&mut self, portid: u32) -> Option<String> {
        let text = fs::read_to_string("/proc/net/netlink").ok()?;
        let inode = netlink_inode(&text, portid)?;
        if let Some((p, i, name)) = &self.last
            && *p == portid
            && *i == inode
        {
            return name.clone();
        }
        let name = name_by_portid(portid, inode);
        self.last = Some((portid, inode, name.clone()));
        name
    }
}

/// The text conntrack-tools appends for a [`PortNames::lookup`] answer.
pub fn suffix_text(user: Option<&(u32, Option<String>)>) -> String {
    match user {
        None => String::new(),
        Some((portid, Some(name))) => format!(" [USERSPACE] portid={portid} progname={name}"),
        Some((portid, None)) => format!(" [USERSPACE] portid={portid}"),
    }
}

/// The socket inode of netfilter netlink port `portid` in a `/proc/net/netlink` text.
pub fn netlink_inode(text: &str, portid: u32) -> Option<u64> {
    text.lines().find_map(|line| {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() < 10 {
            return None;
        }
        let proto: u32 = w[1].parse().ok()?;
        let port: u32 = w[2].parse().ok()?;
        (proto == NETLINK_NETFILTER && port == portid)
            .then(|| w[9].parse().ok())
            .flatten()
    })
}

/// The command name in a `/proc/PID/stat` text: what lies between the first `(` and the next `)`.
pub fn stat_name(stat: &str) -> Option<String> {
    let rest = &stat[stat.find('(')? + 1..];
    let name = &rest[..rest.find(')').unwrap_or(rest.len())];
    (!name.is_empty()).then(|| name.to_string())
}

fn holds_socket(pid: u64, inode: u64) -> bool {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let want = format!("socket:[{inode}]");
    dir.flatten().any(|ent| {
        fs::read_link(ent.path())
            .map(|t| t.as_os_str() == want.as_str())
            .unwrap_or(false)
    })
}

fn name_of(pid: u64, inode: u64) -> Option<String> {
    if !holds_socket(pid, inode) {
        return None;
    }
    stat_name(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn name_by_portid(portid: u32, inode: u64) -> Option<String> {
    // Most programs' first netlink socket gets their process id as port id.
    if let Some(n) = name_of(u64::from(portid), inode) {
        return Some(n);
    }
    fs::read_dir("/proc").ok()?.flatten().find_map(|ent| {
        let pid: u64 = ent.file_name().to_str()?.parse().ok()?;
        if pid <= 1 || pid == u64::from(portid) {
            return None;
        }
        name_of(pid, inode)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_netlink_lines() {
        let text = "sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode\n\
            0000000000000000 0   4171       00000000 0        0        0     2        0        22051\n\
            0000000000000000 12  4171       00000007 0        0        0     2        0        31337\n\
            0000000000000000 12  -1234      00000000 0        0        0     2        0        7\n";
        assert_eq!(netlink_inode(text, 4171), Some(31337));
        assert_eq!(netlink_inode(text, 99), None);
    }

    #[test]
    fn stat_names() {
        assert_eq!(
            stat_name("123 (conntrack) S 1 2 3").as_deref(),
            Some("conntrack")
        );
        assert_eq!(stat_name("5 (a b) R").as_deref(), Some("a b"));
        assert_eq!(stat_name("5 () R"), None);
        assert_eq!(stat_name("garbage"), None);
    }

    #[test]
    fn kernel_events_have_no_suffix() {
        assert_eq!(PortNames::new().suffix(0), "");
        assert_eq!(
            suffix_text(Some(&(7, Some("x".to_string())))),
            " [USERSPACE] portid=7 progname=x"
        );
        assert_eq!(suffix_text(Some(&(7, None))), " [USERSPACE] portid=7");
    }
}
