//! Runtime translation: config + identity → node config.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::*;
use crate::config;

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
