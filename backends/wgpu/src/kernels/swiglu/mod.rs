//! SwiGLU of the llama MLP: out = silu(gate)·up from the one gate | up
//! matmul's rows (rows, 2M), and its backward into (rows, 2M).

#[cfg(test)]
mod tests;

use wapo_core::Result;

use super::View;
use super::rows::{distinct, groups, need};
use crate::launch::{Kernel, dispatch, idx32, kernel_params};

const SOURCE: &str = concat!(include_str!("../common.wgsl"), include_str!("swiglu.wgsl"));

kernel_params! {
    /// P of swiglu.wgsl.
    struct SwigluParams {
        /// rows·M.
        n: u32,
        m: u32,
        fch: u32,
        dout: u32,
        out: u32,
    }
}

fn kernel(name: &'static str, entry: &'static str) -> Kernel {
    Kernel { name, source: SOURCE, entry, constants: vec![] }
}

/// out (rows, m) = silu(gate)·up, fch (rows, 2m) = gate | up.
pub fn swiglu_forward(out: View<'_>, fch: View<'_>, rows: usize, m: usize) -> Result<()> {
    let n = (rows * m) as u64;
    if n == 0 {
        return Ok(());
    }
    need(&out, n, "out")?;
    need(&fch, 2 * n, "fch")?;
    distinct(&[(&out, "out")], &[(&fch, "fch")])?;
    let (wf, sf) = fch.sub(0, 2 * n).bind(0, "fch")?;
    let (wo, so) = out.sub(0, n).bind(5, "out")?;
    let p = SwigluParams { n: idx32(n)?, m: m as u32, fch: sf, out: so, ..Default::default() };
    dispatch(out.t.ctx(), &kernel("llama_swiglu_forward", "forward"), &[wf, wo], &p, groups(n))
}

/// dfch (rows, 2m) = ∂/∂(gate | up) given dout (rows, m) (overwrites).
pub fn swiglu_backward(dfch: View<'_>, fch: View<'_>, dout: View<'_>, rows: usize, m: usize) -> Result<()> {
    let n = (rows * m) as u64;
    if n == 0 {
        return Ok(());
    }
    need(&dfch, 2 * n, "dfch")?;
    need(&fch, 2 * n, "fch")?;
    need(&dout, n, "dout")?;
    distinct(&[(&dfch, "dfch")], &[(&fch, "fch"), (&dout, "dout")])?;
    let (wf, sf) = fch.sub(0, 2 * n).bind(0, "fch")?;
    let (wd, sd) = dout.sub(0, n).bind(1, "dout")?;
    let (wo, so) = dfch.sub(0, 2 * n).bind(5, "dfch")?;
    let p = SwigluParams { n: idx32(n)?, m: m as u32, fch: sf, dout: sd, out: so };
    dispatch(dfch.t.ctx(), &kernel("llama_swiglu_backward", "backward"), &[wf, wd, wo], &p, groups(n))
}
