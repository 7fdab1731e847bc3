//! TLS 1.3 for the device, without an allocator: `embedded-tls` over any
//! `embedded-io` socket, with the server verified against a pinned CA.
//! Nothing in this file uses `std` or the heap.
//!
//! # What is checked (embedded-tls 0.19, `rustpki` feature)
//! - The server's chain must be signed by the pinned CA certificate
//!   (ECDSA P-256/SHA-256 signatures; the CA certificate is the only trust
//!   anchor, no system roots).
//! - The leaf certificate must name the host given as `server_name`
//!   (DNS SAN or CN; wildcards as RFC 6125). IP-address SANs are NOT
//!   supported: dial a DNS name.
//! - The server's CertificateVerify signature over the handshake with the
//!   leaf's key (proof it holds the private key) and the Finished MACs.
//! - Validity dates only if the [`TlsClock`] knows the time (a device
//!   without RTC/SNTP uses `NoClock`: dates are then NOT checked).
//! - NOT checked: revocation (CRL/OCSP), name constraints, key usage /
//!   extended key usage, path length; RSA or P-384 certificates need
//!   embedded-tls's `rsa` (allocates) / `p384` features.
//!
//! # Costs
//! A 16 KiB + 256 B receive record buffer (a TLS record can carry 16 KiB;
//! a smaller buffer works only if the server never sends bigger records,
//! nats-server does not promise that), a transmit record buffer (4 KiB
//! here: one NATS publish per record), and the leaf certificate copied
//! into the verifier (`CERT_CAPACITY`).

use embedded_io::{Error as _, ErrorKind, ErrorType, Read, Write};
use embedded_tls::blocking::{TlsConnection, TlsContext};
use embedded_tls::pki::CertVerifier;
use embedded_tls::{
    Aes128GcmSha256, Certificate, CryptoProvider, CryptoRngCore, TlsClock, TlsConfig, TlsError,
    TlsVerifier,
};

/// Receive record buffer: the largest TLS 1.3 record plus overhead.
pub const RX_RECORD_SIZE: usize = 16 * 1024 + 256;
/// Transmit record buffer: one record at most this big is sent at a time.
pub const TX_RECORD_SIZE: usize = 4096;
/// Room for the server's leaf certificate (DER) in the verifier.
pub const CERT_CAPACITY: usize = 4096;

/// The cipher suite offered (TLS_AES_128_GCM_SHA256, mandatory in TLS 1.3).
pub type Suite = Aes128GcmSha256;

/// The TLS connection the NATS driver runs over.
pub type DeviceTls<'b, T> = TlsConnection<'b, RecordPatient<T>, Suite>;

/// A crypto provider that verifies the server against one pinned CA.
pub struct PinnedCa<'a, R, C: TlsClock> {
    rng: R,
    verifier: CertVerifier<'a, Suite, C, CERT_CAPACITY>,
}

impl<'a, R: CryptoRngCore, C: TlsClock> PinnedCa<'a, R, C> {
    /// `ca_der`: the CA certificate (DER) that must sign the server's
    /// certificate; `rng`: the device's hardware RNG.
    pub fn new(ca_der: &'a [u8], rng: R) -> Self {
        PinnedCa {
            rng,
            verifier: CertVerifier::new(Certificate::X509(ca_der)),
        }
    }
}

impl<R: CryptoRngCore, C: TlsClock> CryptoProvider for PinnedCa<'_, R, C> {
    type CipherSuite = Suite;
    type Signature = [u8; 64];

    fn rng(&mut self) -> impl CryptoRngCore {
        &mut self.rng
    }

    fn verifier(&mut self) -> Result<&mut impl TlsVerifier<Suite>, TlsError> {
        Ok(&mut self.verifier)
    }
}

/// Opens TLS first (the server must have `handshake_first` in its `tls`
/// block) over `socket`, verifying the server with `provider` and
/// `server_name`. The record buffers are the caller's.
pub fn open<'b, T, P>(
    socket: T,
    server_name: &str,
    provider: P,
    rx_record: &'b mut [u8],
    tx_record: &'b mut [u8],
) -> Result<DeviceTls<'b, T>, TlsError>
where
    T: Read + Write,
    P: CryptoProvider<CipherSuite = Suite>,
{
    let config = TlsConfig::new().with_server_name(server_name);
    let mut tls = TlsConnection::new(RecordPatient::new(socket), rx_record, tx_record);
    tls.open(TlsContext::new(&config, provider))?;
    Ok(tls)
}

