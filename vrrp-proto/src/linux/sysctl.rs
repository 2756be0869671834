//! The IPv4 interface settings a VMAC needs (`/proc/sys/net/ipv4/conf/*`), as keepalived 2.2.7 sets
//! them (`vrrp_if_config.c`), recorded so that exactly what was changed is put back.
//!
//! `/proc/sys/net` shows the network namespace of the thread that opens the file, so these follow the
//! driver's namespace like its sockets do.
//!
//! * On the VMAC: `arp_ignore` 1, `accept_local` 1, `rp_filter` 0, `promote_secondaries` 1 (the VMAC
//!   is deleted at the end, so nothing is put back).
//! * On its parent: `arp_ignore` 1 (the parent must not answer ARP for the virtual address, which sits
//!   on the VMAC, with its own MAC) and `arp_filter` 1; put back when its last VMAC goes.
//! * The kernel applies the larger of `all/rp_filter` and an interface's own, so when `all` is not 0
//!   (adverts arriving on the VMAC would fail the reverse-path check), every interface and `default`
//!   is first raised to `all`'s value, then `all` goes to 0; each is put back at the end if it still
//!   holds the value set here.

use std::io;

fn path(iface: &str, key: &str) -> String {
    format!("/proc/sys/net/ipv4/conf/{iface}/{key}")
}

/// Reads `net.ipv4.conf.IFACE.KEY`.
pub(crate) fn get(iface: &str, key: &str) -> io::Result<u32> {
    let text = std::fs::read_to_string(path(iface, key))?;
    text.trim().parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{iface}/{key}: {text:?}"),
        )
    })
}

/// Writes `net.ipv4.conf.IFACE.KEY`.
pub(crate) fn set(iface: &str, key: &str, value: u32) -> io::Result<()> {
    std::fs::write(path(iface, key), format!("{value}\n"))
}

/// One change made: put `old` back if the setting still holds `ours`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Change {
    iface: String,
    key: &'static str,
    old: u32,
    ours: u32,
}

/// The changes made for VMACs, by parent interface.
#[derive(Debug, Default)]
pub(crate) struct Settings {
    changes: Vec<Change>,
    /// Parents and how many VMACs each has.
    parents: Vec<(String, usize)>,
}

impl Settings {
    fn change(&mut self, iface: &str, key: &'static str, value: u32) -> io::Result<()> {
        let old = get(iface, key)?;
        if old != value {
            set(iface, key, value)?;
            self.changes.push(Change {
                iface: iface.to_owned(),
                key,
                old,
                ours: value,
            });
        }
        Ok(())
    }

    /// Sets up an IPv4 VMAC `vmac` on `parent`; `others` lists every interface of the namespace
    /// (for the `rp_filter` dance).
    pub(crate) fn add_vmac(
        &mut self,
        vmac: &str,
        parent: &str,
        others: &[String],
    ) -> io::Result<()> {
        let all = get("all", "rp_filter")?;
        if all != 0 {
            self.change(
                "default",
                "rp_filter",
                all.max(get("default", "rp_filter")?),
            )?;
            for i in others.iter().filter(|i| i.as_str() != vmac) {
                let own = get(i, "rp_filter")?;
                if own < all {
                    self.change(i, "rp_filter", all)?;
                }
            }
            self.change("all", "rp_filter", 0)?;
        }
        for (key, v) in [
            ("arp_ignore", 1),
            ("accept_local", 1),
            ("rp_filter", 0),
            ("promote_secondaries", 1),
        ] {
            // Changes on the VMAC need no record: it is deleted.
            set(vmac, key, v)?;
        }
        match self.parents.iter_mut().find(|(p, _)| p == parent) {
            Some((_, n)) => *n += 1,
            None => {
                self.parents.push((parent.to_owned(), 1));
                self.change(parent, "arp_ignore", 1)?;
                self.change(parent, "arp_filter", 1)?;
            }
        }
        Ok(())
    }

    /// An IPv4 VMAC of `parent` is gone: the parent's settings go back with its last VMAC, and the
    /// `rp_filter` changes with the last VMAC of all.
    pub(crate) fn remove_vmac(&mut self, parent: &str) {
        if let Some(pos) = self.parents.iter().position(|(p, _)| p == parent) {
            self.parents[pos].1 -= 1;
            if self.parents[pos].1 == 0 {
                self.parents.remove(pos);
                self.restore(|c| c.iface == parent && c.key.starts_with("arp_"));
            }
        }
        if self.parents.is_empty() {
            self.restore(|_| true);
        }
    }

    /// Puts back every change still in place (at exit).
    pub(crate) fn restore_all(&mut self) {
        self.parents.clear();
        self.restore(|_| true);
    }

    fn restore(&mut self, which: impl Fn(&Change) -> bool) {
        // Newest first: `all/rp_filter` goes back before the interfaces raised for it.
        let mut kept = Vec::new();
        for c in std::mem::take(&mut self.changes).into_iter().rev() {
            if which(&c) {
                if get(&c.iface, c.key).is_ok_and(|v| v == c.ours) {
                    let _ = set(&c.iface, c.key, c.old);
                }
            } else {
                kept.push(c);
            }
        }
        kept.reverse();
        self.changes = kept;
    }
}
