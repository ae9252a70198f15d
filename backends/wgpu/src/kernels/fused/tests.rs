//! The fused objective: its kernels against the f64 host engine and the device primitives, dispatch and read-back counts, segmented logits.

use wapo_core::advantage::Groups;
use wapo_core::logits::{LogitsBatch, logits_objective};
use wapo_core::{Objective, ObjectiveConfig, Shape, Tensor};

use crate::{WgpuDevice, WgpuTensor, test_context};

struct Inputs {
    groups: Groups<WgpuTensor>,
    rewards: WgpuTensor,
    mask: WgpuTensor,
    logits: WgpuTensor,
    tokens: WgpuTensor,
    old: WgpuTensor,
}

/// N sequences of T tokens over V, in groups of two, with some padding.
fn inputs(dev: &WgpuDevice, n: usize, t: usize, v: usize) -> Inputs {
    let ids: Vec<i64> = (0..n).map(|i| (i / 2) as i64).collect();
    let rewards: Vec<f64> = (0..n).map(|i| f64::from(i % 3 == 0)).collect();
    let mask: Vec<f64> = (0..n * t).map(|k| f64::from(k % t < t - 2)).collect();
    let tokens: Vec<f64> = (0..n * t).map(|k| ((k * 7) % v) as f64).collect();
    let old: Vec<f64> = (0..n * t).map(|k| -(v as f64).ln() + 0.05 * ((k % 5) as f64 - 2.0)).collect();
    let logits: Vec<f64> = (0..n * t * v).map(|k| ((k * 37) % 101) as f64 / 25.0 - 2.0).collect();
    Inputs::upload(dev, (n, t, v), &ids, [&rewards, &mask, &logits, &tokens, &old])
}

impl Inputs {
    /// (N, T, V) and the group ids, then the rewards, mask, logits, tokens
    /// and old log-probs as host values.
    fn upload(dev: &WgpuDevice, (n, t, v): (usize, usize, usize), ids: &[i64], x: [&[f64]; 5]) -> Inputs {
        let up = |data: &[f64], shape| WgpuTensor::upload(dev, data, shape).unwrap();
        Inputs {
            groups: Groups::from_ids(dev, ids).unwrap(),
            rewards: up(x[0], Shape::d1(n)),
            mask: up(x[1], Shape::d2(n, t)),
            logits: up(x[2], Shape::d3(n, t, v)),
            tokens: up(x[3], Shape::d2(n, t)),
            old: up(x[4], Shape::d2(n, t)),
        }
    }

    fn batch(&self) -> LogitsBatch<'_, WgpuTensor> {
        LogitsBatch {
            groups: &self.groups,
            rewards: &self.rewards,
            mask: &self.mask,
            logits: &self.logits,
            tokens: &self.tokens,
            old_logprobs: &self.old,
        }
    }
}

#[test]
fn dispatches_and_readbacks_per_call() {
    let Some(dev) = test_context() else { return };
    let x = inputs(&dev, 4, 16, 64); // 64 rows × 64
    let cfg = ObjectiveConfig::new(Objective::Wapo, 16);
    logits_objective(&cfg, &x.batch()).unwrap(); // compiles the pipelines
    dev.synchronize().unwrap();
    let before = dev.counters();
    let out = logits_objective(&cfg, &x.batch()).unwrap();
    let after = dev.counters();
    let (d, r) = (after.0 - before.0, after.1 - before.1);
    println!("per call: {d} dispatches, {r} read-backs");
    drop(out);
    // stats, the engine's three passes, grad; the flags' one read-back.
    assert!(d <= 5 && r <= 1, "{d} dispatches and {r} read-backs per call");
}

fn host_of(x: &WgpuTensor) -> Vec<f64> {
    let mut v = vec![0.0; x.shape().numel()];
    x.download(&mut v).unwrap();
    v
}

