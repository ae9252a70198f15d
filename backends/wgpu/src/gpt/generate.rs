//! Generation on the GPU with a KV cache: the prompt pass once per unique
//! prompt (its keys and values serve all G samples), then one-token steps
//! over the N rows, each step's keys and values appended to a cache. Tokens
//! are drawn on the device from the given uniforms and feed the next step
//! there; the host reads the rollout once at the end.

use wapo_core::Result;
use wapo_core::rl::{Generation, Rollout, Rows};

use super::kernels::attention::{Heads, attention_decode};
use super::kernels::encoder::{Positions, encoder_forward};
use super::kernels::rope::RopePositions;
use super::kernels::rows::{add, copy_rows};
use super::kernels::sample::sample;
use super::kernels::{View, alloc, download_u32, upload_u32, write};
use super::model::{HostRows, Net, forward, linear};
use crate::tensor::WgpuTensor;

pub(crate) fn generate(net: Net<'_>, req: &Generation<'_>) -> Result<Rollout> {
    let (dev, cfg, lay) = (net.dev, net.cfg, net.lay);
    let (c, m, v, g, steps) = (cfg.channels, cfg.mlp, cfg.vocab, req.g, req.steps);
    let (qkvc, fcc) = (cfg.qkv_channels(), cfg.fc_channels());
    let (n, p) = (req.b * g, req.p);
    let pv = |rg: &std::ops::Range<usize>| net.p(rg);
    let rows = Rows { b: req.b, g: 1, p, s: 0 };
    let host = HostRows::new(req.prompts, req.pad, &vec![0; req.b], rows, 1);
    let prompt = forward(net, host, rows, false)?;
    let pad = prompt.pad.as_ref().map(View::all);
    // Row i's position at step s: p + s − pad[i / G], counted from its
    // prompt's first real token.
    let q = |i: usize| req.pad.get(i / g).copied().unwrap_or(0);
    let pos: Vec<u32> = (0..steps).flat_map(|s| (0..n).map(move |i| (p + s - q(i)) as u32)).collect();
    let pos = upload_u32(dev, &pos)?;

    let tokens = alloc(dev, n * steps)?;
    let logprobs = alloc(dev, n * steps)?;
    let uniforms = alloc(dev, req.uniforms.len().max(1))?;
    let tau = if req.temperature > 0.0 { req.temperature as f32 } else { 0.0 };
    if tau > 0.0 {
        write(&uniforms, 0, req.uniforms)?;
    }
    let (tok, lp, uni) = (View::all(&tokens), View::all(&logprobs), View::all(&uniforms));
    sample(tok, lp, View::all(&prompt.logits), uni, n, v, g, steps, 0, tau)?;

    let caches = (0..cfg.layers).map(|_| alloc(dev, n * steps * qkvc)).collect::<Result<Vec<_>>>()?;
    let [x, ln, qkv, atty, tmp, res2, fch, act, logits] = [c, c, qkvc, c, c, c, fcc, m, v].map(|w| alloc(dev, n * w));
    let (x, ln, qkv, atty, tmp, res2, fch, act, logits) = (x?, ln?, qkv?, atty?, tmp?, res2?, fch?, act?, logits?);
    let (mean, rstd) = (alloc(dev, n)?, alloc(dev, n)?);
    let norm = |out: &WgpuTensor, inp: &WgpuTensor, w, b| net.norm(out, &mean, &rstd, inp, w, b, n);
    for s in 0..steps.saturating_sub(1) {
        let at = View::all(&pos).sub((s * n) as u64, n as u64);
        encoder_forward(
            View::all(&x),
            pv(&lay.wte),
            pv(&lay.wpe),
            tok.sub(s as u64, (n * steps - s) as u64),
            steps,
            Positions::PerRow(at),
            n,
            c,
        )?;
        for (l, w) in lay.layers.iter().enumerate() {
            norm(&ln, &x, &w.ln1_w, &w.ln1_b)?;
            linear(&qkv, &ln, pv(&w.qkv_w), net.bias(&w.qkv_b), n, c, qkvc)?;
            net.rotate(&qkv, RopePositions::PerRow(at), n, false)?;
            let cache = View::all(&caches[l]);
            let slot = (s * qkvc) as u64;
            copy_rows(cache.sub(slot, cache.len - slot), steps * qkvc, View::all(&qkv), qkvc, n, qkvc)?;
            let prefix = View::all(&prompt.layers[l].qkv);
            let (out, step) = (View::all(&atty), View::all(&qkv));
            attention_decode(out, step, prefix, cache, pad, n, g, p, steps, s + 1, Heads::of(cfg))?;
            linear(&tmp, &atty, pv(&w.proj_w), net.bias(&w.proj_b), n, c, c)?;
            add(View::all(&res2), View::all(&x), View::all(&tmp))?;
            norm(&ln, &res2, &w.ln2_w, &w.ln2_b)?;
            linear(&fch, &ln, pv(&w.fc_w), net.bias(&w.fc_b), n, c, fcc)?;
            net.activation(&act, &fch, n)?;
            linear(&tmp, &act, pv(&w.fcproj_w), net.bias(&w.fcproj_b), n, m, c)?;
            add(View::all(&x), View::all(&res2), View::all(&tmp))?;
        }
        norm(&ln, &x, &lay.lnf_w, &lay.lnf_b)?;
        linear(&logits, &ln, pv(&lay.lm_head), None, n, c, v)?;
        sample(tok, lp, View::all(&logits), uni, n, v, 1, steps, s + 1, tau)?;
    }
    let tokens = download_u32(&tokens, n * steps)?;
    let logprobs = logprobs.to_vec()?;
    Ok(Rollout { n, len: steps, tokens, logprobs, lengths: vec![steps; n] })
}
