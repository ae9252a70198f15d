//! Gradient accumulation is invariant to the split (`rl.micro_batches`).
//!
//! * Objective level, f64 host reference: for every objective × aggregation
//!   × `normalize_by_kept_tokens`, on random batches with ragged masks, the
//!   parts of a split evaluated under the whole minibatch's [`Plan`] give
//!   losses that sum to the unsplit `token_objective`'s and ∂loss/∂ℓ equal
//!   to its rows, to 1e-12 — for k = 1, 2, 3 equal cuts, one group per
//!   part, half a group per part and random cuts.
//! * The same check run with a per-part normalizer and weights (the peers'
//!   bug: TRL #5619 / #3231, verl #3741 / #7321) fails on every
//!   configuration: the test has teeth.
//! * Policy level: one RL step ([`rl_step`], two epochs × two minibatches)
//!   of a tiny GPT and a tiny llama on the CPU leaves the same parameters
//!   for `micro_batches` = 1, 2, 3, one group per part, half a group per
//!   part and one row per part, within float32 roundoff ([`PARAM_TOL`]);
//!   the same comparison tells a per-part normalizer's update apart.

use std::ops::Range;

use wapo_core::advantage::Groups;
use wapo_core::host::HostTensor;
use wapo_core::objective::{
    Aggregation, BinSpec, Objective, ObjectiveConfig, Plan, PlanBatch, RowsBatch, TokenBatch, rows_objective,
    token_objective,
};
use wapo_core::rl::*;
use wapo_core::{Shape, Tensor};
use wapo_cpu::CpuTensor;
use wapo_cpu::model::CpuModel;
use wapo_tests::random::Rng;

type H = HostTensor<f64>;

const AGGREGATIONS: [Option<Aggregation>; 4] =
    [None, Some(Aggregation::Seq), Some(Aggregation::Group), Some(Aggregation::Global)];

/// Every objective × aggregation × normalize_by_kept_tokens.
fn configs(max_seq_len: usize) -> Vec<ObjectiveConfig> {
    let mut out = Vec::new();
    for objective in Objective::ALL {
        for aggregation in AGGREGATIONS {
            for kept in [false, true] {
                let mut c = ObjectiveConfig::new(objective, max_seq_len);
                c.aggregation = aggregation;
                c.normalize_by_kept_tokens = kept;
                out.push(c);
            }
        }
    }
    out
}

fn up(x: &[f64], shape: Shape) -> H {
    H::upload(&(), x, shape).unwrap()
}

fn down(x: &H) -> Vec<f64> {
    let mut v = vec![0.0; x.shape().numel()];
    x.download(&mut v).unwrap();
    v
}

/// A token-level batch: B groups of G consecutive rows, T tokens.
#[derive(Clone, Debug)]
struct Case {
    b: usize,
    g: usize,
    t: usize,
    rewards: Vec<f64>,
    mask: Vec<f64>,
    logprobs: Vec<f64>,
    old: Vec<f64>,
    sum_p_sq: Option<Vec<f64>>,
}

impl Case {
    fn random(rng: &mut Rng) -> Case {
        let (b, g, t) = (2 + rng.below(3), rng.pick(&[2, 4, 6]), 1 + rng.below(6));
        let n = b * g;
        let rewards = if rng.coin(0.5) {
            (0..n).map(|_| f64::from(u8::from(rng.coin(0.4)))).collect()
        } else {
            (0..n).map(|_| rng.range(-1.5, 1.5)).collect()
        };
        // Ragged: each row a random length, some of them empty.
        let mut mask = vec![0.0; n * t];
        for i in 0..n {
            let len = if rng.coin(0.1) { 0 } else { 1 + rng.below(t) };
            mask[i * t..i * t + len].fill(1.0);
        }
        let old: Vec<f64> = (0..n * t).map(|_| rng.range(-4.0, -0.05)).collect();
        let logprobs = old.iter().map(|o| (o + rng.range(-0.6, 0.6)).min(-1e-3)).collect();
        let sum_p_sq = rng.coin(0.7).then(|| (0..n * t).map(|_| rng.range(0.05, 0.9)).collect());
        Case { b, g, t, rewards, mask, logprobs, old, sum_p_sq }
    }

