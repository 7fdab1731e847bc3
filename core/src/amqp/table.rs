//! Field tables: the typed key/value maps of AMQP (client properties,
//! queue arguments, message headers), read in place and built in place.
//!
//! Value types follow RabbitMQ's reading of 0-9-1 (the one every broker and
//! client uses): `s` is a signed short and `l` a signed long-long.

use super::codec::{DecodeError, EncodeError, Reader, ShortStr, Writer, MAX_TABLE_DEPTH};

/// A field table borrowed from a frame (or built by [`TableBuilder`]): the
/// bytes after its u32 length, already validated.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct FieldTable<'a> {
    raw: &'a [u8],
}

/// A field array (type `A`), validated like a table.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct FieldArray<'a> {
    raw: &'a [u8],
}

/// One value of a field table or array.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FieldValue<'a> {
    /// `t`
    Bool(bool),
    /// `b`
    I8(i8),
    /// `B`
    U8(u8),
    /// `s`
    I16(i16),
    /// `u`
    U16(u16),
    /// `I`
    I32(i32),
    /// `i`
    U32(u32),
    /// `l`
    I64(i64),
    /// `L`: the 0-9-1 spec's long-long-uint. RabbitMQ's errata table leaves
    /// it out, but py-amqp (kombu) writes integers beyond 32 bits with it and
    /// Qpid uses it, so it is read (a header from kombu must not drop the
    /// connection) and written back as `L`.
    U64(u64),
    /// `f`
    F32(f32),
    /// `d`
    F64(f64),
    /// `D`: value × 10^-scale.
    Decimal {
        /// Decimal places.
        scale: u8,
        /// Unscaled value.
        value: u32,
    },
    /// `S`: a long string (bytes; usually UTF-8).
    LongStr(&'a [u8]),
    /// `x`: a byte array.
    Bytes(&'a [u8]),
    /// `A`
    Array(FieldArray<'a>),
    /// `T`: seconds since the Unix epoch.
    Timestamp(u64),
    /// `F`
    Table(FieldTable<'a>),
    /// `V`
    Void,
}

impl<'a> FieldValue<'a> {
    fn read(r: &mut Reader<'a>, depth: usize) -> Result<Self, DecodeError> {
        let kind = r.u8()?;
        Ok(match kind {
            b't' => FieldValue::Bool(r.u8()? != 0),
            b'b' => FieldValue::I8(r.u8()? as i8),
            b'B' => FieldValue::U8(r.u8()?),
            b's' => FieldValue::I16(r.u16()? as i16),
            b'u' => FieldValue::U16(r.u16()?),
            b'I' => FieldValue::I32(r.u32()? as i32),
            b'i' => FieldValue::U32(r.u32()?),
            b'l' => FieldValue::I64(r.u64()? as i64),
            b'L' => FieldValue::U64(r.u64()?),
            b'f' => FieldValue::F32(f32::from_bits(r.u32()?)),
            b'd' => FieldValue::F64(f64::from_bits(r.u64()?)),
            b'D' => FieldValue::Decimal {
                scale: r.u8()?,
                value: r.u32()?,
            },
            b'S' => FieldValue::LongStr(r.long_str()?),
            b'x' => FieldValue::Bytes(r.long_str()?),
            b'A' => {
                let raw = r.long_str()?;
                check_array(raw, depth + 1)?;
                FieldValue::Array(FieldArray { raw })
            }
            b'T' => FieldValue::Timestamp(r.u64()?),
            b'F' => {
                let raw = r.long_str()?;
                check_table(raw, depth + 1)?;
                FieldValue::Table(FieldTable { raw })
            }
            b'V' => FieldValue::Void,
            other => return Err(DecodeError::UnknownFieldType(other)),
        })
    }

    /// Writes the type octet and the value.
    pub fn write(&self, w: &mut Writer<'_>) {
        match *self {
            FieldValue::Bool(v) => w.put(&[b't', v as u8]),
            FieldValue::I8(v) => w.put(&[b'b', v as u8]),
            FieldValue::U8(v) => w.put(&[b'B', v]),
            FieldValue::I16(v) => {
                w.u8(b's');
                w.u16(v as u16)
            }
            FieldValue::U16(v) => {
                w.u8(b'u');
                w.u16(v)
            }
            FieldValue::I32(v) => {
                w.u8(b'I');
                w.u32(v as u32)
            }
            FieldValue::U32(v) => {
                w.u8(b'i');
                w.u32(v)
            }
            FieldValue::I64(v) => {
                w.u8(b'l');
                w.u64(v as u64)
            }
            FieldValue::U64(v) => {
                w.u8(b'L');
                w.u64(v)
            }
            FieldValue::F32(v) => {
                w.u8(b'f');
                w.u32(v.to_bits())
            }
            FieldValue::F64(v) => {
                w.u8(b'd');
                w.u64(v.to_bits())
            }
            FieldValue::Decimal { scale, value } => {
                w.put(&[b'D', scale]);
                w.u32(value)
            }
            FieldValue::LongStr(s) => {
                w.u8(b'S');
                w.long_str(s)
            }
            FieldValue::Bytes(s) => {
                w.u8(b'x');
                w.long_str(s)
            }
            FieldValue::Array(a) => {
                w.u8(b'A');
                w.long_str(a.raw)
            }
            FieldValue::Timestamp(v) => {
                w.u8(b'T');
                w.u64(v)
            }
            FieldValue::Table(t) => {
                w.u8(b'F');
                w.long_str(t.raw)
            }
            FieldValue::Void => w.u8(b'V'),
        }
    }

    /// The text of a long string that is UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            FieldValue::LongStr(s) => core::str::from_utf8(s).ok(),
            _ => None,
        }
    }

    /// The value as an i64 when it is an integer type.
    pub fn as_i64(&self) -> Option<i64> {
        Some(match *self {
            FieldValue::I8(v) => v.into(),
            FieldValue::U8(v) => v.into(),
            FieldValue::I16(v) => v.into(),
            FieldValue::U16(v) => v.into(),
            FieldValue::I32(v) => v.into(),
            FieldValue::U32(v) => v.into(),
            FieldValue::I64(v) => v,
            FieldValue::U64(v) => i64::try_from(v).ok()?,
            FieldValue::Timestamp(v) => i64::try_from(v).ok()?,
            _ => return None,
        })
    }
}

fn check_table(raw: &[u8], depth: usize) -> Result<(), DecodeError> {
    if depth > MAX_TABLE_DEPTH {
        return Err(DecodeError::TableTooDeep);
    }
    let mut r = Reader::new(raw);
    while !r.rest().is_empty() {
        r.short_str()?;
        FieldValue::read(&mut r, depth)?;
    }
    Ok(())
}

fn check_array(raw: &[u8], depth: usize) -> Result<(), DecodeError> {
    if depth > MAX_TABLE_DEPTH {
        return Err(DecodeError::TableTooDeep);
    }
    let mut r = Reader::new(raw);
    while !r.rest().is_empty() {
        FieldValue::read(&mut r, depth)?;
    }
    Ok(())
}

impl<'a> FieldTable<'a> {
    /// The empty table.
    pub const EMPTY: FieldTable<'static> = FieldTable { raw: &[] };

    /// Validates the bytes of a table (without its u32 length).
    pub fn from_raw(raw: &'a [u8]) -> Result<Self, DecodeError> {
        check_table(raw, 0)?;
        Ok(FieldTable { raw })
    }
    /// The encoded entries (without the u32 length).
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }
    /// True when the table has no entries.
    pub const fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
    /// Entries in wire order.
    pub fn iter(&self) -> TableIter<'a> {
        TableIter {
            r: Reader::new(self.raw),
        }
    }
    /// The first value under `key`.
    pub fn get(&self, key: &str) -> Option<FieldValue<'a>> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.iter().count()
    }
}

