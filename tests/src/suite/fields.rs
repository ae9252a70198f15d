//! The strict comparison: every tensor of an [`Output`] (ratio, keep mask,
//! clipped flags and bin codes per position included), not only the fields
//! of the case format, and the clipped/bin counts exactly.

use wapo_core::advantage::Groups;
use wapo_core::case::{Case, CaseInput};
use wapo_core::host::HostTensor;
use wapo_core::logits::{LogitsBatch, composed, logits_objective};
use wapo_core::objective::Output;
use wapo_core::{Shape, Tensor};

use super::eval::{Path, download, rounded_to_f32};

/// Every field of an `Output`, downloaded.
#[derive(Debug)]
pub struct Eval {
    fields: Vec<(&'static str, Vec<f64>)>,
    counts: [f64; 9],
}

impl Eval {
    pub fn of<T: Tensor>(o: &Output<T>) -> Eval {
        let mut fields = vec![
            ("advantages", download(&o.advantages)),
            ("weights", download(&o.weights)),
            ("normalizer", download(&o.normalizer)),
            ("loss_sum", download(&o.loss_sum)),
            ("loss", download(&o.loss)),
            ("grad_logprobs", download(&o.grad_logprobs)),
            ("logprobs", download(&o.logprobs)),
            ("ratio", download(&o.ratio)),
            ("keep", download(&o.keep)),
            ("clipped", download(&o.clipped)),
            ("bins", download(&o.bins)),
        ];
        for (name, x) in [("grad_logits", &o.grad_logits), ("entropy", &o.entropy), ("sum_p_sq", &o.sum_p_sq)] {
            let x = x.as_ref().unwrap_or_else(|| panic!("logits-level output lacks {name}"));
            fields.push((name, download(x)));
        }
        Eval { fields, counts: o.count_values().expect("counts") }
    }
}

/// Evaluates a logits case on `T` and keeps the tensors.
pub fn output<T: Tensor>(dev: &T::Device, case: &Case, path: Path) -> wapo_core::Result<Output<T>> {
    let CaseInput::Logits { logits, tokens, vocab } = &case.input else {
        panic!("a logits-level case");
    };
    let (n, t) = (case.n, case.t);
    let groups = Groups::<T>::from_ids(dev, &case.group_ids)?;
    let rewards = T::upload(dev, &case.rewards, Shape::d1(n))?; // (N)
    let mask = T::upload(dev, &case.mask, Shape::d2(n, t))?; // (N, T)
    let old = T::upload(dev, &case.old_logprobs, Shape::d2(n, t))?; // (N, T)
    let z = T::upload(dev, logits, Shape::d3(n, t, *vocab))?; // (N, T, V)
    let y = T::upload(dev, tokens, Shape::d2(n, t))?; // (N, T)
    let batch =
        LogitsBatch { groups: &groups, rewards: &rewards, mask: &mask, logits: &z, tokens: &y, old_logprobs: &old };
    match path {
        Path::Backend => logits_objective(&case.config, &batch),
        Path::Composed => composed(&case.config, &batch),
    }
}

/// |a − b| ≤ rel·|b| + rel·max|b| of the field (+1e-6); entries that are
/// non-finite on both sides (ℓ of an all −inf, masked row) agree.
pub fn assert_close(what: &str, got: &Eval, want: &Eval, rel: f64) {
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

/// Host f64 reference ↔ `T` through its own path ↔ `T` composed, every
/// tensor within 1e-4 relative.
pub fn check_fields<T: Tensor>(dev: &T::Device, what: &str, case: &Case) {
    check_fields_tol::<T>(dev, what, case, 1e-4);
}

/// As [`check_fields`]; the composed path is held to `composed_rel`: it
/// forms ℓ = x − lse in f32, which loses the digits of a large logit (about
/// 5e-4 absolute at |x| = 1e4), where a fused kernel keeps x − max apart.
pub fn check_fields_tol<T: Tensor>(dev: &T::Device, what: &str, case: &Case, composed_rel: f64) {
    let reference = output::<HostTensor<f64>>(&(), &rounded_to_f32(case), Path::Composed).expect("host reference");
    let want = Eval::of(&reference);
    let own = output::<T>(dev, case, Path::Backend).unwrap_or_else(|e| panic!("{what}: backend: {e}"));
    let comp = output::<T>(dev, case, Path::Composed).unwrap_or_else(|e| panic!("{what}: composed: {e}"));
    let (own, comp) = (Eval::of(&own), Eval::of(&comp));
    assert_close(&format!("{what}: backend vs host f64"), &own, &want, 1e-4);
    assert_close(&format!("{what}: composed vs host f64"), &comp, &want, composed_rel);
    assert_close(&format!("{what}: backend vs composed"), &own, &comp, composed_rel);
}
