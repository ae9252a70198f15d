//! Generation on the GPU with a KV cache: the prompt pass once per unique
//! prompt (its keys and values serve all G samples), then one-token steps
//! over the N rows, each step's keys and values appended to a cache. Tokens
//! are drawn on the device from the given uniforms and feed the next step
//! there; the host reads the rollout once at the end.

use wapo_core::Result;
use wapo_core::rl::layout::Layout;
use wapo_core::rl::{Generation, ModelConfig, Rollout, Rows};

use super::kernels::attention::{Heads, attention_decode};
use super::kernels::encoder::{Positions, encoder_forward};
use super::kernels::gelu::gelu_forward;
use super::kernels::layernorm::layernorm_forward;
use super::kernels::rows::{add, copy_rows};
use super::kernels::sample::sample;
use super::kernels::{View, alloc, download_u32, write};
use super::model::{HostRows, forward, linear};
use crate::context::WgpuDevice;
use crate::tensor::WgpuTensor;

pub(crate) fn generate(
    dev: &WgpuDevice,
    cfg: &ModelConfig,
    lay: &Layout,
    params: &WgpuTensor,
    req: &Generation<'_>,
) -> Result<Rollout> {
    let (c, m, v, g, steps) = (cfg.channels, cfg.mlp, cfg.vocab, req.g, req.steps);
    let (n, p) = (req.b * g, req.p);
    let pv = |rg: &std::ops::Range<usize>| View::range(params, rg);
    let rows = Rows { b: req.b, g: 1, p, s: 0 };
    let host = HostRows::new(req.prompts, &vec![0; req.b], rows, 1);
    let prompt = forward(dev, cfg, lay, params, host, rows, false)?;

    let tokens = alloc(dev, n * steps)?;
    let logprobs = alloc(dev, n * steps)?;
    let uniforms = alloc(dev, req.uniforms.len().max(1))?;
    let tau = if req.temperature > 0.0 { req.temperature as f32 } else { 0.0 };
    if tau > 0.0 {
        write(&uniforms, 0, req.uniforms)?;
    }
    let (tok, lp, uni) = (View::all(&tokens), View::all(&logprobs), View::all(&uniforms));
    sample(tok, lp, View::all(&prompt.logits), uni, n, v, g, steps, 0, tau)?;

    let caches = (0..cfg.layers).map(|_| alloc(dev, n * steps * 3 * c)).collect::<Result<Vec<_>>>()?;
    let [x, ln, qkv, atty, tmp, res2, fch, fcg, logits] = [c, c, 3 * c, c, c, c, m, m, v].map(|w| alloc(dev, n * w));
    let (x, ln, qkv, atty, tmp, res2, fch, fcg, logits) = (x?, ln?, qkv?, atty?, tmp?, res2?, fch?, fcg?, logits?);
    let (mean, rstd) = (alloc(dev, n)?, alloc(dev, n)?);
    let norm = |out: &WgpuTensor, inp: &WgpuTensor, w: View<'_>, b: View<'_>| {
        layernorm_forward(View::all(out), View::all(&mean), View::all(&rstd), View::all(inp), w, b, n, c)
    };
    for s in 0..steps.saturating_sub(1) {
        let pos = Positions::Same((p + s) as u32);
        encoder_forward(
            View::all(&x),
            pv(&lay.wte),
            pv(&lay.wpe),
            tok.sub(s as u64, (n * steps - s) as u64),
            steps,
            pos,
            n,
            c,
        )?;
        for (l, w) in lay.layers.iter().enumerate() {
            norm(&ln, &x, pv(&w.ln1_w), pv(&w.ln1_b))?;
            linear(&qkv, &ln, pv(&w.qkv_w), Some(pv(&w.qkv_b)), n, c, 3 * c)?;
            let cache = View::all(&caches[l]);
            let slot = (s * 3 * c) as u64;
            copy_rows(cache.sub(slot, cache.len - slot), steps * 3 * c, View::all(&qkv), 3 * c, n, 3 * c)?;
            let prefix = View::all(&prompt.layers[l].qkv);
            attention_decode(View::all(&atty), View::all(&qkv), prefix, cache, n, g, p, steps, s + 1, Heads::of(cfg))?;
            linear(&tmp, &atty, pv(&w.proj_w), Some(pv(&w.proj_b)), n, c, c)?;
            add(View::all(&res2), View::all(&x), View::all(&tmp))?;
            norm(&ln, &res2, pv(&w.ln2_w), pv(&w.ln2_b))?;
            linear(&fch, &ln, pv(&w.fc_w), Some(pv(&w.fc_b)), n, c, m)?;
            gelu_forward(View::all(&fcg), View::all(&fch))?;
            linear(&tmp, &fcg, pv(&w.fcproj_w), Some(pv(&w.fcproj_b)), n, m, c)?;
            add(View::all(&x), View::all(&res2), View::all(&tmp))?;
        }
        norm(&ln, &x, pv(&lay.lnf_w), pv(&lay.lnf_b))?;
        linear(&logits, &ln, pv(&lay.lm_head), None, n, c, v)?;
        sample(tok, lp, View::all(&logits), uni, n, v, 1, steps, s + 1, tau)?;
    }
    let tokens = download_u32(&tokens, n * steps)?;
    let logprobs = logprobs.to_vec()?;
    Ok(Rollout { n, len: steps, tokens, logprobs, lengths: vec![steps; n] })
}
