//! Fixed-capacity buffers chosen by the caller.
//!
//! Storage is anything that is `AsRef<[u8]> + AsMut<[u8]>`: a `[u8; N]` on a
//! microcontroller, a `&mut [u8]` borrowed from a static, or a `Box<[u8]>` /
//! `Vec<u8>` on a server. The buffers never grow: a frame that cannot fit is
//! the caller's typed error ([`CapacityError`]), never a panic.

use core::fmt;

/// Not enough room in a fixed buffer.
///
/// `needed` is the total number of bytes the operation needs the buffer to
/// hold; `capacity` is what it can hold at most. When `needed <= capacity`
/// the caller can make room (flush the transmit buffer, consume received
/// bytes) and retry; otherwise it needs bigger buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CapacityError {
    /// Bytes the operation needs.
    pub needed: usize,
    /// Bytes the buffer can hold at most.
    pub capacity: usize,
}

impl fmt::Display for CapacityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes needed but the buffer holds at most {}",
            self.needed, self.capacity
        )
    }
}

/// Receive buffer: the transport reads into [`RxBuf::spare`], the parser
/// looks at [`RxBuf::data`] and [`RxBuf::consume`]s whole frames.
///
/// Parsed frames borrow from this buffer (zero-copy), so bytes are only
/// moved when [`RxBuf::spare`] needs room at the end (compaction).
///
/// ```
/// use courier_core::buf::RxBuf;
/// let mut rx = RxBuf::new([0u8; 16]);
/// let spare = rx.spare();
/// spare[..4].copy_from_slice(b"PING");
/// rx.fill(4);
/// assert_eq!(rx.data(), b"PING");
/// rx.consume(2);
/// assert_eq!(rx.data(), b"NG");
/// ```
pub struct RxBuf<S> {
    storage: S,
    start: usize,
    end: usize,
}

impl<S: AsRef<[u8]> + AsMut<[u8]>> RxBuf<S> {
    /// Wraps `storage`; its length is the capacity.
    pub fn new(storage: S) -> Self {
        RxBuf {
            storage,
            start: 0,
            end: 0,
        }
    }

    /// Maximum number of bytes the buffer can hold (largest frame).
    pub fn capacity(&self) -> usize {
        self.storage.as_ref().len()
    }

    /// Received bytes not yet consumed (empty if the storage was swapped
    /// for a shorter one behind the buffer's back, see
    /// [`RxBuf::storage_mut`]).
    pub fn data(&self) -> &[u8] {
        self.storage
            .as_ref()
            .get(self.start..self.end)
            .unwrap_or(&[])
    }

    /// Number of received bytes not yet consumed.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True when no unconsumed bytes are held.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Room to read into. Moves unconsumed bytes to the front first when
    /// that makes room; empty only when the buffer is full of unconsumed
    /// bytes (a frame larger than the capacity).
    pub fn spare(&mut self) -> &mut [u8] {
        let room = self.spare_range(1);
        self.storage.as_mut().get_mut(room).unwrap_or(&mut [])
    }

    /// Where the room to read into lies in the storage, for a transport that
    /// cannot take a borrowed slice (an io_uring read owns the storage while
    /// the kernel writes into it: take it out of [`RxBuf::storage_mut`], read
    /// into this range, put it back, then [`RxBuf::fill`]).
    ///
    /// Moves unconsumed bytes to the front first when fewer than `min_room`
    /// bytes are left at the end (`1`: only when none are, as
    /// [`RxBuf::spare`] does; more keeps reads large at the price of moving
    /// the tail of a partial frame a little more often). Empty only when the
    /// buffer is full of unconsumed bytes.
    pub fn spare_range(&mut self, min_room: usize) -> core::ops::Range<usize> {
        let capacity = self.capacity();
        if self.start > 0 && capacity.saturating_sub(self.end) < min_room {
            self.compact();
        }
        self.end.min(capacity)..capacity
    }

