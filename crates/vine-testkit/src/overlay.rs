//! vine nodes on the simulator: [`SimNode`] adapts a [`vine_core::node::Node`]
//! to [`crate::sim::Endpoint`] and records what it does; [`Overlay`] builds
//! networks of them, including the four-node showcase.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use vine_core::Identity;
use vine_core::config::Policy;
use vine_core::dataplane::{Inbound, Reader, Sealed};
use vine_core::frame::Frame;
use vine_core::net::Ipv4Prefix;
use vine_core::node::{
    AllowedPeerConfig, Event, Node, NodeConfig, PathClass, Timers, build_test_packet,
};
use vine_core::peer_id::PeerId;
use vine_core::route::RouteIntent;
use vine_core::wg::messages::INITIATION_LEN;
use vine_core::wg::{DATA_HEADER_LEN, sealed_len};

use crate::sim::{Endpoint, HostId, NatConfig, NatId, NatType, Network, RealmId, Transmit};

/// A vine node running on a simulated host.
#[derive(Debug)]
pub struct SimNode {
    /// The node.
    pub node: Node,
    /// Host name (for messages).
    pub name: String,
    /// Every event, with the virtual time since the network's epoch.
    pub events: Vec<(Duration, Event)>,
    /// Packets the node wrote to its TUN device.
    pub delivered: Vec<(Duration, Vec<u8>)>,
    /// Kernel routes, as the node's route intents left them.
    pub kernel_routes: BTreeSet<Ipv4Prefix>,
    /// Every datagram the host sent (node and dataplane).
    pub datagrams_sent: u64,
    /// Handshake initiations the host sent: (virtual time, destination).
    pub initiations: Vec<(Duration, SocketAddrV4)>,
    /// Virtual time of the last input, which is when transmits are polled.
    last_input: Duration,
    /// The dataplane, driven the way the daemon's data-plane threads drive
    /// it: packets go through [`vine_core::dataplane`] first and reach the
    /// node only when the dataplane hands them over.
    fast: Option<Reader>,
    /// Datagrams the dataplane sent.
    fast_out: VecDeque<Transmit>,
    epoch: Instant,
    /// Identity seed (deterministic), kept for restarts.
    seed: u8,
    /// How many times this host's node was restarted.
    restarts: u8,
}

impl SimNode {
    fn drain(&mut self, now: Instant) {
        let at = now.saturating_duration_since(self.epoch);
        self.last_input = at;
        while let Some(e) = self.node.poll_event() {
            match e {
                Event::Route(RouteIntent::Install(p)) => {
                    self.kernel_routes.insert(p);
                }
                Event::Route(RouteIntent::Remove(p)) => {
                    self.kernel_routes.remove(&p);
                }
                _ => {}
            }
            self.events.push((at, e));
        }
        while let Some(p) = self.node.poll_tun() {
            self.delivered.push((at, p));
        }
    }

    /// Feeds a packet to the node as if read from its TUN device.
    pub fn send_packet(&mut self, now: Instant, packet: &[u8]) {
        if let Some(reader) = &mut self.fast {
            reader.refresh();
            let mut buf = vec![0u8; sealed_len(packet.len())];
            buf[DATA_HEADER_LEN..DATA_HEADER_LEN + packet.len()].copy_from_slice(packet);
            match reader.seal_outbound(&mut buf, packet.len(), now) {
                Sealed::Send { endpoint, len } => {
                    buf.truncate(len);
                    self.fast_out.push_back(Transmit {
                        dst: endpoint,
                        data: buf,
                    });
                    return;
                }
                Sealed::Dropped => return,
                Sealed::Slow => {}
            }
        }
        self.node.handle_tun_packet(now, packet);
        self.drain(now);
    }

    /// Turns the dataplane off: every packet goes through the node.
    pub fn disable_dataplane(&mut self) {
        self.fast = None;
    }

    /// Stops the node (withdrawals go out on the next step).
    pub fn stop(&mut self, now: Instant) {
        self.node.stop(now);
        self.drain(now);
    }

    /// Packets delivered whose payload starts with `tag`.
    pub fn delivered_with(&self, tag: &[u8]) -> usize {
        self.delivered
            .iter()
            .filter(|(_, p)| p.get(20..).is_some_and(|b| b.starts_with(tag)))
            .count()
    }

