//! The guard of every update, SFT and RL alike, against NaN and ±inf: the
//! optimizer step whose gradient norm must be finite ([`finite_step`]), the
//! check of the parameters after it ([`all_finite`]) and the snapshot that
//! undoes a stopped update ([`Snapshot`]).

use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::rl::policy::{Named, OptimConfig, OptimState, Policy};

/// The optimizer step of RL and SFT alike: the gradient norm, or `None`
/// when it is NaN or infinite, however the backend reports that.
pub(crate) fn finite_step<P: Policy>(policy: &mut P, optim: &OptimConfig) -> Result<Option<f64>> {
    match policy.optimizer_step(optim) {
        Ok(norm) if norm.is_finite() => Ok(Some(norm)),
        Ok(_) | Err(Error::NonFinite { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The weights and optimizer state before an update, to undo it.
pub(crate) struct Snapshot {
    params: Vec<Named>,
    optim: OptimState,
}

impl Snapshot {
    pub(crate) fn take<P: Policy>(policy: &P) -> Result<Self> {
        Ok(Snapshot { params: policy.parameters()?, optim: policy.optimizer_state()? })
    }

    pub(crate) fn restore<P: Policy>(&self, policy: &mut P) -> Result<()> {
        policy.zero_grad();
        policy.load_parameters(&self.params)?;
        policy.load_optimizer_state(&self.optim)
    }
}

/// Whether every parameter is finite (no NaN, no ±inf).
pub(crate) fn all_finite(params: &[Named]) -> bool {
    params.iter().all(|t| t.data.iter().all(|x| x.is_finite()))
}
