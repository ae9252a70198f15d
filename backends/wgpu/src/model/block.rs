//! The transformer block, once for both families, as the CPU's
//! `model/block.rs`: the family is data (which norm, whether q and k
//! rotate, which MLP activation, how many key/value heads), read from
//! [`ModelConfig`]. The training forward, the backward and the KV-cache
//! decode step all run these two functions; only attention differs between
//! them, and the caller passes it in.

use std::ops::Range;

use wapo_core::Result;
use wapo_core::rl::layout::{LayerViews, Layout};
use wapo_core::rl::{Family, ModelConfig};

use crate::context::WgpuDevice;
use crate::kernels::gelu::{gelu_backward, gelu_forward};
use crate::kernels::layernorm::{layernorm_backward, layernorm_forward};
use crate::kernels::matmul::{Gemm, column_sum, gemm};
use crate::kernels::rmsnorm::{rmsnorm_backward, rmsnorm_forward};
use crate::kernels::rope::{RopePositions, RopeTables, rope};
use crate::kernels::rows::add;
use crate::kernels::swiglu::{swiglu_backward, swiglu_forward};
use crate::kernels::{View, alloc};
use crate::tensor::WgpuTensor;

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

/// A normalised (rows, C) activation with the mean and rstd its backward needs.
pub(crate) struct Norm {
    pub out: WgpuTensor,
    pub mean: WgpuTensor,
    pub rstd: WgpuTensor,
}

impl Norm {
    pub fn new(dev: &WgpuDevice, rows: usize, c: usize) -> Result<Self> {
        Ok(Norm { out: alloc(dev, rows * c)?, mean: alloc(dev, rows)?, rstd: alloc(dev, rows)? })
    }
}

/// What the backward of one block needs, saved by the forward (the decode
/// step writes the same buffers and keeps none of them).
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

impl LayerActs {
    pub fn new(dev: &WgpuDevice, cfg: &ModelConfig, r: usize) -> Result<Self> {
        let c = cfg.channels;
        Ok(LayerActs {
            ln1: Norm::new(dev, r, c)?,
            qkv: alloc(dev, r * cfg.qkv_channels())?,
            lse: alloc(dev, r * cfg.heads)?,
            atty: alloc(dev, r * c)?,
            res2: alloc(dev, r * c)?,
            ln2: Norm::new(dev, r, c)?,
            fch: alloc(dev, r * cfg.fc_channels())?,
            act: alloc(dev, r * cfg.mlp)?,
        })
    }
}

/// Transient buffers of one block's backward, shared by all layers.
pub(crate) struct BlockScratch {
    dh: WgpuTensor,    // (R, M)
    dfch: WgpuTensor,  // (R, M) or (R, 2M)
    dln: WgpuTensor,   // (R, C)
    datty: WgpuTensor, // (R, C)
    dqkv: WgpuTensor,  // (R, C + 2·H_kv·hs)
}

impl BlockScratch {
    /// Scratch for `r` rows; `dln` is an (R, C) buffer the caller is done with.
    pub fn new(dev: &WgpuDevice, cfg: &ModelConfig, r: usize, dln: WgpuTensor) -> Result<Self> {
        let c = cfg.channels;
        Ok(BlockScratch {
            dh: alloc(dev, r * cfg.mlp)?,
            dfch: alloc(dev, r * cfg.fc_channels())?,
            dln,
            datty: alloc(dev, r * c)?,
            dqkv: alloc(dev, r * cfg.qkv_channels())?,
        })
    }
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
pub(crate) fn linear_backward(
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

impl<'a> Net<'a> {
    pub fn p(&self, r: &Range<usize>) -> View<'a> {
        View::range(self.params, r)
    }

    /// A bias's view, `None` for the empty range of a family without it.
    pub fn bias(&self, r: &Range<usize>) -> Option<View<'a>> {
        (!r.is_empty()).then(|| View::range(self.params, r))
    }

    /// LayerNorm (GPT) or RMSNorm (llama) of `rows` rows of `inp` into `n`,
    /// saving the statistics the backward needs.
    pub fn norm(&self, n: &Norm, inp: &WgpuTensor, w: &Range<usize>, b: &Range<usize>, rows: usize) -> Result<()> {
        let c = self.cfg.channels;
        let (o, m, r, x) = (View::all(&n.out), View::all(&n.mean), View::all(&n.rstd), View::all(inp));
        match self.cfg.family {
            Family::Gpt => layernorm_forward(o, m, r, x, self.p(w), self.p(b), rows, c),
            Family::Llama => rmsnorm_forward(o, r, x, self.p(w), rows, c, self.cfg.norm_eps as f32),
        }
    }

