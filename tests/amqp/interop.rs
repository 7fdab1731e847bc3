//! Interoperability with clients no one here wrote, on a real RabbitMQ:
//! Python kombu 5.5.4 (the canopsis seed's own library, on py-amqp) and
//! pika 1.3.2 publish to courier and consume from courier, with content
//! type, headers and correlation ids intact.

use std::process::{Command, Output};
use std::time::Duration;

use courier::amqp::{Channel, Connection, DeclareOptions};
use courier_core::amqp::{ConsumeFlags, FieldTable, FieldValue, Properties, TableBuilder};
use courier_tests::RabbitMq;

const N: u32 = 100;

const KOMBU_PUBLISH: &str = r#"
import sys
from kombu import Connection, Exchange, Producer
url, n = sys.argv[1], int(sys.argv[2])
with Connection(url) as conn:
    ex = Exchange("canopsis", type="topic")
    producer = Producer(conn.channel(), exchange=ex, serializer="json")
    for i in range(n):
        producer.publish({"i": i, "src": "kombu"}, routing_key="events.kombu",
                         headers={"x-src": "kombu", "n": i}, correlation_id="k-%d" % i,
                         declare=[ex])
print("published", n)
"#;

const KOMBU_CONSUME: &str = r#"
import sys, json
from kombu import Connection, Queue
url, n = sys.argv[1], int(sys.argv[2])
out = []
def cb(body, message):
    out.append({"body": body, "content_type": message.content_type,
                "headers": message.headers, "correlation_id": message.properties.get("correlation_id")})
    message.ack()
with Connection(url) as conn:
    q = Queue("to-kombu", no_declare=True)
    with conn.Consumer(q, callbacks=[cb], accept=["json"]):
        while len(out) < n:
            conn.drain_events(timeout=20)
for o in out:
    print(json.dumps(o))
"#;

const PIKA_PUBLISH: &str = r#"
import sys, pika
url, n = sys.argv[1], int(sys.argv[2])
conn = pika.BlockingConnection(pika.URLParameters(url))
ch = conn.channel()
ch.confirm_delivery()
for i in range(n):
    ch.basic_publish("canopsis", "events.pika", ("pika-%d" % i).encode(),
                     pika.BasicProperties(content_type="text/plain", headers={"x-src": "pika", "n": i},
                                          correlation_id="p-%d" % i))
conn.close()
print("published", n)
"#;

const PIKA_CONSUME: &str = r#"
import sys, json, pika
url, n = sys.argv[1], int(sys.argv[2])
conn = pika.BlockingConnection(pika.URLParameters(url))
ch = conn.channel()
count = 0
for method, props, body in ch.consume("to-pika", inactivity_timeout=20):
    if method is None:
        break
    print(json.dumps({"body": body.decode(), "content_type": props.content_type,
                      "headers": props.headers, "correlation_id": props.correlation_id}))
    ch.basic_ack(method.delivery_tag)
    count += 1
    if count == n:
        break
conn.close()
"#;

