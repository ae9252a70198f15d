//! The element types a backend may compute in: f64 (the reference) and f32.

use num_traits::Float;

/// A floating-point element: `f32` on the backends, `f64` in the reference.
pub trait Scalar: Float + core::fmt::Debug + Default + Send + Sync + 'static {
    const NAME: &'static str;
    fn of_f64(v: f64) -> Self;
    fn as_f64(self) -> f64;
}

impl Scalar for f64 {
    const NAME: &'static str = "f64";
    fn of_f64(v: f64) -> Self {
        v
    }
    fn as_f64(self) -> f64 {
        self
    }
}

impl Scalar for f32 {
    const NAME: &'static str = "f32";
    fn of_f64(v: f64) -> Self {
        v as f32
    }
    fn as_f64(self) -> f64 {
        self as f64
    }
}
