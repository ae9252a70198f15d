//! The GPU llama against the CPU llama from the same weights (the CPU's is
//! checked against an independent f64 forward in `llama_forward.rs`):
//! logits, every parameter gradient, the parameters after one AdamW step,
//! and generated tokens (greedy, and sampled from the same uniforms), each
//! within 1e-4 of the tensor's scale, the max difference per tensor
//! printed. Tiny models with grouped-query attention, tied and untied
//! embeddings, with and without q/k/v biases, llama3 rotary scaling; and
//! the chunked LM head of `forward_stats` on a device whose bindings
//! cannot hold the whole logits.

use wapo_core::Tensor;
use wapo_core::rl::{ModelConfig, Named, OptimConfig, Policy, Processing, Prompts, RopeScaling, Sampling};
use wapo_cpu::CpuTensor;
use wapo_cpu::model::CpuModel;
use wapo_tests::random::Rng;
use wapo_wgpu::WgpuDevice;
use wapo_wgpu::model::WgpuModel;

const TOL: f64 = 1e-4;

fn configs() -> Vec<(&'static str, ModelConfig)> {
    let base = ModelConfig::llama(11, 12, 16, 2, 4, 2, 24, 10_000.0);
    let llama3 =
        RopeScaling::Llama3 { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_context: 8.0 };
    vec![
        ("gqa untied", base),
        ("one kv head, tied, qkv bias", ModelConfig { kv_heads: 1, tied_embeddings: true, qkv_bias: true, ..base }),
        (
            "llama3 rope, tied",
            ModelConfig { rope_scaling: llama3, rope_theta: 500_000.0, tied_embeddings: true, ..base },
        ),
    ]
}

/// Max |a − b| over the tensor, asserted ≤ TOL · max(max |a|, 1e-3).
fn close(name: &str, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "{name}: lengths");
    let diff = a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).abs()).fold(0.0, f64::max);
    let scale = a.iter().map(|x| (*x as f64).abs()).fold(0.0, f64::max).max(1e-3);
    println!("{name:>48}: max |Δ| {diff:.3e} (scale {scale:.3e})");
    assert!(diff <= TOL * scale, "{name}: max |Δ| {diff:e} exceeds {TOL} × {scale:e}");
}

/// A CPU and a GPU model holding the same parameters: the initialisation
/// scaled up, so that attention is far from uniform and every path matters.
fn pair(dev: &WgpuDevice, cfg: ModelConfig, seed: u64) -> (CpuModel<CpuTensor>, WgpuModel) {
    let mut cpu = CpuModel::<CpuTensor>::new(cfg, seed).unwrap();
    for x in cpu.raw_parameters_mut() {
        *x *= 4.0;
    }
    let gpu = WgpuModel::from_named(dev, cfg, &cpu.parameters().unwrap()).unwrap();
    (cpu, gpu)
}

fn tokens(rng: &mut Rng, n: usize, vocab: usize) -> Vec<u32> {
    (0..n).map(|_| rng.below(vocab) as u32).collect()
}

fn to_f32(t: &CpuTensor) -> Vec<f32> {
    let mut v = vec![0.0; t.shape().numel()];
    t.download(&mut v).unwrap();
    v.iter().map(|x| *x as f32).collect()
}

