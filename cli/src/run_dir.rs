//! `runs/<name>/`: the resolved config (`config.toml`), one JSON record per
//! step (`metrics.jsonl`), checkpoints (`checkpoints/`) and plots (`plots/`).
//!
//! A metrics record is a flat JSON object: `phase` (`sft`, `rl` or `eval`),
//! `step` (the SFT step for `sft`, the RL step otherwise) and the namespaced
//! metrics of that step. NaN and infinities are written as `null`.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use wapo_core::rl::Metrics;

use crate::error::{CliError, Result};

pub const CONFIG_FILE: &str = "config.toml";
pub const METRICS_FILE: &str = "metrics.jsonl";
/// The checkpoint written when SFT ends; RL and `wapo compare` start from it.
pub const SFT_CHECKPOINT: &str = "sft.safetensors";
/// Held by the run writing the directory; holds its process id.
pub const LOCK_FILE: &str = "run.lock";

/// One line of `metrics.jsonl`.
pub type Record = Map<String, Value>;

#[derive(Clone, Debug)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunDir { root: root.into() }
    }

    /// Creates the directory tree (idempotent).
    pub fn create(&self) -> Result<()> {
        for dir in [self.root.clone(), self.checkpoints(), self.plots()] {
            fs::create_dir_all(&dir).map_err(CliError::io(&dir))?;
        }
        Ok(())
    }

    pub fn config(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }
    pub fn metrics(&self) -> PathBuf {
        self.root.join(METRICS_FILE)
    }
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }
    pub fn plots(&self) -> PathBuf {
        self.root.join("plots")
    }
    pub fn sft_checkpoint(&self) -> PathBuf {
        self.checkpoints().join(SFT_CHECKPOINT)
    }
    pub fn step_checkpoint(&self, step: u64) -> PathBuf {
        self.checkpoints().join(format!("step-{step:06}.safetensors"))
    }

    pub fn lock(&self) -> PathBuf {
        self.root.join(LOCK_FILE)
    }

    /// The RL checkpoint of the highest step, if any. Only complete files
    /// count: an interrupted save leaves a hidden temp file, never a
    /// `step-*.safetensors`.
    pub fn latest_step_checkpoint(&self) -> Result<Option<(u64, PathBuf)>> {
        Ok(self.step_checkpoints()?.into_iter().next())
    }

    /// Every RL checkpoint, the highest step first.
    pub fn step_checkpoints(&self) -> Result<Vec<(u64, PathBuf)>> {
        let dir = self.checkpoints();
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let mut all: Vec<(u64, PathBuf)> = Vec::new();
        for entry in fs::read_dir(&dir).map_err(CliError::io(&dir))? {
            let path = entry.map_err(CliError::io(&dir))?.path();
            let Some(step) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("step-")?.strip_suffix(".safetensors"))
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            all.push((step, path));
        }
        all.sort_by_key(|(step, _)| std::cmp::Reverse(*step));
        Ok(all)
    }

    pub fn write_config(&self, toml: &str) -> Result<()> {
        write_atomic(&self.config(), toml.as_bytes())
    }
}

/// The lock of a run directory: taken by [`RunLock::acquire`], released when
/// dropped (also on an error return). A lock left by a killed run names a
/// process that no longer exists and is taken over.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
}

