//! JetStream from the blocking embedded-io driver against a real
//! `nats-server -js`: the stream is created with the core's JSON encoder,
//! `js_publish` returns the PubAck, `Nats-Msg-Id` de-duplicates, an
//! expected-sequence mismatch is a typed API error, and the server's own
//! `STREAM.INFO` counts agree.

use std::net::TcpStream;
use std::time::Duration as StdDuration;

use courier_core::drivers::blocking::NatsClient;
use courier_core::drivers::jetstream::JsPublishError;
use courier_core::drivers::{DriverOptions, Error};
use courier_core::nats::jetstream::{
    self, decode_stream_info, encode_json, ApiErrorKind, ApiOp, ApiPrefix, JsError, PublishOptions,
    Storage, StreamConfig,
};
use courier_core::nats::ConnectOptions;
use courier_core::time::Duration;
use courier_tests::host_io::{HostClock, HostTcp};
use courier_tests::jetstream::JetStreamServer;
use embedded_io_adapters::std::FromStd;

type Client = NatsClient<HostTcp, HostClock, [u8; 4096], [u8; 2048], 4, 2>;

fn connect(server: &JetStreamServer) -> Client {
    let stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .set_read_timeout(Some(StdDuration::from_millis(50)))
        .unwrap();
    let mut options = ConnectOptions::default();
    options.inbox_prefix.push_str("_INBOX.jsemb").unwrap();
    let mut client = Client::new(
        HostTcp(FromStd::new(stream)),
        HostClock(std::time::Instant::now()),
        options,
        DriverOptions::default(),
        [0u8; 4096],
        [0u8; 2048],
    );
    client.connect().unwrap();
    client
}

const T: Duration = Duration::from_secs(5);

fn api(client: &mut Client, op: ApiOp<'_>, body: &[u8]) -> Vec<u8> {
    let mut subject = [0u8; 128];
    let subject = op.write(ApiPrefix::Default, &mut subject).unwrap();
    client
        .request(subject, body, T, |reply| reply.payload.to_vec(), |_| {})
        .unwrap()
}

#[test]
fn js_publish_returns_the_pub_ack_and_dedups_by_msg_id() {
    let server = JetStreamServer::start();
    let mut client = connect(&server);

    let mut body = [0u8; 256];
    let config = StreamConfig {
        name: "EMB",
        subjects: &["emb.>"],
        storage: Storage::File,
        ..Default::default()
    };
    let body = encode_json(&config, "stream config", &mut body).unwrap();
    let created = api(&mut client, ApiOp::StreamCreate("EMB"), body);
    assert_eq!(decode_stream_info(&created).unwrap().name, "EMB");

    let none = PublishOptions::default();
    let ack = client
        .js_publish("emb.temp", &none, b"21.5", T, |_| {})
        .unwrap();
    assert_eq!(
        (ack.stream.as_str(), ack.seq, ack.duplicate),
        ("EMB", 1, false)
    );

    let with_id = PublishOptions {
        msg_id: Some("reading-2"),
        ..Default::default()
    };
    let ack = client
        .js_publish("emb.temp", &with_id, b"21.6", T, |_| {})
        .unwrap();
    assert_eq!((ack.seq, ack.duplicate), (2, false));
    // The same id again: acknowledged as a duplicate, not stored twice.
    let ack = client
        .js_publish("emb.temp", &with_id, b"21.6", T, |_| {})
        .unwrap();
    assert_eq!((ack.seq, ack.duplicate), (2, true));

    // A wrong expectation is refused with a typed error and not stored.
    let expect = PublishOptions {
        expected_last_sequence: Some(1),
        ..Default::default()
    };
    match client.js_publish("emb.temp", &expect, b"x", T, |_| {}) {
        Err(JsPublishError::JetStream(JsError::Api(e))) => {
            assert_eq!(e.kind, ApiErrorKind::WrongLastSequence, "{e}")
        }
        other => panic!("expected wrong last sequence, got {other:?}"),
    }
    // A subject no stream stores: no responders, not stored.
    assert!(matches!(
        client.js_publish("nostream.x", &none, b"x", T, |_| {}),
        Err(JsPublishError::Driver(Error::NoResponders))
    ));

    let info = api(&mut client, ApiOp::StreamInfo("EMB"), b"");
    let info = decode_stream_info(&info).unwrap();
    assert_eq!((info.state.messages, info.state.last_seq), (2, 2));

    let missing = api(&mut client, ApiOp::StreamInfo("NOPE"), b"");
    assert_eq!(
        jetstream::decode_stream_info(&missing)
            .unwrap_err()
            .api_kind(),
        Some(ApiErrorKind::StreamNotFound)
    );
}
