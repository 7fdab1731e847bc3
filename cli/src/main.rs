//! `courier`: the command line of courier (NATS, NSQ and AMQP).
//!
//! Every failure ends as one line on stderr (`courier: ...`) and a distinct
//! exit code: 1 other, 2 usage or bad URL, 3 unreachable, 4 auth refused.

mod amqp_cmd;
mod args;
mod fail;
mod mom_cmd;
mod nats_cmd;
mod nats_security;
mod nsq_cmd;
mod output;
mod payload;
mod progress;
mod target;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};
use fail::{CliResult, Failure};
use target::Target;

/// The benchmark's workers run inside this executable (`courier worker`),
/// and report heap allocations per message: count them here as the
/// benchmark's own binary does (one relaxed atomic add per allocation).
#[cfg(feature = "bench")]
#[global_allocator]
static ALLOCATOR: courier_bench::CountingAllocator = courier_bench::CountingAllocator;

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("courier: {failure}");
            failure.exit_code()
        }
    }
}

fn run(cli: Cli) -> CliResult<ExitCode> {
    let done = match cli.command {
        Command::Pub(a) => match Target::parse(&a.url)? {
            Target::Nats(t) => in_runtime(nats_cmd::publish(&t, &a)),
            Target::Nsqd(t) => nsq_cmd::publish(&t, &a),
            Target::Amqp(url) => in_runtime(amqp_cmd::publish(&url, &a)),
            Target::Mom(url) => in_runtime(mom_cmd::publish(&url, &a)),
            Target::Lookupd(_) => Err(Failure::usage(
                "publish to an nsqd (nsq://host:4150), not to nsqlookupd",
            )),
        },
        Command::Sub(a) => match Target::parse(&a.url)? {
            Target::Nats(t) => in_runtime(nats_cmd::sub(&t, &a)),
            Target::Amqp(url) => in_runtime(amqp_cmd::sub(&url, &a)),
            Target::Mom(url) => in_runtime(mom_cmd::sub(&url, &a)),
            _ => Err(Failure::usage(
                "sub is for NATS; for NSQ topics use `courier tail nsq://host:4150/TOPIC`",
            )),
        },
        Command::Req(a) => match Target::parse(&a.url)? {
            Target::Nats(t) => in_runtime(nats_cmd::request(&t, &a)),
            _ => Err(Failure::usage("req is for NATS (nats://host:4222)")),
        },
        Command::Reply(a) => match Target::parse(&a.url)? {
            Target::Nats(t) => in_runtime(nats_cmd::reply(&t, &a)),
            _ => Err(Failure::usage("reply is for NATS (nats://host:4222)")),
        },
        Command::Tail(a) => match Target::parse(&a.url)? {
            Target::Nsqd(t) => nsq_cmd::tail(nsq_cmd::Source::Nsqd(t), &a),
            Target::Lookupd(t) => nsq_cmd::tail(nsq_cmd::Source::Lookupd(t), &a),
            Target::Nats(_) | Target::Amqp(_) | Target::Mom(_) => Err(Failure::usage(
                "tail is for NSQ topics; for NATS or AMQP use `courier sub URL ...`",
            )),
        },
        Command::Info(a) => match Target::parse(&a.url)? {
            Target::Amqp(url) => in_runtime(amqp_cmd::info(&url, &a)),
            _ if a.tls.tls_ca.is_some() || a.tls.tls_cert.is_some() => Err(Failure::usage(
                "--tls-ca/--tls-cert/--tls-key on info are for amqps:// URLs",
            )),
            Target::Nats(t) => nats_cmd::info(&t, &a),
            Target::Nsqd(t) => nsq_cmd::nsqd_info(&t, &a),
            Target::Lookupd(t) => nsq_cmd::lookupd_info(&t),
            Target::Mom(_) => Err(Failure::usage("info takes a broker URL, not a facade URI")),
        },
        #[cfg(feature = "bench")]
        Command::Bench(a) => return Ok(forward_to_bench("courier bench", None, a.args)),
        #[cfg(feature = "bench")]
        Command::Worker(a) => return Ok(forward_to_bench("courier-bench", Some("worker"), a.args)),
    };
    done.map(|()| ExitCode::SUCCESS)
}

/// The runtime's NSQ warnings (an nsqd lost, a lookup failed) become
/// `courier: ...` lines, but only once a long run is under way (see
/// [`show_runtime_warnings`]): a failing command says one line, its own.
/// NATS connection events are reported by the commands themselves.
/// `RUST_LOG` (e.g. `RUST_LOG=debug`) shows the runtime's log throughout.
fn init_logging() {
    use std::io::Write;
    let user_chose = std::env::var_os("RUST_LOG").is_some();
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("off,courier::nsq=warn"),
    )
    .format(|out, record| writeln!(out, "courier: {}", record.args()))
    .init();
    if !user_chose {
        log::set_max_level(log::LevelFilter::Off);
    }
}

/// Lets the runtime's warnings through from now on (a long run started).
pub fn show_runtime_warnings() {
    if std::env::var_os("RUST_LOG").is_none() {
        log::set_max_level(log::LevelFilter::Warn);
    }
}

/// Runs an async command on the courier runtime (io_uring, or epoll where
/// io_uring is refused; `COURIER_TRANSPORT` forces one).
fn in_runtime<F: std::future::Future<Output = CliResult>>(command: F) -> CliResult {
    let runtime = courier::Runtime::new().map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::InvalidInput {
            fail::Kind::Usage
        } else {
            fail::Kind::Other
        };
        Failure::new(kind, format!("cannot start the runtime: {e}"))
    })?;
    runtime.block_on(command)
}

/// Hands the arguments to the benchmark's own command line
/// (`courier_bench::main_with_args`), which parses, runs and reports.
#[cfg(feature = "bench")]
fn forward_to_bench(
    program: &str,
    subcommand: Option<&str>,
    args: Vec<std::ffi::OsString>,
) -> ExitCode {
    let argv = std::iter::once(program.into())
        .chain(subcommand.map(Into::into))
        .chain(args);
    let code = courier_bench::main_with_args(argv);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