impl RunLock {
    /// Takes `run`'s lock; returns it and, when a stale lock was taken over,
    /// the process id that had left it.
    pub fn acquire(run: &RunDir) -> Result<(RunLock, Option<u32>)> {
        fs::create_dir_all(&run.root).map_err(CliError::io(&run.root))?;
        let path = run.lock();
        // The pid goes into a temp file that is then hard-linked into place:
        // the link either creates the lock whole, contents included, or
        // fails because another run holds it.
        let tmp = run.root.join(format!(".{LOCK_FILE}.tmp-{}", std::process::id()));
        fs::write(&tmp, format!("{}\n", std::process::id())).map_err(CliError::io(&tmp))?;
        let mut taken_over = None;
        let result = loop {
            match fs::hard_link(&tmp, &path) {
                Ok(()) => break Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => break Err(CliError::Io { path: path.clone(), source: e }),
            }
            let holder = fs::read_to_string(&path).ok().and_then(|t| t.trim().parse::<u32>().ok());
            match holder {
                Some(pid) if process_alive(pid) => {
                    break Err(CliError::Locked {
                        path: path.clone(),
                        reason: format!(
                            "another run (process {pid}) is writing to {}; wait for it to end or pick another --name \
                             (if no such run is active, delete this lock file)",
                            run.root.display()
                        ),
                    });
                }
                Some(pid) if taken_over != Some(pid) => {
                    taken_over = Some(pid);
                    match fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => break Err(CliError::Io { path: path.clone(), source: e }),
                    }
                }
                _ => {
                    break Err(CliError::Locked {
                        path: path.clone(),
                        reason: "unreadable lock file; if no run is writing to this directory, delete it".into(),
                    });
                }
            }
        };
        let _ = fs::remove_file(&tmp);
        result.map(|()| (RunLock { path }, taken_over))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Whether process `pid` is running (a zombie, killed but not yet reaped,
/// is not).
fn process_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    let proc = Path::new("/proc");
    if proc.is_dir() {
        return match fs::read_to_string(proc.join(pid.to_string()).join("stat")) {
            // The state letter follows the parenthesized command name.
            Ok(stat) => stat.rsplit_once(')').is_none_or(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
            Err(_) => false,
        };
    }
    if cfg!(unix) {
        return std::process::Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    }
    // No portable check: keep the lock, and the error says how to clear it.
    true
}

/// Writes `data` to `path` so that a reader sees the old or the new
/// contents, never a mix: temp file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    wapo_io::atomic::write_bytes(path, data).map_err(CliError::from)
}

/// Appends records to `metrics.jsonl`, one line each, flushed per record so
/// that a killed run keeps every step it finished.
pub struct MetricsLog {
    path: PathBuf,
    file: File,
}

impl MetricsLog {
    pub fn append(path: &Path) -> Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(CliError::io(path))?;
        Ok(MetricsLog { path: path.to_path_buf(), file })
    }

    pub fn write(&mut self, record: &Record) -> Result<()> {
        let line = serde_json::to_string(record).map_err(|e| CliError::format(&self.path, e.to_string()))?;
        writeln!(self.file, "{line}").map_err(CliError::io(&self.path))?;
        self.file.flush().map_err(CliError::io(&self.path))
    }
}

/// The record of one step.
pub fn record(phase: &str, step: u64, metrics: &Metrics) -> Record {
    let mut r = Map::new();
    r.insert("phase".into(), Value::from(phase));
    r.insert("step".into(), Value::from(step));
    for (k, v) in metrics {
        // serde_json has no NaN; null keeps the key and marks the value.
        let value = serde_json::Number::from_f64(*v).map_or(Value::Null, Value::Number);
        r.insert(k.clone(), value);
    }
    r
}

pub fn read_metrics(path: &Path) -> Result<Vec<Record>> {
    let file = File::open(path).map_err(CliError::io(path))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(CliError::io(path))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(m)) => out.push(m),
            // A kill mid-write can leave a torn last line; it is dropped
            // like any record past the last checkpoint.
            Err(_) if i + 1 == count_lines(path)? => break,
            _ => return Err(CliError::format(path, format!("line {}: not a JSON object", i + 1))),
        }
    }
    Ok(out)
}

fn count_lines(path: &Path) -> Result<usize> {
    let text = fs::read_to_string(path).map_err(CliError::io(path))?;
    Ok(text.lines().count())
}

/// Rewrites `metrics.jsonl` keeping only the records `keep` accepts.
pub fn retain_metrics(path: &Path, keep: impl Fn(&Record) -> bool) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let mut text = String::new();
    for r in read_metrics(path)?.into_iter().filter(|r| keep(r)) {
        text.push_str(&serde_json::to_string(&r).map_err(|e| CliError::format(path, e.to_string()))?);
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())
}

pub fn phase(r: &Record) -> &str {
    r.get("phase").and_then(Value::as_str).unwrap_or("")
}

pub fn step(r: &Record) -> u64 {
    r.get("step").and_then(Value::as_u64).unwrap_or(0)
}

