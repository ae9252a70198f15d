//! The wgpu backend against the f64 host reference: every primitive, every
//! objective and option on random cases and on the 80 golden cases (fused
//! and composed paths), numerical stability, error positions, and the
//! chunked paths for tensors beyond one storage binding.
//!
//! Each body is generic over the backend under test and run per device
//! (the adapter's own limits, and a context whose bindings are capped at
//! 64 KiB so that every kernel runs in many windows on small tensors).
//! Without an adapter the tests print that they skipped; with
//! `WAPO_REQUIRE_GPU=1` that is a failure.

use wapo_core::advantage::Groups;
use wapo_core::case::{Case, CaseInput, CaseOutput, Tolerance, compare};
use wapo_core::host::HostTensor;
use wapo_core::logits::{LogitsBatch, composed, logits_objective, row_stats};
use wapo_core::objective::{Output, TokenBatch, token_objective};
use wapo_core::{Aggregation, BinSpec, Binary, Error, Objective, ObjectiveConfig, Reduce, Shape, Tensor, Unary};
use wapo_wgpu::{WgpuContext, WgpuDevice, WgpuTensor, test_context};

// ---------- devices ----------

/// The devices every body runs on: the adapter as it is, and the same
/// adapter with 64 KiB bindings.
fn devices() -> Vec<(&'static str, WgpuDevice)> {
    let Some(dev) = test_context() else {
        return Vec::new();
    };
    let capped = WgpuContext::with_binding_cap(64 << 10).expect("capped context");
    vec![("adapter limits", dev), ("64 KiB bindings", capped)]
}

// ---------- a small seeded generator ----------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit().max(1e-12), self.unit());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

// ---------- cases ----------

/// A logits-level batch in host memory.
#[derive(Clone)]
struct Batch {
    n: usize,
    t: usize,
    v: usize,
    group_ids: Vec<i64>,
    rewards: Vec<f64>,
    mask: Vec<f64>,   // (N, T)
    old: Vec<f64>,    // (N, T)
    logits: Vec<f64>, // (N, T, V)
    tokens: Vec<f64>, // (N, T)
}

struct Shape3 {
    groups: usize,
    group_size: usize,
    t: usize,
    v: usize,
}

/// Random logits of scale `scale`, a share of masked (−inf) vocabulary
/// entries (never the sampled token of a real position), behaviour
/// log-probs near the current ones so that ratios fall on both sides of the
/// clip range, and binary rewards.
fn random_batch(rng: &mut Rng, s: &Shape3, scale: f64, masked_vocab: f64, temperature: f64) -> Batch {
    let n = s.groups * s.group_size;
    let (t, v) = (s.t, s.v);
    let group_ids = (0..n).map(|i| (i % s.groups) as i64 * 7 + 3).collect();
    let rewards = (0..n).map(|_| if rng.unit() < 0.5 { 1.0 } else { 0.0 }).collect();
    let mask: Vec<f64> = (0..n * t).map(|k| if k % t == 0 || rng.unit() < 0.75 { 1.0 } else { 0.0 }).collect();
    let tokens: Vec<f64> = (0..n * t).map(|_| rng.below(v) as f64).collect();
    let mut logits = vec![0.0; n * t * v];
    for (row, z) in logits.chunks_mut(v).enumerate() {
        let y = tokens[row] as usize;
        for (j, x) in z.iter_mut().enumerate() {
            *x = if j != y && rng.unit() < masked_vocab { f64::NEG_INFINITY } else { scale * rng.normal() };
        }
    }
    let old = (0..n * t)
        .map(|row| {
            let st = row_stats(&logits[row * v..(row + 1) * v], tokens[row] as usize, temperature);
            st.logp + 0.25 * rng.normal()
        })
        .collect();
    Batch { n, t, v, group_ids, rewards, mask, old, logits, tokens }
}