    fn n(&self) -> usize {
        self.b * self.g
    }

    /// Rows `r` of a per-token field.
    fn rows<'a>(&self, x: &'a [f64], r: &Range<usize>) -> &'a [f64] {
        &x[r.start * self.t..r.end * self.t]
    }

    fn groups(&self, rows: &Range<usize>) -> Groups<H> {
        let ids: Vec<i64> = rows.clone().map(|i| (i / self.g) as i64).collect();
        Groups::from_ids(&(), &ids).unwrap()
    }

    /// The splits under test: k = 1, 2, 3 equal cuts, a group per part,
    /// half a group per part, and random cuts.
    fn splits(&self, rng: &mut Rng) -> Vec<(&'static str, Vec<Range<usize>>)> {
        let n = self.n();
        let even = |k: usize| (0..k).map(|j| j * n / k..(j + 1) * n / k).collect::<Vec<_>>();
        let every = |s: usize| (0..n / s).map(|j| j * s..(j + 1) * s).collect::<Vec<_>>();
        let mut cuts: Vec<usize> = (1..n).filter(|_| rng.coin(0.4)).collect();
        cuts.insert(0, 0);
        cuts.push(n);
        let random = cuts.windows(2).map(|w| w[0]..w[1]).collect();
        vec![
            ("k=1", even(1)),
            ("k=2", even(2)),
            ("k=3", even(3)),
            ("group per part", every(self.g)),
            ("half group per part", every(self.g / 2)),
            ("random cuts", random),
        ]
    }
}

/// A random configuration's options beyond the three under test.
fn vary(rng: &mut Rng, mut cfg: ObjectiveConfig) -> ObjectiveConfig {
    let specs = ["pos_peak", "pos_valley", "neg_peak", "neg_valley", "peak", "valley", "pos", "neg"];
    if rng.coin(0.3) {
        cfg.include_bins = BinSpec::parse(rng.pick(&specs)).unwrap();
    } else if rng.coin(0.2) {
        cfg.exclude_bins = BinSpec::parse(rng.pick(&specs)).unwrap();
    }
    cfg.importance_sampling = rng.coin(0.85);
    cfg.mask_positive_advantages = rng.coin(0.1);
    cfg
}

/// Loss and ∂loss/∂ℓ of the unsplit batch.
fn unsplit(cfg: &ObjectiveConfig, c: &Case) -> (f64, Vec<f64>) {
    let shape = Shape::d2(c.n(), c.t);
    let sum_p_sq = c.sum_p_sq.as_ref().map(|s| up(s, shape));
    let out = token_objective(
        cfg,
        &TokenBatch {
            groups: &c.groups(&(0..c.n())),
            rewards: &up(&c.rewards, Shape::d1(c.n())),
            mask: &up(&c.mask, shape),
            logprobs: &up(&c.logprobs, shape),
            old_logprobs: &up(&c.old, shape),
            sum_p_sq: sum_p_sq.as_ref(),
        },
    )
    .unwrap();
    (out.loss.item().unwrap(), down(&out.grad_logprobs))
}

/// The plan of rows `rows` as if they were the whole batch.
fn plan_of(cfg: &ObjectiveConfig, c: &Case, rows: &Range<usize>) -> Plan<H> {
    let shape = Shape::d2(rows.len(), c.t);
    // ℓ only where the weights read it, as the RL step does.
    let reads = cfg.weights_read_logprobs();
    let lp = reads.then(|| up(c.rows(&c.logprobs, rows), shape));
    let sq = c.sum_p_sq.as_ref().filter(|_| reads).map(|s| up(c.rows(s, rows), shape));
    Plan::new(
        cfg,
        &PlanBatch {
            groups: &c.groups(rows),
            rewards: &up(&c.rewards[rows.clone()], Shape::d1(rows.len())),
            mask: &up(c.rows(&c.mask, rows), shape),
            logprobs: lp.as_ref(),
            sum_p_sq: sq.as_ref(),
        },
    )
    .unwrap()
}

