//! A policy whose parameters are its logits: one free row of V logits per
//! (sequence, position), whatever the prompt and the earlier tokens. A
//! gradient step on it moves each position's logits by exactly −lr·∂loss/∂z,
//! the setting in which §7's first order is the whole story (up to O(lr²)).

use wapo_core::host::HostTensor;
use wapo_core::logits::row_stats;
use wapo_core::rl::{ModelConfig, Named, OptimConfig, OptimState, Policy, Prompts, Rollout, Sampling};
use wapo_core::{Error, Result, Shape, Tensor};

pub struct TablePolicy {
    cfg: ModelConfig,
    /// (N, T, V) logits.
    z: Vec<f32>,
    grad: Vec<f32>,
    n: usize,
    t: usize,
}

impl TablePolicy {
    /// Logits drawn from a fixed pseudo-random sequence, spread enough that
    /// every position has both peak and valley tokens.
    pub fn new(n: usize, t: usize, v: usize, seed: u64) -> Self {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let z = (0..n * t * v)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ((x >> 11) as f64 / (1u64 << 53) as f64 * 4.0 - 2.0) as f32
            })
            .collect();
        let cfg = ModelConfig::gpt(v, 1 + t, 8, 1, 1, 8);
        TablePolicy { cfg, z, grad: vec![0.0; n * t * v], n, t }
    }

    fn check_rows(&self, rows: usize, len: usize) -> Result<()> {
        if rows != self.n || len != self.t {
            return Err(Error::Shape {
                field: "completions",
                expected: Shape::d2(self.n, self.t),
                got: Shape::d2(rows, len),
            });
        }
        Ok(())
    }
}

impl Policy for TablePolicy {
    type T = HostTensor<f64>;

    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn device(&self) {}

    fn generate(
        &mut self,
        prompts: Prompts<'_>,
        group: usize,
        steps: usize,
        temperature: f64,
        uniforms: &[f32],
        sampling: &Sampling,
    ) -> Result<Rollout> {
        if sampling.truncates(self.cfg.vocab) || !sampling.stop.is_empty() {
            return Err(Error::Config {
                field: "rollout",
                reason: "top-k, top-p and stop tokens are not supported by this backend's generation yet",
            });
        }
        self.check_rows(prompts.batch * group, steps)?;
        let v = self.cfg.vocab;
        let (mut tokens, mut logprobs) = (Vec::new(), Vec::new());
        for (r, row) in self.z.chunks(v).enumerate() {
            let z: Vec<f64> = row.iter().map(|&x| x as f64).collect();
            let lse = row_stats(&z, 0, temperature).lse;
            let u = uniforms[r] as f64;
            let mut cdf = 0.0;
            let mut y = v - 1;
            for (k, &zk) in z.iter().enumerate() {
                cdf += (zk / temperature - lse).exp();
                if u < cdf {
                    y = k;
                    break;
                }
            }
            tokens.push(y as u32);
            logprobs.push((z[y] / temperature - lse) as f32);
        }
        Ok(Rollout { n: self.n, len: self.t, tokens, logprobs, lengths: vec![self.t; self.n] })
    }

    fn forward(&mut self, prompts: Prompts<'_>, group: usize, completions: &[u32]) -> Result<HostTensor<f64>> {
        self.check_rows(prompts.batch * group, completions.len() / (prompts.batch * group).max(1))?;
        let z: Vec<f64> = self.z.iter().map(|&x| x as f64).collect();
        HostTensor::upload(&(), &z, Shape::d3(self.n, self.t, self.cfg.vocab))
    }

    fn backward(&mut self, grad_logits: &HostTensor<f64>) -> Result<()> {
        let mut g = vec![0.0; self.grad.len()];
        grad_logits.download(&mut g)?;
        for (a, b) in self.grad.iter_mut().zip(g) {
            *a += b as f32;
        }
        Ok(())
    }

    fn sft(&mut self, _: Prompts<'_>, _: &[u32], _: &[usize]) -> Result<f64> {
        Err(Error::Backend("the table policy has no SFT".into()))
    }

    fn zero_grad(&mut self) {
        self.grad.fill(0.0);
    }

    fn optimizer_step(&mut self, _: &OptimConfig) -> Result<f64> {
        Err(Error::Backend("the table policy has no optimizer".into()))
    }

    fn parameters(&self) -> Result<Vec<Named>> {
        Ok(vec![Named { name: "logits".into(), shape: vec![self.n * self.t, self.cfg.vocab], data: self.z.clone() }])
    }

    fn load_parameters(&mut self, params: &[Named]) -> Result<()> {
        let p = params.iter().find(|p| p.name == "logits").ok_or(Error::Backend("no logits".into()))?;
        self.z.copy_from_slice(&p.data);
        Ok(())
    }

    fn gradients(&self) -> Result<Vec<Named>> {
        Ok(vec![Named { name: "logits".into(), shape: vec![self.n * self.t, self.cfg.vocab], data: self.grad.clone() }])
    }

    fn optimizer_state(&self) -> Result<OptimState> {
        Ok(OptimState { step: 0, moments: Vec::new() })
    }

    fn load_optimizer_state(&mut self, _: &OptimState) -> Result<()> {
        Ok(())
    }
}
