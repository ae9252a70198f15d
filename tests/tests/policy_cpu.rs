//! The CPU policy: the backend-generic policy suite (generation, the shared
//! prompt prefix, the RL and SFT loop, checkpoints and resume; GPT and
//! llama), and what only the CPU has: its inverse-CDF sampler against
//! hand-computed draws, and one RL step with the logits as `CpuTensor` (the
//! fused objective) against the host reference tensor.

use wapo_core::rl::*;
use wapo_cpu::model::CpuModel;
use wapo_cpu::model::decode::sample;
use wapo_tests::suite::CpuPolicies;
use wapo_tests::suite::policy::train::{model_config, rl_config, task};

wapo_tests::policy_suite!(cpu: Some(CpuPolicies));

#[test]
fn inverse_cdf_sampling() {
    // p = (0.25, 0.75) at τ = 1: u < 0.25 draws 0, else 1.
    let z = [0.0f32, 3.0f32.ln()];
    assert_eq!(sample(&z, 1.0, Some(0.2)).0, 0);
    assert_eq!(sample(&z, 1.0, Some(0.3)).0, 1);
    let (y, l) = sample(&z, 1.0, Some(0.9));
    assert_eq!(y, 1);
    assert!((l as f64 - 0.75f64.ln()).abs() < 1e-6);
    // τ = 0.5 squares the odds: p = (0.1, 0.9).
    assert_eq!(sample(&z, 0.5, Some(0.09)).0, 0);
    assert_eq!(sample(&z, 0.5, Some(0.11)).0, 1);
    // Greedy ignores u.
    assert_eq!(sample(&z, 0.0, Some(0.0)).0, 1);
}

/// The same RL step with the logits handed out as `CpuTensor` (the backend's
/// fused objective) and as the host reference tensor: same rollouts, and the
/// losses and updated weights agree to f32 rounding.
#[test]
fn rl_step_on_cpu_tensor_matches_host_tensor() {
    let cfg = model_config();
    let mut host: CpuModel = CpuModel::new(cfg, 0).unwrap();
    let mut fused: CpuModel<wapo_cpu::CpuTensor> = CpuModel::new(cfg, 0).unwrap();
    let (mut sh, mut sf) = (TrainState::new(4), TrainState::new(4));
    let rl = RlConfig { epochs: 1, minibatches: 1, ..rl_config(wapo_core::Objective::Wapo) };
    let mh = rl_step(&mut host, &task(), &rl, &mut sh, None).unwrap();
    let mf = rl_step(&mut fused, &task(), &rl, &mut sf, None).unwrap();
    assert_eq!(metric(&mh, "rollout/reward_mean"), metric(&mf, "rollout/reward_mean"));
    let (lh, lf) = (metric(&mh, "objective/loss").unwrap(), metric(&mf, "objective/loss").unwrap());
    assert!((lh - lf).abs() <= 1e-5 * (1.0 + lh.abs()), "{lh} vs {lf}");
    let diff =
        host.raw_parameters().0.iter().zip(fused.raw_parameters().0).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(diff < 1e-5, "parameters differ by {diff}");
    let init: CpuModel = CpuModel::new(cfg, 0).unwrap();
    assert_ne!(init.raw_parameters().0, host.raw_parameters().0, "the step must move the weights");
}
