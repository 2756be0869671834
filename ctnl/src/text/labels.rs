//! Connection label names: `connlabel.conf`, as libnetfilter_conntrack reads it.

/// Bit-to-name mapping of connection labels (`/etc/xtables/connlabel.conf`), read the way
/// libnetfilter_conntrack's `nfct_labelmap_new` reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelMap {
    names: Vec<Option<String>>,
}

/// The system file.
pub const CONNLABEL_CONF: &str = "/etc/xtables/connlabel.conf";

impl LabelMap {
    /// Parses connlabel.conf text: `BIT NAME` per line (the bit decimal, octal or hex, below 1024), `#`
    /// comments, the first definition of a bit or name wins, names limited to letters, digits, space and
    /// `-`. `None` when no label is defined.
    pub fn parse(text: &str) -> Option<LabelMap> {
        let mut names: Vec<Option<String>> = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let t = line.trim_start();
            let (digits, radix, skip) = if t.starts_with("0x") || t.starts_with("0X") {
                (&t[2..], 16, 2)
            } else if t.starts_with('0') {
                (t, 8, 0)
            } else {
                (t, 10, 0)
            };
            let end = digits
                .find(|c: char| !c.is_digit(radix))
                .unwrap_or(digits.len());
            if end == 0 && skip == 0 {
                continue;
            }
            let Ok(bit) = usize::from_str_radix(if end == 0 { "0" } else { &digits[..end] }, radix)
            else {
                continue;
            };
            if bit >= 1024 {
                continue;
            }
            let name = digits[end..]
                .trim_matches(|c: char| c == ' ' || c == '\t' || c == '\n' || c == '\r');
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'-')
            {
                continue;
            }
            if names.len() <= bit {
                names.resize(bit + 1, None);
            }
            if names[bit].is_none() && !names.iter().any(|n| n.as_deref() == Some(name)) {
                names[bit] = Some(name.to_string());
            }
        }
        if names.iter().all(Option::is_none) {
            None
        } else {
            Some(LabelMap { names })
        }
    }

    /// Loads [`CONNLABEL_CONF`] (or the file `$CONNTRACK_CONNLABEL_CONF` names, when set). `None` when it
    /// cannot be read or defines no label.
    pub fn load() -> Option<LabelMap> {
        LabelMap::load_result().ok().flatten()
    }

    /// Like [`LabelMap::load`], telling a file that cannot be read (the error) from one without labels
    /// (`Ok(None)`).
    pub fn load_result() -> std::io::Result<Option<LabelMap>> {
        let path = std::env::var("CONNTRACK_CONNLABEL_CONF")
            .unwrap_or_else(|_| CONNLABEL_CONF.to_string());
        Ok(LabelMap::parse(&std::fs::read_to_string(path)?))
    }

    /// The name of bit `bit`.
    pub fn name(&self, bit: usize) -> Option<&str> {
        self.names.get(bit).and_then(|n| n.as_deref())
    }

    /// The bit of `name`.
    pub fn bit(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n.as_deref() == Some(name))
    }

    /// The names of the bits set in `labels` (the kernel's bitmap, bit `i` in byte `i / 8`), in bit
    /// order; bits without a name are left out.
    pub fn names_of<'a>(&'a self, labels: &'a [u8]) -> impl Iterator<Item = &'a str> + 'a {
        set_bits(labels).filter_map(|b| self.name(b).filter(|n| !n.is_empty()))
    }
}

/// The bits set in a label bitmap, ascending.
pub fn set_bits(labels: &[u8]) -> impl Iterator<Item = usize> + '_ {
    (0..labels.len() * 8).filter(|b| labels[b / 8] & (1 << (b % 8)) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_like_libnetfilter_conntrack() {
        let m = LabelMap::parse("# c\n0 eth0-in\n1\tbad;name\n0 dup\n7 seven\n0x9 nine\n").unwrap();
        assert_eq!(m.name(0), Some("eth0-in"));
        assert_eq!(m.name(1), None);
        assert_eq!(m.bit("seven"), Some(7));
        assert_eq!(m.bit("nine"), Some(9));
        assert_eq!(m.bit("dup"), None);
        assert_eq!(
            m.names_of(&[0x81, 0x02]).collect::<Vec<_>>(),
            ["eth0-in", "seven", "nine"]
        );
        assert!(LabelMap::parse("# nothing\n").is_none());
    }
}
