//! Per-peer state: the allowlist entry, membership, the path set, the
//! connecting / announcing / punching times, the queue of packets waiting
//! for a session, counters and the explain record.

use std::collections::VecDeque;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use super::explain::{Attempts, Target};
use super::membership::Membership;
use super::observe::{PathChangeReason, PathClass, PeerCounters};
use super::paths::{Path, PathSet, Via};
use crate::frame::Candidates;
use crate::net::Ipv4Prefix;
use crate::peer_id::PeerId;

/// Minimum time between two announces prompted by sessions coming up with
/// one peer (later ones wait, so a burst of handshakes cannot make an
/// announce storm).
pub(super) const ANNOUNCE_PROMPT_GAP: Duration = Duration::from_secs(1);

/// Minimum time between two handshake initiations to one peer, whatever
/// prompts them (the retry timer, new addresses, punching, a rekey):
/// WireGuard's `REKEY_TIMEOUT`. One initiation still goes to every
/// candidate path at once.
pub(super) const INITIATION_GAP: Duration = crate::wg::timers::REKEY_TIMEOUT;

/// Minimum time between two answers in full (every member) to one peer's
/// [`Frame::PeerInfoRequest`](crate::frame::Frame::PeerInfoRequest).
pub(super) const FULL_ANSWER_GAP: Duration = Duration::from_secs(5);

/// Minimum time between two answers to one peer's requests about named
/// members.
pub(super) const ANSWER_GAP: Duration = Duration::from_secs(1);

/// How a request for peer information from this peer is to be treated
/// ([`Peer::answer_request`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    /// Send what we know about every member; the peer now hears of changes.
    Full,
    /// Send what we know about the members it named.
    Named,
    /// It already hears of every change in this session (it asked again
    /// after a rekey): nothing to send.
    Subscribed,
    /// Answered too recently: dropped and counted.
    Limited,
}

/// Allowlist entry of a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedPeerConfig {
    /// The one prefix it owns.
    pub prefix: Ipv4Prefix,
    /// May relay for this node.
    pub relay_capable: bool,
    /// Display name.
    pub name: Option<String>,
}

/// Everything this node tracks about one remote peer.
#[derive(Debug)]
pub(super) struct Peer {
    // The components (membership, paths, the explain record) and the
    // counters are fields of their own; the rest changes only through the
    // methods below.
    pub id: PeerId,
    allow: Option<AllowedPeerConfig>,
    /// Configured bootstrap address, if this is a bootstrap peer.
    bootstrap: Option<SocketAddrV4>,
    pub membership: Membership,
    pub paths: PathSet,
    /// Hole punching was requested or notified for this peer.
    punched: bool,
    last_punch: Option<Instant>,
    /// Who told us about this peer (used as its signaling peer).
    info_from: Option<PeerId>,
    queue: VecDeque<Vec<u8>>,
    /// When the current connection attempt started.
    connecting_since: Option<Instant>,
    next_connect: Option<Instant>,
    session_up_at: Option<Instant>,
    /// When the session last came up while it was not up (first time, or
    /// after failing): unlike a rekey or a replaced session, that makes the
    /// peer busy for a while.
    connected_at: Option<Instant>,
    /// Local index of the keys we sent with when the session last came up:
    /// different sending keys mean a new session (a handshake either side
    /// started, possibly by a restarted peer).
    session_keys: Option<u32>,
    next_announce: Option<Instant>,
    /// When the last announce prompted by a session coming up was due.
    last_prompt: Option<Instant>,
    announce_seq: u64,
    last_rx: Option<Instant>,
    last_data: Option<Instant>,
    /// Candidates it announced.
    announced: Candidates,
    /// Address its direct datagrams come from, as we see it.
    observed: Option<SocketAddrV4>,
    /// When the last handshake initiation went to it.
    last_initiation: Option<Instant>,
    /// An initiation that was wanted sooner than [`INITIATION_GAP`] after
    /// the last one, and goes out then.
    deferred_initiation: Option<Instant>,
    /// When a cookie reply last made us resend an initiation at once.
    last_cookie_retry: Option<Instant>,
    /// It asked for every member: it hears of changes (until its session
    /// fails).
    subscribed: bool,
    /// When we last answered its requests for peer information, in full
    /// and at all.
    last_full_answer: Option<Instant>,
    last_answer: Option<Instant>,
    /// The candidates we last told subscribers it has.
    shared: Option<Candidates>,
    /// It told us about a member (as a signaling peer) since we started.
    info_received: bool,
    /// A request for every member is to go to it with the next announce
    /// (a session with it came up).
    want_info: bool,
    pub counters: PeerCounters,
    /// Recent path attempts and their outcomes (`vine sessions --explain`).
    pub attempts: Attempts,
}

