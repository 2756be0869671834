//! The lab's daemon configuration: conntrack-tools' shipped examples, adapted by a fixed, printed list of
//! substitutions and nothing else.
//!
//! The sources are `/usr/share/doc/conntrackd/examples/sync/keepalived.conf`, `.../primary-backup.sh` and
//! `.../ftfw/conntrackd.conf` (Debian's conntrackd 1.4.7). The lab's addressing is the examples' own
//! (see `topo.rs`), so the substitutions are only: paths (into the run's directory), the sync binary that
//! the notify script calls (the one difference between the stacks), fw-b's own addresses, and fw-a's
//! priority. Every substitution replaces a whole token (a neighbour character that could continue an
//! address or a path blocks the match, so `192.168.0.1` never touches `192.168.0.100`), and against the
//! shipped files every substitution must match at least once: if the shipped files ever change, the lab
//! refuses to run instead of silently adapting something else.

use super::topo::Fw;
use anyhow::{Context, Result, bail};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Where conntrack-tools' examples live on Debian.
pub const SHIPPED_DIR: &str = "/usr/share/doc/conntrackd/examples/sync";

/// The three files of a configuration set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum File {
    /// keepalived.conf (read by keepalived and by vrrpd).
    Keepalived,
    /// primary-backup.sh (the notify script of the sync group).
    Script,
    /// conntrackd.conf (read by conntrackd and by ctsyncd).
    Conntrackd,
}

impl File {
    /// The file's name in a node's directory.
    pub fn name(self) -> &'static str {
        match self {
            File::Keepalived => "keepalived.conf",
            File::Script => "primary-backup.sh",
            File::Conntrackd => "conntrackd.conf",
        }
    }
}

/// Where the three source files come from.
#[derive(Debug, Clone)]
pub struct Sources {
    /// keepalived.conf.
    pub keepalived: PathBuf,
    /// primary-backup.sh.
    pub script: PathBuf,
    /// conntrackd.conf.
    pub conntrackd: PathBuf,
    /// True for conntrack-tools' shipped files: every substitution must then match.
    pub shipped: bool,
}

impl Sources {
    /// conntrack-tools' shipped examples (FTFW).
    pub fn shipped() -> Sources {
        let d = Path::new(SHIPPED_DIR);
        Sources {
            keepalived: d.join("keepalived.conf"),
            script: d.join("primary-backup.sh"),
            conntrackd: d.join("ftfw").join("conntrackd.conf"),
            shipped: true,
        }
    }

    /// An operator's own set: `DIR/keepalived.conf`, `DIR/primary-backup.sh`, `DIR/conntrackd.conf`,
    /// written for fw-a in the lab's addressing.
    pub fn dir(dir: &Path) -> Sources {
        Sources {
            keepalived: dir.join("keepalived.conf"),
            script: dir.join("primary-backup.sh"),
            conntrackd: dir.join("conntrackd.conf"),
            shipped: false,
        }
    }

    fn path(&self, f: File) -> &Path {
        match f {
            File::Keepalived => &self.keepalived,
            File::Script => &self.script,
            File::Conntrackd => &self.conntrackd,
        }
    }
}

/// One substitution.
#[derive(Debug, Clone)]
pub struct Subst {
    /// The file it applies to.
    pub file: File,
    /// The token replaced.
    pub from: String,
    /// Its replacement.
    pub to: String,
    /// Why.
    pub why: &'static str,
}

