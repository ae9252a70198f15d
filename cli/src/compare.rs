//! `wapo compare`: several objectives × seeds, all starting RL from one SFT
//! checkpoint, with overlaid plots and a summary table (final and best
//! held-out reward, entropy trajectory, collapse flag).
//!
//! Layout: `<out-dir>/<name>/sft/` (the shared warm start),
//! `<out-dir>/<name>/<objective>-seed<s>/` (one run each, as `wapo train`
//! writes it), `<out-dir>/<name>/plots/` and `summary.txt`.

use std::path::{Path, PathBuf};

use clap::Args;

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

/// Collapse: rollout entropy outside the band at some step, or the final
/// held-out greedy exact match more than `reward_drop` below its best.
pub fn collapse(cfg: &TrainConfig, records: &[Record]) -> Option<String> {
    let c = &cfg.compare;
    for (step, h) in run_dir::series(records, "rl", "entropy/mean") {
        if !h.is_finite() || h < c.entropy_low || h > c.entropy_high {
            return Some(format!("entropy {h:.3} at step {step}"));
        }
    }
    let greedy = run_dir::series(records, "eval", "eval/greedy_exact");
    let best = greedy.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let last = greedy.last()?.1;
    (best - last > c.reward_drop).then(|| format!("reward {last:.3} < best {best:.3}"))
}

pub fn compare_root(cfg: &TrainConfig) -> PathBuf {
    let name = if cfg.name.is_empty() { format!("compare-{}", cfg.task.name) } else { cfg.name.clone() };
    Path::new(&cfg.out_dir).join(name)
}

/// Runs the comparison; returns the printed report.
pub fn compare(cfg: &TrainConfig, resume: bool, show_progress: bool) -> Result<String> {
    cfg.validate()?;
    let root = compare_root(cfg);
    let root_str = root.to_string_lossy().to_string();
    let progress = |tag: &str| {
        if show_progress { Progress::new(cfg.progress, tag) } else { Progress::silent() }
    };

    let mut base = cfg.clone();
    base.name = "sft".into();
    base.out_dir = root_str.clone();
    base.rl.steps = 0;
    let sft_run = RunDir::new(root.join("sft"));
    if !(resume && sft_run.sft_checkpoint().exists()) {
        train(&base, Start::Fresh, &progress("sft"))?;
    }
    let sft_ckpt = sft_run.sft_checkpoint();

    let mut runs = Vec::new();
    for objective in &cfg.compare.objectives {
        for &seed in &cfg.compare.seeds {
            let mut c = cfg.clone();
            c.objective.name = *objective;
            c.seed = seed;
            c.name = format!("{objective}-seed{seed}");
            c.out_dir = root_str.clone();
            let dir = RunDir::new(root.join(&c.name));
            let start = if resume && dir.config().exists() { Start::Resume } else { Start::FromSft(sft_ckpt.clone()) };
            let out = train(&c, start, &progress(&c.name))?;
            runs.push(RunSummary {
                objective: objective.to_string(),
                seed,
                records: run_dir::read_metrics(&out.run.metrics())?,
            });
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
            collapse(cfg, &r.records).unwrap_or_else(|| "no".into()),
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
