//! NSQ V2 protocol.
