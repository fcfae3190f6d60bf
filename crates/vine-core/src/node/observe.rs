//! What a node tells the outside: events, counters and the debug snapshot.

use std::net::SocketAddrV4;

use serde::Serialize;

use crate::net::Ipv4Prefix;
use crate::peer_id::PeerId;
use crate::route::{Route, RouteIntent};

pub use crate::wire::{Counters, DropReason, PeerCounters, RejectReason};

/// How a session's datagrams travel, in order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathClass {
    /// Straight to an endpoint the peer announced or the config named.
    Direct,
    /// Straight to an endpoint, opened by hole punching coordinated through
    /// a signaling peer.
    SignalingThenDirect,
    /// Through a `relay_capable` peer.
    Relay,
}

impl PathClass {
    /// Name as printed by the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::SignalingThenDirect => "signaling_then_direct",
            Self::Relay => "relay",
        }
    }
}

/// Why a membership ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawReason {
    /// The peer said it is leaving.
    Withdrawn,
    /// Nothing was heard from the peer for too long.
    Expired,
    /// This node is shutting down.
    Shutdown,
    /// The peer was removed from the allowlist.
    Unlisted,
}

/// Why the preferred path of a peer changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathChangeReason {
    /// A path started working while none was preferred (first path, or
    /// recovery after all paths had died).
    PathUp,
    /// A better class was confirmed by probes.
    Promoted,
    /// The preferred path stopped answering probes.
    PreferredPathDead,
    /// No path is left.
    AllPathsDead,
}

/// Something that happened, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// `start` was called.
    Started,
    /// `stop` finished: withdrawals were sent.
    Stopped,
    /// A session with a bootstrap peer came up.
    BootstrapConnected {
        /// The bootstrap peer.
        peer: PeerId,
    },
    /// A bootstrap peer did not answer its handshake.
    BootstrapUnreachable {
        /// The bootstrap peer.
        peer: PeerId,
        /// Where it was tried.
        address: SocketAddrV4,
    },
    /// A peer told us the address our datagrams come from.
    ReflexiveAddress {
        /// Our address as seen by `via`.
        address: SocketAddrV4,
        /// Who observed it.
        via: PeerId,
    },
    /// A peer was enrolled (or re-enrolled) with its prefix.
    MembershipAccepted {
        /// The peer.
        peer: PeerId,
        /// Its prefix.
        prefix: Ipv4Prefix,
    },
    /// A membership update was refused; nothing changed.
    MembershipRejected {
        /// Who sent it.
        peer: PeerId,
        /// Why.
        reason: RejectReason,
    },
    /// A membership ended and its route was withdrawn.
    MembershipWithdrawn {
        /// The peer.
        peer: PeerId,
        /// Its former prefix.
        prefix: Ipv4Prefix,
        /// Why.
        reason: WithdrawReason,
    },
    /// A peer's preferred path changed.
    PathChanged {
        /// The peer.
        peer: PeerId,
        /// Previous class.
        from: Option<PathClass>,
        /// New class.
        to: Option<PathClass>,
        /// Why.
        reason: PathChangeReason,
    },
    /// The host must change a kernel route.
    Route(RouteIntent),
    /// A probe sent with [`crate::node::Node::probe`] was answered.
    ProbeAnswered {
        /// The peer.
        peer: PeerId,
        /// The probe id.
        probe: u64,
        /// Round-trip time in microseconds.
        rtt_us: u64,
        /// The path it took.
        via: String,
        /// That path's class.
        class: Option<PathClass>,
    },
    /// A probe sent with [`crate::node::Node::probe`] got no answer in time.
    ProbeLost {
        /// The peer.
        peer: PeerId,
        /// The probe id.
        probe: u64,
    },
    /// A session could not be (re)established within the handshake deadline.
    SessionFailed {
        /// The peer.
        peer: PeerId,
    },
}

