//! The shared-prompt training forward/backward (the prompt computed once per
//! group) equals the unshared one (every sample with its own prompt copy).

use wapo_core::rl::{ModelConfig, Policy, Prompts};
use wapo_cpu::gpt::Gpt;

#[test]
fn shared_prefix_equals_unshared() {
    shared_equals_unshared(ModelConfig::gpt(7, 12, 16, 2, 4, 24));
    let llama = ModelConfig::llama(7, 12, 16, 2, 4, 2, 24, 10_000.0);
    shared_equals_unshared(ModelConfig { tied_embeddings: true, ..llama });
}

fn shared_equals_unshared(cfg: ModelConfig) {
    let (b, g, p, t) = (3, 4, 6, 4);
    let prompts: Vec<u32> = (0..b * p).map(|i| ((i * 5 + 3) % 7) as u32).collect();
    let comps: Vec<u32> = (0..b * g * t).map(|i| ((i * 3 + 1) % 7) as u32).collect();
    let repeated: Vec<u32> = (0..b * g).flat_map(|n| prompts[(n / g) * p..(n / g + 1) * p].to_vec()).collect();
    let dlogits: Vec<f32> = (0..b * g * t * 7).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();

    let mut shared: Gpt = Gpt::new(cfg, 9).unwrap();
    let mut unshared: Gpt = Gpt::new(cfg, 9).unwrap();
    let zs = shared.forward_host(Prompts { tokens: &prompts, batch: b, len: p, pad: &[] }, g, &comps).unwrap().to_vec();
    let zu = unshared
        .forward_host(Prompts { tokens: &repeated, batch: b * g, len: p, pad: &[] }, 1, &comps)
        .unwrap()
        .to_vec();
    assert_eq!(zs.len(), b * g * t * 7);
    let max_dz = zs.iter().zip(&zu).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    println!("logits max |Δ| {max_dz:.2e}");
    assert!(max_dz < 1e-5, "logits differ by {max_dz}");

    shared.zero_grad();
    unshared.zero_grad();
    shared.backward_host(&dlogits).unwrap();
    unshared.backward_host(&dlogits).unwrap();
    let (gs, gu) = (shared.raw_gradients(), unshared.raw_gradients());
    let entries = shared.raw_parameters().1.entries.clone();
    for e in &entries {
        let (mut d, mut m) = (0.0f32, 0.0f32);
        for i in e.range.clone() {
            d = d.max((gs[i] - gu[i]).abs());
            m = m.max(gu[i].abs());
        }
        println!("{:<44} max |Δ| {d:.2e}  max |g| {m:.2e}", e.name);
        assert!(d <= 1e-5 + 1e-4 * m, "{}: shared and unshared gradients differ by {d}", e.name);
    }
    assert!(gu.iter().any(|g| g.abs() > 1e-3));
}
