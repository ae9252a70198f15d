//! The GPU GPT: the backend-generic policy suite (generation, the shared
//! prompt prefix, the RL and SFT loop, checkpoints and resume; the GPT
//! family, the one this policy runs), and against the CPU GPT (its logits
//! come as `CpuTensor` and go through the CPU's fused objective) from the
//! same parameters and batch: logits, SFT loss, the RL objective from logits, every parameter
//! gradient, the parameters after one AdamW step (1e-4 relative, the max
//! difference of each tensor printed), generation from the same uniforms,
//! and checkpoints moving between the backends.

use wapo_core::advantage::Groups;
use wapo_core::logits::{LogitsBatch, logits_objective};
use wapo_core::objective::{Objective, ObjectiveConfig};
use wapo_core::rl::{ModelConfig, Named, OptimConfig, Policy, Processing, Prompts, Sampling};
use wapo_core::{Shape, Tensor};
use wapo_cpu::CpuTensor;
use wapo_cpu::model::CpuModel;
use wapo_tests::random::Rng;
use wapo_wgpu::model::WgpuModel;
use wapo_wgpu::{WgpuDevice, WgpuTensor};

wapo_tests::policy_suite!(wgpu: wapo_wgpu::test_context().map(wapo_tests::suite::WgpuPolicies));

const TOL: f64 = 1e-4;

fn model() -> ModelConfig {
    ModelConfig::gpt(7, 12, 16, 2, 2, 24)
}

struct Batch {
    prompts: Vec<u32>,
    completions: Vec<u32>,
    b: usize,
    p: usize,
}

impl Batch {
    fn new(seed: u64, b: usize, p: usize, g: usize, t: usize, vocab: usize) -> Self {
        let mut rng = Rng::new(seed);
        let prompts = (0..b * p).map(|_| rng.below(vocab) as u32).collect();
        let completions = (0..b * g * t).map(|_| rng.below(vocab) as u32).collect();
        Batch { prompts, completions, b, p }
    }
    fn prompts(&self) -> Prompts<'_> {
        Prompts { tokens: &self.prompts, batch: self.b, len: self.p, pad: &[] }
    }
}

/// Max |a − b| over the tensor, asserted ≤ TOL · max(max |a|, 1e-3).
fn close(name: &str, a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "{name}: lengths");
    let diff = a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).abs()).fold(0.0, f64::max);
    let scale = a.iter().map(|x| (*x as f64).abs()).fold(0.0, f64::max).max(1e-3);
    println!("{name:>28}: max |Δ| {diff:.3e} (scale {scale:.3e})");
    assert!(diff <= TOL * scale, "{name}: max |Δ| {diff:e} exceeds {TOL} × {scale:e}");
    diff
}

fn close_named(what: &str, a: &[Named], b: &[Named]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!((&x.name, &x.shape), (&y.name, &y.shape));
        close(&format!("{what} {}", x.name), &x.data, &y.data);
    }
}

fn pair(dev: &WgpuDevice, seed: u64) -> (CpuModel<CpuTensor>, WgpuModel) {
    let cpu = CpuModel::new(model(), seed).unwrap();
    let gpu = WgpuModel::new(dev, model(), seed).unwrap();
    (cpu, gpu)
}

fn named_grads(lay: &wapo_core::rl::Layout, flat: &[f32]) -> Vec<Named> {
    lay.named(flat, "grad ")
}

#[test]
fn same_init_and_logits() {
    let Some(dev) = wapo_wgpu::test_context() else { return };
    let (mut cpu, mut gpu) = pair(&dev, 3);
    close_named("init", &cpu.parameters().unwrap(), &gpu.parameters().unwrap());
    // Shapes with a one-token completion, a one-token prompt and odd sizes.
    for (seed, b, p, g, t) in [(1, 2, 4, 3, 3), (2, 1, 1, 1, 1), (3, 3, 5, 2, 4)] {
        let batch = Batch::new(seed, b, p, g, t, 7);
        let lc = cpu.forward(batch.prompts(), g, &batch.completions).unwrap();
        let lg = gpu.forward(batch.prompts(), g, &batch.completions).unwrap();
        assert_eq!(lc.shape(), lg.shape());
        close(&format!("logits b{b} p{p} g{g} t{t}"), &lc.to_f32(), &lg.to_vec().unwrap());
    }
}

