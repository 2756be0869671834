//! Tables: one per job (a line per failover and a median line), and a summary of medians.

use super::scenario::{Job, Sample};
use std::time::Duration;

fn ms(d: Option<Duration>) -> String {
    match d {
        Some(d) if d < Duration::from_millis(10) => format!("{:.2}", d.as_secs_f64() * 1e3),
        Some(d) => format!("{:.0}", d.as_secs_f64() * 1e3),
        None => "-".into(),
    }
}

fn surv(v: Option<(usize, usize)>) -> String {
    v.map(|(a, b)| format!("{a}/{b}"))
        .unwrap_or_else(|| "-".into())
}

/// The median of the present values (mean of the two middle ones for an even count).
pub fn median(mut v: Vec<Duration>) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    })
}

fn med(samples: &[Sample], f: impl Fn(&Sample) -> Option<Duration>) -> Option<Duration> {
    median(samples.iter().filter_map(f).collect())
}

fn min_surv(
    samples: &[Sample],
    f: impl Fn(&Sample) -> Option<(usize, usize)>,
) -> Option<(usize, usize)> {
    samples.iter().filter_map(f).min_by_key(|(a, _)| *a)
}

const HEAD: &str = "  #  stream   gap ms  path ms  vrrp ms (last prio)  takeover ms  garp ms  commit ms (logged)  synced  survivors  failback gap  failback surv  result";

fn line(label: &str, s: &Sample, result: &str) -> String {
    let commit = match s.commit_logged {
        Some(_) => format!("{} ({})", ms(s.commit), ms(s.commit_logged)),
        None => ms(s.commit),
    };
    let vrrp = match (s.vrrp, s.last_prio) {
        (Some(_), Some(p)) => format!("{} ({p})", ms(s.vrrp)),
        _ => ms(s.vrrp),
    };
    format!(
        "{label:>3}  {:<7} {:>7}  {:>7}  {:>19}  {:>11}  {:>7}  {:>18}  {:>6}  {:>9}  {:>12}  {:>13}  {result}",
        s.stream,
        ms(s.gap),
        ms(s.path_gap),
        vrrp,
        ms(s.takeover),
        ms(s.garp),
        commit,
        s.synced
            .map(|n| n.to_string())
            .unwrap_or_else(|| "-".into()),
        surv(s.survivors),
        ms(s.failback_gap),
        surv(s.failback_survivors),
    )
}

/// Prints one job's table.
pub fn print_job(job: &Job, samples: &[Sample]) {
    println!("\n{}", job.title());
    println!("{HEAD}");
    for (i, s) in samples.iter().enumerate() {
        let result = if s.problems.is_empty() {
            "pass".to_string()
        } else {
            format!("FAIL: {}", s.problems.join("; "))
        };
        println!("{}", line(&(i + 1).to_string(), s, &result));
        if let Some(l) = &s.logs {
            println!("     logs: {l}");
        }
    }
    let m = Sample {
        stream: format!(
            "{}/{}",
            samples.iter().filter(|s| s.stream == "ok").count(),
            samples.len()
        ),
        gap: med(samples, |s| s.gap),
        path_gap: med(samples, |s| s.path_gap),
        vrrp: med(samples, |s| s.vrrp),
        takeover: med(samples, |s| s.takeover),
        garp: med(samples, |s| s.garp),
        commit: med(samples, |s| s.commit),
        commit_logged: med(samples, |s| s.commit_logged),
        synced: samples.iter().filter_map(|s| s.synced).max(),
        survivors: min_surv(samples, |s| s.survivors),
        failback_gap: med(samples, |s| s.failback_gap),
        failback_survivors: min_surv(samples, |s| s.failback_survivors),
        ..Sample::default()
    };
    let passed = samples.iter().filter(|s| s.problems.is_empty()).count();
    println!(
        "{}",
        line(
            "med",
            &m,
            &format!(
                "{passed}/{} passed (survivors: the worst sample)",
                samples.len()
            )
        )
    );
}

/// Prints the medians of every job, one line each.
pub fn print_summary(results: &[(Job, Vec<Sample>)], took: Duration) {
    println!("\nSummary (medians over the failovers of each job; survivors: the worst failover)");
    println!(
        "{:<58} {:>7} {:>8} {:>8} {:>11} {:>9} {:>10} {:>7} {:>9} {:>7}",
        "job",
        "gap ms",
        "path ms",
        "vrrp ms",
        "takeover ms",
        "commit ms",
        "logged ms",
        "synced",
        "survivors",
        "passed"
    );
    for (job, s) in results {
        println!(
            "{:<58} {:>7} {:>8} {:>8} {:>11} {:>9} {:>10} {:>7} {:>9} {:>7}",
            job.title(),
            ms(med(s, |x| x.gap)),
            ms(med(s, |x| x.path_gap)),
            ms(med(s, |x| x.vrrp)),
            ms(med(s, |x| x.takeover)),
            ms(med(s, |x| x.commit)),
            ms(med(s, |x| x.commit_logged)),
            s.iter()
                .filter_map(|x| x.synced)
                .max()
                .map(|n| n.to_string())
                .unwrap_or_else(|| "-".into()),
            surv(min_surv(s, |x| x.survivors)),
            format!(
                "{}/{}",
                s.iter().filter(|x| x.problems.is_empty()).count(),
                s.len()
            ),
        );
    }
    println!("took {:.0?}", took);
}

