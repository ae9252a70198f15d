//! Causal multi-head attention over the shared-prompt row layout of
//! [`Rows`]: the training forward (saving the probabilities), its backward,
//! and the one-token generation step over a KV cache. Grouped-query
//! attention (the llama family's H_kv < H key/value heads) is the same
//! kernels with a kv-head mapping: rows are q|k|v of width C + 2·H_kv·C/H
//! and query head h reads key/value head h / (H/H_kv).
//!
//! One workgroup of 64 threads serves one (query row, head) (the forward,
//! the step, the backward's dq) or one (key row, head) (the backward's dk,
//! dv): the key (query) loop is split over the threads, the softmax is
//! online (running max and rescaled sums), reductions are fixed trees. Head
//! sizes up to 256.

#[cfg(test)]
mod tests;

use wapo_core::rl::Rows;
use wapo_core::{Error, Result};

use super::View;
use super::rows::{distinct, need};
use crate::launch::{Kernel, Window, dispatch, idx32};

const FORWARD: &str = concat!(
    include_str!("../../../kernels/common.wgsl"),
    include_str!("workgroup.wgsl"),
    include_str!("train_rows.wgsl"),
    include_str!("forward.wgsl"),
    include_str!("attend.wgsl"),
);
const BACKWARD: &str = concat!(
    include_str!("../../../kernels/common.wgsl"),
    include_str!("workgroup.wgsl"),
    include_str!("train_rows.wgsl"),
    include_str!("backward.wgsl"),
);
const DECODE: &str = concat!(
    include_str!("../../../kernels/common.wgsl"),
    include_str!("workgroup.wgsl"),
    include_str!("decode.wgsl"),
    include_str!("attend.wgsl"),
);

/// Largest head size (C / H) the kernels handle (4 dims per thread).
const MAX_HEAD: usize = 256;

fn kernel(name: &'static str, source: &'static str, entry: &'static str) -> Kernel {
    Kernel { name, source, entry, constants: vec![] }
}

/// The heads of one attention: C channels of queries in H heads, H_kv
/// key/value heads (H_kv = H: plain multi-head attention).
#[derive(Clone, Copy, Debug)]
pub struct Heads {
    pub c: usize,
    pub h: usize,
    pub kv: usize,
}

impl Heads {
    /// Multi-head attention (the GPT): as many key/value heads as query heads.
    pub fn mha(c: usize, h: usize) -> Self {
        Heads { c, h, kv: h }
    }

    /// The heads of a model.
    pub fn of(cfg: &wapo_core::rl::ModelConfig) -> Self {
        Heads { c: cfg.channels, h: cfg.heads, kv: cfg.kv_heads }
    }

    /// Width of a q|k|v row: C + 2·H_kv·C/H.
    pub fn width(&self) -> usize {
        self.c + 2 * self.kv * (self.c / self.h.max(1))
    }

    /// Checks the geometry; returns the head size.
    fn head_size(&self, what: &str) -> Result<usize> {
        let Heads { c, h, kv } = *self;
        if h == 0 || c == 0 || !c.is_multiple_of(h) || c / h > MAX_HEAD {
            return Err(Error::Backend(format!(
                "{what}: c = {c} must be a positive multiple of h = {h} with head size c / h at most {MAX_HEAD}"
            )));
        }
        if kv == 0 || !h.is_multiple_of(kv) {
            return Err(Error::Backend(format!("{what}: kv heads = {kv} must be ≥ 1 and divide h = {h}")));
        }
        Ok(c / h)
    }
}

/// The softmax scale 1/√hs, as the CPU reference computes it.
fn scale(hs: usize) -> u32 {
    (1.0 / (hs as f32).sqrt()).to_bits()
}

/// Parameters 4..=12 of the training kernels (train_rows.wgsl): the
/// geometry of `rows`, checked against 32-bit indexing.
fn train_geometry(rows: Rows, hd: Heads, what: &str) -> Result<[u32; 9]> {
    let hs = hd.head_size(what)?;
    let (c, h, w) = (hd.c, hd.h, hd.width() as u64);
    if rows.p == 0 {
        return Err(Error::Backend(format!("{what}: rows.p = 0: a prompt of at least one row is required")));
    }
    let r = rows.total() as u64;
    idx32(r * w)?;
    idx32(r * (h * rows.keys()) as u64)?;
    Ok([
        idx32(r * h as u64)?,
        rows.p as u32,
        rows.s as u32,
        rows.g as u32,
        idx32(rows.prefix_rows() as u64)?,
        c as u32,
        h as u32,
        rows.keys() as u32,
        scale(hs),
    ])
}

