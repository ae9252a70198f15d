//! Property tests of the objective family on the f64 host reference:
//! composites against a naive per-token loop, gradients against central
//! finite differences (token and logits level), and WAPO's invariants.

#![allow(clippy::needless_range_loop)] // per-position finite differences

use proptest::prelude::*;
use wapo_core::case::{Case, CaseInput, CaseOutput};
use wapo_core::host::HostTensor;
use wapo_core::objective::wapo;
use wapo_core::{BinSpec, Objective};
use wapo_tests::naive::{NaiveCase, naive};
use wapo_tests::random::{logits_case, to_case, token_case};

fn eval(case: &Case) -> CaseOutput {
    case.evaluate::<HostTensor<f64>>(&()).expect("evaluate")
}

fn objective(k: usize) -> Objective {
    Objective::ALL[k % Objective::ALL.len()]
}

fn close(a: f64, b: f64, abs: f64, rel: f64) -> bool {
    (a - b).abs() <= abs + rel * b.abs()
}

/// No ratio within `margin` of a clip bound and no p within `margin` of Σp²
/// (where the loss has kinks or the bin mask flips, finite differences lie).
fn smooth_token(case: &NaiveCase, lo: f64, hi: f64, margin: f64) -> bool {
    (0..case.n * case.t).all(|k| {
        let x = (case.logprobs[k] - case.old_logprobs[k]).exp();
        let far_bins = case.sum_p_sq.as_ref().is_none_or(|s| (case.logprobs[k].exp() - s[k]).abs() > margin);
        (x - lo).abs() > margin && (x - hi).abs() > margin && far_bins
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn composed_equals_naive_loop(seed in any::<u64>(), k in 0usize..9) {
        let (cfg, c) = token_case(seed, objective(k));
        let out = eval(&to_case(&cfg, &c));
        let want = naive(&cfg, &c);
        for (a, b) in out.advantages.iter().zip(&want.advantages) {
            prop_assert!(close(*a, *b, 1e-12, 1e-10), "advantage {a} vs {b}");
        }
        prop_assert!(close(out.loss, want.loss, 1e-12, 1e-10), "loss {} vs naive {}", out.loss, want.loss);
        for (i, (a, b)) in out.grad_logprobs.iter().zip(&want.grad).enumerate() {
            prop_assert!(close(*a, *b, 1e-12, 1e-10), "grad[{i}] {a} vs naive {b}");
        }
        prop_assert_eq!(out.clipped_tokens as usize, want.clipped);
    }

    #[test]
    fn token_gradient_matches_finite_differences(seed in any::<u64>(), k in 0usize..9) {
        let (cfg, c) = token_case(seed, objective(k));
        let (lo, hi) = cfg.clip_bounds();
        prop_assume!(smooth_token(&c, lo, hi, 1e-3));
        let grad = eval(&to_case(&cfg, &c)).grad_logprobs;
        let h = 1e-6;
        for idx in 0..c.n * c.t {
            let mut plus = c.clone();
            plus.logprobs[idx] += h;
            let mut minus = c.clone();
            minus.logprobs[idx] -= h;
            let fd = (eval(&to_case(&cfg, &plus)).loss - eval(&to_case(&cfg, &minus)).loss) / (2.0 * h);
            prop_assert!(close(grad[idx], fd, 1e-7, 1e-5), "{}: ∂loss/∂ℓ[{idx}] = {} but finite differences give {fd}", cfg.objective, grad[idx]);
        }
    }

    #[test]
    fn logits_gradient_matches_finite_differences(seed in any::<u64>(), k in 0usize..9, masked in any::<bool>()) {
        let case = logits_case(seed, objective(k), None, masked);
        let out = eval(&case);
        let CaseInput::Logits { logits, tokens, vocab } = &case.input else { unreachable!() };
        // Skip kinks: ratios near a clip bound, p near Σp² (bin flips).
        let (lo, hi) = case.config.clip_bounds();
        let lp = out.logprobs.as_ref().unwrap();
        let sq = out.sum_p_sq.as_ref().unwrap();
        for r in 0..case.n * case.t {
            let x = (lp[r] - case.old_logprobs[r]).exp();
            prop_assume!((x - lo).abs() > 1e-3 && (x - hi).abs() > 1e-3 && (lp[r].exp() - sq[r]).abs() > 1e-3);
        }
        if case.config.objective == Objective::Gspo {
            prop_assume!(out.clipped_tokens == 0 || !case.config.importance_sampling);
        }
        let grad = out.grad_logits.as_ref().unwrap();
        let h = 1e-6;
        for idx in 0..logits.len() {
            if !logits[idx].is_finite() {
                prop_assert_eq!(grad[idx], 0.0, "masked vocabulary entry gets no gradient");
                continue;
            }
            let bump = |d: f64| {
                let mut c = case.clone();
                if let CaseInput::Logits { logits, .. } = &mut c.input { logits[idx] += d; }
                eval(&c).loss
            };
            let fd = (bump(h) - bump(-h)) / (2.0 * h);
            prop_assert!(close(grad[idx], fd, 1e-7, 1e-5), "{}: ∂loss/∂z[{idx}] = {} but finite differences give {fd} (V = {vocab}, tokens {:?})", case.config.objective, grad[idx], tokens);
        }
    }

    /// `wapo::token_loss`, the scalar form, is the engine's per-token WAPO
    /// loss and gradient: with the engine's weights and D and no bin filter,
    /// loss = Σ_i w_i/D Σ_t mask·L(ℓ, ℓ°, A_i, ε) and ∂loss/∂ℓ_it = w_i/D·mask·∂L/∂ℓ.
    #[test]
    fn wapo_token_loss_is_the_engines(seed in any::<u64>()) {
        let (mut cfg, c) = token_case(seed, Objective::Wapo);
        cfg.importance_sampling = true;
        cfg.include_bins = BinSpec::NONE;
        cfg.exclude_bins = BinSpec::NONE;
        let eps = cfg.clip_eps.expect("wapo has ε");
        let out = eval(&to_case(&cfg, &c));
        let mut loss = 0.0;
        let mut pushed = 0;
        for i in 0..c.n {
            let scale = out.weights[i] / out.normalizer;
            for k in i * c.t..(i + 1) * c.t {
                let (l, g) = wapo::token_loss(c.logprobs[k], c.old_logprobs[k], out.advantages[i], eps);
                loss += scale * c.mask[k] * l;
                pushed += usize::from(c.mask[k] * g != 0.0);
                let want = scale * c.mask[k] * g;
                prop_assert!(close(out.grad_logprobs[k], want, 1e-12, 1e-10), "∂loss/∂ℓ[{k}] = {} but token_loss gives {want}", out.grad_logprobs[k]);
            }
        }
        prop_assert!(close(out.loss, loss, 1e-12, 1e-10), "loss {} but token_loss gives {loss}", out.loss);
        prop_assert_eq!(pushed, out.grad_logprobs.iter().filter(|g| **g != 0.0).count());
    }

    #[test]
    fn wapo_gradient_is_zero_where_advantage_is_not_positive(seed in any::<u64>(), logits_level in any::<bool>()) {
        let case = if logits_level {
            logits_case(seed, Objective::Wapo, None, false)
        } else {
            let (cfg, c) = token_case(seed, Objective::Wapo);
            to_case(&cfg, &c)
        };
        let out = eval(&case);
        let t = case.t;
        for i in 0..case.n {
            if out.advantages[i] <= 0.0 {
                prop_assert!(out.grad_logprobs[i * t..(i + 1) * t].iter().all(|g| *g == 0.0), "row {i} with A = {} has a gradient", out.advantages[i]);
                if let (Some(g), CaseInput::Logits { vocab, .. }) = (&out.grad_logits, &case.input) {
                    prop_assert!(g[i * t * vocab..(i + 1) * t * vocab].iter().all(|x| *x == 0.0));
                }
            }
        }
    }

    #[test]
    fn a_group_with_equal_rewards_contributes_nothing_to_wapo(seed in any::<u64>(), reward in prop::sample::select(vec![0.0, 1.0, 0.37])) {
        let (cfg, c) = token_case(seed, Objective::Wapo);
        let base = eval(&to_case(&cfg, &c));
        // Append a group of 3 sequences that all got the same reward.
        let mut more = c.clone();
        let t = c.t;
        for _ in 0..3 {
            more.group_ids.push(-77);
            more.rewards.push(reward);
            more.mask.extend(std::iter::repeat_n(1.0, t));
            more.logprobs.extend(std::iter::repeat_n(-0.3, t));
            more.old_logprobs.extend(std::iter::repeat_n(-0.5, t));
            if let Some(s) = more.sum_p_sq.as_mut() { s.extend(std::iter::repeat_n(0.4, t)); }
        }
        more.n += 3;
        let with = eval(&to_case(&cfg, &more));
        prop_assert!(close(with.loss, base.loss, 1e-14, 1e-12), "loss {} became {}", base.loss, with.loss);
        prop_assert!(with.grad_logprobs[c.n * t..].iter().all(|g| *g == 0.0));
        for (a, b) in with.grad_logprobs.iter().zip(&base.grad_logprobs) {
            prop_assert!(close(*a, *b, 1e-14, 1e-12));
        }
    }
}