#[test]
fn logits_gradients_and_adamw_step_match_the_cpu() {
    let Some(dev) = wapo_wgpu::test_context() else { return };
    for (seed, (what, cfg)) in configs().into_iter().enumerate() {
        println!("{what}: {cfg:?}");
        let (mut cpu, mut gpu) = pair(&dev, cfg, seed as u64 + 1);
        let mut rng = Rng::new(seed as u64 + 100);
        let (b, p, g, t) = (2, 3, 2, 3);
        let prompts = tokens(&mut rng, b * p, cfg.vocab);
        let comps = tokens(&mut rng, b * g * t, cfg.vocab);
        let view = Prompts { tokens: &prompts, batch: b, len: p, pad: &[] };
        let lc = cpu.forward(view, g, &comps).unwrap();
        let lg = gpu.forward(view, g, &comps).unwrap();
        assert_eq!(lc.shape(), lg.shape());
        close(&format!("{what} logits"), &to_f32(&lc), &lg.to_vec().unwrap());

        let gold = tokens(&mut rng, b * t, cfg.vocab);
        let (sc, sg) = (cpu.sft(view, &gold, &vec![t; b]).unwrap(), gpu.sft(view, &gold, &vec![t; b]).unwrap());
        println!("{what} sft loss: cpu {sc:.8} wgpu {sg:.8}");
        assert!((sc - sg).abs() <= TOL * sc.abs(), "sft loss {sc} vs {sg}");
        let lay = cpu.raw_parameters().1.clone();
        let grads = cpu.raw_gradients().to_vec();
        let (gc, gg) = (lay.named(&grads, "grad "), lay.named(&gpu.raw_gradients().unwrap(), "grad "));
        for (x, y) in gc.iter().zip(&gg) {
            close(&format!("{what} {}", x.name), &x.data, &y.data);
        }

        let optim = OptimConfig { lr: 1e-2, weight_decay: 0.1, grad_clip: 0.5, ..OptimConfig::default() };
        let (nc, ng) = (cpu.optimizer_step(&optim).unwrap(), gpu.optimizer_step(&optim).unwrap());
        println!("{what} grad norm: cpu {nc:.8} wgpu {ng:.8}");
        assert!((nc - ng).abs() <= TOL * nc, "norm {nc} vs {ng}");
        // Adam's first step is lr·g/(|g| + ε): where the true gradient is
        // zero (the key bias: softmax ignores a shift shared by all scores)
        // each backend steps along its own roundoff, so those elements are
        // only checked to stay within one step of their start.
        let before = gpu_free_start(cfg, seed as u64 + 1);
        let (pc, pg) = (cpu.parameters().unwrap(), gpu.parameters().unwrap());
        let mut at = 0;
        for ((c, gp), b0) in pc.iter().zip(&pg).zip(&before) {
            let gr = &grads[at..at + c.data.len()];
            at += c.data.len();
            let gmax = gr.iter().fold(0f32, |a, x| a.max(x.abs()));
            let live = |i: &usize| gr[*i].abs() > 1e-5 * gmax;
            let pick =
                |t: &Named| t.data.iter().enumerate().filter(|(i, _)| live(i)).map(|(_, x)| *x).collect::<Vec<_>>();
            close(&format!("{what} after AdamW {}", c.name), &pick(c), &pick(gp));
            for i in (0..c.data.len()).filter(|i| !live(i)) {
                let moved = (gp.data[i] - b0.data[i]).abs().max((c.data[i] - b0.data[i]).abs());
                assert!(moved <= 1.01 * optim.lr as f32 * (1.0 + b0.data[i].abs()), "{}[{i}] moved {moved}", c.name);
            }
        }
    }
}

/// The parameters [`pair`] starts from.
fn gpu_free_start(cfg: ModelConfig, seed: u64) -> Vec<Named> {
    let mut m = CpuModel::<CpuTensor>::new(cfg, seed).unwrap();
    for x in m.raw_parameters_mut() {
        *x *= 4.0;
    }
    m.parameters().unwrap()
}

#[test]
fn generation_matches_the_cpu() {
    let Some(dev) = wapo_wgpu::test_context() else { return };
    for (seed, (what, cfg)) in configs().into_iter().enumerate() {
        let (mut cpu, mut gpu) = pair(&dev, cfg, seed as u64 + 11);
        let mut rng = Rng::new(seed as u64 + 200);
        let (b, p, g, steps) = (2, 3, 3, 5);
        let prompts = tokens(&mut rng, b * p, cfg.vocab);
        let view = Prompts { tokens: &prompts, batch: b, len: p, pad: &[] };
        let uniforms: Vec<f32> = (0..b * g * steps).map(|_| rng.uniform() as f32).collect();
        for tau in [0.0, 1.0, 0.7] {
            let u: &[f32] = if tau > 0.0 { &uniforms } else { &[] };
            let rc = cpu.generate(view, g, steps, tau, u, &Sampling::default()).unwrap();
            let rg = gpu.generate(view, g, steps, tau, u, &Sampling::default()).unwrap();
            println!("{what} τ = {tau}: {:?}", rg.tokens);
            assert_eq!(rc.tokens, rg.tokens, "{what}: tokens at τ = {tau}");
            close(&format!("{what} logprobs τ={tau}"), &rc.logprobs, &rg.logprobs);
        }
    }
}

