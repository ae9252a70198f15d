//! The first-order predictions of `OBJECTIVE.md` §7 against the real change
//! of a small gradient step on the logits, and the §8 diagnostics against
//! direct computations.

use wapo_core::Objective;
use wapo_core::case::{Case, CaseInput};
use wapo_core::diagnostics::diagnostics;
use wapo_core::host::HostTensor;
use wapo_core::logits::row_stats;
use wapo_core::shape::Shape;
use wapo_core::taxonomy::{bin_deltas, predict};
use wapo_core::{Tensor, objective};
use wapo_tests::random::logits_case;

fn run(case: &Case) -> (objective::Output<HostTensor<f64>>, HostTensor<f64>, HostTensor<f64>, HostTensor<f64>) {
    let CaseInput::Logits { logits, tokens, vocab } = &case.input else { panic!("logits case") };
    let up = |v: &[f64], s| HostTensor::<f64>::upload(&(), v, s).unwrap();
    let (n, t) = (case.n, case.t);
    let groups = wapo_core::advantage::Groups::from_ids(&(), &case.group_ids).unwrap();
    let z = up(logits, Shape::d3(n, t, *vocab));
    let y = up(tokens, Shape::d2(n, t));
    let old = up(&case.old_logprobs, Shape::d2(n, t));
    let batch = wapo_core::logits::LogitsBatch {
        groups: &groups,
        rewards: &up(&case.rewards, Shape::d1(n)),
        mask: &up(&case.mask, Shape::d2(n, t)),
        logits: &z,
        tokens: &y,
        old_logprobs: &old,
    };
    (wapo_core::logits::logits_objective(&case.config, &batch).unwrap(), z, y, old)
}

#[test]
fn predicted_changes_match_a_small_step_to_first_order() {
    let mut checked = 0;
    for seed in 0..40u64 {
        let objective = [Objective::Wapo, Objective::Grpo, Objective::DrGrpo][seed as usize % 3];
        let case = logits_case(seed, objective, Some(6), false);
        let (out, z, y, _) = run(&case);
        let tau = case.config.temperature;
        let eta = 1e-4;
        let pred = bin_deltas(&z, &y, tau, &out, eta).unwrap();
        // Apply the step Δz = −η ∂loss/∂z and measure per bin.
        let CaseInput::Logits { logits, tokens, vocab } = &case.input else { unreachable!() };
        let mut g = vec![0.0; logits.len()];
        out.grad_logits.as_ref().unwrap().download(&mut g).unwrap();
        let mut codes = vec![0.0; case.n * case.t];
        out.bins.download(&mut codes).unwrap();
        let mut gl = vec![0.0; case.n * case.t];
        out.grad_logprobs.download(&mut gl).unwrap();
        let mut measured = [(0.0, 0.0); 4];
        for r in 0..case.n * case.t {
            if gl[r] == 0.0 {
                continue;
            }
            let row = &logits[r * vocab..(r + 1) * vocab];
            let stepped: Vec<f64> = row.iter().zip(&g[r * vocab..(r + 1) * vocab]).map(|(z, d)| z - eta * d).collect();
            let (a, b) = (row_stats(row, tokens[r] as usize, tau), row_stats(&stepped, tokens[r] as usize, tau));
            let bin = &mut measured[codes[r] as usize];
            bin.0 += b.logp - a.logp;
            bin.1 += b.entropy - a.entropy;
        }
        for c in 0..4 {
            let (dl, dh) = measured[c];
            assert!(
                (pred[c].dlogp - dl).abs() <= 1e-3 * dl.abs() + 1e-12,
                "seed {seed} bin {c}: Δlog p predicted {} measured {dl}",
                pred[c].dlogp
            );
            assert!(
                (pred[c].dentropy - dh).abs() <= 1e-3 * dh.abs() + 1e-12,
                "seed {seed} bin {c}: ΔH predicted {} measured {dh}",
                pred[c].dentropy
            );
            checked += usize::from(dl != 0.0);
        }
    }
    assert!(checked > 20, "too few bins had updates ({checked})");
}

#[test]
fn the_sign_of_a_peak_update_decides_sharpening_or_flattening() {
    // A peak token (p_y ≥ Σp²): a positive update lowers the entropy, a
    // negative one raises it (§7, "Reading").
    let row = [2.0, 0.5, 0.1, -1.0];
    let s = row_stats(&row, 0, 1.0);
    let stats = s;
    assert!(stats.logp.exp() >= stats.sum_p_sq, "token 0 is a peak");
    assert!(predict(stats, 1.0, 0.1, 0.0).dentropy < 0.0);
    assert!(predict(stats, -1.0, 0.1, 0.0).dentropy > 0.0);
    assert!(predict(stats, 1.0, 0.1, 0.0).dp_sampled > 0.0);
    // Another token k under a positive update on a peak: Δp_k < 0.
    let p1 = (row[1] - s.lse).exp();
    assert!(predict(stats, 1.0, 0.1, p1).dp_other < 0.0);
}

#[test]
fn diagnostics_agree_with_direct_computation() {
    for seed in 0..20u64 {
        let case = logits_case(seed, Objective::Grpo, None, seed % 2 == 0);
        let (out, _, _, old) = run(&case);
        let m = diagnostics(&out, &old, &case.rewards, &case.group_ids).unwrap();
        let get = |k: &str| m.iter().find(|(name, _)| name == k).unwrap_or_else(|| panic!("metric {k} missing")).1;
        let (n, t) = (case.n, case.t);
        let mut lp = vec![0.0; n * t];
        out.logprobs.download(&mut lp).unwrap();
        // Perplexity over real tokens.
        let real: Vec<usize> = (0..n * t).filter(|&k| case.mask[k] == 1.0).collect();
        if !real.is_empty() {
            let ppl = (-real.iter().map(|&k| lp[k]).sum::<f64>() / real.len() as f64).exp();
            assert!((get("perplexity/all") - ppl).abs() <= 1e-9 * ppl);
            let kl = real
                .iter()
                .map(|&k| {
                    let r = (lp[k] - case.old_logprobs[k]).exp();
                    r - r.ln() - 1.0
                })
                .sum::<f64>()
                / real.len() as f64;
            assert!((get("mismatch/kl") - kl).abs() <= 1e-12 + 1e-9 * kl);
        }
        // Clipped fraction = clipped kept tokens / kept tokens (grpo keeps every real token).
        let s = out.summary().unwrap();
        let kept: u64 = s.bins.kept.iter().sum();
        let want = if kept > 0 { s.clipped_tokens as f64 / kept as f64 } else { 0.0 };
        assert!((get("objective/clipped_fraction") - want).abs() < 1e-12);
        // Groups with a correct answer.
        let mut ids = case.group_ids.clone();
        ids.sort();
        ids.dedup();
        let correct = ids.iter().filter(|g| (0..n).any(|i| case.group_ids[i] == **g && case.rewards[i] >= 1.0)).count();
        assert!((get("groups/any_correct") - correct as f64 / ids.len() as f64).abs() < 1e-12);
        assert!(m.iter().all(|(_, v)| v.is_finite()), "{m:?}");
    }
}
