//! `TrainConfig`: every knob of `wapo train`, `wapo eval` and `wapo compare`
//! in one TOML-serializable struct, with embedded defaults.
//!
//! Precedence: embedded defaults < `--config FILE` < flags. Every leaf of
//! the config has a flag (see [`KNOBS`]); the resolved config is written to
//! `runs/<name>/config.toml`, so a run can be repeated from its directory.

use std::path::Path;

use serde::{Deserialize, Serialize};
use wapo_core::rl::{EvalConfig, ModelConfig, OptimConfig, RlConfig, SftConfig};
use wapo_core::task::{self, Task, TaskOptions};
use wapo_core::task::{add::AddConfig, recurrence::RecurrenceConfig, reverse::ReverseConfig, sort::SortConfig};
use wapo_core::{Aggregation, BinSpec, Objective, ObjectiveConfig};

use crate::error::{CliError, Result};

/// The embedded defaults: the WAPO authors' toy task with the wapo objective,
/// sized to finish SFT and RL in a few minutes on two CPU cores.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Run name: outputs go to `<out_dir>/<name>/`; empty → `<task>-<objective>-seed<seed>`.
    pub name: String,
    pub out_dir: String,
    /// `cpu` or `wgpu`.
    pub backend: String,
    /// Seeds the model initialization and the training RNG (`task.seed` seeds the task).
    pub seed: u64,
    /// Save a checkpoint every this many RL steps (and always at the end).
    pub checkpoint_every: u64,
    /// Held-out evaluation every this many RL steps (and at the start and end).
    pub eval_every: u64,
    /// Show progress bars (off: one line per evaluation).
    pub progress: bool,
    pub task: TaskSection,
    pub model: ModelSection,
    pub sft: SftSection,
    pub rl: RlSection,
    pub objective: ObjectiveSection,
    pub eval: EvalSection,
    pub compare: CompareSection,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TaskSection {
    /// `recurrence`, `add`, `sort` or `reverse`.
    pub name: String,
    /// Seeds the example generator; kept apart from the run seed so that
    /// runs of several seeds (`wapo compare`) see the same problems.
    pub seed: u64,
    pub recurrence: RecurrenceConfig,
    pub add: AddConfig,
    pub sort: SortConfig,
    pub reverse: ReverseConfig,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    pub channels: usize,
    pub layers: usize,
    pub heads: usize,
    pub mlp: usize,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SftSection {
    pub batch: usize,
    pub max_steps: u64,
    pub target_accuracy: f64,
    pub eval_every: u64,
    pub eval_examples: usize,
    pub lr: f64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RlSection {
    pub steps: u64,
    /// B, prompts per step.
    pub prompts: usize,
    /// G, completions per prompt.
    pub group: usize,
    pub epochs: usize,
    pub minibatches: usize,
    pub lr: f64,
    pub grad_clip: f64,
    pub weight_decay: f64,
    pub measure_entropy: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveSection {
    pub name: String,
    pub clip_eps: f64,
    pub clip_low: f64,
    pub clip_high: f64,
    pub importance_sampling: bool,
    /// `default`, `seq`, `group` or `global`.
    pub aggregation: String,
    pub normalize_by_kept_tokens: bool,
    /// Comma-separated bin specs (`pos_peak`, `valley`, `neg`, ...); empty: no filter.
    pub include_bins: String,
    pub exclude_bins: String,
    pub mask_positive_advantages: bool,
    /// Sampling temperature of the rollouts (and τ of the objective).
    pub temperature: f64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvalSection {
    pub examples: usize,
    /// k of pass@k (samples per held-out prompt; 0: greedy only).
    pub k: usize,
    pub temperature: f64,
    pub batch: usize,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CompareSection {
    pub objectives: Vec<String>,
    pub seeds: Vec<u64>,
    /// A run collapses when its rollout entropy leaves [entropy_low, entropy_high] ...
    pub entropy_low: f64,
    pub entropy_high: f64,
    /// ... or its held-out reward falls more than this below its best.
    pub reward_drop: f64,
}

/// One flag: the config path it sets, its long name and its help.
pub struct Knob {
    pub path: &'static str,
    pub flag: &'static str,
    pub help: &'static str,
}

macro_rules! knobs {
    ($( $path:literal => $flag:literal : $help:literal ),* $(,)?) => {
        &[ $( Knob { path: $path, flag: $flag, help: $help } ),* ]
    };
}

/// Every leaf of [`TrainConfig`] and its flag (a test keeps the two in step).
pub const KNOBS: &[Knob] = knobs![
    "name" => "name": "Run name; outputs go to <out-dir>/<name>/ (empty: <task>-<objective>-seed<seed>)",
    "out_dir" => "out-dir": "Directory holding the run directories",
    "backend" => "backend": "cpu or wgpu",
    "seed" => "seed": "Seed of the model initialization and the training RNG (the task has --task-seed)",
    "checkpoint_every" => "checkpoint-every": "Checkpoint every N RL steps (0: only at the end)",
    "eval_every" => "eval-every": "Held-out evaluation every N RL steps (0: only at the start and end)",
    "progress" => "progress": "Show progress bars (true/false)",
    "task.name" => "task": "Task: recurrence, add, sort or reverse",
    "task.seed" => "task-seed": "Seed of the task's example generator",
    "task.recurrence.p" => "recurrence-p": "recurrence: modulus p",
    "task.recurrence.n" => "recurrence-n": "recurrence: number of steps n",
    "task.recurrence.a" => "recurrence-a": "recurrence: multiplier a",
    "task.recurrence.b" => "recurrence-b": "recurrence: increment b",
    "task.recurrence.noise" => "recurrence-noise": "recurrence: std of the pixel noise",
    "task.recurrence.flip_prob" => "recurrence-flip-prob": "recurrence: probability of a random pixel",
    "task.recurrence.partial_credit" => "recurrence-partial-credit": "recurrence: reward the fraction of correct tokens",
    "task.add.digits" => "add-digits": "add: digits per operand",
    "task.add.partial_credit" => "add-partial-credit": "add: reward the fraction of correct digits",
    "task.sort.len" => "sort-len": "sort: number of digits",
    "task.sort.partial_credit" => "sort-partial-credit": "sort: reward the fraction of correct positions",
    "task.reverse.len" => "reverse-len": "reverse: string length",
    "task.reverse.alphabet" => "reverse-alphabet": "reverse: number of letters",
    "task.reverse.partial_credit" => "reverse-partial-credit": "reverse: reward the fraction of correct positions",
    "model.channels" => "channels": "Model width C",
    "model.layers" => "layers": "Number of blocks L",
    "model.heads" => "heads": "Attention heads H (must divide C)",
    "model.mlp" => "mlp": "MLP hidden width",
    "sft.batch" => "sft-batch": "SFT examples per step",
    "sft.max_steps" => "sft-steps": "SFT step cap",
    "sft.target_accuracy" => "sft-target-accuracy": "Stop SFT at this held-out greedy accuracy",
    "sft.eval_every" => "sft-eval-every": "SFT held-out check every N steps",
    "sft.eval_examples" => "sft-eval-examples": "Held-out examples in the SFT check",
    "sft.lr" => "sft-lr": "SFT learning rate",
    "rl.steps" => "rl-steps": "RL steps",
    "rl.prompts" => "prompts": "Prompts per RL step (B)",
    "rl.group" => "group": "Completions per prompt (G)",
    "rl.epochs" => "epochs": "Passes over each RL batch",
    "rl.minibatches" => "minibatches": "Optimizer steps per pass",
    "rl.lr" => "lr": "RL learning rate",
    "rl.grad_clip" => "grad-clip": "Global gradient-norm clip (0: off; SFT uses it too)",
    "rl.weight_decay" => "weight-decay": "AdamW weight decay (SFT uses it too)",
    "rl.measure_entropy" => "measure-entropy": "Measure the entropy change of each update (one extra forward)",
    "objective.name" => "objective": "Objective: wapo, grpo, dr_grpo, dapo, dr_dapo, dr_dapo_seq, gspo, raft, raft++",
    "objective.clip_eps" => "clip-eps": "Clip ε (grpo, dr_grpo, gspo, raft++, wapo)",
    "objective.clip_low" => "clip-low": "Lower clip bound (dapo family)",
    "objective.clip_high" => "clip-high": "Upper clip bound (dapo family)",
    "objective.importance_sampling" => "importance-sampling": "Keep the importance ratio (false: plain REINFORCE)",
    "objective.aggregation" => "aggregation": "default, seq, group or global",
    "objective.normalize_by_kept_tokens" => "normalize-by-kept-tokens": "Renormalize weights over kept tokens",
    "objective.include_bins" => "include-bins": "Keep only these token bins (comma-separated)",
    "objective.exclude_bins" => "exclude-bins": "Drop these token bins (comma-separated)",
    "objective.mask_positive_advantages" => "mask-positive-advantages": "Also drop every sequence with A ≥ 0",
    "objective.temperature" => "temperature": "Sampling temperature",
    "eval.examples" => "eval-examples": "Held-out examples per evaluation",
    "eval.k" => "pass-k": "k of pass@k (0: greedy only)",
    "eval.temperature" => "eval-temperature": "Sampling temperature of pass@k",
    "eval.batch" => "eval-batch": "Prompts per evaluation batch",
    "compare.objectives" => "objectives": "compare: objectives (comma-separated)",
    "compare.seeds" => "seeds": "compare: seeds (comma-separated)",
    "compare.entropy_low" => "entropy-low": "compare: collapse when entropy falls below this",
    "compare.entropy_high" => "entropy-high": "compare: collapse when entropy rises above this",
    "compare.reward_drop" => "reward-drop": "compare: collapse when held-out reward falls this far below its best",
];

impl Default for TrainConfig {
    fn default() -> Self {
        // The embedded file is checked by a unit test, so this cannot fail.
        toml::from_str(DEFAULT_TOML).unwrap_or_else(|e| panic!("embedded default.toml: {e}"))
    }
}

impl TrainConfig {
    /// Defaults, then `file` (if any), then `overrides` (config path, raw value).
    pub fn resolve(file: Option<&Path>, overrides: &[(String, String)]) -> Result<Self> {
        let mut table: toml::Table =
            toml::from_str(DEFAULT_TOML).map_err(|e| CliError::config("default.toml", e.to_string()))?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(CliError::io(path))?;
            let user: toml::Table = toml::from_str(&text).map_err(|e| CliError::format(path, e.to_string()))?;
            merge(&mut table, user, "")?;
        }
        Self::from_table(table, overrides)
    }

    /// `self`, then `overrides`.
    pub fn with_overrides(&self, overrides: &[(String, String)]) -> Result<Self> {
        let table = toml::Table::try_from(self).map_err(|e| CliError::config("config", e.to_string()))?;
        Self::from_table(table, overrides)
    }

    /// Reads a resolved config (e.g. `runs/<name>/config.toml`).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(CliError::io(path))?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| CliError::format(path, e.to_string()))?;
        Self::from_table(table, &[]).map_err(|e| match e {
            CliError::Config { field, reason } => CliError::format(path, format!("`{field}`: {reason}")),
            other => other,
        })
    }

    fn from_table(mut table: toml::Table, overrides: &[(String, String)]) -> Result<Self> {
        for (path, raw) in overrides {
            set_leaf(&mut table, path, raw)?;
        }
        let cfg: TrainConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| CliError::config(field_of(&e), e.message()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| CliError::config("config", e.to_string()))
    }

    /// The run name, derived when empty.
    pub fn run_name(&self) -> String {
        if self.name.is_empty() {
            format!("{}-{}-seed{}", self.task.name, self.objective.name, self.seed)
        } else {
            self.name.clone()
        }
    }

    /// Checks every field that the core does not check itself.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, reason: &str| Err(CliError::config(field, reason));
        if self.run_name().contains(['/', '\\']) || self.run_name().starts_with('.') {
            return bad("name", "must be a plain directory name");
        }
        if !matches!(self.backend.as_str(), "cpu" | "wgpu") {
            return bad("backend", "expected cpu or wgpu");
        }
        if self.rl.steps > 0 && self.rl.prompts == 0 {
            return bad("rl.prompts", "must be ≥ 1");
        }
        if self.eval.examples == 0 || self.eval.batch == 0 {
            return bad("eval.examples", "examples and batch must be ≥ 1");
        }
        if self.sft.eval_examples == 0 {
            return bad("sft.eval_examples", "must be ≥ 1");
        }
        for (field, lr) in [("sft.lr", self.sft.lr), ("rl.lr", self.rl.lr)] {
            if !lr.is_finite() || lr < 0.0 {
                return bad(field, "must be a finite number ≥ 0");
            }
        }
        if !self.eval.temperature.is_finite() || self.eval.temperature <= 0.0 {
            return bad("eval.temperature", "must be a finite number > 0");
        }
        if self.compare.objectives.is_empty() || self.compare.seeds.is_empty() {
            return bad("compare.objectives", "objectives and seeds must not be empty");
        }
        for o in &self.compare.objectives {
            if Objective::from_name(o).is_none() {
                return bad("compare.objectives", "unknown objective");
            }
        }
        if self.compare.entropy_low > self.compare.entropy_high {
            return bad("compare.entropy_low", "must be ≤ entropy_high");
        }
        let task = self.build_task()?;
        self.model_config(task.as_ref()).validate()?;
        self.sft_config().validate()?;
        let objective = self.objective_config(task.as_ref())?;
        objective.validate().map_err(|e| CliError::from(e).under("objective"))?;
        if self.rl.steps > 0 {
            self.rl_config(task.as_ref())?.validate()?;
        }
        Ok(())
    }

    pub fn task_options(&self) -> TaskOptions {
        TaskOptions {
            recurrence: self.task.recurrence.clone(),
            add: self.task.add.clone(),
            sort: self.task.sort.clone(),
            reverse: self.task.reverse.clone(),
        }
    }

    pub fn build_task(&self) -> Result<Box<dyn Task>> {
        task::by_name_with(&self.task.name, self.task.seed, &self.task_options()).map_err(|e| match CliError::from(e) {
            CliError::Config { field, reason } if field == "task" => CliError::config("task.name", reason),
            other => other.under("task"),
        })
    }

    pub fn model_config(&self, task: &dyn Task) -> ModelConfig {
        ModelConfig::gpt(
            task.vocab_size(),
            task.prompt_len() + task.completion_len(),
            self.model.channels,
            self.model.layers,
            self.model.heads,
            self.model.mlp,
        )
    }

    fn optim(&self, lr: f64) -> OptimConfig {
        OptimConfig { lr, grad_clip: self.rl.grad_clip, weight_decay: self.rl.weight_decay, ..OptimConfig::default() }
    }

    pub fn sft_config(&self) -> SftConfig {
        SftConfig {
            batch: self.sft.batch,
            max_steps: self.sft.max_steps,
            target_accuracy: self.sft.target_accuracy,
            eval_every: self.sft.eval_every,
            eval_examples: self.sft.eval_examples,
            optim: self.optim(self.sft.lr),
        }
    }

    pub fn objective_config(&self, task: &dyn Task) -> Result<ObjectiveConfig> {
        let o = &self.objective;
        let objective: Objective = o.name.parse().map_err(|e| match e {
            wapo_core::Error::Config { reason, .. } => CliError::config("objective.name", reason),
            other => other.into(),
        })?;
        let mut cfg = ObjectiveConfig::new(objective, task.completion_len());
        if objective.needs_clip_eps() {
            cfg.clip_eps = Some(o.clip_eps);
        }
        cfg.clip_low = o.clip_low;
        cfg.clip_high = o.clip_high;
        cfg.importance_sampling = o.importance_sampling;
        cfg.aggregation = match o.aggregation.as_str() {
            "default" => None,
            "seq" => Some(Aggregation::Seq),
            "group" => Some(Aggregation::Group),
            "global" => Some(Aggregation::Global),
            _ => {
                return Err(CliError::config("objective.aggregation", "expected default, seq, group or global"));
            }
        };
        cfg.normalize_by_kept_tokens = o.normalize_by_kept_tokens;
        cfg.include_bins = parse_bins("objective.include_bins", &o.include_bins)?;
        cfg.exclude_bins = parse_bins("objective.exclude_bins", &o.exclude_bins)?;
        cfg.mask_positive_advantages = o.mask_positive_advantages;
        cfg.temperature = o.temperature;
        Ok(cfg)
    }

    pub fn rl_config(&self, task: &dyn Task) -> Result<RlConfig> {
        Ok(RlConfig {
            prompts: self.rl.prompts,
            group: self.rl.group,
            epochs: self.rl.epochs,
            minibatches: self.rl.minibatches,
            objective: self.objective_config(task)?,
            optim: self.optim(self.rl.lr),
            measure_entropy: self.rl.measure_entropy,
            sampling: Default::default(),
        })
    }

    /// The held-out evaluation; its sampling seed is fixed per run seed, so
    /// every evaluation of a run scores the same draws.
    pub fn eval_config(&self) -> EvalConfig {
        EvalConfig {
            examples: self.eval.examples,
            k: self.eval.k,
            temperature: self.eval.temperature,
            seed: self.seed ^ 0x5eed_e7a1,
            batch: self.eval.batch,
        }
    }
}

fn parse_bins(field: &str, text: &str) -> Result<BinSpec> {
    let mut spec = BinSpec::NONE;
    for part in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bin = BinSpec::parse(part).ok_or_else(|| {
            CliError::config(
                field,
                format!("unknown bin `{part}` (expected pos_peak, pos_valley, neg_peak, neg_valley, peak, valley, pos or neg)"),
            )
        })?;
        spec = spec.union(bin);
    }
    Ok(spec)
}

/// The dotted path of the field a deserialization error points at, if toml
/// names one.
fn field_of(e: &toml::de::Error) -> String {
    // toml reports "missing field `x`" / "unknown field `x`" in the message;
    // the surrounding key is not exposed, so the message itself carries it.
    let msg = e.message();
    msg.split('`').nth(1).map_or_else(|| "config".to_string(), str::to_string)
}

/// Recursively merges `src` into `dst`, refusing keys the defaults lack so
/// that a typo is an error rather than a silently ignored setting.
fn merge(dst: &mut toml::Table, src: toml::Table, prefix: &str) -> Result<()> {
    for (key, value) in src {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match (dst.get_mut(&key), value) {
            (Some(toml::Value::Table(d)), toml::Value::Table(s)) => merge(d, s, &path)?,
            (Some(toml::Value::Table(_)), _) => {
                return Err(CliError::config(path, "expected a table"));
            }
            (Some(slot), v) => *slot = v,
            (None, _) => return Err(CliError::config(path, "unknown field")),
        }
    }
    Ok(())
}

/// Sets the leaf at dotted `path` from the flag text `raw`, parsed as the
/// type of the value already there.
fn set_leaf(table: &mut toml::Table, path: &str, raw: &str) -> Result<()> {
    let mut parts = path.split('.').peekable();
    let mut cur = table;
    while let Some(key) = parts.next() {
        if parts.peek().is_none() {
            let slot = cur.get_mut(key).ok_or_else(|| CliError::config(path, "unknown field"))?;
            *slot = parse_like(slot, path, raw)?;
            return Ok(());
        }
        cur = match cur.get_mut(key) {
            Some(toml::Value::Table(t)) => t,
            _ => return Err(CliError::config(path, "unknown field")),
        };
    }
    Err(CliError::config(path, "empty field path"))
}

fn parse_like(like: &toml::Value, path: &str, raw: &str) -> Result<toml::Value> {
    use toml::Value as V;
    let raw = raw.trim();
    let bad = |what: &str| CliError::config(path, format!("expected {what}, got `{raw}`"));
    Ok(match like {
        V::Integer(_) => V::Integer(raw.parse().map_err(|_| bad("an integer"))?),
        V::Float(_) => V::Float(raw.parse().map_err(|_| bad("a number"))?),
        V::Boolean(_) => V::Boolean(raw.parse().map_err(|_| bad("true or false"))?),
        V::String(_) => V::String(raw.to_string()),
        V::Array(items) => {
            let elem = items.first().cloned().unwrap_or(V::String(String::new()));
            let parts = raw.split(',').map(str::trim).filter(|s| !s.is_empty());
            V::Array(parts.map(|p| parse_like(&elem, path, p)).collect::<Result<_>>()?)
        }
        _ => return Err(bad("a value of a supported type")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
        for (k, v) in table {
            let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            match v {
                toml::Value::Table(t) => leaves(t, &path, out),
                _ => out.push(path),
            }
        }
    }

    #[test]
    fn embedded_defaults_parse_and_validate() {
        let cfg = TrainConfig::default();
        cfg.validate().unwrap();
        assert_eq!(cfg.task.name, "recurrence");
        assert_eq!(cfg.objective.name, "wapo");
        assert_eq!(cfg.run_name(), "recurrence-wapo-seed0");
    }

    #[test]
    fn every_leaf_has_exactly_one_flag() {
        let table: toml::Table = toml::from_str(DEFAULT_TOML).unwrap();
        let mut paths = Vec::new();
        leaves(&table, "", &mut paths);
        paths.sort();
        let mut knobs: Vec<String> = KNOBS.iter().map(|k| k.path.to_string()).collect();
        knobs.sort();
        assert_eq!(paths, knobs);
        let mut flags: Vec<&str> = KNOBS.iter().map(|k| k.flag).collect();
        flags.sort();
        flags.dedup();
        assert_eq!(flags.len(), KNOBS.len(), "duplicate flag names");
    }

    #[test]
    fn overrides_are_typed_by_the_default() {
        let o = |p: &str, v: &str| (p.to_string(), v.to_string());
        let cfg = TrainConfig::resolve(
            None,
            &[
                o("rl.steps", "7"),
                o("rl.lr", "3e-4"),
                o("objective.name", "grpo"),
                o("rl.measure_entropy", "false"),
                o("compare.seeds", "1, 2,3"),
            ],
        )
        .unwrap();
        assert_eq!(cfg.rl.steps, 7);
        assert_eq!(cfg.rl.lr, 3e-4);
        assert_eq!(cfg.objective.name, "grpo");
        assert!(!cfg.rl.measure_entropy);
        assert_eq!(cfg.compare.seeds, vec![1, 2, 3]);
    }

    #[test]
    fn bad_values_name_the_field() {
        let o = |p: &str, v: &str| vec![(p.to_string(), v.to_string())];
        let field = |r: Result<TrainConfig>| match r {
            Err(CliError::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        };
        assert_eq!(field(TrainConfig::resolve(None, &o("rl.steps", "many"))), "rl.steps");
        assert_eq!(field(TrainConfig::resolve(None, &o("task.name", "chess"))), "task.name");
        assert_eq!(field(TrainConfig::resolve(None, &o("objective.name", "ppo"))), "objective.name");
        assert_eq!(field(TrainConfig::resolve(None, &o("model.heads", "5"))), "model.heads");
        assert_eq!(field(TrainConfig::resolve(None, &o("backend", "tpu"))), "backend");
        assert_eq!(field(TrainConfig::resolve(None, &o("objective.include_bins", "hill"))), "objective.include_bins");
    }

    #[test]
    fn config_file_merges_and_rejects_typos() {
        let dir = std::env::temp_dir().join(format!("wapo-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.toml");
        std::fs::write(&good, "seed = 5\n[rl]\nsteps = 3\n").unwrap();
        let cfg = TrainConfig::resolve(Some(&good), &[("seed".into(), "6".into())]).unwrap();
        assert_eq!((cfg.seed, cfg.rl.steps), (6, 3));
        assert_eq!(cfg.rl.prompts, TrainConfig::default().rl.prompts);
        let typo = dir.join("typo.toml");
        std::fs::write(&typo, "[rl]\nstep = 3\n").unwrap();
        match TrainConfig::resolve(Some(&typo), &[]) {
            Err(CliError::Config { field, .. }) => assert_eq!(field, "rl.step"),
            other => panic!("expected a config error, got {other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn resolved_config_round_trips_through_toml() {
        let cfg = TrainConfig::resolve(None, &[("rl.lr".into(), "0.5".into())]).unwrap();
        let back: TrainConfig = toml::from_str(&cfg.to_toml().unwrap()).unwrap();
        assert_eq!(back, cfg);
    }
}
