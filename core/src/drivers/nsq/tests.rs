//! The NSQ blocking driver fed byte vectors through an in-memory transport.

use std::vec::Vec;

use super::blocking::NsqClient;
use super::{Error, Incoming, Wait};
use crate::drivers::{Clock, DriverOptions};
use crate::nsq::Identify;
use crate::time::{Duration, Instant};

/// Serves `script` in reads of at most `chunk` bytes, then times out;
/// records every byte written.
struct Script {
    input: Vec<u8>,
    at: usize,
    chunk: usize,
    written: Vec<u8>,
}

impl Script {
    fn new(input: &[u8], chunk: usize) -> Self {
        Script {
            input: input.to_vec(),
            at: 0,
            chunk,
            written: Vec::new(),
        }
    }
}

impl embedded_io::ErrorType for Script {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for Script {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let n = (self.input.len() - self.at).min(buf.len()).min(self.chunk);
        if n == 0 {
            return Err(embedded_io::ErrorKind::TimedOut);
        }
        buf[..n].copy_from_slice(&self.input[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl embedded_io::Write for Script {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Each call is 100 ms later than the previous one.
struct Ticking(core::cell::Cell<u64>);

impl Clock for Ticking {
    fn now(&self) -> Instant {
        let t = self.0.get();
        self.0.set(t + 100);
        Instant::from_millis(t)
    }
}

fn frame(kind: i32, data: &[u8]) -> Vec<u8> {
    let mut f = ((data.len() + 4) as i32).to_be_bytes().to_vec();
    f.extend_from_slice(&kind.to_be_bytes());
    f.extend_from_slice(data);
    f
}

fn message(id: &[u8; 16], body: &[u8]) -> Vec<u8> {
    let mut data = 7i64.to_be_bytes().to_vec();
    data.extend_from_slice(&1u16.to_be_bytes());
    data.extend_from_slice(id);
    data.extend_from_slice(body);
    frame(2, &data)
}

type Client = NsqClient<'static, Script, Ticking, [u8; 128], [u8; 128], 4>;

fn client(input: &[u8], chunk: usize) -> Client {
    NsqClient::new(
        Script::new(input, chunk),
        Ticking(core::cell::Cell::new(0)),
        Identify::default(),
        DriverOptions::default(),
        [0; 128],
        [0; 128],
    )
    .unwrap()
}

#[test]
fn publish_consume_fin_and_heartbeat_bytes_split_anywhere() {
    let mut input = frame(0, b"OK"); // IDENTIFY without negotiation
    input.extend(frame(0, b"OK")); // PUB
    input.extend(frame(0, b"OK")); // SUB
    input.extend(frame(0, b"_heartbeat_"));
    input.extend(message(b"0123456789abcdef", b"hello"));
    for chunk in [1, 3, 7, 64] {
        let mut c = client(&input, chunk);
        c.connect().unwrap();
        c.publish("t", b"21.5").unwrap();
        c.subscribe("t", "ch").unwrap();
        c.ready(1).unwrap();
        let mut got = None;
        for _ in 0..200 {
            match c.next_event().unwrap() {
                Some(Incoming::Message(m)) => {
                    got = Some((m.id, m.body.to_vec()));
                    break;
                }
                _ => continue,
            }
        }
        let (id, body) = got.expect("the message");
        assert_eq!(body, b"hello");
        c.fin(&id).unwrap();
        let written = &c.transport_mut().written;
        let mut want = b"  V2IDENTIFY\n".to_vec();
        let json_len = u32::from_be_bytes(written[13..17].try_into().unwrap()) as usize;
        want.extend_from_slice(&written[13..17 + json_len]);
        want.extend_from_slice(
            b"PUB t\n\x00\x00\x00\x0421.5SUB t ch\nRDY 1\nNOP\nFIN 0123456789abcdef\n",
        );
        assert_eq!(written, &want, "chunk {chunk}");
    }
}

#[test]
fn a_corrupt_frame_is_fatal_and_the_client_stays_disconnected() {
    let mut input = frame(0, b"OK");
    input.extend_from_slice(&(-5i32).to_be_bytes());
    input.extend_from_slice(b"garbage");
    let mut c = client(&input, 64);
    c.connect().unwrap();
    let e = loop {
        match c.next_event() {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert!(matches!(e, Error::Nsq(_)) && e.is_fatal(), "{e:?}");
    assert!(matches!(c.next_event(), Err(Error::Disconnected)));
    assert!(matches!(c.publish("t", b"x"), Err(Error::Disconnected)));
}

#[test]
fn a_frame_stalled_midway_is_reported_and_a_silent_peer_times_out_connect() {
    let mut input = frame(0, b"OK");
    input.extend_from_slice(&frame(0, b"OK")[..6]);
    let mut c = client(&input, 64);
    c.connect().unwrap();
    let e = loop {
        match c.next_event() {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    match e {
        Error::Stalled { buffered, waited } => {
            assert_eq!(buffered, 6);
            assert!(waited >= Duration::from_secs(10), "{waited:?}");
        }
        other => panic!("expected Stalled, got {other:?}"),
    }
    let mut c = client(b"", 64);
    let e = c.connect().unwrap_err();
    assert!(
        matches!(e, Error::TimedOut(Wait::Connect)) && e.is_fatal(),
        "{e:?}"
    );
}

#[test]
fn negotiated_tls_or_compression_is_refused_not_misread() {
    let json = br#"{"max_rdy_count":2500,"version":"1.3.0","deflate":true,"deflate_level":6}"#;
    let mut c: Client = NsqClient::new(
        Script::new(&frame(0, json), 64),
        Ticking(core::cell::Cell::new(0)),
        Identify {
            feature_negotiation: true,
            deflate: true,
            ..Identify::default()
        },
        DriverOptions::default(),
        [0; 128],
        [0; 128],
    )
    .unwrap();
    let e = c.connect().unwrap_err();
    assert!(matches!(e, Error::Unsupported("DEFLATE")), "{e:?}");
    assert!(matches!(c.publish("t", b"x"), Err(Error::Disconnected)));
}