/// Every objective at its defaults, and every option on top of some.
fn configs(t_len: usize) -> Vec<(String, ObjectiveConfig)> {
    let mut out = Vec::new();
    for obj in Objective::ALL {
        let base = ObjectiveConfig::new(obj, t_len + 2);
        out.push((obj.name().to_string(), base.clone()));
        for agg in [Aggregation::Seq, Aggregation::Group, Aggregation::Global] {
            let mut c = base.clone();
            c.aggregation = Some(agg);
            c.normalize_by_kept_tokens = true;
            out.push((format!("{obj} {agg:?} kept-token weights"), c));
        }
        let mut c = base.clone();
        c.include_bins = BinSpec::parse("pos").unwrap();
        c.exclude_bins = BinSpec::NEG_VALLEY;
        out.push((format!("{obj} bins"), c));
        let mut c = base.clone();
        c.exclude_bins = BinSpec::parse("valley").unwrap();
        c.temperature = 0.7;
        out.push((format!("{obj} τ=0.7 no valleys"), c));
        let mut c = base.clone();
        c.mask_positive_advantages = true;
        out.push((format!("{obj} mask_positive_advantages"), c));
    }
    let mut c = ObjectiveConfig::new(Objective::Wapo, 5);
    c.importance_sampling = false;
    out.push(("wapo REINFORCE".into(), c));
    let mut c = ObjectiveConfig::new(Objective::Dapo, 5);
    c.clip_low = 0.9;
    c.clip_high = 1.1;
    c.temperature = 1.5;
    out.push(("dapo tight clip τ=1.5".into(), c));
    out
}

// ---------- evaluation ----------

