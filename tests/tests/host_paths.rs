//! The host reference's streaming logits path (one pass per row) against the
//! composed default, on random cases and on the stability cases: logits of
//! magnitude 1e4, −inf masked vocabulary, V = 151,936, a V = 1 row, groups of
//! size 1, all-equal rewards.

use wapo_core::case::{Case, CaseInput, CaseOutput};
use wapo_core::host::HostTensor;
use wapo_core::logits::{LogitsBatch, composed, streamed};
use wapo_core::objective::Output;
use wapo_core::{Objective, Shape, Tensor};
use wapo_tests::random::{Rng, logits_case};

type H = HostTensor<f64>;

/// The streamed and composed outputs, and each one's Σp²·log p (which the
/// case format does not carry).
fn both(case: &Case) -> (CaseOutput, CaseOutput) {
    let ((s, _), (c, _)) = both_with_sum_p_sq_logp(case);
    (s, c)
}

fn both_with_sum_p_sq_logp(case: &Case) -> ((CaseOutput, Vec<f64>), (CaseOutput, Vec<f64>)) {
    let CaseInput::Logits { logits, tokens, vocab } = &case.input else { panic!("logits case") };
    let (n, t) = (case.n, case.t);
    let up = |v: &[f64], s| H::upload(&(), v, s).unwrap();
    let groups = wapo_core::advantage::Groups::from_ids(&(), &case.group_ids).unwrap();
    let (r, m, z, y, o) = (
        up(&case.rewards, Shape::d1(n)),
        up(&case.mask, Shape::d2(n, t)),
        up(logits, Shape::d3(n, t, *vocab)),
        up(tokens, Shape::d2(n, t)),
        up(&case.old_logprobs, Shape::d2(n, t)),
    );
    let b = LogitsBatch { groups: &groups, rewards: &r, mask: &m, logits: &z, tokens: &y, old_logprobs: &o };
    let dl = |out: Output<H>| {
        let spl = out.sum_p_sq_logp.as_ref().expect("Σp²·log p at logits level").to_f64();
        (CaseOutput::download(&out, n, t, Some(*vocab)).unwrap(), spl)
    };
    (dl(streamed(&case.config, &b).unwrap()), dl(composed(&case.config, &b).unwrap()))
}

fn assert_close(what: &str, a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(1e-3f64, |m, x| if x.is_finite() { m.max(x.abs()) } else { m });
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        let same_inf = x.is_infinite() && x == y;
        assert!(same_inf || (x - y).abs() <= tol * (scale + y.abs()), "{what}[{k}]: streamed {x} vs composed {y}");
    }
}

fn check(case: &Case, tol: f64) {
    let ((s, s_spl), (c, c_spl)) = both_with_sum_p_sq_logp(case);
    assert_close("sum_p_sq_logp", &s_spl, &c_spl, tol);
    assert_close("loss", &[s.loss], &[c.loss], tol);
    assert_close("grad_logits", s.grad_logits.as_ref().unwrap(), c.grad_logits.as_ref().unwrap(), tol);
    assert_close("logprobs", s.logprobs.as_ref().unwrap(), c.logprobs.as_ref().unwrap(), tol);
    assert_close("entropy", s.entropy.as_ref().unwrap(), c.entropy.as_ref().unwrap(), tol);
    assert_close("sum_p_sq", s.sum_p_sq.as_ref().unwrap(), c.sum_p_sq.as_ref().unwrap(), tol);
    assert_eq!(s.bin_counts, c.bin_counts);
    assert_eq!(s.clipped_tokens, c.clipped_tokens);
    assert!(s.loss.is_finite());
    assert!(s.grad_logits.unwrap().iter().all(|g| g.is_finite()));
}

#[test]
fn streamed_equals_composed_on_random_cases() {
    for seed in 0..200u64 {
        let case = logits_case(seed, Objective::ALL[seed as usize % 9], None, seed % 3 == 0);
        check(&case, 1e-12);
    }
}

#[test]
fn huge_logits_stay_finite_and_agree() {
    for seed in 0..30u64 {
        let mut case = logits_case(seed, Objective::ALL[seed as usize % 9], Some(7), seed % 2 == 0);
        let mut rng = Rng::new(seed + 1000);
        if let CaseInput::Logits { logits, .. } = &mut case.input {
            for z in logits.iter_mut().filter(|z| z.is_finite()) {
                *z = rng.range(-1e4, 1e4);
            }
        }
        // Keep ratios sane: old log-probs near the new ones.
        let (s, _) = both(&case);
        case.old_logprobs = s.logprobs.unwrap().iter().map(|l| if l.is_finite() { l - 0.05 } else { -1.0 }).collect();
        check(&case, 1e-9);
    }
}

#[test]
fn a_large_vocabulary_with_few_rows() {
    let mut case = logits_case(7, Objective::Wapo, Some(151_936), true);
    case.n = case.n.min(2);
    case.t = 1;
    let CaseInput::Logits { logits, tokens, vocab } = &mut case.input else { unreachable!() };
    logits.truncate(case.n * *vocab);
    tokens.truncate(case.n);
    case.group_ids = vec![0; case.n];
    case.rewards = (0..case.n).map(|i| i as f64).collect();
    case.mask = vec![1.0; case.n];
    case.old_logprobs = vec![-12.0; case.n];
    check(&case, 1e-10);
}

#[test]
fn a_single_token_vocabulary_groups_of_one_and_equal_rewards() {
    for seed in 0..20u64 {
        let mut case = logits_case(seed, Objective::ALL[seed as usize % 9], Some(1), false);
        case.group_ids = (0..case.n as i64).collect(); // groups of size 1
        check(&case, 1e-12);
        let (s, _) = both(&case);
        // V = 1: p = 1, ℓ = 0, H = 0, Σp² = 1 everywhere.
        assert!(s.logprobs.unwrap().iter().all(|l| *l == 0.0));
        assert!(s.entropy.unwrap().iter().all(|h| h.abs() < 1e-15));
        let mut eq = logits_case(seed, Objective::Wapo, Some(5), false);
        eq.rewards = vec![0.5; eq.n];
        let (s, _) = both(&eq);
        assert_eq!(s.loss, 0.0, "all-equal rewards: WAPO learns nothing");
        assert!(s.grad_logits.unwrap().iter().all(|g| *g == 0.0));
    }
}
