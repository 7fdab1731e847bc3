//! Runs one client as a child process and measures it from the outside:
//! wall time, CPU time and syscalls. `perf stat` (counting the
//! `raw_syscalls:sys_enter` tracepoint and `task-clock`, which cost next to
//! nothing) wraps the child when the kernel allows it; otherwise CPU time
//! comes from `wait4`'s rusage and syscalls are not reported.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// What was measured about one finished child.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
    /// Exited with status 0 before the timeout.
    pub success: bool,
    /// Human description of how it ended (exit code, signal, timeout).
    pub status: String,
    /// System calls made by the child and its threads (perf only).
    pub syscalls: Option<u64>,
    /// User + system CPU time of the child and its threads.
    pub cpu: Option<Duration>,
}

/// Which tool counts a child's syscalls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CounterKind {
    /// `perf stat` tracepoint counting: next to no overhead.
    Perf,
    /// `strace -c -f`: ptrace stops at every syscall, so syscall-heavy
    /// clients slow down; used only when perf is not usable.
    Strace,
}

/// Where syscall and CPU counts come from.
#[derive(Debug, Clone)]
pub struct Launcher {
    counter: Option<(CounterKind, PathBuf)>,
    /// When set, every process it starts runs on this CPU alone
    /// (`taskset -c CPU`, outermost, so the counter and its child inherit it).
    cpu: Option<u32>,
}

/// `command` run under `taskset -c CPU` (taskset execs it: same pid, so
/// process-group signals and wait4 still reach it).
pub fn pinned_to(cpu: u32, command: &Command) -> Command {
    let mut c = Command::new("taskset");
    c.arg("-c").arg(cpu.to_string()).arg(command.get_program());
    c.args(command.get_args());
    c
}

const PERF_EVENTS: &str = "raw_syscalls:sys_enter,task-clock";

fn works(counter: CounterKind, bin: &Path) -> bool {
    let Ok(out) = tempfile::NamedTempFile::new() else {
        return false;
    };
    let mut probe = wrapped(counter, bin, out.path());
    let ok = probe
        .arg("true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ok && parse_counts(counter, out.path()).0.is_some()
}

/// `perf stat ... --` or `strace ... --`, writing counts to `out`.
fn wrapped(counter: CounterKind, bin: &Path, out: &Path) -> Command {
    let mut c = Command::new(bin);
    match counter {
        CounterKind::Perf => c.args(["stat", "-x,", "-e", PERF_EVENTS, "-o"]),
        CounterKind::Strace => c.args(["-f", "-c", "-o"]),
    };
    c.arg(out).arg("--");
    c
}

impl Launcher {
    /// Counts syscalls with `perf stat` if it is installed and allowed here
    /// (`perf_event_paranoid` and container seccomp may forbid it), else
    /// with `strace -c -f`, else not at all; `allow_tracing` false turns
    /// both off.
    ///
    /// `COURIER_BENCH_COUNTER=strace` skips perf (to check the fallback).
    pub fn probe(allow_tracing: bool) -> Self {
        let only_strace = std::env::var("COURIER_BENCH_COUNTER").is_ok_and(|v| v == "strace");
        let counter = if allow_tracing {
            [(CounterKind::Perf, "perf"), (CounterKind::Strace, "strace")]
                .into_iter()
                .filter(|(kind, _)| !(only_strace && *kind == CounterKind::Perf))
                .find_map(|(kind, name)| {
                    crate::servers::find_bin(name)
                        .filter(|bin| works(kind, bin))
                        .map(|bin| (kind, bin))
                })
        } else {
            None
        };
        Launcher { counter, cpu: None }
    }

    /// The same launcher, starting its processes on `cpu` only (None: anywhere).
    pub fn on_cpu(&self, cpu: Option<u32>) -> Self {
        Launcher {
            counter: self.counter.clone(),
            cpu,
        }
    }

    /// Which counter source is in use, for the report.
    pub fn syscall_source(&self) -> &'static str {
        match self.counter {
            Some((CounterKind::Perf, _)) => {
                "perf stat -e raw_syscalls:sys_enter,task-clock (whole client process, all threads)"
            }
            Some((CounterKind::Strace, _)) => {
                "strace -c -f (perf not usable here): syscalls of the whole client process; ptrace slows \
                 syscall-heavy clients, and CPU time (wait4 rusage) includes strace's own"
            }
            None => "unavailable (neither perf nor strace usable here); CPU time from wait4 rusage",
        }
    }

    /// Starts `program args` (with `env` added to the environment) in its
    /// own process group, stdout and stderr captured.
    pub fn spawn(
        &self,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Running, String> {
        let counts_out = match self.counter {
            Some((kind, _)) => Some((
                kind,
                tempfile::NamedTempFile::new().map_err(|e| e.to_string())?,
            )),
            None => None,
        };
        let mut command = match (&self.counter, &counts_out) {
            (Some((kind, bin)), Some((_, out))) => {
                let mut c = wrapped(*kind, bin, out.path());
                c.arg(program).args(args);
                c
            }
            _ => {
                let mut c = Command::new(program);
                c.args(args);
                c
            }
        };
        if let Some(cpu) = self.cpu {
            command = pinned_to(cpu, &command);
        }
        command
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let started = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|e| format!("start {}: {e}", program.display()))?;
        let stdout = child.stdout.take().map(drain_in_thread);
        let stderr = child.stderr.take().map(drain_in_thread);
        Ok(Running {
            pid: child.id() as libc::pid_t,
            stdout,
            stderr,
            counts_out,
            started,
            timeout,
            finished: false,
        })
    }
}

