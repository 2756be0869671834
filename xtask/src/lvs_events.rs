//! `cargo xtask vm-lvs-events [RUNS]`: the LVS event script (`lvs-check/tests/vm.rs`,
//! `same_ipvs_table_and_reactions_as_keepalived`: keepalived 2.2.7 `-C`, `vrrpd -C` and the library side
//! by side) RUNS times (default 5) inside one IPVS VM, then the median time each side took per event,
//! as a Markdown table for BENCHMARKS.md. Every run must pass: a failed run fails the task.

use crate::vm::{VmSpec, build_release_bins, built, ci_env, run as run_vm, target_dir};
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::time::Duration;

/// The test whose `lvs-event` lines are collected.
const TEST: &str = "same_ipvs_table_and_reactions_as_keepalived";

pub fn run(args: &[String]) -> Result<()> {
    let runs: usize = match args.first() {
        Some(a) => a
            .parse()
            .context("vm-lvs-events [RUNS]: RUNS is a number")?,
        None => 5,
    };
    if runs == 0 {
        bail!("vm-lvs-events: RUNS must be at least 1");
    }
    crate::deps::install()?;
    let exe = built(
        &[
            "test",
            "--no-run",
            "-p",
            "lvs-check",
            "--features",
            "vm-tests",
            "--test",
            "vm",
        ],
        "test",
    )?
    .into_iter()
    .find(|(n, _)| n == "vm")
    .map(|(_, p)| p)
    .context("no executable for lvs-check's `vm` test")?;
    let bins = build_release_bins()?;
    let script = format!(
        "i=0\nwhile [ $i -lt {runs} ]; do\n  i=$((i+1))\n  echo lvs-run $i\n  \
         /opt/project/tests/lvs-vm --test-threads=1 --nocapture --exact {TEST} || echo lvs-run-failed $i\n\
         done\n"
    );
    let spec = VmSpec {
        script,
        bins,
        tests: vec![("lvs-vm".to_string(), exe)],
        env: ci_env(),
        timeout: Duration::from_secs(120 + 300 * runs as u64),
        mem_mib: 1024,
        extra_modules: Vec::new(),
    };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let out = run_vm(&spec, &target_dir().join("vm"))?;
    let failed = out
        .output
        .iter()
        .filter(|l| l.starts_with("lvs-run-failed"))
        .count();
    let samples = parse(&out.output);
    println!("\n{}", table(&samples, runs - failed, load.trim()));
    if failed > 0 || out.status != 0 {
        bail!("{failed} of {runs} runs of {TEST} failed");
    }
    Ok(())
}

/// One event's samples: `(keepalived schedule, bound s, per side seconds)`, in script order.
type Samples = Vec<(String, String, f64, [Vec<f64>; 3])>;

/// Reads the `lvs-event\tSTEP\tFORMULA\tBOUND\tKEEPALIVED\tVRRPD\tLVS-CHECK` lines of every run.
fn parse(lines: &[String]) -> Samples {
    let mut out: Samples = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for l in lines {
        let f: Vec<&str> = l.trim_end().split('\t').collect();
        if f.len() != 7 || f[0] != "lvs-event" || f[1] == "step" {
            continue;
        }
        let Ok(bound) = f[3].parse::<f64>() else {
            continue;
        };
        let i = *index.entry(f[1].to_string()).or_insert_with(|| {
            out.push((
                f[1].to_string(),
                f[2].to_string(),
                bound,
                [Vec::new(), Vec::new(), Vec::new()],
            ));
            out.len() - 1
        });
        for (k, v) in f[4..].iter().enumerate() {
            if let Ok(x) = v.parse::<f64>() {
                out[i].3[k].push(x);
            }
        }
    }
    out
}

fn median(v: &[f64]) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The Markdown table: per event, the median seconds (= delay_loops: every timer of the script is 1 s)
/// of each side with the range, and vrrpd's median over keepalived's.
fn table(s: &Samples, runs: usize, load: &str) -> String {
    let mut t = format!(
        "LVS events, {runs} passing runs, host load at start {load}; seconds from the event to the \
         expected `ipvsadm -S -n` table (d = delay_loop = 1 s, r = retry x delay_before_retry = 1 s, \
         t = connect_timeout = 1 s), median (min-max):\n\n\
         | event | keepalived schedule | keepalived | vrrpd | lvs-check | vrrpd / keepalived |\n\
         |---|---|---|---|---|---|\n"
    );
    for (step, formula, bound, sides) in s {
        let cell = |v: &Vec<f64>| {
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            format!("{:.2} ({lo:.2}-{hi:.2})", median(v))
        };
        let (k, v) = (median(&sides[0]), median(&sides[1]));
        t.push_str(&format!(
            "| {step} | {formula} = {bound:.0} s | {} | {} | {} | {:.2} |\n",
            cell(&sides[0]),
            cell(&sides[1]),
            cell(&sides[2]),
            v / k
        ));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_per_event_and_side() {
        let lines: Vec<String> = [
            "lvs-event\tstep\tkeepalived schedule\tbound s\tkeepalived\tvrrpd\tlvs-check",
            "lvs-event\twrong digest\td + r\t2.00\t2.50\t2.10\t2.20",
            "noise",
            "lvs-event\twrong digest\td + r\t2.00\t3.50\t2.30\t2.00",
            "lvs-event\twrong digest\td + r\t2.00\t2.70\t2.20\tNaN",
            "lvs-event\tstart\t1 s\t1.00\t1.00\t1.00\t1.00",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let s = parse(&lines);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].0, "wrong digest");
        assert_eq!(median(&s[0].3[0]), 2.7);
        assert_eq!(median(&s[0].3[1]), 2.2);
        assert_eq!(median(&s[0].3[2]), 2.1);
        let t = table(&s, 3, "1.0");
        assert!(
            t.contains("| wrong digest | d + r = 2 s | 2.70 (2.50-3.50) | 2.20 (2.10-2.30) |"),
            "{t}"
        );
    }
}
