//! The objective on a backend against the f64 host reference: every
//! objective and option on random cases at token and logits level, the
//! option grid with every output tensor compared, numerical stability, a
//! Qwen-sized vocabulary, error positions, and the 80 golden cases through
//! the backend's path and the composed one.

use wapo_core::case::{Case, CaseInput, Tolerance, compare};
use wapo_core::host::HostTensor;
use wapo_core::logits::row_stats;
use wapo_core::{AdvantageMode, Aggregation, BinSpec, Error, Objective, ObjectiveConfig};

use super::Profile;
use super::cases::{BatchShape, Built, Coverage, near_policy_case, option_grid, random_batch};
use super::eval::{Path, check_case, check_case_within, error_of, evaluate};
use super::fields::{check_fields, check_fields_tol};
use crate::random::{Rng, to_case, token_case};
use crate::{assert_golden, golden_cases};

/// Every objective at token level, on random cases with random options.
pub fn token_level_body<T: wapo_core::Tensor>(dev: &T::Device) {
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
pub fn logits_level_body<T: wapo_core::Tensor>(dev: &T::Device) {
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

/// Every objective at its defaults and with every option, on two shapes,
/// every output tensor compared.
pub fn option_grid_body<T: wapo_core::Tensor>(dev: &T::Device) {
    let mut rng = Rng::new(11);
    let shapes =
        [BatchShape { groups: 2, group_size: 3, t: 4, v: 12 }, BatchShape { groups: 3, group_size: 2, t: 3, v: 37 }];
    for (name, cfg) in option_grid(4) {
        for s in &shapes {
            let case = random_batch(&mut rng, s, 2.0, 0.1, cfg.clone());
            check_fields::<T>(dev, &format!("{name} V={}", s.v), &case);
        }
    }
}

/// Logits of magnitude 1e4, −inf vocabulary entries, a V = 1 batch, groups
/// of one, all-equal rewards.
pub fn stability_body<T: wapo_core::Tensor>(dev: &T::Device) {
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

    // As in sampling, the sampled token is likely: it sits at the row max
    // with a runner-up 1 below, so that ℓ is small (an f32 ℓ of magnitude
    // 1e4 would itself be off by 5e-4).
    let s = |groups, group_size, t, v| BatchShape { groups, group_size, t, v };
    let (wapo, grpo) = (ObjectiveConfig::new(Objective::Wapo, 6), ObjectiveConfig::new(Objective::Grpo, 6));
    let mut b = random_batch(&mut rng, &s(2, 3, 3, 16), 1e4, 0.0, grpo.clone());
    if let CaseInput::Logits { logits, tokens, .. } = &mut b.input {
        for (row, z) in logits.chunks_mut(16).enumerate() {
            let y = tokens[row] as usize;
            let top = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            z[y] = top + 0.5 * rng.uniform();
            z[(y + 1) % 16] = z[y] - 1.0;
            b.old_logprobs[row] = row_stats(z, y, 1.0).logp + 0.25 * rng.normal();
        }
    }
    check_fields_tol::<T>(dev, "logits ±1e4 (grpo)", &b, 5e-3);
    check_fields_tol::<T>(dev, "logits ±1e4 (wapo)", &Case { config: wapo.clone(), ..b }, 5e-3);

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
    check_fields::<T>(dev, "V = 1", &case);
    let out = evaluate::<T>(dev, &case, Path::Backend).expect("V = 1");
    assert!(out.grad_logits.unwrap().iter().all(|g| *g == 0.0));
    assert!(out.sum_p_sq.unwrap().iter().all(|s| *s == 1.0));
    let b = random_batch(&mut rng, &s(2, 2, 3, 1), 1.0, 0.0, wapo.clone());
    check_fields::<T>(dev, "V = 1 (wapo)", &b);

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
            check_fields::<T>(dev, &format!("{what} {obj}"), &case);
            let out = evaluate::<T>(dev, &case, Path::Backend).expect(what);
            if obj.advantage_mode() != AdvantageMode::Raw {
                assert!(out.advantages.iter().all(|a| *a == 0.0), "{what} {obj}: {:?}", out.advantages);
            }
            assert!(out.loss.is_finite(), "{what} {obj}");
        }
    }

    // Half of the vocabulary masked to −inf, and one padded row entirely −inf.
    let mut b = random_batch(&mut rng, &s(2, 2, 3, 20), 3.0, 0.5, grpo);
    b.mask[1] = 0.0;
    if let CaseInput::Logits { logits, .. } = &mut b.input {
        logits[20..40].iter_mut().for_each(|x| *x = f64::NEG_INFINITY);
    }
    check_fields::<T>(dev, "−inf masked vocabulary", &b);

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

/// A Qwen-sized vocabulary on few rows.
pub fn large_vocab_body<T: wapo_core::Tensor>(dev: &T::Device, p: Profile) {
    if p.max_row < 151_936 {
        // A row must fit one binding; this device configuration refuses it.
        eprintln!("skipped: a row of 151936 entries exceeds this device's binding ({} entries)", p.max_row);
        return;
    }
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
    let mut cfg = ObjectiveConfig::new(Objective::Grpo, 4);
    cfg.temperature = 0.9;
    let shape = BatchShape { groups: 1, group_size: 2, t: 2, v: 151_936 };
    let case = random_batch(&mut Rng::new(5), &shape, 3.0, 0.01, cfg);
    check_fields_tol::<T>(dev, "V = 151936 τ=0.9", &case, p.long_rows);
}

/// An edit of a case's (logits, tokens, mask) given a real row and V.
type Edit = dyn Fn(&mut [f64], &mut [f64], &mut [f64], usize, usize);

/// Bad inputs give the host's error, at the same position, on both paths.
pub fn errors_body<T: wapo_core::Tensor>(dev: &T::Device) {
    let base = || near_policy_case(41, Objective::Grpo, Some(5), false);
    let real = |c: &Case| c.mask.iter().position(|m| *m == 1.0).expect("a real token");
    let edited = |f: &Edit| {
        let mut c = base();
        let r = real(&c);
        if let CaseInput::Logits { logits, tokens, vocab } = &mut c.input {
            f(logits, tokens, &mut c.mask, r, *vocab);
        }
        c
    };
    let cases = [
        ("−inf sampled logit", edited(&|z, y, _, r, v| z[r * v + y[r] as usize] = f64::NEG_INFINITY)),
        ("NaN in a real row", edited(&|z, y, _, r, v| z[r * v + (y[r] as usize + 1) % v] = f64::NAN)),
        ("+inf in a real row", edited(&|z, y, _, r, v| z[r * v + (y[r] as usize + 2) % v] = f64::INFINITY)),
        ("token id = V", edited(&|_, y, _, r, v| y[r] = v as f64)),
        ("token id < 0", edited(&|_, y, _, r, _| y[r] = -1.0)),
        ("fractional token id", edited(&|_, y, _, r, _| y[r] = 1.5)),
        ("mask 0.5", edited(&|_, _, m, r, _| m[r] = 0.5)),
    ];
    for (what, case) in &cases {
        let want = error_of::<HostTensor<f64>>(&(), case, Path::Composed);
        assert_eq!(error_of::<T>(dev, case, Path::Composed), want, "{what}: composed");
        assert_eq!(error_of::<T>(dev, case, Path::Backend), want, "{what}: backend");
    }
    let want = error_of::<HostTensor<f64>>(&(), &cases[0].1, Path::Composed);
    assert!(matches!(want, Error::Invalid { field: "logits", pos, .. } if pos.indices().len() == 3), "{want:?}");

    // Unused positions may hold anything: NaN, +inf and −inf (the sampled
    // token's own logit too) at mask = 0.
    let mut c = base();
    let Some(r) = c.mask.iter().position(|m| *m == 0.0) else {
        panic!("the case has a padded position");
    };
    let v = match &mut c.input {
        CaseInput::Logits { logits, vocab, tokens } => {
            let v = *vocab;
            let y = tokens[r] as usize;
            logits[r * v + y] = f64::NEG_INFINITY;
            logits[r * v + (y + 1) % v] = f64::NAN;
            logits[r * v + (y + 2) % v] = f64::INFINITY;
            v
        }
        CaseInput::Tokens { .. } => unreachable!("a logits case"),
    };
    let out = evaluate::<T>(dev, &c, Path::Backend).expect("NaN at a padded position");
    assert!(out.loss.is_finite());
    let g = out.grad_logits.expect("logits level");
    assert!(g[r * v..(r + 1) * v].iter().all(|x| *x == 0.0));
    // A −inf sampled logit alone at a padding position: every output tensor
    // as the host's.
    let mut c = base();
    if let CaseInput::Logits { logits, vocab, tokens } = &mut c.input {
        logits[r * *vocab + tokens[r] as usize] = f64::NEG_INFINITY;
    }
    check_fields::<T>(dev, "−inf sampled logit at padding", &c);
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
pub fn golden_body<T: wapo_core::Tensor>(dev: &T::Device) {
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
