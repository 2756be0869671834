//! Golden tests: our `ipvsadm` against Debian's ipvsadm 1.31 on the same kernel table. They need IPVS, so
//! they run inside the VM (`cargo xtask vm-test`, feature `vm-tests`), each in a private network namespace.
#![cfg(feature = "vm-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};

const OURS: &str = "/opt/project/bin";
const THEIRS: &str = "/usr/sbin";

#[derive(Debug, PartialEq, Eq)]
struct Out {
    stdout: String,
    stderr: String,
    code: i32,
}

/// Runs `ipvsadm ARGS` (argv[0] is "ipvsadm" for both tools) with `stdin` as input.
fn run(dir: &str, args: &str, stdin: &str) -> Out {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd /tmp && PATH={dir}:/bin:/sbin exec ipvsadm {args}"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut si = child.stdin.take().unwrap();
        let _ = si.write_all(stdin.as_bytes());
    }
    let o = child.wait_with_output().unwrap();
    Out {
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        code: o.status.code().unwrap_or(-1),
    }
}

fn theirs(args: &str) -> Out {
    run(THEIRS, args, "")
}

fn ours(args: &str) -> Out {
    run(OURS, args, "")
}

/// Ours must print exactly what theirs prints in a run next to it (theirs runs before and after, for
/// counters and rates that the kernel's 2 s estimator moves). On a slow VM a tick can fall on both sides of
/// ours, so the triple is tried up to five times; every try compares whole outputs.
fn same(args: &str) {
    let mut before = theirs(args);
    for _ in 0..5 {
        let o = ours(args);
        if o == before {
            return;
        }
        let after = theirs(args);
        if o == after {
            return;
        }
        if before == after {
            // Nothing ticked around ours, so the difference is ours.
            assert_eq!(o, after, "ipvsadm {args}");
        }
        before = after;
    }
    assert_eq!(
        ours(args),
        before,
        "ipvsadm {args} (the kernel's counters kept moving)"
    );
}

fn setup() -> Option<testkit::NetNs> {
    let ns = testkit::netns()?;
    if !testkit::require(
        "Debian's ipvsadm in the VM",
        std::path::Path::new(THEIRS).join("ipvsadm").exists(),
    ) || !testkit::require(
        "our ipvsadm in /opt/project/bin",
        std::path::Path::new(OURS).join("ipvsadm").exists(),
    ) {
        return None;
    }
    ns.sh("ip addr add 10.0.0.254/8 dev lo && ip -6 addr add 2001:db8::fe/32 dev lo");
    Some(ns)
}

/// A table using every kind of service and destination option.
const TABLE: &[&str] = &[
    "-A -t 10.0.0.1:80 -s rr",
    "-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m -w 3",
    "-a -t 10.0.0.1:80 -r 10.0.0.3 -g -w 0",
    "-a -t 10.0.0.1:80 -r 10.0.0.4 -i --tun-type gue --tun-port 6080 --tun-csum",
    "-a -t 10.0.0.1:80 -r 10.0.0.5 -i --tun-type gre --tun-csum",
    "-a -t 10.0.0.1:80 -r 10.0.0.6 -i",
    "-a -t 10.0.0.1:80 -r 10.0.0.7 -m -x 100 -y 10",
    "-a -t 10.0.0.1:80 -r 10.0.0.10 -i --tun-type gue --tun-port 7000 --tun-remcsum",
    // Debian's 1.31 takes weights and thresholds up to INT_MAX (upstream's man page says 65535).
    "-a -t 10.0.0.1:80 -r 10.0.0.11 -m -w 2147483647 -x 2147483647 -y 2147483647",
    "-A -u 10.0.0.1:53 -s wlc -p 600 -M 255.255.255.0 -o",
    "-a -u 10.0.0.1:53 -r 10.0.0.2:53 -m",
    "--add-service --sctp-service 10.0.0.1:9 -s sh -b sh-port,sh-fallback",
    "-a --sctp-service 10.0.0.1:9 -r 10.0.0.9:9 -m",
    "-A -f 7 -s mh -b mh-port",
    "-a -f 7 -r 10.0.0.2:0 -g",
    "-A -f 8 -6 -s lblcr -p 30 --pe sip",
    "-a -f 8 -6 -r [2001:db8::2]:5060 -m",
    "-A -t [2001:db8::1]:443 -s wrr -p 60 -M 96",
    "-a -t [2001:db8::1]:443 -r [2001:db8::3]:443 -g -w 3 -x 9 -y 2",
    "-a -t [2001:db8::1]:443 -r 10.0.0.8 -i",
    "-A -t 200.0.0.1:80",
    "-A -t 10.0.0.1:0 -p",
    "-A -u 10.0.0.1:54 -s rr -b flag-1,flag-3",
    "-A -t 10.0.0.254:80 -s rr",
    "-a -t 10.0.0.254:80 -r 10.0.0.2:80 -m",
    "-A -t [2001:db8::fe]:80 -s rr",
    "-a -t [2001:db8::fe]:80 -r [2001:db8::5]:80 -m",
];

