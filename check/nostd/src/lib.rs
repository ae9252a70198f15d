//! Built twice in CI: without features (no allocator at all) and with
//! `alloc`. If anything in wapo-core's dependency tree pulled in `std`, the
//! std panic handler would clash with the one below and the build would fail.
#![no_std]

use wapo_core::objective::{Objective, ObjectiveConfig, wapo};

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

/// The scalar WAPO loss and a config check, usable from C.
#[unsafe(no_mangle)]
pub extern "C" fn wapo_token_loss(logprob: f64, old_logprob: f64, advantage: f64, clip_eps: f64) -> f64 {
    wapo::token_loss(logprob, old_logprob, advantage, clip_eps).0
}

#[unsafe(no_mangle)]
pub extern "C" fn wapo_config_ok(max_seq_len: usize) -> bool {
    ObjectiveConfig::new(Objective::Wapo, max_seq_len).validate().is_ok()
}

#[cfg(feature = "alloc")]
mod with_alloc {
    use core::alloc::{GlobalAlloc, Layout};
    use core::sync::atomic::{AtomicUsize, Ordering};

    use wapo_core::Tensor;
    use wapo_core::host::HostTensor;
    use wapo_core::shape::Shape;

    const ARENA: usize = 1 << 16;

    /// A bump allocator over a static arena; it never frees.
    struct Bump {
        next: AtomicUsize,
    }

    static mut HEAP: [u8; ARENA] = [0; ARENA];

    // SAFETY: `alloc` hands out disjoint ranges of HEAP: the atomic
    // fetch_update reserves [start, start + size) exclusively before the
    // pointer is formed, start is aligned to `layout.align()` relative to the
    // arena base (itself aligned by rounding the address), and a request
    // that does not fit returns null, which GlobalAlloc permits. `dealloc`
    // doing nothing only leaks.
    unsafe impl GlobalAlloc for Bump {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let base = core::ptr::addr_of_mut!(HEAP) as *mut u8;
            let base_addr = base as usize;
            let mut out = core::ptr::null_mut();
            let _ = self.next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |next| {
                let start = (base_addr + next).next_multiple_of(layout.align()) - base_addr;
                let end = start.checked_add(layout.size())?;
                if end > ARENA {
                    return None;
                }
                // SAFETY: start < end ≤ ARENA, so the offset stays inside HEAP.
                out = unsafe { base.add(start) };
                Some(end)
            });
            out
        }
        unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
    }

    #[global_allocator]
    static ALLOC: Bump = Bump { next: AtomicUsize::new(0) };

    /// Sum of a host tensor, to make the alloc half of the crate reachable.
    #[unsafe(no_mangle)]
    pub extern "C" fn wapo_host_sum(x: f64, n: usize) -> f64 {
        HostTensor::<f64>::full(&(), Shape::d1(n.max(1)), x).and_then(|t| t.sum_all()).and_then(|t| t.item()).unwrap_or(f64::NAN)
    }
}
