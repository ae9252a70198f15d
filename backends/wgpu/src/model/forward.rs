//! The training forward on the GPU, layer by layer as the CPU's
//! `model/forward.rs` (same shared-prompt rows), every step a WGSL kernel:
//! the embedding, the blocks ([`super::block`]) with training attention,
//! the final norm and the rows that score completion tokens. It also runs
//! the prompt pass of generation ([`super::decode`]).

use std::ops::Range;

use wapo_core::Result;
use wapo_core::rl::Rows;

use super::block::{LayerActs, Net, Norm, linear};
use crate::kernels::attention::{Heads, attention_forward};
use crate::kernels::encoder::{Positions, encoder_forward};
use crate::kernels::rope::RopePositions;
use crate::kernels::rows::gather_rows;
use crate::kernels::{View, alloc, upload_u32};
use crate::tensor::WgpuTensor;

/// Saved activations of the last forward.
pub(crate) struct Acts {
    pub rows: Rows,
    /// u32 (R) the position of each row.
    pub pos: WgpuTensor,
    /// N·T, the scored rows.
    pub ns: usize,
    pub resid: Vec<WgpuTensor>, // L+1 × (R, C)
    pub layers: Vec<LayerActs>,
    pub lnf: Norm,
    pub lnf_sel: WgpuTensor, // (N·T, C)
    /// (N·T, V); `None` after a forward for the chunked head, which makes
    /// the logits a chunk of rows at a time from `lnf_sel`.
    pub logits: Option<WgpuTensor>,
    /// u32 (B) the prompts' left padding; `None` when no prompt is padded.
    pub pad: Option<WgpuTensor>,
    /// The row layout on the host, kept by a training forward: the backward
    /// builds its row lists from it, so a forward that is never
    /// differentiated (the entropy measurement) does not pay for them.
    pub(super) host: Option<HostRows>,
}

/// The host-side row layout of one forward: token and position of every
/// row, the row whose output scores completion token t of sample n, and
/// each prompt's left padding.
pub(crate) struct HostRows {
    pub tokens: Vec<u32>,
    pub pos: Vec<u32>,
    pub sel: Vec<u32>,
    /// (B), or empty when no prompt is padded.
    pub pad: Vec<u32>,
}

impl HostRows {
    /// `pad` as [`wapo_core::rl::Prompts::pad`] (empty: none). Positions
    /// count from each prompt's first real token (padding rows sit at 0).
    pub fn new(prompts: &[u32], pad: &[usize], completions: &[u32], rows: Rows, t: usize) -> Self {
        let q = |b: usize| pad.get(b).copied().unwrap_or(0);
        let mut tokens = prompts.to_vec();
        let mut pos: Vec<u32> =
            (0..rows.b).flat_map(|b| (0..rows.p).map(move |j| j.saturating_sub(q(b)) as u32)).collect();
        for n in 0..rows.n() {
            let start = rows.p - q(n / rows.g);
            tokens.extend_from_slice(&completions[n * t..n * t + rows.s]);
            pos.extend(start as u32..(start + rows.s) as u32);
        }
        let pad = match pad.iter().any(|&x| x > 0) {
            true => (0..rows.b).map(|b| q(b) as u32).collect(),
            false => Vec::new(),
        };
        let mut sel = Vec::with_capacity(rows.n() * t);
        for n in 0..rows.n() {
            let b = n / rows.g;
            sel.push((b * rows.p + rows.p - 1) as u32);
            sel.extend((0..t - 1).map(|s| (rows.prefix_rows() + n * rows.s + s) as u32));
        }
        HostRows { tokens, pos, sel, pad }
    }
}

/// Training forward (or, with `train = false`, the prompt pass of
/// generation, which allows no backward). Returns the activations, and
/// the logits (N·T, V) when `with_logits`.
pub(crate) fn forward(net: Net<'_>, host: HostRows, rows: Rows, train: bool, with_logits: bool) -> Result<Acts> {
    let (dev, cfg, lay) = (net.dev, net.cfg, net.lay);
    let (c, v) = (cfg.channels, cfg.vocab);
    let r = rows.total();
    let p = |rg: &Range<usize>| net.p(rg);
    let tokens = upload_u32(dev, &host.tokens)?;
    let pos = upload_u32(dev, &host.pos)?;
    let pad = (!host.pad.is_empty()).then(|| upload_u32(dev, &host.pad)).transpose()?;
    let x0 = alloc(dev, r * c)?;
    encoder_forward(
        View::all(&x0),
        p(&lay.wte),
        p(&lay.wpe),
        View::all(&tokens),
        1,
        Positions::PerRow(View::all(&pos)),
        r,
        c,
    )?;
    let mut resid = vec![x0];
    let mut layers = Vec::with_capacity(cfg.layers);
    let tmp = alloc(dev, r * c)?;
    let at = || RopePositions::PerRow(View::all(&pos));
    for w in &lay.layers {
        let x = resid.last().expect("the embedding is resid[0]");
        let la = LayerActs::new(dev, cfg, r)?;
        let out = alloc(dev, r * c)?;
        net.block_forward(w, &la, x, &out, &tmp, r, at(), |la| {
            let (atty, lse, qkv) = (View::all(&la.atty), View::all(&la.lse), View::all(&la.qkv));
            attention_forward(atty, lse, qkv, pad.as_ref().map(View::all), rows, Heads::of(cfg))
        })?;
        layers.push(la);
        resid.push(out);
    }
    let lnf = Norm::new(dev, r, c)?;
    net.norm(&lnf, &resid[cfg.layers], &lay.lnf_w, &lay.lnf_b, r)?;
    let ns = host.sel.len();
    let sel = upload_u32(dev, &host.sel)?;
    let lnf_sel = alloc(dev, ns * c)?;
    gather_rows(View::all(&lnf_sel), View::all(&lnf.out), View::all(&sel), ns, c)?;
    let logits = match with_logits {
        true => {
            let logits = alloc(dev, ns * v)?;
            linear(&logits, &lnf_sel, p(&lay.lm_head), None, ns, c, v)?;
            Some(logits)
        }
        false => None,
    };
    Ok(Acts { rows, pos, ns, resid, layers, lnf, lnf_sel, logits, pad, host: train.then_some(host) })
}
