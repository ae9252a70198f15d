//! Every parameter gradient of the CPU model (the GPT and the llama family:
//! grouped-query attention, rotary embeddings, RMSNorm, SwiGLU, tied
//! embeddings, q/k/v biases) against central finite differences on tiny
//! models, llm.c style: the max difference per tensor
//! is printed. Two losses: a fixed linear function of the RL logits (any
//! ∂loss/∂logits reaches the backward the same way) and the SFT
//! cross-entropy.

use wapo_core::rl::{ModelConfig, Policy, Prompts};
use wapo_cpu::model::CpuModel;

fn tinies() -> Vec<ModelConfig> {
    let llama = ModelConfig::llama(5, 8, 8, 2, 2, 1, 12, 100.0);
    vec![
        ModelConfig::gpt(5, 8, 8, 2, 2, 12),
        llama,
        ModelConfig { heads: 4, kv_heads: 2, tied_embeddings: true, qkv_bias: true, ..llama },
    ]
}

/// A reproducible sequence in [-1, 1) that does not come from the code under test.
fn lcg(n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

const PROMPTS: [u32; 6] = [1, 4, 2, 0, 3, 3]; // (B=2, P=3)
const COMPLETIONS: [u32; 18] = [2, 1, 4, 0, 0, 1, 3, 2, 2, 4, 4, 0, 1, 1, 3, 2, 0, 4]; // (N=6, T=3)

fn prompts() -> Prompts<'static> {
    Prompts { tokens: &PROMPTS, batch: 2, len: 3, pad: &[] }
}

/// loss = Σ w · logits, in f64.
fn linear_loss(model: &mut CpuModel, w: &[f32]) -> f64 {
    let z = model.forward_host(prompts(), 3, &COMPLETIONS).unwrap();
    z.iter().zip(w).map(|(&z, &w)| z as f64 * w as f64).sum()
}

fn check_all(model: &mut CpuModel, analytic: &[f32], loss: &mut dyn FnMut(&mut CpuModel) -> f64) {
    let eps = 1e-3f32;
    let entries = model.raw_parameters().1.entries.clone();
    let mut worst = 0.0f64;
    let mut failed = Vec::new();
    for e in &entries {
        let (mut max_diff, mut max_g) = (0.0f64, 0.0f64);
        for i in e.range.clone() {
            let orig = model.raw_parameters().0[i];
            model.raw_parameters_mut()[i] = orig + eps;
            let up = loss(model);
            model.raw_parameters_mut()[i] = orig - eps;
            let down = loss(model);
            model.raw_parameters_mut()[i] = orig;
            let fd = (up - down) / (2.0 * eps as f64);
            max_diff = max_diff.max((fd - analytic[i] as f64).abs());
            max_g = max_g.max((analytic[i] as f64).abs());
        }
        println!("{:<44} max |Δ| {:.2e}   max |g| {:.2e}", e.name, max_diff, max_g);
        let tol = 2e-3 + 1e-2 * max_g;
        if max_diff > tol {
            failed.push(e.name.clone());
        }
        worst = worst.max(max_g);
    }
    assert!(failed.is_empty(), "finite-difference mismatch in {failed:?}");
    assert!(worst > 1e-3, "gradients are all ~0: the check would be vacuous");
}

#[test]
fn rl_logits_gradient_matches_finite_differences() {
    for cfg in tinies() {
        println!("{cfg:?}");
        rl_logits_gradient(cfg);
    }
}

#[test]
fn sft_gradient_matches_finite_differences() {
    for cfg in tinies() {
        println!("{cfg:?}");
        sft_gradient(cfg);
    }
}

fn rl_logits_gradient(cfg: ModelConfig) {
    let mut model: CpuModel = CpuModel::new(cfg, 3).unwrap();
    // Larger weights than the GPT-2 init, so that every path carries signal.
    for x in model.raw_parameters_mut().iter_mut() {
        *x *= 3.0;
    }
    let w = lcg(6 * 3 * 5, 11);
    model.zero_grad();
    model.forward_host(prompts(), 3, &COMPLETIONS).unwrap();
    model.backward_host(&w).unwrap();
    let analytic = model.raw_gradients().to_vec();
    check_all(&mut model, &analytic, &mut |m| linear_loss(m, &w));
}

fn sft_gradient(cfg: ModelConfig) {
    let mut model: CpuModel = CpuModel::new(cfg, 5).unwrap();
    for x in model.raw_parameters_mut().iter_mut() {
        *x *= 3.0;
    }
    let gold = &COMPLETIONS[..6]; // (B=2, T=3)
    model.zero_grad();
    let loss0 = model.sft(prompts(), gold, &[3, 3]).unwrap();
    assert!(loss0.is_finite() && loss0 > 0.0);
    let analytic = model.raw_gradients().to_vec();
    check_all(&mut model, &analytic, &mut |m| {
        let z = m.forward_host(prompts(), 1, gold).unwrap();
        // Mean cross-entropy written out independently of `sft`.
        let mut total = 0.0f64;
        for (i, &y) in gold.iter().enumerate() {
            let row = &z[i * 5..(i + 1) * 5];
            let lse = row.iter().map(|&x| (x as f64).exp()).sum::<f64>().ln();
            total += lse - row[y as usize] as f64;
        }
        total / gold.len() as f64
    });
}
