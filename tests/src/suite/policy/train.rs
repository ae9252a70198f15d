//! The generic loop on a tiny model: an RL step runs with every metric
//! finite and is deterministic in its seed; the SFT warm start and the
//! evaluation run; and an optimizer step on a fixed batch moves every
//! parameter tensor and lowers that batch's loss (SFT and each RL
//! objective), so a backward or optimizer that did nothing would fail.

use wapo_benches::ShapeTask;
use wapo_core::Shape;
use wapo_core::advantage::Groups;
use wapo_core::host::HostTensor;
use wapo_core::objective::{Objective, ObjectiveConfig, TokenBatch, token_objective};
use wapo_core::rl::*;

use super::{Policies, flat_parameters, layout};

pub fn task() -> ShapeTask {
    ShapeTask { prompt_len: 6, completion_len: 3, vocab: 5 }
}

pub fn model_config() -> ModelConfig {
    ModelConfig::gpt(5, 9, 16, 2, 2, 32)
}

pub fn rl_config(objective: Objective) -> RlConfig {
    RlConfig {
        prompts: 4,
        group: 4,
        epochs: 2,
        minibatches: 2,
        micro_batches: 1,
        objective: ObjectiveConfig::new(objective, 3),
        optim: OptimConfig { lr: 1e-2, ..OptimConfig::default() },
        measure_entropy: true,
        sampling: Default::default(),
    }
}

pub fn rl_step_body<M: Policies>(m: &M) {
    for objective in [Objective::Wapo, Objective::Grpo, Objective::Gspo] {
        update_lowers_rl_loss(m, objective);
        let run = || {
            let mut p = m.make(model_config(), 0).unwrap();
            let mut s = TrainState::new(3);
            let m1 = rl_step(&mut p, &task(), &rl_config(objective), &mut s, None).unwrap();
            let m2 = rl_step(&mut p, &task(), &rl_config(objective), &mut s, None).unwrap();
            (m1, m2, flat_parameters(&p))
        };
        let (a1, a2, pa) = run();
        let (b1, b2, pb) = run();
        assert_eq!(a1, b1);
        assert_eq!(a2, b2);
        assert_eq!(pa, pb);
        assert!(pa.iter().all(|x| x.is_finite()));
        for (k, v) in a1.iter().chain(&a2) {
            assert!(v.is_finite(), "{objective}: {k} = {v}");
        }
        for k in [
            "rollout/reward_mean",
            "objective/loss",
            "objective/clipped_fraction",
            "entropy/mean",
            "bins/pos_peak_count",
            "bins/neg_valley_dH_pred",
            "entropy/delta_measured",
            "entropy/delta_pred",
        ] {
            assert!(metric(&a1, k).is_some(), "missing {k}");
        }
        // 16 sequences × 3 tokens, each in exactly one bin.
        let counted: f64 = ["pos_peak", "pos_valley", "neg_peak", "neg_valley"]
            .iter()
            .map(|b| metric(&a1, &format!("bins/{b}_count")).unwrap())
            .sum();
        assert_eq!(counted, 48.0);
        let r = metric(&a1, "rollout/reward_mean").unwrap();
        assert!((0.0..=1.0).contains(&r));
    }
}

pub fn warm_start_body<M: Policies>(m: &M) {
    update_lowers_sft_loss(m);
    let mut p = m.make(model_config(), 0).unwrap();
    let mut s = TrainState::new(1);
    let sft = SftConfig {
        batch: 8,
        max_steps: 6,
        target_accuracy: 2.0, // unreachable: runs to the cap
        eval_every: 3,
        eval_examples: 4,
        optim: OptimConfig { lr: 1e-2, ..OptimConfig::default() },
    };
    let mut seen = 0;
    let last = warm_start(&mut p, &task(), &sft, &mut s, None, &mut |m| {
        seen += 1;
        assert!(metric(m, "sft/loss").unwrap().is_finite());
    })
    .unwrap();
    assert_eq!(seen, 6);
    assert_eq!(s.sft_steps, 6);
    assert!(metric(&last, "eval/greedy_exact").is_some());
    let eval = EvalConfig { examples: 5, k: 3, temperature: 1.0, seed: 0, batch: 2 };
    let e = evaluate(&mut p, &task(), &eval).unwrap();
    let pass = metric(&e, "eval/pass@k").unwrap();
    let greedy = metric(&e, "eval/greedy_exact").unwrap();
    assert!((0.0..=1.0).contains(&pass) && (0.0..=1.0).contains(&greedy));
    // Evaluation has its own RNG: the same evaluation twice gives the same numbers.
    assert_eq!(e, evaluate(&mut p, &task(), &eval).unwrap());
    assert!(metric(&e, "eval/entropy_mean").unwrap() > 0.0);
}

/// B prompts of the task's training split, flat (B, P).
fn fixed_prompts(b: usize) -> (Vec<u32>, Vec<Example>) {
    let examples: Vec<Example> = (0..b as u64).map(|i| task().example(Split::Train, i)).collect();
    (examples.iter().flat_map(|e| e.prompt.clone()).collect(), examples)
}

