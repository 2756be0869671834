//! Fuzzes ctsyncd's conntrackd.conf reader (`cli::ctsyncd::config`: the lexer, the `General` and `Sync`
//! sections with their modes, links, `Filter` and `Options`, and the final checks), then builds the
//! sync session a file that reads describes: nothing may panic; a file is either refused with a
//! `file:line` reason or read whole. Replayed as a test by `cli/tests/ctsyncd_config.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cli::ctsyncd::config::fuzz_parse(data);
});
