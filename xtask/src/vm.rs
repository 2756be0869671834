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
/// The line `/init` prints for a module that did not load, followed by its name: the run fails.
const MODFAIL_MARKER: &str = "__XTASK_VM_MODULE_FAILED_7f3a__ ";
/// The lines the `vm-test` script prints around each test executable: `BEGIN NAME`, `END NAME RC`.
const TEST_BEGIN: &str = "__XTASK_VM_TEST_BEGIN_7f3a__ ";
const TEST_END: &str = "__XTASK_VM_TEST_END_7f3a__ ";

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
    /// More module files `(file name, contents)` for `/init` to load after the IPVS closure (the test of
    /// the module check loads a broken one).
    pub extra_modules: Vec<(String, Vec<u8>)>,
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
    let modules = module_closure(version)?;
    if !modules.iter().any(|m| {
        m.file_name()
            .is_some_and(|f| f.to_string_lossy().starts_with("ip_vs.ko"))
    }) {
        bail!("the module closure of kernel {version} has no ip_vs module");
    }
    for (i, m) in modules.iter().enumerate() {
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
        insmods.push_str(&format!("insmod {dest} || echo {MODFAIL_MARKER}{name}\n"));
    }
    for (name, data) in &spec.extra_modules {
        let dest = format!("/modules/extra-{name}");
        cpio.file(&dest, 0o644, data);
        insmods.push_str(&format!("insmod {dest} || echo {MODFAIL_MARKER}{name}\n"));
    }
    // Loaded means listed in /proc/modules, whatever insmod said.
    insmods.push_str(&format!(
        "grep -q '^ip_vs ' /proc/modules || echo {MODFAIL_MARKER}ip_vs-not-in-/proc/modules\n"
    ));

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

/// What one VM run produced.
#[derive(Debug)]
pub struct Outcome {
    /// The script's exit status.
    pub status: i32,
    /// The script's output lines (console lines between the start and exit markers).
    pub output: Vec<String>,
}

