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
    pub id: PeerId,
    pub allow: Option<AllowedPeerConfig>,
    /// Configured bootstrap address, if this is a bootstrap peer.
    pub bootstrap: Option<SocketAddrV4>,
    pub membership: Membership,
    pub paths: PathSet,
    /// Hole punching was requested or notified for this peer.
    pub punched: bool,
    pub last_punch: Option<Instant>,
    /// Who told us about this peer (used as its signaling peer).
    pub info_from: Option<PeerId>,
    pub queue: VecDeque<Vec<u8>>,
    /// When the current connection attempt started.
    pub connecting_since: Option<Instant>,
    pub next_connect: Option<Instant>,
    pub session_up_at: Option<Instant>,
    pub next_announce: Option<Instant>,
    pub announce_seq: u64,
    pub last_rx: Option<Instant>,
    pub last_data: Option<Instant>,
    /// Candidates it announced.
    pub announced: Candidates,
    /// Address its direct datagrams come from, as we see it.
    pub observed: Option<SocketAddrV4>,
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
            next_announce: None,
            announce_seq: 0,
            last_rx: None,
            last_data: None,
            announced: Candidates::default(),
            observed: None,
            counters: PeerCounters::default(),
            attempts: Attempts::default(),
        }
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
            || recent(self.session_up_at, 10)
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
