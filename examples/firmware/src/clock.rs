//! A millisecond clock from the Cortex-M SysTick timer (1 kHz interrupt
//! from the 25 MHz core clock of mps2-an386), as the courier drivers'
//! [`Clock`].

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;
use courier_core::drivers::Clock;
use courier_core::time::Instant;

/// Core clock of the board (QEMU models mps2-an386 at 25 MHz).
const CORE_HZ: u32 = 25_000_000;

static MILLIS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    MILLIS.fetch_add(1, Ordering::Relaxed);
}

/// Milliseconds since [`SysTickClock::start`].
#[derive(Clone, Copy)]
pub struct SysTickClock(());

impl SysTickClock {
    /// Starts SysTick at 1 kHz; the clock wraps after 49 days.
    pub fn start(mut syst: SYST) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(CORE_HZ / 1_000 - 1);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        SysTickClock(())
    }

    /// Busy-waits for `ms` milliseconds.
    pub fn sleep_ms(&self, ms: u32) {
        let start = MILLIS.load(Ordering::Relaxed);
        while MILLIS.load(Ordering::Relaxed).wrapping_sub(start) < ms {
            cortex_m::asm::nop();
        }
    }
}

impl Clock for SysTickClock {
    fn now(&self) -> Instant {
        Instant::from_millis(u64::from(MILLIS.load(Ordering::Relaxed)))
    }
}
