//! The generic loop on a tiny model: an RL step runs with every metric
//! finite and is deterministic in its seed; the SFT warm start and the
//! evaluation run.

use wapo_benches::ShapeTask;
use wapo_core::objective::{Objective, ObjectiveConfig};
use wapo_core::rl::*;

use super::{Policies, flat_parameters};

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
