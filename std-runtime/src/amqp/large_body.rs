//! Writing a large message body from where it lies: the core's
//! [`BodyPlan`] (after `Session::publish_body_later`) says how the body
//! splits into frames; the writer sends each frame as three parts (7-byte
//! header, the body slice, the frame-end byte) with vectored writes, so the
//! body is never copied and the transmit buffer needs no room of its size.
//! Over TLS each frame is sealed into the writer's buffer (encryption
//! copies anyway), one batch at a time.

use bytes::Bytes;
use courier_core::amqp::ids::FRAME_END;
use courier_core::amqp::session::BodyPlan;

use super::tls::SharedTls;
use super::Error;
use crate::transport::WriteHalf;

/// Bodies of at least this many bytes go out vectored from the caller's
/// buffer (smaller ones are copied into the transmit buffer, which batches
/// many small messages into one write).
pub const LARGE_BODY: usize = 64 * 1024;

/// Frames per vectored write: three parts each, under the kernel's 1,024
/// iovecs per call.
const FRAMES_PER_WRITE: usize = 300;
/// Frames sealed per TLS write (about 1 MiB at RabbitMQ's frame-max), so
/// the sealed copy stays small whatever the body's size.
const FRAMES_PER_TLS_WRITE: usize = 8;

/// Writes every body frame of `plan` from `body` (of `plan.len` bytes).
pub(crate) async fn write_body(
    write: &mut WriteHalf,
    tls: Option<&SharedTls>,
    plan: BodyPlan,
    body: &Bytes,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    if body.len() != plan.len {
        return Err(Error::Io(format!(
            "large body: {} bytes queued but its content header announced {}",
            body.len(),
            plan.len
        )));
    }
    let frames = plan.frames();
    // Every frame's header and end byte, side by side: 8 bytes a frame.
    let mut framing = Vec::with_capacity(frames * 8);
    for i in 0..frames {
        let (header, _) = plan.frame(i);
        framing.extend_from_slice(&header);
        framing.push(FRAME_END);
    }
    let framing = Bytes::from(framing);
    let per_write = if tls.is_some() {
        FRAMES_PER_TLS_WRITE
    } else {
        FRAMES_PER_WRITE
    };
    let mut parts = Vec::with_capacity(per_write.min(frames) * 3);
    let mut first = 0;
    while first < frames {
        let last = (first + per_write).min(frames);
        parts.clear();
        for i in first..last {
            let (_, range) = plan.frame(i);
            parts.push(framing.slice(i * 8..i * 8 + 7));
            parts.push(body.slice(range));
            parts.push(framing.slice(i * 8 + 7..i * 8 + 8));
        }
        match tls {
            None => {
                let (res, back) = write.write_vectored_all(std::mem::take(&mut parts)).await;
                parts = back;
                res.map_err(|e| Error::Io(e.to_string()))?;
            }
            Some(t) => {
                out.clear();
                {
                    let mut t = t.borrow_mut();
                    for p in &parts {
                        super::tls::seal(&mut t, p, out)?;
                    }
                }
                let (res, back) = write.write_all(std::mem::take(out)).await;
                *out = back;
                res.map_err(|e| Error::Io(e.to_string()))?;
            }
        }
        first = last;
    }
    Ok(())
}
