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

/// Feeds `bytes` the way a driver does and renders every event.
fn feed(s: &mut TestSession, bytes: &[u8], now: Instant) -> Result<StdVec<StdString>, Error> {
    let mut events = StdVec::new();
    let mut at = 0;
    loop {
        let (used, event) = s.handle_input(&bytes[at..], now)?;
        let had_event = event.is_some();
        if let Some(e) = event {
            events.push(format!("{e:?}"));
        }
        at += used;
        if used == 0 && !had_event {
            break;
        }
    }
    assert_eq!(at, bytes.len(), "unconsumed: {:?}", &bytes[at..]);
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
