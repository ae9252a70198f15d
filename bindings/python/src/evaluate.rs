//! One evaluation on the host reference backend (`HostTensor`, in the
//! precision of the inputs), without Python objects: it runs with the GIL
//! released.

use pyo3::PyResult;
use wapo_core::advantage::Groups;
use wapo_core::case::CaseOutput;
use wapo_core::diagnostics::{Metrics, diagnostics};
use wapo_core::host::HostTensor;
use wapo_core::logits::{LogitsBatch, logits_objective};
use wapo_core::objective::{TokenBatch, token_objective};
use wapo_core::{ObjectiveConfig, Scalar, Shape};

use crate::error::value_error;

use crate::ranks::{self, Counts};

/// The per-token input: log-probs (token level) or logits (logits level).
pub enum Input<E> {
    /// (N, T) log-probs, optional (N, T) Σp².
    Tokens { logprobs: Vec<E>, sum_p_sq: Option<Vec<E>> },
    /// (N, T, V) logits, (N, T) token ids.
    Logits { logits: Vec<E>, tokens: Vec<E>, vocab: usize },
}

/// A batch whose shapes have been checked against each other.
pub struct Batch<E> {
    pub n: usize,
    pub t: usize,
    /// (N)
    pub group_ids: Vec<i64>,
    /// (N)
    pub rewards: Vec<E>,
    /// (N, T)
    pub mask: Vec<E>,
    /// (N, T)
    pub old_logprobs: Vec<E>,
    pub input: Input<E>,
}

pub struct Evaluated {
    pub out: CaseOutput,
    pub diagnostics: Metrics,
    /// This batch's own counts (before any rescaling).
    pub counts: Counts,
}

/// Evaluates the batch; with `global`, divides by the normalizer of the
/// counts reduced over all ranks instead of this batch's own.
pub fn evaluate<E: Scalar>(cfg: &ObjectiveConfig, b: Batch<E>, global: Option<Counts>) -> PyResult<Evaluated> {
    let e = value_error;
    type T<E> = HostTensor<E>;
    let (n, t) = (b.n, b.t);
    let rewards_f64: Vec<f64> = b.rewards.iter().map(|r| r.as_f64()).collect();
    let groups = Groups::<T<E>>::from_ids(&(), &b.group_ids).map_err(e)?;
    let rewards = T::from_vec(b.rewards, Shape::d1(n)).map_err(e)?;
    let mask = T::from_vec(b.mask, Shape::d2(n, t)).map_err(e)?;
    let old = T::from_vec(b.old_logprobs, Shape::d2(n, t)).map_err(e)?;
    let (out, v) = match b.input {
        Input::Tokens { logprobs, sum_p_sq } => {
            let lp = T::from_vec(logprobs, Shape::d2(n, t)).map_err(e)?;
            let sq = sum_p_sq.map(|s| T::from_vec(s, Shape::d2(n, t))).transpose().map_err(e)?;
            let batch = TokenBatch {
                groups: &groups,
                rewards: &rewards,
                mask: &mask,
                logprobs: &lp,
                old_logprobs: &old,
                sum_p_sq: sq.as_ref(),
            };
            (token_objective(cfg, &batch).map_err(e)?, None)
        }
        Input::Logits { logits, tokens, vocab } => {
            let z = T::from_vec(logits, Shape::d3(n, t, vocab)).map_err(e)?;
            let y = T::from_vec(tokens, Shape::d2(n, t)).map_err(e)?;
            let batch = LogitsBatch {
                groups: &groups,
                rewards: &rewards,
                mask: &mask,
                logits: &z,
                tokens: &y,
                old_logprobs: &old,
            };
            (logits_objective(cfg, &batch).map_err(e)?, Some(vocab))
        }
    };
    let counts = ranks::local_counts(cfg, &out, &groups).map_err(e)?;
    let out = match global {
        Some(g) => {
            ranks::check_global(&counts, &g)?;
            ranks::rescale(cfg, out, &counts, &g).map_err(e)?
        }
        None => out,
    };
    let diagnostics = diagnostics(&out, &old, &rewards_f64, &b.group_ids).map_err(e)?;
    Ok(Evaluated { out: CaseOutput::download(&out, n, t, v).map_err(e)?, diagnostics, counts })
}
