//! The CPU backend against the f64 host reference: every primitive, every
//! objective and option on random cases at token and logits level (host f64
//! ↔ composed f32 ↔ fused f32), numerical stability, error positions, and
//! the 80 golden cases through both logits paths.
//!
//! Each body is generic over the backend under test; `equivalence_suite!`
//! instantiates all of them for one backend (burn's and candle's pattern),
//! so another backend gets the same suite from one line at the bottom.

use serde_json::{Value, json};
use wapo_core::advantage::Groups;
use wapo_core::case::{Case, CaseInput, CaseOutput, Tolerance, compare};
use wapo_core::host::HostTensor;
use wapo_core::logits::{LogitsBatch, composed, logits_objective, row_stats};
use wapo_core::objective::{TokenBatch, token_objective};
use wapo_core::{
    AdvantageMode, Aggregation, BinSpec, Binary, Error, Objective, ObjectiveConfig, Reduce, Shape, Tensor, Unary,
};
use wapo_tests::random::{Rng, logits_case, to_case, token_case};
use wapo_tests::{assert_golden, golden_cases};

// ---------- evaluation ----------

/// Which implementation of the logits level runs.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Path {
    /// The backend's `Tensor::logits_objective` (its fused override, if any).
    Backend,
    /// The core's composed default.
    Composed,
}

/// Uploads `case` to backend `T`, evaluates it and downloads every field.
fn evaluate<T: Tensor>(dev: &T::Device, case: &Case, path: Path) -> wapo_core::Result<CaseOutput> {
    let (n, t) = (case.n, case.t);
    let groups = Groups::<T>::from_ids(dev, &case.group_ids)?;
    let rewards = T::upload(dev, &case.rewards, Shape::d1(n))?; // (N)
    let mask = T::upload(dev, &case.mask, Shape::d2(n, t))?; // (N, T)
    let old = T::upload(dev, &case.old_logprobs, Shape::d2(n, t))?; // (N, T)
    match &case.input {
        CaseInput::Tokens { logprobs, sum_p_sq } => {
            let lp = T::upload(dev, logprobs, Shape::d2(n, t))?; // (N, T)
            let sq = sum_p_sq.as_ref().map(|s| T::upload(dev, s, Shape::d2(n, t))).transpose()?; // (N, T)
            let batch = TokenBatch {
                groups: &groups,
                rewards: &rewards,
                mask: &mask,
                logprobs: &lp,
                old_logprobs: &old,
                sum_p_sq: sq.as_ref(),
            };
            CaseOutput::download(&token_objective(&case.config, &batch)?, n, t, None)
        }
        CaseInput::Logits { logits, tokens, vocab } => {
            let z = T::upload(dev, logits, Shape::d3(n, t, *vocab))?; // (N, T, V)
            let y = T::upload(dev, tokens, Shape::d2(n, t))?; // (N, T)
            let batch = LogitsBatch {
                groups: &groups,
                rewards: &rewards,
                mask: &mask,
                logits: &z,
                tokens: &y,
                old_logprobs: &old,
            };
            let out = match path {
                Path::Backend => logits_objective(&case.config, &batch)?,
                Path::Composed => composed(&case.config, &batch)?,
            };
            CaseOutput::download(&out, n, t, Some(*vocab))
        }
    }
}

/// Every field of an output as the case format writes it, plus ∂loss/∂ℓ,
/// which that format leaves out at logits level.
fn fields(o: &CaseOutput) -> Value {
    let mut j = o.to_json();
    j["grad_logprobs"] = json!(o.grad_logprobs);
    j
}

/// Fails with every field of `got` outside `tol` of `want` (counts exact).
fn assert_agree(what: &str, got: &CaseOutput, want: &CaseOutput, tol: Tolerance) {
    let bad: Vec<String> = compare(&fields(got), &fields(want), tol)
        .into_iter()
        .filter(|d| !d.ok)
        .map(|d| format!("{}: max |Δ| {:e} at {:?} {}", d.field, d.max_abs, d.worst, d.note.unwrap_or_default()))
        .collect();
    assert!(bad.is_empty(), "{what}:\n  {}", bad.join("\n  "));
}

/// Host f64 ↔ `T` (and, at logits level, `T` composed ↔ `T` fused), all
/// within the f32 tolerance of `docs/CASES.md`.
fn check_case<T: Tensor>(dev: &T::Device, what: &str, case: &Case) {
    check_case_within::<T>(dev, what, case, Tolerance::F32, Tolerance::F32);
}

