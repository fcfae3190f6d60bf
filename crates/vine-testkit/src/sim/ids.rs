//! The handles a [`Network`](super::Network) issues: hosts, realms (address
//! spaces) and NAT boxes.

/// A host in a [`Network`](super::Network); only meaningful for the network that issued it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostId(pub(super) usize);

/// An address space (the internet or a private LAN) in a [`Network`](super::Network).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RealmId(pub(super) usize);

/// A NAT box in a [`Network`](super::Network).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NatId(pub(super) usize);

impl HostId {
    /// Position in creation order (0 for the first host added).
    pub fn index(self) -> usize {
        self.0
    }
}

impl RealmId {
    /// Position in creation order (0 is the internet).
    pub fn index(self) -> usize {
        self.0
    }
}

impl NatId {
    /// Position in creation order (0 for the first NAT added).
    pub fn index(self) -> usize {
        self.0
    }
}
