//! GGUF llama and qwen2 models as the llama family of `wapo_core`: the
//! metadata as a [`ModelConfig`], the tensors under their Hugging Face names
//! in the Hugging Face rotary layout, the tokenizer metadata as a
//! [`GgufVocab`].
//!
//! llama.cpp's converter reorders the rows of each head of the llama query
//! and key projections so that rotary pairs are adjacent (GPT-J style)
//! rather than half a head apart (`rotate_half`): within a head of d rows,
//! HF row `j·d/2 + i` becomes GGUF row `2i + j` (j ∈ {0, 1}). qwen2 files
//! keep the Hugging Face order.

use std::collections::HashSet;
use std::path::Path;

use wapo_core::rl::{Layout, ModelConfig, Named};

use super::Gguf;
use crate::error::{Error, Result};
use crate::tokenizer::GgufVocab;

/// A llama-family model read from a GGUF file.
#[derive(Clone, Debug)]
pub struct GgufModel {
    pub config: ModelConfig,
    /// In the order of `Layout::new(&config).entries`, f32, Hugging Face names and layout.
    pub tensors: Vec<Named>,
    pub vocab: GgufVocab,
    /// `general.architecture`: "llama" or "qwen2".
    pub architecture: String,
}

pub(crate) const ARCHITECTURES: [&str; 2] = ["llama", "qwen2"];

const GLOBAL_NAMES: [(&str, &str); 3] = [
    ("token_embd.weight", "model.embed_tokens.weight"),
    ("output_norm.weight", "model.norm.weight"),
    ("output.weight", "lm_head.weight"),
];

/// Per block: GGUF suffix after `blk.N.`, Hugging Face suffix after `model.layers.N.`.
const LAYER_NAMES: [(&str, &str); 12] = [
    ("attn_norm.weight", "input_layernorm.weight"),
    ("attn_q.weight", "self_attn.q_proj.weight"),
    ("attn_k.weight", "self_attn.k_proj.weight"),
    ("attn_v.weight", "self_attn.v_proj.weight"),
    ("attn_q.bias", "self_attn.q_proj.bias"),
    ("attn_k.bias", "self_attn.k_proj.bias"),
    ("attn_v.bias", "self_attn.v_proj.bias"),
    ("attn_output.weight", "self_attn.o_proj.weight"),
    ("ffn_norm.weight", "post_attention_layernorm.weight"),
    ("ffn_gate.weight", "mlp.gate_proj.weight"),
    ("ffn_up.weight", "mlp.up_proj.weight"),
    ("ffn_down.weight", "mlp.down_proj.weight"),
];

/// The block index of `prefix{N}.rest`, written canonically (no sign, no leading zero).
fn split_layer<'a>(name: &'a str, prefix: &str) -> Option<(usize, &'a str)> {
    let (digits, rest) = name.strip_prefix(prefix)?.split_once('.')?;
    let n: usize = digits.parse().ok()?;
    (n.to_string() == digits).then_some((n, rest))
}

/// The Hugging Face name of a GGUF llama tensor name.
pub fn gguf_to_hf(name: &str) -> Option<String> {
    if let Some((_, hf)) = GLOBAL_NAMES.iter().find(|(g, _)| *g == name) {
        return Some(hf.to_string());
    }
    let (l, rest) = split_layer(name, "blk.")?;
    let (_, hf) = LAYER_NAMES.iter().find(|(g, _)| *g == rest)?;
    Some(format!("model.layers.{l}.{hf}"))
}

/// The GGUF name of a Hugging Face llama tensor name.
pub fn hf_to_gguf(name: &str) -> Option<String> {
    if let Some((g, _)) = GLOBAL_NAMES.iter().find(|(_, hf)| *hf == name) {
        return Some(g.to_string());
    }
    let (l, rest) = split_layer(name, "model.layers.")?;
    let (g, _) = LAYER_NAMES.iter().find(|(_, hf)| *hf == rest)?;
    Some(format!("blk.{l}.{g}"))
}

/// The number of heads whose rows llama.cpp reorders in this tensor, if it does.
pub(crate) fn rotary_heads(architecture: &str, hf_name: &str, cfg: &ModelConfig) -> Option<usize> {
    if architecture != "llama" {
        return None;
    }
    if hf_name.ends_with("self_attn.q_proj.weight") || hf_name.ends_with("self_attn.q_proj.bias") {
        Some(cfg.heads)
    } else if hf_name.ends_with("self_attn.k_proj.weight") || hf_name.ends_with("self_attn.k_proj.bias") {
        Some(cfg.kv_heads)
    } else {
        None
    }
}

