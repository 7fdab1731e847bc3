//! The courier demo (`bash scripts/demo.sh` starts a nats-server and runs it).
//!
//! Two halves of one deployment, in one process:
//! - three edge devices (threads) run the microcontroller firmware of the
//!   `edge_telemetry` example: the no_std core's blocking `embedded-io`
//!   driver with fixed 2 KiB buffers, publishing temperature readings;
//! - a server-side consumer on courier's Linux runtime (io_uring, or epoll
//!   where io_uring is refused) subscribes to `telemetry.>`, prints every
//!   reading as it flows, and answers `telemetry.summary` requests, which
//!   the demo then asks for with request/reply.
//!
//! ```text
//! cargo run -p courier-examples --bin demo -- nats://127.0.0.1:4222 [readings-per-device]
//! ```

// The demo prints device logs with its own prefix, not board::Console.
#[allow(dead_code)]
#[path = "bin/edge_telemetry/board.rs"]
mod board;
#[path = "bin/edge_telemetry/firmware.rs"]
mod firmware;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use courier::nats::Client;

const DEVICES: [&str; 3] = ["edge-01", "edge-02", "edge-03"];

/// What the consumer has seen: readings per device and the last value.
#[derive(Default)]
struct Tally {
    per_device: BTreeMap<String, (u32, f64)>,
}

impl Tally {
    fn record(&mut self, subject: &str, payload: &[u8]) -> Option<(String, f64)> {
        let device = subject.split('.').nth(1)?.to_string();
        let celsius = json_number(payload, "celsius")?;
        let entry = self.per_device.entry(device.clone()).or_default();
        entry.0 += 1;
        entry.1 = celsius;
        Some((device, celsius))
    }

    fn total(&self) -> u32 {
        self.per_device.values().map(|(n, _)| n).sum()
    }

    fn summary(&self) -> String {
        self.per_device
            .iter()
            .map(|(d, (n, c))| format!("{d}: {n} readings, last {c:.1} °C"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Reads `"key":<number>` from a flat JSON object (the firmware's format).
fn json_number(payload: &[u8], key: &str) -> Option<f64> {
    let text = std::str::from_utf8(payload).ok()?;
    let at = text.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &text[at..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

fn run_devices(url: &str, readings: u32) -> Vec<std::thread::JoinHandle<Result<(), String>>> {
    DEVICES
        .iter()
        .map(|device| {
            let url = url.to_string();
            std::thread::spawn(move || {
                let socket = board::connect(&url)?;
                let config = firmware::Config {
                    device,
                    readings,
                    interval: courier_core::time::Duration::from_millis(150),
                };
                let mut log = Prefixed(device, String::new());
                firmware::run(
                    socket,
                    board::MonotonicClock::start(),
                    &mut board::SimulatedThermometer::new(),
                    &config,
                    &mut log,
                )
                .map_err(|e| format!("{device}: {e}"))
            })
        })
        .collect()
}

/// The devices' log lines, prefixed so the two halves are told apart.
/// `write!` hands over pieces; a line is printed once it is complete.
struct Prefixed(&'static str, String);

impl core::fmt::Write for Prefixed {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.1.push_str(s);
        while let Some(end) = self.1.find('\n') {
            println!("  [device {}] {}", self.0, &self.1[..end]);
            self.1.drain(..=end);
        }
        Ok(())
    }
}

async fn consume(client: &Client, url: &str, readings: u32) -> Result<u32, courier::nats::Error> {
    let mut telemetry = client.subscribe("telemetry.*.temperature").await?;
    let mut summaries = client.subscribe("telemetry.summary").await?;
    client.flush().await?;
    println!(
        "consumer: subscribed on {url} via the {:?} backend",
        courier::current_backend().expect("inside courier::run")
    );

    let devices = run_devices(url, readings);
    let expected = readings * DEVICES.len() as u32;
    let mut tally = Tally::default();
    // Serve summary requests while readings flow; stop when all arrived.
    let asker = client.clone();
    let ask = courier::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        asker.request("telemetry.summary", "").await
    });
    while tally.total() < expected {
        tokio::select! {
            msg = telemetry.next() => {
                let Some(msg) = msg else { break };
                if let Some((device, celsius)) = tally.record(msg.subject(), &msg.payload) {
                    println!("consumer: {device} reports {celsius:.1} °C ({} of {expected})", tally.total());
                }
            }
            req = summaries.next() => {
                let Some(req) = req else { break };
                if let Some(reply) = req.reply() {
                    client.publish(reply, tally.summary()).await?;
                }
            }
            _ = tokio::time::sleep(Duration::from_secs(10)) => {
                println!("consumer: no reading for 10 s, stopping");
                break;
            }
        }
    }
    for d in devices {
        if let Err(e) = d.join().expect("device thread") {
            println!("device failed: {e}");
        }
    }
    match ask.await {
        Ok(Ok(reply)) => println!(
            "request/reply: telemetry.summary answered mid-stream: {}",
            String::from_utf8_lossy(&reply.payload)
        ),
        Ok(Err(e)) => println!("request/reply failed: {e}"),
        Err(e) => println!("request task failed: {e}"),
    }
    println!("consumer: final tally: {}", tally.summary());
    Ok(tally.total())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "nats://127.0.0.1:4222".to_string());
    let readings: u32 = match args.next().map(|n| n.parse()) {
        None => 5,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("demo: readings per device must be a number: {e}");
            return ExitCode::from(2);
        }
    };
    let expected = readings * DEVICES.len() as u32;
    let outcome = courier::run(async {
        let client = courier::nats::ConnectOptions::new()
            .name("demo-consumer")
            .connect([url.as_str()])
            .await?;
        let got = consume(&client, &url, readings).await?;
        client.drain().await?;
        Ok::<_, courier::nats::Error>(got)
    });
    match outcome {
        Ok(got) if got == expected => {
            println!("demo: all {got} readings arrived");
            ExitCode::SUCCESS
        }
        Ok(got) => {
            eprintln!("demo: only {got} of {expected} readings arrived");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}
