//! Snappy, DEFLATE, TLS, TLS+snappy, TLS+deflate and mutual TLS against a
//! real nsqd (certificates generated with rcgen), each carrying 1k
//! messages through courier's producer and consumer; a wrong CA and a
//! missing client certificate are refused with clear errors.

mod nsq_support;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use courier::nsq::{Callbacks, ConnInfo};
use courier_core::nsq::IdentifyResponse;

use courier::nsq::{Compression, Config, Consumer, Error, Producer, ServerNodes, TlsConfig};
use nsq_support::{generate_certs, topic, wait_until, Behaviour, Certs, Recorder};

const N: usize = 1000;

fn tls_args(certs: &Certs, mutual: bool) -> Vec<String> {
    let mut args = vec![
        format!("--tls-cert={}", certs.server_cert.display()),
        format!("--tls-key={}", certs.server_key.display()),
        format!("--tls-root-ca-file={}", certs.ca_file.display()),
        "--tls-required=true".to_string(),
        // nsqd opens an HTTPS listener (default :4152) when it has a
        // certificate; give each test its own port.
        format!("--https-address=127.0.0.1:{}", courier_tests::free_port()),
    ];
    if mutual {
        args.push("--tls-client-auth-policy=require-verify".to_string());
    }
    args
}

fn tls_config(certs: &Certs, client_cert: bool) -> TlsConfig {
    let tls = TlsConfig::new().ca_pem(certs.ca_pem.as_bytes()).unwrap();
    if client_cert {
        tls.client_cert_pem(
            certs.client_cert_pem.as_bytes(),
            certs.client_key_pem.as_bytes(),
        )
        .unwrap()
    } else {
        tls
    }
}

/// Records what nsqd negotiated on each connection.
#[derive(Default)]
struct Negotiated(RefCell<Vec<(bool, bool, bool)>>);

impl Callbacks for Negotiated {
    fn identify(&self, _: &ConnInfo, n: Option<&IdentifyResponse>) {
        let n = n.expect("feature negotiation answered with JSON");
        self.0.borrow_mut().push((n.tls_v1, n.snappy, n.deflate));
    }
}

