//! Stack high-water mark: the RAM a firmware really uses is its static
//! data (`.data` + `.bss`, from the ELF) plus the deepest its stack went,
//! which no ELF tool can tell (the client and its buffers live on `main`'s
//! stack). [`paint`] fills the stack region below the current stack pointer
//! with a pattern at start; [`high_water`] finds how far down it was
//! overwritten.

use core::ptr::{addr_of, read_volatile, write_volatile};
use core::sync::atomic::{AtomicUsize, Ordering};

/// Pattern written over the unused stack.
const PAINT: u32 = 0xCCCC_CCCC;
/// How much stack below `main`'s frame is painted and checked (the board
/// has 4 MiB of RAM; painting all of it would only cost boot time).
const WINDOW: usize = 64 * 1024;
/// Left untouched below the stack pointer while painting (the painting
/// function's own frame and an interrupt's).
const MARGIN: usize = 256;

extern "C" {
    /// Top of the stack (cortex-m-rt's link.x).
    static _stack_start: u32;
    /// End of static RAM (cortex-m-rt's link.x).
    static __sheap: u32;
}

/// Lowest painted address (0: never painted).
static PAINTED_FROM: AtomicUsize = AtomicUsize::new(0);

/// Paints the stack window. Call first thing in `main`.
pub fn paint() {
    let floor = addr_of!(__sheap) as usize;
    let sp = cortex_m::register::msp::read() as usize - MARGIN;
    let low = sp.saturating_sub(WINDOW).max(floor) & !3;
    PAINTED_FROM.store(low, Ordering::Relaxed);
    let mut at = low;
    while at < sp {
        // SAFETY: [low, sp - MARGIN) is unused stack RAM below every live frame.
        unsafe { write_volatile(at as *mut u32, PAINT) };
        at += 4;
    }
}

/// Bytes of stack used at most since [`paint`], and whether that is only
/// a lower bound (every painted word was overwritten: the stack went at
/// least that deep).
pub fn high_water_checked() -> (usize, bool) {
    let low = PAINTED_FROM.load(Ordering::Relaxed);
    let used = high_water();
    (
        used,
        low != 0 && used == addr_of!(_stack_start) as usize - low,
    )
}

/// Bytes of stack used at most since [`paint`] (the window's size when
/// the whole window was used).
pub fn high_water() -> usize {
    let top = addr_of!(_stack_start) as usize;
    let low = PAINTED_FROM.load(Ordering::Relaxed);
    if low == 0 {
        return 0;
    }
    let mut at = low;
    // SAFETY: reads of RAM inside the stack region.
    while at < top && unsafe { read_volatile(at as *const u32) } == PAINT {
        at += 4;
    }
    top - at
}
