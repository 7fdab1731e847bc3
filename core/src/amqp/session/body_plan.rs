//! Large bodies written from the application's own buffer.
//!
//! [`Session::publish`] copies the body into the transmit buffer, so a body
//! must fit it. [`Session::publish_body_later`] writes only the method and
//! content header frames and returns a [`BodyPlan`]: the body frames
//! (7-byte frame header, a frame-max slice of the body, the frame-end byte)
//! that the driver writes itself, vectored from where the body lies, no
//! copy and no buffer of the body's size. On the wire a content is its
//! method, header and body frames with nothing of its channel between them
//! (RabbitMQ closes the connection with 505 UNEXPECTED_FRAME otherwise);
//! simplest and enough: [`Session::transmit`] stops where the body goes
//! (for every channel) until the driver says
//! [`Session::body_transmitted`]; what is queued meanwhile (acks,
//! heartbeats, other publishes) follows the body. One such body at a time
//! per connection: another is refused with [`Error::BodyInFlight`].

use core::ops::Range;

use super::commands::{Content, PublishFlags};
use super::Session;
use crate::amqp::error::Error;
use crate::amqp::frame;
use crate::amqp::ids::{ChannelId, FRAME_BODY};
use crate::amqp::properties::Properties;

/// The body frames of a [`Session::publish_body_later`], for the driver to
/// write once [`Session::pending_body`] returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyPlan {
    /// Channel of the content.
    pub channel: ChannelId,
    /// Body length in bytes.
    pub len: usize,
    /// Body bytes per frame (frame-max minus the 8 bytes of framing).
    pub frame_payload: usize,
    /// Transmit-buffer bytes still to be written before the body.
    pub(super) before: usize,
}

impl BodyPlan {
    /// Number of body frames.
    pub fn frames(&self) -> usize {
        self.len.div_ceil(self.frame_payload)
    }

    /// Frame `i` (`0..frames()`): the 7 header bytes to write, then the
    /// body bytes in the returned range, then
    /// [`FRAME_END`](crate::amqp::ids::FRAME_END).
    pub fn frame(&self, i: usize) -> ([u8; 7], Range<usize>) {
        let start = (i * self.frame_payload).min(self.len);
        let end = (start + self.frame_payload).min(self.len);
        let mut header = [0u8; 7];
        frame::write_header(&mut header, FRAME_BODY, self.channel, end - start);
        (header, start..end)
    }
}

