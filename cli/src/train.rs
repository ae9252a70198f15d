//! `wapo train`: SFT warm start, then RL with the configured objective, with
//! held-out evaluations, checkpoints, `metrics.jsonl` and plots in
//! `runs/<name>/`. `--resume` continues a run from its last checkpoint and
//! repeats the uninterrupted run bit for bit (timings aside).

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use wapo_core::rl::{Metrics, Policy, TrainState, evaluate, metric, rl_step, wall_clock, warm_start_until};
use wapo_core::task::Task;
use wapo_io::checkpoint;

use crate::config::TrainConfig;
use crate::error::{CliError, Result};
use crate::overrides::Overrides;
use crate::plot;
use crate::progress::Progress;
use crate::run_dir::{self, MetricsLog, RunDir, RunLock, record};
use crate::summary::{Table, num};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// TOML config file; flags override it, and it overrides the embedded
    /// defaults (`wapo train --print-config` shows them).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Continue <out-dir>/<name>/ from its last checkpoint with its saved
    /// config (flags still apply, e.g. a larger --rl-steps). Without it, an
    /// existing run directory of the same name is replaced.
    #[arg(long)]
    pub resume: bool,
    /// Print the resolved config as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
    #[command(flatten)]
    pub overrides: Overrides,
}

/// Where a run starts.
#[derive(Clone, Debug)]
pub enum Start {
    /// From a freshly initialized model: SFT, then RL.
    Fresh,
    /// From the run directory's last checkpoint; when it holds none, from
    /// this SFT checkpoint of another run (a group run killed before its
    /// first step), else from scratch.
    Resume(Option<PathBuf>),
    /// RL from an SFT checkpoint (of another run), with this run's seed.
    FromSft(PathBuf),
}

/// What a finished run reports.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub run: RunDir,
    /// Held-out evaluation before RL (after SFT).
    pub before: Metrics,
    /// Held-out evaluation after the last RL step.
    pub after: Metrics,
    pub sft_steps: u64,
    pub rl_steps: u64,
    pub wall_s: f64,
    pub plots: Vec<PathBuf>,
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let mut cfg = TrainConfig::resolve(args.config.as_deref(), &args.overrides.0)?;
    if args.resume {
        let saved = RunDir::new(run_root(&cfg)).config();
        if !saved.exists() {
            return Err(CliError::config("resume", format!("no run to resume: {} does not exist", saved.display())));
        }
        cfg = TrainConfig::load(&saved)?.with_overrides(&args.overrides.0)?;
    }
    if args.print_config {
        print!("{}", cfg.to_toml()?);
        return Ok(());
    }
    let progress = Progress::new(cfg.progress, "");
    let start = if args.resume { Start::Resume(None) } else { Start::Fresh };
    let out = train(&cfg, start, &progress)?;
    print!("{}", report(&cfg, &out));
    Ok(())
}

/// `<out_dir>/<name>`.
pub fn run_root(cfg: &TrainConfig) -> PathBuf {
    Path::new(&cfg.out_dir).join(cfg.run_name())
}

/// Runs `cfg` on its backend.
pub fn train(cfg: &TrainConfig, start: Start, progress: &Progress) -> Result<Outcome> {
    cfg.validate()?;
    if let Some(path) = &cfg.model.path {
        return train_pretrained(Path::new(path), cfg, start, progress);
    }
    let task = cfg.build_task()?;
    with_policy!(cfg, task.as_ref(), |policy| train_with(policy, task.as_ref(), cfg, start, progress, &mut |_| Ok(())))
}

/// A pretrained model on a text task; the fine-tuned model is written as a
/// Hugging Face directory, `<run>/model/`, at the end.
fn train_pretrained(path: &Path, cfg: &TrainConfig, start: Start, progress: &Progress) -> Result<Outcome> {
    with_pretrained!(cfg.backend, path, |policy, meta| {
        let task = crate::llm::task::LmTask::from_config(cfg, meta.tokenizer.clone(), &meta.config)?;
        let dir = RunDir::new(run_root(cfg)).root.join("model");
        let mut export = |params: Vec<wapo_core::rl::Named>| -> Result<()> {
            let m = &meta;
            wapo_io::model::save_hf_parts(&dir, &m.config, &m.architecture, &m.model_type, &params, &m.tokenizer)?;
            progress.line(&format!("fine-tuned model: {}", dir.display()));
            Ok(())
        };
        train_with(policy, &task, cfg, start, progress, &mut export)
    })
}

/// Fresh AdamW moments: RL starts its own optimizer rather than inherit
/// the SFT loss's second-moment estimates.
fn reset_optimizer<P: Policy>(policy: &mut P) -> Result<()> {
    let mut st = policy.optimizer_state()?;
    st.step = 0;
    for m in &mut st.moments {
        m.data.fill(0.0);
    }
    Ok(policy.load_optimizer_state(&st)?)
}