/// Every field of an `Output`, downloaded.
#[derive(Debug)]
struct Eval {
    fields: Vec<(&'static str, Vec<f64>)>,
    counts: [f64; 9],
}

fn host_of<T: Tensor>(x: &T) -> Vec<f64> {
    let mut v = vec![0.0; x.shape().numel()];
    x.download(&mut v).expect("download");
    v
}

fn collect<T: Tensor>(o: &Output<T>) -> Eval {
    let mut fields = vec![
        ("advantages", host_of(&o.advantages)),
        ("weights", host_of(&o.weights)),
        ("normalizer", host_of(&o.normalizer)),
        ("loss_sum", host_of(&o.loss_sum)),
        ("loss", host_of(&o.loss)),
        ("grad_logprobs", host_of(&o.grad_logprobs)),
        ("logprobs", host_of(&o.logprobs)),
        ("ratio", host_of(&o.ratio)),
        ("keep", host_of(&o.keep)),
        ("clipped", host_of(&o.clipped)),
        ("bins", host_of(&o.bins)),
    ];
    for (name, x) in [("grad_logits", &o.grad_logits), ("entropy", &o.entropy), ("sum_p_sq", &o.sum_p_sq)] {
        let x = x.as_ref().unwrap_or_else(|| panic!("logits-level output lacks {name}"));
        fields.push((name, host_of(x)));
    }
    Eval { fields, counts: o.count_values().expect("counts") }
}

/// Evaluates `b` under `cfg` on backend `T`, through the backend's override
/// (`fused`) or the composed default.
fn evaluate<T: Tensor>(dev: &T::Device, b: &Batch, cfg: &ObjectiveConfig, fused: bool) -> wapo_core::Result<Output<T>> {
    let groups = Groups::<T>::from_ids(dev, &b.group_ids)?;
    let rewards = T::upload(dev, &b.rewards, Shape::d1(b.n))?; // (N)
    let mask = T::upload(dev, &b.mask, Shape::d2(b.n, b.t))?; // (N, T)
    let old = T::upload(dev, &b.old, Shape::d2(b.n, b.t))?; // (N, T)
    let logits = T::upload(dev, &b.logits, Shape::d3(b.n, b.t, b.v))?; // (N, T, V)
    let tokens = T::upload(dev, &b.tokens, Shape::d2(b.n, b.t))?; // (N, T)
    let batch = LogitsBatch {
        groups: &groups,
        rewards: &rewards,
        mask: &mask,
        logits: &logits,
        tokens: &tokens,
        old_logprobs: &old,
    };
    if fused { logits_objective(cfg, &batch) } else { composed(cfg, &batch) }
}

/// |a − b| ≤ rel·|b| + rel·max|b| of the field (+1e-6); entries that are
/// non-finite on both sides (ℓ of an all −inf, masked row) agree.
fn assert_close(what: &str, got: &Eval, want: &Eval, rel: f64) {
    for ((name, a), (_, b)) in got.fields.iter().zip(&want.fields) {
        assert_eq!(a.len(), b.len(), "{what}: {name} length");
        let scale = b.iter().filter(|x| x.is_finite()).fold(0.0f64, |m, x| m.max(x.abs()));
        let (mut worst, mut at) = (0.0f64, 0);
        for (k, (x, y)) in a.iter().zip(b).enumerate() {
            if !x.is_finite() && !y.is_finite() {
                continue;
            }
            let tol = rel * (y.abs() + scale) + 1e-6;
            // A NaN on one side only is an infinite error.
            let err = if x.is_finite() && y.is_finite() { (x - y).abs() / tol } else { f64::INFINITY };
            if err > worst {
                (worst, at) = (err, k);
            }
        }
        assert!(worst <= 1.0, "{what}: {name}[{at}] = {} but reference {} (field scale {scale:e})", a[at], b[at]);
    }
    assert_eq!(got.counts, want.counts, "{what}: clipped/bin counts");
}

impl Batch {
    /// The batch as an f32 device sees it: the f64 reference evaluated on
    /// these inputs measures the backend's arithmetic, not the input rounding.
    fn rounded_to_f32(&self) -> Batch {
        let r = |v: &[f64]| v.iter().map(|x| *x as f32 as f64).collect();
        Batch { rewards: r(&self.rewards), old: r(&self.old), logits: r(&self.logits), ..self.clone() }
    }
}

/// Host f64 reference ↔ wgpu fused ↔ wgpu composed for one batch and config,
/// all within 1e-4 relative.
fn check_equivalence(dev: &WgpuDevice, what: &str, b: &Batch, cfg: &ObjectiveConfig) {
    check_equivalence_tol(dev, what, b, cfg, 1e-4);
}

/// As [`check_equivalence`]; the composed path is held to `composed_rel`: it
/// forms ℓ = x − lse in f32, which loses the digits of a large logit (about
/// 5e-4 absolute at |x| = 1e4), where the fused kernel keeps x − max apart.
fn check_equivalence_tol(dev: &WgpuDevice, what: &str, b: &Batch, cfg: &ObjectiveConfig, composed_rel: f64) {
    let want = collect(&evaluate::<HostTensor<f64>>(&(), &b.rounded_to_f32(), cfg, false).expect("host reference"));
    let fused = collect(&evaluate::<WgpuTensor>(dev, b, cfg, true).unwrap_or_else(|e| panic!("{what}: fused: {e}")));
    let comp = collect(&evaluate::<WgpuTensor>(dev, b, cfg, false).unwrap_or_else(|e| panic!("{what}: composed: {e}")));
    assert_close(&format!("{what}: fused vs host f64"), &fused, &want, 1e-4);
    assert_close(&format!("{what}: composed vs host f64"), &comp, &want, composed_rel);
    assert_close(&format!("{what}: fused vs composed"), &fused, &comp, composed_rel);
}

// ---------- primitives ----------

fn special_values(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n)
        .map(|k| match k % 11 {
            0 => 0.0,
            1 => f64::NEG_INFINITY,
            2 => f64::INFINITY,
            3 => f64::NAN,
            4 => -2.5,
            5 => 3.0,
            _ => 3.0 * rng.normal(),
        })
        .collect()
}

fn same(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (k, (a, b)) in got.iter().zip(want).enumerate() {
        let ok = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-5 * (1.0 + b.abs());
        assert!(ok, "{what}[{k}]: wgpu {a} vs host {b}");
    }
}

fn up(dev: &WgpuDevice, data: &[f64], s: Shape) -> (WgpuTensor, HostTensor<f32>) {
    (WgpuTensor::upload(dev, data, s).expect("upload"), HostTensor::<f32>::from_f64(data, s).expect("host"))
}