/// The substitution list for one firewall.
///
/// `node_dir` is the node's directory in the run (configs, lock, socket, logs); `sync_bin` the program
/// the notify script runs as `CONNTRACKD_BIN` (`/usr/sbin/conntrackd`, our `ctsyncd`, or `/bin/true` for
/// the control scenario, which runs no sync daemon).
pub fn substitutions(fw: Fw, node_dir: &Path, sync_bin: &Path) -> Vec<Subst> {
    let at = |name: &str| node_dir.join(name).to_string_lossy().into_owned();
    let s = |file, from: &str, to: String, why| Subst {
        file,
        from: from.to_string(),
        to,
        why,
    };
    let mut list = vec![
        s(
            File::Keepalived,
            "/etc/conntrackd/primary-backup.sh",
            at(File::Script.name()),
            "path: the node's copy of the notify script",
        ),
        s(
            File::Script,
            "/usr/sbin/conntrackd",
            sync_bin.to_string_lossy().into_owned(),
            "path: the sync daemon of the stack under test",
        ),
        s(
            File::Script,
            "/var/lock/conntrack.lock",
            at("conntrack.lock"),
            "path: per-node lock file",
        ),
        s(
            File::Script,
            "/etc/conntrackd/conntrackd.conf",
            at(File::Conntrackd.name()),
            "path: the node's conntrackd.conf",
        ),
        s(
            File::Conntrackd,
            "LogFile on",
            format!("LogFile {}", at("conntrackd.log")),
            "path: `on` means /var/log/conntrackd.log; per-node log file instead",
        ),
        s(
            File::Conntrackd,
            "/var/lock/conntrack.lock",
            at("conntrack.lock"),
            "path: per-node lock file",
        ),
        s(
            File::Conntrackd,
            "/var/run/conntrackd.ctl",
            at("conntrackd.ctl"),
            "path: per-node control socket",
        ),
    ];
    match fw {
        Fw::A => list.push(s(
            File::Keepalived,
            "priority 80",
            "priority 100".into(),
            "fw-a is the primary: the shipped file gives both nodes priority 80, and VRRP never \
             preempts an equal priority, so scenario 3 (failback) needs fw-a above fw-b",
        )),
        Fw::B => {
            let (a_in, a_out, a_sync) = Fw::A.addrs();
            let (b_in, b_out, b_sync) = Fw::B.addrs();
            for (from, to, why) in [
                (a_sync, b_sync, "address: fw-b's end of the sync link"),
                (
                    a_in,
                    b_in,
                    "address: fw-b's own inside address (Address Ignore)",
                ),
                (
                    a_out,
                    b_out,
                    "address: fw-b's own outside address (Address Ignore)",
                ),
            ] {
                list.push(s(File::Conntrackd, from, to.into(), why));
            }
        }
    }
    list
}

/// The files written for one node.
#[derive(Debug, Clone)]
pub struct NodeFiles {
    /// keepalived.conf.
    pub keepalived: PathBuf,
    /// primary-backup.sh (mode 0755).
    pub script: PathBuf,
    /// conntrackd.conf.
    pub conntrackd: PathBuf,
}

/// Writes the node's three files into `node_dir` from `src` with [`substitutions`].
pub fn render(src: &Sources, fw: Fw, node_dir: &Path, sync_bin: &Path) -> Result<NodeFiles> {
    let list = substitutions(fw, node_dir, sync_bin);
    let mut out = Vec::new();
    for file in [File::Keepalived, File::Script, File::Conntrackd] {
        let path = src.path(file);
        let mut text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "reading {} (install conntrackd: `cargo xtask deps`)",
                path.display()
            )
        })?;
        for sub in list.iter().filter(|s| s.file == file) {
            let (new, n) = replace_tokens(&text, &sub.from, &sub.to);
            if n == 0 && src.shipped {
                bail!(
                    "{}: the substitution `{}` -> `{}` matched nothing: the shipped file is not the one \
                     the lab was written for",
                    path.display(),
                    sub.from,
                    sub.to
                );
            }
            text = new;
        }
        let dest = node_dir.join(file.name());
        std::fs::write(&dest, &text).with_context(|| format!("writing {}", dest.display()))?;
        out.push(dest);
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&out[1], std::fs::Permissions::from_mode(0o755))
        .context("chmod primary-backup.sh")?;
    Ok(NodeFiles {
        keepalived: out[0].clone(),
        script: out[1].clone(),
        conntrackd: out[2].clone(),
    })
}

/// Replaces every whole-token occurrence of `from` by `to`; returns the text and the count.
///
/// A match counts only if the characters around it cannot continue the token: neither side may be an
/// ASCII alphanumeric, `.`, `_`, `-` or `/`.
pub fn replace_tokens(text: &str, from: &str, to: &str) -> (String, usize) {
    let cont = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || "._-/".contains(c));
    let mut out = String::with_capacity(text.len());
    let mut n = 0;
    let mut done = 0; // bytes of `text` already copied to `out`
    for (i, _) in text.match_indices(from) {
        if i < done {
            continue; // overlaps the previous match
        }
        let before = text[..i].chars().next_back();
        let after = text[i + from.len()..].chars().next();
        if cont(before) || cont(after) {
            continue;
        }
        out.push_str(&text[done..i]);
        out.push_str(to);
        done = i + from.len();
        n += 1;
    }
    out.push_str(&text[done..]);
    (out, n)
}

