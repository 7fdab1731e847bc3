//! A real RabbitMQ for the AMQP tests: one node per test binary on free
//! loopback ports (AMQP, management HTTP, Erlang distribution), with its
//! own node name, config, data and log directories in a temp dir, and a
//! vhost per test created over the management API.
//!
//! RabbitMQ takes 10-20 s to start, so a binary shares one node
//! ([`RabbitMq::shared`]) unless a test kills or alarms it ([`RabbitMq::start`]).
//! The node runs in its own process group; a watchdog process kills that
//! group and removes the temp dir when the test process ends for any
//! reason (panic, abort, exit), so no Erlang node is left behind (check with
//! `epmd -names`). Dropping a [`RabbitMq`] stops it at once.
//!
//! Every node also has a TLS listener (`amqps://`, [`RabbitMq::tls_url`])
//! with a server certificate for localhost/127.0.0.1 from a CA generated at
//! start ([`crate::certs::TestPki`], files copied into the node's dir), peer
//! verification (a client certificate is optional) and the EXTERNAL
//! mechanism (`rabbitmq_auth_mechanism_ssl`, user = the certificate's CN).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::free_port;

/// guest:guest, base64: the management API's basic auth.
const GUEST_AUTH: &str = "Z3Vlc3Q6Z3Vlc3Q=";

/// A RabbitMQ node started by the tests.
pub struct RabbitMq {
    dir: PathBuf,
    node: String,
    amqp_port: u16,
    tls_port: u16,
    dist_port: u16,
    mgmt_port: u16,
    child: Mutex<Option<Child>>,
}

fn rabbitmq_script(name: &str) -> PathBuf {
    crate::rabbitmq_node::script(name).unwrap_or_else(|e| panic!("{e}"))
}

/// Two cores shared with the tests: no busy-waiting schedulers.
const ERL_ARGS: &str = "+S 2:2 +sbwt none +sbwtdcpu none +sbwtdio none";

