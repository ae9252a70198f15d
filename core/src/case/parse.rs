//! Parsing and validation: every malformed input of `docs/CASES.md` becomes
//! an [`Error::Case`] that names the field and the position.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::{Map, Value};

use super::{Case, CaseInput};
use crate::error::{Error, Result};
use crate::objective::{Aggregation, BinSpec, Objective, ObjectiveConfig};

/// The format tag every case file carries.
pub const FORMAT: &str = "wapo-objective-case/1";

const TOP_KEYS: [&str; 13] = [
    "format",
    "name",
    "config",
    "group_ids",
    "rewards",
    "mask",
    "old_logprobs",
    "logprobs",
    "sum_p_sq",
    "logits",
    "tokens",
    "expected",
    "description",
];
const CONFIG_KEYS: [&str; 12] = [
    "objective",
    "clip_eps",
    "clip_low",
    "clip_high",
    "importance_sampling",
    "aggregation",
    "normalize_by_kept_tokens",
    "include_bins",
    "exclude_bins",
    "max_seq_len",
    "temperature",
    "mask_positive_advantages",
];

fn err(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Case { field: field.into(), reason: reason.into() }
}

pub(super) fn parse(text: &str) -> Result<Case> {
    let root: Value = serde_json::from_str(text).map_err(|e| {
        err(
            "<file>",
            format!(
                "not valid JSON at line {} column {}: {e} (NaN and Infinity are not JSON; write a −inf logit as null)",
                e.line(),
                e.column()
            ),
        )
    })?;
    let obj = root.as_object().ok_or_else(|| err("<file>", "a case must be a JSON object"))?;
    for key in obj.keys() {
        if !TOP_KEYS.contains(&key.as_str()) {
            return Err(err(key.clone(), "unknown field"));
        }
    }
    match obj.get("format") {
        Some(Value::String(f)) if f == FORMAT => {}
        Some(other) => {
            return Err(err("format", format!("unknown format {other}; expected \"{FORMAT}\"")));
        }
        None => return Err(err("format", format!("missing; expected \"{FORMAT}\""))),
    }
    let name = match obj.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(err("name", "must be a string")),
    };

    let rewards = numbers_1d(obj, "rewards")?;
    let n = rewards.len();
    if n == 0 {
        return Err(err("rewards", "empty batch: N must be ≥ 1"));
    }
    let group_ids = group_ids(obj, n)?;
    let (mask, t) = numbers_2d(obj, "mask", n, None)?;
    if t == 0 {
        return Err(err("mask", "empty batch: T must be ≥ 1"));
    }
    for (k, m) in mask.iter().enumerate() {
        if *m != 0.0 && *m != 1.0 {
            return Err(err(format!("mask[{}][{}]", k / t, k % t), format!("must be 0 or 1, got {m}")));
        }
    }
    let (old_logprobs, _) = numbers_2d(obj, "old_logprobs", n, Some(t))?;
    let config = config(obj, t)?;

    let input = match (obj.get("logprobs"), obj.get("logits")) {
        (Some(_), Some(_)) => {
            return Err(err("logits", "give either `logprobs` (token level) or `logits` + `tokens`, not both"));
        }
        (None, None) => {
            return Err(err("logprobs", "missing: give `logprobs` (token level) or `logits` + `tokens`"));
        }
        (Some(_), None) => {
            if obj.contains_key("tokens") {
                return Err(err("tokens", "only valid with `logits`"));
            }
            let (logprobs, _) = numbers_2d(obj, "logprobs", n, Some(t))?;
            let sum_p_sq = match obj.get("sum_p_sq") {
                None | Some(Value::Null) => None,
                Some(_) => Some(numbers_2d(obj, "sum_p_sq", n, Some(t))?.0),
            };
            CaseInput::Tokens { logprobs, sum_p_sq }
        }
        (None, Some(_)) => logits_input(obj, n, t, &mask)?,
    };
    let expected = obj.get("expected").cloned();
    Ok(Case { name, config, n, t, group_ids, rewards, mask, old_logprobs, input, expected })
}

