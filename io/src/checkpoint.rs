//! safetensors checkpoints of any [`Policy`]: the parameters under their
//! shared names, the optimizer moments under `optim.`, and the
//! [`TrainState`] and model config in the metadata. Writes are atomic: a
//! temp file in the same directory, fsync, rename, so a kill during a save
//! leaves the previous checkpoint intact.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use wapo_core::rl::{Family, ModelConfig, Named, OptimState, Policy, TrainState};
use wapo_core::{Error, Result};

const OPTIM: &str = "optim.";

fn backend(e: impl std::fmt::Display) -> Error {
    Error::Backend(format!("checkpoint: {e}"))
}

/// Writes `policy`'s parameters, optimizer state and `state` to `path` atomically.
pub fn save<P: Policy>(path: &Path, policy: &P, state: &TrainState) -> Result<()> {
    let params = policy.parameters()?;
    let opt = policy.optimizer_state()?;
    let bytes = |t: &Named| t.data.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for t in &params {
        owned.push((t.name.clone(), t.shape.clone(), bytes(t)));
    }
    for t in &opt.moments {
        owned.push((format!("{OPTIM}{}", t.name), t.shape.clone(), bytes(t)));
    }
    let views = owned
        .iter()
        .map(|(n, s, b)| Ok((n.clone(), TensorView::new(Dtype::F32, s.clone(), b).map_err(backend)?)))
        .collect::<Result<Vec<_>>>()?;
    let cfg = policy.config();
    let mut meta = HashMap::new();
    meta.insert("format".into(), "wapo-rs/1".into());
    meta.insert("train_state".into(), state.to_text());
    meta.insert("optim_step".into(), opt.step.to_string());
    meta.insert("model".into(), model_text(cfg));
    let data = safetensors::serialize(views, Some(meta)).map_err(backend)?;
    crate::atomic::write_bytes(path, &data).map_err(backend)
}

/// Loads a checkpoint into `policy` (whose config must match) and returns
/// the saved [`TrainState`].
pub fn load<P: Policy>(path: &Path, policy: &mut P) -> Result<TrainState> {
    let data = fs::read(path).map_err(backend)?;
    let st = SafeTensors::deserialize(&data).map_err(backend)?;
    let (_, meta) = SafeTensors::read_metadata(&data).map_err(backend)?;
    let meta = meta.metadata().clone().unwrap_or_default();
    let get = |k: &str| meta.get(k).ok_or_else(|| backend(format!("metadata `{k}` missing")));
    if get("model")? != &model_text(policy.config()) {
        return Err(backend(format!(
            "model config {} in the checkpoint, {} in the policy",
            get("model")?,
            model_text(policy.config())
        )));
    }
    let state = TrainState::from_text(get("train_state")?)?;
    let step: u64 = get("optim_step")?.parse().map_err(backend)?;
    let (mut params, mut moments) = (Vec::new(), Vec::new());
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(backend(format!("`{name}` is not f32")));
        }
        let data = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let shape = view.shape().to_vec();
        match name.strip_prefix(OPTIM) {
            Some(rest) => moments.push(Named { name: rest.to_string(), shape, data }),
            None => params.push(Named { name, shape, data }),
        }
    }
    policy.load_parameters(&params)?;
    policy.load_optimizer_state(&OptimState { step, moments })?;
    Ok(state)
}

/// Parameters only (for `wapo eval` or another backend), without the optimizer.
pub fn load_parameters<P: Policy>(path: &Path, policy: &mut P) -> Result<()> {
    let data = fs::read(path).map_err(backend)?;
    let st = SafeTensors::deserialize(&data).map_err(backend)?;
    let mut params = Vec::new();
    for (name, view) in st.tensors() {
        if name.starts_with(OPTIM) || view.dtype() != Dtype::F32 {
            continue;
        }
        let data = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        params.push(Named { name, shape: view.shape().to_vec(), data });
    }
    policy.load_parameters(&params)
}

/// The model config as the metadata records it; the GPT's text is what it
/// always was, so older checkpoints still load.
fn model_text(c: &ModelConfig) -> String {
    let gpt = format!(
        "vocab={} context={} channels={} layers={} heads={} mlp={}",
        c.vocab, c.context, c.channels, c.layers, c.heads, c.mlp
    );
    match c.family {
        Family::Gpt => gpt,
        Family::Llama => format!(
            "family=llama {gpt} kv_heads={} norm_eps={:e} rope_theta={:e} rope_scaling={:?} tied={} qkv_bias={}",
            c.kv_heads, c.norm_eps, c.rope_theta, c.rope_scaling, c.tied_embeddings, c.qkv_bias
        ),
    }
}
