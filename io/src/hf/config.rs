//! `config.json` of a Hugging Face llama-family model (`llama`, `qwen2`,
//! `mistral`) to a [`ModelConfig`] and back.
//!
//! A field transformers gives a default (`num_key_value_heads`,
//! `rope_theta`, `tie_word_embeddings`, `rms_norm_eps`, `hidden_act`) takes
//! that default when absent or null; the shape fields have none worth
//! trusting and must be present. Anything the block graph cannot reproduce
//! (an o_proj or MLP bias, another activation, a sliding window shorter
//! than the context, a rotary scheme other than llama3, a quantized
//! checkpoint) is refused by name rather than loaded wrong.

use std::path::Path;

use serde_json::{Map, Value, json};
use wapo_core::rl::{Family, ModelConfig, RopeScaling};

use crate::error::{Error, Result};

/// A model's `config.json`, as far as the block graph needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct HfConfig {
    pub config: ModelConfig,
    /// `architectures[0]`, e.g. "LlamaForCausalLM".
    pub architecture: String,
    /// "llama", "qwen2" or "mistral".
    pub model_type: String,
    pub bos_token_id: Option<u32>,
    /// `eos_token_id`: one id or several (Llama 3 ends on any of three).
    pub eos_token_ids: Vec<u32>,
}

/// The `model_type`s read here.
pub const MODEL_TYPES: [&str; 3] = ["llama", "qwen2", "mistral"];

/// transformers' default `rms_norm_eps` for all of [`MODEL_TYPES`].
const DEFAULT_RMS_NORM_EPS: f64 = 1e-6;
const DEFAULT_ROPE_THETA: f64 = 10_000.0;

pub fn read_config(path: &Path) -> Result<HfConfig> {
    let bytes = std::fs::read(path).map_err(Error::io(path))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| Error::file(path, format!("not valid JSON: {e}")))?;
    let obj = value.as_object().ok_or_else(|| Error::file(path, "not a JSON object"))?;
    parse_config(path, obj)
}

/// [`read_config`] on an already parsed object; `path` names it in errors.
pub fn parse_config(path: &Path, obj: &Map<String, Value>) -> Result<HfConfig> {
    let f = Fields { path, obj, prefix: "" };
    let model_type = f.req_str("model_type")?.to_string();
    if !MODEL_TYPES.contains(&model_type.as_str()) {
        return Err(Error::at(
            path,
            "model_type",
            format!("`{model_type}` is not supported (supported: {})", MODEL_TYPES.join(", ")),
        ));
    }
    let architecture = match f.opt("architectures") {
        None => default_architecture(&model_type).to_string(),
        Some(v) => v
            .as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .ok_or_else(|| f.ill_typed("architectures", "a non-empty list of strings"))?
            .to_string(),
    };
    if !architecture.ends_with("ForCausalLM") {
        return Err(Error::at(path, "architectures", format!("`{architecture}` is not a causal language model")));
    }
    if f.opt("quantization_config").is_some() {
        return Err(Error::at(path, "quantization_config", "quantized checkpoints are not supported"));
    }

    let hidden = f.req_usize("hidden_size")?;
    let heads = f.req_usize("num_attention_heads")?;
    let mut cfg = ModelConfig::llama(
        f.req_usize("vocab_size")?,
        f.req_usize("max_position_embeddings")?,
        hidden,
        f.req_usize("num_hidden_layers")?,
        heads,
        f.opt_usize("num_key_value_heads")?.unwrap_or(heads),
        f.req_usize("intermediate_size")?,
        DEFAULT_ROPE_THETA,
    );
    cfg.norm_eps = f.opt_f64("rms_norm_eps")?.unwrap_or(DEFAULT_RMS_NORM_EPS);
    cfg.tied_embeddings = f.opt_bool("tie_word_embeddings")?.unwrap_or(false);
    (cfg.rope_theta, cfg.rope_scaling) = read_rope(&f)?;

    if let Some(d) = f.opt_usize("head_dim")?
        && d.checked_mul(heads) != Some(hidden)
    {
        return Err(Error::at(
            path,
            "head_dim",
            format!("{d} differs from hidden_size / num_attention_heads = {hidden} / {heads}; not supported"),
        ));
    }
    let act = f.opt_str("hidden_act")?.unwrap_or("silu");
    if act != "silu" {
        return Err(Error::at(path, "hidden_act", format!("`{act}` is not supported (only silu)")));
    }
    if f.opt_bool("mlp_bias")?.unwrap_or(false) {
        return Err(Error::at(path, "mlp_bias", "MLP biases are not supported"));
    }
    match model_type.as_str() {
        "qwen2" => {
            cfg.qkv_bias = true;
            if f.opt_bool("use_sliding_window")?.unwrap_or(false) {
                check_window(&f, cfg.context, "use_sliding_window")?;
            }
        }
        "mistral" => check_window(&f, cfg.context, "sliding_window")?,
        _ => {
            if f.opt_bool("attention_bias")?.unwrap_or(false) {
                return Err(Error::at(
                    path,
                    "attention_bias",
                    "llama's attention_bias includes an o_proj bias, which is not supported",
                ));
            }
        }
    }
    cfg.validate().map_err(|e| match e {
        wapo_core::Error::Config { field, reason } => Error::at(path, hf_key(field), reason),
        other => Error::file(path, other.to_string()),
    })?;

    let bos_token_id = f.opt_token("bos_token_id")?;
    let eos_token_ids = match f.opt("eos_token_id") {
        None => Vec::new(),
        Some(Value::Array(ids)) => {
            ids.iter().map(|v| token(v).ok_or_else(|| f.ill_typed("eos_token_id", TOKEN))).collect::<Result<_>>()?
        }
        Some(v) => vec![token(v).ok_or_else(|| f.ill_typed("eos_token_id", "a token id or a list of them"))?],
    };
    Ok(HfConfig { config: cfg, architecture, model_type, bos_token_id, eos_token_ids })
}