/// Boots the VM, runs the script, streams its output to stdout and returns the script's exit status and
/// output. Fails if the VM did not report the script's exit status (timeout, crash) or if any module of
/// the IPVS closure failed to load: a VM without its modules cannot prove anything.
pub fn run(spec: &VmSpec, scratch: &Path) -> Result<Outcome> {
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
    let mut script_out = Vec::new();
    let mut module_failures = Vec::new();
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
                if let Some((_, module)) = line.split_once(MODFAIL_MARKER) {
                    module_failures.push(module.trim().to_string());
                }
                if let Some((before, rc)) = line.split_once(EXIT_MARKER) {
                    if started && !finished && !before.is_empty() {
                        println!("{before}");
                        script_out.push(before.to_string());
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
                    script_out.push(line.to_string());
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
    if !started || !module_failures.is_empty() {
        for l in &boot_log {
            eprintln!("vm boot: {l}");
        }
    }
    eprintln!("==> vm: finished in {:.1?}", t.elapsed());
    if !module_failures.is_empty() {
        bail!(
            "kernel modules failed to load in the VM: {}",
            module_failures.join(", ")
        );
    }
    match status {
        Some(status) => Ok(Outcome {
            status,
            output: script_out,
        }),
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
    Ok(
        built(&["build", "--release", "-p", "cli", "--bins"], "bin")?
            .into_iter()
            .map(|(_, p)| p)
            .collect(),
    )
}

/// Runs cargo with `args` (a building subcommand) and returns `(target name, executable)` of every
/// executable of `kind` (`bin`, `test`, `bench`) it built.
pub(crate) fn built(args: &[&str], kind: &str) -> Result<Vec<(String, PathBuf)>> {
    let artifacts =
        testkit::cargo_artifacts(args).with_context(|| format!("cargo {}", args.join(" ")))?;
    Ok(artifacts
        .into_iter()
        .filter(|a| a.kind == kind)
        .map(|a| (a.name, a.executable))
        .collect())
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
        extra_modules: Vec::new(),
    };
    let outcome = run(&spec, &target_dir().join("vm"))?;
    std::process::exit(outcome.status);
}

fn existing_release_bins() -> Vec<PathBuf> {
    ["ipvsadm", "conntrack", "vrrpd", "ctsyncd"]
        .iter()
        .map(|b| target_dir().join("release").join(b))
        .filter(|p| p.is_file())
        .collect()
}

/// The environment of every VM run. Strict (`TESTKIT_STRICT=1`) always: the VM exists to provide IPVS and
/// ipvsadm, so a test or bench that finds either missing there must fail, never skip.
pub(crate) fn ci_env() -> Vec<(String, String)> {
    let mut env = vec![
        ("RUST_BACKTRACE".to_string(), "1".to_string()),
        ("IPVS_VM".to_string(), "1".to_string()),
        (
            crate::util::STRICT.0.to_string(),
            crate::util::STRICT.1.to_string(),
        ),
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

/// `cargo xtask vm-test [--only PKG/TARGET]... [FILTER...]`: builds the VM test executables (feature `vm-tests`) and the release
/// binaries, runs every test executable inside one VM, and fails unless every listed test ran and passed:
///
/// * every target of [`VM_TESTS`] must exist and build to one executable (no test executable is an error);
/// * on the host, `EXE --list` (with the same FILTER) counts each executable's tests; none is an error;
/// * in the VM, each executable's libtest summary must show that many passed, none failed or ignored, and
///   its exit status 0 ([`check_results`]); a crash before the summary is a failure too;
/// * any kernel module of the IPVS closure that did not load fails the run ([`run`]).
pub fn vm_test(args: &[String]) -> Result<()> {
    // `--only PKG/TARGET` (repeatable) runs a subset of the VM test targets (by hand; CI runs all).
    let mut only = Vec::new();
    let mut filter_args = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--only" {
            let t = it.next().context("--only needs PKG/TARGET")?;
            if !VM_TESTS.iter().any(|(p, tg, _)| format!("{p}/{tg}") == *t) {
                bail!("--only {t}: not a VM test target (one of {VM_TESTS:?})");
            }
            only.push(t.clone());
        } else {
            filter_args.push(a.clone());
        }
    }
    let args = filter_args.as_slice();
    crate::deps::install()?;
    let mut tests = Vec::new();
    for (pkg, target, file) in VM_TESTS {
        if !only.is_empty() && !only.contains(&format!("{pkg}/{target}")) {
            continue;
        }
        if !crate::workspace_root().join(file).is_file() {
            bail!("VM test target {pkg}/{target}: {file} is missing");
        }
        // Only the test target itself: the same build also reports the package's binaries.
        let exes: Vec<PathBuf> = built(
            &[
                "test",
                "--no-run",
                "-p",
                pkg,
                "--features",
                "vm-tests",
                "--test",
                target,
            ],
            "test",
        )?
        .into_iter()
        .filter(|(name, _)| name == target)
        .map(|(_, exe)| exe)
        .collect();
        let [exe] = exes.as_slice() else {
            bail!(
                "building {pkg}/{target} gave {} test executables, not one",
                exes.len()
            );
        };
        tests.push((format!("{pkg}-{target}"), exe.clone()));
    }
    if tests.is_empty() {
        bail!("no VM test executable to run");
    }
    let mut listed = Vec::new();
    for (name, exe) in &tests {
        let n = list_tests(exe, args)?;
        if n == 0 {
            bail!("{name}: `--list` shows no test (filter {args:?}): the VM would run nothing");
        }
        eprintln!("==> vm-test: {name}: {n} tests listed on the host");
        listed.push((name.clone(), n));
    }
    let bins = build_release_bins()?;
    let filter: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
    let mut script = String::new();
    for (name, _) in &tests {
        script.push_str(&format!(
            "echo {TEST_BEGIN}{name}\n/opt/project/tests/{name} --test-threads=1 {}\necho {TEST_END}{name} $?\n",
            filter.join(" ")
        ));
    }
    let spec = VmSpec {
        script,
        bins,
        tests,
        env: ci_env(),
        timeout: Duration::from_secs(900),
        mem_mib: 1024,
        extra_modules: Vec::new(),
    };
    let outcome = run(&spec, &target_dir().join("vm"))?;
    let results = parse_results(&outcome.output);
    check_results(&listed, &results)?;
    if outcome.status != 0 {
        bail!("the VM test script exited with {}", outcome.status);
    }
    let total: usize = listed.iter().map(|(_, n)| n).sum();
    eprintln!(
        "==> vm-test: all {total} tests of {} executables passed",
        listed.len()
    );
    Ok(())
}

/// How many tests a libtest executable lists (`--list --format terse`, with the given filter arguments).
fn list_tests(exe: &Path, filter: &[String]) -> Result<usize> {
    let out = Command::new(exe)
        .args(["--list", "--format", "terse"])
        .args(filter)
        .output()
        .with_context(|| format!("running {} --list", exe.display()))?;
    if !out.status.success() {
        bail!(
            "{} --list failed: {}",
            exe.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(count_listed(&String::from_utf8_lossy(&out.stdout)))
}

/// The number of `NAME: test` lines in libtest's `--list --format terse` output.
fn count_listed(list: &str) -> usize {
    list.lines().filter(|l| l.ends_with(": test")).count()
}

/// One test executable's run in the VM, read from the script's output.
#[derive(Debug, Default, PartialEq, Eq)]
struct ExeResult {
    /// `(passed, failed, ignored)` of each libtest `test result:` line seen.
    summaries: Vec<(usize, usize, usize)>,
    /// The exit status printed after it, if it got that far.
    status: Option<i32>,
}

/// Reads the vm-test script's output: the begin/end markers around each executable and the libtest
/// summary lines between them.
fn parse_results(lines: &[String]) -> std::collections::BTreeMap<String, ExeResult> {
    let mut out = std::collections::BTreeMap::<String, ExeResult>::new();
    let mut current: Option<String> = None;
    for line in lines {
        if let Some((_, name)) = line.split_once(TEST_BEGIN) {
            let name = name.trim().to_string();
            out.entry(name.clone()).or_default();
            current = Some(name);
        } else if let Some((_, rest)) = line.split_once(TEST_END) {
            let mut w = rest.split_whitespace();
            if let (Some(name), Some(rc)) = (w.next(), w.next())
                && let Some(r) = out.get_mut(name)
            {
                r.status = rc.parse().ok();
            }
            current = None;
        } else if let Some(name) = &current
            && let Some(summary) = libtest_summary(line)
            && let Some(r) = out.get_mut(name)
        {
            r.summaries.push(summary);
        }
    }
    out
}

/// `(passed, failed, ignored)` from libtest's `test result: ok. 3 passed; 0 failed; 1 ignored; ...`.
fn libtest_summary(line: &str) -> Option<(usize, usize, usize)> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let (_, counts) = rest.split_once(". ")?;
    let mut passed = None;
    let mut failed = None;
    let mut ignored = None;
    for part in counts.split(';') {
        let mut w = part.split_whitespace();
        let (Some(n), Some(what)) = (w.next(), w.next()) else {
            continue;
        };
        let Ok(n) = n.parse::<usize>() else {
            continue; // "finished in 0.01s"
        };
        match what {
            "passed" => passed = Some(n),
            "failed" => failed = Some(n),
            "ignored" => ignored = Some(n),
            _ => {}
        }
    }
    Some((passed?, failed?, ignored?))
}

/// Every executable listed on the host ran in the VM, once, with exactly its listed tests passed, none
/// failed or ignored, and exit status 0.
fn check_results(
    listed: &[(String, usize)],
    results: &std::collections::BTreeMap<String, ExeResult>,
) -> Result<()> {
    let mut problems = Vec::new();
    for (name, want) in listed {
        let Some(r) = results.get(name) else {
            problems.push(format!("{name}: did not run"));
            continue;
        };
        match r.summaries.as_slice() {
            [] => problems.push(format!(
                "{name}: no libtest summary (crashed or killed before the end)"
            )),
            [(passed, failed, ignored)] => {
                if passed != want {
                    problems.push(format!(
                        "{name}: {passed} tests passed, the host build lists {want}"
                    ));
                }
                if *failed != 0 {
                    problems.push(format!("{name}: {failed} tests failed"));
                }
                if *ignored != 0 {
                    problems.push(format!("{name}: {ignored} tests ignored (not run)"));
                }
            }
            many => problems.push(format!("{name}: {} libtest summaries", many.len())),
        }
        match r.status {
            Some(0) => {}
            Some(rc) => problems.push(format!("{name}: exit status {rc}")),
            None => problems.push(format!("{name}: no exit status")),
        }
    }
    if listed.is_empty() {
        problems.push("no test executable ran".to_string());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!("VM tests failed: {}", problems.join("; "))
    }
}

/// `cargo xtask vm-bench`: builds the IPVS bench (`benches/benches/ipvs.rs`) and the release binaries, and
/// runs the bench inside one VM (our ipvsadm vs Debian's, same kernel, same run).
pub fn vm_bench(args: &[String]) -> Result<()> {
    crate::deps::install()?;
    let bench = built(
        &["bench", "--no-run", "-p", "benches", "--bench", "ipvs"],
        "bench",
    )?
    .into_iter()
    .find(|(n, _)| n == "ipvs")
    .map(|(_, p)| p)
    .context("no executable for the `ipvs` bench")?;
    let bins = build_release_bins()?;
    let rounds = args.first().cloned().unwrap_or_else(|| "3".to_string());
    let mut env = ci_env();
    env.push(("IPVS_BENCH_ROUNDS".to_string(), rounds));
    // The VM has no git; the bench prints the commit it measured.
    let commit = Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=7"])
        .current_dir(crate::workspace_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    env.push(("BENCH_COMMIT".to_string(), commit));
    // The host's load average, which the VM's own figure cannot show.
    env.push((
        "BENCH_HOST_LOAD".to_string(),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default(),
    ));
    let spec = VmSpec {
        script: "/opt/project/tests/ipvs-bench --bench\n".to_string(),
        bins,
        tests: vec![("ipvs-bench".to_string(), bench)],
        env,
        timeout: Duration::from_secs(1800),
        mem_mib: 1024,
        extra_modules: Vec::new(),
    };
    let rc = run(&spec, &target_dir().join("vm"))?.status;
    if rc != 0 {
        bail!("the IPVS bench failed (exit status {rc})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(str::to_string).collect()
    }

    fn output(body_a: &str, rc_a: i32) -> Vec<String> {
        lines(&format!(
            "{TEST_BEGIN}ipvs-nl-vm\nrunning 3 tests\n{body_a}\n{TEST_END}ipvs-nl-vm {rc_a}\n\
             {TEST_BEGIN}cli-ipvsadm_golden\nrunning 2 tests\n\
             test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.2s\n\
             {TEST_END}cli-ipvsadm_golden 0"
        ))
    }

    fn listed() -> Vec<(String, usize)> {
        vec![
            ("ipvs-nl-vm".to_string(), 3),
            ("cli-ipvsadm_golden".to_string(), 2),
        ]
    }

    #[test]
    fn all_listed_tests_passing_is_accepted() {
        let out = output(
            "test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 9s",
            0,
        );
        check_results(&listed(), &parse_results(&out)).unwrap();
    }

    #[test]
    fn fewer_tests_than_listed_fail() {
        let out = output(
            "test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out; finished in 9s",
            0,
        );
        let e = check_results(&listed(), &parse_results(&out)).unwrap_err();
        assert!(
            e.to_string()
                .contains("ipvs-nl-vm: 2 tests passed, the host build lists 3"),
            "{e}"
        );
    }

    #[test]
    fn ignored_failed_crashed_and_missing_executables_fail() {
        let ignored = output(
            "test result: ok. 2 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 9s",
            0,
        );
        let e = check_results(&listed(), &parse_results(&ignored)).unwrap_err();
        assert!(e.to_string().contains("1 tests ignored"), "{e}");

        let failed = output(
            "test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 9s",
            101,
        );
        let e = check_results(&listed(), &parse_results(&failed)).unwrap_err();
        assert!(e.to_string().contains("1 tests failed"), "{e}");
        assert!(e.to_string().contains("exit status 101"), "{e}");

        // Killed mid-run: no summary line.
        let crashed = output("test a ... ok", 139);
        let e = check_results(&listed(), &parse_results(&crashed)).unwrap_err();
        assert!(e.to_string().contains("no libtest summary"), "{e}");

        // One executable never started (its markers are missing).
        let only_b: Vec<String> = output("", 0).into_iter().skip(4).collect();
        let e = check_results(&listed(), &parse_results(&only_b)).unwrap_err();
        assert!(e.to_string().contains("ipvs-nl-vm: did not run"), "{e}");

        // Nothing listed at all.
        let e = check_results(&[], &parse_results(&[])).unwrap_err();
        assert!(e.to_string().contains("no test executable ran"), "{e}");
    }

    /// A real VM boot with a broken module added to the closure: the run fails and names that module (and
    /// only it: the IPVS closure itself loaded), although the script succeeded.
    #[test]
    fn a_module_that_does_not_load_fails_the_run() {
        let have = Path::new("/usr/bin/qemu-system-x86_64").is_file() && find_kernel().is_ok();
        if !testkit::require(
            "qemu-system-x86_64 and Debian's kernel with ip_vs (`cargo xtask deps`)",
            have,
        ) {
            return;
        }
        let spec = VmSpec {
            script: "echo script-ran\nexit 0\n".to_string(),
            timeout: Duration::from_secs(300),
            mem_mib: 256,
            extra_modules: vec![("broken.ko".to_string(), b"not an ELF module".to_vec())],
            ..VmSpec::default()
        };
        let scratch = std::env::temp_dir().join(format!("xtask-vm-modtest-{}", std::process::id()));
        let e = run(&spec, &scratch).unwrap_err().to_string();
        let _ = std::fs::remove_dir_all(&scratch);
        assert_eq!(e, "kernel modules failed to load in the VM: broken.ko");
    }

    #[test]
    fn libtest_lines() {
        assert_eq!(
            libtest_summary(
                "test result: ok. 12 passed; 0 failed; 3 ignored; 0 measured; 0 filtered out; finished in 0.01s"
            ),
            Some((12, 0, 3))
        );
        assert_eq!(libtest_summary("test foo ... ok"), None);
        assert_eq!(
            count_listed("a::b: test\nc: test\nd: bench\n\n2 tests, 1 benchmarks\n"),
            2
        );
    }
}
