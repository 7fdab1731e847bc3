//! The one error type of the CLI: a one-line message a person can act on,
//! and the exit code that tells scripts which kind of failure it was.

use std::fmt;
use std::process::ExitCode;

/// Which kind of failure; each has its own exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Anything else (server errors, timeouts, I/O): exit code 1.
    Other,
    /// Bad arguments or a bad URL: exit code 2 (as clap uses).
    Usage,
    /// The server could not be reached: exit code 3.
    Unreachable,
    /// The server refused the credentials: exit code 4.
    Auth,
}

impl Kind {
    /// The process exit code of this kind.
    pub fn code(self) -> u8 {
        match self {
            Kind::Other => 1,
            Kind::Usage => 2,
            Kind::Unreachable => 3,
            Kind::Auth => 4,
        }
    }
}

/// A failure: printed as `courier: <message>` on one line of stderr.
#[derive(Debug)]
pub struct Failure {
    /// Which kind (picks the exit code).
    pub kind: Kind,
    /// What happened and what to do, one line.
    pub message: String,
}

impl Failure {
    /// A failure of `kind` with `message`.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        // Keep the promise of one line even if a cause had newlines.
        let message = message.into().replace(['\r', '\n'], " ");
        Failure { kind, message }
    }

    /// Bad arguments or URL.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Kind::Usage, message)
    }

    /// Any other failure.
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(Kind::Other, message)
    }

    /// The process exit code.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.kind.code())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Describes why a TCP connect to `what` failed, with the next step.
pub fn unreachable(what: &str, error: &std::io::Error) -> Failure {
    use std::io::ErrorKind;
    let cause = match error.kind() {
        ErrorKind::ConnectionRefused => "connection refused; is the server running?".to_string(),
        ErrorKind::TimedOut | ErrorKind::WouldBlock => {
            "connection timed out; is the host up and the port open?".to_string()
        }
        ErrorKind::NotFound => format!("{error}; check the host name"),
        _ => format!("{error}; check the host and port"),
    };
    Failure::new(Kind::Unreachable, format!("cannot reach {what}: {cause}"))
}

/// Result of a CLI command.
pub type CliResult<T = ()> = Result<T, Failure>;
