use super::*;
use crate::nats::info::EssentialInfo;

#[test]
fn publish_only_session_compiles_with_zero_tables() {
    let o = ConnectOptions {
        rx_capacity: 512,
        ..ConnectOptions::default()
    };
    let mut s: Session<[u8; 256], 0, 0> = Session::new(o, [0; 256]);
    assert_eq!(
        s.subscribe("a", None),
        Err(Error::SubscriptionTableFull { capacity: 0 })
    );
    std::println!(
        "Session<[u8; 256], 0, 0> is {} bytes (ConnectOptions {}, ServerInfo {}); \
         Session<[u8; 256], 0, 0, EssentialInfo> is {} bytes (EssentialInfo {})",
        core::mem::size_of::<Session<[u8; 256], 0, 0>>(),
        core::mem::size_of::<ConnectOptions>(),
        core::mem::size_of::<ServerInfo>(),
        core::mem::size_of::<Session<[u8; 256], 0, 0, EssentialInfo>>(),
        core::mem::size_of::<EssentialInfo>(),
    );
}

/// The state a publish-only device carries besides its buffers. Before
/// the shrink it was 2616 bytes (ConnectOptions 992 with three 256-byte
/// credential strings, ServerInfo 1136); the bounds below keep it from
/// growing back unnoticed. It was 720 before the owned-event queue
/// (`poll_event`, two events: +80 bytes); the blocking driver lost its
/// own stored timer event at the same time, so a lean blocking client
/// shrank (5,328 -> 5,288 bytes, `a_lean_publish_only_client_is_much_smaller`).
#[test]
fn publish_only_state_stays_small() {
    type Lean = Session<[u8; 256], 0, 0, EssentialInfo>;
    let state = core::mem::size_of::<Lean>() - 256;
    assert!(
        core::mem::size_of::<ConnectOptions>() <= 480,
        "ConnectOptions grew"
    );
    assert!(state <= 800, "publish-only session state is {state} bytes");
    // And it works: handshake, publish, an INFO update.
    let o = ConnectOptions {
        rx_capacity: 512,
        ..ConnectOptions::default()
    };
    let mut s: Lean = Session::new(o, [0; 256]);
    s.handle_input(
        b"INFO {\"server_id\":\"S\",\"max_payload\":4,\"headers\":false}\r\n",
        Instant::from_millis(0),
    )
    .unwrap();
    let n = s.transmit().len();
    s.transmitted(n);
    s.handle_input(b"PONG\r\n", Instant::from_millis(0))
        .unwrap();
    assert_eq!(s.state(), State::Connected);
    assert!(matches!(s.poll_event(), Some(Event::Connected { .. })));
    assert_eq!(
        s.publish("a", None, None, b"12345"),
        Err(Error::PayloadTooLarge {
            size: 5,
            max_payload: 4
        })
    );
    assert_eq!(
        s.publish("a", None, Some(b"NATS/1.0\r\n\r\n"), b""),
        Err(Error::HeadersNotSupported)
    );
    s.publish("a", None, None, b"1234").unwrap();
    assert_eq!(s.transmit(), b"PUB a 4\r\n1234\r\n");
    let (_, event) = s
        .handle_input(b"INFO {\"ldm\":true}\r\n", Instant::from_millis(0))
        .unwrap();
    assert_eq!(event, None);
    assert_eq!(s.poll_event(), Some(Event::LameDuckMode));
    assert!(s.server_info().unwrap().ldm);
}
