//! A frame-aware AMQP proxy between a client and a real RabbitMQ that
//! injects server frames RabbitMQ never sends (it replaced `channel.flow`
//! with connection.blocked in 3.3), so the client's handling of them is
//! tested against a live broker: injected frames go to the client at a
//! frame boundary; the client's answers to them (`channel.flow-ok`) are
//! counted and kept from RabbitMQ, which did not ask.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// channel.flow (class 20, method 20) on `channel`.
pub fn channel_flow(channel: u16, active: bool) -> Vec<u8> {
    let mut f = vec![1u8];
    f.extend_from_slice(&channel.to_be_bytes());
    f.extend_from_slice(&5u32.to_be_bytes());
    f.extend_from_slice(&[0, 20, 0, 20, active as u8, 0xCE]);
    f
}

/// One proxied connection at a time (the first accepted).
pub struct AmqpProxy {
    port: u16,
    inject: Arc<Mutex<Vec<Vec<u8>>>>,
    flow_oks: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
}

/// Splits complete frames off the front of `buf`: (frame length) or None.
fn frame_len(buf: &[u8]) -> Option<usize> {
    if buf.len() < 7 {
        return None;
    }
    if &buf[..4] == b"AMQP" {
        return (buf.len() >= 8).then_some(8); // protocol header
    }
    let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]) as usize;
    (buf.len() >= size + 8).then_some(size + 8)
}

impl AmqpProxy {
    /// Listens on a free loopback port and proxies to `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> AmqpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let inject = Arc::new(Mutex::new(Vec::new()));
        let flow_oks = Arc::new(AtomicU32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (inj, oks, stp) = (inject.clone(), flow_oks.clone(), stop.clone());
        thread::spawn(move || {
            let Ok((client, _)) = listener.accept() else {
                return;
            };
            let server = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
            let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let stp2 = stp.clone();
            thread::spawn(move || upstream_pump(c2, s2, oks, stp2));
            downstream_pump(server, client, inj, stp);
        });
        AmqpProxy {
            port,
            inject,
            flow_oks,
            stop,
        }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sends `frame` to the client at the next frame boundary.
    pub fn inject(&self, frame: Vec<u8>) {
        self.inject.lock().unwrap().push(frame);
    }

    /// channel.flow-ok frames the client sent (and the proxy dropped).
    pub fn flow_oks(&self) -> u32 {
        self.flow_oks.load(Ordering::SeqCst)
    }
}

impl Drop for AmqpProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// RabbitMQ -> client, frame by frame, with injections between frames.
fn downstream_pump(
    mut server: TcpStream,
    mut client: TcpStream,
    inject: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
) {
    server
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    while !stop.load(Ordering::SeqCst) {
        match server.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
        let mut at = 0;
        while let Some(len) = frame_len(&buf[at..]) {
            if client.write_all(&buf[at..at + len]).is_err() {
                return;
            }
            at += len;
        }
        buf.drain(..at);
        // Only whole frames were forwarded: the client is at a frame
        // boundary, whatever is left in `buf`.
        for f in inject.lock().unwrap().drain(..) {
            if client.write_all(&f).is_err() {
                return;
            }
        }
    }
    let _ = client.shutdown(Shutdown::Both);
}

/// Client -> RabbitMQ, dropping channel.flow-ok.
fn upstream_pump(
    mut client: TcpStream,
    mut server: TcpStream,
    flow_oks: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    while !stop.load(Ordering::SeqCst) {
        match client.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        let mut at = 0;
        while let Some(len) = frame_len(&buf[at..]) {
            let f = &buf[at..at + len];
            let flow_ok = f[0] == 1 && len >= 11 && f[7..11] == [0, 20, 0, 21];
            if flow_ok {
                flow_oks.fetch_add(1, Ordering::SeqCst);
            } else if server.write_all(f).is_err() {
                return;
            }
            at += len;
        }
        buf.drain(..at);
    }
    let _ = server.shutdown(Shutdown::Both);
}
