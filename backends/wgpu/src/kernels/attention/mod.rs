//! Causal multi-head attention over the shared-prompt row layout of
//! [`Rows`]: the training forward (saving one log-sum-exp per query and
//! head), its backward, and the one-token generation step over a KV cache.
//! Grouped-query attention (the llama family's H_kv < H key/value heads)
//! is the same kernels with a kv-head mapping: rows are q|k|v of width
//! C + 2·H_kv·C/H and query head h reads key/value head h / (H/H_kv).
//!
//! Training (FlashAttention-2 style, tiles.wgsl): a workgroup serves a tile
//! of up to BT consecutive rows of one segment (a prompt's P rows, or one
//! sample's S rows) and one head; the other side streams through workgroup
//! memory BS rows at a time, each block loaded once for the whole tile, and
//! no (rows × keys) matrix reaches global memory. The generation step
//! (decode.wgsl, attend.wgsl) keeps one workgroup per (row, head). Head
//! sizes up to 256.

#[cfg(test)]
mod tests;

use wapo_core::rl::Rows;
use wapo_core::{Error, Result};

use super::rows::{distinct, need};
use super::{View, alloc};
use crate::launch::{Kernel, Window, dispatch, idx32, kernel_params, wgsl_struct};

const FORWARD: &str =
    concat!(include_str!("../common.wgsl"), include_str!("tiles.wgsl"), include_str!("flash_forward.wgsl"));
const BACKWARD: &str =
    concat!(include_str!("../common.wgsl"), include_str!("tiles.wgsl"), include_str!("flash_backward.wgsl"));
const DELTA: &str = concat!(include_str!("../common.wgsl"), include_str!("delta.wgsl"));
const DECODE: &str = concat!(
    include_str!("../common.wgsl"),
    include_str!("workgroup.wgsl"),
    include_str!("decode.wgsl"),
    include_str!("attend.wgsl"),
);

/// Largest head size (C / H) the kernels handle.
const MAX_HEAD: usize = 256;

/// Threads of a training workgroup (`WG` in tiles.wgsl).
const WG: usize = 64;
/// Floats of a training workgroup's `pool` (`POOL` in tiles.wgsl); with its
/// two arrays of WG floats that is 15,872 of the 16,384 bytes of workgroup
/// memory wgpu guarantees (`max_compute_workgroup_storage_size`).
const POOL: usize = 3840;
/// Head dims one thread accumulates (`MAXR` in tiles.wgsl).
const MAXR: usize = 16;
const _: () = assert!((POOL + 2 * WG) * 4 <= 16384);

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
fn scale(hs: usize) -> f32 {
    1.0 / (hs as f32).sqrt()
}

wgsl_struct! {
    /// The geometry that leads both training parameter structs, read by
    /// tiles.wgsl as `P.geo`.
    struct Geometry {
        p: u32,
        s: u32,
        g: u32,
        bp: u32,
        c: u32,
        h: u32,
        kv: u32,
        scale: f32,
    }
}

kernel_params! {
    /// P of flash_forward.wgsl: the geometry, then the views' shifts.
    struct ForwardParams {
        geo: Geometry,
        qkv: u32,
        pad: u32,
        lse: u32,
        out: u32,
    }
}

kernel_params! {
    /// P of flash_backward.wgsl.
    struct BackwardParams {
        geo: Geometry,
        qkv: u32,
        pad: u32,
        lse: u32,
        dout: u32,
        dsum: u32,
        dqkv: u32,
    }
}

kernel_params! {
    /// P of delta.wgsl.
    struct DeltaParams {
        n: u32,
        hs: u32,
        out: u32,
        dout: u32,
        dsum: u32,
    }
}

kernel_params! {
    /// P of the generation step (decode.wgsl, workgroup.wgsl); a shift is
    /// the index of a view's first element in the binding of the same name.
    struct DecodeParams {
        out: u32,
        step_qkv: u32,
        prefix: u32,
        cache: u32,
        /// Workgroups: n·H, one per (row, head).
        groups: u32,
        /// Prompt rows.
        p: u32,
        /// Rows per prompt.
        g: u32,
        /// Cache rows per row.
        steps: u32,
        /// Cache rows attended.
        ns: u32,
        c: u32,
        h: u32,
        /// NO_PAD: no padding.
        pads: u32,
        scale: f32,
        kv: u32,
    }
}

/// Rows of a tile: the largest power of two up to 16 whose tile of head
/// vectors fills at most WG·MAXR floats (each thread then accumulates at
/// most MAXR dims); it divides WG. hs ≤ 64: 16, ≤ 128: 8, ≤ 256: 4.
fn tile_rows(hs: usize) -> usize {
    let mut bt = 16;
    while bt > 1 && bt * hs > WG * MAXR {
        bt /= 2;
    }
    bt
}

