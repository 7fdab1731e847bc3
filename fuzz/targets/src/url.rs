//! The runtime's server URL parsing (`nats://` or `tls://`, then
//! `[user:pass@|token@]host[:port]`).

use courier::nats::ServerAddr;

/// Any string: a typed error or an address that prints (without
/// credentials) to a URL parsing back to the same host and port.
pub fn url(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ServerAddr::parse(text) {
        Ok(addr) => {
            assert!(
                !addr.host().is_empty(),
                "parsed an empty host from {text:?}"
            );
            assert_ne!(addr.port(), 0, "parsed port 0 from {text:?}");
            let shown = addr.to_string();
            // Display and Debug never carry credentials: only host and port.
            let scheme = if addr.is_tls() { "tls" } else { "nats" };
            let expected = if addr.host().contains(':') {
                format!("{scheme}://[{}]:{}", addr.host(), addr.port())
            } else {
                format!("{scheme}://{}:{}", addr.host(), addr.port())
            };
            assert_eq!(shown, expected);
            assert_eq!(format!("{addr:?}"), format!("ServerAddr({expected})"));
            let again = ServerAddr::parse(&shown).unwrap_or_else(|e| {
                panic!("{text:?} parsed, but its display {shown:?} does not: {e}")
            });
            assert_eq!(again.is_tls(), addr.is_tls(), "{text:?} -> {shown:?}");
            assert!(
                again.same_endpoint(&addr),
                "{text:?} -> {shown:?} -> {again:?}"
            );
        }
        Err(e) => {
            let shown = e.to_string();
            assert!(!shown.is_empty());
        }
    }
}
