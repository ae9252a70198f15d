//! `wapo bench train`: one RL step (generation included) and one SFT step of
//! the WAPO authors' toy setting (P prompts × 8 completions, 196 + 7
//! tokens, V=10 C=128 L=3 H=4 MLP 256), median of a few repetitions; with
//! `--large`, SFT tokens/s of a C=512 L=8 H=8 model at T=256; on wgpu also
//! the GEMM kernel's TFLOP/s at 4096³ (`--gemm N` for another size).

use crate::error::{CliError, Result};

use clap::Args;
use wapo_benches::{bench_sft_tokens, bench_train, large, toy};
use wapo_core::rl::{ModelConfig, Policy};

#[derive(Args, Debug)]
pub struct TrainBenchArgs {
    /// cpu or wgpu.
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// Timed repetitions after one warm-up.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Prompts per RL step (8 completions each); comma-separated for several runs.
    #[arg(long, default_value = "64", value_delimiter = ',')]
    pub prompts: Vec<usize>,
    /// Also measure SFT tokens/s on the larger model (C=512, L=8, H=8, T=256).
    #[arg(long)]
    pub large: bool,
    /// wgpu: size n of the n³ GEMM whose TFLOP/s is reported (0 skips it;
    /// on a CPU Vulkan driver 4096³ takes minutes).
    #[arg(long, default_value_t = 4096)]
    pub gemm: usize,
    /// A pretrained model instead of the toy: one RL step of it at B=8, G=8,
    /// 48-token prompts and 64 new tokens (what `wapo bench llm` measures).
    #[arg(long)]
    pub model: Option<std::path::PathBuf>,
}

pub fn run(args: &TrainBenchArgs) -> Result<()> {
    if args.reps == 0 {
        return Err(CliError::config("reps", "must be ≥ 1"));
    }
    if let Some(model) = &args.model {
        let model = crate::llm::ModelArg { model: model.clone() };
        let llm = super::llm::LlmBenchArgs {
            model,
            prompts: 8,
            group: 8,
            prompt_len: 48,
            new_tokens: 64,
            reps: args.reps,
            backend: args.backend.clone(),
        };
        return super::llm::run(&llm);
    }
    if args.prompts.contains(&0) {
        return Err(CliError::config("prompts", "must be ≥ 1"));
    }
    match args.backend.as_str() {
        "cpu" => {
            println!("backend cpu, {} threads", std::thread::available_parallelism().map_or(1, |n| n.get()));
            bench_all(args, |m| wapo_cpu::model::CpuModel::<wapo_core::host::HostTensor<f32>>::new(m, 0))?
        }
        "wgpu" => wgpu(args)?,
        other => {
            return Err(CliError::config("backend", format!("unknown backend `{other}` (expected cpu or wgpu)")));
        }
    }
    Ok(())
}

fn wgpu(args: &TrainBenchArgs) -> wapo_core::Result<()> {
    let dev = wapo_wgpu::WgpuContext::new()?;
    println!("backend wgpu on {}", dev.adapter_name());
    if args.gemm > 0 {
        let tflops = wapo_wgpu::kernels::matmul::bench::gemm_tflops(&dev, args.gemm, 10)?;
        println!("GEMM {}³ (f32): {tflops:.3} TFLOP/s", args.gemm);
    }
    bench_all(args, |m| wapo_wgpu::model::WgpuModel::new(&dev, m, 0))
}

fn bench_all<P: Policy>(
    args: &TrainBenchArgs,
    new: impl Fn(ModelConfig) -> wapo_core::Result<P>,
) -> wapo_core::Result<()> {
    for &prompts in &args.prompts {
        let (task, model, rl, sft) = toy(prompts, true);
        let report = bench_train(new(model)?, &task, &rl, &sft, args.reps)?;
        println!("{report}");
    }
    if args.large {
        let (task, model, sft) = large();
        let tps = bench_sft_tokens(new(model)?, &task, &sft, args.reps)?;
        println!(
            "SFT throughput, C={} L={} H={} MLP {} T={} batch {}: {:.0} tokens/s",
            model.channels, model.layers, model.heads, model.mlp, model.context, sft.batch, tps
        );
    }
    Ok(())
}
