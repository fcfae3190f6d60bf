//! Counters and drop reasons: what the data-plane tables and the node
//! count, by reason, and show in the snapshot.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::peer_id::PeerId;

/// Why a packet or datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// No route covers the destination.
    UnknownRoute,
    /// The sender is not enrolled, or the source address is outside its prefix.
    UnauthorizedPeer,
    /// The route's owner has no usable session or path.
    NoSession,
    /// Not a well-formed IPv4 packet.
    Malformed,
    /// The destination is not in this node's prefix.
    WrongDestination,
    /// A datagram that failed authentication or decryption.
    DecryptFailed,
    /// A handshake from a key that is not on the allowlist.
    UnknownSender,
    /// A control message that could not be decoded.
    BadControl,
    /// Too many packets queued while a session was being set up.
    QueueFull,
    /// A relayed frame this node must not accept (policy or relay not trusted).
    RelayNotAllowed,
    /// A frame this node refused to relay for someone else.
    RelayRefused,
    /// A frame this node did not relay because its pair was over the
    /// `[policy] relay_rate_limit_kbps` cap.
    RelayRateLimited,
    /// A packet with Don't Fragment set that is too big for its path (a
    /// relayed path carries less than the TUN MTU in one underlay
    /// datagram); its sender was told the size that fits with an ICMP
    /// "fragmentation needed".
    PacketTooBig,
    /// A frame this node did not relay because it does not relay for
    /// others (`[node] act_as_relay = false`).
    RelayNotEnabled,
    /// A frame this node did not relay because its source was over the
    /// `[policy] relay_source_rate_limit_kbps` cap (all its destinations
    /// together).
    RelaySourceRateLimited,
    /// A name record a member announced for an address outside its
    /// allowlisted prefix (the rest of its names are kept).
    NameOutsidePrefix,
    /// Address information (a `PeerInfo` about a third party, a
    /// `PunchNotify`) from a peer that is not a signaling peer of this node
    /// (not a bootstrap peer, not `relay_capable` in the allowlist).
    UntrustedAddressInfo,
    /// A probe reply that matches no probe in flight to its sender over
    /// the path it came on.
    UnmatchedProbeReply,
    /// A candidate address nobody can be reached at (loopback, multicast,
    /// broadcast, unspecified, or port 0).
    UnusableCandidate,
    /// A request for peer information answered too recently to answer
    /// again.
    PeerInfoRequestLimited,
}

impl DropReason {
    /// Every reason, in declaration order.
    pub const ALL: [DropReason; 20] = [
        Self::UnknownRoute,
        Self::UnauthorizedPeer,
        Self::NoSession,
        Self::Malformed,
        Self::WrongDestination,
        Self::DecryptFailed,
        Self::UnknownSender,
        Self::BadControl,
        Self::QueueFull,
        Self::RelayNotAllowed,
        Self::RelayRefused,
        Self::RelayRateLimited,
        Self::PacketTooBig,
        Self::RelayNotEnabled,
        Self::RelaySourceRateLimited,
        Self::NameOutsidePrefix,
        Self::UntrustedAddressInfo,
        Self::UnmatchedProbeReply,
        Self::UnusableCandidate,
        Self::PeerInfoRequestLimited,
    ];

    /// Position in [`DropReason::ALL`] (for counter arrays). The match is
    /// exhaustive so a new reason cannot be forgotten here; a unit test
    /// checks it agrees with `ALL`.
    pub const fn index(self) -> usize {
        match self {
            Self::UnknownRoute => 0,
            Self::UnauthorizedPeer => 1,
            Self::NoSession => 2,
            Self::Malformed => 3,
            Self::WrongDestination => 4,
            Self::DecryptFailed => 5,
            Self::UnknownSender => 6,
            Self::BadControl => 7,
            Self::QueueFull => 8,
            Self::RelayNotAllowed => 9,
            Self::RelayRefused => 10,
            Self::RelayRateLimited => 11,
            Self::PacketTooBig => 12,
            Self::RelayNotEnabled => 13,
            Self::RelaySourceRateLimited => 14,
            Self::NameOutsidePrefix => 15,
            Self::UntrustedAddressInfo => 16,
            Self::UnmatchedProbeReply => 17,
            Self::UnusableCandidate => 18,
            Self::PeerInfoRequestLimited => 19,
        }
    }
}

