//! A blocking `embedded-io` driver for the CMSDK APB UART of the mps2-an386
//! board (UART0 at 0x4000_4000), which QEMU connects to a TCP socket with
//! `-serial tcp:HOST:PORT`: the UART's byte stream is the broker
//! connection, as on a device that reaches its broker through a modem.
//!
//! Registers (ARM CMSDK APB UART, Cortex-M System Design Kit TRM):
//! DATA (0x00), STATE (0x04: bit 0 TX full, bit 1 RX full), CTRL (0x08:
//! bit 0 TX enable, bit 1 RX enable), BAUDDIV (0x10). No PAC crate covers
//! this FPGA board, and five registers do not need one.

use core::ptr::{read_volatile, write_volatile};

use courier_core::drivers::Clock as _;
use courier_core::time::Duration;
use embedded_io::{ErrorKind, ErrorType, Read, Write};

use crate::clock::SysTickClock;

const UART0: usize = 0x4000_4000;
const DATA: usize = UART0;
const STATE: usize = UART0 + 0x04;
const CTRL: usize = UART0 + 0x08;
const BAUDDIV: usize = UART0 + 0x10;
const STATE_TX_FULL: u32 = 1 << 0;
const STATE_RX_FULL: u32 = 1 << 1;
const CTRL_TX_RX_ENABLE: u32 = 0b11;
/// 25 MHz system clock / 115200 baud (QEMU does not pace the UART, but a
/// divisor below 16 is rejected by the hardware).
const BAUD_DIVISOR: u32 = 25_000_000 / 115_200;
/// Polls of the RX flag, after a byte, before a read returns what it has:
/// QEMU hands the UART the next byte of the TCP stream only after the
/// previous one was taken, so a burst arrives byte by byte.
const BURST_POLLS: u32 = 2_000;

/// UART0 as an `embedded_io` transport. A read that sees no byte within
/// the read timeout fails with [`ErrorKind::TimedOut`], which the courier
/// drivers read as "no data yet" (they then run their timers).
pub struct Uart {
    clock: SysTickClock,
    read_timeout: Duration,
}

fn reg_read(addr: usize) -> u32 {
    // SAFETY: `addr` is one of UART0's registers, always mapped on this board.
    unsafe { read_volatile(addr as *const u32) }
}

fn reg_write(addr: usize, value: u32) {
    // SAFETY: as in `reg_read`; the UART has no other owner (see `Uart::take`).
    unsafe { write_volatile(addr as *mut u32, value) }
}

impl Uart {
    /// Enables UART0's transmitter and receiver. Call once: the firmware
    /// owns the only `Uart`.
    pub fn take(clock: SysTickClock, read_timeout: Duration) -> Self {
        reg_write(BAUDDIV, BAUD_DIVISOR);
        reg_write(CTRL, CTRL_TX_RX_ENABLE);
        Uart {
            clock,
            read_timeout,
        }
    }

    /// Hangs up, as far as a serial line can: discards whatever the peer
    /// still sends until the line has been quiet for `quiet` (at most for
    /// `limit`), so the next handshake does not start in the middle of the
    /// failed connection's bytes. Returns how many bytes were dropped.
    pub fn drain_until_idle(&mut self, quiet: Duration, limit: Duration) -> usize {
        let start = self.clock.now();
        let mut last = start;
        let mut dropped = 0;
        loop {
            let now = self.clock.now();
            if now.saturating_since(last) >= quiet || now.saturating_since(start) >= limit {
                return dropped;
            }
            if Self::try_read_byte().is_some() {
                dropped += 1;
                last = self.clock.now();
            }
        }
    }

    fn try_read_byte() -> Option<u8> {
        if reg_read(STATE) & STATE_RX_FULL != 0 {
            Some(reg_read(DATA) as u8)
        } else {
            None
        }
    }
}

impl ErrorType for Uart {
    type Error = ErrorKind;
}

impl Read for Uart {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        if buf.is_empty() {
            return Ok(0);
        }
        let deadline = self.clock.now() + self.read_timeout;
        let first = loop {
            if let Some(b) = Self::try_read_byte() {
                break b;
            }
            if self.clock.now() >= deadline {
                return Err(ErrorKind::TimedOut);
            }
        };
        buf[0] = first;
        let mut n = 1;
        let mut polls = 0;
        while n < buf.len() && polls < BURST_POLLS {
            match Self::try_read_byte() {
                Some(b) => {
                    buf[n] = b;
                    n += 1;
                    polls = 0;
                }
                None => polls += 1,
            }
        }
        Ok(n)
    }
}

impl Write for Uart {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        for &b in buf {
            while reg_read(STATE) & STATE_TX_FULL != 0 {}
            reg_write(DATA, u32::from(b));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), ErrorKind> {
        while reg_read(STATE) & STATE_TX_FULL != 0 {}
        Ok(())
    }
}
