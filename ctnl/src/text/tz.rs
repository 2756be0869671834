//! Local time for `[start=...]`/`[stop=...]` (`ktimestamp`) and `<when>` (XML with `when`):
//! conntrack-tools formats them with the C library's `localtime()`, so [`TimeZone`] follows the same
//! time-zone rules.
//!
//! The parts of glibc's rules that real systems use are implemented, with no unsafe code and no new
//! crate:
//! * `TZ` unset: the TZif file `/etc/localtime` (no file: UTC);
//! * `TZ` set: first as a TZif file (`:` stripped; an absolute path, or a name under `/usr/share/zoneinfo`),
//!   else as a POSIX string: `UTC0`, `EST5`, `<+0530>-5:30`, and DST rules in the `Mm.w.d[/time]` form
//!   (`EST5EDT,M3.2.0,M11.1.0`); `TZ=` (empty) is UTC;
//! * in a TZif file, the transition table (version 2+ 64-bit data when present) and, past its last
//!   transition, the footer's POSIX string.
//!
//! Not covered (knowingly): the `Jn`/`n` day forms of POSIX rules (we then use the standard offset) and leap
//! seconds (`right/` zones). Golden tests compare against conntrack-tools under several `TZ` values.

use std::sync::OnceLock;

/// A time zone, as glibc's `localtime()` applies one: offsets east of UTC in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeZone {
    /// (transition time, offset from then on), ascending.
    transitions: Vec<(i64, i32)>,
    /// Before the first transition.
    initial: i32,
    /// After the last transition (a TZif footer), or always (a POSIX `TZ`).
    rule: Option<Posix>,
}

/// A POSIX `TZ` string.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Posix {
    std: i32,
    dst: Option<(i32, Rule, Rule)>,
}

/// `Mm.w.d/time`: day `d` (0 = Sunday) of week `w` (5 = last) of month `m`, at `time` seconds local.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rule {
    month: u32,
    week: u32,
    wday: u32,
    time: i64,
}

static LOCAL: OnceLock<TimeZone> = OnceLock::new();

impl TimeZone {
    /// The process's local zone, as `localtime()` finds it: `TZ`, else `/etc/localtime`, else UTC (read
    /// once).
    pub fn local() -> &'static TimeZone {
        LOCAL.get_or_init(|| match std::env::var("TZ") {
            Err(_) => std::fs::read("/etc/localtime")
                .ok()
                .and_then(|b| TimeZone::from_tzif(&b))
                .unwrap_or_else(TimeZone::utc),
            Ok(tz) => TimeZone::from_tz_var(&tz),
        })
    }

    /// UTC.
    pub fn utc() -> TimeZone {
        TimeZone {
            transitions: Vec::new(),
            initial: 0,
            rule: None,
        }
    }

    /// The zone a `TZ` value names, as glibc reads it (see the module docs).
    pub fn from_tz_var(tz: &str) -> TimeZone {
        let name = tz.strip_prefix(':').unwrap_or(tz);
        if name.is_empty() {
            return TimeZone::utc();
        }
        let path = if name.starts_with('/') {
            Some(name.to_string())
        } else if !name.split('/').any(|c| c == "..") {
            Some(format!("/usr/share/zoneinfo/{name}"))
        } else {
            None
        };
        if let Some(z) = path
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| TimeZone::from_tzif(&b))
        {
            return z;
        }
        match parse_posix(name) {
            Some(p) => TimeZone {
                transitions: Vec::new(),
                initial: p.std,
                rule: Some(p),
            },
            None => TimeZone::utc(),
        }
    }

    /// Parses a TZif file (RFC 8536); `None` when it is not one.
    pub fn from_tzif(b: &[u8]) -> Option<TimeZone> {
        let (v1, rest) = tzif_block(b, 4)?;
        if b.get(4).copied().unwrap_or(0) < b'2' {
            return Some(v1);
        }
        let (mut v2, footer) = tzif_block(rest, 8)?;
        let footer = std::str::from_utf8(footer).ok()?;
        let tz = footer
            .trim_start_matches('\n')
            .split('\n')
            .next()
            .unwrap_or("");
        v2.rule = parse_posix(tz);
        Some(v2)
    }

    /// Seconds east of UTC at UTC time `t`.
    pub fn offset(&self, t: i64) -> i32 {
        let i = self.transitions.partition_point(|(at, _)| *at <= t);
        if i == 0 && self.transitions.is_empty() {
            return self.rule.as_ref().map_or(self.initial, |r| r.offset(t));
        }
        if i == 0 {
            return self.initial;
        }
        match (&self.rule, i == self.transitions.len()) {
            (Some(r), true) => r.offset(t),
            _ => self.transitions[i - 1].1,
        }
    }
}

