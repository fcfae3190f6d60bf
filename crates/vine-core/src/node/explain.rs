//! Why a peer is reached the way it is: a bounded per-peer record of recent
//! path attempts and their outcomes (`vine sessions --explain <peer>`).
//!
//! Each candidate path, each class of path that was not tried, each
//! membership refusal and (on a relay) each destination a peer's frames are
//! forwarded to has at most one *current* entry, updated in place as things
//! change; a path that worked, failed and works again starts a new entry, so
//! the history shows the episode. At most [`MAX_ATTEMPTS`] entries are kept
//! per peer; the oldest superseded or failed ones go first. Times are the
//! node's `now`; views give ages relative to the snapshot.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::observe::{AttemptOutcome, AttemptView, PathClass, RejectReason};
use super::paths::Via;
use crate::frame::RelayRefusal;
use crate::net::Ipv4Prefix;
use crate::peer_id::PeerId;

/// Entries kept per peer.
pub const MAX_ATTEMPTS: usize = 16;

/// What an entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    /// One of our candidate paths to the peer.
    Path(Via),
    /// A membership update the peer sent over this path.
    Membership(Via),
    /// As a relay: forwarding the peer's frames to this destination.
    Forward(PeerId),
    /// A class of path that was not tried.
    Class(PathClass),
}

/// Why an attempt ended the way it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Reason {
    Waiting,
    Answered,
    PromotedOver {
        from: Option<PathClass>,
        streak: u32,
    },
    TookOver {
        from: Option<PathClass>,
        via: Option<String>,
    },
    NoAnswer {
        probes: u32,
    },
    HandshakeNoAnswer {
        secs: u64,
    },
    FilteredByNat,
    NotPunched,
    StoppedAnswering {
        probes: u32,
    },
    SessionFailed,
    Expired {
        secs: u64,
    },
    RelayRefused {
        relay: PeerId,
        refusal: RelayRefusal,
    },
    RelayDisabledByPolicy,
    SignalingDisabledByPolicy,
    NoRelayCapablePeer {
        configured: Vec<PeerId>,
    },
    NoSignalingPeer,
    NotRelayCapable {
        relay: PeerId,
    },
    Rejected(Rejection),
    Forwarding {
        to: PeerId,
    },
    ForwardRefused {
        to: PeerId,
        refusal: RelayRefusal,
    },
    Reflection,
}

/// Something that happened to a peer, as the handlers report it to its
/// explain record ([`Node::explain`](crate::node::Node)); which entry it
/// updates, with what outcome and reason, is decided in one place
/// (`report`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Happened {
    /// A relay frame from `relay` carrying this peer's traffic broke a
    /// rule (`why`).
    RelayPathRefused { relay: PeerId, why: Reason },
    /// Our relay `relay` refused (or, rate-capped, throttled) frames for
    /// this peer.
    RelayRefusedUs {
        relay: PeerId,
        refusal: RelayRefusal,
    },
    /// The peer's membership update over `via` (a path of `class`) was
    /// refused.
    MembershipRejected {
        via: Via,
        class: PathClass,
        rejection: Rejection,
    },
    /// Hole punching was due, but no signaling peer has a session.
    NoSignalingPeer,
    /// The working path `via` ended with the membership: nothing heard for
    /// `secs`.
    PathExpired {
        via: Via,
        class: PathClass,
        secs: u64,
    },
    /// Session setup gave up while `via` was still being tried.
    SessionFailed { via: Via, class: PathClass },
    /// `via` replaced a path of class `from` after `streak` answers.
    Promoted {
        via: Via,
        class: PathClass,
        from: Option<PathClass>,
        streak: u32,
    },
    /// `via` took over from the preferred path `old` (of class `from`),
    /// which stopped answering; `worse`: it is of a worse class.
    TookOver {
        via: Via,
        class: PathClass,
        from: Option<PathClass>,
        old: Option<String>,
        worse: bool,
    },
    /// As a relay: a frame of this peer was addressed back to it.
    Reflection { to: PeerId },
    /// As a relay: this peer's frames are forwarded to `to`.
    Forwarding { to: PeerId },
    /// As a relay: a frame of this peer for `to` was refused.
    ForwardRefused { to: PeerId, refusal: RelayRefusal },
}

/// A refused membership update with what was claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Rejection {
    pub reason: RejectReason,
    pub claimed_network: String,
    pub claimed_prefix: Ipv4Prefix,
    pub configured_prefix: Option<Ipv4Prefix>,
    pub network: String,
}

