//! What a node is built from: [`NodeConfig`] (the config file and identity
//! translated for the node, with its startup checks), the protocol
//! [`Timers`], seed records and [`NodeError`].

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use super::peer::AllowedPeerConfig;
use crate::config::{Config, Policy};
use crate::identity::Identity;
use crate::net::Ipv4Prefix;
use crate::peer_id::PeerId;

/// Protocol timing. The defaults suit real networks; tests may shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Probe interval on the preferred path while the peer is busy.
    pub probe_active: Duration,
    /// Probe interval on other paths while the peer is busy.
    pub probe_candidate: Duration,
    /// Probe interval on every path while the peer is idle (keepalive).
    pub probe_idle: Duration,
    /// A probe unanswered for this long counts as a miss.
    pub probe_timeout: Duration,
    /// Consecutive misses that make a path dead.
    pub dead_after_misses: u32,
    /// Consecutive answers a better-class path needs before promotion.
    pub promote_streak: u32,
    /// How long direct attempts run alone before hole punching is requested.
    pub punch_delay: Duration,
    /// Minimum time between two punch requests for one peer.
    pub punch_interval: Duration,
    /// Re-announce interval.
    pub announce_interval: Duration,
    /// Membership expires after this long without authenticated traffic.
    pub membership_timeout: Duration,
    /// Wait before retrying a peer whose session setup failed.
    pub reconnect_after: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            probe_active: Duration::from_millis(500),
            probe_candidate: Duration::from_millis(1000),
            probe_idle: Duration::from_secs(5),
            probe_timeout: Duration::from_millis(1000),
            dead_after_misses: 3,
            promote_streak: 3,
            punch_delay: Duration::from_millis(500),
            punch_interval: Duration::from_secs(10),
            announce_interval: Duration::from_secs(10),
            membership_timeout: Duration::from_secs(30),
            reconnect_after: Duration::from_secs(15),
        }
    }
}

/// Runtime configuration of a node: the config file and identity translated
/// into what the node needs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Overlay name.
    pub network_id: String,
    /// Own overlay address (from `[tun] address`).
    pub address: Ipv4Addr,
    /// Own prefix (from `[tun] address/prefix_len`).
    pub prefix: Ipv4Prefix,
    /// Allowlist: PeerId → owned prefix.
    pub allowed: BTreeMap<PeerId, AllowedPeerConfig>,
    /// Bootstrap peers with resolved addresses, in config order.
    pub bootstrap: Vec<(PeerId, SocketAddrV4)>,
    /// Policy toggles.
    pub policy: Policy,
    /// Forward relay frames between allowlisted peers (`[node]
    /// act_as_relay`). When false every relay frame is refused with
    /// [`RelayRefusal::NotARelay`](crate::frame::RelayRefusal::NotARelay).
    pub relay_enabled: bool,
    /// Protocol timing.
    pub timers: Timers,
    /// The smallest underlay MTU between nodes (`[node] underlay_mtu`):
    /// bounds what a relayed path carries ([`relay_max_packet`](crate::node::relay_max_packet)).
    pub underlay_mtu: u16,
}

/// Why a node could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// Two allowlisted prefixes overlap, or one overlaps the local prefix.
    #[error("prefix {a} overlaps {b}; every node must own a prefix of its own")]
    OverlappingPrefixes {
        /// One prefix.
        a: Ipv4Prefix,
        /// The other.
        b: Ipv4Prefix,
    },
    /// The local node is in its own allowlist.
    #[error("this node's own PeerId is in its allowlist")]
    SelfInAllowlist,
    /// A bootstrap host name could not be resolved.
    #[error("bootstrap address {0} could not be resolved to an IPv4 address")]
    Unresolved(String),
}

impl NodeConfig {
    /// Translates a validated config. Host names in bootstrap addresses are
    /// passed to `resolve` (the core does no DNS); IPv4 literals are used
    /// as they are. A name that does not resolve is left out (the host keeps
    /// re-resolving it and hands the address over with
    /// [`Node::update_bootstrap_address`](crate::node::Node::update_bootstrap_address)) unless no bootstrap peer is left
    /// at all, which is [`NodeError::Unresolved`].
    pub fn from_config(
        config: &Config,
        identity: &Identity,
        mut resolve: impl FnMut(&str, u16) -> Option<SocketAddrV4>,
    ) -> Result<Self, NodeError> {
        let mut allowed = BTreeMap::new();
        for p in &config.allowed_peers {
            allowed.insert(
                p.peer_id,
                AllowedPeerConfig {
                    prefix: p.prefix,
                    relay_capable: p.relay_capable,
                    name: p.name.clone(),
                },
            );
        }
        let mut bootstrap = Vec::new();
        let mut unresolved = None;
        for b in &config.bootstrap_peers {
            let addr = match b.address.host.parse::<Ipv4Addr>() {
                Ok(ip) => Some(SocketAddrV4::new(ip, b.address.port)),
                Err(_) => resolve(&b.address.host, b.address.port),
            };
            match addr {
                Some(addr) => bootstrap.push((b.peer_id, addr)),
                None => {
                    unresolved.get_or_insert_with(|| b.address.to_string());
                }
            }
        }
        if let (Some(name), true) = (unresolved, bootstrap.is_empty()) {
            return Err(NodeError::Unresolved(name));
        }
        let nc = Self {
            network_id: config.node.network_id.clone(),
            address: config.tun.address,
            prefix: config.tun.local_prefix(),
            allowed,
            bootstrap,
            policy: config.policy,
            relay_enabled: config.node.act_as_relay,
            timers: Timers::default(),
            underlay_mtu: config.node.underlay_mtu,
        };
        nc.check(identity.peer_id())?;
        Ok(nc)
    }

    /// Startup checks: no overlapping prefixes, not enrolled as own peer.
    pub fn check(&self, local: PeerId) -> Result<(), NodeError> {
        if self.allowed.contains_key(&local) {
            return Err(NodeError::SelfInAllowlist);
        }
        let prefixes: Vec<Ipv4Prefix> = std::iter::once(self.prefix)
            .chain(self.allowed.values().map(|a| a.prefix))
            .collect();
        for (i, a) in prefixes.iter().enumerate() {
            if let Some(b) = prefixes[..i].iter().find(|b| b.overlaps(a)) {
                return Err(NodeError::OverlappingPrefixes { a: *b, b: *a });
            }
        }
        Ok(())
    }
}

/// A peer record supplied by the embedding application (a "seed record"):
/// where a peer can be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedRecord {
    /// The peer.
    pub peer: PeerId,
    /// Its endpoints.
    pub candidates: Vec<SocketAddrV4>,
}