/// Why a membership update was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The PeerId is not in `[[allowed_peers]]`.
    NotAllowlisted,
    /// The update names another overlay.
    WrongNetwork,
    /// The claimed prefix is not the one configured for this peer.
    PrefixMismatch,
}

/// Per-peer counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PeerCounters {
    /// Packets sent to this peer.
    pub packets_sent: u64,
    /// Packets received from this peer and delivered to the TUN device.
    pub packets_received: u64,
    /// Payload bytes sent.
    pub bytes_sent: u64,
    /// Payload bytes received.
    pub bytes_received: u64,
    /// Packets sent through a relay.
    pub relay_usage: u64,
    /// Times the preferred path fell back to a worse class.
    pub fallback_transitions: u64,
    /// Times the preferred path changed at all (up, promoted, fallen back,
    /// lost): the measure of flapping.
    pub path_changes: u64,
    /// Session setups that failed.
    pub session_failures: u64,
    /// Drops attributed to this peer, by reason.
    pub drops: BTreeMap<DropReason, u64>,
}

/// Node-wide counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Data packets sent over sessions.
    pub packets_sent: u64,
    /// Data packets delivered to the TUN device.
    pub packets_received: u64,
    /// Payload bytes sent.
    pub bytes_sent: u64,
    /// Payload bytes received.
    pub bytes_received: u64,
    /// Outbound packets whose destination had no route.
    pub route_misses: u64,
    /// Session setups that failed.
    pub session_failures: u64,
    /// Preferred-path changes to a worse class.
    pub fallback_transitions: u64,
    /// Preferred-path changes of any kind, summed over peers.
    pub path_changes: u64,
    /// Data packets this node sent through a relay.
    pub relay_usage: u64,
    /// Frames this node forwarded as a relay for others.
    pub relayed_for_others: u64,
    /// As a relay: frames and bytes forwarded, and frames refused, per
    /// (source, destination) pair, ordered by source then destination.
    pub relay_pairs: Vec<RelayPairCounters>,
    /// Membership updates refused, by reason.
    pub membership_rejections: BTreeMap<RejectReason, u64>,
    /// Drops, by reason.
    pub drops: BTreeMap<DropReason, u64>,
    /// Handshake messages that went on to Diffie-Hellman.
    pub handshake_dh_computed: u64,
    /// Handshake messages dropped by the per-source limiter (20/s, burst
    /// 5) before any Diffie-Hellman.
    pub handshake_rate_limited: u64,
    /// Handshake messages that arrived under load without a valid mac2
    /// (answered with a cookie reply, not processed).
    pub handshake_mac2_missing: u64,
    /// Cookie replies sent.
    pub cookie_replies_sent: u64,
    /// Cookie replies accepted from peers (they were under load).
    pub cookie_replies_received: u64,
    /// Cookie replies dropped (not for our last handshake message, or
    /// forged).
    pub bad_cookie_replies: u64,
}

/// Relay traffic of one (source, destination) pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelayPairCounters {
    /// Who sent the frames.
    pub source: PeerId,
    /// Where they were to go.
    pub destination: PeerId,
    /// Frames forwarded.
    pub frames: u64,
    /// Bytes forwarded (the end-to-end encrypted datagrams).
    pub bytes: u64,
    /// Frames dropped by a rate cap: the pair's, or its source's (which
    /// of the two is told by the drop reasons `relay_rate_limited` and
    /// `relay_source_rate_limited`).
    pub rate_limited: u64,
    /// Frames refused for another reason (destination unreachable, or
    /// this node does not relay).
    pub refused: u64,
}
