//! The courier firmware (examples/firmware, built for thumbv7em-none-eabihf
//! by scripts/embedded.sh) run in QEMU's mps2-an386 board, its UART
//! connected to real brokers on loopback (`-serial tcp:127.0.0.1:PORT`).
//! The courier runtime checks, on the broker side, what the device sent.
//!
//! Ignored in a plain `cargo test`: they need the firmware ELFs and
//! qemu-system-arm, which `scripts/embedded.sh` builds and installs before
//! it runs them with `--ignored` (COURIER_FIRMWARE_DIR points at the ELFs).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use courier_tests::certs::TestPki;
use courier_tests::{nats_info_line, NatsServer, Nsqd};

/// What a firmware run ended with.
#[derive(Debug)]
struct Run {
    /// QEMU's exit status: the firmware's semihosting exit code.
    code: Option<i32>,
    /// The firmware's log (semihosting stdout), one line per entry.
    log: Vec<String>,
}

impl Run {
    fn logged(&self, needle: &str) -> usize {
        self.log.iter().filter(|l| l.contains(needle)).count()
    }
}

fn firmware(name: &str) -> PathBuf {
    let dir = std::env::var_os("COURIER_FIRMWARE_DIR")
        .expect("COURIER_FIRMWARE_DIR unset: run these through scripts/embedded.sh");
    let elf = PathBuf::from(dir).join(name);
    assert!(
        elf.is_file(),
        "{} missing: scripts/embedded.sh builds it",
        elf.display()
    );
    elf
}

/// How QEMU connects UART0.
enum Serial {
    /// No serial line.
    None,
    /// To 127.0.0.1:port before the firmware starts (the broker must be
    /// listening): for NSQ, where the client speaks first and bytes written
    /// before the connection is up would be lost.
    Connected(u16),
    /// To 127.0.0.1:port in the background, and again one second after the
    /// peer closes: a link that comes and goes (NATS: the server speaks
    /// first, so the device waits for its INFO).
    Reconnecting(u16),
}

/// Runs firmware `name` in QEMU with UART0 on `serial`, in a thread; the
/// run is killed after `limit`. The result arrives on the returned channel.
fn start_qemu(name: &str, serial: Serial, limit: Duration) -> mpsc::Receiver<Run> {
    start_qemu_with(name, serial, limit, Vec::new())
}

/// [`start_qemu`] with extra QEMU arguments (e.g. a `-device loader`).
fn start_qemu_with(
    name: &str,
    serial: Serial,
    limit: Duration,
    extra: Vec<String>,
) -> mpsc::Receiver<Run> {
    let serial = match serial {
        Serial::None => "null".to_string(),
        Serial::Connected(port) => format!("tcp:127.0.0.1:{port}"),
        Serial::Reconnecting(port) => format!("tcp:127.0.0.1:{port},reconnect=1"),
    };
    let elf = firmware(name);
    let defmt = name.starts_with("defmt/");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        // `timeout` ends QEMU at `limit`, even if this test process died
        // first (a failed assertion elsewhere): an orphan would spin forever.
        let mut child = Command::new("timeout")
            .args(["-s", "KILL", &limit.as_secs().to_string()])
            .arg("qemu-system-arm")
            .args(["-M", "mps2-an386", "-nographic", "-monitor", "none"])
            .args(["-semihosting-config", "enable=on,target=native"])
            .arg("-serial")
            .arg(&serial)
            .arg("-kernel")
            .arg(&elf)
            .args(&extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start qemu-system-arm (scripts/setup/embedded.sh installs it)");
        let stdout = child.stdout.take().unwrap();
        // A defmt build logs binary frames: defmt-print decodes them with
        // the ELF's format strings (and exits at QEMU's end of output).
        let (log, mut decoder): (Box<dyn Read + Send>, _) = if defmt {
            let mut decoder = Command::new("defmt-print")
                .arg("-e")
                .arg(&elf)
                .args(["--log-format", "{s}"])
                .stdin(Stdio::from(stdout))
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start defmt-print (scripts/setup/defmt-print.sh installs it)");
            (Box::new(decoder.stdout.take().unwrap()), Some(decoder))
        } else {
            (Box::new(stdout), None)
        };
        let reader = thread::spawn(move || {
            BufReader::new(log)
                .lines()
                .map_while(Result::ok)
                .inspect(|l| eprintln!("[firmware] {l}"))
                .collect::<Vec<_>>()
        });
        // `timeout` kills QEMU at `limit` (exit status 137: not a firmware
        // exit code, so the test fails).
        let code = child.wait().unwrap().code();
        if code == Some(137) {
            eprintln!("[firmware] killed after {limit:?}");
        }
        let log = reader.join().unwrap();
        if let Some(decoder) = decoder.as_mut() {
            let status = decoder.wait().unwrap();
            assert!(status.success(), "defmt-print failed: {status}");
        }
        let _ = tx.send(Run { code, log });
    });
    rx
}

