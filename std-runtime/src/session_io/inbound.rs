//! The receive side of a connection: what the transport read and, once a
//! stream layer (TLS, compression) is on, what the layers decoded.
//!
//! The session always parses [`Inbound::data`] and [`Inbound::consume`]s
//! whole frames; whether those bytes are the wire's or the layers' output is
//! this type's business, not the protocol's.

use crate::transport::ReadBuffer;

/// Received bytes waiting for the session.
///
/// Plain connection: the session parses the transport's [`ReadBuffer`] in
/// place (zero-copy). Layered connection: [`Inbound::decode`] moves the
/// wire bytes through the layers into a decoded buffer, and the session
/// parses that one.
#[derive(Debug)]
pub struct Inbound {
    wire: ReadBuffer,
    decoded: Vec<u8>,
    start: usize,
    layered: bool,
}

impl Inbound {
    /// A receive side whose wire buffer holds `capacity` bytes (the largest
    /// frame the transport can hand over unlayered).
    pub fn new(capacity: usize) -> Self {
        Inbound {
            wire: ReadBuffer::new(capacity),
            decoded: Vec::new(),
            start: 0,
            layered: false,
        }
    }

    /// The buffer the transport reads into.
    pub fn wire(&mut self) -> &mut ReadBuffer {
        &mut self.wire
    }

    /// Forgets every byte, wire and decoded, and the layering (a new
    /// connection, which may be plaintext again). Keeps the allocations.
    pub fn clear(&mut self) {
        self.wire.clear();
        self.decoded.clear();
        self.start = 0;
        self.layered = false;
    }

    /// True once [`Inbound::decode`] ran: the session reads decoded bytes.
    pub fn is_layered(&self) -> bool {
        self.layered
    }

    /// Moves every wire byte through `layers` (which append their output to
    /// the `Vec`) and switches [`Inbound::data`] to the decoded bytes.
    /// Returns whether any wire byte was taken.
    pub fn decode<E>(
        &mut self,
        layers: impl FnOnce(&[u8], &mut Vec<u8>) -> Result<(), E>,
    ) -> Result<bool, E> {
        self.layered = true;
        if self.wire.is_empty() {
            return Ok(false);
        }
        self.compact();
        layers(self.wire.data(), &mut self.decoded)?;
        self.wire.consume(self.wire.len());
        Ok(true)
    }

    /// A new layer starts mid-stream (compression negotiated after TLS):
    /// the decoded bytes the session has not parsed yet belong to the new
    /// layer, so they go through `layer` again.
    pub fn redecode<E>(
        &mut self,
        layer: impl FnOnce(&[u8], &mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let rest = self.data().to_vec();
        self.decoded.clear();
        self.start = 0;
        layer(&rest, &mut self.decoded)
    }

    /// The bytes the session parses next.
    pub fn data(&self) -> &[u8] {
        if self.layered {
            self.decoded.get(self.start..).unwrap_or(&[])
        } else {
            self.wire.data()
        }
    }

    /// The session parsed `n` bytes of [`Inbound::data`] (clamped).
    pub fn consume(&mut self, n: usize) {
        if !self.layered {
            self.wire.consume(n);
            return;
        }
        self.start = (self.start + n).min(self.decoded.len());
        if self.start == self.decoded.len() {
            self.decoded.clear();
            self.start = 0;
        }
    }

    /// Drops parsed decoded bytes so appending does not grow the buffer.
    fn compact(&mut self) {
        if self.start > 0 {
            self.decoded.drain(..self.start);
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(inbound: &mut Inbound, bytes: &[u8]) {
        assert_eq!(inbound.wire().append(bytes), bytes.len());
    }

    fn upper(wire: &[u8], out: &mut Vec<u8>) -> Result<(), ()> {
        out.extend(wire.iter().map(u8::to_ascii_uppercase));
        Ok(())
    }

    #[test]
    fn unlayered_reads_the_wire_in_place() {
        let mut inbound = Inbound::new(16);
        fill(&mut inbound, b"abcdef");
        assert!(!inbound.is_layered());
        assert_eq!(inbound.data(), b"abcdef");
        inbound.consume(4);
        assert_eq!(inbound.data(), b"ef");
        assert_eq!(inbound.wire().data(), b"ef");
    }

    #[test]
    fn layered_reads_the_decoded_bytes_and_keeps_the_unparsed_tail() {
        let mut inbound = Inbound::new(16);
        fill(&mut inbound, b"abc");
        assert_eq!(inbound.decode(upper), Ok(true));
        assert!(inbound.wire().is_empty());
        inbound.consume(2);
        fill(&mut inbound, b"de");
        assert_eq!(inbound.decode(upper), Ok(true));
        assert_eq!(inbound.data(), b"CDE");
        assert_eq!(inbound.decode(upper), Ok(false), "nothing new on the wire");
        inbound.consume(10);
        assert_eq!(inbound.data(), b"");
    }

    #[test]
    fn clear_forgets_the_bytes_and_the_layering() {
        let mut inbound = Inbound::new(16);
        fill(&mut inbound, b"abc");
        inbound.decode(upper).unwrap();
        fill(&mut inbound, b"de");
        inbound.clear();
        assert!(!inbound.is_layered());
        assert_eq!(inbound.data(), b"");
        fill(&mut inbound, b"xy");
        assert_eq!(inbound.data(), b"xy", "read in place again");
    }

    #[test]
    fn redecode_runs_the_unparsed_bytes_through_the_new_layer() {
        let mut inbound = Inbound::new(16);
        fill(&mut inbound, b"okxy");
        inbound
            .decode(|w, out| {
                out.extend_from_slice(w);
                Ok::<_, ()>(())
            })
            .unwrap();
        inbound.consume(2);
        inbound.redecode(upper).unwrap();
        assert_eq!(inbound.data(), b"XY");
    }

    #[test]
    fn a_failing_layer_leaves_the_wire_bytes() {
        let mut inbound = Inbound::new(16);
        fill(&mut inbound, b"bad");
        assert_eq!(inbound.decode(|_, _| Err("garbage")), Err("garbage"));
        assert_eq!(inbound.wire().data(), b"bad");
    }
}
