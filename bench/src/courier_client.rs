//! courier's side of every scenario. Filled in as the courier APIs land.

use crate::report::WorkerResult;
use crate::worker::WorkerArgs;

/// Whether this build can run courier in worker `scenario`.
pub fn supports(scenario: &str) -> bool {
    let _ = scenario;
    false
}

/// Runs one courier scenario.
pub fn run(args: &WorkerArgs) -> Result<WorkerResult, String> {
    Err(format!(
        "courier scenario {:?} is not wired in yet (the courier API it needs has not landed)",
        args.scenario
    ))
}

/// Sizes in bytes of courier's connection-state types, for the report.
pub fn state_sizes() -> Vec<(String, usize)> {
    Vec::new()
}
