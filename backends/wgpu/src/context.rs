//! The device context: adapter selection, the limits requested from the
//! adapter, a cache of compiled pipelines, a pool of reusable storage buffers,
//! and a command encoder that batches dispatches until something is read back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use wapo_core::{Error, Result};

/// Storage bindings must start on this many bytes (the WebGPU maximum of
/// `min_storage_buffer_offset_alignment`, so every adapter accepts it).
pub(crate) const BIND_ALIGN: u64 = 256;
/// Threads per workgroup of every kernel.
pub(crate) const WORKGROUP: u32 = 256;
/// Dispatches recorded before the pending encoder is submitted anyway, so
/// that a long chain of operations does not grow one command buffer forever.
/// It is also the number of parameter slots in the uniform ring.
const MAX_PENDING: usize = 256;
/// Bytes of one parameter slot (the WebGPU maximum uniform offset alignment).
const PARAM_SLOT: u64 = 256;
/// Bytes of parameters a kernel reads (`Params` in common.wgsl).
pub(crate) const PARAM_BYTES: u64 = 64;
/// Bytes of idle buffers the pool keeps at most. A step's largest tensors
/// (the logits gradient: GiBs at large vocabularies) must come back from the
/// pool: allocating and zero-initialising them afresh costs tens of
/// milliseconds, more than the kernels themselves.
const POOL_BYTES: u64 = 8 << 30;

/// A shared handle to one GPU device: the `Tensor::Device` of [`crate::WgpuTensor`].
pub type WgpuDevice = Arc<WgpuContext>;

/// One adapter, its device and queue, and the caches around them.
pub struct WgpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    /// Largest storage binding, in bytes (a multiple of 4).
    pub(crate) max_binding: u64,
    /// Largest buffer, in bytes.
    pub(crate) max_buffer: u64,
    pipelines: Mutex<HashMap<PipelineKey, Arc<wgpu::ComputePipeline>>>,
    pool: Mutex<Pool>,
    pending: Mutex<Pending>,
    /// One parameter slot per pending dispatch: queue writes land before the
    /// pending commands run, and each slot is written once per submit.
    params: wgpu::Buffer,
    /// The first uncaptured error or device loss, reported by every later call.
    failure: Arc<Mutex<Option<String>>>,
    /// Dispatches recorded and read-backs waited for since the context
    /// opened: what a call costs in fixed overhead, whatever the GPU.
    dispatches: AtomicU64,
    readbacks: AtomicU64,
    /// The largest mappable read-back buffer so far, kept between read-backs:
    /// a fresh one per read-back is a driver allocation each time.
    readback: Mutex<Option<wgpu::Buffer>>,
}

/// A compiled kernel: its source name, entry point and override constants.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub(crate) struct PipelineKey {
    pub name: &'static str,
    pub entry: &'static str,
    pub constants: Vec<(&'static str, u32)>,
}

#[derive(Default)]
struct Pool {
    free: HashMap<u64, Vec<wgpu::Buffer>>,
    bytes: u64,
}

#[derive(Default)]
struct Pending {
    encoder: Option<wgpu::CommandEncoder>,
    count: usize,
}

/// Minimum limits the kernels need; an adapter below them is refused.
const NEED_STORAGE_BUFFERS: u32 = 7;
const NEED_WORKGROUP_BYTES: u32 = 6 * 4 * WORKGROUP;

fn backend_err(msg: impl Into<String>) -> Error {
    Error::Backend(msg.into())
}

impl WgpuContext {
    /// Opens the best adapter: the one whose name contains `WAPO_ADAPTER` when
    /// that is set, else a high-performance adapter, else any.
    pub fn new() -> Result<WgpuDevice> {
        Self::with_adapter(std::env::var("WAPO_ADAPTER").ok().as_deref())
    }

