//! One parameter block with named views, llm.c style, shared by every
//! backend's model of either family: names and shapes are those of the
//! checkpoints (the GPT's own names; the Hugging Face names for the llama
//! family, so a fine-tuned model saves as a Hugging Face directory as is),
//! weights are `(out, in)` as in `nn.Linear`, and the initialisation is the
//! same bits everywhere, so a checkpoint (or a seed) moves between backends.
//!
//! The block graph needs one matmul where the file has several: the q, k and
//! v projections (and the gate and up projections) are laid out back to back,
//! so [`LayerViews::qkv_w`] (and [`LayerViews::fc_w`]) is one `(out, in)`
//! matrix. A view the family lacks (a llama bias, the GPT's RMSNorm-free
//! gains) is an empty range.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

use super::arch::{Family, ModelConfig};
use super::policy::Named;
use crate::error::{Error, Result};

/// Offsets of one block's tensors in the parameter block.
#[derive(Clone, Debug)]
pub struct LayerViews {
    /// Gain (C) of the pre-attention norm.
    pub ln1_w: Range<usize>,
    /// Its bias (C); empty for RMSNorm.
    pub ln1_b: Range<usize>,
    /// q|k|v projection (C + 2·H_kv·C/H, C).
    pub qkv_w: Range<usize>,
    /// Its bias (C + 2·H_kv·C/H), or empty.
    pub qkv_b: Range<usize>,
    /// Attention output projection (C, C).
    pub proj_w: Range<usize>,
    pub proj_b: Range<usize>,
    pub ln2_w: Range<usize>,
    pub ln2_b: Range<usize>,
    /// MLP up projection (M, C), or gate|up (2M, C) for SwiGLU.
    pub fc_w: Range<usize>,
    pub fc_b: Range<usize>,
    /// MLP down projection (C, M).
    pub fcproj_w: Range<usize>,
    pub fcproj_b: Range<usize>,
}

/// One named tensor of the block.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: String,
    pub shape: Vec<usize>,
    pub range: Range<usize>,
}

/// The layout of the parameter block.
#[derive(Clone, Debug)]
pub struct Layout {
    pub entries: Vec<Entry>,
    /// Token embedding (V, C).
    pub wte: Range<usize>,
    /// Learned position embedding (T, C); empty for rotary models.
    pub wpe: Range<usize>,
    pub layers: Vec<LayerViews>,
    pub lnf_w: Range<usize>,
    pub lnf_b: Range<usize>,
    /// LM head (V, C); the same range as `wte` when the embeddings are tied.
    pub lm_head: Range<usize>,
    pub total: usize,
}

const EMPTY: Range<usize> = 0..0;

impl Layout {
    pub fn new(cfg: &ModelConfig) -> Self {
        let (v, t, c, m, kv) = (cfg.vocab, cfg.context, cfg.channels, cfg.mlp, cfg.kv_channels());
        let mut entries = Vec::new();
        let mut at = 0;
        let mut add = |name: String, shape: Vec<usize>| {
            let n: usize = shape.iter().product();
            let range = at..at + n;
            at += n;
            entries.push(Entry { name, shape, range: range.clone() });
            range
        };
        let span = |a: &Range<usize>, b: &Range<usize>| a.start..b.end;
        match cfg.family {
            Family::Gpt => {
                let wte = add("wte".into(), vec![v, c]);
                let wpe = add("wpe".into(), vec![t, c]);
                let layers = (0..cfg.layers)
                    .map(|l| {
                        let mut f = |s: &str, shape: Vec<usize>| add(format!("h.{l}.{s}"), shape);
                        LayerViews {
                            ln1_w: f("ln_1.weight", vec![c]),
                            ln1_b: f("ln_1.bias", vec![c]),
                            qkv_w: f("attn.c_attn.weight", vec![3 * c, c]),
                            qkv_b: f("attn.c_attn.bias", vec![3 * c]),
                            proj_w: f("attn.c_proj.weight", vec![c, c]),
                            proj_b: f("attn.c_proj.bias", vec![c]),
                            ln2_w: f("ln_2.weight", vec![c]),
                            ln2_b: f("ln_2.bias", vec![c]),
                            fc_w: f("mlp.c_fc.weight", vec![m, c]),
                            fc_b: f("mlp.c_fc.bias", vec![m]),
                            fcproj_w: f("mlp.c_proj.weight", vec![c, m]),
                            fcproj_b: f("mlp.c_proj.bias", vec![c]),
                        }
                    })
                    .collect();
                let lnf_w = add("ln_f.weight".into(), vec![c]);
                let lnf_b = add("ln_f.bias".into(), vec![c]);
                let lm_head = add("lm_head.weight".into(), vec![v, c]);
                Layout { entries, wte, wpe, layers, lnf_w, lnf_b, lm_head, total: at }
            }
            Family::Llama => {
                let wte = add("model.embed_tokens.weight".into(), vec![v, c]);
                let layers = (0..cfg.layers)
                    .map(|l| {
                        let mut f = |s: &str, shape: Vec<usize>| add(format!("model.layers.{l}.{s}"), shape);
                        let ln1_w = f("input_layernorm.weight", vec![c]);
                        let q = f("self_attn.q_proj.weight", vec![c, c]);
                        let vw = {
                            f("self_attn.k_proj.weight", vec![kv, c]);
                            f("self_attn.v_proj.weight", vec![kv, c])
                        };
                        let qkv_b = if cfg.qkv_bias {
                            let qb = f("self_attn.q_proj.bias", vec![c]);
                            f("self_attn.k_proj.bias", vec![kv]);
                            span(&qb, &f("self_attn.v_proj.bias", vec![kv]))
                        } else {
                            EMPTY
                        };
                        let proj_w = f("self_attn.o_proj.weight", vec![c, c]);
                        let ln2_w = f("post_attention_layernorm.weight", vec![c]);
                        let gate = f("mlp.gate_proj.weight", vec![m, c]);
                        let up = f("mlp.up_proj.weight", vec![m, c]);
                        LayerViews {
                            ln1_w,
                            ln1_b: EMPTY,
                            qkv_w: span(&q, &vw),
                            qkv_b,
                            proj_w,
                            proj_b: EMPTY,
                            ln2_w,
                            ln2_b: EMPTY,
                            fc_w: span(&gate, &up),
                            fc_b: EMPTY,
                            fcproj_w: f("mlp.down_proj.weight", vec![c, m]),
                            fcproj_b: EMPTY,
                        }
                    })
                    .collect();
                let lnf_w = add("model.norm.weight".into(), vec![c]);
                let lm_head = if cfg.tied_embeddings { wte.clone() } else { add("lm_head.weight".into(), vec![v, c]) };
                Layout { entries, wte, wpe: EMPTY, layers, lnf_w, lnf_b: EMPTY, lm_head, total: at }
            }
        }
    }

