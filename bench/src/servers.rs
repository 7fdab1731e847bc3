//! Real brokers for the benchmark: nats-server and nsqd as child processes on
//! free loopback ports, killed when dropped. Mirrors `tests/support` (same
//! binary lookup: `.tools/bin` first, then `PATH`) but tuned for load: a
//! monitoring port to see when subscriptions are live, and buffers large
//! enough that a fast publisher does not get a slow subscriber cut off.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The repository root (where `.tools/bin` lives).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `.tools/bin/NAME` if the setup script installed it, else `NAME` on
/// `PATH`; `None` when it is nowhere (the caller skips that client).
pub fn find_bin(name: &str) -> Option<PathBuf> {
    let local = repo_root().join(".tools/bin").join(name);
    if local.is_file() {
        return Some(local);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Like [`find_bin`] but an error that says how to fix it.
pub fn require_bin(name: &str) -> Result<PathBuf, String> {
    find_bin(name).ok_or_else(|| {
        format!("{name} not found in .tools/bin or PATH: run `bash scripts/setup.sh` first")
    })
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral loopback port")
}

fn wait_for_listener(addr: SocketAddr, child: &mut Child, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "{what} exited before listening on {addr}: {status}"
            ));
        }
        if Instant::now() > deadline {
            return Err(format!("{what} did not listen on {addr} within 15 s"));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn spawn_quiet(bin: &Path, args: &[String], cpu: Option<u32>) -> Result<Child, String> {
    let mut command = Command::new(bin);
    command.args(args);
    if let Some(cpu) = cpu {
        command = crate::process::pinned_to(cpu, &command);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(if std::env::var_os("COURIER_BENCH_SERVER_LOGS").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .map_err(|e| format!("start {}: {e}", bin.display()))
}

/// First line of `BIN --version` (or `BIN version`), for the report.
pub fn tool_version(bin: &Path, arg: &str) -> String {
    Command::new(bin)
        .arg(arg)
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// nats-server on loopback with its HTTP monitoring port enabled.
pub struct NatsServer {
    child: Child,
    /// Client port.
    pub port: u16,
    /// Monitoring port (`/subsz`, `/varz`).
    pub monitor_port: u16,
    _config: tempfile::NamedTempFile,
}

impl NatsServer {
    /// Starts nats-server. Per-client pending buffers are raised to 1 GiB so
    /// that a subscriber slower than the publisher is measured, not cut off
    /// as a slow consumer. `cpu`: run it on that CPU only (`taskset`).
    pub fn start(cpu: Option<u32>) -> Result<Self, String> {
        Self::start_with(cpu, "")
    }

    /// Like [`NatsServer::start`] with `extra` configuration lines (a TLS
    /// block, `jetstream { ... }`).
    pub fn start_with(cpu: Option<u32>, extra: &str) -> Result<Self, String> {
        let bin = require_bin("nats-server")?;
        let (port, monitor_port) = (free_port(), free_port());
        let mut config = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
        write!(
            config,
            "listen: \"127.0.0.1:{port}\"\nhttp: \"127.0.0.1:{monitor_port}\"\n\
             max_pending: 1073741824\nwrite_deadline: \"60s\"\n{extra}\n"
        )
        .map_err(|e| e.to_string())?;
        let args = vec!["-c".to_string(), config.path().display().to_string()];
        let mut child = spawn_quiet(&bin, &args, cpu)?;
        wait_for_listener(
            SocketAddr::from(([127, 0, 0, 1], port)),
            &mut child,
            "nats-server",
        )?;
        Ok(NatsServer {
            child,
            port,
            monitor_port,
            _config: config,
        })
    }

    /// The server's own message counters (`/varz` `in_msgs`, `out_msgs`).
    pub fn counters(&self) -> Result<(u64, u64), String> {
        let body = http_request(self.monitor_port, "GET", "/varz", b"")?;
        let varz: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| format!("/varz: {e}"))?;
        let field = |name: &str| {
            varz.get(name)
                .and_then(|v| v.as_u64())
                .ok_or_else(|| format!("/varz has no {name}"))
        };
        Ok((field("in_msgs")?, field("out_msgs")?))
    }

    /// `nats://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// `tls://127.0.0.1:PORT` (a server started with a TLS block).
    pub fn tls_url(&self) -> String {
        format!("tls://127.0.0.1:{}", self.port)
    }

    /// How many subscriptions connections hold on exactly `subject`
    /// (`/connz?subs=1`). Subjects are unique per run, so this sees the
    /// subscriber under test and nothing else.
    pub fn subscriptions_on(&self, subject: &str) -> usize {
        http_request(self.monitor_port, "GET", "/connz?subs=1&limit=100000", b"")
            .map(|body| body.matches(&format!("\"{subject}\"")).count())
            .unwrap_or(0)
    }

    /// Waits until connections hold `count` subscriptions on `subject`;
    /// gives up early when `gone()` says the subscribing process has exited.
    pub fn wait_for_subscription(
        &self,
        subject: &str,
        count: usize,
        timeout: Duration,
        gone: impl Fn() -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.subscriptions_on(subject) >= count {
                return Ok(());
            }
            if gone() {
                return Err(format!(
                    "the subscriber exited before subscribing to {subject}"
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("nobody subscribed to {subject} within {timeout:?}"));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// nsqd on loopback ports with a private data directory; the in-memory
/// queue is large so a prefilled topic is served from memory, as it would be
/// for a consumer keeping up.
pub struct Nsqd {
    child: Child,
    /// TCP protocol port.
    pub tcp_port: u16,
    /// HTTP port.
    pub http_port: u16,
    _data: tempfile::TempDir,
}

impl Nsqd {
    /// Starts nsqd (on CPU `cpu` only, when given).
    pub fn start(cpu: Option<u32>) -> Result<Self, String> {
        let bin = require_bin("nsqd")?;
        let (tcp_port, http_port) = (free_port(), free_port());
        let data = tempfile::tempdir().map_err(|e| e.to_string())?;
        let args = vec![
            format!("--tcp-address=127.0.0.1:{tcp_port}"),
            format!("--http-address=127.0.0.1:{http_port}"),
            "--broadcast-address=127.0.0.1".to_string(),
            format!("--data-path={}", data.path().display()),
            "--mem-queue-size=20000000".to_string(),
            "--max-rdy-count=10000".to_string(),
        ];
        let mut child = spawn_quiet(&bin, &args, cpu)?;
        wait_for_listener(
            SocketAddr::from(([127, 0, 0, 1], tcp_port)),
            &mut child,
            "nsqd",
        )?;
        Ok(Nsqd {
            child,
            tcp_port,
            http_port,
            _data: data,
        })
    }

    /// `127.0.0.1:PORT` of the TCP protocol.
    pub fn tcp_addr(&self) -> String {
        format!("127.0.0.1:{}", self.tcp_port)
    }

    /// Creates `topic` and `channel` so messages published afterwards queue
    /// up in the channel for a consumer that connects later.
    pub fn create_channel(&self, topic: &str, channel: &str) -> Result<(), String> {
        http_request(
            self.http_port,
            "POST",
            &format!("/topic/create?topic={topic}"),
            b"",
        )?;
        http_request(
            self.http_port,
            "POST",
            &format!("/channel/create?topic={topic}&channel={channel}"),
            b"",
        )?;
        Ok(())
    }

    /// Messages in `channel` of `topic` not yet finished (depth + in flight).
    pub fn channel_unfinished(&self, topic: &str, channel: &str) -> Option<u64> {
        let body = http_request(
            self.http_port,
            "GET",
            &format!("/stats?format=json&topic={topic}&channel={channel}"),
            b"",
        )
        .ok()?;
        let stats: serde_json::Value = serde_json::from_str(&body).ok()?;
        let ch = stats
            .get("topics")?
            .as_array()?
            .iter()
            .find(|t| t.get("topic_name").and_then(|n| n.as_str()) == Some(topic))?
            .get("channels")?
            .as_array()?
            .iter()
            .find(|c| c.get("channel_name").and_then(|n| n.as_str()) == Some(channel))?
            .clone();
        Some(ch.get("depth")?.as_u64()? + ch.get("in_flight_count")?.as_u64()?)
    }

    /// Messages nsqd counted into `topic` since it started.
    pub fn topic_message_count(&self, topic: &str) -> Option<u64> {
        let body = http_request(
            self.http_port,
            "GET",
            &format!("/stats?format=json&topic={topic}"),
            b"",
        )
        .ok()?;
        let stats: serde_json::Value = serde_json::from_str(&body).ok()?;
        stats
            .get("topics")?
            .as_array()?
            .iter()
            .find(|t| t.get("topic_name").and_then(|n| n.as_str()) == Some(topic))?
            .get("message_count")?
            .as_u64()
    }
}

impl Drop for Nsqd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Minimal HTTP/1.0 request to a loopback port; returns the body. Only for
/// the servers' admin endpoints.
pub fn http_request(port: u16, method: &str, path: &str, body: &[u8]) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("HTTP {port}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())
        .and_then(|_| s.write_all(body))
        .map_err(|e| format!("HTTP {port}{path}: {e}"))?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)
        .map_err(|e| format!("HTTP {port}{path}: {e}"))?;
    Ok(match reply.split_once("\r\n\r\n") {
        Some((_, body)) => body.to_string(),
        None => reply,
    })
}
