//! Encoder tests: exact bytes, name checks, sizes, no partial command on a full buffer.

use super::*;
use std::vec::Vec;

fn tx() -> TxBuf<[u8; 2048]> {
    TxBuf::new([0u8; 2048])
}

const ID: MessageId = MessageId(*b"0123456789abcdef");

#[test]
fn simple_commands_exact_bytes() {
    let mut t = tx();
    encode_magic(&mut t).unwrap();
    encode_rdy(&mut t, 2500).unwrap();
    encode_fin(&mut t, &ID).unwrap();
    encode_req(&mut t, &ID, 1500).unwrap();
    encode_touch(&mut t, &ID).unwrap();
    encode_cls(&mut t).unwrap();
    encode_nop(&mut t).unwrap();
    encode_sub(&mut t, "events", "archive#ephemeral").unwrap();
    assert_eq!(
        t.pending(),
        &b"  V2RDY 2500\nFIN 0123456789abcdef\nREQ 0123456789abcdef 1500\nTOUCH 0123456789abcdef\nCLS\nNOP\nSUB events archive#ephemeral\n"[..]
    );
}

#[test]
fn auth_is_length_prefixed() {
    let mut t = tx();
    encode_auth(&mut t, b"s3cret").unwrap();
    assert_eq!(t.pending(), b"AUTH\n\x00\x00\x00\x06s3cret");
}

#[test]
fn pub_dpub_exact_bytes() {
    let mut t = tx();
    encode_pub(&mut t, "t", b"hello").unwrap();
    assert_eq!(t.pending(), b"PUB t\n\x00\x00\x00\x05hello");
    t.clear();
    encode_dpub(&mut t, "t", 2000, b"hi").unwrap();
    assert_eq!(t.pending(), b"DPUB t 2000\n\x00\x00\x00\x02hi");
    t.clear();
    encode_pub_header(&mut t, "t", 5).unwrap();
    assert_eq!(t.pending(), b"PUB t\n\x00\x00\x00\x05");
    t.clear();
    encode_dpub_header(&mut t, "t", 0, 1).unwrap();
    assert_eq!(t.pending(), b"DPUB t 0\n\x00\x00\x00\x01");
}

#[test]
fn mpub_exact_bytes_and_vectored_equivalent() {
    let msgs: [&[u8]; 2] = [b"ab", b"cde"];
    let mut t = tx();
    encode_mpub(&mut t, "t", &msgs).unwrap();
    let expected = b"MPUB t\n\x00\x00\x00\x11\x00\x00\x00\x02\x00\x00\x00\x02ab\x00\x00\x00\x03cde";
    assert_eq!(t.pending(), &expected[..]);
    let mut v = tx();
    encode_mpub_header(&mut v, "t", &msgs).unwrap();
    let mut wire: Vec<u8> = v.pending().to_vec();
    for m in msgs {
        wire.extend_from_slice(&mpub_message_prefix(m));
        wire.extend_from_slice(m);
    }
    assert_eq!(wire, &expected[..]);
}

#[test]
fn identify_json_exact() {
    let mut t = tx();
    let id = Identify {
        client_id: Some("dev1"),
        hostname: Some("host"),
        user_agent: Some("courier/0.1"),
        feature_negotiation: true,
        heartbeat_interval: Some(30000),
        tls_v1: false,
        snappy: true,
        msg_timeout: Some(60000),
        ..Identify::default()
    };
    encode_identify(&mut t, &id).unwrap();
    let json = br#"{"client_id":"dev1","hostname":"host","user_agent":"courier/0.1","feature_negotiation":true,"heartbeat_interval":30000,"tls_v1":false,"snappy":true,"deflate":false,"msg_timeout":60000}"#;
    let mut expected = b"IDENTIFY\n".to_vec();
    expected.extend_from_slice(&(json.len() as u32).to_be_bytes());
    expected.extend_from_slice(json);
    assert_eq!(t.pending(), &expected[..]);
}

#[test]
fn identify_all_fields_and_escaping() {
    let mut t = tx();
    let id = Identify {
        client_id: Some("a\"b"),
        hostname: None,
        user_agent: None,
        feature_negotiation: false,
        heartbeat_interval: Some(-1),
        output_buffer_size: Some(16384),
        output_buffer_timeout: Some(250),
        tls_v1: true,
        snappy: false,
        deflate: true,
        deflate_level: Some(6),
        sample_rate: Some(10),
        msg_timeout: None,
    };
    encode_identify(&mut t, &id).unwrap();
    let json = &t.pending()[13..];
    assert_eq!(
        json,
        br#"{"client_id":"a\"b","feature_negotiation":false,"heartbeat_interval":-1,"output_buffer_size":16384,"output_buffer_timeout":250,"tls_v1":true,"snappy":false,"deflate":true,"deflate_level":6,"sample_rate":10}"#
    );
}