/// Floats between two head vectors in workgroup memory (`stride` in
/// tiles.wgsl): hs made odd, against bank conflicts.
fn stride(hs: usize) -> usize {
    hs | 1
}

/// Rows of a streamed block: the most (up to WG) for which `floats(bs)`
/// (the kernel's pool layout) fits POOL.
fn block_rows(what: &str, floats: impl Fn(usize) -> usize) -> Result<usize> {
    match (1..=WG).rev().find(|&bs| floats(bs) <= POOL) {
        Some(bs) => Ok(bs),
        None => Err(Error::Backend(format!("{what}: no key/query block fits {POOL} floats of workgroup memory"))),
    }
}

/// Workgroups of a training kernel with tiles of `bt` rows: the tiles of
/// every prompt and every sample (`n_tiles` in tiles.wgsl).
fn tiles(rows: Rows, bt: usize) -> u64 {
    (rows.b * rows.p.div_ceil(bt) + rows.n() * rows.s.div_ceil(bt)) as u64
}

/// Checks the geometry of `rows` against 32-bit indexing; returns it and
/// the head size.
fn train_geometry(rows: Rows, hd: Heads, what: &str) -> Result<(Geometry, usize)> {
    let hs = hd.head_size(what)?;
    let (c, h, w) = (hd.c, hd.h, hd.width() as u64);
    if rows.p == 0 {
        return Err(Error::Backend(format!("{what}: rows.p = 0: a prompt of at least one row is required")));
    }
    let r = rows.total() as u64;
    idx32(r * w)?;
    idx32(r * h as u64)?;
    let geo = Geometry {
        p: rows.p as u32,
        s: idx32(rows.s as u64)?,
        g: idx32(rows.g as u64)?,
        bp: idx32(rows.prefix_rows() as u64)?,
        c: c as u32,
        h: h as u32,
        kv: hd.kv as u32,
        scale: scale(hs),
    };
    Ok((geo, hs))
}

fn tiled(name: &'static str, source: &'static str, entry: &'static str, bt: usize, bs: usize) -> Kernel {
    Kernel { name, source, entry, constants: vec![("BT", bt as u32), ("BS", bs as u32)] }
}

/// Training forward: out (R, C) and lse (R, H) from qkv (R, W), W =
/// [`Heads::width`], R = rows.total(). lse (i, h) is the log-sum-exp of
/// query i's scaled scores s_ij = q_i·k_j/√hs over its keys (a prompt row:
/// its prompt's keys 0..=p; a completion row: the P prompt keys, then its
/// own keys 0..=s), so that P_ij = exp(s_ij − lse_i). `out` and `lse` may
/// be views of one tensor, not of qkv's.
///
/// `pad` (u32 (B), or `None`: no padding): the first `pad[b]` rows of prompt
/// b are left padding, which no query attends to (a padding query attends
/// to itself only, so that its row stays finite).
pub fn attention_forward(
    out: View<'_>,
    lse: View<'_>,
    qkv: View<'_>,
    pad: Option<View<'_>>,
    rows: Rows,
    hd: Heads,
) -> Result<()> {
    let (geo, hs) = train_geometry(rows, hd, "attention_forward")?;
    let (c, h, w) = (hd.c as u64, hd.h as u64, hd.width() as u64);
    let r = rows.total() as u64;
    need(&out, r * c, "out")?;
    need(&lse, r * h, "lse")?;
    need(&qkv, r * w, "qkv")?;
    distinct(&[(&out, "out"), (&lse, "lse")], &[(&qkv, "qkv")])?;
    if r == 0 {
        return Ok(());
    }
    let (bt, st) = (tile_rows(hs), stride(hs));
    // q [BT·st] | k, then v [BS·st] | scores [BT·BS].
    let bs = block_rows("attention_forward", |bs| bt * st + bs * st + bt * bs)?;
    let (wo, so) = out.sub(0, r * c).bind(7, "out")?;
    let (wl, sl) = lse.sub(0, r * h).bind(6, "lse")?;
    let (wq, sq) = qkv.sub(0, r * w).bind(0, "qkv")?;
    let (wd, sd) = bind_pad(pad, qkv, rows.b)?;
    let prm = ForwardParams { geo, qkv: sq, pad: sd, lse: sl, out: so };
    let k = tiled("gpt_attention_flash_forward", FORWARD, "forward", bt, bs);
    dispatch(out.t.ctx(), &k, &[wq, wd, wl, wo], &prm, tiles(rows, bt) * h)
}

