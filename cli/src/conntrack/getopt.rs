//! A small re-implementation of glibc `getopt_long` semantics, as conntrack-tools drives it.
//!
//! conntrack-tools parses its command line with `getopt_long` and the option string
//! `":L::I::U::D::G::E::F::A::hVs:d:r:q:..."`, with `opterr = 0` and argument permutation on. Scripts depend on
//! the exact consequences: long options may be abbreviated to any unique prefix, optional arguments of short
//! options are glued (`-Lexpect`), the table name after `-L` is taken from the *next* word when it does not start
//! with `-` or `!`, and error messages quote `argv[optind - 1]`. This module reproduces those rules so the error
//! texts match; the option *set* itself lives in [`super::opts`].

/// Whether an option takes an argument (`struct option.has_arg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HasArg {
    /// `no_argument`.
    No,
    /// `required_argument`.
    Required,
    /// `optional_argument` (only `--name=value` or a glued short `-Xvalue`).
    Optional,
}

/// One long option: its name, whether it takes an argument and the code it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongOpt {
    /// Name without the leading `--`.
    pub name: &'static str,
    /// Argument kind.
    pub has_arg: HasArg,
    /// The code returned (a short option character, or a protocol-specific code).
    pub val: u32,
}

/// What one step of the parser returned (borrowing from `argv`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<'a> {
    /// An option and its argument, if any.
    Opt(u32, Option<&'a str>),
    /// `?`: unknown or ambiguous option; the text to quote is `argv[optind-1]`.
    Unknown(&'a str),
    /// `:`: a required argument is missing; the text to quote is `argv[optind-1]`.
    MissingArg(&'a str),
}

/// The parser state: `argv`, `optind` and the position inside a cluster of short options.
#[derive(Debug)]
pub struct Getopt<'a> {
    argv: &'a [&'a str],
    /// Index of the next word to look at (glibc `optind`).
    pub optind: usize,
    nextchar: usize,
    done: bool,
}

