//! `wapo.Output`: the output object of `docs/CASES.md` as attributes, plus
//! the namespaced diagnostics of `docs/OBJECTIVE.md` §8 and the counts a
//! multi-rank trainer reduces.

use numpy::{Element, PyArray1, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use wapo_core::{BinSpec, Scalar};

use crate::evaluate::Evaluated;
use crate::ranks::{self, Counts};

/// The result of one evaluation; arrays are in the precision of the inputs.
#[pyclass(frozen, module = "wapo", name = "Output")]
pub struct Output {
    /// loss = loss_sum / normalizer.
    #[pyo3(get)]
    loss: f64,
    /// Σ_i w_i Σ_t k_it L_it.
    #[pyo3(get)]
    loss_sum: f64,
    /// D.
    #[pyo3(get)]
    normalizer: f64,
    /// (N) A_i.
    #[pyo3(get)]
    advantages: Py<PyAny>,
    /// (N) w_i.
    #[pyo3(get)]
    weights: Py<PyAny>,
    /// (N, T) ∂loss/∂ℓ (at logits level too: the gradient at the log-probs).
    #[pyo3(get)]
    grad_logprobs: Py<PyAny>,
    /// (N, T, V) ∂loss/∂z at logits level, else None.
    #[pyo3(get)]
    grad_logits: Option<Py<PyAny>>,
    /// (N, T) ℓ, entropy, Σp² at logits level, else None.
    #[pyo3(get)]
    logprobs: Option<Py<PyAny>>,
    #[pyo3(get)]
    entropy: Option<Py<PyAny>>,
    #[pyo3(get)]
    sum_p_sq: Option<Py<PyAny>>,
    /// Kept tokens whose clamped ratio differs from the raw ratio.
    #[pyo3(get)]
    clipped_tokens: u64,
    /// `{pos_peak,pos_valley,neg_peak,neg_valley}_{eligible,kept}`.
    #[pyo3(get)]
    bin_counts: Py<PyDict>,
    /// `objective/clipped_fraction`, `entropy/pos`, `bins/pos_peak_kept`, ...
    #[pyo3(get)]
    diagnostics: Py<PyDict>,
    /// This batch's own normalizer counts (see `wapo.reduce_counts`).
    #[pyo3(get)]
    counts: Py<PyDict>,
}

fn array<E: Element + Scalar>(py: Python<'_>, v: &[f64], shape: &[usize]) -> PyResult<Py<PyAny>> {
    let data: Vec<E> = v.iter().map(|x| E::of_f64(*x)).collect();
    Ok(PyArray1::from_vec(py, data).reshape(shape)?.into_any().unbind())
}

pub fn counts_dict<'py>(py: Python<'py>, c: &Counts) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, v) in ranks::NAMES.iter().zip(c.values()) {
        d.set_item(name, v)?;
    }
    Ok(d)
}

impl Output {
    pub fn build<E: Element + Scalar>(py: Python<'_>, e: &Evaluated) -> PyResult<Self> {
        let o = &e.out;
        let (n, t) = (o.n, o.t);
        let nt = [n, t];
        let opt = |x: &Option<Vec<f64>>, shape: &[usize]| x.as_ref().map(|v| array::<E>(py, v, shape)).transpose();
        let bins = PyDict::new(py);
        for (c, name) in BinSpec::NAMES.iter().enumerate() {
            bins.set_item(format!("{name}_eligible"), o.bin_counts.eligible[c])?;
            bins.set_item(format!("{name}_kept"), o.bin_counts.kept[c])?;
        }
        let diagnostics = PyDict::new(py);
        for (k, v) in &e.diagnostics {
            diagnostics.set_item(k, v)?;
        }
        Ok(Output {
            loss: o.loss,
            loss_sum: o.loss_sum,
            normalizer: o.normalizer,
            advantages: array::<E>(py, &o.advantages, &[n])?,
            weights: array::<E>(py, &o.weights, &[n])?,
            grad_logprobs: array::<E>(py, &o.grad_logprobs, &nt)?,
            grad_logits: opt(&o.grad_logits, &[n, t, o.v.unwrap_or(0)])?,
            logprobs: opt(&o.logprobs, &nt)?,
            entropy: opt(&o.entropy, &nt)?,
            sum_p_sq: opt(&o.sum_p_sq, &nt)?,
            clipped_tokens: o.clipped_tokens,
            bin_counts: bins.unbind(),
            diagnostics: diagnostics.unbind(),
            counts: counts_dict(py, &e.counts)?.unbind(),
        })
    }
}

#[pymethods]
impl Output {
    fn __repr__(&self) -> String {
        format!(
            "Output(loss={}, loss_sum={}, normalizer={}, clipped_tokens={})",
            self.loss, self.loss_sum, self.normalizer, self.clipped_tokens
        )
    }
}
