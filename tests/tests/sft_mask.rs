//! The SFT loss counts each gold completion up to and including its first
//! stop token and nothing after it, on the one path both backends share
//! (`Policy::sft`'s default through the token statistics).
//!
//! The reference is the cross-entropy worked here from the full logits of
//! `Policy::forward`: an f64 log-softmax of each counted row, its gradient
//! (p − onehot)/count pushed through `Policy::backward` (the path SFT took
//! before), on the CPU and on wgpu, for a tiny GPT and tiny llamas; and the
//! rule itself on hand-made golds.

use wapo_core::rl::{ModelConfig, Named, OptimConfig, Policy, Prompts, SftConfig, TrainState, counted_len, sft_step};
use wapo_core::task::{Example, Split, Task};
use wapo_core::{Shape, Tensor};
use wapo_cpu::model::CpuModel;
use wapo_wgpu::model::WgpuModel;

const V: usize = 7;
const STOP: u32 = 6;

fn tinies() -> Vec<(&'static str, ModelConfig)> {
    let llama = ModelConfig::llama(V, 12, 16, 2, 4, 2, 24, 10_000.0);
    let mut tied = ModelConfig { heads: 4, kv_heads: 2, tied_embeddings: true, qkv_bias: true, ..llama };
    tied.norm_eps = 1e-5;
    vec![("gpt", ModelConfig::gpt(V, 12, 16, 2, 2, 24)), ("llama", llama), ("llama tied+bias", tied)]
}

const PROMPTS: [u32; 9] = [1, 4, 2, 0, 3, 3, 5, 1, 2]; // (B=3, P=3)

fn prompts() -> Prompts<'static> {
    Prompts { tokens: &PROMPTS, batch: 3, len: 3, pad: &[] }
}

/// (B=3, T=5): a stop token in the middle, at the end, and none.
const GOLD: [u32; 15] = [2, 5, STOP, STOP, STOP, 1, 3, 0, 4, STOP, 4, 0, 2, 1, 3];
/// [`GOLD`] with every position after a row's first stop token changed.
const GOLD_OTHER_TAIL: [u32; 15] = [2, 5, STOP, 1, 0, 1, 3, 0, 4, STOP, 4, 0, 2, 1, 3];
/// The counted lengths of [`GOLD`], by hand.
const LENGTHS: [usize; 3] = [3, 5, 5];

#[test]
fn the_rule_counts_up_to_and_including_the_first_stop_token() {
    assert_eq!(counted_len(&[5, 4, 0, 0, 0], &[0]), 3, "stop in the middle");
    assert_eq!(counted_len(&[5, 4, 3, 0], &[0]), 4, "stop at the end");
    assert_eq!(counted_len(&[5, 4, 3, 2], &[0]), 4, "no stop");
    assert_eq!(counted_len(&[0, 0, 0], &[0]), 1, "stop first");
    assert_eq!(counted_len(&[5, 0, 9, 0], &[9, 0]), 2, "any of several stop tokens");
    assert_eq!(counted_len(&[5, 0, 0], &[]), 3, "no stop tokens: every position counts");
    assert_eq!(counted_len(&[], &[0]), 0);
    for (b, &l) in LENGTHS.iter().enumerate() {
        assert_eq!(counted_len(&GOLD[b * 5..b * 5 + 5], &[STOP]), l);
        assert_eq!(counted_len(&GOLD_OTHER_TAIL[b * 5..b * 5 + 5], &[STOP]), l);
    }
}

#[test]
fn toy_tasks_have_no_stop_tokens_so_every_position_counts() {
    for name in wapo_core::task::NAMES {
        let task = wapo_core::task::by_name(name, 1).unwrap();
        assert!(task.stop_tokens().is_empty(), "{name}");
        let e = task.example(Split::Train, 3);
        assert_eq!(counted_len(&e.gold, task.stop_tokens()), task.completion_len(), "{name}");
    }
}

