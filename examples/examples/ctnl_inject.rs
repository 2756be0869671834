//! Create many UDP entries in batches (many messages per `sendmsg`) and report per-entry failures and the
//! rate. Meant for a scratch namespace:
//!
//! `ip netns add t; ip netns exec t cargo run -p examples --example ctnl_inject -- 200000; ip netns del t`

use ctnl::{Conntrack, Entry, Tuple};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let mut ct = Conntrack::open()?;
    let start = Instant::now();
    let mut batch = ct.batch();
    for i in 0..n {
        let src = IpAddr::V4(Ipv4Addr::from(0x0a00_0000u32 + (i >> 8)));
        let orig = Tuple::ports(
            src,
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            17,
            1024 + (i & 0xff) as u16,
            53,
        );
        let mut e = Entry::new(orig.clone(), orig.reversed());
        e.timeout = Some(600);
        batch.create(&e)?;
    }
    let report = batch.finish()?;
    let took = start.elapsed();
    for (i, err) in report.failures.iter().take(10) {
        eprintln!("entry {i}: {err}");
    }
    println!(
        "{} of {} created in {:.1} ms ({:.0} entries/s), {} failed",
        report.ok,
        report.total,
        took.as_secs_f64() * 1e3,
        f64::from(n) / took.as_secs_f64(),
        report.failures.len()
    );
    Ok(())
}