/// A batch whose groups are out of order and of several sizes, with a
/// group of equal rewards (zero advantages), rows of every length including
/// an empty one, and old log-probs that put ratios on both sides of the
/// clip bounds.
fn mixed_inputs(dev: &WgpuDevice, t: usize, v: usize) -> Inputs {
    let ids: Vec<i64> = vec![3, 1, 3, 0, 1, 2, 0, 3, 2, 1, 0, 2];
    let n = ids.len();
    let rewards: Vec<f64> = vec![1.0, 0.37, 0.0, 0.5, 0.37, 2.0, -1.0, 1.0, 0.25, 0.37, 0.5, 2.5];
    let lens: Vec<usize> = (0..n).map(|i| (i * 5 + 3) % (t + 1)).collect();
    let mask: Vec<f64> = (0..n * t).map(|k| f64::from(k % t < lens[k / t])).collect();
    let tokens: Vec<f64> = (0..n * t).map(|k| ((k * 11 + 3) % v) as f64).collect();
    let logits: Vec<f64> = (0..n * t * v).map(|k| ((k * 29) % 97) as f64 / 20.0 - 2.4).collect();
    // ℓ° = a rough ℓ shifted by up to ±0.4: ratios from ~0.67 to ~1.5.
    let old: Vec<f64> = (0..n * t).map(|k| -(v as f64).ln() + 0.8 + 0.2 * ((k % 5) as f64 - 2.0)).collect();
    Inputs::upload(dev, (n, t, v), &ids, [&rewards, &mask, &logits, &tokens, &old])
}

/// Every objective, and each option that changes the engine's path.
fn engine_configs() -> Vec<ObjectiveConfig> {
    use wapo_core::objective::Aggregation;
    let mut cfgs = Vec::new();
    for o in Objective::ALL {
        let base = ObjectiveConfig::new(o, 7);
        cfgs.push(base.clone());
        let mut c = base.clone();
        c.normalize_by_kept_tokens = true;
        c.exclude_bins = wapo_core::BinSpec::parse("neg_valley").unwrap();
        cfgs.push(c);
        for level in [Aggregation::Seq, Aggregation::Group, Aggregation::Global] {
            let mut c = base.clone();
            c.aggregation = Some(level);
            c.normalize_by_kept_tokens = level == Aggregation::Global;
            cfgs.push(c);
        }
    }
    let mut c = ObjectiveConfig::new(Objective::Grpo, 7);
    c.temperature = 0.7;
    c.normalize_by_kept_tokens = true;
    c.mask_positive_advantages = true;
    cfgs.push(c);
    let mut c = ObjectiveConfig::new(Objective::Wapo, 7);
    c.importance_sampling = false;
    c.exclude_bins = wapo_core::BinSpec::parse("valley").unwrap();
    cfgs.push(c);
    let mut c = ObjectiveConfig::new(Objective::Dapo, 7);
    c.include_bins = wapo_core::BinSpec::parse("pos_peak").unwrap();
    c.temperature = 1.3;
    cfgs.push(c);
    cfgs
}

/// The three places of the per-sequence engine give the same outputs: the
/// WGSL kernels (every call), the host in f64 (the reference, for errors)
/// and the device primitives (batches beyond one binding), for every
/// objective and the options that change its path.
#[test]
fn kernel_host_and_primitive_engines_agree() {
    let Some(dev) = test_context() else { return };
    let mut worst = [0.0f64; 2];
    for x in [inputs(&dev, 6, 5, 37), mixed_inputs(&dev, 6, 40)] {
        for cfg in &engine_configs() {
            let inv_t = (1.0 / cfg.temperature) as f32;
            let st = super::stats::row_stats(&x.logits, &x.tokens, inv_t).unwrap();
            let host = super::host_engine(cfg, &x.batch(), &st, x.logits.shape().last()).unwrap();
            let kernels = super::logits_objective(cfg, &x.batch()).unwrap();
            let prims = super::engine_on_device(cfg, &x.batch()).unwrap();
            for (k, (engine, devc)) in [("kernels", &kernels), ("primitives", &prims)].into_iter().enumerate() {
                let pairs = [
                    ("advantages", &host.advantages, &devc.advantages),
                    ("weights", &host.weights, &devc.weights),
                    ("normalizer", &host.normalizer, &devc.normalizer),
                    ("loss_sum", &host.loss_sum, &devc.loss_sum),
                    ("loss", &host.loss, &devc.loss),
                    ("grad_logprobs", &host.grad_logprobs, &devc.grad_logprobs),
                    ("grad_logits", host.grad_logits.as_ref().unwrap(), devc.grad_logits.as_ref().unwrap()),
                    ("logprobs", &host.logprobs, &devc.logprobs),
                    ("ratio", &host.ratio, &devc.ratio),
                    ("keep", &host.keep, &devc.keep),
                    ("clipped", &host.clipped, &devc.clipped),
                    ("bins", &host.bins, &devc.bins),
                ];
                for (name, a, b) in pairs {
                    let (a, b) = (host_of(a), host_of(b));
                    let scale = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                    for (i, (p, q)) in a.iter().zip(&b).enumerate() {
                        let err = (p - q).abs() / (scale + 1e-30);
                        worst[k] = worst[k].max(if scale > 0.0 { err } else { (p - q).abs() });
                        assert!(
                            (p - q).abs() <= 1e-5 * (p.abs() + scale) + 1e-7,
                            "{engine}, {:?} {cfg:?}: {name}[{i}]: host {p} vs {q}",
                            cfg.objective
                        );
                    }
                }
                assert_eq!(host.count_values().unwrap(), devc.count_values().unwrap(), "{engine}, {cfg:?}: counts");
            }
        }
    }
    println!("vs the host engine: kernels {:e}, primitives {:e} of the field's scale", worst[0], worst[1]);
}

