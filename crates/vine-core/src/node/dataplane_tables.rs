//! The node's side of the data plane ([`crate::dataplane`]): publishing the
//! tables data-plane threads read, taking back what they hand over (which
//! peers were busy, which preferred paths delivered), and folding their
//! counters into the node's. A component: the node hands in the state it
//! reads and calls [`DataplaneTables::publish`] after every change.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::observe::{Counters, DropReason, PeerCounters};
use super::paths::Via;
use super::peer_table::PeerTable;
use crate::dataplane::{DataPlane, PeerEntry, PeerStats, Tables};
use crate::net::Ipv4Prefix;
use crate::peer_id::PeerId;
use crate::route::{RouteState, RouteTable};
use crate::wg::Wg;

/// How often the node looks at the data plane's counters to notice that a
/// peer is busy (busy peers are probed faster, so failover is quick).
const ACTIVITY_CHECK: Duration = Duration::from_millis(250);

/// Data-plane bookkeeping inside the node.
#[derive(Debug, Default)]
pub(super) struct DataplaneTables {
    plane: Option<Arc<DataPlane>>,
    /// Something the tables depend on changed since the last publish.
    dirty: bool,
    stats: BTreeMap<PeerId, Arc<PeerStats>>,
    /// Activity count seen at the last check, per peer.
    seen: BTreeMap<PeerId, u64>,
    /// Packets received seen at the last check, per peer.
    seen_rx: BTreeMap<PeerId, u64>,
    check_at: Option<Instant>,
}

impl DataplaneTables {
    /// The tables must be rebuilt at the next [`DataplaneTables::publish`].
    pub(super) fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// The plane, once enabled.
    pub(super) fn plane(&self) -> Option<&Arc<DataPlane>> {
        self.plane.as_ref()
    }

    /// When [`DataplaneTables::absorb_activity`] is due.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.check_at
    }

    /// Starts publishing into `plane` (the caller publishes at once).
    pub(super) fn attach(&mut self, now: Instant, plane: Arc<DataPlane>) {
        self.plane = Some(plane);
        self.dirty = true;
        self.check_at = Some(now + ACTIVITY_CHECK);
    }

    /// Rebuilds and publishes the tables if something they depend on
    /// changed (the session keys count, so `wg`'s change flag is taken
    /// on every call).
    pub(super) fn publish(
        &mut self,
        now: Instant,
        wg: &mut Wg,
        peers: &PeerTable,
        routes: &RouteTable,
        prefix: Ipv4Prefix,
    ) {
        let keys_changed = wg.take_changed();
        let Some(plane) = self.plane.clone() else {
            return;
        };
        if !keys_changed && !self.dirty {
            return;
        }
        self.dirty = false;
        let mut entries = Vec::with_capacity(peers.len());
        let mut recv = Vec::new();
        for (id, p) in peers.iter() {
            let stats = Arc::clone(self.stats.entry(*id).or_default());
            let endpoint = match p.active_path().map(|x| x.via()) {
                Some(Via::Direct(addr)) => Some(addr),
                _ => None,
            };
            entries.push(PeerEntry {
                id: *id,
                prefix: p.enrolled_prefix(),
                send: wg.send_keypair(id, now),
                endpoint,
                stats,
            });
            recv.extend(wg.confirmed_keypairs(id).map(|k| (*id, Arc::clone(k))));
        }
        let routes = routes
            .iter()
            .filter(|r| r.state != RouteState::Withdrawn)
            .map(|r| (r.prefix, r.peer));
        let tables = Tables::new(prefix, entries, routes, recv);
        if *plane.tables() != tables {
            plane.publish(tables);
        }
    }

    /// Notes which peers the data plane carried traffic for since the last
    /// check (they count as busy), and takes authenticated data received
    /// on the preferred path as proof that it works: the data plane only
    /// delivers data that came from the preferred endpoint, so a path that
    /// keeps delivering is not declared dead because some probes were lost
    /// (random loss must not make it flap); a path that stops delivering
    /// still dies after the usual missed probes.
    pub(super) fn absorb_activity(&mut self, now: Instant, peers: &mut PeerTable) {
        if self.plane.is_none() {
            return;
        }
        self.check_at = Some(now + ACTIVITY_CHECK);
        for (id, stats) in &self.stats {
            // Only peers whose counters moved are touched (a mutable access
            // makes the peer table recompute the peer's deadline).
            let activity = stats.activity();
            let seen = self.seen.entry(*id).or_default();
            if activity != *seen {
                *seen = activity;
                if let Some(p) = peers.get_mut(id) {
                    p.touch_data(now);
                }
            }
            let rx = stats.packets_received.load(Ordering::Relaxed);
            let seen_rx = self.seen_rx.entry(*id).or_default();
            if rx != *seen_rx {
                *seen_rx = rx;
                if let Some(p) = peers.get_mut(id) {
                    p.paths.data_received();
                }
            }
        }
    }

    /// Adds the data plane's counters to node-wide ones.
    pub(super) fn merge_counters(&self, counters: &mut Counters) {
        let Some(plane) = &self.plane else {
            return;
        };
        for stats in self.stats.values() {
            counters.packets_sent += stats.packets_sent.load(Ordering::Relaxed);
            counters.bytes_sent += stats.bytes_sent.load(Ordering::Relaxed);
            counters.packets_received += stats.packets_received.load(Ordering::Relaxed);
            counters.bytes_received += stats.bytes_received.load(Ordering::Relaxed);
        }
        for (reason, n) in plane.drops() {
            *counters.drops.entry(reason).or_default() += n;
            if reason == DropReason::UnknownRoute {
                counters.route_misses += n;
            }
        }
    }

    /// Adds the data plane's counters for `peer` to its own.
    pub(super) fn merge_peer_counters(&self, peer: &PeerId, counters: &mut PeerCounters) {
        let Some(stats) = self.stats.get(peer) else {
            return;
        };
        counters.packets_sent += stats.packets_sent.load(Ordering::Relaxed);
        counters.bytes_sent += stats.bytes_sent.load(Ordering::Relaxed);
        counters.packets_received += stats.packets_received.load(Ordering::Relaxed);
        counters.bytes_received += stats.bytes_received.load(Ordering::Relaxed);
        for (reason, n) in stats.drops() {
            *counters.drops.entry(reason).or_default() += n;
        }
    }
}
