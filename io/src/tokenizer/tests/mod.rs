mod bad_inputs;
mod chat;
mod gguf_meta;
mod real_model;
mod tiny;

use std::path::PathBuf;

/// The real model of these tests, from `WAPO_MODEL_DIR` (default: the
/// workspace's `.models`). `None`, after saying so on stderr, when it is not
/// there, unless `WAPO_REQUIRE_MODEL=1` makes its absence a failure.
pub fn real_model_path() -> Option<PathBuf> {
    const FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
    let dir = std::env::var_os("WAPO_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.models")));
    let path = dir.join(FILE);
    if path.is_file() {
        return Some(path);
    }
    let reason = format!("{} not found (set WAPO_MODEL_DIR)", path.display());
    if std::env::var("WAPO_REQUIRE_MODEL").is_ok_and(|v| v == "1") {
        panic!("WAPO_REQUIRE_MODEL=1 but {reason}");
    }
    eprintln!("skipped: {reason}");
    None
}

/// A fresh empty directory under the system's temporary folder.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wapo-io-tokenizer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}
