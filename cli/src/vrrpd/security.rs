//! Who runs each script, and which scripts are refused, as keepalived 2.2.7 decides it
//! (`lib/notify.c`: `get_default_script_user`, `check_script_secure`, `check_security`;
//! `vrrp.c`: `check_vrrp_script_security`), before anything runs.
//!
//! * A script runs as its own user (`user USER [GROUP]` in `vrrp_script`, `notify* "CMD" USER
//!   [GROUP]`), else as `script_user`, else as `keepalived_script` if that user exists, else as
//!   root. A user that cannot be resolved drops the script; with `enable_script_security` and
//!   neither `script_user` nor a `keepalived_script` user, scripts without a user of their own are
//!   dropped.
//! * A bare name is looked up in `PATH` (with a warning, as keepalived); the file must be reachable
//!   and executable by that user, or the script is dropped.
//! * A script that runs as root (user or group 0, or a setuid/setgid-root file) is *insecure* when
//!   any part of its path, resolved or not, is not owned by root, or is writable by a non-root group
//!   or by everyone (directories with the sticky bit excepted). With `enable_script_security` an
//!   insecure script is dropped; without it, it runs, and one `SECURITY VIOLATION` warning says so.
//! * A dropped `vrrp_script` is no longer tracked by any instance (as keepalived removes it); a
//!   dropped notify script is not run.
//!
//! Users and groups are resolved with `getent` (so NSS sources such as LDAP count, as they do for
//! keepalived's `getpwnam`). Where keepalived checks access by switching its effective user, this
//! checks the permission bits of every directory on the way and of the file.

use crate::keepalived::KeepalivedConf;
use crate::keepalived::vrrp_instance::track_script_name;
use crate::keepalived::vrrp_script::{RunAs, ScriptCmd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `getent passwd USER` / `getent group GROUP`: user's uid and primary gid, or the group's gid.
fn lookup(user: &str, group: Option<&str>) -> Result<RunAs, String> {
    let getent = |db: &str, key: &str| -> Option<Vec<String>> {
        let o = Command::new("getent").args([db, key]).output().ok()?;
        if !o.status.success() {
            return None;
        }
        let line = String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()?
            .to_owned();
        Some(line.split(':').map(str::to_owned).collect())
    };
    let pw = getent("passwd", user).ok_or_else(|| format!("user {user:?} does not exist"))?;
    let num = |v: Option<&String>| v.and_then(|x| x.parse::<u32>().ok());
    let (Some(uid), Some(mut gid)) = (num(pw.get(2)), num(pw.get(3))) else {
        return Err(format!("user {user:?}: unreadable passwd entry"));
    };
    if let Some(g) = group {
        let gr = getent("group", g).ok_or_else(|| format!("group {g:?} does not exist"))?;
        gid = num(gr.get(2)).ok_or_else(|| format!("group {g:?}: unreadable group entry"))?;
    }
    Ok(RunAs { uid, gid })
}

fn ours() -> RunAs {
    RunAs {
        uid: rustix::process::geteuid().as_raw(),
        gid: rustix::process::getegid().as_raw(),
    }
}

/// keepalived's `is_executable`.
fn executable_by(meta: &std::fs::Metadata, who: RunAs) -> bool {
    let mode = meta.permissions().mode();
    (who.uid == 0 && mode & 0o111 != 0)
        || (who.uid == meta.uid() && mode & 0o100 != 0)
        || (who.uid != meta.uid()
            && ((who.gid == meta.gid() && mode & 0o010 != 0)
                || (who.gid != meta.gid() && mode & 0o001 != 0)))
}

/// Every prefix of an absolute path: `/`, `/a`, `/a/b`, ..., the path itself.
fn prefixes(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut cur = PathBuf::new();
    for c in path.components() {
        cur.push(c);
        out.push(cur.clone());
    }
    out
}

/// keepalived's `check_security`: why the path is unsafe for a script run as root, if it is.
fn unsafe_part(path: &Path) -> Result<Option<String>, String> {
    let parts = prefixes(path);
    for (k, p) in parts.iter().enumerate() {
        let last = k + 1 == parts.len();
        let m = std::fs::symlink_metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        let ft = m.file_type();
        if (!last && !ft.is_dir()) || (last && !ft.is_file() && !ft.is_symlink()) {
            return Err(format!(
                "{}: wrong file type in the script's path",
                p.display()
            ));
        }
        let mode = m.permissions().mode();
        let sticky_dir = ft.is_dir() && mode & 0o1000 != 0;
        let writable = (m.gid() != 0 && mode & 0o020 != 0) || mode & 0o002 != 0;
        if m.uid() != 0 {
            return Ok(Some(format!("{} is not owned by root", p.display())));
        }
        if (ft.is_file() || (ft.is_dir() && !sticky_dir)) && writable {
            return Ok(Some(format!(
                "{} is writable by a non-root group or by everyone",
                p.display()
            )));
        }
    }
    Ok(None)
}

/// Checks one script for `who`: `Err(reason)` drops it; `Ok(Some(why))` is insecure (dropped when
/// `security`). The command becomes the resolved path (a bare name is looked up in `PATH` first),
/// as keepalived runs it.
fn check(
    cmd: &mut ScriptCmd,
    who: RunAs,
    security: bool,
    warnings: &mut Vec<String>,
) -> Result<Option<String>, String> {
    let prog = cmd.argv[0].clone();
    if !prog.contains('/') {
        let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
        let found = std::env::split_paths(&path)
            .map(|d| d.join(&prog))
            .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && executable_by(&m, who)))
            .ok_or_else(|| format!("cannot find {prog} in PATH (executable by uid {})", who.uid))?;
        warnings.push(format!(
            "{}: script {prog} resolved by PATH search to {}; give the full path",
            cmd.pos,
            found.display()
        ));
        cmd.argv[0] = found.to_string_lossy().into_owned();
    }
    let given = PathBuf::from(&cmd.argv[0]);
    let real = std::fs::canonicalize(&given)
        .map_err(|e| format!("{} cannot be accessed: {e}", given.display()))?;
    // keepalived runs the resolved path, keeping the name it was given when it names the same file
    // in the resolved directory (a program may act on its name), and checks both.
    let mut run = real.clone();
    if let (Some(name), Some(dir)) = (given.file_name(), real.parent())
        && real.file_name() != Some(name)
    {
        let same_name = dir.join(name);
        let same = |p: &Path| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
        if same(&same_name).is_some() && same(&same_name) == same(&real) {
            run = same_name;
        }
    }
    cmd.argv[0] = run.to_string_lossy().into_owned();
    // The user must be able to get to it: search permission on every directory on the way.
    for dir in prefixes(&real).iter().rev().skip(1) {
        let m = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if !executable_by(&m, who) {
            return Err(format!(
                "{} is not searchable by uid {} gid {}",
                dir.display(),
                who.uid,
                who.gid
            ));
        }
    }
    let m = std::fs::metadata(&real).map_err(|e| format!("{}: {e}", real.display()))?;
    if !m.is_file() || !executable_by(&m, who) {
        return Err(format!(
            "{} is not executable for uid {} gid {}",
            real.display(),
            who.uid,
            who.gid
        ));
    }
    let mode = m.permissions().mode();
    let as_root = who.uid == 0
        || who.gid == 0
        || (m.uid() == 0 && mode & 0o4100 == 0o4100)
        || (m.gid() == 0 && mode & 0o2010 == 0o2010);
    if !as_root {
        return Ok(None);
    }
    let mut why = unsafe_part(&run)?;
    if why.is_none() && real != run {
        why = unsafe_part(&real)?;
    }
    match why {
        Some(w) if security => Err(format!("unsafe permissions: {w}")),
        w => Ok(w),
    }
}