fn logits_input(obj: &Map<String, Value>, n: usize, t: usize, mask: &[f64]) -> Result<CaseInput> {
    if obj.contains_key("sum_p_sq") {
        return Err(err("sum_p_sq", "only valid at token level: at logits level Σp² is computed from the logits"));
    }
    let rows = array(obj.get("logits"), "logits")?;
    expect_len(rows, n, "logits", "N (the length of `rewards`)")?;
    let mut vocab = None;
    let mut logits = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let f = format!("logits[{i}]");
        let cols = array(Some(row), &f)?;
        expect_len(cols, t, &f, "T (the row length of `mask`)")?;
        for (tt, col) in cols.iter().enumerate() {
            let f = format!("logits[{i}][{tt}]");
            let vals = array(Some(col), &f)?;
            let v = *vocab.get_or_insert(vals.len());
            if v == 0 {
                return Err(err(f, "empty vocabulary row"));
            }
            expect_len(vals, v, &f, "V (the length of `logits[0][0]`)")?;
            for (k, x) in vals.iter().enumerate() {
                logits.push(match x {
                    Value::Null => f64::NEG_INFINITY,
                    _ => number(x, &format!("logits[{i}][{tt}][{k}]"))?,
                });
            }
        }
    }
    let vocab = vocab.unwrap_or(0);
    if !obj.contains_key("tokens") {
        return Err(err("tokens", "missing: required with `logits`"));
    }
    let (tokens, _) = numbers_2d(obj, "tokens", n, Some(t))?;
    for (k, y) in tokens.iter().enumerate() {
        let (i, tt) = (k / t, k % t);
        if !is_integer(*y) || *y < 0.0 || *y >= vocab as f64 {
            return Err(err(format!("tokens[{i}][{tt}]"), format!("token id {y} is not an integer in 0..{vocab} (V)")));
        }
        let z = logits[k * vocab + *y as usize];
        if mask[k] == 1.0 && z == f64::NEG_INFINITY {
            return Err(err(
                format!("logits[{i}][{tt}][{}]", *y as usize),
                "the sampled token of a real (mask = 1) position has a null (−inf) logit",
            ));
        }
    }
    Ok(CaseInput::Logits { logits, tokens, vocab })
}

fn config(obj: &Map<String, Value>, t: usize) -> Result<ObjectiveConfig> {
    let cfg = obj.get("config").ok_or_else(|| err("config", "missing"))?;
    let cfg = cfg.as_object().ok_or_else(|| err("config", "must be an object"))?;
    for key in cfg.keys() {
        if !CONFIG_KEYS.contains(&key.as_str()) {
            return Err(err(format!("config.{key}"), "unknown field"));
        }
    }
    let objective = match cfg.get("objective") {
        Some(Value::String(s)) => Objective::from_name(s).ok_or_else(|| {
            err("config.objective", format!("unknown objective \"{s}\" (expected grpo, dr_grpo, dapo, dr_dapo, dr_dapo_seq, gspo, raft, raft++ or wapo)"))
        })?,
        Some(_) => return Err(err("config.objective", "must be a string")),
        None => return Err(err("config.objective", "missing")),
    };
    let max_seq_len = match cfg.get("max_seq_len") {
        Some(v) => {
            let x = number(v, "config.max_seq_len")?;
            if !is_integer(x) || x < 1.0 {
                return Err(err("config.max_seq_len", format!("must be an integer ≥ 1, got {x}")));
            }
            x as usize
        }
        None if objective == Objective::Wapo => {
            return Err(err("config.max_seq_len", "missing: WAPO's denominator L_max is required"));
        }
        None => t,
    };
    let mut c = ObjectiveConfig::new(objective, max_seq_len);
    c.clip_eps = opt_number(cfg, "clip_eps")?;
    if objective.needs_clip_eps() && c.clip_eps.is_none() {
        return Err(err("config.clip_eps", format!("missing: required by {objective}")));
    }
    if let Some(v) = opt_number(cfg, "clip_low")? {
        c.clip_low = v;
    }
    if let Some(v) = opt_number(cfg, "clip_high")? {
        c.clip_high = v;
    }
    if let Some(v) = opt_number(cfg, "temperature")? {
        c.temperature = v;
    }
    c.importance_sampling = opt_bool(cfg, "importance_sampling")?.unwrap_or(true);
    c.normalize_by_kept_tokens = opt_bool(cfg, "normalize_by_kept_tokens")?.unwrap_or(false);
    c.mask_positive_advantages = opt_bool(cfg, "mask_positive_advantages")?.unwrap_or(false);
    c.aggregation = match cfg.get("aggregation") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "seq" => Aggregation::Seq,
            "group" => Aggregation::Group,
            "global" => Aggregation::Global,
            _ => {
                return Err(err(
                    "config.aggregation",
                    format!("unknown level \"{s}\" (expected seq, group or global)"),
                ));
            }
        }),
        Some(_) => return Err(err("config.aggregation", "must be a string")),
    };
    c.include_bins = bins(cfg, "include_bins")?;
    c.exclude_bins = bins(cfg, "exclude_bins")?;
    c.validate().map_err(|e| match e {
        Error::Config { field, reason } => err(format!("config.{field}"), reason),
        other => other,
    })?;
    Ok(c)
}