fn check_case_within<T: Tensor>(
    dev: &T::Device,
    what: &str,
    case: &Case,
    backend_tol: Tolerance,
    composed_tol: Tolerance,
) {
    let want = evaluate::<HostTensor<f64>>(&(), case, Path::Composed)
        .unwrap_or_else(|e| panic!("{what}: host reference: {e}"));
    let got = evaluate::<T>(dev, case, Path::Backend).unwrap_or_else(|e| panic!("{what}: backend: {e}"));
    assert_agree(&format!("{what}: backend vs host f64"), &got, &want, backend_tol);
    if matches!(case.input, CaseInput::Logits { .. }) {
        let comp = evaluate::<T>(dev, case, Path::Composed).unwrap_or_else(|e| panic!("{what}: composed: {e}"));
        assert_agree(&format!("{what}: composed vs host f64"), &comp, &want, composed_tol);
        assert_agree(&format!("{what}: backend vs composed"), &got, &comp, composed_tol);
    }
}

// ---------- cases ----------

/// A logits-level case with behaviour log-probs 0.25 (in log space) from the
/// current ones, so that ratios fall on both sides of every clip bound.
fn near_policy_case(seed: u64, objective: Objective, v: Option<usize>, masked: bool) -> Case {
    let mut case = logits_case(seed, objective, v, masked);
    let mut rng = Rng::new(seed ^ 0x5eed);
    if let CaseInput::Logits { logits, tokens, vocab } = &case.input {
        let tau = case.config.temperature;
        for (row, old) in case.old_logprobs.iter_mut().enumerate() {
            let st = row_stats(&logits[row * vocab..(row + 1) * vocab], tokens[row] as usize, tau);
            if st.logp.is_finite() {
                *old = st.logp + rng.range(-0.25, 0.25);
            }
        }
    }
    case.config.mask_positive_advantages = rng.coin(0.1);
    case
}

/// Which options a list of configurations exercised, so a body can assert
/// that none of them went untested.
#[derive(Default)]
struct Coverage {
    aggregation: [bool; 3],
    kept_tokens: bool,
    include_bins: bool,
    exclude_bins: bool,
    no_importance_sampling: bool,
    temperature: bool,
    positive_masked: bool,
}

impl Coverage {
    fn note(&mut self, c: &ObjectiveConfig) {
        if let Some(a) = c.aggregation {
            self.aggregation[a as usize] = true;
        }
        self.kept_tokens |= c.normalize_by_kept_tokens;
        self.include_bins |= !c.include_bins.is_empty();
        self.exclude_bins |= !c.exclude_bins.is_empty();
        self.no_importance_sampling |= !c.importance_sampling;
        self.temperature |= c.temperature != 1.0;
        self.positive_masked |= c.mask_positive_advantages;
    }
    fn assert_complete(&self, what: &str, logits_level: bool) {
        assert!(self.aggregation.iter().all(|a| *a), "{what}: an aggregation override untested");
        assert!(self.kept_tokens, "{what}: normalize_by_kept_tokens untested");
        assert!(self.include_bins && self.exclude_bins, "{what}: bins untested");
        assert!(self.no_importance_sampling, "{what}: importance_sampling = false untested");
        if logits_level {
            assert!(self.temperature, "{what}: temperature untested");
            assert!(self.positive_masked, "{what}: mask_positive_advantages untested");
        }
    }
}

/// A hand-built logits case; `old` defaults to the current log-probs
/// shifted by ±0.1.
struct Built {
    config: ObjectiveConfig,
    group_ids: Vec<i64>,
    rewards: Vec<f64>,
    t: usize,
    v: usize,
    logits: Vec<f64>,
    tokens: Vec<f64>,
    mask: Vec<f64>,
}

impl Built {
    fn case(self) -> Case {
        let n = self.group_ids.len();
        let old = (0..n * self.t)
            .map(|row| {
                let z = &self.logits[row * self.v..(row + 1) * self.v];
                let lp = row_stats(z, self.tokens[row] as usize, self.config.temperature).logp;
                if lp.is_finite() { lp + if row % 2 == 0 { 0.1 } else { -0.1 } } else { -1.0 }
            })
            .collect();
        Case {
            name: None,
            config: self.config,
            n,
            t: self.t,
            group_ids: self.group_ids,
            rewards: self.rewards,
            mask: self.mask,
            old_logprobs: old,
            input: CaseInput::Logits { logits: self.logits, tokens: self.tokens, vocab: self.v },
            expected: None,
        }
    }
}