/// Training forward: out (R, C) and probs (R, H, P + S) from qkv (R, W),
/// W = [`Heads::width`], R = rows.total(). probs row (i, h) holds the query's probabilities over
/// its keys in [`Rows`] order (a prompt row: its prompt's keys 0..=p; a
/// completion row: the P prompt keys, then its own keys 0..=s), zeros after.
/// `out` and `probs` may be views of one tensor, not of qkv's.
///
/// `pad` (u32 (B), or `None`: no padding): the first `pad[b]` rows of prompt
/// b are left padding, which no query attends to (a padding query attends
/// to itself only, so that its row stays finite); their probabilities are
/// 0, so the backward needs no mask.
pub fn attention_forward(
    out: View<'_>,
    probs: View<'_>,
    qkv: View<'_>,
    pad: Option<View<'_>>,
    rows: Rows,
    hd: Heads,
) -> Result<()> {
    let geo = train_geometry(rows, hd, "attention_forward")?;
    let (c, h, w) = (hd.c, hd.h, hd.width() as u64);
    let r = rows.total() as u64;
    need(&out, r * c as u64, "out")?;
    need(&probs, r * (h * rows.keys()) as u64, "probs")?;
    need(&qkv, r * w, "qkv")?;
    distinct(&[(&out, "out"), (&probs, "probs")], &[(&qkv, "qkv")])?;
    if r == 0 {
        return Ok(());
    }
    let (wo, so) = out.sub(0, r * c as u64).bind(7, "out")?;
    let (wp, sp) = probs.sub(0, r * (h * rows.keys()) as u64).bind(6, "probs")?;
    let (wq, sq) = qkv.sub(0, r * w).bind(0, "qkv")?;
    let (wd, sd) = bind_pad(pad, qkv, rows.b)?;
    let mut prm = vec![so, sp, sq, sd];
    prm.extend_from_slice(&geo);
    prm.push(hd.kv as u32);
    let k = kernel("gpt_attention_forward", FORWARD, "main");
    dispatch(out.t.ctx(), &k, &[wq, wd, wp, wo], &prm, r * h as u64)
}

/// Training backward: dqkv (R, W) is overwritten with ∂/∂qkv given dout
/// (R, C), from the forward's probs (R, H, P + S) and qkv (R, W).
/// Deterministic (no atomics): a key's dk, dv sum the queries that see it
/// in a fixed order (a prompt key: its prompt's later rows, then every
/// completion row of its G samples; a completion key: the later rows of its
/// own sample). dqkv must be a tensor of its own (no input's).
pub fn attention_backward(
    dqkv: View<'_>,
    dout: View<'_>,
    probs: View<'_>,
    qkv: View<'_>,
    rows: Rows,
    hd: Heads,
) -> Result<()> {
    let geo = train_geometry(rows, hd, "attention_backward")?;
    let (c, h, w) = (hd.c, hd.h, hd.width() as u64);
    let r = rows.total() as u64;
    let np = r * (h * rows.keys()) as u64;
    need(&dqkv, r * w, "dqkv")?;
    need(&dout, r * c as u64, "dout")?;
    need(&probs, np, "probs")?;
    need(&qkv, r * w, "qkv")?;
    distinct(&[(&dqkv, "dqkv")], &[(&dout, "dout"), (&probs, "probs"), (&qkv, "qkv")])?;
    if r == 0 {
        return Ok(());
    }
    let ctx = dqkv.t.ctx();
    let mut prm = Vec::with_capacity(13);
    let mut wins = Vec::with_capacity(4);
    for (slot, v, len, field) in
        [(7, dqkv, r * w, "dqkv"), (0, dout, r * c as u64, "dout"), (1, probs, np, "probs"), (2, qkv, r * w, "qkv")]
    {
        let (w, s) = v.sub(0, len).bind(slot, field)?;
        wins.push(w);
        prm.push(s);
    }
    prm.extend_from_slice(&geo);
    prm.push(hd.kv as u32);
    // dk, dv: one workgroup per (key row, key/value head).
    for (name, entry, heads) in
        [("gpt_attention_delta", "delta", h), ("gpt_attention_dkdv", "dkdv", hd.kv), ("gpt_attention_dq", "dq", h)]
    {
        dispatch(ctx, &kernel(name, BACKWARD, entry), &wins, &prm, r * heads as u64)?;
    }
    Ok(())
}

