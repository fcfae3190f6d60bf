//! Runtime translation: config + identity → node config.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::*;
use crate::config::{self, Config};

fn text(peer: &PeerId, address: &str, bootstrap: &str) -> String {
    format!(
        r#"[node]
name = "alpha"
network_id = "home-net"

[tun]
address = "{address}"
prefix_len = 24

[[bootstrap_peers]]
peer_id = "{peer}"
address = "{bootstrap}"

[[allowed_peers]]
peer_id = "{peer}"
prefix = "10.42.1.0/24"
relay_capable = true
"#
    )
}

fn parsed(t: &str) -> Config {
    let p = config::parse(t);
    p.config.unwrap_or_else(|| panic!("{:?}", p.diagnostics))
}

#[test]
fn translation_keeps_identity_and_takes_prefix_from_config() {
    let me = Identity::from_seed([1; 32]);
    let peer = Identity::from_seed([2; 32]).peer_id();
    let a = parsed(&text(&peer, "10.42.0.1", "udp://198.51.100.10:4100"));
    let b = parsed(&text(&peer, "10.42.7.1", "udp://198.51.100.10:4100"));
    let na = NodeConfig::from_config(&a, &me, |_, _| None).expect("valid");
    let nb = NodeConfig::from_config(&b, &me, |_, _| None).expect("valid");
    assert_eq!(na.prefix.to_string(), "10.42.0.0/24");
    assert_eq!(nb.prefix.to_string(), "10.42.7.0/24");
    let now = Instant::now();
    let node_a = Node::new(na, &me, [0; 32], now, Duration::ZERO).expect("node");
    let node_b = Node::new(nb, &me, [0; 32], now, Duration::ZERO).expect("node");
    assert_eq!(
        node_a.peer_id(),
        node_b.peer_id(),
        "same identity, new prefix, same PeerId"
    );
    assert_eq!(node_a.peer_id(), me.peer_id());
    let allowed = node_a.config().allowed.get(&peer).expect("allowlisted");
    assert!(allowed.relay_capable);
    assert_eq!(
        node_a.config().bootstrap,
        vec![(
            peer,
            SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 10), 4100)
        )]
    );
}

#[test]
fn bootstrap_host_names_go_through_the_resolver() {
    let me = Identity::from_seed([1; 32]);
    let peer = Identity::from_seed([2; 32]).peer_id();
    let c = parsed(&text(&peer, "10.42.0.1", "udp://relay.example.net:4100"));
    let resolved = NodeConfig::from_config(&c, &me, |host, port| {
        assert_eq!((host, port), ("relay.example.net", 4100));
        Some(SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 5), port))
    })
    .expect("resolved");
    assert_eq!(*resolved.bootstrap[0].1.ip(), Ipv4Addr::new(203, 0, 113, 5));
    let err = NodeConfig::from_config(&c, &me, |_, _| None).expect_err("unresolved");
    assert_eq!(
        err,
        NodeError::Unresolved("udp://relay.example.net:4100".into())
    );
}

#[test]
fn overlapping_prefixes_and_self_enrollment_are_refused_at_startup() {
    let me = Identity::from_seed([1; 32]);
    let peer = Identity::from_seed([2; 32]).peer_id();
    let c = parsed(&text(&peer, "10.42.0.1", "udp://198.51.100.10:4100"));
    let mut nc = NodeConfig::from_config(&c, &me, |_, _| None).expect("valid");
    let other = Identity::from_seed([3; 32]).peer_id();
    nc.allowed.insert(
        other,
        AllowedPeerConfig {
            prefix: "10.42.1.128/25".parse().expect("prefix"),
            relay_capable: false,
            name: None,
        },
    );
    assert!(matches!(
        Node::new(nc.clone(), &me, [0; 32], Instant::now(), Duration::ZERO),
        Err(NodeError::OverlappingPrefixes { .. })
    ));
    nc.allowed.remove(&other);
    nc.allowed.insert(
        me.peer_id(),
        AllowedPeerConfig {
            prefix: "10.42.9.0/24".parse().expect("prefix"),
            relay_capable: false,
            name: None,
        },
    );
    assert_eq!(
        Node::new(nc, &me, [0; 32], Instant::now(), Duration::ZERO).map(|_| ()),
        Err(NodeError::SelfInAllowlist)
    );
}

