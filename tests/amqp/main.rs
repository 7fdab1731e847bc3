//! courier's AMQP client against one real RabbitMQ shared by every module
//! of this binary (each test has its own vhost): one node start instead of
//! one per file. `amqp_recovery` keeps its own binary and node, because it
//! kills the broker and raises alarms.
//!
//! Run one part with a filter: `cargo test -p courier-tests --test amqp tls::`.

// Counts allocations per thread for `alloc` (the other modules do not read it).
#[global_allocator]
static GLOBAL: courier_tests::alloc_count::CountingAlloc =
    courier_tests::alloc_count::CountingAlloc;

mod alloc;
mod basic;
mod embedded;
mod interop;
mod large_body;
mod methods;
mod room;
mod settle_later;
mod tls;
mod window_one;
