//! The policy of both families on the CPU (the GPT of `DESIGN.md` and the
//! llama family of pretrained models): parameters, gradients, AdamW state
//! and the saved activations of the last training forward.
//!
//! Hand-written kernels, llm.c style ([`crate::kernels`]): sgemm from
//! `matrixmultiply` for the matmuls, rayon for the rest. One block graph
//! ([`block`]) serves the training forward ([`forward`]), the backward
//! ([`backward`]) and KV-cache decoding ([`decode`]); the G samples of a
//! prompt share its prompt positions in all three
//! ([`crate::kernels::attention::Rows`]).

pub mod backward;
pub mod block;
pub mod decode;
pub mod forward;
pub mod head;
pub mod optim;

use wapo_core::host::HostTensor;
use wapo_core::rl::{
    Family, Layout, ModelConfig, Named, OptimConfig, OptimState, Policy, Processing, Prompts, Rollout, Sampling,
    TokenStats,
};
use wapo_core::{Error, Result, Shape, Tensor};

use crate::kernels::RopeTable;
use block::Net;
use decode::GenScratch;
use forward::Acts;
use optim::AdamW;

/// The CPU GPT policy, its gradients, optimizer state and saved activations.
/// `T` is the tensor type the logits are handed out in.
pub struct CpuModel<T: Tensor = HostTensor<f32>> {
    cfg: ModelConfig,
    layout: Layout,
    params: Vec<f32>,
    rope: RopeTable,
    grads: Vec<f32>,
    decay: Vec<bool>,
    opt: AdamW,
    acts: Acts,
    scratch: GenScratch,
    /// The processing of the last [`Policy::forward_stats`], whose row
    /// statistics the chunked head's backward reuses.
    head_processing: Option<Processing>,
    head_scratch: [Vec<f32>; 2],
    dev: T::Device,
}

impl<T: Tensor> CpuModel<T>
where
    T::Device: Default,
{
    /// A freshly initialised model (GPT-2 initialisation from `seed`).
    pub fn new(cfg: ModelConfig, seed: u64) -> Result<Self> {
        Self::with_device(cfg, seed, T::Device::default())
    }
}

impl<T: Tensor> CpuModel<T> {
    pub fn with_device(cfg: ModelConfig, seed: u64, dev: T::Device) -> Result<Self> {
        cfg.validate()?;
        let params = Layout::new(&cfg).init(&cfg, seed);
        Self::from_block(cfg, params, dev)
    }

    /// A model with the given parameters (a pretrained model's, by name;
    /// every tensor of the layout must be there with its shape).
    pub fn from_named(cfg: ModelConfig, named: &[Named], dev: T::Device) -> Result<Self> {
        cfg.validate()?;
        let layout = Layout::new(&cfg);
        let mut params = vec![0.0f32; layout.total];
        layout.load_named(&mut params, named, "")?;
        Self::from_block(cfg, params, dev)
    }

    /// Gradients and optimizer moments are allocated at the first backward
    /// and optimizer step: a model that only generates or scores holds its
    /// parameters alone.
    fn from_block(cfg: ModelConfig, params: Vec<f32>, dev: T::Device) -> Result<Self> {
        let layout = Layout::new(&cfg);
        let rope = match cfg.family {
            Family::Gpt => RopeTable::default(),
            Family::Llama => RopeTable::new(&cfg.rope_inv_freq(), cfg.context),
        };
        Ok(CpuModel {
            rope,
            grads: Vec::new(),
            decay: layout.decays(),
            opt: AdamW::default(),
            params,
            layout,
            cfg,
            acts: Acts::default(),
            scratch: GenScratch::default(),
            head_processing: None,
            head_scratch: Default::default(),
            dev,
        })
    }

    /// The flat parameter block and its layout (tests, other backends).
    pub fn raw_parameters(&self) -> (&[f32], &Layout) {
        (&self.params, &self.layout)
    }
    pub fn raw_parameters_mut(&mut self) -> &mut [f32] {
        &mut self.params
    }
    /// The accumulated gradient, in the parameter block's layout (empty
    /// before the first backward).
    pub fn raw_gradients(&self) -> &[f32] {
        &self.grads
    }

    /// Training forward on host slices; returns the logits (N·T, V).
    pub fn forward_host(&mut self, prompts: Prompts<'_>, group: usize, completions: &[u32]) -> Result<&[f32]> {
        let rows = self.cfg.check_batch(prompts, group, completions)?;
        let t = completions.len() / rows.n();
        let net = Net { cfg: &self.cfg, lay: &self.layout, params: &self.params, rope: &self.rope };
        self.head_processing = None;
        forward::forward(net, &mut self.acts, prompts, completions, rows, t);
        Ok(&self.acts.logits)
    }

    /// Accumulates the gradient from ∂loss/∂logits (N·T, V) of the last forward.
    pub fn backward_host(&mut self, dlogits: &[f32]) -> Result<()> {
        if self.acts.rows.is_none() {
            return Err(Error::Backend("backward without a preceding training forward".into()));
        }
        if dlogits.len() != self.acts.logits.len() {
            return Err(Error::Shape {
                field: "grad_logits",
                expected: Shape::d2(self.acts.sel.len(), self.cfg.vocab),
                got: Shape::d1(dlogits.len()),
            });
        }
        let net = Net { cfg: &self.cfg, lay: &self.layout, params: &self.params, rope: &self.rope };
        self.grads.resize(self.layout.total, 0.0);
        backward::backward(net, &mut self.acts, &mut self.grads, dlogits);
        Ok(())
    }
}