fn reading(seq: u32) -> String {
    format!(
        "{{\"dev\":\"dev1\",\"seq\":{seq},\"centi_celsius\":{}}}",
        2150 + 7 * seq
    )
}

const READINGS: u32 = 5;

/// Subscribes to the device's readings on `server`, starts firmware
/// `name` against `device_port`, and returns the readings received (in
/// order), the answer to a `status` command (when `command` is set) and the
/// run.
fn run_device(
    server: &NatsServer,
    name: &'static str,
    device_port: u16,
    command: bool,
) -> (Vec<Vec<u8>>, Option<Vec<u8>>, Run) {
    let watcher = Watcher {
        url: server.url(),
        options: courier::nats::ConnectOptions::new(),
    };
    run_device_with(watcher, name, device_port, command, Vec::new())
}

/// How the test's own client reaches the server to watch the readings.
struct Watcher {
    url: String,
    options: courier::nats::ConnectOptions,
}

/// [`run_device`] with the watching client's options and extra QEMU
/// arguments.
fn run_device_with(
    watcher: Watcher,
    name: &'static str,
    device_port: u16,
    command: bool,
    qemu_extra: Vec<String>,
) -> (Vec<Vec<u8>>, Option<Vec<u8>>, Run) {
    courier::run(async move {
        let client = watcher.options.connect([watcher.url]).await.unwrap();
        let mut readings = client
            .subscribe("telemetry.dev1.temperature")
            .await
            .unwrap();
        client.flush().await.unwrap();
        let run = start_qemu_with(
            name,
            Serial::Reconnecting(device_port),
            Duration::from_secs(90),
            qemu_extra,
        );

        let mut got = Vec::new();
        for _ in 0..READINGS {
            let msg = tokio::time::timeout(Duration::from_secs(60), readings.next())
                .await
                .expect("a reading from the firmware within 60 s")
                .expect("subscription open");
            got.push(msg.payload.to_vec());
        }
        // Duplicates (at-least-once) would show up here.
        client.flush().await.unwrap();
        let extra = tokio::time::timeout(Duration::from_millis(300), readings.next()).await;
        assert!(extra.is_err(), "no reading beyond {READINGS}: {extra:?}");

        let answer = if command {
            // The readings were published after the device's SUBs on the
            // same connection, so its command subscription is in place.
            let reply = client.request("cmd.dev1", "status").await.unwrap();
            Some(reply.payload.to_vec())
        } else {
            None
        };
        let run = tokio::task::spawn_blocking(move || run.recv().unwrap())
            .await
            .unwrap();
        client.close().await.unwrap();
        (got, answer, run)
    })
}

fn expected_readings() -> Vec<Vec<u8>> {
    (0..READINGS).map(|s| reading(s).into_bytes()).collect()
}

#[test]
#[ignore = "needs the firmware and QEMU: run through scripts/embedded.sh"]
fn publish_only_firmware_delivers_its_readings_byte_exact() {
    let server = NatsServer::start();
    let (got, _, run) = run_device(&server, "nats_publish_only", server.port(), false);
    assert_eq!(got, expected_readings(), "readings byte-exact, in order");
    assert_eq!(run.code, Some(0), "firmware exit code; log: {:#?}", run.log);
    assert_eq!(
        run.logged("published 5 readings, confirmed"),
        1,
        "{:#?}",
        run.log
    );
}

