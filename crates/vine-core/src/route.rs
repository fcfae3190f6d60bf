//! The overlay route table: which peer owns which prefix, and whether
//! traffic for it can flow.
//!
//! Lookups are longest-prefix match. Every entry is in one of three states:
//!
//! * **installed** — the owner is enrolled and has a live path;
//! * **tombstoned** — the owner is still enrolled but has no live path. The
//!   kernel route stays, so packets keep arriving at vine and are dropped and
//!   counted as `no_session` instead of leaking to the host's default route;
//! * **withdrawn** — membership ended; the kernel route is removed and the
//!   entry is kept only for diagnostics until it is replaced.
//!
//! Changes that the host must apply to the Linux routing table come out as
//! [`RouteIntent`]s.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::Serialize;

use crate::net::Ipv4Prefix;
use crate::peer_id::PeerId;

/// State of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteState {
    /// Owner enrolled with a live path.
    Installed,
    /// Owner enrolled, no live path: packets are dropped as `no_session`.
    Tombstoned,
    /// Membership ended; not in the kernel.
    Withdrawn,
}

/// A route-table entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// The prefix.
    pub prefix: Ipv4Prefix,
    /// Its owner.
    pub peer: PeerId,
    /// Current state.
    pub state: RouteState,
}

/// A change the host must make to the kernel routing table (a route for the
/// prefix through the TUN device).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "action", content = "prefix", rename_all = "snake_case")]
pub enum RouteIntent {
    /// Add the kernel route.
    Install(Ipv4Prefix),
    /// Remove the kernel route.
    Remove(Ipv4Prefix),
}

/// Longest-prefix-match route table.
#[derive(Debug, Default, Clone)]
pub struct RouteTable {
    routes: BTreeMap<Ipv4Prefix, Route>,
    /// Prefix lengths present, longest first, for lookups.
    lengths: Vec<u8>,
}

impl RouteTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The live (installed or tombstoned) route that covers `addr`.
    pub fn lookup(&self, addr: Ipv4Addr) -> Option<&Route> {
        self.lengths.iter().find_map(|&len| {
            let key = Ipv4Prefix::containing_clamped(addr, len);
            self.routes
                .get(&key)
                .filter(|r| r.state != RouteState::Withdrawn)
        })
    }

    /// The entry for exactly `prefix`.
    pub fn get(&self, prefix: &Ipv4Prefix) -> Option<&Route> {
        self.routes.get(prefix)
    }

    /// Sets `prefix` owned by `peer` to `state`, returning the kernel change
    /// this implies (if any).
    pub fn set(
        &mut self,
        prefix: Ipv4Prefix,
        peer: PeerId,
        state: RouteState,
    ) -> Option<RouteIntent> {
        let was_live = self
            .routes
            .get(&prefix)
            .is_some_and(|r| r.state != RouteState::Withdrawn);
        let live = state != RouteState::Withdrawn;
        self.routes.insert(
            prefix,
            Route {
                prefix,
                peer,
                state,
            },
        );
        if !self.lengths.contains(&prefix.len()) {
            self.lengths.push(prefix.len());
            self.lengths.sort_unstable_by(|a, b| b.cmp(a));
        }
        match (was_live, live) {
            (false, true) => Some(RouteIntent::Install(prefix)),
            (true, false) => Some(RouteIntent::Remove(prefix)),
            _ => None,
        }
    }

    /// All entries, ordered by prefix.
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.values()
    }

    /// Prefixes currently in the kernel (installed or tombstoned).
    pub fn live_prefixes(&self) -> Vec<Ipv4Prefix> {
        self.routes
            .values()
            .filter(|r| r.state != RouteState::Withdrawn)
            .map(|r| r.prefix)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Ipv4Prefix {
        s.parse().expect("prefix")
    }

    fn peer(n: u8) -> PeerId {
        PeerId::from_public_key([n; 32])
    }

    #[test]
    fn longest_prefix_wins() {
        let mut t = RouteTable::new();
        t.set(p("10.42.0.0/16"), peer(1), RouteState::Installed);
        t.set(p("10.42.7.0/24"), peer(2), RouteState::Installed);
        t.set(p("10.42.7.9/32"), peer(3), RouteState::Installed);
        let at = |a: [u8; 4]| t.lookup(Ipv4Addr::from(a)).map(|r| r.peer);
        assert_eq!(at([10, 42, 7, 9]), Some(peer(3)));
        assert_eq!(at([10, 42, 7, 10]), Some(peer(2)));
        assert_eq!(at([10, 42, 8, 1]), Some(peer(1)));
        assert_eq!(at([10, 43, 0, 1]), None);
    }

    #[test]
    fn withdrawn_routes_do_not_match_and_fall_through() {
        let mut t = RouteTable::new();
        t.set(p("10.42.0.0/16"), peer(1), RouteState::Installed);
        t.set(p("10.42.7.0/24"), peer(2), RouteState::Installed);
        t.set(p("10.42.7.0/24"), peer(2), RouteState::Withdrawn);
        assert_eq!(
            t.lookup(Ipv4Addr::new(10, 42, 7, 1)).map(|r| r.peer),
            Some(peer(1))
        );
    }

    #[test]
    fn intents_follow_kernel_presence() {
        let mut t = RouteTable::new();
        let x = p("10.42.1.0/24");
        assert_eq!(
            t.set(x, peer(1), RouteState::Installed),
            Some(RouteIntent::Install(x))
        );
        assert_eq!(t.set(x, peer(1), RouteState::Installed), None);
        // Tombstoning keeps the kernel route (no leak to the default route).
        assert_eq!(t.set(x, peer(1), RouteState::Tombstoned), None);
        assert_eq!(
            t.lookup(Ipv4Addr::new(10, 42, 1, 1)).map(|r| r.state),
            Some(RouteState::Tombstoned)
        );
        assert_eq!(
            t.set(x, peer(1), RouteState::Withdrawn),
            Some(RouteIntent::Remove(x))
        );
        assert_eq!(t.set(x, peer(1), RouteState::Withdrawn), None);
        assert!(t.live_prefixes().is_empty());
        assert_eq!(
            t.set(x, peer(1), RouteState::Tombstoned),
            Some(RouteIntent::Install(x))
        );
    }
}
