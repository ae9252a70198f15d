//! The GEMM of the GPT's linear layers and the column sums of their bias
//! gradients.
//!
//! [`gemm`] is a register-blocked tiled kernel: each workgroup of 256 threads
//! computes a 128×128 (8×8 per thread) or 64×64 (4×4 per thread) output tile
//! from operand tiles staged in workgroup memory, transposes resolved at load
//! time. When the output has too few tiles to fill the GPU (weight gradients,
//! whose k is the number of rows), k is split over workgroups that write
//! partial products, summed in a fixed order by a second pass: every result
//! is deterministic.

pub mod bench;
#[cfg(test)]
mod tests;

use wapo_core::{Error, Result};

use super::View;
use super::chunks::{Chunked, Combine};
use super::rows::{distinct, fill, need};
use crate::launch::{Kernel, dispatch, idx32, kernel_params};

const GEMM_128: &str =
    concat!(include_str!("../common.wgsl"), include_str!("gemm_common.wgsl"), include_str!("gemm128.wgsl"));
const GEMM_64: &str =
    concat!(include_str!("../common.wgsl"), include_str!("gemm_common.wgsl"), include_str!("gemm64.wgsl"));
const COLUMN_SUM: &str =
    concat!(include_str!("../common.wgsl"), include_str!("../chunks/cell.wgsl"), include_str!("column_sum.wgsl"));

kernel_params! {
    /// P of the GEMM (gemm_common.wgsl, both tile configurations); a shift
    /// is the index of a view's first element in its binding.
    struct GemmParams {
        m: u32,
        n: u32,
        k: u32,
        a: u32,
        b: u32,
        bias: u32,
        /// 0 when writing split partials, which fill their buffer.
        out: u32,
        /// k per split, a multiple of the tile depth.
        split_k: u32,
        /// 1 accumulate, 2 add the bias, 4 write one split's raw partial.
        flags: u32,
        /// Tiles along n.
        tiles_n: u32,
        /// Tiles per split: the output's.
        tiles: u32,
        /// Tiles × splits: a 2D dispatch may launch a few more, which
        /// return at once.
        groups: u32,
    }
}

kernel_params! {
    /// P of column_sum.wgsl.
    struct ColumnSumParams {
        rows: u32,
        n: u32,
        src: u32,
        dst: u32,
        /// Rows per chunk.
        chunk: u32,
        /// Column blocks of 64.
        blocks: u32,
        /// Adds to dst (0/1).
        accumulate: u32,
        chunks: u32,
    }
}

/// Workgroups a GEMM should launch to fill a large GPU (a few per
/// multiprocessor of a 132-SM H100/H200); below half of it, k is split.
const TARGET_GROUPS: usize = 512;
/// The smallest k-range one split handles: shorter ones spend more on the
/// partials than they gain in parallelism.
const MIN_SPLIT_K: usize = 512;
/// At most this many k-splits.
const MAX_SPLITS: usize = 64;
/// At most this many f32 of split partials (256 MiB).
const MAX_PARTIALS: usize = 64 << 20;

/// One GEMM: out (m, n) = op(a) (m, k) · op(b) (k, n).
#[derive(Clone, Copy, Debug)]
pub struct Gemm {
    /// Rows of the output and of op(a).
    pub m: usize,
    /// Columns of the output and of op(b).
    pub n: usize,
    /// The contracted dimension.
    pub k: usize,
    /// a is stored (k, m) instead of (m, k).
    pub a_t: bool,
    /// b is stored (n, k) instead of (k, n).
    pub b_t: bool,
    /// Adds the product to the output instead of overwriting it.
    pub accumulate: bool,
}

/// A tile configuration of the GEMM kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tiles {
    /// 128×128 outputs per workgroup, 8×8 per thread, k-tiles of 8.
    Big,
    /// 64×64 outputs per workgroup, 4×4 per thread, k-tiles of 16.
    Small,
}

impl Tiles {
    fn size(self) -> usize {
        match self {
            Tiles::Big => 128,
            Tiles::Small => 64,
        }
    }

