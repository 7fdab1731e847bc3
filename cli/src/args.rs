//! The command line: subcommands and their arguments (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::output::Format;

const EXAMPLES: &str = "\
URLs (the scheme picks the protocol):
  nats://[user:pass@|token@]host[:4222]   NATS (several: comma-separated)
  nsq://host[:4150][/topic]               one nsqd, TCP port
  nsqlookupd://host[:4161][/topic]        discovery through nsqlookupd, HTTP port
  tls://[user:pass@|token@]host[:4222]    NATS over TLS (--tls-ca FILE to trust a private CA)

Examples:
  courier sub nats://127.0.0.1:4222 'telemetry.>'
  courier pub nats://127.0.0.1:4222 telemetry.temp 21.5
  courier pub nats://127.0.0.1:4222 telemetry.temp hello --count 1000 --rate 100
  tail -f app.log | courier pub nats://127.0.0.1:4222 logs.app
  courier sub nats://127.0.0.1:4222 orders --json --count 10 > orders.jsonl
  courier reply nats://127.0.0.1:4222 time.now --respond \"$(date)\"
  courier req nats://127.0.0.1:4222 time.now '' --timeout 2s
  courier pub nsq://127.0.0.1:4150 events '{\"id\":1}' --count 10000 --batch 100
  courier tail nsqlookupd://127.0.0.1:4161/events
  courier info nats://127.0.0.1:4222
  courier bench --quick --json bench.json --plot bench.svg

Credentials: user:pass@ or token@ in the URL, or --user/--password/--token
(COURIER_USER, COURIER_PASSWORD, COURIER_TOKEN); --token is also the NSQ AUTH secret.
NATS NKey and JWT auth: --nkey FILE (a seed file) or --creds FILE (a .creds file from nsc).
NATS TLS: --tls-ca FILE, --tls-cert FILE --tls-key FILE (mutual TLS), --tls-first.
Transport: io_uring, or epoll where io_uring is refused; COURIER_TRANSPORT=epoll|uring forces one.

Exit codes: 0 ok, 1 other failure, 2 usage or bad URL, 3 server unreachable,
4 credentials refused. Progress bars show only when stdout is a terminal.";

/// courier: publish, subscribe, request and tail over NATS and NSQ.
#[derive(Parser, Debug)]
#[command(name = "courier", version, after_help = EXAMPLES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Publish messages (NATS subject or NSQ topic).
    #[command(after_help = "\
Examples:
  courier pub nats://127.0.0.1:4222 greet hello
  courier pub nats://127.0.0.1:4222 greet hello --header Trace-Id:42 --count 5
  courier pub nats://127.0.0.1:4222 blobs --file image.png
  printf 'a\\nb\\n' | courier pub nats://127.0.0.1:4222 lines
  courier pub nsq://127.0.0.1:4150 events hi --count 100000 --batch 200 --rate 5000")]
    Pub(PubArgs),
    /// Subscribe and print messages (NATS).
    #[command(after_help = "\
Examples:
  courier sub nats://127.0.0.1:4222 'orders.*'
  courier sub nats://127.0.0.1:4222 orders --queue workers --count 1 --raw
  courier sub nats://127.0.0.1:4222 '>' --json | jq .subject")]
    Sub(SubArgs),
    /// Send a request and print the reply (NATS).
    #[command(after_help = "\
Examples:
  courier req nats://127.0.0.1:4222 math.double 21
  courier req nats://127.0.0.1:4222 svc.status '' --timeout 500ms --json")]
    Req(ReqArgs),
    /// Answer requests: echo them or respond with fixed text (NATS).
    #[command(after_help = "\
Examples:
  courier reply nats://127.0.0.1:4222 svc.echo
  courier reply nats://127.0.0.1:4222 svc.status --respond ok --queue status")]
    Reply(ReplyArgs),
    /// Print an NSQ topic's messages, as nsq_tail does (ephemeral channel).
    #[command(after_help = "\
Examples:
  courier tail nsq://127.0.0.1:4150/events
  courier tail nsqlookupd://127.0.0.1:4161/events --count 10 --json
  courier tail nsq://127.0.0.1:4150/events --channel archive")]
    Tail(TailArgs),
    /// Print server information as JSON (NATS INFO, nsqd /stats, nsqlookupd /nodes).
    #[command(after_help = "\
Examples:
  courier info nats://127.0.0.1:4222
  courier info nsq://127.0.0.1:4150 --http-address 127.0.0.1:4151
  courier info nsqlookupd://127.0.0.1:4161")]
    Info(InfoArgs),
    /// Benchmark courier beside nats bench, async-nats, bench_writer and
    /// bench_reader (all arguments go to the benchmark; see `courier bench --help`).
    #[cfg(feature = "bench")]
    #[command(disable_help_flag = true)]
    Bench(ForwardArgs),
    /// Internal: one benchmark worker process (the benchmark spawns
    /// `<this executable> worker ...`).
    #[cfg(feature = "bench")]
    #[command(hide = true, disable_help_flag = true)]
    Worker(ForwardArgs),
}

