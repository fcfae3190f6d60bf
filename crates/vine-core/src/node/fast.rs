//! The node's side of the fast path ([`crate::dataplane`]): publishing the
//! tables data-plane threads read, taking back what they hand over, and
//! folding their counters into the node's.

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Node;
use super::observe::{Counters, PeerCounters};
use super::peer::Via;
use crate::dataplane::{DataPlane, PeerEntry, PeerStats, Tables};
use crate::peer_id::PeerId;

/// How often the node looks at the fast path's counters to notice that a
/// peer is busy (busy peers are probed faster, so failover is quick).
pub(super) const ACTIVITY_CHECK: Duration = Duration::from_millis(250);

/// Fast-path bookkeeping inside the node.
#[derive(Debug, Default)]
pub(super) struct FastPath {
    plane: Option<Arc<DataPlane>>,
    /// Something the tables depend on changed since the last publish.
    dirty: bool,
    stats: BTreeMap<PeerId, Arc<PeerStats>>,
    /// Activity count seen at the last check, per peer.
    seen: BTreeMap<PeerId, u64>,
    /// Packets received seen at the last check, per peer.
    seen_rx: BTreeMap<PeerId, u64>,
    pub(super) check_at: Option<Instant>,
}

impl FastPath {
    pub(super) fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    pub(super) fn enabled(&self) -> bool {
        self.plane.is_some()
    }
}

impl Node {
    /// Turns on the fast path and returns the shared [`DataPlane`] whose
    /// [`Reader`](crate::dataplane::Reader)s data-plane threads use. From
    /// now on the node republishes the tables whenever keys, paths,
    /// memberships or routes change, and folds the fast path's counters
    /// into [`Node::counters`] and [`Node::snapshot`].
    pub fn enable_data_plane(&mut self, now: Instant) -> Arc<DataPlane> {
        if let Some(plane) = &self.fast.plane {
            return Arc::clone(plane);
        }
        let plane = Arc::new(DataPlane::default());
        self.attach_data_plane(now, Arc::clone(&plane));
        plane
    }

    /// Like [`Node::enable_data_plane`] with an existing [`DataPlane`]: a
    /// node built to replace another (config reload) takes over the plane
    /// the running data-plane threads read, and publishes its own tables
    /// into it at once.
    pub fn attach_data_plane(&mut self, now: Instant, plane: Arc<DataPlane>) {
        self.fast.plane = Some(plane);
        self.fast.dirty = true;
        self.fast.check_at = Some(now + ACTIVITY_CHECK);
        self.publish_data_plane(now);
    }

    /// A transport message the fast path decrypted but did not deliver
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
        if self
            .peers
            .get(&peer)
            .is_some_and(|p| p.session_up_at.is_none())
        {
            self.session_up(now, peer);
        }
        self.handle_plaintext(now, peer, via, plaintext);
        self.after_change(now);
    }

    /// Rebuilds and publishes the tables if something they depend on
    /// changed.
    pub(super) fn publish_data_plane(&mut self, now: Instant) {
        let keys_changed = self.wg.take_changed();
        let Some(plane) = self.fast.plane.clone() else {
            return;
        };
        if !keys_changed && !self.fast.dirty {
            return;
        }
        self.fast.dirty = false;
        let mut entries = Vec::with_capacity(self.peers.len());
        let mut recv = Vec::new();
        for (id, p) in &self.peers {
            let stats = Arc::clone(self.fast.stats.entry(*id).or_default());
            let endpoint = match p.active_path().map(|x| x.via) {
                Some(Via::Direct(addr)) => Some(addr),
                _ => None,
            };
            entries.push(PeerEntry {
                id: *id,
                prefix: p.enrolled_prefix(),
                send: self.wg.send_keypair(id, now),
                endpoint,
                stats,
            });
            recv.extend(self.wg.confirmed_keypairs(id).map(|k| (*id, Arc::clone(k))));
        }
        let routes = self
            .routes
            .iter()
            .filter(|r| r.state != crate::route::RouteState::Withdrawn)
            .map(|r| (r.prefix, r.peer));
        let tables = Tables::new(self.config.prefix, entries, routes, recv);
        if *plane.tables() != tables {
            plane.publish(tables);
        }
    }

    /// Notes which peers the fast path carried traffic for since the last
    /// check (they count as busy), and takes authenticated data received
    /// on the preferred path as proof that it works: the fast path only
    /// delivers data that came from the preferred endpoint, so a path that
    /// keeps delivering is not declared dead because some probes were lost
    /// (random loss must not make it flap); a path that stops delivering
    /// still dies after the usual missed probes.
    pub(super) fn absorb_activity(&mut self, now: Instant) {
        if !self.fast.enabled() {
            return;
        }
        self.fast.check_at = Some(now + ACTIVITY_CHECK);
        for (id, stats) in &self.fast.stats {
            let Some(p) = self.peers.get_mut(id) else {
                continue;
            };
            let activity = stats.activity();
            let seen = self.fast.seen.entry(*id).or_default();
            if activity != *seen {
                *seen = activity;
                p.last_data = Some(now);
            }
            let rx = stats.packets_received.load(Ordering::Relaxed);
            let seen_rx = self.fast.seen_rx.entry(*id).or_default();
            if rx != *seen_rx {
                *seen_rx = rx;
                if let Some(path) = p.active.and_then(|i| p.paths.get_mut(i))
                    && path.alive
                    && matches!(path.via, Via::Direct(_))
                {
                    path.misses = 0;
                }
            }
        }
    }

    /// Adds the fast path's counters to node-wide ones.
    pub(super) fn merge_fast_counters(&self, counters: &mut Counters) {
        let Some(plane) = &self.fast.plane else {
            return;
        };
        for stats in self.fast.stats.values() {
            counters.packets_sent += stats.packets_sent.load(Ordering::Relaxed);
            counters.bytes_sent += stats.bytes_sent.load(Ordering::Relaxed);
            counters.packets_received += stats.packets_received.load(Ordering::Relaxed);
            counters.bytes_received += stats.bytes_received.load(Ordering::Relaxed);
        }
        for (reason, n) in plane.drops() {
            *counters.drops.entry(reason).or_default() += n;
            if reason == super::DropReason::UnknownRoute {
                counters.route_misses += n;
            }
        }
    }

    /// Adds the fast path's counters for `peer` to its own.
    pub(super) fn merge_fast_peer_counters(&self, peer: &PeerId, counters: &mut PeerCounters) {
        let Some(stats) = self.fast.stats.get(peer) else {
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
