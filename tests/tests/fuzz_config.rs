//! Fuzzing the TOML config and the flag values of `wapo train`, through
//! the binary (the config lives in the `wapo` binary crate, which has no
//! library target): `wapo train --print-config` with a mutated `--config`
//! file or one flag given an extreme value must exit 0, or 2 with a
//! message; never 101 (a panic) or a signal. The seed is the binary's own
//! documented config, whose comments name each key's flag.
//!
//! The binary is `$WAPO_BIN`, else `wapo` next to this test's `deps/`
//! directory (built by `cargo test --workspace`); without one the test
//! prints `skipped:` and passes, unless `WAPO_REQUIRE_BIN=1`.

#[path = "../fuzz/harness/mod.rs"]
mod harness;

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};

use harness::bytes::{Seed, mutated};
use harness::{Outcome, fuzz, scratch};
use proptest::prelude::*;
use proptest::sample::Index;

fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("WAPO_BIN").map(PathBuf::from).or_else(|| {
        let exe = std::env::current_exe().ok()?;
        Some(exe.parent()?.parent()?.join("wapo"))
    })?;
    if path.is_file() {
        return Some(path);
    }
    let reason = format!("{} not found (build it, or set WAPO_BIN)", path.display());
    assert!(std::env::var("WAPO_REQUIRE_BIN").as_deref() != Ok("1"), "WAPO_REQUIRE_BIN=1 but {reason}");
    eprintln!("skipped: {reason}");
    None
}

static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();

fn bin() -> Option<&'static PathBuf> {
    BIN.get_or_init(binary).as_ref()
}

/// Runs `wapo train --print-config ARGS` in a scratch directory.
fn run(target: &str, args: &[&std::ffi::OsStr]) -> Result<Outcome, String> {
    let Some(bin) = bin() else { return Ok(Outcome::Refused) };
    let out = Command::new(bin)
        .args(["train", "--print-config"])
        .args(args)
        .current_dir(scratch(target))
        .output()
        .map_err(|e| format!("running {}: {e}", bin.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => Ok(Outcome::Accepted),
        Some(2) if stderr.trim().len() > "error:".len() => Ok(Outcome::Refused),
        Some(2) => Err("exit 2 without a message".into()),
        other => Err(format!("exit status {other:?} (101 is a panic, none a signal): {stderr}")),
    }
}

fn check_file(bytes: &[u8]) -> Result<Outcome, String> {
    let file = scratch("config_file").join("fuzz.toml");
    std::fs::write(&file, bytes).map_err(|e| e.to_string())?;
    run("config_file", &["--config".as_ref(), file.as_os_str()])
}

/// `FLAG\0VALUE`.
fn check_flag(bytes: &[u8]) -> Result<Outcome, String> {
    let text = String::from_utf8_lossy(bytes);
    let Some((flag, value)) = text.split_once('\0') else { return Ok(Outcome::Refused) };
    if value.contains('\0') {
        // No command line can carry a NUL.
        return Ok(Outcome::Refused);
    }
    // A value starting with `-` would be read as another flag; `=` keeps it a value.
    run("config_flags", &[format!("--{flag}={value}").as_ref()])
}

fn seed_config() -> Vec<u8> {
    let Some(bin) = bin() else { return b"seed = 0\n".to_vec() };
    let out = Command::new(bin).args(["train", "--print-config"]).output().expect("running the binary");
    assert!(out.status.success(), "--print-config failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Values a TOML key or a flag may be given.
const VALUES: [&str; 20] = [
    "-3",
    "0",
    "-0.0",
    "0.5",
    "1e999",
    "nan",
    "inf",
    "-inf",
    "18446744073709551616",
    "9223372036854775807",
    "1e-400",
    "\"fast\"",
    "\"\"",
    "true",
    "[]",
    "{}",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    "\"\\u0000\"",
    "1_000_000_000_000",
    "0x7fffffffffffffff",
];

/// The `key = value` lines of the seed and the flag named in the comment above each.
fn keys(seed: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = seed.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let flag = lines[..i].last().and_then(|c| c.rsplit_once("(--")).and_then(|(_, f)| f.strip_suffix(')'));
        if line.contains(" = ")
            && let Some(flag) = flag
        {
            out.push((i, flag.to_string()));
        }
    }
    out
}

fn config_inputs(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let text = String::from_utf8_lossy(&seed).into_owned();
    let keys = Arc::new(keys(&text));
    let text = Arc::new(text);
    let boundaries = seed.iter().enumerate().filter(|(_, c)| b"\n=[]\"".contains(c)).map(|(i, _)| i + 1).collect();
    prop_oneof![
        1 => mutated(vec![Seed { bytes: seed, boundaries }]),
        2 => (any::<Index>(), proptest::sample::select(VALUES.to_vec())).prop_map(move |(k, v)| {
            let (line, _) = &keys[k.index(keys.len())];
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            if let Some((key, _)) = lines[*line].split_once(" = ") {
                lines[*line] = format!("{key} = {v}");
            }
            lines.join("\n").into_bytes()
        }),
    ]
}

fn flag_inputs(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let flags: Vec<String> = keys(&String::from_utf8_lossy(&seed)).into_iter().map(|(_, f)| f).collect();
    let value = prop_oneof![3 => proptest::sample::select(VALUES.to_vec()).prop_map(str::to_string), 1 => ".{0,12}"];
    (proptest::sample::select(flags), value).prop_map(|(f, v)| format!("{f}\0{}", v.trim_matches('"')).into_bytes())
}

#[test]
fn the_seed_is_valid() {
    if bin().is_some() {
        assert_eq!(check_file(&seed_config()), Ok(Outcome::Accepted));
        assert!(keys(&String::from_utf8_lossy(&seed_config())).len() > 20);
        harness::drop_scratch("config_file");
    }
}

#[test]
fn fuzz_config_file() {
    if bin().is_some() {
        fuzz("config_file", config_inputs(seed_config()), check_file);
    }
}

#[test]
fn fuzz_config_flags() {
    if bin().is_some() {
        fuzz("config_flags", flag_inputs(seed_config()), check_flag);
    }
}
