//! Token sampling of generation: inverse CDF over softmax(z/τ) with given
//! uniforms, or greedy decoding, with the log-probability of each pick.
//! The unrestricted kernel (sample.wgsl) and the top-k / top-p one
//! ([`sample_truncated`]) share the draw (step.wgsl) and the dispatch
//! ([`Step`]).

#[cfg(test)]
mod tests;
mod truncated;

pub use truncated::{Truncation, sample_truncated};

use wapo_core::{Error, Result};

use super::View;
use super::rows::{batches, distinct, need};
use crate::launch::{Kernel, Params, dispatch, idx32, kernel_params, wgsl_struct};

const SOURCE: &str = concat!(
    include_str!("../common.wgsl"),
    include_str!("math.wgsl"),
    include_str!("step.wgsl"),
    include_str!("sample.wgsl")
);

wgsl_struct! {
    /// The layout of one dispatch's rows, `P.step` of both sampling
    /// kernels: the geometry of [`Step`], the shifts of the four views
    /// bound and τ.
    pub(super) struct StepParams {
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
        /// A nested struct's size is a multiple of 16 bytes.
        pad0: u32,
        pad1: u32,
    }
}

kernel_params! {
    /// P of sample.wgsl.
    struct SampleParams {
        step: StepParams,
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
    step.dispatch(&k, !greedy, tau, |step| SampleParams { step, greedy: greedy as u32 })
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

impl<'a> Step<'a> {
    /// Checks the views' sizes and that outputs and inputs do not alias,
    /// then dispatches `kernel` per batch of rows that the binding limits
    /// allow, with the parameters `params` makes of the batch's layout.
    /// Without `uses_uniforms` (greedy) the logits stand in for the
    /// uniforms' binding, so that any view may be passed for them.
    pub fn dispatch<P: Params>(
        &self,
        kernel: &Kernel,
        uses_uniforms: bool,
        tau: f32,
        params: impl Fn(StepParams) -> P,
    ) -> Result<()> {
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
            let step = StepParams {
                rows: idx32(ni)?,
                v: idx32(v)?,
                div: idx32(div)?,
                steps: idx32(steps)?,
                s: idx32(s)?,
                tokens: st,
                logprobs: sl,
                logits: sz,
                uniforms: su,
                tau,
                ..Default::default()
            };
            dispatch(logits.t.ctx(), kernel, &[wz, wu, wl, wt], &params(step), ni)?;
        }
        Ok(())
    }
}
