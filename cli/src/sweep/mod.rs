//! `wapo sweep`: the stability map. Every run of a grid of objectives ×
//! learning rates (× clip ε, epochs, temperature) × seeds starts RL from one
//! SFT checkpoint; each is judged by [`crate::collapse::detect`]
//! (docs/SWEEP.md).
//!
//! Layout: `<out-dir>/<name>/sft/` (the shared warm start), one directory
//! per run as `wapo train` writes it (`wapo-lr0.001-seed0/`), `sweep.jsonl`
//! (one record per finished run), `stability.png` and `.svg`, and
//! `summary.txt` (the printed table).

pub mod grid;
pub mod map;
pub mod record;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use wapo_core::rl::Metrics;

use crate::collapse::Thresholds;
use crate::compare::{group_root, group_run, in_group, same_config, shared_sft};
use crate::config::TrainConfig;
use crate::error::{CliError, Result};
use crate::overrides::Overrides;
use crate::progress::Progress;
use crate::run_dir::{self, RunDir, RunLock};
use grid::Grid;
use record::{SWEEP_FILE, SweepRecord};

/// The knobs that `wapo sweep` reads as comma-separated lists: the flag of
/// the one value (`--lr`) sets the list (`sweep.lr`).
const LIST_FLAGS: [(&str, &str); 4] = [
    ("rl.lr", "sweep.lr"),
    ("objective.clip_eps", "sweep.clip_eps"),
    ("rl.epochs", "sweep.epochs"),
    ("objective.temperature", "sweep.temperature"),
];

/// `--objectives`, `--seeds`, `--lr`, `--clip-eps`, `--epochs` and
/// `--temperature` take comma-separated lists (`--lr 3e-4,1e-3`); every
/// other flag is that of `wapo train`.
#[derive(Args, Debug)]
#[command(after_help = "--objectives, --seeds, --lr, --clip-eps, --epochs and --temperature take comma-separated \
                        lists (--lr 3e-4,1e-3); a run collapses as docs/SWEEP.md defines.")]
pub struct SweepArgs {
    /// TOML config file (`[compare]`: objectives, seeds and the collapse
    /// rule; `[sweep]`: the other lists).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Keep the finished runs of an earlier sweep of this name (and its SFT
    /// checkpoint) and continue the unfinished ones.
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub overrides: Overrides,
}

/// The flags' (path, value) pairs, a one-value knob's flag moved to its list.
pub fn list_overrides(pairs: &[(String, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(path, v)| match LIST_FLAGS.iter().find(|(one, _)| one == path) {
            Some((_, list)) => (list.to_string(), v.clone()),
            None => (path.clone(), v.clone()),
        })
        .collect()
}

pub fn run(args: &SweepArgs) -> Result<()> {
    let cfg = TrainConfig::resolve(args.config.as_deref(), &list_overrides(&args.overrides.0))?;
    let report = sweep(&cfg, args.resume, true)?;
    print!("{report}");
    Ok(())
}

/// Runs the sweep; returns the printed report.
pub fn sweep(cfg: &TrainConfig, resume: bool, show_progress: bool) -> Result<String> {
    let t0 = Instant::now();
    cfg.validate()?;
    let grid = Grid::of(cfg)?;
    let thresholds = Thresholds::of(cfg);
    let root = group_root(cfg, "sweep");
    std::fs::create_dir_all(&root).map_err(CliError::io(&root))?;
    // One sweep at a time writes sweep.jsonl; each run takes its own lock too.
    let (_lock, _) = RunLock::acquire(&RunDir::new(&root))?;
    let bars = show_progress && cfg.progress && std::io::stderr().is_terminal();
    // Under the bar over cells the runs stay quiet; without it each run
    // prints its held-out checks, tagged with its name.
    let tagged = |tag: &str| if show_progress && !bars { Progress::new(false, tag) } else { Progress::silent() };

    let sft = shared_sft(
        cfg,
        &root,
        resume,
        &if show_progress { Progress::new(cfg.progress, "sft") } else { Progress::silent() },
    )?;

    let file = root.join(SWEEP_FILE);
    let cells = grid.cells();
    let mut done: HashMap<String, SweepRecord> = HashMap::new();
    if resume && file.exists() {
        for r in record::read(&file)? {
            let Some(cell) = cells.iter().find(|c| grid.name(c) == r.run) else { continue };
            let saved = RunDir::new(root.join(&r.run)).config();
            if same_config(&saved, &in_group(&grid.config(cfg, cell), &root), false) {
                done.insert(r.run.clone(), r);
            }
        }
    }
    let kept: Vec<SweepRecord> = cells.iter().filter_map(|c| done.get(&grid.name(c)).cloned()).collect();
    record::write_all(&file, &kept)?;

    let outer = if show_progress { Progress::new(cfg.progress, "sweep") } else { Progress::silent() };
    if !kept.is_empty() {
        outer.line(&format!("kept {} finished runs of {}", kept.len(), cells.len()));
    }
    let phase = outer.phase("cell", cells.len() as u64, kept.len() as u64);
    let mut finished = kept.len() as u64;
    for cell in &cells {
        let name = grid.name(cell);
        if done.contains_key(&name) {
            continue;
        }
        let c = grid.config(cfg, cell);
        let out = group_run(&c, &root, &sft, resume, &tagged(&name))?;
        let rec = SweepRecord::of(cell, &name, &out, &thresholds);
        record::append(&file, &rec)?;
        finished += 1;
        phase.step(finished, &Metrics::new());
        phase.note(finished, &rec.describe());
        done.insert(name, rec);
    }
    phase.finish();

    let records: Vec<SweepRecord> = cells.iter().filter_map(|c| done.get(&grid.name(c)).cloned()).collect();
    record::write_all(&file, &records)?;
    let title =
        format!("Stability: task {}, {} RL steps, {} seeds per cell", cfg.task.name, cfg.rl.steps, grid.seeds.len());
    let [png, svg] = map::save(&grid, &records, &title, &root.join("stability"))?;
    let table = map::table(&grid, &records);
    let collapsed = records.iter().filter(|r| r.collapsed).count();
    let text = format!(
        "\nsweep {}: task {}, {} runs ({} collapsed), {} RL steps each from one SFT checkpoint, {:.1} s\n\
         collapse: entropy outside [{}, {}] × its first RL step's, held-out greedy exact more than {} below its best, or a non-finite value\n\n\
         {table}\nrecords: {}\nmap:     {} and {}\n",
        root.display(),
        cfg.task.name,
        records.len(),
        collapsed,
        cfg.rl.steps,
        t0.elapsed().as_secs_f64(),
        thresholds.entropy_low_ratio,
        thresholds.entropy_high_ratio,
        thresholds.reward_drop,
        file.display(),
        png.display(),
        svg.display(),
    );
    run_dir::write_atomic(&root.join("summary.txt"), text.as_bytes())?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_value_flags_become_lists() {
        let pairs = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        let moved = list_overrides(&pairs(&[("rl.lr", "3e-4,1e-3"), ("rl.steps", "5"), ("rl.epochs", "1,4")]));
        assert_eq!(moved, pairs(&[("sweep.lr", "3e-4,1e-3"), ("rl.steps", "5"), ("sweep.epochs", "1,4")]));
        let cfg = TrainConfig::resolve(None, &moved).unwrap();
        assert_eq!((cfg.sweep.lr.clone(), cfg.sweep.epochs.clone(), cfg.rl.steps), (vec![3e-4, 1e-3], vec![1, 4], 5));
    }
}