fn drain_in_thread<R: Read + Send + 'static>(mut pipe: R) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut text = Vec::new();
        let _ = pipe.read_to_end(&mut text);
        String::from_utf8_lossy(&text).into_owned()
    })
}

/// A started child; [`Running::wait`] collects its [`Outcome`]. Dropping it
/// unfinished kills its whole process group.
pub struct Running {
    pid: libc::pid_t,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
    counts_out: Option<(CounterKind, tempfile::NamedTempFile)>,
    started: Instant,
    timeout: Duration,
    finished: bool,
}

impl Running {
    /// Kills the child's process group now (for helpers that never end by
    /// themselves, like the responder) and collects what it printed.
    pub fn stop(self) -> Outcome {
        self.kill_group();
        self.wait()
    }

    /// Whether the child has already exited (without reaping it).
    pub fn has_exited(&self) -> bool {
        // SAFETY: siginfo_t is plain old data; waitid with WNOWAIT only
        // peeks at our own child's state.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let rc = libc::waitid(
                libc::P_PID,
                self.pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            );
            rc == 0 && info.si_pid() != 0
        }
    }

    fn kill_group(&self) {
        // SAFETY: plain syscall; the group id is our child's pid (we set
        // process_group(0)) and it has not been reaped yet, so it cannot
        // have been reused.
        unsafe {
            libc::kill(-self.pid, libc::SIGKILL);
        }
    }

    /// Waits for the child (killing it at the timeout) and measures it.
    pub fn wait(mut self) -> Outcome {
        let deadline = self.started + self.timeout;
        let mut status: libc::c_int = 0;
        // SAFETY: rusage is plain old data; zeroed is a valid value.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let mut timed_out = false;
        loop {
            // SAFETY: wait4 on our own unreaped child with valid out-pointers.
            let reaped = unsafe { libc::wait4(self.pid, &mut status, libc::WNOHANG, &mut usage) };
            if reaped == self.pid || reaped < 0 {
                break;
            }
            if Instant::now() > deadline && !timed_out {
                timed_out = true;
                self.kill_group();
            }
            thread::sleep(Duration::from_millis(2));
        }
        self.finished = true;
        // The group may still hold the perf-wrapped grandchild if perf died
        // first; make sure nothing outlives the measurement.
        self.kill_group();
        let stdout = self
            .stdout
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let exited = libc::WIFEXITED(status);
        let code = libc::WEXITSTATUS(status);
        let success = !timed_out && exited && code == 0;
        let status = if timed_out {
            format!("killed after the {:?} timeout", self.timeout)
        } else if exited {
            format!("exit code {code}")
        } else {
            format!("killed by signal {}", libc::WTERMSIG(status))
        };
        let rusage_cpu = timeval(usage.ru_utime) + timeval(usage.ru_stime);
        let (syscalls, perf_cpu) = match &self.counts_out {
            Some((kind, out)) => parse_counts(*kind, out.path()),
            None => (None, None),
        };
        Outcome {
            stdout,
            stderr,
            success,
            status,
            syscalls,
            cpu: perf_cpu.or(Some(rusage_cpu)),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.finished {
            self.kill_group();
            let mut status = 0;
            // SAFETY: reaping our own child.
            unsafe {
                libc::waitpid(self.pid, &mut status, 0);
            }
        }
    }
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
}

/// Reads the counter's output file: (syscalls, CPU time if it says).
fn parse_counts(kind: CounterKind, path: &Path) -> (Option<u64>, Option<Duration>) {
    match kind {
        CounterKind::Perf => parse_perf(path),
        CounterKind::Strace => (parse_strace(path), None),
    }
}

/// `strace -c` summary: the `calls` column of the `total` line.
fn parse_strace(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let total = text
        .lines()
        .rev()
        .find(|l| l.trim_end().ends_with("total"))?;
    // % time, seconds, usecs/call, calls, [errors], "total"
    let fields: Vec<&str> = total.split_whitespace().collect();
    fields.get(3)?.parse().ok()
}

/// Reads `perf stat -x,` output: (syscalls, task-clock CPU time).
fn parse_perf(path: &Path) -> (Option<u64>, Option<Duration>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut syscalls = None;
    let mut cpu = None;
    for line in text.lines() {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() < 3 {
            continue;
        }
        match fields[2] {
            "raw_syscalls:sys_enter" => syscalls = fields[0].trim().parse::<u64>().ok(),
            "task-clock" => {
                cpu = fields[0]
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .map(|ms| Duration::from_secs_f64(ms / 1000.0))
            }
            _ => {}
        }
    }
    (syscalls, cpu)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn counter_summaries_parse() {
        let mut strace = tempfile::NamedTempFile::new().unwrap();
        write!(
            strace,
            "% time     seconds  usecs/call     calls    errors syscall\n\
             ------ ----------- ----------- --------- --------- ----------------\n\
             \x20 0.00    0.000000           0         1           execve\n\
             ------ ----------- ----------- --------- --------- ----------------\n\
             100.00    0.001940          13       145        19 total\n"
        )
        .unwrap();
        assert_eq!(
            parse_counts(CounterKind::Strace, strace.path()),
            (Some(145), None)
        );

        let mut perf = tempfile::NamedTempFile::new().unwrap();
        write!(
            perf,
            "# started on Wed Nov 25\n\n144,,raw_syscalls:sys_enter,1430148,100.00,,\n1.50,msec,task-clock,1500000,100.00,0.5,CPUs utilized\n"
        )
        .unwrap();
        assert_eq!(
            parse_counts(CounterKind::Perf, perf.path()),
            (Some(144), Some(Duration::from_micros(1500)))
        );
    }
}
