//! Generation with a KV cache: one prompt pass per unique prompt (its keys
//! and values serve all G samples), then one-token steps over N rows whose
//! new keys and values go to a preallocated cache. No gradient bookkeeping.

use rayon::prelude::*;
use wapo_core::rl::{Generation, ModelConfig, Rollout};

use super::attention::{Heads, Keys, Rows, attend};
use super::kernels::*;
use super::model::{Acts, forward, zeroed};
use wapo_core::rl::Layout;

/// Buffers of the one-token steps, reused across calls.
#[derive(Default)]
pub struct GenScratch {
    cache: Vec<Vec<f32>>, // L × (N, steps, 3C)
    bufs: [Vec<f32>; 9],
    mean: Vec<f32>,
    rstd: Vec<f32>,
}

pub fn generate(
    acts: &mut Acts,
    gs: &mut GenScratch,
    cfg: &ModelConfig,
    lay: &Layout,
    params: &[f32],
    req: &Generation<'_>,
) -> Rollout {
    let (c, m, v, g, steps) = (cfg.channels, cfg.mlp, cfg.vocab, req.g, req.steps);
    let n = req.b * g;
    let hd = Heads { c, h: cfg.heads };
    let prompt_rows = Rows { b: req.b, g: 1, p: req.p, s: 0 };
    let dummy = vec![0u32; req.b];
    forward(acts, cfg, lay, params, req.prompts, &dummy, prompt_rows, 1);
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
        zeroed(cache, n * steps * 3 * c);
    }
    let stride = req.p + steps;
    let [x, ln, qkv, atty, tmp, res2, fch, fcg, probs] = &mut gs.bufs;
    for s in 0..steps.saturating_sub(1) {
        let toks: Vec<u32> = (0..n).map(|i| tokens[i * steps + s]).collect();
        let pos = vec![req.p + s; n];
        encoder_forward(zeroed(x, n * c), &toks, &pos, &params[lay.wte.clone()], &params[lay.wpe.clone()]);
        for l in 0..cfg.layers {
            let w = &lay.layers[l];
            let pr = |rg: &std::ops::Range<usize>| &params[rg.clone()];
            let (mean, rstd) = (zeroed(&mut gs.mean, n), zeroed(&mut gs.rstd, n));
            layernorm_forward(zeroed(ln, n * c), mean, rstd, x, pr(&w.ln1_w), pr(&w.ln1_b));
            matmul_forward(zeroed(qkv, n * 3 * c), ln, pr(&w.qkv_w), pr(&w.qkv_b), c, 3 * c);
            let cache = &mut gs.cache[l];
            for i in 0..n {
                cache[(i * steps + s) * 3 * c..][..3 * c].copy_from_slice(&qkv[i * 3 * c..(i + 1) * 3 * c]);
            }
            let cache = &gs.cache[l];
            let pre_all = &acts.layers[l].qkv;
            let q_all = &qkv[..];
            zeroed(atty, n * c)
                .par_chunks_mut(c)
                .zip(zeroed(probs, n * cfg.heads * stride).par_chunks_mut(cfg.heads * stride))
                .enumerate()
                .for_each(|(i, (o, pb))| {
                    let b = i / g;
                    let keys = Keys {
                        pre: &pre_all[b * req.p * 3 * c..(b + 1) * req.p * 3 * c],
                        np: req.p,
                        suf: &cache[i * steps * 3 * c..(i + 1) * steps * 3 * c],
                        ns: s + 1,
                    };
                    attend(o, pb, stride, &q_all[i * 3 * c..(i + 1) * 3 * c], keys, hd);
                });
            matmul_forward(zeroed(tmp, n * c), atty, pr(&w.proj_w), pr(&w.proj_b), c, c);
            residual_forward(zeroed(res2, n * c), x, tmp);
            layernorm_forward(
                zeroed(ln, n * c),
                zeroed(&mut gs.mean, n),
                zeroed(&mut gs.rstd, n),
                res2,
                pr(&w.ln2_w),
                pr(&w.ln2_b),
            );
            matmul_forward(zeroed(fch, n * m), ln, pr(&w.fc_w), pr(&w.fc_b), c, m);
            gelu_forward(zeroed(fcg, n * m), fch);
            matmul_forward(tmp, fcg, pr(&w.fcproj_w), pr(&w.fcproj_b), m, c);
            residual_forward(x, res2, tmp);
        }
        layernorm_forward(
            zeroed(ln, n * c),
            zeroed(&mut gs.mean, n),
            zeroed(&mut gs.rstd, n),
            x,
            &params[lay.lnf_w.clone()],
            &params[lay.lnf_b.clone()],
        );
        let zero_bias = vec![0.0f32; v];
        let logits = zeroed(tmp, n * v);
        matmul_forward(logits, ln, &params[lay.lm_head.clone()], &zero_bias, c, v);
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
