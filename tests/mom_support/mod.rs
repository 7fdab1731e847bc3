//! Scenarios every facade backend passes, against a real broker: the
//! backend test files (mom_nats.rs, mom_nsq.rs, mom_amqp.rs) give a URI
//! maker and run them.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use courier::mom::{
    Compression, Error, Mom, Receiver, ReceiverOptions, SendOptions, Sender, SenderOptions,
    Serializer,
};
use serde::{Deserialize, Serialize};

mod outbox;
#[allow(unused_imports)] // mom_nsq and mom_perf use none of it
pub use outbox::*;

/// Builds a URI for a data type (`pubsub`/`pt2pt`) and a query (`ack=1&...`).
pub type UriFn<'a> = &'a dyn Fn(&str, &str) -> String;

/// A name unique in this process: letters, digits and `_` only (valid as
/// a NATS subject, an NSQ topic and an AMQP routing key).
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub async fn sender(uri: &str, key: &str) -> Sender {
    Sender::connect(
        "s",
        uri,
        SenderOptions {
            routing_key: Some(key.to_string()),
            ..Default::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("sender on {uri}: {e}"))
}

pub async fn receiver(name: &str, uri: &str, binding: &str) -> Receiver {
    Receiver::connect(
        name,
        uri,
        ReceiverOptions {
            binding: binding.to_string(),
            timeout: None,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("receiver on {uri}: {e}"))
}

/// 3 receivers, `n` messages: returns what each receiver got (payloads).
async fn fan(uri: &str, key: &str, n: usize, pt2pt: bool) -> Vec<Vec<String>> {
    let mut rs = Vec::new();
    for i in 0..3 {
        rs.push(receiver(&format!("r{i}"), uri, key).await);
    }
    let s = sender(uri, key).await;
    let total = Rc::new(Cell::new(0usize));
    let mut tasks = Vec::new();
    for mut r in rs {
        let total = total.clone();
        tasks.push(courier::spawn(async move {
            let mut got = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let enough = if pt2pt {
                    total.get() >= n
                } else {
                    got.len() >= n
                };
                // Once everything arrived, wait a little more for extras.
                let wait = if enough { 300 } else { 2000 };
                match r.receive(Some(Duration::from_millis(wait))).await {
                    Ok(Some(d)) => {
                        got.push(String::from_utf8(d.payload().to_vec()).unwrap());
                        total.set(total.get() + 1);
                        d.ack().await.unwrap();
                    }
                    Ok(None) if enough || Instant::now() > deadline => break,
                    Ok(None) => {}
                    Err(e) => panic!("receive: {e}"),
                }
            }
            r.stop().await;
            got
        }));
    }
    for i in 0..n {
        s.send_bytes(format!("m{i}").as_bytes(), None, &SendOptions::default())
            .await
            .unwrap();
    }
    assert_eq!(s.sent(), n as u64);
    s.stop(Duration::from_secs(10)).await.unwrap();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// pubsub: each of 3 receivers gets all `n`, once each.
pub async fn pubsub_counts(uri: UriFn<'_>, query: &str, n: usize) {
    let key = unique("fan");
    let got = fan(&uri("pubsub", query), &key, n, false).await;
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.len(), n, "receiver {i} got {} of {n}", g.len());
        let distinct: HashSet<_> = g.iter().collect();
        assert_eq!(distinct.len(), n, "receiver {i} got duplicates");
    }
}

/// pt2pt: the 3 receivers share `n`, each message exactly once.
pub async fn pt2pt_counts(uri: UriFn<'_>, query: &str, n: usize) {
    let key = unique("work");
    let q = format!(
        "{query}{}queue={key}",
        if query.is_empty() { "" } else { "&" }
    );
    let got = fan(&uri("pt2pt", &q), &key, n, true).await;
    let all: Vec<&String> = got.iter().flatten().collect();
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), n, "total deliveries {} of {n}", all.len());
    assert_eq!(distinct.len(), n, "a message went to two receivers");
    let per: Vec<usize> = got.iter().map(Vec::len).collect();
    assert!(
        per.iter().filter(|&&c| c > 0).count() >= 2,
        "pt2pt should spread over receivers: {per:?}"
    );
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
pub struct Order {
    pub id: u64,
    pub item: String,
    pub qty: u32,
    pub tags: Vec<String>,
}

