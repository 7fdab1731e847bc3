//! Test support: start real brokers on free loopback ports, scripted TCP peers.
