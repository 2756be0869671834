//! Print conntrack events (NEW, UPDATE, DESTROY) as they happen, like `conntrack -E`; an overrun is reported
//! instead of silently losing events.
//!
//! `cargo run -p examples --example ctnl_watch [-- --seconds N]`

use ctnl::{Error, Event, EventKind, EventSocket, Groups};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut limit = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => {
                limit = Some(Duration::from_secs(
                    args.next().ok_or("--seconds needs N")?.parse()?,
                ))
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let mut ev = EventSocket::open(Groups::CONNTRACK | Groups::EXPECT)?;
    ev.set_timeout(Some(Duration::from_millis(500)))?;
    eprintln!("event socket receive queue: {} bytes", ev.rcvbuf());
    let start = Instant::now();
    let mut n = 0u64;
    while limit.is_none_or(|l| start.elapsed() < l) {
        match ev.next_event() {
            Ok(Some(Event::Conntrack { kind, entry })) => {
                n += 1;
                let tag = match kind {
                    EventKind::New => "[NEW]",
                    EventKind::Update => "[UPDATE]",
                    EventKind::Destroy => "[DESTROY]",
                };
                if let Some(t) = &entry.orig {
                    println!(
                        "{tag:>9} proto={} src={} dst={} {:?}",
                        t.proto, t.src, t.dst, t.l4
                    );
                }
            }
            Ok(Some(Event::Expect { kind, expect })) => {
                n += 1;
                println!("[EXP {kind:?}] {:?}", expect.tuple);
            }
            Ok(Some(_)) | Ok(None) => {}
            Err(Error::Overrun) => {
                eprintln!("events lost (receive queue overrun): resynchronise with a dump")
            }
            Err(e) => return Err(e.into()),
        }
    }
    eprintln!("{n} events");
    Ok(())
}
