//! Pretrained-model files end to end through the CPU model: a tiny random
//! llama with a tiny tokenizer written in both formats by the test itself
//! (GGUF with F32, Q8_0 and Q4_1 tensors; a Hugging Face directory), loaded
//! back through the one loader; the formats give the same logits, a save of
//! what was loaded gives identical logits, and the real SmolLM2 file
//! answers as the model does.

use std::path::{Path, PathBuf};

use wapo_core::rl::{Layout, ModelConfig, Named, Policy, Prompts};
use wapo_cpu::model::CpuModel;
use wapo_io::gguf::{GgmlType, write_llama};
use wapo_io::model::{Loaded, load, save_hf_dir, save_hf_parts};
use wapo_io::testing::real_model_path;
use wapo_io::tokenizer::{tiny, tiny_vocab};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wapo-model-files-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A tiny llama over the tiny tokenizer's vocabulary; C = 64 so that every
/// row is whole quantization blocks.
fn tiny_llama(tied: bool) -> (ModelConfig, Vec<Named>) {
    let cfg =
        ModelConfig { tied_embeddings: tied, ..ModelConfig::llama(tiny().vocab_size(), 64, 64, 2, 4, 2, 96, 10_000.0) };
    let lay = Layout::new(&cfg);
    let mut p = lay.init(&cfg, 7);
    for x in &mut p {
        *x *= 4.0; // logits well away from uniform
    }
    (cfg, lay.named(&p, ""))
}

/// Logits (T, V) of `text`'s tokens as a prompt of one token and a completion.
fn logits(model: &Loaded, text: &str) -> Vec<f32> {
    let ids = model.tokenizer.encode(text).unwrap();
    let mut gpt: CpuModel = CpuModel::from_named(model.config, &model.tensors, ()).unwrap();
    gpt.forward_host(Prompts { tokens: &ids[..1], batch: 1, len: 1, pad: &[] }, 1, &ids[1..]).unwrap().to_vec()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn rms(a: &[f32]) -> f64 {
    (a.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / a.len() as f64).sqrt()
}

fn rms_diff(a: &[f32], b: &[f32]) -> f64 {
    (a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum::<f64>() / a.len() as f64).sqrt()
}

fn write_gguf(path: &Path, cfg: &ModelConfig, tensors: &[Named], ty: GgmlType) {
    // Norm gains stay F32, as llama.cpp's converter keeps 1-D tensors.
    write_llama(path, cfg, "llama", tensors, &tiny_vocab(), |name| {
        if name.ends_with("norm.weight") { GgmlType::F32 } else { ty }
    })
    .unwrap();
}

#[test]
fn both_formats_give_the_same_logits() {
    const TEXT: &str = "<|im_start|>user\n12+34=<|im_end|>";
    for tied in [true, false] {
        let (cfg, tensors) = tiny_llama(tied);
        let d = dir(&format!("formats-{tied}"));
        let hf = d.join("hf");
        save_hf_parts(&hf, &cfg, "LlamaForCausalLM", "llama", &tensors, &tiny()).unwrap();
        let gguf = d.join("model.gguf");
        write_gguf(&gguf, &cfg, &tensors, GgmlType::F32);
        let (a, b) = (load(&hf).unwrap(), load(&gguf).unwrap());
        assert_eq!(a.config, cfg);
        assert_eq!(b.config, cfg);
        assert_eq!(a.tokenizer.encode(TEXT).unwrap(), b.tokenizer.encode(TEXT).unwrap());
        let (za, zb) = (logits(&a, TEXT), logits(&b, TEXT));
        let scale = za.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        println!("tied={tied}: HF vs GGUF F32 logits max |Δ| {:.2e} (scale {scale:.1})", max_diff(&za, &zb));
        assert!(scale > 1.0);
        assert_eq!(za, zb, "the same f32 weights through both files");

        // Quantized files: near the f32 logits (weights are ~0.5 % off at 8
        // bits, ~8 % at 4; this small random model amplifies that ~6×), and
        // 8 bits nearer than 4.
        let mut errors = Vec::new();
        for (ty, tol) in [(GgmlType::Q8_0, 0.08), (GgmlType::Q4_1, 0.8)] {
            let q = d.join(format!("model-{ty}.gguf"));
            write_gguf(&q, &cfg, &tensors, ty);
            let zq = logits(&load(&q).unwrap(), TEXT);
            let rel = rms_diff(&za, &zq) / rms(&za);
            println!("  {ty}: logits relative RMS |Δ| {rel:.2e}");
            assert!(rel > 0.0 && rel < tol, "{ty}: {rel}");
            errors.push(rel);
        }
        assert!(errors[0] < errors[1] / 4.0, "{errors:?}");
    }
}

#[test]
fn a_saved_model_loads_with_identical_logits() {
    let (cfg, tensors) = tiny_llama(true);
    let d = dir("resave");
    let gguf = d.join("model.gguf");
    write_gguf(&gguf, &cfg, &tensors, GgmlType::Q8_0);
    let first = load(&gguf).unwrap();
    save_hf_dir(&d.join("hf"), &first).unwrap();
    let second = load(&d.join("hf")).unwrap();
    for text in ["hello world", "1+2=3", "<|im_start|>x<|im_end|>"] {
        assert_eq!(logits(&first, text), logits(&second, text), "{text}");
    }
    assert_eq!(first.tokenizer.eos(), second.tokenizer.eos());
}

#[test]
fn the_real_model_answers_paris() {
    let Some(path) = real_model_path() else { return };
    let model = load(&path).unwrap();
    let ids = model.tokenizer.encode("The capital of France is").unwrap();
    assert_eq!(ids, [504, 3575, 282, 4649, 314]);
    let mut gpt: CpuModel = CpuModel::from_named(model.config, &model.tensors, ()).unwrap();
    let out = gpt.greedy(Prompts { tokens: &ids, batch: 1, len: ids.len(), pad: &[] }, 3).unwrap();
    let text = model.tokenizer.decode(&out, true).unwrap();
    println!("greedy continuation: {text:?}");
    assert!(text.starts_with(" Paris"), "{text:?}");

    // Converted to a Hugging Face directory: the same logits bit for bit.
    let d = dir("real");
    save_hf_dir(&d, &model).unwrap();
    let again = load(&d).unwrap();
    let prompt = Prompts { tokens: &ids[..2], batch: 1, len: 2, pad: &[] };
    let za = gpt.forward_host(prompt, 1, &ids[2..]).unwrap().to_vec();
    let mut other: CpuModel = CpuModel::from_named(again.config, &again.tensors, ()).unwrap();
    assert_eq!(za, other.forward_host(prompt, 1, &ids[2..]).unwrap().to_vec());
    let _ = std::fs::remove_dir_all(&d);
}
