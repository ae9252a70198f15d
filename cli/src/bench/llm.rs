//! `wapo bench llm --model M`: a pretrained model's two costs in an RL step
//! on the CPU backend. Generation: B prompts × G samples with a KV cache (the
//! G samples share their prompt's cache), sampling at τ = 1, tokens/s.
//! Training: one forward over the B·G prompt+completion sequences (the
//! prompt computed once per group; the LM head in row chunks, so the logits
//! never exist at once), the WAPO objective on the completion tokens'
//! log-probs, the backward and an AdamW step. Median of `--reps` after a
//! warm-up, and the process's peak memory.

use std::time::Instant;

use clap::Args;
use wapo_core::advantage::Groups;
use wapo_core::host::HostTensor;
use wapo_core::objective::{TokenBatch, token_objective, wapo};
use wapo_core::rl::{OptimConfig, Policy, Prompts, Sampling, TrainState};
use wapo_core::{Shape, Tensor};

use crate::config::Backend;
use crate::config::knob::Knob;
use crate::error::{CliError, Result};
use crate::llm::ModelArg;

#[derive(Args, Debug)]
pub struct LlmBenchArgs {
    #[command(flatten)]
    pub model: ModelArg,
    /// B, prompts.
    #[arg(long, default_value_t = 8)]
    pub prompts: usize,
    /// G, samples per prompt.
    #[arg(long, default_value_t = 8)]
    pub group: usize,
    /// Prompt tokens.
    #[arg(long, default_value_t = 48)]
    pub prompt_len: usize,
    /// Generated tokens per sample.
    #[arg(long, default_value_t = 64)]
    pub new_tokens: usize,
    /// Timed repetitions after one warm-up.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// cpu or wgpu.
    #[arg(long, default_value = "cpu")]
    pub backend: String,
}

pub fn run(args: &LlmBenchArgs) -> Result<()> {
    for (v, name) in [(args.prompts, "prompts"), (args.group, "group"), (args.prompt_len, "prompt-len")] {
        if v == 0 {
            return Err(CliError::config(name, "must be ≥ 1"));
        }
    }
    if args.new_tokens < 2 || args.reps == 0 {
        return Err(CliError::config("new-tokens", "must be ≥ 2 (and --reps ≥ 1)"));
    }
    let backend = <Backend as Knob>::from_flag(&args.backend).ok_or_else(|| {
        CliError::config("backend", format!("expected {}, got `{}`", Backend::expected(), args.backend))
    })?;
    with_pretrained!(backend, &args.model.model, |policy, meta| {
        let _ = meta;
        let mut policy = policy;
        measure(&mut policy, args, backend)
    })
}

/// Times generation and the training step of `policy`, median of `args.reps`.
fn measure<P: Policy>(policy: &mut P, args: &LlmBenchArgs, backend: Backend) -> Result<()> {
    let cfg = *policy.config();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "model {}: {} layers, C {}, H {}/{}, V {}; backend {backend}, {threads} CPU threads",
        args.model.model.display(),
        cfg.layers,
        cfg.channels,
        cfg.heads,
        cfg.kv_heads,
        cfg.vocab
    );
    let (b, g, p, t) = (args.prompts, args.group, args.prompt_len, args.new_tokens);
    let n = b * g;
    let mut state = TrainState::new(0);
    // Token ids drawn uniformly: the cost does not depend on the text.
    let prompts: Vec<u32> = state.indices(b * p).iter().map(|&i| (i % cfg.vocab as u64) as u32).collect();
    let view = Prompts { tokens: &prompts, batch: b, len: p, pad: &[] };
    let mut gen_s = Vec::new();
    let mut train_s = Vec::new();
    let optim = OptimConfig { lr: 1e-6, ..OptimConfig::default() };
    let objective = wapo::config(0.2, t);
    let groups = Groups::from_ids(&(), &(0..n).map(|i| (i / g) as i64).collect::<Vec<_>>())?;
    for rep in 0..=args.reps {
        let uniforms = state.uniforms(n * t);
        let t0 = Instant::now();
        let rollout = policy.generate(view, g, t, 1.0, &uniforms, &Sampling::default())?;
        let t1 = Instant::now();
        let stats = policy.forward_stats(view, g, &rollout.tokens, wapo_core::rl::Processing::temperature(1.0))?;
        let wide = |x: &[f32]| x.iter().map(|&v| v as f64).collect::<Vec<f64>>();
        let up = |x: &[f64], s| HostTensor::<f64>::upload(&(), x, s);
        let rewards: Vec<f64> = (0..n).map(|i| (i % 2) as f64).collect();
        let out = token_objective(
            &objective,
            &TokenBatch {
                groups: &groups,
                rewards: &up(&rewards, Shape::d1(n))?,
                mask: &HostTensor::full(&(), Shape::d2(n, t), 1.0)?,
                logprobs: &up(&wide(&stats.logprobs), Shape::d2(n, t))?,
                old_logprobs: &up(&wide(&rollout.logprobs), Shape::d2(n, t))?,
                sum_p_sq: Some(&up(&wide(&stats.sum_p_sq), Shape::d2(n, t))?),
            },
        )?;
        let mut grad = vec![0.0f64; n * t];
        out.grad_logprobs.download(&mut grad)?;
        let grad: Vec<f32> = grad.iter().map(|&x| x as f32).collect();
        policy.zero_grad();
        policy.backward_logprobs(view, g, &rollout.tokens, &grad, wapo_core::rl::Processing::temperature(1.0))?;
        policy.optimizer_step(&optim)?;
        let t2 = Instant::now();
        if rep > 0 {
            gen_s.push((t1 - t0).as_secs_f64());
            train_s.push((t2 - t1).as_secs_f64());
        }
    }
    let (gen_t, train) = (median(&mut gen_s), median(&mut train_s));
    println!(
        "generation, B={b} × G={g}, {p}-token prompts, {t} new tokens: {gen_t:.2} s ({:.0} tokens/s)",
        (n * t) as f64 / gen_t
    );
    println!("training forward + objective + backward + AdamW, {n} sequences of {} tokens: {train:.2} s", p + t);
    println!("one RL step (generation + training): {:.2} s", gen_t + train);
    println!("peak memory: {}", super::memory::peak_rss_text());
    Ok(())
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}
