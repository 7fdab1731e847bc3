//! Room in the transmit buffer: what a connection does when its session
//! says the command does not fit (`BufferFull` / `Capacity`).
//!
//! Two shapes, one per kind of writer:
//!
//! - The pending bytes can move on at once (into an unbounded outgoing
//!   buffer, through the stream layers): [`retry_after_flush`] moves them
//!   and tries once more. NSQ's connection works this way.
//! - The writer has to put bytes on the wire first: [`wait_for_room`] wakes
//!   the writer, waits until it says room was made (or the state changed),
//!   and tries again, up to an optional deadline.
//!
//! Either way a command that cannot fit even in an empty buffer comes back
//! as the session's own error: never a loop, never a silent drop.

use super::wake::Wakeups;

/// Runs `attempt` on `state`; when it fails for lack of room (`no_room`
/// says so, typically "capacity error and something is pending") runs
/// `flush` to move the pending bytes on, then tries once more.
///
/// The second failure, whatever it is, is returned: a command larger than
/// the whole buffer is the caller's error, not a reason to loop.
///
/// ```
/// use courier::session_io::retry_after_flush;
/// // A 4-byte "transmit buffer" holding 3 pending bytes.
/// let mut st = (Vec::from(*b"abc"), Vec::new());
/// let r: Result<(), &str> = retry_after_flush(
///     &mut st,
///     |(tx, _)| if tx.len() + 2 <= 4 { tx.extend_from_slice(b"de"); Ok(()) } else { Err("full") },
///     |e, (tx, _)| *e == "full" && !tx.is_empty(),
///     |(tx, out)| { out.append(tx); Ok(()) },
/// );
/// assert_eq!(r, Ok(()));
/// assert_eq!((st.0.as_slice(), st.1.as_slice()), (&b"de"[..], &b"abc"[..]));
/// ```
pub fn retry_after_flush<S, R, E, F>(
    state: &mut S,
    mut attempt: impl FnMut(&mut S) -> Result<R, E>,
    no_room: impl FnOnce(&E, &S) -> bool,
    flush: impl FnOnce(&mut S) -> Result<(), F>,
) -> Result<R, F>
where
    F: From<E>,
{
    match attempt(state) {
        Err(e) if no_room(&e, state) => {
            flush(state)?;
            Ok(attempt(state)?)
        }
        r => Ok(r?),
    }
}

/// Tries `attempt` until it answers: `None` means "no room now" (the
/// transmit buffer is full of pending bytes, or the connection is not up),
/// so the writer is woken and the task waits for [`Wakeups::room_made`] or
/// [`Wakeups::state_changed`] before trying again. Returns `None` when
/// `deadline` passes first.
///
/// The room and state signals are registered before each attempt, so a
/// writer that drains the buffer between the attempt and the wait still
/// wakes this task.
pub async fn wait_for_room<R>(
    wake: &Wakeups,
    deadline: Option<tokio::time::Instant>,
    mut attempt: impl FnMut() -> Option<R>,
) -> Option<R> {
    wake.wait_until(deadline, || {
        let r = attempt();
        if r.is_none() {
            wake.wake_writer();
        }
        r
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

    #[derive(Debug, PartialEq)]
    enum E {
        Full,
        TooBig,
    }

    fn push(tx: &mut Vec<u8>, n: usize) -> Result<usize, E> {
        if n > 4 {
            return Err(E::TooBig);
        }
        if tx.len() + n > 4 {
            return Err(E::Full);
        }
        tx.extend(std::iter::repeat_n(b'x', n));
        Ok(tx.len())
    }

    #[test]
    fn flushes_once_then_retries() {
        let mut st = (vec![1u8, 2, 3], Vec::new());
        let mut flushes = 0;
        let r: Result<usize, E> = retry_after_flush(
            &mut st,
            |(tx, _)| push(tx, 3),
            |e, (tx, _)| *e == E::Full && !tx.is_empty(),
            |(tx, out)| {
                flushes += 1;
                out.append(tx);
                Ok(())
            },
        );
        assert_eq!(r, Ok(3));
        assert_eq!(flushes, 1);
        assert_eq!(st.1, vec![1, 2, 3]);
    }

    #[test]
    fn a_command_larger_than_the_buffer_is_the_callers_error() {
        let mut st = (vec![1u8], Vec::<u8>::new());
        let mut flushes = 0;
        let r: Result<usize, E> = retry_after_flush(
            &mut st,
            |(tx, _)| push(tx, 5),
            |e, (tx, _)| *e == E::Full && !tx.is_empty(),
            |_| {
                flushes += 1;
                Ok(())
            },
        );
        assert_eq!(r, Err(E::TooBig));
        assert_eq!(flushes, 0, "no flush when room would not help");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn waits_for_the_writer_to_make_room() {
        let wake = Rc::new(Wakeups::new());
        let tx = Rc::new(RefCell::new(vec![0u8; 4]));
        let local = tokio::task::LocalSet::new();
        let got = local
            .run_until({
                let (wake, tx) = (wake.clone(), tx.clone());
                async move {
                    // The writer: drains the buffer when woken.
                    let (w, t) = (wake.clone(), tx.clone());
                    tokio::task::spawn_local(async move {
                        w.writer_woken().await;
                        t.borrow_mut().clear();
                        w.room_made();
                    });
                    wait_for_room(&wake, None, || push(&mut tx.borrow_mut(), 2).ok()).await
                }
            })
            .await;
        assert_eq!(got, Some(2));
        assert_eq!(*tx.borrow(), vec![b'x', b'x']);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn gives_up_at_the_deadline_when_no_room_comes() {
        let wake = Wakeups::new();
        let mut tx = vec![0u8; 4];
        let deadline = tokio::time::Instant::now() + Duration::from_millis(20);
        let got = wait_for_room(&wake, Some(deadline), || push(&mut tx, 1).ok()).await;
        assert_eq!(got, None);
        assert_eq!(tx.len(), 4, "nothing was appended");
    }
}
