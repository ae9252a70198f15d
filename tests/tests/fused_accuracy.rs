//! Accuracy of the fused float32 logits paths — the CPU backend's
//! (`CpuTensor`) and the wgpu backend's — against the float64 reference
//! (`HostTensor<f64>`), next to the composed float32 path
//! (`HostTensor<f32>` through `logits::composed`): on every field, each
//! fused path must be inside the float32 tolerance of `docs/CASES.md` and at
//! least as close to the reference as the composed f32 path, within a small
//! factor.
//!
//! The cases have logits of magnitude up to 1e4 (f32 values, so every path
//! reads the same numbers) at τ ∈ {0.3, 0.7, 1, 1.5}, where z/τ − m/τ, a
//! difference of two rounded numbers of magnitude |z|/τ, loses ~1e-4; the
//! fused kernels shift first, (z − m)/τ, and keep the f32 composed path's
//! accuracy. Sampled tokens are drawn from the policy, as in training: a
//! token with ℓ ≈ −1e4 has an f32 log-prob whose rounding alone moves its
//! ratio by 1e-3, which no float32 path can carry to 1e-4.
//!
//! Without a wgpu adapter the wgpu half prints that it skipped
//! (`WAPO_REQUIRE_GPU=1` makes that a failure).

use wapo_core::advantage::Groups;
use wapo_core::case::{Case, CaseInput, Tolerance};
use wapo_core::host::HostTensor;
use wapo_core::logits::{LogitsBatch, composed, logits_objective, row_stats};
use wapo_core::objective::Output;
use wapo_core::{Objective, Shape, Tensor};
use wapo_cpu::{Cpu, CpuTensor};
use wapo_tests::random::{Rng, logits_case};
use wapo_wgpu::{WgpuTensor, test_context};

/// A fused path's worst error may exceed the composed f32 path's by this factor…
const FACTOR: f64 = 2.0;
/// …plus this many units of f32 rounding (2^-24) of the field's scale: two
/// paths that are both exact to rounding differ by a few ulps either way.
const ULPS: f64 = 8.0;

