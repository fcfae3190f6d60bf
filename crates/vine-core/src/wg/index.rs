//! The table of local session indices: every 32-bit index we hand a peer
//! (in an initiation or a response) maps back to that peer, so a response
//! or a transport message finds its state with one lookup.

use std::collections::BTreeMap;

use rand_core::RngCore;

use crate::peer_id::PeerId;

/// Local index → peer. A `BTreeMap` keeps the crate free of OS-seeded
/// hashers and its behaviour deterministic.
#[derive(Debug, Default)]
pub(crate) struct Indices {
    map: BTreeMap<u32, PeerId>,
}

impl Indices {
    /// Draws a fresh random index for `peer` that is not in use.
    pub(crate) fn allocate(&mut self, rng: &mut impl RngCore, peer: PeerId) -> u32 {
        loop {
            let index = rng.next_u32();
            if let std::collections::btree_map::Entry::Vacant(slot) = self.map.entry(index) {
                slot.insert(peer);
                return index;
            }
        }
    }

    /// Frees an index.
    pub(crate) fn release(&mut self, index: u32) {
        self.map.remove(&index);
    }

    /// The peer an index was allocated for.
    pub(crate) fn get(&self, index: u32) -> Option<PeerId> {
        self.map.get(&index).copied()
    }

    /// Frees every index of `peer`.
    pub(crate) fn release_peer(&mut self, peer: &PeerId) {
        self.map.retain(|_, p| p != peer);
    }

    /// Number of indices in use (tests check nothing leaks).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}