impl Reason {
    /// Stable machine-readable code.
    fn code(&self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Answered => "answered",
            Self::PromotedOver { .. } => "promoted",
            Self::TookOver { .. } => "took_over",
            Self::NoAnswer { .. } => "no_answer",
            Self::HandshakeNoAnswer { .. } => "handshake_no_answer",
            Self::FilteredByNat => "filtered_by_nat",
            Self::NotPunched => "not_punched",
            Self::StoppedAnswering { .. } => "stopped_answering",
            Self::SessionFailed => "handshake_never_answered",
            Self::Expired { .. } => "membership_expired",
            Self::RelayRefused { refusal, .. } | Self::ForwardRefused { refusal, .. } => {
                match refusal {
                    RelayRefusal::NotARelay => "relay_not_enabled",
                    RelayRefusal::NotAllowlisted => "relay_refused_not_allowlisted",
                    RelayRefusal::DestinationUnreachable => "relay_refused_destination_unreachable",
                    RelayRefusal::RateLimited => "relay_rate_cap",
                }
            }
            Self::RelayDisabledByPolicy => "relay_not_allowed_by_policy",
            Self::SignalingDisabledByPolicy => "signaling_disabled_by_policy",
            Self::NoRelayCapablePeer { .. } => "no_relay_capable_peer",
            Self::NoSignalingPeer => "no_signaling_peer",
            Self::NotRelayCapable { .. } => "peer_not_relay_capable",
            Self::Rejected(r) => match r.reason {
                RejectReason::NotAllowlisted => "allowlist_mismatch",
                RejectReason::WrongNetwork => "wrong_network",
                RejectReason::PrefixMismatch => "prefix_mismatch",
            },
            Self::Forwarding { .. } => "forwarding",
            Self::Reflection => "reflection",
        }
    }

    /// What it means, for people; `name` renders a PeerId.
    fn text(&self, name: &dyn Fn(&PeerId) -> String) -> String {
        let refusal = |r: &RelayRefusal| match r {
            RelayRefusal::NotARelay => "it has not enabled act_as_relay, so it relays nothing",
            RelayRefusal::NotAllowlisted => "source or destination is not in its allowlist",
            RelayRefusal::DestinationUnreachable => "it has no working session to the destination",
            RelayRefusal::RateLimited => "relay rate cap reached, frames dropped",
        };
        match self {
            Self::Waiting => "waiting for an answer".into(),
            Self::Answered => "answered".into(),
            Self::PromotedOver { from, streak } => format!(
                "replaced {} after {streak} answered probes in a row",
                class_name(*from)
            ),
            Self::TookOver { from, via } => format!(
                "the preferred {} path{} stopped answering",
                class_name(*from),
                via.as_ref().map(|v| format!(" {v}")).unwrap_or_default()
            ),
            Self::NoAnswer { probes } => format!("no answer to {probes} probes"),
            Self::HandshakeNoAnswer { secs } => {
                format!("no answer to handshakes for {secs} s")
            }
            Self::FilteredByNat => {
                "filtered by NAT: the punched NAT mapping never answered (symmetric NAT or a firewall on one side)".into()
            }
            Self::NotPunched => {
                "NAT mapping never answered and was not punched: signaling disabled by policy (allow_signaling_upgrade = false)".into()
            }
            Self::StoppedAnswering { probes } => {
                format!("stopped answering ({probes} probes lost)")
            }
            Self::SessionFailed => {
                "handshake never answered: session setup gave up (peer down, wrong address, or it does not allowlist us)".into()
            }
            Self::Expired { secs } => format!("nothing heard for {secs} s: membership expired"),
            Self::RelayRefused {
                relay,
                refusal: RelayRefusal::RateLimited,
            } => format!(
                "relay rate cap at {}: frames over its limit were dropped",
                name(relay)
            ),
            Self::RelayRefused {
                relay,
                refusal: RelayRefusal::NotARelay,
            } => format!(
                "{} has not enabled act_as_relay: it relays nothing (its operator must set act_as_relay = true in its [node])",
                name(relay)
            ),
            Self::RelayRefused { relay, refusal: r } => {
                format!("{} refused to relay: {}", name(relay), refusal(r))
            }
            Self::RelayDisabledByPolicy => "relay not allowed by policy (allow_relay = false)".into(),
            Self::SignalingDisabledByPolicy => {
                "signaling disabled by policy (allow_signaling_upgrade = false)".into()
            }
            Self::NoRelayCapablePeer { configured } if configured.is_empty() => {
                "no relay: no peer in [[allowed_peers]] is relay_capable = true".into()
            }
            Self::NoRelayCapablePeer { configured } => format!(
                "no relay: the relay-capable peers ({}) have no working direct session",
                configured.iter().map(name).collect::<Vec<_>>().join(", ")
            ),
            Self::NoSignalingPeer => {
                "hole punching not possible: no signaling peer has a session".into()
            }
            Self::NotRelayCapable { relay } => format!(
                "peer not relay-capable: {} relayed frames, but relay_capable = false for it here",
                name(relay)
            ),
            Self::Rejected(r) => match r.reason {
                RejectReason::NotAllowlisted => {
                    "allowlist mismatch: the peer is not in [[allowed_peers]]".into()
                }
                RejectReason::WrongNetwork => format!(
                    "wrong network: it joined \"{}\", this node is in \"{}\"",
                    r.claimed_network, r.network
                ),
                RejectReason::PrefixMismatch => format!(
                    "prefix mismatch: it claims {}, the allowlist binds it to {}",
                    r.claimed_prefix,
                    r.configured_prefix
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "nothing".into())
                ),
            },
            Self::Forwarding { to } => format!("forwarding its frames to {}", name(to)),
            Self::ForwardRefused {
                to,
                refusal: RelayRefusal::NotARelay,
            } => format!(
                "not forwarded to {}: this node has not enabled act_as_relay ([node] act_as_relay = false)",
                name(to)
            ),
            Self::ForwardRefused { to, refusal: r } => {
                format!("not forwarded to {}: {}", name(to), refusal(r))
            }
            Self::Reflection => "refused: frame addressed back to its sender (reflection)".into(),
        }
    }
}