fn build_ok(dir: &str) -> bool {
    build(dir);
    true
}

fn build(dir: &str) {
    for line in TABLE {
        let o = run(dir, line, "");
        assert_eq!(o.code, 0, "{dir}/ipvsadm {line}: {o:?}");
    }
}

const LISTINGS: &[&str] = &[
    "",
    "-L",
    "-L -n",
    "-l -n",
    "-Ln --stats",
    "-L -n --stats --exact",
    "-L -n --rate",
    "-L -n --rate --exact",
    "-L -n --thresholds",
    "-L -n --persistent-conn",
    "-L -n --tun-info",
    "-L -n --nosort",
    "-L -n --sort",
    "-L -n -t 10.0.0.1:80",
    "-L -n --tun-info -t 10.0.0.1:80",
    "-L -n --sctp-service 10.0.0.1:9 --stats",
    "-L -f 8 -6 -n",
    "-L --timeout",
    "-L --daemon",
    "-S",
    "-S -n",
    "--save --numeric",
    "-L -c",
    "-L -c -n",
    "-L -c -n --persistent-conn",
];

#[test]
fn every_listing_format_is_byte_identical() {
    let Some(ns) = setup() else { return };
    build(THEIRS);
    // Traffic, so counters and connection entries are not all zero.
    ns.sh("nc -w 1 10.0.0.254 80 </dev/null >/dev/null 2>&1; nc -w 1 2001:db8::fe 80 </dev/null >/dev/null 2>&1; true");
    ns.sh("/usr/sbin/ipvsadm --set 1000 100 200");
    // The kernel publishes counters and rates from its 2 s estimator: wait for one run, so --stats and
    // --rate compare non-zero values.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let stats = theirs("-L -n --stats --exact");
    assert!(
        stats
            .stdout
            .lines()
            .any(|l| l.starts_with("TCP  10.0.0.254:80")
                && l.split_whitespace().nth(2).is_some_and(|c| c != "0")),
        "no traffic counted: {stats:?}"
    );
    for args in LISTINGS.iter().filter(|a| !a.starts_with("-L -c")) {
        same(args);
    }
    // Fresh connections for the connection listings: under a slow VM the listings above can outlast the
    // entries made at the start (their CLOSE/FIN timeouts run in seconds).
    ns.sh("nc -w 1 10.0.0.254 80 </dev/null >/dev/null 2>&1; nc -w 1 2001:db8::fe 80 </dev/null >/dev/null 2>&1; true");
    for args in LISTINGS.iter().filter(|a| a.starts_with("-L -c")) {
        same(args);
    }
    let c = theirs("-L -c -n");
    assert!(
        c.stdout.lines().count() >= 3,
        "no connection entries to compare: {c:?}"
    );
}

/// The kernel refuses sync daemons while mixed-family destinations exist, so daemons get their own table.
#[test]
fn daemon_listing_is_identical() {
    let Some(ns) = setup() else { return };
    same("-L --daemon");
    ns.sh("ip link add d0 type dummy && ip link set d0 up && ip addr add 192.0.2.1/24 dev d0");
    ns.sh("/usr/sbin/ipvsadm --start-daemon master --mcast-interface d0 --syncid 7 --mcast-port 9000 --mcast-ttl 2");
    same("-L --daemon");
    ns.sh("/usr/sbin/ipvsadm --start-daemon backup --mcast-interface d0 --syncid 9 --sync-maxlen 1000 --mcast-group 239.0.0.9");
    same("-L --daemon");
    same("--start-daemon master --mcast-interface d0");
    same("--stop-daemon backup");
    same("--stop-daemon backup");
    same("-L --daemon");
}

