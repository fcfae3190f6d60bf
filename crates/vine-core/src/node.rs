//! The overlay node: a sans-IO state machine that turns TUN packets and UDP
//! datagrams into UDP datagrams, TUN packets, route intents and events.
//!
//! # Driving a node
//!
//! The caller owns the sockets, the TUN device and the clock:
//!
//! ```text
//! let mut node = Node::new(config, &identity, rng_seed, now, wall_clock)?;
//! node.set_local_addresses(vec![bound_udp_addr]);
//! node.start(now);
//! loop {
//!     while let Some(t) = node.poll_transmit() { udp.send_to(&t.data, t.dst) }
//!     while let Some(p) = node.poll_tun()      { tun.write(&p) }
//!     while let Some(e) = node.poll_event()    { apply route intents, log }
//!     let deadline = node.poll_timeout();
//!     select! {
//!         datagram from udp  => node.handle_datagram(now, from, &datagram),
//!         packet from tun    => node.handle_tun_packet(now, &packet),
//!         deadline reached   => node.handle_timeout(now),
//!     }
//! }
//! node.stop(now); // then flush poll_transmit / poll_event once more
//! ```
//!
//! `now` is a monotonic [`Instant`] supplied by the caller on every call; a
//! simulator supplies virtual time. Randomness comes from the seed given to
//! [`Node::new`]. Nothing here blocks, sleeps, reads the clock or does IO.
//!
//! # What it does
//!
//! * **Sessions**: one WireGuard-protocol session per peer ([`crate::wg`]),
//!   keyed by the identities' X25519 keys; a peer is authenticated by its
//!   PeerId before anything it says is believed.
//! * **Enrollment**: a peer's `Announce` is accepted only if it is
//!   allowlisted, names our network and claims exactly its configured prefix;
//!   acceptance installs its route, anything else changes nothing and is
//!   counted. Withdraw, expiry and shutdown remove the route.
//! * **Paths**: per peer, candidate paths of class `direct`,
//!   `signaling_then_direct` (hole punching coordinated through a signaling
//!   peer) and `relay` (through a `relay_capable` peer) are tried in
//!   parallel; the first that works carries traffic, probes promote a better
//!   class after a streak of answers and fall back when the preferred path
//!   stops answering.
//! * **Packets**: TUN packet → longest-prefix route → preferred path;
//!   inbound → decrypt → source address must lie in the sender's prefix →
//!   TUN. Every drop has a reason and a counter.
//! * **Relaying** for others between allowlisted peers, only when opted in
//!   ([`NodeConfig::relay_enabled`], `[node] act_as_relay`), counted per
//!   (source, destination) pair and capped per pair
//!   (`relay_rate_limit_kbps`) and per source (`relay_source_rate_limit_kbps`)
//!   (see the `relay` module).
//! * **Explaining**: per peer, the recent path attempts with an outcome and
//!   a reason (`explain` module), in [`Snapshot`] as `why` and `attempts`.
//! * **Bootstrap names** are resolved by the host, which hands changes in
//!   with [`Node::update_bootstrap_address`].
//!
//! # Layout
//!
//! `Node` (this file: the API, outbound packets, sending) is the parent of
//! components that own their state, and the modules that act on it:
//!
//! * `peer_table`: every peer, and the timer table of their deadlines that
//!   [`Node::poll_timeout`] reads instead of rescanning (each peer's
//!   deadline comes from its own timers and its path set's
//!   `poll_timeout`).
//! * `peer`: one peer's state; its `paths` ([`PathClass`] per path, the
//!   active one, promotion and fallback, probes in flight and their loss:
//!   private, changed only by methods that say what happened) and
//!   `membership` (the enrollment rule) are components of their own.
//! * `dataplane_tables`: the tables published to [`crate::dataplane`] and
//!   the counters folded back.
//! * `relay`: relaying for others (pair counters, rate caps); its
//!   `forward` child applies the rules to a frame.
//! * `explain`: the per-peer attempt records; handlers report what
//!   happened (`Happened`) and its `report` child alone turns that into
//!   records and renders `why` / `attempts`.
//! * `inbound` (datagrams, peer frames, enrollment, signaling) and
//!   `timers` (`handle_timeout`, `after_change`) are the node's handlers.
//! * `observe`: what the node tells the outside (events, counters, views);
//!   `node_config`: what a node is built from; `ipv4`: header helpers.
//!
//! Children never use this file's items except `Node` itself in `impl
//! Node` blocks of handler modules; shared types live in leaf modules.

