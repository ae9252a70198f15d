//! The allocator of every fuzz test binary: `System`, plus a record of the
//! largest request above [`LIMIT`] made by the current thread, so that a
//! parser that sizes a buffer from an unchecked count in the file is a
//! failing input rather than an out-of-memory kill of the whole run.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// A single allocation above this is a finding: no parser here needs one
/// for the small inputs the fuzzers build.
pub const LIMIT: usize = 256 << 20;
/// Requests above this are refused (null, which Rust turns into an abort
/// naming the size) instead of being forwarded: committing them could take
/// the machine's memory before the harness gets to report the input.
const REFUSE: usize = 1 << 30;

thread_local! {
    // `const` with a `Copy` type: no lazy initialization and no destructor,
    // so touching it inside the allocator neither allocates nor recurses.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    if size > LIMIT {
        // During thread teardown the slot may be gone; the record is then lost, not unsound.
        let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
    }
}

/// The largest request above [`LIMIT`] this thread made since the last
/// call (0 if none), and resets the record.
pub fn take_largest() -> usize {
    LARGEST.with(|l| l.replace(0))
}

pub struct Capped;

// SAFETY: every method forwards its arguments unchanged to `System`, so each
// upholds exactly System's contract (a pointer valid for `layout`, or null;
// `dealloc` and `realloc` receive only pointers System returned, because
// this allocator never returns any other non-null pointer). The additions
// are a read and write of a thread-local `Cell<usize>` (no allocation, no
// unwinding, no reentrancy) and returning null for oversized requests,
// which `GlobalAlloc` permits for any request.
unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        if layout.size() > REFUSE {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's guarantees on `layout` are passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        if layout.size() > REFUSE {
            return std::ptr::null_mut();
        }
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from System with this `layout` (see above).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        if new_size > REFUSE {
            // Null leaves the old block allocated and untouched, as the contract requires.
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr` came from System with `layout`; the caller guarantees `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Capped = Capped;