/// How a split forms what couples rows.
#[derive(Clone, Copy, PartialEq)]
enum Normalizer {
    /// Once over the whole minibatch (the implementation).
    Whole,
    /// The weights and normalizer of each part from its own rows (the
    /// peers' bug); advantages still from whole groups.
    PerPart,
}

/// Σ of the parts' losses and their ∂loss/∂ℓ in row order.
fn split(cfg: &ObjectiveConfig, c: &Case, parts: &[Range<usize>], how: Normalizer) -> (f64, Vec<f64>) {
    let whole = plan_of(cfg, c, &(0..c.n()));
    let d = whole.normalizer.item().unwrap();
    let (mut loss, mut grad) = (0.0, Vec::new());
    for r in parts {
        let shape = Shape::d2(r.len(), c.t);
        let sum_p_sq = c.sum_p_sq.as_ref().map(|s| up(c.rows(s, r), shape));
        let rows = RowsBatch {
            mask: &up(c.rows(&c.mask, r), shape),
            logprobs: &up(c.rows(&c.logprobs, r), shape),
            old_logprobs: &up(c.rows(&c.old, r), shape),
            sum_p_sq: sum_p_sq.as_ref(),
        };
        let out = match how {
            Normalizer::Whole => rows_objective(cfg, &whole, r.clone(), &rows).unwrap(),
            Normalizer::PerPart => {
                let own = plan_of(cfg, c, r);
                let mut p = whole.rows(r.clone()).unwrap();
                p.weights = own.weights;
                p.normalizer = own.normalizer;
                rows_objective(cfg, &p, 0..r.len(), &rows).unwrap()
            }
        };
        if how == Normalizer::Whole {
            assert_eq!(out.normalizer.item().unwrap(), d, "a part's D is the minibatch's");
        }
        loss += out.loss.item().unwrap();
        grad.extend(down(&out.grad_logprobs));
    }
    (loss, grad)
}

/// The largest difference of loss and gradient, relative to 1 + |value|.
fn worst(a: &(f64, Vec<f64>), b: &(f64, Vec<f64>)) -> f64 {
    let d = |x: f64, y: f64| (x - y).abs() / (1.0 + y.abs());
    a.1.iter().zip(&b.1).map(|(x, y)| d(*x, *y)).fold(d(a.0, b.0), f64::max)
}

#[test]
fn split_evaluation_equals_the_unsplit_objective() {
    let mut rng = Rng::new(14);
    let (mut checked, mut bug_caught) = (0, vec![0usize; configs(1).len()]);
    for (ci, base) in configs(1).into_iter().enumerate() {
        for _ in 0..24 {
            let c = Case::random(&mut rng);
            let max_seq_len = c.t + rng.below(3);
            let cfg = vary(&mut rng, ObjectiveConfig { max_seq_len, ..base.clone() });
            let want = unsplit(&cfg, &c);
            for (name, parts) in c.splits(&mut rng) {
                let got = split(&cfg, &c, &parts, Normalizer::Whole);
                let err = worst(&got, &want);
                assert!(err <= 1e-12, "{cfg:?}, split {name} {parts:?}: differs by {err:.1e}\n{c:?}");
                checked += 1;
                if parts.len() > 1 && worst(&split(&cfg, &c, &parts, Normalizer::PerPart), &want) > 1e-6 {
                    bug_caught[ci] += 1;
                }
            }
        }
    }
    assert!(checked >= 72 * 24 * 6);
    // Teeth: with a per-part normalizer the same comparison fails, on every
    // configuration.
    for (cfg, caught) in configs(1).iter().zip(&bug_caught) {
        assert!(
            *caught > 0,
            "{} {:?} kept-tokens={}: a per-part normalizer passed",
            cfg.objective,
            cfg.aggregation,
            cfg.normalize_by_kept_tokens
        );
    }
}

/// Prompts of 3 to 6 tokens (left padding), completions of up to 5 that
/// stop at token 10 (ragged masks), rewards in {0, ¼, ½, ¾, 1} from a hash
/// of the completion (groups with and without a winner).
struct Ragged;

