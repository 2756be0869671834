//! The `command_lines` fuzz target's corpus replays through its body (`cli::fuzz_command_lines`): the
//! `conntrack`, `ipvsadm` and `ctsyncd` command-line readers never panic, and a refusal has a failing
//! exit status and a message. The hand-written seeds that are valid command lines also parse.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[test]
fn command_line_fuzz_corpus_replays() {
    let corpus = testkit::replay_fuzz_corpus("command_lines", 20, cli::fuzz_command_lines);
    let words = |name: &str| -> Vec<Vec<u8>> {
        let (_, data) = corpus.iter().find(|(p, _)| p.ends_with(name)).unwrap();
        data[1..].split(|&b| b == 0).map(<[u8]>::to_vec).collect()
    };
    for seed in ["ct_list_filter", "ct_create", "ct_events", "ct_expect"] {
        let w: Vec<String> = words(seed)
            .iter()
            .map(|w| String::from_utf8(w.clone()).unwrap())
            .collect();
        let argv: Vec<&str> = std::iter::once("conntrack")
            .chain(w.iter().map(String::as_str))
            .collect();
        assert!(cli::conntrack::parse::parse(&argv).is_ok(), "{seed}");
    }
    assert!(cli::conntrack::parse::parse(&["conntrack", "-L", "-p", "nosuch"]).is_err());
    for seed in [
        "ipvs_add_service",
        "ipvs_add_real",
        "ipvs_list",
        "ipvs_set",
        "ipvs_fwmark_mh",
    ] {
        let argv: Vec<Vec<u8>> = std::iter::once(b"ipvsadm".to_vec())
            .chain(words(seed))
            .collect();
        assert!(cli::ipvsadm::args::parse(&argv).is_ok(), "{seed}");
    }
    let os_argv = |seed: &str| -> Vec<std::ffi::OsString> {
        use std::os::unix::ffi::OsStrExt;
        std::iter::once(std::ffi::OsString::from("ctsyncd"))
            .chain(
                words(seed)
                    .iter()
                    .map(|w| std::ffi::OsStr::from_bytes(w).to_owned()),
            )
            .collect()
    };
    for seed in [
        "ctsyncd_daemon",
        "ctsyncd_dump",
        "ctsyncd_stats",
        "ctsyncd_commit",
        "ctsyncd_flush",
    ] {
        assert!(cli::ctsyncd::args::parse(&os_argv(seed)).is_ok(), "{seed}");
    }
    assert!(cli::ctsyncd::args::parse(&os_argv("ctsyncd_bad")).is_err());
    let (_, bad) = corpus
        .iter()
        .find(|(p, _)| p.ends_with("ipvs_bad"))
        .unwrap();
    let argv: Vec<Vec<u8>> = std::iter::once(b"ipvsadm".to_vec())
        .chain(bad[1..].split(|&b| b == 0).map(<[u8]>::to_vec))
        .collect();
    assert_eq!(cli::ipvsadm::args::parse(&argv).err().unwrap().code, 2);
}
