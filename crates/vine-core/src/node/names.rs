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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Frame, Plaintext, decode};

    fn peer(n: u8) -> PeerId {
        PeerId::from_public_key([n; 32])
    }

    fn set(seq: u64, node: [u8; 4], workloads: &[(&str, [u8; 4])]) -> NameSet {
        NameSet {
            seq,
            node: Some(Ipv4Addr::from(node)),
            workloads: workloads
                .iter()
                .map(|(n, a)| (n.parse().expect("name"), Ipv4Addr::from(*a)))
                .collect(),
        }
    }

    fn prefix() -> Ipv4Prefix {
        Ipv4Prefix::containing(Ipv4Addr::new(10, 42, 1, 0), 24).expect("prefix")
    }

    #[test]
    fn records_outside_the_prefix_are_refused_and_counted_the_rest_kept() {
        let mut book = NameBook::new(Ipv4Addr::new(10, 42, 0, 1));
        let s = set(
            3,
            [10, 42, 1, 1],
            &[("web", [10, 42, 1, 5]), ("evil", [10, 42, 0, 9])],
        );
        assert_eq!(
            book.receive(peer(1), prefix(), s),
            Received::Kept { rejected: 1 }
        );
        let (_, kept) = book.peers().next().expect("kept");
        assert_eq!(kept.workloads.len(), 1);
        assert!(kept.workloads.keys().any(|n| n.as_str() == "web"));
    }

    #[test]
    fn older_sets_are_ignored_except_right_after_a_new_session() {
        let mut book = NameBook::new(Ipv4Addr::new(10, 42, 0, 1));
        let g0 = book.generation();
        book.receive(
            peer(1),
            prefix(),
            set(5, [10, 42, 1, 1], &[("a", [10, 42, 1, 2])]),
        );
        assert!(book.generation() > g0);
        assert_eq!(
            book.receive(peer(1), prefix(), set(4, [10, 42, 1, 1], &[])),
            Received::Stale
        );
        assert_eq!(
            book.receive(peer(1), prefix(), set(5, [10, 42, 1, 1], &[])),
            Received::Stale
        );
        // The peer restarted: it numbers from 1 again.
        book.session_replaced(peer(1));
        assert_eq!(
            book.receive(peer(1), prefix(), set(1, [10, 42, 1, 1], &[])),
            Received::Kept { rejected: 0 }
        );
        let g = book.generation();
        book.forget(&peer(1));
        assert!(book.generation() > g);
        assert_eq!(book.peers().count(), 0);
    }

    #[test]
    fn own_changes_bump_the_sequence_and_round_trip_as_a_frame() {
        let mut book = NameBook::new(Ipv4Addr::new(10, 42, 0, 1));
        let seq = book.own().seq;
        let w: BTreeMap<WorkloadName, Ipv4Addr> =
            [("web".parse().expect("name"), Ipv4Addr::new(10, 42, 0, 2))]
                .into_iter()
                .collect();
        assert!(book.set_workloads(w.clone()));
        assert!(!book.set_workloads(w), "no change, no new sequence number");
        assert_eq!(book.own().seq, seq + 1);
        let frame = Frame::Names(book.own().clone());
        let bytes = frame.to_bytes();
        assert_eq!(decode(&bytes), Ok(Plaintext::Frame(frame)));
        // Damaged forms are errors, never panics.
        for cut in 0..bytes.len() {
            let _ = decode(&bytes[..cut]);
        }
        let mut upper = bytes.clone();
        if let Some(i) = upper.windows(3).position(|w| w == b"web") {
            upper[i] = b'W';
            assert!(
                decode(&upper).is_err(),
                "names travel in lowercase form only"
            );
        }
    }
}