    /// The backward of the norm that made `n` from `inp`: dres += ∂/∂inp, the
    /// gain (and LayerNorm bias) gradients accumulated into `grads`.
    #[allow(clippy::too_many_arguments)]
    pub fn norm_backward(
        &self,
        dres: &WgpuTensor,
        grads: &WgpuTensor,
        dout: &WgpuTensor,
        inp: &WgpuTensor,
        w: &Range<usize>,
        b: &Range<usize>,
        n: &Norm,
        r: usize,
    ) -> Result<()> {
        let c = self.cfg.channels;
        let (dw, dout) = (View::range(grads, w), View::at(dout, 0, (r * c) as u64));
        match self.cfg.family {
            Family::Llama => {
                rmsnorm_backward(View::all(dres), dw, dout, View::all(inp), self.p(w), View::all(&n.rstd), r, c)
            }
            Family::Gpt => layernorm_backward(
                View::all(dres),
                dw,
                View::range(grads, b),
                dout,
                View::all(inp),
                self.p(w),
                View::all(&n.mean),
                View::all(&n.rstd),
                r,
                c,
            ),
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

    /// The backward of [`Net::activation`]: dfch from dact (overwrites).
    fn activation_backward(&self, dfch: &WgpuTensor, fch: &WgpuTensor, dact: &WgpuTensor, rows: usize) -> Result<()> {
        match self.cfg.family {
            Family::Gpt => gelu_backward(View::all(dfch), View::all(fch), View::all(dact)),
            Family::Llama => swiglu_backward(View::all(dfch), View::all(fch), View::all(dact), rows, self.cfg.mlp),
        }
    }

    /// One block over `r` rows: `out` = block(`x`), writing into `la` what
    /// the backward needs; `tmp` (R, C) is scratch. `out` may be `x`.
    /// `attend(la)` fills `la.atty` (and `la.lse`) from the rotated
    /// `la.qkv`.
    #[allow(clippy::too_many_arguments)]
    pub fn block_forward(
        &self,
        w: &LayerViews,
        la: &LayerActs,
        x: &WgpuTensor,
        out: &WgpuTensor,
        tmp: &WgpuTensor,
        r: usize,
        pos: RopePositions<'_>,
        attend: impl FnOnce(&LayerActs) -> Result<()>,
    ) -> Result<()> {
        let cfg = self.cfg;
        let (c, m) = (cfg.channels, cfg.mlp);
        let (qkvc, fcc) = (cfg.qkv_channels(), cfg.fc_channels());
        let p = |rg: &Range<usize>| self.p(rg);
        self.norm(&la.ln1, x, &w.ln1_w, &w.ln1_b, r)?;
        linear(&la.qkv, &la.ln1.out, p(&w.qkv_w), self.bias(&w.qkv_b), r, c, qkvc)?;
        self.rotate(&la.qkv, pos, r, false)?;
        attend(la)?;
        linear(tmp, &la.atty, p(&w.proj_w), self.bias(&w.proj_b), r, c, c)?;
        add(View::all(&la.res2), View::all(x), View::all(tmp))?;
        self.norm(&la.ln2, &la.res2, &w.ln2_w, &w.ln2_b, r)?;
        linear(&la.fch, &la.ln2.out, p(&w.fc_w), self.bias(&w.fc_b), r, c, fcc)?;
        self.activation(&la.act, &la.fch, r)?;
        linear(tmp, &la.act, p(&w.fcproj_w), self.bias(&w.fcproj_b), r, m, c)?;
        add(View::all(out), View::all(&la.res2), View::all(tmp))
    }

    /// The backward of one block over `r` rows: `dres` (R, C) holds ∂/∂out
    /// on entry and ∂/∂x on exit; parameter gradients accumulate into
    /// `grads`. `attend_back(dqkv, datty, la)` fills ∂/∂(rotated q|k|v rows).
    #[allow(clippy::too_many_arguments)]
    pub fn block_backward(
        &self,
        w: &LayerViews,
        la: &LayerActs,
        x: &WgpuTensor,
        dres: &WgpuTensor,
        grads: &WgpuTensor,
        r: usize,
        pos: RopePositions<'_>,
        sc: &BlockScratch,
        attend_back: impl FnOnce(&WgpuTensor, &WgpuTensor, &LayerActs) -> Result<()>,
    ) -> Result<()> {
        let cfg = self.cfg;
        let (c, m) = (cfg.channels, cfg.mlp);
        let (qkvc, fcc) = (cfg.qkv_channels(), cfg.fc_channels());
        let p = |rg: &Range<usize>| self.p(rg);
        let g = |rg: &Range<usize>| View::range(grads, rg);
        let gb = |rg: &Range<usize>| (!rg.is_empty()).then(|| View::range(grads, rg));
        let BlockScratch { dh, dfch, dln, datty, dqkv } = sc;
        linear_backward(dh, g(&w.fcproj_w), gb(&w.fcproj_b), dres, &la.act, p(&w.fcproj_w), r, m, c)?;
        self.activation_backward(dfch, &la.fch, dh, r)?;
        linear_backward(dln, g(&w.fc_w), gb(&w.fc_b), dfch, &la.ln2.out, p(&w.fc_w), r, c, fcc)?;
        self.norm_backward(dres, grads, dln, &la.res2, &w.ln2_w, &w.ln2_b, &la.ln2, r)?;
        linear_backward(datty, g(&w.proj_w), gb(&w.proj_b), dres, &la.atty, p(&w.proj_w), r, c, c)?;
        attend_back(dqkv, datty, la)?;
        self.rotate(dqkv, pos, r, true)?;
        linear_backward(dln, g(&w.qkv_w), gb(&w.qkv_b), dqkv, &la.ln1.out, p(&w.qkv_w), r, c, qkvc)?;
        self.norm_backward(dres, grads, dln, x, &w.ln1_w, &w.ln1_b, &la.ln1, r)
    }
}