/// The publish-only device built with defmt logging (what a product ships,
/// `DEFMT_LOG=info`; scripts/embedded.sh puts it in `defmt/`): the same
/// readings reach the broker, and its log, defmt frames over semihosting,
/// decodes on the host (defmt-print with the ELF's format strings) into
/// the lines the text build prints, numbers included.
#[test]
#[ignore = "needs the firmware and QEMU: run through scripts/embedded.sh"]
fn defmt_firmware_log_decodes_on_the_host() {
    let server = NatsServer::start();
    let (got, _, run) = run_device(&server, "defmt/nats_publish_only", server.port(), false);
    assert_eq!(got, expected_readings(), "readings byte-exact, in order");
    assert_eq!(run.code, Some(0), "firmware exit code; log: {:#?}", run.log);
    assert_eq!(run.logged("connected (attempt 1)"), 1, "{:#?}", run.log);
    assert_eq!(
        run.logged("published 5 readings, confirmed"),
        1,
        "{:#?}",
        run.log
    );
    let state: usize = run
        .log
        .iter()
        .find_map(|l| l.strip_prefix("client state and buffers: "))
        .and_then(|l| l.trim_end_matches(" bytes").parse().ok())
        .unwrap_or_else(|| panic!("no decoded client size line: {:#?}", run.log));
    // 512 B receive + 256 B transmit buffers are part of the client.
    assert!((768..4096).contains(&state), "{state}");
    let stack = stack_high_water(&run);
    assert!((state..64 * 1024).contains(&stack), "{stack}");
}

#[test]
#[ignore = "needs the firmware and QEMU: run through scripts/embedded.sh"]
fn telemetry_firmware_publishes_readings_and_answers_a_command() {
    let server = NatsServer::start();
    let (got, answer, run) = run_device(&server, "nats_telemetry", server.port(), true);
    assert_eq!(got, expected_readings(), "readings byte-exact, in order");
    assert_eq!(
        String::from_utf8(answer.unwrap()).unwrap(),
        r#"{"dev":"dev1","cmd":"status","readings":5,"reconnects":0}"#
    );
    assert_eq!(run.code, Some(0), "firmware exit code; log: {:#?}", run.log);
    assert_eq!(run.logged("connected (attempt 1)"), 1, "{:#?}", run.log);
}

/// A bad broker in front of the real one. The first connection on which
/// the device completes the handshake gets garbage in answer to its next
/// PING; the second gets a MSG far larger than the device's 512-byte
/// receive buffer; after that, connections are proxied to the real
/// nats-server. A connection without CONNECT within 2 s is closed, as
/// nats-server's authorization timeout does (its INFO may have been lost:
/// a serial line cannot tell one connection from the next). Returns the port.
fn bad_broker(real: u16) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let misbehaved = Arc::new(AtomicUsize::new(0));
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let misbehaved = misbehaved.clone();
            thread::spawn(move || {
                if misbehaved.load(Ordering::SeqCst) >= 2 {
                    proxy(stream, real)
                } else {
                    misbehave(stream, &misbehaved)
                }
            });
        }
    });
    port
}

/// Greets, waits for CONNECT (2 s) and the handshake PING, answers PONG,
/// waits for the next PING (the device confirming its readings) and sends
/// the bad bytes for this misbehaviour.
fn misbehave(stream: TcpStream, misbehaved: &AtomicUsize) {
    let mut out = stream.try_clone().unwrap();
    let mut lines = BufReader::new(stream);
    out.write_all(&nats_info_line(1024 * 1024)).unwrap();
    let mut line = String::new();
    lines
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    if lines.read_line(&mut line).unwrap_or(0) == 0 || !line.starts_with("CONNECT") {
        return; // no handshake: close, QEMU reconnects, a new INFO follows
    }
    lines
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut pings = 0;
    line.clear();
    while lines.read_line(&mut line).unwrap_or(0) > 0 {
        if line.starts_with("PING") {
            pings += 1;
            if pings == 1 {
                out.write_all(b"PONG\r\n").unwrap();
            } else {
                let bad = match misbehaved.fetch_add(1, Ordering::SeqCst) {
                    0 => b"WHAT IS THIS\r\n".to_vec(),
                    _ => {
                        let mut frame = b"MSG cmd.dev1 1 5000\r\n".to_vec();
                        frame.extend(std::iter::repeat_n(b'x', 600));
                        frame
                    }
                };
                let _ = out.write_all(&bad);
                break;
            }
        }
        line.clear();
    }
    thread::sleep(Duration::from_millis(200));
}