impl Peer {
    pub fn new(id: PeerId) -> Self {
        Self {
            id,
            allow: None,
            bootstrap: None,
            membership: Membership::default(),
            paths: PathSet::default(),
            punched: false,
            last_punch: None,
            info_from: None,
            queue: VecDeque::new(),
            connecting_since: None,
            next_connect: None,
            session_up_at: None,
            connected_at: None,
            session_keys: None,
            next_announce: None,
            last_prompt: None,
            announce_seq: 0,
            last_rx: None,
            last_data: None,
            announced: Candidates::default(),
            observed: None,
            last_initiation: None,
            deferred_initiation: None,
            last_cookie_retry: None,
            subscribed: false,
            last_full_answer: None,
            last_answer: None,
            shared: None,
            info_received: false,
            want_info: false,
            counters: PeerCounters::default(),
            attempts: Attempts::default(),
        }
    }

    pub fn allow(&self) -> Option<&AllowedPeerConfig> {
        self.allow.as_ref()
    }

    pub fn set_allow(&mut self, allow: AllowedPeerConfig) {
        self.allow = Some(allow);
    }

    /// Configured bootstrap address, if this is a bootstrap peer.
    pub fn bootstrap(&self) -> Option<SocketAddrV4> {
        self.bootstrap
    }

    pub fn set_bootstrap(&mut self, addr: SocketAddrV4) {
        self.bootstrap = Some(addr);
    }

    /// Whether `addr` is one the peer owns (configured or announced as
    /// local), not a NAT mapping of it.
    pub fn owns_address(&self, addr: SocketAddrV4) -> bool {
        self.bootstrap == Some(addr) || self.announced.local.contains(&addr)
    }

    /// Candidates it announced.
    pub fn set_announced(&mut self, candidates: Candidates) {
        self.announced = candidates;
    }

    /// Address its direct datagrams come from, as we see it.
    pub fn observed(&self) -> Option<SocketAddrV4> {
        self.observed
    }

    /// Authenticated traffic came from it over `via`.
    pub fn heard(&mut self, now: Instant, via: Via) {
        self.last_rx = Some(now);
        if let Via::Direct(addr) = via {
            self.observed = Some(addr);
        }
    }

    /// Whether its membership timed out (nothing heard for `timeout`);
    /// if so, the silence is consumed.
    pub fn take_expired(&mut self, now: Instant, timeout: Duration) -> bool {
        if self.last_rx.is_some_and(|r| r + timeout <= now) {
            self.last_rx = None;
            true
        } else {
            false
        }
    }

    /// Data went to or came from it (it counts as busy).
    pub fn touch_data(&mut self, now: Instant) {
        self.last_data = Some(now);
    }

    /// Who told us about this peer (used as its signaling peer).
    pub fn info_from(&self) -> Option<PeerId> {
        self.info_from
    }

    pub fn set_info_from(&mut self, from: PeerId) {
        self.info_from = Some(from);
    }

    /// Hole punching was requested or notified for this peer.
    pub fn punched(&self) -> bool {
        self.punched
    }

    pub fn mark_punched(&mut self) {
        self.punched = true;
    }

    /// A punch was requested (or could not be): the next waits a full
    /// interval.
    pub fn note_punch_attempt(&mut self, now: Instant) {
        self.last_punch = Some(now);
    }

    /// `by` told us this peer is punching towards us.
    pub fn note_punch_notified(&mut self, now: Instant, by: PeerId) {
        self.punched = true;
        self.last_punch = Some(now);
        self.info_from = Some(by);
    }

    /// When hole punching should be requested, given the direct attempts
    /// run `delay` alone and requests are `interval` apart (the caller
    /// checks policy and candidates).
    pub fn punch_at(&self, delay: Duration, interval: Duration) -> Option<Instant> {
        let started = self.connecting_since.or(self.session_up_at)?;
        let mut at = started + delay;
        if let Some(last) = self.last_punch {
            at = at.max(last + interval);
        }
        Some(at)
    }

    /// The earliest of its own timers: connecting, announcing, expiry, a
    /// deferred initiation.
    pub fn next_timer(&self, membership_timeout: Duration) -> [Option<Instant>; 4] {
        [
            self.next_connect,
            self.next_announce,
            self.last_rx.map(|r| r + membership_timeout),
            self.deferred_initiation,
        ]
    }

