//! The per-sequence engine of a fused evaluation as three WGSL kernels
//! (engine.wgsl) between the stats pass and the gradient pass: advantages,
//! the sequence filter, the keep mask, the weights and D, the loss and
//! ∂loss/∂ℓ, for every objective and option of [`ObjectiveConfig`], in f32.
//! Nothing waits between the passes; the input checks of the host engine
//! are flag bits, read back once at the end with the flags of the rows.

use wapo_core::objective::{AdvantageMode, Ratio, SeqFilter, Weighting};
use wapo_core::{Error, ObjectiveConfig, Result, Shape};

use super::OP;
use super::stats::Stats;
use crate::launch::{Kernel, Window, dispatch, kernel_params, whole};
use crate::tensor::WgpuTensor;
use wapo_core::logits::LogitsBatch;

const SOURCE: &str =
    concat!(include_str!("../common.wgsl"), include_str!("../lanes.wgsl"), include_str!("engine.wgsl"));

/// Floats per row of the engine's row table (`ROW` of engine.wgsl).
const ROW: u64 = 20;
/// Floats of the small outputs before the (N) weights (`SMALL_W`).
const SMALL_W: u64 = 16;
/// (N, T) planes written by `seq_tokens`, after the (N) row flags.
const PLANES: u64 = 6;

kernel_params! {
    /// P of engine.wgsl: the batch's shape and the objective's row of the
    /// table (`Spec`) with the configuration's options, as numbers.
    struct EngineParams {
        n: u32,
        t: u32,
        groups: u32,
        /// Vocabulary size: token ids must be integers in 0..v.
        v: u32,
        /// 0 raw, 1 centered, 2 normalized.
        advantage: u32,
        /// Bit 0: winners only (A > 0); bit 1: also drop A ≥ 0.
        seq_filter: u32,
        /// 0 token ratio, 1 sequence ratio, 2 no ratio (L = −ℓ·A), 3 no
        /// ratio and no advantage (L = −ℓ).
        ratio: u32,
        /// 0 seq, 1 group, 2 group with WAPO's fixed 1/(G·L_max), 3 global,
        /// 4 global with Dr. GRPO's N·max n.
        weighting: u32,
        /// 1: weights from the final keep mask.
        by_kept: u32,
        /// Bit c set: tokens of bin code c are kept.
        bins: u32,
        lmax: u32,
        lo: f32,
        hi: f32,
        inv_t: f32,
    }
}

impl EngineParams {
    fn new(cfg: &ObjectiveConfig, n: usize, t: usize, groups: usize, v: usize) -> Result<Self> {
        let spec = cfg.spec();
        let (lo, hi) = cfg.clip_bounds();
        let u = |x: usize, what: &str| {
            u32::try_from(x).map_err(|_| Error::Backend(format!("{OP}: {what} {x} exceeds 32 bits")))
        };
        Ok(EngineParams {
            n: u(n, "rows")?,
            t: u(t, "tokens per row")?,
            groups: u(groups, "groups")?,
            v: u(v, "vocabulary")?,
            advantage: match spec.advantage {
                AdvantageMode::Raw => 0,
                AdvantageMode::Centered => 1,
                AdvantageMode::Normalized => 2,
            },
            seq_filter: u32::from(spec.filter == SeqFilter::Winners) | (u32::from(cfg.mask_positive_advantages) << 1),
            ratio: match spec.ratio {
                Ratio::Token => 0,
                Ratio::Sequence => 1,
                Ratio::None if spec.advantage_weighted => 2,
                Ratio::None => 3,
            },
            weighting: match spec.weights {
                Weighting::Seq => 0,
                Weighting::Group => 1,
                Weighting::GroupFixed => 2,
                Weighting::Global => 3,
                Weighting::GlobalFixed => 4,
            },
            by_kept: u32::from(cfg.normalize_by_kept_tokens),
            bins: if cfg.bins_active() { u32::from(cfg.kept_bins().0) } else { 0b1111 },
            lmax: u(cfg.max_seq_len, "max_seq_len")?,
            lo: lo as f32,
            hi: hi as f32,
            inv_t: (1.0 / cfg.temperature) as f32,
        })
    }
}

/// The engine's device buffers after its three passes.
pub(crate) struct Engine {
    /// [flags, loss_sum, loss, D, counts (9), pad, w (N), A (N)].
    small: WgpuTensor,
    /// [row flags (N), ratio, keep, clipped, bins, ∂loss/∂ℓ, ∂loss/∂ℓ/τ].
    planes: WgpuTensor,
    n: u64,
    t: u64,
}

/// Rows up to which the engine runs: each row's workgroup finds its group
/// by scanning every row's id (four passes over N), so the work grows as
/// N²; at 8192 rows that is ~2.7e8 reads of ids and rewards, cached.
const MAX_ROWS: u64 = 8192;

/// Whether a batch of `n` rows of `t` tokens fits the engine's bindings.
pub(crate) fn fits(b: &LogitsBatch<'_, WgpuTensor>, n: u64, t: u64) -> bool {
    let max = b.logits.ctx().max_binding / 4;
    n <= MAX_ROWS
        && (PLANES * n * t + n) <= max
        && n * ROW <= max
        && (SMALL_W + 2 * n) <= max
        && 4 * b.groups.count as u64 <= max
}