    fn depth(self) -> usize {
        match self {
            Tiles::Big => 8,
            Tiles::Small => 16,
        }
    }

    fn count(self, m: usize, n: usize) -> usize {
        m.div_ceil(self.size()) * n.div_ceil(self.size())
    }
}

/// How one GEMM is launched: its tiles and the k-range of each split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub tiles: Tiles,
    pub splits: usize,
    pub split_k: usize,
}

impl Plan {
    /// A plan of `splits` k-ranges of whole k-tiles (fewer when k is short).
    pub(crate) fn new(tiles: Tiles, k: usize, splits: usize) -> Plan {
        let split_k = k.div_ceil(splits.max(1)).next_multiple_of(tiles.depth()).max(tiles.depth());
        Plan { tiles, splits: k.div_ceil(split_k).max(1), split_k }
    }
}

/// The launch of `g`: big tiles when the output (times the possible
/// splits) fills the GPU with them, and k split when the tiles alone do not,
/// into at most `max_partials` f32 of partial products.
pub(crate) fn plan(g: &Gemm, max_partials: usize) -> Plan {
    let cap = max_partials.min(MAX_PARTIALS) / (g.m * g.n).max(1);
    let max_splits = (g.k / MIN_SPLIT_K).clamp(1, MAX_SPLITS).min(cap.max(1));
    let big = g.m >= 128 && g.n >= 128 && Tiles::Big.count(g.m, g.n) * max_splits >= TARGET_GROUPS / 2;
    let tiles = if big { Tiles::Big } else { Tiles::Small };
    let count = tiles.count(g.m, g.n);
    let splits = if count >= TARGET_GROUPS / 2 { 1 } else { TARGET_GROUPS.div_ceil(count).min(max_splits) };
    Plan::new(tiles, g.k, splits)
}

/// out = op(a)·op(b) [+ out when accumulate] [+ bias[j] broadcast over rows when Some].
/// a is stored (m, k) row-major, or (k, m) when a_t; b is stored (k, n), or (n, k) when b_t.
pub fn gemm(out: View<'_>, a: View<'_>, b: View<'_>, bias: Option<View<'_>>, g: Gemm) -> Result<()> {
    let p = plan(&g, (out.t.ctx().max_binding / 4) as usize);
    gemm_planned(out, a, b, bias, g, p)
}

