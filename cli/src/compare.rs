//! `wapo compare`: several objectives × seeds, all starting RL from one SFT
//! checkpoint, with overlaid plots and a summary table (final and best
//! held-out reward, entropy trajectory, collapse by [`collapse::detect`]).
//! The run management shared with `wapo sweep` lives here too: the group's
//! root, its SFT warm start and one RL run from it, resumable.
//!
//! Layout: `<out-dir>/<name>/sft/` (the shared warm start),
//! `<out-dir>/<name>/<objective>-seed<s>/` (one run each, as `wapo train`
//! writes it), `<out-dir>/<name>/plots/` and `summary.txt`.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::collapse;
use crate::config::TrainConfig;
use crate::error::{CliError, Result};
use crate::overrides::Overrides;
use crate::plot::{Chart, Series};
use crate::progress::Progress;
use crate::run_dir::{self, Record, RunDir};
use crate::summary::{Table, num};
use crate::train::{Start, train};

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// TOML config file (the `[compare]` section picks objectives and seeds).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Reuse the shared SFT checkpoint and resume unfinished runs.
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub overrides: Overrides,
}

pub fn run(args: &CompareArgs) -> Result<()> {
    let cfg = TrainConfig::resolve(args.config.as_deref(), &args.overrides.0)?;
    let report = compare(&cfg, args.resume, true)?;
    print!("{report}");
    Ok(())
}

/// One finished run of the comparison.
#[derive(Clone, Debug)]
pub struct RunSummary {
    pub objective: String,
    pub seed: u64,
    pub records: Vec<Record>,
}

/// `<out_dir>/<name>` of a command that trains several runs (`compare`,
/// `sweep`); with no name, `<command>-<task>`.
pub fn group_root(cfg: &TrainConfig, command: &str) -> PathBuf {
    let name = if cfg.name.is_empty() { format!("{command}-{}", cfg.task.name) } else { cfg.name.clone() };
    Path::new(&cfg.out_dir).join(name)
}

/// Whether the config saved at `saved` is `cfg`, apart from the progress
/// display and, with `any_steps`, the number of RL steps (a run continued
/// to more steps is the same run).
pub fn same_config(saved: &Path, cfg: &TrainConfig, any_steps: bool) -> bool {
    let Ok(mut old) = TrainConfig::load(saved) else { return false };
    old.progress = cfg.progress;
    if any_steps {
        old.rl.steps = cfg.rl.steps;
    }
    old == *cfg
}

/// The shared warm start of a group of runs, `<root>/sft/`: SFT of `cfg`
/// with no RL. Kept when resuming and its saved config is this one.
pub fn shared_sft(cfg: &TrainConfig, root: &Path, resume: bool, progress: &Progress) -> Result<PathBuf> {
    let mut base = cfg.clone();
    base.name = "sft".into();
    base.out_dir = root.to_string_lossy().to_string();
    base.rl.steps = 0;
    let run = RunDir::new(root.join("sft"));
    if !(resume && run.sft_checkpoint().exists() && same_config(&run.config(), &base, false)) {
        train(&base, Start::Fresh, progress)?;
    }
    Ok(run.sft_checkpoint())
}

/// `cfg` as a run of the group under `root` has it (and saves it).
pub fn in_group(cfg: &TrainConfig, root: &Path) -> TrainConfig {
    let mut c = cfg.clone();
    c.out_dir = root.to_string_lossy().to_string();
    c
}

/// A run of a group, as its metrics left it.
#[derive(Clone, Debug)]
pub struct GroupRun {
    pub records: Vec<Record>,
    /// Why training stopped early, when its updates kept turning non-finite.
    pub diverged: Option<String>,
}

/// RL run `cfg.name` under `root` from the shared SFT checkpoint `sft`.
/// When resuming, a run whose saved config is `cfg` (steps aside) continues
/// from its last checkpoint; any other starts over. A run that diverges is
/// a result, not an error: its records say where it went non-finite.
pub fn group_run(cfg: &TrainConfig, root: &Path, sft: &Path, resume: bool, progress: &Progress) -> Result<GroupRun> {
    let c = in_group(cfg, root);
    let dir = RunDir::new(root.join(&c.name));
    let start = if resume && same_config(&dir.config(), &c, true) {
        Start::Resume(Some(sft.to_path_buf()))
    } else {
        Start::FromSft(sft.to_path_buf())
    };
    let diverged = match train(&c, start, progress) {
        Ok(_) => None,
        Err(e @ CliError::Diverged { .. }) => {
            progress.line(&format!("stopped: {e}"));
            Some(e.to_string())
        }
        Err(e) => return Err(e),
    };
    Ok(GroupRun { records: run_dir::read_metrics(&dir.metrics())?, diverged })
}

