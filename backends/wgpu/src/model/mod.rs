//! The policy of both families on the GPU (the GPT of `DESIGN.md` and the
//! llama family of pretrained models), as the CPU's `model/mod.rs`: every
//! layer a hand-written WGSL kernel pair ([`crate::kernels`]), llm.c style,
//! over the same parameter layout, names, initialisation and shared-prompt
//! rows as the CPU policy (`wapo_cpu::model::CpuModel`), so that a
//! checkpoint or a seed moves between backends and both compute the same
//! numbers. One block graph ([`block`]) serves the training forward
//! ([`forward`]), the backward ([`backward`]) and KV-cache decoding
//! ([`decode`]).
//!
//! Parameters, gradients and AdamW moments are one device buffer each, with
//! the named views of [`Layout`]. A training step reads back the scored
//! tokens' statistics (four floats a token, SFT's loss among them) and the
//! gradient norm (which the optimizer step returns).

mod backward;
mod block;
mod decode;
mod forward;
mod head;
mod optim;

use wapo_core::rl::{
    Layout, ModelConfig, Named, OptimConfig, OptimState, Policy, Processing, Prompts, Rollout, Sampling, TokenStats,
    backward_via_logits, stats_via_logits,
};
use wapo_core::{Error, Result, Shape, Tensor};

use crate::context::WgpuDevice;
use crate::kernels::rope::RopeTables;
use crate::kernels::rows::fill;
use crate::kernels::{View, alloc, write};
use crate::tensor::WgpuTensor;
use block::Net;
use forward::{Acts, HostRows};
use head::HeadStats;
use optim::{AdamW, load_block};

/// The GPU GPT policy: parameters, gradients, optimizer state and the saved
/// activations of the last training forward, all on one wgpu device.
pub struct WgpuModel {
    cfg: ModelConfig,
    layout: Layout,
    dev: WgpuDevice,
    /// Rotary cos/sin tables (llama only).
    rope: Option<RopeTables>,
    params: WgpuTensor,
    grads: WgpuTensor,
    opt: AdamW,
    acts: Option<Acts>,
    /// The row statistics of the last [`Policy::forward_stats`], which its
    /// [`Policy::backward_logprobs`] turns into ∂loss/∂logits on the device.
    head: Option<HeadStats>,
    /// Rows of logits the head makes at once in `forward_stats` and
    /// `backward_logprobs`; `None`: 64 MiB worth.
    head_rows: Option<usize>,
}

impl WgpuModel {
    /// A freshly initialised model (the CPU policy's initialisation bits for `seed`).
    pub fn new(dev: &WgpuDevice, cfg: ModelConfig, seed: u64) -> Result<Self> {
        cfg.validate()?;
        let init = Layout::new(&cfg).init(&cfg, seed);
        Self::from_block(dev, cfg, &init)
    }

    /// A model with the given parameters (a pretrained model's, by name:
    /// every tensor of the layout must be there with its shape).
    pub fn from_named(dev: &WgpuDevice, cfg: ModelConfig, named: &[Named]) -> Result<Self> {
        cfg.validate()?;
        let layout = Layout::new(&cfg);
        let mut block = vec![0.0f32; layout.total];
        layout.load_named(&mut block, named, "")?;
        Self::from_block(dev, cfg, &block)
    }

    fn from_block(dev: &WgpuDevice, cfg: ModelConfig, block: &[f32]) -> Result<Self> {
        let layout = Layout::new(&cfg);
        let n = layout.total;
        let params = alloc(dev, n)?;
        write(&params, 0, block)?;
        let rope = match cfg.family {
            wapo_core::rl::Family::Gpt => None,
            wapo_core::rl::Family::Llama => Some(RopeTables::new(dev, &cfg.rope_inv_freq(), cfg.context)?),
        };
        let grads = alloc(dev, n)?;
        fill(View::all(&grads), 0.0)?;
        let opt = AdamW::new(dev, &layout)?;
        Ok(WgpuModel {
            cfg,
            layout,
            dev: dev.clone(),
            rope,
            params,
            grads,
            opt,
            acts: None,
            head: None,
            head_rows: None,
        })
    }

    /// The flat parameter block (device → host) and its layout.
    pub fn raw_parameters(&self) -> Result<(Vec<f32>, &Layout)> {
        Ok((self.params.to_vec()?, &self.layout))
    }

    /// The accumulated gradient, in the parameter block's layout (device → host).
    pub fn raw_gradients(&self) -> Result<Vec<f32>> {
        self.grads.to_vec()
    }

    /// Overwrites the flat parameter block.
    pub fn set_raw_parameters(&mut self, data: &[f32]) -> Result<()> {
        if data.len() != self.layout.total {
            return Err(Error::Shape {
                field: "parameters",
                expected: Shape::d1(self.layout.total),
                got: Shape::d1(data.len()),
            });
        }
        write(&self.params, 0, data)
    }

    /// Sets how many rows of logits the LM head makes at once in
    /// [`Policy::forward_stats`] and [`Policy::backward_logprobs`] (`None`:
    /// 64 MiB of logits; at most what one storage binding holds). The
    /// results do not depend on it beyond f32 rounding of the head's
    /// weight gradient, summed chunk by chunk.
    pub fn set_head_chunk_rows(&mut self, rows: Option<usize>) {
        self.head_rows = rows;
    }