fn class_name(c: Option<PathClass>) -> &'static str {
    c.map_or("(none)", PathClass::as_str)
}

/// One recorded attempt.
#[derive(Debug, Clone)]
pub(super) struct Attempt {
    target: Target,
    class: PathClass,
    outcome: AttemptOutcome,
    reason: Reason,
    /// When the entry was created.
    first: Instant,
    /// When the outcome or reason last changed.
    changed: Instant,
    /// When it was last confirmed (a rate cap that keeps dropping).
    last: Instant,
    /// The entry was in a succeeded state at some point.
    worked: bool,
}

/// The per-peer ring.
#[derive(Debug, Default)]
pub(super) struct Attempts {
    ring: VecDeque<Attempt>,
}

impl Attempts {
    fn latest(&self, target: Target) -> Option<usize> {
        self.ring.iter().rposition(|a| a.target == target)
    }

    /// The current outcome for `target`.
    pub(super) fn outcome(&self, target: Target) -> Option<AttemptOutcome> {
        self.latest(target).map(|i| self.ring[i].outcome)
    }

    /// When `target`'s current outcome was last confirmed.
    pub(super) fn last_seen(&self, target: Target) -> Option<Instant> {
        self.latest(target).map(|i| self.ring[i].last)
    }

    /// A new candidate: recorded as `trying` unless it is already known.
    pub(super) fn begin(&mut self, now: Instant, target: Target, class: PathClass) {
        if self.latest(target).is_none() {
            self.push(Attempt {
                target,
                class,
                outcome: AttemptOutcome::Trying,
                reason: Reason::Waiting,
                first: now,
                changed: now,
                last: now,
                worked: false,
            });
        }
    }

    /// Sets `target`'s outcome; a path that had worked, failed and now
    /// works again starts a new entry.
    pub(super) fn record(
        &mut self,
        now: Instant,
        target: Target,
        class: PathClass,
        outcome: AttemptOutcome,
        reason: Reason,
    ) {
        if let Some(i) = self.latest(target) {
            let e = &mut self.ring[i];
            let new_episode = e.worked && !e.outcome.succeeded() && outcome.succeeded();
            if !new_episode {
                if e.outcome != outcome || e.reason != reason {
                    e.changed = now;
                }
                e.class = class;
                e.outcome = outcome;
                e.reason = reason;
                e.last = now;
                e.worked |= outcome.succeeded();
                return;
            }
        }
        self.push(Attempt {
            target,
            class,
            outcome,
            reason,
            first: now,
            changed: now,
            last: now,
            worked: outcome.succeeded(),
        });
    }

    fn push(&mut self, a: Attempt) {
        if self.ring.len() >= MAX_ATTEMPTS {
            let superseded = (0..self.ring.len()).find(|&i| {
                let t = self.ring[i].target;
                self.ring.iter().skip(i + 1).any(|b| b.target == t)
            });
            let failed = || (0..self.ring.len()).find(|&i| !self.ring[i].outcome.succeeded());
            let victim = superseded.or_else(failed).unwrap_or(0);
            self.ring.remove(victim);
        }
        self.ring.push_back(a);
    }

    fn iter(&self) -> std::collections::vec_deque::Iter<'_, Attempt> {
        self.ring.iter()
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

mod report;

#[cfg(test)]
mod tests;
