//! The wgpu backend against the f64 host reference: the backend-generic
//! equivalence suite (every primitive, every objective and option, every
//! output tensor on the option grid, numerical stability, error positions,
//! the 80 golden cases through the fused and composed paths) on two device
//! configurations — the adapter's own limits, and the same adapter with
//! bindings capped at 64 KiB so that every kernel runs in many windows on
//! small tensors — and what only a GPU has: dispatches beyond 65,535
//! workgroups and logits beyond one storage binding.
//!
//! Without an adapter the tests print that they skipped; with
//! `WAPO_REQUIRE_GPU=1` that is a failure.

use wapo_core::advantage::Groups;
use wapo_core::case::CaseInput;
use wapo_core::host::HostTensor;
use wapo_core::logits::row_stats;
use wapo_core::objective::{TokenBatch, token_objective};
use wapo_core::{Objective, ObjectiveConfig, Reduce, Shape, Tensor};
use wapo_tests::random::Rng;
use wapo_tests::suite::Profile;
use wapo_tests::suite::cases::{BatchShape, random_batch};
use wapo_tests::suite::eval::{Path, download as host_of};
use wapo_tests::suite::fields::output;
use wapo_wgpu::{WgpuContext, WgpuTensor, test_context};

wapo_tests::equivalence_suite!(adapter_limits: WgpuTensor = test_context(), Profile::GPU);
wapo_tests::equivalence_suite!(
    bindings_64k: WgpuTensor = test_context().map(|_| WgpuContext::with_binding_cap(64 << 10).expect("capped context")),
    Profile::GPU.with_binding_cap(64 << 10)
);

/// More than 65,535 workgroups in one dispatch: 2D grids.
#[test]
fn dispatch_beyond_65535_workgroups() {
    let Some(dev) = test_context() else { return };
    let n = 65_600 * 256 + 3;
    let data: Vec<f64> = (0..n).map(|k| (k % 1000) as f64).collect();
    let x = WgpuTensor::upload(&dev, &data, Shape::d1(n)).unwrap();
    let y = host_of(&x.add_scalar(1.0).unwrap());
    assert!(y.iter().zip(&data).all(|(a, b)| *a == b + 1.0), "elementwise beyond 65,535 workgroups");
    // One row per thread (C = 1): 65,601 workgroups of 256 rows.
    let rows = x.reshape(Shape::d2(n, 1)).unwrap().reduce_last(Reduce::Sum).unwrap();
    assert_eq!(host_of(&rows), data, "row reduction beyond 65,535 workgroups");
    // One row of 16.8M elements: reduced in segments, then across them.
    let one = x.reshape(Shape::d2(1, n)).unwrap().reduce_last(Reduce::Max).unwrap();
    assert_eq!(host_of(&one), vec![999.0]);
}

/// Just over 128 MiB of logits (lavapipe's binding limit): the fused kernels
/// run in several windows. The reference is a naive f64 loop per row
/// (`row_stats`) and the host token-level engine.
#[test]
fn logits_beyond_128_mib() {
    let Some(dev) = test_context() else { return };
    let mut rng = Rng::new(99);
    let (n, t, v) = (4, 8, 1_081_343); // 32 rows, 138 MB of f32, V odd: scalar path
    let cfg = ObjectiveConfig::new(Objective::Grpo, t);
    let b = random_batch(&mut rng, &BatchShape { groups: 2, group_size: 2, t, v }, 2.0, 0.0, cfg.clone());
    let out = output::<WgpuTensor>(&dev, &b, Path::Backend).expect("fused");
    let CaseInput::Logits { logits, tokens, .. } = &b.input else { unreachable!("a logits case") };
    let stats: Vec<_> = (0..n * t).map(|r| row_stats(&logits[r * v..(r + 1) * v], tokens[r] as usize, 1.0)).collect();
    let lp: Vec<f64> = stats.iter().map(|s| s.logp).collect();
    let sq: Vec<f64> = stats.iter().map(|s| s.sum_p_sq).collect();
    let ent: Vec<f64> = stats.iter().map(|s| s.entropy).collect();
    let h = |d: &[f64], s: Shape| HostTensor::<f64>::from_f64(d, s).unwrap();
    let groups = Groups::<HostTensor<f64>>::from_ids(&(), &b.group_ids).unwrap();
    let (rw, mk, old, lpt, sqt) = (
        h(&b.rewards, Shape::d1(n)),
        h(&b.mask, Shape::d2(n, t)),
        h(&b.old_logprobs, Shape::d2(n, t)),
        h(&lp, Shape::d2(n, t)),
        h(&sq, Shape::d2(n, t)),
    );
    let tok = TokenBatch {
        groups: &groups,
        rewards: &rw,
        mask: &mk,
        logprobs: &lpt,
        old_logprobs: &old,
        sum_p_sq: Some(&sqt),
    };
    let reference = token_objective(&cfg, &tok).unwrap();
    let g = host_of(&reference.grad_logprobs);
    let close = |what: &str, a: f64, b: f64, scale: f64| {
        assert!((a - b).abs() <= 1e-4 * (b.abs() + scale) + 1e-7, "{what}: wgpu {a} vs reference {b}");
    };
    close("loss", host_of(&out.loss)[0], host_of(&reference.loss)[0], 0.0);
    for (k, (a, b)) in host_of(&out.logprobs).iter().zip(&lp).enumerate() {
        close(&format!("logprobs[{k}]"), *a, *b, 1.0);
    }
    for (k, (a, b)) in host_of(out.entropy.as_ref().unwrap()).iter().zip(&ent).enumerate() {
        close(&format!("entropy[{k}]"), *a, *b, 1.0);
    }
    let grad = host_of(out.grad_logits.as_ref().unwrap());
    let gscale = g.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for r in 0..n * t {
        let y = tokens[r] as usize;
        for j in (0..v).step_by(97).chain([y, v - 1]) {
            let p = (logits[r * v + j] - stats[r].lse).exp();
            let want = g[r] * (f64::from(j == y) - p);
            close(&format!("grad_logits[{r}][{j}]"), grad[r * v + j], want, gscale);
        }
    }
}
