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

use serde::Serialize;

use super::Node;
use super::observe::{PathClass, RejectReason};
use super::peer::{Peer, Via};
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
                    RelayRefusal::NotARelay => "relay_refused_not_a_relay",
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
            RelayRefusal::NotARelay => "it does not relay (not relay-capable)",
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

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

impl Node {
    /// How a PeerId is shown in explanations: its allowlist name, or the
    /// short id.
    pub(super) fn display_name(&self, id: &PeerId) -> String {
        self.peers
            .get(id)
            .and_then(|p| p.allow.as_ref())
            .and_then(|a| a.name.clone())
            .unwrap_or_else(|| id.short())
    }

    /// How a path is shown: `udp://ip:port` or `relay:<name>`.
    pub(super) fn via_name(&self, via: Via) -> String {
        match via {
            Via::Relay(r) => format!("relay:{}", self.display_name(&r)),
            v => v.to_string(),
        }
    }

    fn target_path(&self, t: Target) -> String {
        match t {
            Target::Path(Via::Relay(r)) | Target::Membership(Via::Relay(r)) => {
                format!("relay:{}", self.display_name(&r))
            }
            Target::Path(via) | Target::Membership(via) => via.to_string(),
            Target::Forward(to) => format!("forward:{}", self.display_name(&to)),
            Target::Class(_) => "-".into(),
        }
    }

    /// Records an outcome for `target` of peer `id`.
    pub(super) fn record(
        &mut self,
        now: Instant,
        id: PeerId,
        target: Target,
        class: PathClass,
        outcome: AttemptOutcome,
        reason: Reason,
    ) {
        if let Some(p) = self.peers.get_mut(&id) {
            p.attempts.record(now, target, class, outcome, reason);
        }
    }

