//! Rotary position embeddings of the llama family (the Hugging Face
//! `rotate_half` layout), applied in place to the q and k heads of q|k|v
//! rows; the backward is the same rotation transposed. The cos/sin tables
//! are computed once on the host in f64 and rounded once, as the CPU
//! backend's are, so both rotate by the same f32 numbers.

#[cfg(test)]
mod tests;

use wapo_core::{Error, Result};

use super::rows::{groups, need};
use super::{View, alloc, write};
use crate::context::WgpuDevice;
use crate::launch::{Kernel, dispatch, idx32, kernel_params};
use crate::tensor::WgpuTensor;

const SOURCE: &str = concat!(include_str!("../common.wgsl"), include_str!("rope.wgsl"));

kernel_params! {
    /// P of rope.wgsl.
    struct RopeParams {
        /// Pairs in all: rows·heads·half.
        pairs: u32,
        /// Floats per row, heads rotated per row, pairs per head (head size / 2).
        width: u32,
        heads: u32,
        half: u32,
        x: u32,
        pos: u32,
        cos: u32,
        sin: u32,
        /// 1: positions per row from `positions`; 0: `same` for every row.
        per_row: u32,
        same: u32,
        /// 1: the backward (rotation by −angle).
        inverse: u32,
        /// Positions in the tables; one past them gives NaN.
        npos: u32,
    }
}

/// cos and sin of position·inv_freq(i) for every position of the context,
/// (context, hs/2) each on the device.
pub struct RopeTables {
    pub half: usize,
    pub positions: usize,
    pub cos: WgpuTensor,
    pub sin: WgpuTensor,
}

impl RopeTables {
    pub fn new(dev: &WgpuDevice, inv_freq: &[f64], context: usize) -> Result<Self> {
        let half = inv_freq.len();
        let n = context * half;
        let (mut cos, mut sin) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for p in 0..context {
            for &f in inv_freq {
                let a = p as f64 * f;
                cos.push(a.cos() as f32);
                sin.push(a.sin() as f32);
            }
        }
        let (tc, ts) = (alloc(dev, n.max(1))?, alloc(dev, n.max(1))?);
        write(&tc, 0, &cos)?;
        write(&ts, 0, &sin)?;
        Ok(RopeTables { half, positions: context, cos: tc, sin: ts })
    }
}

/// Where the rows are in the sequence.
#[derive(Clone, Copy)]
pub enum RopePositions<'a> {
    /// u32 (rows): the position of each row.
    PerRow(View<'a>),
    /// One position for every row (a generation step).
    Same(u32),
}

/// Rotates in place the first `heads` heads (of 2·half floats each, from
/// the row start) of each of the `rows` rows of `width` floats of `x` by
/// its position; `inverse` applies the transpose (the backward). A
/// per-row position beyond the tables gives a NaN head; a
/// `RopePositions::Same` beyond them is an error.
#[allow(clippy::too_many_arguments)]
pub fn rope(
    x: View<'_>,
    tables: &RopeTables,
    pos: RopePositions<'_>,
    rows: usize,
    width: usize,
    heads: usize,
    inverse: bool,
) -> Result<()> {
    let half = tables.half;
    if heads * 2 * half > width {
        return Err(Error::Backend(format!("rope: {heads} heads of {} floats exceed rows of {width}", 2 * half)));
    }
    let pairs = (rows * heads * half) as u64;
    if pairs == 0 {
        return Ok(());
    }
    need(&x, (rows * width) as u64, "x")?;
    let (wc, sc) = View::all(&tables.cos).bind(0, "cos")?;
    let (ws, ss) = View::all(&tables.sin).bind(1, "sin")?;
    let (wx, sx) = x.sub(0, (rows * width) as u64).bind(5, "x")?;
    let mut wins = vec![wc, ws, wx];
    let (per_row, same, sp) = match pos {
        RopePositions::PerRow(p) => {
            need(&p, rows as u64, "pos")?;
            let (wp, sp) = p.sub(0, rows as u64).bind(2, "pos")?;
            wins.push(wp);
            (1, 0, sp)
        }
        RopePositions::Same(p) => {
            if p as usize >= tables.positions {
                return Err(Error::Backend(format!(
                    "rope: position {p} beyond the {} of the tables",
                    tables.positions
                )));
            }
            // The kernel declares the positions binding either way; it is not read.
            wins.push(View::all(&tables.cos).bind(2, "pos")?.0);
            (0, p, 0)
        }
    };
    let p = RopeParams {
        pairs: idx32(pairs)?,
        width: idx32(width as u64)?,
        heads: heads as u32,
        half: half as u32,
        x: sx,
        pos: sp,
        cos: sc,
        sin: ss,
        per_row,
        same,
        inverse: u32::from(inverse),
        npos: idx32(tables.positions as u64)?,
    };
    let k = Kernel { name: "llama_rope", source: SOURCE, entry: "rotate", constants: vec![] };
    dispatch(x.t.ctx(), &k, &wins, &p, groups(pairs))
}
