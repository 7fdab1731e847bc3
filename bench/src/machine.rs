//! Describes the machine for the report (what `nproc`, `uname -r` and
//! lscpu's model name say).

use crate::report::Machine;

/// CPU count, kernel release and CPU model of this machine.
pub fn describe() -> Machine {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("unknown")
        .trim()
        .to_string();
    Machine {
        cpus,
        kernel,
        cpu_model,
    }
}
