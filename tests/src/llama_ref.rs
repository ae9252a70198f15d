//! An f64 llama forward written straight from the Hugging Face modelling
//! code (`LlamaForCausalLM`: RMSNorm, `rotate_half` rotary embeddings,
//! grouped-query causal attention, SwiGLU), one sequence at a time, over
//! tensors found by their Hugging Face names. It shares nothing with the
//! backends' block graph, so it can pin what the names and the rotary layout
//! mean.

use wapo_core::rl::{ModelConfig, Named};

fn get(params: &[Named], name: &str) -> Vec<f64> {
    let t = params.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no tensor {name}"));
    t.data.iter().map(|&x| x as f64).collect()
}

/// y (out) = W (out, in) · x (in) [+ b].
fn linear(w: &[f64], x: &[f64], b: Option<&[f64]>) -> Vec<f64> {
    let n = x.len();
    (0..w.len() / n)
        .map(|o| w[o * n..(o + 1) * n].iter().zip(x).map(|(a, b)| a * b).sum::<f64>() + b.map_or(0.0, |b| b[o]))
        .collect()
}

fn rmsnorm(x: &[f64], w: &[f64], eps: f64) -> Vec<f64> {
    let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    let s = 1.0 / (ms + eps).sqrt();
    x.iter().zip(w).map(|(v, w)| v * s * w).collect()
}

/// `q * cos + rotate_half(q) * sin` for one head at position `p`.
fn rotate(head: &mut [f64], p: usize, inv_freq: &[f64]) {
    let h = head.len() / 2;
    let orig = head.to_vec();
    for i in 0..head.len() {
        let a = p as f64 * inv_freq[i % h];
        let rot = if i < h { -orig[i + h] } else { orig[i - h] };
        head[i] = orig[i] * a.cos() + rot * a.sin();
    }
}

/// Logits (T, V) of every position of `tokens`.
pub fn llama_logits(cfg: &ModelConfig, params: &[Named], tokens: &[u32]) -> Vec<f64> {
    let (c, hs, t) = (cfg.channels, cfg.head_size(), tokens.len());
    let rep = cfg.heads / cfg.kv_heads;
    let inv_freq = cfg.rope_inv_freq();
    let emb = get(params, "model.embed_tokens.weight");
    let mut x: Vec<Vec<f64>> = tokens.iter().map(|&y| emb[y as usize * c..(y as usize + 1) * c].to_vec()).collect();
    for l in 0..cfg.layers {
        let pre = format!("model.layers.{l}.");
        let w = |n: &str| get(params, &format!("{pre}{n}"));
        let bias = |n: &str| cfg.qkv_bias.then(|| w(n));
        let (wq, wk, wv, wo) = (
            w("self_attn.q_proj.weight"),
            w("self_attn.k_proj.weight"),
            w("self_attn.v_proj.weight"),
            w("self_attn.o_proj.weight"),
        );
        let (bq, bk, bv) =
            (bias("self_attn.q_proj.bias"), bias("self_attn.k_proj.bias"), bias("self_attn.v_proj.bias"));
        let mut q = Vec::new();
        let mut k = Vec::new();
        let mut v = Vec::new();
        for (p, xp) in x.iter().enumerate() {
            let h = rmsnorm(xp, &w("input_layernorm.weight"), cfg.norm_eps);
            let mut qp = linear(&wq, &h, bq.as_deref());
            let mut kp = linear(&wk, &h, bk.as_deref());
            qp.chunks_mut(hs).for_each(|hd| rotate(hd, p, &inv_freq));
            kp.chunks_mut(hs).for_each(|hd| rotate(hd, p, &inv_freq));
            v.push(linear(&wv, &h, bv.as_deref()));
            q.push(qp);
            k.push(kp);
        }
        for p in 0..t {
            let mut att = vec![0.0; c];
            for head in 0..cfg.heads {
                let g = head / rep;
                let qh = &q[p][head * hs..(head + 1) * hs];
                let scores: Vec<f64> = (0..=p)
                    .map(|j| {
                        qh.iter().zip(&k[j][g * hs..(g + 1) * hs]).map(|(a, b)| a * b).sum::<f64>() / (hs as f64).sqrt()
                    })
                    .collect();
                let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = scores.iter().map(|s| (s - m).exp()).sum();
                for (j, s) in scores.iter().enumerate() {
                    let a = (s - m).exp() / z;
                    for i in 0..hs {
                        att[head * hs + i] += a * v[j][g * hs + i];
                    }
                }
            }
            let o = linear(&wo, &att, None);
            x[p].iter_mut().zip(&o).for_each(|(a, b)| *a += b);
            let h = rmsnorm(&x[p], &w("post_attention_layernorm.weight"), cfg.norm_eps);
            let gate = linear(&w("mlp.gate_proj.weight"), &h, None);
            let up = linear(&w("mlp.up_proj.weight"), &h, None);
            let act: Vec<f64> = gate.iter().zip(&up).map(|(g, u)| g / (1.0 + (-g).exp()) * u).collect();
            let d = linear(&w("mlp.down_proj.weight"), &act, None);
            x[p].iter_mut().zip(&d).for_each(|(a, b)| *a += b);
        }
    }
    let head = if cfg.tied_embeddings { emb } else { get(params, "lm_head.weight") };
    let norm = get(params, "model.norm.weight");
    x.iter().flat_map(|xp| linear(&head, &rmsnorm(xp, &norm, cfg.norm_eps), None)).collect()
}
