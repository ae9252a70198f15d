//! `TrainConfig`: every knob of `wapo train`, `eval`, `compare`, `sweep` and
//! `taxonomy`, each declared once below with its doc, type, default, flag and check.
//! From those declarations come the struct, the embedded defaults, reading
//! TOML files and flags (errors name the dotted field), the flags' help
//! ([`crate::overrides`]) and the documented TOML of `--print-config`.
//!
//! Precedence: embedded defaults < `--config FILE` < flags. The resolved
//! config is written to `runs/<name>/config.toml`, so a run can be repeated
//! from its directory.

pub mod choices;
pub mod knob;
pub mod section;
#[cfg(test)]
mod tests;

use std::path::Path;

use wapo_core::Objective;
use wapo_core::ObjectiveConfig;
use wapo_core::rl::{EvalConfig, ModelConfig, OptimConfig, RlConfig, Sampling, SftConfig};
use wapo_core::task::text::gsm::{self, GsmConfig};
use wapo_core::task::text::gsm8k::Gsm8kConfig;
use wapo_core::task::text::{TextOptions, arith::ArithConfig, countdown::CountdownConfig};
use wapo_core::task::{self, Task, TaskOptions};
use wapo_core::task::{add::AddConfig, recurrence::RecurrenceConfig, reverse::ReverseConfig, sort::SortConfig};

pub use choices::{AggregationChoice, ArithStyleChoice, Backend, Bins, TaskName};
use knob::check::{any, at_least, finite_nonneg, finite_positive, not_empty, open_unit, probability, some_at_least};
use section::{Leaf, Section, merge_table, section, set_path};

/// The defaults a pretrained model (`model.path`) brings.
const LM_PRESET: &str = include_str!("lm.toml");

use crate::error::{CliError, Result};

section! {
    /// The embedded defaults: the WAPO authors' toy task (read a noisy digit,
    /// then run x <- (3x + 1) mod 10 for six steps) with the wapo objective,
    /// sized so that SFT + RL finish in a few minutes on two CPU cores.
    pub struct TrainConfig {
        /// Run name; outputs go to <out_dir>/<name>/ (empty: <task>-<objective>-seed<seed>)
        name: String = String::new(), "name", plain_dir_name;
        /// Directory holding the run directories
        out_dir: String = "runs".into(), "out-dir";
        /// cpu or wgpu
        backend: Backend = Backend::Cpu, "backend";
        /// Seed of the model initialization and the training RNG (the task has its own seed)
        seed: u64 = 0, "seed";
        /// Checkpoint every N RL steps, and always at the end (0: only at the end)
        checkpoint_every: u64 = 10, "checkpoint-every";
        /// Held-out evaluation every N RL steps, and at the start and end (0: only then)
        eval_every: u64 = 20, "eval-every";
        /// Show progress bars on a terminal (false: one line per evaluation)
        progress: bool = true, "progress";
    }
    sections { task: TaskSection, model: ModelSection, sft: SftSection, rl: RlSection,
               rollout: RolloutSection, objective: ObjectiveSection, eval: EvalSection, compare: CompareSection,
               sweep: SweepSection }
}

section! {
    pub struct TaskSection {
        /// Task: recurrence, add, sort or reverse (toy tasks for a fresh
        /// model); arith, countdown, gsm, gsm8k or jsonl (text tasks for a
        /// pretrained --model; jsonl reads --task-file)
        name: TaskName = TaskName::Recurrence, "task";
        /// Seed of the task's example generator, apart from the run seed so
        /// that runs of several seeds (`wapo compare`) see the same problems
        seed: u64 = 0, "task-seed";
    }
    sections { recurrence: RecurrenceSection, add: AddSection, sort: SortSection, reverse: ReverseSection,
               arith: ArithSection, countdown: CountdownSection, gsm: GsmSection, gsm8k: Gsm8kSection,
               jsonl: JsonlSection }
}

