//! One RL step (generation included) and one SFT step of the CPU policy in
//! the WAPO authors' toy setting: 64 prompts × 8 completions, a 196-token
//! prompt + 7 sampled tokens, V = 10, C = 128, L = 3, H = 4, MLP 256.
//! `wapo bench train` prints the same measurement as a table.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use wapo_benches::{ToySetup, toy_setup};
use wapo_core::rl::{rl_step, sft_step};

fn train(c: &mut Criterion) {
    let ToySetup { task, mut policy, mut state, rl, sft } = toy_setup(false).expect("toy setup");
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