/// A path as shown in the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathView {
    /// `udp://ip:port` for direct paths, `relay:<peer>` for relayed ones.
    pub via: String,
    /// Class (for direct paths, fixed when the path first worked).
    pub class: PathClass,
    /// Answering probes.
    pub alive: bool,
    /// Smoothed round-trip time in microseconds.
    pub rtt_us: Option<u64>,
    /// Consecutive unanswered probes.
    pub misses: u32,
}

/// One peer in the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerView {
    /// The peer.
    pub peer_id: PeerId,
    /// Configured name.
    pub name: Option<String>,
    /// Configured prefix.
    pub prefix: Option<Ipv4Prefix>,
    /// May relay for us.
    pub relay_capable: bool,
    /// Membership accepted and current.
    pub enrolled: bool,
    /// Encryption keys established.
    pub session_up: bool,
    /// Class of the preferred path.
    pub class: Option<PathClass>,
    /// Address or relay of the preferred path.
    pub via: Option<String>,
    /// All candidate paths.
    pub paths: Vec<PathView>,
    /// Counters.
    pub counters: PeerCounters,
    /// The current choice of path and why, in one line.
    pub why: String,
    /// Recent path attempts and their outcomes, oldest first (at most
    /// [`MAX_ATTEMPTS`](super::explain::MAX_ATTEMPTS)).
    pub attempts: Vec<AttemptView>,
}

/// Structured runtime state for diagnostics (`vine snapshot`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// This node.
    pub peer_id: PeerId,
    /// Overlay.
    pub network_id: String,
    /// Own prefix.
    pub prefix: Ipv4Prefix,
    /// Started and not stopped.
    pub running: bool,
    /// Own endpoint candidates (local and reflexive).
    pub candidates: crate::frame::Candidates,
    /// Peers, ordered by PeerId.
    pub peers: Vec<PeerView>,
    /// Route table.
    pub routes: Vec<Route>,
    /// Node-wide counters.
    pub counters: Counters,
}

/// How an attempt turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// Handshakes or probes were sent; no answer yet.
    Trying,
    /// The path answers.
    Working,
    /// The path replaced a worse class after a streak of answered probes.
    Promoted,
    /// The path took over because the preferred one stopped answering.
    FellBack,
    /// The path works, but a relay's rate cap dropped frames on it.
    Throttled,
    /// Nothing came back.
    NoAnswer,
    /// The other side (or our own rules) refused it.
    Refused,
    /// Not attempted (policy, or nothing to attempt it with).
    NotTried,
}

impl AttemptOutcome {
    /// Name as printed by the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trying => "trying",
            Self::Working => "working",
            Self::Promoted => "promoted",
            Self::FellBack => "fell back",
            Self::Throttled => "throttled",
            Self::NoAnswer => "no answer",
            Self::Refused => "refused",
            Self::NotTried => "not tried",
        }
    }

    /// The path carried (or carries) traffic.
    pub fn succeeded(self) -> bool {
        matches!(
            self,
            Self::Working | Self::Promoted | Self::FellBack | Self::Throttled
        )
    }
}

/// One attempt as shown by `vine sessions --explain` and the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptView {
    /// `udp://ip:port`, `relay:<name>`, `forward:<name>` (as a relay, the
    /// peer's frames forwarded to that destination) or `-` (a class of path
    /// that was not tried).
    pub path: String,
    /// Class of the path.
    pub class: PathClass,
    /// How it turned out.
    pub outcome: AttemptOutcome,
    /// Stable code of the reason (e.g. `filtered_by_nat`,
    /// `relay_not_allowed_by_policy`, `prefix_mismatch`, `relay_rate_cap`).
    pub reason_code: &'static str,
    /// The reason, for people.
    pub reason: String,
    /// This path carries the peer's traffic now.
    pub current: bool,
    /// Milliseconds since the outcome was last seen (relative to the
    /// snapshot).
    pub ago_ms: u64,
    /// Milliseconds since the outcome last changed.
    pub since_ms: u64,
    /// Milliseconds since the entry was created.
    pub first_ms: u64,
}
