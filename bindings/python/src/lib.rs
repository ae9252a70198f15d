//! `wapo._wapo`: the extension module behind the `wapo` Python package. It
//! evaluates the objectives of `wapo-core` on its host reference backend
//! (`HostTensor<f64>` or `HostTensor<f32>`, following the inputs' dtype).
//! The Python layer (`python/wapo/__init__.py`) turns array-likes into
//! C-contiguous arrays of one dtype and calls the functions here.
#![forbid(unsafe_code)]

mod config;
mod error;
mod evaluate;
mod input;
mod output;
mod ranks;

use numpy::{Element, PyReadonlyArrayDyn};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use wapo_core::Scalar;

use config::Config;
use error::bad;
use evaluate::{Batch, Input, evaluate};
use input::{Array, ids, read};
use output::{Output, counts_dict};
use ranks::Counts;

/// `(N, T)` with N from `rewards`; returns T.
fn rows<E>(field: &str, a: &Array<E>, n: usize) -> PyResult<usize> {
    match a.shape[..] {
        [rows, t] if rows == n => Ok(t),
        _ => {
            let got: Vec<String> = a.shape.iter().map(|x| x.to_string()).collect();
            Err(bad(
                field,
                format!("expected shape (N, T) with N = {n} (the length of `rewards`), got ({})", got.join(", ")),
            ))
        }
    }
}

/// The (N) rewards and group ids and the (N, T) mask and behaviour log-probs.
struct Common<E> {
    n: usize,
    t: usize,
    group_ids: Vec<i64>,
    rewards: Vec<E>,
    mask: Vec<E>,
    old_logprobs: Vec<E>,
}

fn common<E: Element + Copy>(
    group_ids: &Bound<'_, PyAny>,
    rewards: &Bound<'_, PyAny>,
    mask: &Bound<'_, PyAny>,
    old_logprobs: &Bound<'_, PyAny>,
) -> PyResult<Common<E>> {
    let r = read::<E>("rewards", rewards)?;
    let n = match r.shape[..] {
        [n] => n,
        _ => return Err(bad("rewards", format!("expected shape (N), got {} dimensions", r.shape.len()))),
    };
    let g = ids("group_ids", group_ids)?;
    g.expect("group_ids", &[n], "(N)")?;
    let m = read::<E>("mask", mask)?;
    let t = rows("mask", &m, n)?;
    let old = read::<E>("old_logprobs", old_logprobs)?;
    old.expect("old_logprobs", &[n, t], "(N, T)")?;
    Ok(Common { n, t, group_ids: g.data, rewards: r.data, mask: m.data, old_logprobs: old.data })
}

fn global_counts(d: Option<&Bound<'_, PyDict>>) -> PyResult<Option<Counts>> {
    let Some(d) = d else { return Ok(None) };
    for key in d.keys() {
        let k: String = key.extract()?;
        if !ranks::NAMES.contains(&k.as_str()) {
            return Err(bad(&format!("global_counts.{k}"), "unknown count"));
        }
    }
    let mut v = [0u64; 6];
    for (slot, name) in v.iter_mut().zip(ranks::NAMES) {
        let field = format!("global_counts.{name}");
        let x = d.get_item(name)?.ok_or_else(|| bad(&field, "missing"))?;
        *slot = x.extract::<u64>().map_err(|_| bad(&field, format!("must be an integer ≥ 0, got {x}")))?;
    }
    Ok(Some(Counts::from_values(v)))
}

fn is_f32(x: &Bound<'_, PyAny>) -> bool {
    x.extract::<PyReadonlyArrayDyn<'_, f32>>().is_ok()
}

fn run<E: Element + Scalar>(py: Python<'_>, cfg: &Config, b: Batch<E>, global: Option<Counts>) -> PyResult<Output> {
    let c = cfg.for_batch(b.t);
    let e = py.detach(move || evaluate(&c, b, global))?;
    Output::build::<E>(py, &e)
}

#[allow(clippy::too_many_arguments)]
fn token_typed<E: Element + Scalar>(
    py: Python<'_>,
    cfg: &Config,
    group_ids: &Bound<'_, PyAny>,
    rewards: &Bound<'_, PyAny>,
    mask: &Bound<'_, PyAny>,
    logprobs: &Bound<'_, PyAny>,
    old_logprobs: &Bound<'_, PyAny>,
    sum_p_sq: Option<&Bound<'_, PyAny>>,
    global: Option<Counts>,
) -> PyResult<Output> {
    let c = common::<E>(group_ids, rewards, mask, old_logprobs)?;
    let lp = read::<E>("logprobs", logprobs)?;
    lp.expect("logprobs", &[c.n, c.t], "(N, T)")?;
    let sq = sum_p_sq
        .map(|s| {
            let s = read::<E>("sum_p_sq", s)?;
            s.expect("sum_p_sq", &[c.n, c.t], "(N, T)")?;
            Ok::<_, PyErr>(s.data)
        })
        .transpose()?;
    let b = Batch {
        n: c.n,
        t: c.t,
        group_ids: c.group_ids,
        rewards: c.rewards,
        mask: c.mask,
        old_logprobs: c.old_logprobs,
        input: Input::Tokens { logprobs: lp.data, sum_p_sq: sq },
    };
    run(py, cfg, b, global)
}

