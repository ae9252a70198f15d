//! The GELU activation of the GPT (tanh approximation) and its gradient,
//! elementwise.

#[cfg(test)]
mod tests;

use wapo_core::{Error, Result};

use super::View;
use super::rows::{batches, distinct, groups};
use crate::launch::{Kernel, dispatch, idx32, kernel_params};

const SOURCE: &str = concat!(include_str!("../common.wgsl"), include_str!("gelu.wgsl"));

kernel_params! {
    /// P of gelu.wgsl, for both directions; shifts are of the bound windows.
    struct GeluParams {
        /// Elements.
        n: u32,
        /// out (forward) or dinp (backward).
        out: u32,
        inp: u32,
        /// Backward only.
        dout: u32,
    }
}

fn kernel(name: &'static str, entry: &'static str) -> Kernel {
    Kernel { name, source: SOURCE, entry, constants: vec![] }
}

/// out = GELU(inp) (tanh approximation), elementwise; same length, different
/// tensors.
pub fn gelu_forward(out: View<'_>, inp: View<'_>) -> Result<()> {
    if inp.len != out.len {
        return Err(Error::Backend(format!("gelu_forward: out has {} elements, inp {}", out.len, inp.len)));
    }
    distinct(&[(&out, "out")], &[(&inp, "inp")])?;
    let ctx = out.t.ctx();
    let k = kernel("gpt_gelu_forward", "forward");
    for (e0, n) in batches(ctx, out.len, 1, 1)? {
        let (wo, so) = out.sub(e0, n).bind(7, "out")?;
        let (wi, si) = inp.sub(e0, n).bind(0, "inp")?;
        let p = GeluParams { n: idx32(n)?, out: so, inp: si, ..Default::default() };
        dispatch(ctx, &k, &[wi, wo], &p, groups(n))?;
    }
    Ok(())
}

/// dinp = GELU'(inp)·dout (overwrites), elementwise; same lengths, dinp in a
/// tensor of its own.
pub fn gelu_backward(dinp: View<'_>, inp: View<'_>, dout: View<'_>) -> Result<()> {
    if inp.len != dinp.len || dout.len != dinp.len {
        return Err(Error::Backend(format!(
            "gelu_backward: dinp, inp, dout have {}, {}, {} elements",
            dinp.len, inp.len, dout.len
        )));
    }
    distinct(&[(&dinp, "dinp")], &[(&inp, "inp"), (&dout, "dout")])?;
    let ctx = dinp.t.ctx();
    let k = kernel("gpt_gelu_backward", "backward");
    for (e0, n) in batches(ctx, dinp.len, 1, 1)? {
        let (wo, so) = dinp.sub(e0, n).bind(7, "dinp")?;
        let (wi, si) = inp.sub(e0, n).bind(0, "inp")?;
        let (wd, sd) = dout.sub(e0, n).bind(1, "dout")?;
        let p = GeluParams { n: idx32(n)?, out: so, inp: si, dout: sd };
        dispatch(ctx, &k, &[wi, wd, wo], &p, groups(n))?;
    }
    Ok(())
}