    /// Path-change events for `peer`.
    pub fn path_changes(
        &self,
        peer: &PeerId,
    ) -> Vec<(Duration, Option<PathClass>, Option<PathClass>)> {
        self.events
            .iter()
            .filter_map(|(t, e)| match e {
                Event::PathChanged {
                    peer: p, from, to, ..
                } if p == peer => Some((*t, *from, *to)),
                _ => None,
            })
            .collect()
    }
}

impl Endpoint for SimNode {
    fn handle_datagram(
        &mut self,
        now: Instant,
        _local: SocketAddrV4,
        from: SocketAddrV4,
        data: &[u8],
    ) {
        if let Some(reader) = &mut self.fast {
            reader.refresh();
            let mut copy = data.to_vec();
            match reader.tables().inbound(from, &mut copy, now) {
                Inbound::Data { peer, range } => {
                    peer.stats.add_received(1, range.len() as u64);
                    let at = now.saturating_duration_since(self.epoch);
                    self.delivered.push((at, copy[range].to_vec()));
                    return;
                }
                Inbound::Plain { peer, range } => {
                    let id = peer.id;
                    self.node.handle_decrypted(now, from, id, &copy[range]);
                    self.drain(now);
                    return;
                }
                Inbound::Drop(reason) => {
                    reader.plane().add_drop(reason);
                    return;
                }
                Inbound::Slow => {}
            }
        }
        self.node.handle_datagram(now, from, data);
        self.drain(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.node.handle_timeout(now);
        self.drain(now);
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = match self.fast_out.pop_front() {
            Some(t) => t,
            None => self.node.poll_transmit().map(|t| Transmit {
                dst: t.dst,
                data: t.data,
            })?,
        };
        self.datagrams_sent += 1;
        if t.data.len() == INITIATION_LEN && t.data[0] == 1 {
            self.initiations.push((self.last_input, t.dst));
        }
        Some(t)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.node.poll_timeout()
    }
}

/// How one member of an [`Overlay`] is configured.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    /// Name.
    pub name: String,
    /// Identity seed (deterministic).
    pub seed: u8,
    /// Overlay address; the member owns its /24.
    pub address: Ipv4Addr,
    /// Whether others list it as relay-capable; such a member also opts in
    /// to relaying (`act_as_relay`), as its operator would.
    pub relay_capable: bool,
    /// Policy.
    pub policy: Policy,
}

/// The identities and prefixes of an overlay's members, for building
/// configs.
#[derive(Debug, Clone, Default)]
pub struct Roster {
    members: BTreeMap<String, (PeerId, Ipv4Prefix, Ipv4Addr, bool)>,
}

impl Roster {
    /// Adds a member.
    pub fn add(&mut self, spec: &MemberSpec) {
        let id = Identity::from_seed([spec.seed; 32]).peer_id();
        let prefix = Ipv4Prefix::containing_clamped(spec.address, 24);
        self.members.insert(
            spec.name.clone(),
            (id, prefix, spec.address, spec.relay_capable),
        );
    }

    /// A member's PeerId.
    pub fn id(&self, name: &str) -> PeerId {
        self.members
            .get(name)
            .map(|m| m.0)
            .unwrap_or_else(|| panic!("no member {name}"))
    }

    /// A member's overlay address.
    pub fn address(&self, name: &str) -> Ipv4Addr {
        self.members
            .get(name)
            .map(|m| m.2)
            .unwrap_or_else(|| panic!("no member {name}"))
    }

    /// A member's prefix.
    pub fn prefix(&self, name: &str) -> Ipv4Prefix {
        self.members
            .get(name)
            .map(|m| m.1)
            .unwrap_or_else(|| panic!("no member {name}"))
    }

    /// The allowlist every member uses: everyone but `except`.
    pub fn allowlist(&self, except: &str) -> BTreeMap<PeerId, AllowedPeerConfig> {
        self.members
            .iter()
            .filter(|(n, _)| n.as_str() != except)
            .map(|(n, (id, prefix, _, relay))| {
                (
                    *id,
                    AllowedPeerConfig {
                        prefix: *prefix,
                        relay_capable: *relay,
                        name: Some(n.clone()),
                    },
                )
            })
            .collect()
    }
}

