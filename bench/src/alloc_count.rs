//! A counting global allocator: every heap allocation made by the bench
//! process (any thread) bumps a counter, so a worker can report heap
//! allocations per message over its measured section.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// Forwards to the system allocator and counts allocations (realloc counts
/// as one, because growing a buffer is a trip to the allocator too).
pub struct CountingAllocator;

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; the counters are plain relaxed atomics.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocation counters at one moment.
#[derive(Clone, Copy, Debug)]
pub struct AllocSnapshot {
    /// Calls to alloc, alloc_zeroed and realloc so far.
    pub allocations: u64,
}

impl AllocSnapshot {
    /// Reads the counters now.
    pub fn now() -> Self {
        AllocSnapshot {
            allocations: ALLOCATIONS.load(Ordering::Relaxed),
        }
    }

    /// Allocations made since `earlier`.
    pub fn allocations_since(&self, earlier: &AllocSnapshot) -> u64 {
        self.allocations.saturating_sub(earlier.allocations)
    }
}
