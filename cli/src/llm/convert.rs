//! `wapo convert --model M --out DIR`: any loadable model written as a
//! Hugging Face directory (f32 safetensors, config.json, tokenizer files),
//! which transformers, vLLM and llama.cpp's converter read.

use std::path::PathBuf;

use clap::Args;

use super::ModelArg;
use crate::error::Result;

#[derive(Args, Debug)]
pub struct ConvertArgs {
    #[command(flatten)]
    pub model: ModelArg,
    /// The directory to write (created; files in it are replaced).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: &ConvertArgs) -> Result<()> {
    let loaded = wapo_io::model::load(&args.model.model)?;
    wapo_io::model::save_hf_dir(&args.out, &loaded)?;
    super::print_json(&serde_json::json!({
        "out": args.out.display().to_string(),
        "architecture": loaded.architecture,
        "parameters": loaded.tensors.iter().map(|t| t.data.len()).sum::<usize>(),
    }));
    Ok(())
}
