//! The node's timed work: connecting and handshakes, hole-punch requests,
//! probes and their loss, membership expiry and session failure
//! (`handle_timeout`), and re-evaluating changed peers' paths, routes and
//! queues (`after_change`).

use std::time::Instant;

use super::Node;
use super::explain::{Happened, Target};
use super::observe::{AttemptOutcome, DropReason, Event, PathChangeReason, WithdrawReason};
use super::paths::{ProbeRules, Via};
use super::peer::Peer;
use crate::frame::{self, Frame};
use crate::peer_id::PeerId;
use crate::wg::TimerEvent;

impl Node {
    // ------------------------------------------------------------------
    // Connecting, probing, timers
    // ------------------------------------------------------------------

    pub(super) fn connect(&mut self, now: Instant, id: PeerId) {
        if !self.running || self.wg.session_ready(&id, now) {
            return;
        }
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        p.start_connecting(now);
        self.send_handshake(now, id);
    }

    pub(super) fn refresh_relay_paths(&mut self, now: Instant, id: PeerId) {
        if !self.config.policy.allow_relay {
            return;
        }
        let relays: Vec<PeerId> = self
            .peers
            .values()
            .filter(|r| {
                r.id != id
                    && r.relay_capable()
                    && r.active_path()
                        .is_some_and(|x| x.is_alive() && matches!(x.via(), Via::Direct(_)))
                    && self.wg.session_ready(&r.id, now)
            })
            .map(|r| r.id)
            .collect();
        if let Some(p) = self.peers.get_mut(&id) {
            for r in relays {
                p.path_index(Via::Relay(r), now);
            }
        }
    }

    /// Sends a fresh handshake initiation over every candidate path at
    /// once, unless one went to the peer within
    /// [`INITIATION_GAP`](super::peer::INITIATION_GAP): then it goes when
    /// the gap has passed, whatever asked for it (the retry timer, new
    /// addresses, punching, a rekey), so what peers tell us cannot make us
    /// send more than one initiation per peer per gap.
    pub(super) fn send_handshake(&mut self, now: Instant, id: PeerId) {
        if !self
            .peers
            .get_mut(&id)
            .is_some_and(|p| p.initiation_allowed(now))
        {
            return;
        }
        self.initiate_now(now, id);
    }

    /// Sends a fresh initiation now, gap or not (see [`Node::send_handshake`]
    /// for the paths). Only for a cookie reply to our initiation: the peer
    /// is under load and waits for the same initiation with mac2, and
    /// waiting out the gap would keep a restarted peer out for 5 s.
    pub(super) fn initiate_now(&mut self, now: Instant, id: PeerId) {
        self.refresh_relay_paths(now, id);
        let wall = self.wall(now);
        let Ok(init) = self.wg.initiate(now, wall, &id) else {
            return;
        };
        if let Some(p) = self.peers.get_mut(&id) {
            p.initiation_sent(now);
        }
        // A rekey of a session with a working path goes over that path
        // only (as WireGuard sends to its one endpoint); sending it over
        // every candidate made each relay carry every pair's rekeys. Without
        // a working path it goes to every candidate at once (that is how
        // punching works).
        let ready = self.wg.session_ready(&id, now);
        let vias: Vec<Via> = self
            .peers
            .get(&id)
            .map(
                |p| match p.active_path().filter(|x| ready && x.is_alive()) {
                    Some(active) => vec![active.via()],
                    None => p.paths.iter().map(|x| x.via()).collect(),
                },
            )
            .unwrap_or_default();
        for via in vias {
            self.send_via(now, id, via, &init);
        }
    }

    pub(super) fn request_punch(&mut self, now: Instant, id: PeerId) {
        let signaling = {
            let Some(p) = self.peers.get(&id) else {
                return;
            };
            p.info_from()
                .filter(|s| self.wg.session_ready(s, now))
                .or_else(|| {
                    self.config
                        .bootstrap
                        .iter()
                        .map(|(b, _)| *b)
                        .find(|b| *b != id && self.wg.session_ready(b, now))
                })
        };
        if let Some(p) = self.peers.get_mut(&id) {
            // Even without a signaling peer, wait a full interval before
            // trying again.
            p.note_punch_attempt(now);
        }
        let Some(signaling) = signaling else {
            self.explain(now, id, Happened::NoSignalingPeer);
            return;
        };
        let candidates = self.own_candidates();
        if let Some(p) = self.peers.get_mut(&id) {
            p.mark_punched();
            p.paths.punch_requested(now);
        }
        self.send_frame(
            now,
            signaling,
            &Frame::PunchRequest {
                target: id,
                candidates,
            },
        );
        if !self.wg.session_ready(&id, now) {
            self.send_handshake(now, id);
        }
    }