/// The GGUF row order from the Hugging Face one: the converter's
/// `w.reshape(n_head, 2, rows/n_head/2, cols).swapaxes(1, 2).reshape(rows, cols)`.
///
/// # Panics
/// Unless `data` is `rows × cols` with `rows` a multiple of `2·n_head`
/// (callers check shapes against the config first).
pub fn permute_rows(data: &[f32], cols: usize, n_head: usize) -> Vec<f32> {
    reorder_rows(data, cols, n_head, true)
}

/// The inverse of [`permute_rows`]: GGUF row order back to Hugging Face.
pub fn unpermute_rows(data: &[f32], cols: usize, n_head: usize) -> Vec<f32> {
    reorder_rows(data, cols, n_head, false)
}

fn reorder_rows(data: &[f32], cols: usize, n_head: usize, to_gguf: bool) -> Vec<f32> {
    let rows = data.len().checked_div(cols).unwrap_or(0);
    let half = rows.checked_div(2 * n_head).unwrap_or(0);
    assert!(
        rows * cols == data.len() && rows == 2 * n_head * half,
        "{} values are not rows of {cols} in heads of an even number of rows ({n_head} heads)",
        data.len()
    );
    let mut out = vec![0.0f32; data.len()];
    for h in 0..n_head {
        for i in 0..half {
            for j in 0..2 {
                let gguf = h * 2 * half + 2 * i + j;
                let hf = h * 2 * half + j * half + i;
                let (dst, src) = if to_gguf { (gguf, hf) } else { (hf, gguf) };
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&data[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

/// An f32 from the file as the decimal it was written from: converters
/// store `rms_norm_eps = 1e-5` and friends as f32, whose exact value
/// (9.99999974e-6) is not what the model was trained with.
fn decimal(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

/// The architecture of a llama-family file, refused unless it is supported.
fn architecture(g: &Gguf) -> Result<String> {
    let key = "general.architecture";
    let arch = g.get_str(key)?;
    if !ARCHITECTURES.contains(&arch) {
        return Err(Error::at(g.path(), key, format!("architecture `{arch}` is not supported (llama and qwen2 are)")));
    }
    Ok(arch.to_string())
}

/// The model's shape from `{arch}.*` metadata and, for biases and tied
/// embeddings, which tensors are present. Returns the architecture too.
pub fn read_llama_config(g: &Gguf) -> Result<(ModelConfig, String)> {
    let arch = architecture(g)?;
    let path = g.path();
    let k = |s: &str| format!("{arch}.{s}");
    let uint = |s: &str| g.get_u32(&k(s)).map(|x| x as usize);
    let opt_uint = |s: &str| g.opt(&k(s), Gguf::get_u32).map(|x| x.map(|x| x as usize));

    if g.tensor_info("rope_freqs.weight").is_some() {
        return Err(Error::at(
            path,
            "rope_freqs.weight",
            "rotary frequency factors (Llama 3.1 style rope scaling stored as a tensor) are not supported",
        ));
    }
    let scaling_key = k("rope.scaling.type");
    if let Some(t) = g.opt(&scaling_key, Gguf::get_str)?
        && t != "none"
    {
        return Err(Error::at(path, scaling_key, format!("rope scaling `{t}` is not supported")));
    }

    let channels = uint("embedding_length")?;
    let heads = uint("attention.head_count")?;
    let kv_heads = opt_uint("attention.head_count_kv")?.unwrap_or(heads);
    let tokens = g.opt("tokenizer.ggml.tokens", Gguf::get_str_array)?.map_or(0, |t| t.len());
    let vocab = match opt_uint("vocab_size")? {
        Some(v) if tokens != 0 && v != tokens => {
            return Err(Error::at(
                path,
                k("vocab_size"),
                format!("{v}, but tokenizer.ggml.tokens has {tokens} tokens"),
            ));
        }
        Some(v) => v,
        None if tokens != 0 => tokens,
        None => {
            return Err(Error::at(path, k("vocab_size"), "missing, and there is no tokenizer.ggml.tokens to count"));
        }
    };
    let mut cfg = ModelConfig::llama(
        vocab,
        uint("context_length")?,
        channels,
        uint("block_count")?,
        heads,
        kv_heads,
        uint("feed_forward_length")?,
        g.opt(&k("rope.freq_base"), Gguf::get_f32)?.map_or(10_000.0, decimal),
    );
    cfg.norm_eps = decimal(g.get_f32(&k("attention.layer_norm_rms_epsilon"))?);
    cfg.tied_embeddings = g.tensor_info("output.weight").is_none();
    cfg.qkv_bias = arch == "qwen2" || g.tensor_info("blk.0.attn_q.bias").is_some();
    cfg.validate().map_err(|e| Error::file(path, format!("the metadata describes an invalid model: {e}")))?;
    if let Some(d) = opt_uint("rope.dimension_count")?
        && d != cfg.head_size()
    {
        return Err(Error::at(
            path,
            k("rope.dimension_count"),
            format!(
                "{d} rotary dimensions, but the head size is {} (partial rotary is not supported)",
                cfg.head_size()
            ),
        ));
    }
    Ok((cfg, arch))
}

/// The tokenizer metadata; absent keys are left empty.
pub fn read_vocab(g: &Gguf) -> Result<GgufVocab> {
    let s = |key: &str| g.opt(key, Gguf::get_str).map(|s| s.map(str::to_string));
    let strs = |key: &str| g.opt(key, Gguf::get_str_array).map(|s| s.map(<[String]>::to_vec).unwrap_or_default());
    let id = |key: &str| g.opt(key, Gguf::get_u32);
    Ok(GgufVocab {
        model: s("tokenizer.ggml.model")?.unwrap_or_default(),
        pre: s("tokenizer.ggml.pre")?,
        tokens: strs("tokenizer.ggml.tokens")?,
        merges: strs("tokenizer.ggml.merges")?,
        token_types: g.opt("tokenizer.ggml.token_type", Gguf::get_i32_array)?.unwrap_or_default(),
        bos: id("tokenizer.ggml.bos_token_id")?,
        eos: id("tokenizer.ggml.eos_token_id")?,
        unk: id("tokenizer.ggml.unknown_token_id")?,
        pad: id("tokenizer.ggml.padding_token_id")?,
        add_bos: g.opt("tokenizer.ggml.add_bos_token", Gguf::get_bool)?,
        chat_template: s("tokenizer.chat_template")?,
    })
}

/// Refuses a config whose sizes the file's tensors cannot hold, before the
/// layout they imply is built: the sizes come from metadata, and a claimed
/// 2^32 blocks or a 2^40-row embedding would otherwise size the layout
/// (and overflow its offsets) rather than be an error.
fn check_held(g: &Gguf, cfg: &ModelConfig, arch: &str) -> Result<()> {
    let path = g.path();
    // Every block has several tensors; the exact ones missing are named later.
    if cfg.layers > g.tensors().len() {
        return Err(Error::at(
            path,
            format!("{arch}.block_count"),
            format!("{} blocks, but the file has only {} tensors", cfg.layers, g.tensors().len()),
        ));
    }
    for (name, shape) in [
        ("token_embd.weight", [cfg.vocab, cfg.channels]),
        ("blk.0.ffn_up.weight", [cfg.mlp, cfg.channels]),
        ("blk.0.attn_k.weight", [cfg.kv_channels(), cfg.channels]),
    ] {
        let info = g.tensor_info(name).ok_or_else(|| {
            Error::at(path, name, format!("missing tensor (the model's {})", gguf_to_hf(name).unwrap_or_default()))
        })?;
        if info.shape() != shape {
            return Err(Error::at(
                path,
                name,
                format!("shape {:?} in the file, {shape:?} expected by the config", info.shape()),
            ));
        }
    }
    Ok(())
}

/// Reads a llama or qwen2 GGUF file: config, f32 tensors in the Hugging
/// Face names and layout, each checked against the config, and the vocabulary.
pub fn load_llama(path: &Path) -> Result<GgufModel> {
    let g = Gguf::read(path)?;
    let (config, architecture) = read_llama_config(&g)?;
    let vocab = read_vocab(&g)?;
    check_held(&g, &config, &architecture)?;
    let layout = Layout::new(&config);
    let mut used = HashSet::with_capacity(layout.entries.len());
    let mut tensors = Vec::with_capacity(layout.entries.len());
    for e in &layout.entries {
        let name = hf_to_gguf(&e.name)
            .ok_or_else(|| Error::at(path, e.name.clone(), "the model needs a tensor GGUF has no name for"))?;
        let info = g
            .tensor_info(&name)
            .ok_or_else(|| Error::at(path, name.clone(), format!("missing tensor (the model's {})", e.name)))?;
        if info.shape() != e.shape {
            return Err(Error::at(
                path,
                name,
                format!("shape {:?} in the file, {:?} expected by the config", info.shape(), e.shape),
            ));
        }
        let (_, mut data) = g.tensor_f32(&name)?;
        if let Some(n_head) = rotary_heads(&architecture, &e.name, &config) {
            let cols = e.shape.get(1).copied().unwrap_or(1);
            data = unpermute_rows(&data, cols, n_head);
        }
        used.insert(name);
        tensors.push(Named { name: e.name.clone(), shape: e.shape.clone(), data });
    }
    if let Some(extra) = g.tensors().iter().find(|t| !used.contains(&t.name)) {
        return Err(Error::at(path, extra.name.clone(), format!("unexpected tensor for a {architecture} model")));
    }
    Ok(GgufModel { config, tensors, vocab, architecture })
}