fn primitives_body(dev: &WgpuDevice) {
    let mut rng = Rng(7);
    // Shapes chosen so that the 64 KiB cap splits the large one into windows.
    for full in [Shape::d3(3, 5, 7), Shape::d3(2, 9, 4099), Shape::d2(41, 1)] {
        let row = full.without_last();
        let n = full.numel();
        let (a, ah) = up(dev, &special_values(&mut rng, n), full);
        for op in [
            Unary::Neg,
            Unary::Exp,
            Unary::Log,
            Unary::Abs,
            Unary::Sqr,
            Unary::Sqrt,
            Unary::Recip,
            Unary::Positive,
            Unary::IsZero,
            Unary::IsFinite,
            Unary::Floor,
        ] {
            same(&format!("{op:?} {full}"), &host_of(&a.unary(op).unwrap()), &host_of(&ah.unary(op).unwrap()));
        }
        for v in [0.0, -2.5, 1e30, f64::NEG_INFINITY] {
            let what = format!("scalar ops with {v} {full}");
            same(&what, &host_of(&a.add_scalar(v).unwrap()), &host_of(&ah.add_scalar(v).unwrap()));
            same(&what, &host_of(&a.mul_scalar(v).unwrap()), &host_of(&ah.mul_scalar(v).unwrap()));
            same(&what, &host_of(&a.max_scalar(v).unwrap()), &host_of(&ah.max_scalar(v).unwrap()));
            same(&what, &host_of(&a.min_scalar(v).unwrap()), &host_of(&ah.min_scalar(v).unwrap()));
        }
        let rv = special_values(&mut rng, row.numel());
        let (r, rh) = up(dev, &rv, row);
        let (s, sh) = up(dev, &[1.5], Shape::d1(1));
        let (b, bh) = up(dev, &special_values(&mut rng, n), full);
        let operands = [(&a, &ah, "full"), (&b, &bh, "full"), (&r, &rh, "row"), (&s, &sh, "scalar")];
        for op in [
            Binary::Add,
            Binary::Sub,
            Binary::Mul,
            Binary::Div,
            Binary::Max,
            Binary::Min,
            Binary::Lt,
            Binary::Le,
            Binary::Eq,
            Binary::MaskMul,
        ] {
            for (x, xh, xn) in operands {
                for (y, yh, yn) in operands {
                    let got = host_of(&x.binary(y, op).unwrap());
                    same(&format!("{op:?} {xn}∘{yn} {full}"), &got, &host_of(&xh.binary(yh, op).unwrap()));
                }
            }
        }
        let cond: Vec<f64> = (0..n).map(|k| [0.0, 1.0, f64::NAN, -0.0, 2.0][k % 5]).collect();
        let (c, ch) = up(dev, &cond, full);
        for (x, xh, xn) in operands {
            for (y, yh, yn) in operands {
                let got = host_of(&WgpuTensor::select(&c, x, y).unwrap());
                let want = host_of(&HostTensor::select(&ch, xh, yh).unwrap());
                same(&format!("select {xn}/{yn} {full}"), &got, &want);
            }
        }
        // Reductions on finite data and on rows with −inf and NaN.
        let finite: Vec<f64> = (0..n).map(|_| 4.0 * rng.normal()).collect();
        let mut neg_rows = finite.clone();
        for (k, x) in neg_rows.iter_mut().enumerate() {
            if (k / full.last()) % 3 == 0 || k % 5 == 0 {
                *x = f64::NEG_INFINITY;
            }
        }
        for data in [&finite, &neg_rows] {
            let (x, xh) = up(dev, data, full);
            for op in [Reduce::Sum, Reduce::Max, Reduce::LogSumExp] {
                let got = host_of(&x.reduce_last(op).unwrap());
                let want = host_of(&xh.reduce_last(op).unwrap());
                for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                    let ok = (g == w) || (g - w).abs() <= 1e-4 * (1.0 + w.abs()) * (full.last() as f64).sqrt();
                    assert!(ok, "{op:?} {full} row {k}: wgpu {g} vs host {w}");
                }
            }
        }
        let idx: Vec<f64> = (0..row.numel()).map(|_| rng.below(full.last()) as f64).collect();
        let (i, ih) = up(dev, &idx, row);
        same("gather_last", &host_of(&b.gather_last(&i).unwrap()), &host_of(&bh.gather_last(&ih).unwrap()));
        let (bad, _) = up(dev, &[0.0, full.last() as f64], Shape::d1(2));
        let (bz, _) = up(dev, &vec![0.0; 2 * full.last()], Shape::d2(2, full.last()));
        assert!(matches!(bz.gather_last(&bad), Err(Error::Invalid { .. })), "out-of-range gather must fail");
        same(
            "iota_last",
            &host_of(&WgpuTensor::iota_last(dev, full).unwrap()),
            &host_of(&HostTensor::<f32>::iota_last(&(), full).unwrap()),
        );
        same("full", &host_of(&WgpuTensor::full(dev, full, -0.25).unwrap()), &vec![-0.25; n]);
        same(
            "sum_all",
            &host_of(&a.unary(Unary::IsFinite).unwrap().sum_all().unwrap()),
            &host_of(&ah.unary(Unary::IsFinite).unwrap().sum_all().unwrap()),
        );
    }
    // Segments and take.
    let len = 300;
    let xs: Vec<f64> = (0..len).map(|_| rng.normal()).collect();
    let seg: Vec<f64> = (0..len).map(|_| rng.below(13) as f64).collect();
    let (x, xh) = up(dev, &xs, Shape::d1(len));
    let (sg, sgh) = up(dev, &seg, Shape::d1(len));
    let sums = x.segment_sum(&sg, 13).unwrap();
    same("segment_sum", &host_of(&sums), &host_of(&xh.segment_sum(&sgh, 13).unwrap()));
    same("take", &host_of(&sums.take(&sg).unwrap()), &host_of(&xh.segment_sum(&sgh, 13).unwrap().take(&sgh).unwrap()));
    assert!(matches!(x.segment_sum(&sg, 12), Err(Error::Invalid { .. })), "segment id ≥ n must fail");
    assert!(matches!(sums.take(&x), Err(Error::Invalid { .. })), "negative take index must fail");
}

