//! `wapo bench train`: one RL step (generation included) and one SFT step of
//! the WAPO authors' toy setting (64 prompts × 8 completions, 196 + 7
//! tokens, V=10 C=128 L=3 H=4 MLP 256), median of a few repetitions.

use std::process::ExitCode;

use clap::Args;

#[derive(Args, Debug)]
pub struct TrainBenchArgs {
    /// cpu or wgpu.
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// Timed repetitions after one warm-up.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
}

pub fn run(args: &TrainBenchArgs) -> ExitCode {
    if args.reps == 0 {
        eprintln!("error: `--reps` must be ≥ 1");
        return ExitCode::from(2);
    }
    match args.backend.as_str() {
        "cpu" => match wapo_cpu::gpt::bench::bench_train(args.reps) {
            Ok(report) => {
                println!(
                    "backend cpu, {} threads\n{report}",
                    std::thread::available_parallelism().map_or(1, |n| n.get())
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        "wgpu" => {
            eprintln!(
                "error: backend `wgpu`: the training benchmark is not available yet (the GPU policy does not exist); use --backend cpu"
            );
            ExitCode::from(2)
        }
        other => {
            eprintln!("error: `--backend`: unknown backend `{other}` (expected cpu or wgpu)");
            ExitCode::from(2)
        }
    }
}
