//! `courier-bench`: courier beside the reference NATS and NSQ clients, on
//! the same servers in the same run.
//!
//! Every client runs as its own child process (this binary's hidden
//! `worker` subcommand for in-process clients, the Go tools as they are), so
//! each one's CPU time and syscalls are counted on their own (`perf stat`)
//! and the counting allocator sees only the client under test.

mod alloc_count;
mod amqp_raw;
mod amqp_workers;
mod async_nats_client;
mod async_nats_js;
mod courier_client;
#[cfg(feature = "courier")]
mod courier_js;
#[cfg(feature = "courier")]
mod courier_nsq;
mod machine;
mod plot;
mod process;
mod rabbitmq;
mod ratios;
mod rawproto;
mod report;
mod scenarios;
mod servers;
mod tls_pki;
mod worker;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Version of the async-nats crate the harness is built with (Cargo.toml).
pub const ASYNC_NATS_VERSION: &str = "0.42";

/// Benchmarks courier against nats bench (natscli), async-nats, the nsq
/// module's bench_writer/bench_reader and a broker-bound ceiling.
///
/// Examples:
///   courier-bench --quick --json out.json --plot out.svg
///   courier-bench --only "nats publish" --only "nats request"
///   courier-bench --json bench.json --markdown tables.md --plot bench.svg
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// A few thousand messages per run (for tests and smoke checks).
    #[arg(long)]
    quick: bool,
    /// Write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Draw throughput by payload size and latency distributions to FILE.svg.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Write the Markdown tables (headline with ratios, then detail) to FILE.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Only scenarios whose "protocol scenario" contains this (repeatable),
    /// e.g. "nats publish", "nats request", "nsq".
    #[arg(long, value_name = "TEXT")]
    only: Vec<String>,
    /// courier transport: auto (io_uring, epoll when refused), uring, epoll.
    #[arg(long, default_value = "auto")]
    transport: String,
    /// Rounds: every group runs its clients interleaved once per round, in
    /// an order rotated each round; ratios are medians of the per-round
    /// paired ratios (default: 7 for a full run, 1 with --quick).
    #[arg(long, value_name = "N")]
    repeat: Option<usize>,
    /// `both` (each round: an unpinned pass, then a pinned pass of the
    /// headline scenarios), `unpinned` or `pinned` (broker on CPU 0, client
    /// under test on CPU 1, via taskset). Default: both; unpinned with --quick.
    #[arg(long, value_name = "MODE")]
    pinning: Option<String>,
    /// Do not wrap clients in `perf stat` (no syscall counts).
    #[arg(long)]
    no_perf: bool,
    /// Render an existing JSON report (--json FILE is read, not run) to
    /// --plot / --markdown without benchmarking.
    #[arg(long, value_name = "FILE")]
    from_json: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Internal: run one client in one scenario and print its JSON result.
    #[command(hide = true)]
    Worker(worker::WorkerArgs),
}

pub use alloc_count::CountingAllocator;

/// Runs the benchmark command line with `args` (the first item is the
/// program name, as in `std::env::args_os`) and returns the exit code.
///
/// The `courier` CLI calls this for `courier bench`. Workers are spawned as
/// `<current executable> worker ...`, so a binary embedding this must route
/// a `worker` first argument here too, and should install
/// [`CountingAllocator`] as its global allocator for the allocation counts.
pub fn main_with_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let command_line = args
        .iter()
        .map(|a| {
            let a = a.to_string_lossy();
            if a.contains(' ') {
                format!("'{a}'")
            } else {
                a.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    if let Some(Command::Worker(args)) = cli.command {
        return worker::run(args);
    }
    match run(cli, &command_line) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("courier-bench: {e}");
            1
        }
    }
}

fn run(cli: Cli, command_line: &str) -> Result<(), String> {
    let command_line = command_line.to_string();
    let report = match &cli.from_json {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("read {}: {e}", path.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("parse {}: {e}", path.display()))?
        }
        None => {
            let mut plan = if cli.quick {
                scenarios::Plan::quick()
            } else {
                scenarios::Plan::full()
            };
            plan.only = cli.only.clone();
            plan.transport = cli.transport.clone();
            let launcher = process::Launcher::probe(!cli.no_perf);
            let repeat = cli.repeat.unwrap_or(if cli.quick { 1 } else { 7 }).max(1);
            let pinning = cli
                .pinning
                .clone()
                .unwrap_or_else(|| if cli.quick { "unpinned" } else { "both" }.into());
            let passes: &[bool] = match pinning.as_str() {
                "both" => &[false, true],
                "unpinned" => &[false],
                "pinned" => &[true],
                other => return Err(format!("--pinning {other:?}: use both, unpinned or pinned")),
            };
            if passes.contains(&true) && machine::describe().cpus < 2 {
                return Err("--pinning needs at least 2 CPUs (broker on 0, client on 1)".into());
            }
            let mut runs = Vec::new();
            for round in 0..repeat {
                let mut merged: Option<report::Report> = None;
                for &pinned in passes {
                    let pass = if pinned { "pinned" } else { "unpinned" };
                    eprintln!("courier-bench: round {} of {repeat}, {pass}", round + 1);
                    let before = (machine::loadavg(), machine::busiest_processes(5));
                    let mut r =
                        scenarios::Bench::new(plan.clone(), launcher.clone(), round, pinned)?.run();
                    let after = (machine::loadavg(), machine::busiest_processes(5));
                    r.load.push(format!(
                        "round {} {pass}: loadavg {} before, {} after; busiest before: {}; after: {}",
                        round + 1,
                        before.0,
                        after.0,
                        before.1,
                        after.1
                    ));
                    merged = Some(match merged {
                        None => r,
                        Some(mut m) => {
                            m.results.extend(r.results);
                            m.load.extend(r.load);
                            m.count_mismatches += r.count_mismatches;
                            for n in r.notes {
                                if !m.notes.contains(&n) {
                                    m.notes.push(n);
                                }
                            }
                            m
                        }
                    });
                }
                runs.extend(merged);
            }
            let mut report = report::Report::median_of(runs);
            report.command = command_line.clone();
            report
        }
    };
    println!("{}", report.terminal_table());
    if let Some(path) = &cli.json {
        if cli.from_json.is_none() {
            let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
            std::fs::write(path, json).map_err(|e| format!("write {}: {e}", path.display()))?;
        }
    }
    if let Some(path) = &cli.markdown {
        std::fs::write(path, report.markdown())
            .map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    if let Some(path) = &cli.plot {
        let svg = plot::render_svg(&report)?;
        std::fs::write(path, svg).map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    if report.count_mismatches > 0 {
        return Err(format!(
            "{} series FAILED the server-side count check (the server's count differs from \
             the client's claim): see their errors above; their numbers are not results",
            report.count_mismatches
        ));
    }
    Ok(())
}
