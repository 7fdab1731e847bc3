//! What the session is created with (the IDENTIFY it sends comes with
//! [`Session::start`](super::Session::start): it borrows the caller's
//! strings only for as long as it takes to encode them).

use crate::time::Duration;

/// nsqd's heartbeat interval when the client does not choose one.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);

/// Session options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// The driver's receive buffer size: a frame that cannot fit is
    /// [`FrameError::FrameTooLarge`](crate::nsq::FrameError::FrameTooLarge).
    /// 0: no limit from the session (the driver's buffer still is one).
    pub rx_capacity: usize,
}

impl Options {
    /// Options for a receive buffer of `rx_capacity` bytes.
    pub const fn new(rx_capacity: usize) -> Self {
        Options { rx_capacity }
    }
}
