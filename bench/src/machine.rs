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

/// `/proc/loadavg`'s three averages, e.g. "9.28 7.35 4.73".
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The busiest processes right now (`top`'s second sample over half a
/// second, so %CPU is current, not a lifetime average), as
/// "rustc 190%, cargo 12%, ..."; empty when `top` is missing.
pub fn busiest_processes(count: usize) -> String {
    let Ok(out) = std::process::Command::new("top")
        .args(["-b", "-n", "2", "-d", "0.5", "-w", "200"])
        .output()
    else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&out.stdout);
    // The second frame starts at the last "PID USER" header line.
    let Some(start) = text.rfind("PID USER") else {
        return String::new();
    };
    let mut header = text[start..].lines();
    let columns: Vec<&str> = header.next().unwrap_or("").split_whitespace().collect();
    let cpu_at = columns.iter().position(|c| *c == "%CPU");
    let cmd_at = columns.iter().position(|c| *c == "COMMAND");
    let (Some(cpu_at), Some(cmd_at)) = (cpu_at, cmd_at) else {
        return String::new();
    };
    header
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let cpu: f64 = fields.get(cpu_at)?.parse().ok()?;
            let command = fields.get(cmd_at)?;
            (cpu >= 1.0).then(|| format!("{command} {cpu:.0}%"))
        })
        .take(count)
        .collect::<Vec<_>>()
        .join(", ")
}
