//! A durable client outbox: every publish is appended to an on-disk log
//! (a spool directory) before it is sent, and removed once the broker
//! confirmed it (JetStream `PubAck`, NSQ `OK`, AMQP publisher confirm). On
//! start the outbox replays what is unconfirmed, so messages survive the
//! publisher's own crash (kill -9) and broker restarts.
//!
//! ```no_run
//! use courier::outbox::{Outbox, OutboxOptions};
//! courier::run(async {
//!     let client = courier::nats::connect(["nats://127.0.0.1:4222"]).await?;
//!     let js = courier::nats::jetstream::new(client);
//!     let (outbox, recovery) = Outbox::jetstream(js, OutboxOptions::new("/var/spool/app")).await?;
//!     println!("replaying {} records, {} corrupt", recovery.replayed, recovery.corrupt.len());
//!     outbox.publish("orders.new", b"order 1").await?;
//!     let report = outbox.stop(std::time::Duration::from_secs(10)).await;
//!     assert_eq!(report.remaining, 0);
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! }).unwrap();
//! ```
//!
//! # Guarantees
//!
//! - `publish` returning `Ok` means the record is in the spool (and on
//!   disk per [`FsyncPolicy`]). It is sent, retried with backoff and
//!   jitter until the broker confirms it, and replayed after a restart.
//! - JetStream: every record carries a `Nats-Msg-Id` (`<spool id>-<record
//!   id>` unless the caller gives one), so a resend of a message the
//!   stream already stored is dropped by the stream's duplicate window:
//!   exactly once in the stream for resends within that window (make the
//!   window longer than your longest outage plus replay).
//! - NSQ is at-least-once: a replayed batch nsqd already had is delivered
//!   again. Confirmations are not persisted, so after a crash the
//!   unconfirmed records *and* the confirmed ones sharing their segment
//!   are resent (bounded by `segment_bytes`).
//! - AMQP ([`Outbox::amqp`]) is at-least-once: a record the broker took
//!   but whose ack was cut off is published again. Its properties travel
//!   in the record ([`encode_properties`]).
//! - Bounded: the spool holds at most `max_bytes` of segment files; when
//!   full, [`WhenFull::Block`] waits for confirmations, [`WhenFull::Error`]
//!   returns [`OutboxError::Full`]. Nothing is dropped.
//! - A torn or corrupt record (crash mid-write, a flipped bit) fails its
//!   CRC-32C: it is skipped and reported with its segment and offset in
//!   [`Recovery::corrupt`]; the records after it are replayed.
//! - A record the broker refuses for good (JetStream API error such as
//!   message too large) is removed from the spool and reported in
//!   [`Outbox::refused`] and [`OutboxStats::refused`], never silently.
//! - Order: records are sent in log order; a retried record may arrive
//!   after later ones.
//! - The outbox only publishes: it starts no receive dispatch of its own
//!   (the relay seed's `auto_start=False`).
//!
//! # Cost
//!
//! `publish`/`publish_batch` write (and, per policy, fsync) the spool on
//! the runtime's thread: batch publishes to pay one fsync per batch. A
//! tight loop of appends that never waits delays sending until it awaits
//! something that parks the thread (a timer, a socket); the crash test's
//! publisher sleeps 1 ms between batches of 256.

mod amqp;
mod spool;

pub use amqp::{decode_properties, encode_properties};

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};

use spool::Spool;
pub use spool::{CorruptRecord, FsyncPolicy, Record, MAX_RECORD};

use crate::nats::jetstream::{Context, JetStreamError, PublishOptions};
use crate::nats::HeaderMap;
use crate::nsq;

/// What `publish` does when the spool is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// Wait until confirmations free room.
    Block,
    /// Return [`OutboxError::Full`] at once (the message was not taken).
    Error,
}

/// Outbox settings.
#[derive(Clone, Debug)]
pub struct OutboxOptions {
    /// The spool directory (one outbox per directory).
    pub dir: PathBuf,
    /// Most bytes of segment files on disk (default 256 MiB).
    pub max_bytes: u64,
    /// Segment size before a new one starts (default 1 MiB).
    pub segment_bytes: u64,
    /// Full spool behaviour (default [`WhenFull::Block`]).
    pub when_full: WhenFull,
    /// fsync policy (default [`FsyncPolicy::EveryBatch`]).
    pub fsync: FsyncPolicy,
    /// JetStream: publishes awaiting their ack at most (default 256).
    /// NSQ: records per MPUB at most.
    pub window: usize,
    /// Longest wait for one confirmation before it is retried (default 5 s).
    pub ack_timeout: Duration,
    /// Retry backoff bounds (with jitter; default 50 ms .. 2 s).
    pub backoff: (Duration, Duration),
}

