//! Test support: start real brokers on free loopback ports, and scripted TCP
//! peers for what a real server will not do (garbage, oversized frames,
//! stalls mid-frame).
//!
//! Servers are child processes killed on drop, so a failing test never
//! leaves a broker behind. Binaries come from `.tools/bin` (installed by
//! `scripts/setup.sh`) or from `PATH`.

pub mod alloc_count;
pub mod amqp_proxy;
pub mod amqp_setup;
pub mod certs;
pub mod jwt;
pub mod nats_events;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub mod host_io;
pub mod jetstream;
pub mod rabbitmq;
pub mod rabbitmq_node;
pub use rabbitmq::RabbitMq;
pub mod toxiproxy;

/// The repository root (where `.tools/bin` lives).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Path of a server or tool binary: `.tools/bin/NAME` if the setup script
/// put it there, else the first `NAME` on `PATH`.
///
/// Panics with the fix (run scripts/setup.sh) when it is nowhere.
pub fn bin_path(name: &str) -> PathBuf {
    let local = repo_root().join(".tools/bin").join(name);
    if local.exists() {
        return local;
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!("{name} not found in .tools/bin or PATH: run scripts/setup.sh first");
}

/// A TCP port on 127.0.0.1 that is free now and was not handed out before
/// by this process.
///
/// Ports come from 20000..32000, below Linux's ephemeral range
/// (32768..60999): a port taken from the ephemeral range can be grabbed by
/// any client's outgoing connection between this call and the server's
/// bind, which made servers fail to start now and then. The start offset is
/// derived from the process id so parallel test binaries spread out.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        (std::process::id().wrapping_mul(7919)) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let port = (LOW + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        let free_v4 = TcpListener::bind(("127.0.0.1", port)).is_ok();
        let free_v6 = TcpListener::bind(("::1", port)).is_ok() || !ipv6_loopback_available();
        if free_v4 && free_v6 {
            return port;
        }
    }
    panic!("no free loopback port in 20000..32000");
}

fn ipv6_loopback_available() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

/// Waits until something accepts TCP connections on `addr`.
fn wait_for_listener(addr: SocketAddr, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening on {addr}: {status}");
        }
        if Instant::now() > deadline {
            panic!("{what} did not listen on {addr} within 15 s");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn spawn(bin: &Path, args: &[String]) -> Child {
    Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(if std::env::var_os("COURIER_TEST_SERVER_LOGS").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()))
}

/// A nats-server child process on a loopback port.
pub struct NatsServer {
    child: Option<Child>,
    host: String,
    port: u16,
    extra_args: Vec<String>,
}

impl NatsServer {
    /// Starts nats-server on 127.0.0.1 and a free port.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts nats-server with extra command-line arguments
    /// (e.g. `["--user", "u", "--pass", "p"]`).
    pub fn start_with(extra: &[&str]) -> Self {
        Self::start_on("127.0.0.1", free_port(), extra)
    }

