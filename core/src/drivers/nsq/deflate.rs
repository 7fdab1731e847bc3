//! NSQ's DEFLATE stream on a device without an allocator (feature
//! `deflate`).
//!
//! nsqd → device: raw DEFLATE (RFC 1951) inflated by `miniz_oxide`'s core
//! decoder, which works on caller buffers. The protocol's 32 KiB window is
//! the floor: a back-reference may reach 32 KiB back, so the decoder's
//! output buffer must hold that much history. [`DeflateState`] is therefore
//! ~43 KiB per connection (32 KiB window + ~10.5 KiB of Huffman tables +
//! a small input buffer): place it in a `static`, not on a small stack.
//!
//! device → nsqd: stored (uncompressed) DEFLATE blocks, 5 bytes of framing
//! per write and no state at all. `miniz_oxide`'s compressor needs `alloc`
//! (its hash chains alone are 128 KiB); a device sends little, so it pays
//! to inflate what nsqd sends and not to compress what it sends back.

use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;

/// DEFLATE's window: the history a back-reference may reach.
pub const WINDOW: usize = 32 * 1024;
/// Compressed bytes read per transport read.
const RAW: usize = 512;

/// The inflate side of one connection (see the module docs for its size).
pub struct DeflateState {
    inflater: DecompressorOxide,
    window: [u8; WINDOW],
    /// Where the decoder writes next in `window`.
    pos: usize,
    /// Inflated bytes not yet handed out are `window[out_start..pos]`.
    out_start: usize,
    raw: [u8; RAW],
    raw_start: usize,
    raw_end: usize,
}

/// The compressed stream from nsqd is corrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct InflateError;

impl Default for DeflateState {
    fn default() -> Self {
        Self::new()
    }
}

impl DeflateState {
    /// A fresh decoder.
    pub fn new() -> Self {
        DeflateState {
            inflater: DecompressorOxide::new(),
            window: [0; WINDOW],
            pos: 0,
            out_start: 0,
            raw: [0; RAW],
            raw_start: 0,
            raw_end: 0,
        }
    }

    /// Starts a new stream (a new connection), in place.
    pub fn reset(&mut self) {
        self.inflater.init();
        self.pos = 0;
        self.out_start = 0;
        self.raw_start = 0;
        self.raw_end = 0;
    }

    /// Takes compressed bytes that were read before compression started
    /// (the rest of the read that carried the IDENTIFY response). False
    /// when they do not fit.
    pub(super) fn absorb(&mut self, bytes: &[u8]) -> bool {
        let Some(slot) = self.raw.get_mut(..bytes.len()) else {
            return false;
        };
        slot.copy_from_slice(bytes);
        self.raw_start = 0;
        self.raw_end = bytes.len();
        true
    }

    /// Fills `out` with inflated bytes; `read` fills a buffer with
    /// compressed bytes from the transport (0: nothing yet). Returns how
    /// many bytes `out` got (0: nothing yet).
    pub(super) fn read<E>(
        &mut self,
        out: &mut [u8],
        mut read: impl FnMut(&mut [u8]) -> Result<usize, E>,
        corrupt: impl Fn(InflateError) -> E,
    ) -> Result<usize, E> {
        let mut fresh_input = false;
        loop {
            if self.out_start < self.pos {
                let n = out.len().min(self.pos - self.out_start);
                out[..n].copy_from_slice(&self.window[self.out_start..self.out_start + n]);
                self.out_start += n;
                return Ok(n);
            }
            if self.pos == WINDOW {
                // Everything handed out: wrap (the history stays in place).
                self.pos = 0;
                self.out_start = 0;
            }
            if self.raw_start == self.raw_end {
                if fresh_input {
                    // The decoder took a whole read without output yet.
                    return Ok(0);
                }
                let n = read(&mut self.raw)?;
                if n == 0 {
                    return Ok(0);
                }
                self.raw_start = 0;
                self.raw_end = n;
                fresh_input = true;
            }
            let (status, used, produced) = decompress(
                &mut self.inflater,
                &self.raw[self.raw_start..self.raw_end],
                &mut self.window,
                self.pos,
                inflate_flags::TINFL_FLAG_HAS_MORE_INPUT,
            );
            self.raw_start += used;
            self.pos += produced;
            match status {
                TINFLStatus::NeedsMoreInput | TINFLStatus::HasMoreOutput | TINFLStatus::Done => {}
                _ => return Err(corrupt(InflateError)),
            }
            if used == 0 && produced == 0 && self.pos < WINDOW {
                return Err(corrupt(InflateError));
            }
        }
    }
}
