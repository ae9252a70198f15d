//! `wapo`: train language models with RL from verifiable rewards (WAPO and
//! the GRPO family), evaluate objectives on case files, benchmark.
//!
//! `train`, `eval`, `compare` (the training loop, its run directory, plots
//! and summary), `sweep` (the stability map; the collapse rule in
//! `collapse`), `taxonomy` (the bin-ablation experiment), `loss` (case
//! files), `bench`, and the pretrained-model
//! commands in [`llm`] (`tokenize`, `score`, `generate`, `convert`); every
//! knob is declared once in [`config`].

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[macro_use]
mod backend;
mod bench;
mod collapse;
mod compare;
mod config;
mod error;
mod eval;
mod llm;
mod loss;
mod overrides;
mod plot;
mod progress;
mod run_dir;
mod summary;
mod sweep;
mod taxonomy;
mod train;

#[derive(Parser)]
#[command(name = "wapo", version, about = "Winner Advantage Policy Optimization and the GRPO family, on any backend")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate an objective on a case file (docs/CASES.md) and print the output as JSON.
    Loss(loss::LossArgs),
    /// Train with SFT then RL: a small model on a toy task (defaults: recurrence, wapo), or a pretrained --model on a text task.
    Train(train::TrainArgs),
    /// Held-out greedy exact match and pass@k of a checkpoint.
    Eval(eval::EvalArgs),
    /// Several objectives × seeds from one SFT checkpoint: overlaid plots and a summary table.
    Compare(compare::CompareArgs),
    /// Stability map: objectives × learning rates (× clip ε, epochs, temperature) × seeds from one SFT checkpoint.
    Sweep(sweep::SweepArgs),
    /// Performance measurements (`wapo bench objective|train|llm`).
    Bench(bench::BenchArgs),
    /// Token ids and strings of a text under a model's tokenizer.
    Tokenize(llm::tokenize::TokenizeArgs),
    /// Teacher-forced log-prob and entropy of every completion token given a prompt.
    Score(llm::score::ScoreArgs),
    /// Continue a prompt with a pretrained model (KV cache; greedy at --temperature 0).
    Generate(llm::generate::GenerateArgs),
    /// Write any loadable model (GGUF or Hugging Face) as a Hugging Face directory.
    Convert(llm::convert::ConvertArgs),
    /// The token taxonomy (OBJECTIVE.md §7) checked against real updates of a checkpoint, bin by bin.
    Taxonomy(taxonomy::TaxonomyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Loss(args) => error::exit_with(loss::run(&args)),
        Command::Train(args) => error::exit(train::run(&args)),
        Command::Eval(args) => error::exit(eval::run(&args)),
        Command::Compare(args) => error::exit(compare::run(&args)),
        Command::Sweep(args) => error::exit(sweep::run(&args)),
        Command::Bench(args) => bench::run(&args),
        Command::Tokenize(args) => error::exit(llm::tokenize::run(&args)),
        Command::Score(args) => error::exit(llm::score::run(&args)),
        Command::Generate(args) => error::exit(llm::generate::run(&args)),
        Command::Convert(args) => error::exit(llm::convert::run(&args)),
        Command::Taxonomy(args) => error::exit(taxonomy::run(&args)),
    }
}
