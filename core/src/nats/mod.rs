//! NATS client protocol.