    /// Records that path `via` of `id` started working.
    pub(super) fn record_working(&mut self, now: Instant, id: PeerId, via: Via) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        let Some(path) = p.paths.iter().find(|x| x.via == via) else {
            return;
        };
        let class = path.expected_class();
        let target = Target::Path(via);
        if p.attempts
            .outcome(target)
            .is_some_and(AttemptOutcome::succeeded)
        {
            return;
        }
        p.attempts.record(
            now,
            target,
            class,
            AttemptOutcome::Working,
            Reason::Answered,
        );
    }

    /// Records that path `via` of `id` stopped (or never started)
    /// answering after `probes` unanswered probes (0: handshakes only,
    /// `waited` long), then notes why better or fallback classes are not
    /// in use.
    pub(super) fn record_silent(
        &mut self,
        now: Instant,
        id: PeerId,
        via: Via,
        probes: u32,
        waited: Duration,
    ) {
        let allow_signaling = self.config.policy.allow_signaling_upgrade;
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        let Some(path) = p.paths.iter().find(|x| x.via == via) else {
            return;
        };
        let class = path.expected_class();
        let target = Target::Path(via);
        let worked = p
            .attempts
            .outcome(target)
            .is_some_and(AttemptOutcome::succeeded);
        let reason = if worked {
            Reason::StoppedAnswering { probes }
        } else if path.reflexive && p.punched {
            Reason::FilteredByNat
        } else if path.reflexive && !allow_signaling {
            Reason::NotPunched
        } else if probes == 0 {
            Reason::HandshakeNoAnswer {
                secs: waited.as_secs(),
            }
        } else {
            Reason::NoAnswer { probes }
        };
        p.attempts
            .record(now, target, class, AttemptOutcome::NoAnswer, reason);
        if matches!(via, Via::Direct(_)) {
            self.note_alternatives(now, id);
        }
    }

    /// After a direct attempt failed: records why signaling and relay
    /// cannot stand in (policy, no signaling or relay peer).
    pub(super) fn note_alternatives(&mut self, now: Instant, id: PeerId) {
        let policy = self.config.policy;
        let configured: Vec<PeerId> = self
            .peers
            .values()
            .filter(|r| r.id != id && r.relay_capable())
            .map(|r| r.id)
            .collect();
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        let direct_alive = p
            .paths
            .iter()
            .any(|x| x.alive && matches!(x.via, Via::Direct(_)));
        if direct_alive {
            return;
        }
        let has_direct = p.paths.iter().any(|x| matches!(x.via, Via::Direct(_)));
        if !policy.allow_signaling_upgrade && has_direct && p.bootstrap.is_none() {
            p.attempts.record(
                now,
                Target::Class(PathClass::SignalingThenDirect),
                PathClass::SignalingThenDirect,
                AttemptOutcome::NotTried,
                Reason::SignalingDisabledByPolicy,
            );
        }
        if p.paths.iter().any(|x| matches!(x.via, Via::Relay(_))) {
            return;
        }
        let reason = if !policy.allow_relay {
            Reason::RelayDisabledByPolicy
        } else {
            Reason::NoRelayCapablePeer { configured }
        };
        p.attempts.record(
            now,
            Target::Class(PathClass::Relay),
            PathClass::Relay,
            AttemptOutcome::NotTried,
            reason,
        );
    }

    /// The attempts of `p`, oldest first, relative to `now`.
    pub(super) fn attempt_views(&self, p: &Peer, now: Instant) -> Vec<AttemptView> {
        let name = |id: &PeerId| self.display_name(id);
        let current = p.active_path().filter(|x| x.alive).map(|x| x.via);
        let mut views: Vec<(Instant, AttemptView)> = p
            .attempts
            .iter()
            .map(|a| {
                let is_current = matches!(a.target, Target::Path(v) if Some(v) == current)
                    && a.outcome.succeeded();
                let mut reason = a.reason.text(&name);
                if a.outcome.succeeded() && matches!(a.target, Target::Path(_)) {
                    reason.push_str(if is_current {
                        "; carries traffic"
                    } else if p
                        .paths
                        .iter()
                        .any(|x| Target::Path(x.via) == a.target && x.alive)
                    {
                        "; standby"
                    } else {
                        ""
                    });
                }
                let age = |t: Instant| ms(now.saturating_duration_since(t));
                (
                    a.last,
                    AttemptView {
                        path: self.target_path(a.target),
                        class: a.class,
                        outcome: a.outcome,
                        reason_code: a.reason.code(),
                        reason,
                        current: is_current,
                        ago_ms: age(a.last),
                        since_ms: age(a.changed),
                        first_ms: age(a.first),
                    },
                )
            })
            .collect();
        views.sort_by_key(|(last, _)| *last);
        views.into_iter().map(|(_, v)| v).collect()
    }

    /// One line: the current choice for `p` and why.
    pub(super) fn why(&self, p: &Peer, now: Instant) -> String {
        let name = |id: &PeerId| self.display_name(id);
        let failures = |pred: &dyn Fn(&Attempt) -> bool| -> Vec<String> {
            let mut out: Vec<String> = Vec::new();
            for a in p.attempts.iter().rev() {
                let live = match a.target {
                    Target::Path(v) => p.paths.iter().any(|x| x.via == v && x.alive),
                    _ => false,
                };
                if a.outcome.succeeded() || live || a.outcome == AttemptOutcome::Trying {
                    continue;
                }
                if pred(a) {
                    let t = match a.target {
                        Target::Path(v) => format!("{} {}", self.via_name(v), a.reason.text(&name)),
                        _ => a.reason.text(&name),
                    };
                    if !out.contains(&t) {
                        out.push(t);
                    }
                }
            }
            out
        };
        let mut line = match p.active_path().filter(|x| x.alive) {
            Some(path) => {
                let class = path.class.unwrap_or(PathClass::Direct);
                let via = match path.via {
                    Via::Relay(r) => format!("relay:{}", name(&r)),
                    v => v.to_string(),
                };
                let rtt = path
                    .srtt
                    .map(|d| format!(" (rtt {:.1} ms)", d.as_secs_f64() * 1000.0))
                    .unwrap_or_default();
                let why = match class {
                    PathClass::Direct => "the peer answers at its own address".to_owned(),
                    PathClass::SignalingThenDirect => format!(
                        "hole punching{} opened a NAT mapping; no address of its own answered",
                        p.info_from
                            .map(|s| format!(" coordinated by {}", name(&s)))
                            .unwrap_or_default()
                    ),
                    PathClass::Relay => {
                        let better = failures(&|a: &Attempt| a.class < PathClass::Relay);
                        if better.is_empty() {
                            "no direct path has answered yet".to_owned()
                        } else {
                            format!("no better path works: {}", better.join("; "))
                        }
                    }
                };
                let mut line = format!("{} via {via}{rtt}: {why}", class.as_str());
                let target = Target::Path(path.via);
                if p.attempts.outcome(target) == Some(AttemptOutcome::Throttled)
                    && let Some((reason, last)) = p
                        .attempts
                        .iter()
                        .rev()
                        .find(|a| a.target == target)
                        .map(|a| (a.reason.text(&name), a.last))
                    {
                        let ago = now.saturating_duration_since(last).as_secs_f64();
                        line.push_str(&format!("; throttled: {reason} ({ago:.1} s ago)"));
                    }
                line
            }
            None if p.paths.is_empty() => {
                "no path: no address is known for this peer yet (it is not a bootstrap peer and no signaling peer has shared its candidates)".to_owned()
            }
            None => {
                let all = failures(&|a: &Attempt| !matches!(a.target, Target::Membership(_)));
                if all.is_empty() {
                    "no working path yet: waiting for an answer".to_owned()
                } else {
                    format!("no working path: {}", all.join("; "))
                }
            }
        };
        if p.enrolled_prefix().is_none() {
            let rejected = p.attempts.iter().rev().find_map(|a| match &a.reason {
                Reason::Rejected(_) => Some(a.reason.text(&name)),
                _ => None,
            });
            if let Some(r) = rejected {
                line.push_str(&format!("; membership refused: {r}"));
            } else if p.allow.is_none() {
                line.push_str("; not in [[allowed_peers]], so it never owns a route");
            }
        }
        line
    }
}

#[cfg(test)]
mod tests;
