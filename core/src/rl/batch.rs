//! A batch on the host: prompts left-padded to the longest ([`Padded`],
//! [`flatten_prompts`]) and an RL step's sampled, scored rollouts
//! ([`Batch`]).

use alloc::vec::Vec;
use core::ops::Range;

use crate::error::{Error, Result};
use crate::rl::policy::{Prompts, left_pad};
use crate::shape::Shape;
use crate::task::Example;
use crate::tensor::Tensor;

/// Prompts of a batch, left-padded to the longest (see [`Prompts::pad`]).
pub(crate) struct Padded {
    pub tokens: Vec<u32>, // (B, P)
    /// (B) padding per prompt; empty when every prompt has the same length.
    pub pad: Vec<usize>,
    pub len: usize,
}

impl Padded {
    pub fn view(&self, lo: usize, hi: usize) -> Prompts<'_> {
        let pad = if self.pad.is_empty() { &[][..] } else { &self.pad[lo..hi] };
        Prompts { tokens: &self.tokens[lo * self.len..hi * self.len], batch: hi - lo, len: self.len, pad }
    }
}

/// The (B, P) prompt tokens of `examples`, left-padded to the longest; fails
/// when a prompt is empty or longer than the task's `max_len`.
pub(crate) fn flatten_prompts(examples: &[Example], max_len: usize) -> Result<Padded> {
    let len = examples.iter().map(|e| e.prompt.len()).max().unwrap_or(0);
    if let Some(e) = examples.iter().find(|e| e.prompt.is_empty() || e.prompt.len() > max_len) {
        return Err(Error::Shape {
            field: "task.prompt",
            expected: Shape::d1(max_len),
            got: Shape::d1(e.prompt.len()),
        });
    }
    let refs: Vec<&[u32]> = examples.iter().map(|e| e.prompt.as_slice()).collect();
    let (tokens, mut pad) = left_pad(&refs, 0);
    if pad.iter().all(|&q| q == 0) {
        pad.clear();
    }
    Ok(Padded { tokens, pad, len })
}

/// A sampled batch: examples, rollouts and rewards.
pub(crate) struct Batch {
    pub prompts: Padded,  // (B, P)
    pub tokens: Vec<u32>, // (N, T)
    pub old_logprobs: Vec<f32>,
    /// (N, T) 1 up to where each completion ended.
    pub mask: Vec<f64>,
    pub rewards: Vec<f64>, // (N)
    pub t: usize,
}

impl Batch {
    /// (n, T) completion tokens of rows `rows`.
    pub fn completions(&self, rows: Range<usize>) -> &[u32] {
        &self.tokens[rows.start * self.t..rows.end * self.t]
    }

    /// The (n, T) mask and ℓ° of rows `rows` on the device.
    pub fn token_rows<T: Tensor>(&self, dev: &T::Device, rows: Range<usize>) -> Result<(T, T)> {
        let (t, n) = (self.t, rows.len());
        let span = rows.start * t..rows.end * t;
        let mask = T::upload(dev, &self.mask[span.clone()], Shape::d2(n, t))?;
        let old: Vec<f64> = self.old_logprobs[span].iter().map(|&l| l as f64).collect();
        Ok((mask, T::upload(dev, &old, Shape::d2(n, t))?))
    }
}
