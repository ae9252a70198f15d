//! Host buffers of [`super::CpuTensor`], with a small pool for large ones.
//!
//! A fresh multi-hundred-MiB allocation is paid for in page faults on its
//! first write (about 1 s for 512 MiB on a 2-core VM), which would dominate
//! the fused objective. A training loop or a benchmark allocates the same
//! large sizes every step, so a dropped large buffer is kept and handed to
//! the next request of exactly its length.

use std::sync::Mutex;

/// Buffers below this many elements go straight back to the allocator.
const POOL_MIN_LEN: usize = 1 << 20;
/// At most this many buffers are kept; the oldest is freed first.
const POOL_MAX_BUFFERS: usize = 4;

static POOL: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// A tensor's values; a large one returns to the pool when dropped.
#[derive(Debug, Default)]
pub(crate) struct Buffer(Vec<f32>);

impl Buffer {
    pub(crate) fn new(data: Vec<f32>) -> Self {
        Buffer(data)
    }
    pub(crate) fn as_slice(&self) -> &[f32] {
        &self.0
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if self.0.len() >= POOL_MIN_LEN {
            give(std::mem::take(&mut self.0));
        }
    }
}

/// A buffer of `len` elements whose contents are unspecified (a reused
/// buffer keeps its old values): the caller overwrites every element.
pub(crate) fn take(len: usize) -> Vec<f32> {
    if len >= POOL_MIN_LEN {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = pool.iter().position(|b| b.len() == len) {
            return pool.remove(i);
        }
    }
    vec![0.0; len]
}

fn give(buf: Vec<f32>) {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if pool.len() >= POOL_MAX_BUFFERS {
        pool.remove(0);
    }
    pool.push(buf);
}

/// Frees every pooled buffer (after a large benchmark, say).
pub fn release_pooled_buffers() {
    POOL.lock().unwrap_or_else(|e| e.into_inner()).clear();
}
