//! Generation with the KV cache against a full training forward, greedy
//! decoding against the forward's argmax, and bad inputs.

use wapo_core::rl::{ModelConfig, Policy, Prompts, Sampling};
use wapo_core::{Shape, Tensor};

use super::{Policies, logits, scale_parameters, supported};

/// A GPT and a llama (tied embeddings, q/k/v biases, grouped-query attention).
pub fn configs() -> [ModelConfig; 2] {
    let llama = ModelConfig::llama(6, 16, 16, 2, 4, 2, 32, 50.0);
    [ModelConfig::gpt(6, 16, 16, 2, 2, 32), ModelConfig { tied_embeddings: true, qkv_bias: true, ..llama }]
}

/// ℓ of token y under softmax(z/τ), in f64.
fn logp(z: &[f64], y: usize, tau: f64) -> f64 {
    let lse = z.iter().map(|&x| (x / tau).exp()).sum::<f64>().ln();
    z[y] / tau - lse
}

pub fn kv_cache_logprobs_body<M: Policies>(m: &M) {
    for cfg in supported(m, configs()) {
        let mut model = m.make(cfg, 1).unwrap();
        scale_parameters(&mut model, 3.0); // position-dependent, yet not one-hot
        let (b, g, p, t, tau) = (3, 4, 5, 6, 0.8);
        let prompts: Vec<u32> = (0..b * p).map(|i| ((i * 7 + 2) % 6) as u32).collect();
        let view = Prompts { tokens: &prompts, batch: b, len: p, pad: &[] };
        let uniforms: Vec<f32> = (0..b * g * t).map(|i| ((i * 29 + 7) % 97) as f32 / 97.0).collect();
        let r = model.generate(view, g, t, tau, &uniforms, &Sampling::default()).unwrap();
        assert_eq!((r.n, r.len, r.tokens.len()), (b * g, t, b * g * t));
        let z = logits(&mut model, view, g, &r.tokens);
        let mut max = 0.0f64;
        for i in 0..b * g * t {
            let l = logp(&z[i * 6..(i + 1) * 6], r.tokens[i] as usize, tau);
            max = max.max((l - r.logprobs[i] as f64).abs());
        }
        println!("{:?}: max |ℓ_cache − ℓ_forward| {max:.2e}", cfg.family);
        assert!(max < 1e-4, "{max}");
        // The samples of a prompt differ (they draw different uniforms).
        assert!((0..b).any(|bb| r.tokens[bb * g * t..bb * g * t + t] != r.tokens[bb * g * t + t..bb * g * t + 2 * t]));
    }
}

pub fn greedy_argmax_body<M: Policies>(m: &M) {
    for cfg in supported(m, configs()) {
        let mut model = m.make(cfg, 2).unwrap();
        scale_parameters(&mut model, 10.0);
        let prompts: Vec<u32> = vec![1, 2, 3, 4, 5, 0, 0, 1, 1, 2];
        let view = Prompts { tokens: &prompts, batch: 2, len: 5, pad: &[] };
        let out = model.greedy(view, 5).unwrap();
        let z = logits(&mut model, view, 1, &out);
        for (i, &y) in out.iter().enumerate() {
            let row = &z[i * 6..(i + 1) * 6];
            let best = (0..6).fold(0, |a, k| if row[k] > row[a] { k } else { a });
            assert_eq!(y as usize, best, "{:?} position {i}", cfg.family);
        }
    }
}

pub fn bad_inputs_body<M: Policies>(m: &M) {
    let mut model = m.make(configs()[0], 1).unwrap();
    let prompts = [1u32, 9]; // 9 ≥ V
    let view = Prompts { tokens: &prompts, batch: 1, len: 2, pad: &[] };
    assert!(model.generate(view, 1, 2, 1.0, &[0.5, 0.5], &Sampling::default()).is_err());
    let ok = [1u32, 2];
    let view = Prompts { tokens: &ok, batch: 1, len: 2, pad: &[] };
    assert!(model.generate(view, 1, 2, 1.0, &[0.5], &Sampling::default()).is_err(), "too few uniforms");
    assert!(model.generate(view, 1, 40, 0.0, &[], &Sampling::default()).is_err(), "beyond the context");
    assert!(model.forward(view, 1, &[1, 2, 3]).is_ok());
    let wrong = <M::P as Policy>::T::upload(&model.device(), &[0.0; 5], Shape::d3(1, 1, 5)).unwrap();
    assert!(model.backward(&wrong).is_err(), "wrong gradient shape");
}
