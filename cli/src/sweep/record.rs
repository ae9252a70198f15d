//! `sweep.jsonl`: one JSON object per finished run of the grid, appended as
//! each run ends so that an interrupted sweep keeps them.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::collapse::{self, Collapse, Thresholds};
use crate::compare::GroupRun;
use crate::error::{CliError, Result};
use crate::run_dir::{self, write_atomic};
use crate::sweep::grid::Cell;

pub const SWEEP_FILE: &str = "sweep.jsonl";

/// One run of the sweep. Rewards are held-out greedy exact match, entropies
/// the rollout entropy of an RL step; `None` when absent or non-finite.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepRecord {
    /// The run's directory under the sweep's.
    pub run: String,
    pub objective: String,
    pub lr: f64,
    pub clip_eps: f64,
    pub epochs: usize,
    pub temperature: f64,
    pub seed: u64,
    /// The last RL step the run recorded.
    pub rl_steps: u64,
    pub collapsed: bool,
    pub collapse_step: Option<u64>,
    /// `non_finite`, `entropy_low`, `entropy_high` or `reward_drop`.
    pub collapse_rule: Option<String>,
    pub collapse_detail: Option<String>,
    /// Training stopped because updates kept turning non-finite.
    pub diverged: bool,
    pub start_reward: Option<f64>,
    pub final_reward: Option<f64>,
    pub best_reward: Option<f64>,
    pub start_entropy: Option<f64>,
    pub final_entropy: Option<f64>,
}

fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

impl SweepRecord {
    pub fn of(cell: &Cell, run: &str, out: &GroupRun, t: &Thresholds) -> Self {
        let rs = &out.records;
        let reward = run_dir::series(rs, "eval", collapse::HELDOUT);
        let entropy = run_dir::series(rs, "rl", collapse::ENTROPY);
        let collapse: Option<Collapse> = collapse::detect(t, rs);
        SweepRecord {
            run: run.to_string(),
            objective: cell.objective.to_string(),
            lr: cell.lr,
            clip_eps: cell.clip_eps,
            epochs: cell.epochs,
            temperature: cell.temperature,
            seed: cell.seed,
            rl_steps: rs.iter().filter(|r| run_dir::phase(r) == "rl").map(run_dir::step).max().unwrap_or(0),
            collapsed: collapse.is_some(),
            collapse_step: collapse.as_ref().map(|c| c.step),
            collapse_rule: collapse.as_ref().map(|c| c.rule.name().to_string()),
            collapse_detail: collapse.as_ref().map(|c| c.detail.clone()),
            diverged: out.diverged.is_some(),
            start_reward: finite(reward.first().map(|p| p.1)),
            final_reward: finite(reward.last().map(|p| p.1)),
            best_reward: finite(reward.iter().map(|p| p.1).filter(|x| x.is_finite()).reduce(f64::max)),
            start_entropy: finite(entropy.first().map(|p| p.1)),
            final_entropy: finite(entropy.last().map(|p| p.1)),
        }
    }

    /// One line about the run, for the progress display.
    pub fn describe(&self) -> String {
        let fate = match (&self.collapse_rule, self.collapse_step) {
            (Some(rule), Some(step)) => format!("collapsed ({rule} at step {step})"),
            _ => "stable".into(),
        };
        let n = |v: Option<f64>| crate::summary::num(v);
        format!(
            "{}: {fate}, held-out {} → {} (best {}), entropy {} → {}",
            self.run,
            n(self.start_reward),
            n(self.final_reward),
            n(self.best_reward),
            n(self.start_entropy),
            n(self.final_entropy)
        )
    }

    fn line(&self, path: &Path) -> Result<String> {
        serde_json::to_string(self).map_err(|e| CliError::format(path, e.to_string()))
    }
}

/// The records of `path`. A torn last line (a kill mid-write) is dropped;
/// any other malformed line is an error naming it.
pub fn read(path: &Path) -> Result<Vec<SweepRecord>> {
    let text = std::fs::read_to_string(path).map_err(CliError::io(path))?;
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<SweepRecord>(line) {
            Ok(r) => out.push(r),
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => break,
            Err(e) => return Err(CliError::format(path, format!("line {}: {e}", i + 1))),
        }
    }
    Ok(out)
}

/// Replaces `path` with `records`, whole.
pub fn write_all(path: &Path, records: &[SweepRecord]) -> Result<()> {
    let mut text = String::new();
    for r in records {
        text.push_str(&r.line(path)?);
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())
}

/// Appends one record, flushed.
pub fn append(path: &Path, record: &SweepRecord) -> Result<()> {
    let line = record.line(path)?;
    let mut file: File = OpenOptions::new().create(true).append(true).open(path).map_err(CliError::io(path))?;
    writeln!(file, "{line}").map_err(CliError::io(path))?;
    file.flush().map_err(CliError::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run_dir::record;
    use wapo_core::Objective;

    const T: Thresholds = Thresholds { entropy_low_ratio: 0.2, entropy_high_ratio: 3.0, reward_drop: 0.3 };

    fn cell() -> Cell {
        Cell { objective: Objective::Grpo, lr: 1e-3, clip_eps: 0.2, epochs: 2, temperature: 1.0, seed: 4 }
    }

    #[test]
    fn a_record_summarizes_the_run_and_round_trips() {
        let eval = |s: u64, g: f64| record("eval", s, &vec![(collapse::HELDOUT.into(), g)]);
        let rl = |s: u64, h: f64| record("rl", s, &vec![(collapse::ENTROPY.into(), h)]);
        let records = vec![eval(0, 0.5), rl(1, 0.4), rl(2, 0.2), eval(2, 0.6), rl(3, 0.05), rl(4, 0.04), eval(4, 0.1)];
        let r = SweepRecord::of(&cell(), "grpo-seed4", &GroupRun { records, diverged: None }, &T);
        assert_eq!((r.collapsed, r.collapse_step, r.collapse_rule.as_deref()), (true, Some(3), Some("entropy_low")));
        assert_eq!((r.start_reward, r.final_reward, r.best_reward), (Some(0.5), Some(0.1), Some(0.6)));
        assert_eq!((r.start_entropy, r.final_entropy, r.rl_steps), (Some(0.4), Some(0.04), 4));
        assert_eq!(r.objective, "grpo");

        let dir = std::env::temp_dir().join(format!("wapo-sweep-record-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(SWEEP_FILE);
        append(&path, &r).unwrap();
        let mut stable = r.clone();
        stable.run = "b".into();
        stable.collapsed = false;
        stable.final_reward = None;
        append(&path, &stable).unwrap();
        assert_eq!(read(&path).unwrap(), vec![r.clone(), stable.clone()]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"final_reward\":null") && text.contains("\"collapse_rule\":\"entropy_low\""));

        // A torn last line is dropped; a torn middle line is an error naming it.
        std::fs::write(&path, format!("{text}{{\"run\":\"c\",\"obj")).unwrap();
        assert_eq!(read(&path).unwrap().len(), 2);
        std::fs::write(&path, format!("{{oops\n{text}")).unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains(SWEEP_FILE), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
