//! The node's peers, with a timer table: each peer's earliest deadline is
//! kept in an ordered index, so [`PeerTable::poll_timeout`] does not rescan
//! every peer and path on every call.
//!
//! The map is private: every mutable access goes through
//! [`PeerTable::get_mut`] or [`PeerTable::get_or_insert`], which mark the
//! peer stale. A stale peer's deadline is recomputed on the spot by
//! `poll_timeout` (so the answer is always what a full rescan would give)
//! and written back to the index by [`PeerTable::refresh`], which the node
//! calls after each change.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::paths::Via;
use super::peer::Peer;
use crate::peer_id::PeerId;

/// The timing rules a peer's deadline depends on (fixed per node).
#[derive(Debug, Clone, Copy)]
pub(super) struct DeadlineRules {
    /// Membership expires after this long without authenticated traffic.
    pub membership_timeout: Duration,
    /// A probe unanswered for this long counts as a miss.
    pub probe_timeout: Duration,
    /// Hole punching may be requested (policy `allow_signaling_upgrade`).
    pub allow_signaling: bool,
    /// How long direct attempts run alone before punching is requested.
    pub punch_delay: Duration,
    /// Minimum time between two punch requests for one peer.
    pub punch_interval: Duration,
}

impl DeadlineRules {
    /// When hole punching should be requested for `p`, if at all.
    pub(super) fn punch_at(&self, p: &Peer) -> Option<Instant> {
        if !self.allow_signaling {
            return None;
        }
        let has_direct_candidate = p.paths.iter().any(|x| matches!(x.via(), Via::Direct(_)));
        let direct_alive = p
            .paths
            .iter()
            .any(|x| x.is_alive() && matches!(x.via(), Via::Direct(_)));
        if !has_direct_candidate || direct_alive || p.bootstrap().is_some() {
            return None;
        }
        p.punch_at(self.punch_delay, self.punch_interval)
    }

    /// The earliest time anything of `p` is due: connecting, announcing,
    /// membership expiry, punching, a probe to send or one timing out.
    fn deadline(&self, p: &Peer) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        };
        for t in p.next_timer(self.membership_timeout) {
            consider(t);
        }
        consider(self.punch_at(p));
        consider(p.paths.poll_timeout(self.probe_timeout));
        next
    }
}

/// Every peer the node knows, by PeerId, and when each is next due.
#[derive(Debug)]
pub(super) struct PeerTable {
    rules: DeadlineRules,
    peers: BTreeMap<PeerId, Peer>,
    /// (deadline, peer) for every peer that has one and is not stale.
    index: BTreeSet<(Instant, PeerId)>,
    /// The deadline each peer has in `index`.
    due: BTreeMap<PeerId, Instant>,
    /// Peers changed since their deadline was last indexed.
    stale: BTreeSet<PeerId>,
    /// Calls of `poll_timeout`, for sampling its debug check.
    #[cfg(debug_assertions)]
    checks: std::cell::Cell<u64>,
}

/// Up to this many peers, debug builds check every `poll_timeout` answer
/// against a full rescan; above, a sample of them.
#[cfg(debug_assertions)]
const FULL_CHECK_UP_TO: usize = 32;

impl PeerTable {
    /// An empty table.
    pub(super) fn new(rules: DeadlineRules) -> Self {
        Self {
            rules,
            peers: BTreeMap::new(),
            index: BTreeSet::new(),
            due: BTreeMap::new(),
            stale: BTreeSet::new(),
            #[cfg(debug_assertions)]
            checks: std::cell::Cell::new(0),
        }
    }

    /// The timing rules deadlines are computed with.
    pub(super) fn rules(&self) -> &DeadlineRules {
        &self.rules
    }

    pub(super) fn get(&self, id: &PeerId) -> Option<&Peer> {
        self.peers.get(id)
    }

    /// The peer, for changing it (its deadline is recomputed).
    pub(super) fn get_mut(&mut self, id: &PeerId) -> Option<&mut Peer> {
        let p = self.peers.get_mut(id)?;
        self.stale.insert(*id);
        Some(p)
    }

    /// The peer, created empty if unknown (its deadline is recomputed).
    pub(super) fn get_or_insert(&mut self, id: PeerId) -> &mut Peer {
        self.stale.insert(id);
        self.peers.entry(id).or_insert_with(|| Peer::new(id))
    }

    pub(super) fn contains_key(&self, id: &PeerId) -> bool {
        self.peers.contains_key(id)
    }

    pub(super) fn len(&self) -> usize {
        self.peers.len()
    }

    /// Peers in PeerId order.
    pub(super) fn values(&self) -> impl Iterator<Item = &Peer> {
        self.peers.values()
    }

    /// PeerIds in order.
    pub(super) fn keys(&self) -> impl Iterator<Item = &PeerId> {
        self.peers.keys()
    }

    /// (PeerId, peer) in PeerId order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&PeerId, &Peer)> {
        self.peers.iter()
    }

    /// The earliest deadline of any peer.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let indexed = self
            .index
            .iter()
            .find(|(_, id)| !self.stale.contains(id))
            .map(|(t, _)| *t);
        let r = self
            .stale
            .iter()
            .filter_map(|id| self.peers.get(id))
            .filter_map(|p| self.rules.deadline(p))
            .chain(indexed)
            .min();
        // The index must answer what a full rescan would. Debug builds
        // check it, so every simulator run cross-checks it: on every call
        // while the table is small, and on one call in `len` for large
        // ones, which keeps the check O(1) per call amortized (a full
        // rescan on every call made a 200-node simulation quadratic).
        #[cfg(debug_assertions)]
        {
            let calls = self.checks.get().wrapping_add(1);
            self.checks.set(calls);
            if self.peers.len() <= FULL_CHECK_UP_TO || calls.is_multiple_of(self.peers.len() as u64)
            {
                debug_assert_eq!(
                    r,
                    self.peers
                        .values()
                        .filter_map(|p| self.rules.deadline(p))
                        .min()
                );
            }
        }
        r
    }

    /// Peers whose deadline is at or before `now`, in PeerId order: the
    /// only ones `handle_timeout` has work for.
    pub(super) fn due(&self, now: Instant) -> Vec<PeerId> {
        let mut ids: BTreeSet<PeerId> = self
            .index
            .iter()
            .take_while(|(t, _)| *t <= now)
            .map(|(_, id)| *id)
            .filter(|id| !self.stale.contains(id))
            .collect();
        ids.extend(self.stale.iter().copied().filter(|id| {
            self.peers
                .get(id)
                .and_then(|p| self.rules.deadline(p))
                .is_some_and(|t| t <= now)
        }));
        ids.into_iter().collect()
    }

    /// Writes the deadlines of peers changed since the last call into the
    /// index.
    pub(super) fn refresh(&mut self) {
        for id in std::mem::take(&mut self.stale) {
            if let Some(old) = self.due.remove(&id) {
                self.index.remove(&(old, id));
            }
            if let Some(t) = self.peers.get(&id).and_then(|p| self.rules.deadline(p)) {
                self.due.insert(id, t);
                self.index.insert((t, id));
            }
        }
    }
}