/// SmolLM2-135M-Instruct on the GPU: the greedy first token after "The
/// capital of France is" is the CPU's (" Paris"), and the logits of the
/// sentence match the CPU backend's.
#[test]
fn real_model_first_token_and_logits_match_the_cpu() {
    let Some(path) = wapo_io::testing::real_model_path() else { return };
    let Some(dev) = wapo_wgpu::test_context() else { return };
    let t0 = std::time::Instant::now();
    let model = wapo_io::model::load(&path).unwrap();
    let ids = model.tokenizer.encode("The capital of France is").unwrap();
    let mut cpu: CpuModel<CpuTensor> = CpuModel::from_named(model.config, &model.tensors, Default::default()).unwrap();
    let mut gpu = WgpuModel::from_named(&dev, model.config, &model.tensors).unwrap();
    let prompt = Prompts { tokens: &ids, batch: 1, len: ids.len(), pad: &[] };
    let (fc, fg) = (cpu.greedy(prompt, 1).unwrap(), gpu.greedy(prompt, 1).unwrap());
    let text = model.tokenizer.decode(&fg, true).unwrap();
    println!("greedy first token: cpu {fc:?}, wgpu {fg:?} = {text:?}");
    assert_eq!(fc, fg);
    assert!(text.starts_with(" Paris"), "{text:?}");
    let head = Prompts { tokens: &ids[..1], batch: 1, len: 1, pad: &[] };
    let lc = cpu.forward(head, 1, &ids[1..]).unwrap();
    let lg = gpu.forward(head, 1, &ids[1..]).unwrap();
    close("SmolLM2 logits", &to_f32(&lc), &lg.to_vec().unwrap());
    println!("load, two forwards and a greedy step on each backend: {:.1} s", t0.elapsed().as_secs_f64());
}

/// Prompts of lengths 3, 1 and 5 left-padded to 5 (the padding a random
/// token, which must not matter), on both families: logits, every
/// parameter gradient of a backward through shared prompts, and generation
/// (greedy and sampled) against the CPU; and on the GPU each padded prompt
/// computes what it computes alone.
#[test]
fn ragged_prompts_match_the_cpu_and_the_prompt_alone() {
    let Some(dev) = wapo_wgpu::test_context() else { return };
    // The GPT family too: its learned positions count from the first real token.
    let gpt = ("gpt", ModelConfig::gpt(11, 12, 16, 2, 2, 24));
    for (seed, (what, cfg)) in configs().into_iter().chain([gpt]).enumerate() {
        let (mut cpu, mut gpu) = pair(&dev, cfg, seed as u64 + 31);
        let mut rng = Rng::new(seed as u64 + 300);
        ragged_against_cpu(&dev, what, &mut cpu, &mut gpu, &mut rng);
    }
}