#[test]
fn ours_writes_theirs_reads_and_reverse() {
    let Some(_ns) = setup() else { return };
    build(THEIRS);
    let want = theirs("-S -n");
    assert_eq!(theirs("-C").code, 0);
    build(OURS);
    assert_eq!(theirs("-S -n"), want);
    assert_eq!(ours("-S -n"), want);
    // Edits and deletes, then compare again.
    let edits = [
        "-E -t 10.0.0.1:80 -s wlc -p 100",
        "-e -t 10.0.0.1:80 -r 10.0.0.2:8080 -m -w 7",
        "-e -t 10.0.0.1:80 -r 10.0.0.4 -i --tun-type gre --tun-nocsum",
        "-d -t 10.0.0.1:80 -r 10.0.0.3",
        "-D -u 10.0.0.1:54",
        "-Z",
        "-Z -t 10.0.0.1:80",
        "--set 10 20 30",
    ];
    for e in edits {
        let o = ours(e);
        assert_eq!(o.code, 0, "ours {e}: {o:?}");
    }
    let after_ours = theirs("-S -n");
    let t_ours = theirs("-L --timeout");
    assert_eq!(theirs("-C").code, 0);
    build(THEIRS);
    for e in edits {
        let o = theirs(e);
        assert_eq!(o.code, 0, "theirs {e}: {o:?}");
    }
    assert_eq!(theirs("-S -n"), after_ours);
    assert_eq!(theirs("-L --timeout"), t_ours);
    // Daemons started by ours, read by theirs (none while mixed-family destinations exist).
    assert_eq!(ours("-C").code, 0);
    _ns_dummy();
    assert_eq!(
        ours("--start-daemon backup --mcast-interface d1 --syncid 3 --mcast-group ff02::1:3").code,
        0
    );
    let d = theirs("-L --daemon");
    assert_eq!(
        d.stdout,
        "backup sync daemon (mcast=d1, syncid=3, maxlen=1452, group=ff02::1:3, port=8848, ttl=1)\n"
    );
    assert_eq!(ours("--stop-daemon backup").code, 0);
    assert_eq!(theirs("-L --daemon").stdout, "");
}

fn _ns_dummy() {
    let o = Command::new("sh")
        .arg("-c")
        .arg("ip link add d1 type dummy && ip link set d1 up")
        .output()
        .unwrap();
    assert!(o.status.success());
}

