//! Fuzzes the command-line readers of the `conntrack` and `ipvsadm` drop-ins (`cli::fuzz_command_lines`):
//! the first byte picks the tool, the rest split at NUL bytes are its arguments; conntrack's also go
//! through the `-R` line splitter. Nothing may panic; a refusal has a failing exit status and a message.
//! Replayed as a test by `cli/tests/command_line_fuzz.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cli::fuzz_command_lines(data);
});