/// Why [`open_after_info`] failed.
#[derive(Debug)]
pub enum UpgradeError<E> {
    /// Reading the plaintext INFO failed.
    Socket(E),
    /// The server sent no INFO line that fits `info_buf`, or closed.
    NoInfo,
    /// The INFO says the server does not offer TLS: refusing plaintext.
    TlsNotOffered,
    /// The TLS handshake failed (certificate refused...).
    Tls(TlsError),
}

impl<E: core::fmt::Debug> core::fmt::Display for UpgradeError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            UpgradeError::Socket(e) => write!(f, "reading the server's INFO: {e:?}"),
            UpgradeError::NoInfo => f.write_str("no INFO line from the server"),
            UpgradeError::TlsNotOffered => f.write_str(
                "TlsNotOffered: the server's INFO offers no TLS; refusing to continue in plaintext",
            ),
            UpgradeError::Tls(e) => write!(f, "{e:?}"),
        }
    }
}

/// TLS after INFO, as nats-server does by default: reads the plaintext
/// INFO line into `info_buf`, checks that the server offers TLS, opens
/// TLS over the same socket, and returns a transport that hands the INFO
/// to the driver first, then the decrypted stream.
pub fn open_after_info<'b, T, P>(
    mut socket: T,
    server_name: &str,
    provider: P,
    info_buf: &'b mut [u8],
    rx_record: &'b mut [u8],
    tx_record: &'b mut [u8],
) -> Result<Replay<'b, DeviceTls<'b, T>>, UpgradeError<T::Error>>
where
    T: Read + Write,
    P: CryptoProvider<CipherSuite = Suite>,
{
    let mut len = 0;
    let mut stalls = 0;
    while !info_buf.get(..len).unwrap_or_default().ends_with(b"\r\n") {
        let Some(room) = info_buf.get_mut(len..).filter(|r| !r.is_empty()) else {
            return Err(UpgradeError::NoInfo);
        };
        match socket.read(room) {
            Ok(0) => return Err(UpgradeError::NoInfo),
            Ok(n) => len += n,
            Err(e) if e.kind() == ErrorKind::TimedOut && stalls < MAX_STALLS => stalls += 1,
            Err(e) => return Err(UpgradeError::Socket(e)),
        }
    }
    let info = info_buf.get(..len).unwrap_or_default();
    let offers = |field: &[u8]| info.windows(field.len()).any(|w| w == field);
    if !info.starts_with(b"INFO ") {
        return Err(UpgradeError::NoInfo);
    }
    if !offers(b"\"tls_required\":true") && !offers(b"\"tls_available\":true") {
        return Err(UpgradeError::TlsNotOffered);
    }
    let config = TlsConfig::new().with_server_name(server_name);
    let mut tls = TlsConnection::new(RecordPatient::new(socket), rx_record, tx_record);
    tls.open(TlsContext::new(&config, provider))
        .map_err(UpgradeError::Tls)?;
    Ok(Replay {
        pending: info,
        inner: tls,
    })
}

/// A transport that yields `pending` (the INFO read before TLS) first.
pub struct Replay<'b, T> {
    pending: &'b [u8],
    inner: T,
}

impl<T: ErrorType> ErrorType for Replay<'_, T> {
    type Error = T::Error;
}

impl<T: Read> Read for Replay<'_, T> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if self.pending.is_empty() {
            return self.inner.read(buf);
        }
        let n = buf.len().min(self.pending.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), self.pending.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.pending = self.pending.get(n..).unwrap_or_default();
        Ok(n)
    }
}

impl<T: Write> Write for Replay<'_, T> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush()
    }
}

/// Read timeouts only between TLS records.
///
/// The NATS driver wants a socket read timeout (it runs its timers when a
/// read times out), but embedded-tls loses its place if a read times out in
/// the middle of a record. This adapter follows the record framing (5-byte
/// header with the length, then the body): a timeout with no byte of the
/// next record read is passed on (nothing was consumed); in the middle of a
/// record it keeps reading, up to `MAX_STALLS` timeouts, then fails with
/// `ConnectionAborted` (the server stalled mid-record).
pub struct RecordPatient<T> {
    inner: T,
    header: [u8; 5],
    header_len: usize,
    body_left: usize,
}

/// Read timeouts tolerated in the middle of one record.
const MAX_STALLS: u32 = 200;

/// The error of [`RecordPatient`]: the socket's, or a stall mid-record.
#[derive(Debug)]
pub enum PatientError<E> {
    /// The socket failed.
    Socket(E),
    /// The server stopped sending in the middle of a TLS record.
    StalledMidRecord,
}

