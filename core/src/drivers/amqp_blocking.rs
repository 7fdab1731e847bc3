//! Blocking AMQP 0-9-1 publisher over any `embedded_io::{Read, Write}`
//! transport: a device with any TCP stack publishes to RabbitMQ with
//! publisher confirms, one message at a time (at-least-once: `publish`
//! returns `Ok` only once the broker acked it).
//!
//! ```no_run
//! # use courier_core::drivers::{amqp_blocking::AmqpPublisher, Clock};
//! # use courier_core::amqp::{Options, Properties};
//! # fn demo<T: embedded_io::Read + embedded_io::Write, C: Clock>(socket: T, clock: C)
//! # -> Result<(), courier_core::drivers::amqp_blocking::AmqpError<T::Error>> {
//! let mut p: AmqpPublisher<_, _, _, _> = AmqpPublisher::new(
//!     socket,
//!     clock,
//!     Options::new("device-7", "secret", "/").unwrap(),
//!     [0u8; 4096], // receive buffer: the largest frame the broker sends us
//!     [0u8; 4096], // transmit buffer: the largest publish
//! );
//! p.connect()?;
//! p.declare_queue("telemetry", true)?;
//! p.publish("", "telemetry", &Properties::default(), b"{\"celsius\":21.5}")?;
//! # Ok(()) }
//! ```
//!
//! Waits end when the broker answers. Give the transport a read timeout
//! that fails with [`embedded_io::ErrorKind::TimedOut`] to have the
//! session's timers (heartbeats, handshake and blocked deadlines) run while
//! the broker is silent; without one they run when bytes arrive.

use core::fmt;

use embedded_io::{Error as _, ErrorKind, Read, Write};

use super::Clock;
use crate::amqp::methods::Queue;
use crate::amqp::{
    self, ChannelId, CloseReason, DeliveryKind, Event, FieldTable, Options, Properties,
    PublishFlags, Reply, ReplyCode, Session, Tune,
};
use crate::buf::RxBuf;

/// What can go wrong in the blocking publisher.
#[derive(Debug)]
pub enum AmqpError<E> {
    /// The transport failed.
    Transport(E),
    /// The broker closed the TCP connection.
    ConnectionClosed,
    /// The AMQP core reported an error (login refused, heartbeat timeout...).
    Amqp(amqp::Error),
    /// The broker closed the publisher's channel (e.g. 404 on an exchange).
    ChannelClosed(CloseReason),
    /// The broker nacked the publish: it was not stored.
    Nacked,
    /// A mandatory publish found no queue.
    Returned(ReplyCode),
}

impl<E: fmt::Debug> fmt::Display for AmqpError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AmqpError::Transport(e) => write!(f, "transport error: {e:?}"),
            AmqpError::ConnectionClosed => f.write_str("the broker closed the connection"),
            AmqpError::Amqp(e) => write!(f, "{e}"),
            AmqpError::ChannelClosed(r) => write!(f, "the broker closed the channel: {r}"),
            AmqpError::Nacked => f.write_str("the broker nacked the message; publish it again"),
            AmqpError::Returned(c) => {
                write!(f, "returned ({}): no queue for the routing key", c.as_u16())
            }
        }
    }
}

impl<E> From<amqp::Error> for AmqpError<E> {
    fn from(e: amqp::Error) -> Self {
        AmqpError::Amqp(e)
    }
}

/// A blocking publisher with confirms on one channel.
pub struct AmqpPublisher<T, C, R, S, const CHANNELS: usize = 1, const CONFIRM_WORDS: usize = 1> {
    transport: T,
    clock: C,
    rx: RxBuf<R>,
    session: Session<S, CHANNELS, CONFIRM_WORDS>,
    channel: ChannelId,
    /// Set while waiting: what the awaited answer was.
    last_reply: Option<Reply>,
    confirmed: Option<(u64, bool, bool)>,
    returned: Option<ReplyCode>,
    channel_closed: Option<CloseReason>,
    connected: Option<Tune>,
}

impl<T, C, R, S, const CHANNELS: usize, const CONFIRM_WORDS: usize>
    AmqpPublisher<T, C, R, S, CHANNELS, CONFIRM_WORDS>
