//! Evaluating a case on a backend and turning the result into the output
//! object of `docs/CASES.md`.

use alloc::vec;
use alloc::vec::Vec;

use serde_json::{Map, Value, json};

use super::{Case, CaseInput};
use crate::advantage::Groups;
use crate::error::Result;
use crate::logits::{LogitsBatch, logits_objective};
use crate::objective::{BinSpec, Output, TokenBatch, token_objective};
use crate::shape::Shape;
use crate::tensor::Tensor;

/// The output object of a case, downloaded to f64.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseOutput {
    pub n: usize,
    pub t: usize,
    pub v: Option<usize>,
    pub advantages: Vec<f64>,
    pub weights: Vec<f64>,
    pub normalizer: f64,
    pub loss_sum: f64,
    pub loss: f64,
    /// (N, T)
    pub grad_logprobs: Vec<f64>,
    /// (N, T, V) at logits level.
    pub grad_logits: Option<Vec<f64>>,
    /// (N, T) at logits level.
    pub logprobs: Option<Vec<f64>>,
    pub entropy: Option<Vec<f64>>,
    pub sum_p_sq: Option<Vec<f64>>,
    pub clipped_tokens: u64,
    pub bin_counts: crate::objective::BinCounts,
}

impl Case {
    /// Uploads the case to `dev`, evaluates it and downloads the output.
    pub fn evaluate<T: Tensor>(&self, dev: &T::Device) -> Result<CaseOutput> {
        let (n, t) = (self.n, self.t);
        let groups = Groups::<T>::from_ids(dev, &self.group_ids)?;
        let rewards = T::upload(dev, &self.rewards, Shape::d1(n))?;
        let mask = T::upload(dev, &self.mask, Shape::d2(n, t))?;
        let old = T::upload(dev, &self.old_logprobs, Shape::d2(n, t))?;
        let (out, v) = match &self.input {
            CaseInput::Tokens { logprobs, sum_p_sq } => {
                let lp = T::upload(dev, logprobs, Shape::d2(n, t))?;
                let sq = sum_p_sq.as_ref().map(|s| T::upload(dev, s, Shape::d2(n, t))).transpose()?;
                let batch = TokenBatch {
                    groups: &groups,
                    rewards: &rewards,
                    mask: &mask,
                    logprobs: &lp,
                    old_logprobs: &old,
                    sum_p_sq: sq.as_ref(),
                };
                (token_objective(&self.config, &batch)?, None)
            }
            CaseInput::Logits { logits, tokens, vocab } => {
                let z = T::upload(dev, logits, Shape::d3(n, t, *vocab))?;
                let y = T::upload(dev, tokens, Shape::d2(n, t))?;
                let batch = LogitsBatch {
                    groups: &groups,
                    rewards: &rewards,
                    mask: &mask,
                    logits: &z,
                    tokens: &y,
                    old_logprobs: &old,
                };
                (logits_objective(&self.config, &batch)?, Some(*vocab))
            }
        };
        CaseOutput::download(&out, n, t, v)
    }
}

fn host<T: Tensor>(x: &T) -> Result<Vec<f64>> {
    let mut v = vec![0.0; x.shape().numel()];
    x.download(&mut v)?;
    Ok(v)
}

impl CaseOutput {
    pub fn download<T: Tensor>(out: &Output<T>, n: usize, t: usize, v: Option<usize>) -> Result<Self> {
        let s = out.summary()?;
        let logits_level = v.is_some();
        let opt = |x: &Option<T>| -> Result<Option<Vec<f64>>> {
            if logits_level { x.as_ref().map(host).transpose() } else { Ok(None) }
        };
        Ok(CaseOutput {
            n,
            t,
            v,
            advantages: host(&out.advantages)?,
            weights: host(&out.weights)?,
            normalizer: s.normalizer,
            loss_sum: s.loss_sum,
            loss: s.loss,
            grad_logprobs: host(&out.grad_logprobs)?,
            grad_logits: opt(&out.grad_logits)?,
            logprobs: if logits_level { Some(host(&out.logprobs)?) } else { None },
            entropy: opt(&out.entropy)?,
            sum_p_sq: opt(&out.sum_p_sq)?,
            clipped_tokens: s.clipped_tokens,
            bin_counts: s.bins,
        })
    }

    /// The output object of `docs/CASES.md`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("advantages".into(), json!(self.advantages));
        m.insert("weights".into(), json!(self.weights));
        m.insert("normalizer".into(), json!(self.normalizer));
        m.insert("loss_sum".into(), json!(self.loss_sum));
        m.insert("loss".into(), json!(self.loss));
        m.insert("clipped_tokens".into(), json!(self.clipped_tokens));
        let mut bins = Map::new();
        for (c, name) in BinSpec::NAMES.iter().enumerate() {
            bins.insert(alloc::format!("{name}_eligible"), json!(self.bin_counts.eligible[c]));
            bins.insert(alloc::format!("{name}_kept"), json!(self.bin_counts.kept[c]));
        }
        m.insert("bin_counts".into(), Value::Object(bins));
        let rows = |x: &[f64]| Value::Array(x.chunks(self.t).map(|r| json!(r)).collect());
        match self.v {
            None => {
                m.insert("grad_logprobs".into(), rows(&self.grad_logprobs));
            }
            Some(v) => {
                if let Some(g) = &self.grad_logits {
                    let cube = g.chunks(self.t * v).map(|seq| Value::Array(seq.chunks(v).map(json_row).collect()));
                    m.insert("grad_logits".into(), Value::Array(cube.collect()));
                }
                for (key, x) in [("logprobs", &self.logprobs), ("entropy", &self.entropy), ("sum_p_sq", &self.sum_p_sq)]
                {
                    if let Some(x) = x {
                        m.insert(key.into(), Value::Array(x.chunks(self.t).map(json_row).collect()));
                    }
                }
            }
        }
        Value::Object(m)
    }
}

/// A row of numbers; a non-finite value (−inf log-prob of a masked entry) becomes `null`.
fn json_row(r: &[f64]) -> Value {
    Value::Array(r.iter().map(|x| if x.is_finite() { json!(x) } else { Value::Null }).collect())
}