/// Arguments handed on unchanged.
#[derive(Args, Debug)]
pub struct ForwardArgs {
    /// Everything after the subcommand.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<std::ffi::OsString>,
}

/// `courier pub`
#[derive(Args, Debug)]
pub struct PubArgs {
    /// Server URL: nats://..., nsq://... (see `courier --help`).
    pub url: String,
    /// NATS subject or NSQ topic.
    pub subject: String,
    /// The message; without it (and without --file) stdin is read, one message a line.
    pub payload: Option<String>,
    /// Read the message from FILE (the whole file is one message).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Send the message N times (with stdin: at most N lines).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// At most this many messages per second.
    #[arg(long, value_name = "MSGS_PER_SEC", value_parser = positive_rate)]
    pub rate: Option<f64>,
    /// A NATS header NAME:VALUE (repeatable).
    #[arg(long, value_name = "NAME:VALUE")]
    pub header: Vec<String>,
    /// AMQP: the exchange to publish to (default: the default exchange "").
    #[arg(long, value_name = "EXCHANGE")]
    pub exchange: Option<String>,
    /// NSQ: send MPUB batches of N messages instead of one PUB each.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = positive_usize)]
    pub batch: usize,
    /// NSQ: deliver after this delay (DPUB; e.g. 30s, 5m).
    #[arg(long, value_name = "DURATION", conflicts_with = "batch")]
    pub defer: Option<humantime::Duration>,
    /// NATS: after a reconnect, send again the publishes written to a server
    /// that went away before confirming them (at-least-once: some may
    /// arrive twice).
    #[arg(long)]
    pub resend_unconfirmed: bool,
    /// NATS: exit 0 even when publishes may have been lost in a disconnect
    /// (the warning is still printed).
    #[arg(long)]
    pub allow_unconfirmed: bool,
    /// NSQ TLS and compression.
    #[command(flatten)]
    pub nsq: NsqArgs,
    /// Credentials.
    #[command(flatten)]
    pub auth: AuthArgs,
}

/// Credentials (override those in the URL; the environment keeps them out
/// of `ps` and shell history).
#[derive(Args, Debug, Clone, Default)]
pub struct AuthArgs {
    /// NATS user name.
    #[arg(long, env = "COURIER_USER", requires = "password")]
    pub user: Option<String>,
    /// NATS password.
    #[arg(
        long,
        env = "COURIER_PASSWORD",
        hide_env_values = true,
        requires = "user"
    )]
    pub password: Option<String>,
    /// NATS token, or the NSQ AUTH secret.
    #[arg(long, env = "COURIER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// NATS NKey auth: FILE holds the user's seed (SU...).
    #[arg(long, value_name = "FILE", conflicts_with = "creds")]
    pub nkey: Option<PathBuf>,
    /// NATS JWT auth: a .creds file (user JWT and seed, as nsc writes it).
    #[arg(long, value_name = "FILE")]
    pub creds: Option<PathBuf>,
    /// NATS: start TLS before the server's INFO (servers with handshake_first).
    #[arg(long)]
    pub tls_first: bool,
}

/// NATS TLS (for `pub`, the same flags are under "NSQ connection").
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "TLS")]
pub struct TlsArgs {
    /// Use TLS, verifying the server against the CA certificates in FILE (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate chain (PEM) for mutual TLS; needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl NsqArgs {
    /// The TLS flags, for NATS commands that share NSQ's.
    pub fn tls(&self) -> TlsArgs {
        TlsArgs {
            tls_ca: self.tls_ca.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
        }
    }
}

/// NSQ connection layers, negotiated with nsqd through IDENTIFY.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "NSQ connection")]
pub struct NsqArgs {
    /// Upgrade to TLS, verifying nsqd against the CA certificates in FILE (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate chain (PEM) for mutual TLS; needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key", requires = "tls_ca")]
    pub tls_cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Stream compression: snappy, deflate, or deflate:LEVEL (1-9).
    #[arg(long, value_name = "KIND", value_parser = compression)]
    pub compression: Option<courier::nsq::Compression>,
}

fn compression(text: &str) -> Result<courier::nsq::Compression, String> {
    use courier::nsq::Compression;
    match text.split_once(':') {
        None if text == "snappy" => Ok(Compression::Snappy),
        None if text == "deflate" => Ok(Compression::Deflate { level: 6 }),
        None if text == "none" => Ok(Compression::None),
        Some(("deflate", level)) => match level.parse::<u8>() {
            Ok(level @ 1..=9) => Ok(Compression::Deflate { level }),
            _ => Err("the DEFLATE level is a number from 1 to 9".into()),
        },
        _ => Err("expected snappy, deflate, deflate:LEVEL or none".into()),
    }
}

