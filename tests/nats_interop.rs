//! Interoperability with a NATS client no one here wrote: nats-py (PyPI),
//! against a real nats-server. Messages cross in both directions with
//! payloads, headers and reply subjects intact.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use courier_tests::NatsServer;

/// Runs a nats-py script with the server URL as argv[1].
fn python(script: &str, url: &str) -> Child {
    Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 with nats-py (scripts/setup.sh installs it)")
}

fn wait_ok(mut child: Child) -> Vec<String> {
    let out = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .collect::<Vec<_>>();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "nats-py script failed: {status}, output {out:?}"
    );
    out
}

const PY_PUBLISHER: &str = r#"
import asyncio, sys, nats
async def main():
    nc = await nats.connect(sys.argv[1], name="nats-py-publisher")
    for i in range(10):
        await nc.publish("interop.py2rs", f"from-python-{i}".encode(),
                         headers={"X-Seq": str(i)})
    await nc.flush()
    await nc.close()
    print("SENT")
asyncio.run(main())
"#;

#[test]
fn courier_receives_what_nats_py_publishes() {
    let server = NatsServer::start();
    let url = server.url();
    courier::run(async move {
        let client = courier::nats::connect([url.as_str()]).await.unwrap();
        let mut sub = client.subscribe("interop.py2rs").await.unwrap();
        client.flush().await.unwrap();

        let url2 = url.clone();
        let publisher = std::thread::spawn(move || wait_ok(python(PY_PUBLISHER, &url2)));
        let mut got = Vec::new();
        for _ in 0..10 {
            let msg = tokio::time::timeout(Duration::from_secs(20), sub.next())
                .await
                .expect("a message from nats-py within 20 s")
                .expect("subscription open");
            let seq = msg
                .headers()
                .and_then(|h| h.get("X-Seq"))
                .map(str::to_string);
            got.push((String::from_utf8(msg.payload.to_vec()).unwrap(), seq));
        }
        assert_eq!(publisher.join().unwrap(), vec!["SENT".to_string()]);
        let want: Vec<_> = (0..10)
            .map(|i| (format!("from-python-{i}"), Some(i.to_string())))
            .collect();
        assert_eq!(got, want, "payloads and X-Seq headers in publish order");
        client.close().await.unwrap();
    });
}

const PY_SUBSCRIBER: &str = r#"
import asyncio, sys, nats
async def main():
    nc = await nats.connect(sys.argv[1], name="nats-py-subscriber")
    got = []
    done = asyncio.Event()
    async def on_msg(msg):
        got.append(msg)
        if len(got) == 10:
            done.set()
    await nc.subscribe("interop.rs2py", cb=on_msg)
    async def on_request(msg):
        await msg.respond(b"pong:" + msg.data)
    await nc.subscribe("interop.echo", cb=on_request)
    await nc.flush()
    print("READY", flush=True)
    await asyncio.wait_for(done.wait(), 20)
    for m in got:
        hdr = (m.headers or {}).get("X-Seq", "-")
        print(f"{m.subject} {m.data.decode()} {hdr}", flush=True)
    await nc.close()
asyncio.run(main())
"#;

#[test]
fn nats_py_receives_what_courier_publishes_and_answers_its_requests() {
    let server = NatsServer::start();
    let url = server.url();
    let mut child = python(PY_SUBSCRIBER, &url);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(
        lines.next().unwrap().unwrap(),
        "READY",
        "nats-py subscribed"
    );
    courier::run(async move {
        let client = courier::nats::connect([url.as_str()]).await.unwrap();
        let reply = client
            .request("interop.echo", "ping")
            .await
            .expect("nats-py answers the request");
        assert_eq!(&reply.payload[..], b"pong:ping");
        for i in 0..10 {
            let headers = courier::nats::HeaderMap::new()
                .with("X-Seq", &i.to_string())
                .unwrap();
            client
                .publish_with_headers("interop.rs2py", &headers, format!("from-rust-{i}"))
                .await
                .unwrap();
        }
        client.flush().await.unwrap();
        client.close().await.unwrap();
    });
    let received: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        child.wait().unwrap().success(),
        "nats-py subscriber exited cleanly"
    );
    let want: Vec<String> = (0..10)
        .map(|i| format!("interop.rs2py from-rust-{i} {i}"))
        .collect();
    assert_eq!(received, want);
}
