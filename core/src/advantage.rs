//! Group advantages (`OBJECTIVE.md` §1): normalized, centered or raw.

use crate::error::Result;
use crate::objective::AdvantageMode;
use crate::shape::Shape;
use crate::tensor::{Tensor, Unary};

/// Group membership of the N sequences: dense ids `0..count` (any order).
#[derive(Clone, Debug)]
pub struct Groups<T> {
    /// (N) dense group id of each sequence, as floats.
    pub ids: T,
    /// Number of groups.
    pub count: usize,
}

impl<T: Tensor> Groups<T> {
    /// From ids already in `0..count`. Checked on the host copy the caller has.
    pub fn from_dense(ids: T, count: usize) -> Self {
        Groups { ids, count }
    }

    /// Remaps arbitrary integer ids to dense ids in order of first appearance.
    #[cfg(feature = "alloc")]
    pub fn from_ids(dev: &T::Device, ids: &[i64]) -> Result<Self> {
        use alloc::collections::BTreeMap;
        use alloc::vec::Vec;
        if ids.is_empty() {
            return Err(crate::error::Error::Empty { field: "group_ids" });
        }
        let mut map = BTreeMap::new();
        let dense: Vec<f64> = ids
            .iter()
            .map(|id| {
                let next = map.len();
                *map.entry(*id).or_insert(next) as f64
            })
            .collect();
        let t = T::upload(dev, &dense, Shape::d1(ids.len()))?;
        Ok(Groups { ids: t, count: map.len() })
    }

    /// (N) number of sequences in each sequence's group.
    pub fn sizes(&self) -> Result<T> {
        let n = self.ids.shape().numel();
        let ones = T::full(&self.ids.device(), Shape::d1(n), 1.0)?;
        ones.segment_sum(&self.ids, self.count)?.take(&self.ids)
    }

    /// (N) the group mean of `x` (N), per member, with one correction pass
    /// (mean += mean(x − mean)), so that a group of equal values has exactly
    /// that value as its mean — and exactly zero advantage, as the paper's
    /// "a group whose rewards are all equal contributes nothing" requires
    /// (a plain Σ/n of three 0.37s is 0.36999999999999994).
    pub fn mean(&self, x: &T) -> Result<T> {
        let n = self.ids.shape().numel();
        let ones = T::full(&x.device(), Shape::d1(n), 1.0)?;
        let size = ones.segment_sum(&self.ids, self.count)?;
        let mean = x.segment_sum(&self.ids, self.count)?.div(&size)?.take(&self.ids)?;
        let fix = x.sub(&mean)?.segment_sum(&self.ids, self.count)?.div(&size)?.take(&self.ids)?;
        mean.add(&fix)
    }

    /// (N) the sum over the group of `x` (N), per member.
    pub fn sum(&self, x: &T) -> Result<T> {
        x.segment_sum(&self.ids, self.count)?.take(&self.ids)
    }
}

/// (N) advantages from (N) rewards.
pub fn advantages<T: Tensor>(rewards: &T, groups: &Groups<T>, mode: AdvantageMode) -> Result<T> {
    if mode == AdvantageMode::Raw {
        return rewards.add_scalar(0.0);
    }
    let centered = rewards.sub(&groups.mean(rewards)?)?;
    if mode == AdvantageMode::Centered {
        return Ok(centered);
    }
    // Population std, as torch.std(unbiased=False).
    let std = groups.mean(&centered.unary(Unary::Sqr)?)?.unary(Unary::Sqrt)?;
    centered.div(&std.add_scalar(1e-8)?)
}
