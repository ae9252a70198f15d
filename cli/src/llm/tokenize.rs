//! `wapo tokenize --model M TEXT`: the ids and token strings of TEXT.

use clap::Args;

use super::ModelArg;
use crate::error::Result;

#[derive(Args, Debug)]
pub struct TokenizeArgs {
    #[command(flatten)]
    pub model: ModelArg,
    /// The text to tokenize (special tokens such as `<|im_start|>` are single tokens).
    pub text: String,
    /// Wrap the text in the model's chat template (ChatML) as a user message.
    #[arg(long)]
    pub chat: bool,
}

pub fn run(args: &TokenizeArgs) -> Result<()> {
    // The tokenizer alone: no need to load the weights.
    let tok = wapo_io::model::load_tokenizer(&args.model.model)?;
    let text = if args.chat { tok.chat_prompt(&args.text, None)? } else { args.text.clone() };
    let (ids, tokens) = tok.encode_tokens(&text)?;
    super::print_json(&serde_json::json!({ "ids": ids, "tokens": tokens }));
    Ok(())
}