/// Publishes N messages (PUB, MPUB) and consumes them with `config`;
/// asserts each arrives once, that nsqd negotiated `(tls, snappy,
/// deflate)` on every connection and (without TLS, where nsqd's HTTP stats
/// are open) that nsqd's stats show the features in `expect`.
fn carry_1k(nsqd_args: &[String], config: Config, expect: &[&str]) {
    let tls = config.tls.is_some();
    let features = (
        tls,
        config.compression == Compression::Snappy,
        matches!(config.compression, Compression::Deflate { .. }),
    );
    let args: Vec<&str> = nsqd_args.iter().map(|s| s.as_str()).collect();
    let nsqd = nsq_support::nsqd(&args);
    let topic = topic("layers");
    courier::run(async {
        let negotiated = Rc::new(Negotiated::default());
        let consumer = Consumer::builder(
            [(topic.as_str(), "ch")],
            ServerNodes::new([nsqd.tcp_addr()]),
            100,
            Recorder::new(Behaviour {
                count_only: true,
                ..Default::default()
            }),
        )
        .config(config.clone())
        .callbacks(negotiated.clone())
        .start()
        .await
        .expect("consumer connects");
        let producer =
            Producer::with_callbacks([nsqd.tcp_addr()], config, negotiated.clone()).unwrap();
        // Half single PUBs, half MPUB batches, with bodies that compress
        // (repeated text) and bigger ones that span snappy chunks.
        for i in 0..N / 2 {
            let body = format!("message {i} {}", "payload ".repeat(i % 50));
            producer.publish(&topic, body.as_bytes()).await.unwrap();
        }
        let rest: Vec<Vec<u8>> = (N / 2..N)
            .map(|i| {
                let mut b = format!("message {i} ").into_bytes();
                b.extend(std::iter::repeat_n((i % 251) as u8, (i % 7) * 20_000));
                b
            })
            .collect();
        for batch in rest.chunks(50) {
            producer.multi_publish(&topic, batch).await.unwrap();
        }
        let rec = consumer.handler();
        assert!(
            wait_until(Duration::from_secs(60), || rec.handled.get() >= N as u64).await,
            "consumed {} of {N}",
            rec.handled.get()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        {
            let counts = rec.counts.borrow();
            assert_eq!(counts.len(), N);
            assert!(counts.values().all(|&n| n == 1));
            for (i, body) in rest.iter().enumerate().take(20) {
                assert!(
                    counts.contains_key(&("ch".to_string(), body.clone())),
                    "MPUB body {i} arrived intact"
                );
            }
        }
        assert_eq!(
            negotiated.0.borrow().clone(),
            vec![features, features],
            "consumer and producer connections negotiated (tls, snappy, deflate)"
        );
        if !tls {
            // nsqd's stats say how its clients are connected.
            let stats = nsqd.http_get(&format!("/stats?format=json&topic={topic}"));
            for feature in expect {
                assert!(
                    stats.contains(feature),
                    "nsqd stats lack {feature}: {stats}"
                );
            }
        }
        consumer.stop().await;
        producer.stop().await;
    });
}

#[test]
fn snappy_carries_1k_messages() {
    let config = Config {
        compression: Compression::Snappy,
        ..Config::default()
    };
    carry_1k(
        &["--snappy=true".to_string()],
        config,
        &[r#""snappy":true"#],
    );
}

#[test]
fn deflate_carries_1k_messages() {
    let config = Config {
        compression: Compression::Deflate { level: 6 },
        ..Config::default()
    };
    carry_1k(&[], config, &[r#""deflate":true"#]);
}

#[test]
fn tls_carries_1k_messages() {
    let certs = generate_certs();
    let config = Config {
        tls: Some(tls_config(&certs, false)),
        ..Config::default()
    };
    carry_1k(&tls_args(&certs, false), config, &[r#""tls":true"#]);
}

#[test]
fn tls_with_snappy_carries_1k_messages() {
    let certs = generate_certs();
    let config = Config {
        tls: Some(tls_config(&certs, false)),
        compression: Compression::Snappy,
        ..Config::default()
    };
    carry_1k(
        &tls_args(&certs, false),
        config,
        &[r#""tls":true"#, r#""snappy":true"#],
    );
}

#[test]
fn tls_with_deflate_carries_1k_messages() {
    let certs = generate_certs();
    let config = Config {
        tls: Some(tls_config(&certs, false)),
        compression: Compression::Deflate { level: 3 },
        ..Config::default()
    };
    carry_1k(
        &tls_args(&certs, false),
        config,
        &[r#""tls":true"#, r#""deflate":true"#],
    );
}

#[test]
fn mutual_tls_carries_1k_messages() {
    let certs = generate_certs();
    let config = Config {
        tls: Some(tls_config(&certs, true)),
        ..Config::default()
    };
    carry_1k(&tls_args(&certs, true), config, &[r#""tls":true"#]);
}

#[test]
fn a_wrong_ca_is_refused_with_a_clear_error() {
    let certs = generate_certs();
    let other = generate_certs();
    let args = tls_args(&certs, false);
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let nsqd = nsq_support::nsqd(&args);
    courier::run(async {
        let config = Config {
            tls: Some(TlsConfig::new().ca_pem(other.ca_pem.as_bytes()).unwrap()),
            ..Config::default()
        };
        let producer = Producer::new([nsqd.tcp_addr()], config.clone()).unwrap();
        let e = producer.publish("t", b"x").await.unwrap_err();
        let text = e.to_string();
        // The typed TLS error, not Unreachable: retrying will not help and
        // the caller (the CLI) names the fix.
        assert!(matches!(e, Error::Layer(_)), "{e:?}");
        assert!(
            text.contains("certificate was refused") && text.contains("CA"),
            "unclear error: {text}"
        );
        let e = match Consumer::builder(
            [("t", "c")],
            ServerNodes::new([nsqd.tcp_addr()]),
            1,
            Recorder::default(),
        )
        .config(config)
        .start()
        .await
        {
            Ok(_) => panic!("a consumer with the wrong CA connected"),
            Err(e) => e,
        };
        assert!(e.to_string().contains("certificate was refused"), "{e}");
    });
}

#[test]
fn a_missing_client_certificate_is_refused_when_nsqd_requires_one() {
    let certs = generate_certs();
    let args = tls_args(&certs, true);
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let nsqd = nsq_support::nsqd(&args);
    courier::run(async {
        let config = Config {
            tls: Some(tls_config(&certs, false)),
            ..Config::default()
        };
        let producer = Producer::new([nsqd.tcp_addr()], config).unwrap();
        let e = producer.publish("t", b"x").await.unwrap_err();
        assert!(matches!(e, Error::Layer(_)), "{e:?}");
        assert!(e.to_string().contains("client_cert_pem"), "{e}");
    });
}

#[test]
fn plaintext_is_refused_by_an_nsqd_that_requires_tls() {
    let certs = generate_certs();
    let args = tls_args(&certs, false);
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let nsqd = nsq_support::nsqd(&args);
    courier::run(async {
        let producer = Producer::new([nsqd.tcp_addr()], Config::default()).unwrap();
        let e = producer.publish("t", b"x").await.unwrap_err();
        assert!(e.to_string().contains("E_INVALID"), "{e}");
    });
}

#[test]
fn tls_configured_but_not_offered_is_refused_not_downgraded() {
    let certs = generate_certs();
    let nsqd = nsq_support::nsqd(&[]);
    courier::run(async {
        let config = Config {
            tls: Some(tls_config(&certs, false)),
            ..Config::default()
        };
        let producer = Producer::new([nsqd.tcp_addr()], config).unwrap();
        let e = producer.publish("t", b"x").await.unwrap_err();
        assert!(
            e.to_string().contains("refusing to continue in plaintext"),
            "{e}"
        );
    });
}
