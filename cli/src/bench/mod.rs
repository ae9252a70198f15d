//! `wapo bench …`: performance measurements, one subcommand each.

pub mod llm;
pub mod memory;
pub mod objective;
pub mod train;

use std::process::ExitCode;

use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Forward+backward of the logits-level WAPO objective: ms, effective GB/s
    /// and a plain copy's GB/s measured in the same run.
    Objective(objective::ObjectiveArgs),
    /// One RL step (generation included) and one SFT step of the WAPO toy
    /// setting; with --model, one RL step of a pretrained model.
    Train(train::TrainBenchArgs),
    /// A pretrained model on the CPU or a GPU: batched generation tokens/s and one
    /// training forward + backward + AdamW, with peak memory.
    Llm(llm::LlmBenchArgs),
}

pub fn run(args: &BenchArgs) -> ExitCode {
    match &args.command {
        BenchCommand::Objective(a) => crate::error::exit(objective::run(a)),
        BenchCommand::Train(a) => crate::error::exit(train::run(a)),
        BenchCommand::Llm(a) => crate::error::exit(llm::run(a)),
    }
}
