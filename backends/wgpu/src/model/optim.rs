//! AdamW with global gradient-norm clipping over one flat parameter block,
//! as the CPU's `model/optim.rs`: the moments live on the device, and only
//! the gradient's squared norm comes back to the host.

use wapo_core::rl::{Layout, Named, OptimConfig, OptimState};
use wapo_core::{Error, Result};

use crate::context::WgpuDevice;
use crate::kernels::adamw::{AdamStep, adamw, sum_squares};
use crate::kernels::rows::fill;
use crate::kernels::{View, alloc, upload_u32, write};
use crate::tensor::WgpuTensor;

/// First and second moments, which parameters decay, and the step count.
pub(crate) struct AdamW {
    m: WgpuTensor,
    v: WgpuTensor,
    /// u32 per parameter: 1 where weight decay applies.
    decay: WgpuTensor,
    pub step: u64,
}

impl AdamW {
    /// Zero moments for the parameters of `layout`.
    pub fn new(dev: &WgpuDevice, layout: &Layout) -> Result<Self> {
        let n = layout.total;
        let (m, v) = (alloc(dev, n)?, alloc(dev, n)?);
        fill(View::all(&m), 0.0)?;
        fill(View::all(&v), 0.0)?;
        let decay: Vec<u32> = layout.decays().iter().map(|&d| d as u32).collect();
        Ok(AdamW { m, v, decay: upload_u32(dev, &decay)?, step: 0 })
    }

    /// Clips `grads` to `cfg.grad_clip` by global norm, then one decoupled
    /// weight-decay Adam step (as `torch.optim.AdamW`). Returns the norm
    /// before clipping; a non-finite norm is an error and changes nothing.
    pub fn step(&mut self, cfg: &OptimConfig, params: &WgpuTensor, grads: &WgpuTensor) -> Result<f64> {
        let sq = alloc(&params.store.dev, 1)?;
        sum_squares(View::all(&sq), View::all(grads))?;
        let norm = (sq.to_vec()?[0] as f64).sqrt();
        if !norm.is_finite() {
            return Err(Error::NonFinite { field: "gradient norm", pos: wapo_core::error::Pos::NONE });
        }
        self.step += 1;
        let s = AdamStep::new(cfg, self.step, norm);
        let all = View::all;
        adamw(all(params), all(grads), all(&self.m), all(&self.v), all(&self.decay), s)?;
        Ok(norm)
    }

    /// The moments by name (`m.` and `v.` before each parameter's name).
    pub fn state(&self, layout: &Layout) -> Result<OptimState> {
        let mut moments = layout.named(&self.m.to_vec()?, "m.");
        moments.extend(layout.named(&self.v.to_vec()?, "v."));
        Ok(OptimState { step: self.step, moments })
    }

    pub fn load_state(&mut self, layout: &Layout, state: &OptimState) -> Result<()> {
        load_block(layout, &self.m, &state.moments, "m.")?;
        load_block(layout, &self.v, &state.moments, "v.")?;
        self.step = state.step;
        Ok(())
    }
}

/// Overwrites the tensors of `from` named `prefix` + a layout name in `block`.
pub(crate) fn load_block(layout: &Layout, block: &WgpuTensor, from: &[Named], prefix: &str) -> Result<()> {
    let mut host = block.to_vec()?;
    layout.load_named(&mut host, from, prefix)?;
    write(block, 0, &host)
}
