//! The node's side of the explain records: recording outcomes for a peer's
//! targets as paths work, fall silent or are refused, and rendering the
//! records as the snapshot's `why` line and `attempts` list.

use std::time::{Duration, Instant};

use super::{Attempt, AttemptOutcome, AttemptView, Happened, Reason, Target, ms};
use crate::frame::RelayRefusal;
use crate::node::Node;
use crate::node::observe::PathClass;
use crate::node::paths::Via;
use crate::node::peer::Peer;
use crate::peer_id::PeerId;

impl Node {
    /// How a PeerId is shown in explanations: its allowlist name, or the
    /// short id.
    pub(in crate::node) fn display_name(&self, id: &PeerId) -> String {
        self.peers
            .get(id)
            .and_then(|p| p.allow())
            .and_then(|a| a.name.clone())
            .unwrap_or_else(|| id.short())
    }

    /// How a path is shown: `udp://ip:port` or `relay:<name>`.
    pub(in crate::node) fn via_name(&self, via: Via) -> String {
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

    /// Notes what happened to peer `id` in its explain record.
    pub(in crate::node) fn explain(&mut self, now: Instant, id: PeerId, what: Happened) {
        use AttemptOutcome as O;
        let (target, class, outcome, reason) = match what {
            Happened::RelayPathRefused { relay, why } => (
                Target::Path(Via::Relay(relay)),
                PathClass::Relay,
                O::Refused,
                why,
            ),
            Happened::RelayRefusedUs { relay, refusal } => (
                Target::Path(Via::Relay(relay)),
                PathClass::Relay,
                refusal_outcome(refusal),
                Reason::RelayRefused { relay, refusal },
            ),
            Happened::MembershipRejected {
                via,
                class,
                rejection,
            } => (
                Target::Membership(via),
                class,
                O::Refused,
                Reason::Rejected(rejection),
            ),
            Happened::NoSignalingPeer => (
                Target::Class(PathClass::SignalingThenDirect),
                PathClass::SignalingThenDirect,
                O::NotTried,
                Reason::NoSignalingPeer,
            ),
            Happened::PathExpired { via, class, secs } => (
                Target::Path(via),
                class,
                O::NoAnswer,
                Reason::Expired { secs },
            ),
            Happened::SessionFailed { via, class } => {
                (Target::Path(via), class, O::NoAnswer, Reason::SessionFailed)
            }
            Happened::Promoted {
                via,
                class,
                from,
                streak,
            } => (
                Target::Path(via),
                class,
                O::Promoted,
                Reason::PromotedOver { from, streak },
            ),
            Happened::TookOver {
                via,
                class,
                from,
                old,
                worse,
            } => (
                Target::Path(via),
                class,
                if worse { O::FellBack } else { O::Working },
                Reason::TookOver { from, via: old },
            ),
            Happened::Reflection { to } => (
                Target::Forward(to),
                PathClass::Relay,
                O::Refused,
                Reason::Reflection,
            ),
            Happened::Forwarding { to } => (
                Target::Forward(to),
                PathClass::Relay,
                O::Working,
                Reason::Forwarding { to },
            ),
            Happened::ForwardRefused { to, refusal } => (
                Target::Forward(to),
                PathClass::Relay,
                refusal_outcome(refusal),
                Reason::ForwardRefused { to, refusal },
            ),
        };
        self.record(now, id, target, class, outcome, reason);
    }

    /// Records an outcome for `target` of peer `id`.
    fn record(
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
    pub(in crate::node) fn record_working(&mut self, now: Instant, id: PeerId, via: Via) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        let Some(path) = p.paths.find(via) else {
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
    pub(in crate::node) fn record_silent(
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
        let Some(path) = p.paths.find(via) else {
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
        } else if path.is_reflexive() && p.punched() {
            Reason::FilteredByNat
        } else if path.is_reflexive() && !allow_signaling {
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
    pub(in crate::node) fn note_alternatives(&mut self, now: Instant, id: PeerId) {
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
            .any(|x| x.is_alive() && matches!(x.via(), Via::Direct(_)));
        if direct_alive {
            return;
        }
        let has_direct = p.paths.iter().any(|x| matches!(x.via(), Via::Direct(_)));
        if !policy.allow_signaling_upgrade && has_direct && p.bootstrap().is_none() {
            p.attempts.record(
                now,
                Target::Class(PathClass::SignalingThenDirect),
                PathClass::SignalingThenDirect,
                AttemptOutcome::NotTried,
                Reason::SignalingDisabledByPolicy,
            );
        }
        if p.paths.iter().any(|x| matches!(x.via(), Via::Relay(_))) {
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
    pub(in crate::node) fn attempt_views(&self, p: &Peer, now: Instant) -> Vec<AttemptView> {
        let name = |id: &PeerId| self.display_name(id);
        let current = p.active_path().filter(|x| x.is_alive()).map(|x| x.via());
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
                        .any(|x| Target::Path(x.via()) == a.target && x.is_alive())
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
    pub(in crate::node) fn why(&self, p: &Peer, now: Instant) -> String {
        let name = |id: &PeerId| self.display_name(id);
        let failures = |pred: &dyn Fn(&Attempt) -> bool| -> Vec<String> {
            let mut out: Vec<String> = Vec::new();
            for a in p.attempts.iter().rev() {
                let live = match a.target {
                    Target::Path(v) => p.paths.iter().any(|x| x.via() == v && x.is_alive()),
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
        let mut line = match p.active_path().filter(|x| x.is_alive()) {
            Some(path) => {
                let class = path.class().unwrap_or(PathClass::Direct);
                let via = match path.via() {
                    Via::Relay(r) => format!("relay:{}", name(&r)),
                    v => v.to_string(),
                };
                let rtt = path
                    .srtt()
                    .map(|d| format!(" (rtt {:.1} ms)", d.as_secs_f64() * 1000.0))
                    .unwrap_or_default();
                let why = match class {
                    PathClass::Direct => "the peer answers at its own address".to_owned(),
                    PathClass::SignalingThenDirect => format!(
                        "hole punching{} opened a NAT mapping; no address of its own answered",
                        p.info_from()
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
                let target = Target::Path(path.via());
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
            } else if p.allow().is_none() {
                line.push_str("; not in [[allowed_peers]], so it never owns a route");
            }
        }
        line
    }
}

/// What a relay's refusal makes of an attempt: rate limiting only throttles
/// (the path still carries what fits under the cap); anything else refuses.
fn refusal_outcome(refusal: RelayRefusal) -> AttemptOutcome {
    if refusal == RelayRefusal::RateLimited {
        AttemptOutcome::Throttled
    } else {
        AttemptOutcome::Refused
    }
}
