//! Generation with the KV cache against a full training forward, and the
//! inverse-CDF sampler against hand-computed draws.

use wapo_core::rl::{ModelConfig, Policy, Prompts};
use wapo_cpu::gpt::Gpt;
use wapo_cpu::gpt::generate::sample;

fn cfgs() -> [ModelConfig; 2] {
    let llama = ModelConfig::llama(6, 16, 16, 2, 4, 2, 32, 50.0);
    [ModelConfig::gpt(6, 16, 16, 2, 2, 32), ModelConfig { tied_embeddings: true, qkv_bias: true, ..llama }]
}

/// ℓ of token y under softmax(z/τ), in f64.
fn logp(z: &[f32], y: usize, tau: f64) -> f64 {
    let lse = z.iter().map(|&x| (x as f64 / tau).exp()).sum::<f64>().ln();
    z[y] as f64 / tau - lse
}

#[test]
fn kv_cache_logprobs_match_full_forward() {
    for cfg in cfgs() {
        kv_cache_logprobs(cfg);
    }
}

#[test]
fn greedy_is_the_argmax_of_the_full_forward() {
    for cfg in cfgs() {
        greedy_argmax(cfg);
    }
}

fn kv_cache_logprobs(cfg: ModelConfig) {
    let mut model: Gpt = Gpt::new(cfg, 1).unwrap();
    for x in model.raw_parameters_mut().iter_mut() {
        *x *= 3.0; // position-dependent, yet not one-hot
    }
    let (b, g, p, t, tau) = (3, 4, 5, 6, 0.8);
    let prompts: Vec<u32> = (0..b * p).map(|i| ((i * 7 + 2) % 6) as u32).collect();
    let view = Prompts { tokens: &prompts, batch: b, len: p, pad: &[] };
    let uniforms: Vec<f32> = (0..b * g * t).map(|i| ((i * 29 + 7) % 97) as f32 / 97.0).collect();
    let r = model.generate(view, g, t, tau, &uniforms).unwrap();
    assert_eq!((r.n, r.len, r.tokens.len()), (b * g, t, b * g * t));
    let z = model.forward_host(view, g, &r.tokens).unwrap().to_vec();
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

fn greedy_argmax(cfg: ModelConfig) {
    let mut model: Gpt = Gpt::new(cfg, 2).unwrap();
    for x in model.raw_parameters_mut().iter_mut() {
        *x *= 10.0;
    }
    let prompts: Vec<u32> = vec![1, 2, 3, 4, 5, 0, 0, 1, 1, 2];
    let view = Prompts { tokens: &prompts, batch: 2, len: 5, pad: &[] };
    let out = model.greedy(view, 5).unwrap();
    let z = model.forward_host(view, 1, &out).unwrap().to_vec();
    for (i, &y) in out.iter().enumerate() {
        let row = &z[i * 6..(i + 1) * 6];
        let best = (0..6).fold(0, |a, k| if row[k] > row[a] { k } else { a });
        assert_eq!(y as usize, best, "position {i}");
    }
}

#[test]
fn inverse_cdf_sampling() {
    // p = (0.25, 0.75) at τ = 1: u < 0.25 draws 0, else 1.
    let z = [0.0f32, 3.0f32.ln()];
    assert_eq!(sample(&z, 1.0, Some(0.2)).0, 0);
    assert_eq!(sample(&z, 1.0, Some(0.3)).0, 1);
    let (y, l) = sample(&z, 1.0, Some(0.9));
    assert_eq!(y, 1);
    assert!((l as f64 - 0.75f64.ln()).abs() < 1e-6);
    // τ = 0.5 squares the odds: p = (0.1, 0.9).
    assert_eq!(sample(&z, 0.5, Some(0.09)).0, 0);
    assert_eq!(sample(&z, 0.5, Some(0.11)).0, 1);
    // Greedy ignores u.
    assert_eq!(sample(&z, 0.0, Some(0.0)).0, 1);
}

#[test]
fn bad_inputs_are_errors() {
    let mut model: Gpt = Gpt::new(cfgs()[0], 1).unwrap();
    let prompts = [1u32, 9]; // 9 ≥ V
    let view = Prompts { tokens: &prompts, batch: 1, len: 2, pad: &[] };
    assert!(model.generate(view, 1, 2, 1.0, &[0.5, 0.5]).is_err());
    let ok = [1u32, 2];
    let view = Prompts { tokens: &ok, batch: 1, len: 2, pad: &[] };
    assert!(model.generate(view, 1, 2, 1.0, &[0.5]).is_err(), "too few uniforms");
    assert!(model.generate(view, 1, 40, 0.0, &[]).is_err(), "beyond the context");
    assert!(model.forward_host(view, 1, &[1, 2, 3]).is_ok());
    assert!(model.backward_host(&[0.0; 5]).is_err(), "wrong gradient length");
}
