//! The generic loop on a tiny CPU model: an RL step runs with every metric
//! finite, is deterministic in its seed, and the SFT warm start and the
//! evaluation run.

use wapo_benches::ShapeTask;
use wapo_core::objective::{Objective, ObjectiveConfig};
use wapo_core::rl::*;
use wapo_cpu::gpt::Gpt;

fn task() -> ShapeTask {
    ShapeTask { prompt_len: 6, completion_len: 3, vocab: 5 }
}

fn model() -> Gpt {
    Gpt::new(ModelConfig::gpt(5, 9, 16, 2, 2, 32), 0).unwrap()
}

fn rl_cfg(objective: Objective) -> RlConfig {
    RlConfig {
        prompts: 4,
        group: 4,
        epochs: 2,
        minibatches: 2,
        objective: ObjectiveConfig::new(objective, 3),
        optim: OptimConfig { lr: 1e-2, ..OptimConfig::default() },
        measure_entropy: true,
    }
}

#[test]
fn rl_step_runs_with_finite_metrics_and_is_deterministic() {
    for objective in [Objective::Wapo, Objective::Grpo, Objective::Gspo] {
        let run = || {
            let mut p = model();
            let mut s = TrainState::new(3);
            let m1 = rl_step(&mut p, &task(), &rl_cfg(objective), &mut s, None).unwrap();
            let m2 = rl_step(&mut p, &task(), &rl_cfg(objective), &mut s, None).unwrap();
            (m1, m2, p.raw_parameters().0.to_vec())
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

#[test]
fn warm_start_and_evaluate() {
    let mut p = model();
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
    let m = evaluate(&mut p, &task(), &eval).unwrap();
    let pass = metric(&m, "eval/pass@k").unwrap();
    let greedy = metric(&m, "eval/greedy_exact").unwrap();
    assert!((0.0..=1.0).contains(&pass) && (0.0..=1.0).contains(&greedy));
    // Evaluation has its own RNG: the same evaluation twice gives the same numbers.
    assert_eq!(m, evaluate(&mut p, &task(), &eval).unwrap());
    assert!(metric(&m, "eval/entropy_mean").unwrap() > 0.0);
}

/// The same RL step with the logits handed out as `CpuTensor` (the backend's
/// fused objective) and as the host reference tensor: same rollouts, and the
/// losses and updated weights agree to f32 rounding.
#[test]
fn rl_step_on_cpu_tensor_matches_host_tensor() {
    let cfg = ModelConfig::gpt(5, 9, 16, 2, 2, 32);
    let mut host: Gpt = Gpt::new(cfg, 0).unwrap();
    let mut fused: Gpt<wapo_cpu::CpuTensor> = Gpt::new(cfg, 0).unwrap();
    let (mut sh, mut sf) = (TrainState::new(4), TrainState::new(4));
    let rl = RlConfig { epochs: 1, minibatches: 1, ..rl_cfg(Objective::Wapo) };
    let mh = rl_step(&mut host, &task(), &rl, &mut sh, None).unwrap();
    let mf = rl_step(&mut fused, &task(), &rl, &mut sf, None).unwrap();
    assert_eq!(metric(&mh, "rollout/reward_mean"), metric(&mf, "rollout/reward_mean"));
    let (lh, lf) = (metric(&mh, "objective/loss").unwrap(), metric(&mf, "objective/loss").unwrap());
    assert!((lh - lf).abs() <= 1e-5 * (1.0 + lh.abs()), "{lh} vs {lf}");
    let diff =
        host.raw_parameters().0.iter().zip(fused.raw_parameters().0).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(diff < 1e-5, "parameters differ by {diff}");
    let init: Gpt = Gpt::new(cfg, 0).unwrap();
    assert_ne!(init.raw_parameters().0, host.raw_parameters().0, "the step must move the weights");
}
