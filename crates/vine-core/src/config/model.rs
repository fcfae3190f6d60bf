//! The configuration model: [`Config`] and its sections, the defaults,
//! and [`Parsed`] (a config plus its findings).

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::ops::Range;

use serde::Serialize;

use super::diagnostic::{Diagnostic, LineIndex, Location};
use crate::net::Ipv4Prefix;
use crate::peer_id::{Fingerprint, PeerId};

/// Default config file path.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/libvine/vine.toml";
/// Default identity file path.
pub const DEFAULT_IDENTITY_PATH: &str = "/var/lib/libvine/identity";
/// Default runtime directory (pidfile, state file, control socket).
pub const DEFAULT_RUNTIME_DIR: &str = "/run/libvine";
/// Default UDP listen port.
pub const DEFAULT_LISTEN_PORT: u16 = 4100;
/// Default TUN interface name.
pub const DEFAULT_TUN_NAME: &str = "vine0";
/// Default TUN MTU: fits a 1500-byte underlay after IPv4, UDP and
/// WireGuard-protocol overhead.
pub const DEFAULT_MTU: u16 = 1400;
/// Default `[node] underlay_mtu`: Ethernet.
pub const DEFAULT_UNDERLAY_MTU: u16 = 1500;
/// Largest accepted `[policy] relay_rate_limit_kbps` (10 Gbit/s).
pub const MAX_RELAY_RATE_LIMIT_KBPS: u32 = 10_000_000;
/// `relay_rate_limit_kbps` values below this starve relayed sessions of
/// their handshakes and probes (a warning).
pub const LOW_RELAY_RATE_LIMIT_KBPS: u32 = 64;
/// Default `[policy] relay_source_rate_limit_kbps`: 50 Mbit/s.
///
/// Relaying is done on the relay's event loop, beside its own handshakes,
/// probes and announces, so one member must not be able to take all of it:
/// this bounds what any one source gets relayed, summed over its
/// destinations, while a relayed session stays usable for bulk transfers
/// (most home uplinks are slower).
pub const DEFAULT_RELAY_SOURCE_RATE_LIMIT_KBPS: u32 = 50_000;
/// Largest config file vine reads.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// A validated node configuration with every default applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    /// `[node]`.
    pub node: NodeSection,
    /// `[tun]`.
    pub tun: TunSection,
    /// `[[bootstrap_peers]]`.
    pub bootstrap_peers: Vec<BootstrapPeer>,
    /// `[[allowed_peers]]`.
    pub allowed_peers: Vec<AllowedPeer>,
    /// `[policy]`.
    pub policy: Policy,
}

/// `[node]`: who this node is and where it keeps its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeSection {
    /// Operator-facing label (a DNS label).
    pub name: String,
    /// The overlay this node joins; must be equal on every member.
    pub network_id: String,
    /// Absolute path of the identity file.
    pub identity_path: String,
    /// Underlay IPv4 address to bind the UDP socket to (`0.0.0.0` = all).
    pub listen_address: Ipv4Addr,
    /// Underlay UDP port.
    pub listen_port: u16,
    /// The smallest MTU of the underlay links between nodes (what one UDP
    /// datagram may take, IP header included).
    pub underlay_mtu: u16,
    /// Directory for the pidfile, state file and control socket.
    pub runtime_dir: String,
    /// Whether this node relays for others (forwards relay frames between
    /// its allowlisted peers). Off by default: a node that has not opted in
    /// refuses every relay frame, whatever other nodes' allowlists say.
    pub act_as_relay: bool,
}

/// `[tun]`: the local overlay interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TunSection {
    /// Linux interface name.
    pub name: String,
    /// This node's overlay address.
    pub address: Ipv4Addr,
    /// Length of the prefix this node owns (contains `address`).
    pub prefix_len: u8,
    /// Interface MTU.
    pub mtu: u16,
}

impl TunSection {
    /// The prefix this node owns and advertises.
    pub fn local_prefix(&self) -> Ipv4Prefix {
        Ipv4Prefix::containing_clamped(self.address, self.prefix_len)
    }
}

/// A `udp://host:port` underlay address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UdpAddress {
    /// IPv4 literal or DNS name.
    pub host: String,
    /// UDP port.
    pub port: u16,
}

impl fmt::Display for UdpAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "udp://{}:{}", self.host, self.port)
    }
}

impl Serialize for UdpAddress {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// `[[bootstrap_peers]]`: a peer to contact first to find the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootstrapPeer {
    /// Who we expect to answer (authenticated by the handshake).
    pub peer_id: PeerId,
    /// Where to reach it.
    pub address: UdpAddress,
}

