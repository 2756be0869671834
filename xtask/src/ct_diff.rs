//! `ct-diff`: long runs of the `conntrack` differential test (`cli/tests/conntrack_diff.rs`), which runs
//! generated command lines and `-R` files against conntrack-tools 1.4.7 on twin namespace tables. CI runs
//! one fixed seed for a few thousand lines; this task runs as many lines and seeds as asked, one test
//! process per seed, and sums up.
//!
//! `cargo xtask ct-diff [--seed S | --seeds A-B] [--start LINE] [--count N] [--max-reports N] [--debug]`
//!
//! * `--seed S` (default 2024) or `--seeds A-B` (every seed from A to B);
//! * `--start LINE`, `--count N` (default 10000): the lines run, per seed (a mismatch report names the
//!   block to rerun: `--seed S --start B --count K`);
//! * `--max-reports N` (default 20): a seed stops after that many mismatches;
//! * `--debug`: reports also print the block's corpus and the lines before.
//!
//! Needs root and conntrack-tools (`cargo xtask deps`). Exits non-zero if any seed had a mismatch.

use anyhow::{Context, Result, bail};
use std::process::Command;
use std::time::Instant;

struct Options {
    seeds: std::ops::RangeInclusive<u64>,
    start: u64,
    count: u64,
    max_reports: u64,
    debug: bool,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        seeds: 2024..=2024,
        start: 0,
        count: 10_000,
        max_reports: 20,
        debug: false,
    };
    let mut i = 0;
    let value = |i: usize, name: &str| -> Result<&String> {
        args.get(i + 1)
            .with_context(|| format!("`{name}` needs a value"))
    };
    let number = |v: &str, name: &str| -> Result<u64> {
        v.parse()
            .with_context(|| format!("`{name}`: not a number: `{v}`"))
    };
    while i < args.len() {
        let a = args[i].as_str();
        match a {
            "--seed" => {
                let s = number(value(i, a)?, a)?;
                o.seeds = s..=s;
                i += 1;
            }
            "--seeds" => {
                let v = value(i, a)?;
                let (lo, hi) = v
                    .split_once('-')
                    .with_context(|| format!("`--seeds` takes A-B, not `{v}`"))?;
                let (lo, hi) = (number(lo, a)?, number(hi, a)?);
                if lo > hi {
                    bail!("`--seeds {v}`: empty range");
                }
                o.seeds = lo..=hi;
                i += 1;
            }
            "--start" => {
                o.start = number(value(i, a)?, a)?;
                i += 1;
            }
            "--count" => {
                o.count = number(value(i, a)?, a)?;
                i += 1;
            }
            "--max-reports" => {
                o.max_reports = number(value(i, a)?, a)?;
                i += 1;
            }
            "--debug" => o.debug = true,
            other => bail!(
                "unknown argument `{other}`; usage: cargo xtask ct-diff [--seed S | --seeds A-B] [--start LINE] [--count N] [--max-reports N] [--debug]"
            ),
        }
        i += 1;
    }
    Ok(o)
}

/// Runs the task.
pub fn run(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    let started = Instant::now();
    // Build once, so the per-seed runs start at once.
    crate::util::step(
        "build the differential test",
        &[
            "cargo",
            "test",
            "-p",
            "cli",
            "--test",
            "conntrack_diff",
            "--no-run",
        ],
        &[],
    )?;
    let mut failed = Vec::new();
    let mut lines = 0;
    for seed in o.seeds.clone() {
        let t = Instant::now();
        eprintln!(
            "\n==> ct-diff seed {seed}: lines {}..{}",
            o.start,
            o.start + o.count
        );
        let mut c = Command::new("cargo");
        c.args([
            "test",
            "-q",
            "-p",
            "cli",
            "--test",
            "conntrack_diff",
            "--",
            "--nocapture",
        ])
        .env("CT_DIFF_SEED", seed.to_string())
        .env("CT_DIFF_START", o.start.to_string())
        .env("CT_DIFF_COUNT", o.count.to_string())
        .env("CT_DIFF_MAX_REPORTS", o.max_reports.to_string());
        if o.debug {
            c.env("CT_DIFF_DEBUG", "1");
        }
        let status = c.status().context("cannot start cargo")?;
        lines += o.count;
        eprintln!(
            "==> ct-diff seed {seed}: {} in {:.0?}",
            if status.success() { "ok" } else { "MISMATCH" },
            t.elapsed()
        );
        if !status.success() {
            failed.push(seed);
        }
    }
    eprintln!(
        "\n==> ct-diff: seeds {}..={}, {lines} lines in {:.0?}; seeds with mismatches: {failed:?}",
        o.seeds.start(),
        o.seeds.end(),
        started.elapsed()
    );
    if !failed.is_empty() {
        bail!("mismatches with seeds {failed:?} (reports above)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn options() {
        let o = parse(&args("--seeds 3-5 --start 40 --count 7 --debug")).unwrap();
        assert_eq!(o.seeds, 3..=5);
        assert_eq!((o.start, o.count, o.debug), (40, 7, true));
        assert_eq!(parse(&args("--seed 9")).unwrap().seeds, 9..=9);
        assert!(parse(&args("--seeds 5-3")).is_err());
        assert!(parse(&args("--count")).is_err());
        assert!(parse(&args("--count x")).is_err());
        assert!(parse(&args("--bogus")).is_err());
    }
}