fn be(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let s = b.get(at..at + n)?;
    Some(match n {
        4 => i64::from(i32::from_be_bytes(s.try_into().ok()?)),
        _ => i64::from_be_bytes(s.try_into().ok()?),
    })
}

/// One TZif header + data block with `tsize`-byte times; returns the zone and what follows the block.
fn tzif_block(b: &[u8], tsize: usize) -> Option<(TimeZone, &[u8])> {
    if b.get(..4)? != b"TZif" {
        return None;
    }
    let count = |i: usize| be(b, 20 + 4 * i, 4).and_then(|v| usize::try_from(v).ok());
    let (isut, isstd, leap, timecnt, typecnt, charcnt) = (
        count(0)?,
        count(1)?,
        count(2)?,
        count(3)?,
        count(4)?,
        count(5)?,
    );
    let times = 44;
    let idx = times + timecnt * tsize;
    let types = idx + timecnt;
    let end = types + typecnt * 6 + charcnt + leap * (tsize + 4) + isstd + isut;
    if b.len() < end || typecnt == 0 {
        return None;
    }
    let utoff = |ty: usize| -> Option<i32> {
        (ty < typecnt).then_some(())?;
        i32::try_from(be(b, types + ty * 6, 4)?).ok()
    };
    let mut transitions = Vec::with_capacity(timecnt);
    for i in 0..timecnt {
        let at = be(b, times + i * tsize, tsize)?;
        let ty = usize::from(*b.get(idx + i)?);
        transitions.push((at, utoff(ty)?));
    }
    Some((
        TimeZone {
            transitions,
            initial: utoff(0)?,
            rule: None,
        },
        b.get(end..)?,
    ))
}

/// `[+-]hh[:mm[:ss]]` in seconds, and the rest.
fn hms(s: &str) -> Option<(i64, &str)> {
    let (sign, s) = match s.as_bytes().first() {
        Some(b'-') => (-1, &s[1..]),
        Some(b'+') => (1, &s[1..]),
        _ => (1, s),
    };
    let mut total = 0i64;
    let mut rest = s;
    for (i, unit) in [3600i64, 60, 1].into_iter().enumerate() {
        if i > 0 {
            match rest.strip_prefix(':') {
                Some(r) => rest = r,
                None => break,
            }
        }
        let n = rest.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        total += rest[..n].parse::<i64>().ok()? * unit;
        rest = &rest[n..];
    }
    Some((sign * total, rest))
}

/// A zone abbreviation (`EST` or `<+0530>`), and the rest.
fn abbrev(s: &str) -> Option<&str> {
    if let Some(r) = s.strip_prefix('<') {
        return Some(&r[r.find('>')? + 1..]);
    }
    let n = s.bytes().take_while(u8::is_ascii_alphabetic).count();
    (n >= 3).then(|| &s[n..])
}

fn rule(s: &str) -> Option<(Rule, &str)> {
    let s = s.strip_prefix('M')?;
    let mut it = s.splitn(3, '.');
    let month: u32 = it.next()?.parse().ok()?;
    let week: u32 = it.next()?.parse().ok()?;
    let last = it.next()?;
    let n = last.bytes().take_while(u8::is_ascii_digit).count();
    let wday: u32 = last[..n].parse().ok()?;
    let mut rest = &last[n..];
    let mut time = 7200;
    if let Some(r) = rest.strip_prefix('/') {
        let (t, r) = hms(r)?;
        time = t;
        rest = r;
    }
    ((1..=12).contains(&month) && (1..=5).contains(&week) && wday <= 6).then_some((
        Rule {
            month,
            week,
            wday,
            time,
        },
        rest,
    ))
}