/// One generation step: for each of the n = B·G rows i, the query of
/// step_qkv row i (n, W) attends to the P prompt rows of its prompt i / g in
/// `prefix` (B·P, W), then to rows i·steps .. i·steps + ns of `cache`
/// (n, steps, W) (the current step's k, v already written there). Writes
/// out (n, C). `out` must be a tensor of its own. `pad` (u32 (B), or
/// `None`): the first `pad[b]` prompt rows of prompt b are padding, which
/// no query sees.
#[allow(clippy::too_many_arguments)]
pub fn attention_decode(
    out: View<'_>,
    step_qkv: View<'_>,
    prefix: View<'_>,
    cache: View<'_>,
    pad: Option<View<'_>>,
    n: usize,
    g: usize,
    p: usize,
    steps: usize,
    ns: usize,
    hd: Heads,
) -> Result<()> {
    let hs = hd.head_size("attention_decode")?;
    let (c, h) = (hd.c, hd.h);
    if g == 0 || !n.is_multiple_of(g) {
        return Err(Error::Backend(format!("attention_decode: n = {n} rows is not a multiple of g = {g}")));
    }
    if p == 0 {
        return Err(Error::Backend("attention_decode: p = 0: a prompt of at least one row is required".into()));
    }
    if ns > steps {
        return Err(Error::Backend(format!("attention_decode: ns = {ns} exceeds the cache's {steps} steps")));
    }
    let (n64, c3) = (n as u64, hd.width() as u64);
    let pre = (n / g * p) as u64 * c3;
    let cached = n64 * steps as u64 * c3;
    need(&out, n64 * c as u64, "out")?;
    need(&step_qkv, n64 * c3, "step_qkv")?;
    need(&prefix, pre, "prefix")?;
    need(&cache, cached, "cache")?;
    distinct(&[(&out, "out")], &[(&step_qkv, "step_qkv"), (&prefix, "prefix"), (&cache, "cache")])?;
    idx32(pre.max(cached))?;
    if n == 0 {
        return Ok(());
    }
    let (wo, so) = out.sub(0, n64 * c as u64).bind(7, "out")?;
    let (wq, sq) = step_qkv.sub(0, n64 * c3).bind(0, "step_qkv")?;
    let (wp, sp) = prefix.sub(0, pre).bind(1, "prefix")?;
    let (wc, sc) = cache.sub(0, cached).bind(2, "cache")?;
    let (wd, sd) = bind_pad(pad, step_qkv, n / g)?;
    let prm = [
        so,
        sq,
        sp,
        sc,
        idx32(n64 * h as u64)?,
        p as u32,
        g as u32,
        steps as u32,
        ns as u32,
        c as u32,
        h as u32,
        sd,
        scale(hs),
        hd.kv as u32,
    ];
    let k = kernel("gpt_attention_decode", DECODE, "main");
    dispatch(out.t.ctx(), &k, &[wq, wp, wc, wd, wo], &prm, n64 * h as u64)
}

/// Marks "no padding" in a pad shift parameter.
const NO_PAD: u32 = u32::MAX;

/// Binds the (B) pads to slot 3 and returns their shift; without pads,
/// `stand_in` (any input of the kernel) fills the slot and the shift says
/// there are none.
fn bind_pad<'a>(pad: Option<View<'a>>, stand_in: View<'a>, b: usize) -> Result<(Window<'a>, u32)> {
    match pad {
        Some(p) => {
            need(&p, b as u64, "pad")?;
            p.sub(0, b as u64).bind(3, "pad")
        }
        None => Ok((stand_in.sub(0, 1).bind(3, "pad")?.0, NO_PAD)),
    }
}