fn save<P: Policy>(path: &Path, policy: &P, state: &TrainState) -> Result<()> {
    checkpoint::save(path, policy, state).map_err(|e| CliError::format(path, e.to_string()))
}

fn load<P: Policy>(path: &Path, policy: &mut P) -> Result<TrainState> {
    checkpoint::load(path, policy).map_err(|e| CliError::format(path, e.to_string()))
}

/// Loads the newest checkpoint of `run` that reads back whole — an RL step,
/// else the SFT one — saying which were passed over and why; `None` when
/// none does (the run restarts).
fn resume<P: Policy>(policy: &mut P, run: &RunDir, progress: &Progress) -> Result<Option<TrainState>> {
    let metrics = run.metrics();
    // A checkpoint that fails half-way through loading may have changed
    // some weights; a restart must begin from the fresh ones.
    let (fresh, fresh_optim) = (policy.parameters()?, policy.optimizer_state()?);
    let passed_over = |path: &Path, e: &CliError| {
        progress.line(&format!("cannot resume from {}: {e}; falling back to an older checkpoint", path.display()));
    };
    for (step, path) in run.step_checkpoints()? {
        let loaded = load(&path, policy).and_then(|state| {
            if state.rl_steps == step {
                Ok(state)
            } else {
                Err(CliError::format(&path, format!("holds RL step {}, its name says {step}", state.rl_steps)))
            }
        });
        match loaded {
            Ok(state) => {
                run_dir::retain_metrics(&metrics, |r| run_dir::phase(r) == "sft" || run_dir::step(r) <= step)?;
                progress.line(&format!("resuming {} at RL step {step}", run.root.display()));
                return Ok(Some(state));
            }
            Err(e) => passed_over(&path, &e),
        }
    }
    let sft = run.sft_checkpoint();
    if sft.exists() {
        match load(&sft, policy) {
            Ok(state) => {
                reset_optimizer(policy)?;
                run_dir::retain_metrics(&metrics, |r| run_dir::phase(r) == "sft")?;
                progress.line(&format!("resuming {} after SFT", run.root.display()));
                return Ok(Some(state));
            }
            Err(e) => passed_over(&sft, &e),
        }
        progress.line(&format!("no checkpoint of {} reads back whole: starting over", run.root.display()));
    }
    policy.load_parameters(&fresh)?;
    policy.load_optimizer_state(&fresh_optim)?;
    Ok(None)
}

/// The error that stops a run whose updates keep turning non-finite.
fn diverged(
    phase: &'static str,
    step: u64,
    state: &TrainState,
    cfg: &TrainConfig,
    last_good: Option<PathBuf>,
) -> CliError {
    let what = state.last_skip.map_or("value", |w| w.name());
    let (lr_key, lr) = if phase == "sft" { ("sft.lr", cfg.sft.lr) } else { ("rl.lr", cfg.rl.lr) };
    let kept = match last_good.filter(|p| p.exists()) {
        Some(p) => format!("the last good checkpoint is {}", p.display()),
        None => "no checkpoint was written".into(),
    };
    CliError::Diverged {
        phase,
        step,
        reason: format!(
            "{} updates in a row were skipped because the {what} turned NaN or infinite \
             (rl.max_skipped_updates = {}); the likely cause is a learning rate too large \
             ({lr_key} = {lr:e}) or no gradient clipping (rl.grad_clip = {}); {kept}",
            state.skipped_in_a_row, cfg.rl.max_skipped_updates, cfg.rl.grad_clip
        ),
    }
}

/// A run whose RL updates were mostly skipped (non-finite, undone) is no
/// RL result, even when too few came in a row to stop it: an error naming
/// the count, after the metrics and plots are written.
fn mostly_skipped(records: &[run_dir::Record], cfg: &TrainConfig, run: &RunDir) -> Result<()> {
    let rl: Vec<_> = records.iter().filter(|r| run_dir::phase(r) == "rl").collect();
    let skipped = rl.iter().filter(|r| r.get("objective/update_skipped").and_then(|v| v.as_f64()) == Some(1.0)).count();
    if rl.is_empty() || 2 * skipped <= rl.len() {
        return Ok(());
    }
    Err(CliError::Diverged {
        phase: "rl",
        step: rl.len() as u64,
        reason: format!(
            "{skipped} of {} updates were skipped because a value turned NaN or infinite, so the run measured \
             no RL effect; the likely cause is a learning rate too large (rl.lr = {:e}) or no gradient \
             clipping (rl.grad_clip = {}); metrics and plots are in {}",
            rl.len(),
            cfg.rl.lr,
            cfg.rl.grad_clip,
            run.root.display()
        ),
    })
}

