//! One messaging facade over NATS, NSQ and AMQP, opened by URI (the
//! canopsis MOM seed), with named messages and ack mode (the relay seed).
//!
//! # URIs
//!
//! `protocol[-data_type]://[user[:password]@]host[:port][,host[:port]...][/vhost][?options]`
//! ([`MomUri`]; a wrong one is a [`UriError`] naming the part):
//!
//! | protocol | broker | default port |
//! |---|---|---|
//! | `nats`, `nats+tls` / `tls` | nats-server (JetStream for `ack=1`) | 4222 |
//! | `nsq` | nsqd (TCP) | 4150 |
//! | `nsqlookupd` | nsqlookupd (HTTP) | 4161 |
//! | `amqp` (`kombu` too), `amqps` | RabbitMQ | 5672 / 5671 |
//!
//! Data types: `pubsub` (default: every receiver gets every message) and
//! `pt2pt` (each message reaches one receiver). Options: `ack=0|1`,
//! `queue=` (the pt2pt group), `exchange=` (AMQP, default `mom`),
//! `stream=` (JetStream, default `MOM`; every sender's routing key and
//! receiver's binding is added to its subjects), `max_in_flight=`,
//! `timeout_ms=`, `outbox=DIR` (NSQ senders, NATS and AMQP `ack=1`
//! senders: a durable on-disk outbox, see [`crate::outbox`]; `stop()`
//! reports what the broker did not confirm), and TLS: `tls_ca=PATH`
//! (CA to trust instead of the system roots), `tls_cert=PATH` +
//! `tls_key=PATH` (client certificate, mutual TLS), `tls_insecure=1`
//! (tests only: accept any server certificate), paths percent-encoded
//! (`%2F` for `/`), for `nats+tls`/`tls`, `amqps` and NSQ (nsqd's TLS
//! upgrade); refused on plain `nats://`/`amqp://` (see [`TlsFiles`]).
//!
//! # The envelope
//!
//! Every message carries: name (the routing key / subject / topic it was
//! sent to), payload, creation timestamp, message id, content type and
//! encoding, compression, and a CRC-32C (Castagnoli, as `crc32c` in
//! Python's `crc32c` package or Go's `crc32.MakeTable(crc32.Castagnoli)`)
//! checked on receipt: a mismatch is [`Error::Corrupted`] and the message
//! is never handed over.
//!
//! ## NATS headers and AMQP properties
//!
//! | field | NATS header | AMQP | value |
//! |---|---|---|---|
//! | name | `Mom-Name` | header `mom-name` (longstr) | UTF-8 |
//! | id | `Mom-Id` (and `Nats-Msg-Id` with `ack=1`) | property `message_id` | 32 lowercase hex digits |
//! | timestamp | `Mom-Timestamp` | header `mom-timestamp` (long, `l`); property `timestamp` in seconds | ms since the Unix epoch, decimal on NATS |
//! | checksum | `Mom-Crc32c` | header `mom-crc32c` (longstr) | CRC-32C of the body **as carried** (after compression), 8 lowercase hex digits |
//! | compression | `Mom-Compression` | header `mom-compression`, and kombu's `compression` (`application/x-gzip`, `application/x-snappy`) | `snappy` (raw snappy), `deflate` (raw RFC 1951), `zlib` (RFC 1950); absent = none |
//! | content type | `Content-Type` | property `content_type` | e.g. `application/json` |
//! | content encoding | `Content-Encoding` | property `content_encoding` | e.g. `utf-8` |
//!
//! The NATS/AMQP body is the (compressed) payload itself.
//!
//! ## NSQ body
//!
//! NSQ has no headers, so the body is an envelope the facade owns
//! (integers big-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `MOM1` (`4D 4F 4D 31`) |
//! | 4 | 4 | CRC-32C of every byte from offset 8 to the end |
//! | 8 | 8 | timestamp, ms since the Unix epoch (u64) |
//! | 16 | 1 | compression: 0 none, 1 snappy, 2 deflate, 3 zlib |
//! | 17 | 1 | name length N |
//! | 18 | N | name (UTF-8) |
//! | 18+N | 1 | id length I, then I bytes of id |
//! | … | 1 | content type length C, then C bytes |
//! | … | 1 | content encoding length E, then E bytes |
//! | … | rest | payload as carried (compressed) |
//!
//! Overhead: 21 bytes plus the four strings (a 10-byte name, 32-byte id,
//! `application/json`, `utf-8`: 84 bytes).
//!
//! # Serializers and compression
//!
//! [`Serializer`]: raw bytes, JSON (serde_json), MessagePack (feature
//! `msgpack`), CBOR (feature `cbor`). [`Compression`]: snappy, deflate,
//! zlib, per message.

mod backend_amqp;
mod backend_nats;
mod backend_nsq;
mod codec;
mod envelope;
mod error;
mod facade;
mod nats_stream;
mod receiver;
mod sender;
mod uri;
#[cfg(test)]
mod uri_tests;

pub use codec::{Compression, Serializer, MAX_DECOMPRESSED};
pub use envelope::{header, Envelope, Text, NSQ_FIXED_LEN, NSQ_MAGIC};
pub use error::Error;
pub use facade::Mom;
pub use receiver::{CancelHandle, Delivery, Receiver, ReceiverOptions};
pub use sender::{SendOptions, Sender, SenderOptions, DEFAULT_SEND_TIMEOUT};
pub use uri::{DataType, MomUri, Protocol, TlsFiles, UriError, UriPart, ACCEPTED_FORMS};