impl<'a> FieldArray<'a> {
    /// Values in wire order.
    pub fn iter(&self) -> ArrayIter<'a> {
        ArrayIter {
            r: Reader::new(self.raw),
        }
    }
    /// The encoded values (without the u32 length).
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }
}

/// Iterator over a [`FieldTable`].
pub struct TableIter<'a> {
    r: Reader<'a>,
}

impl<'a> Iterator for TableIter<'a> {
    type Item = (ShortStr<'a>, FieldValue<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.r.rest().is_empty() {
            return None;
        }
        // Validated at construction: errors cannot happen; stop if they do.
        let key = self.r.short_str().ok()?;
        let value = FieldValue::read(&mut self.r, 0).ok()?;
        Some((key, value))
    }
}

/// Iterator over a [`FieldArray`].
pub struct ArrayIter<'a> {
    r: Reader<'a>,
}

impl<'a> Iterator for ArrayIter<'a> {
    type Item = FieldValue<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.r.rest().is_empty() {
            return None;
        }
        FieldValue::read(&mut self.r, 0).ok()
    }
}

impl core::fmt::Debug for FieldTable<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl core::fmt::Debug for FieldArray<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Builds a field table in a caller's buffer.
///
/// ```
/// use courier_core::amqp::{FieldValue, TableBuilder};
/// let mut buf = [0u8; 64];
/// let mut b = TableBuilder::new(&mut buf);
/// b.insert("x-dead-letter-exchange", FieldValue::LongStr(b"dlx"));
/// b.insert("x-max-priority", FieldValue::U8(5));
/// let table = b.finish().unwrap();
/// assert_eq!(table.get("x-max-priority"), Some(FieldValue::U8(5)));
/// ```
pub struct TableBuilder<'b> {
    w: Writer<'b>,
}