/// Every parameter tensor of `after` differs from `before` somewhere.
fn assert_every_tensor_moved(what: &str, before: &[f32], after: &[f32]) {
    for e in &layout(&model_config()).entries {
        let moved = e.range.clone().map(|i| (after[i] - before[i]).abs()).fold(0.0f32, f32::max);
        assert!(moved > 0.0, "{what}: {} did not move in an optimizer step", e.name);
    }
}

/// Three SFT steps on one fixed batch: each moves every tensor, and the
/// batch's cross-entropy goes down (Adam's first steps are ≈ lr·sign(g),
/// a descent direction).
fn update_lowers_sft_loss<M: Policies>(m: &M) {
    let mut p = m.make(model_config(), 0).unwrap();
    let b = 8;
    let (prompts, examples) = fixed_prompts(b);
    let gold: Vec<u32> = examples.iter().flat_map(|e| e.gold.clone()).collect();
    let lengths = vec![task().completion_len(); b];
    let view = Prompts { tokens: &prompts, batch: b, len: task().prompt_len(), pad: &[] };
    let optim = OptimConfig { lr: 1e-3, ..OptimConfig::default() };
    let mut losses = Vec::new();
    for _ in 0..3 {
        p.zero_grad();
        losses.push(p.sft(view, &gold, &lengths).unwrap());
        let before = flat_parameters(&p);
        p.optimizer_step(&optim).unwrap();
        assert_every_tensor_moved("sft", &before, &flat_parameters(&p));
    }
    p.zero_grad();
    losses.push(p.sft(view, &gold, &lengths).unwrap());
    println!("sft loss on a fixed batch: {losses:?}");
    for w in losses.windows(2) {
        assert!(w[1] < w[0], "SFT loss did not go down on a fixed batch: {losses:?}");
    }
}

/// One RL update on a fixed rollout: generate once, give every group a
/// winner and a loser, take one optimizer step with the objective's
/// ∂loss/∂ℓ; every tensor moves and the objective's loss on the same
/// rollout (same behaviour log-probs) goes down.
fn update_lowers_rl_loss<M: Policies>(m: &M, objective: Objective) {
    let mut p = m.make(model_config(), 0).unwrap();
    let (b, g, t) = (4, 4, task().completion_len());
    let (prompts, _) = fixed_prompts(b);
    let view = Prompts { tokens: &prompts, batch: b, len: task().prompt_len(), pad: &[] };
    let uniforms: Vec<f32> = (0..b * g * t).map(|i| ((i * 37 + 11) % 97) as f32 / 97.0).collect();
    let rollout = p.generate(view, g, t, 1.0, &uniforms, &Sampling::default()).unwrap();
    let n = b * g;
    // Rewards 1, 0, 0.5, 0.25 in every group: each group has one winner.
    let rewards: Vec<f64> = (0..n).map(|i| [1.0, 0.0, 0.5, 0.25][i % g]).collect();
    let ids: Vec<i64> = (0..n).map(|i| (i / g) as i64).collect();
    let cfg = ObjectiveConfig::new(objective, t);
    let processing = Processing::temperature(1.0);
    let host = |x: &[f64], s: Shape| HostTensor::<f64>::from_f64(x, s).unwrap();
    let groups = Groups::<HostTensor<f64>>::from_ids(&(), &ids).unwrap();
    let rewards = host(&rewards, Shape::d1(n));
    let mask = host(&vec![1.0; n * t], Shape::d2(n, t));
    let old: Vec<f64> = rollout.logprobs.iter().map(|&x| f64::from(x)).collect();
    let old = host(&old, Shape::d2(n, t));
    let loss_and_grad = |p: &mut M::P| {
        let stats = p.forward_stats(view, g, &rollout.tokens, processing).unwrap();
        let lp: Vec<f64> = stats.logprobs.iter().map(|&x| f64::from(x)).collect();
        let sq: Vec<f64> = stats.sum_p_sq.iter().map(|&x| f64::from(x)).collect();
        let (lp, sq) = (host(&lp, Shape::d2(n, t)), host(&sq, Shape::d2(n, t)));
        let batch = TokenBatch {
            groups: &groups,
            rewards: &rewards,
            mask: &mask,
            logprobs: &lp,
            old_logprobs: &old,
            sum_p_sq: Some(&sq),
        };
        let out = token_objective(&cfg, &batch).unwrap();
        let loss = out.loss.data()[0];
        let grad: Vec<f32> = out.grad_logprobs.data().iter().map(|&x| x as f32).collect();
        (loss, grad)
    };
    let (before_loss, grad) = loss_and_grad(&mut p);
    assert!(grad.iter().any(|&x| x != 0.0), "{objective}: the fixed batch has no gradient");
    p.zero_grad();
    p.backward_logprobs(view, g, &rollout.tokens, &grad, processing).unwrap();
    let before = flat_parameters(&p);
    p.optimizer_step(&OptimConfig { lr: 1e-3, ..OptimConfig::default() }).unwrap();
    assert_every_tensor_moved(&format!("{objective}"), &before, &flat_parameters(&p));
    let (after_loss, _) = loss_and_grad(&mut p);
    println!("{objective}: loss on a fixed rollout {before_loss:.6} -> {after_loss:.6}");
    assert!(after_loss < before_loss, "{objective}: one update did not lower the loss ({before_loss} -> {after_loss})");
}