#[test]
fn garbage_datagrams_and_packets_are_counted_not_fatal() {
    let me = Identity::from_seed([1; 32]);
    let peer = Identity::from_seed([2; 32]).peer_id();
    let c = parsed(&text(&peer, "10.42.0.1", "udp://198.51.100.10:4100"));
    let nc = NodeConfig::from_config(&c, &me, |_, _| None).expect("valid");
    let now = Instant::now();
    let mut node = Node::new(nc, &me, [0; 32], now, Duration::ZERO).expect("node");
    node.start(now);
    let from = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 10), 4100);
    for junk in [
        &[][..],
        &[1, 0, 0, 0],
        &[4, 0, 0, 0, 9, 9, 9, 9],
        &[0xff; 200],
    ] {
        node.handle_datagram(now, from, junk);
        node.handle_tun_packet(now, junk);
    }
    let c = node.counters();
    assert!(
        c.drops
            .get(&DropReason::DecryptFailed)
            .copied()
            .unwrap_or(0)
            >= 3
    );
    assert_eq!(c.drops.get(&DropReason::Malformed).copied(), Some(4));
}

/// Two bootstrap peers: `relay` by IPv4 literal, `other` by host name.
fn two_bootstraps(relay: &PeerId, other: &PeerId) -> String {
    format!(
        r#"[node]
name = "alpha"
network_id = "home-net"

[tun]
address = "10.42.0.1"
prefix_len = 24

[[bootstrap_peers]]
peer_id = "{relay}"
address = "udp://198.51.100.10:4100"

[[bootstrap_peers]]
peer_id = "{other}"
address = "udp://beta.example.net:4100"

[[allowed_peers]]
peer_id = "{relay}"
prefix = "10.42.1.0/24"
relay_capable = true

[[allowed_peers]]
peer_id = "{other}"
prefix = "10.42.2.0/24"
"#
    )
}

#[test]
fn an_unresolved_bootstrap_name_is_left_out_while_another_bootstrap_peer_exists() {
    let me = Identity::from_seed([1; 32]);
    let relay = Identity::from_seed([2; 32]).peer_id();
    let beta = Identity::from_seed([3; 32]).peer_id();
    let c = parsed(&two_bootstraps(&relay, &beta));
    let nc = NodeConfig::from_config(&c, &me, |_, _| None).expect("the relay is enough");
    assert_eq!(
        nc.bootstrap,
        vec![(
            relay,
            SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 10), 4100)
        )]
    );
}

#[test]
fn update_bootstrap_address_adds_a_direct_candidate_and_handshakes_at_once() {
    let me = Identity::from_seed([1; 32]);
    let relay = Identity::from_seed([2; 32]).peer_id();
    let beta = Identity::from_seed([3; 32]).peer_id();
    let c = parsed(&two_bootstraps(&relay, &beta));
    let nc = NodeConfig::from_config(&c, &me, |_, _| None).expect("valid");
    let t0 = Instant::now();
    let mut node = Node::new(nc, &me, [0; 32], t0, Duration::ZERO).expect("node");
    node.start(t0);
    while node.poll_transmit().is_some() {}
    let beta_paths = |node: &Node| {
        node.snapshot(t0)
            .peers
            .iter()
            .find(|p| p.peer_id == beta)
            .map(|p| p.paths.iter().map(|x| x.via.clone()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert!(beta_paths(&node).is_empty(), "no address for beta yet");

    let first = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 7), 4100);
    let t1 = t0 + Duration::from_secs(60);
    assert!(node.update_bootstrap_address(t1, beta, first));
    assert_eq!(beta_paths(&node), ["udp://203.0.113.7:4100"]);
    assert_eq!(
        node.config().bootstrap.last(),
        Some(&(beta, first)),
        "the node now knows beta as a bootstrap peer at that address"
    );
    let sent: Vec<Transmit> = std::iter::from_fn(|| node.poll_transmit()).collect();
    assert!(
        sent.iter()
            .any(|t| t.dst == first && t.data.len() == crate::wg::messages::INITIATION_LEN),
        "a handshake initiation goes to the new address at once: {sent:?}"
    );
    let view = node.snapshot(t1);
    let beta_view = view.peers.iter().find(|p| p.peer_id == beta).expect("beta");
    assert_eq!(beta_view.attempts.len(), 1);
    assert_eq!(beta_view.attempts[0].path, "udp://203.0.113.7:4100");
    assert_eq!(beta_view.attempts[0].outcome, AttemptOutcome::Trying);

    // The same answer again changes nothing; a new one adds a candidate.
    assert!(!node.update_bootstrap_address(t1, beta, first));
    let moved = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 8), 4100);
    assert!(node.update_bootstrap_address(t1 + Duration::from_secs(60), beta, moved));
    assert_eq!(
        beta_paths(&node),
        ["udp://203.0.113.7:4100", "udp://203.0.113.8:4100"]
    );
    assert_eq!(node.config().bootstrap.last(), Some(&(beta, moved)));

    // Never itself, never a peer the strict allowlist refuses.
    let stranger = Identity::from_seed([9; 32]).peer_id();
    assert!(!node.update_bootstrap_address(t1, me.peer_id(), moved));
    assert!(!node.update_bootstrap_address(t1, stranger, moved));
}

