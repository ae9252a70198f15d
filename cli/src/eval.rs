//! `wapo eval CHECKPOINT`: held-out greedy exact match, pass@k, mean sampled
//! reward and entropy of a checkpoint.
//!
//! The model and task come from the run's `config.toml` when the checkpoint
//! sits in `runs/<name>/checkpoints/`, else from `--config` and the flags.

use std::path::{Path, PathBuf};

use clap::Args;
use wapo_core::rl::{Metrics, evaluate};
use wapo_io::checkpoint;

use crate::config::TrainConfig;
use crate::error::{CliError, Result};
use crate::overrides::Overrides;
use crate::run_dir::CONFIG_FILE;
use crate::summary::{Table, num};

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A checkpoint (`.safetensors`) written by `wapo train`.
    pub checkpoint: PathBuf,
    /// TOML config (default: the run's config.toml beside `checkpoints/`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the metrics as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub overrides: Overrides,
}

/// `runs/<name>/config.toml` for `runs/<name>/checkpoints/<file>`.
fn run_config(checkpoint: &Path) -> Option<PathBuf> {
    let dir = checkpoint.parent()?;
    if dir.file_name()? != "checkpoints" {
        return None;
    }
    let cfg = dir.parent()?.join(CONFIG_FILE);
    cfg.exists().then_some(cfg)
}

pub fn run(args: &EvalArgs) -> Result<()> {
    if !args.checkpoint.is_file() {
        return Err(CliError::Io {
            path: args.checkpoint.clone(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such checkpoint file"),
        });
    }
    let cfg = match (&args.config, run_config(&args.checkpoint)) {
        (Some(file), _) => TrainConfig::resolve(Some(file), &args.overrides.0)?,
        (None, Some(saved)) => TrainConfig::load(&saved)?.with_overrides(&args.overrides.0)?,
        (None, None) => TrainConfig::resolve(None, &args.overrides.0)?,
    };
    let m = eval_checkpoint(&cfg, &args.checkpoint)?;
    if args.json {
        let obj: serde_json::Map<String, serde_json::Value> = m
            .iter()
            .map(|(k, v)| {
                let v = serde_json::Number::from_f64(*v).map_or(serde_json::Value::Null, Into::into);
                (k.clone(), v)
            })
            .collect();
        println!("{}", serde_json::Value::Object(obj));
    } else {
        let mut t = Table::new(["metric", "value"]);
        for (k, v) in &m {
            t.row([k.clone(), num(Some(*v))]);
        }
        println!(
            "{}: task {}, {} held-out examples, k = {}\n\n{t}",
            args.checkpoint.display(),
            cfg.task.name,
            cfg.eval.examples,
            cfg.eval.k
        );
    }
    Ok(())
}

/// Evaluates the parameters stored in `path` with `cfg`'s task and model.
pub fn eval_checkpoint(cfg: &TrainConfig, path: &Path) -> Result<Metrics> {
    if let Some(model) = &cfg.model.path {
        // A pretrained run: its model file gives the shape and the tokenizer.
        return with_pretrained!(cfg.backend, Path::new(model), |policy, meta| {
            let task = crate::llm::task::LmTask::from_config(cfg, meta.tokenizer, &meta.config)?;
            let mut policy = policy;
            checkpoint::load_parameters(path, &mut policy).map_err(|e| CliError::format(path, e.to_string()))?;
            Ok(evaluate(&mut policy, &task, &cfg.eval_config())?)
        });
    }
    let task = cfg.build_task()?;
    with_policy!(cfg, task.as_ref(), |policy| {
        let mut policy = policy;
        checkpoint::load_parameters(path, &mut policy).map_err(|e| CliError::format(path, e.to_string()))?;
        Ok(evaluate(&mut policy, task.as_ref(), &cfg.eval_config())?)
    })
}