impl Task for Ragged {
    fn name(&self) -> &str {
        "ragged"
    }
    fn vocab_size(&self) -> usize {
        11
    }
    fn prompt_len(&self) -> usize {
        6
    }
    fn completion_len(&self) -> usize {
        5
    }
    fn example(&self, _: Split, index: u64) -> Example {
        let len = 3 + (index % 4) as usize;
        let prompt = (0..len as u64).map(|k| (index.wrapping_mul(7).wrapping_add(3 * k) % 10) as u32).collect();
        Example { prompt, gold: vec![1; 5] }
    }
    fn reward(&self, _: &Example, completion: &[u32]) -> f64 {
        let h = completion.iter().fold(7u64, |a, &x| a.wrapping_mul(31).wrapping_add(u64::from(x)));
        (h % 5) as f64 / 4.0
    }
    fn render(&self, tokens: &[u32]) -> String {
        format!("{tokens:?}")
    }
    fn stop_tokens(&self) -> &[u32] {
        &[10]
    }
}

fn gpt() -> ModelConfig {
    ModelConfig::gpt(11, 12, 16, 2, 2, 32)
}

fn llama() -> ModelConfig {
    let mut c = ModelConfig::llama(11, 12, 16, 2, 4, 2, 24, 10_000.0);
    c.tied_embeddings = true;
    c.validate().unwrap();
    c
}

/// AdamW whose ε dominates |g|: the update is then smooth in the gradient
/// (lr/ε bounds its derivative), so float32 roundoff in a gradient moves a
/// parameter by about as much; with ε = 1e-8 the first step is lr·sign(g),
/// and a gradient that is 0 up to roundoff would move its parameter by lr.
const OPTIM: OptimConfig =
    OptimConfig { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-2, weight_decay: 0.0, grad_clip: 0.0 };

/// Largest parameter difference between two runs, relative to the largest
/// change the step made: float32 roundoff of the summation order (and, for
/// the GPT, of the fused logits objective against the token-level one) is
/// ~1e-6 of it.
const PARAM_TOL: f64 = 1e-4;

fn rl(objective: ObjectiveConfig, micro_batches: usize) -> RlConfig {
    RlConfig {
        prompts: 4,
        group: 4,
        epochs: 2,
        minibatches: 2,
        micro_batches,
        objective,
        optim: OPTIM,
        measure_entropy: true,
        sampling: Sampling::default(),
    }
}

fn flat(p: &impl Policy) -> Vec<f32> {
    p.parameters().unwrap().into_iter().flat_map(|t| t.data).collect()
}

/// max |a − b| / max |a − start|.
fn param_diff(start: &[f32], a: &[f32], b: &[f32]) -> f64 {
    let moved = start.iter().zip(a).map(|(s, x)| (x - s).abs()).fold(0.0f32, f32::max);
    assert!(moved > 1e-4, "vacuous: the step moved no parameter ({moved})");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max) as f64 / moved as f64
}

/// Parameters and metrics after one RL step from the same start and seed.
fn step(model: ModelConfig, cfg: &RlConfig) -> (Vec<f32>, Vec<f32>, Metrics) {
    let mut p: CpuModel<CpuTensor> = CpuModel::new(model, 3).unwrap();
    let start = flat(&p);
    let mut state = TrainState::new(11);
    let m = rl_step(&mut p, &Ragged, cfg, &mut state, None).unwrap();
    assert_eq!(metric(&m, "objective/skipped_updates"), Some(0.0));
    (start, flat(&p), m)
}

