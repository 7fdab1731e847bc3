//! The cost of sealing publishes through [`TlsLayer::encode`], without a
//! network: a `TlsLayer` completes a TLS 1.3 handshake against an in-memory
//! rustls server (generated CA), then seals `TLS_SEAL_MSGS` (default
//! 200,000) NATS `PUB` commands with a 16-byte payload, in batches of
//! ~1.1 MB as the NATS writer hands them over. The server decrypts every
//! record, and the test checks the plaintext arrives byte for byte.
//!
//! Prints heap allocations per message and per record of the seal path.
//! Instructions per message: run the binary under callgrind with
//! `TLS_SEAL_MSGS=N` and `2N` and divide the difference by N (the command is
//! in `/work/notes/issue-10-seal.md`).

use std::io::Read;
use std::sync::Arc;

use courier::layers::{TlsConfig, TlsLayer};
use courier_tests::alloc_count::{thread_allocations, CountingAlloc};
use courier_tests::certs::TestPki;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// One 16-byte publish as the NATS session encodes it.
const PUB: &[u8] = b"PUB alloc.pub 16\r\n0123456789abcdef\r\n";
/// Plaintext handed to one `encode` call (what the writer batches).
const BATCH: usize = 1_100_000;

fn server(pki: &TestPki) -> ServerConnection {
    let certs = CertificateDer::pem_file_iter(&pki.server_cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&pki.server_key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    ServerConnection::new(Arc::new(config)).unwrap()
}

/// Feeds `wire` to the server; returns the plaintext it decrypted.
fn server_reads(server: &mut ServerConnection, mut wire: &[u8], reply: &mut Vec<u8>) -> Vec<u8> {
    let mut plain = Vec::new();
    while !wire.is_empty() {
        server.read_tls(&mut wire).unwrap();
        server.process_new_packets().unwrap();
        let _ = server.reader().read_to_end(&mut plain);
    }
    while server.wants_write() {
        server.write_tls(reply).unwrap();
    }
    plain
}

#[test]
fn sealing_publishes_allocates_per_record_and_delivers_every_byte() {
    let msgs: usize = std::env::var("TLS_SEAL_MSGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let pki = TestPki::generate();
    let config = TlsConfig::new()
        .ca_pem(pki.ca_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let name = TlsConfig::new().name_for("localhost").unwrap();
    let mut client = TlsLayer::new(config, name).unwrap();
    let mut server = server(&pki);

    // Handshake in memory.
    let (mut to_server, mut to_client, mut plain) = (Vec::new(), Vec::new(), Vec::new());
    client.flush(&mut to_server);
    for _ in 0..10 {
        if !client.is_handshaking() && to_server.is_empty() {
            break;
        }
        let got = server_reads(&mut server, &to_server, &mut to_client);
        assert!(got.is_empty());
        to_server.clear();
        client
            .decode(&to_client, &mut plain, &mut to_server)
            .unwrap();
        to_client.clear();
    }
    assert!(!client.is_handshaking(), "handshake did not finish");
    // The session tickets the server sent after the handshake.
    let _ = server_reads(&mut server, &to_server, &mut to_client);
    client
        .decode(&to_client, &mut plain, &mut to_server)
        .unwrap();
    to_server.clear();

    let per_batch = BATCH / PUB.len();
    let batch: Vec<u8> = PUB.repeat(per_batch);
    let mut wire = Vec::with_capacity(2 * BATCH);
    let (mut sealed, mut records, mut wire_bytes, mut batches) = (0usize, 0usize, 0usize, 0u64);
    let mut allocs = 0u64;
    let mut check = Vec::new();
    while sealed < msgs {
        let n = per_batch.min(msgs - sealed);
        let plain = &batch[..n * PUB.len()];
        wire.clear();
        let before = thread_allocations();
        client.encode(plain, &mut wire).unwrap();
        allocs += thread_allocations() - before;
        records += plain.len().div_ceil(16 * 1024);
        wire_bytes += wire.len();
        let got = server_reads(&mut server, &wire, &mut check);
        assert_eq!(
            got.len(),
            plain.len(),
            "server decrypted a different length"
        );
        assert!(got == plain, "server decrypted different bytes");
        sealed += n;
        batches += 1;
    }
    println!(
        "sealed {sealed} 16-byte publishes ({} plaintext bytes, {records} records, {wire_bytes} \
         wire bytes): {allocs} allocations = {:.5} per message, {:.2} per record",
        sealed * PUB.len(),
        allocs as f64 / sealed as f64,
        allocs as f64 / records as f64
    );
    // rustls 0.23 allocates one buffer per sealed record (its encrypter
    // returns an owned record); anything more per record is a regression
    // of this path (e.g. a copy of the batch, a per-message buffer).
    assert!(
        allocs <= records as u64 + 2 * batches,
        "sealing {records} records in {batches} batches took {allocs} allocations"
    );
}
