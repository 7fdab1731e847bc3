//! Raw DEFLATE (no zlib header) as nsqd's `deflate` feature speaks it, with
//! the 32 KiB window; every encode ends with a sync flush so nsqd can
//! decode each command as soon as it arrives.

use miniz_oxide::deflate::core::{create_comp_flags_from_zip_params, CompressorOxide};
use miniz_oxide::inflate::stream::InflateState;
use miniz_oxide::{DataFormat, MZFlush, MZStatus};

use super::LayerError;

/// Raw DEFLATE encoder.
pub struct DeflateEncoder {
    compressor: Box<CompressorOxide>,
}

impl DeflateEncoder {
    /// Compresses at `level` (1 fastest ..= 9 smallest).
    pub fn new(level: u8) -> Self {
        // Negative window bits select raw deflate; 15 bits = 32 KiB window.
        let flags = create_comp_flags_from_zip_params(level.clamp(1, 9) as i32, -15, 0);
        DeflateEncoder {
            compressor: Box::new(CompressorOxide::new(flags)),
        }
    }

    /// Appends the compressed form of `plain`, sync-flushed, to `out`.
    pub fn encode(&mut self, plain: &[u8], out: &mut Vec<u8>) {
        if plain.is_empty() {
            return;
        }
        let mut input = plain;
        loop {
            let at = out.len();
            out.resize(at + input.len() + input.len() / 8 + 64, 0);
            let r = miniz_oxide::deflate::stream::deflate(
                &mut self.compressor,
                input,
                &mut out[at..],
                MZFlush::Sync,
            );
            let room = out.len() - at;
            out.truncate(at + r.bytes_written);
            input = &input[r.bytes_consumed..];
            // Done when all input went in and the flush fit in the output.
            if input.is_empty() && r.bytes_written < room {
                break;
            }
            if r.status.is_err() {
                // Cannot happen with a valid compressor; keep the stream
                // consistent by stopping here rather than looping forever.
                break;
            }
        }
    }
}

/// Raw DEFLATE decoder.
pub struct DeflateDecoder {
    state: Box<InflateState>,
    chunk: Vec<u8>,
}

impl Default for DeflateDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl DeflateDecoder {
    /// A decoder for a raw stream.
    pub fn new() -> Self {
        DeflateDecoder {
            state: InflateState::new_boxed(DataFormat::Raw),
            chunk: vec![0; 32 * 1024],
        }
    }

    /// Consumes `input`, appending what it inflates to `out`.
    pub fn decode(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), LayerError> {
        loop {
            let r = miniz_oxide::inflate::stream::inflate(
                &mut self.state,
                input,
                &mut self.chunk,
                MZFlush::None,
            );
            out.extend_from_slice(&self.chunk[..r.bytes_written]);
            input = &input[r.bytes_consumed..];
            match r.status {
                Ok(MZStatus::Ok) => {}
                Ok(MZStatus::StreamEnd) => {
                    return Err(LayerError::Deflate("the server ended the stream".into()))
                }
                Ok(MZStatus::NeedDict) => {
                    return Err(LayerError::Deflate(
                        "a preset dictionary is required".into(),
                    ))
                }
                // Buf: no progress possible without more input.
                Err(miniz_oxide::MZError::Buf) => return Ok(()),
                Err(e) => return Err(LayerError::Deflate(format!("{e:?}"))),
            }
            if input.is_empty() && r.bytes_written < self.chunk.len() {
                return Ok(());
            }
        }
    }
}