impl<S, const CHANNELS: usize, const CONFIRM_WORDS: usize> Session<S, CHANNELS, CONFIRM_WORDS>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    /// Publishes a message whose body (`body_len` bytes) the driver writes
    /// itself: the method and content header frames go into the transmit
    /// buffer, the body frames are described by [`Session::pending_body`]
    /// once everything before them was transmitted. The transmit buffer
    /// needs room for the method and header only, whatever the body's size.
    ///
    /// Same guarantees and errors as [`Session::publish`] (the delivery tag
    /// in confirm mode, at-least-once; `None` without, at-most-once), plus
    /// [`Error::BodyInFlight`] while the previous such body is not written.
    /// An empty body is a plain publish (no body frame, no plan).
    pub fn publish_body_later(
        &mut self,
        channel: ChannelId,
        exchange: &str,
        routing_key: &str,
        flags: PublishFlags,
        properties: &Properties<'_>,
        body_len: usize,
    ) -> Result<Option<u64>, Error> {
        self.check_publish(channel)?;
        if self.body.is_some() {
            return Err(Error::BodyInFlight);
        }
        let content = Content {
            channel,
            exchange,
            routing_key,
            flags,
            properties,
        };
        self.write_content(&content, body_len, None)?;
        if body_len > 0 {
            self.body = Some(BodyPlan {
                channel,
                len: body_len,
                frame_payload: self.body_frame_payload(),
                before: self.tx.len(),
            });
        }
        Ok(self.next_confirm_tag(channel))
    }

    /// The body to write now: `Some` once every byte queued before it was
    /// transmitted ([`Session::transmit`] is then empty).
    pub fn pending_body(&self) -> Option<BodyPlan> {
        self.body.filter(|b| b.before == 0)
    }

    /// True while a body of [`Session::publish_body_later`] is not written.
    pub fn body_in_flight(&self) -> bool {
        self.body.is_some()
    }

    /// The driver wrote every frame of [`Session::pending_body`]:
    /// [`Session::transmit`] goes on with what was queued after it.
    pub fn body_transmitted(&mut self) {
        if self.body.take().is_some() {
            self.wrote_since_tick = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::amqp::ids::{FRAME_END, FRAME_HEADER, FRAME_METHOD};

    /// Splits `wire` into (type, channel, payload) frames; panics on junk.
    fn frames(mut wire: &[u8]) -> std::vec::Vec<(u8, u16, std::vec::Vec<u8>)> {
        let mut out = std::vec::Vec::new();
        while !wire.is_empty() {
            let len = u32::from_be_bytes(wire[3..7].try_into().unwrap()) as usize;
            assert_eq!(wire[7 + len], FRAME_END, "frame end");
            out.push((
                wire[0],
                u16::from_be_bytes([wire[1], wire[2]]),
                wire[7..7 + len].to_vec(),
            ));
            wire = &wire[8 + len..];
        }
        out
    }

    /// What the driver does: transmit, then the body frames from `body`.
    fn drain(s: &mut TestSession, body: &[u8], wire: &mut std::vec::Vec<u8>) {
        loop {
            let t = s.transmit().to_vec();
            if !t.is_empty() {
                wire.extend_from_slice(&t);
                s.transmitted(t.len());
                continue;
            }
            let Some(plan) = s.pending_body() else {
                return;
            };
            for i in 0..plan.frames() {
                let (h, r) = plan.frame(i);
                wire.extend_from_slice(&h);
                wire.extend_from_slice(&body[r]);
                wire.push(FRAME_END);
            }
            s.body_transmitted();
        }
    }

    /// Handshake with `frame_max`, channel 1 open, a transmit buffer of
    /// `tx` bytes.
    fn small_session(frame_max: u32, tx: usize) -> TestSession {
        let mut s = TestSession::new(super::super::Options::default(), std::vec![0u8; tx]);
        s.start(t(0));
        feed(&mut s, &greeting(frame_max, 0), t(1));
        assert_eq!(s.open_channel().unwrap(), 1);
        feed(
            &mut s,
            &method(1, crate::amqp::methods::Channel::OpenOk),
            t(2),
        );
        sent(&mut s);
        s
    }

    /// [`small_session`] with channel 1 in confirm mode (select-ok fed).
    fn confirming_session(frame_max: u32, tx: usize) -> TestSession {
        let mut s = small_session(frame_max, tx);
        s.confirm_select(1).unwrap();
        feed(
            &mut s,
            &method(1, crate::amqp::methods::Confirm::SelectOk),
            t(3),
        );
        sent(&mut s);
        s
    }

    /// Marks everything queued for transmission as written.
    fn sent(s: &mut TestSession) {
        let n = s.transmit().len();
        s.transmitted(n);
    }

    fn pattern(n: usize) -> std::vec::Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn a_body_larger_than_the_transmit_buffer_goes_out_as_frames_right_after_its_header() {
        let mut s = small_session(4096, 4096);
        let body = pattern(100_000);
        let p = Properties::default().content_type("application/octet-stream");
        let tag = s
            .publish_body_later(1, "", "q", PublishFlags::default(), &p, body.len())
            .unwrap();
        assert_eq!(tag, None, "no confirm mode: at-most-once, no tag");
        // Queued after the publish: must follow the body on the wire.
        s.ack(1, 7, false).unwrap();
        assert!(s.body_in_flight());
        assert_eq!(s.pending_body(), None, "method and header go first");
        let head = frames(s.transmit());
        assert_eq!(head.len(), 2, "transmit stops after the content header");
        let mut wire = std::vec::Vec::new();
        drain(&mut s, &body, &mut wire);
        assert!(!s.body_in_flight());
        let f = frames(&wire);
        assert_eq!((f[0].0, f[0].1), (FRAME_METHOD, 1));
        assert_eq!(&f[0].2[..4], &[0, 60, 0, 40], "basic.publish");
        assert_eq!((f[1].0, f[1].1), (FRAME_HEADER, 1));
        assert_eq!(&f[1].2[4..12], &100_000u64.to_be_bytes(), "body size");
        let body_frames = 100_000usize.div_ceil(4096 - 8);
        assert_eq!(f.len(), 2 + body_frames + 1);
        let mut got = std::vec::Vec::new();
        for (kind, ch, payload) in &f[2..2 + body_frames] {
            assert_eq!((*kind, *ch), (FRAME_BODY, 1));
            assert!(payload.len() <= 4088);
            got.extend_from_slice(payload);
        }
        assert_eq!(got, body, "body byte-exact");
        let last = &f[2 + body_frames];
        assert_eq!(
            (last.0, &last.2[..4]),
            (FRAME_METHOD, &[0, 60, 0, 80][..]),
            "the ack after the body"
        );
    }

    #[test]
    fn a_second_body_waits_for_the_first_and_confirm_tags_count_both() {
        let mut s = confirming_session(131_072, 2048);
        let p = Properties::default();
        let f = PublishFlags::default();
        assert_eq!(
            s.publish_body_later(1, "", "q", f, &p, 300_000),
            Ok(Some(1))
        );
        let before = s.transmit().len();
        assert_eq!(
            s.publish_body_later(1, "", "q", f, &p, 10),
            Err(Error::BodyInFlight)
        );
        assert_eq!(s.transmit().len(), before, "nothing written on refusal");
        // A copied publish meanwhile is queued after the body.
        assert_eq!(s.publish(1, "", "q", f, &p, b"small"), Ok(Some(2)));
        let body = pattern(300_000);
        let mut wire = std::vec::Vec::new();
        drain(&mut s, &body, &mut wire);
        let fr = frames(&wire);
        let kinds: std::vec::Vec<u8> = fr.iter().map(|f| f.0).collect();
        let n_body = 300_000usize.div_ceil(131_072 - 8);
        let mut expected = std::vec![FRAME_METHOD, FRAME_HEADER];
        expected.extend(core::iter::repeat_n(FRAME_BODY, n_body));
        expected.extend([FRAME_METHOD, FRAME_HEADER, FRAME_BODY]);
        assert_eq!(kinds, expected);
        assert_eq!(fr.last().unwrap().2, b"small");
        assert_eq!(s.publish_body_later(1, "", "q", f, &p, 10), Ok(Some(3)));
    }

    #[test]
    fn a_lost_connection_forgets_the_body_and_its_publish_stays_unconfirmed() {
        let mut s = confirming_session(131_072, 2048);
        let p = Properties::default();
        s.publish_body_later(1, "", "q", PublishFlags::default(), &p, 50_000)
            .unwrap();
        sent(&mut s);
        assert!(s.pending_body().is_some());
        s.connection_lost();
        assert_eq!(s.pending_body(), None);
        let report = s.start(t(10));
        assert_eq!(report.unconfirmed, 1, "reported, never counted sent");
        assert_eq!(s.transmit(), b"AMQP\x00\x00\x09\x01");
    }

    #[test]
    fn an_empty_body_is_a_plain_publish_without_a_plan() {
        let mut s = small_session(4096, 4096);
        s.publish_body_later(
            1,
            "",
            "q",
            PublishFlags::default(),
            &Properties::default(),
            0,
        )
        .unwrap();
        assert!(!s.body_in_flight());
        let f = frames(s.transmit());
        assert_eq!(f.len(), 2, "method and header, no body frame");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// Any body size, frame-max and small publishes queued before and
        /// after: the wire is those before, the large content (method,
        /// header, its body frames in order, each within frame-max), then
        /// those after; the body reassembles byte-exact.
        #[test]
        fn any_size_and_frame_max_give_the_body_whole_between_what_came_before_and_after(
            len in 1usize..200_000,
            frame_max in 4096u32..140_000,
            before in 0usize..4,
            after in 0usize..4,
        ) {
            let mut s = small_session(frame_max, 2048);
            let p = Properties::default();
            let f = PublishFlags::default();
            for i in 0..before {
                s.publish(1, "", "b", f, &p, &[i as u8]).unwrap();
            }
            s.publish_body_later(1, "", "q", f, &p, len).unwrap();
            for i in 0..after {
                s.publish(1, "", "a", f, &p, &[i as u8]).unwrap();
            }
            let body = pattern(len);
            let mut wire = std::vec::Vec::new();
            drain(&mut s, &body, &mut wire);
            let fr = frames(&wire);
            // The server's proposal above the client's own frame-max
            // (131,072 by default) is capped: frames follow the tuned value.
            let tuned = s.tune().frame_max;
            proptest::prop_assert_eq!(tuned, frame_max.min(131_072));
            let payload = tuned as usize - 8;
            let n = len.div_ceil(payload);
            proptest::prop_assert_eq!(fr.len(), 3 * before + 2 + n + 3 * after);
            let big = &fr[3 * before..3 * before + 2 + n];
            proptest::prop_assert_eq!(big[0].0, FRAME_METHOD);
            proptest::prop_assert_eq!(big[1].0, FRAME_HEADER);
            let mut got = std::vec::Vec::new();
            for (kind, _, data) in &big[2..] {
                proptest::prop_assert_eq!(*kind, FRAME_BODY);
                proptest::prop_assert!(data.len() <= payload);
                got.extend_from_slice(data);
            }
            proptest::prop_assert!(got == body);
            for (k, frame) in fr[3 * before + 2 + n..].chunks(3).enumerate() {
                proptest::prop_assert_eq!(&frame[2].2, &std::vec![k as u8]);
            }
        }
    }
}