section! {
    pub struct ArithSection {
        /// arith: digits per operand (2..=18)
        digits: usize = 2, "arith-digits";
        /// arith: the operations drawn from, any of + - * ("+-*")
        operations: String = "+".to_string(), "arith-operations";
        /// arith: symbols (23 + 45), words (23 plus 45) or mixed
        style: ArithStyleChoice = ArithStyleChoice::Symbols, "arith-style";
        /// arith: appended to each question (empty: none)
        instruction: String = "Reply with only the number.".to_string(), "arith-instruction";
        /// arith: size of the fixed held-out set
        held_out: usize = 200, "arith-held-out";
        /// arith: reward added when the answer is stated explicitly (0: off)
        format_bonus: f64 = 0.0, "arith-format-bonus", finite_nonneg;
    }
}

section! {
    pub struct CountdownSection {
        /// countdown: fewest numbers given (3..=6)
        min_numbers: usize = 3, "countdown-min-numbers";
        /// countdown: most numbers given (min_numbers..=6)
        max_numbers: usize = 4, "countdown-max-numbers";
        /// countdown: given numbers are drawn from 1..=max_number
        max_number: u32 = 25, "countdown-max-number";
        /// countdown: targets lie in 1..=max_target
        max_target: u32 = 200, "countdown-max-target";
        /// countdown: appended to each question (empty: none)
        instruction: String = "Reply with only the expression.".to_string(), "countdown-instruction";
        /// countdown: size of the fixed held-out set
        held_out: usize = 200, "countdown-held-out";
        /// countdown: reward added for an expression after `Answer:` or alone (0: off)
        format_bonus: f64 = 0.0, "countdown-format-bonus", finite_nonneg;
    }
}

section! {
    pub struct GsmSection {
        /// gsm: appended to each problem (empty: none)
        instruction: String = gsm::INSTRUCTION.to_string(), "gsm-instruction";
        /// gsm: size of the fixed held-out set
        held_out: usize = 200, "gsm-held-out";
        /// gsm: reward added for a number after #### (0: off)
        format_bonus: f64 = 0.0, "gsm-format-bonus", finite_nonneg;
    }
}

section! {
    pub struct Gsm8kSection {
        /// gsm8k: appended to each question (empty: none)
        instruction: String = gsm::INSTRUCTION.to_string(), "gsm8k-instruction";
        /// gsm8k: reward added for a number after #### (0: off)
        format_bonus: f64 = 0.0, "gsm8k-format-bonus", finite_nonneg;
        /// gsm8k: a directory holding train.jsonl and test.jsonl in GSM8K's
        /// format (empty: the copy of data/gsm8k built into the binary). The
        /// test problems are held out; the evaluation reads the first
        /// eval.examples of them (--eval-examples 1319: all of GSM8K's)
        dir: String = String::new(), "gsm8k-dir";
    }
}

section! {
    pub struct JsonlSection {
        /// jsonl: the task file, one {"prompt": ..., "answer": ...} object per line
        file: String = String::new(), "task-file";
        /// jsonl: the verifier: exact, numeric or regex:PATTERN
        verifier: String = "numeric".to_string(), "verifier";
        /// jsonl: the held-out share of the distinct prompts, in (0, 1)
        held_out: f64 = 0.1, "held-out", open_unit;
    }
}

section! {
    pub struct RecurrenceSection {
        /// recurrence: modulus p (2..=64)
        p: u32 = 10, "recurrence-p";
        /// recurrence: number of steps n (the completion is x0..xn)
        n: usize = 6, "recurrence-n";
        /// recurrence: multiplier a of x <- (a x + b) mod p
        a: u32 = 3, "recurrence-a";
        /// recurrence: increment b of x <- (a x + b) mod p
        b: u32 = 1, "recurrence-b";
        /// recurrence: std of the Gaussian pixel noise (intensities in [0, 1])
        noise: f64 = 0.15, "recurrence-noise", finite_nonneg;
        /// recurrence: probability of a random pixel
        flip_prob: f64 = 0.02, "recurrence-flip-prob", probability;
        /// recurrence: reward the fraction of correct tokens
        partial_credit: bool = false, "recurrence-partial-credit";
    }
}

section! {
    pub struct AddSection {
        /// add: digits per operand (2..=18)
        digits: usize = 3, "add-digits";
        /// add: reward the fraction of correct digits
        partial_credit: bool = false, "add-partial-credit";
    }
}

