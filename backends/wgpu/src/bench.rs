//! Forward+backward timing of the logits-level WAPO objective, generic over
//! the backend, and the wgpu run that also measures a plain copy kernel as
//! the bandwidth yardstick.

use std::time::Instant;

use wapo_core::advantage::Groups;
use wapo_core::logits::{LogitsBatch, logits_objective};
use wapo_core::{Objective, ObjectiveConfig, Result, Shape, Tensor, Unary};

use crate::{WgpuDevice, WgpuTensor};

/// The shapes of the benchmark, N·T rows × V: two common vocabularies, a
/// Qwen-sized one, and many short rows.
pub const DEFAULT_SHAPES: [(usize, usize); 4] = [(4096, 32768), (16384, 32768), (8192, 151_936), (65536, 64)];

/// One measured shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BenchRow {
    /// N·T rows of logits.
    pub rows: usize,
    /// V.
    pub vocab: usize,
    /// Median milliseconds of one forward+backward.
    pub ms: f64,
    /// Logits read once plus gradient written once, per second, in GB/s.
    pub gbps: f64,
    /// The yardstick: a plain copy of as many bytes, in GB/s (read + write).
    pub copy_gbps: Option<f64>,
}

/// A synthetic batch on a device: `rows` = N·T rows of V logits, generated on
/// the device (the largest shape is 5 GB of f32).
pub struct BenchBatch<T> {
    pub groups: Groups<T>,
    pub rewards: T,      // (N)
    pub mask: T,         // (N, T)
    pub logits: T,       // (N, T, V)
    pub tokens: T,       // (N, T)
    pub old_logprobs: T, // (N, T)
    pub config: ObjectiveConfig,
}

impl<T: Tensor> BenchBatch<T> {
    /// Sequences of up to 16 tokens in groups of 8 (when the rows allow),
    /// binary rewards with winners in most groups, a few padding tokens, and
    /// logits spread over [−4, 4).
    pub fn synthetic(dev: &T::Device, rows: usize, vocab: usize) -> Result<Self> {
        let t = [16, 8, 4, 2, 1].into_iter().find(|t| rows.is_multiple_of(*t)).unwrap_or(1);
        let n = rows / t;
        let g = if n.is_multiple_of(8) { 8 } else { 1 };
        let ids: Vec<i64> = (0..n).map(|i| (i / g) as i64).collect();
        let groups = Groups::from_ids(dev, &ids)?;
        let rewards: Vec<f64> = (0..n).map(|i| f64::from(i % 3 == 0)).collect();
        let mask: Vec<f64> = (0..rows).map(|k| f64::from(k % t < t - t / 8)).collect();
        let tokens: Vec<f64> = (0..rows).map(|k| ((k * 7919) % vocab) as f64).collect();
        let old: Vec<f64> = (0..rows).map(|k| -(vocab as f64).ln() + 0.1 * ((k % 7) as f64 - 3.0)).collect();
        let shape = Shape::d3(n, t, vocab);
        let col = T::iota_last(dev, shape)?.mul_scalar(0.618_034)?; // (N, T, V)
        let row = T::iota_last(dev, Shape::d1(rows))?.reshape(Shape::d2(n, t))?.mul_scalar(0.271_8)?; // (N, T)
        let x = col.add(&row)?;
        let logits = x.sub(&x.unary(Unary::Floor)?)?.mul_scalar(8.0)?.add_scalar(-4.0)?;
        Ok(BenchBatch {
            groups,
            rewards: T::upload(dev, &rewards, Shape::d1(n))?,
            mask: T::upload(dev, &mask, Shape::d2(n, t))?,
            logits,
            tokens: T::upload(dev, &tokens, Shape::d2(n, t))?,
            old_logprobs: T::upload(dev, &old, Shape::d2(n, t))?,
            config: ObjectiveConfig::new(Objective::Wapo, t),
        })
    }

    /// One forward+backward through the backend's `logits_objective`.
    pub fn run(&self) -> Result<wapo_core::objective::Output<T>> {
        let batch = LogitsBatch {
            groups: &self.groups,
            rewards: &self.rewards,
            mask: &self.mask,
            logits: &self.logits,
            tokens: &self.tokens,
            old_logprobs: &self.old_logprobs,
        };
        logits_objective(&self.config, &batch)
    }
}

/// Median milliseconds of `f` over `iters` runs after one warm-up run.
pub fn median_ms(iters: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let mut times: Vec<f64> = Vec::with_capacity(iters.max(1));
    for _ in 0..iters.max(1) {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Times forward+backward of the WAPO objective at `rows` × `vocab` on any
/// backend; `sync` waits for the device (a no-op on the CPU).
pub fn time_objective<T: Tensor>(
    dev: &T::Device,
    rows: usize,
    vocab: usize,
    iters: usize,
    sync: impl Fn() -> Result<()>,
) -> Result<BenchRow> {
    let batch = BenchBatch::<T>::synthetic(dev, rows, vocab)?;
    sync()?;
    let ms = median_ms(iters, || {
        let out = batch.run()?;
        sync()?;
        drop(out);
        Ok(())
    })?;
    let bytes = 2.0 * 4.0 * rows as f64 * vocab as f64;
    Ok(BenchRow { rows, vocab, ms, gbps: bytes / (ms * 1e-3) / 1e9, copy_gbps: None })
}

/// The wgpu benchmark: each shape's objective time and, in the same run, a
/// copy kernel over as many bytes.
pub fn bench_objective(dev: &WgpuDevice, shapes: &[(usize, usize)], iters: usize) -> Result<Vec<BenchRow>> {
    let mut out = Vec::with_capacity(shapes.len());
    for &(rows, vocab) in shapes {
        let mut row = time_objective::<WgpuTensor>(dev, rows, vocab, iters, || dev.synchronize())?;
        row.copy_gbps = Some(copy_gbps(dev, rows * vocab, iters)?);
        out.push(row);
    }
    Ok(out)
}

/// GB/s (bytes read + written) of a plain vec4 copy of `numel` f32.
pub fn copy_gbps(dev: &WgpuDevice, numel: usize, iters: usize) -> Result<f64> {
    let src = WgpuTensor::full(dev, Shape::d1(numel), 1.0)?;
    let dst = WgpuTensor::empty(dev, Shape::d1(numel))?;
    dev.synchronize()?;
    let ms = median_ms(iters, || {
        crate::kernels::copy::copy(&src, &dst)?;
        dev.synchronize()
    })?;
    Ok(2.0 * 4.0 * (numel / 4 * 4) as f64 / (ms * 1e-3) / 1e9)
}
