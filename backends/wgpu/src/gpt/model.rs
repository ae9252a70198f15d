//! The GPT's training forward and backward on the GPU, layer by layer as
//! the CPU's `model.rs` (same shared-prompt rows, same order of
//! accumulation into the residual gradient), every step a WGSL kernel.

use wapo_core::Result;
use wapo_core::rl::layout::{LayerViews, Layout};
use wapo_core::rl::{ModelConfig, Rows};

use super::kernels::attention::{Heads, attention_backward, attention_forward};
use super::kernels::encoder::{Positions, encoder_backward, encoder_forward};
use super::kernels::gelu::{gelu_backward, gelu_forward};
use super::kernels::layernorm::{layernorm_backward, layernorm_forward};
use super::kernels::matmul::{Gemm, column_sum, gemm};
use super::kernels::rows::{RowLists, add, fill, gather_rows, scatter_add_rows};
use super::kernels::{View, alloc, upload_u32};
use crate::context::WgpuDevice;
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
    pub qkv: WgpuTensor,   // (R, 3C)
    pub probs: WgpuTensor, // (R, H, P+S)
    pub atty: WgpuTensor,  // (R, C)
    pub res2: WgpuTensor,  // (R, C) residual after attention
    pub ln2: Norm,
    pub fch: WgpuTensor,      // (R, M)
    pub fch_gelu: WgpuTensor, // (R, M)
}

/// Saved activations of the last forward.
pub(crate) struct Acts {
    pub rows: Rows,
    /// N·T, the scored rows.
    pub ns: usize,
    pub resid: Vec<WgpuTensor>, // L+1 × (R, C)
    pub layers: Vec<LayerActs>,
    pub lnf: Norm,
    pub lnf_sel: WgpuTensor, // (N·T, C)
    pub logits: WgpuTensor,  // (N·T, V)
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

fn norm_forward(n: &Norm, inp: &WgpuTensor, w: View<'_>, b: View<'_>, rows: usize, c: usize) -> Result<()> {
    layernorm_forward(View::all(&n.out), View::all(&n.mean), View::all(&n.rstd), View::all(inp), w, b, rows, c)
}

/// The host-side row layout of one forward: token and position of every
/// row, and the row whose output scores completion token t of sample n.
pub(crate) struct HostRows {
    pub tokens: Vec<u32>,
    pub pos: Vec<u32>,
    pub sel: Vec<u32>,
}

impl HostRows {
    pub fn new(prompts: &[u32], completions: &[u32], rows: Rows, t: usize) -> Self {
        let mut tokens = prompts.to_vec();
        let mut pos: Vec<u32> = (0..rows.b).flat_map(|_| 0..rows.p as u32).collect();
        for n in 0..rows.n() {
            tokens.extend_from_slice(&completions[n * t..n * t + rows.s]);
            pos.extend(rows.p as u32..(rows.p + rows.s) as u32);
        }
        let mut sel = Vec::with_capacity(rows.n() * t);
        for n in 0..rows.n() {
            let b = n / rows.g;
            sel.push((b * rows.p + rows.p - 1) as u32);
            sel.extend((0..t - 1).map(|s| (rows.prefix_rows() + n * rows.s + s) as u32));
        }
        HostRows { tokens, pos, sel }
    }
}

/// Training forward (or, with `train = false`, the prompt pass of
/// generation, which allows no backward). Returns the activations, logits
/// (N·T, V) included.
pub(crate) fn forward(
    dev: &WgpuDevice,
    cfg: &ModelConfig,
    lay: &Layout,
    params: &WgpuTensor,
    host: HostRows,
    rows: Rows,
    train: bool,
) -> Result<Acts> {
    let (c, m, v, h) = (cfg.channels, cfg.mlp, cfg.vocab, cfg.heads);
    let r = rows.total();
    let p = |rg: &std::ops::Range<usize>| View::range(params, rg);
    let tokens = upload_u32(dev, &host.tokens)?;
    let pos = upload_u32(dev, &host.pos)?;
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
            qkv: alloc(dev, r * 3 * c)?,
            probs: alloc(dev, r * h * rows.keys())?,
            atty: alloc(dev, r * c)?,
            res2: alloc(dev, r * c)?,
            ln2: Norm::new(dev, r, c)?,
            fch: alloc(dev, r * m)?,
            fch_gelu: alloc(dev, r * m)?,
        };
        norm_forward(&la.ln1, x, p(&w.ln1_w), p(&w.ln1_b), r, c)?;
        linear(&la.qkv, &la.ln1.out, p(&w.qkv_w), Some(p(&w.qkv_b)), r, c, 3 * c)?;
        attention_forward(View::all(&la.atty), View::all(&la.probs), View::all(&la.qkv), rows, Heads::of(cfg))?;
        linear(&tmp, &la.atty, p(&w.proj_w), Some(p(&w.proj_b)), r, c, c)?;
        add(View::all(&la.res2), View::all(x), View::all(&tmp))?;
        norm_forward(&la.ln2, &la.res2, p(&w.ln2_w), p(&w.ln2_b), r, c)?;
        linear(&la.fch, &la.ln2.out, p(&w.fc_w), Some(p(&w.fc_b)), r, c, m)?;
        gelu_forward(View::all(&la.fch_gelu), View::all(&la.fch))?;
        linear(&tmp, &la.fch_gelu, p(&w.fcproj_w), Some(p(&w.fcproj_b)), r, m, c)?;
        let out = alloc(dev, r * c)?;
        add(View::all(&out), View::all(&la.res2), View::all(&tmp))?;
        layers.push(la);
        resid.push(out);
    }
    let lnf = Norm::new(dev, r, c)?;
    norm_forward(&lnf, &resid[cfg.layers], p(&lay.lnf_w), p(&lay.lnf_b), r, c)?;
    let ns = host.sel.len();
    let sel = upload_u32(dev, &host.sel)?;
    let lnf_sel = alloc(dev, ns * c)?;
    gather_rows(View::all(&lnf_sel), View::all(&lnf.out), View::all(&sel), ns, c)?;
    let logits = alloc(dev, ns * v)?;
    linear(&logits, &lnf_sel, p(&lay.lm_head), None, ns, c, v)?;
    Ok(Acts { rows, ns, resid, layers, lnf, lnf_sel, logits, host: train.then_some(host) })
}