// ---------- bodies ----------

/// Values every elementwise op must treat exactly as the host does.
fn special_values(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n)
        .map(|k| match k % 9 {
            0 => 0.0,
            1 => f64::NEG_INFINITY,
            2 => f64::INFINITY,
            3 => f64::NAN,
            4 => -2.5,
            5 => 1.0,
            _ => rng.range(-4.0, 4.0),
        })
        .collect()
}

fn download<T: Tensor>(x: &T) -> Vec<f64> {
    let mut v = vec![0.0; x.shape().numel()];
    x.download(&mut v).expect("download");
    v
}

/// Equal, both NaN, or within 2 f32 ulp (exp/ln of two libms).
fn assert_same(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (k, (a, b)) in got.iter().zip(want).enumerate() {
        let ok = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 2.4e-7 * b.abs();
        assert!(ok, "{what}[{k}]: backend {a} vs host {b}");
    }
}

/// Every primitive, in every broadcast form, on special values, against
/// `HostTensor<f32>`; shape errors equal the host's.
fn primitives_body<T: Tensor>(dev: &T::Device) {
    let mut rng = Rng::new(11);
    let full = Shape::d3(3, 4, 5);
    let forms = [full, Shape::d2(3, 4), Shape::d1(1)];
    let data: Vec<Vec<f64>> = forms.iter().map(|s| special_values(&mut rng, s.numel())).collect();
    let up =
        |d: &[f64], s: Shape| (T::upload(dev, d, s).expect("upload"), HostTensor::<f32>::from_f64(d, s).expect("host"));
    let (x, hx) = up(&data[0], full);
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
        let got = x.unary(op).expect("unary");
        assert_eq!(got.shape(), full);
        assert_same(&format!("{op:?}"), &download(&got), &download(&hx.unary(op).unwrap()));
    }
    let binaries = [
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
    ];
    for (i, sa) in forms.iter().enumerate() {
        for sb in &forms {
            let (a, ha) = up(&data[i], *sa);
            let (b, hb) = up(&special_values(&mut rng, sb.numel()), *sb);
            for op in binaries {
                let got = a.binary(&b, op).expect("binary");
                let want = ha.binary(&hb, op).unwrap();
                assert_eq!(got.shape(), want.shape(), "{op:?} {sa} {sb}");
                assert_same(&format!("{op:?} {sa} {sb}"), &download(&got), &download(&want));
            }
            for sc in &forms {
                let (c, hc) = up(&special_values(&mut rng, sc.numel()), *sc);
                let got = T::select(&c, &a, &b).expect("select");
                let want = HostTensor::select(&hc, &ha, &hb).unwrap();
                assert_eq!(got.shape(), want.shape(), "select {sc} {sa} {sb}");
                assert_same(&format!("select {sc} {sa} {sb}"), &download(&got), &download(&want));
            }
        }
    }
    let (r, hr) = up(&data[1], Shape::d2(3, 4));
    assert_eq!(
        x.binary(&r.reshape(Shape::d2(4, 3)).unwrap(), Binary::Add).err(),
        hx.binary(&hr.reshape(Shape::d2(4, 3)).unwrap(), Binary::Add).err(),
        "a row operand of the wrong shape"
    );
    for op in [Reduce::Sum, Reduce::Max, Reduce::LogSumExp] {
        let rows: Vec<f64> = (0..60)
            .map(|k| match k / 5 {
                0 => f64::NEG_INFINITY,
                1 if k % 5 == 2 => f64::INFINITY,
                2 if k % 5 == 1 => f64::NAN,
                3 => 1e4 + (k % 5) as f64,
                _ => rng.range(-3.0, 3.0),
            })
            .collect();
        let (a, ha) = up(&rows, full);
        let got = a.reduce_last(op).expect("reduce");
        assert_eq!(got.shape(), Shape::d2(3, 4));
        assert_same(&format!("{op:?}"), &download(&got), &download(&ha.reduce_last(op).unwrap()));
    }
    let idx: Vec<f64> = (0..12).map(|k| (k * 7 % 5) as f64).collect();
    let (i, hi) = up(&idx, Shape::d2(3, 4));
    assert_same("gather_last", &download(&x.gather_last(&i).unwrap()), &download(&hx.gather_last(&hi).unwrap()));
    let (bad, hbad) = up(&[5.0; 12], Shape::d2(3, 4));
    assert_eq!(x.gather_last(&bad).err(), hx.gather_last(&hbad).err());
    let seg = [2.0, 0.0, 2.0, 1.0, 0.0, 2.0];
    let vals = [1.5, -2.0, 0.25, 4.0, 8.0, -1.0];
    let (s, hs) = up(&seg, Shape::d1(6));
    let (v, hv) = up(&vals, Shape::d1(6));
    let sums = v.segment_sum(&s, 3).unwrap();
    assert_same("segment_sum", &download(&sums), &download(&hv.segment_sum(&hs, 3).unwrap()));
    assert_same("take", &download(&sums.take(&s).unwrap()), &[0.75, 6.0, 0.75, 4.0, 6.0, 0.75]);
    assert_eq!(v.segment_sum(&s, 2).err(), hv.segment_sum(&hs, 2).err());
    assert_same("iota_last", &download(&T::iota_last(dev, Shape::d2(2, 3)).unwrap()), &[0.0, 1.0, 2.0, 0.0, 1.0, 2.0]);
    assert_eq!(
        T::upload(dev, &[1.0; 5], Shape::d2(2, 3)).err(),
        HostTensor::<f32>::upload(&(), &[1.0; 5], Shape::d2(2, 3)).err()
    );
}

