//! A fast path for the commonest `-R` line, `-I -p udp -s A -d B --sport X --dport Y -t T`.
//!
//! [`UdpCreate::parse`] recognises only that shape, with plain values it can read without doubt: the options
//! spelt exactly so, each once, `-p udp` right after `-I`, dotted-quad IPv4 addresses without leading
//! zeros (so no octal or short `inet_aton` forms), and decimal numbers without leading zeros, ports
//! 1-65535 and timeouts 1-2^31-1. Anything else (another option, a quote, an odd spelling, a value out of
//! those ranges, a mistake) returns `None` and the line goes through the full parser, which gives the
//! same entry or the same error as conntrack-tools. The test below checks that both paths build the same
//! entry.

use ctnl::{Entry, Tuple};
use std::net::{IpAddr, Ipv4Addr};

/// An `-I -p udp ...` line of the plain shape: all it says, in 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct UdpCreate {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    timeout: u32,
}

impl UdpCreate {
    /// Reads a line of the plain shape, or `None` when the line needs the full parser. `line` starts at
    /// its first word (leading blanks trimmed).
    pub(super) fn parse(line: &str) -> Option<Self> {
        let mut words = line
            .as_bytes()
            .split(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .filter(|w| !w.is_empty());
        if words.next()? != b"-I" || words.next()? != b"-p" || words.next()? != b"udp" {
            return None;
        }
        let (mut src, mut dst, mut sport, mut dport, mut timeout) = (None, None, None, None, None);
        while let Some(name) = words.next() {
            let value = words.next()?;
            let slot = match name {
                b"-s" => {
                    set(&mut src, quad(value)?)?;
                    continue;
                }
                b"-d" => {
                    set(&mut dst, quad(value)?)?;
                    continue;
                }
                b"--sport" => &mut sport,
                b"--dport" => &mut dport,
                b"-t" => {
                    let t = number(value)?;
                    if t > i32::MAX as u32 {
                        return None;
                    }
                    set(&mut timeout, t)?;
                    continue;
                }
                _ => return None,
            };
            let port = u16::try_from(number(value)?).ok()?;
            set(slot, port)?;
        }
        Some(UdpCreate {
            src: src?,
            dst: dst?,
            sport: sport?,
            dport: dport?,
            timeout: timeout?,
        })
    }

    /// The entry the line creates: the tuple, its reverse as the reply tuple, and the timeout.
    pub(super) fn entry(&self) -> Entry {
        let orig = Tuple::ports(
            IpAddr::V4(self.src),
            IpAddr::V4(self.dst),
            17,
            self.sport,
            self.dport,
        );
        let mut reply = orig.reversed();
        reply.zone = None;
        let mut e = Entry::new(orig, reply);
        e.timeout = Some(self.timeout);
        e
    }
}

/// Fills an empty slot; `None` when it was already set (a repeated option goes to the full parser).
fn set<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(v);
    Some(())
}

/// A decimal number 1..=u32::MAX without sign or leading zero.
fn number(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || s[0] == b'0' {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(c - b'0');
    }
    u32::try_from(v).ok()
}

/// `a.b.c.d`, each part 0-255 in decimal without leading zeros.
fn quad(s: &[u8]) -> Option<Ipv4Addr> {
    let mut out = [0u8; 4];
    let mut parts = s.split(|&c| c == b'.');
    for o in &mut out {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || (p.len() > 1 && p[0] == b'0') {
            return None;
        }
        let mut v: u16 = 0;
        for &c in p {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u16::from(c - b'0');
        }
        *o = u8::try_from(v).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The full parser's entry for a line, or `None` when it rejects the line.
    fn slow(line: &str) -> Option<Entry> {
        let mut argv = vec!["conntrack"];
        argv.extend(
            line.split([' ', '\t', '\n', '\r'])
                .filter(|w| !w.is_empty()),
        );
        let p = super::super::parse::parse(&argv).ok()?;
        super::super::kernel::entry_for_create(&p, p.labelmap.as_ref()).ok()
    }

    #[test]
    fn same_entry_as_the_full_parser() {
        let lines = [
            "-I -p udp -s 10.0.0.1 -d 192.0.2.1 --sport 1024 --dport 53 -t 600",
            "-I -p udp -s 10.255.255.255 -d 0.0.0.0 --sport 65535 --dport 1 -t 1",
            "-I  -p\tudp -d 192.0.2.1 -t 2147483647 --dport 123 -s 1.2.3.4 --sport 9\r",
            "-I -p udp -s 255.255.255.255 -d 127.0.0.1 --sport 5 --dport 6 -t 30 ",
        ];
        for l in lines {
            let fast = UdpCreate::parse(l).map(|u| u.entry());
            assert!(fast.is_some(), "fast path should take {l:?}");
            assert_eq!(fast, slow(l), "{l:?}");
        }
    }

    #[test]
    fn anything_unusual_goes_to_the_full_parser() {
        let lines = [
            "",
            "-I",
            "-A -p udp -s 10.0.0.1 -d 192.0.2.1 --sport 1 --dport 2 -t 3",
            "-I -p tcp -s 10.0.0.1 -d 192.0.2.1 --sport 1 --dport 2 -t 3",
            "-I -p udp -s 10.0.0.1 -d 192.0.2.1 --sport 1 --dport 2",
            "-I -p udp -s 10.0.0.1 -d 192.0.2.1 --sport 1 -t 3",
            "-I -p udp -s 10.0.0.1 -d 192.0.2.1 --sport 1 --dport 2 -t",
            "-I -p udp -s 10.0.0.1 -s 10.0.0.2 -d 192.0.2.1 --sport 1 --dport 2 -t 3",
            "-I -p udp -s 010.0.0.1 -d 192.0.2.1 --sport 1 --dport 2 -t 3",
            "-I -p udp -s 10.1 -d 192.0.2.1 --sport 1 --dport 2 -t 3",
            "-I -p udp -s 10.0.0.1.5 -d 192.0.2.1 --sport 1 --dport 2 -t 3",
            "-I -p udp -s 10.0.0.256 -d 192.0.2.1 --sport 1 --dport 2 -t 3",
            "-I -p udp -s 10.0.0.1 -d 192.0.2.1 --sport 0 --dport 2 -t 3",
            "-I -p udp -s 10.0.0.1 -d 192.0.2.1 --sport 65536 --dport 2 -t 3",
            "-I -p udp -s 10.0.0.1 -d 192.0.2.1 --sport 01 --dport 2 -t 3",
            "-I -p udp -s 10.0.0.1 -d 192.0.2.1 --sport 1 --dport 2 -t 2147483648",
            "-I -p udp -s 10.0.0.1 -d 192.0.2.1 --sport 1 --dport 2 -t 0x10",
            "-I -p udp -s 10.0.0.1 -d 192.0.2.1 --sport 1 --dport 2 -t 3 -m 1",
            "-I -p udp -s ::1 -d 192.0.2.1 --sport 1 --dport 2 -t 3",
            "-I -p udp --src 10.0.0.1 -d 192.0.2.1 --sport 1 --dport 2 -t 3",
            "-I -p udp -s 10.0.0.1 -d 192.0.2.1 --sport=1 --dport 2 -t 3",
        ];
        for l in lines {
            assert_eq!(UdpCreate::parse(l), None, "{l:?}");
        }
    }
}
