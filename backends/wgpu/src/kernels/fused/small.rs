//! The small (N) and (N, T) tensors of a fused evaluation on the host: one
//! read-back of the inputs and of the stats pass's ℓ and Σp², the input
//! checks of the logits level on those copies, and the (9) counts.

use wapo_core::advantage::Groups;
use wapo_core::error::Pos;
use wapo_core::host::HostTensor;
use wapo_core::logits::LogitsBatch;
use wapo_core::objective::{Output, TokenBatch};
use wapo_core::{Error, Result, Shape, Tensor};

use super::stats::Stats;
use crate::tensor::WgpuTensor;

/// f64 host copies of what the token-level engine reads.
pub(crate) struct Small {
    pub groups: Groups<HostTensor<f64>>,
    pub rewards: HostTensor<f64>,      // (N)
    pub mask: HostTensor<f64>,         // (N, T)
    pub tokens: HostTensor<f64>,       // (N, T)
    pub old_logprobs: HostTensor<f64>, // (N, T)
    pub logprobs: HostTensor<f64>,     // (N, T) ℓ of the stats pass
    pub sum_p_sq: HostTensor<f64>,     // (N, T) Σp² of the stats pass
}

impl Small {
    /// Copies the batch's small tensors and `st`'s ℓ and Σp² in one read-back
    /// (which waits for the stats pass). The logits are never downloaded.
    pub(crate) fn download(b: &LogitsBatch<'_, WgpuTensor>, st: &Stats) -> Result<Small> {
        let parts = [b.groups.ids.clone(), b.rewards.clone(), b.mask.clone(), b.tokens.clone(), b.old_logprobs.clone()]
            .into_iter()
            .chain([st.logp.clone(), st.sum_p_sq.clone()])
            .collect::<Vec<_>>();
        let bufs = parts.iter().map(|t| Ok((t.single(super::OP)?, t.numel()))).collect::<Result<Vec<_>>>()?;
        let host = crate::transfer::read_f32_many(b.logits.ctx(), &bufs)?;
        let mut it = parts.iter().zip(host).map(|(t, v)| HostTensor::from_f32(&v, t.shape));
        let mut next = || it.next().ok_or_else(|| Error::Backend("read-back lost a tensor".into()))?;
        Ok(Small {
            groups: Groups::from_dense(next()?, b.groups.count),
            rewards: next()?,
            mask: next()?,
            tokens: next()?,
            old_logprobs: next()?,
            logprobs: next()?,
            sum_p_sq: next()?,
        })
    }

    /// The token-level batch of the engine.
    pub(crate) fn batch(&self) -> TokenBatch<'_, HostTensor<f64>> {
        TokenBatch {
            groups: &self.groups,
            rewards: &self.rewards,
            mask: &self.mask,
            logprobs: &self.logprobs,
            old_logprobs: &self.old_logprobs,
            sum_p_sq: Some(&self.sum_p_sq),
        }
    }

    /// The value checks of `check_logits_batch`, in its order and with its
    /// errors: a 0/1 mask, then token ids that are integers in `0..v`.
    pub(crate) fn check_values(&self, v: usize) -> Result<()> {
        let t = self.mask.shape().last();
        let at = |i: usize| Pos::at2(i / t, i % t);
        if let Some(i) = self.mask.data().iter().position(|m| *m != 0.0 && *m != 1.0) {
            return Err(Error::Invalid { field: "mask", pos: at(i), reason: "mask values must be 0 or 1" });
        }
        let v = v as f64;
        if let Some(i) = self.tokens.data().iter().position(|y| !(*y >= 0.0 && *y < v && y.floor() == *y)) {
            return Err(Error::Invalid { field: "tokens", pos: at(i), reason: "token id must be an integer in 0..V" });
        }
        Ok(())
    }
}

/// The shape checks of `check_logits_batch`, in its order and with its
/// errors, on the shapes alone (no dispatch); returns V.
pub(crate) fn check_shapes(b: &LogitsBatch<'_, WgpuTensor>) -> Result<usize> {
    let ls = b.logits.shape;
    if ls.rank() != 3 {
        return Err(Error::Shape {
            field: "logits",
            expected: Shape::d3(b.mask.shape.rows(), b.mask.shape.last(), 0),
            got: ls,
        });
    }
    let [n, t, v] = [ls.dims()[0], ls.dims()[1], ls.dims()[2]];
    if n == 0 || t == 0 || v == 0 {
        return Err(Error::Empty { field: "logits" });
    }
    let expect = |field: &'static str, x: &WgpuTensor, expected: Shape| {
        if x.shape == expected { Ok(()) } else { Err(Error::Shape { field, expected, got: x.shape }) }
    };
    expect("mask", b.mask, Shape::d2(n, t))?;
    expect("tokens", b.tokens, Shape::d2(n, t))?;
    expect("old_logprobs", b.old_logprobs, Shape::d2(n, t))?;
    expect("rewards", b.rewards, Shape::d1(n))?;
    for x in [b.mask, b.tokens, b.old_logprobs, b.rewards, &b.groups.ids] {
        b.logits.same_device(x)?;
    }
    Ok(v)
}

/// `[clipped, eligible × 4, kept × 4]` (`Output::count_values`) from the
/// host engine's (N, T) tensors: exact integer sums.
pub(crate) fn counts(out: &Output<HostTensor<f64>>) -> [f64; 9] {
    let mut c = [0.0; 9];
    c[0] = out.clipped.data().iter().sum();
    let (bins, mask, keep) = (out.bins.data(), out.mask.data(), out.keep.data());
    for ((code, m), k) in bins.iter().zip(mask).zip(keep) {
        // Codes are 0..3 by construction; anything else is counted nowhere,
        // as the reductions of `count_values` would.
        if (0.0..4.0).contains(code) && code.fract() == 0.0 {
            let code = *code as usize;
            c[1 + code] += m;
            c[5 + code] += k;
        }
    }
    c
}