/// Builds the [`NodeConfig`] of `spec` with `allowed` and `bootstrap`.
pub fn node_config(
    spec: &MemberSpec,
    allowed: BTreeMap<PeerId, AllowedPeerConfig>,
    bootstrap: Vec<(PeerId, SocketAddrV4)>,
) -> NodeConfig {
    NodeConfig {
        network_id: "home-net".into(),
        address: spec.address,
        prefix: Ipv4Prefix::containing_clamped(spec.address, 24),
        allowed,
        bootstrap,
        policy: spec.policy,
        relay_enabled: spec.relay_capable,
        timers: Timers::default(),
        underlay_mtu: vine_core::config::DEFAULT_UNDERLAY_MTU,
    }
}

/// A member with the default (open) policy owning `address`'s /24.
pub fn member(name: &str, seed: u8, address: [u8; 4], relay_capable: bool) -> MemberSpec {
    MemberSpec {
        name: name.into(),
        seed,
        address: Ipv4Addr::from(address),
        relay_capable,
        policy: Policy::default(),
    }
}

/// Creates a [`SimNode`] (not yet started).
pub fn sim_node(net_epoch: Instant, spec: &MemberSpec, config: NodeConfig) -> SimNode {
    node_at(net_epoch, net_epoch, &spec.name, spec.seed, 0, config)
}

/// The wall clock every simulated host reads at the network's epoch.
const WALL_AT_EPOCH: Duration = Duration::from_secs(1_800_000_000);

/// A node (not yet started) built at `now`, the `restarts`-th of its host:
/// its wall clock reads the network's, and its randomness is fresh for
/// each restart (as a restarted daemon's would be).
fn node_at(
    net_epoch: Instant,
    now: Instant,
    name: &str,
    seed: u8,
    restarts: u8,
    config: NodeConfig,
) -> SimNode {
    let identity = Identity::from_seed([seed; 32]);
    let rng = seed
        .wrapping_add(100)
        .wrapping_add(restarts.wrapping_mul(37));
    let wall = WALL_AT_EPOCH + now.saturating_duration_since(net_epoch);
    let mut node = Node::new(config, &identity, [rng; 32], now, wall)
        .unwrap_or_else(|e| panic!("node {name}: {e}"));
    let fast = node.enable_data_plane(now).reader();
    SimNode {
        node,
        name: name.to_owned(),
        events: Vec::new(),
        delivered: Vec::new(),
        kernel_routes: BTreeSet::new(),
        datagrams_sent: 0,
        initiations: Vec::new(),
        last_input: now.saturating_duration_since(net_epoch),
        fast: Some(fast),
        fast_out: VecDeque::new(),
        epoch: net_epoch,
        seed,
        restarts,
    }
}

/// The showcase of the spec, on simulated networks:
///
/// ```text
///                         internet
///   relay 203.0.113.10 ─────┼───────────────┬───────────────────────┐
///                   nat-a 198.51.100.1   nat-b 198.51.100.2   nat-g 198.51.100.7
///                     (symmetric)      (port-restricted)    (port-restricted)
///                         └──── home LAN 192.168.1.0/24 ───┘        │
///                           alpha .10            beta .20      café LAN: gamma 192.168.7.10
/// ```
///
/// * alpha ↔ beta: **direct** over the shared LAN;
/// * gamma ↔ beta: **signaling_then_direct**: both sit behind
///   port-restricted NATs, so only coordinated punching opens a path;
/// * gamma ↔ alpha: **relay**: a symmetric NAT against a port-restricted one
///   cannot be punched;
/// * cutting the alpha–beta LAN link makes alpha ↔ beta fall back to relay.
#[allow(missing_debug_implementations)] // the network holds whole nodes
pub struct Overlay {
    /// The network.
    pub net: Network<SimNode>,
    /// Member identities.
    pub roster: Roster,
    /// Hosts by name.
    pub hosts: BTreeMap<String, HostId>,
}

/// The showcase is an [`Overlay`] built by [`Overlay::showcase`].
pub type Showcase = Overlay;

/// Policy with everything enabled.
pub fn open_policy() -> Policy {
    Policy::default()
}

/// The showcase members.
pub fn showcase_specs(policy: Policy) -> Vec<MemberSpec> {
    let m = |name: &str, seed, address: [u8; 4], relay| MemberSpec {
        name: name.into(),
        seed,
        address: Ipv4Addr::from(address),
        relay_capable: relay,
        policy,
    };
    vec![
        m("relay", 1, [10, 42, 254, 1], true),
        m("alpha", 2, [10, 42, 0, 1], false),
        m("beta", 3, [10, 42, 1, 1], false),
        m("gamma", 4, [10, 42, 2, 1], false),
    ]
}

