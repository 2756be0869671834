//! `api-check`: what the library crates show in their documented public API, read from rustdoc's JSON
//! output (unstable, reached with `RUSTC_BOOTSTRAP=1` as the fuzz build is): no framing, RNG or sequence
//! helper (`Out`, `Msg`, `start_msg`, `SplitMix64`, `before`, ...), and no type of a dependency at 0.x
//! (`netlink_sys::Socket`, `netlink_packet_netfilter`'s enums, ...) in any public signature, trait impl
//! or bound. The README's API conventions ("Privacy") say why; this pins them for every crate.
//!
//! `cargo xtask api-check [CRATE...]` (default: every library crate). Blanket impls (`impl<T> X for T`,
//! which rustdoc lists on every type) and auto-trait impls are not the crate's API and are skipped. The
//! JSON is written under `target/api-check`, so the ordinary build cache is left alone.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// The library crates whose public API is checked (package names).
const LIBRARIES: &[&str] = &["ctnl", "ipvs-nl", "vrrp-proto", "ctsync-proto", "lvs-check"];

/// Names that must not be public items of any library: the crates' framing helpers (netlink message and
/// attribute writers and readers), RNG and sequence arithmetic (issue 10).
const PRIVATE_NAMES: &[&str] = &[
    "Out",
    "LenCounter",
    "SliceOut",
    "VecOut",
    "Msg",
    "Msgs",
    "Attr",
    "Attrs",
    "Extras",
    "start_msg",
    "finish_msg",
    "align4",
    "SplitMix64",
    "before",
    "after",
];

/// Name endings of the public types that will grow (README, "Growth"): enums, and structs with public
/// fields, so named must be `#[non_exhaustive]` (a dependent cannot match them exhaustively or build them
/// with a struct literal, so adding a variant or field is not a breaking change).
const GROWING: &[&str] = &[
    "State", "Reason", "Stats", "Counters", "Config", "Options", "Error", "Event", "Action",
    "Command",
];

/// Whether a public field with this name holds flags or an address family: then it must be typed
/// (bitflags, `Family`), never a bare integer (README, "Flags" and "Families").
fn flags_or_family(field: &str) -> bool {
    matches!(field, "flags" | "status" | "family" | "af")
        || field.ends_with("_flags")
        || field.ends_with("_family")
}

/// A bare integer type, alone or in an `Option`.
fn bare_integer(ty: &Value) -> bool {
    let int = |t: &Value| {
        t["primitive"]
            .as_str()
            .is_some_and(|p| p.starts_with('u') || p.starts_with('i'))
    };
    int(ty)
        || (ty["resolved_path"]["path"].as_str() == Some("Option")
            && ty["resolved_path"]["args"]["angle_bracketed"]["args"]
                .as_array()
                .is_some_and(|a| a.len() == 1 && int(&a[0]["type"])))
}

/// Runs the task: `args` are package names, none for [`LIBRARIES`].
pub fn run(args: &[String]) -> Result<()> {
    let crates: Vec<&str> = if args.is_empty() {
        LIBRARIES.to_vec()
    } else {
        args.iter().map(String::as_str).collect()
    };
    let zero = zero_x_crates()?;
    let target = crate::workspace_root().join("target").join("api-check");
    // One `cargo doc` for every crate (cargo runs them in parallel and caches the dependencies' checks);
    // `--no-deps` so the JSON flags reach only the checked crates.
    let mut cmd = Command::new("cargo");
    cmd.args([
        "doc",
        "-q",
        "--no-deps",
        "--lib",
        "--all-features",
        "--locked",
    ]);
    for name in &crates {
        cmd.args(["-p", name]);
    }
    eprintln!("==> api-check: rustdoc JSON of {}", crates.join(", "));
    let status = cmd
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTDOCFLAGS", "-Z unstable-options --output-format json")
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .context("cannot start cargo doc")?;
    if !status.success() {
        bail!("cargo doc (rustdoc JSON) failed ({status})");
    }
    let mut problems = Vec::new();
    for name in crates {
        let path = target
            .join("doc")
            .join(format!("{}.json", name.replace('-', "_")));
        let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
        let doc: Value =
            serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
        let found = check(&doc, &zero).with_context(|| format!("{}", path.display()))?;
        eprintln!(
            "==> api-check {name}: {}",
            if found.is_empty() {
                "clean".to_string()
            } else {
                format!("{} problems", found.len())
            }
        );
        problems.extend(found.into_iter().map(|p| format!("{name}: {p}")));
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("  {p}");
        }
        bail!("{} problems in the public APIs (above)", problems.len());
    }
    Ok(())
}

