//! Fuzzes the conntrack entry decoder: any input must decode or fail with a `DecodeError`, never panic;
//! whatever decodes must emit into `buffer_len()` bytes and decode back to the same entry.
#![no_main]

use ctnl::Entry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for m in ctnl::wire::Msgs::new(data).flatten() {
        if let Ok((family, _, _, attrs)) = m.nfgen() {
            let _ = Entry::parse_attrs(family, attrs);
        }
    }
    if let Ok(e) = Entry::parse(data) {
        let mut buf = vec![0u8; e.buffer_len()];
        if e.emit(&mut buf).is_some() {
            assert_eq!(Entry::parse(&buf).ok().as_ref(), Some(&e));
        }
    }
});