mod dataplane_tables;
mod explain;
mod inbound;
mod membership;
mod names;
mod node_config;
mod observe;
mod paths;
mod peer;
mod peer_table;
mod relay;
mod timers;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::wg::HandshakeLoad;
pub use crate::wire::ipv4::{build_test_packet, set_dont_fragment};
pub use explain::MAX_ATTEMPTS;
pub use node_config::{NodeConfig, NodeError, SeedRecord, Timers};
pub use observe::{
    AttemptOutcome, AttemptView, Counters, DropReason, Event, PathChangeReason, PathClass,
    PathView, PeerCounters, PeerView, RejectReason, Snapshot, WithdrawReason,
};
pub use peer::AllowedPeerConfig;
pub use relay::{NOTICE_INTERVAL, RelayPairCounters, TokenBucket};

use crate::dataplane::DataPlane;
use crate::frame::{self, Candidates, Frame, RelayDirection};
use crate::identity::Identity;
use crate::peer_id::PeerId;
use crate::route::RouteTable;
use crate::wg::Wg;
use crate::wire::ipv4;
use dataplane_tables::DataplaneTables;
use paths::Via;
use peer_table::{DeadlineRules, PeerTable};

/// Bytes an IP packet of `len` bytes takes on the underlay when it crosses a
/// relay: sealed end to end (padded, plus header and tag), framed for the
/// relay, sealed again for the hop (padded, header, tag), in UDP over IPv4.
pub const fn relayed_wire_len(len: usize) -> usize {
    let end_to_end = crate::wg::padded_len(len) + crate::wg::DATA_OVERHEAD;
    crate::wg::padded_len(end_to_end + frame::RELAY_HEADER_LEN) + crate::wg::DATA_OVERHEAD + 28
}

/// The largest IP packet that crosses a relay in one underlay datagram of
/// `underlay_mtu` bytes. Bigger packets with Don't Fragment set are
/// answered with an ICMP "fragmentation needed" naming this size.
pub const fn relay_max_packet(underlay_mtu: u16) -> usize {
    let underlay = underlay_mtu as usize;
    let mut n = underlay;
    while n > 0 && relayed_wire_len(n) > underlay {
        n -= 1;
    }
    n
}

/// [`relay_max_packet`] on Ethernet (the default `underlay_mtu`, 1500):
/// 1360 bytes.
pub const RELAY_MAX_PACKET: usize = relay_max_packet(crate::config::DEFAULT_UNDERLAY_MTU);

/// A datagram to send from the node's UDP socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub dst: SocketAddrV4,
    /// Payload.
    pub data: Vec<u8>,
}

/// Most packets queued per peer while its session is being set up.
const QUEUE_LIMIT: usize = 64;

/// The overlay node. See the module docs for how to drive it.
#[derive(Debug)]
pub struct Node {
    config: NodeConfig,
    local: PeerId,
    wg: Wg,
    /// Every peer, with the timer table of their deadlines.
    peers: PeerTable,
    routes: RouteTable,
    running: bool,
    epoch: Instant,
    wall_at_epoch: Duration,
    local_addresses: Vec<SocketAddrV4>,
    reflexive: Vec<SocketAddrV4>,
    next_probe_id: u64,
    counters: Counters,
    transmits: VecDeque<Transmit>,
    tun_out: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    seeds: Vec<SeedRecord>,
    scratch: Vec<u8>,
    /// Peers whose path choice, route or queue must be re-evaluated.
    dirty: BTreeSet<PeerId>,
    /// Probes requested through [`Node::probe`], answered by events.
    user_probes: BTreeSet<u64>,
    /// The data plane's tables and counters, when enabled.
    dataplane: DataplaneTables,
    /// Relaying for others: per-pair counters and rate caps.
    relay: relay::RelayState,
    /// Own and members' name sets.
    names: names::NameBook,
}

