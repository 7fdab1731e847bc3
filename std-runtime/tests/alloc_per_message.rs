//! Heap allocations per message on the publish and receive paths, counted
//! by a global allocator, in steady state after a warm-up.
//!
//! Publishing writes into the session's transmit buffer: zero allocations
//! per message. Receiving copies each message into a shared 256 KiB chunk
//! (`Bytes` windows), so it allocates twice per chunk (the chunk and its
//! shared header), i.e. a small fraction of an allocation per message; the
//! test prints the exact figure and bounds it well below one.
//!
//! One test per binary: the counter is process-wide.

use courier::nats;
use courier_tests::alloc_count::{process_allocations, CountingAlloc};
use courier_tests::NatsServer;

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocations() -> u64 {
    process_allocations()
}

const MESSAGES: u64 = 100_000;

#[test]
fn publish_and_receive_paths_allocate_nothing_per_message_in_steady_state() {
    let server = NatsServer::start();
    courier::run(async {
        let client = nats::connect([server.url()]).await.unwrap();
        let payload = [b'x'; 16];

        // Publish path (nothing subscribes, so the server just discards).
        for _ in 0..10_000 {
            client.publish("alloc.pub", payload).await.unwrap();
        }
        client.flush().await.unwrap();
        let before = allocations();
        for _ in 0..MESSAGES {
            client.publish("alloc.pub", payload).await.unwrap();
        }
        let publish_allocs = allocations() - before;
        client.flush().await.unwrap();

        // Receive path: publish a batch, then consume it.
        let mut sub = client.subscribe("alloc.sub").await.unwrap();
        let mut received = 0u64;
        let mut receive_allocs = 0u64;
        for round in 0..2 {
            // Round 0 warms up (queue growth, chunk promotion).
            let before = allocations();
            let batch = if round == 0 { 20_000 } else { MESSAGES };
            for sent in 0..batch {
                client.publish("alloc.sub", payload).await.unwrap();
                // Consume as we go so the queue stays short.
                if sent % 1000 == 999 {
                    while sub.pending() > 0 {
                        let m = sub.next().await.unwrap();
                        assert_eq!(m.payload.len(), 16);
                        received += 1;
                    }
                }
            }
            while received
                < if round == 0 {
                    20_000
                } else {
                    20_000 + MESSAGES
                }
            {
                let m = sub.next().await.unwrap();
                assert_eq!(m.payload.len(), 16);
                received += 1;
            }
            if round == 1 {
                receive_allocs = allocations() - before;
            }
        }
        let publish_per_msg = publish_allocs as f64 / MESSAGES as f64;
        let receive_per_msg = receive_allocs as f64 / MESSAGES as f64;
        println!(
            "allocations per message: publish {publish_per_msg:.5} ({publish_allocs} in {MESSAGES}), \
             publish+receive {receive_per_msg:.5} ({receive_allocs} in {MESSAGES}; payload chunks of 256 KiB)"
        );
        assert_eq!(publish_allocs, 0, "publish allocates per message");
        assert!(
            receive_per_msg < 0.01,
            "receive allocates {receive_per_msg} per message"
        );
    });
}