/// The `config.json` transformers needs to instantiate `cfg` as
/// `architecture` / `model_type`, with f32 weights.
pub fn write_config(cfg: &ModelConfig, architecture: &str, model_type: &str, bos: Option<u32>, eos: &[u32]) -> Value {
    let rope_scaling = match cfg.rope_scaling {
        RopeScaling::None => Value::Null,
        RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_context } => json!({
            "rope_type": "llama3",
            "factor": factor,
            "low_freq_factor": low_freq_factor,
            "high_freq_factor": high_freq_factor,
            "original_max_position_embeddings": whole_or_float(original_context),
        }),
    };
    let mut v = json!({
        "architectures": [architecture],
        "model_type": model_type,
        "vocab_size": cfg.vocab,
        "hidden_size": cfg.channels,
        "intermediate_size": cfg.mlp,
        "num_hidden_layers": cfg.layers,
        "num_attention_heads": cfg.heads,
        "num_key_value_heads": cfg.kv_heads,
        "head_dim": cfg.head_size(),
        "hidden_act": "silu",
        "max_position_embeddings": cfg.context,
        "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta,
        "rope_scaling": rope_scaling,
        "tie_word_embeddings": cfg.tied_embeddings,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "use_cache": true,
        "torch_dtype": "float32",
        "bos_token_id": bos,
        "eos_token_id": eos_value(eos),
    });
    let extra = match model_type {
        "qwen2" => json!({ "use_sliding_window": false, "sliding_window": null, "max_window_layers": cfg.layers }),
        "mistral" => json!({ "sliding_window": null }),
        _ => json!({ "attention_bias": cfg.qkv_bias, "mlp_bias": false, "pretraining_tp": 1 }),
    };
    if let (Some(v), Value::Object(extra)) = (v.as_object_mut(), extra) {
        v.extend(extra);
    }
    v
}

/// `generation_config.json`: the ids generation starts and stops on.
pub fn write_generation_config(bos: Option<u32>, eos: &[u32]) -> Value {
    json!({ "bos_token_id": bos, "eos_token_id": eos_value(eos) })
}

/// Checks that [`write_config`] can express `cfg` as `model_type`.
pub fn check_writable(path: &Path, cfg: &ModelConfig, model_type: &str) -> Result<()> {
    if cfg.family != Family::Llama {
        return Err(Error::file(path, "only llama-family models are written as Hugging Face directories"));
    }
    let ok = match model_type {
        "qwen2" => cfg.qkv_bias,
        "llama" | "mistral" => !cfg.qkv_bias,
        _ => return Err(Error::at(path, "model_type", format!("`{model_type}` is not supported"))),
    };
    if !ok {
        return Err(Error::at(
            path,
            "model_type",
            format!(
                "`{model_type}` cannot express qkv_bias = {} (qwen2 has q/k/v biases, llama and mistral none)",
                cfg.qkv_bias
            ),
        ));
    }
    cfg.validate().map_err(|e| Error::file(path, e.to_string()))
}

/// transformers insists on an integer `original_max_position_embeddings`.
fn whole_or_float(x: f64) -> Value {
    if x.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&x) { json!(x as u64) } else { json!(x) }
}

fn eos_value(eos: &[u32]) -> Value {
    match eos {
        [] => Value::Null,
        [one] => json!(one),
        many => json!(many),
    }
}

fn default_architecture(model_type: &str) -> &'static str {
    match model_type {
        "qwen2" => "Qwen2ForCausalLM",
        "mistral" => "MistralForCausalLM",
        _ => "LlamaForCausalLM",
    }
}

/// The `config.json` key behind a [`ModelConfig::validate`] field.
fn hf_key(field: &str) -> &'static str {
    match field {
        "model.vocab" => "vocab_size",
        "model.context" => "max_position_embeddings",
        "model.channels" => "hidden_size",
        "model.heads" => "num_attention_heads",
        "model.kv_heads" => "num_key_value_heads",
        "model.norm_eps" => "rms_norm_eps",
        "model.rope_theta" => "rope_theta",
        _ => "config",
    }
}

