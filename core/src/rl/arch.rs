//! The architecture description every backend builds its model from: one
//! block graph per backend reads this as data (which norm, which position
//! encoding, which MLP, how many key/value heads), so a family is a value,
//! not a copy of the model code.
//!
//! * [`Family::Gpt`] — the GPT of `DESIGN.md`: learned position embeddings,
//!   LayerNorm with biases, fused qkv with bias, GELU MLP with biases.
//! * [`Family::Llama`] — the llama family (SmolLM2, Llama, Qwen2.5): RMSNorm,
//!   rotary position embeddings in the Hugging Face `rotate_half` layout,
//!   grouped-query attention, SwiGLU MLP, no biases (Qwen2's q/k/v biases
//!   behind [`ModelConfig::qkv_bias`]), optionally tied embeddings.

use alloc::vec::Vec;

use crate::error::{Error, Result};

/// Which block the model stacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Gpt,
    Llama,
}

/// How rotary frequencies are derived from the base θ.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RopeScaling {
    /// inv_freq(i) = θ^(−2i/d).
    None,
    /// Llama 3.1's `rope_type = "llama3"`: long wavelengths divided by
    /// `factor`, short ones kept, a smooth ramp between.
    Llama3 { factor: f64, low_freq_factor: f64, high_freq_factor: f64, original_context: f64 },
}

/// A decoder-only transformer: the GPT or the llama family.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelConfig {
    pub family: Family,
    /// V, number of token ids.
    pub vocab: usize,
    /// Maximum sequence length (prompt + completion).
    pub context: usize,
    /// C, the residual width.
    pub channels: usize,
    /// L, number of blocks.
    pub layers: usize,
    /// H, query heads (must divide `channels`; head size C/H).
    pub heads: usize,
    /// H_kv, key/value heads (must divide `heads`; = `heads` without GQA).
    pub kv_heads: usize,
    /// Hidden width of the MLP (4·C in GPT-2; 256 in the WAPO toy).
    pub mlp: usize,
    /// ε of the normalization layers.
    pub norm_eps: f64,
    /// Rotary base θ (llama only).
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    /// The LM head is the token embedding (no `lm_head.weight` of its own).
    pub tied_embeddings: bool,
    /// Biases on the q, k and v projections (Qwen2); llama only.
    pub qkv_bias: bool,
}

impl ModelConfig {
    /// A GPT of `DESIGN.md` with the given shape.
    pub const fn gpt(vocab: usize, context: usize, channels: usize, layers: usize, heads: usize, mlp: usize) -> Self {
        ModelConfig {
            family: Family::Gpt,
            vocab,
            context,
            channels,
            layers,
            heads,
            kv_heads: heads,
            mlp,
            norm_eps: 1e-5,
            rope_theta: 10_000.0,
            rope_scaling: RopeScaling::None,
            tied_embeddings: false,
            qkv_bias: true,
        }
    }

    /// The WAPO authors' toy model: a GPT with C = 128, L = 3, H = 4, MLP 256.
    pub const fn toy(vocab: usize, context: usize) -> Self {
        Self::gpt(vocab, context, 128, 3, 4, 256)
    }

    /// A llama-family model with the given shape (no biases, untied, RMSNorm ε 1e-5).
    #[allow(clippy::too_many_arguments)]
    pub const fn llama(
        vocab: usize,
        context: usize,
        channels: usize,
        layers: usize,
        heads: usize,
        kv_heads: usize,
        mlp: usize,
        rope_theta: f64,
    ) -> Self {
        ModelConfig {
            family: Family::Llama,
            vocab,
            context,
            channels,
            layers,
            heads,
            kv_heads,
            mlp,
            norm_eps: 1e-5,
            rope_theta,
            rope_scaling: RopeScaling::None,
            tied_embeddings: false,
            qkv_bias: false,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |field, reason| Err(Error::Config { field, reason });
        if self.vocab == 0 {
            return bad("model.vocab", "must be ≥ 1");
        }
        if self.context == 0 {
            return bad("model.context", "must be ≥ 1");
        }
        if self.channels == 0 || self.layers == 0 || self.mlp == 0 {
            return bad("model.channels", "channels, layers and mlp must be ≥ 1");
        }
        if self.heads == 0 || !self.channels.is_multiple_of(self.heads) {
            return bad("model.heads", "must be ≥ 1 and divide channels");
        }
        if self.kv_heads == 0 || !self.heads.is_multiple_of(self.kv_heads) {
            return bad("model.kv_heads", "must be ≥ 1 and divide heads");
        }
        if self.family == Family::Gpt && self.kv_heads != self.heads {
            return bad("model.kv_heads", "the GPT has no grouped-query attention (kv_heads = heads)");
        }
        if self.family == Family::Llama && !self.head_size().is_multiple_of(2) {
            return bad("model.heads", "rotary embeddings need an even head size");
        }
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0) {
            return bad("model.norm_eps", "must be a finite number > 0");
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            return bad("model.rope_theta", "must be a finite number > 1");
        }
        Ok(())
    }

    /// Whether training goes through per-token statistics with the LM head
    /// in row chunks ([`super::Policy::forward_stats`]) rather than through
    /// the full logits: the llama family, whose vocabularies are large.
    pub fn chunked_head(&self) -> bool {
        self.family == Family::Llama
    }

    /// Head size C/H.
    pub fn head_size(&self) -> usize {
        self.channels / self.heads
    }

    /// Width of the key (and of the value) projection: H_kv · C/H.
    pub fn kv_channels(&self) -> usize {
        self.kv_heads * self.head_size()
    }

    /// Width of one row of the fused q|k|v projection: C + 2·H_kv·C/H.
    pub fn qkv_channels(&self) -> usize {
        self.channels + 2 * self.kv_channels()
    }

    /// Width of the MLP's first projection: M (GELU) or 2M (SwiGLU: gate then up).
    pub fn fc_channels(&self) -> usize {
        match self.family {
            Family::Gpt => self.mlp,
            Family::Llama => 2 * self.mlp,
        }
    }

    /// Rotary inverse frequencies, one per pair of a head's dimensions
    /// (C/(2H) of them), in f64.
    pub fn rope_inv_freq(&self) -> Vec<f64> {
        let d = self.head_size();
        (0..d / 2)
            .map(|i| {
                let f = 1.0 / libm::pow(self.rope_theta, (2 * i) as f64 / d as f64);
                match self.rope_scaling {
                    RopeScaling::None => f,
                    RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_context } => {
                        let wavelen = 2.0 * core::f64::consts::PI / f;
                        let (low_wl, high_wl) =
                            (original_context / low_freq_factor, original_context / high_freq_factor);
                        if wavelen < high_wl {
                            f
                        } else if wavelen > low_wl {
                            f / factor
                        } else {
                            let smooth =
                                (original_context / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                            (1.0 - smooth) * f / factor + smooth * f
                        }
                    }
                }
            })
            .collect()
    }
}