    /// The storage itself, for a transport that must own it during a read
    /// (see [`RxBuf::spare_range`]). Held bytes stay where they are; if the
    /// storage is never put back (a cancelled read) or comes back with
    /// another length, call [`RxBuf::clear`]: the buffer never panics
    /// either way, it just holds nothing.
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    /// Records that `n` bytes were read into [`RxBuf::spare`].
    /// `n` is clamped to the spare room so a buggy transport cannot panic us.
    pub fn fill(&mut self, n: usize) {
        self.end = (self.end + n).min(self.capacity());
    }

    /// Drops `n` parsed bytes from the front (clamped to what is held).
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Moves unconsumed bytes to the front of the storage.
    pub fn compact(&mut self) {
        if self.start > 0 {
            let (start, end) = (self.start, self.end);
            if end > self.capacity() {
                // The storage was swapped for a shorter one: nothing held.
                self.clear();
                return;
            }
            self.storage.as_mut().copy_within(start..end, 0);
            self.end = end - start;
            self.start = 0;
        }
    }

    /// Forgets every held byte (after a reconnect).
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }
}

/// Transmit buffer: encoders append whole commands, the transport writes
/// [`TxBuf::pending`] and [`TxBuf::consume`]s what the socket took.
///
/// A command is appended whole or not at all: [`TxBuf::append`] either
/// writes every byte or returns a [`CapacityError`] leaving the buffer as it
/// was, so a full buffer never leaves half a command on the wire.
pub struct TxBuf<S> {
    storage: S,
    start: usize,
    end: usize,
}

impl<S: AsRef<[u8]> + AsMut<[u8]>> TxBuf<S> {
    /// Wraps `storage`; its length is the capacity.
    pub fn new(storage: S) -> Self {
        TxBuf {
            storage,
            start: 0,
            end: 0,
        }
    }

    /// Maximum number of bytes the buffer can hold.
    pub fn capacity(&self) -> usize {
        self.storage.as_ref().len()
    }

    /// Bytes waiting to be written to the transport.
    pub fn pending(&self) -> &[u8] {
        &self.storage.as_ref()[self.start..self.end]
    }

    /// Number of bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True when nothing waits to be written.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Bytes that can be appended right now (after compaction).
    pub fn available(&self) -> usize {
        self.capacity() - self.len()
    }

    /// Records that the transport wrote `n` bytes of [`TxBuf::pending`].
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Forgets every pending byte (after a reconnect).
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Gives the storage back (pending bytes are dropped).
    pub fn into_storage(self) -> S {
        self.storage
    }

    /// Appends one command of exactly `len` bytes written by `write`.
    ///
    /// `write` receives a slice of exactly `len` bytes and must fill it. If
    /// the command cannot fit even in an empty buffer, or does not fit now,
    /// nothing is written and the error says how much was needed.
    pub fn append<F: FnOnce(&mut [u8])>(
        &mut self,
        len: usize,
        write: F,
    ) -> Result<(), CapacityError> {
        let capacity = self.capacity();
        if len > capacity - self.len() {
            return Err(CapacityError {
                needed: len + self.len(),
                capacity,
            });
        }
        if len > capacity - self.end {
            let (start, end) = (self.start, self.end);
            self.storage.as_mut().copy_within(start..end, 0);
            self.end = end - start;
            self.start = 0;
        }
        let end = self.end;
        write(&mut self.storage.as_mut()[end..end + len]);
        self.end += len;
        Ok(())
    }

    /// Appends the concatenation of `parts` as one command.
    pub fn append_parts(&mut self, parts: &[&[u8]]) -> Result<(), CapacityError> {
        let len = parts.iter().map(|p| p.len()).sum();
        self.append(len, |out| {
            let mut at = 0;
            for p in parts {
                out[at..at + p.len()].copy_from_slice(p);
                at += p.len();
            }
        })
    }
}

