//! A toxiproxy-server child process and a small client for its HTTP API
//! (<https://github.com/Shopify/toxiproxy#http-api>), on loopback: the fault
//! proxy the `faults_*` tests and the soak put between courier and a real
//! server. Built by `scripts/setup/toxiproxy.sh` (v2.12.0).
//!
//! Toxics used: `latency` (+jitter), `bandwidth`, `limit_data` (cut after N
//! bytes: mid-frame), `reset_peer` (RST), `timeout` with 0 (half-open: the
//! peer goes silent without FIN), `slow_close`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Child;
use std::time::Duration;

use crate::{bin_path, free_port, spawn, wait_for_listener};

/// A running toxiproxy-server (killed on drop).
pub struct Toxiproxy {
    child: Child,
    api_port: u16,
}

impl Toxiproxy {
    /// Starts toxiproxy-server on a free loopback port.
    pub fn start() -> Self {
        let api_port = free_port();
        let args = vec![
            "-host".to_string(),
            "127.0.0.1".to_string(),
            "-port".to_string(),
            api_port.to_string(),
        ];
        let mut child = spawn(&bin_path("toxiproxy-server"), &args);
        wait_for_listener(
            SocketAddr::from(([127, 0, 0, 1], api_port)),
            &mut child,
            "toxiproxy-server",
        );
        Toxiproxy { child, api_port }
    }

    /// Creates a proxy listening on a free loopback port and forwarding to
    /// `upstream` (`host:port`).
    pub fn proxy(&self, name: &str, upstream: &str) -> Proxy {
        let listen_port = free_port();
        let body = format!(
            r#"{{"name":"{name}","listen":"127.0.0.1:{listen_port}","upstream":"{upstream}","enabled":true}}"#
        );
        api(self.api_port, "POST", "/proxies", &body, 201);
        Proxy {
            api_port: self.api_port,
            name: name.to_string(),
            listen_port,
        }
    }
}

impl Drop for Toxiproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which direction a toxic acts on.
#[derive(Clone, Copy, Debug)]
pub enum Stream {
    /// Server to client.
    Downstream,
    /// Client to server.
    Upstream,
}

/// One proxy of a [`Toxiproxy`].
pub struct Proxy {
    api_port: u16,
    name: String,
    listen_port: u16,
}

impl Proxy {
    /// `127.0.0.1:PORT` clients connect to.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.listen_port)
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.listen_port
    }

    /// Adds a toxic; `attributes` is a JSON object (e.g. `{"latency":50}`).
    pub fn add_toxic(&self, name: &str, kind: &str, stream: Stream, attributes: &str) {
        let stream = match stream {
            Stream::Downstream => "downstream",
            Stream::Upstream => "upstream",
        };
        let body = format!(
            r#"{{"name":"{name}","type":"{kind}","stream":"{stream}","toxicity":1.0,"attributes":{attributes}}}"#
        );
        api(
            self.api_port,
            "POST",
            &format!("/proxies/{}/toxics", self.name),
            &body,
            200,
        );
    }

    /// Removes a toxic added with [`Proxy::add_toxic`].
    pub fn remove_toxic(&self, name: &str) {
        api(
            self.api_port,
            "DELETE",
            &format!("/proxies/{}/toxics/{name}", self.name),
            "",
            204,
        );
    }

    /// Disabling closes every connection through the proxy and refuses new
    /// ones until enabled again.
    pub fn set_enabled(&self, enabled: bool) {
        api(
            self.api_port,
            "POST",
            &format!("/proxies/{}", self.name),
            &format!(r#"{{"enabled":{enabled}}}"#),
            200,
        );
    }
}

/// One HTTP/1.1 request (Connection: close) to the API; panics with the
/// answer unless the status is `expect`. Returns the body.
fn api(port: u16, method: &str, path: &str, body: &str, expect: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to toxiproxy API");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes())
        .expect("write toxiproxy request");
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("read toxiproxy reply");
    let status: u16 = reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert_eq!(status, expect, "toxiproxy {method} {path} {body}: {reply}");
    reply
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}