where
    T: Read + Write,
    C: Clock,
    R: AsRef<[u8]> + AsMut<[u8]>,
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    /// A publisher over a connected `transport`; `rx` and `tx` are the
    /// receive and transmit buffers.
    pub fn new(transport: T, clock: C, mut options: Options, rx: R, tx: S) -> Self {
        options.rx_capacity = rx.as_ref().len();
        // Frames no larger than the receive buffer.
        let cap = u32::try_from(rx.as_ref().len()).unwrap_or(u32::MAX);
        options.frame_max = options.frame_max.min(cap).max(amqp::ids::FRAME_MIN_SIZE);
        AmqpPublisher {
            transport,
            clock,
            rx: RxBuf::new(rx),
            session: Session::new(options, tx),
            channel: 0,
            last_reply: None,
            confirmed: None,
            returned: None,
            channel_closed: None,
            connected: None,
        }
    }

    /// Logs in, opens a channel and puts it in confirm mode.
    pub fn connect(&mut self) -> Result<Tune, AmqpError<T::Error>> {
        self.session.start(self.clock.now());
        let tune = loop {
            self.pump()?;
            if let Some(t) = self.connected {
                break t;
            }
        };
        self.channel = self.session.open_channel()?;
        while self.session.channel(self.channel).map(|c| c.state)
            != Some(amqp::session::ChannelState::Open)
        {
            self.pump()?;
            self.check_channel()?;
        }
        self.session.confirm_select(self.channel)?;
        self.await_reply()?;
        Ok(tune)
    }

    /// Declares a queue (durable or not).
    pub fn declare_queue(&mut self, name: &str, durable: bool) -> Result<(), AmqpError<T::Error>> {
        self.session.call(
            self.channel,
            Queue::Declare {
                queue: name.into(),
                passive: false,
                durable,
                exclusive: false,
                auto_delete: false,
                nowait: false,
                arguments: FieldTable::EMPTY,
            },
        )?;
        self.await_reply().map(drop)
    }

    /// Publishes (mandatory) and waits for the broker's confirm.
    pub fn publish(
        &mut self,
        exchange: &str,
        routing_key: &str,
        properties: &Properties<'_>,
        body: &[u8],
    ) -> Result<(), AmqpError<T::Error>> {
        self.returned = None;
        self.confirmed = None;
        let flags = PublishFlags { mandatory: true };
        let tag = loop {
            match self
                .session
                .publish(self.channel, exchange, routing_key, flags, properties, body)
            {
                Ok(tag) => break tag.unwrap_or(0),
                // Room comes when the broker unblocks or the buffer drains.
                Err(amqp::Error::Blocked) | Err(amqp::Error::BufferFull(_))
                    if self.session.tx_capacity() >= body.len() =>
                {
                    self.pump()?
                }
                Err(e) => return Err(e.into()),
            }
        };
        loop {
            self.pump()?;
            self.check_channel()?;
            if let Some((t, multiple, ack)) = self.confirmed {
                if t == tag || (multiple && t >= tag) {
                    return match (ack, self.returned) {
                        (false, _) => Err(AmqpError::Nacked),
                        (true, Some(code)) => Err(AmqpError::Returned(code)),
                        (true, None) => Ok(()),
                    };
                }
            }
        }
    }

    /// The session (state, negotiated values).
    pub fn session(&self) -> &Session<S, CHANNELS, CONFIRM_WORDS> {
        &self.session
    }

    fn check_channel(&mut self) -> Result<(), AmqpError<T::Error>> {
        match self.channel_closed.take() {
            Some(r) => Err(AmqpError::ChannelClosed(r)),
            None => Ok(()),
        }
    }

    fn await_reply(&mut self) -> Result<Reply, AmqpError<T::Error>> {
        self.last_reply = None;
        loop {
            self.pump()?;
            self.check_channel()?;
            if let Some(r) = self.last_reply.take() {
                return Ok(r);
            }
        }
    }

    /// Writes what is queued, reads once, handles what arrived and the timers.
    fn pump(&mut self) -> Result<(), AmqpError<T::Error>> {
        while !self.session.transmit().is_empty() {
            match self.transport.write(self.session.transmit()) {
                Ok(0) => return Err(AmqpError::ConnectionClosed),
                Ok(n) => self.session.transmitted(n),
                Err(e) => return Err(AmqpError::Transport(e)),
            }
        }
        self.transport.flush().map_err(AmqpError::Transport)?;
        let spare = self.rx.spare();
        if spare.is_empty() {
            return Err(AmqpError::Amqp(amqp::Error::FrameTooLarge {
                needed: self.rx.capacity() + 1,
                capacity: self.rx.capacity(),
            }));
        }
        match self.transport.read(spare) {
            Ok(0) => {
                let e = self.session.connection_lost();
                return Err(if self.connected.is_none() {
                    AmqpError::Amqp(e)
                } else {
                    AmqpError::ConnectionClosed
                });
            }
            Ok(n) => self.rx.fill(n),
            Err(e) if e.kind() == ErrorKind::TimedOut => {}
            Err(e) => return Err(AmqpError::Transport(e)),
        }
        loop {
            let (used, delivery) = self
                .session
                .handle_input(self.rx.data(), self.clock.now())?;
            if let Some(d) = delivery {
                if let DeliveryKind::Return { reply_code, .. } = d.kind {
                    self.returned = Some(reply_code);
                }
            }
            let mut any = false;
            while let Some(event) = self.session.poll_event() {
                any = true;
                self.on_event(event);
            }
            self.rx.consume(used);
            if used == 0 && !any {
                break;
            }
        }
        self.session.handle_timeout(self.clock.now())?;
        Ok(())
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Connected { tune, .. } => self.connected = Some(tune),
            Event::Reply { reply, .. } => self.last_reply = Some(reply),
            Event::Confirm {
                delivery_tag,
                multiple,
                ack,
                ..
            } => self.confirmed = Some((delivery_tag, multiple, ack)),
            Event::ChannelClosed {
                reason: Some(r), ..
            } => self.channel_closed = Some(r),
            _ => {}
        }
    }
}