trait ToF32 {
    fn to_f32(&self) -> Vec<f32>;
}
impl ToF32 for CpuTensor {
    fn to_f32(&self) -> Vec<f32> {
        let mut v = vec![0.0; self.shape().numel()];
        self.download(&mut v).unwrap();
        v.iter().map(|x| *x as f32).collect()
    }
}

#[test]
fn sft_gradients_and_adamw_step_match() {
    let Some(dev) = wapo_wgpu::test_context() else { return };
    let (mut cpu, mut gpu) = pair(&dev, 5);
    let batch = Batch::new(7, 3, 5, 1, 4, 7);
    let lc = cpu.sft(batch.prompts(), &batch.completions, &[4; 3]).unwrap();
    let lg = gpu.sft(batch.prompts(), &batch.completions, &[4; 3]).unwrap();
    println!("sft loss: cpu {lc:.8} wgpu {lg:.8}");
    assert!((lc - lg).abs() <= TOL * lc.abs(), "sft loss {lc} vs {lg}");
    let lay = cpu.raw_parameters().1.clone();
    close_named("sft", &named_grads(&lay, cpu.raw_gradients()), &named_grads(&lay, &gpu.raw_gradients().unwrap()));
    let grads = cpu.raw_gradients().to_vec();
    let optim = OptimConfig { lr: 1e-2, weight_decay: 0.1, grad_clip: 0.5, ..OptimConfig::default() };
    let (nc, ng) = (cpu.optimizer_step(&optim).unwrap(), gpu.optimizer_step(&optim).unwrap());
    println!("grad norm: cpu {nc:.8} wgpu {ng:.8}");
    assert!((nc - ng).abs() <= TOL * nc, "norm {nc} vs {ng}");
    // Adam's first step is lr·g/(|g| + ε): where the true gradient is zero
    // (the key bias: softmax ignores a shift shared by all scores) both
    // backends step along their own roundoff. Those elements are compared
    // only for staying within one step of their start.
    let before = CpuModel::<CpuTensor>::new(model(), 5).unwrap().parameters().unwrap();
    let (pc, pg) = (cpu.parameters().unwrap(), gpu.parameters().unwrap());
    let mut at = 0;
    for ((c, g), b) in pc.iter().zip(&pg).zip(&before) {
        let gr = &grads[at..at + c.data.len()];
        at += c.data.len();
        let gmax = gr.iter().fold(0f32, |a, x| a.max(x.abs()));
        let live = |i: &usize| gr[*i].abs() > 1e-5 * gmax;
        let pick = |t: &Named| t.data.iter().enumerate().filter(|(i, _)| live(i)).map(|(_, x)| *x).collect::<Vec<_>>();
        close(&format!("after AdamW {}", c.name), &pick(c), &pick(g));
        for i in (0..c.data.len()).filter(|i| !live(i)) {
            let moved = (g.data[i] - b.data[i]).abs().max((c.data[i] - b.data[i]).abs());
            assert!(moved <= 1.01 * optim.lr as f32 * (1.0 + b.data[i].abs()), "{}[{i}] moved {moved}", c.name);
        }
    }
    let (oc, og) = (cpu.optimizer_state().unwrap(), gpu.optimizer_state().unwrap());
    assert_eq!(oc.step, og.step);
    close_named("moment", &oc.moments, &og.moments);
}

