//! Host ↔ device copies.

use wapo_core::{Error, Result};

use crate::context::WgpuContext;

/// Writes `data` at the start of `buf`. Pending dispatches are submitted
/// first: queue writes run before the command buffers of their submit.
pub(crate) fn write_f32(ctx: &WgpuContext, buf: &wgpu::Buffer, data: &[f32]) -> Result<()> {
    write_f32_at(ctx, buf, 0, data)
}

/// Writes `data` at element `off` of `buf`.
pub(crate) fn write_f32_at(ctx: &WgpuContext, buf: &wgpu::Buffer, off: u64, data: &[f32]) -> Result<()> {
    ctx.flush()?;
    if !data.is_empty() {
        ctx.queue.write_buffer(buf, off * 4, bytemuck::cast_slice(data));
    }
    ctx.check()
}

/// Reads the first `n` f32 of `buf`, waiting for every pending dispatch.
pub(crate) fn read_f32(ctx: &WgpuContext, buf: &wgpu::Buffer, n: u64) -> Result<Vec<f32>> {
    Ok(read_f32_many(ctx, &[(buf, n)])?.pop().unwrap_or_default())
}

/// Reads the first `n` f32 of each `(buf, n)` in one read-back: every part is
/// copied into one staging buffer and mapped once, so that several small
/// tensors cost one wait for the GPU instead of one each.
pub(crate) fn read_f32_many(ctx: &WgpuContext, parts: &[(&wgpu::Buffer, u64)]) -> Result<Vec<Vec<f32>>> {
    let total: u64 = parts.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return Ok(parts.iter().map(|_| Vec::new()).collect());
    }
    ctx.count_readback();
    let staging = ctx.readback_buffer(total * 4)?;
    ctx.record(|enc| {
        let mut at = 0;
        for (buf, n) in parts {
            if *n > 0 {
                enc.copy_buffer_to_buffer(buf, 0, &staging, at * 4, n * 4);
            }
            at += n;
        }
    })?;
    ctx.flush()?;
    let (tx, rx) = std::sync::mpsc::channel();
    staging.map_async(wgpu::MapMode::Read, .., move |r| {
        let _ = tx.send(r);
    });
    ctx.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::Backend(format!("waiting for the GPU: {e}")))?;
    ctx.check()?;
    rx.recv()
        .map_err(|_| Error::Backend("buffer mapping was dropped".into()))?
        .map_err(|e| Error::Backend(format!("mapping a readback buffer: {e}")))?;
    let mut out = Vec::with_capacity(parts.len());
    {
        let view = staging.get_mapped_range(..).map_err(|e| Error::Backend(format!("reading a mapped buffer: {e}")))?;
        let all: &[f32] = bytemuck::cast_slice(&view);
        let mut at = 0;
        for (_, n) in parts {
            out.push(all[at..at + *n as usize].to_vec());
            at += *n as usize;
        }
    }
    staging.unmap();
    ctx.return_readback_buffer(staging);
    Ok(out)
}

/// Writes `packed[start..start + len]` at the start of `buf` for each
/// `(buf, start, len)` with one queue write: `packed` goes to one device
/// buffer and the GPU copies the parts out, so that many small uploads cost
/// one staging allocation instead of one each.
pub(crate) fn write_f32_packed(
    ctx: &WgpuContext,
    packed: &[f32],
    parts: &[(&wgpu::Buffer, usize, usize)],
) -> Result<()> {
    if packed.is_empty() {
        return ctx.check();
    }
    let tmp = ctx.buffer(packed.len() as u64 * 4)?;
    // Pending commands go first: the write lands before the next submit.
    ctx.flush()?;
    ctx.queue.write_buffer(&tmp, 0, bytemuck::cast_slice(packed));
    let recorded = ctx.record(|enc| {
        for (buf, start, len) in parts {
            if *len > 0 {
                enc.copy_buffer_to_buffer(&tmp, *start as u64 * 4, buf, 0, *len as u64 * 4);
            }
        }
    });
    // Later users of the pooled buffer are recorded after these copies.
    ctx.recycle(tmp);
    recorded?;
    ctx.check()
}
