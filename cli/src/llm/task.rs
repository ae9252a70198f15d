//! A text task as the RL loop sees a task: token prompts (through the chat
//! template when asked), gold completions ending at the end-of-sequence
//! token, and rewards on the decoded text up to the first stop token.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use wapo_core::rl::ModelConfig;
use wapo_core::task::text::gsm8k::Gsm8k;
use wapo_core::task::text::{self, TextExample, TextTask};
use wapo_core::task::{Example, Split, Task};
use wapo_io::tokenizer::Tokenizer;

use crate::config::{TaskName, TrainConfig};
use crate::error::{CliError, Result};

/// Examples kept for scoring; the oldest are dropped past this many.
const SEEN_MAX: usize = 65_536;

pub struct LmTask {
    text: Box<dyn TextTask>,
    tokenizer: Tokenizer,
    chat: bool,
    vocab: usize,
    max_prompt: usize,
    max_new: usize,
    stop: Vec<u32>,
    /// The text example behind each prompt handed out, for its reward.
    seen: Mutex<HashMap<Vec<u32>, TextExample>>,
}

impl LmTask {
    /// `vocab` and `context` are the model's: prompts may take up to
    /// `context − max_new + 1` tokens.
    pub fn new(
        text: Box<dyn TextTask>,
        tokenizer: Tokenizer,
        chat: bool,
        vocab: usize,
        context: usize,
        max_new: usize,
    ) -> Result<Self> {
        if max_new == 0 || max_new >= context {
            return Err(CliError::config(
                "rollout.max_new_tokens",
                format!("must be in 1..{context} (the model's context)"),
            ));
        }
        let stop = tokenizer.eos().to_vec();
        if stop.is_empty() {
            return Err(CliError::config("model", "the tokenizer names no end-of-sequence token"));
        }
        let task = LmTask {
            text,
            tokenizer,
            chat,
            vocab,
            max_prompt: context + 1 - max_new,
            max_new,
            stop,
            seen: Mutex::new(HashMap::new()),
        };
        // Fail now, naming the field, rather than on the first batch.
        let first = task.text.example(Split::Heldout, 0);
        task.prompt_ids(&first.prompt)?;
        Ok(task)
    }

    /// The text task `cfg.task` for `model` with `tokenizer`, as configured
    /// (`rollout.max_new_tokens`, `rollout.chat`).
    pub fn from_config(cfg: &TrainConfig, tokenizer: Tokenizer, model: &ModelConfig) -> Result<Self> {
        let name = cfg.task.name.as_str();
        if !cfg.task.name.is_text() {
            return Err(CliError::config(
                "task.name",
                format!(
                    "`{name}` is a toy task with its own vocabulary; a pretrained model takes arith, countdown, gsm, gsm8k or jsonl"
                ),
            ));
        }
        let text: Box<dyn TextTask> = match cfg.task.name {
            TaskName::Jsonl => {
                let j = &cfg.task.jsonl;
                if j.file.is_empty() {
                    return Err(CliError::config("task.jsonl.file", "the jsonl task needs its file (--task-file F)"));
                }
                let path = Path::new(&j.file);
                Box::new(wapo_io::jsonl::JsonlTask::load(path, &j.verifier, cfg.task.seed, j.held_out)?)
            }
            TaskName::Gsm8k => {
                let g = cfg.gsm8k_config();
                g.validate().map_err(|e| CliError::from(e).under("task"))?;
                let dir = &cfg.task.gsm8k.dir;
                let (train, test) = wapo_io::gsm8k::read((!dir.is_empty()).then(|| Path::new(dir)), &g)?;
                Box::new(Gsm8k::new(g, train, test).map_err(|e| CliError::from(e).under("task"))?)
            }
            _ => {
                text::by_name(name, cfg.task.seed, &cfg.text_options()).map_err(|e| CliError::from(e).under("task"))?
            }
        };
        let max_new = cfg.max_new_tokens();
        LmTask::new(text, tokenizer, cfg.rollout.chat, model.vocab, model.context, max_new)
    }

    fn prompt_ids(&self, user: &str) -> Result<Vec<u32>> {
        let text = if self.chat { self.tokenizer.chat_prompt(user, None)? } else { user.to_string() };
        let ids = self.tokenizer.encode(&text)?;
        if ids.is_empty() || ids.len() > self.max_prompt {
            return Err(CliError::config(
                "task",
                format!("a prompt of {} tokens does not fit the model's context with max_new_tokens", ids.len()),
            ));
        }
        Ok(ids)
    }

    /// The completion's text up to (not including) its first stop token.
    pub fn completion_text(&self, completion: &[u32]) -> String {
        let end = completion.iter().position(|y| self.stop.contains(y)).unwrap_or(completion.len());
        self.tokenizer.decode(&completion[..end], true).unwrap_or_default()
    }

    /// The text example behind a prompt handed out by [`Task::example`].
    pub fn text_example(&self, prompt: &[u32]) -> Option<TextExample> {
        self.seen.lock().ok()?.get(prompt).cloned()
    }
}

