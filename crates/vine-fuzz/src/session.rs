//! The fixture of the node-level targets: a [`Node`] holding real,
//! established sessions with two peers, driven through the public API only.
//!
//! The node (`10.1.0.0/24`, `192.0.2.1:4100`, relaying enabled) allowlists
//! `peer` (`10.2.0.0/24`, relay capable, its bootstrap peer at
//! `192.0.2.2:4100`) and `third` (`10.3.0.0/24`, `192.0.2.3:4100`). The two
//! peers are bare [`Wg`] instances with their identities' keys: the node
//! initiates to `peer` on start, `third` initiates to the node, and each
//! peer then seals a valid `Announce`, so both are enrolled with routes. A
//! peer answers the node's probes; everything else the node sends them is
//! decrypted and dropped.
//!
//! Everything is deterministic: fixed identity and RNG seeds, a fixed wall
//! clock, and times relative to one [`Instant`] taken once per process, so
//! an input replays the same way in every run of a process. (Building the
//! fixture costs a handful of X25519 operations; the node is not `Clone`,
//! so each input gets a fresh one rather than a shared, drifting one.)

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use vine_core::config::{DEFAULT_UNDERLAY_MTU, Policy};
use vine_core::dataplane::DataPlane;
use vine_core::frame::{self, Candidates, Frame, Plaintext};
use vine_core::node::{AllowedPeerConfig, Node, NodeConfig, Timers};
use vine_core::wg::{Received, Wg};
use vine_core::{Identity, Ipv4Prefix, PeerId};

/// The overlay's name.
pub const NETWORK_ID: &str = "fuzz-net";

/// The node's wall clock at the fixture's start (only used for handshake
/// timestamps).
pub const WALL: Duration = Duration::from_secs(1_800_000_000);

/// One monotonic instant per process that every fixture starts at.
static BASE: LazyLock<Instant> = LazyLock::new(Instant::now);

/// The four identities (node, peer, third, stranger), derived once per
/// process: deriving keys is most of what a fixture would otherwise cost.
static IDENTITIES: LazyLock<[Identity; 4]> =
    LazyLock::new(|| [0x11, 0x22, 0x33, 0x44].map(|b| Identity::from_seed([b; 32])));

/// Their PeerIds.
static IDS: LazyLock<[PeerId; 4]> = LazyLock::new(|| IDENTITIES.each_ref().map(Identity::peer_id));

/// The node's identity.
pub fn node_identity() -> &'static Identity {
    &IDENTITIES[0]
}

/// The relay-capable bootstrap peer's identity.
pub fn peer_identity() -> &'static Identity {
    &IDENTITIES[1]
}

/// The second allowlisted peer's identity.
pub fn third_identity() -> &'static Identity {
    &IDENTITIES[2]
}

/// An identity nobody allowlists.
pub fn stranger_identity() -> &'static Identity {
    &IDENTITIES[3]
}

/// The node's PeerId.
pub fn node_id() -> PeerId {
    IDS[0]
}

/// The stranger's PeerId.
pub fn stranger_id() -> PeerId {
    IDS[3]
}

/// The node's underlay address.
pub const NODE_ADDR: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 4100);
/// `peer`'s underlay address.
pub const PEER_ADDR: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 4100);
/// `third`'s underlay address.
pub const THIRD_ADDR: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 3), 4100);

/// The node's own overlay address.
pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);

/// The node's prefix.
pub fn node_prefix() -> Ipv4Prefix {
    Ipv4Prefix::containing_clamped(NODE_IP, 24)
}

/// `peer`'s allowlisted prefix.
pub fn peer_prefix() -> Ipv4Prefix {
    Ipv4Prefix::containing_clamped(Ipv4Addr::new(10, 2, 0, 0), 24)
}

/// `third`'s allowlisted prefix.
pub fn third_prefix() -> Ipv4Prefix {
    Ipv4Prefix::containing_clamped(Ipv4Addr::new(10, 3, 0, 0), 24)
}

/// Which of the two peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// The relay-capable bootstrap peer.
    Peer,
    /// The second allowlisted peer.
    Third,
}

impl Who {
    /// Its PeerId.
    pub fn id(self) -> PeerId {
        match self {
            Who::Peer => IDS[1],
            Who::Third => IDS[2],
        }
    }

    /// Its underlay address.
    pub fn addr(self) -> SocketAddrV4 {
        match self {
            Who::Peer => PEER_ADDR,
            Who::Third => THIRD_ADDR,
        }
    }

    /// Its allowlisted prefix.
    pub fn prefix(self) -> Ipv4Prefix {
        match self {
            Who::Peer => peer_prefix(),
            Who::Third => third_prefix(),
        }
    }