    /// Opens the adapter whose name contains `name` (case-insensitive), or the
    /// default choice when `name` is `None`.
    pub fn with_adapter(name: Option<&str>) -> Result<WgpuDevice> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = match name.filter(|n| !n.is_empty()) {
            Some(want) => {
                let all = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
                let names: Vec<String> = all.iter().map(|a| a.get_info().name).collect();
                let want_l = want.to_lowercase();
                all.into_iter().find(|a| a.get_info().name.to_lowercase().contains(&want_l)).ok_or_else(|| {
                    backend_err(format!("no GPU adapter whose name contains `{want}` (WAPO_ADAPTER); found: {names:?}"))
                })?
            }
            None => pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                apply_limit_buckets: false,
            }))
            .map_err(|e| backend_err(format!("no GPU adapter available: {e}")))?,
        };
        Self::from_adapter(adapter)
    }

    /// Like [`WgpuContext::new`], with storage bindings capped at
    /// `max_binding` bytes (a multiple of 256, at least 1 KiB): tests use it to
    /// run the chunked paths on small tensors.
    pub fn with_binding_cap(max_binding: u64) -> Result<WgpuDevice> {
        Self::with_limits_cap(max_binding, u64::MAX)
    }

    /// Like [`WgpuContext::with_binding_cap`], with buffers also capped at
    /// `max_buffer` bytes (at least 1 KiB): tests use it to hold small
    /// tensors in several buffers, as tensors beyond the adapter's
    /// `max_buffer_size` are. The binding cap is lowered to the buffer cap.
    pub fn with_limits_cap(max_binding: u64, max_buffer: u64) -> Result<WgpuDevice> {
        let ctx = Self::new()?;
        let mut ctx = Arc::try_unwrap(ctx).map_err(|_| backend_err("a fresh context is not shared"))?;
        ctx.max_buffer = ctx.max_buffer.min(max_buffer.max(4 * BIND_ALIGN));
        let binding = max_binding.min(ctx.max_buffer).max(4 * BIND_ALIGN) / BIND_ALIGN * BIND_ALIGN;
        ctx.max_binding = ctx.max_binding.min(binding);
        Ok(Arc::new(ctx))
    }

    fn from_adapter(adapter: wgpu::Adapter) -> Result<WgpuDevice> {
        let info = adapter.get_info();
        let limits = adapter.limits();
        check_limits(&info, &limits)?;
        // Ask for everything the adapter offers: the defaults cap storage
        // bindings at 128 MiB even on GPUs that allow 2 GiB or more.
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("wapo"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| backend_err(format!("requesting a device from `{}`: {e}", info.name)))?;
        let failure = Arc::new(Mutex::new(None::<String>));
        let f = failure.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = f.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| format!("GPU error: {e}"));
        }));
        let f = failure.clone();
        device.set_device_lost_callback(move |reason, msg| {
            let mut slot = f.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| format!("GPU device lost ({reason:?}): {msg}"));
        });
        let params = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("kernel parameters"),
            size: PARAM_SLOT * MAX_PENDING as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let max_binding = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size) / 4 * 4;
        Ok(Arc::new(WgpuContext {
            device,
            queue,
            info,
            max_binding,
            max_buffer: limits.max_buffer_size,
            pipelines: Mutex::default(),
            pool: Mutex::default(),
            pending: Mutex::default(),
            params,
            failure,
            dispatches: AtomicU64::new(0),
            readbacks: AtomicU64::new(0),
            readback: Mutex::default(),
        }))
    }

    /// The adapter's name and backend, e.g. `llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan)`.
    pub fn adapter_name(&self) -> String {
        format!("{} ({:?})", self.info.name, self.info.backend)
    }

    /// The largest storage binding in bytes; tensors beyond it are processed in windows.
    pub fn max_binding_bytes(&self) -> u64 {
        self.max_binding
    }

    /// The largest buffer in bytes; tensors beyond it are held in several buffers.
    pub fn max_buffer_bytes(&self) -> u64 {
        self.max_buffer
    }

    /// `(dispatches, read-backs)` recorded on this context so far. Each
    /// dispatch costs some µs of driver time and each read-back a full wait
    /// for the GPU, whatever their size: the counts measure a call's fixed
    /// overhead.
    pub fn counters(&self) -> (u64, u64) {
        (self.dispatches.load(Ordering::Relaxed), self.readbacks.load(Ordering::Relaxed))
    }

    /// Counts one read-back (a wait for the GPU and a mapped copy).
    pub(crate) fn count_readback(&self) {
        self.readbacks.fetch_add(1, Ordering::Relaxed);
    }

    /// A mappable buffer of at least `bytes` for a read-back: the kept one
    /// when it is free and large enough, else a new one.
    pub(crate) fn readback_buffer(&self, bytes: u64) -> Result<wgpu::Buffer> {
        if let Some(b) = lock(&self.readback)?.take_if(|b| b.size() >= bytes) {
            return Ok(b);
        }
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bucket(bytes),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }))
    }

    /// Keeps an unmapped read-back buffer for the next read-back, when it is
    /// larger than the one kept (up to 64 MiB: large downloads are rare).
    pub(crate) fn return_readback_buffer(&self, buf: wgpu::Buffer) {
        if buf.size() > 64 << 20 {
            return;
        }
        if let Ok(mut kept) = self.readback.lock()
            && kept.as_ref().is_none_or(|k| k.size() < buf.size())
        {
            *kept = Some(buf);
        }
    }

    /// Fails with the first GPU error or device loss seen so far.
    pub(crate) fn check(&self) -> Result<()> {
        match &*self.failure.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(msg) => Err(backend_err(msg.clone())),
            None => Ok(()),
        }
    }

    pub(crate) fn pipeline(&self, key: &PipelineKey, source: &[&str]) -> Result<Arc<wgpu::ComputePipeline>> {
        if let Some(p) = lock(&self.pipelines)?.get(key) {
            return Ok(p.clone());
        }
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(key.name),
            source: wgpu::ShaderSource::Wgsl(source.concat().into()),
        });
        let constants: Vec<(&str, f64)> = key.constants.iter().map(|(k, v)| (*k, *v as f64)).collect();
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(key.name),
            layout: None,
            module: &module,
            entry_point: Some(key.entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        self.check()?;
        let p = Arc::new(pipeline);
        lock(&self.pipelines)?.insert(key.clone(), p.clone());
        Ok(p)
    }

    /// A storage buffer of at least `bytes` bytes, from the pool when one is free.
    pub(crate) fn buffer(&self, bytes: u64) -> Result<wgpu::Buffer> {
        self.check()?;
        // Near the limit the bucket may exceed it where the exact size fits.
        let size = match bucket(bytes) {
            b if b > self.max_buffer => bytes.next_multiple_of(16),
            b => b,
        };
        if size > self.max_buffer {
            return Err(backend_err(format!(
                "a tensor of {bytes} bytes exceeds the adapter's max_buffer_size of {} bytes",
                self.max_buffer
            )));
        }
        if let Some(b) = lock(&self.pool)?.take(size) {
            return Ok(b);
        }
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }))
    }

    /// Returns a buffer to the pool. Reuse is safe without waiting: every later
    /// use is recorded after the last one in queue order.
    pub(crate) fn recycle(&self, buf: wgpu::Buffer) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.put(buf);
        }
    }

    /// Runs `record` on the pending encoder (created on demand).
    pub(crate) fn record(&self, record: impl FnOnce(&mut wgpu::CommandEncoder)) -> Result<()> {
        self.check()?;
        let mut p = lock(&self.pending)?;
        let enc = p
            .encoder
            .get_or_insert_with(|| self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None }));
        record(enc);
        p.count += 1;
        if p.count >= MAX_PENDING {
            Self::submit_locked(&self.queue, &mut p);
        }
        Ok(())
    }

    /// Records one dispatch: `params` go to a free slot of the uniform ring,
    /// and `record` gets the encoder and that slot's binding.
    pub(crate) fn record_dispatch(
        &self,
        params: &[u32; 16],
        record: impl FnOnce(&mut wgpu::CommandEncoder, wgpu::BufferBinding<'_>),
    ) -> Result<()> {
        self.check()?;
        let mut p = lock(&self.pending)?;
        self.dispatches.fetch_add(1, Ordering::Relaxed);
        let offset = p.count as u64 * PARAM_SLOT;
        self.queue.write_buffer(&self.params, offset, bytemuck::cast_slice(params));
        let enc = p
            .encoder
            .get_or_insert_with(|| self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None }));
        record(enc, wgpu::BufferBinding { buffer: &self.params, offset, size: wgpu::BufferSize::new(PARAM_BYTES) });
        p.count += 1;
        if p.count >= MAX_PENDING {
            Self::submit_locked(&self.queue, &mut p);
        }
        Ok(())
    }

    /// Submits what is pending, so that queue writes land after it.
    pub(crate) fn flush(&self) -> Result<()> {
        let mut p = lock(&self.pending)?;
        Self::submit_locked(&self.queue, &mut p);
        drop(p);
        self.check()
    }

    fn submit_locked(queue: &wgpu::Queue, p: &mut Pending) {
        if let Some(enc) = p.encoder.take() {
            queue.submit([enc.finish()]);
        }
        p.count = 0;
    }

    /// Submits what is pending and blocks until the GPU has finished it.
    pub fn synchronize(&self) -> Result<()> {
        self.flush()?;
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| backend_err(format!("waiting for the GPU: {e}")))?;
        self.check()
    }
}

