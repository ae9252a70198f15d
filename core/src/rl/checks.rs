//! The input checks every backend's policy runs before touching a device,
//! so that a bad batch fails with the same error on each.

use super::arch::ModelConfig;
use super::policy::{Prompts, check_tokens};
use super::rows::Rows;
use crate::error::{Error, Result};
use crate::shape::Shape;

/// A checked generation request, as every backend's generation takes it.
#[derive(Clone, Copy, Debug)]
pub struct Generation<'a> {
    pub prompts: &'a [u32], // (B, P)
    /// (B) left padding of each prompt (see [`super::Prompts::pad`]); empty: none.
    pub pad: &'a [usize],
    pub b: usize,
    pub p: usize,
    pub g: usize,
    pub steps: usize,
    /// τ; 0 decodes greedily.
    pub temperature: f64,
    pub uniforms: &'a [f32], // (N, steps)
}

impl ModelConfig {
    /// Checks a training batch (prompts, `group` samples each, completions
    /// (N, T)); returns its shared-prompt row layout.
    pub fn check_batch(&self, prompts: Prompts<'_>, group: usize, completions: &[u32]) -> Result<Rows> {
        prompts.check(self.vocab)?;
        check_tokens("completions", completions, self.vocab)?;
        let n = prompts.batch * group;
        if group == 0 || completions.is_empty() || !completions.len().is_multiple_of(n) {
            return Err(Error::Shape {
                field: "completions",
                expected: Shape::d2(n, completions.len() / n.max(1)),
                got: Shape::d1(completions.len()),
            });
        }
        let t = completions.len() / n;
        self.check_context(prompts.len, t)?;
        Ok(Rows { b: prompts.batch, g: group, p: prompts.len, s: t - 1 })
    }

    /// Checks a generation request (the arguments of [`super::Policy::generate`]).
    pub fn check_generate<'a>(
        &self,
        prompts: Prompts<'a>,
        group: usize,
        steps: usize,
        temperature: f64,
        uniforms: &'a [f32],
    ) -> Result<Generation<'a>> {
        prompts.check(self.vocab)?;
        if group == 0 || steps == 0 {
            return Err(Error::Empty { field: "generate" });
        }
        self.check_context(prompts.len, steps)?;
        if !temperature.is_finite() || temperature < 0.0 {
            return Err(Error::Config { field: "temperature", reason: "must be a finite number ≥ 0" });
        }
        let n = prompts.batch * group;
        if temperature > 0.0 && uniforms.len() != n * steps {
            return Err(Error::Shape {
                field: "uniforms",
                expected: Shape::d2(n, steps),
                got: Shape::d1(uniforms.len()),
            });
        }
        Ok(Generation {
            prompts: prompts.tokens,
            pad: prompts.pad,
            b: prompts.batch,
            p: prompts.len,
            g: group,
            steps,
            temperature,
            uniforms,
        })
    }

    /// A prompt of `p` tokens followed by `t` scored tokens needs p + t − 1 positions.
    pub fn check_context(&self, p: usize, t: usize) -> Result<()> {
        if p + t - 1 > self.context {
            return Err(Error::Config {
                field: "model.context",
                reason: "prompt + completion − 1 exceeds the model's context",
            });
        }
        Ok(())
    }
}
