//! The training backward on the GPU, as the CPU's `model/backward.rs`:
//! the LM head's matmul, the final norm, the blocks in reverse
//! ([`super::block`], attention from the saved log-sum-exps) and the
//! embedding, from what [`super::forward`] saved. Scatter-adds go through
//! row lists, so that every gradient is summed in a fixed order.

use std::ops::Range;

use wapo_core::Result;

use super::block::{BlockScratch, Net, linear_backward};
use super::forward::Acts;
use crate::kernels::attention::{Heads, attention_backward};
use crate::kernels::rope::RopePositions;
use crate::kernels::rows::{RowLists, fill, scatter_add_rows};
use crate::kernels::{View, alloc};
use crate::tensor::WgpuTensor;

/// Accumulates into `grads` the gradient of the forward that produced
/// `acts`, given ∂loss/∂logits (N·T, V).
pub(crate) fn backward(net: Net<'_>, grads: &WgpuTensor, acts: &Acts, dlogits: &WgpuTensor) -> Result<()> {
    let (c, v, ns) = (net.cfg.channels, net.cfg.vocab, acts.ns);
    let lm_head = &net.lay.lm_head;
    let dsel = alloc(net.dev, ns * c)?;
    let dw = View::range(grads, lm_head);
    linear_backward(&dsel, dw, None, dlogits, &acts.lnf_sel, net.p(lm_head), ns, c, v)?;
    backward_body(net, grads, acts, &dsel)
}

/// The backward below the LM head: accumulates into `grads` the gradient
/// of the forward that produced `acts`, given ∂loss/∂(the head's input
/// rows) `dsel` (N·T, C).
pub(crate) fn backward_body(net: Net<'_>, grads: &WgpuTensor, acts: &Acts, dsel: &WgpuTensor) -> Result<()> {
    let (dev, cfg, lay) = (net.dev, net.cfg, net.lay);
    let Some(host) = &acts.host else {
        return Err(wapo_core::Error::Backend("backward after a generation pass: run a training forward first".into()));
    };
    let (c, v) = (cfg.channels, cfg.vocab);
    let rows = acts.rows;
    let r = rows.total();
    let g = |rg: &Range<usize>| View::range(grads, rg);
    // Which rows feed which embedding row and which rows are scored, as
    // lists for deterministic scatter-adds.
    let by_token = RowLists::build(dev, &host.tokens, v, "tokens")?;
    let by_pos = match lay.wpe.is_empty() {
        true => None,
        false => Some(RowLists::build(dev, &host.pos, cfg.context, "positions")?),
    };
    let by_sel = RowLists::build(dev, &host.sel, r, "rows")?;
    let dlnf = alloc(dev, r * c)?;
    fill(View::all(&dlnf), 0.0)?;
    scatter_add_rows(View::all(&dlnf), View::all(dsel), &by_sel, c)?;
    let dres = alloc(dev, r * c)?;
    fill(View::all(&dres), 0.0)?;
    net.norm_backward(&dres, grads, &dlnf, &acts.resid[cfg.layers], &lay.lnf_w, &lay.lnf_b, &acts.lnf, r)?;
    let sc = BlockScratch::new(dev, cfg, r, dlnf)?;
    let at = || RopePositions::PerRow(View::all(&acts.pos));
    for l in (0..cfg.layers).rev() {
        let (la, x) = (&acts.layers[l], &acts.resid[l]);
        net.block_backward(&lay.layers[l], la, x, &dres, grads, r, at(), &sc, |dqkv, datty, la| {
            let (atty, lse, qkv) = (View::all(&la.atty), View::all(&la.lse), View::all(&la.qkv));
            let (dq, da, pad) = (View::all(dqkv), View::all(datty), acts.pad.as_ref().map(View::all));
            attention_backward(dq, da, atty, lse, qkv, pad, rows, Heads::of(cfg))
        })?;
    }
    scatter_add_rows(g(&lay.wte), View::all(&dres), &by_token, c)?;
    match &by_pos {
        Some(by_pos) => scatter_add_rows(g(&lay.wpe), View::all(&dres), by_pos, c),
        None => Ok(()),
    }
}