/// A node `a` (10.42.0.1) with a session to relay `r` (10.42.1.1, relay
/// capable in a's allowlist, and opted in with `act_as_relay` unless made
/// with [`RelayPair::not_opted_in`]), both on public addresses, nothing
/// else.
struct RelayPair {
    a: Node,
    r: Node,
    a_addr: SocketAddrV4,
    r_addr: SocketAddrV4,
    now: Instant,
}

impl RelayPair {
    fn new() -> Self {
        Self::with_relay(true)
    }

    fn not_opted_in() -> Self {
        Self::with_relay(false)
    }

    fn with_relay(act_as_relay: bool) -> Self {
        let (ia, ir) = (Identity::from_seed([1; 32]), Identity::from_seed([2; 32]));
        let a_addr = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 4100);
        let r_addr = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 4100);
        let ca = parsed(&text(&ir.peer_id(), "10.42.0.1", "udp://192.0.2.2:4100"));
        let cr = parsed(
            &text(&ia.peer_id(), "10.42.1.1", "udp://192.0.2.1:4100")
                .replace("10.42.1.0/24", "10.42.0.0/24")
                .replace(
                    "[node]\n",
                    &format!("[node]\nact_as_relay = {act_as_relay}\n"),
                ),
        );
        let now = Instant::now();
        let mut a = Node::new(
            NodeConfig::from_config(&ca, &ia, |_, _| None).expect("a"),
            &ia,
            [1; 32],
            now,
            Duration::ZERO,
        )
        .expect("a");
        let mut r = Node::new(
            NodeConfig::from_config(&cr, &ir, |_, _| None).expect("r"),
            &ir,
            [2; 32],
            now,
            Duration::ZERO,
        )
        .expect("r");
        a.set_local_addresses(vec![a_addr]);
        r.set_local_addresses(vec![r_addr]);
        a.start(now);
        r.start(now);
        let mut pair = Self {
            a,
            r,
            a_addr,
            r_addr,
            now,
        };
        for _ in 0..20 {
            pair.shuttle();
            pair.now += Duration::from_millis(10);
            pair.a.handle_timeout(pair.now);
            pair.r.handle_timeout(pair.now);
        }
        assert!(pair.a.wg.session_ready(&pair.r.peer_id(), pair.now));
        pair
    }

    /// Delivers everything in flight between the two, until quiet.
    fn shuttle(&mut self) {
        loop {
            let mut moved = false;
            while let Some(t) = self.a.poll_transmit() {
                if t.dst == self.r_addr {
                    self.r.handle_datagram(self.now, self.a_addr, &t.data);
                    moved = true;
                }
            }
            while let Some(t) = self.r.poll_transmit() {
                if t.dst == self.a_addr {
                    self.a.handle_datagram(self.now, self.r_addr, &t.data);
                    moved = true;
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// a asks r to forward a datagram to `dest`; returns what r sends.
    fn forward(&mut self, dest: PeerId) -> Vec<Transmit> {
        let mut frame = Vec::new();
        frame::encode_relay(frame::RelayDirection::Forward, &dest, &[4; 64], &mut frame);
        let mut out = Vec::new();
        let r = self.r.peer_id();
        self.a
            .wg
            .encrypt(self.now, &r, &frame, &mut out)
            .expect("session");
        self.r.handle_datagram(self.now, self.a_addr, &out);
        std::iter::from_fn(|| self.r.poll_transmit()).collect()
    }

    fn relay_drops(&self, reason: DropReason) -> u64 {
        self.r.counters().drops.get(&reason).copied().unwrap_or(0)
    }
}

#[test]
fn a_relay_never_reflects_a_frame_to_its_sender_nor_answers_it() {
    let mut p = RelayPair::new();
    let a = p.a.peer_id();
    let sent = p.forward(a);
    assert!(sent.is_empty(), "nothing relayed, no notice: {sent:?}");
    assert_eq!(p.relay_drops(DropReason::RelayRefused), 1);
    assert_eq!(p.r.counters().relayed_for_others, 0);
    assert!(p.r.counters().relay_pairs.is_empty());
    let snap = p.r.snapshot(p.now);
    let view = snap.peers.iter().find(|v| v.peer_id == a).expect("a");
    assert!(
        view.attempts
            .iter()
            .any(|x| x.reason_code == "reflection" && x.outcome == AttemptOutcome::Refused),
        "{:?}",
        view.attempts
    );
}

#[test]
fn refusal_notices_are_sent_at_most_once_a_second() {
    let mut p = RelayPair::new();
    let stranger = Identity::from_seed([9; 32]).peer_id();
    // Refused (the stranger is not allowlisted): one notice for three frames.
    let notices: usize = (0..3).map(|_| p.forward(stranger).len()).sum();
    assert_eq!(notices, 1);
    assert_eq!(p.relay_drops(DropReason::RelayRefused), 3);
    p.now += NOTICE_INTERVAL;
    assert_eq!(p.forward(stranger).len(), 1, "a second later, one more");
    assert_eq!(p.r.counters().relayed_for_others, 0);
    // Never a pair entry for a destination outside the allowlist.
    assert!(p.r.counters().relay_pairs.is_empty());
}

#[test]
fn a_node_that_has_not_opted_in_relays_nothing_and_says_why() {
    let mut p = RelayPair::not_opted_in();
    assert!(!p.r.config().relay_enabled);
    let stranger = Identity::from_seed([9; 32]).peer_id();
    let a = p.a.peer_id();
    // Three frames: none relayed, one notice (at most one a second).
    let sent: Vec<Transmit> = (0..3).flat_map(|_| p.forward(stranger)).collect();
    assert_eq!(sent.len(), 1, "one refusal notice: {sent:?}");
    assert_eq!(sent[0].dst, p.a_addr);
    assert_eq!(p.relay_drops(DropReason::RelayNotEnabled), 3);
    assert_eq!(p.relay_drops(DropReason::RelayRefused), 0);
    assert_eq!(p.r.counters().relayed_for_others, 0);
    // The notice carries the reason: a decrypts it as RelayRefused with
    // NotARelay.
    let mut plain = Vec::new();
    let r = p.r.peer_id();
    match p
        .a
        .wg
        .decrypt(p.now, Duration::ZERO, &sent[0].data, &mut plain)
    {
        Ok(crate::wg::Received::Data { peer }) => assert_eq!(peer, r),
        other => panic!("not a data datagram from r: {other:?}"),
    }
    assert_eq!(
        frame::decode(&plain).expect("a frame"),
        frame::Plaintext::Frame(frame::Frame::RelayRefused {
            peer: stranger,
            reason: frame::RelayRefusal::NotARelay,
        })
    );
    // The relay's own record says why, under the sender.
    let snap = p.r.snapshot(p.now);
    let view = snap.peers.iter().find(|v| v.peer_id == a).expect("a");
    let refused = view
        .attempts
        .iter()
        .find(|x| x.reason_code == "relay_not_enabled")
        .unwrap_or_else(|| panic!("{:?}", view.attempts));
    assert_eq!(refused.outcome, AttemptOutcome::Refused);
    assert!(
        refused.reason.contains("has not enabled act_as_relay"),
        "{}",
        refused.reason
    );
}
