//! Bootstrap host names: resolved once at startup, then re-resolved
//! periodically on tokio's blocking pool, so DNS never stalls the event
//! loop. Results go to the event loop, which hands every address to
//! `Node::update_bootstrap_address` (a no-op when nothing changed).
//!
//! A name that does not resolve at startup is logged and left out while
//! other bootstrap peers exist (the node cannot be built without any), and
//! retried every [`RETRY`] until it resolves; after that every name is
//! re-resolved every [`REFRESH`].

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs as _};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};
use vine_core::PeerId;
use vine_core::config::Config;

/// Re-resolution interval while every name resolves.
pub(crate) const REFRESH: Duration = Duration::from_secs(60);
/// Re-resolution interval while some name does not resolve.
pub(crate) const RETRY: Duration = Duration::from_secs(10);

/// Resolves a host name and port to an IPv4 socket address (blocking).
pub(crate) type Resolver = Arc<dyn Fn(&str, u16) -> Option<SocketAddrV4> + Send + Sync>;

/// The system resolver (`getaddrinfo`), first IPv4 answer.
pub(crate) fn system() -> Resolver {
    Arc::new(|host: &str, port: u16| {
        (host, port).to_socket_addrs().ok()?.find_map(|a| match a {
            SocketAddr::V4(v4) => Some(v4),
            SocketAddr::V6(_) => None,
        })
    })
}

/// A bootstrap peer written with a host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Name {
    /// The bootstrap peer.
    pub peer: PeerId,
    /// Its host name.
    pub host: String,
    /// Its port.
    pub port: u16,
}

/// One resolution of one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// What was resolved.
    pub name: Name,
    /// The answer, if any.
    pub addr: Option<SocketAddrV4>,
}

/// The bootstrap peers of `config` written with host names (IPv4 literals
/// need no resolving), in config order.
pub(crate) fn names(config: &Config) -> Vec<Name> {
    config
        .bootstrap_peers
        .iter()
        .filter(|b| b.address.host.parse::<Ipv4Addr>().is_err())
        .map(|b| Name {
            peer: b.peer_id,
            host: b.address.host.clone(),
            port: b.address.port,
        })
        .collect()
}

/// Resolves every name (blocking).
pub(crate) fn resolve_all(names: &[Name], resolve: &Resolver) -> Vec<Resolved> {
    names
        .iter()
        .map(|n| Resolved {
            name: n.clone(),
            addr: resolve(&n.host, n.port),
        })
        .collect()
}

/// Logs what changed between two rounds (`before` is `None` on startup).
pub(crate) fn log_changes(before: Option<&[Resolved]>, now: &[Resolved]) {
    for r in now {
        let old = before.and_then(|b| b.iter().find(|x| x.name == r.name));
        let (host, port) = (&r.name.host, r.name.port);
        match (old.map(|o| o.addr), r.addr) {
            (None, None) => warn!(
                peer = %r.name.peer,
                "bootstrap address udp://{host}:{port} does not resolve to an IPv4 address; starting without it and retrying every {}s",
                RETRY.as_secs()
            ),
            (Some(Some(_)), None) => warn!(
                peer = %r.name.peer,
                "bootstrap address udp://{host}:{port} no longer resolves; keeping the last address and retrying every {}s",
                RETRY.as_secs()
            ),
            (Some(None), Some(addr)) => {
                info!(peer = %r.name.peer, %addr, "bootstrap address udp://{host}:{port} resolves now");
            }
            (Some(Some(a)), Some(b)) if a != b => {
                info!(peer = %r.name.peer, from = %a, to = %b, "bootstrap address udp://{host}:{port} resolves to a new address");
            }
            _ => {}
        }
    }
}

/// The background re-resolution of a node's bootstrap names.
#[derive(Debug)]
pub(crate) struct NameWatch {
    rx: Option<mpsc::Receiver<Vec<Resolved>>>,
    task: Option<JoinHandle<()>>,
}

impl NameWatch {
    /// Watches nothing.
    pub(crate) fn none() -> Self {
        Self {
            rx: None,
            task: None,
        }
    }

    /// Starts re-resolving `initial`'s names: every `retry` while one of
    /// them fails, else every `refresh`. Must run inside a tokio runtime.
    pub(crate) fn spawn(
        initial: Vec<Resolved>,
        resolve: Resolver,
        refresh: Duration,
        retry: Duration,
    ) -> Self {
        if initial.is_empty() {
            return Self::none();
        }
        let (tx, rx) = mpsc::channel(4);
        let task = tokio::spawn(async move {
            let names: Vec<Name> = initial.iter().map(|r| r.name.clone()).collect();
            let mut last = initial;
            loop {
                let failing = last.iter().any(|r| r.addr.is_none());
                tokio::time::sleep(if failing { retry } else { refresh }).await;
                let (names, resolve) = (names.clone(), Arc::clone(&resolve));
                let Ok(round) =
                    tokio::task::spawn_blocking(move || resolve_all(&names, &resolve)).await
                else {
                    continue;
                };
                log_changes(Some(&last), &round);
                // A name that stops resolving sends no address: the node
                // keeps the one it has.
                if tx.send(round.clone()).await.is_err() {
                    return;
                }
                last = round;
            }
        });
        Self {
            rx: Some(rx),
            task: Some(task),
        }
    }

    /// The next round of results; pending forever when nothing is watched.
    pub(crate) async fn next(&mut self) -> Vec<Resolved> {
        match self.rx.as_mut() {
            Some(rx) => match rx.recv().await {
                Some(round) => round,
                None => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    }
}

impl Drop for NameWatch {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests;
