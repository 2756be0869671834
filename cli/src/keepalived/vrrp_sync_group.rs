//! `vrrp_sync_group NAME { group { I1 I2 } notify_master|backup|fault|stop "CMD" notify "CMD" track_script { ... } }`.

use super::vrrp_script::ScriptCmd;
use super::{ConfError, Item, Notice, Pos, err};

/// The notify scripts of an instance or a group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Notify {
    /// `notify_master`.
    pub master: Option<ScriptCmd>,
    /// `notify_backup`.
    pub backup: Option<ScriptCmd>,
    /// `notify_fault`.
    pub fault: Option<ScriptCmd>,
    /// `notify_stop`.
    pub stop: Option<ScriptCmd>,
    /// `notify`: called with `INSTANCE|GROUP NAME STATE PRIORITY` appended.
    pub any: Option<ScriptCmd>,
}

impl Notify {
    /// Every script set, mutable (for resolving users and dropping refused ones).
    pub fn all_mut(&mut self) -> [&mut Option<ScriptCmd>; 5] {
        [
            &mut self.master,
            &mut self.backup,
            &mut self.fault,
            &mut self.stop,
            &mut self.any,
        ]
    }

    /// Reads a `notify*` line (`KEY "CMD ARGS" [USER [GROUP]]`); false when the key is not one.
    pub fn read(&mut self, l: &Item, notices: &mut Vec<Notice>) -> Result<bool, ConfError> {
        let slot = match l.name() {
            "notify_master" => &mut self.master,
            "notify_backup" => &mut self.backup,
            "notify_fault" => &mut self.fault,
            "notify_stop" => &mut self.stop,
            "notify" => &mut self.any,
            _ => return Ok(false),
        };
        *slot = Some(ScriptCmd::read(l, true, notices)?);
        Ok(true)
    }
}

/// A sync group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroup {
    /// The name.
    pub name: String,
    /// Where it was defined.
    pub pos: Pos,
    /// Member instance names.
    pub members: Vec<String>,
    /// Notify scripts.
    pub notify: Notify,
    /// `track_script` of the group: applied to every member (keepalived 2.x does the same).
    pub track_script: Vec<(String, Option<i32>)>,
}

/// Reads a `vrrp_sync_group` block.
pub fn read(item: &Item, notices: &mut Vec<Notice>) -> Result<SyncGroup, ConfError> {
    let name = item.arg(0)?.text.clone();
    let mut g = SyncGroup {
        name,
        pos: item.pos().clone(),
        members: Vec::new(),
        notify: Notify::default(),
        track_script: Vec::new(),
    };
    for l in item.block()? {
        if g.notify.read(l, notices)? {
            continue;
        }
        match l.name() {
            "group" => {
                for m in l.block()? {
                    g.members.push(m.key.text.clone());
                    g.members.extend(m.args.iter().map(|w| w.text.clone()));
                }
            }
            "track_script" => g.track_script.extend(super::vrrp_instance::tracks(l)?),
            k => notices.push(Notice {
                pos: l.pos().clone(),
                msg: format!(
                    "vrrp_sync_group {}: {k} is not implemented; ignored",
                    g.name
                ),
            }),
        }
    }
    if g.members.is_empty() {
        return err(
            item.pos(),
            format!("vrrp_sync_group {}: empty group", g.name),
        );
    }
    Ok(g)
}
