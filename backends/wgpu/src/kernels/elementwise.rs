//! The chunked elementwise launcher the primitive ops share (each operand
//! full, per row, scalar or a constant), and the row-chunking helpers of the
//! row and segment kernels.

use wapo_core::shape::Broadcast;
use wapo_core::{Error, Result, Shape};

use crate::context::{BIND_ALIGN, WORKGROUP};
use crate::launch::{Kernel, Window, dispatch, idx32, kernel_params, window};
use crate::tensor::WgpuTensor;

/// How one operand of an elementwise op maps onto the output (HostTensor's rules).
#[derive(Clone, Copy)]
pub(crate) enum Mode {
    Full,
    Row(u64),
    Scalar,
    /// A constant passed as a kernel parameter (binary ops only); the
    /// operand's buffer is bound but not read.
    Constant(f32),
}

pub(crate) fn bcast(op: Shape, out: Shape, field: &'static str) -> Result<Mode> {
    Ok(match op.broadcast_to(out, field)? {
        Broadcast::Full => Mode::Full,
        Broadcast::Row => Mode::Row(out.last() as u64),
        Broadcast::Scalar => Mode::Scalar,
    })
}

/// Operands an elementwise kernel may have (`mode0`/`base0` .. `mode2`/`base2`).
const MAX_OPERANDS: usize = 3;

kernel_params! {
    /// P of every elementwise kernel (elementwise.wgsl and the op's file):
    /// the chunk, then each operand's mode and window, then the op's
    /// constant.
    struct ElementwiseParams {
        /// Elements in this chunk.
        n: u32,
        /// Index in the tensor of the chunk's first element.
        first: u32,
        /// Row length of the output, for per-row operands.
        row: u32,
        /// Element index of the output window's start.
        out: u32,
        /// Operand 0: 0 full, 1 per row, 2 scalar, 3 the constant `value`.
        mode0: u32,
        /// Element index of operand 0's window start.
        base0: u32,
        mode1: u32,
        base1: u32,
        mode2: u32,
        base2: u32,
        /// The constant of a `Mode::Constant` operand, or a fill's value.
        value: f32,
    }
}

/// Runs `kernel` over every element of `out` (bound at slot 7), operand k at
/// slot k, in chunks that each fit one storage binding.
pub(crate) fn elementwise(kernel: &Kernel, operands: &[(&WgpuTensor, Mode)], out: &WgpuTensor) -> Result<()> {
    elementwise_with(kernel, operands, out, 0.0)
}