impl OutboxOptions {
    /// Defaults with the spool in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        OutboxOptions {
            dir: dir.into(),
            max_bytes: 256 << 20,
            segment_bytes: 1 << 20,
            when_full: WhenFull::Block,
            fsync: FsyncPolicy::EveryBatch,
            window: 256,
            ack_timeout: Duration::from_secs(5),
            backoff: (Duration::from_millis(50), Duration::from_secs(2)),
        }
    }
}

/// What opening the spool found.
#[derive(Clone, Debug, Default)]
pub struct Recovery {
    /// Unconfirmed records found and queued to be sent again.
    pub replayed: usize,
    /// Records that could not be read (skipped), with their offsets.
    pub corrupt: Vec<CorruptRecord>,
}

/// Counters since the outbox was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Records appended by this process.
    pub appended: u64,
    /// Records replayed from the spool at open.
    pub replayed: u64,
    /// Records the broker confirmed.
    pub confirmed: u64,
    /// Of those, JetStream acks saying "duplicate" (already stored).
    pub duplicates: u64,
    /// Records refused for good (see [`Outbox::refused`]).
    pub refused: u64,
    /// Send attempts that failed and were retried.
    pub retries: u64,
}

/// What [`Outbox::stop`] left behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StopReport {
    /// Unconfirmed records still on disk (replayed at the next open).
    pub remaining: usize,
    /// Bytes of segment files still on disk.
    pub remaining_bytes: u64,
    /// Counters at the stop.
    pub stats: OutboxStats,
}

/// Outbox errors.
#[derive(Debug)]
pub enum OutboxError {
    /// The spool could not be read or written: the message was not taken.
    Io(io::Error),
    /// The spool is full ([`WhenFull::Error`]): the message was not taken;
    /// retry later, or raise `max_bytes`.
    Full {
        /// Bytes on disk.
        used: u64,
        /// The limit.
        capacity: u64,
        /// Bytes this publish needs.
        needed: u64,
    },
    /// A batch larger than the whole spool can never fit.
    TooLarge {
        /// Bytes needed.
        needed: u64,
        /// The limit.
        capacity: u64,
    },
    /// The outbox was stopped.
    Stopped,
    /// The broker client could not be set up.
    Setup(String),
}

impl fmt::Display for OutboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutboxError::Io(e) => write!(f, "outbox spool I/O failed (message not taken): {e}"),
            OutboxError::Full { used, capacity, needed } => write!(
                f,
                "outbox full: {used} of {capacity} bytes used, {needed} more needed; the message was not taken (retry later or raise max_bytes)"
            ),
            OutboxError::TooLarge { needed, capacity } => write!(
                f,
                "a batch of {needed} bytes can never fit an outbox of {capacity} bytes"
            ),
            OutboxError::Stopped => write!(f, "the outbox was stopped"),
            OutboxError::Setup(e) => write!(f, "outbox setup failed: {e}"),
        }
    }
}

impl std::error::Error for OutboxError {}

impl From<io::Error> for OutboxError {
    fn from(e: io::Error) -> Self {
        OutboxError::Io(e)
    }
}

/// One message of a batch.
#[derive(Clone, Copy, Debug)]
pub struct OutboxMessage<'a> {
    /// Subject (NATS) or topic (NSQ).
    pub subject: &'a str,
    /// `Nats-Msg-Id` to use (JetStream); None: `<spool id>-<record id>`.
    pub msg_id: Option<&'a str>,
    /// The message.
    pub payload: &'a [u8],
}

struct Core {
    spool: RefCell<Spool>,
    token: String,
    queue: RefCell<VecDeque<Record>>,
    work: Notify,
    room: Notify,
    changed: Notify,
    stats: Cell<OutboxStats>,
    refused: RefCell<Vec<(Record, String)>>,
    stopped: Cell<bool>,
    options: OutboxOptions,
}