#[test]
fn primitives_match_host() {
    for (name, dev) in devices() {
        eprintln!("primitives on {} ({name})", dev.adapter_name());
        primitives_body(&dev);
    }
}

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

// ---------- the objective ----------

fn objective_body(dev: &WgpuDevice, rng: &mut Rng) {
    let shapes = [Shape3 { groups: 2, group_size: 3, t: 4, v: 12 }, Shape3 { groups: 3, group_size: 2, t: 3, v: 37 }];
    for (name, cfg) in configs(4) {
        for s in &shapes {
            let b = random_batch(rng, s, 2.0, 0.1, cfg.temperature);
            check_equivalence(dev, &format!("{name} V={}", s.v), &b, &cfg);
        }
    }
}

#[test]
fn every_objective_and_option_matches_host() {
    for (name, dev) in devices() {
        eprintln!("objectives on {} ({name})", dev.adapter_name());
        objective_body(&dev, &mut Rng(11));
    }
}

// ---------- golden cases ----------

/// The case's own evaluation, with the logits level through `composed`.
fn evaluate_case_composed(dev: &WgpuDevice, case: &Case) -> wapo_core::Result<CaseOutput> {
    let CaseInput::Logits { logits, tokens, vocab } = &case.input else {
        return case.evaluate::<WgpuTensor>(dev);
    };
    let b = Batch {
        n: case.n,
        t: case.t,
        v: *vocab,
        group_ids: case.group_ids.clone(),
        rewards: case.rewards.clone(),
        mask: case.mask.clone(),
        old: case.old_logprobs.clone(),
        logits: logits.clone(),
        tokens: tokens.clone(),
    };
    let out = evaluate::<WgpuTensor>(dev, &b, &case.config, false)?;
    CaseOutput::download(&out, case.n, case.t, Some(*vocab))
}