#[allow(clippy::too_many_arguments)]
fn logits_typed<E: Element + Scalar>(
    py: Python<'_>,
    cfg: &Config,
    group_ids: &Bound<'_, PyAny>,
    rewards: &Bound<'_, PyAny>,
    mask: &Bound<'_, PyAny>,
    logits: &Bound<'_, PyAny>,
    tokens: &Bound<'_, PyAny>,
    old_logprobs: &Bound<'_, PyAny>,
    global: Option<Counts>,
) -> PyResult<Output> {
    let c = common::<E>(group_ids, rewards, mask, old_logprobs)?;
    let z = read::<E>("logits", logits)?;
    let vocab = match z.shape[..] {
        [n, t, v] if n == c.n && t == c.t && v > 0 => v,
        _ => {
            let got: Vec<String> = z.shape.iter().map(|x| x.to_string()).collect();
            let want = format!("(N, T, V) with (N, T) = ({}, {}) from `mask` and V ≥ 1", c.n, c.t);
            return Err(bad("logits", format!("expected shape {want}, got ({})", got.join(", "))));
        }
    };
    let y = ids("tokens", tokens)?;
    y.expect("tokens", &[c.n, c.t], "(N, T)")?;
    for (k, tok) in y.data.iter().enumerate() {
        if *tok < 0 || *tok as u64 >= vocab as u64 {
            let at = format!("tokens[{}][{}]", k / c.t, k % c.t);
            return Err(bad(&at, format!("token id {tok} is not in 0..{vocab} (V)")));
        }
    }
    let b = Batch {
        n: c.n,
        t: c.t,
        group_ids: c.group_ids,
        rewards: c.rewards,
        mask: c.mask,
        old_logprobs: c.old_logprobs,
        input: Input::Logits { logits: z.data, tokens: y.data.iter().map(|v| E::of_f64(*v as f64)).collect(), vocab },
    };
    run(py, cfg, b, global)
}

/// Token level: see `wapo.token_objective`.
#[pyfunction]
#[pyo3(signature = (cfg, group_ids, rewards, mask, logprobs, old_logprobs, sum_p_sq=None, global_counts=None))]
#[allow(clippy::too_many_arguments)]
fn token_objective(
    py: Python<'_>,
    cfg: &Config,
    group_ids: &Bound<'_, PyAny>,
    rewards: &Bound<'_, PyAny>,
    mask: &Bound<'_, PyAny>,
    logprobs: &Bound<'_, PyAny>,
    old_logprobs: &Bound<'_, PyAny>,
    sum_p_sq: Option<&Bound<'_, PyAny>>,
    global_counts: Option<&Bound<'_, PyDict>>,
) -> PyResult<Output> {
    let g = self::global_counts(global_counts)?;
    if is_f32(logprobs) {
        token_typed::<f32>(py, cfg, group_ids, rewards, mask, logprobs, old_logprobs, sum_p_sq, g)
    } else {
        token_typed::<f64>(py, cfg, group_ids, rewards, mask, logprobs, old_logprobs, sum_p_sq, g)
    }
}

/// Logits level: see `wapo.logits_objective`.
#[pyfunction]
#[pyo3(signature = (cfg, group_ids, rewards, mask, logits, tokens, old_logprobs, global_counts=None))]
#[allow(clippy::too_many_arguments)]
fn logits_objective(
    py: Python<'_>,
    cfg: &Config,
    group_ids: &Bound<'_, PyAny>,
    rewards: &Bound<'_, PyAny>,
    mask: &Bound<'_, PyAny>,
    logits: &Bound<'_, PyAny>,
    tokens: &Bound<'_, PyAny>,
    old_logprobs: &Bound<'_, PyAny>,
    global_counts: Option<&Bound<'_, PyDict>>,
) -> PyResult<Output> {
    let g = self::global_counts(global_counts)?;
    if is_f32(logits) {
        logits_typed::<f32>(py, cfg, group_ids, rewards, mask, logits, tokens, old_logprobs, g)
    } else {
        logits_typed::<f64>(py, cfg, group_ids, rewards, mask, logits, tokens, old_logprobs, g)
    }
}

/// The counts of several ranks reduced into one dict (sums; `max_tokens`: max).
#[pyfunction]
fn reduce_counts<'py>(py: Python<'py>, counts: Vec<Bound<'py, PyDict>>) -> PyResult<Bound<'py, PyDict>> {
    let all =
        counts.iter().map(|d| global_counts(Some(d)).map(|c| c.unwrap_or_default())).collect::<PyResult<Vec<_>>>()?;
    counts_dict(py, &Counts::reduce(&all))
}

/// The normalizer D the counts give under `cfg` (1 for the global level
/// with `normalize_by_kept_tokens`, whose weight carries the count).
#[pyfunction]
fn normalizer(cfg: &Config, counts: &Bound<'_, PyDict>) -> PyResult<f64> {
    let c = global_counts(Some(counts))?.unwrap_or_default();
    Ok(ranks::normalizer(&cfg.for_batch(1), &c).d)
}

#[pymodule]
fn _wapo(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Config>()?;
    m.add_class::<Output>()?;
    m.add_function(wrap_pyfunction!(token_objective, m)?)?;
    m.add_function(wrap_pyfunction!(logits_objective, m)?)?;
    m.add_function(wrap_pyfunction!(reduce_counts, m)?)?;
    m.add_function(wrap_pyfunction!(normalizer, m)?)?;
    m.add("OBJECTIVES", config::objective_names())?;
    m.add("COUNT_NAMES", ranks::NAMES.to_vec())?;
    m.add("BIN_NAMES", BIN.to_vec())?;
    Ok(())
}

const BIN: [&str; 4] = wapo_core::BinSpec::NAMES;