impl<'a> Getopt<'a> {
    /// Starts parsing `argv` (`argv[0]` is the program name).
    pub fn new(argv: &'a [&'a str]) -> Self {
        Getopt {
            argv,
            optind: 1,
            nextchar: 0,
            done: false,
        }
    }

    /// `argv[optind - 1]`, as conntrack-tools quotes it in error messages.
    pub fn prev_word(&self) -> &'a str {
        self.argv
            .get(self.optind.saturating_sub(1))
            .copied()
            .unwrap_or("")
    }

    /// conntrack-tools' `get_optional_arg()`: when the option had no glued argument, takes the next word if it
    /// exists and starts with neither `-` nor `!`.
    pub fn optional_next(&mut self, had_arg: bool) -> Option<&'a str> {
        if had_arg {
            return None;
        }
        let w: &'a str = self.argv.get(self.optind)?;
        if w.starts_with('-') || w.starts_with('!') {
            return None;
        }
        self.optind += 1;
        Some(w)
    }

    /// Returns the next option, or `None` at the end. `shorts` is the table of short options (`(char, HasArg)`),
    /// `longs` the long options currently known.
    pub fn next(&mut self, shorts: &[(char, HasArg)], longs: &[LongOpt]) -> Option<Step<'a>> {
        if self.done {
            return None;
        }
        if self.nextchar == 0 {
            // Skip non-options (glibc permutes them to the end; conntrack ignores them).
            loop {
                let w: &'a str = self.argv.get(self.optind)?;
                if w == "--" {
                    self.optind += 1;
                    self.done = true;
                    return None;
                }
                if w.len() > 1 && w.starts_with('-') {
                    break;
                }
                self.optind += 1;
            }
            let w: &'a str = self.argv[self.optind];
            if let Some(body) = w.strip_prefix("--") {
                self.optind += 1;
                return Some(self.long(body, w, longs));
            }
            self.nextchar = 1;
        }
        self.short(shorts)
    }

    fn long(&mut self, body: &'a str, word: &'a str, longs: &[LongOpt]) -> Step<'a> {
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let opt = match longs.iter().find(|o| o.name == name) {
            Some(o) => *o,
            None => {
                let mut cands = longs.iter().filter(|o| o.name.starts_with(name));
                let Some(first) = cands.next() else {
                    return Step::Unknown(word);
                };
                if cands.any(|c| c.has_arg != first.has_arg || c.val != first.val) {
                    return Step::Unknown(word);
                }
                *first
            }
        };
        match opt.has_arg {
            HasArg::No => {
                if inline.is_some() {
                    Step::Unknown(word)
                } else {
                    Step::Opt(opt.val, None)
                }
            }
            HasArg::Optional => Step::Opt(opt.val, inline),
            HasArg::Required => {
                if inline.is_some() {
                    return Step::Opt(opt.val, inline);
                }
                match self.argv.get(self.optind) {
                    Some(&v) => {
                        self.optind += 1;
                        Step::Opt(opt.val, Some(v))
                    }
                    None => Step::MissingArg(word),
                }
            }
        }
    }

    fn short(&mut self, shorts: &[(char, HasArg)]) -> Option<Step<'a>> {
        let word: &'a str = self.argv[self.optind];
        let c = word[self.nextchar..].chars().next()?;
        self.nextchar += c.len_utf8();
        let at_end = self.nextchar >= word.len();
        let rest: &'a str = &word[self.nextchar.min(word.len())..];
        let finish = |g: &mut Getopt<'a>| {
            g.nextchar = 0;
            g.optind += 1;
        };
        let Some(&(_, has_arg)) = shorts.iter().find(|(s, _)| *s == c) else {
            if at_end {
                finish(self);
            }
            return Some(Step::Unknown(self.prev_word()));
        };
        Some(match has_arg {
            HasArg::No => {
                if at_end {
                    finish(self);
                }
                Step::Opt(c as u32, None)
            }
            HasArg::Optional => {
                finish(self);
                Step::Opt(c as u32, if at_end { None } else { Some(rest) })
            }
            HasArg::Required => {
                finish(self);
                if !at_end {
                    Step::Opt(c as u32, Some(rest))
                } else if let Some(&v) = self.argv.get(self.optind) {
                    self.optind += 1;
                    Step::Opt(c as u32, Some(v))
                } else {
                    Step::MissingArg(self.prev_word())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORTS: &[(char, HasArg)] = &[
        ('L', HasArg::Optional),
        ('z', HasArg::No),
        ('s', HasArg::Required),
        ('h', HasArg::No),
    ];
    const LONGS: &[LongOpt] = &[
        LongOpt {
            name: "dump",
            has_arg: HasArg::Optional,
            val: 'L' as u32,
        },
        LongOpt {
            name: "src",
            has_arg: HasArg::Required,
            val: 's' as u32,
        },
        LongOpt {
            name: "stats",
            has_arg: HasArg::No,
            val: 'S' as u32,
        },
        LongOpt {
            name: "zero",
            has_arg: HasArg::No,
            val: 'z' as u32,
        },
    ];

    fn all(args: &[&'static str]) -> Vec<Step<'static>> {
        let mut argv = vec!["conntrack"];
        argv.extend(args.iter().copied());
        let argv: &'static [&'static str] = argv.leak();
        let mut g = Getopt::new(argv);
        let mut out = Vec::new();
        while let Some(s) = g.next(SHORTS, LONGS) {
            out.push(s);
        }
        out
    }

    #[test]
    fn abbreviations_and_ambiguity() {
        assert_eq!(all(&["--sr", "1"]), vec![Step::Opt('s' as u32, Some("1"))]);
        assert_eq!(all(&["--s", "1"]), vec![Step::Unknown("--s")]);
        assert_eq!(all(&["--zero=1"]), vec![Step::Unknown("--zero=1")]);
    }

    #[test]
    fn short_clusters_quote_like_glibc() {
        // `-xz`: unknown `x` in the middle of a cluster quotes argv[optind-1], i.e. the program name.
        assert_eq!(all(&["-xz"])[0], Step::Unknown("conntrack"));
        assert_eq!(all(&["-zx"])[1], Step::Unknown("-zx"));
        assert_eq!(all(&["-s"]), vec![Step::MissingArg("-s")]);
        assert_eq!(
            all(&["-Lexpect"]),
            vec![Step::Opt('L' as u32, Some("expect"))]
        );
        assert_eq!(
            all(&["-s1.2.3.4"]),
            vec![Step::Opt('s' as u32, Some("1.2.3.4"))]
        );
    }
}