section! {
    pub struct SortSection {
        /// sort: number of digits (3..=64)
        len: usize = 6, "sort-len";
        /// sort: reward the fraction of correct positions
        partial_credit: bool = false, "sort-partial-credit";
    }
}

section! {
    pub struct ReverseSection {
        /// reverse: string length (1..=64)
        len: usize = 6, "reverse-len";
        /// reverse: number of letters (2..=26)
        alphabet: u32 = 8, "reverse-alphabet";
        /// reverse: reward the fraction of correct positions
        partial_credit: bool = false, "reverse-partial-credit";
    }
}

section! {
    pub struct ModelSection {
        /// Model width C
        channels: usize = 64, "channels";
        /// Number of blocks L
        layers: usize = 2, "layers";
        /// Attention heads H (must divide C)
        heads: usize = 4, "heads";
        /// MLP hidden width
        mlp: usize = 128, "mlp";
        /// A pretrained model: a Hugging Face directory or a .gguf file
        /// (unset: a fresh model of the shape above)
        path: Option<String> = None, "model", model_path;
    }
}

section! {
    pub struct SftSection {
        /// SFT examples per step
        batch: usize = 32, "sft-batch";
        /// SFT step cap
        max_steps: u64 = 400, "sft-steps";
        /// Stop SFT at this held-out greedy accuracy
        target_accuracy: f64 = 0.4, "sft-target-accuracy";
        /// SFT held-out check every N steps
        eval_every: u64 = 25, "sft-eval-every";
        /// Held-out examples in the SFT check
        eval_examples: usize = 256, "sft-eval-examples", at_least(1);
        /// SFT learning rate
        lr: f64 = 2e-3, "sft-lr", finite_nonneg;
    }
}

section! {
    pub struct RlSection {
        /// RL steps
        steps: u64 = 80, "rl-steps";
        /// Prompts per RL step (B)
        prompts: usize = 32, "prompts";
        /// Completions per prompt (G)
        group: usize = 8, "group";
        /// Passes over each RL batch
        epochs: usize = 2, "epochs";
        /// Optimizer steps per pass
        minibatches: usize = 2, "minibatches";
        /// Parts each minibatch is processed in, their gradients summed into
        /// its one optimizer step (gradient accumulation, for memory; the
        /// update does not depend on it)
        micro_batches: usize = 1, "micro-batches", at_least(1);
        /// RL learning rate
        lr: f64 = 3e-4, "lr", finite_nonneg;
        /// Global gradient-norm clip (0: off; SFT uses it too)
        grad_clip: f64 = 1.0, "grad-clip", finite_nonneg;
        /// AdamW weight decay (SFT uses it too)
        weight_decay: f64 = 0.0, "weight-decay", finite_nonneg;
        /// Measure the entropy change of each update (one extra forward)
        measure_entropy: bool = true, "measure-entropy";
        /// Stop the run after this many updates in a row were skipped for a
        /// NaN or infinite loss, gradient or parameter (SFT uses it too)
        max_skipped_updates: u64 = 3, "max-skipped-updates", at_least(1);
    }
}

section! {
    pub struct RolloutSection {
        /// Tokens generated per completion (unset: the task's completion length)
        max_new_tokens: Option<usize> = None, "max-new-tokens", some_at_least(1);
        /// Nucleus sampling: keep the smallest set of tokens whose probability
        /// reaches top_p, in (0, 1] (1: off)
        top_p: f64 = 1.0, "top-p", open_unit;
        /// Sample among the k most likely tokens only (0: off)
        top_k: usize = 0, "top-k", any;
        /// Wrap prompts in the model's chat template
        chat: bool = false, "chat";
    }
}

