//! `conntrack -R FILE` (`--load-file`): every line is a conntrack command line.
//!
//! Like conntrack-tools, the whole file is parsed before anything is applied: a bad line aborts with its
//! number and the table is left untouched. Unlike conntrack-tools, the parsing is done once, on every core,
//! and each create is encoded into its netlink message right there ([`ctnl::Prepared`]); the thread that
//! owns the socket then only queues those messages in batches. Commands other than creates (`-D`, `-U`,
//! `-F` lines) run in file order between the runs of creates.
//!
//! Encoded messages are kept in memory up to [`ENCODE_BUDGET`] bytes (about 400,000 UDP lines). Lines past
//! that are still checked in the first pass, and parsed a second time while sending, so a huge file costs
//! time rather than memory.

use std::io::Write;
use std::ops::Range;

use ctnl::{Conntrack, Entry, Error as CtError, Key, Prepared};

use super::Outcome;
use super::kernel::{entry_for_create, execute, failed, open};
use super::opts::cmd;
use super::parse::{Fail, Parsed, hold_warnings, muted};

/// Bytes of encoded creates held between the check and the sending, all parser threads together.
pub const ENCODE_BUDGET: usize = 64 << 20;
/// Files with fewer lines are parsed on the calling thread only.
const PARALLEL_MIN_LINES: usize = 4096;
/// Creates are sent in runs of this many bytes, one `sendmsg` each, and the answers to a run are read before
/// the next is sent, so a failing create stops the file within one run (see [`Sender::creates`]).
const RUN: usize = ctnl::batch::DEFAULT_CHUNK;

/// A numbered, non-empty, non-comment line of the file.
type Line<'a> = (usize, &'a str);

/// One stretch of the file, in file order.
enum Seg {
    /// Consecutive creates, encoded, with `(index into the line list, command)` for each.
    Creates(Prepared, Vec<(usize, u32)>),
    /// Any other command.
    Other(Box<Parsed>),
    /// Lines (indices into the line list) checked but kept as text: parsed again when applied.
    Later(Range<usize>),
}

/// What one line asks for. Nearly every line is a create and the value lives only until it is encoded, so
/// the entry is not boxed (that would allocate once per line).
#[allow(clippy::large_enum_variant)]
enum Op {
    Create(u32, Entry),
    Other(Box<Parsed>),
    /// A command `-R` does not take (`-L`, `-G`, ...), by name. conntrack-tools refuses it only after the
    /// whole file parsed, so a later line's parse error wins over it.
    Unsupported(&'static str),
}

/// The first line (number, command name) of a file with a command `-R` does not take.
type FirstUnsupported = Option<(usize, &'static str)>;

/// The error for a command `-R` does not take, on line `line`.
fn unsupported(line: usize, name: &str) -> Fail {
    at(
        line,
        Fail::param(format!("Cannot use command `{name}' with --load-file")),
    )
}

/// `conntrack -R FILE`: parses every line first (a bad line aborts with its number, nothing applied), then
/// applies them in order; runs of creates go through `ctnl` batches.
pub fn load_file(progname: &str, path: &str, w: &mut dyn Write) -> Result<(), Fail> {
    load_file_with(progname, path, w, ENCODE_BUDGET)
}

/// [`load_file`] with the memory budget for encoded creates given (tests use a tiny one to exercise the
/// second parse).
pub fn load_file_with(
    progname: &str,
    path: &str,
    w: &mut dyn Write,
    budget: usize,
) -> Result<(), Fail> {
    let open_failed = || Fail::param(format!("Failed to open file {path} for reading"));
    let text = if path == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|_| open_failed())?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|_| open_failed())?
    };
    let lines: Vec<Line<'_>> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_start_matches([' ', '\t'])))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let segs = parse_all(progname, &lines, budget)?;
    apply(progname, &lines, segs, w)
}

/// What a parser thread returns: the warnings it kept, then its segments (and its first line with a
/// command `-R` does not take) or its first bad line.
type ThreadParse = (Vec<String>, Result<(Vec<Seg>, FirstUnsupported), Fail>);

