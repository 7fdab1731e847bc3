//! Fuzz target bodies for courier's parsers and session state machines
//! (NATS, NSQ, AMQP 0-9-1).
//!
//! Each `pub fn` takes the raw bytes libFuzzer generates and panics only when
//! an invariant is broken. The cargo-fuzz binaries in `fuzz/fuzz_targets/`
//! call these, and `tests/replay.rs` replays every corpus and regression file
//! through them on the stable toolchain, so a crash once found stays fixed.
//!
//! Invariants checked across the targets:
//! - no panic, no out-of-bounds (all slicing is checked by Rust);
//! - every input either makes progress (consumes bytes, emits an event) or
//!   returns a typed error: a full receive buffer that the parser answers
//!   with "need more bytes" is a stall, and fails the target;
//! - a frame split at any point parses as it does whole;
//! - what a session asks to transmit never exceeds its transmit buffer;
//! - timers move forward: after `handle_timeout(now)` the next deadline is
//!   later than `now`;
//! - bookkeeping matches a model (NSQ publish results in order, each once;
//!   the RDY controller's in-flight count and `max_in_flight`).

pub mod amqp_frame;
pub mod amqp_session;
pub mod harness;
pub mod nats_parsers;
pub mod nats_session;
pub mod nsq_parsers;
pub mod nsq_session;
pub mod rdy;
pub mod url;

/// A fuzz target body.
pub type Target = fn(&[u8]);

/// Every target by name, as the fuzz binaries and corpus folders name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("nats_parser", nats_parsers::nats_parser),
    ("nats_headers", nats_parsers::nats_headers),
    ("nats_info", nats_parsers::nats_info),
    ("nsq_frame", nsq_parsers::nsq_frame),
    ("nsq_response", nsq_parsers::nsq_response),
    ("url", url::url),
    ("nats_session", nats_session::nats_session),
    ("nsq_session", nsq_session::nsq_session),
    ("rdy", rdy::rdy),
    ("amqp_frame", amqp_frame::amqp_frame),
    ("amqp_session", amqp_session::amqp_session),
];

/// Splits a stateful target's input into an operation script (for
/// `arbitrary`) and a stream of server bytes: the first two bytes give the
/// script's length (little endian). A seed that is a raw server capture
/// prefixed with `[0, 0]` therefore replays that capture as one connection.
pub fn split_script(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return (&[], data);
    };
    let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
    rest.split_at(len)
}

/// Takes up to `n` bytes from the front of a server byte stream.
pub fn take<'a>(stream: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (head, tail) = stream.split_at(n.min(stream.len()));
    *stream = tail;
    head
}

/// `FUZZ_TRACE=1` makes the stateful targets print each operation (to read
/// a crash: `FUZZ_TRACE=1 fuzz/target/*/release/<target> <crash file>`).
pub fn trace() -> bool {
    std::env::var_os("FUZZ_TRACE").is_some()
}
