//! Interoperability with a client no one here wrote: pynsq 0.9.1 (PyPI, on
//! tornado) publishes and courier consumes, and the reverse, on a real
//! nsqd.

mod nsq_support;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use courier::nsq::{Config, Consumer, Producer, ServerNodes};
use nsq_support::{topic, wait_until, Behaviour, Recorder};

const N: usize = 500;

const PYNSQ_PUBLISH: &str = r#"
import sys, nsq, tornado.ioloop
addr, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
loop = tornado.ioloop.IOLoop.current()
w = nsq.Writer([addr])
acked = [0]
def answered(conn, data, count):
    if isinstance(data, nsq.Error) or data is None:
        print("publish failed:", data, flush=True)
        sys.exit(1)
    acked[0] += count
    if acked[0] == n:
        loop.stop()
def go():
    # Half PUB, half MPUB in batches of 10.
    for i in range(n // 2):
        w.pub(topic, ("py-%d" % i).encode(), callback=lambda c, d: answered(c, d, 1))
    for i in range(n // 2, n, 10):
        batch = [("py-%d" % j).encode() for j in range(i, min(i + 10, n))]
        w.mpub(topic, batch, callback=lambda c, d, k=len(batch): answered(c, d, k))
loop.call_later(1.0, go)
loop.call_later(30, loop.stop)
loop.start()
print("published", acked[0], flush=True)
sys.exit(0 if acked[0] == n else 1)
"#;

const PYNSQ_CONSUME: &str = r#"
import sys, nsq, tornado.ioloop
addr, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
loop = tornado.ioloop.IOLoop.current()
seen = []
def handler(message):
    seen.append(message.body.decode())
    if len(seen) >= n:
        loop.call_later(0.5, loop.stop)
    return True
r = nsq.Reader(topic=topic, channel="py", nsqd_tcp_addresses=[addr],
               message_handler=handler, max_in_flight=50)
loop.call_later(30, loop.stop)
loop.start()
for body in seen:
    print(body)
"#;

fn python_available() -> bool {
    Command::new("python3")
        .args(["-c", "import nsq, tornado"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn pynsq_publishes_and_courier_consumes() {
    assert!(
        python_available(),
        "pynsq and tornado must be pip-installed"
    );
    let nsqd = nsq_support::nsqd(&[]);
    let topic = topic("py_to_courier");
    courier::run(async {
        let consumer = Consumer::builder(
            [(topic.as_str(), "ch")],
            ServerNodes::new([nsqd.tcp_addr()]),
            50,
            Recorder::new(Behaviour::default()),
        )
        .start()
        .await
        .unwrap();
        let mut child = Command::new("python3")
            .args([
                "-c",
                PYNSQ_PUBLISH,
                &nsqd.tcp_addr(),
                &topic,
                &N.to_string(),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let rec = consumer.handler();
        assert!(
            wait_until(Duration::from_secs(45), || rec.handled.get() >= N as u64).await,
            "courier consumed {} of {N} pynsq messages",
            rec.handled.get()
        );
        let status = child.wait().unwrap();
        assert!(status.success(), "pynsq publisher failed");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let seen = rec.seen.borrow().clone();
        assert_eq!(seen.len(), N, "no duplicates");
        let bodies: HashSet<Vec<u8>> = seen.iter().map(|s| s.body.clone()).collect();
        let expected: HashSet<Vec<u8>> = (0..N).map(|i| format!("py-{i}").into_bytes()).collect();
        assert_eq!(bodies, expected);
        consumer.stop().await;
    });
}

#[test]
fn courier_publishes_and_pynsq_consumes() {
    assert!(
        python_available(),
        "pynsq and tornado must be pip-installed"
    );
    let nsqd = nsq_support::nsqd(&[]);
    let topic = topic("courier_to_py");
    courier::run(async {
        let producer = Producer::new([nsqd.tcp_addr()], Config::default()).unwrap();
        for i in 0..N / 2 {
            producer
                .publish(&topic, format!("rs-{i}").as_bytes())
                .await
                .unwrap();
        }
        let batch: Vec<Vec<u8>> = (N / 2..N - 1)
            .map(|i| format!("rs-{i}").into_bytes())
            .collect();
        producer.multi_publish(&topic, &batch).await.unwrap();
        producer
            .deferred_publish(
                &topic,
                Duration::from_millis(200),
                format!("rs-{}", N - 1).as_bytes(),
            )
            .await
            .unwrap();
        producer.stop().await;
    });
    let out = Command::new("python3")
        .args([
            "-c",
            PYNSQ_CONSUME,
            &nsqd.tcp_addr(),
            &topic,
            &N.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), N, "pynsq got every message once");
    let got: HashSet<String> = lines.into_iter().collect();
    let expected: HashSet<String> = (0..N).map(|i| format!("rs-{i}")).collect();
    assert_eq!(got, expected);
}