fn proxy(device: TcpStream, real: u16) {
    let server = TcpStream::connect(("127.0.0.1", real)).unwrap();
    let pipe = |mut from: TcpStream, mut to: TcpStream| {
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 || to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(std::net::Shutdown::Both);
        })
    };
    pipe(device.try_clone().unwrap(), server.try_clone().unwrap());
    pipe(server, device);
}

#[test]
#[ignore = "needs the firmware and QEMU: run through scripts/embedded.sh"]
fn telemetry_firmware_reports_garbage_and_oversized_frames_and_reconnects() {
    let server = NatsServer::start();
    let port = bad_broker(server.port());
    let (got, answer, run) = run_device(&server, "nats_telemetry", port, true);
    assert_eq!(got, expected_readings(), "readings byte-exact, once each");
    assert_eq!(
        String::from_utf8(answer.unwrap()).unwrap(),
        r#"{"dev":"dev1","cmd":"status","readings":5,"reconnects":2}"#,
        "answered over the third connection"
    );
    assert_eq!(run.code, Some(0), "no hard fault; log: {:#?}", run.log);
    assert_eq!(
        run.logged("protocol error: expected"),
        1,
        "the garbage is reported as a typed error: {:#?}",
        run.log
    );
    assert_eq!(
        run.logged("server sent a 5"),
        1,
        "the oversized frame is reported (FrameTooLarge): {:#?}",
        run.log
    );
}

#[test]
#[ignore = "needs the firmware and QEMU: run through scripts/embedded.sh"]
fn a_hard_fault_ends_the_run_with_exit_code_3() {
    let run = start_qemu("fault_probe", Serial::None, Duration::from_secs(30))
        .recv()
        .unwrap();
    assert_eq!(run.code, Some(3), "{:#?}", run.log);
    assert_eq!(run.logged("HARD FAULT"), 1, "{:#?}", run.log);
}

/// Reads `n` messages of `topic` from nsqd over a raw NSQ V2 connection
/// (independent of courier: magic, SUB, RDY, frames by hand) and FINs them.
fn nsq_read_raw(nsqd: &Nsqd, topic: &str, n: usize) -> Vec<Vec<u8>> {
    let mut s = TcpStream::connect(nsqd.tcp_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("  V2SUB {topic} check\nRDY {n}\n").as_bytes())
        .unwrap();
    let mut bodies = Vec::new();
    while bodies.len() < n {
        let mut head = [0u8; 8];
        s.read_exact(&mut head).unwrap();
        let size = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
        let kind = u32::from_be_bytes(head[4..].try_into().unwrap());
        let mut data = vec![0u8; size - 4];
        s.read_exact(&mut data).unwrap();
        match kind {
            0 if data == b"_heartbeat_" => s.write_all(b"NOP\n").unwrap(),
            0 => assert_eq!(data, b"OK"),
            2 => {
                let id = &data[10..26];
                s.write_all(&[b"FIN ", id, b"\n"].concat()).unwrap();
                bodies.push(data[26..].to_vec());
            }
            _ => panic!("nsqd error frame: {}", String::from_utf8_lossy(&data)),
        }
    }
    bodies
}

fn nsq_stats(nsqd: &Nsqd, topic: &str) -> serde_json::Value {
    let body = nsqd.http_get(&format!("/stats?format=json&topic={topic}"));
    let v: serde_json::Value = serde_json::from_str(&body).expect("stats JSON");
    let v = v.get("data").cloned().unwrap_or(v);
    v["topics"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["topic_name"] == topic))
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

