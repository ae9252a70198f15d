//! Generation with a KV cache: one prompt pass per unique prompt (its keys
//! and values serve all G samples), then one-token steps over N rows whose
//! new keys and values go to a preallocated cache. No gradient bookkeeping.

use rayon::prelude::*;
use wapo_core::rl::truncate::Truncated;
use wapo_core::rl::{Generation, Processing, Rollout, Sampling};

use super::block::{BlockScratch, LayerActs, Net, zeroed};
use super::forward::{Acts, forward};
use crate::kernels::attention::{Heads, Keys, Rows, attend};
use crate::kernels::*;

/// Buffers of the one-token steps, reused across calls.
#[derive(Default)]
pub struct GenScratch {
    cache: Vec<Vec<f32>>, // L × (N, steps, C + 2·H_kv·hs)
    x: Vec<f32>,
    y: Vec<f32>,
    logits: Vec<f32>,
    block: BlockScratch,
    layer: LayerActs,
    lnf: [Vec<f32>; 3],
}

/// Generation for [`wapo_core::rl::Policy::generate`]: temperature,
/// top-k / top-p and stop tokens; stops early once every row has stopped.
pub fn generate(net: Net<'_>, acts: &mut Acts, gs: &mut GenScratch, req: &Generation<'_>, dec: &Sampling) -> Rollout {
    let (cfg, lay, params) = (net.cfg, net.lay, net.params);
    let (c, v, g, steps) = (cfg.channels, cfg.vocab, req.g, req.steps);
    let n = req.b * g;
    let hd = Heads::new(cfg);
    let w3 = hd.width();
    let prompt_rows = Rows { b: req.b, g: 1, p: req.p, s: 0 };
    let dummy = vec![0u32; req.b];
    let prompts = wapo_core::rl::Prompts { tokens: req.prompts, batch: req.b, len: req.p, pad: req.pad };
    forward(net, acts, prompts, &dummy, prompt_rows, 1);
    let mut d = Draws {
        tokens: vec![0u32; n * steps],
        logprobs: vec![0f32; n * steps],
        lengths: vec![steps; n],
        stopped: vec![false; n],
        steps,
    };
    d.draw_all(0, &acts.logits, v, g, req, dec);
    gs.cache.resize_with(cfg.layers, Vec::new);
    for cache in &mut gs.cache {
        zeroed(cache, n * steps * w3);
    }
    let stride = req.p + steps;
    for s in 0..steps.saturating_sub(1) {
        if d.stopped.iter().all(|&x| x) {
            for i in 0..n {
                let last = d.tokens[i * steps + d.lengths[i] - 1];
                d.tokens[i * steps + d.lengths[i]..(i + 1) * steps].fill(last);
            }
            break;
        }
        let toks: Vec<u32> = (0..n).map(|i| d.tokens[i * steps + s]).collect();
        let pos: Vec<usize> = (0..n).map(|i| req.p + s - acts.pad[i / g]).collect();
        encoder_forward(zeroed(&mut gs.x, n * c), &toks, &pos, &params[lay.wte.clone()], &params[lay.wpe.clone()]);
        for l in 0..cfg.layers {
            let (cache, pre_all) = (&mut gs.cache[l], &acts.layers[l].qkv);
            let out = zeroed(&mut gs.y, n * c);
            net.block_forward(&lay.layers[l], &mut gs.layer, &gs.x, out, &pos, &mut gs.block, |atty, probs, qkv| {
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
                            skip: acts.pad[b],
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
        let logits = zeroed(&mut gs.logits, n * v);
        matmul_forward(logits, ln, &params[lay.lm_head.clone()], &[], c, v);
        d.draw_all(s + 1, logits, v, 1, req, dec);
    }
    // The prompt pass overwrote the saved activations: no backward from here.
    acts.rows = None;
    Rollout { n, len: steps, tokens: d.tokens, logprobs: d.logprobs, lengths: d.lengths }
}

/// The rows being drawn.
struct Draws {
    tokens: Vec<u32>,   // (N, steps)
    logprobs: Vec<f32>, // (N, steps)
    lengths: Vec<usize>,
    stopped: Vec<bool>,
    steps: usize,
}

impl Draws {
    /// Draws token `s` of every row, row i from logits row i / `share` of
    /// `logits` (rows of V; the prompt pass has one row per prompt, shared by
    /// its G samples). A stopped row repeats its stop token with ℓ = 0. Rows
    /// are drawn in parallel: each depends on its own logits and uniform only.
    fn draw_all(&mut self, s: usize, logits: &[f32], v: usize, share: usize, req: &Generation<'_>, dec: &Sampling) {
        let steps = self.steps;
        let stopped = &self.stopped;
        let picks: Vec<Option<(u32, f32)>> = (0..stopped.len())
            .into_par_iter()
            .map(|i| {
                let row = &logits[(i / share) * v..(i / share + 1) * v];
                (!stopped[i]).then(|| sample_with(row, req.temperature, dec, req.uniforms.get(i * steps + s).copied()))
            })
            .collect();
        for (i, pick) in picks.into_iter().enumerate() {
            let at = i * steps + s;
            let Some((y, l)) = pick else {
                self.tokens[at] = self.tokens[at - 1];
                continue;
            };
            self.tokens[at] = y;
            self.logprobs[at] = l;
            if dec.stop.contains(&y) {
                self.stopped[i] = true;
                self.lengths[i] = s + 1;
            }
        }
    }
}

/// [`sample`] from the top-k / top-p truncation of softmax(z/τ), renormalized
/// ([`Truncated`], the rule the trainer scores under): the returned ℓ is
/// that of the distribution actually sampled. Without truncation (or
/// greedy, or on a row with no distribution to truncate) it is [`sample`].
pub fn sample_with(z: &[f32], temperature: f64, dec: &Sampling, u: Option<f32>) -> (u32, f32) {
    let Some(u) = u.filter(|_| temperature > 0.0 && dec.truncates(z.len())) else { return sample(z, temperature, u) };
    let Some(t) = Truncated::new(z, Processing::of(temperature, dec)) else { return sample(z, temperature, Some(u)) };
    let y = t.draw(u as f64);
    (y as u32, t.logp(y) as f32)
}

/// Draws a token from softmax(z/τ) by inverse CDF with `u`, or the argmax
/// when τ = 0 (or no uniform); returns it with ℓ at τ (τ = 1 when greedy).
pub fn sample(z: &[f32], temperature: f64, u: Option<f32>) -> (u32, f32) {
    let tau = if temperature > 0.0 { temperature } else { 1.0 };
    let max = z.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64 / tau));
    // Each exp once: the sum and the inverse-CDF walk read the same values.
    let e: Vec<f64> = z.iter().map(|&x| (x as f64 / tau - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    let lse = max + sum.ln();
    let pick = match u {
        Some(u) if temperature > 0.0 => {
            let target = u as f64 * sum;
            let mut acc = 0.0;
            let mut pick = None;
            for (k, &e) in e.iter().enumerate() {
                acc += e;
                if e > 0.0 && target < acc {
                    pick = Some(k);
                    break;
                }
            }
            // Rounding can leave `target` just above the running sum: take
            // the last token with mass.
            pick.unwrap_or_else(|| e.iter().rposition(|&e| e > 0.0).unwrap_or(0))
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
