//! `wapo score --model M --prompt P --completion C`: the teacher-forced
//! log-prob and entropy of every completion token given the prompt, at
//! temperature τ (softmax(z/τ)), from one training forward on the chosen
//! backend (the LM head in row chunks, as in training).

use clap::Args;
use wapo_core::rl::{Policy, Processing, Prompts};

use super::{BackendArg, ModelArg};
use crate::error::{CliError, Result};

#[derive(Args, Debug)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub model: ModelArg,
    #[command(flatten)]
    pub backend: BackendArg,
    #[arg(long)]
    pub prompt: String,
    #[arg(long)]
    pub completion: String,
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    /// Wrap the prompt in the model's chat template (ChatML) as a user message.
    #[arg(long)]
    pub chat: bool,
}

pub fn run(args: &ScoreArgs) -> Result<()> {
    if !(args.temperature.is_finite() && args.temperature > 0.0) {
        return Err(CliError::config("temperature", "must be a finite number > 0"));
    }
    with_pretrained!(args.backend.get()?, &args.model.model, |policy, meta| {
        let mut policy = policy;
        let prompt_ids = super::prompt_ids(&meta.tokenizer, &args.prompt, args.chat)?;
        let completion_ids = meta.tokenizer.encode_continuation(&args.completion)?;
        if completion_ids.is_empty() {
            return Err(CliError::config("completion", "is empty after tokenization"));
        }
        let prompts = Prompts { tokens: &prompt_ids, batch: 1, len: prompt_ids.len(), pad: &[] };
        let stats = policy.forward_stats(prompts, 1, &completion_ids, Processing::temperature(args.temperature))?;
        super::print_json(&serde_json::json!({
            "prompt_ids": prompt_ids,
            "completion_ids": completion_ids,
            "logprobs": super::json_f32(&stats.logprobs),
            "entropy": super::json_f32(&stats.entropy),
        }));
        Ok(())
    })
}
