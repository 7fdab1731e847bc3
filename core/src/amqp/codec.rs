//! Reading and writing the AMQP 0-9-1 primitive types: big-endian integers,
//! packed bits, short strings (u8 length) and long strings (u32 length).
//!
//! [`Reader`] borrows what it decodes from the input (zero-copy);
//! [`Writer`] writes into a caller's slice, or only counts bytes (the
//! first pass of an encoder that must know a frame's size before writing).

use core::fmt;

use super::table::FieldTable;

/// Why bytes could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DecodeError {
    /// The payload ended inside a field.
    Truncated,
    /// A field table holds a value type this client does not know.
    UnknownFieldType(u8),
    /// Field tables nested deeper than [`MAX_TABLE_DEPTH`].
    TableTooDeep,
    /// A method id this client does not know.
    UnknownMethod {
        /// Class id.
        class: u16,
        /// Method id.
        method: u16,
    },
    /// A content header with the property-flags continuation bit set (no
    /// 0-9-1 class has more than 15 properties).
    PropertyFlagsContinuation,
    /// Bytes left over after the last argument of a method.
    TrailingBytes,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("a field runs past the end of its frame"),
            DecodeError::UnknownFieldType(t) => {
                write!(f, "unknown field-table value type {:?}", *t as char)
            }
            DecodeError::TableTooDeep => {
                write!(f, "field tables nested deeper than {MAX_TABLE_DEPTH}")
            }
            DecodeError::UnknownMethod { class, method } => {
                write!(f, "unknown method {class}.{method}")
            }
            DecodeError::PropertyFlagsContinuation => {
                f.write_str("content header with more than 15 properties")
            }
            DecodeError::TrailingBytes => f.write_str("bytes after the last argument of a method"),
        }
    }
}

/// Why a value given by the caller cannot be encoded; nothing was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EncodeError {
    /// A short string (names, routing keys, short properties) longer than
    /// 255 bytes.
    ShortStrTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The output slice is too small.
    Overflow {
        /// Bytes needed in all.
        needed: usize,
        /// Size of the output.
        capacity: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::ShortStrTooLong { len } => write!(
                f,
                "a name, routing key or short property of {len} bytes; AMQP allows at most 255"
            ),
            EncodeError::Overflow { needed, capacity } => write!(
                f,
                "{needed} bytes needed but the output holds {capacity}; give a bigger buffer"
            ),
        }
    }
}

/// Deepest nesting of field tables and arrays the decoder follows.
pub const MAX_TABLE_DEPTH: usize = 16;

/// An AMQP short string as received: bytes, usually UTF-8.
///
/// AMQP does not promise UTF-8, so a message with odd bytes in its routing
/// key is still delivered; [`ShortStr::as_str`] says whether it is text.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ShortStr<'a>(&'a [u8]);

impl<'a> ShortStr<'a> {
    /// Wraps text (encoders check the 255-byte limit).
    pub const fn new(s: &'a str) -> Self {
        ShortStr(s.as_bytes())
    }
    /// Wraps raw bytes.
    pub const fn from_bytes(b: &'a [u8]) -> Self {
        ShortStr(b)
    }
    /// The bytes.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
    /// The text, when the bytes are UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        core::str::from_utf8(self.0).ok()
    }
    /// Length in bytes.
    pub const fn len(&self) -> usize {
        self.0.len()
    }
    /// True when empty.
    pub const fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> From<&'a str> for ShortStr<'a> {
    fn from(s: &'a str) -> Self {
        ShortStr::new(s)
    }
}

impl PartialEq<str> for ShortStr<'_> {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for ShortStr<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl fmt::Display for ShortStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for ShortStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for ShortStr<'_> {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(f, "{=[u8]:a}", self.0)
    }
}

/// Decodes primitives from a method or header payload, borrowing slices.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// Reads `buf` from its start.
    pub const fn new(buf: &'a [u8]) -> Self {
        Reader { buf, at: 0 }
    }
    /// Bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.at..).unwrap_or(&[])
    }
    /// Bytes read so far.
    pub const fn position(&self) -> usize {
        self.at
    }
    /// Fails unless every byte was read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.at == self.buf.len() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
    /// `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n).ok_or(DecodeError::Truncated)?;
        let out = self.buf.get(self.at..end).ok_or(DecodeError::Truncated)?;
        self.at = end;
        Ok(out)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }
    /// An octet.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    /// A short (big-endian).
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        self.array().map(u16::from_be_bytes)
    }
    /// A long (big-endian).
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_be_bytes)
    }
    /// A long-long (big-endian).
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_be_bytes)
    }
    /// Up to 8 packed bits of one octet, lowest bit first.
    pub fn bits<const N: usize>(&mut self) -> Result<[bool; N], DecodeError> {
        let octet = self.u8()?;
        let mut out = [false; N];
        for (i, bit) in out.iter_mut().enumerate() {
            *bit = octet & (1 << i) != 0;
        }
        Ok(out)
    }
    /// One bit alone in its octet.
    pub fn bit(&mut self) -> Result<bool, DecodeError> {
        Ok(self.bits::<1>()?[0])
    }
    /// A short string (u8 length).
    pub fn short_str(&mut self) -> Result<ShortStr<'a>, DecodeError> {
        let len = self.u8()? as usize;
        self.bytes(len).map(ShortStr)
    }
    /// A long string (u32 length).
    pub fn long_str(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u32()? as usize;
        self.bytes(len)
    }
    /// A field table (u32 length), validated.
    pub fn table(&mut self) -> Result<FieldTable<'a>, DecodeError> {
        FieldTable::from_raw(self.long_str()?)
    }
}

