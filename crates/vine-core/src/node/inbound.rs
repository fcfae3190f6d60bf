//! Inbound datagrams (`handle_datagram`, and `handle_decrypted` for what
//! the data plane hands over): decryption, plaintexts, peer frames,
//! enrollment, candidate learning, signaling and relaying.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::Node;
use super::explain::{Happened, Reason, Rejection};
use super::membership::{Accepted, check_announce};
use super::observe::{DropReason, Event, PathClass, WithdrawReason};
use super::paths::Via;
use super::peer::{Answer, Peer};
use crate::frame::{self, Candidates, Frame, Plaintext, RelayDirection, RelayRefusal};
use crate::net::Ipv4Prefix;
use crate::peer_id::PeerId;
use crate::route::RouteState;
use crate::wg::{Received, WgError};
use crate::wire::ipv4;

impl Node {
    // ------------------------------------------------------------------
    // Inbound datagrams
    // ------------------------------------------------------------------

    /// A UDP datagram received from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddrV4, data: &[u8]) {
        if !self.running {
            return;
        }
        self.receive(now, Via::Direct(from), data, None);
        self.after_change(now);
    }

    /// A transport message the data plane decrypted but did not deliver
    /// ([`Inbound::Plain`](crate::dataplane::Inbound::Plain)): peer and
    /// relay frames, keepalives, data from an unexpected address. `peer`
    /// was authenticated by the keys that opened it.
    pub fn handle_decrypted(
        &mut self,
        now: Instant,
        from: SocketAddrV4,
        peer: PeerId,
        plaintext: &[u8],
    ) {
        if !self.running || !self.peers.contains_key(&peer) {
            return;
        }
        let via = Via::Direct(from);
        self.heard_from(now, peer, via);
        if self.peers.get(&peer).is_some_and(|p| !p.session_is_up()) {
            self.session_up(now, peer);
        }
        self.handle_plaintext(now, peer, via, plaintext);
        self.after_change(now);
    }

    /// Processes one WireGuard datagram that arrived over `via`. For a
    /// relayed datagram, `claimed` is the source the relay named; the
    /// session must prove it.
    pub(super) fn receive(&mut self, now: Instant, via: Via, data: &[u8], claimed: Option<PeerId>) {
        let mut plain = Vec::new();
        let wall = self.wall(now);
        let from = handshake_source(via, claimed);
        let received = match self.wg.decrypt_from(now, wall, from, data, &mut plain) {
            Ok(r) => r,
            Err(e) => {
                let reason = match e {
                    WgError::UnknownPeer => DropReason::UnknownSender,
                    _ => DropReason::DecryptFailed,
                };
                self.drop_packet(None, reason);
                return;
            }
        };
        let id = match &received {
            Received::CookieNeeded { reply } => {
                // Under load: the message was not processed. The cookie
                // goes back the way the message came (a relayed one back
                // through the relay, to the peer the relay named).
                match (via, claimed) {
                    (Via::Direct(dst), _) => self.transmits.push_back(super::Transmit {
                        dst,
                        data: reply.clone(),
                    }),
                    (Via::Relay(_), Some(source)) => {
                        self.send_via(now, source, via, reply);
                    }
                    (Via::Relay(_), None) => {}
                }
                return;
            }
            Received::Data { peer }
            | Received::HandshakeInitiation { peer, .. }
            | Received::HandshakeComplete { peer }
            | Received::CookieReceived { peer } => *peer,
        };
        if let (Via::Relay(relay), Some(claimed)) = (via, claimed)
            && claimed != id
        {
            // The relay named one source, the session proves another.
            self.drop_packet(Some(relay), DropReason::RelayNotAllowed);
            return;
        }
        if matches!(received, Received::CookieReceived { .. }) {
            // The peer is under load and answered our handshake with a
            // cookie: send it again at once, now with mac2, rather than
            // after the initiation gap (at most one such retry per gap, so
            // cookie replies cannot make us send more). A cookie proves
            // nothing about the path.
            if !self.wg.session_ready(&id, now)
                && self
                    .peers
                    .get_mut(&id)
                    .is_some_and(|p| p.cookie_retry_allowed(now))
            {
                self.initiate_now(now, id);
            }
            return;
        }
        self.heard_from(now, id, via);
        match received {
            Received::CookieNeeded { .. } | Received::CookieReceived { .. } => {}
            Received::HandshakeInitiation { response, .. } => {
                self.send_via(now, id, via, &response);
            }
            Received::HandshakeComplete { .. } => {
                self.path_confirmed(now, id, via, None);
                self.session_up(now, id);
            }
            Received::Data { .. } => {
                // The first message on keys we answered an initiation with
                // confirms them: a new session (the peer may have restarted
                // and lost everything, our enrollment included).
                let keys = self.sending_keys(now, id);
                if self
                    .peers
                    .get(&id)
                    .is_some_and(|p| !p.session_is_up() || p.keys_replaced(keys))
                {
                    self.session_up(now, id);
                }
                self.handle_plaintext(now, id, via, &plain);
            }
        }
    }

    pub(super) fn heard_from(&mut self, now: Instant, id: PeerId, via: Via) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        self.dirty.insert(id);
        p.heard(now, via);
        // A new path learned from inbound traffic: unless the address is
        // one the peer owns (announced as local, or configured), it is a NAT
        // mapping of the peer. A probe reply may still show that the peer
        // reached our own address, which makes the path direct.
        let mapping = match via {
            Via::Direct(addr) => !p.owns_address(addr),
            Via::Relay(_) => false,
        };
        let Some(i) = p.path_index_with(via, now, mapping) else {
            return;
        };
        // Authenticated traffic over a path while nothing works yet: use it
        // provisionally; probes confirm or kill it.
        if !p.paths.any_alive() {
            p.paths[i].mark_alive();
            self.record_working(now, id, via);
        }
    }

    pub(super) fn path_confirmed(
        &mut self,
        now: Instant,
        id: PeerId,
        via: Via,
        rtt: Option<Duration>,
    ) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        let Some(i) = p.path_index(via, now) else {
            return;
        };
        if p.paths[i].confirm(rtt) {
            self.record_working(now, id, via);
        }
    }

    /// Reclassifies a punched path as `direct` once the peer is known to
    /// send to our own address over it.
    fn path_reaches_us_directly(&mut self, id: PeerId, via: Via) {
        let Some(path) = self.peers.get_mut(&id).and_then(|p| p.paths.find_mut(via)) else {
            return;
        };
        if path.reaches_us_directly() {
            self.dirty.insert(id);
        }
    }

    /// Local index of the keys the session with `id` sends with at `now`.
    fn sending_keys(&self, now: Instant, id: PeerId) -> Option<u32> {
        self.wg.send_keypair(&id, now).map(|k| k.local_index())
    }

    /// A session with `id` came up or was replaced by a new one: announce
    /// at once (rate limited, [`Peer::mark_session_up`]), probe every path,
    /// and accept the peer's announces counted from the start again.
    pub(super) fn session_up(&mut self, now: Instant, id: PeerId) {
        let keys = self.sending_keys(now, id);
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        let replaced = p.keys_replaced(keys);
        if replaced {
            p.membership.session_replaced();
        }
        p.mark_session_up(now, keys);
        p.paths.session_up(now);
        if p.bootstrap().is_some() {
            self.events
                .push_back(Event::BootstrapConnected { peer: id });
        }
        if replaced {
            self.names.session_replaced(id);
            self.send_names(now, id);
        }
    }

    pub(super) fn own_candidates(&self) -> Candidates {
        let mut local = self.local_addresses.clone();
        local.truncate(frame::MAX_CANDIDATES);
        let reflexive = self
            .reflexive
            .iter()
            .filter(|a| !local.contains(a))
            .copied()
            .collect();
        Candidates { local, reflexive }
    }

    pub(super) fn is_own_address(&self, a: &SocketAddrV4) -> bool {
        self.local_addresses.contains(a) || self.reflexive.contains(a)
    }

    pub(super) fn handle_plaintext(&mut self, now: Instant, id: PeerId, via: Via, plain: &[u8]) {
        match frame::decode(plain) {
            Ok(Plaintext::Keepalive) => {}
            Ok(Plaintext::Data(packet)) => self.inbound_data(now, id, packet),
            Ok(Plaintext::Frame(msg)) => self.handle_frame(now, id, via, msg),
            Ok(Plaintext::Relay {
                direction,
                peer,
                datagram,
            }) => {
                if matches!(via, Via::Relay(_)) {
                    // No relay chains: a relayed session cannot relay again.
                    self.drop_packet(Some(id), DropReason::RelayNotAllowed);
                    return;
                }
                match direction {
                    RelayDirection::Forward => self.relay_forward(now, id, peer, datagram),
                    RelayDirection::Deliver => {
                        let reason = if !self.config.policy.allow_relay {
                            Some(Reason::RelayDisabledByPolicy)
                        } else if !self.peers.get(&id).is_some_and(Peer::relay_capable) {
                            Some(Reason::NotRelayCapable { relay: id })
                        } else {
                            None
                        };
                        if reason.is_some() || !self.peers.contains_key(&peer) {
                            self.drop_packet(Some(id), DropReason::RelayNotAllowed);
                            if let Some(reason) = reason.filter(|_| peer != id) {
                                self.explain(
                                    now,
                                    peer,
                                    Happened::RelayPathRefused {
                                        relay: id,
                                        why: reason,
                                    },
                                );
                            }
                            return;
                        }
                        let inner = datagram.to_vec();
                        self.receive(now, Via::Relay(id), &inner, Some(peer));
                    }
                }
            }
            Err(_) => self.drop_packet(Some(id), DropReason::BadControl),
        }
    }

    pub(super) fn inbound_data(&mut self, now: Instant, id: PeerId, packet: &[u8]) {
        let Some(addrs) = ipv4::parse(packet) else {
            self.drop_packet(Some(id), DropReason::Malformed);
            return;
        };
        let Some(prefix) = self.peers.get(&id).and_then(Peer::enrolled_prefix) else {
            self.drop_packet(Some(id), DropReason::UnauthorizedPeer);
            return;
        };
        if !prefix.contains(addrs.src) {
            self.drop_packet(Some(id), DropReason::UnauthorizedPeer);
            return;
        }
        if !self.config.prefix.contains(addrs.dst) {
            self.drop_packet(Some(id), DropReason::WrongDestination);
            return;
        }
        self.counters.packets_received += 1;
        self.counters.bytes_received += packet.len() as u64;
        if let Some(p) = self.peers.get_mut(&id) {
            p.counters.packets_received += 1;
            p.counters.bytes_received += packet.len() as u64;
            p.touch_data(now);
        }
        self.tun_out.push_back(packet.to_vec());
    }

    pub(super) fn handle_frame(&mut self, now: Instant, id: PeerId, via: Via, msg: Frame) {
        match msg {
            Frame::Names(set) => {
                let Some(prefix) = self
                    .peers
                    .get(&id)
                    .and_then(|p| p.allow())
                    .map(|a| a.prefix)
                else {
                    self.drop_packet(Some(id), DropReason::UnauthorizedPeer);
                    return;
                };
                if let super::names::Received::Kept { rejected } =
                    self.names.receive(id, prefix, set)
                {
                    for _ in 0..rejected {
                        self.drop_packet(Some(id), DropReason::NameOutsidePrefix);
                    }
                }
            }
            Frame::Announce {
                network_id,
                prefix,
                candidates,
                seq,
            } => {
                if self.enroll(now, id, via, &network_id, prefix, seq) {
                    if let Some(p) = self.peers.get_mut(&id) {
                        p.set_announced(candidates.clone());
                    }
                    self.learn_candidates(now, id, &candidates, None);
                    self.share_changes(now, id);
                }
            }
            Frame::Withdraw { network_id, prefix } => {
                let matches = network_id == self.config.network_id
                    && self.peers.get(&id).and_then(Peer::enrolled_prefix) == Some(prefix);
                if matches {
                    self.end_membership(id, WithdrawReason::Withdrawn);
                }
            }
            Frame::PeerInfo { peer, candidates } => {
                if !self.believes_address_info(id, peer) {
                    self.drop_packet(Some(id), DropReason::UntrustedAddressInfo);
                    return;
                }
                if peer == id {
                    self.learn_candidates(now, peer, &candidates, None);
                    return;
                }
                if let Some(p) = self.peers.get_mut(&id) {
                    p.note_peer_info();
                }
                self.learn_candidates(now, peer, &candidates, Some(id));
            }
            Frame::PeerInfoRequest { fresh, peers } => {
                self.answer_info_request(now, id, fresh, peers);
            }
            Frame::PunchRequest { target, candidates } => {
                self.signal_punch(now, id, target, candidates);
            }
            Frame::PunchNotify { from, candidates } => {
                if !self.config.policy.allow_signaling_upgrade || from == self.local {
                    return;
                }
                if !self.believes_address_info(id, from) {
                    self.drop_packet(Some(id), DropReason::UntrustedAddressInfo);
                    return;
                }
                if let Some(p) = self.peers.get_mut(&from) {
                    p.note_punch_notified(now, id);
                } else {
                    return;
                }
                self.learn_candidates(now, from, &candidates, Some(id));
            }
            Frame::Probe { id: probe } => {
                let observed = match via {
                    Via::Direct(a) => a,
                    Via::Relay(_) => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
                };
                self.send_frame_via(
                    now,
                    id,
                    via,
                    &Frame::ProbeReply {
                        id: probe,
                        observed,
                    },
                );
            }
            Frame::ProbeReply {
                id: probe,
                observed,
            } => {
                // Only a reply to a probe in flight to this peer over this
                // very path counts; anything else (a guessed or replayed
                // id, another path's probe) is dropped.
                let sent = self
                    .peers
                    .get_mut(&id)
                    .and_then(|p| p.paths.probe_answered(probe, via));
                let Some(sent) = sent else {
                    self.drop_packet(Some(id), DropReason::UnmatchedProbeReply);
                    return;
                };
                let rtt = now.saturating_duration_since(sent);
                self.path_confirmed(now, id, via, Some(rtt));
                if matches!(via, Via::Direct(_)) && self.local_addresses.contains(&observed) {
                    // The peer reaches our own address on this path: it
                    // is direct whatever the peer's side looks like, and
                    // both ends report the same class.
                    self.path_reaches_us_directly(id, via);
                }
                if self.user_probes.remove(&probe) {
                    let class = self
                        .peers
                        .get(&id)
                        .and_then(|p| p.paths.find(via))
                        .and_then(|x| x.class());
                    self.events.push_back(Event::ProbeAnswered {
                        peer: id,
                        probe,
                        rtt_us: rtt.as_micros().min(u128::from(u64::MAX)) as u64,
                        via: via.to_string(),
                        class,
                    });
                }
                self.learn_reflexive(id, via, observed);
            }
            Frame::RelayRefused { peer, reason } => {
                let known = self
                    .peers
                    .get(&peer)
                    .is_some_and(|p| p.paths.iter().any(|x| x.via() == Via::Relay(id)));
                if !known {
                    // Not a relay path of ours: nothing to explain or change.
                    return;
                }
                let refused = Happened::RelayRefusedUs {
                    relay: id,
                    refusal: reason,
                };
                if reason == RelayRefusal::RateLimited {
                    // Throttled, not refused: the path still carries what
                    // fits under the cap.
                    self.explain(now, peer, refused);
                    return;
                }
                self.dirty.insert(peer);
                if let Some(p) = self.peers.get_mut(&peer)
                    && let Some(path) = p.paths.find_mut(Via::Relay(id))
                {
                    path.relay_refused(self.config.timers.dead_after_misses);
                }
                self.explain(now, peer, refused);
            }
        }
    }

    /// Enrollment: accept only an allowlisted peer, in our network,
    /// claiming exactly its configured prefix. Returns whether accepted.
    pub(super) fn enroll(
        &mut self,
        now: Instant,
        id: PeerId,
        via: Via,
        network_id: &str,
        prefix: Ipv4Prefix,
        seq: u64,
    ) -> bool {
        let allowed = self
            .peers
            .get(&id)
            .and_then(|p| p.allow())
            .map(|a| a.prefix);
        let reject = check_announce(allowed, &self.config.network_id, network_id, prefix);
        if let Some(reason) = reject {
            *self
                .counters
                .membership_rejections
                .entry(reason)
                .or_default() += 1;
            self.events
                .push_back(Event::MembershipRejected { peer: id, reason });
            let class = self
                .peers
                .get(&id)
                .and_then(|p| p.paths.find(via))
                .map_or(PathClass::Direct, |x| x.expected_class());
            let rejection = Rejection {
                reason,
                claimed_network: network_id.to_owned(),
                claimed_prefix: prefix,
                configured_prefix: allowed,
                network: self.config.network_id.clone(),
            };
            self.explain(
                now,
                id,
                Happened::MembershipRejected {
                    via,
                    class,
                    rejection,
                },
            );
            return false;
        }
        let Some(p) = self.peers.get_mut(&id) else {
            return false;
        };
        match p.membership.accept(prefix, seq) {
            Accepted::Stale => return false,
            // Same prefix, same keys: the data-plane tables do not change
            // (republishing them on every announce cost O(peers) per
            // announce, O(peers²) per interval).
            Accepted::Renewed => {}
            Accepted::New => {
                self.dataplane.mark_dirty();
                self.events
                    .push_back(Event::MembershipAccepted { peer: id, prefix });
            }
        }
        self.update_route(id);
        true
    }

    pub(super) fn end_membership(&mut self, id: PeerId, reason: WithdrawReason) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        let Some(prefix) = p.membership.end() else {
            return;
        };
        p.forget_shared();
        self.names.forget(&id);
        self.dataplane.mark_dirty();
        if let Some(intent) = self.routes.set(prefix, id, RouteState::Withdrawn) {
            self.events.push_back(Event::Route(intent));
        }
        self.events.push_back(Event::MembershipWithdrawn {
            peer: id,
            prefix,
            reason,
        });
    }

    pub(super) fn update_route(&mut self, id: PeerId) {
        let Some(p) = self.peers.get(&id) else {
            return;
        };
        let Some(prefix) = p.enrolled_prefix() else {
            return;
        };
        let state = if p.active_path().is_some_and(|x| x.is_alive()) {
            RouteState::Installed
        } else {
            RouteState::Tombstoned
        };
        if self
            .routes
            .get(&prefix)
            .is_some_and(|r| r.state == state && r.peer == id)
        {
            return;
        }
        self.dataplane.mark_dirty();
        if let Some(intent) = self.routes.set(prefix, id, state) {
            self.events.push_back(Event::Route(intent));
        }
    }

    /// Whether address information about `about` from `sender` is
    /// believed: from a signaling peer (bootstrap, or `relay_capable` in the
    /// allowlist) about anyone, from anyone else only about itself.
    fn believes_address_info(&self, sender: PeerId, about: PeerId) -> bool {
        about == sender || self.peers.get(&sender).is_some_and(Peer::is_signaling)
    }

    /// What we can tell others about `id`: its candidates, while it is
    /// enrolled and has a session (nothing if we know no address).
    fn shareable(&self, now: Instant, id: PeerId) -> Option<Candidates> {
        let p = self.peers.get(&id)?;
        if p.enrolled_prefix().is_none() || !self.wg.session_ready(&id, now) {
            return None;
        }
        Some(p.shareable_candidates()).filter(|c| !c.is_empty())
    }

    /// A member announced itself: if what we can tell others about it
    /// changed (it is new, or its candidates moved), tell the peers that
    /// asked to hear of changes. Nothing goes out while nothing changes.
    pub(super) fn share_changes(&mut self, now: Instant, id: PeerId) {
        let Some(candidates) = self.shareable(now, id) else {
            return;
        };
        if !self
            .peers
            .get_mut(&id)
            .is_some_and(|p| p.take_share(&candidates))
        {
            return;
        }
        let subscribers: Vec<PeerId> = self
            .peers
            .values()
            .filter(|s| s.id != id && s.is_subscribed() && self.wg.session_ready(&s.id, now))
            .map(|s| s.id)
            .collect();
        let info = Frame::PeerInfo {
            peer: id,
            candidates,
        };
        for s in subscribers {
            self.send_frame(now, s, &info);
        }
    }

    /// `requester` asked where members are (`asked`, or every member when
    /// empty): answered from what we know, at most once per gap per peer
    /// (a request for everything also subscribes it to changes).
    fn answer_info_request(
        &mut self,
        now: Instant,
        requester: PeerId,
        fresh: bool,
        mut asked: Vec<PeerId>,
    ) {
        let Some(p) = self.peers.get_mut(&requester) else {
            return;
        };
        if p.allow().is_none() {
            self.drop_packet(Some(requester), DropReason::UnauthorizedPeer);
            return;
        }
        let about: Vec<PeerId> = match p.answer_request(now, asked.is_empty(), fresh) {
            Answer::Subscribed => return,
            Answer::Limited => {
                self.drop_packet(Some(requester), DropReason::PeerInfoRequestLimited);
                return;
            }
            Answer::Full => self.peers.keys().copied().collect(),
            Answer::Named => {
                asked.truncate(frame::MAX_REQUESTED_PEERS);
                asked
            }
        };
        for peer in about {
            if peer == requester || peer == self.local {
                continue;
            }
            if let Some(candidates) = self.shareable(now, peer) {
                self.send_frame(now, requester, &Frame::PeerInfo { peer, candidates });
            }
        }
    }

    /// A matched probe reply from `id` over `via` said our address looks
    /// like `observed` from there: a new reflexive address of ours, when
    /// `id` is a signaling peer (others' views of us are not believed) and
    /// the address is usable.
    fn learn_reflexive(&mut self, id: PeerId, via: Via, observed: SocketAddrV4) {
        if !matches!(via, Via::Direct(_))
            || observed.ip().is_unspecified()
            || self.reflexive.contains(&observed)
            || self.local_addresses.contains(&observed)
            || !self.peers.get(&id).is_some_and(Peer::is_signaling)
        {
            return;
        }
        if !usable_candidate(&observed) {
            self.drop_packet(Some(id), DropReason::UnusableCandidate);
            return;
        }
        self.reflexive.insert(0, observed);
        self.reflexive.truncate(4);
        self.events.push_back(Event::ReflexiveAddress {
            address: observed,
            via: id,
        });
    }

    pub(super) fn learn_candidates(
        &mut self,
        now: Instant,
        id: PeerId,
        candidates: &Candidates,
        from: Option<PeerId>,
    ) {
        if id == self.local {
            return;
        }
        let all = candidates
            .local
            .iter()
            .map(|a| (*a, false))
            .chain(candidates.reflexive.iter().map(|a| (*a, true)))
            .take(2 * frame::MAX_CANDIDATES);
        let mut addrs: Vec<(SocketAddrV4, bool)> = Vec::new();
        let mut unusable = 0;
        for (a, reflexive) in all {
            if !usable_candidate(&a) {
                unusable += 1;
            } else if !self.is_own_address(&a) {
                addrs.push((a, reflexive));
            }
        }
        for _ in 0..unusable {
            self.drop_packet(Some(from.unwrap_or(id)), DropReason::UnusableCandidate);
        }
        let ready = self.wg.session_ready(&id, now);
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        self.dirty.insert(id);
        if let Some(from) = from {
            p.set_info_from(from);
        }
        let mut added = false;
        for (addr, reflexive) in addrs {
            let existed = p.paths.iter().any(|x| x.via() == Via::Direct(addr));
            if let Some(i) = p.path_index_with(Via::Direct(addr), now, reflexive) {
                added |= !existed;
                p.paths[i].candidate_learned(now);
            }
        }
        if !ready && self.running {
            if p.is_connecting() {
                if !added {
                    return;
                }
                // Reach the new candidates without waiting for the retry timer.
                self.send_handshake(now, id);
            } else {
                self.connect(now, id);
            }
        }
    }

    pub(super) fn signal_punch(
        &mut self,
        now: Instant,
        requester: PeerId,
        target: PeerId,
        mut candidates: Candidates,
    ) {
        let both_listed = [requester, target]
            .iter()
            .all(|x| self.peers.get(x).is_some_and(|p| p.allow().is_some()));
        if !both_listed || !self.wg.session_ready(&target, now) || requester == target {
            return;
        }
        if let Some(seen) = self.peers.get(&requester).and_then(|p| p.observed())
            && !candidates.reflexive.contains(&seen)
            && !candidates.local.contains(&seen)
        {
            candidates.reflexive.insert(0, seen);
        }
        candidates.local.truncate(frame::MAX_CANDIDATES);
        candidates.reflexive.truncate(frame::MAX_CANDIDATES);
        self.send_frame(
            now,
            target,
            &Frame::PunchNotify {
                from: requester,
                candidates,
            },
        );
    }
}

