//! TLS 1.3 for the firmware (feature `tls`): the host example's
//! [`device_tls`] module (embedded-tls over any `embedded-io` socket, the
//! server verified against one pinned CA; no `std`, no heap) compiled for
//! the board, plus what the board has to supply: the pinned CA, a seeded
//! RNG and the time.
//!
//! # Provisioning block (flash at [`PROVISION_ADDR`])
//! A device gets its trust anchor and per-device secrets written to a
//! flash sector at manufacture. Here the test writes that sector when it
//! starts QEMU (`-device loader,file=...,addr=0x300000,force-raw=on`), so
//! the CA can be generated at test time (rcgen) without rebuilding the
//! firmware:
//!
//! ```text
//! offset 0   "CVPR"                  magic
//! offset 4   32 bytes                RNG seed
//! offset 36  u32 little-endian       length of the CA certificate (DER)
//! offset 40  the CA certificate      DER, ECDSA P-256
//! ```
//!
//! # Randomness: test-only
//! QEMU's mps2-an386 has no RNG peripheral, so the TLS randomness (client
//! random, the ECDHE key) is ChaCha20 expanded from the provisioned seed,
//! which the test draws from the host's OS RNG for each run. This is NOT
//! acceptable on a product: a seed stored in flash repeats on every boot
//! (same ephemeral keys, no forward secrecy, replayable handshakes) and
//! anyone who reads the flash predicts every key. A real device builds
//! [`PinnedCa`] from its TRNG (e.g. the STM32 RNG peripheral implements
//! `RngCore + CryptoRng`), or at least reseeds ChaCha20 from it at boot.
//!
//! # Time
//! [`SemihostingClock`] asks the debug host for the time (semihosting
//! SYS_TIME), so certificate validity dates ARE checked in QEMU. A product
//! uses its RTC set by SNTP or the cellular network, or `NoClock`, with
//! which embedded-tls skips the date check.

pub use device_tls::*;
use embedded_tls::TlsClock;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

#[allow(clippy::all, dead_code)]
#[path = "../../src/bin/edge_tls/device_tls.rs"]
mod device_tls;

/// Where the provisioning block starts (3 MiB into the board's 4 MiB code
/// RAM; memory.x gives the firmware only the 3 MiB below it).
pub const PROVISION_ADDR: usize = 0x0030_0000;
/// Largest provisioning block: magic, seed, length, CA certificate.
pub const PROVISION_CAPACITY: usize = 4096;
const MAGIC: &[u8; 4] = b"CVPR";
const HEADER: usize = 4 + 32 + 4;

/// What the provisioning block gives the device.
pub struct Provisioned {
    /// The one CA the server's certificate must chain to (DER).
    pub ca_der: &'static [u8],
    /// RNG seed (test-only, see the module docs).
    pub seed: [u8; 32],
}

/// Reads the provisioning block; `None` when it is missing or malformed
/// (the device must not connect without its trust anchor).
pub fn provisioned() -> Option<Provisioned> {
    // SAFETY: PROVISION_ADDR..+PROVISION_CAPACITY is mapped code RAM on
    // this board, outside every linker section (memory.x), written only by
    // the loader before reset and never by the firmware.
    let block: &'static [u8] =
        unsafe { core::slice::from_raw_parts(PROVISION_ADDR as *const u8, PROVISION_CAPACITY) };
    if block.get(..4)? != MAGIC {
        return None;
    }
    let seed: [u8; 32] = block.get(4..36)?.try_into().ok()?;
    let len = u32::from_le_bytes(block.get(36..HEADER)?.try_into().ok()?) as usize;
    let ca_der = block.get(HEADER..HEADER.checked_add(len)?)?;
    // A DER certificate starts with a SEQUENCE.
    if ca_der.first() != Some(&0x30) {
        return None;
    }
    Some(Provisioned { ca_der, seed })
}

/// The TLS RNG: ChaCha20 from the provisioned seed (test-only).
pub fn seeded_rng(seed: [u8; 32]) -> ChaCha20Rng {
    ChaCha20Rng::from_seed(seed)
}

/// Wall-clock time from the debug host (semihosting SYS_TIME), for the
/// certificate validity check.
pub struct SemihostingClock;

/// SYS_TIME: seconds since 1970-01-01 on the host.
const SYS_TIME: usize = 0x11;

impl TlsClock for SemihostingClock {
    fn now() -> Option<u64> {
        // SAFETY: SYS_TIME takes no parameter block (R1 = 0).
        let secs = unsafe { cortex_m_semihosting::syscall1(SYS_TIME, 0) };
        // -1 (all ones) is the failure value.
        (secs != usize::MAX).then_some(secs as u64)
    }
}

/// A failed upgrade for both log back ends: `Display` as text,
/// `defmt::Format` with the `defmt` feature.
pub struct Upgrade<'a, E>(pub &'a UpgradeError<E>);

#[cfg(not(feature = "defmt"))]
impl<E: core::fmt::Debug> core::fmt::Display for Upgrade<'_, E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self.0, f)
    }
}

#[cfg(feature = "defmt")]
impl<E: defmt::Format> defmt::Format for Upgrade<'_, E> {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self.0 {
            UpgradeError::Socket(e) => defmt::write!(f, "reading the server's INFO: {}", e),
            UpgradeError::NoInfo => defmt::write!(f, "no INFO line from the server"),
            UpgradeError::TlsNotOffered => defmt::write!(
                f,
                "TlsNotOffered: the server's INFO offers no TLS; refusing to continue in plaintext"
            ),
            UpgradeError::Tls(e) => defmt::write!(f, "{}", e),
        }
    }
}
