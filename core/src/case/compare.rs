//! Comparing an output object with a case's `expected` object.

use alloc::string::String;
use alloc::vec::Vec;

use serde_json::Value;

/// |a − b| ≤ abs·scale + rel·|b|, where scale is 1, or, with `scale_floor`,
/// max(largest |b| of the field, scale_floor).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    pub abs: f64,
    pub rel: f64,
    pub scale_floor: Option<f64>,
}

impl Tolerance {
    /// float64 implementations (`docs/CASES.md`): 1e-9 + 1e-7·|b|.
    pub const F64: Tolerance = Tolerance { abs: 1e-9, rel: 1e-7, scale_floor: None };
    /// float32 backends: 1e-4 relative, with an absolute floor of 1e-4 of the
    /// field's scale (at least 0.1). Entries that cancel (1 − p for p ≈ 1, a
    /// loss summed over both signs, the entropy of a near-one-hot row) carry
    /// the f32 rounding of their inputs' scale, not of their own: f32 logits
    /// of magnitude 400 are already off by 3e-5 before any arithmetic.
    pub const F32: Tolerance = Tolerance { abs: 1e-4, rel: 1e-4, scale_floor: Some(0.1) };
    /// Exact (counts).
    pub const EXACT: Tolerance = Tolerance { abs: 0.0, rel: 0.0, scale_floor: None };
}

/// The comparison of one field.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldDiff {
    pub field: String,
    /// Largest |a − b| over the field's numbers.
    pub max_abs: f64,
    /// Position (flat index) of the worst number relative to its tolerance.
    pub worst: Option<usize>,
    pub ok: bool,
    /// Why the field failed outside of numbers (missing, shape), if it did.
    pub note: Option<String>,
}

/// Compares every field of `expected` with `actual`; counts must be exact.
pub fn compare(actual: &Value, expected: &Value, tol: Tolerance) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    let Some(exp) = expected.as_object() else {
        return out;
    };
    for (key, e) in exp {
        if key == "bin_counts" {
            if let Some(obj) = e.as_object() {
                for (k, ev) in obj {
                    let a = actual.get("bin_counts").and_then(|b| b.get(k));
                    out.push(field(&alloc::format!("bin_counts.{k}"), a, ev, Tolerance::EXACT));
                }
            }
            continue;
        }
        let tol = if key == "clipped_tokens" { Tolerance::EXACT } else { tol };
        out.push(field(key, actual.get(key), e, tol));
    }
    out
}

fn flatten(v: &Value, out: &mut Vec<Option<f64>>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| flatten(x, out)),
        Value::Null => out.push(None),
        other => out.push(other.as_f64()),
    }
}

fn field(name: &str, actual: Option<&Value>, expected: &Value, tol: Tolerance) -> FieldDiff {
    let mut d = FieldDiff { field: name.into(), max_abs: 0.0, worst: None, ok: true, note: None };
    let Some(actual) = actual else {
        d.ok = false;
        d.note = Some("missing from the output".into());
        return d;
    };
    let (mut a, mut e) = (Vec::new(), Vec::new());
    flatten(actual, &mut a);
    flatten(expected, &mut e);
    if a.len() != e.len() {
        d.ok = false;
        d.note = Some(alloc::format!("{} values, expected {}", a.len(), e.len()));
        return d;
    }
    let scale = match tol.scale_floor {
        Some(floor) => e.iter().flatten().fold(floor, |m, x| m.max(x.abs())),
        None => 1.0,
    };
    let mut worst_ratio = 0.0;
    for (k, (x, y)) in a.iter().zip(e.iter()).enumerate() {
        let (diff, ratio) = match (x, y) {
            (None, None) => (0.0, 0.0),
            (Some(x), Some(y)) => {
                let diff = (x - y).abs();
                let allowed = tol.abs * scale + tol.rel * y.abs();
                let ratio = if diff == 0.0 {
                    0.0
                } else if diff.is_nan() || allowed == 0.0 {
                    f64::INFINITY
                } else {
                    diff / allowed
                };
                (diff, ratio)
            }
            _ => (f64::INFINITY, f64::INFINITY),
        };
        d.max_abs = d.max_abs.max(diff);
        if ratio > worst_ratio {
            worst_ratio = ratio;
            d.worst = Some(k);
        }
    }
    d.ok = worst_ratio <= 1.0;
    d
}