section! {
    pub struct ObjectiveSection {
        /// Objective: wapo, grpo, dr_grpo, dapo, dr_dapo, dr_dapo_seq, gspo, raft, raft++
        name: Objective = Objective::Wapo, "objective";
        /// Clip ε (grpo, dr_grpo, gspo, raft++, wapo)
        clip_eps: f64 = 0.2, "clip-eps";
        /// Lower clip bound (dapo family)
        clip_low: f64 = 0.8, "clip-low";
        /// Upper clip bound (dapo family)
        clip_high: f64 = 1.28, "clip-high";
        /// Keep the importance ratio (false: plain REINFORCE)
        importance_sampling: bool = true, "importance-sampling";
        /// default, seq, group or global
        aggregation: AggregationChoice = AggregationChoice::Default, "aggregation";
        /// Renormalize weights over kept tokens
        normalize_by_kept_tokens: bool = false, "normalize-by-kept-tokens";
        /// Keep only these token bins (comma-separated pos_peak, valley, neg, ...; empty: all)
        include_bins: Bins = Bins::default(), "include-bins";
        /// Drop these token bins (comma-separated)
        exclude_bins: Bins = Bins::default(), "exclude-bins";
        /// Also drop every sequence with A ≥ 0
        mask_positive_advantages: bool = false, "mask-positive-advantages";
        /// Sampling temperature of the rollouts (and τ of the objective)
        temperature: f64 = 1.0, "temperature";
    }
}

section! {
    pub struct EvalSection {
        /// Held-out examples per evaluation
        examples: usize = 256, "eval-examples", at_least(1);
        /// Samples per held-out prompt, n: pass@k for k ≤ n, mean@n, maj@n (0: greedy only)
        k: usize = 8, "samples";
        /// Sampling temperature of pass@k
        temperature: f64 = 1.0, "eval-temperature", finite_positive;
        /// Prompts per evaluation batch
        batch: usize = 64, "eval-batch", at_least(1);
    }
}

section! {
    pub struct CompareSection {
        /// compare, sweep: objectives (comma-separated)
        objectives: Vec<Objective> = vec![Objective::Wapo, Objective::Grpo, Objective::DrGrpo, Objective::Dapo, Objective::Gspo],
            "objectives", not_empty;
        /// compare, sweep: seeds (comma-separated)
        seeds: Vec<u64> = vec![0], "seeds", not_empty;
        /// compare, sweep: a run collapses when its rollout entropy falls below
        /// this fraction of that of its first RL step (docs/SWEEP.md) ...
        entropy_low_ratio: f64 = 0.2, "entropy-low-ratio", probability;
        /// compare, sweep: ... or rises above this multiple of it ...
        entropy_high_ratio: f64 = 3.0, "entropy-high-ratio", at_least(1.0);
        /// compare, sweep: ... or its held-out greedy exact match falls more
        /// than this below its best so far, or a value turns NaN or infinite
        reward_drop: f64 = 0.3, "reward-drop", at_least(0.0);
    }
}

section! {
    pub struct SweepSection {
        /// sweep: RL learning rates (comma-separated; empty: rl.lr alone);
        /// `wapo sweep --lr a,b` sets this list
        lr: Vec<f64> = Vec::new(), "sweep-lr";
        /// sweep: clip ε values (empty: objective.clip_eps alone; `wapo sweep --clip-eps`)
        clip_eps: Vec<f64> = Vec::new(), "sweep-clip-eps";
        /// sweep: passes over each RL batch (empty: rl.epochs alone; `wapo sweep --epochs`)
        epochs: Vec<usize> = Vec::new(), "sweep-epochs";
        /// sweep: rollout temperatures (empty: objective.temperature alone;
        /// `wapo sweep --temperature`)
        temperature: Vec<f64> = Vec::new(), "sweep-temperature";
    }
}

#[allow(clippy::ptr_arg, reason = "a check takes the knob's own type")]
fn plain_dir_name(name: &String) -> std::result::Result<(), String> {
    if name.contains(['/', '\\']) || name.starts_with('.') {
        return Err("must be a plain directory name".into());
    }
    Ok(())
}

fn model_path(path: &Option<String>) -> std::result::Result<(), String> {
    let Some(p) = path else { return Ok(()) };
    let p = Path::new(p);
    if p.is_dir() || (p.is_file() && p.extension().is_some_and(|e| e == "gguf")) {
        Ok(())
    } else if !p.exists() {
        Err(format!("{} does not exist", p.display()))
    } else {
        Err(format!("{} is neither a directory nor a .gguf file", p.display()))
    }
}

