//! The ChatML conversation format and what a model's chat template tells
//! about it: whether it is ChatML, its default system message, its end of
//! turn.

use super::Tokenizer;
use crate::{Error, Result};

const IM_START: &str = "<|im_start|>";
const IM_END: &str = "<|im_end|>";

/// The tokens that close a turn in the common chat templates; generation
/// must stop on them even where the model's end of sequence is another.
const END_OF_TURN: [&str; 4] = [IM_END, "<|eot_id|>", "<|end|>", "<end_of_turn>"];

/// `<|im_start|>{role}\n{content}<|im_end|>\n` per message, then
/// `<|im_start|>assistant\n` when a reply is to follow.
pub fn chatml(messages: &[(&str, &str)], add_generation_prompt: bool) -> String {
    let mut out = String::new();
    for (role, content) in messages {
        out.push_str(IM_START);
        out.push_str(role);
        out.push('\n');
        out.push_str(content);
        out.push_str(IM_END);
        out.push('\n');
    }
    if add_generation_prompt {
        out.push_str(IM_START);
        out.push_str("assistant\n");
    }
    out
}

/// The id of the token that ends a turn: the first of [`END_OF_TURN`] the
/// template uses and the vocabulary has; without a template, `<|im_end|>`
/// when the vocabulary has ChatML's tokens, since [`Tokenizer::chat_prompt`]
/// then uses ChatML.
pub(super) fn end_of_turn(template: Option<&str>, id: impl Fn(&str) -> Option<u32>) -> Option<u32> {
    match template {
        Some(t) => END_OF_TURN.iter().filter(|m| t.contains(*m)).find_map(|m| id(m)),
        None => id(IM_START).and(id(IM_END)),
    }
}

/// The system message a ChatML template puts in when the conversation has
/// none: a string literal right after `<|im_start|>system\n`, up to
/// `<|im_end|>`. An occurrence followed by an expression (the user's own
/// system message) is not one.
pub(super) fn default_system(template: &str) -> Option<String> {
    let open = format!("{IM_START}system");
    template.match_indices(&open).find_map(|(at, _)| {
        let rest = &template[at + open.len()..];
        // Templates write the newline either raw or as the Jinja escape.
        let rest = rest.strip_prefix('\n').or_else(|| rest.strip_prefix("\\n"))?;
        let body = &rest[..rest.find(IM_END)?];
        literal_text(body)
    })
}

/// The text of the inside of a Jinja string literal, or `None` if `body`
/// leaves the literal (a quote, or a `{` opening a tag) or is empty.
fn literal_text(body: &str) -> Option<String> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                other => out.push(other),
            },
            '\'' | '"' | '{' | '}' => return None,
            other => out.push(other),
        }
    }
    (!out.is_empty()).then_some(out)
}

impl Tokenizer {
    /// Whether conversations are ChatML: the template uses `<|im_start|>`,
    /// or there is no template and the vocabulary has `<|im_start|>`.
    pub fn is_chatml(&self) -> bool {
        match &self.chat_template {
            Some(t) => t.contains(IM_START),
            None => self.inner.token_to_id(IM_START).is_some(),
        }
    }

    /// The prompt of one user turn awaiting the assistant's reply, rendered
    /// as the model's template renders it: ChatML, with the template's
    /// default system message when `system` is `None` and it has one.
    pub fn chat_prompt(&self, user: &str, system: Option<&str>) -> Result<String> {
        if !self.is_chatml() {
            let reason = match self.chat_template {
                Some(_) => "the chat template is not ChatML (it has no `<|im_start|>`)",
                None => "there is no chat template and the vocabulary has no `<|im_start|>`",
            };
            return Err(Error::at(&self.source, "chat_template", reason));
        }
        let default = self.chat_template.as_deref().and_then(default_system);
        let system = system.or(default.as_deref());
        let mut messages = Vec::with_capacity(2);
        if let Some(system) = system {
            messages.push(("system", system));
        }
        messages.push(("user", user));
        Ok(chatml(&messages, true))
    }
}