    /// The `Announce` it sends to enroll.
    pub fn announce(self, seq: u64) -> Frame {
        Frame::Announce {
            network_id: NETWORK_ID.to_owned(),
            prefix: self.prefix(),
            candidates: Candidates {
                local: vec![self.addr()],
                reflexive: Vec::new(),
            },
            seq,
        }
    }
}

/// The node's config.
pub fn node_config() -> NodeConfig {
    let allow = |prefix, relay_capable, name: &str| AllowedPeerConfig {
        prefix,
        relay_capable,
        name: Some(name.to_owned()),
    };
    NodeConfig {
        network_id: NETWORK_ID.to_owned(),
        address: NODE_IP,
        prefix: node_prefix(),
        allowed: [
            (Who::Peer.id(), allow(peer_prefix(), true, "peer")),
            (Who::Third.id(), allow(third_prefix(), false, "third")),
        ]
        .into_iter()
        .collect(),
        bootstrap: vec![(Who::Peer.id(), PEER_ADDR)],
        policy: Policy::default(),
        relay_enabled: true,
        timers: Timers::default(),
        underlay_mtu: DEFAULT_UNDERLAY_MTU,
    }
}

/// The node, its peers and the virtual clock.
pub struct Session {
    /// The node under test.
    pub node: Node,
    /// `peer`'s WireGuard state.
    pub peer: Wg,
    /// `third`'s WireGuard state.
    pub third: Wg,
    /// The virtual clock.
    pub now: Instant,
    /// The node's data plane, when the fixture enabled it.
    pub plane: Option<Arc<DataPlane>>,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("node", &self.node.peer_id())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Builds the fixture (see the module docs), with the node's data plane
    /// enabled when `data_plane` is set.
    ///
    /// # Panics
    ///
    /// When the sessions do not come up: the fixture itself is broken.
    pub fn new(data_plane: bool) -> Self {
        let now = *BASE;
        let me = node_identity();
        let mut node = Node::new(node_config(), me, [0x55; 32], now, WALL)
            .expect("the fixture's config is valid");
        node.set_local_addresses(vec![NODE_ADDR]);
        let plane = data_plane.then(|| node.enable_data_plane(now));
        let wg = |id: &Identity, seed| {
            let mut wg = Wg::new(id.x25519_secret().clone(), seed);
            wg.add_peer(me.peer_id());
            wg
        };
        let mut s = Self {
            node,
            peer: wg(peer_identity(), [0x66; 32]),
            third: wg(third_identity(), [0x77; 32]),
            now,
            plane,
            scratch: Vec::new(),
        };
        // The node initiates to its bootstrap peer.
        s.node.start(now);
        s.pump();
        // `third` initiates to the node.
        let init = s
            .third
            .initiate(now, WALL, &me.peer_id())
            .expect("the node is third's peer");
        s.node.handle_datagram(now, THIRD_ADDR, &init);
        s.pump();
        for who in [Who::Peer, Who::Third] {
            // A responder sends only once the initiator's first message
            // confirmed its keys: have the node send one (a probe) if it
            // has sent nothing yet.
            if !s.wg(who).session_ready(&me.peer_id(), now) {
                let _ = s.node.probe(s.now, &who.id());
                s.pump();
            }
            assert!(
                s.wg(who).session_ready(&me.peer_id(), now),
                "fixture: {who:?} cannot send to the node"
            );
            s.send_frame(who, who.addr(), &who.announce(1));
        }
        s.pump();
        let snap = s.node.snapshot(s.now);
        for who in [Who::Peer, Who::Third] {
            let view = snap.peers.iter().find(|p| p.peer_id == who.id());
            assert!(
                view.is_some_and(|v| v.session_up && v.enrolled),
                "fixture: {who:?} has no enrolled session: {view:?}"
            );
        }
        s
    }

    /// The WireGuard state of `who`.
    pub fn wg(&mut self, who: Who) -> &mut Wg {
        match who {
            Who::Peer => &mut self.peer,
            Who::Third => &mut self.third,
        }
    }

    /// `plaintext` sealed by `who` for the node with its current session
    /// keys (`None` when it has none).
    pub fn seal(&mut self, who: Who, plaintext: &[u8]) -> Option<Vec<u8>> {
        let now = self.now;
        let to = node_id();
        let mut out = Vec::new();
        self.wg(who)
            .encrypt(now, &to, plaintext, &mut out)
            .ok()
            .map(|()| out)
    }

    /// `who` seals `plaintext` and the node receives it from `from`.
    pub fn send_sealed(&mut self, who: Who, from: SocketAddrV4, plaintext: &[u8]) {
        if let Some(datagram) = self.seal(who, plaintext) {
            self.node.handle_datagram(self.now, from, &datagram);
        }
    }

