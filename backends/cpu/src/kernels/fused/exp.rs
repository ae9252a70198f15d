//! A branch-free f32 `exp` for x ≤ 0 that the compiler vectorizes (the
//! libm call in `f32::exp` does not), accurate to about 2 ulp.
//!
//! Cephes' `expf`: x = k·ln2 + r with |r| ≤ ln2/2, exp(r) by a degree-7
//! polynomial, 2^k put into the exponent bits. Results below
//! e^−86 ≈ 4e−38 (and −inf inputs) are 0: they are negligible next to the
//! row maximum, whose term is 1.

/// Inputs below this give 0; above it, 2^k stays a normal float.
const LOWEST: f32 = -86.0;
const LOG2E: f32 = core::f32::consts::LOG2_E;
/// ln 2 split so that k·LN2_HI is exact for |k| < 2^9.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Adding 1.5·2^23 rounds to the nearest integer, held in the low mantissa bits.
const ROUND: f32 = 12_582_912.0;

#[inline(always)]
pub(crate) fn exp_neg(x: f32) -> f32 {
    let xc = if x < LOWEST { LOWEST } else { x };
    let t = xc * LOG2E + ROUND;
    let k = t - ROUND;
    let ki = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let r = (xc - k * LN2_HI) - k * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * (r * r) + r + 1.0;
    let scaled = f32::from_bits((y.to_bits() as i32).wrapping_add(ki << 23) as u32);
    if x < LOWEST { 0.0 } else { scaled }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against f64 `exp` over [−90, 0]: relative error below 3 ulp, and 0
    /// for −inf and below the cut.
    #[test]
    fn matches_f64_exp() {
        let mut worst = 0.0f64;
        for i in 0..=900_000 {
            let x = -(i as f32) * 1e-4;
            let want = (x as f64).exp();
            let got = exp_neg(x) as f64;
            if x < LOWEST {
                assert_eq!(got, 0.0, "x = {x}");
            } else {
                worst = worst.max(((got - want) / want).abs());
            }
        }
        assert!(worst < 3.0 * f32::EPSILON as f64, "worst relative error {worst:e}");
        assert_eq!(exp_neg(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_neg(0.0), 1.0);
    }
}
