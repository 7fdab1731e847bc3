//! The NATS client's events as the tests watch them: a shared log filled
//! by `ConnectOptions::event_callback`, and a wait for the first
//! `Disconnected` with its reason (one helper instead of a polling loop per
//! test file).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use courier::nats::Event;

/// Events recorded by a client's callback, in the order they came.
pub type EventLog = Rc<RefCell<Vec<Event>>>;

/// The reason of the first `Disconnected` event in `events`, polled every
/// 10 ms; panics saying `what` when none comes within `within`.
pub async fn first_disconnect_reason(events: &EventLog, within: Duration, what: &str) -> String {
    tokio::time::timeout(within, async {
        loop {
            let reason = events.borrow().iter().find_map(|e| match e {
                Event::Disconnected { reason, .. } => Some(reason.clone()),
                _ => None,
            });
            if let Some(reason) = reason {
                return reason;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: no Disconnected event within {within:?}"))
}