/// The value of `key` in `r` (NaN when written as null).
pub fn value(r: &Record, key: &str) -> Option<f64> {
    match r.get(key)? {
        Value::Null => Some(f64::NAN),
        v => v.as_f64(),
    }
}

/// (step, value) of `key` over the records of `phase`.
pub fn series(records: &[Record], phase_name: &str, key: &str) -> Vec<(f64, f64)> {
    records.iter().filter(|r| phase(r) == phase_name).filter_map(|r| Some((step(r) as f64, value(r, key)?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wapo-rundir-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn records_round_trip_with_nan_as_null() {
        let dir = temp("records");
        let run = RunDir::new(&dir);
        run.create().unwrap();
        let mut log = MetricsLog::append(&run.metrics()).unwrap();
        log.write(&record("rl", 1, &vec![("a/b".into(), 0.5), ("c".into(), f64::NAN)])).unwrap();
        log.write(&record("eval", 1, &vec![("eval/greedy_exact".into(), 0.25)])).unwrap();
        let back = read_metrics(&run.metrics()).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(value(&back[0], "a/b"), Some(0.5));
        assert!(value(&back[0], "c").unwrap().is_nan());
        assert_eq!(series(&back, "eval", "eval/greedy_exact"), vec![(1.0, 0.25)]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn retain_drops_records_past_a_step() {
        let dir = temp("retain");
        let run = RunDir::new(&dir);
        run.create().unwrap();
        let mut log = MetricsLog::append(&run.metrics()).unwrap();
        for s in 1..=5 {
            log.write(&record("rl", s, &vec![("x".into(), s as f64)])).unwrap();
        }
        retain_metrics(&run.metrics(), |r| step(r) <= 3).unwrap();
        let steps: Vec<u64> = read_metrics(&run.metrics()).unwrap().iter().map(step).collect();
        assert_eq!(steps, vec![1, 2, 3]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn torn_last_line_is_dropped_but_torn_middle_is_an_error() {
        let dir = temp("torn");
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("m.jsonl");
        fs::write(&p, "{\"step\":1}\n{\"step\":2,\"x\":").unwrap();
        assert_eq!(read_metrics(&p).unwrap().len(), 1);
        fs::write(&p, "{\"step\":1}\n{oops\n{\"step\":3}\n").unwrap();
        assert!(read_metrics(&p).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_second_lock_is_refused_and_a_stale_one_taken_over() {
        let dir = temp("lock");
        let run = RunDir::new(&dir);
        let (lock, stale) = RunLock::acquire(&run).unwrap();
        assert_eq!(stale, None);
        assert_eq!(fs::read_to_string(run.lock()).unwrap().trim(), std::process::id().to_string());
        match RunLock::acquire(&run) {
            Err(CliError::Locked { reason, .. }) => {
                assert!(reason.contains(&std::process::id().to_string()), "{reason}")
            }
            other => panic!("expected a lock error, got {other:?}"),
        }
        drop(lock);
        assert!(!run.lock().exists());

        // A lock left by a process that has exited (this child, reaped).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        fs::write(run.lock(), format!("{pid}\n")).unwrap();
        let (_lock, stale) = RunLock::acquire(&run).unwrap();
        assert_eq!(stale, Some(pid));
        let leftovers: Vec<_> =
            fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name() != LOCK_FILE).collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        drop(_lock);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn latest_checkpoint_ignores_temp_files() {
        let dir = temp("latest");
        let run = RunDir::new(&dir);
        run.create().unwrap();
        assert!(run.latest_step_checkpoint().unwrap().is_none());
        fs::write(run.step_checkpoint(2), b"good").unwrap();
        fs::write(run.step_checkpoint(10), b"good").unwrap();
        fs::write(run.checkpoints().join(".step-000012.safetensors.tmp-1"), b"torn").unwrap();
        let (step, path) = run.latest_step_checkpoint().unwrap().unwrap();
        assert_eq!(step, 10);
        assert_eq!(path, run.step_checkpoint(10));
        let steps: Vec<u64> = run.step_checkpoints().unwrap().into_iter().map(|(s, _)| s).collect();
        assert_eq!(steps, vec![10, 2]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
