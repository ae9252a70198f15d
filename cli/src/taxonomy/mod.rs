//! `wapo taxonomy --checkpoint C`: the token taxonomy of `OBJECTIVE.md` §7
//! checked against real updates of a checkpoint's model (the experiment in
//! [`experiment`], the per-bin statistics in [`report`]).
//!
//! The model and task come from the run's `config.toml` when the checkpoint
//! sits in `runs/<name>/checkpoints/`, else from `--config` and the flags.

pub mod experiment;
pub mod report;
#[cfg(test)]
mod table_policy;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use wapo_core::Objective;
use wapo_core::rl::TrainState;
use wapo_io::checkpoint;

use crate::error::{CliError, Result};
use crate::overrides::Overrides;
use experiment::{Optimizer, Setup};

#[derive(Args, Debug)]
pub struct TaxonomyArgs {
    /// A checkpoint (`.safetensors`) written by `wapo train` (e.g. its SFT checkpoint).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// sgd: θ − lr·∇θ loss (where §7's first order applies); adamw: one step
    /// from fresh moments at --lr, as a training step takes it.
    #[arg(long, value_enum, default_value = "sgd")]
    pub optimizer: Optimizer,
    /// The SGD step size (on the default toy checkpoint, 1.0 is already past
    /// the first-order regime: the measured changes stop following the gradient).
    #[arg(long, value_name = "LR", default_value_t = 0.1)]
    pub sgd_lr: f64,
    /// Batches sampled (B prompts × G completions each, from --prompts and --group).
    #[arg(long, default_value_t = 32)]
    pub batches: usize,
    /// TOML config (default: the run's config.toml beside `checkpoints/`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the result as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Config flags; the objective is dr_grpo unless --objective names one
    /// (a winners-only objective such as wapo never updates the neg bins).
    #[command(flatten)]
    pub overrides: Overrides,
}

pub fn run(args: &TaxonomyArgs) -> Result<()> {
    if args.batches == 0 {
        return Err(CliError::config("batches", "must be ≥ 1"));
    }
    if !(args.sgd_lr.is_finite() && args.sgd_lr > 0.0) {
        return Err(CliError::config("sgd-lr", "must be a finite number > 0"));
    }
    let mut overrides = args.overrides.0.clone();
    if !overrides.iter().any(|(p, _)| p == "objective.name") {
        overrides.push(("objective.name".into(), Objective::DrGrpo.name().into()));
    }
    let cfg = crate::eval::checkpoint_config(&args.checkpoint, args.config.as_deref(), &overrides)?;
    if cfg.model.path.is_some() {
        return Err(CliError::config(
            "model.path",
            "the taxonomy experiment runs on the toy tasks' models (a pretrained model's head is chunked: no logits)",
        ));
    }
    let task = cfg.build_task()?;
    let mut rl = cfg.rl_config(task.as_ref());
    if args.optimizer == Optimizer::Sgd {
        rl.optim.lr = args.sgd_lr;
    }
    let setup = Setup {
        batches: args.batches,
        prompts: rl.prompts,
        group: rl.group,
        objective: rl.objective.clone(),
        optimizer: args.optimizer,
        optim: rl.optim,
    };
    let started = Instant::now();
    let progress = crate::progress::Progress::new(cfg.progress, "");
    let bar = progress.phase("taxo", args.batches as u64, 0);
    let trials = with_policy!(&cfg, task.as_ref(), |policy| {
        let mut policy = policy;
        let path = &args.checkpoint;
        checkpoint::load_parameters(path, &mut policy).map_err(|e| CliError::format(path, e.to_string()))?;
        let mut state = TrainState::new(cfg.seed);
        let none = wapo_core::rl::Metrics::new();
        experiment::run(&mut policy, task.as_ref(), &setup, &mut state, &mut |b| bar.step(b as u64 + 1, &none))?
    });
    bar.finish();
    let wall_s = started.elapsed().as_secs_f64();
    let bins = report::summarize(&trials);
    if args.json {
        let out = serde_json::json!({
            "checkpoint": args.checkpoint.display().to_string(),
            "task": cfg.task.name.as_str(),
            "objective": setup.objective.objective.name(),
            "optimizer": args.optimizer.name(),
            "lr": setup.optim.lr,
            "batches": args.batches,
            "prompts": setup.prompts,
            "group": setup.group,
            "wall_s": wall_s,
            "bins": report::bins_json(&bins),
        });
        println!("{out}");
    } else {
        println!(
            "{}: task {}, objective {}, {} at lr {}, {} batches of {} × {} ({wall_s:.1} s)\n\
             per bin, one update restricted to its tokens; ΔH and Δℓ summed over them,\n\
             pred: sign of §7's mean prediction; agree: share of batches whose measured\n\
             change has the sign predicted for it; corr: predicted vs measured over batches\n\n{}",
            args.checkpoint.display(),
            cfg.task.name.as_str(),
            setup.objective.objective.name(),
            args.optimizer.name(),
            setup.optim.lr,
            args.batches,
            setup.prompts,
            setup.group,
            report::table(&bins)
        );
    }
    Ok(())
}
