//! AdamW with global gradient-norm clipping over one flat parameter block.

use wapo_core::rl::OptimConfig;

/// First and second moments and the step count.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AdamW {
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    pub step: u64,
}

impl AdamW {
    pub fn new(n: usize) -> Self {
        AdamW { m: vec![0.0; n], v: vec![0.0; n], step: 0 }
    }

    /// Zero moments for `n` parameters if there are none yet.
    pub fn allocate(&mut self, n: usize) {
        if self.m.len() != n {
            self.m = vec![0.0; n];
            self.v = vec![0.0; n];
        }
    }

    /// Clips `grads` to `cfg.grad_clip` by global norm, then one decoupled
    /// weight-decay Adam step (as `torch.optim.AdamW`); `decay[i]` says
    /// whether weight decay applies to parameter i. Returns the norm before
    /// clipping.
    pub fn step(&mut self, cfg: &OptimConfig, params: &mut [f32], grads: &[f32], decay: &[bool]) -> f64 {
        // f64 accumulation in a fixed order: the norm is the same on every run.
        let norm = grads.iter().map(|&g| (g as f64) * (g as f64)).sum::<f64>().sqrt();
        let scale =
            if cfg.grad_clip > 0.0 && norm > cfg.grad_clip { (cfg.grad_clip / (norm + 1e-6)) as f32 } else { 1.0 };
        self.step += 1;
        let t = self.step as i32;
        let (b1, b2) = (cfg.beta1 as f32, cfg.beta2 as f32);
        let bc1 = 1.0 - cfg.beta1.powi(t);
        let bc2 = 1.0 - cfg.beta2.powi(t);
        let (lr, wd, eps) = (cfg.lr as f32, cfg.weight_decay as f32, cfg.eps as f32);
        let (bc1, bc2_sqrt) = (bc1 as f32, bc2.sqrt() as f32);
        for i in 0..params.len() {
            let g = grads[i] * scale;
            let m = b1 * self.m[i] + (1.0 - b1) * g;
            let v = b2 * self.v[i] + (1.0 - b2) * g * g;
            self.m[i] = m;
            self.v[i] = v;
            if decay[i] {
                params[i] -= lr * wd * params[i];
            }
            let denom = v.sqrt() / bc2_sqrt + eps;
            params[i] -= lr / bc1 * m / denom;
        }
        norm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two Adam steps on one scalar, expected values by hand:
    /// g = 0.5: m = 0.05, v = 0.00025, m̂ = 0.5, v̂ = 0.25 → Δ = −lr·0.5/0.5.
    #[test]
    fn first_step_moves_by_lr() {
        let cfg = OptimConfig { lr: 0.1, grad_clip: 0.0, weight_decay: 0.0, ..OptimConfig::default() };
        let mut opt = AdamW::new(1);
        let mut p = [1.0f32];
        opt.step(&cfg, &mut p, &[0.5], &[false]);
        assert!((p[0] - 0.9).abs() < 1e-6, "{}", p[0]);
    }

    #[test]
    fn clipping_scales_to_the_bound() {
        let cfg = OptimConfig { lr: 0.1, grad_clip: 1.0, ..OptimConfig::default() };
        let mut opt = AdamW::new(2);
        let mut p = [0.0f32, 0.0];
        let norm = opt.step(&cfg, &mut p, &[3.0, 4.0], &[false, false]);
        assert!((norm - 5.0).abs() < 1e-9);
        // After clipping g = (0.6, 0.8); m = 0.1·g, so m̂ = g.
        assert!((opt.m[0] - 0.06).abs() < 1e-6 && (opt.m[1] - 0.08).abs() < 1e-6);
    }

    #[test]
    fn weight_decay_only_where_asked() {
        let cfg = OptimConfig { lr: 0.1, weight_decay: 0.5, grad_clip: 0.0, ..OptimConfig::default() };
        let mut opt = AdamW::new(2);
        let mut p = [1.0f32, 1.0];
        opt.step(&cfg, &mut p, &[0.0, 0.0], &[true, false]);
        assert!((p[0] - 0.95).abs() < 1e-6 && p[1] == 1.0, "{p:?}");
    }
}
