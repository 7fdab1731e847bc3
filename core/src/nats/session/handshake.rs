//! INFO -> CONNECT + PING -> PONG, and the transmit room the handshake needs.

use super::*;
use crate::nats::auth::{self, Authenticator, NoAuth, SIGNATURE_B64_LEN};
use crate::nats::commands::{self, Connect};
use crate::nats::error::Error;
use crate::nats::info::InfoStorage;
use crate::nats::outbox::Sendable;

/// Transmit bytes kept free during a handshake for PONGs to server PINGs.
pub(super) const HANDSHAKE_SLACK: usize = 64;

/// line and the PING written with it. A session whose transmit buffer is
/// smaller fails at INFO with [`Error::TransmitBufferTooSmall`]; give it
/// more if subscriptions (re-sent after each handshake) or publishes should
/// be queued too. Fails only if CONNECT would exceed
/// [`commands::CONNECT_MAX`].
///
/// ```
/// use courier_core::nats::session::{required_tx_capacity, ConnectOptions};
/// let plain = required_tx_capacity(&ConnectOptions::default()).unwrap();
/// assert!(plain > 128 && plain < 256);
/// let o = ConnectOptions::default().with_token("t0k3n").unwrap();
/// assert_eq!(required_tx_capacity(&o).unwrap(), plain + r#","auth_token":"t0k3n""#.len());
/// ```
pub fn required_tx_capacity(options: &ConnectOptions) -> Result<usize, Error> {
    let len = commands::connect_line_len(&connect_fields(options, &NoAuth, None))?;
    Ok(len + commands::PING_SIZE)
}

/// Placeholder signature: the CONNECT length does not depend on the nonce.
pub(super) const SIGNATURE_PLACEHOLDER: &str =
    match core::str::from_utf8(&[b'A'; SIGNATURE_B64_LEN]) {
        Ok(s) => s,
        Err(_) => "",
    };

pub(super) fn connect_fields<'a, A: Authenticator>(
    o: &'a ConnectOptions,
    auth: &'a A,
    sig: Option<&'a str>,
) -> Connect<'a> {
    let signs = auth.signs();
    Connect {
        jwt: auth.jwt(),
        // nats.go sends the public key only without a JWT (the JWT names it).
        nkey: if auth.jwt().is_some() {
            None
        } else {
            auth.nkey()
        },
        sig: if signs {
            Some(sig.unwrap_or(SIGNATURE_PLACEHOLDER))
        } else {
            None
        },
        verbose: o.verbose,
        pedantic: o.pedantic,
        tls_required: o.tls_required,
        name: (!o.name.is_empty()).then_some(o.name.as_str()),
        echo: o.echo,
        headers: o.headers,
        no_responders: o.no_responders && o.headers,
        user: o.credentials.user(),
        pass: o.credentials.pass(),
        auth_token: o.credentials.token(),
        ..Connect::default()
    }
}

impl<S, const SUBS: usize, const REQS: usize, I, A> Session<S, SUBS, REQS, I, A>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
    I: InfoStorage,
    A: Authenticator,
{
    pub(super) fn on_info(&mut self, json: &[u8]) -> Result<(), Error> {
        let info = match I::from_info_json(json) {
            Ok(info) => info,
            Err(e) => return Err(self.fail(e.into())),
        };
        if self.state != State::AwaitingInfo {
            let lame_duck = info.lame_duck();
            self.info = Some(info);
            self.push_event(if lame_duck {
                Event::LameDuckMode
            } else {
                Event::InfoUpdated
            });
            return Ok(());
        }
        // CONNECT and PING go together or not at all.
        let connect_len = self.connect_line_len()?;
        let needed = connect_len + commands::PING_SIZE;
        if needed > self.out.capacity() {
            // Waiting cannot help: no amount of writing makes room.
            return Err(self.fail(Error::TransmitBufferTooSmall {
                needed,
                capacity: self.out.capacity(),
            }));
        }
        let available = self.out.capacity() - self.out.len();
        if needed > available {
            return Err(Error::BufferFull(crate::buf::CapacityError {
                needed: self.out.len() + needed,
                capacity: self.out.capacity(),
            }));
        }
        self.write_connect(info.nonce())?;
        commands::ping(&mut Sendable(&mut self.out))?;
        self.first_ping_of_connection = self.next_ping_id;
        self.next_ping_id += 1;
        self.pongs_received = 0;
        self.pings_outstanding = 0;
        self.info = Some(info);
        self.state = State::AwaitingPong;
        Ok(())
    }

    pub(super) fn write_connect(&mut self, nonce: &str) -> Result<(), Error> {
        let mut sig_text = [0u8; SIGNATURE_B64_LEN];
        let sig = if self.auth.signs() {
            let raw = self.auth.sign(nonce.as_bytes());
            Some(auth::encode_signature(&raw, &mut sig_text))
        } else {
            None
        };
        let fields = connect_fields(&self.options, &self.auth, sig);
        commands::connect(&mut Sendable(&mut self.out), &fields)
    }

    pub(super) fn connect_line_len(&mut self) -> Result<usize, Error> {
        if let Some(len) = self.connect_len {
            return Ok(len);
        }
        let fields = connect_fields(&self.options, &self.auth, None);
        let len = commands::connect_line_len(&fields)?;
        self.connect_len = Some(len);
        Ok(len)
    }

    /// Transmit bytes the rest of the handshake will need (kept free while
    /// publishes are held).
    pub(super) fn handshake_reserve(&mut self) -> Result<usize, Error> {
        let connect = match self.state {
            State::AwaitingPong => 0,
            State::Connected => return Ok(0),
            State::AwaitingInfo | State::Closed => self.connect_line_len()? + commands::PING_SIZE,
        };
        let subs: usize = self.subs.iter().map(resubscribe_len).sum();
        Ok(connect + subs + HANDSHAKE_SLACK)
    }

    pub(super) fn max_payload_warning(&self) -> Option<MaxPayloadWarning> {
        let info = self.info.as_ref()?;
        let rx = self.options.rx_capacity;
        let needed = usize::try_from(info.max_payload())
            .unwrap_or(usize::MAX)
            .saturating_add(CONTROL_LINE_ALLOWANCE);
        (rx != 0 && rx < needed).then_some(MaxPayloadWarning {
            max_payload: info.max_payload(),
            rx_capacity: rx,
        })
    }

    /// [`Error::BufferSmallerThanMaxPayload`] when the server's max_payload
    /// (known after INFO) plus [`CONTROL_LINE_ALLOWANCE`] exceeds the
    /// receive buffer capacity. The same condition is reported, non-fatally,
    /// in [`Event::Connected`].
    pub fn check_buffers(&self) -> Result<(), Error> {
        match self.max_payload_warning() {
            Some(w) => Err(Error::BufferSmallerThanMaxPayload {
                max_payload: w.max_payload,
                capacity: w.rx_capacity,
            }),
            None => Ok(()),
        }
    }
}
