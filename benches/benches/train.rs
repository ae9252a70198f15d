//! One RL step (generation included) and one SFT step of the CPU policy in
//! the WAPO authors' toy setting: 64 prompts × 8 completions, a 196-token
//! prompt + 7 sampled tokens, V = 10, C = 128, L = 3, H = 4, MLP 256.
//! `wapo bench train` prints the same measurement as a table.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use wapo_core::host::HostTensor;
use wapo_core::objective::{Objective, ObjectiveConfig};
use wapo_core::rl::{ModelConfig, OptimConfig, RlConfig, SftConfig, TrainState, rl_step, sft_step};
use wapo_cpu::gpt::Gpt;
use wapo_cpu::gpt::bench::ShapeTask;

fn train(c: &mut Criterion) {
    let task = ShapeTask { prompt_len: 196, completion_len: 7, vocab: 10 };
    let mut policy = Gpt::<HostTensor<f32>>::new(ModelConfig::toy(10, 203), 0).expect("model");
    let mut state = TrainState::new(0);
    let optim = OptimConfig { lr: 1e-4, ..OptimConfig::default() };
    let rl = RlConfig {
        prompts: 64,
        group: 8,
        epochs: 1,
        minibatches: 1,
        objective: ObjectiveConfig::new(Objective::Wapo, 7),
        optim,
        measure_entropy: false,
    };
    let sft =
        SftConfig { batch: 64, max_steps: u64::MAX, target_accuracy: 1.0, eval_every: 0, eval_examples: 0, optim };
    let mut group = c.benchmark_group("train/toy");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    group.bench_function("cpu/rl_step_64x8", |b| {
        b.iter(|| rl_step(&mut policy, &task, &rl, &mut state, None).expect("rl step"))
    });
    group.bench_function("cpu/sft_step_64x203", |b| {
        b.iter(|| sft_step(&mut policy, &task, &sft, &mut state).expect("sft step"))
    });
    group.finish();
}

criterion_group!(benches, train);
criterion_main!(benches);
