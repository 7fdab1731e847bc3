//! `$JS.API.*` subjects, written into the caller's buffer.
//!
//! Every JetStream operation is a NATS request to a subject under the API
//! prefix (`$JS.API` by default, `$JS.<domain>.API` for a JetStream domain):
//!
//! ```
//! use courier_core::nats::jetstream::api::{ApiOp, ApiPrefix};
//! let mut buf = [0u8; 64];
//! let subject = ApiOp::StreamInfo("ORDERS").write(ApiPrefix::Default, &mut buf).unwrap();
//! assert_eq!(subject, "$JS.API.STREAM.INFO.ORDERS");
//! ```

use core::fmt::Write as _;

use super::error::JsError;

/// The API prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ApiPrefix<'a> {
    /// `$JS.API`
    #[default]
    Default,
    /// `$JS.<domain>.API`
    Domain(&'a str),
    /// Any prefix given whole (an account import such as `JS.acc.API`).
    Custom(&'a str),
}

/// One JetStream API operation and the names it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiOp<'a> {
    /// `INFO`: account limits and usage.
    AccountInfo,
    /// `STREAM.CREATE.<stream>`
    StreamCreate(&'a str),
    /// `STREAM.UPDATE.<stream>`
    StreamUpdate(&'a str),
    /// `STREAM.INFO.<stream>`
    StreamInfo(&'a str),
    /// `STREAM.DELETE.<stream>`
    StreamDelete(&'a str),
    /// `STREAM.PURGE.<stream>`
    StreamPurge(&'a str),
    /// `STREAM.MSG.GET.<stream>`
    StreamMsgGet(&'a str),
    /// `CONSUMER.CREATE.<stream>[.<consumer>[.<filter>]]` (server 2.9+):
    /// no name for an ephemeral consumer; the filter only when it is a
    /// single subject.
    ConsumerCreate {
        /// Stream name.
        stream: &'a str,
        /// Durable or named consumer (None: ephemeral).
        consumer: Option<&'a str>,
        /// Single filter subject, appended when given.
        filter: Option<&'a str>,
    },
    /// `CONSUMER.INFO.<stream>.<consumer>`
    ConsumerInfo(&'a str, &'a str),
    /// `CONSUMER.DELETE.<stream>.<consumer>`
    ConsumerDelete(&'a str, &'a str),
    /// `CONSUMER.MSG.NEXT.<stream>.<consumer>`: a pull request.
    ConsumerNext(&'a str, &'a str),
}

/// Checks a stream, consumer or domain name: non-empty, no `.`, `*`, `>`,
/// whitespace or control characters.
pub fn validate_name(name: &str, what: &'static str) -> Result<(), JsError> {
    let bad = |c: char| matches!(c, '.' | '*' | '>') || c.is_whitespace() || c.is_control();
    if name.is_empty() || name.contains(bad) {
        return Err(JsError::InvalidName { what });
    }
    Ok(())
}

/// A `core::fmt::Write` over a byte slice that fails when full.
pub(crate) struct SliceWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> SliceWriter<'b> {
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        SliceWriter { buf, len: 0 }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn into_bytes(self) -> &'b [u8] {
        &self.buf[..self.len]
    }

    pub(crate) fn into_str(self) -> &'b str {
        // Only `write_str` appends, so the bytes are UTF-8.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl core::fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl ApiOp<'_> {
    /// Validates the names and writes the full subject into `buf`.
    pub fn write<'b>(&self, prefix: ApiPrefix<'_>, buf: &'b mut [u8]) -> Result<&'b str, JsError> {
        self.validate(prefix)?;
        let capacity = buf.len();
        let mut w = SliceWriter::new(buf);
        self.write_to(prefix, &mut w)
            .map_err(|_| JsError::BufferTooSmall {
                what: "API subject",
                capacity,
            })?;
        Ok(w.into_str())
    }

    fn validate(&self, prefix: ApiPrefix<'_>) -> Result<(), JsError> {
        if let ApiPrefix::Domain(d) = prefix {
            validate_name(d, "domain")?;
        }
        match *self {
            ApiOp::AccountInfo => Ok(()),
            ApiOp::StreamCreate(s)
            | ApiOp::StreamUpdate(s)
            | ApiOp::StreamInfo(s)
            | ApiOp::StreamDelete(s)
            | ApiOp::StreamPurge(s)
            | ApiOp::StreamMsgGet(s) => validate_name(s, "stream name"),
            ApiOp::ConsumerCreate {
                stream,
                consumer,
                filter,
            } => {
                validate_name(stream, "stream name")?;
                if let Some(c) = consumer {
                    validate_name(c, "consumer name")?;
                }
                if let Some(f) = filter {
                    crate::nats::subject::validate_subscribe(f).map_err(|_| {
                        JsError::InvalidName {
                            what: "filter subject",
                        }
                    })?;
                }
                Ok(())
            }
            ApiOp::ConsumerInfo(s, c) | ApiOp::ConsumerDelete(s, c) | ApiOp::ConsumerNext(s, c) => {
                validate_name(s, "stream name")?;
                validate_name(c, "consumer name")
            }
        }
    }

    fn write_to(&self, prefix: ApiPrefix<'_>, w: &mut SliceWriter<'_>) -> core::fmt::Result {
        match prefix {
            ApiPrefix::Default => w.write_str("$JS.API")?,
            ApiPrefix::Domain(d) => write!(w, "$JS.{d}.API")?,
            ApiPrefix::Custom(p) => w.write_str(p.trim_end_matches('.'))?,
        }
        match *self {
            ApiOp::AccountInfo => w.write_str(".INFO"),
            ApiOp::StreamCreate(s) => write!(w, ".STREAM.CREATE.{s}"),
            ApiOp::StreamUpdate(s) => write!(w, ".STREAM.UPDATE.{s}"),
            ApiOp::StreamInfo(s) => write!(w, ".STREAM.INFO.{s}"),
            ApiOp::StreamDelete(s) => write!(w, ".STREAM.DELETE.{s}"),
            ApiOp::StreamPurge(s) => write!(w, ".STREAM.PURGE.{s}"),
            ApiOp::StreamMsgGet(s) => write!(w, ".STREAM.MSG.GET.{s}"),
            ApiOp::ConsumerCreate {
                stream,
                consumer,
                filter,
            } => {
                write!(w, ".CONSUMER.CREATE.{stream}")?;
                if let Some(c) = consumer {
                    write!(w, ".{c}")?;
                    if let Some(f) = filter {
                        write!(w, ".{f}")?;
                    }
                }
                Ok(())
            }
            ApiOp::ConsumerInfo(s, c) => write!(w, ".CONSUMER.INFO.{s}.{c}"),
            ApiOp::ConsumerDelete(s, c) => write!(w, ".CONSUMER.DELETE.{s}.{c}"),
            ApiOp::ConsumerNext(s, c) => write!(w, ".CONSUMER.MSG.NEXT.{s}.{c}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(op: ApiOp<'_>, prefix: ApiPrefix<'_>) -> std::string::String {
        let mut buf = [0u8; 128];
        op.write(prefix, &mut buf).unwrap().into()
    }

    #[test]
    fn subjects_for_every_operation() {
        let p = ApiPrefix::Default;
        assert_eq!(subject(ApiOp::AccountInfo, p), "$JS.API.INFO");
        assert_eq!(
            subject(ApiOp::StreamCreate("S"), p),
            "$JS.API.STREAM.CREATE.S"
        );
        assert_eq!(
            subject(ApiOp::StreamUpdate("S"), p),
            "$JS.API.STREAM.UPDATE.S"
        );
        assert_eq!(
            subject(ApiOp::StreamDelete("S"), p),
            "$JS.API.STREAM.DELETE.S"
        );
        assert_eq!(
            subject(ApiOp::StreamPurge("S"), p),
            "$JS.API.STREAM.PURGE.S"
        );
        assert_eq!(
            subject(
                ApiOp::ConsumerCreate {
                    stream: "S",
                    consumer: None,
                    filter: None
                },
                p
            ),
            "$JS.API.CONSUMER.CREATE.S"
        );
        assert_eq!(
            subject(
                ApiOp::ConsumerCreate {
                    stream: "S",
                    consumer: Some("d"),
                    filter: Some("a.*")
                },
                p
            ),
            "$JS.API.CONSUMER.CREATE.S.d.a.*"
        );
        assert_eq!(
            subject(ApiOp::ConsumerInfo("S", "d"), p),
            "$JS.API.CONSUMER.INFO.S.d"
        );
        assert_eq!(
            subject(ApiOp::ConsumerDelete("S", "d"), p),
            "$JS.API.CONSUMER.DELETE.S.d"
        );
        assert_eq!(
            subject(ApiOp::ConsumerNext("S", "d"), p),
            "$JS.API.CONSUMER.MSG.NEXT.S.d"
        );
        assert_eq!(
            subject(ApiOp::StreamInfo("S"), ApiPrefix::Domain("hub")),
            "$JS.hub.API.STREAM.INFO.S"
        );
        assert_eq!(
            subject(ApiOp::StreamInfo("S"), ApiPrefix::Custom("JS.acc.API.")),
            "JS.acc.API.STREAM.INFO.S"
        );
    }

    #[test]
    fn bad_names_and_small_buffers_are_typed_errors() {
        let mut buf = [0u8; 64];
        for bad in ["", "a.b", "a*", "a>", "a b", "a\tb"] {
            assert_eq!(
                ApiOp::StreamInfo(bad).write(ApiPrefix::Default, &mut buf),
                Err(JsError::InvalidName {
                    what: "stream name"
                })
            );
        }
        assert_eq!(
            ApiOp::ConsumerInfo("S", "x.y").write(ApiPrefix::Default, &mut buf),
            Err(JsError::InvalidName {
                what: "consumer name"
            })
        );
        let mut small = [0u8; 10];
        assert_eq!(
            ApiOp::StreamInfo("ORDERS").write(ApiPrefix::Default, &mut small),
            Err(JsError::BufferTooSmall {
                what: "API subject",
                capacity: 10
            })
        );
    }
}
