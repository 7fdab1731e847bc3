//! A global allocator that counts, for the allocations-per-message tests.
//! Each test binary installs it with
//! `#[global_allocator] static GLOBAL: CountingAlloc = CountingAlloc;`
//! (one test per binary where the process-wide count is read).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts every `alloc` and `realloc` (process-wide and per thread) and
/// hands the work to the system allocator.
pub struct CountingAlloc;

static PROCESS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static THREAD: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    PROCESS.fetch_add(1, Ordering::Relaxed);
    // During thread teardown the slot may be gone: the process count stays.
    let _ = THREAD.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is forwarded unchanged to `System`; counting touches
// only an atomic and a const-initialised thread local (no allocation).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations so far in the whole process.
pub fn process_allocations() -> u64 {
    PROCESS.load(Ordering::Relaxed)
}

/// Allocations so far on the calling thread (the runtime's thread in the
/// single-threaded courier tests).
pub fn thread_allocations() -> u64 {
    THREAD.with(|c| c.get())
}