impl Node {
    /// The transport AEAD implementation for sessions made from now on
    /// (the node starts with [`Backend::detect`](crate::wg::aead::Backend::detect)'s
    /// choice; the host may insist on ring, e.g. for A/B comparisons).
    pub fn set_aead_backend(&mut self, backend: crate::wg::aead::Backend) {
        self.wg.set_aead_backend(backend);
    }

    /// Creates a node. `wall` is the wall-clock time (since the UNIX epoch)
    /// at `now`; it is only used for handshake timestamps.
    pub fn new(
        config: NodeConfig,
        identity: &Identity,
        rng_seed: [u8; 32],
        now: Instant,
        wall: Duration,
    ) -> Result<Self, NodeError> {
        let local = identity.peer_id();
        config.check(local)?;
        let node_address = config.address;
        let mut wg = Wg::new(identity.x25519_secret().clone(), rng_seed);
        let t = &config.timers;
        let mut peers = PeerTable::new(DeadlineRules {
            membership_timeout: t.membership_timeout,
            probe_timeout: t.probe_timeout,
            allow_signaling: config.policy.allow_signaling_upgrade,
            punch_delay: t.punch_delay,
            punch_interval: t.punch_interval,
        });
        for (id, allow) in &config.allowed {
            peers.get_or_insert(*id).set_allow(allow.clone());
            wg.add_peer(*id);
        }
        for (id, addr) in &config.bootstrap {
            if *id == local {
                continue;
            }
            if config.policy.strict_allowlist && !config.allowed.contains_key(id) {
                // Its sessions would be refused anyway; do not contact it.
                continue;
            }
            let p = peers.get_or_insert(*id);
            p.set_bootstrap(*addr);
            wg.add_peer(*id);
        }
        Ok(Self {
            config,
            local,
            wg,
            peers,
            routes: RouteTable::new(),
            running: false,
            epoch: now,
            wall_at_epoch: wall,
            local_addresses: Vec::new(),
            reflexive: Vec::new(),
            next_probe_id: 1,
            counters: Counters::default(),
            transmits: VecDeque::new(),
            tun_out: VecDeque::new(),
            events: VecDeque::new(),
            seeds: Vec::new(),
            scratch: Vec::with_capacity(2048),
            dirty: BTreeSet::new(),
            user_probes: BTreeSet::new(),
            dataplane: DataplaneTables::default(),
            relay: relay::RelayState::default(),
            names: names::NameBook::new(node_address),
        })
    }

    /// This node's PeerId.
    pub fn peer_id(&self) -> PeerId {
        self.local
    }

    /// The runtime configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// Node-wide counters (including the data plane's).
    pub fn counters(&self) -> Counters {
        let mut counters = self.counters.clone();
        self.dataplane.merge_counters(&mut counters);
        counters.relay_pairs = self.relay.counters();
        let load = self.wg.handshake_load();
        counters.handshake_dh_computed = load.dh_computed;
        counters.handshake_rate_limited = load.rate_limited;
        counters.handshake_mac2_missing = load.mac2_missing;
        counters.cookie_replies_sent = load.cookie_replies_sent;
        counters.cookie_replies_received = load.cookie_replies_received;
        counters.bad_cookie_replies = load.bad_cookie_replies;
        counters
    }

