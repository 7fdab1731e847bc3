//! Snappy framing format (what nsqd's `snappy` feature speaks): a stream
//! identifier chunk, then compressed (0x00) or uncompressed (0x01) chunks
//! of at most 64 KiB of data, each with the masked CRC-32C of its
//! uncompressed bytes. snap's raw codec does the (de)compression; chunk
//! parsing is incremental so chunks may arrive split across reads.

use super::LayerError;

const STREAM_IDENTIFIER: &[u8] = b"\xff\x06\x00\x00sNaPpY";
const CHUNK_COMPRESSED: u8 = 0x00;
const CHUNK_UNCOMPRESSED: u8 = 0x01;
const CHUNK_PADDING: u8 = 0xfe;
const CHUNK_STREAM_ID: u8 = 0xff;
/// Most uncompressed bytes one chunk may carry.
const MAX_BLOCK: usize = 65536;
/// Largest chunk body accepted (compressed data of a 64 KiB block + CRC).
const MAX_CHUNK: usize = 16 * 1024 * 1024;

fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Compresses into the framing format.
pub struct SnappyEncoder {
    raw: snap::raw::Encoder,
    wrote_identifier: bool,
}

impl Default for SnappyEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SnappyEncoder {
    /// A new stream (the identifier goes out with the first data).
    pub fn new() -> Self {
        SnappyEncoder {
            raw: snap::raw::Encoder::new(),
            wrote_identifier: false,
        }
    }

    /// Appends whole chunks holding `plain` to `out`.
    pub fn encode(&mut self, plain: &[u8], out: &mut Vec<u8>) {
        if plain.is_empty() {
            return;
        }
        if !self.wrote_identifier {
            out.extend_from_slice(STREAM_IDENTIFIER);
            self.wrote_identifier = true;
        }
        for block in plain.chunks(MAX_BLOCK) {
            let header_at = out.len();
            out.extend_from_slice(&[0; 8]);
            let data_at = out.len();
            out.resize(data_at + snap::raw::max_compress_len(block.len()), 0);
            let (kind, len) = match self.raw.compress(block, &mut out[data_at..]) {
                Ok(n) if n < block.len() => (CHUNK_COMPRESSED, n),
                _ => {
                    out[data_at..data_at + block.len()].copy_from_slice(block);
                    (CHUNK_UNCOMPRESSED, block.len())
                }
            };
            out.truncate(data_at + len);
            let chunk_len = (len + 4) as u32;
            let header = &mut out[header_at..data_at];
            header[0] = kind;
            header[1..4].copy_from_slice(&chunk_len.to_le_bytes()[..3]);
            header[4..8].copy_from_slice(&masked_crc(block).to_le_bytes());
        }
    }
}

/// Decompresses the framing format incrementally.
pub struct SnappyDecoder {
    raw: snap::raw::Decoder,
    pending: Vec<u8>,
    joined: Vec<u8>,
    seen_identifier: bool,
    block: Vec<u8>,
}

impl Default for SnappyDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SnappyDecoder {
    /// Expects a stream identifier first.
    pub fn new() -> Self {
        SnappyDecoder {
            raw: snap::raw::Decoder::new(),
            pending: Vec::new(),
            joined: Vec::new(),
            seen_identifier: false,
            block: vec![0; MAX_BLOCK],
        }
    }

    /// Consumes `input`, appending the data of every complete chunk to
    /// `out`; an incomplete chunk waits for more input.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), LayerError> {
        // Parse straight from `input` when nothing is pending (the common
        // case), otherwise from the pending bytes plus input.
        // `joined` keeps its allocation across calls (taken and put back).
        let mut joined = std::mem::take(&mut self.joined);
        joined.clear();
        let data: &[u8] = if self.pending.is_empty() {
            input
        } else {
            joined.extend_from_slice(&self.pending);
            joined.extend_from_slice(input);
            self.pending.clear();
            &joined
        };
        let mut pos = 0;
        while let Some(header) = data.get(pos..pos + 4) {
            let kind = header[0];
            let len = u32::from_le_bytes([header[1], header[2], header[3], 0]) as usize;
            if len > MAX_CHUNK {
                self.joined = joined;
                return Err(LayerError::Snappy(format!(
                    "chunk of {len} bytes is too large"
                )));
            }
            let Some(body) = data.get(pos + 4..pos + 4 + len) else {
                break;
            };
            if let Err(e) = self.chunk(kind, body, out) {
                self.joined = joined;
                return Err(e);
            }
            pos += 4 + len;
        }
        let rest = data.get(pos..).unwrap_or(&[]);
        self.pending.extend_from_slice(rest);
        self.joined = joined;
        Ok(())
    }

    fn chunk(&mut self, kind: u8, body: &[u8], out: &mut Vec<u8>) -> Result<(), LayerError> {
        if kind == CHUNK_STREAM_ID {
            if body != &STREAM_IDENTIFIER[4..] {
                return Err(LayerError::Snappy("bad stream identifier".into()));
            }
            self.seen_identifier = true;
            return Ok(());
        }
        if !self.seen_identifier {
            return Err(LayerError::Snappy(format!(
                "chunk type {kind:#04x} before the stream identifier"
            )));
        }
        match kind {
            CHUNK_COMPRESSED | CHUNK_UNCOMPRESSED => {
                let (crc, payload) = body
                    .split_first_chunk::<4>()
                    .ok_or_else(|| LayerError::Snappy("chunk shorter than its CRC".into()))?;
                let crc = u32::from_le_bytes(*crc);
                let data: &[u8] = if kind == CHUNK_COMPRESSED {
                    let n = snap::raw::decompress_len(payload)
                        .map_err(|e| LayerError::Snappy(e.to_string()))?;
                    if n > MAX_BLOCK {
                        return Err(LayerError::Snappy(format!("block of {n} bytes > 64 KiB")));
                    }
                    let n = self
                        .raw
                        .decompress(payload, &mut self.block[..n])
                        .map_err(|e| LayerError::Snappy(e.to_string()))?;
                    &self.block[..n]
                } else {
                    payload
                };
                if masked_crc(data) != crc {
                    return Err(LayerError::Snappy("CRC mismatch".into()));
                }
                out.extend_from_slice(data);
                Ok(())
            }
            CHUNK_PADDING | 0x80..=0xfd => Ok(()),
            _ => Err(LayerError::Snappy(format!(
                "reserved unskippable chunk type {kind:#04x}"
            ))),
        }
    }
}
