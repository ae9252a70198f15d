//! Evaluating a case on a backend through either logits path, and comparing
//! two evaluations field by field.

use serde_json::{Value, json};
use wapo_core::advantage::Groups;
use wapo_core::case::{Case, CaseInput, CaseOutput, Tolerance, compare};
use wapo_core::host::HostTensor;
use wapo_core::objective::{TokenBatch, token_objective};

use super::fields::output;
use wapo_core::{Error, Shape, Tensor};

/// Which implementation of the logits level runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Path {
    /// The backend's `Tensor::logits_objective` (its fused override, if any).
    Backend,
    /// The core's composed default.
    Composed,
}

/// Uploads `case` to backend `T`, evaluates it and downloads every field.
pub fn evaluate<T: Tensor>(dev: &T::Device, case: &Case, path: Path) -> wapo_core::Result<CaseOutput> {
    let (n, t) = (case.n, case.t);
    let (logprobs, sum_p_sq) = match &case.input {
        CaseInput::Logits { vocab, .. } => {
            return CaseOutput::download(&output::<T>(dev, case, path)?, n, t, Some(*vocab));
        }
        CaseInput::Tokens { logprobs, sum_p_sq } => (logprobs, sum_p_sq),
    };
    let groups = Groups::<T>::from_ids(dev, &case.group_ids)?;
    let rewards = T::upload(dev, &case.rewards, Shape::d1(n))?; // (N)
    let mask = T::upload(dev, &case.mask, Shape::d2(n, t))?; // (N, T)
    let old = T::upload(dev, &case.old_logprobs, Shape::d2(n, t))?; // (N, T)
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

/// The error `case` gives on `T` through `path`; panics when it evaluates.
pub fn error_of<T: Tensor>(dev: &T::Device, case: &Case, path: Path) -> Error {
    match evaluate::<T>(dev, case, path) {
        Ok(_) => panic!("{path:?}: expected an error"),
        Err(e) => e,
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
pub fn assert_agree(what: &str, got: &CaseOutput, want: &CaseOutput, tol: Tolerance) {
    let bad: Vec<String> = compare(&fields(got), &fields(want), tol)
        .into_iter()
        .filter(|d| !d.ok)
        .map(|d| format!("{}: max |Δ| {:e} at {:?} {}", d.field, d.max_abs, d.worst, d.note.unwrap_or_default()))
        .collect();
    assert!(bad.is_empty(), "{what}:\n  {}", bad.join("\n  "));
}

/// The case as an f32 device sees it: the f64 reference evaluated on these
/// inputs measures the backend's arithmetic, not the input rounding.
pub fn rounded_to_f32(case: &Case) -> Case {
    let r = |v: &[f64]| v.iter().map(|x| *x as f32 as f64).collect::<Vec<_>>();
    let mut c = case.clone();
    c.rewards = r(&case.rewards);
    c.old_logprobs = r(&case.old_logprobs);
    match &mut c.input {
        CaseInput::Logits { logits, .. } => *logits = r(logits),
        CaseInput::Tokens { logprobs, sum_p_sq } => {
            *logprobs = r(logprobs);
            if let Some(s) = sum_p_sq {
                *s = r(s);
            }
        }
    }
    c
}

/// Host f64 ↔ `T` (and, at logits level, `T` composed ↔ `T` fused), all
/// within the f32 tolerance of `docs/CASES.md`.
pub fn check_case<T: Tensor>(dev: &T::Device, what: &str, case: &Case) {
    check_case_within::<T>(dev, what, case, Tolerance::F32, Tolerance::F32);
}

/// As [`check_case`], with the backend's path held to `backend_tol` and the
/// composed path to `composed_tol`.
pub fn check_case_within<T: Tensor>(
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

pub fn download<T: Tensor>(x: &T) -> Vec<f64> {
    let mut v = vec![0.0; x.shape().numel()];
    x.download(&mut v).expect("download");
    v
}
