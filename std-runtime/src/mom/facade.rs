//! [`Mom`]: named senders and receivers, declared in code or in a TOML
//! file (the canopsis seed's `mom.conf`).
//!
//! ```toml
//! [senders.alerts]
//! uri = "nats-pubsub://127.0.0.1:4222"
//! routing_key = "alerts.disk"   # default routing key
//! serializer = "json"           # raw, json, msgpack, cbor
//! compression = "zlib"          # none, snappy, deflate, zlib
//! timeout_ms = 5000
//!
//! [receivers.orders]
//! uri = "amqp-pt2pt://guest:guest@127.0.0.1:5672/%2f?ack=1&queue=orders"
//! binding = "orders.#"          # subject, topic or binding key
//! timeout_ms = 1000
//!
//! [senders.secure]
//! uri = "amqps-pubsub://guest:guest@broker:5671/%2f"
//! tls_ca = "/etc/mom/ca.pem"     # the URI's tls_ca=, tls_cert=, tls_key=,
//! tls_cert = "/etc/mom/me.pem"   # tls_insecure= (for senders and receivers)
//! tls_key = "/etc/mom/me.key"
//! ```

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::codec::{Compression, Serializer};
use super::receiver::{CancelHandle, Receiver, ReceiverOptions};
use super::sender::{Sender, SenderOptions};
use super::uri::MomUri;
use super::Error;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    senders: BTreeMap<String, FileSender>,
    #[serde(default)]
    receivers: BTreeMap<String, FileReceiver>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSender {
    uri: String,
    tls_ca: Option<String>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    tls_insecure: Option<bool>,
    routing_key: Option<String>,
    serializer: Option<String>,
    compression: Option<String>,
    timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileReceiver {
    uri: String,
    tls_ca: Option<String>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    tls_insecure: Option<bool>,
    binding: String,
    timeout_ms: Option<u64>,
}

/// The URI with the config file's `tls_*` keys added as query options
/// (the URI's own options and these are checked together by the parser).
fn with_tls(uri: &str, files: [&Option<String>; 3], insecure: Option<bool>) -> String {
    let mut out = uri.to_string();
    let mut sep = if uri.contains('?') { '&' } else { '?' };
    let mut add = |k: &str, v: &str| {
        out.push(sep);
        out.push_str(k);
        out.push('=');
        out.push_str(&super::uri::percent_encode(v));
        sep = '&';
    };
    for (k, v) in ["tls_ca", "tls_cert", "tls_key"].into_iter().zip(files) {
        if let Some(v) = v {
            add(k, v);
        }
    }
    if let Some(i) = insecure {
        add("tls_insecure", if i { "1" } else { "0" });
    }
    out
}

/// The facade: named senders and receivers over any number of brokers.
/// Not `Send` (single-threaded runtime).
#[derive(Default)]
pub struct Mom {
    sender_decls: HashMap<String, (String, SenderOptions)>,
    receiver_decls: HashMap<String, (String, ReceiverOptions)>,
    senders: RefCell<HashMap<String, Sender>>,
    receivers: RefCell<HashMap<String, Vec<CancelHandle>>>,
}

impl std::fmt::Debug for Mom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mom")
            .field("senders", &self.sender_names())
            .field("receivers", &self.receiver_names())
            .finish()
    }
}

impl Mom {
    /// A facade with nothing declared.
    pub fn new() -> Mom {
        Mom::default()
    }

