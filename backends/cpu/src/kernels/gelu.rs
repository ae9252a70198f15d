//! GELU with the tanh approximation (the GPT's MLP activation), forward
//! and backward, with a fast tanh accurate to f32 roundoff.

use rayon::prelude::*;

const GELU_SCALE: f32 = 0.797_884_6; // sqrt(2/π)

/// GELU, tanh approximation (GPT-2): out = ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
pub fn gelu_forward(out: &mut [f32], inp: &[f32]) {
    out.par_chunks_mut(4096).zip(inp.par_chunks(4096)).for_each(|(o, x)| {
        for (o, &x) in o.iter_mut().zip(x) {
            let u = GELU_SCALE * (x + 0.044715 * x * x * x);
            *o = 0.5 * x * (1.0 + tanh(u));
        }
    });
}

/// dinp = GELU'(inp) · dout (overwrites).
pub fn gelu_backward(dinp: &mut [f32], inp: &[f32], dout: &[f32]) {
    dinp.par_chunks_mut(4096).zip(inp.par_chunks(4096).zip(dout.par_chunks(4096))).for_each(|(di, (x, d))| {
        for i in 0..di.len() {
            let x = x[i];
            let u = GELU_SCALE * (x + 0.044715 * x * x * x);
            let t = tanh(u);
            let sech2 = 1.0 - t * t;
            let du = GELU_SCALE * (1.0 + 3.0 * 0.044715 * x * x);
            di[i] = (0.5 * (1.0 + t) + 0.5 * x * sech2 * du) * d[i];
        }
    });
}

/// tanh from a branch-free exp, so that the GELU loops vectorize (libm's
/// `tanhf` is a scalar call and dominated the MLP). Absolute error < 2e-7:
/// beyond |u| = 9, tanh is ±1 in f32.
#[inline(always)]
fn tanh(u: f32) -> f32 {
    let e = exp_small(2.0 * u.clamp(-9.0, 9.0));
    1.0 - 2.0 / (e + 1.0)
}

/// e^x for |x| ≤ 18: x = k·ln2 + r with |r| ≤ ln2/2, e^r by its degree-6
/// Taylor polynomial (relative error < 2e-7), 2^k from the exponent bits.
#[inline(always)]
fn exp_small(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Round to nearest by the 1.5·2^23 trick: plain SSE2 arithmetic.
    const MAGIC: f32 = 12_582_912.0;
    let k = (x * LOG2E + MAGIC) - MAGIC;
    let r = x - k * LN2_HI - k * LN2_LO;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((k as i32 + 127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    #[test]
    fn fast_tanh_matches_libm() {
        let mut worst = 0.0f32;
        for i in -40_000..=40_000 {
            let u = i as f32 * 5e-4;
            worst = worst.max((super::tanh(u) - u.tanh()).abs());
        }
        for u in [-1e3f32, -30.0, -9.5, 9.5, 30.0, 1e3] {
            assert!((super::tanh(u) - u.signum()).abs() <= 6e-8, "{u}");
        }
        assert!(worst < 5e-7, "{worst}");
    }
}
