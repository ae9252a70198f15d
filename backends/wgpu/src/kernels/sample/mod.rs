//! Token sampling of generation: inverse CDF over softmax(z/τ) with given
//! uniforms, or greedy decoding, with the log-probability of each pick.

#[cfg(test)]
mod tests;
mod truncated;

pub use truncated::{Truncation, sample_truncated};

use wapo_core::{Error, Result};

use super::View;
use super::rows::{batches, distinct, need};
use crate::launch::{Kernel, dispatch, idx32, kernel_params};

const SOURCE: &str = concat!(include_str!("../common.wgsl"), include_str!("math.wgsl"), include_str!("sample.wgsl"));

kernel_params! {
    /// P of sample.wgsl; the four shifts are those of the views bound
    /// (see [`Bound`]).
    struct SampleParams {
        rows: u32,
        v: u32,
        div: u32,
        steps: u32,
        s: u32,
        tokens: u32,
        logprobs: u32,
        logits: u32,
        uniforms: u32,
        /// 1 when greedy.
        tau: f32,
        /// 0 or 1.
        greedy: u32,
    }
}

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
    let step = Step { tokens, logprobs, logits, uniforms, n, v, div, steps, s };
    let k = Kernel { name: "gpt_sample_step", source: SOURCE, entry: "sample", constants: vec![] };
    step.for_each_batch(!greedy, |b| {
        let [sz, su, sl, st] = b.at;
        let p = SampleParams {
            rows: b.rows,
            v: idx32(v)?,
            div: idx32(div)?,
            steps: idx32(steps)?,
            s: idx32(s)?,
            tokens: st,
            logprobs: sl,
            logits: sz,
            uniforms: su,
            tau,
            greedy: greedy as u32,
        };
        dispatch(logits.t.ctx(), &k, &b.windows, &p, u64::from(b.rows))
    })?;
    Ok(())
}

/// The layout shared by the sampling kernels: n rows drawing step s of
/// `steps`, row i reading logits row i / div.
pub(super) struct Step<'a> {
    pub tokens: View<'a>,
    pub logprobs: View<'a>,
    pub logits: View<'a>,
    pub uniforms: View<'a>,
    pub n: u64,
    pub v: u64,
    pub div: u64,
    pub steps: u64,
    pub s: u64,
}

/// One dispatch's rows, bound: windows of logits, uniforms, logprobs,
/// tokens (slots 0, 1, 6, 7) and each view's first index in its binding.
pub(super) struct Bound<'a> {
    pub rows: u32,
    pub windows: [crate::launch::Window<'a>; 4],
    pub at: [u32; 4],
}

impl<'a> Step<'a> {
    /// Checks the views' sizes and that outputs and inputs do not alias,
    /// then calls `launch` per batch of rows that the binding limits allow.
    /// Without `uses_uniforms` (greedy) the logits stand in for the uniforms'
    /// binding, so that any view may be passed for them.
    pub fn for_each_batch(&self, uses_uniforms: bool, mut launch: impl FnMut(Bound<'a>) -> Result<()>) -> Result<()> {
        let Step { tokens, logprobs, logits, n, v, div, steps, s, .. } = *self;
        let out_len = (n - 1) * steps + s + 1;
        let rows = n.div_ceil(div);
        need(&tokens, out_len, "tokens")?;
        need(&logprobs, out_len, "logprobs")?;
        need(&logits, rows * v, "logits")?;
        let uniforms = if uses_uniforms { self.uniforms } else { logits };
        if uses_uniforms {
            need(&uniforms, out_len, "uniforms")?;
        }
        distinct(&[(&tokens, "tokens"), (&logprobs, "logprobs")], &[(&logits, "logits"), (&uniforms, "uniforms")])?;
        for (r0, nr) in batches(logits.t.ctx(), rows, v, 1)? {
            let i0 = r0 * div;
            let ni = (nr * div).min(n - i0);
            let len = (ni - 1) * steps + s + 1;
            let (wz, sz) = logits.sub(r0 * v, nr * v).bind(0, "logits")?;
            let u = if uses_uniforms { uniforms.sub(i0 * steps, len) } else { uniforms.sub(0, 1) };
            let (wu, su) = u.bind(1, "uniforms")?;
            let (wl, sl) = logprobs.sub(i0 * steps, len).bind(6, "logprobs")?;
            let (wt, st) = tokens.sub(i0 * steps, len).bind(7, "tokens")?;
            launch(Bound { rows: idx32(ni)?, windows: [wz, wu, wl, wt], at: [sz, su, sl, st] })?;
        }
        Ok(())
    }
}