impl<'b> TableBuilder<'b> {
    /// Builds into `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        TableBuilder {
            w: Writer::new(buf),
        }
    }
    /// Appends an entry (duplicates are kept; readers take the first).
    pub fn insert(&mut self, key: &str, value: FieldValue<'_>) -> &mut Self {
        self.w.short_str(ShortStr::new(key));
        value.write(&mut self.w);
        self
    }
    /// Appends a UTF-8 long-string entry.
    pub fn insert_str(&mut self, key: &str, value: &str) -> &mut Self {
        self.insert(key, FieldValue::LongStr(value.as_bytes()))
    }
    /// The table, or the first error (a key over 255 bytes, a full buffer).
    pub fn finish(self) -> Result<FieldTable<'b>, EncodeError> {
        let raw = self.w.into_written()?;
        Ok(FieldTable { raw })
    }
}

#[cfg(test)]
mod long_long_uint {
    use super::*;

    /// What py-amqp (kombu) sends for `{"mom-timestamp": 1764417600123}`:
    /// a table with one `L` entry. It decodes instead of failing the frame.
    #[test]
    fn a_py_amqp_l_entry_decodes_and_writes_back_byte_exact() {
        let mut wire = [0u8; 64];
        let raw: &[u8] = b"\x0dmom-timestampL\x00\x00\x01\x9a\xd1\x5e\x6f\x7b";
        check_table(raw, 0).unwrap();
        let mut r = Reader::new(raw);
        assert_eq!(r.short_str().unwrap(), "mom-timestamp");
        let value = FieldValue::read(&mut r, 0).unwrap();
        assert_eq!(value, FieldValue::U64(0x0000_019a_d15e_6f7b));
        assert_eq!(value.as_i64(), Some(0x0000_019a_d15e_6f7b));
        let mut w = Writer::new(&mut wire);
        value.write(&mut w);
        let n = w.position();
        assert_eq!(&wire[..n], &raw[14..]);
    }
}
