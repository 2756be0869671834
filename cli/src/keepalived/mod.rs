//! A reader for keepalived 2.2.7's configuration language, in two layers.
//!
//! * The generic layer (this module and [`lex`]): files become a tree of [`Item`]s, each a key, its
//!   arguments and an optional `{ }` block, with the `file:line` of every word ([`Pos`]). It follows
//!   keepalived's `lib/parser.c` rules: `#` and `!` start a comment anywhere outside double quotes
//!   (`\#`, `\!` escape them), a trailing `\` continues the line, `"quoted words"` are one word without
//!   their quotes, braces may touch words (`virtual_ipaddress{`), a `{` may open on the next line, and
//!   `include PATTERN` (also `includer`/`includem`/`includew`/`includeb`/`includea`) is replaced by the
//!   files the glob pattern matches, in sorted order, a relative pattern being taken from the directory of
//!   the file that includes it. `$NAME=value` defines a parameter that `$NAME` and `${NAME}` expand later
//!   on; a line starting `@ID` is kept only when ID is the configuration id, `@^ID` only when it is not.
//! * Typed readers, one file per section: [`global_defs`], [`vrrp_script`], [`vrrp_sync_group`],
//!   [`vrrp_instance`], [`virtual_server`] (with `virtual_server_group`, into `lvs_check` values).
//!   [`read`] runs them over the top-level items and collects the [`Notice`]s (keys a reader does not
//!   implement, skipped sections).
//!
//! Errors carry a [`Pos`]: a malformed file is rejected whole with `file:line: reason`, before anything
//! is applied.

pub mod global_defs;
pub mod lex;
pub mod virtual_server;
pub mod vrrp_instance;
pub mod vrrp_script;
pub mod vrrp_sync_group;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use global_defs::GlobalDefs;
pub use vrrp_instance::Instance;
pub use vrrp_script::Script;
pub use vrrp_sync_group::SyncGroup;

/// Where a word was read: file and 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    /// The file (as named by `-f` or by the `include` glob).
    pub file: Arc<Path>,
    /// 1-based line number (of the line's start, for a continued line).
    pub line: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One word of a line, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The text, quotes removed.
    pub text: String,
    /// Where it was read.
    pub pos: Pos,
}

/// A configuration line: a key, its arguments, and the `{ }` block that follows it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The first word.
    pub key: Word,
    /// The other words of the line (before any `{`).
    pub args: Vec<Word>,
    /// The block's lines, when the key opens one.
    pub block: Option<Vec<Item>>,
}

/// A configuration error: where, and why. Printed as `file:line: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfError {
    /// Where (None for an error about the file as a whole, such as one that cannot be read).
    pub pos: Option<Pos>,
    /// What is wrong.
    pub msg: String,
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pos {
            Some(p) => write!(f, "{p}: {}", self.msg),
            None => f.write_str(&self.msg),
        }
    }
}

impl std::error::Error for ConfError {}

/// A warning that does not stop the daemon: a key not implemented, a section skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Where.
    pub pos: Pos,
    /// What.
    pub msg: String,
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pos, self.msg)
    }
}

/// An error at `pos`.
pub fn err<T>(pos: &Pos, msg: impl Into<String>) -> Result<T, ConfError> {
    Err(ConfError {
        pos: Some(pos.clone()),
        msg: msg.into(),
    })
}

impl Item {
    /// Where the line starts.
    pub fn pos(&self) -> &Pos {
        &self.key.pos
    }

    /// The key's text.
    pub fn name(&self) -> &str {
        &self.key.text
    }

    /// Argument `i`, or an error naming the key.
    pub fn arg(&self, i: usize) -> Result<&Word, ConfError> {
        match self.args.get(i) {
            Some(w) => Ok(w),
            None if i == 0 => err(self.pos(), format!("{}: needs a value", self.name())),
            None => err(
                self.pos(),
                format!("{}: needs at least {} values", self.name(), i + 1),
            ),
        }
    }

    /// The only argument: an error when missing; extra words are an error too.
    pub fn value(&self) -> Result<&Word, ConfError> {
        let w = self.arg(0)?;
        if let Some(extra) = self.args.get(1) {
            return err(
                &extra.pos,
                format!(
                    "{}: unexpected {:?} after the value",
                    self.name(),
                    extra.text
                ),
            );
        }
        Ok(w)
    }

    /// The block, or an error saying the key needs one.
    pub fn block(&self) -> Result<&[Item], ConfError> {
        match &self.block {
            Some(b) => Ok(b),
            None => err(self.pos(), format!("{}: needs a {{ }} block", self.name())),
        }
    }