#[test]
fn restore_reads_the_other_tools_save() {
    let Some(_ns) = setup() else { return };
    build(THEIRS);
    for save in ["-S -n", "-S"] {
        let saved = theirs(save).stdout;
        assert!(saved.lines().count() > 20);
        assert_eq!(theirs("-C").code, 0);
        let o = run(OURS, "-R", &saved);
        assert_eq!((o.code, o.stderr.as_str()), (0, ""));
        assert_eq!(theirs(save).stdout, saved, "ours -R of theirs {save}");
        let ours_saved = ours(save).stdout;
        assert_eq!(ours_saved, saved);
        assert_eq!(ours("-C").code, 0);
        let o = run(THEIRS, "-R", &ours_saved);
        assert_eq!((o.code, o.stderr.as_str()), (0, ""));
        assert_eq!(ours(save).stdout, saved, "theirs -R of ours {save}");
    }
    // Restore with errors part-way: same messages, same exit code, same table.
    let input = "-A -t 10.0.0.1:80\n-A -t 7.7.7.7:80\n-a -t 7.7.7.7:80 -r 10.0.0.3:80 -m\n-a -t 9.9.9.9:1 -r 10.0.0.3\n\nipvsadm -A -t 7.7.7.8:80\n";
    let t = run(THEIRS, "-R", input);
    let after = theirs("-S -n");
    assert_eq!(theirs("-D -t 7.7.7.7:80").code, 0);
    assert_eq!(theirs("-D -t 7.7.7.8:80").code, 0);
    let o = run(OURS, "-R", input);
    assert_eq!(o, t);
    assert_eq!(theirs("-S -n"), after);
    // A byte that is not UTF-8 spoils only its own line.
    std::fs::write(
        "/tmp/latin1.rules",
        b"-A -t 6.6.6.6:80\n-A -t 6.6.6.7:80 -s caf\xe9\n-A -t 6.6.6.8:80\n",
    )
    .unwrap();
    let t = run(THEIRS, "-R </tmp/latin1.rules", "");
    let after = theirs("-S -n");
    assert!(after.stdout.contains("6.6.6.8:80"), "{after:?}");
    assert_eq!(theirs("-D -t 6.6.6.6:80").code, 0);
    assert_eq!(theirs("-D -t 6.6.6.8:80").code, 0);
    let o = run(OURS, "-R </tmp/latin1.rules", "");
    assert_eq!(o, t);
    assert_eq!(theirs("-S -n"), after);
    // Last lines without a newline: kept with one trailing blank, dropped by ipvsadm with two or more.
    for input in [
        "-A -t 6.6.6.6:80\n-A -t 6.6.6.7:80",
        "-A -t 6.6.6.6:80\n-A -t 6.6.6.7:80 ",
        "-A -t 6.6.6.6:80\n-A -t 6.6.6.7:80  ",
        "-A -t 6.6.6.6:80\n-A -t 6.6.6.7:80 \t\r",
        "-A -t 6.6.6.6:80\n  ",
    ] {
        assert!(theirs("-C").code == 0 && build_ok(THEIRS));
        let t = run(THEIRS, "-R", input);
        let after = theirs("-S -n");
        assert!(theirs("-C").code == 0 && build_ok(THEIRS));
        let o = run(OURS, "-R", input);
        assert_eq!(o, t, "{input:?}");
        assert_eq!(theirs("-S -n"), after, "{input:?}");
    }
    assert!(theirs("-C").code == 0 && build_ok(THEIRS));
    // A line that makes ipvsadm exit stops the restore at that point.
    let bad = "-A -t 5.5.5.5:80\n-A -t 5.5.5.6:80 -s rr -s rr\n-A -t 5.5.5.7:80\n";
    let t = run(THEIRS, "-R", bad);
    let after = theirs("-S -n");
    assert_eq!(theirs("-D -t 5.5.5.5:80").code, 0);
    let o = run(OURS, "-R", bad);
    assert_eq!(o, t);
    assert_eq!(theirs("-S -n"), after);
}

/// Command lines that fail, with the table of `build`: same texts and exit codes.
const ERRORS: &[&str] = &[
    "-A -t 10.0.0.1:80",
    "-A -t 10.0.0.99:80 -s nosuch",
    "-A -t 10.0.0.99:80 --pe nosuch",
    "-E -t 10.0.0.99:80",
    "-D -t 10.0.0.99:80",
    "-Z -t 10.0.0.99:80",
    "-a -t 10.0.0.99:80 -r 10.0.0.2",
    "-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m",
    "-e -t 10.0.0.1:80 -r 10.0.0.77",
    "-d -t 10.0.0.1:80 -r 10.0.0.77",
    "-d -t 10.0.0.99:80 -r 10.0.0.77",
    "-L -t 10.0.0.99:80",
    "-L -n -t 10.0.0.99:80",
    "--stop-daemon master",
    "--start-daemon master --mcast-interface nosuchif",
    "--start-daemon bogus",
    "--stop-daemon bogus",
    "--foo",
    "-p",
    "-L --foo",
    "-L -t",
    "-A -t 1.2.3.4:80 extra",
    "-L -n -x 3",
    "-A -t 1.2.3.4:80 -A",
    "-A -t 1.2.3.4:80 -s rr -s rr",
    "-A -t 1.2.3.4",
    "-A -t 1.2.3.4:80 -o",
    "-A -t 1.2.3.4:80 -p 0",
    "-A -t 1.2.3.4:80 -p 99999999",
    "-A -t 1.2.3.4:80 -M 300.1.1.1 -p",
    "-A -t [2001:db8::9]:80 -M 129 -p",
    "-A -t 999.1.1.1:80",
    "-A -t [2001:db8::9:80",
    "-A -f 0",
    "-A -f abc",
    "-A -6 -f 1",
    "-A -t 1.2.3.4:1 -b sh-port",
    "-A -t 1.2.3.4:1 -b bogus",
    "-a -t 10.0.0.1:80 -r 10.0.0.2 -w 2147483648",
    "-a -t 10.0.0.1:80 -r 10.0.0.2 -w -1",
    "-a -t 10.0.0.1:80 -r 10.0.0.2 -x -1",
    "-a -t 10.0.0.1:80 -r 10.0.0.2 -m --tun-type gre",
    "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue",
    "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type ipip --tun-port 5",
    "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gre --tun-remcsum",
    "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 1 --tun-csum --tun-nocsum",
    "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type foo",
    "-a -t 10.0.0.1:80 -r [2001:db8::4] -m",
    "-a -t 10.0.0.1:80",
    "-L -c -t 10.0.0.1:80",
    "-L --timeout --stats",
    "-L --daemon --persistent-conn",
    "--set 1 2",
    "--set 1 2 x",
    "--start-daemon master --syncid 300",
    "--start-daemon master --mcast-group 10.0.0.1",
    "--start-daemon master --mcast-port 0",
    "-C -n",
    "-S -c",
    "-D",
    "-R -n",
    "-ALn",
    "-At",
    "-Ln -ZL",
    "-Atx 10.0.0.9:80",
    "--start-daemon master --start-daemon backup",
    "--start-daemon master --start-daemon=backup",
    "--stop-daemon master --stop-daemon backup",
];