/// Logits held in several buffers (a context whose buffers are capped at
/// 2 KiB) give bit-identical outputs to the same logits in one buffer with
/// the same binding chunks, on both engines, in the scalar and vec4
/// kernels; the gradient is held in several buffers too.
#[test]
fn segmented_logits_match_one_buffer() {
    if test_context().is_none() {
        return;
    }
    let one = crate::WgpuContext::with_binding_cap(1024).unwrap();
    let seg = crate::WgpuContext::with_limits_cap(1024, 2048).unwrap();
    let cfg = ObjectiveConfig::new(Objective::Wapo, 5);
    for v in [37, 64] {
        let (a, b) = (inputs(&one, 4, 5, v), inputs(&seg, 4, 5, v));
        assert_eq!(a.logits.segment_count(), 1);
        assert!(b.logits.segment_count() > 1, "V = {v}: {} buffers", b.logits.segment_count());
        type Run = fn(&ObjectiveConfig, &LogitsBatch<'_, WgpuTensor>) -> wapo_core::Result<Output>;
        type Output = wapo_core::objective::Output<WgpuTensor>;
        let runs: [(&str, Run); 2] =
            [("kernel engine", super::logits_objective), ("primitive engine", super::engine_on_device)];
        for (engine, run) in runs {
            let (p, q) = (run(&cfg, &a.batch()).unwrap(), run(&cfg, &b.batch()).unwrap());
            assert!(q.grad_logits.as_ref().unwrap().segment_count() > 1);
            let pairs = [
                ("loss", &p.loss, &q.loss),
                ("grad_logits", p.grad_logits.as_ref().unwrap(), q.grad_logits.as_ref().unwrap()),
                ("logprobs", &p.logprobs, &q.logprobs),
                ("entropy", p.entropy.as_ref().unwrap(), q.entropy.as_ref().unwrap()),
                ("sum_p_sq", p.sum_p_sq.as_ref().unwrap(), q.sum_p_sq.as_ref().unwrap()),
            ];
            for (name, x, y) in pairs {
                let (x, y) = (x.to_vec().unwrap(), y.to_vec().unwrap());
                let diff = x.iter().zip(&y).map(|(s, t)| (s - t).abs()).fold(0.0f32, f32::max);
                println!("V = {v}, {engine}, {name}: {} values, max abs difference {diff:e}", x.len());
                assert!(x.iter().any(|s| *s != 0.0), "{name} is all zeros");
                assert_eq!(
                    x.iter().map(|s| s.to_bits()).collect::<Vec<_>>(),
                    y.iter().map(|s| s.to_bits()).collect::<Vec<_>>(),
                    "V = {v}, {engine}: {name}"
                );
            }
        }
    }
}

/// Segmented logits reshaped so that their buffers no longer hold whole
/// rows are refused with an error naming the op.
#[test]
fn segmented_logits_of_cut_rows_are_refused() {
    if test_context().is_none() {
        return;
    }
    let seg = crate::WgpuContext::with_limits_cap(1024, 2048).unwrap();
    // 20 rows of 37 in buffers of 10 rows (370 elements), seen as 5 rows
    // of 148: the first buffer ends inside row 2.
    let x = inputs(&seg, 4, 5, 37);
    let mut y = inputs(&seg, 1, 5, 148);
    y.logits = x.logits.reshape(Shape::d3(1, 5, 148)).unwrap();
    let err = logits_objective(&ObjectiveConfig::new(Objective::Wapo, 5), &y.batch());
    match err {
        Err(e) => {
            let msg = e.to_string();
            println!("{msg}");
            assert!(msg.contains("logits_objective"), "{msg}");
        }
        Ok(_) => panic!("logits cut across buffers were accepted"),
    }
}
