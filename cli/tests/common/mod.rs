//! What the end-to-end tests share: a tiny config, a scratch directory and
//! readers of a run's records.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Map, Value};

/// The sort task on a 1-layer model: a whole run takes well under a second.
pub const TINY: &str = r#"
progress = false
checkpoint_every = 2
eval_every = 2
[task]
name = "sort"
[task.sort]
len = 3
[model]
channels = 16
layers = 1
heads = 2
mlp = 32
[sft]
batch = 16
max_steps = 6
eval_every = 3
eval_examples = 16
[rl]
steps = 4
prompts = 4
group = 4
epochs = 2
minibatches = 2
lr = 0.001
[eval]
examples = 16
k = 2
batch = 8
"#;

pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("wapo-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("tiny.toml"), TINY).unwrap();
        Scratch(dir)
    }
    pub fn run(&self, name: &str) -> PathBuf {
        self.0.join("runs").join(name)
    }
    pub fn train(&self, name: &str, extra: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wapo"));
        cmd.arg("train")
            .arg("--config")
            .arg(self.0.join("tiny.toml"))
            .arg("--out-dir")
            .arg(self.0.join("runs"))
            .args(["--name", name])
            .args(extra);
        cmd
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn ok(mut cmd: Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{:?} failed:\n{}", cmd, String::from_utf8_lossy(&out.stderr));
    out
}

pub fn records(run: &Path) -> Vec<Map<String, Value>> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| match serde_json::from_str(l).unwrap() {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        })
        .collect()
}

/// Records with the wall-clock timings left out: everything else must
/// repeat bit for bit.
pub fn without_timings(rs: Vec<Map<String, Value>>) -> Vec<Map<String, Value>> {
    rs.into_iter()
        .map(|mut r| {
            r.retain(|k, _| !k.starts_with("time/"));
            r
        })
        .collect()
}

pub fn steps_of(rs: &[Map<String, Value>], phase: &str) -> Vec<u64> {
    rs.iter().filter(|r| r["phase"] == phase).map(|r| r["step"].as_u64().unwrap()).collect()
}
