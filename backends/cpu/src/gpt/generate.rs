//! Generation with a KV cache: one prompt pass per unique prompt (its keys
//! and values serve all G samples), then one-token steps over N rows whose
//! new keys and values go to a preallocated cache. No gradient bookkeeping.

use rayon::prelude::*;
use wapo_core::rl::{Generation, Rollout};

use super::attention::{Heads, Keys, Rows, attend};
use super::block::{LayerActs, Net, zeroed};
use super::kernels::*;
use super::model::{Acts, forward};

/// Buffers of the one-token steps, reused across calls.
#[derive(Default)]
pub struct GenScratch {
    cache: Vec<Vec<f32>>, // L × (N, steps, C + 2·H_kv·hs)
    x: Vec<f32>,
    y: Vec<f32>,
    tmp: Vec<f32>,
    layer: LayerActs,
    lnf: [Vec<f32>; 3],
}

pub fn generate(net: Net<'_>, acts: &mut Acts, gs: &mut GenScratch, req: &Generation<'_>) -> Rollout {
    let (cfg, lay, params) = (net.cfg, net.lay, net.params);
    let (c, v, g, steps) = (cfg.channels, cfg.vocab, req.g, req.steps);
    let n = req.b * g;
    let hd = Heads::new(cfg);
    let w3 = hd.width();
    let prompt_rows = Rows { b: req.b, g: 1, p: req.p, s: 0 };
    let dummy = vec![0u32; req.b];
    forward(net, acts, req.prompts, &dummy, prompt_rows, 1);
    let mut tokens = vec![0u32; n * steps];
    let mut logprobs = vec![0f32; n * steps];
    for i in 0..n {
        let row = &acts.logits[(i / g) * v..(i / g + 1) * v];
        let (y, l) = sample(row, req.temperature, req.uniforms.get(i * steps).copied());
        tokens[i * steps] = y;
        logprobs[i * steps] = l;
    }
    gs.cache.resize_with(cfg.layers, Vec::new);
    for cache in &mut gs.cache {
        zeroed(cache, n * steps * w3);
    }
    let stride = req.p + steps;
    for s in 0..steps.saturating_sub(1) {
        let toks: Vec<u32> = (0..n).map(|i| tokens[i * steps + s]).collect();
        let pos = vec![req.p + s; n];
        encoder_forward(zeroed(&mut gs.x, n * c), &toks, &pos, &params[lay.wte.clone()], &params[lay.wpe.clone()]);
        for l in 0..cfg.layers {
            let (cache, pre_all) = (&mut gs.cache[l], &acts.layers[l].qkv);
            let out = zeroed(&mut gs.y, n * c);
            net.block_forward(&lay.layers[l], &mut gs.layer, &gs.x, out, &pos, &mut gs.tmp, |atty, probs, qkv| {
                for i in 0..n {
                    cache[(i * steps + s) * w3..][..w3].copy_from_slice(&qkv[i * w3..(i + 1) * w3]);
                }
                let cache = &cache[..];
                zeroed(atty, n * c)
                    .par_chunks_mut(c)
                    .zip(zeroed(probs, n * cfg.heads * stride).par_chunks_mut(cfg.heads * stride))
                    .enumerate()
                    .for_each(|(i, (o, pb))| {
                        let b = i / g;
                        let keys = Keys {
                            pre: &pre_all[b * req.p * w3..(b + 1) * req.p * w3],
                            np: req.p,
                            suf: &cache[i * steps * w3..(i + 1) * steps * w3],
                            ns: s + 1,
                        };
                        attend(o, pb, stride, &qkv[i * w3..(i + 1) * w3], keys, hd);
                    });
            });
            std::mem::swap(&mut gs.x, &mut gs.y);
        }
        let [ln, mean, rstd] = &mut gs.lnf;
        net.norm_forward(ln, mean, rstd, &gs.x, &lay.lnf_w, &lay.lnf_b);
        let logits = zeroed(&mut gs.tmp, n * v);
        matmul_forward(logits, ln, &params[lay.lm_head.clone()], &[], c, v);
        for i in 0..n {
            let u = req.uniforms.get(i * steps + s + 1).copied();
            let (y, l) = sample(&logits[i * v..(i + 1) * v], req.temperature, u);
            tokens[i * steps + s + 1] = y;
            logprobs[i * steps + s + 1] = l;
        }
    }
    // The prompt pass overwrote the saved activations: no backward from here.
    acts.rows = None;
    Rollout { n, len: steps, tokens, logprobs }
}

/// Draws a token from softmax(z/τ) by inverse CDF with `u`, or the argmax
/// when τ = 0 (or no uniform); returns it with ℓ at τ (τ = 1 when greedy).
pub fn sample(z: &[f32], temperature: f64, u: Option<f32>) -> (u32, f32) {
    let tau = if temperature > 0.0 { temperature } else { 1.0 };
    let max = z.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64 / tau));
    let sum: f64 = z.iter().map(|&x| (x as f64 / tau - max).exp()).sum();
    let lse = max + sum.ln();
    let pick = match u {
        Some(u) if temperature > 0.0 => {
            let target = u as f64 * sum;
            let mut acc = 0.0;
            let mut pick = None;
            for (k, &x) in z.iter().enumerate() {
                let e = (x as f64 / tau - max).exp();
                acc += e;
                if e > 0.0 && target < acc {
                    pick = Some(k);
                    break;
                }
            }
            // Rounding can leave `target` just above the running sum: take
            // the last token with mass.
            pick.unwrap_or_else(|| last_with_mass(z, tau, max))
        }
        _ => argmax(z),
    };
    (pick as u32, (z[pick] as f64 / tau - lse) as f32)
}

fn argmax(z: &[f32]) -> usize {
    let mut best = 0;
    for (k, &x) in z.iter().enumerate() {
        if x > z[best] {
            best = k;
        }
    }
    best
}

fn last_with_mass(z: &[f32], tau: f64, max: f64) -> usize {
    z.iter().rposition(|&x| (x as f64 / tau - max).exp() > 0.0).unwrap_or(0)
}