#[test]
#[ignore = "needs the firmware and QEMU: run through scripts/embedded.sh"]
fn nsq_firmware_publishes_readings_that_nsqd_counts() {
    let nsqd = Nsqd::start();
    let run = start_qemu(
        "nsq_publisher",
        Serial::Connected(nsqd.tcp_port),
        Duration::from_secs(60),
    )
    .recv()
    .unwrap();
    assert_eq!(run.code, Some(0), "firmware exit code; log: {:#?}", run.log);
    assert_eq!(
        nsq_stats(&nsqd, "telemetry")["message_count"],
        READINGS,
        "nsqd /stats"
    );
    let got = nsq_read_raw(&nsqd, "telemetry", READINGS as usize);
    assert_eq!(got, expected_readings(), "bodies byte-exact, in order");
}

fn consume_commands(firmware_name: &'static str) {
    let nsqd = Nsqd::start();
    for i in 0..3 {
        nsqd.http_publish(
            "commands",
            format!("set-interval {} {}", 10 * (i + 1), "pad".repeat(40)).as_bytes(),
        );
    }
    let run = start_qemu(
        firmware_name,
        Serial::Connected(nsqd.tcp_port),
        Duration::from_secs(60),
    )
    .recv()
    .unwrap();
    assert_eq!(run.code, Some(0), "firmware exit code; log: {:#?}", run.log);
    for i in 0..3 {
        let line = format!(
            "command {} (attempt 1): set-interval {} {}",
            i + 1,
            10 * (i + 1),
            "pad".repeat(40)
        );
        assert_eq!(run.logged(&line), 1, "{line}: {:#?}", run.log);
    }
    assert_eq!(
        run.logged("handled 3 commands, closed"),
        1,
        "{:#?}",
        run.log
    );
    let channel = &nsq_stats(&nsqd, "commands")["channels"][0];
    assert_eq!(channel["channel_name"], "dev1");
    assert_eq!(channel["message_count"], 3, "{channel}");
    assert_eq!(channel["depth"], 0, "{channel}");
    assert_eq!(channel["in_flight_count"], 0, "all FINed: {channel}");
    assert_eq!(channel["requeue_count"], 0, "{channel}");
}

#[test]
#[ignore = "needs the firmware and QEMU: run through scripts/embedded.sh"]
fn nsq_firmware_consumes_and_fins_commands() {
    consume_commands("nsq_consumer");
}

/// nsqd compresses (its repeated padding is back-referenced), the device
/// inflates through its 32 KiB window and answers in stored blocks.
#[test]
#[ignore = "needs the firmware and QEMU: run through scripts/embedded.sh"]
fn nsq_firmware_consumes_commands_over_deflate() {
    consume_commands("nsq_consumer_deflate");
}

// ---- nats_tls: TLS 1.3 on the device (embedded-tls, pinned CA) ----

/// A nats-server with a TLS listener (TLS 1.3 only) whose certificate for
/// `localhost` is signed by `pki`'s CA. INFO goes out in plaintext, then
/// the TLS handshake (nats-server's default; the firmware upgrades).
fn tls13_server(pki: &TestPki) -> NatsServer {
    tls13_server_named(pki, false)
}

