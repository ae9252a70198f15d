//! The training backward: the LM head's matmul, the final norm, the blocks
//! in reverse (attention from the saved probabilities) and the embedding,
//! from what [`super::forward`] saved.

use super::block::{Net, pair, zeroed};
use super::forward::Acts;
use crate::kernels::attention::{Heads, attention_backward};
use crate::kernels::*;

/// Accumulates into `grads` the gradient of the last forward given
/// ∂loss/∂logits (N·T, V).
pub fn backward(net: Net<'_>, acts: &mut Acts, grads: &mut [f32], dlogits: &[f32]) {
    let (c, v, ns) = (net.cfg.channels, net.cfg.vocab, acts.sel.len());
    let mut dsel = std::mem::take(&mut acts.scratch[0]);
    zeroed(&mut dsel, ns * c);
    let head = net.lay.lm_head.clone();
    matmul_backward(&mut dsel, &mut grads[head.clone()], &mut [], dlogits, &acts.lnf_sel, &net.params[head], c, v);
    backward_body(net, acts, grads, &dsel);
    acts.scratch[0] = dsel;
}

/// [`backward`] from ∂loss/∂`acts.lnf_sel` (N·T, C) down; the LM head's
/// part is the caller's.
pub fn backward_body(net: Net<'_>, acts: &mut Acts, grads: &mut [f32], dsel: &[f32]) {
    let Some(rows) = acts.rows else { return };
    let (cfg, lay) = (net.cfg, net.lay);
    let c = cfg.channels;
    let hd = Heads::new(cfg);
    let r = rows.total();
    let [_, s1, s2] = &mut acts.scratch;
    let dlnf = zeroed(s1, r * c);
    for (i, &row) in acts.sel.iter().enumerate() {
        axpy(&mut dlnf[row * c..(row + 1) * c], 1.0, &dsel[i * c..(i + 1) * c]);
    }
    let dres = zeroed(s2, r * c);
    net.norm_backward(
        dres,
        grads,
        dlnf,
        &acts.resid[cfg.layers],
        &lay.lnf_w,
        &lay.lnf_b,
        &acts.lnf_mean,
        &acts.lnf_rstd,
    );
    for l in (0..cfg.layers).rev() {
        let (la, x) = (&acts.layers[l], &acts.resid[l]);
        net.block_backward(&lay.layers[l], la, x, dres, grads, &acts.pos, &mut acts.block, |dqkv, datty, la| {
            attention_backward(dqkv, datty, &la.probs, &la.qkv, rows, hd)
        });
    }
    let (gte, gpe) = pair(grads, &lay.wte, &lay.wpe);
    encoder_backward(gte, gpe, dres, &acts.tokens, &acts.pos);
}
