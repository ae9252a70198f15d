//! `wapo.Config`: every knob of `docs/OBJECTIVE.md`, under the names of a
//! case file's `config` object. The knobs are checked by the case-file
//! parser of `wapo_core::case`, so a dict that is a valid `config` in a case
//! file is a valid `Config` and the rules (defaults, required knobs, ranges,
//! names in errors) live in one place.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyList, PyString, PyTuple};
use serde_json::{Map, Value};
use wapo_core::case::{Case, FORMAT};
use wapo_core::{Aggregation, BinSpec, Objective, ObjectiveConfig};

use crate::error::value_error;

/// The objective's configuration (immutable).
#[pyclass(frozen, module = "wapo", name = "Config")]
pub struct Config {
    /// Parsed with a stand-in T of 1; `max_seq_len` is set per call when the
    /// knobs did not give it (the objective's default L_max is then T).
    parsed: ObjectiveConfig,
    max_seq_len: Option<usize>,
    /// The knobs as given, for `repr`, `to_dict` and pickling.
    given: Map<String, Value>,
}

impl Config {
    /// The configuration for a batch whose rows hold `t` tokens.
    pub fn for_batch(&self, t: usize) -> ObjectiveConfig {
        let mut c = self.parsed.clone();
        c.max_seq_len = self.max_seq_len.unwrap_or(t);
        c
    }

    fn from_map(given: Map<String, Value>) -> PyResult<Self> {
        // A one-token case around the knobs: only its `config` matters.
        let case = serde_json::json!({
            "format": FORMAT,
            "config": Value::Object(given.clone()),
            "group_ids": [0],
            "rewards": [0.0],
            "mask": [[1.0]],
            "old_logprobs": [[0.0]],
            "logprobs": [[0.0]],
        });
        let parsed = Case::parse(&case.to_string()).map_err(value_error)?.config;
        let max_seq_len = given.get("max_seq_len").map(|_| parsed.max_seq_len);
        Ok(Config { parsed, max_seq_len, given })
    }
}

fn to_json(key: &str, v: &Bound<'_, PyAny>) -> PyResult<Value> {
    let bad = |what: &str| PyValueError::new_err(format!("`config.{key}`: {what}"));
    if v.is_none() {
        return Ok(Value::Null);
    }
    if v.is_instance_of::<PyBool>() {
        return Ok(Value::Bool(v.extract()?));
    }
    if v.is_instance_of::<PyString>() {
        return Ok(Value::String(v.extract()?));
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let items: Vec<Bound<'_, PyAny>> = v.extract()?;
        return items.iter().map(|x| to_json(key, x)).collect::<PyResult<Vec<_>>>().map(Value::Array);
    }
    if !v.is_instance_of::<PyFloat>()
        && let Ok(i) = v.extract::<i64>()
    {
        return Ok(Value::from(i));
    }
    if let Ok(x) = v.extract::<f64>() {
        return serde_json::Number::from_f64(x)
            .map(Value::Number)
            .ok_or_else(|| bad(&format!("must be a finite number, got {x}")));
    }
    Err(bad(&format!("unsupported value of type {}", v.get_type().name()?)))
}

fn from_json<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into_pyobject(py)?.into_any(),
            None => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(a) => {
            PyList::new(py, a.iter().map(|x| from_json(py, x)).collect::<PyResult<Vec<_>>>()?)?.into_any()
        }
        Value::Object(m) => {
            let d = PyDict::new(py);
            for (k, x) in m {
                d.set_item(k, from_json(py, x)?)?;
            }
            d.into_any()
        }
    })
}

fn bin_names(spec: BinSpec) -> Vec<&'static str> {
    (0..4).filter(|c| spec.contains_code(*c)).map(|c| BinSpec::NAMES[c]).collect()
}

#[pymethods]
impl Config {
    /// `Config(objective="wapo", clip_eps=0.2, max_seq_len=512, ...)`: the
    /// keys of a case file's `config` object. An unknown or bad knob raises
    /// `ValueError` naming it.
    #[new]
    #[pyo3(signature = (**knobs))]
    fn new(knobs: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let mut given = Map::new();
        if let Some(d) = knobs {
            for (k, v) in d.iter() {
                let key: String = k.extract()?;
                let value = to_json(&key, &v)?;
                given.insert(key, value);
            }
        }
        Config::from_map(given)
    }

    /// The same as `Config(**d)`.
    #[staticmethod]
    fn from_dict(d: &Bound<'_, PyDict>) -> PyResult<Self> {
        Config::new(Some(d))
    }

    /// The knobs as given.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_json(py, &Value::Object(self.given.clone()))
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyAny>,))> {
        let from_dict = slf.get_type().getattr("from_dict")?;
        Ok((from_dict, (slf.get().to_dict(slf.py())?,)))
    }

    fn __repr__(&self) -> String {
        let knobs: Vec<String> = self
            .given
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => format!("'{s}'"),
                    Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
                    Value::Null => "None".to_string(),
                    other => other.to_string().replace('"', "'"),
                };
                format!("{k}={v}")
            })
            .collect();
        format!("Config({})", knobs.join(", "))
    }

    #[getter]
    fn objective(&self) -> &'static str {
        self.parsed.objective.name()
    }
    #[getter]
    fn clip_eps(&self) -> Option<f64> {
        self.parsed.clip_eps
    }
    #[getter]
    fn clip_low(&self) -> f64 {
        self.parsed.clip_low
    }
    #[getter]
    fn clip_high(&self) -> f64 {
        self.parsed.clip_high
    }
    #[getter]
    fn importance_sampling(&self) -> bool {
        self.parsed.importance_sampling
    }
    /// The aggregation level in force (the override, or the objective's default).
    #[getter]
    fn aggregation(&self) -> &'static str {
        match self.parsed.aggregation() {
            Aggregation::Seq => "seq",
            Aggregation::Group => "group",
            Aggregation::Global => "global",
        }
    }
    #[getter]
    fn normalize_by_kept_tokens(&self) -> bool {
        self.parsed.normalize_by_kept_tokens
    }
    #[getter]
    fn include_bins(&self) -> Vec<&'static str> {
        bin_names(self.parsed.include_bins)
    }
    #[getter]
    fn exclude_bins(&self) -> Vec<&'static str> {
        bin_names(self.parsed.exclude_bins)
    }
    #[getter]
    fn mask_positive_advantages(&self) -> bool {
        self.parsed.mask_positive_advantages
    }
    /// L_max, or `None` when not given (then T of each batch).
    #[getter]
    fn max_seq_len(&self) -> Option<usize> {
        self.max_seq_len
    }
    #[getter]
    fn temperature(&self) -> f64 {
        self.parsed.temperature
    }
    /// Whether only sequences with a positive advantage count (wapo, raft, raft++).
    #[getter]
    fn winners_only(&self) -> bool {
        self.parsed.objective.winners_only()
    }
}

/// Objectives by name, for the module's `OBJECTIVES`.
pub fn objective_names() -> Vec<&'static str> {
    Objective::ALL.iter().map(|o| o.name()).collect()
}