/// [`tls13_server`]; `wrong_name`: its certificate, from the same CA,
/// names only `other.example`.
fn tls13_server_named(pki: &TestPki, wrong_name: bool) -> NatsServer {
    // QEMU runs the device's P-256 arithmetic in software emulation: give
    // the handshake more than the 2 s of the shared test config.
    let config = pki.nats_config("device.conf", "  min_version: \"1.3\"", wrong_name, "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("timeout: 2", "timeout: 20");
    std::fs::write(&config, text).unwrap();
    NatsServer::start_with(&["-c", config.to_str().unwrap()])
}

/// The DER bytes of a PEM certificate.
fn pem_to_der(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

/// Writes nats_tls's provisioning block (examples/firmware/src/tls.rs):
/// "CVPR", a fresh 32-byte RNG seed from the host's OS RNG, the CA's DER
/// length (u32 LE) and DER; returns the QEMU arguments that load it where
/// the firmware reads it (a device's provisioned flash sector).
fn provision(pki: &TestPki) -> Vec<String> {
    provision_ca(pki.dir.path(), &pki.ca_pem)
}

/// [`provision`] with any CA (PEM); the block is written into `dir`.
fn provision_ca(dir: &std::path::Path, ca_pem: &str) -> Vec<String> {
    let der = pem_to_der(ca_pem);
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .unwrap();
    let mut block = b"CVPR".to_vec();
    block.extend(seed);
    block.extend((der.len() as u32).to_le_bytes());
    block.extend(&der);
    assert!(block.len() <= 4096, "fits PROVISION_CAPACITY");
    let path = dir.join("provision.bin");
    std::fs::write(&path, block).unwrap();
    vec![
        "-device".into(),
        format!("loader,file={},addr=0x300000,force-raw=on", path.display()),
    ]
}

/// The stack high-water mark the firmware printed at exit.
fn stack_high_water(run: &Run) -> usize {
    run.log
        .iter()
        .find_map(|l| l.strip_prefix("stack high-water: "))
        .and_then(|l| l.trim_end_matches(" bytes").parse().ok())
        .unwrap_or_else(|| panic!("no stack high-water line: {:#?}", run.log))
}

#[test]
#[ignore = "needs the firmware and QEMU: run through scripts/embedded.sh"]
fn tls_firmware_publishes_readings_over_tls13_to_the_pinned_ca_server() {
    let pki = TestPki::generate();
    let server = tls13_server(&pki);
    let watcher = Watcher {
        url: format!("tls://localhost:{}", server.port()),
        options: courier::nats::ConnectOptions::new()
            .tls_ca_file(&pki.ca_file)
            .unwrap(),
    };
    let (got, _, run) = run_device_with(watcher, "nats_tls", server.port(), false, provision(&pki));
    assert_eq!(got, expected_readings(), "readings byte-exact, in order");
    assert_eq!(run.code, Some(0), "firmware exit code; log: {:#?}", run.log);
    assert_eq!(run.logged("TLS 1.3 established"), 1, "{:#?}", run.log);
    assert_eq!(
        run.logged("published 5 readings over TLS, confirmed"),
        1,
        "{:#?}",
        run.log
    );
    // The record buffers (16 KiB + 256 B receive, 1 KiB transmit) live on
    // main's stack, so the mark holds them; it is exact (the firmware says
    // "at least" when its painted window ran out, which does not parse).
    // 64 KiB: the budget README reports (a board with 64 KiB of RAM for
    // the stack), a regression guard for embedded-tls's handshake depth.
    let stack = stack_high_water(&run);
    assert!(
        (16 * 1024 + 256 + 1024..64 * 1024).contains(&stack),
        "stack high-water {stack} bytes"
    );
}

#[test]
#[ignore = "needs the firmware and QEMU: run through scripts/embedded.sh"]
fn tls_firmware_refuses_a_server_certificate_from_another_ca() {
    let device_pki = TestPki::generate();
    // The server's certificate names localhost but is signed by a CA the
    // device does not pin.
    let server_pki = TestPki::generate();
    let server = tls13_server(&server_pki);
    let url = format!("tls://localhost:{}", server.port());
    let ca = server_pki.ca_file.clone();
    let port = server.port();
    let run = courier::run(async move {
        let client = courier::nats::ConnectOptions::new()
            .tls_ca_file(&ca)
            .unwrap()
            .connect([url])
            .await
            .unwrap();
        let mut readings = client.subscribe("telemetry.>").await.unwrap();
        client.flush().await.unwrap();
        let run = start_qemu_with(
            "nats_tls",
            Serial::Reconnecting(port),
            Duration::from_secs(60),
            provision(&device_pki),
        );
        let run = tokio::task::spawn_blocking(move || run.recv().unwrap())
            .await
            .unwrap();
        client.flush().await.unwrap();
        let got = tokio::time::timeout(Duration::from_millis(300), readings.next()).await;
        assert!(got.is_err(), "nothing published to that server: {got:?}");
        client.close().await.unwrap();
        run
    });
    assert_eq!(run.code, Some(7), "EXIT_TLS_REFUSED; log: {:#?}", run.log);
    assert_eq!(run.logged("TLS handshake refused: "), 1, "{:#?}", run.log);
    assert_eq!(run.logged("TLS 1.3 established"), 0, "{:#?}", run.log);
}

#[test]
#[ignore = "needs the firmware and QEMU: run through scripts/embedded.sh"]
fn tls_firmware_without_a_provisioned_ca_does_not_connect() {
    let run = start_qemu("nats_tls", Serial::None, Duration::from_secs(30))
        .recv()
        .unwrap();
    assert_eq!(run.code, Some(8), "EXIT_NOT_PROVISIONED; {:#?}", run.log);
    assert_eq!(
        run.logged("no pinned CA, not connecting"),
        1,
        "{:#?}",
        run.log
    );
}

/// A TLS 1.3 nats-server whose localhost certificate, from its own CA,
/// expired in 2021; returns it and that CA (PEM).
fn expired_server(dir: &std::path::Path) -> (NatsServer, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "courier expired-leaf CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.not_before = rcgen::date_time_ymd(2020, 1, 1);
    leaf.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &ca, &ca_key).unwrap();
    let (cert_file, key_file) = (dir.join("expired.pem"), dir.join("expired.key"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let config = dir.join("expired.conf");
    std::fs::write(
        &config,
        format!(
            "tls {{\n  cert_file: {cert_file:?}\n  key_file: {key_file:?}\n  timeout: 20\n  min_version: \"1.3\"\n}}\n"
        ),
    )
    .unwrap();
    let server = NatsServer::start_with(&["-c", config.to_str().unwrap()]);
    (server, ca.pem())
}

/// Runs nats_tls against `port` with `provisioning`; returns the run.
fn run_tls_device(port: u16, provisioning: Vec<String>) -> Run {
    start_qemu_with(
        "nats_tls",
        Serial::Reconnecting(port),
        Duration::from_secs(60),
        provisioning,
    )
    .recv()
    .unwrap()
}

/// What else the device verifies: the host name (a certificate from the
/// pinned CA for another name) and the validity dates (semihosting time;
/// a certificate from the pinned CA for localhost that expired in 2021).
#[test]
#[ignore = "needs the firmware and QEMU: run through scripts/embedded.sh"]
fn tls_firmware_refuses_a_wrong_name_and_an_expired_certificate() {
    let pki = TestPki::generate();
    let server = tls13_server_named(&pki, true);
    let run = run_tls_device(server.port(), provision(&pki));
    assert_eq!(run.code, Some(7), "wrong name; log: {:#?}", run.log);
    assert_eq!(
        run.logged("TLS handshake refused: InvalidCertificate"),
        1,
        "{:#?}",
        run.log
    );
    drop(server);

    let (server, ca_pem) = expired_server(pki.dir.path());
    let run = run_tls_device(server.port(), provision_ca(pki.dir.path(), &ca_pem));
    assert_eq!(run.code, Some(7), "expired; log: {:#?}", run.log);
    assert_eq!(
        run.logged("TLS handshake refused: InvalidCertificate"),
        1,
        "{:#?}",
        run.log
    );
}

/// A server without TLS: the device does not fall back to plaintext.
#[test]
#[ignore = "needs the firmware and QEMU: run through scripts/embedded.sh"]
fn tls_firmware_refuses_a_plaintext_server() {
    let pki = TestPki::generate();
    let server = NatsServer::start();
    let run = run_tls_device(server.port(), provision(&pki));
    assert_eq!(run.code, Some(7), "EXIT_TLS_REFUSED; log: {:#?}", run.log);
    assert_eq!(run.logged("TlsNotOffered"), 1, "{:#?}", run.log);
    assert_eq!(run.logged("published"), 0, "{:#?}", run.log);
}