/// Pass 1: parses (and encodes) every line, split across the cores. The first bad line in file order wins,
/// as if the file had been read from the top.
fn parse_all(progname: &str, lines: &[Line<'_>], budget: usize) -> Result<Vec<Seg>, Fail> {
    let threads = if lines.len() < PARALLEL_MIN_LINES {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 8))
    };
    if threads == 1 {
        let (segs, bad) = parse_range(progname, lines, 0..lines.len(), budget)?;
        return match bad {
            Some((line, name)) => Err(unsupported(line, name)),
            None => Ok(segs),
        };
    }
    let per = lines.len().div_ceil(threads);
    // Each thread keeps its parser warnings (`-a`, SRC_NAT in a list, a missing connlabel.conf); they are
    // printed here in file order. A thread stops at its first bad line, so what it kept is exactly what a
    // sequential parse would have printed for its lines; the threads after a bad line print nothing.
    let results: Vec<ThreadParse> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let range = (t * per).min(lines.len())..((t + 1) * per).min(lines.len());
                sc.spawn(move || {
                    hold_warnings(true);
                    let r = parse_range(progname, lines, range, budget / threads);
                    (hold_warnings(false), r)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| (Vec::new(), Err(Fail::other("parser thread failed"))))
            })
            .collect()
    });
    let mut segs = Vec::new();
    let mut first_unsupported = None;
    for (warnings, r) in results {
        for w in warnings {
            eprintln!("{w}");
        }
        let (s, bad) = r?;
        segs.extend(s);
        first_unsupported = first_unsupported.or(bad);
    }
    match first_unsupported {
        Some((line, name)) => Err(unsupported(line, name)),
        None => Ok(segs),
    }
}