/// A cursor that writes into a fixed slice and reports overflow instead of
/// panicking. Encoders use it to build a command before committing it.
pub struct Cursor<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// Starts writing at the beginning of `out`.
    pub fn new(out: &'a mut [u8]) -> Self {
        Cursor { out, at: 0 }
    }

    /// Bytes written so far.
    pub fn written(&self) -> usize {
        self.at
    }

    /// Appends `bytes`.
    pub fn put(&mut self, bytes: &[u8]) -> Result<(), CapacityError> {
        let end = self.at + bytes.len();
        if end > self.out.len() {
            return Err(CapacityError {
                needed: end,
                capacity: self.out.len(),
            });
        }
        self.out[self.at..end].copy_from_slice(bytes);
        self.at = end;
        Ok(())
    }

    /// Appends `n` in decimal ASCII.
    pub fn put_decimal(&mut self, n: u64) -> Result<(), CapacityError> {
        let mut digits = [0u8; 20];
        let text = format_decimal(n, &mut digits);
        self.put(text)
    }
}

/// Formats `n` in decimal into `scratch`, returning the digits.
pub fn format_decimal(mut n: u64, scratch: &mut [u8; 20]) -> &[u8] {
    let mut i = scratch.len();
    loop {
        i -= 1;
        let (q, digit) = div10(n);
        scratch[i] = b'0' + digit;
        n = q;
        if n == 0 {
            break;
        }
    }
    &scratch[i..]
}

/// Number of decimal digits in `n` (for sizing commands before writing).
pub fn decimal_len(n: u64) -> usize {
    let mut len = 1;
    let mut v = n;
    while v >= 10 {
        v = div10(v).0;
        len += 1;
    }
    len
}

/// `(n / 10, n % 10)`. A 64-bit target divides by the constant with a
/// multiply, as before.
#[cfg(target_pointer_width = "64")]
#[inline(always)]
fn div10(n: u64) -> (u64, u8) {
    (n / 10, (n % 10) as u8)
}

/// `(n / 10, n % 10)` on a 32-bit target: long division in 16-bit
/// chunks with 32-bit operations (one `udiv` each on a Cortex-M3/M4)
/// instead of the compiler's 64-bit division routine, which the decimal
/// numbers of every command were the only users of (-404 B of flash in
/// the publish-only firmware, issue 14).
#[cfg(any(test, not(target_pointer_width = "64")))]
#[cfg_attr(not(target_pointer_width = "64"), inline(never))]
fn div10_by_halves(n: u64) -> (u64, u8) {
    let mut q = 0u64;
    let mut rem = 0u32;
    for shift in [48u32, 32, 16, 0] {
        let chunk = (rem << 16) | ((n >> shift) as u32 & 0xFFFF);
        q |= u64::from(chunk / 10) << shift;
        rem = chunk % 10;
    }
    (q, rem as u8)
}

