//! The chunked LM head (statistics and ∂loss/∂ℓ without the full logits)
//! against the logits path: the same ℓ, entropy and Σp² as row statistics of
//! the full forward's logits, and the same parameter gradients as the
//! backward of ∂loss/∂z = g/τ·(1[v = y] − p) built here from those logits.

use wapo_core::logits::row_stats;
use wapo_core::rl::{ModelConfig, Policy, Prompts};
use wapo_cpu::gpt::Gpt;

fn check(cfg: ModelConfig, tau: f64) {
    let (b, g, p, t, v) = (2, 3, 5, 4, cfg.vocab);
    let prompts: Vec<u32> = (0..b * p).map(|i| ((i * 7 + 1) % v) as u32).collect();
    let comps: Vec<u32> = (0..b * g * t).map(|i| ((i * 5 + 2) % v) as u32).collect();
    let view = Prompts { tokens: &prompts, batch: b, len: p, pad: &[] };
    let gl: Vec<f32> = (0..b * g * t).map(|i| ((i * 37 % 19) as f32 - 9.0) / 10.0).collect();

    let mut a: Gpt = Gpt::new(cfg, 4).unwrap();
    for x in a.raw_parameters_mut().iter_mut() {
        *x *= 6.0;
    }
    let mut reference: Gpt = Gpt::new(cfg, 4).unwrap();
    reference.raw_parameters_mut().copy_from_slice(a.raw_parameters().0);

    let stats = a.forward_stats(view, g, &comps, tau).unwrap();
    a.zero_grad();
    a.backward_logprobs(view, g, &comps, &gl, tau).unwrap();

    let z = reference.forward_host(view, g, &comps).unwrap().to_vec();
    let mut dz = vec![0.0f32; z.len()];
    let mut worst = [0.0f64; 4];
    for (i, &y) in comps.iter().enumerate() {
        let row: Vec<f64> = z[i * v..(i + 1) * v].iter().map(|&x| x as f64).collect();
        let s = row_stats(&row, y as usize, tau);
        worst[0] = worst[0].max((s.logp - stats.logprobs[i] as f64).abs());
        worst[1] = worst[1].max((s.entropy - stats.entropy[i] as f64).abs());
        worst[2] = worst[2].max((s.sum_p_sq - stats.sum_p_sq[i] as f64).abs());
        worst[3] = worst[3].max((s.sum_p_sq_logp - stats.sum_p_sq_logp[i] as f64).abs());
        for k in 0..v {
            let pk = (row[k] / tau - s.lse).exp();
            dz[i * v + k] = (gl[i] as f64 / tau * (f64::from(u8::from(k == y as usize)) - pk)) as f32;
        }
    }
    println!(
        "{:?} τ={tau}: max |Δ| ℓ {:.1e}, H {:.1e}, Σp² {:.1e}, Σp²·log p {:.1e}",
        cfg.family, worst[0], worst[1], worst[2], worst[3]
    );
    assert!(worst.iter().all(|&w| w < 1e-5), "{worst:?}");
    reference.zero_grad();
    reference.backward_host(&dz).unwrap();
    let (ga, gr) = (a.raw_gradients(), reference.raw_gradients());
    let entries = a.raw_parameters().1.entries.clone();
    for e in &entries {
        let (mut d, mut m) = (0.0f32, 0.0f32);
        for i in e.range.clone() {
            d = d.max((ga[i] - gr[i]).abs());
            m = m.max(gr[i].abs());
        }
        assert!(d <= 1e-5 + 1e-4 * m, "{}: chunked head gradient differs by {d} (scale {m})", e.name);
    }
    assert!(gr.iter().any(|x| x.abs() > 1e-3), "vacuous: gradients ~0");
}

#[test]
fn chunked_head_matches_the_logits_path() {
    // V = 300 with 30 scored rows: more than one chunk needs more rows, so
    // also a batch above the 256-row chunk.
    let llama = ModelConfig::llama(300, 16, 16, 2, 4, 2, 24, 10_000.0);
    check(llama, 1.0);
    check(ModelConfig { tied_embeddings: true, ..llama }, 0.7);
    check(ModelConfig::gpt(300, 16, 16, 2, 2, 24), 1.3);
}

#[test]
fn chunked_head_over_several_chunks() {
    let cfg = ModelConfig { tied_embeddings: true, ..ModelConfig::llama(50, 80, 8, 1, 2, 1, 12, 10_000.0) };
    let (b, g, p, t) = (3, 4, 6, 30); // 360 scored rows: two chunks
    let prompts: Vec<u32> = (0..b * p).map(|i| ((i * 3 + 1) % 50) as u32).collect();
    let comps: Vec<u32> = (0..b * g * t).map(|i| ((i * 11 + 2) % 50) as u32).collect();
    let view = Prompts { tokens: &prompts, batch: b, len: p, pad: &[] };
    let mut m: Gpt = Gpt::new(cfg, 1).unwrap();
    let stats = m.forward_stats(view, g, &comps, 1.0).unwrap();
    let z = m.forward_host(view, g, &comps).unwrap().to_vec();
    for (i, &y) in comps.iter().enumerate() {
        let row: Vec<f64> = z[i * 50..(i + 1) * 50].iter().map(|&x| x as f64).collect();
        let s = row_stats(&row, y as usize, 1.0);
        assert!((s.logp - stats.logprobs[i] as f64).abs() < 1e-5, "row {i}");
    }
    // A backward after a full forward (not forward_stats) is refused.
    assert!(m.backward_logprobs(view, g, &comps, &vec![0.0; comps.len()], 1.0).is_err());
}

