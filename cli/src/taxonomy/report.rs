//! Per bin, over the batches of the experiment: the sign §7 predicts, how
//! often the measured change has the sign predicted for its batch, and the
//! correlation of predicted with measured magnitude.

use serde_json::{Value, json};
use wapo_core::objective::BinSpec;

use super::experiment::Trial;
use crate::summary::{Table, num};

/// One quantity (ΔH or Δℓ) of one bin over the batches.
#[derive(Clone, Debug, PartialEq)]
pub struct Agreement {
    /// Sign of the mean prediction: −1, 0 or 1.
    pub predicted_sign: f64,
    /// Share of batches whose measured change has its predicted sign.
    pub sign_agreement: f64,
    /// Pearson correlation of predicted and measured over the batches
    /// (`None` below 3 batches or without variance).
    pub correlation: Option<f64>,
    pub predicted_mean: f64,
    pub measured_mean: f64,
}

/// One bin over the batches that updated some of its tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct BinReport {
    pub name: &'static str,
    pub batches: usize,
    pub tokens_mean: f64,
    pub entropy: Agreement,
    pub logprob: Agreement,
}

fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Pearson correlation of the pairs; `None` for fewer than 3 or no variance.
pub fn correlation(pairs: &[(f64, f64)]) -> Option<f64> {
    if pairs.len() < 3 {
        return None;
    }
    let n = pairs.len() as f64;
    let (mx, my) = (pairs.iter().map(|p| p.0).sum::<f64>() / n, pairs.iter().map(|p| p.1).sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for &(x, y) in pairs {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    let d = (sxx * syy).sqrt();
    (d > 0.0 && d.is_finite()).then(|| sxy / d)
}

fn agreement(pairs: &[(f64, f64)]) -> Agreement {
    let n = pairs.len().max(1) as f64;
    let predicted_mean = pairs.iter().map(|p| p.0).sum::<f64>() / n;
    let agree = pairs.iter().filter(|(p, m)| sign(*p) == sign(*m)).count();
    Agreement {
        predicted_sign: sign(predicted_mean),
        sign_agreement: agree as f64 / n,
        correlation: correlation(pairs),
        predicted_mean,
        measured_mean: pairs.iter().map(|p| p.1).sum::<f64>() / n,
    }
}

/// The four bins' reports, in [`BinSpec::NAMES`] order.
pub fn summarize(trials: &[Trial]) -> Vec<BinReport> {
    BinSpec::NAMES
        .iter()
        .enumerate()
        .map(|(code, &name)| {
            let ts: Vec<&Trial> = trials.iter().filter(|t| t.bin == code).collect();
            let dh: Vec<(f64, f64)> = ts.iter().map(|t| (t.pred_dentropy, t.meas_dentropy)).collect();
            let dl: Vec<(f64, f64)> = ts.iter().map(|t| (t.pred_dlogp, t.meas_dlogp)).collect();
            BinReport {
                name,
                batches: ts.len(),
                tokens_mean: ts.iter().map(|t| t.tokens as f64).sum::<f64>() / ts.len().max(1) as f64,
                entropy: agreement(&dh),
                logprob: agreement(&dl),
            }
        })
        .collect()
}

fn finite(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

fn agreement_json(a: &Agreement) -> Value {
    json!({
        "predicted_sign": finite(a.predicted_sign),
        "sign_agreement": finite(a.sign_agreement),
        "correlation": a.correlation.map_or(Value::Null, finite),
        "predicted_mean": finite(a.predicted_mean),
        "measured_mean": finite(a.measured_mean),
    })
}

/// `{"bins": {"pos_peak": {"batches", "tokens_mean", "entropy": {...}, "logprob": {...}}, ...}}`.
pub fn bins_json(bins: &[BinReport]) -> Value {
    let mut map = serde_json::Map::new();
    for b in bins {
        map.insert(
            b.name.into(),
            json!({
                "batches": b.batches,
                "tokens_mean": finite(b.tokens_mean),
                "entropy": agreement_json(&b.entropy),
                "logprob": agreement_json(&b.logprob),
            }),
        );
    }
    Value::Object(map)
}

fn signed(x: f64) -> String {
    match sign(x) {
        s if s > 0.0 => "+".into(),
        s if s < 0.0 => "−".into(),
        _ => "0".into(),
    }
}

/// The table: per bin, for ΔH and Δℓ, predicted sign, sign agreement and correlation.
pub fn table(bins: &[BinReport]) -> Table {
    let mut t =
        Table::new(["bin", "batches", "tokens", "ΔH pred", "ΔH agree", "ΔH corr", "Δℓ pred", "Δℓ agree", "Δℓ corr"]);
    for b in bins {
        t.row([
            b.name.to_string(),
            b.batches.to_string(),
            format!("{:.1}", b.tokens_mean),
            signed(b.entropy.predicted_sign),
            num(Some(b.entropy.sign_agreement)),
            num(b.entropy.correlation),
            signed(b.logprob.predicted_sign),
            num(Some(b.logprob.sign_agreement)),
            num(b.logprob.correlation),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_of_known_series() {
        // y = 2x + 1 exactly, then y = −x.
        let up: Vec<(f64, f64)> = (0..5).map(|i| (i as f64, 2.0 * i as f64 + 1.0)).collect();
        assert!((correlation(&up).unwrap() - 1.0).abs() < 1e-12);
        let down: Vec<(f64, f64)> = (0..5).map(|i| (i as f64, -(i as f64))).collect();
        assert!((correlation(&down).unwrap() + 1.0).abs() < 1e-12);
        // x = (1, 2, 3), y = (1, 3, 2): r = 0.5 by hand.
        assert!((correlation(&[(1.0, 1.0), (2.0, 3.0), (3.0, 2.0)]).unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(correlation(&[(1.0, 1.0), (2.0, 2.0)]), None);
        assert_eq!(correlation(&[(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)]), None);
    }

    #[test]
    fn agreement_counts_batches_with_the_predicted_sign() {
        let a = agreement(&[(1.0, 2.0), (1.0, -1.0), (2.0, 0.5), (-0.5, -3.0)]);
        assert_eq!(a.predicted_sign, 1.0);
        assert_eq!(a.sign_agreement, 0.75);
        assert_eq!(a.predicted_mean, 0.875);
    }
}
