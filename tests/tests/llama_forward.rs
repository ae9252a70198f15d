//! The CPU llama's logits against an independent f64 forward written from
//! the Hugging Face modelling code ([`wapo_tests::llama_ref`]), for grouped
//! queries, tied embeddings, q/k/v biases and llama3 rotary scaling.

use wapo_core::rl::{ModelConfig, Policy, Prompts, RopeScaling};
use wapo_cpu::model::CpuModel;
use wapo_tests::llama_ref::llama_logits;

fn check(cfg: ModelConfig, seed: u64) {
    let mut model: CpuModel = CpuModel::new(cfg, seed).unwrap();
    for x in model.raw_parameters_mut().iter_mut() {
        *x *= 8.0; // well past the init scale, so attention is not uniform
    }
    let params = model.parameters().unwrap();
    let (p, t) = (4, 5);
    let seq: Vec<u32> = (0..p + t).map(|i| ((i * 7 + 3) % cfg.vocab) as u32).collect();
    let z =
        model.forward_host(Prompts { tokens: &seq[..p], batch: 1, len: p, pad: &[] }, 1, &seq[p..]).unwrap().to_vec();
    let want = llama_logits(&cfg, &params, &seq);
    let v = cfg.vocab;
    let (mut worst, mut scale) = (0.0f64, 0.0f64);
    for s in 0..t {
        // Completion token s is scored by the output at position p − 1 + s.
        let row = &want[(p - 1 + s) * v..(p + s) * v];
        for k in 0..v {
            worst = worst.max((z[s * v + k] as f64 - row[k]).abs());
            scale = scale.max(row[k].abs());
        }
    }
    println!("{cfg:?}\n  max |Δ logits| {worst:.2e} (scale {scale:.2e})");
    assert!(scale > 0.1, "vacuous: logits ~0");
    assert!(worst <= 1e-4 * scale.max(1.0), "logits differ by {worst}");
}

#[test]
fn llama_logits_match_the_reference() {
    let base = ModelConfig::llama(11, 12, 16, 2, 4, 2, 24, 10_000.0);
    check(base, 1);
    check(ModelConfig { kv_heads: 1, tied_embeddings: true, ..base }, 2);
    check(ModelConfig { kv_heads: 4, qkv_bias: true, norm_eps: 1e-6, ..base }, 3);
    let llama3 =
        RopeScaling::Llama3 { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_context: 8.0 };
    check(ModelConfig { rope_scaling: llama3, rope_theta: 500_000.0, ..base }, 4);
}
