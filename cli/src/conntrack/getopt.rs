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

/// What one step of the parser returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An option and its argument, if any.
    Opt(u32, Option<String>),
    /// `?`: unknown or ambiguous option; the text to quote is `argv[optind-1]`.
    Unknown(String),
    /// `:`: a required argument is missing; the text to quote is `argv[optind-1]`.
    MissingArg(String),
}

/// The parser state: `argv`, `optind` and the position inside a cluster of short options.
#[derive(Debug)]
pub struct Getopt {
    argv: Vec<String>,
    /// Index of the next word to look at (glibc `optind`).
    pub optind: usize,
    nextchar: usize,
    done: bool,
}

impl Getopt {
    /// Starts parsing `argv` (`argv[0]` is the program name).
    pub fn new(argv: Vec<String>) -> Self {
        Getopt {
            argv,
            optind: 1,
            nextchar: 0,
            done: false,
        }
    }

    /// `argv[optind - 1]`, as conntrack-tools quotes it in error messages.
    pub fn prev_word(&self) -> String {
        self.argv
            .get(self.optind.saturating_sub(1))
            .cloned()
            .unwrap_or_default()
    }

    /// conntrack-tools' `get_optional_arg()`: when the option had no glued argument, takes the next word if it
    /// exists and starts with neither `-` nor `!`.
    pub fn optional_next(&mut self, had_arg: bool) -> Option<String> {
        if had_arg {
            return None;
        }
        let w = self.argv.get(self.optind)?;
        if w.starts_with('-') || w.starts_with('!') {
            return None;
        }
        let w = w.clone();
        self.optind += 1;
        Some(w)
    }

    /// Returns the next option, or `None` at the end. `shorts` is the table of short options (`(char, HasArg)`),
    /// `longs` the long options currently known.
    pub fn next(&mut self, shorts: &[(char, HasArg)], longs: &[LongOpt]) -> Option<Step> {
        if self.done {
            return None;
        }
        if self.nextchar == 0 {
            // Skip non-options (glibc permutes them to the end; conntrack ignores them).
            loop {
                let w = self.argv.get(self.optind)?;
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
            let w = self.argv[self.optind].clone();
            if let Some(body) = w.strip_prefix("--") {
                self.optind += 1;
                return Some(self.long(body, &w, longs));
            }
            self.nextchar = 1;
        }
        self.short(shorts)
    }

    fn long(&mut self, body: &str, word: &str, longs: &[LongOpt]) -> Step {
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let exact = longs.iter().find(|o| o.name == name);
        let opt = match exact {
            Some(o) => *o,
            None => {
                let cands: Vec<&LongOpt> =
                    longs.iter().filter(|o| o.name.starts_with(name)).collect();
                match cands.first() {
                    None => return Step::Unknown(word.to_string()),
                    Some(first) => {
                        if cands
                            .iter()
                            .any(|c| c.has_arg != first.has_arg || c.val != first.val)
                        {
                            return Step::Unknown(word.to_string());
                        }
                        **first
                    }
                }
            }
        };
        match opt.has_arg {
            HasArg::No => {
                if inline.is_some() {
                    Step::Unknown(word.to_string())
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
                    Some(v) => {
                        let v = v.clone();
                        self.optind += 1;
                        Step::Opt(opt.val, Some(v))
                    }
                    None => Step::MissingArg(word.to_string()),
                }
            }
        }
    }

    fn short(&mut self, shorts: &[(char, HasArg)]) -> Option<Step> {
        let word: Vec<char> = self.argv[self.optind].chars().collect();
        let c = word[self.nextchar];
        self.nextchar += 1;
        let at_end = self.nextchar >= word.len();
        let rest: String = word[self.nextchar.min(word.len())..].iter().collect();
        let finish = |g: &mut Getopt| {
            g.nextchar = 0;
            g.optind += 1;
        };
        let Some(&(_, has_arg)) = shorts.iter().find(|(s, _)| *s == c) else {
            if at_end {
                finish(self);
            }
            let q = self.prev_word();
            return Some(Step::Unknown(q));
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
                } else if let Some(v) = self.argv.get(self.optind) {
                    let v = v.clone();
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

    fn all(args: &[&str]) -> Vec<Step> {
        let mut argv = vec!["conntrack".to_string()];
        argv.extend(args.iter().map(|s| s.to_string()));
        let mut g = Getopt::new(argv);
        let mut out = Vec::new();
        while let Some(s) = g.next(SHORTS, LONGS) {
            out.push(s);
        }
        out
    }

    #[test]
    fn abbreviations_and_ambiguity() {
        assert_eq!(
            all(&["--sr", "1"]),
            vec![Step::Opt('s' as u32, Some("1".into()))]
        );
        assert_eq!(all(&["--s", "1"]), vec![Step::Unknown("--s".into())]);
        assert_eq!(all(&["--zero=1"]), vec![Step::Unknown("--zero=1".into())]);
    }

    #[test]
    fn short_clusters_quote_like_glibc() {
        // `-xz`: unknown `x` in the middle of a cluster quotes argv[optind-1], i.e. the program name.
        assert_eq!(all(&["-xz"])[0], Step::Unknown("conntrack".into()));
        assert_eq!(all(&["-zx"])[1], Step::Unknown("-zx".into()));
        assert_eq!(all(&["-s"]), vec![Step::MissingArg("-s".into())]);
        assert_eq!(
            all(&["-Lexpect"]),
            vec![Step::Opt('L' as u32, Some("expect".into()))]
        );
        assert_eq!(
            all(&["-s1.2.3.4"]),
            vec![Step::Opt('s' as u32, Some("1.2.3.4".into()))]
        );
    }
}
