//! Token sampling of generation: inverse CDF over softmax(z/τ) with given
//! uniforms, or greedy decoding, with the log-probability of each pick.

#[cfg(test)]
mod tests;
mod truncated;

pub use truncated::{Truncation, sample_truncated};

use wapo_core::{Error, Result};

use super::View;
use super::rows::{batches, distinct, need};
use crate::launch::{Kernel, dispatch, idx32};

const SOURCE: &str =
    concat!(include_str!("../../../kernels/common.wgsl"), include_str!("math.wgsl"), include_str!("sample.wgsl"));

/// One sampling step for n rows: the logits of row i are row (i / div) of
/// logits (·, v) (div = G right after the prompt pass, 1 afterwards);
/// u = uniforms[i·steps + s]; writes tokens[i·steps + s] (u32) and
/// logprobs[i·steps + s]. temperature 0 = greedy (uniforms then unused: any
/// non-empty view may be passed).
///
/// As the CPU's `sample`: token k is drawn when u·Σ < Σ_{j≤k} exp(z_j/τ − max)
/// (first such k with mass; the last token with mass when rounding leaves
/// none), ℓ = z_k/τ − logsumexp(z/τ); greedy takes the first maximum of z and
/// ℓ at τ = 1 (also for τ < 0 or NaN). The sums are f32 with compensation,
/// so a token differs from the f64 reference only when u·Σ is within a few
/// ulp of a CDF boundary. `tokens` and `logprobs` may be views of one tensor,
/// but not of the tensor of `logits` or `uniforms`.
#[allow(clippy::too_many_arguments)]
pub fn sample(
    tokens: View<'_>,
    logprobs: View<'_>,
    logits: View<'_>,
    uniforms: View<'_>,
    n: usize,
    v: usize,
    div: usize,
    steps: usize,
    s: usize,
    temperature: f32,
) -> Result<()> {
    let (n, v, div, steps, s) = (n as u64, v as u64, div as u64, steps as u64, s as u64);
    if n == 0 {
        return Ok(());
    }
    if v == 0 || div == 0 || s >= steps {
        return Err(Error::Backend(format!(
            "sample: v {v}, div {div}, step {s} of {steps}: need v, div ≥ 1, s < steps"
        )));
    }
    let greedy = temperature.is_nan() || temperature <= 0.0;
    let tau = if greedy { 1.0f32 } else { temperature };
    let out_len = (n - 1) * steps + s + 1;
    let rows = n.div_ceil(div);
    need(&tokens, out_len, "tokens")?;
    need(&logprobs, out_len, "logprobs")?;
    need(&logits, rows * v, "logits")?;
    // Greedy decoding reads no uniform: logits stand in for the binding, so
    // that any view (even one of the outputs' tensor) may be passed.
    let uniforms = if greedy { logits } else { uniforms };
    if !greedy {
        need(&uniforms, out_len, "uniforms")?;
    }
    distinct(&[(&tokens, "tokens"), (&logprobs, "logprobs")], &[(&logits, "logits"), (&uniforms, "uniforms")])?;
    let ctx = logits.t.ctx();
    let k = Kernel { name: "gpt_sample_step", source: SOURCE, entry: "sample", constants: vec![] };
    for (r0, nr) in batches(ctx, rows, v, 1)? {
        let i0 = r0 * div;
        let ni = (nr * div).min(n - i0);
        let len = (ni - 1) * steps + s + 1;
        let (wz, sz) = logits.sub(r0 * v, nr * v).bind(0, "logits")?;
        let (wu, su) = if greedy { uniforms.sub(0, 1) } else { uniforms.sub(i0 * steps, len) }.bind(1, "uniforms")?;
        let (wl, sl) = logprobs.sub(i0 * steps, len).bind(6, "logprobs")?;
        let (wt, st) = tokens.sub(i0 * steps, len).bind(7, "tokens")?;
        let p = [
            idx32(ni)?,
            idx32(v)?,
            idx32(div)?,
            idx32(steps)?,
            idx32(s)?,
            st,
            sl,
            sz,
            su,
            tau.to_bits(),
            greedy as u32,
        ];
        dispatch(ctx, &k, &[wz, wu, wl, wt], &p, ni)?;
    }
    Ok(())
}
