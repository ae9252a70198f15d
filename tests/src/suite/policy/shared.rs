//! The shared-prompt training forward/backward (the prompt computed once per
//! group) equals the unshared one (every sample with its own prompt copy).

use wapo_core::rl::{ModelConfig, Policy, Prompts};
use wapo_core::{Shape, Tensor};

use super::{Policies, layout, logits, supported};

pub fn configs() -> [ModelConfig; 2] {
    let llama = ModelConfig::llama(7, 12, 16, 2, 4, 2, 24, 10_000.0);
    [ModelConfig::gpt(7, 12, 16, 2, 4, 24), ModelConfig { tied_embeddings: true, ..llama }]
}

pub fn shared_prefix_body<M: Policies>(m: &M) {
    for cfg in supported(m, configs()) {
        shared_equals_unshared(m, cfg);
    }
}

fn shared_equals_unshared<M: Policies>(m: &M, cfg: ModelConfig) {
    let (b, g, p, t, v) = (3, 4, 6, 4, 7);
    let prompts: Vec<u32> = (0..b * p).map(|i| ((i * 5 + 3) % 7) as u32).collect();
    let comps: Vec<u32> = (0..b * g * t).map(|i| ((i * 3 + 1) % 7) as u32).collect();
    let repeated: Vec<u32> = (0..b * g).flat_map(|n| prompts[(n / g) * p..(n / g + 1) * p].to_vec()).collect();
    let dlogits: Vec<f64> = (0..b * g * t * v).map(|i| ((i * 37 % 101) as f32 / 50.0 - 1.0) as f64).collect();

    let mut shared = m.make(cfg, 9).unwrap();
    let mut unshared = m.make(cfg, 9).unwrap();
    let zs = logits(&mut shared, Prompts { tokens: &prompts, batch: b, len: p, pad: &[] }, g, &comps);
    let zu = logits(&mut unshared, Prompts { tokens: &repeated, batch: b * g, len: p, pad: &[] }, 1, &comps);
    assert_eq!(zs.len(), b * g * t * v);
    let max_dz = zs.iter().zip(&zu).map(|(a, b)| (a - b).abs()).fold(0.0f64, f64::max);
    println!("{:?} logits max |Δ| {max_dz:.2e}", cfg.family);
    assert!(max_dz < 1e-5, "logits differ by {max_dz}");

    shared.zero_grad();
    unshared.zero_grad();
    let up = |p: &M::P| <M::P as Policy>::T::upload(&p.device(), &dlogits, Shape::d3(b * g, t, v)).unwrap();
    let (ds, du) = (up(&shared), up(&unshared));
    shared.backward(&ds).unwrap();
    unshared.backward(&du).unwrap();
    let (gs, gu) = (m.gradients(&shared), m.gradients(&unshared));
    for e in &layout(&cfg).entries {
        let (mut d, mut mx) = (0.0f32, 0.0f32);
        for i in e.range.clone() {
            d = d.max((gs[i] - gu[i]).abs());
            mx = mx.max(gu[i].abs());
        }
        println!("{:<44} max |Δ| {d:.2e}  max |g| {mx:.2e}", e.name);
        assert!(d <= 1e-5 + 1e-4 * mx, "{}: shared and unshared gradients differ by {d}", e.name);
    }
    assert!(gu.iter().any(|g| g.abs() > 1e-3));
}