impl Core {
    fn stat(&self, f: impl FnOnce(&mut OutboxStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    fn confirm(&self, id: u64, duplicate: bool) {
        if let Err(e) = self.spool.borrow_mut().confirm(id) {
            log::error!("outbox: deleting a confirmed segment failed: {e}");
        }
        self.stat(|s| {
            s.confirmed += 1;
            s.duplicates += u64::from(duplicate);
        });
        self.room.notify_waiters();
        self.changed.notify_waiters();
    }

    fn refuse(&self, rec: Record, why: String) {
        log::error!(
            "outbox: record {} to {} refused for good: {why}",
            rec.id,
            rec.subject
        );
        let id = rec.id;
        self.refused.borrow_mut().push((rec, why));
        let _ = self.spool.borrow_mut().confirm(id);
        self.stat(|s| s.refused += 1);
        self.room.notify_waiters();
        self.changed.notify_waiters();
    }

    async fn backoff(&self, attempt: u32) {
        let (min, max) = self.options.backoff;
        let base = min.saturating_mul(1 << attempt.min(10)).min(max);
        let jitter = base.mul_f64(fastrand::f64() * 0.5);
        tokio::time::sleep(base / 2 + jitter).await;
    }

    /// Waits for queued records; up to `max` with the same subject.
    async fn next_batch(&self, max: usize, same_subject: bool) -> Option<Vec<Record>> {
        loop {
            let notified = self.work.notified();
            {
                let mut q = self.queue.borrow_mut();
                if let Some(first) = q.pop_front() {
                    let mut batch = vec![first];
                    while batch.len() < max {
                        match q.front() {
                            Some(r) if !same_subject || r.subject == batch[0].subject => {
                                batch.push(q.pop_front().expect("front exists"))
                            }
                            _ => break,
                        }
                    }
                    return Some(batch);
                }
            }
            if self.stopped.get() {
                return None;
            }
            notified.await;
        }
    }
}

/// The outbox; see the [module documentation](self). Not `Send`: it lives
/// on the courier runtime's thread.
pub struct Outbox {
    core: Rc<Core>,
}

fn spool_token(dir: &Path) -> io::Result<String> {
    let path = dir.join("outbox.id");
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        _ => {
            let token = format!("{:016x}", fastrand::u64(..));
            let tmp = dir.join("outbox.id.tmp");
            std::fs::write(&tmp, &token)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            Ok(token)
        }
    }
}

impl Outbox {
    fn open(options: OutboxOptions) -> Result<(Rc<Core>, Recovery), OutboxError> {
        let (spool, records, corrupt) =
            Spool::open(&options.dir, options.segment_bytes, options.fsync)?;
        for c in &corrupt {
            log::warn!(
                "outbox: skipped {} bytes at offset {} of {}: {}",
                c.skipped,
                c.offset,
                c.segment.display(),
                c.reason
            );
        }
        let token = spool_token(&options.dir)?;
        let recovery = Recovery {
            replayed: records.len(),
            corrupt,
        };
        let core = Rc::new(Core {
            spool: RefCell::new(spool),
            token,
            queue: RefCell::new(records.into()),
            work: Notify::new(),
            room: Notify::new(),
            changed: Notify::new(),
            stats: Cell::new(OutboxStats {
                replayed: recovery.replayed as u64,
                ..Default::default()
            }),
            refused: RefCell::new(Vec::new()),
            stopped: Cell::new(false),
            options,
        });
        if let FsyncPolicy::Interval(every) = core.options.fsync {
            let weak = Rc::downgrade(&core);
            crate::runtime::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let Some(core) = weak.upgrade() else { break };
                    let res = core.spool.borrow_mut().sync();
                    if let Err(e) = res {
                        log::error!("outbox: fsync failed: {e}");
                    }
                }
            });
        }
        Ok((core, recovery))
    }

    /// An outbox publishing to JetStream through `js` (the context's
    /// timeout is replaced by `ack_timeout`). Replays the spool at once.
    pub async fn jetstream(
        js: Context,
        options: OutboxOptions,
    ) -> Result<(Outbox, Recovery), OutboxError> {
        let (core, recovery) = Self::open(options)?;
        let js = js.with_timeout(core.options.ack_timeout);
        crate::runtime::spawn(jetstream_sender(core.clone(), js));
        Ok((Outbox { core }, recovery))
    }

    /// An outbox publishing to nsqd (`nodes`, with failover): batches of up
    /// to `window` records with the same topic go out as one MPUB; a
    /// failed producer is replaced by a new one.
    pub async fn nsq(
        nodes: Vec<String>,
        config: nsq::Config,
        options: OutboxOptions,
    ) -> Result<(Outbox, Recovery), OutboxError> {
        nsq::Producer::new(nodes.clone(), config.clone())
            .map_err(|e| OutboxError::Setup(e.to_string()))?;
        let (core, recovery) = Self::open(options)?;
        crate::runtime::spawn(nsq_sender(core.clone(), nodes, config));
        Ok((Outbox { core }, recovery))
    }

    /// Appends one message (durable per the fsync policy) and queues it.
    pub async fn publish(&self, subject: &str, payload: &[u8]) -> Result<u64, OutboxError> {
        let ids = self
            .publish_batch(&[OutboxMessage {
                subject,
                msg_id: None,
                payload,
            }])
            .await?;
        Ok(ids[0])
    }

    /// Appends one message with a NATS header block (`NATS/1.0\r\n...`,
    /// e.g. the facade's envelope) sent with it. JetStream: when the block
    /// has no `Nats-Msg-Id`, `msg_id` (or `<spool id>-<record id>`) is added
    /// when it is sent. Returns the record id.
    pub async fn publish_with_headers(
        &self,
        subject: &str,
        msg_id: Option<&str>,
        headers: &[u8],
        payload: &[u8],
    ) -> Result<u64, OutboxError> {
        let m = OutboxMessage {
            subject,
            msg_id,
            payload,
        };
        Ok(self.append(&[m], &[headers]).await?[0])
    }

    /// Appends a batch with one write and one fsync, then queues it.
    /// Returns the record ids.
    pub async fn publish_batch(
        &self,
        batch: &[OutboxMessage<'_>],
    ) -> Result<Vec<u64>, OutboxError> {
        self.append(batch, &[]).await
    }

    /// `headers[i]` goes with `batch[i]` (none when `headers` is shorter).
    async fn append(
        &self,
        batch: &[OutboxMessage<'_>],
        headers: &[&[u8]],
    ) -> Result<Vec<u64>, OutboxError> {
        let core = &self.core;
        let header_of = |i: usize| headers.get(i).copied().unwrap_or_default();
        if core.stopped.get() {
            return Err(OutboxError::Stopped);
        }
        let needed: u64 = batch
            .iter()
            .enumerate()
            .map(|(i, m)| {
                (12 + 16 + m.subject.len() + 40 + header_of(i).len() + m.payload.len()) as u64
            })
            .sum();
        let capacity = core.options.max_bytes;
        if needed > capacity {
            return Err(OutboxError::TooLarge { needed, capacity });
        }
        loop {
            let room = core.room.notified();
            let used = core.spool.borrow().disk_bytes();
            if used + needed <= capacity {
                break;
            }
            match core.options.when_full {
                WhenFull::Error => {
                    return Err(OutboxError::Full {
                        used,
                        capacity,
                        needed,
                    })
                }
                WhenFull::Block => room.await,
            }
            if core.stopped.get() {
                return Err(OutboxError::Stopped);
            }
        }
        let mut spool = core.spool.borrow_mut();
        let first = spool.next_id();
        let ids_owned: Vec<String> = batch
            .iter()
            .enumerate()
            .map(|(i, m)| match m.msg_id {
                Some(id) => id.to_string(),
                None => format!("{}-{}", core.token, first + i as u64),
            })
            .collect();
        let items: Vec<(&str, &str, &[u8], &[u8])> = batch
            .iter()
            .zip(&ids_owned)
            .enumerate()
            .map(|(i, (m, id))| (m.subject, id.as_str(), header_of(i), m.payload))
            .collect();
        let ids = spool.append(&items)?;
        drop(spool);
        {
            let mut q = core.queue.borrow_mut();
            for (i, ((m, msg_id), &id)) in batch.iter().zip(ids_owned).zip(&ids).enumerate() {
                q.push_back(Record {
                    id,
                    subject: m.subject.to_string(),
                    msg_id,
                    headers: header_of(i).to_vec(),
                    payload: m.payload.to_vec(),
                });
            }
        }
        core.stat(|s| s.appended += ids.len() as u64);
        core.work.notify_one();
        Ok(ids)
    }

    /// Counters now.
    pub fn stats(&self) -> OutboxStats {
        self.core.stats.get()
    }

    /// Unconfirmed records on disk.
    pub fn unconfirmed(&self) -> usize {
        self.core.spool.borrow().live_records()
    }

    /// Records refused for good, with the reason (taken out of the outbox).
    pub fn refused(&self) -> Vec<(Record, String)> {
        std::mem::take(&mut *self.core.refused.borrow_mut())
    }

    /// Waits until every record is confirmed or `deadline` passed, then
    /// syncs and stops sending (later publishes return
    /// [`OutboxError::Stopped`]). Says how many records remain on disk
    /// (they are replayed by the next open).
    pub async fn stop(&self, deadline: Duration) -> StopReport {
        let core = &self.core;
        let _ = tokio::time::timeout(deadline, async {
            loop {
                let changed = core.changed.notified();
                if core.spool.borrow().live_records() == 0 {
                    break;
                }
                changed.await;
            }
        })
        .await;
        core.stopped.set(true);
        core.work.notify_waiters();
        core.room.notify_waiters();
        let mut spool = core.spool.borrow_mut();
        if let Err(e) = spool.sync().and_then(|_| spool.compact()) {
            log::error!("outbox: final sync failed: {e}");
        }
        StopReport {
            remaining: spool.live_records(),
            remaining_bytes: spool.disk_bytes(),
            stats: core.stats.get(),
        }
    }
}

fn transient(e: &JetStreamError) -> bool {
    match e {
        JetStreamError::Api(api) => api.code == 503 || api.code == 408,
        JetStreamError::Protocol(_) | JetStreamError::NotAckable => false,
        _ => true,
    }
}

/// The headers a record is published with: its own block (with its
/// `Nats-Msg-Id` added when missing), or just the `Nats-Msg-Id`.
fn record_headers(rec: &Record) -> Result<HeaderMap, String> {
    if rec.headers.is_empty() {
        return PublishOptions::with_msg_id(rec.msg_id.clone())
            .headers()
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "no message id".to_string());
    }
    courier_core::nats::headers::Headers::parse(&rec.headers)
        .map_err(|e| format!("the record's header block is not valid: {e}"))?;
    let h = HeaderMap::from_raw(bytes::Bytes::copy_from_slice(&rec.headers));
    if h.get("Nats-Msg-Id").is_some() {
        return Ok(h);
    }
    h.with("Nats-Msg-Id", &rec.msg_id)
        .map_err(|e| e.to_string())
}