/// JSON into a typed struct, every compression, content type/encoding
/// carried; returns the deliveries' (content type, encoding, compression).
pub async fn json_and_compressions(uri: UriFn<'_>, query: &str) {
    let key = unique("json");
    let u = uri("pubsub", query);
    let mut r = receiver("typed", &u, &key).await;
    let s = sender(&u, &key).await;
    let order = Order {
        id: 7,
        item: "widget ".repeat(200),
        qty: 3,
        tags: vec!["a".into(), "b".into()],
    };
    let comps = [
        Compression::None,
        Compression::Snappy,
        Compression::Deflate,
        Compression::Zlib,
    ];
    for c in comps {
        let o = SendOptions {
            compression: Some(c),
            ..Default::default()
        };
        s.send_with(&order, None, &o).await.unwrap();
    }
    // Raw bytes with a content type and encoding of the caller's.
    let o = SendOptions {
        content_type: Some("text/csv".into()),
        content_encoding: Some("latin-1".into()),
        ..Default::default()
    };
    s.send_bytes(b"a;b;c", None, &o).await.unwrap();
    for c in comps {
        let d = r
            .receive(Some(Duration::from_secs(10)))
            .await
            .unwrap()
            .expect("a message");
        assert_eq!(d.compression, c);
        assert_eq!(d.content_type.as_deref(), Some("application/json"));
        assert_eq!(d.content_encoding.as_deref(), Some("utf-8"));
        assert_eq!(d.name, key);
        assert_eq!(d.message_id.len(), 32);
        let age = courier_now_ms().saturating_sub(d.timestamp_ms);
        assert!(age < 60_000, "timestamp {} is {age} ms old", d.timestamp_ms);
        let back: Order = d.decode().unwrap();
        assert_eq!(back, order);
        d.ack().await.unwrap();
    }
    let d = r
        .receive(Some(Duration::from_secs(10)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.payload(), b"a;b;c");
    assert_eq!(d.content_type.as_deref(), Some("text/csv"));
    assert_eq!(d.content_encoding.as_deref(), Some("latin-1"));
    assert!(matches!(d.decode::<Order>(), Err(Error::Deserialize(_))));
    s.stop(Duration::from_secs(5)).await.unwrap();
    r.stop().await;
}

pub fn courier_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// receive() with nothing sent returns None after its timeout; the
/// callback form gets every message and ends when cancelled.
pub async fn timeout_and_callback(uri: UriFn<'_>, query: &str) {
    let key = unique("cb");
    let u = uri("pubsub", query);
    let mut idle = receiver("idle", &u, &key).await;
    let t0 = Instant::now();
    assert!(idle
        .receive(Some(Duration::from_millis(300)))
        .await
        .unwrap()
        .is_none());
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_millis(290), "{waited:?}");
    let mut r = receiver("cb", &u, &key).await;
    let cancel = r.cancel_handle();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let seen2 = seen.clone();
    let task = courier::spawn(async move {
        r.run(
            |d| {
                let seen = seen2.clone();
                let v: u32 = d.decode().unwrap();
                async move {
                    seen.borrow_mut().push(v);
                    Ok::<(), ()>(())
                }
            },
            |e| panic!("{e}"),
        )
        .await
    });
    let s = sender(&u, &key).await;
    for i in 0..50u32 {
        s.send(&i, None).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.borrow().len() < 50 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(*seen.borrow(), (0..50).collect::<Vec<_>>());
    s.stop(Duration::from_secs(5)).await.unwrap();
    idle.stop().await;
}

/// Named senders/receivers in a Mom: cancel one receiver by name, then
/// all; cancel a sender by name.
pub async fn cancel_by_name_and_all(uri: UriFn<'_>, query: &str) {
    let key = unique("cancel");
    let u = uri("pubsub", query);
    let mut mom = Mom::new();
    let ro = ReceiverOptions {
        binding: key.clone(),
        timeout: Some(Duration::from_millis(500)),
    };
    mom.declare_receiver("a", &u, ro.clone()).unwrap();
    mom.declare_receiver("b", &u, ro).unwrap();
    let so = SenderOptions {
        routing_key: Some(key.clone()),
        serializer: Serializer::Json,
        ..Default::default()
    };
    mom.declare_sender("out", &u, so.clone()).unwrap();
    mom.declare_sender("out2", &u, so).unwrap();
    let mut a = mom.receiver("a").await.unwrap();
    let mut b = mom.receiver("b").await.unwrap();
    mom.send("out", "one", None).await.unwrap();
    for r in [&mut a, &mut b] {
        let d = r
            .receive(Some(Duration::from_secs(10)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d.decode::<String>().unwrap(), "one");
        d.ack().await.unwrap();
    }
    mom.cancel_receivers(Some(&["a"]));
    assert!(matches!(a.receive(None).await, Err(Error::Cancelled { name }) if name == "a"));
    mom.send("out", "two", None).await.unwrap();
    let d = b
        .receive(Some(Duration::from_secs(10)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.decode::<String>().unwrap(), "two");
    d.ack().await.unwrap();
    let out = mom.sender("out").await.unwrap();
    mom.cancel_senders(Some(&["out"]), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(matches!(
        out.send("x", None).await,
        Err(Error::Cancelled { .. })
    ));
    mom.send("out2", "three", None).await.unwrap();
    mom.cancel_receivers(None);
    assert!(matches!(
        b.receive(None).await,
        Err(Error::Cancelled { .. })
    ));
    mom.cancel_senders(None, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(matches!(
        mom.receiver("nope").await,
        Err(Error::UnknownName {
            kind: "receiver",
            ..
        })
    ));
}

/// Ack mode: a callback that fails twice then succeeds sees the message
/// three times and acks it once; nothing comes after.
/// Returns the attempts the broker reported.
pub async fn ack_fails_twice(uri: UriFn<'_>, query: &str) -> Vec<u32> {
    let key = unique("ack");
    let q = format!(
        "{query}{}queue={key}",
        if query.is_empty() { "" } else { "&" }
    );
    let u = uri("pt2pt", &q);
    let mut r = receiver("acker", &u, &key).await;
    let s = sender(&u, &key).await;
    s.send(&"important", None).await.unwrap();
    let calls = Rc::new(RefCell::new(Vec::new()));
    let acks = Rc::new(Cell::new(0));
    let cancel = r.cancel_handle();
    let (c2, a2) = (calls.clone(), acks.clone());
    let task = courier::spawn(async move {
        r.run(
            move |d| {
                c2.borrow_mut().push(d.attempt());
                let n = c2.borrow().len();
                let a2 = a2.clone();
                async move {
                    if n <= 2 {
                        Err("not yet")
                    } else {
                        a2.set(a2.get() + 1);
                        Ok(())
                    }
                }
            },
            |e| panic!("{e}"),
        )
        .await
    });
    let deadline = Instant::now() + Duration::from_secs(40);
    while acks.get() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Anything redelivered after the ack would show up here.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cancel.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(calls.borrow().len(), 3, "deliveries: {:?}", calls.borrow());
    assert_eq!(acks.get(), 1);
    s.stop(Duration::from_secs(5)).await.unwrap();
    let out = calls.borrow().clone();
    out
}

/// Counts deliveries per payload (for broker-side checks).
pub fn counts(v: &[String]) -> HashMap<&str, usize> {
    let mut m = HashMap::new();
    for s in v {
        *m.entry(s.as_str()).or_default() += 1;
    }
    m
}

/// Runs tests/mom_interop/envelope.py with these arguments.
pub fn python(args: &[&str]) -> std::process::Child {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/mom_interop/envelope.py");
    std::process::Command::new("python3")
        .arg(script)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("python3 (nats-py, pynsq, kombu: scripts/setup.sh installs them)")
}

/// Waits for the Python reader's "ready" line.
pub fn wait_ready(
    child: &mut std::process::Child,
) -> std::io::BufReader<std::process::ChildStdout> {
    use std::io::BufRead;
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "python reader said {line:?}");
    out
}

/// The Python reader's JSON lines after "ready" (waits for it to exit).
pub fn python_lines(
    mut child: std::process::Child,
    mut out: std::io::BufReader<std::process::ChildStdout>,
) -> Vec<serde_json::Value> {
    use std::io::Read;
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success(), "python failed: {rest}");
    rest.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Python wrote n good messages then a corrupted one: the receiver
/// delivers the n (payload {"i": i, "src": "py"}) and reports the last.
pub async fn receive_python_written(r: &mut Receiver, n: usize) {
    #[derive(Deserialize)]
    struct Py {
        i: usize,
        src: String,
    }
    for i in 0..n {
        let d = r
            .receive(Some(Duration::from_secs(30)))
            .await
            .unwrap_or_else(|e| panic!("message {i}: {e}"))
            .expect("a message from python");
        let p: Py = d.decode().unwrap();
        assert_eq!((p.i, p.src.as_str()), (i, "py"));
        let want = if i % 3 == 0 {
            Compression::Deflate
        } else if i % 2 == 1 {
            Compression::Zlib
        } else {
            Compression::None
        };
        assert_eq!(d.compression, want, "message {i}");
        assert_eq!(d.content_type.as_deref(), Some("application/json"));
        assert_eq!(d.message_id.len(), 32);
        let age = courier_now_ms().saturating_sub(d.timestamp_ms);
        assert!(age < 60_000, "timestamp {} is {age} ms old", d.timestamp_ms);
        d.ack().await.unwrap();
    }
    let e = r
        .receive(Some(Duration::from_secs(30)))
        .await
        .expect_err("the corrupted one");
    assert!(matches!(e, Error::Corrupted { .. }), "{e}");
}

/// Sends n messages for a Python reader: JSON, compression cycling
/// through none/zlib/deflate (Python's zlib reads those).
pub async fn send_for_python(s: &Sender, n: usize) {
    for i in 0..n {
        let c = [Compression::None, Compression::Zlib, Compression::Deflate][i % 3];
        let o = SendOptions {
            compression: Some(c),
            ..Default::default()
        };
        s.send_with(&serde_json::json!({"i": i, "src": "rs"}), None, &o)
            .await
            .unwrap();
    }
}

/// Checks what the Python reader printed for [`send_for_python`].
pub fn check_python_read(lines: &[serde_json::Value], key: &str, n: usize) {
    assert_eq!(lines.len(), n, "{lines:?}");
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["crc_ok"], true, "{l}");
        assert_eq!(l["name"], key);
        assert_eq!(l["ct"], "application/json");
        assert_eq!(l["ce"], "utf-8");
        let want = [None, Some("zlib"), Some("deflate")][i % 3];
        assert_eq!(l["comp"].as_str(), want, "{l}");
        let p: serde_json::Value = serde_json::from_str(l["payload"].as_str().unwrap()).unwrap();
        assert_eq!(p["i"], i);
        assert_eq!(p["src"], "rs");
    }
}
