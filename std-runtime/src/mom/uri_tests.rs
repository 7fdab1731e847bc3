//! Every URI form of the seed documents and the issue parses as
//! documented; wrong ones fail with the text asserted.

use super::uri::{DataType, MomUri, Protocol, UriPart, ACCEPTED_FORMS};

type Case = (
    &'static str,
    Protocol,
    DataType,
    &'static [(&'static str, u16)],
);

#[test]
fn every_documented_form_parses() {
    let cases: &[Case] = &[
        (
            "kombu://localhost:5672",
            Protocol::Amqp,
            DataType::PubSub,
            &[("localhost", 5672)],
        ),
        (
            "kombu-pubsub://canopsis:canopsis@demo.canopsis.org:5672",
            Protocol::Amqp,
            DataType::PubSub,
            &[("demo.canopsis.org", 5672)],
        ),
        (
            "nats-pt2pt://127.0.0.1:4222",
            Protocol::Nats,
            DataType::Pt2Pt,
            &[("127.0.0.1", 4222)],
        ),
        (
            "amqp-pubsub://guest:guest@127.0.0.1:5672",
            Protocol::Amqp,
            DataType::PubSub,
            &[("127.0.0.1", 5672)],
        ),
        (
            "nats+tls-pubsub://u:p@a:1,b:2/?ack=1",
            Protocol::NatsTls,
            DataType::PubSub,
            &[("a", 1), ("b", 2)],
        ),
        (
            "tls://h",
            Protocol::NatsTls,
            DataType::PubSub,
            &[("h", 4222)],
        ),
        (
            "nsq-pt2pt://h?queue=w",
            Protocol::Nsq,
            DataType::Pt2Pt,
            &[("h", 4150)],
        ),
        (
            "nsqlookupd://h1,h2:9",
            Protocol::NsqLookupd,
            DataType::PubSub,
            &[("h1", 4161), ("h2", 9)],
        ),
        (
            "amqps-pt2pt://h/vh",
            Protocol::Amqps,
            DataType::Pt2Pt,
            &[("h", 5671)],
        ),
        (
            "NATS-PT2PT://[::1]",
            Protocol::Nats,
            DataType::Pt2Pt,
            &[("::1", 4222)],
        ),
    ];
    for (uri, protocol, data_type, hosts) in cases {
        let u = MomUri::parse(uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
        assert_eq!(u.protocol, *protocol, "{uri}");
        assert_eq!(u.data_type, *data_type, "{uri}");
        let want: Vec<(String, u16)> = hosts.iter().map(|(h, p)| (h.to_string(), *p)).collect();
        assert_eq!(u.hosts, want, "{uri}");
    }
    let u =
        MomUri::parse("amqp-pt2pt://h/vh?ack=1&queue=q&exchange=x&max_in_flight=5&timeout_ms=250")
            .unwrap();
    assert_eq!(u.vhost.as_deref(), Some("vh"));
    assert!(u.ack);
    assert_eq!(u.queue.as_deref(), Some("q"));
    assert_eq!(u.exchange.as_deref(), Some("x"));
    assert_eq!(u.max_in_flight, Some(5));
    assert_eq!(u.timeout, Some(std::time::Duration::from_millis(250)));
}

#[test]
fn wrong_uris_say_which_part_and_why() {
    let cases: &[(&str, UriPart, &str)] = &[
        (
            "localhost:5672",
            UriPart::Scheme,
            r#"bad scheme "localhost:5672" in facade URI: no "://" after the scheme"#,
        ),
        (
            "://h",
            UriPart::Protocol,
            r#"bad protocol "" in facade URI: the protocol is required"#,
        ),
        (
            "mqtt://h",
            UriPart::Protocol,
            r#"bad protocol "mqtt" in facade URI: unknown protocol (nats, nats+tls, tls, nsq, nsqlookupd, amqp, amqps, kombu)"#,
        ),
        (
            "kombu-fanout://h",
            UriPart::DataType,
            r#"bad data type "fanout" in facade URI: the data type is pubsub or pt2pt"#,
        ),
        (
            "nats-://h",
            UriPart::DataType,
            r#"bad data type "" in facade URI: the data type is pubsub or pt2pt"#,
        ),
        (
            "nats://",
            UriPart::Host,
            r#"bad host "" in facade URI: at least one host is required"#,
        ),
        (
            "nats://a,,b",
            UriPart::Host,
            r#"bad host "" in facade URI: empty host in the host list"#,
        ),
        (
            "nats://h:0",
            UriPart::Port,
            r#"bad port "0" in facade URI: port 0 is not a server port"#,
        ),
        (
            "nats://h:65536",
            UriPart::Port,
            r#"bad port "65536" in facade URI: a port is a number 1-65535"#,
        ),
        (
            "nats://h:abc",
            UriPart::Port,
            r#"bad port "abc" in facade URI: a port is a number 1-65535"#,
        ),
        (
            "nats://::1:4222",
            UriPart::Host,
            r#"bad host "::1:4222" in facade URI: IPv6 addresses go in brackets"#,
        ),
        (
            "nats://[::1:4222",
            UriPart::Host,
            r#"bad host "[::1:4222" in facade URI: IPv6 address without closing ']'"#,
        ),
        (
            "nats://[zz]:1",
            UriPart::Host,
            r#"bad host "[zz]:1" in facade URI: not an IPv6 address in brackets"#,
        ),
        (
            "nats://@h",
            UriPart::UserInfo,
            r#"bad user info "" in facade URI: empty user before '@'"#,
        ),
        (
            "nats://:pw@h",
            UriPart::UserInfo,
            r#"bad user info ":pw" in facade URI: empty user name"#,
        ),
        (
            "nats://u:%zz@h",
            UriPart::UserInfo,
            r#"bad user info "u:%zz" in facade URI: bad %-escape"#,
        ),
        (
            "nats://h/subject",
            UriPart::Path,
            r#"bad path "subject" in facade URI: only AMQP URIs take a path (the vhost); give NATS subjects and NSQ topics as routing keys"#,
        ),
        (
            "nats://h?ack=yes",
            UriPart::Option,
            r#"bad option "ack=yes" in facade URI: ack is 0 or 1"#,
        ),
        (
            "nats://h?ack",
            UriPart::Option,
            r#"bad option "ack" in facade URI: an option is name=value"#,
        ),
        (
            "nats://h?durable=x",
            UriPart::Option,
            r#"bad option "durable=x" in facade URI: unknown option "durable" (known: ack, queue, exchange, stream, max_in_flight, timeout_ms, outbox, tls_ca, tls_cert, tls_key, tls_insecure)"#,
        ),
        (
            "nsq://h?max_in_flight=0",
            UriPart::Option,
            r#"bad option "max_in_flight=0" in facade URI: max_in_flight must be at least 1"#,
        ),
        (
            "nsq://h?queue=a%20b",
            UriPart::Option,
            r#"bad option "queue=a%20b" in facade URI: a name must be non-empty, without spaces"#,
        ),
        (
            "tls://h?tls_cert=c.pem",
            UriPart::Option,
            r#"bad option "tls_cert" in facade URI: a client certificate needs both tls_cert=PATH and tls_key=PATH"#,
        ),
        (
            "amqp://h?tls_ca=ca.pem",
            UriPart::Option,
            r#"bad option "tls_ca=ca.pem" in facade URI: tls_* options need a TLS protocol: nats+tls:// (or tls://) and amqps:// (NSQ negotiates TLS with nsqd and takes them as they are)"#,
        ),
        (
            "amqps://h?tls_insecure=yes",
            UriPart::Option,
            r#"bad option "tls_insecure=yes" in facade URI: tls_insecure is 0 or 1"#,
        ),
        (
            "amqp://h w",
            UriPart::Host,
            r#"bad host "h w" in facade URI: characters not allowed in a host"#,
        ),
    ];
    for (uri, part, text) in cases {
        let e = MomUri::parse(uri).expect_err(uri);
        assert_eq!(e.part, *part, "{uri}");
        assert_eq!(
            e.to_string(),
            format!("{text}; accepted forms: {ACCEPTED_FORMS}"),
            "{uri}"
        );
    }
}

#[test]
fn tls_options_parse_percent_decoded() {
    let u = MomUri::parse(
        "amqps-pt2pt://u:p@h/%2f?tls_ca=%2Fetc%2Fca.pem&tls_cert=c.pem&tls_key=k.pem&tls_insecure=1",
    )
    .unwrap();
    assert_eq!(
        u.tls,
        crate::mom::TlsFiles {
            ca: Some("/etc/ca.pem".into()),
            cert: Some("c.pem".into()),
            key: Some("k.pem".into()),
            insecure: true,
        }
    );
    // NSQ takes them (nsqd's TLS upgrade); none given: no TLS settings.
    assert!(MomUri::parse("nsq://h?tls_ca=ca.pem").unwrap().tls.any());
    assert!(!MomUri::parse("tls://h").unwrap().tls.any());
    // Read when connecting: a missing file names the option and path.
    let e = MomUri::parse("tls://h?tls_ca=%2Fno%2Fsuch.pem")
        .unwrap()
        .tls_config()
        .unwrap_err();
    assert!(e.to_string().contains("tls_ca=/no/such.pem"), "{e}");
}