/// The source address handshake defences (cookies, the per-source limiter)
/// hold a datagram to: its UDP source, or for a datagram relayed by an
/// authenticated peer, an address standing for that relay and the source
/// it names (in the unique local range `fd00::/8`, from a hash of both
/// keys, distinct in its /64 as the limiter keys IPv6), so each relayed
/// sender is limited and issued cookies on its own.
fn handshake_source(via: Via, claimed: Option<PeerId>) -> std::net::SocketAddr {
    match via {
        Via::Direct(addr) => std::net::SocketAddr::V4(addr),
        Via::Relay(relay) => {
            let mut hasher = blake3::Hasher::new();
            hasher.update(b"vine relayed handshake source v1");
            hasher.update(relay.public_key());
            if let Some(claimed) = claimed {
                hasher.update(claimed.public_key());
            }
            let digest = hasher.finalize();
            let mut octets = [0u8; 16];
            octets[0] = 0xfd;
            octets[1..].copy_from_slice(&digest.as_bytes()[..15]);
            std::net::SocketAddr::from((std::net::Ipv6Addr::from(octets), 0))
        }
    }
}

/// Whether a candidate address can reach anyone: not loopback, multicast,
/// broadcast or unspecified, and not port 0.
pub(super) fn usable_candidate(a: &SocketAddrV4) -> bool {
    let ip = a.ip();
    !(ip.is_loopback()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_unspecified()
        || a.port() == 0)
}

impl Node {
    /// Sends `frame` to `peer` inside their session, as it is, over the
    /// peer's preferred path (nothing without a session and a path). For
    /// tests and tools that check how peers handle frames, such as a
    /// member that misbehaves; the node never needs it.
    pub fn send_raw_frame(&mut self, now: Instant, peer: &PeerId, frame: &Frame) {
        if self.running {
            self.send_frame(now, *peer, frame);
        }
    }
}