    /// The node is under handshake load until `until`: handshake messages
    /// then need a valid mac2, and senders without one get a cookie reply
    /// instead of a Diffie-Hellman. The host calls this from its handshake
    /// queue depth (e.g. when it is 1/8 full, `now + 1 s`); each call
    /// replaces the last. The node also goes under load by itself, for a
    /// second, at 1,024 handshake messages within a second or when a source
    /// exceeds its handshake rate (20/s, burst 5).
    pub fn set_under_load(&mut self, until: Instant) {
        self.wg.set_under_load(until);
    }

    /// Whether the node is under handshake load, and what its handshake
    /// defences (limiter, cookies) did so far.
    pub fn handshake_load(&self) -> HandshakeLoad {
        self.wg.handshake_load()
    }

    /// Whether `start` was called and `stop` was not.
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// The host's own UDP endpoints (local candidates announced to peers).
    pub fn set_local_addresses(&mut self, addrs: Vec<SocketAddrV4>) {
        self.local_addresses = addrs;
    }

    /// A bootstrap peer's host name resolved (again) to `addr`: the address
    /// becomes a direct candidate of that peer and, if there is no session
    /// yet, a handshake goes there at once. The old address stays a
    /// candidate until probes find it dead. Returns whether anything
    /// changed (false for the address already in use, this node itself, or
    /// a peer the strict allowlist would refuse).
    pub fn update_bootstrap_address(
        &mut self,
        now: Instant,
        peer: PeerId,
        addr: SocketAddrV4,
    ) -> bool {
        if peer == self.local
            || (self.config.policy.strict_allowlist && !self.config.allowed.contains_key(&peer))
        {
            return false;
        }
        match self.config.bootstrap.iter_mut().find(|(id, _)| *id == peer) {
            Some((_, a)) if *a == addr => return false,
            Some((_, a)) => *a = addr,
            None => self.config.bootstrap.push((peer, addr)),
        }
        self.wg.add_peer(peer);
        let p = self.peers.get_or_insert(peer);
        p.set_bootstrap(addr);
        if let Some(i) = p.path_index(Via::Direct(addr), now) {
            p.paths[i].probe_now(now);
        }
        self.dirty.insert(peer);
        if self.running && !self.wg.session_ready(&peer, now) {
            if p.is_connecting() {
                self.send_handshake(now, peer);
            } else {
                self.connect(now, peer);
            }
        }
        self.after_change(now);
        true
    }

    /// Adds seed records: peers and where to reach them, used after the
    /// static bootstrap peers.
    pub fn add_seed_records(&mut self, records: Vec<SeedRecord>) {
        self.seeds.extend(records);
    }

    fn wall(&self, now: Instant) -> Duration {
        self.wall_at_epoch + now.saturating_duration_since(self.epoch)
    }

    /// Starts the node: contacts static bootstrap peers first, then seed
    /// records, and begins connecting to every allowlisted peer it can reach.
    pub fn start(&mut self, now: Instant) {
        if self.running {
            return;
        }
        self.running = true;
        self.events.push_back(Event::Started);
        let bootstrap = self.config.bootstrap.clone();
        for (id, addr) in bootstrap {
            if let Some(p) = self.peers.get_mut(&id) {
                p.path_index(Via::Direct(addr), now);
                self.connect(now, id);
            }
        }
        let seeds = std::mem::take(&mut self.seeds);
        for s in seeds {
            let candidates = Candidates {
                local: s.candidates,
                reflexive: Vec::new(),
            };
            self.learn_candidates(now, s.peer, &candidates, None);
        }
        self.dataplane.mark_dirty();
        self.publish_data_plane(now);
    }