    /// GPT-2 initialisation: N(0, 0.02) for matrices and embeddings,
    /// N(0, 0.02/√(2L)) for the projections into the residual stream, zero
    /// biases, unit norm gains.
    pub fn init(&self, cfg: &ModelConfig, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut p = vec![0.0f32; self.total];
        let resid_std = 0.02 / libm::sqrt((2 * cfg.layers) as f64);
        for e in &self.entries {
            let std = if is_residual_projection(&e.name) {
                resid_std
            } else if e.shape.len() == 2 {
                0.02
            } else if is_norm_gain(&e.name) {
                p[e.range.clone()].fill(1.0);
                continue;
            } else {
                continue;
            };
            for x in &mut p[e.range.clone()] {
                *x = (normal(&mut rng) * std) as f32;
            }
        }
        p
    }

    /// Whether weight decay applies (matrices and embeddings, not biases or gains).
    pub fn decays(&self) -> Vec<bool> {
        let mut d = vec![false; self.total];
        for e in &self.entries {
            if e.shape.len() == 2 {
                d[e.range.clone()].fill(true);
            }
        }
        d
    }
}

fn is_residual_projection(name: &str) -> bool {
    name.ends_with("c_proj.weight") || name.ends_with("o_proj.weight") || name.ends_with("down_proj.weight")
}

fn is_norm_gain(name: &str) -> bool {
    ["ln_1.weight", "ln_2.weight", "ln_f.weight", "layernorm.weight", "model.norm.weight"]
        .iter()
        .any(|s| name.ends_with(s))
}

/// A standard normal by Box–Muller from two 53-bit uniforms.
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u = |rng: &mut ChaCha8Rng| ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let (u1, u2) = (u(rng), u(rng));
    libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(2.0 * core::f64::consts::PI * u2)
}

impl Layout {
    /// The tensors of `block` (laid out as `self`) under their names, each
    /// prefixed with `prefix` (`""` for parameters, `"m."`/`"v."` for moments).
    pub fn named(&self, block: &[f32], prefix: &str) -> Vec<Named> {
        self.entries
            .iter()
            .map(|e| Named {
                name: format!("{prefix}{}", e.name),
                shape: e.shape.clone(),
                data: block[e.range.clone()].to_vec(),
            })
            .collect()
    }

    /// Fills `block` from named tensors; every entry must be present with its shape.
    pub fn load_named(&self, block: &mut [f32], from: &[Named], prefix: &str) -> Result<()> {
        for e in &self.entries {
            let name = format!("{prefix}{}", e.name);
            let t = from
                .iter()
                .find(|t| t.name == name)
                .ok_or_else(|| Error::Case { field: name.clone(), reason: "missing from the checkpoint".into() })?;
            if t.shape != e.shape || t.data.len() != e.range.len() {
                return Err(Error::Case {
                    field: name,
                    reason: format!("shape {:?} in the checkpoint, {:?} in the model", t.shape, e.shape),
                });
            }
            block[e.range.clone()].copy_from_slice(&t.data);
        }
        Ok(())
    }
}

impl ModelConfig {
    /// Number of scalar parameters.
    pub fn num_params(&self) -> usize {
        Layout::new(self).total
    }
}