/// The reference: Σ_counted (lse − z_y) / count from `forward`'s logits in
/// f64, and the gradient of (p − onehot)/count at the counted rows through
/// `backward`.
fn reference<P: Policy>(m: &mut P, gold: &[u32], lengths: &[usize]) -> (f64, Vec<Named>) {
    let t = gold.len() / lengths.len();
    let count: usize = lengths.iter().sum();
    m.zero_grad();
    let z = m.forward(prompts(), 1, gold).unwrap();
    assert_eq!(z.shape(), Shape::d3(lengths.len(), t, V));
    let mut host = vec![0.0; z.shape().numel()];
    z.download(&mut host).unwrap();
    let mut loss = 0.0;
    let mut dz = vec![0.0; host.len()];
    for (i, &y) in gold.iter().enumerate() {
        if i % t >= lengths[i / t] {
            continue;
        }
        let row = &host[i * V..(i + 1) * V];
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + row.iter().map(|&x| (x - max).exp()).sum::<f64>().ln();
        loss += lse - row[y as usize];
        for (k, d) in dz[i * V..(i + 1) * V].iter_mut().enumerate() {
            *d = ((row[k] - lse).exp() - f64::from(u8::from(k == y as usize))) / count as f64;
        }
    }
    m.backward(&P::T::upload(&m.device(), &dz, z.shape()).unwrap()).unwrap();
    (loss / count as f64, m.gradients().unwrap())
}

fn sft<P: Policy>(m: &mut P, gold: &[u32], lengths: &[usize]) -> (f64, Vec<Named>) {
    m.zero_grad();
    let loss = m.sft(prompts(), gold, lengths).unwrap();
    (loss, m.gradients().unwrap())
}

/// Max |a − b| of each tensor ≤ `tol` · max(max |a|, 1e-3); the worst ratio.
fn close(what: &str, a: &[Named], b: &[Named], tol: f64) {
    assert_eq!(a.len(), b.len(), "{what}");
    let mut worst = 0.0f64;
    for (x, y) in a.iter().zip(b) {
        assert_eq!((&x.name, &x.shape), (&y.name, &y.shape), "{what}");
        let diff = x.data.iter().zip(&y.data).map(|(p, q)| (*p as f64 - *q as f64).abs()).fold(0.0, f64::max);
        let scale = x.data.iter().map(|p| (*p as f64).abs()).fold(0.0, f64::max).max(1e-3);
        assert!(diff <= tol * scale, "{what} {}: max |Δ| {diff:e} exceeds {tol} × {scale:e}", x.name);
        worst = worst.max(diff / scale);
    }
    println!("{what}: worst gradient |Δ|/scale {worst:.2e}");
}

fn close_loss(what: &str, a: f64, b: f64, tol: f64) {
    println!("{what}: loss {a:.9} vs {b:.9}");
    assert!(a.is_finite() && (a - b).abs() <= tol * a.abs(), "{what}: loss {a} vs {b}");
}

/// Against the full-logits reference, every position counted and with the
/// mask; then the tail after the stop token changed.
fn check<P: Policy>(what: &str, m: &mut P) {
    let all = [5; 3];
    let (ls, gs) = sft(m, &GOLD, &all);
    let (lr, gr) = reference(m, &GOLD, &all);
    close_loss(&format!("{what} all counted"), ls, lr, 1e-5);
    close(&format!("{what} all counted"), &gs, &gr, 1e-4);

    let (ls, gs) = sft(m, &GOLD, &LENGTHS);
    let (lr, gr) = reference(m, &GOLD, &LENGTHS);
    close_loss(&format!("{what} masked"), ls, lr, 1e-5);
    close(&format!("{what} masked"), &gs, &gr, 1e-4);

    // The tail does not count: loss and gradients do not move, although
    // they do when the tail counts.
    let (lt, gt) = sft(m, &GOLD_OTHER_TAIL, &LENGTHS);
    close_loss(&format!("{what} other tail"), lt, ls, 1e-6);
    close(&format!("{what} other tail"), &gt, &gs, 1e-6);
    let (la, _) = sft(m, &GOLD, &all);
    let (lb, _) = sft(m, &GOLD_OTHER_TAIL, &all);
    assert!((la - lb).abs() > 1e-4 * la.abs(), "{what}: the tail changes the all-counted loss ({la} vs {lb})");
}

fn cpu(cfg: ModelConfig) -> CpuModel {
    let mut m: CpuModel = CpuModel::new(cfg, 3).unwrap();
    // Larger weights than the initialisation, so that every row carries signal.
    for x in m.raw_parameters_mut().iter_mut() {
        *x *= 3.0;
    }
    m
}

