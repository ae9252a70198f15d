//! `wapo generate --model M --prompt P`: sampled (or greedy, at τ = 0)
//! continuation with a KV cache, stopping at the model's end-of-sequence
//! tokens or after `--max-new-tokens`, on the chosen backend (on wgpu the
//! tokens are drawn on the device from the same uniforms).

use clap::Args;
use wapo_core::rl::{Policy, Prompts, Sampling, TrainState};

use super::{BackendArg, ModelArg};
use crate::error::{CliError, Result};

#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: ModelArg,
    #[command(flatten)]
    pub backend: BackendArg,
    #[arg(long)]
    pub prompt: String,
    /// Wrap the prompt in the model's chat template (ChatML) as a user message.
    #[arg(long)]
    pub chat: bool,
    #[arg(long, default_value_t = 64)]
    pub max_new_tokens: usize,
    /// Sampling temperature; 0 decodes greedily.
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    /// Keep the smallest set of most likely tokens whose mass reaches p (1: all).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f64,
    /// Keep the k most likely tokens (0: all).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn run(args: &GenerateArgs) -> Result<()> {
    if args.max_new_tokens == 0 {
        return Err(CliError::config("max-new-tokens", "must be ≥ 1"));
    }
    if !(args.top_p > 0.0 && args.top_p <= 1.0) {
        return Err(CliError::config("top-p", "must be in (0, 1]"));
    }
    with_pretrained!(args.backend.get()?, &args.model.model, |policy, meta| {
        let mut policy = policy;
        let ids = super::prompt_ids(&meta.tokenizer, &args.prompt, args.chat)?;
        let steps = args.max_new_tokens.min(policy.config().context.saturating_sub(ids.len()) + 1);
        if steps == 0 || ids.len() > policy.config().context {
            return Err(CliError::config("prompt", "is longer than the model's context"));
        }
        let uniforms = TrainState::new(args.seed).uniforms(steps);
        let sampling = Sampling { top_k: args.top_k, top_p: args.top_p, stop: meta.tokenizer.eos().to_vec() };
        let prompts = Prompts { tokens: &ids, batch: 1, len: ids.len(), pad: &[] };
        let out = policy.generate(prompts, 1, steps, args.temperature, &uniforms, &sampling)?;
        let len = out.lengths[0];
        let new = &out.tokens[..len];
        let stopped = new.last().is_some_and(|y| sampling.stop.contains(y));
        // The stop token ends the text; it is not part of it.
        let text_ids = if stopped { &new[..len - 1] } else { new };
        let text = meta.tokenizer.decode(text_ids, true)?;
        let finish = if stopped { "stop" } else { "length" };
        super::print_json(&serde_json::json!({
            "ids": new,
            "text": text,
            "logprobs": super::json_f32(&out.logprobs[..len]),
            "finish_reason": finish,
        }));
        Ok(())
    })
}
