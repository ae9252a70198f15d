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

/// The config a command on `checkpoint` runs with: `config` when given,
/// else the run's own `config.toml` beside `checkpoints/`, else the
/// defaults; `overrides` on top. The checkpoint must be a file.
pub fn checkpoint_config(
    checkpoint: &Path,
    config: Option<&Path>,
    overrides: &[(String, String)],
) -> Result<TrainConfig> {
    if !checkpoint.is_file() {
        return Err(CliError::Io {
            path: checkpoint.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such checkpoint file"),
        });
    }
    match (config, run_config(checkpoint)) {
        (Some(file), _) => TrainConfig::resolve(Some(file), overrides),
        (None, Some(saved)) => TrainConfig::load(&saved)?.with_overrides(overrides),
        (None, None) => TrainConfig::resolve(None, overrides),
    }
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let cfg = checkpoint_config(&args.checkpoint, args.config.as_deref(), &args.overrides.0)?;
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