#[test]
fn golden_cases_fused_and_composed() {
    for (name, dev) in devices() {
        let mut failures = Vec::new();
        for (file, case) in wapo_tests::golden_cases() {
            let expected = case.expected.as_ref().expect("golden case has `expected`");
            for (path, out) in
                [("fused", case.evaluate::<WgpuTensor>(&dev)), ("composed", evaluate_case_composed(&dev, &case))]
            {
                match out {
                    Err(e) => failures.push(format!("{file} {path}: {e}")),
                    Ok(o) => {
                        for d in compare(&o.to_json(), expected, Tolerance::F32) {
                            if !d.ok {
                                failures.push(format!("{file} {path}: {} max |Δ| {:e}", d.field, d.max_abs));
                            }
                        }
                    }
                }
            }
        }
        assert!(failures.is_empty(), "{name}: {} failing fields:\n{}", failures.len(), failures.join("\n"));
    }
}

// ---------- stability ----------

fn stability_body(dev: &WgpuDevice) {
    let mut rng = Rng(23);
    let wapo = ObjectiveConfig::new(Objective::Wapo, 6);
    let grpo = ObjectiveConfig::new(Objective::Grpo, 6);
    let s = |groups, group_size, t, v| Shape3 { groups, group_size, t, v };
    // Logits of magnitude 1e4. As in sampling, the sampled token is likely:
    // it sits at the row max with a runner-up 1 below, so that ℓ is small (an
    // f32 ℓ of magnitude 1e4 would itself be off by 5e-4).
    let mut b = random_batch(&mut rng, &s(2, 3, 3, 16), 1e4, 0.0, 1.0);
    for (row, z) in b.logits.chunks_mut(16).enumerate() {
        let y = b.tokens[row] as usize;
        let top = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        z[y] = top + 0.5 * rng.unit();
        z[(y + 1) % 16] = z[y] - 1.0;
        let st = row_stats(z, y, 1.0);
        b.old[row] = st.logp + 0.25 * rng.normal();
    }
    check_equivalence_tol(dev, "logits ±1e4 (grpo)", &b, &grpo, 5e-3);
    check_equivalence_tol(dev, "logits ±1e4 (wapo)", &b, &wapo, 5e-3);
    // Half of the vocabulary masked to −inf, and one masked row entirely −inf.
    let mut b = random_batch(&mut rng, &s(2, 2, 3, 20), 3.0, 0.5, 1.0);
    b.mask[1] = 0.0;
    for x in &mut b.logits[20..40] {
        *x = f64::NEG_INFINITY;
    }
    check_equivalence(dev, "−inf masked vocabulary", &b, &grpo);
    // One-token vocabulary.
    let b = random_batch(&mut rng, &s(2, 2, 3, 1), 1.0, 0.0, 1.0);
    check_equivalence(dev, "V = 1", &b, &wapo);
    check_equivalence(dev, "V = 1 (grpo)", &b, &grpo);
    // Groups of size 1, and a batch whose rewards are all equal.
    let b = random_batch(&mut rng, &s(4, 1, 3, 9), 1.0, 0.0, 1.0);
    check_equivalence(dev, "groups of size 1", &b, &grpo);
    let mut b = random_batch(&mut rng, &s(2, 3, 3, 9), 1.0, 0.0, 1.0);
    b.rewards.iter_mut().for_each(|r| *r = 1.0);
    check_equivalence(dev, "all-equal rewards (wapo)", &b, &wapo);
    check_equivalence(dev, "all-equal rewards (grpo)", &b, &grpo);
}

#[test]
fn stability_cases_match_host() {
    for (name, dev) in devices() {
        eprintln!("stability on {} ({name})", dev.adapter_name());
        stability_body(&dev);
    }
}

/// A Qwen-sized vocabulary with few rows.
#[test]
fn vocabulary_151936() {
    let Some(dev) = test_context() else { return };
    let mut rng = Rng(5);
    let b = random_batch(&mut rng, &Shape3 { groups: 1, group_size: 2, t: 2, v: 151_936 }, 3.0, 0.01, 1.0);
    let mut cfg = ObjectiveConfig::new(Objective::Grpo, 4);
    cfg.temperature = 0.9;
    check_equivalence(&dev, "V = 151936", &b, &cfg);
}