/// `[[allowed_peers]]`: a peer this node enrolls, bound to the one prefix it owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllowedPeer {
    /// The peer's identity.
    pub peer_id: PeerId,
    /// The overlay prefix it owns.
    pub prefix: Ipv4Prefix,
    /// Whether it may relay traffic for this node.
    pub relay_capable: bool,
    /// Optional display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Optional fingerprint, checked against `peer_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
}

/// `[policy]`: runtime toggles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// Refuse sessions from peers that are not in `[[allowed_peers]]`.
    /// When false, unlisted but authenticated peers may hold sessions (for
    /// discovery and signaling) but never own a route.
    pub strict_allowlist: bool,
    /// Permit relay fallback through `relay_capable` peers.
    pub allow_relay: bool,
    /// Permit hole punching coordinated through a signaling peer.
    pub allow_signaling_upgrade: bool,
    /// As a relay: most kilobits per second forwarded for each (source,
    /// destination) pair; 0 = unlimited. Frames over the cap are dropped
    /// and counted.
    pub relay_rate_limit_kbps: u32,
    /// As a relay: most kilobits per second forwarded for one source, summed
    /// over all its destinations; 0 = unlimited. Frames over the cap are
    /// dropped and counted.
    pub relay_source_rate_limit_kbps: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            strict_allowlist: true,
            allow_relay: true,
            allow_signaling_upgrade: true,
            relay_rate_limit_kbps: 0,
            relay_source_rate_limit_kbps: DEFAULT_RELAY_SOURCE_RATE_LIMIT_KBPS,
        }
    }
}

/// The outcome of [`parse`]: every finding, the config when there was no
/// error, and where each key sits so later checks can point at it.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The config, present only when there is no error-level diagnostic.
    pub config: Option<Config>,
    /// Findings in file order (file-level ones first).
    pub diagnostics: Vec<Diagnostic>,
    /// The identity file path (`node.identity_path` or its default), when
    /// `[node]` was readable enough to tell — even if other parts have
    /// errors, so the identity can still be checked in the same run.
    pub identity_path: Option<String>,
    pub(super) spans: BTreeMap<String, Range<usize>>,
    pub(super) index: LineIndex,
    pub(super) source: String,
}

impl Parsed {
    /// Where the value of `key_path` (e.g. `node.identity_path`,
    /// `allowed_peers[2].peer_id`) is written, if it is.
    pub fn locate(&self, key_path: &str) -> Option<Location> {
        self.spans
            .get(key_path)
            .map(|span| self.index.locate_span(&self.source, span))
    }

    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Adds a finding made outside this module (e.g. by the host layer).
    /// An error also withdraws the config.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        if diagnostic.is_error() {
            self.config = None;
        }
        self.diagnostics.push(diagnostic);
        self.sort();
    }

    /// Checks that the local identity is not enrolled as a remote peer or
    /// used as its own bootstrap peer.
    pub fn check_local_peer(&mut self, local: PeerId) {
        let mut found = Vec::new();
        if let Some(config) = &self.config {
            for (i, peer) in config.allowed_peers.iter().enumerate() {
                if peer.peer_id == local {
                    found.push(
                        Diagnostic::error(
                            "self-in-allowlist",
                            format!("[[allowed_peers]] entry #{} is this node itself", i + 1),
                        )
                        .hint("remove it: a node owns its own prefix through [tun], not through the allowlist")
                        .at(self.locate(&format!("allowed_peers[{i}].peer_id"))),
                    );
                }
            }
            for (i, peer) in config.bootstrap_peers.iter().enumerate() {
                if peer.peer_id == local {
                    found.push(
                        Diagnostic::error(
                            "self-as-bootstrap",
                            format!("[[bootstrap_peers]] entry #{} is this node itself", i + 1),
                        )
                        .hint("remove it: list the peers this node should contact, not itself")
                        .at(self.locate(&format!("bootstrap_peers[{i}].peer_id"))),
                    );
                }
            }
        }
        for d in found {
            self.push(d);
        }
    }

    pub(super) fn sort(&mut self) {
        self.diagnostics
            .sort_by_key(|d| d.location.map(|l| (l.line, l.column)));
    }

    /// Counts of (errors, warnings).
    pub fn counts(&self) -> (usize, usize) {
        let errors = self.diagnostics.iter().filter(|d| d.is_error()).count();
        (errors, self.diagnostics.len() - errors)
    }
}
