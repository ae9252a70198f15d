//! The dfdx-native example (`examples/dfdx_native.rs`) as a test: the
//! parameter gradients dfdx computes through the surrogate
//! Σ z · stop_grad(∂loss/∂z) equal central finite differences of the same
//! loss, and a few training steps raise the reward of the toy task.

#[path = "../examples/dfdx_native.rs"]
mod example;

use dfdx::prelude::{Cpu, Tensor, ZeroGrads};
use example::{Policy, Rng, Rollout, T, V};
use wapo_core::advantage::Groups;
use wapo_core::host::HostTensor;
use wapo_core::logits::{LogitsBatch, logits_objective};
use wapo_core::objective::ObjectiveConfig;
use wapo_core::{Shape, Tensor as _};

/// The same loss as the example's, evaluated independently: the f32 logits
/// of dfdx's forward, the objective in f64 on the host reference backend.
fn reference_loss(model: &Policy, dev: &Cpu, cfg: &ObjectiveConfig, r: &Rollout) -> f64 {
    type H = HostTensor<f64>;
    let n = r.n();
    let z: Vec<f64> = example::logits(model, dev, &r.prompts).unwrap().iter().map(|x| *x as f64).collect();
    let up = |v: &[f64], s: Shape| H::upload(&(), v, s).unwrap();
    let ids: Vec<i64> = r.prompts.iter().map(|p| *p as i64).collect();
    let tokens: Vec<f64> = r.tokens.iter().map(|y| *y as f64).collect();
    let out = logits_objective(
        cfg,
        &LogitsBatch {
            groups: &Groups::from_ids(&(), &ids).unwrap(),
            rewards: &up(&r.rewards, Shape::d1(n)),
            mask: &up(&vec![1.0; n * T], Shape::d2(n, T)),
            logits: &up(&z, Shape::d3(n, T, V)),
            tokens: &up(&tokens, Shape::d2(n, T)),
            old_logprobs: &up(&r.old_logprobs, Shape::d2(n, T)),
        },
    )
    .unwrap();
    out.loss.item().unwrap()
}

/// Central differences of `reference_loss` in every entry of the parameter
/// that `param` reaches inside the model, against dfdx's gradient `grad`;
/// returns how many entries had a non-zero gradient.
fn fd_check<S: dfdx::shapes::Shape>(
    name: &str,
    model: &mut Policy,
    dev: &Cpu,
    cfg: &ObjectiveConfig,
    r: &Rollout,
    grad: Vec<f32>,
    param: fn(&mut Policy) -> &mut Tensor<S, f32, Cpu>,
) -> usize {
    let h = 1e-3f32;
    let base = param(model).as_vec();
    assert_eq!(base.len(), grad.len(), "{name}: gradient size");
    let scale = grad.iter().fold(0.0f64, |m, g| m.max(g.abs() as f64));
    assert!(scale > 0.0, "{name}: all-zero gradient");
    let (mut nonzero, mut worst) = (0, 0.0f64);
    for k in 0..base.len() {
        let (up, dn) = (base[k] + h, base[k] - h);
        let mut at = |x: f32| {
            let mut v = base.clone();
            v[k] = x;
            param(model).copy_from(&v);
            reference_loss(model, dev, cfg, r)
        };
        let fd = (at(up) - at(dn)) / (up as f64 - dn as f64);
        param(model).copy_from(&base);
        let g = grad[k] as f64;
        let tol = 2e-3 * scale + 1e-2 * g.abs();
        assert!((fd - g).abs() <= tol, "{name}[{k}]: finite difference {fd:.6e}, dfdx {g:.6e} (tolerance {tol:.1e})");
        worst = worst.max((fd - g).abs() / scale);
        nonzero += usize::from(g != 0.0);
    }
    eprintln!("{name}: {} entries, max |fd − dfdx| = {worst:.1e} of the largest |gradient| {scale:.2e}", base.len());
    nonzero
}

#[test]
fn dfdx_gradients_equal_finite_differences_of_the_loss() {
    let dev = Cpu::seed_from_u64(7);
    let mut model = example::new_policy(&dev);
    let mut rng = Rng::new(3);
    let mut r = example::sample(&model, &dev, &mut rng).unwrap();
    // Off policy, so that ratios differ from 1 (some beyond the clip bound 1 + ε).
    for (k, lp) in r.old_logprobs.iter_mut().enumerate() {
        *lp += if k % 7 == 0 { -0.3 } else { 0.2 * rng.uniform() - 0.1 };
    }
    assert!(r.rewards.iter().any(|x| *x > 0.0), "the sample has no winner");
    let cfg = example::config();
    let grads = model.alloc_grads();
    let (loss, grads) = example::loss_and_grads(&model, &dev, &cfg, &r, grads).unwrap();
    let reference = reference_loss(&model, &dev, &cfg, &r);
    assert!((loss - reference).abs() <= 1e-5 * reference.abs().max(1e-3), "loss {loss} vs f64 {reference}");

    let g0w = grads.get(&model.0.weight).as_vec();
    let g1w = grads.get(&model.1.weight).as_vec();
    let g1b = grads.get(&model.1.bias).as_vec();
    let g3w = grads.get(&model.3.weight).as_vec();
    let g3b = grads.get(&model.3.bias).as_vec();
    let mut nonzero = 0;
    nonzero += fd_check("embedding.weight", &mut model, &dev, &cfg, &r, g0w, |m| &mut m.0.weight);
    nonzero += fd_check("linear1.weight", &mut model, &dev, &cfg, &r, g1w, |m| &mut m.1.weight);
    nonzero += fd_check("linear1.bias", &mut model, &dev, &cfg, &r, g1b, |m| &mut m.1.bias);
    nonzero += fd_check("head.weight", &mut model, &dev, &cfg, &r, g3w, |m| &mut m.3.weight);
    nonzero += fd_check("head.bias", &mut model, &dev, &cfg, &r, g3b, |m| &mut m.3.bias);
    assert!(nonzero > 100, "only {nonzero} parameters moved");
}

#[test]
fn a_few_steps_raise_the_reward() {
    let dev = Cpu::seed_from_u64(0);
    let mut model = example::new_policy(&dev);
    let mut opt = example::new_optimizer(&model);
    let mut rng = Rng::new(1);
    let mut grads = None;
    let before = example::target_probability(&model, &dev).unwrap();
    // A uniform policy gives 1/V; the untrained one is near it.
    assert!(before < 2.0 / V as f64, "p(target) {before} before training");
    let mut rewards = Vec::new();
    for _ in 0..8 {
        rewards.push(example::train_step(&mut model, &mut opt, &dev, &mut rng, &mut grads).unwrap());
    }
    let after = example::target_probability(&model, &dev).unwrap();
    assert!(after > 0.5, "p(target) {before:.3} → {after:.3} after 8 steps");
    assert!(rewards[7] > rewards[0], "batch rewards {rewards:?}");
}