// ---------- errors ----------

fn err_of<T: Tensor>(dev: &T::Device, b: &Batch, cfg: &ObjectiveConfig, fused: bool) -> Error {
    match evaluate::<T>(dev, b, cfg, fused) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

#[test]
fn errors_match_composed() {
    let Some(dev) = test_context() else { return };
    let mut rng = Rng(3);
    let cfg = ObjectiveConfig::new(Objective::Wapo, 5);
    let base = random_batch(&mut rng, &Shape3 { groups: 2, group_size: 2, t: 3, v: 8 }, 1.0, 0.0, 1.0);
    let row = 4; // sequence 1, token 1
    let mut cases = Vec::new();
    let mut b = base.clone();
    b.mask[row] = 1.0;
    let y = b.tokens[row] as usize;
    b.logits[row * 8 + y] = f64::NEG_INFINITY;
    cases.push(("−inf sampled logit", b));
    let mut b = base.clone();
    b.mask[row] = 1.0;
    b.logits[row * 8 + (b.tokens[row] as usize + 1) % 8] = f64::NAN;
    cases.push(("NaN in a real row", b));
    let mut b = base.clone();
    b.tokens[row] = 8.0;
    cases.push(("token id = V", b));
    let mut b = base.clone();
    b.mask[2] = 0.5;
    cases.push(("mask 0.5", b));
    for (what, b) in cases {
        let want = err_of::<HostTensor<f64>>(&(), &b, &cfg, false);
        assert_eq!(err_of::<WgpuTensor>(&dev, &b, &cfg, true), want, "{what}: fused");
        assert_eq!(err_of::<WgpuTensor>(&dev, &b, &cfg, false), want, "{what}: composed");
    }
    // A −inf sampled logit at a padding position is fine.
    let mut b = base.clone();
    b.mask[row] = 0.0;
    b.logits[row * 8 + b.tokens[row] as usize] = f64::NEG_INFINITY;
    check_equivalence(&dev, "−inf sampled logit at padding", &b, &cfg);
}

// ---------- beyond one storage binding ----------

/// Just over 128 MiB of logits (lavapipe's binding limit): the fused kernels
/// run in several windows. The reference is a naive f64 loop per row
/// (`row_stats`) and the host token-level engine.
#[test]
fn logits_beyond_128_mib() {
    let Some(dev) = test_context() else { return };
    let mut rng = Rng(99);
    let (n, t, v) = (4, 8, 1_081_343); // 32 rows, 138 MB of f32, V odd: scalar path
    let b = random_batch(&mut rng, &Shape3 { groups: 2, group_size: 2, t, v }, 2.0, 0.0, 1.0);
    let cfg = ObjectiveConfig::new(Objective::Grpo, t);
    let out = evaluate::<WgpuTensor>(&dev, &b, &cfg, true).expect("fused");
    let stats: Vec<_> =
        (0..n * t).map(|r| row_stats(&b.logits[r * v..(r + 1) * v], b.tokens[r] as usize, 1.0)).collect();
    let lp: Vec<f64> = stats.iter().map(|s| s.logp).collect();
    let sq: Vec<f64> = stats.iter().map(|s| s.sum_p_sq).collect();
    let ent: Vec<f64> = stats.iter().map(|s| s.entropy).collect();
    let h = |d: &[f64], s: Shape| HostTensor::<f64>::from_f64(d, s).unwrap();
    let groups = Groups::<HostTensor<f64>>::from_ids(&(), &b.group_ids).unwrap();
    let (rw, mk, old, lpt, sqt) = (
        h(&b.rewards, Shape::d1(n)),
        h(&b.mask, Shape::d2(n, t)),
        h(&b.old, Shape::d2(n, t)),
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
        let y = b.tokens[r] as usize;
        for j in (0..v).step_by(97).chain([y, v - 1]) {
            let p = (b.logits[r * v + j] - stats[r].lse).exp();
            let want = g[r] * (f64::from(j == y) - p);
            close(&format!("grad_logits[{r}][{j}]"), grad[r * v + j], want, gscale);
        }
    }
}