/// [`elementwise`] with `value` as the kernel's `P.value` (a fill's
/// constant) unless an operand is a constant, which then sets it: the
/// parameters hold one constant, so at most one operand may be one.
pub(crate) fn elementwise_with(
    kernel: &Kernel,
    operands: &[(&WgpuTensor, Mode)],
    out: &WgpuTensor,
    value: f32,
) -> Result<()> {
    let ctx = out.ctx();
    let total = out.numel();
    let row = out.shape.last().max(1) as u64;
    idx32(total)?;
    if operands.len() > MAX_OPERANDS {
        return Err(Error::Backend(format!("{}: more than {MAX_OPERANDS} elementwise operands", kernel.name)));
    }
    let mut value = value;
    let mut constants = 0;
    for (_, mode) in operands {
        if let Mode::Constant(v) = *mode {
            value = v;
            constants += 1;
        }
    }
    if constants > 1 {
        return Err(Error::Backend(format!("{}: more than one constant operand", kernel.name)));
    }
    let chunk = (ctx.max_binding - BIND_ALIGN) / 4;
    // Only full operands may be held in several buffers; per-row and scalar
    // ones are read through one binding (a constant's is bound, not read).
    for (t, mode) in operands {
        if matches!(mode, Mode::Row(_) | Mode::Scalar) {
            t.single(kernel.name)?;
        }
    }
    let mut e0 = 0u64;
    while e0 < total {
        // A chunk lies in one segment of the output and of every full operand.
        let mut e1 = (e0 + chunk).min(total).min(out.segment_of(e0).2);
        for (t, mode) in operands {
            if matches!(mode, Mode::Full) {
                e1 = e1.min(t.segment_of(e0).2);
            }
        }
        let mut wins: Vec<Window<'_>> = Vec::with_capacity(operands.len() + 1);
        // Window starts are passed as tensor element indices (segment start
        // plus the window's start in its buffer), as the kernels index by
        // the element's index in the tensor.
        let (ow, oshift) = out.window_at(7, e0, e1)?;
        wins.push(ow);
        let mut slots = [(0u32, 0u32); MAX_OPERANDS];
        for (k, (t, mode)) in operands.iter().enumerate() {
            let (code, w, base) = match *mode {
                Mode::Full => {
                    let (w, shift) = t.window_at(k as u32, e0, e1)?;
                    (0, w, e0 - shift)
                }
                Mode::Row(c) => {
                    let w = window(k as u32, t.buf(), e0 / c, (e1 - 1) / c + 1);
                    let base = w.base;
                    (1, w, base)
                }
                Mode::Scalar => (2, window(k as u32, t.buf(), 0, 1), 0),
                Mode::Constant(_) => (3, window(k as u32, t.buf(), 0, 1), 0),
            };
            slots[k] = (code, base as u32);
            wins.push(w);
        }
        let p = ElementwiseParams {
            n: (e1 - e0) as u32,
            first: e0 as u32,
            row: row as u32,
            out: (e0 - oshift) as u32,
            mode0: slots[0].0,
            base0: slots[0].1,
            mode1: slots[1].0,
            base1: slots[1].1,
            mode2: slots[2].0,
            base2: slots[2].1,
            value,
        };
        dispatch(ctx, kernel, &wins, &p, (e1 - e0).div_ceil(WORKGROUP as u64))?;
        e0 = e1;
    }
    Ok(())
}

/// Source of an elementwise kernel: the shared preludes, then its own file.
macro_rules! elementwise_source {
    ($file:literal) => {
        concat!(include_str!("../common.wgsl"), include_str!("../elementwise.wgsl"), include_str!($file))
    };
}
pub(crate) use elementwise_source;

/// Threads cooperating on one row of length `c`: enough for about four
/// elements each, at most a workgroup.
pub(crate) fn threads_per_row(c: u64) -> u32 {
    (c.div_ceil(4).next_power_of_two()).clamp(1, WORKGROUP as u64) as u32
}

/// Splits `rows` rows of `c` elements into chunks whose elements fit one
/// storage binding.
pub(crate) fn row_chunks(ctx: &crate::context::WgpuContext, rows: u64, c: u64) -> Result<Vec<(u64, u64)>> {
    let per = (ctx.max_binding - BIND_ALIGN) / (4 * c.max(1));
    if per == 0 {
        return Err(Error::Backend(format!(
            "a row of {c} elements exceeds the adapter's storage binding limit of {} bytes",
            ctx.max_binding
        )));
    }
    idx32(rows * c)?;
    let mut out = Vec::new();
    let mut r0 = 0;
    while r0 < rows {
        let r1 = (r0 + per).min(rows);
        out.push((r0, r1));
        r0 = r1;
    }
    Ok(out)
}

/// [`row_chunks`] of `rows` rows, each chunk also split where it would cross
/// a buffer of one of `ts`: `(tensor, elements per row)`, each holding
/// `rows` rows. Fails (naming `op`) when a tensor's buffers do not hold
/// whole rows, as after a reshape that changed its rows.
pub(crate) fn segment_row_chunks(
    ctx: &crate::context::WgpuContext,
    ts: &[(&WgpuTensor, u64)],
    rows: u64,
    c: u64,
    op: &str,
) -> Result<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    for (r0, r1) in row_chunks(ctx, rows, c)? {
        let mut r = r0;
        while r < r1 {
            let mut end = r1;
            for (t, w) in ts {
                let w = (*w).max(1);
                let s1 = t.segment_of(r * w).2;
                if s1 < r1 * w {
                    if !s1.is_multiple_of(w) {
                        return Err(Error::Backend(format!("{op}: a tensor's buffers do not hold whole rows of {w}")));
                    }
                    end = end.min(s1 / w);
                }
            }
            out.push((r, end));
            r = end;
        }
    }
    Ok(out)
}