/// The RL objective from each backend's logits (the CPU's host tensors, the
/// GPU's fused kernel), its gradient through each policy.
#[test]
fn rl_objective_and_gradients_match() {
    let Some(dev) = wapo_wgpu::test_context() else { return };
    for objective in [Objective::Wapo, Objective::Grpo, Objective::Gspo] {
        let (mut cpu, mut gpu) = pair(&dev, 11);
        let (b, p, g, t) = (2, 4, 3, 3);
        let batch = Batch::new(13, b, p, g, t, 7);
        let n = b * g;
        let mut rng = Rng::new(17);
        let rewards: Vec<f64> = (0..n).map(|_| f64::from(rng.coin(0.5))).collect();
        let mask: Vec<f64> = (0..n * t).map(|k| f64::from(k % t != t - 1 || rng.coin(0.7))).collect();
        let old: Vec<f64> = (0..n * t).map(|_| rng.range(-3.0, -0.5)).collect();
        let ids: Vec<i64> = (0..n).map(|i| (i / g) as i64).collect();
        let toks: Vec<f64> = batch.completions.iter().map(|&y| y as f64).collect();
        let mut cfg = ObjectiveConfig::new(objective, t);
        cfg.temperature = 0.9;
        let lc = cpu.forward(batch.prompts(), g, &batch.completions).unwrap();
        let hd = cpu.device();
        let up = |v: &[f64], s: Shape| CpuTensor::upload(&hd, v, s).unwrap();
        let hb = LogitsBatch {
            groups: &Groups::<CpuTensor>::from_ids(&hd, &ids).unwrap(),
            rewards: &up(&rewards, Shape::d1(n)),
            mask: &up(&mask, Shape::d2(n, t)),
            logits: &lc,
            tokens: &up(&toks, Shape::d2(n, t)),
            old_logprobs: &up(&old, Shape::d2(n, t)),
        };
        let oc = logits_objective(&cfg, &hb).unwrap();
        cpu.backward(oc.grad_logits.as_ref().unwrap()).unwrap();

        let lg = gpu.forward(batch.prompts(), g, &batch.completions).unwrap();
        let ug = |v: &[f64], s: Shape| WgpuTensor::upload(&dev, v, s).unwrap();
        let gb = LogitsBatch {
            groups: &Groups::<WgpuTensor>::from_ids(&dev, &ids).unwrap(),
            rewards: &ug(&rewards, Shape::d1(n)),
            mask: &ug(&mask, Shape::d2(n, t)),
            logits: &lg,
            tokens: &ug(&toks, Shape::d2(n, t)),
            old_logprobs: &ug(&old, Shape::d2(n, t)),
        };
        let og = logits_objective(&cfg, &gb).unwrap();
        gpu.backward(og.grad_logits.as_ref().unwrap()).unwrap();

        close(&format!("{objective} loss"), &oc.loss.to_f32(), &og.loss.to_vec().unwrap());
        let gl = og.grad_logits.as_ref().unwrap().to_vec().unwrap();
        close(&format!("{objective} grad_logits"), &oc.grad_logits.as_ref().unwrap().to_f32(), &gl);
        let lay = cpu.raw_parameters().1.clone();
        close_named(
            &objective.to_string(),
            &named_grads(&lay, cpu.raw_gradients()),
            &named_grads(&lay, &gpu.raw_gradients().unwrap()),
        );
    }
}

#[test]
fn generation_from_the_same_uniforms_draws_the_same_tokens() {
    let Some(dev) = wapo_wgpu::test_context() else { return };
    let (mut cpu, mut gpu) = pair(&dev, 23);
    let (b, p, g, steps) = (3, 4, 4, 5);
    let batch = Batch::new(29, b, p, 1, 1, 7);
    let mut rng = Rng::new(31);
    let uniforms: Vec<f32> = (0..b * g * steps).map(|_| rng.uniform() as f32).collect();
    for tau in [1.0, 0.7, 0.0] {
        let u: &[f32] = if tau > 0.0 { &uniforms } else { &[] };
        let rc = cpu.generate(batch.prompts(), g, steps, tau, u, &Sampling::default()).unwrap();
        let rg = gpu.generate(batch.prompts(), g, steps, tau, u, &Sampling::default()).unwrap();
        assert_eq!(rc.tokens, rg.tokens, "τ = {tau}");
        close(&format!("logprobs τ={tau}"), &rc.logprobs, &rg.logprobs);
    }
    // The GPU policy refuses a backward after generation, as the CPU one does.
    let dl = WgpuTensor::upload(&dev, &[0.0; 7], Shape::d3(1, 1, 7)).unwrap();
    assert!(gpu.backward(&dl).is_err());
}