    /// Whether a handshake initiation may go to it now (none went within
    /// [`INITIATION_GAP`]); if not, one is deferred to the end of the gap.
    pub fn initiation_allowed(&mut self, now: Instant) -> bool {
        match self.last_initiation.map(|t| t + INITIATION_GAP) {
            Some(at) if at > now => {
                self.deferred_initiation = Some(at);
                false
            }
            _ => true,
        }
    }

    /// Whether a cookie reply may make us resend an initiation at once
    /// (one such retry per [`INITIATION_GAP`]); if so, that is noted.
    pub fn cookie_retry_allowed(&mut self, now: Instant) -> bool {
        if self
            .last_cookie_retry
            .is_some_and(|t| now < t + INITIATION_GAP)
        {
            return false;
        }
        self.last_cookie_retry = Some(now);
        true
    }

    /// An initiation went to it now.
    pub fn initiation_sent(&mut self, now: Instant) {
        self.last_initiation = Some(now);
        self.deferred_initiation = None;
    }

    /// Whether a deferred initiation is due; if so it is consumed.
    pub fn take_initiation_due(&mut self, now: Instant) -> bool {
        if self.deferred_initiation.is_some_and(|at| at <= now) {
            self.deferred_initiation = None;
            true
        } else {
            false
        }
    }

    /// Whether its address information about others is believed: it is a
    /// bootstrap peer, or the allowlist marks it `relay_capable`.
    pub fn is_signaling(&self) -> bool {
        self.bootstrap.is_some() || self.relay_capable()
    }

    /// It told us where a member is (as a signaling peer).
    pub fn note_peer_info(&mut self) {
        self.info_received = true;
    }

    /// The request for every member due with the next announce, if any:
    /// `Some(fresh)`, fresh when it has told us nothing since we started.
    pub fn take_info_request(&mut self) -> Option<bool> {
        if !self.want_info {
            return None;
        }
        self.want_info = false;
        Some(!self.info_received)
    }

    /// It asked for peer information (`everything`: every member; `fresh`:
    /// it holds nothing from us): how to treat the request, which is
    /// recorded as answered unless it is not to be.
    pub fn answer_request(&mut self, now: Instant, everything: bool, fresh: bool) -> Answer {
        let recent = |t: Option<Instant>, gap: Duration| t.is_some_and(|t| now < t + gap);
        if everything {
            if self.subscribed && !fresh {
                return Answer::Subscribed;
            }
            if recent(self.last_full_answer, FULL_ANSWER_GAP) {
                return Answer::Limited;
            }
            self.subscribed = true;
            self.last_full_answer = Some(now);
            self.last_answer = Some(now);
            Answer::Full
        } else {
            if recent(self.last_answer, ANSWER_GAP) {
                return Answer::Limited;
            }
            self.last_answer = Some(now);
            Answer::Named
        }
    }

    /// Whether it hears of changes to what we know about members.
    pub fn is_subscribed(&self) -> bool {
        self.subscribed
    }

    /// Whether `candidates` differ from what subscribers were last told it
    /// has; if so they are recorded as told.
    pub fn take_share(&mut self, candidates: &Candidates) -> bool {
        if self.shared.as_ref() == Some(candidates) {
            return false;
        }
        self.shared = Some(candidates.clone());
        true
    }

    /// Its membership ended: when it comes back, subscribers hear of it
    /// again.
    pub fn forget_shared(&mut self) {
        self.shared = None;
    }

    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    pub fn queue_is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Queues a packet until the session is up.
    pub fn enqueue(&mut self, packet: Vec<u8>) {
        self.queue.push_back(packet);
    }

    /// Takes every queued packet, oldest first.
    pub fn take_queue(&mut self) -> Vec<Vec<u8>> {
        self.queue.drain(..).collect()
    }

    /// Whether a connection attempt is running.
    pub fn is_connecting(&self) -> bool {
        self.connecting_since.is_some()
    }

    /// Whether the session came up (and has not failed since).
    pub fn session_is_up(&self) -> bool {
        self.session_up_at.is_some()
    }

    /// A connection attempt starts now (or goes on).
    pub fn start_connecting(&mut self, now: Instant) {
        if self.connecting_since.is_none() {
            self.connecting_since = Some(now);
        }
        self.next_connect = None;
    }

    /// Whether the reconnect timer is due; if so it is consumed.
    pub fn take_connect_due(&mut self, now: Instant) -> bool {
        if self.next_connect.is_some_and(|at| at <= now) {
            self.next_connect = None;
            true
        } else {
            false
        }
    }

