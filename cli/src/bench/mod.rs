//! `wapo bench …`: performance measurements, one subcommand each.

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
    /// One RL step (generation included) and one SFT step of the WAPO toy setting.
    Train(train::TrainBenchArgs),
}

pub fn run(args: &BenchArgs) -> ExitCode {
    match &args.command {
        BenchCommand::Objective(a) => objective::run(a),
        BenchCommand::Train(a) => train::run(a),
    }
}