/// How received messages are printed (shared flags).
#[derive(Args, Debug, Clone, Copy)]
pub struct FormatArgs {
    /// Print the payload only, one message a line.
    #[arg(long, conflicts_with = "json")]
    pub raw: bool,
    /// Print one JSON object a line (subject, reply, headers, payload).
    #[arg(long)]
    pub json: bool,
}

impl FormatArgs {
    /// The chosen format.
    pub fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else if self.raw {
            Format::Raw
        } else {
            Format::Human
        }
    }
}

/// `courier sub`
#[derive(Args, Debug)]
pub struct SubArgs {
    /// Server URL: nats://...
    pub url: String,
    /// Subject, wildcards allowed (`*` one token, `>` the rest).
    pub subject: String,
    /// Exit after N messages.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Join queue group GROUP: each message goes to one member (AMQP: the queue to consume).
    #[arg(long, value_name = "GROUP")]
    pub queue: Option<String>,
    /// AMQP: bind to this exchange with SUBJECT as the binding key.
    #[arg(long, value_name = "EXCHANGE")]
    pub exchange: Option<String>,
    /// AMQP: at most N unacked messages at once.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub prefetch: u16,
    /// Output format.
    #[command(flatten)]
    pub output: FormatArgs,
    /// Credentials.
    #[command(flatten)]
    pub auth: AuthArgs,
    /// NATS TLS.
    #[command(flatten)]
    pub tls: TlsArgs,
}

impl SubArgs {
    /// The chosen output format.
    pub fn format(&self) -> Format {
        self.output.format()
    }
}

/// `courier req`
#[derive(Args, Debug)]
pub struct ReqArgs {
    /// Server URL: nats://...
    pub url: String,
    /// Subject the responder listens on.
    pub subject: String,
    /// The request body.
    pub payload: String,
    /// How long to wait for the reply (e.g. 500ms, 5s, 1m).
    #[arg(long, default_value = "5s")]
    pub timeout: humantime::Duration,
    /// A header NAME:VALUE (repeatable).
    #[arg(long, value_name = "NAME:VALUE")]
    pub header: Vec<String>,
    /// Print the reply as one JSON object (subject, headers, payload)
    /// instead of its payload.
    #[arg(long)]
    pub json: bool,
    /// Credentials.
    #[command(flatten)]
    pub auth: AuthArgs,
    /// NATS TLS.
    #[command(flatten)]
    pub tls: TlsArgs,
}

impl ReqArgs {
    /// The chosen output format.
    pub fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else {
            Format::Raw
        }
    }
}

/// `courier reply`
#[derive(Args, Debug)]
pub struct ReplyArgs {
    /// Server URL: nats://...
    pub url: String,
    /// Subject to answer on.
    pub subject: String,
    /// Answer each request with its own payload (the default).
    #[arg(long, conflicts_with = "respond")]
    pub echo: bool,
    /// Answer each request with TEXT.
    #[arg(long, value_name = "TEXT")]
    pub respond: Option<String>,
    /// Exit after answering N requests.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Join queue group GROUP, so several responders share the work.
    #[arg(long, value_name = "GROUP")]
    pub queue: Option<String>,
    /// Credentials.
    #[command(flatten)]
    pub auth: AuthArgs,
    /// NATS TLS.
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// `courier tail`
#[derive(Args, Debug)]
pub struct TailArgs {
    /// nsq://host:port/TOPIC or nsqlookupd://host:port/TOPIC
    pub url: String,
    /// Channel to read on (default: a new ephemeral channel, so nothing is
    /// taken away from other consumers and it vanishes when we leave).
    #[arg(long)]
    pub channel: Option<String>,
    /// Exit after N messages.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Messages in flight at once (RDY).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,
    /// Output format.
    #[command(flatten)]
    pub output: FormatArgs,
    /// Credentials (`--token` is the NSQ AUTH secret).
    #[command(flatten)]
    pub auth: AuthArgs,
    /// NSQ TLS and compression.
    #[command(flatten)]
    pub nsq: NsqArgs,
}

/// `courier info`
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Server URL: nats://..., nsq://..., nsqlookupd://..., amqp://..., amqps://...
    pub url: String,
    /// nsqd's HTTP address HOST:PORT (default: the nsq:// host, TCP port + 1).
    #[arg(long, value_name = "HOST:PORT")]
    pub http_address: Option<String>,
    /// TLS for amqps:// (refused with other URLs).
    #[command(flatten)]
    pub tls: TlsArgs,
}

fn positive_usize(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a whole number of at least 1".into()),
    }
}

fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
        _ => Err("expected a number of messages per second above 0, e.g. 100 or 0.5".into()),
    }
}