#[test]
fn one_rl_step_is_the_same_for_every_split() {
    // Rows of a minibatch: 2 prompts × 4. k = 2: a group per part; 3: cuts
    // across groups (each row its own prompt copy); 4: half a group per
    // part; 8: a row per part.
    let splits = [2, 3, 4, 8];
    let mut ragged = false;
    for (model, family) in [(gpt(), "gpt"), (llama(), "llama")] {
        let mut worst = [0.0f64; 4];
        for (i, mut objective) in configs(5).into_iter().enumerate() {
            if i % 3 == 0 {
                // Kept-token weights that read ℓ through the bins.
                objective.include_bins = BinSpec::parse("peak").unwrap();
            }
            let (start, want, m1) = step(model, &rl(objective.clone(), 1));
            ragged |= metric(&m1, "objective/kept_tokens").is_some_and(|k| k > 0.0 && k < 16.0 * 5.0);
            for (s, &k) in splits.iter().enumerate() {
                let (_, got, mk) = step(model, &rl(objective.clone(), k));
                let d = param_diff(&start, &want, &got);
                worst[s] = worst[s].max(d);
                assert!(
                    d <= PARAM_TOL,
                    "{family} {} {:?} kept-tokens={} micro_batches={k}: parameters differ by {d:.1e} of the update",
                    objective.objective,
                    objective.aggregation,
                    objective.normalize_by_kept_tokens
                );
                let (l1, lk) = (metric(&m1, "objective/loss").unwrap(), metric(&mk, "objective/loss").unwrap());
                assert!((l1 - lk).abs() <= 1e-5 * (1.0 + l1.abs()), "{family} k={k}: loss {lk} vs {l1}");
            }
        }
        println!("{family}: worst parameter difference / update for micro_batches {splits:?}: {worst:?}");
    }
    assert!(ragged, "vacuous: no batch had ragged masks");
}

/// The comparison above tells the peers' bug apart: one minibatch of a
/// tiny llama updated with ∂loss/∂ℓ from each group's own normalizer moves
/// the parameters far outside [`PARAM_TOL`] of the correct update.
#[test]
fn a_per_part_normalizer_fails_the_parameter_comparison() {
    let (b, g, t) = (2, 4, 5);
    let prompts: Vec<u32> = (0..b * 4).map(|i| (i * 3 % 10) as u32).collect();
    let view = Prompts { tokens: &prompts, batch: b, len: 4, pad: &[] };
    let uniforms: Vec<f32> = (0..b * g * t).map(|i| ((i * 37 % 101) as f32 + 0.5) / 101.0).collect();
    let rewards = [1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0];
    let lengths = [5, 2, 4, 5, 1, 3, 5, 5];
    let mut mask = vec![0.0; b * g * t];
    for (i, &l) in lengths.iter().enumerate() {
        mask[i * t..i * t + l].fill(1.0);
    }
    for objective in [Objective::Wapo, Objective::DrGrpo, Objective::Grpo] {
        let cfg = ObjectiveConfig::new(objective, t);
        let update = |per_group: bool| {
            let mut p: CpuModel<CpuTensor> = CpuModel::new(llama(), 5).unwrap();
            let start = flat(&p);
            let r = p.generate(view, g, t, 1.0, &uniforms, &Sampling::default()).unwrap();
            let s = p.forward_stats(view, g, &r.tokens, Processing::temperature(1.0)).unwrap();
            let parts: Vec<Range<usize>> =
                if per_group { vec![0..g, g..2 * g] } else { std::iter::once(0..2 * g).collect() };
            let mut grad = Vec::new();
            for rows in parts {
                let c = Case {
                    b: rows.len() / g,
                    g,
                    t,
                    rewards: rewards[rows.clone()].to_vec(),
                    mask: mask[rows.start * t..rows.end * t].to_vec(),
                    logprobs: s.logprobs[rows.start * t..rows.end * t].iter().map(|&x| x as f64).collect(),
                    old: r.logprobs[rows.start * t..rows.end * t].iter().map(|&x| x as f64).collect(),
                    sum_p_sq: Some(s.sum_p_sq[rows.start * t..rows.end * t].iter().map(|&x| x as f64).collect()),
                };
                grad.extend(unsplit(&cfg, &c).1.iter().map(|&x| x as f32));
            }
            p.zero_grad();
            p.backward_logprobs(view, g, &r.tokens, &grad, Processing::temperature(1.0)).unwrap();
            p.optimizer_step(&OPTIM).unwrap();
            (start, flat(&p))
        };
        let (start, right) = update(false);
        let (_, wrong) = update(true);
        let d = param_diff(&start, &right, &wrong);
        assert!(d > 100.0 * PARAM_TOL, "{objective}: a per-group normalizer moved the update by only {d:.1e}");
    }
}

