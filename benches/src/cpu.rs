//! The CPU policy in the toy setting of [`crate::train`] (criterion benches,
//! `wapo bench train --backend cpu`).

use wapo_core::Result;
use wapo_core::host::HostTensor;
use wapo_core::rl::{RlConfig, SftConfig, TrainState};
use wapo_cpu::model::CpuModel;

use crate::train::{BenchReport, ShapeTask, bench_train, toy};

/// Everything one toy-setting training step needs, ready to run.
pub struct ToySetup {
    pub task: ShapeTask,
    pub policy: CpuModel<HostTensor<f32>>,
    pub state: TrainState,
    pub rl: RlConfig,
    pub sft: SftConfig,
}

/// The toy setting at 64 prompts with a fresh CPU policy (init seed 0).
pub fn toy_setup(measure_entropy: bool) -> Result<ToySetup> {
    let (task, model, rl, sft) = toy(64, measure_entropy);
    let policy = CpuModel::<HostTensor<f32>>::new(model, 0)?;
    Ok(ToySetup { task, policy, state: TrainState::new(0), rl, sft })
}

/// [`bench_train`] of the CPU policy at `prompts` prompts.
pub fn bench_cpu(prompts: usize, reps: usize) -> Result<BenchReport> {
    let (task, model, rl, sft) = toy(prompts, true);
    bench_train(CpuModel::<HostTensor<f32>>::new(model, 0)?, &task, &rl, &sft, reps)
}

#[cfg(test)]
mod tests {
    /// `cargo test -p wapo-benches --release -- --ignored --nocapture bench_toy`
    #[test]
    #[ignore = "a benchmark: run in release"]
    fn bench_toy() {
        let r = super::bench_cpu(64, 3).unwrap();
        println!("{r}");
        assert!(r.rl_step_s > 0.0 && r.sft_step_s > 0.0);
    }
}
