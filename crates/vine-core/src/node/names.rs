//! The node's names: what it announces about itself and its workloads, and
//! what members announced (see [`crate::names`]).
//!
//! A node sends its [`NameSet`] to a member when a session with it comes
//! up or is replaced (also after every rekey, so a lost frame is repaired
//! within one rekey interval) and to every member when the set changes. A
//! received set is kept only when the sender is allowlisted, and only its
//! records inside the sender's allowlisted prefix; an older sequence number
//! than the one kept is ignored, except right after a new session (a
//! restarted peer numbers from 1 again). A member's set goes when its
//! membership ends.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::lease::WorkloadName;
use crate::names::NameSet;
use crate::net::Ipv4Prefix;
use crate::peer_id::PeerId;

/// Own and received name sets.
#[derive(Debug, Clone, Default)]
pub(super) struct NameBook {
    own: NameSet,
    peers: BTreeMap<PeerId, NameSet>,
    /// Peers whose next set is accepted whatever its sequence number.
    reset: std::collections::BTreeSet<PeerId>,
    /// Changes with every change to any set (for the host's zone).
    generation: u64,
}

/// What receiving a set did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Received {
    /// Kept; this many records were outside the sender's prefix.
    Kept { rejected: u64 },
    /// Older than the one kept.
    Stale,
}

impl NameBook {
    /// Starts with the node's own overlay address.
    pub(super) fn new(node: Ipv4Addr) -> Self {
        Self {
            own: NameSet {
                seq: 1,
                node: Some(node),
                workloads: BTreeMap::new(),
            },
            ..Self::default()
        }
    }

    pub(super) fn own(&self) -> &NameSet {
        &self.own
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    pub(super) fn peers(&self) -> impl Iterator<Item = (&PeerId, &NameSet)> {
        self.peers.iter()
    }

    /// Replaces the own workloads; returns whether anything changed.
    pub(super) fn set_workloads(&mut self, workloads: BTreeMap<WorkloadName, Ipv4Addr>) -> bool {
        if self.own.workloads == workloads {
            return false;
        }
        self.own.workloads = workloads;
        self.own.seq += 1;
        self.generation += 1;
        true
    }

    /// A set from `peer`, whose allowlisted prefix is `prefix`.
    pub(super) fn receive(
        &mut self,
        peer: PeerId,
        prefix: Ipv4Prefix,
        mut set: NameSet,
    ) -> Received {
        let reset = self.reset.remove(&peer);
        if !reset && self.peers.get(&peer).is_some_and(|old| set.seq <= old.seq) {
            return Received::Stale;
        }
        let rejected = set.retain_inside(prefix);
        if self.peers.get(&peer) != Some(&set) {
            self.generation += 1;
        }
        self.peers.insert(peer, set);
        Received::Kept { rejected }
    }

    /// A new session with `peer`: its next set counts whatever its number.
    pub(super) fn session_replaced(&mut self, peer: PeerId) {
        self.reset.insert(peer);
    }

    /// `peer` is no longer a member.
    pub(super) fn forget(&mut self, peer: &PeerId) {
        self.reset.remove(peer);
        if self.peers.remove(peer).is_some() {
            self.generation += 1;
        }
    }
}