#[test]
fn checkpoints_move_between_backends() {
    let Some(dev) = wapo_wgpu::test_context() else { return };
    let (mut cpu, mut gpu) = pair(&dev, 41);
    let batch = Batch::new(43, 2, 3, 1, 3, 7);
    gpu.sft(batch.prompts(), &batch.completions, &[3; 2]).unwrap();
    gpu.optimizer_step(&OptimConfig { lr: 1e-2, ..OptimConfig::default() }).unwrap();
    cpu.load_parameters(&gpu.parameters().unwrap()).unwrap();
    cpu.load_optimizer_state(&gpu.optimizer_state().unwrap()).unwrap();
    assert_eq!(cpu.parameters().unwrap(), gpu.parameters().unwrap());
    assert_eq!(cpu.optimizer_state().unwrap(), gpu.optimizer_state().unwrap());
    // And back: a fresh GPU model takes the CPU's parameters bit for bit.
    let mut fresh = WgpuModel::new(&dev, model(), 0).unwrap();
    fresh.load_parameters(&cpu.parameters().unwrap()).unwrap();
    assert_eq!(fresh.parameters().unwrap(), cpu.parameters().unwrap());
    // A wrong shape is refused with the tensor's name.
    let mut bad = cpu.parameters().unwrap();
    bad[0].shape = vec![1, 1];
    let err = fresh.load_parameters(&bad).unwrap_err().to_string();
    assert!(err.contains("wte"), "{err}");
}

/// The device's `forward_stats` / `backward_logprobs` (only (N, T) vectors
/// cross to the host) against the trait's default path on the host: the
/// logits downloaded, their statistics in f64, ∂loss/∂z = g/τ·(1[v = y] − p)
/// uploaded through `backward`.
#[test]
fn forward_stats_match_the_host_path() {
    let Some(dev) = wapo_wgpu::test_context() else { return };
    let (b, p, g, t, tau) = (2, 3, 2, 4, 0.8);
    let batch = Batch::new(53, b, p, g, t, 7);
    let mut a = WgpuModel::new(&dev, model(), 47).unwrap();
    let mut h = WgpuModel::new(&dev, model(), 47).unwrap();
    let stats = a.forward_stats(batch.prompts(), g, &batch.completions, Processing::temperature(tau)).unwrap();
    let z = h.forward(batch.prompts(), g, &batch.completions).unwrap();
    let mut host = vec![0.0; z.shape().numel()];
    z.download(&mut host).unwrap();
    let want = wapo_core::rl::TokenStats::of_logits(&host, &batch.completions, Processing::temperature(tau));
    close("ℓ", &want.logprobs, &stats.logprobs);
    close("H", &want.entropy, &stats.entropy);
    close("Σp²", &want.sum_p_sq, &stats.sum_p_sq);
    close("Σp²·log p", &want.sum_p_sq_logp, &stats.sum_p_sq_logp);

    let mut rng = Rng::new(59);
    let gl: Vec<f32> = (0..b * g * t).map(|_| rng.range(-1.0, 1.0) as f32).collect();
    a.backward_logprobs(batch.prompts(), g, &batch.completions, &gl, Processing::temperature(tau)).unwrap();
    let v = model().vocab;
    for (i, &y) in batch.completions.iter().enumerate() {
        let row = &mut host[i * v..(i + 1) * v];
        let s = wapo_core::logits::row_stats(row, y as usize, tau);
        for (k, x) in row.iter_mut().enumerate() {
            let p = (*x / tau - s.lse).exp();
            *x = gl[i] as f64 / tau * (f64::from(u8::from(k == y as usize)) - p);
        }
    }
    h.backward(&WgpuTensor::upload(&dev, &host, z.shape()).unwrap()).unwrap();
    let lay = h.raw_parameters().unwrap().1.clone();
    close_named(
        "stats",
        &named_grads(&lay, &h.raw_gradients().unwrap()),
        &named_grads(&lay, &a.raw_gradients().unwrap()),
    );
    // Another batch than the statistics' is refused.
    let other = Batch::new(61, b, p, g, t, 7);
    assert!(a.backward_logprobs(other.prompts(), g, &other.completions, &gl, Processing::temperature(tau)).is_err());
    assert!(a.backward_logprobs(batch.prompts(), g, &batch.completions, &gl, Processing::temperature(1.0)).is_err());
}

