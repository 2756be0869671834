//! The IPVS VM: boots Debian's kernel (which has the `ip_vs` modules) under qemu/TCG with a generated
//! initramfs, runs one busybox `sh` script inside it, streams the script's output back and returns its
//! exit status.
//!
//! The initramfs holds:
//! * `/bin/busybox` (busybox-static) and its applet links, made by `/init` at boot;
//! * every `ip_vs*` module of that kernel plus their dependencies (from `modprobe --show-depends`) and
//!   `dummy`, loaded in dependency order by `/init`;
//! * Debian's `/usr/sbin/ipvsadm` and `/usr/sbin/keepalived`, and the shared libraries of every binary
//!   it holds (from `ldd`), with a one-line `/etc/passwd` and `/etc/group`;
//! * the project's release binaries in `/opt/project/bin/` and test executables in `/opt/project/tests/`.
//!
//! `/init` brings `lo` up with `10.0.0.254/8` and `2001:db8::fe/32`, runs the script with `cwd` `/tmp`
//! and prints a unique exit-status marker line that the host parses; then it powers the VM off. The host
//! kills qemu by its PID if the script does not finish within the timeout.

use anyhow::{Context, Result, bail};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The line `/init` prints after the script, followed by the script's exit status.
const EXIT_MARKER: &str = "__XTASK_VM_EXIT_7f3a__=";
/// The line `/init` prints right before running the script: output before it is the kernel's boot noise.
const START_MARKER: &str = "__XTASK_VM_START_7f3a__";

/// What to put into one VM run.
#[derive(Debug, Default)]
pub struct VmSpec {
    /// The busybox `sh` script to run.
    pub script: String,
    /// Executables copied to `/opt/project/bin/` (by file name).
    pub bins: Vec<PathBuf>,
    /// Executables copied to `/opt/project/tests/` (by the given name).
    pub tests: Vec<(String, PathBuf)>,
    /// Environment for the script.
    pub env: Vec<(String, String)>,
    /// Wall-clock limit for the whole VM run.
    pub timeout: Duration,
    /// Guest memory in MiB.
    pub mem_mib: u32,
}

/// The Debian kernel with IPVS modules: `(version, vmlinuz path)`. The newest `/boot/vmlinuz-*` whose
/// `/lib/modules/<version>/kernel/net/netfilter/ipvs` exists.
pub fn find_kernel() -> Result<(String, PathBuf)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/boot")
        .context("reading /boot")?
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(ver) = name.strip_prefix("vmlinuz-")
            && Path::new(&format!("/lib/modules/{ver}/kernel/net/netfilter/ipvs")).is_dir()
        {
            found.push((ver.to_string(), entry.path()));
        }
    }
    found.sort();
    found.pop().context(
        "no /boot/vmlinuz-* with ip_vs modules in /lib/modules (install linux-image-amd64: `cargo xtask deps`)",
    )
}

/// Every module to load, in load order: the closure of all `ip_vs*` modules, and `dummy`.
fn module_closure(version: &str) -> Result<Vec<PathBuf>> {
    let dir = format!("/lib/modules/{version}/kernel/net/netfilter/ipvs");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {dir}"))?
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let base = n.split(".ko").next()?.to_string();
            n.contains(".ko").then_some(base)
        })
        .collect();
    names.sort();
    // ip_vs first so its dependencies come out in a sensible order; then the schedulers etc.
    names.sort_by_key(|n| n != "ip_vs");
    names.push("dummy".to_string());
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for name in &names {
        let out = Command::new("modprobe")
            .args(["-S", version, "--show-depends", name])
            .output()
            .context("running modprobe (install kmod: `cargo xtask deps`)")?;
        if !out.status.success() {
            bail!(
                "modprobe --show-depends {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let mut words = line.split_whitespace();
            if words.next() != Some("insmod") {
                continue; // "builtin X"
            }
            if let Some(path) = words.next()
                && seen.insert(path.to_string())
            {
                order.push(PathBuf::from(path));
            }
        }
    }
    Ok(order)
}

/// The shared libraries (and dynamic loader) an ELF executable needs, from `ldd`. Empty for static ones.
fn shared_libs(exe: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(exe)
        .output()
        .context("running ldd")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let path = if let Some((_, rest)) = line.split_once("=> ") {
            rest.split_whitespace().next()
        } else if line.starts_with('/') {
            line.split_whitespace().next()
        } else {
            None
        };
        if let Some(p) = path
            && p.starts_with('/')
        {
            libs.push(PathBuf::from(p));
        }
    }
    Ok(libs)
}

