//! How a RabbitMQ node of our own is laid out and launched: every file and
//! directory it uses is under one temp dir (nothing from /etc/rabbitmq or
//! /var/lib/rabbitmq applies), on ports we chose. Shared by the tests'
//! [`crate::rabbitmq`] and the benchmark's `bench/src/rabbitmq.rs` (which
//! includes this file by path), so it uses `std` only.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian puts the server scripts (the /usr/sbin ones switch user).
pub const RABBITMQ_BIN: &str = "/usr/lib/rabbitmq/bin";

/// `RABBITMQ_BIN/name`, or a message saying to run scripts/setup.sh.
pub fn script(name: &str) -> Result<PathBuf, String> {
    let p = Path::new(RABBITMQ_BIN).join(name);
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "{} missing: run scripts/setup.sh (installs rabbitmq-server)",
            p.display()
        ))
    }
}

/// One node: its directory, Erlang node name and ports.
pub struct NodeLayout<'a> {
    /// Holds config, data (mnesia), logs and the pid file.
    pub dir: &'a Path,
    /// `name@localhost`, unique per node.
    pub node: &'a str,
    /// The AMQP listener.
    pub amqp_port: u16,
    /// The Erlang distribution port (rabbitmqctl talks to it).
    pub dist_port: u16,
    /// `RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS` (scheduler flags).
    pub erl_args: &'a str,
}

impl NodeLayout<'_> {
    /// Writes `rabbitmq.conf` (`conf`), `enabled_plugins` (`plugins`, an
    /// Erlang list such as `[rabbitmq_management]`) and an empty
    /// `rabbitmq-env.conf` into the node's directory.
    pub fn write_files(&self, conf: &str, plugins: &str) -> io::Result<()> {
        std::fs::write(self.dir.join("rabbitmq.conf"), conf)?;
        std::fs::write(self.dir.join("enabled_plugins"), format!("{plugins}.\n"))?;
        // Empty: the system's env file must not apply.
        std::fs::write(self.dir.join("rabbitmq-env.conf"), "")
    }

    /// Points `cmd` (rabbitmq-server or rabbitmqctl) at this node.
    pub fn apply_env(&self, cmd: &mut Command) {
        let d = self.dir;
        cmd.env("HOME", d)
            .env("RABBITMQ_NODENAME", self.node)
            .env("RABBITMQ_NODE_PORT", self.amqp_port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("RABBITMQ_CONF_ENV_FILE", d.join("rabbitmq-env.conf"))
            .env("RABBITMQ_PID_FILE", d.join("pid"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", d.join("advanced.config"))
            .env("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", self.erl_args);
    }
}
