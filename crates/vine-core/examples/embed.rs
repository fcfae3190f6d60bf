//! Embedding vine without the CLI: two nodes in one process, their
//! datagrams carried by a tiny in-memory "network", one IPv4 packet sent from
//! alpha's overlay address to beta's.
//!
//! Run with `cargo run -p vine-core --example embed`.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vine_core::Identity;
use vine_core::config::Policy;
use vine_core::node::{AllowedPeerConfig, Event, Node, NodeConfig, Timers, build_test_packet};

fn config(
    network_id: &str,
    address: Ipv4Addr,
    peer: &Identity,
    peer_prefix: &str,
    bootstrap: Option<SocketAddrV4>,
) -> NodeConfig {
    let mut allowed = BTreeMap::new();
    allowed.insert(
        peer.peer_id(),
        AllowedPeerConfig {
            prefix: peer_prefix.parse().expect("literal prefix"),
            relay_capable: false,
            name: None,
        },
    );
    NodeConfig {
        network_id: network_id.into(),
        address,
        prefix: vine_core::Ipv4Prefix::containing_clamped(address, 24),
        allowed,
        bootstrap: bootstrap.map(|a| (peer.peer_id(), a)).into_iter().collect(),
        policy: Policy {
            allow_relay: false,
            allow_signaling_upgrade: false,
            ..Policy::default()
        },
        relay_enabled: false,
        timers: Timers::default(),
        underlay_mtu: vine_core::config::DEFAULT_UNDERLAY_MTU,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // In a real program the seeds come from `vine identity init` files and
    // the RNG seed from the OS.
    let alpha_id = Identity::from_seed([1; 32]);
    let beta_id = Identity::from_seed([2; 32]);
    let alpha_addr = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 4100);
    let beta_addr = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 4100);

    let start = Instant::now();
    let wall = SystemTime::now().duration_since(UNIX_EPOCH)?;
    let mut alpha = Node::new(
        config(
            "demo",
            Ipv4Addr::new(10, 42, 0, 1),
            &beta_id,
            "10.42.1.0/24",
            Some(beta_addr),
        ),
        &alpha_id,
        [11; 32],
        start,
        wall,
    )?;
    let mut beta = Node::new(
        config(
            "demo",
            Ipv4Addr::new(10, 42, 1, 1),
            &alpha_id,
            "10.42.0.0/24",
            None,
        ),
        &beta_id,
        [22; 32],
        start,
        wall,
    )?;
    alpha.set_local_addresses(vec![alpha_addr]);
    beta.set_local_addresses(vec![beta_addr]);
    alpha.start(start);
    beta.start(start);

    // A zero-latency network: deliver every datagram at once, advance time
    // to the next timer when nothing is in flight.
    let mut now = start;
    let mut sent = false;
    let mut delivered = None;
    for _ in 0..10_000 {
        let mut moved = false;
        while let Some(t) = alpha.poll_transmit() {
            if t.dst == beta_addr {
                beta.handle_datagram(now, alpha_addr, &t.data);
            }
            moved = true;
        }
        while let Some(t) = beta.poll_transmit() {
            if t.dst == alpha_addr {
                alpha.handle_datagram(now, beta_addr, &t.data);
            }
            moved = true;
        }
        for (name, node) in [("alpha", &mut alpha), ("beta", &mut beta)] {
            while let Some(event) = node.poll_event() {
                if !matches!(event, Event::Route(_)) || name == "alpha" {
                    println!("{name}: {}", serde_json::to_string(&event)?);
                }
            }
        }
        if let Some(p) = beta.poll_tun() {
            delivered = Some(p);
            break;
        }
        if !sent && alpha.routes().lookup(Ipv4Addr::new(10, 42, 1, 7)).is_some() {
            let packet = build_test_packet(
                Ipv4Addr::new(10, 42, 0, 1),
                Ipv4Addr::new(10, 42, 1, 7),
                b"hello over vine",
            );
            alpha.handle_tun_packet(now, &packet);
            sent = true;
            continue;
        }
        if !moved {
            let next = [alpha.poll_timeout(), beta.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now + Duration::from_millis(10));
            now = next.max(now);
            alpha.handle_timeout(now);
            beta.handle_timeout(now);
        }
    }
    let packet = delivered.ok_or("the packet was not delivered")?;
    println!(
        "beta's TUN received {} bytes: {:?}",
        packet.len(),
        String::from_utf8_lossy(&packet[20..])
    );
    println!(
        "alpha's snapshot:\n{}",
        serde_json::to_string_pretty(&alpha.snapshot(now))?
    );
    Ok(())
}
