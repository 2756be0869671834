//! keepalived's lexical rules (its `lib/parser.c`): comments, continuation, quotes, braces, `include`,
//! `$NAME=value` parameters and `@ID` line selectors, each word keeping its `file:line`.

use super::{ConfError, Item, Pos, Word, base_dir, err};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A token of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// A word (quotes removed).
    Word(Word),
    /// `{`.
    Open(Pos),
    /// `}`.
    Close(Pos),
}

/// A non-empty line of tokens.
pub type Line = Vec<Tok>;

/// Nesting limit of `include` (a file including itself would recurse forever).
const MAX_INCLUDE_DEPTH: usize = 32;

struct Reader<'a> {
    config_id: Option<&'a str>,
    defs: HashMap<String, String>,
    out: Vec<Line>,
}

/// Reads a file and the files it includes into lines.
pub fn read_file(path: &Path, config_id: Option<&str>) -> Result<Vec<Line>, ConfError> {
    let mut r = Reader {
        config_id,
        defs: HashMap::new(),
        out: Vec::new(),
    };
    let text = std::fs::read(path).map_err(|e| ConfError {
        pos: None,
        msg: format!("cannot read {}: {e}", path.display()),
    })?;
    r.text(&String::from_utf8_lossy(&text), path, 0)?;
    Ok(r.out)
}

/// Reads text named `file` (includes relative to `file`'s directory).
pub fn read_text(text: &str, file: &Path, config_id: Option<&str>) -> Result<Vec<Line>, ConfError> {
    let mut r = Reader {
        config_id,
        defs: HashMap::new(),
        out: Vec::new(),
    };
    r.text(text, file, 0)?;
    Ok(r.out)
}

impl Reader<'_> {
    fn text(&mut self, text: &str, file: &Path, depth: usize) -> Result<(), ConfError> {
        let file: Arc<Path> = Arc::from(file);
        let mut pending: Option<(u32, String)> = None;
        for (n, raw) in text.lines().enumerate() {
            let line_no = u32::try_from(n + 1).unwrap_or(u32::MAX);
            let pos = Pos {
                file: file.clone(),
                line: line_no,
            };
            let (clean, cont) = decomment(raw, &pos)?;
            let (start, joined) = match pending.take() {
                Some((start, mut acc)) => {
                    if !acc.is_empty() && !clean.is_empty() {
                        acc.push(' ');
                    }
                    acc.push_str(&clean);
                    (start, acc)
                }
                None => (line_no, clean),
            };
            if cont {
                pending = Some((start, joined));
                continue;
            }
            let pos = Pos {
                file: file.clone(),
                line: start,
            };
            self.line(&joined, &pos, depth)?;
        }
        if let Some((start, joined)) = pending {
            let pos = Pos {
                file: file.clone(),
                line: start,
            };
            self.line(&joined, &pos, depth)?;
        }
        Ok(())
    }

    fn line(&mut self, line: &str, pos: &Pos, depth: usize) -> Result<(), ConfError> {
        let mut line = line.trim();
        if line.is_empty() {
            return Ok(());
        }
        // `@ID line`: only for configuration ID; `@^ID line`: for every other one.
        if let Some(rest) = line.strip_prefix('@') {
            let (sel, body) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
            let keep = match sel.strip_prefix('^') {
                Some(id) => self.config_id != Some(id),
                None => self.config_id == Some(sel),
            };
            if !keep {
                return Ok(());
            }
            line = body.trim();
        }
        // `$NAME=value` defines a parameter.
        if let Some(rest) = line.strip_prefix('$')
            && let Some((name, value)) = rest.split_once('=')
            && !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.defs.insert(name.to_owned(), value.trim().to_owned());
            return Ok(());
        }
        let expanded;
        if line.contains('$') && !self.defs.is_empty() {
            expanded = expand(line, &self.defs);
            line = &expanded;
        }
        let toks = tokenize(line, pos)?;
        if let Some(Tok::Word(w)) = toks.first()
            && matches!(
                w.text.as_str(),
                "include" | "includer" | "includem" | "includew" | "includeb" | "includea"
            )
        {
            return self.include(&toks, w, depth);
        }
        self.out.push(toks);
        Ok(())
    }

    fn include(&mut self, toks: &[Tok], key: &Word, depth: usize) -> Result<(), ConfError> {
        let Some(Tok::Word(pattern)) = toks.get(1) else {
            return err(&key.pos, "include: needs a file name or pattern");
        };
        if toks.len() > 2 {
            return err(&key.pos, "include: takes one file name or pattern");
        }
        if depth >= MAX_INCLUDE_DEPTH {
            return err(
                &key.pos,
                format!(
                    "include: nested more than {MAX_INCLUDE_DEPTH} deep (a file includes itself?)"
                ),
            );
        }
        let pat = Path::new(&pattern.text);
        let full = if pat.is_absolute() {
            pat.to_path_buf()
        } else {
            base_dir(&key.pos.file).join(pat)
        };
        let files = glob(&full);
        let wild = pattern.text.contains(['*', '?', '[']);
        // keepalived: plain `include` matching nothing is silent; the strict kinds complain.
        if files.is_empty() && (key.text == "includew" || key.text == "includea")
            || files.is_empty() && !wild && key.text != "include"
        {
            return err(
                &pattern.pos,
                format!("{}: no file matches {:?}", key.text, pattern.text),
            );
        }
        for f in files {
            let text = std::fs::read(&f).map_err(|e| ConfError {
                pos: Some(pattern.pos.clone()),
                msg: format!("include: cannot read {}: {e}", f.display()),
            })?;
            self.text(&String::from_utf8_lossy(&text), &f, depth + 1)?;
        }
        Ok(())
    }
}

