//! Generation on the GPU with a KV cache, as the CPU's `model/decode.rs`:
//! the prompt pass once per unique prompt (its keys and values serve all G
//! samples), then one-token steps over the N rows through the training's
//! block ([`super::block`]) at T = 1, each step's keys and values appended
//! to a cache. Tokens are drawn on the device from the given uniforms
//! (top-k / top-p there too) and feed the next step there; the host reads
//! the rollout at the end.
//!
//! Stop tokens need nothing on the device: a row's tokens after its stop
//! token change only that row's own later tokens, which the host then
//! overwrites with the stop token (ℓ° = 0), as the CPU's rows repeat it.
//! Every [`STOP_CHECK`] steps the host reads the tokens and ends the
//! generation once every row has stopped.

use wapo_core::Result;
use wapo_core::rl::{Generation, Rollout, Rows, Sampling};

use super::block::{LayerActs, Net, Norm, linear};
use super::forward::{HostRows, forward};
use crate::kernels::attention::{Heads, attention_decode};
use crate::kernels::encoder::{Positions, encoder_forward};
use crate::kernels::rope::RopePositions;
use crate::kernels::rows::copy_rows;
use crate::kernels::sample::{Truncation, sample, sample_truncated};
use crate::kernels::{View, alloc, download_u32, upload_u32, write};
use crate::tensor::WgpuTensor;

/// Steps between the host's checks whether every row has stopped (each
/// check waits for the device).
const STOP_CHECK: usize = 8;

pub(crate) fn generate(net: Net<'_>, req: &Generation<'_>, dec: &Sampling) -> Result<Rollout> {
    let (dev, cfg, lay) = (net.dev, net.cfg, net.lay);
    let (c, v, g, steps) = (cfg.channels, cfg.vocab, req.g, req.steps);
    let qkvc = cfg.qkv_channels();
    let (n, p) = (req.b * g, req.p);
    let pv = |rg: &std::ops::Range<usize>| net.p(rg);
    let rows = Rows { b: req.b, g: 1, p, s: 0 };
    let host = HostRows::new(req.prompts, req.pad, &vec![0; req.b], rows, 1);
    let prompt = forward(net, host, rows, false, true)?;
    let Some(prompt_logits) = &prompt.logits else {
        return Err(wapo_core::Error::Backend("the prompt pass made no logits".into()));
    };
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
    // The CPU's rule: truncation applies to sampling only, not to greedy decoding.
    let cut = (tau > 0.0 && dec.truncates(v)).then_some(Truncation { top_k: dec.top_k, top_p: dec.top_p as f32 });
    let draw = |logits: &WgpuTensor, div: usize, s: usize| match cut {
        Some(cut) => sample_truncated(tok, lp, View::all(logits), uni, n, v, div, steps, s, tau, cut),
        None => sample(tok, lp, View::all(logits), uni, n, v, div, steps, s, tau),
    };
    draw(prompt_logits, g, 0)?;

    let caches = (0..cfg.layers).map(|_| alloc(dev, n * steps * qkvc)).collect::<Result<Vec<_>>>()?;
    // One step's buffers, rewritten by every layer: the block's saved
    // activations serve no backward here.
    let (x, tmp, logits) = (alloc(dev, n * c)?, alloc(dev, n * c)?, alloc(dev, n * v)?);
    let (la, lnf) = (LayerActs::new(dev, cfg, n)?, Norm::new(dev, n, c)?);
    for s in 0..steps.saturating_sub(1) {
        if !dec.stop.is_empty() && s > 0 && s % STOP_CHECK == 0 {
            let so_far = download_u32(&tokens, n * steps)?;
            if (0..n).all(|i| so_far[i * steps..i * steps + s].iter().any(|y| dec.stop.contains(y))) {
                break;
            }
        }
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
            net.block_forward(w, &la, &x, &x, &tmp, n, RopePositions::PerRow(at), |la| {
                // The step's keys and values join the cache before attention reads it.
                let cache = View::all(&caches[l]);
                let slot = (s * qkvc) as u64;
                copy_rows(cache.sub(slot, cache.len - slot), steps * qkvc, View::all(&la.qkv), qkvc, n, qkvc)?;
                let prefix = View::all(&prompt.layers[l].qkv);
                let (out, step) = (View::all(&la.atty), View::all(&la.qkv));
                attention_decode(out, step, prefix, cache, pad, n, g, p, steps, s + 1, Heads::of(cfg))
            })?;
        }
        net.norm(&lnf, &x, &lay.lnf_w, &lay.lnf_b, n)?;
        linear(&logits, &lnf.out, pv(&lay.lm_head), None, n, c, v)?;
        draw(&logits, 1, s + 1)?;
    }
    let mut tokens = download_u32(&tokens, n * steps)?;
    let mut logprobs = logprobs.to_vec()?;
    let lengths = stop_rows(&mut tokens, &mut logprobs, steps, &dec.stop);
    Ok(Rollout { n, len: steps, tokens, logprobs, lengths })
}

/// Ends each row of (N, steps) `tokens` at its first stop token: the
/// positions after it repeat it with ℓ° = 0. Returns the rows' lengths,
/// the stop token included (`steps` when a row never stopped).
fn stop_rows(tokens: &mut [u32], logprobs: &mut [f32], steps: usize, stop: &[u32]) -> Vec<usize> {
    let rows = tokens.chunks_mut(steps).zip(logprobs.chunks_mut(steps));
    rows.map(|(t, l)| match t.iter().position(|y| stop.contains(y)) {
        Some(at) => {
            let y = t[at];
            t[at + 1..].fill(y);
            l[at + 1..].fill(0.0);
            at + 1
        }
        None => steps,
    })
    .collect()
}
