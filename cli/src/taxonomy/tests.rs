use wapo_core::Objective;
use wapo_core::objective::ObjectiveConfig;
use wapo_core::rl::{Example, OptimConfig, Policy, Split, Task, TrainState};

use super::experiment::{self, Optimizer, Setup, Trial};
use super::report;
use super::table_policy::TablePolicy;

/// Reward 1 when the first completion token is even: both signs of
/// advantage in most groups.
struct Parity;

impl Task for Parity {
    fn name(&self) -> &str {
        "parity"
    }
    fn vocab_size(&self) -> usize {
        5
    }
    fn prompt_len(&self) -> usize {
        1
    }
    fn completion_len(&self) -> usize {
        3
    }
    fn example(&self, _: Split, index: u64) -> Example {
        Example { prompt: vec![(index % 5) as u32], gold: vec![0; 3] }
    }
    fn reward(&self, _: &Example, completion: &[u32]) -> f64 {
        f64::from(u8::from(completion[0].is_multiple_of(2)))
    }
    fn render(&self, tokens: &[u32]) -> String {
        format!("{tokens:?}")
    }
}

fn setup(optimizer: Optimizer, lr: f64, tau: f64, batches: usize) -> Setup {
    let mut objective = ObjectiveConfig::new(Objective::DrGrpo, 3);
    objective.temperature = tau;
    Setup { batches, prompts: 4, group: 4, objective, optimizer, optim: OptimConfig { lr, ..OptimConfig::default() } }
}

/// On the table policy an SGD step moves each updated position's logits by
/// −lr·∂loss/∂z, so §7 must match the measured change of every bin on every
/// batch to first order: within 2 % at a step that changes log-probs by
/// ~1e-3 (the O(lr²) remainder), and always with the same sign. At τ = 0.7
/// a coefficient −g/τ in place of −g/τ² would miss by 30 %.
#[test]
fn first_order_prediction_matches_a_small_sgd_step_on_free_logits() {
    let task = Parity;
    let s = setup(Optimizer::Sgd, 0.05, 0.7, 6);
    let mut policy = TablePolicy::new(16, 3, 5, 7);
    let before = policy.parameters().unwrap();
    let trials = experiment::run(&mut policy, &task, &s, &mut TrainState::new(1), &mut |_| {}).unwrap();
    assert_eq!(policy.parameters().unwrap(), before, "the experiment must leave the weights as they were");
    let mut bins_seen = [0; 4];
    for t in &trials {
        bins_seen[t.bin] += 1;
        for (what, p, m) in [("ΔH", t.pred_dentropy, t.meas_dentropy), ("Δℓ", t.pred_dlogp, t.meas_dlogp)] {
            assert!(m.abs() > 1e-5, "{what} too small to check: {t:?}");
            assert!((p - m).abs() <= 0.02 * m.abs(), "{what} predicted {p}, measured {m}: {t:?}");
        }
    }
    assert!(bins_seen.iter().all(|&c| c >= 3), "every bin on several batches: {bins_seen:?}");
    let bins = report::summarize(&trials);
    for b in &bins {
        assert_eq!(b.entropy.sign_agreement, 1.0, "{}", b.name);
        assert_eq!(b.logprob.sign_agreement, 1.0, "{}", b.name);
        // A positive update raises its token's log-prob, a negative one lowers it (§7).
        let expect = if b.name.starts_with("pos") { 1.0 } else { -1.0 };
        assert_eq!(b.logprob.predicted_sign, expect, "{}", b.name);
        if let Some(r) = b.entropy.correlation {
            assert!(r > 0.99, "{}: correlation {r}", b.name);
        }
    }
}

/// On a real (tiny) GPT both optimizers run, every trial is finite and the
/// weights and optimizer state come back as they were.
#[test]
fn runs_on_a_tiny_gpt_with_either_optimizer() {
    let task = wapo_benches::ShapeTask { prompt_len: 4, completion_len: 3, vocab: 5 };
    let cfg = wapo_core::rl::ModelConfig::gpt(5, 7, 16, 1, 2, 32);
    for (opt, lr) in [(Optimizer::Sgd, 0.5), (Optimizer::Adamw, 1e-3)] {
        let mut policy = wapo_cpu::model::CpuModel::<wapo_cpu::CpuTensor>::new(cfg, 0).unwrap();
        let (theta, moments) = (policy.parameters().unwrap(), policy.optimizer_state().unwrap());
        let trials: Vec<Trial> =
            experiment::run(&mut policy, &task, &setup(opt, lr, 1.0, 3), &mut TrainState::new(2), &mut |_| {}).unwrap();
        assert!(!trials.is_empty());
        for t in &trials {
            assert!(t.tokens > 0);
            for x in [t.pred_dentropy, t.pred_dlogp, t.meas_dentropy, t.meas_dlogp] {
                assert!(x.is_finite(), "{opt:?}: {t:?}");
            }
        }
        assert_eq!(policy.parameters().unwrap(), theta);
        assert_eq!(policy.optimizer_state().unwrap(), moments);
    }
}