fn ragged_against_cpu(dev: &WgpuDevice, what: &str, cpu: &mut CpuModel<CpuTensor>, gpu: &mut WgpuModel, rng: &mut Rng) {
    let v = cpu.config().vocab;
    let (g, t, steps) = (2, 3, 4);
    let alone: Vec<Vec<u32>> = [3, 1, 5].iter().map(|&len| tokens(rng, len, v)).collect();
    let refs: Vec<&[u32]> = alone.iter().map(|x| x.as_slice()).collect();
    let (mut padded, pad) = wapo_core::rl::left_pad(&refs, 0);
    let (b, p) = (alone.len(), padded.len() / alone.len());
    for (k, x) in padded.iter_mut().enumerate() {
        if k % p < pad[k / p] {
            *x = rng.below(v) as u32;
        }
    }
    let view = Prompts { tokens: &padded, batch: b, len: p, pad: &pad };
    let comps = tokens(rng, b * g * t, v);
    let lc = cpu.forward(view, g, &comps).unwrap();
    let lg = gpu.forward(view, g, &comps).unwrap();
    assert_eq!(lc.shape(), lg.shape());
    let lgv = lg.to_vec().unwrap();
    close(&format!("{what} ragged logits"), &to_f32(&lc), &lgv);

    let dl: Vec<f64> = (0..lc.shape().numel()).map(|_| rng.range(-1.0, 1.0)).collect();
    cpu.zero_grad();
    gpu.zero_grad();
    cpu.backward(&CpuTensor::upload(&cpu.device(), &dl, lc.shape()).unwrap()).unwrap();
    gpu.backward(&wapo_wgpu::WgpuTensor::upload(dev, &dl, lg.shape()).unwrap()).unwrap();
    let lay = cpu.raw_parameters().1.clone();
    let (gc, gg) = (lay.named(cpu.raw_gradients(), "grad "), lay.named(&gpu.raw_gradients().unwrap(), "grad "));
    for (x, y) in gc.iter().zip(&gg) {
        close(&format!("{what} ragged {}", x.name), &x.data, &y.data);
    }

    let uniforms: Vec<f32> = (0..b * g * steps).map(|_| rng.uniform() as f32).collect();
    for tau in [0.0, 0.8] {
        let u: &[f32] = if tau > 0.0 { &uniforms } else { &[] };
        let rc = cpu.generate(view, g, steps, tau, u, &Sampling::default()).unwrap();
        let rg = gpu.generate(view, g, steps, tau, u, &Sampling::default()).unwrap();
        println!("{what} ragged τ = {tau}: {:?}", rg.tokens);
        assert_eq!(rc.tokens, rg.tokens, "{what}: ragged tokens at τ = {tau}");
        close(&format!("{what} ragged logprobs τ={tau}"), &rc.logprobs, &rg.logprobs);
    }

    // Each prompt alone on the GPU: the same logits and the same rollout.
    let vt = v * t;
    let rp = gpu.generate(view, g, steps, 0.8, &uniforms, &Sampling::default()).unwrap();
    for (k, x) in alone.iter().enumerate() {
        let one = Prompts { tokens: x, batch: 1, len: x.len(), pad: &[] };
        let mine = &comps[k * g * t..(k + 1) * g * t];
        let la = gpu.forward(one, g, mine).unwrap().to_vec().unwrap();
        close(&format!("{what} prompt {k} alone vs padded"), &la, &lgv[k * g * vt..(k + 1) * g * vt]);
        let u = &uniforms[k * g * steps..(k + 1) * g * steps];
        let ra = gpu.generate(one, g, steps, 0.8, u, &Sampling::default()).unwrap();
        assert_eq!(ra.tokens, rp.tokens[k * g * steps..(k + 1) * g * steps], "{what}: prompt {k} alone vs padded");
    }
}