#[cfg(not(target_pointer_width = "64"))]
use div10_by_halves as div10;

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The 32-bit targets' division by 10 equals the native one.
        #[test]
        fn div10_by_halves_is_division(n in proptest::prelude::any::<u64>()) {
            proptest::prop_assert_eq!(div10_by_halves(n), (n / 10, (n % 10) as u8));
        }
    }

    #[test]
    fn decimals_at_the_edges() {
        for n in [
            0,
            9,
            10,
            99,
            100,
            u32::MAX as u64,
            1 << 32,
            10_000_000_000_000_000_000,
            u64::MAX,
        ] {
            assert_eq!(div10_by_halves(n), (n / 10, (n % 10) as u8));
            let mut scratch = [0u8; 20];
            let text = std::format!("{n}");
            assert_eq!(format_decimal(n, &mut scratch), text.as_bytes());
            assert_eq!(decimal_len(n), text.len());
        }
    }

    #[test]
    fn rx_compacts_when_end_reached() {
        let mut rx = RxBuf::new([0u8; 8]);
        rx.spare()[..8].copy_from_slice(b"abcdefgh");
        rx.fill(8);
        rx.consume(5);
        assert_eq!(rx.spare().len(), 5);
        assert_eq!(rx.data(), b"fgh");
    }

    #[test]
    fn rx_spare_range_compacts_below_the_asked_room() {
        let mut rx = RxBuf::new([0u8; 8]);
        rx.spare()[..8].copy_from_slice(b"abcdefgh");
        rx.fill(8);
        rx.consume(5);
        // 0 bytes left at the end, 3 held: compacts for any room asked.
        assert_eq!(rx.spare_range(1), 3..8);
        assert_eq!(rx.data(), b"fgh");
        rx.spare()[..3].copy_from_slice(b"ijk");
        rx.fill(3);
        rx.consume(1);
        // "ghijk" held at 1..6, 2 bytes left at the end: enough for 2.
        assert_eq!(rx.spare_range(2), 6..8);
        assert_eq!(rx.data(), b"ghijk");
        // Asking for 3 moves the 5 held bytes to the front.
        assert_eq!(rx.spare_range(3), 5..8);
        assert_eq!(rx.data(), b"ghijk");
    }

    #[test]
    fn rx_lent_storage_that_never_comes_back_holds_nothing() {
        let mut rx = RxBuf::new(std::vec![0u8; 8]);
        rx.spare()[..4].copy_from_slice(b"abcd");
        rx.fill(4);
        rx.consume(1);
        // An io_uring read took the storage and was cancelled.
        let lent = core::mem::take(rx.storage_mut());
        assert_eq!(lent.len(), 8);
        assert_eq!(rx.capacity(), 0);
        assert_eq!(rx.data(), b"");
        assert!(rx.spare().is_empty());
        assert_eq!(rx.spare_range(4), 0..0);
        rx.compact();
        rx.fill(3);
        assert_eq!(rx.data(), b"");
        // The owner puts storage back and starts afresh.
        *rx.storage_mut() = lent;
        rx.clear();
        assert_eq!(rx.spare_range(1), 0..8);
    }

    #[test]
    fn rx_full_of_unconsumed_has_no_spare() {
        let mut rx = RxBuf::new([0u8; 4]);
        rx.spare().copy_from_slice(b"abcd");
        rx.fill(4);
        assert!(rx.spare().is_empty());
        rx.fill(10);
        assert_eq!(rx.len(), 4);
    }

    #[test]
    fn tx_append_is_all_or_nothing() {
        let mut tx = TxBuf::new([0u8; 8]);
        tx.append_parts(&[b"PING", b"\r\n"]).unwrap();
        let err = tx.append_parts(&[b"PONG\r\n"]).unwrap_err();
        assert_eq!(
            err,
            CapacityError {
                needed: 12,
                capacity: 8
            }
        );
        assert_eq!(tx.pending(), b"PING\r\n");
        tx.consume(6);
        tx.append_parts(&[b"PONG\r\n"]).unwrap();
        assert_eq!(tx.pending(), b"PONG\r\n");
    }

    #[test]
    fn tx_compacts_to_fit() {
        let mut tx = TxBuf::new([0u8; 8]);
        tx.append_parts(&[b"abcdef"]).unwrap();
        tx.consume(4);
        tx.append_parts(&[b"123456"]).unwrap();
        assert_eq!(tx.pending(), b"ef123456");
    }

    #[test]
    fn decimal_formatting() {
        let mut s = [0u8; 20];
        assert_eq!(format_decimal(0, &mut s), b"0");
        assert_eq!(format_decimal(u64::MAX, &mut s), b"18446744073709551615");
        assert_eq!(decimal_len(0), 1);
        assert_eq!(decimal_len(10), 2);
        assert_eq!(decimal_len(u64::MAX), 20);
    }

    #[test]
    fn cursor_reports_overflow() {
        let mut out = [0u8; 4];
        let mut c = Cursor::new(&mut out);
        c.put(b"PUB").unwrap();
        assert_eq!(
            c.put(b" x").unwrap_err(),
            CapacityError {
                needed: 5,
                capacity: 4
            }
        );
        assert_eq!(c.written(), 3);
    }
}
