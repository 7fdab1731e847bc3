//! Byte-vector tests of the session: feed server bytes, assert the client's
//! bytes and events.

mod handshake;
mod inbound;
mod publish;
mod reconnect;
mod requests;
mod size;
mod split;
mod subscriptions;
mod timers;

use super::handshake::HANDSHAKE_SLACK;
use super::*;
use crate::buf::CapacityError;
use crate::nats::error::{ServerErrorKind, SubjectError};
use crate::nats::headers::HeaderWriter;
use crate::nats::ids::{PingId, RequestId};
use crate::time::Duration;
use proptest::prelude::*;
use std::format;
use std::string::String as StdString;
use std::vec::Vec as StdVec;

type TestSession = Session<[u8; 1024], 4, 2>;
const INFO: &[u8] = b"INFO {\"server_id\":\"S\",\"version\":\"2.15.1\",\"headers\":true,\"max_payload\":1048576,\"proto\":1}\r\n";
const T0: Instant = Instant::from_millis(1_000);

fn options() -> ConnectOptions {
    let mut o = ConnectOptions {
        rx_capacity: 2 * 1024 * 1024,
        ..ConnectOptions::default()
    };
    set_str(&mut o.inbox_prefix, "_INBOX.t").unwrap();
    o
}

fn take(s: &mut TestSession) -> StdString {
    let out = StdString::from_utf8_lossy(s.transmit()).into_owned();
    let n = s.transmit().len();
    s.transmitted(n);
    out
}

/// Feeds `bytes` the way a driver does (owned events polled before each
/// `handle_input`) and renders everything that came out, in order.
fn feed(s: &mut TestSession, bytes: &[u8], now: Instant) -> Result<StdVec<StdString>, Error> {
    let mut events = StdVec::new();
    let mut at = 0;
    loop {
        let polled = poll_all(s, &mut events);
        let (used, received) = s.handle_input(&bytes[at..], now)?;
        let had_received = received.is_some();
        if let Some(r) = received {
            events.push(format!("{r:?}"));
        }
        at += used;
        if used == 0 && !had_received && polled == 0 {
            break;
        }
    }
    assert_eq!(at, bytes.len(), "unconsumed: {:?}", &bytes[at..]);
    Ok(events)
}

/// Renders the owned events waiting in the session into `events`; returns
/// how many there were.
fn poll_all<S: AsRef<[u8]> + AsMut<[u8]>, const SUBS: usize, const REQS: usize>(
    s: &mut Session<S, SUBS, REQS>,
    events: &mut StdVec<StdString>,
) -> usize {
    let before = events.len();
    while let Some(e) = s.poll_event() {
        events.push(format!("{e:?}"));
    }
    events.len() - before
}

/// Runs the timers at `now` and renders the events they made.
fn timeout_events(s: &mut TestSession, now: Instant) -> Result<StdVec<StdString>, Error> {
    s.handle_timeout(now)?;
    let mut events = StdVec::new();
    poll_all(s, &mut events);
    Ok(events)
}

fn connected() -> TestSession {
    let mut s = TestSession::new(options(), [0; 1024]);
    feed(&mut s, INFO, T0).unwrap();
    take(&mut s);
    feed(&mut s, b"PONG\r\n", T0).unwrap();
    assert_eq!(s.state(), State::Connected);
    s
}

fn feed_small(s: &mut Session<[u8; 256], 4, 2>, bytes: &[u8]) {
    let (used, _) = s.handle_input(bytes, T0).unwrap();
    assert_eq!(used, bytes.len());
}