impl Overlay {
    /// Builds the showcase with `specs` (see [`showcase_specs`]); every node
    /// allowlists every other and bootstraps from the relay. Nodes are started.
    pub fn build(seed: u64, specs: &[MemberSpec]) -> Self {
        Self::showcase(seed, specs, |_, _| {})
    }

    /// [`Overlay::build`] with a hook that may change each node's config.
    pub fn showcase(
        seed: u64,
        specs: &[MemberSpec],
        mut tweak: impl FnMut(&str, &mut NodeConfig),
    ) -> Self {
        let mut net: Network<SimNode> = Network::new(seed);
        let mut roster = Roster::default();
        for s in specs {
            roster.add(s);
        }
        let inet = net.internet();
        let home = net.add_realm("home-lan");
        let cafe = net.add_realm("cafe-lan");
        let nat = |net: &mut Network<SimNode>,
                   name: &str,
                   ty,
                   inside: RealmId,
                   inside_ip: [u8; 4],
                   public: [u8; 4]|
         -> NatId {
            net.add_nat(NatConfig::new(
                name,
                ty,
                inside,
                Ipv4Addr::from(inside_ip),
                inet,
                Ipv4Addr::from(public),
            ))
        };
        let nat_a = nat(
            &mut net,
            "nat-a",
            NatType::Symmetric,
            home,
            [192, 168, 1, 1],
            [198, 51, 100, 1],
        );
        let nat_b = nat(
            &mut net,
            "nat-b",
            NatType::PortRestrictedCone,
            home,
            [192, 168, 1, 2],
            [198, 51, 100, 2],
        );
        let nat_g = nat(
            &mut net,
            "nat-g",
            NatType::PortRestrictedCone,
            cafe,
            [192, 168, 7, 1],
            [198, 51, 100, 7],
        );
        let placement: BTreeMap<&str, (RealmId, [u8; 4], Option<NatId>)> = [
            ("relay", (inet, [203, 0, 113, 10], None)),
            ("alpha", (home, [192, 168, 1, 10], Some(nat_a))),
            ("beta", (home, [192, 168, 1, 20], Some(nat_b))),
            ("gamma", (cafe, [192, 168, 7, 10], Some(nat_g))),
        ]
        .into_iter()
        .collect();
        let relay_addr = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 10), 4100);
        let epoch = net.epoch();
        let mut hosts = BTreeMap::new();
        for spec in specs {
            let (name, (realm, ip, gw)) = placement
                .get_key_value(spec.name.as_str())
                .map(|(k, v)| (*k, *v))
                .unwrap_or_else(|| panic!("no placement for {}", spec.name));
            let bootstrap = if name == "relay" {
                Vec::new()
            } else {
                vec![(roster.id("relay"), relay_addr)]
            };
            let mut config = node_config(spec, roster.allowlist(name), bootstrap);
            tweak(name, &mut config);
            let mut node = sim_node(epoch, spec, config);
            let addr = SocketAddrV4::new(Ipv4Addr::from(ip), 4100);
            node.node.set_local_addresses(vec![addr]);
            let h = net.add_host(name, realm, Ipv4Addr::from(ip), 4100, gw, node);
            hosts.insert(name.to_owned(), h);
        }
        Self::started(net, roster, hosts)
    }

    /// Every member on the public internet (192.0.2.0/24 and onward, port
    /// 4100), all allowlisting each other; members other than `bootstrap`
    /// bootstrap from it. `tweak` may change each config. Nodes are started.
    pub fn public(
        seed: u64,
        specs: &[MemberSpec],
        bootstrap: Option<&str>,
        mut tweak: impl FnMut(&str, &mut NodeConfig),
    ) -> Self {
        let mut net: Network<SimNode> = Network::new(seed);
        let mut roster = Roster::default();
        for s in specs {
            roster.add(s);
        }
        let inet = net.internet();
        let addr_of = |i: usize| {
            let i = i as u32;
            SocketAddrV4::new(
                Ipv4Addr::from(u32::from(Ipv4Addr::new(192, 0, 2, 1)) + i),
                4100,
            )
        };
        let boot = bootstrap.map(|b| {
            let i = specs
                .iter()
                .position(|s| s.name == b)
                .unwrap_or_else(|| panic!("no member {b}"));
            (roster.id(b), addr_of(i))
        });
        let epoch = net.epoch();
        let mut hosts = BTreeMap::new();
        for (i, spec) in specs.iter().enumerate() {
            let bootstrap = boot
                .filter(|(id, _)| *id != roster.id(&spec.name))
                .into_iter()
                .collect();
            let mut config = node_config(spec, roster.allowlist(&spec.name), bootstrap);
            tweak(&spec.name, &mut config);
            let mut node = sim_node(epoch, spec, config);
            let addr = addr_of(i);
            node.node.set_local_addresses(vec![addr]);
            let h = net.add_host(spec.name.clone(), inet, *addr.ip(), 4100, None, node);
            hosts.insert(spec.name.clone(), h);
        }
        Self::started(net, roster, hosts)
    }

    /// Assembles an overlay and starts every node at the current time.
    fn started(net: Network<SimNode>, roster: Roster, hosts: BTreeMap<String, HostId>) -> Self {
        let mut s = Self { net, roster, hosts };
        let now = s.net.now();
        for h in s.hosts.values() {
            s.net.endpoint_mut(*h).node.start(now);
        }
        s
    }

    /// Runs the network until `cond` holds (checked after every event) or
    /// `max` of virtual time passed. Returns whether it held.
    pub fn run_until(&mut self, max: Duration, cond: impl Fn(&Overlay) -> bool) -> bool {
        let deadline = self.net.now() + max;
        loop {
            if cond(self) {
                return true;
            }
            if self.net.now() >= deadline || !self.net.step() {
                return cond(self);
            }
        }
    }

    /// Replaces `name`'s node by a fresh one with the same identity and
    /// config and starts it now, as restarting its daemon would: every
    /// session, membership and path of the old one is gone. (Stop the old
    /// one first for a clean shutdown; without that it is a crash.)
    pub fn restart(&mut self, name: &str) {
        let h = self.host(name);
        let addr = self.net.host_addr(h);
        let now = self.net.now();
        let old = self.net.endpoint(h);
        let mut fresh = node_at(
            old.epoch,
            now,
            name,
            old.seed,
            old.restarts.wrapping_add(1),
            old.node.config().clone(),
        );
        fresh.node.set_local_addresses(vec![addr]);
        fresh.node.start(now);
        fresh.drain(now);
        *self.net.endpoint_mut(h) = fresh;
    }

    /// Makes every node seal and open sessions made from now on with
    /// `backend` (call before the first step to cover every session). Large
    /// simulations use ring, which is optimized even in debug builds (the
    /// workspace builds dependencies with `opt-level = 2`), where vine's own
    /// AVX-512 code is not and dominated the run time.
    pub fn use_aead(&mut self, backend: vine_core::wg::aead::Backend) {
        let hosts: Vec<HostId> = self.hosts.values().copied().collect();
        for h in hosts {
            self.net.endpoint_mut(h).node.set_aead_backend(backend);
        }
    }

    /// Host of a member.
    pub fn host(&self, name: &str) -> HostId {
        *self
            .hosts
            .get(name)
            .unwrap_or_else(|| panic!("no host {name}"))
    }

    /// The node of a member.
    pub fn node(&self, name: &str) -> &SimNode {
        self.net.endpoint(self.host(name))
    }

    /// Class of `from`'s preferred path to `to`.
    pub fn class(&self, from: &str, to: &str) -> Option<PathClass> {
        self.node(from).node.path_class(&self.roster.id(to))
    }

    /// Makes `from` send `frame` to `to` inside their session as it is (a
    /// member that misbehaves); it goes out on the next step.
    pub fn send_frame(&mut self, from: &str, to: &str, frame: &Frame) {
        let now = self.net.now();
        let to = self.roster.id(to);
        let h = self.host(from);
        let node = self.net.endpoint_mut(h);
        node.node.send_raw_frame(now, &to, frame);
        node.drain(now);
    }

    /// Sends one test packet from `from`'s overlay address to `to`'s,
    /// tagged with `tag`.
    pub fn send(&mut self, from: &str, to: &str, tag: &[u8]) {
        let packet = build_test_packet(self.roster.address(from), self.roster.address(to), tag);
        let now = self.net.now();
        let h = self.host(from);
        self.net.endpoint_mut(h).send_packet(now, &packet);
    }
}
