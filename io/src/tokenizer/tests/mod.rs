mod bad_inputs;
mod chat;
mod real_model;
mod tiny;

use std::path::PathBuf;

pub use crate::testing::real_model_path;

/// A fresh empty directory under the system's temporary folder.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wapo-io-tokenizer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}