/// θ and the scaling, from transformers ≥ 5's `rope_parameters` or the
/// older `rope_theta` + `rope_scaling`.
fn read_rope(f: &Fields) -> Result<(f64, RopeScaling)> {
    if let Some(params) = f.opt("rope_parameters") {
        let obj = params.as_object().ok_or_else(|| f.ill_typed("rope_parameters", "an object"))?;
        let p = Fields { path: f.path, obj, prefix: "rope_parameters." };
        let theta = p.opt_f64("rope_theta")?.unwrap_or(DEFAULT_ROPE_THETA);
        return Ok((theta, read_scaling(&p)?));
    }
    let theta = f.opt_f64("rope_theta")?.unwrap_or(DEFAULT_ROPE_THETA);
    let scaling = match f.opt("rope_scaling") {
        None => RopeScaling::None,
        Some(v) => {
            let obj = v.as_object().ok_or_else(|| f.ill_typed("rope_scaling", "an object or null"))?;
            read_scaling(&Fields { path: f.path, obj, prefix: "rope_scaling." })?
        }
    };
    Ok((theta, scaling))
}

fn read_scaling(p: &Fields) -> Result<RopeScaling> {
    // transformers reads `type` where older configs have no `rope_type`.
    let (key, kind) = match p.opt_str("rope_type")? {
        Some(k) => ("rope_type", k),
        None => ("type", p.opt_str("type")?.unwrap_or("default")),
    };
    match kind {
        "default" => Ok(RopeScaling::None),
        "llama3" => {
            let positive = |key: &str| -> Result<f64> {
                let x = p.req_f64(key)?;
                if x.is_finite() && x > 0.0 {
                    Ok(x)
                } else {
                    Err(p.bad(key, format!("{x} must be a finite number > 0")))
                }
            };
            let (factor, low, high) =
                (positive("factor")?, positive("low_freq_factor")?, positive("high_freq_factor")?);
            let original = positive("original_max_position_embeddings")?;
            if high <= low {
                return Err(p.bad("high_freq_factor", format!("{high} must exceed low_freq_factor {low}")));
            }
            Ok(RopeScaling::Llama3 { factor, low_freq_factor: low, high_freq_factor: high, original_context: original })
        }
        other => Err(p.bad(key, format!("rotary scaling `{other}` is not supported (only llama3)"))),
    }
}

fn check_window(f: &Fields, context: usize, key: &str) -> Result<()> {
    match f.opt_usize("sliding_window")? {
        Some(w) if w < context => Err(Error::at(
            f.path,
            key,
            format!("a sliding window of {w} tokens, shorter than max_position_embeddings {context}, is not supported"),
        )),
        _ => Ok(()),
    }
}

const TOKEN: &str = "a token id (an integer in 0..2^32)";

fn token(v: &Value) -> Option<u32> {
    v.as_u64().and_then(|x| u32::try_from(x).ok())
}

/// Typed access to one JSON object's keys, every error naming the file and
/// the key (with `prefix` for nested objects).
struct Fields<'a> {
    path: &'a Path,
    obj: &'a Map<String, Value>,
    prefix: &'static str,
}

impl Fields<'_> {
    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn bad(&self, key: &str, reason: impl Into<String>) -> Error {
        Error::at(self.path, self.key(key), reason)
    }

    fn ill_typed(&self, key: &str, want: &str) -> Error {
        let got = self.obj.get(key).map_or_else(|| "nothing".to_string(), |v| v.to_string());
        self.bad(key, format!("must be {want}, found {got}"))
    }

    /// The value of `key`, absent when missing or null.
    fn opt(&self, key: &str) -> Option<&Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    fn req(&self, key: &str) -> Result<&Value> {
        self.opt(key).ok_or_else(|| self.bad(key, "missing"))
    }

    fn req_str(&self, key: &str) -> Result<&str> {
        self.req(key)?.as_str().ok_or_else(|| self.ill_typed(key, "a string"))
    }

    fn opt_str(&self, key: &str) -> Result<Option<&str>> {
        self.opt(key).map(|v| v.as_str().ok_or_else(|| self.ill_typed(key, "a string"))).transpose()
    }

    fn as_usize(&self, key: &str, v: &Value) -> Result<usize> {
        v.as_u64().and_then(|x| usize::try_from(x).ok()).ok_or_else(|| self.ill_typed(key, "a non-negative integer"))
    }

    fn req_usize(&self, key: &str) -> Result<usize> {
        self.as_usize(key, self.req(key)?)
    }

    fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        self.opt(key).map(|v| self.as_usize(key, v)).transpose()
    }

    fn req_f64(&self, key: &str) -> Result<f64> {
        self.req(key)?.as_f64().ok_or_else(|| self.ill_typed(key, "a number"))
    }

    fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        self.opt(key).map(|v| v.as_f64().ok_or_else(|| self.ill_typed(key, "a number"))).transpose()
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        self.opt(key).map(|v| v.as_bool().ok_or_else(|| self.ill_typed(key, "true or false"))).transpose()
    }

    fn opt_token(&self, key: &str) -> Result<Option<u32>> {
        self.opt(key).map(|v| token(v).ok_or_else(|| self.ill_typed(key, TOKEN))).transpose()
    }
}
