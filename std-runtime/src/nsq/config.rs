//! Settings shared by [`Producer`](super::Producer) and
//! [`Consumer`](super::Consumer).

use std::time::Duration;

use crate::layers::TlsConfig;

/// Stream compression to ask nsqd for (negotiated through IDENTIFY).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// No compression.
    #[default]
    None,
    /// Framed snappy.
    Snappy,
    /// Raw DEFLATE at this level (1..=9, capped by nsqd's
    /// `--max-deflate-level`).
    Deflate {
        /// Compression level.
        level: u8,
    },
}

/// Connection and delivery settings. Start from [`Config::default`] and
/// change fields.
#[derive(Clone, Debug)]
pub struct Config {
    /// IDENTIFY `client_id` (default: the host name).
    pub client_id: Option<String>,
    /// IDENTIFY `hostname` (default: the host name).
    pub hostname: Option<String>,
    /// IDENTIFY `user_agent`.
    pub user_agent: String,
    /// Heartbeat interval to ask nsqd for (None: nsqd's default, 30 s).
    pub heartbeat_interval: Option<Duration>,
    /// Time before nsqd redelivers an un-FINished message (None: nsqd's).
    pub msg_timeout: Option<Duration>,
    /// Percentage of the channel's messages this consumer receives.
    pub sample_rate: Option<u8>,
    /// Upgrade to TLS; verification uses the CA certificates given here.
    pub tls: Option<TlsConfig>,
    /// Stream compression.
    pub compression: Compression,
    /// AUTH secret, sent when nsqd requires it.
    pub auth_secret: Option<Vec<u8>>,
    /// Largest frame accepted from nsqd (message size + 34 bytes); the
    /// receive buffer is allocated once at this size.
    pub max_frame_size: usize,
    /// Largest command (e.g. an MPUB batch) the client can queue.
    pub max_command_size: usize,
    /// TCP connect + handshake limit.
    pub connect_timeout: Duration,
    /// How long a publish waits for nsqd's answer.
    pub publish_timeout: Duration,
    /// First delay between reconnect attempts to an nsqd; it doubles per
    /// failed attempt up to `reconnect_delay_max`, jittered (the shared
    /// [`crate::reconnect`] policy). A connection that dies within its
    /// first 5 s counts as a failed attempt.
    pub reconnect_delay: Duration,
    /// Longest delay between reconnect attempts.
    pub reconnect_delay_max: Duration,
    /// Producer: failed reconnects in a row after which a publish caught by
    /// a lost connection gives up with [`Error::Unreachable`](super::Error)
    /// (`None`: retry until `stop`). Only after the producer was connected
    /// once: the first connect fails at once.
    pub reconnect_attempts: Option<usize>,
    /// Consumer: deliveries after which the give-up hook runs and the
    /// message is FIN'd (0: never give up).
    pub max_attempts: u16,
    /// Consumer: FIN after the handler returns Ok (off: the handler calls
    /// [`Message::finish`](super::Message::finish) or
    /// [`Message::requeue`](super::Message::requeue) itself).
    pub auto_finish: bool,
    /// Consumer: REQ delay for a failed message is `requeue_delay *
    /// attempts`, capped at `max_requeue_delay`.
    pub requeue_delay: Duration,
    /// Consumer: longest REQ delay.
    pub max_requeue_delay: Duration,
    /// Consumer: first RDY backoff after a handler failure (doubles up to
    /// `max_backoff`); zero disables backoff.
    pub backoff: Duration,
    /// Consumer: longest RDY backoff.
    pub max_backoff: Duration,
    /// Consumer: how often nsqlookupd is polled.
    pub lookup_poll_interval: Duration,
    /// Consumer: each wait between nsqlookupd polls is shortened by a
    /// random part of up to this fraction of the interval (0.3, as go-nsq's
    /// `lookupd_poll_jitter`), so a fleet of consumers started together
    /// does not poll in lockstep. Clamped to 0..=1.
    pub lookup_poll_jitter: f64,
    /// Consumer: how long [`Consumer::stop`](super::Consumer::stop) waits
    /// for in-flight handlers.
    pub stop_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            client_id: None,
            hostname: None,
            user_agent: concat!("courier/", env!("CARGO_PKG_VERSION")).to_string(),
            heartbeat_interval: None,
            msg_timeout: None,
            sample_rate: None,
            tls: None,
            compression: Compression::None,
            auth_secret: None,
            max_frame_size: 1024 * 1024 + 64,
            max_command_size: 5 * 1024 * 1024 + 4096,
            connect_timeout: Duration::from_secs(5),
            publish_timeout: Duration::from_secs(10),
            reconnect_delay: Duration::from_secs(1),
            reconnect_delay_max: Duration::from_secs(30),
            reconnect_attempts: Some(10),
            max_attempts: 5,
            auto_finish: true,
            requeue_delay: Duration::from_secs(1),
            max_requeue_delay: Duration::from_secs(60),
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            lookup_poll_interval: Duration::from_secs(60),
            lookup_poll_jitter: 0.3,
            stop_timeout: Duration::from_secs(30),
        }
    }
}

/// The shared reconnect policy with this configuration's knobs.
pub(crate) fn reconnect_policy(config: &Config) -> crate::reconnect::BackoffPolicy {
    crate::reconnect::BackoffPolicy::new(config.reconnect_delay, config.reconnect_delay_max)
        .max_attempts(config.reconnect_attempts)
}

pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "courier".to_string())
}