/// Parses a POSIX `TZ` string; `None` when it is not one.
fn parse_posix(s: &str) -> Option<Posix> {
    let rest = abbrev(s)?;
    let (std, rest) = hms(rest)?;
    let std = i32::try_from(-std).ok()?;
    if rest.is_empty() {
        return Some(Posix { std, dst: None });
    }
    let rest = abbrev(rest)?;
    let (dst, rest) = match hms(rest) {
        Some((o, r)) => (i32::try_from(-o).ok()?, r),
        None => (std + 3600, rest),
    };
    // Without rules (or with a form we do not read), glibc's default rules are not modelled: standard time.
    let Some(rest) = rest.strip_prefix(',') else {
        return Some(Posix { std, dst: None });
    };
    let parsed = rule(rest).and_then(|(start, r)| {
        let (end, r) = rule(r.strip_prefix(',')?)?;
        r.is_empty().then_some((start, end))
    });
    Some(Posix {
        std,
        dst: parsed.map(|(a, b)| (dst, a, b)),
    })
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl Rule {
    /// The local time (seconds since the epoch, as if local were UTC) the rule fires in `year`.
    fn local_at(&self, year: i64) -> i64 {
        let first = days_from_civil(year, self.month, 1);
        let first_wday = (first + 4).rem_euclid(7);
        let mut day = first + (i64::from(self.wday) - first_wday).rem_euclid(7);
        day += 7 * (i64::from(self.week) - 1);
        let next_month = if self.month == 12 {
            days_from_civil(year + 1, 1, 1)
        } else {
            days_from_civil(year, self.month + 1, 1)
        };
        while day >= next_month {
            day -= 7;
        }
        day * 86_400 + self.time
    }
}

impl Posix {
    /// Seconds east of UTC at UTC time `t`.
    fn offset(&self, t: i64) -> i32 {
        let Some((dst, start, end)) = &self.dst else {
            return self.std;
        };
        let year = civil_from_days((t + i64::from(self.std)).div_euclid(86_400)).0;
        // Start is given in standard time, end in daylight time.
        let on = start.local_at(year) - i64::from(self.std);
        let off = end.local_at(year) - i64::from(*dst);
        let in_dst = if on < off {
            t >= on && t < off
        } else {
            t >= on || t < off
        };
        if in_dst { *dst } else { self.std }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posix_strings() {
        assert_eq!(TimeZone::from_tz_var("").offset(0), 0);
        assert_eq!(TimeZone::from_tz_var("UTC0").offset(1_000_000), 0);
        assert_eq!(TimeZone::from_tz_var("XYZ-5:30").offset(0), 19_800);
        assert_eq!(TimeZone::from_tz_var("<+0530>-5:30").offset(0), 19_800);
        let ny = parse_posix("EST5EDT,M3.2.0,M11.1.0").unwrap();
        // 2026-03-08 06:59:59 UTC is 01:59:59 EST; one second later it is 03:00:00 EDT.
        let t = days_from_civil(2026, 3, 8) * 86_400 + 7 * 3600;
        assert_eq!(ny.offset(t - 1), -5 * 3600);
        assert_eq!(ny.offset(t), -4 * 3600);
        // 2026-11-01 05:59:59 UTC is 01:59:59 EDT; then 01:00:00 EST.
        let t = days_from_civil(2026, 11, 1) * 86_400 + 6 * 3600;
        assert_eq!(ny.offset(t - 1), -4 * 3600);
        assert_eq!(ny.offset(t), -5 * 3600);
        // Southern hemisphere: DST across the new year.
        let au = parse_posix("AEST-10AEDT,M10.1.0,M4.1.0/3").unwrap();
        assert_eq!(au.offset(days_from_civil(2026, 1, 15) * 86_400), 11 * 3600);
        assert_eq!(au.offset(days_from_civil(2026, 6, 15) * 86_400), 10 * 3600);
        assert!(parse_posix("garbage!").is_none());
    }

    #[test]
    fn civil_round_trip() {
        for d in [-800_000i64, -1, 0, 59, 60, 365, 20_000, 2_000_000] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn tzif_files_when_present() {
        // The system's zone files, when installed; the parser must agree with known offsets.
        if let Ok(b) = std::fs::read("/usr/share/zoneinfo/America/New_York") {
            let z = TimeZone::from_tzif(&b).unwrap();
            assert_eq!(z.offset(days_from_civil(2026, 1, 15) * 86_400), -5 * 3600);
            assert_eq!(z.offset(days_from_civil(2026, 7, 15) * 86_400), -4 * 3600);
            // Past the table (fat files end in 2037): the footer's rule.
            assert_eq!(z.offset(days_from_civil(2100, 7, 15) * 86_400), -4 * 3600);
        }
        if let Ok(b) = std::fs::read("/usr/share/zoneinfo/Asia/Tokyo") {
            assert_eq!(
                TimeZone::from_tzif(&b).unwrap().offset(1_800_000_000),
                9 * 3600
            );
        }
        assert!(TimeZone::from_tzif(b"not a zone file").is_none());
    }
}