/// `generate` with top-k / top-p and stop tokens against the CPU from the same uniforms, on ragged
/// prompts: stop tokens (a row ends at its first, later positions repeat it
/// with ℓ° = 0; with most of the vocabulary stopping, every row stops early
/// and the generation ends), top-k and top-p (ℓ° of the truncated,
/// renormalized distribution), greedy and sampled.
#[test]
fn stop_tokens_and_truncated_sampling_match_the_cpu() {
    let Some(dev) = wapo_wgpu::test_context() else { return };
    for (seed, (what, cfg)) in configs().into_iter().enumerate() {
        let (mut cpu, mut gpu) = pair(&dev, cfg, seed as u64 + 51);
        let mut rng = Rng::new(seed as u64 + 500);
        let v = cfg.vocab;
        let alone: Vec<Vec<u32>> = [2, 1].iter().map(|&len| tokens(&mut rng, len, v)).collect();
        let refs: Vec<&[u32]> = alone.iter().map(|x| x.as_slice()).collect();
        let (padded, pad) = wapo_core::rl::left_pad(&refs, 0);
        let view = Prompts { tokens: &padded, batch: 2, len: 2, pad: &pad };
        let (g, steps) = (3, 10);
        let uniforms: Vec<f32> = (0..2 * g * steps).map(|_| rng.uniform() as f32).collect();
        let most: Vec<u32> = (1..v as u32).collect();
        let cases = [
            Sampling { stop: vec![2, 5], ..Sampling::default() },
            Sampling { stop: most, ..Sampling::default() },
            Sampling { top_k: 3, stop: vec![4], ..Sampling::default() },
            Sampling { top_p: 0.6, stop: vec![1], ..Sampling::default() },
            Sampling { top_k: 2, top_p: 0.9, ..Sampling::default() },
            Sampling { top_k: v + 1, top_p: 1.0, ..Sampling::default() },
        ];
        for dec in &cases {
            for tau in [0.0, 0.9] {
                let u: &[f32] = if tau > 0.0 { &uniforms } else { &[] };
                let rc = cpu.generate(view, g, steps, tau, u, dec).unwrap();
                let rg = gpu.generate(view, g, steps, tau, u, dec).unwrap();
                println!("{what} {dec:?} τ = {tau}: lengths {:?}", rg.lengths);
                assert_eq!(rc.tokens, rg.tokens, "{what} {dec:?} τ = {tau}: tokens");
                assert_eq!(rc.lengths, rg.lengths, "{what} {dec:?} τ = {tau}: lengths");
                close(&format!("{what} logprobs k{} p{} τ={tau}", dec.top_k, dec.top_p), &rc.logprobs, &rg.logprobs);
            }
        }
    }
}

/// On a device whose storage bindings (20 KiB) cannot hold the batch's
/// logits (32 rows × V = 256, 32 KiB), the logits path fails, while
/// `forward_stats` / `backward_logprobs` run: their head makes 19 rows of
/// logits at a time (the default chunk cut to the binding), and the
/// statistics and every gradient equal those of the same model on the
/// uncapped device, where one chunk holds every row.
#[test]
fn the_chunked_head_runs_where_the_whole_logits_cannot_be_bound() {
    let Some(dev) = wapo_wgpu::test_context() else { return };
    let capped = wapo_wgpu::WgpuContext::with_binding_cap(20 << 10).unwrap();
    let cfg = ModelConfig { tied_embeddings: true, ..ModelConfig::llama(256, 12, 16, 2, 4, 2, 24, 10_000.0) };
    let (cpu, mut whole) = pair(&dev, cfg, 83);
    let mut chunked = WgpuModel::from_named(&capped, cfg, &cpu.parameters().unwrap()).unwrap();
    let mut rng = Rng::new(89);
    let (b, p, g, t) = (2, 3, 2, 8);
    let prompts = tokens(&mut rng, b * p, cfg.vocab);
    let comps = tokens(&mut rng, b * g * t, cfg.vocab);
    let view = Prompts { tokens: &prompts, batch: b, len: p, pad: &[] };
    assert!(chunked.forward(view, g, &comps).is_err(), "the whole logits should exceed one binding");
    let proc = Processing::temperature(1.1);
    let (sc, sw) =
        (chunked.forward_stats(view, g, &comps, proc).unwrap(), whole.forward_stats(view, g, &comps, proc).unwrap());
    close("capped ℓ", &sw.logprobs, &sc.logprobs);
    close("capped H", &sw.entropy, &sc.entropy);
    close("capped Σp²", &sw.sum_p_sq, &sc.sum_p_sq);
    close("capped Σp²·log p", &sw.sum_p_sq_logp, &sc.sum_p_sq_logp);
    let gl: Vec<f32> = (0..b * g * t).map(|_| rng.range(-1.0, 1.0) as f32).collect();
    chunked.zero_grad();
    whole.zero_grad();
    chunked.backward_logprobs(view, g, &comps, &gl, proc).unwrap();
    whole.backward_logprobs(view, g, &comps, &gl, proc).unwrap();
    let lay = cpu.raw_parameters().1.clone();
    let (gw, gc) = (lay.named(&whole.raw_gradients().unwrap(), ""), lay.named(&chunked.raw_gradients().unwrap(), ""));
    for (x, y) in gw.iter().zip(&gc) {
        close(&format!("capped grad {}", x.name), &x.data, &y.data);
    }
}
