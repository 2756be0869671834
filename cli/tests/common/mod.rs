//! Helpers shared by the `conntrack` test files (each includes this module with `mod common;`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// The whole conntrack table of the calling thread's network namespace, one entry per line as `ctnl`
/// decodes it (tuples, zones, status, protocol state, mark, labels, secmark, helper, counters, NAT
/// sequence adjustments, ...), sorted. Left out is only what differs between two equal tables or from
/// one second to the next: the timeout, the kernel id, the reference count and the timestamps.
///
/// After a mutation, tables are compared this way, not through `conntrack -L -o save`, which drops the
/// mark, the labels and more.
pub fn table() -> String {
    let mut ct = ctnl::Conntrack::open().expect("conntrack socket");
    let mut v: Vec<String> = ct
        .dump(&ctnl::DumpFilter::all())
        .expect("dump")
        .map(|e| entry_line(e.expect("entry")))
        .collect();
    v.sort();
    v.join("\n")
}

/// One entry of [`table`].
pub fn entry_line(mut e: ctnl::Entry) -> String {
    e.timeout = None;
    e.id = None;
    e.use_count = None;
    e.timestamp = None;
    format!("{e:?}")
}

/// How many entries of a [`table`] carry mark `m`.
pub fn marked(table: &str, m: u32) -> usize {
    let needle = format!("mark: Some({m}),");
    table.lines().filter(|l| l.contains(&needle)).count()
}

/// How many entries a [`table`] holds.
pub fn entries(table: &str) -> usize {
    table.lines().filter(|l| !l.is_empty()).count()
}

/// `conntrack` output with what ticks or differs between two equal tables blanked: the timeout (in the
/// default, extended, save, xml and json formats), the kernel id, `delta-time` and kernel timestamps.
/// Everything else is kept byte for byte, line order included.
pub fn normalize(out: &[u8]) -> String {
    let text = String::from_utf8_lossy(out);
    let mut s = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        s.push_str(&normalize_line(line));
    }
    s
}

fn normalize_line(line: &str) -> String {
    if line.starts_with('<') {
        let mut l = line.to_string();
        for tag in ["timeout", "id", "deltatime", "start", "stop"] {
            l = blank_between(&l, &format!("<{tag}>"), &format!("</{tag}>"));
        }
        return l;
    }
    if line.starts_with('{') {
        let mut l = line.to_string();
        for key in [
            "\"timeout\":",
            "\"id\":",
            "\"timestamp_start_ns\":",
            "\"timestamp_stop_ns\":",
        ] {
            l = blank_number_after(&l, key);
        }
        return l;
    }
    let line = blank_between(&blank_between(line, "[start=", "]"), "[stop=", "]");
    let mut w: Vec<String> = line.split(' ').map(str::to_string).collect();
    // save format: `-t N`
    if let Some(i) = w.iter().position(|x| x == "-t")
        && i + 1 < w.len()
    {
        w[i + 1] = "T".into();
    }
    // default format: the protocol number is followed by the timeout (both all digits)
    let digits = |x: &str| !x.is_empty() && x.trim_end().chars().all(|c| c.is_ascii_digit());
    if !line.starts_with('-')
        && let Some(i) =
            (0..w.len().saturating_sub(1)).find(|&i| digits(&w[i]) && digits(&w[i + 1]))
    {
        let nl = if w[i + 1].ends_with('\n') { "\n" } else { "" };
        w[i + 1] = format!("T{nl}");
    }
    for x in w.iter_mut() {
        for key in ["delta-time=", "id="] {
            if x.starts_with(key) {
                let nl = if x.ends_with('\n') { "\n" } else { "" };
                *x = format!("{key}N{nl}");
            }
        }
    }
    w.join(" ")
}

fn blank_between(l: &str, open: &str, close: &str) -> String {
    let mut out = String::new();
    let mut rest = l;
    while let Some(i) = rest.find(open) {
        let after = &rest[i + open.len()..];
        match after.find(close) {
            Some(j) => {
                out.push_str(&rest[..i + open.len()]);
                out.push('N');
                rest = &after[j..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out
}

fn blank_number_after(l: &str, key: &str) -> String {
    let mut out = String::new();
    let mut rest = l;
    while let Some(i) = rest.find(key) {
        out.push_str(&rest[..i + key.len()]);
        let after = &rest[i + key.len()..];
        let n = after
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after.len());
        out.push('N');
        rest = &after[n..];
    }
    out.push_str(rest);
    out
}

/// [`normalize`], with the lines sorted: two namespaces hash the same entries into different orders, so
/// listings of twin tables are compared as sets of lines.
pub fn normalize_sorted(out: &[u8]) -> String {
    let n = normalize(out);
    let mut lines: Vec<&str> = n.lines().collect();
    lines.sort_unstable();
    lines.join("\n")
}
