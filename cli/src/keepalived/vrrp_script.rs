//! `vrrp_script NAME { script "CMD" interval S timeout S weight W [reverse] rise N fall N user U init_fail }`.

use super::{ConfError, GlobalDefs, Item, Notice, Pos, err};
use std::time::Duration;

/// A tracking script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Its name, as `track_script` refers to it.
    pub name: String,
    /// Where it was defined.
    pub pos: Pos,
    /// The command's words (keepalived splits the `script` string and runs it without a shell).
    pub command: Vec<String>,
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
    /// `user USER [GROUP]`.
    pub user: Option<String>,
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
    let mut s = Script {
        name,
        pos: item.pos().clone(),
        command: Vec::new(),
        interval: Duration::from_secs(1),
        timeout: Duration::ZERO,
        weight: 0,
        rise: 1,
        fall: 1,
        user: None,
        init_fail: false,
    };
    let big = Duration::from_secs(86_400);
    for l in item.block()? {
        match l.name() {
            "script" => s.command = split_command(&l.joined_args()),
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
            "user" => s.user = Some(l.arg(0)?.text.clone()),
            "init_fail" => s.init_fail = true,
            k => notices.push(super::Notice {
                pos: l.pos().clone(),
                msg: format!("vrrp_script {}: {k} is not implemented; ignored", s.name),
            }),
        }
    }
    if s.command.is_empty() {
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