type Fields = Vec<(&'static str, Vec<f64>)>;

fn host<T: Tensor>(x: &T) -> Vec<f64> {
    let mut v = vec![0.0; x.shape().numel()];
    x.download(&mut v).expect("download");
    v
}

/// Every field of an evaluation, downloaded.
fn fields<T: Tensor>(o: &Output<T>) -> Fields {
    let opt = |x: &Option<T>| x.as_ref().map(host).expect("a logits-level field");
    vec![
        ("advantages", host(&o.advantages)),
        ("weights", host(&o.weights)),
        ("normalizer", host(&o.normalizer)),
        ("loss_sum", host(&o.loss_sum)),
        ("loss", host(&o.loss)),
        ("grad_logprobs", host(&o.grad_logprobs)),
        ("grad_logits", opt(&o.grad_logits)),
        ("logprobs", host(&o.logprobs)),
        ("entropy", opt(&o.entropy)),
        ("sum_p_sq", opt(&o.sum_p_sq)),
        ("sum_p_sq_logp", opt(&o.sum_p_sq_logp)),
        ("ratio", host(&o.ratio)),
        ("keep", host(&o.keep)),
        ("clipped", host(&o.clipped)),
        ("bins", host(&o.bins)),
        ("counts", o.count_values().expect("counts").to_vec()),
    ]
}

/// Evaluates `case` on backend `T`: its own `logits_objective` (`fused`) or
/// the core's composed default.
fn run<T: Tensor>(dev: &T::Device, case: &Case, fused: bool) -> Fields {
    let CaseInput::Logits { logits, tokens, vocab } = &case.input else { panic!("a logits-level case") };
    let (n, t) = (case.n, case.t);
    let up = |v: &[f64], s| T::upload(dev, v, s).expect("upload");
    let groups = Groups::<T>::from_ids(dev, &case.group_ids).expect("groups");
    let (r, m, z, y, o) = (
        up(&case.rewards, Shape::d1(n)),
        up(&case.mask, Shape::d2(n, t)),
        up(logits, Shape::d3(n, t, *vocab)),
        up(tokens, Shape::d2(n, t)),
        up(&case.old_logprobs, Shape::d2(n, t)),
    );
    let b = LogitsBatch { groups: &groups, rewards: &r, mask: &m, logits: &z, tokens: &y, old_logprobs: &o };
    let out = if fused { logits_objective(&case.config, &b) } else { composed(&case.config, &b) };
    fields(&out.expect("evaluation"))
}

/// The error of one field against the reference: (worst |a − b| over the
/// CASES.md f32 allowance, ≤ 1 inside; worst |a − b| over the field's scale).
fn error(got: &[f64], want: &[f64]) -> (f64, f64) {
    assert_eq!(got.len(), want.len());
    let tol = Tolerance::F32;
    let floor = tol.scale_floor.unwrap_or(0.0);
    let scale = want.iter().filter(|x| x.is_finite()).fold(floor, |m, x| m.max(x.abs()));
    let (mut of_tol, mut of_scale) = (0.0f64, 0.0f64);
    for (a, b) in got.iter().zip(want) {
        if a == b {
            continue; // equal infinities included
        }
        let d = (a - b).abs();
        let d = if d.is_nan() { f64::INFINITY } else { d };
        of_tol = of_tol.max(d / (tol.abs * scale + tol.rel * b.abs()));
        of_scale = of_scale.max(d / scale);
    }
    (of_tol, of_scale)
}

/// Positions where the reference's peak/valley test p_y < Σp² is decided
/// by less than f32 can resolve (one-hot rows: p_y and Σp² both within 1e-6
/// of 1): any float32 path may put those tokens in either bin.
fn near_ties(reference: &Fields) -> Vec<bool> {
    let get = |n: &str| &reference.iter().find(|(k, _)| *k == n).expect("field").1;
    let (logp, sq) = (get("logprobs"), get("sum_p_sq"));
    logp.iter().zip(sq).map(|(l, s)| (l.exp() - s).abs() <= 1e-6).collect()
}

/// The worst error, over the field's scale, of each field over many cases.
#[derive(Default)]
struct Worst(Vec<(&'static str, f64)>);

impl Worst {
    fn add(&mut self, name: &'static str, err: f64) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some((_, w)) => *w = w.max(err),
            None => self.0.push((name, err)),
        }
    }
    fn get(&self, name: &str) -> f64 {
        self.0.iter().find(|(n, _)| *n == name).map_or(0.0, |(_, w)| *w)
    }
}

/// One fused path on one case: every field inside the f32 tolerance (the
/// bin of a near-tie token, and the counts then, excepted). The errors go
/// into `fused` and the composed f32 path's into `composed`. Returns whether
/// the case was compared in full (no near tie where bins decide the keep
/// mask).
fn check(what: &str, case: &Case, f: &Fields, c: &Fields, r: &Fields, fused: &mut Worst, composed: &mut Worst) -> bool {
    let ties = near_ties(r);
    let tied = ties.iter().zip(&case.mask).any(|(t, m)| *t && *m != 0.0);
    let bins_matter = !case.config.include_bins.is_empty() || !case.config.exclude_bins.is_empty();
    if tied && bins_matter {
        return false;
    }
    for (((name, f), (_, c)), (_, r)) in f.iter().zip(c).zip(r) {
        let (f, c, r) = match *name {
            "counts" if tied => continue,
            "bins" => {
                let keep = |x: &Vec<f64>| x.iter().zip(&ties).filter(|(_, t)| !**t).map(|(v, _)| *v).collect();
                (keep(f), keep(c), keep(r))
            }
            _ => (f.clone(), c.clone(), r.clone()),
        };
        let (f_tol, f_err) = error(&f, &r);
        let (_, c_err) = error(&c, &r);
        assert!(f_tol <= 1.0, "{what}: {name} outside the f32 tolerance ({f_tol:.2} of it; composed f32 {c_err:e})");
        fused.add(name, f_err);
        composed.add(name, c_err);
    }
    true
}

/// Over many cases, each field's worst fused error is at most [`FACTOR`]
/// times the composed f32 path's worst plus [`ULPS`] of the field's scale
/// (per case the two are dominated by the rounding of f32 inputs and
/// outputs, which falls either way).
fn assert_as_close(what: &str, fused: &Worst, composed: &Worst) {
    for (name, f) in &fused.0 {
        let c = composed.get(name);
        let allowed = FACTOR * c + ULPS * f64::from(f32::EPSILON) / 2.0;
        println!("{what}: {name:>14}: worst fused {f:.2e}, composed f32 {c:.2e} of the field's scale");
        assert!(*f <= allowed, "{what}: {name} off by up to {f:e} of its scale, the composed f32 path by {c:e}");
    }
}

/// Exactly representable in f32, so that every path reads the same logits.
fn f32_exact(x: f64) -> f64 {
    f64::from(x as f32)
}

/// Draws each sampled token from softmax(z/τ) (in f64), and sets the
/// behaviour log-probs within ±0.25 of the current ones.
fn sample_from_policy(case: &mut Case, rng: &mut Rng) {
    let tau = case.config.temperature;
    let CaseInput::Logits { logits, tokens, vocab } = &mut case.input else { return };
    let v = *vocab;
    for (row, y) in tokens.iter_mut().enumerate() {
        let z = &logits[row * v..(row + 1) * v];
        let st = row_stats(z, 0, tau);
        let mut u = rng.uniform();
        *y = (0..v)
            .find(|k| {
                u -= ((z[*k] / tau) - st.lse).exp();
                u <= 0.0
            })
            .or_else(|| (0..v).rev().find(|k| z[*k].is_finite()))
            .unwrap_or(0) as f64;
    }
    old_near_current(case, rng, 0.25);
}

/// Each sampled token uniform among the three largest logits of its row.
fn among_top_three(case: &mut Case, rng: &mut Rng) {
    let CaseInput::Logits { logits, tokens, vocab } = &mut case.input else { return };
    for (row, y) in tokens.iter_mut().enumerate() {
        let z = &logits[row * *vocab..(row + 1) * *vocab];
        let mut order: Vec<usize> = (0..*vocab).collect();
        order.sort_by(|a, b| z[*b].total_cmp(&z[*a]));
        *y = order[rng.below(3.min(*vocab))] as f64;
    }
}

fn old_near_current(case: &mut Case, rng: &mut Rng, spread: f64) {
    let tau = case.config.temperature;
    let CaseInput::Logits { logits, tokens, vocab } = &case.input else { return };
    for (row, old) in case.old_logprobs.iter_mut().enumerate() {
        let st = row_stats(&logits[row * vocab..(row + 1) * vocab], tokens[row] as usize, tau);
        *old = if st.logp.is_finite() { st.logp + rng.range(-spread, spread) } else { -1.0 };
    }
}

/// A random case of `objective` at temperature `tau` whose rows sit at an
/// offset of up to ±`mag` with a spread of 1 to `mag` around it (clamped to
/// ±`mag`), some vocabulary entries −inf.
fn large_logits_case(seed: u64, objective: Objective, tau: f64, mag: f64) -> Case {
    let mut rng = Rng::new(seed ^ 0xacc);
    let v = rng.pick(&[5, 32, 37, 64, 128]);
    let mut case = logits_case(seed, objective, Some(v), seed.is_multiple_of(3));
    case.config.temperature = tau;
    if let CaseInput::Logits { logits, .. } = &mut case.input {
        for row in logits.chunks_mut(v) {
            let base = rng.range(-mag, mag);
            let spread = rng.pick(&[1.0, 8.0, 30.0, mag]);
            for z in row.iter_mut().filter(|z| z.is_finite()) {
                *z = f32_exact((base + rng.range(-spread, spread)).clamp(-mag, mag));
            }
        }
    }
    sample_from_policy(&mut case, &mut rng);
    case
}

/// The fused paths of both backends on one case, into the worst errors.
struct Tally {
    gpu: Option<wapo_wgpu::WgpuDevice>,
    cpu: (Worst, Worst),
    wgpu: (Worst, Worst),
    compared: usize,
    /// Cases whose bin filters were dropped for a near tie.
    skipped: usize,
}

impl Tally {
    fn new() -> Self {
        Tally { gpu: test_context(), cpu: Default::default(), wgpu: Default::default(), compared: 0, skipped: 0 }
    }
    fn case(&mut self, what: &str, case: &Case) {
        let mut reference = run::<HostTensor<f64>>(&(), case, false);
        let bins_matter = !case.config.include_bins.is_empty() || !case.config.exclude_bins.is_empty();
        let tied = near_ties(&reference).iter().zip(&case.mask).any(|(t, m)| *t && *m != 0.0);
        let mut untied;
        let case = if tied && bins_matter {
            // A near-tie token could land in either bin and so in or out of
            // the keep mask: the case is compared without bin filters.
            untied = case.clone();
            untied.config.include_bins = Default::default();
            untied.config.exclude_bins = Default::default();
            reference = run::<HostTensor<f64>>(&(), &untied, false);
            self.skipped += 1;
            &untied
        } else {
            case
        };
        let composed = run::<HostTensor<f32>>(&(), case, false);
        let cpu = run::<CpuTensor>(&Cpu::default(), case, true);
        let (f, c) = (&mut self.cpu.0, &mut self.cpu.1);
        assert!(check(&format!("cpu fused, {what}"), case, &cpu, &composed, &reference, f, c));
        self.compared += 1;
        if let Some(dev) = &self.gpu {
            let wgpu = run::<WgpuTensor>(dev, case, true);
            let (f, c) = (&mut self.wgpu.0, &mut self.wgpu.1);
            check(&format!("wgpu fused, {what}"), case, &wgpu, &composed, &reference, f, c);
        }
    }
    fn finish(&self, what: &str) {
        let (n, untied) = (self.compared, self.skipped);
        println!("{what}: {n} cases, {untied} of them compared without bin filters for a near tie");
        assert_as_close(&format!("{what}, cpu"), &self.cpu.0, &self.cpu.1);
        if self.gpu.is_some() {
            assert_as_close(&format!("{what}, wgpu"), &self.wgpu.0, &self.wgpu.1);
        }
    }
}

#[test]
fn fused_paths_are_as_accurate_as_composed_f32_on_large_logits() {
    let mut tally = Tally::new();
    let mut seed = 0u64;
    for tau in [0.3, 0.7, 1.0, 1.5] {
        for mag in [10.0, 934.0, 1e4] {
            for k in 0..8 {
                seed += 1;
                let objective = Objective::ALL[(seed as usize + k) % Objective::ALL.len()];
                let case = large_logits_case(seed, objective, tau, mag);
                tally.case(&format!("seed {seed} {objective} τ={tau} |z| ≤ {mag}"), &case);
            }
        }
    }
    tally.finish("large logits");
}

/// The case of the report: V = 32, logits up to ±934, τ = 0.7, dr_grpo. The
/// fused paths were off by 6.7e-5 in `loss_sum` and 1.1e-4 in the log-probs
/// while the composed f32 path was within the tolerance. Its logits are
/// uniform in ±934 (nearly one-hot rows); the sampled tokens are drawn from
/// the policy, or among the three largest logits of their row (ℓ of −100 or
/// so, behaviour log-probs within ±0.25 of it: the ratios are sensitive to
/// every digit of ℓ), or uniform with the random cases' behaviour log-probs
/// (−3 to −0.05; then ℓ reaches −2700 and most ratios underflow to 0).
#[test]
fn the_reported_case_v32_logits_934_tau07_dr_grpo() {
    let mut tally = Tally::new();
    for seed in 0..40u64 {
        for variant in 0..3 {
            let mut rng = Rng::new(seed ^ 0x934);
            let mut case = logits_case(seed, Objective::DrGrpo, Some(32), false);
            case.config.temperature = 0.7;
            if let CaseInput::Logits { logits, .. } = &mut case.input {
                for z in logits.iter_mut() {
                    *z = f32_exact(rng.range(-934.0, 934.0));
                }
            }
            match variant {
                0 => sample_from_policy(&mut case, &mut rng),
                1 => {
                    among_top_three(&mut case, &mut rng);
                    old_near_current(&mut case, &mut rng, 0.25);
                }
                _ => {} // uniform tokens, behaviour log-probs of the random cases
            }
            tally.case(&format!("seed {seed} variant {variant}"), &case);
        }
    }
    tally.finish("V = 32, |z| ≤ 934, τ = 0.7, dr_grpo");
}

/// Σp²·log p of every logits-level path against the reference's, and the
/// reference against its definition summed by hand in f64 (`row_stats` is
/// not used for that side).
#[test]
fn sum_p_sq_logp_is_returned_by_every_logits_path() {
    let gpu = test_context();
    for seed in 0..20u64 {
        let case = logits_case(seed, Objective::ALL[seed as usize % 9], None, seed.is_multiple_of(2));
        let CaseInput::Logits { logits, vocab, .. } = &case.input else { unreachable!() };
        let tau = case.config.temperature;
        let by_hand: Vec<f64> = logits
            .chunks(*vocab)
            .map(|z| {
                let m = z.iter().fold(f64::NEG_INFINITY, |m, x| m.max(*x)) / tau;
                let s: f64 = z.iter().map(|x| (x / tau - m).exp()).sum();
                let p: Vec<f64> = z.iter().map(|x| (x / tau - m).exp() / s).collect();
                p.iter().filter(|p| **p > 0.0).map(|p| p * p * p.ln()).sum()
            })
            .collect();
        let get = |f: &Fields| f.iter().find(|(n, _)| *n == "sum_p_sq_logp").map(|(_, v)| v.clone()).unwrap();
        let reference = get(&run::<HostTensor<f64>>(&(), &case, false));
        let (tol, _) = error(&reference, &by_hand);
        assert!(tol <= 1e-3, "seed {seed}: composed f64 vs by hand: {tol} of the f32 tolerance");
        let streamed = get(&run::<HostTensor<f64>>(&(), &case, true));
        assert!(error(&streamed, &reference).1 <= 1e-12, "seed {seed}: streamed f64");
        let mut paths = vec![
            ("composed f32", get(&run::<HostTensor<f32>>(&(), &case, false))),
            ("cpu composed", get(&run::<CpuTensor>(&Cpu::default(), &case, false))),
            ("cpu fused", get(&run::<CpuTensor>(&Cpu::default(), &case, true))),
        ];
        if let Some(dev) = &gpu {
            paths.push(("wgpu fused", get(&run::<WgpuTensor>(dev, &case, true))));
            paths.push(("wgpu composed", get(&run::<WgpuTensor>(dev, &case, false))));
        }
        for (name, got) in paths {
            let (tol, _) = error(&got, &reference);
            assert!(tol <= 1.0, "seed {seed}: {name}: Σp²·log p at {tol:.2} of the f32 tolerance");
        }
    }
}