/// A left-padded prompt computes what it computes alone: the logits of a
/// batch of prompts of different lengths equal those of each prompt run
/// unpadded, and so do KV-cache generation's tokens.
#[test]
fn padded_prompts_compute_what_they_compute_alone() {
    use wapo_core::rl::left_pad;
    for cfg in [ModelConfig::llama(13, 16, 16, 2, 4, 2, 24, 10_000.0), ModelConfig::gpt(13, 16, 16, 2, 2, 24)] {
        let (g, t, v) = (2, 3, cfg.vocab);
        let a: Vec<u32> = vec![3, 1, 4, 1, 5];
        let b: Vec<u32> = vec![9, 2];
        let (tokens, pad) = left_pad(&[&a, &b], 0);
        assert_eq!(pad, [0, 3]);
        let comps: Vec<u32> = (0..2 * g * t).map(|i| ((i * 5 + 2) % v) as u32).collect();
        let mut m: Gpt = Gpt::new(cfg, 3).unwrap();
        for x in m.raw_parameters_mut().iter_mut() {
            *x *= 5.0;
        }
        let both = Prompts { tokens: &tokens, batch: 2, len: 5, pad: &pad };
        let z = m.forward_host(both, g, &comps).unwrap().to_vec();
        let n1 = g * t * v;
        for (k, p) in [&a, &b].iter().enumerate() {
            let alone = Prompts { tokens: p, batch: 1, len: p.len(), pad: &[] };
            let za = m.forward_host(alone, g, &comps[k * g * t..(k + 1) * g * t]).unwrap().to_vec();
            let d = za.iter().zip(&z[k * n1..(k + 1) * n1]).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            println!("{:?} prompt {k}: padded vs alone logits max |Δ| {d:.1e}", cfg.family);
            assert!(d < 1e-5, "prompt {k}: {d}");
        }
        // Generation: the same greedy tokens and ℓ as alone.
        let r = m.generate(both, g, 4, 0.0, &[]).unwrap();
        for (k, p) in [&a, &b].iter().enumerate() {
            let alone = m.generate(Prompts { tokens: p, batch: 1, len: p.len(), pad: &[] }, g, 4, 0.0, &[]).unwrap();
            assert_eq!(alone.tokens, r.tokens[k * g * 4..(k + 1) * g * 4], "prompt {k}");
        }
        // A prompt of padding only is refused.
        let bad = Prompts { tokens: &tokens, batch: 2, len: 5, pad: &[0, 5] };
        assert!(m.forward_host(bad, g, &comps).is_err());
    }
}

/// The behaviour log-probs generation records are the trainer's: at the
/// first minibatch of epoch 0 every importance ratio is 1 within f32
/// roundoff, at any temperature and with stop tokens (positions after a stop
/// are masked and not compared).
#[test]
fn rollout_logprobs_are_the_trainers() {
    use wapo_core::rl::Sampling;
    let cfg = ModelConfig { tied_embeddings: true, ..ModelConfig::llama(40, 32, 16, 2, 4, 2, 24, 10_000.0) };
    let mut m: Gpt = Gpt::new(cfg, 9).unwrap();
    for x in m.raw_parameters_mut().iter_mut() {
        *x *= 4.0;
    }
    let (b, g, p, t) = (3, 4, 5, 10);
    let prompts: Vec<u32> = (0..b * p).map(|i| ((i * 7 + 3) % 40) as u32).collect();
    let view = Prompts { tokens: &prompts, batch: b, len: p, pad: &[] };
    let uniforms: Vec<f32> = (0..b * g * t).map(|i| ((i * 31 + 5) % 101) as f32 / 101.0).collect();
    for tau in [0.6, 1.0, 1.4] {
        let sampling = Sampling { stop: vec![0, 1, 2], ..Sampling::default() };
        let r = m.generate_with(view, g, t, tau, &uniforms, &sampling).unwrap();
        let mask = r.mask();
        assert!(r.lengths.iter().any(|&l| l < t), "no row stopped: the stop path is untested");
        let stats = m.forward_stats(view, g, &r.tokens, tau).unwrap();
        let mut worst = 0.0f64;
        for (i, &m) in mask.iter().enumerate() {
            if m == 1.0 {
                worst = worst.max((stats.logprobs[i] as f64 - r.logprobs[i] as f64).abs());
            }
        }
        println!("τ = {tau}: max |log ratio| {worst:.1e}, lengths {:?}", r.lengths);
        assert!(worst < 1e-5, "τ = {tau}: {worst}");
    }
}
