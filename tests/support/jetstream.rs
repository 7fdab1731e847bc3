//! nats-server with JetStream (`-js`) and its store in a temp directory
//! owned by the test, so a restart (after `kill`, SIGKILL) finds the
//! streams it stored.

use std::ops::{Deref, DerefMut};
use std::path::Path;

use crate::NatsServer;

/// A JetStream-enabled nats-server; derefs to [`NatsServer`] for `url`,
/// `kill`, `restart` (same port, same store directory).
pub struct JetStreamServer {
    server: NatsServer,
    store: tempfile::TempDir,
}

impl JetStreamServer {
    /// Starts `nats-server -js -sd <temp dir>` on a free loopback port.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// As [`JetStreamServer::start`] with extra arguments.
    pub fn start_with(extra: &[&str]) -> Self {
        let store = tempfile::tempdir().expect("temp dir for the JetStream store");
        let dir = store.path().display().to_string();
        let mut args = vec!["-js", "-sd", dir.as_str()];
        args.extend_from_slice(extra);
        let server = NatsServer::start_with(&args);
        JetStreamServer { server, store }
    }

    /// The store directory.
    pub fn store_dir(&self) -> &Path {
        self.store.path()
    }
}

impl Deref for JetStreamServer {
    type Target = NatsServer;
    fn deref(&self) -> &NatsServer {
        &self.server
    }
}

impl DerefMut for JetStreamServer {
    fn deref_mut(&mut self) -> &mut NatsServer {
        &mut self.server
    }
}