    /// Reads the senders and receivers of a TOML file (see the module docs).
    pub fn from_config(path: impl AsRef<Path>) -> Result<Mom, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Mom::from_toml(&text, &path.display().to_string())
    }

    /// As [`Mom::from_config`] from the file's text (`origin` names it in errors).
    pub fn from_toml(text: &str, origin: &str) -> Result<Mom, Error> {
        let cfg_err = |reason: String| Error::Config {
            path: origin.to_string(),
            reason,
        };
        let file: FileConfig = toml::from_str(text).map_err(|e| cfg_err(e.to_string()))?;
        let mut mom = Mom::new();
        for (name, s) in file.senders {
            let within = |e: Error| cfg_err(format!("sender {name:?}: {e}"));
            let options = SenderOptions {
                routing_key: s.routing_key,
                serializer: s
                    .serializer
                    .as_deref()
                    .map(Serializer::from_name)
                    .transpose()
                    .map_err(within)?
                    .unwrap_or_default(),
                compression: s
                    .compression
                    .as_deref()
                    .map(Compression::from_name)
                    .transpose()
                    .map_err(within)?
                    .unwrap_or_default(),
                timeout: s.timeout_ms.map(Duration::from_millis),
            };
            let uri = with_tls(&s.uri, [&s.tls_ca, &s.tls_cert, &s.tls_key], s.tls_insecure);
            mom.declare_sender(&name, &uri, options).map_err(within)?;
        }
        for (name, r) in file.receivers {
            let options = ReceiverOptions {
                binding: r.binding,
                timeout: r.timeout_ms.map(Duration::from_millis),
            };
            let uri = with_tls(&r.uri, [&r.tls_ca, &r.tls_cert, &r.tls_key], r.tls_insecure);
            mom.declare_receiver(&name, &uri, options)
                .map_err(|e| cfg_err(format!("receiver {name:?}: {e}")))?;
        }
        Ok(mom)
    }

    /// Declares a sender (the URI is checked now; it connects on first use).
    pub fn declare_sender(
        &mut self,
        name: &str,
        uri: &str,
        options: SenderOptions,
    ) -> Result<&mut Self, Error> {
        MomUri::parse(uri)?;
        self.sender_decls
            .insert(name.to_string(), (uri.to_string(), options));
        Ok(self)
    }

    /// Declares a receiver (the URI is checked now; it connects when asked for).
    pub fn declare_receiver(
        &mut self,
        name: &str,
        uri: &str,
        options: ReceiverOptions,
    ) -> Result<&mut Self, Error> {
        MomUri::parse(uri)?;
        if options.binding.is_empty() {
            return Err(Error::Unsupported(format!(
                "receiver {name:?} needs a binding"
            )));
        }
        self.receiver_decls
            .insert(name.to_string(), (uri.to_string(), options));
        Ok(self)
    }

    /// Declared sender names, sorted.
    pub fn sender_names(&self) -> Vec<String> {
        let mut v: Vec<_> = self.sender_decls.keys().cloned().collect();
        v.sort();
        v
    }

    /// Declared receiver names, sorted.
    pub fn receiver_names(&self) -> Vec<String> {
        let mut v: Vec<_> = self.receiver_decls.keys().cloned().collect();
        v.sort();
        v
    }

    /// The sender of that name, connected on first use (its topology is
    /// declared then) and shared afterwards.
    pub async fn sender(&self, name: &str) -> Result<Sender, Error> {
        if let Some(s) = self.senders.borrow().get(name) {
            return Ok(s.clone());
        }
        let (uri, options) =
            self.sender_decls
                .get(name)
                .cloned()
                .ok_or_else(|| Error::UnknownName {
                    kind: "sender",
                    name: name.to_string(),
                })?;
        let s = Sender::connect(name, &uri, options).await?;
        let mut map = self.senders.borrow_mut();
        // Another task may have connected it meanwhile: keep the first.
        let s = map.entry(name.to_string()).or_insert(s).clone();
        Ok(s)
    }

    /// A new receiver of that name, connected and bound; cancel it with
    /// [`Mom::cancel_receivers`] or drop it.
    pub async fn receiver(&self, name: &str) -> Result<Receiver, Error> {
        let (uri, options) =
            self.receiver_decls
                .get(name)
                .cloned()
                .ok_or_else(|| Error::UnknownName {
                    kind: "receiver",
                    name: name.to_string(),
                })?;
        let r = Receiver::connect(name, &uri, options).await?;
        self.receivers
            .borrow_mut()
            .entry(name.to_string())
            .or_default()
            .push(r.cancel_handle());
        Ok(r)
    }

    /// Sends `value` through the named sender.
    pub async fn send<T: Serialize + ?Sized>(
        &self,
        sender: &str,
        value: &T,
        routing_key: Option<&str>,
    ) -> Result<(), Error> {
        self.sender(sender).await?.send(value, routing_key).await
    }

    /// Stops senders (all with `None`, else those named), each flushing and
    /// waiting for confirmations up to `deadline`. The first error is
    /// returned after every one was stopped.
    pub async fn cancel_senders(
        &self,
        names: Option<&[&str]>,
        deadline: Duration,
    ) -> Result<(), Error> {
        let chosen: Vec<Sender> = {
            let mut map = self.senders.borrow_mut();
            let keys: Vec<String> = match names {
                None => map.keys().cloned().collect(),
                Some(n) => n.iter().map(|s| s.to_string()).collect(),
            };
            keys.iter().filter_map(|k| map.remove(k)).collect()
        };
        let mut first = None;
        for s in chosen {
            if let Err(e) = s.stop(deadline).await {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Cancels receivers (all with `None`, else those named): their
    /// `receive` returns `Err(Cancelled)` and callback loops end.
    pub fn cancel_receivers(&self, names: Option<&[&str]>) {
        let mut map = self.receivers.borrow_mut();
        let keys: Vec<String> = match names {
            None => map.keys().cloned().collect(),
            Some(n) => n.iter().map(|s| s.to_string()).collect(),
        };
        for k in keys {
            for h in map.remove(&k).unwrap_or_default() {
                h.cancel();
            }
        }
    }
}