/// Master_Down_Interval of fw-b (the backup) in conntrack-tools' shipped keepalived.conf: `advert_int 3`,
/// `priority 80`; RFC 3768 §6.1: 3 × Advertisement_Interval + (256 − Priority) / 256 s.
pub const SHIPPED_MASTER_DOWN: Duration =
    Duration::from_micros(3_000_000 * 3 + 176 * 1_000_000 / 256);

/// The ratio `ours / peer` of two medians, `-` when either is missing or the peer's is zero.
fn ratio(ours: Option<Duration>, peer: Option<Duration>) -> String {
    match (ours, peer) {
        (Some(o), Some(p)) if !p.is_zero() => format!("{:.2}x", o.as_secs_f64() / p.as_secs_f64()),
        _ => "-".into(),
    }
}

/// Prints, for every job run with both keepalived+conntrackd and vrrpd+ctsyncd (same scenario, method
/// and entries), the two stacks' medians side by side and the ratio ours / theirs: the BENCHMARKS table.
/// `shipped`: the configuration is conntrack-tools' (the Master_Down_Interval line applies).
pub fn print_comparison(results: &[(Job, Vec<Sample>)], shipped: bool) {
    let key = |j: &Job| (j.scenario, j.method, j.entries());
    let pairs: Vec<(&Job, &[Sample], &[Sample])> = results
        .iter()
        .filter(|(j, _)| j.stack.name() == "keepalived+conntrackd")
        .filter_map(|(peer, ps)| {
            results
                .iter()
                .find(|(o, _)| o.stack.name() == "vrrpd+ctsyncd" && key(o) == key(peer))
                .map(|(_, os)| (peer, ps.as_slice(), os.as_slice()))
        })
        .collect();
    if pairs.is_empty() {
        return;
    }
    println!(
        "\nStacks compared (medians; ratio = vrrpd+ctsyncd / keepalived+conntrackd; k+c = keepalived+conntrackd)"
    );
    println!(
        "{:<40} {:>9} {:>9} {:>9} {:>9}",
        "job: figure", "k+c", "ours", "ratio", "samples"
    );
    type Pick = fn(&Sample) -> Option<Duration>;
    let figures: [(&str, Pick); 5] = [
        ("gap ms", |s| s.gap),
        ("path ms", |s| s.path_gap),
        ("vrrp ms", |s| s.vrrp),
        ("commit ms", |s| s.commit),
        ("logged commit ms", |s| s.commit_logged),
    ];
    for (job, peer, ours) in pairs {
        let what = match job.scenario {
            2 => format!("s2 {} {} entries", job.method.name(), job.entries()),
            n => format!("s{n} {}", job.method.name()),
        };
        for (name, f) in figures {
            let (p, o) = (med(peer, f), med(ours, f));
            if p.is_none() && o.is_none() {
                continue;
            }
            println!(
                "{:<40} {:>9} {:>9} {:>9} {:>4}/{:<4}",
                format!("{what}: {name}"),
                ms(p),
                ms(o),
                ratio(o, p),
                peer.iter().filter(|s| f(s).is_some()).count(),
                ours.iter().filter(|s| f(s).is_some()).count(),
            );
        }
        let (ps, os) = (
            min_surv(peer, |s| s.survivors),
            min_surv(ours, |s| s.survivors),
        );
        if ps.is_some() || os.is_some() {
            println!(
                "{:<40} {:>9} {:>9}",
                format!("{what}: survivors (worst)"),
                surv(ps),
                surv(os)
            );
        }
    }
    if shipped {
        println!(
            "Master_Down_Interval of fw-b (shipped keepalived.conf): {} ms; `vrrp ms` after a kill or an \
             unplug should be within 100 ms of it",
            ms(Some(SHIPPED_MASTER_DOWN))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        let d = Duration::from_millis;
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![d(3), d(1), d(2)]), Some(d(2)));
        assert_eq!(
            median(vec![d(4), d(1), d(2), d(3)]),
            Some(Duration::from_micros(2500))
        );
    }

    #[test]
    fn shipped_master_down_interval_is_the_rfc_value() {
        // 3 × 3 s + (256 − 80) / 256 s = 9.6875 s.
        assert_eq!(SHIPPED_MASTER_DOWN, Duration::from_micros(9_687_500));
        assert_eq!(
            ratio(
                Some(Duration::from_millis(5)),
                Some(Duration::from_millis(20))
            ),
            "0.25x"
        );
        assert_eq!(ratio(Some(Duration::from_millis(5)), None), "-");
    }
}