async fn jetstream_sender(core: Rc<Core>, js: Context) {
    let permits = std::sync::Arc::new(Semaphore::new(core.options.window.clamp(1, 512)));
    while let Some(batch) = core.next_batch(1, false).await {
        for rec in batch {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let (core, js) = (core.clone(), js.clone());
            crate::runtime::spawn(async move {
                let _permit = permit;
                let headers = match record_headers(&rec) {
                    Ok(h) => h,
                    Err(e) => return core.refuse(rec, e),
                };
                let mut attempt = 0;
                loop {
                    if core.stopped.get() {
                        return; // stays on disk; replayed at the next open
                    }
                    let res = crate::nats::jetstream::publish_once(
                        &js,
                        &rec.subject,
                        Some(&headers),
                        &rec.payload,
                    )
                    .await;
                    match res {
                        Ok(ack) => return core.confirm(rec.id, ack.duplicate),
                        Err(e) if !transient(&e) => return core.refuse(rec, e.to_string()),
                        Err(e) => {
                            log::debug!("outbox: record {} not confirmed ({e}); retrying", rec.id);
                            core.stat(|s| s.retries += 1);
                            core.backoff(attempt).await;
                            attempt += 1;
                        }
                    }
                }
            });
        }
    }
}

async fn nsq_sender(core: Rc<Core>, nodes: Vec<String>, config: nsq::Config) {
    let mut producer: Option<nsq::Producer> = None;
    let max = core.options.window.max(1);
    while let Some(batch) = core.next_batch(max, true).await {
        let bodies: Vec<&[u8]> = batch.iter().map(|r| r.payload.as_slice()).collect();
        let mut attempt = 0;
        loop {
            if core.stopped.get() {
                return;
            }
            let p = match &producer {
                Some(p) => p.clone(),
                None => match nsq::Producer::new(nodes.clone(), config.clone()) {
                    Ok(p) => {
                        producer = Some(p.clone());
                        p
                    }
                    Err(e) => {
                        log::error!("outbox: nsq producer: {e}");
                        return;
                    }
                },
            };
            let res = tokio::time::timeout(
                core.options.ack_timeout,
                p.multi_publish(&batch[0].subject, &bodies),
            )
            .await;
            match res {
                Ok(Ok(())) => {
                    for r in &batch {
                        core.confirm(r.id, false);
                    }
                    break;
                }
                Ok(Err(nsq::Error::Server(e))) if attempt > 20 => {
                    let why = e.to_string();
                    for r in batch.iter().cloned() {
                        core.refuse(r, why.clone());
                    }
                    break;
                }
                other => {
                    log::debug!(
                        "outbox: nsq batch not confirmed ({other:?}); new producer, retrying"
                    );
                    // A fresh producer reconnects from scratch (see the
                    // issue-7 note on Producer reconnects).
                    producer = None;
                    core.stat(|s| s.retries += 1);
                    core.backoff(attempt).await;
                    attempt += 1;
                }
            }
        }
    }
}
