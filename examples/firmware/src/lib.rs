//! Board support and application logic of the courier firmware for the
//! mps2-an386 board (Cortex-M4F) as QEMU models it. The binaries in
//! `src/bin/` are the devices whose flash and RAM the README reports.
//!
//! No global allocator exists in this firmware: courier-core allocates
//! nothing, and neither does anything here.
#![no_std]

pub mod clock;
pub mod commands;
pub mod semihost;
pub mod stack;
pub mod telemetry;
#[cfg(feature = "tls")]
pub mod tls;
pub mod uart;
