//! `vrrp_script NAME { script "CMD" interval S timeout S weight W [reverse] rise N fall N
//! user USER [GROUP] init_fail }`, and the command lines of scripts ([`ScriptCmd`]).

use super::{ConfError, GlobalDefs, Item, Notice, Pos, err};
use std::time::Duration;

/// The user and group a script runs as, once resolved (by `vrrpd`, from the names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// A script's command line as keepalived 2.2.7 reads it: the first argument of the key (quote it to
/// give arguments: `script "/bin/check eth0"`) is split into words and run without a shell; for
/// `notify*` keys, the next two arguments are the user and group to run it as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptCmd {
    /// The words: program and arguments.
    pub argv: Vec<String>,
    /// The user to run it as (else `script_user`, else `keepalived_script`, else root).
    pub user: Option<String>,
    /// Its group (else the user's).
    pub group: Option<String>,
    /// Where it was given.
    pub pos: Pos,
    /// Filled in by `vrrpd` before anything runs: who runs it.
    pub run_as: Option<RunAs>,
}

impl ScriptCmd {
    /// Reads the command of `l` (its first argument); with `user_slots`, the next two arguments are
    /// user and group (keepalived's `notify*` syntax). Words past those are reported and ignored.
    pub fn read(
        l: &Item,
        user_slots: bool,
        notices: &mut Vec<Notice>,
    ) -> Result<ScriptCmd, ConfError> {
        let first = l.arg(0)?;
        let argv = split_command(&first.text);
        if argv.is_empty() {
            return err(l.pos(), format!("{}: needs a command", l.name()));
        }
        let mut c = ScriptCmd {
            argv,
            user: None,
            group: None,
            pos: l.pos().clone(),
            run_as: None,
        };
        let mut rest = l.args[1..].iter();
        if user_slots {
            c.user = rest.next().map(|w| w.text.clone());
            c.group = rest.next().map(|w| w.text.clone());
        }
        if let Some(w) = rest.next() {
            notices.push(Notice {
                pos: w.pos.clone(),
                msg: format!(
                    "{}: {:?} and what follows ignored, as keepalived does (quote the whole command line)",
                    l.name(),
                    w.text
                ),
            });
        }
        Ok(c)
    }

    /// The command line, for logs.
    pub fn display(&self) -> String {
        self.argv.join(" ")
    }
}

/// A tracking script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Its name, as `track_script` refers to it.
    pub name: String,
    /// Where it was defined.
    pub pos: Pos,
    /// The command (its `user` from the `user` key).
    pub command: ScriptCmd,
    /// `interval`: default 1 s.
    pub interval: Duration,
    /// `timeout`: default the interval.
    pub timeout: Duration,
    /// `weight` (with `reverse`: negated meaning, kept as keepalived stores it): default 0.
    pub weight: i32,
    /// `rise`: successes to go up, default 1.
    pub rise: u32,
    /// `fall`: failures to go down, default 1.
    pub fall: u32,
    /// `init_fail`: starts down instead of up.
    pub init_fail: bool,
}

/// Splits a command line into words: blanks separate, `'...'` and `"..."` group, `\` escapes.
pub fn split_command(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut have = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if have {
                    out.push(std::mem::take(&mut cur));
                    have = false;
                }
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                have = true;
            }
            (Some(q), c) if c == q => quote = None,
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    have = true;
                }
            }
            (_, c) => {
                cur.push(c);
                have = true;
            }
        }
    }
    if have {
        out.push(cur);
    }
    out
}

/// Reads a `vrrp_script` block.
pub fn read(item: &Item, _g: &GlobalDefs, notices: &mut Vec<Notice>) -> Result<Script, ConfError> {
    let name = item.arg(0)?.text.clone();
    let mut command = None;
    let (mut user, mut group) = (None, None);
    let mut s = Script {
        name,
        pos: item.pos().clone(),
        command: ScriptCmd {
            argv: Vec::new(),
            user: None,
            group: None,
            pos: item.pos().clone(),
            run_as: None,
        },
        interval: Duration::from_secs(1),
        timeout: Duration::ZERO,
        weight: 0,
        rise: 1,
        fall: 1,
        init_fail: false,
    };
    let big = Duration::from_secs(86_400);
    for l in item.block()? {
        match l.name() {
            "script" => command = Some(ScriptCmd::read(l, false, notices)?),
            "interval" => s.interval = l.seconds(big)?,
            "timeout" => s.timeout = l.seconds(big)?,
            "weight" => {
                let w = l.arg(0)?;
                s.weight = super::parse_int("weight", w, -253..=253)?;
                if let Some(r) = l.args.get(1) {
                    if r.text != "reverse" {
                        return err(&r.pos, format!("weight: unexpected {:?}", r.text));
                    }
                    s.weight = -s.weight;
                }
            }
            "rise" => s.rise = l.int(1..=u32::MAX)?,
            "fall" => s.fall = l.int(1..=u32::MAX)?,
            "user" => {
                user = Some(l.arg(0)?.text.clone());
                group = l.args.get(1).map(|w| w.text.clone());
            }
            "init_fail" => s.init_fail = true,
            k => notices.push(super::Notice {
                pos: l.pos().clone(),
                msg: format!("vrrp_script {}: {k} is not implemented; ignored", s.name),
            }),
        }
    }
    if let Some(c) = command {
        s.command = c;
    }
    s.command.user = user;
    s.command.group = group;
    if s.command.argv.is_empty() {
        return err(
            item.pos(),
            format!("vrrp_script {}: no script given", s.name),
        );
    }
    if s.interval.is_zero() {
        return err(
            item.pos(),
            format!("vrrp_script {}: interval must be above 0", s.name),
        );
    }
    if s.timeout.is_zero() {
        s.timeout = s.interval;
    }
    Ok(s)
}
