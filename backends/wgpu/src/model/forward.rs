//! The training forward and backward on the GPU, layer by layer as the
//! CPU's `model.rs` (same shared-prompt rows, same order of accumulation
//! into the residual gradient), every step a WGSL kernel. One block graph
//! for both families: where they differ (LayerNorm or RMSNorm, learned
//! positions or rotary q and k, GELU or SwiGLU, biases or none, H_kv) the
//! layer branches on the [`ModelConfig`].

use std::ops::Range;

use wapo_core::Result;
use wapo_core::rl::layout::{LayerViews, Layout};
use wapo_core::rl::{Family, ModelConfig, Rows};

use crate::context::WgpuDevice;
use crate::kernels::attention::{Heads, attention_backward, attention_forward};
use crate::kernels::encoder::{Positions, encoder_forward};
use crate::kernels::gelu::{gelu_backward, gelu_forward};
use crate::kernels::layernorm::{layernorm_backward, layernorm_forward};
use crate::kernels::matmul::{Gemm, column_sum, gemm};
use crate::kernels::rmsnorm::{rmsnorm_backward, rmsnorm_forward};
use crate::kernels::rope::{RopePositions, RopeTables, rope};
use crate::kernels::rows::{RowLists, add, fill, gather_rows, scatter_add_rows};
use crate::kernels::swiglu::{swiglu_backward, swiglu_forward};
use crate::kernels::{View, alloc, upload_u32};
use crate::tensor::WgpuTensor;

/// A normalised (rows, C) activation with the mean and rstd its backward needs.
pub(crate) struct Norm {
    pub out: WgpuTensor,
    pub mean: WgpuTensor,
    pub rstd: WgpuTensor,
}

impl Norm {
    fn new(dev: &WgpuDevice, rows: usize, c: usize) -> Result<Self> {
        Ok(Norm { out: alloc(dev, rows * c)?, mean: alloc(dev, rows)?, rstd: alloc(dev, rows)? })
    }
}

/// What the backward of one block needs, saved by the forward.
pub(crate) struct LayerActs {
    pub ln1: Norm,
    pub qkv: WgpuTensor,  // (R, C + 2·H_kv·hs), q and k rotated (llama)
    pub lse: WgpuTensor,  // (R, H) log-sum-exp of each query's scores
    pub atty: WgpuTensor, // (R, C)
    pub res2: WgpuTensor, // (R, C) residual after attention
    pub ln2: Norm,
    pub fch: WgpuTensor, // (R, M), or (R, 2M) gate | up
    pub act: WgpuTensor, // (R, M) GELU(fch) or silu(gate)·up
}

/// The weights and constants one forward or backward reads.
#[derive(Clone, Copy)]
pub(crate) struct Net<'a> {
    pub dev: &'a WgpuDevice,
    pub cfg: &'a ModelConfig,
    pub lay: &'a Layout,
    pub params: &'a WgpuTensor,
    /// Rotary tables (llama only).
    pub rope: Option<&'a RopeTables>,
}

impl<'a> Net<'a> {
    pub fn p(&self, r: &Range<usize>) -> View<'a> {
        View::range(self.params, r)
    }

    /// A bias's view, `None` for the empty range of a family without it.
    pub fn bias(&self, r: &Range<usize>) -> Option<View<'a>> {
        (!r.is_empty()).then(|| View::range(self.params, r))
    }

    /// LayerNorm (GPT) or RMSNorm (llama) of `rows` rows of `inp` into `out`,
    /// saving the statistics the backward needs.
    #[allow(clippy::too_many_arguments)]
    pub fn norm(
        &self,
        out: &WgpuTensor,
        mean: &WgpuTensor,
        rstd: &WgpuTensor,
        inp: &WgpuTensor,
        w: &Range<usize>,
        b: &Range<usize>,
        rows: usize,
    ) -> Result<()> {
        let c = self.cfg.channels;
        let (o, m, r, x) = (View::all(out), View::all(mean), View::all(rstd), View::all(inp));
        match self.cfg.family {
            Family::Gpt => layernorm_forward(o, m, r, x, self.p(w), self.p(b), rows, c),
            Family::Llama => rmsnorm_forward(o, r, x, self.p(w), rows, c, self.cfg.norm_eps as f32),
        }
    }

    /// Rotates q and k of `rows` q|k|v rows in place (llama; the GPT's
    /// positions are in its embedding); `inverse` for the backward.
    pub fn rotate(&self, qkv: &WgpuTensor, pos: RopePositions<'_>, rows: usize, inverse: bool) -> Result<()> {
        let (cfg, width) = (self.cfg, self.cfg.qkv_channels());
        match (cfg.family, self.rope) {
            (Family::Llama, Some(t)) => rope(View::all(qkv), t, pos, rows, width, cfg.heads + cfg.kv_heads, inverse),
            (Family::Llama, None) => Err(wapo_core::Error::Backend("a llama model without rotary tables".into())),
            (Family::Gpt, _) => Ok(()),
        }
    }

    /// The MLP activation of `rows` rows of `fch` into `act`.
    pub fn activation(&self, act: &WgpuTensor, fch: &WgpuTensor, rows: usize) -> Result<()> {
        let m = self.cfg.mlp;
        match self.cfg.family {
            Family::Gpt => gelu_forward(View::at(act, 0, (rows * m) as u64), View::at(fch, 0, (rows * m) as u64)),
            Family::Llama => swiglu_forward(View::all(act), View::all(fch), rows, m),
        }
    }
}

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
    host: Option<HostRows>,
}