/// Runs the comparison; returns the printed report.
pub fn compare(cfg: &TrainConfig, resume: bool, show_progress: bool) -> Result<String> {
    cfg.validate()?;
    let root = group_root(cfg, "compare");
    let progress = |tag: &str| {
        if show_progress { Progress::new(cfg.progress, tag) } else { Progress::silent() }
    };
    let sft_ckpt = shared_sft(cfg, &root, resume, &progress("sft"))?;

    let mut runs = Vec::new();
    for objective in &cfg.compare.objectives {
        for &seed in &cfg.compare.seeds {
            let mut c = cfg.clone();
            c.objective.name = *objective;
            c.seed = seed;
            c.name = format!("{objective}-seed{seed}");
            let out = group_run(&c, &root, &sft_ckpt, resume, &progress(&c.name))?;
            runs.push(RunSummary { objective: objective.to_string(), seed, records: out.records });
        }
    }

    let plots = RunDir::new(&root).plots();
    std::fs::create_dir_all(&plots).map_err(CliError::io(&plots))?;
    overlay_charts(&runs, &plots)?;
    let table = summary_table(cfg, &runs);
    let text = format!(
        "\ncompare {}: task {}, {} RL steps from one SFT checkpoint\n\n{table}\nplots: {}\n",
        root.display(),
        cfg.task.name,
        cfg.rl.steps,
        plots.display()
    );
    let summary = root.join("summary.txt");
    run_dir::write_atomic(&summary, text.as_bytes())?;
    Ok(text)
}

fn summary_table(cfg: &TrainConfig, runs: &[RunSummary]) -> Table {
    let thresholds = collapse::Thresholds::of(cfg);
    let mut t = Table::new(["objective", "seed", "start", "final", "best", "entropy start→end (min)", "collapse"]);
    for r in runs {
        let greedy = run_dir::series(&r.records, "eval", "eval/greedy_exact");
        let start = greedy.first().map(|p| p.1);
        let last = greedy.last().map(|p| p.1);
        let best = greedy.iter().map(|p| p.1).reduce(f64::max);
        let ent = run_dir::series(&r.records, "rl", "entropy/mean");
        let trajectory = match (ent.first(), ent.last()) {
            (Some(a), Some(b)) => {
                let min = ent.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
                format!("{:.3}→{:.3} ({min:.3})", a.1, b.1)
            }
            _ => "-".into(),
        };
        t.row([
            r.objective.clone(),
            r.seed.to_string(),
            num(start),
            num(last),
            num(best),
            trajectory,
            collapse::detect(&thresholds, &r.records).map_or_else(|| "no".into(), |c| c.to_string()),
        ]);
    }
    t
}

fn overlay_charts(runs: &[RunSummary], dir: &Path) -> Result<Vec<PathBuf>> {
    let charts = [
        ("heldout_greedy", "eval", "eval/greedy_exact", "Held-out greedy exact match"),
        ("heldout_pass_at_k", "eval", "eval/pass@k", "Held-out pass@k"),
        ("rollout_reward", "rl", "rollout/reward_mean", "Rollout reward (train)"),
        ("entropy", "rl", "entropy/mean", "Rollout entropy"),
        ("clipped_fraction", "rl", "objective/clipped_fraction", "Clipped fraction"),
    ];
    let mut out = Vec::new();
    for (stem, phase, key, title) in charts {
        let chart = Chart {
            title: title.into(),
            x_label: "RL step".into(),
            y_label: key.into(),
            series: runs
                .iter()
                .map(|r| Series {
                    label: format!("{} s{}", r.objective, r.seed),
                    points: run_dir::series(&r.records, phase, key),
                })
                .collect(),
        };
        out.extend(chart.save(&dir.join(stem))?);
    }
    Ok(out)
}
