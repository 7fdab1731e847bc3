//! The controller's inputs and answers: connection ids, tuning, the
//! application's replenish policy, errors, admission.

use core::fmt;

use crate::time::Duration;

/// Names one connection of a consumer (the runtime chooses the values and
/// must not reuse one while a message from it is still being handled).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConnId(pub u64);

/// Tuning for [`RdyController`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RdyConfig {
    /// Most un-finished messages across all connections.
    pub max_in_flight: u32,
    /// A connection with free RDY that receives nothing this long is idle.
    pub idle_timeout: Duration,
    /// With more connections than `max_in_flight`, how long one connection
    /// may keep its RDY while others wait.
    pub max_turn: Duration,
    /// How long a lowered RDY stays reserved: the time for `RDY` to reach
    /// nsqd plus a message already on its way to arrive (a few round trips).
    pub settle: Duration,
    /// First backoff after a failure.
    pub backoff_base: Duration,
    /// Longest backoff.
    pub backoff_max: Duration,
}

impl RdyConfig {
    /// Defaults for `max_in_flight`: 2 s idle, 10 s turns, 500 ms settle,
    /// backoff from 1 s doubling up to 60 s.
    pub const fn new(max_in_flight: u32) -> Self {
        RdyConfig {
            max_in_flight,
            idle_timeout: Duration::from_secs(2),
            max_turn: Duration::from_secs(10),
            settle: Duration::from_millis(500),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        }
    }
}

/// The application's say in replenishing RDY (the nsqs `rdy_replenish`
/// callback).
pub trait RdyPolicy {
    /// A connection's free window dropped to `current_rdy` (at most 25 % of
    /// `original_rdy`, the RDY last sent). Returns the RDY to use from now
    /// on; returning `original_rdy` (the default) keeps the window as is.
    /// The controller still caps the answer by the budget and nsqd's
    /// `max_rdy_count`, and later redistribution may change it.
    fn rdy_replenish(&mut self, conn: ConnId, current_rdy: u32, original_rdy: u32) -> u32 {
        let _ = (conn, current_rdy);
        original_rdy
    }
}

/// Keeps the RDY the controller chose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DefaultRdyPolicy;

impl RdyPolicy for DefaultRdyPolicy {}

/// A connection could not be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RdyError {
    /// All `CONNS` slots are in use.
    TooManyConnections {
        /// The controller's `CONNS`.
        capacity: usize,
    },
    /// The id is already registered.
    DuplicateConnection(ConnId),
}

impl fmt::Display for RdyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RdyError::TooManyConnections { capacity } => write!(
                f,
                "the RDY controller tracks at most {capacity} connections; use a larger CONNS"
            ),
            RdyError::DuplicateConnection(id) => write!(
                f,
                "connection {} is already registered; remove it before adding it again",
                id.0
            ),
        }
    }
}

impl core::error::Error for RdyError {}

/// Whether a message arrived within the RDY the controller granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Admission {
    /// Within budget: hand it to the application.
    Within,
    /// nsqd sent more than this controller allowed (it applied a lowered
    /// RDY later than `settle`, or the connection is unknown). Handling it
    /// would exceed `max_in_flight`; the runtime should `REQ` it at once
    /// without handling it and report `on_finished(id, true, now)` (a
    /// requeue for budget is not a handler failure, so no backoff).
    OverBudget,
}