    /// `who` sends a peer frame from `from`.
    pub fn send_frame(&mut self, who: Who, from: SocketAddrV4, msg: &Frame) {
        self.send_sealed(who, from, &msg.to_bytes());
    }

    /// Moves the clock forward by `by` and runs the node's timers.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.node.handle_timeout(self.now);
    }

    /// Runs the node's timers at its next deadline, if it has one within
    /// `limit` from now.
    pub fn next_timer(&mut self, limit: Duration) {
        if let Some(at) = self.node.poll_timeout()
            && at <= self.now + limit
        {
            self.now = self.now.max(at);
            self.node.handle_timeout(self.now);
        }
    }

    /// Delivers what the node sent to the two peers, and their answers, a
    /// bounded number of rounds. Returns the node's transmits to other
    /// addresses (dropped, as on a network without them).
    pub fn pump(&mut self) -> usize {
        let mut elsewhere = 0;
        for _ in 0..16 {
            let mut moved = false;
            while let Some(t) = self.node.poll_transmit() {
                let who = match t.dst {
                    PEER_ADDR => Who::Peer,
                    THIRD_ADDR => Who::Third,
                    _ => {
                        elsewhere += 1;
                        continue;
                    }
                };
                moved |= self.peer_receives(who, &t.data);
            }
            if !moved {
                break;
            }
        }
        elsewhere
    }

    /// `who` receives a datagram from the node and answers as a node
    /// would: a handshake response, a keepalive on a new session, a reply
    /// to a probe. Returns whether it answered.
    fn peer_receives(&mut self, who: Who, data: &[u8]) -> bool {
        let now = self.now;
        let mut plain = std::mem::take(&mut self.scratch);
        let answer = match self.wg(who).decrypt(now, WALL, data, &mut plain) {
            Ok(Received::HandshakeInitiation { response, .. }) => Some(response),
            Ok(Received::HandshakeComplete { .. }) => self.seal(who, &[]),
            Ok(Received::Data { .. }) => match frame::decode(&plain) {
                Ok(Plaintext::Frame(Frame::Probe { id })) => self.seal(
                    who,
                    &Frame::ProbeReply {
                        id,
                        observed: NODE_ADDR,
                    }
                    .to_bytes(),
                ),
                _ => None,
            },
            // The fixture's peers are never under load, and a cookie from
            // the node is not answered (the node resends on its own).
            Ok(Received::CookieNeeded { .. } | Received::CookieReceived { .. }) => None,
            Err(_) => None,
        };
        self.scratch = plain;
        match answer {
            Some(datagram) => {
                self.node.handle_datagram(now, who.addr(), &datagram);
                true
            }
            None => false,
        }
    }

    /// Drains the node's TUN packets and events, checking what reaches the
    /// TUN device: an IPv4 packet for the node's prefix whose source lies
    /// in an allowlisted peer's prefix, or (when `icmp_ok`, after a packet
    /// the node read from its own TUN) an ICMP error the node generated.
    ///
    /// # Panics
    ///
    /// When a packet breaks that rule: the node let something through that
    /// no authenticated, enrolled peer could have sent.
    pub fn drain(&mut self, icmp_ok: bool) {
        while let Some(p) = self.node.poll_tun() {
            check_tun_packet(&p, icmp_ok);
        }
        while self.node.poll_event().is_some() {}
    }

    /// Checks the node's routes: every route belongs to an allowlisted
    /// peer and is exactly the prefix the allowlist binds to it.
    ///
    /// # Panics
    ///
    /// When a route breaks that rule.
    pub fn check_routes(&self) {
        for route in self.node.routes().iter() {
            let owner = [Who::Peer, Who::Third]
                .into_iter()
                .find(|w| w.id() == route.peer);
            let Some(owner) = owner else {
                panic!("route {} for a peer nobody allowlisted", route.prefix);
            };
            assert_eq!(
                route.prefix,
                owner.prefix(),
                "{owner:?} owns a route for a prefix the allowlist does not give it"
            );
        }
    }
}

fn check_tun_packet(p: &[u8], icmp_ok: bool) {
    assert!(
        p.len() >= 20 && p[0] >> 4 == 4,
        "non-IPv4 packet to the TUN"
    );
    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    if icmp_ok && p[9] == 1 {
        return;
    }
    assert!(
        node_prefix().contains(dst),
        "packet to {dst} reached the TUN"
    );
    assert!(
        peer_prefix().contains(src) || third_prefix().contains(src),
        "packet from {src}, outside every allowlisted prefix, reached the TUN"
    );
}
