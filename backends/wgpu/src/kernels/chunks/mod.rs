//! Deterministic sums over rows, shared by the norms' weight gradients,
//! [`super::matmul::column_sum`] and the k-split GEMM: a kernel's partial
//! pass writes one row of partial sums per fixed chunk of rows into a
//! scratch buffer ([`Chunked`]), and [`Chunked::finish`] adds the chunks up
//! in chunk order. A result then depends on the chunking alone, not on the
//! device or on the order in which workgroups run. cell.wgsl is the partial
//! passes' side (included by their kernels), finish.wgsl the ordered sum.

use wapo_core::Result;

use super::rows::groups;
use super::{View, alloc};
use crate::context::WgpuDevice;
use crate::launch::{Kernel, dispatch, idx32, kernel_params};
use crate::tensor::WgpuTensor;

const FINISH: &str = concat!(include_str!("../common.wgsl"), include_str!("finish.wgsl"));

kernel_params! {
    /// P of finish.wgsl.
    struct FinishParams {
        /// Columns summed, one thread each.
        cols: u32,
        chunks: u32,
        /// Elements from one chunk's row of partials to the next's.
        stride: u32,
        /// The shift of the first summed column in chunk 0's row.
        part: u32,
        out: u32,
        bias: u32,
        /// Column i adds bias[i % bias_len].
        bias_len: u32,
        /// ADD_EACH 1, ADD_TOTAL 2, BIAS 4 (see finish.wgsl).
        flags: u32,
    }
}

/// How the sum over the chunks meets the output's previous value. The two
/// accumulating orders round differently; each caller keeps the order it
/// has always used, so that no result moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Combine {
    /// out = Σ_q part_q.
    Overwrite,
    /// out = out + Σ_q part_q, the chunks summed first (column sums, the
    /// GEMM's k-splits).
    AddTotal,
    /// out = ((out + part_0) + part_1) + …, each chunk added onto out in
    /// turn (the norms' gradients).
    AddEach,
}

/// The scratch of a chunked sum: one row of `width` partial sums per chunk
/// of `rows_per` rows.
pub(crate) struct Chunked {
    pub rows_per: u64,
    pub chunks: u64,
    pub width: u64,
    scratch: WgpuTensor,
}

impl Chunked {
    /// Scratch for `rows` rows in chunks of `rows_per` (the last may be
    /// shorter), `width` partials per chunk.
    pub(crate) fn new(dev: &WgpuDevice, rows: u64, rows_per: u64, width: u64) -> Result<Chunked> {
        let chunks = rows.div_ceil(rows_per);
        let scratch = alloc(dev, (chunks * width) as usize)?;
        Ok(Chunked { rows_per, chunks, width, scratch })
    }

    /// The partials, chunk q's row at q·width: what the partial pass writes.
    pub(crate) fn partials(&self) -> View<'_> {
        View::all(&self.scratch)
    }

    /// The partial pass over rows r0..r0 + n (r0 at a chunk's start) in
    /// `blocks` column blocks: the index of its first chunk (`chunk_cell`'s
    /// chunks count from it) and its workgroups, one per chunk and block.
    pub(crate) fn grid(&self, r0: u64, n: u64, blocks: u64) -> Result<(u32, u64)> {
        debug_assert_eq!(r0 % self.rows_per, 0, "a batch of rows starts at a chunk");
        Ok((idx32(r0 / self.rows_per)?, n.div_ceil(self.rows_per) * blocks))
    }

    /// out (its length in columns) = columns first.. of the partials, each
    /// summed over the chunks in order and met with out's previous value as
    /// `combine` says, then + bias[i % bias.len] when a bias is given.
    pub(crate) fn finish(&self, out: View<'_>, first: u64, combine: Combine, bias: Option<View<'_>>) -> Result<()> {
        let ctx = out.t.ctx();
        let kernel = Kernel { name: "chunks_finish", source: FINISH, entry: "finish", constants: vec![] };
        let (wp, sp) = self.partials().bind(0, "partials")?;
        // Without a bias the kernel's bias binding (never read) takes the partials again.
        let (wb, sb) = match &bias {
            Some(b) => b.bind(2, "bias")?,
            None => self.partials().bind(2, "partials")?,
        };
        let (wo, so) = out.bind(7, "out")?;
        let flags = match combine {
            Combine::Overwrite => 0,
            Combine::AddEach => 1,
            Combine::AddTotal => 2,
        } | if bias.is_some() { 4 } else { 0 };
        let p = FinishParams {
            cols: idx32(out.len)?,
            chunks: idx32(self.chunks)?,
            stride: idx32(self.width)?,
            part: sp + idx32(first)?,
            out: so,
            bias: sb,
            bias_len: idx32(bias.map_or(1, |b| b.len))?,
            flags,
        };
        dispatch(ctx, &kernel, &[wp, wb, wo], &p, groups(out.len))
    }
}