/// Encodes primitives into a slice, or only counts them.
///
/// Errors are sticky: after the first, later writes do nothing and
/// [`Writer::finish`] returns it, so encoders need not check every call.
#[derive(Debug)]
pub struct Writer<'a> {
    out: Option<&'a mut [u8]>,
    at: usize,
    error: Option<EncodeError>,
}

impl<'a> Writer<'a> {
    /// Writes into `out`.
    pub fn new(out: &'a mut [u8]) -> Self {
        Writer {
            out: Some(out),
            at: 0,
            error: None,
        }
    }
    /// Counts bytes without writing them.
    pub fn counting() -> Writer<'static> {
        Writer {
            out: None,
            at: 0,
            error: None,
        }
    }
    /// Bytes written (or counted) so far.
    pub const fn position(&self) -> usize {
        self.at
    }
    /// Bytes written, or the first error.
    pub fn finish(self) -> Result<usize, EncodeError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.at),
        }
    }
    /// The bytes written, or the first error (empty for a counting writer).
    pub fn into_written(self) -> Result<&'a [u8], EncodeError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        Ok(match self.out {
            Some(out) => &out[..self.at],
            None => &[],
        })
    }
    /// Records an error (the first one wins).
    pub fn fail(&mut self, error: EncodeError) {
        self.error.get_or_insert(error);
    }
    /// Raw bytes.
    pub fn put(&mut self, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let end = self.at + bytes.len();
        if let Some(out) = self.out.as_deref_mut() {
            match out.get_mut(self.at..end) {
                Some(dst) => dst.copy_from_slice(bytes),
                None => {
                    let capacity = out.len();
                    self.fail(EncodeError::Overflow {
                        needed: end,
                        capacity,
                    });
                    return;
                }
            }
        }
        self.at = end;
    }
    /// Overwrites 4 bytes at `at` (a length written after its content).
    fn patch_u32(&mut self, at: usize, v: u32) {
        if self.error.is_some() {
            return;
        }
        if let Some(dst) = self.out.as_deref_mut().and_then(|o| o.get_mut(at..at + 4)) {
            dst.copy_from_slice(&v.to_be_bytes());
        }
    }
    /// An octet.
    pub fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }
    /// A short.
    pub fn u16(&mut self, v: u16) {
        self.put(&v.to_be_bytes());
    }
    /// A long.
    pub fn u32(&mut self, v: u32) {
        self.put(&v.to_be_bytes());
    }
    /// A long-long.
    pub fn u64(&mut self, v: u64) {
        self.put(&v.to_be_bytes());
    }
    /// Packed bits in one octet, lowest bit first.
    pub fn bits(&mut self, bits: &[bool]) {
        let octet = bits
            .iter()
            .enumerate()
            .fold(0u8, |acc, (i, b)| acc | ((*b as u8) << i));
        self.u8(octet);
    }
    /// A short string; more than 255 bytes is [`EncodeError::ShortStrTooLong`].
    pub fn short_str(&mut self, s: ShortStr<'_>) {
        match u8::try_from(s.len()) {
            Ok(len) => {
                self.u8(len);
                self.put(s.as_bytes());
            }
            Err(_) => self.fail(EncodeError::ShortStrTooLong { len: s.len() }),
        }
    }
    /// A long string.
    pub fn long_str(&mut self, s: &[u8]) {
        self.u32(s.len() as u32);
        self.put(s);
    }
    /// A field table.
    pub fn table(&mut self, t: FieldTable<'_>) {
        self.long_str(t.as_bytes());
    }
    /// A u32 length followed by what `f` writes (tables built in place).
    pub fn length_prefixed(&mut self, f: impl FnOnce(&mut Self)) {
        let at = self.at;
        self.u32(0);
        f(self);
        let len = self.at - at - 4;
        self.patch_u32(at, len as u32);
    }
}