#[test]
fn cpu_sft_is_the_masked_cross_entropy_of_the_full_logits() {
    for (what, cfg) in tinies() {
        check(&format!("cpu {what}"), &mut cpu(cfg));
    }
}

#[test]
fn wgpu_sft_is_the_masked_cross_entropy_of_the_full_logits() {
    let Some(dev) = wapo_wgpu::test_context() else { return };
    for (what, cfg) in tinies() {
        let mut g = WgpuModel::new(&dev, cfg, 3).unwrap();
        g.load_parameters(&cpu(cfg).parameters().unwrap()).unwrap();
        check(&format!("wgpu {what}"), &mut g);
    }
}

#[test]
fn lengths_that_do_not_fit_the_batch_are_errors() {
    let mut m = cpu(tinies()[0].1);
    for bad in [&[5usize, 5][..], &[5, 5, 6], &[0, 0, 0]] {
        assert!(m.sft(prompts(), &GOLD, bad).is_err(), "{bad:?}");
    }
}

/// Prompts of three tokens; gold rows of the three kinds of [`GOLD`] by index.
struct Stopping;

impl Task for Stopping {
    fn name(&self) -> &str {
        "stopping"
    }
    fn vocab_size(&self) -> usize {
        V
    }
    fn prompt_len(&self) -> usize {
        3
    }
    fn completion_len(&self) -> usize {
        5
    }
    fn example(&self, _: Split, index: u64) -> Example {
        let k = (index % 3) as usize;
        let prompt = (0..3).map(|j| ((index >> (3 * j)) % V as u64) as u32).collect();
        Example { prompt, gold: GOLD_OTHER_TAIL[k * 5..k * 5 + 5].to_vec() }
    }
    fn reward(&self, _: &Example, _: &[u32]) -> f64 {
        0.0
    }
    fn render(&self, tokens: &[u32]) -> String {
        format!("{tokens:?}")
    }
    fn stop_tokens(&self) -> &[u32] {
        &[STOP]
    }
}

#[test]
fn sft_step_counts_up_to_the_task_stop_token() {
    let cfg = SftConfig {
        batch: 6,
        max_steps: 1,
        target_accuracy: 1.0,
        eval_every: 0,
        eval_examples: 0,
        optim: OptimConfig::default(),
    };
    let (model, seed) = (tinies()[1].1, 17);
    let examples: Vec<Example> =
        TrainState::new(seed).indices(cfg.batch).into_iter().map(|i| Stopping.example(Split::Train, i)).collect();
    let prompts: Vec<u32> = examples.iter().flat_map(|e| e.prompt.clone()).collect();
    let gold: Vec<u32> = examples.iter().flat_map(|e| e.gold.clone()).collect();
    let lengths: Vec<usize> = examples
        .iter()
        .map(|e| LENGTHS[(0..3).find(|&k| e.gold == GOLD_OTHER_TAIL[k * 5..k * 5 + 5]).unwrap()])
        .collect();
    assert!(lengths.iter().any(|&l| l < 5), "the batch has a row with a tail");

    // The reference loss from the logits of the counted rows.
    let mut r = cpu(model);
    let view = Prompts { tokens: &prompts, batch: cfg.batch, len: 3, pad: &[] };
    let z = r.forward(view, 1, &gold).unwrap();
    let mut host = vec![0.0; z.shape().numel()];
    z.download(&mut host).unwrap();
    let (mut total, count) = (0.0, lengths.iter().sum::<usize>());
    for (i, &y) in gold.iter().enumerate() {
        if i % 5 < lengths[i / 5] {
            let row = &host[i * V..(i + 1) * V];
            total += row.iter().map(|x| x.exp()).sum::<f64>().ln() - row[y as usize];
        }
    }

    let mut m = cpu(model);
    let metrics = sft_step(&mut m, &Stopping, &cfg, &mut TrainState::new(seed)).unwrap();
    let loss = metrics.iter().find(|(k, _)| k == "sft/loss").unwrap().1;
    close_loss("sft_step", loss, total / count as f64, 1e-5);
}