/// Every objective at token level, on random cases with random options.
fn token_level_body<T: Tensor>(dev: &T::Device) {
    let mut cov = Coverage::default();
    for obj in Objective::ALL {
        for seed in 0..24 {
            let (cfg, c) = token_case(1000 + seed, obj);
            cov.note(&cfg);
            check_case::<T>(dev, &format!("{obj} token seed {seed}"), &to_case(&cfg, &c));
        }
    }
    cov.assert_complete("token level", false);
}

/// Every objective at logits level: random V, −inf entries in half of the
/// cases, temperatures, behaviour policies on both sides of the clip range.
fn logits_level_body<T: Tensor>(dev: &T::Device) {
    let mut cov = Coverage::default();
    for obj in Objective::ALL {
        for seed in 0..24 {
            let case = near_policy_case(2000 + seed, obj, None, seed % 2 == 0);
            cov.note(&case.config);
            check_case::<T>(dev, &format!("{obj} logits seed {seed}"), &case);
        }
    }
    cov.assert_complete("logits level", true);
}

/// Logits of magnitude 1e4, −inf vocabulary entries, a V = 1 batch, groups
/// of one, all-equal rewards.
fn stability_body<T: Tensor>(dev: &T::Device) {
    let mut rng = Rng::new(77);
    // Rows around +1e4 or −1e4 (steps of 1/64 are exact in f32 there), a
    // tail at −1e4 or −inf, and the sampled token of every real position in
    // the live part of its row.
    let (n, t, v) = (4, 3, 40);
    let mut logits = Vec::with_capacity(n * t * v);
    let mut tokens = Vec::new();
    for row in 0..n * t {
        let base = if row % 2 == 0 { 1e4 } else { -1e4 };
        for k in 0..v {
            logits.push(match k {
                0..20 => base + (rng.range(-192.0, 192.0)).round() / 64.0,
                20..30 => -1e4,
                _ => f64::NEG_INFINITY,
            });
        }
        tokens.push(rng.below(20) as f64);
    }
    for obj in [Objective::Wapo, Objective::Grpo, Objective::Gspo, Objective::Dapo] {
        for tau in [1.0, 0.5] {
            let mut config = ObjectiveConfig::new(obj, t);
            config.temperature = tau;
            let case = Built {
                config,
                group_ids: vec![0, 0, 1, 1],
                rewards: vec![1.0, 0.0, 0.0, 1.0],
                t,
                v,
                logits: logits.clone(),
                tokens: tokens.clone(),
                mask: vec![1.0; n * t],
            }
            .case();
            check_case_within::<T>(dev, &format!("±1e4 {obj} τ={tau}"), &case, Tolerance::F32, Tolerance::F32);
        }
    }

    // V = 1: ℓ = 0, H = 0, Σp² = 1, no gradient through the logits.
    let case = Built {
        config: ObjectiveConfig::new(Objective::Grpo, 2),
        group_ids: vec![0, 0, 1],
        rewards: vec![1.0, 0.0, 1.0],
        t: 2,
        v: 1,
        logits: vec![3.0, -1e4, 0.5, 7.0, 1e4, -2.0],
        tokens: vec![0.0; 6],
        mask: vec![1.0, 1.0, 1.0, 0.0, 1.0, 1.0],
    }
    .case();
    check_case::<T>(dev, "V = 1", &case);
    let out = evaluate::<T>(dev, &case, Path::Backend).expect("V = 1");
    assert!(out.grad_logits.unwrap().iter().all(|g| *g == 0.0));
    assert!(out.sum_p_sq.unwrap().iter().all(|s| *s == 1.0));

    // Groups of one and all-equal rewards: every group-relative advantage is 0.
    for (what, ids, rewards) in [
        ("groups of one", vec![0, 1, 2, 3], vec![1.0, 0.0, 1.0, 0.5]),
        ("all-equal rewards", vec![0, 0, 0, 0], vec![0.5; 4]),
    ] {
        for obj in Objective::ALL {
            let case = Built {
                config: ObjectiveConfig::new(obj, 3),
                group_ids: ids.clone(),
                rewards: rewards.clone(),
                t: 3,
                v: 6,
                logits: (0..72).map(|_| rng.range(-3.0, 3.0)).collect(),
                tokens: (0..12).map(|_| rng.below(6) as f64).collect(),
                mask: (0..12).map(|k| if k % 5 == 4 { 0.0 } else { 1.0 }).collect(),
            }
            .case();
            check_case::<T>(dev, &format!("{what} {obj}"), &case);
            let out = evaluate::<T>(dev, &case, Path::Backend).expect(what);
            if obj.advantage_mode() != AdvantageMode::Raw {
                assert!(out.advantages.iter().all(|a| *a == 0.0), "{what} {obj}: {:?}", out.advantages);
            }
            assert!(out.loss.is_finite(), "{what} {obj}");
        }
    }

    // −inf vocabulary entries on every row: their gradient is exactly 0.
    let case = near_policy_case(31, Objective::Wapo, Some(9), true);
    check_case::<T>(dev, "masked vocabulary", &case);
    let out = evaluate::<T>(dev, &case, Path::Backend).expect("masked vocabulary");
    if let CaseInput::Logits { logits, .. } = &case.input {
        let grad = out.grad_logits.unwrap();
        let masked = logits.iter().filter(|z| **z == f64::NEG_INFINITY).count();
        assert!(masked > 0, "the case has masked entries");
        for (z, g) in logits.iter().zip(&grad) {
            if *z == f64::NEG_INFINITY {
                assert_eq!(*g, 0.0);
            }
        }
    }
}