/// The library names (as Rust spells them) of the dependencies at version 0.x, from `cargo metadata`.
fn zero_x_crates() -> Result<BTreeSet<String>> {
    let out = Command::new("cargo")
        .args(["metadata", "--format-version", "1", "--locked"])
        .output()
        .context("cannot start cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: Value = serde_json::from_slice(&out.stdout).context("cargo metadata output")?;
    let members: BTreeSet<&str> = meta["workspace_members"]
        .as_array()
        .context("workspace_members")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut zero = BTreeSet::new();
    for p in meta["packages"].as_array().context("packages")? {
        let id = p["id"].as_str().unwrap_or("");
        let version = p["version"].as_str().unwrap_or("");
        if members.contains(id) || !version.starts_with("0.") {
            continue;
        }
        if let Some(name) = p["name"].as_str() {
            zero.insert(name.replace('-', "_"));
        }
    }
    Ok(zero)
}

/// The problems in one crate's rustdoc JSON: public items named like a private helper, and items whose
/// signature (or trait impl, or bound) names a type or trait of a crate in `zero`. An error when the JSON
/// has no item or no resolved path at all: a rustdoc format this check does not read would otherwise pass.
fn check(doc: &Value, zero: &BTreeSet<String>) -> Result<Vec<String>> {
    let empty = serde_json::Map::new();
    let index = doc["index"].as_object().unwrap_or(&empty);
    let paths = doc["paths"].as_object().unwrap_or(&empty);
    let crates = doc["external_crates"].as_object().unwrap_or(&empty);
    let crate_of = |id: &Value| -> Option<String> {
        let key = match id {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => return None,
        };
        let summary = paths.get(&key)?;
        let c = summary["crate_id"].as_u64()?;
        if c == 0 {
            return None;
        }
        crates.get(&c.to_string())?["name"]
            .as_str()
            .map(str::to_string)
    };
    let mut found = BTreeMap::<String, BTreeSet<String>>::new();
    let mut resolved = 0usize;
    for item in index.values() {
        if item["crate_id"].as_u64() != Some(0) {
            continue;
        }
        let name = item["name"].as_str().unwrap_or("(impl)").to_string();
        if let Some(impl_) = item["inner"].get("impl")
            && (!impl_["blanket_impl"].is_null() || impl_["is_synthetic"].as_bool() == Some(true))
        {
            continue;
        }
        // Fields and variants are data, not helpers (`Stats::before` counts late messages).
        let data = ["struct_field", "variant"]
            .iter()
            .any(|k| item["inner"].get(k).is_some());
        if item["visibility"].as_str() == Some("public")
            && !data
            && PRIVATE_NAMES.contains(&name.as_str())
        {
            found
                .entry(format!("public item `{name}` (a private helper's name)"))
                .or_default();
        }
        let public = item["visibility"].as_str() == Some("public");
        // A growing type without `#[non_exhaustive]` (structs whose fields are all private can neither be
        // built nor destructured by a dependent, so they may grow freely).
        let constructible = match &item["inner"] {
            i if i.get("enum").is_some() => true,
            i => match &i["struct"]["kind"] {
                Value::Object(k) if k.contains_key("plain") => k["plain"]["fields"]
                    .as_array()
                    .is_some_and(|f| !f.is_empty()),
                Value::Object(k) if k.contains_key("tuple") => k["tuple"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|x| !x.is_null())),
                _ => false,
            },
        };
        let exhaustive = !item["attrs"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x.to_string().contains("non_exhaustive")));
        if public && constructible && exhaustive && GROWING.iter().any(|g| name.ends_with(g)) {
            found
                .entry(format!(
                    "public type `{name}` will grow and is not #[non_exhaustive]"
                ))
                .or_default();
        }
        // Flags and families as bare integers (enum variants' fields have the default visibility).
        if let Some(ty) = item["inner"].get("struct_field")
            && item["visibility"].as_str() != Some("crate")
            && flags_or_family(&name)
            && bare_integer(ty)
        {
            found
                .entry(format!(
                    "public field `{name}` is a bare integer (flags and families are typed)"
                ))
                .or_default();
        }
        let mut refs = Vec::new();
        // A re-export (`pub use netlink_sys::Socket;`) shows the other crate's item as ours.
        if let Some(use_) = item["inner"].get("use")
            && item["visibility"].as_str() == Some("public")
        {
            refs.push((
                use_["source"].as_str().unwrap_or("?").to_string(),
                &use_["id"],
            ));
        }
        referenced(&item["inner"], &mut refs);
        resolved += refs.len();
        for (path, id) in refs {
            if let Some(c) = crate_of(id)
                && zero.contains(&c)
            {
                found
                    .entry(format!("`{path}` of `{c}` (0.x) in a public signature"))
                    .or_default()
                    .insert(name.clone());
            }
        }
    }
    if index.is_empty() || resolved == 0 {
        bail!(
            "no item or no resolved path in the rustdoc JSON (format_version {}): format not understood",
            doc["format_version"]
        );
    }
    Ok(found
        .into_iter()
        .map(|(what, at)| {
            if at.is_empty() {
                what
            } else {
                format!("{what}: {}", at.into_iter().collect::<Vec<_>>().join(", "))
            }
        })
        .collect())
}