/// A NaN or ±inf in an update skips it on both ways through a minibatch —
/// the logits way (GPT, one part) and the token level (llama, or any model
/// in parts) — instead of failing the run: the parameters stay, the skip is
/// counted and its cause named.
#[test]
fn a_non_finite_update_is_skipped_on_every_path() {
    // A NaN gain of the final norm makes every logit NaN, and so every ℓ;
    // weights ×1e38 keep the normalized logits finite but overflow the
    // gradient.
    let nan_norm = |p: &mut CpuModel<CpuTensor>| {
        let mut params = p.parameters().unwrap();
        let norm = params.iter_mut().find(|t| t.name == "ln_f.weight" || t.name == "model.norm.weight").unwrap();
        norm.data[0] = f32::NAN;
        p.load_parameters(&params).unwrap();
    };
    let huge = |p: &mut CpuModel<CpuTensor>| p.raw_parameters_mut().iter_mut().for_each(|x| *x *= 1e38);
    type Poison<'a> = &'a dyn Fn(&mut CpuModel<CpuTensor>);
    let poisons: [(Poison, NonFinite); 2] = [(&nan_norm, NonFinite::Logits), (&huge, NonFinite::Gradient)];
    for (poison, cause) in poisons {
        for (model, family) in [(gpt(), "gpt"), (llama(), "llama")] {
            for k in [1, 3] {
                let mut p: CpuModel<CpuTensor> = CpuModel::new(model, 3).unwrap();
                poison(&mut p);
                let start = flat(&p);
                let mut state = TrainState::new(11);
                let cfg = rl(ObjectiveConfig::new(Objective::Grpo, 5), k);
                let m = rl_step(&mut p, &Ragged, &cfg, &mut state, None)
                    .unwrap_or_else(|e| panic!("{family} micro_batches={k}: {e}"));
                assert_eq!(metric(&m, "objective/skipped_updates"), Some(1.0), "{family} micro_batches={k}");
                assert_eq!(state.last_skip, Some(cause), "{family} micro_batches={k}");
                let same = flat(&p).iter().zip(&start).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{family} micro_batches={k}: a skipped update changed the parameters");
            }
        }
    }
}

#[test]
fn micro_batches_must_fit_a_minibatch() {
    let objective = ObjectiveConfig::new(Objective::Wapo, 5);
    // prompts 4 / minibatches 2 · group 4: 8 rows per minibatch.
    for (k, ok) in [(0, false), (1, true), (8, true), (9, false)] {
        match rl(objective.clone(), k).validate() {
            Ok(()) => assert!(ok, "micro_batches = {k} accepted"),
            Err(e) => {
                assert!(!ok, "micro_batches = {k}: {e}");
                assert!(
                    matches!(e, wapo_core::Error::Config { field: "rl.micro_batches", .. }),
                    "micro_batches = {k}: {e}"
                );
            }
        }
    }
}

#[test]
fn a_non_finite_sft_gradient_is_skipped() {
    // Weights ×1e38 overflow the gradient norm, which a backend may report
    // as an error: SFT must skip the update as RL does, not end the run.
    for (model, family) in [(gpt(), "gpt"), (llama(), "llama")] {
        let mut p: CpuModel<CpuTensor> = CpuModel::new(model, 3).unwrap();
        p.raw_parameters_mut().iter_mut().for_each(|x| *x *= 1e38);
        let start = flat(&p);
        let mut state = TrainState::new(5);
        let cfg = SftConfig {
            batch: 4,
            max_steps: 1,
            target_accuracy: 1.0,
            eval_every: 0,
            eval_examples: 1,
            optim: OptimConfig::default(),
        };
        let m = sft_step(&mut p, &Ragged, &cfg, &mut state).unwrap_or_else(|e| panic!("{family}: {e}"));
        assert_eq!(metric(&m, "sft/skipped_updates"), Some(1.0), "{family}");
        assert_eq!(state.last_skip, Some(NonFinite::Gradient), "{family}");
        assert!(flat(&p).iter().zip(&start).all(|(a, b)| a.to_bits() == b.to_bits()), "{family}");
    }
}
