//! Fuzzes ctsyncd's receive path: hostile datagrams through a session of each mode, then everything
//! that reached an external cache printed as `-e` prints it and turned into the kernel entry a commit
//! would create, and the bytes parsed as a control request. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cli::ctsyncd::receive_path_check(data);
});