impl RabbitMq {
    /// The node shared by the tests of this binary (started on first use).
    pub fn shared() -> &'static RabbitMq {
        static SHARED: OnceLock<RabbitMq> = OnceLock::new();
        SHARED.get_or_init(RabbitMq::start)
    }

    /// Starts a node of its own (for tests that kill or alarm it).
    pub fn start() -> RabbitMq {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "courier-rabbitmq-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("create RabbitMQ temp dir");
        let node = format!(
            "courier-{}-{}@localhost",
            std::process::id(),
            SEQ.load(Ordering::SeqCst)
        );
        let amqp_port = free_port();
        let tls_port = free_port();
        let pki = crate::certs::TestPki::generate();
        let copy = |from: &Path, name: &str| {
            std::fs::copy(from, dir.join(name)).expect("copy test certificate");
            dir.join(name)
        };
        let ca = copy(&pki.ca_file, "ca.pem");
        let cert = copy(&pki.server_cert, "server.pem");
        let key = copy(&pki.server_key, "server.key");
        copy(&pki.client_cert, "client.pem");
        copy(&pki.client_key, "client.key");
        copy(&pki.other_ca_file, "other-ca.pem");
        drop(pki);
        let mgmt_port = free_port();
        let dist_port = free_port();
        let conf = format!(
            "listeners.tcp.1 = 127.0.0.1:{amqp_port}\n\
                 management.tcp.port = {mgmt_port}\n\
                 management.tcp.ip = 127.0.0.1\n\
                 loopback_users = none\n\
                 listeners.ssl.1 = 127.0.0.1:{tls_port}\n\
                 ssl_options.cacertfile = {ca}\n\
                 ssl_options.certfile = {cert}\n\
                 ssl_options.keyfile = {key}\n\
                 ssl_options.verify = verify_peer\n\
                 ssl_options.fail_if_no_peer_cert = false\n\
                 auth_mechanisms.1 = PLAIN\n\
                 auth_mechanisms.2 = AMQPLAIN\n\
                 auth_mechanisms.3 = EXTERNAL\n\
                 ssl_cert_login_from = common_name\n\
                 collect_statistics_interval = 500\n\
                 disk_free_limit.absolute = 1MB\n\
                 log.console = false\n\
                 log.file.level = warning\n",
            ca = ca.display(),
            cert = cert.display(),
            key = key.display(),
        );
        let r = RabbitMq {
            dir,
            node,
            amqp_port,
            tls_port,
            dist_port,
            mgmt_port,
            child: Mutex::new(None),
        };
        r.layout()
            .write_files(&conf, "[rabbitmq_management,rabbitmq_auth_mechanism_ssl]")
            .expect("write the node's config files");
        r.launch();
        r
    }

    fn layout(&self) -> crate::rabbitmq_node::NodeLayout<'_> {
        crate::rabbitmq_node::NodeLayout {
            dir: &self.dir,
            node: &self.node,
            amqp_port: self.amqp_port,
            dist_port: self.dist_port,
            erl_args: ERL_ARGS,
        }
    }

    fn env(&self, cmd: &mut Command) {
        self.layout().apply_env(cmd);
    }

    fn launch(&self) {
        let mut cmd = Command::new(rabbitmq_script("rabbitmq-server"));
        self.env(&mut cmd);
        let logs = std::env::var_os("COURIER_TEST_SERVER_LOGS").is_some();
        cmd.stdin(Stdio::null())
            .stdout(if logs {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .stderr(if logs {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            // Own process group: the shell, beam.smp and erl_child_setup
            // are stopped together.
            .process_group(0);
        let mut child = cmd.spawn().expect("start rabbitmq-server");
        let pgid = child.id();
        // Watchdog: when this test process goes (however), kill the node
        // and remove its directory.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; kill -9 -{pgid} 2>/dev/null; rm -rf '{dir}'",
                me = std::process::id(),
                dir = self.dir.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if self.http("GET", "/api/overview", "").0 == 200 {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "rabbitmq-server exited ({status}) before serving; logs in {}",
                    self.dir.join("log").display()
                );
            }
            if Instant::now() > deadline {
                panic!("RabbitMQ did not start within 120 s");
            }
            thread::sleep(Duration::from_millis(250));
        }
        *self.child.lock().unwrap() = Some(child);
    }

    /// Kills the node at once (SIGKILL to its process group), as a crash.
    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = Command::new("kill")
                // `--`: a negative number is a process group, not an option.
                .args(["-9", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
        }
        // Wait until the port is closed.
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.amqp_port)).is_ok() && Instant::now() < deadline
        {
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the node again on the same ports and data directory.
    pub fn restart(&self) {
        self.kill();
        self.launch();
    }

    /// The AMQP port.
    pub fn amqp_port(&self) -> u16 {
        self.amqp_port
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/VHOST`.
    pub fn url(&self, vhost: &str) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/{}", self.amqp_port, vhost)
    }

    /// `amqps://guest:guest@127.0.0.1:TLS_PORT/VHOST` (the server
    /// certificate names localhost and 127.0.0.1).
    pub fn tls_url(&self, vhost: &str) -> String {
        format!("amqps://guest:guest@127.0.0.1:{}/{}", self.tls_port, vhost)
    }

    /// A PEM file of the test PKI: `ca.pem` (signs the server and client
    /// certificates), `client.pem`/`client.key` (CN "client"),
    /// `other-ca.pem` (an unrelated CA).
    pub fn pki_file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Creates user `name` without a password (it can only log in with
    /// EXTERNAL) with all permissions on `vhost`.
    pub fn certificate_user(&self, name: &str, vhost: &str) {
        let (status, body) = self.http(
            "PUT",
            &format!("/api/users/{name}"),
            r#"{"password_hash":"","tags":""}"#,
        );
        assert!(status / 100 == 2, "create user {name}: {status} {body}");
        let (status, body) = self.http(
            "PUT",
            &format!("/api/permissions/{vhost}/{name}"),
            r#"{"configure":".*","write":".*","read":".*"}"#,
        );
        assert!(status / 100 == 2, "permissions of {name}: {status} {body}");
    }

    /// The node name (for rabbitmqctl -n).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Creates a fresh vhost named after `test` with all permissions for
    /// guest; returns its name.
    pub fn vhost(&self, test: &str) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("{test}-{}", N.fetch_add(1, Ordering::SeqCst));
        let (status, body) = self.http("PUT", &format!("/api/vhosts/{name}"), "");
        assert!(status / 100 == 2, "create vhost {name}: {status} {body}");
        let (status, body) = self.http(
            "PUT",
            &format!("/api/permissions/{name}/guest"),
            r#"{"configure":".*","write":".*","read":".*"}"#,
        );
        assert!(status / 100 == 2, "permissions on {name}: {status} {body}");
        name
    }

    /// GET on the management API, parsed (panics on a non-2xx answer).
    pub fn api(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.http("GET", path, "");
        assert!(status / 100 == 2, "GET {path}: {status} {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// GET on the management API: status and body (status 0 if unreachable).
    pub fn api_raw(&self, path: &str) -> (u16, String) {
        self.http("GET", path, "")
    }

    /// The broker's view of a queue: (ready, unacked, consumers). The
    /// management stats lag by up to a second: poll with [`RabbitMq::wait_queue`].
    pub fn queue_counts(&self, vhost: &str, queue: &str) -> (u64, u64, u64) {
        let q = self.api(&format!("/api/queues/{vhost}/{queue}"));
        let n = |k: &str| q.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
        (
            n("messages_ready"),
            n("messages_unacknowledged"),
            n("consumers"),
        )
    }

    /// Polls the queue's counts until `ok` holds (or 15 s pass); returns
    /// the last counts seen.
    pub fn wait_queue(
        &self,
        vhost: &str,
        queue: &str,
        ok: impl Fn((u64, u64, u64)) -> bool,
    ) -> (u64, u64, u64) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let counts = self.queue_counts(vhost, queue);
            if ok(counts) || Instant::now() > deadline {
                return counts;
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs rabbitmqctl against this node.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(rabbitmq_script("rabbitmqctl"));
        self.env(&mut cmd);
        cmd.arg("-n").arg(&self.node).args(args);
        cmd.output().expect("run rabbitmqctl")
    }

    fn http(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.mgmt_port)) else {
            return (0, String::new());
        };
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        let req = format!(
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Basic {GUEST_AUTH}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if s.write_all(req.as_bytes()).is_err() {
            return (0, String::new());
        }
        let mut reply = String::new();
        if s.read_to_string(&mut reply).is_err() {
            return (0, String::new());
        }
        let status = reply
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = reply
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }
}

impl Drop for RabbitMq {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