/// Records the three passes for `b` whose row statistics are `st`.
pub(crate) fn run(cfg: &ObjectiveConfig, b: &LogitsBatch<'_, WgpuTensor>, st: &Stats, v: usize) -> Result<Engine> {
    let (n, t) = (b.mask.shape.rows(), b.mask.shape.last());
    let params = EngineParams::new(cfg, n, t, b.groups.count, v)?;
    let dev = &b.logits.store.dev;
    let ctx = b.logits.ctx();
    let (n, t) = (n as u64, t as u64);
    let rows = WgpuTensor::empty(dev, Shape::d1((n * ROW) as usize))?;
    let small = WgpuTensor::empty(dev, Shape::d1((SMALL_W + 2 * n) as usize))?;
    let per_group = WgpuTensor::empty(dev, Shape::d1(4 * b.groups.count.max(1)))?;
    let planes = WgpuTensor::empty(dev, Shape::d1((PLANES * n * t + n) as usize))?;
    fn w(slot: u32, x: &WgpuTensor) -> Result<Window<'_>> {
        Ok(whole(slot, x.single(OP)?))
    }
    let kernel =
        |entry: &'static str| Kernel { name: "fused_engine", source: SOURCE, entry, constants: vec![("TPR", 256)] };
    let seq_rows = [
        w(0, &b.groups.ids)?,
        w(1, b.rewards)?,
        w(2, b.mask)?,
        w(3, b.old_logprobs)?,
        w(4, &st.logp)?,
        w(5, &st.sum_p_sq)?,
        w(8, &rows)?,
    ];
    dispatch(ctx, &kernel("seq_rows"), &seq_rows, &params, n)?;
    let finish = [w(0, &b.groups.ids)?, w(8, &rows)?, w(9, &small)?, w(10, &per_group)?];
    dispatch(ctx, &kernel("seq_finish"), &finish, &params, 1)?;
    let toks = [
        w(2, b.mask)?,
        w(3, b.old_logprobs)?,
        w(4, &st.logp)?,
        w(5, &st.sum_p_sq)?,
        w(6, b.tokens)?,
        w(8, &rows)?,
        w(11, &planes)?,
    ];
    dispatch(ctx, &kernel("seq_tokens"), &toks, &params, n)?;
    Ok(Engine { small, planes, n, t })
}

/// The engine's results as tensors of their own (buffer copies, no wait).
pub(crate) struct Results {
    pub advantages: WgpuTensor,
    pub weights: WgpuTensor,
    pub normalizer: WgpuTensor,
    pub loss_sum: WgpuTensor,
    pub loss: WgpuTensor,
    pub counts: WgpuTensor,
    pub ratio: WgpuTensor,
    pub keep: WgpuTensor,
    pub clipped: WgpuTensor,
    pub bins: WgpuTensor,
    pub grad_logprobs: WgpuTensor,
    /// (∂loss/∂ℓ)/τ, the gradient pass's input.
    pub g: WgpuTensor,
}

impl Engine {
    pub(crate) fn results(&self, rows: Shape) -> Result<Results> {
        let (n, t) = (self.n, self.t);
        let dev = &self.small.store.dev;
        let (s, p) = (self.small.buf(), self.planes.buf());
        let mut copies: Vec<(&wgpu::Buffer, u64, WgpuTensor)> = Vec::with_capacity(12);
        fn part<'a>(
            copies: &mut Vec<(&'a wgpu::Buffer, u64, WgpuTensor)>,
            dev: &crate::context::WgpuDevice,
            src: &'a wgpu::Buffer,
            at: u64,
            shape: Shape,
        ) -> Result<WgpuTensor> {
            let x = WgpuTensor::empty(dev, shape)?;
            copies.push((src, at, x.clone()));
            Ok(x)
        }
        let mut part = |src, at, shape| part(&mut copies, dev, src, at, shape);
        let nt = n * t;
        let r = Results {
            loss_sum: part(s, 1, Shape::d1(1))?,
            loss: part(s, 2, Shape::d1(1))?,
            normalizer: part(s, 3, Shape::d1(1))?,
            counts: part(s, 4, Shape::d1(9))?,
            weights: part(s, SMALL_W, Shape::d1(n as usize))?,
            advantages: part(s, SMALL_W + n, Shape::d1(n as usize))?,
            ratio: part(p, n, rows)?,
            keep: part(p, n + nt, rows)?,
            clipped: part(p, n + 2 * nt, rows)?,
            bins: part(p, n + 3 * nt, rows)?,
            grad_logprobs: part(p, n + 4 * nt, rows)?,
            g: part(p, n + 5 * nt, rows)?,
        };
        self.small.ctx().record(|enc| {
            for (src, at, dst) in &copies {
                enc.copy_buffer_to_buffer(src, at * 4, dst.buf(), 0, dst.numel() * 4);
            }
        })?;
        Ok(r)
    }

    /// Reads the flags back (the call's one wait): whether every input check
    /// passed.
    pub(crate) fn inputs_valid(&self) -> Result<bool> {
        let ctx = self.small.ctx();
        let got = crate::transfer::read_f32_many(ctx, &[(self.small.buf(), 1), (self.planes.buf(), self.n)])?;
        Ok(got.iter().flatten().all(|f| *f == 0.0))
    }
}