impl Pool {
    fn take(&mut self, size: u64) -> Option<wgpu::Buffer> {
        let b = self.free.get_mut(&size)?.pop()?;
        self.bytes -= size;
        Some(b)
    }
    fn put(&mut self, buf: wgpu::Buffer) {
        let size = buf.size();
        if self.bytes + size > POOL_BYTES {
            return;
        }
        self.bytes += size;
        self.free.entry(size).or_default().push(buf);
    }
}

/// Buffer sizes are rounded to a few buckets per power of two so that the pool
/// finds a fit without wasting more than 1/4.
fn bucket(bytes: u64) -> u64 {
    let b = bytes.max(16).next_multiple_of(16);
    if b <= 4096 {
        return b.next_power_of_two();
    }
    let step = b.next_power_of_two() / 8;
    b.next_multiple_of(step)
}

fn check_limits(info: &wgpu::AdapterInfo, l: &wgpu::Limits) -> Result<()> {
    let too_small = |what: &str, have: u64, need: u64| {
        backend_err(format!("adapter `{}`: limit {what} is {have}, the kernels need at least {need}", info.name))
    };
    if l.max_storage_buffers_per_shader_stage < NEED_STORAGE_BUFFERS {
        return Err(too_small(
            "max_storage_buffers_per_shader_stage",
            l.max_storage_buffers_per_shader_stage as u64,
            NEED_STORAGE_BUFFERS as u64,
        ));
    }
    if l.max_compute_invocations_per_workgroup < WORKGROUP || l.max_compute_workgroup_size_x < WORKGROUP {
        return Err(too_small(
            "max_compute_invocations_per_workgroup",
            l.max_compute_invocations_per_workgroup.min(l.max_compute_workgroup_size_x) as u64,
            WORKGROUP as u64,
        ));
    }
    if l.max_compute_workgroup_storage_size < NEED_WORKGROUP_BYTES {
        return Err(too_small(
            "max_compute_workgroup_storage_size",
            l.max_compute_workgroup_storage_size as u64,
            NEED_WORKGROUP_BYTES as u64,
        ));
    }
    if l.max_storage_buffer_binding_size < 4 * BIND_ALIGN
        || l.min_storage_buffer_offset_alignment as u64 > BIND_ALIGN
        || l.max_compute_workgroups_per_dimension < 1024
    {
        return Err(backend_err(format!("adapter `{}`: storage binding / dispatch limits too small", info.name)));
    }
    Ok(())
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    m.lock().map_err(|_| backend_err("a thread panicked while holding the GPU context"))
}
