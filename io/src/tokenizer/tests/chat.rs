//! ChatML and chat templates, against the format written out by hand.

use std::path::Path;

use crate::tokenizer::chat::default_system;
use crate::tokenizer::{GgufVocab, Tokenizer, chatml, tiny, tiny_vocab};

/// SmolLM2-135M-Instruct's `chat_template`, as its GGUF file stores it.
const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// The shape of Qwen2.5's template: the newlines as Jinja escapes, the
/// user's system message tried before the default one.
const QWEN_LIKE: &str = r"{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}{%- else %}{{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}{%- endif %}{%- for message in messages %}{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}";

const PLAIN_CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

const LLAMA3_LIKE: &str = "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] + '<|eot_id|>' }}{% endfor %}";

#[test]
fn chatml_format() {
    assert_eq!(
        chatml(&[("system", "S"), ("user", "U")], true),
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(
        chatml(&[("user", "a\nb"), ("assistant", "c")], false),
        "<|im_start|>user\na\nb<|im_end|>\n<|im_start|>assistant\nc<|im_end|>\n"
    );
    assert_eq!(chatml(&[], true), "<|im_start|>assistant\n");
    assert_eq!(chatml(&[], false), "");
}

#[test]
fn default_system_messages() {
    assert_eq!(
        default_system(SMOLLM2).as_deref(),
        Some("You are a helpful AI assistant named SmolLM, trained by Hugging Face")
    );
    assert_eq!(
        default_system(QWEN_LIKE).as_deref(),
        Some("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")
    );
    assert_eq!(default_system(PLAIN_CHATML), None);
    assert_eq!(default_system(LLAMA3_LIKE), None);
}

fn with_template(template: Option<&str>) -> Tokenizer {
    let v = GgufVocab { chat_template: template.map(String::from), ..tiny_vocab() };
    Tokenizer::from_gguf_vocab(&v, Path::new("t.gguf")).unwrap()
}

#[test]
fn chat_prompts() {
    let t = with_template(Some(SMOLLM2));
    assert_eq!(
        t.chat_prompt("Hi", None).unwrap(),
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    let t = with_template(Some(PLAIN_CHATML));
    assert_eq!(t.chat_prompt("Hi", None).unwrap(), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    assert_eq!(
        t.chat_prompt("Hi", Some("S")).unwrap(),
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    // No template, but the vocabulary has ChatML's tokens.
    assert_eq!(tiny().chat_prompt("Hi", None).unwrap(), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");

    let e = with_template(Some(LLAMA3_LIKE)).chat_prompt("Hi", None).unwrap_err();
    assert_eq!((e.file.as_path(), e.at.as_deref()), (Path::new("t.gguf"), Some("chat_template")));
    assert!(e.reason.contains("not ChatML"), "{e}");
}

#[test]
fn end_of_turn_ends_generation() {
    // The template's end of turn joins the model's end of sequence.
    assert_eq!(with_template(Some(SMOLLM2)).eos(), [0, 2]);
    // Llama 3's end of turn is not in this vocabulary: nothing to add.
    assert_eq!(with_template(Some(LLAMA3_LIKE)).eos(), [0]);
}
