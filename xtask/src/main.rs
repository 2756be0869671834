//! `cargo xtask <task>`: the project's developer tasks.
//!
//! * `ci`: installs every Debian package the tests need, then runs fmt, clippy, doc and the whole test suite
//!   (including the IPVS tests inside a qemu VM). This is the README's test command and what `.ci/run` calls.
//! * `deps`: only the package installation step of `ci`.

mod deps;
mod util;

use anyhow::{Result, bail};

fn main() {
    if let Err(e) = run() {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(task) = args.first() else {
        bail!("usage: cargo xtask <ci|deps>");
    };
    match task.as_str() {
        "ci" => ci(),
        "deps" => deps::install(),
        other => bail!("unknown task `{other}`; tasks: ci, deps"),
    }
}

fn ci() -> Result<()> {
    let started = std::time::Instant::now();
    deps::install()?;
    util::step("cargo fmt --check", &["cargo", "fmt", "--all", "--", "--check"], &[])?;
    util::step(
        "cargo clippy",
        &["cargo", "clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"],
        &[],
    )?;
    util::step(
        "cargo doc",
        &["cargo", "doc", "--workspace", "--no-deps", "--locked"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    util::step(
        "cargo check (fuzz targets)",
        &["cargo", "check", "--manifest-path", "fuzz/Cargo.toml", "--bins"],
        &[("RUSTC_BOOTSTRAP", "1")],
    )?;
    util::step("cargo test", &["cargo", "test", "--workspace", "--locked"], &[])?;
    eprintln!("xtask ci: all steps passed in {:.0?}", started.elapsed());
    Ok(())
}
