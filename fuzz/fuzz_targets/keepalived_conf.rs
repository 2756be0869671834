//! Fuzzes vrrpd's keepalived.conf reader (`cli::keepalived`: the lexer with its quotes, escapes,
//! continuations, `$NAME` parameters and `@ID` lines, then every typed section reader and the cross
//! checks), and the building of the router configurations it validates: nothing may panic; a file
//! is either refused with a `file:line` reason or read whole. Inputs that name `include` are skipped
//! (they would read this machine's files). Replayed as a test by `cli/tests/keepalived_conf.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cli::keepalived::fuzz_read(data);
});
