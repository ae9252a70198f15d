//! Argument checks and binding-sized batching shared by the row-wise GPT
//! kernels (rows, encoder, layernorm, gelu).

use std::sync::Arc;

use wapo_core::{Error, Result};

use super::super::View;
use crate::context::{BIND_ALIGN, WgpuContext};

/// Fails unless `v` holds at least `n` elements.
pub(crate) fn need(v: &View<'_>, n: u64, field: &'static str) -> Result<()> {
    if v.len < n {
        return Err(Error::Backend(format!("{field}: view of {} elements, {n} needed", v.len)));
    }
    Ok(())
}

/// Fails unless every view lives on one device and no written view shares a
/// tensor with a read one (wgpu rejects a buffer bound both read-only and
/// read_write in one dispatch; failing here keeps the context usable).
pub(crate) fn distinct(writes: &[(&View<'_>, &'static str)], reads: &[(&View<'_>, &'static str)]) -> Result<()> {
    let Some((first, _)) = writes.first() else { return Ok(()) };
    for (v, _) in writes.iter().chain(reads) {
        first.t.same_device(v.t)?;
    }
    for (w, wf) in writes {
        for (r, rf) in reads {
            if Arc::ptr_eq(&w.t.store, &r.t.store) {
                return Err(Error::Backend(format!(
                    "{wf} and {rf} are views of one tensor: an output may not share its tensor with an input"
                )));
            }
        }
    }
    Ok(())
}

/// Splits `rows` rows into batches `(first, count)` whose views of `width`
/// elements per row fit one storage binding (with the slack of the aligned
/// window start); counts are multiples of `multiple` except the last.
pub(crate) fn batches(ctx: &WgpuContext, rows: u64, width: u64, multiple: u64) -> Result<Vec<(u64, u64)>> {
    let slack = BIND_ALIGN / 4;
    let per = (ctx.max_binding / 4).saturating_sub(slack) / width.max(1) / multiple * multiple;
    if per == 0 {
        return Err(Error::Backend(format!(
            "rows of {width} elements exceed the adapter's storage binding limit of {} bytes",
            ctx.max_binding
        )));
    }
    let mut out = Vec::new();
    let mut r0 = 0;
    while r0 < rows {
        let n = per.min(rows - r0);
        out.push((r0, n));
        r0 += n;
    }
    Ok(out)
}

/// Workgroups of 256 threads covering `n` threads.
pub(crate) fn groups(n: u64) -> u64 {
    n.div_ceil(256)
}
