//! Tune conntrack sysctls, all or nothing.
//!
//! ```text
//! cargo run -p examples --example ctnl_tune                      # list every knob and whether it is writable
//! cargo run -p examples --example ctnl_tune -- --check nf_conntrack_udp_timeout=60 nf_conntrack_acct=1
//! cargo run -p examples --example ctnl_tune -- nf_conntrack_udp_timeout=60 nf_conntrack_acct=1
//! ```
//!
//! With `NAME=VALUE` arguments it reads every knob, overlays the new values, validates the whole change
//! (ranges, cross-knob rules, knobs that are read-only in this network namespace) and only then writes;
//! if the kernel refuses one write, the knobs already written are restored. `--check` stops after the
//! validation. Try it in a throwaway namespace: `ip netns add t; ip netns exec t cargo run ...`.

use ctnl::sysctl::{Access, Knob, SysctlFs};
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ctnl_tune: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut check_only = false;
    let mut assignments = Vec::new();
    for arg in std::env::args().skip(1) {
        if arg == "--check" {
            check_only = true;
            continue;
        }
        let (name, value) = arg
            .split_once('=')
            .ok_or_else(|| format!("expected NAME=VALUE, got {arg:?}"))?;
        let knob: Knob = name.parse()?;
        assignments.push((knob, knob.parse_value(value)?));
    }

    let fs = SysctlFs::new()?;
    let current = fs.read_all()?;
    if assignments.is_empty() {
        let ns = if fs.is_initial_netns() {
            "initial"
        } else {
            "child"
        };
        let mut out = format!("# conntrack sysctls ({ns} network namespace)\n");
        for &knob in Knob::ALL {
            let Some(value) = current.get_raw(knob) else {
                continue;
            };
            let access = match fs.access(knob) {
                Access::Writable => "rw",
                Access::ReadOnlyInChildNamespace => "ro (global; initial namespace only)",
                _ => "ro",
            };
            out.push_str(&format!("{:<45} {:>12}  {access}\n", knob.name(), value));
        }
        // A closed pipe (`| head`) is not an error worth reporting.
        return match std::io::stdout().write_all(out.as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
            _ => Ok(()),
        };
    }

    let mut wanted = current.clone();
    for (knob, value) in assignments {
        wanted.set_raw(knob, Some(value))?;
    }
    let plan = fs.plan_from(&current, &wanted)?;
    for c in &plan.changes {
        println!("{}: {} -> {}", c.knob, c.old, c.new);
    }
    if check_only {
        println!(
            "valid: {} change(s), nothing written (--check)",
            plan.changes.len()
        );
        return Ok(());
    }
    let applied = fs.apply_plan(&plan)?;
    println!("applied {} change(s)", applied.changed.len());
    Ok(())
}