/// A minimal writer of the `newc` cpio format the kernel unpacks as its initramfs.
struct Cpio {
    out: Vec<u8>,
    ino: u32,
    dirs: BTreeSet<String>,
    files: BTreeSet<String>,
}

impl Cpio {
    fn new() -> Self {
        Cpio {
            out: Vec::new(),
            ino: 1,
            dirs: BTreeSet::new(),
            files: BTreeSet::new(),
        }
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        let name = name.trim_start_matches('/');
        let fields = [
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.ino += 1;
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    /// Adds a directory and its parents (once each).
    fn dir(&mut self, path: &str) {
        let mut cur = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            cur.push('/');
            cur.push_str(part);
            if self.dirs.insert(cur.clone()) {
                let c = cur.clone();
                self.entry(&c, 0o040755, (0, 0), &[]);
            }
        }
    }

    fn parent(&mut self, path: &str) {
        if let Some((parent, _)) = path.rsplit_once('/')
            && !parent.is_empty()
        {
            self.dir(parent);
        }
    }

    /// Adds a regular file with the given content and permission bits (once per path).
    fn file(&mut self, path: &str, perm: u32, data: &[u8]) {
        if !self.files.insert(path.to_string()) {
            return;
        }
        self.parent(path);
        self.entry(path, 0o100000 | perm, (0, 0), data);
    }

    fn char_dev(&mut self, path: &str, major: u32, minor: u32) {
        self.parent(path);
        self.entry(path, 0o020600, (major, minor), &[]);
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        // The kernel wants the archive padded to a 512-byte block; harmless either way.
        while !self.out.len().is_multiple_of(512) {
            self.out.push(0);
        }
        self.out
    }
}

/// Reads an executable for the initramfs, stripped of debug info when `strip` can do it (test binaries
/// built in the dev profile are mostly DWARF).
fn read_stripped(path: &Path, scratch: &Path) -> Result<Vec<u8>> {
    let tmp = scratch.join(format!("strip-{}", std::process::id()));
    let ok = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&tmp)
        .arg(path)
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let data = if ok {
        std::fs::read(&tmp)
    } else {
        std::fs::read(path)
    };
    let _ = std::fs::remove_file(&tmp);
    data.with_context(|| format!("reading {}", path.display()))
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Builds the initramfs for `spec` and returns its bytes.
fn initramfs(spec: &VmSpec, version: &str, scratch: &Path) -> Result<Vec<u8>> {
    let mut cpio = Cpio::new();
    for d in [
        "/bin",
        "/sbin",
        "/usr/bin",
        "/usr/sbin",
        "/proc",
        "/sys",
        "/dev",
        "/tmp",
        "/run",
    ] {
        cpio.dir(d);
    }
    cpio.dir("/opt/project/bin");
    cpio.dir("/opt/project/tests");
    cpio.char_dev("/dev/console", 5, 1);
    cpio.char_dev("/dev/null", 1, 3);

    let busybox = Path::new("/bin/busybox");
    if !busybox.is_file() {
        bail!("/bin/busybox missing (install busybox-static: `cargo xtask deps`)");
    }
    cpio.file("/bin/busybox", 0o755, &std::fs::read(busybox)?);

    let mut elves: Vec<PathBuf> = Vec::new();
    let ipvsadm = Path::new("/usr/sbin/ipvsadm");
    if !ipvsadm.is_file() {
        bail!("/usr/sbin/ipvsadm missing (install ipvsadm: `cargo xtask deps`)");
    }
    cpio.file("/usr/sbin/ipvsadm", 0o755, &std::fs::read(ipvsadm)?);
    elves.push(ipvsadm.to_path_buf());
    // keepalived 2.2.7: the reference for the LVS health checker (lvs-check's VM tests).
    let keepalived = Path::new("/usr/sbin/keepalived");
    if !keepalived.is_file() {
        bail!("/usr/sbin/keepalived missing (install keepalived: `cargo xtask deps`)");
    }
    cpio.file("/usr/sbin/keepalived", 0o755, &std::fs::read(keepalived)?);
    elves.push(keepalived.to_path_buf());
    // Name lookups keepalived makes (its default script user) need these two files.
    cpio.file("/etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n");
    cpio.file("/etc/group", 0o644, b"root:x:0:\n");

    for bin in &spec.bins {
        let name = bin
            .file_name()
            .context("binary without a file name")?
            .to_string_lossy();
        cpio.file(
            &format!("/opt/project/bin/{name}"),
            0o755,
            &read_stripped(bin, scratch)?,
        );
        elves.push(bin.clone());
    }
    for (name, bin) in &spec.tests {
        cpio.file(
            &format!("/opt/project/tests/{name}"),
            0o755,
            &read_stripped(bin, scratch)?,
        );
        elves.push(bin.clone());
    }
    let mut libs = BTreeSet::new();
    for exe in &elves {
        libs.extend(shared_libs(exe)?);
    }
    for lib in libs {
        let data = std::fs::read(&lib).with_context(|| format!("reading {}", lib.display()))?;
        cpio.file(&lib.to_string_lossy(), 0o755, &data);
    }

    let mut insmods = String::new();
    for (i, m) in module_closure(version)?.iter().enumerate() {
        let name = m
            .file_name()
            .context("module path")?
            .to_string_lossy()
            .into_owned();
        let dest = format!("/modules/{i:02}-{name}");
        cpio.file(
            &dest,
            0o644,
            &std::fs::read(m).with_context(|| format!("reading {}", m.display()))?,
        );
        insmods.push_str(&format!(
            "insmod {dest} || echo \"xtask-vm: insmod {name} failed\"\n"
        ));
    }

    let mut exports = String::new();
    for (k, v) in &spec.env {
        exports.push_str(&format!("export {k}={}\n", shell_quote(v)));
    }
    let init = format!(
        "#!/bin/busybox sh\n\
         /bin/busybox --install -s /bin\n\
         export PATH=/opt/project/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sysfs /sys\n\
         mount -t devtmpfs devtmpfs /dev 2>/dev/null\n\
         mount -t tmpfs tmpfs /tmp\n\
         echo 1 > /proc/sys/kernel/printk\n\
         {insmods}\
         ip link set lo up\n\
         ip addr add 10.0.0.254/8 dev lo\n\
         ip -6 addr add 2001:db8::fe/32 dev lo\n\
         {exports}\
         cd /tmp\n\
         echo {START_MARKER}\n\
         sh /opt/project/script.sh </dev/null\n\
         rc=$?\n\
         echo {EXIT_MARKER}$rc\n\
         sync\n\
         poweroff -f\n"
    );
    cpio.file("/init", 0o755, init.as_bytes());
    cpio.file("/opt/project/script.sh", 0o755, spec.script.as_bytes());
    Ok(cpio.finish())
}

/// Boots the VM, runs the script, streams its output to stdout and returns the script's exit status.
pub fn run(spec: &VmSpec, scratch: &Path) -> Result<i32> {
    if !Path::new("/usr/bin/qemu-system-x86_64").is_file() {
        bail!("qemu-system-x86_64 missing (install qemu-system-x86: `cargo xtask deps`)");
    }
    let (version, vmlinuz) = find_kernel()?;
    std::fs::create_dir_all(scratch)?;
    let t = Instant::now();
    let image = initramfs(spec, &version, scratch)?;
    let initrd = scratch.join(format!("initramfs-{}.cpio", std::process::id()));
    std::fs::write(&initrd, &image).with_context(|| format!("writing {}", initrd.display()))?;
    eprintln!(
        "==> vm: kernel {version}, initramfs {:.1} MiB built in {:.1?}",
        image.len() as f64 / (1024.0 * 1024.0),
        t.elapsed()
    );

    let mut child = Command::new("qemu-system-x86_64")
        .args(["-accel", "tcg", "-cpu", "max", "-m"])
        .arg(spec.mem_mib.to_string())
        .args([
            "-smp",
            "1",
            "-nic",
            "none",
            "-nographic",
            "-no-reboot",
            "-kernel",
        ])
        .arg(&vmlinuz)
        .arg("-initrd")
        .arg(&initrd)
        .args(["-append", "console=ttyS0 panic=-1 quiet"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting qemu-system-x86_64")?;
    let pid = child.id();
    let stdout = child.stdout.take().context("qemu stdout")?;
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        loop {
            let mut line = Vec::new();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });

    let deadline = Instant::now() + spec.timeout;
    let mut started = false;
    let mut finished = false;
    let mut boot_log = Vec::new();
    let mut status = None;
    let out = std::io::stdout();
    loop {
        let now = Instant::now();
        if now >= deadline {
            eprintln!(
                "==> vm: timeout after {:.0?}; killing qemu (pid {pid})",
                spec.timeout
            );
            let _ = child.kill();
            break;
        }
        match rx.recv_timeout(deadline - now) {
            Ok(raw) => {
                let text = String::from_utf8_lossy(&raw);
                let line = text.trim_end_matches(['\n', '\r']);
                if let Some((before, rc)) = line.split_once(EXIT_MARKER) {
                    if started && !finished && !before.is_empty() {
                        println!("{before}");
                    }
                    status = rc.trim().parse::<i32>().ok();
                    finished = true;
                    continue;
                }
                if line.trim_end().ends_with(START_MARKER) {
                    started = true;
                    continue;
                }
                if finished {
                    continue;
                }
                if started {
                    let mut o = out.lock();
                    let _ = writeln!(o, "{line}");
                    let _ = o.flush();
                } else {
                    boot_log.push(line.to_string());
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = child.wait();
    let _ = reader.join();
    let _ = std::fs::remove_file(&initrd);
    if !started {
        for l in &boot_log {
            eprintln!("vm boot: {l}");
        }
    }
    eprintln!("==> vm: finished in {:.1?}", t.elapsed());
    match status {
        Some(rc) => Ok(rc),
        None => bail!("the VM ended without reporting the script's exit status (timeout or crash)"),
    }
}

/// The target directory cargo uses for this workspace.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => crate::workspace_root().join("target"),
    }
}

/// Builds the project's release binaries (the `cli` package) and returns their paths.
pub fn build_release_bins() -> Result<Vec<PathBuf>> {
    let out = Command::new("cargo")
        .args([
            "build",
            "--release",
            "-p",
            "cli",
            "--bins",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(crate::workspace_root())
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo build")?;
    if !out.status.success() {
        bail!("cargo build --release -p cli failed");
    }
    Ok(executables(&String::from_utf8_lossy(&out.stdout))
        .into_iter()
        .map(|(_, p)| p)
        .collect())
}

/// `(target name, executable)` for every artifact with an executable in cargo's JSON messages.
pub fn executables(json_lines: &str) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for line in json_lines.lines() {
        if !line.contains("\"reason\":\"compiler-artifact\"") {
            continue;
        }
        let Some(exe) = json_str(line, "\"executable\":\"") else {
            continue;
        };
        let name = line
            .split_once("\"target\":{")
            .and_then(|(_, t)| json_str(t, "\"name\":\""))
            .unwrap_or_default();
        out.push((name, PathBuf::from(exe)));
    }
    out
}

fn json_str(line: &str, key: &str) -> Option<String> {
    let start = line.find(key)? + key.len();
    let rest = &line[start..];
    let end = rest.find('"')?;
    Some(rest[..end].to_string())
}

/// `cargo xtask vm-run [--timeout SECS] [--no-build] SCRIPT`.
pub fn vm_run(args: &[String]) -> Result<()> {
    let mut timeout = 600u64;
    let mut build = true;
    let mut script = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--timeout" => {
                timeout = it
                    .next()
                    .context("--timeout needs seconds")?
                    .parse()
                    .context("--timeout SECS")?
            }
            "--no-build" => build = false,
            s if script.is_none() => script = Some(s.to_string()),
            s => bail!("unexpected argument `{s}`"),
        }
    }
    let Some(script) = script else {
        bail!("usage: cargo xtask vm-run [--timeout SECS] [--no-build] SCRIPT");
    };
    crate::deps::install()?;
    let text = std::fs::read_to_string(&script).with_context(|| format!("reading {script}"))?;
    let bins = if build {
        build_release_bins()?
    } else {
        existing_release_bins()
    };
    let spec = VmSpec {
        script: text,
        bins,
        tests: Vec::new(),
        env: ci_env(),
        timeout: Duration::from_secs(timeout),
        mem_mib: 512,
    };
    let rc = run(&spec, &target_dir().join("vm"))?;
    std::process::exit(rc);
}

fn existing_release_bins() -> Vec<PathBuf> {
    ["ipvsadm", "conntrack", "vrrpd", "ctsyncd"]
        .iter()
        .map(|b| target_dir().join("release").join(b))
        .filter(|p| p.is_file())
        .collect()
}

fn ci_env() -> Vec<(String, String)> {
    let mut env = vec![
        ("RUST_BACKTRACE".to_string(), "1".to_string()),
        ("IPVS_VM".to_string(), "1".to_string()),
    ];
    if let Ok(ci) = std::env::var("CI") {
        env.push(("CI".to_string(), ci));
    }
    env
}

/// The test targets that run inside the VM: `(package, test target, source file)`.
const VM_TESTS: &[(&str, &str, &str)] = &[
    ("ipvs-nl", "vm", "ipvs-nl/tests/vm.rs"),
    ("cli", "ipvsadm_golden", "cli/tests/ipvsadm_golden.rs"),
    ("lvs-check", "vm", "lvs-check/tests/vm.rs"),
];

/// `cargo xtask vm-test`: builds the VM test executables (feature `vm-tests`) and the release binaries,
/// runs every test executable inside one VM, fails if any fails.
pub fn vm_test(args: &[String]) -> Result<()> {
    crate::deps::install()?;
    let mut tests = Vec::new();
    for (pkg, target, file) in VM_TESTS {
        if !crate::workspace_root().join(file).is_file() {
            continue;
        }
        let out = Command::new("cargo")
            .args([
                "test",
                "--no-run",
                "--message-format=json-render-diagnostics",
                "-p",
                pkg,
            ])
            .args(["--features", "vm-tests", "--test", target])
            .current_dir(crate::workspace_root())
            .stderr(Stdio::inherit())
            .output()
            .context("running cargo test --no-run")?;
        if !out.status.success() {
            bail!("building the VM tests of {pkg} failed");
        }
        let json = String::from_utf8_lossy(&out.stdout);
        // Only the test target itself: the same build also reports the package's binaries.
        let test_lines: String = json
            .lines()
            .filter(|l| l.contains("\"kind\":[\"test\"]"))
            .map(|l| format!("{l}\n"))
            .collect();
        for (name, exe) in executables(&test_lines) {
            if name == *target {
                tests.push((format!("{pkg}-{target}"), exe));
            }
        }
    }
    let bins = build_release_bins()?;
    let filter: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
    let mut script = String::from("fail=0\n");
    for (name, _) in &tests {
        script.push_str(&format!(
            "echo \"==> vm-test: {name}\"\n/opt/project/tests/{name} --test-threads=1 {} || fail=1\n",
            filter.join(" ")
        ));
    }
    script.push_str("exit $fail\n");
    let spec = VmSpec {
        script,
        bins,
        tests,
        env: ci_env(),
        timeout: Duration::from_secs(420),
        mem_mib: 1024,
    };
    let rc = run(&spec, &target_dir().join("vm"))?;
    if rc != 0 {
        bail!("VM tests failed (exit status {rc})");
    }
    eprintln!("==> vm-test: all passed");
    Ok(())
}

/// `cargo xtask vm-bench`: builds the IPVS bench (`benches/benches/ipvs.rs`) and the release binaries, and
/// runs the bench inside one VM (our ipvsadm vs Debian's, same kernel, same run).
pub fn vm_bench(args: &[String]) -> Result<()> {
    crate::deps::install()?;
    let out = Command::new("cargo")
        .args([
            "bench",
            "--no-run",
            "--message-format=json-render-diagnostics",
            "-p",
            "benches",
            "--bench",
            "ipvs",
        ])
        .current_dir(crate::workspace_root())
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo bench --no-run")?;
    if !out.status.success() {
        bail!("building the IPVS bench failed");
    }
    let json = String::from_utf8_lossy(&out.stdout);
    let lines: String = json
        .lines()
        .filter(|l| l.contains("\"kind\":[\"bench\"]"))
        .map(|l| format!("{l}\n"))
        .collect();
    let bench = executables(&lines)
        .into_iter()
        .find(|(n, _)| n == "ipvs")
        .map(|(_, p)| p)
        .context("no executable for the `ipvs` bench")?;
    let bins = build_release_bins()?;
    let rounds = args.first().cloned().unwrap_or_else(|| "3".to_string());
    let mut env = ci_env();
    env.push(("IPVS_BENCH_ROUNDS".to_string(), rounds));
    let spec = VmSpec {
        script: "/opt/project/tests/ipvs-bench --bench\n".to_string(),
        bins,
        tests: vec![("ipvs-bench".to_string(), bench)],
        env,
        timeout: Duration::from_secs(1800),
        mem_mib: 1024,
    };
    let rc = run(&spec, &target_dir().join("vm"))?;
    if rc != 0 {
        bail!("the IPVS bench failed (exit status {rc})");
    }
    Ok(())
}