    pub(super) fn needs_punch_at(&self, p: &Peer) -> Option<Instant> {
        self.peers.rules().punch_at(p)
    }

    /// Timers fired (call when [`Node::poll_timeout`] is reached).
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.running {
            return;
        }
        self.dataplane.absorb_activity(now, &mut self.peers);
        for (id, event) in self.wg.handle_timeout(now) {
            self.dirty.insert(id);
            match event {
                TimerEvent::HandshakeRetry | TimerEvent::RekeyNeeded => {
                    self.send_handshake(now, id)
                }
                TimerEvent::SessionExpired => self.session_failed(now, id),
            }
        }
        let t = self.config.timers;
        let rules = ProbeRules {
            active: t.probe_active,
            candidate: t.probe_candidate,
            idle: t.probe_idle,
            timeout: t.probe_timeout,
            dead_after_misses: t.dead_after_misses,
        };
        // Only peers with something due: the rest have nothing to do now,
        // and visiting every peer on every timer made the node's cost grow
        // with peers × timers.
        let ids = self.peers.due(now);
        self.dirty.extend(ids.iter().copied());
        for id in ids {
            let ready = self.wg.session_ready(&id, now);
            let punch_at = self.peers.get(&id).and_then(|p| self.needs_punch_at(p));
            if punch_at.is_some_and(|at| at <= now) {
                self.request_punch(now, id);
            }
            let Some(p) = self.peers.get_mut(&id) else {
                continue;
            };
            if p.take_connect_due(now) {
                self.connect(now, id);
                continue;
            }
            if p.take_initiation_due(now) && (!ready || self.wg.handshake_in_progress(&id)) {
                // Deferred by the initiation gap (a retry, new addresses).
                self.send_handshake(now, id);
            }
            let Some(p) = self.peers.get_mut(&id) else {
                continue;
            };
            if p.take_expired(now, t.membership_timeout) {
                let expired = p.paths.membership_expired();
                for (via, class) in expired {
                    self.explain(
                        now,
                        id,
                        Happened::PathExpired {
                            via,
                            class,
                            secs: t.membership_timeout.as_secs(),
                        },
                    );
                }
                self.end_membership(id, WithdrawReason::Expired);
                continue;
            }
            let busy = p.busy(now);
            let round = p.paths.handle_timeout(now, ready, busy, &rules);
            let (announce, seq) = p.announce_due(now, ready, t.announce_interval);
            for probe in round.lost {
                if self.user_probes.remove(&probe) {
                    self.events.push_back(Event::ProbeLost { peer: id, probe });
                }
            }
            let waited = t.probe_candidate * t.dead_after_misses;
            for (via, misses) in round.silent {
                self.record_silent(now, id, via, misses, waited);
            }
            for via in round.due {
                let probe = self.next_probe_id;
                self.next_probe_id += 1;
                if let Some(p) = self.peers.get_mut(&id) {
                    p.paths.probe_sent(via, probe, now);
                }
                self.send_frame_via(now, id, via, &Frame::Probe { id: probe });
            }
            if announce {
                let msg = Frame::Announce {
                    network_id: self.config.network_id.clone(),
                    prefix: self.config.prefix,
                    candidates: self.own_candidates(),
                    seq,
                };
                self.send_frame(now, id, &msg);
                self.request_peer_info(now, id, seq);
            }
        }
        self.after_change(now);
    }

    /// With an announce to a signaling peer: ask it for every member when
    /// a session with it came up, else for allowlisted peers we have no
    /// session with (at most [`frame::MAX_REQUESTED_PEERS`], a different
    /// slice each time). Idle and converged, nothing is asked.
    fn request_peer_info(&mut self, now: Instant, signaling: PeerId, seq: u64) {
        let Some(p) = self.peers.get_mut(&signaling) else {
            return;
        };
        if !p.is_signaling() {
            return;
        }
        let msg = match p.take_info_request() {
            Some(fresh) => Frame::PeerInfoRequest {
                fresh,
                peers: Vec::new(),
            },
            None => {
                let missing: Vec<PeerId> = self
                    .peers
                    .values()
                    .filter(|x| {
                        x.id != signaling
                            && x.allow().is_some()
                            && !self.wg.session_ready(&x.id, now)
                    })
                    .map(|x| x.id)
                    .collect();
                if missing.is_empty() {
                    return;
                }
                let n = frame::MAX_REQUESTED_PEERS;
                let start = (seq as usize).wrapping_mul(n) % missing.len();
                let peers = missing
                    .iter()
                    .cycle()
                    .skip(start)
                    .take(n.min(missing.len()))
                    .copied()
                    .collect();
                Frame::PeerInfoRequest {
                    fresh: false,
                    peers,
                }
            }
        };
        self.send_frame(now, signaling, &msg);
    }

    pub(super) fn session_failed(&mut self, now: Instant, id: PeerId) {
        self.counters.session_failures += 1;
        let t = self.config.timers;
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        p.counters.session_failures += 1;
        p.paths.session_failed();
        let dropped = p.mark_session_failed(now, t.reconnect_after);
        let bootstrap = p.bootstrap();
        let unanswered: Vec<_> = p
            .paths
            .iter()
            .filter(|x| {
                !p.attempts
                    .outcome(Target::Path(x.via()))
                    .is_some_and(|o| o == AttemptOutcome::NoAnswer || o == AttemptOutcome::Refused)
            })
            .map(|x| (x.via(), x.expected_class()))
            .collect();
        for (via, class) in unanswered {
            self.explain(now, id, Happened::SessionFailed { via, class });
        }
        self.note_alternatives(now, id);
        for _ in 0..dropped {
            self.drop_packet(Some(id), DropReason::NoSession);
        }
        self.events.push_back(Event::SessionFailed { peer: id });
        if let Some(address) = bootstrap {
            self.events
                .push_back(Event::BootstrapUnreachable { peer: id, address });
        }
    }

    /// Re-evaluates preferred paths and routes, and flushes queues.
    pub(super) fn after_change(&mut self, now: Instant) {
        let promote = self.config.timers.promote_streak;
        let ids = std::mem::take(&mut self.dirty);
        for id in ids {
            let Some(p) = self.peers.get_mut(&id) else {
                continue;
            };
            let old = p.active_path().map(|x| x.via());
            if let Some((from, to, reason)) = p.select(promote) {
                let new = p.active_path().map(|x| (x.via(), x.expected_class()));
                if let Some((via, class)) = new {
                    let worse = matches!((from, to), (Some(f), Some(t)) if t > f);
                    let noted = match reason {
                        PathChangeReason::Promoted => Some(Happened::Promoted {
                            via,
                            class,
                            from,
                            streak: promote,
                        }),
                        PathChangeReason::PreferredPathDead => Some(Happened::TookOver {
                            via,
                            class,
                            from,
                            old: old.map(|v| self.via_name(v)),
                            worse,
                        }),
                        PathChangeReason::PathUp | PathChangeReason::AllPathsDead => None,
                    };
                    if let Some(what) = noted {
                        self.explain(now, id, what);
                    }
                }
                let Some(p) = self.peers.get_mut(&id) else {
                    continue;
                };
                self.dataplane.mark_dirty();
                let worse = match (from, to) {
                    (Some(f), Some(t)) => t > f,
                    _ => false,
                };
                if worse {
                    p.counters.fallback_transitions += 1;
                    self.counters.fallback_transitions += 1;
                }
                p.counters.path_changes += 1;
                self.counters.path_changes += 1;
                self.events.push_back(Event::PathChanged {
                    peer: id,
                    from,
                    to,
                    reason,
                });
            }
            self.update_route(id);
            let flush = self.wg.session_ready(&id, now)
                && self
                    .peers
                    .get(&id)
                    .is_some_and(|p| p.paths.active_index().is_some() && !p.queue_is_empty());
            if flush {
                let queued: Vec<Vec<u8>> = self
                    .peers
                    .get_mut(&id)
                    .map(|p| p.take_queue())
                    .unwrap_or_default();
                for packet in queued {
                    self.send_data(now, id, &packet);
                }
            }
        }
        self.publish_data_plane(now);
        self.peers.refresh();
    }
}