/// [`gemm`] launched as `p` says.
pub(crate) fn gemm_planned(
    out: View<'_>,
    a: View<'_>,
    b: View<'_>,
    bias: Option<View<'_>>,
    g: Gemm,
    p: Plan,
) -> Result<()> {
    if g.m == 0 || g.n == 0 {
        return Ok(());
    }
    if g.k == 0 {
        return Err(Error::Config { field: "k", reason: "a GEMM needs k ≥ 1" });
    }
    let (m, n, k) = (g.m as u64, g.n as u64, g.k as u64);
    need(&out, m * n, "out")?;
    need(&a, m * k, "a")?;
    need(&b, k * n, "b")?;
    let mut reads = vec![(&a, "a"), (&b, "b")];
    if let Some(bias) = &bias {
        need(bias, n, "bias")?;
        reads.push((bias, "bias"));
    }
    distinct(&[(&out, "out")], &reads)?;
    let ctx = out.t.ctx();
    let (out, a, b) = (out.sub(0, m * n), a.sub(0, m * k), b.sub(0, k * n));
    let bias = bias.map(|v| v.sub(0, n));
    let (wa, sa) = a.bind(0, "a")?;
    let (wb, sb) = b.bind(1, "b")?;
    // Without a bias the kernel's bias binding (never read) takes b again.
    let (wbias, sbias) = match &bias {
        Some(v) => v.bind(2, "bias")?,
        None => b.bind(2, "b")?,
    };
    let (name, source) = match p.tiles {
        Tiles::Big => ("gpt_matmul_gemm128", GEMM_128),
        Tiles::Small => ("gpt_matmul_gemm64", GEMM_64),
    };
    let kernel =
        Kernel { name, source, entry: "main", constants: vec![("A_T", u32::from(g.a_t)), ("B_T", u32::from(g.b_t))] };
    let tile = p.tiles.size() as u64;
    let tiles_n = n.div_ceil(tile);
    let tiles = m.div_ceil(tile) * tiles_n;
    let flags = u32::from(g.accumulate) | if bias.is_some() { 2 } else { 0 };
    let split_k = idx32(p.split_k as u64)?;
    let params = GemmParams {
        m: idx32(m)?,
        n: idx32(n)?,
        k: idx32(k)?,
        a: sa,
        b: sb,
        bias: sbias,
        out: 0,
        split_k,
        flags,
        tiles_n: idx32(tiles_n)?,
        tiles: idx32(tiles)?,
        groups: idx32(tiles * p.splits as u64)?,
    };
    if p.splits <= 1 {
        let (wo, so) = out.bind(7, "out")?;
        return dispatch(ctx, &kernel, &[wa, wb, wbias, wo], &GemmParams { out: so, ..params }, tiles);
    }
    let splits = p.splits as u64;
    // The splits are the chunks of k: split s writes its partial product as
    // chunk s's row of m·n partials.
    let sums = Chunked::new(&out.t.store.dev, k, p.split_k as u64, m * n)?;
    debug_assert_eq!(sums.chunks, splits);
    idx32(splits * m * n)?;
    let (wp, _) = sums.partials().bind(7, "partials")?;
    dispatch(ctx, &kernel, &[wa, wb, wbias, wp], &GemmParams { out: 0, flags: 4, ..params }, tiles * splits)?;
    let combine = if g.accumulate { Combine::AddTotal } else { Combine::Overwrite };
    sums.finish(out, 0, combine, bias)
}

/// out (n) = Σ_rows x (rows, n) [+ out when accumulate]: bias gradients. Deterministic (fixed reduction order).
pub fn column_sum(out: View<'_>, x: View<'_>, rows: usize, n: usize, accumulate: bool) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    let (rows, n) = (rows as u64, n as u64);
    need(&out, n, "out")?;
    let out = out.sub(0, n);
    if rows == 0 {
        return if accumulate { Ok(()) } else { fill(out, 0.0) };
    }
    need(&x, rows * n, "x")?;
    distinct(&[(&out, "out")], &[(&x, "x")])?;
    let ctx = out.t.ctx();
    let x = x.sub(0, rows * n);
    let kernel = |entry| Kernel { name: "gpt_matmul_column_sum", source: COLUMN_SUM, entry, constants: vec![] };
    // At most 512 chunks, so that the second pass stays short.
    let chunk = rows.div_ceil(512).next_multiple_of(4).max(256);
    let chunks = rows.div_ceil(chunk);
    let blocks = n.div_ceil(64);
    let (wx, sx) = x.bind(0, "x")?;
    if chunks == 1 {
        let (wo, so) = out.bind(7, "out")?;
        let p = ColumnSumParams {
            rows: idx32(rows)?,
            n: idx32(n)?,
            src: sx,
            dst: so,
            chunk: idx32(chunk)?,
            blocks: idx32(blocks)?,
            accumulate: u32::from(accumulate),
            chunks: 1,
        };
        return dispatch(ctx, &kernel("partial"), &[wx, wo], &p, blocks);
    }
    let sums = Chunked::new(&out.t.store.dev, rows, chunk, n)?;
    let (wp, _) = sums.partials().bind(7, "partials")?;
    let p = ColumnSumParams {
        rows: idx32(rows)?,
        n: idx32(n)?,
        src: sx,
        dst: 0,
        chunk: idx32(chunk)?,
        blocks: idx32(blocks)?,
        accumulate: 0,
        chunks: idx32(chunks)?,
    };
    dispatch(ctx, &kernel("partial"), &[wx, wp], &p, chunks * blocks)?;
    sums.finish(out, 0, if accumulate { Combine::AddTotal } else { Combine::Overwrite }, None)
}
