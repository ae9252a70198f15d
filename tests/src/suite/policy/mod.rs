//! Policy behaviour, generic over a backend's [`Policy`]: generation with
//! the KV cache against the training forward, greedy decoding, the shared
//! prompt prefix, the RL step and SFT loop, checkpoints and bit-exact
//! resume. [`Policies`] says how a backend builds its model and which
//! families it runs; `policy_suite!` instantiates the bodies.

pub mod checkpoint;
pub mod generate;
pub mod shared;
pub mod train;

use wapo_core::Result;
use wapo_core::rl::{Family, Layout, ModelConfig, Named, Policy};
use wapo_cpu::model::CpuModel;
use wapo_wgpu::WgpuDevice;
use wapo_wgpu::model::WgpuModel;

/// How a backend builds its policy, and what the suite may ask of it
/// beyond the [`Policy`] trait.
pub trait Policies {
    type P: Policy;
    fn make(&self, cfg: ModelConfig, seed: u64) -> Result<Self::P>;
    /// Whether this backend runs models of `cfg`'s family.
    fn supports(&self, cfg: &ModelConfig) -> bool;
    /// The flat accumulated gradient, in [`Layout`] order.
    fn gradients(&self, p: &Self::P) -> Vec<f32>;
}

/// The CPU policy (logits as `HostTensor<f32>`): every family.
pub struct CpuPolicies;

impl Policies for CpuPolicies {
    type P = CpuModel;
    fn make(&self, cfg: ModelConfig, seed: u64) -> Result<CpuModel> {
        CpuModel::new(cfg, seed)
    }
    fn supports(&self, _: &ModelConfig) -> bool {
        true
    }
    fn gradients(&self, p: &CpuModel) -> Vec<f32> {
        p.raw_gradients().to_vec()
    }
}

/// The wgpu policy on one device: the GPT family only.
pub struct WgpuPolicies(pub WgpuDevice);

impl Policies for WgpuPolicies {
    type P = WgpuModel;
    fn make(&self, cfg: ModelConfig, seed: u64) -> Result<WgpuModel> {
        WgpuModel::new(&self.0, cfg, seed)
    }
    fn supports(&self, cfg: &ModelConfig) -> bool {
        cfg.family == Family::Gpt
    }
    fn gradients(&self, p: &WgpuModel) -> Vec<f32> {
        p.raw_gradients().expect("gradients")
    }
}

/// The configurations of `cfgs` this backend runs; the others are named as
/// skipped.
pub fn supported<M: Policies>(m: &M, cfgs: impl IntoIterator<Item = ModelConfig>) -> Vec<ModelConfig> {
    cfgs.into_iter()
        .filter(|c| {
            let ok = m.supports(c);
            if !ok {
                eprintln!("skipped on this backend: the {:?} family", c.family);
            }
            ok
        })
        .collect()
}

/// Every parameter scaled by `k` (sharper, position-dependent logits).
pub fn scale_parameters<P: Policy>(p: &mut P, k: f32) {
    let mut params: Vec<Named> = p.parameters().expect("parameters");
    for t in &mut params {
        t.data.iter_mut().for_each(|x| *x *= k);
    }
    p.load_parameters(&params).expect("load parameters");
}

/// The parameters as one flat vector, in [`Layout`] order.
pub fn flat_parameters<P: Policy>(p: &P) -> Vec<f32> {
    p.parameters().expect("parameters").into_iter().flat_map(|t| t.data).collect()
}

/// The training forward's logits, downloaded.
pub fn logits<P: Policy>(p: &mut P, prompts: wapo_core::rl::Prompts<'_>, group: usize, comps: &[u32]) -> Vec<f64> {
    super::eval::download(&p.forward(prompts, group, comps).expect("forward"))
}

/// The layout of `cfg`'s parameter block.
pub fn layout(cfg: &ModelConfig) -> Layout {
    Layout::new(cfg)
}
