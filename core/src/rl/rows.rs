//! The row layout of a training batch with shared prompts, the same on every
//! backend.
//!
//! Rows come in two segments: `B·P` prompt rows (one copy of each prompt),
//! then `N·S` completion rows (`N = B·G`, S completion inputs per sample). A
//! prompt query at position p sees its prompt's keys 0..=p; a completion
//! query of sample n at completion index s sees all P keys of its group's
//! prompt, then its own completion keys 0..=s. This is exactly the causal
//! attention of the N unshared sequences, with the prompt computed once per
//! group.

/// The row layout of one batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rows {
    /// B, prompts (groups).
    pub b: usize,
    /// G, samples per prompt.
    pub g: usize,
    /// P, prompt positions.
    pub p: usize,
    /// S, completion positions per sample.
    pub s: usize,
}

impl Rows {
    pub fn n(&self) -> usize {
        self.b * self.g
    }
    pub fn prefix_rows(&self) -> usize {
        self.b * self.p
    }
    pub fn total(&self) -> usize {
        self.b * self.p + self.n() * self.s
    }
    /// Most keys a query sees: the stride of the saved probabilities.
    pub fn keys(&self) -> usize {
        self.p + self.s
    }
}