/// Removes what a previous run of the same name left, but only the files a
/// run writes, so a mistyped `--out-dir` cannot wipe anything else.
fn clear(run: &RunDir) -> Result<()> {
    for f in [run.metrics(), run.config()] {
        if f.exists() {
            std::fs::remove_file(&f).map_err(CliError::io(&f))?;
        }
    }
    for d in [run.checkpoints(), run.plots()] {
        if d.exists() {
            std::fs::remove_dir_all(&d).map_err(CliError::io(&d))?;
        }
    }
    Ok(())
}

fn due(step: u64, every: u64, last: u64) -> bool {
    step == last || (every > 0 && step.is_multiple_of(every))
}

/// The whole run with any backend's policy.
pub fn train_with<P: Policy>(
    mut policy: P,
    task: &dyn Task,
    cfg: &TrainConfig,
    start: Start,
    progress: &Progress,
    export: &mut dyn FnMut(Vec<wapo_core::rl::Named>) -> Result<()>,
) -> Result<Outcome> {
    let t0 = Instant::now();
    let run = RunDir::new(run_root(cfg));
    let (_lock, stale) = RunLock::acquire(&run)?;
    if let Some(pid) = stale {
        progress.line(&format!(
            "{}: took over the lock left by process {pid}, which is no longer running",
            run.lock().display()
        ));
    }
    let metrics = run.metrics();
    // Some(state) once SFT is behind us.
    let mut resumed: Option<TrainState> = None;
    let mut from_sft = None;
    match &start {
        Start::Resume(otherwise) => {
            run.create()?;
            resumed = resume(&mut policy, &run, progress)?;
            if resumed.is_none() {
                // Killed before the first checkpoint: SFT and the start from
                // a shared SFT checkpoint are deterministic, so redo them.
                clear(&run)?;
                run.create()?;
                from_sft = otherwise.as_deref();
            }
        }
        Start::Fresh => {
            clear(&run)?;
            run.create()?;
        }
        Start::FromSft(path) => {
            clear(&run)?;
            run.create()?;
            from_sft = Some(path.as_path());
        }
    }
    if let Some(path) = from_sft {
        let sft = load(path, &mut policy)?;
        reset_optimizer(&mut policy)?;
        let mut state = TrainState::new(cfg.seed);
        state.sft_steps = sft.sft_steps;
        resumed = Some(state);
    }
    run.write_config(&cfg.to_toml()?)?;
    let mut log = MetricsLog::append(&metrics)?;

    let mut state = match resumed {
        Some(s) => s,
        None => {
            let state = sft_phase(&mut policy, task, cfg, &mut log, progress)?;
            if state.skipped_in_a_row >= cfg.rl.max_skipped_updates {
                return Err(diverged("sft", state.sft_steps, &state, cfg, None));
            }
            save(&run.sft_checkpoint(), &policy, &state)?;
            reset_optimizer(&mut policy)?;
            state
        }
    };

    let eval_cfg = cfg.eval_config();
    let steps = cfg.rl.steps;
    let earlier = run_dir::read_metrics(&metrics)?;
    let before = match earlier.iter().find(|r| run_dir::phase(r) == "eval" && run_dir::step(r) == 0) {
        Some(r) => record_metrics(r),
        None => {
            let m = evaluate(&mut policy, task, &eval_cfg)?;
            log.write(&record("eval", 0, &m))?;
            let pass = if cfg.eval.k > 0 {
                format!("  pass@{} {}", cfg.eval.k, num(metric(&m, "eval/pass@k")))
            } else {
                String::new()
            };
            progress.line(&format!("held-out before RL: greedy exact {}{pass}", num(metric(&m, "eval/greedy_exact"))));
            m
        }
    };
    let mut after =
        earlier.iter().rev().find(|r| run_dir::phase(r) == "eval").map_or_else(|| before.clone(), record_metrics);

    let mut last_good = Some(run.latest_step_checkpoint()?.map_or_else(|| run.sft_checkpoint(), |(_, p)| p));
    if state.rl_steps < steps {
        let rl_cfg = cfg.rl_config(task);
        let phase = progress.phase("rl", steps, state.rl_steps);
        while state.rl_steps < steps {
            let m = rl_step(&mut policy, task, &rl_cfg, &mut state, Some(wall_clock))?;
            let s = state.rl_steps;
            log.write(&record("rl", s, &m))?;
            phase.step(s, &m);
            if let Some(what) = state.last_skip {
                phase.note(
                    s,
                    &format!("update skipped: non-finite {} ({} in a row)", what.name(), state.skipped_in_a_row),
                );
                if state.skipped_in_a_row >= cfg.rl.max_skipped_updates {
                    phase.finish();
                    return Err(diverged("rl", s, &state, cfg, last_good.take()));
                }
            }
            if due(s, cfg.eval_every, steps) {
                let e = evaluate(&mut policy, task, &eval_cfg)?;
                log.write(&record("eval", s, &e))?;
                phase.check(s, &e);
                after = e;
            }
            if due(s, cfg.checkpoint_every, steps) {
                save(&run.step_checkpoint(s), &policy, &state)?;
                last_good = Some(run.step_checkpoint(s));
            }
        }
        phase.finish();
    }
    drop(log);
    export(policy.parameters()?)?;
    let records = run_dir::read_metrics(&metrics)?;
    let plots = plot::run_charts(&records, &run.plots())?;
    mostly_skipped(&records, cfg, &run)?;
    Ok(Outcome {
        run,
        before,
        after,
        sft_steps: state.sft_steps,
        rl_steps: state.rl_steps,
        wall_s: t0.elapsed().as_secs_f64(),
        plots,
    })
}