    /// Training forward; keeps the activations for [`Policy::backward`],
    /// the logits (N·T, V) with them when `with_logits`.
    fn train_forward(
        &mut self,
        prompts: Prompts<'_>,
        group: usize,
        completions: &[u32],
        with_logits: bool,
    ) -> Result<&Acts> {
        let rows = self.cfg.check_batch(prompts, group, completions)?;
        let t = completions.len() / rows.n();
        let host = HostRows::new(prompts.tokens, prompts.pad, completions, rows, t);
        self.acts = None;
        self.head = None;
        let acts = forward::forward(self.net(), host, rows, true, with_logits)?;
        Ok(self.acts.insert(acts))
    }

    fn saved_logits(&self) -> Result<&WgpuTensor> {
        self.acts
            .as_ref()
            .and_then(|a| a.logits.as_ref())
            .ok_or_else(|| Error::Backend("no logits saved: run a training forward first".into()))
    }

    fn backward_from(&mut self, dlogits: &WgpuTensor) -> Result<()> {
        let acts =
            self.acts.as_ref().ok_or_else(|| Error::Backend("backward without a preceding training forward".into()))?;
        let want = acts.ns * self.cfg.vocab;
        if dlogits.shape().numel() != want {
            return Err(Error::Shape {
                field: "grad_logits",
                expected: Shape::d2(acts.ns, self.cfg.vocab),
                got: dlogits.shape(),
            });
        }
        backward::backward(self.net(), &self.grads, acts, dlogits)
    }

    fn net(&self) -> Net<'_> {
        Net { dev: &self.dev, cfg: &self.cfg, lay: &self.layout, params: &self.params, rope: self.rope.as_ref() }
    }
}

impl Policy for WgpuModel {
    type T = WgpuTensor;

    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn device(&self) -> WgpuDevice {
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
        // The prompt pass replaces the saved activations: no backward from here.
        self.acts = None;
        self.head = None;
        decode::generate(self.net(), &req, sampling)
    }

    fn forward(&mut self, prompts: Prompts<'_>, group: usize, completions: &[u32]) -> Result<WgpuTensor> {
        let v = self.cfg.vocab;
        let n = prompts.batch * group;
        let t = self.train_forward(prompts, group, completions, true)?.ns / n;
        self.saved_logits()?.reshape(Shape::d3(n, t, v))
    }

    fn backward(&mut self, grad_logits: &WgpuTensor) -> Result<()> {
        self.backward_from(grad_logits)
    }

    fn forward_stats(
        &mut self,
        prompts: Prompts<'_>,
        group: usize,
        completions: &[u32],
        processing: Processing,
    ) -> Result<TokenStats> {
        if processing.truncates(self.cfg.vocab) {
            // Top-k / top-p scoring is the host rule for now.
            self.head = None;
            return stats_via_logits(self, prompts, group, completions, processing);
        }
        let temperature = processing.temperature;
        head::check_temperature(temperature)?;
        self.train_forward(prompts, group, completions, false)?;
        let Some(acts) = &self.acts else {
            return Err(Error::Backend("the training forward kept no activations".into()));
        };
        let (out, head) = head::head_stats(self.net(), acts, completions, temperature, self.head_rows)?;
        self.head = Some(head);
        Ok(out)
    }

    fn backward_logprobs(
        &mut self,
        prompts: Prompts<'_>,
        group: usize,
        completions: &[u32],
        grad_logprobs: &[f32],
        processing: Processing,
    ) -> Result<()> {
        if processing.truncates(self.cfg.vocab) {
            return backward_via_logits(self, prompts, group, completions, grad_logprobs, processing);
        }
        let temperature = processing.temperature;
        let (Some(head), Some(acts)) = (&self.head, &self.acts) else {
            return Err(Error::Backend("backward_logprobs without a preceding forward_stats".into()));
        };
        if head.temperature != temperature || head.completions != completions {
            return Err(Error::Backend(
                "backward_logprobs with another batch or temperature than the last forward_stats".into(),
            ));
        }
        let dsel = head::head_backward(self.net(), &self.grads, acts, head, grad_logprobs)?;
        backward::backward_body(self.net(), &self.grads, acts, &dsel)
    }

    fn zero_grad(&mut self) {
        // Recording a fill cannot fail short of a lost device, which the
        // next call that returns a Result reports.
        let _ = fill(View::all(&self.grads), 0.0);
    }

    fn optimizer_step(&mut self, cfg: &OptimConfig) -> Result<f64> {
        self.opt.step(cfg, &self.params, &self.grads)
    }

    fn parameters(&self) -> Result<Vec<Named>> {
        Ok(self.layout.named(&self.params.to_vec()?, ""))
    }

    fn load_parameters(&mut self, params: &[Named]) -> Result<()> {
        load_block(&self.layout, &self.params, params, "")
    }

    fn gradients(&self) -> Result<Vec<Named>> {
        Ok(self.layout.named(&self.grads.to_vec()?, ""))
    }

    fn optimizer_state(&self) -> Result<OptimState> {
        self.opt.state(&self.layout)
    }

    fn load_optimizer_state(&mut self, state: &OptimState) -> Result<()> {
        self.opt.load_state(&self.layout, state)
    }
}
