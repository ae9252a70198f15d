//! `wapo score --model M --prompt P --completion C`: the teacher-forced
//! log-prob and entropy of every completion token given the prompt, at
//! temperature τ (softmax(z/τ)), from one training forward.

use clap::Args;
use wapo_core::logits::row_stats;
use wapo_core::rl::{Policy, Prompts};

use super::ModelArg;
use crate::error::{CliError, Result};

#[derive(Args, Debug)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub model: ModelArg,
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
    let mut lm: super::Lm = super::load(&args.model.model)?;
    let prompt_ids = lm.prompt_ids(&args.prompt, args.chat)?;
    let completion_ids = lm.tokenizer.encode_continuation(&args.completion)?;
    if completion_ids.is_empty() {
        return Err(CliError::config("completion", "is empty after tokenization"));
    }
    let v = lm.policy.config().vocab;
    let prompts = Prompts { tokens: &prompt_ids, batch: 1, len: prompt_ids.len(), pad: &[] };
    let logits = lm.policy.forward_host(prompts, 1, &completion_ids)?;
    let (mut logprobs, mut entropy) = (Vec::new(), Vec::new());
    let mut row = vec![0.0f64; v];
    for (t, &y) in completion_ids.iter().enumerate() {
        for (r, &z) in row.iter_mut().zip(&logits[t * v..(t + 1) * v]) {
            *r = z as f64;
        }
        let s = row_stats(&row, y as usize, args.temperature);
        logprobs.push(s.logp as f32);
        entropy.push(s.entropy as f32);
    }
    super::print_json(&serde_json::json!({
        "prompt_ids": prompt_ids,
        "completion_ids": completion_ids,
        "logprobs": super::json_f32(&logprobs),
        "entropy": super::json_f32(&entropy),
    }));
    Ok(())
}
