//! The node's side of relaying for others: applying the rules to a relay
//! frame, forwarding it, and refusing (with a rate-limited notice).

use std::time::Instant;

use super::{Cap, Limits, NOTICE_INTERVAL};
use crate::frame::{self, Frame, RelayDirection, RelayRefusal};
use crate::node::Node;
use crate::node::explain::{Happened, Target};
use crate::node::observe::{AttemptOutcome, DropReason};
use crate::node::paths::Via;
use crate::peer_id::PeerId;

impl Node {
    /// A relay frame from `from` asking us to forward `datagram` to `dest`.
    pub(in crate::node) fn relay_forward(
        &mut self,
        now: Instant,
        from: PeerId,
        dest: PeerId,
        datagram: &[u8],
    ) {
        let listed = |id: &PeerId| self.peers.get(id).is_some_and(|p| p.allow().is_some());
        let both_listed = listed(&from) && listed(&dest);
        if from == dest {
            // Reflection: never sent back, never answered.
            self.drop_packet(Some(from), DropReason::RelayRefused);
            self.explain(now, from, Happened::Reflection { to: dest });
            return;
        }
        let limits = Limits {
            pair_kbps: self.config.policy.relay_rate_limit_kbps,
            source_kbps: self.config.policy.relay_source_rate_limit_kbps,
        };
        let refusal = if !self.config.relay_enabled {
            // Not opted in ([node] act_as_relay = false): relays nothing.
            Some((RelayRefusal::NotARelay, DropReason::RelayNotEnabled))
        } else if !both_listed {
            Some((RelayRefusal::NotAllowlisted, DropReason::RelayRefused))
        } else if !self.wg.session_ready(&dest, now)
            || !self
                .peers
                .get(&dest)
                .and_then(|p| p.active_path())
                .is_some_and(|p| p.is_alive() && matches!(p.via(), Via::Direct(_)))
        {
            Some((
                RelayRefusal::DestinationUnreachable,
                DropReason::RelayRefused,
            ))
        } else {
            match self.relay.admit(now, from, dest, limits, datagram.len()) {
                Ok(()) => None,
                Err(Cap::Pair) => Some((RelayRefusal::RateLimited, DropReason::RelayRateLimited)),
                Err(Cap::Source) => Some((
                    RelayRefusal::RateLimited,
                    DropReason::RelaySourceRateLimited,
                )),
            }
        };
        if let Some((reason, drop)) = refusal {
            self.refuse_relay(now, from, dest, (reason, drop), both_listed);
            return;
        }
        let mut frame = Vec::with_capacity(datagram.len() + frame::RELAY_HEADER_LEN);
        frame::encode_relay(RelayDirection::Deliver, &from, datagram, &mut frame);
        let mut out = Vec::with_capacity(frame.len() + 32);
        if self.wg.encrypt(now, &dest, &frame, &mut out).is_err() {
            return;
        }
        let via = self
            .peers
            .get(&dest)
            .and_then(|p| p.active_path())
            .map(|p| p.via());
        let Some(via) = via else {
            return;
        };
        if !self.send_via(now, dest, via, &out) {
            return;
        }
        self.counters.relayed_for_others += 1;
        self.relay.count_forwarded(from, dest, datagram.len());
        // Say "forwarding" once, and again only after a rate-cap episode
        // has been quiet for a while.
        let target = Target::Forward(dest);
        let recent_cap = self.peers.get(&from).is_some_and(|p| {
            p.attempts.outcome(target) == Some(AttemptOutcome::Throttled)
                && p.attempts
                    .last_seen(target)
                    .is_some_and(|t| now.saturating_duration_since(t) < 5 * NOTICE_INTERVAL)
        });
        let known = self
            .peers
            .get(&from)
            .and_then(|p| p.attempts.outcome(target))
            == Some(AttemptOutcome::Working);
        if !known && !recent_cap {
            self.explain(now, from, Happened::Forwarding { to: dest });
        }
    }

    fn refuse_relay(
        &mut self,
        now: Instant,
        from: PeerId,
        dest: PeerId,
        (reason, drop): (RelayRefusal, DropReason),
        both_listed: bool,
    ) {
        let capped = reason == RelayRefusal::RateLimited;
        self.drop_packet(Some(from), drop);
        let notify = self
            .relay
            .count_refused(now, from, dest, capped, both_listed);
        self.explain(
            now,
            from,
            Happened::ForwardRefused {
                to: dest,
                refusal: reason,
            },
        );
        if notify {
            self.send_frame(now, from, &Frame::RelayRefused { peer: dest, reason });
        }
    }
}