    /// The only argument as an integer in `range`.
    pub fn int<T>(&self, range: std::ops::RangeInclusive<T>) -> Result<T, ConfError>
    where
        T: std::str::FromStr + PartialOrd + fmt::Display,
    {
        let w = self.value()?;
        parse_int(self.name(), w, range)
    }

    /// The only argument as seconds (decimals allowed, as keepalived reads them), at most `max`.
    pub fn seconds(&self, max: Duration) -> Result<Duration, ConfError> {
        let w = self.value()?;
        parse_seconds(self.name(), w, max)
    }

    /// keepalived's optional boolean (`key`, `key true|on|yes`, `key false|off|no`): absent is true.
    pub fn flag(&self) -> Result<bool, ConfError> {
        match self.args.first() {
            None => Ok(true),
            Some(w) => match w.text.as_str() {
                "true" | "on" | "yes" => Ok(true),
                "false" | "off" | "no" => Ok(false),
                other => err(
                    &w.pos,
                    format!("{}: {other:?} is neither true nor false", self.name()),
                ),
            },
        }
    }

    /// The arguments' texts joined by spaces (a command line, say).
    pub fn joined_args(&self) -> String {
        self.args
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `w` as an integer of `key` in `range`.
pub fn parse_int<T>(key: &str, w: &Word, range: std::ops::RangeInclusive<T>) -> Result<T, ConfError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display,
{
    match w.text.parse::<T>() {
        Ok(v) if range.contains(&v) => Ok(v),
        _ => err(
            &w.pos,
            format!(
                "{key}: {:?} is not a number from {} to {}",
                w.text,
                range.start(),
                range.end()
            ),
        ),
    }
}

/// `w` as seconds (`1`, `0.1`, `2.5`), at most `max`, rounded to the microsecond.
pub fn parse_seconds(key: &str, w: &Word, max: Duration) -> Result<Duration, ConfError> {
    let bad = || {
        err(
            &w.pos,
            format!(
                "{key}: {:?} is not a number of seconds from 0 to {}",
                w.text,
                max.as_secs_f64()
            ),
        )
    };
    // Digits and at most one dot: no signs, exponents, "inf" or "nan".
    if w.text.is_empty()
        || !w.text.chars().all(|c| c.is_ascii_digit() || c == '.')
        || w.text.matches('.').count() > 1
        || w.text == "."
    {
        return bad();
    }
    let Ok(s) = w.text.parse::<f64>() else {
        return bad();
    };
    if s > max.as_secs_f64() {
        return bad();
    }
    Ok(Duration::from_micros((s * 1_000_000.0).round() as u64))
}

/// Reads `path` and everything it includes into items.
pub fn load(path: &Path, config_id: Option<&str>) -> Result<Vec<Item>, ConfError> {
    let lines = lex::read_file(path, config_id)?;
    lex::items(&lines)
}

/// Items of an in-memory text named `file` (includes are resolved against the current directory).
pub fn load_str(text: &str, file: &Path, config_id: Option<&str>) -> Result<Vec<Item>, ConfError> {
    let lines = lex::read_text(text, file, config_id)?;
    lex::items(&lines)
}

/// Everything vrrpd reads from a keepalived configuration.
#[derive(Debug, Clone, Default)]
pub struct KeepalivedConf {
    /// `global_defs`.
    pub global: GlobalDefs,
    /// `vrrp_script` blocks, in file order.
    pub scripts: Vec<Script>,
    /// `vrrp_sync_group` blocks, in file order.
    pub groups: Vec<SyncGroup>,
    /// `vrrp_instance` blocks, in file order.
    pub instances: Vec<Instance>,
    /// `virtual_server` blocks (groups resolved), in file order, for the LVS checker.
    pub virtual_servers: Vec<lvs_check::config::VirtualServer>,
    /// Keys and sections read but not implemented, with their position.
    pub notices: Vec<Notice>,
}

/// The top-level sections vrrpd does not run; each is skipped with one notice.
const OTHER_SECTIONS: &[(&str, &str)] = &[
    (
        "static_ipaddress",
        "static_ipaddress is not implemented; skipped",
    ),
    ("static_routes", "static_routes is not implemented; skipped"),
    ("static_rules", "static_rules is not implemented; skipped"),
    (
        "linkbeat_interfaces",
        "linkbeat_interfaces is not implemented; skipped",
    ),
    ("bfd_instance", "bfd_instance is not implemented; skipped"),
];

/// Which halves of keepalived.conf a run reads. keepalived's `-C` child reads only the checker's
/// sections and its `-P` child only the VRRP ones: the other half's blocks are skipped unread, so an
/// error in them (or a VRRP feature vrrpd does not have) does not stop the half that runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Halves {
    /// `vrrp_script`, `vrrp_sync_group`, `vrrp_instance`.
    pub vrrp: bool,
    /// `virtual_server_group`, `virtual_server`.
    pub lvs: bool,
}

impl Halves {
    /// Both halves (no `-C` or `-P`).
    pub const BOTH: Halves = Halves {
        vrrp: true,
        lvs: true,
    };
}

/// Reads the typed sections from items, then checks the cross references (scripts and instances named
/// by instances and groups exist, an instance is in at most one group, VRIDs are unique per interface
/// and family).
pub fn read(items: &[Item]) -> Result<KeepalivedConf, ConfError> {
    read_halves(items, Halves::BOTH)
}

/// [`read`] for the given halves only (`-C`, `-P`).
pub fn read_halves(items: &[Item], halves: Halves) -> Result<KeepalivedConf, ConfError> {
    let mut conf = KeepalivedConf::default();
    let mut skipped: Vec<&str> = Vec::new();
    // global_defs first: instances inherit from it wherever it stands. Groups too: a virtual_server
    // may name a virtual_server_group defined further down (keepalived links them at the end).
    for item in items.iter().filter(|i| i.name() == "global_defs") {
        global_defs::read(item, &mut conf.global, &mut conf.notices)?;
    }
    let mut vs_groups = Vec::new();
    for item in items
        .iter()
        .filter(|i| halves.lvs && i.name() == "virtual_server_group")
    {
        vs_groups.push(virtual_server::read_group(item, &mut conf.notices)?);
    }
    for item in items {
        match item.name() {
            "global_defs" => {}
            "vrrp_script" | "vrrp_sync_group" | "vrrp_instance" if !halves.vrrp => {}
            "virtual_server_group" | "virtual_server" if !halves.lvs => {}
            "vrrp_script" => {
                conf.scripts
                    .push(vrrp_script::read(item, &conf.global, &mut conf.notices)?)
            }
            "vrrp_sync_group" => conf
                .groups
                .push(vrrp_sync_group::read(item, &mut conf.notices)?),
            "vrrp_instance" => {
                conf.instances
                    .push(vrrp_instance::read(item, &conf.global, &mut conf.notices)?)
            }
            "virtual_server_group" => {}
            "virtual_server" => conf.virtual_servers.extend(virtual_server::read(
                item,
                &vs_groups,
                &mut conf.notices,
            )?),
            name => {
                if let Some((key, msg)) = OTHER_SECTIONS.iter().find(|(k, _)| *k == name) {
                    // One notice per kind of section, at its first occurrence.
                    if !skipped.contains(key) {
                        skipped.push(key);
                        conf.notices.push(Notice {
                            pos: item.pos().clone(),
                            msg: (*msg).to_owned(),
                        });
                    }
                } else {
                    conf.notices.push(Notice {
                        pos: item.pos().clone(),
                        msg: format!("unknown keyword {name:?}; ignored"),
                    });
                }
            }
        }
    }
    vrrp_instance::check_all(&mut conf)?;
    Ok(conf)
}

/// [`load`] then [`read`].
pub fn read_file(path: &Path, config_id: Option<&str>) -> Result<KeepalivedConf, ConfError> {
    read(&load(path, config_id)?)
}

/// [`load`] then [`read_halves`].
pub fn read_file_halves(
    path: &Path,
    config_id: Option<&str>,
    halves: Halves,
) -> Result<KeepalivedConf, ConfError> {
    read_halves(&load(path, config_id)?, halves)
}

/// The directory a relative include pattern is taken from: that of the including file.
pub(crate) fn base_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The body of the `keepalived_conf` fuzz target, public so that its corpus replays as an ordinary
/// test: reads `data` (as UTF-8, lossily) as a configuration named `fuzz.conf` with config id `a`,
/// and checks that an error names a line of the file and that what is read validates. Inputs naming
/// `include` are skipped (they would read files of this machine).
#[doc(hidden)]
pub fn fuzz_read(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if text.contains("include") {
        return;
    }
    let file = Path::new("fuzz.conf");
    match load_str(&text, file, Some("a")).and_then(|items| read(&items)) {
        Ok(conf) => {
            for i in &conf.instances {
                assert!(i.config.validate().is_ok(), "{}: read but invalid", i.name);
            }
        }
        Err(e) => {
            if let Some(p) = &e.pos {
                let lines = text.lines().count().max(1);
                assert!(
                    p.line >= 1 && (p.line as usize) <= lines + 1,
                    "{e}: line out of the file"
                );
            }
        }
    }
}