/// Accumulates into `grads` the gradient of the forward that produced
/// `acts`, given ∂loss/∂logits (N·T, V).
pub(crate) fn backward(
    dev: &WgpuDevice,
    cfg: &ModelConfig,
    lay: &Layout,
    params: &WgpuTensor,
    grads: &WgpuTensor,
    acts: &Acts,
    dlogits: &WgpuTensor,
) -> Result<()> {
    let Some(host) = &acts.host else {
        return Err(wapo_core::Error::Backend("backward after a generation pass: run a training forward first".into()));
    };
    let (c, m, v) = (cfg.channels, cfg.mlp, cfg.vocab);
    let rows = acts.rows;
    let r = rows.total();
    let ns = acts.ns;
    let p = |rg: &std::ops::Range<usize>| View::range(params, rg);
    let g = |rg: &std::ops::Range<usize>| View::range(grads, rg);
    // Which rows feed which embedding row and which rows are scored, as
    // lists for deterministic scatter-adds.
    let by_token = RowLists::build(dev, &host.tokens, v, "tokens")?;
    let by_pos = RowLists::build(dev, &host.pos, cfg.context, "positions")?;
    let by_sel = RowLists::build(dev, &host.sel, r, "rows")?;
    let dsel = alloc(dev, ns * c)?;
    linear_backward(&dsel, g(&lay.lm_head), None, dlogits, &acts.lnf_sel, p(&lay.lm_head), ns, c, v)?;
    let dlnf = alloc(dev, r * c)?;
    fill(View::all(&dlnf), 0.0)?;
    scatter_add_rows(View::all(&dlnf), View::all(&dsel), &by_sel, c)?;
    let dres = alloc(dev, r * c)?;
    fill(View::all(&dres), 0.0)?;
    let lnf = &acts.lnf;
    layernorm_backward(
        View::all(&dres),
        g(&lay.lnf_w),
        g(&lay.lnf_b),
        View::all(&dlnf),
        View::all(&acts.resid[cfg.layers]),
        p(&lay.lnf_w),
        View::all(&lnf.mean),
        View::all(&lnf.rstd),
        r,
        c,
    )?;
    let (dh, dfch) = (alloc(dev, r * m)?, alloc(dev, r * m)?);
    let (dln, datty, dqkv) = (dlnf, alloc(dev, r * c)?, alloc(dev, r * 3 * c)?);
    for l in (0..cfg.layers).rev() {
        let la = &acts.layers[l];
        let w: &LayerViews = &lay.layers[l];
        linear_backward(&dh, g(&w.fcproj_w), Some(g(&w.fcproj_b)), &dres, &la.fch_gelu, p(&w.fcproj_w), r, m, c)?;
        gelu_backward(View::all(&dfch), View::all(&la.fch), View::all(&dh))?;
        linear_backward(&dln, g(&w.fc_w), Some(g(&w.fc_b)), &dfch, &la.ln2.out, p(&w.fc_w), r, c, m)?;
        norm_backward(&dres, g(&w.ln2_w), g(&w.ln2_b), &dln, &la.res2, p(&w.ln2_w), &la.ln2, r, c)?;
        linear_backward(&datty, g(&w.proj_w), Some(g(&w.proj_b)), &dres, &la.atty, p(&w.proj_w), r, c, c)?;
        attention_backward(
            View::all(&dqkv),
            View::all(&datty),
            View::all(&la.probs),
            View::all(&la.qkv),
            rows,
            Heads::of(cfg),
        )?;
        linear_backward(&dln, g(&w.qkv_w), Some(g(&w.qkv_b)), &dqkv, &la.ln1.out, p(&w.qkv_w), r, c, 3 * c)?;
        norm_backward(&dres, g(&w.ln1_w), g(&w.ln1_b), &dln, &acts.resid[l], p(&w.ln1_w), &la.ln1, r, c)?;
    }
    encoder_backward(g(&lay.wte), g(&lay.wpe), View::all(&dres), &by_token, &by_pos, c)
}

#[allow(clippy::too_many_arguments)]
fn norm_backward(
    dres: &WgpuTensor,
    dw: View<'_>,
    db: View<'_>,
    dout: &WgpuTensor,
    inp: &WgpuTensor,
    w: View<'_>,
    n: &Norm,
    r: usize,
    c: usize,
) -> Result<()> {
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