#[test]
fn error_cases_match() {
    let Some(_ns) = setup() else { return };
    build(THEIRS);
    let before = theirs("-S -n");
    for args in ERRORS {
        same(args);
        assert_eq!(theirs("-S -n"), before, "{args} changed the table");
    }
    same("-h");
    same("--help");
    same("-v");
    same("--version");
    // Restore nested in restore.
    let t = run(THEIRS, "-R", "-R\n");
    assert_eq!(run(OURS, "-R", "-R\n"), t);
}

/// Names from /etc/hosts and /etc/services, both ways (glibc in the VM reads them through its built-in
/// `files` NSS module; ours reads the same files).
#[test]
fn names_from_hosts_and_services_match() {
    let Some(_ns) = setup() else { return };
    std::fs::create_dir_all("/etc").unwrap();
    let had_hosts = std::path::Path::new("/etc/hosts").exists();
    let had_services = std::path::Path::new("/etc/services").exists();
    if !had_hosts {
        std::fs::write(
            "/etc/hosts",
            "10.0.0.1 web1 web1.example\n10.0.0.2 real2\n2001:db8::1 v6svc\n",
        )
        .unwrap();
    }
    if !had_services {
        std::fs::write(
            "/etc/services",
            "http 80/tcp www\ndomain 53/udp\nhttp-alt 8080/tcp webcache\n",
        )
        .unwrap();
    }
    for line in [
        "-A -t web1:http -s rr",
        "-a -t web1:www -r real2:webcache -m",
        "-a -t web1:80 -r 10.0.0.3 -g",
        "-A -u web1:domain",
        "-A -t [2001:db8::1]:http",
        "-a -t [2001:db8::1]:80 -r [2001:db8::2]:8080 -m",
    ] {
        let o = theirs(line);
        assert_eq!(o.code, 0, "{line}: {o:?}");
    }
    for args in [
        "-L",
        "-S",
        "-L -n",
        "-L --stats",
        "-L -t web1:http",
        "-A -t web1:http",
        "-A -t nosuchhost:80",
    ] {
        same(args);
    }
    // ipvsadm cannot read back "[v6svc]:http" (an IPv6 *name*): both must stop at the same line.
    let saved = theirs("-S").stdout;
    assert_eq!(theirs("-C").code, 0);
    let t = run(THEIRS, "-R", &saved);
    let t_table = theirs("-S").stdout;
    assert_eq!(theirs("-C").code, 0);
    let o = run(OURS, "-R", &saved);
    assert_eq!(o, t);
    assert_eq!(theirs("-S").stdout, t_table);
    if !had_hosts {
        std::fs::remove_file("/etc/hosts").unwrap();
    }
    if !had_services {
        std::fs::remove_file("/etc/services").unwrap();
    }
}

