//! Row reductions over the last axis and the gathers/scatters of group
//! values: the primitives dfdx 0.13 has no dynamic-shape form of.

use rayon::prelude::*;
use wapo_core::error::Pos;
use wapo_core::{Error, Reduce, Result, Shape};

/// Rows per rayon task are sized to about this many elements.
const PAR_GRAIN: usize = 1 << 15;

/// (.., C) → (..), as `HostTensor` reduces: sequential per row.
pub(crate) fn reduce_last(x: &[f32], shape: Shape, op: Reduce) -> Vec<f32> {
    let c = shape.last().max(1);
    let f = move |row: &[f32]| match op {
        Reduce::Sum => row.iter().fold(0.0f32, |s, v| s + v),
        Reduce::Max => row.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v)),
        Reduce::LogSumExp => {
            let m = row.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v));
            if !m.is_finite() {
                return m;
            }
            m + row.iter().fold(0.0f32, |s, v| s + (v - m).exp()).ln()
        }
    };
    if x.len() < PAR_GRAIN {
        x.chunks(c).map(f).collect()
    } else {
        x.par_chunks(c).with_min_len(PAR_GRAIN.div_ceil(c)).map(f).collect()
    }
}

/// `out[r] = x[r, idx[r]]`.
pub(crate) fn gather_last(x: &[f32], shape: Shape, idx: &[f32]) -> Result<Vec<f32>> {
    let c = shape.last();
    idx.iter()
        .enumerate()
        .map(|(r, j)| {
            if *j >= 0.0 && (*j as usize) < c {
                Ok(x[r * c + *j as usize])
            } else {
                Err(Error::Invalid {
                    field: "gather index",
                    pos: Pos::at1(r),
                    reason: "index out of range of the last axis",
                })
            }
        })
        .collect()
}

/// `out[s] = Σ_{r: seg[r] = s} x[r]`, summed in row order.
pub(crate) fn segment_sum(x: &[f32], seg: &[f32], n: usize) -> Result<Vec<f32>> {
    let mut out = vec![0.0f32; n];
    for (v, s) in x.iter().zip(seg) {
        if !(*s >= 0.0 && (*s as usize) < n) {
            return Err(Error::Invalid { field: "segment ids", pos: Pos::NONE, reason: "segment id out of range" });
        }
        out[*s as usize] += v;
    }
    Ok(out)
}

/// `out[r] = x[idx[r]]`.
pub(crate) fn take(x: &[f32], idx: &[f32]) -> Result<Vec<f32>> {
    idx.iter()
        .map(|i| {
            if *i >= 0.0 && (*i as usize) < x.len() {
                Ok(x[*i as usize])
            } else {
                Err(Error::Invalid { field: "take index", pos: Pos::NONE, reason: "index out of range" })
            }
        })
        .collect()
}
