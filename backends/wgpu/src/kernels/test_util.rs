//! Test helpers of the kernel families: tensors with the data at an offset
//! inside sentinels, read-back, tolerance checks that print the largest
//! differences, and deterministic random numbers.

use wapo_core::Result;

use super::{View, alloc, download_u32, upload_u32, write};
use crate::context::WgpuDevice;
use crate::tensor::WgpuTensor;

/// The value around every test view: any write outside the view shows.
pub(crate) const SENTINEL: f32 = 7.25;

/// Deterministic uniform numbers in [lo, hi).
pub(crate) struct Lcg(pub u64);

impl Lcg {
    pub(crate) fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    pub(crate) fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| lo + (hi - lo) * self.next() as f32).collect()
    }
    pub(crate) fn below(&mut self, n: u32) -> u32 {
        (self.next() * n as f64) as u32 % n.max(1)
    }
}

/// A tensor of `off + data.len() + 5` elements: `data` at `off`, sentinels
/// around it.
pub(crate) fn put(dev: &WgpuDevice, data: &[f32], off: u64) -> Result<WgpuTensor> {
    let t = alloc(dev, off as usize + data.len() + 5)?;
    write(&t, 0, &vec![SENTINEL; t.numel() as usize])?;
    write(&t, off, data)?;
    Ok(t)
}

/// u32 data at `off` of a fresh tensor (zeros before it).
pub(crate) fn put_u32(dev: &WgpuDevice, data: &[u32], off: usize) -> Result<WgpuTensor> {
    let mut all = vec![0u32; off];
    all.extend_from_slice(data);
    all.push(0);
    upload_u32(dev, &all)
}

/// The view's elements, after asserting that the tensor's other elements
/// still hold the sentinel.
pub(crate) fn get(v: View<'_>) -> Vec<f32> {
    let all = v.t.to_vec().expect("read back");
    let (a, b) = (v.off as usize, (v.off + v.len) as usize);
    for (i, x) in all.iter().enumerate() {
        if i < a || i >= b {
            assert_eq!(*x, SENTINEL, "element {i} outside the view {a}..{b} was written");
        }
    }
    all[a..b].to_vec()
}

/// The elements of a u32 tensor.
pub(crate) fn get_u32(t: &WgpuTensor) -> Vec<u32> {
    download_u32(t, t.numel() as usize).expect("read back")
}

/// Asserts |got − want| ≤ tol·(1 + |want|) everywhere (NaN only where want
/// is NaN); prints the largest absolute difference and the largest
/// relative one where |want| ≥ 1e-3.
pub(crate) fn check(name: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    let (mut abs, mut rel) = (0.0f64, 0.0f64);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if w.is_nan() {
            assert!(g.is_nan(), "{name}[{i}]: got {g}, want NaN");
            continue;
        }
        let d = (g as f64 - w).abs();
        abs = abs.max(d);
        if w.abs() >= 1e-3 {
            rel = rel.max(d / w.abs());
        }
        assert!(d <= tol * (1.0 + w.abs()), "{name}[{i}]: got {g}, want {w} (diff {d:e})");
    }
    println!("{name}: max abs diff {abs:.3e}, max rel diff {rel:.3e}");
}

/// Deterministic uniform f32 in [0, 1) (xorshift).
pub(crate) fn rng(seed: u64) -> impl FnMut() -> f32 {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// A device tensor holding exactly `data`.
pub(crate) fn upload(dev: &WgpuDevice, data: &[f32]) -> WgpuTensor {
    let t = alloc(dev, data.len()).unwrap();
    write(&t, 0, data).unwrap();
    t
}