/// The lines that differ between two texts of the same line count: `(line number, old, new)`.
pub fn changed_lines(a: &str, b: &str) -> Vec<(usize, String, String)> {
    a.lines()
        .zip(b.lines())
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .map(|(i, (x, y))| (i + 1, x.to_string(), y.to_string()))
        .collect()
}

/// The substitution list and a line diff of every file against its source, for `--print-configs` and
/// the docs.
pub fn describe(src: &Sources, fw: Fw, node_dir: &Path, sync_bin: &Path) -> Result<String> {
    let files = render(src, fw, node_dir, sync_bin)?;
    let mut s = String::new();
    let _ = writeln!(s, "## {} substitutions", fw.name());
    for sub in substitutions(fw, node_dir, sync_bin) {
        let _ = writeln!(
            s,
            "  {:<17} {} -> {}\n  {:<17}   ({})",
            sub.file.name(),
            sub.from,
            sub.to,
            "",
            sub.why
        );
    }
    for (file, dest) in [
        (File::Keepalived, &files.keepalived),
        (File::Script, &files.script),
        (File::Conntrackd, &files.conntrackd),
    ] {
        let a = std::fs::read_to_string(src.path(file))?;
        let b = std::fs::read_to_string(dest)?;
        let _ = writeln!(s, "## {} {} (changed lines)", fw.name(), file.name());
        for (i, x, y) in changed_lines(&a, &b) {
            let _ = writeln!(s, "  {i:>4}- {x}\n  {i:>4}+ {y}");
        }
        if a.lines().count() != b.lines().count() {
            bail!(
                "{}: line count changed (substitutions never add lines)",
                dest.display()
            );
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_do_not_match_inside_longer_addresses_or_paths() {
        let t = "IPv4_address 192.168.0.1\nIPv4_address 192.168.0.100 # vip\n/x/192.168.0.1 a192.168.0.1";
        let (o, n) = replace_tokens(t, "192.168.0.1", "192.168.0.2");
        assert_eq!(n, 1);
        assert!(o.starts_with("IPv4_address 192.168.0.2\nIPv4_address 192.168.0.100 # vip"));
        assert!(o.ends_with("/x/192.168.0.1 a192.168.0.1"));
    }

    #[test]
    fn paths_inside_quotes_match() {
        let t = "notify_master \"/etc/conntrackd/primary-backup.sh primary\"";
        let (o, n) = replace_tokens(t, "/etc/conntrackd/primary-backup.sh", "/r/p.sh");
        assert_eq!((o.as_str(), n), ("notify_master \"/r/p.sh primary\"", 1));
    }

    #[test]
    fn shipped_files_change_exactly_the_substituted_lines() {
        let src = Sources::shipped();
        let what = format!("conntrackd's examples ({})", src.keepalived.display());
        if !testkit::require(&what, src.keepalived.exists()) {
            return;
        }
        let dir = std::env::temp_dir().join(format!("halab-cfgtest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ctsyncd = Path::new("/opt/x/ctsyncd");
        for (fw, ka, script, ctd) in [(Fw::A, 5, 3, 3), (Fw::B, 3, 3, 7)] {
            let files = render(&src, fw, &dir, ctsyncd).unwrap();
            let diff = |s: &Path, d: &Path| {
                let a = std::fs::read_to_string(s).unwrap();
                let b = std::fs::read_to_string(d).unwrap();
                assert_eq!(a.lines().count(), b.lines().count());
                changed_lines(&a, &b)
            };
            let k = diff(&src.keepalived, &files.keepalived);
            let p = diff(&src.script, &files.script);
            let c = diff(&src.conntrackd, &files.conntrackd);
            assert_eq!(
                (k.len(), p.len(), c.len()),
                (ka, script, ctd),
                "{fw:?}: {k:?} {p:?} {c:?}"
            );
            let k = std::fs::read_to_string(&files.keepalived).unwrap();
            let c = std::fs::read_to_string(&files.conntrackd).unwrap();
            let p = std::fs::read_to_string(&files.script).unwrap();
            assert!(p.contains("CONNTRACKD_BIN=/opt/x/ctsyncd"));
            assert!(c.contains("IPv4_address 192.168.0.100 # virtual IP 1"));
            match fw {
                Fw::A => assert!(k.contains("priority 100") && !k.contains("priority 80")),
                Fw::B => {
                    assert!(k.contains("priority 80") && !k.contains("priority 100"));
                    assert!(c.contains("IPv4_interface 192.168.100.101"));
                    assert!(c.contains("IPv4_address 192.168.0.2\n"));
                }
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