    /// Stops the node: withdraws membership from every peer with a session
    /// (so they remove our route at once) and asks the host to remove every
    /// kernel route.
    pub fn stop(&mut self, now: Instant) {
        if !self.running {
            return;
        }
        let withdraw = Frame::Withdraw {
            network_id: self.config.network_id.clone(),
            prefix: self.config.prefix,
        };
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for id in &ids {
            if self.wg.session_ready(id, now) {
                self.send_frame(now, *id, &withdraw);
            }
        }
        for id in ids {
            self.end_membership(id, WithdrawReason::Shutdown);
        }
        self.running = false;
        self.events.push_back(Event::Stopped);
        self.dataplane.mark_dirty();
        self.publish_data_plane(now);
    }

    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next packet to write to the TUN device.
    pub fn poll_tun(&mut self) -> Option<Vec<u8>> {
        self.tun_out.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.running {
            return None;
        }
        let mut next = self.wg.poll_timeout();
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        };
        consider(self.dataplane.poll_timeout());
        consider(self.peers.poll_timeout());
        next
    }

    // ------------------------------------------------------------------
    // Outbound packets
    // ------------------------------------------------------------------

    /// A packet read from the TUN device.
    pub fn handle_tun_packet(&mut self, now: Instant, packet: &[u8]) {
        let Some(addrs) = ipv4::parse(packet) else {
            self.drop_packet(None, DropReason::Malformed);
            return;
        };
        if self.config.prefix.contains(addrs.dst) {
            self.drop_packet(None, DropReason::WrongDestination);
            return;
        }
        let Some(route) = self.routes.lookup(addrs.dst) else {
            self.counters.route_misses += 1;
            self.drop_packet(None, DropReason::UnknownRoute);
            return;
        };
        let id = route.peer;
        let ready = self.wg.session_ready(&id, now);
        let has_path = self
            .peers
            .get(&id)
            .is_some_and(|p| p.paths.active_index().is_some());
        if ready && has_path {
            self.send_data(now, id, packet);
            return;
        }
        let Some(p) = self.peers.get_mut(&id) else {
            self.drop_packet(None, DropReason::NoSession);
            return;
        };
        if p.paths.is_empty() || ready {
            // No way to reach it, or keys but every path is dead (the route
            // is tombstoned): drop rather than queue indefinitely.
            p.touch_data(now);
            self.drop_packet(Some(id), DropReason::NoSession);
            return;
        }
        if p.queue_len() >= QUEUE_LIMIT {
            self.drop_packet(Some(id), DropReason::QueueFull);
            return;
        }
        p.enqueue(packet.to_vec());
        p.touch_data(now);
        if !ready && !p.is_connecting() {
            self.connect(now, id);
        }
    }

    fn send_data(&mut self, now: Instant, id: PeerId, packet: &[u8]) {
        let relayed = self
            .peers
            .get(&id)
            .and_then(|p| p.active_path())
            .is_some_and(|p| matches!(p.via(), Via::Relay(_)));
        let fits = relay_max_packet(self.config.underlay_mtu);
        if relayed && packet.len() > fits && ipv4::dont_fragment(packet) {
            // Wrapped twice it would not fit one underlay datagram: the
            // underlay would fragment it, and fragments are often dropped
            // on the internet. Tell the sender the size that fits instead
            // (path MTU discovery), as a router on the way would.
            if let Some(icmp) = ipv4::frag_needed(packet, fits as u16) {
                self.tun_out.push_back(icmp);
            }
            self.drop_packet(Some(id), DropReason::PacketTooBig);
            return;
        }
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        match self.wg.encrypt(now, &id, packet, &mut buf) {
            Ok(()) => {
                let via = self
                    .peers
                    .get(&id)
                    .and_then(|p| p.active_path())
                    .map(|p| p.via());
                let sent = match via {
                    Some(via) => self.send_via(now, id, via, &buf),
                    None => false,
                };
                if sent {
                    let relayed = matches!(via, Some(Via::Relay(_)));
                    self.counters.packets_sent += 1;
                    self.counters.bytes_sent += packet.len() as u64;
                    if relayed {
                        self.counters.relay_usage += 1;
                    }
                    if let Some(p) = self.peers.get_mut(&id) {
                        p.counters.packets_sent += 1;
                        p.counters.bytes_sent += packet.len() as u64;
                        p.touch_data(now);
                        if relayed {
                            p.counters.relay_usage += 1;
                        }
                    }
                } else {
                    self.drop_packet(Some(id), DropReason::NoSession);
                }
            }
            Err(_) => self.drop_packet(Some(id), DropReason::NoSession),
        }
        self.scratch = buf;
    }

    /// Sends an already encrypted datagram of the session with `id` over
    /// `via`. Returns whether it left the node.
    fn send_via(&mut self, now: Instant, id: PeerId, via: Via, datagram: &[u8]) -> bool {
        match via {
            Via::Direct(dst) => {
                self.transmits.push_back(Transmit {
                    dst,
                    data: datagram.to_vec(),
                });
                true
            }
            Via::Relay(relay) => {
                let Some(relay_path) = self
                    .peers
                    .get(&relay)
                    .and_then(|r| r.active_path())
                    .filter(|p| matches!(p.via(), Via::Direct(_)))
                    .map(|p| p.via())
                else {
                    return false;
                };
                let mut frame = Vec::with_capacity(datagram.len() + frame::RELAY_HEADER_LEN);
                frame::encode_relay(RelayDirection::Forward, &id, datagram, &mut frame);
                let mut out = Vec::with_capacity(frame.len() + 32);
                if self.wg.encrypt(now, &relay, &frame, &mut out).is_err() {
                    return false;
                }
                self.send_via(now, relay, relay_path, &out)
            }
        }
    }

    /// Sets the names this node announces for its workloads (name →
    /// address, each inside this node's prefix) and sends them to every
    /// member when they changed.
    pub fn set_workload_names(
        &mut self,
        now: Instant,
        workloads: BTreeMap<crate::lease::WorkloadName, Ipv4Addr>,
    ) {
        let prefix = self.config.prefix;
        let workloads = workloads
            .into_iter()
            .filter(|(_, a)| prefix.contains(*a))
            .collect();
        if !self.names.set_workloads(workloads) {
            return;
        }
        let members: Vec<PeerId> = self
            .peers
            .values()
            .filter(|p| p.enrolled_prefix().is_some())
            .map(|p| p.id)
            .collect();
        for id in members {
            self.send_names(now, id);
        }
    }

    /// This node's own name set.
    pub fn own_names(&self) -> &crate::names::NameSet {
        self.names.own()
    }

    /// Members' name sets (only records inside their prefixes), with the
    /// name this node's allowlist gives each member (`None`: no name, so
    /// no DNS names for it).
    pub fn member_names(&self) -> Vec<(PeerId, Option<String>, crate::names::NameSet)> {
        self.names
            .peers()
            .filter(|(id, _)| {
                self.peers
                    .get(id)
                    .is_some_and(|p| p.enrolled_prefix().is_some())
            })
            .map(|(id, set)| {
                let name = self.config.allowed.get(id).and_then(|a| a.name.clone());
                (*id, name, set.clone())
            })
            .collect()
    }

    /// Changes whenever [`Node::own_names`] or [`Node::member_names`] may
    /// have changed (for the host's DNS zone).
    pub fn names_generation(&self) -> u64 {
        self.names.generation()
    }

    fn send_names(&mut self, now: Instant, id: PeerId) {
        let frame = Frame::Names(self.names.own().clone());
        self.send_frame(now, id, &frame);
    }

    fn send_frame(&mut self, now: Instant, id: PeerId, msg: &Frame) {
        let Some(via) = self
            .peers
            .get(&id)
            .and_then(|p| p.active_path())
            .map(|p| p.via())
        else {
            return;
        };
        self.send_frame_via(now, id, via, msg);
    }

    fn send_frame_via(&mut self, now: Instant, id: PeerId, via: Via, msg: &Frame) {
        let plain = msg.to_bytes();
        let mut out = Vec::with_capacity(plain.len() + 48);
        if self.wg.encrypt(now, &id, &plain, &mut out).is_ok() {
            self.send_via(now, id, via, &out);
        }
    }

    fn drop_packet(&mut self, peer: Option<PeerId>, reason: DropReason) {
        *self.counters.drops.entry(reason).or_default() += 1;
        if let Some(p) = peer.and_then(|id| self.peers.get_mut(&id)) {
            *p.counters.drops.entry(reason).or_default() += 1;
        }
    }

    /// Ends memberships of peers that have been silent past the membership
    /// timeout right away (the timers do the same lazily).
    pub fn cleanup_stale_sessions(&mut self, now: Instant) {
        self.handle_timeout(now);
    }

    /// A structured view of membership, routes, sessions and counters.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        Snapshot {
            peer_id: self.local,
            network_id: self.config.network_id.clone(),
            prefix: self.config.prefix,
            running: self.running,
            candidates: self.own_candidates(),
            peers: self
                .peers
                .values()
                .map(|p| PeerView {
                    peer_id: p.id,
                    name: p.allow().and_then(|a| a.name.clone()),
                    prefix: p.allow().map(|a| a.prefix),
                    relay_capable: p.relay_capable(),
                    enrolled: p.enrolled_prefix().is_some(),
                    session_up: self.wg.session_ready(&p.id, now),
                    class: p
                        .active_path()
                        .filter(|x| x.is_alive())
                        .and_then(|x| x.class()),
                    via: p
                        .active_path()
                        .filter(|x| x.is_alive())
                        .map(|x| x.via().to_string()),
                    paths: p.paths.iter().map(paths::Path::view).collect(),
                    counters: {
                        let mut c = p.counters.clone();
                        self.dataplane.merge_peer_counters(&p.id, &mut c);
                        c
                    },
                    why: self.why(p, now),
                    attempts: self.attempt_views(p, now),
                })
                .collect(),
            routes: self.routes.iter().cloned().collect(),
            counters: self.counters(),
        }
    }

    /// Class of the preferred path to `peer`, if one works.
    pub fn path_class(&self, peer: &PeerId) -> Option<PathClass> {
        self.peers
            .get(peer)
            .and_then(|p| p.active_path())
            .filter(|x| x.is_alive())
            .and_then(|x| x.class())
    }

    /// Sends one probe to `peer` over its preferred path right now (for
    /// `vine ping`). The answer arrives as [`Event::ProbeAnswered`], or
    /// [`Event::ProbeLost`] after the probe timeout. Returns the probe id, or
    /// `None` when the peer has no session or no working path.
    pub fn probe(&mut self, now: Instant, peer: &PeerId) -> Option<u64> {
        if !self.wg.session_ready(peer, now) {
            return None;
        }
        let via = self
            .peers
            .get(peer)
            .and_then(|p| p.active_path())
            .filter(|x| x.is_alive())
            .map(|x| x.via())?;
        let id = self.next_probe_id;
        self.next_probe_id += 1;
        if let Some(p) = self.peers.get_mut(peer) {
            p.paths.probe_sent(via, id, now);
        }
        self.user_probes.insert(id);
        self.send_frame_via(now, *peer, via, &Frame::Probe { id });
        Some(id)
    }

    /// Turns on the data plane and returns the shared [`DataPlane`] whose
    /// [`Reader`](crate::dataplane::Reader)s data-plane threads use. From
    /// now on the node republishes the tables whenever keys, paths,
    /// memberships or routes change, and folds the data plane's counters
    /// into [`Node::counters`] and [`Node::snapshot`].
    pub fn enable_data_plane(&mut self, now: Instant) -> Arc<DataPlane> {
        if let Some(plane) = self.dataplane.plane() {
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
        self.dataplane.attach(now, plane);
        self.publish_data_plane(now);
    }

    /// Publishes the data-plane tables if something they depend on changed.
    fn publish_data_plane(&mut self, now: Instant) {
        self.dataplane.publish(
            now,
            &mut self.wg,
            &self.peers,
            &self.routes,
            self.config.prefix,
        );
    }

    /// The route table.
    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }
}

#[cfg(test)]
mod tests;
