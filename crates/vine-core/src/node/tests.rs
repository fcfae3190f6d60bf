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