/// Training backward: dqkv (R, W) is overwritten with ∂/∂qkv given dout
/// (R, C), from the forward's out (R, C) and lse (R, H), qkv (R, W) and the
/// forward's `pad`. Deterministic (no atomics): a key's dk, dv sum the
/// queries that see it in a fixed order (a prompt key: its prompt's later
/// rows, then every completion row of its G samples; a completion key: the
/// later rows of its own sample). dqkv must be a tensor of its own (no
/// input's).
#[allow(clippy::too_many_arguments)]
pub fn attention_backward(
    dqkv: View<'_>,
    dout: View<'_>,
    out: View<'_>,
    lse: View<'_>,
    qkv: View<'_>,
    pad: Option<View<'_>>,
    rows: Rows,
    hd: Heads,
) -> Result<()> {
    let (geo, hs) = train_geometry(rows, hd, "attention_backward")?;
    let (c, h, w) = (hd.c as u64, hd.h as u64, hd.width() as u64);
    let r = rows.total() as u64;
    need(&dqkv, r * w, "dqkv")?;
    need(&dout, r * c, "dout")?;
    need(&out, r * c, "out")?;
    need(&lse, r * h, "lse")?;
    need(&qkv, r * w, "qkv")?;
    let reads = [(&dout, "dout"), (&out, "out"), (&lse, "lse"), (&qkv, "qkv")];
    distinct(&[(&dqkv, "dqkv")], &reads)?;
    if r == 0 {
        return Ok(());
    }
    let ctx = dqkv.t.ctx();
    let dsum = alloc(&dqkv.t.store.dev, (r * h) as usize)?;
    let dsum = View::all(&dsum);
    {
        let (wo, so) = out.sub(0, r * c).bind(0, "out")?;
        let (wd, sd) = dout.sub(0, r * c).bind(1, "dout")?;
        let (ws, ss) = dsum.bind(6, "dsum")?;
        let prm = DeltaParams { n: idx32(r * h)?, hs: hs as u32, out: so, dout: sd, dsum: ss };
        let k = kernel("gpt_attention_flash_delta", DELTA, "delta");
        dispatch(ctx, &k, &[wo, wd, ws], &prm, (r * h).div_ceil(WG as u64))?;
    }
    let (bt, st) = (tile_rows(hs), stride(hs));
    // k [BT·st] | v [BT·st] | q [BS·st] | dout [BS·st] | P, dS [BS·BT] each.
    let bs_kv = block_rows("attention_backward", |bs| 2 * (bt * st + bs * st + bs * bt))?;
    // dout [BT·st] | q [BT·st] | v, then k [BS·st] | dP, then dS [BT·BS].
    let bs_q = block_rows("attention_backward", |bs| 2 * bt * st + bs * st + bt * bs)?;
    let mut wins = Vec::with_capacity(6);
    let mut shift = [0u32; 6];
    for (i, (slot, v, len, field)) in [
        (0, qkv, r * w, "qkv"),
        (1, dout, r * c, "dout"),
        (2, lse, r * h, "lse"),
        (4, dsum, r * h, "dsum"),
        (7, dqkv, r * w, "dqkv"),
    ]
    .into_iter()
    .enumerate()
    {
        let (win, s) = v.sub(0, len).bind(slot, field)?;
        wins.push(win);
        shift[i] = s;
    }
    let (wp, sp) = bind_pad(pad, qkv, rows.b)?;
    wins.push(wp);
    let prm =
        BackwardParams { geo, qkv: shift[0], pad: sp, lse: shift[2], dout: shift[1], dsum: shift[3], dqkv: shift[4] };
    let k = tiled("gpt_attention_flash_dkdv", BACKWARD, "dkdv", bt, bs_kv);
    dispatch(ctx, &k, &wins, &prm, tiles(rows, bt) * hd.kv as u64)?;
    let k = tiled("gpt_attention_flash_dq", BACKWARD, "dq", bt, bs_q);
    dispatch(ctx, &k, &wins, &prm, tiles(rows, bt) * h)
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
    let params = DecodeParams {
        out: so,
        step_qkv: sq,
        prefix: sp,
        cache: sc,
        groups: idx32(n64 * h as u64)?,
        p: p as u32,
        g: g as u32,
        steps: steps as u32,
        ns: ns as u32,
        c: c as u32,
        h: h as u32,
        pads: sd,
        scale: scale(hs),
        kv: hd.kv as u32,
    };
    let k = kernel("gpt_attention_decode", DECODE, "main");
    dispatch(out.t.ctx(), &k, &[wq, wp, wc, wd, wo], &params, n64 * h as u64)
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
