//! Round trips through written directories, files written by the
//! `safetensors` crate (sharded, F16/BF16 with bit patterns worked by hand),
//! published configs, and one test per class of bad file.

use std::fs;
use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde_json::{Value, json};
use wapo_core::rl::{Layout, ModelConfig, Named, RopeScaling};

use super::config::parse_config;
use super::tensors::read_safetensors;
use super::*;
use crate::Error;

/// A fresh directory under the system's temporary directory.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wapo-io-hf-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

fn tiny(tied: bool, qkv_bias: bool) -> ModelConfig {
    let mut cfg = ModelConfig::llama(64, 32, 16, 2, 4, 2, 24, 10_000.0);
    cfg.norm_eps = 1e-6;
    cfg.tied_embeddings = tied;
    cfg.qkv_bias = qkv_bias;
    cfg.validate().expect("tiny config");
    cfg
}

fn random(cfg: &ModelConfig, seed: u64) -> Vec<Named> {
    let layout = Layout::new(cfg);
    let mut named = layout.named(&layout.init(cfg, seed), "");
    // init leaves biases at zero; make them tell tensors apart too.
    for t in named.iter_mut().filter(|t| t.name.ends_with(".bias")) {
        for (i, x) in t.data.iter_mut().enumerate() {
            *x = 0.25 * i as f32 - 1.0;
        }
    }
    named
}

fn assert_same_bits(got: &[Named], want: &[Named]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!((&g.name, &g.shape), (&w.name, &w.shape));
        let bits = |t: &Named| t.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(g), bits(w), "{}", g.name);
    }
}