/// `forward_stats` / `backward_logprobs` with the LM head in chunks of 3
/// rows (20 scored rows: six chunks and a short one) against the same in
/// one chunk (every row's logits at once, the unchunked path) and against
/// the CPU policy (its own head, on the host), from the same parameters,
/// for the GPT and a tiny llama with untied and with tied embeddings (the
/// head's gradient then adds into the embedding's): the statistics and
/// every parameter gradient within 1e-4 of scale, the max difference
/// printed. A truncating processing (top-k, top-p) takes the logits
/// fallback on the chunked model and matches the CPU's truncated head.
#[test]
fn chunked_head_matches_one_chunk_and_the_cpu() {
    let Some(dev) = wapo_wgpu::test_context() else { return };
    let llama = ModelConfig::llama(11, 12, 16, 2, 4, 2, 24, 10_000.0);
    let configs =
        [("gpt", model()), ("llama untied", llama), ("llama tied", ModelConfig { tied_embeddings: true, ..llama })];
    for (seed, (what, cfg)) in configs.into_iter().enumerate() {
        let mut cpu = CpuModel::<CpuTensor>::new(cfg, 71 + seed as u64).unwrap();
        // Scaled up so that the distributions are far from uniform.
        for x in cpu.raw_parameters_mut() {
            *x *= 4.0;
        }
        let params = cpu.parameters().unwrap();
        let gpu = |rows: usize| {
            let mut m = WgpuModel::from_named(&dev, cfg, &params).unwrap();
            m.set_head_chunk_rows(Some(rows));
            m
        };
        let (mut chunked, mut whole) = (gpu(3), gpu(usize::MAX));
        let (b, p, g, t) = (2, 3, 2, 5);
        let batch = Batch::new(73 + seed as u64, b, p, g, t, cfg.vocab);
        let mut rng = Rng::new(79);
        let gl: Vec<f32> = (0..b * g * t).map(|_| rng.range(-1.0, 1.0) as f32).collect();
        let truncated = Processing { temperature: 0.9, top_k: 6, top_p: 0.95 };
        for (how, proc) in [("τ 0.8", Processing::temperature(0.8)), ("top-k/top-p", truncated)] {
            let name = |x: &str| format!("{what} {how} {x}");
            cpu.zero_grad();
            chunked.zero_grad();
            whole.zero_grad();
            let (prompts, comps) = (batch.prompts(), &batch.completions);
            let sc = chunked.forward_stats(prompts, g, comps, proc).unwrap();
            let sw = whole.forward_stats(prompts, g, comps, proc).unwrap();
            let sh = cpu.forward_stats(prompts, g, comps, proc).unwrap();
            for (x, want, cpu_want, got) in [
                ("ℓ", &sw.logprobs, &sh.logprobs, &sc.logprobs),
                ("H", &sw.entropy, &sh.entropy, &sc.entropy),
                ("Σp²", &sw.sum_p_sq, &sh.sum_p_sq, &sc.sum_p_sq),
                ("Σp²·log p", &sw.sum_p_sq_logp, &sh.sum_p_sq_logp, &sc.sum_p_sq_logp),
            ] {
                close(&name(&format!("{x} vs one chunk")), want, got);
                close(&name(&format!("{x} vs cpu")), cpu_want, got);
            }
            chunked.backward_logprobs(prompts, g, comps, &gl, proc).unwrap();
            whole.backward_logprobs(prompts, g, comps, &gl, proc).unwrap();
            cpu.backward_logprobs(prompts, g, comps, &gl, proc).unwrap();
            let lay = cpu.raw_parameters().1.clone();
            let got = named_grads(&lay, &chunked.raw_gradients().unwrap());
            close_named(&name("vs one chunk"), &named_grads(&lay, &whole.raw_gradients().unwrap()), &got);
            close_named(&name("vs cpu"), &named_grads(&lay, cpu.raw_gradients()), &got);
        }
    }
}