fn bins(cfg: &Map<String, Value>, key: &str) -> Result<BinSpec> {
    let field = format!("config.{key}");
    let list = match cfg.get(key) {
        None | Some(Value::Null) => return Ok(BinSpec::NONE),
        Some(v) => array(Some(v), &field)?,
    };
    let mut spec = BinSpec::NONE;
    for (k, b) in list.iter().enumerate() {
        let name = b.as_str().ok_or_else(|| err(format!("{field}[{k}]"), "must be a string"))?;
        let one = BinSpec::parse(name).ok_or_else(|| {
            err(
                format!("{field}[{k}]"),
                format!("unknown bin \"{name}\" (pos_peak pos_valley neg_peak neg_valley peak valley pos neg)"),
            )
        })?;
        spec = spec.union(one);
    }
    Ok(spec)
}

fn opt_number(cfg: &Map<String, Value>, key: &str) -> Result<Option<f64>> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => number(v, &format!("config.{key}")).map(Some),
    }
}

fn opt_bool(cfg: &Map<String, Value>, key: &str) -> Result<Option<bool>> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(err(format!("config.{key}"), "must be true or false")),
    }
}

fn array<'a>(v: Option<&'a Value>, field: &str) -> Result<&'a Vec<Value>> {
    match v {
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(err(field, "must be an array")),
        None => Err(err(field, "missing")),
    }
}

fn expect_len(a: &[Value], len: usize, field: &str, what: &str) -> Result<()> {
    if a.len() != len {
        return Err(err(field, format!("expected {len} values to match {what}, got {}", a.len())));
    }
    Ok(())
}

fn number(v: &Value, field: &str) -> Result<f64> {
    match v.as_f64() {
        Some(x) if x.is_finite() => Ok(x),
        _ => Err(err(field, format!("must be a finite number, got {}", short(v)))),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 { format!("{}…", s.chars().take(40).collect::<String>()) } else { s }
}

fn numbers_1d(obj: &Map<String, Value>, key: &str) -> Result<Vec<f64>> {
    let a = array(obj.get(key), key)?;
    a.iter().enumerate().map(|(i, v)| number(v, &format!("{key}[{i}]"))).collect()
}

/// An (N, T) array: N rows of equal length (`t` when known). Returns the data and T.
fn numbers_2d(obj: &Map<String, Value>, key: &str, n: usize, t: Option<usize>) -> Result<(Vec<f64>, usize)> {
    let rows = array(obj.get(key), key)?;
    expect_len(rows, n, key, "N (the length of `rewards`)")?;
    let mut out = Vec::new();
    let mut width = t;
    for (i, row) in rows.iter().enumerate() {
        let f = format!("{key}[{i}]");
        let cols = array(Some(row), &f)?;
        let w = *width.get_or_insert(cols.len());
        let what = if t.is_some() { "T (the row length of `mask`)" } else { "the length of its first row" };
        expect_len(cols, w, &f, what)?;
        for (k, v) in cols.iter().enumerate() {
            out.push(number(v, &format!("{key}[{i}][{k}]"))?);
        }
    }
    Ok((out, width.unwrap_or(0)))
}

fn group_ids(obj: &Map<String, Value>, n: usize) -> Result<Vec<i64>> {
    let a = array(obj.get("group_ids"), "group_ids")?;
    expect_len(a, n, "group_ids", "N (the length of `rewards`)")?;
    a.iter()
        .enumerate()
        .map(|(i, v)| {
            let f = format!("group_ids[{i}]");
            if let Some(x) = v.as_i64() {
                return Ok(x);
            }
            match v.as_f64() {
                Some(x) if is_integer(x) && libm::fabs(x) < 9.0e15 => Ok(x as i64),
                _ => Err(err(f, format!("group id must be an integer, got {}", short(v)))),
            }
        })
        .collect()
}

fn is_integer(x: f64) -> bool {
    libm::floor(x) == x
}