/// Resolves who runs every script of `conf` and drops the refused ones (see the module docs).
/// Returns the warnings to log, each naming `file:line`.
pub fn apply(conf: &mut KeepalivedConf) -> Vec<String> {
    let security = conf.global.enable_script_security;
    let mut warnings = Vec::new();
    let default: Result<RunAs, String> = match &conf.global.script_user {
        Some((u, g)) => lookup(u, g.as_deref()).map_err(|e| format!("script_user: {e}")),
        None => match lookup("keepalived_script", None) {
            Ok(r) => Ok(r),
            Err(_) if !security => Ok(ours()),
            Err(e) => Err(format!(
                "{e}, and with enable_script_security a script without a user of its own needs \
                 script_user or a keepalived_script user"
            )),
        },
    };
    let mut any = false;
    let mut insecure = false;
    let mut resolve = |cmd: &mut ScriptCmd, what: &str, warnings: &mut Vec<String>| -> bool {
        let who = match &cmd.user {
            Some(u) => lookup(u, cmd.group.as_deref()),
            None => default.clone(),
        };
        let r = who.and_then(|who| {
            cmd.run_as = Some(who);
            check(cmd, who, security, warnings)
        });
        match r {
            Ok(w) => {
                any = true;
                if let Some(w) = w {
                    insecure = true;
                    warnings.push(format!("{}: {what} {}: {w}", cmd.pos, cmd.display()));
                }
                true
            }
            Err(e) => {
                warnings.push(format!(
                    "{}: {what} {} disabled: {e}",
                    cmd.pos,
                    cmd.display()
                ));
                false
            }
        }
    };
    let mut dropped = Vec::new();
    for s in &mut conf.scripts {
        let what = format!("vrrp_script {}:", s.name);
        if !resolve(&mut s.command, &what, &mut warnings) {
            dropped.push(s.name.clone());
        }
    }
    conf.scripts.retain(|s| !dropped.contains(&s.name));
    for i in &mut conf.instances {
        let names: Vec<String> = dropped.iter().map(|d| track_script_name(d)).collect();
        i.config.track.retain(|t| !names.contains(&t.name));
        for slot in i.notify.all_mut() {
            if let Some(cmd) = slot
                && !resolve(cmd, "notify script", &mut warnings)
            {
                *slot = None;
            }
        }
    }
    for g in &mut conf.groups {
        for slot in g.notify.all_mut() {
            if let Some(cmd) = slot
                && !resolve(cmd, "notify script", &mut warnings)
            {
                *slot = None;
            }
        }
    }
    if any && !security {
        warnings.push(format!(
            "SECURITY VIOLATION - scripts are being executed but script_security not enabled.{}",
            if insecure {
                " There are insecure scripts."
            } else {
                ""
            }
        ));
    }
    warnings
}
