//! The command-line tools. Each `src/bin/<tool>.rs` is a few lines calling `cli::<tool>::run()`.
#![forbid(unsafe_code)]
pub mod conntrack;
pub mod ctsyncd;
pub mod ipvsadm;
pub mod keepalived;
pub mod vrrpd;

/// The body of the `command_lines` fuzz target, public so that its corpus replays as an ordinary test.
/// The first byte picks the tool by its remainder modulo 3 (0: `conntrack`, 1: `ipvsadm`, 2: `ctsyncd`);
/// the rest, split at NUL bytes, are its arguments. For conntrack the rest is also read as a
/// `conntrack -R` file line, split the way `-R` splits it, and parsed. Nothing may panic; a refusal has
/// a failing exit status and a message.
#[doc(hidden)]
pub fn fuzz_command_lines(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let words = rest.split(|&b| b == 0);
    match pick % 3 {
        0 => {
            let args: Vec<String> = words
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect();
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            conntrack::parse::fuzz_parse(&refs);
            let line = String::from_utf8_lossy(rest);
            let split = conntrack::restore::split_line(&line);
            let refs: Vec<&str> = split.iter().map(String::as_str).collect();
            conntrack::parse::fuzz_parse(&refs);
        }
        1 => {
            let args: Vec<Vec<u8>> = words.map(<[u8]>::to_vec).collect();
            ipvsadm::args::fuzz_parse(&args);
        }
        _ => {
            use std::os::unix::ffi::OsStrExt;
            let args: Vec<std::ffi::OsString> = words
                .map(|w| std::ffi::OsStr::from_bytes(w).to_owned())
                .collect();
            ctsyncd::args::fuzz_parse(&args);
        }
    }
}
