//! Edge telemetry over TLS 1.3 without an allocator: the same firmware as
//! `edge_telemetry`, running the blocking `embedded-io` NATS driver over
//! `embedded-tls`, the server verified against a pinned CA.
//!
//! ```text
//! cargo run -p courier-examples --bin edge_tls -- HOST:PORT CA.pem [readings] [--after-info]
//! ```
//!
//! By default the device starts TLS at once (the server needs
//! `handshake_first: true` in its `tls` block); with `--after-info` it
//! reads the plaintext INFO first and upgrades, as nats-server expects by
//! default. The server needs an ECDSA P-256 certificate naming HOST (a DNS
//! name: embedded-tls does not match IP addresses). See [`device_tls`] for
//! exactly what is verified.
//!
//! A counting global allocator proves the claim: the program prints how
//! many heap allocations the TLS handshake and the whole NATS session made
//! (zero). `std` here only stands in for the board (socket, clock, RNG,
//! console) and reads the CA file.

#[path = "../edge_telemetry/board.rs"]
mod board;
mod device_tls;
#[path = "../edge_telemetry/firmware.rs"]
mod firmware;

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use courier_core::time::Duration;
use embedded_tls::TlsClock;

/// Counts allocations while `COUNTING` is set.
struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Wall-clock seconds for the certificate validity check (a device uses
/// its RTC or SNTP time, or `embedded_tls::NoClock` to skip dates).
struct WallClock;

impl TlsClock for WallClock {
    fn now() -> Option<u64> {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs())
    }
}

/// The DER bytes of the first CERTIFICATE block of a PEM file.
fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64_decode(body.trim())
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let (mut bits, mut nbits, mut out) = (0u32, 0, Vec::new());
    for c in text.bytes().filter(|c| *c != b'=') {
        bits = (bits << 6) | u32::from(value(c)?);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
        }
    }
    Some(out)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(address), Some(ca_path)) = (args.first(), args.get(1)) else {
        eprintln!("usage: edge_tls HOST:PORT CA.pem [readings]");
        return ExitCode::from(2);
    };
    let readings = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(5);
    let after_info = args.iter().any(|a| a == "--after-info");
    let host = address
        .rsplit_once(':')
        .map_or(address.as_str(), |(h, _)| h);
    let Some(ca_der) = std::fs::read_to_string(ca_path)
        .ok()
        .and_then(|pem| pem_to_der(&pem))
    else {
        eprintln!("edge_tls: cannot read a PEM CERTIFICATE from {ca_path}");
        return ExitCode::FAILURE;
    };
    let socket = match board::connect(address) {
        Ok(socket) => socket,
        Err(e) => {
            eprintln!("edge_tls: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Warm up stdout's buffer so its one-time allocation is not counted.
    println!("edge_tls: TLS 1.3 to {address}, CA pinned from {ca_path}");

    // The device's memory: record buffers on the stack, nothing on the heap.
    let mut rx_record = [0u8; device_tls::RX_RECORD_SIZE];
    let mut tx_record = [0u8; device_tls::TX_RECORD_SIZE];
    let mut info_buf = [0u8; 2048];
    let provider: device_tls::PinnedCa<'_, _, WallClock> =
        device_tls::PinnedCa::new(&ca_der, rand_core::OsRng);
    let config = firmware::Config {
        device: "edge-tls-01",
        readings,
        interval: Duration::from_millis(20),
    };
    let clock = board::MonotonicClock::start();
    let mut thermometer = board::SimulatedThermometer::new();

    COUNTING.store(true, Ordering::SeqCst);
    let outcome = if after_info {
        match device_tls::open_after_info(
            socket,
            host,
            provider,
            &mut info_buf,
            &mut rx_record,
            &mut tx_record,
        ) {
            Ok(tls) => firmware::run(tls, clock, &mut thermometer, &config, &mut board::Console)
                .map_err(|e| e.to_string()),
            Err(e) => Err(format!("TLS handshake with {address} failed: {e}")),
        }
    } else {
        match device_tls::open(socket, host, provider, &mut rx_record, &mut tx_record) {
            Ok(tls) => firmware::run(tls, clock, &mut thermometer, &config, &mut board::Console)
                .map_err(|e| e.to_string()),
            Err(e) => Err(format!("TLS handshake with {address} failed: {e:?}")),
        }
    };
    COUNTING.store(false, Ordering::SeqCst);
    let allocations = ALLOCATIONS.load(Ordering::SeqCst);
    println!("heap allocations during the TLS handshake and NATS session: {allocations}");
    println!(
        "TLS state: {} bytes of record buffers on the stack",
        device_tls::RX_RECORD_SIZE + device_tls::TX_RECORD_SIZE
    );
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "edge_tls: {e} (InvalidCertificate: not signed by the pinned CA, or not \
                 naming {host})"
            );
            ExitCode::FAILURE
        }
    }
}