impl TrainConfig {
    /// Every knob, with its dotted path, flag and doc.
    pub fn knobs() -> Vec<Leaf> {
        let mut out = Vec::new();
        TrainConfig::default().leaves("", &mut out);
        out
    }

    /// Defaults, then `file` (if any), then `overrides` (config path, raw value).
    pub fn resolve(file: Option<&Path>, overrides: &[(String, String)]) -> Result<Self> {
        let mut cfg = TrainConfig::default();
        let table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(CliError::io(path))?;
                Some(toml::from_str::<toml::Table>(&text).map_err(|e| CliError::format(path, e.to_string()))?)
            }
            None => None,
        };
        // A pretrained model brings its own defaults, under the file and flags.
        let file_model = table.as_ref().and_then(|t| t.get("model")?.get("path")).is_some();
        if file_model || overrides.iter().any(|(p, _)| p == "model.path") {
            let preset: toml::Table =
                toml::from_str(LM_PRESET).map_err(|e| CliError::config("lm preset", e.to_string()))?;
            merge_table(&mut cfg, &preset, "")?;
        }
        if let Some(t) = &table {
            merge_table(&mut cfg, t, "")?;
        }
        cfg.with_overrides(overrides)
    }

    /// `self`, then `overrides`.
    pub fn with_overrides(&self, overrides: &[(String, String)]) -> Result<Self> {
        let mut cfg = self.clone();
        for (path, raw) in overrides {
            set_path(&mut cfg, path, raw)?;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads a resolved config (e.g. `runs/<name>/config.toml`); a key it
    /// lacks keeps its default, so configs of older runs still load.
    pub fn load(path: &Path) -> Result<Self> {
        let mut cfg = TrainConfig::default();
        cfg.merge_file(path)?;
        cfg.validate().map_err(|e| match e {
            CliError::Config { field, reason } => CliError::format(path, format!("`{field}`: {reason}")),
            other => other,
        })?;
        Ok(cfg)
    }

    fn merge_file(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path).map_err(CliError::io(path))?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| CliError::format(path, e.to_string()))?;
        merge_table(self, &table, "")
    }

    /// The config as TOML, every knob with its doc and flag as a comment.
    pub fn to_toml(&self) -> Result<String> {
        let mut out = String::new();
        for line in DOC {
            out.push_str(&format!("#{line}\n"));
        }
        out.push('\n');
        self.write_toml("", &mut out);
        Ok(out)
    }

    /// The run name, derived when empty.
    pub fn run_name(&self) -> String {
        if self.name.is_empty() {
            format!("{}-{}-seed{}", self.task.name, self.objective.name, self.seed)
        } else {
            self.name.clone()
        }
    }

    /// Every knob's own check, then what spans several knobs or is checked
    /// by the core.
    pub fn validate(&self) -> Result<()> {
        self.check("")?;
        let bad = |field: &str, reason: &str| Err(CliError::config(field, reason));
        if self.rl.steps > 0 && self.rl.prompts == 0 {
            return bad("rl.prompts", "must be ≥ 1");
        }
        // The completion length L_max the objective and the rollouts use: a
        // pretrained model's is `rollout.max_new_tokens`, a toy task's its own.
        let max_seq_len = if self.model.path.is_some() {
            if !self.task.name.is_text() {
                return bad("task.name", "a pretrained model takes a text task: arith, countdown, gsm, gsm8k or jsonl");
            }
            self.max_new_tokens()
        } else {
            let task = self.build_task()?;
            self.model_config(task.as_ref()).validate()?;
            task.completion_len()
        };
        self.sft_config().validate()?;
        let objective = self.objective_for(max_seq_len);
        objective.validate().map_err(|e| CliError::from(e).under("objective"))?;
        if self.rl.steps > 0 {
            self.rl_for(max_seq_len).validate()?;
        }
        Ok(())
    }

    /// Tokens generated per completion of a pretrained model (32 unless set).
    pub fn max_new_tokens(&self) -> usize {
        self.rollout.max_new_tokens.unwrap_or(32)
    }

    pub fn task_options(&self) -> TaskOptions {
        let t = &self.task;
        let r = &t.recurrence;
        TaskOptions {
            recurrence: RecurrenceConfig {
                p: r.p,
                n: r.n,
                a: r.a,
                b: r.b,
                noise: r.noise,
                flip_prob: r.flip_prob,
                partial_credit: r.partial_credit,
            },
            add: AddConfig { digits: t.add.digits, partial_credit: t.add.partial_credit },
            sort: SortConfig { len: t.sort.len, partial_credit: t.sort.partial_credit },
            reverse: ReverseConfig {
                len: t.reverse.len,
                alphabet: t.reverse.alphabet,
                partial_credit: t.reverse.partial_credit,
            },
        }
    }

    /// The generated text tasks' options (`[task.arith]`, `[task.countdown]`, `[task.gsm]`).
    pub fn text_options(&self) -> TextOptions {
        let (a, c, g) = (&self.task.arith, &self.task.countdown, &self.task.gsm);
        TextOptions {
            arith: ArithConfig {
                digits: a.digits,
                operations: a.operations.clone(),
                style: a.style.style(),
                instruction: a.instruction.clone(),
                held_out: a.held_out,
                format_bonus: a.format_bonus,
            },
            countdown: CountdownConfig {
                min_numbers: c.min_numbers,
                max_numbers: c.max_numbers,
                max_number: c.max_number,
                max_target: c.max_target,
                instruction: c.instruction.clone(),
                held_out: c.held_out,
                format_bonus: c.format_bonus,
            },
            gsm: GsmConfig { instruction: g.instruction.clone(), held_out: g.held_out, format_bonus: g.format_bonus },
        }
    }

    /// The gsm8k task's options (`[task.gsm8k]`; its `dir` is read by the loader).
    pub fn gsm8k_config(&self) -> Gsm8kConfig {
        let g = &self.task.gsm8k;
        Gsm8kConfig { instruction: g.instruction.clone(), format_bonus: g.format_bonus }
    }

    pub fn build_task(&self) -> Result<Box<dyn Task>> {
        if self.task.name.is_text() {
            return Err(CliError::config(
                "task.name",
                format!("`{}` is a text task: it needs a pretrained model (--model)", self.task.name.as_str()),
            ));
        }
        task::by_name_with(self.task.name.as_str(), self.task.seed, &self.task_options())
            .map_err(|e| CliError::from(e).under("task"))
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

    /// The objective with L_max = `max_seq_len`, the configured completion length.
    fn objective_for(&self, max_seq_len: usize) -> ObjectiveConfig {
        let o = &self.objective;
        let mut cfg = ObjectiveConfig::new(o.name, max_seq_len);
        if o.name.needs_clip_eps() {
            cfg.clip_eps = Some(o.clip_eps);
        }
        cfg.clip_low = o.clip_low;
        cfg.clip_high = o.clip_high;
        cfg.importance_sampling = o.importance_sampling;
        cfg.aggregation = o.aggregation.level();
        cfg.normalize_by_kept_tokens = o.normalize_by_kept_tokens;
        cfg.include_bins = o.include_bins.spec();
        cfg.exclude_bins = o.exclude_bins.spec();
        cfg.mask_positive_advantages = o.mask_positive_advantages;
        cfg.temperature = o.temperature;
        cfg
    }

    pub fn rl_config(&self, task: &dyn Task) -> RlConfig {
        self.rl_for(task.completion_len())
    }

    fn rl_for(&self, max_seq_len: usize) -> RlConfig {
        RlConfig {
            prompts: self.rl.prompts,
            group: self.rl.group,
            epochs: self.rl.epochs,
            minibatches: self.rl.minibatches,
            micro_batches: self.rl.micro_batches,
            objective: self.objective_for(max_seq_len),
            optim: self.optim(self.rl.lr),
            measure_entropy: self.rl.measure_entropy,
            sampling: Sampling { top_k: self.rollout.top_k, top_p: self.rollout.top_p, stop: Vec::new() },
        }
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

/// The header of the written TOML.
const DOC: &[&str] = &[
    " The config of `wapo train`, `eval`, `compare`, `sweep` and `taxonomy`.",
    " Every key has the flag named beside its doc; flags override a --config",
    " file, which overrides the embedded defaults.",
];