fn sft_phase<P: Policy>(
    policy: &mut P,
    task: &dyn Task,
    cfg: &TrainConfig,
    log: &mut MetricsLog,
    progress: &Progress,
) -> Result<TrainState> {
    let mut state = TrainState::new(cfg.seed);
    let sft_cfg = cfg.sft_config();
    let phase = progress.phase("sft", cfg.sft.max_steps, 0);
    let mut failed: Option<CliError> = None;
    let max_skipped = cfg.rl.max_skipped_updates;
    let last = warm_start_until(policy, task, &sft_cfg, &mut state, Some(wall_clock), &mut |m, st| {
        let step = metric(m, "step/sft").unwrap_or(0.0) as u64;
        if failed.is_none()
            && let Err(e) = log.write(&record("sft", step, m))
        {
            failed = Some(e);
        }
        phase.step(step, m);
        if metric(m, "eval/greedy_exact").is_some() {
            phase.check(step, m);
        }
        if let Some(what) = st.last_skip {
            phase.note(step, &format!("update skipped: non-finite {} ({} in a row)", what.name(), st.skipped_in_a_row));
        }
        st.skipped_in_a_row < max_skipped
    })?;
    phase.finish();
    if let Some(e) = failed {
        return Err(e);
    }
    if let Some(acc) = metric(&last, "eval/greedy_exact") {
        progress.line(&format!(
            "SFT: {} steps, held-out greedy exact {acc:.3} (target {})",
            state.sft_steps, cfg.sft.target_accuracy
        ));
    }
    Ok(state)
}

/// The metrics of a stored record (its `phase` and `step` left out).
pub fn record_metrics(r: &run_dir::Record) -> Metrics {
    r.keys()
        .filter(|k| *k != "phase" && *k != "step")
        .filter_map(|k| Some((k.clone(), run_dir::value(r, k)?)))
        .collect()
}

/// The closing table of `wapo train`.
pub fn report(cfg: &TrainConfig, out: &Outcome) -> String {
    let k = cfg.eval.k;
    // Completions that end at a stop token also report how long they ran.
    let lengths = metric(&out.before, "eval/length_mean").is_some();
    let mut headers = vec![
        "held-out".to_string(),
        "greedy exact".into(),
        format!("pass@{k}"),
        "sampled reward".into(),
        "entropy".into(),
    ];
    if lengths {
        headers.extend(["mean length".into(), "cut at max".into()]);
    }
    let mut t = Table::new(headers);
    let start = if out.sft_steps == 0 { "before RL" } else { "after SFT" };
    for (label, m) in [(start, &out.before), (&*format!("after RL ({})", cfg.objective.name), &out.after)] {
        let mut row = vec![
            label.to_string(),
            num(metric(m, "eval/greedy_exact")),
            num(metric(m, "eval/pass@k")),
            num(metric(m, "eval/reward_mean")),
            num(metric(m, "eval/entropy_mean")),
        ];
        if lengths {
            row.push(metric(m, "eval/length_mean").map_or("-".into(), |l| format!("{l:.1}")));
            row.push(num(metric(m, "eval/truncated_fraction")));
        }
        t.row(row);
    }
    let gain =
        metric(&out.after, "eval/greedy_exact").zip(metric(&out.before, "eval/greedy_exact")).map(|(a, b)| a - b);
    format!(
        "\nrun {}: task {}, {} SFT + {} RL steps, {:.1} s on backend {}, peak memory {}\n\n{t}\nRL gain in held-out greedy exact match: {}\nmetrics: {}\nplots:   {} files in {}\n",
        out.run.root.display(),
        cfg.task.name,
        out.sft_steps,
        out.rl_steps,
        out.wall_s,
        cfg.backend,
        crate::bench::memory::peak_rss_text(),
        gain.map_or("-".into(), |g| format!("{g:+.3}")),
        out.run.metrics().display(),
        out.plots.len(),
        out.run.plots().display(),
    )
}