impl<T: Tensor> Policy for CpuModel<T> {
    type T = T;

    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn device(&self) -> T::Device {
        self.dev.clone()
    }

    fn generate(
        &mut self,
        prompts: Prompts<'_>,
        group: usize,
        steps: usize,
        temperature: f64,
        uniforms: &[f32],
        sampling: &Sampling,
    ) -> Result<Rollout> {
        let req = self.cfg.check_generate(prompts, group, steps, temperature, uniforms)?;
        sampling.validate()?;
        let net = Net { cfg: &self.cfg, lay: &self.layout, params: &self.params, rope: &self.rope };
        Ok(decode::generate(net, &mut self.acts, &mut self.scratch, &req, sampling))
    }

    fn forward(&mut self, prompts: Prompts<'_>, group: usize, completions: &[u32]) -> Result<T> {
        let v = self.cfg.vocab;
        let n = prompts.batch * group;
        self.forward_host(prompts, group, completions)?;
        let logits = &self.acts.logits;
        T::upload_f32(&self.dev, logits, Shape::d3(n, logits.len() / (n * v), v))
    }

    fn backward(&mut self, grad_logits: &T) -> Result<()> {
        let mut g = vec![0.0f32; grad_logits.shape().numel()];
        grad_logits.download_f32(&mut g)?;
        self.backward_host(&g)
    }

    fn forward_stats(
        &mut self,
        prompts: Prompts<'_>,
        group: usize,
        completions: &[u32],
        processing: Processing,
    ) -> Result<TokenStats> {
        let rows = self.cfg.check_batch(prompts, group, completions)?;
        processing.validate()?;
        let t = completions.len() / rows.n();
        let net = Net { cfg: &self.cfg, lay: &self.layout, params: &self.params, rope: &self.rope };
        forward::forward_body(net, &mut self.acts, prompts, completions, rows, t);
        self.head_processing = Some(processing);
        Ok(head::head_stats(net, &mut self.acts, processing, &mut self.head_scratch[0]))
    }

    fn backward_logprobs(
        &mut self,
        _prompts: Prompts<'_>,
        _group: usize,
        completions: &[u32],
        grad_logprobs: &[f32],
        processing: Processing,
    ) -> Result<()> {
        if self.acts.rows.is_none() || self.head_processing != Some(processing) {
            return Err(Error::Backend(
                "backward_logprobs without a preceding forward_stats with that processing".into(),
            ));
        }
        if grad_logprobs.len() != self.acts.sel.len() || completions != self.acts.targets.as_slice() {
            return Err(Error::Shape {
                field: "grad_logprobs",
                expected: Shape::d1(self.acts.sel.len()),
                got: Shape::d1(grad_logprobs.len()),
            });
        }
        self.grads.resize(self.layout.total, 0.0);
        let net = Net { cfg: &self.cfg, lay: &self.layout, params: &self.params, rope: &self.rope };
        let dsel =
            head::head_backward(net, &self.acts, &mut self.grads, grad_logprobs, processing, &mut self.head_scratch);
        backward::backward_body(net, &mut self.acts, &mut self.grads, &dsel);
        Ok(())
    }

    fn zero_grad(&mut self) {
        self.grads.fill(0.0);
    }

    fn optimizer_step(&mut self, cfg: &OptimConfig) -> Result<f64> {
        self.grads.resize(self.layout.total, 0.0);
        self.opt.allocate(self.layout.total);
        let norm = self.opt.step(cfg, &mut self.params, &self.grads, &self.decay);
        if !norm.is_finite() {
            return Err(Error::NonFinite { field: "gradient norm", pos: wapo_core::error::Pos::NONE });
        }
        Ok(norm)
    }

    fn parameters(&self) -> Result<Vec<Named>> {
        Ok(self.layout.named(&self.params, ""))
    }

    fn load_parameters(&mut self, params: &[Named]) -> Result<()> {
        self.layout.load_named(&mut self.params, params, "")
    }

    fn gradients(&self) -> Result<Vec<Named>> {
        // Empty before the first backward: the gradient is then zero.
        let mut g = self.grads.clone();
        g.resize(self.layout.total, 0.0);
        Ok(self.layout.named(&g, ""))
    }

    fn optimizer_state(&self) -> Result<OptimState> {
        let mut opt = self.opt.clone();
        opt.allocate(self.layout.total);
        let mut moments = self.layout.named(&opt.m, "m.");
        moments.extend(self.layout.named(&opt.v, "v."));
        Ok(OptimState { step: self.opt.step, moments })
    }

    fn load_optimizer_state(&mut self, state: &OptimState) -> Result<()> {
        self.opt.allocate(self.layout.total);
        self.layout.load_named(&mut self.opt.m, &state.moments, "m.")?;
        self.layout.load_named(&mut self.opt.v, &state.moments, "v.")?;
        self.opt.step = state.step;
        Ok(())
    }
}