    /// Whether sending with `keys` (the local index of the keys the
    /// session sends with now) means a session other than the one that last
    /// came up: a handshake completed since, on either side.
    pub fn keys_replaced(&self, keys: Option<u32>) -> bool {
        keys.is_some() && keys != self.session_keys
    }

    /// A session came up (for the first time, again after failing, or
    /// replacing the one before, as after the peer restarted), sending with
    /// `keys`: connecting ends, and we announce at once so the peer enrolls
    /// us without waiting for the announce timer; at most one such announce
    /// per [`ANNOUNCE_PROMPT_GAP`], later ones wait for the gap.
    pub fn mark_session_up(&mut self, now: Instant, keys: Option<u32>) {
        if self.session_up_at.is_none() {
            self.connected_at = Some(now);
        }
        self.session_up_at = Some(now);
        self.session_keys = keys;
        self.connecting_since = None;
        self.next_connect = None;
        self.want_info = true;
        let at = self
            .last_prompt
            .map_or(now, |last| now.max(last + ANNOUNCE_PROMPT_GAP));
        if self.next_announce.is_some_and(|next| next <= at) {
            // An announce is due by then anyway.
            return;
        }
        self.next_announce = Some(at);
        self.last_prompt = Some(at);
    }

    /// Session setup failed: retry after `reconnect_after`; returns how
    /// many queued packets were dropped.
    pub fn mark_session_failed(&mut self, now: Instant, reconnect_after: Duration) -> usize {
        self.connecting_since = None;
        self.session_up_at = None;
        self.session_keys = None;
        self.subscribed = false;
        self.next_connect = Some(now + reconnect_after);
        let dropped = self.queue.len();
        self.queue.clear();
        dropped
    }

    /// Whether an announce is due (`ready`: the session has keys; without
    /// them the announce waits for the session), rescheduling the next one
    /// `interval` later; returns that and the announce sequence number.
    pub fn announce_due(&mut self, now: Instant, ready: bool, interval: Duration) -> (bool, u64) {
        if !ready && self.next_announce.is_some_and(|at| at <= now) {
            // Announced again when the session is back up.
            self.next_announce = None;
        }
        let announce = ready && self.next_announce.is_some_and(|at| at <= now);
        if announce {
            self.next_announce = Some(now + interval);
            self.announce_seq += 1;
        }
        (announce, self.announce_seq)
    }

    pub fn relay_capable(&self) -> bool {
        self.allow.as_ref().is_some_and(|a| a.relay_capable)
    }

    pub fn enrolled_prefix(&self) -> Option<Ipv4Prefix> {
        self.membership.prefix()
    }

    /// Index of the path with `via`, creating it (as the peer's own
    /// address) if there is room.
    pub fn path_index(&mut self, via: Via, now: Instant) -> Option<usize> {
        self.path_index_with(via, now, false)
    }

    /// Like [`Peer::path_index`]; a new path is marked `reflexive` as given
    /// (and recorded as an attempt).
    pub fn path_index_with(&mut self, via: Via, now: Instant, reflexive: bool) -> Option<usize> {
        let (i, new) = self.paths.index_with(via, now, reflexive)?;
        if new {
            self.attempts
                .begin(now, Target::Path(via), self.paths[i].expected_class());
        }
        Some(i)
    }

    pub fn active_path(&self) -> Option<&Path> {
        self.paths.active()
    }

    /// Candidates to share with others: what it announced, plus the
    /// address we see its datagrams come from as a reflexive candidate.
    pub fn shareable_candidates(&self) -> Candidates {
        let local = self.announced.local.clone();
        let mut reflexive: Vec<SocketAddrV4> = Vec::new();
        for a in self.observed.iter().chain(&self.announced.reflexive) {
            if !local.contains(a) && !reflexive.contains(a) {
                reflexive.push(*a);
            }
        }
        reflexive.truncate(crate::frame::MAX_CANDIDATES);
        Candidates { local, reflexive }
    }