impl<E: core::fmt::Debug> core::fmt::Display for PatientError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PatientError::Socket(e) => write!(f, "socket: {e:?}"),
            PatientError::StalledMidRecord => f.write_str("the server stalled mid TLS record"),
        }
    }
}

impl<E: core::fmt::Debug> core::error::Error for PatientError<E> {}

impl<E: embedded_io::Error> embedded_io::Error for PatientError<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            PatientError::Socket(e) => e.kind(),
            PatientError::StalledMidRecord => ErrorKind::ConnectionAborted,
        }
    }
}

impl<T> RecordPatient<T> {
    /// Wraps `inner` at a record boundary.
    pub fn new(inner: T) -> Self {
        RecordPatient {
            inner,
            header: [0; 5],
            header_len: 0,
            body_left: 0,
        }
    }

    fn at_boundary(&self) -> bool {
        self.header_len == 0 && self.body_left == 0
    }

    /// Follows the framing through bytes just read.
    fn track(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(bytes.len());
                self.body_left -= n;
                bytes = bytes.get(n..).unwrap_or_default();
                continue;
            }
            let take = (5 - self.header_len).min(bytes.len());
            if let (Some(dst), Some(src)) = (
                self.header.get_mut(self.header_len..self.header_len + take),
                bytes.get(..take),
            ) {
                dst.copy_from_slice(src);
            }
            self.header_len += take;
            bytes = bytes.get(take..).unwrap_or_default();
            if self.header_len == 5 {
                self.body_left = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                self.header_len = 0;
            }
        }
    }
}

impl<T: ErrorType> ErrorType for RecordPatient<T> {
    type Error = PatientError<T::Error>;
}

impl<T: Read> Read for RecordPatient<T> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let mut stalls = 0;
        loop {
            match self.inner.read(buf) {
                Ok(n) => {
                    self.track(buf.get(..n).unwrap_or_default());
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::TimedOut && !self.at_boundary() => {
                    stalls += 1;
                    if stalls > MAX_STALLS {
                        return Err(PatientError::StalledMidRecord);
                    }
                }
                Err(e) => return Err(PatientError::Socket(e)),
            }
        }
    }
}

impl<T: Write> Write for RecordPatient<T> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.inner.write(buf).map_err(PatientError::Socket)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush().map_err(PatientError::Socket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A socket that replays a script of reads (bytes or a timeout).
    struct Scripted(VecDeque<Option<&'static [u8]>>);

    #[derive(Debug)]
    struct Timeout;

    impl core::fmt::Display for Timeout {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("timed out")
        }
    }

    impl std::error::Error for Timeout {}

    impl embedded_io::Error for Timeout {
        fn kind(&self) -> ErrorKind {
            ErrorKind::TimedOut
        }
    }

    impl ErrorType for Scripted {
        type Error = Timeout;
    }

    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, Timeout> {
            match self.0.pop_front() {
                Some(Some(bytes)) => {
                    buf[..bytes.len()].copy_from_slice(bytes);
                    Ok(bytes.len())
                }
                Some(None) => Err(Timeout),
                None => Ok(0),
            }
        }
    }

    #[test]
    fn timeouts_pass_only_between_records() {
        // A 3-byte record split as: 2 header bytes, timeout, 3 header
        // bytes, timeout, body; then a timeout at the boundary.
        let mut socket = RecordPatient::new(Scripted(VecDeque::from([
            Some(&[23u8, 3][..]),
            None,
            Some(&[3u8, 0, 3][..]),
            None,
            Some(&b"abc"[..]),
            None,
        ])));
        let mut buf = [0u8; 16];
        assert_eq!(socket.read(&mut buf[..2]).unwrap(), 2);
        // Mid-header: the timeout is absorbed, the next bytes come back.
        assert_eq!(socket.read(&mut buf[..3]).unwrap(), 3);
        // Mid-body: absorbed too.
        assert_eq!(socket.read(&mut buf[..3]).unwrap(), 3);
        assert_eq!(&buf[..3], b"abc");
        // At the record boundary the driver sees its timeout.
        let e = socket.read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
    }

    #[test]
    fn a_stall_mid_record_is_an_error_not_a_hang() {
        let mut script = VecDeque::from([Some(&[23u8, 3, 3, 0, 9][..])]);
        script.extend(std::iter::repeat_n(None, MAX_STALLS as usize + 1));
        let mut socket = RecordPatient::new(Scripted(script));
        let mut buf = [0u8; 16];
        assert_eq!(socket.read(&mut buf[..5]).unwrap(), 5);
        let e = socket.read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionAborted);
    }
}