/// One (R, in) → (R, out) linear layer: out = inp · wᵀ + b.
pub(crate) fn linear(
    out: &WgpuTensor,
    inp: &WgpuTensor,
    w: View<'_>,
    b: Option<View<'_>>,
    r: usize,
    c: usize,
    oc: usize,
) -> Result<()> {
    let g = Gemm { m: r, n: oc, k: c, a_t: false, b_t: true, accumulate: false };
    gemm(View::all(out), View::all(inp), w, b, g)
}

/// The backward of [`linear`]: dinp = dout · w (overwritten), dw += doutᵀ · inp, db += Σ dout.
#[allow(clippy::too_many_arguments)]
fn linear_backward(
    dinp: &WgpuTensor,
    dw: View<'_>,
    db: Option<View<'_>>,
    dout: &WgpuTensor,
    inp: &WgpuTensor,
    w: View<'_>,
    r: usize,
    c: usize,
    oc: usize,
) -> Result<()> {
    let (dout_v, inp_v) = (View::at(dout, 0, (r * oc) as u64), View::at(inp, 0, (r * c) as u64));
    gemm(
        View::at(dinp, 0, (r * c) as u64),
        dout_v,
        w,
        None,
        Gemm { m: r, n: c, k: oc, a_t: false, b_t: false, accumulate: false },
    )?;
    gemm(dw, dout_v, inp_v, None, Gemm { m: oc, n: c, k: r, a_t: true, b_t: false, accumulate: true })?;
    if let Some(db) = db {
        column_sum(db, dout_v, r, oc, true)?;
    }
    Ok(())
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
    let (c, m, v, h) = (cfg.channels, cfg.mlp, cfg.vocab, cfg.heads);
    let (qkvc, fcc) = (cfg.qkv_channels(), cfg.fc_channels());
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
    for w in &lay.layers {
        let x = resid.last().expect("the embedding is resid[0]");
        let la = LayerActs {
            ln1: Norm::new(dev, r, c)?,
            qkv: alloc(dev, r * qkvc)?,
            lse: alloc(dev, r * h)?,
            atty: alloc(dev, r * c)?,
            res2: alloc(dev, r * c)?,
            ln2: Norm::new(dev, r, c)?,
            fch: alloc(dev, r * fcc)?,
            act: alloc(dev, r * m)?,
        };
        let (ln1, ln2) = (&la.ln1, &la.ln2);
        net.norm(&ln1.out, &ln1.mean, &ln1.rstd, x, &w.ln1_w, &w.ln1_b, r)?;
        linear(&la.qkv, &ln1.out, p(&w.qkv_w), net.bias(&w.qkv_b), r, c, qkvc)?;
        net.rotate(&la.qkv, RopePositions::PerRow(View::all(&pos)), r, false)?;
        let (atty, lse, qkv, pad) = (View::all(&la.atty), View::all(&la.lse), View::all(&la.qkv), pad.as_ref());
        attention_forward(atty, lse, qkv, pad.map(View::all), rows, Heads::of(cfg))?;
        linear(&tmp, &la.atty, p(&w.proj_w), net.bias(&w.proj_b), r, c, c)?;
        add(View::all(&la.res2), View::all(x), View::all(&tmp))?;
        net.norm(&ln2.out, &ln2.mean, &ln2.rstd, &la.res2, &w.ln2_w, &w.ln2_b, r)?;
        linear(&la.fch, &ln2.out, p(&w.fc_w), net.bias(&w.fc_b), r, c, fcc)?;
        net.activation(&la.act, &la.fch, r)?;
        linear(&tmp, &la.act, p(&w.fcproj_w), net.bias(&w.fcproj_b), r, m, c)?;
        let out = alloc(dev, r * c)?;
        add(View::all(&out), View::all(&la.res2), View::all(&tmp))?;
        layers.push(la);
        resid.push(out);
    }
    let lnf = Norm::new(dev, r, c)?;
    net.norm(&lnf.out, &lnf.mean, &lnf.rstd, &resid[cfg.layers], &lay.lnf_w, &lay.lnf_b, r)?;
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

/// Accumulates into `grads` the gradient of the forward that produced
/// `acts`, given ∂loss/∂logits (N·T, V).
pub(crate) fn backward(net: Net<'_>, grads: &WgpuTensor, acts: &Acts, dlogits: &WgpuTensor) -> Result<()> {
    let (c, v, ns) = (net.cfg.channels, net.cfg.vocab, acts.ns);
    let lm_head = &net.lay.lm_head;
    let dsel = alloc(net.dev, ns * c)?;
    let dw = View::range(grads, lm_head);
    linear_backward(&dsel, dw, None, dlogits, &acts.lnf_sel, net.p(lm_head), ns, c, v)?;
    backward_from_head(net, grads, acts, &dsel)
}

/// The backward below the LM head: accumulates into `grads` the gradient
/// of the forward that produced `acts`, given ∂loss/∂(the head's input
/// rows) `dsel` (N·T, C).
pub(crate) fn backward_from_head(net: Net<'_>, grads: &WgpuTensor, acts: &Acts, dsel: &WgpuTensor) -> Result<()> {
    let (dev, cfg, lay) = (net.dev, net.cfg, net.lay);
    let Some(host) = &acts.host else {
        return Err(wapo_core::Error::Backend("backward after a generation pass: run a training forward first".into()));
    };
    let (c, m, v) = (cfg.channels, cfg.mlp, cfg.vocab);
    let (qkvc, fcc) = (cfg.qkv_channels(), cfg.fc_channels());
    let rows = acts.rows;
    let r = rows.total();
    let p = |rg: &Range<usize>| net.p(rg);
    let g = |rg: &Range<usize>| View::range(grads, rg);
    let gb = |rg: &Range<usize>| (!rg.is_empty()).then(|| View::range(grads, rg));
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
    let nb = |dinp: &WgpuTensor, wr: &Range<usize>, br: &Range<usize>, dout: &WgpuTensor, x: &WgpuTensor, n: &Norm| {
        norm_backward(cfg, dinp, g(wr), g(br), dout, x, p(wr), n, r)
    };
    nb(&dres, &lay.lnf_w, &lay.lnf_b, &dlnf, &acts.resid[cfg.layers], &acts.lnf)?;
    let (dh, dfch) = (alloc(dev, r * m)?, alloc(dev, r * fcc)?);
    let (dln, datty, dqkv) = (dlnf, alloc(dev, r * c)?, alloc(dev, r * qkvc)?);
    for l in (0..cfg.layers).rev() {
        let la = &acts.layers[l];
        let w: &LayerViews = &lay.layers[l];
        linear_backward(&dh, g(&w.fcproj_w), gb(&w.fcproj_b), &dres, &la.act, p(&w.fcproj_w), r, m, c)?;
        match cfg.family {
            Family::Gpt => gelu_backward(View::all(&dfch), View::all(&la.fch), View::all(&dh))?,
            Family::Llama => swiglu_backward(View::all(&dfch), View::all(&la.fch), View::all(&dh), r, m)?,
        }
        linear_backward(&dln, g(&w.fc_w), gb(&w.fc_b), &dfch, &la.ln2.out, p(&w.fc_w), r, c, fcc)?;
        nb(&dres, &w.ln2_w, &w.ln2_b, &dln, &la.res2, &la.ln2)?;
        linear_backward(&datty, g(&w.proj_w), gb(&w.proj_b), &dres, &la.atty, p(&w.proj_w), r, c, c)?;
        let (atty, lse, qkv) = (View::all(&la.atty), View::all(&la.lse), View::all(&la.qkv));
        let (dq, da, pad) = (View::all(&dqkv), View::all(&datty), acts.pad.as_ref().map(View::all));
        attention_backward(dq, da, atty, lse, qkv, pad, rows, Heads::of(cfg))?;
        net.rotate(&dqkv, RopePositions::PerRow(View::all(&acts.pos)), r, true)?;
        linear_backward(&dln, g(&w.qkv_w), gb(&w.qkv_b), &dqkv, &la.ln1.out, p(&w.qkv_w), r, c, qkvc)?;
        nb(&dres, &w.ln1_w, &w.ln1_b, &dln, &acts.resid[l], &la.ln1)?;
    }
    scatter_add_rows(g(&lay.wte), View::all(&dres), &by_token, c)?;
    match &by_pos {
        Some(by_pos) => scatter_add_rows(g(&lay.wpe), View::all(&dres), by_pos, c),
        None => Ok(()),
    }
}

/// The backward of the norm that made `n` from `inp`: dres += ∂/∂inp, the
/// gain (and LayerNorm bias) gradients accumulated.
#[allow(clippy::too_many_arguments)]
fn norm_backward(
    cfg: &ModelConfig,
    dres: &WgpuTensor,
    dw: View<'_>,
    db: View<'_>,
    dout: &WgpuTensor,
    inp: &WgpuTensor,
    w: View<'_>,
    n: &Norm,
    r: usize,
) -> Result<()> {
    let c = cfg.channels;
    if cfg.family == Family::Llama {
        let dout = View::at(dout, 0, (r * c) as u64);
        return rmsnorm_backward(View::all(dres), dw, dout, View::all(inp), w, View::all(&n.rstd), r, c);
    }
    layernorm_backward(
        View::all(dres),
        dw,
        db,
        View::at(dout, 0, (r * c) as u64),
        View::all(inp),
        w,
        View::all(&n.mean),
        View::all(&n.rstd),
        r,
        c,
    )
}