impl Task for LmTask {
    fn name(&self) -> &str {
        self.text.name()
    }
    fn vocab_size(&self) -> usize {
        self.vocab
    }
    fn prompt_len(&self) -> usize {
        self.max_prompt
    }
    fn completion_len(&self) -> usize {
        self.max_new
    }

    fn example(&self, split: Split, index: u64) -> Example {
        let te = self.text.example(split, index);
        // Checked at construction for one example; a later prompt that does
        // not tokenize is an empty prompt, which the batch check names.
        let prompt = self.prompt_ids(&te.prompt).unwrap_or_default();
        let mut gold = self.tokenizer.encode_continuation(&te.answer).unwrap_or_default();
        gold.truncate(self.max_new - 1);
        gold.resize(self.max_new, self.stop[0]);
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() >= SEEN_MAX {
                seen.clear();
            }
            seen.insert(prompt.clone(), te);
        }
        Example { prompt, gold }
    }

    fn reward(&self, example: &Example, completion: &[u32]) -> f64 {
        match self.text_example(&example.prompt) {
            Some(te) => self.text.reward(&te, &self.completion_text(completion)),
            None => 0.0,
        }
    }

    fn answer(&self, example: &Example, completion: &[u32]) -> Option<String> {
        let te = self.text_example(&example.prompt)?;
        self.text.answer(&te, &self.completion_text(completion))
    }

    fn render(&self, tokens: &[u32]) -> String {
        self.tokenizer.decode(tokens, false).unwrap_or_default()
    }

    fn stop_tokens(&self) -> &[u32] {
        &self.stop
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wapo_io::tokenizer::{chatml, tiny};

    fn gsm8k_config(edit: impl FnOnce(&mut TrainConfig)) -> TrainConfig {
        let mut cfg = TrainConfig::default();
        cfg.task.name = TaskName::Gsm8k;
        cfg.rollout.chat = true;
        edit(&mut cfg);
        cfg
    }

    fn lm_task(cfg: &TrainConfig) -> Result<LmTask> {
        let tokenizer = tiny();
        let model = ModelConfig::llama(tokenizer.vocab_size(), 4096, 64, 2, 4, 2, 96, 10_000.0);
        LmTask::from_config(cfg, tokenizer, &model)
    }

    #[test]
    fn gsm8k_prompts_render_through_the_chat_template_and_the_gold_answer_pays() {
        let task = lm_task(&gsm8k_config(|_| {})).unwrap();
        assert_eq!(task.name(), "gsm8k");
        let e = task.example(Split::Heldout, 0);
        let te = task.text_example(&e.prompt).unwrap();
        assert!(te.prompt.starts_with("Janet\u{2019}s ducks lay 16 eggs per day."), "{}", te.prompt);
        assert!(te.prompt.ends_with(" Show your steps, then give the final answer after ####."), "{}", te.prompt);
        assert_eq!(task.render(&e.prompt), chatml(&[("user", &te.prompt)], true));
        // The gold completion (cut to max_new_tokens) and a bare `#### 18` earn 1; others 0.
        let tokenizer = tiny();
        let ids = |text: &str| {
            let mut ids = tokenizer.encode_continuation(text).unwrap();
            ids.push(tokenizer.eos()[0]);
            ids
        };
        assert_eq!(task.reward(&e, &ids("#### 18")), 1.0);
        assert_eq!(task.reward(&e, &ids("She makes 9 * 2 = $18 a day.\n#### 18")), 1.0);
        for wrong in ["#### 17", "16 - 3 - 4 = 9", ""] {
            assert_eq!(task.reward(&e, &ids(wrong)), 0.0, "{wrong:?}");
        }
        // The training split is GSM8K's train file, not its test file.
        let train = task.example(Split::Train, 0);
        assert!(task.text_example(&train.prompt).unwrap().prompt.starts_with("Natalia sold clips"));
    }

    #[test]
    fn gsm8k_errors_name_the_file_or_the_field() {
        let dir = std::env::temp_dir().join(format!("wapo-cli-gsm8k-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = "{\"question\": \"Q?\", \"answer\": \"#### 2\"}\n";
        std::fs::write(dir.join("train.jsonl"), format!("{good}{{\"question\": \"Q?\"}}\n")).unwrap();
        std::fs::write(dir.join("test.jsonl"), good).unwrap();
        let cfg = gsm8k_config(|c| c.task.gsm8k.dir = dir.to_str().unwrap().to_string());
        let err = lm_task(&cfg).err().unwrap().to_string();
        assert!(err.contains("train.jsonl") && err.contains("line 2") && err.contains("missing field"), "{err}");
        std::fs::write(dir.join("train.jsonl"), good).unwrap();
        assert_eq!(lm_task(&cfg).unwrap().text.held_out_size(), 1);
        let err = lm_task(&gsm8k_config(|c| c.task.gsm8k.format_bonus = 2.0)).err().unwrap();
        assert!(matches!(&err, CliError::Config { field, .. } if field == "task.gsm8k.format_bonus"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
