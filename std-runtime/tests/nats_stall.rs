//! A real nats-server that stops answering (SIGSTOP: the socket stays open,
//! nothing is read or written): keepalive PINGs go unanswered, the client
//! declares the connection stale, and once the server runs again (SIGCONT)
//! it reconnects and the subscription works.

use std::cell::RefCell;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

use courier::nats::{ConnectOptions, Event};
use courier_tests::nats_events::first_disconnect_reason;
use courier_tests::{bin_path, free_port};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        signal(&self.0, "CONT");
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{sig} {}", child.id());
}

#[test]
fn a_frozen_server_is_detected_as_stale_and_the_client_recovers() {
    let port = free_port();
    let server = Server(
        Command::new(bin_path("nats-server"))
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server"),
    );
    let url = format!("nats://127.0.0.1:{port}");
    let events: Rc<RefCell<Vec<Event>>> = Rc::default();
    let log = events.clone();
    courier::run(async move {
        let client = ConnectOptions::new()
            .retry_on_initial_connect(true)
            .max_reconnects(None)
            .ping_interval(Duration::from_millis(100), 2)
            .reconnect_delay(Duration::from_millis(20), Duration::from_millis(100))
            .event_callback(move |e| log.borrow_mut().push(e.clone()))
            .connect([url.as_str()])
            .await
            .unwrap();
        let mut sub = client.subscribe("frozen").await.unwrap();
        tokio::time::timeout(Duration::from_secs(20), async {
            while client.flush().await.is_err() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("connected within 20 s");

        signal(&server.0, "STOP");
        let reason = first_disconnect_reason(
            &events,
            Duration::from_secs(20),
            "stale connection detected",
        )
        .await;
        assert!(reason.contains("stale"), "{reason}");

        signal(&server.0, "CONT");
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                client.publish("frozen", "thawed").await.unwrap();
                if client.flush().await.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("reconnected within 20 s");
        let msg = tokio::time::timeout(Duration::from_secs(20), sub.next())
            .await
            .expect("message after the reconnect")
            .unwrap();
        assert_eq!(&msg.payload[..], b"thawed");
    });
}
