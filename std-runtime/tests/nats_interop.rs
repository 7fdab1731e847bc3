//! Interoperability with a client no one here wrote: nats-py (PyPI,
//! installed by scripts/setup.sh). A message published by nats-py reaches a
//! courier subscriber, and one published by courier reaches nats-py,
//! headers included.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use courier::nats::{self, HeaderMap};
use courier_tests::NatsServer;

fn python(script: &str, url: &str) -> std::process::Child {
    Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs (scripts/setup.sh installs nats-py)")
}

const PY_SUBSCRIBER: &str = r#"
import asyncio, sys, nats
async def main():
    nc = await nats.connect(sys.argv[1])
    sub = await nc.subscribe("interop.to_py")
    await nc.flush()
    print("READY", flush=True)
    msg = await sub.next_msg(timeout=20)
    unit = (msg.headers or {}).get("Unit")
    print(f"GOT {msg.subject} {msg.data.decode()} {unit}", flush=True)
    await nc.close()
asyncio.run(main())
"#;

const PY_PUBLISHER: &str = r#"
import asyncio, sys, nats
async def main():
    nc = await nats.connect(sys.argv[1])
    await nc.publish("interop.to_rust", b"from python", headers={"Origin": "nats-py"})
    await nc.flush()
    await nc.close()
asyncio.run(main())
"#;

#[test]
fn courier_to_nats_py() {
    let server = NatsServer::start();
    let url = server.url();
    let mut child = python(PY_SUBSCRIBER, &url);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(
        line.trim(),
        "READY",
        "nats-py did not start (is nats-py installed?)"
    );
    courier::run(async {
        let client = nats::connect([url.as_str()]).await.unwrap();
        let headers = HeaderMap::new().with("Unit", "celsius").unwrap();
        client
            .publish_with_headers("interop.to_py", &headers, "from courier")
            .await
            .unwrap();
        client.flush().await.unwrap();
    });
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "GOT interop.to_py from courier celsius");
    assert!(child.wait().unwrap().success());
}

#[test]
fn nats_py_to_courier() {
    let server = NatsServer::start();
    let url = server.url();
    courier::run(async {
        let client = nats::connect([url.as_str()]).await.unwrap();
        let mut sub = client.subscribe("interop.to_rust").await.unwrap();
        client.flush().await.unwrap();
        let mut child = python(PY_PUBLISHER, &url);
        let msg = tokio::time::timeout(Duration::from_secs(30), sub.next())
            .await
            .expect("nats-py's message within 30 s")
            .unwrap();
        assert_eq!(&msg.payload[..], b"from python");
        assert_eq!(msg.headers().and_then(|h| h.get("Origin")), Some("nats-py"));
        assert!(child.wait().unwrap().success());
    });
}
