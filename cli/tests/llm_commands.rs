//! `wapo tokenize | score | generate | convert` as a user runs them, on a
//! tiny random llama written by the test in both formats, and on the real
//! SmolLM2 file when it is there: JSON on stdout, exit code 2 and a message
//! naming the file for a bad one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use wapo_core::rl::{Layout, ModelConfig};
use wapo_io::gguf::{GgmlType, write_llama};
use wapo_io::testing::real_model_path;
use wapo_io::tokenizer::{tiny, tiny_vocab};

fn wapo(args: &[&str], model: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wapo"))
        .args(&args[..1])
        .arg("--model")
        .arg(model)
        .args(&args[1..])
        .output()
        .unwrap()
}

fn json(out: &Output) -> Value {
    assert!(out.status.success(), "exit {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

/// A tiny llama (tiny tokenizer) as a Q8_0 GGUF file and as a Hugging Face
/// directory, under a fresh temporary folder.
fn tiny_model(name: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("wapo-cli-llm-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg =
        ModelConfig { tied_embeddings: true, ..ModelConfig::llama(tiny().vocab_size(), 64, 64, 2, 4, 2, 96, 10_000.0) };
    let lay = Layout::new(&cfg);
    let tensors = lay.named(&lay.init(&cfg, 3).iter().map(|x| x * 4.0).collect::<Vec<_>>(), "");
    let gguf = dir.join("tiny.gguf");
    let ty = |name: &str| if name.ends_with("norm.weight") { GgmlType::F32 } else { GgmlType::Q8_0 };
    write_llama(&gguf, &cfg, "llama", &tensors, &tiny_vocab(), ty).unwrap();
    let hf = dir.join("hf");
    wapo_io::model::save_hf_parts(&hf, &cfg, "LlamaForCausalLM", "llama", &tensors, &tiny()).unwrap();
    (gguf, hf)
}

#[test]
fn tokenize_gives_ids_and_tokens() {
    let (gguf, hf) = tiny_model("tokenize");
    let (ids, tokens) = tiny().encode_tokens("12+34 <|im_end|>").unwrap();
    for model in [&gguf, &hf] {
        let v = json(&wapo(&["tokenize", "12+34 <|im_end|>"], model));
        assert_eq!(v["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect::<Vec<_>>(), ids);
        assert_eq!(v["tokens"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect::<Vec<_>>(), tokens);
    }
}

#[test]
fn score_generate_and_convert_agree() {
    let (gguf, _) = tiny_model("score");
    let s = json(&wapo(&["score", "--prompt", "What is 1+1?", "--completion", " 2", "--temperature", "0.7"], &gguf));
    let (lp, h) = (floats(&s["logprobs"]), floats(&s["entropy"]));
    assert_eq!(lp.len(), s["completion_ids"].as_array().unwrap().len());
    assert!(!lp.is_empty() && lp.iter().all(|&l| l < 0.0) && h.iter().all(|&x| x > 0.0), "{s}");

    // Greedy generation is deterministic and its ℓ are those of the first
    // token scored as a completion.
    let g =
        json(&wapo(&["generate", "--prompt", "What is 1+1?", "--temperature", "0", "--max-new-tokens", "6"], &gguf));
    assert_eq!(
        g,
        json(&wapo(&["generate", "--prompt", "What is 1+1?", "--temperature", "0", "--max-new-tokens", "6"], &gguf))
    );
    let ids = g["ids"].as_array().unwrap();
    assert!(!ids.is_empty() && ids.len() <= 6);
    let finish = g["finish_reason"].as_str().unwrap();
    assert!(finish == "stop" || (finish == "length" && ids.len() == 6), "{g}");
    let first = tiny().decode(&[ids[0].as_u64().unwrap() as u32], false).unwrap();
    if !first.starts_with("<|") {
        let s1 = json(&wapo(&["score", "--prompt", "What is 1+1?", "--completion", &first], &gguf));
        if s1["completion_ids"].as_array().unwrap().len() == 1 {
            let (a, b) = (floats(&s1["logprobs"])[0], floats(&g["logprobs"])[0]);
            assert!((a - b).abs() < 1e-4, "generate ℓ {b} vs score ℓ {a}");
        }
    }
    // Sampling with a seed repeats; top-k 1 is greedy.
    let args = [
        "generate",
        "--prompt",
        "Hi",
        "--temperature",
        "1.2",
        "--top-p",
        "0.9",
        "--seed",
        "5",
        "--max-new-tokens",
        "8",
    ];
    assert_eq!(json(&wapo(&args, &gguf)), json(&wapo(&args, &gguf)));
    let k1 = json(&wapo(&["generate", "--prompt", "Hi", "--top-k", "1", "--max-new-tokens", "4"], &gguf));
    let greedy = json(&wapo(&["generate", "--prompt", "Hi", "--temperature", "0", "--max-new-tokens", "4"], &gguf));
    assert_eq!(k1["ids"], greedy["ids"]);

    // convert → the directory scores the same, bit for bit.
    let out = gguf.with_extension("converted");
    let c = Command::new(env!("CARGO_BIN_EXE_wapo"))
        .arg("convert")
        .arg("--model")
        .arg(&gguf)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    json(&c);
    for f in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let s2 = json(&wapo(&["score", "--prompt", "What is 1+1?", "--completion", " 2", "--temperature", "0.7"], &out));
    assert_eq!(s["logprobs"], s2["logprobs"]);
}

#[test]
fn bad_model_files_exit_2_naming_the_file() {
    let (gguf, hf) = tiny_model("bad");
    let bytes = std::fs::read(&gguf).unwrap();
    let cut = gguf.with_file_name("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::remove_file(hf.join("config.json")).unwrap();
    for (model, what) in
        [(cut.as_path(), "cut.gguf"), (hf.as_path(), "config.json"), (Path::new("/nonexistent/m.gguf"), "m.gguf")]
    {
        let out = wapo(&["generate", "--prompt", "x"], model);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(what) && out.stdout.is_empty(), "{err}");
    }
}

#[test]
fn the_real_model_tokenizes_and_answers_as_it_does() {
    let Some(model) = real_model_path() else { return };
    let v = json(&wapo(&["tokenize", "The capital of France is"], &model));
    assert_eq!(v["ids"], serde_json::json!([504, 3575, 282, 4649, 314]));
    let v = json(&wapo(&["tokenize", " 12345+678="], &model));
    assert_eq!(v["tokens"], serde_json::json!(["Ġ", "1", "2", "3", "4", "5", "+", "6", "7", "8", "="]));
    let g = json(&wapo(
        &["generate", "--prompt", "The capital of France is", "--temperature", "0", "--max-new-tokens", "3"],
        &model,
    ));
    assert!(g["text"].as_str().unwrap().starts_with(" Paris."), "{g}");
}

#[test]
fn train_a_pretrained_model_on_a_text_task() {
    let (gguf, _) = tiny_model("train");
    let out_dir = gguf.parent().unwrap().join("runs");
    let out = Command::new(env!("CARGO_BIN_EXE_wapo"))
        .args(["train", "--model"])
        .arg(&gguf)
        .args(["--task", "arith", "--rl-steps", "2", "--prompts", "2", "--group", "3", "--max-new-tokens", "6"])
        .args(["--eval-examples", "4", "--progress", "false", "--name", "tiny", "--out-dir"])
        .arg(&out_dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("RL gain in held-out greedy exact match"), "{text}");
    let run = out_dir.join("tiny");
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let rl: Vec<Value> =
        metrics.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).filter(|r| r["phase"] == "rl").collect();
    assert_eq!(rl.len(), 2, "{metrics}");
    for r in &rl {
        let kept = r["objective/kept_tokens"].as_f64().unwrap();
        assert!(kept.is_finite() && kept <= (2 * 3 * 6) as f64, "{r}");
    }
    // The fine-tuned model is a Hugging Face directory the tools load again,
    // and the final checkpoint evaluates with the run's config.
    let model = run.join("model");
    json(&wapo(&["score", "--prompt", "1+1=", "--completion", "2"], &model));
    let ckpt = run.join("checkpoints").join("step-000002.safetensors");
    let e = Command::new(env!("CARGO_BIN_EXE_wapo")).arg("eval").arg(&ckpt).arg("--json").output().unwrap();
    let v = json(&e);
    let acc = v["eval/greedy_exact"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc), "{v}");
    // A toy task on a pretrained model, and a text task without one, are refused by name.
    let bad = Command::new(env!("CARGO_BIN_EXE_wapo"))
        .args(["train", "--model"])
        .arg(&gguf)
        .args(["--task", "add"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("task.name"));
    let bad = Command::new(env!("CARGO_BIN_EXE_wapo")).args(["train", "--task", "gsm"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--model"));
}

/// `wapo <cmd> --model M … --out-dir D` without a progress bar.
fn lm(cmd: &str, model: &Path, out_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wapo"))
        .args([cmd, "--model"])
        .arg(model)
        .args(["--progress", "false", "--out-dir"])
        .arg(out_dir)
        .args(args)
        .output()
        .unwrap()
}

/// `wapo <cmd> --model M` on the tiny arith setting.
fn lm_run(cmd: &str, model: &Path, out_dir: &Path, extra: &[&str]) -> Output {
    let tiny = ["--task", "arith", "--prompts", "2", "--group", "3", "--max-new-tokens", "6"];
    lm(cmd, model, out_dir, &[&tiny[..], &["--eval-examples", "4", "--eval-every", "1"], extra].concat())
}

fn success(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    text
}

/// metrics.jsonl without wall-clock timings, which must repeat bit for bit.
fn records_without_timings(run: &Path) -> Vec<serde_json::Map<String, Value>> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    text.lines()
        .map(|l| {
            let mut r = serde_json::from_str::<Value>(l).unwrap().as_object().unwrap().clone();
            r.retain(|k, _| !k.starts_with("time/"));
            r
        })
        .collect()
}

#[test]
fn a_pretrained_run_resumes_bit_exactly_and_reports_lengths() {
    let (gguf, _) = tiny_model("resume");
    let out_dir = gguf.parent().unwrap().join("runs");
    let whole = lm_run("train", &gguf, &out_dir, &["--rl-steps", "3", "--checkpoint-every", "1", "--name", "whole"]);
    let text = success(&whole);
    assert!(text.contains("mean length") && text.contains("cut at max") && text.contains("peak memory"), "{text}");
    success(&lm_run("train", &gguf, &out_dir, &["--rl-steps", "2", "--checkpoint-every", "1", "--name", "part"]));
    let resumed =
        lm_run("train", &gguf, &out_dir, &["--rl-steps", "3", "--checkpoint-every", "1", "--name", "part", "--resume"]);
    let said = format!("{}{}", success(&resumed), String::from_utf8_lossy(&resumed.stderr));
    assert!(said.contains("resuming"), "{said}");
    let (a, b) = (records_without_timings(&out_dir.join("whole")), records_without_timings(&out_dir.join("part")));
    assert_eq!(a.len(), b.len());
    assert_eq!(a, b, "a resumed pretrained run must repeat the uninterrupted one");
    let evals: Vec<_> = a.iter().filter(|r| r["phase"] == "eval").collect();
    assert_eq!(evals.len(), 4, "before RL and after each of 3 steps");
    for r in evals {
        let (len, cut) = (r["eval/length_mean"].as_f64().unwrap(), r["eval/truncated_fraction"].as_f64().unwrap());
        // Tokens generated, the stop token included, of at most 6.
        assert!((1.0..=6.0).contains(&len), "{r:?}");
        assert!((0.0..=1.0).contains(&cut), "{r:?}");
    }
}

#[test]
fn a_jsonl_task_trains_and_its_bad_line_is_named() {
    let (gguf, _) = tiny_model("jsonl");
    let dir = gguf.parent().unwrap().to_path_buf();
    let good = dir.join("sums.jsonl");
    let lines: Vec<String> =
        (0..12).map(|i| format!("{{\"prompt\": \"{i}+{i}=\", \"answer\": \"{}\"}}", 2 * i)).collect();
    std::fs::write(&good, lines.join("\n")).unwrap();
    let out_dir = dir.join("runs");
    let tiny = ["--rl-steps", "1", "--name", "sums", "--prompts", "2", "--group", "2", "--max-new-tokens", "4"];
    let jsonl = ["--task", "jsonl", "--task-file", good.to_str().unwrap(), "--verifier", "exact", "--held-out", "0.25"];
    let run = lm("train", &gguf, &out_dir, &[&tiny[..], &jsonl, &["--eval-examples", "3"]].concat());
    assert!(success(&run).contains("task jsonl"));
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, format!("{}\n{}\n{{\"prompt\": 3}}\n", lines[0], lines[1])).unwrap();
    for (file, what) in [(bad.to_str().unwrap(), "line 3"), ("", "task.jsonl.file")] {
        let out = lm("train", &gguf, &out_dir, &["--task", "jsonl", "--task-file", file]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(what), "{err}");
    }
}

#[test]
fn a_gsm8k_directory_trains_and_its_bad_line_is_named() {
    // The tiny model's context (64 tokens) fits no real GSM8K problem, so
    // `--gsm8k-dir` gives it short ones in GSM8K's format.
    let (gguf, _) = tiny_model("gsm8k");
    let dir = gguf.parent().unwrap().join("gsm8k");
    std::fs::create_dir_all(&dir).unwrap();
    let line = |i: usize| {
        format!("{{\"question\": \"{i}+{i}=\", \"answer\": \"{i}+{i}=<<{i}+{i}={}>>\\n#### {}\"}}\n", 2 * i, 2 * i)
    };
    std::fs::write(dir.join("train.jsonl"), (0..8).map(line).collect::<String>()).unwrap();
    std::fs::write(dir.join("test.jsonl"), (8..11).map(line).collect::<String>()).unwrap();
    let out_dir = gguf.parent().unwrap().join("runs");
    let tiny = ["--rl-steps", "1", "--name", "gsm8k", "--prompts", "2", "--group", "2", "--max-new-tokens", "4"];
    let task = ["--task", "gsm8k", "--gsm8k-dir", dir.to_str().unwrap(), "--gsm8k-instruction", "", "--chat", "false"];
    let run = lm("train", &gguf, &out_dir, &[&tiny[..], &task, &["--eval-examples", "3"]].concat());
    assert!(success(&run).contains("task gsm8k"));
    std::fs::write(dir.join("test.jsonl"), format!("{}{{\"question\": \"1+1=\", \"answer\": \"2\"}}\n", line(8)))
        .unwrap();
    let out = lm("train", &gguf, &out_dir, &task);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("test.jsonl") && err.contains("line 2") && err.contains("####"), "{err}");
}

#[test]
fn compare_takes_a_pretrained_model() {
    let (gguf, _) = tiny_model("compare");
    let out_dir = gguf.parent().unwrap().join("runs");
    let out = lm_run("compare", &gguf, &out_dir, &["--objectives", "wapo,grpo", "--seeds", "0", "--rl-steps", "1"]);
    let text = success(&out);
    for objective in ["wapo", "grpo"] {
        assert!(text.lines().any(|l| l.starts_with(objective)), "{text}");
        let run = out_dir.join("compare-arith").join(format!("{objective}-seed0"));
        assert!(run.join("model").join("config.json").exists(), "{}", run.display());
        let rl = records_without_timings(&run).into_iter().filter(|r| r["phase"] == "rl").count();
        assert_eq!(rl, 1);
    }
}

#[test]
fn a_pretrained_model_trains_on_wgpu_as_on_the_cpu() {
    if wapo_wgpu::test_context().is_none() {
        return;
    }
    let (gguf, _) = tiny_model("wgpu");
    let out_dir = gguf.parent().unwrap().join("runs");
    let mut first = Vec::new();
    for backend in ["cpu", "wgpu"] {
        let out = lm_run("train", &gguf, &out_dir, &["--rl-steps", "2", "--backend", backend, "--name", backend]);
        let text = success(&out);
        assert!(text.contains(&format!("on backend {backend}")), "{text}");
        let rl: Vec<_> =
            records_without_timings(&out_dir.join(backend)).into_iter().filter(|r| r["phase"] == "rl").collect();
        assert_eq!(rl.len(), 2, "{backend}");
        for r in &rl {
            for (k, v) in r.iter() {
                assert!(!v.is_number() || v.as_f64().unwrap().is_finite(), "{backend}: {k} = {v}");
            }
        }
        first.push(rl[0].clone());
    }
    // The first step samples before any update: the same weights and
    // uniforms draw the same completions on both backends.
    let (cpu, gpu) = (&first[0], &first[1]);
    for key in ["rollout/reward_mean", "objective/kept_tokens", "bins/pos_peak_count", "bins/neg_valley_count"] {
        assert_eq!(cpu[key], gpu[key], "{key}");
    }
    for key in ["entropy/mean", "objective/loss"] {
        let (a, b) = (cpu[key].as_f64().unwrap(), gpu[key].as_f64().unwrap());
        assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "{key}: cpu {a} wgpu {b}");
    }
}

#[test]
fn score_and_generate_on_wgpu_match_the_cpu() {
    if wapo_wgpu::test_context().is_none() {
        return;
    }
    let (gguf, _) = tiny_model("wgpu-commands");
    let on = |backend: &str, args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--backend", backend]);
        json(&wapo(&all, &gguf))
    };
    let score = ["score", "--prompt", "What is 1+1?", "--completion", " 2 and 3", "--temperature", "0.7"];
    let (cpu, gpu) = (on("cpu", &score), on("wgpu", &score));
    assert_eq!(cpu["completion_ids"], gpu["completion_ids"]);
    for key in ["logprobs", "entropy"] {
        let (a, b) = (floats(&cpu[key]), floats(&gpu[key]));
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-4 * x.abs().max(1.0), "{key}: cpu {x} wgpu {y}");
        }
    }
    // Greedy, and sampled from the same uniforms: the same tokens on both.
    for extra in
        [&["--temperature", "0"][..], &["--temperature", "1", "--seed", "5"], &["--top-k", "3", "--top-p", "0.9"]]
    {
        let mut args = vec!["generate", "--prompt", "Hi", "--max-new-tokens", "8"];
        args.extend(extra);
        let (cpu, gpu) = (on("cpu", &args), on("wgpu", &args));
        assert_eq!(cpu["ids"], gpu["ids"], "{extra:?}");
        assert_eq!(cpu["finish_reason"], gpu["finish_reason"], "{extra:?}");
        for (x, y) in floats(&cpu["logprobs"]).iter().zip(&floats(&gpu["logprobs"])) {
            assert!((x - y).abs() <= 1e-4 * x.abs().max(1.0), "{extra:?}: ℓ cpu {x} wgpu {y}");
        }
    }
    let bad = wapo(&["score", "--prompt", "x", "--completion", "y", "--backend", "tpu"], &gguf);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("backend"), "{}", String::from_utf8_lossy(&bad.stderr));
}