    /// Starts nats-server on `host` (`127.0.0.1` or `::1`) and `port`.
    pub fn start_on(host: &str, port: u16, extra: &[&str]) -> Self {
        let mut server = NatsServer {
            child: None,
            host: host.to_string(),
            port,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.restart();
        server
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id while it runs (for `nats-server --signal`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `nats://host:port` (IPv6 hosts in brackets).
    pub fn url(&self) -> String {
        if self.host.contains(':') {
            format!("nats://[{}]:{}", self.host, self.port)
        } else {
            format!("nats://{}:{}", self.host, self.port)
        }
    }

    /// The socket address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.url()
            .trim_start_matches("nats://")
            .parse()
            .expect("server address parses")
    }

    /// Kills the server (SIGKILL: connections vanish without a goodbye).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// (Re)starts the server on the same host and port.
    pub fn restart(&mut self) {
        self.kill();
        let mut args = vec![
            "-a".to_string(),
            self.host.clone(),
            "-p".to_string(),
            self.port.to_string(),
        ];
        args.extend(self.extra_args.iter().cloned());
        let mut child = spawn(&bin_path("nats-server"), &args);
        wait_for_listener(self.addr(), &mut child, "nats-server");
        self.child = Some(child);
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An nsqlookupd child process on loopback ports.
pub struct Nsqlookupd {
    child: Child,
    /// TCP address nsqd nodes register with.
    pub tcp_port: u16,
    /// HTTP port consumers poll (`/lookup?topic=`).
    pub http_port: u16,
}

impl Nsqlookupd {
    /// Starts nsqlookupd on free loopback ports.
    pub fn start() -> Self {
        let (tcp_port, http_port) = (free_port(), free_port());
        let args = vec![
            format!("--tcp-address=127.0.0.1:{tcp_port}"),
            format!("--http-address=127.0.0.1:{http_port}"),
            format!("--broadcast-address=127.0.0.1"),
        ];
        let mut child = spawn(&bin_path("nsqlookupd"), &args);
        wait_for_listener(
            SocketAddr::from(([127, 0, 0, 1], http_port)),
            &mut child,
            "nsqlookupd",
        );
        Nsqlookupd {
            child,
            tcp_port,
            http_port,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// `127.0.0.1:PORT` for nsqd's `--lookupd-tcp-address`.
    pub fn tcp_addr(&self) -> String {
        format!("127.0.0.1:{}", self.tcp_port)
    }
}

impl Drop for Nsqlookupd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An nsqd child process on loopback ports with its own data directory.
pub struct Nsqd {
    child: Option<Child>,
    /// TCP protocol port.
    pub tcp_port: u16,
    /// HTTP port (stats, /pub).
    pub http_port: u16,
    data: tempfile::TempDir,
    args: Vec<String>,
}

impl Nsqd {
    /// Starts nsqd on free loopback ports.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts nsqd with extra arguments, e.g. `--heartbeat-interval=1s`,
    /// `--lookupd-tcp-address=...`, `--tls-cert=...`.
    pub fn start_with(extra: &[&str]) -> Self {
        let mut nsqd = Nsqd {
            child: None,
            tcp_port: free_port(),
            http_port: free_port(),
            data: tempfile::tempdir().expect("temp dir for nsqd data"),
            args: extra.iter().map(|s| s.to_string()).collect(),
        };
        nsqd.restart();
        nsqd
    }

    /// `127.0.0.1:PORT` of the TCP protocol.
    pub fn tcp_addr(&self) -> String {
        format!("127.0.0.1:{}", self.tcp_port)
    }

    /// `http://127.0.0.1:PORT`
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Kills nsqd (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// (Re)starts nsqd on the same ports and data directory.
    pub fn restart(&mut self) {
        self.kill();
        let mut args = vec![
            format!("--tcp-address=127.0.0.1:{}", self.tcp_port),
            format!("--http-address=127.0.0.1:{}", self.http_port),
            "--broadcast-address=127.0.0.1".to_string(),
            format!("--data-path={}", self.data.path().display()),
        ];
        args.extend(self.args.iter().cloned());
        let mut child = spawn(&bin_path("nsqd"), &args);
        wait_for_listener(
            SocketAddr::from(([127, 0, 0, 1], self.tcp_port)),
            &mut child,
            "nsqd",
        );
        self.child = Some(child);
    }

    /// Body of an HTTP GET on nsqd's HTTP port (e.g. `/stats?format=json`).
    pub fn http_get(&self, path: &str) -> String {
        http_request(self.http_port, "GET", path, b"")
    }

    /// Publishes through nsqd's HTTP API (`POST /pub?topic=`), independent
    /// of courier, to feed consumers under test.
    pub fn http_publish(&self, topic: &str, body: &[u8]) {
        let reply = http_request(self.http_port, "POST", &format!("/pub?topic={topic}"), body);
        assert_eq!(reply.trim(), "OK", "nsqd /pub answered {reply:?}");
    }
}

impl Drop for Nsqd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Minimal HTTP/1.0 request to a loopback port; returns the body.
/// Test-only plumbing (the product uses a real HTTP crate).
pub fn http_request(port: u16, method: &str, path: &str, body: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to HTTP port");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write HTTP request");
    s.write_all(body).expect("write HTTP body");
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("read HTTP reply");
    match reply.split_once("\r\n\r\n") {
        Some((_, body)) => body.to_string(),
        None => reply,
    }
}

/// A scripted TCP peer: accepts connections on a free loopback port and runs
/// `script` on each in its own thread. For behaviour no real server shows.
pub struct ScriptedPeer {
    addr: SocketAddr,
    _accept: JoinHandle<()>,
}

impl ScriptedPeer {
    /// Listens on 127.0.0.1 and runs `script` for every accepted connection.
    pub fn start<F>(script: F) -> Self
    where
        F: Fn(PeerConn) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind scripted peer");
        let addr = listener.local_addr().expect("peer address");
        let script = std::sync::Arc::new(script);
        let accept = thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let script = script.clone();
                thread::spawn(move || script(PeerConn::new(stream)));
            }
        });
        ScriptedPeer {
            addr,
            _accept: accept,
        }
    }

    /// Address to connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `nats://127.0.0.1:PORT`
    pub fn nats_url(&self) -> String {
        format!("nats://{}", self.addr)
    }
}

/// One accepted connection of a [`ScriptedPeer`].
pub struct PeerConn {
    reader: BufReader<TcpStream>,
}

impl PeerConn {
    fn new(stream: TcpStream) -> Self {
        stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
        PeerConn {
            reader: BufReader::new(stream),
        }
    }

    /// Writes raw bytes to the client.
    pub fn send(&mut self, bytes: &[u8]) {
        let _ = self.reader.get_mut().write_all(bytes);
        let _ = self.reader.get_mut().flush();
    }

    /// Reads one CRLF-terminated line from the client (without CRLF);
    /// `None` when the client closed or went silent for 10 s.
    pub fn read_line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_string()),
        }
    }

    /// Reads lines until one starts with `prefix` (case-insensitive).
    pub fn read_until_line_starting(&mut self, prefix: &str) -> Option<String> {
        while let Some(line) = self.read_line() {
            if line
                .to_ascii_uppercase()
                .starts_with(&prefix.to_ascii_uppercase())
            {
                return Some(line);
            }
        }
        None
    }

    /// Reads exactly `n` bytes.
    pub fn read_exact(&mut self, n: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0; n];
        self.reader.read_exact(&mut buf).ok().map(|_| buf)
    }

    /// Keeps the connection open, reading and discarding, for `d`.
    pub fn hold_open(&mut self, d: Duration) {
        let _ = self.reader.get_mut().set_read_timeout(Some(d));
        let mut sink = [0u8; 1024];
        let deadline = Instant::now() + d;
        while Instant::now() < deadline {
            match self.reader.read(&mut sink) {
                Ok(0) => return,
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }
}

/// A minimal NATS INFO line a scripted peer can greet a client with.
pub fn nats_info_line(max_payload: usize) -> Vec<u8> {
    format!(
        "INFO {{\"server_id\":\"SCRIPTED\",\"server_name\":\"scripted\",\"version\":\"2.10.0\",\"proto\":1,\"go\":\"go1.22\",\"host\":\"127.0.0.1\",\"port\":4222,\"headers\":true,\"max_payload\":{max_payload}}}\r\n"
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_server_starts_and_greets() {
        let server = NatsServer::start();
        let s = TcpStream::connect(server.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut line = String::new();
        BufReader::new(s.try_clone().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("INFO {"), "{line}");
    }

    #[test]
    fn nsqd_and_lookupd_start() {
        let lookupd = Nsqlookupd::start();
        let nsqd = Nsqd::start_with(&[&format!("--lookupd-tcp-address={}", lookupd.tcp_addr())]);
        nsqd.http_publish("support_probe", b"hello");
        let stats = nsqd.http_get("/stats?format=json&topic=support_probe");
        assert!(stats.contains("\"message_count\":1"), "{stats}");
    }
}