#[test]
fn identify_settings_nsqd_rejects_are_refused() {
    let mut t = tx();
    for bad in [
        Identify {
            heartbeat_interval: Some(500),
            ..Identify::default()
        },
        Identify {
            output_buffer_size: Some(10),
            ..Identify::default()
        },
        Identify {
            output_buffer_timeout: Some(-2),
            ..Identify::default()
        },
        Identify {
            sample_rate: Some(100),
            ..Identify::default()
        },
        Identify {
            msg_timeout: Some(999),
            ..Identify::default()
        },
        Identify {
            deflate_level: Some(0),
            ..Identify::default()
        },
        Identify {
            snappy: true,
            deflate: true,
            ..Identify::default()
        },
    ] {
        let e = encode_identify(&mut t, &bad).unwrap_err();
        assert!(matches!(e, CommandError::InvalidIdentify(_)), "{bad:?}");
        assert!(std::format!("{e}").contains("must") || std::format!("{e}").contains("pick one"));
    }
    assert!(t.is_empty());
    for good in [
        Identify {
            heartbeat_interval: Some(-1),
            output_buffer_size: Some(-1),
            output_buffer_timeout: Some(-1),
            ..Identify::default()
        },
        Identify {
            heartbeat_interval: Some(0),
            output_buffer_size: Some(64),
            output_buffer_timeout: Some(1),
            msg_timeout: Some(1000),
            sample_rate: Some(99),
            deflate: true,
            deflate_level: Some(9),
            ..Identify::default()
        },
    ] {
        encode_identify(&mut t, &good).unwrap();
    }
}

#[test]
fn identify_too_large() {
    let long = "x".repeat(2000);
    let mut t = tx();
    let id = Identify {
        client_id: Some(&long),
        ..Identify::default()
    };
    assert_eq!(
        encode_identify(&mut t, &id),
        Err(CommandError::IdentifyTooLarge)
    );
    assert!(t.is_empty());
}

#[test]
fn names_validated_before_writing() {
    let mut t = tx();
    let e = encode_pub(&mut t, "bad!topic", b"x").unwrap_err();
    assert_eq!(
        e,
        CommandError::InvalidName(NameError {
            kind: NameKind::Topic,
            problem: NameProblem::InvalidByte { byte: b'!', at: 3 }
        })
    );
    let e = encode_sub(&mut t, "ok", "").unwrap_err();
    assert_eq!(
        e,
        CommandError::InvalidName(NameError {
            kind: NameKind::Channel,
            problem: NameProblem::Empty
        })
    );
    assert!(t.is_empty());
    let sixty_five = "a".repeat(65);
    assert!(validate_name(&sixty_five, NameKind::Topic).is_err());
    assert!(validate_name(&"a".repeat(64), NameKind::Topic).is_ok());
    assert!(validate_name(
        &std::format!("{}#ephemeral", "a".repeat(54)),
        NameKind::Topic
    )
    .is_ok());
    assert!(validate_name(
        &std::format!("{}#ephemeral", "a".repeat(55)),
        NameKind::Topic
    )
    .is_err());
    assert!(validate_name("#ephemeral", NameKind::Channel).is_err());
    assert!(validate_name("a#b", NameKind::Channel).is_err());
    assert!(validate_name("A.b_c-9", NameKind::Channel).is_ok());
    let text = std::format!("{}", validate_name("a b", NameKind::Channel).unwrap_err());
    assert!(
        text.contains("channel") && text.contains("[.a-zA-Z0-9_-]"),
        "{text}"
    );
}

#[test]
fn empty_bodies_refused() {
    let mut t = tx();
    assert_eq!(
        encode_pub(&mut t, "t", b""),
        Err(CommandError::EmptyMessage)
    );
    assert_eq!(
        encode_dpub(&mut t, "t", 1, b""),
        Err(CommandError::EmptyMessage)
    );
    assert_eq!(encode_mpub(&mut t, "t", &[]), Err(CommandError::EmptyBatch));
    assert_eq!(
        encode_mpub(&mut t, "t", &[b"a", b""]),
        Err(CommandError::EmptyMessage)
    );
    assert!(t.is_empty());
}

#[test]
fn full_buffer_writes_nothing() {
    let mut t = TxBuf::new([0u8; 12]);
    encode_nop(&mut t).unwrap();
    let e = encode_pub(&mut t, "t", b"hello").unwrap_err();
    assert_eq!(
        e,
        CommandError::Capacity(CapacityError {
            needed: 4 + 15,
            capacity: 12
        })
    );
    assert_eq!(t.pending(), b"NOP\n");
    assert!(matches!(
        encode_mpub(&mut t, "t", &[b"123456789"]),
        Err(CommandError::Capacity(_))
    ));
}
