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
    let mut out = vec![0f32; n as usize];
    if n == 0 {
        return Ok(out);
    }
    let bytes = n * 4;
    let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size: bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    ctx.record(|enc| enc.copy_buffer_to_buffer(buf, 0, &staging, 0, bytes))?;
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
    {
        let view = staging.get_mapped_range(..).map_err(|e| Error::Backend(format!("reading a mapped buffer: {e}")))?;
        out.copy_from_slice(bytemuck::cast_slice(&view));
    }
    staging.unmap();
    Ok(out)
}