/// Removes a comment (`#` or `!` outside double quotes; `\#` and `\!` stand for the characters) and
/// surrounding blanks; returns the line and whether it ends with a continuation `\`.
fn decomment(raw: &str, pos: &Pos) -> Result<(String, bool), ConfError> {
    let mut out = String::with_capacity(raw.len());
    let mut quote = false;
    let mut cont = false;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quote = !quote;
                out.push(c);
            }
            '\\' => match chars.peek() {
                None => {
                    cont = true;
                    break;
                }
                Some(&n @ ('#' | '!')) if !quote => {
                    out.push(n);
                    chars.next();
                }
                Some(&n) => {
                    out.push('\\');
                    out.push(n);
                    chars.next();
                }
            },
            '#' | '!' if !quote => break,
            c => out.push(c),
        }
    }
    if quote {
        return err(pos, format!("unterminated quote in {:?}", raw.trim()));
    }
    Ok((out.trim().to_owned(), cont))
}

/// `$NAME` and `${NAME}` replaced by their definitions (unknown names are left as they are).
fn expand(line: &str, defs: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, tail) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(j) => (&inner[..j], &inner[j + 1..]),
                None => ("", after),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        match defs.get(name) {
            Some(v) if !name.is_empty() => {
                out.push_str(v);
                rest = tail;
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Splits a clean line into words (a `"quoted string"` is one word) and braces.
fn tokenize(line: &str, pos: &Pos) -> Result<Line, ConfError> {
    let mut toks = Vec::new();
    let mut rest = line;
    let word = |text: &str| {
        Tok::Word(Word {
            text: text.to_owned(),
            pos: pos.clone(),
        })
    };
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        if let Some(q) = rest.strip_prefix('"') {
            let Some(end) = q.find('"') else {
                return err(pos, format!("unmatched quote in {line:?}"));
            };
            toks.push(word(&q[..end]));
            rest = &q[end + 1..];
            continue;
        }
        if let Some(r) = rest.strip_prefix('{') {
            toks.push(Tok::Open(pos.clone()));
            rest = r;
            continue;
        }
        if let Some(r) = rest.strip_prefix('}') {
            toks.push(Tok::Close(pos.clone()));
            rest = r;
            continue;
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '"' || c == '{' || c == '}')
            .unwrap_or(rest.len());
        toks.push(word(&rest[..end]));
        rest = &rest[end..];
    }
    Ok(toks)
}

/// Builds the item tree from lines: `key args {` opens a block (the `{` may be on the next line), `}`
/// closes it; words after a `}` on the same line start a new item.
pub fn items(lines: &[Line]) -> Result<Vec<Item>, ConfError> {
    let toks: Vec<(bool, &Tok)> = lines
        .iter()
        .flat_map(|l| l.iter().enumerate().map(|(i, t)| (i == 0, t)))
        .collect();
    let mut i = 0;
    let out = block(&toks, &mut i, None)?;
    Ok(out)
}

fn block(toks: &[(bool, &Tok)], i: &mut usize, open: Option<&Pos>) -> Result<Vec<Item>, ConfError> {
    let mut items: Vec<Item> = Vec::new();
    let mut cur: Vec<Word> = Vec::new();
    let flush = |cur: &mut Vec<Word>, items: &mut Vec<Item>| {
        if !cur.is_empty() {
            let mut words = std::mem::take(cur).into_iter();
            if let Some(key) = words.next() {
                items.push(Item {
                    key,
                    args: words.collect(),
                    block: None,
                });
            }
        }
    };
    while *i < toks.len() {
        let (line_start, t) = toks[*i];
        *i += 1;
        match t {
            Tok::Word(w) => {
                if line_start {
                    flush(&mut cur, &mut items);
                }
                cur.push(w.clone());
            }
            Tok::Open(p) => {
                let pending = std::mem::take(&mut cur);
                let mut words = pending.into_iter();
                let inner = block(toks, i, Some(p))?;
                match words.next() {
                    Some(key) => items.push(Item {
                        key,
                        args: words.collect(),
                        block: Some(inner),
                    }),
                    None => {
                        // `{` alone on a line: it opens the previous line's block.
                        match items.last_mut() {
                            Some(last) if last.block.is_none() && line_start => {
                                last.block = Some(inner)
                            }
                            _ => return err(p, "'{' without a keyword before it"),
                        }
                    }
                }
            }
            Tok::Close(p) => {
                flush(&mut cur, &mut items);
                if open.is_some() {
                    return Ok(items);
                }
                return err(p, "'}' without a matching '{'");
            }
        }
    }
    flush(&mut cur, &mut items);
    if let Some(p) = open {
        return err(p, "'{' is never closed");
    }
    Ok(items)
}

/// The files matching `pattern` (`*`, `?` and `[...]` in any component), sorted; a pattern without
/// wildcards matches itself if it exists. Hidden names match only a pattern starting with a dot.
pub fn glob(pattern: &Path) -> Vec<PathBuf> {
    let mut cands: Vec<PathBuf> = vec![PathBuf::new()];
    for comp in pattern.components() {
        let c = comp.as_os_str().to_string_lossy();
        let mut next = Vec::new();
        if c.contains(['*', '?', '[']) {
            for base in &cands {
                let dir = if base.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    base.clone()
                };
                let Ok(rd) = std::fs::read_dir(&dir) else {
                    continue;
                };
                let mut names: Vec<String> = rd
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.') || c.starts_with('.'))
                    .filter(|n| wildmatch(c.as_bytes(), n.as_bytes()))
                    .collect();
                names.sort();
                next.extend(names.into_iter().map(|n| base.join(n)));
            }
        } else {
            next = cands.iter().map(|b| b.join(&*c)).collect();
        }
        cands = next;
    }
    cands.retain(|p| p.is_file());
    cands.sort();
    cands
}

/// Shell-style match of one name component.
fn wildmatch(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => (0..=s.len()).any(|k| wildmatch(&p[1..], &s[k..])),
        Some(b'?') => !s.is_empty() && wildmatch(&p[1..], &s[1..]),
        Some(b'[') => {
            let Some(end) = p.iter().skip(2).position(|&b| b == b']').map(|e| e + 2) else {
                return s.first() == Some(&b'[') && wildmatch(&p[1..], &s[1..]);
            };
            let Some(&ch) = s.first() else {
                return false;
            };
            let mut set = &p[1..end];
            let negate = matches!(set.first(), Some(b'!' | b'^'));
            if negate {
                set = &set[1..];
            }
            let mut hit = false;
            let mut k = 0;
            while k < set.len() {
                if k + 2 < set.len() && set[k + 1] == b'-' {
                    hit |= set[k] <= ch && ch <= set[k + 2];
                    k += 3;
                } else {
                    hit |= set[k] == ch;
                    k += 1;
                }
            }
            hit != negate && wildmatch(&p[end + 1..], &s[1..])
        }
        Some(&c) => s.first() == Some(&c) && wildmatch(&p[1..], &s[1..]),
    }
}
