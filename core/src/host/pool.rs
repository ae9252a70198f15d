//! Host buffers of [`super::HostTensor`], with a process-wide pool behind
//! `std`.
//!
//! A fresh allocation of a large buffer is paid for in page faults on its
//! first write, which costs more than the arithmetic of a primitive over it:
//! the fused objective's per-sequence engine runs some 140 primitives per
//! call over (N, T) temporaries, and a training step writes the same
//! (N, T, V) gradient size every step. So a dropped buffer of at least
//! [`POOL_MIN`] elements is kept and handed to the next request it fits.
//! Without `std` (no lock to guard a shared pool) buffers are plain vectors.

use alloc::vec::Vec;

use crate::scalar::Scalar;

/// The values of a tensor; with `std`, a large one returns to the pool when
/// dropped.
#[derive(Debug)]
pub(crate) struct Buffer<E: Scalar>(Vec<E>);

impl<E: Scalar> Buffer<E> {
    pub(crate) fn new(data: Vec<E>) -> Self {
        Buffer(data)
    }
    pub(crate) fn as_slice(&self) -> &[E] {
        &self.0
    }
}

/// Buffers below this many elements go back to the allocator, whose free
/// lists serve them without faulting pages.
pub const POOL_MIN: usize = 4096;

/// A vector of `len` elements whose contents are unspecified (a reused
/// buffer keeps old values): the caller overwrites every element.
pub fn take_buffer<E: Scalar>(len: usize) -> Vec<E> {
    #[cfg(feature = "std")]
    if len >= POOL_MIN
        && let Some(mut v) = shared::take::<E>(len)
    {
        v.resize(len, E::zero());
        return v;
    }
    alloc::vec![E::zero(); len]
}

/// Frees every pooled buffer (after a large benchmark, say).
pub fn release_pooled_buffers() {
    #[cfg(feature = "std")]
    shared::clear();
}

#[cfg(feature = "std")]
impl<E: Scalar> Drop for Buffer<E> {
    fn drop(&mut self) {
        if self.0.capacity() >= POOL_MIN {
            shared::give(core::mem::take(&mut self.0));
        }
    }
}

#[cfg(feature = "std")]
mod shared {
    use core::any::Any;
    use std::sync::Mutex;
    use std::vec::Vec;

    use crate::scalar::Scalar;

    /// Idle buffers kept at most per element type: about the live temporaries
    /// of one evaluation of the per-sequence engine.
    const POOL_LEN: usize = 64;
    /// Bytes of idle buffers kept at most per element type; the oldest go
    /// first. A training step's (N, T, V) gradient fits for V = 151,936 at
    /// N·T = 4096 (2.5 GB); larger ones are freed.
    const POOL_BYTES: usize = 4 << 30;

    static F64: Mutex<Vec<Vec<f64>>> = Mutex::new(Vec::new());
    static F32: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

    /// The pool of `E`'s buffers (`None` for an element type without one).
    fn with<E: Scalar, R>(f: impl FnOnce(&mut Vec<Vec<E>>) -> R) -> Option<R> {
        let pools: [&dyn Any; 2] = [&F64, &F32];
        let pool = pools.into_iter().find_map(|p| p.downcast_ref::<Mutex<Vec<Vec<E>>>>())?;
        // A panic while the lock was held leaves only a list of idle buffers.
        let mut guard = pool.lock().unwrap_or_else(|e| e.into_inner());
        Some(f(&mut guard))
    }

    /// The smallest idle buffer of capacity `len..=2·len`, so that a large
    /// buffer stays for a large request.
    pub(super) fn take<E: Scalar>(len: usize) -> Option<Vec<E>> {
        with::<E, _>(|p| {
            let fits = |b: &Vec<E>| b.capacity() >= len && b.capacity() / 2 <= len;
            let best = p.iter().enumerate().filter(|(_, b)| fits(b)).min_by_key(|(_, b)| b.capacity()).map(|(k, _)| k);
            best.map(|k| p.remove(k))
        })
        .flatten()
    }

    pub(super) fn give<E: Scalar>(v: Vec<E>) {
        let bytes = |b: &Vec<E>| b.capacity() * core::mem::size_of::<E>();
        if bytes(&v) > POOL_BYTES {
            return;
        }
        with::<E, _>(|p| {
            let mut held: usize = p.iter().map(bytes).sum();
            while !p.is_empty() && (p.len() >= POOL_LEN || held + bytes(&v) > POOL_BYTES) {
                held -= bytes(&p.remove(0));
            }
            p.push(v);
        });
    }

    pub(super) fn clear() {
        with::<f64, _>(|p| p.clear());
        with::<f32, _>(|p| p.clear());
    }
}