/// Every path rustdoc resolved inside `v` (types, traits of impls and bounds): objects with an `id` and
/// `args`, named by `path` (or `name` in older formats).
fn referenced<'a>(v: &'a Value, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(m) => {
            if let (Some(id), true) = (m.get("id"), m.contains_key("args")) {
                let path = m
                    .get("path")
                    .or_else(|| m.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                out.push((path.to_string(), id));
            }
            for x in m.values() {
                referenced(x, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                referenced(x, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rustdoc JSON skeleton: crate 0 with a function taking `netlink_sys::Socket`, a re-export of it,
    /// a blanket impl naming a 0.x trait, a public helper named `start_msg` and a field named `before`;
    /// growing types with and without `#[non_exhaustive]` (and one whose fields are all private); a
    /// status as a bare `Option<u32>` and a typed family.
    #[test]
    fn finds_zero_x_types_and_helper_names_and_skips_blanket_impls() {
        let doc = serde_json::json!({
            "index": {
                "1": {"crate_id": 0, "name": "wrap", "visibility": "public", "inner": {"function": {
                    "sig": {"inputs": [["s", {"resolved_path": {"path": "Socket", "id": 10, "args": null}}]]}}}},
                "2": {"crate_id": 0, "name": null, "visibility": "default", "inner": {"impl": {
                    "blanket_impl": {"generic": "T"}, "is_synthetic": false,
                    "trait": {"path": "Helper", "id": 11, "args": null}}}},
                "3": {"crate_id": 0, "name": "start_msg", "visibility": "public", "inner": {"function": {}}},
                "6": {"crate_id": 0, "name": "Socket", "visibility": "public", "inner": {"use": {
                    "source": "netlink_sys::Socket", "name": "Socket", "id": 10, "is_glob": false}}},
                "5": {"crate_id": 0, "name": "before", "visibility": "public", "inner": {"struct_field": {"primitive": "u64"}}},
                "7": {"crate_id": 0, "name": "State", "visibility": "public", "attrs": [], "inner": {"enum": {"variants": []}}},
                "8": {"crate_id": 0, "name": "Stats", "visibility": "public", "attrs": ["non_exhaustive"], "inner": {"struct": {
                    "kind": {"plain": {"fields": [9], "has_stripped_fields": false}}}}},
                "9": {"crate_id": 0, "name": "status", "visibility": "public", "inner": {"struct_field": {"resolved_path": {
                    "path": "Option", "id": 13, "args": {"angle_bracketed": {"args": [{"type": {"primitive": "u32"}}]}}}}}},
                "10": {"crate_id": 0, "name": "family", "visibility": "public", "inner": {"struct_field": {"resolved_path": {
                    "path": "Family", "id": 14, "args": null}}}},
                "11": {"crate_id": 0, "name": "Driver", "visibility": "public", "attrs": [], "inner": {"struct": {
                    "kind": {"plain": {"fields": [], "has_stripped_fields": true}}}}},
                "12": {"crate_id": 0, "name": "HttpError", "visibility": "public", "attrs": [], "inner": {"enum": {"variants": []}}},
                "4": {"crate_id": 0, "name": "fine", "visibility": "public", "inner": {"function": {
                    "sig": {"inputs": [["v", {"resolved_path": {"path": "Vec", "id": 12, "args": null}}]]}}}}
            },
            "paths": {
                "10": {"crate_id": 5, "path": ["netlink_sys", "Socket"]},
                "11": {"crate_id": 6, "path": ["zerocopy", "Helper"]},
                "12": {"crate_id": 7, "path": ["alloc", "vec", "Vec"]}
            },
            "external_crates": {"5": {"name": "netlink_sys"}, "6": {"name": "zerocopy"}, "7": {"name": "alloc"}}
        });
        let zero: BTreeSet<String> = ["netlink_sys", "zerocopy"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let found = check(&doc, &zero).expect("a readable fragment");
        assert_eq!(
            found,
            vec![
                "`Socket` of `netlink_sys` (0.x) in a public signature: wrap".to_string(),
                "`netlink_sys::Socket` of `netlink_sys` (0.x) in a public signature: Socket"
                    .to_string(),
                "public field `status` is a bare integer (flags and families are typed)"
                    .to_string(),
                "public item `start_msg` (a private helper's name)".to_string(),
                "public type `HttpError` will grow and is not #[non_exhaustive]".to_string(),
                "public type `State` will grow and is not #[non_exhaustive]".to_string(),
            ]
        );
    }

    /// A JSON whose items name no path the check can read (another format) is an error, not a pass.
    #[test]
    fn an_unreadable_format_fails() {
        let zero = BTreeSet::new();
        let empty = serde_json::json!({"format_version": 999, "index": {}, "paths": {}});
        assert!(check(&empty, &zero).is_err());
        let other = serde_json::json!({"format_version": 999, "index": {
            "1": {"crate_id": 0, "name": "wrap", "visibility": "public", "inner": {"function": {
                "sig": {"inputs": [["s", {"type_path": {"name": "Socket", "target": 10}}]]}}}}
        }});
        assert!(check(&other, &zero).is_err());
    }
}