fn le_bytes(t: &Named) -> Vec<u8> {
    t.data.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A safetensors file written by the `safetensors` crate.
fn crate_write(path: &Path, tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) {
    let views = tensors
        .iter()
        .map(|(name, dtype, shape, bytes)| (*name, TensorView::new(*dtype, shape.clone(), bytes).expect("view")));
    fs::write(path, safetensors::serialize(views, None).expect("serialize")).expect("write");
}

fn crate_write_f32(path: &Path, tensors: &[Named]) {
    let owned: Vec<_> = tensors.iter().map(|t| (t.name.as_str(), Dtype::F32, t.shape.clone(), le_bytes(t))).collect();
    crate_write(path, &owned);
}

fn write_config_file(dir: &Path, cfg: &ModelConfig) {
    let v = write_config(cfg, "LlamaForCausalLM", "llama", Some(1), &[2]);
    fs::write(dir.join("config.json"), v.to_string()).expect("config.json");
}

fn expect_err<T: std::fmt::Debug>(r: Result<T, Error>) -> Error {
    let e = r.expect_err("must be refused");
    eprintln!("refused as expected: {e}");
    e
}

fn assert_names(e: &Error, file: &Path, at: Option<&str>) {
    assert_eq!(e.file, file, "{e}");
    assert_eq!(e.at.as_deref(), at, "{e}");
}

#[test]
fn written_directories_load_back_bit_for_bit() {
    let mut scaled = tiny(false, false);
    scaled.rope_scaling =
        RopeScaling::Llama3 { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_context: 16.0 };
    scaled.rope_theta = 500_000.0;
    let cases = [
        (tiny(true, false), "LlamaForCausalLM", "llama", vec![2]),
        (tiny(false, false), "LlamaForCausalLM", "llama", vec![]),
        (tiny(true, true), "Qwen2ForCausalLM", "qwen2", vec![7, 9]),
        (tiny(false, true), "Qwen2ForCausalLM", "qwen2", vec![3]),
        (scaled, "LlamaForCausalLM", "llama", vec![5, 6, 7]),
    ];
    for (i, (cfg, arch, model_type, eos)) in cases.into_iter().enumerate() {
        let dir = scratch(&format!("roundtrip-{i}"));
        let tensors = random(&cfg, 10 + i as u64);
        write_model_dir(&dir, &cfg, arch, model_type, &tensors, Some(1), &eos).expect("write");
        let (hf, loaded) = load_model_dir(&dir).expect("load");
        assert_eq!(hf.config, cfg);
        assert_eq!((hf.architecture.as_str(), hf.model_type.as_str()), (arch, model_type));
        assert_eq!((hf.bos_token_id, &hf.eos_token_ids), (Some(1), &eos));
        assert_same_bits(&loaded, &tensors);

        // The crate reads the file too: same bytes, f32, no head of its own when tied.
        let bytes = fs::read(dir.join("model.safetensors")).expect("read");
        let st = SafeTensors::deserialize(&bytes).expect("the safetensors crate parses it");
        assert_eq!(st.len(), tensors.len());
        assert_eq!(st.names().contains(&"lm_head.weight"), !cfg.tied_embeddings);
        for t in &tensors {
            let v = st.tensor(&t.name).expect("tensor");
            assert_eq!((v.dtype(), v.shape()), (Dtype::F32, t.shape.as_slice()));
            assert_eq!(v.data(), le_bytes(t).as_slice(), "{}", t.name);
        }
        let (_, meta) = SafeTensors::read_metadata(&bytes).expect("metadata");
        let format = meta.metadata().as_ref().and_then(|m| m.get("format")).map(String::as_str);
        assert_eq!(format, Some("pt"));

        let generation: Value =
            serde_json::from_slice(&fs::read(dir.join("generation_config.json")).expect("read")).expect("json");
        assert_eq!(generation["bos_token_id"], json!(1));
        let _ = fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_tied_models_head_copy_is_accepted_and_dropped() {
    let cfg = tiny(true, false);
    let dir = scratch("tied-copy");
    let mut tensors = random(&cfg, 3);
    let mut head = tensors[0].clone();
    head.name = "lm_head.weight".into();
    tensors.push(head);
    tensors.push(Named {
        name: "model.layers.0.self_attn.rotary_emb.inv_freq".into(),
        shape: vec![2],
        data: vec![1.0, 0.5],
    });
    write_config_file(&dir, &cfg);
    crate_write_f32(&dir.join("model.safetensors"), &tensors);
    let (_, loaded) = load_model_dir(&dir).expect("load");
    assert_same_bits(&loaded, &random(&cfg, 3));

    // A head that is not the embedding cannot be tied.
    tensors.retain(|t| !t.name.ends_with("inv_freq"));
    let last = tensors.len() - 1;
    tensors[last].data[5] += 1.0;
    crate_write_f32(&dir.join("model.safetensors"), &tensors);
    let e = expect_err(load_model_dir(&dir));
    assert_names(&e, &dir.join("model.safetensors"), Some("lm_head.weight"));
    let e = expect_err(write_model_dir(&dir.join("w"), &cfg, "LlamaForCausalLM", "llama", &tensors, None, &[]));
    assert_eq!(e.at.as_deref(), Some("lm_head.weight"), "{e}");
    tensors[last].data = tensors[0].data.clone();
    write_model_dir(&dir.join("w"), &cfg, "LlamaForCausalLM", "llama", &tensors, None, &[]).expect("a copy is fine");
    assert_same_bits(&load_model_dir(&dir.join("w")).expect("load").1, &random(&cfg, 3));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_sharded_directory_loads_like_the_single_file() {
    let cfg = tiny(false, true);
    let tensors = random(&cfg, 5);
    let single = scratch("single");
    write_model_dir(&single, &cfg, "Qwen2ForCausalLM", "qwen2", &tensors, None, &[4]).expect("write");
    let sharded = scratch("sharded");
    fs::copy(single.join("config.json"), sharded.join("config.json")).expect("copy config");
    let (a, b) = tensors.split_at(tensors.len() / 2);
    let names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];
    // Reversed within the shards, so file order is not the layout's.
    let rev = |ts: &[Named]| ts.iter().rev().cloned().collect::<Vec<_>>();
    crate_write_f32(&sharded.join(names[0]), &rev(a));
    crate_write_f32(&sharded.join(names[1]), &rev(b));
    let weight_map: serde_json::Map<String, Value> = a
        .iter()
        .map(|t| (t.name.clone(), json!(names[0])))
        .chain(b.iter().map(|t| (t.name.clone(), json!(names[1]))))
        .collect();
    let index = json!({ "metadata": { "total_size": 4 * cfg.num_params() }, "weight_map": weight_map });
    fs::write(sharded.join("model.safetensors.index.json"), index.to_string()).expect("index");

    let (hf_single, from_single) = load_model_dir(&single).expect("single");
    let (hf_sharded, from_sharded) = load_model_dir(&sharded).expect("sharded");
    assert_eq!(hf_single, hf_sharded);
    assert_same_bits(&from_sharded, &from_single);
    assert_same_bits(&from_sharded, &tensors);

    // A shard that is not there, and a tensor its shard lacks.
    fs::remove_file(sharded.join(names[1])).expect("remove");
    let e = expect_err(load_model_dir(&sharded));
    assert_eq!(e.file, sharded.join(names[1]), "{e}");
    assert!(b.iter().any(|t| Some(&t.name) == e.at.as_ref()), "{e}");
    crate_write_f32(&sharded.join(names[1]), &b[1..]);
    let e = expect_err(load_model_dir(&sharded));
    assert_names(&e, &sharded.join(names[1]), Some(&b[0].name));
    let _ = fs::remove_dir_all(&single);
    let _ = fs::remove_dir_all(&sharded);
}

#[test]
fn f16_and_bf16_convert_exactly() {
    let dir = scratch("halves");
    // IEEE binary16, worked by hand: sign | 5-bit exponent (bias 15) | 10-bit mantissa.
    let f16_bits: [(u16, f32); 6] = [
        (0x3E00, 1.5),                // 0 01111 1000000000 = 1.5 · 2^0
        (0xC080, -2.25),              // 1 10000 0010000000 = −1.125 · 2^1
        (0x7BFF, 65504.0),            // largest finite: (2 − 2^−10) · 2^15
        (0x0001, 1.0 / 16_777_216.0), // smallest subnormal 2^−24
        (0x8000, -0.0),
        (0xFC00, f32::NEG_INFINITY),
    ];
    // bfloat16 is the upper half of an f32: 1 | 8 (bias 127) | 7.
    let bf16_bits: [(u16, f32); 4] = [
        (0x3F80, 1.0),
        (0xC020, -2.5),              // 1 10000000 0100000 = −1.25 · 2^1
        (0x4049, 3.140625),          // 0 10000000 1001001 = (1 + 73/128) · 2
        (0x0080, f32::MIN_POSITIVE), // 2^−126
    ];
    let bytes = |bits: &[u16]| bits.iter().flat_map(|b| b.to_le_bytes()).collect::<Vec<_>>();
    let path = dir.join("halves.safetensors");
    crate_write(
        &path,
        &[
            ("h", Dtype::F16, vec![2, 3], bytes(&f16_bits.map(|p| p.0))),
            ("b", Dtype::BF16, vec![4], bytes(&bf16_bits.map(|p| p.0))),
        ],
    );
    let got = read_safetensors(&path).expect("read");
    let find = |n: &str| got.iter().find(|t| t.name == n).expect("tensor");
    assert_eq!(find("h").shape, vec![2, 3]);
    let want_bits = |pairs: &[(u16, f32)]| pairs.iter().map(|p| p.1.to_bits()).collect::<Vec<_>>();
    let got_bits = |t: &Named| t.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(got_bits(find("h")), want_bits(&f16_bits));
    assert_eq!(got_bits(find("b")), want_bits(&bf16_bits));
    let _ = fs::remove_dir_all(&dir);
}

fn smollm2_135m() -> Value {
    json!({
        "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
        "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 576,
        "initializer_range": 0.041666666666666664, "intermediate_size": 1536, "is_llama_config": true,
        "max_position_embeddings": 8192, "mlp_bias": false, "model_type": "llama",
        "num_attention_heads": 9, "num_hidden_layers": 30, "num_key_value_heads": 3, "pad_token_id": 2,
        "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_interleaved": false, "rope_scaling": null,
        "rope_theta": 100000, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
        "transformers_version": "4.42.3", "use_cache": true, "vocab_size": 49152
    })
}

fn parse(v: &Value) -> Result<HfConfig, Error> {
    parse_config(Path::new("config.json"), v.as_object().expect("object"))
}

#[test]
fn published_configs_parse() {
    let dir = scratch("configs");
    let path = dir.join("config.json");
    fs::write(&path, smollm2_135m().to_string()).expect("write");
    let hf = read_config(&path).expect("SmolLM2-135M");
    let mut want = ModelConfig::llama(49152, 8192, 576, 30, 9, 3, 1536, 100_000.0);
    want.norm_eps = 1e-5;
    want.tied_embeddings = true;
    assert_eq!(hf.config, want);
    assert_eq!((hf.architecture.as_str(), hf.model_type.as_str()), ("LlamaForCausalLM", "llama"));
    assert_eq!((hf.bos_token_id, hf.eos_token_ids.as_slice()), (Some(1), &[2][..]));
    let _ = fs::remove_dir_all(&dir);

    let qwen = json!({
        "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
        "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
        "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 21,
        "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2,
        "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": true,
        "torch_dtype": "bfloat16", "transformers_version": "4.43.1", "use_cache": true,
        "use_sliding_window": false, "vocab_size": 151936
    });
    let hf = parse(&qwen).expect("Qwen2.5-0.5B");
    let mut want = ModelConfig::llama(151936, 32768, 896, 24, 14, 2, 4864, 1e6);
    (want.norm_eps, want.tied_embeddings, want.qkv_bias) = (1e-6, true, true);
    assert_eq!(hf.config, want);
    assert_eq!((hf.bos_token_id, hf.eos_token_ids.as_slice()), (Some(151643), &[151645][..]));

    let llama = json!({
        "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
        "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "head_dim": 64,
        "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 8192,
        "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
        "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8, "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": { "factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                          "original_max_position_embeddings": 8192, "rope_type": "llama3" },
        "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
        "transformers_version": "4.45.0.dev0", "use_cache": true, "vocab_size": 128256
    });
    let hf = parse(&llama).expect("Llama-3.2-1B");
    assert_eq!((hf.config.heads, hf.config.kv_heads, hf.config.head_size()), (32, 8, 64));
    assert_eq!(
        hf.config.rope_scaling,
        RopeScaling::Llama3 { factor: 32.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_context: 8192.0 }
    );
    assert_eq!(hf.eos_token_ids, vec![128001, 128008, 128009]);

    // llama3 by hand, head size 64, θ = 5e5: f_i = θ^(−i/32), wavelength 2π/f_i;
    // wavelengths under 8192/4 = 2048 keep f, over 8192/1 = 8192 take f/32,
    // between, s = (8192/λ − 1)/(4 − 1) mixes (1 − s)·f/32 + s·f.
    let inv = hf.config.rope_inv_freq();
    assert_eq!(inv.len(), 32);
    let close = |got: f64, want: f64| assert!((got - want).abs() <= 1e-12 * want, "{got} vs {want}");
    // i = 0: f = 1, λ = 2π.
    close(inv[0], 1.0);
    // i = 16: f = 1/√θ, λ = 2π√θ ≈ 4442.9, inside the ramp.
    let f = 1.0 / 500_000f64.sqrt();
    let s = (8192.0 / (2.0 * std::f64::consts::PI * 500_000f64.sqrt()) - 1.0) / 3.0;
    close(inv[16], (1.0 - s) * f / 32.0 + s * f);
    // i = 31: f = θ^(−31/32) ≈ 3.0e−6, λ ≈ 2.1e6 > 8192.
    close(inv[31], 500_000f64.powf(-31.0 / 32.0) / 32.0);

    // transformers ≥ 5 writes θ and the scaling inside rope_parameters, and
    // no `architectures` for a bare config. Written by transformers 5.24.0's
    // LlamaConfig(...).save_pretrained, the Llama-3.2-1B shape above.
    let v5 = json!({
        "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 128000,
        "eos_token_id": [128001, 128008, 128009], "head_dim": 64, "hidden_act": "silu", "hidden_size": 2048,
        "initializer_range": 0.02, "intermediate_size": 8192, "max_position_embeddings": 131072,
        "mlp_bias": false, "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 16,
        "num_key_value_heads": 8, "pad_token_id": null, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
        "rope_parameters": { "factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                             "original_max_position_embeddings": 8192, "rope_theta": 500000.0,
                             "rope_type": "llama3" },
        "tie_word_embeddings": true, "transformers_version": "5.24.0", "use_cache": true, "vocab_size": 128256
    });
    let hf5 = parse(&v5).expect("transformers 5 config");
    assert_eq!(hf5.architecture, "LlamaForCausalLM");
    assert_eq!(hf5.config, hf.config);
}

/// SmolLM2's config with `key` set to `value` (removed if `value` is None).
fn smollm2_with(key: &str, value: Option<Value>) -> Value {
    let mut v = smollm2_135m();
    let obj = v.as_object_mut().expect("object");
    match value {
        Some(x) => obj.insert(key.into(), x),
        None => obj.remove(key),
    };
    v
}

#[test]
fn bad_configs_name_the_key() {
    let cases = [
        ("model_type", Some(json!("gpt_neox")), "model_type"),
        ("num_attention_heads", Some(json!("9")), "num_attention_heads"),
        ("hidden_size", None, "hidden_size"),
        ("rms_norm_eps", Some(json!(-1.0)), "rms_norm_eps"),
        ("mlp_bias", Some(json!(true)), "mlp_bias"),
        ("attention_bias", Some(json!(true)), "attention_bias"),
        ("hidden_act", Some(json!("gelu")), "hidden_act"),
        ("head_dim", Some(json!(128)), "head_dim"),
        ("num_key_value_heads", Some(json!(2)), "num_key_value_heads"),
        ("tie_word_embeddings", Some(json!("yes")), "tie_word_embeddings"),
        ("eos_token_id", Some(json!([2, -1])), "eos_token_id"),
        ("rope_scaling", Some(json!({ "rope_type": "yarn", "factor": 4.0 })), "rope_scaling.rope_type"),
        ("rope_scaling", Some(json!({ "type": "linear", "factor": 4.0 })), "rope_scaling.type"),
        ("rope_scaling", Some(json!({ "rope_type": "llama3", "factor": 8.0 })), "rope_scaling.low_freq_factor"),
        ("quantization_config", Some(json!({ "quant_method": "gptq" })), "quantization_config"),
    ];
    let dir = scratch("bad-configs");
    let path = dir.join("config.json");
    for (key, value, named) in cases {
        fs::write(&path, smollm2_with(key, value).to_string()).expect("write");
        let e = expect_err(read_config(&path));
        assert_names(&e, &path, Some(named));
    }
    let mut mistral = smollm2_with("model_type", Some(json!("mistral")));
    mistral["sliding_window"] = json!(4096);
    let e = expect_err(parse(&mistral));
    assert_eq!(e.at.as_deref(), Some("sliding_window"), "{e}");
    mistral["sliding_window"] = json!(8192);
    assert!(parse(&mistral).is_ok());

    fs::write(&path, "{\"model_type\": ").expect("write");
    assert_names(&expect_err(read_config(&path)), &path, None);
    let _ = fs::remove_dir_all(&dir);
}

/// A bare safetensors file: the 8-byte length, `header`, then `data`.
fn raw_file(path: &Path, header: &str, data: &[u8]) {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    fs::write(path, bytes).expect("write");
}

#[test]
fn malformed_safetensors_are_refused_by_name() {
    let dir = scratch("bad-files");
    let path = dir.join("model.safetensors");

    // Shorter than the length field.
    fs::write(&path, [1u8, 0, 0]).expect("write");
    assert_names(&expect_err(read_safetensors(&path)), &path, None);

    // A header length of 2^40 on a file of a few bytes: an error, not a 1 TiB allocation.
    let mut bytes = (1u64 << 40).to_le_bytes().to_vec();
    bytes.extend(b"{}");
    fs::write(&path, bytes).expect("write");
    let e = expect_err(read_safetensors(&path));
    assert_names(&e, &path, None);
    assert!(e.reason.contains("1099511627776"), "{e}");

    // Offsets beyond the data, and offsets that disagree with the shape.
    raw_file(&path, r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, &[0; 4]);
    assert_names(&expect_err(read_safetensors(&path)), &path, Some("a"));
    raw_file(&path, r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, &[0; 8]);
    assert_names(&expect_err(read_safetensors(&path)), &path, Some("a"));
    raw_file(&path, r#"{"a":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,8]}}"#, &[0; 8]);
    assert_names(&expect_err(read_safetensors(&path)), &path, Some("a"));

    // Two tensors sharing bytes.
    let header = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
    raw_file(&path, header, &[0; 8]);
    assert_names(&expect_err(read_safetensors(&path)), &path, Some("b"));

    // A dtype other than F32, F16, BF16.
    crate_write(&path, &[("ids", Dtype::I64, vec![2], vec![0; 16])]);
    let e = expect_err(read_safetensors(&path));
    assert_names(&e, &path, Some("ids"));
    assert!(e.reason.contains("I64"), "{e}");

    // Not JSON.
    raw_file(&path, "{\"a\": [", &[]);
    assert_names(&expect_err(read_safetensors(&path)), &path, None);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_truncated_model_file_names_its_last_tensor() {
    let cfg = tiny(false, false);
    let dir = scratch("truncated");
    write_model_dir(&dir, &cfg, "LlamaForCausalLM", "llama", &random(&cfg, 1), Some(1), &[2]).expect("write");
    let path = dir.join("model.safetensors");
    let bytes = fs::read(&path).expect("read");
    fs::write(&path, &bytes[..bytes.len() - 10]).expect("truncate");
    let e = expect_err(load_model_dir(&dir));
    // The writer lays tensors out in layout order, lm_head last.
    assert_names(&e, &path, Some("lm_head.weight"));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn tensors_that_do_not_fit_the_config_are_named() {
    let cfg = tiny(false, true);
    let dir = scratch("mismatch");
    fs::write(dir.join("config.json"), write_config(&cfg, "Qwen2ForCausalLM", "qwen2", None, &[]).to_string())
        .expect("config");
    let path = dir.join("model.safetensors");
    let good = random(&cfg, 2);

    let mut wrong_shape = good.clone();
    let k = wrong_shape.iter_mut().find(|t| t.name == "model.layers.1.self_attn.k_proj.weight").expect("k_proj");
    k.shape = vec![16, 8];
    crate_write_f32(&path, &wrong_shape);
    let e = expect_err(load_model_dir(&dir));
    assert_names(&e, &path, Some("model.layers.1.self_attn.k_proj.weight"));
    assert!(e.reason.contains("[16, 8]") && e.reason.contains("[8, 16]"), "{e}");

    let missing: Vec<_> = good.iter().filter(|t| t.name != "model.layers.0.self_attn.v_proj.bias").cloned().collect();
    crate_write_f32(&path, &missing);
    let e = expect_err(load_model_dir(&dir));
    assert_names(&e, &path, Some("model.layers.0.self_attn.v_proj.bias"));

    let mut extra = good.clone();
    extra.push(Named { name: "model.layers.0.self_attn.o_proj.bias".into(), shape: vec![16], data: vec![0.0; 16] });
    crate_write_f32(&path, &extra);
    let e = expect_err(load_model_dir(&dir));
    assert_names(&e, &path, Some("model.layers.0.self_attn.o_proj.bias"));

    // The writer refuses the same mistakes before writing anything.
    let fresh = dir.join("fresh");
    let e = expect_err(write_model_dir(&fresh, &cfg, "Qwen2ForCausalLM", "qwen2", &missing, None, &[]));
    assert_eq!(e.at.as_deref(), Some("model.layers.0.self_attn.v_proj.bias"), "{e}");
    let e = expect_err(write_model_dir(&fresh, &cfg, "LlamaForCausalLM", "llama", &good, None, &[]));
    assert_eq!(e.at.as_deref(), Some("model_type"), "{e}");
    assert!(!fresh.exists());

    fs::remove_file(&path).expect("remove");
    assert_names(&expect_err(load_model_dir(&dir)), &dir, None);
    let _ = fs::remove_dir_all(&dir);
}
