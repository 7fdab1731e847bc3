//! Request/reply over one wildcard inbox subscription.

use super::*;
use crate::buf::format_decimal;
use crate::nats::auth::Authenticator;
use crate::nats::error::Error;
use crate::nats::ids::RequestId;
use crate::nats::info::InfoStorage;
use crate::time::{Duration, Instant};
use heapless::String;

impl<S, const SUBS: usize, const REQS: usize, I, A> Session<S, SUBS, REQS, I, A>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
    I: InfoStorage,
    A: Authenticator,
{
    /// Requests waiting for a reply.
    pub fn pending_requests(&self) -> usize {
        self.timers.requests()
    }

    /// Publishes a request whose reply comes back as [`Received::Reply`] from
    /// [`Session::handle_input`]
    /// (or [`Event::NoResponders`], or [`Event::RequestTimedOut`] after
    /// `timeout`). The first request subscribes to `<inbox_prefix>.*`.
    pub fn request(
        &mut self,
        subject: &str,
        headers: Option<&[u8]>,
        payload: &[u8],
        now: Instant,
        timeout: Duration,
    ) -> Result<RequestId, Error> {
        if self.options.inbox_prefix.is_empty() {
            return Err(Error::InboxNotConfigured);
        }
        if self.timers.requests_full() {
            return Err(Error::RequestTableFull { capacity: REQS });
        }
        if self.inbox_sid.is_none() {
            let mut wildcard = String::<{ INBOX_PREFIX_CAPACITY + 2 }>::new();
            let _ = wildcard.push_str(&self.options.inbox_prefix);
            let _ = wildcard.push_str(".*");
            self.inbox_sid = Some(self.subscribe(&wildcard, None)?);
        }
        let id = RequestId(self.next_request);
        let mut reply = String::<{ INBOX_PREFIX_CAPACITY + 21 }>::new();
        let mut digits = [0u8; 20];
        let _ = reply.push_str(&self.options.inbox_prefix);
        let _ = reply.push('.');
        let token = format_decimal(id.0, &mut digits);
        let _ = reply.push_str(core::str::from_utf8(token).unwrap_or_default());
        self.publish(subject, Some(&reply), headers, payload)?;
        self.next_request += 1;
        // Cannot fail: fullness was checked above.
        let _ = self.timers.set(Timer::Request(id), now + timeout);
        Ok(id)
    }

    /// Stops waiting for a request (its reply will be dropped). Returns
    /// false if it was not waiting.
    pub fn cancel_request(&mut self, request: RequestId) -> bool {
        self.timers.stop(Timer::Request(request))
    }
}
