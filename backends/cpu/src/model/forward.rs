//! The training forward over a shared-prompt row layout (see
//! [`crate::kernels::attention::Rows`]): every row-wise layer runs once per
//! row, the prompt rows once per group, and attention joins them. The block
//! itself is [`super::block`], for either family; [`super::backward`] runs
//! it backwards from what this saves.

use wapo_core::rl::Prompts;

use super::block::{BlockScratch, LayerActs, Net, zeroed};
use crate::kernels::attention::{Heads, Rows, attention_forward};
use crate::kernels::*;

/// Saved activations of the last forward, and backward scratch.
#[derive(Default)]
pub struct Acts {
    pub rows: Option<Rows>,
    /// T, completion tokens scored per sample.
    pub t: usize,
    pub tokens: Vec<u32>, // (R)
    pub pos: Vec<usize>,  // (R)
    /// (B) left padding of each prompt.
    pub pad: Vec<usize>,
    pub resid: Vec<Vec<f32>>, // L+1 × (R, C)
    pub layers: Vec<LayerActs>,
    pub lnf: Vec<f32>, // (R, C)
    pub lnf_mean: Vec<f32>,
    pub lnf_rstd: Vec<f32>,
    /// (N·T) the row whose output scores completion token t of sample n.
    pub sel: Vec<usize>,
    pub lnf_sel: Vec<f32>, // (N·T, C)
    pub logits: Vec<f32>,  // (N·T, V)
    /// (N·T) the completion tokens scored.
    pub targets: Vec<u32>,
    /// Per scored row, what the chunked head's backward needs (see [`super::head`]).
    pub(crate) head_stats: Vec<crate::kernels::fused::RowStats>,
    pub(super) block: BlockScratch,
    pub(super) scratch: [Vec<f32>; 3],
}

/// Training forward. `prompts` (B, P); `completions` (N, T) with N = B·G.
/// Scores completion token t of sample n with the output at position
/// P−1+t; fills `acts` (logits (N·T, V) included).
pub fn forward(net: Net<'_>, acts: &mut Acts, prompts: Prompts<'_>, completions: &[u32], rows: Rows, t: usize) {
    forward_body(net, acts, prompts, completions, rows, t);
    let (c, v, ns) = (net.cfg.channels, net.cfg.vocab, acts.sel.len());
    matmul_forward(zeroed(&mut acts.logits, ns * v), &acts.lnf_sel, &net.params[net.lay.lm_head.clone()], &[], c, v);
}

/// [`forward`] up to the LM head's input: the final-norm rows that score
/// the completion tokens, `acts.lnf_sel` (N·T, C).
pub fn forward_body(net: Net<'_>, acts: &mut Acts, prompts: Prompts<'_>, completions: &[u32], rows: Rows, t: usize) {
    let (cfg, lay) = (net.cfg, net.lay);
    let c = cfg.channels;
    let hd = Heads::new(cfg);
    let r = rows.total();
    acts.rows = Some(rows);
    acts.targets.clear();
    acts.targets.extend_from_slice(completions);
    acts.t = t;
    acts.tokens.clear();
    acts.pos.clear();
    acts.tokens.extend_from_slice(prompts.tokens);
    // Positions count from each prompt's first real token.
    acts.pad.clear();
    acts.pad.extend((0..rows.b).map(|b| prompts.pad_of(b)));
    let pad = &acts.pad;
    acts.pos.extend((0..rows.b).flat_map(|b| (0..rows.p).map(move |j| j.saturating_sub(pad[b]))));
    for n in 0..rows.n() {
        let q = pad[n / rows.g];
        acts.tokens.extend_from_slice(&completions[n * t..n * t + rows.s]);
        acts.pos.extend(rows.p - q..rows.p - q + rows.s);
    }
    acts.resid.resize_with(cfg.layers + 1, Vec::new);
    acts.layers.resize_with(cfg.layers, LayerActs::default);
    let params = net.params;
    encoder_forward(
        zeroed(&mut acts.resid[0], r * c),
        &acts.tokens,
        &acts.pos,
        &params[lay.wte.clone()],
        &params[lay.wpe.clone()],
    );
    for l in 0..cfg.layers {
        let (done, rest) = acts.resid.split_at_mut(l + 1);
        let out = zeroed(&mut rest[0], r * c);
        net.block_forward(
            &lay.layers[l],
            &mut acts.layers[l],
            &done[l],
            out,
            &acts.pos,
            &mut acts.block,
            |atty, probs, qkv| {
                attention_forward(zeroed(atty, r * c), zeroed(probs, r * cfg.heads * rows.keys()), qkv, rows, hd, pad)
            },
        );
    }
    net.norm_forward(
        &mut acts.lnf,
        &mut acts.lnf_mean,
        &mut acts.lnf_rstd,
        &acts.resid[cfg.layers],
        &lay.lnf_w,
        &lay.lnf_b,
    );
    acts.sel.clear();
    for n in 0..rows.n() {
        let b = n / rows.g;
        acts.sel.push(b * rows.p + rows.p - 1);
        acts.sel.extend((0..t - 1).map(|s| rows.prefix_rows() + n * rows.s + s));
    }
    let ns = acts.sel.len();
    let lnf_sel = zeroed(&mut acts.lnf_sel, ns * c);
    for (i, &row) in acts.sel.iter().enumerate() {
        lnf_sel[i * c..(i + 1) * c].copy_from_slice(&acts.lnf[row * c..(row + 1) * c]);
    }
    acts.logits.clear();
}