/// Runs a Python script on a thread while the runtime keeps the courier
/// connection served (heartbeats); returns its output.
async fn python(script: &'static str, url: String) -> Output {
    let handle = std::thread::spawn(move || {
        Command::new("python3")
            .args(["-c", script, &url, &N.to_string()])
            .output()
            .expect("run python3 (scripts/setup.sh installs kombu and pika)")
    });
    while !handle.is_finished() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = handle.join().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

async fn setup(vh: &str) -> (Connection, Channel) {
    let conn = Connection::connect(&RabbitMq::shared().url(vh))
        .await
        .unwrap();
    let ch = conn.channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let durable = DeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.exchange_declare("canopsis", "topic", durable)
        .await
        .unwrap();
    (conn, ch)
}

async fn consume_from_python(ch: &Channel, queue: &str, key: &str) -> Vec<courier::amqp::Message> {
    let mut c = ch.consume(queue, ConsumeFlags::default()).await.unwrap();
    let mut got = Vec::new();
    while got.len() < N as usize {
        let m = tokio::time::timeout(Duration::from_secs(20), c.next())
            .await
            .expect("message")
            .expect("open")
            .expect("ok");
        assert_eq!(m.routing_key, key);
        m.ack().unwrap();
        got.push(m);
    }
    got
}

#[test]
fn kombu_and_pika_publish_to_courier_with_properties_intact() {
    let vh = RabbitMq::shared().vhost("interop-in");
    courier::run(async {
        let (conn, ch) = setup(&vh).await;
        for (q, key) in [("from-kombu", "events.kombu"), ("from-pika", "events.pika")] {
            ch.queue_declare(q, DeclareOptions::default(), FieldTable::EMPTY)
                .await
                .unwrap();
            ch.queue_bind(q, "canopsis", key, FieldTable::EMPTY)
                .await
                .unwrap();
        }
        let url = RabbitMq::shared().url(&vh);
        python(KOMBU_PUBLISH, url.clone()).await;
        python(PIKA_PUBLISH, url).await;
        let kombu = consume_from_python(&ch, "from-kombu", "events.kombu").await;
        for (i, m) in kombu.iter().enumerate() {
            let body: serde_json::Value = serde_json::from_slice(&m.body).unwrap();
            assert_eq!(body, serde_json::json!({"i": i, "src": "kombu"}));
            assert_eq!(
                m.properties.content_type.as_deref(),
                Some("application/json")
            );
            assert_eq!(m.properties.content_encoding.as_deref(), Some("utf-8"));
            assert_eq!(
                m.properties.correlation_id.as_deref(),
                Some(format!("k-{i}").as_str())
            );
            assert_eq!(
                m.properties.header("x-src").and_then(|v| v.as_str()),
                Some("kombu")
            );
            assert_eq!(
                m.properties.header("n").and_then(|v| v.as_i64()),
                Some(i as i64)
            );
        }
        let pika = consume_from_python(&ch, "from-pika", "events.pika").await;
        for (i, m) in pika.iter().enumerate() {
            assert_eq!(m.body, format!("pika-{i}").as_bytes());
            assert_eq!(m.properties.content_type.as_deref(), Some("text/plain"));
            assert_eq!(
                m.properties.correlation_id.as_deref(),
                Some(format!("p-{i}").as_str())
            );
            assert_eq!(
                m.properties.header("x-src").and_then(|v| v.as_str()),
                Some("pika")
            );
            assert_eq!(
                m.properties.header("n").and_then(|v| v.as_i64()),
                Some(i as i64)
            );
        }
        conn.flush().await.unwrap();
        conn.close().await.unwrap();
    });
}

#[test]
fn kombu_and_pika_consume_from_courier_with_properties_intact() {
    let vh = RabbitMq::shared().vhost("interop-out");
    courier::run(async {
        let (conn, ch) = setup(&vh).await;
        for (q, key) in [("to-kombu", "to.kombu"), ("to-pika", "to.pika")] {
            ch.queue_declare(q, DeclareOptions::default(), FieldTable::EMPTY)
                .await
                .unwrap();
            ch.queue_bind(q, "canopsis", key, FieldTable::EMPTY)
                .await
                .unwrap();
        }
        for key in ["to.kombu", "to.pika"] {
            for i in 0..N {
                let corr = format!("c-{i}");
                let body = format!(r#"{{"i": {i}, "src": "courier"}}"#);
                let mut hb = [0u8; 64];
                let mut h = TableBuilder::new(&mut hb);
                h.insert_str("x-src", "courier")
                    .insert("n", FieldValue::I32(i as i32));
                let props = Properties::default()
                    .content_type("application/json")
                    .content_encoding("utf-8")
                    .correlation_id(&corr)
                    .headers(h.finish().unwrap());
                ch.publish("canopsis", key, &props, body.as_bytes())
                    .await
                    .unwrap();
            }
        }
        let url = RabbitMq::shared().url(&vh);
        for (script, decoded) in [(KOMBU_CONSUME, true), (PIKA_CONSUME, false)] {
            let out = python(script, url.clone()).await;
            let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(lines.len(), N as usize);
            for (i, l) in lines.iter().enumerate() {
                let expected = serde_json::json!({"i": i, "src": "courier"});
                if decoded {
                    // kombu decoded the JSON by its content type.
                    assert_eq!(l["body"], expected);
                } else {
                    let body: serde_json::Value =
                        serde_json::from_str(l["body"].as_str().unwrap()).unwrap();
                    assert_eq!(body, expected);
                }
                assert_eq!(l["content_type"], "application/json");
                assert_eq!(l["correlation_id"], format!("c-{i}"));
                assert_eq!(l["headers"]["x-src"], "courier");
                assert_eq!(l["headers"]["n"], i);
            }
        }
        conn.close().await.unwrap();
    });
}