/// A listing into a pipe nobody reads: ipvsadm dies of SIGPIPE; so must ours (Rust ignores SIGPIPE).
#[test]
fn listing_into_a_closed_pipe_dies_of_sigpipe() {
    use std::os::unix::process::ExitStatusExt;
    let Some(_ns) = setup() else { return };
    build(THEIRS);
    for dir in [THEIRS, OURS] {
        for args in ["-S -n", "-L -n", "-L -n --stats"] {
            let (r, w) = std::io::pipe().unwrap();
            drop(r);
            let st = Command::new(format!("{dir}/ipvsadm"))
                .args(args.split(' '))
                .stdout(w)
                .stderr(Stdio::piped())
                .output()
                .unwrap();
            assert_eq!(
                (st.status.code(), st.status.signal(), st.stderr.as_slice()),
                (None, Some(13), &b""[..]),
                "{dir}/ipvsadm {args}"
            );
        }
    }
}

/// Runs `DIR/ipvsadm` with raw byte arguments (and `argv[0]`), returning stdout, stderr and the exit code.
fn run_bytes(dir: &str, argv0: &[u8], args: &[&[u8]]) -> (Vec<u8>, Vec<u8>, Option<i32>) {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    let o = Command::new(format!("{dir}/ipvsadm"))
        .arg0(OsStr::from_bytes(argv0))
        .args(args.iter().map(|a| OsStr::from_bytes(a)))
        .current_dir("/tmp")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (o.stdout, o.stderr, o.status.code())
}

/// Arguments that are not UTF-8 (read with `args_os`): the same bytes on stdout and stderr and the same
/// exit status as Debian's ipvsadm, never a panic, and the table unchanged.
#[test]
fn non_utf8_arguments_match() {
    let Some(_ns) = setup() else { return };
    build(THEIRS);
    let before = theirs("-S -n");
    let cases: &[&[&[u8]]] = &[
        &[b"-A", b"-f", b"\xff"],
        &[b"-A", b"-t", b"caf\xe9:80"],
        &[b"-a", b"-t", b"10.0.0.1:80", b"-r", b"\xff\xfe"],
        &[b"-L", b"--\xff"],
        &[b"-L", b"--\xff=1"],
        &[b"-A", b"-t", b"1.2.3.4:80", b"\xc3"],
        &[b"-A", b"-t", b"10.0.0.99:80", b"-s", b"caf\xe9"],
        &[b"-A", b"-t", b"10.0.0.99:80", b"--pe", b"\xff"],
        &[
            b"-A",
            b"-t",
            b"10.0.0.99:80",
            b"-s",
            b"sh",
            b"-b",
            b"sh-port,\x80",
        ],
        &[b"-A", b"-t", b"10.0.0.99:80", b"-p", b"\xff"],
        &[b"-A", b"-t", b"10.0.0.99:80", b"-M", b"\xff", b"-p"],
        &[b"--set", b"1", b"2", b"\xff"],
        &[b"-L\xe9"],
        &[
            b"-a",
            b"-t",
            b"10.0.0.1:80",
            b"-r",
            b"10.0.0.2",
            b"-i",
            b"--tun-type",
            b"\xff",
        ],
        &[b"--start-daemon", b"\xff"],
        &[b"--start-daemon", b"master", b"--mcast-group", b"\xff"],
        &[b"\xff"],
    ];
    for args in cases {
        let t = run_bytes(THEIRS, b"ipvsadm", args);
        let o = run_bytes(OURS, b"ipvsadm", args);
        assert_eq!(o, t, "{args:?}");
        assert_ne!(t.2, Some(0), "not an error case: {args:?}");
        assert!(!o.1.windows(8).any(|w| w == b"panicked"), "{args:?}");
        assert_eq!(theirs("-S -n"), before, "{args:?} changed the table");
    }
    // argv[0] is quoted as given.
    let t = run_bytes(THEIRS, b"ipv\xffsadm", &[b"--foo"]);
    assert!(t.1.starts_with(b"Try `ipv\xffsadm -h'"), "{t:?}");
    assert_eq!(run_bytes(OURS, b"ipv\xffsadm", &[b"--foo"]), t);
}