    /// Whether traffic or setup happened recently, which makes probing fast.
    pub fn busy(&self, now: Instant) -> bool {
        let recent = |t: Option<Instant>, d: u64| {
            t.is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(d))
        };
        recent(self.last_data, 5)
            // Not on every rekey: that made every pair probe fast for 10 s
            // every two minutes while idle.
            || recent(self.connected_at, 10)
            || recent(self.last_punch, 10)
            || !self.queue.is_empty()
    }

    /// Re-evaluates the preferred path ([`PathSet::select`]).
    pub fn select(
        &mut self,
        promote_streak: u32,
    ) -> Option<(Option<PathClass>, Option<PathClass>, PathChangeReason)> {
        self.paths.select(promote_streak)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> Peer {
        Peer::new(crate::identity::Identity::from_seed([7; 32]).peer_id())
    }

    #[test]
    fn a_session_coming_up_prompts_one_announce_per_gap() {
        let t0 = Instant::now();
        let interval = Duration::from_secs(10);
        let mut p = peer();
        p.mark_session_up(t0, Some(1));
        assert_eq!(p.announce_due(t0, true, interval), (true, 1), "at once");
        // A new session 100 ms later (a restarted peer): announced again,
        // but not before the gap has passed since the last prompt.
        let t1 = t0 + Duration::from_millis(100);
        assert!(p.keys_replaced(Some(2)) && !p.keys_replaced(Some(1)));
        p.mark_session_up(t1, Some(2));
        assert!(!p.announce_due(t1, true, interval).0);
        let due = t0 + ANNOUNCE_PROMPT_GAP;
        assert_eq!(p.announce_due(due, true, interval), (true, 2));
        // A burst of sessions within one gap makes one announce.
        for i in 0..10u32 {
            p.mark_session_up(due + Duration::from_millis(10 * u64::from(i)), Some(3 + i));
        }
        let next = due + ANNOUNCE_PROMPT_GAP;
        assert_eq!(p.announce_due(next, true, interval), (true, 3));
        assert!(!p.announce_due(next + ANNOUNCE_PROMPT_GAP, true, interval).0);
    }

    #[test]
    fn one_initiation_per_gap_and_the_next_is_deferred_to_its_end() {
        let t0 = Instant::now();
        let mut p = peer();
        assert!(p.initiation_allowed(t0));
        p.initiation_sent(t0);
        let soon = t0 + Duration::from_millis(250);
        assert!(!p.initiation_allowed(soon), "within the gap");
        assert_eq!(
            p.next_timer(Duration::from_secs(30))[3],
            Some(t0 + INITIATION_GAP)
        );
        assert!(!p.take_initiation_due(soon));
        assert!(p.take_initiation_due(t0 + INITIATION_GAP));
        assert!(!p.take_initiation_due(t0 + INITIATION_GAP), "consumed");
        assert!(p.initiation_allowed(t0 + INITIATION_GAP));
    }

    #[test]
    fn requests_for_peer_info_are_answered_once_per_gap() {
        let t0 = Instant::now();
        let mut p = peer();
        assert_eq!(p.answer_request(t0, true, true), Answer::Full);
        assert!(p.is_subscribed());
        // Asking again in the same session (a rekey) needs no answer.
        let t1 = t0 + Duration::from_secs(120);
        assert_eq!(p.answer_request(t1, true, false), Answer::Subscribed);
        // A fresh request (the peer restarted) is answered, once per gap.
        assert_eq!(p.answer_request(t1, true, true), Answer::Full);
        assert_eq!(
            p.answer_request(t1 + Duration::from_secs(1), true, true),
            Answer::Limited
        );
        assert_eq!(
            p.answer_request(t1 + FULL_ANSWER_GAP, true, true),
            Answer::Full
        );
        // Named requests: once per ANSWER_GAP.
        let t2 = t1 + FULL_ANSWER_GAP + ANSWER_GAP;
        assert_eq!(p.answer_request(t2, false, false), Answer::Named);
        assert_eq!(p.answer_request(t2, false, false), Answer::Limited);
        assert_eq!(
            p.answer_request(t2 + ANSWER_GAP, false, false),
            Answer::Named
        );
        // A failed session ends the subscription.
        p.mark_session_failed(t2, Duration::from_secs(15));
        assert!(!p.is_subscribed());
    }

    #[test]
    fn a_session_coming_up_asks_signaling_peers_once_fresh_until_they_answer() {
        let t0 = Instant::now();
        let mut p = peer();
        assert_eq!(p.take_info_request(), None);
        p.mark_session_up(t0, Some(1));
        assert_eq!(p.take_info_request(), Some(true));
        assert_eq!(p.take_info_request(), None);
        p.note_peer_info();
        p.mark_session_up(t0 + Duration::from_secs(120), Some(2));
        assert_eq!(
            p.take_info_request(),
            Some(false),
            "not fresh once it told us something"
        );
        let c = Candidates {
            local: vec!["192.0.2.1:4100".parse().expect("addr")],
            reflexive: Vec::new(),
        };
        assert!(p.take_share(&c));
        assert!(!p.take_share(&c), "unchanged: nothing to tell");
        p.forget_shared();
        assert!(p.take_share(&c));
    }
}