/// A Qwen-sized vocabulary on two rows.
fn large_vocab_body<T: Tensor>(dev: &T::Device) {
    for (seed, obj) in [(5, Objective::Wapo), (6, Objective::Grpo)] {
        let mut rng = Rng::new(seed);
        let v = 151_936;
        let mut logits: Vec<f64> = (0..2 * v).map(|_| 4.0 * rng.range(-1.0, 1.0)).collect();
        for z in logits.iter_mut().step_by(13) {
            *z = f64::NEG_INFINITY;
        }
        let tokens = vec![1.0, 150_001.0];
        let mut config = ObjectiveConfig::new(obj, 2);
        config.exclude_bins = BinSpec::NEG_VALLEY;
        let case = Built {
            config,
            group_ids: vec![0, 0],
            rewards: vec![1.0, 0.0],
            t: 1,
            v,
            logits,
            tokens,
            mask: vec![1.0, 1.0],
        }
        .case();
        check_case::<T>(dev, &format!("V = 151936 {obj}"), &case);
    }
}

fn error_of<T: Tensor>(dev: &T::Device, case: &Case, path: Path) -> Error {
    match evaluate::<T>(dev, case, path) {
        Ok(_) => panic!("{path:?}: expected an error"),
        Err(e) => e,
    }
}

/// An edit of a case's (logits, tokens) given a real row and V.
type Edit = dyn Fn(&mut [f64], &mut [f64], usize, usize);

