//! Drivers that run the protocol state machines over `embedded-io` transports
//! (blocking) and `embedded-io-async` transports, on any TCP stack.