/// Parses `lines[range]` into segments, encoding creates until `budget` bytes are held; the lines after
/// that are only checked and become one [`Seg::Later`]. Also returns the first line holding a command
/// `-R` does not take (reported only when no line fails to parse).
fn parse_range(
    progname: &str,
    lines: &[Line<'_>],
    range: Range<usize>,
    budget: usize,
) -> Result<(Vec<Seg>, FirstUnsupported), Fail> {
    let mut segs = Vec::new();
    let mut words: Vec<&str> = Vec::with_capacity(24);
    let mut run = Run::default();
    let mut held = 0usize;
    let mut first_unsupported = None;
    let end = range.end;
    for i in range {
        if held + run.prep.encoded_len() > budget {
            // Keep what is encoded; the rest of the range is checked now and parsed again when applied.
            run.close_into(&mut segs);
            let bad = check_range(progname, lines, i..end, &mut words)?;
            segs.push(Seg::Later(i..end));
            return Ok((segs, first_unsupported.or(bad)));
        }
        let (line, text) = lines[i];
        match line_op(progname, line, text, &mut words)? {
            Op::Create(command, e) => {
                run.push(i, line, command, &e)?;
                if run.prep.encoded_len() >= RUN {
                    held += run.close_into(&mut segs);
                }
            }
            Op::Other(parsed) => {
                held += run.close_into(&mut segs);
                segs.push(Seg::Other(parsed));
            }
            Op::Unsupported(name) => {
                first_unsupported = first_unsupported.or(Some((line, name)));
            }
        }
    }
    run.close_into(&mut segs);
    Ok((segs, first_unsupported))
}

/// Creates being gathered into one [`Seg::Creates`].
#[derive(Default)]
struct Run {
    prep: Prepared,
    /// `(index into the line list, command)` per create.
    ops: Vec<(usize, u32)>,
}

impl Run {
    fn push(&mut self, index: usize, line: usize, command: u32, e: &Entry) -> Result<(), Fail> {
        self.prep
            .create(e)
            .map_err(|err| at(line, failed(&err, command)))?;
        self.ops.push((index, command));
        Ok(())
    }

    /// Moves the run, if not empty, to the end of `segs`; returns its encoded size.
    fn close_into(&mut self, segs: &mut Vec<Seg>) -> usize {
        let n = self.prep.encoded_len();
        if !self.prep.is_empty() {
            let run = std::mem::take(self);
            segs.push(Seg::Creates(run.prep, run.ops));
        }
        n
    }
}

/// Checks `lines[range]` completely (a create is built and encoded too) without keeping anything; returns
/// the first line holding a command `-R` does not take.
fn check_range<'a>(
    progname: &'a str,
    lines: &[Line<'a>],
    range: Range<usize>,
    words: &mut Vec<&'a str>,
) -> Result<FirstUnsupported, Fail> {
    let mut scratch = Prepared::new();
    let mut first_unsupported = None;
    for &(line, text) in &lines[range] {
        match line_op(progname, line, text, words)? {
            Op::Create(command, e) => {
                scratch.clear();
                scratch
                    .create(&e)
                    .map_err(|err| at(line, failed(&err, command)))?;
            }
            Op::Unsupported(name) => first_unsupported = first_unsupported.or(Some((line, name))),
            Op::Other(_) => {}
        }
    }
    Ok(first_unsupported)
}

/// Pass 2: applies the segments in order on one socket.
fn apply(
    progname: &str,
    lines: &[Line<'_>],
    segs: Vec<Seg>,
    w: &mut dyn Write,
) -> Result<(), Fail> {
    let mut out = Sender {
        ct: open()?,
        progname,
        lines,
    };
    for seg in segs {
        match seg {
            Seg::Creates(prep, ops) => out.creates(&prep, &ops)?,
            Seg::Other(parsed) => {
                if !run_other(&parsed, w)? {
                    return Ok(());
                }
            }
            Seg::Later(range) => {
                // Parsed a second time: its warnings were printed the first time.
                if !muted(|| out.later(range, w))? {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

impl Sender<'_, '_> {
    /// Applies checked lines kept as text; `false` when stdout went away.
    fn later(&mut self, range: Range<usize>, w: &mut dyn Write) -> Result<bool, Fail> {
        let (progname, lines) = (self.progname, self.lines);
        let mut words: Vec<&str> = Vec::with_capacity(24);
        let mut run = Run::default();
        for i in range {
            let (line, text) = lines[i];
            match line_op(progname, line, text, &mut words)? {
                Op::Create(command, e) => {
                    run.push(i, line, command, &e)?;
                    if run.prep.encoded_len() >= RUN {
                        self.creates(&run.prep, &run.ops)?;
                        run = Run::default();
                    }
                }
                Op::Other(parsed) => {
                    self.creates(&run.prep, &run.ops)?;
                    run = Run::default();
                    if !run_other(&parsed, w)? {
                        return Ok(false);
                    }
                }
                // The first pass refused the file before anything was applied.
                Op::Unsupported(name) => return Err(unsupported(line, name)),
            }
        }
        self.creates(&run.prep, &run.ops)?;
        Ok(true)
    }
}

/// Runs a non-create line; `false` when stdout went away and the load should end quietly.
fn run_other(parsed: &Parsed, w: &mut dyn Write) -> Result<bool, Fail> {
    match execute(parsed, w) {
        Ok(_) => Ok(true),
        Err(Outcome::Fail(f)) => Err(f),
        Err(Outcome::BrokenPipe) => Ok(false),
    }
}

/// The socket and what is needed to undo the tail of a failed run.
struct Sender<'l, 'a> {
    ct: Conntrack,
    progname: &'a str,
    lines: &'l [Line<'a>],
}

impl Sender<'_, '_> {
    /// Sends a run of creates as one batch. At the first failure (in file order; `-A` ignores entries that
    /// already exist) the creates of the run that came after the failing line are deleted again, so the
    /// table ends as conntrack-tools leaves it: every line before the failing one applied, none after.
    fn creates(&mut self, prep: &Prepared, ops: &[(usize, u32)]) -> Result<(), Fail> {
        if prep.is_empty() {
            return Ok(());
        }
        let mut batch = self.ct.batch();
        batch.extend(prep).map_err(|e| failed(&e, cmd::CT_CREATE))?;
        let report = batch.finish().map_err(|e| failed(&e, cmd::CT_CREATE))?;
        for (j, err) in &report.failures {
            let command = ops.get(*j).map_or(cmd::CT_CREATE, |o| o.1);
            if command == cmd::CT_ADD && matches!(err, CtError::Exists) {
                continue;
            }
            let made_after: Vec<usize> = (j + 1..ops.len())
                .filter(|k| report.result(*k).is_ok())
                .map(|k| ops[k].0)
                .collect();
            self.undo(&made_after);
            return Err(failed(err, command));
        }
        Ok(())
    }

    /// Deletes the entries the lines at `indices` created (best effort: the file is failing anyway).
    fn undo(&mut self, indices: &[usize]) {
        // The lines are parsed again to find their keys; their warnings were printed the first time.
        muted(|| self.delete_created(indices));
    }

    fn delete_created(&mut self, indices: &[usize]) {
        let mut words: Vec<&str> = Vec::with_capacity(24);
        let mut batch = self.ct.batch();
        for &i in indices {
            let (line, text) = self.lines[i];
            let Ok(Op::Create(_, e)) = line_op(self.progname, line, text, &mut words) else {
                continue;
            };
            let key = match (e.orig, e.reply) {
                (Some(t), _) => Key::orig(t),
                (None, Some(t)) => Key::reply(t),
                (None, None) => continue,
            };
            let key = match e.zone {
                Some(z) => key.with_zone(z),
                None => key,
            };
            if batch.delete(&key).is_err() {
                return;
            }
        }
        let _ = batch.finish();
    }
}

/// Prefixes a line's error with its number.
fn at(line: usize, f: Fail) -> Fail {
    Fail {
        code: f.code,
        msg: format!("line {line}: {}", f.msg),
    }
}

/// Parses one line (`words` is scratch space): a create with its entry, or another allowed command.
fn line_op<'a>(
    progname: &'a str,
    line: usize,
    text: &'a str,
    words: &mut Vec<&'a str>,
) -> Result<Op, Fail> {
    let parsed = if text.contains('"') {
        let owned = split_line(text);
        let mut v: Vec<&str> = vec![progname];
        v.extend(owned.iter().map(String::as_str));
        super::parse::parse(&v)
    } else {
        split_words(progname, text, words);
        super::parse::parse(words)
    }
    .map_err(|f| at(line, f))?;
    if parsed.command
        & (cmd::CT_CREATE | cmd::CT_ADD | cmd::CT_UPDATE | cmd::CT_DELETE | cmd::CT_FLUSH)
        == 0
    {
        return Ok(Op::Unsupported(unsupported_name(parsed.command)));
    }
    if parsed.command & (cmd::CT_CREATE | cmd::CT_ADD) != 0 {
        let e = entry_for_create(&parsed, parsed.labelmap.as_ref()).map_err(|f| at(line, f))?;
        Ok(Op::Create(parsed.command, e))
    } else {
        Ok(Op::Other(Box::new(parsed)))
    }
}

/// `words` = `progname` and the blank-separated words of `text` (blanks: space, tab, CR, LF).
fn split_words<'a>(progname: &'a str, text: &'a str, words: &mut Vec<&'a str>) {
    words.clear();
    words.push(progname);
    let mut start = None;
    for (i, b) in text.bytes().enumerate() {
        let blank = matches!(b, b' ' | b'\t' | b'\n' | b'\r');
        match (start, blank) {
            (Some(s), true) => {
                words.extend(text.get(s..i));
                start = None;
            }
            (None, false) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        words.extend(text.get(s..));
    }
}

fn unsupported_name(command: u32) -> &'static str {
    match command {
        cmd::CT_LIST => "-L",
        cmd::CT_GET => "-G",
        cmd::CT_EVENT => "-E",
        cmd::CT_VERSION => "-V",
        cmd::CT_HELP => "-h",
        cmd::EXP_LIST => "-L expect",
        cmd::EXP_CREATE => "-C expect",
        cmd::EXP_DELETE => "-D expect",
        cmd::EXP_GET => "-G expect",
        cmd::EXP_FLUSH => "-F expect",
        cmd::EXP_EVENT => "-E expect",
        cmd::CT_COUNT => "-C",
        cmd::EXP_COUNT => "-C expect",
        cmd::CT_STATS => "-S",
        cmd::EXP_STATS => "-S expect",
        _ => "unknown",
    }
}

/// Splits a `-R` line into words like conntrack-tools: blanks separate, `"..."` groups, `\` escapes inside
/// quotes.
pub fn split_line(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut escaped, mut any) = (false, false, false);
    for c in line.chars() {
        if quoted {
            if escaped {
                cur.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = false;
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                any = true;
            }
            ' ' | '\t' | '\n' | '\r' => {
                if !cur.is_empty() || any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_like_conntrack_tools() {
        assert_eq!(
            split_line("-I  -s 1.2.3.4\t-t 5\n"),
            vec!["-I", "-s", "1.2.3.4", "-t", "5"]
        );
        assert_eq!(split_line("-l \"a b\" x"), vec!["-l", "a b", "x"]);
    }

    #[test]
    fn plain_lines_split_on_blanks_only() {
        let mut w = Vec::new();
        split_words("ct", "-I  -s 1.2.3.4\t-t 5\r\n", &mut w);
        assert_eq!(w, ["ct", "-I", "-s", "1.2.3.4", "-t", "5"]);
        split_words("ct", "\u{e9}x\x0by  z", &mut w);
        assert_eq!(w, ["ct", "\u{e9}x\x0by", "z"]);
        split_words("ct", "   ", &mut w);
        assert_eq!(w, ["ct"]);
    }
}
