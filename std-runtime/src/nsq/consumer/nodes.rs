//! Where nsqd nodes come from: a fixed list, or nsqlookupd polled with
//! jitter; producers that appear get a connection, ones that vanish lose it.

use super::*;

/// Where the nsqd nodes come from.
#[derive(Clone, Debug)]
pub enum Nodes {
    /// nsqd TCP addresses: connect to each and subscribe every couplet.
    Server(ServerNodes),
    /// nsqlookupd HTTP addresses, polled for the nsqd nodes of each topic.
    Lookup(LookupNodes),
}

/// nsqd TCP `host:port` addresses (the nsqs seed's `ServerNodes`).
#[derive(Clone, Debug)]
pub struct ServerNodes(pub Vec<String>);

impl ServerNodes {
    /// These nsqd nodes.
    pub fn new<I: IntoIterator<Item = A>, A: Into<String>>(nodes: I) -> Self {
        ServerNodes(nodes.into_iter().map(Into::into).collect())
    }
}

/// nsqlookupd HTTP addresses, `http://host:port` (the seed's
/// `LookupNodes`).
#[derive(Clone, Debug)]
pub struct LookupNodes(pub Vec<String>);

impl LookupNodes {
    /// These nsqlookupd nodes.
    pub fn new<I: IntoIterator<Item = A>, A: Into<String>>(nodes: I) -> Self {
        LookupNodes(nodes.into_iter().map(Into::into).collect())
    }
}

impl From<ServerNodes> for Nodes {
    fn from(n: ServerNodes) -> Self {
        Nodes::Server(n)
    }
}

impl From<LookupNodes> for Nodes {
    fn from(n: LookupNodes) -> Self {
        Nodes::Lookup(n)
    }
}

pub(super) async fn lookup_loop<H: Handler>(inner: Rc<Inner<H>>, lookupds: Vec<String>) {
    loop {
        let wait = lookup::poll_wait(
            inner.config.lookup_poll_interval,
            inner.config.lookup_poll_jitter,
            fastrand::f64(),
        );
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = inner.stop_wake.notified() => {}
        }
        if inner.state.borrow().stopping {
            return;
        }
        poll_lookupds(&inner, &lookupds, false).await;
    }
}

/// Queries every nsqlookupd for every topic; connects to new producers and
/// retires the ones no answering nsqlookupd lists any more.
pub(super) async fn poll_lookupds<H: Handler>(
    inner: &Rc<Inner<H>>,
    lookupds: &[String],
    first: bool,
) {
    let timeout = inner.config.connect_timeout;
    let mut topics: Vec<&str> = inner.couplets.iter().map(|(t, _)| t.as_str()).collect();
    topics.sort();
    topics.dedup();
    let mut want: HashSet<(String, usize)> = HashSet::new();
    let mut answered: HashSet<&str> = HashSet::new();
    for topic in &topics {
        for base in lookupds {
            match lookup::lookup(base, topic, timeout).await {
                Ok(addrs) => {
                    answered.insert(topic);
                    for addr in addrs {
                        for (ci, (t, _)) in inner.couplets.iter().enumerate() {
                            if t == topic {
                                want.insert((addr.clone(), ci));
                            }
                        }
                    }
                }
                Err(e) => log::warn!("{e}"),
            }
        }
    }
    if inner.state.borrow().stopping {
        return;
    }
    let (new, gone): (Vec<(String, usize)>, Vec<Keeper>) = {
        let mut st = inner.state.borrow_mut();
        let new: Vec<_> = want
            .iter()
            .filter(|k| !st.keepers.contains_key(*k))
            .cloned()
            .collect();
        let gone_keys: Vec<_> = st
            .keepers
            .keys()
            .filter(|k| !want.contains(*k) && answered.contains(inner.couplets[k.1].0.as_str()))
            .cloned()
            .collect();
        let gone = gone_keys
            .iter()
            .filter_map(|k| st.keepers.remove(k))
            .collect();
        if first {
            st.first_round_pending += new.len();
        }
        (new, gone)
    };
    for k in gone {
        log::info!("nsqd vanished from nsqlookupd: closing its connection");
        k.retired.set(true);
        if let Some(c) = k.current.borrow().as_ref() {
            c.shutdown();
        }
    }
    for (addr, ci) in new {
        add_keeper(inner, addr, ci);
    }
}