/// Bad inputs give the composed path's error, at the same position.
fn errors_body<T: Tensor>(dev: &T::Device) {
    let base = || near_policy_case(41, Objective::Grpo, Some(5), false);
    let real = |c: &Case| c.mask.iter().position(|m| *m == 1.0).expect("a real token");
    let with_logits = |f: &Edit| {
        let mut c = base();
        let r = real(&c);
        if let CaseInput::Logits { logits, tokens, vocab } = &mut c.input {
            f(logits, tokens, r, *vocab);
        }
        c
    };
    let cases = [
        ("−inf sampled logit", with_logits(&|z, y, r, v| z[r * v + y[r] as usize] = f64::NEG_INFINITY)),
        ("NaN in a real row", with_logits(&|z, y, r, v| z[r * v + (y[r] as usize + 1) % v] = f64::NAN)),
        ("+inf in a real row", with_logits(&|z, y, r, v| z[r * v + (y[r] as usize + 2) % v] = f64::INFINITY)),
        ("token id = V", with_logits(&|_, y, r, v| y[r] = v as f64)),
        ("token id < 0", with_logits(&|_, y, r, _| y[r] = -1.0)),
        ("fractional token id", with_logits(&|_, y, r, _| y[r] = 1.5)),
    ];
    for (what, case) in &cases {
        let want = error_of::<HostTensor<f64>>(&(), case, Path::Composed);
        assert_eq!(error_of::<T>(dev, case, Path::Composed), want, "{what}: composed");
        assert_eq!(error_of::<T>(dev, case, Path::Backend), want, "{what}: backend");
    }
    let want = error_of::<HostTensor<f64>>(&(), &cases[0].1, Path::Composed);
    assert!(matches!(want, Error::Invalid { field: "logits", pos, .. } if pos.indices().len() == 3), "{want:?}");

    // Unused positions may hold anything: NaN, +inf and −inf rows at mask = 0.
    let mut c = base();
    let pad = c.mask.iter().position(|m| *m == 0.0);
    let Some(r) = pad else {
        panic!("the case has a padded position");
    };
    let v = match &mut c.input {
        CaseInput::Logits { logits, vocab, .. } => {
            logits[r * *vocab] = f64::NAN;
            logits[r * *vocab + 1] = f64::INFINITY;
            *vocab
        }
        CaseInput::Tokens { .. } => unreachable!("a logits case"),
    };
    let out = evaluate::<T>(dev, &c, Path::Backend).expect("NaN at a padded position");
    assert!(out.loss.is_finite());
    let g = out.grad_logits.expect("logits level");
    assert!(g[r * v..(r + 1) * v].iter().all(|x| *x == 0.0));
    let c = {
        let mut c = base();
        c.config.aggregation = Some(Aggregation::Global);
        c.config.clip_eps = Some(f64::NAN);
        c
    };
    assert_eq!(
        error_of::<T>(dev, &c, Path::Backend),
        error_of::<HostTensor<f64>>(&(), &c, Path::Composed),
        "config error"
    );
}

/// The 80 golden cases, through the backend and through the composed path.
fn golden_body<T: Tensor>(dev: &T::Device) {
    assert_golden::<T>(dev, Tolerance::F32);
    let mut failures = Vec::new();
    for (name, case) in golden_cases() {
        if !matches!(case.input, CaseInput::Logits { .. }) {
            continue;
        }
        let out = evaluate::<T>(dev, &case, Path::Composed).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected = case.expected.as_ref().expect("golden case has `expected`");
        for d in compare(&out.to_json(), expected, Tolerance::F32) {
            if !d.ok {
                failures.push(format!("{name}: composed {}: max |Δ| {:e}", d.field, d.max_abs));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------- the suite, per backend ----------

/// Instantiates every body above as `#[test]`s for one backend:
/// `equivalence_suite!(module_name: TensorType = device_expression);`
macro_rules! equivalence_suite {
    ($name:ident: $tensor:ty = $dev:expr) => {
        mod $name {
            use super::*;

            fn dev() -> <$tensor as Tensor>::Device {
                $dev
            }

            #[test]
            fn primitives_match_host() {
                primitives_body::<$tensor>(&dev());
            }
            #[test]
            fn token_level_every_objective_and_option() {
                token_level_body::<$tensor>(&dev());
            }
            #[test]
            fn logits_level_every_objective_and_option() {
                logits_level_body::<$tensor>(&dev());
            }
            #[test]
            fn stability() {
                stability_body::<$tensor>(&dev());
            }
            #[test]
            fn vocabulary_151936() {
                large_vocab_body::<$tensor>(&dev());
            }
            #[test]
            fn errors_match_composed() {
                errors_body::<$tensor>(&dev());
            }
            #[test]
            fn golden_cases() {
                golden_body::<$tensor>(&dev());
            }
        }
    };
}

equivalence_suite!(cpu: wapo_cpu::CpuTensor = wapo_cpu::Cpu::default());
